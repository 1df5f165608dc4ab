//! The envelope content keys rest and travel in.
//!
//! A 16-byte AES-128 content key is sealed with AES-256-GCM under a 32-byte key-encryption key.
//! The associated data binds the envelope to its purpose, title and key id, so an envelope cannot
//! be replayed for another title, and an at-rest envelope (database) is never accepted where a
//! transport envelope (control plane -> edge) is expected, or the reverse.
//!
//! Wire form: `v1.` + base64url(nonce[12] || ciphertext[16] || tag[16]), no padding.
//! The nonce is passed in (random, from the caller's CSPRNG); this crate never draws randomness.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Length of a key-encryption key.
pub const KEK_LEN: usize = 32;
/// Length of an AES-128 content key.
pub const CONTENT_KEY_LEN: usize = 16;
/// Length of the GCM nonce.
pub const NONCE_LEN: usize = 12;

const PREFIX: &str = "v1.";
const SEALED_LEN: usize = NONCE_LEN + CONTENT_KEY_LEN + 16;
const MAX_WRAPPED_LEN: usize = 128;

/// Where an envelope is meant to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Stored in the database or Redis, under the custody backend's master key.
    AtRest,
    /// Sent from the control plane to an edge, under the shared transport key.
    Transport,
}

/// What an envelope is bound to.
#[derive(Debug, Clone, Copy)]
pub struct KeyBinding<'a> {
    pub purpose: Purpose,
    pub video_id: &'a str,
    pub key_id: &'a str,
}

/// Why an envelope was refused. Deliberately says nothing about the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyWrapError {
    #[error("the wrapped key is not in the v1 envelope format")]
    Malformed,
    #[error("the wrapped key does not open under this key and binding")]
    Unauthentic,
}

/// Seals `content_key` for `binding` under `kek` with `nonce`.
pub fn wrap(
    kek: &[u8; KEK_LEN],
    nonce: &[u8; NONCE_LEN],
    content_key: &[u8; CONTENT_KEY_LEN],
    binding: &KeyBinding,
) -> String {
    let cipher = Aes256Gcm::new(kek.into());
    let aad = associated_data(binding);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: content_key,
                aad: aad.as_bytes(),
            },
        )
        .expect("AES-GCM sealing a 16-byte message cannot fail");
    let mut blob = Vec::with_capacity(SEALED_LEN);
    blob.extend_from_slice(nonce);
    blob.extend_from_slice(&sealed);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(blob))
}

/// Opens an envelope made by [`wrap`] with the same `kek` and `binding`.
pub fn unwrap(
    kek: &[u8; KEK_LEN],
    wrapped: &str,
    binding: &KeyBinding,
) -> Result<[u8; CONTENT_KEY_LEN], KeyWrapError> {
    if wrapped.len() > MAX_WRAPPED_LEN {
        return Err(KeyWrapError::Malformed);
    }
    let body = wrapped
        .strip_prefix(PREFIX)
        .ok_or(KeyWrapError::Malformed)?;
    let blob = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| KeyWrapError::Malformed)?;
    if blob.len() != SEALED_LEN {
        return Err(KeyWrapError::Malformed);
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(kek.into());
    let aad = associated_data(binding);
    let key = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| KeyWrapError::Unauthentic)?;
    key.try_into().map_err(|_| KeyWrapError::Malformed)
}

fn associated_data(binding: &KeyBinding) -> String {
    let purpose = match binding.purpose {
        Purpose::AtRest => "at-rest",
        Purpose::Transport => "transport",
    };
    // Lengths prefix each field so no choice of ids can make two bindings collide.
    format!(
        "streaming-edge/keywrap/v1|{purpose}|{}:{}|{}:{}",
        binding.video_id.len(),
        binding.video_id,
        binding.key_id.len(),
        binding.key_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEK: [u8; KEK_LEN] = [7; KEK_LEN];
    const KEY: [u8; CONTENT_KEY_LEN] = *b"0123456789abcdef";
    const NONCE: [u8; NONCE_LEN] = [1; NONCE_LEN];

    fn binding(purpose: Purpose) -> KeyBinding<'static> {
        KeyBinding {
            purpose,
            video_id: "video-1",
            key_id: "key-1",
        }
    }

    #[test]
    fn round_trip() {
        let w = wrap(&KEK, &NONCE, &KEY, &binding(Purpose::AtRest));
        assert!(w.starts_with("v1."));
        assert!(!w.contains("0123456789abcdef"));
        assert_eq!(unwrap(&KEK, &w, &binding(Purpose::AtRest)), Ok(KEY));
    }

    #[test]
    fn binding_is_enforced() {
        let w = wrap(&KEK, &NONCE, &KEY, &binding(Purpose::AtRest));
        assert_eq!(
            unwrap(&KEK, &w, &binding(Purpose::Transport)),
            Err(KeyWrapError::Unauthentic)
        );
        let other_video = KeyBinding {
            video_id: "video-2",
            ..binding(Purpose::AtRest)
        };
        assert_eq!(
            unwrap(&KEK, &w, &other_video),
            Err(KeyWrapError::Unauthentic)
        );
        let other_key = KeyBinding {
            key_id: "key-2",
            ..binding(Purpose::AtRest)
        };
        assert_eq!(unwrap(&KEK, &w, &other_key), Err(KeyWrapError::Unauthentic));
        assert_eq!(
            unwrap(&[8; KEK_LEN], &w, &binding(Purpose::AtRest)),
            Err(KeyWrapError::Unauthentic)
        );
    }

    #[test]
    fn malformed_envelopes() {
        let b = binding(Purpose::AtRest);
        for bad in [
            "",
            "v1.",
            "v2.AAAA",
            "v1.!!!!",
            "v1.AAAA",
            &"v1.".repeat(100),
        ] {
            assert_eq!(unwrap(&KEK, bad, &b), Err(KeyWrapError::Malformed), "{bad}");
        }
        let mut w = wrap(&KEK, &NONCE, &KEY, &b).into_bytes();
        let i = w.len() - 3;
        w[i] = if w[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            unwrap(&KEK, std::str::from_utf8(&w).unwrap(), &b),
            Err(KeyWrapError::Unauthentic)
        );
    }
}
