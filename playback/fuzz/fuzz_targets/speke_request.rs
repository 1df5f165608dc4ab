//! SPEKE requests are CPIX documents POSTed by an encryptor: any bytes must parse or be refused
//! with a 4xx, never panic or expand anything. Whatever parses must be answerable, and the
//! answer must parse back to the same keys, systems, periods and contract.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::speke::{
    build_response, parse_request, ContentKeyMaterial, Signaling, MAX_CONTENT_KEYS, MAX_DRM_SYSTEMS,
};

fuzz_target!(|data: &[u8]| {
    let request = match parse_request(data) {
        Ok(request) => request,
        Err(error) => {
            assert!((400..500).contains(&error.status()), "{error:?}");
            assert!(error.code().starts_with("speke_"));
            return;
        }
    };
    assert!(!request.content_keys.is_empty() && request.content_keys.len() <= MAX_CONTENT_KEYS);
    assert!(!request.drm_systems.is_empty() && request.drm_systems.len() <= MAX_DRM_SYSTEMS);
    assert!(!request.usage_rules.is_empty());
    let keys: Vec<ContentKeyMaterial> = request
        .kids()
        .map(|kid| ContentKeyMaterial {
            kid,
            key: [0x5a; 16],
            explicit_iv: None,
        })
        .collect();
    let signaling = Signaling {
        widevine_provider: Some("fuzz".into()),
        playready_la_url: Some("https://license.example/pr?a=1&b=2".into()),
        fairplay_key_uri_prefix: "skd://".into(),
        aes128_key_uri_prefix: Some("https://edge.example/keys/".into()),
    };
    let response =
        build_response(&request, &keys, &signaling).expect("a parsed request is answerable");
    let again = parse_request(response.as_bytes()).expect("the response parses");
    assert_eq!(again.content_id, request.content_id);
    assert_eq!(again.content_keys, request.content_keys);
    assert_eq!(again.key_periods, request.key_periods);
    assert_eq!(again.usage_rules, request.usage_rules);
    let pairs = |r: &playback::speke::SpekeRequest| {
        r.drm_systems
            .iter()
            .map(|d| (d.kid, d.system))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&again), pairs(&request));
});
