//! The REST JSON API for owners (`/api/v1/session`, `/api/v1/me/...`): the same
//! operations as the pages, under the same session and CSRF rules.

use axum::extract::State;
use axum::http::{header, Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiJson, ApiPath};
use super::ops::{self, ExceptionKind};
use super::session;
use super::{auth, client_addr, ApiUser, AppState};

#[derive(Deserialize)]
pub struct SignIn {
    username: String,
    password: String,
}

/// `POST /api/v1/session`: sets the session cookie, answers the CSRF token.
pub async fn sign_in(
    State(st): State<AppState>,
    ext: Extensions,
    ApiJson(body): ApiJson<SignIn>,
) -> Response {
    match auth::sign_in(&st, &body.username, &body.password, &client_addr(&ext)).await {
        Ok(info) => (
            [(
                header::SET_COOKIE,
                session::set_cookie(session::COOKIE, &info.id, st.config.cookie_secure),
            )],
            Json(json!({ "csrf_token": info.csrf, "user": info.aor })),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /api/v1/session`.
pub async fn sign_out(State(st): State<AppState>, ApiUser(s): ApiUser) -> Response {
    st.sessions.remove(&s.id);
    (
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            session::clear_cookie(session::COOKIE, st.config.cookie_secure),
        )],
    )
        .into_response()
}

/// `GET /api/v1/me/policy`: this owner's entry in the policy document format.
pub async fn my_policy(
    State(st): State<AppState>,
    ApiUser(s): ApiUser,
) -> Result<Response, ApiError> {
    let p = ops::policy(&st, &s.aor)?;
    Ok(Json(&*p).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    internal: Option<String>,
    external: Option<String>,
}

/// `PUT /api/v1/me/defaults`.
pub async fn put_defaults(
    State(st): State<AppState>,
    ApiUser(s): ApiUser,
    ApiJson(body): ApiJson<Defaults>,
) -> Result<Response, ApiError> {
    let internal = body
        .internal
        .as_deref()
        .map(ops::parse_internal)
        .transpose()?;
    let external = body
        .external
        .as_deref()
        .map(ops::parse_external)
        .transpose()?;
    ops::set_defaults(&st, &s.aor, internal, external).await?;
    let p = ops::policy(&st, &s.aor)?;
    Ok(
        Json(json!({ "internal": p.default_internal, "external": p.default_external }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewException {
    kind: String,
    value: String,
    action: String,
}

/// `POST /api/v1/me/exceptions`.
pub async fn add_exception(
    State(st): State<AppState>,
    ApiUser(s): ApiUser,
    ApiJson(body): ApiJson<NewException>,
) -> Result<Response, ApiError> {
    let kind = ExceptionKind::parse(&body.kind)?;
    let action = ops::parse_action("action", &body.action)?;
    let value = ops::add_exception(&st, &s.aor, kind, &body.value, action).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "kind": body.kind, "value": value, "action": action })),
    )
        .into_response())
}

/// `DELETE /api/v1/me/exceptions/{kind}/{value}`.
pub async fn remove_exception(
    State(st): State<AppState>,
    ApiUser(s): ApiUser,
    ApiPath((kind, value)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let kind = ExceptionKind::parse(&kind)?;
    ops::remove_exception(&st, &s.aor, kind, &value).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me/contacts`: the list with the class's limit and how many are used.
pub async fn contacts(
    State(st): State<AppState>,
    ApiUser(s): ApiUser,
) -> Result<Response, ApiError> {
    let p = ops::policy(&st, &s.aor)?;
    let limit = st.store.org().class(&p.class).contact_limit;
    Ok(
        Json(json!({ "contacts": p.contacts, "limit": limit, "used": p.contacts.len() }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    aor: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/v1/me/contacts`.
pub async fn add_contact(
    State(st): State<AppState>,
    ApiUser(s): ApiUser,
    ApiJson(body): ApiJson<NewContact>,
) -> Result<Response, ApiError> {
    let entry = ops::add_contact(&st, &s.aor, &body.aor, body.name).await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

/// `DELETE /api/v1/me/contacts/{aor}`.
pub async fn remove_contact(
    State(st): State<AppState>,
    ApiUser(s): ApiUser,
    ApiPath(aor): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    ops::remove_contact(&st, &s.aor, &aor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    refresh_interval_s: serde_json::Value,
}

/// `PUT /api/v1/me/preferences`.
pub async fn put_preferences(
    State(st): State<AppState>,
    ApiUser(s): ApiUser,
    ApiJson(body): ApiJson<Preferences>,
) -> Result<Response, ApiError> {
    let seconds = body
        .refresh_interval_s
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                "refresh_interval_s",
                "a whole number of seconds from 7 to 3600",
            )
        })?;
    ops::set_refresh(&st, &s.aor, seconds).await?;
    Ok(Json(json!({ "refresh_interval_s": seconds })).into_response())
}

/// `GET /api/v1/me/pending`: the watchers waiting for this owner's answer.
pub async fn pending(State(st): State<AppState>, ApiUser(s): ApiUser) -> Response {
    Json(json!({ "pending": ops::pending(&st, &s.aor) })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    block: Vec<String>,
}

/// `POST /api/v1/me/pending/answers`.
pub async fn answer(
    State(st): State<AppState>,
    ApiUser(s): ApiUser,
    ApiJson(body): ApiJson<Answers>,
) -> Result<Response, ApiError> {
    let n = ops::answer(&st, &s.aor, &body.allow, &body.block).await?;
    Ok(Json(json!({ "answered": n })).into_response())
}
