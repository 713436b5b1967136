//! `zhcorpus report`: one self-contained HTML page that shows what a corpus is made of, from
//! the crawl to the trained model, and the same numbers as JSON.
//!
//! [`build`] reads the store (through `corpus::report`), the shard manifest, the tokenizer
//! and the run's metrics into a [`Report`]; [`render`] draws it as HTML with inline SVG
//! charts and no script, so that the page opens offline and makes no request; [`write`]
//! writes it under a temporary name and renames it.

mod build;
mod html;

use std::path::{Path, PathBuf};

pub use build::{EXAMPLE_CHARS, Report, SourceFunnel};

/// What the report reads besides the store; each is optional, and the page says what is
/// missing.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The training run's folder (`metrics.jsonl`).
    pub run: Option<PathBuf>,
    /// The token shards' folder (`manifest.json`).
    pub shards: Option<PathBuf>,
    /// A `tokenizer.json`.
    pub tokenizer: Option<PathBuf>,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] corpus::Error),
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    /// A file that is there but cannot be read as what it should be.
    #[error("{}: {why}", path.display())]
    Invalid { path: PathBuf, why: String },
}

/// The report of `store` and the files of `inputs`.
pub fn build(store: &corpus::Store, inputs: &Inputs) -> Result<Report, Error> {
    build::build(store, inputs)
}

/// The report as one HTML page.
pub fn render(report: &Report) -> String {
    html::render(report)
}

/// Writes `html` to `path` through a temporary file in the same folder, renamed when
/// complete.
pub fn write(path: &Path, html: &str) -> Result<(), Error> {
    let io = |err| Error::Io {
        path: path.to_path_buf(),
        err,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, html).map_err(|err| Error::Io {
        path: tmp.clone(),
        err,
    })?;
    std::fs::rename(&tmp, path).map_err(io)
}
