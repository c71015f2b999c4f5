//! What the benches over a generated organisation share: the scale from `DORACOST_BENCH_SCALE`
//! (default `large`), the organisation generated once under `target/bench-data/org-<scale>`
//! (again with `DORACOST_BENCH_FRESH=1`), a runtime, and this process's peak memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// A bench run's organisation and where its data lives.
pub struct Bench {
    /// `small`, `medium` or `large`.
    pub scale: String,
    /// `DORACOST_BENCH_FRESH=1`: regenerate and re-ingest.
    pub fresh: bool,
    /// `target/bench-data`.
    pub root: PathBuf,
    /// The generated organisation's folder (events, costs, doracost.toml, truth.json).
    pub org: PathBuf,
    /// Its config.
    pub config: model::Config,
    pub runtime: tokio::runtime::Runtime,
}

/// Prints the bench's title line and generates the organisation when it is missing (or, with
/// `regenerate_when_fresh`, when `DORACOST_BENCH_FRESH=1`).
pub fn start(title: &str, regenerate_when_fresh: bool) -> Bench {
    let scale = std::env::var("DORACOST_BENCH_SCALE").unwrap_or_else(|_| "large".into());
    let fresh = std::env::var("DORACOST_BENCH_FRESH").is_ok_and(|v| v == "1");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let org = root.join(format!("org-{scale}"));
    println!(
        "# doracost {title} ({} cores, scale {scale})",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if (fresh && regenerate_when_fresh) || !org.join("truth.json").exists() {
        let _ = std::fs::remove_dir_all(&org);
        let started = Instant::now();
        let report = sample_data::generate(&sample_data::GenerateOptions {
            scale: scale
                .parse()
                .expect("DORACOST_BENCH_SCALE: small, medium or large"),
            seed: sample_data::DEFAULT_SEED,
            out_dir: org.clone(),
            formats: sample_data::Formats::default(),
        })
        .expect("generation");
        println!(
            "generated: {} rows in {:.1} s",
            report.rows_written,
            started.elapsed().as_secs_f64()
        );
    }
    let config = model::Config::load(&org.join("doracost.toml")).expect("the sample's config");
    Bench {
        scale,
        fresh,
        root,
        org,
        config,
        runtime,
    }
}

/// The lake in folder `dir`.
pub fn lake(dir: &Path) -> model::Lake {
    model::Lake::new(dir.to_str().expect("utf-8 path"), Default::default()).expect("lake")
}

impl Bench {
    /// The lake `root/<name>`, built by `ingest` (then timed, with rows/s under `label`) when its
    /// `table` is missing or with `DORACOST_BENCH_FRESH=1`, reused otherwise.
    pub fn ingested_lake<F, Fut>(
        &self,
        name: &str,
        table: &str,
        label: &str,
        ingest: F,
    ) -> (PathBuf, model::Lake)
    where
        F: FnOnce(model::Lake) -> Fut,
        Fut: std::future::Future<Output = ingest::pipeline::IngestSummary>,
    {
        let dir = self.root.join(name);
        if self.fresh || !dir.join(table).join("_delta_log").exists() {
            let _ = std::fs::remove_dir_all(&dir);
            let started = Instant::now();
            let summary = self.runtime.block_on(ingest(lake(&dir)));
            let seconds = started.elapsed().as_secs_f64();
            let rows: usize = summary.outcomes.iter().map(|t| t.rows_in).sum();
            println!(
                "{label}: {rows} rows in {seconds:.1} s ({:.0} rows/s)",
                rows as f64 / seconds
            );
        }
        let lake = lake(&dir);
        (dir, lake)
    }
}

/// This process's peak resident memory so far, in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets this process's peak resident memory to its current size (Linux `clear_refs`), so that
/// [`peak_rss_mb`] reports the peak of what follows.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One derived table written by [`refresh`].
pub struct Refreshed {
    pub name: String,
    pub rows: u64,
    pub seconds: f64,
}

/// Deletes the lake's derived tables and recomputes them as every ingest ends, with `doracost
/// refresh` in a child process (so that this process's memory stays that of the queries it
/// times), and prints the time per table. Returns the seconds taken and each table written.
pub fn refresh(lake_dir: &Path, config: &Path) -> (f64, Vec<Refreshed>) {
    let _ = std::fs::remove_dir_all(lake_dir.join(model::lake::DERIVED_DIR));
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doracost"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(lake_dir)
        .args(["--format", "json", "refresh"])
        .output()
        .expect("doracost refresh runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "doracost refresh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("refresh json");
    let tables: Vec<Refreshed> = report["derived_tables"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|t| t["refreshed"] == true)
                .map(|t| Refreshed {
                    name: t["table"].as_str().unwrap_or_default().to_owned(),
                    rows: t["rows"].as_u64().unwrap_or_default(),
                    seconds: t["seconds"].as_f64().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    println!();
    println!("derived refresh (the end of every ingest; `doracost refresh`): {seconds:.1} s");
    for r in &tables {
        println!("  {:<18} {:>10} rows {:>7.1} s", r.name, r.rows, r.seconds);
    }
    (seconds, tables)
}
