//! Loki push (`POST /loki/api/v1/push`): Loki's `PushRequest` as snappy-compressed protobuf
//! (`application/x-protobuf`, what Promtail, Alloy and Loki clients send) or as JSON
//! (`{"streams":[{"stream":{labels},"values":[["<ns>","line",{metadata}]]}]}`, gzip
//! allowed). Answered as Loki does: 204 when every entry was taken; 400 with a text reason
//! when some were not (the others are stored, as Loki stores them); text errors.
//!
//! An entry becomes an event so:
//! - service: the first of `ingest.loki_service_labels` (default `service_name`,
//!   `service`, `app`, `job`, `container`) among the stream's labels; an entry of a stream
//!   with none is rejected;
//! - level: the `level`, `detected_level` or `severity` label or structured metadata, else
//!   the line's own level when it is JSON (`level`, `severity`, `lvl`; pino's numbers) or
//!   logfmt (`level=`), else info;
//! - message: the line, or a JSON line's `msg`/`message` (its other fields become
//!   attributes);
//! - attributes: `{"labels": {…}, "structured_metadata": {…}, "fields": {…}}` (the label
//!   that named the service and the label or metadata entry that gave the level are their
//!   columns, not repeated here).

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use domain::{Level, LogEvent, ServiceName};
use serde::Deserialize;
use serde_json::{Map, Value};
use web::ApiError;

use super::wire::{bounded, counted_json, decode_message, for_each_message};
use super::{BodyError, Context, Decoded, Outcome, Rejection, WireFormat, media_type, reshape};

/// Loki's push API, served on `/loki/api/v1/push`.
pub struct Loki;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LokiEncoding {
    /// Snappy-compressed protobuf.
    Protobuf,
    Json,
}

const PROTOBUF: &str = "Loki protobuf";
const JSON: &str = "Loki JSON";
const LEVEL_KEYS: [&str; 3] = ["level", "detected_level", "severity"];

impl WireFormat for Loki {
    const IGNORES_QUERY: bool = true;
    type Kind = LokiEncoding;
    type Receipt = ();

    fn kind(request: &HttpRequest) -> Result<LokiEncoding, BodyError> {
        let header = super::content_type(request)?;
        match media_type(header).as_str() {
            // Loki itself reads anything but JSON as protobuf.
            "" | "application/x-protobuf" | "application/protobuf" => Ok(LokiEncoding::Protobuf),
            "application/json" => Ok(LokiEncoding::Json),
            _ => Err(BodyError::UnsupportedContentType {
                content_type: header.unwrap_or("").to_owned(),
                supported: "application/x-protobuf (snappy), application/json",
            }),
        }
    }

    fn decode(
        body: &[u8],
        encoding: &LokiEncoding,
        context: &Context,
    ) -> Result<(Decoded, ()), BodyError> {
        let plain = match encoding {
            LokiEncoding::Protobuf => Some(unsnappy(body, context.max_body_bytes)?),
            LokiEncoding::Json => None,
        };
        let source = plain.as_deref().unwrap_or(body);
        let mut entries = Entries {
            context,
            decoded: Decoded::for_source(source.len()),
            index: 0,
        };
        match encoding {
            LokiEncoding::Protobuf => decode_protobuf(source, &mut entries)?,
            LokiEncoding::Json => decode_json(source, &mut entries)?,
        }
        Ok((entries.decoded, ()))
    }

    fn answer(outcome: Outcome, _: &LokiEncoding, (): ()) -> HttpResponse {
        if outcome.rejected == 0 {
            return HttpResponse::NoContent().finish();
        }
        let reasons: Vec<String> = outcome
            .errors
            .iter()
            .take(10)
            .map(|error| format!("entry {}: {}", error.index, error.reason))
            .collect();
        HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "{} entries rejected ({} accepted): {}\n",
                outcome.rejected,
                outcome.accepted,
                reasons.join("; ")
            ))
    }

    fn refuse(error: ApiError, _: Option<&LokiEncoding>) -> actix_web::Error {
        let text = format!("{error}\n");
        reshape(error, "text/plain; charset=utf-8", text.into_bytes())
    }
}

/// A snappy block (Loki's framing), refused past `limit` decompressed bytes before any of
/// it is allocated.
fn unsnappy(body: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let corrupt = |error: snap::Error| BodyError::Corrupt {
        encoding: "snappy",
        reason: error.to_string(),
    };
    let length = snap::raw::decompress_len(body).map_err(corrupt)?;
    if length > limit {
        return Err(BodyError::TooLarge { limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(corrupt)
}

/// Loki's `EntryAdapter` (push.proto): timestamp = 1, line = 2, structuredMetadata = 3.
#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    line: String,
    #[prost(message, repeated, tag = "3")]
    structured_metadata: Vec<LabelPair>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelPair {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

/// `PushRequest.streams` = 1; `StreamAdapter.labels` = 1, `.entries` = 2.
fn decode_protobuf(body: &[u8], entries: &mut Entries<'_>) -> Result<(), BodyError> {
    let cap = super::max_record_wire_bytes(&entries.context.limits);
    for_each_message(body, PROTOBUF, |field, stream| {
        if field != 1 {
            return Ok(());
        }
        let mut labels = Ok(BTreeMap::new());
        for_each_message(stream, PROTOBUF, |field, bytes| {
            if field == 1 {
                labels = if bytes.len() > cap {
                    Err(format!(
                        "labels of {} bytes: larger than any event can be",
                        bytes.len()
                    ))
                } else {
                    std::str::from_utf8(bytes)
                        .map_err(|_| "labels are not UTF-8".to_owned())
                        .and_then(parse_labels)
                };
            }
            Ok(())
        })?;
        for_each_message(stream, PROTOBUF, |field, bytes| {
            if field != 2 {
                return Ok(());
            }
            if bytes.len() > cap {
                return entries.reject(format!(
                    "entry of {} bytes: larger than any event can be",
                    bytes.len()
                ));
            }
            let entry: Entry = match decode_message(bytes, PROTOBUF) {
                Ok(entry) => entry,
                Err(error) => return entries.reject(error.to_string()),
            };
            let ts = entry.timestamp.map(|ts| {
                DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).unwrap_or(0))
            });
            let metadata = entry
                .structured_metadata
                .into_iter()
                .map(|pair| (pair.name, pair.value))
                .collect();
            let ts = match ts {
                None => Ok(None),
                Some(Some(ts)) => Ok(Some(ts)),
                Some(None) => Err("timestamp out of range".to_owned()),
            };
            entries.entry(&labels, ts, entry.line, metadata)
        })
    })
}

#[derive(Deserialize)]
struct JsonPush {
    #[serde(default)]
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "bounded")]
    values: Vec<Vec<Value>>,
}

fn decode_json(body: &[u8], entries: &mut Entries<'_>) -> Result<(), BodyError> {
    let push: JsonPush = counted_json(body, JSON)?;
    let cap = super::max_record_wire_bytes(&entries.context.limits);
    for stream in push.streams {
        let size: usize = stream.stream.iter().map(|(k, v)| k.len() + v.len()).sum();
        let labels = if size > cap {
            Err(format!(
                "labels of {size} bytes: larger than any event can be"
            ))
        } else {
            Ok(stream.stream)
        };
        for value in stream.values {
            let mut parts = value.into_iter();
            let ts = match parts.next() {
                Some(Value::String(text)) => nanos(&text),
                Some(Value::Number(number)) => nanos(&number.to_string()),
                _ => Err("expected [\"<unix epoch in nanoseconds>\", \"<line>\"]".to_owned()),
            };
            let line = match parts.next() {
                Some(Value::String(line)) => line,
                _ => {
                    entries.reject("expected the line as the second element".to_owned())?;
                    continue;
                }
            };
            let metadata = match parts.next() {
                Some(Value::Object(map)) => map
                    .into_iter()
                    .map(|(key, value)| match value {
                        Value::String(text) => (key, text),
                        other => (key, other.to_string()),
                    })
                    .collect(),
                _ => BTreeMap::new(),
            };
            entries.entry(&labels, ts.map(Some), line, metadata)?;
        }
    }
    Ok(())
}

/// Nanoseconds since the epoch, written as decimal text.
fn nanos(text: &str) -> Result<DateTime<Utc>, String> {
    text.trim()
        .parse::<i64>()
        .map(DateTime::from_timestamp_nanos)
        .map_err(|_| format!("timestamp {text:?} is not nanoseconds since the epoch"))
}

/// Parses a Prometheus label set: `{name="value", other="a \"quoted\" value"}`.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let bad = || format!("labels {text:?} are not {{name=\"value\", ...}}");
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or_else(bad)?;
    let mut labels = BTreeMap::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.') {
            name.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if name.is_empty() || chars.next() != Some('=') {
            return Err(bad());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('"') {
            return Err(bad());
        }
        let mut value = String::new();
        loop {
            match chars.next().ok_or_else(bad)? {
                '"' => break,
                '\\' => match chars.next().ok_or_else(bad)? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        labels.insert(name, value);
    }
}

struct Entries<'a> {
    context: &'a Context,
    decoded: Decoded,
    index: usize,
}

impl Entries<'_> {
    fn reject(&mut self, reason: String) -> Result<(), BodyError> {
        let index = self.index;
        self.index += 1;
        self.decoded.reject(Rejection {
            index,
            line: None,
            reason,
        })
    }

    fn entry(
        &mut self,
        labels: &Result<BTreeMap<String, String>, String>,
        ts: Result<Option<DateTime<Utc>>, String>,
        line: String,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), BodyError> {
        let built = labels
            .clone()
            .and_then(|labels| event(labels, ts?, line, metadata, self.context));
        match built {
            Ok(event) => {
                self.index += 1;
                self.decoded.accept(event)
            }
            Err(reason) => self.reject(reason),
        }
    }
}

fn event(
    labels: BTreeMap<String, String>,
    ts: Option<DateTime<Utc>>,
    line: String,
    metadata: BTreeMap<String, String>,
    context: &Context,
) -> Result<LogEvent, String> {
    let mut labels = labels;
    let service_labels = &context.shippers.loki_service_labels;
    // The label naming the service is the service column, not repeated in attributes.
    let service = service_labels
        .iter()
        .find_map(|name| labels.remove(name))
        .ok_or_else(|| {
            format!(
                "no service label (looked for {}); set one in the client's labels",
                service_labels.join(", ")
            )
        })
        .and_then(|name| {
            ServiceName::parse(&name).map_err(|error| format!("invalid service: {error}"))
        })?;
    // A label or metadata entry that gives the level is the level column, not repeated.
    let mut metadata = metadata;
    let mut level = None;
    for key in LEVEL_KEYS {
        if let Some(found) = labels.get(key).and_then(|text| Level::parse(text).ok()) {
            labels.remove(key);
            level = Some(found);
            break;
        }
        if let Some(found) = metadata.get(key).and_then(|text| Level::parse(text).ok()) {
            metadata.remove(key);
            level = Some(found);
            break;
        }
    }
    let mut message = line;
    let mut fields = Map::new();
    if message.trim_start().starts_with('{') {
        if let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(&message) {
            if level.is_none() {
                level = ["level", "severity", "lvl"]
                    .iter()
                    .find_map(|key| object.get(*key))
                    .and_then(json_level);
            }
            if let Some(Value::String(text)) =
                object.remove("msg").or_else(|| object.remove("message"))
            {
                message = text;
            }
            fields = object;
        }
    } else if level.is_none() {
        level = logfmt_level(&message);
    }
    let mut attributes = Map::new();
    let strings = |map: BTreeMap<String, String>| {
        Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    };
    attributes.insert("labels".to_owned(), strings(labels));
    if !metadata.is_empty() {
        attributes.insert("structured_metadata".to_owned(), strings(metadata));
    }
    if !fields.is_empty() {
        attributes.insert("fields".to_owned(), Value::Object(fields));
    }
    LogEvent::new(
        ts.unwrap_or(context.received_at),
        service,
        level.unwrap_or(Level::Info),
        message,
        attributes,
        (None, None),
        context.received_at,
        &context.limits,
    )
    .map_err(|error| error.to_string())
}

/// A JSON line's level: a name, pino's numbers (10 trace … 60 fatal), or another number
/// as threesigma reads numbers.
fn json_level(value: &Value) -> Option<Level> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .and_then(|n| Level::from_pino(n).or_else(|| Level::from_number(n))),
        other => Level::from_json(other).ok(),
    }
}

/// `level=...` (or `lvl=`, `severity=`, any case) in a logfmt line, quoted or not; pairs
/// separated by any whitespace, quoted values with backslash escapes.
fn logfmt_level(line: &str) -> Option<Level> {
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.peek()?;
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        if ["level", "lvl", "severity"]
            .iter()
            .any(|name| key.eq_ignore_ascii_case(name))
        {
            return Level::parse(&value).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prost::Message;

    use super::*;
    use crate::formats::ShipperSettings;

    fn context() -> Context {
        Context {
            received_at: Utc::now(),
            limits: domain::EventLimits::default(),
            max_body_bytes: 16 << 20,
            shippers: Arc::new(ShipperSettings::default()),
        }
    }

    fn decode(body: &[u8], encoding: LokiEncoding) -> Result<Decoded, BodyError> {
        Loki::decode(body, &encoding, &context()).map(|(decoded, ())| decoded)
    }

    /// Loki's PushRequest, encoded by hand with the entry type above.
    fn push(labels: &str, lines: &[&str]) -> Vec<u8> {
        let now = Utc::now();
        let mut stream = Vec::new();
        prost::encoding::string::encode(1, &labels.to_owned(), &mut stream);
        for line in lines {
            let entry = Entry {
                timestamp: Some(Timestamp {
                    seconds: now.timestamp(),
                    nanos: 5,
                }),
                line: (*line).to_owned(),
                structured_metadata: vec![LabelPair {
                    name: "trace_id".into(),
                    value: "abc".into(),
                }],
            };
            prost::encoding::message::encode(2, &entry, &mut stream);
        }
        let mut request = Vec::new();
        prost::encoding::bytes::encode(1, &stream, &mut request);
        snap::raw::Encoder::new().compress_vec(&request).unwrap()
    }

    #[test]
    fn protobuf_streams_become_events() {
        let body = push(
            r#"{service_name="checkout", env="prod", level="error"}"#,
            &["payment failed", "{\"msg\":\"json line\",\"order\":7}"],
        );
        let decoded = decode(&body, LokiEncoding::Protobuf).unwrap();
        let [plain, json] = &decoded.events[..] else {
            panic!("{:?}", decoded.rejections);
        };
        assert_eq!(plain.service.as_str(), "checkout");
        assert_eq!(plain.level, Level::Error);
        assert_eq!(plain.message, "payment failed");
        assert_eq!(json.message, "json line");
        let attributes: Value = serde_json::from_str(&json.attributes).unwrap();
        assert_eq!(attributes["labels"]["env"], "prod");
        assert_eq!(attributes["structured_metadata"]["trace_id"], "abc");
        assert_eq!(attributes["fields"]["order"], 7);
    }

    #[test]
    fn levels_come_from_labels_metadata_json_lines_and_logfmt() {
        let body = serde_json::json!({"streams": [
            {"stream": {"app": "a"}, "values": [
                [Utc::now().timestamp_nanos_opt().unwrap().to_string(), "{\"level\":50,\"msg\":\"pino\"}"],
                [Utc::now().timestamp_nanos_opt().unwrap().to_string(), "ts=1 level=warn msg=\"disk\""],
                [Utc::now().timestamp_nanos_opt().unwrap().to_string(), "plain", {"detected_level": "debug"}],
                [Utc::now().timestamp_nanos_opt().unwrap().to_string(), "{\"severity\":\"ERROR\"}"]
            ]}
        ]});
        let decoded = decode(body.to_string().as_bytes(), LokiEncoding::Json).unwrap();
        let levels: Vec<Level> = decoded.events.iter().map(|e| e.level).collect();
        assert_eq!(
            levels,
            vec![Level::Error, Level::Warn, Level::Debug, Level::Error]
        );
        assert_eq!(decoded.events[0].message, "pino");
    }

    #[test]
    fn entries_without_a_service_are_rejected_and_bodies_checked() {
        let body = serde_json::json!({"streams": [
            {"stream": {"env": "x"}, "values": [["1", "no service"]]},
            {"stream": {"job": "j"}, "values": [[Utc::now().timestamp_nanos_opt().unwrap().to_string(), "ok"], ["soon", "bad ts"]]}
        ]});
        let decoded = decode(body.to_string().as_bytes(), LokiEncoding::Json).unwrap();
        assert_eq!(decoded.events.len(), 1);
        assert_eq!(decoded.events[0].service.as_str(), "j");
        let reasons: Vec<(usize, &str)> = decoded
            .rejections
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert!(reasons[0].1.contains("no service label"), "{reasons:?}");
        assert_eq!(reasons[1].0, 2);
        assert!(reasons[1].1.contains("nanoseconds"), "{reasons:?}");
        assert!(matches!(
            decode(b"not snappy", LokiEncoding::Protobuf),
            Err(BodyError::Corrupt { .. })
        ));
        let huge = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 17 << 20])
            .unwrap();
        assert!(matches!(
            decode(&huge, LokiEncoding::Protobuf),
            Err(BodyError::TooLarge { .. })
        ));
    }

    #[test]
    fn logfmt_levels_survive_quotes_tabs_and_case() {
        assert_eq!(
            logfmt_level("msg=\"say \\\"hi\\\" level=x\" level=error"),
            Some(Level::Error)
        );
        assert_eq!(logfmt_level("msg=foo\tlevel=warn"), Some(Level::Warn));
        assert_eq!(logfmt_level("LEVEL=debug msg=x"), Some(Level::Debug));
        assert_eq!(logfmt_level("no level here"), None);
        assert_eq!(logfmt_level("a=\"unterminated"), None);
    }

    #[test]
    fn prometheus_label_sets_parse() {
        let labels = parse_labels(r#"{a="1", b_c="x \"y\" \\ z", d.e="" }"#).unwrap();
        assert_eq!(labels["a"], "1");
        assert_eq!(labels["b_c"], "x \"y\" \\ z");
        assert_eq!(labels["d.e"], "");
        assert!(parse_labels("{}").unwrap().is_empty());
        for bad in ["a=\"1\"", "{a=1}", "{a=\"1}", "{=\"x\"}"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
        let _ = Entry::default().encode_to_vec();
    }
}
