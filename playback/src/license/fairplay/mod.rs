//! Apple FairPlay Streaming (FPS) key server formats: SPC parsing and CKC building.
//!
//! A device playing FPS content sends an SPC (server playback context) naming the asset; the key
//! server answers with a CKC (content key context) carrying the content key encrypted for that
//! device session. This module speaks both formats, sans-IO: credentials, the session-key
//! derivation and all randomness come in as arguments.
//!
//! ```text
//! let creds = FairPlayCredentials::from_pem_and_der(key_pem, cert_der, ask)?;  // once
//! let spc = parse_spc(&creds, &derivation, body, &blinding_seed)?;            // per request
//! let key_id = spc.asset_id_str();  // content key id (UUID): look the key up, check entitlement
//! let ckc = build_ckc(&spc, &content_key, &content_iv, &policy, ckc_iv);
//! ```
//!
//! - [`credentials`]: the FPS certificate (served by `GET /fps/certificate`), private key and
//!   ASk; `Debug` is redacted.
//! - [`derivation`]: [`SessionKeyDerivation`], the pluggable `DASk = D(ASk, R2)` step Apple's
//!   deployment package supplies, and [`DevelopmentDerivation`], a documented stand-in that is
//!   **not Apple's** (fine for tests and development, useless with real Apple devices).
//! - [`spc`]: [`parse_spc`]: container checks (size bound [`MAX_SPC_BYTES`], version, certificate
//!   hash compared in constant time), RSA-OAEP unwrap of the SPC key (blinded), AES-CBC payload,
//!   TLLVs (lengths, block padding, duplicates, required tags), `[SK..R1]` decryption and its
//!   integrity check. Every refusal is an [`SpcError`] with a stable [`SpcError::code`].
//! - [`ckc`]: [`build_ckc`]: content key and IV under the session key, R1 echo, the TLLVs the
//!   return request names, a key-duration TLLV from the license policy
//!   ([`KeyDuration::for_policy`] documents the mapping), payload AES-CBC under the anti-replay
//!   key with the caller's IV.
//! - [`tllv`]: the TLLV block format and tag values.
//! - `device` (feature `test-support`, and in this crate's tests): an SPC builder and CKC opener
//!   playing the device, plus self-generated test credentials.
//!
//! [`parse_spc`] takes a `blinding_seed` (32 fresh random bytes) because the RSA private-key
//! operation is blinded and this crate draws no randomness. [`build_ckc`] needs nothing from the
//! credentials and has no failure mode left once the SPC parsed, so it returns the bytes.
//!
//! Scope: SPC versions 1 and 2 (1024- and 2048-bit certificates) and CKC version 1, the format
//! Apple documents for FPS key servers. Apple's newer Server SDKs build the content key TLLV
//! inside their prebuilt crypto library (and add SPC v3, offline-key and HDCP/security-level
//! TLLVs); supporting those means plugging Apple's library in, as for D.

// `usize::is_multiple_of` needs Rust 1.87; the workspace's MSRV is 1.85.
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

pub mod ckc;
pub mod credentials;
mod crypto;
pub mod derivation;
#[cfg(any(test, feature = "test-support"))]
pub mod device;
pub mod spc;
pub mod tllv;

#[cfg(test)]
mod tests;

pub use ckc::{build_ckc, KeyDuration, KeyType};
pub use credentials::{CredentialsError, FairPlayCredentials};
pub use derivation::{DerivationError, DevelopmentDerivation, SessionKeyDerivation};
pub use spc::{parse_spc, Spc, SpcError, MAX_SPC_BYTES};
pub use tllv::Tllv;
