//! The ingest hot path: one batch of log rows and its pre-aggregated per-minute rollups,
//! committed together.
//!
//! Two ways, chosen by `ingest.bulk_method`:
//! - `unnest` (the default): one `INSERT ... SELECT FROM unnest($1::timestamptz[], ...)`
//!   whose data-modifying CTE also upserts the rollups. One statement is one implicit
//!   transaction, so a batch costs a single round trip.
//! - `copy`: `BEGIN`, binary `COPY` of the rows, the rollup upsert, `COMMIT`.
//!
//! Measured on this project's machines the two load rows at indistinguishable rates
//! (docs/BENCHMARKS.md, "COPY against UNNEST"); UNNEST is the default for its single round
//! trip. This is the one place that bypasses diesel: diesel-async has no COPY
//! (diesel_async#158), diesel's `copy_from` is synchronous, and the hot path wants
//! statements prepared once per connection with binary array binds, so a writer owns a
//! plain tokio-postgres connection. Values still travel only as binds and COPY data, never
//! spliced into SQL text.

use std::collections::BTreeMap;

use bytes::BufMut;
use chrono::{DateTime, Utc};
use domain::{LogEvent, Minute};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::error::StoreResult;

const COPY_LOGS: &str = "COPY logs (ts, service, level, message, attributes, trace_id, span_id, terms) \
     FROM STDIN (FORMAT binary)";

/// The CTEs `batch` (the batch's id, a row only if it is new) and `keys` (the requests'
/// idempotency keys, inserted only then), with the id, keys and digests as the given
/// parameters; every other write of the batch is conditional on `batch` having a row.
macro_rules! claim_batch {
    ($id:literal, $keys:literal, $digests:literal) => {
        concat!(
            "WITH batch AS (INSERT INTO ingest_batches (id) VALUES (",
            $id,
            "::text::uuid) ON CONFLICT (id) DO NOTHING RETURNING id), \
             keys AS (INSERT INTO ingest_idempotency_keys (key, digest) \
               SELECT key, digest FROM unnest(",
            $keys,
            "::text[], ",
            $digests,
            "::bytea[]) AS k(key, digest) WHERE EXISTS (SELECT 1 FROM batch))"
        )
    };
}

/// Logs and rollups in one statement: a data-modifying CTE inserts the rows, the outer
/// statement upserts the rollups. One statement is one implicit transaction, so the batch
/// costs a single round trip (no BEGIN, no COMMIT). Everything is written only if the
/// batch's id (`$17`) is new, with the requests' idempotency keys (`$18`, `$19`), so sending
/// a batch again after a lost answer stores nothing twice. Each row's search terms are a slice
/// `$13[terms_from:terms_to]` of one flat array: an array of arrays cannot be unnested row by row.
const INSERT_BATCH_UNNEST: &str = concat!(
    claim_batch!("$17", "$18", "$19"),
    ", inserted AS ( \
       INSERT INTO logs (ts, service, level, message, attributes, trace_id, span_id, terms) \
       SELECT ts, service, level, message, attributes, trace_id, span_id, ($13::int4[])[terms_from:terms_to] \
       FROM unnest($1::timestamptz[], $2::text[], $3::int2[], $4::text[], $5::jsonb[], $6::text[], $7::text[], \
                   $14::int4[], $15::int4[]) \
            AS t(ts, service, level, message, attributes, trace_id, span_id, terms_from, terms_to) \
       WHERE EXISTS (SELECT 1 FROM batch)), \
     marked AS (INSERT INTO log_search_pending (block, shard) \
       SELECT block, $8::int2 FROM unnest($16::timestamptz[]) AS b(block) \
       WHERE EXISTS (SELECT 1 FROM batch) \
       ON CONFLICT (block, shard) DO UPDATE SET version = log_search_pending.version + 1) \
     INSERT INTO log_counts (service, minute, level, shard, n) \
     SELECT service, minute, level, $8::int2, n \
     FROM unnest($9::text[], $10::timestamptz[], $11::int2[], $12::int4[]) AS t(service, minute, level, n) \
     WHERE EXISTS (SELECT 1 FROM batch) \
     ON CONFLICT (service, minute, level, shard) DO UPDATE SET n = log_counts.n + EXCLUDED.n"
);

/// The COPY transaction's first statement: claims the batch id (and the requests'
/// idempotency keys); no row means the batch was committed before.
const CLAIM_BATCH: &str = concat!(claim_batch!("$1", "$2", "$3"), " SELECT id FROM batch");

/// The digests stored for some idempotency keys.
const STORED_KEYS: &str =
    "SELECT key, digest FROM ingest_idempotency_keys WHERE key = ANY($1::text[])";

const UPSERT_COUNTS: &str = "WITH marked AS (INSERT INTO log_search_pending (block, shard) \
       SELECT block, $4::int2 FROM unnest($6::timestamptz[]) AS b(block) \
       ON CONFLICT (block, shard) DO UPDATE SET version = log_search_pending.version + 1) \
     INSERT INTO log_counts (service, minute, level, shard, n) \
     SELECT service, minute, level, $4::int2, n \
     FROM unnest($1::text[], $2::timestamptz[], $3::int2[], $5::int4[]) AS t(service, minute, level, n) \
     ON CONFLICT (service, minute, level, shard) DO UPDATE SET n = log_counts.n + EXCLUDED.n";

const COLUMN_TYPES: [Type; 8] = [
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::INT2,
    Type::TEXT,
    Type::JSONB,
    Type::TEXT,
    Type::TEXT,
    Type::INT4_ARRAY,
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
                event.counted_in,
                event.level.as_i16(),
            ))
            .or_insert(0) += 1;
    }
    counts
}

/// How log rows travel to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkMethod {
    /// Binary `COPY ... FROM STDIN`.
    Copy,
    /// `INSERT ... SELECT FROM unnest($1::timestamptz[], ...)` with the rollup upsert in the
    /// same statement: one round trip per batch.
    Unnest,
}

impl BulkMethod {
    /// The name used in settings and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Copy => "copy",
            BulkMethod::Unnest => "unnest",
        }
    }
}

impl std::str::FromStr for BulkMethod {
    type Err = String;

    fn from_str(text: &str) -> Result<BulkMethod, String> {
        match text {
            "copy" => Ok(BulkMethod::Copy),
            "unnest" => Ok(BulkMethod::Unnest),
            _ => Err(format!("{text:?} is not a bulk method (copy or unnest)")),
        }
    }
}

/// A writer's connection with its statements prepared once, so a batch costs BEGIN, the
/// COPY (or one INSERT), one upsert and COMMIT, with no parsing or planning.
pub struct BulkConnection {
    client: tokio_postgres::Client,
    copy: tokio_postgres::Statement,
    unnest: tokio_postgres::Statement,
    upsert: tokio_postgres::Statement,
    claim: tokio_postgres::Statement,
    stored_keys: tokio_postgres::Statement,
}

/// What makes writing a batch again harmless: its id, and the idempotency keys of its
/// requests with the digest of each request (SHA-256 of what it sent).
#[derive(Debug, Clone, Copy)]
pub struct BatchIdentity<'a> {
    /// Unique (a UUID v7's text, [`new_batch_id`]), the same on every attempt of the batch.
    pub id: &'a str,
    pub keys: &'a [&'a str],
    pub digests: &'a [&'a [u8]],
}

/// How long a committed batch's id is kept: far beyond any retry of it
/// (`ingest.request_timeout` + `ingest.in_doubt_timeout`, 40 s by default). Ingest prunes
/// them every minute ([`prune_batch_ids`]), so the table holds about this long of batches.
pub const BATCH_ID_WINDOW_MINUTES: i32 = 10;
/// How long a request's `Idempotency-Key` is honoured (at least; keys are removed by the
/// detector's hourly maintenance after that).
pub const IDEMPOTENCY_WINDOW_HOURS: i32 = 24;

/// Deletes the ids of batches committed more than [`BATCH_ID_WINDOW_MINUTES`] ago; how
/// many.
pub async fn prune_batch_ids(conn: &mut diesel_async::AsyncPgConnection) -> StoreResult<usize> {
    use diesel::sql_types::Integer;
    use diesel_async::RunQueryDsl;
    Ok(diesel::sql_query(
        "DELETE FROM ingest_batches WHERE committed_at < now() - make_interval(mins => $1)",
    )
    .bind::<Integer, _>(BATCH_ID_WINDOW_MINUTES)
    .execute(conn)
    .await?)
}

/// Deletes idempotency keys stored more than [`IDEMPOTENCY_WINDOW_HOURS`] ago; how many.
pub async fn prune_idempotency_keys(
    conn: &mut diesel_async::AsyncPgConnection,
) -> StoreResult<usize> {
    use diesel::sql_types::Integer;
    use diesel_async::RunQueryDsl;
    Ok(diesel::sql_query(
        "DELETE FROM ingest_idempotency_keys WHERE stored_at < now() - make_interval(hours => $1)",
    )
    .bind::<Integer, _>(IDEMPOTENCY_WINDOW_HOURS)
    .execute(conn)
    .await?)
}

/// A fresh batch id: a UUID v7 (time-ordered, random below the millisecond), so that
/// inserting it touches the rightmost page of the index rather than a random one (random
/// keys cost a full-page image in the WAL for most inserts after each checkpoint).
pub fn new_batch_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Its rows were written (this many).
    Stored(u64),
    /// Its id was already committed (an earlier attempt whose answer was lost): nothing
    /// was written.
    AlreadyStored,
}

impl BulkConnection {
    /// Opens a connection (driven on the current runtime) and prepares the statements.
    pub async fn connect(config: &crate::pool::ConnectionConfig) -> StoreResult<BulkConnection> {
        let client = config.connect_raw().await?;
        let (copy, unnest, upsert, claim, stored_keys) = tokio::try_join!(
            client.prepare(COPY_LOGS),
            client.prepare(INSERT_BATCH_UNNEST),
            client.prepare(UPSERT_COUNTS),
            client.prepare(CLAIM_BATCH),
            client.prepare(STORED_KEYS),
        )?;
        Ok(BulkConnection {
            client,
            copy,
            unnest,
            upsert,
            claim,
            stored_keys,
        })
    }

    /// Whether the connection is gone (it is then replaced).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Writes a batch under a fresh id with no idempotency keys (loaders, tests).
    pub async fn write_new_batch(
        &mut self,
        events: &[&LogEvent],
        shard: i16,
        method: BulkMethod,
    ) -> StoreResult<Written> {
        let id = new_batch_id();
        let identity = BatchIdentity {
            id: &id,
            keys: &[],
            digests: &[],
        };
        self.write_batch(events, shard, method, identity).await
    }

    /// The digests stored for those of `keys` that are taken.
    pub async fn stored_keys(&self, keys: &[&str]) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let rows = self.client.query(&self.stored_keys, &[&keys]).await?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, Vec<u8>>(1)))
            .collect())
    }

    /// Writes events, their rollups and the batch's identity in one transaction, unless
    /// the identity's id was committed before. `shard` tells this writer's rollup rows
    /// apart from other writers' (see `log_counts.shard`). A key taken by another request
    /// is a unique violation ([`crate::StoreError::is_unique_violation`]).
    pub async fn write_batch(
        &mut self,
        events: &[&LogEvent],
        shard: i16,
        method: BulkMethod,
        identity: BatchIdentity<'_>,
    ) -> StoreResult<Written> {
        let counts = RollupColumns::of(events);
        match method {
            BulkMethod::Copy => {
                let transaction = self.client.transaction().await?;
                let claimed = transaction
                    .query_opt(
                        &self.claim,
                        &[&identity.id, &identity.keys, &identity.digests],
                    )
                    .await?;
                if claimed.is_none() {
                    // Rolled back on drop; nothing was written.
                    return Ok(Written::AlreadyStored);
                }
                let written = copy_logs(&transaction, &self.copy, events).await?;
                transaction
                    .execute(
                        &self.upsert,
                        &[
                            &counts.services,
                            &counts.minutes,
                            &counts.levels,
                            &shard,
                            &counts.ns,
                            &counts.blocks,
                        ],
                    )
                    .await?;
                transaction.commit().await?;
                Ok(Written::Stored(written))
            }
            BulkMethod::Unnest => {
                let logs = LogColumns::of(events);
                let counted = self
                    .client
                    .execute(
                        &self.unnest,
                        &[
                            &logs.ts,
                            &logs.services,
                            &logs.levels,
                            &logs.messages,
                            &logs.attributes,
                            &logs.trace_ids,
                            &logs.span_ids,
                            &shard,
                            &counts.services,
                            &counts.minutes,
                            &counts.levels,
                            &counts.ns,
                            &logs.terms,
                            &logs.terms_first,
                            &logs.terms_last,
                            &counts.blocks,
                            &identity.id,
                            &identity.keys,
                            &identity.digests,
                        ],
                    )
                    .await?;
                // Every event counts in a rollup row, so none written means the batch id
                // was taken.
                if counted == 0 && !events.is_empty() {
                    Ok(Written::AlreadyStored)
                } else {
                    Ok(Written::Stored(events.len() as u64))
                }
            }
        }
    }
}

async fn copy_logs(
    transaction: &tokio_postgres::Transaction<'_>,
    statement: &tokio_postgres::Statement,
    events: &[&LogEvent],
) -> StoreResult<u64> {
    let sink = transaction.copy_in(statement).await?;
    let writer = BinaryCopyInWriter::new(sink, &COLUMN_TYPES);
    pin_mut!(writer);
    for event in events {
        let level = event.level.as_i16();
        let row: [&(dyn ToSql + Sync); 8] = [
            &event.ts,
            &event.service.as_str(),
            &level,
            &event.message,
            &JsonText(&event.attributes),
            &event.trace_id,
            &event.span_id,
            &event.terms,
        ];
        writer.as_mut().write(&row).await?;
    }
    Ok(writer.finish().await?)
}

/// A batch's log rows as column arrays.
struct LogColumns<'a> {
    ts: Vec<DateTime<Utc>>,
    services: Vec<&'a str>,
    levels: Vec<i16>,
    messages: Vec<&'a str>,
    attributes: Vec<JsonText<'a>>,
    trace_ids: Vec<Option<&'a str>>,
    span_ids: Vec<Option<&'a str>>,
    /// Every row's search terms, one after another.
    terms: Vec<i32>,
    /// Where each row's terms begin and end in `terms` (1-based, inclusive, as SQL slices
    /// count; `last < first` for none).
    terms_first: Vec<i32>,
    terms_last: Vec<i32>,
}

impl<'a> LogColumns<'a> {
    fn of(events: &[&'a LogEvent]) -> LogColumns<'a> {
        let mut terms = Vec::with_capacity(events.iter().map(|event| event.terms.len()).sum());
        let mut terms_first = Vec::with_capacity(events.len());
        let mut terms_last = Vec::with_capacity(events.len());
        for event in events {
            // Positions fit: a batch is bounded far below 2^31 terms (max_batch_bytes).
            terms_first.push(i32::try_from(terms.len() + 1).unwrap_or(i32::MAX));
            terms.extend_from_slice(&event.terms);
            terms_last.push(i32::try_from(terms.len()).unwrap_or(i32::MAX));
        }
        LogColumns {
            terms,
            terms_first,
            terms_last,
            ts: events.iter().map(|event| event.ts).collect(),
            services: events.iter().map(|event| event.service.as_str()).collect(),
            levels: events.iter().map(|event| event.level.as_i16()).collect(),
            messages: events.iter().map(|event| event.message.as_str()).collect(),
            attributes: events
                .iter()
                .map(|event| JsonText(&event.attributes))
                .collect(),
            trace_ids: events
                .iter()
                .map(|event| event.trace_id.as_deref())
                .collect(),
            span_ids: events
                .iter()
                .map(|event| event.span_id.as_deref())
                .collect(),
        }
    }
}

/// A batch's pre-aggregated rollup rows as column arrays, in lock order.
struct RollupColumns<'a> {
    services: Vec<&'a str>,
    minutes: Vec<DateTime<Utc>>,
    levels: Vec<i16>,
    ns: Vec<i32>,
    /// The search index blocks the batch adds terms to, ascending (the lock order).
    blocks: Vec<DateTime<Utc>>,
}

impl<'a> RollupColumns<'a> {
    fn of(events: &[&'a LogEvent]) -> RollupColumns<'a> {
        let counts = rollups(events.iter().copied());
        let mut columns = RollupColumns {
            services: Vec::with_capacity(counts.len()),
            minutes: Vec::with_capacity(counts.len()),
            levels: Vec::with_capacity(counts.len()),
            ns: Vec::with_capacity(counts.len()),
            blocks: events
                .iter()
                .filter(|event| !event.terms.is_empty())
                .map(|event| domain::search::block_of(event.ts))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        for ((service, minute, level), n) in counts {
            columns.services.push(service);
            columns.minutes.push(minute.start());
            columns.levels.push(level);
            columns.ns.push(n);
        }
        columns
    }
}
