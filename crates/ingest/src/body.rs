//! A request body, from admission to decompressed bytes: the in-flight byte budget that
//! bounds memory before the batch queue (and the number of requests waiting for it),
//! reading the body under `max_body_bytes` and its `Content-Length`, and the content
//! encodings (gzip, deflate, zstd, identity) with decompression bounded by the same limit,
//! so a decompression bomb is a 413, not an out-of-memory.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::{CONTENT_LENGTH, HeaderName};
use actix_web::web::Payload;
use bytes::BytesMut;
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use web::ApiError;

use crate::batch::WriteError;
use crate::formats::BodyError;

/// A request header as text; a header that is not text is a 400.
pub(crate) fn header(request: &HttpRequest, name: HeaderName) -> Result<Option<&str>, ApiError> {
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

/// Bytes of request bodies being read or decoded, across all requests.
pub struct InflightBudget {
    room: Arc<Semaphore>,
    capacity: usize,
    /// How long a request waits for room.
    timeout: Duration,
    /// Requests waiting for room now, and how many may wait: beyond that a request is
    /// refused at once, so waiting connections (each holding a few buffers of unread body)
    /// stay bounded too.
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Counts refusals (the `overloaded` metric).
    overloaded: Counter,
}

impl InflightBudget {
    pub fn new(
        capacity: usize,
        timeout: Duration,
        max_waiting: usize,
        overloaded: Counter,
    ) -> InflightBudget {
        InflightBudget {
            room: Arc::new(Semaphore::new(capacity)),
            capacity,
            timeout,
            waiting: AtomicUsize::new(0),
            max_waiting,
            overloaded,
        }
    }

    /// An admission holding nothing yet, for one request.
    pub fn admission(&self) -> Admission<'_> {
        Admission {
            budget: self,
            permits: Vec::new(),
        }
    }
}

/// Room in the in-flight budget held by one request until its events are queued (the
/// queue accounts for them from then on); dropping it gives the room back.
pub struct Admission<'a> {
    budget: &'a InflightBudget,
    permits: Vec<OwnedSemaphorePermit>,
}

impl Admission<'_> {
    /// Takes room for `bytes` more in-flight bytes, waiting at most the budget's timeout.
    async fn admit(&mut self, bytes: usize) -> Result<(), ApiError> {
        let budget = self.budget;
        let permits = u32::try_from(bytes.clamp(1, budget.capacity)).unwrap_or(u32::MAX);
        if let Ok(permit) = Arc::clone(&budget.room).try_acquire_many_owned(permits) {
            self.permits.push(permit);
            return Ok(());
        }
        if budget.waiting.fetch_add(1, Ordering::AcqRel) >= budget.max_waiting {
            budget.waiting.fetch_sub(1, Ordering::AcqRel);
            budget.overloaded.inc();
            return Err(WriteError::Overloaded.into());
        }
        let acquire = Arc::clone(&budget.room).acquire_many_owned(permits);
        let outcome = tokio::time::timeout(budget.timeout, acquire).await;
        budget.waiting.fetch_sub(1, Ordering::AcqRel);
        match outcome {
            Ok(Ok(permit)) => {
                self.permits.push(permit);
                Ok(())
            }
            _ => {
                budget.overloaded.inc();
                Err(WriteError::Overloaded.into())
            }
        }
    }
}

/// A request body as received, still in its content encoding.
pub struct Body {
    raw: BytesMut,
    encoding: Encoding,
}

impl Body {
    /// Reads the raw body, refusing more than `limit` bytes (compressed bodies are bounded
    /// by the same limit; the decompressed size is checked again by [`Body::decompress`]).
    /// Every chunk is admitted against the in-flight budget before it is kept, and a
    /// compressed body again for its expected decompressed size.
    pub async fn read(
        request: &HttpRequest,
        mut payload: Payload,
        encoding: Encoding,
        limit: usize,
        admission: &mut Admission<'_>,
    ) -> Result<Body, ApiError> {
        let too_large = || ApiError::from(BodyError::TooLarge { limit });
        let declared =
            header(request, CONTENT_LENGTH)?.and_then(|value| value.parse::<usize>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(too_large());
        }
        // A declared length is admitted at once (no request holds part of the budget while
        // waiting for the rest); a chunked body chunk by chunk.
        let mut admitted = declared.unwrap_or(0);
        if admitted > 0 {
            admission.admit(admitted * DECODE_FACTOR).await?;
        }
        let mut raw = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|error| {
                ApiError::BadRequest(format!("could not read the body: {error}"))
            })?;
            if raw.len() + chunk.len() > limit {
                return Err(too_large());
            }
            if raw.len() + chunk.len() > admitted {
                admission.admit(chunk.len() * DECODE_FACTOR).await?;
                admitted += chunk.len();
            }
            raw.extend_from_slice(&chunk);
        }
        if encoding != Encoding::Identity {
            // The decompressed copy and its events need room too (at most `limit` each).
            let expected = raw.len().saturating_mul(4).min(limit);
            admission.admit(expected * DECODE_FACTOR).await?;
        }
        Ok(Body { raw, encoding })
    }

    /// Length as received (compressed, if it is).
    pub fn received_bytes(&self) -> usize {
        self.raw.len()
    }

    pub fn is_compressed(&self) -> bool {
        self.encoding != Encoding::Identity
    }

    /// The body's bytes, decompressed, refusing to produce more than `limit` of them.
    pub fn decompress(&self, limit: usize) -> Result<Vec<u8>, BodyError> {
        decompress(&self.raw, self.encoding, limit)
    }
}

/// How the body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Zstd,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value.
    pub fn parse(header: Option<&str>) -> Result<Encoding, BodyError> {
        let Some(value) = header else {
            return Ok(Encoding::Identity);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Encoding::Identity),
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            "deflate" => Ok(Encoding::Deflate),
            "zstd" => Ok(Encoding::Zstd),
            _ => Err(BodyError::UnsupportedEncoding(value.to_owned())),
        }
    }
}

/// Decompresses `body`, refusing to produce more than `limit` bytes.
pub fn decompress(body: &[u8], encoding: Encoding, limit: usize) -> Result<Vec<u8>, BodyError> {
    let too_large = BodyError::TooLarge { limit };
    match encoding {
        Encoding::Identity => {
            if body.len() > limit {
                return Err(too_large);
            }
            Ok(body.to_vec())
        }
        Encoding::Gzip => read_limited(flate2::read::MultiGzDecoder::new(body), limit, "gzip"),
        Encoding::Deflate => read_limited(flate2::read::ZlibDecoder::new(body), limit, "deflate"),
        Encoding::Zstd => {
            // A zstd stream may hold several frames; decode them one after another.
            let mut source = body;
            let mut out = Vec::new();
            while !source.is_empty() {
                let decoder =
                    ruzstd::decoding::StreamingDecoder::new(&mut source).map_err(|error| {
                        BodyError::Corrupt {
                            encoding: "zstd",
                            reason: error.to_string(),
                        }
                    })?;
                let remaining = limit.saturating_sub(out.len());
                out.extend(read_limited(decoder, remaining, "zstd").map_err(
                    |error| match error {
                        BodyError::TooLarge { .. } => BodyError::TooLarge { limit },
                        other => other,
                    },
                )?);
            }
            Ok(out)
        }
    }
}

fn read_limited(
    reader: impl Read,
    limit: usize,
    encoding: &'static str,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|error| BodyError::Corrupt {
            encoding,
            reason: error.to_string(),
        })?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn content_encodings() {
        assert_eq!(Encoding::parse(Some("GZIP")), Ok(Encoding::Gzip));
        assert!(matches!(
            Encoding::parse(Some("br")),
            Err(BodyError::UnsupportedEncoding(_))
        ));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_round_trip_and_bomb() {
        let data = b"{\"service\":\"a\",\"message\":\"m\"}";
        assert_eq!(decompress(&gzip(data), Encoding::Gzip, 1024).unwrap(), data);
        let zeros = vec![b' '; 10 * 1024 * 1024];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            decompress(&bomb, Encoding::Gzip, 1024 * 1024),
            Err(BodyError::TooLarge { limit: 1024 * 1024 })
        );
        assert!(matches!(
            decompress(b"not gzip", Encoding::Gzip, 1024),
            Err(BodyError::Corrupt { .. })
        ));
    }

    #[test]
    fn zstd_frames_decode_and_are_bounded() {
        let data = b"{\"service\":\"a\",\"message\":\"m\"}\n";
        let mut frames = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        frames.extend(ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        ));
        let mut expected = data.to_vec();
        expected.extend_from_slice(data);
        assert_eq!(decompress(&frames, Encoding::Zstd, 1024).unwrap(), expected);
        let bomb = ruzstd::encoding::compress_to_vec(
            &vec![0u8; 4 * 1024 * 1024][..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(
            decompress(&bomb, Encoding::Zstd, 1024 * 1024),
            Err(BodyError::TooLarge { limit: 1024 * 1024 })
        );
    }
}
