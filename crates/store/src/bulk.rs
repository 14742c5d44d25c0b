//! The ingest hot path: one transaction per batch that COPYs the log rows in binary and
//! upserts the batch's pre-aggregated per-minute rollups.
//!
//! This is the one place that bypasses diesel: diesel-async has no COPY (diesel_async#158)
//! and diesel's `copy_from` is synchronous, while binary COPY loads rows about twice as fast
//! as `INSERT ... SELECT FROM UNNEST` (docs/ARCHITECTURE.md has the measurements). So a
//! writer owns a plain tokio-postgres connection. Values still travel only as binds and
//! COPY data, never spliced into SQL text.

use std::collections::BTreeMap;

use bytes::BufMut;
use chrono::{DateTime, Utc};
use domain::{LogEvent, Minute};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::error::StoreResult;

const COPY_LOGS: &str = "COPY logs (ts, service, level, message, attributes, trace_id, span_id) \
                         FROM STDIN (FORMAT binary)";

const UPSERT_COUNTS: &str = "INSERT INTO log_counts (service, minute, level, shard, n) \
     SELECT service, minute, level, $4::int2, n \
     FROM unnest($1::text[], $2::timestamptz[], $3::int2[], $5::int4[]) AS t(service, minute, level, n) \
     ON CONFLICT (service, minute, level, shard) DO UPDATE SET n = log_counts.n + EXCLUDED.n";

const COLUMN_TYPES: [Type; 7] = [
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::INT2,
    Type::TEXT,
    Type::JSONB,
    Type::TEXT,
    Type::TEXT,
];

/// JSON text sent as jsonb without parsing it again: jsonb's binary form is a version byte
/// followed by the text.
#[derive(Debug)]
struct JsonText<'a>(&'a str);

impl ToSql for JsonText<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(1);
        }
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON
    }

    to_sql_checked!();
}

/// Rollup rows of one batch: (service, minute, level) → count, in a fixed order so that
/// concurrent transactions lock shared rows in the same order and cannot deadlock.
pub fn rollups<'a>(
    events: impl IntoIterator<Item = &'a LogEvent>,
) -> BTreeMap<(&'a str, Minute, i16), i32> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts
            .entry((
                event.service.as_str(),
                Minute::containing(event.ts),
                event.level.as_i16(),
            ))
            .or_insert(0) += 1;
    }
    counts
}

/// Writes events and their rollups in one transaction on `client`. `shard` tells this
/// writer's rollup rows apart from other writers' (see `log_counts.shard`).
pub async fn write_batch(
    client: &mut tokio_postgres::Client,
    events: &[&LogEvent],
    shard: i16,
) -> StoreResult<u64> {
    let transaction = client.transaction().await?;
    let sink = transaction.copy_in(COPY_LOGS).await?;
    let writer = BinaryCopyInWriter::new(sink, &COLUMN_TYPES);
    pin_mut!(writer);
    for event in events {
        let level = event.level.as_i16();
        let row: [&(dyn ToSql + Sync); 7] = [
            &event.ts,
            &event.service.as_str(),
            &level,
            &event.message,
            &JsonText(&event.attributes),
            &event.trace_id,
            &event.span_id,
        ];
        writer.as_mut().write(&row).await?;
    }
    let written = writer.finish().await?;

    let counts = rollups(events.iter().copied());
    let mut services = Vec::with_capacity(counts.len());
    let mut minutes: Vec<DateTime<Utc>> = Vec::with_capacity(counts.len());
    let mut levels = Vec::with_capacity(counts.len());
    let mut ns = Vec::with_capacity(counts.len());
    for ((service, minute, level), n) in counts {
        services.push(service);
        minutes.push(minute.start());
        levels.push(level);
        ns.push(n);
    }
    transaction
        .execute(UPSERT_COUNTS, &[&services, &minutes, &levels, &shard, &ns])
        .await?;
    transaction.commit().await?;
    Ok(written)
}
