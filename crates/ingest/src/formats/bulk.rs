//! Elasticsearch bulk (`POST /_bulk`, `POST /{index}/_bulk`; `PUT` too), and the calls
//! Elasticsearch clients make before their first bulk request (`GET /`, `HEAD /`,
//! `GET /_license`, `GET /_cluster/health`), so Vector, Filebeat, Logstash, Fluent Bit, rsyslog and syslog-ng can point
//! their Elasticsearch output at threesigma.
//!
//! The body is NDJSON action/source pairs. `index` and `create` (with or without a legacy
//! `_type`) store their document; `update` and `delete` are refused per item (threesigma
//! only appends). The answer has Elasticsearch's shape, one item per action in order:
//! `{"took", "errors", "items": [{"create": {"_index", "_id", "status": 201}}]}`, with
//! `status: 400` and an `error` for an item that was not stored. A malformed action line
//! refuses the whole request (400), as in Elasticsearch.
//!
//! A document becomes an event so: service from `service` (a string), ECS `service.name`,
//! then the fields of `ingest.bulk_service_fields`, else the index name; level from
//! `level` or ECS `log.level`; the rest as in the native format (`message`, `@timestamp`,
//! other fields kept as attributes).

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use domain::LogEvent;
use serde_json::{Map, Value, json};
use web::ApiError;

use super::{BodyError, Context, Decoded, Outcome, Rejection, WireFormat, media_type, reshape};

/// Elasticsearch's bulk API.
pub struct Bulk;

/// The index named in the path (`/{index}/_bulk`), the default of actions naming none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkKind {
    pub index: Option<String>,
}

/// What became of each action, in order.
#[derive(Debug)]
pub struct Receipt {
    received_at: DateTime<Utc>,
    /// The index of the path, for actions that name none.
    default_index: Option<String>,
    items: Vec<Item>,
}

#[derive(Debug)]
struct Item {
    action: &'static str,
    /// `_index` and `_id` when the action gave them; otherwise the path's index and an id
    /// made when the answer is written (most actions give neither: no allocation each).
    index: Option<String>,
    id: Option<String>,
    /// `(type, reason)` when the action was not stored.
    error: Option<(&'static str, String)>,
}

impl Receipt {
    fn index_of<'a>(&'a self, item: &'a Item) -> &'a str {
        item.index
            .as_deref()
            .or(self.default_index.as_deref())
            .unwrap_or("")
    }

    fn id_of(&self, position: usize, item: &Item) -> String {
        item.id
            .clone()
            .unwrap_or_else(|| generated_id(self.received_at, position))
    }
}

/// Elasticsearch clients (7.14 and later) refuse answers without it.
pub const PRODUCT_HEADER: (&str, &str) = ("x-elastic-product", "Elasticsearch");

const ACTIONS: [&str; 4] = ["index", "create", "update", "delete"];

impl WireFormat for Bulk {
    const IGNORES_QUERY: bool = true;
    type Kind = BulkKind;
    type Receipt = Receipt;

    fn kind(request: &HttpRequest) -> Result<BulkKind, BodyError> {
        let header = super::content_type(request)?;
        match media_type(header).as_str() {
            ""
            | "application/json"
            | "application/x-ndjson"
            | "application/vnd.elasticsearch+json"
            | "application/vnd.elasticsearch+x-ndjson" => Ok(BulkKind {
                index: request.match_info().get("index").map(str::to_owned),
            }),
            _ => Err(BodyError::UnsupportedContentType {
                content_type: header.unwrap_or("").to_owned(),
                supported: "application/x-ndjson, application/json",
            }),
        }
    }

    fn decode(
        body: &[u8],
        kind: &BulkKind,
        context: &Context,
    ) -> Result<(Decoded, Receipt), BodyError> {
        decode_actions(body, kind, context)
    }

    fn answer(outcome: Outcome, _: &BulkKind, receipt: Receipt) -> HttpResponse {
        let _ = outcome;
        let took = (Utc::now() - receipt.received_at).num_milliseconds().max(0);
        let errors = receipt.items.iter().any(|item| item.error.is_some());
        HttpResponse::Ok()
            .insert_header(PRODUCT_HEADER)
            .json(BulkAnswer {
                took,
                errors,
                items: Items(&receipt),
            })
    }

    fn refuse(error: ApiError, _: Option<&BulkKind>) -> actix_web::Error {
        use actix_web::ResponseError;
        let status = error.status_code();
        let kind = match status.as_u16() {
            413 => "content_too_long_exception",
            429 | 503 => "es_rejected_execution_exception",
            408 => "timeout_exception",
            _ => "illegal_argument_exception",
        };
        let reason = error.to_string();
        let body = json!({
            "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
            "status": status.as_u16(),
        });
        let error = reshape(error, "application/json", body.to_string().into_bytes());
        with_product_header(error)
    }
}

/// Elasticsearch's bulk answer, serialized straight from the receipt.
#[derive(serde::Serialize)]
struct BulkAnswer<'a> {
    took: i64,
    errors: bool,
    items: Items<'a>,
}

/// The items of a receipt, each with its index and id resolved.
struct Items<'a>(&'a Receipt);

impl serde::Serialize for Items<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .items
                .iter()
                .enumerate()
                .map(|(position, item)| ItemView {
                    item,
                    index: self.0.index_of(item),
                    id: self.0.id_of(position, item),
                }),
        )
    }
}

struct ItemView<'a> {
    item: &'a Item,
    index: &'a str,
    id: String,
}

impl serde::Serialize for ItemView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;

        #[derive(serde::Serialize)]
        struct Shards {
            total: u8,
            successful: u8,
            failed: u8,
        }
        #[derive(serde::Serialize)]
        struct Failure<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            reason: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Result<'a> {
            _index: &'a str,
            _id: &'a str,
            status: u16,
            #[serde(skip_serializing_if = "Option::is_none")]
            _version: Option<u8>,
            #[serde(skip_serializing_if = "Option::is_none")]
            result: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            _shards: Option<Shards>,
            #[serde(skip_serializing_if = "Option::is_none")]
            _seq_no: Option<u8>,
            #[serde(skip_serializing_if = "Option::is_none")]
            _primary_term: Option<u8>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<Failure<'a>>,
        }
        let stored = self.item.error.is_none();
        let result = Result {
            _index: self.index,
            _id: &self.id,
            status: if stored { 201 } else { 400 },
            _version: stored.then_some(1),
            result: stored.then_some("created"),
            _shards: stored.then_some(Shards {
                total: 1,
                successful: 1,
                failed: 0,
            }),
            _seq_no: stored.then_some(0),
            _primary_term: stored.then_some(1),
            error: self
                .item
                .error
                .as_ref()
                .map(|(kind, reason)| Failure { kind, reason }),
        };
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.item.action, &result)?;
        map.end()
    }
}

fn with_product_header(error: actix_web::Error) -> actix_web::Error {
    let mut response = error.error_response();
    response.headers_mut().insert(
        HeaderName::from_static(PRODUCT_HEADER.0),
        HeaderValue::from_static(PRODUCT_HEADER.1),
    );
    actix_web::error::InternalError::from_response(error.to_string(), response).into()
}

fn decode_actions(
    body: &[u8],
    kind: &BulkKind,
    context: &Context,
) -> Result<(Decoded, Receipt), BodyError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| BodyError::Unusable("the bulk body is not UTF-8".to_owned()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let mut decoded = Decoded::for_source(body.len());
    let cap = super::max_record_wire_bytes(&context.limits);
    let mut items = Vec::new();
    let mut index = 0;
    while let Some((number, line)) = lines.next() {
        let (action, meta) = action(line)
            .map_err(|reason| BodyError::Unusable(format!("line {}: {reason}", number + 1)))?;
        let explicit_index = meta._index;
        let id = meta._id;
        let source = if action == "delete" {
            None
        } else {
            let (_, source) = lines.next().ok_or_else(|| {
                BodyError::Unusable(format!(
                    "line {}: the {action} action has no document line after it",
                    number + 1
                ))
            })?;
            Some(source)
        };
        let target = explicit_index.as_deref().or(kind.index.as_deref());
        let outcome = match (action, target, source) {
            ("update" | "delete", _, _) => Err((
                "illegal_argument_exception",
                format!("{action} is not supported: threesigma only appends logs"),
            )),
            (_, None, _) => Err((
                "action_request_validation_exception",
                "Validation Failed: 1: index is missing;".to_owned(),
            )),
            (_, Some(_), Some(source)) if source.len() > cap => Err((
                "document_too_large_exception",
                format!(
                    "document of {} bytes: larger than any event can be",
                    source.len()
                ),
            )),
            (_, Some(target), Some(source)) => event(source, target, context),
            (_, Some(_), None) => Err(("illegal_argument_exception", "no document".to_owned())),
        };
        let error = match outcome {
            Ok(event) => {
                decoded.accept(event)?;
                None
            }
            Err((kind, reason)) => {
                decoded.reject(Rejection {
                    index,
                    line: Some(number + 1),
                    reason: reason.clone(),
                })?;
                Some((kind, reason))
            }
        };
        items.push(Item {
            action,
            index: explicit_index,
            id,
            error,
        });
        index += 1;
    }
    if items.is_empty() {
        return Err(BodyError::Unusable(
            "request body is required (NDJSON action and document lines)".to_owned(),
        ));
    }
    Ok((
        decoded,
        Receipt {
            received_at: context.received_at,
            default_index: kind.index.clone(),
            items,
        },
    ))
}

/// The metadata of an action (`_type`, `routing` and the rest are ignored).
#[derive(Debug, Default, serde::Deserialize)]
struct Meta {
    #[serde(default)]
    _index: Option<String>,
    #[serde(default)]
    _id: Option<String>,
}

/// An action line: `{"index": {...}}` with one of [`ACTIONS`], read without building a
/// JSON tree (one per document: it shows in the bulk throughput).
fn action(line: &str) -> Result<(&'static str, Meta), String> {
    struct Line(Option<(&'static str, Meta)>);

    impl<'de> serde::Deserialize<'de> for Line {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Line, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Line;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object with one action")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Line, A::Error> {
                    use serde::de::Error;
                    let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? else {
                        return Ok(Line(None));
                    };
                    let action = ACTIONS
                        .iter()
                        .find(|known| **known == name)
                        .ok_or_else(|| A::Error::custom(format!("unknown action [{name}]")))?;
                    let meta: Meta = map.next_value()?;
                    if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                        return Err(A::Error::custom("expected exactly one action"));
                    }
                    Ok(Line(Some((action, meta))))
                }
            }
            deserializer.deserialize_map(Visit)
        }
    }

    match serde_json::from_str::<Line>(line) {
        Ok(Line(Some(action))) => Ok(action),
        Ok(Line(None)) => {
            Err("Malformed action/metadata line: expected exactly one action".to_owned())
        }
        Err(error) => Err(format!("Malformed action/metadata line: {error}")),
    }
}

/// Elasticsearch-like ids for documents sent without one: unique within a request and
/// across requests (the receive time in nanoseconds, then the position).
fn generated_id(received_at: DateTime<Utc>, index: usize) -> String {
    let nanos = received_at.timestamp_nanos_opt().unwrap_or_default();
    format!("{nanos:x}-{index:x}")
}

/// A document as an event: ECS names mapped to the native ones, then the native rules.
fn event(source: &str, index: &str, context: &Context) -> Result<LogEvent, (&'static str, String)> {
    let parse_error = |reason: String| ("mapper_parsing_exception", reason);
    let Ok(Value::Object(mut document)) = serde_json::from_str::<Value>(source) else {
        return Err(parse_error(
            "failed to parse: the document is not a JSON object".to_owned(),
        ));
    };
    let service = service(&document, &context.shippers.bulk_service_fields)
        .unwrap_or_else(|| index.to_owned());
    if let Some(ecs) = document.remove("service")
        && !ecs.is_string()
    {
        document.insert("ecs.service".to_owned(), ecs);
    }
    document.insert("service".to_owned(), Value::String(service));
    if !document.contains_key("level")
        && let Some(level) = take_log_level(&mut document)
    {
        document.insert("level".to_owned(), level);
    }
    LogEvent::from_json(
        Value::Object(document),
        context.received_at,
        &context.limits,
    )
    .map_err(|error| parse_error(error.to_string()))
}

/// Takes ECS `log.level` out of a document (dotted key or nested), so it is stored once,
/// as the level.
fn take_log_level(document: &mut Map<String, Value>) -> Option<Value> {
    if let Some(level) = document.remove("log.level") {
        return Some(level);
    }
    let Some(Value::Object(log)) = document.get_mut("log") else {
        return None;
    };
    let level = log.remove("level")?;
    if log.is_empty() {
        document.remove("log");
    }
    Some(level)
}

/// The service a document names, if any.
fn service(document: &Map<String, Value>, fields: &[String]) -> Option<String> {
    ["service", "service.name"]
        .into_iter()
        .chain(fields.iter().map(String::as_str))
        .find_map(|field| match path(document, field) {
            Some(Value::String(name)) if !name.trim().is_empty() => Some(name.clone()),
            _ => None,
        })
}

/// A field by dotted path, as a dotted key (`"log.level": …`) or nested objects
/// (`"log": {"level": …}`).
fn path<'a>(document: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    if let Some(value) = document.get(dotted) {
        return Some(value);
    }
    let (first, rest) = dotted.split_once('.')?;
    match document.get(first)? {
        Value::Object(inner) => path(inner, rest),
        _ => None,
    }
}

/// `GET /` and `HEAD /`: the version document Elasticsearch clients check before sending.
pub async fn root(_caller: access::IngestAccess) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(PRODUCT_HEADER)
        .json(json!({
            "name": "threesigma",
            "cluster_name": "threesigma",
            "cluster_uuid": "threesigma",
            "version": {
                "number": "8.11.0",
                "build_flavor": "default",
                "build_type": "threesigma",
                "lucene_version": "9.8.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }))
}

/// `GET /_cluster/health`: green, for clients' health checks (Vector's Elasticsearch sink).
pub async fn health(_caller: access::IngestAccess) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(PRODUCT_HEADER)
        .json(json!({
            "cluster_name": "threesigma", "status": "green", "timed_out": false,
            "number_of_nodes": 1, "number_of_data_nodes": 1,
        }))
}

/// `GET /_license`: a basic licence, for clients that check one (Logstash, Beats' ILM).
pub async fn license(_caller: access::IngestAccess) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(PRODUCT_HEADER)
        .json(json!({
            "license": {"status": "active", "uid": "threesigma", "type": "basic", "mode": "basic"}
        }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::formats::ShipperSettings;

    fn context(fields: &[&str]) -> Context {
        Context {
            received_at: Utc::now(),
            limits: domain::EventLimits::default(),
            max_body_bytes: 16 << 20,
            shippers: Arc::new(ShipperSettings {
                bulk_service_fields: fields.iter().map(|f| (*f).to_owned()).collect(),
                ..ShipperSettings::default()
            }),
        }
    }

    fn decode(
        body: &str,
        index: Option<&str>,
        fields: &[&str],
    ) -> Result<(Decoded, Receipt), BodyError> {
        Bulk::decode(
            body.as_bytes(),
            &BulkKind {
                index: index.map(str::to_owned),
            },
            &context(fields),
        )
    }

    #[test]
    fn actions_and_documents_become_items_in_order() {
        let now = Utc::now().to_rfc3339();
        let body = format!(
            "{{\"create\":{{\"_index\":\"logs-app\"}}}}\n\
             {{\"@timestamp\":\"{now}\",\"message\":\"boom\",\"log\":{{\"level\":\"error\"}},\"service\":{{\"name\":\"checkout\",\"version\":\"2\"}}}}\n\
             {{\"index\":{{\"_id\":\"given\",\"_type\":\"_doc\"}}}}\n\
             {{\"message\":\"from the path index\",\"log.level\":\"warn\"}}\n\
             {{\"delete\":{{\"_index\":\"x\",\"_id\":\"1\"}}}}\n\
             {{\"update\":{{\"_index\":\"x\",\"_id\":\"1\"}}}}\n\
             {{\"doc\":{{}}}}\n\
             {{\"index\":{{}}}}\n\
             not json\n"
        );
        let (decoded, receipt) = decode(&body, Some("fallback"), &[]).unwrap();
        let [checkout, fallback] = &decoded.events[..] else {
            panic!("{:?}", decoded.rejections);
        };
        assert_eq!(checkout.service.as_str(), "checkout");
        assert_eq!(checkout.level, domain::Level::Error);
        assert_eq!(fallback.service.as_str(), "fallback");
        assert_eq!(fallback.level, domain::Level::Warn);
        let attributes: Value = serde_json::from_str(&checkout.attributes).unwrap();
        assert_eq!(attributes["ecs.service"]["version"], "2");
        let summary: Vec<(&str, String, bool)> = receipt
            .items
            .iter()
            .map(|item| {
                (
                    item.action,
                    receipt.index_of(item).to_owned(),
                    item.error.is_some(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("create", "logs-app".to_owned(), false),
                ("index", "fallback".to_owned(), false),
                ("delete", "x".to_owned(), true),
                ("update", "x".to_owned(), true),
                ("index", "fallback".to_owned(), true),
            ]
        );
        assert_eq!(receipt.id_of(1, &receipt.items[1]), "given");
        assert_ne!(
            receipt.id_of(0, &receipt.items[0]),
            receipt.id_of(2, &receipt.items[2])
        );
        assert_eq!(
            receipt.items[4].error.as_ref().unwrap().0,
            "mapper_parsing_exception"
        );
        assert_eq!(decoded.rejected, 3);
    }

    #[test]
    fn configured_fields_name_services_and_bad_action_lines_refuse_the_body() {
        let body = "{\"index\":{\"_index\":\"i\"}}\n{\"message\":\"m\",\"kubernetes\":{\"labels\":{\"app\":\"cart\"}}}\n";
        let (decoded, _) = decode(body, None, &["kubernetes.labels.app"]).unwrap();
        assert_eq!(decoded.events[0].service.as_str(), "cart");
        let (decoded, receipt) =
            decode("{\"index\":{}}\n{\"message\":\"m\"}\n", None, &[]).unwrap();
        assert!(decoded.events.is_empty());
        assert!(
            receipt.items[0]
                .error
                .as_ref()
                .unwrap()
                .1
                .contains("index is missing")
        );
        for bad in [
            "{\"index\":{}}",
            "[1]\n{}",
            "{\"upsert\":{}}\n{}",
            "{\"index\":{},\"create\":{}}\n{}",
            "",
        ] {
            assert!(
                matches!(decode(bad, Some("i"), &[]), Err(BodyError::Unusable(_))),
                "{bad:?}"
            );
        }
    }
}
