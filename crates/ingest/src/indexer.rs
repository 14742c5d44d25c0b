//! The search indexer: a background task that builds the term index of the blocks ingest
//! marked pending (`store::search::index_pending`), off the commit path. Until a block is
//! built, searches read its rows in full, so nothing waits for it to be searchable; the
//! indexer only keeps searches fast. However many ingest processes run, one indexes at a
//! time (an advisory lock); the others skip the pass.

use std::time::Duration;

use chrono::Utc;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A block is built once it has been closed this long (batches with events in it are
/// usually committed by then, so it is built once rather than again and again).
const SETTLE: Duration = Duration::from_secs(5);
/// Blocks built per transaction.
const BLOCKS_PER_PASS: usize = 60;

/// The indexer's metrics.
#[derive(Clone, Default)]
pub struct IndexerMetrics {
    /// Blocks (re)built.
    pub blocks: Counter,
    /// Log rows read to build them.
    pub rows: Counter,
    /// Closed blocks waiting to be built after the last pass.
    pub pending: Gauge,
    /// Passes that failed (database unavailable, ...).
    pub failures: Counter,
}

impl IndexerMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> IndexerMetrics {
        let metrics = IndexerMetrics::default();
        let search = registry.sub_registry_with_prefix("search_index");
        search.register(
            "blocks",
            "Search index blocks built",
            metrics.blocks.clone(),
        );
        search.register(
            "rows",
            "Log rows read to build search index blocks",
            metrics.rows.clone(),
        );
        search.register(
            "pending_blocks",
            "Closed blocks waiting for the search indexer after its last pass",
            metrics.pending.clone(),
        );
        search.register(
            "failures",
            "Search indexer passes that failed",
            metrics.failures.clone(),
        );
        metrics
    }
}

/// Builds every closed pending block now, a transaction of up to [`BLOCKS_PER_PASS`] at a
/// time. `None` when another process holds the indexing lock.
pub async fn index_now(
    pool: &store::DbPool,
    metrics: &IndexerMetrics,
) -> anyhow::Result<Option<store::search::IndexPass>> {
    let closed_before = Utc::now() - chrono::Duration::from_std(SETTLE)?;
    let mut total = store::search::IndexPass::default();
    loop {
        let mut conn = pool.get().await?;
        let Some(pass) =
            store::search::index_pending(&mut conn, closed_before, BLOCKS_PER_PASS).await?
        else {
            return Ok(None);
        };
        metrics.blocks.inc_by(pass.blocks as u64);
        metrics.rows.inc_by(pass.rows as u64);
        metrics
            .pending
            .set(i64::try_from(pass.left).unwrap_or(i64::MAX));
        total.blocks += pass.blocks;
        total.rows += pass.rows;
        total.left = pass.left;
        if pass.left == 0 || pass.blocks == 0 {
            return Ok(Some(total));
        }
    }
}

/// How often the task also deletes old batch ids ([`store::bulk::prune_batch_ids`]).
const PRUNE_BATCH_IDS_EVERY: Duration = Duration::from_secs(60);

/// The background task: a pass every `every` until shutdown; every minute it also deletes
/// the ids of batches committed long enough ago that no retry can need them (ingest writes
/// them, so ingest keeps their table small; the detector's hourly maintenance would let a
/// busy fleet's pile up).
pub fn task(
    pool: store::DbPool,
    every: Duration,
    metrics: IndexerMetrics,
) -> impl FnOnce(CancellationToken) -> JoinHandle<()> + Send + 'static {
    move |shutdown| {
        let mut next_prune = tokio::time::Instant::now();
        tokio::spawn(runtime::shutdown::every(every, shutdown, move || {
            let prune = tokio::time::Instant::now() >= next_prune;
            if prune {
                next_prune = tokio::time::Instant::now() + PRUNE_BATCH_IDS_EVERY;
            }
            let (pool, metrics) = (pool.clone(), metrics.clone());
            async move {
                if let Err(error) = index_now(&pool, &metrics).await {
                    metrics.failures.inc();
                    tracing::warn!(error = %error, "Search indexing pass failed; retrying at the next.");
                }
                if !prune {
                    return;
                }
                let pruned = async {
                    let mut conn = store::pool::connection(&pool).await?;
                    store::bulk::prune_batch_ids(&mut conn).await
                };
                if let Err(error) = pruned.await {
                    tracing::warn!(error = %error, "Deleting old batch ids failed; retrying in a minute.");
                }
            }
        }))
    }
}
