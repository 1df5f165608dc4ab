//! The edge token checks as a proxy-wasm filter. `config` and `decide` are pure and tested
//! natively; `filter` (wasm32 only) is the proxy-wasm glue.

pub mod config;
pub mod decide;

#[cfg(target_arch = "wasm32")]
mod filter;
