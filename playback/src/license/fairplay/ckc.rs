//! CKC (content key context) building: the key server's answer to an SPC.
//!
//! Container (big-endian integers):
//!
//! ```text
//! offset  size  field
//! 0       4     version: 1
//! 4       4     reserved: 0
//! 8       16    IV of the payload (fresh random per CKC, passed in)
//! 24      4     payload length
//! 28      n     payload: TLLVs, AES-128-CBC, no padding
//! ```
//!
//! The payload key ties the CKC to its SPC: `AES-128-ECB(key = SHA-1(R1)[..16], anti-replay
//! seed)`. The payload carries:
//!
//! - the encrypted content key TLLV: content IV (16) || `AES-128-ECB(SK, content key)` (16);
//! - R1, echoed;
//! - every TLLV the SPC's return request named, byte for byte as the SPC carried it;
//! - the content key duration TLLV: lease (4) | rental (4) | key type (4) | `0x86d34a3a` (4),
//!   seconds, big-endian, mapped from the [`LicensePolicy`] by [`KeyDuration::for_policy`].
//!
//! That is the order of the CKCs in Apple's Server SDK samples; this layout and the payload key
//! were checked against those samples (SPCs parsed, CKCs decrypted and read) during development.
//!
//! The duration TLLV is always sent (the license policy must reach the device). Apple's reference
//! server only sends it when the SPC carries a media playback state TLLV, which every
//! lease/rental-capable client does.

use sha1::{Digest, Sha1};

use super::crypto::{cbc_encrypt_whole_blocks, ecb_encrypt_block};
use super::spc::Spc;
use super::tllv::{encoded_len, tag, write_tllv};
use crate::license::policy::{LicenseKind, LicensePolicy};

/// The CKC container version this builder writes.
pub const CKC_VERSION: u32 = 1;
/// Bytes before the payload.
pub const CKC_HEADER_LEN: usize = 28;
/// Fixed value of the duration TLLV's last field.
pub const KEY_DURATION_RESERVED: u32 = 0x86d34a3a;

/// What a content key may be used for, as the duration TLLV's key type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Valid for the lease duration; the device renews it while playing.
    Lease,
    /// Valid for the rental duration from delivery; not stored.
    Rental,
    LeaseAndRental,
    /// May be stored; no expiry.
    Persistence,
    /// May be stored; expires after the rental duration.
    PersistenceAndDuration,
}

impl KeyType {
    /// The wire value.
    pub fn as_u32(self) -> u32 {
        match self {
            KeyType::Lease => 0x1a4bde7e,
            KeyType::Rental => 0x3dfe45a0,
            KeyType::LeaseAndRental => 0x27b59bde,
            KeyType::Persistence => 0x3df2d9fb,
            KeyType::PersistenceAndDuration => 0x18f06048,
        }
    }

    /// Parses [`KeyType::as_u32`].
    pub fn from_u32(value: u32) -> Option<KeyType> {
        [
            KeyType::Lease,
            KeyType::Rental,
            KeyType::LeaseAndRental,
            KeyType::Persistence,
            KeyType::PersistenceAndDuration,
        ]
        .into_iter()
        .find(|kind| kind.as_u32() == value)
    }
}

/// The content key duration TLLV's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDuration {
    pub lease_secs: u32,
    pub rental_secs: u32,
    pub key_type: KeyType,
}

impl KeyDuration {
    /// The duration a license policy maps to:
    ///
    /// | policy     | key type                   | rental duration   | lease duration |
    /// |------------|----------------------------|-------------------|----------------|
    /// | rental     | `Rental` (`0x3dfe45a0`)    | `duration_secs`   | 0              |
    /// | persistent | `PersistenceAndDuration` (`0x18f06048`) | `duration_secs` | 0   |
    ///
    /// A rental key lives `duration_secs` from delivery and is not stored. A persistent key may
    /// be stored offline and expires `duration_secs` after delivery, the same instant the
    /// license record's `expiresAt` names. No lease is used: the edge issues a fresh CKC per
    /// playback session instead of renewing. Durations beyond `u32::MAX` seconds (136 years)
    /// saturate.
    pub fn for_policy(policy: &LicensePolicy) -> KeyDuration {
        let secs = u32::try_from(policy.duration_secs).unwrap_or(u32::MAX);
        let key_type = match policy.kind {
            LicenseKind::Rental => KeyType::Rental,
            LicenseKind::Persistent => KeyType::PersistenceAndDuration,
        };
        KeyDuration {
            lease_secs: 0,
            rental_secs: secs,
            key_type,
        }
    }

    /// The TLLV value.
    pub fn to_value(&self) -> [u8; 16] {
        let mut value = [0u8; 16];
        value[..4].copy_from_slice(&self.lease_secs.to_be_bytes());
        value[4..8].copy_from_slice(&self.rental_secs.to_be_bytes());
        value[8..12].copy_from_slice(&self.key_type.as_u32().to_be_bytes());
        value[12..].copy_from_slice(&KEY_DURATION_RESERVED.to_be_bytes());
        value
    }

    /// Parses [`KeyDuration::to_value`]; `None` unless 16 bytes with a known key type and the
    /// reserved value.
    pub fn from_value(value: &[u8]) -> Option<KeyDuration> {
        let value: &[u8; 16] = value.try_into().ok()?;
        let field = |at: usize| {
            value
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
        };
        if field(12)? != KEY_DURATION_RESERVED {
            return None;
        }
        Some(KeyDuration {
            lease_secs: field(0)?,
            rental_secs: field(4)?,
            key_type: KeyType::from_u32(field(8)?)?,
        })
    }
}

/// Builds the CKC answering `spc`: `content_key` and `content_iv` for the asset it names, the
/// duration `policy` maps to, and `ckc_iv`, 16 fresh random bytes from the caller's CSPRNG.
///
/// Cannot fail: everything variable was validated when the SPC was parsed.
pub fn build_ckc(
    spc: &Spc,
    content_key: &[u8; 16],
    content_iv: &[u8; 16],
    policy: &LicensePolicy,
    ckc_iv: [u8; 16],
) -> Vec<u8> {
    let mut encrypted_key = [0u8; 32];
    encrypted_key[..16].copy_from_slice(content_iv);
    encrypted_key[16..].copy_from_slice(&ecb_encrypt_block(spc.session_key(), content_key));
    let duration = KeyDuration::for_policy(policy).to_value();

    let payload_len = encoded_len(encrypted_key.len())
        + encoded_len(spc.r1().len())
        + encoded_len(duration.len())
        + spc
            .returned_tllvs()
            .iter()
            .map(|t| encoded_len(t.value.len()))
            .sum::<usize>();
    let mut out = Vec::with_capacity(CKC_HEADER_LEN + payload_len);
    out.extend_from_slice(&CKC_VERSION.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&ckc_iv);
    // A validated SPC is at most 16 KiB, so its echoed TLLVs fit a 32-bit length.
    out.extend_from_slice(&u32::try_from(payload_len).unwrap_or(u32::MAX).to_be_bytes());

    let mut payload = Vec::with_capacity(payload_len);
    write_tllv(&mut payload, tag::ENCRYPTED_CONTENT_KEY, &encrypted_key);
    write_tllv(&mut payload, tag::R1, spc.r1());
    for returned in spc.returned_tllvs() {
        write_tllv(&mut payload, returned.tag, &returned.value);
    }
    write_tllv(&mut payload, tag::CONTENT_KEY_DURATION, &duration);
    debug_assert_eq!(payload.len(), payload_len);

    let key = payload_key(spc.r1(), spc.anti_replay_seed());
    cbc_encrypt_whole_blocks(&key, &ckc_iv, &mut payload);
    out.extend_from_slice(&payload);
    out
}

/// The CKC payload key: the anti-replay seed encrypted under the first 16 bytes of SHA-1(R1).
pub(crate) fn payload_key(r1: &[u8], anti_replay_seed: &[u8; 16]) -> [u8; 16] {
    let digest = Sha1::digest(r1);
    let mut r1_key = [0u8; 16];
    r1_key.copy_from_slice(&digest[..16]);
    ecb_encrypt_block(&r1_key, anti_replay_seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_round_trip() {
        for kind in [
            KeyType::Lease,
            KeyType::Rental,
            KeyType::LeaseAndRental,
            KeyType::Persistence,
            KeyType::PersistenceAndDuration,
        ] {
            assert_eq!(KeyType::from_u32(kind.as_u32()), Some(kind));
        }
        assert_eq!(KeyType::from_u32(0), None);
    }

    #[test]
    fn policies_map_to_durations() {
        let rental = KeyDuration::for_policy(&LicensePolicy::DEFAULT);
        assert_eq!(
            rental,
            KeyDuration {
                lease_secs: 0,
                rental_secs: 3600,
                key_type: KeyType::Rental
            }
        );
        let persistent = KeyDuration::for_policy(&LicensePolicy {
            kind: LicenseKind::Persistent,
            duration_secs: 86_400 * 30,
        });
        assert_eq!(persistent.key_type, KeyType::PersistenceAndDuration);
        assert_eq!(persistent.rental_secs, 2_592_000);
        let forever = KeyDuration::for_policy(&LicensePolicy {
            kind: LicenseKind::Rental,
            duration_secs: u64::MAX,
        });
        assert_eq!(forever.rental_secs, u32::MAX);
    }

    #[test]
    fn duration_value_layout_and_parse() {
        let duration = KeyDuration {
            lease_secs: 1,
            rental_secs: 0x0102_0304,
            key_type: KeyType::Rental,
        };
        let value = duration.to_value();
        assert_eq!(hex::encode(value), "00000001010203043dfe45a086d34a3a");
        assert_eq!(KeyDuration::from_value(&value), Some(duration));
        let mut bad_reserved = value;
        bad_reserved[15] ^= 1;
        assert_eq!(KeyDuration::from_value(&bad_reserved), None);
        let mut bad_type = value;
        bad_type[8] ^= 1;
        assert_eq!(KeyDuration::from_value(&bad_type), None);
        assert_eq!(KeyDuration::from_value(&value[..15]), None);
    }
}
