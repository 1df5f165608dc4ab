//! The PKCS#11 HSM custody backend: content keys sealed under an HSM-resident AES-256 key.
//!
//! The wrapping key lives in the token (a hardware HSM, a cloud HSM's PKCS#11 module, or SoftHSM2
//! in tests) as a `CKO_SECRET_KEY` / `CKK_AES`, 32 bytes, `CKA_TOKEN`, `CKA_PRIVATE`,
//! `CKA_SENSITIVE`, **not** `CKA_EXTRACTABLE`, usable only for `CKA_ENCRYPT` / `CKA_DECRYPT`. It
//! is found by its `CKA_LABEL`; [`init_wrapping_key`] creates it (tests, and later
//! `control-plane init-hsm-key`). The key never leaves the HSM; the control plane only
//! sees the content keys it sealed or opened.
//!
//! # Operations
//!
//! - `generate`: 16 random bytes from the HSM's RNG (`C_GenerateRandom`), then `seal`.
//! - `seal`: `C_Encrypt` with `CKM_AES_GCM` (12-byte IV from `C_GenerateRandom`, 128-bit tag,
//!   AAD = the binding below) of the 16-byte content key under the wrapping key.
//! - `unwrap` (open): `C_Decrypt` with the same mechanism; a wrong binding, a wrong key or a
//!   tampered envelope fails the tag check inside the HSM and is reported as
//!   [`CustodyError::Unwrap`] ([`KeyWrapError::Unauthentic`]), like the local backend.
//!   SoftHSM2 2.6 returns `CKR_GENERAL_ERROR` for a failed tag check (not
//!   `CKR_ENCRYPTED_DATA_INVALID`); since a broken HSM returns that too, a `CKR_GENERAL_ERROR`
//!   from `C_Decrypt` triggers a known-answer seal/open of a canary under the same key: if that
//!   works the envelope is reported unauthentic, otherwise the HSM error is reported (`Backend`,
//!   which the API maps to 503).
//!
//! # Why `CKM_AES_GCM` and not `CKM_AES_KEY_WRAP_PAD`
//!
//! SoftHSM2 2.6 (Debian `softhsm2`, OpenSSL backend) implements both; the check is in
//! [`Pkcs11Custody::connect`], which refuses a token whose mechanism list lacks `CKM_AES_GCM`.
//! GCM is chosen because it takes associated data: the envelope is bound to
//! `(videoId, keyId)` inside the HSM, so an envelope copied to another title or key id does not
//! open — the same guarantee as [`playback::keywrap`]. RFC 5649 key wrap has no AAD; the binding
//! would have to be bolted on outside the HSM. The content key is handled as data (`C_Encrypt`)
//! rather than as a key object (`C_WrapKey`) because the control plane needs the plaintext anyway
//! (packaging, transport wrap to edges), and it avoids creating a session key object per call.
//!
//! The binding (AAD) is length-prefixed, so no choice of ids collides (`("a/b","c")` vs
//! `("a","b/c")`): `streaming-edge/p11/v1|at-rest|<key label>|<len>:<videoId>|<len>:<keyId>`.
//!
//! IVs are 96-bit random values drawn from the HSM. Under one wrapping key that keeps the
//! collision risk negligible up to ~2^32 seals (NIST SP 800-38D); rotate the wrapping key (new
//! label) well before that. Some HSMs in FIPS mode insist on generating the GCM IV themselves
//! (PKCS#11 3.0 `CKM_AES_GCM` with an IV generator); SoftHSM takes the caller's IV. Supporting
//! such tokens means reading the IV back from the mechanism parameters — not done yet.
//!
//! # Envelope
//!
//! `p11:v1:<key label>:` + `base64url(iv[12] || ciphertext[16] || tag[16])`, no padding. The label
//! is restricted to `[A-Za-z0-9._-]{1,64}` so the envelope parses unambiguously. An envelope
//! naming another label is refused with a `Backend` error (rotation across wrapping keys is future
//! work: a list of retired labels that may still open).
//!
//! # Sessions and threads
//!
//! A PKCS#11 module is initialised once per process (`C_Initialize`); the [`cryptoki::context::Pkcs11`]
//! context is therefore kept in a process-wide map keyed by module path and never finalised, so
//! several custodies (or tests) in one process share it. Sessions are `Send` but not `Sync`: they
//! live in a small pool behind a mutex, at most `max_sessions` are in use at once (a semaphore),
//! and every PKCS#11 call runs on `spawn_blocking`. Login state is per token and application, so
//! one `C_Login` covers every session; a session that fails with a session/token error is dropped
//! instead of returned to the pool, and the next call opens (and if needed logs in) a fresh one.
//!
//! Errors name the backend (`pkcs11: ...`) and the PKCS#11 return value; never the PIN or any key
//! material.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use playback::keywrap::KeyWrapError;
use tokio::sync::Semaphore;

use super::{ContentKey, CustodyError, GeneratedKey, KeyCustody, CONTENT_KEY_LEN};
use crate::config::Pkcs11KeysConfig;

/// The backend's name, for logs and errors.
pub const BACKEND: &str = "pkcs11";
/// Prefix of every envelope this backend writes.
pub const ENVELOPE_PREFIX: &str = "p11:v1:";
/// GCM IV length.
pub const IV_LEN: usize = 12;
/// GCM tag length.
pub const TAG_LEN: usize = 16;
/// Longest key label accepted.
pub const MAX_LABEL_LEN: usize = 64;
/// Longest envelope accepted (prefix + label + ':' + base64 of 44 bytes, with room to spare).
pub const MAX_ENVELOPE_LEN: usize = 256;
/// Length of the HSM wrapping key (AES-256).
pub const WRAPPING_KEY_LEN: u64 = 32;

const SEALED_LEN: usize = IV_LEN + CONTENT_KEY_LEN + TAG_LEN;

/// Where the HSM is and which key to use (the proposed `[custody.pkcs11]` config section).
#[derive(Debug, Clone)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`, a vendor's `.so`).
    pub module: PathBuf,
    /// Label of the token (`CKA_LABEL` of the token info, as set by `--init-token --label`).
    pub token_label: String,
    /// File holding the user (CKU_USER) PIN; surrounding whitespace is ignored.
    pub pin_file: PathBuf,
    /// `CKA_LABEL` of the AES-256 wrapping key.
    pub key_label: String,
    /// At most this many sessions are open / in use at once (default 4).
    pub max_sessions: usize,
}

impl Pkcs11Config {
    /// A config with the default pool size.
    pub fn new(
        module: impl Into<PathBuf>,
        token_label: impl Into<String>,
        pin_file: impl Into<PathBuf>,
        key_label: impl Into<String>,
    ) -> Self {
        Pkcs11Config {
            module: module.into(),
            token_label: token_label.into(),
            pin_file: pin_file.into(),
            key_label: key_label.into(),
            max_sessions: 4,
        }
    }

    /// The `[keys.pkcs11]` section as a backend configuration.
    pub fn from_config(config: &Pkcs11KeysConfig) -> Self {
        let mut pc = Pkcs11Config::new(
            config.module.clone(),
            config.token_label.clone(),
            config.pin_file.clone(),
            config.key_label.clone(),
        );
        pc.max_sessions = config.max_sessions;
        pc
    }
}

/// What [`init_wrapping_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrappingKeyInit {
    Created,
    /// A usable key with that label was already there; nothing was changed.
    AlreadyPresent,
}

/// Key custody under an HSM-resident AES-256 key, over PKCS#11.
pub struct Pkcs11Custody {
    inner: Arc<Inner>,
    permits: Arc<Semaphore>,
}

struct Inner {
    ctx: Pkcs11,
    slot: Slot,
    token_label: String,
    key_label: String,
    key: ObjectHandle,
    pin: AuthPin,
    pool: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for Pkcs11Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Custody")
            .field("token_label", &self.inner.token_label)
            .field("key_label", &self.inner.key_label)
            .field("pin", &"<redacted>")
            .finish()
    }
}

fn backend_err(msg: impl std::fmt::Display) -> CustodyError {
    CustodyError::Backend(format!("{BACKEND}: {msg}"))
}

/// A PKCS#11 error as text: the return value's name (`CKR_PIN_INCORRECT`-like `PinIncorrect`)
/// and the function, never any argument.
fn describe(e: &P11Error) -> String {
    match e {
        P11Error::Pkcs11(rv, function) => format!("{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// Whether the session itself is no longer usable (drop it rather than pool it).
fn session_broken(e: &P11Error) -> bool {
    matches!(
        e,
        P11Error::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized,
            _
        )
    )
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The GCM associated data for a binding; length-prefixed so distinct bindings never collide.
fn associated_data(key_label: &str, video_id: &str, key_id: &str) -> String {
    format!(
        "streaming-edge/p11/v1|at-rest|{key_label}|{}:{video_id}|{}:{key_id}",
        video_id.len(),
        key_id.len()
    )
}

/// The process-wide context for a module, loaded and initialised on first use.
fn context(module: &Path) -> Result<Pkcs11, CustodyError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    if !module.is_file() {
        return Err(backend_err(format_args!(
            "module {} does not exist or is not a file (custody.pkcs11.module)",
            module.display()
        )));
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        backend_err(format_args!(
            "cannot load module {}: {}",
            module.display(),
            describe(&e)
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Already initialised by another context in this process (never finalised): usable.
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(backend_err(format_args!(
                "C_Initialize of {} failed: {}",
                module.display(),
                describe(&e)
            )))
        }
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, token_label: &str) -> Result<Slot, CustodyError> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| backend_err(format_args!("listing slots: {}", describe(&e))))?;
    let mut found = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| backend_err(format_args!("reading token info: {}", describe(&e))))?;
        if info.label().trim_end() == token_label {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(backend_err(format_args!(
            "no initialised token labelled {token_label:?} (custody.pkcs11.token_label)"
        ))),
        _ => Err(backend_err(format_args!(
            "{} tokens are labelled {token_label:?}; token labels must be unique",
            found.len()
        ))),
    }
}

fn read_pin(path: &Path) -> Result<AuthPin, CustodyError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        backend_err(format_args!(
            "cannot read the PIN file {} (custody.pkcs11.pin_file): {}",
            path.display(),
            e.kind()
        ))
    })?;
    let pin = text.trim();
    if pin.is_empty() {
        return Err(backend_err(format_args!(
            "the PIN file {} is empty",
            path.display()
        )));
    }
    Ok(AuthPin::from(pin.to_string()))
}

fn login(session: &Session, pin: &AuthPin, token_label: &str) -> Result<(), CustodyError> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => Err(backend_err(format_args!(
            "login to token {token_label:?} refused: the user PIN is incorrect (CKR_PIN_INCORRECT)"
        ))),
        Err(P11Error::Pkcs11(RvError::PinLocked, _)) => Err(backend_err(format_args!(
            "login to token {token_label:?} refused: the user PIN is locked (CKR_PIN_LOCKED)"
        ))),
        Err(e) => Err(backend_err(format_args!(
            "login to token {token_label:?} failed: {}",
            describe(&e)
        ))),
    }
}

fn find_keys(session: &Session, key_label: &str) -> Result<Vec<ObjectHandle>, CustodyError> {
    session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(key_label.as_bytes().to_vec()),
        ])
        .map_err(|e| backend_err(format_args!("finding key {key_label:?}: {}", describe(&e))))
}

/// Checks that `key` is an AES-256 key fit to be the wrapping key.
fn check_wrapping_key(
    session: &Session,
    key: ObjectHandle,
    key_label: &str,
) -> Result<(), CustodyError> {
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
            ],
        )
        .map_err(|e| {
            backend_err(format_args!(
                "reading the attributes of key {key_label:?}: {}",
                describe(&e)
            ))
        })?;
    let mut problems = Vec::new();
    let (mut aes, mut len, mut sensitive, mut extractable, mut enc, mut dec) =
        (false, 0u64, false, true, false, false);
    for attr in &attrs {
        match attr {
            Attribute::KeyType(t) => aes = *t == KeyType::AES,
            Attribute::ValueLen(l) => len = (*l).into(),
            Attribute::Sensitive(b) => sensitive = *b,
            Attribute::Extractable(b) => extractable = *b,
            Attribute::Encrypt(b) => enc = *b,
            Attribute::Decrypt(b) => dec = *b,
            _ => {}
        }
    }
    if !aes {
        problems.push("not an AES key".to_string());
    }
    if len != WRAPPING_KEY_LEN {
        problems.push(format!("{len} bytes long, not {WRAPPING_KEY_LEN}"));
    }
    if !sensitive {
        problems.push("not CKA_SENSITIVE".into());
    }
    if extractable {
        problems.push("CKA_EXTRACTABLE".into());
    }
    if !enc || !dec {
        problems.push("not usable for CKA_ENCRYPT and CKA_DECRYPT".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(backend_err(format_args!(
            "key {key_label:?} cannot be the wrapping key: {}",
            problems.join(", ")
        )))
    }
}

/// Creates the AES-256 wrapping key `config.key_label` in the token (generated inside the HSM:
/// token object, private, sensitive, never extractable, encrypt/decrypt only, not modifiable).
/// Does nothing when a usable key with that label exists; refuses when an unusable one does.
/// Blocking: call it from `spawn_blocking` in async code.
pub fn init_wrapping_key(config: &Pkcs11Config) -> Result<WrappingKeyInit, CustodyError> {
    if !valid_label(&config.key_label) {
        return Err(backend_err(format_args!(
            "key label {:?} must be 1..={MAX_LABEL_LEN} characters of [A-Za-z0-9._-]",
            config.key_label
        )));
    }
    let ctx = context(&config.module)?;
    let slot = find_slot(&ctx, &config.token_label)?;
    let pin = read_pin(&config.pin_file)?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(|e| backend_err(format_args!("opening a session: {}", describe(&e))))?;
    login(&session, &pin, &config.token_label)?;
    let existing = find_keys(&session, &config.key_label)?;
    match existing.as_slice() {
        [key] => {
            check_wrapping_key(&session, *key, &config.key_label)?;
            return Ok(WrappingKeyInit::AlreadyPresent);
        }
        [] => {}
        _ => {
            return Err(backend_err(format_args!(
                "{} keys are labelled {:?}; labels must be unique",
                existing.len(),
                config.key_label
            )))
        }
    }
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(WRAPPING_KEY_LEN.into()),
        Attribute::Label(config.key_label.as_bytes().to_vec()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
    ];
    let key = session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(|e| {
            backend_err(format_args!(
                "generating key {:?}: {}",
                config.key_label,
                describe(&e)
            ))
        })?;
    check_wrapping_key(&session, key, &config.key_label)?;
    Ok(WrappingKeyInit::Created)
}

impl Pkcs11Custody {
    /// Loads the module, finds the token and the wrapping key, logs in and checks that the token
    /// can do `CKM_AES_GCM` with it. Blocking work runs on `spawn_blocking`.
    pub async fn connect(config: Pkcs11Config) -> Result<Self, CustodyError> {
        tokio::task::spawn_blocking(move || Self::connect_blocking(&config))
            .await
            .map_err(|e| backend_err(format_args!("connect task failed: {e}")))?
    }

    /// [`Pkcs11Custody::connect`] for callers outside a runtime.
    pub fn connect_blocking(config: &Pkcs11Config) -> Result<Self, CustodyError> {
        if !valid_label(&config.key_label) {
            return Err(backend_err(format_args!(
                "key label {:?} must be 1..={MAX_LABEL_LEN} characters of [A-Za-z0-9._-]",
                config.key_label
            )));
        }
        let max_sessions = config.max_sessions.max(1);
        let ctx = context(&config.module)?;
        let slot = find_slot(&ctx, &config.token_label)?;
        let mechanisms = ctx
            .get_mechanism_list(slot)
            .map_err(|e| backend_err(format_args!("listing mechanisms: {}", describe(&e))))?;
        if !mechanisms.contains(&MechanismType::AES_GCM) {
            return Err(backend_err(format_args!(
                "token {:?} does not offer CKM_AES_GCM",
                config.token_label
            )));
        }
        let pin = read_pin(&config.pin_file)?;
        let session = ctx
            .open_ro_session(slot)
            .map_err(|e| backend_err(format_args!("opening a session: {}", describe(&e))))?;
        login(&session, &pin, &config.token_label)?;
        let keys = find_keys(&session, &config.key_label)?;
        let key = match keys.as_slice() {
            [key] => *key,
            [] => {
                return Err(backend_err(format_args!(
                    "no secret key labelled {:?} in token {:?}; create it with \
                     `control-plane init-hsm-key`",
                    config.key_label, config.token_label
                )))
            }
            _ => {
                return Err(backend_err(format_args!(
                    "{} keys are labelled {:?}; labels must be unique",
                    keys.len(),
                    config.key_label
                )))
            }
        };
        check_wrapping_key(&session, key, &config.key_label)?;
        Ok(Pkcs11Custody {
            inner: Arc::new(Inner {
                ctx,
                slot,
                token_label: config.token_label.clone(),
                key_label: config.key_label.clone(),
                key,
                pin,
                pool: Mutex::new(vec![session]),
            }),
            permits: Arc::new(Semaphore::new(max_sessions)),
        })
    }

    /// The label of the wrapping key envelopes are sealed under.
    pub fn key_label(&self) -> &str {
        &self.inner.key_label
    }

    /// Runs `op` with a pooled, logged-in session on the blocking pool.
    async fn run<T, F>(&self, op: F) -> Result<T, CustodyError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Session) -> Result<T, OpError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| backend_err("session pool closed"))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let session = inner.take_session()?;
            match op(&inner, &session) {
                Ok(value) => {
                    inner.give_back(session);
                    Ok(value)
                }
                Err(OpError::P11(what, e)) => {
                    if !session_broken(&e) {
                        inner.give_back(session);
                    }
                    Err(backend_err(format_args!(
                        "{what} on token {:?}: {}",
                        inner.token_label,
                        describe(&e)
                    )))
                }
                Err(OpError::Custody(e)) => {
                    inner.give_back(session);
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| backend_err(format_args!("blocking task failed: {e}")))?
    }
}

enum OpError {
    P11(&'static str, P11Error),
    Custody(CustodyError),
}

impl Inner {
    fn take_session(&self) -> Result<Session, CustodyError> {
        if let Some(session) = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(session);
        }
        let session = self
            .ctx
            .open_ro_session(self.slot)
            .map_err(|e| backend_err(format_args!("opening a session: {}", describe(&e))))?;
        // Login is per application and token, so usually already done; after a token reset it
        // is needed again.
        login(&session, &self.pin, &self.token_label)?;
        Ok(session)
    }

    fn give_back(&self, session: Session) {
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
    }

    fn seal(
        &self,
        session: &Session,
        video_id: &str,
        key_id: &str,
        key: &[u8; CONTENT_KEY_LEN],
    ) -> Result<String, OpError> {
        let mut iv = [0u8; IV_LEN];
        session
            .generate_random_slice(&mut iv)
            .map_err(|e| OpError::P11("C_GenerateRandom", e))?;
        let aad = associated_data(&self.key_label, video_id, key_id);
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, aad.as_bytes(), (TAG_LEN as u64 * 8).into())
            .map_err(|e| OpError::P11("GCM parameters", e))?;
        let sealed = session
            .encrypt(&Mechanism::AesGcm(params), self.key, key)
            .map_err(|e| OpError::P11("C_Encrypt (CKM_AES_GCM)", e))?;
        if sealed.len() != CONTENT_KEY_LEN + TAG_LEN {
            return Err(OpError::Custody(backend_err(format_args!(
                "CKM_AES_GCM returned {} bytes, expected {}",
                sealed.len(),
                CONTENT_KEY_LEN + TAG_LEN
            ))));
        }
        let mut blob = Vec::with_capacity(SEALED_LEN);
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(&sealed);
        Ok(format!(
            "{ENVELOPE_PREFIX}{}:{}",
            self.key_label,
            URL_SAFE_NO_PAD.encode(blob)
        ))
    }
}

impl Inner {
    /// Opens `blob` (iv || ciphertext || tag) for `aad`; the raw PKCS#11 result.
    fn open_raw(&self, session: &Session, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, P11Error> {
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&blob[..IV_LEN]);
        let params = GcmParams::new(&mut iv, aad, (TAG_LEN as u64 * 8).into())?;
        session.decrypt(&Mechanism::AesGcm(params), self.key, &blob[IV_LEN..])
    }

    /// Whether a seal/open round trip of a fixed canary works under the wrapping key: tells a
    /// failed tag check from a failing HSM when the module reports both as CKR_GENERAL_ERROR.
    fn self_test(&self, session: &Session) -> bool {
        const CANARY: [u8; CONTENT_KEY_LEN] = *b"pkcs11-selftest!";
        let (video, key) = ("streaming-edge/self-test", "canary");
        let Ok(envelope) = self.seal(session, video, key, &CANARY) else {
            return false;
        };
        let Ok((_, blob)) = parse_envelope(&envelope) else {
            return false;
        };
        let aad = associated_data(&self.key_label, video, key);
        matches!(self.open_raw(session, &blob, aad.as_bytes()), Ok(plain) if plain == CANARY)
    }
}

/// Splits an envelope into (key label, iv || ciphertext || tag).
fn parse_envelope(wrapped: &str) -> Result<(&str, Vec<u8>), KeyWrapError> {
    if wrapped.len() > MAX_ENVELOPE_LEN {
        return Err(KeyWrapError::Malformed);
    }
    let rest = wrapped
        .strip_prefix(ENVELOPE_PREFIX)
        .ok_or(KeyWrapError::Malformed)?;
    let (label, body) = rest.split_once(':').ok_or(KeyWrapError::Malformed)?;
    if !valid_label(label) {
        return Err(KeyWrapError::Malformed);
    }
    let blob = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| KeyWrapError::Malformed)?;
    if blob.len() != SEALED_LEN {
        return Err(KeyWrapError::Malformed);
    }
    Ok((label, blob))
}

/// The wrapping key label an envelope names, if it is a `p11:v1:` envelope.
pub fn envelope_key_label(wrapped: &str) -> Option<&str> {
    parse_envelope(wrapped).ok().map(|(label, _)| label)
}

#[async_trait]
impl KeyCustody for Pkcs11Custody {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn check(&self) -> Result<(), CustodyError> {
        // A logged-in session that can still see the wrapping key.
        self.run(|inner, session| {
            session
                .get_attributes(inner.key, &[AttributeType::KeyType])
                .map(|_| ())
                .map_err(|e| OpError::P11("C_GetAttributeValue", e))
        })
        .await
    }

    async fn generate(&self, video_id: &str, key_id: &str) -> Result<GeneratedKey, CustodyError> {
        let (video_id, key_id) = (video_id.to_string(), key_id.to_string());
        self.run(move |inner, session| {
            let mut bytes = [0u8; CONTENT_KEY_LEN];
            session
                .generate_random_slice(&mut bytes)
                .map_err(|e| OpError::P11("C_GenerateRandom", e))?;
            let key = ContentKey::new(bytes);
            bytes.fill(0);
            let wrapped = inner.seal(session, &video_id, &key_id, key.bytes())?;
            Ok(GeneratedKey { key, wrapped })
        })
        .await
    }

    async fn seal(
        &self,
        video_id: &str,
        key_id: &str,
        key: &ContentKey,
    ) -> Result<String, CustodyError> {
        let (video_id, key_id) = (video_id.to_string(), key_id.to_string());
        let key = ContentKey::new(*key.bytes());
        self.run(move |inner, session| inner.seal(session, &video_id, &key_id, key.bytes()))
            .await
    }

    async fn unwrap(
        &self,
        video_id: &str,
        key_id: &str,
        wrapped: &str,
    ) -> Result<ContentKey, CustodyError> {
        let (label, blob) = parse_envelope(wrapped)?;
        if label != self.inner.key_label {
            return Err(backend_err(format_args!(
                "the envelope was sealed under HSM key {label:?}, this custody uses {:?}",
                self.inner.key_label
            )));
        }
        let aad = associated_data(label, video_id, key_id);
        self.run(move |inner, session| {
            match inner.open_raw(session, &blob, aad.as_bytes()) {
                Ok(mut plain) => {
                    let result = <[u8; CONTENT_KEY_LEN]>::try_from(plain.as_slice())
                        .map(ContentKey::new)
                        .map_err(|_| OpError::Custody(KeyWrapError::Malformed.into()));
                    plain.fill(0);
                    result
                }
                // The tag check failed inside the HSM: wrong binding, key or a tampered envelope.
                Err(P11Error::Pkcs11(
                    RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
                    _,
                )) => Err(OpError::Custody(KeyWrapError::Unauthentic.into())),
                // SoftHSM2 (2.6) reports a failed GCM tag check as CKR_GENERAL_ERROR, which a
                // real fault returns too. Tell them apart with a known-answer round trip under
                // the same key and session: if the HSM works, the envelope was at fault.
                Err(e @ P11Error::Pkcs11(RvError::GeneralError, _)) => {
                    if inner.self_test(session) {
                        Err(OpError::Custody(KeyWrapError::Unauthentic.into()))
                    } else {
                        Err(OpError::P11("C_Decrypt (CKM_AES_GCM)", e))
                    }
                }
                Err(e) => Err(OpError::P11("C_Decrypt (CKM_AES_GCM)", e)),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associated_data_is_injective() {
        assert_ne!(
            associated_data("k", "a/b", "c"),
            associated_data("k", "a", "b/c")
        );
        assert_ne!(
            associated_data("k", "ab", "c"),
            associated_data("k", "a", "bc")
        );
        assert_ne!(
            associated_data("k1", "a", "b"),
            associated_data("k2", "a", "b")
        );
    }

    #[test]
    fn envelopes_parse_strictly() {
        let blob = URL_SAFE_NO_PAD.encode([7u8; SEALED_LEN]);
        let ok = format!("{ENVELOPE_PREFIX}cp-wrap-1:{blob}");
        assert_eq!(envelope_key_label(&ok), Some("cp-wrap-1"));
        for bad in [
            format!("v1.{blob}"),
            format!("{ENVELOPE_PREFIX}:{blob}"),
            format!("{ENVELOPE_PREFIX}a b:{blob}"),
            format!("{ENVELOPE_PREFIX}k:{}", URL_SAFE_NO_PAD.encode([7u8; 10])),
            format!("{ENVELOPE_PREFIX}k:{blob}="),
            format!("{ENVELOPE_PREFIX}{}:{blob}", "x".repeat(300)),
        ] {
            assert!(parse_envelope(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert!(valid_label("content-keys.v2_1"));
        assert!(!valid_label(""));
        assert!(!valid_label("a:b"));
        assert!(!valid_label(&"a".repeat(MAX_LABEL_LEN + 1)));
    }
}
