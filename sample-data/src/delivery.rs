//! Ground truth of software delivery: one repo's commits, and each of its services' deployments
//! and incidents, generated as one timeline per service.
//!
//! A repo is the unit of generation (a monorepo commit may touch two services), so memory is
//! bounded by the largest repo, never by the organisation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::calendar::{
    DAY, END_DAY_EXCLUSIVE, HOUR, MINUTE, PERIOD_END, PERIOD_START, START_DAY, is_working_day,
};
use crate::git::{GitHistory, assign_commit_ids};
use crate::org::{DeliveryRates, Org};
use crate::random::{Stream, poisson, sha, span, stream};

/// A pull request that brought a change.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// PR number within the repo.
    pub number: u64,
    /// First commit on the PR branch.
    pub first_commit_at: i64,
    /// PR opened.
    pub opened_at: i64,
    /// First review by someone other than the author.
    pub first_review_at: i64,
    /// Merged (squash commit time is this or later).
    pub merged_at: i64,
    /// Head branch, e.g. `feature/cart-totals` or `hotfix/inc-12`.
    pub head_branch: String,
}

/// A commit on the default branch.
#[derive(Debug, Clone)]
pub struct Change {
    /// Commit id.
    pub sha: String,
    /// Author time.
    pub authored_at: i64,
    /// Commit time on the default branch.
    pub committed_at: i64,
    /// Files touched.
    pub paths: Vec<String>,
    /// The PR, unless pushed directly.
    pub pr: Option<PullRequest>,
    /// PR labels.
    pub labels: Vec<String>,
    /// Incident ids the PR references.
    pub incident_refs: Vec<String>,
    /// Services touched, as positions in the repo's service list.
    pub services: Vec<usize>,
}

/// Deployment environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Production.
    Production,
    /// Staging, deployed before production for some services.
    Staging,
}

/// Deployment outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Succeeded.
    Success,
    /// Failed.
    Failure,
    /// Cancelled.
    Cancelled,
}

/// A deployment of one service.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Unique id across the organisation.
    pub id: u64,
    /// Service index in the organisation.
    pub service: usize,
    /// Environment.
    pub environment: Environment,
    /// Deployed head commit, index into [`RepoHistory::changes`].
    pub head: usize,
    /// Started.
    pub started_at: i64,
    /// Finished (or failed).
    pub finished_at: i64,
    /// Outcome.
    pub status: Status,
    /// The pipeline flags it as a rollback to an earlier sha.
    pub is_rollback: bool,
    /// A redeploy of the sha already in production.
    pub is_redeploy: bool,
    /// Ships a hotfix for an incident.
    pub is_hotfix: bool,
    /// Changes listed: not yet shipped to this environment, up to the head (indices into changes).
    pub changes: Vec<usize>,
}

/// What an incident record says caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Nothing (the incident may still start shortly after a deploy).
    Unlinked,
    /// A deployment id.
    Deployment(u64),
    /// A commit, index into [`RepoHistory::changes`].
    Sha(usize),
}

/// An incident of one service.
#[derive(Debug, Clone)]
pub struct Incident {
    /// Unique number across the organisation (`INC-<n>`).
    pub id: u64,
    /// Service index in the organisation.
    pub service: usize,
    /// Title.
    pub title: String,
    /// `SEV1`..`SEV3`.
    pub severity: &'static str,
    /// Started.
    pub started_at: i64,
    /// Resolved; `None` while open.
    pub resolved_at: Option<i64>,
    /// Linked cause.
    pub cause: Cause,
}

/// One service's deployments and incidents.
#[derive(Debug, Clone)]
pub struct ServiceHistory {
    /// Service index in the organisation.
    pub service: usize,
    /// Deployments, in creation order.
    pub deployments: Vec<Deployment>,
    /// Incidents, by start time.
    pub incidents: Vec<Incident>,
}

/// Everything that happened in one repo.
#[derive(Debug, Clone)]
pub struct RepoHistory {
    /// Index into [`Org::repos`].
    pub repo: usize,
    /// All commits, by commit time (hotfixes appended at the end).
    pub changes: Vec<Change>,
    /// Per service of the repo, in the repo's order.
    pub services: Vec<ServiceHistory>,
    /// The changes as git commits: order on `main`, parents, trees (see [`crate::git`]).
    pub git: GitHistory,
}

/// Organisation-wide id counters, advanced repo by repo.
#[derive(Debug, Clone, Default)]
pub struct Ids {
    /// Next deployment id.
    pub next_deployment: u64,
    /// Next incident number.
    pub next_incident: u64,
}

const FILE_STEMS: [&str; 16] = [
    "handlers",
    "models",
    "db",
    "config",
    "routes",
    "client",
    "metrics",
    "auth",
    "cache",
    "queue",
    "schema",
    "validation",
    "errors",
    "jobs",
    "api",
    "tests",
];
const BRANCH_WORDS: [&str; 12] = [
    "totals",
    "retry",
    "timeouts",
    "pagination",
    "logging",
    "limits",
    "upgrade-deps",
    "refactor",
    "flags",
    "migration",
    "cleanup",
    "perf",
];
const LABELS: [&str; 4] = ["enhancement", "bug", "dependencies", "tech-debt"];
const INCIDENT_TITLES: [&str; 6] = [
    "Elevated 5xx rate on {}",
    "{} p99 latency above SLO",
    "{} errors after deploy",
    "Queue backlog growing in {}",
    "{} health checks failing",
    "Data inconsistency reported in {}",
];
const UNRELATED_TITLES: [&str; 3] = [
    "Upstream provider outage affecting {}",
    "{} certificate expiry",
    "Cloud region degradation hitting {}",
];

fn business_time(rng: &mut ChaCha8Rng, day: i64, from_minute: f64, to_minute: f64) -> i64 {
    // Triangular: most activity mid-day.
    let u = (rng.random::<f64>() + rng.random::<f64>()) / 2.0;
    day * DAY
        + ((from_minute + u * (to_minute - from_minute)) * 60.0) as i64
        + rng.random_range(0..60)
}

fn pick<'a>(rng: &mut ChaCha8Rng, words: &[&'a str]) -> &'a str {
    words[rng.random_range(0..words.len())]
}

fn file_path(rng: &mut ChaCha8Rng, prefix: &str) -> String {
    format!("{prefix}src/{}.rs", pick(rng, &FILE_STEMS))
}

/// Spreads `total` seconds before `merged_at` over the PR phases, never starting before the period.
fn pull_request(rng: &mut ChaCha8Rng, rates: &DeliveryRates, merged_at: i64) -> PullRequest {
    let mut coding = span(rng, rates.coding_median_seconds, 1.1, 120, 30 * DAY);
    let mut pickup = span(rng, rates.pickup_median_seconds, 1.0, 60, 10 * DAY);
    let mut review = span(rng, rates.review_median_seconds, 1.0, 60, 10 * DAY);
    let available = merged_at - PERIOD_START - 3;
    let total = coding + pickup + review;
    if total > available {
        coding = (coding * available / total).max(1);
        pickup = (pickup * available / total).max(1);
        review = (review * available / total).max(1);
    }
    let first_review_at = merged_at - review;
    let opened_at = first_review_at - pickup;
    let first_commit_at = opened_at - coding;
    let kind = if rng.random_bool(0.3) {
        "fix"
    } else {
        "feature"
    };
    PullRequest {
        number: 0,
        first_commit_at,
        opened_at,
        first_review_at,
        merged_at,
        head_branch: format!(
            "{kind}/{}-{}",
            pick(rng, &BRANCH_WORDS),
            rng.random_range(1..1000)
        ),
    }
}

fn service_prefix(org: &Org, service: usize) -> String {
    org.services[service]
        .path_prefix
        .clone()
        .unwrap_or_default()
}

fn generate_commits(org: &Org, repo: usize, seed: u64) -> Vec<Change> {
    let services = &org.repos[repo].services;
    let mut rng = stream(seed, Stream::Commits, repo as u64, 0);
    let mut changes = Vec::new();
    for (local, &service) in services.iter().enumerate() {
        let rates = org.rates(service);
        let prefix = service_prefix(org, service);
        for day in START_DAY..END_DAY_EXCLUSIVE {
            let mean = if is_working_day(day) {
                rates.commits_per_working_day
            } else {
                rates.commits_per_working_day * 0.03
            };
            for _ in 0..poisson(&mut rng, mean) {
                let committed_at = business_time(&mut rng, day, 8.0 * 60.0, 19.5 * 60.0);
                let mut paths = vec![file_path(&mut rng, &prefix)];
                if rng.random_bool(0.4) {
                    paths.push(file_path(&mut rng, &prefix));
                }
                let mut touched = vec![local];
                // A monorepo commit through the shared libs/ touches a second service.
                if services.len() > 1 && rng.random_bool(0.1) {
                    let other = (local + rng.random_range(1..services.len())) % services.len();
                    paths.push(format!(
                        "libs/common/src/{}.rs",
                        pick(&mut rng, &FILE_STEMS)
                    ));
                    paths.push(file_path(&mut rng, &service_prefix(org, services[other])));
                    touched.push(other);
                }
                paths.sort();
                paths.dedup();
                let (pr, authored_at) = if rng.random_bool(0.88) {
                    let pr = pull_request(&mut rng, &rates, committed_at);
                    let first = pr.first_commit_at;
                    (Some(pr), first)
                } else {
                    (
                        None,
                        (committed_at - rng.random_range(60..1800)).max(PERIOD_START),
                    )
                };
                let labels = if pr.is_some() && rng.random_bool(0.2) {
                    vec![pick(&mut rng, &LABELS).to_string()]
                } else {
                    Vec::new()
                };
                changes.push(Change {
                    sha: sha(&mut rng),
                    authored_at,
                    committed_at,
                    paths,
                    pr,
                    labels,
                    incident_refs: Vec::new(),
                    services: touched,
                });
            }
        }
    }
    changes.sort_by(|a, b| (a.committed_at, &a.sha).cmp(&(b.committed_at, &b.sha)));
    let mut number = 0;
    for change in &mut changes {
        if let Some(pr) = change.pr.as_mut() {
            number += 1;
            pr.number = number;
        }
    }
    changes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Scheduled,
    Retry,
    Rollback { incident: usize, target: usize },
    Hotfix { incident: usize },
}

/// Mutable state of one service's timeline.
struct Timeline<'a> {
    org: &'a Org,
    service: usize,
    local: usize,
    rates: DeliveryRates,
    rng: ChaCha8Rng,
    /// The service's changes (indices into `changes`), by commit time.
    own: Vec<usize>,
    next_production: usize,
    next_staging: usize,
    production_heads: Vec<usize>,
    frozen_until: i64,
    queue: BinaryHeap<Reverse<(i64, u64, Event)>>,
    sequence: u64,
    deployments: Vec<Deployment>,
    incidents: Vec<Incident>,
}

impl Timeline<'_> {
    fn push(&mut self, at: i64, event: Event) {
        self.sequence += 1;
        self.queue.push(Reverse((at, self.sequence, event)));
    }

    fn shipped_before(&self, changes: &[Change], cutoff: i64) -> usize {
        self.own
            .partition_point(|&c| changes[c].committed_at < cutoff)
    }

    #[allow(clippy::too_many_arguments)]
    fn deploy(
        &mut self,
        ids: &mut Ids,
        environment: Environment,
        head: usize,
        started_at: i64,
        status: Status,
        changes: Vec<usize>,
        flags: (bool, bool, bool),
    ) -> usize {
        let duration = span(&mut self.rng, self.rates.deploy_seconds, 0.4, 60, 3 * HOUR);
        let finished_at = if status == Status::Success {
            started_at + duration
        } else {
            started_at + duration / 2
        };
        ids.next_deployment += 1;
        self.deployments.push(Deployment {
            id: ids.next_deployment,
            service: self.service,
            environment,
            head,
            started_at,
            finished_at,
            status,
            is_rollback: flags.0,
            is_redeploy: flags.1,
            is_hotfix: flags.2,
            changes,
        });
        if environment == Environment::Production && status == Status::Success {
            self.production_heads.push(head);
        }
        self.deployments.len() - 1
    }

    fn new_incident(
        &mut self,
        ids: &mut Ids,
        started_at: i64,
        cause: Cause,
        unrelated: bool,
    ) -> usize {
        let name = &self.org.services[self.service].name;
        let template = if unrelated {
            pick(&mut self.rng, &UNRELATED_TITLES)
        } else {
            pick(&mut self.rng, &INCIDENT_TITLES)
        };
        let severity = match self.rng.random_range(0..20) {
            0..2 => "SEV1",
            2..9 => "SEV2",
            _ => "SEV3",
        };
        ids.next_incident += 1;
        self.incidents.push(Incident {
            id: ids.next_incident,
            service: self.service,
            title: template.replace("{}", name),
            severity,
            started_at,
            resolved_at: None,
            cause,
        });
        self.incidents.len() - 1
    }

    fn natural_resolution(&mut self, started_at: i64) -> i64 {
        started_at
            + span(
                &mut self.rng,
                self.rates.recovery_median_seconds,
                1.0,
                5 * MINUTE,
                7 * DAY,
            )
    }

    /// After a successful production deploy: maybe an incident, and how it is recovered.
    fn maybe_incident(&mut self, ids: &mut Ids, deployment: usize) {
        let (finished_at, id, head) = {
            let d = &self.deployments[deployment];
            (d.finished_at, d.id, d.head)
        };
        if finished_at > PERIOD_END - 8 * DAY
            || !self.rng.random_bool(self.rates.incident_rate.min(1.0))
        {
            return;
        }
        let started_at = finished_at + span(&mut self.rng, 90.0 * 60.0, 1.3, 2 * MINUTE, 6 * DAY);
        let cause = match self.rng.random_range(0..20) {
            0..11 => Cause::Deployment(id),
            11..13 => Cause::Sha(head),
            _ => Cause::Unlinked,
        };
        let incident = self.new_incident(ids, started_at, cause, false);
        let path: f64 = self.rng.random();
        if path < 0.3 && self.production_heads.len() >= 2 && started_at - finished_at < 3 * HOUR {
            let target = self.production_heads[self.production_heads.len() - 2];
            let at = started_at + self.rng.random_range(5 * MINUTE..45 * MINUTE);
            self.frozen_until = at + HOUR;
            self.push(at, Event::Rollback { incident, target });
        } else if path < 0.6 {
            let at = started_at + self.rng.random_range(20 * MINUTE..150 * MINUTE);
            self.push(at, Event::Hotfix { incident });
        } else {
            self.incidents[incident].resolved_at = Some(self.natural_resolution(started_at));
        }
    }

    fn production_status(&mut self) -> Status {
        let cancel_rate = if self.org.deployments_in_devlake(self.service) {
            0.0
        } else {
            self.rates.cancel_rate
        };
        let u: f64 = self.rng.random();
        if u < self.rates.failure_rate {
            Status::Failure
        } else if u < self.rates.failure_rate + cancel_rate {
            Status::Cancelled
        } else {
            Status::Success
        }
    }

    fn scheduled(&mut self, ids: &mut Ids, changes: &[Change], at: i64, retry: bool) {
        if (!retry && at < self.frozen_until) || at > PERIOD_END - 4 * HOUR {
            return;
        }
        let has_staging = self.org.services[self.service].has_staging;
        let staging_at = if has_staging {
            at - self.rng.random_range(20 * MINUTE..90 * MINUTE)
        } else {
            at
        };
        let cutoff = staging_at - 5 * MINUTE;
        let upto = self.shipped_before(changes, cutoff);
        if upto <= self.next_production {
            if let (false, Some(&current)) = (retry, self.production_heads.last())
                && self.rng.random_bool(0.08)
            {
                self.deploy(
                    ids,
                    Environment::Production,
                    current,
                    at,
                    Status::Success,
                    Vec::new(),
                    (false, true, false),
                );
            }
            return;
        }
        let head = self.own[upto - 1];
        if has_staging {
            let listed = self.own[self.next_staging.min(upto)..upto].to_vec();
            let status = if self.rng.random_bool(0.04) {
                Status::Failure
            } else {
                Status::Success
            };
            self.deploy(
                ids,
                Environment::Staging,
                head,
                staging_at,
                status,
                listed,
                (false, false, false),
            );
            if status != Status::Success {
                return;
            }
            self.next_staging = self.next_staging.max(upto);
        }
        let status = self.production_status();
        let listed = self.own[self.next_production..upto].to_vec();
        let deployment = self.deploy(
            ids,
            Environment::Production,
            head,
            at,
            status,
            listed,
            (false, false, false),
        );
        match status {
            Status::Success => {
                self.next_production = upto;
                self.maybe_incident(ids, deployment);
            }
            _ => {
                if self.rng.random_bool(0.7) {
                    let retry_at = self.deployments[deployment].finished_at
                        + self.rng.random_range(20 * MINUTE..180 * MINUTE);
                    self.push(retry_at, Event::Retry);
                }
            }
        }
    }

    fn rollback(&mut self, ids: &mut Ids, at: i64, incident: usize, target: usize) {
        let deployment = self.deploy(
            ids,
            Environment::Production,
            target,
            at,
            Status::Success,
            Vec::new(),
            (true, false, false),
        );
        let finished_at = self.deployments[deployment].finished_at;
        self.incidents[incident].resolved_at =
            Some(finished_at + self.rng.random_range(2 * MINUTE..15 * MINUTE));
    }

    fn hotfix(
        &mut self,
        ids: &mut Ids,
        changes: &mut Vec<Change>,
        next_pr: &mut u64,
        at: i64,
        incident: usize,
    ) {
        let incident_key = format!("INC-{}", self.incidents[incident].id);
        let first_review_at = at - self.rng.random_range(5 * MINUTE..20 * MINUTE);
        let opened_at = first_review_at - self.rng.random_range(3 * MINUTE..15 * MINUTE);
        let first_commit_at = opened_at - self.rng.random_range(5 * MINUTE..30 * MINUTE);
        let by_branch = self.rng.random_bool(0.5);
        *next_pr += 1;
        let prefix = service_prefix(self.org, self.service);
        let change = Change {
            sha: sha(&mut self.rng),
            authored_at: first_commit_at,
            committed_at: at,
            paths: vec![file_path(&mut self.rng, &prefix)],
            pr: Some(PullRequest {
                number: *next_pr,
                first_commit_at,
                opened_at,
                first_review_at,
                merged_at: at,
                head_branch: if by_branch {
                    format!("hotfix/{}", incident_key.to_lowercase())
                } else {
                    format!("fix/{}", incident_key.to_lowercase())
                },
            }),
            labels: if by_branch {
                Vec::new()
            } else {
                vec!["hotfix".to_string()]
            },
            incident_refs: vec![incident_key],
            services: vec![self.local],
        };
        changes.push(change);
        let index = changes.len() - 1;
        let position = self.own.partition_point(|&c| changes[c].committed_at <= at);
        self.own.insert(position, index);
        let deploy_at = at + self.rng.random_range(5 * MINUTE..20 * MINUTE);
        let upto = self
            .shipped_before(changes, deploy_at)
            .max(self.next_production);
        let listed = self.own[self.next_production..upto].to_vec();
        let head = self.own[upto - 1];
        let deployment = self.deploy(
            ids,
            Environment::Production,
            head,
            deploy_at,
            Status::Success,
            listed,
            (false, false, true),
        );
        self.next_production = upto;
        let finished_at = self.deployments[deployment].finished_at;
        self.incidents[incident].resolved_at =
            Some(finished_at + self.rng.random_range(5 * MINUTE..30 * MINUTE));
    }

    fn unrelated_and_open_incidents(&mut self, ids: &mut Ids) {
        for month in crate::calendar::months() {
            for _ in 0..poisson(&mut self.rng, self.rates.unrelated_incidents_per_month) {
                let started_at = month.first_day * DAY
                    + self
                        .rng
                        .random_range(0..(month.next_first_day - month.first_day) * DAY);
                if started_at > PERIOD_END - 8 * DAY {
                    continue;
                }
                let incident = self.new_incident(ids, started_at, Cause::Unlinked, true);
                self.incidents[incident].resolved_at = Some(self.natural_resolution(started_at));
            }
        }
        // A few incidents are still open when the period ends.
        if self.service % 6 == 1 {
            let started_at = PERIOD_END - self.rng.random_range(DAY..3 * DAY);
            self.new_incident(ids, started_at, Cause::Unlinked, false);
        }
    }
}

/// Generates one repo: its commits, then each service's timeline of deployments and incidents;
/// finally every change's sha becomes its git commit id ([`assign_commit_ids`]).
pub fn generate_repo(org: &Org, repo: usize, seed: u64, ids: &mut Ids) -> RepoHistory {
    let mut changes = generate_commits(org, repo, seed);
    let mut next_pr = changes
        .iter()
        .filter_map(|c| c.pr.as_ref())
        .map(|pr| pr.number)
        .max()
        .unwrap_or(0);
    let mut services = Vec::new();
    for (local, &service) in org.repos[repo].services.iter().enumerate() {
        let rates = org.rates(service);
        let own = (0..changes.len())
            .filter(|&c| changes[c].services.contains(&local))
            .collect();
        let mut timeline = Timeline {
            org,
            service,
            local,
            rates,
            rng: stream(seed, Stream::Delivery, service as u64, 0),
            own,
            next_production: 0,
            next_staging: 0,
            production_heads: Vec::new(),
            frozen_until: i64::MIN,
            queue: BinaryHeap::new(),
            sequence: 0,
            deployments: Vec::new(),
            incidents: Vec::new(),
        };
        for day in START_DAY..END_DAY_EXCLUSIVE {
            let mean = if is_working_day(day) {
                rates.deploys_per_working_day
            } else {
                rates.deploys_per_working_day * 0.015
            };
            for _ in 0..poisson(&mut timeline.rng, mean) {
                let at = business_time(&mut timeline.rng, day, 9.5 * 60.0, 17.5 * 60.0);
                timeline.push(at, Event::Scheduled);
            }
        }
        while let Some(Reverse((at, _, event))) = timeline.queue.pop() {
            match event {
                Event::Scheduled => timeline.scheduled(ids, &changes, at, false),
                Event::Retry => timeline.scheduled(ids, &changes, at, true),
                Event::Rollback { incident, target } => {
                    timeline.rollback(ids, at, incident, target)
                }
                Event::Hotfix { incident } => {
                    timeline.hotfix(ids, &mut changes, &mut next_pr, at, incident)
                }
            }
        }
        timeline.unrelated_and_open_incidents(ids);
        let mut incidents = timeline.incidents;
        incidents.sort_by_key(|i| (i.started_at, i.id));
        services.push(ServiceHistory {
            service,
            deployments: timeline.deployments,
            incidents,
        });
    }
    let mut history = RepoHistory {
        repo,
        changes,
        services,
        git: GitHistory::default(),
    };
    // Last, and drawing nothing: the random shas above only ordered same-second commits.
    assign_commit_ids(org, &mut history);
    history
}
