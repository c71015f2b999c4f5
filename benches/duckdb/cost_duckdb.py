#!/usr/bin/env python3
"""Cost by service by month, with allocation, in DuckDB over the same Parquet files as doracost's
DataFusion engine (benches/cost_bench.rs compares the two).

    python3 cost_duckdb.py --lake DIR --config doracost.toml [--repeat 3] [--threads 2]

The lake's `costs` table is a view over its Delta table's live Parquet files; `cost_rules` is built
from the TOML as query/src/cost_tables.rs builds it (tag keys and values, accounts and cloud
services lower-cased and space-trimmed; precedence: a service's tag 1, account 3, cloud service
5); the query is query/sql/cost.sql's `cost_rule_matches` → pick (lowest precedence, then config
order) → sum of effective cost per service and month, `unallocated` for lines no rule maps.
Shared-cost splits are not ported (the generated organisations configure none).

Prints one JSON object: {"engine": "duckdb", "rows", "total", "setup_s", "cold_s", "warm_s",
"peak_rss_mb"}; `total` is the sum over all rows (text, exact), to compare with DataFusion's.
"""

import argparse
import json
import os
import resource
import sys
import time
import tomllib

import duckdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dora_duckdb import parquet_files  # noqa: E402


def normalise(text):
    return text.strip(" ").lower()


def rules(config):
    out = []
    for service in config.get("services", []):
        name = service["name"]
        for key, value in service.get("cost_tags", {}).items():
            out.append(("tag", normalise(key), normalise(value), name, 1))
        for account in service.get("cost_accounts", []):
            out.append(("account", None, normalise(account), name, 3))
        for cloud in service.get("cost_cloud_services", []):
            out.append(("cloud_service", None, normalise(cloud), name, 5))
    return [(kind, key, value, target, rank, i) for i, (kind, key, value, target, rank) in enumerate(out)]


QUERY = """
WITH tag_entries AS (
  SELECT cost_id, lower(trim(e.key)) AS tag_key, lower(trim(e.value)) AS tag_value
  FROM (SELECT cost_id, unnest(map_entries(tags)) AS e FROM costs WHERE tags IS NOT NULL)
),
matches AS (
  SELECT t.cost_id, r.precedence, r.ordinal FROM tag_entries t
  JOIN cost_rules r ON r.rule_kind = 'tag' AND r.tag_key = t.tag_key AND r.value = t.tag_value
  UNION ALL
  SELECT c.cost_id, r.precedence, r.ordinal FROM costs c
  JOIN cost_rules r ON r.rule_kind = 'account' AND r.value = lower(trim(c.sub_account))
  UNION ALL
  SELECT c.cost_id, r.precedence, r.ordinal FROM costs c
  JOIN cost_rules r ON r.rule_kind = 'account' AND r.value = lower(trim(c.billing_account))
  UNION ALL
  SELECT c.cost_id, r.precedence, r.ordinal FROM costs c
  JOIN cost_rules r ON r.rule_kind = 'cloud_service' AND r.value = lower(trim(c.cloud_service))
),
pick AS (
  SELECT cost_id, arg_min(ordinal, precedence * 1000000 + ordinal) AS ordinal FROM matches GROUP BY cost_id
)
SELECT coalesce(r.target, 'unallocated') AS service,
       CAST(date_trunc('month', CAST(c.charge_period_start AS DATE)) AS DATE) AS month,
       sum(coalesce(c.effective_cost, 0)) AS cost
FROM costs c LEFT JOIN pick p ON p.cost_id = c.cost_id LEFT JOIN cost_rules r ON r.ordinal = p.ordinal
GROUP BY 1, 2
"""


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(lake, config, threads):
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    files = parquet_files(os.path.join(lake, "costs"))
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"CREATE VIEW costs AS SELECT * FROM read_parquet([{listed}])")
    con.execute(
        "CREATE TABLE cost_rules (rule_kind VARCHAR, tag_key VARCHAR, value VARCHAR, "
        "target VARCHAR, precedence INTEGER, ordinal INTEGER)"
    )
    con.executemany("INSERT INTO cost_rules VALUES (?, ?, ?, ?, ?, ?)", rules(config))
    return con


def run(con):
    con.execute(f"CREATE OR REPLACE TEMP TABLE result AS {QUERY}")
    rows, total = con.execute("SELECT count(*), CAST(sum(cost) AS VARCHAR) FROM result").fetchone()
    return rows, total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    started = time.perf_counter()
    con = setup(args.lake, config, args.threads)
    setup_s = time.perf_counter() - started
    rows, total = run(con)
    cold_s = time.perf_counter() - started
    warm_s = None
    for _ in range(args.repeat):
        again = time.perf_counter()
        run(con)
        elapsed = time.perf_counter() - again
        warm_s = elapsed if warm_s is None else min(warm_s, elapsed)
    print(json.dumps({
        "engine": "duckdb", "rows": rows, "total": total, "setup_s": setup_s, "cold_s": cold_s,
        "warm_s": warm_s, "peak_rss_mb": peak_rss_mb(),
    }))


if __name__ == "__main__":
    main()
