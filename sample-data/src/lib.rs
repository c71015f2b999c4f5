//! `sample-data`: a deterministic generator of a realistic organisation (teams, services, repos,
//! deployments, changes, incidents and cloud bills), written in the sources' own formats.
//!
//! The organisation is built once as ground truth ([`org`], [`delivery`], [`costs`]) and written
//! through format writers ([`writers`]): the generic events NDJSON, Apache DevLake webhook
//! payloads, FOCUS 1.0 CSV bills and a `doracost.toml`. [`Truth`] (`truth.json`) states exactly what
//! the files contain, so ingest and query tests can compare the lake with it. Same seed and scale
//! give byte-identical files. Not for: parsing those formats (that is `ingest`), or the CLI.
//!
//! Every scale streams: repo by repo for events, owner by owner inside each month for bills, so
//! memory stays bounded even at the large scale.

pub mod calendar;
pub mod commits;
pub mod costs;
pub mod delivery;
pub mod formats;
pub mod git;
pub mod money;
pub mod org;
pub mod random;
pub mod truth;
pub mod writers;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use formats::{Format, Formats, ParseFormatsError};
pub use org::{ExpectedShape, expected_shape};
pub use truth::Truth;

use crate::delivery::{Environment, Ids};
use crate::truth::TruthBuilder;
use crate::writers::OutFile;
use crate::writers::devlake::JsonArrayFile;
use crate::writers::focus::FocusMonthFile;

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 20_240_917;

/// How big an organisation to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scale {
    /// 3 teams, 12 services, a few thousand deployments; checked into git.
    Small,
    /// About 100 services.
    Medium,
    /// About 1,000 services, ~2M deployments, ~20M cost rows.
    Large,
}

/// A scale name that is not `small`, `medium` or `large`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scale {0:?}: expected small, medium or large")]
pub struct ParseScaleError(pub String);

impl FromStr for Scale {
    type Err = ParseScaleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "small" => Ok(Scale::Small),
            "medium" => Ok(Scale::Medium),
            "large" => Ok(Scale::Large),
            other => Err(ParseScaleError(other.to_string())),
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scale::Small => "small",
            Scale::Medium => "medium",
            Scale::Large => "large",
        })
    }
}

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Size of the organisation.
    pub scale: Scale,
    /// Seed of every random stream.
    pub seed: u64,
    /// Output directory (created if missing).
    pub out_dir: PathBuf,
    /// The source formats to write (default `events,focus`); `truth.json` and `doracost.toml` are
    /// always written, and describe the whole organisation whatever the set.
    pub formats: Formats,
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    /// Records written: deployments, incidents and FOCUS rows.
    pub rows_written: u64,
    /// Files written, in order.
    pub files: Vec<PathBuf>,
    /// The ground-truth summary (also in `truth.json`).
    pub truth: Truth,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Writing a file or creating a directory failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Serializing JSON into a file failed.
    #[error("cannot write JSON to {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// Writing a CSV row failed.
    #[error("cannot write CSV to {}: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: csv::Error,
    },
}

/// The delivery files, written repo by repo.
struct EventFiles {
    deployments: OutFile,
    incidents: OutFile,
    devlake_deployments: JsonArrayFile,
    devlake_incidents: JsonArrayFile,
}

/// Writes one repo's deployments and incidents, each to the file its source writes.
fn write_repo_events(
    org: &org::Org,
    history: &delivery::RepoHistory,
    files: &mut EventFiles,
    rows_written: &mut u64,
) -> Result<(), GenerateError> {
    for service in &history.services {
        for deployment in &service.deployments {
            if org.repos[history.repo].devlake && deployment.environment == Environment::Production
            {
                files
                    .devlake_deployments
                    .push_deployment(org, history, deployment)?;
            } else {
                writers::events::write_deployment(
                    &mut files.deployments,
                    org,
                    history,
                    deployment,
                )?;
            }
            *rows_written += 1;
        }
        for incident in &service.incidents {
            if org.incidents_in_devlake(service.service) {
                files.devlake_incidents.push_incident(org, incident)?;
            } else {
                writers::events::write_incident(&mut files.incidents, org, history, incident)?;
            }
            *rows_written += 1;
        }
    }
    Ok(())
}

/// Generates the organisation of `opts.scale` from `opts.seed` into `opts.out_dir`.
pub fn generate(opts: &GenerateOptions) -> Result<GenerateReport, GenerateError> {
    let org = org::Org::plan(opts.scale);
    let out = &opts.out_dir;
    let mut truth = TruthBuilder::new(&org, &opts.scale.to_string(), opts.seed);
    let mut rows_written = 0_u64;
    let mut files = Vec::new();

    let mut event_files = match opts.formats.contains(Format::Events) {
        true => Some(EventFiles {
            deployments: OutFile::create(&out.join("events/deployments.ndjson"))?,
            incidents: OutFile::create(&out.join("events/incidents.ndjson"))?,
            devlake_deployments: JsonArrayFile::create(
                &out.join("events/devlake-deployments.json"),
            )?,
            devlake_incidents: JsonArrayFile::create(&out.join("events/devlake-incidents.json"))?,
        }),
        false => None,
    };
    let git_dir = opts.formats.contains(Format::Git).then(|| out.join("git"));
    let mut github = match opts.formats.contains(Format::Github) {
        true => Some(writers::github::GithubWriter::create(out)?),
        false => None,
    };
    let mut pagerduty = opts
        .formats
        .contains(Format::Pagerduty)
        .then(|| writers::pagerduty::PagerDutyAccount::new(&org));
    let mut git_files = Vec::new();
    let (org_ref, seed) = (&org, opts.seed);
    std::thread::scope(|scope| -> Result<(), GenerateError> {
        // Repos are generated (their commits hashed) on a second thread while the previous one is
        // written: the two overlap, and at most three histories are in memory at once.
        let (sender, histories) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            let mut ids = Ids::default();
            for repo in 0..org_ref.repos.len() {
                let history = delivery::generate_repo(org_ref, repo, seed, &mut ids);
                if sender.send(history).is_err() {
                    // The writer stopped on an error, which it returns.
                    return;
                }
            }
        });
        for history in histories {
            if let Some(event_files) = event_files.as_mut() {
                write_repo_events(org_ref, &history, event_files, &mut rows_written)?;
            }
            if let Some(git_dir) = &git_dir {
                git_files.extend(writers::git::write_repo(org_ref, &history, git_dir)?);
            }
            if let Some(github) = github.as_mut() {
                github.write_repo(org_ref, &history)?;
            }
            if let Some(account) = pagerduty.as_mut() {
                account.record_repo(org_ref, &history);
            }
            truth.record_repo(org_ref, &history);
        }
        Ok(())
    })?;
    if let Some(event_files) = event_files {
        files.push(event_files.deployments.finish()?);
        files.push(event_files.incidents.finish()?);
        files.push(event_files.devlake_deployments.finish()?);
        files.push(event_files.devlake_incidents.finish()?);
    }
    files.extend(git_files);
    if let Some(github) = github {
        files.extend(github.finish()?);
    }
    let pagerduty = match pagerduty {
        Some(account) => {
            let (written, pagerduty) = account.finish(&org, out)?;
            files.extend(written);
            rows_written += pagerduty.incidents + pagerduty.noise + pagerduty.unmapped;
            Some(pagerduty)
        }
        None => None,
    };

    let owners = costs::owners(&org);
    let focus = opts.formats.contains(Format::Focus);
    for month in calendar::months() {
        // Without FOCUS files the lines are still drawn: truth.json and the budgets sum them.
        let mut file = focus
            .then(|| FocusMonthFile::create(out, &month))
            .transpose()?;
        for &owner in &owners {
            for line in costs::month_lines(&org, owner, &month, opts.seed) {
                if let Some(file) = file.as_mut() {
                    file.write_line(&line)?;
                    rows_written += 1;
                }
                truth.record_cost(&line);
            }
        }
        if let Some(file) = file {
            files.push(file.finish()?);
        }
    }

    let mut team_monthly_cost = vec![0; org.teams.len()];
    for service in &org.services {
        team_monthly_cost[service.team] +=
            truth.allocated_total(&service.name) / calendar::PERIOD_MONTHS as i128;
    }
    let mut config = OutFile::create(&out.join("doracost.toml"))?;
    config.write(writers::config::config_toml(&org, &team_monthly_cost).as_bytes())?;
    if pagerduty.is_some() {
        config.write(writers::pagerduty::config_section(&org).as_bytes())?;
    }
    files.push(config.finish()?);

    let mut truth = truth.finish();
    truth.pagerduty = pagerduty;
    let mut truth_file = OutFile::create(&out.join("truth.json"))?;
    let text = serde_json::to_string_pretty(&truth).map_err(|source| GenerateError::Json {
        path: truth_file.path.clone(),
        source,
    })?;
    truth_file.write(text.as_bytes())?;
    truth_file.write(b"\n")?;
    files.push(truth_file.finish()?);

    Ok(GenerateReport {
        rows_written,
        files,
        truth,
    })
}

#[cfg(test)]
mod tests;
