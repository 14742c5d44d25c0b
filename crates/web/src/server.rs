//! Running services: binding listeners (port 0 for tests), shutdown signals, and the
//! graceful stop every service shares.

use std::net::TcpListener;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Binds `address` (`HOST:PORT`; port 0 picks a free one).
pub fn bind(address: &str) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A token cancelled on SIGTERM or SIGINT (Ctrl-C).
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutdown signal received.");
        trigger.cancel();
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs an actix server until `shutdown` is cancelled, then stops it gracefully: no new
/// connections, in-flight requests answered (up to `grace`).
pub async fn run_until(
    server: actix_web::dev::Server,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let handle = server.handle();
    let running = tokio::spawn(server);
    shutdown.cancelled().await;
    let stop = handle.stop(true);
    if tokio::time::timeout(grace, stop).await.is_err() {
        tracing::warn!("Graceful stop took longer than {grace:?}; stopping.");
        handle.stop(false).await;
    }
    match running.await {
        Ok(result) => result,
        Err(error) => Err(std::io::Error::other(error)),
    }
}

/// Response headers every API answer carries: no sniffing, no framing, no referrer, no
/// caching of (possibly sensitive) answers.
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cache-Control", "no-store"))
}

/// The Content-Security-Policy of JSON answers (nothing may load from them).
pub fn api_content_security_policy() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new().add((
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

/// The scope of a service's authenticated API at `path`, with its middleware in the one
/// order that works: CORS (when origins are listed) → the JSON Content-Security-Policy →
/// authentication (records the caller) → the rate limiter (keys on that caller; wrapped
/// only when `rate_limit.per_second` > 0, so a disabled limiter costs nothing).
pub fn api_scope(
    path: &str,
    limiter: &crate::ratelimit::Limiter,
    rate_limited: bool,
    cors_origins: &[String],
) -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody + use<>>,
        Error = actix_web::Error,
        InitError = (),
    > + use<>,
> {
    use actix_web::middleware::{Condition, from_fn};
    actix_web::web::scope(path)
        // Inner first: the limiter needs the caller the authentication around it records.
        .wrap(Condition::new(
            rate_limited,
            actix_governor::Governor::new(limiter),
        ))
        .wrap(from_fn(crate::auth::authenticate))
        .wrap(api_content_security_policy())
        .wrap(Condition::new(!cors_origins.is_empty(), cors(cors_origins)))
}

/// The end of every `main`: on error, one line on stderr (the chain of causes, no
/// backtrace) and exit status 1.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
