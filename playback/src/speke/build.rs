//! [`build_response`]: the filled CPIX document a key provider answers a SPEKE request with.
//!
//! The response is written from the parsed [`SpekeRequest`], not patched into the request's
//! bytes: the same `contentId` and `version`, every `ContentKey` with its key in
//! `cpix:Data/pskc:Secret/pskc:PlainValue`, every `DRMSystem` with its placeholders filled
//! (placeholders that do not apply to the system are dropped, a `DRMSystem` without any gets
//! the system's defaults), and the `ContentKeyPeriodList` and `ContentKeyUsageRuleList`
//! unchanged (SPEKE forbids the key provider to modify the contract). Prefixes are fixed
//! (`cpix:`, `pskc:`, `speke:`); namespaces are what count.
//!
//! | system | `PSSH` | `ContentProtectionData` | `HLSSignalingData` | others |
//! |---|---|---|---|---|
//! | Widevine | v0, `WidevinePsshData` | `<cenc:pssh>` | data-URI pssh, `KEYID` | |
//! | PlayReady | v0, PlayReady Object | `<cenc:pssh>` + `<mspr:pro>` | data-URI PRO | `SmoothStreamingProtectionHeaderData`, `speke:ProtectionHeader` = PRO |
//! | FairPlay | — | — | `skd://` + kid | `URIExtXKey`, `speke:KeyFormat(Versions)` |
//! | common (ClearKey) | v1, kids | `<cenc:pssh>` | — | |
//! | AES-128 | — | — | key URL + kid | `URIExtXKey`, `speke:KeyFormat(Versions)` |

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::hls::{self, KeyTag, Playlist};
use super::pssh::{self, WidevinePsshData};
use super::*;

/// A content key from key custody, for one requested kid.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKeyMaterial {
    pub kid: KeyId,
    pub key: [u8; 16],
    /// An IV the key provider chose, returned as `ContentKey@explicitIV` when the request
    /// named none (the encryptor's own `explicitIV` always wins).
    pub explicit_iv: Option<[u8; 16]>,
}

impl fmt::Debug for ContentKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentKeyMaterial")
            .field("kid", &self.kid)
            .field("key", &"<redacted>")
            .field("explicit_iv", &self.explicit_iv.map(hex::encode))
            .finish()
    }
}

/// The key provider's signaling settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signaling {
    /// Widevine `provider` in the PSSH data (the name the Widevine license service knows the
    /// key provider by), if any.
    pub widevine_provider: Option<String>,
    /// PlayReady license acquisition URL written into the WRMHEADER's `LA_URL`, if any.
    pub playready_la_url: Option<String>,
    /// FairPlay key URIs are this prefix followed by the kid as a UUID (`skd://<uuid>`, the
    /// asset id the edge's FairPlay key server reads from the SPC).
    pub fairplay_key_uri_prefix: String,
    /// HLS AES-128 key URLs are this prefix followed by the kid as a UUID; required when a
    /// request asks for [`CLEARKEY_AES128_SYSTEM_ID`].
    pub aes128_key_uri_prefix: Option<String>,
}

impl Default for Signaling {
    fn default() -> Self {
        Signaling {
            widevine_provider: None,
            playready_la_url: None,
            fairplay_key_uri_prefix: "skd://".to_owned(),
            aes128_key_uri_prefix: None,
        }
    }
}

/// Builds the response document. Every kid of `request` needs an entry in `keys`
/// ([`SpekeError::MissingKeyMaterial`] otherwise); extra entries are ignored.
pub fn build_response(
    request: &SpekeRequest,
    keys: &[ContentKeyMaterial],
    signaling: &Signaling,
) -> Result<String, SpekeError> {
    let material = |kid: &KeyId| {
        keys.iter()
            .find(|m| &m.kid == kid)
            .ok_or(SpekeError::MissingKeyMaterial { kid: *kid })
    };
    for kid in request.kids() {
        material(&kid)?;
    }
    let scheme = request.scheme();

    // Fill every DRMSystem first: a configuration fault fails before any output.
    let mut systems = Vec::with_capacity(request.drm_systems.len());
    let mut uses_speke_ns = false;
    for drm in &request.drm_systems {
        let key = request
            .content_key(&drm.kid)
            .ok_or(SpekeError::MissingKeyMaterial { kid: drm.kid })?;
        let iv = key.explicit_iv.or(material(&drm.kid)?.explicit_iv);
        let signals = effective(drm.system, drm.requested);
        let filled = fill(request, drm, scheme, iv, signals, signaling)?;
        uses_speke_ns |= filled.iter().any(|(el, _)| el.is_speke());
        systems.push((drm, filled));
    }

    let mut out = String::with_capacity(1024 + 1024 * request.drm_systems.len());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<cpix:CPIX contentId=\"{}\" version=\"{CPIX_VERSION}\" xmlns:cpix=\"{CPIX_NS}\" \
         xmlns:pskc=\"{PSKC_NS}\"",
        escape_xml(&request.content_id)
    ));
    if uses_speke_ns {
        out.push_str(&format!(" xmlns:speke=\"{SPEKE_NS}\""));
    }
    out.push_str(">\n");

    out.push_str("  <cpix:ContentKeyList>\n");
    for key in &request.content_keys {
        let m = material(&key.kid)?;
        out.push_str(&format!(
            "    <cpix:ContentKey kid=\"{}\" commonEncryptionScheme=\"{}\"",
            key.kid,
            key.scheme.as_str()
        ));
        if let Some(iv) = key.explicit_iv.or(m.explicit_iv) {
            out.push_str(&format!(" explicitIV=\"{}\"", STANDARD.encode(iv)));
        }
        out.push_str(&format!(
            ">\n      <cpix:Data>\n        <pskc:Secret>\n          \
             <pskc:PlainValue>{}</pskc:PlainValue>\n        </pskc:Secret>\n      \
             </cpix:Data>\n    </cpix:ContentKey>\n",
            STANDARD.encode(m.key)
        ));
    }
    out.push_str("  </cpix:ContentKeyList>\n");

    out.push_str("  <cpix:DRMSystemList>\n");
    for (drm, filled) in &systems {
        out.push_str(&format!(
            "    <cpix:DRMSystem kid=\"{}\" systemId=\"{}\">\n",
            drm.kid,
            drm.system.system_id()
        ));
        for (element, value) in filled {
            out.push_str(&format!(
                "      <{}{}>{value}</{}>\n",
                element.name(),
                element.attributes(),
                element.name()
            ));
        }
        out.push_str("    </cpix:DRMSystem>\n");
    }
    out.push_str("  </cpix:DRMSystemList>\n");

    if !request.key_periods.is_empty() {
        out.push_str("  <cpix:ContentKeyPeriodList>\n");
        for period in &request.key_periods {
            out.push_str(&format!(
                "    <cpix:ContentKeyPeriod id=\"{}\" index=\"{}\"/>\n",
                escape_xml(&period.id),
                period.index
            ));
        }
        out.push_str("  </cpix:ContentKeyPeriodList>\n");
    }

    out.push_str("  <cpix:ContentKeyUsageRuleList>\n");
    for rule in &request.usage_rules {
        out.push_str(&format!(
            "    <cpix:ContentKeyUsageRule kid=\"{}\" intendedTrackType=\"{}\">\n",
            rule.kid,
            escape_xml(&rule.intended_track_type)
        ));
        if let Some(period_id) = &rule.period_id {
            out.push_str(&format!(
                "      <cpix:KeyPeriodFilter periodId=\"{}\"/>\n",
                escape_xml(period_id)
            ));
        }
        for filter in &rule.filters {
            out.push_str("      ");
            out.push_str(&filter_element(filter));
            out.push('\n');
        }
        out.push_str("    </cpix:ContentKeyUsageRule>\n");
    }
    out.push_str("  </cpix:ContentKeyUsageRuleList>\n");
    out.push_str("</cpix:CPIX>\n");
    Ok(out)
}

/// A signaling element of a `DRMSystem`, in CPIX 2.3's schema order (SPEKE's own last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Element {
    Pssh,
    ContentProtectionData,
    UriExtXKey,
    HlsMedia,
    HlsMaster,
    SmoothStreaming,
    KeyFormat,
    KeyFormatVersions,
    ProtectionHeader,
}

impl Element {
    fn name(self) -> &'static str {
        match self {
            Element::Pssh => "cpix:PSSH",
            Element::ContentProtectionData => "cpix:ContentProtectionData",
            Element::UriExtXKey => "cpix:URIExtXKey",
            Element::HlsMedia | Element::HlsMaster => "cpix:HLSSignalingData",
            Element::SmoothStreaming => "cpix:SmoothStreamingProtectionHeaderData",
            Element::KeyFormat => "speke:KeyFormat",
            Element::KeyFormatVersions => "speke:KeyFormatVersions",
            Element::ProtectionHeader => "speke:ProtectionHeader",
        }
    }

    fn attributes(self) -> &'static str {
        match self {
            Element::HlsMedia => " playlist=\"media\"",
            Element::HlsMaster => " playlist=\"master\"",
            _ => "",
        }
    }

    fn is_speke(self) -> bool {
        matches!(
            self,
            Element::KeyFormat | Element::KeyFormatVersions | Element::ProtectionHeader
        )
    }
}

/// The placeholders that apply to `system`, and its defaults when none was sent.
fn effective(system: DrmSystemKind, requested: Signals) -> Signals {
    let hls_key_uri = matches!(
        system,
        DrmSystemKind::FairPlay | DrmSystemKind::ClearKeyAes128
    );
    let cenc = matches!(
        system,
        DrmSystemKind::Widevine | DrmSystemKind::PlayReady | DrmSystemKind::CommonSystem
    );
    let hls = system != DrmSystemKind::CommonSystem;
    let playready = system == DrmSystemKind::PlayReady;
    if requested.is_empty() {
        return Signals {
            pssh: cenc,
            content_protection_data: cenc,
            hls_media: hls_key_uri,
            hls_master: hls_key_uri,
            ..Signals::default()
        };
    }
    Signals {
        pssh: requested.pssh && cenc,
        content_protection_data: requested.content_protection_data && cenc,
        hls_media: requested.hls_media && hls,
        hls_master: requested.hls_master && hls,
        smooth_streaming: requested.smooth_streaming && playready,
        uri_ext_x_key: requested.uri_ext_x_key && hls_key_uri,
        key_format: requested.key_format && hls_key_uri,
        key_format_versions: requested.key_format_versions && hls_key_uri,
        protection_header: requested.protection_header && playready,
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

fn sample_aes(scheme: EncryptionScheme) -> &'static str {
    if scheme.is_cbc() {
        "SAMPLE-AES"
    } else {
        "SAMPLE-AES-CTR"
    }
}

fn cenc_pssh_xml(pssh_b64: &str) -> String {
    format!("<cenc:pssh xmlns:cenc=\"urn:mpeg:cenc:2013\">{pssh_b64}</cenc:pssh>")
}

/// The values of the signaling elements of one `DRMSystem`, in output order.
fn fill(
    request: &SpekeRequest,
    drm: &DrmSystem,
    scheme: EncryptionScheme,
    iv: Option<[u8; 16]>,
    want: Signals,
    signaling: &Signaling,
) -> Result<Vec<(Element, String)>, SpekeError> {
    let mut out: Vec<(Element, String)> = Vec::new();
    let mut hls_tag: Option<KeyTag> = None;
    let mut key_uri: Option<(String, &'static str)> = None;
    match drm.system {
        DrmSystemKind::Widevine => {
            let data = WidevinePsshData {
                key_ids: vec![drm.kid],
                provider: signaling.widevine_provider.clone(),
                content_id: request.content_id.as_bytes().to_vec(),
                crypto_period_index: request
                    .key_period(&drm.kid)
                    .and_then(|p| u32::try_from(p.index).ok()),
                protection_scheme: Some(scheme),
            };
            let pssh_b64 = b64(pssh::widevine_pssh(&data));
            if want.content_protection_data {
                out.push((
                    Element::ContentProtectionData,
                    b64(cenc_pssh_xml(&pssh_b64)),
                ));
            }
            hls_tag = Some(KeyTag {
                method: sample_aes(scheme),
                uri: format!("data:text/plain;base64,{pssh_b64}"),
                iv: None,
                key_id: Some(drm.kid),
                key_format: hls::WIDEVINE_KEYFORMAT,
                key_format_versions: "1",
            });
            if want.pssh {
                out.push((Element::Pssh, pssh_b64));
            }
        }
        DrmSystemKind::PlayReady => {
            if let Some(url) = &signaling.playready_la_url {
                if url.chars().any(char::is_control) {
                    return Err(SpekeError::NotConfigured(
                        "the PlayReady LA_URL contains control characters",
                    ));
                }
            }
            let header =
                pssh::wrm_header(&[drm.kid], scheme, signaling.playready_la_url.as_deref());
            let pro = pssh::playready_object(&header).ok_or(SpekeError::NotConfigured(
                "the PlayReady header does not fit a PlayReady Object",
            ))?;
            let pro_b64 = b64(&pro);
            let pssh_b64 = b64(pssh::playready_pssh(&pro));
            if want.content_protection_data {
                let xml = format!(
                    "{}<mspr:pro xmlns:mspr=\"urn:microsoft:playready\">{pro_b64}</mspr:pro>",
                    cenc_pssh_xml(&pssh_b64)
                );
                out.push((Element::ContentProtectionData, b64(xml)));
            }
            if want.smooth_streaming {
                out.push((Element::SmoothStreaming, pro_b64.clone()));
            }
            if want.protection_header {
                out.push((Element::ProtectionHeader, pro_b64.clone()));
            }
            hls_tag = Some(KeyTag {
                method: sample_aes(scheme),
                uri: format!("data:text/plain;charset=UTF-16;base64,{pro_b64}"),
                iv: None,
                key_id: None,
                key_format: hls::PLAYREADY_KEYFORMAT,
                key_format_versions: "1",
            });
            if want.pssh {
                out.push((Element::Pssh, pssh_b64));
            }
        }
        DrmSystemKind::CommonSystem => {
            let pssh_b64 = b64(pssh::common_pssh(&[drm.kid]));
            if want.content_protection_data {
                out.push((
                    Element::ContentProtectionData,
                    b64(cenc_pssh_xml(&pssh_b64)),
                ));
            }
            if want.pssh {
                out.push((Element::Pssh, pssh_b64));
            }
        }
        DrmSystemKind::FairPlay => {
            let uri = format!("{}{}", signaling.fairplay_key_uri_prefix, drm.kid);
            if !hls::is_quotable(&uri) || signaling.fairplay_key_uri_prefix.is_empty() {
                return Err(SpekeError::NotConfigured(
                    "the FairPlay key URI prefix is empty or not HLS-quotable",
                ));
            }
            hls_tag = Some(KeyTag {
                method: "SAMPLE-AES",
                uri: uri.clone(),
                iv,
                key_id: None,
                key_format: hls::FAIRPLAY_KEYFORMAT,
                key_format_versions: "1",
            });
            key_uri = Some((uri, hls::FAIRPLAY_KEYFORMAT));
        }
        DrmSystemKind::ClearKeyAes128 => {
            let prefix = signaling
                .aes128_key_uri_prefix
                .as_deref()
                .filter(|p| !p.is_empty())
                .ok_or(SpekeError::NotConfigured("no AES-128 key URI prefix"))?;
            let uri = format!("{prefix}{}", drm.kid);
            if !hls::is_quotable(&uri) {
                return Err(SpekeError::NotConfigured(
                    "the AES-128 key URI prefix is not HLS-quotable",
                ));
            }
            hls_tag = Some(KeyTag {
                method: "AES-128",
                uri: uri.clone(),
                iv,
                key_id: None,
                key_format: hls::IDENTITY_KEYFORMAT,
                key_format_versions: "1",
            });
            key_uri = Some((uri, hls::IDENTITY_KEYFORMAT));
        }
    }
    if let Some(tag) = &hls_tag {
        if want.hls_media {
            out.push((Element::HlsMedia, b64(tag.line(Playlist::Media))));
        }
        if want.hls_master {
            out.push((Element::HlsMaster, b64(tag.line(Playlist::Master))));
        }
    }
    if let Some((uri, format)) = key_uri {
        if want.uri_ext_x_key {
            out.push((Element::UriExtXKey, b64(uri)));
        }
        if want.key_format {
            out.push((Element::KeyFormat, b64(format)));
        }
        if want.key_format_versions {
            out.push((Element::KeyFormatVersions, b64("1")));
        }
    }
    out.sort_by_key(|(element, _)| *element);
    Ok(out)
}

fn filter_element(filter: &TrackFilter) -> String {
    let mut attrs = String::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            attrs.push_str(&format!(" {name}=\"{v}\""));
        }
    };
    match filter {
        TrackFilter::Video(v) => {
            put("minPixels", v.min_pixels.map(|n| n.to_string()));
            put("maxPixels", v.max_pixels.map(|n| n.to_string()));
            put("hdr", v.hdr.map(|b| b.to_string()));
            put("minFps", v.min_fps.map(|n| n.to_string()));
            put("maxFps", v.max_fps.map(|n| n.to_string()));
            format!("<cpix:VideoFilter{attrs}/>")
        }
        TrackFilter::Audio(a) => {
            put("minChannels", a.min_channels.map(|n| n.to_string()));
            put("maxChannels", a.max_channels.map(|n| n.to_string()));
            format!("<cpix:AudioFilter{attrs}/>")
        }
    }
}

/// Escapes text for an XML attribute value or element content.
pub(crate) fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}
