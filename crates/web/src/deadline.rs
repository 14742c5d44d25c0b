//! Deadlines for reading request bodies. actix-web bounds the time to receive a request's
//! head, not its body: a client that sends headers and a few bytes of a body, then
//! nothing, held its connection (and a connection slot) for as long as it liked. Every
//! request body is read under two deadlines: the next chunk within `body_idle_timeout`, the
//! whole body within `body_timeout`. Past either, reading fails with a timed-out I/O
//! error, which handlers answer with 408 ([`ApiError::RequestTimeout`]) and a closed
//! connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use futures_util::Stream;
use tokio::time::{Instant, Sleep, sleep_until};

use crate::ApiError;

/// The deadlines of request bodies (from `[server]`), as app data.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadlines {
    /// Longest wait for the next chunk of a body.
    pub idle: Duration,
    /// Longest time to read a whole body.
    pub total: Duration,
}

/// Whether a payload error is a body deadline passing.
pub fn is_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// The answer to a body read that failed: 408 for a deadline, else 400 saying why.
pub fn body_read_error(error: &PayloadError) -> ApiError {
    if is_timeout(error) {
        ApiError::RequestTimeout(error.to_string())
    } else {
        ApiError::BadRequest(format!("could not read the body: {error}"))
    }
}

/// Middleware putting every request body (one with a `Content-Length` or chunked) under the
/// [`BodyDeadlines`] registered as app data.
pub async fn body_deadlines(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let deadlines = request
        .app_data::<Data<BodyDeadlines>>()
        .map(|deadlines| *deadlines.get_ref());
    let has_body = request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .is_some_and(|length| length.as_bytes() != b"0")
        || request
            .headers()
            .contains_key(actix_web::http::header::TRANSFER_ENCODING);
    if let (Some(deadlines), true) = (deadlines, has_body) {
        let payload = request.take_payload();
        let now = Instant::now();
        let timed = TimedPayload {
            inner: payload,
            idle: deadlines.idle,
            idle_timer: Box::pin(sleep_until(now + deadlines.idle)),
            total_timer: Box::pin(sleep_until(now + deadlines.total)),
            done: false,
        };
        request.set_payload(Payload::Stream {
            payload: Box::pin(timed),
        });
    }
    next.call(request).await
}

/// A payload that fails with a timed-out error when its next chunk or its end is late.
struct TimedPayload {
    inner: Payload,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    total_timer: Pin<Box<Sleep>>,
    done: bool,
}

impl Stream for TimedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let next = Instant::now() + this.idle;
                this.idle_timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                this.done = true;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Pending => {
                let late = if this.total_timer.as_mut().poll(cx).is_ready() {
                    Some("the request body was not received in time")
                } else if this.idle_timer.as_mut().poll(cx).is_ready() {
                    Some("the request body stalled")
                } else {
                    None
                };
                match late {
                    Some(reason) => {
                        this.done = true;
                        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            reason,
                        )))))
                    }
                    None => Poll::Pending,
                }
            }
        }
    }
}
