//! TLLV blocks: the tag–length–length–value records SPC and CKC payloads are made of.
//!
//! Layout of one block (all integers big-endian):
//!
//! ```text
//! tag (8) | block length (4) | value length (4) | value | padding
//! ```
//!
//! The block length counts the value plus its padding and is a multiple of 16, so every block
//! (16-byte header included) keeps the payload aligned to the AES block size. Padding bytes carry
//! no meaning; this crate writes zeros (the payload is encrypted, so their value is not visible).

use std::fmt;

/// Length of the tag + block length + value length header.
pub const HEADER_LEN: usize = 16;

/// Tag values, as FairPlay Streaming defines them.
pub mod tag {
    // Sent by the device in the SPC.
    /// `[SK..R1]`: IV + the session key, HU, R1 and integrity bytes encrypted under DASk.
    pub const SESSION_KEY_R1: u64 = 0x3d1a10b8bffac2ec;
    /// The integrity bytes the decrypted `[SK..R1]` block must reproduce.
    pub const SESSION_KEY_R1_INTEGRITY: u64 = 0xb349d4809e910687;
    /// Anti-replay seed; with R1 it keys the CKC payload.
    pub const ANTI_REPLAY_SEED: u64 = 0x89c90f12204106b2;
    /// R2, the input to the session-key derivation (Apple's D function).
    pub const R2: u64 = 0x71b5595ac1521133;
    /// Tags the device wants echoed in the CKC, 8 bytes each.
    pub const RETURN_REQUEST: u64 = 0x19f9d4e5ab7609cb;
    /// The asset id the app passed (here: the content key id as a UUID string).
    pub const ASSET_ID: u64 = 0x1bf7f53f5d5d5a1f;
    /// 8-byte transaction id.
    pub const TRANSACTION_ID: u64 = 0x47aa7ad3440577de;
    /// Protocol versions the device supports, 4 bytes each.
    pub const PROTOCOL_VERSIONS_SUPPORTED: u64 = 0x67b8fb79ecce1a13;
    /// The protocol version this SPC uses.
    pub const PROTOCOL_VERSION_USED: u64 = 0x5d81bcbcc7f61703;
    /// Where the content goes (e.g. AirPlay); 8 bytes.
    pub const STREAMING_INDICATOR: u64 = 0xabb0256a31843974;
    /// Creation date, playback state and session id; 16 bytes. Present on lease/rental-aware
    /// clients.
    pub const MEDIA_PLAYBACK_STATE: u64 = 0xeb8efdf2b25ab3a0;
    /// Client capability flags; 16 bytes, flags in the last 8.
    pub const CAPABILITIES: u64 = 0x9c02af3253c07fb2;

    // Sent by the key server in the CKC.
    /// Content IV + the content key encrypted under the session key.
    pub const ENCRYPTED_CONTENT_KEY: u64 = 0x58b38165af0e3d5a;
    /// R1, echoed back so the device can tie the CKC to its SPC.
    pub const R1: u64 = 0xea74c4645d5efee9;
    /// Lease and rental durations and the key type.
    pub const CONTENT_KEY_DURATION: u64 = 0x47acf6a418cd091a;
}

/// One parsed TLLV: its tag and value (padding dropped).
#[derive(Clone, PartialEq, Eq)]
pub struct Tllv {
    pub tag: u64,
    pub value: Vec<u8>,
}

impl fmt::Debug for Tllv {
    // Values can be key material (the R1 echo, the wrapped content key): lengths only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tllv")
            .field("tag", &format_args!("{:#018x}", self.tag))
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// Why a TLLV sequence does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TllvError {
    #[error("a TLLV header is cut short")]
    TruncatedHeader,
    #[error("a TLLV block runs past the end of the payload")]
    BlockOverrun,
    #[error("a TLLV value is longer than its block")]
    ValueExceedsBlock,
    #[error("a TLLV block length is not a multiple of 16 bytes")]
    Misaligned,
}

/// Parses a whole payload of back-to-back TLLVs.
///
/// Every length is checked against what is left before anything is sliced, so no input panics.
pub fn parse_tllvs(payload: &[u8]) -> Result<Vec<Tllv>, TllvError> {
    let mut tllvs = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (header, after_header) = rest
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(TllvError::TruncatedHeader)?;
        let (tag_bytes, lengths) = header.split_at(8);
        let (block_bytes, value_bytes) = lengths.split_at(4);
        let tag = u64::from_be_bytes(
            tag_bytes
                .try_into()
                .map_err(|_| TllvError::TruncatedHeader)?,
        );
        let block_len = be_u32(block_bytes)? as usize;
        let value_len = be_u32(value_bytes)? as usize;
        if value_len > block_len {
            return Err(TllvError::ValueExceedsBlock);
        }
        if block_len % super::crypto::AES_BLOCK != 0 {
            return Err(TllvError::Misaligned);
        }
        let block = after_header
            .get(..block_len)
            .ok_or(TllvError::BlockOverrun)?;
        let value = block.get(..value_len).ok_or(TllvError::ValueExceedsBlock)?;
        tllvs.push(Tllv {
            tag,
            value: value.to_vec(),
        });
        rest = after_header.get(block_len..).unwrap_or_default();
    }
    Ok(tllvs)
}

fn be_u32(bytes: &[u8]) -> Result<u32, TllvError> {
    bytes
        .try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| TllvError::TruncatedHeader)
}

/// Bytes [`write_tllv`] appends for a value of `value_len` bytes.
pub(crate) fn encoded_len(value_len: usize) -> usize {
    HEADER_LEN + value_len.next_multiple_of(super::crypto::AES_BLOCK)
}

/// Appends one TLLV, zero-padded to a multiple of 16 bytes.
///
/// Values written here are bounded by [`super::MAX_SPC_BYTES`] (fixed-size fields or TLLVs echoed
/// from an SPC), far below the 4 GiB a length field can express.
pub(crate) fn write_tllv(out: &mut Vec<u8>, tag: u64, value: &[u8]) {
    let block_len = value.len().next_multiple_of(super::crypto::AES_BLOCK);
    out.reserve(HEADER_LEN + block_len);
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&u32::try_from(block_len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (block_len - value.len()), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(tag: u64, block_len: u32, value_len: u32) -> Vec<u8> {
        let mut out = tag.to_be_bytes().to_vec();
        out.extend_from_slice(&block_len.to_be_bytes());
        out.extend_from_slice(&value_len.to_be_bytes());
        out
    }

    #[test]
    fn written_blocks_parse_back_aligned() {
        let mut payload = Vec::new();
        write_tllv(&mut payload, 1, b"");
        write_tllv(&mut payload, 2, &[0xaa; 5]);
        write_tllv(&mut payload, 3, &[0xbb; 16]);
        write_tllv(&mut payload, 4, &[0xcc; 44]);
        assert_eq!(
            payload.len(),
            encoded_len(0) + encoded_len(5) + encoded_len(16) + encoded_len(44)
        );
        assert_eq!(payload.len() % 16, 0);
        let parsed = parse_tllvs(&payload).unwrap();
        let tags: Vec<u64> = parsed.iter().map(|t| t.tag).collect();
        assert_eq!(tags, [1, 2, 3, 4]);
        assert_eq!(parsed[1].value, vec![0xaa; 5]);
        assert_eq!(parsed[3].value, vec![0xcc; 44]);
        assert!(parse_tllvs(&[]).unwrap().is_empty());
    }

    #[test]
    fn extra_padding_blocks_are_accepted() {
        // Apple's server adds up to three random blocks of padding; a value of 5 in a 64-byte
        // block is well formed.
        let mut payload = header(9, 64, 5);
        payload.extend_from_slice(&[1; 64]);
        let parsed = parse_tllvs(&payload).unwrap();
        assert_eq!(
            parsed,
            vec![Tllv {
                tag: 9,
                value: vec![1; 5]
            }]
        );
    }

    #[test]
    fn malformed_lengths_are_refused() {
        assert_eq!(parse_tllvs(&[0; 15]), Err(TllvError::TruncatedHeader));
        let mut overrun = header(1, 32, 4);
        overrun.extend_from_slice(&[0; 16]);
        assert_eq!(parse_tllvs(&overrun), Err(TllvError::BlockOverrun));
        let mut value_too_long = header(1, 16, 17);
        value_too_long.extend_from_slice(&[0; 16]);
        assert_eq!(
            parse_tllvs(&value_too_long),
            Err(TllvError::ValueExceedsBlock)
        );
        let mut misaligned = header(1, 20, 4);
        misaligned.extend_from_slice(&[0; 20]);
        assert_eq!(parse_tllvs(&misaligned), Err(TllvError::Misaligned));
        // A huge block length must be an error, not an allocation or a panic.
        let huge = header(1, 0xffff_fff0, 4);
        assert_eq!(parse_tllvs(&huge), Err(TllvError::BlockOverrun));
        // A valid block followed by a partial header.
        let mut trailing = Vec::new();
        write_tllv(&mut trailing, 1, b"ok");
        trailing.extend_from_slice(&[0; 3]);
        assert_eq!(parse_tllvs(&trailing), Err(TllvError::TruncatedHeader));
    }

    #[test]
    fn debug_shows_lengths_not_values() {
        let tllv = Tllv {
            tag: tag::R1,
            value: vec![0x42; 44],
        };
        let shown = format!("{tllv:?}");
        assert!(shown.contains("0xea74c4645d5efee9"), "{shown}");
        assert!(shown.contains("44"), "{shown}");
        assert!(!shown.contains("66, 66"), "{shown}");
    }
}
