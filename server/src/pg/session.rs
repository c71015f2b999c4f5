//! One PostgreSQL connection: its handlers and the session it plans on. Client settings (`SET`),
//! transactions, `DEALLOCATE`/`DISCARD` and the settings `SHOW` knows are answered by the endpoint
//! ([`super::statement`]) and never reach DataFusion; everything else passes the guard
//! ([`query::guard::check`]: one read, no row generators), is planned with read-only options, and
//! runs where [`crate::analysts::Analysts`] bounds it, on the engine of the moment.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast;
use datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::pgwire;
use futures::{Sink, StreamExt, stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ErrorHandler, PgWireServerHandlers, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::types::format::FormatOptions;

use super::auth::Startup;
use super::catalog;
use super::cursor::{CursorStatement, Cursors, cursor_statement};
use super::statement::{
    Reply, answer, error, parameters, parse, refused, reply, server_error, show_fields,
};
use crate::state::{AppState, LiveEngine};

/// One connection's handlers (pgwire asks for them once per connection).
pub(super) struct Connection {
    session: Arc<Session>,
    startup: Arc<Startup>,
}

impl Connection {
    /// Handlers for a new connection from `peer`.
    pub(super) fn new(state: AppState, peer: SocketAddr) -> Connection {
        let startup = Arc::new(Startup::new(
            state.options().pg_password.as_ref(),
            state.options().pg_tls.is_some(),
        ));
        Connection {
            session: Arc::new(Session {
                planner: Arc::new(Planner {
                    state,
                    peer,
                    engine: Mutex::new(None),
                    cursors: Mutex::new(Cursors::default()),
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
    /// `DECLARE … CURSOR`, `FETCH` or `CLOSE` ([`super::cursor`]).
    Cursor(Arc<CursorStatement>),
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
    /// The connection's open cursors.
    cursors: Mutex<Cursors>,
}

impl Planner {
    fn cursors(&self) -> std::sync::MutexGuard<'_, Cursors> {
        self.cursors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

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
        if let Some(cursor) = cursor_statement(&statement)? {
            return Ok(Prepared::Cursor(Arc::new(cursor)));
        }
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
            Prepared::Reply(reply) => {
                if matches!(reply, Reply::End(_)) {
                    self.cursors().end_transaction();
                }
                return Ok(answer(client, reply));
            }
            Prepared::Cursor(statement) => return self.cursor(client, statement, format).await,
            Prepared::Read(read) => read,
        };
        let session = self.session()?;
        let batches = self
            .state
            .analysts()
            .batches(session, read.sql.clone(), params)
            .await
            .map_err(server_error)?;
        let schema = Arc::clone(&batches.schema);
        rows_response(client, &schema, batches, format)
    }

    /// Runs a cursor statement: a `DECLARE` runs its query (guarded and bounded as any read)
    /// and keeps the rows; a `FETCH` answers the next ones.
    async fn cursor<C: ClientInfo>(
        &self,
        client: &mut C,
        statement: &CursorStatement,
        format: &Format,
    ) -> PgWireResult<Response> {
        match statement {
            CursorStatement::Declare { name, hold, query } => {
                let mut query = query.clone();
                catalog::pg_information_schema(&mut query, &self.catalog()?);
                let sql = query.to_string();
                query::guard::check(&sql).map_err(|refusal| refused(refusal, &query))?;
                let mut batches = self
                    .state
                    .analysts()
                    .batches(self.session()?, sql, None)
                    .await
                    .map_err(server_error)?;
                let schema = Arc::clone(&batches.schema);
                let mut rows = Vec::new();
                while let Some(batch) = batches.next().await {
                    rows.push(batch.map_err(server_error)?);
                }
                self.cursors().declare(name, *hold, schema, rows)?;
                Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
            }
            CursorStatement::Fetch { name, count } => {
                let (schema, rows) = self.cursors().fetch(name, *count)?;
                rows_response(
                    client,
                    &schema,
                    stream::iter(rows.into_iter().map(Ok)),
                    format,
                )
            }
            CursorStatement::Close(name) => {
                self.cursors().close(name.as_deref())?;
                Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
            }
        }
    }
}

/// Rows as a query response in `format`, encoded as the client's settings ask.
fn rows_response<C: ClientInfo>(
    client: &C,
    schema: &SchemaRef,
    batches: impl futures::Stream<
        Item = Result<arrow::record_batch::RecordBatch, crate::error::ServerError>,
    > + Send
    + 'static,
    format: &Format,
) -> PgWireResult<Response> {
    let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
    let fields = Arc::new(arrow_schema_to_pg_fields(schema, format, Some(options))?);
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
            Prepared::Reply(_) | Prepared::Cursor(_) => Ok(Vec::new()),
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
            // A FETCH answers its cursor's columns (known once the cursor is declared).
            Prepared::Cursor(statement) => match statement.as_ref() {
                CursorStatement::Fetch { name, .. } => match self.cursors().schema(name) {
                    Some(schema) => arrow_schema_to_pg_fields(
                        &schema,
                        format.unwrap_or(&Format::UnifiedText),
                        None,
                    ),
                    None => Ok(Vec::new()),
                },
                _ => Ok(Vec::new()),
            },
            Prepared::Reply(_) => Ok(Vec::new()),
        }
    }
}
