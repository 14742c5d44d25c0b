//! HTTP handlers of ingest.

use access::IngestAccess;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use bytes::BytesMut;
use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;
use web::ApiError;

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::batch::{BatchWriter, WriteError};
use crate::decode::{self, BodyError, Decoded, Encoding, Rejection, Shape};
use crate::metrics::IngestMetrics;
use crate::settings::AckMode;

/// Bodies at least this large (compressed: an eighth of it) are decoded on a blocking
/// thread, so that one big request cannot stall the other requests of its worker.
const OFFLOAD_DECODE_BYTES: usize = 64 * 1024;

/// What handlers share.
pub struct IngestState {
    pub writer: BatchWriter,
    /// Bytes of request bodies being read or decoded; bounds memory before the queue.
    pub inflight: Arc<Semaphore>,
    pub inflight_capacity: usize,
    /// How long a request waits for in-flight room.
    pub admission_timeout: std::time::Duration,
    /// Requests waiting for in-flight room now, and how many may wait: beyond that a
    /// request is refused at once, so waiting connections (each holding a few buffers of
    /// unread body) stay bounded too.
    pub waiting: std::sync::atomic::AtomicUsize,
    pub max_waiting: usize,
    pub metrics: IngestMetrics,
    pub ack: AckMode,
    pub max_body_bytes: usize,
    pub max_reported_errors: usize,
    pub limits: domain::EventLimits,
}

/// The answer to an ingest request.
#[derive(Debug, Serialize)]
pub struct IngestResponse {
    pub accepted: usize,
    pub rejected: usize,
    pub errors: Vec<Rejection>,
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge { .. } => ApiError::PayloadTooLarge(error.to_string()),
            BodyError::UnsupportedEncoding(_) | BodyError::UnsupportedContentType(_) => {
                ApiError::UnsupportedMediaType(error.to_string())
            }
            BodyError::Corrupt { .. } | BodyError::Unusable(_) => {
                ApiError::BadRequest(error.to_string())
            }
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Overloaded => ApiError::Overloaded {
                message: error.to_string(),
                retry_after_secs: 1,
            },
            WriteError::ShuttingDown => ApiError::unavailable(error.to_string(), 1),
            WriteError::Unavailable => ApiError::unavailable(error.to_string(), 2),
            WriteError::Failed(reason) => ApiError::Internal(reason),
        }
    }
}

fn header(
    request: &HttpRequest,
    name: actix_web::http::header::HeaderName,
) -> Result<Option<&str>, ApiError> {
    request
        .headers()
        .get(&name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ApiError::BadRequest(format!("{name} header is not valid text")))
        })
        .transpose()
}

/// A body being decoded needs room for itself and for the events made from it; both are
/// admitted up front.
const DECODE_FACTOR: usize = 2;

/// Permits for in-flight bytes, held by one request until its events are queued (the queue
/// accounts for them from then on).
struct Admission(Vec<OwnedSemaphorePermit>);

impl IngestState {
    /// Takes room for `bytes` more in-flight bytes, waiting at most `admission_timeout`.
    async fn admit(&self, admission: &mut Admission, bytes: usize) -> Result<(), ApiError> {
        let permits = u32::try_from(bytes.clamp(1, self.inflight_capacity)).unwrap_or(u32::MAX);
        if let Ok(permit) = Arc::clone(&self.inflight).try_acquire_many_owned(permits) {
            admission.0.push(permit);
            return Ok(());
        }
        use std::sync::atomic::Ordering;
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            self.metrics.overloaded.inc();
            return Err(WriteError::Overloaded.into());
        }
        let acquire = Arc::clone(&self.inflight).acquire_many_owned(permits);
        let outcome = tokio::time::timeout(self.admission_timeout, acquire).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match outcome {
            Ok(Ok(permit)) => {
                admission.0.push(permit);
                Ok(())
            }
            _ => {
                self.metrics.overloaded.inc();
                Err(WriteError::Overloaded.into())
            }
        }
    }
}

/// Reads the raw body, refusing more than `max_body_bytes` (compressed bodies are bounded
/// by the same limit; the decompressed size is checked again by the decoder). Every chunk
/// is admitted against the in-flight budget before it is kept.
async fn read_body(
    request: &HttpRequest,
    mut payload: Payload,
    state: &IngestState,
    admission: &mut Admission,
) -> Result<BytesMut, ApiError> {
    let limit = state.max_body_bytes;
    let too_large = || ApiError::from(BodyError::TooLarge { limit });
    let declared = header(request, CONTENT_LENGTH)?.and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    // A declared length is admitted at once (no request holds part of the budget while
    // waiting for the rest); a chunked body chunk by chunk.
    let mut admitted = declared.unwrap_or(0);
    if admitted > 0 {
        state.admit(admission, admitted * DECODE_FACTOR).await?;
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|error| ApiError::BadRequest(format!("could not read the body: {error}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        if body.len() + chunk.len() > admitted {
            state.admit(admission, chunk.len() * DECODE_FACTOR).await?;
            admitted += chunk.len();
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `POST /api/v1/logs` and `POST /ingest`.
pub async fn ingest_logs(
    _caller: IngestAccess,
    request: HttpRequest,
    payload: Payload,
    state: Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let received_at = Utc::now();
    let encoding = Encoding::parse(header(&request, CONTENT_ENCODING)?)?;
    let shape = Shape::parse(header(&request, CONTENT_TYPE)?)?;
    let mut admission = Admission(Vec::new());
    let body = read_body(&request, payload, &state, &mut admission).await?;
    if encoding != Encoding::Identity {
        // The decompressed copy and its events need room too (at most max_body_bytes each).
        let expected = body.len().saturating_mul(4).min(state.max_body_bytes);
        state
            .admit(&mut admission, expected * DECODE_FACTOR)
            .await?;
    }

    let large = match encoding {
        Encoding::Identity => body.len() >= OFFLOAD_DECODE_BYTES,
        _ => body.len() >= OFFLOAD_DECODE_BYTES / 8,
    };
    let limit = state.max_body_bytes;
    let limits = state.limits.clone();
    let work = move || -> Result<Decoded, BodyError> {
        let plain = decode::decompress(&body, encoding, limit)?;
        decode::decode_events(&plain, shape, received_at, &limits)
    };
    let decoded = if large {
        actix_web::web::block(work)
            .await
            .map_err(|error| ApiError::Internal(format!("decoding task failed: {error}")))??
    } else {
        work()?
    };

    let Decoded { events, rejections } = decoded;
    let accepted = events.len();
    let rejected = rejections.len();
    state.metrics.events_rejected.inc_by(rejected as u64);
    if accepted > 0 {
        match state.ack {
            AckMode::Durable => {
                let pending = state.writer.submit(events).await?;
                drop(admission);
                pending.committed().await?;
            }
            AckMode::Buffered => state.writer.enqueue_buffered(events).await?,
        }
        state.metrics.events_accepted.inc_by(accepted as u64);
    }
    let status = match state.ack {
        AckMode::Buffered if accepted > 0 => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    let mut errors = rejections;
    errors.truncate(state.max_reported_errors);
    Ok(HttpResponse::build(status).json(IngestResponse {
        accepted,
        rejected,
        errors,
    }))
}
