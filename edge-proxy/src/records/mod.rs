//! What the edge writes down: every license it issues, durably ([`ledger`]: a local outbox
//! replayed to the control plane's `media_licenses`), and playback events, best effort
//! ([`analytics`]: a Redis Stream or a JSON-lines file).
//!
//! [`Records::record_license`] is the one step every license and key takes once it is built:
//! appended to the outbox (a license that cannot be recorded is not issued), counted and
//! announced as `LicenseIssued`.

pub mod analytics;
pub mod ledger;

use std::sync::Arc;

use analytics::{Analytics, Event};
use ledger::{LicenseLedger, LicenseRecord};

use crate::access::Grant;
use crate::core::clock::Now;
use crate::core::errors::EdgeError;
use crate::core::metrics::Metrics;

/// A license that was recorded and may be sent.
#[derive(Debug, Clone)]
pub struct Issued {
    pub license_id: String,
    pub expires_at: u64,
}

/// The ledger and the event bus; one per process.
pub struct Records {
    pub ledger: Arc<LicenseLedger>,
    pub analytics: Analytics,
    pub metrics: Arc<Metrics>,
}

/// A fresh license id (a UUID, the `media_licenses` primary key).
pub fn new_license_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Records {
    /// Records the license `grant` is about to receive from `system` (its label), carrying
    /// `key_id`, issued `now`: outbox, metrics, event. A license that cannot be
    /// recorded is not issued.
    pub fn record_license(
        &self,
        grant: &Grant,
        system: &'static str,
        key_id: Option<&str>,
        license_id: String,
        now: Now,
    ) -> Result<Issued, EdgeError> {
        let now_unix = now.unix;
        let expires_at = grant.terms.license.expires_at(now_unix);
        let record = LicenseRecord {
            id: license_id.clone(),
            video_id: grant.video_id.clone(),
            user_id: grant.user_id.clone(),
            key_id: key_id.map(str::to_string),
            drm_system: system.to_string(),
            license_type: grant.terms.license.kind.as_str().to_string(),
            issued_at: now_unix,
            expires_at,
            device_id: grant.device_id.clone(),
        };
        if let Err(e) = self.ledger.record(record) {
            tracing::error!(error = %e, "license outbox unwritable; license refused");
            return Err(EdgeError::LicenseRecordUnavailable);
        }
        self.metrics.license_issued(system);
        self.analytics.emit(Event::license_issued(
            now.unix_ms,
            &grant.user_id,
            &grant.video_id,
            &grant.stream_id,
            &license_id,
            system,
        ));
        Ok(Issued {
            license_id,
            expires_at,
        })
    }
}
