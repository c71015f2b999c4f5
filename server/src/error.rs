//! The server's one error type and its one rendering: a JSON body `{"error": {…}}` with the
//! status that says whose fault it is (STYLE "Servers").

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use query::QueryError;
use query::reports::ReportError;

/// What can go wrong answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A query-string parameter is malformed, unknown, or names nothing the config knows.
    #[error("{parameter}: {message}")]
    BadParameter {
        /// The parameter, as the client spelt it.
        parameter: String,
        /// What was expected.
        message: String,
    },
    /// A posted body is not what the endpoint reads: the message names the record and field.
    #[error("{message}")]
    BadPayload {
        /// What is wrong, and where.
        message: String,
        /// The field at fault, when known.
        field: Option<String>,
    },
    /// A posted body over `[server] max_body_bytes`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// No such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// A write endpoint without a valid bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The query engine is not open yet, or the lake cannot be read (503: try again).
    #[error("{0}")]
    Unavailable(String),
    /// A handler panicked: a defect.
    #[error("{0}")]
    Defect(String),
    /// A query over the views failed: a defect, or a lake the views cannot read.
    #[error("query failed: {0}")]
    Query(String),
    /// Analysts' SQL that is not a read, or calls a refused function (`POST /api/v1/sql`).
    #[error("{0}")]
    SqlRefused(String),
    /// Analysts' SQL that does not parse or plan: the place, when DataFusion gives one.
    #[error("{message}")]
    SqlInvalid {
        /// DataFusion's message.
        message: String,
        /// `(line, column)` from 1.
        position: Option<(u64, u64)>,
    },
    /// Analysts' SQL that planned and then failed on the data (a cast, a division by zero …).
    #[error("{0}")]
    SqlFailed(String),
    /// An analyst's query ran out of `[server] sql_memory_limit`.
    #[error("{0}")]
    OverMemory(String),
    /// An analyst's query ran past `[server] sql_timeout_seconds`.
    #[error("{0}")]
    OverTime(String),
    /// `[server] sql_max_concurrent` analysts' queries are running already.
    #[error("{0}")]
    Busy(String),
    /// No answer format the client accepts.
    #[error("{0}")]
    NotAcceptable(String),
    /// A body of a media type the endpoint does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
}

impl ServerError {
    /// A bad value of `parameter`.
    pub fn bad(parameter: impl Into<String>, message: impl Into<String>) -> ServerError {
        ServerError::BadParameter {
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ServerError::BadPayload { .. } => StatusCode::BAD_REQUEST,
            ServerError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::Query(_) | ServerError::Defect(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServerError::SqlRefused(_) | ServerError::SqlInvalid { .. } => StatusCode::BAD_REQUEST,
            ServerError::SqlFailed(_) | ServerError::OverMemory(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            // As every request over its time limit (see `crate::guard`).
            ServerError::OverTime(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ServerError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ServerError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// What went wrong, as a word a client can branch on (`error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            ServerError::BadParameter { .. } => "bad_parameter",
            ServerError::BadPayload { .. } => "bad_payload",
            ServerError::PayloadTooLarge(_) => "payload_too_large",
            ServerError::NotFound(_) => "not_found",
            ServerError::Unauthorized(_) => "unauthorized",
            ServerError::Unavailable(_) => "unavailable",
            ServerError::Defect(_) => "defect",
            ServerError::Query(_) => "query_failed",
            ServerError::SqlRefused(_) => "refused",
            ServerError::SqlInvalid { .. } => "invalid_sql",
            ServerError::SqlFailed(_) => "sql_failed",
            ServerError::OverMemory(_) => "memory_limit",
            ServerError::OverTime(_) => "time_limit",
            ServerError::Busy(_) => "busy",
            ServerError::NotAcceptable(_) => "not_acceptable",
            ServerError::UnsupportedMediaType(_) => "unsupported_media_type",
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        }
        let mut error = serde_json::json!({
            "status": status.as_u16(),
            "kind": self.kind(),
            "message": self.to_string(),
        });
        match &self {
            ServerError::BadParameter { parameter, .. } => {
                error["parameter"] = serde_json::Value::String(parameter.clone());
            }
            ServerError::BadPayload {
                field: Some(field), ..
            } => {
                error["field"] = serde_json::Value::String(field.clone());
            }
            ServerError::SqlInvalid {
                position: Some((line, column)),
                ..
            } => {
                error["position"] = serde_json::json!({ "line": line, "column": column });
            }
            _ => {}
        }
        let mut response = (status, Json(serde_json::json!({ "error": error }))).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<ReportError> for ServerError {
    fn from(err: ReportError) -> ServerError {
        ServerError::BadParameter {
            parameter: err.parameter.to_owned(),
            message: format!("`{}`: {}", err.value, err.message),
        }
    }
}

impl From<QueryError> for ServerError {
    fn from(err: QueryError) -> ServerError {
        match err {
            QueryError::Lake(_) | QueryError::Register { .. } => {
                ServerError::Unavailable(format!("the lake cannot be read: {err}"))
            }
            other => ServerError::Query(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(error: ServerError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn sql_errors_carry_their_kind_and_place() {
        let (status, _, json) = body(ServerError::SqlInvalid {
            message: "Expected: an expression, found: = at Line: 2, Column: 29".into(),
            position: Some((2, 29)),
        })
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["error"]["kind"], "invalid_sql");
        assert_eq!(
            json["error"]["position"],
            serde_json::json!({ "line": 2, "column": 29 })
        );
        let (status, headers, json) = body(ServerError::Busy("2 running".into())).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers.get("retry-after").unwrap(), "1");
        assert_eq!(json["error"]["kind"], "busy");
        let (status, _, json) = body(ServerError::OverMemory("over".into())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json["error"]["kind"], "memory_limit");
        assert!(json["error"].get("position").is_none());
    }
}
