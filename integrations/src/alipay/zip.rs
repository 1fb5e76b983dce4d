//! The little of the ZIP format (PKWARE APPNOTE 6.3) that Alipay's bill archives use: stored or
//! deflated entries, no encryption, no ZIP64, entry names in GBK without the UTF-8 flag (bit 11)
//! as Alipay writes them (`20886xxx_20240105_业务明细.csv`). Written here rather than pulled in
//! as a crate because those GBK names are exactly what general ZIP crates get wrong, and the
//! python cross-check reads our archives with its own `zipfile`.

use std::io::{Read, Write};

use encoding_rs::GBK;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;

use crate::bill::BillError;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_UTF8_NAME: u16 = 1 << 11;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
/// A bill is a few MiB at most; anything inflating past this is refused (a zip bomb, or not a
/// bill).
pub const MAX_ENTRY_BYTES: usize = 256 << 20;

/// One file inside an archive, its name already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub data: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, BillError> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or_else(truncated)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BillError> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(truncated)
}

fn truncated() -> BillError {
    BillError("zip archive is truncated".into())
}

/// Writes entries, deflated, names in GBK (a name GBK cannot encode is an error, not a `?`).
pub fn write(entries: &[Entry]) -> Result<Vec<u8>, BillError> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    // 2024-01-01 00:00 in DOS form: a fixed stamp keeps archives reproducible.
    let (dos_time, dos_date): (u16, u16) = (0, (44 << 9) | (1 << 5) | 1);
    for entry in entries {
        let (name, _, unmappable) = GBK.encode(&entry.name);
        if unmappable {
            return Err(BillError(format!("entry name {:?} is not GBK", entry.name)));
        }
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&entry.data).map_err(|e| BillError(e.to_string()))?;
        let compressed = encoder.finish().map_err(|e| BillError(e.to_string()))?;
        let crc = crc32fast::hash(&entry.data);
        let too_big = |_| BillError("entry over 4 GiB".into());
        let csize = u32::try_from(compressed.len()).map_err(too_big)?;
        let usize_ = u32::try_from(entry.data.len()).map_err(too_big)?;
        let offset = u32::try_from(out.len()).map_err(|_| BillError("archive over 4 GiB".into()))?;
        let name_len = u16::try_from(name.len()).map_err(|_| BillError("entry name too long".into()))?;

        out.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
        for v in [20u16, 0, METHOD_DEFLATED, dos_time, dos_date] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, csize, usize_] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&name);
        out.extend_from_slice(&compressed);

        central.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
        for v in [20u16, 20, 0, METHOD_DEFLATED, dos_time, dos_date] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, csize, usize_] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [name_len, 0, 0, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&name);
    }
    let cd_offset = u32::try_from(out.len()).map_err(|_| BillError("archive over 4 GiB".into()))?;
    let cd_size = u32::try_from(central.len()).map_err(|_| BillError("directory over 4 GiB".into()))?;
    let count = u16::try_from(entries.len()).map_err(|_| BillError("too many entries".into()))?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&END_OF_CENTRAL_DIRECTORY.to_le_bytes());
    for v in [0u16, 0, count, count] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

/// Reads every entry through the central directory, checking each CRC-32.
pub fn read(archive: &[u8]) -> Result<Vec<Entry>, BillError> {
    // The end record is the last 22 bytes plus a comment of up to 64 KiB.
    let search_from = archive.len().saturating_sub(22 + 0xFFFF);
    let eocd = (search_from..archive.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(archive, i).ok() == Some(END_OF_CENTRAL_DIRECTORY))
        .ok_or_else(|| BillError("not a zip archive (no end of central directory)".into()))?;
    let count = usize::from(u16_at(archive, eocd + 10)?);
    let mut at = usize::try_from(u32_at(archive, eocd + 16)?).map_err(|_| truncated())?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        if u32_at(archive, at)? != CENTRAL_HEADER {
            return Err(BillError("corrupt zip central directory".into()));
        }
        let flags = u16_at(archive, at + 8)?;
        let method = u16_at(archive, at + 10)?;
        let crc = u32_at(archive, at + 16)?;
        let csize = u32_at(archive, at + 20)?;
        let usize_ = u32_at(archive, at + 24)?;
        let name_len = usize::from(u16_at(archive, at + 28)?);
        let extra_len = usize::from(u16_at(archive, at + 30)?);
        let comment_len = usize::from(u16_at(archive, at + 32)?);
        let local = usize::try_from(u32_at(archive, at + 42)?).map_err(|_| truncated())?;
        let raw_name = archive.get(at + 46..at + 46 + name_len).ok_or_else(truncated)?;
        at += 46 + name_len + extra_len + comment_len;

        if flags & FLAG_ENCRYPTED != 0 {
            return Err(BillError("encrypted zip entries are not supported".into()));
        }
        if csize == u32::MAX || usize_ == u32::MAX {
            return Err(BillError("ZIP64 archives are not supported".into()));
        }
        let name = if flags & FLAG_UTF8_NAME != 0 {
            String::from_utf8(raw_name.to_vec()).map_err(|_| BillError("entry name is not UTF-8".into()))?
        } else {
            let (name, _, malformed) = GBK.decode(raw_name);
            if malformed {
                return Err(BillError("entry name is not GBK".into()));
            }
            name.into_owned()
        };
        if u32_at(archive, local)? != LOCAL_HEADER {
            return Err(BillError(format!("corrupt local header for {name}")));
        }
        let start = local + 30 + usize::from(u16_at(archive, local + 26)?) + usize::from(u16_at(archive, local + 28)?);
        let size = usize::try_from(csize).map_err(|_| truncated())?;
        let compressed = archive.get(start..start + size).ok_or_else(truncated)?;
        let expected = usize::try_from(usize_).map_err(|_| truncated())?;
        if expected > MAX_ENTRY_BYTES {
            return Err(BillError(format!("{name} is larger than {MAX_ENTRY_BYTES} bytes")));
        }
        let data = match method {
            METHOD_STORED => compressed.to_vec(),
            METHOD_DEFLATED => {
                let mut data = Vec::with_capacity(expected);
                // One byte past the announced size tells a lying header from an honest one.
                DeflateDecoder::new(compressed)
                    .take(expected as u64 + 1)
                    .read_to_end(&mut data)
                    .map_err(|e| BillError(format!("{name}: {e}")))?;
                data
            }
            other => return Err(BillError(format!("{name}: unsupported compression method {other}"))),
        };
        if data.len() != expected || crc32fast::hash(&data) != crc {
            return Err(BillError(format!("{name}: size or CRC-32 does not match (damaged archive)")));
        }
        entries.push(Entry { name, data });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_gbk_names_and_detects_damage() {
        let entries = vec![
            Entry { name: "2088_20240105_业务明细.csv".into(), data: "交易,12.50\r\n".repeat(50).into_bytes() },
            Entry { name: "empty.csv".into(), data: Vec::new() },
        ];
        let archive = write(&entries).unwrap();
        assert_eq!(read(&archive).unwrap(), entries);
        // The name is stored as GBK bytes, not UTF-8.
        let (gbk, _, _) = GBK.encode("业务明细");
        assert!(archive.windows(gbk.len()).any(|w| w == &gbk[..]));

        let mut damaged = archive.clone();
        damaged[60] ^= 0xFF;
        assert!(read(&damaged).is_err());
        assert!(read(&archive[..archive.len() - 30]).is_err());
        assert!(read(b"PK not really").is_err());
        assert!(write(&[Entry { name: "😀.csv".into(), data: vec![] }]).is_err());
    }
}
