//! The `Range` request header (RFC 9110 §14), for one byte range: `bytes=a-b`, `bytes=a-` and
//! `bytes=-n`. Several ranges, other units and malformed values are ignored (the whole object
//! is sent, as the RFC allows); a well-formed range that selects nothing is `Unsatisfiable`
//! (416).

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// The byte range of an object of `len` bytes that `header` asks for; `Ok(None)` = the whole.
pub fn resolve(header: &str, len: u64) -> Result<Option<Range<u64>>, Unsatisfiable> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ok(None) };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    match (first.trim().is_empty(), num(first), num(last)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                Err(Unsatisfiable)
            } else {
                Ok(Some(len.saturating_sub(n)..len))
            }
        }
        (false, Some(a), None) if last.trim().is_empty() => {
            if a >= len {
                Err(Unsatisfiable)
            } else {
                Ok(Some(a..len))
            }
        }
        (false, Some(a), Some(b)) if a <= b => {
            if a >= len {
                Err(Unsatisfiable)
            } else {
                Ok(Some(a..(b + 1).min(len)))
            }
        }
        _ => Ok(None),
    }
}

/// The `Content-Range` value of a partial answer.
pub fn content_range(r: &Range<u64>, len: u64) -> String {
    format!("bytes {}-{}/{len}", r.start, r.end.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(resolve("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(resolve("bytes=90-200", 100), Ok(Some(90..100)), "clipped to the end");
        assert_eq!(resolve("bytes=95-", 100), Ok(Some(95..100)));
        assert_eq!(resolve("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(resolve("bytes=-500", 100), Ok(Some(0..100)));
        assert_eq!(resolve("bytes=100-", 100), Err(Unsatisfiable));
        assert_eq!(resolve("bytes=200-300", 100), Err(Unsatisfiable));
        assert_eq!(resolve("bytes=-0", 100), Err(Unsatisfiable));
        for ignored in ["items=0-1", "bytes=0-1,5-6", "bytes=abc", "bytes=5-1", "bytes=-", "bytes=1-x", ""] {
            assert_eq!(resolve(ignored, 100), Ok(None), "{ignored:?}");
        }
        assert_eq!(content_range(&(0..10), 100), "bytes 0-9/100");
    }
}
