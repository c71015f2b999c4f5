//! Cost by service by month, with allocation, on a large organisation's bill (issue 5,
//! performance). Run with `cargo bench --bench cost_bench`; `DORACOST_BENCH_SCALE` picks the
//! organisation (default `large`: ~20M FOCUS rows; `small` for a quick look). The generated
//! organisation is shared with the other benches under `target/bench-data/org-<scale>/`; its bill
//! is ingested once into `target/bench-data/cost-lake-<scale>/` and reused (set
//! `DORACOST_BENCH_FRESH=1` to re-ingest).
//!
//! Reports, on stdout and in `target/bench-data/cost-<scale>.json`:
//! - the derived-table refresh an ingest ends with (`_derived/` deleted first, so it is timed
//!   every run): `cost_owned`, the bill per day, cloud service and owner;
//! - `SELECT service, month, sum(cost) FROM cost_monthly GROUP BY service, month`: cold (a new
//!   engine: lake opened, `cost_owned` read from its derived table, shared costs split), warm
//!   (the same engine again, best of 3), and live cold (`DORACOST_DERIVED=off` semantics: every
//!   line's rule picked and summed, as after a config change before `doracost refresh`), with
//!   the peak memory of each;
//! - that `cost_reconciliation` differs by exactly 0 everywhere;
//! - the same query in DuckDB over the same Parquet files (`benches/duckdb/cost_duckdb.py`), its
//!   total checked equal to ours, and the ratio. Skipped, and said so, when `python3 -c "import
//!   duckdb"` fails, or with `DORACOST_BENCH_DUCKDB=0`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;

const QUERY: &str =
    "SELECT service, month, sum(cost) AS cost FROM cost_monthly GROUP BY service, month";

fn main() {
    let bench = common::start("cost bench", false);
    let costs = bench.org.join("costs");
    let (lake_dir, lake) = bench.ingested_lake(
        &format!("cost-lake-{}", bench.scale),
        "costs",
        "FOCUS ingest",
        |lake| async move {
            ingest::pipeline::ingest_focus(&lake, &[costs], Box::new(ingest::progress::NoProgress))
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

    // What an ingest ends with: the derived tables, recomputed from nothing.
    let (refresh_s, _) = common::refresh(&lake_dir, &org.join("doracost.toml"));

    let started = Instant::now();
    let engine = runtime
        .block_on(query::Engine::open(&lake, &config))
        .expect("engine");
    let (rows, total) = runtime.block_on(run(&engine));
    let cold = started.elapsed().as_secs_f64();
    let mut warm = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let (again, _) = runtime.block_on(run(&engine));
        assert_eq!(again, rows);
        warm = warm.min(started.elapsed().as_secs_f64());
    }
    let peak = common::peak_rss_mb();

    let off = runtime.block_on(scalar(
        &engine,
        "SELECT count(*) FROM cost_reconciliation WHERE difference <> 0",
    ));
    assert_eq!(off, "0", "allocated + unallocated differs from the bill");
    let lines = runtime.block_on(scalar(&engine, "SELECT count(*) FROM costs"));
    drop(engine);

    // A session after a config change, before `doracost refresh`: everything from the bill.
    common::reset_peak_rss();
    let started = Instant::now();
    let live = runtime
        .block_on(query::Engine::open_with(&lake, &config, false))
        .expect("engine");
    let (live_rows, live_total) = runtime.block_on(run(&live));
    let live_cold = started.elapsed().as_secs_f64();
    drop(live);
    let live_peak = common::peak_rss_mb();

    assert_eq!(
        (live_rows, &live_total),
        (rows, &total),
        "derived and live answers differ"
    );
    println!("bill: {lines} lines; cost by service by month: {rows} rows, total {total}");
    println!(
        "doracost (DataFusion): cold {cold:.2} s, warm {warm:.3} s, peak RSS {peak:.0} MB (derived tables read)"
    );
    println!(
        "doracost, live (no derived tables): cold {live_cold:.2} s, peak RSS {live_peak:.0} MB"
    );
    println!("cost_reconciliation: every provider and month differs by 0");

    let duck = duckdb(&lake_dir, &org.join("doracost.toml"));
    if let Some(d) = &duck {
        let (duck_cold, duck_warm) = (
            d["cold_s"].as_f64().unwrap_or(f64::NAN),
            d["warm_s"].as_f64().unwrap_or(f64::NAN),
        );
        // DuckDB's own peak memory is not shown: a child forked from this process inherits its
        // high-water mark. `python3 benches/duckdb/cost_duckdb.py` alone prints it.
        println!(
            "DuckDB (from the bill): cold {duck_cold:.2} s, warm {duck_warm:.3} s; doracost ÷ DuckDB: cold {:.2} (live {:.2}), warm {:.2}",
            cold / duck_cold,
            live_cold / duck_cold,
            warm / duck_warm
        );
        assert_eq!(d["rows"].as_u64(), Some(rows as u64), "DuckDB's rows");
        assert_eq!(d["total"].as_str(), Some(total.as_str()), "DuckDB's total");
    }
    let json = serde_json::json!({
        "scale": scale, "lines": lines, "rows": rows, "total": total, "cold_s": cold, "warm_s": warm,
        "live_cold_s": live_cold, "refresh_s": refresh_s,
        "peak_rss_mb": { "derived": peak, "live": live_peak }, "duckdb": duck,
    });
    let out = root.join(format!("cost-{scale}.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&json).expect("json")).expect("report");
    println!("report: {}", out.display());
}

/// The query's rows and the sum over them, as exact decimal text.
async fn run(engine: &query::Engine) -> (usize, String) {
    let rows: usize = engine
        .query(QUERY)
        .await
        .expect("query")
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let total = scalar(
        engine,
        &format!("SELECT CAST(sum(cost) AS VARCHAR) FROM ({QUERY})"),
    )
    .await;
    (rows, total)
}

async fn scalar(engine: &query::Engine, sql: &str) -> String {
    let batches = engine.query(sql).await.expect("query");
    let column = batches[0].column(0);
    arrow::util::display::ArrayFormatter::try_new(column.as_ref(), &Default::default())
        .expect("formatter")
        .value(0)
        .to_string()
}

/// DuckDB's figures, or none when DuckDB is not installed.
fn duckdb(lake: &Path, config: &Path) -> Option<serde_json::Value> {
    if std::env::var("DORACOST_BENCH_DUCKDB").is_ok_and(|v| v == "0") {
        println!("(DuckDB comparison skipped: DORACOST_BENCH_DUCKDB=0)");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/duckdb/cost_duckdb.py");
    match Command::new("python3")
        .arg(&script)
        .args(["--lake", lake.to_str().expect("utf-8"), "--config"])
        .arg(config)
        .args(["--repeat", "3"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| serde_json::from_str(l).ok()),
        Ok(out) => {
            println!(
                "(DuckDB comparison skipped: {})",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("failed")
            );
            None
        }
        Err(e) => {
            println!("(DuckDB comparison skipped: python3: {e})");
            None
        }
    }
}
