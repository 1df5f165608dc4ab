//! Wrapped keys arrive from the control plane and Redis: any bytes must be refused cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::keywrap::{unwrap, KeyBinding, Purpose};

fuzz_target!(|data: &[u8]| {
    if let Ok(wrapped) = std::str::from_utf8(data) {
        let binding = KeyBinding { purpose: Purpose::Transport, video_id: "v", key_id: "k" };
        assert!(unwrap(&[0u8; 32], wrapped, &binding).is_err() || wrapped.starts_with("v1."));
    }
});
