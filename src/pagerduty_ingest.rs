//! `doracost ingest pagerduty`: the command around `ingest::pagerduty` (options, the bar,
//! summaries).

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use ingest::pagerduty::{PagerDutyError, PagerDutyOptions, PagerDutySummary};
use model::Lake;
use model::config::{Config, PagerDutySource};

use crate::OutputFormat;

/// A `--since`/`--until` value: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "expected YYYY-MM-DD or an RFC 3339 time (2026-03-01T12:00:00Z), found `{text}`"
            )
        })
}

/// Reads PagerDuty into the lake; the JSON report for `--format json`, else prints a summary.
pub async fn run(
    config: &Config,
    lake: &Lake,
    window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    format: Option<OutputFormat>,
) -> Result<Option<serde_json::Value>> {
    let source = config.sources.pagerduty.clone().unwrap_or_default();
    let token = source
        .token
        .resolve()
        .context("[sources.pagerduty] token: the PagerDuty REST API key")?;
    let options = PagerDutyOptions::from_config(
        &source,
        token,
        config.services.iter().map(|s| s.name.clone()),
    );
    let send =
        ingest::pagerduty::reqwest_sender(options.request_timeout).map_err(anyhow::Error::msg)?;
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} windows [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let result =
        ingest::pagerduty::ingest_pagerduty(lake, &options, send, window, Utc::now(), &mut |p| {
            bar.set_length(p.windows_total.max(p.windows_done) as u64);
            bar.set_position(p.windows_done as u64);
            bar.set_message(format!(
                "{} incidents, {} log entries; {} requests, {} retries, {} rate-limit waits",
                p.incidents,
                p.log_entries,
                p.stats.requests,
                p.stats.retries,
                p.stats.rate_limit_waits
            ));
        })
        .await;
    bar.finish_and_clear();
    let summary = result.map_err(|e| match e {
        PagerDutyError::Lake(e) => {
            anyhow::anyhow!("{e}\nthe tables written by this ingest were restored")
        }
        other => anyhow::anyhow!("{other}\nnothing was written: the lake is as it was"),
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if format == Some(OutputFormat::Json) {
        return Ok(Some(json(&summary, &source, seconds)));
    }
    print(&summary, seconds);
    Ok(None)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn json(summary: &PagerDutySummary, source: &PagerDutySource, seconds: f64) -> serde_json::Value {
    let tables: Vec<_> = summary
        .outcomes
        .iter()
        .map(crate::commands::outcome_json)
        .collect();
    serde_json::json!({
        "source": ingest::pagerduty::SOURCE,
        "api_url": source.api_url,
        "since": stamp(summary.window.since),
        "until": stamp(summary.window.until),
        "windows": summary.windows,
        "incidents_read": summary.incidents_read,
        "log_entries": summary.log_entries,
        "incidents": summary.incidents_kept,
        "filtered_out": summary.filtered_out,
        "unmapped": summary.unmapped,
        "open_incidents_read_again": summary.reopened_reads,
        "open": summary.open,
        "rows_written": summary.rows_written,
        "requests": summary.requests,
        "seconds": seconds,
        "tables": tables,
    })
}

fn print(summary: &PagerDutySummary, seconds: f64) {
    let r = &summary.requests;
    println!(
        "read {} PagerDuty incident(s) created {} to {} and {} log entries in {} request(s) \
         ({} retried, {} rate-limit wait(s)) in {seconds:.1} s:",
        summary.incidents_read,
        stamp(summary.window.since),
        stamp(summary.window.until),
        summary.log_entries,
        r.requests,
        r.retries,
        r.rate_limit_waits,
    );
    println!(
        "  {} incident(s), {} page(s) left out by the urgency/priority filters, {} still open",
        summary.incidents_kept, summary.filtered_out, summary.open
    );
    for (service, n) in &summary.unmapped {
        println!(
            "  skipped {n} incident(s) of PagerDuty service {service}: map it in \
             [sources.pagerduty] services to keep them"
        );
    }
    if summary.outcomes.is_empty() {
        println!("  nothing new: the lake already holds every row");
    }
    for o in &summary.outcomes {
        println!(
            "  {:<20} {:>9} rows ({} new, {} updated)",
            o.table, o.rows_in, o.inserted, o.updated
        );
    }
}
