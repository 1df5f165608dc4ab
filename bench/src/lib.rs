//! Benchmarks live in `benches/`; this library holds only what several of them build their
//! inputs from. See `README.md` for the method, the machine and the latest figures.

use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig};
use playback::token::session::{SessionSigner, SessionSubject};

/// A real session token for `video_id`, minted with `SessionSigner` and a random key, so its
/// length is what the edge stamps on every URI.
pub fn session_token(video_id: &str) -> String {
    let key: [u8; 32] = rand::random();
    let signer = SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(key.to_vec())));
    let subject = SessionSubject {
        session_id: Some("bench0000bench0000bench0000bench".into()),
        user_id: Some("bench@example.com".into()),
        jti: None,
    };
    signer.mint_session(video_id, &subject, 4_000_000_000, None)
}
