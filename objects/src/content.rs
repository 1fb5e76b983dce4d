//! What a file is, judged by its first bytes (magic numbers), never by its name or the type the
//! client declared: a renamed executable is still an executable. Each use says which types it
//! accepts and how large they may be (`Policy`).

use crate::ObjectError;

/// The types the platform stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    Png,
    Jpeg,
    Gif,
    Webp,
    Pdf,
    /// A DICOM Part 10 file: 128 bytes of preamble, then `DICM`.
    Dicom,
}

impl ContentType {
    pub const ALL: [ContentType; 6] = [
        ContentType::Png,
        ContentType::Jpeg,
        ContentType::Gif,
        ContentType::Webp,
        ContentType::Pdf,
        ContentType::Dicom,
    ];

    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Png => "image/png",
            ContentType::Jpeg => "image/jpeg",
            ContentType::Gif => "image/gif",
            ContentType::Webp => "image/webp",
            ContentType::Pdf => "application/pdf",
            ContentType::Dicom => "application/dicom",
        }
    }

    /// The extension of keys holding this type (how a download knows its type).
    pub fn extension(self) -> &'static str {
        match self {
            ContentType::Png => "png",
            ContentType::Jpeg => "jpg",
            ContentType::Gif => "gif",
            ContentType::Webp => "webp",
            ContentType::Pdf => "pdf",
            ContentType::Dicom => "dcm",
        }
    }

    /// Whether a browser may show it in place (images, PDF) rather than save it.
    pub fn inline(self) -> bool {
        !matches!(self, ContentType::Dicom)
    }

    pub fn from_extension(ext: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.extension().eq_ignore_ascii_case(ext))
    }

    /// The type of a stored key, from its extension.
    pub fn of_key(key: &str) -> Option<Self> {
        let name = key.rsplit('/').next()?;
        Self::from_extension(name.rsplit_once('.')?.1)
    }

    /// A declared MIME type (parameters ignored, `image/jpg` accepted for JPEG).
    pub fn from_mime(mime: &str) -> Option<Self> {
        let m = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if m == "image/jpg" || m == "image/pjpeg" {
            return Some(ContentType::Jpeg);
        }
        Self::ALL.into_iter().find(|t| t.mime() == m)
    }

    /// What the bytes are.
    pub fn sniff(b: &[u8]) -> Sniffed {
        if b.starts_with(b"\x89PNG\r\n\x1a\n") {
            Sniffed::Known(ContentType::Png)
        } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Sniffed::Known(ContentType::Jpeg)
        } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
            Sniffed::Known(ContentType::Gif)
        } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
            Sniffed::Known(ContentType::Webp)
        } else if b.starts_with(b"%PDF-") {
            Sniffed::Known(ContentType::Pdf)
        } else if b.get(128..132) == Some(b"DICM") {
            Sniffed::Known(ContentType::Dicom)
        } else if let Some(kind) = executable(b) {
            Sniffed::Executable(kind)
        } else {
            Sniffed::Unknown
        }
    }
}

/// The verdict on a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Known(ContentType),
    Executable(&'static str),
    Unknown,
}

/// Program formats, named so the refusal can say what it saw.
fn executable(b: &[u8]) -> Option<&'static str> {
    let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b); // a UTF-8 BOM before a shebang
    const MAGICS: &[(&[u8], &str)] = &[
        (b"\x7FELF", "an ELF executable"),
        (b"MZ", "a Windows executable"),
        (b"#!", "a script"),
        (&[0xFE, 0xED, 0xFA, 0xCE], "a Mach-O executable"),
        (&[0xFE, 0xED, 0xFA, 0xCF], "a Mach-O executable"),
        (&[0xCE, 0xFA, 0xED, 0xFE], "a Mach-O executable"),
        (&[0xCF, 0xFA, 0xED, 0xFE], "a Mach-O executable"),
        (&[0xCA, 0xFE, 0xBA, 0xBE], "a Mach-O or Java class file"),
        (b"\0asm", "a WebAssembly module"),
    ];
    MAGICS.iter().find(|(m, _)| b.starts_with(m)).map(|(_, k)| *k)
}

/// What one use accepts: which types, and how many bytes at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub accepted: Vec<ContentType>,
    pub max_bytes: u64,
}

impl Policy {
    /// Chat images: PNG, JPEG, GIF, WebP.
    pub fn images(max_bytes: u64) -> Self {
        Policy { accepted: vec![ContentType::Png, ContentType::Jpeg, ContentType::Gif, ContentType::Webp], max_bytes }
    }

    /// Report files: PDF, images, DICOM.
    pub fn reports(max_bytes: u64) -> Self {
        Policy { accepted: ContentType::ALL.to_vec(), max_bytes }
    }

    /// Checks a file of `len` bytes starting with `head` (at least its first 132 bytes, if it
    /// has them) against this policy and the type the client declared (`None`, empty or
    /// `application/octet-stream`: no claim). Returns the type it really is.
    pub fn check(&self, head: &[u8], len: u64, declared: Option<&str>) -> Result<ContentType, ObjectError> {
        if len > self.max_bytes {
            return Err(ObjectError::TooLarge { max: self.max_bytes });
        }
        if len == 0 {
            return Err(ObjectError::Empty);
        }
        let actual = match ContentType::sniff(head) {
            Sniffed::Known(t) if self.accepted.contains(&t) => t,
            Sniffed::Executable(kind) => return Err(ObjectError::Executable(kind)),
            Sniffed::Known(_) | Sniffed::Unknown => {
                let accepted = self.accepted.iter().map(|t| t.mime()).collect::<Vec<_>>().join(", ");
                return Err(ObjectError::Unsupported { accepted });
            }
        };
        let declared = declared
            .map(str::trim)
            .filter(|d| !d.is_empty() && !d.to_ascii_lowercase().starts_with("application/octet-stream"));
        if let Some(d) = declared {
            if ContentType::from_mime(d) != Some(actual) {
                return Err(ObjectError::Mismatch { declared: d.chars().take(100).collect(), actual: actual.mime() });
            }
        }
        Ok(actual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(t: ContentType) -> Vec<u8> {
        let mut v = match t {
            ContentType::Png => b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            ContentType::Jpeg => vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'],
            ContentType::Gif => b"GIF89a\x01\0\x01\0".to_vec(),
            ContentType::Webp => b"RIFF\x24\0\0\0WEBPVP8 ".to_vec(),
            ContentType::Pdf => b"%PDF-1.7\n".to_vec(),
            ContentType::Dicom => {
                let mut d = vec![0u8; 128];
                d.extend_from_slice(b"DICM\x02\0\0\0");
                d
            }
        };
        v.resize(200, 0);
        v
    }

    #[test]
    fn each_type_is_recognised_by_its_bytes() {
        for t in ContentType::ALL {
            assert_eq!(ContentType::sniff(&sample(t)), Sniffed::Known(t), "{t:?}");
            assert_eq!(ContentType::from_mime(t.mime()), Some(t));
            assert_eq!(ContentType::of_key(&format!("a/b.{}", t.extension())), Some(t));
        }
        assert_eq!(ContentType::sniff(b"hello"), Sniffed::Unknown);
        assert_eq!(ContentType::sniff(b""), Sniffed::Unknown);
        assert_eq!(ContentType::from_mime("image/jpg; q=1"), Some(ContentType::Jpeg));
        assert_eq!(ContentType::of_key("a/noext"), None);
    }

    #[test]
    fn renamed_executables_are_refused() {
        let images = Policy::images(1 << 20);
        for (bytes, kind) in [
            (&b"\x7FELF\x02\x01\x01\0"[..], "an ELF executable"),
            (b"MZ\x90\0\x03\0", "a Windows executable"),
            (b"#!/bin/sh\nrm -rf /\n", "a script"),
            (b"\xEF\xBB\xBF#!/usr/bin/env python3\n", "a script"),
        ] {
            // Declared as a PNG, as a renamed file would be.
            match images.check(bytes, bytes.len() as u64, Some("image/png")) {
                Err(ObjectError::Executable(k)) => assert_eq!(k, kind),
                other => panic!("{kind}: {other:?}"),
            }
        }
    }

    #[test]
    fn policies_cap_size_and_pick_types() {
        let images = Policy::images(100);
        let png = sample(ContentType::Png);
        assert!(matches!(images.check(&png, 101, None), Err(ObjectError::TooLarge { max: 100 })));
        assert_eq!(images.check(&png, 100, None).unwrap(), ContentType::Png);
        assert!(matches!(images.check(&png, 0, None), Err(ObjectError::Empty)));
        let pdf = sample(ContentType::Pdf);
        assert!(matches!(images.check(&pdf, 10, None), Err(ObjectError::Unsupported { .. })), "no PDFs in chat");
        let reports = Policy::reports(1000);
        assert_eq!(reports.check(&pdf, 10, Some("application/pdf")).unwrap(), ContentType::Pdf);
        let dcm = sample(ContentType::Dicom);
        assert_eq!(reports.check(&dcm, 200, Some("application/octet-stream")).unwrap(), ContentType::Dicom);
        assert!(matches!(reports.check(b"plain text", 10, None), Err(ObjectError::Unsupported { .. })));
        assert!(
            matches!(reports.check(&png, 200, Some("image/jpeg")), Err(ObjectError::Mismatch { .. })),
            "a declared type that the content contradicts"
        );
    }
}
