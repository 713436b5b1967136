use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::Global;
use crate::error::Interrupted;
use crate::progress::Bar;

/// `zhcorpus merge --output corpus.db worker1.db worker2.db ...`
#[derive(Args)]
pub struct MergeArgs {
    /// The merged store, written under a temporary name and renamed when complete. It must
    /// not exist or hold nothing.
    #[arg(long, short, value_name = "PATH")]
    output: PathBuf,

    /// The stores to merge (crawl workers', per-rank stores). Where two hold the same URL,
    /// a fetch that succeeded wins, then the store named first.
    #[arg(value_name = "STORE", required = true)]
    sources: Vec<PathBuf>,
}

pub fn run(global: &Global, args: MergeArgs) -> Result<()> {
    let progress = Bar::new(global.quiet);
    let result = corpus::merge::merge(&args.output, &args.sources, &progress);
    drop(progress);
    if crate::cmd::signals::cancelled() {
        return Err(Interrupted(
            "the merge was interrupted; nothing was written: run the same command again".into(),
        )
        .into());
    }
    let r = result?;
    outln!(
        "merged {} stores into {}: {} pages, {} documents, {} frontier URLs, {} image-text \
         candidates, {} images",
        r.sources,
        args.output.display(),
        r.pages,
        r.documents,
        r.frontier,
        r.image_pairs,
        r.images
    );
    if r.duplicate_pages + r.duplicate_documents > 0 {
        outln!(
            "  left out as already merged: {} pages (the same URL in two stores), {} documents",
            r.duplicate_pages,
            r.duplicate_documents
        );
    }
    if r.verdicts_left > 0 {
        outln!(
            "  {} verdicts not carried: run `zhcorpus clean` and `zhcorpus dedup` on {}",
            r.verdicts_left,
            args.output.display()
        );
    }
    Ok(())
}
