//! Key custody in the Transit secrets engine of OpenBao (or HashiCorp Vault: same HTTP API).
//!
//! The master key never leaves OpenBao. The control plane holds only a token that may use one
//! Transit key, and asks OpenBao to do the work:
//!
//! - [`KeyCustody::generate`]: `POST /v1/{mount}/datakey/plaintext/{key}` with `bits=128`;
//!   OpenBao draws the AES-128 content key and returns it with its Transit ciphertext;
//! - [`KeyCustody::seal`]: `POST /v1/{mount}/encrypt/{key}` (a key packaged elsewhere);
//! - [`KeyCustody::unwrap`]: `POST /v1/{mount}/decrypt/{key}`;
//! - [`VaultTransitCustody::rewrap`]: `POST /v1/{mount}/rewrap/{key}`, which moves an envelope
//!   to the key's latest version without the plaintext leaving OpenBao;
//! - [`VaultTransitCustody::check`]: `GET /v1/{mount}/keys/{key}`, the key's versions and
//!   whether it is usable (see below); run once, lazily, before the first operation too.
//!
//! # Binding: a derived Transit key and a per-key `context`
//!
//! Every call carries `context` = base64 of
//! `streaming-edge/custody/v1|at-rest|{len}:{videoId}|{len}:{keyId}` (the lengths make the
//! encoding injective, like [`playback::keywrap`]'s associated data; a plain `{videoId}/{keyId}`
//! would let `("a/b", "c")` and `("a", "b/c")` share one context). The Transit key must be
//! created with `derived=true`: OpenBao then derives a separate AES-256-GCM key per context
//! (HKDF-SHA256 from the key version), so an envelope opens only for the title and key id it
//! was made for.
//!
//! Why `derived=true` + `context` rather than `associated_data` on a plain `aes256-gcm96` key
//! (both bind; both were tried against OpenBao 2.7.2): with a derived key OpenBao itself refuses
//! any request that lacks a context ("missing 'context' for key derivation"), so no client, CLI
//! session or future code path can make an unbound envelope under this key. `associated_data`
//! is optional on every call: leaving it out silently yields an envelope bound to nothing.
//! The price is that derivation must be chosen when the key is created (it cannot be switched
//! on later), and OpenBao silently *ignores* a context sent to a non-derived key. That is why
//! [`VaultTransitCustody::check`] refuses a key without `derived: true`, and why every
//! instance runs it once before its first operation.
//!
//! # Envelope
//!
//! `bao:v1:` + the Transit ciphertext, e.g. `bao:v1:vault:v3:Base64…`. `bao:v1:` names the
//! backend and this envelope format (the local backend's envelopes start `v1.`, so a future
//! router can tell them apart); `vault:v3:` is Transit's own prefix and records the key version.
//! [`envelope_key_version`] reads it.
//!
//! # Rotation and retirement
//!
//! `POST /v1/{mount}/keys/{key}/rotate` (an operator's action, not the control plane's) makes
//! a new version that every later `generate` / `seal` uses; envelopes of older versions still
//! open. To retire a version: [`VaultTransitCustody::rewrap`] every stored envelope whose
//! [`envelope_key_version`] is older, then raise `min_decryption_version` with
//! `POST /v1/{mount}/keys/{key}/config`. An envelope of a retired version then fails with a
//! [`CustodyError::Backend`] that says so (and how to undo it), not with a binding error.
//!
//! # Token, namespace, transport
//!
//! The token is read from a file (`X-Vault-Token`), never from the configuration itself; the
//! file is read again whenever its modification time or size changes, so an OpenBao Agent sink
//! can renew it in place. `X-Vault-Namespace` is sent when a namespace is configured. Plain
//! `http://` is accepted only for a loopback address (the dev server, an agent or sidecar on
//! the same host); anything else must be `https://`, optionally with a private CA
//! (`ca_cert_file`). Redirects are not followed (the token header would go with them): point
//! the address at the active node or a load balancer. Connect and whole-request timeouts are
//! set; response bodies are read up to [`MAX_RESPONSE_BYTES`].
//!
//! The least privilege this backend needs (for mount `transit`, key `content-keys`):
//!
//! ```hcl
//! path "transit/datakey/plaintext/content-keys" { capabilities = ["update"] }
//! path "transit/encrypt/content-keys"           { capabilities = ["update"] }
//! path "transit/decrypt/content-keys"           { capabilities = ["update"] }
//! path "transit/rewrap/content-keys"            { capabilities = ["update"] }
//! path "transit/keys/content-keys"              { capabilities = ["read"] }
//! ```
//!
//! (`update` without `create` also stops Transit's upsert: a mistyped key name fails with
//! "encryption key not found" instead of silently creating a new, non-derived key.)
//!
//! # Errors
//!
//! Unavailability, permissions, a missing key or mount, a retired version: all
//! [`CustodyError::Backend`] with a message that starts `openbao:` and names the operation.
//! An envelope that does not authenticate under its binding is [`CustodyError::Unwrap`]
//! (`Unauthentic`), one that is not a `bao:v1:` envelope is `Unwrap` (`Malformed`), exactly as
//! with the local backend. No message carries key material or the token; OpenBao's own error
//! strings are included, cut to a few hundred characters.
//!
//! Plaintext keys are zeroed in the buffers this module owns (the response body, the decoded
//! key); copies inside the HTTP stack and in the request body of `seal` are not reachable from
//! here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use playback::keywrap::KeyWrapError;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::{ContentKey, CustodyError, GeneratedKey, KeyCustody, CONTENT_KEY_LEN};

/// The backend's name, in [`KeyCustody::backend`] and at the start of every error message.
pub const BACKEND: &str = "openbao";
/// The prefix of every envelope this backend makes.
pub const ENVELOPE_PREFIX: &str = "bao:v1:";
/// The longest envelope accepted (a 16-byte key's envelope is about 80 characters).
pub const MAX_ENVELOPE_LEN: usize = 512;
/// The largest response body read from OpenBao.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

const CONTEXT_LABEL: &str = "streaming-edge/custody/v1|at-rest";
const TRANSIT_PREFIX: &str = "vault:v";
const MAX_TOKEN_FILE_BYTES: u64 = 16 * 1024;
const MAX_SERVER_MESSAGE: usize = 300;
/// The Transit key types whose `encrypt` / `decrypt` / `datakey` this backend relies on.
const USABLE_KEY_TYPES: [&str; 4] = [
    "aes256-gcm96",
    "aes128-gcm96",
    "chacha20-poly1305",
    "xchacha20-poly1305",
];

/// Where and how to reach the Transit key.
#[derive(Debug, Clone)]
pub struct VaultTransitConfig {
    /// `https://openbao.internal:8200` (`http://` only on loopback).
    pub address: String,
    /// The Transit mount path, `transit` by default (may contain `/`).
    pub mount: String,
    /// The Transit key's name (created with `derived=true`).
    pub key: String,
    /// A file holding the token (surrounding whitespace ignored).
    pub token_file: PathBuf,
    /// `X-Vault-Namespace`, if the key lives in a namespace.
    pub namespace: Option<String>,
    /// PEM CA certificate(s) to trust in addition to the built-in roots.
    pub ca_cert_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// For the whole request, response body included.
    pub request_timeout: Duration,
}

impl VaultTransitConfig {
    /// Mount `transit`, no namespace, no extra CA, 2 s to connect, 5 s per request.
    pub fn new(address: impl Into<String>, key: impl Into<String>, token_file: PathBuf) -> Self {
        VaultTransitConfig {
            address: address.into(),
            mount: "transit".into(),
            key: key.into(),
            token_file,
            namespace: None,
            ca_cert_file: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// What [`VaultTransitCustody::check`] found out about the Transit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitKeyInfo {
    pub key_type: String,
    pub derived: bool,
    /// The version new envelopes are made with.
    pub latest_version: u32,
    /// Envelopes of older versions no longer open.
    pub min_decryption_version: u32,
}

/// Key custody in an OpenBao / Vault Transit key.
pub struct VaultTransitCustody {
    client: reqwest::Client,
    /// `{address}/v1/`.
    api: String,
    /// The address as configured, for messages.
    address: String,
    mount: String,
    key: String,
    namespace: Option<HeaderValue>,
    token: TokenFile,
    /// Set once [`VaultTransitCustody::check`] has accepted the key.
    verified: OnceCell<()>,
}

impl std::fmt::Debug for VaultTransitCustody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultTransitCustody")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("key", &self.key)
            .field("namespace", &self.namespace.as_ref().map(|_| "<set>"))
            .field("token", &"<redacted>")
            .finish()
    }
}

fn backend_error(message: impl std::fmt::Display) -> CustodyError {
    CustodyError::Backend(format!("{BACKEND}: {message}"))
}

impl VaultTransitCustody {
    /// Validates `config`, reads the token file and builds the HTTP client. Touches no network:
    /// the key is checked on first use (or call [`VaultTransitCustody::check`] at start-up).
    pub fn new(config: &VaultTransitConfig) -> Result<Self, CustodyError> {
        let address = config.address.trim().trim_end_matches('/').to_string();
        // The address is echoed in messages only once it is known to hold no credentials.
        let url = Url::parse(&address)
            .map_err(|e| backend_error(format_args!("address is not a URL: {e}")))?;
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(backend_error(
                "address must be scheme://host[:port][/path] without credentials, query or \
                 fragment",
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(backend_error(format_args!(
                    "address {address:?}: plain http is accepted only on loopback (the token and \
                     keys would cross the network in clear); use https://"
                )))
            }
            other => {
                return Err(backend_error(format_args!(
                    "address {address:?}: scheme {other:?} is not http or https"
                )))
            }
        }
        let mount = config.mount.trim_matches('/').to_string();
        if !valid_path(&mount, true) {
            return Err(backend_error(format_args!(
                "mount {:?} must be path segments of letters, digits, '.', '_' or '-'",
                config.mount
            )));
        }
        if !valid_path(&config.key, false) {
            return Err(backend_error(format_args!(
                "key name {:?} must be letters, digits, '.', '_' or '-'",
                config.key
            )));
        }
        let namespace = match config.namespace.as_deref().map(|n| n.trim_matches('/')) {
            None | Some("") => None,
            Some(ns) if valid_path(ns, true) => Some(HeaderValue::from_str(ns).map_err(|_| {
                backend_error(format_args!("namespace {ns:?} is not a header value"))
            })?),
            Some(ns) => {
                return Err(backend_error(format_args!(
                    "namespace {ns:?} must be path segments of letters, digits, '.', '_' or '-'"
                )))
            }
        };
        if config.connect_timeout.is_zero() || config.request_timeout.is_zero() {
            return Err(backend_error("timeouts must be greater than zero"));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "streaming-edge-control-plane/",
                env!("CARGO_PKG_VERSION")
            ));
        if let Some(path) = &config.ca_cert_file {
            let pem = std::fs::read(path)
                .map_err(|e| backend_error(format_args!("ca_cert_file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                backend_error(format_args!(
                    "ca_cert_file {}: not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(backend_error(format_args!(
                    "ca_cert_file {}: holds no certificate",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| backend_error(format_args!("building the HTTP client: {e}")))?;
        Ok(VaultTransitCustody {
            client,
            api: format!("{address}/v1/"),
            address,
            mount,
            key: config.key.clone(),
            namespace,
            token: TokenFile::open(&config.token_file)?,
            verified: OnceCell::new(),
        })
    }

    /// Reads the Transit key's description and refuses a key this backend cannot use safely:
    /// one that is not `derived` (OpenBao would ignore the binding context), cannot encrypt or
    /// decrypt, or is of another type.
    pub async fn check(&self) -> Result<TransitKeyInfo, CustodyError> {
        #[derive(Deserialize)]
        struct KeyData {
            #[serde(rename = "type")]
            key_type: String,
            #[serde(default)]
            derived: bool,
            #[serde(default)]
            supports_encryption: bool,
            #[serde(default)]
            supports_decryption: bool,
            latest_version: u32,
            min_decryption_version: u32,
        }
        let op = Op::ReadKey;
        let reply = self.send(op, Method::GET, None).await?;
        let data: KeyData = self.data(op, &reply)?;
        let name = self.key_label();
        let what = format!("{} at {}", op.name(), self.address);
        if !data.derived {
            return Err(backend_error(format_args!(
                "{what}: transit key {name} was not created with derived=true, so OpenBao would ignore \
                 the binding context; create a new key with `bao write{} -f \
                 {}/keys/<name> derived=true type=aes256-gcm96` and configure it",
                self.namespace_flag(),
                self.mount
            )));
        }
        if !data.supports_encryption
            || !data.supports_decryption
            || !USABLE_KEY_TYPES.contains(&data.key_type.as_str())
        {
            return Err(backend_error(format_args!(
                "{what}: transit key {name} is of type {:?}, which cannot seal content keys; use \
                 aes256-gcm96",
                data.key_type
            )));
        }
        Ok(TransitKeyInfo {
            key_type: data.key_type,
            derived: data.derived,
            latest_version: data.latest_version,
            min_decryption_version: data.min_decryption_version,
        })
    }

    /// Re-encrypts an envelope under the key's latest version (inside OpenBao; the plaintext
    /// never comes out). Returns the new envelope; store it in place of the old one.
    pub async fn rewrap(
        &self,
        video_id: &str,
        key_id: &str,
        wrapped: &str,
    ) -> Result<String, CustodyError> {
        #[derive(Deserialize)]
        struct Rewrapped {
            ciphertext: String,
        }
        let (ciphertext, version) = parse_envelope(wrapped)?;
        self.ensure_verified().await?;
        let body = serde_json::json!({
            "ciphertext": ciphertext,
            "context": context(video_id, key_id),
        });
        let op = Op::Rewrap { version };
        let reply = self.send(op, Method::POST, Some(body)).await?;
        let data: Rewrapped = self.data(op, &reply)?;
        self.envelope(op, &data.ciphertext)
    }

    async fn ensure_verified(&self) -> Result<(), CustodyError> {
        self.verified
            .get_or_try_init(|| async { self.check().await.map(|_| ()) })
            .await
            .map(|_| ())
    }

    /// ` -namespace=…` for the hints in messages, if a namespace is configured.
    fn namespace_flag(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(" -namespace={}", ns.to_str().unwrap_or("?")),
            None => String::new(),
        }
    }

    fn key_label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(
                "{:?} (mount {:?}, namespace {:?})",
                self.key,
                self.mount,
                ns.to_str().unwrap_or("?")
            ),
            None => format!("{:?} (mount {:?})", self.key, self.mount),
        }
    }

    /// One request; the reply whatever its status. Transport failures and oversized bodies are
    /// errors here.
    async fn send(
        &self,
        op: Op,
        method: Method,
        body: Option<serde_json::Value>,
    ) -> Result<Reply, CustodyError> {
        let path = op.path(&self.mount, &self.key);
        let token = self.token.current().await?;
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.api))
            .header("X-Vault-Token", token)
            .header("X-Vault-Request", "true");
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns.clone());
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let what = format!("{} ({method} {path} at {})", op.name(), self.address);
        let mut response = request
            .send()
            .await
            .map_err(|e| backend_error(format_args!("{what}: {}", describe(&e))))?;
        let status = response.status();
        if let Some(len) = response.content_length() {
            if len > MAX_RESPONSE_BYTES as u64 {
                return Err(backend_error(format_args!(
                    "{what}: HTTP {status} with a {len}-byte body, over the {MAX_RESPONSE_BYTES}-byte limit"
                )));
            }
        }
        let capacity = response.content_length().unwrap_or(1024) as usize;
        let mut reply = Reply {
            status,
            body: Vec::with_capacity(capacity),
        };
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if reply.body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(backend_error(format_args!(
                            "{what}: HTTP {status} with a body over the {MAX_RESPONSE_BYTES}-byte limit"
                        )));
                    }
                    reply.body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(backend_error(format_args!(
                        "{what}: reading the response: {}",
                        describe(&e)
                    )))
                }
            }
        }
        tracing::debug!(
            backend = BACKEND,
            op = op.name(),
            status = status.as_u16(),
            "transit call"
        );
        Ok(reply)
    }

    /// The `data` of a successful reply, or the error the reply stands for.
    fn data<T: DeserializeOwned>(&self, op: Op, reply: &Reply) -> Result<T, CustodyError> {
        #[derive(Deserialize)]
        struct Success<T> {
            data: T,
        }
        if reply.status.is_success() {
            return serde_json::from_slice::<Success<T>>(&reply.body)
                .map(|s| s.data)
                .map_err(|e| {
                    // Not serde_json's message: it can quote the input.
                    backend_error(format_args!(
                        "{}: HTTP {} with an unexpected body ({:?} error at line {}, column {})",
                        op.name(),
                        reply.status,
                        e.classify(),
                        e.line(),
                        e.column()
                    ))
                });
        }
        Err(self.failure(op, reply))
    }

    fn failure(&self, op: Op, reply: &Reply) -> CustodyError {
        #[derive(Deserialize)]
        struct Failure {
            #[serde(default)]
            errors: Vec<String>,
        }
        let status = reply.status;
        let errors = serde_json::from_slice::<Failure>(&reply.body)
            .map(|f| f.errors)
            .unwrap_or_default();
        let text = server_message(&errors);
        let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
        let name = format!("{} at {}", op.name(), self.address);
        let key = self.key_label();
        if op.opens() && has("message authentication failed") {
            return CustodyError::Unwrap(KeyWrapError::Unauthentic);
        }
        if let Op::Decrypt { version } | Op::Rewrap { version } = op {
            if has("disallowed by policy (too old)") {
                return backend_error(format_args!(
                    "{name}: the envelope was sealed with version {version} of transit key \
                     {key}, which is retired (below its min_decryption_version); rewrap stored \
                     envelopes before raising min_decryption_version, or lower it to open this \
                     one ({text})"
                ));
            }
            if has("version is too new") {
                return backend_error(format_args!(
                    "{name}: the envelope names version {version} of transit key {key}, which \
                     does not exist there; is this the OpenBao cluster and key that sealed it? \
                     ({text})"
                ));
            }
            if has("invalid ciphertext") {
                return CustodyError::Unwrap(KeyWrapError::Malformed);
            }
        }
        if status == StatusCode::FORBIDDEN {
            return backend_error(format_args!(
                "{name}: permission denied on {} for transit key {key}: the token has expired, \
                 was revoked, or its policy lacks this path ({text})",
                op.path(&self.mount, &self.key)
            ));
        }
        if has("no handler for route") {
            return backend_error(format_args!(
                "{name}: no transit engine is mounted at {:?}; enable it with `bao secrets enable{} \
                 -path={} transit` ({text})",
                self.mount,
                self.namespace_flag(),
                self.mount
            ));
        }
        if has("encryption key not found") || (op == Op::ReadKey && status == StatusCode::NOT_FOUND)
        {
            return backend_error(format_args!(
                "{name}: transit key {key} does not exist; create it with `bao write{} -f \
                 {}/keys/{} derived=true type=aes256-gcm96`",
                self.namespace_flag(),
                self.mount,
                self.key
            ));
        }
        if has("missing 'context'") || has("key derivation") {
            return backend_error(format_args!(
                "{name}: transit key {key} does not accept the binding context ({text})"
            ));
        }
        if status.is_redirection() {
            return backend_error(format_args!(
                "{name}: HTTP {status} (a redirect, not followed: point the address at the \
                 active node or a load balancer)"
            ));
        }
        backend_error(format_args!("{name}: HTTP {status}: {text}"))
    }

    /// `bao:v1:` + a Transit ciphertext OpenBao returned, after checking its shape.
    fn envelope(&self, op: Op, ciphertext: &str) -> Result<String, CustodyError> {
        if parse_transit_ciphertext(ciphertext).is_none()
            || ciphertext.len() + ENVELOPE_PREFIX.len() > MAX_ENVELOPE_LEN
        {
            return Err(backend_error(format_args!(
                "{}: OpenBao returned a ciphertext that is not `vault:v<N>:<base64>`",
                op.name()
            )));
        }
        Ok(format!("{ENVELOPE_PREFIX}{ciphertext}"))
    }
}

#[async_trait]
impl KeyCustody for VaultTransitCustody {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn check(&self) -> Result<(), CustodyError> {
        VaultTransitCustody::check(self).await.map(|_| ())
    }

    async fn generate(&self, video_id: &str, key_id: &str) -> Result<GeneratedKey, CustodyError> {
        #[derive(Deserialize)]
        struct DataKey {
            plaintext: SecretString,
            ciphertext: String,
        }
        self.ensure_verified().await?;
        let body = serde_json::json!({
            "bits": CONTENT_KEY_LEN * 8,
            "context": context(video_id, key_id),
        });
        let op = Op::DataKey;
        let reply = self.send(op, Method::POST, Some(body)).await?;
        let data: DataKey = self.data(op, &reply)?;
        let key = decode_key(&data.plaintext).ok_or_else(|| {
            backend_error(format_args!(
                "{}: OpenBao returned a data key that is not {CONTENT_KEY_LEN} bytes of base64",
                op.name()
            ))
        })?;
        let wrapped = self.envelope(op, &data.ciphertext)?;
        Ok(GeneratedKey { key, wrapped })
    }

    async fn seal(
        &self,
        video_id: &str,
        key_id: &str,
        key: &ContentKey,
    ) -> Result<String, CustodyError> {
        #[derive(Deserialize)]
        struct Encrypted {
            ciphertext: String,
        }
        self.ensure_verified().await?;
        let plaintext = SecretString(STANDARD.encode(key.bytes()));
        let body = serde_json::json!({
            "plaintext": plaintext.0.as_str(),
            "context": context(video_id, key_id),
        });
        drop(plaintext);
        let op = Op::Encrypt;
        let reply = self.send(op, Method::POST, Some(body)).await?;
        let data: Encrypted = self.data(op, &reply)?;
        self.envelope(op, &data.ciphertext)
    }

    async fn unwrap(
        &self,
        video_id: &str,
        key_id: &str,
        wrapped: &str,
    ) -> Result<ContentKey, CustodyError> {
        #[derive(Deserialize)]
        struct Decrypted {
            plaintext: SecretString,
        }
        let (ciphertext, version) = parse_envelope(wrapped)?;
        self.ensure_verified().await?;
        let body = serde_json::json!({
            "ciphertext": ciphertext,
            "context": context(video_id, key_id),
        });
        let op = Op::Decrypt { version };
        let reply = self.send(op, Method::POST, Some(body)).await?;
        let data: Decrypted = self.data(op, &reply)?;
        // It authenticated under this binding but is not a content key: not ours to use.
        decode_key(&data.plaintext).ok_or(CustodyError::Unwrap(KeyWrapError::Malformed))
    }
}

/// The Transit key version an envelope of this backend was sealed with (`bao:v1:vault:v3:…`
/// → 3), or `None` if it is not such an envelope.
pub fn envelope_key_version(wrapped: &str) -> Option<u32> {
    parse_envelope(wrapped).ok().map(|(_, version)| version)
}

/// The Transit ciphertext inside an envelope and its key version.
fn parse_envelope(wrapped: &str) -> Result<(&str, u32), KeyWrapError> {
    if wrapped.len() > MAX_ENVELOPE_LEN {
        return Err(KeyWrapError::Malformed);
    }
    let ciphertext = wrapped
        .strip_prefix(ENVELOPE_PREFIX)
        .ok_or(KeyWrapError::Malformed)?;
    let version = parse_transit_ciphertext(ciphertext).ok_or(KeyWrapError::Malformed)?;
    Ok((ciphertext, version))
}

/// `vault:v<N>:<standard base64 of at least nonce + tag>` → N.
fn parse_transit_ciphertext(ciphertext: &str) -> Option<u32> {
    let (version, blob) = ciphertext.strip_prefix(TRANSIT_PREFIX)?.split_once(':')?;
    if version.is_empty()
        || version.len() > 9
        || version.starts_with('0')
        || !version.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let decoded = STANDARD.decode(blob).ok()?;
    // An AEAD nonce (12) and tag (16) at the least.
    if decoded.len() < 28 {
        return None;
    }
    version.parse().ok()
}

/// The derivation context for a title and key id (base64, as Transit wants it).
fn context(video_id: &str, key_id: &str) -> String {
    STANDARD.encode(format!(
        "{CONTEXT_LABEL}|{}:{video_id}|{}:{key_id}",
        video_id.len(),
        key_id.len()
    ))
}

/// Exactly 16 bytes of standard base64, decoded without a heap copy.
fn decode_key(plaintext: &SecretString) -> Option<ContentKey> {
    let mut buf = [0u8; 32];
    let decoded = STANDARD.decode_slice(plaintext.0.as_bytes(), &mut buf);
    let key = match decoded {
        Ok(CONTENT_KEY_LEN) => {
            let mut bytes = [0u8; CONTENT_KEY_LEN];
            bytes.copy_from_slice(&buf[..CONTENT_KEY_LEN]);
            let key = ContentKey::new(bytes);
            bytes.fill(0);
            std::hint::black_box(&mut bytes);
            Some(key)
        }
        _ => None,
    };
    buf.fill(0);
    std::hint::black_box(&mut buf);
    key
}

/// OpenBao's error strings, joined, without control characters, cut short.
fn server_message(errors: &[String]) -> String {
    if errors.is_empty() {
        return "no error message".into();
    }
    // Control characters become spaces; runs of whitespace (OpenBao's multi-error text is
    // multi-line) become one.
    let joined = errors
        .join("; ")
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if joined.chars().count() > MAX_SERVER_MESSAGE {
        let cut: String = joined.chars().take(MAX_SERVER_MESSAGE).collect();
        format!("{cut}…")
    } else {
        joined
    }
}

/// A reqwest error with its causes, without the URL (the caller names the request).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Segments of `[A-Za-z0-9._-]`, not `.` or `..`; several only if `nested`.
fn valid_path(path: &str, nested: bool) -> bool {
    let segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if nested {
        !path.is_empty() && path.split('/').all(segment)
    } else {
        segment(path)
    }
}

/// One Transit call, for paths and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    DataKey,
    Encrypt,
    Decrypt { version: u32 },
    Rewrap { version: u32 },
    ReadKey,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::DataKey => "generate (transit datakey)",
            Op::Encrypt => "seal (transit encrypt)",
            Op::Decrypt { .. } => "unwrap (transit decrypt)",
            Op::Rewrap { .. } => "rewrap (transit rewrap)",
            Op::ReadKey => "check (transit key read)",
        }
    }

    fn path(self, mount: &str, key: &str) -> String {
        match self {
            Op::DataKey => format!("{mount}/datakey/plaintext/{key}"),
            Op::Encrypt => format!("{mount}/encrypt/{key}"),
            Op::Decrypt { .. } => format!("{mount}/decrypt/{key}"),
            Op::Rewrap { .. } => format!("{mount}/rewrap/{key}"),
            Op::ReadKey => format!("{mount}/keys/{key}"),
        }
    }

    /// Whether the call authenticates an envelope against its binding.
    fn opens(self) -> bool {
        matches!(self, Op::Decrypt { .. } | Op::Rewrap { .. })
    }
}

/// A response; its body (which may hold a plaintext key) is zeroed on drop.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.body.fill(0);
        std::hint::black_box(&mut self.body);
    }
}

/// A string that may hold key material (base64): zeroed on drop, never printed.
#[derive(Deserialize)]
#[serde(transparent)]
struct SecretString(String);

impl Drop for SecretString {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&mut bytes);
    }
}

/// The token file, read again when it changes.
struct TokenFile {
    path: PathBuf,
    cached: Mutex<CachedToken>,
}

struct CachedToken {
    value: HeaderValue,
    stamp: Option<(SystemTime, u64)>,
}

impl TokenFile {
    fn open(path: &Path) -> Result<Self, CustodyError> {
        let stamp = std::fs::metadata(path).ok().and_then(|m| stamp(&m));
        let bytes = std::fs::read(path).map_err(|e| token_error(path, e.to_string()))?;
        let value = parse_token(path, bytes)?;
        Ok(TokenFile {
            path: path.to_path_buf(),
            cached: Mutex::new(CachedToken { value, stamp }),
        })
    }

    /// The token, re-read if the file's modification time or size changed. A file that has
    /// become unreadable or invalid keeps the last good token (with a warning): an agent may be
    /// replacing it.
    async fn current(&self) -> Result<HeaderValue, CustodyError> {
        let now = tokio::fs::metadata(&self.path)
            .await
            .ok()
            .and_then(|m| stamp(&m));
        {
            let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
            if now.is_none() || now == cached.stamp {
                return Ok(cached.value.clone());
            }
        }
        let fresh = match tokio::fs::read(&self.path).await {
            Ok(bytes) => parse_token(&self.path, bytes),
            Err(e) => Err(token_error(&self.path, e.to_string())),
        };
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        match fresh {
            Ok(value) => {
                cached.value = value;
                cached.stamp = now;
            }
            Err(e) => tracing::warn!(backend = BACKEND, error = %e, "keeping the previous token"),
        }
        Ok(cached.value.clone())
    }
}

fn stamp(metadata: &std::fs::Metadata) -> Option<(SystemTime, u64)> {
    Some((metadata.modified().ok()?, metadata.len()))
}

fn token_error(path: &Path, problem: String) -> CustodyError {
    backend_error(format_args!("token file {}: {problem}", path.display()))
}

fn parse_token(path: &Path, mut bytes: Vec<u8>) -> Result<HeaderValue, CustodyError> {
    let result = (|| {
        if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
            return Err(format!(
                "is larger than {MAX_TOKEN_FILE_BYTES} bytes; it must hold only the token"
            ));
        }
        let token = std::str::from_utf8(&bytes)
            .map_err(|_| "is not UTF-8 text".to_string())?
            .trim();
        if token.is_empty() {
            return Err("is empty".into());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must hold one token (printable ASCII, no spaces)".into());
        }
        let mut value =
            HeaderValue::from_str(token).map_err(|_| "is not a header value".to_string())?;
        value.set_sensitive(true);
        Ok(value)
    })();
    bytes.fill(0);
    result.map_err(|problem| token_error(path, problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_file(dir: &Path, token: &str) -> PathBuf {
        let path = dir.join("bao-token");
        std::fs::write(&path, token).unwrap();
        path
    }

    fn config(dir: &Path, address: &str) -> VaultTransitConfig {
        VaultTransitConfig::new(address, "content-keys", token_file(dir, "s.secret-token\n"))
    }

    fn message(err: CustodyError) -> String {
        match err {
            CustodyError::Backend(m) => m,
            other => panic!("expected a backend error, got {other:?}"),
        }
    }

    #[test]
    fn envelopes_parse_and_name_their_version() {
        let ct = format!("vault:v12:{}", STANDARD.encode([7u8; 44]));
        let wrapped = format!("{ENVELOPE_PREFIX}{ct}");
        assert_eq!(parse_envelope(&wrapped), Ok((ct.as_str(), 12)));
        assert_eq!(envelope_key_version(&wrapped), Some(12));
        for bad in [
            String::new(),
            "v1.AAAA".into(),
            ct.clone(),
            "bao:v1:".into(),
            "bao:v1:vault:v:AAAA".into(),
            format!("bao:v1:vault:v0:{}", STANDARD.encode([7u8; 44])),
            format!("bao:v1:vault:v01:{}", STANDARD.encode([7u8; 44])),
            format!("bao:v1:vault:v1x:{}", STANDARD.encode([7u8; 44])),
            format!("bao:v1:vault:v99999999999:{}", STANDARD.encode([7u8; 44])),
            format!("bao:v1:vault:v1:{}", STANDARD.encode([7u8; 20])),
            "bao:v1:vault:v1:!!!!".into(),
            format!("bao:v2:{ct}"),
            format!("{wrapped}{}", "A".repeat(MAX_ENVELOPE_LEN)),
        ] {
            assert_eq!(
                parse_envelope(&bad),
                Err(KeyWrapError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn contexts_are_injective_and_labelled() {
        assert_ne!(context("a/b", "c"), context("a", "b/c"));
        assert_ne!(context("ab", "c"), context("a", "bc"));
        let decoded = String::from_utf8(STANDARD.decode(context("vid", "kid")).unwrap()).unwrap();
        assert_eq!(decoded, "streaming-edge/custody/v1|at-rest|3:vid|3:kid");
    }

    #[test]
    fn configuration_is_checked_without_the_network() {
        let dir = tempfile::tempdir().unwrap();
        for ok in [
            "http://127.0.0.1:8200",
            "http://localhost:8200/",
            "http://[::1]:8200",
            "https://bao.internal:8200",
            "https://proxy.internal/openbao",
        ] {
            VaultTransitCustody::new(&config(dir.path(), ok)).unwrap();
        }
        for (address, expect) in [
            (
                "http://bao.internal:8200",
                "plain http is accepted only on loopback",
            ),
            ("ftp://127.0.0.1", "scheme \"ftp\""),
            ("not a url", "is not a URL"),
            ("http://user:pw@127.0.0.1:8200", "without credentials"),
            ("https://user:pw@bao.internal", "without credentials"),
        ] {
            let err = message(VaultTransitCustody::new(&config(dir.path(), address)).unwrap_err());
            assert!(err.starts_with("openbao: "), "{err}");
            assert!(err.contains(expect), "{address}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
        let mut c = config(dir.path(), "http://127.0.0.1:8200");
        c.mount = "../sys".into();
        assert!(message(VaultTransitCustody::new(&c).unwrap_err()).contains("mount"));
        let mut c = config(dir.path(), "http://127.0.0.1:8200");
        c.key = "a/b".into();
        assert!(message(VaultTransitCustody::new(&c).unwrap_err()).contains("key name"));
        let mut c = config(dir.path(), "http://127.0.0.1:8200");
        c.mount = "/secure/transit/".into();
        c.namespace = Some("team-a/media".into());
        let custody = VaultTransitCustody::new(&c).unwrap();
        assert_eq!(custody.mount, "secure/transit");
        assert_eq!(
            Op::Decrypt { version: 1 }.path(&custody.mount, &custody.key),
            "secure/transit/decrypt/content-keys"
        );
        let debug = format!("{custody:?}");
        assert!(!debug.contains("secret-token"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn token_files_are_checked_and_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let address = "http://127.0.0.1:8200";
        let mut c = config(dir.path(), address);
        c.token_file = dir.path().join("missing");
        assert!(message(VaultTransitCustody::new(&c).unwrap_err()).contains("token file"));
        for (content, expect) in [
            ("   \n", "is empty"),
            ("s.one s.two", "one token"),
            ("s.secret\u{7f}x", "one token"),
        ] {
            c.token_file = token_file(dir.path(), content);
            let err = message(VaultTransitCustody::new(&c).unwrap_err());
            assert!(err.contains(expect), "{err}");
            assert!(!err.contains("s.secret") && !err.contains("s.one"), "{err}");
        }
        c.token_file = token_file(dir.path(), &"a".repeat(MAX_TOKEN_FILE_BYTES as usize + 1));
        assert!(message(VaultTransitCustody::new(&c).unwrap_err()).contains("larger"));
    }

    #[tokio::test]
    async fn token_file_changes_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = token_file(dir.path(), "s.first\n");
        let file = TokenFile::open(&path).unwrap();
        assert_eq!(file.current().await.unwrap(), "s.first");
        assert!(file.current().await.unwrap().is_sensitive());
        std::fs::write(&path, "s.second-token").unwrap();
        assert_eq!(file.current().await.unwrap(), "s.second-token");
        // An agent replacing the file: a moment without it keeps the last good token.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.current().await.unwrap(), "s.second-token");
        std::fs::write(&path, "").unwrap();
        assert_eq!(file.current().await.unwrap(), "s.second-token");
    }

    #[test]
    fn keys_decode_only_at_sixteen_bytes() {
        let key = decode_key(&SecretString(STANDARD.encode([5u8; 16]))).unwrap();
        assert_eq!(key.bytes(), &[5u8; 16]);
        for bad in [
            STANDARD.encode([5u8; 15]),
            STANDARD.encode([5u8; 17]),
            STANDARD.encode([5u8; 32]),
            "!!".into(),
            String::new(),
        ] {
            assert!(decode_key(&SecretString(bad.clone())).is_none(), "{bad}");
        }
    }

    #[test]
    fn server_messages_are_cleaned_and_cut() {
        assert_eq!(server_message(&[]), "no error message");
        assert_eq!(
            server_message(&["a\nb".into(), "c".into()]),
            "a b; c".to_string()
        );
        let long = server_message(&["x".repeat(1000)]);
        assert_eq!(long.chars().count(), MAX_SERVER_MESSAGE + 1);
    }
}
