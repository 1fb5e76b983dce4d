//! Serving connections, plain or TLS, with the limits that protect the server from slow and
//! greedy clients (all in `gateway.limits`):
//!
//! - At most `max_connections_per_ip` open connections per client address, counted from accept
//!   to close. The count travels with the socket, so an upgraded WebSocket still counts until it
//!   closes. A connection beyond the cap gets 429 `too_many_connections` (plain HTTP) and is
//!   closed; counted in `http_connections_refused_total{reason="per_ip_cap"}`.
//! - A request head must arrive within `header_read_timeout_secs` (the TLS handshake too), and
//!   an idle keep-alive connection is closed after it: a head that never ends, or a connection
//!   that sends nothing, is cut off.
//! - HTTP/1.1 or HTTP/2: with TLS, as the client chose in the handshake (ALPN); without, HTTP/2
//!   when the connection opens with HTTP/2's preface ("prior knowledge"), read first and handed
//!   to hyper as though it had read it.
//! - A head larger than `max_header_bytes` is refused by hyper with 431 (HTTP/2: the same bound
//!   on the header list).
//!
//! hyper answers a request it cannot parse (a malformed request line, bytes not allowed in a
//! path, a head over the limit) by itself, before any service runs, with a bodiless 400, 414 or
//! 431, and offers no hook to change that answer. `Shaped` recognises that answer as hyper
//! writes it and writes the one error shape in its place, so these too are JSON.
//! (Body timeouts and the body limit are the gateway's: `hospital_gateway::guard`.)

use axum::extract::ConnectInfo;
use axum::Router;
use hospital_gateway::config::LimitsConfig;
use hospital_gateway::error::ApiError;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long a stop waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// The HTTP/2 connection preface (RFC 9113, 3.4): a client that opens with it speaks HTTP/2
/// without TLS ("prior knowledge"); any other opening is HTTP/1.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The most a plain connection's first read takes (a booking request's head and body fit); what
/// more there is, hyper reads itself.
const FIRST_READ: usize = 4096;

/// How long, and for how many bytes, a connection closed after an early answer keeps reading
/// what its client still sends (`Linger`).
const LINGER_FOR: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 8 << 20;

/// Which HTTP a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

/// hyper's two connection builders, configured once from `gateway.limits`.
struct Builders {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

impl Builders {
    fn new(limits: &LimitsConfig, header_timeout: Duration) -> Self {
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            // The whole head must fit the read buffer (hyper's minimum is 8 KiB).
            .max_buf_size(limits.max_header_bytes.max(8192));
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .enable_connect_protocol()
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        Self { h1, h2 }
    }
}

/// Serves `app` on `listener` until `stop` turns true, then lets requests in flight finish (at
/// most `DRAIN`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: &LimitsConfig,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let per_ip = PerIp::new(limits.max_connections_per_ip);
    let header_timeout = Duration::from_secs(limits.header_read_timeout_secs.max(1));
    let builders = Arc::new(Builders::new(limits, header_timeout));
    // Every connection's task holds a sender; once all are gone, recv answers None.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    loop {
        let (mut tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = wait_for_stop(&mut stop) => break,
        };
        let Some(permit) = per_ip.acquire(peer.ip()) else {
            metrics::counter!("http_connections_refused_total", "reason" => "per_ip_cap").increment(1);
            tracing::debug!(%peer, "connection refused: per-address cap");
            tokio::spawn(refuse(tcp, tls.is_none()));
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (app, builders, tls, mut stop, open) =
            (app.clone(), builders.clone(), tls.clone(), stop.clone(), open_tx.clone());
        // The connection itself (hyper's state for both protocols, the TLS stream, the router's
        // future) is boxed: tokio copies a task's future whole as it spawns it and again as it
        // finishes, and unboxed this task was 9.8 KB (4.2 boxed): about 1% of a storm's CPU
        // went to those copies (memmove under `set_stage`; half of it is left).
        tokio::spawn(async move {
            let result = match tls {
                None => match opening(sniff(&mut tcp), header_timeout, "no request arrived", &mut stop).await {
                    None => return,
                    // The sniff waited for the first byte: no timer of its own for it.
                    Some(Ok((proto, first))) => {
                        let io = Shaped::new(tcp, permit, None).with_first(first);
                        Box::pin(connection(io, proto, &builders, app, peer, stop)).await
                    }
                    Some(Err(e)) => Err(e),
                },
                Some(acceptor) => {
                    match opening(acceptor.accept(tcp), header_timeout, "TLS handshake timed out", &mut stop).await {
                        None => return,
                        Some(Ok(stream)) => {
                            // The client chose in the handshake (ALPN): "h2" or HTTP/1.
                            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                            let proto = if h2 { Proto::H2 } else { Proto::H1 };
                            let io = Shaped::new(stream, permit, Some(header_timeout));
                            Box::pin(connection(io, proto, &builders, app, peer, stop)).await
                        }
                        Some(Err(e)) => Err(e),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open_tx);
    if tokio::time::timeout(DRAIN, open_rx.recv()).await.is_err() {
        tracing::warn!("requests still in flight after {DRAIN:?}; stopping anyway");
    }
    Ok(())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connection's opening `step` (the protocol sniff, the TLS handshake), given `within`:
/// None if a stop comes first (nothing is in flight yet to wait for), else its outcome, with
/// `too_slow` if it took too long.
async fn opening<T, E: Into<BoxError>>(
    step: impl Future<Output = Result<T, E>>,
    within: Duration,
    too_slow: &'static str,
    stop: &mut watch::Receiver<bool>,
) -> Option<Result<T, BoxError>> {
    tokio::select! {
        r = tokio::time::timeout(within, step) => Some(match r {
            Ok(r) => r.map_err(Into::into),
            Err(_) => Err(too_slow.into()),
        }),
        _ = wait_for_stop(stop) => None,
    }
}

/// Which HTTP a plain connection speaks, from its first bytes, and those bytes: read here (in
/// one read, as a rule) and handed to hyper by `Shaped` in place of its own first read. (Peeking
/// instead leaves them in the socket but costs a second receive call per connection, a few
/// per cent of a release storm's CPU, where each patient's one request opens the connection.)
async fn sniff(tcp: &mut TcpStream) -> io::Result<(Proto, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    // The buffer only once there is something to read: a connection opened ahead of its request
    // (a storm's patients open theirs seconds before the release) holds none meanwhile.
    tcp.readable().await?;
    let mut first = Vec::with_capacity(FIRST_READ);
    loop {
        // `read_buf`, not `try_read_buf`: after a short read tokio takes the socket for drained,
        // so hyper's next read waits for the poller instead of costing a call that finds nothing.
        if tcp.read_buf(&mut first).await? == 0 {
            // The client closed: hyper sees that too.
            return Ok((Proto::H1, first));
        }
        let n = first.len().min(H2_PREFACE.len());
        if first[..n] != H2_PREFACE[..n] {
            return Ok((Proto::H1, first));
        }
        if n == H2_PREFACE.len() {
            return Ok((Proto::H2, first));
        }
        // A part of the preface: wait for the rest (the caller's timeout bounds the wait).
    }
}

/// Serves one connection's requests with `app` until the client goes, the connection upgrades
/// (a WebSocket: hyper hands it over and this ends), or `stop` turns true: then hyper finishes
/// the requests in flight and closes.
async fn connection<S>(
    io: S,
    proto: Proto,
    builders: &Builders,
    app: Router,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) -> Result<(), BoxError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        TowerToHyperService::new(app.map_request(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        }));
    let io = TokioIo::new(io);
    match proto {
        Proto::H1 => {
            let conn = builders.h1.serve_connection(io, service).with_upgrades();
            until_stopped(conn, |c| c.graceful_shutdown(), stop).await?;
        }
        Proto::H2 => until_stopped(builders.h2.serve_connection(io, service), |c| c.graceful_shutdown(), stop).await?,
    }
    Ok(())
}

/// Drives a hyper connection; once `stop` turns true, `shut` tells it to take no new requests,
/// and it is driven on until those in flight are answered.
async fn until_stopped<C>(conn: C, shut: impl FnOnce(Pin<&mut C>), mut stop: watch::Receiver<bool>) -> hyper::Result<()>
where
    C: Future<Output = hyper::Result<()>>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return r,
        _ = wait_for_stop(&mut stop) => shut(conn.as_mut()),
    }
    conn.await
}

async fn wait_for_stop(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            // The sender is gone: nobody can stop us any more.
            std::future::pending::<()>().await;
        }
    }
}

/// Refuses a connection over the cap: a 429 in the error shape where the client speaks plain
/// HTTP (a TLS client could not read it), then the close.
async fn refuse(mut tcp: TcpStream, plain: bool) {
    use tokio::io::AsyncWriteExt;
    if plain {
        let answer = error_answer(ApiError::TooManyConnections, 429);
        let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(&answer)).await;
        let _ = tcp.shutdown().await;
    }
}

/// A complete HTTP/1.1 answer in the one error shape that closes the connection.
fn error_answer(err: ApiError, status: u16) -> Vec<u8> {
    let reason = axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let body = serde_json::json!({ "error": { "code": err.code(), "message": err.to_string() } }).to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Open connections per client address.
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, open: Mutex::new(HashMap::new()) })
    }

    /// A place for one more connection from `ip`, or `None` at the cap.
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Permit { per_ip: self.clone(), ip })
    }
}

/// One counted connection; dropped with the socket.
struct Permit {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.per_ip.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A connection's socket with its place under the per-address cap, which puts hyper's own
/// error answers into the error shape (see the module's description).
struct Shaped<S> {
    inner: S,
    _permit: Permit,
    /// Our answer in place of hyper's, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
    /// Until the first byte arrives (TLS only: a plain connection's sniff already waited for
    /// it): a connection that sends nothing after its handshake is ended here, whichever HTTP
    /// it chose (hyper's HTTP/2 has no header timeout, and nothing else waits for that byte).
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes already read from the socket (by `sniff`) that hyper has not yet been given; freed
    /// once all are given.
    first: Vec<u8>,
    /// Whether a read found the client's end of the stream.
    eof: bool,
    linger: Linger,
}

/// The close of a connection whose answer came before its request was read whole: a 413 for a
/// body announced too large, or hyper's own 400/414/431. The client may still be sending, and a
/// socket closed with bytes unread makes the kernel reset the connection: a client that reads
/// the answer only once it has sent everything then gets the reset instead of the answer (the
/// e2e bad-input test's 1 MiB body did, under load). So such a close lingers, as nginx's does:
/// the answer and the end of our stream go out, then what the client still sends is read and
/// dropped until it closes, for at most `LINGER_FOR` and `LINGER_BYTES`. Any other close (the
/// client's end already read, as after every storm request) is immediate.
enum Linger {
    No,
    /// An early answer was written; the close will linger unless the client's end was read.
    Wanted,
    Draining {
        until: Pin<Box<tokio::time::Sleep>>,
        left: usize,
    },
    Done,
}

impl<S> Shaped<S> {
    fn new(inner: S, permit: Permit, first_byte_within: Option<Duration>) -> Self {
        let first_byte = first_byte_within.map(|d| Box::pin(tokio::time::sleep(d)));
        Self {
            inner,
            _permit: permit,
            replacement: None,
            first_byte,
            first: Vec::new(),
            eof: false,
            linger: Linger::No,
        }
    }

    /// Gives hyper `first` before anything read from the socket.
    fn with_first(mut self, first: Vec<u8>) -> Self {
        self.first = first;
        self
    }
}

/// The status of `buf` if it is exactly hyper's automatic answer to an unparsable request: a
/// head alone, `400`/`414`/`431`, `connection: close` and `content-length: 0`. The service
/// never answers like that: every error it sends has a JSON body.
fn hyper_error_answer(buf: &[u8]) -> Option<u16> {
    let head = std::str::from_utf8(buf.strip_suffix(b"\r\n\r\n")?).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let status = match status {
        "400" => 400,
        "414" => 414,
        "431" => 431,
        _ => return None,
    };
    let (mut close, mut empty) = (false, false);
    for line in lines {
        let line = line.to_ascii_lowercase();
        close |= line == "connection: close";
        empty |= line == "content-length: 0";
    }
    (close && empty).then_some(status)
}

fn replacement_for(status: u16) -> Vec<u8> {
    let err = match status {
        414 => ApiError::UriTooLong,
        431 => ApiError::HeadersTooLarge,
        _ => ApiError::BadRequest(
            "the request is not valid HTTP/1.1: a malformed request line or header, or bytes not allowed in the path"
                .into(),
        ),
    };
    error_answer(err, status)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Shaped<S> {
    /// Reads and drops what the client still sends (`Linger`); Ready at its end of the stream, an
    /// error, or either bound.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Linger::Draining { until, left } = &mut self.linger else { return Poll::Ready(()) };
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    *left = left.saturating_sub(buf.filled().len());
                    if *left == 0 {
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return until.as_mut().poll(cx),
            }
        }
    }

    /// Writes what is left of the replacement; Ready once all of it is written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, pos)) = &mut self.replacement {
            if *pos == bytes.len() {
                break;
            }
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *pos += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Shaped<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.first.is_empty() {
            let n = buf.remaining().min(this.first.len());
            buf.put_slice(&this.first[..n]);
            // hyper's buffer takes them all at once as a rule (it reads into 8 KiB); what it
            // did not take moves to the front.
            this.first.drain(..n);
            if this.first.is_empty() {
                this.first = Vec::new();
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() == before {
            this.eof = true;
        }
        let Some(deadline) = &mut this.first_byte else { return read };
        match read {
            Poll::Pending => match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no request arrived"))),
                Poll::Pending => Poll::Pending,
            },
            ready => {
                this.first_byte = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Shaped<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // An answer's head is one write (`is_write_vectored`): the early answers are told apart
        // here, ours by its status line, hyper's by its whole head.
        if this.replacement.is_none() {
            if buf.starts_with(b"HTTP/1.1 413 ") {
                this.linger = Linger::Wanted;
            } else if let Some(status) = hyper_error_answer(buf) {
                this.linger = Linger::Wanted;
                this.replacement = Some((replacement_for(status), 0));
                // Taken whole; the rest is written by the next writes and flushes.
                let _ = this.poll_replacement(cx)?;
                return Poll::Ready(Ok(buf.len()));
            }
        }
        std::task::ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Linger::No | Linger::Wanted = this.linger {
            std::task::ready!(this.poll_replacement(cx))?;
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            if this.eof || matches!(this.linger, Linger::No) {
                return Poll::Ready(Ok(()));
            }
            this.linger = Linger::Draining { until: Box::pin(tokio::time::sleep(LINGER_FOR)), left: LINGER_BYTES };
        }
        std::task::ready!(this.poll_drain(cx));
        this.linger = Linger::Done;
        Poll::Ready(Ok(()))
    }

    // One buffer per write: hyper then writes its answer's head as one piece (see
    // `hyper_error_answer`).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_hyper_s_own_bodiless_answers() {
        let hyper_431 =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 10:01:05 GMT\r\n\r\n";
        assert_eq!(hyper_error_answer(hyper_431), Some(431));
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(hyper_error_answer(hyper_400), Some(400));
        // Our own answers carry a body.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 60\r\n\r\n";
        assert_eq!(hyper_error_answer(ours), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n{}";
        assert_eq!(hyper_error_answer(with_body), None);
        let ok = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(hyper_error_answer(ok), None);
    }

    #[test]
    fn the_replacement_is_a_complete_json_answer() {
        let r = String::from_utf8(replacement_for(431)).unwrap();
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "headers_too_large");
    }

    /// An early answer (a 413 before the body is read) reaches a client that reads only once it
    /// has sent its whole body: the close lingers and drains it instead of resetting the
    /// connection under the client's write. Small socket buffers, so the body cannot sit in them.
    #[tokio::test]
    async fn an_early_answer_reaches_a_client_still_sending_its_body() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpSocket;
        let server = TcpSocket::new_v4().unwrap();
        server.set_recv_buffer_size(16 << 10).unwrap();
        server.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = server.listen(8).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_send_buffer_size(16 << 10).unwrap();
            let mut c = socket.connect(addr).await.unwrap();
            let body = vec![b'1'; 1 << 20];
            c.write_all(b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n\r\n").await?;
            c.write_all(&body).await?;
            c.shutdown().await?;
            let mut answer = Vec::new();
            c.read_to_end(&mut answer).await?;
            Ok::<_, io::Error>(answer)
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let permit = PerIp::new(0).acquire([127, 0, 0, 1].into()).unwrap();
        let mut io = Shaped::new(tcp, permit, None);
        let mut head = [0u8; 16];
        io.read_exact(&mut head).await.unwrap();
        io.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        let answer = client.await.unwrap().expect("the client sends its body and reads the answer, no reset");
        assert!(answer.starts_with(b"HTTP/1.1 413 "), "{}", String::from_utf8_lossy(&answer));
    }

    /// A close after the client's end was read (every storm request's) does not linger.
    #[tokio::test]
    async fn a_close_after_the_clients_end_does_not_wait() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (near, mut far) = tokio::io::duplex(64);
        let permit = PerIp::new(0).acquire([127, 0, 0, 1].into()).unwrap();
        let mut io = Shaped::new(near, permit, None);
        far.write_all(b"x").await.unwrap();
        far.shutdown().await.unwrap();
        let mut got = Vec::new();
        io.read_to_end(&mut got).await.unwrap();
        io.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        io.shutdown().await.unwrap();
        assert!(io.eof, "the client's end was read");
        assert!(matches!(io.linger, Linger::Wanted), "closed without draining");
    }

    #[tokio::test]
    async fn the_sniffed_bytes_are_read_first_in_pieces_then_the_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (near, mut far) = tokio::io::duplex(64);
        let permit = PerIp::new(0).acquire([127, 0, 0, 1].into()).unwrap();
        let mut io = Shaped::new(near, permit, None).with_first(b"GET / HTTP/1.1\r\n".to_vec());
        far.write_all(b"host: x\r\n\r\n").await.unwrap();
        drop(far);
        let mut small = [0u8; 5];
        io.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"GET /");
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b" HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(io.first.capacity(), 0, "given in full, the bytes are freed");
    }

    #[test]
    fn the_cap_counts_open_connections_per_address() {
        let per_ip = PerIp::new(2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let p1 = per_ip.acquire(a).unwrap();
        let _p2 = per_ip.acquire(a).unwrap();
        assert!(per_ip.acquire(a).is_none());
        assert!(per_ip.acquire(b).is_some(), "another address has its own count");
        drop(p1);
        assert!(per_ip.acquire(a).is_some(), "a closed connection frees its place");
        assert!(PerIp::new(0).acquire(a).is_some(), "0 = no cap");
    }
}
