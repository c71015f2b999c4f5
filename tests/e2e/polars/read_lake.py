"""Reads a doracost lake with polars and deltalake alone, as README's "Reading the lake without
doracost" shows, and prints what it found as one JSON object:

- `logged`: each canonical table's Delta version in the lake's commit log (`_commits`), the
  versions doracost's readers open;
- `rows`: each table's row count at that version; `billed_cost`: the sum of `costs.billed_cost`
  per provider at that version, as exact decimal text;
- `latest_rows`: each table's row count at its latest Delta version (beyond the log while an
  ingest runs, or after one was killed).

Usage: python3 read_lake.py LAKE_DIR
"""

import json
import sys
from pathlib import Path

import polars as pl
from deltalake import DeltaTable


def logged_versions(lake: Path) -> dict:
    """Table name -> Delta version named by the commit log's latest entry (absent tables left out)."""
    entry = DeltaTable(str(lake / "_commits")).history(1)[0]
    tables = entry["doracost.tables"]
    if isinstance(tables, str):
        tables = json.loads(tables)
    # Each value is the table's content id `<delta table id>@<version>`, or `absent`.
    return {name: int(content.rsplit("@", 1)[1]) for name, content in tables.items() if content != "absent"}


def main() -> None:
    lake = Path(sys.argv[1])
    logged = logged_versions(lake)
    rows, latest_rows = {}, {}
    for table, version in sorted(logged.items()):
        path = str(lake / table)
        rows[table] = pl.scan_delta(path, version=version).select(pl.len()).collect().item()
        latest_rows[table] = pl.scan_delta(path).select(pl.len()).collect().item()
    billed = {}
    if "costs" in logged:
        totals = (
            pl.scan_delta(str(lake / "costs"), version=logged["costs"])
            .group_by("provider")
            .agg(pl.col("billed_cost").sum())
            .collect()
        )
        for provider, total in totals.iter_rows():
            # A Decimal(38, 12) sums to a Python Decimal: exact, printed as text.
            billed[provider] = str(total)
    print(json.dumps({"logged": logged, "rows": rows, "latest_rows": latest_rows, "billed_cost": billed}))


if __name__ == "__main__":
    main()
