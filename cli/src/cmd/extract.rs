use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use corpus::Store;
use extract::Options;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::UsageError;
use crate::progress::Bar;
use crate::{Db, Global};

/// `zhcorpus extract PAGE.html [--url URL]`, or `zhcorpus extract --db corpus.db`
#[derive(Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    db: Db,

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
        return run_db(global, &args.db.db);
    }
    if args.url.is_some() && args.pages.len() > 1 {
        anyhow::bail!(UsageError("--url goes with a single page".to_string()));
    }
    let options = Options {
        url: args.url,
        http_charset: args.charset,
        // the output has no links
        skip_links: true,
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

/// Re-extracts every stored page (the `crawler` crate's job) and prints what it did.
fn run_db(global: &Global, db: &std::path::Path) -> Result<()> {
    let mut store = Store::open_existing(db)?;
    let report = crawler::reextract(&mut store, &Bar::new(global.quiet))?;
    outln!(
        "extracted {} pages from {}: {} documents created, {} replaced, {} pages without main text",
        report.pages,
        db.display(),
        report.created,
        report.updated,
        report.empty
    );
    for (charset, n) in &report.charsets {
        outln!("  {n:>8}  {charset}");
    }
    Ok(())
}
