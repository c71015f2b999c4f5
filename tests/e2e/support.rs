//! Running the real binary, and exact arithmetic on CSV text that does not borrow our own parsers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `doracost` binary cargo built for these tests.
pub fn doracost() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doracost"));
    cmd.env_remove("DORACOST_LOG");
    cmd
}

/// Runs `doracost ARGS…` in `dir` and returns its output.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    doracost()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs and insists on success, returning stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    succeeded(args, run(dir, args))
}

/// Insists that a finished `doracost ARGS…` succeeded, returning its stdout.
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "doracost {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs and insists on failure, returning stderr.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        !out.status.success(),
        "doracost {args:?} should have failed; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf-8 output")
}

/// The shared third-party data folder beside the repository.
pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// Parses `sql --format csv` output into rows of cells (header included).
pub fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.expect("csv").iter().map(str::to_owned).collect())
        .collect()
}

/// A decimal in units of 10^-12, read digit by digit (independent of doracost's parser).
pub fn units(text: &str) -> i128 {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(
        frac.len() <= 12 || frac[12..].chars().all(|c| c == '0'),
        "too precise: {text}"
    );
    let frac: String = frac
        .chars()
        .chain(std::iter::repeat('0'))
        .take(12)
        .collect();
    let value: i128 = format!("{}{frac}", if int.is_empty() { "0" } else { int })
        .parse()
        .expect("a decimal");
    if negative { -value } else { value }
}

/// The files under a folder, with their sizes: a fingerprint of the lake for "nothing changed".
pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((p.strip_prefix(dir).unwrap_or(&p).to_path_buf(), size));
            }
        }
    }
    out.sort();
    out
}
