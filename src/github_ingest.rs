//! `doracost ingest github`: the command around `ingest::github` (progress, summaries).

use anyhow::{Result, bail};
use model::Lake;
use model::config::Config;

use crate::OutputFormat;

/// Reads the repositories into the lake; the JSON report for `--format json`, else prints a
/// summary.
pub async fn run(
    config: &Config,
    lake: &Lake,
    repos: &[String],
    format: Option<OutputFormat>,
) -> Result<Option<serde_json::Value>> {
    let Some(source) = config.sources.github.as_ref() else {
        bail!(
            "`doracost ingest github` needs a [sources.github] section in the config, at least \
             `repos = [\"owner/name\"]` (README: GitHub)"
        );
    };
    let repos: Vec<String> = if repos.is_empty() {
        source.repos.clone()
    } else {
        repos.to_vec()
    };
    if repos.is_empty() {
        bail!(
            "no repository to read: name them with --repo OWNER/NAME or in [sources.github] repos"
        );
    }
    if let Some(bad) = repos
        .iter()
        .find(|r| r.split('/').count() != 2 || r.starts_with('/') || r.ends_with('/'))
    {
        bail!("--repo {bad:?}: expected OWNER/NAME");
    }
    let mut client = ingest::github::Client::new(source)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nnothing was written: the lake is as it was"))?;
    let bar = crate::git_ingest::repository_bar(repos.len());
    let started = std::time::Instant::now();
    let (mut deployments, mut changes, mut incidents) = (0, 0, 0);
    let result = ingest::github::ingest_github(
        lake,
        &mut client,
        source,
        &config.services,
        &repos,
        |report, stats| {
            deployments += report.deployments;
            changes += report.changes;
            incidents += report.incidents;
            bar.inc(1);
            bar.set_message(format!(
                "{deployments} deployments, {changes} changes, {incidents} incidents; {} requests ({} not modified)",
                stats.requests, stats.not_modified
            ));
        },
    )
    .await;
    bar.finish_and_clear();
    let summary = result.map_err(|e| {
        anyhow::anyhow!(
            "{e}\nrepositories written before the failure stay (with their cursors); the next run \
             starts from there"
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if format == Some(OutputFormat::Json) {
        let tables: Vec<_> = summary
            .outcomes
            .iter()
            .map(crate::commands::outcome_json)
            .collect();
        return Ok(Some(serde_json::json!({
            "source": ingest::github::map::SOURCE,
            "repos": summary.repos,
            "requests": summary.requests,
            "seconds": seconds,
            "tables": tables,
        })));
    }
    let r = &summary.requests;
    println!(
        "read {} repositor{} from GitHub in {:.1} s: {} request(s), {} not modified (304), {} retried, {} rate-limit wait(s)",
        summary.repos.len(),
        if summary.repos.len() == 1 { "y" } else { "ies" },
        seconds,
        r.requests,
        r.not_modified,
        r.retries,
        r.rate_limit_waits
    );
    for p in &summary.repos {
        println!(
            "  {:<32} {:>6} deployments ({} still running), {:>6} changes, {:>5} PRs, {:>4} incidents",
            p.repo, p.deployments, p.pending, p.changes, p.pull_requests, p.incidents
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
