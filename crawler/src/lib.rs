//! The crawler stage: a polite, resumable async crawler of the Chinese web.
//!
//! [`crawl`] reads seeds, keeps its frontier in the corpus database, obeys robots.txt
//! ([`robots`]), spaces its requests per host, and stores every response in `pages` with its
//! main text extracted into `documents` by the `extract` crate, in the same transaction as the
//! frontier update: a crawl killed at any moment and started again with the same command
//! resumes where it stood, without storing a page twice. This is the only async code of the
//! workspace.

mod engine;
pub mod fetch;
mod frontier;
pub mod images;
mod reextract;
pub mod robots;
mod serde_util;
pub mod shared;
pub mod sitemap;
pub mod urls;
pub mod warc;

use std::path::PathBuf;

use corpus::{Document, PageExtraction};

pub use engine::{Config, Report, crawl};
pub use fetch::{ErrorClass, FetchConfig};
pub use images::{ImageFetchConfig, ImageFetchReport, fetch_images, fetch_images_blocking};
pub use reextract::{ExtractReport, extract_stores, reextract};

/// The User-Agent sent unless told otherwise: the tool and where to learn about it.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "zhcorpus/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/zhcorpus/zhcorpus)"
);

/// A crawl that cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("seed {0:?} is not an http(s) URL")]
    BadSeed(String),
    /// A setting that cannot work: the key and the range it takes.
    #[error("invalid crawl setting {0}")]
    Config(String),
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error("writing WARC: {0}")]
    Warc(String),
    #[error(transparent)]
    Corpus(#[from] corpus::Error),
    /// The shared frontier could not be reached when the crawl started: nothing was written.
    #[error("shared frontier unreachable: {0}")]
    FrontierUnreachable(String),
    /// The shared frontier failed during the crawl (what was committed is kept).
    #[error("shared frontier {0}")]
    Frontier(String),
}

/// Runs [`crawl`] on a runtime of its own, as many worker threads as rayon's global pool
/// (the process's thread budget), for callers that have none: the crawl is the workspace's
/// only async code. It stops, as on `shutdown`, once `progress.cancelled()` says so.
pub fn crawl_blocking(
    store: &mut corpus::Store,
    config: Config,
    progress: &dyn corpus::Progress,
) -> Result<Report, Error> {
    runtime()?.block_on(crawl(store, config, progress, until_cancelled(progress)))
}

/// A runtime of its own for a blocking call: as many worker threads as rayon's global pool.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(rayon::current_num_threads().max(1))
        .enable_all()
        .build()
        .map_err(|e| Error::Client(format!("starting the async runtime: {e}")))
}

/// Completes once `progress.cancelled()` says so (checked every 100 ms).
async fn until_cancelled(progress: &dyn corpus::Progress) {
    while !progress.cancelled() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl Error {
    /// True when the error is the user's input (a seed, a setting, a file or database given),
    /// as opposed to a failure of the network, the machine or zhcorpus.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::BadSeed(_) | Error::Config(_) | Error::FrontierUnreachable(_) => true,
            Error::Corpus(e) => e.is_bad_input(),
            Error::Client(_) | Error::Io { .. } | Error::Warc(_) | Error::Frontier(_) => false,
        }
    }
}

/// The document of an extracted page: stable id from its URL, source its host, the date as
/// `created`, the author among the other fields. `page_id` is set when the page is stored.
pub fn page_document(page_id: i64, x: extract::Extraction, url: String) -> PageExtraction {
    let mut doc = Document::new(corpus::page_document_id(&url), x.text);
    doc.source = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string));
    doc.url = Some(url);
    doc.title = x.title;
    doc.created = x.published;
    if let Some(author) = x.author {
        doc.extra.insert("author".to_string(), author.into());
    }
    PageExtraction {
        page_id,
        doc,
        charset: x.charset.name,
        charset_source: x.charset.source.as_str().to_string(),
        images: x
            .images
            .into_iter()
            .map(|i| corpus::ImageCandidate {
                url: i.src,
                alt: i.alt,
                title: i.title,
                caption: i.caption,
                caption_source: i.caption_source.map(|s| s.as_str().to_string()),
                context: i.context,
            })
            .collect(),
    }
}
