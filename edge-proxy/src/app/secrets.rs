//! Every secret file the configuration names, read in one place at start-up: JWT keys, the
//! URL-signing key, the service token, the key transport key, CDN secrets, CloudFront public
//! keys, S3 credentials, FairPlay credentials and the license providers' signing keys. The
//! components are built from these bytes ([`super::build`]); none of them opens a file. A
//! missing or malformed file is a [`ConfigError`] naming its key. `Debug` never shows a secret.

use std::path::Path;

use playback::jwt::{Algorithm, KeyRing, VerificationKey};

use crate::config::{invalid, ConfigError, EdgeConfig, JwtConfig, OriginKind};

/// Secret material read from the files the configuration names.
pub struct Secrets {
    /// `[jwt]`'s keys: the unnamed HS256 secret and every `[[jwt.keys]]` entry.
    pub jwt_keys: KeyRing,
    pub url_signing_key: Vec<u8>,
    pub service_token: String,
    pub key_transport_key: [u8; 32],
    /// `cdn.shared_secret_file`'s secrets (empty when CDN pulls are off).
    pub cdn_secrets: Vec<Vec<u8>>,
    /// `[cloudfront] public_keys`: (Key-Pair-Id, PEM text, file) for each.
    pub cloudfront_keys: Vec<(String, String, String)>,
    /// `[origin.s3]`'s secret access key and session token (S3 origins only).
    pub s3: Option<S3Secrets>,
    /// `[drm.fairplay]`'s files, when FairPlay is on.
    pub fairplay: Option<FairPlaySecrets>,
    /// `[drm.widevine]`'s signing key and IV (hex text), when Widevine is on.
    pub widevine: Option<(String, String)>,
    /// `[drm.playready]`'s custom-data key, when PlayReady is on.
    pub playready_custom_data_key: Option<Vec<u8>>,
}

/// The S3 origin's credentials.
pub struct S3Secrets {
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// The FairPlay deployment's files, as read.
pub struct FairPlaySecrets {
    /// The FPS certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The FPS private key, PEM text.
    pub private_key_pem: String,
    /// The Application Secret Key.
    pub ask: [u8; 16],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { <redacted> }")
    }
}

/// Shortest HMAC key or JWT secret accepted from a file.
const MIN_SECRET_LEN: usize = 16;

impl Secrets {
    /// Reads every secret file named in `config`; a missing or malformed file names its key.
    pub fn load(config: &EdgeConfig) -> Result<Self, ConfigError> {
        let jwt_hs256_secret = if config.jwt.hs256_secret_file.as_os_str().is_empty() {
            Vec::new()
        } else {
            read_secret("jwt.hs256_secret_file", &config.jwt.hs256_secret_file)?
        };
        let jwt_keys = jwt_keys(&config.jwt, &jwt_hs256_secret)?;
        let url_signing_key = read_secret(
            "signed_urls.signing_key_file",
            &config.signed_urls.signing_key_file,
        )?;
        let token_bytes = read_secret(
            "control_plane.service_token_file",
            &config.control_plane.service_token_file,
        )?;
        let service_token = String::from_utf8(token_bytes)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                invalid(
                    "control_plane.service_token_file",
                    "does not hold a printable token",
                    "run `control-plane init-secrets --dir data/secrets` to write a hex service token",
                )
            })?;
        let transport = read_secret(
            "control_plane.key_transport_key_file",
            &config.control_plane.key_transport_key_file,
        )?;
        let key_transport_key: [u8; 32] = transport.as_slice().try_into().map_err(|_| {
            invalid(
                "control_plane.key_transport_key_file",
                format!("holds {} bytes, not 32", transport.len()),
                "use the 32-byte key written by `control-plane init-secrets --dir data/secrets`",
            )
        })?;
        let cdn_secrets = if config.cdn.shared_secret_file.as_os_str().is_empty() {
            Vec::new()
        } else {
            cdn_secrets(&read_secret(
                "cdn.shared_secret_file",
                &config.cdn.shared_secret_file,
            )?)?
        };
        Ok(Secrets {
            jwt_keys,
            url_signing_key,
            service_token,
            key_transport_key,
            cdn_secrets,
            cloudfront_keys: cloudfront_keys(config)?,
            s3: s3_secrets(config)?,
            fairplay: fairplay_secrets(config)?,
            widevine: widevine_secrets(config)?,
            playready_custom_data_key: match config.drm.playready.url.is_empty() {
                true => None,
                false => Some(read_secret(
                    "drm.playready.custom_data_key_file",
                    &config.drm.playready.custom_data_key_file,
                )?),
            },
        })
    }
}

/// The CDN secrets: one per non-empty line, printable (they travel in a header), 16+ bytes.
fn cdn_secrets(file: &[u8]) -> Result<Vec<Vec<u8>>, ConfigError> {
    let secrets: Vec<Vec<u8>> = file
        .split(|b| *b == b'\n')
        .map(|line| line.trim_ascii().to_vec())
        .filter(|line| !line.is_empty())
        .collect();
    let usable = |s: &Vec<u8>| s.len() >= MIN_SECRET_LEN && s.iter().all(u8::is_ascii_graphic);
    if secrets.is_empty() || !secrets.iter().all(usable) {
        return Err(invalid(
            "cdn.shared_secret_file",
            "must hold one printable secret of at least 16 characters per line",
            "write e.g. `openssl rand -hex 32` into it (two lines while rotating)",
        ));
    }
    Ok(secrets)
}

/// The PEM public keys `[cloudfront] public_keys` names.
pub fn cloudfront_keys(config: &EdgeConfig) -> Result<Vec<(String, String, String)>, ConfigError> {
    config
        .cloudfront
        .public_keys
        .iter()
        .map(|(key_pair_id, path)| {
            let pem = std::fs::read_to_string(path).map_err(|e| ConfigError::SecretFile {
                key: "cloudfront.public_keys",
                path: path.display().to_string(),
                cause: e.to_string(),
            })?;
            Ok((key_pair_id.clone(), pem, path.display().to_string()))
        })
        .collect()
}

/// `[origin.s3]`'s secret key and session token, each one line of text.
fn s3_secrets(config: &EdgeConfig) -> Result<Option<S3Secrets>, ConfigError> {
    if config.origin.kind != OriginKind::S3 {
        return Ok(None);
    }
    let s3 = &config.origin.s3;
    let read = |key: &'static str, path: &Path| {
        let bytes = read_secret(key, path)?;
        String::from_utf8(bytes)
            .ok()
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty() && !text.chars().any(char::is_control))
            .ok_or_else(|| {
                invalid(
                    key,
                    format!("file {} does not hold one line of text", path.display()),
                    "write the value alone in the file, as AWS shows it",
                )
            })
    };
    let secret_access_key = read(
        "origin.s3.secret_access_key_file",
        &s3.secret_access_key_file,
    )?;
    let session_token = match s3.session_token_file.as_os_str().is_empty() {
        true => None,
        false => Some(read(
            "origin.s3.session_token_file",
            &s3.session_token_file,
        )?),
    };
    Ok(Some(S3Secrets {
        secret_access_key,
        session_token,
    }))
}

/// `[drm.fairplay]`'s certificate, private key and ASK (validated: all three or none).
fn fairplay_secrets(config: &EdgeConfig) -> Result<Option<FairPlaySecrets>, ConfigError> {
    let fairplay = &config.drm.fairplay;
    if fairplay.certificate_file.as_os_str().is_empty() {
        return Ok(None);
    }
    let certificate_der = read_secret("drm.fairplay.certificate_file", &fairplay.certificate_file)?;
    let private_key = read_secret("drm.fairplay.private_key_file", &fairplay.private_key_file)?;
    let private_key_pem = String::from_utf8(private_key).map_err(|_| ConfigError::Invalid {
        key: "drm.fairplay.private_key_file",
        problem: "is not PEM text".into(),
        fix: "use the FPS private key in PEM form".into(),
    })?;
    let ask_hex = read_secret("drm.fairplay.ask_file", &fairplay.ask_file)?;
    let ask: [u8; 16] = std::str::from_utf8(&ask_hex)
        .ok()
        .and_then(|text| hex::decode(text.trim()).ok())
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| ConfigError::Invalid {
            key: "drm.fairplay.ask_file",
            problem: "does not hold 32 hex characters".into(),
            fix: "write the Application Secret Key from Apple's deployment package as hex".into(),
        })?;
    Ok(Some(FairPlaySecrets {
        certificate_der,
        private_key_pem,
        ask,
    }))
}

/// `[drm.widevine]`'s signing key and IV, as hex text.
fn widevine_secrets(config: &EdgeConfig) -> Result<Option<(String, String)>, ConfigError> {
    let widevine = &config.drm.widevine;
    if widevine.url.is_empty() {
        return Ok(None);
    }
    let key = read_hex_file("drm.widevine.signing_key_file", &widevine.signing_key_file)?;
    let iv = read_hex_file("drm.widevine.signing_iv_file", &widevine.signing_iv_file)?;
    Ok(Some((key, iv)))
}

fn read_hex_file(key: &'static str, path: &Path) -> Result<String, ConfigError> {
    let bytes = read_secret(key, path)?;
    String::from_utf8(bytes)
        .map(|text| text.trim().to_string())
        .map_err(|_| ConfigError::Invalid {
            key,
            problem: format!("{} is not hex text", path.display()),
            fix: "write the value as hex characters".into(),
        })
}

/// Reads the keys `[jwt]` names from files (the JWKS URL is fetched separately).
pub fn jwt_keys(config: &JwtConfig, hs256_secret: &[u8]) -> Result<KeyRing, ConfigError> {
    let mut ring = KeyRing::new();
    let problem = |key: &'static str, problem: String| ConfigError::Invalid {
        key,
        problem,
        fix: "point it at a valid key file (PEM public key, JWK, or a raw secret of >= 16 bytes)"
            .into(),
    };
    if !hs256_secret.is_empty() {
        let key = VerificationKey::hs256(hs256_secret)
            .map_err(|e| problem("jwt.hs256_secret_file", e.to_string()))?;
        ring.push(key)
            .map_err(|e| problem("jwt.hs256_secret_file", e.to_string()))?;
    }
    for entry in &config.keys {
        let alg = Algorithm::from_name(&entry.alg)
            .ok_or_else(|| problem("jwt.keys.alg", format!("{:?} is not supported", entry.alg)))?;
        let key = if !entry.jwk_file.as_os_str().is_empty() {
            let json = read_secret("jwt.keys.jwk_file", &entry.jwk_file)?;
            let key = VerificationKey::from_jwk(&json).map_err(|e| {
                problem(
                    "jwt.keys.jwk_file",
                    format!("{}: {e}", entry.jwk_file.display()),
                )
            })?;
            if key.algorithm() != alg {
                return Err(problem(
                    "jwt.keys.jwk_file",
                    format!(
                        "{} holds a {} key, not {alg}",
                        entry.jwk_file.display(),
                        key.algorithm()
                    ),
                ));
            }
            key
        } else if alg == Algorithm::Hs256 {
            let secret = read_secret("jwt.keys.secret_file", &entry.secret_file)?;
            VerificationKey::hs256(&secret)
                .map_err(|e| problem("jwt.keys.secret_file", e.to_string()))?
        } else {
            let pem = read_secret("jwt.keys.public_key_file", &entry.public_key_file)?;
            let pem = String::from_utf8(pem)
                .map_err(|_| problem("jwt.keys.public_key_file", "is not PEM text".into()))?;
            VerificationKey::from_public_pem(alg, &pem).map_err(|e| {
                problem(
                    "jwt.keys.public_key_file",
                    format!("{}: {e}", entry.public_key_file.display()),
                )
            })?
        };
        let key = if entry.kid.is_empty() {
            key
        } else {
            key.with_kid(&entry.kid)
                .map_err(|e| problem("jwt.keys.kid", e.to_string()))?
        };
        ring.push(key)
            .map_err(|e| problem("jwt.keys.kid", format!("{:?}: {e}", entry.kid)))?;
    }
    Ok(ring)
}

/// A secret file's bytes (at least 16 of them); the error names `key` and the file.
pub fn read_secret(key: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError::SecretFile {
        key,
        path: path.display().to_string(),
        cause: e.to_string(),
    })?;
    if bytes.len() < MIN_SECRET_LEN {
        return Err(invalid(
            key,
            format!("file {} holds only {} bytes", path.display(), bytes.len()),
            "use a secret of at least 16 bytes, e.g. from `control-plane init-secrets --dir data/secrets`",
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secret_names_key_and_init_command() {
        let mut config = EdgeConfig::default();
        config.jwt.hs256_secret_file = "/nonexistent/jwt.key".into();
        let err = Secrets::load(&config).unwrap_err().to_string();
        assert!(err.contains("jwt.hs256_secret_file"), "{err}");
        assert!(
            err.contains("control-plane init-secrets --dir data/secrets"),
            "{err}"
        );
    }

    #[test]
    fn secrets_debug_is_redacted() {
        let secrets = Secrets {
            jwt_keys: KeyRing::new(),
            url_signing_key: vec![2; 32],
            service_token: "abc".into(),
            key_transport_key: [3; 32],
            cdn_secrets: vec![b"0123456789abcdef".to_vec()],
            cloudfront_keys: Vec::new(),
            s3: None,
            fairplay: None,
            widevine: Some(("00".repeat(32), "00".repeat(16))),
            playready_custom_data_key: None,
        };
        assert_eq!(format!("{secrets:?}"), "Secrets { <redacted> }");
    }

    fn s3_config(dir: &Path) -> EdgeConfig {
        let mut config = EdgeConfig::default();
        let origin = &mut config.origin;
        origin.kind = OriginKind::S3;
        origin.s3.endpoint = "http://127.0.0.1:9000".into();
        origin.s3.bucket = "media".into();
        origin.s3.prefix = "hls".into();
        origin.s3.access_key_id = "AKIAIOSFODNN7EXAMPLE".into();
        origin.s3.secret_access_key_file = dir.join("secret");
        config
    }

    #[test]
    fn s3_secrets_come_from_files() {
        const V: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";
        let dir = tempfile::tempdir().unwrap();
        let mut config = s3_config(dir.path());
        let missing = s3_secrets(&config).err().unwrap().to_string();
        assert!(
            missing.contains("origin.s3.secret_access_key_file"),
            "{missing}"
        );

        std::fs::write(dir.path().join("secret"), "short\n").unwrap();
        let short = s3_secrets(&config).err().unwrap().to_string();
        assert!(
            short.contains("origin.s3.secret_access_key_file"),
            "{short}"
        );
        assert!(!short.contains("short\n"), "{short}");

        std::fs::write(
            dir.path().join("secret"),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        )
        .unwrap();
        let secrets = s3_secrets(&config).unwrap().unwrap();
        assert_eq!(
            secrets.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "the file's newline is not part of the secret"
        );
        assert!(secrets.session_token.is_none());
        let origin = crate::delivery::origin::S3Origin::from_config(
            &config.origin,
            secrets.secret_access_key,
            secrets.session_token,
        )
        .unwrap();
        assert_eq!(
            origin.prefix(V),
            format!("http://127.0.0.1:9000/media/hls/{V}/")
        );

        config.origin.s3.session_token_file = dir.path().join("token");
        let missing = s3_secrets(&config).err().unwrap().to_string();
        assert!(
            missing.contains("origin.s3.session_token_file"),
            "{missing}"
        );
        std::fs::write(dir.path().join("token"), "  FwoGZXIvYXdzEXAMPLETOKEN==  \n").unwrap();
        let secrets = s3_secrets(&config).unwrap().unwrap();
        assert_eq!(
            secrets.session_token.as_deref(),
            Some("FwoGZXIvYXdzEXAMPLETOKEN==")
        );
    }
}
