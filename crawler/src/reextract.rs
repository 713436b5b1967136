//! Extracting the stored pages again: after an extractor upgrade, every page's document is
//! created or replaced (with the verdicts on its old text cleared) from the raw bytes kept in
//! `pages`.

use std::collections::BTreeMap;

use corpus::{PageExtraction, Progress, RunStatus, Store};
use rayon::prelude::*;
use serde::Serialize;

use crate::Error;

/// Pages per parallel chunk and per transaction.
const CHUNK: usize = 128;

/// What re-extraction did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ExtractReport {
    pub pages: u64,
    pub created: u64,
    pub updated: u64,
    /// Pages whose extraction found no main text (no document).
    pub empty: u64,
    /// Pages by the charset chosen and how it was decided.
    pub charsets: BTreeMap<String, u64>,
}

/// Extracts every stored page again, a chunk at a time in parallel, each chunk's documents
/// written in one transaction; recorded as an `extract` run.
pub fn reextract(store: &mut Store, progress: &dyn Progress) -> Result<ExtractReport, Error> {
    // documents of pages are the crawl's: not while a crawl writes them
    store.lock_stage("crawl")?;
    let run = store.begin_run("extract", &serde_json::json!({}))?;
    progress.start("extract", None);
    let mut report = ExtractReport::default();
    let result = (|| -> Result<(), corpus::Error> {
        let mut after = 0;
        loop {
            let pages = store.pages_after(after, CHUNK)?;
            let Some(last) = pages.last() else {
                return Ok(());
            };
            after = last.id;
            let extractions: Vec<(i64, extract::Extraction, String)> = pages
                .par_iter()
                .map(|p| {
                    let options = extract::Options {
                        url: Some(p.effective_url().to_string()),
                        http_charset: p.http_charset().map(str::to_string),
                    };
                    (
                        p.id,
                        extract::extract(&p.body, &options),
                        p.effective_url().to_string(),
                    )
                })
                .collect();
            report.pages += extractions.len() as u64;
            let docs: Vec<PageExtraction> = extractions
                .into_iter()
                .filter_map(|(page_id, x, url)| {
                    *report
                        .charsets
                        .entry(format!("{} ({:?})", x.charset.name, x.charset.source))
                        .or_default() += 1;
                    if x.text.is_empty() {
                        report.empty += 1;
                        return None;
                    }
                    Some(crate::page_document(page_id, x, url))
                })
                .collect();
            let c = store.record_extractions(run, &docs)?;
            report.created += c.created;
            report.updated += c.updated;
            progress.update(report.pages, report.pages);
        }
    })();
    progress.finish();
    let status = RunStatus::of(&result);
    store.finish_run(run, status, &report)?;
    result?;
    Ok(report)
}
