//! The DORA views on a large organisation (issue: DORA metrics engine, performance). Run with
//! `cargo bench --bench dora_bench`; `DORACOST_BENCH_SCALE` picks the organisation (default
//! `large`, `small` for a quick look). The generated organisation and its lake are kept under
//! `target/bench-data/` and reused (set `DORACOST_BENCH_FRESH=1` to rebuild them).
//!
//! Reports, on stdout and in `target/bench-data/dora-<scale>.json`:
//! - the events ingest (records/s), when the lake is (re)built;
//! - the derived-table refresh an ingest ends with (`_derived/` deleted first, so it is timed
//!   every run): seconds per table;
//! - each view, `SELECT *` fetched whole: cold (a new engine: lake opened, fresh derived tables
//!   read, the rest computed) and warm (the same engine again, best of 3), rows and rows/s; then
//!   cold again with `DORACOST_DERIVED=off` semantics (every view computed from the canonical
//!   tables: a session after a config change, before `doracost refresh`); and the peak memory of
//!   each phase;
//! - the same queries in DuckDB (`benches/duckdb/dora_duckdb.py`, the views translated from
//!   `dora.sql`) over the same Parquet files twice: reading the persisted views from the same
//!   derived tables (`--derived`, against doracost's cold), and computing everything from the
//!   canonical tables (against doracost's live cold). Skipped, and said so, when
//!   `python3 -c "import duckdb"` fails, or with `DORACOST_BENCH_DUCKDB=0`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;

const VIEWS: [&str; 8] = [
    "dora_deployments",
    "dora_changes",
    "dora_recoveries",
    "dora_incidents",
    "dora_daily",
    "dora_weekly",
    "dora_monthly",
    "dora_targets",
];

fn main() {
    let bench = common::start("DORA views bench", true);
    let events = bench.org.join("events");
    let (lake_dir, lake) = bench.ingested_lake(
        &format!("lake-{}", bench.scale),
        "deployments",
        "events ingest",
        |lake| async move {
            ingest::pipeline::ingest_events(
                &lake,
                &[events],
                Box::new(ingest::progress::NoProgress),
            )
            .await
            .expect("ingest")
        },
    );
    let common::Bench {
        scale,
        root,
        org,
        config,
        runtime,
        ..
    } = bench;
    let engine = runtime
        .block_on(query::Engine::open(&lake, &config))
        .expect("engine");
    for table in ["deployments", "changes", "deployment_changes", "incidents"] {
        let n = runtime.block_on(count(&engine, table));
        println!("lake: {table:<20} {n:>10} rows");
    }
    drop(engine);

    // What an ingest ends with: the derived tables, recomputed from nothing.
    let (refresh_s, refreshed) = common::refresh(&lake_dir, &org.join("doracost.toml"));
    println!();
    println!(
        "{:<18} {:>10} {:>8} {:>8} {:>12} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "view",
        "rows",
        "cold s",
        "warm s",
        "warm rows/s",
        "duck cold",
        "duck warm",
        "df/duck",
        "live cold",
        "live warm",
        "duck live",
        "duck lw"
    );
    let duck_derived = duckdb(&lake_dir, &org.join("doracost.toml"), true);
    let duck_live = duckdb(&lake_dir, &org.join("doracost.toml"), false);
    let find = |all: &[serde_json::Value], view: &str, key: &str| {
        all.iter()
            .find(|d| d["view"] == view)
            .and_then(|d| d[key].as_f64())
    };
    let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
    let mut timed = Vec::new();
    for view in VIEWS {
        let (rows, cold, warm) = runtime.block_on(time_view(&lake, &config, view, true));
        timed.push((view, rows, cold, warm));
    }
    let derived_peak = common::peak_rss_mb();
    common::reset_peak_rss();
    let mut report = Vec::new();
    for (view, rows, cold, warm) in timed {
        let (live_rows, live_cold, live_warm) =
            runtime.block_on(time_view(&lake, &config, view, false));
        assert_eq!(
            live_rows, rows,
            "{view}: live and derived row counts differ"
        );
        let duck_cold = find(&duck_derived, view, "cold_s");
        let duck_warm = find(&duck_derived, view, "warm_s");
        let duck_live_cold = find(&duck_live, view, "cold_s");
        println!(
            "{view:<18} {rows:>10} {cold:>8.3} {warm:>8.3} {:>12.0} {:>9} {:>9} {:>8} {live_cold:>9.3} {live_warm:>9.3} {:>9} {:>9}",
            rows as f64 / warm,
            show(duck_cold),
            show(duck_warm),
            duck_cold.map_or("-".to_owned(), |d| format!("{:.2}", cold / d)),
            show(duck_live_cold),
            show(find(&duck_live, view, "warm_s")),
        );
        for (side, all) in [("derived", &duck_derived), ("live", &duck_live)] {
            if let Some(d) = all.iter().find(|d| d["view"] == view)
                && d["rows"].as_u64() != Some(rows as u64)
            {
                println!("  ! DuckDB ({side}) returned {} rows", d["rows"]);
            }
        }
        report.push(serde_json::json!({
            "view": view, "rows": rows, "cold_s": cold, "warm_s": warm, "live_cold_s": live_cold,
            "live_warm_s": live_warm,
            "duckdb_cold_s": duck_cold, "duckdb_warm_s": duck_warm,
            "duckdb_live_cold_s": duck_live_cold,
            "duckdb_live_warm_s": find(&duck_live, view, "warm_s"),
        }));
    }
    let live_peak = common::peak_rss_mb();
    println!(
        "peak RSS (this process): reading derived tables {derived_peak:.0} MB, live {live_peak:.0} MB"
    );
    let refresh: Vec<_> = refreshed
        .iter()
        .map(|r| serde_json::json!({ "table": r.name, "rows": r.rows, "seconds": r.seconds }))
        .collect();
    let json = serde_json::json!({
        "scale": scale, "views": report, "refresh_s": refresh_s, "refresh": refresh,
        "peak_rss_mb": { "derived": derived_peak, "live": live_peak },
    });
    let out = root.join(format!("dora-{scale}.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&json).expect("json")).expect("report");
    println!("report: {}", out.display());
}

async fn count(engine: &query::Engine, table: &str) -> usize {
    let batches = engine
        .query(&format!("SELECT count(*) FROM {table}"))
        .await
        .expect("count");
    let column = batches[0].column(0);
    arrow::array::cast::as_primitive_array::<arrow::datatypes::Int64Type>(column).value(0) as usize
}

/// Rows, cold seconds (new engine: open + compute) and warm seconds (best of 3 on that engine: for
/// a live engine the per-row views are then in memory, with derived tables they are re-read).
async fn time_view(
    lake: &model::Lake,
    config: &model::Config,
    view: &str,
    read_derived: bool,
) -> (usize, f64, f64) {
    let sql = format!("SELECT * FROM {view}");
    let started = Instant::now();
    let engine = query::Engine::open_with(lake, config, read_derived)
        .await
        .expect("engine");
    let rows = fetch(&engine, &sql).await;
    let cold = started.elapsed().as_secs_f64();
    let mut warm = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(fetch(&engine, &sql).await, rows);
        warm = warm.min(started.elapsed().as_secs_f64());
    }
    (rows, cold, warm)
}

/// Runs `sql` and keeps every batch (as a dashboard would), returning the row count.
async fn fetch(engine: &query::Engine, sql: &str) -> usize {
    engine
        .query(sql)
        .await
        .expect("query")
        .iter()
        .map(|b| b.num_rows())
        .sum()
}

/// DuckDB's timings, one JSON object per view, or none when DuckDB is not installed. `derived`:
/// the persisted views read from the lake's derived tables.
fn duckdb(lake: &Path, config: &Path, derived: bool) -> Vec<serde_json::Value> {
    if std::env::var("DORACOST_BENCH_DUCKDB").is_ok_and(|v| v == "0") {
        println!("(DuckDB comparison skipped: DORACOST_BENCH_DUCKDB=0)");
        return Vec::new();
    }
    let script: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/duckdb/dora_duckdb.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(["--lake", lake.to_str().expect("utf-8"), "--config"])
        .arg(config)
        .args(["--views", &VIEWS.join(","), "--repeat", "3"])
        .args(if derived { &["--derived"][..] } else { &[] })
        .output();
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        Ok(out) => {
            println!(
                "(DuckDB comparison skipped: {})",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("failed")
            );
            Vec::new()
        }
        Err(e) => {
            println!("(DuckDB comparison skipped: python3: {e})");
            Vec::new()
        }
    }
}
