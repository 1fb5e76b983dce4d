//! The staff pages served by the binary: the agents' console (`/console`) and the back office
//! (`/admin`). They are plain HTML, CSS and ES modules under `web/assets/`, with the few small
//! libraries they use vendored there with their licences (`assets/vendor/<name>/`), embedded in
//! the binary at build time: no build step, nothing fetched from a CDN at run time. The pages talk
//! to the same REST API and WebSocket as every client.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles only from this
//! origin, no inline script, no framing), `nosniff`, and an ETag from the file's content; HTML is
//! revalidated on every load, assets are cached for an hour.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

static ASSETS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// What the pages may load and connect to: only this origin (and its WebSocket).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                       connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; base-uri 'none'; \
                       frame-ancestors 'none'; form-action 'self'";

/// The pages' routes: `/console`, `/admin` (their `index.html`), `/console/...`, `/admin/...`
/// and the shared `/static/...` (common modules, vendored libraries).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(|h: HeaderMap| async move { serve("console/index.html", &h) }))
        .route("/console/", get(|h: HeaderMap| async move { serve("console/index.html", &h) }))
        .route(
            "/console/{*path}",
            get(|Path(p): Path<String>, h: HeaderMap| async move { serve(&format!("console/{p}"), &h) }),
        )
        .route("/admin", get(|h: HeaderMap| async move { serve("admin/index.html", &h) }))
        .route("/admin/", get(|h: HeaderMap| async move { serve("admin/index.html", &h) }))
        .route(
            "/admin/{*path}",
            get(|Path(p): Path<String>, h: HeaderMap| async move { serve(&format!("admin/{p}"), &h) }),
        )
        .route("/static/{*path}", get(|Path(p): Path<String>, h: HeaderMap| async move { serve(&p, &h) }))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The embedded file at `path`, or a plain 404 (these are pages, not API routes).
fn serve(path: &str, headers: &HeaderMap) -> Response {
    // No way out of the assets: `..` and absolute paths name nothing here.
    let file = (!path.split('/').any(|c| c == ".." || c.is_empty() && path.starts_with('/')))
        .then(|| ASSETS.get_file(path))
        .flatten();
    let Some(file) = file else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found")
            .into_response();
    };
    let body = file.contents();
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(body))[..32]);
    let html = path.ends_with(".html");
    let mut resp = if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(body))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex etag"));
    let cache = if html { "no-cache" } else { "public, max-age=3600" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str, inm: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(e) = inm {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        router::<()>().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn pages_are_served_with_their_headers() {
        for page in ["/console", "/admin"] {
            let r = get(page, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{page}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert!(r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
            let etag = r.headers()[header::ETAG].to_str().unwrap().to_string();
            assert_eq!(get(page, Some(&etag)).await.status(), StatusCode::NOT_MODIFIED);
        }
        let js = get("/static/common/api.js", None).await;
        assert_eq!(js.status(), StatusCode::OK);
        assert_eq!(js.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    }

    #[tokio::test]
    async fn nothing_outside_the_assets() {
        for bad in ["/static/../Cargo.toml", "/console/../../Cargo.toml", "/static/nope.js", "/admin/%2e%2e/x"] {
            assert_eq!(get(bad, None).await.status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }
}
