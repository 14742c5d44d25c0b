//! The log search index: per 10-second block of event time, the distinct terms of its rows
//! (`log_search_blocks`), built off the commit path from the blocks ingest marks pending
//! (`log_search_pending`). See the migration `2026-12-03-000001_search` for the tables and
//! docs/SEARCH.md for what a search does with them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Int4, Integer, SmallInt, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::search::{BLOCK_SECONDS, slice_of};
use futures_util::TryStreamExt;

use crate::error::{StoreError, StoreResult};
use crate::schema::{log_search_blocks, log_search_pending};

/// The advisory lock (with key 29811) one indexing pass holds, so that however many ingest
/// processes run, one indexes at a time.
const INDEX_LOCK: i32 = -3;

/// One block's width.
pub fn block_width() -> chrono::Duration {
    chrono::Duration::seconds(BLOCK_SECONDS)
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// What one indexing pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexPass {
    /// Blocks (re)built.
    pub blocks: usize,
    /// Log rows read to build them.
    pub rows: usize,
    /// Pending blocks left for the next pass (beyond `max_blocks`, or still open).
    pub left: usize,
}

#[derive(diesel::QueryableByName)]
struct RowTerms {
    #[diesel(sql_type = Array<Int4>)]
    terms: Vec<i32>,
}

/// Reads the terms of every row of one block (an index range scan).
const READ_BLOCK: &str = "SELECT terms FROM logs \
     WHERE ts >= $1 AND ts < $1 + make_interval(secs => $2)";

/// A pass stops after the block that takes it past this many rows (the rest wait for the
/// next pass), so one transaction stays short however busy the fleet.
const MAX_ROWS_PER_PASS: usize = 500_000;

/// One block's distinct terms by slice, gathered row by row. Each slice's terms are sorted
/// and deduplicated whenever they have doubled since the last time, so memory stays within
/// about twice the distinct terms however many rows repeat them.
#[derive(Default)]
struct BlockSlices {
    slices: BTreeMap<i16, (Vec<i32>, usize)>,
}

impl BlockSlices {
    fn add(&mut self, terms: &[i32]) {
        for term in terms {
            let (slice, compacted) = self.slices.entry(slice_of(*term)).or_default();
            slice.push(*term);
            if slice.len() >= 2 * *compacted + 1024 {
                slice.sort_unstable();
                slice.dedup();
                *compacted = slice.len();
            }
        }
    }

    fn finish(self) -> impl Iterator<Item = (i16, Vec<i32>)> {
        self.slices.into_iter().map(|(slice, (mut terms, _))| {
            terms.sort_unstable();
            terms.dedup();
            (slice, terms)
        })
    }
}

/// Writes (slice, block) rows; each row's terms are a slice of one flat array.
const WRITE_BLOCKS: &str = "INSERT INTO log_search_blocks (slice, block, terms) \
     SELECT slice, block, ($4::int4[])[terms_from:terms_to] \
     FROM unnest($1::int2[], $2::timestamptz[], $3::int4[], $5::int4[]) AS t(slice, block, terms_from, terms_to) \
     ON CONFLICT (slice, block) DO UPDATE SET terms = EXCLUDED.terms";

/// Deletes the marks a pass saw, where their version has not moved on since.
const CLEAR_MARKS: &str = "DELETE FROM log_search_pending p \
     USING unnest($1::timestamptz[], $2::int2[], $3::int8[]) AS m(block, shard, version) \
     WHERE p.block = m.block AND p.shard = m.shard AND p.version = m.version";

/// Builds up to `max_blocks` pending blocks that ended before `closed_before` (blocks still
/// being written are left until they close: each is then built once, not once per batch),
/// oldest first, unless another process is indexing right now (then `None`): the marks,
/// each block's rows' terms (streamed), the block rows, the marks cleared. A pass stops
/// early once it has read [`MAX_ROWS_PER_PASS`] rows.
pub async fn index_pending(
    conn: &mut AsyncPgConnection,
    closed_before: DateTime<Utc>,
    max_blocks: usize,
) -> StoreResult<Option<IndexPass>> {
    let last_start = closed_before - block_width();
    conn.transaction::<_, StoreError, _>(async |conn| {
        let lock: Locked = diesel::sql_query(format!(
            "SELECT pg_try_advisory_xact_lock(29811, {INDEX_LOCK}) AS locked"
        ))
        .get_result(conn)
        .await?;
        if !lock.locked {
            return Ok(None);
        }
        let marks: Vec<(DateTime<Utc>, i16, i64)> = log_search_pending::table
            .filter(log_search_pending::block.le(last_start))
            .select((
                log_search_pending::block,
                log_search_pending::shard,
                log_search_pending::version,
            ))
            .order(log_search_pending::block)
            .load(conn)
            .await?;
        let blocks: BTreeSet<DateTime<Utc>> = marks.iter().map(|(block, _, _)| *block).collect();
        let pending = blocks.len();
        // Oldest first, one block at a time, each block's rows streamed and their terms
        // deduplicated as they arrive: the pass holds one block's distinct terms, whatever
        // the number of rows (a busy fleet writes a million rows a block).
        let mut columns = BlockColumns::default();
        let mut built = Vec::new();
        let mut rows = 0;
        for block in blocks.into_iter().take(max_blocks) {
            // Read after the marks: every batch that set a mark seen above is visible.
            let mut slices = BlockSlices::default();
            let mut stream = diesel::sql_query(READ_BLOCK)
                .bind::<Timestamptz, _>(block)
                .bind::<Double, _>(BLOCK_SECONDS as f64)
                .load_stream::<RowTerms>(conn)
                .await?;
            while let Some(row) = stream.try_next().await? {
                rows += 1;
                slices.add(&row.terms);
            }
            drop(stream);
            for (slice, terms) in slices.finish() {
                columns.push(slice, block, &terms);
            }
            built.push(block);
            if rows >= MAX_ROWS_PER_PASS {
                break;
            }
        }
        let Some(last_block) = built.last().copied() else {
            return Ok(Some(IndexPass::default()));
        };
        let left = pending - built.len();
        diesel::sql_query(WRITE_BLOCKS)
            .bind::<Array<SmallInt>, _>(&columns.slices)
            .bind::<Array<Timestamptz>, _>(&columns.blocks)
            .bind::<Array<Integer>, _>(&columns.from)
            .bind::<Array<Integer>, _>(&columns.terms)
            .bind::<Array<Integer>, _>(&columns.to)
            .execute(conn)
            .await?;
        // A mark whose version moved on belongs to a batch this pass may not have seen: it
        // stays, and the block is built again.
        let seen: Vec<&(DateTime<Utc>, i16, i64)> = marks
            .iter()
            .filter(|(block, _, _)| *block <= last_block)
            .collect();
        diesel::sql_query(CLEAR_MARKS)
            .bind::<Array<Timestamptz>, _>(seen.iter().map(|mark| mark.0).collect::<Vec<_>>())
            .bind::<Array<SmallInt>, _>(seen.iter().map(|mark| mark.1).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(seen.iter().map(|mark| mark.2).collect::<Vec<_>>())
            .execute(conn)
            .await?;
        Ok(Some(IndexPass {
            blocks: built.len(),
            rows,
            left,
        }))
    })
    .await
}

/// Block rows as column arrays, their terms one flat array (see [`WRITE_BLOCKS`]).
#[derive(Default)]
struct BlockColumns {
    slices: Vec<i16>,
    blocks: Vec<DateTime<Utc>>,
    terms: Vec<i32>,
    from: Vec<i32>,
    to: Vec<i32>,
}

impl BlockColumns {
    fn push(&mut self, slice: i16, block: DateTime<Utc>, terms: &[i32]) {
        self.slices.push(slice);
        self.blocks.push(block);
        // 1-based and inclusive, as SQL slices count. A pass's terms stay far below 2^31.
        self.from
            .push(i32::try_from(self.terms.len() + 1).unwrap_or(i32::MAX));
        self.terms.extend_from_slice(terms);
        self.to
            .push(i32::try_from(self.terms.len()).unwrap_or(i32::MAX));
    }
}

/// The blocks in [`from`, `to`) that may hold rows with every one of `terms`, newest first:
/// the built blocks whose terms include them all, and every pending block (not built yet,
/// or with rows added since).
pub async fn candidate_blocks(
    conn: &mut AsyncPgConnection,
    terms: &[i32],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> StoreResult<Vec<DateTime<Utc>>> {
    let first = domain::search::block_of(from);
    // Pending blocks first: a block the indexer rebuilds (and unmarks) after this read is
    // then read below already rebuilt; read the other way round, a block could be missed
    // between its old terms and its cleared mark.
    let pending: Vec<DateTime<Utc>> = log_search_pending::table
        .filter(log_search_pending::block.ge(first))
        .filter(log_search_pending::block.lt(to))
        .select(log_search_pending::block)
        .distinct()
        .load(conn)
        .await?;
    let mut by_slice: BTreeMap<i16, Vec<i32>> = BTreeMap::new();
    for term in terms {
        by_slice.entry(slice_of(*term)).or_default().push(*term);
    }
    let mut found: Option<BTreeSet<DateTime<Utc>>> = None;
    for (slice, terms) in by_slice {
        let blocks: Vec<DateTime<Utc>> = log_search_blocks::table
            .filter(log_search_blocks::slice.eq(slice))
            .filter(log_search_blocks::block.ge(first))
            .filter(log_search_blocks::block.lt(to))
            .filter(log_search_blocks::terms.contains(terms))
            .select(log_search_blocks::block)
            .load(conn)
            .await?;
        let blocks: BTreeSet<_> = blocks.into_iter().collect();
        found = Some(match found {
            None => blocks,
            Some(so_far) => so_far.intersection(&blocks).copied().collect(),
        });
        if found.as_ref().is_some_and(BTreeSet::is_empty) {
            break;
        }
    }
    let mut found = found.unwrap_or_default();
    found.extend(pending);
    Ok(found.into_iter().rev().collect())
}

/// Deletes the index of blocks before `cutoff` (retention drops their rows' partitions).
pub async fn prune(conn: &mut AsyncPgConnection, cutoff: DateTime<Utc>) -> StoreResult<usize> {
    let blocks =
        diesel::delete(log_search_blocks::table.filter(log_search_blocks::block.lt(cutoff)))
            .execute(conn)
            .await?;
    let pending =
        diesel::delete(log_search_pending::table.filter(log_search_pending::block.lt(cutoff)))
            .execute(conn)
            .await?;
    Ok(blocks + pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_slices_hold_each_distinct_term_once_in_its_slice() {
        let mut slices = BlockSlices::default();
        // Many rows repeating a few terms, and a run of distinct ones (ids): enough to
        // compact several times.
        let mut expected: BTreeMap<i16, BTreeSet<i32>> = BTreeMap::new();
        for row in 0..20_000i32 {
            let terms = [7, -7, row % 300, row * 7919, i32::MIN + row % 5];
            for term in terms {
                expected.entry(slice_of(term)).or_default().insert(term);
            }
            slices.add(&terms);
        }
        let built: BTreeMap<i16, Vec<i32>> = slices.finish().collect();
        let expected: BTreeMap<i16, Vec<i32>> = expected
            .into_iter()
            .map(|(slice, terms)| (slice, terms.into_iter().collect()))
            .collect();
        assert_eq!(built, expected);
    }
}
