//! The log search index: per 10-second block of event time, the distinct terms of its rows
//! (`log_search_blocks`), built off the commit path from the blocks ingest marks pending
//! (`log_search_pending`). See the migration `2026-12-03-000001_search` for the tables and
//! docs/SEARCH.md for what a search does with them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::search::{BLOCK_SECONDS, slice_of};

use crate::error::{StoreError, StoreResult};
use crate::schema::{log_search_blocks, log_search_pending, logs};

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

/// Builds up to `max_blocks` pending blocks that ended before `closed_before` (blocks still
/// being written are left until they close: each is then built once, not once per batch),
/// oldest first, unless another process is indexing right now (then `None`).
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
        let mut by_block: BTreeMap<DateTime<Utc>, Vec<(i16, i64)>> = BTreeMap::new();
        for (block, shard, version) in marks {
            by_block.entry(block).or_default().push((shard, version));
        }
        let left = by_block.len().saturating_sub(max_blocks);
        let mut pass = IndexPass {
            left,
            ..IndexPass::default()
        };
        for (block, marks) in by_block.into_iter().take(max_blocks) {
            // Read after the marks: every batch that set a mark seen above is visible.
            let rows: Vec<Vec<i32>> = logs::table
                .filter(logs::ts.ge(block))
                .filter(logs::ts.lt(block + block_width()))
                .select(logs::terms)
                .load(conn)
                .await?;
            pass.rows += rows.len();
            let mut slices: BTreeMap<i16, BTreeSet<i32>> = BTreeMap::new();
            for term in rows.into_iter().flatten() {
                slices.entry(slice_of(term)).or_default().insert(term);
            }
            for (slice, terms) in slices {
                let terms: Vec<i32> = terms.into_iter().collect();
                diesel::insert_into(log_search_blocks::table)
                    .values((
                        log_search_blocks::slice.eq(slice),
                        log_search_blocks::block.eq(block),
                        log_search_blocks::terms.eq(&terms),
                    ))
                    .on_conflict((log_search_blocks::slice, log_search_blocks::block))
                    .do_update()
                    .set(log_search_blocks::terms.eq(&terms))
                    .execute(conn)
                    .await?;
            }
            // A mark whose version moved on belongs to a batch this pass may not have seen:
            // it stays, and the block is built again.
            for (shard, version) in marks {
                diesel::delete(
                    log_search_pending::table
                        .filter(log_search_pending::block.eq(block))
                        .filter(log_search_pending::shard.eq(shard))
                        .filter(log_search_pending::version.eq(version)),
                )
                .execute(conn)
                .await?;
            }
            pass.blocks += 1;
        }
        Ok(Some(pass))
    })
    .await
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
    let pending: Vec<DateTime<Utc>> = log_search_pending::table
        .filter(log_search_pending::block.ge(first))
        .filter(log_search_pending::block.lt(to))
        .select(log_search_pending::block)
        .distinct()
        .load(conn)
        .await?;
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
