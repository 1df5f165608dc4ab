//! `[route_groups.<group>]`: who may use each group of routes at all — client-address allow-
//! and deny-lists and client certificates — checked before any token (`playback::route_policy`).

use serde::{Deserialize, Serialize};

use playback::route_policy::{CertificateRule, RoutePolicy};

use super::error::{invalid, ConfigError};

/// One section per group; every group is open by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteGroupsConfig {
    /// `/drm/*` and `/fps/*` licenses and `/keys/*` content keys.
    pub license: RouteGroupConfig,
    /// `/admin/*`.
    pub admin: RouteGroupConfig,
    /// `/internal/*` (other edges and filters, with the service token).
    pub internal: RouteGroupConfig,
    /// HLS and DASH requests that carry the `[cdn]` shared secret.
    pub cdn: RouteGroupConfig,
    /// Viewer manifests, playlists and segments.
    pub playback: RouteGroupConfig,
    /// `/health`, `/ready`, `/metrics`.
    pub ops: RouteGroupConfig,
}

/// One group's lists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteGroupConfig {
    /// Addresses or CIDRs allowed (empty = everyone not denied).
    pub ip_allow: Vec<String>,
    /// Addresses or CIDRs refused (wins over `ip_allow`).
    pub ip_deny: Vec<String>,
    /// `"optional"` (default) or `"required"` (needs `tls.client_ca_file`).
    pub client_certificate: String,
    /// `cn:<name>`, `san:<name>` or `sha256:<hex>`; any entry makes a certificate required.
    pub allowed_identities: Vec<String>,
}

impl RouteGroupsConfig {
    /// Each group with its TOML name.
    pub fn named(&self) -> [(&'static str, &RouteGroupConfig); 6] {
        [
            ("license", &self.license),
            ("admin", &self.admin),
            ("internal", &self.internal),
            ("cdn", &self.cdn),
            ("playback", &self.playback),
            ("ops", &self.ops),
        ]
    }

    /// Every group parses, and certificates are only required where a client CA is set.
    pub fn validate(&self, client_ca_configured: bool) -> Result<(), ConfigError> {
        for (name, group) in self.named() {
            let policy = group.policy(name)?;
            if policy.requires_certificate() && !client_ca_configured {
                return Err(invalid(
                    group_key(name),
                    "requires client certificates but tls.client_ca_file is not set",
                    "set tls.listen, tls.certificates and tls.client_ca_file, or make the group's certificate optional",
                ));
            }
        }
        Ok(())
    }
}

impl RouteGroupConfig {
    /// The group's rule; errors name `route_groups.<name>`.
    pub fn policy(&self, name: &'static str) -> Result<RoutePolicy, ConfigError> {
        let certificate = match self.client_certificate.as_str() {
            "" | "optional" => CertificateRule::Optional,
            "required" => CertificateRule::Required,
            other => {
                return Err(invalid(
                    group_key(name),
                    format!("has client_certificate = {other:?}"),
                    "use \"optional\" or \"required\"",
                ))
            }
        };
        RoutePolicy::new(
            &self.ip_allow,
            &self.ip_deny,
            certificate,
            &self.allowed_identities,
        )
        .map_err(|e| {
            invalid(
                group_key(name),
                e.to_string(),
                "fix the entry; addresses are like \"10.0.0.0/8\" or \"::1\", identities like \"cn:player-gateway\"",
            )
        })
    }
}

/// `route_groups.<name>` as a static key for error messages.
fn group_key(name: &'static str) -> &'static str {
    match name {
        "license" => "route_groups.license",
        "admin" => "route_groups.admin",
        "internal" => "route_groups.internal",
        "cdn" => "route_groups.cdn",
        "playback" => "route_groups.playback",
        _ => "route_groups.ops",
    }
}
