//! What PostgreSQL clients look up besides our views: `pg_catalog` (from `datafusion-postgres`,
//! for psql's `\dt`, `\dv`, `\d VIEW`), DataFusion's `information_schema`, a PostgreSQL-style
//! `version()` (SQLAlchemy and JDBC parse it), `current_setting()` and the settings `SHOW`
//! answers.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::ast::{self, TableFactor, VisitMut, VisitorMut};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;
use std::ops::ControlFlow;

/// The PostgreSQL version clients are told (protocol and catalog shapes follow 16).
pub const SERVER_VERSION: &str = "16.6";

/// The settings `SHOW name` and `current_setting(name)` answer, as a PostgreSQL 16 server
/// configured for this endpoint would (read-only, UTC, UTF-8).
pub const SETTINGS: &[(&str, &str)] = &[
    ("server_version", SERVER_VERSION),
    ("server_version_num", "160006"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("integer_datetimes", "on"),
    ("timezone", "UTC"),
    ("datestyle", "ISO, MDY"),
    ("intervalstyle", "postgres"),
    ("search_path", "public"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "on"),
    ("default_transaction_read_only", "on"),
    ("max_identifier_length", "63"),
    ("lc_collate", "C.UTF-8"),
    ("lc_ctype", "C.UTF-8"),
    ("is_superuser", "off"),
    ("application_name", ""),
    ("extra_float_digits", "1"),
    ("statement_timeout", "0"),
];

/// The value of setting `name` (any case), when it is one of [`SETTINGS`].
pub fn setting(name: &str) -> Option<&'static str> {
    let name = name.trim().to_ascii_lowercase();
    SETTINGS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
}

/// `information_schema.columns` as PostgreSQL clients read it: DataFusion's, with `data_type`
/// in PostgreSQL's words and `udt_name` (Grafana's pickers look for `timestamptz` there), the
/// Arrow type classified once (as `udt_name`) and `data_type` named from it.
/// `{catalog}` is the session's catalog: the view reads DataFusion's own table by its full name,
/// which [`pg_information_schema`] leaves alone.
const COLUMNS: &str = "SELECT table_catalog, table_schema, table_name, column_name, \
    ordinal_position, column_default, is_nullable, \
    CASE udt_name WHEN 'timestamptz' THEN 'timestamp with time zone' \
         WHEN 'timestamp' THEN 'timestamp without time zone' \
         WHEN 'text' THEN 'text' WHEN 'int8' THEN 'bigint' WHEN 'int4' THEN 'integer' \
         WHEN 'int2' THEN 'smallint' WHEN 'float8' THEN 'double precision' \
         WHEN 'float4' THEN 'real' WHEN 'bool' THEN 'boolean' WHEN 'date' THEN 'date' \
         WHEN 'numeric' THEN 'numeric' WHEN 'interval' THEN 'interval' WHEN '_text' THEN 'ARRAY' \
         ELSE 'USER-DEFINED' END AS data_type, \
    udt_name, character_maximum_length, numeric_precision, numeric_scale \
    FROM (SELECT *, \
    CASE WHEN data_type LIKE 'Timestamp(%' AND (data_type LIKE '%UTC%' OR data_type LIKE '%+00:00%') \
           THEN 'timestamptz' \
         WHEN data_type LIKE 'Timestamp(%' THEN 'timestamp' \
         WHEN data_type IN ('Utf8', 'LargeUtf8', 'Utf8View') THEN 'text' \
         WHEN data_type IN ('Int64', 'UInt32') THEN 'int8' \
         WHEN data_type IN ('Int32', 'UInt16') THEN 'int4' \
         WHEN data_type IN ('Int16', 'Int8', 'UInt8') THEN 'int2' \
         WHEN data_type = 'Float64' THEN 'float8' \
         WHEN data_type IN ('Float32', 'Float16') THEN 'float4' \
         WHEN data_type = 'Boolean' THEN 'bool' \
         WHEN data_type IN ('Date32', 'Date64') THEN 'date' \
         WHEN data_type LIKE 'Decimal%' OR data_type = 'UInt64' THEN 'numeric' \
         WHEN data_type LIKE 'Interval%' OR data_type LIKE 'Duration%' THEN 'interval' \
         WHEN data_type LIKE '%List%' THEN '_text' \
         ELSE data_type END AS udt_name \
    FROM {catalog}.information_schema.columns) c";

/// Reads `information_schema.columns` in `statement` as [`COLUMNS`] (of `catalog`).
pub fn pg_information_schema(statement: &mut ast::Statement, catalog: &str) {
    struct Columns(TableFactor);
    impl VisitorMut for Columns {
        type Break = ();
        // After the children: the view put in place is not visited again.
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = factor
            {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|part| part.as_ident())
                    .map(|ident| ident.value.to_ascii_lowercase())
                    .collect();
                if parts == ["information_schema", "columns"] {
                    let alias = alias.take();
                    let mut view = self.0.clone();
                    if let (Some(alias), TableFactor::Derived { alias: slot, .. }) =
                        (alias, &mut view)
                    {
                        *slot = Some(alias);
                    }
                    *factor = view;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let text = format!(
        "SELECT * FROM ({}) AS columns",
        COLUMNS.replace("{catalog}", catalog)
    );
    let view =
        DFParser::parse_sql(&text)
            .ok()
            .and_then(|mut statements| match statements.pop_front() {
                Some(datafusion::sql::parser::Statement::Statement(statement)) => {
                    match *statement {
                        ast::Statement::Query(query) => match *query.body {
                            ast::SetExpr::Select(select) => {
                                select.from.into_iter().next().map(|from| from.relation)
                            }
                            _ => None,
                        },
                        _ => None,
                    }
                }
                _ => None,
            });
    if let Some(view) = view {
        let _ = statement.visit(&mut Columns(view));
    }
}

/// Adds the catalog and functions PostgreSQL clients need to an analysts' `session`.
pub fn prepare(session: &SessionContext) -> Result<(), DataFusionError> {
    let catalog = session
        .state()
        .config()
        .options()
        .catalog
        .default_catalog
        .clone();
    setup_pg_catalog(session, &catalog, EmptyContextProvider).map_err(|e| *e)?;
    session.register_udf(version());
    session.register_udf(current_setting());
    // The analysts' session has no row generators (see `query::guard`); setting up the catalog
    // must not have brought them back.
    for generator in ["range", "generate_series"] {
        session.deregister_udtf(generator);
        session.deregister_udf(generator);
    }
    Ok(())
}

/// `version()`: PostgreSQL's form, which clients parse, then what answers.
fn version() -> datafusion::logical_expr::ScalarUDF {
    let text = format!(
        "PostgreSQL {SERVER_VERSION} (doracost {}, Apache DataFusion) on x86_64-pc-linux-gnu, \
         64-bit",
        env!("CARGO_PKG_VERSION")
    );
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))
        }),
    )
}

/// `current_setting(name)`: the [`SETTINGS`] value, NULL for another name.
fn current_setting() -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| match args.first() {
            Some(ColumnarValue::Scalar(name)) => {
                let value = match name {
                    ScalarValue::Utf8(Some(name))
                    | ScalarValue::LargeUtf8(Some(name))
                    | ScalarValue::Utf8View(Some(name)) => setting(name),
                    _ => None,
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
                    value.map(str::to_owned),
                )))
            }
            Some(ColumnarValue::Array(names)) => {
                let names = arrow::compute::cast(names, &DataType::Utf8)?;
                let names = names
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| {
                        DataFusionError::Internal("current_setting: names are not text".into())
                    })?;
                let values: StringArray = (0..names.len())
                    .map(|i| {
                        (!names.is_null(i))
                            .then(|| setting(names.value(i)))
                            .flatten()
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(values) as ArrayRef))
            }
            None => Err(DataFusionError::Plan(
                "current_setting takes the name of a setting".into(),
            )),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clients_find_version_settings_and_the_catalog() {
        let session = query::Engine::new_context();
        prepare(&session).unwrap();
        let text = |sql: &'static str| {
            let session = session.clone();
            async move {
                let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
                arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string()
            }
        };
        assert!(
            text("SELECT version()")
                .await
                .contains("PostgreSQL 16.6 (doracost")
        );
        assert!(
            text("SELECT current_setting('search_path') AS p, current_setting('nope') AS n")
                .await
                .contains("| public |")
        );
        assert!(
            text("SELECT count(*) FROM pg_catalog.pg_namespace")
                .await
                .contains("count")
        );
        assert!(session.table_function("range").is_err());
        session
            .sql("CREATE TABLE t (at TIMESTAMP WITH TIME ZONE, n BIGINT, s VARCHAR)")
            .await
            .unwrap();
        let mut statement =
            datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser::new()
                .parse(
                    "SELECT column_name, data_type, udt_name FROM information_schema.columns c \
                 WHERE c.table_name = 't' ORDER BY ordinal_position",
                )
                .unwrap()
                .remove(0);
        pg_information_schema(&mut statement, "doracost");
        let batches = session
            .sql(&statement.to_string())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let shown = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(
            shown.contains("| at          | timestamp with time zone | timestamptz |"),
            "{shown}"
        );
        assert!(
            shown.contains("| n           | bigint                   | int8        |"),
            "{shown}"
        );
        assert!(
            shown.contains("| s           | text                     | text        |"),
            "{shown}"
        );
        assert_eq!(setting("Server_Version"), Some(SERVER_VERSION));
        assert_eq!(setting("datafusion.execution.batch_size"), None);
    }
}
