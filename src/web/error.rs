//! The API's error answer, `{"error": "...", "field": "..."}`, and the JSON body
//! extractor that turns a malformed body into one.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

use crate::policy::ValidationError;
use crate::store::StoreError;

/// A refused API call. Nothing was changed when one of these is returned.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
    /// Every validation error (document imports report them all, with JSON paths).
    pub errors: Vec<ValidationError>,
    /// Seconds until a locked sign-in may be retried (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: None,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, error)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "sign in first")
    }

    pub fn forbidden(error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, error)
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, error)
    }

    pub fn conflict(error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, error)
    }

    /// 422: the value is well-formed JSON but not acceptable.
    pub fn invalid(field: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error).field(field)
    }

    /// Maps a store refusal; `field` names the request field the change came from
    /// (the store's own path is kept in `errors`).
    pub fn from_store(e: StoreError, field: Option<&str>) -> Self {
        match e {
            StoreError::Invalid(errors) => {
                let message = errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                let field = field
                    .map(str::to_string)
                    .or_else(|| errors.first().map(|e| e.path.clone()));
                ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    error: if message.is_empty() {
                        "invalid".to_string()
                    } else {
                        message
                    },
                    field,
                    errors,
                    retry_after: None,
                }
            }
            StoreError::NotFound(what) => {
                let mut err = ApiError::not_found(format!("not found: {what}"));
                err.field = field.map(str::to_string);
                err
            }
            other => {
                tracing::error!(error = %other, "store failure behind an API call");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage failure; nothing was changed",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.error, "field": self.field });
        if !self.errors.is_empty() {
            body["errors"] = serde_json::to_value(&self.errors).unwrap_or_default();
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// `Json<T>` whose rejection is an [`ApiError`] (400 for syntax, 415 for a
/// missing content type, 422 for wrong fields), so every API error has one shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// `Path<T>` whose rejection (bad percent-encoding, wrong type) is an [`ApiError`].
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}
