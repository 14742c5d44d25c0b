//! The one place errors become HTTP responses.
//!
//! Policy: handlers return [`ApiError`]; each variant has one status code and a stable
//! machine-readable `error` kind. Bodies are `{"error": kind, "message": text}`. Database
//! unavailability is a 503 with `Retry-After`, never a 500; a 500 is logged with its cause
//! and shows the client nothing internal.

use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use store::StoreError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request body was not received in time (see `deadline`); the connection is
    /// closed.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but refused for what it asks (an `Idempotency-Key` reused for another
    /// request).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    /// A 503 that also closes the connection: under overload this frees the connection's
    /// buffers at once (an unread request body is discarded, not drained) and lets a load
    /// balancer's retry reach another replica.
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after_secs: u64,
    },
    #[error("internal error")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Stable machine-readable kind: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `payload_too_large`, `request_timeout`, `unsupported_media_type`,
    /// `unprocessable`,
    /// `rate_limited`, `too_many_connections`, `unavailable`, `overloaded`, `internal`.
    pub error: &'a str,
    /// What went wrong, for humans.
    pub message: String,
}

impl ApiError {
    /// The stable machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A 503 asking the client to retry after `retry_after_secs`.
    pub fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> ApiError {
        ApiError::Unavailable {
            message: message.into(),
            retry_after_secs,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests {
                retry_after_secs, ..
            }
            | ApiError::Unavailable {
                retry_after_secs, ..
            }
            | ApiError::Overloaded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } | ApiError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "Request failed with an internal error.");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        if let ApiError::Unauthorized(_) = self {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let ApiError::Overloaded { .. } | ApiError::RequestTimeout(_) = self {
            response.force_close();
        }
        response.json(ErrorBody {
            error: self.kind(),
            message,
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "Database unavailable.");
            ApiError::unavailable("database unavailable, retry later", 1)
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

/// The query string of an endpoint that takes no parameters: any parameter is a 400
/// naming it (`?verbose=1` is refused rather than silently ignored). Extract it as
/// `_: Query<NoParams>`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// JSON errors for actix's own extractors (bad query strings, paths and JSON bodies), so
/// that every 4xx has the same shape.
pub fn extractor_configs() -> (
    actix_web::web::QueryConfig,
    actix_web::web::PathConfig,
    actix_web::web::JsonConfig,
) {
    use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
    let query =
        actix_web::web::QueryConfig::default().error_handler(|error: QueryPayloadError, _| {
            ApiError::BadRequest(format!("invalid query string: {error}")).into()
        });
    let path = actix_web::web::PathConfig::default().error_handler(|error: PathError, _| {
        ApiError::BadRequest(format!("invalid path: {error}")).into()
    });
    let json =
        actix_web::web::JsonConfig::default().error_handler(
            |error: JsonPayloadError, _| match error {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => {
                    ApiError::PayloadTooLarge(error.to_string()).into()
                }
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
                    "expected Content-Type: application/json".to_owned(),
                )
                .into(),
                JsonPayloadError::Payload(payload) => {
                    crate::deadline::body_read_error(&payload).into()
                }
                other => ApiError::BadRequest(format!("invalid JSON body: {other}")).into(),
            },
        );
    (query, path, json)
}

/// The answer for routes that do not exist.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".to_owned()))
}

/// Gives actix's empty `405 Method Not Allowed` (a known path, another method) the JSON
/// body every other error has, keeping its `Allow` header.
pub fn method_not_allowed_as_json<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().handler(
        StatusCode::METHOD_NOT_ALLOWED,
        |response: ServiceResponse<B>| {
            let allow = response.headers().get(header::ALLOW).cloned();
            let (request, _) = response.into_parts();
            let allowed = allow
                .as_ref()
                .and_then(|value| value.to_str().ok())
                .unwrap_or("none");
            let mut json = ApiError::MethodNotAllowed(format!(
                "{} is not allowed on {}; allowed: {allowed}",
                request.method(),
                request.path()
            ))
            .error_response();
            if let Some(allow) = allow {
                json.headers_mut().insert(header::ALLOW, allow);
            }
            Ok(ErrorHandlerResponse::Response(
                ServiceResponse::new(request, json).map_into_right_body(),
            ))
        },
    )
}
