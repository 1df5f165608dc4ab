//! Repository tests for organizations, projects, membership, tiers, subscriptions and the paged
//! lists: every query on SQLite, and on Postgres when `DATABASE_URL` is postgres:// (each test
//! in its own fresh database). Also: foreign keys are enforced and migrations re-run cleanly.

mod common;

use common::TestDb;
use control_plane::db::files::NewFile;
use control_plane::db::orgs::{is_foreign_key_violation, OrgRole, LAST_OWNER};
use control_plane::db::users::{TierName, TierSettings};
use control_plane::db::{now, Db, DbError};
use uuid::Uuid;

async fn user(db: &Db, id: &str) {
    db.upsert_user(id, None, now()).await.unwrap();
}

#[tokio::test]
async fn organizations_members_and_owners() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let l = t.label;
        for u in ["alice", "bob", "carol"] {
            user(&db, u).await;
        }
        let org = db
            .create_organization_owned("Acme", "alice", now())
            .await
            .unwrap();
        assert_eq!(db.organization(org.id).await.unwrap(), Some(org.clone()));
        assert_eq!(
            db.organization_role(org.id, "alice").await.unwrap(),
            Some(OrgRole::Owner),
            "{l}"
        );
        assert_eq!(db.organization_role(org.id, "bob").await.unwrap(), None);

        db.set_organization_member(org.id, "bob", OrgRole::Member)
            .await
            .unwrap();
        db.set_organization_member(org.id, "carol", OrgRole::Admin)
            .await
            .unwrap();
        // Re-adding changes the role.
        db.set_organization_member(org.id, "bob", OrgRole::Admin)
            .await
            .unwrap();
        assert_eq!(
            db.organization_role(org.id, "bob").await.unwrap(),
            Some(OrgRole::Admin)
        );
        let members = db
            .list_organization_members(org.id, None, 10)
            .await
            .unwrap();
        let got: Vec<_> = members
            .iter()
            .map(|m| (m.user_id.as_str(), m.role.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("alice", "owner"), ("bob", "admin"), ("carol", "admin")],
            "{l}"
        );
        // Keyset paging.
        let page2 = db
            .list_organization_members(org.id, Some("alice"), 10)
            .await
            .unwrap();
        assert_eq!(page2.len(), 2);
        assert_eq!(page2[0].user_id, "bob");

        // The only owner can be neither demoted nor removed.
        let e = db
            .set_organization_member(org.id, "alice", OrgRole::Member)
            .await
            .unwrap_err();
        assert!(matches!(e, DbError::Conflict(LAST_OWNER)), "{l}: {e}");
        let e = db
            .remove_organization_member(org.id, "alice")
            .await
            .unwrap_err();
        assert!(matches!(e, DbError::Conflict(LAST_OWNER)), "{l}: {e}");
        // With a second owner, the first may go.
        db.set_organization_member(org.id, "bob", OrgRole::Owner)
            .await
            .unwrap();
        assert!(db
            .remove_organization_member(org.id, "alice")
            .await
            .unwrap());
        assert!(!db
            .remove_organization_member(org.id, "alice")
            .await
            .unwrap());
        assert!(db.organization_ids("alice").await.unwrap().is_empty());

        // Lists: all organizations, and a user's own with their role.
        let other = db
            .create_organization_owned("Other", "carol", now())
            .await
            .unwrap();
        let all = db.list_organizations(None, 10).await.unwrap();
        assert_eq!(all.len(), 2, "{l}");
        assert!(all[0].id < all[1].id, "ordered by id");
        let after_first = db
            .list_organizations(Some(&all[0].id.to_string()), 10)
            .await
            .unwrap();
        assert_eq!(after_first, vec![all[1].clone()]);
        let carols = db.list_user_organizations("carol", None, 10).await.unwrap();
        assert_eq!(carols.len(), 2);
        let roles: Vec<_> = carols
            .iter()
            .map(|m| (m.organization.id, m.role.as_str()))
            .collect();
        assert!(roles.contains(&(org.id, "admin")) && roles.contains(&(other.id, "owner")));
        let limited = db.list_user_organizations("carol", None, 1).await.unwrap();
        assert_eq!(limited.len(), 1);
    }
}

#[tokio::test]
async fn projects_and_project_members() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let l = t.label;
        for u in ["alice", "bob"] {
            user(&db, u).await;
        }
        let org = db
            .create_organization_owned("Acme", "alice", now())
            .await
            .unwrap();
        let p = db
            .create_project_in(org.id, "Trailer", now())
            .await
            .unwrap();
        assert_eq!(db.project(p.id).await.unwrap(), Some(p.clone()), "{l}");
        // Same name in the same organization → unique violation (API: 409).
        let dup = db
            .create_project_in(org.id, "Trailer", now())
            .await
            .unwrap_err();
        assert!(dup.is_unique_violation(), "{l}: {dup}");
        let q = db
            .create_project_in(org.id, "Feature", now())
            .await
            .unwrap();
        let projects = db.list_projects(org.id, None, 10).await.unwrap();
        assert_eq!(projects.len(), 2);
        let page = db.list_projects(org.id, None, 1).await.unwrap();
        let rest = db
            .list_projects(org.id, Some(&page[0].id.to_string()), 10)
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_ne!(page[0].id, rest[0].id);

        db.set_organization_member(org.id, "bob", OrgRole::Member)
            .await
            .unwrap();
        db.add_project_member(p.id, "bob").await.unwrap();
        db.add_project_member(q.id, "bob").await.unwrap();
        assert!(db.is_project_member(p.id, "bob").await.unwrap());
        assert_eq!(
            db.list_project_members(p.id, None, 10).await.unwrap(),
            vec!["bob".to_string()]
        );
        assert!(db.remove_project_member(p.id, "bob").await.unwrap());
        assert!(!db.remove_project_member(p.id, "bob").await.unwrap());
        assert!(!db.is_project_member(p.id, "bob").await.unwrap());
        // Leaving the organization leaves its projects too.
        assert!(db.remove_organization_member(org.id, "bob").await.unwrap());
        assert!(!db.is_project_member(q.id, "bob").await.unwrap(), "{l}");
    }
}

#[tokio::test]
async fn foreign_keys_are_enforced() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let l = t.label;
        // Unknown owner (no user row).
        let e = db
            .create_organization_owned("Ghost", "nobody", now())
            .await
            .unwrap_err();
        assert!(is_foreign_key_violation(&e), "{l}: {e}");
        // ... and the transaction left nothing behind.
        assert!(db.list_organizations(None, 10).await.unwrap().is_empty());
        user(&db, "alice").await;
        let org = db
            .create_organization_owned("Acme", "alice", now())
            .await
            .unwrap();
        let e = db
            .set_organization_member(org.id, "nobody", OrgRole::Member)
            .await
            .unwrap_err();
        assert!(is_foreign_key_violation(&e), "{l}: {e}");
        let e = db
            .set_organization_member(Uuid::new_v4(), "alice", OrgRole::Member)
            .await
            .unwrap_err();
        assert!(is_foreign_key_violation(&e), "{l}: {e}");
        let e = db
            .create_project_in(Uuid::new_v4(), "Orphan", now())
            .await
            .unwrap_err();
        assert!(is_foreign_key_violation(&e), "{l}: {e}");
        let e = db
            .add_project_member(Uuid::new_v4(), "alice")
            .await
            .unwrap_err();
        assert!(is_foreign_key_violation(&e), "{l}: {e}");
    }
}

#[tokio::test]
async fn migrations_rerun_cleanly() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        // Applied once by connect(); a second and third run are no-ops.
        db.migrate().await.unwrap();
        db.migrate().await.unwrap();
        // The seeded tiers are still there exactly once.
        let tiers = db.list_tiers(None, 100).await.unwrap();
        let names: Vec<_> = tiers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["enterprise", "free", "pro"], "{}", t.label);
    }
}

#[tokio::test]
async fn users_tiers_and_subscriptions() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let l = t.label;
        for u in ["u3", "u1", "u2"] {
            user(&db, u).await;
        }
        let users = db.list_users(None, 2).await.unwrap();
        let ids: Vec<_> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, vec!["u1", "u2"], "{l}");
        let rest = db.list_users(Some("u2"), 10).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, "u3");

        let settings = TierSettings {
            name: "studio".into(),
            max_concurrent_streams: 5,
            can_use_drm: true,
            price_monthly_cents: 4999,
            license_duration_secs: 7200,
            persistent_licenses: false,
        };
        let studio = db.create_tier(&settings).await.unwrap();
        assert_eq!(studio.name, "studio");
        assert_eq!(db.tier(studio.id).await.unwrap(), Some(studio.clone()));
        let dup = db.create_tier(&settings).await.unwrap_err();
        assert!(dup.is_unique_violation(), "{l}: {dup}");
        let mut changed = settings.clone();
        changed.price_monthly_cents = 3999;
        changed.persistent_licenses = true;
        let updated = db.update_tier(studio.id, &changed).await.unwrap().unwrap();
        assert_eq!(
            (updated.price_monthly_cents, updated.persistent_licenses),
            (3999, true)
        );
        assert_eq!(
            db.update_tier(Uuid::new_v4(), &changed).await.unwrap(),
            None
        );
        changed.name = "pro".into();
        let clash = db.update_tier(studio.id, &changed).await.unwrap_err();
        assert!(clash.is_unique_violation(), "{l}: {clash}");
        let page = db.list_tiers(Some("free"), 10).await.unwrap();
        let names: Vec<_> = page.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["pro", "studio"], "{l}");

        assert_eq!(db.active_subscription("u1").await.unwrap(), None);
        db.subscribe("u1", TierName::Pro, now()).await.unwrap();
        let sub = db.active_subscription("u1").await.unwrap().unwrap();
        assert_eq!(
            (sub.tier.name.as_str(), sub.status.as_str()),
            ("pro", "active")
        );
        assert_eq!(sub.expires_at, None);
    }
}

#[tokio::test]
async fn owned_files_and_jobs_lists() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let l = t.label;
        user(&db, "alice").await;
        user(&db, "bob").await;
        let mut ids = vec![];
        for i in 0..3 {
            let id = Uuid::new_v4();
            let name = format!("clip{i}.mp4");
            db.insert_file(
                &NewFile {
                    id,
                    owner_id: "alice",
                    name: &name,
                    mime_type: "video/mp4",
                    size_bytes: 10,
                    storage_path: "/tmp/x",
                },
                now(),
            )
            .await
            .unwrap();
            ids.push(id);
        }
        ids.sort();
        let first = db.list_owned_files("alice", None, 2).await.unwrap();
        assert_eq!(
            first.iter().map(|f| f.id).collect::<Vec<_>>(),
            ids[..2].to_vec(),
            "{l}"
        );
        let rest = db
            .list_owned_files("alice", Some(&ids[1].to_string()), 10)
            .await
            .unwrap();
        assert_eq!(rest.iter().map(|f| f.id).collect::<Vec<_>>(), vec![ids[2]]);
        assert!(db
            .list_owned_files("bob", None, 10)
            .await
            .unwrap()
            .is_empty());

        let job = db
            .create_job(ids[0], false, "none", "/tmp/in", "out/", now())
            .await
            .unwrap();
        let all = db.list_jobs(None, None, 10).await.unwrap();
        assert_eq!(all.len(), 1, "{l}");
        assert_eq!(all[0].id, job.id);
        assert_eq!(
            db.list_jobs(Some("processing"), None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(db
            .list_jobs(Some("failed"), None, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(db
            .list_jobs(None, Some(&job.id.to_string()), 10)
            .await
            .unwrap()
            .is_empty());
    }
}
