//! What a PostgreSQL client's statement becomes before it runs: a reply of the endpoint's own
//! (client settings, transactions, `DEALLOCATE`/`DISCARD`, the settings `SHOW` knows), or a read
//! for the guard; and the PostgreSQL errors (with their SQLSTATE) of what is refused or fails.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::DataType;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::pgwire;
use futures::stream;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::{ClientInfo, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use query::guard::Refusal;

use super::catalog;
use crate::error::ServerError;

/// The parser that reads PostgreSQL clients' SQL (and rewrites their catalog queries into
/// what DataFusion plans); built once, it holds no per-connection state.
static PARSER: LazyLock<PostgresCompatibilityParser> =
    LazyLock::new(PostgresCompatibilityParser::new);

/// The most parameters of one statement, as in PostgreSQL (the Bind message counts them in 16
/// bits); `$4000000000` must not size a vector.
const MAX_PARAMETERS: usize = 65_535;

/// The client settings pgwire formats a connection's rows by.
const FORMAT_SETTINGS: &[&str] = &[
    "datestyle",
    "intervalstyle",
    "bytea_output",
    "extra_float_digits",
];

/// A statement answered here.
#[derive(Clone, Debug)]
pub(super) enum Reply {
    /// A client setting, kept for this connection only.
    Set { name: String, value: String },
    /// `BEGIN`: every statement here reads, so a transaction is only a word.
    Begin,
    /// `COMMIT` or `ROLLBACK`.
    End(&'static str),
    /// A statement with nothing to do (`DEALLOCATE`, `DISCARD`, `SET` of another kind).
    Done(&'static str),
    /// `SHOW name` of a PostgreSQL setting.
    Show { name: String, value: String },
}

/// The reply to a statement answered here, or none when it goes to the guard.
pub(super) fn reply(statement: &ast::Statement) -> PgWireResult<Option<Reply>> {
    use ast::Statement as S;
    Ok(Some(match statement {
        S::Set(ast::Set::SingleAssignment {
            variable, values, ..
        }) => {
            let name = variable.to_string().to_ascii_lowercase();
            if name.starts_with("datafusion.") {
                return Err(error(
                    "42501",
                    format!(
                        "SET {name} is refused: engine settings are the server's, and analysts' \
                         SQL is read-only (SELECT, WITH, VALUES, EXPLAIN, SHOW, DESCRIBE)"
                    ),
                ));
            }
            let value = values
                .iter()
                .map(|v| match v {
                    ast::Expr::Value(v) => v.clone().into_string().unwrap_or_else(|| v.to_string()),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            Reply::Set { name, value }
        }
        S::Set(_) => Reply::Done("SET"),
        S::StartTransaction { .. } => Reply::Begin,
        S::Commit { .. } => Reply::End("COMMIT"),
        S::Rollback { .. } => Reply::End("ROLLBACK"),
        S::Deallocate { .. } => Reply::Done("DEALLOCATE"),
        S::Discard { .. } => Reply::Done("DISCARD ALL"),
        S::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|part| part.value.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            match catalog::setting(&name) {
                Some(value) => Reply::Show {
                    name: name.to_ascii_lowercase(),
                    value: value.to_owned(),
                },
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    }))
}

/// The response to a statement answered here.
pub(super) fn answer<C: ClientInfo>(client: &mut C, reply: &Reply) -> Response {
    match reply {
        Reply::Set { name, value } => {
            // pgwire formats this connection's rows by these; the connection's other metadata
            // (its user, its database) is not a client's to set.
            if FORMAT_SETTINGS.contains(&name.as_str()) {
                client.metadata_mut().insert(name.clone(), value.clone());
            }
            Response::Execution(Tag::new("SET"))
        }
        Reply::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        Reply::End(tag) => Response::TransactionEnd(Tag::new(tag)),
        Reply::Done(tag) => Response::Execution(Tag::new(tag)),
        Reply::Show { name, value } => {
            let fields = Arc::new(show_fields(name));
            let mut encoder = DataRowEncoder::new(Arc::clone(&fields));
            let row = encoder
                .encode_field(&Some(value.as_str()))
                .map(|()| encoder.take_row());
            Response::Query(QueryResponse::new(fields, stream::iter([row])))
        }
    }
}

pub(super) fn show_fields(name: &str) -> Vec<FieldInfo> {
    vec![FieldInfo::new(
        name.to_owned(),
        None,
        None,
        Type::TEXT,
        FieldFormat::Text,
    )]
}

/// The types of `plan`'s placeholders, `$1` first (a gap is an unknown type).
pub(super) fn parameters(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let types: HashMap<String, Option<DataType>> = plan
        .get_parameter_types()
        .map_err(|e| error("42P18", e.strip_backtrace()))?;
    let mut numbered: Vec<(usize, Option<DataType>)> = Vec::with_capacity(types.len());
    for (name, datatype) in types {
        let number = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=MAX_PARAMETERS).contains(n))
            .ok_or_else(|| {
                error(
                    "42P02",
                    format!(
                        "parameter {name}: expected $1, $2, … up to ${MAX_PARAMETERS} \
                         (positional parameters)"
                    ),
                )
            })?;
        numbered.push((number, datatype));
    }
    let count = numbered.iter().map(|(n, _)| *n).max().unwrap_or(0);
    let mut ordered = vec![None; count];
    for (number, datatype) in numbered {
        ordered[number - 1] = datatype;
    }
    Ok(ordered)
}

/// The client's SQL as statements (none for an empty query, `-- ping` included).
pub(super) fn parse(sql: &str) -> PgWireResult<Vec<ast::Statement>> {
    PARSER.parse(sql).map_err(|e| error("42601", e.to_string()))
}

/// The error a client is sent.
pub(super) fn error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// A refused statement's error, its SQLSTATE by what was refused.
pub(super) fn refused(refusal: Refusal, statement: &ast::Statement) -> PgWireError {
    use ast::Statement as S;
    match refusal {
        Refusal::Syntax { message, .. } => error("42601", message),
        Refusal::Refused(message) => {
            let code = match statement {
                // A read calling a function that is not allowed.
                S::Query(_) | S::Explain { .. } | S::ExplainTable { .. } => "42501",
                S::Prepare { .. }
                | S::Execute { .. }
                | S::Declare { .. }
                | S::Fetch { .. }
                | S::Close { .. } => "0A000",
                // A write (DDL, DML, COPY): read_only_sql_transaction.
                _ => "25006",
            };
            error(code, message)
        }
    }
}

/// A server error as a PostgreSQL error, with the SQLSTATE closest to its kind.
pub(super) fn server_error(e: ServerError) -> PgWireError {
    let code = match &e {
        ServerError::SqlRefused(_) => "42501",
        ServerError::SqlInvalid { message, .. } if message.contains("not found") => "42P01",
        ServerError::SqlInvalid { .. } => "42601",
        ServerError::SqlFailed(_) => "22000",
        ServerError::OverMemory(_) => "53200",
        ServerError::OverTime(_) => "57014",
        ServerError::Busy(_) => "53000",
        ServerError::Unavailable(_) => "58030",
        _ => "XX000",
    };
    error(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> ast::Statement {
        let mut statements = parse(sql).unwrap();
        assert_eq!(statements.len(), 1, "{sql}");
        statements.remove(0)
    }

    fn code(e: PgWireError) -> String {
        match e {
            PgWireError::UserError(info) => info.code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_statements_are_answered_here() {
        assert!(matches!(
            reply(&one("SET extra_float_digits = 3")).unwrap(),
            Some(Reply::Set { ref name, ref value }) if name == "extra_float_digits" && value == "3"
        ));
        assert!(matches!(
            reply(&one("SET application_name = 'psql'")).unwrap(),
            Some(Reply::Set { ref value, .. }) if value == "psql"
        ));
        assert!(matches!(reply(&one("BEGIN")).unwrap(), Some(Reply::Begin)));
        assert!(matches!(
            reply(&one("ROLLBACK")).unwrap(),
            Some(Reply::End("ROLLBACK"))
        ));
        assert!(matches!(
            reply(&one("DEALLOCATE ALL")).unwrap(),
            Some(Reply::Done("DEALLOCATE"))
        ));
        assert!(matches!(
            reply(&one("DISCARD ALL")).unwrap(),
            Some(Reply::Done(_))
        ));
        assert!(matches!(
            reply(&one("SHOW transaction_isolation")).unwrap(),
            Some(Reply::Show { ref value, .. }) if value == "read committed"
        ));
        assert!(
            reply(&one("SHOW datafusion.execution.batch_size"))
                .unwrap()
                .is_none()
        );
        assert!(reply(&one("SELECT 1")).unwrap().is_none());
        assert!(parse("-- ping").unwrap().is_empty());
    }

    #[tokio::test]
    async fn parameters_are_numbered_and_bounded() {
        let session = query::Engine::new_context();
        let plan = |sql: &'static str| {
            let session = session.clone();
            async move { session.state().create_logical_plan(sql).await.unwrap() }
        };
        let types = parameters(&plan("SELECT $2 = 'x' AND $1 = 1").await).unwrap();
        assert_eq!(types.len(), 2);
        let huge = parameters(&plan("SELECT $4000000000 = 1").await).unwrap_err();
        assert_eq!(code(huge), "42P02");
        assert!(parameters(&plan("SELECT 1").await).unwrap().is_empty());
    }

    #[test]
    fn engine_settings_and_writes_are_refused_with_their_sqlstate() {
        let set = reply(&one("SET datafusion.execution.memory_pool_size = '100G'")).unwrap_err();
        assert_eq!(code(set), "42501");
        for (sql, expected) in [
            ("DROP VIEW dora_monthly", "25006"),
            ("COPY (SELECT 1) TO '/tmp/x'", "25006"),
            ("INSERT INTO deployments VALUES (1)", "25006"),
            ("SELECT * FROM range(10)", "42501"),
            ("PREPARE q AS SELECT 1", "0A000"),
        ] {
            let statement = one(sql);
            let refusal = query::guard::check(&statement.to_string()).unwrap_err();
            assert_eq!(code(refused(refusal, &statement)), expected, "{sql}");
        }
    }
}
