//! HTTP metrics (PLAT-6): a middleware that counts every request and times it, labelled by
//! method, matched route and status; and the Prometheus recorder installed once per process.
//! Every label value comes from a closed set, so no client can grow the series: the method is
//! one of the standard ones or `other`, the route is the matched pattern (not the raw path, so
//! ids do not explode the set) or `unmatched`, and the status is a number the server chose.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let latency = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .expect("bucket list is non-empty")
                // The chat's waits run to minutes and hours (a Full matcher wins over the suffix).
                .set_buckets_for_metric(
                    Matcher::Full("chat_wait_seconds".into()),
                    &hospital_actors::chat_metrics::WAIT_BUCKETS,
                )
                .expect("bucket list is non-empty")
                .set_buckets_for_metric(
                    Matcher::Full("chat_first_response_seconds".into()),
                    &hospital_actors::chat_metrics::WAIT_BUCKETS,
                )
                .expect("bucket list is non-empty")
                .install_recorder()
                .expect("the Prometheus recorder is installed once")
        })
        .clone()
}

pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("method", method.to_string()), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    resp
}

/// The method as a label value: the standard methods by name, any other (a client can send any
/// token as a method) as `other`.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_are_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"XMETHOD1").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other", "methods are case-sensitive");
    }
}
