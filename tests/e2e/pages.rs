//! The dashboards as a browser and a mail client fetch them: the real server over the small
//! sample organisation, each built-in page and chart over real HTTP, its tiles checked against
//! `doracost sql` asked independently; a team's own dashboards folder; `doracost report`.

use crate::server::Server;
use crate::support::{fails, http_request, ok_with, sample_lake, sql_rows, with_args};

/// A lake with the small sample's events and bills.
fn sample() -> (tempfile::TempDir, Vec<String>) {
    sample_lake("", &[("events", "events"), ("focus", "costs")])
}

fn get(server: &Server, path: &str) -> crate::support::HttpResponse {
    http_request(server.port, "GET", path, &[], b"").expect("the server answers")
}

/// The `data-value` of tile `id` on `html`.
fn tile_value(html: &str, id: &str) -> String {
    let panel = html
        .split(&format!("data-panel=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no panel {id}"));
    panel
        .split("data-value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("panel {id} has no value"))
        .to_owned()
}

fn close(tile: &str, sql: &str) -> bool {
    match (tile.parse::<f64>(), sql.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        _ => tile == sql,
    }
}

#[test]
fn every_builtin_page_renders_each_panel_and_its_tiles_match_sql() {
    let (dir, args) = sample();
    let server = Server::start(dir.path(), &args);
    // The month the review shows by default: the latest one the DORA grid has complete.
    let month = sql_rows(
        dir.path(),
        &args,
        "SELECT CAST(max(period_start) AS VARCHAR) FROM dora_period_grid WHERE period = 'month' AND period_end <= current_date()",
    )[0][0]
        .clone();
    let review = get(&server, "/");
    assert_eq!(review.status, 200, "{}", review.body);
    assert_eq!(
        review.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = &review.body;
    for id in [
        "summary",
        "deploy-frequency",
        "lead-time",
        "change-failure-rate",
        "recovery-time",
        "rework-rate",
        "cost",
        "lead-time-trend",
        "cost-by-team",
        "cost-movers",
        "cost-movers-deployments",
        "budget-burn",
        "deployments-calendar",
        "failures",
        "incidents",
        "missing-targets",
    ] {
        assert!(
            html.contains(&format!("data-panel=\"{id}\"")),
            "panel {id} missing"
        );
    }
    assert!(
        !html.contains("class=\"panel-error\""),
        "a panel failed: {html}"
    );
    assert!(html.contains("<svg"), "no chart drawn");
    assert!(
        html.contains("Last refreshed: Lake version"),
        "no refreshed line"
    );

    // Each tile equals the view asked directly, for the organisation and then one service.
    let dora = |scope: &str, name: &str, column: &str| {
        sql_rows(
            dir.path(),
            &args,
            &format!(
                "SELECT {column} FROM dora_monthly WHERE scope = '{scope}' AND name = '{name}' AND period_start = DATE '{month}'"
            ),
        )[0][0]
            .clone()
    };
    for (tile, column) in [
        ("deploy-frequency", "deploys_per_day"),
        ("lead-time", "lead_time_median_hours"),
        ("change-failure-rate", "change_failure_rate"),
        ("rework-rate", "rework_rate"),
    ] {
        let shown = tile_value(html, tile);
        let expected = dora("all", "all", column);
        assert!(
            close(&shown, &expected),
            "{tile}: page {shown}, SQL {expected}"
        );
    }
    let filtered = get(
        &server,
        &format!("/?service=checkout&month={}", &month[..7]),
    );
    assert_eq!(filtered.status, 200);
    for (tile, column) in [
        ("deploy-frequency", "deploys_per_day"),
        ("lead-time", "lead_time_median_hours"),
    ] {
        let shown = tile_value(&filtered.body, tile);
        let expected = dora("service", "checkout", column);
        assert!(
            close(&shown, &expected),
            "checkout {tile}: page {shown}, SQL {expected}"
        );
    }
    assert_ne!(
        tile_value(&filtered.body, "deploy-frequency"),
        tile_value(html, "deploy-frequency"),
        "the service filter changed nothing"
    );
    let cost = sql_rows(
        dir.path(),
        &args,
        &format!("SELECT CAST(sum(cost) AS DOUBLE) FROM cost_monthly WHERE month = DATE '{month}'"),
    )[0][0]
        .clone();
    assert!(
        close(&tile_value(html, "cost"), &cost),
        "cost tile vs {cost}"
    );

    // The other built-in pages: every panel present, none failed.
    for (path, panels) in [
        (
            "/costs",
            &[
                "cost-by-provider",
                "allocation",
                "anomalies",
                "forecast",
                "budget-burn",
            ][..],
        ),
        (
            "/data-quality",
            &[
                "lead-time-coverage",
                "unallocated",
                "sources",
                "derived-tables",
                "alerts-failed",
            ][..],
        ),
        ("/dashboards/alerts", &["undelivered", "history"][..]),
        (
            "/services/checkout",
            &[
                "lead-time",
                "lead-time-breakdown",
                "deployments",
                "changes",
                "incidents",
            ][..],
        ),
        (
            "/teams/payments",
            &["lead-time", "scorecard", "deployments"][..],
        ),
    ] {
        let page = get(&server, path);
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        for id in panels {
            assert!(
                page.body.contains(&format!("data-panel=\"{id}\"")),
                "{path}: panel {id} missing"
            );
        }
        assert!(
            !page.body.contains("class=\"panel-error\""),
            "{path}: a panel failed: {}",
            page.body
        );
    }
    let team = get(&server, "/teams/payments");
    assert!(
        team.body
            .contains("<a href=\"/services/checkout\">checkout</a>"),
        "services linked"
    );

    // A warm page is one cache hit.
    assert_eq!(get(&server, "/").header("x-cache"), Some("hit"));

    // Charts alone, for email and slides.
    let png = get(&server, "/charts/review/lead-time-trend.png");
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    let svg = get(&server, "/charts/review/cost-by-team.svg?team=payments");
    assert_eq!(svg.status, 200);
    assert!(
        svg.body.contains("<title>") && svg.body.contains("<desc>"),
        "{}",
        svg.body
    );
}

#[test]
fn bad_choices_and_unknown_pages_answer_readable_errors() {
    let (dir, args) = sample();
    let server = Server::start(dir.path(), &args);
    for (path, status, needle) in [
        ("/?month=2026-13", 400, "month"),
        ("/?service=nope", 400, "not a service"),
        ("/?colour=red", 400, "colour"),
        ("/services/nope", 400, "not a service"),
        ("/dashboards/nope", 404, "no dashboard `nope`"),
        ("/charts/review/nope.png", 404, "no panel `nope`"),
        ("/charts/review/summary.png", 404, "not a chart"),
        ("/charts/review/lead-time.gif", 404, ".png"),
    ] {
        let answer = get(&server, path);
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert!(answer.body.contains(needle), "{path}: {}", answer.body);
    }
}

#[test]
fn a_teams_own_dashboards_add_and_replace_pages_and_a_failing_panel_stays_in_its_place() {
    let dashboards = tempfile::tempdir().unwrap();
    std::fs::write(
        dashboards.path().join("mine.toml"),
        r#"
title = "Our page"
filters = ["service"]

[[panels]]
id = "deploys"
title = "Deployments per service"
kind = "bar"
unit = "count"
sql = "SELECT service AS label, count(*) AS value FROM dora_deployments WHERE ($service IS NULL OR service = $service) GROUP BY service ORDER BY value DESC"

[[panels]]
id = "broken"
title = "Broken"
kind = "table"
sql = "SELECT no_such_column FROM dora_deployments"
"#,
    )
    .unwrap();
    let extra = format!("[dashboards]\ndir = \"{}\"\n", dashboards.path().display());
    let (dir, args) = sample_lake(&extra, &[("events", "events")]);
    let server = Server::start(dir.path(), &args);
    let page = get(&server, "/dashboards/mine");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("data-panel=\"deploys\""));
    assert!(
        page.body.contains("data-chart=\"deploys\""),
        "the good panel drew"
    );
    let broken = page.body.split("data-panel=\"broken\"").nth(1).unwrap();
    assert!(
        broken.contains("class=\"panel-error\"") && broken.contains("no_such_column"),
        "{broken}"
    );
    assert!(
        page.body.contains("href=\"/dashboards/mine\""),
        "listed in the navigation"
    );
    drop(server);

    // A malformed dashboard stops the server at start, naming the file, line and key.
    std::fs::write(
        dashboards.path().join("bad.toml"),
        "title = \"x\"\n[[panels]]\nid = \"a\"\ntitle = \"A\"\nkind = \"pie\"\nsql = \"SELECT 1\"\n",
    )
    .unwrap();
    let err = fails(
        dir.path(),
        &with_args(&args, &["serve", "--listen", "127.0.0.1:0"]),
    );
    assert!(
        err.contains("bad.toml") && err.contains("line 5") && err.contains("pie"),
        "{err}"
    );
}

#[test]
fn the_review_as_one_html_file_and_as_markdown() {
    let (dir, args) = sample();
    let out = dir.path().join("review.html");
    ok_with(
        dir.path(),
        &args,
        &[
            "report",
            "--month",
            "2025-11",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("November 2025"));
    assert!(html.contains("data-panel=\"lead-time\"") && html.contains("<svg"));
    // One file: no form or navigation that needs the server, nothing fetched from elsewhere.
    assert!(!html.contains("<form") && !html.contains("src=\"http"));

    let md = ok_with(
        dir.path(),
        &args,
        &["report", "--month", "2025-11", "--format", "md"],
    );
    assert!(
        md.starts_with("# Monthly infra review: November 2025"),
        "{md}"
    );
    assert!(md.contains("| Lead time for changes |"), "{md}");
    let err = fails(
        dir.path(),
        &with_args(&args, &["report", "--format", "csv"]),
    );
    assert!(err.contains("html and md"), "{err}");
    let err = fails(dir.path(), &with_args(&args, &["costs", "--format", "md"]));
    assert!(
        err.contains("html and md are for `doracost report`"),
        "{err}"
    );
}

#[test]
fn every_builtin_page_in_real_chromium_has_its_charts_no_errors_and_a_working_filter() {
    use crate::browser::{PageVisit, visit};
    let (dir, args) = sample();
    let server = Server::start(dir.path(), &args);
    let base = format!("http://127.0.0.1:{}", server.port);
    let tiles = "[...document.querySelectorAll('[data-value]')].map(e => e.closest('[data-panel]').dataset.panel + '=' + e.dataset.value)";
    let panels = "[...document.querySelectorAll('[data-panel]')].map(e => e.dataset.panel)";
    let pages = [
        ("review", "/"),
        ("review-checkout", "/?service=checkout"),
        ("service-checkout", "/services/checkout"),
        ("team-payments", "/teams/payments"),
        ("costs", "/costs"),
        ("data-quality", "/data-quality"),
    ];
    let mut visits: Vec<PageVisit> = pages
        .iter()
        .map(|(name, path)| {
            PageVisit::new(format!("{base}{path}"))
                .selector("figure[data-chart] svg")
                .eval("tiles", tiles)
                .eval("panels", panels)
                .eval("errors", "document.querySelectorAll('.panel-error').length")
                .screenshot(name)
        })
        .collect();
    visits[0] = visits[0].clone().pdf("review");
    let reports = visit(&visits);
    for ((name, path), report) in pages.iter().zip(&reports) {
        assert_eq!(report.status, Some(200), "{path}");
        assert!(
            report.console_errors.is_empty(),
            "{path}: {:?}",
            report.console_errors
        );
        assert_eq!(report.eval["errors"], 0, "{path}: a panel failed");
        assert!(!report.elements.is_empty(), "{path}: no chart");
        for chart in &report.elements {
            assert!(
                chart.width > 100.0 && chart.height > 50.0,
                "{name}: a chart of {}×{}",
                chart.width,
                chart.height
            );
        }
        assert!(
            report.screenshot.as_ref().is_some_and(|p| p.exists()),
            "{name}: no screenshot"
        );
    }
    // The review draws a chart for each chart panel (the tiles, tables and summary are HTML).
    assert!(
        reports[0].elements.len() >= 10,
        "{} charts on the review",
        reports[0].elements.len()
    );
    assert_ne!(
        reports[0].eval["tiles"], reports[1].eval["tiles"],
        "the service filter changed no number"
    );
    let pdf = std::fs::read(reports[0].pdf.as_ref().expect("a PDF")).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
}
