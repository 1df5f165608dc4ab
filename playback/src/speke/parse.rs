//! [`parse_request`]: a SPEKE v2.0 request document, bounded and validated.
//!
//! Two passes. The first reads the XML with `quick-xml`'s namespace-aware reader and collects
//! the attributes SPEKE cares about as raw strings, enforcing only what makes a body
//! unacceptable as XML: size, DTDs, entities, namespaces, nesting, counts. The second applies
//! SPEKE v2's rules in the order AWS lists them (content id, CPIX version, keys and schemes, DRM
//! systems, then the encryption contract), so a document with several faults is refused with
//! the first one an AWS encryptor would expect.
//!
//! ## Entity expansion and external entities
//!
//! There is no DTD processing at all. Any `<!` that does not open a comment or a CDATA section
//! (`<!DOCTYPE`, `<!ENTITY`, `<!ATTLIST`, `<!ELEMENT`, `<!NOTATION`) is refused by a byte scan
//! *before* the XML reader runs, and again if the reader reports a document type. Entity
//! references are resolved only for XML's five predefined entities and character references;
//! any other `&name;` is refused ([`SpekeError::UndefinedEntity`]). So there is nothing to
//! expand (no "billion laughs") and nothing external to fetch (no XXE).

use std::collections::HashSet;

use base64::alphabet::STANDARD as STANDARD_ALPHABET;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

use super::*;

/// Parses and validates a SPEKE v2.0 request body (the `X-Speke-Version` header is checked
/// separately, by [`check_speke_version`]).
pub fn parse_request(body: &[u8]) -> Result<SpekeRequest, SpekeError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(SpekeError::TooLarge {
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    refuse_markup_declarations(body)?;
    let text = std::str::from_utf8(body)
        .map_err(|_| SpekeError::MalformedXml("the document is not UTF-8".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    validate(read(text)?)
}

/// Refuses any `<!` other than `<!--` and `<![CDATA[`: every markup declaration (and so every
/// DTD and entity declaration) starts that way.
fn refuse_markup_declarations(body: &[u8]) -> Result<(), SpekeError> {
    let mut rest = body;
    while let Some(at) = memchr_lt_bang(rest) {
        let after = &rest[at + 2..];
        if !(after.starts_with(b"--") || after.starts_with(b"[CDATA[")) {
            return Err(SpekeError::Dtd);
        }
        rest = after;
    }
    Ok(())
}

fn memchr_lt_bang(haystack: &[u8]) -> Option<usize> {
    haystack.windows(2).position(|w| w == b"<!")
}

// ---------------------------------------------------------------------------------------------
// Pass 1: XML to raw strings.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Cpix,
    Pskc,
    Speke,
    Other,
    None,
}

/// What the element being read is, for its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    ContentKeyList,
    ContentKey,
    DrmSystemList,
    DrmSystem,
    PeriodList,
    RuleList,
    Rule,
    /// A subtree not inspected (placeholders, key data, unknown elements).
    Skip,
}

#[derive(Debug, Default)]
struct RawDoc {
    content_id: Option<String>,
    version: Option<String>,
    content_key_lists: usize,
    drm_system_lists: usize,
    period_lists: usize,
    rule_lists: usize,
    delivery_data: bool,
    keys: Vec<RawKey>,
    drm_systems: Vec<RawDrm>,
    periods: Vec<RawPeriod>,
    rules: Vec<RawRule>,
}

#[derive(Debug, Default)]
struct RawKey {
    kid: Option<String>,
    scheme: Option<String>,
    explicit_iv: Option<String>,
}

#[derive(Debug, Default)]
struct RawDrm {
    kid: Option<String>,
    system_id: Option<String>,
    signals: Signals,
    /// The first problem with the placeholders (duplicate, bad `playlist`).
    fault: Option<String>,
}

#[derive(Debug, Default)]
struct RawPeriod {
    id: Option<String>,
    index: Option<String>,
}

#[derive(Debug, Default)]
struct RawRule {
    kid: Option<String>,
    intended_track_type: Option<String>,
    period_ids: Vec<Option<String>>,
    filters: Vec<RawFilter>,
    label_filter: bool,
}

#[derive(Debug)]
struct RawFilter {
    video: bool,
    attrs: Vec<(String, String)>,
}

type Attrs = Vec<(String, String)>;

fn attr(attrs: &Attrs, name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn read(text: &str) -> Result<RawDoc, SpekeError> {
    let mut reader = NsReader::from_str(text);
    {
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
    }
    let mut doc = RawDoc::default();
    let mut stack: Vec<Ctx> = Vec::new();
    let mut seen_root = false;
    let mut elements = 0usize;
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(xml_error)?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => match ns.0 {
                n if n == CPIX_NS.as_bytes() => Ns::Cpix,
                n if n == PSKC_NS.as_bytes() => Ns::Pskc,
                n if n == SPEKE_NS.as_bytes() => Ns::Speke,
                _ => Ns::Other,
            },
            ResolveResult::Unbound => Ns::None,
            ResolveResult::Unknown(prefix) => {
                return Err(SpekeError::Namespace(format!(
                    "unbound prefix `{}`",
                    clip(&String::from_utf8_lossy(&prefix))
                )))
            }
        };
        match event {
            Event::Start(e) => {
                let ctx = start(
                    &reader,
                    &mut doc,
                    &stack,
                    &mut seen_root,
                    &mut elements,
                    ns,
                    &e,
                )?;
                stack.push(ctx);
            }
            // `<a/>`: opened and closed at once, so nothing is pushed.
            Event::Empty(e) => {
                start(
                    &reader,
                    &mut doc,
                    &stack,
                    &mut seen_root,
                    &mut elements,
                    ns,
                    &e,
                )?;
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                if stack.is_empty() && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(SpekeError::MalformedXml(
                        "text outside the root element".into(),
                    ));
                }
            }
            Event::GeneralRef(r) => {
                if stack.is_empty() {
                    return Err(SpekeError::MalformedXml(
                        "reference outside the root element".into(),
                    ));
                }
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(_)) => {}
                        _ => {
                            return Err(SpekeError::MalformedXml(
                                "invalid character reference".into(),
                            ))
                        }
                    }
                } else if !matches!(r.as_ref(), b"amp" | b"lt" | b"gt" | b"quot" | b"apos") {
                    return Err(SpekeError::UndefinedEntity);
                }
            }
            Event::CData(_) => {
                if stack.is_empty() {
                    return Err(SpekeError::MalformedXml(
                        "CDATA outside the root element".into(),
                    ));
                }
            }
            Event::Decl(decl) => {
                if seen_root {
                    return Err(SpekeError::MalformedXml(
                        "XML declaration after the root element".into(),
                    ));
                }
                let version = decl.version().map_err(xml_error)?;
                if version.as_ref() != b"1.0" {
                    return Err(SpekeError::MalformedXml(
                        "only XML 1.0 documents are accepted".into(),
                    ));
                }
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| xml_error(e.into()))?;
                    if !encoding.eq_ignore_ascii_case(b"utf-8") {
                        return Err(SpekeError::MalformedXml(
                            "only UTF-8 documents are accepted".into(),
                        ));
                    }
                }
            }
            Event::DocType(_) => return Err(SpekeError::Dtd),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !seen_root {
        return Err(SpekeError::MalformedXml("no root element".into()));
    }
    if !stack.is_empty() {
        return Err(SpekeError::MalformedXml("unclosed element".into()));
    }
    Ok(doc)
}

/// Checks the bounds for an opening tag, collects its attributes and records what it means.
fn start<R>(
    reader: &NsReader<R>,
    doc: &mut RawDoc,
    stack: &[Ctx],
    seen_root: &mut bool,
    elements: &mut usize,
    ns: Ns,
    e: &BytesStart<'_>,
) -> Result<Ctx, SpekeError> {
    if stack.len() >= MAX_DEPTH {
        return Err(SpekeError::LimitExceeded {
            what: "levels of element nesting",
            limit: MAX_DEPTH,
        });
    }
    *elements += 1;
    if *elements > MAX_ELEMENTS {
        return Err(SpekeError::LimitExceeded {
            what: "elements",
            limit: MAX_ELEMENTS,
        });
    }
    let attrs = attributes(reader, e)?;
    let parent = stack.last().copied();
    if parent.is_none() {
        if *seen_root {
            return Err(SpekeError::MalformedXml(
                "more than one root element".into(),
            ));
        }
        *seen_root = true;
    }
    open(doc, parent, ns, e.local_name().as_ref(), &attrs)
}

/// Collects an element's unprefixed attributes, normalised (predefined entities and character
/// references only). Namespace declarations are skipped, prefixed attributes (`xsi:...`) are
/// checked for a bound prefix and otherwise ignored.
fn attributes<R>(reader: &NsReader<R>, e: &BytesStart<'_>) -> Result<Attrs, SpekeError> {
    let mut out = Vec::new();
    for (i, attribute) in e.attributes().enumerate() {
        if i >= MAX_ATTRIBUTES {
            return Err(SpekeError::LimitExceeded {
                what: "attributes on one element",
                limit: MAX_ATTRIBUTES,
            });
        }
        let attribute = attribute.map_err(|e| xml_error(e.into()))?;
        if attribute.key.as_namespace_binding().is_some() {
            continue;
        }
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(xml_error)?;
        let (resolved, local) = reader.resolver().resolve_attribute(attribute.key);
        match resolved {
            ResolveResult::Unbound => {
                let name = String::from_utf8(local.as_ref().to_vec())
                    .map_err(|_| SpekeError::MalformedXml("attribute name is not UTF-8".into()))?;
                out.push((name, value.into_owned()));
            }
            ResolveResult::Bound(_) => {}
            ResolveResult::Unknown(prefix) => {
                return Err(SpekeError::Namespace(format!(
                    "unbound prefix `{}`",
                    clip(&String::from_utf8_lossy(&prefix))
                )))
            }
        }
    }
    Ok(out)
}

/// Records what an opening tag means for the document and returns the context for its
/// children.
fn open(
    doc: &mut RawDoc,
    parent: Option<Ctx>,
    ns: Ns,
    local: &[u8],
    attrs: &Attrs,
) -> Result<Ctx, SpekeError> {
    let Some(parent) = parent else {
        if ns != Ns::Cpix || local != b"CPIX" {
            return Err(SpekeError::Namespace(format!(
                "the root element must be {{{CPIX_NS}}}CPIX"
            )));
        }
        doc.content_id = attr(attrs, "contentId");
        doc.version = attr(attrs, "version");
        return Ok(Ctx::Root);
    };
    if ns != Ns::Cpix && !(parent == Ctx::DrmSystem && ns == Ns::Speke) {
        // pskc:, ds:, enc: and foreign elements: nothing SPEKE reads from a request.
        return Ok(Ctx::Skip);
    }
    let ctx = match (parent, local) {
        (Ctx::Root, b"ContentKeyList") => {
            doc.content_key_lists += 1;
            Ctx::ContentKeyList
        }
        (Ctx::Root, b"DRMSystemList") => {
            doc.drm_system_lists += 1;
            Ctx::DrmSystemList
        }
        (Ctx::Root, b"ContentKeyPeriodList") => {
            doc.period_lists += 1;
            Ctx::PeriodList
        }
        (Ctx::Root, b"ContentKeyUsageRuleList") => {
            doc.rule_lists += 1;
            Ctx::RuleList
        }
        (Ctx::Root, b"DeliveryDataList") => {
            doc.delivery_data = true;
            Ctx::Skip
        }
        (Ctx::ContentKeyList, b"ContentKey") => {
            bounded(doc.keys.len(), MAX_CONTENT_KEYS, "content keys")?;
            doc.keys.push(RawKey {
                kid: attr(attrs, "kid"),
                scheme: attr(attrs, "commonEncryptionScheme"),
                explicit_iv: attr(attrs, "explicitIV"),
            });
            Ctx::ContentKey
        }
        (Ctx::DrmSystemList, b"DRMSystem") => {
            bounded(doc.drm_systems.len(), MAX_DRM_SYSTEMS, "DRM systems")?;
            doc.drm_systems.push(RawDrm {
                kid: attr(attrs, "kid"),
                system_id: attr(attrs, "systemId"),
                ..RawDrm::default()
            });
            Ctx::DrmSystem
        }
        (Ctx::DrmSystem, _) => {
            if let Some(drm) = doc.drm_systems.last_mut() {
                placeholder(drm, ns, local, attrs);
            }
            Ctx::Skip
        }
        (Ctx::PeriodList, b"ContentKeyPeriod") => {
            bounded(doc.periods.len(), MAX_KEY_PERIODS, "content key periods")?;
            doc.periods.push(RawPeriod {
                id: attr(attrs, "id"),
                index: attr(attrs, "index"),
            });
            Ctx::Skip
        }
        (Ctx::RuleList, b"ContentKeyUsageRule") => {
            bounded(doc.rules.len(), MAX_USAGE_RULES, "content key usage rules")?;
            doc.rules.push(RawRule {
                kid: attr(attrs, "kid"),
                intended_track_type: attr(attrs, "intendedTrackType"),
                ..RawRule::default()
            });
            Ctx::Rule
        }
        (Ctx::Rule, name) => {
            if let Some(rule) = doc.rules.last_mut() {
                match name {
                    b"KeyPeriodFilter" => {
                        bounded(rule.period_ids.len(), MAX_FILTERS_PER_RULE, "filters")?;
                        rule.period_ids.push(attr(attrs, "periodId"));
                    }
                    b"VideoFilter" | b"AudioFilter" => {
                        bounded(rule.filters.len(), MAX_FILTERS_PER_RULE, "filters")?;
                        rule.filters.push(RawFilter {
                            video: name == b"VideoFilter",
                            attrs: attrs.clone(),
                        });
                    }
                    b"LabelFilter" => rule.label_filter = true,
                    // BitrateFilter: ignored, as SPEKE does.
                    _ => {}
                }
            }
            Ctx::Skip
        }
        _ => Ctx::Skip,
    };
    Ok(ctx)
}

/// Marks a signaling placeholder of a `DRMSystem`.
fn placeholder(drm: &mut RawDrm, ns: Ns, local: &[u8], attrs: &Attrs) {
    let s = &mut drm.signals;
    let (slot, name): (&mut bool, &str) = match (ns, local) {
        (Ns::Cpix, b"PSSH") => (&mut s.pssh, "PSSH"),
        (Ns::Cpix, b"ContentProtectionData") => {
            (&mut s.content_protection_data, "ContentProtectionData")
        }
        (Ns::Cpix, b"SmoothStreamingProtectionHeaderData") => (
            &mut s.smooth_streaming,
            "SmoothStreamingProtectionHeaderData",
        ),
        (Ns::Cpix, b"URIExtXKey") => (&mut s.uri_ext_x_key, "URIExtXKey"),
        (Ns::Cpix, b"HLSSignalingData") => match attr(attrs, "playlist").as_deref() {
            Some("media") => (&mut s.hls_media, "HLSSignalingData playlist=\"media\""),
            Some("master") => (&mut s.hls_master, "HLSSignalingData playlist=\"master\""),
            _ => {
                drm.fault.get_or_insert_with(|| {
                    "HLSSignalingData@playlist must be \"media\" or \"master\"".into()
                });
                return;
            }
        },
        (Ns::Speke, b"KeyFormat") => (&mut s.key_format, "speke:KeyFormat"),
        (Ns::Speke, b"KeyFormatVersions") => {
            (&mut s.key_format_versions, "speke:KeyFormatVersions")
        }
        (Ns::Speke, b"ProtectionHeader") => (&mut s.protection_header, "speke:ProtectionHeader"),
        // HDSSignalingData and anything else: not signaled here, not echoed.
        _ => return,
    };
    if *slot {
        drm.fault
            .get_or_insert_with(|| format!("Duplicate {name} in DRMSystem"));
    }
    *slot = true;
}

fn bounded(count: usize, limit: usize, what: &'static str) -> Result<(), SpekeError> {
    if count >= limit {
        Err(SpekeError::LimitExceeded { what, limit })
    } else {
        Ok(())
    }
}

fn xml_error(err: quick_xml::Error) -> SpekeError {
    use quick_xml::escape::EscapeError;
    match err {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(..)) => {
            SpekeError::UndefinedEntity
        }
        quick_xml::Error::Namespace(e) => SpekeError::Namespace(clip(&e.to_string())),
        other => SpekeError::MalformedXml(clip(&other.to_string())),
    }
}

/// Bounds text taken from the document before it goes into an error body.
fn clip(text: &str) -> String {
    const MAX: usize = 120;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

// ---------------------------------------------------------------------------------------------
// Pass 2: SPEKE v2.0 rules.

/// Standard base64, padded or not, tolerating non-zero trailing bits: AWS's own VOD example
/// carries `explicitIV="L6jzdXrXAFbCJGBuMrrKrG=="`, whose last digit has them.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD_ALPHABET,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn invalid(message: String) -> SpekeError {
    SpekeError::InvalidDocument(message)
}

fn malformed(reason: &'static str) -> SpekeError {
    SpekeError::MalformedContract { reason }
}

fn parse_kid(value: Option<String>, element: &str) -> Result<KeyId, SpekeError> {
    let value = value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| invalid(format!("Missing {element}@kid")))?;
    KeyId::from_uuid(value.trim())
        .ok_or_else(|| invalid(format!("Invalid {element}@kid {}", clip(&value))))
}

fn validate(raw: RawDoc) -> Result<SpekeRequest, SpekeError> {
    // CPIX@contentId, CPIX@version.
    let content_id = raw
        .content_id
        .filter(|c| !c.trim().is_empty())
        .ok_or(SpekeError::MissingContentId)?;
    if content_id.len() > MAX_CONTENT_ID_BYTES {
        return Err(invalid(format!(
            "CPIX@contentId longer than {MAX_CONTENT_ID_BYTES} bytes"
        )));
    }
    match raw.version.as_deref().map(str::trim) {
        None | Some("") => return Err(SpekeError::MissingCpixVersion),
        Some(CPIX_VERSION) => {}
        Some(_) => return Err(SpekeError::UnsupportedCpixVersion),
    }
    if raw.delivery_data {
        return Err(SpekeError::DeliveryDataNotSupported);
    }
    for (count, name) in [
        (raw.content_key_lists, "ContentKeyList"),
        (raw.drm_system_lists, "DRMSystemList"),
        (raw.period_lists, "ContentKeyPeriodList"),
        (raw.rule_lists, "ContentKeyUsageRuleList"),
    ] {
        if count > 1 {
            return Err(invalid(format!("Duplicate cpix:{name}")));
        }
    }

    // ContentKeyList.
    if raw.content_key_lists == 0 {
        return Err(invalid("Missing cpix:ContentKeyList".into()));
    }
    if raw.keys.is_empty() {
        return Err(invalid("Empty cpix:ContentKeyList".into()));
    }
    let mut content_keys: Vec<ContentKey> = Vec::with_capacity(raw.keys.len());
    for key in raw.keys {
        let kid = parse_kid(key.kid, "ContentKey")?;
        if content_keys.iter().any(|k| k.kid == kid) {
            return Err(invalid(format!("Duplicate ContentKey@kid {kid}")));
        }
        let scheme = match key.scheme.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(SpekeError::MissingEncryptionScheme { kid: kid.to_uuid() })
            }
            Some(s) => EncryptionScheme::parse(s).ok_or_else(|| {
                invalid(format!(
                    "Unsupported ContentKey@commonEncryptionScheme {} for KID {kid}",
                    clip(s)
                ))
            })?,
        };
        let explicit_iv = match key.explicit_iv {
            None => None,
            Some(iv) => Some(
                LENIENT_BASE64
                    .decode(iv.trim())
                    .ok()
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .ok_or_else(|| {
                        invalid(format!("Invalid ContentKey@explicitIV for KID {kid}"))
                    })?,
            ),
        };
        content_keys.push(ContentKey {
            kid,
            scheme,
            explicit_iv,
        });
    }
    let scheme = content_keys[0].scheme;
    if content_keys.iter().any(|k| k.scheme != scheme) {
        return Err(SpekeError::MixedEncryptionSchemes);
    }

    // DRMSystemList.
    if raw.drm_system_lists == 0 {
        return Err(invalid("Missing cpix:DRMSystemList".into()));
    }
    if raw.drm_systems.is_empty() {
        return Err(invalid("Empty cpix:DRMSystemList".into()));
    }
    let mut drm_systems: Vec<DrmSystem> = Vec::with_capacity(raw.drm_systems.len());
    for drm in raw.drm_systems {
        let kid = parse_kid(drm.kid, "DRMSystem")?;
        let system_id = drm
            .system_id
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| invalid("Missing DRMSystem@systemId".into()))?;
        let system = DrmSystemKind::from_system_id(system_id.trim()).ok_or_else(|| {
            SpekeError::UnsupportedSystemId {
                system_id: clip(system_id.trim()),
            }
        })?;
        if !content_keys.iter().any(|k| k.kid == kid) {
            return Err(invalid(format!(
                "DRMSystem@kid {kid} is not in cpix:ContentKeyList"
            )));
        }
        if drm_systems
            .iter()
            .any(|d| d.kid == kid && d.system == system)
        {
            return Err(invalid(format!(
                "Duplicate DRMSystem {system} for KID {kid}"
            )));
        }
        if let Some(fault) = drm.fault {
            return Err(invalid(fault));
        }
        if !system.supports(scheme) {
            return Err(SpekeError::SchemeIncompatible {
                system_id: system.system_id().to_owned(),
            });
        }
        drm_systems.push(DrmSystem {
            kid,
            system,
            requested: drm.signals,
        });
    }

    // ContentKeyPeriodList.
    let mut key_periods: Vec<KeyPeriod> = Vec::with_capacity(raw.periods.len());
    for period in raw.periods {
        let id = period
            .id
            .filter(|i| !i.trim().is_empty())
            .ok_or_else(|| invalid("Missing ContentKeyPeriod@id".into()))?;
        if id.len() > MAX_NAME_BYTES {
            return Err(invalid(format!(
                "ContentKeyPeriod@id longer than {MAX_NAME_BYTES} bytes"
            )));
        }
        let index = period
            .index
            .ok_or_else(|| invalid(format!("Missing ContentKeyPeriod@index for {}", clip(&id))))?;
        let index: u64 = index
            .trim()
            .parse()
            .map_err(|_| invalid(format!("Invalid ContentKeyPeriod@index for {}", clip(&id))))?;
        if key_periods.iter().any(|p| p.id == id || p.index == index) {
            return Err(invalid(format!("Duplicate ContentKeyPeriod {}", clip(&id))));
        }
        key_periods.push(KeyPeriod { id, index });
    }

    // ContentKeyUsageRuleList: the encryption contract.
    let usage_rules = contract(raw.rule_lists, raw.rules, &content_keys, &key_periods)?;

    Ok(SpekeRequest {
        content_id,
        content_keys,
        drm_systems,
        key_periods,
        usage_rules,
    })
}

fn contract(
    lists: usize,
    rules: Vec<RawRule>,
    keys: &[ContentKey],
    periods: &[KeyPeriod],
) -> Result<Vec<UsageRule>, SpekeError> {
    if lists == 0 || rules.is_empty() || rules.iter().all(|r| r.filters.is_empty()) {
        return Err(SpekeError::MissingContract);
    }
    let period_ids: HashSet<&str> = periods.iter().map(|p| p.id.as_str()).collect();
    let mut seen: HashSet<(String, Option<String>)> = HashSet::new();
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        let kid = rule
            .kid
            .as_deref()
            .map(str::trim)
            .and_then(KeyId::from_uuid)
            .ok_or_else(|| malformed("usage rule without a valid kid"))?;
        if !keys.iter().any(|k| k.kid == kid) {
            return Err(malformed("usage rule kid is not in cpix:ContentKeyList"));
        }
        let track_type = rule
            .intended_track_type
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| malformed("usage rule without intendedTrackType"))?;
        if track_type.len() > MAX_NAME_BYTES
            || track_type
                .split('+')
                .any(|c| c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(malformed("invalid intendedTrackType"));
        }
        if rule.label_filter {
            return Err(malformed("LabelFilter is not supported by SPEKE"));
        }
        if rule.filters.is_empty() {
            return Err(malformed("usage rule without VideoFilter or AudioFilter"));
        }
        let period_id = match rule.period_ids.as_slice() {
            [] if periods.is_empty() => None,
            [] => return Err(malformed("key rotation usage rule without KeyPeriodFilter")),
            [Some(id)] if period_ids.contains(id.trim()) => Some(id.trim().to_owned()),
            [_] => {
                return Err(malformed(
                    "KeyPeriodFilter names an unknown ContentKeyPeriod",
                ))
            }
            _ => return Err(malformed("more than one KeyPeriodFilter in a usage rule")),
        };
        let filters = rule
            .filters
            .iter()
            .map(filter)
            .collect::<Result<Vec<_>, _>>()?;
        if track_type == "ALL" {
            let bare_video = filters
                .iter()
                .filter(|f| matches!(f, TrackFilter::Video(v) if v.is_bare()))
                .count();
            let bare_audio = filters
                .iter()
                .filter(|f| matches!(f, TrackFilter::Audio(a) if a.is_bare()))
                .count();
            if filters.len() != 2 || bare_video != 1 || bare_audio != 1 {
                return Err(malformed(
                    "intendedTrackType ALL needs exactly one bare VideoFilter and one bare AudioFilter",
                ));
            }
        } else if track_type.split('+').count() != filters.len() {
            return Err(malformed(
                "filter count differs from the intendedTrackType components",
            ));
        }
        if !seen.insert((track_type.clone(), period_id.clone())) {
            return Err(malformed("intendedTrackType repeated within a key period"));
        }
        out.push(UsageRule {
            kid,
            intended_track_type: track_type,
            period_id,
            filters,
        });
    }
    Ok(out)
}

fn filter(raw: &RawFilter) -> Result<TrackFilter, SpekeError> {
    fn number<T: std::str::FromStr>(attrs: &Attrs, name: &str) -> Result<Option<T>, SpekeError> {
        match attr(attrs, name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| malformed("filter attribute is not an unsigned integer")),
        }
    }
    fn ordered<T: PartialOrd>(min: Option<T>, max: Option<T>) -> Result<(), SpekeError> {
        match (min, max) {
            (Some(min), Some(max)) if min > max => Err(malformed("filter minimum above maximum")),
            _ => Ok(()),
        }
    }
    if raw.video {
        let hdr = match attr(&raw.attrs, "hdr").as_deref().map(str::trim) {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(_) => return Err(malformed("VideoFilter@hdr is not a boolean")),
        };
        let f = VideoFilter {
            min_pixels: number(&raw.attrs, "minPixels")?,
            max_pixels: number(&raw.attrs, "maxPixels")?,
            hdr,
            min_fps: number(&raw.attrs, "minFps")?,
            max_fps: number(&raw.attrs, "maxFps")?,
        };
        ordered(f.min_pixels, f.max_pixels)?;
        ordered(f.min_fps, f.max_fps)?;
        Ok(TrackFilter::Video(f))
    } else {
        let f = AudioFilter {
            min_channels: number(&raw.attrs, "minChannels")?,
            max_channels: number(&raw.attrs, "maxChannels")?,
        };
        ordered(f.min_channels, f.max_channels)?;
        Ok(TrackFilter::Audio(f))
    }
}
