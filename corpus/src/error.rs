//! The store's error type. Every variant names the file, line or database it is about.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading input or using the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file cannot be opened or read (missing, unreadable, truncated compression).
    #[error("cannot read {path}: {err}")]
    Input { path: PathBuf, err: std::io::Error },

    /// One line of a JSONL input is not a valid document.
    #[error("{path}:{line}: {message}")]
    BadLine {
        path: PathBuf,
        line: u64,
        message: String,
    },

    /// The file exists but is not a zhcorpus database (another SQLite file, or not SQLite at all).
    #[error("{path} is not a zhcorpus database: {reason}")]
    NotOurs { path: PathBuf, reason: String },

    /// The database was written by a newer zhcorpus whose schema this build does not know.
    #[error(
        "{path} has schema version {found}, newer than the {supported} this zhcorpus knows; \
         upgrade zhcorpus to open it"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// A command that reads the store was pointed at a database that does not exist.
    #[error("database {path} does not exist (create one with `zhcorpus import --db {path}`)")]
    NoDatabase { path: PathBuf },

    /// SQLite failed on a database we own.
    #[error("database {path}: {err}")]
    Sqlite { path: PathBuf, err: rusqlite::Error },

    /// Another process is running the same stage on this store.
    #[error(
        "{path} is being written by another `zhcorpus {stage}` ({holder}); one {stage} at a \
         time per database: wait for it to finish or stop it"
    )]
    Busy {
        path: PathBuf,
        stage: String,
        holder: String,
    },

    /// A stage was asked to run before an earlier one finished on this store.
    #[error(
        "cannot {stage} {path}: {earlier} is incomplete: {why}; run `zhcorpus {earlier}` first"
    )]
    Incomplete {
        path: PathBuf,
        stage: String,
        earlier: String,
        why: String,
    },

    /// An output that cannot be written where it was asked for.
    #[error("output {path} {why}")]
    BadOutput { path: PathBuf, why: String },

    /// Writing an output file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when the error is the user's input (a bad file, line or database), as opposed to a
    /// failure of the machine or of zhcorpus. The CLI exits 2 for these and 1 otherwise.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Input { .. }
                | Error::BadLine { .. }
                | Error::NotOurs { .. }
                | Error::TooNew { .. }
                | Error::NoDatabase { .. }
                | Error::Busy { .. }
                | Error::BadOutput { .. }
                | Error::Incomplete { .. }
        )
    }
}
