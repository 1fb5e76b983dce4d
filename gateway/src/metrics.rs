//! HTTP metrics (PLAT-6): a middleware that counts every request and times it, labelled by
//! method, matched route and status; and the Prometheus recorder installed once per process.
//! Every label value comes from a closed set, so no client can grow the series: the method is
//! one of the standard ones or `other`, the route is the matched pattern (not the raw path, so
//! ids do not explode the set) or `unmatched`, and the status is a number the server chose.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let latency = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            let handle = PrometheusBuilder::new()
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
                .expect("the Prometheus recorder is installed once");
            hospital_actors::counters::recorder_installed();
            handle
        })
        .clone()
}

/// Counts the request `run` answers and times it (called by `guard::edge`).
pub async fn track<F: Future<Output = Response>>(req: Request, run: impl FnOnce(Request) -> F) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    record(method, route, resp.status().as_u16(), started.elapsed().as_secs_f64());
    resp
}

/// One (method, route, status)'s request counter and timer.
type Series = (Counter, Histogram);

/// A route's series, by method and status.
type RouteSeries = Vec<(&'static str, u16, Series)>;

thread_local! {
    /// The series this worker thread has recorded to, by route, then method and status: looked
    /// up without allocating. Registering by labels costs three `String`s and two searches of
    /// the recorder's registry a request, a measurable part of a bare request's CPU (the release
    /// storm's profile); the handles are the registry's own, so every thread adds to one count.
    static SERIES: RefCell<HashMap<Box<str>, RouteSeries>> = RefCell::new(HashMap::new());
}

/// Counts one request and records its time.
fn record(method: &'static str, route: &str, status: u16, seconds: f64) {
    let register = || -> Series {
        let labels = [("method", method.to_string()), ("route", route.to_string()), ("status", status.to_string())];
        (
            metrics::counter!("http_requests_total", &labels),
            metrics::histogram!("http_request_duration_seconds", &labels),
        )
    };
    let add = |(requests, duration): &Series| {
        requests.increment(1);
        duration.record(seconds);
    };
    // Before this process's recorder is installed the macros hand out no-op handles: not kept.
    if HANDLE.get().is_none() {
        return add(&register());
    }
    SERIES.with_borrow_mut(|by_route| {
        let list = match by_route.get_mut(route) {
            Some(list) => list,
            None => by_route.entry(route.into()).or_default(),
        };
        match list.iter().find(|(m, st, _)| *m == method && *st == status) {
            Some((_, _, s)) => add(s),
            None => {
                let s = register();
                add(&s);
                list.push((method, status, s));
            }
        }
    })
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

    #[test]
    fn every_thread_adds_to_one_count_per_method_route_and_status() {
        let handle = prometheus();
        let route = "/test/metrics/{id}";
        for _ in 0..3 {
            record("GET", route, 200, 0.001);
        }
        record("GET", route, 404, 0.002);
        record("POST", route, 200, 0.002);
        std::thread::spawn(move || record("GET", route, 200, 0.001)).join().unwrap();
        let text = handle.render();
        let count = |m: &str, st: u16| {
            let head = format!("http_requests_total{{method=\"{m}\",route=\"{route}\",status=\"{st}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(head.as_str())).map(str::to_string)
        };
        assert_eq!(count("GET", 200).as_deref(), Some("4"), "{text}");
        assert_eq!(count("GET", 404).as_deref(), Some("1"));
        assert_eq!(count("POST", 200).as_deref(), Some("1"));
        assert!(text.contains(&format!(
            "http_request_duration_seconds_count{{method=\"GET\",route=\"{route}\",status=\"200\"}} 4"
        )));
    }
}
