//! Image-text pairs after the fetch: every pair judged by rules on the image and the caption,
//! each verdict recorded with its reason and the value measured ([`filter`]); exact and
//! near-duplicate images found by content hash and a perceptual hash; kept pairs written as
//! WebDataset tar shards ([`export`]).
//!
//! The crawler finds the candidates (the extractor chooses each image's caption) and fetches
//! the images (`crawler::fetch_images`); this crate reads what it stored and writes only its
//! own tables (`image_checks`, `image_verdicts`) and the export's files.

pub mod check;
pub mod export;
pub mod filter;
pub mod jpeg;

use std::path::PathBuf;

pub use export::{ExportConfig, ExportReport, export};
pub use filter::{FilterConfig, FilterReport, filter, filter_and_export};

/// A filter or export that cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting that cannot work: the key and the range it takes.
    #[error("invalid images setting {0}")]
    Config(String),
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    /// The output exists and holds files.
    #[error("{}: the output folder is not empty; choose another or remove it", .0.display())]
    OutputExists(PathBuf),
    /// Stopped on request; the run is left unfinished and judged nothing.
    #[error("interrupted: run the same command to go on")]
    Interrupted,
    /// The store's verdicts cannot be exported as they are.
    #[error("{0}")]
    NotJudged(String),
    #[error("image pair {pair} ({url}): {why}")]
    Encode { pair: i64, url: String, why: String },
    #[error(transparent)]
    Corpus(#[from] corpus::Error),
}

impl Error {
    /// True when the error is the user's input (a setting, an output folder, the database).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Config(_) | Error::OutputExists(_) | Error::NotJudged(_) => true,
            Error::Corpus(e) => e.is_bad_input(),
            Error::Io { .. } | Error::Encode { .. } | Error::Interrupted => false,
        }
    }
}
