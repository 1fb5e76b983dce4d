//! Operations endpoints (PLAT-6): liveness, readiness (store and Redis reachable), Prometheus
//! metrics. Not under `/api/v1`: load balancers and Prometheus call them, not patients.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz() -> ApiJson<Health> {
    ApiJson(Health { status: "ok" })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// "ok" or what went wrong.
    pub store: String,
    pub kv: String,
}

/// Readiness: the store and the kv (Redis when configured) both answer. 503 otherwise, so a load
/// balancer sends no traffic to a node that cannot serve it.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let timeout = std::time::Duration::from_secs(2);
    let store = match tokio::time::timeout(timeout, state.stores.data.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".to_string(),
    };
    let kv = match tokio::time::timeout(timeout, state.stores.kv.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".to_string(),
    };
    let ready = store == "ok" && kv == "ok";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, ApiJson(Readiness { status: if ready { "ready" } else { "not_ready" }, store, kv }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(stats) = state.actors.stats().await {
        for (kind, k) in [("schedule", stats.schedules), ("patient", stats.patients)] {
            metrics::gauge!("actors_live", "kind" => kind).set(k.live as f64);
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
