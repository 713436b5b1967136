use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use corpus::Store;

use crate::{Db, Global};

/// `zhcorpus report --db corpus.db [--run DIR] [--shards DIR] [--tokenizer FILE] [--output FILE]`
#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    db: Db,

    /// The training run's folder: its `metrics.jsonl` draws the training section.
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,

    /// The token shards' folder: its `manifest.json` gives the funnel's tokens.
    #[arg(long, value_name = "DIR")]
    shards: Option<PathBuf>,

    /// A `tokenizer.json`: characters per token per source, the vocabulary's Chinese tokens.
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,

    /// The HTML file to write (one self-contained page).
    #[arg(short, long, value_name = "FILE", default_value = "report.html")]
    output: PathBuf,

    /// Print the report's numbers as one JSON object instead of writing the page.
    #[arg(long)]
    json: bool,
}

pub fn run(global: &Global, args: ReportArgs) -> Result<()> {
    let _ = global;
    let started = Instant::now();
    let store = Store::open_existing(&args.db.db)?;
    let inputs = report::Inputs {
        run: args.run,
        shards: args.shards,
        tokenizer: args.tokenizer,
    };
    let built = report::build(&store, &inputs)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&built)?);
        return Ok(());
    }
    let html = report::render(&built);
    report::write(&args.output, &html)?;
    outln!(
        "wrote {} ({:.1} KiB in {:.2} s)",
        args.output.display(),
        html.len() as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
