//! May they: entitlements ([`entitlements`], cached L1/L2 in front of the control plane), the
//! per-user rate and concurrent-stream limits ([`limits`]), and the admission of an
//! authenticated viewer to a title ([`grant`]: [`Access`] turns them into a [`Grant`]).

pub mod entitlements;
pub mod grant;
pub mod limits;

pub use grant::{Access, Grant};
