//! Incident explanations, and the bounded samples of a service's lines they (and the
//! patterns endpoint) are computed from.
//!
//! A sample never scans: it is one index range read per minute of the range, each stopped
//! at its share of the lines (`LATERAL … LIMIT n`, shares from the minutes' counts in the
//! rollups), so its cost follows the sample's size, not the table's or the minute's, and
//! what it reads is bounded in bytes too (messages cut, large attributes objects left out). ERROR+ samples use the partial index
//! `logs_errors_service_ts`; the level bound is written into the statement so the planner
//! can prove the index applies. Each line is weighted by its minute's real count (from the
//! rollups) over the lines sampled from that minute.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, not, sum};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain::patterns::{Explanation, Line};
use domain::{Severity, Status};

use crate::enums::Stored;
use crate::error::StoreResult;
use crate::models::IncidentRow;
use crate::schema::{incident_explanations, incidents, log_counts};
use crate::scope::{Scope, scoped};

/// Characters of a sampled message read (a template needs its first 128 words).
pub const SAMPLE_MESSAGE_CHARS: i32 = 2_048;

/// Attributes objects stored larger than this contribute no values to a sample ...
pub const SAMPLE_ATTRIBUTES_STORED_BYTES: i32 = 8_192;

/// ... nor do those whose JSON text is longer than this ...
pub const SAMPLE_ATTRIBUTES_CHARS: i32 = 16_384;

/// ... and a sample reads this much attributes text in all, at most.
pub const SAMPLE_ATTRIBUTES_TOTAL: usize = 16 << 20;

/// One sampled line as read.
#[derive(Debug, Clone, QueryableByName)]
struct SampledRow {
    #[diesel(sql_type = Timestamptz)]
    minute: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Timestamptz)]
    ts: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    message: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    attributes: Option<String>,
}

/// One sampled line.
#[derive(Debug, Clone)]
pub struct SampledLine {
    pub minute: DateTime<Utc>,
    pub id: i64,
    pub ts: DateTime<Utc>,
    /// Its first [`SAMPLE_MESSAGE_CHARS`] characters.
    pub message: String,
    /// Its attributes; empty when not asked for, when the object is large (stored beyond
    /// [`SAMPLE_ATTRIBUTES_STORED_BYTES`], or its text beyond [`SAMPLE_ATTRIBUTES_CHARS`]),
    /// or once the sample has read [`SAMPLE_ATTRIBUTES_TOTAL`] of attributes text.
    pub attributes: serde_json::Value,
}

/// A weighted sample of one service's lines in a time range.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The lines with their weights: how many lines of their minute each stands for.
    pub lines: Vec<(SampledLine, f64)>,
}

impl Sample {
    /// The domain's view of the lines.
    pub fn lines(&self) -> Vec<Line<'_>> {
        self.lines
            .iter()
            .map(|(line, weight)| Line {
                id: line.id,
                ts: line.ts,
                message: &line.message,
                attributes: &line.attributes,
                weight: *weight,
            })
            .collect()
    }
}

/// How many lines to read from each minute: all of a minute's lines while they fit in its
/// share of `budget`, and the shares quiet minutes leave go to the busy ones (so a sample
/// is exact whenever the range has at most `budget` lines).
pub fn allocate(counts: &[i64], budget: i64) -> Vec<i64> {
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by_key(|&i| counts[i]);
    let mut takes = vec![0; counts.len()];
    let mut left = budget.max(0);
    for (done, &i) in order.iter().enumerate() {
        let remaining = i64::try_from(counts.len() - done).unwrap_or(i64::MAX);
        let share = left / remaining;
        takes[i] = counts[i].max(0).min(share.max(1).min(left));
        left -= takes[i];
    }
    takes
}

/// Up to about `max_lines` of `service`'s lines at or above `min_level` with `from <= ts <
/// until` (both on minute boundaries), spread over the minutes by [`allocate`] from their
/// counts in the rollups (the first lines of each minute in index order), each weighted by
/// its minute's count over the lines read from it. `with_attributes`: read the lines'
/// attribute values too (bounded, see [`SampledLine::attributes`]).
pub async fn sample(
    conn: &mut AsyncPgConnection,
    service: &str,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
    min_level: i16,
    max_lines: i64,
    with_attributes: bool,
) -> StoreResult<Sample> {
    if until <= from || max_lines <= 0 {
        return Ok(Sample::default());
    }
    let totals: Vec<(DateTime<Utc>, Option<i64>)> = log_counts::table
        .filter(log_counts::service.eq(service))
        .filter(log_counts::minute.ge(from))
        .filter(log_counts::minute.lt(until))
        .filter(log_counts::level.ge(min_level))
        .group_by(log_counts::minute)
        .select((log_counts::minute, sum(log_counts::n)))
        .load(conn)
        .await?;
    let totals: HashMap<DateTime<Utc>, i64> = totals
        .into_iter()
        .map(|(minute, n)| (minute, n.unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    if totals.is_empty() {
        return Ok(Sample::default());
    }
    let minutes: Vec<DateTime<Utc>> = totals.keys().copied().collect();
    let counts: Vec<i64> = minutes.iter().map(|m| totals[m]).collect();
    let takes = allocate(&counts, max_lines);
    // Attributes as bounded text, parsed here: picking values in SQL (jsonb_each per
    // line) cost more than the rest of the sample.
    let attributes = if with_attributes {
        format!(
            "CASE WHEN pg_column_size(attributes) <= {SAMPLE_ATTRIBUTES_STORED_BYTES} \
             THEN left(attributes::text, {SAMPLE_ATTRIBUTES_CHARS} + 1) END"
        )
    } else {
        "NULL::text".to_owned()
    };
    // The minutes and their shares come as arrays: the planner then expects a handful of
    // them, not the thousand it assumes of generate_series, and stays clear of JIT
    // compilation (tens of milliseconds). No ORDER BY: each minute's index range is read
    // only up to its share (an order would sort the whole minute, across partitions). The
    // level is a constant of the statement (an i16, not user text) so that the planner
    // matches the partial index's predicate; a parameter would hide it.
    let statement = format!(
        "SELECT m.minute, l.id, l.ts, l.message, l.attributes \
         FROM unnest($2::timestamptz[], $3::bigint[]) AS m(minute, take) \
         CROSS JOIN LATERAL ( \
             SELECT id, ts, left(message, {SAMPLE_MESSAGE_CHARS}) AS message, {attributes} AS attributes \
             FROM logs \
             WHERE service = $1 AND level >= {min_level} \
               AND ts >= m.minute AND ts < m.minute + interval '1 minute' \
             LIMIT m.take) AS l"
    );
    let rows: Vec<SampledRow> = diesel::sql_query(statement)
        .bind::<Text, _>(service)
        .bind::<Array<Timestamptz>, _>(minutes)
        .bind::<Array<BigInt>, _>(takes)
        .load(conn)
        .await?;
    let mut budget = SAMPLE_ATTRIBUTES_TOTAL;
    let limit = usize::try_from(SAMPLE_ATTRIBUTES_CHARS).unwrap_or(usize::MAX);
    let lines: Vec<SampledLine> = rows
        .into_iter()
        .map(|row| {
            let attributes = row
                .attributes
                .filter(|text| text.len() <= limit && text.len() <= budget)
                .and_then(|text| {
                    budget -= text.len();
                    serde_json::from_str(&text).ok()
                })
                .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
            SampledLine {
                minute: row.minute,
                id: row.id,
                ts: row.ts,
                message: row.message,
                attributes,
            }
        })
        .collect();
    let mut sampled: HashMap<DateTime<Utc>, i64> = HashMap::new();
    for line in &lines {
        *sampled.entry(line.minute).or_default() += 1;
    }
    #[allow(clippy::cast_precision_loss)] // counts per minute are far below 2^52
    let weight = |minute: &DateTime<Utc>| {
        let taken = sampled.get(minute).copied().unwrap_or(1).max(1);
        let total = totals.get(minute).copied().unwrap_or(0).max(taken);
        total as f64 / taken as f64
    };
    let lines = lines
        .into_iter()
        .map(|line| {
            let w = weight(&line.minute);
            (line, w)
        })
        .collect();
    Ok(Sample { lines })
}

/// Active incidents of `scope` without an explanation for their current stage (severity
/// and reopen count), newest first.
pub async fn pending(
    conn: &mut AsyncPgConnection,
    scope: &Scope,
    limit: i64,
) -> StoreResult<Vec<IncidentRow>> {
    let explained = incident_explanations::table
        .filter(incident_explanations::incident_id.eq(incidents::id))
        .filter(incident_explanations::severity.eq(incidents::severity))
        .filter(incident_explanations::reopened.eq(incidents::reopened_count));
    let query = incidents::table
        .filter(incidents::status.ne(Stored(Status::Resolved)))
        .filter(not(exists(explained)))
        .order((incidents::opened_at.desc(), incidents::id.desc()))
        .limit(limit)
        .select(IncidentRow::as_select())
        .into_boxed();
    Ok(scoped!(query, scope, incidents::service).load(conn).await?)
}

/// An explanation to store.
#[derive(Debug, Clone)]
pub struct NewExplanation {
    pub incident_id: i64,
    pub severity: Severity,
    pub reopened: i32,
    pub computed_at: DateTime<Utc>,
    pub window_from: DateTime<Utc>,
    pub window_until: DateTime<Utc>,
    pub baseline_from: DateTime<Utc>,
    pub baseline_until: DateTime<Utc>,
    pub body: Explanation,
}

/// Stores an explanation unless its incident's stage has one already (another replica
/// computed it first). Returns whether this call stored it.
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewExplanation) -> StoreResult<bool> {
    let body = serde_json::to_value(&new.body)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let inserted = diesel::insert_into(incident_explanations::table)
        .values((
            incident_explanations::incident_id.eq(new.incident_id),
            incident_explanations::severity.eq(Stored(new.severity)),
            incident_explanations::reopened.eq(new.reopened),
            incident_explanations::computed_at.eq(new.computed_at),
            incident_explanations::window_from.eq(new.window_from),
            incident_explanations::window_until.eq(new.window_until),
            incident_explanations::baseline_from.eq(new.baseline_from),
            incident_explanations::baseline_until.eq(new.baseline_until),
            incident_explanations::body.eq(body),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// A stored explanation.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = incident_explanations, check_for_backend(diesel::pg::Pg))]
pub struct ExplanationRow {
    pub incident_id: i64,
    #[diesel(deserialize_as = Stored<Severity>)]
    pub severity: Severity,
    pub reopened: i32,
    pub computed_at: DateTime<Utc>,
    pub window_from: DateTime<Utc>,
    pub window_until: DateTime<Utc>,
    pub baseline_from: DateTime<Utc>,
    pub baseline_until: DateTime<Utc>,
    pub body: serde_json::Value,
}

impl ExplanationRow {
    /// The stored templates and attribute values.
    pub fn explanation(&self) -> StoreResult<Explanation> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)).into())
    }
}

/// The newest explanation of an incident.
pub async fn latest(
    conn: &mut AsyncPgConnection,
    incident_id: i64,
) -> StoreResult<Option<ExplanationRow>> {
    Ok(incident_explanations::table
        .filter(incident_explanations::incident_id.eq(incident_id))
        .order(incident_explanations::computed_at.desc())
        .select(ExplanationRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::allocate;

    #[test]
    fn quiet_minutes_give_their_share_to_busy_ones() {
        assert_eq!(allocate(&[5, 1_000, 10], 100), vec![5, 85, 10]);
        // Everything fits: everything is read.
        assert_eq!(allocate(&[5, 80, 10], 100), vec![5, 80, 10]);
        // More minutes than lines to read: one each while the budget lasts.
        assert_eq!(allocate(&[9, 9, 9], 2).iter().sum::<i64>(), 2);
        assert_eq!(allocate(&[], 10), Vec::<i64>::new());
        assert_eq!(allocate(&[3], 0), vec![0]);
    }
}
