//! The User Options web interface, the REST and admin API, `/metrics` and
//! `/healthz` (axum, same process, own port).
//!
//! Entry points for the proxy: build an [`AppState`] from the store and the
//! `[web]` config (add the engine's counters with [`AppState::with_metrics`]),
//! then either [`serve`] it on a bound listener or mount [`router`] yourself.
//! The admin token the command line needs is [`AppState::admin_token`].
//!
//! | who | routes |
//! |---|---|
//! | browser | `/signin`, `/signout`, `/privacy` (+ `/defaults`, `/users`, `/domains`, `/delete`), `/contacts` (+ `/add`, `/delete`), `/preferences`, `/pending`, `/assets/*` |
//! | owner (session cookie; `X-CSRF-Token` on writes) | `POST/DELETE /api/v1/session`, `GET /api/v1/me/policy`, `PUT /api/v1/me/defaults`, `POST /api/v1/me/exceptions`, `DELETE /api/v1/me/exceptions/{kind}/{value}`, `GET/POST /api/v1/me/contacts`, `DELETE /api/v1/me/contacts/{aor}`, `PUT /api/v1/me/preferences`, `GET /api/v1/me/pending`, `POST /api/v1/me/pending/answers`, `GET /api/v1/me/pending/events` (SSE) |
//! | admin (`Authorization: Bearer`) | `POST /api/v1/admin/changes`, `GET /api/v1/admin/explain`, `GET/PUT /api/v1/admin/policy`, `GET/PUT /api/v1/admin/org`, `GET/POST /api/v1/admin/users`, `PUT/DELETE /api/v1/admin/users/{aor}` |
//! | operator | `GET /metrics`, `GET /healthz` |
//!
//! Errors are `{"error", "field"}` (plus `errors: [{path, message}]` for
//! validation): 400 malformed, 401 no session or token, 403 wrong CSRF token or
//! admin token, 404 not found, 409 duplicate, 415 not JSON, 422 refused by
//! validation, 429 sign-in locked. A refused call changes nothing.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::store::{Store, StoreError};

pub mod accounts;
mod admin;
mod api;
mod auth;
pub mod config;
pub mod error;
mod events;
pub mod limiter;
pub mod metrics;
pub mod ops;
mod pages;
pub mod session;

pub use config::WebConfig;
pub use error::ApiError;
pub use metrics::{MetricsSource, WebMetrics};
use session::{SessionInfo, Sessions};

/// Everything the handlers share; axum clones it for every request, so each
/// field is shared behind an `Arc`.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<WebConfig>,
    admin_token: Arc<str>,
    pub sessions: Arc<Sessions>,
    limiter: Arc<limiter::SignInLimiter>,
    pub metrics: Arc<WebMetrics>,
    extra_metrics: Option<Arc<dyn MetricsSource>>,
    /// Set to true when [`serve`] is asked to stop, so the endless event streams
    /// (which [`watch`](tokio::sync::watch::Sender::subscribe) it) end and
    /// graceful shutdown does not wait on open pages.
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// The admin token is `config.admin_token`, or a fresh random one when unset
    /// (ADMIN_API: the proxy writes it to `proxy.json` for the command line).
    pub fn new(store: Arc<dyn Store>, config: WebConfig) -> Self {
        let (stop, _) = tokio::sync::watch::channel(false);
        let admin_token: Arc<str> = match &config.admin_token {
            Some(t) if !t.is_empty() => Arc::from(t.as_str()),
            _ => Arc::from(session::random_token().as_str()),
        };
        AppState {
            store,
            sessions: Arc::new(Sessions::new(Duration::from_secs(
                config.idle_timeout_s.max(1),
            ))),
            limiter: Arc::new(limiter::SignInLimiter::new(
                config.signin_max_failures,
                Duration::from_secs(config.signin_lockout_s),
            )),
            config: Arc::new(config),
            admin_token,
            metrics: Arc::new(WebMetrics::default()),
            extra_metrics: None,
            stop: Arc::new(stop),
        }
    }

    /// Adds metrics rendered by someone else (the engine's counters) to `/metrics`.
    pub fn with_metrics(mut self, source: Arc<dyn MetricsSource>) -> Self {
        self.extra_metrics = Some(source);
        self
    }

    /// The bearer token the admin API accepts.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Runs a store write off the async workers (sled flushes to disk before it
    /// acknowledges) and records how long it took.
    pub async fn write<T, E>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let metrics = Arc::clone(&self.metrics);
        tokio::task::spawn_blocking(move || {
            let t0 = Instant::now();
            let r = f(store.as_ref());
            metrics.store_write(t0.elapsed());
            r
        })
        .await
        .unwrap_or_else(|e| Err(E::from(StoreError::Io(format!("store task failed: {e}")))))
    }
}

/// The signed-in user of an API call. State-changing methods must also carry the
/// session's CSRF token in `X-CSRF-Token` (403 otherwise).
pub struct ApiUser(pub SessionInfo);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let id =
            session::cookie(&parts.headers, session::COOKIE).ok_or_else(ApiError::unauthorized)?;
        let info = st.sessions.get(&id, true).map_err(|e| match e {
            session::NoSession::Expired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "signed out after the idle timeout",
            ),
            session::NoSession::Missing => ApiError::unauthorized(),
        })?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !session::same_secret(sent, &info.csrf) {
                return Err(
                    ApiError::forbidden("missing or wrong CSRF token (X-CSRF-Token)")
                        .field("X-CSRF-Token"),
                );
            }
        }
        Ok(ApiUser(info))
    }
}

/// The signed-in user of a page; without a session the browser goes to sign in.
/// A posted form takes [`pages::CsrfForm`] instead, which also checks its token.
pub struct PageUser(pub SessionInfo);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Redirect> {
        let Some(id) = session::cookie(&parts.headers, session::COOKIE) else {
            return Err(Redirect::to("/signin"));
        };
        match st.sessions.get(&id, true) {
            Ok(info) => Ok(PageUser(info)),
            Err(session::NoSession::Expired) => Err(Redirect::to("/signin?expired=1")),
            Err(session::NoSession::Missing) => Err(Redirect::to("/signin")),
        }
    }
}

/// The admin API's caller: `Authorization: Bearer <web.admin_token>`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(token) = auth.and_then(|a| a.strip_prefix("Bearer ")) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "admin API: send Authorization: Bearer <token>",
            ));
        };
        if session::same_secret(token.trim(), st.admin_token()) {
            Ok(Admin)
        } else {
            Err(ApiError::forbidden("admin API: wrong token"))
        }
    }
}

/// The client's address (for per-address sign-in limits), when served with
/// connect info.
pub fn client_addr(ext: &axum::http::Extensions) -> String {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Counts every routed request by route template, method and status.
async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    st.metrics.http_request(
        route.as_deref().unwrap_or("unmatched"),
        &method,
        resp.status().as_u16(),
    );
    resp
}

/// Headers on every answer: pages and API carry personal data (never cached) and
/// must not be framed or content-sniffed; scripts and styles only from here.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with("/assets/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn metrics_page(State(st): State<AppState>) -> Response {
    let text = st
        .metrics
        .render(st.sessions.len(), st.extra_metrics.as_deref());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// Every route: pages, assets, the user API, the admin API, `/metrics`, `/healthz`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route(
            "/signin",
            get(pages::signin::page).post(pages::signin::submit),
        )
        .route("/signout", post(pages::signin::signout))
        .route("/privacy", get(pages::privacy::page))
        .route("/privacy/defaults", post(pages::privacy::save_defaults))
        .route("/privacy/users", post(pages::privacy::add_user))
        .route("/privacy/domains", post(pages::privacy::add_domain))
        .route("/privacy/delete", post(pages::privacy::delete_selected))
        .route("/contacts", get(pages::contacts::page))
        .route("/contacts/add", post(pages::contacts::add))
        .route("/contacts/delete", post(pages::contacts::delete_selected))
        .route(
            "/preferences",
            get(pages::preferences::page).post(pages::preferences::save),
        )
        .route(
            "/pending",
            get(pages::pending::page).post(pages::pending::answer),
        )
        .route("/assets/app.css", get(pages::assets::css))
        .route("/assets/app.js", get(pages::assets::js))
        .route("/api/v1/session", post(api::sign_in).delete(api::sign_out))
        .route("/api/v1/me/policy", get(api::my_policy))
        .route("/api/v1/me/defaults", put(api::put_defaults))
        .route("/api/v1/me/exceptions", post(api::add_exception))
        .route(
            "/api/v1/me/exceptions/{kind}/{value}",
            delete(api::remove_exception),
        )
        .route(
            "/api/v1/me/contacts",
            get(api::contacts).post(api::add_contact),
        )
        .route("/api/v1/me/contacts/{aor}", delete(api::remove_contact))
        .route("/api/v1/me/preferences", put(api::put_preferences))
        .route("/api/v1/me/pending", get(api::pending))
        .route("/api/v1/me/pending/answers", post(api::answer))
        .route("/api/v1/me/pending/events", get(events::pending_events))
        .route("/api/v1/admin/changes", post(admin::changes))
        .route("/api/v1/admin/explain", get(admin::explain))
        .route(
            "/api/v1/admin/policy",
            get(admin::get_policy).put(admin::put_policy),
        )
        .route("/api/v1/admin/org", get(admin::get_org).put(admin::put_org))
        .route(
            "/api/v1/admin/users",
            get(admin::list_users).post(admin::add_user),
        )
        .route(
            "/api/v1/admin/users/{aor}",
            delete(admin::remove_user).put(admin::set_password),
        )
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(|| async { ApiError::not_found("no such page or endpoint") })
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes; client addresses
/// are kept for the per-address sign-in limit.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "User Options and API listening");
    let stop = Arc::clone(&state.stop);
    let shutdown = async move {
        shutdown.await;
        stop.send_replace(true);
    };
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
