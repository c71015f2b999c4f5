//! `doracost ingest git`: the command around `ingest::git` (progress, summaries).

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use model::Lake;
use model::config::Config;

use crate::OutputFormat;

/// A bar over repositories, on stderr (hidden when stderr is not a terminal), with a message.
pub fn repository_bar(repositories: usize) -> ProgressBar {
    let bar = ProgressBar::new(repositories as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} repositories [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Reads `repos` into the lake; the JSON report for `--format json`, else prints a summary.
pub async fn run(
    config: &Config,
    lake: &Lake,
    repos: &[String],
    threads: Option<u64>,
    format: Option<OutputFormat>,
) -> Result<Option<serde_json::Value>> {
    let repos = repos
        .iter()
        .map(|text| ingest::git::GitRepo::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .context("nothing was written: the lake is as it was")?;
    let threads = threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| usize::try_from(n).unwrap_or(1),
    );
    let bar = repository_bar(repos.len());
    let started = std::time::Instant::now();
    let (mut commits, mut filled) = (0_u64, 0_u64);
    let result = ingest::git::ingest_git(lake, &repos, &config.services, threads, |report| {
        commits += report.commits;
        filled += report.deployments_filled;
        bar.inc(1);
        bar.set_message(format!("{commits} commits, {filled} deployments completed"));
    })
    .await;
    bar.finish_and_clear();
    let summary = result.map_err(|e| {
        anyhow::anyhow!(
            "{e}\nrepositories written before the failure stay; the others are as they were"
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let total: u64 = summary.repos.iter().map(|r| r.commits).sum();
    let read: u64 = summary.repos.iter().map(|r| r.commits_read).sum();
    let rate = |n: u64, s: f64| if s > 0.0 { (n as f64 / s).round() } else { 0.0 };
    if format == Some(OutputFormat::Json) {
        let tables: Vec<_> = summary
            .outcomes
            .iter()
            .map(crate::commands::outcome_json)
            .collect();
        return Ok(Some(serde_json::json!({
            "source": ingest::git::SOURCE,
            "repos": summary.repos,
            "commits": total,
            "commits_read": read,
            "read_seconds": summary.read_seconds,
            "commits_per_second_read": rate(total, summary.read_seconds),
            "seconds": seconds,
            "tables": tables,
        })));
    }
    println!(
        "read {} commit(s) of {} repositor{} in {:.1} s ({} new; {:.0} commits/s):",
        total,
        summary.repos.len(),
        if summary.repos.len() == 1 { "y" } else { "ies" },
        summary.read_seconds,
        read,
        rate(total, summary.read_seconds)
    );
    for r in &summary.repos {
        println!(
            "  {:<32} {:>8} commits, {:>6} new; {} deployment(s) completed with {} change(s){}",
            r.repo,
            r.commits,
            r.commits_read,
            r.deployments_filled,
            r.changes_linked,
            if r.heads_missing > 0 {
                format!(
                    "; {} whose head commit is not in the repository",
                    r.heads_missing
                )
            } else {
                String::new()
            }
        );
    }
    for o in &summary.outcomes {
        println!(
            "  {:<20} {:>9} rows ({} new, {} updated)",
            o.table, o.rows_in, o.inserted, o.updated
        );
    }
    Ok(None)
}
