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
