//! Rewrites an origin MPD for one viewer, streaming and byte for byte except where a URL must
//! carry proof or a license URL must point at this edge.
//!
//! Every event's raw bytes are copied from the input; only these change:
//!
//! - URLs: `SegmentTemplate@media/@initialization/@index/@bitstreamSwitching` (identifiers
//!   such as `$Number%05d$` kept, unknown ones refused), `SegmentURL@media/@index`,
//!   `Initialization@sourceURL`, `RepresentationIndex@sourceURL`, `BitstreamSwitching@sourceURL`,
//!   and the text of `BaseURL` and `Location`. Absolute origin URLs map onto `/hls/{v}/`;
//!   URLs of other hosts are left alone (not ours to sign).
//! - How proof travels ([`Stamp`]): in the query, every URL carries the token (relative ones
//!   stay relative, so the `BaseURL` chain still applies); as a path segment, one `BaseURL`
//!   with the token segment is injected at the MPD level (or the MPD's own `BaseURL`s are
//!   rebased onto it) and relative URLs need nothing; in a cookie, only origin URLs move.
//! - A dynamic (live) MPD gets a `Location` naming the edge's copy with the viewer's stamp, so
//!   refreshes are admitted after the manifest token has expired.
//! - With [`LicenseUrls`], each `ContentProtection` of Widevine, PlayReady or ClearKey gets the
//!   edge's license URL where players look for it (`dashif:Laurl`; for Widevine also
//!   `ms:laurl`; for ClearKey and the W3C common system `clearkey:Laurl`), replacing any the
//!   origin wrote; the namespaces are declared on the root. A common-system element with no
//!   DASH-IF ClearKey sibling gets one after it, naming the same license URL.
//!
//! No DTD or entity other than XML's predefined ones and character references is accepted,
//! nesting is bounded, and the caller bounds the size.

use std::borrow::Cow;

use quick_xml::escape::{escape, unescape};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::template::{check_template, TemplateError};
use crate::hls::uri::{has_scheme, is_plain_relative, resolve, split};
use crate::hls::Stamp;
use crate::token::hls_prefix;

/// Deepest element nesting accepted (a real MPD nests 5 levels).
const MAX_DEPTH: usize = 32;
/// Longest piece of origin text echoed back in an error.
const MAX_ECHO: usize = 80;

const WIDEVINE: &str = "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
const PLAYREADY: &str = "urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95";
const CLEARKEY: &str = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e";
/// The W3C common PSSH system, which players map to ClearKey.
const COMMON_SYSTEM: &str = "urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b";

const DASHIF_NS: (&str, &str) = ("dashif", "https://dashif.org/CPS");
const CLEARKEY_NS: (&str, &str) = ("clearkey", "http://dashif.org/guidelines/clearKey");
const MS_NS: (&str, &str) = ("ms", "urn:microsoft");

/// The edge's license endpoints for this title and viewer (absolute URLs, proof included).
#[derive(Debug, Clone, Copy)]
pub struct LicenseUrls<'a> {
    pub widevine: &'a str,
    pub playready: &'a str,
    pub clearkey: &'a str,
}

/// What the rewriter needs to know about the request being served.
#[derive(Debug, Clone, Copy)]
pub struct MpdContext<'a> {
    pub video_id: &'a str,
    /// Edge path of the MPD, without any token segment (`/hls/{v}/manifest.mpd`).
    pub mpd_path: &'a str,
    /// Absolute URL the origin uses for `/hls/{v}/` (HTTP origins); `None` for a directory.
    pub origin_prefix: Option<&'a str>,
    /// Name of the edge's token; a stale copy in an origin URL's query is dropped.
    pub token_name: &'a str,
    pub stamp: Stamp<'a>,
    /// License URLs to inject; `None` keeps the origin's (a CDN's copy).
    pub licenses: Option<LicenseUrls<'a>>,
}

/// Why an MPD could not be rewritten. Messages quote origin text only, clipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MpdError {
    #[error("the origin response is not an MPD (its root element is not <MPD>)")]
    NotAnMpd,
    #[error("the MPD has a document type declaration; DTDs and entities are not processed")]
    Dtd,
    #[error("the MPD is not well-formed XML: {0}")]
    Malformed(String),
    #[error("the MPD nests elements deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the segment template `{template}`: {problem}")]
    BadTemplate {
        template: String,
        problem: TemplateError,
    },
}

/// The DRM system a `ContentProtection` element names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Widevine,
    PlayReady,
    ClearKey,
}

impl System {
    fn of(scheme: &str) -> Option<System> {
        let scheme = scheme.trim();
        [
            (WIDEVINE, System::Widevine),
            (PLAYREADY, System::PlayReady),
            (CLEARKEY, System::ClearKey),
            (COMMON_SYSTEM, System::ClearKey),
        ]
        .into_iter()
        .find(|(uri, _)| scheme.eq_ignore_ascii_case(uri))
        .map(|(_, system)| system)
    }
}

/// An open element.
#[derive(Clone, Copy, Default)]
struct Frame {
    /// A `ContentProtection` whose license URLs are being replaced.
    protection: bool,
    /// A `ContentProtection` of the W3C common system (ClearKey by PSSH).
    common_system: bool,
    /// Among this element's children, a DASH-IF ClearKey `ContentProtection` (`e2719d58-…`).
    clearkey_signaled: bool,
}

/// Element text being collected (`BaseURL`, `Location`): where it starts, and whether it is
/// a child of the root.
struct Capture {
    kind: TextUrl,
    from: usize,
    depth: usize,
    mpd_level: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TextUrl {
    BaseUrl,
    Location,
}

/// Rewrites `input` for the viewer described by `ctx`.
pub fn rewrite_mpd(input: &str, ctx: &MpdContext) -> Result<String, MpdError> {
    rewrite(input, ctx, true)
}

/// [`rewrite_mpd`] with every element read by the event parser, runs of `SegmentURL`s too:
/// the reference the fast path ([`super::segment_list`]) is compared with.
#[doc(hidden)]
pub fn rewrite_mpd_event_by_event(input: &str, ctx: &MpdContext) -> Result<String, MpdError> {
    rewrite(input, ctx, false)
}

fn rewrite(input: &str, ctx: &MpdContext, fast_lists: bool) -> Result<String, MpdError> {
    // A byte-order mark is copied as is; the parser starts after it.
    let body = input.strip_prefix('\u{feff}').unwrap_or(input);
    if body.starts_with('\u{feff}') {
        return Err(malformed("text outside the root element"));
    }
    let mut rewriter = Rewriter::new(body, ctx, fast_lists);
    rewriter.out.push_str(&input[..input.len() - body.len()]);
    rewriter.run()?;
    Ok(rewriter.out)
}

struct Rewriter<'a> {
    input: &'a str,
    ctx: &'a MpdContext<'a>,
    out: String,
    title_prefix: String,
    /// Directory of the MPD's edge path (ends in `/`).
    mpd_dir: &'a str,
    stack: Vec<Frame>,
    seen_root: bool,
    /// An MPD-level `BaseURL` still to inject (path mode), and a `Location` (dynamic MPDs).
    inject_base: bool,
    inject_location: bool,
    /// The whitespace before the current tag, repeated after an injected element.
    indent: &'a str,
    /// Prefixes the license elements use (declared on the root).
    dashif: Cow<'static, str>,
    clearkey: Cow<'static, str>,
    ms: Cow<'static, str>,
    /// Reused for each rewritten URL.
    scratch: String,
    /// `{name}={token}` XML-escaped, in query mode (else empty).
    query_stamp: String,
    /// Runs of `SegmentURL`s go through [`super::segment_list`].
    fast_lists: bool,
}

impl<'a> Rewriter<'a> {
    fn new(input: &'a str, ctx: &'a MpdContext<'a>, fast_lists: bool) -> Self {
        let mpd_dir = match ctx.mpd_path.rfind('/') {
            Some(i) => &ctx.mpd_path[..=i],
            None => "/",
        };
        Rewriter {
            input,
            ctx,
            // Query stamps make URLs longer; the string grows as they come (counting the URLs
            // up front cost a fifth of a SegmentList rewrite).
            out: String::with_capacity(input.len() + input.len() / 8 + 1024),
            title_prefix: hls_prefix(ctx.video_id),
            mpd_dir,
            stack: Vec::new(),
            seen_root: false,
            inject_base: matches!(ctx.stamp, Stamp::PathSegment(_)),
            inject_location: false,
            indent: "",
            dashif: Cow::Borrowed(DASHIF_NS.0),
            clearkey: Cow::Borrowed(CLEARKEY_NS.0),
            ms: Cow::Borrowed(MS_NS.0),
            scratch: String::new(),
            query_stamp: match ctx.stamp {
                Stamp::Query(token) => escape(format!("{}={token}", ctx.token_name)).into_owned(),
                _ => String::new(),
            },
            fast_lists,
        }
    }

    fn run(&mut self) -> Result<(), MpdError> {
        let input = self.input;
        let mut reader = Reader::from_str(input);
        {
            let config = reader.config_mut();
            config.check_end_names = true;
            config.check_comments = true;
        }
        let mut pos = 0usize;
        let mut capture: Option<Capture> = None;
        // Depth at which an origin license element is being dropped.
        let mut dropping: Option<usize> = None;
        loop {
            let event = reader.read_event().map_err(|e| malformed(&e.to_string()))?;
            let end = usize::try_from(reader.buffer_position()).unwrap_or(input.len());
            let raw = input
                .get(pos..end)
                .ok_or_else(|| malformed("an event could not be located"))?;
            let start = pos;
            pos = end;
            if let Event::Eof = event {
                break;
            }
            if let Event::DocType(_) = event {
                return Err(MpdError::Dtd);
            }
            if let Event::GeneralRef(r) = &event {
                check_reference(r.as_ref())?;
            }
            // Inside a dropped element or collected text, only nesting is tracked.
            if let Some(depth) = dropping {
                match event {
                    Event::Start(_) => self.push(Frame::default())?,
                    Event::End(_) => {
                        self.stack.pop();
                        if self.stack.len() == depth {
                            dropping = None;
                        }
                    }
                    _ => {}
                }
                continue;
            }
            if let Some(open) = &capture {
                match event {
                    Event::Start(_) => self.push(Frame::default())?,
                    Event::End(_) => {
                        self.stack.pop();
                        if self.stack.len() == open.depth {
                            let open = capture.take().expect("capture is open");
                            self.text_url(&open, &input[open.from..start])?;
                            self.out.push_str(raw);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            match event {
                Event::Start(e) => {
                    let name = local(&e);
                    if self.skips_license_element(name) {
                        self.push(Frame::default())?;
                        dropping = Some(self.stack.len() - 1);
                        continue;
                    }
                    self.before_element(name)?;
                    let mpd_level = self.stack.len() == 1;
                    let opened = self.element(&e, raw, false)?;
                    self.push(opened)?;
                    let kind = match name {
                        "BaseURL" => Some(TextUrl::BaseUrl),
                        "Location" => Some(TextUrl::Location),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        if mpd_level && kind == TextUrl::BaseUrl {
                            self.inject_base = false;
                        }
                        if mpd_level && kind == TextUrl::Location {
                            self.inject_location = false;
                        }
                        capture = Some(Capture {
                            kind,
                            from: end,
                            depth: self.stack.len() - 1,
                            mpd_level,
                        });
                    }
                }
                Event::Empty(e) => {
                    let name = local(&e);
                    if self.skips_license_element(name) {
                        continue;
                    }
                    self.before_element(name)?;
                    self.element(&e, raw, true)?;
                    // The elements that follow a plain `SegmentURL` are most likely more of them.
                    if self.fast_lists && e.name().as_ref() == b"SegmentURL" {
                        if let Some(stamp) = list_stamp(&self.ctx.stamp, &self.query_stamp) {
                            let run =
                                super::segment_list::copy_run(&input[pos..], stamp, &mut self.out);
                            if run.consumed > 0 {
                                std::io::BufRead::consume(&mut reader.stream(), run.consumed);
                                pos += run.consumed;
                                if !run.indent.is_empty() {
                                    self.indent = run.indent;
                                }
                            }
                        }
                    }
                }
                Event::End(_) => {
                    if self.stack.len() == 1 {
                        self.flush_injections();
                    }
                    let closed = self.stack.pop();
                    self.out.push_str(raw);
                    if closed.is_some_and(|f| f.common_system) {
                        self.dashif_clearkey();
                    }
                }
                Event::Text(t) => {
                    let whitespace = t.iter().all(u8::is_ascii_whitespace);
                    if self.stack.is_empty() && !whitespace {
                        return Err(malformed("text outside the root element"));
                    }
                    self.indent = if whitespace { raw } else { "" };
                    self.out.push_str(raw);
                }
                Event::Decl(decl) => {
                    if let Some(Ok(encoding)) = decl.encoding() {
                        if !encoding.eq_ignore_ascii_case(b"utf-8") {
                            return Err(malformed("only UTF-8 documents are accepted"));
                        }
                    }
                    self.out.push_str(raw);
                }
                _ => self.out.push_str(raw),
            }
        }
        if !self.seen_root {
            return Err(MpdError::NotAnMpd);
        }
        if !self.stack.is_empty() || capture.is_some() || dropping.is_some() {
            return Err(malformed("an element is not closed"));
        }
        Ok(())
    }

    fn push(&mut self, frame: Frame) -> Result<(), MpdError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(MpdError::TooDeep);
        }
        self.stack.push(frame);
        Ok(())
    }

    /// An origin license URL inside a `ContentProtection` this rewrite answers for.
    fn skips_license_element(&self, name: &str) -> bool {
        self.stack.last().is_some_and(|f| f.protection) && name.eq_ignore_ascii_case("laurl")
    }

    /// Checks the root, and injects the MPD-level elements before the first child that must
    /// follow them (after `ProgramInformation`, `BaseURL` and `Location`, as the schema orders
    /// them).
    fn before_element(&mut self, name: &str) -> Result<(), MpdError> {
        if self.stack.is_empty() {
            if self.seen_root {
                return Err(malformed("more than one root element"));
            }
            if name != "MPD" {
                return Err(MpdError::NotAnMpd);
            }
            self.seen_root = true;
        } else if self.stack.len() == 1
            && !matches!(name, "ProgramInformation" | "BaseURL" | "Location")
        {
            self.flush_injections();
        }
        Ok(())
    }

    fn flush_injections(&mut self) {
        if self.inject_base {
            self.inject_base = false;
            let base = self.edge_url(self.mpd_dir, None, None);
            self.out.push_str("<BaseURL>");
            self.out.push_str(&escape(base.as_str()));
            self.out.push_str("</BaseURL>");
            self.out.push_str(self.indent);
        }
        if self.inject_location {
            self.inject_location = false;
            let location = self.edge_url(self.ctx.mpd_path, None, None);
            self.out.push_str("<Location>");
            self.out.push_str(&escape(location.as_str()));
            self.out.push_str("</Location>");
            self.out.push_str(self.indent);
        }
    }

    /// Writes one start (or empty) tag with its URL attributes rewritten; returns its frame
    /// (whether it is a `ContentProtection` whose license URLs this rewrite replaces).
    fn element(&mut self, e: &BytesStart, raw: &str, empty: bool) -> Result<Frame, MpdError> {
        let name = local(e);
        if name == "MPD" && self.stack.is_empty() {
            self.root(e, raw)?;
            return Ok(Frame::default());
        }
        let url_attributes: &[&str] = match name {
            "SegmentTemplate" => &["media", "initialization", "index", "bitstreamSwitching"],
            "SegmentURL" => &["media", "index"],
            "Initialization" | "RepresentationIndex" | "BitstreamSwitching" => &["sourceURL"],
            "ContentProtection" => &[],
            // Most elements (a timeline's `<S>`) own no URL: copied without reading attributes.
            _ => {
                self.out.push_str(raw);
                return Ok(Frame::default());
            }
        };
        let tag_start = self.span(raw.as_bytes())?.0;
        let mut copied = tag_start;
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut system = None;
        let mut scheme = String::new();
        // Duplicate attributes are not looked for (that check allocates per element); the
        // first of a name is the one rewritten, as players read it.
        for attribute in e.attributes().with_checks(false) {
            let attribute = attribute.map_err(|e| malformed(&e.to_string()))?;
            let key = std::str::from_utf8(attribute.key.as_ref()).unwrap_or_default();
            let is_url = url_attributes.contains(&key);
            let is_scheme = name == "ContentProtection" && key == "schemeIdUri";
            if !(is_url || is_scheme) {
                continue;
            }
            let Cow::Borrowed(value) = attribute.value else {
                return Err(malformed("an attribute value could not be located"));
            };
            let (from, to) = self.span(value)?;
            let written = &self.input[from..to];
            // The common case, a plain relative URL in query mode, costs no unescaping or
            // escaping: the written value gets `?{name}={token}` (escaped once, up front).
            if is_url && !self.query_stamp.is_empty() && is_plain_relative(written) {
                if name == "SegmentTemplate" {
                    check_template(written).map_err(|problem| MpdError::BadTemplate {
                        template: clip(written),
                        problem,
                    })?;
                }
                self.out.push_str(&self.input[copied..to]);
                self.out.push('?');
                self.out.push_str(&self.query_stamp);
                copied = to;
                continue;
            }
            let value = unescape(written).map_err(|e| malformed(&e.to_string()))?;
            if !is_url {
                system = System::of(&value);
                scheme = value.trim().to_ascii_lowercase();
                continue;
            }
            if name == "SegmentTemplate" {
                check_template(&value).map_err(|problem| MpdError::BadTemplate {
                    template: clip(&value),
                    problem,
                })?;
            }
            scratch.clear();
            if self.map_url_into(&value, false, &mut scratch) {
                self.out.push_str(&self.input[copied..from]);
                self.out.push_str(&escape(scratch.as_str()));
                copied = to;
            }
        }
        self.scratch = scratch;
        let injects =
            name == "ContentProtection" && system.is_some() && self.ctx.licenses.is_some();
        let tag_end = tag_start + raw.len();
        let body_end = match (empty && injects, raw.strip_suffix("/>")) {
            (true, Some(head)) => tag_start + head.len(),
            _ => tag_end,
        };
        self.out.push_str(&self.input[copied..body_end]);
        if injects {
            if body_end != tag_end {
                self.out.push('>');
            }
            self.license_elements(system.expect("checked above"));
            if body_end != tag_end {
                let qname = std::str::from_utf8(e.name().as_ref())
                    .unwrap_or("ContentProtection")
                    .to_string();
                self.out.push_str("</");
                self.out.push_str(&qname);
                self.out.push('>');
            }
        }
        let common_system = injects && scheme == COMMON_SYSTEM;
        if scheme == CLEARKEY {
            if let Some(parent) = self.stack.last_mut() {
                parent.clearkey_signaled = true;
            }
        }
        if common_system && empty {
            self.dashif_clearkey();
        }
        Ok(Frame {
            protection: injects && !empty,
            common_system: common_system && !empty,
            clearkey_signaled: false,
        })
    }

    /// After a W3C common-system `ContentProtection`: the DASH-IF ClearKey one (IOP 4.3
    /// §7.6.2.6) with the edge's license URL, once per parent that has none. Players that
    /// take ClearKey from the common PSSH need nothing more, but dash.js (5.2) builds its
    /// ClearKey request from `default_KID` only under this scheme; under the common one it
    /// hands the PSSH to EME as `keyids` and the browser refuses it.
    fn dashif_clearkey(&mut self) {
        let Some(licenses) = self.ctx.licenses else {
            return;
        };
        let Some(parent) = self.stack.last_mut() else {
            return;
        };
        if parent.clearkey_signaled {
            return;
        }
        parent.clearkey_signaled = true;
        let url = escape(licenses.clearkey);
        let (ck, dashif) = (&self.clearkey, &self.dashif);
        self.out.push_str(&format!(
            "<ContentProtection schemeIdUri=\"{CLEARKEY}\" value=\"ClearKey1.0\">\
             <{ck}:Laurl Lic_type=\"EME-1.0\">{url}</{ck}:Laurl>\
             <{dashif}:Laurl>{url}</{dashif}:Laurl></ContentProtection>"
        ));
    }

    /// The root tag: notes `type="dynamic"` and declares the license namespaces.
    fn root(&mut self, e: &BytesStart, raw: &str) -> Result<(), MpdError> {
        let mut declared: Vec<(String, String)> = Vec::new();
        for attribute in e.attributes() {
            let attribute = attribute.map_err(|e| malformed(&e.to_string()))?;
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| malformed(&e.to_string()))?;
            let key = std::str::from_utf8(attribute.key.as_ref()).unwrap_or_default();
            if key == "type" && value.trim() == "dynamic" {
                self.inject_location = true;
            }
            if let Some(prefix) = key.strip_prefix("xmlns:") {
                declared.push((prefix.to_string(), value.into_owned()));
            }
        }
        let (head, close) = match raw.strip_suffix("/>") {
            Some(head) => (head, "/>"),
            None => (&raw[..raw.len() - 1], ">"),
        };
        self.out.push_str(head);
        if self.ctx.licenses.is_some() {
            let mut declarations = String::new();
            self.dashif = prefix_for(DASHIF_NS, &declared, &mut declarations);
            self.clearkey = prefix_for(CLEARKEY_NS, &declared, &mut declarations);
            self.ms = prefix_for(MS_NS, &declared, &mut declarations);
            self.out.push_str(&declarations);
        }
        self.out.push_str(close);
        Ok(())
    }

    /// The license URL elements for `system`, as the first children of its `ContentProtection`.
    fn license_elements(&mut self, system: System) {
        let Some(licenses) = self.ctx.licenses else {
            return;
        };
        let url = match system {
            System::Widevine => licenses.widevine,
            System::PlayReady => licenses.playready,
            System::ClearKey => licenses.clearkey,
        };
        let url = escape(url);
        let dashif = &self.dashif;
        self.out
            .push_str(&format!("<{dashif}:Laurl>{url}</{dashif}:Laurl>"));
        match system {
            System::Widevine => {
                let ms = &self.ms;
                self.out
                    .push_str(&format!("<{ms}:laurl licenseUrl=\"{url}\"/>"));
            }
            System::ClearKey => {
                let ck = &self.clearkey;
                self.out.push_str(&format!(
                    "<{ck}:Laurl Lic_type=\"EME-1.0\">{url}</{ck}:Laurl>"
                ));
            }
            System::PlayReady => {}
        }
    }

    /// Writes the rewritten text of a `BaseURL` or `Location` (its raw text is `text`).
    fn text_url(&mut self, open: &Capture, text: &str) -> Result<(), MpdError> {
        if text.contains('<') {
            return Err(malformed("markup inside a URL element"));
        }
        let value = unescape(text).map_err(|e| malformed(&e.to_string()))?;
        let trimmed = value.trim();
        // The MPD's own URL elements resolve against the MPD, so they take the edge path.
        let rebase = open.mpd_level || open.kind == TextUrl::Location;
        match self.map_url(trimmed, rebase) {
            Some(mapped) => self.out.push_str(&escape(mapped.as_str())),
            None => self.out.push_str(text),
        }
        Ok(())
    }

    /// `value` as the viewer must request it, or `None` when it stays as written. `rebase`
    /// resolves a relative URL against the MPD's edge path (for the MPD's own `BaseURL` and
    /// `Location`), so it gets the token segment in path mode.
    fn map_url(&self, value: &str, rebase: bool) -> Option<String> {
        let mut out = String::new();
        self.map_url_into(value, rebase, &mut out).then_some(out)
    }

    /// [`Self::map_url`] written into `out`; false (and `out` untouched) when it stays.
    fn map_url_into(&self, value: &str, rebase: bool, out: &mut String) -> bool {
        let parts = split(value);
        let absolute = has_scheme(parts.path) || parts.path.starts_with("//");
        let path = if absolute {
            match self
                .ctx
                .origin_prefix
                .and_then(|p| parts.path.strip_prefix(p))
            {
                Some(rest) => resolve(&self.title_prefix, rest),
                None => return false,
            }
        } else if parts.path.starts_with('/') {
            match self
                .ctx
                .origin_prefix
                .and_then(origin_path_prefix)
                .and_then(|p| parts.path.strip_prefix(p))
            {
                Some(rest) => resolve(&self.title_prefix, rest),
                None => resolve("/", parts.path),
            }
        } else if rebase {
            resolve(self.mpd_dir, parts.path)
        } else {
            // Relative: it stays relative (the BaseURL chain applies); only the query changes.
            return match self.ctx.stamp {
                Stamp::Query(_) | Stamp::QueryPairs(_) => {
                    out.reserve(value.len() + self.ctx.stamp.len() + 16);
                    out.push_str(parts.path);
                    self.push_query(parts.query, parts.fragment, out);
                    true
                }
                Stamp::PathSegment(_) | Stamp::Nothing => false,
            };
        };
        if !path.starts_with(&self.title_prefix) {
            return false;
        }
        self.push_edge_url(&path, parts.query, parts.fragment, out);
        true
    }

    /// A path-absolute edge URL for `path` (under `/hls/{v}/`), the token segment inserted in
    /// path mode, then the query and fragment.
    fn edge_url(&self, path: &str, query: Option<&str>, fragment: Option<&str>) -> String {
        let mut out = String::with_capacity(path.len() + self.ctx.stamp.len() + 32);
        self.push_edge_url(path, query, fragment, &mut out);
        out
    }

    fn push_edge_url(
        &self,
        path: &str,
        query: Option<&str>,
        fragment: Option<&str>,
        out: &mut String,
    ) {
        match (
            self.ctx.stamp,
            path.strip_prefix(self.title_prefix.as_str()),
        ) {
            (Stamp::PathSegment(segment), Some(rest)) => {
                out.push_str(&self.title_prefix);
                out.push_str(self.ctx.token_name);
                out.push('=');
                out.push_str(segment);
                out.push('/');
                out.push_str(rest);
            }
            _ => out.push_str(path),
        }
        self.push_query(query, fragment, out);
    }

    /// The origin's query (minus any stale token), the token when it travels in the query,
    /// then the fragment.
    fn push_query(&self, query: Option<&str>, fragment: Option<&str>, out: &mut String) {
        let mut separator = '?';
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let name = pair.split('=').next().unwrap_or_default();
            if pair.is_empty() || name == self.ctx.token_name {
                continue;
            }
            out.push(separator);
            out.push_str(pair);
            separator = '&';
        }
        match self.ctx.stamp {
            Stamp::Query(token) => {
                out.push(separator);
                out.push_str(self.ctx.token_name);
                out.push('=');
                out.push_str(token);
            }
            Stamp::QueryPairs(pairs) if !pairs.is_empty() => {
                out.push(separator);
                out.push_str(pairs);
            }
            _ => {}
        }
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
    }

    /// Where `slice` (borrowed from the input) lies in the input.
    fn span(&self, slice: &[u8]) -> Result<(usize, usize), MpdError> {
        let base = self.input.as_ptr() as usize;
        let from = (slice.as_ptr() as usize).wrapping_sub(base);
        let to = from.wrapping_add(slice.len());
        match from <= to
            && to <= self.input.len()
            && self.input.is_char_boundary(from)
            && self.input.is_char_boundary(to)
        {
            true => Ok((from, to)),
            false => Err(malformed("an attribute value could not be located")),
        }
    }
}

/// The prefix to use for `(prefix, uri)`: the root's own when it already binds `uri`,
/// otherwise ours (renamed if the root binds it to something else), declared in `out`.
fn prefix_for(
    (preferred, uri): (&'static str, &'static str),
    declared: &[(String, String)],
    out: &mut String,
) -> Cow<'static, str> {
    if let Some((prefix, _)) = declared.iter().find(|(_, bound)| bound == uri) {
        return Cow::Owned(prefix.clone());
    }
    let mut prefix = Cow::Borrowed(preferred);
    let mut n = 2;
    while declared.iter().any(|(p, _)| p == prefix.as_ref()) {
        prefix = Cow::Owned(format!("{preferred}{n}"));
        n += 1;
    }
    out.push_str(&format!(" xmlns:{prefix}=\"{uri}\""));
    prefix
}

/// The stamp for plain relative URLs on the `SegmentURL` fast path: `Some(None)` when they
/// stay as written, `None` when the fast path does not apply to this stamp.
fn list_stamp<'s>(stamp: &Stamp, query_stamp: &'s str) -> Option<Option<&'s str>> {
    match stamp {
        Stamp::Query(_) => Some(Some(query_stamp)),
        Stamp::PathSegment(_) | Stamp::Nothing => Some(None),
        Stamp::QueryPairs(_) => None,
    }
}

/// The element's name without a namespace prefix.
fn local<'b>(e: &'b BytesStart) -> &'b str {
    let name = e.name().into_inner();
    let local = match name.iter().rposition(|&b| b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    };
    std::str::from_utf8(local).unwrap_or_default()
}

/// Only XML's predefined entities and character references exist here.
fn check_reference(name: &[u8]) -> Result<(), MpdError> {
    let known = matches!(name, b"amp" | b"lt" | b"gt" | b"quot" | b"apos")
        || (name.first() == Some(&b'#') && name.len() > 1);
    match known {
        true => Ok(()),
        false => Err(MpdError::Dtd),
    }
}

/// The path part of an absolute origin prefix (`http://o:9000/media/v/` -> `/media/v/`).
fn origin_path_prefix(prefix: &str) -> Option<&str> {
    let after_scheme = prefix.split_once("://")?.1;
    after_scheme.find('/').map(|i| &after_scheme[i..])
}

fn malformed(problem: &str) -> MpdError {
    MpdError::Malformed(clip(problem))
}

fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_ECHO).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}
