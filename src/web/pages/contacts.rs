//! Contacts (Cisco User Options chapter 3): Add New (contact id, a domain from
//! the list or a custom one, alternate name), Find, Select All, Delete Selected,
//! and the class's contact limit with how much of it is used.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use crate::policy::{Change, UserPolicy};

use super::super::ops;
use super::super::session::SessionInfo;
use super::super::{ApiError, AppState, PageUser};
use super::{
    delete_checked, described, field_error, glyph, layout, respond, Button, CsrfForm, Errors, Form,
    Icon, Page,
};

#[derive(Deserialize)]
pub struct ContactsQuery {
    #[serde(default)]
    find: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// What the page shows besides the owner's policy: the Add New values as typed
/// and their refusals, the Find text, whether Select All checked every box.
#[derive(Default)]
struct View {
    values: Form,
    errors: Errors,
    find: String,
    all_checked: bool,
    notice: Option<String>,
}

fn render(st: &AppState, s: &SessionInfo, p: &UserPolicy, v: &View) -> Markup {
    let org = st.store.org();
    let limit = org.class(&p.class).contact_limit;
    let domains: Vec<String> = org
        .local_domains
        .iter()
        .chain(org.federated_domains.iter())
        .map(|d| d.to_string())
        .collect();
    let kind = match v.values.get("domain_kind") {
        "" if domains.is_empty() => "custom",
        "" => "list",
        k => k,
    };
    let needle = v.find.to_lowercase();
    let shown: Vec<_> = p
        .contacts
        .iter()
        .filter(|c| {
            needle.is_empty()
                || c.aor.as_str().to_lowercase().contains(&needle)
                || c.name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&needle))
        })
        .collect();
    let (d_c, i_c) = described(&v.errors, "contact");
    let (d_dc, i_dc) = described(&v.errors, "domain_custom");
    let (d_n, i_n) = described(&v.errors, "alt_name");
    let body = html! {
        p #contact-usage.usage { "Contacts used: " strong { (p.contacts.len()) } " of " strong { (limit) } }
        form #add-contact-form.section method="post" action="/contacts/add" {
            h2 #add-new { "Add New" }
            input type="hidden" name="csrf" value=(s.csrf);
            div.field {
                label for="contact" { "Contact" }
                input #contact type="text" name="contact" value=(v.values.get("contact")) placeholder="userid"
                    autocomplete="off" aria-describedby=[d_c] aria-invalid=[i_c];
                (field_error(&v.errors, "contact"))
            }
            fieldset.domains {
                legend { "Domain" }
                @if !domains.is_empty() {
                    div.choice {
                        label { input type="radio" name="domain_kind" value="list" checked[kind == "list"]; " Select from domain list" }
                        label.sr-only for="domain_list" { "Domain from the list" }
                        select #domain_list name="domain_list" {
                            @for d in &domains {
                                option value=(d) selected[d == v.values.get("domain_list")] { (d) }
                            }
                        }
                    }
                }
                div.choice {
                    label { input type="radio" name="domain_kind" value="custom" checked[kind == "custom"]; " Enter custom domain" }
                    label.sr-only for="domain_custom" { "Custom domain" }
                    input #domain_custom type="text" name="domain_custom" value=(v.values.get("domain_custom"))
                        placeholder="mycompany.com" aria-describedby=[d_dc] aria-invalid=[i_dc];
                }
                (field_error(&v.errors, "domain_custom"))
            }
            div.field {
                label for="alt_name" { "Alternate Name (optional)" }
                input #alt_name type="text" name="alt_name" value=(v.values.get("alt_name")) maxlength="128"
                    aria-describedby=[d_n] aria-invalid=[i_n];
                (field_error(&v.errors, "alt_name"))
            }
        }
        form #find-form.section method="get" action="/contacts" role="search" {
            h2 { "Find" }
            div.field {
                label for="find" { "Contact or name contains" }
                input #find type="search" name="find" value=(v.find);
            }
        }
        form #contacts-form.section method="post" action="/contacts/delete" {
            h2 { "Your contacts" }
            input type="hidden" name="csrf" value=(s.csrf);
            (field_error(&v.errors, "selected"))
            div.table-wrap {
                table #contacts {
                    caption.sr-only { "Your contact list" }
                    thead { tr { th scope="col" { span.sr-only { "Select" } } th scope="col" { "Contact" } th scope="col" { "Alternate name" } th scope="col" { "Added" } } }
                    tbody {
                        @if shown.is_empty() {
                            tr { td colspan="4" { @if p.contacts.is_empty() { "Your contact list is empty." } @else { "No contact matches." } } }
                        }
                        @for c in &shown {
                            @let id = format!("sel-{}", c.aor);
                            tr {
                                td { input type="checkbox" #(id) name="selected" value=(c.aor) checked[v.all_checked]
                                    aria-label={ "Select " (c.aor) }; }
                                td { label for=(id) { (c.aor) } }
                                td { (c.name.as_deref().unwrap_or("")) }
                                td { @if c.learned { "learned from your phone" } @else { "by you" } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(
        st,
        s,
        Page {
            title: "Contacts",
            path: "/contacts",
            icons: vec![
                Icon::Link {
                    label: "Add New",
                    glyph: glyph::ADD,
                    href: "#contact",
                },
                Icon::submit("Find", glyph::FIND, "find-form"),
                Icon::Submit {
                    label: "Select All",
                    glyph: glyph::SELECT_ALL,
                    form: "contacts-form",
                    name: Some("select_all"),
                },
                Icon::submit("Delete Selected", glyph::DELETE, "contacts-form"),
            ],
            buttons: vec![
                Button::submit("Save", "add-contact-form", "save-contact"),
                Button::submit("Find", "find-form", "find-button"),
                Button {
                    label: "Select All",
                    form: "contacts-form",
                    id: "select-all",
                    name: Some("select_all"),
                },
                Button::submit("Delete Selected", "contacts-form", "delete-selected"),
            ],
            notice: v.notice.clone(),
            body,
        },
    )
}

fn show(st: &AppState, s: &SessionInfo, v: View) -> Response {
    match ops::policy(st, &s.aor) {
        Ok(p) => respond(&v.errors, render(st, s, &p, &v)),
        Err(e) => e.into_response(),
    }
}

/// `GET /contacts` (Find filters with `?find=`).
pub async fn page(
    State(st): State<AppState>,
    PageUser(s): PageUser,
    Query(q): Query<ContactsQuery>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("added") => Some("The contact is saved.".to_string()),
        Some("deleted") => Some("The selected contacts are deleted.".to_string()),
        _ => None,
    };
    let find = q.find.unwrap_or_default().trim().to_string();
    show(
        &st,
        &s,
        View {
            find,
            notice,
            ..View::default()
        },
    )
}

/// The AoR the Add New form names.
fn contact_aor(form: &Form) -> Result<String, ApiError> {
    let id = form.get("contact");
    if id.is_empty() {
        return Err(ApiError::invalid("contact", "Enter the contact's user id."));
    }
    if id.contains('@') {
        return Ok(id.to_string());
    }
    let domain = if form.get("domain_kind") == "list" {
        form.get("domain_list")
    } else {
        form.get("domain_custom")
    };
    if domain.is_empty() {
        return Err(ApiError::invalid(
            "domain_custom",
            "Enter the custom domain, or pick one from the list.",
        ));
    }
    Ok(format!("{id}@{domain}"))
}

/// `POST /contacts/add` (Add New, Save).
pub async fn add(State(st): State<AppState>, CsrfForm(s, form): CsrfForm) -> Response {
    let result = async {
        let aor = contact_aor(&form)?;
        let name = Some(form.get("alt_name").to_string());
        ops::add_contact(&st, &s.aor, &aor, name).await.map(drop)
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/contacts?done=added").into_response(),
        Err(e) => {
            let errors = Errors::from_api(&e, "contact", |f| match f {
                "aor" | "contact" => Some("contact"),
                "name" => Some("alt_name"),
                "domain_custom" => Some("domain_custom"),
                _ => None,
            });
            show(
                &st,
                &s,
                View {
                    values: form,
                    errors,
                    ..View::default()
                },
            )
        }
    }
}

/// `POST /contacts/delete` (Delete Selected; with `select_all`, Select All
/// checks every box and deletes nothing).
pub async fn delete_selected(State(st): State<AppState>, CsrfForm(s, form): CsrfForm) -> Response {
    if !form.get("select_all").is_empty() {
        let all_checked = View {
            all_checked: true,
            ..View::default()
        };
        return show(&st, &s, all_checked);
    }
    let owner = &s.aor;
    let result = delete_checked(
        &st,
        owner,
        &form,
        "Check the contacts to delete first.",
        |p, raw| {
            let contact = ops::parse_aor("selected", raw)?;
            if !p.has_contact(&contact) {
                return Err(
                    ApiError::not_found(format!("{contact} is not a contact")).field("selected")
                );
            }
            Ok(Change::RemoveContact {
                owner: owner.clone(),
                contact,
            })
        },
    )
    .await;
    match result {
        Ok(()) => Redirect::to("/contacts?done=deleted").into_response(),
        Err(e) => {
            let errors = Errors::from_api(&e, "selected", |_| None);
            show(
                &st,
                &s,
                View {
                    errors,
                    ..View::default()
                },
            )
        }
    }
}
