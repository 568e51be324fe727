//! Preferences (Cisco User Options, "Configuring the Contact List Refresh
//! Timer"): Phone Display Refresh Interval, 7–3600 seconds, default 30.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::super::ops;
use super::super::session::SessionInfo;
use super::super::{ApiError, AppState, PageUser};
use super::{
    described, field_error, glyph, layout, respond, Button, CsrfForm, Done, Errors, Icon, Page,
};

fn show(
    st: &AppState,
    s: &SessionInfo,
    typed: Option<&str>,
    errors: &Errors,
    notice: Option<String>,
) -> Response {
    let p = match ops::policy(st, &s.aor) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let current = p.refresh_interval_s.to_string();
    let value = typed.unwrap_or(&current);
    let (d, i) = described(errors, "refresh_interval_s");
    let describedby = d
        .map(|d| format!("refresh-hint {d}"))
        .unwrap_or_else(|| "refresh-hint".to_string());
    // `novalidate`: the server's reason is shown next to the field, the same in
    // every browser.
    let body = html! {
        form #preferences-form.section method="post" action="/preferences" novalidate {
            input type="hidden" name="csrf" value=(s.csrf);
            div.field {
                label for="refresh_interval_s" { "Phone Display Refresh Interval (seconds)" }
                input #refresh_interval_s type="number" name="refresh_interval_s" value=(value) min="7" max="3600"
                    inputmode="numeric" aria-describedby=(describedby) aria-invalid=[i];
                p.hint #refresh-hint { "How often your phone's contact list may be refreshed: 7 to 3600 seconds (default 30)." }
                (field_error(errors, "refresh_interval_s"))
            }
        }
    };
    let page = Page {
        title: "Preferences",
        path: "/preferences",
        icons: vec![Icon::submit("Save", glyph::SAVE, "preferences-form")],
        buttons: vec![Button::submit(
            "Save",
            "preferences-form",
            "save-preferences",
        )],
        notice,
        body,
    };
    respond(errors, layout(st, s, page))
}

/// `GET /preferences`.
pub async fn page(
    State(st): State<AppState>,
    PageUser(s): PageUser,
    Query(q): Query<Done>,
) -> Response {
    let notice =
        (q.done.as_deref() == Some("saved")).then(|| "Your preferences are saved.".to_string());
    show(&st, &s, None, &Errors::default(), notice)
}

/// `POST /preferences` (Save).
pub async fn save(State(st): State<AppState>, CsrfForm(s, form): CsrfForm) -> Response {
    let typed = form.get("refresh_interval_s");
    let result = match typed.parse::<u32>() {
        Ok(secs) => ops::set_refresh(&st, &s.aor, secs).await,
        Err(_) => Err(ApiError::invalid(
            "refresh_interval_s",
            "Enter a whole number of seconds from 7 to 3600.",
        )),
    };
    match result {
        Ok(()) => Redirect::to("/preferences?done=saved").into_response(),
        Err(e) => show(
            &st,
            &s,
            Some(typed),
            &Errors::from_api(&e, "refresh_interval_s", |_| None),
            None,
        ),
    }
}
