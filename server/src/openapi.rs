//! `GET /api/v1/openapi.json`: an OpenAPI 3.1 document built from the same [`RouteSpec`]s the
//! router mounts and the handlers check their parameters against, so it cannot list a route or a
//! parameter the server does not have.

use axum::Json;
use serde_json::{Map, Value, json};

use crate::params::{ParamKind, RouteSpec};

/// `GET /api/v1/openapi.json`.
pub const OPENAPI: RouteSpec = RouteSpec::get("/api/v1/openapi.json", "This document.", &[]);

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(document(crate::ROUTES))
}

/// The document for `routes`.
pub fn document(routes: &[&RouteSpec]) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let parameters: Vec<Value> = route
            .params
            .iter()
            .map(|p| {
                let schema = match p.kind {
                    ParamKind::Date => json!({ "type": "string", "format": "date" }),
                    ParamKind::Month => {
                        json!({ "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$" })
                    }
                    ParamKind::Name => json!({ "type": "string" }),
                    ParamKind::Choice(words) => json!({ "type": "string", "enum": words }),
                };
                json!({
                    "name": p.name, "in": "query", "required": false,
                    "description": p.description, "schema": schema,
                })
            })
            .collect();
        let mut responses = Map::new();
        let answers: Value = if route.path == crate::sql::SQL.path {
            json!({
                "application/json": {}, "text/csv": {},
                "application/vnd.apache.arrow.stream": {}, "application/vnd.apache.parquet": {},
            })
        } else {
            json!({ route.answers: {} })
        };
        responses.insert(
            "200".into(),
            json!({ "description": "the answer", "content": answers }),
        );
        if route.path == crate::sql::SQL.path {
            responses.insert(
                "406".into(),
                error_response("no answer format the client accepts"),
            );
            responses.insert(
                "415".into(),
                error_response("a body that is neither SQL text nor {\"sql\": …}"),
            );
            responses.insert(
                "422".into(),
                error_response(
                    "the query failed on the data, or ran out of [server] sql_memory_limit",
                ),
            );
            responses.insert(
                "429".into(),
                error_response("[server] sql_max_concurrent queries are running"),
            );
        }
        if !route.params.is_empty() || route.method == "POST" {
            responses.insert("400".into(), error_response("a bad parameter or body"));
        }
        if route.needs_token {
            responses.insert("401".into(), error_response("no or a wrong bearer token"));
            responses.insert("413".into(), error_response("the body is too large"));
        }
        responses.insert(
            "503".into(),
            error_response("the lake cannot be read or the engine is still opening"),
        );
        let mut operation = json!({
            "summary": route.summary,
            "operationId": operation_id(route),
            "parameters": parameters,
            "responses": responses,
        });
        if route.needs_token {
            operation["security"] = json!([{ "bearer": [] }]);
        }
        if route.path == crate::sql::SQL.path {
            let text =
                json!({ "schema": { "type": "string", "description": "one SQL statement" } });
            operation["requestBody"] = json!({
                "required": true,
                "content": {
                    "text/plain": text, "application/sql": text,
                    "application/json": { "schema": {
                        "type": "object", "required": ["sql"],
                        "properties": { "sql": { "type": "string" } },
                    } },
                },
            });
        } else if route.method == "POST" {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": {
                    "description": "a record, an array of records, an object of arrays, NDJSON, or a DevLake webhook payload (docs/events.md)"
                } } },
            });
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[route.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "doracost",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "DORA metrics and cloud cost per service (DESIGN §5).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": { "Error": {
                "type": "object",
                "required": ["error"],
                "properties": { "error": {
                    "type": "object",
                    "required": ["status", "kind", "message"],
                    "properties": {
                        "status": { "type": "integer" },
                        "kind": { "type": "string", "description": "what went wrong, e.g. refused, invalid_sql, memory_limit, time_limit, busy" },
                        "position": {
                            "type": "object",
                            "description": "where in the SQL, when DataFusion says",
                            "properties": { "line": { "type": "integer" }, "column": { "type": "integer" } },
                        },
                        "message": { "type": "string" },
                        "parameter": { "type": "string", "description": "the query-string parameter at fault" },
                        "field": { "type": "string", "description": "the body's field at fault" },
                    },
                } },
            } },
        },
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    })
}

/// `getApiV1Dora`, `postApiV1Events`.
fn operation_id(route: &RouteSpec) -> String {
    let mut id = route.method.to_ascii_lowercase();
    for word in route.path.split(['/', '-', '.']).filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}
