#!/usr/bin/env bash
# Starts the whole stack on one machine with embedded defaults — no Redis, Postgres or AWS:
# the control plane (SQLite, local master key, ffmpeg + Shaka Packager) on 127.0.0.1:8081 and the
# edge (directory origin) on 127.0.0.1:8080, state under ./data. Then makes sure a DRM-protected
# demo title exists (a 30 s test video, uploaded and transcoded on first start, AES-128 so
# ffplay plays it), and prints a demo viewer JWT and a playable URL. Ctrl-C stops both services.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_build_tools
ensure_packager
log "building the services (debug; first build takes a few minutes)"
cargo build --workspace --bins --quiet
BIN="$CARGO_TARGET_DIR/debug"
CP="$BIN/control-plane"
mkdir -p data/logs

"$CP" init-secrets --dir data/secrets >/dev/null
CP_TRANSCODE__PACKAGER="$SHAKA_PACKAGER_BIN" "$CP" serve >data/logs/control-plane.log 2>&1 &
CP_PID=$!
"$BIN/edge-proxy" >data/logs/edge.log 2>&1 &
EDGE_PID=$!
trap 'kill $CP_PID $EDGE_PID 2>/dev/null; wait 2>/dev/null; echo; log "stopped"' EXIT INT TERM
wait_http http://127.0.0.1:8081/health 60 || { tail -20 data/logs/control-plane.log; exit 1; }
wait_http http://127.0.0.1:8080/health 60 || { tail -20 data/logs/edge.log; exit 1; }
log "control plane on http://127.0.0.1:8081, edge on http://127.0.0.1:8080 (logs in data/logs/)"

VIEWER=demo-viewer
"$CP" subscribe --user "$VIEWER" --tier pro >/dev/null
JWT=$("$CP" token --sub "$VIEWER" --ttl-secs 86400)
auth=(-H "Authorization: Bearer $JWT")

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

FILE_ID=$(cat data/demo-file-id 2>/dev/null || true)
STATUS=""
if [ -n "$FILE_ID" ]; then
  STATUS=$(curl -fsS "${auth[@]}" "http://127.0.0.1:8081/media/transcode/$FILE_ID" 2>/dev/null \
    | json_field "['status']" 2>/dev/null || true)
fi
if [ "$STATUS" != completed ]; then
  log "making a 30 s demo video with ffmpeg and uploading it"
  ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 \
    -t 30 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest data/demo-source.mp4
  FILE_ID=$(curl -fsS "${auth[@]}" -F "files=@data/demo-source.mp4;type=video/mp4" \
    http://127.0.0.1:8081/files/upload | json_field "['files'][0]['fileId']")
  echo "$FILE_ID" >data/demo-file-id
  curl -fsS "${auth[@]}" -H 'Content-Type: application/json' \
    -d "{\"fileId\":\"$FILE_ID\",\"enableDrm\":true,\"protection\":\"aes-128\"}" \
    http://127.0.0.1:8081/media/transcode >/dev/null
  log "transcoding to HLS (1080p/720p/480p capped at the source, AES-128)"
  while :; do
    body=$(curl -fsS "${auth[@]}" "http://127.0.0.1:8081/media/transcode/$FILE_ID")
    STATUS=$(echo "$body" | json_field "['status']")
    printf '\r   %s %s%%   ' "$STATUS" "$(echo "$body" | json_field "['progress']")"
    case "$STATUS" in completed) echo; break ;; failed) echo; echo "$body"; exit 1 ;; esac
    sleep 1
  done
fi

URL=$(curl -fsS "${auth[@]}" "http://127.0.0.1:8080/playback/$FILE_ID/manifest" | json_field "['url']")
# The title's key id, from the first media playlist (its EXT-X-KEY points at /keys/{id}/{keyId}),
# as a ClearKey kid: the key UUID's 16 bytes in unpadded base64url.
KID=$(python3 - "$URL" <<'PY'
import base64, re, sys, urllib.parse, urllib.request
master = urllib.request.urlopen(sys.argv[1]).read().decode()
variant = next(l for l in master.splitlines() if l and not l.startswith("#"))
media = urllib.request.urlopen(urllib.parse.urljoin(sys.argv[1], variant)).read().decode()
key_id = re.search(r"/keys/[0-9a-f-]{36}/([0-9a-f-]{36})", media).group(1)
print(base64.urlsafe_b64encode(bytes.fromhex(key_id.replace("-", ""))).decode().rstrip("="))
PY
) || KID="<kid>"
cat <<TXT

The stack is up. A DRM-protected (AES-128) demo title is ready: $FILE_ID

Demo viewer JWT (user "$VIEWER", Pro tier, valid 24 h) — paste this into your shell:
  export JWT=$JWT

Ask the edge for a signed playback URL (valid 5 minutes):
  curl -H "Authorization: Bearer \$JWT" http://127.0.0.1:8080/playback/$FILE_ID/manifest

A playable URL, minted just now:
  $URL

Play or inspect it:
  ffplay "$URL"
  ffprobe -v error -show_entries stream=codec_name,height "$URL"
  (Safari, VLC and any hls.js page play it too; keys come from the edge's /keys endpoint.)

The same key as a W3C ClearKey license (any license: POST /drm/license, /fps/license, ...):
  curl -H "Authorization: Bearer \$JWT" -d '{"kids":["$KID"],"type":"temporary"}' \\
       http://127.0.0.1:8080/drm/clearkey/$FILE_ID

Upload your own video:
  curl -H "Authorization: Bearer \$JWT" -F files=@movie.mp4 http://127.0.0.1:8081/files/upload
  curl -H "Authorization: Bearer \$JWT" -H 'Content-Type: application/json' \\
       -d '{"fileId":"<id>","enableDrm":true}' http://127.0.0.1:8081/media/transcode
  (That makes CMAF with HLS and DASH, cbcs, for Widevine/PlayReady/FairPlay players; add
  "protection":"cenc" for cenc or "aes-128" for MPEG-TS HLS like the demo title.)

Metrics: http://127.0.0.1:8080/metrics   Logs: data/logs/   Stop: Ctrl-C
TXT
wait
