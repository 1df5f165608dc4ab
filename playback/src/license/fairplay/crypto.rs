//! The few cipher primitives FairPlay's formats are built from, in one place.
//!
//! FairPlay encrypts whole numbers of AES blocks and never uses PKCS#7 padding (TLLVs are padded
//! to 16 bytes instead), so CBC here refuses input that is not block-aligned rather than padding
//! it. [`SeededRng`] turns caller-supplied seed bytes into the random stream the `rsa` crate wants
//! (blinding, OAEP seeds): the crate stays sans-IO and never draws randomness itself.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit};
use aes::Aes128;
use rsa::rand_core::{impls, CryptoRng, Error as RandError, RngCore};
use sha2::{Digest, Sha256};

/// AES block size; every FairPlay ciphertext is a whole number of these.
pub(crate) const AES_BLOCK: usize = 16;

/// The input to a CBC operation was not a whole number of AES blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Misaligned;

/// AES-128-ECB on exactly one block.
pub(crate) fn ecb_encrypt_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(key.into());
    let mut out = (*block).into();
    cipher.encrypt_block(&mut out);
    out.into()
}

/// Inverse of [`ecb_encrypt_block`].
#[cfg(any(test, feature = "test-support"))]
pub(crate) fn ecb_decrypt_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    use aes::cipher::BlockDecrypt;
    let cipher = Aes128::new(key.into());
    let mut out = (*block).into();
    cipher.decrypt_block(&mut out);
    out.into()
}

/// AES-128-CBC decryption in place, no padding.
pub(crate) fn cbc_decrypt_in_place(
    key: &[u8; 16],
    iv: &[u8; 16],
    buf: &mut [u8],
) -> Result<(), Misaligned> {
    if buf.len() % AES_BLOCK != 0 {
        return Err(Misaligned);
    }
    cbc::Decryptor::<Aes128>::new(key.into(), iv.into())
        .decrypt_padded_mut::<NoPadding>(buf)
        .map(|_| ())
        .map_err(|_| Misaligned)
}

/// AES-128-CBC encryption in place over whole blocks, no padding.
///
/// Callers pass whole blocks: TLLV payloads always are ([`super::tllv`] pads every block to 16
/// bytes), which makes this infallible. A trailing partial block would be left as is, so it is
/// also asserted in debug builds.
pub(crate) fn cbc_encrypt_whole_blocks(key: &[u8; 16], iv: &[u8; 16], buf: &mut [u8]) {
    debug_assert_eq!(buf.len() % AES_BLOCK, 0, "CBC input must be whole blocks");
    let mut encryptor = cbc::Encryptor::<Aes128>::new(key.into(), iv.into());
    for chunk in buf.chunks_exact_mut(AES_BLOCK) {
        if let Ok(block) = <&mut [u8; AES_BLOCK]>::try_from(chunk) {
            encryptor.encrypt_block_mut(block.into());
        }
    }
}

/// A deterministic random stream expanded from a 32-byte seed: SHA-256 in counter mode.
///
/// Only as unpredictable as its seed; callers seed it from their CSPRNG (the edge passes `OsRng`
/// bytes). Used for RSA blinding and, on the device side, OAEP seeds.
pub(crate) struct SeededRng {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeededRng {
    pub(crate) fn new(seed: &[u8; 32]) -> SeededRng {
        SeededRng {
            seed: *seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn refill(&mut self) {
        let mut hasher = Sha256::new();
        hasher.update(b"streaming-edge/fairplay/seeded-rng/v1");
        hasher.update(self.seed);
        hasher.update(self.counter.to_be_bytes());
        self.block = hasher.finalize().into();
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == self.block.len() {
                self.refill();
            }
            *byte = self.block.get(self.used).copied().unwrap_or_default();
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), RandError> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for SeededRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbc_round_trips_and_decryption_refuses_partial_blocks() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let plain: Vec<u8> = (0u8..48).collect();
        let mut buf = plain.clone();
        cbc_encrypt_whole_blocks(&key, &iv, &mut buf);
        assert_ne!(buf, plain);
        cbc_decrypt_in_place(&key, &iv, &mut buf).unwrap();
        assert_eq!(buf, plain);
        assert_eq!(
            cbc_decrypt_in_place(&key, &iv, &mut [0u8; 17]),
            Err(Misaligned)
        );
    }

    #[test]
    fn cbc_matches_the_nist_vector() {
        // NIST SP 800-38A, F.2.1 CBC-AES128.Encrypt, first block.
        let key: [u8; 16] = hex::decode("2b7e151628aed2a6abf7158809cf4f3c")
            .unwrap()
            .try_into()
            .unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let mut block = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        cbc_encrypt_whole_blocks(&key, &iv, &mut block);
        assert_eq!(hex::encode(&block), "7649abac8119b246cee98e9b12e9197d");
    }

    #[test]
    fn ecb_block_round_trips() {
        let key = [1u8; 16];
        let block = [2u8; 16];
        let sealed = ecb_encrypt_block(&key, &block);
        assert_ne!(sealed, block);
        assert_eq!(ecb_decrypt_block(&key, &sealed), block);
    }

    #[test]
    fn seeded_rng_is_deterministic_per_seed() {
        let mut a = SeededRng::new(&[1; 32]);
        let mut b = SeededRng::new(&[1; 32]);
        let mut c = SeededRng::new(&[2; 32]);
        let (mut x, mut y, mut z) = ([0u8; 100], [0u8; 100], [0u8; 100]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        c.fill_bytes(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        // Successive outputs differ (the counter advances).
        assert_ne!(x[..32], x[32..64]);
    }
}
