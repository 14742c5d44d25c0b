//! Keeping a [`TokenVerifier`]'s list of revoked token ids fresh: every service polls the
//! `revoked_tokens` table, so `threesigma token revoke` takes effect everywhere within one
//! refresh interval.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::token::TokenVerifier;

/// Polls revoked token ids from the database into `verifier` every `every`, until
/// `shutdown`. Failures keep the last known list.
pub fn keep_fresh(
    verifier: TokenVerifier,
    pool: store::DbPool,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(runtime::shutdown::every(every, shutdown, move || {
        let (verifier, pool) = (verifier.clone(), pool.clone());
        async move {
            let ids = async {
                let mut conn = store::pool::connection(&pool).await?;
                store::users::revoked_token_ids(&mut conn, verifier.leeway()).await
            }
            .await;
            match ids {
                Ok(ids) => verifier.set_revoked(ids),
                Err(error) => {
                    tracing::warn!(%error, "Reading revoked tokens failed; keeping the last list.")
                }
            }
        }
    }))
}
