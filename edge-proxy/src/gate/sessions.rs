//! Session tokens at the edge, built on [`playback::token::session`] (EdgeAuth v2).
//!
//! - `/playback/{v}/manifest` hands out a **manifest token**: admits only the master playlist
//!   and the MPD, lives `signed_urls.manifest_ttl_secs`, carries a new random session id and
//!   the viewer.
//! - Serving either manifest with a manifest token mints the **session token**: the title's
//!   tree, keys and license endpoints, same session id and viewer, lasting the content's
//!   duration (sum of `#EXTINF` of the first media playlist the master references, or the
//!   MPD's `mediaPresentationDuration`; `sessions.default_duration_secs` when unknown) plus
//!   `sessions.grace_secs`, optionally bound to the client address (`sessions.bind_ip`).
//!   Media playlists and MPD refreshes re-stamp the session token they were fetched with; it
//!   is never extended. An MPD's license URLs carry it too ([`Sessions::license_urls`]).
//! - How child requests carry it is [`super::propagation`]; how a request is admitted
//!   (EdgeAuth, CloudFront, revocation) is [`super::admission`].

use std::net::IpAddr;

use playback::dash::DASH_MANIFEST;
use playback::hls::HLS_MASTER;
use playback::token::edgeauth::{Algorithm, EdgeAuth, EdgeAuthConfig};
use playback::token::session::{
    escape_segment, ip_rule, session_expiry, session_id, IpBinding, SessionSigner, SessionSubject,
};

use crate::config::{BindIp, CookiesConfig, SessionMode, SessionsConfig, SignedUrlConfig};

/// A title's manifest URLs with one manifest token.
pub struct ManifestUrls {
    /// The HLS master playlist.
    pub hls: String,
    /// The DASH MPD (offered when the title has one).
    pub dash: String,
    /// When the manifest token expires (Unix seconds).
    pub expires_at: u64,
}

/// The session rules of this edge, from `[signed_urls]`, `[sessions]` and `[cookies]`.
pub struct Sessions {
    pub signer: SessionSigner,
    pub mode: SessionMode,
    pub manifest_ttl_secs: u64,
    pub grace_secs: u64,
    pub default_duration_secs: u64,
    pub max_lifetime_secs: u64,
    pub bind_ip: IpBinding,
    /// `; HttpOnly; Secure; SameSite=None` (from `[cookies]`).
    pub cookie_attributes: String,
}

impl Sessions {
    /// Builds the rules from `[signed_urls]`, `[sessions]` and `[cookies]`; `key` is the
    /// url-signing key file's raw bytes (EdgeAuth's key, which Akamai properties take in hex).
    pub fn new(
        urls: &SignedUrlConfig,
        sessions: &SessionsConfig,
        cookies: &CookiesConfig,
        key: &[u8],
    ) -> Sessions {
        let auth = EdgeAuth::new(EdgeAuthConfig {
            key: key.to_vec(),
            algorithm: Algorithm::from_name(&urls.algorithm).unwrap_or(Algorithm::Sha256),
            token_name: urls.token_name.clone(),
            field_delimiter: urls.field_delimiter,
            acl_delimiter: '!',
            escape_early: urls.escape_early,
        });
        let mut cookie_attributes = String::from("; HttpOnly");
        if cookies.secure {
            cookie_attributes.push_str("; Secure");
        }
        cookie_attributes.push_str("; SameSite=");
        cookie_attributes.push_str(&cookies.same_site);
        Sessions {
            signer: SessionSigner::new(auth),
            mode: sessions.mode,
            manifest_ttl_secs: urls.manifest_ttl_secs,
            grace_secs: sessions.grace_secs,
            default_duration_secs: sessions.default_duration_secs,
            max_lifetime_secs: sessions.max_lifetime_secs,
            bind_ip: match sessions.bind_ip {
                BindIp::Off => IpBinding::Off,
                BindIp::Exact => IpBinding::Exact,
                BindIp::Subnet => IpBinding::Subnet,
            },
            cookie_attributes,
        }
    }

    /// The token name (`hdnts`).
    pub fn token_name(&self) -> &str {
        self.signer.token_name()
    }

    /// A new session for `user_id` (and the JWT's `jti`), with a random session id.
    pub fn open(user_id: &str, jti: Option<&str>) -> SessionSubject {
        SessionSubject {
            session_id: Some(session_id(rand::random())),
            user_id: Some(user_id.to_string()),
            jti: jti.map(str::to_string),
        }
    }

    /// The master-playlist and MPD URLs with one manifest token, and its expiry. Path mode
    /// puts the token in a path segment (no query for players to lose); the other modes use
    /// the query.
    pub fn manifest_urls(
        &self,
        public_base_url: &str,
        video_id: &str,
        subject: &SessionSubject,
        now: u64,
    ) -> ManifestUrls {
        let expires_at = now + self.manifest_ttl_secs;
        let token = self.signer.mint_manifest(video_id, subject, expires_at);
        let name = self.token_name();
        let url = |file: &str| match self.mode {
            SessionMode::Path => format!(
                "{public_base_url}/hls/{video_id}/{name}={}/{file}",
                escape_segment(&token)
            ),
            SessionMode::Query | SessionMode::Cookie => {
                format!("{public_base_url}/hls/{video_id}/{file}?{name}={token}")
            }
        };
        ManifestUrls {
            hls: url(HLS_MASTER),
            dash: url(DASH_MANIFEST),
            expires_at,
        }
    }

    /// The license URLs an MPD served with `session_token` names: `/drm/{system}/{v}` with
    /// the token in the query, whatever the mode (a cookie is scoped to the title's tree, a
    /// path segment is not read by license routes).
    pub fn license_urls(
        &self,
        public_base_url: &str,
        video_id: &str,
        session_token: &str,
    ) -> [String; 3] {
        let name = self.token_name();
        ["widevine", "playready", "clearkey"].map(|system| {
            format!("{public_base_url}/drm/{system}/{video_id}?{name}={session_token}")
        })
    }

    /// The session token for `subject`, minted when a manifest is served.
    pub fn mint_session(
        &self,
        video_id: &str,
        subject: &SessionSubject,
        now: u64,
        duration_secs: Option<u64>,
        client_ip: Option<IpAddr>,
    ) -> String {
        let expires_at = session_expiry(
            now,
            duration_secs,
            self.default_duration_secs,
            self.grace_secs,
            self.max_lifetime_secs,
        );
        let ip = client_ip.and_then(|ip| ip_rule(ip, self.bind_ip));
        self.signer.mint_session(video_id, subject, expires_at, ip)
    }
}
