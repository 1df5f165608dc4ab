//! Prints a session token (what the edge mints after a manifest) for bench/envoy/run.sh.
//!
//! `cargo run -p bench --example mint_session_token -- <key hex> <video id> <ttl secs>`

use std::time::{SystemTime, UNIX_EPOCH};

use playback::token::edgeauth::{decode_hex_key, EdgeAuth, EdgeAuthConfig};
use playback::token::session::{SessionSigner, SessionSubject};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key_hex, video, ttl] = args.as_slice() else {
        eprintln!("usage: mint_session_token <key hex> <video id> <ttl secs>");
        std::process::exit(2);
    };
    let key = decode_hex_key(key_hex).expect("a hex key");
    let ttl: u64 = ttl.parse().expect("ttl in seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let subject = SessionSubject {
        session_id: Some("bench0000bench0000bench0000bench".into()),
        user_id: Some("bench@example.com".into()),
        jti: None,
    };
    let signer = SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(key)));
    println!("{}", signer.mint_session(video, &subject, now + ttl, None));
}
