//! Errors of the HTTP API: every failure is a JSON body
//! `{"error": CODE, "message": TEXT}` with a 4xx or 5xx status that says
//! whose fault it is, and the node keeps serving.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: invalid JSON, a wrong field, a bad value.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the configured bound.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The bound.
        limit: usize,
    },
    /// No such route, group, key or task.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method {method} not allowed here")]
    MethodNotAllowed {
        /// The method used.
        method: String,
    },
    /// This node cannot serve the request now; the body may name the leader.
    #[error("{message}")]
    Unavailable {
        /// Why.
        message: String,
        /// The leader's HTTP address, when known.
        leader: Option<String>,
    },
    /// A write that may or may not have been applied (leadership changed
    /// while it was in flight): read to learn its outcome.
    #[error("{0}")]
    OutcomeUnknown(String),
    /// A compare-and-swap or similar precondition failed.
    #[error("{0}")]
    Conflict(String),
    /// The request took longer than its deadline.
    #[error("{0}")]
    Timeout(String),
    /// A bug or an unexpected failure inside the node.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<&'a str>,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::OutcomeUnknown(_) => "outcome_unknown",
            ApiError::Conflict(_) => "conflict",
            ApiError::Timeout(_) => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable { .. } | ApiError::OutcomeUnknown(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let leader = match self {
            ApiError::Unavailable { leader, .. } => leader.as_deref(),
            _ => None,
        };
        HttpResponse::build(self.status_code()).json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
            leader,
        })
    }
}

/// JSON and raw-body extractors bounded by `body_bytes_max`, whose failures
/// become [`ApiError`]s.
pub fn extractor_configs(body_bytes_max: usize) -> (web::JsonConfig, web::PayloadConfig) {
    let json = web::JsonConfig::default()
        .limit(body_bytes_max)
        .error_handler(move |error, _req| json_body_error(&error, body_bytes_max).into());
    (json, web::PayloadConfig::default().limit(body_bytes_max))
}

/// What a JSON body that could not be read or parsed gets, for bodies of
/// at most `body_bytes_max` bytes.
pub fn json_body_error(error: &actix_web::error::JsonPayloadError, body_bytes_max: usize) -> ApiError {
    use actix_web::error::JsonPayloadError;
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge { limit: body_bytes_max }
        }
        JsonPayloadError::ContentType => {
            ApiError::BadRequest("expected Content-Type: application/json".into())
        }
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON body: {e}")),
        other => ApiError::BadRequest(format!("invalid body: {other}")),
    }
}

/// Path and query extractors whose failures become [`ApiError`]s.
pub fn path_and_query_configs() -> (web::PathConfig, web::QueryConfig) {
    let path = web::PathConfig::default()
        .error_handler(|error, _req| ApiError::BadRequest(format!("invalid path: {error}")).into());
    let query = web::QueryConfig::default()
        .error_handler(|error, _req| ApiError::BadRequest(format!("invalid query: {error}")).into());
    (path, query)
}

/// The answer for a route that does not exist.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!("no route {} {}", request.method(), request.path())))
}

/// The answer for a known route used with the wrong method.
pub async fn method_not_allowed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { method: request.method().to_string() })
}
