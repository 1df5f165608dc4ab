//! MPD rewriting: every mode, every URL place, byte preservation and bad input.

use super::*;
use crate::hls::Stamp;

const V: &str = "0b5c6a8e-3f1d-4c2a-9e7b-1a2b3c4d5e6f";
const T: &str = "exp=1~acl=/hls/x/*~hmac=ab";

/// Shaped like Shaka Packager's output: CMAF, cbcs, four protection systems.
fn packaged() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?>
<!--Generated with https://github.com/shaka-project/shaka-packager version v3.8.0-->
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cenc="urn:mpeg:cenc:2013" xmlns:mspr="urn:microsoft:playready" profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT2S" type="static" mediaPresentationDuration="PT7.9S">
  <Period id="0">
    <AdaptationSet id="0" contentType="video" segmentAlignment="true">
      <ContentProtection value="cbcs" schemeIdUri="urn:mpeg:dash:mp4protection:2011" cenc:default_KID="11223344-5566-7788-99aa-bbccddeeff00"/>
      <ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed">
        <cenc:pssh>AAAAOHBzc2g=</cenc:pssh>
      </ContentProtection>
      <ContentProtection schemeIdUri="urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95">
        <cenc:pssh>AAAB</cenc:pssh>
        <mspr:pro>AAAC</mspr:pro>
      </ContentProtection>
      <ContentProtection schemeIdUri="urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b">
        <cenc:pssh>AAAD</cenc:pssh>
      </ContentProtection>
      <Representation id="0" bandwidth="1200000" codecs="avc1.64001f" mimeType="video/mp4" width="1280" height="720">
        <SegmentTemplate timescale="90000" initialization="720p/init.mp4" media="720p/seg_$Number%05d$.m4s" startNumber="1">
          <SegmentTimeline>
            <S t="0" d="360000" r="1"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#
    .to_string()
}

fn ctx<'a>(stamp: Stamp<'a>, licenses: Option<LicenseUrls<'a>>) -> MpdContext<'a> {
    MpdContext {
        video_id: V,
        mpd_path: "/hls/0b5c6a8e-3f1d-4c2a-9e7b-1a2b3c4d5e6f/manifest.mpd",
        origin_prefix: None,
        token_name: "hdnts",
        stamp,
        licenses,
    }
}

const LICENSES: LicenseUrls<'static> = LicenseUrls {
    widevine: "https://edge.example/drm/widevine/v?hdnts=a&x=1",
    playready: "https://edge.example/drm/playready/v?hdnts=a",
    clearkey: "https://edge.example/drm/clearkey/v?hdnts=a",
};

#[test]
fn query_mode_stamps_every_url_and_keeps_identifiers() {
    let out = rewrite_mpd(&packaged(), &ctx(Stamp::Query(T), None)).unwrap();
    assert!(out.contains(&format!(
        r#"initialization="720p/init.mp4?hdnts={T}" media="720p/seg_$Number%05d$.m4s?hdnts={T}""#
    )));
    // Nothing else moved: undo the two stamps and the bytes are the origin's.
    let undone = out.replace(&format!("?hdnts={T}"), "");
    assert_eq!(undone, packaged());
}

#[test]
fn path_mode_injects_one_base_url_after_the_root_children_that_precede_it() {
    let seg = "exp=1~hmac=ab";
    let out = rewrite_mpd(&packaged(), &ctx(Stamp::PathSegment(seg), None)).unwrap();
    let base = format!("<BaseURL>/hls/{V}/hdnts={seg}/</BaseURL>\n  <Period id=\"0\">");
    assert!(out.contains(&base), "{out}");
    assert!(out.contains(r#"media="720p/seg_$Number%05d$.m4s""#));
    assert_eq!(out.matches("<BaseURL>").count(), 1);
}

#[test]
fn path_mode_rebases_the_mpds_own_base_url_instead_of_adding_one() {
    let input = packaged().replace(
        "  <Period id=\"0\">",
        "  <BaseURL>media/</BaseURL>\n  <Period id=\"0\">",
    );
    let out = rewrite_mpd(&input, &ctx(Stamp::PathSegment("s"), None)).unwrap();
    assert!(out.contains(&format!("<BaseURL>/hls/{V}/hdnts=s/media/</BaseURL>")));
    assert_eq!(out.matches("<BaseURL>").count(), 1);
}

#[test]
fn cookie_mode_changes_nothing_but_origin_urls() {
    let out = rewrite_mpd(&packaged(), &ctx(Stamp::Nothing, None)).unwrap();
    assert_eq!(out, packaged());
    let origin = packaged().replace(
        "media=\"720p/",
        "media=\"http://origin.example/media/0b5c6a8e-3f1d-4c2a-9e7b-1a2b3c4d5e6f/720p/",
    );
    let mut c = ctx(Stamp::Nothing, None);
    let prefix = format!("http://origin.example/media/{V}/");
    c.origin_prefix = Some(&prefix);
    let out = rewrite_mpd(&origin, &c).unwrap();
    assert!(out.contains(&format!("media=\"/hls/{V}/720p/seg_$Number%05d$.m4s\"")));
}

#[test]
fn urls_of_other_hosts_and_outside_the_title_stay() {
    let input = packaged()
        .replace(
            "initialization=\"720p/init.mp4\"",
            "initialization=\"https://cdn.other/init.mp4\"",
        )
        .replace("media=\"720p/", "media=\"/elsewhere/");
    let out = rewrite_mpd(&input, &ctx(Stamp::PathSegment("s"), None)).unwrap();
    assert!(out.contains("initialization=\"https://cdn.other/init.mp4\""));
    assert!(out.contains("media=\"/elsewhere/seg_$Number%05d$.m4s\""));
}

#[test]
fn segment_lists_and_index_urls() {
    let input = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period><AdaptationSet><Representation id="a"><BaseURL>a/</BaseURL><SegmentList><Initialization sourceURL="init.mp4"/><SegmentURL media="s1.m4s?part=1&amp;x=2"/><SegmentURL media="s2.m4s?hdnts=stale"/></SegmentList><SegmentBase><RepresentationIndex sourceURL="idx"/></SegmentBase></Representation></AdaptationSet></Period></MPD>"#;
    let out = rewrite_mpd(input, &ctx(Stamp::Query("t"), None)).unwrap();
    assert!(out.contains("<BaseURL>a/?hdnts=t</BaseURL>"), "{out}");
    assert!(out.contains(r#"<Initialization sourceURL="init.mp4?hdnts=t"/>"#));
    assert!(out.contains(r#"<SegmentURL media="s1.m4s?part=1&amp;x=2&amp;hdnts=t"/>"#));
    assert!(out.contains(r#"<SegmentURL media="s2.m4s?hdnts=t"/>"#));
    assert!(out.contains(r#"<RepresentationIndex sourceURL="idx?hdnts=t"/>"#));
}

#[test]
fn license_urls_land_where_players_read_them() {
    let out = rewrite_mpd(&packaged(), &ctx(Stamp::Query("t"), Some(LICENSES))).unwrap();
    assert!(out.contains(r#"xmlns:dashif="https://dashif.org/CPS""#));
    assert!(out.contains(r#"xmlns:clearkey="http://dashif.org/guidelines/clearKey""#));
    let wv = "https://edge.example/drm/widevine/v?hdnts=a&amp;x=1";
    assert!(out.contains(&format!(
        r#"<ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><dashif:Laurl>{wv}</dashif:Laurl><ms:laurl licenseUrl="{wv}"/>"#
    )));
    assert!(
        out.contains("<dashif:Laurl>https://edge.example/drm/playready/v?hdnts=a</dashif:Laurl>")
    );
    assert!(out.contains(r#"<clearkey:Laurl Lic_type="EME-1.0">https://edge.example/drm/clearkey/v?hdnts=a</clearkey:Laurl>"#));
    // The scheme element (mp4protection) gets nothing, the PSSH data stays.
    assert_eq!(out.matches("</dashif:Laurl>").count(), 4);
    assert_eq!(out.matches("</clearkey:Laurl>").count(), 2);
    // The common system's ClearKey gets the DASH-IF ClearKey element beside it (for dash.js).
    assert!(out.contains(r#"</ContentProtection><ContentProtection schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" value="ClearKey1.0"><clearkey:Laurl Lic_type="EME-1.0">https://edge.example/drm/clearkey/v?hdnts=a</clearkey:Laurl><dashif:Laurl>https://edge.example/drm/clearkey/v?hdnts=a</dashif:Laurl></ContentProtection>"#), "{out}");
    assert_eq!(out.matches("e2719d58").count(), 1);
    assert!(out.contains("<mspr:pro>AAAC</mspr:pro>"));
}

#[test]
fn origin_license_urls_are_replaced_and_empty_protection_elements_opened() {
    let input = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:dashif="https://dashif.org/CPS" xmlns:ck="http://dashif.org/guidelines/clearKey"><Period><AdaptationSet><ContentProtection schemeIdUri="urn:uuid:E2719D58-A985-B3C9-781A-B030AF78D30E" value="ClearKey1.0"><ck:Laurl Lic_type="EME-1.0">https://third.party/lic</ck:Laurl><dashif:laurl>https://third.party/lic</dashif:laurl></ContentProtection><ContentProtection schemeIdUri="urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95"/></AdaptationSet></Period></MPD>"#;
    let out = rewrite_mpd(input, &ctx(Stamp::Nothing, Some(LICENSES))).unwrap();
    assert!(!out.contains("third.party"), "{out}");
    // The root's own prefixes are reused, and only the missing namespace is declared.
    assert!(!out.contains("xmlns:clearkey"));
    assert!(out.contains(
        r#"<ck:Laurl Lic_type="EME-1.0">https://edge.example/drm/clearkey/v?hdnts=a</ck:Laurl>"#
    ));
    assert!(out.contains(r#"<ContentProtection schemeIdUri="urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95"><dashif:Laurl>https://edge.example/drm/playready/v?hdnts=a</dashif:Laurl></ContentProtection>"#), "{out}");
}

#[test]
fn a_taken_prefix_is_renamed() {
    let input = r#"<MPD xmlns:dashif="urn:something:else"><Period><AdaptationSet><ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"/></AdaptationSet></Period></MPD>"#;
    let out = rewrite_mpd(input, &ctx(Stamp::Nothing, Some(LICENSES))).unwrap();
    assert!(out.contains(r#"xmlns:dashif2="https://dashif.org/CPS""#));
    assert!(out.contains("<dashif2:Laurl>"));
}

#[test]
fn dynamic_mpds_get_a_location_with_the_viewers_stamp() {
    let live = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT2S">
  <Period id="p"/>
</MPD>"#;
    let out = rewrite_mpd(live, &ctx(Stamp::Query("t"), None)).unwrap();
    assert!(
        out.contains(&format!(
            "<Location>/hls/{V}/manifest.mpd?hdnts=t</Location>\n  <Period"
        )),
        "{out}"
    );
    let out = rewrite_mpd(live, &ctx(Stamp::PathSegment("s"), None)).unwrap();
    assert!(out.contains(&format!("<BaseURL>/hls/{V}/hdnts=s/</BaseURL>")));
    assert!(out.contains(&format!(
        "<Location>/hls/{V}/hdnts=s/manifest.mpd</Location>"
    )));
    // An origin Location is mapped onto the edge instead.
    let with_location = live.replace(
        "  <Period",
        "  <Location>manifest.mpd?v=2</Location>\n  <Period",
    );
    let out = rewrite_mpd(&with_location, &ctx(Stamp::Query("t"), None)).unwrap();
    assert_eq!(out.matches("<Location>").count(), 1);
    assert!(out.contains(&format!(
        "<Location>/hls/{V}/manifest.mpd?v=2&amp;hdnts=t</Location>"
    )));
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let c = ctx(Stamp::Query("t"), None);
    let dtd = "<?xml version=\"1.0\"?><!DOCTYPE MPD [<!ENTITY x \"y\">]><MPD>&x;</MPD>";
    assert_eq!(rewrite_mpd(dtd, &c), Err(MpdError::Dtd));
    assert_eq!(
        rewrite_mpd("<MPD><Period>&x;</Period></MPD>", &c),
        Err(MpdError::Dtd)
    );
    assert_eq!(
        rewrite_mpd("#EXTM3U\n", &c).unwrap_err(),
        MpdError::Malformed("text outside the root element".into())
    );
    assert_eq!(rewrite_mpd("<html/>", &c), Err(MpdError::NotAnMpd));
    let bom = "\u{feff}<MPD><Period/></MPD>";
    assert_eq!(
        rewrite_mpd(bom, &ctx(Stamp::Nothing, None)).as_deref(),
        Ok(bom)
    );
    assert!(matches!(
        rewrite_mpd("\u{feff}\u{feff}<MPD/>", &c),
        Err(MpdError::Malformed(_))
    ));
    assert_eq!(rewrite_mpd("", &c), Err(MpdError::NotAnMpd));
    assert!(matches!(
        rewrite_mpd("<MPD><Period>", &c),
        Err(MpdError::Malformed(_))
    ));
    assert!(matches!(
        rewrite_mpd("<MPD><a></b></MPD>", &c),
        Err(MpdError::Malformed(_))
    ));
    let deep = format!("<MPD>{}{}</MPD>", "<a>".repeat(40), "</a>".repeat(40));
    assert_eq!(rewrite_mpd(&deep, &c), Err(MpdError::TooDeep));
    let template = packaged().replace("$Number%05d$", "$Segment$");
    match rewrite_mpd(&template, &c) {
        Err(MpdError::BadTemplate { problem, .. }) => {
            assert_eq!(problem, TemplateError::UnknownIdentifier("Segment".into()))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        rewrite_mpd("<MPD><BaseURL>a<![CDATA[b]]></BaseURL></MPD>", &c),
        Err(MpdError::Malformed(_))
    ));
}

#[test]
fn facts_and_names() {
    assert!(is_mpd("/hls/v/manifest.mpd"));
    assert!(is_mpd("/hls/v/Manifest.MPD?x"));
    assert!(!is_mpd("/hls/v/master.m3u8"));
    let facts = mpd_facts(&packaged()).unwrap();
    assert_eq!(facts.duration_secs, Some(8));
    assert!(!facts.dynamic);
}

/// A `SegmentList` MPD with runs the fast path takes and shapes it must hand back.
fn segment_list(segments: &str) -> String {
    format!(
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\">\n <Period>\n  <AdaptationSet>\n   \
         <Representation id=\"v\" bandwidth=\"1\">\n    <SegmentList duration=\"4\">\n     \
         <Initialization sourceURL=\"init.mp4\"/>{segments}\n    </SegmentList>\n   </Representation>\n  \
         </AdaptationSet>\n </Period>\n</MPD>\n"
    )
}

#[test]
fn segment_url_runs_are_rewritten_as_the_event_parser_rewrites_them() {
    let plain: String = (1..=50)
        .map(|i| format!("\n     <SegmentURL media=\"v/s{i}.m4s\" mediaRange='0-{i}'/>"))
        .collect();
    let inputs = [
        segment_list(&plain),
        segment_list(&format!(
            "{plain}<SegmentURL media=\"/hls/{V}/abs.m4s\"/>{plain}"
        )),
        segment_list(&format!(
            "{plain}\n<SegmentURL media=\"a&amp;b.m4s\"/>{plain}"
        )),
        segment_list(&format!(
            "{plain}<!-- gap --><SegmentURL media=\"x.m4s?k=1\"/>"
        )),
        segment_list(&format!(
            "{plain}<SegmentURL media=\"http://elsewhere/x.m4s\"/>"
        )),
        segment_list("<SegmentURL media=\"a.m4s\"/><SegmentURL index=\"i\" media=\"b.m4s\"/>"),
        segment_list("<SegmentURL media=\"a.m4s\"/><SegmentURL media=\"b.m4s\"></SegmentURL>"),
        segment_list("<SegmentURL media=\"a.m4s\"/><SegmentURL media=\"b.m4s\"/"),
        segment_list("<SegmentURL media=\"a.m4s\"/><SegmentURL media=\"b.m4s\" media=\"c\"/>"),
        segment_list("<SegmentURL media=\"a.m4s\"/>\n<SegmentURL media=\"b.m4s\"/></Period>"),
        segment_list("<SegmentURL media=\"a.m4s\"/><SegmentURL media=\"./b.m4s\"/>"),
    ];
    let stamps = [
        Stamp::Query(T),
        Stamp::PathSegment("hdnts=x"),
        Stamp::Nothing,
        Stamp::QueryPairs("a=1&b=2"),
    ];
    for input in &inputs {
        for stamp in stamps {
            for licenses in [None, Some(LICENSES)] {
                let c = ctx(stamp, licenses);
                let fast = rewrite_mpd(input, &c);
                let reference = rewrite_mpd_event_by_event(input, &c);
                assert_eq!(fast, reference, "{stamp:?}: {input}");
            }
        }
    }
    let out = rewrite_mpd(&inputs[0], &ctx(Stamp::Query(T), None)).unwrap();
    assert_eq!(out.matches(&format!(".m4s?hdnts={T}\"")).count(), 50);
    assert!(out.contains(&format!(
        "media=\"v/s50.m4s?hdnts={T}\" mediaRange='0-50'/>"
    )));
}
