//! The operator console: one HTML page, a framework-free script and a stylesheet, embedded
//! in the binary and served at `/`. The script draws every page from the public API (the
//! same JSON API clients use) with the session cookie; charts are SVG it draws. Nothing is
//! fetched from anywhere else, so it works offline and under a Content-Security-Policy
//! without `unsafe-inline` or `unsafe-eval`.
//!
//! Pages (all the same document; the script reads the path): `/sign-in`, `/incidents`,
//! `/incidents/{id}`, `/services`, `/services/{name}`, `/logs`. Without a valid session,
//! every page but sign-in answers 303 to `/sign-in?next=...` (with `expired=1` when the
//! session ended), so a shared link leads through sign-in to what it named.

use actix_web::guard;
use actix_web::http::header::{self, ContentType};
use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use auth::{AuthError, TokenVerifier};

/// The Content-Security-Policy of console pages: only this origin's script, style and API;
/// no inline script or style, no plugins, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

const PAGE: &str = include_str!("../console/index.html");

/// An embedded file and its entity tag.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../console/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../console/icon.svg"),
    },
];

/// The entity tags of [`ASSETS`], in order, computed once.
static ETAGS: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| ASSETS.iter().map(|asset| etag(asset.body)).collect());

/// The entity tag of `body`: FNV-1a, enough to tell one build's file from another's.
fn etag(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

/// Registers the console's pages and assets.
pub fn configure(config: &mut web::ServiceConfig) {
    // GET and HEAD (link checkers and uptime probes ask with HEAD).
    let read = || web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
    config
        .route(
            "/",
            read().to(|| async {
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/incidents"))
                    .finish()
            }),
        )
        .route("/sign-in", read().to(sign_in_page))
        .route("/incidents", read().to(page))
        .route("/incidents/{id}", read().to(page))
        .route("/services", read().to(page))
        .route("/services/{name}", read().to(page))
        .route("/logs", read().to(page))
        .route("/console/{file}", read().to(asset));
}

fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(PAGE)
}

/// The sign-in page; for a visitor already signed in (a second tab, the back button), a
/// redirect on to where sign-in would have led.
async fn sign_in_page(request: HttpRequest, verifier: Data<TokenVerifier>) -> HttpResponse {
    let signed_in = access::session::cookie_token(&request)
        .is_some_and(|token| verifier.verify(&token).is_ok());
    if !signed_in {
        return document();
    }
    let next =
        web::Query::<std::collections::HashMap<String, String>>::from_query(request.query_string())
            .ok()
            .and_then(|query| query.get("next").cloned());
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, safe_next(next.as_deref())))
        .finish()
}

/// Where to go after signing in: `next` when it is a plain path on this site (printable
/// ASCII, one leading `/`, no `\\`), else the incidents page. The script applies the
/// same rule with the browser's URL parser.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path
                    .bytes()
                    .all(|byte| (0x21..0x7f).contains(&byte) && byte != b'\\')
                // No `.` or `..` segments: `/.//host` is `//host` once a browser resolves it.
                && !path
                    .split(['?', '#'])
                    .next()
                    .unwrap_or_default()
                    .split('/')
                    .any(|segment| segment == "." || segment == "..") =>
        {
            path
        }
        _ => "/incidents",
    }
}

/// A console page for a signed-in user; otherwise a redirect to sign-in that comes back.
async fn page(request: HttpRequest, verifier: Data<TokenVerifier>) -> HttpResponse {
    let session = access::session::cookie_token(&request).map(|token| verifier.verify(&token));
    match session {
        Some(Ok(_)) => document(),
        outcome => {
            let here = match request.uri().path_and_query() {
                Some(path) => path.as_str().to_owned(),
                None => request.path().to_owned(),
            };
            let mut location = format!("/sign-in?next={}", encode(&here));
            if matches!(outcome, Some(Err(AuthError::Expired | AuthError::Revoked))) {
                location.push_str("&expired=1");
            }
            let mut response = HttpResponse::SeeOther();
            response.insert_header((header::LOCATION, location));
            // A cookie that no longer works is cleared, so the next visit starts clean.
            if outcome.is_some() {
                response.cookie(access::session::cleared_cookie(&request));
            }
            response.finish()
        }
    }
}

/// Percent-encodes a path for a query parameter (everything but unreserved characters and
/// `/`).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

async fn asset(request: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == file.as_str()) else {
        return HttpResponse::NotFound()
            .content_type(ContentType::plaintext())
            .body("no such console file");
    };
    let (asset, tag) = (&ASSETS[index], &ETAGS[index]);
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == *tag));
    // Revalidated on every use (a new binary serves new files under the same names).
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, tag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY));
    if fresh {
        response.finish()
    } else {
        response.content_type(asset.content_type).body(asset.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_on_this_site_are_next() {
        for (next, expected) in [
            (Some("/incidents/7?x=1"), "/incidents/7?x=1"),
            (Some("//evil.example"), "/incidents"),
            (Some("/\\evil.example"), "/incidents"),
            (Some("/\t/evil.example"), "/incidents"),
            (Some("/\n/evil.example"), "/incidents"),
            (Some("https://evil.example"), "/incidents"),
            (Some("javascript:alert(1)"), "/incidents"),
            (Some("/caf\u{e9}"), "/incidents"),
            (Some("/.//evil.example"), "/incidents"),
            (Some("/..//evil.example"), "/incidents"),
            (Some("/logs?q=a/../b"), "/logs?q=a/../b"),
            (None, "/incidents"),
        ] {
            assert_eq!(safe_next(next), expected, "{next:?}");
        }
    }

    #[test]
    fn next_paths_are_encoded_so_they_stay_one_parameter() {
        assert_eq!(
            encode("/logs?q=a b&level=error"),
            "/logs%3Fq%3Da%20b%26level%3Derror"
        );
        assert_ne!(etag("a"), etag("b"));
    }
}
