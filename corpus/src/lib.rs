//! The corpus: zhcorpus's document model, its SQLite store, and JSONL(.zst) files.
//!
//! Every stage reads what the one before it wrote through this crate and writes only its own
//! tables; documents are never rewritten, and "what goes into training" is a query over the
//! verdicts ([`Selection::Kept`]). All SQL of the project lives here.
//!
//! ```
//! use corpus::{Document, Selection, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let mut store = Store::open(dir.path().join("corpus.db"))?;
//! store.insert_documents(None, &[Document::new("a", "今天的天气很好，适合出门散步。")])?;
//! let docs: Vec<_> = store.documents(Selection::All).collect::<Result<_, _>>()?;
//! assert_eq!(docs[0].doc.text, "今天的天气很好，适合出门散步。");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod document;
mod error;
pub mod export;
mod frontier;
pub mod images;
pub mod import;
mod jsonl;
pub mod merge;
mod pages;
mod progress;
pub mod report;
pub mod schema;
pub mod shard;
pub mod shards;
mod stats;
mod store;

pub use document::{Document, text_hash_id};
pub use error::{Error, Result};
pub use frontier::{
    BatchWritten, CrawlBatch, CrawlStatus, FinalState, Finished, HostRobots, NewUrl, QueuedUrl,
    UrlKind,
};
pub use jsonl::{
    InvalidLines, JsonlReader, JsonlWriter, check_output, read_all, read_all_skipping,
    remove_partial_files,
};
pub use pages::{
    ExtractionCounts, ImageCandidate, NewPage, PageExtraction, StoredPage, charset_param,
    page_document_id,
};
pub use progress::{NoProgress, Progress};
pub use stats::{Count, RunSummary, SourceStats, Stats, VerdictStats};
pub use store::{
    CleanVerdict, DedupKind, DedupVerdict, DocumentIter, LastRun, RunId, RunStatus, Selection,
    Store, StoredDocument, Unjudged,
};
