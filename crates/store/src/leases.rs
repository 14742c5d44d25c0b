//! Sharing services among detector replicas with PostgreSQL advisory locks.
//!
//! Services hash into `buckets` buckets (in SQL, so every replica agrees). Each replica
//! holds a shared "member" lock plus exclusive locks on the buckets it evaluates, all
//! session locks on one dedicated connection: when a replica dies its connection closes and
//! its buckets free up by themselves. At each refresh a replica counts the members, aims at
//! ⌈buckets / members⌉ buckets, releases any above that and tries to take free ones, so the
//! work spreads evenly and follows replicas coming and going within an interval or two.
//! Correctness never depends on this: incident writes are conditional and unique, so two
//! replicas evaluating one service (briefly, while rebalancing) cannot duplicate anything.

use std::collections::BTreeSet;

use crate::error::{StoreError, StoreResult};

/// First key of every threesigma advisory lock of this kind ("ts").
const NAMESPACE: i32 = 0x7473;
/// Second key of the member lock (buckets are 0..buckets).
const MEMBER: i32 = -1;

/// This replica's bucket locks.
pub struct BucketLeases {
    config: crate::pool::ConnectionConfig,
    client: Option<tokio_postgres::Client>,
    buckets: i32,
    held: BTreeSet<i32>,
}

impl BucketLeases {
    pub fn new(config: crate::pool::ConnectionConfig, buckets: i32) -> BucketLeases {
        BucketLeases {
            config,
            client: None,
            buckets: buckets.max(1),
            held: BTreeSet::new(),
        }
    }

    pub fn buckets(&self) -> i32 {
        self.buckets
    }

    /// Fails, and forgets the buckets, when their locks are gone: their connection died, or
    /// its server is no longer the primary (a failover: session locks do not move to the
    /// new primary, where another replica may hold the buckets now). Called right before a
    /// cycle writes, so a cycle never acts on locks it lost after its refresh; the next
    /// refresh takes buckets again on whatever primary answers.
    pub async fn confirm(&mut self) -> StoreResult<()> {
        let primary = match &self.client {
            Some(client) if !client.is_closed() => client
                .query_one("SELECT NOT pg_is_in_recovery()", &[])
                .await
                .map(|row| row.get::<_, bool>(0))
                .unwrap_or(false),
            _ => false,
        };
        if primary {
            return Ok(());
        }
        self.client = None;
        self.held.clear();
        Err(StoreError::Unavailable(
            "this detector's bucket locks were lost with their connection; taking buckets again next cycle"
                .to_owned(),
        ))
    }

    /// Rebalances and returns the buckets this replica holds now.
    pub async fn refresh(&mut self) -> StoreResult<Vec<i32>> {
        let result = self.rebalance().await;
        if let Err(error) = &result
            && error.is_unavailable()
        {
            // The connection is gone, and with it every lock.
            self.client = None;
            self.held.clear();
        }
        result
    }

    async fn rebalance(&mut self) -> StoreResult<Vec<i32>> {
        if self
            .client
            .as_ref()
            .is_none_or(tokio_postgres::Client::is_closed)
        {
            self.held.clear();
            let client = self.config.connect_raw().await?;
            client
                .execute(
                    "SELECT pg_advisory_lock_shared($1, $2)",
                    &[&NAMESPACE, &MEMBER],
                )
                .await?;
            self.client = Some(client);
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("no lease connection".to_owned()))?;
        let members: i64 = client
            .query_one(
                "SELECT count(DISTINCT pid) FROM pg_locks \
                 WHERE locktype = 'advisory' AND granted AND classid = $1::int4::oid \
                 AND objid = $2::int4::oid AND objsubid = 2 \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&NAMESPACE, &MEMBER],
            )
            .await?
            .get(0);
        let members = i32::try_from(members.max(1)).unwrap_or(i32::MAX);
        let target = usize::try_from((self.buckets + members - 1) / members).unwrap_or(0);

        while self.held.len() > target {
            let Some(bucket) = self.held.pop_last() else {
                break;
            };
            client
                .execute("SELECT pg_advisory_unlock($1, $2)", &[&NAMESPACE, &bucket])
                .await?;
        }
        if self.held.len() < target {
            let wanted = i64::try_from(target - self.held.len()).unwrap_or(0);
            // Start the search at a different bucket in each replica, so that replicas
            // starting together do not all race for bucket 0.
            let offset = i32::try_from(std::process::id() % 1024).unwrap_or(0) % self.buckets;
            let candidates: Vec<i32> = (0..self.buckets)
                .map(|i| (i + offset) % self.buckets)
                .filter(|bucket| !self.held.contains(bucket))
                .collect();
            // Rows come in array order and the LIMIT stops the scan, so no more locks are
            // taken than wanted (an ORDER BY would evaluate every row first).
            let rows = client
                .query(
                    "SELECT bucket FROM unnest($1::int4[]) WITH ORDINALITY AS c(bucket, position) \
                     WHERE pg_try_advisory_lock($2, bucket) LIMIT $3",
                    &[&candidates, &NAMESPACE, &wanted],
                )
                .await?;
            self.held
                .extend(rows.iter().map(|row| row.get::<_, i32>(0)));
        }
        Ok(self.held.iter().copied().collect())
    }
}
