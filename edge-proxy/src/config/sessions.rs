//! `[sessions]` and `[cookies]`: the session token minted when a master playlist is served,
//! how it travels on child requests, and the attributes of its cookie.

use serde::{Deserialize, Serialize};

use super::error::{check_positive, invalid, ConfigError};

/// How the session token travels on child requests (`sessions.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// `?{token_name}=<token>` on every child URI.
    Query,
    /// `/hls/{v}/{token_name}=<token>/...`: relative URIs inherit it; AVPlayer-safe.
    Path,
    /// A path-scoped cookie set with the master playlist; child URIs carry nothing.
    Cookie,
}

/// Binding of the session token to the client address (`sessions.bind_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindIp {
    Off,
    Exact,
    Subnet,
}

/// `[sessions]`: the session token minted when a master playlist is served.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    pub mode: SessionMode,
    /// Added to the content's duration.
    pub grace_secs: u64,
    /// Content duration assumed when the first media playlist gives none (live, unreadable).
    pub default_duration_secs: u64,
    /// Upper bound on a session token's lifetime, whatever the playlists claim.
    pub max_lifetime_secs: u64,
    pub bind_ip: BindIp,
}

/// `[cookies]`: attributes of the session cookie (`sessions.mode = "cookie"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CookiesConfig {
    /// `Secure` attribute; turn off only for plain-http development.
    pub secure: bool,
    /// `SameSite`: `None` (cross-site players; needs `secure`), `Lax` or `Strict`.
    pub same_site: String,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            mode: SessionMode::Query,
            grace_secs: 600,
            default_duration_secs: 14_400,
            max_lifetime_secs: 86_400,
            bind_ip: BindIp::Off,
        }
    }
}

impl Default for CookiesConfig {
    fn default() -> Self {
        CookiesConfig {
            secure: true,
            same_site: "None".into(),
        }
    }
}

impl SessionsConfig {
    /// Lifetimes must be positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive("sessions.grace_secs", self.grace_secs)?;
        check_positive("sessions.default_duration_secs", self.default_duration_secs)?;
        check_positive("sessions.max_lifetime_secs", self.max_lifetime_secs)?;
        Ok(())
    }
}

impl CookiesConfig {
    /// `SameSite` is one of the three, and `None` only with `Secure`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.same_site.as_str(), "None" | "Lax" | "Strict") {
            return Err(invalid(
                "cookies.same_site",
                format!("is {:?}", self.same_site),
                "use \"None\", \"Lax\" or \"Strict\"",
            ));
        }
        if self.same_site == "None" && !self.secure {
            return Err(invalid(
                "cookies.same_site",
                "is \"None\" while cookies.secure = false (browsers drop such cookies)",
                "set cookies.secure = true, or cookies.same_site = \"Lax\" for plain-http development",
            ));
        }
        Ok(())
    }
}
