//! Who may use a group of routes at all, before any token is read: client-address allow- and
//! deny-lists (addresses or CIDR networks, IPv4 and IPv6) and a client-certificate rule with an
//! allow-list of certificate identities.
//!
//! The edge keeps one [`RoutePolicy`] per route group (license and key routes, admin, internal,
//! CDN pull, playback, operations) and asks [`RoutePolicy::check`] with the client address the
//! trusted-proxy rule chose (`client_address`) and the certificate the TLS handshake saw. The
//! rule is here, without I/O, so every front end that enforces it decides the same way.
//!
//! Order: a denied address is refused whatever else it presents (a deny entry beats an allow
//! entry), then an address outside a non-empty allow-list, then the certificate. A group whose
//! rule is [`CertificateRule::Required`] (or that lists identities) wants a certificate that
//! chains to the configured client CA, is inside its validity period, and — when identities are
//! listed — matches one of them by subject common name, subject alternative name or SHA-256
//! fingerprint of the DER certificate.

use std::net::IpAddr;

use crate::token::ip::Network;
use crate::Reason;

/// Most entries in one address list.
pub const MAX_NETWORKS: usize = 1024;
/// Most certificate identities one group allows.
pub const MAX_IDENTITIES: usize = 256;
/// Longest identity pattern (a SAN URI can be long; nothing longer is a real name).
const MAX_IDENTITY_LEN: usize = 512;

/// Whether a group needs a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertificateRule {
    /// A certificate is not needed (one that is presented is still logged when it verified).
    #[default]
    Optional,
    /// A verified certificate is needed.
    Required,
}

/// One allowed certificate identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityPattern {
    /// `cn:<subject common name>`, compared exactly.
    CommonName(String),
    /// `san:<DNS name, URI or e-mail address>`, compared exactly (DNS names without case).
    SubjectAltName(String),
    /// `sha256:<hex>` (colons allowed): the fingerprint of the DER certificate.
    Sha256([u8; 32]),
}

impl IdentityPattern {
    /// Parses `cn:…`, `san:…` or `sha256:…`; `None` for anything else.
    pub fn parse(text: &str) -> Option<IdentityPattern> {
        if text.len() > MAX_IDENTITY_LEN {
            return None;
        }
        let (kind, value) = text.split_once(':')?;
        if value.is_empty() || value.chars().any(char::is_control) {
            return None;
        }
        match kind.to_ascii_lowercase().as_str() {
            "cn" => Some(IdentityPattern::CommonName(value.to_string())),
            "san" => Some(IdentityPattern::SubjectAltName(value.to_string())),
            "sha256" => {
                let hex: String = value.chars().filter(|c| *c != ':').collect();
                let bytes = hex::decode(hex).ok()?;
                Some(IdentityPattern::Sha256(bytes.try_into().ok()?))
            }
            _ => None,
        }
    }

    fn matches(&self, certificate: &ClientCertificate) -> bool {
        match self {
            IdentityPattern::CommonName(name) => certificate.common_name.as_deref() == Some(name),
            IdentityPattern::SubjectAltName(name) => certificate
                .subject_alt_names
                .iter()
                .any(|san| san == name || san.eq_ignore_ascii_case(name) && is_dns_like(name)),
            IdentityPattern::Sha256(fingerprint) => certificate.sha256 == *fingerprint,
        }
    }
}

fn is_dns_like(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'*')
}

/// The certificate a client presented in the TLS handshake, as the transport read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// `Ok` when it chains to the client CA and is within its validity period; otherwise a
    /// short reason (`expired`, `unknown issuer`, ...) for the log.
    pub verification: Result<(), String>,
    pub common_name: Option<String>,
    /// DNS names, URIs and e-mail addresses from the subject alternative names.
    pub subject_alt_names: Vec<String>,
    /// SHA-256 of the DER certificate.
    pub sha256: [u8; 32],
}

impl ClientCertificate {
    /// True when the certificate verified against the client CA.
    pub fn verified(&self) -> bool {
        self.verification.is_ok()
    }
}

/// Why a policy cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePolicyError {
    /// Entry `index` of the named list is not an address or CIDR network.
    BadNetwork { list: &'static str, index: usize },
    /// Entry `index` of the identities is not `cn:`, `san:` or `sha256:` with a value.
    BadIdentity { index: usize },
    /// A list is longer than its limit.
    TooMany { list: &'static str, limit: usize },
}

impl std::fmt::Display for RoutePolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoutePolicyError::BadNetwork { list, index } => write!(
                f,
                "{list} entry {index} is not an IPv4/IPv6 address or CIDR network (e.g. \"10.0.0.0/8\", \"2001:db8::/32\")"
            ),
            RoutePolicyError::BadIdentity { index } => write!(
                f,
                "entry {index} is not \"cn:<name>\", \"san:<name>\" or \"sha256:<64 hex digits>\""
            ),
            RoutePolicyError::TooMany { list, limit } => {
                write!(f, "{list} has more than {limit} entries")
            }
        }
    }
}

/// One route group's rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePolicy {
    allow: Vec<Network>,
    deny: Vec<Network>,
    certificate: CertificateRule,
    identities: Vec<IdentityPattern>,
}

impl RoutePolicy {
    /// A policy from its lists as configuration writes them. Listing identities implies
    /// [`CertificateRule::Required`].
    pub fn new<S: AsRef<str>>(
        allow: &[S],
        deny: &[S],
        certificate: CertificateRule,
        identities: &[S],
    ) -> Result<RoutePolicy, RoutePolicyError> {
        let identities = bounded(identities, "allowed_identities", MAX_IDENTITIES)?
            .iter()
            .enumerate()
            .map(|(index, text)| {
                IdentityPattern::parse(text.as_ref().trim())
                    .ok_or(RoutePolicyError::BadIdentity { index })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let certificate = match identities.is_empty() {
            true => certificate,
            false => CertificateRule::Required,
        };
        Ok(RoutePolicy {
            allow: networks(allow, "ip_allow")?,
            deny: networks(deny, "ip_deny")?,
            certificate,
            identities,
        })
    }

    /// True when the group needs a client certificate.
    pub fn requires_certificate(&self) -> bool {
        self.certificate == CertificateRule::Required
    }

    /// True when the policy has an allow- or deny-list.
    pub fn has_address_rules(&self) -> bool {
        !self.allow.is_empty() || !self.deny.is_empty()
    }

    /// True when the policy refuses `client` by address alone.
    pub fn refuses_address(&self, client: Option<IpAddr>) -> bool {
        match client {
            Some(ip) => {
                self.deny.iter().any(|net| net.contains(ip))
                    || (!self.allow.is_empty() && !self.allow.iter().any(|net| net.contains(ip)))
            }
            None => !self.allow.is_empty(),
        }
    }

    /// Admits a request from `client` (the trusted-proxy rule's address) that presented
    /// `certificate` in its handshake, or names why not: `IpNotAllowed`,
    /// `ClientCertificateRequired` (none, or no TLS) or `ClientCertificateRejected` (it did not
    /// verify, or matches no allowed identity).
    pub fn check(
        &self,
        client: Option<IpAddr>,
        certificate: Option<&ClientCertificate>,
    ) -> Result<(), Reason> {
        if self.refuses_address(client) {
            return Err(Reason::IpNotAllowed);
        }
        if !self.requires_certificate() {
            return Ok(());
        }
        let certificate = certificate.ok_or(Reason::ClientCertificateRequired)?;
        if !certificate.verified() {
            return Err(Reason::ClientCertificateRejected);
        }
        if self.identities.is_empty() || self.identities.iter().any(|p| p.matches(certificate)) {
            Ok(())
        } else {
            Err(Reason::ClientCertificateRejected)
        }
    }
}

fn bounded<'a, S>(
    list: &'a [S],
    name: &'static str,
    limit: usize,
) -> Result<&'a [S], RoutePolicyError> {
    match list.len() > limit {
        true => Err(RoutePolicyError::TooMany { list: name, limit }),
        false => Ok(list),
    }
}

fn networks<S: AsRef<str>>(
    list: &[S],
    name: &'static str,
) -> Result<Vec<Network>, RoutePolicyError> {
    bounded(list, name, MAX_NETWORKS)?
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            Network::parse(rule.as_ref().trim())
                .map_err(|_| RoutePolicyError::BadNetwork { list: name, index })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn certificate(verified: bool, cn: &str, san: &str) -> ClientCertificate {
        ClientCertificate {
            verification: if verified {
                Ok(())
            } else {
                Err("expired".into())
            },
            common_name: Some(cn.into()),
            subject_alt_names: vec![san.into()],
            sha256: [7; 32],
        }
    }

    #[test]
    fn deny_beats_allow_and_an_empty_allow_list_allows_everyone() {
        let policy = RoutePolicy::new(
            &["10.0.0.0/8", "::1"],
            &["10.9.0.0/16"],
            CertificateRule::Optional,
            &[],
        )
        .unwrap();
        assert_eq!(policy.check(ip("10.1.2.3"), None), Ok(()));
        assert_eq!(policy.check(ip("::1"), None), Ok(()));
        assert_eq!(policy.check(ip("::ffff:10.1.2.3"), None), Ok(()));
        assert_eq!(
            policy.check(ip("10.9.0.1"), None),
            Err(Reason::IpNotAllowed)
        );
        assert_eq!(
            policy.check(ip("192.0.2.1"), None),
            Err(Reason::IpNotAllowed)
        );
        assert_eq!(policy.check(ip("::2"), None), Err(Reason::IpNotAllowed));
        assert_eq!(policy.check(None, None), Err(Reason::IpNotAllowed));

        let open =
            RoutePolicy::new::<&str>(&[], &["2001:db8::/32"], CertificateRule::Optional, &[])
                .unwrap();
        assert_eq!(open.check(ip("192.0.2.1"), None), Ok(()));
        assert_eq!(open.check(None, None), Ok(()));
        assert_eq!(
            open.check(ip("2001:db8::5"), None),
            Err(Reason::IpNotAllowed)
        );
    }

    #[test]
    fn a_required_certificate_must_verify_and_match_an_identity() {
        let required = RoutePolicy::new::<&str>(&[], &[], CertificateRule::Required, &[]).unwrap();
        let good = certificate(true, "player-gw", "gw.example.com");
        assert_eq!(required.check(ip("::1"), Some(&good)), Ok(()));
        assert_eq!(
            required.check(ip("::1"), None),
            Err(Reason::ClientCertificateRequired)
        );
        assert_eq!(
            required.check(ip("::1"), Some(&certificate(false, "player-gw", "x"))),
            Err(Reason::ClientCertificateRejected)
        );

        let by_identity = RoutePolicy::new::<&str>(
            &[],
            &[],
            CertificateRule::Optional,
            &["cn:other", "san:GW.example.com"],
        )
        .unwrap();
        assert!(
            by_identity.requires_certificate(),
            "identities imply required"
        );
        assert_eq!(by_identity.check(ip("::1"), Some(&good)), Ok(()));
        assert_eq!(
            by_identity.check(
                ip("::1"),
                Some(&certificate(true, "someone", "a.example.com"))
            ),
            Err(Reason::ClientCertificateRejected)
        );
        let fingerprint = format!("sha256:{}", ["07"; 32].join(":"));
        let by_hash =
            RoutePolicy::new::<&str>(&[], &[], CertificateRule::Optional, &[&fingerprint]).unwrap();
        assert_eq!(by_hash.check(ip("::1"), Some(&good)), Ok(()));

        let optional = RoutePolicy::default();
        assert_eq!(
            optional.check(ip("::1"), Some(&certificate(false, "x", "y"))),
            Ok(())
        );
    }

    #[test]
    fn the_address_is_checked_before_the_certificate() {
        let policy =
            RoutePolicy::new(&["127.0.0.0/8"], &[], CertificateRule::Required, &[]).unwrap();
        assert_eq!(
            policy.check(ip("192.0.2.1"), None),
            Err(Reason::IpNotAllowed)
        );
    }

    #[test]
    fn bad_lists_name_the_entry() {
        assert_eq!(
            RoutePolicy::new(&["10.0.0.0/8", "nope"], &[], CertificateRule::Optional, &[]),
            Err(RoutePolicyError::BadNetwork {
                list: "ip_allow",
                index: 1
            })
        );
        for bad in ["cn:", "dn:x", "sha256:abcd", "plain", "cn:a\nb"] {
            assert_eq!(
                RoutePolicy::new::<&str>(&[], &[], CertificateRule::Optional, &[bad]),
                Err(RoutePolicyError::BadIdentity { index: 0 }),
                "{bad}"
            );
        }
        let many = vec!["::1"; MAX_NETWORKS + 1];
        assert!(matches!(
            RoutePolicy::new(&[], &many, CertificateRule::Optional, &[]),
            Err(RoutePolicyError::TooMany {
                list: "ip_deny",
                ..
            })
        ));
    }
}
