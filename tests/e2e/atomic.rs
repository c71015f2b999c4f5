//! An ingest is one unit across tables, kill -9 included (DESIGN §3, issue 12): the binary is
//! killed at every commit step of an ingest (deterministically, with the hidden `--pause-after`)
//! and at moments spread over its run (mid-file, between commits, during the refresh), and after
//! each kill a reader sees exactly the lake before the ingest, or exactly the lake after a clean
//! run, never a mix; a rerun then reaches the clean run's state. And two ingests at once into one
//! lake, local or on S3: both land, or one says the lake changed and to rerun.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{doracost, ok};

/// Every canonical table's rows (without `ingested_at`, which differs between runs) and one
/// metric view, as one reader process sees them: their rows as JSON, sorted.
fn snapshot(dir: &Path, lake: &str) -> Vec<String> {
    let script = [
        "deployments",
        "changes",
        "deployment_changes",
        "incidents",
        "costs",
    ]
    .iter()
    .map(|t| format!("SELECT '{t}' AS t, * EXCLUDE (ingested_at) FROM {t};\n"))
    .chain(["SELECT 'view' AS t, * FROM dora_deployments;\n".to_owned()])
    .collect::<String>();
    let mut child = doracost()
        .current_dir(dir)
        .args(["--config", "sample/doracost.toml", "--data-dir", lake])
        .args(["--format", "json", "sql"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("error"),
        "the reader failed: {stderr}"
    );
    // One JSON array per statement; each row's object printed with its keys sorted.
    let mut rows: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .flat_map(|line| {
            let rows: Vec<serde_json::Value> = serde_json::from_str(line).expect("a JSON array");
            rows.into_iter().map(|r| r.to_string())
        })
        .collect();
    rows.sort();
    rows
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `doracost` with the sample's config on lake folder `lake` under `dir`; its stdout.
fn in_lake(dir: &Path, lake: &str, args: &[&str]) -> String {
    let mut all = vec!["--config", "sample/doracost.toml", "--data-dir", lake];
    all.extend_from_slice(args);
    ok(dir, &all)
}

/// The sample's DevLake payloads: the lake before the ingests under test.
const DEVLAKE: [&str; 4] = [
    "ingest",
    "events",
    "sample/events/devlake-deployments.json",
    "sample/events/devlake-incidents.json",
];

const INGEST: [&str; 4] = [
    "ingest",
    "events",
    "sample/events/deployments.ndjson",
    "sample/events/incidents.ndjson",
];

fn spawn_ingest(dir: &Path, lake: &str, pause_after: Option<&str>) -> Child {
    let mut cmd = doracost();
    cmd.current_dir(dir)
        .args(["--config", "sample/doracost.toml", "--data-dir", lake]);
    if let Some(step) = pause_after {
        cmd.args(["--pause-after", step]);
    }
    cmd.args(INGEST)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs")
}

/// Waits until the child says it paused after `step` (the hook prints it on stderr).
fn wait_for_pause(child: &mut Child, step: &str) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let want = format!("doracost: paused after {step}");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains(&want) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(180))
        .unwrap_or_else(|_| panic!("the ingest never paused after {step}"));
}

#[test]
fn a_killed_ingest_leaves_nothing_a_reader_can_see_and_a_rerun_completes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &["sample", "generate", "--scale", "small", "--out", "sample"],
    );
    let with = |lake: &str, args: &[&str]| in_lake(dir, lake, args);
    // The lake before: some events and two months of bills.
    with("base", &DEVLAKE);
    with(
        "base",
        &[
            "ingest",
            "focus",
            "sample/costs/focus-2025-05.csv",
            "sample/costs/focus-2025-06.csv",
        ],
    );
    let before = snapshot(dir, "base");
    // The lake after a clean run, and how long that run takes.
    copy_dir(&dir.join("base"), &dir.join("clean"));
    let started = Instant::now();
    with("clean", &INGEST);
    let clean_run = started.elapsed();
    let after = snapshot(dir, "clean");
    assert_ne!(before, after, "the ingest changes the lake");
    assert!(after.len() > before.len() + 3000, "{} lines", after.len());

    copy_dir(&dir.join("base"), &dir.join("lake"));
    let mut kills = 0;
    // At each commit step, twice: the second round starts on the first one's leftovers.
    for step in [
        "deployments",
        "changes",
        "deployment_changes",
        "incidents",
        "_commits",
    ]
    .iter()
    .cycle()
    .take(10)
    {
        let mut child = spawn_ingest(dir, "lake", Some(step));
        wait_for_pause(&mut child, step);
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let seen = snapshot(dir, "lake");
        if *step == "_commits" {
            // Its log entry was written: the whole ingest is in.
            assert!(
                seen == after,
                "killed after the log entry: not the clean run's state"
            );
            copy_dir(&dir.join("base"), &dir.join("lake"));
        } else {
            assert!(
                seen == before,
                "killed after the {step} commit: a reader sees part of the ingest"
            );
        }
    }
    // At moments spread over a clean run's length: reading files, between and during commits,
    // in the refresh.
    let (mut saw_before, mut saw_after) = (0, 0);
    for i in 0..12 {
        let mut child = spawn_ingest(dir, "lake", None);
        std::thread::sleep(clean_run.mul_f64((f64::from(i) + 0.5) / 12.0));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let seen = snapshot(dir, "lake");
        if seen == before {
            saw_before += 1;
        } else {
            assert!(
                seen == after,
                "killed {i}/12 into the run (finished: {finished}): a reader sees a mix"
            );
            saw_after += 1;
            copy_dir(&dir.join("base"), &dir.join("lake"));
        }
    }
    assert!(kills >= 20);
    assert!(saw_before > 0, "some kills came before the log entry");
    // A rerun over what the last kills left reaches the clean state.
    with("lake", &INGEST);
    assert!(
        snapshot(dir, "lake") == after,
        "the rerun did not reach the clean run's state"
    );
    eprintln!("{kills} kills; {saw_before} before the log entry, {saw_after} after it");
}

/// The deployment ids of an events file, as the lake keys them.
fn deployment_ids(lines: &[&str]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("events:deployment:{}", v["id"].as_str().unwrap())
        })
        .collect()
}

/// Ten rounds of two ingests of different files started together into one lake (`lake`, run
/// with `command`): each lands whole, or fails saying the lake changed and to rerun it.
pub fn concurrent_rounds(dir: &Path, lake: &str, command: &dyn Fn() -> std::process::Command) {
    let sample = dir.join("sample");
    let text = std::fs::read_to_string(sample.join("events/deployments.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut landed = 0;
    for round in 0..10 {
        let mut children = Vec::new();
        let mut ids = Vec::new();
        for part in 0..2 {
            let chunk = &lines[(round * 2 + part) * 60..(round * 2 + part + 1) * 60];
            let file = dir.join(format!("part-{round}-{part}.ndjson"));
            std::fs::write(&file, chunk.join("\n") + "\n").unwrap();
            ids.push(deployment_ids(chunk));
            let child = command()
                .current_dir(dir)
                .args(["--config", "sample/doracost.toml", "--data-dir", lake])
                .args(["ingest", "--no-refresh", "events"])
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the binary runs");
            children.push(child);
        }
        for (child, ids) in children.into_iter().zip(ids) {
            let out = child.wait_with_output().unwrap();
            if out.status.success() {
                expected.extend(ids);
                landed += 1;
            } else {
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    stderr.contains("the lake changed under this ingest")
                        && stderr.contains("rerun"),
                    "round {round}: a failure that does not say to rerun: {stderr}"
                );
            }
        }
        let out = command()
            .current_dir(dir)
            .args(["--config", "sample/doracost.toml", "--data-dir", lake])
            .args(["--format", "csv", "sql"])
            .arg("SELECT deployment_id FROM deployments WHERE source = 'events'")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let present: BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect();
        assert_eq!(
            present, expected,
            "round {round}: exactly the deployments of the ingests that landed"
        );
    }
    assert!(
        landed >= 10,
        "most ingests land (they wait for each other): {landed} of 20"
    );
}

#[test]
fn two_ingests_at_once_into_a_local_lake_both_land_or_say_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &["sample", "generate", "--scale", "small", "--out", "sample"],
    );
    concurrent_rounds(dir, "lake", &doracost);
}

/// The Delta commits of a table (its log's JSON entries).
fn commits_of(dir: &Path, table: &str) -> usize {
    std::fs::read_dir(dir.join(table).join("_delta_log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
}

/// Issue 12, bounded memory: an ingest read in many small chunks, each merged into the ones
/// before (a change listed again in a later chunk, a bill slice spread over several), reaches
/// exactly the state of the same ingest in one chunk; ingesting it again in chunks changes
/// nothing; and a kill after the first chunk's commits, mid-file, leaves nothing a reader sees.
#[test]
fn an_ingest_in_many_chunks_is_one_unit_with_the_state_of_one_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &["sample", "generate", "--scale", "small", "--out", "sample"],
    );
    let with = |lake: &str, args: &[&str]| in_lake(dir, lake, args);
    // Rows already in the lake, so that the first chunk merges too.
    with("base", &DEVLAKE);
    with(
        "base",
        &["ingest", "focus", "sample/costs/focus-2025-05.csv"],
    );
    let before = snapshot(dir, "base");
    copy_dir(&dir.join("base"), &dir.join("one"));
    copy_dir(&dir.join("base"), &dir.join("many"));
    copy_dir(&dir.join("base"), &dir.join("killed"));
    let base_commits = commits_of(&dir.join("base"), "deployments");

    with(
        "one",
        &["ingest", "--no-refresh", "events", "sample/events"],
    );
    with("one", &["ingest", "--no-refresh", "focus", "sample/costs"]);
    let events = [
        "ingest",
        "--no-refresh",
        "--chunk-rows",
        "2000",
        "events",
        "sample/events",
    ];
    let bills = [
        "ingest",
        "--no-refresh",
        "--chunk-rows",
        "1000",
        "focus",
        "sample/costs",
    ];
    with("many", &events);
    with("many", &bills);
    let chunked = commits_of(&dir.join("many"), "deployments") - base_commits;
    assert!(chunked >= 5, "the events took {chunked} chunks");
    let bill_commits = commits_of(&dir.join("many"), "costs");
    assert!(bill_commits >= 10, "the bills took {bill_commits} commits");
    let one = snapshot(dir, "one");
    assert_ne!(one, before);
    assert!(
        snapshot(dir, "many") == one,
        "many chunks did not reach the state of one chunk"
    );
    // Again, in chunks: nothing changes.
    with("many", &events);
    with("many", &bills);
    assert!(
        snapshot(dir, "many") == one,
        "a chunked re-ingest changed the lake"
    );

    // Killed once the first chunk's changes are committed: the file is far from read.
    let mut child = doracost()
        .current_dir(dir)
        .args(["--config", "sample/doracost.toml", "--data-dir", "killed"])
        .args(["--pause-after", "changes"])
        .args(events)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    wait_for_pause(&mut child, "changes");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        snapshot(dir, "killed") == before,
        "a reader sees the first chunk of a killed ingest"
    );
    with("killed", &events);
    with("killed", &bills);
    assert!(
        snapshot(dir, "killed") == one,
        "the rerun did not complete it"
    );
}

/// The log entries `lake history --format json` lists (newest first): (version, operation).
fn history(dir: &Path, config: &str) -> Vec<(u64, String)> {
    let out = ok(
        dir,
        &["--config", config, "--data-dir", "lake", "--format", "json"]
            .into_iter()
            .chain(["lake", "history", "--limit", "100"])
            .collect::<Vec<_>>(),
    );
    let entries: Vec<serde_json::Value> = serde_json::from_str(&out).expect("a JSON array");
    entries
        .iter()
        .map(|e| {
            (
                e["version"].as_u64().unwrap(),
                e["operation"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Issue 12, item 5: `lake history` lists every ingest; `lake restore --to-version N` brings the
/// lake back to entry N as a reader sees it (and can be undone the same way); `lake vacuum` deletes
/// only files older than the retention and never one the latest state reads; a restore to an
/// entry whose files were vacuumed fails and changes nothing a reader sees.
#[test]
fn the_lake_goes_back_to_an_earlier_entry_and_vacuum_keeps_what_readers_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &["sample", "generate", "--scale", "small", "--out", "sample"],
    );
    let config = "sample/doracost.toml";
    let with = |args: &[&str]| in_lake(dir, "lake", args);
    with(&[
        "ingest",
        "--no-refresh",
        "events",
        "sample/events/devlake-deployments.json",
        "sample/events/devlake-incidents.json",
    ]);
    let first = snapshot(dir, "lake");
    with(&INGEST);
    with(&["ingest", "focus", "sample/costs/focus-2025-05.csv"]);
    let last = snapshot(dir, "lake");
    assert_ne!(first, last);

    let entries = history(dir, config);
    let operations: Vec<&str> = entries.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(
        operations,
        ["ingest focus", "ingest events", "ingest events", "adopt"],
        "newest first"
    );
    let (first_entry, latest_entry) = (entries[2].0, entries[0].0);

    with(&["lake", "restore", "--to-version", &first_entry.to_string()]);
    let restored = snapshot(dir, "lake");
    let extra: Vec<_> = restored
        .iter()
        .filter(|r| !first.contains(r))
        .take(3)
        .collect();
    let missing: Vec<_> = first
        .iter()
        .filter(|r| !restored.contains(r))
        .take(3)
        .collect();
    assert!(
        restored == first,
        "not the first ingest's state: {} rows for {}; extra {extra:?}, missing {missing:?}",
        restored.len(),
        first.len()
    );
    assert_eq!(
        history(dir, config)[0].1,
        format!("restore to {first_entry}")
    );
    with(&["lake", "restore", "--to-version", &latest_entry.to_string()]);
    assert!(snapshot(dir, "lake") == last, "the restore was not undone");

    // The bill again: its slice's old file is replaced, so something is left for vacuum.
    with(&["ingest", "focus", "sample/costs/focus-2025-05.csv"]);
    assert!(
        snapshot(dir, "lake") == last,
        "the same bill again changed the lake"
    );
    // The default retention (168 h) keeps everything this young lake ever wrote.
    let kept = with(&["lake", "vacuum"]);
    assert!(
        kept.lines()
            .filter(|l| l.contains("file(s) deleted"))
            .all(|l| l.contains(" 0 file(s)")),
        "{kept}"
    );
    // With no retention, the bill's replaced file goes; the latest state reads on.
    let text = std::fs::read_to_string(dir.join(config)).unwrap();
    std::fs::write(
        dir.join("sample/zero.toml"),
        text.replacen("[lake]\n", "[lake]\nretention_hours = 0\n", 1),
    )
    .unwrap();
    let zero = |args: &[&str]| {
        let mut all = vec!["--config", "sample/zero.toml", "--data-dir", "lake"];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = zero(&["lake", "vacuum"]);
    let vacuumed = ok(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let deleted: u64 = vacuumed
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    assert!(deleted > 0, "{vacuumed}");
    assert!(
        snapshot(dir, "lake") == last,
        "vacuum took files a reader reads"
    );
    // The entry before the bill came again read that file: it cannot be restored any more.
    let args = zero(&["lake", "restore", "--to-version", &latest_entry.to_string()]);
    let error = crate::support::fails(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        error.contains("can no longer be restored") && error.contains("vacuum"),
        "{error}"
    );
    assert!(
        snapshot(dir, "lake") == last,
        "a failed restore changed what readers see"
    );
    eprintln!("vacuum: {deleted} file(s); restore after it: {error}");
}
