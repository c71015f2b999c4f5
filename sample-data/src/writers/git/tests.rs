//! The generated repositories read back with the git CLI: `fsck --strict`, `log`, `show`,
//! `cat-file`, against the ground truth.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::delivery::{Ids, RepoHistory, generate_repo};
use crate::org::Org;
use crate::{DEFAULT_SEED, Format, Formats, GenerateOptions, GenerateReport, Scale, generate};

use super::repo_dir;

struct Sample {
    dir: tempfile::TempDir,
    report: GenerateReport,
    org: Org,
    histories: Vec<RepoHistory>,
}

fn small_with_git() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = generate(&GenerateOptions {
            scale: Scale::Small,
            seed: DEFAULT_SEED,
            out_dir: dir.path().to_path_buf(),
            formats: Formats::default().with(Format::Git),
        })
        .expect("generate small with git");
        let org = Org::plan(Scale::Small);
        let mut ids = Ids::default();
        let histories = (0..org.repos.len())
            .map(|repo| generate_repo(&org, repo, DEFAULT_SEED, &mut ids))
            .collect();
        Sample {
            dir,
            report,
            org,
            histories,
        }
    })
}

fn git_dir(sample: &Sample, history: &RepoHistory) -> PathBuf {
    repo_dir(
        &sample.dir.path().join("git"),
        &sample.org.repos[history.repo].name,
    )
}

/// Runs git in `repo` with `stdin`, returning stdout; fails the test on a non-zero exit.
fn git_with_input(repo: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run git");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("git output");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        repo.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn git(repo: &Path, args: &[&str]) -> String {
    git_with_input(repo, args, "")
}

#[test]
fn every_repository_is_fsck_clean_with_mains_history_as_the_truth_states() {
    let sample = small_with_git();
    for history in &sample.histories {
        let repo = git_dir(sample, history);
        let out = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["fsck", "--strict", "--full"])
            .output()
            .expect("git fsck");
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "fsck {}: {}{}",
            repo.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = git(&repo, &["log", "--format=%H %at %ct %an", "main"]);
        let expected: Vec<String> = history
            .git
            .order
            .iter()
            .rev()
            .map(|&c| {
                let change = &history.changes[c];
                let author = crate::commits::commit_identity(&sample.org, history, c).author;
                format!(
                    "{} {} {} {}",
                    change.sha, change.authored_at, change.committed_at, author.name
                )
            })
            .collect();
        assert_eq!(
            log.lines().collect::<Vec<_>>(),
            expected,
            "{}",
            repo.display()
        );
        let head = history.git.head().expect("commits");
        assert_eq!(
            git(&repo, &["rev-parse", "HEAD"]).trim(),
            history.changes[head].sha
        );
        // git's own index of our pack is byte for byte the one written.
        let packs = repo.join("objects/pack");
        let pack = std::fs::read_dir(&packs)
            .expect("pack dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|x| x == "pack"))
            .expect("a pack");
        let reindexed = sample.dir.path().join("reindexed.idx");
        git(
            &repo,
            &[
                "index-pack",
                "-o",
                reindexed.to_str().expect("utf-8"),
                pack.to_str().expect("utf-8"),
            ],
        );
        assert!(
            std::fs::read(&reindexed).ok() == std::fs::read(pack.with_extension("idx")).ok(),
            "{} differs from git index-pack's",
            pack.with_extension("idx").display()
        );
        std::fs::remove_file(&reindexed).expect("remove");
        let objects = git(&repo, &["count-objects", "-v"]);
        assert!(
            objects.contains(&format!("in-pack: {}\n", history.git.objects)),
            "{objects}"
        );
    }
}

/// The paths `git show` lists for a commit, against its parent.
fn shown_paths(repo: &Path, sha: &str) -> Vec<String> {
    git(repo, &["show", "--name-only", "--format=", sha])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn commits_touch_their_paths_name_their_pull_requests_and_hotfixes() {
    let sample = small_with_git();
    let (mut cross_service, mut hotfixes, mut shown) = (0, 0, 0);
    for history in &sample.histories {
        let repo = git_dir(sample, history);
        for (index, change) in history.changes.iter().enumerate() {
            let two_services = change.services.len() > 1;
            let hotfix = !change.incident_refs.is_empty();
            // Every 50th commit, and every cross-service and hotfix commit.
            if !(index % 50 == 0 || two_services || hotfix) {
                continue;
            }
            shown += 1;
            assert_eq!(
                shown_paths(&repo, &change.sha),
                change.paths,
                "{}",
                change.sha
            );
            let subject = git(&repo, &["log", "-1", "--format=%s", &change.sha]);
            if let Some(pr) = &change.pr {
                assert!(
                    subject.trim_end().ends_with(&format!(" (#{})", pr.number)),
                    "{subject}"
                );
            }
            if two_services {
                cross_service += 1;
                let services: BTreeSet<&str> = change
                    .paths
                    .iter()
                    .filter_map(|p| p.strip_prefix("services/")?.split('/').next())
                    .collect();
                assert_eq!(services.len(), 2, "{:?}", change.paths);
            }
            if hotfix {
                hotfixes += 1;
                assert!(
                    subject.starts_with(&format!("Fix {}: ", change.incident_refs[0])),
                    "{subject}"
                );
            }
        }
    }
    assert!(
        cross_service >= 10 && hotfixes >= 3 && shown > 100,
        "{cross_service} {hotfixes} {shown}"
    );
}

/// Every 40-hex-digit string value under `value`.
fn shas_in(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(s)
            if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            out.insert(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| shas_in(v, out)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| shas_in(v, out)),
        _ => {}
    }
}

#[test]
fn every_sha_the_event_files_name_is_a_commit_of_its_repository() {
    let sample = small_with_git();
    let events = sample.dir.path().join("events");
    let mut named = BTreeSet::new();
    for file in ["deployments.ndjson", "incidents.ndjson"] {
        let text = std::fs::read_to_string(events.join(file)).expect("read events");
        for line in text.lines() {
            shas_in(&serde_json::from_str(line).expect("json line"), &mut named);
        }
    }
    let devlake = std::fs::read_to_string(events.join("devlake-deployments.json")).expect("read");
    shas_in(&serde_json::from_str(&devlake).expect("json"), &mut named);
    assert!(named.len() > 1_000, "{}", named.len());
    let mut found = 0;
    for history in &sample.histories {
        let repo = git_dir(sample, history);
        let shas: Vec<&str> = history.changes.iter().map(|c| c.sha.as_str()).collect();
        let listed = git_with_input(
            &repo,
            &["cat-file", "--batch-check=%(objectname) %(objecttype)"],
            &format!("{}\n", shas.join("\n")),
        );
        for line in listed.lines() {
            let (sha, kind) = line.split_once(' ').expect("two fields");
            assert_eq!(kind, "commit", "{line}");
            found += usize::from(named.contains(sha));
        }
    }
    assert_eq!(
        found,
        named.len(),
        "every named sha is a commit of some repository"
    );
    let git_files = sample
        .report
        .files
        .iter()
        .filter(|f| f.starts_with(sample.dir.path().join("git")))
        .count();
    assert_eq!(git_files, sample.histories.len() * 5);
}
