//! OTLP/HTTP logs (`POST /v1/logs`): an `ExportLogsServiceRequest` as protobuf
//! (`application/x-protobuf`) or in the OTLP JSON mapping (`application/json`), answered
//! with an `ExportLogsServiceResponse` in the same encoding (`partial_success` when records
//! were rejected), and refused with a `google.rpc.Status` in the same encoding.
//!
//! A record becomes an event so:
//! - service: the resource's `service.name` (the SDKs' `unknown_service:*` is kept as is),
//!   `unknown_service` when there is none;
//! - level: `severityNumber`, else `severityText`, else info;
//! - message: a string body as it is, any other body as its JSON text, empty without one;
//! - time: `timeUnixNano`, else `observedTimeUnixNano`, else the receive time;
//! - attributes: `{"resource": {…}, "scope": {"name", "version", "attributes"},
//!   "attributes": {…}}` plus `severity_text`, `event_name` and `flags` when set, so
//!   resource, scope and record attributes of the same name never collide (the resource's
//!   `service.name` is the service column, not repeated here);
//! - trace and span ids: lowercase hex, when set and of their length (16 and 8 bytes).

use actix_web::{HttpRequest, HttpResponse};
use domain::{Level, LogEvent, ServiceName};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde::Deserialize;
use serde_json::{Map, Value};
use web::ApiError;

use super::wire::{bounded, counted_json, decode_message, for_each_message, from_unix_nanos};
use super::{BodyError, Context, Decoded, Outcome, Rejection, WireFormat, media_type, reshape};

/// OTLP/HTTP logs, served on `/v1/logs` (and on `ingest.otlp_bind`).
pub struct Otlp;

/// The request's encoding, which its answer uses too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpEncoding {
    Protobuf,
    Json,
}

const PROTOBUF: &str = "OTLP protobuf";
const JSON: &str = "OTLP JSON";
/// The service of records whose resource names none (the OpenTelemetry default).
const UNKNOWN_SERVICE: &str = "unknown_service";

impl WireFormat for Otlp {
    const IGNORES_QUERY: bool = true;
    type Kind = OtlpEncoding;
    type Receipt = ();

    fn kind(request: &HttpRequest) -> Result<OtlpEncoding, BodyError> {
        let header = super::content_type(request)?;
        match media_type(header).as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(OtlpEncoding::Protobuf),
            "application/json" => Ok(OtlpEncoding::Json),
            _ => Err(BodyError::UnsupportedContentType {
                content_type: header.unwrap_or("").to_owned(),
                supported: "application/x-protobuf, application/json",
            }),
        }
    }

    fn decode(
        body: &[u8],
        encoding: &OtlpEncoding,
        context: &Context,
    ) -> Result<(Decoded, ()), BodyError> {
        let mut records = Records::new(context, body.len());
        match encoding {
            OtlpEncoding::Protobuf => decode_protobuf(body, &mut records)?,
            OtlpEncoding::Json => decode_json(body, &mut records)?,
        }
        Ok((records.decoded, ()))
    }

    fn answer(outcome: Outcome, encoding: &OtlpEncoding, (): ()) -> HttpResponse {
        let partial_success = (outcome.rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: i64::try_from(outcome.rejected).unwrap_or(i64::MAX),
            error_message: summary(&outcome.errors, outcome.rejected),
        });
        let response = ExportLogsServiceResponse { partial_success };
        // OTLP exporters take only 200 as success (a buffered ack's 202 included).
        match encoding {
            OtlpEncoding::Protobuf => HttpResponse::Ok()
                .content_type("application/x-protobuf")
                .body(response.encode_to_vec()),
            // `{}` rather than `{"partialSuccess": null}` when everything was accepted.
            OtlpEncoding::Json if response.partial_success.is_none() => HttpResponse::Ok()
                .content_type("application/json")
                .body("{}"),
            OtlpEncoding::Json => HttpResponse::Ok().json(response),
        }
    }

    fn refuse(error: ApiError, encoding: Option<&OtlpEncoding>) -> actix_web::Error {
        use actix_web::ResponseError;
        let status = Status {
            code: grpc_code(error.status_code()),
            message: error.to_string(),
        };
        match encoding {
            Some(OtlpEncoding::Json) => {
                let body = serde_json::json!({"code": status.code, "message": status.message});
                reshape(error, "application/json", body.to_string().into_bytes())
            }
            _ => reshape(error, "application/x-protobuf", status.encode_to_vec()),
        }
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP error answers (details are not used).
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The gRPC code matching an HTTP status (OTLP/HTTP carries both).
fn grpc_code(status: actix_web::http::StatusCode) -> i32 {
    match status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        408 => 4,             // DEADLINE_EXCEEDED
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}

/// `error_message` of a partial success: how many, and the first reasons.
fn summary(errors: &[Rejection], rejected: usize) -> String {
    let reasons: Vec<String> = errors
        .iter()
        .take(5)
        .map(|error| format!("record {}: {}", error.index, error.reason))
        .collect();
    format!("{rejected} log record(s) rejected; {}", reasons.join("; "))
}

/// Turns records into events as they are decoded.
struct Records<'a> {
    context: &'a Context,
    decoded: Decoded,
    index: usize,
}

/// What the records of one scope share.
struct Origin {
    service: Result<ServiceName, String>,
    resource: Map<String, Value>,
    scope: Map<String, Value>,
}

impl Origin {
    /// What records share when their resource or scope could not be used: each of them is
    /// rejected with `reason`.
    fn refused(reason: String) -> Origin {
        Origin {
            service: Err(reason),
            resource: Map::new(),
            scope: Map::new(),
        }
    }

    fn new(resource: Option<&Resource>, scope: Option<&InstrumentationScope>) -> Origin {
        let mut resource = resource.map(|r| object(&r.attributes)).unwrap_or_default();
        // Stored once, in the service column, not again in every record's attributes.
        let service = match resource.remove("service.name") {
            None => ServiceName::parse(UNKNOWN_SERVICE).map_err(|error| error.to_string()),
            Some(Value::String(name)) => {
                ServiceName::parse(&name).map_err(|error| format!("invalid service.name: {error}"))
            }
            Some(other) => Err(format!("service.name must be a string, not {other}")),
        };
        let mut scope_fields = Map::new();
        if let Some(scope) = scope {
            if !scope.name.is_empty() {
                scope_fields.insert("name".to_owned(), Value::String(scope.name.clone()));
            }
            if !scope.version.is_empty() {
                scope_fields.insert("version".to_owned(), Value::String(scope.version.clone()));
            }
            if !scope.attributes.is_empty() {
                scope_fields.insert(
                    "attributes".to_owned(),
                    Value::Object(object(&scope.attributes)),
                );
            }
        }
        Origin {
            service,
            resource,
            scope: scope_fields,
        }
    }
}

impl<'a> Records<'a> {
    fn new(context: &'a Context, source_bytes: usize) -> Records<'a> {
        Records {
            context,
            decoded: Decoded::for_source(source_bytes),
            index: 0,
        }
    }

    fn reject(&mut self, reason: String) -> Result<(), BodyError> {
        let index = self.index;
        self.index += 1;
        self.decoded.reject(Rejection {
            index,
            line: None,
            reason,
        })
    }

    fn record(&mut self, origin: &Origin, record: LogRecord) -> Result<(), BodyError> {
        match event(origin, record, self.context) {
            Ok(event) => {
                self.index += 1;
                self.decoded.accept(event)
            }
            Err(reason) => self.reject(reason),
        }
    }
}

fn event(origin: &Origin, record: LogRecord, context: &Context) -> Result<LogEvent, String> {
    let service = origin.service.clone()?;
    let level = Level::from_otel_severity(record.severity_number)
        .or_else(|| Level::parse(&record.severity_text).ok())
        .unwrap_or(Level::Info);
    let message = match record.body.and_then(|body| body.value) {
        None => String::new(),
        Some(Any::StringValue(text)) => text,
        Some(other) => json(other).to_string(),
    };
    let ts = from_unix_nanos(record.time_unix_nano)
        .or_else(|| from_unix_nanos(record.observed_time_unix_nano))
        .unwrap_or(context.received_at);
    let mut attributes = Map::new();
    if !origin.resource.is_empty() {
        attributes.insert(
            "resource".to_owned(),
            Value::Object(origin.resource.clone()),
        );
    }
    if !origin.scope.is_empty() {
        attributes.insert("scope".to_owned(), Value::Object(origin.scope.clone()));
    }
    if !record.attributes.is_empty() {
        attributes.insert(
            "attributes".to_owned(),
            Value::Object(object(&record.attributes)),
        );
    }
    if !record.severity_text.is_empty() {
        attributes.insert(
            "severity_text".to_owned(),
            Value::String(record.severity_text),
        );
    }
    if !record.event_name.is_empty() {
        attributes.insert("event_name".to_owned(), Value::String(record.event_name));
    }
    if record.flags != 0 {
        attributes.insert("flags".to_owned(), Value::from(record.flags));
    }
    LogEvent::new(
        ts,
        service,
        level,
        message,
        attributes,
        (hex_id(&record.trace_id, 16), hex_id(&record.span_id, 8)),
        context.received_at,
        &context.limits,
    )
    .map_err(|error| error.to_string())
}

/// A trace (16 bytes) or span (8 bytes) id as lowercase hex; `None` when unset (empty or
/// all zeros) or not of its length (such an id would match nothing in a trace backend).
fn hex_id(bytes: &[u8], length: usize) -> Option<String> {
    if bytes.len() != length || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Key/values as a JSON object (a repeated key: the last wins, as in the SDKs).
fn object(pairs: &[KeyValue]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|pair| {
            let value = pair
                .value
                .as_ref()
                .and_then(|value| value.value.clone())
                .map_or(Value::Null, json);
            (pair.key.clone(), value)
        })
        .collect()
}

/// An `AnyValue` as JSON: bytes as base64 (the OTLP JSON mapping's choice), non-finite
/// doubles as their names.
fn json(value: Any) -> Value {
    use base64::Engine;
    match value {
        Any::StringValue(text) => Value::String(text),
        Any::BoolValue(flag) => Value::Bool(flag),
        Any::IntValue(number) => Value::from(number),
        Any::DoubleValue(number) => serde_json::Number::from_f64(number)
            .map_or_else(|| Value::String(number.to_string()), Value::Number),
        Any::ArrayValue(array) => Value::Array(
            array
                .values
                .into_iter()
                .map(|item| item.value.map_or(Value::Null, json))
                .collect(),
        ),
        Any::KvlistValue(list) => Value::Object(object(&list.values)),
        Any::BytesValue(bytes) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        // An index into a profiles dictionary: logs carry none to look it up in.
        Any::StringValueStrindex(_) => Value::Null,
    }
}

/// Protobuf, walked scope by scope and decoded record by record (see [`super::wire`]).
/// Field numbers from opentelemetry-proto: ExportLogsServiceRequest.resource_logs = 1;
/// ResourceLogs.resource = 1, .scope_logs = 2; ScopeLogs.scope = 1, .log_records = 2. A
/// record (or resource, or scope) too large to become an event, or that does not decode,
/// is rejected alone; the records beside it are kept.
fn decode_protobuf(body: &[u8], records: &mut Records<'_>) -> Result<(), BodyError> {
    let cap = super::max_record_wire_bytes(&records.context.limits);
    for_each_message(body, PROTOBUF, |field, resource_logs| {
        if field != 1 {
            return Ok(());
        }
        let mut resource: Result<Option<Resource>, String> = Ok(None);
        for_each_message(resource_logs, PROTOBUF, |field, bytes| {
            if field == 1 {
                resource = shared::<Resource>(bytes, cap, "resource");
            }
            Ok(())
        })?;
        for_each_message(resource_logs, PROTOBUF, |field, scope_logs| {
            if field != 2 {
                return Ok(());
            }
            let mut scope: Result<Option<InstrumentationScope>, String> = Ok(None);
            for_each_message(scope_logs, PROTOBUF, |field, bytes| {
                if field == 1 {
                    scope = shared::<InstrumentationScope>(bytes, cap, "scope");
                }
                Ok(())
            })?;
            let origin = match (&resource, &scope) {
                (Ok(resource), Ok(scope)) => Origin::new(resource.as_ref(), scope.as_ref()),
                (Err(reason), _) | (_, Err(reason)) => Origin::refused(reason.clone()),
            };
            for_each_message(scope_logs, PROTOBUF, |field, bytes| {
                if field != 2 {
                    return Ok(());
                }
                if bytes.len() > cap {
                    return records.reject(format!(
                        "record of {} bytes: larger than any event can be",
                        bytes.len()
                    ));
                }
                match decode_message::<LogRecord>(bytes, PROTOBUF) {
                    Ok(record) => records.record(&origin, record),
                    Err(error) => records.reject(error.to_string()),
                }
            })
        })
    })
}

/// A resource or scope (shared by the records after it), unless too large or undecodable.
fn shared<M: Message + Default>(bytes: &[u8], cap: usize, what: &str) -> Result<Option<M>, String> {
    if bytes.len() > cap {
        return Err(format!(
            "{what} of {} bytes: larger than any event can be",
            bytes.len()
        ));
    }
    decode_message::<M>(bytes, PROTOBUF)
        .map(Some)
        .map_err(|error| format!("{what}: {error}"))
}

/// The OTLP JSON envelope, with the record lists bounded (the leaf types are
/// opentelemetry-proto's own serde mapping: hex ids, int64 as string or number).
/// Every list counts against the body's bound; records stay raw JSON until each is read
/// on its own, so one that does not fit the mapping (a bad hex id, `"NaN"`) is rejected
/// alone.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonRequest<'a> {
    #[serde(default, borrow, deserialize_with = "bounded")]
    resource_logs: Vec<JsonResourceLogs<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonResourceLogs<'a> {
    #[serde(default, borrow)]
    resource: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow, deserialize_with = "bounded")]
    scope_logs: Vec<JsonScopeLogs<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonScopeLogs<'a> {
    #[serde(default, borrow)]
    scope: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow, deserialize_with = "bounded")]
    log_records: Vec<&'a serde_json::value::RawValue>,
}

fn decode_json(body: &[u8], records: &mut Records<'_>) -> Result<(), BodyError> {
    let cap = super::max_record_wire_bytes(&records.context.limits);
    let request: JsonRequest<'_> = counted_json(body, JSON)?;
    for resource_logs in request.resource_logs {
        let resource = shared_json::<Resource>(resource_logs.resource, cap, "resource");
        for scope_logs in resource_logs.scope_logs {
            let scope = shared_json::<InstrumentationScope>(scope_logs.scope, cap, "scope");
            let origin = match (&resource, &scope) {
                (Ok(resource), Ok(scope)) => Origin::new(resource.as_ref(), scope.as_ref()),
                (Err(reason), _) | (_, Err(reason)) => Origin::refused(reason.clone()),
            };
            for raw in scope_logs.log_records {
                let text = raw.get();
                if text.len() > cap {
                    records.reject(format!(
                        "record of {} bytes: larger than any event can be",
                        text.len()
                    ))?;
                    continue;
                }
                match serde_json::from_str::<LogRecord>(text) {
                    Ok(record) => records.record(&origin, record)?,
                    Err(error) => records.reject(format!("invalid log record: {error}"))?,
                }
            }
        }
    }
    Ok(())
}

/// A resource or scope in JSON, unless too large or not of the mapping.
fn shared_json<'a, M: Deserialize<'a>>(
    raw: Option<&'a serde_json::value::RawValue>,
    cap: usize,
    what: &str,
) -> Result<Option<M>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let text = raw.get();
    if text.len() > cap {
        return Err(format!(
            "{what} of {} bytes: larger than any event can be",
            text.len()
        ));
    }
    serde_json::from_str::<M>(text)
        .map(Some)
        .map_err(|error| format!("invalid {what}: {error}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

    use opentelemetry_proto::tonic::common::v1::AnyValue;

    use super::*;

    fn context() -> Context {
        Context {
            received_at: Utc::now(),
            limits: domain::EventLimits::default(),
            max_body_bytes: 16 << 20,
            shippers: Arc::default(),
        }
    }

    fn attribute(key: &str, value: Any) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn request(records: Vec<LogRecord>, service: Option<&str>) -> ExportLogsServiceRequest {
        let mut resource_attributes = vec![attribute("host.name", Any::StringValue("h1".into()))];
        if let Some(service) = service {
            resource_attributes.push(attribute("service.name", Any::StringValue(service.into())));
        }
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: resource_attributes,
                    ..Resource::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "app.module".into(),
                        version: "1.0".into(),
                        ..InstrumentationScope::default()
                    }),
                    log_records: records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn record(severity: i32, text: &str, body: Option<Any>) -> LogRecord {
        LogRecord {
            time_unix_nano: u64::try_from(Utc::now().timestamp_nanos_opt().unwrap()).unwrap(),
            severity_number: severity,
            severity_text: text.into(),
            body: body.map(|value| AnyValue { value: Some(value) }),
            attributes: vec![attribute("order", Any::IntValue(42))],
            trace_id: vec![0xab; 16],
            span_id: vec![0; 8],
            ..LogRecord::default()
        }
    }

    fn decode(body: &[u8], encoding: OtlpEncoding) -> Result<Decoded, BodyError> {
        Otlp::decode(body, &encoding, &context()).map(|(decoded, ())| decoded)
    }

    #[test]
    fn protobuf_records_become_events_with_namespaced_attributes() {
        let body = request(
            vec![
                record(17, "ERROR", Some(Any::StringValue("payment failed".into()))),
                record(0, "warning", Some(Any::KvlistValue(Default::default()))),
                record(0, "", None),
            ],
            Some("checkout"),
        )
        .encode_to_vec();
        let decoded = decode(&body, OtlpEncoding::Protobuf).unwrap();
        assert_eq!(decoded.rejected, 0);
        let [error, warn, info] = &decoded.events[..] else {
            panic!("{:?}", decoded.events);
        };
        assert_eq!(error.service.as_str(), "checkout");
        assert_eq!(
            (error.level, warn.level, info.level),
            (Level::Error, Level::Warn, Level::Info)
        );
        assert_eq!(error.message, "payment failed");
        assert_eq!(warn.message, "{}");
        assert_eq!(info.message, "");
        assert_eq!(
            error.trace_id.as_deref(),
            Some("abababababababababababababababab")
        );
        assert_eq!(error.span_id, None, "all-zero ids are unset");
        let attributes: Value = serde_json::from_str(&error.attributes).unwrap();
        assert_eq!(attributes["resource"]["host.name"], "h1");
        assert_eq!(attributes["scope"]["name"], "app.module");
        assert_eq!(attributes["attributes"]["order"], 42);
        assert_eq!(attributes["severity_text"], "ERROR");
    }

    #[test]
    fn json_mapping_is_understood() {
        let body = serde_json::json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
            "scopeLogs": [{"scope": {"name": "s"}, "logRecords": [
                {"timeUnixNano": Utc::now().timestamp_nanos_opt().unwrap().to_string(),
                 "severityNumber": 9, "body": {"stringValue": "hello"},
                 "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                 "attributes": [{"key": "n", "value": {"intValue": "7"}}]},
                {"observedTimeUnixNano": Utc::now().timestamp_nanos_opt().unwrap(),
                 "severityText": "Error", "body": {"stringValue": "boom"}}
            ]}]
        }]});
        let decoded = decode(body.to_string().as_bytes(), OtlpEncoding::Json).unwrap();
        let [info, error] = &decoded.events[..] else {
            panic!("{:?}", decoded.rejections);
        };
        assert_eq!(info.service.as_str(), "api");
        assert_eq!((info.level, error.level), (Level::Info, Level::Error));
        assert_eq!(
            info.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(info.span_id.as_deref(), Some("eee19b7ec3c1b174"));
        let attributes: Value = serde_json::from_str(&info.attributes).unwrap();
        assert_eq!(attributes["attributes"]["n"], 7);
    }

    #[test]
    fn bad_records_are_rejected_one_by_one_and_bad_bodies_whole() {
        let old = LogRecord {
            time_unix_nano: 1,
            ..record(17, "", Some(Any::StringValue("ancient".into())))
        };
        let body = request(
            vec![old, record(17, "", Some(Any::StringValue("fresh".into())))],
            Some("svc"),
        )
        .encode_to_vec();
        let decoded = decode(&body, OtlpEncoding::Protobuf).unwrap();
        assert_eq!(decoded.events.len(), 1);
        assert_eq!(decoded.rejections[0].index, 0);
        assert!(
            decoded.rejections[0].reason.contains("older"),
            "{:?}",
            decoded.rejections
        );

        let unnamed = request(vec![record(9, "", None)], None).encode_to_vec();
        let decoded = decode(&unnamed, OtlpEncoding::Protobuf).unwrap();
        assert_eq!(decoded.events[0].service.as_str(), UNKNOWN_SERVICE);

        assert!(matches!(
            decode(b"\x0a\xff\xff\xff\x0f", OtlpEncoding::Protobuf),
            Err(BodyError::Corrupt { .. })
        ));
        assert!(matches!(
            decode(b"{\"resourceLogs\": 3}", OtlpEncoding::Json),
            Err(BodyError::Corrupt { .. })
        ));
    }

    #[test]
    fn empty_record_floods_are_refused_before_they_are_decoded() {
        // 2 bytes per empty record on the wire: 200,000 of them in one scope.
        let mut scope = vec![0x0a, 0x00];
        for _ in 0..200_000 {
            scope.extend_from_slice(&[0x12, 0x00]);
        }
        let encode = |field: u8, inner: &[u8]| {
            let mut out = vec![field];
            prost::encoding::encode_varint(inner.len() as u64, &mut out);
            out.extend_from_slice(inner);
            out
        };
        let body = encode(0x0a, &encode(0x12, &scope));
        let error = decode(&body, OtlpEncoding::Protobuf).err().unwrap();
        assert!(matches!(error, BodyError::TooManyEvents { .. }), "{error}");
    }
}
