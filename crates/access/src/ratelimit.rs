//! Rate limits (actix-governor): per token subject when the caller is authenticated, else per
//! client IP. `X-Forwarded-For` is believed only when the connection comes from one of
//! `trusted_proxies`, and then the address taken is the nearest one that is not a trusted
//! proxy (so a client cannot pick its own key by sending the header itself). Limits are
//! per process. Over the limit: 429 with `Retry-After`, `x-ratelimit-after`,
//! `x-ratelimit-limit` and `x-ratelimit-remaining`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_governor::{GovernorConfig, GovernorConfigBuilder, KeyExtractor};
use actix_web::dev::ServiceRequest;
use actix_web::{HttpMessage, HttpResponse, HttpResponseBuilder};
use governor::NotUntil;
use governor::clock::{Clock, DefaultClock, QuantaInstant};
use governor::middleware::StateInformationMiddleware;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use runtime::SettingsError;
use web::error::{ApiError, ErrorBody};

use crate::authn::Authentication;

/// The `[rate_limit]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Sustained requests per second per caller; 0 disables rate limiting (no headers).
    pub per_second: u64,
    /// Requests a caller may send at once beyond the sustained rate.
    pub burst: u32,
    /// Login attempts per minute per client address.
    pub login_per_minute: u64,
    /// Login attempts at once.
    pub login_burst: u32,
    /// Addresses or networks (`10.0.0.0/8`) of proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings::with_rate(50, 100)
    }
}

impl RateLimitSettings {
    /// Defaults for a service with this sustained rate and burst.
    pub fn with_rate(per_second: u64, burst: u32) -> RateLimitSettings {
        RateLimitSettings {
            per_second,
            burst,
            login_per_minute: 10,
            login_burst: 5,
            trusted_proxies: Vec::new(),
        }
    }

    /// The trusted proxies, parsed.
    pub fn proxies(&self) -> Result<Vec<IpNet>, SettingsError> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        SettingsError::invalid(
                            "rate_limit.trusted_proxies",
                            format!("{entry:?} is not an address or network"),
                        )
                    })
            })
            .collect()
    }

    /// Whether ordinary requests are rate limited at all (`per_second` > 0). Services wrap
    /// the limiter only then: a disabled limiter costs nothing per request.
    pub fn enabled(&self) -> bool {
        self.per_second > 0
    }

    /// The limiter of ordinary requests (built, and its settings checked, even when
    /// [`RateLimitSettings::enabled`] is false).
    pub fn general(&self) -> Result<Limiter, SettingsError> {
        let period = Duration::from_nanos((1_000_000_000 / self.per_second.max(1)).max(1));
        build(self.proxies()?, period, self.burst.max(1), false)
    }

    /// The stricter limiter of login attempts (per client address, whoever claims to be who).
    pub fn login(&self) -> Result<Limiter, SettingsError> {
        let period = Duration::from_millis((60_000 / self.login_per_minute.max(1)).max(1));
        build(self.proxies()?, period, self.login_burst.max(1), true)
    }
}

/// A configured limiter, shared by every worker of a service.
pub type Limiter = GovernorConfig<CallerKey, StateInformationMiddleware>;

fn build(
    proxies: Vec<IpNet>,
    period: Duration,
    burst: u32,
    by_address_only: bool,
) -> Result<Limiter, SettingsError> {
    GovernorConfigBuilder::default()
        .period(period)
        .burst_size(burst)
        .key_extractor(CallerKey {
            trusted_proxies: Arc::new(proxies),
            by_address_only,
        })
        .use_headers()
        .finish()
        .ok_or_else(|| SettingsError::invalid("rate_limit", "rates must be greater than zero"))
}

/// Keys requests by token subject, else by client address.
#[derive(Debug, Clone)]
pub struct CallerKey {
    trusted_proxies: Arc<Vec<IpNet>>,
    /// Ignore the token (login: the caller is not authenticated yet).
    by_address_only: bool,
}

impl CallerKey {
    /// The client's address: the peer, or through trusted proxies the nearest untrusted
    /// address of `X-Forwarded-For`.
    pub fn client_address(&self, request: &ServiceRequest) -> Option<IpAddr> {
        let peer = request.peer_addr()?.ip();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|hop| !self.is_trusted(*hop))
                .unwrap_or(peer),
        )
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|network| network.contains(&address))
    }
}

/// The rate-limit key of a client address: an IPv4 address (or an IPv4-mapped IPv6 one) as
/// it is, an IPv6 address by its /64: one subscriber or host usually holds a whole /64, so
/// keying by address would give it 2^64 fresh buckets.
pub fn address_key(address: IpAddr) -> String {
    match web::clients::client_network(address) {
        IpNet::V4(net) => format!("ip:{}", net.addr()),
        IpNet::V6(net) => format!("ip:{net}"),
    }
}

impl KeyExtractor for CallerKey {
    type Key = String;
    type KeyExtractionError = ApiError;

    fn extract(&self, request: &ServiceRequest) -> Result<String, ApiError> {
        if !self.by_address_only
            && let Some(Authentication(Ok(principal))) =
                request.extensions().get::<Authentication>()
        {
            return Ok(format!("sub:{}", principal.subject));
        }
        Ok(match self.client_address(request) {
            Some(address) => address_key(address),
            None => "ip:unknown".to_owned(),
        })
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        mut response: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative
            .wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1);
        // actix-governor's own headers round the wait down (a 0 under a second, which
        // exporters take as "retry at once"): they say the same whole seconds as the body.
        response.insert_header((actix_web::http::header::RETRY_AFTER, wait));
        response.insert_header(("x-ratelimit-after", wait));
        response.json(ErrorBody {
            error: "rate_limited",
            message: format!("too many requests, retry in {wait}s"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let key = |text: &str| address_key(text.parse().unwrap());
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:fffe")
        );
        assert_eq!(key("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(key("192.0.2.7"), "ip:192.0.2.7");
    }
}
