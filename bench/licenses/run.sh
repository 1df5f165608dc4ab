#!/usr/bin/env bash
# License latency and throughput at the edge, end to end on loopback: a control plane (SQLite),
# Redis and two edges sharing it (release builds; debug ones with --smoke), TITLES titles
# imported with their own keys, then the load driver (bench/examples/license_load.rs): the cold
# path (full miss on edge A, L2 hit on edge B, one request per title), then warm ClearKey,
# AES-128 and FairPlay (RSA-1024 on A, RSA-2048 on B) at each CONCURRENCY, and a table of req/s
# and latency percentiles.
#
#   bench/licenses/run.sh                          # 200 titles, 5 s per row at 1, 8, 32 connections
#   TITLES=50 DURATION=10 CONCURRENCY=1,8,64 bench/licenses/run.sh
#   bench/licenses/run.sh --smoke                  # debug binaries, a few requests per scenario;
#                                                  # exits non-zero if any request fails
#
# The per-user rate limit is off (drm.rate_limit_per_sec = 0): one viewer sends everything, and
# the limiter is not what is measured. Entitlements are cached 300 s (the issue's default TTL)
# so no warm row sees one expire. Everything else is the edge's defaults: 2 worker threads,
# events to a Redis Stream, the license outbox replayed to the control plane, JSON logs at info.
# Redis: a private redis-server on a free port, or REDIS_URL (then keys live under a unique
# prefix and are deleted at the end). Every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
ensure_packager   # the control plane checks transcode.packager at start-up
REPO=$PWD

MODE=bench
case "${1:-}" in
  "") ;;
  --smoke) MODE=smoke ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

if [ "$MODE" = smoke ]; then
  TITLES=${TITLES:-4}
  PROFILE=debug
else
  TITLES=${TITLES:-200}
  PROFILE=release
fi
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONCURRENCY=${CONCURRENCY:-1,8,32}
CLIENT_THREADS=${CLIENT_THREADS:-1}
BIN="$CARGO_TARGET_DIR/$PROFILE"

if [ "$MODE" = smoke ]; then
  # The same feature set as `cargo test --workspace`, so after scripts/test.sh's build and test
  # steps this compiles nothing.
  log "building (debug): edge-proxy, control-plane, the load driver"
  cargo build -q --workspace --bins --examples
else
  # Two invocations: the driver enables playback's `test-support` (the FairPlay test device),
  # which must not end up in the edge binary being measured.
  log "building release binaries (slow the first time)"
  cargo build -q --release -p edge-proxy -p control-plane --bins
  cargo build -q --release -p bench --example license_load
fi
DRIVER="$BIN/examples/license_load"
for exe in "$BIN/edge-proxy" "$BIN/control-plane" "$DRIVER"; do
  [ -x "$exe" ] || { echo "missing $exe" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/license-bench.XXXXXX)
PREFIX="license-bench-$$-$(date +%s):"
PIDS=()
REDIS_PID=""
SHARED_REDIS=""
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi
  if [ -n "$SHARED_REDIS" ]; then
    redis-cli -u "$SHARED_REDIS" --scan --pattern "${PREFIX}*" 2>/dev/null \
      | xargs -r -n 500 redis-cli -u "$SHARED_REDIS" del >/dev/null 2>&1 || true
  fi
  wait 2>/dev/null || true
  if [ "$status" != 0 ]; then
    for f in "$WORK"/*.log; do
      [ -f "$f" ] || continue
      echo "---- last lines of $(basename "$f") ----" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Redis: a private server unless REDIS_URL names one.
if [ -n "${REDIS_URL:-}" ]; then
  SHARED_REDIS=$REDIS_URL
else
  ensure_apt "redis-server redis-cli" redis-server
  REDIS_PORT=$(free_port)
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$WORK" >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
fi

CP_PORT=$(free_port)
EDGE_A_PORT=$(free_port)
EDGE_B_PORT=$(free_port)
VIEWER="bench-viewer@example.com"
SESSION="bench-session-1"

# The control plane runs in $WORK with the dev config, SQLite and these overrides; the CLI's
# logs go to setup.log.
CP_ENV=(env -u DATABASE_URL
  CP_SERVER__LISTEN="127.0.0.1:$CP_PORT"
  CP_SERVER__EDGE_PUBLIC_URL="http://127.0.0.1:$EDGE_A_PORT"
  CP_REDIS__URL="$REDIS_URL" CP_REDIS__KEY_PREFIX="$PREFIX"
  "$BIN/control-plane" --config "$REPO/config/control-plane.dev.toml")
cp_cli() { (cd "$WORK" && exec "${CP_ENV[@]}" "$@"); }

log "setting up $WORK: secrets, $TITLES titles with their own keys, a pro viewer"
cp_cli init-secrets --dir data/secrets >/dev/null 2>>"$WORK/setup.log"
mkdir -p "$WORK/title" "$WORK/keys"
printf '#EXTM3U\n' >"$WORK/title/master.m3u8"
: >"$WORK/titles.tsv"
for i in $(seq 1 "$TITLES"); do
  key_id=$(cat /proc/sys/kernel/random/uuid)
  key_hex=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  (umask 077; printf '%s' "$key_hex" >"$WORK/keys/key.hex")
  imported=$(cp_cli import --owner "$VIEWER" --dir "$WORK/title" --name "bench title $i" \
    --drm --key-id "$key_id" --key-file "$WORK/keys/key.hex" 2>>"$WORK/setup.log")
  video_id=$(printf '%s' "$imported" | sed -n 's/.*"videoId":"\([^"]*\)".*/\1/p')
  [ -n "$video_id" ] || { echo "import printed no videoId: $imported" >&2; exit 1; }
  printf '%s %s %s\n' "$video_id" "$key_id" "$key_hex" >>"$WORK/titles.tsv"
done
rm -f "$WORK/keys/key.hex"
cp_cli subscribe --user "$VIEWER" --tier pro >/dev/null 2>>"$WORK/setup.log"
cp_cli token --sub "$VIEWER" --ttl-secs 3600 >"$WORK/viewer.jwt" 2>>"$WORK/setup.log"

log "starting the control plane and two edges (Redis $REDIS_URL, prefix $PREFIX)"
# `exec` in a subshell: `$!` is the server itself, so the cleanup stops it.
(cd "$WORK" && exec "${CP_ENV[@]}" serve) >"$WORK/control-plane.log" 2>&1 &
PIDS+=($!)

FPS="$REPO/playback/src/license/fairplay/testdata"
printf 'test-only-ask!!!' | od -An -tx1 | tr -d ' \n' >"$WORK/fps-ask.hex"
# edge_config NAME PORT FPS_BITS
edge_config() {
  cat <<TOML
[server]
listen = "127.0.0.1:$2"
public_base_url = "http://127.0.0.1:$2"

[control_plane]
url = "http://127.0.0.1:$CP_PORT"

[redis]
url = "$REDIS_URL"
key_prefix = "$PREFIX"

[cache]
entitlement_ttl_secs = 300

[drm]
rate_limit_per_sec = 0
license_outbox_dir = "data/outbox-$1"
events_file = "data/events-$1.jsonl"

[drm.fairplay]
certificate_file = "$FPS/test_fps_$3_cert.der"
private_key_file = "$FPS/test_fps_$3_key.pem"
ask_file = "$WORK/fps-ask.hex"
TOML
}
edge_config a "$EDGE_A_PORT" 1024 >"$WORK/edge-a.toml"
edge_config b "$EDGE_B_PORT" 2048 >"$WORK/edge-b.toml"
for name in a b; do
  (cd "$WORK" && exec "$BIN/edge-proxy" --config "$WORK/edge-$name.toml") >"$WORK/edge-$name.log" 2>&1 &
  PIDS+=($!)
done
wait_http "http://127.0.0.1:$CP_PORT/health" 60
wait_http "http://127.0.0.1:$EDGE_A_PORT/ready" 60
wait_http "http://127.0.0.1:$EDGE_B_PORT/ready" 60

log "load: $MODE"
args=(--edge-a "http://127.0.0.1:$EDGE_A_PORT" --edge-b "http://127.0.0.1:$EDGE_B_PORT"
  --jwt-file "$WORK/viewer.jwt" --signing-key-file "$WORK/data/secrets/url-signing.key"
  --titles "$WORK/titles.tsv" --session "$SESSION" --user "$VIEWER"
  --duration-secs "$DURATION" --warmup-secs "$WARMUP" --concurrency "$CONCURRENCY"
  --client-threads "$CLIENT_THREADS")
[ "$MODE" = smoke ] && args+=(--smoke)
# In the background so a signal to this script stops it too (the trap runs while `wait` waits).
"$DRIVER" "${args[@]}" >"$WORK/results.md" &
PIDS+=($!)
status=0
wait "$!" || status=$?
cat "$WORK/results.md"
[ "$status" = 0 ] || { echo "the load driver failed (exit $status)" >&2; exit "$status"; }

if [ "$MODE" = bench ]; then
  printf '\nmachine: %s x %s, load average %s; %s\n' "$(nproc)" \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$(rustc --version)"
fi
