//! What every layer above shares: the clock ([`clock`]), errors and their reason codes
//! ([`errors`]), the shapes of outside ids ([`ids`]), Prometheus metrics ([`metrics`]) and the
//! Redis link ([`redis`]).

pub mod clock;
pub mod errors;
pub mod ids;
pub mod metrics;
pub mod redis;
