//! `pssh` boxes (ISO/IEC 23001-7 §8.1) and the DRM-specific data inside them.
//!
//! ```text
//! pssh box:  u32 size | "pssh" | u8 version | u24 flags (0) | 16-byte SystemID
//!            [version 1: u32 KID_count | KID_count × 16-byte KID]
//!            u32 DataSize | Data
//! ```
//!
//! - Widevine ([`widevine_pssh`]): version 0, Data = a `WidevinePsshData` protobuf with
//!   `key_ids` (2), `provider` (3), `content_id` (4), `crypto_period_index` (7) and
//!   `protection_scheme` (9, the scheme's fourcc; omitted for `cenc`, as Shaka Packager does).
//! - PlayReady ([`playready_pssh`]): version 0, Data = a PlayReady Object ([`playready_object`])
//!   whose one record (type 1) is a WRMHEADER 4.3 ([`wrm_header`]) in UTF-16LE: `KIDS/KID`
//!   with `ALGID` `AESCTR` (`cenc`, `cens`) or `AESCBC` (`cbcs`, `cbc1`, which needs 4.3) and
//!   `VALUE` = base64 of the kid as a little-endian GUID, and the `LA_URL` when configured. The
//!   optional `CHECKSUM` is left out.
//! - W3C common system ([`common_pssh`]): version 1, key ids only, no Data
//!   (<https://www.w3.org/TR/eme-initdata-cenc/>).
//!
//! Version 0 for Widevine and PlayReady keeps the boxes readable by every CDM in the field;
//! the kids they protect are inside their Data.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{DrmSystemKind, EncryptionScheme, KeyId};

/// The WRMHEADER namespace.
pub const PLAYREADY_HEADER_NS: &str = "http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader";

/// Builds a `pssh` box: version 1 when `kids` is given, version 0 otherwise.
pub fn pssh_box(system_id: &[u8; 16], kids: Option<&[KeyId]>, data: &[u8]) -> Vec<u8> {
    let kid_bytes = kids.map_or(0, |k| 4 + 16 * k.len());
    let size = 8 + 4 + 16 + kid_bytes + 4 + data.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(size as u32).to_be_bytes());
    out.extend_from_slice(b"pssh");
    out.push(u8::from(kids.is_some()));
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(system_id);
    if let Some(kids) = kids {
        out.extend_from_slice(&(kids.len() as u32).to_be_bytes());
        for kid in kids {
            out.extend_from_slice(&kid.0);
        }
    }
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// A parsed `pssh` box (for checks and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsshBox {
    pub version: u8,
    pub system_id: [u8; 16],
    pub kids: Vec<KeyId>,
    pub data: Vec<u8>,
}

/// Parses one `pssh` box occupying all of `bytes`; `None` on any inconsistency.
pub fn parse_pssh_box(bytes: &[u8]) -> Option<PsshBox> {
    let take = |at: usize, n: usize| bytes.get(at..at.checked_add(n)?);
    let u32_at = |at: usize| take(at, 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if u32_at(0)? as usize != bytes.len() || take(4, 4)? != b"pssh" {
        return None;
    }
    let version = *bytes.get(8)?;
    if version > 1 || take(9, 3)? != [0, 0, 0] {
        return None;
    }
    let system_id: [u8; 16] = take(12, 16)?.try_into().ok()?;
    let mut at = 28;
    let mut kids = Vec::new();
    if version == 1 {
        let count = u32_at(at)? as usize;
        at += 4;
        if count > (bytes.len() - at) / 16 {
            return None;
        }
        for _ in 0..count {
            kids.push(KeyId(take(at, 16)?.try_into().ok()?));
            at += 16;
        }
    }
    let len = u32_at(at)? as usize;
    at += 4;
    let data = take(at, len)?.to_vec();
    if at + len != bytes.len() {
        return None;
    }
    Some(PsshBox {
        version,
        system_id,
        kids,
        data,
    })
}

/// The fields of a `WidevinePsshData` message this key provider sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WidevinePsshData {
    pub key_ids: Vec<KeyId>,
    pub provider: Option<String>,
    pub content_id: Vec<u8>,
    pub crypto_period_index: Option<u32>,
    /// Left out for `cenc` (the default a CDM assumes).
    pub protection_scheme: Option<EncryptionScheme>,
}

impl WidevinePsshData {
    /// Protobuf encoding, fields in number order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for kid in &self.key_ids {
            bytes_field(&mut out, 2, &kid.0);
        }
        if let Some(provider) = &self.provider {
            bytes_field(&mut out, 3, provider.as_bytes());
        }
        if !self.content_id.is_empty() {
            bytes_field(&mut out, 4, &self.content_id);
        }
        if let Some(index) = self.crypto_period_index {
            varint_field(&mut out, 7, u64::from(index));
        }
        if let Some(scheme) = self
            .protection_scheme
            .filter(|s| *s != EncryptionScheme::Cenc)
        {
            varint_field(&mut out, 9, u64::from(scheme.fourcc()));
        }
        out
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    varint(out, field << 3);
    varint(out, value);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, value: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// A Widevine `pssh` box (version 0).
pub fn widevine_pssh(data: &WidevinePsshData) -> Vec<u8> {
    pssh_box(
        &DrmSystemKind::Widevine.system_id_bytes(),
        None,
        &data.encode(),
    )
}

/// A common-system `pssh` box (version 1, kids only).
pub fn common_pssh(kids: &[KeyId]) -> Vec<u8> {
    pssh_box(
        &DrmSystemKind::CommonSystem.system_id_bytes(),
        Some(kids),
        &[],
    )
}

/// A PlayReady `pssh` box (version 0) around a PlayReady Object.
pub fn playready_pssh(pro: &[u8]) -> Vec<u8> {
    pssh_box(&DrmSystemKind::PlayReady.system_id_bytes(), None, pro)
}

/// A kid as the little-endian GUID PlayReady uses (first three fields byte-swapped).
pub fn guid_le(kid: &KeyId) -> [u8; 16] {
    let b = kid.0;
    [
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ]
}

/// A WRMHEADER 4.3 naming `kids` (`ALGID` from `scheme`) and, if given, the license URL.
/// `la_url` is XML-escaped here.
pub fn wrm_header(kids: &[KeyId], scheme: EncryptionScheme, la_url: Option<&str>) -> String {
    let alg = if scheme.is_cbc() { "AESCBC" } else { "AESCTR" };
    let mut out = format!(
        "<WRMHEADER xmlns=\"{PLAYREADY_HEADER_NS}\" version=\"4.3.0.0\"><DATA><PROTECTINFO><KIDS>"
    );
    for kid in kids {
        out.push_str(&format!(
            "<KID ALGID=\"{alg}\" VALUE=\"{}\"></KID>",
            STANDARD.encode(guid_le(kid))
        ));
    }
    out.push_str("</KIDS></PROTECTINFO>");
    if let Some(url) = la_url {
        out.push_str("<LA_URL>");
        out.push_str(&super::build::escape_xml(url));
        out.push_str("</LA_URL>");
    }
    out.push_str("</DATA></WRMHEADER>");
    out
}

/// A PlayReady Object with one rights-management-header record; `None` when the header is
/// too long for the record's 16-bit length.
pub fn playready_object(wrm_header: &str) -> Option<Vec<u8>> {
    let header: Vec<u8> = wrm_header
        .encode_utf16()
        .flat_map(|unit| unit.to_le_bytes())
        .collect();
    let record_len = u16::try_from(header.len()).ok()?;
    let total = u32::try_from(10 + header.len()).ok()?;
    let mut out = Vec::with_capacity(10 + header.len());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // record count
    out.extend_from_slice(&1u16.to_le_bytes()); // type 1: rights management header
    out.extend_from_slice(&record_len.to_le_bytes());
    out.extend_from_slice(&header);
    Some(out)
}

/// The WRMHEADER inside a PlayReady Object built by [`playready_object`] (for checks and
/// tests); `None` on any inconsistency.
pub fn parse_playready_object(pro: &[u8]) -> Option<String> {
    let total = u32::from_le_bytes(pro.get(0..4)?.try_into().ok()?) as usize;
    if total != pro.len() || pro.get(4..6)? != [1, 0] || pro.get(6..8)? != [1, 0] {
        return None;
    }
    let len = u16::from_le_bytes(pro.get(8..10)?.try_into().ok()?) as usize;
    let header = pro.get(10..10 + len)?;
    if 10 + len != pro.len() || len & 1 == 1 {
        return None;
    }
    let units: Vec<u16> = header
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}
