//! RFC 6455 framing, server side: reading a client frame's header (with every check the RFC asks
//! of a server: masked, no reserved bits or opcodes, control frames short and whole), writing a
//! server frame's header, unmasking, and a close frame's body. Pure functions over bytes; the
//! socket that uses them is `websocket`.

use axum::extract::ws::{CloseFrame, Utf8Bytes};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The longest server frame header: 2 bytes and a 64-bit length (servers do not mask).
pub const MAX_HEADER: usize = 10;

/// Why a connection's input is refused, and with which close code (RFC 6455 section 7.4.1).
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The peer is gone, or the socket was closed.
    #[error("the connection is closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol: close 1002.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A text message (or a close reason) that is not UTF-8: close 1007.
    #[error("text frames must be UTF-8")]
    Utf8,
    /// A frame or message over the limit (bytes): close 1009.
    #[error("a frame or message over {0} bytes")]
    TooBig(usize),
}

/// A client frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    pub mask: [u8; 4],
    /// Payload length.
    pub len: u64,
    /// Bytes the header takes (2 to 14).
    pub size: usize,
}

impl Header {
    /// The header at the start of `buf`: None while it is not all there; Err for a frame no
    /// server may accept.
    pub fn parse(buf: &[u8]) -> Result<Option<Header>, WsError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol("reserved bits set (no extension was agreed)"));
        }
        let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0f);
        if !matches!(opcode, OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG) {
            return Err(WsError::Protocol("reserved opcode"));
        }
        if b1 & 0x80 == 0 {
            return Err(WsError::Protocol("client frames must be masked"));
        }
        let (len, at) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        if len >> 63 != 0 {
            return Err(WsError::Protocol("frame length with its top bit set"));
        }
        if opcode >= OP_CLOSE && (!fin || len > 125) {
            return Err(WsError::Protocol("control frames must be whole and at most 125 bytes"));
        }
        let Some(mask) = buf.get(at..at + 4) else { return Ok(None) };
        Ok(Some(Header { fin, opcode, mask: mask.try_into().expect("4 bytes"), len, size: at + 4 }))
    }
}

/// Unmasks (or masks: the same XOR) a payload in place.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Writes a whole, unmasked server frame's header for `len` payload bytes into `out`; returns
/// how many bytes it took.
pub fn server_header(out: &mut [u8; MAX_HEADER], opcode: u8, len: usize) -> usize {
    out[0] = 0x80 | opcode;
    match len {
        0..=125 => {
            out[1] = len as u8;
            2
        }
        126..=0xffff => {
            out[1] = 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = 127;
            out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    }
}

/// The close codes a peer may send (RFC 6455 section 7.4; 1004-1006 and 1015 are never sent).
fn sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A received close frame's body: nothing, or a code and a UTF-8 reason.
pub fn parse_close(body: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match body {
        [] => Ok(None),
        [_] => Err(WsError::Protocol("a close frame body of one byte")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !sendable(code) {
                return Err(WsError::Protocol("a close code no endpoint may send"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::Utf8)?;
            Ok(Some(CloseFrame { code, reason: Utf8Bytes::from(reason) }))
        }
    }
}

/// A close frame's body to send: the code and the reason, cut to fit a control frame (125
/// bytes) at a character boundary.
pub fn close_body(frame: Option<&CloseFrame>) -> Vec<u8> {
    let Some(f) = frame else { return Vec::new() };
    let mut end = f.reason.len().min(123);
    while !f.reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut body = Vec::with_capacity(2 + end);
    body.extend_from_slice(&f.code.to_be_bytes());
    body.extend_from_slice(&f.reason.as_bytes()[..end]);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(first: u8, len7: u8, ext: &[u8]) -> Vec<u8> {
        let mut v = vec![first, 0x80 | len7];
        v.extend_from_slice(ext);
        v.extend_from_slice(&[1, 2, 3, 4]);
        v
    }

    #[test]
    fn headers_parse_once_complete() {
        let h = masked(0x81, 5, &[]);
        for n in 0..h.len() {
            assert_eq!(Header::parse(&h[..n]).unwrap(), None, "{n} bytes");
        }
        let got = Header::parse(&h).unwrap().unwrap();
        assert_eq!(got, Header { fin: true, opcode: OP_TEXT, mask: [1, 2, 3, 4], len: 5, size: 6 });
        let h = masked(0x02, 126, &300u16.to_be_bytes());
        assert_eq!(Header::parse(&h).unwrap().unwrap().len, 300);
        assert!(!Header::parse(&h).unwrap().unwrap().fin);
        let h = masked(0x82, 127, &70_000u64.to_be_bytes());
        assert_eq!(
            Header::parse(&h).unwrap().unwrap(),
            Header { fin: true, opcode: 2, mask: [1, 2, 3, 4], len: 70_000, size: 14 }
        );
    }

    #[test]
    fn frames_no_server_may_accept_are_refused() {
        let refused = |b: &[u8]| matches!(Header::parse(b), Err(WsError::Protocol(_)));
        assert!(refused(&[0x81, 0x05]), "unmasked");
        assert!(refused(&masked(0xC1, 1, &[])), "RSV1 without an extension");
        assert!(refused(&masked(0x83, 1, &[])), "reserved opcode");
        assert!(refused(&masked(0x09, 1, &[])), "fragmented ping");
        assert!(refused(&masked(0x89, 126, &200u16.to_be_bytes())), "ping over 125 bytes");
        assert!(refused(&masked(0x82, 127, &u64::MAX.to_be_bytes())), "top bit of the length");
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        let mut h = [0u8; MAX_HEADER];
        assert_eq!((server_header(&mut h, OP_TEXT, 125), &h[..2]), (2, &[0x81, 125][..]));
        assert_eq!((server_header(&mut h, OP_BINARY, 126), &h[..4]), (4, &[0x82, 126, 0, 126][..]));
        assert_eq!(server_header(&mut h, OP_TEXT, 70_000), 10);
        assert_eq!(&h[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn close_bodies() {
        assert!(parse_close(&[]).unwrap().is_none());
        assert!(matches!(parse_close(&[3]), Err(WsError::Protocol(_))));
        assert!(matches!(parse_close(&1005u16.to_be_bytes()), Err(WsError::Protocol(_))));
        assert!(matches!(parse_close(&[0x03, 0xe8, 0xff]), Err(WsError::Utf8)));
        let f = parse_close(&[0x0f, 0xa1, b'o', b'k']).unwrap().unwrap();
        assert_eq!((f.code, f.reason.as_str()), (4001, "ok"));
        // A long reason is cut at a character boundary to fit 125 bytes.
        let long = CloseFrame { code: 4008, reason: "é".repeat(100).into() };
        let body = close_body(Some(&long));
        assert_eq!(body.len(), 124);
        assert!(parse_close(&body).is_ok());
    }
}
