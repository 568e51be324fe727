// User Options: keyboard access (Cisco accessibility chapter), idle sign-out,
// and live pending requests (server-sent events). Plain JavaScript, no library.
"use strict";

// Alt+1 then Tab walks the icon bar, Alt+2 then Tab the button bar.
document.addEventListener("keydown", function (e) {
  if (!e.altKey || e.ctrlKey || e.metaKey) return;
  var target = null;
  if (e.key === "1" || e.code === "Digit1") target = document.getElementById("iconbar-start");
  if (e.key === "2" || e.code === "Digit2") target = document.getElementById("buttonbar-start");
  if (target) {
    e.preventDefault();
    target.focus();
  }
});

// An icon that names a field (Add User, Add New ...) puts the cursor in it.
document.addEventListener("click", function (e) {
  var link = e.target.closest ? e.target.closest("a.icon[href^='#']") : null;
  if (!link) return;
  var field = document.getElementById(link.getAttribute("href").slice(1));
  if (field) {
    e.preventDefault();
    field.focus();
  }
});

// After the idle timeout the server has ended the session; reloading shows the
// sign-in form with the reason.
(function () {
  var secs = parseInt(document.body.getAttribute("data-idle-timeout") || "0", 10);
  if (secs > 0 && document.getElementById("signout")) {
    setTimeout(function () { window.location.reload(); }, (secs + 1) * 1000);
  }
})();

function formatMs(ms) {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

var HOW = { subscribe: "added you as a contact", message: "sent you a message", call: "called you" };

function cell(text) {
  var td = document.createElement("td");
  td.textContent = text;
  return td;
}

function addPending(req) {
  var tbody = document.querySelector("#pending tbody");
  if (!tbody) return;
  var existing = null;
  tbody.querySelectorAll("tr[data-watcher]").forEach(function (tr) {
    if (tr.getAttribute("data-watcher") === req.watcher) existing = tr;
  });
  if (existing) {
    existing.children[4].textContent = formatMs(req.last_seen_ms);
    return;
  }
  var empty = document.getElementById("no-pending");
  if (empty) empty.remove();
  var tr = document.createElement("tr");
  tr.setAttribute("data-watcher", req.watcher);
  var first = document.createElement("td");
  var listed = document.createElement("input");
  listed.type = "hidden";
  listed.name = "listed";
  listed.value = req.watcher;
  var box = document.createElement("input");
  box.type = "checkbox";
  box.name = "allow";
  box.value = req.watcher;
  box.id = "allow-" + req.watcher;
  box.setAttribute("aria-label", "Allow " + req.watcher);
  first.appendChild(listed);
  first.appendChild(box);
  tr.appendChild(first);
  var who = document.createElement("td");
  var label = document.createElement("label");
  label.htmlFor = box.id;
  label.textContent = req.watcher;
  who.appendChild(label);
  tr.appendChild(who);
  tr.appendChild(cell(HOW[req.how] || req.how));
  tr.appendChild(cell(formatMs(req.first_seen_ms)));
  tr.appendChild(cell(formatMs(req.last_seen_ms)));
  tr.appendChild(cell(req.state === "waiting" ? "unanswered too long" : "pending"));
  tbody.appendChild(tr);
  var status = document.getElementById("live-status");
  if (status) status.textContent = "New request from " + req.watcher + ".";
}

(function () {
  var form = document.getElementById("pending-form");
  if (!form || !window.EventSource) return;
  var source = new EventSource(form.getAttribute("data-events"));
  source.addEventListener("pending", function (e) {
    try { addPending(JSON.parse(e.data)); } catch (err) { /* malformed event: ignore */ }
  });
  source.addEventListener("reload", function () { window.location.reload(); });
  source.addEventListener("signed-out", function () {
    source.close();
    window.location.href = "/signin?expired=1";
  });
  // Requests recorded between the page render and this stream's (re)connection
  // would be missed: fetch the list once connected and merge it.
  source.addEventListener("open", function () {
    fetch("/api/v1/me/pending", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { pending: [] }; })
      .then(function (body) { (body.pending || []).forEach(addPending); })
      .catch(function () { /* the stream still delivers new requests */ })
      .then(function () { form.setAttribute("data-live", "1"); });
  });
})();
