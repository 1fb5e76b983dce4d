//! TLS is optional: with `tls.cert` and `tls.key` configured the server speaks HTTPS only. The
//! certificate is a self-signed one made by `openssl` for this test.

use crate::harness::{Opts, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success());

    let server = TestServer::start(
        Opts::new().env("HOSPITAL_TLS__CERT", cert.display()).env("HOSPITAL_TLS__KEY", key.display()),
    )
    .await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    // A connection that never starts its handshake (the stop below must not wait for it).
    let _idle = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let r = server.get("/healthz", None).await;
    assert_eq!(r.status(), 200);
    // The API works over TLS, errors included.
    let r = server.get("/api/v1/me", None).await;
    assert_eq!(r.status(), 401);
    // The handshake chooses the HTTP (ALPN): HTTP/2 for a client that offers it, else HTTP/1.1.
    // (-k: the certificate names no subject alternative curl would match.)
    let (_, got) = crate::http2::curl(&["-k", "--http2"], &server.url("/healthz"));
    assert_eq!(got, "2 200");
    let (_, got) = crate::http2::curl(&["-k", "--http1.1"], &server.url("/healthz"));
    assert_eq!(got, "1.1 200");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = server.base.replace("https://", "http://");
    let got = reqwest::Client::new().get(format!("{plain}/healthz")).send().await;
    assert!(got.is_err() || got.unwrap().status() != 200, "plain HTTP is not served");
    let (_, stderr) = server.stop_with_stderr();
    assert!(!stderr.contains("still in flight"), "a connection without a handshake held the stop up:\n{stderr}");
}
