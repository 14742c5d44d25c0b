//! [`ApiGuard`]: everything that stands between a caller and a service's API, built once
//! from the `[auth]`, `[rate_limit]` and `[server]` settings and shared by ingest and query.

use actix_web::middleware::{Condition, from_fn};
use actix_web::web::Data;
use auth::{AuthSettings, TokenVerifier};
use runtime::SettingsError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::authn::authenticate;
use crate::ratelimit::{Limiter, RateLimitSettings};

/// How often idle callers are forgotten.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The token verifier (kept fresh with the revocation list) and the rate limiter of a
/// service's API.
#[derive(Clone)]
pub struct ApiGuard {
    verifier: TokenVerifier,
    limiter: Limiter,
    /// The stricter limiter of login attempts, per client address.
    login_limiter: Limiter,
    rate_limited: bool,
    trusted_proxies: Vec<ipnet::IpNet>,
    cors_origins: Vec<String>,
    revocation_refresh: std::time::Duration,
}

impl ApiGuard {
    /// Checks and builds everything; refuses unusable settings with a message naming the
    /// setting.
    pub fn new(
        auth: &AuthSettings,
        rate_limit: &RateLimitSettings,
        cors_origins: &[String],
    ) -> Result<ApiGuard, SettingsError> {
        Ok(ApiGuard {
            verifier: auth.verifier()?,
            limiter: rate_limit.general()?,
            login_limiter: rate_limit.login()?,
            rate_limited: rate_limit.enabled(),
            trusted_proxies: rate_limit.proxies()?,
            cors_origins: cors_origins.to_vec(),
            revocation_refresh: auth.revocation_refresh,
        })
    }

    /// The proxies whose `X-Forwarded-For` is believed, for
    /// [`web::server::ServiceBuilder::trusted_proxies`].
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies.clone()
    }

    /// The verifier, as app data for the authentication middleware.
    pub fn verifier(&self) -> Data<TokenVerifier> {
        Data::new(self.verifier.clone())
    }

    /// The task that keeps revocations fresh from `pool`, for
    /// [`web::server::ServiceBuilder::background`].
    pub fn revocations(
        &self,
        pool: store::DbPool,
    ) -> impl FnOnce(CancellationToken) -> JoinHandle<()> + Send + 'static {
        let verifier = self.verifier.clone();
        let every = self.revocation_refresh;
        move |shutdown| auth::revocation::keep_fresh(verifier, pool, every, shutdown)
    }

    /// The task that forgets callers idle long enough for their buckets to be full again
    /// (every minute), so the limiters' memory is bounded by recent callers, not by every
    /// address or subject ever seen. For [`web::server::ServiceBuilder::background`].
    pub fn pruning(&self) -> impl FnOnce(CancellationToken) -> JoinHandle<()> + Send + 'static {
        let guard = self.clone();
        move |shutdown| {
            tokio::spawn(runtime::shutdown::every(PRUNE_EVERY, shutdown, move || {
                guard.prune();
                std::future::ready(())
            }))
        }
    }

    /// Callers the limiters track (for tests and metrics).
    pub fn tracked_callers(&self) -> usize {
        self.limiter.limiter().len() + self.login_limiter.limiter().len()
    }

    /// Forgets idle callers now (what [`ApiGuard::pruning`] does every minute).
    pub fn prune(&self) {
        for limiter in [self.limiter.limiter(), self.login_limiter.limiter()] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The middleware of a login route: the stricter per-address limit.
    pub fn login_limit(
        &self,
    ) -> actix_governor::Governor<
        crate::ratelimit::CallerKey,
        governor::middleware::StateInformationMiddleware,
    > {
        actix_governor::Governor::new(&self.login_limiter)
    }

    /// The scope of the service's authenticated API at `path`, with its middleware in the
    /// one order that works: CORS (when origins are listed) → the JSON
    /// Content-Security-Policy → authentication (records the caller) → the rate limiter
    /// (keys on that caller; wrapped only when `rate_limit.per_second` > 0, so a disabled
    /// limiter costs nothing). Register [`ApiGuard::verifier`] as app data beside it.
    pub fn scope(
        &self,
        path: &str,
    ) -> actix_web::Scope<
        impl actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody + use<>>,
            Error = actix_web::Error,
            InitError = (),
        > + use<>,
    > {
        actix_web::web::scope(path)
            // Inner first: the limiter needs the caller the authentication around it records.
            .wrap(Condition::new(
                self.rate_limited,
                actix_governor::Governor::new(&self.limiter),
            ))
            .wrap(from_fn(authenticate))
            .wrap(web::headers::api_content_security_policy())
            .wrap(Condition::new(
                !self.cors_origins.is_empty(),
                web::headers::cors(&self.cors_origins),
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every address or subject ever seen used to stay in the limiters forever.
    #[tokio::test]
    async fn idle_callers_are_forgotten() {
        let guard = ApiGuard::new(
            &auth::testing::settings(),
            &RateLimitSettings::default(),
            &[],
        )
        .unwrap();
        let limiter = guard.limiter.limiter();
        for caller in 0..1_000 {
            let _ = limiter.check_key(&format!("ip:10.0.{}.{}", caller / 256, caller % 256));
        }
        assert_eq!(guard.tracked_callers(), 1_000);
        // 5,000 requests/s refill one request's room in 0.2 ms.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        guard.prune();
        assert_eq!(guard.tracked_callers(), 0);
    }
}
