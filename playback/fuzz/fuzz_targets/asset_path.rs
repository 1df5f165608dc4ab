//! Request paths are outside bytes: any path gets a verdict, and an accepted one never names a
//! parent, an absolute path or an escaped separator, however it was encoded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::hls::AssetPath;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data) {
        if let Ok(path) = AssetPath::parse(raw) {
            for segment in path.segments() {
                assert!(!segment.is_empty() && segment != "." && segment != "..");
                assert!(!segment.contains(['/', '\\', '\0']));
            }
            let reparsed = AssetPath::parse(&path.encoded()).expect("encoded form parses");
            assert_eq!(reparsed, path);
        }
    }
});
