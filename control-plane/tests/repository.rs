//! Repository tests: every query on SQLite, and on Postgres when `DATABASE_URL` is postgres://
//! (each test in its own fresh database).

mod common;

use common::TestDb;
use control_plane::db::content_keys::IV_IN_MEDIA;
use control_plane::db::files::{status as file_status, ImportedTitle, NewFile, PublishedTitle};
use control_plane::db::jobs::status as job_status;
use control_plane::db::licenses::{DrmSystem, LicenseBatch, LicenseOutcome, NewLicense};
use control_plane::db::users::TierName;
use control_plane::db::{now, Db, DbError};
use control_plane::keys::local::LocalKeyCustody;
use control_plane::keys::KeyCustody;
use playback::license::policy::LicenseKind;
use time::Duration;
use uuid::Uuid;

async fn new_file(db: &Db, owner: &str) -> Uuid {
    db.upsert_user(owner, None, now()).await.unwrap();
    let id = Uuid::new_v4();
    db.insert_file(
        &NewFile {
            id,
            owner_id: owner,
            name: "clip.mp4",
            mime_type: "video/mp4",
            size_bytes: 1234,
            storage_path: "/tmp/x",
        },
        now(),
    )
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn users_and_subscriptions() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let at = now();
        db.upsert_user("alice", Some("a@example.com"), at)
            .await
            .unwrap();
        db.upsert_user("alice", None, at).await.unwrap();
        assert!(db.user_exists("alice").await.unwrap());
        assert!(!db.user_exists("bob").await.unwrap());

        assert_eq!(
            db.active_tier("alice", at).await.unwrap(),
            None,
            "{}",
            t.label
        );
        db.subscribe("alice", TierName::Free, at).await.unwrap();
        let free = db.active_tier("alice", at).await.unwrap().unwrap();
        assert_eq!(
            (
                free.name.as_str(),
                free.can_use_drm,
                free.max_concurrent_streams
            ),
            ("free", false, 1)
        );
        db.subscribe("alice", TierName::Pro, at).await.unwrap();
        let pro = db.active_tier("alice", at).await.unwrap().unwrap();
        assert_eq!(
            (
                pro.name.as_str(),
                pro.can_use_drm,
                pro.max_concurrent_streams
            ),
            ("pro", true, 3)
        );
        db.subscribe("carol", TierName::Enterprise, at)
            .await
            .unwrap();
        let ent = db.active_tier("carol", at).await.unwrap().unwrap();
        assert_eq!(
            (ent.can_use_drm, ent.max_concurrent_streams),
            (true, 10),
            "{}",
            t.label
        );
        assert!(db.user_exists("carol").await.unwrap());
        assert!(matches!(
            "gold".parse::<TierName>(),
            Err(DbError::UnknownTier(_))
        ));
        db.close().await;
    }
}

#[tokio::test]
async fn memberships() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        db.upsert_user("m", None, now()).await.unwrap();
        let org = db.create_organization("Acme", now()).await.unwrap();
        let project = db.create_project(org, "Launch", now()).await.unwrap();
        db.add_organization_member(org, "m", "member")
            .await
            .unwrap();
        db.add_organization_member(org, "m", "admin").await.unwrap();
        db.add_project_member(project, "m").await.unwrap();
        db.add_project_member(project, "m").await.unwrap();
        assert_eq!(
            db.organization_ids("m").await.unwrap(),
            vec![org],
            "{}",
            t.label
        );
        assert_eq!(db.project_ids("m").await.unwrap(), vec![project]);
        assert!(db.organization_ids("x").await.unwrap().is_empty());
        // Foreign keys are enforced on both databases.
        assert!(
            db.add_project_member(project, "nobody").await.is_err(),
            "{}",
            t.label
        );
        db.close().await;
    }
}

#[tokio::test]
async fn files_round_trip() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        db.upsert_user("owner", None, now()).await.unwrap();
        let id = Uuid::new_v4();
        let created = now();
        let inserted = db
            .insert_file(
                &NewFile {
                    id,
                    owner_id: "owner",
                    name: "ünïcode clip.mp4",
                    mime_type: "video/mp4",
                    size_bytes: 5_000_000_000,
                    storage_path: "/data/uploads/x",
                },
                created,
            )
            .await
            .unwrap();
        let read = db.file(id).await.unwrap().unwrap();
        assert_eq!(inserted, read, "{}", t.label);
        assert_eq!(read.id, id);
        assert_eq!(
            read.created_at, created,
            "{}: timestamps round-trip",
            t.label
        );
        assert_eq!(read.size_bytes, 5_000_000_000);
        assert_eq!(read.transcoding_status, file_status::PENDING);
        assert!(!read.drm_protected && !read.is_ready());
        assert_eq!(db.file(Uuid::new_v4()).await.unwrap(), None);

        let org = db.create_organization("o", now()).await.unwrap();
        db.share_file(id, Some(org), None).await.unwrap();
        assert_eq!(
            db.file(id).await.unwrap().unwrap().organization_id,
            Some(org)
        );

        // An unknown owner violates the foreign key.
        let orphan = db
            .insert_file(
                &NewFile {
                    id: Uuid::new_v4(),
                    owner_id: "ghost",
                    name: "n",
                    mime_type: "m",
                    size_bytes: 1,
                    storage_path: "p",
                },
                now(),
            )
            .await;
        assert!(orphan.is_err(), "{}", t.label);
        db.close().await;
    }
}

#[tokio::test]
async fn job_lifecycle() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let file = new_file(&db, "owner").await;
        let job = db
            .create_job(file, true, "cbcs", "/tmp/x", "/origin/x", now())
            .await
            .unwrap();
        assert_eq!(
            (
                job.status.as_str(),
                job.attempts,
                job.progress,
                job.enable_drm
            ),
            (job_status::PROCESSING, 0, 0, true)
        );
        assert_eq!(
            db.file(file).await.unwrap().unwrap().transcoding_status,
            file_status::PROCESSING
        );
        let again = db
            .create_job(file, false, "none", "/tmp/x", "/origin/x", now())
            .await;
        assert!(
            matches!(again, Err(DbError::Conflict(_))),
            "{}: {again:?}",
            t.label
        );

        assert_eq!(db.start_job_attempt(job.id, now()).await.unwrap(), 1);
        assert_eq!(db.start_job_attempt(job.id, now()).await.unwrap(), 2);
        db.set_job_progress(job.id, 42, now()).await.unwrap();
        let read = db.job(job.id).await.unwrap().unwrap();
        assert_eq!((read.progress, read.attempts), (42, 2), "{}", t.label);
        assert_eq!(
            db.jobs_with_status(job_status::PROCESSING)
                .await
                .unwrap()
                .len(),
            1
        );

        let key_id = Uuid::new_v4();
        db.insert_content_key(key_id, file, "v1.wrapped", now())
            .await
            .unwrap();
        let encrypted_at = now();
        let title = PublishedTitle {
            drm_protected: true,
            hls_manifest_url: "http://edge/playback/x/manifest".into(),
            content_key_id: Some(key_id),
            encrypted_at: Some(encrypted_at),
        };
        db.complete_job(&read, &title, now()).await.unwrap();
        let done = db.job(job.id).await.unwrap().unwrap();
        assert_eq!(
            (done.status.as_str(), done.progress),
            (job_status::COMPLETED, 100)
        );
        // Progress after completion is ignored.
        db.set_job_progress(job.id, 50, now()).await.unwrap();
        assert_eq!(db.job(job.id).await.unwrap().unwrap().progress, 100);
        let f = db.file(file).await.unwrap().unwrap();
        assert!(f.is_ready() && f.drm_protected, "{}", t.label);
        assert_eq!(f.content_key_id, Some(key_id));
        assert_eq!(f.encrypted_at, Some(encrypted_at));
        assert_eq!(
            f.hls_manifest_url.as_deref(),
            Some("http://edge/playback/x/manifest")
        );

        // A failed re-transcode keeps the published title playable.
        let retry = db
            .create_job(
                file,
                true,
                "cbcs",
                "/tmp/x",
                "/origin/x",
                now() + Duration::seconds(1),
            )
            .await
            .unwrap();
        db.fail_job(&retry, "ffmpeg exited with 1", now())
            .await
            .unwrap();
        assert_eq!(
            db.file(file).await.unwrap().unwrap().transcoding_status,
            file_status::COMPLETED
        );
        let latest = db.latest_job_for_file(file).await.unwrap().unwrap();
        assert_eq!(latest.id, retry.id, "{}", t.label);
        assert_eq!(
            latest.error_message.as_deref(),
            Some("ffmpeg exited with 1")
        );

        // A failed first transcode marks the file failed.
        let other = new_file(&db, "owner").await;
        let j = db
            .create_job(other, false, "none", "/tmp/y", "/origin/y", now())
            .await
            .unwrap();
        db.fail_job(&j, "boom", now()).await.unwrap();
        assert_eq!(
            db.file(other).await.unwrap().unwrap().transcoding_status,
            file_status::FAILED
        );

        let counts = db.count_jobs_by_status().await.unwrap();
        assert_eq!(
            counts,
            vec![("completed".to_string(), 1), ("failed".to_string(), 2)],
            "{}",
            t.label
        );
        db.close().await;
    }
}

#[tokio::test]
async fn content_keys_hold_only_the_wrapped_form() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let file = new_file(&db, "owner").await;
        let custody = LocalKeyCustody::new([5; 32]);
        let key_id = Uuid::new_v4();
        let generated = custody
            .generate(&file.to_string(), &key_id.to_string())
            .await
            .unwrap();
        db.insert_content_key(key_id, file, &generated.wrapped, now())
            .await
            .unwrap();

        let stored = db.content_key(file, key_id).await.unwrap().unwrap();
        assert_eq!(stored.algorithm, "AES-128");
        assert!(stored.content_key.starts_with("v1."));
        let plain_hex = hex::encode(generated.key.bytes());
        assert!(!stored.content_key.contains(&plain_hex));
        use base64::Engine as _;
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let b64 = engine.encode(generated.key.bytes());
            assert!(!stored.content_key.contains(b64.trim_end_matches('=')));
        }
        let opened = custody
            .unwrap(&file.to_string(), &key_id.to_string(), &stored.content_key)
            .await
            .unwrap();
        assert_eq!(opened.bytes(), generated.key.bytes(), "{}", t.label);

        assert_eq!(
            db.content_key(Uuid::new_v4(), key_id).await.unwrap(),
            None,
            "key of another title"
        );
        assert_eq!(db.content_keys_for(file).await.unwrap().len(), 1);
        assert!(db.revoke_content_key(key_id, now()).await.unwrap());
        assert!(!db.revoke_content_key(key_id, now()).await.unwrap());
        assert!(db
            .content_key(file, key_id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some());
        db.close().await;
    }
}

#[tokio::test]
async fn migrations_are_rerunnable_and_tiers_carry_license_policy() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        db.migrate().await.unwrap();
        let at = now();
        // No subscription: the free tier's row.
        let free = db.effective_tier("nobody", at).await.unwrap();
        assert_eq!(
            (
                free.name.as_str(),
                free.max_concurrent_streams,
                free.license_duration_secs,
                free.persistent_licenses
            ),
            ("free", 1, 3600, false),
            "{}",
            t.label
        );
        assert_eq!(db.active_tier_policy("nobody", at).await.unwrap(), None);
        db.subscribe("p", TierName::Pro, at).await.unwrap();
        let pro = db.effective_tier("p", at).await.unwrap();
        assert_eq!(
            (
                pro.name.as_str(),
                pro.max_concurrent_streams,
                pro.license_duration_secs
            ),
            ("pro", 3, 3600)
        );
        assert_eq!(pro.license_policy().kind.as_str(), "rental");
        db.subscribe("e", TierName::Enterprise, at).await.unwrap();
        let ent = db.effective_tier("e", at).await.unwrap();
        assert!(ent.persistent_licenses, "{}", t.label);
        assert_eq!(ent.license_policy().kind.as_str(), "persistent");
        assert_eq!(ent.max_concurrent_streams, 10);
        // The TierFacts view used by the entitlement rule is unchanged.
        let facts = db.active_tier("e", at).await.unwrap().unwrap();
        assert_eq!(
            (facts.name.as_str(), facts.can_use_drm),
            ("enterprise", true)
        );
        db.close().await;
    }
}

fn license(video_id: Uuid, user: &str, key_id: Option<Uuid>) -> NewLicense {
    let issued_at = now();
    NewLicense {
        id: Uuid::new_v4(),
        video_id,
        user_id: user.into(),
        key_id,
        drm_system: DrmSystem::ClearKey,
        license_type: LicenseKind::Rental,
        issued_at,
        expires_at: issued_at + Duration::seconds(3600),
        device_id: None,
    }
}

#[tokio::test]
async fn licenses_are_recorded_once_per_id() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let video = new_file(&db, "owner").await;
        let other_video = new_file(&db, "owner").await;
        let key = Uuid::new_v4();
        db.insert_content_key(key, video, "v1.wrapped", now())
            .await
            .unwrap();
        let other_key = Uuid::new_v4();
        db.insert_content_key(other_key, other_video, "v1.wrapped", now())
            .await
            .unwrap();

        let with_key = license(video, "viewer-new", Some(key));
        let mut persistent = license(video, "viewer-new", None);
        persistent.license_type = LicenseKind::Persistent;
        persistent.drm_system = DrmSystem::FairPlay;
        persistent.device_id = Some("device-1".into());
        let unknown_video = license(Uuid::new_v4(), "viewer-2", None);
        let foreign_key = license(video, "viewer-3", Some(other_key));
        let unknown_key = license(video, "viewer-3", Some(Uuid::new_v4()));
        let batch = vec![
            with_key.clone(),
            persistent.clone(),
            unknown_video.clone(),
            foreign_key.clone(),
            unknown_key.clone(),
            // The same id twice in one batch: the second is a duplicate.
            with_key.clone(),
        ];
        let first = db.record_licenses(&batch, now()).await.unwrap();
        use LicenseOutcome::*;
        assert_eq!(
            first.outcomes,
            vec![
                Recorded,
                Recorded,
                UnknownVideo,
                Recorded,
                Recorded,
                Duplicate
            ],
            "{}",
            t.label
        );
        assert_eq!(first.keys_unmatched, 2, "{}", t.label);
        assert!(
            db.user_exists("viewer-new").await.unwrap(),
            "users are created"
        );
        assert!(db.user_exists("viewer-3").await.unwrap());
        assert!(
            !db.user_exists("viewer-2").await.unwrap(),
            "a rejected record creates nobody"
        );

        let stored = db.license(with_key.id).await.unwrap().unwrap();
        assert_eq!(stored.content_id, video);
        assert_eq!(stored.key_id, Some(key));
        assert_eq!(stored.issued_at, with_key.issued_at, "{}", t.label);
        assert_eq!(stored.expires_at, with_key.expires_at);
        assert_eq!(stored.drm_system.as_deref(), Some("clearkey"));
        assert_eq!(stored.license_type, "rental");
        assert!(!stored.revoked);
        let stored = db.license(persistent.id).await.unwrap().unwrap();
        assert_eq!(
            (
                stored.license_type.as_str(),
                stored.drm_system.as_deref(),
                stored.device_id.as_deref()
            ),
            ("persistent", Some("fairplay"), Some("device-1"))
        );
        // Key ids that are not keys of the title are kept as NULL instead of failing the batch.
        assert_eq!(
            db.license(foreign_key.id).await.unwrap().unwrap().key_id,
            None
        );
        assert_eq!(
            db.license(unknown_key.id).await.unwrap().unwrap().key_id,
            None
        );
        assert_eq!(db.license(unknown_video.id).await.unwrap(), None);
        assert_eq!(db.count_licenses_for(video).await.unwrap(), 4);

        // A replay of the whole batch (the edge's outbox after a timeout) writes nothing.
        let replay = db.record_licenses(&batch, now()).await.unwrap();
        assert_eq!(
            replay.outcomes,
            vec![
                Duplicate,
                Duplicate,
                UnknownVideo,
                Duplicate,
                Duplicate,
                Duplicate
            ],
            "{}",
            t.label
        );
        assert_eq!(replay.keys_unmatched, 0);
        assert_eq!(db.count_licenses_for(video).await.unwrap(), 4);
        assert_eq!(
            db.record_licenses(&[], now()).await.unwrap(),
            LicenseBatch::default()
        );
        db.close().await;
    }
}

#[tokio::test]
async fn key_revocation_is_idempotent_and_scoped_to_the_title() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let video = new_file(&db, "owner").await;
        let key = Uuid::new_v4();
        db.insert_content_key(key, video, "v1.wrapped", now())
            .await
            .unwrap();
        assert_eq!(
            db.revoke_video_key(Uuid::new_v4(), key, now())
                .await
                .unwrap(),
            None,
            "another title's key"
        );
        assert_eq!(
            db.revoke_video_key(video, Uuid::new_v4(), now())
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            db.content_key(video, key)
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            None
        );
        let first_at = now();
        let first = db
            .revoke_video_key(video, key, first_at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (first.revoked_at, first.newly_revoked),
            (first_at, true),
            "{}",
            t.label
        );
        let again = db
            .revoke_video_key(video, key, first_at + Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (again.revoked_at, again.newly_revoked),
            (first_at, false),
            "{}",
            t.label
        );
        let stored = db.content_key(video, key).await.unwrap().unwrap();
        assert_eq!(stored.revoked_at, Some(first_at));
        assert_eq!(stored.content_key, "v1.wrapped", "nothing else is written");
        db.close().await;
    }
}

#[tokio::test]
async fn imported_titles_are_ready_with_their_keys() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let id = Uuid::new_v4();
        let (k1, k2) = (Uuid::new_v4(), Uuid::new_v4());
        let keys = vec![(k1, "v1.one".to_string()), (k2, "v1.two".to_string())];
        let title = ImportedTitle {
            file: NewFile {
                id,
                owner_id: "packager-owner",
                name: "Big Buck Bunny",
                mime_type: "application/vnd.apple.mpegurl",
                size_bytes: 42,
                storage_path: "/origin/x",
            },
            drm_protected: true,
            hls_manifest_url: "http://edge/playback/x/manifest",
            keys: &keys,
        };
        let record = db.import_title(&title, now()).await.unwrap();
        assert!(record.is_ready() && record.drm_protected, "{}", t.label);
        assert_eq!(record.content_key_id, Some(k1));
        assert!(record.encrypted_at.is_some());
        assert!(db.user_exists("packager-owner").await.unwrap());
        let stored = db.content_keys_for(id).await.unwrap();
        assert_eq!(stored.len(), 2);
        assert!(stored
            .iter()
            .all(|k| k.iv == IV_IN_MEDIA && k.revoked_at.is_none()));

        // A key id already used by another title fails the whole import: no file row remains.
        let second = Uuid::new_v4();
        let clash = ImportedTitle {
            file: NewFile {
                id: second,
                ..title.file.clone()
            },
            keys: &keys[..1],
            ..title.clone()
        };
        assert!(db.import_title(&clash, now()).await.is_err(), "{}", t.label);
        assert_eq!(db.file(second).await.unwrap(), None, "{}", t.label);

        // A clear title has no key.
        let clear = ImportedTitle {
            file: NewFile {
                id: Uuid::new_v4(),
                ..title.file.clone()
            },
            drm_protected: false,
            keys: &[],
            ..title.clone()
        };
        let record = db.import_title(&clear, now()).await.unwrap();
        assert!(record.is_ready() && !record.drm_protected);
        assert_eq!((record.content_key_id, record.encrypted_at), (None, None));
        db.close().await;
    }
}
