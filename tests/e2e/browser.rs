//! Pages as a real browser renders them: headless Chromium (Debian's `chromium`), driven over the
//! DevTools protocol by `browser/cdp.py`. [`visit`] loads pages and answers, per page, the main
//! document's HTTP status, its console errors, uncaught exceptions and failed loads, the size of
//! its charts and images, the values of JavaScript expressions, and a full-page screenshot (and a
//! printed PDF) under [`screenshots_dir`]. The tests here prove the harness on what exists today:
//! the server's JSON routes and a static fixture with deliberate faults.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::server::Server;
use crate::support::sample_lake;

/// The whole browser run's time limit, in seconds (the script kills Chromium past it and fails).
const TIMEOUT_SECONDS: u64 = 60;

/// One page to load and what to gather from it.
#[derive(Debug, Clone)]
pub struct PageVisit {
    url: String,
    selector: Option<String>,
    eval: Vec<(String, String)>,
    wait_for: Option<String>,
    wait_ms: u64,
    screenshot: Option<PathBuf>,
    pdf: Option<PathBuf>,
}

impl PageVisit {
    /// Loads `url` (`http://…` or `file://…`), measuring `svg, img, [data-chart]`.
    pub fn new(url: impl Into<String>) -> PageVisit {
        PageVisit {
            url: url.into(),
            selector: None,
            eval: Vec::new(),
            wait_for: None,
            wait_ms: 0,
            screenshot: None,
            pdf: None,
        }
    }

    /// Measures the elements matching this CSS selector instead.
    pub fn selector(mut self, selector: &str) -> PageVisit {
        self.selector = Some(selector.to_owned());
        self
    }

    /// Reports the value of a JavaScript `expression` (returned by value; a promise is awaited)
    /// as `eval[name]`, e.g. `[...document.querySelectorAll('.tile .value')].map(e => e.textContent)`.
    pub fn eval(mut self, name: &str, expression: &str) -> PageVisit {
        self.eval.push((name.to_owned(), expression.to_owned()));
        self
    }

    /// After the load event, waits until this expression is truthy (the run fails if never).
    pub fn wait_for(mut self, expression: &str) -> PageVisit {
        self.wait_for = Some(expression.to_owned());
        self
    }

    /// Then waits this long more, for scripts that run late.
    pub fn wait_ms(mut self, ms: u64) -> PageVisit {
        self.wait_ms = ms;
        self
    }

    /// Saves a full-page screenshot, 1280 px wide, as `screenshots_dir()/NAME.png`.
    pub fn screenshot(mut self, name: &str) -> PageVisit {
        self.screenshot = Some(screenshots_dir().join(format!("{name}.png")));
        self
    }

    /// Saves the page printed (A4, with backgrounds) as `screenshots_dir()/NAME.pdf`.
    pub fn pdf(mut self, name: &str) -> PageVisit {
        self.pdf = Some(screenshots_dir().join(format!("{name}.pdf")));
        self
    }

    fn spec(&self) -> Value {
        let mut page = json!({ "url": self.url, "wait_ms": self.wait_ms });
        let eval: serde_json::Map<String, Value> = self
            .eval
            .iter()
            .map(|(name, expression)| (name.clone(), Value::from(expression.as_str())))
            .collect();
        page["eval"] = Value::Object(eval);
        if let Some(selector) = &self.selector {
            page["selector"] = selector.as_str().into();
        }
        if let Some(expression) = &self.wait_for {
            page["wait_for"] = expression.as_str().into();
        }
        if let Some(path) = &self.screenshot {
            page["screenshot"] = path.to_string_lossy().into();
        }
        if let Some(path) = &self.pdf {
            page["pdf"] = path.to_string_lossy().into();
        }
        page
    }
}

/// What the browser saw of one page.
#[derive(Debug, Clone)]
pub struct PageReport {
    pub url: String,
    /// The main document's HTTP status (`file://` pages answer 200); none if nothing answered.
    pub status: Option<u16>,
    /// The navigation's network error (`net::ERR_CONNECTION_REFUSED`), if it failed.
    pub error: Option<String>,
    /// `console.error`/`console.assert`, uncaught exceptions and the browser's error log (a
    /// subresource that failed to load, a document or image answered 404), in arrival order.
    pub console_errors: Vec<ConsoleError>,
    /// The elements matching the visit's selector, in document order.
    pub elements: Vec<Element>,
    /// Each `eval` expression's value, by name.
    pub eval: BTreeMap<String, Value>,
    /// Each `eval` expression that threw: its exception's text, by name.
    pub eval_errors: BTreeMap<String, String>,
    pub screenshot: Option<PathBuf>,
    pub pdf: Option<PathBuf>,
}

/// One error the page reported.
#[derive(Debug, Clone)]
pub struct ConsoleError {
    /// `console` (console.error/assert), `exception` (uncaught) or `log` (the browser's own).
    pub source: String,
    pub text: String,
    /// The script or resource it came from, when known.
    pub url: Option<String>,
}

/// An element's rendered box.
#[derive(Debug, Clone)]
pub struct Element {
    /// Lower case: `svg`, `img`, `div`.
    pub tag: String,
    pub id: Option<String>,
    pub class: Option<String>,
    /// CSS pixels, from getBoundingClientRect.
    pub width: f64,
    pub height: f64,
}

/// Where screenshots and PDFs go: `target/screenshots` (the target dir this test was built in).
pub fn screenshots_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("screenshots")
}

/// Loads `pages` in one headless Chromium, in order, each in a fresh tab; panics (with the
/// script's message) if the harness itself fails: no Chromium, a crash, the time limit.
pub fn visit(pages: &[PageVisit]) -> Vec<PageReport> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/browser/cdp.py");
    let spec = json!({
        "timeout": TIMEOUT_SECONDS,
        "width": 1280,
        "pages": pages.iter().map(PageVisit::spec).collect::<Vec<_>>(),
    });
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(spec.to_string().as_bytes())
        .expect("the spec written to cdp.py");
    let out = child.wait_with_output().expect("cdp.py runs");
    assert!(
        out.status.success(),
        "cdp.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "cdp.py's output: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// cdp.py's JSON (its docstring has the format) as reports.
fn parse(stdout: &[u8]) -> Result<Vec<PageReport>, String> {
    let json: Value = serde_json::from_slice(stdout).map_err(|e| format!("not JSON: {e}"))?;
    let pages = json["pages"].as_array().ok_or("no \"pages\" array")?;
    pages.iter().map(page_report).collect()
}

fn page_report(page: &Value) -> Result<PageReport, String> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let path = |v: &Value| v.as_str().map(PathBuf::from);
    let list = |key: &str| {
        page[key]
            .as_array()
            .ok_or_else(|| format!("no {key:?} array in {page}"))
    };
    let console_errors = list("console_errors")?
        .iter()
        .map(|e| ConsoleError {
            source: text(&e["source"]).unwrap_or_default(),
            text: text(&e["text"]).unwrap_or_default(),
            url: text(&e["url"]),
        })
        .collect();
    let elements = list("elements")?
        .iter()
        .map(|e| {
            Ok(Element {
                tag: text(&e["tag"]).ok_or_else(|| format!("an element without a tag: {e}"))?,
                id: text(&e["id"]),
                class: text(&e["class"]),
                width: e["width"]
                    .as_f64()
                    .ok_or_else(|| format!("no width: {e}"))?,
                height: e["height"]
                    .as_f64()
                    .ok_or_else(|| format!("no height: {e}"))?,
            })
        })
        .collect::<Result<_, String>>()?;
    let eval_errors = page["eval_errors"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), text(v).unwrap_or_else(|| v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(PageReport {
        url: text(&page["url"]).ok_or_else(|| format!("a page without a url: {page}"))?,
        status: page["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
        error: text(&page["error"]),
        console_errors,
        elements,
        eval: page["eval"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        eval_errors,
        screenshot: path(&page["screenshot"]),
        pdf: path(&page["pdf"]),
    })
}

/// The width and height of a PNG file, from its IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 24 && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}

#[test]
fn the_harness_sees_a_pages_errors_sizes_and_values() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/browser/fixture.html");
    let url = format!("file://{}", fixture.display());
    let reports = visit(&[
        PageVisit::new(&url)
            .wait_for("document.body.dataset.drawn === 'yes'")
            .wait_ms(50)
            .eval(
                "tiles",
                "[...document.querySelectorAll('.tile .value')].map(e => e.textContent)",
            )
            .eval("drawn", "document.body.dataset.drawn")
            .eval("throws", "undefinedFunction()")
            .screenshot("browser-fixture")
            .pdf("browser-fixture"),
        // Again in a fresh tab, measuring other elements.
        PageVisit::new(&url).selector("div.tile"),
    ]);
    assert_eq!(reports.len(), 2);
    let page = &reports[0];
    assert_eq!(page.url, url);
    assert_eq!(page.status, Some(200), "{page:#?}");
    assert_eq!(page.error, None);

    // Both deliberate faults, and nothing else.
    let errors = &page.console_errors;
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.source == "console" && e.text == "fixture: deliberate console error 7"),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e.source == "log"
            && e.text.contains("Failed to load resource")
            && e.url
                .as_deref()
                .is_some_and(|u| u.ends_with("/does-not-exist.png"))),
        "{errors:#?}"
    );

    // The inline chart at its own size; the broken image is measured too (its alt text's box).
    let svg: Vec<&Element> = page.elements.iter().filter(|e| e.tag == "svg").collect();
    assert_eq!(svg.len(), 1, "{:#?}", page.elements);
    assert_eq!(svg[0].id.as_deref(), Some("chart"));
    assert_eq!((svg[0].width, svg[0].height), (300.0, 200.0));
    assert!(
        page.elements
            .iter()
            .any(|e| e.tag == "img" && e.id.as_deref() == Some("broken")),
        "{:#?}",
        page.elements
    );

    assert_eq!(page.eval["tiles"], json!(["42", "3.5 h"]));
    assert_eq!(page.eval["drawn"], json!("yes"));
    assert!(!page.eval.contains_key("throws"));
    assert!(
        page.eval_errors["throws"].contains("ReferenceError"),
        "{:?}",
        page.eval_errors
    );

    // A real render: a PNG 1280 wide, taller than nothing; a PDF.
    let png = page.screenshot.as_ref().expect("a screenshot");
    assert_eq!(png, &screenshots_dir().join("browser-fixture.png"));
    let (width, height) = png_size(png);
    assert_eq!(width, 1280);
    assert!(height >= 400, "{height}");
    let pdf = std::fs::read(page.pdf.as_ref().expect("a PDF")).expect("the PDF written");
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");

    // The other selector: the two tiles, block boxes as wide as the 1280 px viewport; the same
    // two errors, this tab's own; nothing saved.
    let tiles = &reports[1];
    assert_eq!(tiles.elements.len(), 2, "{tiles:#?}");
    for tile in &tiles.elements {
        assert_eq!(
            (tile.tag.as_str(), tile.class.as_deref()),
            ("div", Some("tile"))
        );
        assert_eq!(tile.width, 1280.0, "{tile:?}");
    }
    assert_eq!(tiles.console_errors.len(), 2, "{tiles:#?}");
    assert_eq!((&tiles.screenshot, &tiles.pdf), (&None, &None));
}

#[test]
fn the_harness_reads_the_servers_status_codes() {
    let (dir, args) = sample_lake("", &[("events", "events")]);
    let server = Server::start(dir.path(), &args);
    let base = format!("http://127.0.0.1:{}", server.port);
    let reports = visit(&[
        PageVisit::new(format!("{base}/healthz")),
        // Chromium shows JSON as text in a <pre>.
        PageVisit::new(format!("{base}/api/v1/openapi.json"))
            .eval(
                "openapi",
                "JSON.parse(document.querySelector('pre').textContent).openapi",
            )
            .screenshot("browser-openapi"),
        PageVisit::new(format!("{base}/no-such-page")),
    ]);
    assert_eq!(reports.len(), 3);
    for page in &reports[..2] {
        assert_eq!(page.status, Some(200), "{page:#?}");
        assert!(page.console_errors.is_empty(), "{page:#?}");
        assert!(page.elements.is_empty(), "{page:#?}");
    }
    let openapi = &reports[1];
    assert!(
        openapi.eval["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{openapi:#?}"
    );
    let (width, _) = png_size(openapi.screenshot.as_ref().expect("a screenshot"));
    assert_eq!(width, 1280);

    // A missing route: its status, and the browser logs the failed load as an error.
    let missing = &reports[2];
    assert_eq!(missing.status, Some(404), "{missing:#?}");
    assert_eq!(missing.console_errors.len(), 1, "{missing:#?}");
    assert!(
        missing.console_errors[0].text.contains("404"),
        "{missing:#?}"
    );

    // Nothing answering: a navigation error, not a status.
    drop(server);
    let gone = visit(&[PageVisit::new(format!("{base}/healthz"))]);
    assert_eq!(gone[0].status, None, "{:#?}", gone[0]);
    assert_eq!(
        gone[0].error.as_deref(),
        Some("net::ERR_CONNECTION_REFUSED"),
        "{:#?}",
        gone[0]
    );
}
