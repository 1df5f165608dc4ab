//! The application: the one place the edge is assembled ([`build`]: configuration sections
//! and secrets in, parts out), its secrets ([`secrets`]), its background work ([`tasks`]), and
//! the control plane's invalidations applied to the caches of two layers ([`invalidation`]), and
//! where it listens ([`listeners`]: plain HTTP, HTTPS, certificate reloads).

pub mod build;
pub mod invalidation;
pub mod listeners;
pub mod secrets;
pub mod tasks;

pub use build::App;
