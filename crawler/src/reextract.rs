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
                        skip_links: true,
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

/// Extracts the stored pages of `stores` (in order, each store's pages in the order they were
/// stored) into JSONL documents at `output`, as the crawl extracts them, recording nothing in
/// the stores: the extract step of a run split over tasks, one task per group of crawl
/// workers' stores. Pages without main text make no document; of several pages of one URL,
/// the first makes it (the others are counted as `updated`). Across tasks a URL stored by two
/// workers makes two documents, which dedup's exact check removes when their texts agree.
pub fn extract_stores(
    stores: &[std::path::PathBuf],
    output: &std::path::Path,
    progress: &dyn Progress,
) -> Result<ExtractReport, Error> {
    corpus::check_output(output)?;
    let mut out = corpus::JsonlWriter::create(output)?;
    let mut report = ExtractReport::default();
    // one document per id (per URL), the first page's, as a store keeps it
    let mut written: std::collections::HashSet<String> = Default::default();
    progress.start("extract", None);
    for path in stores {
        let store = Store::open_existing(path)?;
        let mut after = 0;
        loop {
            let pages = store.pages_after(after, CHUNK)?;
            let Some(last) = pages.last() else {
                break;
            };
            after = last.id;
            let docs: Vec<(String, Option<PageExtraction>)> = pages
                .par_iter()
                .map(|p| {
                    let options = extract::Options {
                        url: Some(p.effective_url().to_string()),
                        http_charset: p.http_charset().map(str::to_string),
                        skip_links: true,
                    };
                    let x = extract::extract(&p.body, &options);
                    let charset = format!("{} ({:?})", x.charset.name, x.charset.source);
                    let doc = (!x.text.is_empty())
                        .then(|| crate::page_document(p.id, x, p.effective_url().to_string()));
                    (charset, doc)
                })
                .collect();
            for (charset, doc) in docs {
                report.pages += 1;
                *report.charsets.entry(charset).or_default() += 1;
                match doc {
                    Some(d) if written.insert(d.doc.id.clone()) => {
                        out.write(&d.doc)?;
                        report.created += 1;
                    }
                    Some(_) => report.updated += 1,
                    None => report.empty += 1,
                }
            }
            progress.update(report.pages, report.pages);
        }
    }
    out.finish()?;
    progress.finish();
    Ok(report)
}
