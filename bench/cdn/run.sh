#!/usr/bin/env bash
# The edge beside nginx as a CDN node, and the edge's other request kinds, on one machine with
# the same load tool (wrk) at the same concurrency. Prints req/s, p50 and p99 per row:
#
#   1. segments with a token check, cache hit, small (20 KiB) and large (2 MiB): the loopback
#      ceiling; nginx (secure_link + proxy_cache hit); the edge with an HTTP origin + its segment
#      cache, pulling from the SAME nginx origin server block as nginx's proxy_cache; the edge
#      with a directory origin (the embedded default) on the same files. Ratios edge/nginx here.
#   2. media playlists with per-viewer rewriting (a VOD playlist of VOD_SEGMENTS segments and a
#      live window of 6) on the edge; nginx serving the same static files with secure_link as a
#      reference only: no rewrite, not the same work, no ratio.
#   3. the AES-128 key (GET /keys/{v}/{kid}?hdnts=) and a ClearKey license (POST
#      /drm/clearkey/{v}), warm, on the edge.
#   4. manifest minting (GET /playback/{v}/manifest with a viewer JWT: JWT verify + session
#      token sign), entitlement warm in the edge's cache.
#
#   bench/cdn/run.sh                                  # release build, 10 s per row, 64 connections
#   DURATION=30s CONNECTIONS=128 bench/cdn/run.sh
#   bench/cdn/run.sh --smoke                          # debug binaries (PROFILE=release to reuse
#                                                     # release ones), 1 s per row, 8 connections;
#                                                     # exits non-zero on any non-2xx or check
#                                                     # (scripts/test.sh runs it)
#   PERF=1 bench/cdn/run.sh                           # also `perf record -g` the edge during its
#                                                     # rows and print where its time goes
#   ROWS=segments bench/cdn/run.sh                    # only some groups: segments, playlists,
#                                                     # keys, manifest (comma-separated)
#
# - the control plane (SQLite, the dev config; `control-plane import --drm` records the title
#   with a random AES key, the viewer gets the pro tier and a JWT), as bench/licenses/run.sh
#   starts it. No Redis: one edge, events to a file (bench/licenses/run.sh measures the
#   Redis-backed license paths with two edges).
# - the edges: `server.threads = 2`, the URL-signing key of the control plane, an EdgeAuth
#   session token (bench/examples/mint_session_token.rs, as the edge mints it after a master
#   playlist) in `?hdnts=`, `drm.rate_limit_per_sec = 0` (one viewer sends everything).
# - nginx (Debian's, installed with apt if missing): `worker_processes 2`, secure_link +
#   secure_link_md5 (md5 token and expiry in the query) on /hls/, proxy_cache in front of a
#   second nginx server block (the origin) serving the title folder, warmed so every measured
#   request is a cache hit (bench/cdn/nginx.conf.template).
# - the ceiling: bench/examples/loopback_ceiling.rs, 2 tokio worker threads, no token check.
#
# Segments are random bytes (urandom), not video: nothing here decodes them. Every process
# started here is stopped on exit.
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
  PROFILE=${PROFILE:-debug}
  DURATION=${DURATION:-1s}
  WARMUP=${WARMUP:-0}
  CONNECTIONS=${CONNECTIONS:-8}
else
  PROFILE=${PROFILE:-release}
  DURATION=${DURATION:-10s}
  WARMUP=${WARMUP:-2s}
  CONNECTIONS=${CONNECTIONS:-64}
fi
THREADS=${THREADS:-2}
SERVER_THREADS=2
SMALL_BYTES=${SMALL_BYTES:-20480}
LARGE_BYTES=${LARGE_BYTES:-2097152}
# A two-hour VOD title at 6 s segments; the live window is what a live playlist usually holds.
VOD_SEGMENTS=${VOD_SEGMENTS:-1200}
LIVE_SEGMENTS=6
ROWS=${ROWS:-segments,playlists,keys,manifest}
VIEWER="bench@example.com"
SESSION="bench0000bench0000bench0000bench"
BIN="$CARGO_TARGET_DIR/$PROFILE"

wants() { case ",$ROWS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for group in ${ROWS//,/ }; do
  case "$group" in
    segments | playlists | keys | manifest) ;;
    *) echo "ROWS: unknown group '$group' (segments, playlists, keys, manifest)" >&2; exit 2 ;;
  esac
done

ensure_apt "nginx" nginx
ensure_apt "wrk" wrk
ensure_apt "curl" curl

if [ "$PROFILE" = release ]; then
  # Two invocations, so the edge measured does not carry the bench crate's dev features
  # (playback's `test-support`).
  log "building release binaries (slow the first time)"
  cargo build -q --release -p edge-proxy -p control-plane --bins
  cargo build -q --release -p bench --example loopback_ceiling --example mint_session_token
else
  # The same feature set as `cargo test --workspace` (and bench/licenses/run.sh --smoke), so
  # after scripts/test.sh's build and test steps this compiles nothing.
  log "building (debug): edge-proxy, control-plane, the ceiling server, the token minter"
  cargo build -q --workspace --bins --examples
fi
for exe in "$BIN/edge-proxy" "$BIN/control-plane" "$BIN/examples/loopback_ceiling" \
  "$BIN/examples/mint_session_token"; do
  [ -x "$exe" ] || { echo "missing $exe" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/cdn-bench.XXXXXX)
PIDS=()
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
  wait 2>/dev/null || true
  if [ "$status" != 0 ]; then
    for f in "$WORK"/*.log "$WORK"/nginx/error.log; do
      [ -f "$f" ] || continue
      echo "---- last lines of $f ----" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
fail() { echo "check failed: $*" >&2; exit 1; }

CP_PORT=$(free_port)
EDGE_PORT=$(free_port)
EDGE_DIR_PORT=$(free_port)
NGINX_PORT=$(free_port)
ORIGIN_PORT=$(free_port)
CEILING_PORT=$(free_port)

# ---- the title: segments, playlists naming an AES-128 key, recorded by the control plane ----
log "preparing content in $WORK: segments of $SMALL_BYTES and $LARGE_BYTES random bytes, playlists"
KEY_ID=$(cat /proc/sys/kernel/random/uuid)
KEY_HEX=$(random_hex 16)
SRC="$WORK/title"
mkdir -p "$SRC/720p" "$WORK/ceiling" "$WORK/keys"
head -c "$SMALL_BYTES" /dev/urandom >"$SRC/720p/small.ts"
head -c "$LARGE_BYTES" /dev/urandom >"$SRC/720p/large.ts"
# The first segment the playlists name exists, so the check can follow a rewritten URI.
cp "$SRC/720p/small.ts" "$SRC/720p/seg_00000.ts"
cp "$SRC/720p/small.ts" "$SRC/720p/large.ts" "$WORK/ceiling/"
printf '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\n720p/index.m3u8\n' \
  >"$SRC/master.m3u8"
# media_playlist SEGMENTS VOD|LIVE: as ffmpeg writes an AES-128 rendition; the key URI's last
# segment is the key id, which the edge points at its key endpoint.
media_playlist() {
  printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n'
  [ "$2" = VOD ] && printf '#EXT-X-PLAYLIST-TYPE:VOD\n'
  printf '#EXT-X-KEY:METHOD=AES-128,URI="%s",IV=0x00000000000000000000000000000001\n' "$KEY_ID"
  local i
  for ((i = 0; i < $1; i++)); do printf '#EXTINF:6.006000,\nseg_%05d.ts\n' "$i"; done
  if [ "$2" = VOD ]; then printf '#EXT-X-ENDLIST\n'; fi
}
media_playlist "$VOD_SEGMENTS" VOD >"$SRC/720p/index.m3u8"
media_playlist "$LIVE_SEGMENTS" LIVE >"$SRC/720p/live.m3u8"

# The control plane runs in $WORK with the dev config and SQLite; the edges read the secrets
# init-secrets writes under data/secrets (their defaults, relative to $WORK).
CP_ENV=(env -u DATABASE_URL
  CP_SERVER__LISTEN="127.0.0.1:$CP_PORT"
  CP_SERVER__EDGE_PUBLIC_URL="http://127.0.0.1:$EDGE_PORT"
  "$BIN/control-plane" --config "$REPO/config/control-plane.dev.toml")
cp_cli() { (cd "$WORK" && exec "${CP_ENV[@]}" "$@"); }

log "recording the title (control-plane import --drm), a pro viewer and their JWT"
cp_cli init-secrets --dir data/secrets >/dev/null 2>>"$WORK/setup.log"
(umask 077; printf '%s' "$KEY_HEX" >"$WORK/keys/key.hex")
imported=$(cp_cli import --owner "$VIEWER" --dir "$SRC" --name "cdn bench title" \
  --drm --key-id "$KEY_ID" --key-file "$WORK/keys/key.hex" 2>>"$WORK/setup.log")
rm -f "$WORK/keys/key.hex"
VIDEO=$(printf '%s' "$imported" | sed -n 's/.*"videoId":"\([^"]*\)".*/\1/p')
[ -n "$VIDEO" ] || fail "import printed no videoId: $imported"
ORIGIN_DIR="$WORK/data/origin"
TITLE="$ORIGIN_DIR/$VIDEO"
[ -f "$TITLE/720p/large.ts" ] || fail "the import did not copy the title to $TITLE"
cp_cli subscribe --user "$VIEWER" --tier pro >/dev/null 2>>"$WORK/setup.log"
JWT=$(cp_cli token --sub "$VIEWER" --ttl-secs 3600 2>>"$WORK/setup.log")
SIGNING_HEX=$(od -An -tx1 "$WORK/data/secrets/url-signing.key" | tr -d ' \n')
EDGE_TOKEN=$("$BIN/examples/mint_session_token" "$SIGNING_HEX" "$VIDEO" 3600 "$VIEWER" "$SESSION")
unset SIGNING_HEX
# nginx workers run as an unprivileged user unless told otherwise; they read the origin folder
# and write the cache under $WORK.
chmod 755 "$WORK" "$WORK/data"

# ---- the edges: HTTP origin (+ segment cache) and directory origin ----
# edge_config NAME PORT: the [origin] section follows
edge_config() {
  cat <<TOML
[server]
listen = "127.0.0.1:$2"
public_base_url = "http://127.0.0.1:$2"
threads = $SERVER_THREADS

[control_plane]
url = "http://127.0.0.1:$CP_PORT"

[drm]
rate_limit_per_sec = 0
license_outbox_dir = "data/outbox-$1"
events_file = "data/events-$1.jsonl"

TOML
}
{
  edge_config http "$EDGE_PORT"
  printf '[origin]\nkind = "http"\nurl = "http://127.0.0.1:%s/hls"\n' "$ORIGIN_PORT"
} >"$WORK/edge-http.toml"
{
  edge_config dir "$EDGE_DIR_PORT"
  printf '[origin]\nkind = "directory"\ndirectory = "%s"\n' "$ORIGIN_DIR"
} >"$WORK/edge-dir.toml"

# ---- nginx: its prefix, config and secret under $WORK ----
NGINX_SECRET=$(random_hex 16)
mkdir -p "$WORK/nginx/tmp" "$WORK/nginx/cache"
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root root;"
sed -e "s|@PREFIX@|$WORK/nginx|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
  -e "s|@ORIGIN_DIR@|$ORIGIN_DIR|g" -e "s|@SECRET@|$NGINX_SECRET|g" -e "s|@USER_LINE@|$USER_LINE|g" \
  bench/cdn/nginx.conf.template >"$WORK/nginx/nginx.conf"
# secure_link_md5 "$secure_link_expires$uri $secret", base64url without padding
nginx_query() { # URI -> md5=...&expires=...
  python3 - "$1" "$NGINX_SECRET" <<'PY'
import base64, hashlib, sys, time
uri, secret = sys.argv[1:]
expires = int(time.time()) + 3600
digest = hashlib.md5(f"{expires}{uri} {secret}".encode()).digest()
print(f"md5={base64.urlsafe_b64encode(digest).decode().rstrip('=')}&expires={expires}")
PY
}

log "starting nginx, the control plane, two edges and the ceiling server"
# `exec` in a subshell: `$!` is the server itself, so the cleanup stops it.
nginx -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)
(cd "$WORK" && exec "${CP_ENV[@]}" serve) >"$WORK/control-plane.log" 2>&1 &
PIDS+=($!)
(cd "$WORK" && exec "$BIN/edge-proxy" --config "$WORK/edge-http.toml") >"$WORK/edge-http.log" 2>&1 &
EDGE_PID=$!
PIDS+=($!)
(cd "$WORK" && exec "$BIN/edge-proxy" --config "$WORK/edge-dir.toml") >"$WORK/edge-dir.log" 2>&1 &
EDGE_DIR_PID=$!
PIDS+=($!)
"$BIN/examples/loopback_ceiling" "127.0.0.1:$CEILING_PORT" "$WORK/ceiling" "$SERVER_THREADS" \
  >"$WORK/ceiling.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$ORIGIN_PORT/hls/" 30
wait_http "http://127.0.0.1:$CP_PORT/health" 60
wait_http "http://127.0.0.1:$EDGE_PORT/ready" 60
wait_http "http://127.0.0.1:$EDGE_DIR_PORT/ready" 60
wait_http "http://127.0.0.1:$CEILING_PORT/small.ts" 30

# url SERVER PATH -> the URL wrk and curl fetch (PATH under /hls/{video}/)
url() {
  local path="/hls/$VIDEO/$2"
  case "$1" in
    edge) echo "http://127.0.0.1:$EDGE_PORT$path?hdnts=$EDGE_TOKEN" ;;
    edge-dir) echo "http://127.0.0.1:$EDGE_DIR_PORT$path?hdnts=$EDGE_TOKEN" ;;
    nginx) echo "http://127.0.0.1:$NGINX_PORT$path?$(nginx_query "$path")" ;;
    ceiling) echo "http://127.0.0.1:$CEILING_PORT$path" ;;
  esac
}
KEY_URL="http://127.0.0.1:$EDGE_PORT/keys/$VIDEO/$KEY_ID?hdnts=$EDGE_TOKEN"
status_of() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
cache_status() { # URL [curl args] -> the X-Cache-Status header's value, empty when absent
  curl -s -o /dev/null -D - "$@" | tr -d '\r' | sed -n 's/^[Xx]-[Cc]ache-[Ss]tatus: //p'
}

# Headers of the viewer's requests, in files (curl -H @file, wrk Lua) so the JWT is on no
# command line.
(
  umask 077
  printf 'Authorization: Bearer %s\nX-Playback-Session-Id: %s\n' "$JWT" "$SESSION" >"$WORK/viewer.headers"
  printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$JWT" >"$WORK/manifest.lua"
  KID_B64=$(python3 -c 'import base64, sys, uuid; print(base64.urlsafe_b64encode(uuid.UUID(sys.argv[1]).bytes).decode().rstrip("="))' "$KEY_ID")
  printf '{"kids":["%s"],"type":"temporary"}' "$KID_B64" >"$WORK/clearkey.json"
  cat >"$WORK/clearkey.lua" <<LUA
wrk.method = "POST"
wrk.body = '$(cat "$WORK/clearkey.json")'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $JWT"
wrk.headers["X-Playback-Session-Id"] = "$SESSION"
LUA
)

# ---- checks: right bytes, right refusals, every row's request answers what it claims ----
# "hit" once the edge's answers say X-Cache-Status: HIT (checked for every segment), else "none"
EDGE_CACHE="none"
if wants segments; then
  without_header=0
  log "checking the segment servers: bytes, cache hits, refusals"
  for name in small.ts large.ts; do
    want=$(sha256sum <"$TITLE/720p/$name" | cut -d' ' -f1)
    for server in edge edge-dir nginx ceiling; do
      got=$(curl -fsS "$(url "$server" "720p/$name")" | sha256sum | cut -d' ' -f1) \
        || fail "$server $name: request failed"
      [ "$got" = "$want" ] || fail "$server $name: body differs from the file"
    done
    # nginx's second request for a segment is a cache hit: what every measured request is.
    cache=$(cache_status "$(url nginx "720p/$name")")
    [ "$cache" = HIT ] || fail "nginx $name: X-Cache-Status '$cache', expected HIT"
    # The edge's too, once its segment cache says so (X-Cache-Status: HIT|MISS|STALE); an
    # edge without the header proxies every request to the origin.
    cache=$(cache_status "$(url edge "720p/$name")")
    if [ -n "$cache" ]; then
      [ "$cache" = HIT ] || fail "edge (HTTP origin) $name: X-Cache-Status '$cache', expected HIT"
      EDGE_CACHE=hit
    else
      without_header=$((without_header + 1))
    fi
    path="/hls/$VIDEO/720p/$name"
    for target in "http://127.0.0.1:$EDGE_PORT$path" "http://127.0.0.1:$EDGE_PORT$path?hdnts=${EDGE_TOKEN}x" \
      "http://127.0.0.1:$EDGE_DIR_PORT$path" "http://127.0.0.1:$EDGE_DIR_PORT$path?hdnts=${EDGE_TOKEN}x" \
      "http://127.0.0.1:$NGINX_PORT$path" "http://127.0.0.1:$NGINX_PORT$path?md5=AAAAAAAAAAAAAAAAAAAAAA&expires=4000000000"; do
      code=$(status_of "$target")
      [ "$code" = 403 ] || fail "${target%%\?*} without a valid token: $code, expected 403"
    done
  done
  if [ "$EDGE_CACHE" = none ]; then
    log "the edge sends no X-Cache-Status: its HTTP-origin rows are proxied, not cache hits"
  elif [ "$without_header" != 0 ]; then
    fail "edge (HTTP origin): X-Cache-Status on some segments only"
  fi
fi

if wants playlists; then
  log "checking the playlists: the edge rewrites every URI for the viewer, nginx serves the file"
  for name in index.m3u8 live.m3u8; do
    segments=$VOD_SEGMENTS
    [ "$name" = live.m3u8 ] && segments=$LIVE_SEGMENTS
    curl -fsS "$(url edge "720p/$name")" >"$WORK/rewritten-$name" || fail "edge $name: request failed"
    # Every segment and the key point at the edge with the viewer's token; the first segment
    # and the key answer through the URIs as rewritten.
    first=$(python3 - "$WORK/rewritten-$name" "$segments" "$EDGE_TOKEN" "$VIDEO" "$KEY_ID" <<'PY'
import re, sys
path, segments, token, video, key_id = sys.argv[1:]
text = open(path).read()
uris = [l for l in text.splitlines() if l and not l.startswith("#")]
stamped = [u for u in uris if u.startswith(f"/hls/{video}/720p/seg_") and u.endswith(f"?hdnts={token}")]
keys = re.findall(r'URI="([^"]*)"', text)
if len(uris) != int(segments) or len(stamped) != int(segments):
    sys.exit(f"{len(stamped)} of {len(uris)} URIs rewritten with the token, expected {segments}")
if keys != [f"/keys/{video}/{key_id}?hdnts={token}"]:
    sys.exit("the key URI is not the edge's key endpoint with the token")
print(stamped[0])
PY
    ) || fail "edge $name: rewrite"
    code=$(status_of "http://127.0.0.1:$EDGE_PORT$first")
    [ "$code" = 200 ] || fail "edge $name: the first rewritten segment URI answered $code"
    want=$(sha256sum <"$TITLE/720p/$name" | cut -d' ' -f1)
    got=$(curl -fsS "$(url nginx "720p/$name")" | sha256sum | cut -d' ' -f1) || fail "nginx $name: request failed"
    [ "$got" = "$want" ] || fail "nginx $name: body differs from the file"
  done
  code=$(status_of "http://127.0.0.1:$EDGE_PORT/hls/$VIDEO/720p/index.m3u8")
  [ "$code" = 403 ] || fail "edge playlist without a token: $code, expected 403"
fi

if wants keys; then
  log "checking the AES-128 key and the ClearKey license carry the title's key"
  got=$(curl -fsS "$KEY_URL" | od -An -tx1 | tr -d ' \n') || fail "AES-128 key: request failed"
  [ "$got" = "$KEY_HEX" ] || fail "AES-128 key: not the title's key"
  code=$(status_of "http://127.0.0.1:$EDGE_PORT/keys/$VIDEO/$KEY_ID")
  [ "$code" = 403 ] || fail "AES-128 key without a token: $code, expected 403"
  curl -fsS -X POST -H @"$WORK/viewer.headers" -H 'Content-Type: application/json' \
    --data-binary @"$WORK/clearkey.json" "http://127.0.0.1:$EDGE_PORT/drm/clearkey/$VIDEO" \
    >"$WORK/clearkey-answer.json" || fail "ClearKey: request failed"
  python3 - "$WORK/clearkey-answer.json" "$KEY_ID" "$KEY_HEX" <<'PY' || fail "ClearKey: not the title's key"
import base64, json, sys, uuid
answer, key_id, key_hex = sys.argv[1:]
b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
keys = json.load(open(answer))["keys"]
want = {"kid": b64(uuid.UUID(key_id).bytes), "k": b64(bytes.fromhex(key_hex))}
if [{"kid": k.get("kid"), "k": k.get("k")} for k in keys] != [want]:
    sys.exit("the license does not hold exactly the requested key")
PY
fi

if wants manifest; then
  log "checking manifest minting: a signed master URL that the edge then serves"
  curl -fsS -H @"$WORK/viewer.headers" "http://127.0.0.1:$EDGE_PORT/playback/$VIDEO/manifest" \
    >"$WORK/manifest.json" || fail "manifest: request failed"
  master=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["url"])' "$WORK/manifest.json") \
    || fail "manifest: no url in the answer"
  curl -fsS "$master" >"$WORK/master.m3u8" || fail "manifest: the master URL it minted failed"
  grep -q "^/hls/$VIDEO/720p/index.m3u8?hdnts=" "$WORK/master.m3u8" \
    || fail "manifest: the master playlist does not name the variant with a session token"
  code=$(status_of "http://127.0.0.1:$EDGE_PORT/playback/$VIDEO/manifest")
  [ "$code" = 401 ] || fail "manifest without a JWT: $code, expected 401"
fi

# ---- the rows ----
# measure KEY URL [LUA] -> "req/s p50_us p99_us MB/s"; fails on non-2xx or socket errors
measure() {
  local key=$1 target=$2 out="$WORK/$1.wrk"
  local script=()
  [ -n "${3:-}" ] && script=(-s "$3")
  if [ "$WARMUP" != 0 ]; then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${script[@]}" "$target" >/dev/null
  fi
  local perf_pid="" pid=""
  case "$key" in
    *edge-dir*) pid=$EDGE_DIR_PID ;;
    *edge*) pid=$EDGE_PID ;;
  esac
  if [ "${PERF:-0}" = 1 ] && [ -n "$pid" ]; then
    timeout -s INT "$DURATION" perf record -q -F 999 -g -p "$pid" \
      -o "$WORK/perf-$key.data" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${script[@]}" "$target" >"$out"
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
  # wrk names the URL; tokens stay out of the output.
  sed 's/?[^ ]*//' "$out" >&2
  if grep -q "Non-2xx" "$out"; then fail "$key: non-2xx responses"; fi
  if grep -q "Socket errors" "$out"; then fail "$key: socket errors"; fi
  python3 - "$out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def us(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1, "ms": 1000, "s": 1e6}[unit]
def mb(v):
    n, unit = re.match(r"([\d.]+)([KMG]?B)", v).groups()
    return float(n) * {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}[unit] / 1e6
print(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
      us(re.search(r"\s50%\s+(\S+)", text).group(1)),
      us(re.search(r"\s99%\s+(\S+)", text).group(1)),
      mb(re.search(r"Transfer/sec:\s+(\S+)", text).group(1)))
PY
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
# row KEY URL [LUA]: one measured row, appended to $RESULTS as "KEY figures"
row() {
  log "$1: ${WARMUP} warm-up, then wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
  # An assignment, so a failed check inside `measure` stops the script.
  local figures
  figures=$(measure "$@")
  printf '%s %s\n' "$1" "$figures" >>"$RESULTS"
}
if wants segments; then
  for name in small large; do
    for server in ceiling nginx edge edge-dir; do
      row "seg-$name.$server" "$(url "$server" "720p/$name.ts")"
    done
  done
fi
if wants playlists; then
  for name in index live; do
    for server in nginx edge; do
      row "playlist-$name.$server" "$(url "$server" "720p/$name.m3u8")"
    done
  done
fi
if wants keys; then
  row "key-aes128.edge" "$KEY_URL"
  row "license-clearkey.edge" "http://127.0.0.1:$EDGE_PORT/drm/clearkey/$VIDEO" "$WORK/clearkey.lua"
fi
if wants manifest; then
  row "manifest.edge" "http://127.0.0.1:$EDGE_PORT/playback/$VIDEO/manifest" "$WORK/manifest.lua"
fi

python3 - "$RESULTS" "$DURATION" "$THREADS" "$CONNECTIONS" "$SMALL_BYTES" "$LARGE_BYTES" \
  "$PROFILE" "$VOD_SEGMENTS" "$LIVE_SEGMENTS" "$EDGE_CACHE" <<'PY'
import sys
path, duration, threads, conns, small, large, profile, vod, live, edge_cache = sys.argv[1:]
rows = {}
for line in open(path):
    key, rps, p50, p99, mbs = line.split()
    rows[key] = (float(rps), float(p50), float(p99), float(mbs))
edge_http = ("edge (EdgeAuth session token, HTTP origin + segment cache hit)" if edge_cache == "hit"
             else "edge (EdgeAuth session token, HTTP origin, proxied: no X-Cache-Status seen)")
servers = {
    "ceiling": "loopback ceiling (axum, from memory, no token)",
    "nginx": "nginx (secure_link md5 + proxy_cache hit)",
    "edge": edge_http,
    "edge-dir": "edge (EdgeAuth session token, directory origin: the embedded default)",
}
groups = {
    "seg-small": f"segment, small ({int(small) // 1024} KiB)",
    "seg-large": f"segment, large ({int(large) // 1024} KiB)",
    "playlist-index": f"media playlist, VOD ({int(vod):,} segments)",
    "playlist-live": f"media playlist, live ({live} segments)",
    "key-aes128": "AES-128 key, warm",
    "license-clearkey": "ClearKey license, warm",
    "manifest": "manifest minting (JWT verify + session token sign)",
}
special = {
    ("playlist-index", "nginx"): "nginx: static, no rewrite — not the same work (secure_link + proxy_cache hit)",
    ("playlist-live", "nginx"): "nginx: static, no rewrite — not the same work (secure_link + proxy_cache hit)",
    ("playlist-index", "edge"): "edge: per-viewer rewrite (HTTP origin)",
    ("playlist-live", "edge"): "edge: per-viewer rewrite (HTTP origin)",
    ("key-aes128", "edge"): "edge: session token, entitlement + key cached, license recorded",
    ("license-clearkey", "edge"): "edge: viewer JWT, W3C ClearKey request, license recorded",
    ("manifest", "edge"): "edge: viewer JWT, entitlement cached, new session + token",
}
def ms(v):
    return f"{v / 1000:.2f} ms"
print(f"\nwrk {duration}, {threads} threads, {conns} connections, loopback; 2 worker threads/processes"
      f" per server; {profile} binaries\n")
print("| request | server | req/s | p50 | p99 | MB/s |")
print("|---|---|---|---|---|---|")
for key, (rps, p50, p99, mbs) in rows.items():
    group, server = key.split(".", 1)
    label = special.get((group, server), servers[server])
    print(f"| {groups[group]} | {label} | {rps:,.0f} | {ms(p50)} | {ms(p99)} | {mbs:,.0f} |")
if any(k.startswith("seg-") for k in rows):
    print()
    print("| segment | edge (HTTP origin)/nginx req/s | edge (HTTP origin)/nginx p99 "
          "| edge (directory)/nginx req/s | edge (directory)/nginx p99 "
          "| edge (HTTP origin)/ceiling req/s | nginx/ceiling req/s |")
    print("|---|---|---|---|---|---|---|")
    for group in ("seg-small", "seg-large"):
        e, d, n, c = (rows[f"{group}.{s}"] for s in ("edge", "edge-dir", "nginx", "ceiling"))
        print(f"| {groups[group].split(', ', 1)[1]} | {e[0] / n[0]:.2f} | {e[2] / n[2]:.2f} | {d[0] / n[0]:.2f} "
              f"| {d[2] / n[2]:.2f} | {e[0] / c[0]:.2f} | {n[0] / c[0]:.2f} |")
PY

if [ "${PERF:-0}" = 1 ]; then
  echo
  echo "(PERF=1: the edge rows above ran under perf record and are slower than without it)"
  for data in "$WORK"/perf-*.data; do
    [ -f "$data" ] || continue
    key=$(basename "$data" .data)
    key=${key#perf-}
    perf report -q -i "$data" --no-children --sort dso -g none --stdio \
      >"$WORK/perf-$key.dso.txt" 2>/dev/null || true
    perf report -q -i "$data" --no-children --sort sym -g none --stdio \
      >"$WORK/perf-$key.sym.txt" 2>/dev/null || true
    printf '\nthe edge during %s, by shared object (%% of its samples):\n\n' "$key"
    grep -v '^$' "$WORK/perf-$key.dso.txt" | head -8 || true
    printf '\nby symbol (top 25):\n\n'
    grep -v '^$' "$WORK/perf-$key.sym.txt" | head -25 || true
  done
fi

if [ "$MODE" = bench ]; then
  printf '\nmachine: %s x %s, load average %s; %s; %s\n' "$(nproc)" \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nginx -v 2>&1)" "$(rustc --version)"
fi
