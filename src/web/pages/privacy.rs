//! Privacy Policies (Cisco User Options chapter 2): the internal and external
//! defaults with Save Defaults; Add User (Allow/Block, local domain, federated
//! domain from the list, or a custom domain); Add Domain; one table of exceptions
//! with check boxes and Delete Selected.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

use crate::policy::{Action, Change, DefaultExternal, DefaultInternal, UserPolicy};

use super::super::ops::{self, ExceptionKind};
use super::super::session::SessionInfo;
use super::super::{ApiError, AppState, PageUser};
use super::{
    delete_checked, described, field_error, glyph, layout, respond, Button, CsrfForm, Done, Errors,
    Form, Icon, Page,
};

fn notice(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "defaults" => "Your default policy is saved.",
            "user" => "The user is added to your exceptions.",
            "domain" => "The domain is added to your exceptions.",
            "deleted" => "The selected exceptions are deleted.",
            _ => return None,
        }
        .to_string(),
    )
}

fn action_radios(prefix: &str, values: &Form) -> Markup {
    let current = values.get(&format!("{prefix}_action"));
    let block = current == "block";
    html! {
        fieldset.inline {
            legend { "Policy" }
            label { input type="radio" name={ (prefix) "_action" } value="allow" checked[!block]; " Allow" }
            label { input type="radio" name={ (prefix) "_action" } value="block" checked[block]; " Block" }
        }
    }
}

fn domain_select(id: &str, name: &str, domains: &[String], selected: &str, label: &str) -> Markup {
    html! {
        label.sr-only for=(id) { (label) }
        select #(id) name=(name) aria-label=(label) {
            @for d in domains {
                option value=(d) selected[d == selected] { (d) }
            }
        }
    }
}

fn render(
    st: &AppState,
    s: &SessionInfo,
    p: &UserPolicy,
    values: &Form,
    errors: &Errors,
    notice: Option<String>,
) -> Markup {
    let org = st.store.org();
    let local: Vec<String> = org.local_domains.iter().map(|d| d.to_string()).collect();
    let federated: Vec<String> = org
        .federated_domains
        .iter()
        .map(|d| d.to_string())
        .collect();
    let user_kind = match values.get("user_domain_kind") {
        "" if local.is_empty() => "custom",
        "" => "local",
        k => k,
    };
    let domain_kind = match values.get("domain_kind") {
        "" if federated.is_empty() => "custom",
        "" => "federated",
        k => k,
    };
    let (d_int, i_int) = described(errors, "internal");
    let (d_ext, i_ext) = described(errors, "external");
    let (d_uid, i_uid) = described(errors, "userid");
    let (d_ucd, i_ucd) = described(errors, "user_custom_domain");
    let (d_dcd, i_dcd) = described(errors, "domain_custom");
    let body = html! {
        form #defaults-form.section method="post" action="/privacy/defaults" {
            h2 { "Default policy" }
            input type="hidden" name="csrf" value=(s.csrf);
            div.field {
                label for="internal" { "Internal users (within your company/organization):" }
                select #internal name="internal" aria-describedby=[d_int] aria-invalid=[i_int] {
                    option value="allow" selected[p.default_internal == DefaultInternal::Allow] { "Allow" }
                    option value="block" selected[p.default_internal == DefaultInternal::Block] { "Block" }
                }
                (field_error(errors, "internal"))
            }
            div.field {
                label for="external" { "External users (all others):" }
                select #external name="external" aria-describedby=[d_ext] aria-invalid=[i_ext] {
                    option value="block" selected[p.default_external == DefaultExternal::Block] { "Block" }
                    option value="ask" selected[p.default_external == DefaultExternal::Ask] { "Ask Me" }
                }
                (field_error(errors, "external"))
            }
            p.hint { "Allow is offered for internal users only. People on your contact list can always see you unless you block them below." }
        }
        form #add-user-form.section method="post" action="/privacy/users" {
            h2 #add-user { "Add User" }
            input type="hidden" name="csrf" value=(s.csrf);
            (action_radios("user", values))
            div.field {
                label for="userid" { "User ID" }
                input #userid type="text" name="userid" value=(values.get("userid")) placeholder="userid or userid@domain"
                    autocomplete="off" aria-describedby=[d_uid] aria-invalid=[i_uid];
                (field_error(errors, "userid"))
            }
            fieldset.domains {
                legend { "Domain" }
                @if !local.is_empty() {
                    div.choice {
                        label { input type="radio" name="user_domain_kind" value="local" checked[user_kind == "local"]; " Local domain" }
                        (domain_select("user_local_domain", "user_local_domain", &local, values.get("user_local_domain"), "Local domain"))
                    }
                }
                @if !federated.is_empty() {
                    div.choice {
                        label { input type="radio" name="user_domain_kind" value="federated" checked[user_kind == "federated"]; " Federated domain" }
                        (domain_select("user_federated_domain", "user_federated_domain", &federated, values.get("user_federated_domain"), "Federated domain"))
                    }
                }
                div.choice {
                    label { input type="radio" name="user_domain_kind" value="custom" checked[user_kind == "custom"]; " Custom domain" }
                    label.sr-only for="user_custom_domain" { "Custom domain" }
                    input #user_custom_domain type="text" name="user_custom_domain" value=(values.get("user_custom_domain"))
                        placeholder="mycompany.com" aria-describedby=[d_ucd] aria-invalid=[i_ucd];
                }
                (field_error(errors, "user_custom_domain"))
            }
        }
        form #add-domain-form.section method="post" action="/privacy/domains" {
            h2 #add-domain { "Add Domain" }
            input type="hidden" name="csrf" value=(s.csrf);
            (action_radios("domain", values))
            fieldset.domains {
                legend { "Domain" }
                @if !federated.is_empty() {
                    div.choice {
                        label { input type="radio" name="domain_kind" value="federated" checked[domain_kind == "federated"]; " Federated domain" }
                        (domain_select("domain_federated", "domain_federated", &federated, values.get("domain_federated"), "Federated domain to add"))
                    }
                    (field_error(errors, "domain_federated"))
                }
                div.choice {
                    label { input type="radio" name="domain_kind" value="custom" checked[domain_kind == "custom"]; " Custom domain" }
                    label.sr-only for="domain_custom" { "Custom domain to add" }
                    input #domain_custom type="text" name="domain_custom" value=(values.get("domain_custom"))
                        placeholder="mycompany.com" aria-describedby=[d_dcd] aria-invalid=[i_dcd];
                }
                (field_error(errors, "domain_custom"))
            }
        }
        form #exceptions-form.section method="post" action="/privacy/delete" {
            h2 { "Exceptions" }
            input type="hidden" name="csrf" value=(s.csrf);
            (field_error(errors, "selected"))
            div.table-wrap {
                table #exceptions {
                    caption.sr-only { "Users and domains that are exceptions to your default policy" }
                    thead { tr { th scope="col" { span.sr-only { "Select" } } th scope="col" { "Type" } th scope="col" { "User or domain" } th scope="col" { "Policy" } } }
                    tbody {
                        @if p.exceptions.users.is_empty() && p.exceptions.domains.is_empty() {
                            tr { td colspan="4" { "No exceptions: your default policy applies to everyone not on your contact list." } }
                        }
                        @for e in &p.exceptions.users {
                            (exception_row("user", "User", e.aor.as_str(), e.action))
                        }
                        @for e in &p.exceptions.domains {
                            (exception_row("domain", "Domain", e.domain.as_str(), e.action))
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
            title: "Privacy Policies",
            path: "/privacy",
            icons: vec![
                Icon::submit("Save Defaults", glyph::SAVE, "defaults-form"),
                Icon::Link {
                    label: "Add User",
                    glyph: glyph::ADD,
                    href: "#userid",
                },
                Icon::Link {
                    label: "Add Domain",
                    glyph: glyph::ADD_DOMAIN,
                    href: "#domain_custom",
                },
                Icon::submit("Delete Selected", glyph::DELETE, "exceptions-form"),
            ],
            buttons: vec![
                Button::submit("Save Defaults", "defaults-form", "save-defaults"),
                Button::submit("Add User", "add-user-form", "add-user-button"),
                Button::submit("Add Domain", "add-domain-form", "add-domain-button"),
                Button::submit("Delete Selected", "exceptions-form", "delete-selected"),
            ],
            notice,
            body,
        },
    )
}

/// One row of the exceptions table; the check box's value, `kind:value`, is
/// what Delete Selected reads back.
fn exception_row(kind: &str, type_label: &str, value: &str, action: Action) -> Markup {
    let id = format!("sel-{kind}-{value}");
    html! {
        tr {
            td { input type="checkbox" #(id) name="selected" value={ (kind) ":" (value) }
                aria-label={ "Select " (value) }; }
            td { (type_label) }
            td { label for=(id) { (value) } }
            td.policy { (action_label(action)) }
        }
    }
}

fn action_label(a: Action) -> &'static str {
    match a {
        Action::Allow => "Allow",
        Action::Block => "Block",
    }
}

fn page_or_error(
    st: &AppState,
    s: &SessionInfo,
    values: &Form,
    errors: &Errors,
    notice: Option<String>,
) -> Response {
    match ops::policy(st, &s.aor) {
        Ok(p) => respond(errors, render(st, s, &p, values, errors, notice)),
        Err(e) => e.into_response(),
    }
}

/// `GET /privacy`.
pub async fn page(
    State(st): State<AppState>,
    PageUser(s): PageUser,
    Query(q): Query<Done>,
) -> Response {
    page_or_error(
        &st,
        &s,
        &Form::default(),
        &Errors::default(),
        notice(q.done.as_deref()),
    )
}

/// After a form's operation: back to the page with a notice, or the page again
/// with the refusal next to its field (and the values as typed).
fn finish(
    st: &AppState,
    s: &SessionInfo,
    form: &Form,
    result: Result<(), ApiError>,
    done: &str,
    fallback: &str,
    map: impl Fn(&str) -> Option<&'static str>,
) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/privacy?done={done}")).into_response(),
        Err(e) => page_or_error(st, s, form, &Errors::from_api(&e, fallback, map), None),
    }
}

/// `POST /privacy/defaults` (Save Defaults).
pub async fn save_defaults(State(st): State<AppState>, CsrfForm(s, form): CsrfForm) -> Response {
    let result = async {
        let internal = ops::parse_internal(form.get("internal"))?;
        let external = ops::parse_external(form.get("external"))?;
        ops::set_defaults(&st, &s.aor, Some(internal), Some(external)).await
    }
    .await;
    finish(
        &st,
        &s,
        &form,
        result,
        "defaults",
        "internal",
        |f| match f {
            "internal" => Some("internal"),
            "external" => Some("external"),
            _ => None,
        },
    )
}

/// The AoR the Add User form names: `userid@domain`, the domain from the chosen
/// list or the custom field; a User ID that already has a domain is taken as is.
fn user_aor(st: &AppState, form: &Form) -> Result<String, ApiError> {
    let userid = form.get("userid");
    if userid.is_empty() {
        return Err(ApiError::invalid("userid", "Enter the User ID."));
    }
    if userid.contains('@') {
        return Ok(userid.to_string());
    }
    let org = st.store.org();
    let domain = match form.get("user_domain_kind") {
        "local" => form.get("user_local_domain").to_string(),
        "federated" => form.get("user_federated_domain").to_string(),
        _ => form.get("user_custom_domain").to_string(),
    };
    if domain.is_empty() {
        return Err(ApiError::invalid(
            "user_custom_domain",
            "Enter the domain for the user.",
        ));
    }
    let listed = |list: &[crate::policy::Domain]| {
        list.iter()
            .any(|d| d.as_str() == domain.to_ascii_lowercase())
    };
    match form.get("user_domain_kind") {
        "local" if !listed(&org.local_domains) => Err(ApiError::invalid(
            "user_custom_domain",
            "Pick a local domain from the list.",
        )),
        "federated" if !listed(&org.federated_domains) => Err(ApiError::invalid(
            "user_custom_domain",
            "Pick a federated domain from the list.",
        )),
        _ => Ok(format!("{userid}@{domain}")),
    }
}

/// `POST /privacy/users` (Add User).
pub async fn add_user(State(st): State<AppState>, CsrfForm(s, form): CsrfForm) -> Response {
    let result = async {
        let action = ops::parse_action("userid", form.get("user_action"))?;
        let aor = user_aor(&st, &form)?;
        ops::add_exception(&st, &s.aor, ExceptionKind::User, &aor, action)
            .await
            .map(drop)
    }
    .await;
    finish(&st, &s, &form, result, "user", "userid", |f| match f {
        "userid" | "value" => Some("userid"),
        "user_custom_domain" => Some("user_custom_domain"),
        _ => None,
    })
}

/// `POST /privacy/domains` (Add Domain).
pub async fn add_domain(State(st): State<AppState>, CsrfForm(s, form): CsrfForm) -> Response {
    let federated = form.get("domain_kind") == "federated";
    let result = async {
        let action = ops::parse_action("value", form.get("domain_action"))?;
        let domain = if federated {
            form.get("domain_federated")
        } else {
            form.get("domain_custom")
        };
        if domain.is_empty() {
            return Err(ApiError::invalid("value", "Enter the domain."));
        }
        ops::add_exception(&st, &s.aor, ExceptionKind::Domain, domain, action)
            .await
            .map(drop)
    }
    .await;
    let field = if federated {
        "domain_federated"
    } else {
        "domain_custom"
    };
    finish(&st, &s, &form, result, "domain", field, |_| None)
}

/// `POST /privacy/delete` (Delete Selected): every selected exception, or none.
pub async fn delete_selected(State(st): State<AppState>, CsrfForm(s, form): CsrfForm) -> Response {
    let owner = &s.aor;
    let result = delete_checked(
        &st,
        owner,
        &form,
        "Check the exceptions to delete first.",
        |p, item| {
            let (kind, value) = item.split_once(':').unwrap_or(("", ""));
            let change = match kind {
                "user" => {
                    let watcher = ops::parse_aor("selected", value)?;
                    p.user_exception(&watcher)
                        .map(|_| Change::RemoveUserException {
                            owner: owner.clone(),
                            watcher,
                        })
                }
                "domain" => {
                    let domain = ops::parse_domain("selected", value)?;
                    p.domain_exception(domain.as_str())
                        .map(|_| Change::RemoveDomainException {
                            owner: owner.clone(),
                            domain,
                        })
                }
                _ => None,
            };
            change.ok_or_else(|| {
                ApiError::not_found(format!("{value} is not on your exception list"))
                    .field("selected")
            })
        },
    )
    .await;
    finish(&st, &s, &form, result, "deleted", "selected", |_| None)
}
