//! A minimal HTTP/1.1 keep-alive client: one TCP connection per simulated phone, requests written
//! as prepared bytes, answers read with their status and body. It does no pooling, no redirects,
//! no TLS: the generator shares the machine's two cores with the systems it measures, so it should
//! cost as little as possible per request, and every system is measured by this same code.

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer: the status and the body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A prepared request: its bytes, ready to write on any connection to the same host.
pub fn request_bytes(method: &str, host: SocketAddr, path: &str, token: &str, json: Option<&str>) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n");
    match json {
        Some(b) => {
            s.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", b.len()));
            s.push_str(b);
        }
        None => s.push_str("\r\n"),
    }
    s.into_bytes()
}

/// One open keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Writes `req` and reads one answer. An error with kind `UnexpectedEof` and nothing read
    /// means the server had closed the connection before the request (a stale keep-alive).
    pub async fn send(&mut self, req: &[u8]) -> io::Result<Answer> {
        self.stream.write_all(req).await?;
        self.buf.clear();
        let (status, head_len, framing) = loop {
            if self.read_more().await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before an answer"));
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = resp.code.unwrap_or(0);
                    let mut framing = Framing::Close;
                    for h in resp.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let v = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok());
                            framing = Framing::Length(v.ok_or_else(|| bad("bad content-length"))?);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                            && h.value.eq_ignore_ascii_case(b"chunked")
                        {
                            framing = Framing::Chunked;
                        }
                    }
                    break (status, n, framing);
                }
                Ok(httparse::Status::Partial) => continue,
                Err(e) => return Err(bad(&format!("bad answer: {e}"))),
            }
        };
        let body = match framing {
            Framing::Length(len) => {
                while self.buf.len() < head_len + len {
                    if self.read_more().await? == 0 {
                        return Err(bad("connection closed inside the body"));
                    }
                }
                self.buf[head_len..head_len + len].to_vec()
            }
            Framing::Chunked => self.read_chunked(head_len).await?,
            Framing::Close => {
                while self.read_more().await? != 0 {}
                self.buf[head_len..].to_vec()
            }
        };
        Ok(Answer { status, body })
    }

    async fn read_more(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn read_chunked(&mut self, mut pos: usize) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.buf[pos..].windows(2).position(|w| w == b"\r\n") {
                    break pos + i;
                }
                if self.read_more().await? == 0 {
                    return Err(bad("connection closed inside a chunk"));
                }
            };
            let size_text = std::str::from_utf8(&self.buf[pos..line_end]).map_err(|_| bad("chunk size"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("chunk size"))?;
            let data = line_end + 2;
            while self.buf.len() < data + size + 2 {
                if self.read_more().await? == 0 {
                    return Err(bad("connection closed inside a chunk"));
                }
            }
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&self.buf[data..data + size]);
            pos = data + size + 2;
        }
    }
}

enum Framing {
    Length(usize),
    Chunked,
    Close,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}
