#!/usr/bin/env bash
# The dashboards under load (issue 14's benchmark): the medium sample organisation, `doracost
# serve`, then the first (cold) render of the infra review page and of one PNG chart timed with
# curl, and wrk with 50 connections for 30 s on each (warm: answers are cached per lake state).
# Prints the cold times, wrk's p50/p90/p99, errors and non-2xx answers, and the server's peak RSS.
#
#   bash benches/pages_load.sh [path/to/doracost] [scale] [seconds]
#
# Needs wrk (Debian: apt-get install wrk) and curl.
set -euo pipefail
bin="${1:-${CARGO_TARGET_DIR:-target}/release/doracost}"
scale="${2:-medium}"
seconds="${3:-30}"
port=18090
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
# Let the watcher's warm-up of the API answers finish, so the page's cold render is measured alone.
sleep 5
echo "server ready: RSS $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server/status)"

for route in / /charts/review/lead-time-trend.png; do
  curl -s -o /dev/null -w "== cold $route: %{http_code} in %{time_total} s, %{size_download} bytes\n" \
    "http://127.0.0.1:$port$route"
done
for route in / /charts/review/lead-time-trend.png; do
  echo "== warm $route"
  wrk -t2 -c50 -d"${seconds}s" --latency "http://127.0.0.1:$port$route" \
    | grep -E "^ +(50|90|99)%|Requests/sec|Non-2xx|Socket errors|requests in"
done
echo "server peak RSS: $(awk '/VmHWM/ {print $2 " kB"}' /proc/$server/status)"
