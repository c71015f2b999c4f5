//! Errors of every source, each naming the input (file, line, column or field) and what was expected.

use std::path::PathBuf;

/// Where in an input a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file read.
    pub path: PathBuf,
    /// 1-based line (CSV: the physical line of the record, header = 1), when known.
    pub line: Option<u64>,
    /// Column or JSON field, when known.
    pub field: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": column `{field}`")?;
        }
        Ok(())
    }
}

/// An ingest failure.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The input is malformed at a known place.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What was expected and what was found.
        message: String,
    },
    /// The lake write a streamed read was feeding stopped (its own error says why).
    #[error("the write to the lake stopped")]
    Stopped,
    /// Building Arrow arrays failed (a bug, or data no schema can hold).
    #[error("{path}: {source}")]
    Arrow {
        /// The file being read.
        path: PathBuf,
        /// The cause.
        #[source]
        source: arrow::error::ArrowError,
    },
}

impl IngestError {
    /// A malformed-input error at `path`, `line`, `field`.
    pub fn invalid(
        path: impl Into<PathBuf>,
        line: Option<u64>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        IngestError::Invalid {
            at: Location {
                path: path.into(),
                line,
                field: field.map(str::to_owned),
            },
            message: message.into(),
        }
    }
}
