//! The User Options pages, rendered on the server with maud, laid out as the
//! Cisco User Options guide describes them: an icon bar at the top (Alt+1 then
//! Tab), a button bar at the bottom (Alt+2 then Tab), every control labelled, and
//! every refusal shown next to its field with nothing changed.

use axum::extract::{FromRequest, FromRequestParts, RawForm, Request};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use crate::policy::{Aor, Change, UserPolicy};

use super::error::ApiError;
use super::ops;
use super::session::{self, SessionInfo};
use super::{AppState, PageUser};

pub mod assets;
pub mod contacts;
pub mod pending;
pub mod preferences;
pub mod privacy;
pub mod signin;

/// `/`: the Privacy Policies page for a signed-in user.
pub async fn home(_: PageUser) -> Redirect {
    Redirect::to("/privacy")
}

/// A submitted form: repeated names (check boxes) keep every value.
#[derive(Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// Every value of `name`, trimmed, in order (check boxes repeat their name).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// Refusals to show, each next to its field.
#[derive(Default)]
pub struct Errors(Vec<(String, String)>);

impl Errors {
    pub fn one(field: &str, message: impl Into<String>) -> Errors {
        Errors(vec![(field.to_string(), message.into())])
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The API error, attached to the page's field: `map` turns the API field name
    /// into the form field's (`None` keeps it on `fallback`).
    pub fn from_api(
        e: &ApiError,
        fallback: &str,
        map: impl Fn(&str) -> Option<&'static str>,
    ) -> Errors {
        let field = e.field.as_deref().and_then(map).unwrap_or(fallback);
        Errors::one(field, e.error.clone())
    }
}

/// The error paragraph for `field`, referenced by the control's `aria-describedby`.
pub fn field_error(errors: &Errors, field: &str) -> Markup {
    html! {
        @if let Some(msg) = errors.get(field) {
            p.error id={ "err-" (field) } role="alert" { (msg) }
        }
    }
}

/// `aria-describedby` / `aria-invalid` values for a control.
pub fn described(errors: &Errors, field: &str) -> (Option<String>, Option<&'static str>) {
    if errors.get(field).is_some() {
        (Some(format!("err-{field}")), Some("true"))
    } else {
        (None, None)
    }
}

/// A form posted by the signed-in user, its `csrf` field already checked
/// against the session's token (a page cannot send `X-CSRF-Token`, so the token
/// travels in a hidden field). Without a session the browser goes to sign in, as
/// with [`PageUser`]; with a missing or stale token the answer is the 403 page
/// and the handler never runs, so nothing is changed.
pub struct CsrfForm(pub SessionInfo, pub Form);

impl FromRequest<AppState> for CsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let PageUser(s) = PageUser::from_request_parts(&mut parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        let RawForm(body) = RawForm::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = Form::parse(&body);
        if !session::same_secret(form.get("csrf"), &s.csrf) {
            return Err((StatusCode::FORBIDDEN, Html("<p>Refused: the form's security token is missing or out of date. Reload the page and try again.</p>"))
                .into_response());
        }
        Ok(CsrfForm(s, form))
    }
}

/// `?done=`: after a successful POST the browser is redirected (so a reload does
/// not post again) and the page names what was done in its notice.
#[derive(Deserialize)]
pub struct Done {
    #[serde(default)]
    pub done: Option<String>,
}

/// Delete Selected, on either list: one change per checked `selected` box, made
/// by `change_for` (which refuses a value that is not on the list), all applied
/// in one transaction so a refusal deletes none of them.
pub async fn delete_checked(
    st: &AppState,
    owner: &Aor,
    form: &Form,
    none_checked: &str,
    change_for: impl Fn(&UserPolicy, &str) -> Result<Change, ApiError>,
) -> Result<(), ApiError> {
    let selected = form.all("selected");
    if selected.is_empty() {
        return Err(ApiError::invalid("selected", none_checked));
    }
    let p = ops::policy(st, owner)?;
    let changes = selected
        .iter()
        .map(|value| change_for(&p, value))
        .collect::<Result<Vec<_>, _>>()?;
    st.write(move |store| store.apply_all(changes))
        .await
        .map_err(|e| ApiError::from_store(e, Some("selected")))
}

/// One icon of the icon bar: a button submitting a form, or a link to a field.
pub enum Icon<'a> {
    Submit {
        label: &'a str,
        glyph: &'a str,
        form: &'a str,
        name: Option<&'a str>,
    },
    Link {
        label: &'a str,
        glyph: &'a str,
        href: &'a str,
    },
}

impl<'a> Icon<'a> {
    /// An icon that submits `form` as it is.
    pub fn submit(label: &'a str, glyph: &'a str, form: &'a str) -> Self {
        Icon::Submit {
            label,
            glyph,
            form,
            name: None,
        }
    }
}

/// One button of the bottom button bar.
pub struct Button<'a> {
    pub label: &'a str,
    pub form: &'a str,
    pub id: &'a str,
    pub name: Option<&'a str>,
}

impl<'a> Button<'a> {
    /// A button that submits `form` as it is.
    pub fn submit(label: &'a str, form: &'a str, id: &'a str) -> Self {
        Button {
            label,
            form,
            id,
            name: None,
        }
    }
}

/// The main navigation (User Options menu).
const NAV: [(&str, &str); 4] = [
    ("/privacy", "Privacy Policies"),
    ("/contacts", "Contacts"),
    ("/preferences", "Preferences"),
    ("/pending", "Pending Requests"),
];

/// What a page puts in the common frame.
pub struct Page<'a> {
    pub title: &'a str,
    pub path: &'a str,
    pub icons: Vec<Icon<'a>>,
    pub buttons: Vec<Button<'a>>,
    pub notice: Option<String>,
    pub body: Markup,
}

/// The frame: header with the user and Sign Out (upper right, as Cisco's
/// Logout), navigation, icon bar, content, button bar.
pub fn layout(st: &AppState, s: &SessionInfo, page: Page<'_>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) " — User Options" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body data-idle-timeout=(st.config.idle_timeout_s) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "User Options" }
                    span.who { "Signed in as " strong #user { (s.aor) } }
                    form.signout method="post" action="/signout" {
                        input type="hidden" name="csrf" value=(s.csrf);
                        button #signout type="submit" { "Sign Out" }
                    }
                }
                nav aria-label="User Options" {
                    ul {
                        @for (href, label) in NAV {
                            li { a href=(href) aria-current=[(href == page.path).then_some("page")] { (label) } }
                        }
                    }
                }
                main #main {
                    h1 { (page.title) }
                    div.iconbar role="toolbar" aria-label="Icons (Alt+1, then Tab)" {
                        span #iconbar-start.bar-start tabindex="-1" accesskey="1" aria-label="Icon bar" {}
                        @for icon in &page.icons {
                            @match icon {
                                Icon::Submit { label, glyph, form, name } => {
                                    button.icon type="submit" form=(form) name=[name] value=[name.map(|_| "1")]
                                        title=(label) aria-label=(label) { span aria-hidden="true" { (PreEscaped(glyph)) } }
                                }
                                Icon::Link { label, glyph, href } => {
                                    a.icon href=(href) title=(label) aria-label=(label) { span aria-hidden="true" { (PreEscaped(glyph)) } }
                                }
                            }
                        }
                    }
                    @if let Some(n) = &page.notice {
                        p.notice role="status" { (n) }
                    }
                    (page.body)
                    div.buttonbar role="toolbar" aria-label="Buttons (Alt+2, then Tab)" {
                        span #buttonbar-start.bar-start tabindex="-1" accesskey="2" aria-label="Button bar" {}
                        @for b in &page.buttons {
                            button #(b.id) type="submit" form=(b.form) name=[b.name] value=[b.name.map(|_| "1")] { (b.label) }
                        }
                    }
                }
            }
        }
    }
}

/// A rendered page with its status (422 when it shows refusals).
pub fn respond(errors: &Errors, markup: Markup) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, Html(markup.into_string())).into_response()
}

/// Glyphs of the icon bar (inline SVG: no external assets).
pub mod glyph {
    pub const SAVE: &str = r#"<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M5 3h11l3 3v13a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm2 2v5h9V5zm5 8a3 3 0 1 0 0 6 3 3 0 0 0 0-6z"/></svg>"#;
    pub const ADD: &str = r#"<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M11 4h2v7h7v2h-7v7h-2v-7H4v-2h7z"/></svg>"#;
    pub const ADD_DOMAIN: &str = r#"<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm6.9 6h-3a15 15 0 0 0-1.3-4A8 8 0 0 1 18.9 8zM12 4a13 13 0 0 1 1.9 4h-3.8A13 13 0 0 1 12 4zM4.3 14a8 8 0 0 1 0-4h3.4a16 16 0 0 0 0 4zm.8 2h3a15 15 0 0 0 1.3 4A8 8 0 0 1 5.1 16zm3-8h-3a8 8 0 0 1 4.3-4 15 15 0 0 0-1.3 4zM12 20a13 13 0 0 1-1.9-4h3.8A13 13 0 0 1 12 20zm2.3-6H9.7a14 14 0 0 1 0-4h4.6a14 14 0 0 1 0 4zm.3 5.9a15 15 0 0 0 1.3-3.9h3a8 8 0 0 1-4.3 3.9zm1.7-5.9a16 16 0 0 0 0-4h3.4a8 8 0 0 1 0 4z"/></svg>"#;
    pub const DELETE: &str = r#"<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M9 3h6l1 1h4v2H4V4h4zm-3 5h12l-1 13H7z"/></svg>"#;
    pub const FIND: &str = r#"<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M10 3a7 7 0 0 1 5.6 11.2l5.1 5.1-1.4 1.4-5.1-5.1A7 7 0 1 1 10 3zm0 2a5 5 0 1 0 0 10 5 5 0 0 0 0-10z"/></svg>"#;
    pub const SELECT_ALL: &str = r#"<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M4 4h16v16H4zm2 2v12h12V6zm3 6 2 2 4-4 1.4 1.4L11 16.8 7.6 13.4z"/></svg>"#;
    pub const OK: &str = r#"<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z"/></svg>"#;
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC` (the page's JavaScript formats
/// pushed rows the same way).
pub fn format_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_milliseconds_as_utc() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_ms(1_795_310_435_000), "2026-11-22 01:20:35 UTC");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn form_keeps_repeated_fields() {
        let f = Form::parse(b"sel=a%40x.org&sel=b%40x.org&csrf=t");
        assert_eq!(f.all("sel"), vec!["a@x.org", "b@x.org"]);
        assert_eq!(f.get("csrf"), "t");
        assert_eq!(f.get("none"), "");
    }
}
