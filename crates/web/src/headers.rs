//! Response headers: the security headers every answer carries, the Content-Security-Policy
//! of JSON answers, and CORS.

use actix_web::middleware::DefaultHeaders;

/// Response headers every answer carries: no sniffing, no framing, no referrer, no caching
/// of (possibly sensitive) answers.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cache-Control", "no-store"))
}

/// The Content-Security-Policy of JSON answers (nothing may load from them).
pub fn api_content_security_policy() -> DefaultHeaders {
    DefaultHeaders::new().add((
        "Content-Security-Policy",
        "default-src 'none'; frame-ancestors 'none'",
    ))
}

/// CORS: off unless origins are listed (then those origins may call with any method and
/// the Authorization header).
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin)
        })
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .max_age(3600)
}
