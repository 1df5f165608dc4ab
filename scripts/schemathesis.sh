#!/usr/bin/env bash
# Runs Schemathesis (PyPI schemathesis) against a running control plane's /openapi.json: no 5xx,
# every documented response matches its schema, every status is documented.
#
# Starts the debug control plane binary on a free loopback port with a throwaway configuration:
# SQLite database, secrets, uploads and origin all in a temporary directory (removed on exit),
# uploads capped at 1 MiB so generated multipart bodies stay small. Credentials: an admin JWT
# from `control-plane token --admin` for the `bearer` scheme, the generated service token for
# `edge_token` and the SPEKE credential for `speke`; written to a 0600 config file in the temp
# directory, never printed.
#
# ST_DATABASE_URL=postgres://… runs it against an (empty, dedicated) Postgres database instead.
# Bounded: ST_MAX_EXAMPLES examples per operation (default 25), ST_MAX_TIME seconds in all
# (default 240). Reports (JUnit and the failures as pytest code) go to $ST_REPORT_DIR
# (default target/schemathesis). Extra arguments go to `schemathesis run` (e.g.
# `--include-path /tiers`). Needs the binary built first (`cargo build -p control-plane`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packager   # the control plane checks transcode.packager at start-up

ensure_schemathesis
CP="${CARGO_TARGET_DIR:-target}/debug/control-plane"
[ -x "$CP" ] || { echo "build the control plane first: cargo build -p control-plane" >&2; exit 1; }

tmp="$(mktemp -d)"
chmod 700 "$tmp"
cp_pid=""
cleanup() {
  if [ -n "$cp_pid" ]; then kill "$cp_pid" 2>/dev/null || true; wait "$cp_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
secrets="$tmp/secrets"
cat >"$tmp/cp.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
edge_public_url = "http://127.0.0.1:1"
[database]
url = "${ST_DATABASE_URL:-sqlite://$tmp/cp.db?mode=rwc}"
max_connections = 4
[storage]
uploads_dir = "$tmp/uploads"
origin_dir = "$tmp/origin"
max_upload_bytes = 1048576
[jwt]
hs256_secret_file = "$secrets/jwt-hs256.key"
issuer = "schemathesis"
audience = "streaming-edge"
[keys]
backend = "local"
master_key_file = "$secrets/master.key"
[internal]
service_token_file = "$secrets/service-token"
key_transport_key_file = "$secrets/key-transport.key"
[signed_urls]
signing_key_file = "$secrets/url-signing.key"
[speke]
enabled = true
credential_file = "$tmp/speke-credential"
TOML
(umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' >"$tmp/speke-credential")

"$CP" --config "$tmp/cp.toml" init-secrets --dir "$secrets" >/dev/null
"$CP" --config "$tmp/cp.toml" serve >"$tmp/control-plane.log" 2>&1 &
cp_pid=$!
base="http://127.0.0.1:$port"
wait_http "$base/health" 60 || { tail -30 "$tmp/control-plane.log"; exit 1; }

admin_jwt="$("$CP" --config "$tmp/cp.toml" token --sub schemathesis-admin --admin --ttl-secs 3600)"
service_token="$(cat "$secrets/service-token")"
speke_token="$(cat "$tmp/speke-credential")"
umask 077
cat >"$tmp/schemathesis.toml" <<TOML
[auth.openapi.bearer]
bearer = "$admin_jwt"
[auth.openapi.edge_token]
bearer = "$service_token"
[auth.openapi.speke]
bearer = "$speke_token"
TOML

report_dir="${ST_REPORT_DIR:-${CARGO_TARGET_DIR:-target}/schemathesis}"
mkdir -p "$report_dir"
report_dir="$(cd "$report_dir" && pwd)"
log "schemathesis against $base/openapi.json (≤ ${ST_MAX_EXAMPLES:-25} examples/operation, ≤ ${ST_MAX_TIME:-240}s)"
status=0
# Run from the temp directory: Schemathesis keeps a `.schemathesis/` cache in its working
# directory, which must not land in the repository.
(cd "$tmp" && "$SCHEMATHESIS_BIN" --config-file "$tmp/schemathesis.toml" run "$base/openapi.json" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "${ST_MAX_EXAMPLES:-25}" \
  --max-time "${ST_MAX_TIME:-240}" \
  --seed "${ST_SEED:-20261121}" \
  --workers 2 \
  --request-timeout 20 \
  --generation-database none \
  --report junit,pytest --report-dir "$report_dir" \
  --no-color "$@") || status=$?
if grep -q "panicked" "$tmp/control-plane.log"; then
  log "the control plane panicked during the run:"
  grep -A5 "panicked" "$tmp/control-plane.log" | head -40
  status=1
fi
if [ "$status" != 0 ]; then
  log "schemathesis failed (reports in $report_dir); last control-plane log lines:"
  tail -20 "$tmp/control-plane.log"
fi
exit "$status"
