//! A deadline on reading request bodies. actix-web bounds the time to receive the headers
//! (`client_request_timeout`) but not the body: a client that declares a length and then trickles, or never
//! sends, the body would hold a connection and a worker's attention forever. Every body (OAuth forms and
//! admin JSON alike) must be complete within the deadline, counted from the headers; after it the stream
//! fails, the extractor answers `400`, and actix closes the connection whose body was not read to its end.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage};
use futures_util::Stream;

/// What a timed-out read reports; the OAuth and admin extractors turn it into their 400 bodies.
pub const TIMED_OUT: &str = "the request body was not received in time";

/// The middleware body, for `App::wrap_fn`, with the configured deadline.
pub fn limit<S, B>(
    mut req: ServiceRequest,
    service: &S,
    timeout: Duration,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    let inner = req.take_payload();
    let deadline = Box::pin(tokio::time::sleep(timeout));
    req.set_payload(Payload::Stream { payload: Box::pin(Deadline { inner, deadline, expired: false }) });
    service.call(req)
}

/// Whether a body read failed because the deadline passed.
pub fn is_timeout(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

struct Deadline {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
            let err = std::io::Error::new(std::io::ErrorKind::TimedOut, TIMED_OUT);
            return Poll::Ready(Some(Err(PayloadError::Io(err))));
        }
        Poll::Pending
    }
}
