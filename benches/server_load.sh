#!/usr/bin/env bash
# The server under load (issue 13's benchmark): the medium sample organisation, `doracost serve`,
# then wrk with 50 connections for 30 s on each of /api/v1/dora, /api/v1/costs and /metrics.
# Prints wrk's p50/p90/p99, errors and non-2xx answers, and the server's peak RSS.
#
#   bash benches/server_load.sh [path/to/doracost] [scale] [seconds]
#
# Needs wrk (Debian: apt-get install wrk). The first request of each route computes its answer
# (answers are cached per lake state); the "warm" pass repeats the routes on the cached answers.
set -euo pipefail
bin="${1:-${CARGO_TARGET_DIR:-target}/release/doracost}"
scale="${2:-medium}"
seconds="${3:-30}"
port=18089
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" sample generate --scale "$scale" --out "$work/sample" >/dev/null
cd "$work"
"$bin" --config sample/doracost.toml --data-dir lake ingest --no-refresh events sample/events >/dev/null
"$bin" --config sample/doracost.toml --data-dir lake ingest focus sample/costs >/dev/null
DORACOST_LOG=warn "$bin" --config sample/doracost.toml --data-dir lake serve --listen "127.0.0.1:$port" \
  >serve.out 2>serve.err &
server=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
echo "server ready: RSS $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server/status)"

for pass in cold warm; do
  for route in /api/v1/dora /api/v1/costs /metrics; do
    echo "== $pass $route"
    wrk -t2 -c50 -d"${seconds}s" --latency "http://127.0.0.1:$port$route" \
      | grep -E "^ +(50|90|99)%|Requests/sec|Non-2xx|Socket errors|requests in"
  done
done
echo "server peak RSS: $(awk '/VmHWM/ {print $2 " kB"}' /proc/$server/status)"
