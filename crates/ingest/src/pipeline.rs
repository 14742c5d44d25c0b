//! The accept pipeline every wire format goes through: admission against the in-flight
//! budget, the body (limits, decompression), decoding by the route's [`WireFormat`],
//! submission to the batch writer (durable: wait for the commit; buffered: queue), and the
//! answer in the format's shape. Keeping these in one place is what lets every format keep
//! the same bounds and the same contract: a 200 means committed.

use std::sync::Arc;

use access::IngestAccess;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_ENCODING, HeaderName};
use actix_web::web::{Data, Payload, Query};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use web::ApiError;
use web::error::NoParams;

use crate::batch::{BatchWriter, RequestKey, WriteError};
use crate::body::{Admission, Body, Encoding, InflightBudget, decoded_need, header};
use crate::formats::{Context, Decoded, Outcome, ShipperSettings, WireFormat};
use crate::metrics::IngestMetrics;
use crate::settings::AckMode;

/// Bodies at least this large (compressed: an eighth of it) are decoded on a blocking
/// thread, so that one big request cannot stall the other requests of its worker.
const OFFLOAD_DECODE_BYTES: usize = 64 * 1024;

/// The header a client sets so that sending a request again stores it once.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Events stamped this long before they arrive are counted as delayed: later than the
/// detector's default lateness window, so a running detector never judges them.
const DELAYED: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// What handlers share.
pub struct IngestState {
    pub writer: BatchWriter,
    /// Bounds the memory of request bodies before the queue accounts for them.
    pub budget: InflightBudget,
    pub metrics: IngestMetrics,
    pub ack: AckMode,
    pub max_body_bytes: usize,
    pub max_reported_errors: usize,
    pub limits: domain::EventLimits,
    pub shippers: Arc<ShipperSettings>,
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
            WriteError::KeyReused => ApiError::Unprocessable(error.to_string()),
        }
    }
}

/// `POST` of logs in format `F`; a route names its format here, e.g.
/// `post().to(accept::<Native>)`. No query parameters are taken unless the format ignores
/// them ([`WireFormat::IGNORES_QUERY`]): one is a 400 naming it.
pub async fn accept<F: WireFormat>(
    caller: Result<IngestAccess, ApiError>,
    request: HttpRequest,
    payload: Payload,
    state: Data<IngestState>,
) -> Result<HttpResponse, actix_web::Error> {
    // 401 and 403 in the format's own error shape too (a Loki client reads text, an
    // Elasticsearch client wants its error object and product header).
    let IngestAccess(caller) =
        caller.map_err(|error| F::refuse(error, F::kind(&request).ok().as_ref()))?;
    let caller_subject = caller.subject;
    if !F::IGNORES_QUERY {
        Query::<NoParams>::from_query(request.query_string()).map_err(|error| {
            F::refuse(
                ApiError::BadRequest(format!("invalid query string: {error}")),
                None,
            )
        })?;
    }
    // The head is judged before anything is read or admitted: refusing it costs no budget.
    let kind = F::kind(&request).map_err(|error| F::refuse(error.into(), None))?;
    let key = idempotency_key(&request, &caller_subject)
        .map_err(|error| F::refuse(error, Some(&kind)))?;
    handle::<F>(&request, payload, &state, &kind, key)
        .await
        .map_err(|error| F::refuse(error, Some(&kind)))
}

/// The request's `Idempotency-Key`, namespaced by the caller (two shippers may count their
/// keys from 1): at most 255 printable ASCII characters.
fn idempotency_key(request: &HttpRequest, subject: &str) -> Result<Option<String>, ApiError> {
    let Some(key) = header(request, IDEMPOTENCY_KEY)? else {
        return Ok(None);
    };
    let key = key.trim();
    if key.is_empty()
        || key.len() > 255
        || !key
            .bytes()
            .all(|byte| byte.is_ascii_graphic() || byte == b' ')
    {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters".to_owned(),
        ));
    }
    Ok(Some(format!("{}:{subject}{key}", subject.len())))
}

/// What a request sent, for its idempotency key: the endpoint and content type (taken
/// from the request), and then the decompressed body ([`RequestDigest::of`]).
struct RequestDigest {
    hasher: sha2::Sha256,
}

impl RequestDigest {
    fn new(request: &HttpRequest) -> RequestDigest {
        use sha2::Digest;
        let content_type = request
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .map_or(&b""[..], |value| value.as_bytes());
        let mut hasher = sha2::Sha256::new();
        for part in [request.path().as_bytes(), content_type] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        RequestDigest { hasher }
    }

    fn of(mut self, plain: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        self.hasher.update(plain);
        self.hasher.finalize().into()
    }
}

async fn handle<F: WireFormat>(
    request: &HttpRequest,
    payload: Payload,
    state: &IngestState,
    kind: &F::Kind,
    key: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let received_at = Utc::now();
    let encoding = Encoding::parse(header(request, CONTENT_ENCODING)?)?;
    let mut admission = state.budget.admission();
    let body = Body::read(
        request,
        payload,
        encoding,
        state.max_body_bytes,
        &mut admission,
    )
    .await?;
    let digest = key.is_some().then(|| RequestDigest::new(request));
    let (decoded, receipt, digest) = decode::<F>(
        body,
        kind.clone(),
        received_at,
        state,
        &mut admission,
        digest,
    )
    .await?;
    let key = key
        .zip(digest)
        .map(|(key, digest)| RequestKey { key, digest });
    let outcome = submit(decoded, received_at, admission, state, key).await?;
    Ok(F::answer(outcome, kind, receipt))
}

/// Decompresses and decodes `body`, on a blocking thread when it is large. A compressed
/// body's admission is brought up to its real decompressed size before it is decoded
/// (decoding is where memory multiplies: each event costs a few hundred bytes), so bodies
/// that decompress far beyond the usual 4:1 wait for room instead of decoding side by side.
async fn decode<F: WireFormat>(
    body: Body,
    kind: F::Kind,
    received_at: DateTime<Utc>,
    state: &IngestState,
    admission: &mut Admission<'_>,
    digest: Option<RequestDigest>,
) -> Result<(Decoded, F::Receipt, Option<[u8; 32]>), ApiError> {
    let large = if body.is_compressed() {
        body.received_bytes() >= OFFLOAD_DECODE_BYTES / 8
    } else {
        body.received_bytes() >= OFFLOAD_DECODE_BYTES
    };
    let limit = state.max_body_bytes;
    let received = body.received_bytes();
    let compressed = body.is_compressed();
    let plain = off_thread(large, move || body.decompress(limit)).await??;
    if compressed {
        admission.hold(decoded_need(received, plain.len())).await?;
    }
    let context = Context {
        received_at,
        limits: state.limits.clone(),
        max_body_bytes: limit,
        shippers: Arc::clone(&state.shippers),
    };
    // Hashing a large body is work like decoding it: off the worker thread too.
    let (decoded, digest) = off_thread(large, move || {
        let digest = digest.map(|digest| digest.of(&plain));
        (F::decode(&plain, &kind, &context), digest)
    })
    .await?;
    let (decoded, receipt) = decoded.map_err(ApiError::from)?;
    Ok((decoded, receipt, digest))
}

/// Runs `work` on actix's blocking pool when `large`, else here.
async fn off_thread<T: Send + 'static>(
    large: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    if large {
        actix_web::web::block(work)
            .await
            .map_err(|error| ApiError::Internal(format!("decoding task failed: {error}")))
    } else {
        Ok(work())
    }
}

/// Hands the accepted events to the batch writer as the ack mode says, and reports what
/// became of the body.
async fn submit(
    decoded: Decoded,
    received_at: DateTime<Utc>,
    admission: Admission<'_>,
    state: &IngestState,
    key: Option<RequestKey>,
) -> Result<Outcome, ApiError> {
    let Decoded {
        events,
        rejections,
        rejected,
        ..
    } = decoded;
    let accepted = events.len();
    state.metrics.events_rejected.inc_by(rejected as u64);
    let delayed = events
        .iter()
        .filter(|event| event.ts < received_at - DELAYED)
        .count();
    state.metrics.events_delayed.inc_by(delayed as u64);
    if accepted > 0 {
        match state.ack {
            AckMode::Durable => {
                let pending = state.writer.submit(events, key).await?;
                // Queued: the queue's own bound covers these events while they commit.
                drop(admission);
                pending.committed().await?;
            }
            AckMode::Buffered => state.writer.enqueue_buffered(events, key).await?,
        }
        state.metrics.events_accepted.inc_by(accepted as u64);
    }
    let status = match state.ack {
        AckMode::Buffered if accepted > 0 => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    let mut errors = rejections;
    errors.truncate(state.max_reported_errors);
    Ok(Outcome {
        status,
        accepted,
        rejected,
        errors,
    })
}
