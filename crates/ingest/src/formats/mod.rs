//! Wire formats: what tells one way of sending logs from another. A format owns only what
//! is its own: which `Content-Type`s it takes, how its decompressed bytes become
//! [`Decoded`] events, and the shape of its answers. Admission, body limits, content
//! encodings, group commit and "a 200 means committed" are shared by every format in
//! [`crate::pipeline`], so no format can get them wrong.
//!
//! Adding a format is a module here implementing [`WireFormat`] and a route in
//! [`crate::startup`]: `resource("/v1/logs").route(post().to(pipeline::accept::<Otlp>))`.
//!
//! # Formats
//! - [`native`]: threesigma's own JSON object, JSON array or NDJSON, answered with
//!   `{"accepted", "rejected", "errors"}`.
//! - [`otlp`]: OTLP/HTTP logs, protobuf or JSON.
//! - [`loki`]: Loki push, snappy protobuf or JSON.
//! - [`bulk`]: Elasticsearch bulk, and the calls its clients make first.
//! - [`wire`]: what the shippers' formats share (protobuf walking, bounded JSON lists).

pub mod bulk;
pub mod loki;
pub mod native;
pub mod otlp;
pub mod wire;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use domain::{EventLimits, LogEvent};
use serde::Serialize;
use web::ApiError;

pub use bulk::Bulk;
pub use loki::Loki;
pub use native::Native;
pub use otlp::Otlp;

/// One way of sending logs.
///
/// Formats are types without values (no `self`): the pipeline needs no instance, and a
/// route names its format once, in `accept::<F>`.
pub trait WireFormat: 'static {
    /// What the request's head says about the body (e.g. JSON or NDJSON from the
    /// `Content-Type`, an index from the path), carried from before the body is read to its
    /// decoding, possibly on a blocking thread, and to the answer.
    type Kind: Clone + Send + 'static;

    /// Whether query parameters are taken (and ignored) rather than refused: Elasticsearch
    /// clients add `filter_path`, `pipeline`, `refresh` and the like.
    const IGNORES_QUERY: bool = false;

    /// What the format keeps of a body to answer it (Elasticsearch answers one item per
    /// action); `()` for most.
    type Receipt: Send + 'static;

    /// Reads the request's head before any of the body is read or admitted, so a body the
    /// format cannot take costs nothing. [`BodyError::UnsupportedContentType`] answers 415.
    fn kind(request: &HttpRequest) -> Result<Self::Kind, BodyError>;

    /// Decodes a decompressed body into events and per-event rejections; an error refuses
    /// the whole body. Large bodies are decoded on actix's blocking pool.
    fn decode(
        body: &[u8],
        kind: &Self::Kind,
        context: &Context,
    ) -> Result<(Decoded, Self::Receipt), BodyError>;

    /// The answer once the accepted events are committed (or queued, with
    /// `--ack buffered`).
    fn answer(outcome: Outcome, kind: &Self::Kind, receipt: Self::Receipt) -> HttpResponse;

    /// The answer to a request refused as a whole (unusable headers or body, too large,
    /// overloaded, not stored); `kind` is known unless the head itself was refused.
    /// Defaults to the service's JSON error; a format whose clients expect another error
    /// shape builds it here (see [`reshape`]), keeping the status code and `Retry-After`
    /// that clients retry by. Refusals before the pipeline (authentication, rate limits,
    /// unknown routes) are always the service's JSON error.
    fn refuse(error: ApiError, kind: Option<&Self::Kind>) -> actix_web::Error {
        let _ = kind;
        error.into()
    }
}

/// What decoding needs beside the body.
#[derive(Debug, Clone)]
pub struct Context {
    pub received_at: DateTime<Utc>,
    pub limits: EventLimits,
    /// Largest decompressed body (for formats that decompress on their own: Loki's snappy).
    pub max_body_bytes: usize,
    pub shippers: Arc<ShipperSettings>,
}

/// How events are found in the shippers' own protocols (`[ingest]` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipperSettings {
    /// Loki stream labels naming the service, first present wins.
    pub loki_service_labels: Vec<String>,
    /// Elasticsearch document fields (dotted paths) naming the service, tried after
    /// `service` and `service.name`; the index name is the last resort.
    pub bulk_service_fields: Vec<String>,
}

impl Default for ShipperSettings {
    fn default() -> Self {
        ShipperSettings {
            loki_service_labels: ["service_name", "service", "app", "job", "container"]
                .map(str::to_owned)
                .to_vec(),
            bulk_service_fields: Vec::new(),
        }
    }
}

/// `error` as an [`actix_web::Error`] whose response keeps the status, `Retry-After` and
/// connection handling of the service's own but carries `body` as `content_type`.
pub fn reshape(error: ApiError, content_type: &'static str, body: Vec<u8>) -> actix_web::Error {
    use actix_web::ResponseError;
    let mut response = error.error_response().set_body(body).map_into_boxed_body();
    response.headers_mut().insert(
        actix_web::http::header::CONTENT_TYPE,
        actix_web::http::header::HeaderValue::from_static(content_type),
    );
    actix_web::error::InternalError::from_response(error, response).into()
}

/// The media type of a `Content-Type` value, lowercased, without parameters.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The `Content-Type` of a request (`None` when absent); unreadable text is a 400.
pub fn content_type(request: &HttpRequest) -> Result<Option<&str>, BodyError> {
    match request.headers().get(actix_web::http::header::CONTENT_TYPE) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| BodyError::Unusable("Content-Type is not valid text".to_owned())),
    }
}

/// Why a whole body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body exceeds {limit} bytes after decompression")]
    TooLarge { limit: usize },
    #[error("body holds more than {limit} events; send them in several requests")]
    TooManyEvents { limit: usize },
    /// Records that share data (a resource's attributes, a stream's labels) copy it into
    /// every event: bounded, so that a small body cannot decode into gigabytes.
    #[error("body decodes into more than {limit} bytes of events; send fewer records per request")]
    DecodesTooLarge { limit: usize },
    #[error("zstd frame needs a {window} byte window; at most {limit} is accepted")]
    WindowTooLarge { window: u64, limit: u64 },
    #[error("unsupported Content-Encoding {0:?} (supported: gzip, deflate, zstd, identity)")]
    UnsupportedEncoding(String),
    /// `supported` lists the format's own types, so each format's 415 says what it takes.
    #[error("unsupported Content-Type {content_type:?} (supported: {supported})")]
    UnsupportedContentType {
        content_type: String,
        supported: &'static str,
    },
    #[error("body is not valid {encoding} data: {reason}")]
    Corrupt {
        encoding: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Unusable(String),
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge { .. }
            | BodyError::TooManyEvents { .. }
            | BodyError::DecodesTooLarge { .. }
            | BodyError::WindowTooLarge { .. } => ApiError::PayloadTooLarge(error.to_string()),
            BodyError::UnsupportedEncoding(_) | BodyError::UnsupportedContentType { .. } => {
                ApiError::UnsupportedMediaType(error.to_string())
            }
            BodyError::Corrupt { .. } | BodyError::Unusable(_) => {
                ApiError::BadRequest(error.to_string())
            }
        }
    }
}

/// One refused event in a 200 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Position of the event in the body (0-based; for NDJSON, among non-blank lines).
    pub index: usize,
    /// For line-oriented bodies (NDJSON), the 1-based line the event was on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub reason: String,
}

/// Most elements (events, valid or not) one body may hold: a body is refused whole (413)
/// past it. Each event costs a few hundred bytes once decoded, whatever it cost on the
/// wire, so this, not the byte limit, bounds a request's memory for tiny events
/// (`[1,1,…]`: 8 million elements in 16 MiB).
pub const MAX_EVENTS_PER_BODY: usize = 100_000;

/// The largest wire size of one record (or of what records share: a resource, a scope, a
/// stream's labels) worth decoding: four times the largest event it could become. A larger
/// one can only be refused, and decoding it first could cost many times its size (an empty
/// attribute is 2 bytes on the wire, ~100 decoded).
pub fn max_record_wire_bytes(limits: &EventLimits) -> usize {
    limits
        .max_message_bytes
        .saturating_add(limits.max_attributes_bytes)
        .saturating_mul(4)
}

/// Rejections kept per body with their reasons (the rest are only counted): more than
/// any answer reports (`ingest.max_reported_errors` is at most this).
pub const MAX_KEPT_REJECTIONS: usize = 1_000;

/// The events of a body that passed validation, and those that did not: every rejection
/// counted, the first [`MAX_KEPT_REJECTIONS`] kept.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<LogEvent>,
    pub rejections: Vec<Rejection>,
    /// Bytes of message and attributes of the events so far, and the most they may reach
    /// (see [`Decoded::for_source`]; unbounded by default).
    content: usize,
    max_content: Option<usize>,
    /// Every rejection, kept or not.
    pub rejected: usize,
}

impl Decoded {
    /// Accepts an event.
    pub fn accept(&mut self, event: LogEvent) -> Result<(), BodyError> {
        self.admit_element()?;
        self.content += event.message.len() + event.attributes.len();
        if let Some(limit) = self.max_content
            && self.content > limit
        {
            return Err(BodyError::DecodesTooLarge { limit });
        }
        self.events.push(event);
        Ok(())
    }

    /// For formats whose records share data (copied into each event): the events' messages
    /// and attributes may add up to at most eight times the decoded source plus 1 MiB.
    /// Real bodies stay far below (an OpenTelemetry SDK's resource copied into 512 records
    /// is ~4×); a 70 KB Loki push of 5,000 empty entries under a 60 KB label would have
    /// decoded into 300 MB.
    pub fn for_source(source_bytes: usize) -> Decoded {
        Decoded {
            max_content: Some(source_bytes.saturating_mul(8).saturating_add(1 << 20)),
            ..Decoded::default()
        }
    }

    /// Counts a rejection (keeping it while fewer than [`MAX_KEPT_REJECTIONS`] are).
    pub fn reject(&mut self, rejection: Rejection) -> Result<(), BodyError> {
        self.admit_element()?;
        self.rejected += 1;
        if self.rejections.len() < MAX_KEPT_REJECTIONS {
            self.rejections.push(rejection);
        }
        Ok(())
    }

    fn admit_element(&self) -> Result<(), BodyError> {
        if self.events.len() + self.rejected >= MAX_EVENTS_PER_BODY {
            return Err(BodyError::TooManyEvents {
                limit: MAX_EVENTS_PER_BODY,
            });
        }
        Ok(())
    }
}

/// What became of a body's events, for the format to answer with.
#[derive(Debug)]
pub struct Outcome {
    /// 200 once the accepted events are committed (or when none were), 202 once they are
    /// only queued (`--ack buffered`).
    pub status: StatusCode,
    pub accepted: usize,
    pub rejected: usize,
    /// The first `max_reported_errors` rejections; `rejected` counts them all.
    pub errors: Vec<Rejection>,
}

#[cfg(test)]
mod no_panic {
    //! Whatever the bytes, every decoder answers with events, rejections or a refusal: no
    //! panic, whatever a client sends. (The `cargo fuzz` targets in `fuzz/` go further.)
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    fn context() -> Context {
        Context {
            received_at: Utc::now(),
            limits: EventLimits::default(),
            max_body_bytes: 1 << 20,
            shippers: Arc::new(ShipperSettings::default()),
        }
    }

    fn all(body: &[u8]) {
        let context = context();
        let _ = native::decode_events(
            body,
            native::Shape::Json,
            context.received_at,
            &context.limits,
        );
        let _ = native::decode_events(
            body,
            native::Shape::Ndjson,
            context.received_at,
            &context.limits,
        );
        let _ = Otlp::decode(body, &otlp::OtlpEncoding::Protobuf, &context);
        let _ = Otlp::decode(body, &otlp::OtlpEncoding::Json, &context);
        let _ = Loki::decode(body, &loki::LokiEncoding::Protobuf, &context);
        let _ = Loki::decode(body, &loki::LokiEncoding::Json, &context);
        let _ = Bulk::decode(
            body,
            &bulk::BulkKind {
                index: Some("i".into()),
            },
            &context,
        );
        if let Ok(text) = std::str::from_utf8(body) {
            let _ = loki::parse_labels(text);
        }
    }

    /// Bytes that look like the formats: JSON punctuation, protobuf keys and lengths.
    fn shaped() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just(b"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{".to_vec()),
                Just(
                    b"{\"streams\":[{\"stream\":{\"app\":\"a\"},\"values\":[[\"1\",\"x\"".to_vec()
                ),
                Just(b"{\"index\":{}}\n".to_vec()),
                Just(b"{\"message\":\"m\",\"service\":\"s\"}\n".to_vec()),
                Just(vec![0x0a]),
                Just(vec![0x12]),
                Just(vec![0x80, 0x80, 0x01]),
                any::<u8>().prop_map(|b| vec![b]),
                prop::collection::vec(any::<u8>(), 0..8),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    /// The fuzz corpus's seeds (fuzz/seeds, written partly by fuzz/make_seeds.py) are
    /// valid requests: the fuzzer starts from bodies that decode.
    #[test]
    fn fuzz_seeds_decode_to_events() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
        let context = context();
        let read = |path: &str| std::fs::read(seeds.join(path)).expect("seed");
        let counts = [
            Otlp::decode(
                &read("otlp_protobuf/request.pb"),
                &otlp::OtlpEncoding::Protobuf,
                &context,
            )
            .map(|(d, ())| d.events.len()),
            Otlp::decode(
                &read("otlp_json/request.json"),
                &otlp::OtlpEncoding::Json,
                &context,
            )
            .map(|(d, ())| d.events.len() + d.rejected),
            Loki::decode(
                &read("loki_protobuf/push.pb.snappy"),
                &loki::LokiEncoding::Protobuf,
                &context,
            )
            .map(|(d, ())| d.events.len() + d.rejected),
            Loki::decode(
                &read("loki_json/push.json"),
                &loki::LokiEncoding::Json,
                &context,
            )
            .map(|(d, ())| d.events.len() + d.rejected),
            Bulk::decode(
                &read("bulk/bulk.ndjson"),
                &bulk::BulkKind { index: None },
                &context,
            )
            .map(|(d, _)| d.events.len() + d.rejected),
        ];
        for (index, count) in counts.into_iter().enumerate() {
            assert!(
                count.as_ref().is_ok_and(|n| *n > 0),
                "seed {index}: {count:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            all(&body);
        }

        #[test]
        fn format_shaped_bytes_never_panic(body in shaped()) {
            all(&body);
        }
    }
}
