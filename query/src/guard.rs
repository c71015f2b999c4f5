//! The statement guard of analysts' SQL (DESIGN §5 "SQL safety"): one statement, and only a
//! query (SELECT, WITH, VALUES), EXPLAIN of one, SHOW or DESCRIBE. It reads the statement with
//! DataFusion's own parser, so it judges exactly what the planner would plan; planning with
//! [`crate::engine::read_only`] options is the second line behind it.
//!
//! Row generators (`range`, `generate_series`, as table or as scalar functions) are refused here:
//! their output is not counted against a memory pool, so `range(1e12)` could take the server
//! down before any limit saw it. They are also removed from the analysts' session
//! ([`crate::Engine::analyst_session`]). For the same reason the functions whose result grows
//! with an argument (`repeat`, `array_repeat`, `lpad`, `rpad`) take that argument only as a
//! number literal of at most [`MAX_REPEAT`].

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::{self, Expr, ObjectName, TableFactor, Visit, Visitor};

/// Functions an analyst's statement may not call: unbounded row generators, and readers of
/// server files should one ever be registered.
const REFUSED_FUNCTIONS: &[&str] = &["range", "generate_series"];

/// Functions whose result's size is one of their arguments (by position): one value of
/// `array_repeat(1, 3e9)` is 24 GB, allocated before any memory pool sees it.
const AMPLIFIERS: &[(&str, usize)] =
    &[("repeat", 1), ("array_repeat", 1), ("lpad", 1), ("rpad", 1)];

/// The largest count or length an [`AMPLIFIERS`] call may ask for.
pub const MAX_REPEAT: u64 = 10_000;

/// Why a statement does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The text is not SQL DataFusion reads; `position` is where the parser stopped.
    #[error("{message}")]
    Syntax {
        /// The parser's message.
        message: String,
        /// `(line, column)`, from 1, when the parser gave one.
        position: Option<(u64, u64)>,
    },
    /// A statement that is not a read, or a function that is not allowed.
    #[error("{0}")]
    Refused(String),
}

/// Checks `sql` is one statement an analyst may run (see the module doc); returns it parsed.
pub fn check(sql: &str) -> Result<Statement, Refusal> {
    let mut statements = DFParser::parse_sql(sql).map_err(|e| {
        let message = e.strip_backtrace();
        Refusal::Syntax {
            position: position_in(&message),
            message,
        }
    })?;
    let statement = match (statements.pop_front(), statements.len()) {
        (None, _) => return Err(Refusal::Refused("the body holds no SQL statement".into())),
        (Some(statement), 0) => statement,
        (Some(_), more) => {
            return Err(Refusal::Refused(format!(
                "one statement per request: this body holds {}",
                more + 1
            )));
        }
    };
    allowed(&statement)?;
    Ok(statement)
}

fn allowed(statement: &Statement) -> Result<(), Refusal> {
    let refused = |what: &str| {
        Err(Refusal::Refused(format!(
            "{what} is refused: analysts' SQL is read-only (SELECT, WITH, VALUES, EXPLAIN, SHOW, \
             DESCRIBE)"
        )))
    };
    match statement {
        Statement::Statement(inner) => sql_statement(inner),
        Statement::Explain(explain) => allowed(&explain.statement),
        Statement::CreateExternalTable(_) => refused("CREATE EXTERNAL TABLE"),
        Statement::CopyTo(_) => refused("COPY"),
        Statement::Reset(_) => refused("RESET (of an engine setting)"),
    }
}

fn sql_statement(statement: &ast::Statement) -> Result<(), Refusal> {
    use ast::Statement as S;
    match statement {
        S::Query(_)
        | S::ShowTables { .. }
        | S::ShowViews { .. }
        | S::ShowColumns { .. }
        | S::ShowFunctions { .. }
        | S::ShowVariable { .. }
        | S::ShowVariables { .. }
        | S::ShowSchemas { .. }
        | S::ShowCatalogs { .. }
        | S::ShowDatabases { .. }
        | S::ShowCreate { .. }
        | S::ExplainTable { .. } => functions(statement),
        S::Explain { statement, .. } => sql_statement(statement),
        S::Insert(_) | S::Update(_) | S::Delete(_) | S::Merge(_) | S::Truncate(_) => {
            refuse_kind("DML", statement)
        }
        S::Copy { .. } => refuse_kind("COPY", statement),
        S::Set(_) => refuse_kind("SET (of an engine setting)", statement),
        S::Prepare { .. } | S::Execute { .. } | S::Deallocate { .. } => {
            refuse_kind("PREPARE/EXECUTE", statement)
        }
        S::StartTransaction { .. } | S::Commit { .. } | S::Rollback { .. } => {
            refuse_kind("a transaction statement", statement)
        }
        _ => refuse_kind("DDL or another statement that is not a read", statement),
    }
}

fn refuse_kind(kind: &str, statement: &ast::Statement) -> Result<(), Refusal> {
    let text = statement.to_string();
    let keyword = text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    Err(Refusal::Refused(format!(
        "{kind} is refused (`{keyword} …`): analysts' SQL is read-only (SELECT, WITH, VALUES, \
         EXPLAIN, SHOW, DESCRIBE)"
    )))
}

/// Refuses a call of one of [`REFUSED_FUNCTIONS`] anywhere in `statement` (FROM or expression).
fn functions(statement: &ast::Statement) -> Result<(), Refusal> {
    struct Calls;
    impl Visitor for Calls {
        type Break = String;
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
            match factor {
                TableFactor::Table {
                    name,
                    args: Some(_),
                    ..
                } => refused_name(name),
                TableFactor::Function { name, .. } => refused_name(name),
                _ => ControlFlow::Continue(()),
            }
        }
        fn pre_visit_select(&mut self, select: &ast::Select) -> ControlFlow<String> {
            match &select.into {
                Some(into) => ControlFlow::Break(format!(
                    "SELECT INTO {} is refused: it creates a table, and analysts' SQL is \
                     read-only",
                    into.name
                )),
                None => ControlFlow::Continue(()),
            }
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
            match expr {
                Expr::Function(call) => {
                    refused_name(&call.name)?;
                    bounded_size(call)
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    match statement.visit(&mut Calls) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(message) => Err(Refusal::Refused(message)),
    }
}

/// Breaks when `call` is one of [`AMPLIFIERS`] and its size argument is not a number literal of
/// at most [`MAX_REPEAT`].
fn bounded_size(call: &ast::Function) -> ControlFlow<String> {
    use ast::{FunctionArg, FunctionArgExpr, FunctionArguments, Value};
    let Some(name) = call
        .name
        .0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.to_ascii_lowercase())
    else {
        return ControlFlow::Continue(());
    };
    let Some((_, position)) = AMPLIFIERS.iter().find(|(n, _)| *n == name) else {
        return ControlFlow::Continue(());
    };
    let size = match &call.args {
        FunctionArguments::List(list) => match list.args.get(*position) {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(value)))) => {
                match &value.value {
                    Value::Number(text, _) => text.parse::<u64>().ok(),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    };
    match size {
        Some(size) if size <= MAX_REPEAT => ControlFlow::Continue(()),
        _ => ControlFlow::Break(format!(
            "function `{name}` is refused unless its argument {} is a number of at most \
             {MAX_REPEAT}: its result is allocated outside the query's memory limit",
            position + 1
        )),
    }
}

fn refused_name(name: &ObjectName) -> ControlFlow<String> {
    let last = name
        .0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.to_ascii_lowercase());
    match last {
        Some(name) if REFUSED_FUNCTIONS.contains(&name.as_str()) || name.starts_with("read_") => {
            ControlFlow::Break(format!(
                "function `{name}` is refused: it generates rows without bound (or reads server \
                 files) outside the query's memory limit"
            ))
        }
        _ => ControlFlow::Continue(()),
    }
}

/// The `(line, column)` of sqlparser's "… at Line: N, Column: M" in `message`.
pub fn position_in(message: &str) -> Option<(u64, u64)> {
    let rest = &message[message.rfind("Line: ")? + "Line: ".len()..];
    let (line, rest) = rest.split_once(',')?;
    let column = rest.trim_start().strip_prefix("Column: ")?;
    let digits: String = column.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> String {
        match check(sql) {
            Err(Refusal::Refused(message)) => message,
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn reads_pass() {
        for sql in [
            "SELECT 1",
            "select * from dora_monthly where scope = 'service'",
            "WITH m AS (SELECT 1 AS n) SELECT n FROM m",
            "VALUES (1, 'a'), (2, 'b')",
            "EXPLAIN SELECT * FROM deployments",
            "EXPLAIN ANALYZE SELECT count(*) FROM deployments",
            "SHOW TABLES",
            "SHOW COLUMNS FROM deployments",
            "SHOW ALL",
            "DESCRIBE dora_monthly",
            "SELECT 1;",
            "SELECT array_length(make_array(1, 2))",
        ] {
            assert!(check(sql).is_ok(), "{sql}: {:?}", check(sql));
        }
    }

    #[test]
    fn writes_settings_and_files_are_refused_by_kind() {
        for (sql, kind) in [
            ("INSERT INTO deployments VALUES (1)", "DML"),
            ("UPDATE deployments SET status = 'x'", "DML"),
            ("DELETE FROM deployments", "DML"),
            ("TRUNCATE TABLE deployments", "DML"),
            ("DROP VIEW dora_monthly", "DDL"),
            ("CREATE TABLE t AS SELECT 1", "DDL"),
            ("CREATE VIEW v AS SELECT 1", "DDL"),
            ("ALTER TABLE deployments RENAME TO d", "DDL"),
            ("COPY (SELECT 1) TO '/tmp/x'", "COPY"),
            ("COPY deployments TO '/tmp/x.parquet'", "COPY"),
            (
                "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
                "CREATE EXTERNAL TABLE",
            ),
            ("SET datafusion.execution.memory_pool_size = '100G'", "SET"),
            ("RESET datafusion.execution.batch_size", "RESET"),
            ("PREPARE q AS SELECT 1", "PREPARE"),
            ("EXECUTE q", "PREPARE"),
            ("BEGIN", "transaction"),
            ("EXPLAIN COPY (SELECT 1) TO '/tmp/x'", "COPY"),
            ("EXPLAIN INSERT INTO deployments VALUES (1)", "DML"),
        ] {
            let message = refused(sql);
            assert!(message.contains(kind), "{sql}: {message}");
            assert!(message.contains("read-only"), "{sql}: {message}");
        }
    }

    #[test]
    fn row_generators_are_refused_wherever_they_are_called() {
        for sql in [
            "SELECT * FROM range(1000000000000)",
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            "SELECT range(1, 1000000000)",
            "SELECT * FROM deployments WHERE 1 IN (SELECT unnest(generate_series(1, 10)))",
            "SELECT * FROM read_parquet('/etc/passwd')",
            "EXPLAIN SELECT * FROM RANGE(10)",
        ] {
            assert!(refused(sql).contains("function"), "{sql}");
        }
    }

    #[test]
    fn functions_that_grow_a_value_take_only_a_small_literal_size() {
        for sql in [
            "SELECT repeat('x', 3)",
            "SELECT lpad(service, 12, ' ') FROM deployments",
            "SELECT array_repeat(1, 10000)",
        ] {
            assert!(check(sql).is_ok(), "{sql}");
        }
        for sql in [
            "SELECT repeat('x', 300000000)",
            "SELECT length(repeat(change_id, 1000000)) FROM changes",
            "SELECT array_repeat(1, 3000000000)",
            "SELECT rpad('x', pr_number) FROM changes",
            "SELECT repeat('x', 2 * 5000)",
        ] {
            let message = refused(sql);
            assert!(message.contains("at most 10000"), "{sql}: {message}");
        }
    }

    #[test]
    fn select_into_and_deep_nesting_are_refused_before_planning() {
        assert!(refused("SELECT * INTO t FROM deployments").contains("SELECT INTO t"));
        assert!(refused("WITH d AS (SELECT 1) SELECT * INTO t FROM d").contains("SELECT INTO"));
        // The parser's recursion limit: an error, not a stack overflow.
        let deep = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(matches!(check(&deep), Err(Refusal::Syntax { .. })));
    }

    #[test]
    fn several_statements_or_none_are_refused() {
        assert!(refused("SELECT 1; SELECT 2").contains("this body holds 2"));
        assert!(refused("SELECT 1; DROP VIEW dora_monthly").contains("one statement"));
        assert!(refused("").contains("no SQL statement"));
        assert!(refused("  ;  ").contains("no SQL statement"));
    }

    #[test]
    fn a_syntax_error_carries_its_position() {
        match check("SELECT *\nFROM deployments WHERE a = = 1") {
            Err(Refusal::Syntax { position, message }) => {
                assert_eq!(position, Some((2, 28)), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            position_in("sql parser error: Expected: end, found: x at Line: 3, Column: 17"),
            Some((3, 17))
        );
        assert_eq!(position_in("no place"), None);
    }
}
