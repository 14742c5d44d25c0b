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

/// The entity tag of `body`: FNV-1a, enough to tell one build's file from another's.
fn etag(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

/// Registers the console's pages and assets.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route(
            "/",
            web::get().to(|| async {
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/incidents"))
                    .finish()
            }),
        )
        .route("/sign-in", web::get().to(sign_in_page))
        .route("/incidents", web::get().to(page))
        .route("/incidents/{id}", web::get().to(page))
        .route("/services", web::get().to(page))
        .route("/services/{name}", web::get().to(page))
        .route("/logs", web::get().to(page))
        .route("/console/{file}", web::get().to(asset));
}

fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(PAGE)
}

async fn sign_in_page() -> HttpResponse {
    document()
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
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == file.as_str()) else {
        return HttpResponse::NotFound()
            .content_type(ContentType::plaintext())
            .body("no such console file");
    };
    let tag = etag(asset.body);
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == tag));
    // Revalidated on every use (a new binary serves new files under the same names).
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, tag))
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
    fn next_paths_are_encoded_so_they_stay_one_parameter() {
        assert_eq!(
            encode("/logs?q=a b&level=error"),
            "/logs%3Fq%3Da%20b%26level%3Derror"
        );
        assert_ne!(etag("a"), etag("b"));
    }
}
