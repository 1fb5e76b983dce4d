//! The request guard, the outermost middleware of the API: what every request must meet before
//! any handler sees it, and the error shape on every answer that leaves.
//!
//! - A URI longer than `limits.max_uri_bytes` is 414 `uri_too_long`.
//! - A body announced (`Content-Length`) larger than `limits.body_limit_bytes` (JSON, as the body
//!   extractors take it: `application/json` or `application/*+json`; or no content type) or
//!   `limits.upload_limit_bytes` (uploads: any other content type, which their routes cap
//!   further by policy) is 413 `payload_too_large` at once, without waiting for a byte of it.
//! - The body must arrive within `limits.body_read_timeout_secs` of the handler starting to
//!   read it (`DeadlineBody`); otherwise 408 `request_timeout` and the connection is closed. So a
//!   client that announces a body and sends nothing holds a connection for that long at most.
//! - An error answer that is not already JSON (a framework rejection below our extractors) is
//!   rewritten into the one error shape with its status kept. The sandboxes under `/sandbox/`
//!   speak external systems' protocols and are left as they are.
//!
//! `per_ip`, the per-client-address rate limit (429 `rate_limited`), is checked just inside it;
//! the limiters themselves are `ratelimit`. All of it, with the request metrics, is one layer:
//! `edge`.
//!
//! Connection-level limits (header read timeout, header size, connections per address) are the
//! server's, in the binary's `serve` module; answers hyper writes itself are shaped there.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::ApiError;
use crate::state::AppState;

/// The body did not arrive within the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body read timeout")]
pub struct BodyTimeout;

/// A request body that fails with `BodyTimeout` if it is not complete within `timeout` of its
/// first read.
pub struct DeadlineBody {
    inner: Body,
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl DeadlineBody {
    pub fn new(inner: Body, timeout: Duration) -> Self {
        Self { inner, timeout, deadline: None }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        // Armed only when the body is not all there yet: a small JSON body usually arrives with
        // the headers, and then costs no timer (an allocation and a timer-wheel entry a request).
        let timeout = this.timeout;
        let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The one middleware in front of every route: the request counted and timed
/// (`metrics::track`), then the guard (see the module's description), then the per-address rate
/// limit, and the state put in the request's extensions, where the staff gate (`access`) reads
/// it. One layer, not one each: every `from_fn` layer boxes the future of everything inside it
/// and clones the inner service, a measurable part of a bare request's cost (the release
/// storm's profile, docs/benchmarks.md).
pub async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    crate::metrics::track(req, |req| guard(state, req, next)).await
}

async fn guard(state: AppState, req: Request, next: Next) -> Response {
    let limits = &state.config.limits;
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > limits.max_uri_bytes {
        return ApiError::UriTooLong.into_response();
    }
    let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // JSON as the body extractors take it (`+json` types too), or no content type: the API's
    // limit; any other type is an upload.
    let upload = req.headers().contains_key(header::CONTENT_TYPE) && !crate::extract::is_json(req.headers());
    let limit = if upload { limits.upload_limit_bytes } else { limits.body_limit_bytes as u64 };
    if announced.is_some_and(|n| n > limit) {
        return ApiError::PayloadTooLarge.into_response();
    }
    let sandbox = req.uri().path().starts_with("/sandbox/");
    let timeout = Duration::from_secs(limits.body_read_timeout_secs.max(1));
    let mut req = req.map(|b| Body::new(DeadlineBody::new(b, timeout)));
    // A sandbox stands for another host (WeChat, a payment service): the server's own calls to
    // it from this address must not use up the address's allowance (they did, in a test's burst).
    let allowed = if sandbox { Ok(()) } else { per_ip(&state, &req) };
    let resp = match allowed {
        Ok(()) => {
            req.extensions_mut().insert(state);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    };
    // An error already JSON (every `ApiError`'s), by the same test the body extractors use:
    // asked last, only of errors.
    let error = resp.status().is_client_error() || resp.status().is_server_error();
    if sandbox || !error || crate::extract::is_json(resp.headers()) {
        return resp;
    }
    shape(resp).await
}

/// An error answer in the one shape: the status kept, the code the status's, the text (if
/// any) as the message.
async fn shape(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    // Framework rejections are a line of text.
    let bytes = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = Some(String::from_utf8_lossy(&bytes).trim().to_string()).filter(|t| !t.is_empty());
    let Some(err) = ApiError::for_status(parts.status, text) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut shaped = err.into_response();
    *shaped.status_mut() = parts.status;
    for name in [header::ALLOW, header::RETRY_AFTER, header::CONNECTION] {
        if let Some(v) = parts.headers.get(&name) {
            shaped.headers_mut().insert(name, v.clone());
        }
    }
    shaped
}

impl ApiError {
    /// The error a bare status stands for, with `text` as its message where it has one; `None`
    /// for a status the API never answers.
    pub fn for_status(status: StatusCode, text: Option<String>) -> Option<ApiError> {
        let text = |default: &str| text.clone().unwrap_or_else(|| default.to_string());
        Some(match status {
            StatusCode::BAD_REQUEST => ApiError::BadRequest(text("the request is malformed")),
            StatusCode::UNAUTHORIZED => ApiError::Unauthenticated,
            StatusCode::FORBIDDEN => ApiError::Forbidden(text("not allowed")),
            StatusCode::NOT_FOUND => ApiError::NotFound(text("no such route; see /api/openapi.json")),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::URI_TOO_LONG => ApiError::UriTooLong,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::InvalidBody(text("the request does not fit")),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::HeadersTooLarge,
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(text("unavailable; try again shortly")),
            s if s.is_server_error() => ApiError::Internal(text("internal error")),
            _ => return None,
        })
    }
}

/// The per-IP limit on every request.
fn per_ip(state: &AppState, req: &Request) -> Result<(), ApiError> {
    if let Some(ip) = crate::ratelimit::client_ip(req, state.config.trust_forwarded_for) {
        if let Err(e) = state.limits.check_ip(ip) {
            metrics::counter!("http_rate_limited_total", "scope" => "ip").increment(1);
            return Err(e);
        }
    }
    Ok(())
}
