//! HTTP/2 beside HTTP/1.1 on the same port. Without TLS, a client that opens with HTTP/2's
//! preface ("prior knowledge") is served HTTP/2, also when the preface arrives in pieces, and
//! every other client HTTP/1.1; with TLS the handshake chooses (`tls.rs`). The HTTP/2 client is
//! curl (with nghttp2).

use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Opts, TestServer};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `curl` with `args` on `url`: the body, then the HTTP version and status on a last line.
pub fn curl(args: &[&str], url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_version} %{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl is installed");
    assert!(out.status.success(), "curl {args:?} {url}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, last) = text.rsplit_once('\n').unwrap();
    (body.to_string(), last.to_string())
}

#[tokio::test]
async fn a_client_with_prior_knowledge_is_served_http2() {
    let s = TestServer::start(Opts::new()).await;
    let (_, got) = curl(&["--http2-prior-knowledge"], &s.url("/healthz"));
    assert_eq!(got, "2 200");
    // Errors keep their one shape over HTTP/2.
    let (body, got) = curl(&["--http2-prior-knowledge"], &s.url("/api/v1/me"));
    assert_eq!(got, "2 401");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"]["code"].is_string(), "{body}");
    // Every other client is served HTTP/1.1 on the same port.
    let (_, got) = curl(&["--http1.1"], &s.url("/healthz"));
    assert_eq!(got, "1.1 200");

    // The preface in two pieces, a moment apart: still HTTP/2, and the server's first frame is
    // its SETTINGS (RFC 9113, 3.4).
    let mut sock = TcpStream::connect(s.addr()).await.unwrap();
    sock.write_all(&PREFACE[..16]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    sock.write_all(&PREFACE[16..]).await.unwrap();
    // The client's own (empty) SETTINGS frame: length 0, type 4, no flags, stream 0.
    sock.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(10), sock.read_exact(&mut head)).await.unwrap().unwrap();
    assert_eq!(head[3], 4, "the first frame is SETTINGS: {head:?}");
    assert_eq!(head[4] & 1, 0, "and not an acknowledgement: {head:?}");
}
