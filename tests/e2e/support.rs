//! Running the real binary, and exact arithmetic on CSV text that does not borrow our own parsers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// moto's server, killed when dropped.
pub struct Moto {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one HTTP/1.1 request without a body and returns the status code.
pub fn http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    http_json(port, method, path, "").map(|(status, _)| status)
}

pub fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m moto.server (CI installs moto[server])");
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(port, "GET", "/").is_err() {
        assert!(
            Instant::now() < deadline,
            "moto did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// Sends one HTTP/1.1 request with a JSON body and returns the status code and the response body.
pub fn http_json(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    http_request(port, method, path, &[], body.as_bytes()).map(|r| (r.status, r.body))
}

/// An HTTP response as read off the socket.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The header block, lines as sent (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request with `headers` and a JSON `body` (Connection: close).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer (413, 401) before reading the whole body and close: not an error here.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let response = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .unwrap_or((response.clone(), String::new()));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// The checked-in small sample organisation (`sample-data/small`).
pub fn small_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/small")
}

/// A lake in a new temporary folder holding the small sample's `ingests` (`(source, folder)`, e.g.
/// `("events", "events")`), read with the sample's config plus `extra` (written beside the lake),
/// and the global arguments that point at both.
pub fn sample_lake(extra: &str, ingests: &[(&str, &str)]) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("doracost.toml");
    let text = std::fs::read_to_string(small_sample().join("doracost.toml")).unwrap();
    std::fs::write(&config, format!("{text}\n{extra}")).unwrap();
    let args = vec![
        "--config".to_owned(),
        config.to_str().unwrap().to_owned(),
        "--data-dir".to_owned(),
        dir.path().join("lake").to_str().unwrap().to_owned(),
    ];
    for (source, folder) in ingests {
        let files = small_sample().join(folder);
        ok(
            dir.path(),
            &with_args(&args, &["ingest", source, files.to_str().unwrap()]),
        );
    }
    (dir, args)
}

/// `args` followed by `more`, as the `&str`s `run`/`ok` take.
pub fn with_args<'a>(args: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(more);
    all
}

/// `doracost ARGS… MORE…`, which must succeed; its stdout.
pub fn ok_with(dir: &Path, args: &[String], more: &[&str]) -> String {
    ok(dir, &with_args(args, more))
}

/// The rows (header dropped) of `doracost ARGS… sql --format csv QUERY`, which must succeed.
pub fn sql_rows(dir: &Path, args: &[String], query: &str) -> Vec<Vec<String>> {
    csv_rows(&ok(
        dir,
        &with_args(args, &["sql", "--format", "csv", query]),
    ))[1..]
        .to_vec()
}
