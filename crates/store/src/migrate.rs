//! Embedded migrations: every binary carries `migrations/` and can apply it or check that
//! the database is not behind.

use diesel::pg::Pg;
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{StoreError, StoreResult};

/// The migrations of this build.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Serialises concurrent migration runs (several services started with `--migrate`, or a
/// migrate Job racing a developer).
const MIGRATION_LOCK: &str = "SELECT pg_advisory_lock(hashtext('threesigma_migrations'))";

/// Runs `work` with a migration harness on its own connection. Diesel's harness is
/// synchronous, so it runs on a blocking thread and drives the async connection from there.
async fn with_harness<T, F>(url: &str, work: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut AsyncMigrationHarness<AsyncPgConnection>) -> StoreResult<T> + Send + 'static,
{
    let mut conn = crate::pool::connect(url).await?;
    conn.batch_execute(MIGRATION_LOCK).await?;
    tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        work(&mut harness)
    })
    .await
    .map_err(|error| StoreError::Migration(error.to_string()))?
}

/// Applies every pending migration; returns the names of those applied. Refuses a standby
/// (a server in recovery) by name rather than failing on its first write.
pub async fn run_pending(url: &str) -> StoreResult<Vec<String>> {
    refuse_standby(url).await?;
    with_harness(url, |harness| {
        let applied = harness
            .run_pending_migrations(MIGRATIONS)
            .map_err(|error| StoreError::Migration(error.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
}

#[derive(diesel::QueryableByName)]
struct Recovery {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    in_recovery: bool,
}

async fn refuse_standby(url: &str) -> StoreResult<()> {
    use diesel_async::RunQueryDsl;
    let mut conn = crate::pool::connect(url).await?;
    let recovery: Recovery = diesel::sql_query("SELECT pg_is_in_recovery() AS in_recovery")
        .get_result(&mut conn)
        .await?;
    if recovery.in_recovery {
        return Err(StoreError::Migration(
            "this server is a standby (read-only, in recovery): migrate the primary, e.g. with a \
             multi-host URL ending in ?target_session_attrs=read-write"
                .to_owned(),
        ));
    }
    Ok(())
}

/// How many migrations of this build the database has not applied.
pub async fn pending_count(url: &str) -> StoreResult<usize> {
    with_harness(url, |harness| {
        MigrationHarness::<Pg>::pending_migrations(harness, MIGRATIONS)
            .map(|pending| pending.len())
            .map_err(|error| StoreError::Migration(error.to_string()))
    })
    .await
}

/// Fails with [`StoreError::SchemaBehind`] when migrations are pending.
pub async fn ensure_current(url: &str) -> StoreResult<()> {
    match pending_count(url).await? {
        0 => Ok(()),
        pending => Err(StoreError::SchemaBehind { pending }),
    }
}
