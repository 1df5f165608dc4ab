//! CloudFront policy statements: the canned policy (rebuilt from the URL and `Expires`, byte for
//! byte as CloudFront and botocore sign it) and custom policies (JSON carried in `Policy`).
//!
//! ```text
//! {"Statement":[{"Resource":"<url>","Condition":{"DateLessThan":{"AWS:EpochTime":<n>},
//!   "IpAddress":{"AWS:SourceIp":"<cidr>"},"DateGreaterThan":{"AWS:EpochTime":<n>}}}]}
//! ```
//!
//! Parsing is strict, because a condition this verifier skipped would silently widen access:
//! exactly one statement, a `Resource` (CloudFront allows omitting it to mean "any resource"; we
//! refuse that), a `DateLessThan`, and no keys beyond the ones above (`malformed` otherwise).
//! Times are JSON integers. Duplicate keys are refused.

use std::net::IpAddr;

use serde::Deserialize;

use super::encoding::json_string;
use crate::token::{acl_matches, ip_matches};
use crate::Reason;

/// Largest decoded custom policy accepted.
pub const MAX_POLICY_LEN: usize = 4096;

/// A policy statement: which resource, until when, from when, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The URL (or pattern with `*` and `?`) the policy covers.
    pub resource: String,
    /// Unix time from which requests are refused (`DateLessThan`).
    pub date_less_than: u64,
    /// Unix time until which (inclusive) requests are refused (`DateGreaterThan`).
    pub date_greater_than: Option<u64>,
    /// Client address or CIDR (`IpAddress` / `AWS:SourceIp`).
    pub ip_address: Option<String>,
}

impl Policy {
    /// The policy a canned signed URL stands for.
    pub fn canned(resource: &str, expires_at: u64) -> Policy {
        Policy {
            resource: resource.to_string(),
            date_less_than: expires_at,
            date_greater_than: None,
            ip_address: None,
        }
    }

    /// The compact JSON botocore's `CloudFrontSigner.build_policy` produces for the same inputs
    /// (for a canned policy, exactly the bytes CloudFront verifies a canned signature over).
    /// A bare address in `ip_address` gets `/32` (IPv4) or `/128` (IPv6) appended; botocore
    /// appends `/32` to any bare address, so bare IPv6 addresses are where the two differ.
    pub fn to_json(&self) -> String {
        let mut json = format!(
            r#"{{"Statement":[{{"Resource":{},"Condition":{{"DateLessThan":{{"AWS:EpochTime":{}}}"#,
            json_string(&self.resource),
            self.date_less_than
        );
        if let Some(ip) = self.ip_address.as_deref().filter(|ip| !ip.is_empty()) {
            let cidr = if ip.contains('/') {
                ip.to_string()
            } else if ip.contains(':') {
                format!("{ip}/128")
            } else {
                format!("{ip}/32")
            };
            json.push_str(&format!(
                r#","IpAddress":{{"AWS:SourceIp":{}}}"#,
                json_string(&cidr)
            ));
        }
        if let Some(start) = self.date_greater_than {
            json.push_str(&format!(
                r#","DateGreaterThan":{{"AWS:EpochTime":{start}}}"#
            ));
        }
        json.push_str("}}]}");
        json
    }

    /// Parses a custom policy (at most [`MAX_POLICY_LEN`] bytes); `Malformed` otherwise.
    pub fn from_json(json: &[u8]) -> Result<Policy, Reason> {
        if json.len() > MAX_POLICY_LEN {
            return Err(Reason::Malformed);
        }
        let doc: PolicyDoc = serde_json::from_slice(json).map_err(|_| Reason::Malformed)?;
        let [statement] =
            <[StatementDoc; 1]>::try_from(doc.statement).map_err(|_| Reason::Malformed)?;
        let c = statement.condition;
        Ok(Policy {
            resource: statement.resource,
            date_less_than: c.date_less_than.epoch,
            date_greater_than: c.date_greater_than.map(|d| d.epoch),
            ip_address: c.ip_address.map(|i| i.source_ip),
        })
    }

    /// Checks the conditions for a request to `resource_url` from `client_ip` at `now_unix`:
    /// `DateGreaterThan` (`not_yet_valid` unless now is after it), `DateLessThan` (`expired`
    /// from then on), `Resource` (`acl_mismatch`), `IpAddress` (`ip_mismatch`, also when the
    /// client address is unknown; `malformed` when the rule is not an address or CIDR).
    pub fn check(
        &self,
        resource_url: &str,
        client_ip: Option<IpAddr>,
        now_unix: u64,
    ) -> Result<(), Reason> {
        if let Some(start) = self.date_greater_than {
            if now_unix <= start {
                return Err(Reason::NotYetValid);
            }
        }
        if now_unix >= self.date_less_than {
            return Err(Reason::Expired);
        }
        if !acl_matches(&self.resource, resource_url) {
            return Err(Reason::AclMismatch);
        }
        if let Some(rule) = &self.ip_address {
            let client = client_ip.ok_or(Reason::IpMismatch)?;
            if !ip_matches(rule, client)? {
                return Err(Reason::IpMismatch);
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    #[serde(rename = "Statement")]
    statement: Vec<StatementDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementDoc {
    #[serde(rename = "Resource")]
    resource: String,
    #[serde(rename = "Condition")]
    condition: ConditionDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionDoc {
    #[serde(rename = "DateLessThan")]
    date_less_than: EpochDoc,
    #[serde(rename = "DateGreaterThan")]
    date_greater_than: Option<EpochDoc>,
    #[serde(rename = "IpAddress")]
    ip_address: Option<SourceIpDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EpochDoc {
    #[serde(rename = "AWS:EpochTime")]
    epoch: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceIpDoc {
    #[serde(rename = "AWS:SourceIp")]
    source_ip: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://d111111abcdef8.cloudfront.net/hls/v/master.m3u8";

    #[test]
    fn canned_json_is_botocore_byte_for_byte() {
        // botocore CloudFrontSigner(...).build_policy(URL, datetime.fromtimestamp(1700000300, utc))
        assert_eq!(
            Policy::canned(URL, 1_700_000_300).to_json(),
            r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/hls/v/master.m3u8","Condition":{"DateLessThan":{"AWS:EpochTime":1700000300}}}]}"#
        );
    }

    #[test]
    fn custom_json_order_matches_botocore() {
        // build_policy(URL, dlt, date_greater_than=dgt, ip_address="203.0.113.7")
        let p = Policy {
            resource: "https://d1.cloudfront.net/hls/v/*".into(),
            date_less_than: 1_700_000_300,
            date_greater_than: Some(1_700_000_000),
            ip_address: Some("203.0.113.7".into()),
        };
        assert_eq!(
            p.to_json(),
            r#"{"Statement":[{"Resource":"https://d1.cloudfront.net/hls/v/*","Condition":{"DateLessThan":{"AWS:EpochTime":1700000300},"IpAddress":{"AWS:SourceIp":"203.0.113.7/32"},"DateGreaterThan":{"AWS:EpochTime":1700000000}}}]}"#
        );
        let back = Policy::from_json(p.to_json().as_bytes()).unwrap();
        assert_eq!(back.ip_address.as_deref(), Some("203.0.113.7/32"));
        assert_eq!(back.resource, p.resource);
        assert_eq!(back.date_greater_than, p.date_greater_than);
        let v6 = Policy {
            ip_address: Some("2001:db8::1".into()),
            ..p
        };
        assert!(v6.to_json().contains(r#""AWS:SourceIp":"2001:db8::1/128""#));
    }

    #[test]
    fn parsing_is_strict() {
        let ok =
            r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#;
        assert!(Policy::from_json(ok.as_bytes()).is_ok());
        // Whitespace and key order do not matter.
        let spaced = r#" { "Statement" : [ { "Condition" : { "DateLessThan" : { "AWS:EpochTime" : 5 } }, "Resource" : "r" } ] } "#;
        assert_eq!(
            Policy::from_json(spaced.as_bytes()),
            Policy::from_json(ok.as_bytes())
        );
        for bad in [
            "",
            "null",
            "{}",
            r#"{"Statement":[]}"#,
            r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}},{"Resource":"s","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
            r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
            r#"{"Statement":[{"Resource":"r","Condition":{}}]}"#,
            r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":"5"}}}]}"#,
            r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5.5}}}]}"#,
            r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":-5}}}]}"#,
            r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5},"Referer":{"x":"y"}}}]}"#,
            r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}},"Effect":"Allow"}]}"#,
            r#"{"Statement":[{"Resource":"r","Resource":"s","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
            r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}],"Extra":1}"#,
            r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]"#,
        ] {
            assert_eq!(
                Policy::from_json(bad.as_bytes()),
                Err(Reason::Malformed),
                "{bad}"
            );
        }
        let huge = format!(
            r#"{{"Statement":[{{"Resource":"{}","Condition":{{"DateLessThan":{{"AWS:EpochTime":5}}}}}}]}}"#,
            "a".repeat(MAX_POLICY_LEN)
        );
        assert_eq!(Policy::from_json(huge.as_bytes()), Err(Reason::Malformed));
    }

    #[test]
    fn conditions() {
        let p = Policy {
            resource: "https://d1.cloudfront.net/hls/v/seg_?.ts".into(),
            date_less_than: 200,
            date_greater_than: Some(100),
            ip_address: Some("203.0.113.0/24".into()),
        };
        let url = "https://d1.cloudfront.net/hls/v/seg_1.ts";
        let client = Some("203.0.113.9".parse().unwrap());
        assert_eq!(p.check(url, client, 150), Ok(()));
        assert_eq!(p.check(url, client, 100), Err(Reason::NotYetValid));
        assert_eq!(p.check(url, client, 101), Ok(()));
        assert_eq!(p.check(url, client, 199), Ok(()));
        assert_eq!(p.check(url, client, 200), Err(Reason::Expired));
        assert_eq!(
            p.check("https://d1.cloudfront.net/hls/v/seg_10.ts", client, 150),
            Err(Reason::AclMismatch)
        );
        assert_eq!(
            p.check(url, Some("198.51.100.1".parse().unwrap()), 150),
            Err(Reason::IpMismatch)
        );
        assert_eq!(p.check(url, None, 150), Err(Reason::IpMismatch));
        let bad_ip = Policy {
            ip_address: Some("300.1.1.1/8".into()),
            ..p
        };
        assert_eq!(bad_ip.check(url, client, 150), Err(Reason::Malformed));
    }
}
