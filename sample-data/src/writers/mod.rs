//! Format writers: turn the ground truth into the files each source would produce.

pub mod config;
pub mod cost_explorer;
pub mod cur;
pub mod devlake;
pub mod events;
pub mod focus;
pub mod git;
pub mod github;
pub mod pagerduty;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::GenerateError;

/// A buffered output file that names itself in every error.
pub struct OutFile {
    /// Where it is written.
    pub path: PathBuf,
    writer: BufWriter<File>,
}

impl OutFile {
    /// Creates (truncates) the file, and its parent directory.
    pub fn create(path: &Path) -> Result<Self, GenerateError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| GenerateError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let file = File::create(path).map_err(|source| GenerateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(OutFile {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 16, file),
        })
    }

    /// Writes bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), GenerateError> {
        self.writer
            .write_all(bytes)
            .map_err(|source| GenerateError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Writes a value as one compact JSON document (no newline).
    pub fn write_json<T: serde::Serialize>(&mut self, value: &T) -> Result<(), GenerateError> {
        serde_json::to_writer(&mut self.writer, value).map_err(|source| GenerateError::Json {
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes and closes, returning the path.
    pub fn finish(mut self) -> Result<PathBuf, GenerateError> {
        self.writer.flush().map_err(|source| GenerateError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.path)
    }
}
