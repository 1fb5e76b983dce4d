//! Downloads of stored files by signed link: `GET /api/v1/files/{key}?exp=..&sig=..[&name=..]`.
//! The link is checked first (403 `bad_signature` if altered, `link_expired` if old), then the
//! object is streamed with `Range` support (206 with `Content-Range`, 416 for a range outside
//! the file, `If-Range`), `ETag` and `If-None-Match` (304), `Cache-Control: private` with a
//! max-age that never outlives the link, `Content-Type` from the key's checked type,
//! `Content-Disposition` and `nosniff`. Files go through the gateway rather than straight from
//! the bucket so that a feature can transform them on the way out (`Outbound`: a report stored
//! encrypted is decrypted here) and so every download is a request we can see.
//!
//! `FileService` (`crate::files`, re-exported here) is what features use to store files and make
//! these links.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hospital_objects::range::{content_range, resolve};
use hospital_objects::{check_key, ContentType};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

pub use crate::files::{read_capped, FileService};

/// The route as axum sees it (the key may contain `/`), and as the OpenAPI document shows it.
const ROUTE: &str = "/api/v1/files/{*key}";
const DOC_ROUTE: &str = "/api/v1/files/{key}";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(download))
}

/// Renames the wildcard route in the OpenAPI document to its documented form.
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    if let Some(item) = doc.paths.paths.remove(ROUTE) {
        doc.paths.paths.insert(DOC_ROUTE.into(), item);
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LinkQuery {
    /// Expiry, unix seconds.
    pub exp: i64,
    /// base64url HMAC-SHA256 of the key, the expiry and the name.
    pub sig: String,
    /// The file name the download carries (signed too).
    pub name: Option<String>,
}

/// A stored file, by signed link (from an API that returned it). Supports `Range` (one range),
/// `If-Range` and `If-None-Match`.
#[utoipa::path(get, path = "/api/v1/files/{*key}", tag = "files",
    params(("key" = String, Path, description = "The object key, as in the link"), LinkQuery,
        ("Range" = Option<String>, Header, description = "bytes=first-last, bytes=first- or bytes=-suffix")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range, with Content-Range"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, body = ErrorBody, description = "The link's query is incomplete (exp, sig)"),
        (status = 403, body = ErrorBody, description = "link_expired or bad_signature"),
        (status = 404, body = ErrorBody),
        (status = 416, body = ErrorBody, description = "range_not_satisfiable, with Content-Range: bytes */size")))]
pub async fn download(
    State(files): State<FileService>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<LinkQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_key(&key).map_err(|_| ApiError::not_found("file"))?;
    let now = Utc::now().timestamp();
    files.links.verify(&key, q.exp, q.name.as_deref(), &q.sig, now)?;
    let max_age = (q.exp - now).clamp(0, i64::try_from(files.cache_max_age).unwrap_or(i64::MAX));
    let name = q.name.clone().unwrap_or_else(|| key.rsplit('/').next().unwrap_or("file").to_string());
    serve(&files, &key, &name, max_age, &headers).await
}

/// Serves a stored file whose access was checked by the caller (a signed link, a share link):
/// ranges, ETag, `Cache-Control: private, max-age=<max_age>`, the `Outbound` transform of its
/// prefix, and `Content-Disposition` carrying `name`.
pub async fn serve(
    files: &FileService,
    key: &str,
    name: &str,
    max_age: i64,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let content_type = ContentType::of_key(key).ok_or_else(|| ApiError::not_found("file"))?;
    let info = files.objects.head(key).await?;
    // Keys are written once, so the backend's tag (or size and time) names these bytes for good.
    let etag = format!(
        "\"{}\"",
        info.etag.clone().unwrap_or_else(|| format!("{}-{}", info.size, info.last_modified.timestamp_millis()))
    );
    let mut out = HeaderMap::new();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(name, v);
        }
    };
    set(header::ETAG, etag.clone());
    set(header::CACHE_CONTROL, format!("private, max-age={max_age}"));
    set(header::LAST_MODIFIED, info.last_modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    if matches_etag(headers.get(header::IF_NONE_MATCH), &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    // A range applies only to the version the client has (If-Range), else the whole file.
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| headers.get(header::IF_RANGE).is_none_or(|v| v.as_bytes() == etag.as_bytes()));

    let (range, total, body) = match files.outbound_for(key) {
        None => {
            let range = match range_header {
                Some(h) => resolve(h, info.size).map_err(|_| ApiError::RangeNotSatisfiable { size: info.size })?,
                None => None,
            };
            let dl = files.objects.get(key, range.clone()).await?;
            (range, dl.info.size, Body::from_stream(dl.body))
        }
        Some(transform) => {
            let stored = files.objects.get(key, None).await?.bytes().await?;
            let plain = transform.reveal(key, stored).await?;
            let total = plain.len() as u64;
            let range = match range_header {
                Some(h) => resolve(h, total).map_err(|_| ApiError::RangeNotSatisfiable { size: total })?,
                None => None,
            };
            let bytes = match &range {
                Some(r) => plain.slice(r.start as usize..r.end as usize),
                None => plain,
            };
            (range, total, Body::from(bytes))
        }
    };

    set(header::CONTENT_TYPE, content_type.mime().to_string());
    set(header::CONTENT_DISPOSITION, disposition(content_type.inline(), name));
    set(header::ACCEPT_RANGES, "bytes".into());
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    let status = match &range {
        Some(r) => {
            set(header::CONTENT_RANGE, content_range(r, total));
            set(header::CONTENT_LENGTH, (r.end - r.start).to_string());
            StatusCode::PARTIAL_CONTENT
        }
        None => {
            set(header::CONTENT_LENGTH, total.to_string());
            StatusCode::OK
        }
    };
    Ok((status, out, body).into_response())
}

/// `If-None-Match`: `*` or a list containing `etag` (weak comparison, as RFC 9110 asks).
fn matches_etag(header: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(v) = header.and_then(|v| v.to_str().ok()) else { return false };
    v.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// `inline` or `attachment`, with an ASCII `filename` and the exact UTF-8 `filename*` (RFC 6266).
fn disposition(inline: bool, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let exact: String = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_are_safe_headers() {
        assert_eq!(disposition(true, "a.png"), "inline; filename=\"a.png\"; filename*=UTF-8''a%2Epng");
        let d = disposition(false, "检查\"报告\".dcm");
        assert!(d.starts_with("attachment; filename=\"______.dcm\"; filename*=UTF-8''%E6%A3%80"), "{d}");
        assert!(HeaderValue::from_str(&d).is_ok());
    }

    #[test]
    fn etags_match_lists_and_weak_forms() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(matches_etag(Some(&v("\"a\"")), "\"a\""));
        assert!(matches_etag(Some(&v("\"x\", W/\"a\"")), "\"a\""));
        assert!(matches_etag(Some(&v("*")), "\"a\""));
        assert!(!matches_etag(Some(&v("\"b\"")), "\"a\""));
        assert!(!matches_etag(None, "\"a\""));
    }
}
