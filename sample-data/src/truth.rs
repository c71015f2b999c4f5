//! The ground-truth summary written to `truth.json`: exactly what the written files state, so
//! ingest tests can compare the lake against it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calendar::month_key;
use crate::costs::CostLine;
use crate::delivery::{Cause, Environment, RepoHistory, Status};
use crate::money::{Money, format_money};
use crate::org::Org;

/// Summary of everything generated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// `small`, `medium` or `large`.
    pub scale: String,
    /// The seed.
    pub seed: u64,
    /// First day of the period, `2025-05-01`.
    pub period_start: String,
    /// Last day of the period (inclusive), `2026-10-31`.
    pub period_end: String,
    /// Number of teams.
    pub teams: u64,
    /// Number of services.
    pub service_count: u64,
    /// Repo names (`acme/platform` is the small monorepo).
    pub repos: Vec<String>,
    /// Deployment counts, over all event files.
    pub deployments: DeploymentTruth,
    /// Distinct changes (`repo:sha`) the files state.
    pub changes: ChangeTruth,
    /// (deployment, change) pairs the files state.
    pub deployment_changes: DeploymentChangeTruth,
    /// Incident counts.
    pub incidents: IncidentTruth,
    /// Cost totals.
    pub costs: CostTruth,
    /// Per service.
    pub services: BTreeMap<String, ServiceTruth>,
    /// What `pagerduty/` holds, when written (absent otherwise, so `truth.json` stays as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<crate::writers::pagerduty::PagerDutyTruth>,
}

/// Deployment counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentTruth {
    /// All deployments.
    pub total: u64,
    /// By status: `success`, `failure`, `cancelled`.
    pub by_status: BTreeMap<String, u64>,
    /// By environment: `production`, `staging`.
    pub by_environment: BTreeMap<String, u64>,
    /// Successful production deployments.
    pub production_successful: u64,
    /// Rollback deployments (redeploying an earlier sha); in events files all carry `is_rollback`.
    pub rollbacks: u64,
    /// Rollbacks flagged `is_rollback: true` (DevLake payloads carry no such flag).
    pub rollbacks_flagged: u64,
    /// Redeploys of the sha already in production.
    pub redeploys: u64,
    /// Deployments shipping a hotfix change.
    pub hotfixes: u64,
    /// In `events/deployments.ndjson`.
    pub in_events_file: u64,
    /// In `events/devlake-deployments.json`.
    pub in_devlake_file: u64,
}

/// Distinct changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeTruth {
    /// Distinct `repo:sha` over all files.
    pub distinct: u64,
    /// Distinct changes nested in `events/deployments.ndjson`.
    pub in_events_file: u64,
    /// Distinct head commits of `events/devlake-deployments.json` (a repo of its own).
    pub in_devlake_file: u64,
    /// Changes with PR data.
    pub with_pull_request: u64,
    /// Changes labelled `hotfix` or on a `hotfix/` branch.
    pub hotfix: u64,
}

/// (deployment, change) pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentChangeTruth {
    /// All pairs stated: nested `changes` entries plus one head commit per DevLake deployment.
    pub total: u64,
    /// Nested `changes` entries in `events/deployments.ndjson` (any status and environment).
    pub events_listed: u64,
    /// Nested entries of successful production deployments only (first-time shipments).
    pub events_production_successful: u64,
    /// One head commit per DevLake deployment.
    pub devlake_heads: u64,
}

/// Incident counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentTruth {
    /// All incidents.
    pub total: u64,
    /// Still open at the end (resolved_at null).
    pub open: u64,
    /// With `caused_by_deployment_id` in the file.
    pub caused_by_deployment: u64,
    /// With `caused_by_sha` in the file.
    pub caused_by_sha: u64,
    /// In `events/incidents.ndjson`.
    pub in_events_file: u64,
    /// In `events/devlake-incidents.json`.
    pub in_devlake_file: u64,
}

/// Exact cost sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostTruth {
    /// FOCUS rows over all month files.
    pub rows: u64,
    /// By ProviderName.
    pub providers: BTreeMap<String, ProviderTruth>,
    /// EffectiveCost by allocation (service tag, `shared`, `unallocated`) and month (`YYYY-MM`).
    pub effective_cost_by_allocation: BTreeMap<String, BTreeMap<String, String>>,
}

/// One provider's exact sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderTruth {
    /// Rows.
    pub rows: u64,
    /// Sum of BilledCost.
    pub billed_cost: String,
    /// Sum of EffectiveCost.
    pub effective_cost: String,
}

/// One service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceTruth {
    /// Team.
    pub team: String,
    /// Successful production deployments.
    pub production_successful_deployments: u64,
    /// Incidents.
    pub incidents: u64,
    /// EffectiveCost allocated by the service tag, by month.
    pub effective_cost_by_month: BTreeMap<String, String>,
}

/// Accumulates the truth while files are written.
#[derive(Debug, Default)]
pub struct TruthBuilder {
    truth: Truth,
    billed: BTreeMap<String, Money>,
    effective: BTreeMap<String, Money>,
    allocated: BTreeMap<String, BTreeMap<String, Money>>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

impl TruthBuilder {
    /// Starts a truth for an organisation.
    pub fn new(org: &Org, scale: &str, seed: u64) -> Self {
        let mut truth = Truth {
            scale: scale.to_string(),
            seed,
            period_start: "2025-05-01".into(),
            period_end: "2026-10-31".into(),
            teams: org.teams.len() as u64,
            service_count: org.services.len() as u64,
            repos: org.repos.iter().map(|r| r.name.clone()).collect(),
            ..Truth::default()
        };
        for status in ["success", "failure", "cancelled"] {
            truth.deployments.by_status.insert(status.into(), 0);
        }
        for service in &org.services {
            truth.services.insert(
                service.name.clone(),
                ServiceTruth {
                    team: org.teams[service.team].name.clone(),
                    ..ServiceTruth::default()
                },
            );
        }
        TruthBuilder {
            truth,
            ..TruthBuilder::default()
        }
    }

    /// Records one repo's history as the writers state it.
    pub fn record_repo(&mut self, org: &Org, history: &RepoHistory) {
        let devlake_repo = org.repos[history.repo].devlake;
        let mut listed = vec![false; history.changes.len()];
        let t = &mut self.truth;
        for service in &history.services {
            let name = &org.services[service.service].name;
            for d in &service.deployments {
                t.deployments.total += 1;
                let status = match d.status {
                    Status::Success => "success",
                    Status::Failure => "failure",
                    Status::Cancelled => "cancelled",
                };
                bump(&mut t.deployments.by_status, status);
                let production = d.environment == Environment::Production;
                bump(
                    &mut t.deployments.by_environment,
                    if production { "production" } else { "staging" },
                );
                if production && d.status == Status::Success {
                    t.deployments.production_successful += 1;
                    if let Some(s) = t.services.get_mut(name) {
                        s.production_successful_deployments += 1;
                    }
                }
                t.deployments.rollbacks += u64::from(d.is_rollback);
                t.deployments.redeploys += u64::from(d.is_redeploy);
                t.deployments.hotfixes += u64::from(d.is_hotfix);
                if devlake_repo {
                    t.deployments.in_devlake_file += 1;
                    t.deployment_changes.devlake_heads += 1;
                    listed[d.head] = true;
                } else {
                    t.deployments.in_events_file += 1;
                    t.deployments.rollbacks_flagged += u64::from(d.is_rollback);
                    t.deployment_changes.events_listed += d.changes.len() as u64;
                    if production && d.status == Status::Success {
                        t.deployment_changes.events_production_successful += d.changes.len() as u64;
                    }
                    for &c in &d.changes {
                        listed[c] = true;
                    }
                }
            }
            let in_devlake = org.incidents_in_devlake(service.service);
            for incident in &service.incidents {
                t.incidents.total += 1;
                t.incidents.open += u64::from(incident.resolved_at.is_none());
                if in_devlake {
                    t.incidents.in_devlake_file += 1;
                } else {
                    t.incidents.in_events_file += 1;
                    match incident.cause {
                        Cause::Deployment(_) => t.incidents.caused_by_deployment += 1,
                        Cause::Sha(_) => t.incidents.caused_by_sha += 1,
                        Cause::Unlinked => {}
                    }
                }
                if let Some(s) = t.services.get_mut(name) {
                    s.incidents += 1;
                }
            }
        }
        for (index, change) in history.changes.iter().enumerate() {
            if !listed[index] {
                continue;
            }
            t.changes.distinct += 1;
            if devlake_repo {
                t.changes.in_devlake_file += 1;
            } else {
                t.changes.in_events_file += 1;
                t.changes.with_pull_request += u64::from(change.pr.is_some());
                let hotfix = change.labels.iter().any(|l| l == "hotfix")
                    || change
                        .pr
                        .as_ref()
                        .is_some_and(|pr| pr.head_branch.starts_with("hotfix/"));
                t.changes.hotfix += u64::from(hotfix);
            }
        }
        t.deployment_changes.total =
            t.deployment_changes.events_listed + t.deployment_changes.devlake_heads;
    }

    /// Records one written FOCUS row.
    pub fn record_cost(&mut self, line: &CostLine) {
        self.truth.costs.rows += 1;
        let provider = line.provider.name();
        self.truth
            .costs
            .providers
            .entry(provider.to_string())
            .or_default()
            .rows += 1;
        *self.billed.entry(provider.to_string()).or_default() += line.billed_cost;
        *self.effective.entry(provider.to_string()).or_default() += line.effective_cost;
        *self
            .allocated
            .entry(line.tags.allocation().to_string())
            .or_default()
            .entry(month_key(line.day))
            .or_default() += line.effective_cost;
    }

    /// Total effective cost allocated to `key` (service, `shared`, `unallocated`) over the period.
    pub fn allocated_total(&self, key: &str) -> Money {
        self.allocated
            .get(key)
            .map(|months| months.values().sum())
            .unwrap_or(0)
    }

    /// The finished truth, with exact sums formatted as decimal strings.
    pub fn finish(mut self) -> Truth {
        for (provider, totals) in &mut self.truth.costs.providers {
            totals.billed_cost = format_money(self.billed.get(provider).copied().unwrap_or(0));
            totals.effective_cost =
                format_money(self.effective.get(provider).copied().unwrap_or(0));
        }
        for (key, months) in &self.allocated {
            let formatted: BTreeMap<String, String> = months
                .iter()
                .map(|(month, value)| (month.clone(), format_money(*value)))
                .collect();
            if let Some(service) = self.truth.services.get_mut(key) {
                service.effective_cost_by_month = formatted.clone();
            }
            self.truth
                .costs
                .effective_cost_by_allocation
                .insert(key.clone(), formatted);
        }
        self.truth
    }
}
