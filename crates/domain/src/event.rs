//! Log events: turning whatever JSON a shipper sends into a validated [`LogEvent`].
//!
//! Field names and their aliases are the ones README.md lists for `POST /api/v1/logs`
//! (with the original design's `service_id`/`metadata`). For each field the first alias present wins; every other
//! top-level field (including unused aliases) is kept in `attributes`, so nothing a shipper
//! sends is thrown away.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::level::{Level, LevelError};
use crate::service::{ServiceName, ServiceNameError};
use crate::time::{Minute, TimestampError, parse_timestamp, to_storage_precision};

/// Aliases of the service field, in order of preference.
pub const SERVICE_FIELDS: [&str; 3] = ["service", "service_id", "service.name"];
/// Aliases of the level field, in order of preference.
pub const LEVEL_FIELDS: [&str; 4] = ["level", "severity", "severity_text", "lvl"];
/// Aliases of the message field, in order of preference.
pub const MESSAGE_FIELDS: [&str; 4] = ["message", "msg", "log", "MESSAGE"];
/// Aliases of the timestamp field, in order of preference.
pub const TIMESTAMP_FIELDS: [&str; 6] =
    ["timestamp", "ts", "@timestamp", "time", "date", "ISODATE"];
/// Aliases of the attributes object, in order of preference.
pub const ATTRIBUTE_FIELDS: [&str; 2] = ["attributes", "metadata"];
const TRACE_ID_FIELDS: [&str; 2] = ["trace_id", "traceId"];
const SPAN_ID_FIELDS: [&str; 2] = ["span_id", "spanId"];
/// Longest trace or span id kept in its own column; longer ones stay in attributes.
const MAX_ID_BYTES: usize = 64;

/// A validated log event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// Event time (microsecond precision).
    pub ts: DateTime<Utc>,
    pub service: ServiceName,
    pub level: Level,
    pub message: String,
    /// The attributes object, serialized as JSON text (it is stored as jsonb as is).
    pub attributes: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// The search terms of its words and attribute pairs ([`crate::search::terms`]), stored
    /// beside it for the log search index.
    pub terms: Vec<i32>,
    /// The minute the event counts in for detection (the `log_counts` rollups): the minute
    /// of `ts`, except that an event stamped in the future (a skewed clock, up to
    /// `max_future`) counts in the minute it arrived, so it is judged at once instead of
    /// when its minute comes. `ts` itself is stored as sent.
    pub counted_in: Minute,
}

impl LogEvent {
    /// Approximate bytes the event occupies in memory (the struct, its heap allocations and
    /// their allocator overhead); used to bound queues and batches.
    pub fn weight(&self) -> usize {
        const FIXED: usize = 256;
        FIXED
            + self.service.as_str().len()
            + self.message.len()
            + self.attributes.len()
            + self.trace_id.as_ref().map_or(0, String::len)
            + self.span_id.as_ref().map_or(0, String::len)
            + self.terms.len() * std::mem::size_of::<i32>()
    }
}

/// Bounds applied to every event.
#[derive(Debug, Clone)]
pub struct EventLimits {
    /// Longest message, in bytes.
    pub max_message_bytes: usize,
    /// Largest attributes object, in bytes of JSON.
    pub max_attributes_bytes: usize,
    /// How far in the past an event time may be (Loki's `reject_old_samples_max_age`).
    pub max_age: Duration,
    /// How far in the future an event time may be (clock skew allowance).
    pub max_future: Duration,
    /// Whether to compute the event's search terms (word and attribute search finds only
    /// events that have them).
    pub search_terms: bool,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_message_bytes: 64 * 1024,
            max_attributes_bytes: 64 * 1024,
            max_age: Duration::days(7),
            max_future: Duration::minutes(10),
            search_terms: true,
        }
    }
}

/// Why one event was refused. The text is the `reason` a client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event must be a JSON object")]
    NotAnObject,
    #[error("missing service (expected one of: service, service_id, service.name)")]
    MissingService,
    #[error("invalid service: {0}")]
    InvalidService(#[from] ServiceNameError),
    #[error("missing message (expected one of: message, msg, log, MESSAGE)")]
    MissingMessage,
    #[error("message is longer than {limit} bytes")]
    MessageTooLong { limit: usize },
    #[error("invalid level: {0}")]
    InvalidLevel(#[from] LevelError),
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(#[from] TimestampError),
    #[error("timestamp {0} is older than the accepted age")]
    TooOld(DateTime<Utc>),
    #[error("timestamp {0} is too far in the future")]
    InFuture(DateTime<Utc>),
    #[error("attributes must be a JSON object")]
    AttributesNotObject,
    #[error("attributes are larger than {limit} bytes")]
    AttributesTooLarge { limit: usize },
}

impl LogEvent {
    /// Validates one event of the native JSON format. A missing level means `info`; a
    /// missing timestamp means `received_at`.
    pub fn from_json(
        value: Value,
        received_at: DateTime<Utc>,
        limits: &EventLimits,
    ) -> Result<LogEvent, EventError> {
        let Value::Object(mut fields) = value else {
            return Err(EventError::NotAnObject);
        };

        let service = take_service(&mut fields)?;
        let message = match take_first(&mut fields, &MESSAGE_FIELDS) {
            None | Some(Value::Null) => return Err(EventError::MissingMessage),
            Some(Value::String(text)) => text,
            // Numbers, booleans and structured messages are kept as their JSON text.
            Some(other) => other.to_string(),
        };
        let level = match take_first(&mut fields, &LEVEL_FIELDS) {
            None | Some(Value::Null) => Level::Info,
            Some(value) => Level::from_json(&value)?,
        };
        let ts = match take_first(&mut fields, &TIMESTAMP_FIELDS) {
            None | Some(Value::Null) => received_at,
            Some(value) => parse_timestamp(&value)?,
        };
        let trace_id = take_id(&mut fields, &TRACE_ID_FIELDS);
        let span_id = take_id(&mut fields, &SPAN_ID_FIELDS);
        let mut attributes = match take_first(&mut fields, &ATTRIBUTE_FIELDS) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(EventError::AttributesNotObject),
        };
        for (key, value) in fields {
            // An explicit attribute wins over a top-level field of the same name.
            attributes.entry(key).or_insert(value);
        }

        LogEvent::new(
            ts,
            service,
            level,
            message,
            attributes,
            (trace_id, span_id),
            received_at,
            limits,
        )
    }

    /// Builds an event from already-extracted parts (used by every wire format), applying
    /// the limits.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ts: DateTime<Utc>,
        service: ServiceName,
        level: Level,
        message: String,
        attributes: Map<String, Value>,
        (trace_id, span_id): (Option<String>, Option<String>),
        received_at: DateTime<Utc>,
        limits: &EventLimits,
    ) -> Result<LogEvent, EventError> {
        if message.len() > limits.max_message_bytes {
            return Err(EventError::MessageTooLong {
                limit: limits.max_message_bytes,
            });
        }
        if ts < received_at - limits.max_age {
            return Err(EventError::TooOld(ts));
        }
        if ts > received_at + limits.max_future {
            return Err(EventError::InFuture(ts));
        }
        let mut attributes = Value::Object(attributes);
        strip_nul_in_value(&mut attributes);
        let message = strip_nul(message);
        let terms = match attributes.as_object() {
            Some(map) if limits.search_terms => crate::search::terms(&message, map),
            _ => Vec::new(),
        };
        let attributes = attributes.to_string();
        if attributes.len() > limits.max_attributes_bytes {
            return Err(EventError::AttributesTooLarge {
                limit: limits.max_attributes_bytes,
            });
        }
        Ok(LogEvent {
            counted_in: Minute::containing(ts.min(received_at)),
            ts: to_storage_precision(ts),
            service,
            level,
            message,
            attributes,
            terms,
            trace_id: trace_id.map(strip_nul),
            span_id: span_id.map(strip_nul),
        })
    }
}

/// PostgreSQL text and jsonb cannot hold NUL characters; they become U+FFFD instead of
/// failing the batch (or the request) that carries them.
pub fn strip_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

fn strip_nul_in_value(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('\0') => *text = text.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(strip_nul_in_value),
        Value::Object(map) => {
            if map.keys().any(|key| key.contains('\0')) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(key, value)| (strip_nul(key), value))
                    .collect();
            }
            map.values_mut().for_each(strip_nul_in_value);
        }
        _ => {}
    }
}

/// Removes and returns the first present field among `names`.
fn take_first(fields: &mut Map<String, Value>, names: &[&str]) -> Option<Value> {
    names.iter().find_map(|name| fields.remove(*name))
}

/// The service, also from an ECS-style `{"service": {"name": ...}}` object, whose other
/// members stay in attributes.
fn take_service(fields: &mut Map<String, Value>) -> Result<ServiceName, EventError> {
    for name in SERVICE_FIELDS {
        match fields.remove(name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(text)) => return Ok(ServiceName::parse(&text)?),
            Some(Value::Object(mut object)) => match object.remove("name") {
                Some(Value::String(text)) => {
                    let service = ServiceName::parse(&text)?;
                    if !object.is_empty() {
                        fields.insert(name.to_owned(), Value::Object(object));
                    }
                    return Ok(service);
                }
                _ => return Err(EventError::MissingService),
            },
            Some(other) => return Ok(ServiceName::parse(&other.to_string())?),
        }
    }
    Err(EventError::MissingService)
}

/// A trace or span id as its own column when it is a short string; otherwise it stays put.
fn take_id(fields: &mut Map<String, Value>, names: &[&str]) -> Option<String> {
    let name = names.iter().find(|name| {
        matches!(fields.get(**name), Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID_BYTES)
    })?;
    match fields.remove(*name) {
        Some(Value::String(id)) => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T17:40:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn parse(value: Value) -> Result<LogEvent, EventError> {
        LogEvent::from_json(value, now(), &EventLimits::default())
    }

    fn attributes(event: &LogEvent) -> Value {
        serde_json::from_str(&event.attributes).unwrap()
    }

    #[test]
    fn future_stamped_events_count_in_the_minute_they_arrived() {
        let ahead =
            parse(json!({"service": "a", "message": "m", "ts": "2026-11-25T17:42:30Z"})).unwrap();
        assert_eq!(ahead.ts.to_rfc3339(), "2026-11-25T17:42:30+00:00");
        assert_eq!(ahead.counted_in, Minute::containing(now()));
        let past =
            parse(json!({"service": "a", "message": "m", "ts": "2026-11-25T17:31:10Z"})).unwrap();
        assert_eq!(past.counted_in, Minute::containing(past.ts));
    }

    #[test]
    fn the_original_ingest_body_is_accepted_as_is() {
        let event = parse(json!({
            "service_id": "payments",
            "timestamp": "2026-11-25T17:32:28Z",
            "level": "ERROR",
            "message": "card declined",
            "metadata": {"order": 42}
        }))
        .unwrap();
        assert_eq!(event.service.as_str(), "payments");
        assert_eq!(event.level, Level::Error);
        assert_eq!(event.message, "card declined");
        assert_eq!(attributes(&event), json!({"order": 42}));
        assert_eq!(event.ts.to_rfc3339(), "2026-11-25T17:32:28+00:00");
    }

    #[test]
    fn syslog_ng_ndjson_fields_map_and_the_rest_is_kept() {
        let event = parse(json!({
            "service": "checkout-nd", "level": "err", "PROGRAM": "checkout", "PRIORITY": "err",
            "MESSAGE": "order 1 processed", "ISODATE": "2026-11-25T17:32:28+00:00", "HOST": "vm"
        }))
        .unwrap();
        assert_eq!(event.service.as_str(), "checkout-nd");
        assert_eq!(event.level, Level::Error);
        assert_eq!(event.message, "order 1 processed");
        assert_eq!(
            attributes(&event),
            json!({"PROGRAM": "checkout", "PRIORITY": "err", "HOST": "vm"})
        );
    }

    #[test]
    fn aliases_follow_their_order_and_unused_ones_stay_in_attributes() {
        let event = parse(json!({
            "service.name": "api", "severity": "warning", "lvl": "debug", "msg": "slow",
            "@timestamp": 1_795_627_948_000u64, "attributes": {"k": "v"}, "extra": 1
        }))
        .unwrap();
        assert_eq!(event.service.as_str(), "api");
        assert_eq!(event.level, Level::Warn);
        assert_eq!(event.message, "slow");
        assert_eq!(
            attributes(&event),
            json!({"k": "v", "lvl": "debug", "extra": 1})
        );
    }

    #[test]
    fn ecs_service_objects_are_understood() {
        let event =
            parse(json!({"service": {"name": "web", "version": "1.2"}, "message": "m"})).unwrap();
        assert_eq!(event.service.as_str(), "web");
        assert_eq!(attributes(&event), json!({"service": {"version": "1.2"}}));
    }

    #[test]
    fn defaults_for_level_and_time() {
        let event = parse(json!({"service": "s", "message": "m"})).unwrap();
        assert_eq!(event.level, Level::Info);
        assert_eq!(event.ts, now());
    }

    #[test]
    fn nul_characters_are_replaced_not_fatal() {
        let event = parse(json!({"service": "s", "message": "a\0b", "k\0": ["x\0"]})).unwrap();
        assert_eq!(event.message, "a\u{FFFD}b");
        assert!(
            !event.attributes.contains("\\u0000"),
            "{}",
            event.attributes
        );
        assert_eq!(attributes(&event), json!({"k\u{FFFD}": ["x\u{FFFD}"]}));
    }

    #[test]
    fn trace_ids_get_their_columns() {
        let event =
            parse(json!({"service": "s", "message": "m", "traceId": "abc", "span_id": "d"}))
                .unwrap();
        assert_eq!(event.trace_id.as_deref(), Some("abc"));
        assert_eq!(event.span_id.as_deref(), Some("d"));
        assert_eq!(attributes(&event), json!({}));
    }

    #[test]
    fn each_bad_field_has_its_reason() {
        let cases = [
            (json!([1]), "must be a JSON object"),
            (json!({"message": "m"}), "missing service"),
            (json!({"service": "a b", "message": "m"}), "invalid service"),
            (json!({"service": "s"}), "missing message"),
            (
                json!({"service": "s", "message": "m", "level": "loud"}),
                "invalid level",
            ),
            (
                json!({"service": "s", "message": "m", "ts": "soon"}),
                "invalid timestamp",
            ),
            (
                json!({"service": "s", "message": "m", "ts": "2020-01-01T00:00:00Z"}),
                "older",
            ),
            (
                json!({"service": "s", "message": "m", "ts": "2030-01-01T00:00:00Z"}),
                "future",
            ),
            (
                json!({"service": "s", "message": "m", "attributes": [1]}),
                "attributes must be",
            ),
            (
                json!({"service": "s", "message": "x".repeat(70_000)}),
                "longer than 65536",
            ),
        ];
        for (value, reason) in cases {
            let error = parse(value.clone()).unwrap_err().to_string();
            assert!(error.contains(reason), "{value}: {error}");
        }
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("service".to_owned()),
                        Just("message".to_owned()),
                        Just("level".to_owned()),
                        Just("ts".to_owned()),
                        Just("attributes".to_owned()),
                        "[a-z]{1,6}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_is_accepted_or_refused_without_panicking(value in arbitrary_json()) {
            if let Ok(event) = parse(value) {
                prop_assert!(serde_json::from_str::<Value>(&event.attributes).unwrap().is_object());
            }
        }

        #[test]
        fn well_formed_events_round_trip(
            service in "[a-z][a-z0-9-]{0,20}",
            message in "\\PC{0,200}",
            level in 0usize..6,
            offset_ms in -86_400_000i64..600_000,
            extra in "[a-z]{1,8}",
        ) {
            let level = Level::ALL[level];
            let ts = now() + Duration::milliseconds(offset_ms);
            let event = parse(json!({
                "service": service, "message": message, "level": level.as_str(),
                "timestamp": ts.to_rfc3339(), "attributes": {"x": 1}, "zz_extra": extra,
            })).unwrap();
            prop_assert_eq!(event.service.as_str(), service.as_str());
            prop_assert_eq!(&event.message, &message);
            prop_assert_eq!(event.level, level);
            prop_assert_eq!(event.ts, ts);
            prop_assert_eq!(attributes(&event), json!({"x": 1, "zz_extra": extra}));
        }
    }
}
