//! The organisation's shape: teams, services, repos and how actively each team ships.
//!
//! Small is written out by hand (3 teams, 12 services, one monorepo); medium and large keep the
//! small organisation and add generated teams of four services, every sixth team in a monorepo.

use crate::Scale;
use crate::calendar::{PERIOD_DAYS, PERIOD_MONTHS, working_days_in_period};

/// How a team delivers software, in DORA terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Several deploys a day, small batches, fast recovery.
    Elite,
    /// A few deploys a week.
    Medium,
    /// A deploy every few weeks, big batches, slow recovery.
    Low,
}

/// Rates that drive one service's delivery stream.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryRates {
    /// Commits merged per working day.
    pub commits_per_working_day: f64,
    /// Production deploys attempted per working day.
    pub deploys_per_working_day: f64,
    /// Share of production deploys that fail.
    pub failure_rate: f64,
    /// Share of production deploys that are cancelled.
    pub cancel_rate: f64,
    /// Share of successful production deploys that cause an incident.
    pub incident_rate: f64,
    /// Unrelated incidents per month.
    pub unrelated_incidents_per_month: f64,
    /// Median incident duration when neither rolled back nor hotfixed, in seconds.
    pub recovery_median_seconds: f64,
    /// Median PR coding time (first commit to opened), in seconds.
    pub coding_median_seconds: f64,
    /// Median PR pickup time (opened to first review), in seconds.
    pub pickup_median_seconds: f64,
    /// Median PR review time (first review to merged), in seconds.
    pub review_median_seconds: f64,
    /// Median deploy duration, in seconds.
    pub deploy_seconds: f64,
}

impl Profile {
    /// The base rates of this profile (before the scale's multipliers).
    pub fn rates(self) -> DeliveryRates {
        match self {
            Profile::Elite => DeliveryRates {
                commits_per_working_day: 2.2,
                deploys_per_working_day: 2.0,
                failure_rate: 0.03,
                cancel_rate: 0.02,
                incident_rate: 0.035,
                unrelated_incidents_per_month: 0.25,
                recovery_median_seconds: 35.0 * 60.0,
                coding_median_seconds: 3.0 * 3600.0,
                pickup_median_seconds: 40.0 * 60.0,
                review_median_seconds: 30.0 * 60.0,
                deploy_seconds: 6.0 * 60.0,
            },
            Profile::Medium => DeliveryRates {
                commits_per_working_day: 0.7,
                deploys_per_working_day: 0.35,
                failure_rate: 0.08,
                cancel_rate: 0.03,
                incident_rate: 0.12,
                unrelated_incidents_per_month: 0.3,
                recovery_median_seconds: 4.0 * 3600.0,
                coding_median_seconds: 20.0 * 3600.0,
                pickup_median_seconds: 5.0 * 3600.0,
                review_median_seconds: 3.0 * 3600.0,
                deploy_seconds: 15.0 * 60.0,
            },
            Profile::Low => DeliveryRates {
                commits_per_working_day: 0.5,
                deploys_per_working_day: 1.0 / 15.0,
                failure_rate: 0.15,
                cancel_rate: 0.03,
                incident_rate: 0.3,
                unrelated_incidents_per_month: 0.35,
                recovery_median_seconds: 30.0 * 3600.0,
                coding_median_seconds: 3.0 * 86_400.0,
                pickup_median_seconds: 26.0 * 3600.0,
                review_median_seconds: 20.0 * 3600.0,
                deploy_seconds: 40.0 * 60.0,
            },
        }
    }
}

/// A team.
#[derive(Debug, Clone)]
pub struct Team {
    /// Team name, e.g. `payments`.
    pub name: String,
    /// How it ships.
    pub profile: Profile,
}

/// A service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Position in the organisation; seeds the service's random streams.
    pub index: usize,
    /// Service name, e.g. `checkout`.
    pub name: String,
    /// Index into [`Org::teams`].
    pub team: usize,
    /// Index into [`Org::repos`].
    pub repo: usize,
    /// Path prefix in a monorepo, e.g. `services/billing/`; `None` for a single-service repo.
    pub path_prefix: Option<String>,
    /// Whether each production deploy is preceded by a staging deploy of the same sha.
    pub has_staging: bool,
}

/// A git repository.
#[derive(Debug, Clone)]
pub struct Repo {
    /// `owner/name`.
    pub name: String,
    /// Indices into [`Org::services`].
    pub services: Vec<usize>,
    /// Whether this repo's deployments are written as DevLake webhook payloads (head commit only).
    pub devlake: bool,
}

/// Per-scale volume knobs.
#[derive(Debug, Clone, Copy)]
pub struct ScaleParams {
    /// Multiplies deploy and incident rates.
    pub deploy_multiplier: f64,
    /// Multiplies commit rates.
    pub commit_multiplier: f64,
    /// Multiplies incident rates (large organisations have more incidents per deploy).
    pub incident_multiplier: f64,
    /// Fewest cost lines per service per day.
    pub min_cost_lines: usize,
    /// Most cost lines per service per day.
    pub max_cost_lines: usize,
}

impl ScaleParams {
    /// The knobs of a scale.
    pub fn of(scale: Scale) -> Self {
        match scale {
            Scale::Small | Scale::Medium => ScaleParams {
                deploy_multiplier: 1.0,
                commit_multiplier: 1.0,
                incident_multiplier: 1.0,
                min_cost_lines: 1,
                max_cost_lines: 3,
            },
            Scale::Large => ScaleParams {
                deploy_multiplier: 4.5,
                commit_multiplier: 17.0,
                incident_multiplier: 2.0,
                min_cost_lines: 30,
                max_cost_lines: 42,
            },
        }
    }
}

/// The whole organisation.
#[derive(Debug, Clone)]
pub struct Org {
    /// Volume knobs.
    pub params: ScaleParams,
    /// Teams.
    pub teams: Vec<Team>,
    /// Services, in generation order.
    pub services: Vec<Service>,
    /// Repos, in generation order.
    pub repos: Vec<Repo>,
    /// The team whose incidents are written as DevLake issues.
    pub devlake_team: usize,
}

/// Shared (tag `shared=platform`) cost owners: each bills a NAT gateway and an EKS control plane.
pub fn shared_owner_count(services: usize) -> usize {
    (services / 50).max(1)
}

/// Untagged cost owners: each bills a logs bucket and CloudWatch ingestion.
pub fn untagged_owner_count(services: usize) -> usize {
    (services / 25).max(1)
}

const SMALL: [(&str, usize, &str, Option<&str>, bool); 12] = [
    ("checkout", 0, "acme/checkout", None, true),
    ("cart", 0, "acme/cart", None, false),
    (
        "billing",
        0,
        "acme/platform",
        Some("services/billing/"),
        false,
    ),
    (
        "ledger",
        0,
        "acme/platform",
        Some("services/ledger/"),
        false,
    ),
    (
        "notify",
        1,
        "acme/platform",
        Some("services/notify/"),
        false,
    ),
    ("search", 1, "acme/search", None, true),
    ("recommendations", 1, "acme/recommendations", None, false),
    ("web", 1, "acme/web", None, false),
    ("inventory", 2, "acme/inventory", None, false),
    ("identity", 2, "acme/identity", None, true),
    ("reporting", 2, "acme/reporting", None, false),
    ("warehouse", 2, "acme/warehouse", None, false),
];

const DOMAINS: [&str; 40] = [
    "orders",
    "payments",
    "fraud",
    "pricing",
    "catalog",
    "shipping",
    "returns",
    "loyalty",
    "coupons",
    "tax",
    "invoices",
    "refunds",
    "accounts",
    "profiles",
    "sessions",
    "consent",
    "media",
    "reviews",
    "ratings",
    "wishlist",
    "stock",
    "suppliers",
    "routing",
    "tracking",
    "messaging",
    "email",
    "sms",
    "push",
    "feeds",
    "ads",
    "analytics",
    "metrics",
    "audit",
    "exports",
    "imports",
    "geo",
    "currency",
    "subscriptions",
    "support",
    "partners",
];
const KINDS: [&str; 25] = [
    "api",
    "worker",
    "gateway",
    "sync",
    "scheduler",
    "indexer",
    "consumer",
    "publisher",
    "store",
    "cache",
    "web",
    "admin",
    "batch",
    "stream",
    "proxy",
    "bridge",
    "ingest",
    "export",
    "resolver",
    "router",
    "notifier",
    "reconciler",
    "archiver",
    "validator",
    "planner",
];
const TEAM_WORDS: [&str; 40] = [
    "falcons", "otters", "badgers", "herons", "lynx", "ravens", "wolves", "orcas", "pandas",
    "bison", "cranes", "foxes", "geckos", "hawks", "ibis", "jackals", "koalas", "lemurs",
    "marmots", "newts", "ospreys", "puffins", "quokkas", "robins", "salmon", "tapirs", "urchins",
    "vipers", "walruses", "yaks", "zebras", "alpacas", "beavers", "cobras", "dingos", "egrets",
    "ferrets", "gibbons", "hyenas", "impalas",
];

/// Number of services at a scale.
pub fn service_count(scale: Scale) -> usize {
    match scale {
        Scale::Small => 12,
        Scale::Medium => 100,
        Scale::Large => 1_000,
    }
}

impl Org {
    /// Plans the organisation of a scale (cheap: no events are generated).
    pub fn plan(scale: Scale) -> Org {
        let mut teams = vec![
            Team {
                name: "payments".into(),
                profile: Profile::Elite,
            },
            Team {
                name: "growth".into(),
                profile: Profile::Medium,
            },
            Team {
                name: "core".into(),
                profile: Profile::Low,
            },
        ];
        let mut services = Vec::new();
        let mut repos: Vec<Repo> = Vec::new();
        for (name, team, repo, prefix, has_staging) in SMALL {
            let index = services.len();
            let repo_index = match repos.iter().position(|r| r.name == repo) {
                Some(position) => position,
                None => {
                    repos.push(Repo {
                        name: repo.into(),
                        services: Vec::new(),
                        devlake: repo == "acme/inventory",
                    });
                    repos.len() - 1
                }
            };
            repos[repo_index].services.push(index);
            services.push(Service {
                index,
                name: name.into(),
                team,
                repo: repo_index,
                path_prefix: prefix.map(str::to_string),
                has_staging,
            });
        }
        let total = service_count(scale);
        let mut generated = 0;
        while services.len() < total {
            let team_number = teams.len() - 3;
            let team_name = match team_number / TEAM_WORDS.len() {
                0 => TEAM_WORDS[team_number].to_string(),
                round => format!(
                    "{}-{}",
                    TEAM_WORDS[team_number % TEAM_WORDS.len()],
                    round + 1
                ),
            };
            let profile = match team_number % 3 {
                0 => Profile::Elite,
                1 => Profile::Medium,
                _ => Profile::Low,
            };
            let team = teams.len();
            let monorepo = team_number % 6 == 5;
            if monorepo {
                repos.push(Repo {
                    name: format!("acme/{team_name}-platform"),
                    services: Vec::new(),
                    devlake: false,
                });
            }
            for _ in 0..4 {
                if services.len() >= total {
                    break;
                }
                let name = match generated / (DOMAINS.len() * KINDS.len()) {
                    0 => format!(
                        "{}-{}",
                        DOMAINS[generated % DOMAINS.len()],
                        KINDS[generated / DOMAINS.len()]
                    ),
                    round => format!(
                        "{}-{}-{}",
                        DOMAINS[generated % DOMAINS.len()],
                        KINDS[(generated / DOMAINS.len()) % KINDS.len()],
                        round + 1
                    ),
                };
                generated += 1;
                let index = services.len();
                let path_prefix = if monorepo {
                    Some(format!("services/{name}/"))
                } else {
                    None
                };
                if !monorepo {
                    repos.push(Repo {
                        name: format!("acme/{name}"),
                        services: Vec::new(),
                        devlake: false,
                    });
                }
                let repo = repos.len() - 1;
                repos[repo].services.push(index);
                services.push(Service {
                    index,
                    name,
                    team,
                    repo,
                    path_prefix,
                    has_staging: index % 3 == 0,
                });
            }
            teams.push(Team {
                name: team_name,
                profile,
            });
        }
        Org {
            params: ScaleParams::of(scale),
            teams,
            services,
            repos,
            devlake_team: 2,
        }
    }

    /// The rates of a service, with the scale's multipliers applied.
    pub fn rates(&self, service: usize) -> DeliveryRates {
        let mut rates = self.teams[self.services[service].team].profile.rates();
        rates.commits_per_working_day *= self.params.commit_multiplier;
        rates.deploys_per_working_day *= self.params.deploy_multiplier;
        rates.incident_rate = (rates.incident_rate * self.params.incident_multiplier).min(0.9);
        rates.unrelated_incidents_per_month *=
            self.params.deploy_multiplier * self.params.incident_multiplier;
        rates
    }

    /// Whether a service's incidents are written as DevLake issues.
    pub fn incidents_in_devlake(&self, service: usize) -> bool {
        self.services[service].team == self.devlake_team
    }

    /// Whether a service's deployments are written as DevLake payloads.
    pub fn deployments_in_devlake(&self, service: usize) -> bool {
        self.repos[self.services[service].repo].devlake
    }
}

/// Approximate volumes of a scale, computed from the plan's rates without generating anything.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedShape {
    /// Teams.
    pub teams: usize,
    /// Services.
    pub services: usize,
    /// Deployments (production and staging).
    pub deployments: f64,
    /// Changes.
    pub changes: f64,
    /// Incidents.
    pub incidents: f64,
    /// FOCUS rows.
    pub cost_rows: f64,
}

/// The expected volumes of a scale (e.g. to check that large is ~2M deployments without writing it).
pub fn expected_shape(scale: Scale) -> ExpectedShape {
    let org = Org::plan(scale);
    let working_days = working_days_in_period() as f64;
    let mut shape = ExpectedShape {
        teams: org.teams.len(),
        services: org.services.len(),
        deployments: 0.0,
        changes: 0.0,
        incidents: 0.0,
        cost_rows: 0.0,
    };
    for service in &org.services {
        let rates = org.rates(service.index);
        // A scheduled deploy with nothing new to ship is mostly skipped.
        let commits_per_deploy = rates.commits_per_working_day / rates.deploys_per_working_day;
        let deploy_share = (1.0 - (-commits_per_deploy).exp()).max(0.0);
        let production = rates.deploys_per_working_day * working_days * deploy_share;
        let successful = production * (1.0 - rates.failure_rate - rates.cancel_rate);
        let staging = if service.has_staging { production } else { 0.0 };
        shape.deployments += production + staging + successful * rates.incident_rate * 0.3;
        shape.changes += rates.commits_per_working_day * working_days;
        shape.incidents += successful * rates.incident_rate
            + rates.unrelated_incidents_per_month * PERIOD_MONTHS as f64;
        let (min, max) = (
            org.params.min_cost_lines as f64,
            org.params.max_cost_lines as f64,
        );
        // Small scales draw extra lines with probability 0.4 each (see costs::resources).
        let lines = if max - min <= 2.0 {
            min + 0.4 + 0.16
        } else {
            (min + max) / 2.0
        };
        shape.cost_rows += lines * PERIOD_DAYS as f64;
    }
    let services = org.services.len();
    shape.cost_rows += ((shared_owner_count(services) + untagged_owner_count(services)) * 2) as f64
        * PERIOD_DAYS as f64;
    shape
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_org_has_three_teams_twelve_services_and_a_monorepo() {
        let org = Org::plan(Scale::Small);
        assert_eq!(org.teams.len(), 3);
        assert_eq!(org.services.len(), 12);
        let platform = org.repos.iter().find(|r| r.name == "acme/platform");
        assert!(platform.is_some_and(|r| r.services.len() == 3));
        assert_eq!(org.repos.iter().filter(|r| r.devlake).count(), 1);
    }

    #[test]
    fn medium_and_large_have_unique_names() {
        for scale in [Scale::Medium, Scale::Large] {
            let org = Org::plan(scale);
            assert_eq!(org.services.len(), service_count(scale));
            let names: std::collections::BTreeSet<_> =
                org.services.iter().map(|s| &s.name).collect();
            assert_eq!(names.len(), org.services.len());
            let teams: std::collections::BTreeSet<_> = org.teams.iter().map(|t| &t.name).collect();
            assert_eq!(teams.len(), org.teams.len());
            let repos: std::collections::BTreeSet<_> = org.repos.iter().map(|r| &r.name).collect();
            assert_eq!(repos.len(), org.repos.len());
        }
    }

    #[test]
    fn large_shape_matches_the_brief() {
        let shape = expected_shape(Scale::Large);
        assert_eq!(shape.services, 1_000);
        assert!((1.5e6..2.6e6).contains(&shape.deployments), "{shape:?}");
        assert!((7e6..13e6).contains(&shape.changes), "{shape:?}");
        assert!((1.4e5..2.6e5).contains(&shape.incidents), "{shape:?}");
        assert!((15e6..25e6).contains(&shape.cost_rows), "{shape:?}");
    }
}
