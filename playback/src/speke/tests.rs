//! SPEKE v2.0 documents shaped like AWS's published examples (standard payload components,
//! VOD workflow, kid override, the reference key server's preset test cases), and the
//! documents a key provider must refuse.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::hls::{KeyTag, Playlist};
use super::pssh::{self, PsshBox};
use super::*;

const VOD_SINGLE_KEY: &str = include_str!("testdata/vod_single_key.xml");
const VOD_VIDEO_AUDIO: &str = include_str!("testdata/vod_video_audio.xml");
const LIVE_PRESETS: &str = include_str!("testdata/live_presets_video3_audio2.xml");
const LIVE_ROTATION: &str = include_str!("testdata/live_key_rotation.xml");
const CLEARKEY: &str = include_str!("testdata/clearkey_common_aes128.xml");
const V1_STYLE: &str = include_str!("testdata/v1_style_elements.xml");

const ALL_FIXTURES: [&str; 6] = [
    VOD_SINGLE_KEY,
    VOD_VIDEO_AUDIO,
    LIVE_PRESETS,
    LIVE_ROTATION,
    CLEARKEY,
    V1_STYLE,
];

const KID_A: &str = "98ee5596-cd3e-a20d-163a-e382420c6eff";
const KID_B: &str = "53abdba2-f210-43cb-bc90-f18f9a890a02";

fn kid(uuid: &str) -> KeyId {
    KeyId::from_uuid(uuid).unwrap()
}

fn parse(doc: &str) -> Result<SpekeRequest, SpekeError> {
    parse_request(doc.as_bytes())
}

/// A distinct key per kid: the kid's bytes reversed.
fn keys_for(request: &SpekeRequest) -> Vec<ContentKeyMaterial> {
    request
        .kids()
        .map(|kid| {
            let mut key = kid.0;
            key.reverse();
            ContentKeyMaterial {
                kid,
                key,
                explicit_iv: None,
            }
        })
        .collect()
}

fn signaling() -> Signaling {
    Signaling {
        widevine_provider: Some("streaming-edge".into()),
        playready_la_url: Some("https://license.example.com/playready?a=1&b=2".into()),
        fairplay_key_uri_prefix: "skd://".into(),
        aes128_key_uri_prefix: Some("https://edge.example.com/keys/video-0f8fad5b/".into()),
    }
}

fn respond(doc: &str) -> (SpekeRequest, String) {
    let request = parse(doc).unwrap();
    let response = build_response(&request, &keys_for(&request), &signaling()).unwrap();
    (request, response)
}

/// Text of every `<tag ...>value</tag>` in `doc`, in order (the builder writes one element
/// per line).
fn values<'a>(doc: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    doc.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix(open)?;
            let start = rest.find('>')? + 1;
            rest[start..].strip_suffix(close)
        })
        .collect()
}

fn b64d(text: &str) -> Vec<u8> {
    STANDARD.decode(text).unwrap()
}

fn b64s(text: &str) -> String {
    String::from_utf8(b64d(text)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Parsing the AWS-shaped requests.

#[test]
fn parses_the_single_key_vod_example() {
    let r = parse(VOD_SINGLE_KEY).unwrap();
    assert_eq!(r.content_id, "abc123");
    assert_eq!(
        r.content_keys,
        vec![ContentKey {
            kid: kid(KID_A),
            scheme: EncryptionScheme::Cbcs,
            explicit_iv: Some(b64d("OFj2IjCsPJFfMAxmQxLGPw==").try_into().unwrap()),
        }]
    );
    assert_eq!(r.drm_systems.len(), 1);
    assert_eq!(r.drm_systems[0].system, DrmSystemKind::Widevine);
    assert_eq!(
        r.drm_systems[0].requested,
        Signals {
            pssh: true,
            content_protection_data: true,
            hls_media: true,
            hls_master: true,
            ..Signals::default()
        }
    );
    assert!(r.key_periods.is_empty() && !r.is_key_rotation());
    assert_eq!(
        r.usage_rules,
        vec![UsageRule {
            kid: kid(KID_A),
            intended_track_type: "ALL".into(),
            period_id: None,
            filters: vec![
                TrackFilter::Audio(AudioFilter::default()),
                TrackFilter::Video(VideoFilter::default())
            ],
        }]
    );
}

#[test]
fn parses_the_vod_video_and_audio_keys_example() {
    let r = parse(VOD_VIDEO_AUDIO).unwrap();
    assert_eq!(r.kids().collect::<Vec<_>>(), vec![kid(KID_A), kid(KID_B)]);
    // AWS's example IV has non-zero trailing bits; it is accepted.
    assert_eq!(
        r.content_keys[1].explicit_iv.map(hex::encode).as_deref(),
        Some("2fa8f3757ad70056c224606e32bacaac")
    );
    let systems: Vec<_> = r.drm_systems.iter().map(|d| (d.system, d.kid)).collect();
    assert_eq!(
        systems,
        vec![
            (DrmSystemKind::FairPlay, kid(KID_A)),
            (DrmSystemKind::FairPlay, kid(KID_B)),
            (DrmSystemKind::Widevine, kid(KID_A)),
            (DrmSystemKind::Widevine, kid(KID_B)),
            (DrmSystemKind::PlayReady, kid(KID_A)),
            (DrmSystemKind::PlayReady, kid(KID_B)),
        ]
    );
    assert!(r.drm_systems[4].requested.smooth_streaming);
    let types: Vec<_> = r
        .usage_rules
        .iter()
        .map(|u| u.intended_track_type.as_str())
        .collect();
    assert_eq!(types, ["VIDEO", "AUDIO"]);
}

#[test]
fn parses_multi_key_presets_with_video_and_audio_filters() {
    let r = parse(LIVE_PRESETS).unwrap();
    assert_eq!(r.content_keys.len(), 5);
    assert_eq!(
        r.key_periods,
        vec![KeyPeriod {
            id: "keyPeriod_2e19ac38-22d3-4bb2-b290-95a72f4732ef".into(),
            index: 0
        }]
    );
    let filters: Vec<_> = r.usage_rules.iter().map(|u| u.filters[0]).collect();
    assert_eq!(
        filters,
        vec![
            TrackFilter::Video(VideoFilter {
                max_pixels: Some(589_824),
                ..VideoFilter::default()
            }),
            TrackFilter::Video(VideoFilter {
                min_pixels: Some(589_825),
                max_pixels: Some(2_073_600),
                ..VideoFilter::default()
            }),
            TrackFilter::Video(VideoFilter {
                min_pixels: Some(2_073_601),
                ..VideoFilter::default()
            }),
            TrackFilter::Audio(AudioFilter {
                max_channels: Some(2),
                ..AudioFilter::default()
            }),
            TrackFilter::Audio(AudioFilter {
                min_channels: Some(3),
                ..AudioFilter::default()
            }),
        ]
    );
    assert!(r
        .usage_rules
        .iter()
        .all(|u| u.period_id.as_deref() == Some(r.key_periods[0].id.as_str())));
}

#[test]
fn parses_key_rotation_periods() {
    let r = parse(LIVE_ROTATION).unwrap();
    assert!(r.is_key_rotation());
    assert_eq!(
        r.key_periods.iter().map(|p| p.index).collect::<Vec<_>>(),
        [11, 12]
    );
    let k3 = kid("33333333-3333-3333-3333-333333333333");
    assert_eq!(r.key_period(&k3).map(|p| p.index), Some(12));
    assert_eq!(r.scheme(), EncryptionScheme::Cenc);
}

#[test]
fn parses_default_namespace_documents() {
    let r = parse(CLEARKEY).unwrap();
    assert_eq!(r.content_id, "video-0f8fad5b");
    let systems: Vec<_> = r.drm_systems.iter().map(|d| d.system).collect();
    assert_eq!(
        systems,
        [DrmSystemKind::CommonSystem, DrmSystemKind::ClearKeyAes128]
    );
}

#[test]
fn parses_speke_v1_placeholders_and_ignores_bitrate_filters() {
    let r = parse(V1_STYLE).unwrap();
    let fairplay = r.drm_systems[0].requested;
    assert!(fairplay.uri_ext_x_key && fairplay.key_format && fairplay.key_format_versions);
    assert!(fairplay.protection_header && fairplay.pssh && fairplay.content_protection_data);
    // Uppercase system ids are recognised.
    assert_eq!(r.drm_systems[1].system, DrmSystemKind::PlayReady);
    assert_eq!(r.usage_rules[0].filters.len(), 2);
}

#[test]
fn tolerates_bom_comments_and_processing_instructions() {
    let doc =
        format!("\u{feff}<?xml version=\"1.0\"?><!-- c --><?pi x?>{VOD_SINGLE_KEY}<!-- end -->");
    assert!(parse(&doc).is_ok());
    let doc = VOD_SINGLE_KEY.replace("abc123", "a&amp;b&#x26;c&lt;&quot;");
    assert_eq!(parse(&doc).unwrap().content_id, "a&b&c<\"");
    let doc = VOD_SINGLE_KEY.replace(
        "<cpix:PSSH></cpix:PSSH>",
        "<cpix:PSSH><![CDATA[old]]>AAAA&amp;</cpix:PSSH>",
    );
    assert!(parse(&doc).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Refusals.

fn refused(doc: &str) -> SpekeError {
    parse(doc).expect_err("the document must be refused")
}

#[test]
fn refuses_dtds_and_entity_expansion() {
    let laughs = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n \
         <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n]>\n{}",
        VOD_SINGLE_KEY.replace("abc123", "&lol2;")
    );
    assert_eq!(refused(&laughs), SpekeError::Dtd);
    let xxe = format!(
        "<!DOCTYPE cpix:CPIX [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        VOD_SINGLE_KEY.replace("abc123", "&xxe;")
    );
    assert_eq!(refused(&xxe), SpekeError::Dtd);
    // Lowercase or a bare declaration, anywhere: still refused before parsing.
    for decl in [
        "<!doctype x>",
        "<!ENTITY x \"y\">",
        "<!ATTLIST a b CDATA #IMPLIED>",
    ] {
        let doc = VOD_SINGLE_KEY.replace(
            "<cpix:ContentKeyList>",
            &format!("{decl}<cpix:ContentKeyList>"),
        );
        assert_eq!(refused(&doc), SpekeError::Dtd, "{decl}");
    }
    let err = refused(&laughs);
    assert_eq!(err.status(), 400);
    assert_eq!(err.code(), "speke_dtd");
}

#[test]
fn refuses_undefined_entities() {
    let in_attribute = VOD_SINGLE_KEY.replace("abc123", "a&xxe;b");
    assert_eq!(refused(&in_attribute), SpekeError::UndefinedEntity);
    let in_text = VOD_SINGLE_KEY.replace("<cpix:PSSH></cpix:PSSH>", "<cpix:PSSH>&xxe;</cpix:PSSH>");
    assert_eq!(refused(&in_text), SpekeError::UndefinedEntity);
    let bad_char_ref =
        VOD_SINGLE_KEY.replace("<cpix:PSSH></cpix:PSSH>", "<cpix:PSSH>&#0;</cpix:PSSH>");
    assert!(matches!(
        refused(&bad_char_ref),
        SpekeError::MalformedXml(_)
    ));
}

#[test]
fn refuses_oversized_documents() {
    let padding = " ".repeat(MAX_DOCUMENT_BYTES);
    let doc = VOD_SINGLE_KEY.replace(
        "<cpix:ContentKeyList>",
        &format!("{padding}<cpix:ContentKeyList>"),
    );
    let err = refused(&doc);
    assert_eq!(
        err,
        SpekeError::TooLarge {
            limit: MAX_DOCUMENT_BYTES
        }
    );
    assert_eq!(err.status(), 413);
    // Just under the limit is fine.
    let fill = MAX_DOCUMENT_BYTES - VOD_SINGLE_KEY.len();
    let doc = format!("{VOD_SINGLE_KEY}{}", " ".repeat(fill));
    assert_eq!(doc.len(), MAX_DOCUMENT_BYTES);
    assert!(parse(&doc).is_ok());
}

#[test]
fn refuses_deep_nesting_and_too_many_elements() {
    let deep = VOD_SINGLE_KEY.replace(
        "<cpix:PSSH></cpix:PSSH>",
        &format!("{}{}", "<x>".repeat(MAX_DEPTH), "</x>".repeat(MAX_DEPTH)),
    );
    assert!(matches!(
        refused(&deep),
        SpekeError::LimitExceeded {
            what: "levels of element nesting",
            ..
        }
    ));
    let wide = VOD_SINGLE_KEY.replace("<cpix:PSSH></cpix:PSSH>", &"<x/>".repeat(MAX_ELEMENTS));
    assert!(matches!(
        refused(&wide),
        SpekeError::LimitExceeded {
            what: "elements",
            ..
        }
    ));
    let attrs: String = (0..=MAX_ATTRIBUTES)
        .map(|i| format!(" a{i}=\"\""))
        .collect();
    let many_attrs = VOD_SINGLE_KEY.replace("<cpix:PSSH>", &format!("<cpix:PSSH{attrs}>"));
    assert!(matches!(
        refused(&many_attrs),
        SpekeError::LimitExceeded { .. }
    ));
}

#[test]
fn refuses_too_many_keys() {
    let keys: String = (0..=MAX_CONTENT_KEYS)
        .map(|i| format!("<cpix:ContentKey kid=\"00000000-0000-0000-0000-{i:012}\" commonEncryptionScheme=\"cbcs\"/>"))
        .collect();
    let doc = VOD_SINGLE_KEY.replace(
        "<cpix:ContentKeyList>",
        &format!("<cpix:ContentKeyList>{keys}"),
    );
    assert_eq!(
        refused(&doc),
        SpekeError::LimitExceeded {
            what: "content keys",
            limit: MAX_CONTENT_KEYS
        }
    );
}

#[test]
fn refuses_malformed_xml() {
    for doc in [
        "",
        "   ",
        "not xml",
        "<cpix:CPIX xmlns:cpix=\"urn:dashif:org:cpix\" contentId=\"a\" version=\"2.3\">",
        "<cpix:CPIX xmlns:cpix=\"urn:dashif:org:cpix\"></cpix:Other>",
        "<a/><b/>",
    ] {
        let err = refused(doc);
        assert_eq!(err.status(), 400, "{doc:?}: {err}");
    }
    assert!(matches!(
        parse_request(&[0xff, 0xfe, b'<', 0]).unwrap_err(),
        SpekeError::MalformedXml(_)
    ));
    let latin1 = format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{VOD_SINGLE_KEY}");
    assert!(matches!(refused(&latin1), SpekeError::MalformedXml(_)));
    let two_roots = format!("{VOD_SINGLE_KEY}{VOD_SINGLE_KEY}");
    assert!(matches!(refused(&two_roots), SpekeError::MalformedXml(_)));
    let trailing = format!("{VOD_SINGLE_KEY}junk");
    assert!(matches!(refused(&trailing), SpekeError::MalformedXml(_)));
}

#[test]
fn refuses_wrong_root_and_unbound_prefixes() {
    let wrong_ns = VOD_SINGLE_KEY.replace("urn:dashif:org:cpix", "urn:example:not-cpix");
    assert!(matches!(refused(&wrong_ns), SpekeError::Namespace(_)));
    let unbound = VOD_SINGLE_KEY.replace("<cpix:PSSH></cpix:PSSH>", "<x:PSSH></x:PSSH>");
    assert!(matches!(refused(&unbound), SpekeError::Namespace(_)));
    let no_ns = "<CPIX contentId=\"a\" version=\"2.3\"/>";
    assert!(matches!(refused(no_ns), SpekeError::Namespace(_)));
}

#[test]
fn refuses_wrong_and_missing_versions_with_aws_messages() {
    let wrong = VOD_SINGLE_KEY.replace("version=\"2.3\"", "version=\"2.2\"");
    let err = refused(&wrong);
    assert_eq!(err, SpekeError::UnsupportedCpixVersion);
    assert_eq!(err.to_string(), "Unsupported CPIX@version");
    assert_eq!(err.status(), 422);
    let missing = VOD_SINGLE_KEY.replace(" version=\"2.3\"", "");
    assert_eq!(refused(&missing).to_string(), "Missing CPIX@version");
    let empty = VOD_SINGLE_KEY.replace("version=\"2.3\"", "version=\"\"");
    assert_eq!(refused(&empty).to_string(), "Missing CPIX@version");
    // contentId is checked first, as AWS lists it first.
    let no_content_id = wrong.replace(" contentId=\"abc123\"", "");
    assert_eq!(
        refused(&no_content_id).to_string(),
        "Missing CPIX@contentId"
    );
    let blank_content_id = VOD_SINGLE_KEY.replace("contentId=\"abc123\"", "contentId=\"  \"");
    assert_eq!(refused(&blank_content_id), SpekeError::MissingContentId);
}

#[test]
fn checks_the_speke_version_header() {
    assert!(check_speke_version(Some("2.0")).is_ok());
    assert!(check_speke_version(Some(" 2.0 ")).is_ok());
    for header in [None, Some("1.0"), Some("2.1"), Some(""), Some("2")] {
        let err = check_speke_version(header).unwrap_err();
        assert_eq!(err.to_string(), "Unsupported SPEKE version");
        assert_eq!(err.status(), 422);
    }
    let headers = response_headers("streaming-edge key provider");
    assert!(headers.contains(&("X-Speke-Version", "2.0".to_owned())));
    assert!(headers.contains(&(
        "X-Speke-User-Agent",
        "streaming-edge key provider".to_owned()
    )));
    assert!(headers.contains(&("Speke-User-Agent", "streaming-edge key provider".to_owned())));
    assert!(headers.contains(&("Content-Type", "application/xml".to_owned())));
}

#[test]
fn refuses_missing_invalid_and_duplicate_kids() {
    let missing = VOD_SINGLE_KEY.replacen(" kid=\"98ee5596-cd3e-a20d-163a-e382420c6eff\"", "", 1);
    assert_eq!(refused(&missing).to_string(), "Missing ContentKey@kid");
    let invalid = VOD_SINGLE_KEY.replacen(KID_A, "not-a-uuid", 1);
    assert_eq!(
        refused(&invalid).to_string(),
        "Invalid ContentKey@kid not-a-uuid"
    );
    // The same kid in another case is the same key.
    let duplicate = VOD_SINGLE_KEY.replace(
        "</cpix:ContentKeyList>",
        "<cpix:ContentKey kid=\"98EE5596-CD3E-A20D-163A-E382420C6EFF\" commonEncryptionScheme=\"cbcs\"/></cpix:ContentKeyList>",
    );
    assert_eq!(
        refused(&duplicate).to_string(),
        format!("Duplicate ContentKey@kid {KID_A}")
    );
    let drm_missing = VOD_SINGLE_KEY.replace(
        "<cpix:DRMSystem kid=\"98ee5596-cd3e-a20d-163a-e382420c6eff\"",
        "<cpix:DRMSystem",
    );
    assert_eq!(refused(&drm_missing).to_string(), "Missing DRMSystem@kid");
    let drm_unknown_kid = VOD_SINGLE_KEY.replace(
        "<cpix:DRMSystem kid=\"98ee5596-cd3e-a20d-163a-e382420c6eff\"",
        "<cpix:DRMSystem kid=\"00000000-0000-0000-0000-000000000001\"",
    );
    assert_eq!(
        refused(&drm_unknown_kid).to_string(),
        "DRMSystem@kid 00000000-0000-0000-0000-000000000001 is not in cpix:ContentKeyList"
    );
    let drm_twice = VOD_SINGLE_KEY.replace(
        "</cpix:DRMSystemList>",
        &format!("<cpix:DRMSystem kid=\"{KID_A}\" systemId=\"EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED\"/></cpix:DRMSystemList>"),
    );
    assert!(refused(&drm_twice)
        .to_string()
        .starts_with("Duplicate DRMSystem"));
}

#[test]
fn refuses_unknown_system_ids() {
    let doc = VOD_SINGLE_KEY.replace(WIDEVINE_SYSTEM_ID, "81376844-f976-481e-a84e-cc25d39b0b33");
    let err = refused(&doc);
    assert_eq!(
        err.to_string(),
        "Unsupported DRMSystem@systemId 81376844-f976-481e-a84e-cc25d39b0b33"
    );
    assert_eq!(err.status(), 422);
    let missing = VOD_SINGLE_KEY.replace(&format!(" systemId=\"{WIDEVINE_SYSTEM_ID}\""), "");
    assert_eq!(refused(&missing).to_string(), "Missing DRMSystem@systemId");
}

#[test]
fn refuses_scheme_problems_with_aws_messages() {
    let missing = VOD_SINGLE_KEY.replace(" commonEncryptionScheme=\"cbcs\"", "");
    assert_eq!(
        refused(&missing).to_string(),
        format!("Missing ContentKey@commonEncryptionScheme for KID {KID_A}")
    );
    let mixed = VOD_VIDEO_AUDIO.replacen(
        "commonEncryptionScheme=\"cbcs\"",
        "commonEncryptionScheme=\"cenc\"",
        1,
    );
    assert_eq!(
        refused(&mixed).to_string(),
        "Non compliant ContentKey@commonEncryptionScheme combination"
    );
    // FairPlay is cbcs only.
    let fairplay_cenc = VOD_VIDEO_AUDIO.replace(
        "commonEncryptionScheme=\"cbcs\"",
        "commonEncryptionScheme=\"cenc\"",
    );
    assert_eq!(
        refused(&fairplay_cenc).to_string(),
        format!(
            "ContentKey@commonEncryptionScheme non compatible with DRMSystem {FAIRPLAY_SYSTEM_ID}"
        )
    );
    // PlayReady does not play cens.
    let playready_cens = LIVE_ROTATION.replace("\"cenc\"", "\"cens\"");
    assert_eq!(
        refused(&playready_cens),
        SpekeError::SchemeIncompatible {
            system_id: PLAYREADY_SYSTEM_ID.into()
        }
    );
    let unknown = VOD_SINGLE_KEY.replace("\"cbcs\"", "\"aes1\"");
    assert!(matches!(refused(&unknown), SpekeError::InvalidDocument(_)));
    let bad_iv = VOD_SINGLE_KEY.replace("OFj2IjCsPJFfMAxmQxLGPw==", "AAAA");
    assert!(refused(&bad_iv)
        .to_string()
        .starts_with("Invalid ContentKey@explicitIV"));
}

#[test]
fn refuses_missing_and_malformed_contracts() {
    let no_rules = {
        let start = VOD_SINGLE_KEY
            .find("<cpix:ContentKeyUsageRuleList>")
            .unwrap();
        let end = VOD_SINGLE_KEY
            .find("</cpix:ContentKeyUsageRuleList>")
            .unwrap()
            + "</cpix:ContentKeyUsageRuleList>".len();
        format!("{}{}", &VOD_SINGLE_KEY[..start], &VOD_SINGLE_KEY[end..])
    };
    assert_eq!(
        refused(&no_rules).to_string(),
        "Missing CPIX encryption contract"
    );
    let no_filters = VOD_SINGLE_KEY
        .replace("<cpix:AudioFilter />", "")
        .replace("<cpix:VideoFilter />", "");
    assert_eq!(refused(&no_filters), SpekeError::MissingContract);

    let malformed = |doc: String| {
        let err = refused(&doc);
        assert_eq!(err.to_string(), "Malformed encryption contract", "{err:?}");
        match err {
            SpekeError::MalformedContract { reason } => reason,
            _ => unreachable!(),
        }
    };
    // ALL needs one bare video and one bare audio filter.
    malformed(VOD_SINGLE_KEY.replace(
        "<cpix:AudioFilter />",
        "<cpix:AudioFilter maxChannels=\"2\"/>",
    ));
    malformed(VOD_SINGLE_KEY.replace("<cpix:AudioFilter />", "<cpix:VideoFilter />"));
    // Components and filters must match in number.
    malformed(VOD_SINGLE_KEY.replace("\"ALL\"", "\"SD+HD+AUDIO\""));
    malformed(VOD_SINGLE_KEY.replace("\"ALL\"", "\"VIDEO\""));
    malformed(VOD_SINGLE_KEY.replace("\"ALL\"", "\"A+\""));
    // One of several rules without filters.
    malformed(VOD_VIDEO_AUDIO.replace("<cpix:AudioFilter />", ""));
    // Unknown kid, missing kid, missing track type.
    malformed(VOD_SINGLE_KEY.replace(
        &format!("<cpix:ContentKeyUsageRule kid=\"{KID_A}\""),
        "<cpix:ContentKeyUsageRule kid=\"00000000-0000-0000-0000-000000000009\"",
    ));
    malformed(VOD_SINGLE_KEY.replace(
        &format!("<cpix:ContentKeyUsageRule kid=\"{KID_A}\""),
        "<cpix:ContentKeyUsageRule",
    ));
    malformed(VOD_SINGLE_KEY.replace(" intendedTrackType=\"ALL\"", ""));
    // LabelFilter is not SPEKE; bad numbers; min above max.
    malformed(VOD_SINGLE_KEY.replace(
        "<cpix:AudioFilter />",
        "<cpix:AudioFilter /><cpix:LabelFilter label=\"x\"/>",
    ));
    malformed(LIVE_PRESETS.replace("maxPixels=\"589824\"", "maxPixels=\"-1\""));
    malformed(LIVE_PRESETS.replace("minPixels=\"589825\"", "minPixels=\"9999999\""));
    malformed(LIVE_PRESETS.replace(
        "<cpix:VideoFilter maxPixels=\"589824\" />",
        "<cpix:VideoFilter hdr=\"maybe\"/>",
    ));
    // The same track type twice in one period.
    malformed(
        VOD_VIDEO_AUDIO
            .replace("\"AUDIO\"", "\"VIDEO\"")
            .replace("<cpix:AudioFilter />", "<cpix:VideoFilter />"),
    );
}

#[test]
fn refuses_broken_key_rotation() {
    let reason = |doc: String| match refused(&doc) {
        SpekeError::MalformedContract { reason } => reason,
        other => panic!("{other:?}"),
    };
    let no_filter = LIVE_ROTATION.replacen(
        "<cpix:KeyPeriodFilter periodId=\"keyPeriod_0909829f-40ff-4625-90fa-75da3e53278f\" />",
        "",
        1,
    );
    assert_eq!(
        reason(no_filter),
        "key rotation usage rule without KeyPeriodFilter"
    );
    let unknown = LIVE_ROTATION.replacen(
        "periodId=\"keyPeriod_0909829f",
        "periodId=\"keyPeriod_ffff",
        1,
    );
    assert_eq!(
        reason(unknown),
        "KeyPeriodFilter names an unknown ContentKeyPeriod"
    );
    let no_periods = {
        let start = LIVE_ROTATION.find("<cpix:ContentKeyPeriodList>").unwrap();
        let end = LIVE_ROTATION.find("</cpix:ContentKeyPeriodList>").unwrap()
            + "</cpix:ContentKeyPeriodList>".len();
        format!("{}{}", &LIVE_ROTATION[..start], &LIVE_ROTATION[end..])
    };
    assert_eq!(
        reason(no_periods),
        "KeyPeriodFilter names an unknown ContentKeyPeriod"
    );
    let same_index = LIVE_ROTATION.replace("index=\"12\"", "index=\"11\"");
    assert!(refused(&same_index)
        .to_string()
        .starts_with("Duplicate ContentKeyPeriod"));
    let bad_index = LIVE_ROTATION.replace("index=\"12\"", "index=\"twelve\"");
    assert!(refused(&bad_index)
        .to_string()
        .starts_with("Invalid ContentKeyPeriod@index"));
}

#[test]
fn refuses_missing_lists_and_content_key_encryption() {
    let no_drm = {
        let start = VOD_SINGLE_KEY.find("<cpix:DRMSystemList>").unwrap();
        let end =
            VOD_SINGLE_KEY.find("</cpix:DRMSystemList>").unwrap() + "</cpix:DRMSystemList>".len();
        format!("{}{}", &VOD_SINGLE_KEY[..start], &VOD_SINGLE_KEY[end..])
    };
    assert_eq!(refused(&no_drm).to_string(), "Missing cpix:DRMSystemList");
    let twice = VOD_SINGLE_KEY.replace(
        "<cpix:ContentKeyUsageRuleList>",
        "<cpix:ContentKeyList/><cpix:ContentKeyUsageRuleList>",
    );
    assert_eq!(refused(&twice).to_string(), "Duplicate cpix:ContentKeyList");
    let delivery = VOD_SINGLE_KEY.replace(
        "<cpix:ContentKeyList>",
        "<cpix:DeliveryDataList><cpix:DeliveryData id=\"origin\"><cpix:DeliveryKey><ds:X509Data xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey></cpix:DeliveryData></cpix:DeliveryDataList><cpix:ContentKeyList>",
    );
    assert_eq!(refused(&delivery), SpekeError::DeliveryDataNotSupported);
    let bad_playlist = VOD_SINGLE_KEY.replace("playlist=\"master\"", "playlist=\"other\"");
    assert!(matches!(
        refused(&bad_playlist),
        SpekeError::InvalidDocument(_)
    ));
    let two_pssh = VOD_SINGLE_KEY.replace("<cpix:PSSH></cpix:PSSH>", "<cpix:PSSH/><cpix:PSSH/>");
    assert_eq!(
        refused(&two_pssh).to_string(),
        "Duplicate PSSH in DRMSystem"
    );
}

// ---------------------------------------------------------------------------------------------
// Responses.

#[test]
fn every_response_parses_back_to_the_same_request() {
    for doc in ALL_FIXTURES {
        let (request, response) = respond(doc);
        let again = parse(&response).unwrap_or_else(|e| panic!("{e}\n{response}"));
        assert_eq!(again.content_id, request.content_id);
        assert_eq!(again.content_keys, request.content_keys);
        assert_eq!(again.key_periods, request.key_periods);
        assert_eq!(again.usage_rules, request.usage_rules);
        let pairs = |r: &SpekeRequest| {
            r.drm_systems
                .iter()
                .map(|d| (d.kid, d.system))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&again), pairs(&request));
        // Filling twice gives the same document: no randomness, no clock.
        let twice = build_response(&again, &keys_for(&again), &signaling()).unwrap();
        assert_eq!(twice, response);
    }
}

#[test]
fn fills_plain_values_per_kid() {
    let (request, response) = respond(VOD_VIDEO_AUDIO);
    let keys = keys_for(&request);
    let plain = values(&response, "<pskc:PlainValue", "</pskc:PlainValue>");
    assert_eq!(
        plain,
        keys.iter()
            .map(|k| STANDARD.encode(k.key))
            .collect::<Vec<_>>()
    );
    assert!(response.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cpix:CPIX contentId=\"abc123\" version=\"2.3\""));
    // The encryptor's IVs are echoed.
    assert!(response.contains("explicitIV=\"OFj2IjCsPJFfMAxmQxLGPw==\""));
    assert!(response.contains(&format!(
        "explicitIV=\"{}\"",
        STANDARD.encode(hex::decode("2fa8f3757ad70056c224606e32bacaac").unwrap())
    )));
}

#[test]
fn key_provider_iv_is_added_only_when_the_request_has_none() {
    let request = parse(LIVE_ROTATION).unwrap();
    let mut keys = keys_for(&request);
    keys[0].explicit_iv = Some([7; 16]);
    let response = build_response(&request, &keys, &signaling()).unwrap();
    assert_eq!(response.matches("explicitIV=").count(), 1);
    assert!(response.contains(&format!("explicitIV=\"{}\"", STANDARD.encode([7u8; 16]))));
    let request = parse(VOD_SINGLE_KEY).unwrap();
    let mut keys = keys_for(&request);
    keys[0].explicit_iv = Some([7; 16]);
    let response = build_response(&request, &keys, &signaling()).unwrap();
    assert!(response.contains("explicitIV=\"OFj2IjCsPJFfMAxmQxLGPw==\""));
}

#[test]
fn widevine_pssh_carries_kid_content_id_and_scheme() {
    let (_, response) = respond(VOD_SINGLE_KEY);
    let pssh_values = values(&response, "<cpix:PSSH", "</cpix:PSSH>");
    assert_eq!(pssh_values.len(), 1);
    let bytes = b64d(pssh_values[0]);
    let parsed = pssh::parse_pssh_box(&bytes).unwrap();
    assert_eq!(parsed.version, 0);
    assert_eq!(parsed.system_id, DrmSystemKind::Widevine.system_id_bytes());
    // key_ids (2), provider (3), content_id (4), protection_scheme (9) = 'cbcs'.
    let mut expected = vec![0x12, 0x10];
    expected.extend_from_slice(&kid(KID_A).0);
    expected.extend_from_slice(&[0x1a, 14]);
    expected.extend_from_slice(b"streaming-edge");
    expected.extend_from_slice(&[0x22, 6]);
    expected.extend_from_slice(b"abc123");
    expected.extend_from_slice(&[0x48, 0xf3, 0xc6, 0x89, 0x9b, 0x06]);
    assert_eq!(parsed.data, expected);
    assert_eq!(bytes.len(), 32 + expected.len());

    // ContentProtectionData wraps the very same box.
    let cpd = values(
        &response,
        "<cpix:ContentProtectionData",
        "</cpix:ContentProtectionData>",
    );
    assert_eq!(
        b64s(cpd[0]),
        format!(
            "<cenc:pssh xmlns:cenc=\"urn:mpeg:cenc:2013\">{}</cenc:pssh>",
            pssh_values[0]
        )
    );

    // HLS: SAMPLE-AES for cbcs, the pssh as a data URI, the kid.
    let hls = values(
        &response,
        "<cpix:HLSSignalingData",
        "</cpix:HLSSignalingData>",
    );
    let attrs = format!(
        "METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,{}\",KEYID=0x98EE5596CD3EA20D163AE382420C6EFF,\
         KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\",KEYFORMATVERSIONS=\"1\"",
        pssh_values[0]
    );
    assert_eq!(b64s(hls[0]), format!("#EXT-X-KEY:{attrs}"));
    assert_eq!(b64s(hls[1]), format!("#EXT-X-SESSION-KEY:{attrs}"));
    assert!(response.contains("<cpix:HLSSignalingData playlist=\"media\">"));
    assert!(response.contains("<cpix:HLSSignalingData playlist=\"master\">"));
}

#[test]
fn widevine_pssh_names_the_rotation_period() {
    let (_, response) = respond(LIVE_ROTATION);
    let boxes: Vec<PsshBox> = values(&response, "<cpix:PSSH", "</cpix:PSSH>")
        .into_iter()
        .map(|v| pssh::parse_pssh_box(&b64d(v)).unwrap())
        .filter(|b| b.system_id == DrmSystemKind::Widevine.system_id_bytes())
        .collect();
    assert_eq!(boxes.len(), 4);
    // crypto_period_index (7): 11, 11, 12, 12; cenc: no protection_scheme field.
    for (b, index) in boxes.iter().zip([11u8, 11, 12, 12]) {
        assert!(b.data.ends_with(&[0x38, index]), "{:02x?}", b.data);
        assert!(!b.data.contains(&0x48));
    }
}

#[test]
fn playready_object_carries_a_wrmheader_4_3() {
    let (_, response) = respond(VOD_VIDEO_AUDIO);
    let pssh_values: Vec<PsshBox> = values(&response, "<cpix:PSSH", "</cpix:PSSH>")
        .into_iter()
        .map(|v| pssh::parse_pssh_box(&b64d(v)).unwrap())
        .filter(|b| b.system_id == DrmSystemKind::PlayReady.system_id_bytes())
        .collect();
    assert_eq!(pssh_values.len(), 2);
    let header = pssh::parse_playready_object(&pssh_values[0].data).unwrap();
    assert_eq!(
        header,
        "<WRMHEADER xmlns=\"http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader\" version=\"4.3.0.0\">\
         <DATA><PROTECTINFO><KIDS><KID ALGID=\"AESCBC\" VALUE=\"llXumD7NDaIWOuOCQgxu/w==\"></KID></KIDS>\
         </PROTECTINFO><LA_URL>https://license.example.com/playready?a=1&amp;b=2</LA_URL></DATA></WRMHEADER>"
    );
    // The MSS header is the PlayReady Object itself; ContentProtectionData has pssh + pro.
    let pro_b64 = STANDARD.encode(&pssh_values[0].data);
    let smooth = values(
        &response,
        "<cpix:SmoothStreamingProtectionHeaderData",
        "</cpix:SmoothStreamingProtectionHeaderData>",
    );
    assert_eq!(smooth[0], pro_b64);
    let cpd: Vec<String> = values(
        &response,
        "<cpix:ContentProtectionData",
        "</cpix:ContentProtectionData>",
    )
    .into_iter()
    .map(b64s)
    .collect();
    assert!(cpd.iter().any(|c| c.ends_with(&format!(
        "<mspr:pro xmlns:mspr=\"urn:microsoft:playready\">{pro_b64}</mspr:pro>"
    ))));
    let hls: Vec<String> = values(
        &response,
        "<cpix:HLSSignalingData",
        "</cpix:HLSSignalingData>",
    )
    .into_iter()
    .map(b64s)
    .collect();
    assert!(hls.contains(&format!(
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;charset=UTF-16;base64,{pro_b64}\",\
         KEYFORMAT=\"com.microsoft.playready\",KEYFORMATVERSIONS=\"1\""
    )));
}

#[test]
fn playready_cenc_uses_aesctr() {
    let header = pssh::wrm_header(&[kid(KID_A)], EncryptionScheme::Cenc, None);
    assert!(header.contains("<KID ALGID=\"AESCTR\" VALUE=\"llXumD7NDaIWOuOCQgxu/w==\"></KID>"));
    assert!(!header.contains("LA_URL"));
    let pro = pssh::playready_object(&header).unwrap();
    assert_eq!(
        u32::from_le_bytes(pro[0..4].try_into().unwrap()) as usize,
        pro.len()
    );
    assert!(pssh::playready_object(&"x".repeat(40_000)).is_none());
}

#[test]
fn fairplay_signals_skd_uris_and_drops_pssh() {
    let (_, response) = respond(VOD_VIDEO_AUDIO);
    let hls: Vec<String> = values(
        &response,
        "<cpix:HLSSignalingData",
        "</cpix:HLSSignalingData>",
    )
    .into_iter()
    .map(b64s)
    .collect();
    assert_eq!(
        hls[0],
        format!(
            "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://{KID_A}\",IV=0x3858F62230AC3C915F300C664312C63F,\
             KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\""
        )
    );
    assert_eq!(hls[1], hls[0].replace("#EXT-X-KEY:", "#EXT-X-SESSION-KEY:"));
    // The presets request sends a FairPlay PSSH placeholder; it is dropped, as AWS's
    // reference key server does.
    let (request, response) = respond(LIVE_PRESETS);
    let fairplay_blocks = response
        .split("<cpix:DRMSystem ")
        .filter(|b| b.contains(FAIRPLAY_SYSTEM_ID))
        .count();
    assert_eq!(fairplay_blocks, 2);
    let pssh_count = values(&response, "<cpix:PSSH", "</cpix:PSSH>").len();
    assert_eq!(
        pssh_count,
        request
            .drm_systems
            .iter()
            .filter(|d| d.system == DrmSystemKind::Widevine)
            .count()
    );
}

#[test]
fn speke_v1_placeholders_are_filled() {
    let (_, response) = respond(V1_STYLE);
    assert!(response.contains("xmlns:speke=\"urn:aws:amazon:com:speke\""));
    let uri = values(&response, "<cpix:URIExtXKey", "</cpix:URIExtXKey>");
    assert_eq!(uri.len(), 1);
    assert_eq!(b64s(uri[0]), format!("skd://{KID_A}"));
    let format = values(&response, "<speke:KeyFormat", "</speke:KeyFormat>");
    assert_eq!(b64s(format[0]), "com.apple.streamingkeydelivery");
    let versions = values(
        &response,
        "<speke:KeyFormatVersions",
        "</speke:KeyFormatVersions>",
    );
    assert_eq!(b64s(versions[0]), "1");
    // ProtectionHeader: dropped for FairPlay, the PlayReady Object for PlayReady.
    let headers = values(
        &response,
        "<speke:ProtectionHeader",
        "</speke:ProtectionHeader>",
    );
    assert_eq!(headers.len(), 1);
    assert!(pssh::parse_playready_object(&b64d(headers[0])).is_some());
    // FairPlay's ContentProtectionData and PSSH placeholders are dropped.
    assert_eq!(
        values(
            &response,
            "<cpix:ContentProtectionData",
            "</cpix:ContentProtectionData>"
        )
        .len(),
        0
    );
    assert_eq!(values(&response, "<cpix:PSSH", "</cpix:PSSH>").len(), 1);
}

#[test]
fn clearkey_common_pssh_and_aes128_key_urls() {
    let (_, response) = respond(CLEARKEY);
    let pssh_values = values(&response, "<cpix:PSSH", "</cpix:PSSH>");
    let bytes = b64d(pssh_values[0]);
    // The W3C common format, as AWS's reference key server writes it: 52 bytes, version 1.
    let mut expected = vec![0, 0, 0, 0x34];
    expected.extend_from_slice(b"pssh");
    expected.extend_from_slice(&[1, 0, 0, 0]);
    expected.extend_from_slice(&hex::decode("1077efecc0b24d02ace33c1e52e2fb4b").unwrap());
    expected.extend_from_slice(&[0, 0, 0, 1]);
    expected.extend_from_slice(&kid("0f8fad5b-d9cb-469f-a165-70867728950e").0);
    expected.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(bytes, expected);
    let hls: Vec<String> = values(
        &response,
        "<cpix:HLSSignalingData",
        "</cpix:HLSSignalingData>",
    )
    .into_iter()
    .map(b64s)
    .collect();
    assert_eq!(
        hls,
        [
            "#EXT-X-KEY:METHOD=AES-128,URI=\"https://edge.example.com/keys/video-0f8fad5b/0f8fad5b-d9cb-469f-a165-70867728950e\",KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\"",
            "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"https://edge.example.com/keys/video-0f8fad5b/0f8fad5b-d9cb-469f-a165-70867728950e\",KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\"",
        ]
    );
}

#[test]
fn systems_without_placeholders_get_defaults() {
    let doc = VOD_SINGLE_KEY.replace(
        "</cpix:DRMSystemList>",
        &format!(
            "<cpix:DRMSystem kid=\"{KID_A}\" systemId=\"{FAIRPLAY_SYSTEM_ID}\"/>\
             <cpix:DRMSystem kid=\"{KID_A}\" systemId=\"{PLAYREADY_SYSTEM_ID}\"/></cpix:DRMSystemList>"
        ),
    );
    let request = parse(&doc).unwrap();
    assert!(request.drm_systems[1].requested.is_empty());
    let response = build_response(&request, &keys_for(&request), &Signaling::default()).unwrap();
    // Widevine (requested): 1 PSSH + 1 CPD + 2 HLS; FairPlay: 2 HLS; PlayReady: PSSH + CPD.
    assert_eq!(values(&response, "<cpix:PSSH", "</cpix:PSSH>").len(), 2);
    assert_eq!(
        values(
            &response,
            "<cpix:ContentProtectionData",
            "</cpix:ContentProtectionData>"
        )
        .len(),
        2
    );
    assert_eq!(
        values(
            &response,
            "<cpix:HLSSignalingData",
            "</cpix:HLSSignalingData>"
        )
        .len(),
        4
    );
}

#[test]
fn escapes_echoed_text() {
    let doc = VOD_SINGLE_KEY.replace("abc123", "a&amp;b&lt;c&quot;d&apos;e");
    let (request, response) = respond(&doc);
    assert_eq!(request.content_id, "a&b<c\"d'e");
    assert!(response.contains("contentId=\"a&amp;b&lt;c&quot;d&apos;e\""));
    assert_eq!(parse(&response).unwrap().content_id, request.content_id);
}

#[test]
fn builder_faults_are_server_errors() {
    let request = parse(VOD_VIDEO_AUDIO).unwrap();
    let mut keys = keys_for(&request);
    keys.pop();
    let err = build_response(&request, &keys, &signaling()).unwrap_err();
    assert_eq!(err, SpekeError::MissingKeyMaterial { kid: kid(KID_B) });
    assert_eq!(err.status(), 500);

    let request = parse(CLEARKEY).unwrap();
    let err = build_response(&request, &keys_for(&request), &Signaling::default()).unwrap_err();
    assert!(matches!(err, SpekeError::NotConfigured(_)));
    assert_eq!(err.status(), 500);

    let request = parse(VOD_VIDEO_AUDIO).unwrap();
    let bad = Signaling {
        fairplay_key_uri_prefix: "skd://\"".into(),
        ..signaling()
    };
    assert!(matches!(
        build_response(&request, &keys_for(&request), &bad),
        Err(SpekeError::NotConfigured(_))
    ));
    let bad = Signaling {
        playready_la_url: Some("https://x/\n".into()),
        ..signaling()
    };
    assert!(matches!(
        build_response(&request, &keys_for(&request), &bad),
        Err(SpekeError::NotConfigured(_))
    ));
}

#[test]
fn key_material_debug_is_redacted() {
    let m = ContentKeyMaterial {
        kid: kid(KID_A),
        key: [0xab; 16],
        explicit_iv: None,
    };
    let debug = format!("{m:?}");
    assert!(debug.contains("redacted") && !debug.contains("abab") && !debug.contains("171"));
}

#[test]
fn system_ids_and_schemes() {
    for kind in DrmSystemKind::ALL {
        assert_eq!(DrmSystemKind::from_system_id(kind.system_id()), Some(kind));
        assert_eq!(
            DrmSystemKind::from_system_id(&kind.system_id().to_uppercase()),
            Some(kind)
        );
    }
    assert_eq!(
        DrmSystemKind::from_system_id("edef8ba979d64acea3c827dcd51d21ed"),
        None
    );
    assert_eq!(EncryptionScheme::Cbcs.fourcc(), 0x6362_6373);
    assert_eq!(EncryptionScheme::parse("CBCS"), None);
}

#[test]
fn pssh_box_round_trips_and_rejects_garbage() {
    let kids = [kid(KID_A), kid(KID_B)];
    let b = pssh::pssh_box(&[9; 16], Some(&kids), b"data");
    assert_eq!(
        pssh::parse_pssh_box(&b),
        Some(PsshBox {
            version: 1,
            system_id: [9; 16],
            kids: kids.to_vec(),
            data: b"data".to_vec()
        })
    );
    for cut in 0..b.len() {
        assert!(pssh::parse_pssh_box(&b[..cut]).is_none());
    }
    let mut lying = b.clone();
    lying[31] = 0xff; // KID_count
    assert!(pssh::parse_pssh_box(&lying).is_none());
}

#[test]
fn hls_tag_lines() {
    let tag = KeyTag {
        method: "AES-128",
        uri: "/keys/v/k".into(),
        iv: Some([1; 16]),
        key_id: None,
        key_format: super::hls::IDENTITY_KEYFORMAT,
        key_format_versions: "1",
    };
    assert_eq!(
        tag.line(Playlist::Media),
        "#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/v/k\",IV=0x01010101010101010101010101010101,KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\""
    );
    assert!(super::hls::is_quotable("skd://x"));
    assert!(!super::hls::is_quotable("a\"b"));
    assert!(!super::hls::is_quotable("a\nb"));
    assert!(!super::hls::is_quotable(""));
}
