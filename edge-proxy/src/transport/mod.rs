//! The connection before HTTP: the HTTPS listener's certificates chosen by SNI and reloaded
//! without a restart ([`certificates`]), client certificates read from the handshake
//! ([`client_certificates`]), who may use each route group ([`perimeter`]), and addresses
//! dropped before any handshake ([`connection_filter`]).

pub mod certificates;
pub mod client_certificates;
pub mod connection_filter;
pub mod perimeter;
