//! Derived tables: the per-row metric views (marked `-- @persisted` in `dora.sql` and `cost.sql`:
//! `dora_deployments`, `dora_changes`, …, `cost_owned`) kept in the lake under `_derived/`, so
//! that a new session reads them instead of recomputing every join from the canonical tables.
//!
//! Each derived table's latest commit carries a **stamp**: a SHA-256 over the view's SQL (time
//! zone and other template values filled in), the stamps of the views it reads, the Delta table id
//! and version of each lake table it reads (a table deleted and created again has a new id), the content of each config table it reads (`services`,
//! `reporting`, `cost_rules`, …) and the rules of the config-built function `cost_rule_pick`,
//! plus this crate's version and [`FORMAT`]. A session uses a
//! derived table only when its stamp equals the one computed from the session's own lake and
//! config; otherwise the view is computed live, exactly as without derived tables. So an ingest,
//! a config change or a new release can make a derived table stale, never wrong. Ingests refresh
//! them (`Engine::refresh_derived`), and `doracost refresh` does it on demand.
//!
//! References are found by name: every identifier of the SQL that names a view, lake table or
//! config table counts (a column that happens to share a table's name only makes the stamp
//! depend on more than it needs to).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionState;
use datafusion::prelude::SessionContext;
use model::Lake;
use sha2::{Digest, Sha256};

use crate::cached::CachedView;
use crate::config_tables::ViewStatement;

/// Bumped when the meaning of a derived table changes without its SQL changing (a UDF's
/// behaviour, the stamp's recipe).
pub const FORMAT: &str = "doracost-derived-1";

/// The lake a session reads, as the derived tables need it.
pub struct LakeSide<'a> {
    /// The lake.
    pub lake: &'a Lake,
    /// What identifies the content of every lake table registered in the session: its Delta
    /// table id and version ([`model::lake::content_id`]).
    pub contents: BTreeMap<String, String>,
    /// The session the Delta providers scan with.
    pub state: Arc<SessionState>,
    /// Read derived tables whose stamp matches (else compute every view live).
    pub read: bool,
}

/// What a session found of one derived table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedStatus {
    /// Its stamp matches: the session reads it.
    Fresh,
    /// It exists but was computed from other inputs: the session computes the view live.
    Stale,
    /// It was never written: the session computes the view live.
    Missing,
    /// Not read (the session was opened not to): it computes the view live.
    Ignored,
}

impl DerivedStatus {
    /// `fresh`, `stale`, `missing` or `ignored`.
    pub fn as_str(self) -> &'static str {
        match self {
            DerivedStatus::Fresh => "fresh",
            DerivedStatus::Stale => "stale",
            DerivedStatus::Missing => "missing",
            DerivedStatus::Ignored => "ignored",
        }
    }
}

/// One persisted view, as the session found it.
#[derive(Debug, Clone)]
pub struct DerivedView {
    /// The view's name (and the derived table's).
    pub name: String,
    /// Fresh, stale, missing or ignored.
    pub status: DerivedStatus,
    /// The stamp computed from this session's lake and config.
    pub stamp: String,
    /// The derived table's Delta version, when there is one.
    pub version: Option<u64>,
    /// The live computation, when the session does not read the derived table.
    pub(crate) live: Option<Arc<CachedView>>,
}

/// The outcome of looking a derived table up.
pub(crate) enum Lookup {
    /// Read this provider.
    Fresh(Arc<dyn TableProvider>, DerivedView),
    /// Compute the view live.
    Live(DerivedView),
}

impl LakeSide<'_> {
    /// Looks `name` up in the lake and compares its stamp. A derived table that cannot be opened
    /// is treated as missing (with a warning): it is only ever a shortcut.
    pub(crate) async fn lookup(&self, name: &str, stamp: &str) -> Lookup {
        let view = |status, version| DerivedView {
            name: name.to_owned(),
            status,
            stamp: stamp.to_owned(),
            version,
            live: None,
        };
        let found = match self.lake.open_derived(name).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(table = name, error = %e, "derived table unreadable; computing the view");
                None
            }
        };
        let Some(found) = found else {
            let status = if self.read {
                DerivedStatus::Missing
            } else {
                DerivedStatus::Ignored
            };
            return Lookup::Live(view(status, None));
        };
        let version = found.table.version();
        if !self.read {
            return Lookup::Live(view(DerivedStatus::Ignored, version));
        }
        if found.stamp.as_deref() != Some(stamp) {
            return Lookup::Live(view(DerivedStatus::Stale, version));
        }
        if let Err(e) = found.table.update_datafusion_session(self.state.as_ref()) {
            tracing::warn!(table = name, error = %e, "derived table unreadable; computing the view");
            return Lookup::Live(view(DerivedStatus::Stale, version));
        }
        match found
            .table
            .table_provider()
            .with_session(Arc::clone(&self.state))
            .await
        {
            Ok(provider) => Lookup::Fresh(provider, view(DerivedStatus::Fresh, version)),
            Err(e) => {
                tracing::warn!(table = name, error = %e, "derived table unreadable; computing the view");
                Lookup::Live(view(DerivedStatus::Stale, version))
            }
        }
    }
}

/// The stamp of every view of a session.
pub(crate) struct Stamps {
    by_view: HashMap<String, String>,
    recipe: StampRecipe,
}

/// What the stamps are computed from besides the lake tables' content ids: the config tables'
/// content, the config-built function, and each view's SQL and the names it references. Kept by
/// the engine, to compute the stamps the same views would have over another lake state.
#[derive(Debug, Clone)]
pub struct StampRecipe {
    /// What a reference to a config table or function contributes.
    fixed: HashMap<String, String>,
    /// Each view (in creation order): name, SQL, identifiers of its query.
    views: Vec<(String, String, BTreeSet<String>)>,
}

impl StampRecipe {
    /// Every view's stamp over lake tables with these content ids.
    pub(crate) fn stamps(&self, contents: &BTreeMap<String, String>) -> HashMap<String, String> {
        let mut by_view: HashMap<String, String> = HashMap::new();
        for (view, sql, identifiers) in &self.views {
            let mut parts: Vec<String> = vec![
                FORMAT.to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
                sql.clone(),
            ];
            for name in identifiers {
                if name == view {
                    continue;
                }
                if let Some(stamp) = by_view.get(name) {
                    parts.push(format!("view {name}#{stamp}"));
                } else if let Some(content) = contents.get(name) {
                    parts.push(format!("table {name} {content}"));
                } else if let Some(input) = self.fixed.get(name) {
                    parts.push(input.clone());
                }
            }
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            by_view.insert(view.clone(), hex_sha256(&refs));
        }
        by_view
    }
}

impl Stamps {
    /// Stamps for `views` (in creation order) over the lake and config tables registered in
    /// `ctx` now.
    pub(crate) async fn new(
        ctx: &SessionContext,
        config: &model::Config,
        side: &LakeSide<'_>,
        views: &[ViewStatement],
    ) -> Result<Stamps, DataFusionError> {
        // What a reference to each table contributes: a lake table its version, a config table
        // its content, the function built from config (the cost rule picker) its rules.
        let mut fixed: HashMap<String, String> = HashMap::new();
        let rules = format!("{:?}", crate::cost_tables::rules(config));
        fixed.insert(
            "cost_rule_pick".to_owned(),
            format!("function cost_rule_pick#{}", hex_sha256(&[&rules])),
        );
        let registered = ctx
            .catalog("doracost")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        for name in registered {
            if side.contents.contains_key(&name) || fixed.contains_key(&name) {
                continue;
            }
            let batches = ctx.table(name.as_str()).await?.collect().await?;
            let text = arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
            let schema = batches
                .first()
                .map(|b| format!("{:?}", b.schema()))
                .unwrap_or_default();
            fixed.insert(
                name.clone(),
                format!("config {name}#{}", hex_sha256(&[&schema, &text])),
            );
        }
        let recipe = StampRecipe {
            fixed,
            views: views
                .iter()
                .map(|v| (v.name.clone(), v.sql.clone(), identifiers(&v.query)))
                .collect(),
        };
        Ok(Stamps {
            by_view: recipe.stamps(&side.contents),
            recipe,
        })
    }

    /// The stamp of one view.
    pub(crate) fn of(&self, view: &str) -> String {
        self.by_view.get(view).cloned().unwrap_or_default()
    }

    /// What they were computed from.
    pub(crate) fn recipe(&self) -> &StampRecipe {
        &self.recipe
    }
}

/// The distinct identifiers of a SQL text, lower-cased and sorted.
fn identifiers(sql: &str) -> BTreeSet<String> {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

fn hex_sha256(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `derived_tables` table: one row per persisted view with what the session found.
pub(crate) fn status_batch(views: &[DerivedView]) -> Result<RecordBatch, DataFusionError> {
    let mut name = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut version = Int64Builder::new();
    let mut stamp = StringBuilder::new();
    for v in views {
        name.append_value(&v.name);
        status.append_value(v.status.as_str());
        version.append_option(v.version.and_then(|n| i64::try_from(n).ok()));
        stamp.append_value(&v.stamp);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(name.finish()),
        Arc::new(status.finish()),
        Arc::new(version.finish()),
        Arc::new(stamp.finish()),
    ];
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("version", DataType::Int64, true),
            Field::new("stamp", DataType::Utf8, false),
        ])),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::identifiers;

    #[test]
    fn identifiers_are_whole_words() {
        let ids = identifiers("SELECT c.x FROM dora_changes c JOIN changes ON a.b = 'x y'");
        assert!(ids.contains("dora_changes"));
        assert!(ids.contains("changes"));
        assert!(!ids.contains("dora"));
        assert!(ids.contains("select"));
    }
}
