//! `[sources.github]`: how `doracost ingest github` and `POST /webhooks/github` read GitHub
//! (DESIGN §6; issue 17 parts 1, 2, 5, 6).
//!
//! ```toml
//! [sources.github]
//! repos = ["acme/shop", "acme/platform"]
//! token = { env = "GITHUB_TOKEN" }        # the default
//! incident_labels = ["incident"]
//!
//! [sources.github.deploy_signals."acme/shop"]
//! signal = "workflow_runs"
//! workflows = { "Deploy production" = "production", "Deploy staging" = "staging" }
//!
//! [sources.github.deploy_signals."acme/legacy"]
//! signal = "releases"
//! environment = "production"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::SecretRef;

/// `[sources.github]`: the repositories read, how to authenticate, and what counts as a
/// deployment, an incident and a review in each.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSource {
    /// Repositories read by default, as `owner/name`.
    #[serde(default)]
    pub repos: Vec<String>,
    /// A personal access token or fine-grained token, as a secret reference; when neither this
    /// nor `app` is given, the `GITHUB_TOKEN` environment variable (see [`GithubSource::token`]).
    #[serde(default, rename = "token")]
    pub token_ref: Option<SecretRef>,
    /// Authenticate as a GitHub App installation instead of with a token.
    #[serde(default)]
    pub app: Option<GithubApp>,
    /// The REST API's base URL: `https://api.github.com`, or GitHub Enterprise Server's
    /// `https://HOST/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Issues carrying any of these labels are incidents (pull requests in the issues list are
    /// skipped whatever their labels).
    #[serde(default = "default_incident_labels")]
    pub incident_labels: Vec<String>,
    /// Merged revert pull requests (`Revert "…"` titles, `revert-N-…` head branches) mark the
    /// deployment that shipped the reverted change as failed.
    #[serde(default = "default_true")]
    pub revert_prs_as_failures: bool,
    /// Reviewers whose reviews never count as a PR's first review, beside every account GitHub
    /// marks `"type": "Bot"` (e.g. a bot account that is a plain user).
    #[serde(default)]
    pub exclude_reviewers: Vec<String>,
    /// How each repository records its deployments; a repository not named here uses the
    /// deployments API.
    #[serde(default)]
    pub deploy_signals: BTreeMap<String, DeploySignal>,
    /// `POST /webhooks/github`: the webhook's secret, checked against `X-Hub-Signature-256`;
    /// without it the route answers 404.
    #[serde(default)]
    pub webhook_secret: Option<SecretRef>,
    /// Attempts per request before the ingest stops with an error naming the route.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The longest one request may take, in seconds (a slower answer is retried).
    #[serde(default = "default_request_timeout_seconds")]
    pub request_timeout_seconds: f64,
}

/// `[sources.github.app]`: a GitHub App installation's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubApp {
    /// The App's id (its settings page, "App ID").
    pub app_id: u64,
    /// The App's private key (PEM), a secret reference: `{ file = "…" }` or `{ env = "…" }`.
    pub private_key: SecretRef,
    /// The installation on the organisation or account that owns the repositories.
    pub installation_id: u64,
}

/// How one repository records its deployments.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeploySignal {
    /// The deployments API: each deployment's `environment`, successful once any status is
    /// `success` (a later `inactive` does not undo it; `inactive` with no `success` is a
    /// cancelled deployment).
    Deployments,
    /// GitHub Actions runs of the named workflows (by workflow `name`), each mapped to the
    /// environment it deploys: conclusion `success`, `failure` or `cancelled`, `head_sha`,
    /// `run_started_at` to `updated_at`.
    WorkflowRuns {
        /// Workflow name → environment, e.g. `{ "Deploy production" = "production" }`.
        workflows: BTreeMap<String, String>,
    },
    /// Published releases, each a successful deployment of its `target_commitish` to
    /// `environment` from `created_at` to `published_at` (releases show no failures).
    Releases {
        /// The environment a release deploys to.
        environment: String,
    },
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}
fn default_incident_labels() -> Vec<String> {
    vec!["incident".into()]
}
fn default_true() -> bool {
    true
}
fn default_max_attempts() -> u32 {
    6
}
fn default_request_timeout_seconds() -> f64 {
    30.0
}

/// The environment variable read for a token when none is configured.
pub const DEFAULT_TOKEN_ENV: &str = "GITHUB_TOKEN";

impl GithubSource {
    /// The token's secret reference: the configured one, else `{ env = "GITHUB_TOKEN" }`.
    /// `None` when a GitHub App authenticates instead.
    pub fn token(&self) -> Option<SecretRef> {
        match (&self.token_ref, &self.app) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(SecretRef::Env(DEFAULT_TOKEN_ENV.into())),
        }
    }

    /// The deploy signal of `repo` (`owner/name`): its configured one, else the deployments API.
    pub fn signal(&self, repo: &str) -> &DeploySignal {
        static DEPLOYMENTS: DeploySignal = DeploySignal::Deployments;
        self.deploy_signals.get(repo).unwrap_or(&DEPLOYMENTS)
    }

    /// Checks that no single key's type can express; messages name the key.
    pub(super) fn check(&self) -> Result<(), String> {
        let at = "sources.github";
        for (i, repo) in self.repos.iter().enumerate() {
            if !is_repo_name(repo) {
                return Err(format!("{at}.repos[{i}]: `{repo}` is not `owner/name`"));
            }
            if self.repos[..i].contains(repo) {
                return Err(format!("{at}.repos[{i}]: `{repo}` is listed twice"));
            }
        }
        if self.token_ref.is_some() && self.app.is_some() {
            return Err(format!(
                "{at}: give `token` or `app`, not both (an App installation makes its own tokens)"
            ));
        }
        let url = self.api_url.trim_end_matches('/');
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or_default();
        if host.is_empty() || host.starts_with('/') {
            return Err(format!(
                "{at}.api_url: `{}` is not an http(s) URL (e.g. https://github.example.com/api/v3)",
                self.api_url
            ));
        }
        if self.incident_labels.iter().any(|l| l.trim().is_empty()) {
            return Err(format!("{at}.incident_labels: a label cannot be empty"));
        }
        if self.max_attempts == 0 {
            return Err(format!("{at}.max_attempts: at least 1"));
        }
        if !(self.request_timeout_seconds > 0.0 && self.request_timeout_seconds.is_finite()) {
            return Err(format!(
                "{at}.request_timeout_seconds: a number of seconds over 0"
            ));
        }
        for (repo, signal) in &self.deploy_signals {
            let key = format!("{at}.deploy_signals.\"{repo}\"");
            if !is_repo_name(repo) {
                return Err(format!("{key}: `{repo}` is not `owner/name`"));
            }
            if !self.repos.is_empty() && !self.repos.contains(repo) {
                return Err(format!("{key}: `{repo}` is not in {at}.repos"));
            }
            match signal {
                DeploySignal::Deployments => {}
                DeploySignal::WorkflowRuns { workflows } => {
                    if workflows.is_empty() {
                        return Err(format!(
                            "{key}.workflows: name at least one workflow, e.g. {{ \"Deploy production\" = \"production\" }}"
                        ));
                    }
                    if let Some((name, _)) = workflows.iter().find(|(_, env)| env.trim().is_empty())
                    {
                        return Err(format!(
                            "{key}.workflows.\"{name}\": an environment name cannot be empty"
                        ));
                    }
                }
                DeploySignal::Releases { environment } => {
                    if environment.trim().is_empty() {
                        return Err(format!(
                            "{key}.environment: an environment name cannot be empty"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `owner/name`, each part non-empty and free of spaces and further slashes.
fn is_repo_name(repo: &str) -> bool {
    match repo.split_once('/') {
        Some((owner, name)) => [owner, name]
            .iter()
            .all(|part| !part.is_empty() && !part.contains(['/', ' ', '\t'])),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("doracost.toml")).map_err(|e| e.to_string())
    }

    fn github(text: &str) -> GithubSource {
        parse(text).unwrap().sources.github.unwrap()
    }

    #[test]
    fn defaults_read_the_deployments_api_with_the_environment_token() {
        let g = github("[sources.github]\nrepos = [\"acme/shop\"]\n");
        assert_eq!(g.token(), Some(SecretRef::Env("GITHUB_TOKEN".into())));
        assert_eq!(g.api_url, "https://api.github.com");
        assert_eq!(g.incident_labels, ["incident"]);
        assert!(g.revert_prs_as_failures);
        assert_eq!(g.signal("acme/shop"), &DeploySignal::Deployments);
        assert_eq!((g.max_attempts, g.request_timeout_seconds), (6, 30.0));
        assert!(parse("").unwrap().sources.github.is_none());
    }

    #[test]
    fn signals_apps_and_enterprise_urls_parse() {
        let g = github(
            "[sources.github]\nrepos = [\"acme/shop\", \"acme/legacy\", \"acme/api\"]\n\
             api_url = \"https://github.acme.example/api/v3\"\nincident_labels = [\"incident\", \"sev1\"]\n\
             revert_prs_as_failures = false\nexclude_reviewers = [\"renovate\"]\n\
             webhook_secret = { env = \"GH_HOOK_SECRET\" }\n\
             [sources.github.app]\napp_id = 12\nprivate_key = { file = \"app.pem\" }\ninstallation_id = 34\n\
             [sources.github.deploy_signals.\"acme/shop\"]\nsignal = \"workflow_runs\"\n\
             workflows = { \"Deploy production\" = \"production\", \"Deploy staging\" = \"staging\" }\n\
             [sources.github.deploy_signals.\"acme/legacy\"]\nsignal = \"releases\"\nenvironment = \"production\"\n\
             [sources.github.deploy_signals.\"acme/api\"]\nsignal = \"deployments\"\n",
        );
        assert_eq!(g.token(), None);
        let app = g.app.as_ref().unwrap();
        assert_eq!((app.app_id, app.installation_id), (12, 34));
        assert_eq!(app.private_key, SecretRef::File("app.pem".into()));
        match g.signal("acme/shop") {
            DeploySignal::WorkflowRuns { workflows } => {
                assert_eq!(workflows["Deploy production"], "production");
                assert_eq!(workflows["Deploy staging"], "staging");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            g.signal("acme/legacy"),
            &DeploySignal::Releases {
                environment: "production".into()
            }
        );
        assert_eq!(g.signal("acme/api"), &DeploySignal::Deployments);
        assert!(!g.revert_prs_as_failures);
        assert_eq!(g.exclude_reviewers, ["renovate"]);
        assert_eq!(
            g.webhook_secret,
            Some(SecretRef::Env("GH_HOOK_SECRET".into()))
        );
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            (
                "repos = [\"shop\"]\n",
                "sources.github.repos[0]: `shop` is not `owner/name`",
            ),
            (
                "repos = [\"a/b\", \"a/b\"]\n",
                "sources.github.repos[1]: `a/b` is listed twice",
            ),
            (
                "token = \"ghp_secret\"\n",
                "secrets are not written in the config",
            ),
            ("api_url = \"github.com\"\n", "sources.github.api_url"),
            (
                "incident_labels = [\"\"]\n",
                "sources.github.incident_labels",
            ),
            ("max_attempts = 0\n", "sources.github.max_attempts"),
            ("request_timeout = 5\n", "unknown field `request_timeout`"),
            (
                "token = { env = \"T\" }\n[sources.github.app]\napp_id = 1\nprivate_key = { file = \"k.pem\" }\ninstallation_id = 2\n",
                "sources.github: give `token` or `app`, not both",
            ),
            (
                "[sources.github.app]\napp_id = \"one\"\nprivate_key = { file = \"k.pem\" }\ninstallation_id = 2\n",
                "sources.github.app.app_id",
            ),
            (
                "repos = [\"a/b\"]\n[sources.github.deploy_signals.\"a/c\"]\nsignal = \"deployments\"\n",
                "sources.github.deploy_signals.\"a/c\": `a/c` is not in sources.github.repos",
            ),
            (
                "[sources.github.deploy_signals.\"a/b\"]\nsignal = \"workflow_runs\"\nworkflows = {}\n",
                "sources.github.deploy_signals.\"a/b\".workflows: name at least one workflow",
            ),
            (
                "[sources.github.deploy_signals.\"a/b\"]\nsignal = \"workflow_runs\"\nworkflows = { Deploy = \"\" }\n",
                "sources.github.deploy_signals.\"a/b\".workflows.\"Deploy\"",
            ),
            (
                "[sources.github.deploy_signals.\"a/b\"]\nsignal = \"releases\"\n",
                "missing field `environment`",
            ),
            (
                "[sources.github.deploy_signals.\"a/b\"]\nsignal = \"tags\"\n",
                "unknown variant `tags`",
            ),
            (
                "[sources.github.deploy_signals.\"a/b\"]\nsignal = \"releases\"\nenvironment = \"production\"\nworkflows = {}\n",
                "unknown field `workflows`",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(&format!("[sources.github]\n{body}")).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
        let secret = parse("[sources.github]\ntoken = \"ghp_secret\"\n").unwrap_err();
        assert!(!secret.contains("ghp_secret"), "{secret}");
    }

    #[test]
    fn type_errors_point_at_the_line() {
        let err = parse("[sources.github]\nrepos = [\"a/b\"]\nrevert_prs_as_failures = \"yes\"\n")
            .unwrap_err();
        assert!(
            err.contains("line 3") && err.contains("sources.github.revert_prs_as_failures"),
            "{err}"
        );
    }
}
