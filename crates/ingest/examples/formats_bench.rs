//! The shippers' formats against native NDJSON, carrying the same 1,000 events per request:
//! decoding alone (events/s of one core), and end to end through a running ingest and
//! PostgreSQL (events/s committed, 8 concurrent senders). Formats take turns in every
//! round (each round starting with the next format), so the ratios to native NDJSON are
//! measured in the same conditions; the medians of the rounds are reported.
//!
//!     cargo run --release -p ingest --example formats_bench [rounds] [seconds per turn]
//!
//! Needs the local PostgreSQL (DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres);
//! a scratch database is created and dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use ingest::formats::bulk::BulkKind;
use ingest::formats::loki::LokiEncoding;
use ingest::formats::native::Shape;
use ingest::formats::otlp::OtlpEncoding;
use ingest::formats::{Bulk, Context, Loki, Otlp, ShipperSettings, WireFormat};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::json;

const EVENTS: usize = 1_000;
const LEVELS: [(&str, i32); 4] = [("info", 9), ("info", 9), ("warn", 13), ("error", 17)];

struct Body {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    bytes: Vec<u8>,
}

fn message(i: usize) -> String {
    format!("GET /api/cart/{i} 200 12ms")
}

fn bodies() -> Vec<Body> {
    let now = Utc::now();
    let nanos = now.timestamp_nanos_opt().unwrap();
    let level = |i: usize| LEVELS[i % LEVELS.len()];

    let native: String = (0..EVENTS)
        .map(|i| {
            json!({"service": "bench", "level": level(i).0, "message": message(i),
                   "ts": now.to_rfc3339(), "host": "web-1", "region": "eu"})
            .to_string()
                + "\n"
        })
        .collect();

    let attribute = |key: &str, value: &str| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Any::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    };
    let otlp = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", "bench")],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: (0..EVENTS)
                    .map(|i| LogRecord {
                        time_unix_nano: u64::try_from(nanos).unwrap(),
                        severity_number: level(i).1,
                        body: Some(AnyValue {
                            value: Some(Any::StringValue(message(i))),
                        }),
                        attributes: vec![attribute("host", "web-1"), attribute("region", "eu")],
                        ..LogRecord::default()
                    })
                    .collect(),
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };

    // Loki's PushRequest, one stream; the level as structured metadata per entry.
    let mut stream = Vec::new();
    prost::encoding::string::encode(
        1,
        &"{service=\"bench\", host=\"web-1\", region=\"eu\"}".to_owned(),
        &mut stream,
    );
    for i in 0..EVENTS {
        let mut entry = Vec::new();
        let mut timestamp = Vec::new();
        prost::encoding::int64::encode(1, &now.timestamp(), &mut timestamp);
        prost::encoding::bytes::encode(1, &timestamp, &mut entry);
        prost::encoding::string::encode(2, &message(i), &mut entry);
        let mut pair = Vec::new();
        prost::encoding::string::encode(1, &"level".to_owned(), &mut pair);
        prost::encoding::string::encode(2, &level(i).0.to_owned(), &mut pair);
        prost::encoding::bytes::encode(3, &pair, &mut entry);
        prost::encoding::bytes::encode(2, &entry, &mut stream);
    }
    let mut push = Vec::new();
    prost::encoding::bytes::encode(1, &stream, &mut push);
    let loki = snap::raw::Encoder::new().compress_vec(&push).unwrap();

    let bulk: String = (0..EVENTS)
        .map(|i| {
            format!(
                "{{\"create\":{{\"_index\":\"bench\"}}}}\n{}\n",
                json!({"@timestamp": now.to_rfc3339(), "log.level": level(i).0,
                       "message": message(i), "host": "web-1", "region": "eu"})
            )
        })
        .collect();

    vec![
        Body {
            name: "native NDJSON",
            path: "/api/v1/logs",
            content_type: "application/x-ndjson",
            bytes: native.into_bytes(),
        },
        Body {
            name: "OTLP protobuf",
            path: "/v1/logs",
            content_type: "application/x-protobuf",
            bytes: otlp.encode_to_vec(),
        },
        Body {
            name: "OTLP JSON",
            path: "/v1/logs",
            content_type: "application/json",
            bytes: serde_json::to_vec(&otlp).unwrap(),
        },
        Body {
            name: "Loki protobuf+snappy",
            path: "/loki/api/v1/push",
            content_type: "application/x-protobuf",
            bytes: loki,
        },
        Body {
            name: "Elasticsearch _bulk",
            path: "/_bulk",
            content_type: "application/x-ndjson",
            bytes: bulk.into_bytes(),
        },
    ]
}

fn decode(index: usize, bytes: &[u8], context: &Context) -> usize {
    let events = match index {
        0 => ingest::formats::native::decode_events(
            bytes,
            Shape::Ndjson,
            context.received_at,
            &context.limits,
        )
        .map(|d| d.events.len()),
        1 => Otlp::decode(bytes, &OtlpEncoding::Protobuf, context).map(|(d, ())| d.events.len()),
        2 => Otlp::decode(bytes, &OtlpEncoding::Json, context).map(|(d, ())| d.events.len()),
        3 => Loki::decode(bytes, &LokiEncoding::Protobuf, context).map(|(d, ())| d.events.len()),
        _ => Bulk::decode(bytes, &BulkKind { index: None }, context).map(|(d, _)| d.events.len()),
    };
    let events = events.unwrap();
    assert_eq!(events, EVENTS, "format {index} decoded {events} events");
    events
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(5, |a| a.parse().unwrap());
    let turn = Duration::from_secs_f64(args.next().map_or(3.0, |a| a.parse().unwrap()));
    let bodies = bodies();
    let context = Context {
        received_at: Utc::now(),
        limits: domain::EventLimits::default(),
        max_body_bytes: 16 << 20,
        shippers: Arc::new(ShipperSettings::default()),
    };

    // Decoding alone, one core.
    let mut decoded: Vec<Vec<f64>> = vec![Vec::new(); bodies.len()];
    for _ in 0..rounds {
        for (index, body) in bodies.iter().enumerate() {
            let started = Instant::now();
            let mut events = 0;
            while started.elapsed() < turn / 3 {
                events += decode(index, &body.bytes, &context);
            }
            decoded[index].push(events as f64 / started.elapsed().as_secs_f64());
        }
    }

    // End to end.
    let db = store::testing::TestDatabase::create().await;
    let mut settings = ingest::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.database.url = db.url.clone().into();
    settings.auth = auth::testing::settings();
    settings.rate_limit.per_second = 0;
    let app = ingest::Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(app.run_until(shutdown.clone()));
    let token = auth::testing::token("bench", &[auth::Scope::Ingest], None);
    let client = reqwest::Client::new();
    let mut committed: Vec<Vec<f64>> = vec![Vec::new(); bodies.len()];
    for round in 0..rounds {
        // Each round starts with another format, so none always follows the same one.
        for turn_index in 0..bodies.len() {
            let index = (round + turn_index) % bodies.len();
            let body = &bodies[index];
            let accepted = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let senders: Vec<_> = (0..8)
                .map(|_| {
                    let (client, accepted) = (client.clone(), Arc::clone(&accepted));
                    let url = format!("{base}{}", body.path);
                    let (content_type, bytes, token) =
                        (body.content_type, body.bytes.clone(), token.clone());
                    tokio::spawn(async move {
                        while started.elapsed() < turn {
                            let response = client
                                .post(&url)
                                .bearer_auth(&token)
                                .header("Content-Type", content_type)
                                .body(bytes.clone())
                                .send()
                                .await
                                .unwrap();
                            if response.status().is_success() {
                                accepted.fetch_add(EVENTS as u64, Ordering::Relaxed);
                            }
                            let _ = response.bytes().await;
                        }
                    })
                })
                .collect();
            for sender in senders {
                sender.await.unwrap();
            }
            committed[index]
                .push(accepted.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64());
        }
    }
    shutdown.cancel();
    server.await.unwrap().unwrap();

    let native_decode = median(&mut decoded[0].clone());
    let native_commit = median(&mut committed[0].clone());
    println!(
        "{rounds} rounds, {:.1} s per turn end to end, {EVENTS} events per request\n",
        turn.as_secs_f64()
    );
    println!(
        "| format | bytes per request | decode, events/s (one core) | vs native | end to end, events/s committed | vs native |"
    );
    println!("|---|---|---|---|---|---|");
    for (index, body) in bodies.iter().enumerate() {
        let d = median(&mut decoded[index]);
        let c = median(&mut committed[index]);
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.2} |",
            body.name,
            body.bytes.len(),
            d,
            d / native_decode,
            c,
            c / native_commit
        );
    }
}
