#!/usr/bin/env python3
"""The DORA views in DuckDB, over the same Parquet files as doracost's DataFusion engine.

Used by benches/dora_bench.rs for the DataFusion / DuckDB comparison, and by hand:

    python3 dora_duckdb.py --lake DIR --config doracost.toml [--views dora_monthly,...]
        [--repeat 3] [--threads 2] [--plain-views] [--derived]
        [--check-against DIR_OF_CSVS [--no-timing]]

Setup, in a fresh in-memory connection: session TimeZone 'UTC'; the lake tables `deployments`,
`changes`, `deployment_changes`, `incidents` as views over their Delta tables' live Parquet files
(`read_parquet`); the config tables `services`, `reporting`, `targets` from the TOML and
`dora_levels` from ../../query/sql/dora_levels.csv, built as query/src/config_tables.rs builds
them; then the views of query/sql/dora.sql that the timed view reads, translated to DuckDB's
dialect by `to_duckdb` (a few mechanical rewrites), {{time_zone}} filled in.

The views marked `-- @cached` are the ones doracost's engine computes once per session, on first
use, and keeps in memory. They are created here as temporary tables (computed at setup, so inside
the cold time), which is what the engine does. --plain-views creates them as views instead: DuckDB
then inlines every reference, and the plans of the period views grow huge (on the small sample,
seconds of planning for dora_monthly, minutes and GBs for dora_targets).

--derived reads the views marked `-- @persisted` from the derived tables doracost keeps in the lake
(`_derived/<view>`, written at ingest) instead of computing them: the comparison with doracost's
engine reading the same tables.

Timing, one JSON object per view on stdout:
    {"engine":"duckdb","view":...,"rows":...,"setup_s":...,"cold_s":...,"warm_s":...,"peak_rss_mb":...}
- a run computes `SELECT * FROM view` whole and keeps every row and column in DuckDB's memory
  (`CREATE OR REPLACE TEMP TABLE ... AS SELECT * FROM view`): the analogue of DataFusion collecting
  its record batches, without the cost of turning each value into a Python object (no pyarrow here);
- cold_s: a fresh connection, setup included (as DataFusion's cold includes opening the engine and
  computing the cached views); setup_s is that setup alone;
- warm_s: best of the next --repeat runs on that connection (null when --repeat 0);
- peak_rss_mb: this process's peak resident memory so far (it only grows from view to view).

--check-against DIR compares each view's rows with DIR/<view>.csv written by
`doracost sql --format csv` (datafusion_csvs.sh writes them; list columns rendered `[a,b]`): both
sides sorted by all columns; numbers equal within a relative 1e-9, NULL = NULL (and = empty text,
which CSV cannot tell apart), timestamps as UTC instants, dates as text, booleans as true/false.
One JSON object per view on stdout ({"check": view, ...}); exit status 1 when any view differs.
Lead time p90 is `quantile_cont` in both engines (doracost's exact UDAF, DuckDB's own).
"""

import argparse
import csv
import datetime as dt
import json
import math
import os
import re
import resource
import sys
import time
import tomllib
import urllib.parse

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
SQL_FILE = os.path.join(HERE, "..", "..", "query", "sql", "dora.sql")
LEVELS_CSV = os.path.join(HERE, "..", "..", "query", "sql", "dora_levels.csv")
LAKE_TABLES = ["deployments", "changes", "deployment_changes", "incidents"]
DEFAULT_VIEWS = [
    "dora_deployments",
    "dora_changes",
    "dora_recoveries",
    "dora_incidents",
    "dora_daily",
    "dora_weekly",
    "dora_monthly",
    "dora_targets",
]


def log(msg):
    print(msg, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Lake


def parquet_files(table_dir):
    """The live data files of a Delta table: replay of `_delta_log/*.json` (add/remove); when
    there is no log, or a checkpoint the replay cannot read, every `*.parquet` in the folder."""
    log_dir = os.path.join(table_dir, "_delta_log")
    glob = [os.path.join(table_dir, "*.parquet")]
    if not os.path.isdir(log_dir):
        return glob
    names = sorted(os.listdir(log_dir))
    if any(".checkpoint." in n for n in names) or "_last_checkpoint" in names:
        log(f"{table_dir}: Delta checkpoint present, reading every *.parquet in the folder")
        return glob
    live = {}
    for name in names:
        if not re.fullmatch(r"\d{20}\.json", name):
            continue
        with open(os.path.join(log_dir, name), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                action = json.loads(line)
                if "add" in action:
                    if action["add"].get("partitionValues"):
                        raise SystemExit(f"{table_dir}: partitioned Delta tables are not supported")
                    live[action["add"]["path"]] = True
                elif "remove" in action:
                    live.pop(action["remove"]["path"], None)
    files = [os.path.join(table_dir, urllib.parse.unquote(p)) for p in live]
    if not files:
        raise SystemExit(f"{table_dir}: the Delta table has no live data file")
    return sorted(files)


def sql_text(value):
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# Config tables (as query/src/config_tables.rs builds them)


def load_config(path):
    with open(path, "rb") as f:
        config = tomllib.load(f)
    r = config.get("reporting", {})
    reporting = {
        "time_zone": r.get("time_zone", "UTC"),
        "production_environments": [e.lower() for e in r.get("production_environments", ["production", "prod"])],
        "attribution_window_days": int(r.get("attribution_window_days", 7)),
        "hotfix_labels": [x.lower() for x in r.get("hotfix_labels", ["hotfix"])],
        "hotfix_branch_prefixes": [x.lower() for x in r.get("hotfix_branch_prefixes", ["hotfix/"])],
        "cost_metric": r.get("cost_metric", "effective_cost"),
    }
    services = [
        (s["name"], s.get("team"), list(s.get("repos", [])), list(s.get("paths", [])))
        for s in config.get("services", [])
    ]
    t = config.get("targets", {})
    targets = [
        (
            None,
            float(t.get("deploys_per_day", 1.0)),
            float(t.get("lead_time_hours", 1.0)),
            float(t.get("change_failure_rate", 0.05)),
            float(t.get("recovery_minutes", 30.0)),
        )
    ]
    for name, o in sorted(t.get("services", {}).items()):
        opt = lambda k: None if o.get(k) is None else float(o[k])  # noqa: E731
        targets.append(
            (name, opt("deploys_per_day"), opt("lead_time_hours"), opt("change_failure_rate"), opt("recovery_minutes"))
        )
    return reporting, services, targets


def load_levels(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, text in enumerate(f.read().splitlines()):
            if i == 0 or not text.strip():
                continue
            cells = [c.strip() for c in text.split(",", 8)]
            if len(cells) != 9:
                raise SystemExit(f"{path} line {i + 1}: expected 9 cells")
            y, m, l, r, lo, loi, up, upi, n = cells
            num = lambda c: float(c) if c else None  # noqa: E731
            flag = lambda c: {"true": True, "false": False}[c]  # noqa: E731
            rows.append((int(y), m, l, int(r), num(lo), flag(loi), num(up), flag(upi), n))
    return rows


def create_config_tables(con, reporting, services, targets, levels):
    con.execute(
        "CREATE TABLE services (service VARCHAR NOT NULL, team VARCHAR, "
        "repos VARCHAR[] NOT NULL, paths VARCHAR[] NOT NULL)"
    )
    for s in services:
        con.execute("INSERT INTO services VALUES (?, ?, CAST(? AS VARCHAR[]), CAST(? AS VARCHAR[]))", list(s))
    con.execute(
        "CREATE TABLE reporting (time_zone VARCHAR NOT NULL, production_environments VARCHAR[] NOT NULL, "
        "attribution_window_days BIGINT NOT NULL, hotfix_labels VARCHAR[] NOT NULL, "
        "hotfix_branch_prefixes VARCHAR[] NOT NULL, cost_metric VARCHAR NOT NULL)"
    )
    con.execute(
        "INSERT INTO reporting VALUES (?, CAST(? AS VARCHAR[]), ?, CAST(? AS VARCHAR[]), CAST(? AS VARCHAR[]), ?)",
        [
            reporting["time_zone"],
            reporting["production_environments"],
            reporting["attribution_window_days"],
            reporting["hotfix_labels"],
            reporting["hotfix_branch_prefixes"],
            reporting["cost_metric"],
        ],
    )
    con.execute(
        "CREATE TABLE targets (service VARCHAR, deploys_per_day DOUBLE, lead_time_hours DOUBLE, "
        "change_failure_rate DOUBLE, recovery_minutes DOUBLE)"
    )
    con.executemany("INSERT INTO targets VALUES (?, ?, ?, ?, ?)", [list(t) for t in targets])
    con.execute(
        "CREATE TABLE dora_levels (report_year INTEGER NOT NULL, metric VARCHAR NOT NULL, "
        "level VARCHAR NOT NULL, rank INTEGER NOT NULL, lower_bound DOUBLE, lower_inclusive BOOLEAN NOT NULL, "
        "upper_bound DOUBLE, upper_inclusive BOOLEAN NOT NULL, note VARCHAR NOT NULL)"
    )
    con.executemany("INSERT INTO dora_levels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [list(r) for r in levels])


# ---------------------------------------------------------------------------------------------
# Views


TO_LOCAL = re.compile(
    r"to_local_time\(arrow_cast\(([\w.]+), 'Timestamp\(Microsecond, Some\(\"\{\{time_zone\}\}\"\)\)'\)\)"
)
EPOCH = re.compile(r"CAST\(((?!NULL\b)[\w.]+) AS BIGINT\)")
DAY_RANGE = (
    "unnest(range(first_day, last_day + INTERVAL '1 day', INTERVAL '1 day')) AS day",
    "CAST(unnest(range(CAST(first_day AS TIMESTAMP), last_day + INTERVAL '1 day', INTERVAL '1 day')) AS DATE) AS day",
)
PERIODS = [("day", "daily"), ("week", "weekly"), ("month", "monthly")]


def to_duckdb(sql):
    """dora.sql's DataFusion dialect in DuckDB's: `to_local_time(arrow_cast(ts, 'Timestamp(…,
    Some("Z"))'))` is `timezone('Z', ts)` (TIMESTAMPTZ -> local TIMESTAMP, session TimeZone UTC);
    `CAST(ts AS BIGINT)` (epoch microseconds; only timestamps are cast so in dora.sql) is
    `epoch_us(ts)`; `cardinality` is `len`; the day list is a TIMESTAMP `range` cast to DATE.
    `quantile_cont`, `median`, `array_has`, `array_agg`, `starts_with`, `unnest` mean the same."""
    sql = TO_LOCAL.sub(r"timezone('{{time_zone}}', \1)", sql)
    sql = EPOCH.sub(r"epoch_us(\1)", sql)
    sql = sql.replace("cardinality(", "len(")
    if DAY_RANGE[0] in sql:
        sql = sql.replace(*DAY_RANGE)
    return sql


def load_views(time_zone):
    """(name, CREATE VIEW text, query text, cached) per statement of query/sql/dora.sql, in
    DuckDB's dialect (`to_duckdb`), a statement written with {{period}} made three as the engine
    does (query/src/config_tables.rs)."""
    with open(SQL_FILE, encoding="utf-8") as f:
        text = f.read()
    chunks = []
    for chunk in re.split(r"\n;[ \t]*(?:\n|$)", text):
        if "{{period}}" in chunk:
            chunks += [chunk.replace("{{periodly}}", ly).replace("{{period}}", p) for p, ly in PERIODS]
        else:
            chunks.append(chunk)
    out = []
    for chunk in chunks:
        lines = chunk.split("\n")
        code = [l for l in lines if l.strip() and not l.lstrip().startswith("--")]
        if not code:
            continue
        m = re.match(r"CREATE VIEW (\w+) AS\b", code[0])
        if not m:
            raise SystemExit(f"{SQL_FILE}: not `CREATE VIEW name AS`: {code[0]}")
        sql = to_duckdb("\n".join(code)).replace("{{time_zone}}", time_zone)
        if "arrow_cast" in sql or "to_local_time" in sql:
            raise SystemExit(f"{SQL_FILE}: {m.group(1)}: a DataFusion-only expression to_duckdb() does not translate")
        persisted = any(l.strip() == "-- @persisted" for l in lines)
        cached = persisted or any(l.strip() == "-- @cached" for l in lines)
        out.append((m.group(1), sql, sql[m.end():].strip(), cached, persisted))
    return out


class Setup:
    def __init__(self, args):
        self.lake = {t: parquet_files(os.path.join(args.lake, t)) for t in LAKE_TABLES}
        self.reporting, self.services, self.targets = load_config(args.config)
        self.levels = load_levels(LEVELS_CSV)
        self.views = load_views(self.reporting["time_zone"])
        self.threads = args.threads
        self.materialize = not args.plain_views
        # --derived: the `-- @persisted` views read from the derived tables doracost wrote
        # (LAKE/_derived/<view>), as doracost's engine reads them when they are fresh.
        self.derived = {}
        if args.derived:
            self.derived = {
                n: parquet_files(os.path.join(args.lake, "_derived", n))
                for n, _, _, _, persisted in self.views if persisted
            }
        names = [v[0] for v in self.views]
        self.uses = {
            n: set() if n in self.derived else {m for m in names if m != n and re.search(rf"\b{m}\b", q)}
            for n, _, q, _, _ in self.views
        }

    def needed(self, view):
        """The view and every view it reads, directly or not."""
        out, todo = set(), [view]
        while todo:
            v = todo.pop()
            if v not in out:
                out.add(v)
                todo.extend(self.uses.get(v, ()))
        return out

    def connect(self, view=None):
        """A fresh connection with the lake, the config tables and the views `view` needs (all
        views when None); `-- @cached` ones as tables, computed now, unless --plain-views."""
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET threads = {int(self.threads)}")
        for table, files in self.lake.items():
            listing = "[" + ", ".join(sql_text(f) for f in files) + "]"
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({listing})")
        create_config_tables(con, self.reporting, self.services, self.targets, self.levels)
        needed = self.needed(view) if view else None
        for name, sql, query, cached, _ in self.views:
            if needed is not None and name not in needed:
                continue
            if name in self.derived:
                listing = "[" + ", ".join(sql_text(f) for f in self.derived[name]) + "]"
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({listing})")
            elif cached and self.materialize:
                con.execute(f"CREATE TEMP TABLE {name} AS {query}")
            else:
                con.execute(sql)
        return con


def run_view(con, view):
    """Computes the whole view and keeps it in memory; returns its row count."""
    return con.execute(f"CREATE OR REPLACE TEMP TABLE __result AS SELECT * FROM {view}").fetchone()[0]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_views(setup, views, repeat):
    for view in views:
        started = time.perf_counter()
        con = setup.connect(view)
        setup_s = time.perf_counter() - started
        rows = run_view(con, view)
        cold = time.perf_counter() - started
        warm = None
        for _ in range(repeat):
            t = time.perf_counter()
            again = run_view(con, view)
            elapsed = time.perf_counter() - t
            if again != rows:
                raise SystemExit(f"{view}: {again} rows, then {rows}")
            warm = elapsed if warm is None else min(warm, elapsed)
        con.close()
        print(
            json.dumps(
                {
                    "engine": "duckdb",
                    "view": view,
                    "rows": rows,
                    "setup_s": round(setup_s, 6),
                    "cold_s": round(cold, 6),
                    "warm_s": None if warm is None else round(warm, 6),
                    "peak_rss_mb": round(peak_rss_mb(), 1),
                    "threads": setup.threads,
                    "cached_as_tables": setup.materialize,
                }
            ),
            flush=True,
        )


# ---------------------------------------------------------------------------------------------
# Check against DataFusion's CSV


NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|NaN)")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d(:?\d\d)?)?")


def as_text(value):
    """A DuckDB value as DataFusion's CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat() + ("" if value.tzinfo else "Z")  # TIMESTAMPTZ cast to UTC TIMESTAMP
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join("" if v is None else as_text(v) for v in value) + "]"
    return str(value)


def canonical(cell):
    """A cell's comparable form: (kind, value). NULL and empty text are both NULL."""
    if cell == "":
        return (0, "")
    if NUMBER.fullmatch(cell):
        return (1, float(cell))
    if TIMESTAMP.fullmatch(cell):
        t = dt.datetime.fromisoformat(cell.replace(" ", "T"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return (2, t.astimezone(dt.timezone.utc).isoformat())
    return (3, cell)


def sort_key(row):
    # floats rounded so that last-digit differences do not reorder rows
    return tuple((k, float(f"{v:.9g}")) if k == 1 else (k, v) for k, v in row)


def same(a, b):
    if a[0] != b[0]:
        return False
    if a[0] == 1:
        x, y = a[1], b[1]
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return x == y or abs(x - y) <= 1e-9 * max(abs(x), abs(y))
    return a[1] == b[1]


def check_view(con, view, csv_path):
    described = con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()
    columns = [d[0] for d in described]
    select = ", ".join(
        f'CAST("{n}" AS TIMESTAMP) AS "{n}"' if t.startswith("TIMESTAMP WITH TIME ZONE") else f'"{n}"'
        for n, t, *_ in described
    )
    duck = [[canonical(as_text(v)) for v in row] for row in con.execute(f"SELECT {select} FROM {view}").fetchall()]
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        df = [[canonical(c) for c in row] for row in reader]
    result = {"check": view, "rows_duckdb": len(duck), "rows_datafusion": len(df)}
    if header != columns:
        result.update(matched=False, columns_duckdb=columns, columns_datafusion=header)
        return result
    duck.sort(key=sort_key)
    df.sort(key=sort_key)
    mismatches = []
    for i, (a, b) in enumerate(zip(duck, df)):
        bad = [columns[j] for j in range(len(columns)) if not same(a[j], b[j])]
        if bad:
            mismatches.append(
                {
                    "row": i,
                    "columns": bad,
                    "duckdb": [a[j][1] for j in range(len(columns))],
                    "datafusion": [b[j][1] for j in range(len(columns))],
                }
            )
    by_column = {}
    for m in mismatches:
        for c in m["columns"]:
            j = columns.index(c)
            a, b = m["duckdb"][j], m["datafusion"][j]
            rel = abs(a - b) / max(abs(a), abs(b)) if isinstance(a, float) and isinstance(b, float) else None
            entry = by_column.setdefault(c, {"rows": 0, "max_rel_diff": 0.0})
            entry["rows"] += 1
            if rel is None:
                entry["max_rel_diff"] = None
            elif entry["max_rel_diff"] is not None:
                entry["max_rel_diff"] = max(entry["max_rel_diff"], rel)
    result["rows_compared"] = min(len(duck), len(df))
    result["rows_differing"] = len(mismatches)
    result["matched"] = not mismatches and len(duck) == len(df)
    if mismatches:
        result["differing_columns"] = by_column
        result["first_mismatches"] = mismatches[:2]
    return result


# ---------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lake", required=True, help="the lake folder (one Delta table folder per table)")
    p.add_argument("--config", required=True, help="doracost.toml")
    p.add_argument("--views", default=",".join(DEFAULT_VIEWS), help="comma-separated view names")
    p.add_argument("--repeat", type=int, default=3, help="warm runs per view (best is reported)")
    p.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    p.add_argument("--plain-views", action="store_true", help="`-- @cached` views as plain views, not tables")
    p.add_argument("--derived", action="store_true",
                   help="read the `-- @persisted` views from LAKE/_derived/ (doracost's derived tables)")
    p.add_argument("--check-against", metavar="DIR", help="compare with DataFusion's DIR/<view>.csv")
    p.add_argument("--no-timing", action="store_true", help="only the check")
    args = p.parse_args()
    views = [v.strip() for v in args.views.split(",") if v.strip()]

    setup = Setup(args)
    if not args.no_timing:
        time_views(setup, views, args.repeat)
    if args.check_against:
        con = setup.connect()
        ok = True
        for view in views:
            result = check_view(con, view, os.path.join(args.check_against, f"{view}.csv"))
            ok = ok and result["matched"]
            print(json.dumps(result, default=str), flush=True)
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
