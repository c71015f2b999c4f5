//! `doracost sql` with no query, fed through standard input (not a terminal, so no prompt and no
//! line editing: the statements and commands as a script): statements across lines and several
//! on a line, `;` inside strings and comments, `\timing` on and off, `\dt` and `\dv`, an error
//! that does not stop the next statement but fails the run, `\q`.

use std::io::Write;
use std::process::Stdio;

use crate::support::{doracost, sample_lake};

/// Pipes `script` into `doracost --format csv sql`: (success, stdout, stderr).
fn pipe(dir: &std::path::Path, args: &[String], script: &str) -> (bool, String, String) {
    let mut child = doracost()
        .current_dir(dir)
        .args(args)
        .args(["--format", "csv", "sql"])
        // A terminal would read history; piped input never does, and must not write any.
        .env("DORACOST_HISTORY", dir.join("history"))
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
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn piped_statements_run_one_by_one_with_timing_and_catalog_commands() {
    let (dir, args) = sample_lake("", &[("events", "events")]);
    let script = "\\timing on
SELECT 'a;b' AS x, -- a comment; not the end
       2 AS y
;
SELECT count(*) AS services FROM services; SELECT 3 AS z;
\\timing off
/* ; */ SELECT scope
FROM dora_monthly WHERE scope = 'all' LIMIT 1;
\\dv
\\dt
\\q
SELECT 'after quit' AS never;
";
    let (success, stdout, stderr) = pipe(dir.path(), &args, script);
    assert!(success, "{stderr}");
    assert!(
        stdout.starts_with("x,y\na;b,2\nservices\n12\nz\n3\nscope\nall\n"),
        "{stdout}"
    );
    assert!(
        stderr.contains("Timing is on.") && stderr.contains("Timing is off."),
        "{stderr}"
    );
    // Three statements ran with timing on, one after it was turned off.
    assert_eq!(stderr.matches("Time: ").count(), 3, "{stderr}");
    let after_dv = stdout.split("view\n").nth(1).unwrap();
    let views: Vec<&str> = after_dv.split("table\n").next().unwrap().lines().collect();
    assert!(
        views.contains(&"dora_monthly") && views.contains(&"cost_daily"),
        "{views:?}"
    );
    assert!(!views.contains(&"deployments"), "{views:?}");
    let tables = stdout.split("table\n").nth(1).unwrap();
    for table in ["deployments", "costs", "services", "derived_tables"] {
        assert!(
            tables.lines().any(|l| l == table),
            "{table} in \\dt: {tables}"
        );
    }
    assert!(!tables.lines().any(|l| l == "dora_monthly"), "{tables}");
    assert!(!stdout.contains("after quit"), "{stdout}");
    assert!(
        !dir.path().join("history").exists(),
        "piped input wrote a history"
    );
}

#[test]
fn a_failing_piped_statement_is_reported_the_rest_run_and_the_exit_says_so() {
    let (dir, args) = sample_lake("", &[("events", "events")]);
    let (success, stdout, stderr) = pipe(
        dir.path(),
        &args,
        "SELECT nope FROM deployments;\nDROP TABLE deployments;\nSELECT 1 AS one;\nSELECT 2 AS two",
    );
    assert!(!success, "{stdout}");
    assert!(
        stdout.contains("one\n1\n") && stdout.contains("two\n2\n"),
        "{stdout}"
    );
    assert!(stderr.contains("nope"), "{stderr}");
    assert!(stderr.contains("2 statement(s) failed"), "{stderr}");
}
