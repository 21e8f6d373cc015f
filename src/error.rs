//! The crate's error type. Every variant's message names what the user must look at:
//! the YAML file and line, the HDF5 file and dataset, the jet index, or the output path.

use std::path::PathBuf;

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline YAML is unreadable or invalid (message carries file:line:column).
    #[error("{0}")]
    Config(String),
    /// A config file (pipeline, loader or training YAML) cannot be read.
    #[error("{path}: cannot read {what} config: {source}")]
    ConfigFile {
        path: PathBuf,
        what: String,
        source: std::io::Error,
    },
    /// An input file or dataset is missing or has the wrong shape, type or content.
    #[error("{file}: {msg}")]
    Source { file: PathBuf, msg: String },
    /// One jet cannot be converted.
    #[error("{file}: jet {index}: {msg}")]
    Jet {
        file: PathBuf,
        index: u64,
        msg: String,
    },
    /// The output location cannot be used as asked.
    #[error("{path}: {msg}")]
    Output { path: PathBuf, msg: String },
    /// An operating-system I/O failure on a named path.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Parquet encoding or decoding failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// An Arrow array could not be built.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The loader failed (message names the shard and row group, or the setting).
    #[error("{0}")]
    Loader(String),
    /// Training or scoring failed at run time (e.g. the model diverged, or its outputs could
    /// not be read back from the device); the message names the step, epoch or jet.
    #[error("training: {0}")]
    Train(String),
    /// A SQL query failed: `context` says which query or table.
    #[error("{context}: {source}")]
    Sql {
        context: String,
        source: datafusion::error::DataFusionError,
    },
    /// The run was stopped because another part of it failed.
    #[error("cancelled")]
    Cancelled,
    /// A bug or an unexpected runtime failure (e.g. a worker thread panicked); the message
    /// says where (stage, file and jet range).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Source`] for `file`.
    pub fn source(file: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Source {
            file: file.into(),
            msg: msg.into(),
        }
    }

    /// Process exit code: 2 for a bad config or input (including a SQL query that does not
    /// parse or plan), 1 for anything else (I/O, training, internal failures).
    pub fn exit_code(&self) -> i32 {
        use datafusion::error::DataFusionError as Df;
        match self {
            Error::Config(_)
            | Error::ConfigFile { .. }
            | Error::Loader(_)
            | Error::Source { .. }
            | Error::Jet { .. }
            | Error::Output { .. } => 2,
            Error::Sql { source, .. } => match source.find_root() {
                Df::SQL(..) | Df::Plan(..) | Df::SchemaError(..) | Df::NotImplemented(..) => 2,
                _ => 1,
            },
            _ => 1,
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
