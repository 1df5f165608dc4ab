//! Benchmarks live in `benches/`; this crate has no library code of its own. See `README.md`
//! for the method, the machine and the latest figures.
