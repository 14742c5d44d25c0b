//! Request bodies → validated events.
//!
//! Order of work: content encoding (gzip, deflate, zstd; the size limit applies to the
//! *decompressed* bytes, so a decompression bomb is a 413, not an out-of-memory), then the
//! body shape (one JSON object, a JSON array, or NDJSON; NDJSON is also sniffed when a
//! shipper labels it `application/json`), then each event on its own. A bad event is
//! rejected with its index and reason; the good ones around it are kept.

use std::io::Read;

use chrono::{DateTime, Utc};
use domain::{EventLimits, LogEvent};
use serde::Serialize;
use serde_json::Value;

/// Why a whole body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body exceeds {limit} bytes after decompression")]
    TooLarge { limit: usize },
    #[error("unsupported Content-Encoding {0:?} (supported: gzip, deflate, zstd, identity)")]
    UnsupportedEncoding(String),
    #[error("unsupported Content-Type {0:?} (supported: application/json, application/x-ndjson)")]
    UnsupportedContentType(String),
    #[error("body is not valid {encoding} data: {reason}")]
    Corrupt {
        encoding: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Unusable(String),
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

/// What the `Content-Type` says about the body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `application/json` or unlabelled: an object, an array, or (sniffed) NDJSON.
    Json,
    /// `application/x-ndjson` and friends: one JSON object per line.
    Ndjson,
}

impl Shape {
    /// Parses a `Content-Type` header value (parameters such as `charset` are ignored).
    pub fn parse(header: Option<&str>) -> Result<Shape, BodyError> {
        let Some(value) = header else {
            return Ok(Shape::Json);
        };
        let mime = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "" | "application/json" | "text/json" | "text/plain" | "application/octet-stream" => {
                Ok(Shape::Json)
            }
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonlines"
            | "application/x-jsonlines"
            | "application/jsonl"
            | "application/x-json-stream" => Ok(Shape::Ndjson),
            _ => Err(BodyError::UnsupportedContentType(value.to_owned())),
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

/// One refused event in a 200 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Position of the event in the body (0-based; for NDJSON, among non-blank lines).
    pub index: usize,
    pub reason: String,
}

/// The events of a body that passed validation, and those that did not.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<LogEvent>,
    pub rejections: Vec<Rejection>,
}

/// Validates every event of a decompressed body. Events are validated as they are parsed,
/// so a request never holds more than one event's JSON tree at a time beside its events.
pub fn decode_events(
    body: &[u8],
    shape: Shape,
    received_at: DateTime<Utc>,
    limits: &EventLimits,
) -> Result<Decoded, BodyError> {
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let Some(first) = text.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(BodyError::Unusable("body is empty".to_owned()));
    };
    match (shape, first) {
        (Shape::Ndjson, _) => decode_lines(text, received_at, limits),
        (Shape::Json, b'[') => decode_array(text, received_at, limits),
        (Shape::Json, b'{') => match serde_json::from_slice::<Value>(text) {
            // A single event is the whole body: its refusal is the body's.
            Ok(single) => {
                let event = LogEvent::from_json(single, received_at, limits)
                    .map_err(|error| BodyError::Unusable(error.to_string()))?;
                Ok(Decoded {
                    events: vec![event],
                    rejections: Vec::new(),
                })
            }
            // Several lines that do not form one JSON document: NDJSON sent as JSON.
            Err(_) if count_lines(text) > 1 => decode_lines(text, received_at, limits),
            Err(error) => Err(BodyError::Unusable(format!("invalid JSON: {error}"))),
        },
        (Shape::Json, _) => Err(BodyError::Unusable(
            "body must be a JSON object, an array of objects, or NDJSON".to_owned(),
        )),
    }
}

fn count_lines(text: &[u8]) -> usize {
    text.split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .count()
}

/// Validates one parsed candidate into `decoded`.
fn validate(
    decoded: &mut Decoded,
    index: usize,
    value: Value,
    received_at: DateTime<Utc>,
    limits: &EventLimits,
) {
    match LogEvent::from_json(value, received_at, limits) {
        Ok(event) => decoded.events.push(event),
        Err(error) => decoded.rejections.push(Rejection {
            index,
            reason: error.to_string(),
        }),
    }
}

/// A JSON array, element by element.
fn decode_array(
    text: &[u8],
    received_at: DateTime<Utc>,
    limits: &EventLimits,
) -> Result<Decoded, BodyError> {
    use serde::Deserializer;
    use serde::de::{SeqAccess, Visitor};

    struct Elements<'a> {
        received_at: DateTime<Utc>,
        limits: &'a EventLimits,
    }

    impl<'de> Visitor<'de> for Elements<'_> {
        type Value = Decoded;

        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("an array of events")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Decoded, A::Error> {
            let mut decoded = Decoded::default();
            if let Some(size) = seq.size_hint() {
                decoded.events.reserve(size);
            }
            let mut index = 0;
            while let Some(value) = seq.next_element::<Value>()? {
                validate(&mut decoded, index, value, self.received_at, self.limits);
                index += 1;
            }
            Ok(decoded)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let decoded = deserializer
        .deserialize_seq(Elements {
            received_at,
            limits,
        })
        .and_then(|decoded| deserializer.end().map(|()| decoded))
        .map_err(|error| BodyError::Unusable(format!("invalid JSON: {error}")))?;
    Ok(decoded)
}

/// NDJSON: each non-blank line on its own. A line that is not JSON is rejected with its
/// line number; only when no line is JSON is the whole body refused.
fn decode_lines(
    text: &[u8],
    received_at: DateTime<Utc>,
    limits: &EventLimits,
) -> Result<Decoded, BodyError> {
    let mut decoded = Decoded::default();
    let mut first_syntax_error = None;
    let mut parsed_any = false;
    let lines = text
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace));
    for (index, (line_index, line)) in lines.enumerate() {
        match serde_json::from_slice::<Value>(line) {
            Ok(value) => {
                parsed_any = true;
                validate(&mut decoded, index, value, received_at, limits);
            }
            Err(error) => {
                let reason = format!("line {}: invalid JSON: {error}", line_index + 1);
                first_syntax_error.get_or_insert_with(|| reason.clone());
                decoded.rejections.push(Rejection { index, reason });
            }
        }
    }
    if !parsed_any {
        return Err(BodyError::Unusable(
            first_syntax_error.unwrap_or_else(|| "body has no JSON lines".to_owned()),
        ));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn decode(body: &str, shape: Shape) -> Result<Decoded, BodyError> {
        decode_events(body.as_bytes(), shape, Utc::now(), &EventLimits::default())
    }

    #[test]
    fn shapes_object_array_and_ndjson() {
        let one = decode(r#"{"service":"a","message":"m"}"#, Shape::Json).unwrap();
        assert_eq!(one.events.len(), 1);
        let many = decode(
            r#"[{"service":"a","message":"m"},{"service":"b","message":"n"}]"#,
            Shape::Json,
        )
        .unwrap();
        assert_eq!(many.events.len(), 2);
        let lines = decode(
            "{\"service\":\"a\",\"message\":\"m\"}\n\n{\"service\":\"b\",\"message\":\"n\"}\n",
            Shape::Ndjson,
        )
        .unwrap();
        assert_eq!(lines.events.len(), 2);
        let sniffed = decode(
            "{\"service\":\"a\",\"message\":\"m\"}\n{\"service\":\"b\",\"message\":\"n\"}",
            Shape::Json,
        )
        .unwrap();
        assert_eq!(sniffed.events.len(), 2);
    }

    #[test]
    fn bad_events_are_rejected_one_by_one() {
        let decoded = decode(
            r#"[{"service":"a","message":"m"},{"message":"no service"},7,{"service":"b","message":"n","level":"loud"}]"#,
            Shape::Json,
        )
        .unwrap();
        assert_eq!(decoded.events.len(), 1);
        let indexes: Vec<usize> = decoded.rejections.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [1, 2, 3]);
        assert!(decoded.rejections[0].reason.contains("missing service"));
        assert!(decoded.rejections[2].reason.contains("invalid level"));
    }

    #[test]
    fn ndjson_syntax_errors_carry_line_numbers() {
        let body =
            "{\"service\":\"a\",\"message\":\"m\"}\n\n{oops\n{\"service\":\"b\",\"message\":\"n\"}";
        let decoded = decode(body, Shape::Ndjson).unwrap();
        assert_eq!(decoded.events.len(), 2);
        assert_eq!(decoded.rejections.len(), 1);
        assert_eq!(decoded.rejections[0].index, 1);
        assert!(
            decoded.rejections[0].reason.starts_with("line 3:"),
            "{:?}",
            decoded.rejections
        );

        let error = decode("{oops\n{nope", Shape::Ndjson).unwrap_err();
        assert!(
            error.to_string().starts_with("line 1: invalid JSON"),
            "{error}"
        );
    }

    #[test]
    fn unusable_bodies_say_why() {
        assert!(
            decode("  ", Shape::Json)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            decode("[1,", Shape::Json)
                .unwrap_err()
                .to_string()
                .contains("invalid JSON")
        );
        assert!(
            decode("42", Shape::Json)
                .unwrap_err()
                .to_string()
                .contains("object")
        );
        assert!(
            decode(r#"{"message":"m"}"#, Shape::Json)
                .unwrap_err()
                .to_string()
                .contains("missing service")
        );
    }

    #[test]
    fn content_types_and_encodings() {
        assert_eq!(
            Shape::parse(Some("application/json; charset=utf-8")),
            Ok(Shape::Json)
        );
        assert_eq!(
            Shape::parse(Some("application/x-ndjson")),
            Ok(Shape::Ndjson)
        );
        assert!(matches!(
            Shape::parse(Some("application/xml")),
            Err(BodyError::UnsupportedContentType(_))
        ));
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
