//! Exact base64url as JWS uses it: the URL-safe alphabet, no padding, and canonical trailing
//! bits, so each token has exactly one spelling.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;

/// Encoder and strict decoder: padding (`=`) and non-zero trailing bits are refused.
pub(crate) const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

#[cfg(test)]
mod tests {
    use super::B64;
    use base64::Engine as _;

    #[test]
    fn strict_decoding() {
        assert_eq!(B64.decode("YQ").unwrap(), b"a");
        assert!(B64.decode("YQ==").is_err(), "padding");
        assert!(B64.decode("YR").is_err(), "non-canonical trailing bits");
        assert!(B64.decode("Y+").is_err(), "standard alphabet");
        assert!(B64.decode("Y").is_err(), "impossible length");
        assert_eq!(B64.encode([0xfb, 0xff]), "-_8");
    }
}
