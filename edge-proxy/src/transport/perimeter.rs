//! The route groups and their policies (`[route_groups]`): who may use the license and key
//! routes, admin, internal, CDN pull, playback and operations routes at all, before any token
//! is read. The decision is `playback::route_policy`; this holds one policy per group.

use std::net::IpAddr;

use playback::route_policy::{ClientCertificate, RoutePolicy};
use playback::Reason;

use crate::config::{ConfigError, RouteGroupsConfig};

/// A group of routes that shares one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    License,
    Admin,
    Internal,
    Cdn,
    Playback,
    Ops,
}

impl RouteGroup {
    const ALL: [RouteGroup; 6] = [
        RouteGroup::License,
        RouteGroup::Admin,
        RouteGroup::Internal,
        RouteGroup::Cdn,
        RouteGroup::Playback,
        RouteGroup::Ops,
    ];

    /// The group's name in configuration, logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            RouteGroup::License => "license",
            RouteGroup::Admin => "admin",
            RouteGroup::Internal => "internal",
            RouteGroup::Cdn => "cdn",
            RouteGroup::Playback => "playback",
            RouteGroup::Ops => "ops",
        }
    }
}

/// One policy per route group.
#[derive(Debug, Default)]
pub struct Perimeter {
    policies: [RoutePolicy; 6],
}

impl Perimeter {
    /// The policies of `[route_groups]` (validated again, so errors name the group).
    pub fn new(config: &RouteGroupsConfig) -> Result<Perimeter, ConfigError> {
        let named = config.named();
        let mut policies: [RoutePolicy; 6] = Default::default();
        for (slot, group) in policies.iter_mut().zip(RouteGroup::ALL) {
            let (name, section) = named[group as usize];
            *slot = section.policy(name)?;
        }
        Ok(Perimeter { policies })
    }

    fn policy(&self, group: RouteGroup) -> &RoutePolicy {
        &self.policies[group as usize]
    }

    /// Admits a request of `group` from `client` with `certificate`, or names the reason.
    pub fn check(
        &self,
        group: RouteGroup,
        client: Option<IpAddr>,
        certificate: Option<&ClientCertificate>,
    ) -> Result<(), Reason> {
        self.policy(group).check(client, certificate)
    }

    /// True when a CDN proves itself by certificate: the CDN group requires one and this
    /// request's passes (then no shared secret is needed).
    pub fn certifies_cdn(
        &self,
        client: Option<IpAddr>,
        certificate: Option<&ClientCertificate>,
    ) -> bool {
        let cdn = self.policy(RouteGroup::Cdn);
        cdn.requires_certificate() && cdn.check(client, certificate).is_ok()
    }

    /// True when every group refuses `client` by its address, so a connection from it can be
    /// dropped before its handshake.
    pub fn refuses_everywhere(&self, client: IpAddr) -> bool {
        self.policies
            .iter()
            .all(|policy| policy.refuses_address(Some(client)))
    }

    /// True when some group has an address list (otherwise the connection filter is idle).
    pub fn filters_addresses(&self) -> bool {
        self.policies.iter().any(RoutePolicy::has_address_rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteGroupConfig;

    fn group(allow: &[&str], deny: &[&str]) -> RouteGroupConfig {
        RouteGroupConfig {
            ip_allow: allow.iter().map(|s| s.to_string()).collect(),
            ip_deny: deny.iter().map(|s| s.to_string()).collect(),
            ..RouteGroupConfig::default()
        }
    }

    #[test]
    fn an_address_is_dropped_early_only_when_every_group_refuses_it() {
        let mut config = RouteGroupsConfig {
            license: group(&["10.0.0.0/8"], &[]),
            ..RouteGroupsConfig::default()
        };
        let perimeter = Perimeter::new(&config).unwrap();
        let outsider: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            perimeter.check(RouteGroup::License, Some(outsider), None),
            Err(Reason::IpNotAllowed)
        );
        assert_eq!(
            perimeter.check(RouteGroup::Playback, Some(outsider), None),
            Ok(())
        );
        assert!(!perimeter.refuses_everywhere(outsider));
        assert!(perimeter.filters_addresses());

        for section in [
            &mut config.license,
            &mut config.admin,
            &mut config.internal,
            &mut config.cdn,
            &mut config.playback,
            &mut config.ops,
        ] {
            section.ip_deny = vec!["192.0.2.0/24".into()];
        }
        let perimeter = Perimeter::new(&config).unwrap();
        assert!(perimeter.refuses_everywhere(outsider));
        assert!(!perimeter.refuses_everywhere("10.1.1.1".parse().unwrap()));
        assert!(!Perimeter::default().filters_addresses());
    }
}
