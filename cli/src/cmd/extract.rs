use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use corpus::{PageExtraction, RunStatus, Store};
use extract::Options;
use rayon::prelude::*;
use serde::Serialize;

use crate::Global;
use crate::progress::Bar;
use corpus::Progress;

/// `zhcorpus extract PAGE.html [--url URL]`, or `zhcorpus extract --db corpus.db`
#[derive(Args)]
pub struct ExtractArgs {
    /// HTML files, as raw bytes in any charset. One JSON object per file is printed, one per
    /// line; with several files each carries its `file`. Without files, every page stored in
    /// the database is extracted again and its document created or replaced.
    #[arg(value_name = "PAGE")]
    pages: Vec<PathBuf>,

    /// The page's URL, to make image URLs absolute (with one page).
    #[arg(long, value_name = "URL")]
    url: Option<String>,

    /// The charset the server declared in Content-Type, if known; valid UTF-8 still wins.
    #[arg(long, value_name = "LABEL")]
    charset: Option<String>,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(flatten)]
    extraction: &'a extract::Extraction,
}

pub fn run(global: &Global, args: ExtractArgs) -> Result<()> {
    if args.pages.is_empty() {
        return run_db(global);
    }
    if args.url.is_some() && args.pages.len() > 1 {
        anyhow::bail!(BadInput("--url goes with a single page".to_string()));
    }
    let options = Options {
        url: args.url,
        http_charset: args.charset,
    };
    let several = args.pages.len() > 1;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // pages are extracted in parallel, a chunk at a time, and printed in the order given
    for chunk in args.pages.chunks(256) {
        let results: Vec<Result<extract::Extraction, corpus::Error>> = chunk
            .par_iter()
            .map(|page| {
                let bytes = std::fs::read(page).map_err(|err| corpus::Error::Input {
                    path: page.clone(),
                    err,
                })?;
                Ok(extract::extract(&bytes, &options))
            })
            .collect();
        for (page, extraction) in chunk.iter().zip(results) {
            let extraction = extraction?;
            let line = Line {
                file: several.then(|| page.display().to_string()),
                extraction: &extraction,
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush().context("writing to standard output")?;
    Ok(())
}

/// Pages per parallel chunk and per transaction in database mode.
const CHUNK: usize = 128;

/// Re-extracts every stored page: a chunk of pages is read, extracted in parallel, and its
/// documents written in one transaction.
fn run_db(global: &Global) -> Result<()> {
    let mut store = Store::open_existing(&global.db)?;
    let run = store.begin_run("extract", &serde_json::json!({}))?;
    let bar = Bar::new(global.quiet);
    bar.start("extract", None);
    let mut report = DbReport::default();
    let mut after = 0;
    let result = loop {
        let pages = match store.pages_after(after, CHUNK) {
            Ok(p) => p,
            Err(e) => break Err(e),
        };
        let Some(last) = pages.last() else {
            break Ok(());
        };
        after = last.id;
        let extractions: Vec<(i64, extract::Extraction, String)> = pages
            .par_iter()
            .map(|p| {
                let options = Options {
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
                Some(crawler::page_document(page_id, x, url))
            })
            .collect();
        match store.record_extractions(run, &docs) {
            Ok(c) => {
                report.created += c.created;
                report.updated += c.updated;
            }
            Err(e) => break Err(e),
        }
        bar.update(report.pages, report.pages);
    };
    bar.finish();
    let status = if result.is_ok() {
        RunStatus::Done
    } else {
        RunStatus::Failed
    };
    store.finish_run(run, status, &report)?;
    result?;
    println!(
        "extracted {} pages from {}: {} documents created, {} replaced, {} pages without main text",
        report.pages,
        global.db.display(),
        report.created,
        report.updated,
        report.empty
    );
    for (charset, n) in &report.charsets {
        println!("  {n:>8}  {charset}");
    }
    Ok(())
}

#[derive(Default, Serialize)]
struct DbReport {
    pages: u64,
    created: u64,
    updated: u64,
    empty: u64,
    charsets: std::collections::BTreeMap<String, u64>,
}

/// A usage mistake the command line parser cannot see.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}
