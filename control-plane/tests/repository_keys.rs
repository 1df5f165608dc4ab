//! Repository tests of the key lifecycle and the key audit trail (migration 0003), on SQLite
//! and, when `DATABASE_URL` is postgres://, on Postgres (each test in its own fresh database).

mod common;

use common::TestDb;
use control_plane::db::content_keys::{AddKeyOutcome, KeyInsert, RetireOutcome};
use control_plane::db::files::NewFile;
use control_plane::db::key_audit::{KeyAction, KeyEvent, MAX_DETAIL_CHARS};
use control_plane::db::{now, Db};
use time::Duration;
use uuid::Uuid;

async fn new_file(db: &Db) -> Uuid {
    db.upsert_user("owner", None, now()).await.unwrap();
    let id = Uuid::new_v4();
    db.insert_file(
        &NewFile {
            id,
            owner_id: "owner",
            name: "clip.mp4",
            mime_type: "video/mp4",
            size_bytes: 1,
            storage_path: "/tmp/x",
        },
        now(),
    )
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn generate_rotate_retire_revoke() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let label = t.label;
        let video = new_file(&db).await;
        assert_eq!(db.current_key_id(video).await.unwrap(), None, "{label}");
        assert_eq!(db.current_key_id(Uuid::new_v4()).await.unwrap(), None);

        // Generate: the first key becomes current; a second "first" key is refused.
        let k1 = Uuid::new_v4();
        let at = now();
        assert_eq!(
            db.add_current_key(video, k1, "v1.k1", None, at)
                .await
                .unwrap(),
            AddKeyOutcome::Added { previous: None },
            "{label}"
        );
        assert_eq!(db.current_key_id(video).await.unwrap(), Some(k1));
        let k_refused = Uuid::new_v4();
        assert_eq!(
            db.add_current_key(video, k_refused, "v1.x", None, at)
                .await
                .unwrap(),
            AddKeyOutcome::Stale { current: Some(k1) }
        );
        assert!(
            db.content_key(video, k_refused).await.unwrap().is_none(),
            "{label}: a refused generate writes nothing"
        );
        assert_eq!(
            db.add_current_key(Uuid::new_v4(), Uuid::new_v4(), "v1.x", None, at)
                .await
                .unwrap(),
            AddKeyOutcome::NoTitle
        );

        // Rotate: a new current key; the old one still in service.
        let k2 = Uuid::new_v4();
        assert_eq!(
            db.add_current_key(video, k2, "v1.k2", Some(k1), at + Duration::seconds(1))
                .await
                .unwrap(),
            AddKeyOutcome::Added { previous: Some(k1) }
        );
        assert_eq!(db.current_key_id(video).await.unwrap(), Some(k2));
        let old = db.content_key(video, k1).await.unwrap().unwrap();
        assert!(old.in_service(), "{label}");
        let keys = db.content_keys_for(video).await.unwrap();
        assert_eq!(
            keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            vec![k1, k2],
            "{label}"
        );

        // Retire: not the current key; idempotent; the old key leaves service.
        assert_eq!(
            db.retire_video_key(video, k2, now()).await.unwrap(),
            RetireOutcome::Current
        );
        assert!(db
            .content_key(video, k2)
            .await
            .unwrap()
            .unwrap()
            .in_service());
        let first = now();
        let RetireOutcome::Retired {
            retired_at,
            newly_retired: true,
        } = db.retire_video_key(video, k1, first).await.unwrap()
        else {
            panic!("{label}: k1 should be newly retired");
        };
        assert_eq!(retired_at, first);
        assert_eq!(
            db.retire_video_key(video, k1, first + Duration::seconds(5))
                .await
                .unwrap(),
            RetireOutcome::Retired {
                retired_at: first,
                newly_retired: false
            },
            "{label}: a repeat keeps the first time"
        );
        let stored = db.content_key(video, k1).await.unwrap().unwrap();
        assert_eq!(stored.retired_at, Some(first));
        assert!(!stored.in_service());
        assert_eq!(
            db.retire_video_key(video, Uuid::new_v4(), now())
                .await
                .unwrap(),
            RetireOutcome::NotFound
        );
        assert_eq!(
            db.retire_video_key(Uuid::new_v4(), k1, now())
                .await
                .unwrap(),
            RetireOutcome::NotFound,
            "{label}: a key of another title is not found"
        );

        // Revoke still works on the current key and leaves it out of service.
        let revoked = db
            .revoke_video_key(video, k2, now())
            .await
            .unwrap()
            .unwrap();
        assert!(revoked.newly_revoked);
        assert!(!db
            .content_key(video, k2)
            .await
            .unwrap()
            .unwrap()
            .in_service());
    }
}

#[tokio::test]
async fn speke_get_or_create() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let label = t.label;
        let video = new_file(&db).await;
        let other = new_file(&db).await;
        let kid = Uuid::new_v4();
        assert_eq!(
            db.insert_key_if_absent(video, kid, "v1.first", now())
                .await
                .unwrap(),
            KeyInsert::Inserted,
            "{label}"
        );
        // The same kid again: the stored row wins, nothing is overwritten.
        let KeyInsert::Exists(row) = db
            .insert_key_if_absent(video, kid, "v1.second", now())
            .await
            .unwrap()
        else {
            panic!("{label}: expected Exists");
        };
        assert_eq!(row.content_key, "v1.first");
        assert_eq!(
            db.insert_key_if_absent(other, kid, "v1.third", now())
                .await
                .unwrap(),
            KeyInsert::OtherTitle,
            "{label}"
        );
        assert_eq!(
            db.content_key_by_id(kid).await.unwrap().unwrap().content_id,
            video
        );
        assert!(db
            .content_key_by_id(Uuid::new_v4())
            .await
            .unwrap()
            .is_none());
        // SPEKE keys do not become the title's current key.
        assert_eq!(db.current_key_id(video).await.unwrap(), None);
    }
}

#[tokio::test]
async fn foreign_keys_are_enforced() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let label = t.label;
        // content_keys.content_id references files: a key for no title is refused.
        let err = db
            .insert_key_if_absent(Uuid::new_v4(), Uuid::new_v4(), "v1.x", now())
            .await
            .unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("foreign key"),
            "{label}: {err}"
        );
        // Keys cascade away with their title; the audit trail (no foreign key) stays.
        let video = new_file(&db).await;
        let key = Uuid::new_v4();
        db.insert_content_key(key, video, "v1.x", now())
            .await
            .unwrap();
        db.record_key_event(&KeyEvent {
            actor: "cli",
            action: KeyAction::Seal,
            content_id: Some(video),
            key_id: Some(key),
            backend: "local",
            ok: true,
            detail: None,
        })
        .await
        .unwrap();
        match &db {
            Db::Sqlite(p) => sqlx::query("DELETE FROM files WHERE id = $1")
                .bind(video)
                .execute(p)
                .await
                .map(|_| ()),
            Db::Postgres(p) => sqlx::query("DELETE FROM files WHERE id = $1")
                .bind(video)
                .execute(p)
                .await
                .map(|_| ()),
        }
        .unwrap();
        assert!(
            db.content_key_by_id(key).await.unwrap().is_none(),
            "{label}"
        );
        let trail = db.list_key_events(Some(video), None, 10).await.unwrap();
        assert_eq!(trail.len(), 1, "{label}: the audit outlives the title");
    }
}

#[tokio::test]
async fn audit_records_and_pages() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let label = t.label;
        let video = Uuid::new_v4();
        let other = Uuid::new_v4();
        let base = now();
        for (i, action) in KeyAction::ALL.into_iter().enumerate() {
            let content = if i % 2 == 0 { video } else { other };
            db.record_key_event_at(
                &KeyEvent {
                    actor: "admin:root",
                    action,
                    content_id: Some(content),
                    key_id: Some(Uuid::new_v4()),
                    backend: "local",
                    ok: i != 3,
                    detail: (i == 3).then_some("custody down"),
                },
                base + Duration::seconds(i as i64),
            )
            .await
            .unwrap();
        }
        // A record without ids, and an over-long detail that is cut.
        let long = "d".repeat(MAX_DETAIL_CHARS + 50);
        db.record_key_event(&KeyEvent {
            actor: "edge",
            action: KeyAction::Unwrap,
            content_id: None,
            key_id: None,
            backend: "kms",
            ok: false,
            detail: Some(&long),
        })
        .await
        .unwrap();

        let all = db.list_key_events(None, None, 100).await.unwrap();
        assert_eq!(all.len(), 8, "{label}");
        assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(all[0].actor, "edge");
        assert_eq!(all[0].content_id, None);
        assert_eq!(all[0].detail.as_ref().unwrap().len(), MAX_DETAIL_CHARS);
        let failed = all.iter().find(|e| !e.ok && e.backend == "local").unwrap();
        assert_eq!(
            failed.action.parse::<KeyAction>().unwrap(),
            KeyAction::Rotate
        );
        assert_eq!(failed.detail.as_deref(), Some("custody down"));
        assert_eq!(failed.occurred_at, base + Duration::seconds(3), "{label}");

        // Pages of 3 walk the whole trail without overlap.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = db.list_key_events(None, before, 3).await.unwrap();
            if page.is_empty() {
                break;
            }
            before = page.last().map(|e| e.id);
            seen.extend(page.into_iter().map(|e| e.id));
        }
        assert_eq!(
            seen,
            all.iter().map(|e| e.id).collect::<Vec<_>>(),
            "{label}"
        );

        let mine = db.list_key_events(Some(video), None, 100).await.unwrap();
        assert_eq!(mine.len(), 4, "{label}");
        assert!(mine.iter().all(|e| e.content_id == Some(video)));
        let rest = db
            .list_key_events(Some(video), Some(mine[1].id), 100)
            .await
            .unwrap();
        assert_eq!(rest.len(), 2);
    }
}

#[tokio::test]
async fn migrations_run_twice_and_the_audit_refuses_unknown_actions() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        // sqlx records applied migrations: running them again is a no-op.
        db.migrate().await.unwrap();
        db.migrate().await.unwrap();
        let bad = match &db {
            Db::Sqlite(p) => sqlx::query(
                "INSERT INTO key_audit (occurred_at, actor, action, backend, ok) VALUES ($1, 'x', 'delete', 'local', TRUE)",
            )
            .bind(now())
            .execute(p)
            .await
            .map(|_| ()),
            Db::Postgres(p) => sqlx::query(
                "INSERT INTO key_audit (occurred_at, actor, action, backend, ok) VALUES ($1, 'x', 'delete', 'local', TRUE)",
            )
            .bind(now())
            .execute(p)
            .await
            .map(|_| ()),
        };
        assert!(
            bad.is_err(),
            "{}: the CHECK refuses unknown actions",
            t.label
        );
    }
}

#[tokio::test]
async fn postgres_migration_0003_is_rerunnable_by_hand() {
    let Some(t) = TestDb::postgres().await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "set DATABASE_URL=postgres://... (scripts/test.sh does) to run the Postgres half"
        );
        return;
    };
    let db = t.connect().await;
    let Db::Postgres(pool) = &db else {
        unreachable!()
    };
    let sql = include_str!("../../migrations/postgres/0003_key_lifecycle_and_audit.sql");
    // Applied by migrate() already; every statement is IF NOT EXISTS, so a second run is clean.
    sqlx::raw_sql(sql).execute(pool).await.unwrap();
}

/// Eight writers adding a key to `video` at once, all expecting `expected` as the current key;
/// returns the keys that were added.
async fn race_from(db: &Db, label: &str, video: Uuid, expected: Option<Uuid>) -> Vec<Uuid> {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let key = Uuid::new_v4();
                let outcome = db
                    .add_current_key(video, key, "v1.race", expected, now())
                    .await;
                (key, outcome.unwrap())
            })
        })
        .collect();
    let mut won = vec![];
    for task in tasks {
        match task.await.unwrap() {
            (key, AddKeyOutcome::Added { previous }) => {
                assert_eq!(previous, expected, "{label}");
                won.push(key);
            }
            (_, AddKeyOutcome::Stale { current }) => assert_ne!(current, expected, "{label}"),
            (_, AddKeyOutcome::NoTitle) => panic!("{label}: the title exists"),
        }
    }
    won
}

/// Generate and rotate are a compare-and-set: of writers that expected the same current key,
/// exactly one wins and the others store nothing, on both databases (SQLite: `BEGIN
/// IMMEDIATE`, no `database is locked`; Postgres: the title's row lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_key_changes_have_one_winner_per_starting_key() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let label = t.label;
        let video = new_file(&db).await;
        let first = race_from(&db, label, video, None).await;
        assert_eq!(first.len(), 1, "{label}: one generate wins");
        let second = race_from(&db, label, video, Some(first[0])).await;
        assert_eq!(second.len(), 1, "{label}: one rotation wins");
        assert_eq!(db.current_key_id(video).await.unwrap(), Some(second[0]));
        let keys = db.content_keys_for(video).await.unwrap();
        assert_eq!(keys.len(), 2, "{label}: losers stored nothing");
    }
}
