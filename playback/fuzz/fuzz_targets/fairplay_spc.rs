//! SPCs arrive as raw POST bodies from any client: any bytes must give a refusal code, never a
//! panic. Each input is tried as a whole SPC and as an already-decrypted payload, because random
//! bytes almost never get through the certificate hash and RSA-OAEP to the TLLV parser.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use playback::license::fairplay::{
    build_ckc, device, parse_spc, spc, DevelopmentDerivation, FairPlayCredentials,
};
use playback::license::policy::LicensePolicy;

fn creds() -> &'static FairPlayCredentials {
    static CREDS: OnceLock<FairPlayCredentials> = OnceLock::new();
    CREDS.get_or_init(device::test_credentials)
}

fn answer(parsed: &playback::license::fairplay::Spc) {
    let ckc = build_ckc(parsed, &[1; 16], &[2; 16], &LicensePolicy::DEFAULT, [3; 16]);
    assert!(ckc.len() > 28 && (ckc.len() - 28) % 16 == 0);
}

fuzz_target!(|data: &[u8]| {
    match parse_spc(creds(), &DevelopmentDerivation, data, &[7; 32]) {
        Ok(parsed) => answer(&parsed),
        Err(error) => assert!(error.code().starts_with("spc_")),
    }
    match spc::parse_decrypted_payload(creds(), &DevelopmentDerivation, data) {
        Ok(parsed) => answer(&parsed),
        Err(error) => assert!(error.code().starts_with("spc_")),
    }
});
