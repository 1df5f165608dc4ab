//! Prints a session token (what the edge mints after a manifest) for bench/envoy/run.sh and
//! bench/cdn/run.sh.
//!
//! `cargo run -p bench --example mint_session_token -- <key hex> <video id> <ttl secs> [user id [session id]]`
//!
//! The viewer and session default to `bench@example.com` and `bench0000bench0000bench0000bench`;
//! bench/cdn/run.sh names the viewer it entitled, so the token also admits the title's AES-128 key.

use std::time::{SystemTime, UNIX_EPOCH};

use playback::token::edgeauth::{decode_hex_key, EdgeAuth, EdgeAuthConfig};
use playback::token::session::{SessionSigner, SessionSubject};

const DEFAULT_USER: &str = "bench@example.com";
const DEFAULT_SESSION: &str = "bench0000bench0000bench0000bench";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (key_hex, video, ttl, user, session) = match args.as_slice() {
        [key, video, ttl] => (key, video, ttl, DEFAULT_USER, DEFAULT_SESSION),
        [key, video, ttl, user] => (key, video, ttl, user.as_str(), DEFAULT_SESSION),
        [key, video, ttl, user, session] => (key, video, ttl, user.as_str(), session.as_str()),
        _ => {
            eprintln!(
                "usage: mint_session_token <key hex> <video id> <ttl secs> [user id [session id]]"
            );
            std::process::exit(2);
        }
    };
    let key = decode_hex_key(key_hex).expect("a hex key");
    let ttl: u64 = ttl.parse().expect("ttl in seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let subject = SessionSubject {
        session_id: Some(session.into()),
        user_id: Some(user.into()),
        jti: None,
    };
    let signer = SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(key)));
    println!("{}", signer.mint_session(video, &subject, now + ttl, None));
}
