//! The edge with a directory origin: signed HLS end to end, refusals, path safety.

mod common;

use common::scenarios;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_origin() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let edge = Edge::start(OriginSetup::Directory(&media.root));

    scenarios::signed_hls_round_trip(&edge, &media).await;
    scenarios::refusals_and_ops(&edge).await;
    scenarios::path_attacks(&edge);
    scenarios::cors(&edge).await;

    // A symlink inside the title that points outside the origin root is never followed.
    let r = edge.raw_get(&format!("/hls/{VIDEO}/720p/leak.ts?hdnts={}", edge.token()));
    assert_eq!(r.status, 404, "{}", r.head);
    assert!(!String::from_utf8_lossy(&r.body).contains(SECRET_CONTENT));

    scenarios::logs_hold_no_tokens(&edge);
}
