//! Slow and greedy clients cannot hold the server's connections: a head that never ends is cut
//! off after the header timeout, a body that never comes after the body timeout (408 in the error
//! shape), a body announced larger than the limit is refused before it is read, and one address
//! holds at most `max_connections_per_ip` connections, WebSocket upgrades included. The timers
//! and the cap are shortened here through their configuration keys.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{parse_raw_response, Opts, TestServer};

/// Far longer than any timer configured below: a connection still open after this was never cut.
const PATIENCE: Duration = Duration::from_secs(20);

fn opts() -> Opts {
    Opts::new()
        .env("HOSPITAL_GATEWAY__LIMITS__HEADER_READ_TIMEOUT_SECS", 1)
        .env("HOSPITAL_GATEWAY__LIMITS__BODY_READ_TIMEOUT_SECS", 1)
}

#[tokio::test]
async fn a_head_that_never_ends_is_cut_off() {
    let s = TestServer::start(opts()).await;
    // Half a request line, then half a header, then half of HTTP/2's preface, then nothing more.
    for partial in [&b"GET /healthz HT"[..], b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaa", b"PRI * HTTP/2.0\r\n"]
    {
        let (_, closed) = s.raw_exchange(partial, PATIENCE).await;
        assert!(closed, "the server still holds a connection whose head never ended: {:?}", partial);
    }
    // A connection that sends nothing at all.
    let (got, closed) = s.raw_exchange(b"", PATIENCE).await;
    assert!(closed, "an idle connection was held");
    assert!(got.is_empty() || parse_raw_response(&got).is_some_and(|r| r.status == 408), "{got:?}");
    assert_eq!(s.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn a_body_that_never_comes_is_answered_408() {
    let s = TestServer::start(opts()).await;
    let head = b"POST /api/v1/auth/sms/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"phone\":";
    let (got, closed) = s.raw_exchange(head, PATIENCE).await;
    assert!(closed, "a request whose body never came held its connection");
    let r = parse_raw_response(&got).unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&got)));
    r.assert_error(408, "request_timeout");
    // The same on a raw-body route (the signed lab webhook reads its bytes itself).
    let head = b"POST /api/v1/lab/exams/00000000-0000-7000-8000-000000000000/status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    let (got, closed) = s.raw_exchange(head, PATIENCE).await;
    assert!(closed, "the lab webhook held a connection whose body never came");
    parse_raw_response(&got).expect("an answer").assert_error(408, "request_timeout");
}

#[tokio::test]
async fn a_body_announced_larger_than_the_limit_is_refused_before_it_is_read() {
    // The default timers: the answer must not wait for them.
    let s = TestServer::start(Opts::new()).await;
    for path in ["/api/v1/auth/sms/send", "/api/v1/payments/wechat/notify", "/healthz"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n"
        );
        let (got, closed) = s.raw_exchange(head.as_bytes(), PATIENCE).await;
        assert!(closed, "{path}: a 10 GB body that never comes held the connection");
        let r = parse_raw_response(&got).unwrap_or_else(|| panic!("{path}: no answer: {got:?}"));
        r.assert_error(413, "payload_too_large");
    }
    // A `+json` type is JSON to the body extractors, so its limit is JSON's (64 KiB), not an
    // upload's: 1 MiB announced is refused at once, not waited for until the body timeout.
    let head = b"POST /api/v1/auth/sms/send HTTP/1.1\r\nHost: x\r\nContent-Type: Application/Merge-Patch+JSON; charset=utf-8\r\nContent-Length: 1048576\r\n\r\n";
    let (got, closed) = s.raw_exchange(head, PATIENCE).await;
    assert!(closed, "a 1 MiB +json body that never comes held the connection");
    parse_raw_response(&got)
        .unwrap_or_else(|| panic!("+json: no answer: {:?}", String::from_utf8_lossy(&got)))
        .assert_error(413, "payload_too_large");
}

/// Opens a connection and completes one keep-alive request on it, so the server has surely
/// accepted it; returns the open stream.
async fn open_connection(s: &TestServer) -> Option<TcpStream> {
    let mut c = TcpStream::connect(s.addr()).await.ok()?;
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, c.read(&mut buf)).await.ok()?.ok()?;
    let r = parse_raw_response(&buf[..n])?;
    (r.status == 200).then_some(c)
}

/// A connection beyond the cap: the server closes it (after a 429 in the error shape, or at once).
async fn assert_refused(s: &TestServer) {
    let (got, closed) = s.raw_exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", PATIENCE).await;
    assert!(closed, "a connection beyond the cap was kept open: {:?}", String::from_utf8_lossy(&got));
    if !got.is_empty() {
        parse_raw_response(&got).expect("an HTTP answer").assert_error(429, "too_many_connections");
    }
}

#[tokio::test]
async fn connections_per_address_are_capped_websockets_included() {
    const CAP: usize = 4;
    let s = TestServer::start(
        Opts::new()
            .env("HOSPITAL_GATEWAY__LIMITS__MAX_CONNECTIONS_PER_IP", CAP)
            // Unauthenticated sockets wait this long for their auth frame: longer than the test.
            .env("HOSPITAL_GATEWAY__REALTIME__AUTH_TIMEOUT_SECS", 120)
            // After 10:30 in the hospital's zone a new server reconciles yesterday at once, and its
            // clients' pooled connections to its own sandbox (on this loopback address) would
            // count against this test's cap of four.
            .env("HOSPITAL_ACTORS__JOBS__RECONCILE", false),
    )
    .await;
    let mut held = Vec::new();
    for i in 0..CAP {
        held.push(open_connection(&s).await.unwrap_or_else(|| panic!("connection {i} under the cap refused")));
    }
    assert_refused(&s).await;

    // Freeing one lets one more in (the server notices the close a moment later).
    drop(held.pop());
    let mut again = None;
    for _ in 0..100 {
        if let Some(c) = open_connection(&s).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    held.push(again.expect("a freed place is given again"));
    drop(held);

    // Upgraded WebSockets count as connections of their address for as long as they are open.
    let url = s.base.replace("http://", "ws://") + "/ws";
    let mut sockets = Vec::new();
    for i in 0..CAP {
        let mut got = None;
        for _ in 0..100 {
            if let Ok((ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await {
                got = Some(ws);
                break;
            }
            // The plain connections dropped above may not all be noticed yet.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sockets.push(got.unwrap_or_else(|| panic!("WebSocket {i} under the cap refused")));
    }
    assert_refused(&s).await;
    assert!(tokio_tungstenite::connect_async(url.as_str()).await.is_err(), "a WebSocket beyond the cap");
    drop(sockets);
}
