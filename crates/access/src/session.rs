//! Console sessions: the browser console carries its token in an HttpOnly, SameSite=Strict
//! cookie instead of `Authorization`. A service opts in by registering [`ConsoleSessions`]
//! as app data (the query API does; ingest does not). Requests authenticated by the cookie
//! that change state must come from the service's own origin ([`same_origin`]): SameSite
//! keeps the cookie off cross-site requests in current browsers, and the Origin check holds
//! where it does not (older browsers, sibling subdomains, a same-site attacker page).

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, header};
use ipnet::IpNet;

/// The name of the console's session cookie over plain HTTP.
pub const COOKIE: &str = "threesigma_session";

/// Its name over HTTPS: the `__Host-` prefix makes the browser refuse it unless it is
/// Secure, host-only and for `/`, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE: &str = "__Host-threesigma_session";

/// App data: this service accepts the console's session cookie. Holds the proxies whose
/// `Forwarded`/`X-Forwarded-Host`/`X-Forwarded-Proto` say where a browser sent a request
/// (`rate_limit.trusted_proxies`); from anyone else those headers are ignored.
#[derive(Debug, Clone, Default)]
pub struct ConsoleSessions {
    trusted_proxies: Arc<Vec<IpNet>>,
}

impl ConsoleSessions {
    pub fn new(trusted_proxies: Vec<IpNet>) -> ConsoleSessions {
        ConsoleSessions {
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }

    /// The scheme (when known) and host the browser sent `request` to.
    fn destination(&self, request: &HttpRequest) -> (Option<String>, String) {
        let trusted = request.peer_addr().is_some_and(|peer| {
            self.trusted_proxies
                .iter()
                .any(|net| net.contains(&peer.ip()))
        });
        if trusted {
            let info = request.connection_info();
            return (
                Some(info.scheme().to_ascii_lowercase()),
                info.host().to_ascii_lowercase(),
            );
        }
        // Not through a trusted proxy: the Host header as sent; the scheme is unknown (a
        // TLS-terminating proxy this service was not told of may stand in front of it).
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| request.uri().authority().map(ToString::to_string))
            .unwrap_or_default();
        let scheme = request.app_config().secure().then(|| "https".to_owned());
        (scheme, host.to_ascii_lowercase())
    }
}

/// Marks a request authenticated by the session cookie (in its extensions).
#[derive(Debug, Clone, Copy)]
pub struct ViaCookie;

/// Whether the browser reached the console over HTTPS (as the connection or a proxy's
/// `X-Forwarded-Proto`/`Forwarded` says: only the cookie's `Secure` flag and name depend on
/// it, and a client claiming HTTPS over HTTP only gets a cookie its browser will not keep).
fn over_tls(request: &HttpRequest) -> bool {
    request.connection_info().scheme() == "https"
}

/// The session token the request's cookie carries, if the service accepts sessions. Over
/// HTTPS only the `__Host-` cookie counts.
pub fn cookie_token(request: &HttpRequest) -> Option<String> {
    request.app_data::<ConsoleSessions>()?;
    let cookie = request.cookie(SECURE_COOKIE).or_else(|| {
        if over_tls(request) {
            None
        } else {
            request.cookie(COOKIE)
        }
    })?;
    Some(cookie.value().trim().to_owned()).filter(|token| !token.is_empty())
}

/// Whether a request may act with the session cookie (or sign in): safe methods always;
/// others only from this service's own origin: `Origin` naming the scheme (`http` or
/// `https`; when a trusted proxy says which, that one) and the host the request was sent to,
/// or without `Origin`, `Sec-Fetch-Site: same-origin`. The reason when not.
pub fn same_origin(request: &HttpRequest) -> Result<(), String> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(());
    }
    let text = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    let sessions = request
        .app_data::<ConsoleSessions>()
        .cloned()
        .unwrap_or_default();
    let (scheme, host) = sessions.destination(request);
    match text(header::ORIGIN) {
        Some(origin) => {
            let matches = origin
                .split_once("://")
                .is_some_and(|(origin_scheme, authority)| {
                    let origin_scheme = origin_scheme.to_ascii_lowercase();
                    let scheme_ok = match &scheme {
                        Some(scheme) => origin_scheme == *scheme,
                        None => origin_scheme == "http" || origin_scheme == "https",
                    };
                    scheme_ok
                        && without_default_port(&authority.to_ascii_lowercase())
                            == without_default_port(&host)
                });
            if matches {
                Ok(())
            } else {
                Err(format!(
                    "cross-origin request refused: Origin {origin} is not this console ({host})"
                ))
            }
        }
        None => match text(header::HeaderName::from_static("sec-fetch-site")) {
            Some("same-origin") => Ok(()),
            _ => Err("a request from the console must carry Origin (browsers send it)".to_owned()),
        },
    }
}

/// An authority without an explicit default port (`host:80`, `host:443`), as browsers write
/// `Origin` and some proxies do not write `Host`.
fn without_default_port(authority: &str) -> &str {
    authority
        .strip_suffix(":80")
        .or_else(|| authority.strip_suffix(":443"))
        .unwrap_or(authority)
}

/// [`same_origin`] for a request authenticated by the cookie, with a reason that says how
/// API clients call instead.
pub fn cookie_may_act(request: &HttpRequest) -> Result<(), String> {
    same_origin(request).map_err(|reason| {
        format!("{reason}; API clients send Authorization: Bearer instead of the session cookie")
    })
}

/// The cookie that holds a session `token` for `max_age`: HttpOnly, SameSite=Strict, the
/// whole site; over HTTPS Secure and named with the `__Host-` prefix.
pub fn session_cookie(
    request: &HttpRequest,
    token: String,
    max_age: std::time::Duration,
) -> Cookie<'static> {
    let max_age = actix_web::cookie::time::Duration::seconds(
        i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
    );
    let secure = over_tls(request);
    Cookie::build(if secure { SECURE_COOKIE } else { COOKIE }, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(max_age)
        .finish()
}

/// The cookie that ends a session in the browser.
pub fn cleared_cookie(request: &HttpRequest) -> Cookie<'static> {
    let mut cookie = session_cookie(request, String::new(), std::time::Duration::ZERO);
    cookie.make_removal();
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_name_the_same_origin() {
        assert_eq!(
            without_default_port("console.example:80"),
            "console.example"
        );
        assert_eq!(
            without_default_port("console.example:443"),
            "console.example"
        );
        assert_eq!(
            without_default_port("console.example:8081"),
            "console.example:8081"
        );
        assert_eq!(without_default_port("[::1]:80"), "[::1]");
    }
}
