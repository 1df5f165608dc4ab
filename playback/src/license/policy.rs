//! License policy: how long a license lasts and whether the device may keep it.
//!
//! The control plane answers it per viewer and title (from the subscription tier); every DRM
//! system expresses the same policy in its own format: ClearKey's session `type`, FairPlay's
//! key-duration TLLV, Widevine's `policy_overrides`, PlayReady's custom data.

use serde::{Deserialize, Serialize};

/// Rental licenses live for the license duration only; persistent ones may be stored offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenseKind {
    Rental,
    Persistent,
}

impl LicenseKind {
    /// The name used in JSON, events and the `media_licenses.license_type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseKind::Rental => "rental",
            LicenseKind::Persistent => "persistent",
        }
    }

    /// Parses [`LicenseKind::as_str`].
    pub fn parse(name: &str) -> Option<LicenseKind> {
        match name {
            "rental" => Some(LicenseKind::Rental),
            "persistent" => Some(LicenseKind::Persistent),
            _ => None,
        }
    }
}

/// What a license issued to one viewer for one title allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicensePolicy {
    pub kind: LicenseKind,
    /// Seconds the license is valid from issue.
    pub duration_secs: u64,
}

impl LicensePolicy {
    /// The policy of the service this product replaces: a one-hour rental.
    pub const DEFAULT: LicensePolicy = LicensePolicy {
        kind: LicenseKind::Rental,
        duration_secs: 3600,
    };

    /// Unix time the license issued at `now` expires.
    pub fn expires_at(&self, now: u64) -> u64 {
        now.saturating_add(self.duration_secs)
    }

    /// True when the device may store the license.
    pub fn can_persist(&self) -> bool {
        self.kind == LicenseKind::Persistent
    }
}

impl Default for LicensePolicy {
    fn default() -> Self {
        LicensePolicy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_expiry_saturates() {
        for kind in [LicenseKind::Rental, LicenseKind::Persistent] {
            assert_eq!(LicenseKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(LicenseKind::parse("lease"), None);
        let policy = LicensePolicy::DEFAULT;
        assert_eq!(policy.expires_at(100), 3700);
        assert!(!policy.can_persist());
        let forever = LicensePolicy {
            kind: LicenseKind::Persistent,
            duration_secs: u64::MAX,
        };
        assert_eq!(forever.expires_at(5), u64::MAX);
        assert!(forever.can_persist());
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(json, r#"{"kind":"rental","durationSecs":3600}"#);
    }
}
