//! The incremental refresh (`query::incremental`) equals a full refresh row for row: the small
//! sample organisation, refreshed in full, then random batches of events (new, redeployed and
//! rolled-back deployments, named or attributed by repo and monorepo paths, DevLake deployments
//! across two repos, updates of earlier ones, incidents linked by deployment, by sha or by time,
//! standalone change links), each
//! followed by an incremental refresh; after every batch each DORA derived table must hold exactly
//! what the views compute live from the canonical tables.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use model::{Config, Lake};
use query::{Engine, EventChange};

const TABLES: [&str; 5] = [
    "dora_changes",
    "dora_recoveries",
    "dora_deployments",
    "dora_incidents",
    "dora_period_grid",
];

/// A small deterministic generator (xorshift64*), so a failure is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// An RFC 3339 time in the sample's range (2025-05 … 2026-10).
fn time(rng: &mut Rng) -> (String, i64) {
    let start = 1_746_057_600_i64; // 2025-05-01T00:00:00Z
    let t = start + (rng.next() % (540 * 86_400)) as i64;
    (rfc3339(t), t)
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

const SERVICES: [&str; 5] = ["checkout", "cart", "search", "billing", "brand-new"];
const PLATFORM_PATHS: [&str; 4] = [
    "services/billing/api.rs",
    "services/ledger/book.rs",
    "services/notify/mail.rs",
    "docs/readme.md",
];

fn repo_of(service: &str) -> &'static str {
    match service {
        "checkout" => "acme/checkout",
        "cart" => "acme/cart",
        "search" => "acme/search",
        "billing" => "acme/platform",
        _ => "acme/elsewhere",
    }
}

/// One batch of event records (NDJSON bodies, one per record, as webhooks post them).
fn batch(rng: &mut Rng, round: usize, deployed: &mut Vec<(String, String)>) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for i in 0..8 {
        let kind = rng.below(10);
        let body = if kind < 5 || deployed.is_empty() {
            // A deployment: new, or an update of an earlier one of this test.
            let (id, service) = if !deployed.is_empty() && rng.chance(25) {
                deployed[rng.below(deployed.len())].clone()
            } else {
                let service = if rng.chance(30) {
                    String::new() // unnamed: attributed by repo and paths
                } else {
                    rng.pick(&SERVICES).to_owned()
                };
                (format!("r{round}-d{i}"), service)
            };
            let repo = if service.is_empty() {
                "acme/platform"
            } else {
                repo_of(&service)
            };
            let sha = format!("{repo}-sha{}", rng.below(5)).replace('/', "-");
            let (finished, t) = time(rng);
            let status = if rng.chance(80) { "success" } else { "failure" };
            let environment = if rng.chance(85) {
                "production"
            } else {
                "staging"
            };
            let mut record = serde_json::json!({
                "type": "deployment", "id": id, "repo": repo, "environment": environment,
                "commit_sha": sha, "started_at": rfc3339(t - 600), "finished_at": finished,
                "status": status, "is_rollback": rng.chance(10),
            });
            if !service.is_empty() {
                record["service"] = service.clone().into();
            }
            if rng.chance(70) {
                let changes: Vec<serde_json::Value> = (0..rng.below(3))
                    .map(|_| {
                        let paths = if repo == "acme/platform" {
                            vec![rng.pick(&PLATFORM_PATHS)]
                        } else {
                            vec!["src/lib.rs"]
                        };
                        let mut change = serde_json::json!({
                            "repo": repo,
                            "sha": format!("{repo}-sha{}", rng.below(5)).replace('/', "-"),
                            "committed_at": rfc3339(t - 3600 * (1 + rng.below(200) as i64)),
                            "paths": paths,
                        });
                        if rng.chance(20) {
                            change["labels"] = serde_json::json!(["hotfix"]);
                        }
                        if rng.chance(30) {
                            change["pr_number"] = (rng.below(50) + 1).into();
                            change["pr_first_commit_at"] =
                                rfc3339(t - 3600 * (300 + rng.below(100) as i64)).into();
                            change["pr_merged_at"] = rfc3339(t - 1800).into();
                            change["pr_head_branch"] = if rng.chance(30) {
                                "hotfix/x"
                            } else {
                                "feature/y"
                            }
                            .into();
                        }
                        change
                    })
                    .collect();
                record["changes"] = changes.into();
            }
            if rng.chance(30) {
                // A DevLake deployment across two repos (one deployment: its rows share a
                // `deployment_group`), of the service, or mostly of whichever services own the
                // repos; the second repo's row finishing later, or failed.
                let other = repo_of(rng.pick(&SERVICES));
                let mut commits = vec![serde_json::json!({
                    "repoUrl": format!("https://github.com/{repo}"), "commitSha": sha,
                })];
                if other != repo {
                    commits.push(serde_json::json!({
                        "repoUrl": format!("https://github.com/{other}"),
                        "commitSha": format!("{other}-sha{}", rng.below(5)).replace('/', "-"),
                        "finishedDate": rfc3339(t + 60 * rng.below(180) as i64),
                        "result": if rng.chance(85) { "SUCCESS" } else { "FAILURE" },
                    }));
                }
                record = serde_json::json!({
                    "source": "events", "id": id, "environment": environment.to_uppercase(),
                    "startedDate": rfc3339(t - 600), "finishedDate": finished,
                    "result": if status == "success" { "SUCCESS" } else { "FAILURE" },
                    "deploymentCommits": commits,
                });
                if !service.is_empty() && rng.chance(40) {
                    record["service"] = service.clone().into();
                }
            }
            deployed.push((id, service));
            record
        } else if kind < 8 {
            // An incident: linked by deployment (maybe another service's), by sha, or by time.
            let service = rng.pick(&SERVICES);
            let (started, t) = time(rng);
            let id = if rng.chance(20) {
                format!("r0-i{}", rng.below(4)) // an update of an earlier one, when there is one
            } else {
                format!("r{round}-i{i}")
            };
            let mut record = serde_json::json!({
                "type": "incident", "id": id, "service": service, "started_at": started,
                "title": "generated",
            });
            if rng.chance(75) {
                record["resolved_at"] = rfc3339(t + 60 * (1 + rng.below(3000) as i64)).into();
            }
            match rng.below(3) {
                0 => {
                    record["caused_by_deployment_id"] =
                        deployed[rng.below(deployed.len())].0.clone().into()
                }
                1 => {
                    record["caused_by_sha"] = format!("{}-sha{}", repo_of(service), rng.below(5))
                        .replace('/', "-")
                        .into()
                }
                _ => {}
            }
            record
        } else {
            // A standalone change linked to an earlier deployment.
            let (deployment, service) = deployed[rng.below(deployed.len())].clone();
            let repo = if service.is_empty() {
                "acme/platform"
            } else {
                repo_of(&service)
            };
            let (committed, _) = time(rng);
            serde_json::json!({
                "type": "change", "repo": repo,
                "sha": format!("{repo}-extra{round}-{i}").replace('/', "-"),
                "committed_at": committed, "deployment_id": deployment,
                "paths": [if repo == "acme/platform" { rng.pick(&PLATFORM_PATHS) } else { "src/x.rs" }],
            })
        };
        bodies.push(serde_json::to_vec(&body).unwrap());
    }
    bodies
}

/// Every row of `table` as text, sorted.
async fn rows(engine: &Engine, table: &str) -> Vec<String> {
    let batches = engine
        .query(&format!("SELECT * FROM {table}"))
        .await
        .unwrap();
    let mut out = Vec::new();
    for batch in &batches {
        out.extend(text_rows(batch));
    }
    out.sort();
    out
}

fn text_rows(batch: &RecordBatch) -> Vec<String> {
    let options = FormatOptions::default().with_null("∅");
    let formatters: Vec<ArrayFormatter> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
        .collect();
    (0..batch.num_rows())
        .map(|i| {
            formatters
                .iter()
                .map(|f| f.value(i).to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

async fn check_equal(lake: &Lake, config: &Config, round: usize) {
    let derived = Engine::open_with(lake, config, true).await.unwrap();
    for view in derived.derived() {
        assert_eq!(
            view.status.as_str(),
            "fresh",
            "round {round}: {} is not fresh after the refresh",
            view.name
        );
    }
    let live = Engine::open_with(lake, config, false).await.unwrap();
    for table in TABLES {
        let got = rows(&derived, table).await;
        let want = rows(&live, table).await;
        if got != want {
            let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
            let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
            panic!(
                "round {round}: {table}: incremental {} rows, full {} rows\nmissing: {missing:#?}\nextra: {extra:#?}",
                got.len(),
                want.len()
            );
        }
    }
}

/// The small sample's events in a lake under `dir`, its derived tables refreshed in full, in
/// files small enough that each table spans many (so replaces rewrite some files, keep others).
async fn sample_lake(dir: &Path) -> (Config, Lake) {
    sample_data::generate(&sample_data::GenerateOptions {
        scale: sample_data::Scale::Small,
        seed: 7,
        out_dir: dir.join("sample"),
        formats: sample_data::Formats::default(),
    })
    .unwrap();
    let config = Config::load(&dir.join("sample/doracost.toml")).unwrap();
    let lake = Lake::new(dir.join("lake").to_str().unwrap(), Default::default())
        .unwrap()
        .with_derived_file_bytes(32 << 10);
    ingest::pipeline::ingest_events(
        &lake,
        &[dir.join("sample/events")],
        Box::new(ingest::progress::NoProgress),
    )
    .await
    .unwrap();
    Engine::open(&lake, &config)
        .await
        .unwrap()
        .refresh_derived()
        .await
        .unwrap();
    let changes = lake.open_derived("dora_changes").await.unwrap().unwrap();
    let files = changes.table.get_file_uris().unwrap().count();
    assert!(files >= 4, "dora_changes in {files} files");
    (config, lake)
}

async fn scenario(dir: &Path, seed: u64) {
    let (config, lake) = sample_lake(dir).await;
    let mut rng = Rng(seed);
    let mut deployed = Vec::new();
    let mut kept = 0;
    let mut grid_before = grid_files_and_rows(&lake, &config).await;
    for round in 0..8 {
        let bodies = batch(&mut rng, round, &mut deployed);
        let slices: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let summary = ingest::pipeline::ingest_event_bodies(&lake, &slices, "test")
            .await
            .unwrap();
        let change = EventChange::of(summary.touched, &summary.outcomes);
        let engine = Engine::open_with(&lake, &config, true).await.unwrap();
        let done = engine
            .refresh_incremental(&change)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: the incremental refresh declined"));
        assert!(
            done.iter().all(|r| r.incremental),
            "round {round}: {done:?}"
        );
        assert_eq!(done.len(), TABLES.len(), "round {round}: {done:?}");
        check_equal(&lake, &config, round).await;
        // A batch that moves neither the grid's bounds nor its names leaves its rows as they
        // were: then the refresh restamps the table and keeps its files.
        let grid_after = grid_files_and_rows(&lake, &config).await;
        if grid_after.1 == grid_before.1 {
            assert_eq!(grid_after.0, grid_before.0, "round {round}: grid rewritten");
            kept += 1;
        } else {
            assert_ne!(grid_after.0, grid_before.0, "round {round}: grid kept");
        }
        grid_before = grid_after;
    }
    assert!(kept > 0, "no batch left the grid as it was");
}

/// `dora_period_grid`'s files and its rows as text.
async fn grid_files_and_rows(lake: &Lake, config: &Config) -> (Vec<String>, Vec<String>) {
    let grid = lake
        .open_derived("dora_period_grid")
        .await
        .unwrap()
        .unwrap();
    let mut files: Vec<String> = grid.table.get_file_uris().unwrap().collect();
    files.sort();
    let engine = Engine::open_with(lake, config, true).await.unwrap();
    (files, rows(&engine, "dora_period_grid").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_refresh_equals_full_refresh_after_random_batches() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), 0x9e37_79b9_7f4a_7c15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_refresh_declines_after_another_commit() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (config, lake) = sample_lake(dir).await;
    let mut rng = Rng(5);
    let mut deployed = Vec::new();
    let first = batch(&mut rng, 0, &mut deployed);
    let slices: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
    let summary = ingest::pipeline::ingest_event_bodies(&lake, &slices, "test")
        .await
        .unwrap();
    let change = EventChange::of(summary.touched, &summary.outcomes);
    // A second ingest lands before the refresh: the engine is not at `change`'s state.
    let second = batch(&mut rng, 1, &mut deployed);
    let slices: Vec<&[u8]> = second.iter().map(Vec::as_slice).collect();
    ingest::pipeline::ingest_event_bodies(&lake, &slices, "test")
        .await
        .unwrap();
    let engine = Engine::open_with(&lake, &config, true).await.unwrap();
    assert!(engine.refresh_incremental(&change).await.unwrap().is_none());
    // The full refresh is then the way, and agrees with the views.
    engine.refresh_derived().await.unwrap();
    check_equal(&lake, &config, 1).await;
}

/// Issue 12, bounded memory: a full refresh in parts of a few services each (as the large
/// organisation's is, by `REFRESH_PART_DEPLOYMENTS`) holds exactly what the views compute live,
/// after rounds of random events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_in_parts_equals_the_views() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, lake) = sample_lake(tmp.path()).await;
    let mut rng = Rng(0x5eed_0f_9a27);
    let mut deployed = Vec::new();
    for round in 0..3 {
        let bodies = batch(&mut rng, round, &mut deployed);
        let slices: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        ingest::pipeline::ingest_event_bodies(&lake, &slices, "test")
            .await
            .unwrap();
        let before = derived_version(&lake, "dora_deployments").await;
        let done = Engine::open(&lake, &config)
            .await
            .unwrap()
            .refresh_derived_in_parts(300)
            .await
            .unwrap();
        assert!(done.iter().all(|d| !d.incremental));
        let after = derived_version(&lake, "dora_deployments").await;
        assert!(
            after >= before + 4,
            "round {round}: dora_deployments written in {} commits",
            after - before
        );
        check_equal(&lake, &config, round).await;
    }
}

/// The Delta version of derived table `name`.
async fn derived_version(lake: &Lake, name: &str) -> u64 {
    let found = lake.open_derived(name).await.unwrap().unwrap();
    found.table.version().unwrap()
}

/// Ingests `body` (one JSON record) and refreshes incrementally, which must not decline.
async fn ingest_and_refresh(lake: &Lake, config: &Config, body: &str) {
    let summary = ingest::pipeline::ingest_event_bodies(lake, &[body.as_bytes()], "test")
        .await
        .unwrap();
    let change = EventChange::of(summary.touched, &summary.outcomes);
    let engine = Engine::open_with(lake, config, true).await.unwrap();
    let done = engine.refresh_incremental(&change).await.unwrap();
    assert!(done.is_some(), "the incremental refresh declined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_refresh_reads_every_row_of_a_deployment_across_repos() {
    let dir = tempfile::tempdir().unwrap();
    let (config, lake) = sample_lake(dir.path()).await;
    // One DevLake deployment of checkout and cart, cart's row finishing last (12:00): it is one
    // deployment of each, both finished at 12:00.
    let across = r#"{"id":"across-1","environment":"PRODUCTION","finishedDate":"2026-12-01T10:00:00Z",
        "deploymentCommits":[
          {"repoUrl":"https://github.com/acme/checkout","commitSha":"x1"},
          {"repoUrl":"https://github.com/acme/cart","commitSha":"x2","finishedDate":"2026-12-01T12:00:00Z"}]}"#;
    ingest_and_refresh(&lake, &config, across).await;
    check_equal(&lake, &config, 0).await;
    // An incident of checkout alone recomputes checkout's rows: from cart's row of the
    // deployment too, or checkout's would finish at 10:00.
    let incident = r#"{"type":"incident","id":"across-inc","service":"checkout","title":"t",
        "started_at":"2026-12-01T13:00:00Z","resolved_at":"2026-12-01T14:00:00Z"}"#;
    ingest_and_refresh(&lake, &config, incident).await;
    check_equal(&lake, &config, 1).await;
    let engine = Engine::open_with(&lake, &config, true).await.unwrap();
    assert_eq!(
        rows(
            &engine,
            "(SELECT deployment_id, service, finished_at, failure_reason FROM dora_deployments \
             WHERE deployment_id = 'devlake:deployment:across-1')"
        )
        .await,
        [
            "devlake:deployment:across-1 | cart | 2026-12-01T12:00:00Z | ∅",
            "devlake:deployment:across-1 | checkout | 2026-12-01T12:00:00Z | attribution_window",
        ]
    );
}
