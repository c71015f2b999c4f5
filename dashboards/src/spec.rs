//! Dashboards as code (DESIGN §5): a dashboard is a TOML file, a page of panels; a panel is a SQL
//! query over the views, a chart kind, a unit and optional target and threshold lines. The
//! built-in dashboards ship in the binary (`dashboards/builtin/*.toml`); `[dashboards] dir` adds
//! pages or replaces built-in ones by file name, so a team edits a TOML file, not Rust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::chart::{ChartKind, Threshold, Unit};
use crate::selection::PLACEHOLDERS;

/// One page of panels.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Its name in URLs (`/dashboards/{name}`): the file stem.
    pub name: String,
    /// The page heading.
    pub title: String,
    /// A line under the heading on what the page is for.
    pub description: String,
    /// The filters its form offers.
    pub filters: Vec<Filter>,
    /// Its panels, in page order.
    pub panels: Vec<Panel>,
    /// Where it was read from: a file, or `built-in`.
    pub origin: String,
    /// The dashboard whose panels come before its own.
    pub extends: Option<String>,
}

impl Dashboard {
    /// The panel called `id`.
    pub fn panel(&self, id: &str) -> Option<&Panel> {
        self.panels.iter().find(|p| p.id == id)
    }
}

/// A filter of a dashboard's form: a query-string parameter bound into its panels' SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// `month=YYYY-MM`.
    Month,
    /// `service=NAME`.
    Service,
    /// `team=NAME`.
    Team,
    /// `period=day|week|month`.
    Period,
    /// `from=YYYY-MM-DD&to=YYYY-MM-DD`.
    Range,
}

/// How a panel shows its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelKind {
    /// A chart drawn with plotters (a table draws as an HTML table in pages).
    Chart(ChartKind),
    /// Sentences in words made from rows of (subject, measure, previous, current).
    Summary,
}

impl<'de> Deserialize<'de> for PanelKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PanelKind, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Chart(ChartKind),
            Other(String),
        }
        match Either::deserialize(deserializer)? {
            Either::Chart(kind) => Ok(PanelKind::Chart(kind)),
            Either::Other(word) if word == "summary" => Ok(PanelKind::Summary),
            Either::Other(word) => Err(serde::de::Error::custom(format!(
                "unknown panel kind `{word}`: expected one of line, stacked_area, stacked_bar, bar, stat, table, burn, calendar, summary"
            ))),
        }
    }
}

/// How much of the page's width a panel takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Width {
    /// A sixth: a stat tile.
    Tile,
    /// A third.
    Third,
    /// Half.
    #[default]
    Half,
    /// The whole width.
    Full,
}

/// One panel: a query and how to show it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Its name in URLs (`/charts/{dashboard}/{id}.png`): lower-case letters, digits, `_`, `-`.
    pub id: String,
    /// Its heading.
    pub title: String,
    /// What it shows (the chart's `<desc>`, and a line under the heading).
    #[serde(default)]
    pub description: String,
    /// Chart kind, `table` or `summary`.
    pub kind: PanelKind,
    /// The unit of its values.
    #[serde(default)]
    pub unit: Unit,
    /// The SQL, over the views, with `$month`, `$service` … placeholders bound as values.
    pub sql: String,
    /// A target line (or a stat tile's target).
    pub target: Option<f64>,
    /// Labelled horizontal lines.
    #[serde(default)]
    pub thresholds: Vec<ThresholdSpec>,
    /// How wide it is on the page.
    #[serde(default)]
    pub width: Width,
    /// For tables: a column whose values name services, linked to their pages.
    pub link_services: Option<String>,
}

/// `[[panels.thresholds]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    /// What the line marks.
    pub label: String,
    /// Where it is.
    pub value: f64,
}

impl Panel {
    /// The thresholds as the chart draws them.
    pub fn thresholds(&self) -> Vec<Threshold> {
        self.thresholds
            .iter()
            .map(|t| Threshold {
                label: t.label.clone(),
                value: t.value,
            })
            .collect()
    }
}

/// A dashboard file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardFile {
    title: String,
    /// Another dashboard whose panels come first (a service page is the review, scoped).
    extends: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    filters: Vec<Filter>,
    #[serde(default)]
    panels: Vec<Panel>,
}

/// A dashboard file that cannot be read: the file, and the line and key at fault.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or a panel is not valid.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// Line, column, key and what was expected.
        message: String,
    },
}

/// Parses one dashboard; `name` is its file stem, `origin` names it in errors.
pub fn parse(name: &str, text: &str, origin: &str) -> Result<Dashboard, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    if !is_slug(name) {
        return Err(invalid(format!(
            "the file name `{name}` is the dashboard's name in URLs: use lower-case letters, digits, `_` and `-`"
        )));
    }
    let file: DashboardFile =
        toml::from_str(text).map_err(|e| invalid(model::config::toml_message(text, &e)))?;
    let mut seen = std::collections::BTreeSet::new();
    for panel in &file.panels {
        let at = |key: &str| match line_of(text, &panel.id) {
            Some(line) => format!("line {line}: panel `{}`: `{key}`", panel.id),
            None => format!("panel `{}`: `{key}`", panel.id),
        };
        if !is_slug(&panel.id) {
            return Err(invalid(format!(
                "{}: use lower-case letters, digits, `_` and `-` (it is the panel's name in URLs)",
                at("id")
            )));
        }
        if !seen.insert(panel.id.as_str()) {
            return Err(invalid(format!("{}: this id is used twice", at("id"))));
        }
        if let Some(unknown) = placeholders(&panel.sql)
            .into_iter()
            .find(|p| !PLACEHOLDERS.iter().any(|(name, _)| name == p))
        {
            let known: Vec<String> = PLACEHOLDERS.iter().map(|(n, _)| format!("${n}")).collect();
            return Err(invalid(format!(
                "{}: unknown placeholder `${unknown}`: expected one of {}",
                at("sql"),
                known.join(", ")
            )));
        }
    }
    Ok(Dashboard {
        name: name.to_owned(),
        title: file.title,
        description: file.description,
        filters: file.filters,
        panels: file.panels,
        origin: origin.to_owned(),
        extends: file.extends,
    })
}

/// The line (from 1) of the panel whose `id = "…"` is `id`, for error messages.
fn line_of(text: &str, id: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.split_once('=').is_some_and(|(key, value)| {
                key.trim() == "id" && value.trim().trim_matches(|c| c == '"' || c == '\'') == id
            })
        })
        .map(|i| i + 1)
}

fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The `$name` placeholders of `sql`, outside string literals and comments.
pub fn placeholders(sql: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                let name = &sql[start..end];
                if !name.is_empty() && !found.iter().any(|f| f == name) {
                    found.push(name.to_owned());
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The dashboards shipped in the binary: (name, TOML).
const BUILTIN: &[(&str, &str)] = &[
    ("review", include_str!("../builtin/review.toml")),
    ("service", include_str!("../builtin/service.toml")),
    ("team", include_str!("../builtin/team.toml")),
    ("costs", include_str!("../builtin/costs.toml")),
    ("data-quality", include_str!("../builtin/data-quality.toml")),
    ("alerts", include_str!("../builtin/alerts.toml")),
];

/// Every dashboard the server shows, by name.
#[derive(Debug, Clone)]
pub struct Catalog {
    dashboards: BTreeMap<String, Dashboard>,
}

impl Catalog {
    /// The built-in dashboards.
    pub fn builtin() -> Result<Catalog, SpecError> {
        Catalog::unresolved_builtin()?.resolve()
    }

    fn unresolved_builtin() -> Result<Catalog, SpecError> {
        let mut dashboards = BTreeMap::new();
        for (name, text) in BUILTIN {
            let dashboard = parse(name, text, &format!("built-in dashboard `{name}`"))?;
            dashboards.insert((*name).to_owned(), dashboard);
        }
        Ok(Catalog { dashboards })
    }

    /// Puts the panels of each dashboard's `extends` chain before its own; a panel of the same
    /// id replaces the base's in place.
    fn resolve(mut self) -> Result<Catalog, SpecError> {
        let written = self.dashboards.clone();
        for dashboard in self.dashboards.values_mut() {
            let mut chain = vec![dashboard.name.clone()];
            let mut base_name = dashboard.extends.clone();
            let mut bases = Vec::new();
            while let Some(name) = base_name {
                let invalid = |message: String| SpecError::Invalid {
                    origin: dashboard.origin.clone(),
                    message,
                };
                if chain.contains(&name) {
                    chain.push(name);
                    return Err(invalid(format!(
                        "`extends` goes round in a circle: {}",
                        chain.join(" → ")
                    )));
                }
                let Some(base) = written.get(&name) else {
                    return Err(invalid(format!(
                        "`extends`: there is no dashboard `{name}`"
                    )));
                };
                chain.push(name);
                bases.push(base);
                base_name = base.extends.clone();
            }
            let mut panels: Vec<Panel> = Vec::new();
            for layer in bases
                .iter()
                .rev()
                .map(|b| &b.panels)
                .chain([&dashboard.panels])
            {
                for panel in layer {
                    match panels.iter_mut().find(|p| p.id == panel.id) {
                        Some(same) => *same = panel.clone(),
                        None => panels.push(panel.clone()),
                    }
                }
            }
            dashboard.panels = panels;
        }
        Ok(self)
    }

    /// The built-in dashboards, then each `*.toml` of `dir` (adding a page, or replacing the
    /// built-in one of the same name).
    pub fn load(dir: Option<&Path>) -> Result<Catalog, SpecError> {
        let mut catalog = Catalog::unresolved_builtin()?;
        let Some(dir) = dir else {
            return catalog.resolve();
        };
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SpecError::Io { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dashboard = parse(&name, &text, &path.display().to_string())?;
            catalog.dashboards.insert(name, dashboard);
        }
        catalog.resolve()
    }

    /// The dashboard called `name`.
    pub fn get(&self, name: &str) -> Option<&Dashboard> {
        self.dashboards.get(name)
    }

    /// Every dashboard, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Dashboard> {
        self.dashboards.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_dashboards_parse() {
        let catalog = Catalog::builtin().unwrap();
        let names: Vec<&str> = catalog.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "alerts",
                "costs",
                "data-quality",
                "review",
                "service",
                "team"
            ]
        );
        assert!(catalog.get("review").unwrap().panels.len() >= 10);
    }

    #[test]
    fn a_malformed_dashboard_names_the_file_line_and_key() {
        let text = "title = \"x\"\n\n[[panels]]\nid = \"a\"\ntitle = \"A\"\nkind = \"line\"\nsql = \"SELECT 1\"\ncolour = \"red\"\n";
        let err = parse("mine", text, "dash/mine.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("dash/mine.toml: line 8"), "{err}");
        assert!(err.contains("colour"), "{err}");

        let text = "title = \"x\"\n[[panels]]\nid = \"a\"\ntitle = \"A\"\nkind = \"pie\"\nsql = \"SELECT 1\"\n";
        let err = parse("mine", text, "dash/mine.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 5") && err.contains("`panels.kind`") && err.contains("pie"),
            "{err}"
        );

        let text = "title = \"x\"\n[[panels]]\nid = \"a\"\ntitle = \"A\"\nkind = \"bar\"\nsql = \"SELECT $monht\"\n";
        let err = parse("mine", text, "dash/mine.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3: panel `a`: `sql`: unknown placeholder `$monht`"),
            "{err}"
        );

        let text = "title = \"x\"\n[[panels]]\nid = \"a\"\ntitle = \"A\"\nkind = \"bar\"\nsql = \"SELECT 1\"\n[[panels]]\nid = \"a\"\ntitle = \"B\"\nkind = \"bar\"\nsql = \"SELECT 2\"\n";
        let err = parse("mine", text, "dash/mine.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("used twice"), "{err}");
        assert!(parse("Mine!", "title = \"x\"", "Mine!.toml").is_err());
    }

    #[test]
    fn placeholders_outside_literals_and_comments() {
        assert_eq!(
            placeholders("SELECT '$no' AS a, $month -- $nope\n, $service, $month"),
            ["month", "service"]
        );
    }

    #[test]
    fn a_folder_adds_and_replaces_pages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("review.toml"),
            "title = \"Ours\"\n[[panels]]\nid = \"one\"\ntitle = \"One\"\nkind = \"table\"\nsql = \"SELECT 1 AS one\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("extra.toml"), "title = \"Extra\"\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a dashboard").unwrap();
        let catalog = Catalog::load(Some(dir.path())).unwrap();
        assert_eq!(catalog.get("review").unwrap().title, "Ours");
        assert_eq!(catalog.get("extra").unwrap().title, "Extra");
        assert!(catalog.get("costs").is_some());
    }
}
