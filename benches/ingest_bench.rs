//! Ingest and generation throughput (issue: foundation, performance). Run with
//! `cargo bench --bench ingest_bench`; `DORACOST_BENCH_ROWS` sets the bill size (default 2,000,000),
//! `DORACOST_BENCH_SCALE` the generated organisation (default `large`; `medium` for a quick look).
//!
//! Reports, on stdout:
//! - FOCUS CSV → rows: parsing alone, and parsing plus the Delta commit (rows/s);
//! - events NDJSON (a deployment listing 5 changes per line) → rows: parsing (records/s);
//! - sample generation: rows/s and the generator's peak resident memory (measured in a child
//!   process running `doracost sample generate`, which reports its own peak);
//! - with `DORACOST_BENCH_SAMPLE=<a generated organisation's folder>` instead of the generation:
//!   `doracost ingest events` and `ingest focus` of it into a new lake, as child processes, with
//!   rows/s, the ingest's peak resident memory (target ≤ 1 GB), and the refresh's time and peak.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn main() {
    let rows: usize = std::env::var("DORACOST_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let scale = std::env::var("DORACOST_BENCH_SCALE").unwrap_or_else(|_| "large".into());
    let work = tempfile::tempdir().expect("a temp dir");

    println!(
        "# doracost ingest bench ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let bill = work.path().join("focus-bench.csv");
    let started = Instant::now();
    let bytes = write_bill(&bill, rows);
    println!(
        "bill: {rows} rows, {:.0} MB, written in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let files = vec![bill.clone()];

    let started = Instant::now();
    let slices = ingest::focus::read_focus_files(
        &files,
        chrono::Utc::now(),
        &mut ingest::progress::NoProgress,
    )
    .expect("the bill parses");
    let parse_s = started.elapsed().as_secs_f64();
    let parsed: usize = slices
        .iter()
        .flat_map(|s| &s.batches)
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(parsed, rows);
    drop(slices);
    println!(
        "focus parse:            {:>10.0} rows/s ({parse_s:.2} s)",
        rows as f64 / parse_s
    );

    let lake_dir = work.path().join("lake");
    let lake =
        model::Lake::new(lake_dir.to_str().expect("utf-8 path"), Default::default()).expect("lake");
    let started = Instant::now();
    runtime
        .block_on(ingest::pipeline::ingest_focus(
            &lake,
            &files,
            Box::new(ingest::progress::NoProgress),
        ))
        .expect("the bill ingests");
    let ingest_s = started.elapsed().as_secs_f64();
    println!(
        "focus CSV -> lake:      {:>10.0} rows/s ({ingest_s:.2} s, target >= 500000)",
        rows as f64 / ingest_s
    );
    std::fs::remove_dir_all(&lake_dir).ok();
    std::fs::remove_file(&bill).ok();

    let events = work.path().join("events-bench.ndjson");
    let deployments = rows / 10;
    write_events(&events, deployments);
    let started = Instant::now();
    let batches = ingest::events::read_event_files(
        std::slice::from_ref(&events),
        chrono::Utc::now(),
        &mut ingest::progress::NoProgress,
    )
    .expect("the events parse");
    let events_s = started.elapsed().as_secs_f64();
    let records = batches.deployments.num_rows() + batches.changes.num_rows();
    assert_eq!(records, deployments * 6);
    println!(
        "events parse:           {:>10.0} records/s ({records} records, {events_s:.2} s)",
        records as f64 / events_s
    );
    drop(batches);
    std::fs::remove_file(&events).ok();

    let out = match std::env::var_os("DORACOST_BENCH_SAMPLE") {
        Some(sample) => {
            println!(
                "sample: {} (generation skipped)",
                Path::new(&sample).display()
            );
            ingest_org(Path::new(&sample), work.path());
            return;
        }
        None => work.path().join("sample"),
    };
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_doracost"))
        .args([
            "sample", "generate", "--scale", &scale, "--format", "json", "--out",
        ])
        .arg(&out)
        .output()
        .expect("doracost runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let wall = started.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json report");
    let generated = report["rows_written"].as_f64().unwrap_or(0.0);
    println!(
        "sample generate {scale}: {:>10.0} rows/s ({generated} rows, {wall:.1} s, peak RSS {:.0} MB, {:.0} MB on disk)",
        generated / report["seconds"].as_f64().unwrap_or(wall),
        report["peak_rss_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
        dir_bytes(&out) as f64 / 1e6,
    );
}

/// `doracost ingest events` and then `ingest focus` of a generated organisation (`sample`, as
/// `doracost sample generate` writes it) into a new lake under `work`, each run as the user runs
/// it (a child process, refreshing the derived tables after): rows/s, the ingest's peak resident
/// memory and the process's peak with the refresh (as the binary reports them in `--format
/// json`), and the refresh's time.
fn ingest_org(sample: &Path, work: &Path) {
    let lake = work.join("org-lake");
    let config = sample.join("doracost.toml");
    for (source, folder) in [("events", "events"), ("focus", "costs")] {
        let started = Instant::now();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_doracost"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&lake)
            .args(["--format", "json", "ingest", source])
            .arg(sample.join(folder))
            .output()
            .expect("doracost runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let wall = started.elapsed().as_secs_f64();
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("json report");
        let rows: f64 = report["tables"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["rows_in"].as_f64().unwrap_or(0.0))
            .sum();
        let refresh = report["derived_tables"]["seconds"].as_f64().unwrap_or(0.0);
        let mb = |key: &str| report[key].as_f64().unwrap_or(f64::NAN) / 1e6;
        println!(
            "ingest {source:<6} (large org): {rows:.0} rows in {:.1} s = {:>8.0} rows/s, peak RSS {:.0} MB (target <= 1000); \
             refresh {refresh:.1} s, peak RSS with it {:.0} MB",
            wall - refresh,
            rows / (wall - refresh),
            mb("ingest_peak_rss_bytes"),
            mb("peak_rss_bytes"),
        );
    }
}

/// A FOCUS bill of `rows` rows: the FinOps Foundation's real sample rows, cycled, each copy moved to
/// its own charge day so that the rows are distinct.
fn write_bill(path: &PathBuf, rows: usize) -> u64 {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/focus/focus_1.0_sample_1000.csv");
    let reader = BufReader::new(std::fs::File::open(&sample).expect("the shared FOCUS sample"));
    let mut lines = reader.lines().map_while(Result::ok);
    let header = lines.next().expect("a header");
    let body: Vec<String> = lines.collect();
    let mut out = BufWriter::new(std::fs::File::create(path).expect("bench file"));
    writeln!(out, "{header}").expect("write");
    for i in 0..rows {
        let line = &body[i % body.len()];
        let day = 1 + (i / body.len()) % 28;
        let moved = line.replace("2024-09-18 ", &format!("2024-09-{day:02} "));
        writeln!(out, "{moved}").expect("write");
    }
    out.flush().expect("flush");
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// `deployments` generic-format deployments, each listing 5 changes with PR data.
fn write_events(path: &Path, deployments: usize) {
    let mut out = BufWriter::new(std::fs::File::create(path).expect("bench file"));
    for d in 0..deployments {
        let s = d % 50;
        write!(
            out,
            r#"{{"type":"deployment","id":{d},"service":"svc-{s}","repo":"acme/svc-{s}","environment":"production","ref":"main","commit_sha":"{d:040x}","started_at":"2025-03-04T10:00:00Z","finished_at":"2025-03-04T10:15:00Z","status":"success","url":"https://ci.example.com/{d}","changes":["#
        )
        .expect("write");
        for c in 0..5 {
            let sep = if c == 0 { "" } else { "," };
            write!(
                out,
                r#"{sep}{{"sha":"{:040x}","authored_at":"2025-03-03T09:00:00Z","committed_at":"2025-03-03T09:00:00Z","paths":["svc/src/a.rs","svc/src/b.rs"],"pr_number":{d},"pr_opened_at":"2025-03-03T10:00:00Z","pr_merged_at":"2025-03-04T09:00:00Z","labels":["feature"]}}"#,
                d * 5 + c
            )
            .expect("write");
        }
        writeln!(out, "]}}").expect("write");
    }
    out.flush().expect("flush");
}

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_bytes(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
