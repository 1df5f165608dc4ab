//! The plugin configuration (JSON), parsed and validated into ready verifiers. Pure: no host
//! calls, so it is unit-tested natively. Every error names the offending key.

use playback::client_address::{ClientAddressRule, ForwardedHeader};
use playback::jwt::{Algorithm as JwtAlgorithm, JwtRules, JwtVerifier, KeyRing, VerificationKey};
use playback::token::cloudfront::CloudFrontVerifier;
use playback::token::edgeauth::{decode_hex_key, Algorithm, EdgeAuth, EdgeAuthConfig};
use playback::token::session::SessionSigner;
use serde_json::{Map, Value};

/// A JSON object being read: typed getters that name the key on error, and a final check
/// that every key was known (serde's `deny_unknown_fields`, without the derive's code size).
struct Obj<'a> {
    at: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn new(at: &str, value: &'a Value) -> Result<Obj<'a>, ConfigError> {
        match value.as_object() {
            Some(map) => Ok(Obj {
                at: at.to_string(),
                map,
            }),
            None => err(format!("{}: must be an object", name_or_root(at))),
        }
    }

    fn key(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    fn known(&self, keys: &[&str]) -> Result<(), ConfigError> {
        match self.map.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => err(format!(
                "{}: unknown field `{k}`, expected one of {}",
                name_or_root(&self.at),
                keys.join(", ")
            )),
            None => Ok(()),
        }
    }

    fn opt(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn req(&self, key: &str) -> Result<&'a Value, ConfigError> {
        self.opt(key)
            .ok_or_else(|| ConfigError(format!("{}: missing field `{key}`", self.key(key))))
    }

    fn str_opt(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.opt(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| ConfigError(format!("{}: must be a string", self.key(key)))),
        }
    }

    fn str(&self, key: &str) -> Result<&'a str, ConfigError> {
        self.req(key)?;
        Ok(self.str_opt(key)?.unwrap_or_default())
    }

    fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str, ConfigError> {
        Ok(self.str_opt(key)?.unwrap_or(default))
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.opt(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| ConfigError(format!("{}: must be true or false", self.key(key)))),
        }
    }

    fn u64_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.opt(key) {
            None => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| {
                ConfigError(format!("{}: must be a non-negative integer", self.key(key)))
            }),
        }
    }

    fn array(&self, key: &str) -> Result<&'a Vec<Value>, ConfigError> {
        self.req(key)?
            .as_array()
            .ok_or_else(|| ConfigError(format!("{}: must be an array", self.key(key))))
    }
}

fn name_or_root(at: &str) -> &str {
    if at.is_empty() {
        "configuration"
    } else {
        at
    }
}

/// What a path rule checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The edge's admission: EdgeAuth session/manifest token, CloudFront, deny-list.
    Session,
    /// A viewer JWT (`Authorization: Bearer` or `?token=`).
    Jwt,
}

/// A path prefix and its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub prefix: String,
    pub check: Check,
}

/// Where and how often to fetch the deny-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub service_token: String,
    pub refresh_ms: u64,
    pub timeout_ms: u64,
}

/// CloudFront verification.
pub struct CloudFront {
    pub verifier: CloudFrontVerifier,
    pub public_base_url: String,
}

/// A validated configuration with ready verifiers.
pub struct Config {
    pub signer: SessionSigner,
    pub cloudfront: Option<CloudFront>,
    pub jwt: Option<JwtVerifier>,
    pub rules: Vec<Rule>,
    pub leeway_secs: u64,
    pub strip_token: bool,
    pub fail_open: bool,
    pub revocation: Option<Revocation>,
    /// Who the client is behind trusted proxies (`client_address`); by default the
    /// `source.address` Envoy reports.
    pub client_address: ClientAddressRule,
}

impl Config {
    /// The check for `path` (query removed): the longest matching prefix wins.
    pub fn rule_for(&self, path: &str) -> Option<Check> {
        self.rules
            .iter()
            .filter(|r| path.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
            .map(|r| r.check)
    }

    /// The EdgeAuth token name (query parameter, path segment, cookie).
    pub fn token_name(&self) -> &str {
        self.signer.token_name()
    }
}

/// A configuration error naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid plugin configuration: {}", self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Parses and validates the plugin configuration.
pub fn parse(json: &[u8]) -> Result<Config, ConfigError> {
    let root: Value =
        serde_json::from_slice(json).map_err(|e| ConfigError(format!("JSON: {e}")))?;
    let top = Obj::new("", &root)?;
    top.known(&[
        "edgeauth",
        "cloudfront",
        "jwt",
        "rules",
        "leeway_secs",
        "strip_token",
        "fail_open",
        "revocation",
        "client_address",
    ])?;
    let leeway_secs = top.u64_or("leeway_secs", 0)?;
    let strip_token = top.bool_or("strip_token", true)?;
    let fail_open = top.bool_or("fail_open", false)?;

    let e = Obj::new("edgeauth", top.req("edgeauth")?)?;
    e.known(&[
        "key_hex",
        "algorithm",
        "token_name",
        "field_delimiter",
        "escape_early",
    ])?;
    let key = decode_hex_key(e.str("key_hex")?)
        .map_err(|_| ConfigError("edgeauth.key_hex: must be non-empty hex".into()))?;
    let Some(algorithm) = Algorithm::from_name(e.str_or("algorithm", "sha256")?) else {
        return err("edgeauth.algorithm: must be sha256, sha1 or md5");
    };
    let token_name = e.str_or("token_name", "hdnts")?;
    if token_name.is_empty()
        || !token_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return err("edgeauth.token_name: must be non-empty [A-Za-z0-9_-]");
    }
    let mut delim = e.str_or("field_delimiter", "~")?.chars();
    let (Some(field_delimiter), None) = (delim.next(), delim.next()) else {
        return err("edgeauth.field_delimiter: must be exactly one character");
    };
    let signer = SessionSigner::new(EdgeAuth::new(EdgeAuthConfig {
        field_delimiter,
        algorithm,
        token_name: token_name.to_string(),
        escape_early: e.bool_or("escape_early", false)?,
        ..EdgeAuthConfig::new(key)
    }));

    let cloudfront = match top.opt("cloudfront") {
        None => None,
        Some(v) => {
            let cf = Obj::new("cloudfront", v)?;
            cf.known(&["public_base_url", "public_keys"])?;
            let public_base_url = cf.str("public_base_url")?;
            if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://"))
                || public_base_url.ends_with('/')
            {
                return err(
                    "cloudfront.public_base_url: must be http(s)://host[:port] without a trailing slash",
                );
            }
            let keys = Obj::new("cloudfront.public_keys", cf.req("public_keys")?)?;
            if keys.map.is_empty() {
                return err("cloudfront.public_keys: at least one key is required");
            }
            let mut verifier = CloudFrontVerifier::new();
            for (id, pem) in keys.map {
                let usable = pem
                    .as_str()
                    .is_some_and(|pem| verifier.add_public_key_pem(id, pem).is_ok());
                if !usable {
                    return err(format!(
                        "cloudfront.public_keys.{id}: not a usable Key-Pair-Id and RSA/P-256 PEM public key"
                    ));
                }
            }
            Some(CloudFront {
                verifier,
                public_base_url: public_base_url.to_string(),
            })
        }
    };

    let jwt = match top.opt("jwt") {
        None => None,
        Some(v) => {
            let j = Obj::new("jwt", v)?;
            j.known(&["issuer", "audience", "keys"])?;
            let issuer = j.str("issuer")?;
            if issuer.is_empty() {
                return err("jwt.issuer: must not be empty");
            }
            let audience = j.str("audience")?;
            if audience.is_empty() {
                return err("jwt.audience: must not be empty");
            }
            let keys = j.array("keys")?;
            if keys.is_empty() {
                return err("jwt.keys: at least one key is required");
            }
            let mut ring = KeyRing::new();
            for (i, k) in keys.iter().enumerate() {
                let k = Obj::new(&format!("jwt.keys[{i}]"), k)?;
                k.known(&["kid", "alg", "secret_hex", "public_key_pem"])?;
                let alg_name = k.str("alg")?;
                let Some(alg) = JwtAlgorithm::from_name(alg_name) else {
                    return err(format!(
                        "jwt.keys[{i}].alg: must be HS256, RS256, ES256 or EdDSA"
                    ));
                };
                let key = match (alg, k.str_opt("secret_hex")?, k.str_opt("public_key_pem")?) {
                    (JwtAlgorithm::Hs256, Some(secret), None) => {
                        let secret = hex::decode(secret.trim()).map_err(|_| {
                            ConfigError(format!("jwt.keys[{i}].secret_hex: not hex"))
                        })?;
                        VerificationKey::hs256(&secret)
                            .map_err(|e| ConfigError(format!("jwt.keys[{i}].secret_hex: {e}")))?
                    }
                    (JwtAlgorithm::Hs256, _, _) => {
                        return err(format!(
                            "jwt.keys[{i}]: HS256 takes secret_hex (and no public_key_pem)"
                        ))
                    }
                    (alg, None, Some(pem)) => VerificationKey::from_public_pem(alg, pem)
                        .map_err(|e| ConfigError(format!("jwt.keys[{i}].public_key_pem: {e}")))?,
                    (_, _, _) => {
                        return err(format!(
                            "jwt.keys[{i}]: {alg_name} takes public_key_pem (and no secret_hex)"
                        ))
                    }
                };
                let key = key
                    .with_kid(k.str("kid")?)
                    .map_err(|e| ConfigError(format!("jwt.keys[{i}].kid: {e}")))?;
                ring.push(key)
                    .map_err(|e| ConfigError(format!("jwt.keys[{i}]: {e}")))?;
            }
            Some(JwtVerifier::new(
                ring,
                JwtRules {
                    issuer: issuer.to_string(),
                    audience: audience.to_string(),
                    leeway_secs,
                },
            ))
        }
    };

    let raw_rules = top.array("rules")?;
    if raw_rules.is_empty() {
        return err("rules: at least one rule is required");
    }
    let mut rules = Vec::with_capacity(raw_rules.len());
    for (i, r) in raw_rules.iter().enumerate() {
        let r = Obj::new(&format!("rules[{i}]"), r)?;
        r.known(&["prefix", "check"])?;
        let prefix = r.str("prefix")?;
        if !prefix.starts_with('/') {
            return err(format!("rules[{i}].prefix: must start with '/'"));
        }
        let check = match r.str("check")? {
            "session" => Check::Session,
            "jwt" => Check::Jwt,
            _ => return err(format!("rules[{i}].check: must be \"session\" or \"jwt\"")),
        };
        if check == Check::Jwt && jwt.is_none() {
            return err(format!(
                "rules[{i}].check: \"jwt\" needs the jwt section to be configured"
            ));
        }
        rules.push(Rule {
            prefix: prefix.to_string(),
            check,
        });
    }

    let revocation = match top.opt("revocation") {
        None => None,
        Some(v) => {
            let r = Obj::new("revocation", v)?;
            r.known(&[
                "cluster",
                "authority",
                "path",
                "service_token",
                "refresh_ms",
                "timeout_ms",
            ])?;
            let cluster = r.str("cluster")?;
            if cluster.is_empty() {
                return err("revocation.cluster: must not be empty");
            }
            let path = r.str_or("path", "/internal/v1/revocations")?;
            if !path.starts_with('/') {
                return err("revocation.path: must start with '/'");
            }
            let service_token = r.str("service_token")?;
            if service_token.is_empty() {
                return err("revocation.service_token: must not be empty");
            }
            let refresh_ms = r.u64_or("refresh_ms", 1000)?;
            if refresh_ms < 100 {
                return err("revocation.refresh_ms: must be at least 100");
            }
            let timeout_ms = r.u64_or("timeout_ms", 5000)?;
            if timeout_ms == 0 {
                return err("revocation.timeout_ms: must be positive");
            }
            Some(Revocation {
                authority: r.str_or("authority", cluster)?.to_string(),
                cluster: cluster.to_string(),
                path: path.to_string(),
                service_token: service_token.to_string(),
                refresh_ms,
                timeout_ms,
            })
        }
    };

    let client_address = match top.opt("client_address") {
        None => ClientAddressRule::default(),
        Some(v) => {
            let c = Obj::new("client_address", v)?;
            c.known(&["trusted_proxies", "header"])?;
            let header = c.str_or("header", "x-forwarded-for")?;
            let Some(header) = ForwardedHeader::from_name(header) else {
                return err("client_address.header: must be \"x-forwarded-for\" or \"forwarded\"");
            };
            let trusted = match c.opt("trusted_proxies") {
                None => Vec::new(),
                Some(list) => list
                    .as_array()
                    .and_then(|l| l.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| {
                        ConfigError(
                            "client_address.trusted_proxies: must be an array of strings".into(),
                        )
                    })?,
            };
            ClientAddressRule::new(&trusted, header)
                .map_err(|e| ConfigError(format!("client_address.trusted_proxies: {e}")))?
        }
    };

    Ok(Config {
        signer,
        cloudfront,
        jwt,
        rules,
        leeway_secs,
        strip_token,
        fail_open,
        revocation,
        client_address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn base() -> Value {
        json!({
            "edgeauth": {"key_hex": "0707070707070707", "algorithm": "sha256", "token_name": "hdnts",
                         "field_delimiter": "~", "escape_early": false},
            "jwt": {"issuer": "iss", "audience": "aud",
                    "keys": [{"kid": "k1", "alg": "HS256", "secret_hex": "00112233"}]},
            "rules": [{"prefix": "/hls/", "check": "session"}, {"prefix": "/keys/", "check": "session"},
                      {"prefix": "/playback/", "check": "jwt"}],
            "leeway_secs": 5,
            "strip_token": true,
            "fail_open": false,
            "revocation": {"cluster": "edge_admin", "authority": "edge",
                           "path": "/internal/v1/revocations", "service_token": "ab", "refresh_ms": 1000}
        })
    }

    fn parse_value(v: &Value) -> Result<Config, ConfigError> {
        parse(v.to_string().as_bytes())
    }

    fn error_of(v: &Value) -> String {
        match parse_value(v) {
            Ok(_) => panic!("accepted {v}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn the_contract_example_parses() {
        let c = parse_value(&base()).unwrap();
        assert_eq!(c.token_name(), "hdnts");
        assert_eq!(c.rules.len(), 3);
        assert_eq!(c.rule_for("/hls/v/a.ts"), Some(Check::Session));
        assert_eq!(c.rule_for("/playback/v"), Some(Check::Jwt));
        assert_eq!(c.rule_for("/healthz"), None);
        assert!(c.jwt.is_some() && c.cloudfront.is_none());
        let r = c.revocation.unwrap();
        assert_eq!(
            (r.cluster.as_str(), r.authority.as_str()),
            ("edge_admin", "edge")
        );
        assert_eq!(c.leeway_secs, 5);
        assert!(c.strip_token && !c.fail_open);
    }

    #[test]
    fn defaults_apply() {
        let c = parse_value(&json!({
            "edgeauth": {"key_hex": "07"},
            "rules": [{"prefix": "/", "check": "session"}]
        }))
        .unwrap();
        assert_eq!(c.token_name(), "hdnts");
        assert!(c.strip_token && !c.fail_open && c.revocation.is_none());
        assert!(
            !c.client_address.reads_header(),
            "no proxy is trusted by default"
        );
    }

    #[test]
    fn trusted_proxies_are_the_edge_rule() {
        let mut v = base();
        v["client_address"] = json!({"trusted_proxies": ["10.0.0.0/8"], "header": "Forwarded"});
        let c = parse_value(&v).unwrap();
        assert_eq!(
            c.client_address,
            ClientAddressRule::new(&["10.0.0.0/8"], ForwardedHeader::Forwarded).unwrap()
        );
    }

    #[test]
    fn longest_prefix_wins() {
        let mut v = base();
        v["rules"] =
            json!([{"prefix": "/", "check": "jwt"}, {"prefix": "/hls/", "check": "session"}]);
        let c = parse_value(&v).unwrap();
        assert_eq!(c.rule_for("/hls/x"), Some(Check::Session));
        assert_eq!(c.rule_for("/other"), Some(Check::Jwt));
    }

    #[test]
    fn errors_name_the_key() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "edgeauth.key_hex",
                Box::new(|v| v["edgeauth"]["key_hex"] = json!("zz")),
            ),
            (
                "edgeauth.algorithm",
                Box::new(|v| v["edgeauth"]["algorithm"] = json!("sha512")),
            ),
            (
                "edgeauth.token_name",
                Box::new(|v| v["edgeauth"]["token_name"] = json!("a b")),
            ),
            (
                "edgeauth.field_delimiter",
                Box::new(|v| v["edgeauth"]["field_delimiter"] = json!("~~")),
            ),
            (
                "jwt.keys[0].alg",
                Box::new(|v| v["jwt"]["keys"][0]["alg"] = json!("none")),
            ),
            (
                "jwt.keys[0].secret_hex",
                Box::new(|v| v["jwt"]["keys"][0]["secret_hex"] = json!("xyz")),
            ),
            (
                "jwt.keys[0]",
                Box::new(|v| v["jwt"]["keys"][0]["alg"] = json!("RS256")),
            ),
            (
                "jwt.keys[0].kid",
                Box::new(|v| v["jwt"]["keys"][0]["kid"] = json!("")),
            ),
            ("jwt.issuer", Box::new(|v| v["jwt"]["issuer"] = json!(""))),
            (
                "rules[1].check",
                Box::new(|v| v["rules"][1]["check"] = json!("cookie")),
            ),
            (
                "rules[0].prefix",
                Box::new(|v| v["rules"][0]["prefix"] = json!("hls")),
            ),
            ("rules", Box::new(|v| v["rules"] = json!([]))),
            (
                "rules[2].check",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("jwt");
                }),
            ),
            (
                "revocation.refresh_ms",
                Box::new(|v| v["revocation"]["refresh_ms"] = json!(1)),
            ),
            (
                "revocation.path",
                Box::new(|v| v["revocation"]["path"] = json!("x")),
            ),
            (
                "cloudfront.public_base_url",
                Box::new(|v| {
                    v["cloudfront"] =
                        json!({"public_base_url": "ftp://x", "public_keys": {"K": "x"}})
                }),
            ),
            (
                "cloudfront.public_keys.KID1",
                Box::new(|v| {
                    v["cloudfront"] =
                        json!({"public_base_url": "http://x", "public_keys": {"KID1": "not pem"}})
                }),
            ),
            (
                "client_address.trusted_proxies: entry 1",
                Box::new(|v| {
                    v["client_address"] = json!({"trusted_proxies": ["10.0.0.0/8", "ten"]})
                }),
            ),
            (
                "client_address.trusted_proxies: must be an array",
                Box::new(|v| v["client_address"] = json!({"trusted_proxies": "10.0.0.0/8"})),
            ),
            (
                "client_address.header",
                Box::new(|v| v["client_address"] = json!({"header": "x-real-ip"})),
            ),
            ("unknown field `bogus`", Box::new(|v| v["bogus"] = json!(1))),
            (
                "unknown field `key`",
                Box::new(|v| v["edgeauth"]["key"] = json!("07")),
            ),
            (
                "edgeauth: missing field `edgeauth`",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("edgeauth");
                }),
            ),
        ];
        for (key, mutate) in cases {
            let mut v = base();
            mutate(&mut v);
            let e = error_of(&v);
            assert!(e.contains(key), "expected {key:?} in {e:?}");
        }
        assert!(matches!(parse(b"not json"), Err(e) if e.0.starts_with("JSON:")));
    }
}
