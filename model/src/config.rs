//! `doracost.toml`: the typed configuration (DESIGN §6).
//!
//! Every table rejects unknown keys, and values are checked while they are read, so that a mistake
//! is reported by `toml` with its key, line and column. Secrets are never written in the file: a
//! secret is a reference to an environment variable or a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::money::parse_money;

pub mod github;
pub use github::{DEFAULT_TOKEN_ENV, DeploySignal, GithubApp, GithubSource};
pub mod pagerduty;
pub use pagerduty::PagerDutySource;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the lake lives.
    #[serde(default)]
    pub lake: LakeConfig,
    /// How periods, production and costs are read.
    #[serde(default)]
    pub reporting: ReportingConfig,
    /// The services, and how rows are attributed to them.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    /// Targets for the DORA metrics.
    #[serde(default)]
    pub targets: TargetsConfig,
    /// Monthly cost budgets.
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
    /// Shared costs split among services (DESIGN §4 "Cost per service").
    #[serde(default)]
    pub shared_costs: Vec<SharedCostConfig>,
    /// Scheduled budget alerts.
    #[serde(default)]
    pub alerts: Option<AlertsConfig>,
    /// Dashboards mailed on a schedule.
    #[serde(default)]
    pub reports: Vec<ReportConfig>,
    /// Where sources are read from.
    #[serde(default)]
    pub sources: SourcesConfig,
    /// The HTTP and PostgreSQL listeners.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where teams keep their own dashboards.
    #[serde(default)]
    pub dashboards: DashboardsConfig,
}

/// `[dashboards]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardsConfig {
    /// A folder of `*.toml` dashboards (relative to the config file): each adds a page at
    /// `/dashboards/{file stem}`, or replaces the built-in page of that name.
    pub dir: Option<PathBuf>,
}

/// `[lake]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// A local folder (relative to the config file), a `file://` URL or an `s3://bucket/prefix` URL.
    #[serde(default = "default_lake_path")]
    pub path: String,
    /// Object-store options (e.g. `aws_region`); secret values as `{ env = "…" }` references.
    #[serde(default)]
    pub storage_options: BTreeMap<String, SecretRef>,
    /// How long the canonical tables keep the data files they stopped using (default 168: a
    /// week): `doracost lake vacuum` deletes only older ones, so readers and `lake restore` can
    /// go back this far.
    #[serde(default = "default_retention_hours")]
    pub retention_hours: f64,
    /// The same for the derived tables, cleaned after each refresh (default 1): longer than any
    /// query of an engine opened before a refresh.
    #[serde(default = "default_derived_retention_hours")]
    pub derived_retention_hours: f64,
}

fn default_retention_hours() -> f64 {
    168.0
}

fn default_derived_retention_hours() -> f64 {
    1.0
}

fn default_lake_path() -> String {
    "data".into()
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            path: default_lake_path(),
            storage_options: BTreeMap::new(),
            retention_hours: default_retention_hours(),
            derived_retention_hours: default_derived_retention_hours(),
        }
    }
}

/// `[reporting]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingConfig {
    /// IANA time zone in which days, ISO weeks and months are cut (default `UTC`).
    #[serde(default)]
    pub time_zone: TimeZone,
    /// Environment names that count as production (compared case-insensitively).
    #[serde(default = "default_production")]
    pub production_environments: Vec<String>,
    /// How long after a deployment an unlinked incident of its service is attributed to it.
    #[serde(default = "default_window")]
    pub attribution_window_days: u32,
    /// PR labels that mark a change as a hotfix (rework).
    #[serde(default = "default_hotfix_labels")]
    pub hotfix_labels: Vec<String>,
    /// PR branch prefixes that mark a change as a hotfix (rework).
    #[serde(default = "default_hotfix_branches")]
    pub hotfix_branch_prefixes: Vec<String>,
    /// Which cost column the cost views sum.
    #[serde(default)]
    pub cost_metric: CostMetric,
    /// Forecast run rate: the mean daily cost of this many complete days before the cutoff.
    #[serde(default = "default_forecast_days")]
    pub forecast_trailing_days: u32,
    /// Anomaly baseline: this many days before the day judged.
    #[serde(default = "default_anomaly_days")]
    pub anomaly_baseline_days: u32,
    /// A day is an anomaly when it departs from the baseline median by more than this many
    /// scaled median absolute deviations (1.4826 × MAD).
    #[serde(default = "default_anomaly_threshold")]
    pub anomaly_threshold: f64,
    /// ... and by at least this amount of money (decimal text), so cents on a flat series are not
    /// anomalies.
    #[serde(default = "default_anomaly_min_impact")]
    pub anomaly_min_impact: Money,
}

fn default_production() -> Vec<String> {
    vec!["production".into(), "prod".into()]
}
fn default_window() -> u32 {
    7
}
fn default_hotfix_labels() -> Vec<String> {
    vec!["hotfix".into()]
}
fn default_hotfix_branches() -> Vec<String> {
    vec!["hotfix/".into()]
}
fn default_forecast_days() -> u32 {
    7
}
fn default_anomaly_days() -> u32 {
    28
}
fn default_anomaly_threshold() -> f64 {
    3.0
}
fn default_anomaly_min_impact() -> Money {
    // 1.00 in units of 1e-12.
    Money(1_000_000_000_000)
}

impl Default for ReportingConfig {
    fn default() -> Self {
        ReportingConfig {
            time_zone: TimeZone::default(),
            production_environments: default_production(),
            attribution_window_days: default_window(),
            hotfix_labels: default_hotfix_labels(),
            hotfix_branch_prefixes: default_hotfix_branches(),
            cost_metric: CostMetric::default(),
            forecast_trailing_days: default_forecast_days(),
            anomaly_baseline_days: default_anomaly_days(),
            anomaly_threshold: default_anomaly_threshold(),
            anomaly_min_impact: default_anomaly_min_impact(),
        }
    }
}

/// A validated IANA time zone name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(chrono_tz::UTC)
    }
}

impl TimeZone {
    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown time zone `{name}`: expected an IANA name such as `UTC` or `Europe/Berlin`"
            ))
        })
    }
}

/// Which cost column is "the cost".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostMetric {
    /// Amortized cost after discounts (FOCUS EffectiveCost).
    #[default]
    EffectiveCost,
    /// What the invoice charges (FOCUS BilledCost).
    BilledCost,
}

impl CostMetric {
    /// The `costs` column it names.
    pub fn column(self) -> &'static str {
        match self {
            CostMetric::EffectiveCost => "effective_cost",
            CostMetric::BilledCost => "billed_cost",
        }
    }
}

/// `[[services]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The service's name, as reports show it.
    pub name: String,
    /// The team that owns it.
    #[serde(default)]
    pub team: Option<String>,
    /// Repositories (`owner/name`) whose changes and deployments belong to it.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Path prefixes inside those repos (monorepos); empty means the whole repo.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Cost tags (key = value) that mark its spend.
    #[serde(default)]
    pub cost_tags: BTreeMap<String, String>,
    /// Cloud accounts whose whole spend is its own.
    #[serde(default)]
    pub cost_accounts: Vec<String>,
    /// Cloud services (e.g. `Amazon CloudFront`) whose whole spend is its own.
    #[serde(default)]
    pub cost_cloud_services: Vec<String>,
}

/// `[[shared_costs]]`: spend that belongs to several services, matched like a service's cost rules
/// (tags, accounts, cloud services) and split among services.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedCostConfig {
    /// The shared cost's name, as reports show it.
    pub name: String,
    /// Cost tags (key = value) that mark the shared spend.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Cloud accounts whose spend is shared.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Cloud services whose spend is shared.
    #[serde(default)]
    pub cloud_services: Vec<String>,
    /// How the spend is split.
    #[serde(default)]
    pub split: SharedSplit,
    /// `split = "weights"`: service name = whole-number weight.
    #[serde(default)]
    pub weights: BTreeMap<String, u64>,
    /// `split = "proportional"`: the services that share it (default: every service).
    #[serde(default)]
    pub services: Vec<String>,
}

/// How a shared cost is split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharedSplit {
    /// In proportion to each service's direct cost the same day.
    #[default]
    Proportional,
    /// By fixed weights.
    Weights,
}

/// `[targets]`: the defaults, and per-service overrides under `[targets.services.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsConfig {
    /// Successful production deployments per day, at least.
    #[serde(default = "default_deploys")]
    pub deploys_per_day: f64,
    /// Median lead time for changes, under (hours).
    #[serde(default = "default_lead_time")]
    pub lead_time_hours: f64,
    /// Change failure rate, under (a fraction: 0.05 is 5%).
    #[serde(default = "default_cfr")]
    pub change_failure_rate: f64,
    /// Median failed-deployment recovery time, under (minutes).
    #[serde(default = "default_recovery")]
    pub recovery_minutes: f64,
    /// Per-service overrides.
    #[serde(default)]
    pub services: BTreeMap<String, TargetOverride>,
}

fn default_deploys() -> f64 {
    1.0
}
fn default_lead_time() -> f64 {
    1.0
}
fn default_cfr() -> f64 {
    0.05
}
fn default_recovery() -> f64 {
    30.0
}

impl Default for TargetsConfig {
    fn default() -> Self {
        TargetsConfig {
            deploys_per_day: default_deploys(),
            lead_time_hours: default_lead_time(),
            change_failure_rate: default_cfr(),
            recovery_minutes: default_recovery(),
            services: BTreeMap::new(),
        }
    }
}

/// Per-service target overrides; what is absent falls back to the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetOverride {
    /// See [`TargetsConfig::deploys_per_day`].
    pub deploys_per_day: Option<f64>,
    /// See [`TargetsConfig::lead_time_hours`].
    pub lead_time_hours: Option<f64>,
    /// See [`TargetsConfig::change_failure_rate`].
    pub change_failure_rate: Option<f64>,
    /// See [`TargetsConfig::recovery_minutes`].
    pub recovery_minutes: Option<f64>,
}

/// `[[budgets]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// The budget's name.
    pub name: String,
    /// What it covers.
    pub scope: BudgetScope,
    /// The amount per calendar month, as decimal text (`"12000.00"`).
    pub monthly_amount: Money,
    /// ISO currency code.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// When to alert.
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    /// Who gets the alert emails.
    #[serde(default)]
    pub recipients: Vec<String>,
}

fn default_currency() -> String {
    "USD".into()
}

/// A budget's scope: one service, one team, the bill lines carrying one tag, or everything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetScope {
    /// A service name.
    pub service: Option<String>,
    /// A team name.
    pub team: Option<String>,
    /// One tag, `{ env = "prod" }`: the bill's lines carrying it (their cost as billed, not as
    /// allocated to services).
    pub tag: Option<BTreeMap<String, String>>,
}

impl BudgetScope {
    /// The tag of a tag scope (config checks allow one pair).
    pub fn tag_pair(&self) -> Option<(&str, &str)> {
        self.tag
            .as_ref()
            .and_then(|t| t.iter().next())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A money amount read exactly from decimal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money(pub i128);

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(text) => parse_money(&text).map(Money).map_err(|e| {
                serde::de::Error::custom(format!(
                    "{e}: found `{text}` (write money as text, e.g. \"1200.50\")"
                ))
            }),
            Raw::Int(n) => parse_money(&n.to_string())
                .map(Money)
                .map_err(serde::de::Error::custom),
            Raw::Float(f) => Err(serde::de::Error::custom(format!(
                "money must be decimal text such as \"{f}\", not a float (floats round)"
            ))),
        }
    }
}

/// One alert threshold: a percent of the monthly amount, or an amount, compared with the
/// month-to-date (`actual`) or month-end forecast (`forecast`) cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Percent of the monthly amount (over 0, at most 1000).
    pub percent: Option<f64>,
    /// An amount in the budget's currency, as decimal text (instead of `percent`).
    pub amount: Option<Money>,
    /// Compare the actual month-to-date cost, or the month-end forecast.
    pub kind: ThresholdKind,
    /// How urgent its alert is: `P1` (most) to `P4`; P3 unless said.
    #[serde(default)]
    pub severity: Severity,
}

/// An alert's urgency, `P1` (most urgent) to `P4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Default)]
pub enum Severity {
    /// Most urgent.
    P1,
    /// Urgent.
    P2,
    /// The default.
    #[default]
    P3,
    /// Informational.
    P4,
}

impl Severity {
    /// `P1` … `P4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P1 => "P1",
            Severity::P2 => "P2",
            Severity::P3 => "P3",
            Severity::P4 => "P4",
        }
    }
}

/// What a threshold compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdKind {
    /// Month-to-date cost.
    Actual,
    /// Month-end forecast.
    Forecast,
}

/// `[alerts]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// When to evaluate budgets and send the anomaly digest: a cron expression (5 fields, or 6
    /// with seconds first) in the reporting time zone.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// The SMTP server URL (`smtp://host:port` for a local relay, `smtp://…?tls=required` for
    /// STARTTLS, `smtps://…` for implicit TLS; credentials in the URL or from
    /// `DORACOST_SMTP_USER`/`DORACOST_SMTP_PASSWORD`). It may hold credentials, so it is a
    /// secret reference.
    pub smtp_url: Option<SecretRef>,
    /// The sender address.
    #[serde(default = "default_sender")]
    pub from: String,
    /// A Slack-compatible incoming webhook (Slack, Mattermost, Teams workflows) that gets every
    /// alert too; a secret reference.
    pub slack_webhook: Option<SecretRef>,
    /// The server's address as readers reach it (`https://doracost.example.com`), for the links in
    /// emails; the listen address unless said.
    pub public_url: Option<String>,
    /// Anomalies smaller than this (absolute impact, decimal text) stay out of the digest.
    #[serde(default = "zero_money")]
    pub anomaly_min_impact: Money,
    /// How many days before the bill's cutoff an anomaly still goes into a digest (older ones
    /// were in earlier digests, or happened before alerts were set up).
    #[serde(default = "default_digest_days")]
    pub anomaly_days: u32,
    /// Who gets the daily anomaly digest besides each anomaly's budgets' recipients.
    #[serde(default)]
    pub anomaly_recipients: Vec<String>,
    /// Failed sends are retried this many times in all, with growing waits, then marked failed.
    #[serde(default = "default_send_attempts")]
    pub max_attempts: u32,
    /// The first wait before a retry, in seconds (doubled at each further failure, at most an hour).
    #[serde(default = "default_retry_seconds")]
    pub retry_seconds: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            schedule: default_schedule(),
            smtp_url: None,
            from: default_sender(),
            slack_webhook: None,
            public_url: None,
            anomaly_min_impact: zero_money(),
            anomaly_days: default_digest_days(),
            anomaly_recipients: Vec::new(),
            max_attempts: default_send_attempts(),
            retry_seconds: default_retry_seconds(),
        }
    }
}

fn default_schedule() -> String {
    "0 0 8 * * *".into()
}
fn default_sender() -> String {
    "doracost@localhost".into()
}
fn default_digest_days() -> u32 {
    7
}
fn zero_money() -> Money {
    Money(0)
}
fn default_send_attempts() -> u32 {
    5
}
fn default_retry_seconds() -> u64 {
    30
}

/// `[[reports]]`: a dashboard mailed on a schedule (the monthly infra review).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// The report's name (its runs are recorded under it).
    pub name: String,
    /// When to send it: a cron expression in the reporting time zone (`0 9 1W * *`: 09:00 on the
    /// first working day of the month).
    pub schedule: String,
    /// The dashboard mailed (`review` unless said).
    #[serde(default = "default_report_dashboard")]
    pub dashboard: String,
    /// Who gets it.
    pub recipients: Vec<String>,
}

fn default_report_dashboard() -> String {
    "review".into()
}

/// `[sources]`: where each source reads from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// Event files read by `doracost ingest events` when no file is named.
    #[serde(default)]
    pub events: Option<FileSource>,
    /// FOCUS bill files read by `doracost ingest focus` when no file is named.
    #[serde(default)]
    pub focus: Option<FileSource>,
    /// AWS CUR files read by `doracost ingest cur` when no file is named.
    #[serde(default)]
    pub cur: Option<FileSource>,
    /// AWS Cost Explorer, read by `doracost ingest cost-explorer`.
    #[serde(default)]
    pub cost_explorer: Option<CostExplorerSource>,
    /// GitHub's REST API and webhooks, read by `doracost ingest github` and `POST /webhooks/github`.
    #[serde(default)]
    pub github: Option<GithubSource>,
    /// PagerDuty's REST API, read by `doracost ingest pagerduty`.
    #[serde(default)]
    pub pagerduty: Option<PagerDutySource>,
}

/// `[sources.cost_explorer]`: how `doracost ingest cost-explorer` calls AWS Cost Explorer.
/// Credentials come from the standard AWS chain (environment, profiles, SSO, role assumption).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostExplorerSource {
    /// The payer (management) account the rows are billed to: `costs.billing_account`.
    pub billing_account: String,
    /// The cost allocation tag that names a service (grouped by as `TAG`).
    #[serde(default = "default_service_tag")]
    pub tag_key: String,
    /// Linked (member) accounts to read one by one (`costs.sub_account`); empty reads the whole
    /// bill without a sub-account.
    #[serde(default)]
    pub linked_accounts: Vec<String>,
    /// The Cost Explorer metric that fills `billed_cost`.
    #[serde(default = "default_billed_metric")]
    pub billed_cost_metric: CostExplorerMetric,
    /// The Cost Explorer metric that fills `effective_cost`.
    #[serde(default = "default_effective_metric")]
    pub effective_cost_metric: CostExplorerMetric,
    /// The Cost Explorer endpoint (default: AWS's, or `AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The region requests are signed for (Cost Explorer lives in `us-east-1`).
    #[serde(default = "default_cost_explorer_region")]
    pub region: String,
    /// An AWS profile of `~/.aws/config` (default: `AWS_PROFILE`, else `default`).
    #[serde(default)]
    pub profile: Option<String>,
    /// A role to assume with the chain's credentials before calling Cost Explorer.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Attempts per request, throttling (`LimitExceededException`) and transient errors
    /// retried with exponential backoff.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

/// A Cost Explorer cost metric (the names the GetCostAndUsage API takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CostExplorerMetric {
    /// Cost as charged, upfront fees on the day paid.
    UnblendedCost,
    /// Unblended cost net of discounts.
    NetUnblendedCost,
    /// Upfront and recurring reservation and savings plan fees spread over their term.
    AmortizedCost,
    /// Amortized cost net of discounts.
    NetAmortizedCost,
    /// Consolidated-billing average rates.
    BlendedCost,
}

impl CostExplorerMetric {
    /// The API's name for the metric.
    pub fn api_name(self) -> &'static str {
        match self {
            CostExplorerMetric::UnblendedCost => "UnblendedCost",
            CostExplorerMetric::NetUnblendedCost => "NetUnblendedCost",
            CostExplorerMetric::AmortizedCost => "AmortizedCost",
            CostExplorerMetric::NetAmortizedCost => "NetAmortizedCost",
            CostExplorerMetric::BlendedCost => "BlendedCost",
        }
    }
}

fn default_service_tag() -> String {
    "service".into()
}
fn default_billed_metric() -> CostExplorerMetric {
    CostExplorerMetric::UnblendedCost
}
fn default_effective_metric() -> CostExplorerMetric {
    CostExplorerMetric::NetAmortizedCost
}
fn default_cost_explorer_region() -> String {
    "us-east-1".into()
}
fn default_max_attempts() -> u32 {
    6
}

/// A file-based source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// Files or folders (a folder means every file in it), relative to the config file.
    pub paths: Vec<PathBuf>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP listen address.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// PostgreSQL wire protocol listen address.
    #[serde(default = "default_pg_listen")]
    pub pg_listen: String,
    /// Bearer token for write endpoints and SQL when not on loopback.
    pub token: Option<SecretRef>,
    /// The PostgreSQL endpoint's password of user `doracost` (SCRAM-SHA-256), a secret
    /// reference; without it the endpoint listens on loopback only and asks for none.
    pub pg_password: Option<SecretRef>,
    /// The PostgreSQL endpoint's TLS certificate chain, a PEM file (relative to the config file);
    /// with `pg_tls_key`, every connection must use TLS (`sslmode=require` or stricter).
    pub pg_tls_cert: Option<PathBuf>,
    /// The private key of `pg_tls_cert`, a PEM file (PKCS#8, PKCS#1 or SEC1).
    pub pg_tls_key: Option<PathBuf>,
    /// The largest body `POST /api/v1/events` accepts, in bytes (413 beyond it).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How often the server looks for new lake commits, in seconds.
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: f64,
    /// The longest a request may take before it is answered 503, in seconds.
    #[serde(default = "default_request_timeout_seconds")]
    pub request_timeout_seconds: f64,
    /// `POST /api/v1/sql`: the longest one query may run, answer streamed included, in seconds.
    #[serde(default = "default_sql_timeout_seconds")]
    pub sql_timeout_seconds: f64,
    /// `POST /api/v1/sql`: the memory all analysts' queries share (e.g. `"512M"`, `"2G"`);
    /// a query that needs more fails alone (sorts and aggregates spill to disk first).
    #[serde(default = "default_sql_memory_limit")]
    pub sql_memory_limit: String,
    /// `POST /api/v1/sql`: the most rows one answer holds; the rest are left out, and the answer
    /// says it was cut.
    #[serde(default = "default_sql_max_rows")]
    pub sql_max_rows: usize,
    /// `POST /api/v1/sql`: how many analysts' queries run at once (429 beyond).
    #[serde(default = "default_sql_max_concurrent")]
    pub sql_max_concurrent: usize,
    /// `POST /api/v1/sql`: threads for analysts' queries, apart from those that answer the
    /// dashboards and the API.
    #[serde(default = "default_sql_threads")]
    pub sql_threads: usize,
    /// `POST /api/v1/sql`: the largest query text, in bytes (413 beyond it).
    #[serde(default = "default_sql_max_body_bytes")]
    pub sql_max_body_bytes: usize,
}

fn default_sql_timeout_seconds() -> f64 {
    30.0
}
fn default_sql_memory_limit() -> String {
    "1G".into()
}
fn default_sql_max_rows() -> usize {
    1_000_000
}
fn default_sql_max_concurrent() -> usize {
    2
}
fn default_sql_threads() -> usize {
    1
}
fn default_sql_max_body_bytes() -> usize {
    1 << 20
}

fn default_poll_seconds() -> f64 {
    2.0
}
fn default_request_timeout_seconds() -> f64 {
    30.0
}

fn default_max_body_bytes() -> usize {
    16 << 20
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_pg_listen() -> String {
    "127.0.0.1:5433".into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            pg_listen: default_pg_listen(),
            token: None,
            pg_password: None,
            pg_tls_cert: None,
            pg_tls_key: None,
            max_body_bytes: default_max_body_bytes(),
            poll_seconds: default_poll_seconds(),
            request_timeout_seconds: default_request_timeout_seconds(),
            sql_timeout_seconds: default_sql_timeout_seconds(),
            sql_memory_limit: default_sql_memory_limit(),
            sql_max_rows: default_sql_max_rows(),
            sql_max_concurrent: default_sql_max_concurrent(),
            sql_threads: default_sql_threads(),
            sql_max_body_bytes: default_sql_max_body_bytes(),
        }
    }
}

/// An email address as mail servers take it: `local@domain`, no spaces or angle brackets.
fn check_address(address: &str) -> Result<(), String> {
    let ok = address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && !address
        .contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == ',');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "an email address such as `finance@example.com`, found `{address}`"
        ))
    }
}

/// A secret: the name of an environment variable or a file that holds it, never the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `{ env = "NAME" }`
    Env(String),
    /// `{ file = "path" }`
    File(PathBuf),
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            env: Option<String>,
            file: Option<PathBuf>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Reference(Raw),
            Plain(#[allow(dead_code)] String),
        }
        match Either::deserialize(d)? {
            Either::Reference(Raw {
                env: Some(name),
                file: None,
            }) => Ok(SecretRef::Env(name)),
            Either::Reference(Raw {
                env: None,
                file: Some(path),
            }) => Ok(SecretRef::File(path)),
            Either::Reference(_) => Err(serde::de::Error::custom(
                "a secret is `{ env = \"NAME\" }` or `{ file = \"path\" }`, exactly one",
            )),
            Either::Plain(_) => Err(serde::de::Error::custom(
                "secrets are not written in the config: use `{ env = \"NAME\" }` or `{ file = \"path\" }`",
            )),
        }
    }
}

impl SecretRef {
    /// Reads the secret's value now. The error names where it looked, never the value.
    pub fn resolve(&self) -> Result<String, ConfigError> {
        match self {
            SecretRef::Env(name) => std::env::var(name).map_err(|_| {
                ConfigError::Secret(format!("environment variable `{name}` is not set"))
            }),
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|e| {
                    ConfigError::Secret(format!("cannot read secret file {}: {e}", path.display()))
                }),
        }
    }
}

/// A configuration that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// `toml`'s message: key, line, column and what was expected.
        message: String,
    },
    /// A secret reference could not be resolved.
    #[error("{0}")]
    Secret(String),
}

/// `toml`'s message with its line and column, but without the quoted source line: a mistyped
/// secret must not be echoed to a terminal or a log.
pub fn toml_message(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            match key_at(text, line) {
                Some(key) => format!("line {line}, column {column}: `{key}`: {message}"),
                None => format!("line {line}, column {column}: {message}"),
            }
        }
        None => message.to_owned(),
    }
}

/// The dotted key assigned on `line` (1-based), with the table header above it: `reporting.time_zone`.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line.checked_sub(1)?)?;
    let (key, _) = this.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|h| h.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(table) if !table.is_empty() => format!("{table}.{key}"),
        _ => key.to_owned(),
    })
}

impl Config {
    /// Reads and checks a config file. Relative paths inside it are taken from its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text, path)?;
        if let Some(dir) = path.parent() {
            config.resolve_relative_to(dir);
        }
        Ok(config)
    }

    /// Parses config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: origin.to_owned(),
            message: toml_message(text, &e),
        })?;
        config.check().map_err(|message| ConfigError::Invalid {
            path: origin.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// Cross-field checks that no single key's type can express.
    fn check(&self) -> Result<(), String> {
        if self.server.pg_tls_cert.is_some() != self.server.pg_tls_key.is_some() {
            return Err(
                "[server] pg_tls_cert and pg_tls_key: TLS needs both the certificate chain and its key (or neither)"
                    .to_owned(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, service) in self.services.iter().enumerate() {
            if service.name.trim().is_empty() {
                return Err(format!("services[{i}].name: a service needs a name"));
            }
            if !seen.insert(service.name.as_str()) {
                return Err(format!(
                    "services[{i}].name: service `{}` is defined twice",
                    service.name
                ));
            }
            if !service.paths.is_empty() && service.repos.is_empty() {
                return Err(format!(
                    "services[{i}].paths: path prefixes need `repos` naming the repository they are in (service `{}`)",
                    service.name
                ));
            }
        }
        for name in self.targets.services.keys() {
            if !seen.contains(name.as_str()) {
                return Err(format!(
                    "targets.services.{name}: no service named `{name}` in [[services]]"
                ));
            }
        }
        self.check_budgets(&seen)?;
        self.check_alerts()?;
        self.check_shared_costs(&seen)?;
        if let Some(github) = &self.sources.github {
            github.check()?;
        }
        if let Some(pagerduty) = &self.sources.pagerduty {
            pagerduty.check(&seen)?;
        }
        if self.reporting.production_environments.is_empty() {
            return Err(
                "reporting.production_environments: name at least one production environment"
                    .into(),
            );
        }
        Ok(())
    }

    /// `[[budgets]]`: named once each, scoped to a known service or team, thresholds that say
    /// what they compare and stay in bounds, recipients that are addresses.
    fn check_budgets(&self, services: &std::collections::BTreeSet<&str>) -> Result<(), String> {
        let teams: std::collections::BTreeSet<&str> = self
            .services
            .iter()
            .filter_map(|s| s.team.as_deref())
            .collect();
        let mut names = std::collections::BTreeSet::new();
        for (i, budget) in self.budgets.iter().enumerate() {
            if budget.name.trim().is_empty() || budget.name.contains('/') {
                return Err(format!(
                    "budgets[{i}].name: a budget needs a name without `/`, found `{}`",
                    budget.name
                ));
            }
            if !names.insert(budget.name.as_str()) {
                return Err(format!(
                    "budgets[{i}].name: a second budget named `{}`",
                    budget.name
                ));
            }
            let named = [
                budget.scope.service.is_some(),
                budget.scope.team.is_some(),
                budget.scope.tag.is_some(),
            ];
            if named.iter().filter(|n| **n).count() > 1 {
                return Err(format!(
                    "budgets[{i}].scope: name a service, a team or a tag, only one"
                ));
            }
            if let Some(tag) = &budget.scope.tag
                && (tag.len() != 1 || tag.keys().any(|k| k.is_empty()))
            {
                return Err(format!(
                    "budgets[{i}].scope.tag: one `key = \"value\"` pair, e.g. {{ env = \"prod\" }}"
                ));
            }
            match (&budget.scope.service, &budget.scope.team) {
                (Some(s), None) if !services.contains(s.as_str()) => {
                    return Err(format!(
                        "budgets[{i}].scope.service: no service named `{s}` in [[services]]"
                    ));
                }
                (None, Some(t)) if !teams.contains(t.as_str()) => {
                    return Err(format!(
                        "budgets[{i}].scope.team: no team named `{t}` in [[services]]"
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "budgets[{i}].scope: name a service or a team, not both"
                    ));
                }
                _ => {}
            }
            if budget.monthly_amount.0 <= 0 {
                return Err(format!(
                    "budgets[{i}].monthly_amount: a budget's amount is over 0"
                ));
            }
            for (j, t) in budget.thresholds.iter().enumerate() {
                let at = format!("budgets[{i}].thresholds[{j}]");
                match (t.percent, t.amount) {
                    (Some(p), None) if !(p > 0.0 && p <= 1000.0) => {
                        return Err(format!(
                            "{at}.percent: a percent over 0 and at most 1000, found {p}"
                        ));
                    }
                    (None, Some(a)) if a.0 <= 0 => {
                        return Err(format!("{at}.amount: an amount over 0"));
                    }
                    (Some(_), None) | (None, Some(_)) => {}
                    _ => {
                        return Err(format!("{at}: give `percent` or `amount`, exactly one"));
                    }
                }
            }
            for (j, r) in budget.recipients.iter().enumerate() {
                check_address(r).map_err(|e| format!("budgets[{i}].recipients[{j}]: {e}"))?;
            }
        }
        Ok(())
    }

    /// `[alerts]` and `[[reports]]`: schedules that parse, addresses, bounds.
    fn check_alerts(&self) -> Result<(), String> {
        if let Some(alerts) = &self.alerts {
            crate::schedule::Schedule::parse(&alerts.schedule)
                .map_err(|e| format!("alerts.schedule: {e}"))?;
            check_address(&alerts.from).map_err(|e| format!("alerts.from: {e}"))?;
            for (j, r) in alerts.anomaly_recipients.iter().enumerate() {
                check_address(r).map_err(|e| format!("alerts.anomaly_recipients[{j}]: {e}"))?;
            }
            if alerts.max_attempts == 0 {
                return Err("alerts.max_attempts: at least 1".into());
            }
            if alerts.anomaly_min_impact.0 < 0 {
                return Err("alerts.anomaly_min_impact: 0 or more".into());
            }
            if let Some(url) = &alerts.public_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(format!(
                    "alerts.public_url: an http:// or https:// address, found `{url}`"
                ));
            }
        }
        if !self.reports.is_empty() && self.alerts.as_ref().is_none_or(|a| a.smtp_url.is_none()) {
            return Err(
                "reports: mailing a report needs an SMTP server: set [alerts] smtp_url".into(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, report) in self.reports.iter().enumerate() {
            if report.name.trim().is_empty() || !names.insert(report.name.as_str()) {
                return Err(format!(
                    "reports[{i}].name: each report needs a name of its own, found `{}`",
                    report.name
                ));
            }
            crate::schedule::Schedule::parse(&report.schedule)
                .map_err(|e| format!("reports[{i}].schedule: {e}"))?;
            if report.recipients.is_empty() {
                return Err(format!("reports[{i}].recipients: name at least one"));
            }
            for (j, r) in report.recipients.iter().enumerate() {
                check_address(r).map_err(|e| format!("reports[{i}].recipients[{j}]: {e}"))?;
            }
        }
        Ok(())
    }

    /// `[[shared_costs]]`: named uniquely (not as a service), matching something, splitting among
    /// configured services.
    fn check_shared_costs(
        &self,
        services: &std::collections::BTreeSet<&str>,
    ) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        for (i, shared) in self.shared_costs.iter().enumerate() {
            let name = shared.name.trim();
            if name.is_empty() {
                return Err(format!(
                    "shared_costs[{i}].name: a shared cost needs a name"
                ));
            }
            if !names.insert(name) || services.contains(name) || name == "unallocated" {
                return Err(format!(
                    "shared_costs[{i}].name: `{name}` is already the name of a shared cost, a service or `unallocated`"
                ));
            }
            if shared.tags.is_empty()
                && shared.accounts.is_empty()
                && shared.cloud_services.is_empty()
            {
                return Err(format!(
                    "shared_costs[{i}]: `{name}` matches nothing: give `tags`, `accounts` or `cloud_services`"
                ));
            }
            let named = shared.weights.keys().chain(shared.services.iter());
            for service in named {
                if !services.contains(service.as_str()) {
                    return Err(format!(
                        "shared_costs[{i}]: no service named `{service}` in [[services]]"
                    ));
                }
            }
            match shared.split {
                SharedSplit::Weights => {
                    if shared.weights.values().all(|w| *w == 0) {
                        return Err(format!(
                            "shared_costs[{i}].weights: `split = \"weights\"` needs at least one positive weight"
                        ));
                    }
                    if !shared.services.is_empty() {
                        return Err(format!(
                            "shared_costs[{i}].services: with `split = \"weights\"` the services are the keys of `weights`"
                        ));
                    }
                }
                SharedSplit::Proportional => {
                    if !shared.weights.is_empty() {
                        return Err(format!(
                            "shared_costs[{i}].weights: weights need `split = \"weights\"`"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn resolve_relative_to(&mut self, dir: &Path) {
        if !self.lake.path.contains("://") && Path::new(&self.lake.path).is_relative() {
            self.lake.path = dir.join(&self.lake.path).to_string_lossy().into_owned();
        }
        for path in [
            &mut self.dashboards.dir,
            &mut self.server.pg_tls_cert,
            &mut self.server.pg_tls_key,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
        for source in [
            &mut self.sources.events,
            &mut self.sources.focus,
            &mut self.sources.cur,
        ]
        .into_iter()
        .flatten()
        {
            for p in &mut source.paths {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
    }

    /// The teams of the configured services, sorted, each once.
    pub fn teams(&self) -> Vec<&str> {
        let mut teams: Vec<&str> = self
            .services
            .iter()
            .filter_map(|s| s.team.as_deref())
            .collect();
        teams.sort_unstable();
        teams.dedup();
        teams
    }

    /// Whether `environment` is a production environment.
    pub fn is_production(&self, environment: &str) -> bool {
        self.reporting
            .production_environments
            .iter()
            .any(|e| e.eq_ignore_ascii_case(environment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("doracost.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_config_takes_the_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.lake.path, "data");
        assert_eq!(c.reporting.time_zone.name(), "UTC");
        assert_eq!(c.reporting.attribution_window_days, 7);
        assert!(
            c.is_production("PROD") && c.is_production("production") && !c.is_production("staging")
        );
        assert_eq!(c.targets.change_failure_rate, 0.05);
        assert_eq!(c.reporting.cost_metric, CostMetric::EffectiveCost);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err =
            parse("[reporting]\ntime_zone = \"UTC\"\nattribution_windw_days = 3\n").unwrap_err();
        assert!(err.contains("attribution_windw_days"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn wrong_type_is_named_with_its_line() {
        let err = parse("[reporting]\n\nattribution_window_days = \"seven\"\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(
            err.contains("attribution_window_days") || err.contains("integer"),
            "{err}"
        );
    }

    #[test]
    fn bad_time_zone_and_float_money_are_rejected_at_their_line() {
        let err = parse("[reporting]\ntime_zone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(
            err.contains("Mars/Olympus") && err.contains("line 2"),
            "{err}"
        );
        let budget = "[[budgets]]\nname = \"b\"\nscope = {}\nmonthly_amount = 10.5\n";
        let err = parse(budget).unwrap_err();
        assert!(err.contains("line 4") && err.contains("float"), "{err}");
        let ok =
            parse("[[budgets]]\nname = \"b\"\nscope = {}\nmonthly_amount = \"10.50\"\n").unwrap();
        assert_eq!(ok.budgets[0].monthly_amount, Money(10_500_000_000_000));
    }

    #[test]
    fn secrets_are_references_never_values() {
        let err = parse("[server]\ntoken = \"hunter2\"\n").unwrap_err();
        assert!(
            err.contains("secrets are not written in the config"),
            "{err}"
        );
        assert!(
            !err.contains("hunter2"),
            "the secret leaked into the error: {err}"
        );
        let c = parse("[server]\ntoken = { env = \"DORACOST_TEST_TOKEN_UNSET\" }\n").unwrap();
        let token = c.server.token.unwrap();
        assert_eq!(token, SecretRef::Env("DORACOST_TEST_TOKEN_UNSET".into()));
        assert!(
            token
                .resolve()
                .unwrap_err()
                .to_string()
                .contains("DORACOST_TEST_TOKEN_UNSET")
        );
    }

    #[test]
    fn shared_cost_mistakes_name_the_key() {
        let services = "[[services]]\nname = \"a\"\n[[services]]\nname = \"b\"\n";
        let ok = parse(&format!(
            "{services}[[shared_costs]]\nname = \"platform\"\ntags = {{ shared = \"platform\" }}\nsplit = \"weights\"\nweights = {{ a = 2, b = 1 }}\n"
        ))
        .unwrap();
        assert_eq!(ok.shared_costs[0].split, SharedSplit::Weights);
        assert_eq!(ok.shared_costs[0].weights["a"], 2);
        let cases = [
            ("name = \"p\"\n", "matches nothing"),
            ("name = \"a\"\naccounts = [\"1\"]\n", "shared_costs[0].name"),
            (
                "name = \"p\"\naccounts = [\"1\"]\nservices = [\"ghost\"]\n",
                "ghost",
            ),
            (
                "name = \"p\"\naccounts = [\"1\"]\nsplit = \"weights\"\n",
                "positive weight",
            ),
            (
                "name = \"p\"\naccounts = [\"1\"]\nweights = { a = 1 }\n",
                "weights need",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(&format!("{services}[[shared_costs]]\n{body}")).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
        let float = parse("[reporting]\nanomaly_min_impact = 1.5\n").unwrap_err();
        assert!(float.contains("float"), "{float}");
    }

    #[test]
    fn cross_field_mistakes_name_the_key() {
        let twice = "[[services]]\nname = \"a\"\n[[services]]\nname = \"a\"\n";
        assert!(parse(twice).unwrap_err().contains("services[1].name"));
        let unknown = "[targets.services.ghost]\nlead_time_hours = 2.0\n";
        assert!(
            parse(unknown)
                .unwrap_err()
                .contains("targets.services.ghost")
        );
    }
    #[test]
    fn budget_and_alert_mistakes_name_the_key() {
        let services = "[[services]]\nname = \"shop\"\nteam = \"web\"\n";
        let ok = parse(&format!(
            "{services}[[budgets]]\nname = \"web\"\nscope = {{ team = \"web\" }}\nmonthly_amount = \"1000\"\nrecipients = [\"web@example.com\"]\nthresholds = [{{ percent = 80, kind = \"actual\", severity = \"P2\" }}, {{ amount = \"1200.50\", kind = \"forecast\", severity = \"P1\" }}]\n[alerts]\nschedule = \"0 8 * * *\"\nsmtp_url = {{ env = \"SMTP_URL\" }}\n[[reports]]\nname = \"review\"\nschedule = \"0 9 1W * *\"\nrecipients = [\"platform@example.com\"]\n"
        ))
        .unwrap();
        let t = &ok.budgets[0].thresholds;
        assert_eq!((t[0].percent, t[0].severity), (Some(80.0), Severity::P2));
        assert_eq!(t[1].amount, Some(Money(1_200_500_000_000_000)));
        assert_eq!(ok.reports[0].dashboard, "review");
        let budget = |scope: &str, amount: &str, threshold: &str| {
            format!(
                "{services}[[budgets]]\nname = \"b\"\nscope = {scope}\nmonthly_amount = {amount}\nthresholds = [{threshold}]\n"
            )
        };
        let t80 = "{ percent = 80, kind = \"actual\" }";
        let tagged = parse(&budget("{ tag = { env = \"prod\" } }", "\"10\"", t80)).unwrap();
        assert_eq!(tagged.budgets[0].scope.tag_pair(), Some(("env", "prod")));
        let cases = [
            (
                budget("{ tag = { env = \"prod\", team = \"x\" } }", "\"10\"", t80),
                "budgets[0].scope.tag: one `key = \"value\"` pair",
            ),
            (
                budget(
                    "{ team = \"web\", tag = { env = \"prod\" } }",
                    "\"10\"",
                    t80,
                ),
                "budgets[0].scope: name a service, a team or a tag, only one",
            ),
            (
                budget("{ cluster = \"x\" }", "\"10\"", t80),
                "unknown field `cluster`",
            ),
            (
                budget("{ team = \"ops\" }", "\"10\"", t80),
                "budgets[0].scope.team: no team named `ops`",
            ),
            (budget("{}", "10.5", t80), "not a float"),
            (
                budget("{}", "\"10\"", "{ percent = 1200, kind = \"actual\" }"),
                "budgets[0].thresholds[0].percent: a percent over 0 and at most 1000, found 1200",
            ),
            (
                budget(
                    "{}",
                    "\"10\"",
                    "{ percent = 50, amount = \"5\", kind = \"actual\" }",
                ),
                "budgets[0].thresholds[0]: give `percent` or `amount`, exactly one",
            ),
            (
                budget(
                    "{}",
                    "\"10\"",
                    "{ percent = 50, kind = \"actual\", severity = \"P9\" }",
                ),
                "unknown variant `P9`",
            ),
            (
                format!(
                    "{}recipients = [\"finance\"]\n",
                    budget("{}", "\"10\"", t80)
                ),
                "budgets[0].recipients[0]: an email address",
            ),
            (
                format!("{services}[alerts]\nschedule = \"0 25 * * *\"\n"),
                "alerts.schedule: `0 25 * * *` is not a cron expression",
            ),
            (
                format!(
                    "{services}[alerts]\nsmtp_url = {{ env = \"SMTP_URL\" }}\n[[reports]]\nname = \"r\"\nschedule = \"monthly please\"\nrecipients = [\"a@b.c\"]\n"
                ),
                "reports[0].schedule",
            ),
            (
                format!(
                    "{services}[[reports]]\nname = \"r\"\nschedule = \"0 9 1W * *\"\nrecipients = [\"a@b.c\"]\n"
                ),
                "reports: mailing a report needs an SMTP server",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
