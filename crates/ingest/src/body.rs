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
            held: 0,
        }
    }
}

/// Room in the in-flight budget held by one request until its events are queued (the
/// queue accounts for them from then on); dropping it gives the room back.
pub struct Admission<'a> {
    budget: &'a InflightBudget,
    permits: Vec<OwnedSemaphorePermit>,
    /// Bytes of room held.
    held: usize,
}

impl Admission<'_> {
    /// Holds room for `total` in-flight bytes in all for this request, taking only what it
    /// does not hold yet and waiting at most the budget's timeout. A request never needs more
    /// than the whole budget (its need is capped there), so any body within the limits is
    /// admitted on an idle server, however its need grew while it was read.
    pub(crate) async fn hold(&mut self, total: usize) -> Result<(), ApiError> {
        let budget = self.budget;
        let target = total.clamp(1, budget.capacity);
        if target <= self.held {
            return Ok(());
        }
        let more = target - self.held;
        let permits = u32::try_from(more).unwrap_or(u32::MAX);
        if let Ok(permit) = Arc::clone(&budget.room).try_acquire_many_owned(permits) {
            self.permits.push(permit);
            self.held = target;
            return Ok(());
        }
        if budget.waiting.fetch_add(1, Ordering::AcqRel) >= budget.max_waiting {
            budget.waiting.fetch_sub(1, Ordering::AcqRel);
            budget.overloaded.inc();
            return Err(busy());
        }
        let acquire = Arc::clone(&budget.room).acquire_many_owned(permits);
        let outcome = tokio::time::timeout(budget.timeout, acquire).await;
        budget.waiting.fetch_sub(1, Ordering::AcqRel);
        match outcome {
            Ok(Ok(permit)) => {
                self.permits.push(permit);
                self.held = target;
                Ok(())
            }
            _ => {
                budget.overloaded.inc();
                Err(busy())
            }
        }
    }
}

/// The refusal of a request that found no room in the in-flight budget.
fn busy() -> ApiError {
    ApiError::Overloaded {
        message: "ingest is reading and decoding as many request bodies as it may at once \
                  (ingest.max_inflight_bytes), retry later"
            .to_owned(),
        retry_after_secs: 1,
    }
}

/// The in-flight bytes a body needs: itself, and (compressed) its decompressed copy, each
/// decoded copy with room for the events made from it.
fn need(raw: usize, encoding: Encoding, limit: usize) -> usize {
    if encoding == Encoding::Identity {
        raw.saturating_mul(DECODE_FACTOR)
    } else {
        // Decompressed size is unknown until it is done: assume 4:1 (typical for logs),
        // capped by the decompressed limit; [`decoded_need`] corrects it once known.
        decoded_need(raw, raw.saturating_mul(4).min(limit))
    }
}

/// The in-flight bytes a compressed body of `raw` bytes needs once it decompressed to
/// `decompressed` bytes.
pub(crate) fn decoded_need(raw: usize, decompressed: usize) -> usize {
    raw.saturating_add(decompressed.saturating_mul(DECODE_FACTOR))
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
        // Admitted as it arrives, whether its length was declared or not, then the rest of
        // what its decoding needs: a client that declares 16 MiB and sends nothing holds
        // nothing (admitting the declared length at once let one idle connection with a
        // token hold the whole budget until its body deadline).
        let mut raw = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|error| web::deadline::body_read_error(&error))?;
            if raw.len() + chunk.len() > limit {
                return Err(too_large());
            }
            admission.hold(raw.len() + chunk.len()).await?;
            raw.extend_from_slice(&chunk);
        }
        admission.hold(need(raw.len(), encoding, limit)).await?;
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

/// Largest zstd window accepted (8 MiB: what `zstd -19` uses; level 3, the default, uses
/// 2 MiB).
pub const MAX_ZSTD_WINDOW: u64 = 8 * 1024 * 1024;

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
                // The window a frame declares is allocated before a byte is decoded: bound it
                // (libzstd's default limit for decompression, ZSTD_WINDOWLOG_LIMIT_DEFAULT,
                // is 128 MiB; shippers' frames use a few MiB at most).
                let mut frame = ruzstd::decoding::FrameDecoder::new();
                frame.set_max_window_size(MAX_ZSTD_WINDOW);
                let decoder =
                    ruzstd::decoding::StreamingDecoder::new_with_decoder(&mut source, frame)
                        .map_err(|error| match error {
                            ruzstd::decoding::errors::FrameDecoderError::WindowSizeTooBig {
                                requested,
                                max,
                            } => BodyError::WindowTooLarge {
                                window: requested,
                                limit: max,
                            },
                            other => BodyError::Corrupt {
                                encoding: "zstd",
                                reason: other.to_string(),
                            },
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

    /// A 37 KB body whose zstd frame declared a 128 MiB window took 165 MB before a byte
    /// was decoded.
    #[test]
    fn zstd_windows_are_bounded() {
        // Magic, a descriptor without content size, a window of 2^27 bytes, one empty last
        // raw block.
        let frame = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 17 << 3, 0x01, 0x00, 0x00];
        assert_eq!(
            decompress(&frame, Encoding::Zstd, 1024),
            Err(BodyError::WindowTooLarge {
                window: 1 << 27,
                limit: MAX_ZSTD_WINDOW
            })
        );
        // The same frame with a 1 MiB window is fine (and empty).
        let small = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 10 << 3, 0x01, 0x00, 0x00];
        assert_eq!(decompress(&small, Encoding::Zstd, 1024), Ok(Vec::new()));
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
