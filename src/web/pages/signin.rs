//! Sign in and sign out (Cisco User Options chapter 1). The sign-in form carries
//! a CSRF token bound to a pre-sign-in cookie (double submit), so another site
//! cannot sign a browser in to an account of its choosing.

use axum::extract::{Query, RawForm, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, DOCTYPE};
use serde::Deserialize;

use super::super::session;
use super::super::{auth, client_addr, AppState};
use super::{field_error, CsrfForm, Errors, Form};

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    expired: Option<String>,
    #[serde(default)]
    signed_out: Option<String>,
}

fn render(
    st: &AppState,
    token: &str,
    username: &str,
    errors: &Errors,
    notice: Option<String>,
) -> String {
    let (desc_user, inv_user) = super::described(errors, "username");
    let (desc_pw, inv_pw) = super::described(errors, "password");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign In — User Options" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body.signin {
                main #main {
                    h1 { "User Options" }
                    p { "Manage who can see your availability and send you instant messages." }
                    @if let Some(n) = notice {
                        p.notice role="status" #notice { (n) }
                    }
                    form #signin-form method="post" action="/signin" {
                        input type="hidden" name="csrf" value=(token);
                        div.field {
                            label for="username" { "Username" }
                            input #username type="text" name="username" value=(username) autocomplete="username"
                                placeholder="user@example.com" required
                                aria-describedby=[desc_user] aria-invalid=[inv_user];
                            (field_error(errors, "username"))
                        }
                        div.field {
                            label for="password" { "Password" }
                            input #password type="password" name="password" autocomplete="current-password" required
                                aria-describedby=[desc_pw] aria-invalid=[inv_pw];
                            (field_error(errors, "password"))
                        }
                        div.buttonbar {
                            button #signin type="submit" { "Sign In" }
                        }
                    }
                    p.hint { "You are signed out automatically after "
                        (human_duration(st.config.idle_timeout_s)) " without activity." }
                }
            }
        }
    }
    .into_string()
}

/// `GET /signin`.
pub async fn page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let token = session::cookie(&headers, session::SIGNIN_COOKIE)
        .filter(|t| t.len() == 64)
        .unwrap_or_else(session::random_token);
    let notice = if q.expired.is_some() {
        Some(format!(
            "You were signed out after {} without activity. Sign in again.",
            human_duration(st.config.idle_timeout_s)
        ))
    } else if q.signed_out.is_some() {
        Some("You have signed out.".to_string())
    } else {
        None
    };
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(session::SIGNIN_COOKIE, &token, st.config.cookie_secure),
        )],
        Html(render(&st, &token, "", &Errors::default(), notice)),
    )
        .into_response()
}

fn human_duration(secs: u64) -> String {
    if secs % 60 == 0 && secs >= 60 {
        format!("{} minutes", secs / 60)
    } else {
        format!("{secs} seconds")
    }
}

/// `POST /signin`. There is no session yet, so this form is not a [`CsrfForm`]:
/// its token must match the pre-sign-in cookie instead.
pub async fn submit(
    State(st): State<AppState>,
    ext: Extensions,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let form = Form::parse(&body);
    let cookie = session::cookie(&headers, session::SIGNIN_COOKIE).unwrap_or_default();
    if cookie.is_empty() || !session::same_secret(form.get("csrf"), &cookie) {
        return (StatusCode::FORBIDDEN, Html("<p>Refused: the sign-in form is out of date. <a href=\"/signin\">Reload it</a>.</p>"))
            .into_response();
    }
    let username = form.get("username");
    match auth::sign_in(&st, username, form.get("password"), &client_addr(&ext)).await {
        Ok(info) => {
            let mut resp = Redirect::to("/privacy").into_response();
            let h = resp.headers_mut();
            for c in [
                session::set_cookie(session::COOKIE, &info.id, st.config.cookie_secure),
                session::clear_cookie(session::SIGNIN_COOKIE, st.config.cookie_secure),
            ] {
                if let Ok(v) = c.parse() {
                    h.append(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(e) => {
            let field = if e.status == StatusCode::TOO_MANY_REQUESTS {
                "username"
            } else {
                "password"
            };
            let errors = Errors::one(field, e.error.clone());
            (
                e.status,
                Html(render(&st, &cookie, username, &errors, None)),
            )
                .into_response()
        }
    }
}

/// `POST /signout` (Cisco: Logout, upper right corner).
pub async fn signout(State(st): State<AppState>, CsrfForm(s, _): CsrfForm) -> Response {
    st.sessions.remove(&s.id);
    let mut resp = Redirect::to("/signin?signed_out=1").into_response();
    if let Ok(v) = session::clear_cookie(session::COOKIE, st.config.cookie_secure).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
