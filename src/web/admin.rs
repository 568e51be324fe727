//! The admin API (`/api/v1/admin/...`, bearer token): org settings, the whole
//! policy document, raw changes for the `policy` command line, explain, and
//! accounts. Contract: `ADMIN_API.md`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::policy::{Aor, Change, Org, PolicyDocument};

use super::accounts::{self, AccountError};
use super::error::{ApiError, ApiJson, ApiPath};
use super::ops::parse_aor;
use super::{Admin, AppState};

/// `POST /api/v1/admin/changes`: applied together with `Store::apply_all`.
pub async fn changes(
    State(st): State<AppState>,
    _: Admin,
    ApiJson(changes): ApiJson<Vec<Change>>,
) -> Result<Response, ApiError> {
    let n = changes.len();
    st.write(move |s| s.apply_all(changes))
        .await
        .map_err(|e| ApiError::from_store(e, None))?;
    tracing::info!(changes = n, "admin API applied changes");
    Ok(Json(json!({ "applied": n })).into_response())
}

/// `GET /api/v1/admin/explain?owner=AOR&watcher=AOR`: the decision and the rule
/// that fired.
pub async fn explain(
    State(st): State<AppState>,
    _: Admin,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let get = |k: &str| {
        q.get(k)
            .ok_or_else(|| ApiError::bad_request(format!("missing query parameter `{k}`")).field(k))
    };
    let owner = parse_aor("owner", get("owner")?)?;
    let watcher = parse_aor("watcher", get("watcher")?)?;
    let v = st.store.decide(&owner, &watcher);
    Ok(Json(json!({ "decision": v.decision.as_str(), "rule": v.rule.as_str() })).into_response())
}

/// `GET /api/v1/admin/policy`: the whole policy document.
pub async fn get_policy(State(st): State<AppState>, _: Admin) -> Response {
    Json(st.store.export()).into_response()
}

/// `PUT /api/v1/admin/policy`: replaces the policy set, all or nothing; 422 lists
/// every error with its JSON path (the document is read field by field, so one
/// answer names every mistake).
pub async fn put_policy(
    State(st): State<AppState>,
    _: Admin,
    body: String,
) -> Result<Response, ApiError> {
    let doc = PolicyDocument::from_json(&body).map_err(invalid_document)?;
    let users = doc.users.len();
    st.write(move |s| s.import(doc))
        .await
        .map_err(|e| ApiError::from_store(e, None))?;
    tracing::info!(users, "admin API imported a policy document");
    Ok(Json(json!({ "imported": users })).into_response())
}

fn invalid_document(errors: Vec<crate::policy::ValidationError>) -> ApiError {
    ApiError::from_store(crate::store::StoreError::Invalid(errors), None)
}

/// `GET /api/v1/admin/org`.
pub async fn get_org(State(st): State<AppState>, _: Admin) -> Response {
    Json(&*st.store.org()).into_response()
}

/// `PUT /api/v1/admin/org`.
pub async fn put_org(
    State(st): State<AppState>,
    _: Admin,
    ApiJson(org): ApiJson<Org>,
) -> Result<Response, ApiError> {
    st.write(move |s| s.apply(Change::SetOrg { org }))
        .await
        .map_err(|e| ApiError::from_store(e, None))?;
    Ok(Json(&*st.store.org()).into_response())
}

fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::Exists(_) => ApiError::conflict(e.to_string()).field("aor"),
        AccountError::NotFound(_) => ApiError::not_found(e.to_string()).field("aor"),
        AccountError::BadPassword => ApiError::invalid("password", e.to_string()),
        AccountError::UnknownClass(_) => ApiError::invalid("class", e.to_string()),
        AccountError::Hash(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        AccountError::Store(s) => ApiError::from_store(s, Some("aor")),
    }
}

/// `GET /api/v1/admin/users`: every owner with a policy or an account.
pub async fn list_users(State(st): State<AppState>, _: Admin) -> Response {
    let mut rows: BTreeMap<String, (Option<String>, bool)> = BTreeMap::new();
    for u in st.store.users() {
        rows.insert(u.aor.to_string(), (Some(u.class.clone()), false));
    }
    for a in st.store.accounts() {
        rows.entry(a.to_string()).or_insert((None, false)).1 = true;
    }
    let users: Vec<_> = rows
        .into_iter()
        .map(|(aor, (class, account))| json!({ "aor": aor, "class": class, "account": account }))
        .collect();
    Json(json!({ "users": users })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    aor: String,
    password: String,
    #[serde(default)]
    class: Option<String>,
}

/// `POST /api/v1/admin/users`: account plus (if absent) a default policy.
pub async fn add_user(
    State(st): State<AppState>,
    _: Admin,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<Response, ApiError> {
    let aor = parse_aor("aor", &body.aor)?;
    let a = aor.clone();
    st.write(move |s| accounts::add_user(s, &a, &body.password, body.class.as_deref()))
        .await
        .map_err(account_error)?;
    tracing::info!(user = %aor, "admin API added an account");
    Ok((StatusCode::CREATED, Json(json!({ "aor": aor }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

/// `PUT /api/v1/admin/users/{aor}` `{"password"}`: `user passwd` through the API;
/// the user's sessions end.
pub async fn set_password(
    State(st): State<AppState>,
    _: Admin,
    ApiPath(aor): ApiPath<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    let aor: Aor = parse_aor("aor", &aor)?;
    let a = aor.clone();
    st.write(move |s| accounts::set_password(s, &a, &body.password))
        .await
        .map_err(account_error)?;
    st.sessions.remove_user(&aor);
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/admin/users/{aor}`: account, policy and sessions.
pub async fn remove_user(
    State(st): State<AppState>,
    _: Admin,
    ApiPath(aor): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let aor: Aor = parse_aor("aor", &aor)?;
    let a = aor.clone();
    st.write(move |s| accounts::remove_user(s, &a))
        .await
        .map_err(account_error)?;
    st.sessions.remove_user(&aor);
    tracing::info!(user = %aor, "admin API removed a user");
    Ok(StatusCode::NO_CONTENT)
}
