use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use corpus::{JsonlWriter, Selection, Store};

use crate::progress::Bar;
use crate::{Db, Global};

/// `zhcorpus export --db corpus.db [--kept-only] [--output docs.jsonl.zst]`
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    db: Db,

    /// Where to write; zstd-compressed when the name ends in `.zst`. Standard output by default.
    #[arg(long, short, value_name = "FILE", default_value = "-")]
    output: PathBuf,

    /// Only documents that no stage's verdict removed (clean rejections and dedup
    /// duplicates are left out): what goes into training.
    #[arg(long)]
    kept_only: bool,
}

pub fn run(global: &Global, args: ExportArgs) -> Result<()> {
    corpus::check_output(&args.output)?;
    let store = Store::open_existing(&args.db.db)?;
    let selection = if args.kept_only {
        Selection::Kept
    } else {
        Selection::All
    };
    if args.kept_only {
        let unjudged = store.unjudged()?;
        if unjudged.total() > 0 {
            tracing::warn!(
                "{} documents left out as unjudged: {}",
                unjudged.total(),
                crate::cmd::stats::unjudged(&unjudged)
            );
        }
    }
    let mut out = JsonlWriter::create(&args.output)?;
    let n = corpus::export::run(&store, selection, &mut out, &Bar::new(global.quiet))?;
    out.finish()?;
    if args.output != std::path::Path::new("-") {
        outln!("exported {n} documents to {}", args.output.display());
    }
    Ok(())
}
