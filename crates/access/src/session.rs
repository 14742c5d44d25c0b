//! Console sessions: the browser console carries its token in an HttpOnly, SameSite=Strict
//! cookie instead of `Authorization`. A service opts in by registering [`ConsoleSessions`]
//! as app data (the query API does; ingest does not). Requests authenticated by the cookie
//! that change state must come from the service's own origin ([`same_origin`]): SameSite
//! keeps the cookie off cross-site requests in current browsers, and the Origin check holds
//! where it does not (older browsers, sibling subdomains, a same-site attacker page).

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, header};

/// The name of the console's session cookie.
pub const COOKIE: &str = "threesigma_session";

/// App data: this service accepts the console's session cookie.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleSessions;

/// Marks a request authenticated by the session cookie (in its extensions).
#[derive(Debug, Clone, Copy)]
pub struct ViaCookie;

/// The session token the request's cookie carries, if the service accepts sessions.
pub fn cookie_token(request: &HttpRequest) -> Option<String> {
    request.app_data::<ConsoleSessions>()?;
    request
        .cookie(COOKIE)
        .map(|cookie| cookie.value().trim().to_owned())
        .filter(|token| !token.is_empty())
}

/// Whether a request may act with the session cookie: safe methods always; others only
/// from this service's own origin (`Origin` naming the host the request was sent to, or
/// without `Origin`, `Sec-Fetch-Site: same-origin`). The reason when not.
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
    let host = request.connection_info().host().to_ascii_lowercase();
    match text(header::ORIGIN) {
        Some(origin) => {
            let authority = origin
                .split_once("://")
                .map(|(_, authority)| authority.trim_end_matches('/').to_ascii_lowercase());
            if authority.as_deref() == Some(host.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "cross-origin request refused: Origin {origin} is not this console ({host}); \
                     API clients send Authorization: Bearer instead of the session cookie"
                ))
            }
        }
        None => match text(header::HeaderName::from_static("sec-fetch-site")) {
            Some("same-origin") => Ok(()),
            _ => Err(
                "a request with the session cookie that changes state must carry Origin \
                 (browsers send it); API clients send Authorization: Bearer"
                    .to_owned(),
            ),
        },
    }
}

/// The cookie that holds a session `token` for `max_age`: HttpOnly, SameSite=Strict, the
/// whole site, Secure when the console is served over TLS (directly or, as a trusted
/// proxy says with `X-Forwarded-Proto`/`Forwarded`, behind one).
pub fn session_cookie(
    request: &HttpRequest,
    token: String,
    max_age: std::time::Duration,
) -> Cookie<'static> {
    let max_age = actix_web::cookie::time::Duration::seconds(
        i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
    );
    Cookie::build(COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(request.connection_info().scheme() == "https")
        .max_age(max_age)
        .finish()
}

/// The cookie that ends a session in the browser.
pub fn cleared_cookie(request: &HttpRequest) -> Cookie<'static> {
    let mut cookie = session_cookie(request, String::new(), std::time::Duration::ZERO);
    cookie.make_removal();
    cookie
}
