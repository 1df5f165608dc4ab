//! `edge-proxy explain <token|URL> [--path P] [--ip A] [--config F]`: says exactly why a token
//! passes or fails, check by check, with this edge's configuration.
//!
//! Detects the format (EdgeAuth token bare, as `hdnts=...`, or in a URL's query or path
//! segment; CloudFront parameters in a URL), lists the fields (never the MAC or signature),
//! then the signature, times, ACL, IP binding and — with `[redis]` configured — revocation, and
//! a verdict. Exit status: 0 pass, 1 fail, 2 unusable configuration or input. The signing key
//! is never printed: EdgeAuth libraries and Akamai properties take the same bytes in hex, which
//! `xxd -p -c 256 <signing_key_file>` prints on a trusted machine.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use playback::token::admission::{revocation_candidates, split_token_segment};
use playback::token::cloudfront::{params_from_query, signed_resource, url_safe_b64_decode};
use playback::token::edgeauth::RequestFacts;
use playback::token::session::{decode_data, raw_fields, SessionSubject};
use playback::token::{acl_matches, ip_matches};
use playback::Reason;

use crate::app::build::cloudfront_verifier;
use crate::app::secrets::cloudfront_keys;
use crate::config::{ConfigError, EdgeConfig};
use crate::core::clock::{now_unix, rfc3339};
use crate::core::errors::EdgeError;
use crate::core::redis::from_config as redis_link_from;
use crate::gate::revocation::Revocations;
use crate::gate::sessions::Sessions;

/// What the input turned out to be.
enum Input {
    EdgeAuth {
        token: String,
        path: Option<String>,
        source: &'static str,
    },
    CloudFront {
        query: String,
        path: String,
    },
}

/// Runs the subcommand and prints the report to stdout.
pub fn run(config_path: &Path, input: &str, path: Option<&str>, ip: Option<IpAddr>) -> ExitCode {
    match explain(config_path, input, path, ip) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("edge-proxy explain: {message}");
            ExitCode::from(2)
        }
    }
}

fn line(check: &str, text: impl AsRef<str>) {
    println!("{check:<11} {}", text.as_ref());
}

fn explain(
    config_path: &Path,
    input: &str,
    path: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<bool, String> {
    let config = EdgeConfig::load(config_path).map_err(|e| e.to_string())?;
    let key_file = &config.signed_urls.signing_key_file;
    let key = std::fs::read(key_file).map_err(|e| {
        format!(
            "config key `signed_urls.signing_key_file`: cannot read {}: {e}",
            key_file.display()
        )
    })?;
    let sessions = Sessions::new(&config.signed_urls, &config.sessions, &config.cookies, &key);
    let parsed = parse_input(input.trim(), sessions.token_name())?;
    match parsed {
        Input::EdgeAuth {
            token,
            path: url_path,
            source,
        } => {
            line(
                "format",
                format!(
                    "EdgeAuth v2 token from {source} (name {}, {}, field delimiter {:?})",
                    sessions.token_name(),
                    config.signed_urls.algorithm,
                    config.signed_urls.field_delimiter
                ),
            );
            line(
                "key",
                format!(
                    "{} ({} bytes; Akamai/EdgeAuth take it in hex: xxd -p -c 256 {})",
                    key_file.display(),
                    key.len(),
                    key_file.display()
                ),
            );
            let path = path.map(str::to_string).or(url_path);
            explain_edgeauth(&config, &sessions, &token, path, ip)
        }
        Input::CloudFront {
            query,
            path: url_path,
        } => {
            let path = path.map(str::to_string).unwrap_or(url_path);
            explain_cloudfront(&config, &query, &path, ip)
        }
    }
}

fn parse_input(input: &str, name: &str) -> Result<Input, String> {
    if !(input.starts_with("http://") || input.starts_with("https://")) {
        let prefix = format!("{name}=");
        let token = input.strip_prefix(&prefix).unwrap_or(input).to_string();
        return Ok(Input::EdgeAuth {
            token,
            path: None,
            source: "the argument",
        });
    }
    let uri: http::Uri = input
        .parse()
        .map_err(|e| format!("not a URL or a token: {e}"))?;
    let raw_path = uri.path();
    let (path_token, logical) = logical_path(raw_path, name)?;
    if let Some(token) = path_token {
        return Ok(Input::EdgeAuth {
            token,
            path: Some(logical),
            source: "the URL's path segment",
        });
    }
    if let Some(token) = playback::token::query_param(uri.query(), name) {
        return Ok(Input::EdgeAuth {
            token: token.to_string(),
            path: Some(logical),
            source: "the URL's query",
        });
    }
    if let Some(query) = uri.query().filter(|q| params_from_query(q).is_some()) {
        return Ok(Input::CloudFront {
            query: query.to_string(),
            path: logical,
        });
    }
    Err(format!(
        "the URL carries no {name} token (query or path segment) and no CloudFront parameters"
    ))
}

/// The path with a path-mode token segment (after `/hls/{v}/` or `/keys/{v}/`) removed.
fn logical_path(raw: &str, name: &str) -> Result<(Option<String>, String), String> {
    let split = split_token_segment(raw, name)
        .map_err(|e| format!("bad token segment: {}", EdgeError::from(e)))?;
    Ok((split.token, split.path))
}

fn explain_edgeauth(
    config: &EdgeConfig,
    sessions: &Sessions,
    token: &str,
    path: Option<String>,
    ip: Option<IpAddr>,
) -> Result<bool, String> {
    let delimiter = config.signed_urls.field_delimiter;
    let fields = raw_fields(token, delimiter);
    let field = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let listed: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={v}")).collect();
    line("fields", listed.join("  "));
    if let Some(data) = field("data") {
        match decode_data(data) {
            Some((user, jti)) => line(
                "viewer",
                format!(
                    "user {}{}",
                    user.as_deref().unwrap_or("-"),
                    jti.map(|j| format!(", jti {j}")).unwrap_or_default()
                ),
            ),
            None => line("viewer", "data is not in the edge's user[:jti] format"),
        }
    }
    let acl: Vec<&str> = field("acl")
        .map(|a| a.split('!').collect())
        .unwrap_or_default();
    let (path, path_source) = match path {
        Some(p) => (p, "given"),
        None => match acl.first() {
            Some(first) => (
                first.replace('*', "").replace('?', "x"),
                "the token's own first ACL entry",
            ),
            None => return Err("a URL token needs --path (the path it was minted for)".into()),
        },
    };
    line("path", format!("{path} ({path_source})"));
    let now = now_unix();
    let facts = RequestFacts {
        path: &path,
        client_ip: ip,
        now_unix: now,
    };
    let verdict = sessions.signer.verify(token, &facts);
    let mac_ok = !matches!(
        verdict,
        Err(Reason::BadSignature | Reason::Malformed | Reason::MissingToken)
    );
    match &verdict {
        Err(reason @ (Reason::BadSignature | Reason::Malformed | Reason::MissingToken)) => {
            line(
                "signature",
                format!("FAIL {}: {}", reason.code(), reason.message()),
            );
        }
        _ => line(
            "signature",
            "ok (HMAC matches; the fields below are authentic)",
        ),
    }
    if mac_ok {
        explain_fields(&field, &acl, &path, ip, now);
    }
    let mut pass = verdict.is_ok();
    if let Ok(grant) = &verdict {
        pass &= explain_revocation(config, &grant.subject)?;
    } else {
        line("revocation", "not checked (the token already fails)");
    }
    match verdict {
        Ok(_) if pass => line("verdict", "PASS"),
        Ok(_) => line("verdict", "FAIL revoked"),
        Err(reason) => {
            let hint = if reason == Reason::IpMismatch && ip.is_none() {
                " (the token is IP-bound; pass --ip)"
            } else {
                ""
            };
            line("verdict", format!("FAIL {}{hint}", reason.code()));
        }
    }
    Ok(pass)
}

fn explain_fields<'a>(
    field: &dyn Fn(&str) -> Option<&'a str>,
    acl: &[&str],
    path: &str,
    ip: Option<IpAddr>,
    now: u64,
) {
    let number = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
    match (number("st"), number("exp")) {
        (_, None) => line("times", "FAIL malformed: no numeric exp"),
        (Some(st), _) if now < st => {
            line("times", format!("FAIL not_yet_valid: st={st} > now={now}"))
        }
        (_, Some(exp)) if now >= exp => line(
            "times",
            format!("FAIL expired: exp={exp} <= now={now} ({})", rfc3339(exp)),
        ),
        (_, Some(exp)) => line(
            "times",
            format!("ok: expires {} (in {} s)", rfc3339(exp), exp - now),
        ),
    }
    if acl.is_empty() {
        line("acl", "URL token: bound to the path by the HMAC");
    } else {
        match acl.iter().find(|pattern| acl_matches(pattern, path)) {
            Some(pattern) => line("acl", format!("ok: {pattern} covers {path}")),
            None => line(
                "acl",
                format!("FAIL acl_mismatch: {} does not cover {path}", acl.join("!")),
            ),
        }
    }
    match (field("ip"), ip) {
        (None, _) => line("ip", "ok: not bound to an address"),
        (Some(rule), None) => line(
            "ip",
            format!("bound to {rule}; pass --ip to check a client"),
        ),
        (Some(rule), Some(client)) => match ip_matches(rule, client) {
            Ok(true) => line("ip", format!("ok: {client} is within {rule}")),
            Ok(false) => line(
                "ip",
                format!("FAIL ip_mismatch: {client} is not within {rule}"),
            ),
            Err(_) => line(
                "ip",
                format!("FAIL malformed: ip={rule} is not an address or CIDR"),
            ),
        },
    }
}

/// Asks Redis about the session, JWT and user; `true` when none is revoked.
fn explain_revocation(config: &EdgeConfig, subject: &SessionSubject) -> Result<bool, String> {
    if config.redis.url.is_empty() {
        line(
            "revocation",
            "not checked: no [redis] url (revocations are local to each edge process)",
        );
        return Ok(true);
    }
    let link = redis_link_from(&config.redis)
        .map_err(|e| format!("redis.url: {e}"))?
        .map(std::sync::Arc::new);
    let revocations = Revocations::new(&config.revocation, link);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut clear = true;
    for (kind, id) in revocation_candidates(subject) {
        let Some(id) = id else { continue };
        match runtime.block_on(revocations.persisted(kind, id)) {
            Some(Ok(true)) => {
                line("revocation", format!("FAIL revoked: {} {id}", kind.label()));
                clear = false;
            }
            Some(Ok(false)) => line(
                "revocation",
                format!("ok: {} {id} not revoked", kind.label()),
            ),
            Some(Err(e)) => {
                line("revocation", format!("unknown: redis unavailable ({e})"));
            }
            None => {}
        }
    }
    Ok(clear)
}

fn explain_cloudfront(
    config: &EdgeConfig,
    query: &str,
    path: &str,
    ip: Option<IpAddr>,
) -> Result<bool, String> {
    let params = params_from_query(query).ok_or("no CloudFront parameters")?;
    line("format", "CloudFront signed URL");
    let mut listed = vec![format!("Key-Pair-Id={}", params.key_pair_id)];
    if let Some(expires) = params.expires {
        listed.push(format!("Expires={expires} (canned policy)"));
    }
    if let Some(hash) = params.hash_algorithm {
        listed.push(format!("Hash-Algorithm={hash}"));
    }
    line("fields", listed.join("  "));
    if let Some(policy) = params.policy {
        let decoded = url_safe_b64_decode(policy)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_else(|| "(not CloudFront base64)".into());
        line("policy", decoded);
    }
    let resource = signed_resource(config.server.public_base_url(), path, Some(query));
    line("resource", &resource);
    let keys = cloudfront_keys(config).map_err(|e: ConfigError| e.to_string())?;
    let Some(verifier) = cloudfront_verifier(&keys).map_err(|e| e.to_string())? else {
        line(
            "verdict",
            "FAIL unknown_key: no [cloudfront] public_keys configured",
        );
        return Ok(false);
    };
    match verifier.verify(&params, &resource, ip, now_unix()) {
        Ok(grant) => {
            line(
                "checks",
                format!(
                    "ok: signature, times (expires {}), resource, ip",
                    rfc3339(grant.expires_at)
                ),
            );
            line("verdict", "PASS");
            Ok(true)
        }
        Err(reason) => {
            line(
                "checks",
                format!("FAIL {}: {}", reason.code(), reason.message()),
            );
            line("verdict", format!("FAIL {}", reason.code()));
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_cut_from_urls() {
        let (token, path) = logical_path(
            "/hls/v1/hdnts=exp=1~acl=%2Fhls%2Fv1%2F*~hmac=ab/720p/a.ts",
            "hdnts",
        )
        .unwrap();
        assert_eq!(token.as_deref(), Some("exp=1~acl=/hls/v1/*~hmac=ab"));
        assert_eq!(path, "/hls/v1/720p/a.ts");
        assert_eq!(
            logical_path("/hls/v1/master.m3u8", "hdnts").unwrap(),
            (None, "/hls/v1/master.m3u8".into())
        );
        assert_eq!(
            logical_path("/health", "hdnts").unwrap(),
            (None, "/health".into())
        );
    }

    #[test]
    fn inputs_are_detected() {
        assert!(matches!(
            parse_input("hdnts=exp=1~hmac=00", "hdnts").unwrap(),
            Input::EdgeAuth { token, path: None, .. } if token == "exp=1~hmac=00"
        ));
        assert!(matches!(
            parse_input("http://e/hls/v/master.m3u8?hdnts=exp=1~hmac=00", "hdnts").unwrap(),
            Input::EdgeAuth { path: Some(p), .. } if p == "/hls/v/master.m3u8"
        ));
        assert!(parse_input("http://e/hls/v/master.m3u8", "hdnts").is_err());
    }
}
