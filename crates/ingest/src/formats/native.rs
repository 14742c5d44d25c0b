//! The native format: threesigma's own JSON, as one object, an array of objects, or NDJSON
//! (also sniffed when a shipper labels it `application/json`), answered with
//! `{"accepted", "rejected", "errors"}`. Each event is validated on its own: a bad event is
//! rejected with its index and reason and the good ones around it are kept, except that a
//! single object is the whole body, so its refusal is the body's.

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use domain::{EventLimits, LogEvent};
use serde::Serialize;
use serde_json::Value;

use super::{BodyError, Context, Decoded, Outcome, Rejection, WireFormat};

/// The native format, served on `/api/v1/logs` and `/ingest`.
pub struct Native;

impl WireFormat for Native {
    type Kind = Shape;
    type Receipt = ();

    fn kind(request: &HttpRequest) -> Result<Shape, BodyError> {
        Shape::parse(super::content_type(request)?)
    }

    fn decode(body: &[u8], shape: &Shape, context: &Context) -> Result<(Decoded, ()), BodyError> {
        decode_events(body, *shape, context.received_at, &context.limits)
            .map(|decoded| (decoded, ()))
    }

    fn answer(outcome: Outcome, _: &Shape, (): ()) -> HttpResponse {
        HttpResponse::build(outcome.status).json(IngestResponse {
            accepted: outcome.accepted,
            rejected: outcome.rejected,
            errors: outcome.errors,
        })
    }
}

/// The answer to a native request.
#[derive(Debug, Serialize)]
pub struct IngestResponse {
    pub accepted: usize,
    pub rejected: usize,
    pub errors: Vec<Rejection>,
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
        // Only JSON types: a `text/plain` or `application/octet-stream` body is not declared
        // as JSON, and a 415 tells its sender so instead of a guess.
        match mime.as_str() {
            "" | "application/json" | "text/json" => Ok(Shape::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonlines"
            | "application/x-jsonlines"
            | "application/jsonl"
            | "application/x-json-stream" => Ok(Shape::Ndjson),
            _ => Err(BodyError::UnsupportedContentType {
                content_type: value.to_owned(),
                supported: "application/json, application/x-ndjson",
            }),
        }
    }
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
        (Shape::Ndjson, _) => decode_lines(text, received_at, limits).and_then(some_valid),
        (Shape::Json, b'[') => decode_array(text, received_at, limits).and_then(some_valid),
        (Shape::Json, b'{') => match serde_json::from_slice::<Value>(text) {
            // A single event is the whole body: its refusal is the body's.
            Ok(single) => {
                let event = LogEvent::from_json(single, received_at, limits)
                    .map_err(|error| BodyError::Unusable(error.to_string()))?;
                Ok(Decoded {
                    events: vec![event],
                    ..Decoded::default()
                })
            }
            // Several lines that do not form one JSON document: NDJSON sent as JSON.
            Err(_) if count_lines(text) > 1 => {
                decode_lines(text, received_at, limits).and_then(some_valid)
            }
            Err(error) => Err(BodyError::Unusable(format!("invalid JSON: {error}"))),
        },
        (Shape::Json, _) => Err(BodyError::Unusable(
            "body must be a JSON object, an array of objects, or NDJSON".to_owned(),
        )),
    }
}

/// A body with events, none of them valid, is unusable as a whole: a 400 saying why,
/// rather than a 200 that accepted nothing.
fn some_valid(decoded: Decoded) -> Result<Decoded, BodyError> {
    if !decoded.events.is_empty() {
        return Ok(decoded);
    }
    match decoded.rejections.first() {
        None => Err(BodyError::Unusable("body holds no events".to_owned())),
        Some(first) => Err(BodyError::Unusable(format!(
            "no valid event in the body ({} rejected); the first, at index {}: {}",
            decoded.rejected, first.index, first.reason
        ))),
    }
}

fn count_lines(text: &[u8]) -> usize {
    text.split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .count()
}

/// Validates one parsed candidate into `decoded`; `line` is its 1-based line in an NDJSON
/// body.
fn validate(
    decoded: &mut Decoded,
    index: usize,
    line: Option<usize>,
    value: Value,
    received_at: DateTime<Utc>,
    limits: &EventLimits,
) -> Result<(), BodyError> {
    match LogEvent::from_json(value, received_at, limits) {
        Ok(event) => decoded.accept(event),
        Err(error) => decoded.reject(Rejection {
            index,
            line,
            reason: match line {
                Some(line) => format!("line {line}: {error}"),
                None => error.to_string(),
            },
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
    use serde::de::{Error as _, SeqAccess, Visitor};

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
            let mut index = 0;
            while let Some(value) = seq.next_element::<Value>()? {
                validate(
                    &mut decoded,
                    index,
                    None,
                    value,
                    self.received_at,
                    self.limits,
                )
                .map_err(A::Error::custom)?;
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
        .map_err(|error| {
            let too_many = BodyError::TooManyEvents {
                limit: super::MAX_EVENTS_PER_BODY,
            };
            if error.to_string().starts_with(&too_many.to_string()) {
                too_many
            } else {
                BodyError::Unusable(format!("invalid JSON: {error}"))
            }
        })?;
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
                validate(
                    &mut decoded,
                    index,
                    Some(line_index + 1),
                    value,
                    received_at,
                    limits,
                )?;
            }
            Err(error) => {
                let reason = format!("line {}: invalid JSON: {error}", line_index + 1);
                first_syntax_error.get_or_insert_with(|| reason.clone());
                decoded.reject(Rejection {
                    index,
                    line: Some(line_index + 1),
                    reason,
                })?;
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
    fn content_types() {
        assert_eq!(
            Shape::parse(Some("application/json; charset=utf-8")),
            Ok(Shape::Json)
        );
        assert_eq!(
            Shape::parse(Some("application/x-ndjson")),
            Ok(Shape::Ndjson)
        );
        for refused in ["application/xml", "text/plain", "application/octet-stream"] {
            assert!(
                matches!(
                    Shape::parse(Some(refused)),
                    Err(BodyError::UnsupportedContentType { .. })
                ),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_body_of_only_invalid_events_is_refused_with_the_first_reason() {
        for (body, shape, says) in [
            (
                r#"[{"message":"no service"},7]"#,
                Shape::Json,
                "2 rejected); the first, at index 0: missing service",
            ),
            (
                "{\"message\":\"a\"}\n\n{\"service\":\"b\"}\n",
                Shape::Ndjson,
                "the first, at index 0: line 1: missing service",
            ),
            ("[]", Shape::Json, "no events"),
        ] {
            let error = decode(body, shape).unwrap_err().to_string();
            assert!(error.contains(says), "{body}: {error}");
        }
    }

    #[test]
    fn ndjson_rejections_name_their_line() {
        let body = "{\"service\":\"a\",\"message\":\"m\"}\n\n\n{\"service\":\"b\"}\n";
        let decoded = decode(body, Shape::Ndjson).unwrap();
        assert_eq!(decoded.rejections.len(), 1);
        let rejection = &decoded.rejections[0];
        assert_eq!((rejection.index, rejection.line), (1, Some(4)));
        assert!(rejection.reason.starts_with("line 4: "), "{rejection:?}");
        let json = serde_json::to_value(rejection).unwrap();
        assert_eq!(json["line"], 4);
        let array = decode(r#"[{"service":"a","message":"m"},{}]"#, Shape::Json).unwrap();
        let json = serde_json::to_value(&array.rejections[0]).unwrap();
        assert!(json.get("line").is_none(), "{json}");
    }

    #[test]
    fn unsupported_content_type_names_the_native_types() {
        let error = Shape::parse(Some("application/xml")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unsupported Content-Type \"application/xml\" \
             (supported: application/json, application/x-ndjson)"
        );
    }
}
