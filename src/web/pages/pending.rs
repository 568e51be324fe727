//! Pending Requests (the ShoreTel approval popup as a page): the watchers waiting
//! for the owner's answer, how and when they asked, a check box each; OK allows
//! the checked and denies the rest. New requests arrive over server-sent events
//! (`/api/v1/me/pending/events`) and are added by `app.js` without a reload.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

use crate::policy::{PendingHow, PendingRequest, PendingState};

use super::super::ops;
use super::super::session::SessionInfo;
use super::super::{AppState, PageUser};
use super::{
    field_error, format_ms, glyph, layout, respond, Button, CsrfForm, Done, Errors, Icon, Page,
};

fn how(h: PendingHow) -> &'static str {
    match h {
        PendingHow::Subscribe => "added you as a contact",
        PendingHow::Message => "sent you a message",
        PendingHow::Call => "called you",
    }
}

fn row(r: &PendingRequest) -> Markup {
    let id = format!("allow-{}", r.watcher);
    html! {
        tr data-watcher=(r.watcher) {
            td {
                input type="hidden" name="listed" value=(r.watcher);
                input type="checkbox" #(id) name="allow" value=(r.watcher) aria-label={ "Allow " (r.watcher) };
            }
            td { label for=(id) { (r.watcher) } }
            td { (how(r.how)) }
            td { (format_ms(r.first_seen_ms)) }
            td { (format_ms(r.last_seen_ms)) }
            td { @if r.state == PendingState::Waiting { "unanswered too long" } @else { "pending" } }
        }
    }
}

fn show(st: &AppState, s: &SessionInfo, errors: &Errors, notice: Option<String>) -> Response {
    let pending = ops::pending(st, &s.aor);
    let body = html! {
        p { "These people asked to see your availability and send you instant messages. "
            "Check the ones you allow and select OK; the ones left unchecked are blocked." }
        form #pending-form.section method="post" action="/pending" data-events="/api/v1/me/pending/events" {
            input type="hidden" name="csrf" value=(s.csrf);
            (field_error(errors, "allow"))
            div.table-wrap {
                table #pending {
                    caption.sr-only { "Pending requests" }
                    thead { tr {
                        th scope="col" { "Allow" } th scope="col" { "Watcher" } th scope="col" { "How they asked" }
                        th scope="col" { "First asked" } th scope="col" { "Last asked" } th scope="col" { "State" }
                    } }
                    tbody {
                        @if pending.is_empty() {
                            tr #no-pending { td colspan="6" { "No one is waiting for your answer." } }
                        }
                        @for r in &pending { (row(r)) }
                    }
                }
            }
            p.hint #live-status aria-live="polite" {}
        }
    };
    let page = Page {
        title: "Pending Requests",
        path: "/pending",
        icons: vec![Icon::submit("OK", glyph::OK, "pending-form")],
        buttons: vec![Button::submit("OK", "pending-form", "pending-ok")],
        notice,
        body,
    };
    respond(errors, layout(st, s, page))
}

/// `GET /pending`.
pub async fn page(
    State(st): State<AppState>,
    PageUser(s): PageUser,
    Query(q): Query<Done>,
) -> Response {
    let notice = q.done.map(|n| format!("{n} request(s) answered."));
    show(&st, &s, &Errors::default(), notice)
}

/// `POST /pending` (OK): checked → allow, listed but unchecked → block.
pub async fn answer(State(st): State<AppState>, CsrfForm(s, form): CsrfForm) -> Response {
    let allow = form.all("allow");
    let block: Vec<String> = form
        .all("listed")
        .into_iter()
        .filter(|w| !allow.contains(w))
        .collect();
    match ops::answer(&st, &s.aor, &allow, &block).await {
        Ok(n) => Redirect::to(&format!("/pending?done={n}")).into_response(),
        Err(e) => show(&st, &s, &Errors::from_api(&e, "allow", |_| None), None),
    }
}
