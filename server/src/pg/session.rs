//! One PostgreSQL connection: its handlers, the session it plans on, and what each statement
//! becomes. Client settings (`SET`), transactions, `DEALLOCATE`/`DISCARD` and the settings
//! `SHOW` knows are answered here and never reach DataFusion; everything else passes the guard
//! ([`query::guard::check`]: one read, no row generators), is planned with read-only options, and
//! runs where [`crate::analysts::Analysts`] bounds it, on the engine of the moment.

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast;
use datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::pgwire;
use futures::{Sink, StreamExt, stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ErrorHandler, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::types::format::FormatOptions;
use query::guard::Refusal;

use super::auth::Startup;
use super::catalog;
use crate::error::ServerError;
use crate::state::{AppState, LiveEngine};

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

/// One connection's handlers (pgwire asks for them once per connection).
pub(super) struct Connection {
    session: Arc<Session>,
    startup: Arc<Startup>,
}

impl Connection {
    /// Handlers for a new connection from `peer`.
    pub(super) fn new(state: AppState, peer: SocketAddr) -> Connection {
        let startup = Arc::new(Startup::new(state.options().pg_password.as_ref()));
        Connection {
            session: Arc::new(Session {
                planner: Arc::new(Planner {
                    state,
                    peer,
                    engine: Mutex::new(None),
                }),
            }),
            startup,
        }
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.session)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.session)
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(Errors {
            peer: self.session.planner.peer,
        })
    }
}

/// Logs the errors a connection's client is sent (never a password: SCRAM sends none).
struct Errors {
    peer: SocketAddr,
}

impl ErrorHandler for Errors {
    fn on_error<C: ClientInfo>(&self, _client: &C, error: &mut PgWireError) {
        tracing::debug!(peer = %self.peer, error = %error, "a PostgreSQL client was sent an error");
    }
}

/// A statement as the extended protocol keeps it between Parse and Execute.
#[derive(Clone, Debug)]
pub(super) enum Prepared {
    /// Answered here, without DataFusion.
    Reply(Reply),
    /// A checked read, run on the engine of the moment at each Execute.
    Read(Arc<Read>),
}

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

/// A read the guard let through.
#[derive(Debug)]
pub(super) struct Read {
    /// The statement as DataFusion reads it (catalog queries rewritten).
    sql: String,
    /// The answer's columns, planned at Parse (none over the simple protocol).
    schema: SchemaRef,
    /// The parameters' types DataFusion inferred, `$1` first.
    params: Vec<Option<DataType>>,
}

/// The connection's statements: plans them on its session.
pub(super) struct Planner {
    state: AppState,
    peer: SocketAddr,
    /// The session of the engine the last statement ran on, with the PostgreSQL catalog added
    /// (built again when the lake's engine changes).
    engine: Mutex<Option<(Arc<LiveEngine>, SessionContext)>>,
}

impl Planner {
    /// A session over the engine of the moment.
    fn session(&self) -> PgWireResult<SessionContext> {
        let live = self.state.engine().map_err(server_error)?;
        let mut cached = self
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((engine, session)) = cached.as_ref()
            && Arc::ptr_eq(engine, &live)
        {
            return Ok(session.clone());
        }
        let session = self.state.analysts().session(&live);
        catalog::prepare(&session).map_err(|e| {
            error(
                "XX000",
                format!("setting up the PostgreSQL catalog: {}", e.strip_backtrace()),
            )
        })?;
        *cached = Some((live, session.clone()));
        Ok(session)
    }

    /// The session's catalog (where the views are).
    fn catalog(&self) -> PgWireResult<String> {
        Ok(self
            .session()?
            .state()
            .config()
            .options()
            .catalog
            .default_catalog
            .clone())
    }

    /// The client's SQL as statements, refused over `[server] sql_max_body_bytes`.
    fn statements(&self, sql: &str) -> PgWireResult<Vec<ast::Statement>> {
        let most = self.state.analysts().limits().max_body_bytes;
        if sql.len() > most {
            return Err(error(
                "54000",
                format!(
                    "the query is over the limit of {most} bytes ([server] sql_max_body_bytes)"
                ),
            ));
        }
        parse(sql)
    }

    /// What `statement` becomes: a reply, or a checked read, planned when `describe` (the
    /// extended protocol describes its answer and parameters before running it; the simple one
    /// does not, and the read is planned once, where it runs).
    async fn prepare(&self, statement: ast::Statement, describe: bool) -> PgWireResult<Prepared> {
        if let Some(reply) = reply(&statement)? {
            return Ok(Prepared::Reply(reply));
        }
        let mut statement = statement;
        catalog::pg_information_schema(&mut statement, &self.catalog()?);
        let sql = statement.to_string();
        let checked = query::guard::check(&sql).map_err(|refusal| refused(refusal, &statement))?;
        if !describe {
            return Ok(Prepared::Read(Arc::new(Read {
                sql,
                schema: Arc::new(arrow::datatypes::Schema::empty()),
                params: Vec::new(),
            })));
        }
        let session = self.session()?;
        let plan = session
            .state()
            .statement_to_plan(checked)
            .await
            .map_err(|e| server_error(crate::analysts::planning_error(e)))?;
        query::engine::read_only()
            .verify_plan(&plan)
            .map_err(|e| error("25006", e.strip_backtrace()))?;
        Ok(Prepared::Read(Arc::new(Read {
            params: parameters(&plan)?,
            schema: Arc::new(plan.schema().as_arrow().clone()),
            sql,
        })))
    }

    /// Answers `prepared` to `client`, its rows in `format`.
    async fn respond<C: ClientInfo>(
        &self,
        client: &mut C,
        prepared: &Prepared,
        params: Option<datafusion::common::ParamValues>,
        format: &Format,
    ) -> PgWireResult<Response> {
        let read = match prepared {
            Prepared::Reply(reply) => return Ok(answer(client, reply)),
            Prepared::Read(read) => read,
        };
        let session = self.session()?;
        let batches = self
            .state
            .analysts()
            .batches(session, read.sql.clone(), params)
            .await
            .map_err(server_error)?;
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let fields = Arc::new(arrow_schema_to_pg_fields(
            &batches.schema,
            format,
            Some(options),
        )?);
        let encoding = Arc::clone(&fields);
        let rows = batches
            .map(move |batch| {
                let rows: Vec<PgWireResult<_>> = match batch {
                    Ok(batch) => encode_recordbatch(Arc::clone(&encoding), batch).collect(),
                    Err(e) => vec![Err(server_error(e))],
                };
                stream::iter(rows)
            })
            .flatten();
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }
}

/// The reply to a statement answered here, or none when it goes to the guard.
fn reply(statement: &ast::Statement) -> PgWireResult<Option<Reply>> {
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
fn answer<C: ClientInfo>(client: &mut C, reply: &Reply) -> Response {
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

fn show_fields(name: &str) -> Vec<FieldInfo> {
    vec![FieldInfo::new(
        name.to_owned(),
        None,
        None,
        Type::TEXT,
        FieldFormat::Text,
    )]
}

/// The types of `plan`'s placeholders, `$1` first (a gap is an unknown type).
fn parameters(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
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
fn parse(sql: &str) -> PgWireResult<Vec<ast::Statement>> {
    PARSER.parse(sql).map_err(|e| error("42601", e.to_string()))
}

/// The error a client is sent.
fn error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// A refused statement's error, its SQLSTATE by what was refused.
fn refused(refusal: Refusal, statement: &ast::Statement) -> PgWireError {
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
fn server_error(e: ServerError) -> PgWireError {
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

/// The connection's query handlers (simple and extended protocol).
pub(super) struct Session {
    planner: Arc<Planner>,
}

#[async_trait]
impl SimpleQueryHandler for Session {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = self.planner.statements(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            let prepared = self.planner.prepare(statement, false).await?;
            responses.push(
                self.planner
                    .respond(client, &prepared, None, &Format::UnifiedText)
                    .await?,
            );
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Session {
    type Statement = Prepared;
    type QueryParser = Planner;

    fn query_parser(&self) -> Arc<Planner> {
        Arc::clone(&self.planner)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let params = match prepared {
            Prepared::Read(read) if !read.params.is_empty() => {
                let types: Vec<Option<&DataType>> =
                    read.params.iter().map(Option::as_ref).collect();
                Some(deserialize_parameters(portal, &types)?)
            }
            _ => None,
        };
        self.planner
            .respond(client, prepared, params, &portal.result_column_format)
            .await
    }
}

#[async_trait]
impl QueryParser for Planner {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = self.statements(sql)?.into_iter();
        let Some(statement) = statements.next() else {
            return Ok(None);
        };
        if statements.next().is_some() {
            return Err(error(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        self.prepare(statement, true).await.map(Some)
    }

    fn get_parameter_types(&self, prepared: &Prepared) -> PgWireResult<Vec<Type>> {
        match prepared {
            Prepared::Read(read) => read
                .params
                .iter()
                .map(|datatype| match datatype {
                    Some(datatype) => {
                        datafusion_postgres::arrow_pg::datatypes::into_pg_type(datatype)
                    }
                    None => Ok(Type::UNKNOWN),
                })
                .collect(),
            Prepared::Reply(_) => Ok(Vec::new()),
        }
    }

    fn get_result_schema(
        &self,
        prepared: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match prepared {
            Prepared::Read(read) => arrow_schema_to_pg_fields(
                &read.schema,
                format.unwrap_or(&Format::UnifiedText),
                None,
            ),
            Prepared::Reply(Reply::Show { name, .. }) => Ok(show_fields(name)),
            Prepared::Reply(_) => Ok(Vec::new()),
        }
    }
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
