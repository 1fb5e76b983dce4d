//! Our own WebSocket (RFC 6455, server side), so that an idle socket holds no buffer: tens of
//! thousands of open sockets must fit in memory (issue 13). axum's `WebSocket` (tungstenite)
//! keeps a read buffer and a write buffer per socket, the write buffer at the capacity of the
//! largest frame ever sent (a topic's snapshot), for as long as the socket lives.
//!
//! Here:
//! - reads go into a chunk on the stack of one poll; only the bytes of a frame that is not all
//!   there yet are kept (`read`), and that buffer is let go as soon as the frame is complete;
//! - a frame is written straight from the message's bytes (header and payload in one write);
//!   only what the kernel did not take at once is kept (`owed`), and let go once written;
//! - a fragmented message is assembled while it arrives, control frames in between answered;
//! - ping is answered by pong, a close by a close with the same code (the closing handshake).
//!
//! `recv` and `send` keep all their progress in the socket, so `recv` may be dropped at any
//! await (the sockets `select!` over it) without losing or tearing a frame.
//!
//! The handshake (`Upgrade`, an extractor) checks what axum's `WebSocketUpgrade` checked, picks
//! the subprotocol, answers 101 and takes the connection from hyper.

use axum::extract::ws::{Message, Utf8Bytes};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use std::future::{poll_fn, Future};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::wire::{self, Header, WsError, MAX_HEADER, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};
use crate::error::ApiError;

/// What one poll reads into (on the stack, never kept).
const READ_CHUNK: usize = 4096;
/// Frames up to this size (header included) are copied into one chunk on the stack and written
/// with one call; larger ones go out as a vectored write of header and payload.
const SMALL_FRAME: usize = 4096;
/// The largest message a socket takes unless told otherwise.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// The connection an upgrade hands over.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// One server-side WebSocket over `S`.
pub struct WebSocket<S = Upgraded> {
    io: S,
    /// The bytes of a frame that is not all there yet; empty with no capacity between frames.
    read: Vec<u8>,
    /// A fragmented data message being assembled: its opcode and payload so far.
    partial: Option<(u8, Vec<u8>)>,
    /// Bytes owed to the peer that it did not take at once (the rest of a frame, a pong, a close
    /// reply): written before anything else; empty with no capacity once written.
    owed: Vec<u8>,
    max_message: usize,
    close_sent: bool,
    /// Nothing more will be read: the peer's close came, it broke the protocol, or it is gone.
    read_done: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// A socket over a connection whose handshake is done; messages over `max_message` bytes
    /// (and frames, which cannot be larger) are refused with 1009.
    pub fn new(io: S, max_message: usize) -> Self {
        WebSocket {
            io,
            read: Vec::new(),
            partial: None,
            owed: Vec::new(),
            max_message,
            close_sent: false,
            read_done: false,
        }
    }

    /// The next message: text, binary, ping (already answered), pong, or the peer's close
    /// (already answered); None once nothing more can come; Err when the peer broke the
    /// protocol (see `WsError` for the close code to send). Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Message, WsError>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Sends one message (a close at most once; nothing after it). A write the peer does not
    /// take leaves the rest in `owed`: dropping this future (a timeout) tears no frame, and the
    /// next send writes that rest first.
    pub async fn send(&mut self, msg: Message) -> Result<(), WsError> {
        let mut started = false;
        poll_fn(|cx| self.poll_send(cx, &msg, &mut started)).await
    }

    /// `send` as a poll, its progress kept in `started` (false at first): Ready once the whole
    /// frame is written and flushed. Polled with a waker that wakes nobody (the hub's write of
    /// a topic update, `line`), Pending means the rest of the frame is owed and `started` true:
    /// the socket's task writes it (with its own waker) before anything else.
    pub fn poll_send(&mut self, cx: &mut Context<'_>, msg: &Message, started: &mut bool) -> Poll<Result<(), WsError>> {
        if !*started {
            let close;
            let (opcode, payload): (u8, &[u8]) = match msg {
                Message::Text(t) => (OP_TEXT, t.as_bytes()),
                Message::Binary(b) => (OP_BINARY, b),
                Message::Ping(b) => (OP_PING, b),
                Message::Pong(b) => (OP_PONG, b),
                Message::Close(f) if !self.close_sent => {
                    close = wire::close_body(f.as_ref());
                    (OP_CLOSE, &close)
                }
                // Already closing (ours, or the reply to the peer's): only what is owed goes out.
                Message::Close(_) => return self.poll_write_owed(cx).map_err(WsError::Io),
            };
            if self.close_sent {
                return Poll::Ready(Err(WsError::Closed));
            }
            if opcode >= OP_CLOSE && payload.len() > 125 {
                return Poll::Ready(Err(WsError::Protocol("control frames carry at most 125 bytes")));
            }
            if !self.owed.is_empty() {
                ready!(self.poll_write_owed(cx))?;
            }
            self.close_sent = opcode == OP_CLOSE;
            self.start_frame(cx, opcode, payload)?;
            *started = true;
        }
        self.poll_write_owed(cx).map_err(WsError::Io)
    }

    /// Nothing is owed and no close was sent: a new frame can start now.
    pub fn clear_to_write(&self) -> bool {
        self.owed.is_empty() && !self.close_sent
    }

    /// Bytes this socket holds now besides the connection itself (read, partial, owed).
    pub fn buffered_capacity(&self) -> usize {
        self.read.capacity() + self.owed.capacity() + self.partial.as_ref().map_or(0, |(_, p)| p.capacity())
    }

    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        loop {
            if self.read_done {
                let _ = self.poll_write_owed(cx);
                return Poll::Ready(None);
            }
            match self.parse() {
                Ok(Some(msg)) => {
                    // A pong or a close reply goes out now if the peer takes it.
                    if !self.owed.is_empty() {
                        let _ = self.poll_write_owed(cx);
                    }
                    return Poll::Ready(Some(Ok(msg)));
                }
                Ok(None) => {}
                Err(e) => {
                    self.read_done = true;
                    self.read = Vec::new();
                    self.partial = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if !self.owed.is_empty() {
                // Owed bytes wait for the peer without holding up the read.
                if let Poll::Ready(Err(e)) = self.poll_write_owed(cx) {
                    self.read_done = true;
                    return Poll::Ready(Some(Err(WsError::Io(e))));
                }
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    self.read_done = true;
                    return Poll::Ready(Some(Err(WsError::Io(e))));
                }
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    self.read_done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(())) => self.read.extend_from_slice(buf.filled()),
            }
        }
    }

    /// The next message in `read`, if a whole one is there (control frames answered on the way).
    fn parse(&mut self) -> Result<Option<Message>, WsError> {
        loop {
            let Some(h) = Header::parse(&self.read)? else { return Ok(None) };
            if h.len > self.max_message as u64 {
                return Err(WsError::TooBig(self.max_message));
            }
            let end = h.size + h.len as usize;
            if self.read.len() < end {
                // One allocation for the rest of this frame, not a doubling per chunk.
                self.read.reserve_exact(end - self.read.len());
                return Ok(None);
            }
            wire::unmask(&mut self.read[h.size..end], h.mask);
            let msg = self.frame(h, end)?;
            if end == self.read.len() {
                self.read = Vec::new();
            } else {
                self.read.drain(..end);
            }
            if msg.is_some() {
                return Ok(msg);
            }
        }
    }

    /// One whole frame (unmasked, at `h.size..end` of `read`): the message it completes, if any.
    fn frame(&mut self, h: Header, end: usize) -> Result<Option<Message>, WsError> {
        let payload = &self.read[h.size..end];
        Ok(match h.opcode {
            OP_CONTINUATION => {
                let Some((_, so_far)) = self.partial.as_mut() else {
                    return Err(WsError::Protocol("a continuation frame with no message to continue"));
                };
                if so_far.len() + payload.len() > self.max_message {
                    return Err(WsError::TooBig(self.max_message));
                }
                so_far.extend_from_slice(payload);
                match h.fin {
                    true => {
                        let (opcode, data) = self.partial.take().expect("checked above");
                        Some(data_message(opcode, data)?)
                    }
                    false => None,
                }
            }
            OP_TEXT | OP_BINARY => {
                if self.partial.is_some() {
                    return Err(WsError::Protocol("a new message inside a fragmented one"));
                }
                match h.fin {
                    true => Some(data_message(h.opcode, payload.to_vec())?),
                    false => {
                        self.partial = Some((h.opcode, payload.to_vec()));
                        None
                    }
                }
            }
            OP_PING => {
                if !self.close_sent {
                    owe(&mut self.owed, OP_PONG, payload);
                }
                Some(Message::Ping(Bytes::copy_from_slice(payload)))
            }
            OP_PONG => Some(Message::Pong(Bytes::copy_from_slice(payload))),
            _ => {
                let close = wire::parse_close(payload)?;
                if !self.close_sent {
                    // The closing handshake: the same code (and reason) back.
                    owe(&mut self.owed, OP_CLOSE, payload);
                    self.close_sent = true;
                }
                self.read_done = true;
                self.partial = None;
                Some(Message::Close(close))
            }
        })
    }

    /// Writes one frame now, as far as the peer takes it; the rest is owed.
    fn start_frame(&mut self, cx: &mut Context<'_>, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut head = [0u8; MAX_HEADER];
        let h = wire::server_header(&mut head, opcode, payload.len());
        let total = h + payload.len();
        let written = if total <= SMALL_FRAME {
            let mut frame = [0u8; SMALL_FRAME];
            frame[..h].copy_from_slice(&head[..h]);
            frame[h..total].copy_from_slice(payload);
            match Pin::new(&mut self.io).poll_write(cx, &frame[..total]) {
                Poll::Ready(r) => r?,
                Poll::Pending => 0,
            }
        } else {
            let parts = [IoSlice::new(&head[..h]), IoSlice::new(payload)];
            match Pin::new(&mut self.io).poll_write_vectored(cx, &parts) {
                Poll::Ready(r) => r?,
                Poll::Pending => 0,
            }
        };
        if written < h {
            self.owed.extend_from_slice(&head[written..h]);
            self.owed.extend_from_slice(payload);
        } else if written < total {
            self.owed.extend_from_slice(&payload[written - h..]);
        }
        Ok(())
    }

    /// Writes what is owed, then flushes; the buffer is let go once empty.
    pub(super) fn poll_write_owed(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.owed.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.owed))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.owed.drain(..n);
        }
        if self.owed.capacity() > 0 {
            self.owed = Vec::new();
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

/// Queues a whole server frame.
fn owe(owed: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let mut head = [0u8; MAX_HEADER];
    let h = wire::server_header(&mut head, opcode, payload.len());
    owed.extend_from_slice(&head[..h]);
    owed.extend_from_slice(payload);
}

fn data_message(opcode: u8, data: Vec<u8>) -> Result<Message, WsError> {
    match opcode {
        OP_TEXT => Utf8Bytes::try_from(data).map(Message::Text).map_err(|_| WsError::Utf8),
        _ => Ok(Message::Binary(data.into())),
    }
}

/// A request that is not a WebSocket upgrade, and why (answered 400 in the error shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotAnUpgrade(pub &'static str);

impl IntoResponse for NotAnUpgrade {
    fn into_response(self) -> Response {
        ApiError::BadRequest(format!("this endpoint needs a WebSocket upgrade: {}", self.0)).into_response()
    }
}

/// A WebSocket upgrade request (HTTP/1.1, RFC 6455 section 4.2.1), checked: the extractor of
/// the three socket routes.
pub struct Upgrade {
    on_upgrade: hyper::upgrade::OnUpgrade,
    key: HeaderValue,
    offered: Vec<HeaderValue>,
    protocol: Option<&'static str>,
    max_message: usize,
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotAnUpgrade;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NotAnUpgrade> {
        if parts.version != Version::HTTP_11 {
            return Err(NotAnUpgrade("WebSockets are served over HTTP/1.1"));
        }
        if parts.method != Method::GET {
            return Err(NotAnUpgrade("the method must be GET"));
        }
        if !has_token(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(NotAnUpgrade("the Connection header does not include 'upgrade'"));
        }
        if !has_token(&parts.headers, header::UPGRADE, "websocket") {
            return Err(NotAnUpgrade("the Upgrade header is not 'websocket'"));
        }
        if parts.headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return Err(NotAnUpgrade("the Sec-WebSocket-Version header is not 13"));
        }
        let key =
            parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned().ok_or(NotAnUpgrade("no Sec-WebSocket-Key header"))?;
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or(NotAnUpgrade("this connection cannot be upgraded"))?;
        let offered = parts.headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter().cloned().collect();
        Ok(Upgrade { on_upgrade, key, offered, protocol: None, max_message: DEFAULT_MAX_MESSAGE })
    }
}

impl Upgrade {
    /// The subprotocols offered by the client, in its order.
    pub fn offered(&self) -> impl Iterator<Item = &str> {
        self.offered
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }

    /// Picks the first of `ours` (in our order of preference) that the client offered.
    pub fn protocols(mut self, ours: &[&'static str]) -> Self {
        self.protocol = ours.iter().find(|p| self.offered().any(|o| o == **p)).copied();
        self
    }

    /// The subprotocol picked (`protocols`), if any.
    pub fn protocol(&self) -> Option<&'static str> {
        self.protocol
    }

    /// The largest message (and frame) the socket takes; larger ones close it with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// Answers 101 and runs `serve` on the socket once hyper hands the connection over.
    pub fn on_upgrade<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade { on_upgrade, key, protocol, max_message, .. } = self;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(io) => serve(WebSocket::new(TokioIo::new(io), max_message)).await,
                Err(e) => tracing::debug!(error = %e, "the WebSocket upgrade failed"),
            }
        });
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).expect("base64"));
        if let Some(p) = protocol {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
        }
        response
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// A client frame: masked, FIN as given.
    fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        let mut body = payload.to_vec();
        wire::unmask(&mut body, mask);
        f.extend_from_slice(&body);
        f
    }

    fn pair(max: usize) -> (WebSocket<DuplexStream>, DuplexStream) {
        let (a, b) = tokio::io::duplex(1 << 20);
        (WebSocket::new(a, max), b)
    }

    /// Reads one server frame: (fin, opcode, payload); server frames are never masked.
    pub(in crate::realtime) async fn server_frame(peer: &mut DuplexStream) -> (bool, u8, Vec<u8>) {
        let mut h = [0u8; 2];
        peer.read_exact(&mut h).await.unwrap();
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        let len = match h[1] & 0x7f {
            126 => peer.read_u16().await.unwrap() as usize,
            127 => peer.read_u64().await.unwrap() as usize,
            n => n as usize,
        };
        let mut body = vec![0u8; len];
        peer.read_exact(&mut body).await.unwrap();
        (h[0] & 0x80 != 0, h[0] & 0x0f, body)
    }

    #[tokio::test]
    async fn a_message_read_byte_by_byte() {
        let (mut ws, mut peer) = pair(1024);
        let bytes = client(true, OP_TEXT, br#"{"type":"ping"}"#);
        let reader = tokio::spawn(async move {
            let m = ws.recv().await.unwrap().unwrap();
            (m, ws)
        });
        for b in bytes {
            peer.write_all(&[b]).await.unwrap();
            tokio::task::yield_now().await;
        }
        let (m, ws) = reader.await.unwrap();
        assert_eq!(m, Message::Text(r#"{"type":"ping"}"#.into()));
        assert_eq!(ws.buffered_capacity(), 0, "nothing kept once the frame is read");
    }

    #[tokio::test]
    async fn fragments_are_assembled_and_a_ping_inside_is_answered() {
        let (mut ws, mut peer) = pair(1024);
        let mut bytes = client(false, OP_TEXT, "héllo, ".as_bytes());
        bytes.extend(client(true, OP_PING, b"p1"));
        bytes.extend(client(false, OP_CONTINUATION, b"wor"));
        bytes.extend(client(true, OP_CONTINUATION, b"ld"));
        peer.write_all(&bytes).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::Ping(Bytes::from_static(b"p1")));
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::Text("héllo, world".into()));
        assert_eq!(server_frame(&mut peer).await, (true, OP_PONG, b"p1".to_vec()));
        // Binary, split across reads mid-header and mid-payload.
        let bytes = client(true, OP_BINARY, &[7u8; 300]);
        peer.write_all(&bytes[..3]).await.unwrap();
        let wait = tokio::time::timeout(std::time::Duration::from_millis(20), ws.recv()).await;
        assert!(wait.is_err(), "an incomplete frame is not a message");
        peer.write_all(&bytes[3..100]).await.unwrap();
        let wait = tokio::time::timeout(std::time::Duration::from_millis(20), ws.recv()).await;
        assert!(wait.is_err(), "dropping recv loses nothing");
        peer.write_all(&bytes[100..]).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::Binary(vec![7u8; 300].into()));
        assert_eq!(ws.buffered_capacity(), 0);
    }

    async fn refused(bytes: Vec<u8>, max: usize) -> WsError {
        let (mut ws, mut peer) = pair(max);
        peer.write_all(&bytes).await.unwrap();
        let e = ws.recv().await.unwrap().unwrap_err();
        assert!(ws.recv().await.is_none(), "nothing is read after an error");
        e
    }

    #[tokio::test]
    async fn bad_input_is_refused_with_its_reason() {
        let unmasked = vec![0x81, 2, b'h', b'i'];
        assert!(matches!(refused(unmasked, 1024).await, WsError::Protocol(_)));
        assert!(matches!(refused(client(true, OP_TEXT, &[0x7b, 0xff, 0xfe]), 1024).await, WsError::Utf8));
        assert!(matches!(refused(client(true, OP_BINARY, &[0; 2000]), 1024).await, WsError::TooBig(1024)));
        // Fragments under the limit that add up to more than it.
        let mut parts = client(false, OP_TEXT, &[b'a'; 600]);
        parts.extend(client(true, OP_CONTINUATION, &[b'a'; 600]));
        assert!(matches!(refused(parts, 1024).await, WsError::TooBig(1024)));
        assert!(matches!(refused(client(true, OP_CONTINUATION, b"x"), 1024).await, WsError::Protocol(_)));
        let mut nested = client(false, OP_TEXT, b"a");
        nested.extend(client(true, OP_TEXT, b"b"));
        assert!(matches!(refused(nested, 1024).await, WsError::Protocol(_)));
        // A header announcing more than the limit is refused before its payload comes.
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        huge.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(refused(huge, 1024).await, WsError::TooBig(1024)));
    }

    #[tokio::test]
    async fn the_closing_handshake() {
        // The peer closes: its code comes back, and nothing can be sent after.
        let (mut ws, mut peer) = pair(1024);
        let mut body = 1000u16.to_be_bytes().to_vec();
        body.extend_from_slice(b"bye");
        peer.write_all(&client(true, OP_CLOSE, &body)).await.unwrap();
        match ws.recv().await.unwrap().unwrap() {
            Message::Close(Some(f)) => assert_eq!((f.code, f.reason.as_str()), (1000, "bye")),
            other => panic!("{other:?}"),
        }
        assert_eq!(server_frame(&mut peer).await, (true, OP_CLOSE, body));
        assert!(ws.recv().await.is_none());
        assert!(ws.send(Message::Close(None)).await.is_ok(), "closing again is a no-op");
        assert!(matches!(ws.send(Message::Text("late".into())).await, Err(WsError::Closed)));

        // We close: our close goes out, the peer's answer ends the reading.
        let (mut ws, mut peer) = pair(1024);
        let frame = axum::extract::ws::CloseFrame { code: 4008, reason: "too slow".into() };
        ws.send(Message::Close(Some(frame))).await.unwrap();
        let (_, op, body) = server_frame(&mut peer).await;
        assert_eq!((op, &body[..2], &body[2..]), (OP_CLOSE, &4008u16.to_be_bytes()[..], &b"too slow"[..]));
        peer.write_all(&client(true, OP_PING, b"late")).await.unwrap();
        peer.write_all(&client(true, OP_CLOSE, &4008u16.to_be_bytes())).await.unwrap();
        assert!(matches!(ws.recv().await, Some(Ok(Message::Ping(_)))));
        assert!(matches!(ws.recv().await, Some(Ok(Message::Close(Some(_))))));
        drop(ws);
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "no pong and no second close after ours: {rest:?}");
    }

    /// The point of this module: a socket that sent a large frame (a snapshot) and read a large
    /// one keeps no buffer while idle.
    #[tokio::test]
    async fn an_idle_socket_holds_no_buffer() {
        let (mut ws, mut peer) = pair(1 << 20);
        let big = "x".repeat(200_000);
        let reader = tokio::spawn(async move {
            let f = server_frame(&mut peer).await;
            (f, peer)
        });
        ws.send(Message::Text(big.clone().into())).await.unwrap();
        let ((fin, op, body), mut peer) = reader.await.unwrap();
        assert_eq!((fin, op, body.len()), (true, OP_TEXT, big.len()));
        ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
        assert_eq!(server_frame(&mut peer).await, (true, OP_BINARY, vec![1, 2, 3]));
        peer.write_all(&client(true, OP_BINARY, &[9u8; 50_000])).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::Binary(vec![9u8; 50_000].into()));
        assert_eq!(ws.buffered_capacity(), 0, "an idle socket keeps no read or write buffer");
        assert!(std::mem::size_of::<WebSocket>() <= 160, "{}", std::mem::size_of::<WebSocket>());
    }

    /// A peer that does not read: the write that times out leaves the rest owed, and the next
    /// frame (the close) follows whole frames only.
    #[tokio::test]
    async fn a_write_cut_short_tears_no_frame() {
        let (a, mut peer) = tokio::io::duplex(1000);
        let mut ws = WebSocket::new(a, 1024);
        let msg = Message::Binary(vec![5u8; 5000].into());
        let cut = tokio::time::timeout(std::time::Duration::from_millis(20), ws.send(msg)).await;
        assert!(cut.is_err(), "the peer reads nothing, the write waits");
        assert!(ws.buffered_capacity() > 0, "the rest of the frame is owed");
        let closing = tokio::spawn(async move {
            ws.send(Message::Close(None)).await.unwrap();
            ws
        });
        assert_eq!(server_frame(&mut peer).await, (true, OP_BINARY, vec![5u8; 5000]));
        assert_eq!(server_frame(&mut peer).await, (true, OP_CLOSE, vec![]));
        assert_eq!(closing.await.unwrap().buffered_capacity(), 0);
    }

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // The example of RFC 6455 section 1.3.
        assert_eq!(
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
