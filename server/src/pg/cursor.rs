//! Cursors (`DECLARE … CURSOR FOR`, `FETCH`, `CLOSE`): psql's `FETCH_COUNT`, psycopg's named
//! cursors and BI tools page through a big answer with them. A cursor's query passes the same
//! guard and limits as any read; its rows (at most `[server] sql_max_rows`) are kept for this
//! connection until fetched, closed, or the transaction ends (`WITH HOLD`: the connection).
//! Cursors only go forward (`NO SCROLL`): `FETCH PRIOR`, `BACKWARD`, `ABSOLUTE`… are refused.

use std::collections::{HashMap, VecDeque};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast;
use datafusion_postgres::pgwire::error::PgWireResult;

use super::statement::error;

/// The most cursors one connection keeps open.
const MAX_OPEN: usize = 16;

/// A cursor statement, as the connection runs it.
#[derive(Debug, Clone)]
pub(super) enum CursorStatement {
    /// `DECLARE name CURSOR [WITH HOLD] FOR query`.
    Declare {
        /// The cursor's name.
        name: String,
        /// `WITH HOLD`: it outlives the transaction.
        hold: bool,
        /// Its query, a read (checked by the guard where it runs).
        query: ast::Statement,
    },
    /// `FETCH [FORWARD] n | NEXT | ALL FROM name`.
    Fetch {
        /// The cursor's name.
        name: String,
        /// How many rows; `None` for all that are left.
        count: Option<usize>,
    },
    /// `CLOSE name` or `CLOSE ALL`.
    Close(Option<String>),
}

/// `statement` as a cursor statement, if it is one; an unsupported form is an error.
pub(super) fn cursor_statement(
    statement: &ast::Statement,
) -> PgWireResult<Option<CursorStatement>> {
    use ast::Statement as S;
    Ok(Some(match statement {
        S::Declare { stmts } => {
            let [declare] = stmts.as_slice() else {
                return Err(error("0A000", "DECLARE one cursor at a time"));
            };
            let (Some(ast::DeclareType::Cursor), Some(query), [name]) = (
                &declare.declare_type,
                &declare.for_query,
                declare.names.as_slice(),
            ) else {
                return Err(error(
                    "0A000",
                    "only `DECLARE name CURSOR FOR query` is supported here",
                ));
            };
            if declare.scroll == Some(true) {
                return Err(error(
                    "0A000",
                    "SCROLL cursors are not supported: cursors here only go forward (NO SCROLL)",
                ));
            }
            CursorStatement::Declare {
                name: name.value.clone(),
                hold: declare.hold == Some(true),
                query: S::Query(query.clone()),
            }
        }
        S::Fetch {
            name, direction, ..
        } => {
            use ast::FetchDirection as D;
            let count = match direction {
                D::Next | D::Forward { limit: None } => Some(1),
                D::Count { limit } | D::Forward { limit: Some(limit) } => Some(rows(limit)?),
                D::All | D::ForwardAll => None,
                other => {
                    return Err(error(
                        "55000",
                        format!("FETCH {other}: cursors here only go forward (NO SCROLL)"),
                    ));
                }
            };
            CursorStatement::Fetch {
                name: name.value.clone(),
                count,
            }
        }
        S::Close { cursor } => CursorStatement::Close(match cursor {
            ast::CloseCursor::All => None,
            ast::CloseCursor::Specific { name } => Some(name.value.clone()),
        }),
        _ => return Ok(None),
    }))
}

fn rows(limit: &ast::ValueWithSpan) -> PgWireResult<usize> {
    match &limit.value {
        ast::Value::Number(text, _) => text.parse().map_err(|_| {
            error(
                "22023",
                format!("FETCH {text}: expected a row count of 0 or more"),
            )
        }),
        other => Err(error(
            "22023",
            format!("FETCH {other}: expected a row count"),
        )),
    }
}

/// A declared cursor's rows not fetched yet.
struct Cursor {
    schema: SchemaRef,
    rows: VecDeque<RecordBatch>,
    hold: bool,
}

/// One connection's open cursors.
#[derive(Default)]
pub(super) struct Cursors {
    open: HashMap<String, Cursor>,
}

impl Cursors {
    /// Opens cursor `name` over `rows`.
    pub(super) fn declare(
        &mut self,
        name: &str,
        hold: bool,
        schema: SchemaRef,
        rows: Vec<RecordBatch>,
    ) -> PgWireResult<()> {
        if self.open.contains_key(name) {
            return Err(error("42P03", format!("cursor \"{name}\" already exists")));
        }
        if self.open.len() >= MAX_OPEN {
            return Err(error(
                "53000",
                format!("at most {MAX_OPEN} cursors are open on one connection: CLOSE one first"),
            ));
        }
        self.open.insert(
            name.to_owned(),
            Cursor {
                schema,
                rows: rows.into(),
                hold,
            },
        );
        Ok(())
    }

    /// The next `count` rows of cursor `name` (all that are left for `None`).
    pub(super) fn fetch(
        &mut self,
        name: &str,
        count: Option<usize>,
    ) -> PgWireResult<(SchemaRef, Vec<RecordBatch>)> {
        let cursor = self
            .open
            .get_mut(name)
            .ok_or_else(|| error("34000", format!("cursor \"{name}\" does not exist")))?;
        let mut wanted = count.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        while wanted > 0 {
            let Some(batch) = cursor.rows.pop_front() else {
                break;
            };
            if batch.num_rows() <= wanted {
                wanted -= batch.num_rows();
                out.push(batch);
            } else {
                out.push(batch.slice(0, wanted));
                cursor
                    .rows
                    .push_front(batch.slice(wanted, batch.num_rows() - wanted));
                wanted = 0;
            }
        }
        Ok((cursor.schema.clone(), out))
    }

    /// The columns of cursor `name`, if it is open.
    pub(super) fn schema(&self, name: &str) -> Option<SchemaRef> {
        self.open.get(name).map(|c| c.schema.clone())
    }

    /// Closes cursor `name` (every cursor for `None`).
    pub(super) fn close(&mut self, name: Option<&str>) -> PgWireResult<()> {
        match name {
            None => self.open.clear(),
            Some(name) => {
                self.open
                    .remove(name)
                    .ok_or_else(|| error("34000", format!("cursor \"{name}\" does not exist")))?;
            }
        }
        Ok(())
    }

    /// The transaction ended: its cursors close, those declared `WITH HOLD` stay.
    pub(super) fn end_transaction(&mut self) {
        self.open.retain(|_, cursor| cursor.hold);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn statement(sql: &str) -> ast::Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    fn batch(values: std::ops::Range<i64>) -> RecordBatch {
        RecordBatch::try_from_iter([(
            "n",
            Arc::new(Int64Array::from_iter_values(values)) as arrow::array::ArrayRef,
        )])
        .unwrap()
    }

    #[test]
    fn psql_and_psycopg_cursor_statements_are_read() {
        let declare = cursor_statement(&statement(
            "DECLARE _psql_cursor NO SCROLL CURSOR FOR SELECT 1",
        ))
        .unwrap();
        assert!(
            matches!(declare, Some(CursorStatement::Declare { ref name, hold: false, .. }) if name == "_psql_cursor")
        );
        let held =
            cursor_statement(&statement("DECLARE \"c1\" CURSOR WITH HOLD FOR SELECT 1")).unwrap();
        assert!(matches!(
            held,
            Some(CursorStatement::Declare { hold: true, .. })
        ));
        for (sql, count) in [
            ("FETCH FORWARD 100 FROM _psql_cursor", Some(100)),
            ("FETCH 5 FROM c", Some(5)),
            ("FETCH NEXT FROM c", Some(1)),
            ("FETCH ALL FROM c", None),
            ("FETCH FORWARD ALL FROM c", None),
        ] {
            let fetch = cursor_statement(&statement(sql)).unwrap();
            assert!(
                matches!(fetch, Some(CursorStatement::Fetch { count: c, .. }) if c == count),
                "{sql}"
            );
        }
        assert!(cursor_statement(&statement("FETCH BACKWARD 2 FROM c")).is_err());
        assert!(cursor_statement(&statement("DECLARE c SCROLL CURSOR FOR SELECT 1")).is_err());
        assert!(matches!(
            cursor_statement(&statement("CLOSE ALL")).unwrap(),
            Some(CursorStatement::Close(None))
        ));
        assert!(cursor_statement(&statement("SELECT 1")).unwrap().is_none());
    }

    #[test]
    fn fetches_page_through_the_rows_and_transactions_close_cursors() {
        let mut cursors = Cursors::default();
        let schema = batch(0..0).schema();
        cursors
            .declare("c", false, schema.clone(), vec![batch(0..3), batch(3..10)])
            .unwrap();
        cursors
            .declare("held", true, schema.clone(), vec![batch(0..2)])
            .unwrap();
        assert!(
            cursors
                .declare("c", false, schema.clone(), Vec::new())
                .is_err()
        );
        let rows =
            |batches: Vec<RecordBatch>| batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        // 10 rows in pages of 4: 4, 4, 2, then none.
        assert_eq!(rows(cursors.fetch("c", Some(4)).unwrap().1), 4);
        assert_eq!(rows(cursors.fetch("c", Some(4)).unwrap().1), 4);
        assert_eq!(rows(cursors.fetch("c", Some(4)).unwrap().1), 2);
        assert_eq!(rows(cursors.fetch("c", None).unwrap().1), 0);
        cursors.end_transaction();
        assert!(cursors.fetch("c", Some(1)).is_err());
        assert_eq!(rows(cursors.fetch("held", None).unwrap().1), 2);
        cursors.close(Some("held")).unwrap();
        assert!(cursors.close(Some("held")).is_err());
    }
}
