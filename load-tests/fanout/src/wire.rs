//! The sockets' side of RFC 6455, just what a watching client needs: the opening handshake (the
//! server's `Sec-WebSocket-Accept` checked), reading the server's unmasked frames out of one
//! reusable buffer, and sending masked text and close frames.
//!
//! Every read also gets the kernel's receive time of its bytes (`SO_TIMESTAMPNS`): the client
//! shards share the two cores with the servers, and the time a shard's task gets round to reading
//! a frame is the shard's delay added to the server's. The kernel stamps a segment as it arrives
//! (on loopback, in the sending server's own system call), so a frame's `arrived_us` is when the
//! server delivered it, whoever was busy after. (Linux turns stamping on a moment after the first
//! socket asks, from a work queue, so a process's first reads can come without a time: the
//! clients then take the time they read it.)
//!
//! Why not tungstenite here: this process shares the machine's two cores with the servers under
//! test, and per update tungstenite zeroed a 4 KiB read buffer, copied the frame into an owned
//! message and woke the task through its own wakers; that was a sixth of the generator's CPU in
//! a profile of the 50,000-socket run, CPU the servers' latency then paid for. Both servers get
//! exactly the same client.

use anyhow::{bail, Context, Result};
use std::os::fd::AsRawFd;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

/// The RFC's sample key and its accept value (section 1.3): a fixed key is allowed to any client
/// that is not a browser, and checking the answer against the known value needs no SHA-1 here.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The largest frame this client accepts (the servers' frames here are a few hundred bytes;
/// a snapshot of a busy doctor a few KiB).
const MAX_FRAME: usize = 1 << 20;

pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;

/// An open WebSocket over `tcp`: the bytes read and not yet taken are `buf[start..end]`.
pub struct Ws {
    tcp: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The kernel's receive time of the last bytes read (µs since the Unix epoch; 0 if it gave
    /// none).
    arrived_us: u64,
}

/// One frame as read: its opcode and payload (unmasked; continuation frames are not used by
/// either server for the messages counted here, and are refused).
pub struct Frame<'a> {
    pub opcode: u8,
    pub payload: &'a [u8],
    /// When the kernel received the read that completed the frame (µs since the Unix epoch; 0 if
    /// it gave no time).
    pub arrived_us: u64,
}

/// Asks the kernel to stamp what `tcp` receives (`SO_TIMESTAMPNS`).
fn stamp_arrivals(tcp: &TcpStream) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One non-blocking `recvmsg` into `buf`: the bytes read and the kernel's receive time of the
/// last of them (µs since the Unix epoch; 0 if none came with them).
fn recv_stamped(fd: std::os::fd::RawFd, buf: &mut [u8]) -> std::io::Result<(usize, u64)> {
    // Room for one `cmsghdr` holding a `timespec`, aligned for it.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: zeroed is a valid `msghdr` (no name, no buffers); the fields set below point at
    // `iov` and `control`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` describes memory owned by this frame.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut arrived_us = 0;
    // SAFETY: the CMSG macros walk the control buffer the kernel filled, within `msg_controllen`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                arrived_us = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, arrived_us))
}

impl Ws {
    /// Upgrades `tcp` (`GET path` on `host`) with `headers` (name, value) added.
    pub async fn connect(mut tcp: TcpStream, host: &str, path: &str, headers: &[(&str, &str)]) -> Result<Self> {
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        stamp_arrivals(&tcp).context("SO_TIMESTAMPNS")?;
        tcp.write_all(req.as_bytes()).await.context("send the upgrade")?;
        let mut ws = Ws { tcp, buf: vec![0; 4096], start: 0, end: 0, arrived_us: 0 };
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&ws.buf[..ws.end], b"\r\n\r\n") {
                break i + 4;
            }
            if ws.end == ws.buf.len() {
                bail!("upgrade answer longer than {} bytes", ws.buf.len());
            }
            ws.fill().await.context("read the upgrade answer")?;
        };
        let head = String::from_utf8_lossy(&ws.buf[..head_end]).into_owned();
        let status = head.lines().next().unwrap_or_default();
        if !status.starts_with("HTTP/1.1 101") {
            bail!("upgrade refused: {status}");
        }
        let accept = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim().eq_ignore_ascii_case("sec-websocket-accept").then(|| value.trim().to_string())
        });
        if accept.as_deref() != Some(ACCEPT) {
            bail!("wrong Sec-WebSocket-Accept: {accept:?}");
        }
        // Frames may have come with the answer.
        ws.start = head_end;
        Ok(ws)
    }

    /// Reads more bytes after `end`; an error at the end of the stream.
    async fn fill(&mut self) -> Result<()> {
        let fd = self.tcp.as_raw_fd();
        let room = &mut self.buf[self.end..];
        let (n, arrived_us) = self.tcp.async_io(Interest::READABLE, || recv_stamped(fd, room)).await?;
        if n == 0 {
            bail!("connection closed");
        }
        self.end += n;
        self.arrived_us = arrived_us;
        Ok(())
    }

    /// Reads until a whole frame is buffered, then returns it. Cancel-safe: a read cut short
    /// leaves its bytes in the buffer for the next call.
    pub async fn next(&mut self) -> Result<Frame<'_>> {
        loop {
            if let Some((opcode, at, len)) = self.parse()? {
                self.start = at + len;
                return Ok(Frame { opcode, payload: &self.buf[at..at + len], arrived_us: self.arrived_us });
            }
            self.make_room()?;
            self.fill().await?;
        }
    }

    /// The frame at `start` if it is whole: (opcode, payload offset, payload length).
    fn parse(&mut self) -> Result<Option<(u8, usize, usize)>> {
        if self.start == self.end {
            // Nothing kept: start over at the buffer's front.
            (self.start, self.end) = (0, 0);
        }
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, opcode, masked) = (b[0] & 0x80 != 0, b[0] & 0x0f, b[1] & 0x80 != 0);
        if !fin || masked {
            bail!("a fragmented or masked frame from the server");
        }
        let (len, head) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")) as usize, 10),
            126 | 127 => return Ok(None),
            n => (usize::from(n), 2),
        };
        if len > MAX_FRAME {
            bail!("a frame of {len} bytes");
        }
        if b.len() < head + len {
            return Ok(None);
        }
        Ok(Some((opcode, self.start + head, len)))
    }

    /// Moves a partial frame to the buffer's front, or grows the buffer for a long one.
    fn make_room(&mut self) -> Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_FRAME + 16 {
                bail!("frame too long");
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        Ok(())
    }

    /// Sends one masked frame (a client must mask; the key need not be secret here).
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = Vec::with_capacity(payload.len() + 8);
        f.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => bail!("a frame of {n} bytes to send"),
        }
        f.extend_from_slice(&MASK);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        self.tcp.write_all(&f).await?;
        Ok(())
    }

    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.send(OP_TEXT, text.as_bytes()).await
    }

    /// The closing handshake: our close frame (1000), then what the server sends until its own.
    pub async fn close(&mut self) -> Result<()> {
        self.send(OP_CLOSE, &1000u16.to_be_bytes()).await?;
        while self.next().await?.opcode != OP_CLOSE {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// Frames split across reads, several in one read, a 16-bit length and a long frame that
    /// grows the buffer all come out whole and in order.
    /// Waits until the kernel stamps what loopback sockets receive, and returns the connected
    /// pair that keeps it so. Linux turns stamping on for the whole machine when the first socket
    /// asks, but later, from a work queue: a read just after the first `SO_TIMESTAMPNS` can come
    /// with no time (this test failed so on a fresh host). Stamping stays on while a socket that
    /// asked for it is open.
    async fn kernel_stamping() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        stamp_arrivals(&client).unwrap();
        let fd = client.as_raw_fd();
        for _ in 0..500 {
            server.write_all(b"x").await.unwrap();
            let mut b = [0u8; 16];
            let (_, at) = client.async_io(Interest::READABLE, || recv_stamped(fd, &mut b)).await.unwrap();
            if at > 0 {
                return (client, server);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the kernel stamped nothing received in 5 s");
    }

    #[tokio::test]
    async fn reads_frames_however_the_bytes_arrive() {
        let _stamping = kernel_stamping().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(s.read_u8().await.unwrap());
            }
            let head = String::from_utf8(head).unwrap();
            assert!(head.contains("Authorization: Bearer t\r\n"), "{head}");
            let frame = |op: u8, p: &[u8]| {
                let mut f = vec![0x80 | op];
                match p.len() {
                    n if n < 126 => f.push(n as u8),
                    n if n < 65536 => {
                        f.push(126);
                        f.extend_from_slice(&(n as u16).to_be_bytes());
                    }
                    n => {
                        f.push(127);
                        f.extend_from_slice(&(n as u64).to_be_bytes());
                    }
                }
                f.extend_from_slice(p);
                f
            };
            let mut out =
                format!("HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n").into_bytes();
            out.extend(frame(OP_TEXT, b"first"));
            s.write_all(&out).await.unwrap();
            let mid = frame(OP_TEXT, &[b'm'; 300]);
            s.write_all(&mid[..3]).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            s.write_all(&mid[3..]).await.unwrap();
            let mut two = frame(OP_TEXT, &vec![b'L'; 70_000]);
            two.extend(frame(OP_CLOSE, &1000u16.to_be_bytes()));
            s.write_all(&two).await.unwrap();
            // The client's close: masked, opcode 8.
            let mut c = [0u8; 8];
            s.read_exact(&mut c).await.unwrap();
            assert_eq!((c[0], c[1]), (0x88, 0x82));
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut ws = Ws::connect(tcp, "x", "/ws", &[("Authorization", "Bearer t")]).await.unwrap();
        let f = ws.next().await.unwrap();
        assert_eq!((f.opcode, f.payload), (OP_TEXT, &b"first"[..]));
        // The middle frame's tail was sent 20 ms after its head: its arrival is the tail's, which
        // came after the first frame's (and no later than now).
        let first_arrived = f.arrived_us;
        let f = ws.next().await.unwrap();
        assert_eq!(f.payload.len(), 300);
        assert!(first_arrived > 0, "the kernel gave no receive time");
        assert!(f.arrived_us >= first_arrived + 15_000, "{} then {}", first_arrived, f.arrived_us);
        assert!(f.arrived_us <= crate::clients::unix_us());
        let f = ws.next().await.unwrap();
        assert_eq!((f.payload.len(), f.payload[69_999]), (70_000, b'L'));
        ws.close().await.unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_wrong_accept_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n\r\n").await.unwrap();
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let e = Ws::connect(tcp, "x", "/ws", &[]).await.err().expect("refused");
        assert!(e.to_string().contains("Sec-WebSocket-Accept"), "{e}");
    }
}
