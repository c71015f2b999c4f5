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
            _ => {}
        }
        let mut response = (status, Json(serde_json::json!({ "error": error }))).into_response();
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
