//! The PKCS#11 custody backend ([`control_plane::keys::pkcs11`]) against a real SoftHSM2 token.
//!
//! The first test to need the HSM writes a `softhsm2.conf` into a temp dir (its own
//! `directories.tokendir`), points `SOFTHSM2_CONF` at it and initialises one token with
//! `softhsm2-util --init-token --free`. A PKCS#11 module reads its configuration once per
//! process (`C_Initialize`), so the tests of this binary share that token and each uses its own
//! wrapping-key label. They run one at a time: SoftHSM2 keeps token objects in files that
//! concurrent writers of one process can corrupt (`CKR_GENERAL_ERROR` on `C_GenerateKey`, seen
//! under `--test-threads=2`), and a test's raw cryptoki context finalizes the shared module when
//! it is dropped.
//!
//! The module is `$SOFTHSM2_MODULE`, else the Debian/Fedora paths of `libsofthsm2.so`; the
//! utility is `softhsm2-util` on `PATH`. Without them: under `CI` the tests fail with install
//! instructions; otherwise they are skipped with a message. `SKIP_HSM_TESTS=1` skips them
//! locally even when SoftHSM2 is installed (never under `CI`).

// Each test holds the one-at-a-time guard across its awaits on purpose: every test runs its own
// runtime on its own thread, so the guard only ever blocks another test's thread.
#![allow(clippy::await_holding_lock)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use control_plane::keys::pkcs11::{
    envelope_key_label, init_wrapping_key, Pkcs11Config, Pkcs11Custody, WrappingKeyInit,
    ENVELOPE_PREFIX,
};
use control_plane::keys::{ContentKey, CustodyError, KeyCustody};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use playback::keywrap::KeyWrapError;

const TOKEN: &str = "cp-custody-test";
/// A second token, only ever logged in to with a wrong PIN (login state is per token and process,
/// so a wrong PIN on the shared token would not even be checked once another test logged in).
const PIN_TOKEN: &str = "cp-custody-pin";
const PIN: &str = "user-pin-4c1d2e";
const SO_PIN: &str = "so-pin-9f8e7d";

const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

struct Hsm {
    module: PathBuf,
    dir: PathBuf,
}

impl Hsm {
    fn pin_file(&self) -> PathBuf {
        self.dir.join("user.pin")
    }

    fn config(&self, key_label: &str) -> Pkcs11Config {
        Pkcs11Config::new(&self.module, TOKEN, self.pin_file(), key_label)
    }

    /// Creates the wrapping key `label` and connects a custody to it.
    async fn custody(&self, label: &str) -> Pkcs11Custody {
        let config = self.config(label);
        let init = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || init_wrapping_key(&config))
                .await
                .unwrap()
                .unwrap()
        };
        assert_eq!(init, WrappingKeyInit::Created, "{label} must be fresh");
        Pkcs11Custody::connect(config).await.unwrap()
    }
}

fn find_module() -> Option<PathBuf> {
    if let Some(module) = std::env::var_os("SOFTHSM2_MODULE") {
        return Some(PathBuf::from(module)).filter(|p| p.is_file());
    }
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn find_util() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("softhsm2-util"))
        .find(|p| p.is_file())
}

fn setup() -> Result<Hsm, String> {
    if !ci() && std::env::var("SKIP_HSM_TESTS").is_ok_and(|v| v == "1") {
        return Err("SKIP_HSM_TESTS=1".into());
    }
    let (Some(module), Some(util)) = (find_module(), find_util()) else {
        return Err(format!(
            "SoftHSM2 is not installed (no libsofthsm2.so in $SOFTHSM2_MODULE or {MODULE_CANDIDATES:?}, \
             or no softhsm2-util on PATH). Install it with `apt-get install -y softhsm2` \
             (Debian/Ubuntu) or `dnf install softhsm` (Fedora), or point SOFTHSM2_MODULE at \
             libsofthsm2.so"
        ));
    };
    // Kept for the whole process: the module keeps its token files open.
    let dir = tempfile::Builder::new()
        .prefix("cp-softhsm-")
        .tempdir()
        .unwrap()
        .keep();
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    // Before any C_Initialize in this process (all HSM tests come through here first).
    std::env::set_var("SOFTHSM2_CONF", &conf);
    for token in [TOKEN, PIN_TOKEN] {
        let out = Command::new(&util)
            .args(["--init-token", "--free", "--label", token])
            .args(["--pin", PIN, "--so-pin", SO_PIN])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(dir.join("user.pin"), format!("{PIN}\n")).unwrap();
    Ok(Hsm { module, dir })
}

/// The shared SoftHSM2 token and the right to use it until the guard drops (one test at a
/// time), or `None` when the test should be skipped (never under CI).
fn hsm(test: &str) -> Option<(&'static Hsm, MutexGuard<'static, ()>)> {
    static HSM: OnceLock<Result<Hsm, String>> = OnceLock::new();
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    match HSM.get_or_init(setup) {
        Ok(hsm) => Some((
            hsm,
            // A test that panicked still left the token usable.
            ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner()),
        )),
        Err(why) if ci() => panic!("{test} needs SoftHSM2 under CI: {why}"),
        Err(why) => {
            eprintln!("SKIPPED {test}: {why} (these tests are mandatory when CI is set)");
            None
        }
    }
}

fn backend_message(err: CustodyError) -> String {
    match err {
        CustodyError::Backend(msg) => msg,
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

/// The control plane configured with `[keys] backend = "pkcs11"`: `/ready` names it, an import
/// seals through the HSM and the edge's key fetch opens through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_on_pkcs11() {
    let Some((hsm, _one_at_a_time)) = hsm("control_plane_on_pkcs11") else {
        return;
    };
    let label = "control-plane";
    let config = hsm.config(label);
    let init = tokio::task::spawn_blocking(move || init_wrapping_key(&config))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(init, WrappingKeyInit::Created);
    let t = common::TestApp::start(common::TestDb::sqlite().await, |c| {
        c.keys.backend = "pkcs11".into();
        c.keys.pkcs11.module = hsm.module.clone();
        c.keys.pkcs11.token_label = TOKEN.into();
        c.keys.pkcs11.pin_file = hsm.pin_file();
        c.keys.pkcs11.key_label = label.into();
    })
    .await;
    let sealed = common::custody_round_trip(&t, "pkcs11").await;
    let stored = t
        .app
        .db
        .content_key(
            sealed.video_id.parse().unwrap(),
            sealed.unopened_key.parse().unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(envelope_key_label(&stored.content_key), Some(label));
}

#[tokio::test]
async fn generate_then_open() {
    let Some((hsm, _one_at_a_time)) = hsm("generate_then_open") else {
        return;
    };
    let custody = hsm.custody("gen-open").await;
    assert_eq!(custody.backend(), "pkcs11");
    let generated = custody.generate("video-a", "key-a").await.unwrap();
    assert!(
        generated
            .wrapped
            .starts_with(&format!("{ENVELOPE_PREFIX}gen-open:")),
        "{}",
        generated.wrapped
    );
    assert_eq!(envelope_key_label(&generated.wrapped), Some("gen-open"));
    assert!(!generated
        .wrapped
        .contains(&hex::encode(generated.key.bytes())));
    let opened = custody
        .unwrap("video-a", "key-a", &generated.wrapped)
        .await
        .unwrap();
    assert_eq!(opened.bytes(), generated.key.bytes());

    let other = custody.generate("video-a", "key-a").await.unwrap();
    assert_ne!(other.key.bytes(), generated.key.bytes());
    assert_ne!(other.wrapped, generated.wrapped);
}

#[tokio::test]
async fn seal_then_open() {
    let Some((hsm, _one_at_a_time)) = hsm("seal_then_open") else {
        return;
    };
    let custody = hsm.custody("seal-open").await;
    let key = ContentKey::new([0x42; 16]);
    let sealed = custody.seal("video-b", "key-b", &key).await.unwrap();
    assert!(!sealed.contains(&hex::encode([0x42u8; 16])));
    let again = custody.seal("video-b", "key-b", &key).await.unwrap();
    assert_ne!(sealed, again, "a fresh IV per seal");
    for envelope in [&sealed, &again] {
        let opened = custody.unwrap("video-b", "key-b", envelope).await.unwrap();
        assert_eq!(opened.bytes(), key.bytes());
    }
}

#[tokio::test]
async fn wrong_binding_or_tampering_fails() {
    let Some((hsm, _one_at_a_time)) = hsm("wrong_binding_or_tampering_fails") else {
        return;
    };
    let custody = hsm.custody("binding").await;
    let sealed = custody
        .seal("video-c", "key-c", &ContentKey::new([7; 16]))
        .await
        .unwrap();
    for (video, key) in [
        ("video-x", "key-c"),
        ("video-c", "key-x"),
        ("key-c", "video-c"),
        ("video-c/key-c", ""),
    ] {
        let err = custody.unwrap(video, key, &sealed).await.unwrap_err();
        assert!(
            matches!(err, CustodyError::Unwrap(KeyWrapError::Unauthentic)),
            "{video}/{key}: {err:?}"
        );
    }
    // A flipped ciphertext bit fails the tag check inside the HSM.
    let (head, body) = sealed.rsplit_once(':').unwrap();
    let mut bytes = base64_decode(body);
    bytes[20] ^= 1;
    let tampered = format!("{head}:{}", base64_encode(&bytes));
    let err = custody
        .unwrap("video-c", "key-c", &tampered)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CustodyError::Unwrap(KeyWrapError::Unauthentic)
    ));
    // Malformed envelopes never reach the HSM.
    for bad in ["v1.AAAA", "p11:v1:binding:@@@", "p11:v1:binding"] {
        let err = custody.unwrap("video-c", "key-c", bad).await.unwrap_err();
        assert!(
            matches!(err, CustodyError::Unwrap(KeyWrapError::Malformed)),
            "{bad}: {err:?}"
        );
    }
    // Another wrapping key: its custody refuses the label; relabelled, the tag check fails.
    let other = hsm.custody("binding-other").await;
    let msg = backend_message(other.unwrap("video-c", "key-c", &sealed).await.unwrap_err());
    assert!(
        msg.starts_with("pkcs11: ") && msg.contains("\"binding\""),
        "{msg}"
    );
    let relabelled = sealed.replacen(":binding:", ":binding-other:", 1);
    let err = other
        .unwrap("video-c", "key-c", &relabelled)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CustodyError::Unwrap(KeyWrapError::Unauthentic)
    ));
}

#[tokio::test]
async fn wrong_pin_is_a_clear_backend_error() {
    let Some((hsm, _one_at_a_time)) = hsm("wrong_pin_is_a_clear_backend_error") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wrong = "not-the-pin-1234";
    std::fs::write(dir.path().join("pin"), wrong).unwrap();
    let mut config = hsm.config("wrong-pin");
    config.token_label = PIN_TOKEN.into();
    config.pin_file = dir.path().join("pin");
    let msg = backend_message(Pkcs11Custody::connect(config.clone()).await.unwrap_err());
    assert!(msg.starts_with("pkcs11: "), "{msg}");
    assert!(msg.contains("PIN is incorrect"), "{msg}");
    assert!(!msg.contains(wrong) && !msg.contains(PIN), "{msg}");

    config.pin_file = dir.path().join("missing");
    let msg = backend_message(Pkcs11Custody::connect(config).await.unwrap_err());
    assert!(msg.contains("PIN file") && msg.contains("missing"), "{msg}");
}

fn raw_context(hsm: &Hsm) -> (Pkcs11, cryptoki::slot::Slot) {
    let ctx = Pkcs11::new(&hsm.module).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == TOKEN)
        .unwrap();
    (ctx, slot)
}

#[tokio::test]
async fn wrapping_key_is_not_extractable() {
    let Some((hsm, _one_at_a_time)) = hsm("wrapping_key_is_not_extractable") else {
        return;
    };
    let _custody = hsm.custody("no-extract").await;
    let hsm: &'static Hsm = hsm;
    tokio::task::spawn_blocking(move || {
        let (ctx, slot) = raw_context(hsm);
        let session = ctx.open_rw_session(slot).unwrap();
        match session.login(UserType::User, Some(&AuthPin::from(PIN.to_string()))) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("login: {e}"),
        }
        let keys = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(b"no-extract".to_vec()),
            ])
            .unwrap();
        assert_eq!(keys.len(), 1);
        let key = keys[0];
        // C_GetAttributeValue(CKA_VALUE) is refused: CKR_ATTRIBUTE_SENSITIVE.
        let info = session
            .get_attribute_info(key, &[AttributeType::Value])
            .unwrap();
        assert!(
            matches!(info.as_slice(), [AttributeInfo::Sensitive]),
            "{info:?}"
        );
        let values = session
            .get_attributes(key, &[AttributeType::Value])
            .unwrap();
        assert!(
            !values.iter().any(|a| matches!(a, Attribute::Value(_))),
            "CKA_VALUE must never be returned"
        );
        let attrs = session
            .get_attributes(
                key,
                &[
                    AttributeType::KeyType,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Token,
                    AttributeType::Private,
                ],
            )
            .unwrap();
        for expected in [
            Attribute::KeyType(KeyType::AES),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::AlwaysSensitive(true),
            Attribute::NeverExtractable(true),
            Attribute::Token(true),
            Attribute::Private(true),
        ] {
            assert!(attrs.contains(&expected), "{expected:?} not in {attrs:?}");
        }
        // Nor can it be wrapped out under another key (CKR_KEY_UNEXTRACTABLE or similar).
        let kek = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32u64.into()),
                    Attribute::Token(false),
                    Attribute::Wrap(true),
                ],
            )
            .unwrap();
        let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, kek, key);
        assert!(
            matches!(wrapped, Err(P11Error::Pkcs11(RvError::KeyUnextractable, _))),
            "the wrapping key must not be wrapped out: {:?}",
            wrapped.map(|w| w.len())
        );
        // And its attributes cannot be relaxed (CKA_MODIFIABLE false; sensitive is one-way).
        let relaxed = session.update_attributes(key, &[Attribute::Extractable(true)]);
        assert!(relaxed.is_err(), "CKA_EXTRACTABLE was relaxed");
        // The mechanisms the module doc relies on (GCM chosen; key wrap with padding exists too).
        let mechanisms = ctx.get_mechanism_list(slot).unwrap();
        for m in [MechanismType::AES_GCM, MechanismType::AES_KEY_WRAP_PAD] {
            assert!(mechanisms.contains(&m), "{m} not offered by SoftHSM2");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn missing_module_is_an_error() {
    // Needs no SoftHSM.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pin"), "1234").unwrap();
    let module = dir.path().join("no-such-pkcs11-module.so");
    let config = Pkcs11Config::new(&module, TOKEN, dir.path().join("pin"), "k");
    let msg = backend_message(Pkcs11Custody::connect(config.clone()).await.unwrap_err());
    assert!(msg.starts_with("pkcs11: "), "{msg}");
    assert!(msg.contains("no-such-pkcs11-module.so"), "{msg}");
    let msg = backend_message(init_wrapping_key(&config).unwrap_err());
    assert!(msg.contains("no-such-pkcs11-module.so"), "{msg}");

    // A file that is not a PKCS#11 module.
    let bogus = dir.path().join("bogus.so");
    std::fs::write(&bogus, b"not a shared object").unwrap();
    let config = Pkcs11Config::new(&bogus, TOKEN, dir.path().join("pin"), "k");
    let msg = backend_message(Pkcs11Custody::connect(config).await.unwrap_err());
    assert!(
        msg.starts_with("pkcs11: cannot load module") && msg.contains("bogus.so"),
        "{msg}"
    );
}

#[tokio::test]
async fn missing_token_or_key_and_unfit_keys_are_refused() {
    let Some((hsm, _one_at_a_time)) = hsm("missing_token_or_key_and_unfit_keys_are_refused") else {
        return;
    };
    let mut config = hsm.config("never-created");
    let msg = backend_message(Pkcs11Custody::connect(config.clone()).await.unwrap_err());
    assert!(
        msg.contains("no secret key labelled \"never-created\"") && msg.contains("init-hsm-key"),
        "{msg}"
    );
    config.token_label = "no-such-token".into();
    let msg = backend_message(Pkcs11Custody::connect(config).await.unwrap_err());
    assert!(msg.contains("no initialised token labelled"), "{msg}");

    let bad_label = hsm.config("has:colon");
    let msg = backend_message(Pkcs11Custody::connect(bad_label).await.unwrap_err());
    assert!(msg.contains("key label"), "{msg}");

    // init is idempotent.
    hsm.custody("idempotent").await;
    let config = hsm.config("idempotent");
    assert_eq!(
        init_wrapping_key(&config).unwrap(),
        WrappingKeyInit::AlreadyPresent
    );

    // An extractable key under the label is refused, by connect and by init.
    let hsm_ref: &'static Hsm = hsm;
    tokio::task::spawn_blocking(move || {
        let (ctx, slot) = raw_context(hsm_ref);
        let session = ctx.open_rw_session(slot).unwrap();
        match session.login(UserType::User, Some(&AuthPin::from(PIN.to_string()))) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("login: {e}"),
        }
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32u64.into()),
                    Attribute::Label(b"extractable".to_vec()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ],
            )
            .unwrap();
    })
    .await
    .unwrap();
    let config = hsm.config("extractable");
    let msg = backend_message(Pkcs11Custody::connect(config.clone()).await.unwrap_err());
    assert!(
        msg.contains("cannot be the wrapping key")
            && msg.contains("CKA_EXTRACTABLE")
            && msg.contains("not CKA_SENSITIVE"),
        "{msg}"
    );
    let msg = backend_message(init_wrapping_key(&config).unwrap_err());
    assert!(msg.contains("cannot be the wrapping key"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_operations_share_a_bounded_pool() {
    let Some((hsm, _one_at_a_time)) = hsm("concurrent_operations_share_a_bounded_pool") else {
        return;
    };
    let mut config = hsm.config("concurrent");
    config.max_sessions = 2;
    init_wrapping_key(&config).unwrap();
    let custody = Arc::new(Pkcs11Custody::connect(config).await.unwrap());
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let custody = custody.clone();
            tokio::spawn(async move {
                let (video, key) = (format!("video-{i}"), format!("key-{i}"));
                let generated = custody.generate(&video, &key).await.unwrap();
                let opened = custody
                    .unwrap(&video, &key, &generated.wrapped)
                    .await
                    .unwrap();
                assert_eq!(opened.bytes(), generated.key.bytes());
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn debug_output_hides_the_pin() {
    let Some((hsm, _one_at_a_time)) = hsm("debug_output_hides_the_pin") else {
        return;
    };
    let custody = hsm.custody("debug").await;
    let shown = format!("{custody:?}");
    assert!(
        shown.contains("<redacted>") && !shown.contains(PIN),
        "{shown}"
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
