//! Configuration errors, each naming the key at fault and the fix, and the checks every
//! section's validation shares.

/// A configuration problem, naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} does not exist; pass --config <path> to an existing file (see config/edge.dev.toml)")]
    MissingFile { path: String },
    #[error("could not read the configuration: {0}")]
    Parse(String),
    #[error("config key `{key}` {problem}; fix: {fix}")]
    Invalid {
        key: &'static str,
        problem: String,
        fix: String,
    },
    #[error("config key `{key}`: cannot read secret file {path}: {cause}; fix: run `control-plane init-secrets --dir data/secrets` or point `{key}` at the right file")]
    SecretFile {
        key: &'static str,
        path: String,
        cause: String,
    },
}

/// The `Invalid` error for `key`.
pub fn invalid(
    key: &'static str,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Refuses 0 for a count, size or duration.
pub fn check_positive(key: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(key, "is 0", "set a positive number"));
    }
    Ok(())
}

/// An absolute http(s) URL without a query string.
pub fn check_http_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let parsed: Result<http::Uri, _> = value.parse();
    let ok = match &parsed {
        Ok(uri) => {
            matches!(uri.scheme_str(), Some("http") | Some("https"))
                && uri.host().is_some_and(|h| !h.is_empty())
                && uri.query().is_none()
        }
        Err(_) => false,
    };
    if !ok {
        return Err(invalid(
            key,
            format!("is {value:?}, not an http(s) URL"),
            "write an absolute URL such as \"http://127.0.0.1:8081\" (no query string)",
        ));
    }
    Ok(())
}
