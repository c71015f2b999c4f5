//! `POST /api/v1/sql`: read-only SQL for analysts over the views the dashboards use (DESIGN §5).
//! The statement is checked first ([`query::guard`]: one read, no row generators), planned with
//! read-only options as the second line, and run where [`crate::analysts`] bounds it; the answer
//! streams as JSON, CSV, Arrow IPC or Parquet by `Accept`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use query::encode::Encoding;
use query::guard::Refusal;

use crate::error::ServerError;
use crate::state::AppState;

/// `POST /api/v1/sql`.
pub const SQL: crate::RouteSpec = crate::RouteSpec {
    method: "POST",
    path: "/api/v1/sql",
    summary: "One read-only SQL statement (SELECT, WITH, VALUES, EXPLAIN, SHOW, DESCRIBE) as the body (text/plain or application/sql) or as {\"sql\": …} (application/json); the answer streamed by Accept: application/json (default; {columns, rows, row_count, truncated}), text/csv, application/vnd.apache.arrow.stream, application/vnd.apache.parquet. 400 refused or invalid SQL (with its position), 413 over [server] sql_max_body_bytes, 422 over sql_memory_limit, 429 over sql_max_concurrent, 503 over sql_timeout_seconds; at most sql_max_rows rows (X-Doracost-Row-Limit; \"truncated\" in JSON, the x-doracost-truncated trailer with TE: trailers).",
    params: &[],
    needs_token: true,
    answers: "application/json",
};

/// The encodings by the media types that ask for them, the first the default.
const MEDIA_TYPES: &[(&str, Encoding)] = &[
    ("application/json", Encoding::Json),
    ("text/csv", Encoding::Csv),
    ("application/vnd.apache.arrow.stream", Encoding::ArrowIpc),
    ("application/vnd.apache.parquet", Encoding::Parquet),
    ("application/x-parquet", Encoding::Parquet),
    ("application/*", Encoding::Json),
    ("text/*", Encoding::Csv),
    ("*/*", Encoding::Json),
];

/// `POST /api/v1/sql`.
pub async fn post_sql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    crate::auth::require(&headers, state.token())?;
    let encoding = encoding(&headers)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServerError::PayloadTooLarge(format!(
                "the query is over the limit of {} bytes ([server] sql_max_body_bytes)",
                state.analysts().limits().max_body_bytes
            ))
        } else {
            ServerError::BadPayload {
                message: rejection.body_text(),
                field: None,
            }
        }
    })?;
    let sql = statement(&headers, &body)?;
    query::guard::check(&sql).map_err(|refusal| match refusal {
        Refusal::Refused(message) => ServerError::SqlRefused(message),
        Refusal::Syntax { message, position } => ServerError::SqlInvalid { message, position },
    })?;
    let live = state.engine()?;
    let trailers = headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("trailers"));
    state.analysts().answer(live, sql, encoding, trailers).await
}

/// The statement: the body itself, or its `sql` member when the body is JSON.
fn statement(headers: &HeaderMap, body: &[u8]) -> Result<String, ServerError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let text = |body: &[u8]| {
        String::from_utf8(body.to_vec()).map_err(|e| ServerError::BadPayload {
            message: format!("the query is not UTF-8 text: {e}"),
            field: None,
        })
    };
    match content_type.as_deref() {
        // The form type is what `curl --data-binary` sends unless told otherwise: read as text.
        None
        | Some("text/plain")
        | Some("application/sql")
        | Some("application/x-www-form-urlencoded") => text(body),
        Some("application/json") => {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| ServerError::BadPayload {
                    message: format!("the body is not JSON: {e}"),
                    field: None,
                })?;
            match value.get("sql").and_then(serde_json::Value::as_str) {
                Some(sql) => Ok(sql.to_owned()),
                None => Err(ServerError::BadPayload {
                    message: "expected {\"sql\": \"SELECT …\"}".into(),
                    field: Some("sql".into()),
                }),
            }
        }
        Some(other) => Err(ServerError::UnsupportedMediaType(format!(
            "a body of type `{other}`: send the query as text/plain or application/sql, or as \
             {{\"sql\": …}} in application/json"
        ))),
    }
}

/// The encoding `Accept` asks for: the first of its media types (by quality, then order) that
/// is served; JSON without `Accept`.
fn encoding(headers: &HeaderMap) -> Result<Encoding, ServerError> {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept.is_empty() {
        return Ok(Encoding::Json);
    }
    let mut ranges: Vec<(f32, &str)> = accept
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';');
            let media = parts.next()?.trim();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (quality > 0.0 && !media.is_empty()).then_some((quality, media))
        })
        .collect();
    // Stable: equal qualities keep the client's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges
        .iter()
        .find_map(|(_, media)| {
            MEDIA_TYPES
                .iter()
                .find(|(served, _)| served.eq_ignore_ascii_case(media))
                .map(|(_, encoding)| *encoding)
        })
        .ok_or_else(|| {
            ServerError::NotAcceptable(format!(
                "no answer in `{}`: ask for application/json, text/csv, \
                 application/vnd.apache.arrow.stream or application/vnd.apache.parquet",
                accept.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(value: &str) -> Result<Encoding, ServerError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        encoding(&headers)
    }

    #[test]
    fn accept_picks_the_best_served_encoding() {
        assert_eq!(encoding(&HeaderMap::new()).unwrap(), Encoding::Json);
        assert_eq!(accepting("text/csv").unwrap(), Encoding::Csv);
        assert_eq!(
            accepting("application/vnd.apache.arrow.stream").unwrap(),
            Encoding::ArrowIpc
        );
        assert_eq!(
            accepting("application/x-parquet").unwrap(),
            Encoding::Parquet
        );
        assert_eq!(
            accepting("text/html, text/csv;q=0.5, application/json;q=0.9").unwrap(),
            Encoding::Json
        );
        assert_eq!(accepting("*/*").unwrap(), Encoding::Json);
        let refused = accepting("image/png").unwrap_err();
        assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
        assert!(accepting("text/csv;q=0").is_err());
    }

    #[test]
    fn the_statement_is_the_body_or_its_sql_member() {
        let mut headers = HeaderMap::new();
        assert_eq!(statement(&headers, b"SELECT 1").unwrap(), "SELECT 1");
        headers.insert(header::CONTENT_TYPE, "application/sql".parse().unwrap());
        assert_eq!(statement(&headers, b"SELECT 2").unwrap(), "SELECT 2");
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(
            statement(&headers, br#"{"sql": "SELECT 3"}"#).unwrap(),
            "SELECT 3"
        );
        assert_eq!(
            statement(&headers, br#"{"query": "SELECT 3"}"#)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
        headers.insert(header::CONTENT_TYPE, "image/png".parse().unwrap());
        assert_eq!(
            statement(&headers, b"x").unwrap_err().status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
