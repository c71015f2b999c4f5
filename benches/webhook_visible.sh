#!/usr/bin/env bash
# Webhook to visible (issue 13, item 6): a sample organisation served by `doracost serve`, then one
# production deployment of one service posted to /api/v1/events, and the time until
# /api/v1/dora (that service, that day) counts it. Repeated `rounds` times; prints each time and
# the server log's refresh lines (incremental or not, and how long they took), and its peak RSS.
#
#   bash benches/webhook_visible.sh [path/to/doracost] [scale] [rounds]
#
# With BENCH_DIR set, the sample and lake are kept there and reused by the next run (the large
# organisation takes minutes to generate and ingest).
set -euo pipefail
bin="${1:-${CARGO_TARGET_DIR:-target}/release/doracost}"
scale="${2:-medium}"
rounds="${3:-5}"
port=18090
if [ -n "${BENCH_DIR:-}" ]; then
  work="$BENCH_DIR"
  mkdir -p "$work"
  trap 'kill "$server" 2>/dev/null || true' EXIT
else
  work="$(mktemp -d)"
  trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
fi
cd "$work"
[ -d sample ] || "$bin" sample generate --scale "$scale" --out sample >/dev/null
[ -d lake ] || "$bin" --config sample/doracost.toml --data-dir lake ingest events sample/events >/dev/null
DORACOST_LOG="${DORACOST_LOG:-warn,server=info}" "$bin" --config sample/doracost.toml --data-dir lake serve --listen "127.0.0.1:$port" \
  >serve.out 2>serve.err &
server=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
# Let the refresh at start and the first engine settle.
sleep 5
service="$(awk -F'"' '/^name = / {print $2; exit}' sample/doracost.toml)"
repo="$(awk -F'"' '/^repos = / {print $2; exit}' sample/doracost.toml)"
day="2026-12-01"
count() {
  curl -sf "http://127.0.0.1:$port/api/v1/dora?period=day&service=$service&from=$day&to=$day" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["rows"]; print(r[0]["deployments"] if r else 0)'
}
for i in $(seq 1 "$rounds"); do
  before="$(count)"
  body="{\"type\":\"deployment\",\"id\":\"bench-$i-$RANDOM\",\"service\":\"$service\",\"repo\":\"$repo\",\"environment\":\"production\",\"commit_sha\":\"bench$i$RANDOM\",\"finished_at\":\"${day}T12:00:0${i}Z\",\"status\":\"success\",\"changes\":[]}"
  start=$(date +%s.%N)
  curl -sf -X POST --data "$body" "http://127.0.0.1:$port/api/v1/events" >/dev/null
  posted=$(date +%s.%N)
  while [ "$(count)" = "$before" ]; do sleep 0.05; done
  seen=$(date +%s.%N)
  printf 'round %d: commit %.2f s, visible %.2f s after the post\n' "$i" \
    "$(echo "$posted - $start" | bc)" "$(echo "$seen - $start" | bc)"
  sleep 1
done
grep -a "refreshed the derived tables\|incremental refresh\|refresh: engine\|opened the query engine\|refresh: read" serve.err | sed 's/\x1b\[[0-9;]*m//g' | tail -n 40
echo "server peak RSS: $(awk '/VmHWM/ {print $2 " kB"}' /proc/$server/status)"
