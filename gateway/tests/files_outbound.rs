//! The download route's `Outbound` hook, over real HTTP: a file stored sealed (here a toy
//! cipher, XOR, standing in for the per-person encryption a later feature brings) is checked as
//! plaintext on the way in, stored as ciphertext, and served as plaintext on the way out, with
//! ranges cut from the plaintext. Files outside the hook's prefix are served as stored.

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use hospital_gateway::http::files::{download, FileService};
use hospital_objects::{LinkSigner, ObjectError, Objects, ObjectsConfig, Outbound, Policy};
use std::sync::Arc;

struct Xor;

#[async_trait::async_trait]
impl Outbound for Xor {
    async fn reveal(&self, _key: &str, stored: Bytes) -> Result<Bytes, ObjectError> {
        Ok(stored.iter().map(|b| b ^ 0x5A).collect())
    }
}

fn pdf(len: usize) -> Bytes {
    let mut v = b"%PDF-1.7\n".to_vec();
    v.extend((0..len - 9).map(|i| (i % 200) as u8));
    v.into()
}

#[tokio::test]
async fn sealed_files_are_revealed_on_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::local(dir.path()).unwrap();
    let signer = LinkSigner::new(b"a test secret of some length");
    let files = FileService::new(objects.clone(), signer, &ObjectsConfig::default())
        .with_outbound("reports/sealed", Arc::new(Xor));
    let policy = Policy::reports(1 << 20);
    let plain = pdf(5000);
    let sealed = objects
        .put_sealed("reports/sealed", plain.clone(), Some("application/pdf"), &policy, |_, b| {
            Ok(b.iter().map(|x| x ^ 0x5A).collect())
        })
        .await
        .unwrap();
    let stored = objects.get(&sealed.key, None).await.unwrap().bytes().await.unwrap();
    assert_ne!(stored, plain, "ciphertext at rest");
    let open = files.put("reports/open", plain.clone(), None, &policy).await.unwrap();

    let app = Router::new().route("/api/v1/files/{*key}", get(download)).with_state(files.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let (url, _) = files.link(&sealed.key, None, Some("report.pdf"));
    let r = client.get(format!("{base}{url}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["content-length"], "5000");
    assert_eq!(r.bytes().await.unwrap(), plain, "plaintext out");
    let r = client.get(format!("{base}{url}")).header("range", "bytes=0-8").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 0-8/5000");
    assert_eq!(&r.bytes().await.unwrap()[..], b"%PDF-1.7\n", "the range is of the plaintext");
    let r = client.get(format!("{base}{url}")).header("range", "bytes=5000-").send().await.unwrap();
    assert_eq!(r.status(), 416);

    let (url, _) = files.link(&open.key, None, None);
    let r = client.get(format!("{base}{url}")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), plain, "outside the prefix: as stored");
}
