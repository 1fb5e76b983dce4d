//! The axum gateway: REST routers by area (`http::*`), the auth extractors, the one error shape,
//! rate limits and metrics, the WebSocket gateway (`realtime`). `router(state)` is the whole HTTP
//! surface; the binary serves it. With the feature `sandbox` (the demo binary's default) it also
//! mounts the sandboxes of the external systems under `/sandbox/` when `config.sandbox` is on.

pub mod access;
pub mod audit;
pub mod auth;
pub mod backoffice;
pub mod catalog_index;
pub mod chat;
pub mod config;
pub mod consent_gate;
pub mod consoles;
pub mod error;
pub mod extract;
pub mod files;
pub mod guard;
pub mod http;
pub mod image_links;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod real_name;
pub mod realtime;
pub mod roles;
pub mod spreadsheet;
pub mod staff_ws;
pub mod state;
pub mod validate;

pub use config::GatewayConfig;
pub use state::{AppState, Sandboxes};

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "Hospital platform API", description = "Booking, accounts and the hospital catalogue. Errors always have the shape {\"error\":{\"code\",\"message\"}}."),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Every documented route, and the OpenAPI document describing them.
pub fn api(sandbox: bool) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let r = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(http::auth::router())
        .merge(http::me::router())
        .merge(http::sign_in::router())
        .merge(http::catalog::router())
        .merge(http::staff::router())
        .merge(http::roles::router())
        .merge(http::audit_log::router())
        .merge(http::patients::router())
        .merge(http::catalog_admin::router())
        .merge(http::import::router())
        .merge(http::announcements::router())
        .merge(http::articles::router())
        .merge(http::analytics::router())
        .merge(http::booking::router())
        .merge(http::payments::router())
        .merge(http::fees::router())
        .merge(http::balance::router())
        .merge(http::insurance::router())
        .merge(http::finance::router())
        .merge(http::reconcile::router())
        .merge(http::messages::router())
        .merge(http::admin::router())
        .merge(http::queue::router())
        .merge(http::exams::router())
        .merge(http::files::router())
        .merge(http::visits::router())
        .merge(http::records::router())
        .merge(http::reports::router())
        .merge(http::his::router())
        .merge(http::consent::router())
        .merge(http::policy_admin::router())
        .merge(http::access_history::router())
        .merge(http::export::router())
        .merge(http::chat::router())
        .merge(http::chat_agent::router())
        .merge(http::chat_tickets::router())
        .merge(http::chat_faq::router())
        .merge(http::chat_canned::router())
        .merge(http::chat_supervise::router())
        .merge(http::chat_images::router())
        .merge(http::chat_context::router())
        .merge(http::feedback::router())
        .merge(http::ops::router());
    let r = sandbox_routes(r, sandbox);
    let (router, mut doc) = r.split_for_parts();
    http::files::document(&mut doc);
    (router, doc)
}

/// The whole HTTP surface of the platform.
pub fn router(state: AppState) -> Router {
    let (api, mut doc) = api(state.sandbox.is_some());
    doc.paths.paths.entry("/api/openapi.json".into()).or_insert_with(|| {
        utoipa::openapi::path::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .summary(Some("This document"))
                .response("200", utoipa::openapi::Response::new("The OpenAPI 3.1 document")),
        )
    });
    doc.paths.paths.entry("/ws".into()).or_insert_with(|| {
        utoipa::openapi::path::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .summary(Some("The WebSocket gateway (see docs/realtime.md)"))
                .description(Some("Upgrade with subprotocol hospital.json.v1 or hospital.msgpack.v1; authenticate with Authorization: Bearer or a first auth frame."))
                .response("101", utoipa::openapi::Response::new("Switching protocols"))
                .response("400", utoipa::openapi::Response::new("Not a WebSocket upgrade")),
        )
    });
    openapi::document_errors(&mut doc);
    let doc_json = doc.to_json().expect("the OpenAPI document serialises");
    // The staff pages (agents' console, back office): static, embedded, same origin as the API.
    let app = api
        .merge(hospital_web::router())
        .route("/ws", get(realtime::ws))
        .route("/api/v1/chat/console/ws", get(chat::console_ws))
        .route("/api/v1/staff/ws", get(staff_ws::staff_ws))
        .route(
            "/api/openapi.json",
            get(move || {
                let body = doc_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        );
    let app = sandbox_services(app, &state);
    let body_limit = state.config.limits.body_limit_bytes;
    app.fallback(|| async { ApiError::NotFound("no such route; see /api/openapi.json".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::edge))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("a handler panicked".into()).into_response()))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The sandboxes' own routes under `/sandbox/` (test helpers: outboxes, the payer, persons).
#[cfg(feature = "sandbox")]
fn sandbox_routes(r: OpenApiRouter<AppState>, on: bool) -> OpenApiRouter<AppState> {
    if on {
        r.merge(http::sandbox::router())
    } else {
        r
    }
}

#[cfg(not(feature = "sandbox"))]
fn sandbox_routes(r: OpenApiRouter<AppState>, _on: bool) -> OpenApiRouter<AppState> {
    r
}

/// The external systems' own protocols, spoken by the sandboxes (not part of our API).
#[cfg(feature = "sandbox")]
fn sandbox_services(app: Router<AppState>, state: &AppState) -> Router<AppState> {
    let Some(sb) = &state.sandbox else { return app };
    app.nest_service("/sandbox/aliyun-sms", hospital_integrations::sms_sandbox_router(sb.sms.clone()))
        .nest_service("/sandbox/wechat", hospital_integrations::wechat_sandbox_router(sb.wechat.clone()))
        .nest_service("/sandbox/wechatpay", hospital_integrations::wechatpay_sandbox_router(sb.wechat_pay.clone()))
        .nest_service("/sandbox/alipay", hospital_integrations::alipay_sandbox_router(sb.alipay.clone()))
        .nest_service("/sandbox/insurance", hospital_integrations::insurance_sandbox_router(sb.insurance.clone()))
        .nest_service(
            "/sandbox/aliyun-cloudauth",
            hospital_integrations::real_name_sandbox_router(sb.real_name.clone()),
        )
        .nest_service(
            "/sandbox/wechat-subscribe",
            hospital_integrations::wechat_subscribe_sandbox_router(sb.wechat_subscribe.clone()),
        )
}

#[cfg(not(feature = "sandbox"))]
fn sandbox_services(app: Router<AppState>, _state: &AppState) -> Router<AppState> {
    app
}
