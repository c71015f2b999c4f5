#!/usr/bin/env bash
# Analysts' SQL under load (issue 15's benchmark): the medium sample organisation, `doracost
# serve`, then benches/pg_load.py: 20 clients for 30 s running
# `SELECT * FROM dora_monthly WHERE scope = 'service'` over PostgreSQL (psycopg 3) and over HTTP
# (Arrow IPC), and DuckDB over a Parquet export of the same rows. Prints queries/s, p50, p99 and
# the server's peak RSS.
#
#   bash benches/pg_load.sh [path/to/doracost] [scale] [seconds] [clients]
#
# Needs psycopg (CI installs it) and, for the comparison, duckdb (pip install duckdb).
set -euo pipefail
bin="$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/doracost}")"
scale="${2:-medium}"
seconds="${3:-30}"
clients="${4:-20}"
here="$(cd "$(dirname "$0")" && pwd)"
port=18091
pg_port=15491
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" sample generate --scale "$scale" --out "$work/sample" >/dev/null
cd "$work"
cat sample/doracost.toml > doracost.toml
# Room for 20 analysts at once (the default is 4, with 2 threads).
printf '\n[server]\nsql_max_concurrent = 32\nsql_max_rows = 1000000\n' >> doracost.toml
"$bin" --config doracost.toml --data-dir lake ingest --no-refresh events sample/events >/dev/null
"$bin" --config doracost.toml --data-dir lake ingest focus sample/costs >/dev/null
"$bin" --config doracost.toml --data-dir lake sql --format parquet --out monthly.parquet \
  "SELECT * FROM dora_monthly WHERE scope = 'service'"
DORACOST_LOG=warn "$bin" --config doracost.toml --data-dir lake serve --listen "127.0.0.1:$port" \
  --pg-listen "127.0.0.1:$pg_port" >serve.out 2>serve.err &
server=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
sleep 5
echo "server ready: RSS $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server/status)"
python3 "$here/pg_load.py" "$port" "$pg_port" "$work/monthly.parquet" "$clients" "$seconds"
echo "server peak RSS: $(awk '/VmHWM/ {print $2 " kB"}' /proc/$server/status)"
