use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use corpus::Store;
use corpus::import::ImportConfig;

use crate::Global;
use crate::progress::Bar;

/// `zhcorpus import --db corpus.db --input docs.jsonl [more.jsonl.zst ...]`
#[derive(Args)]
pub struct ImportArgs {
    /// JSONL files, one document per line with at least `text` (and usually `id`); zstd
    /// compressed files are recognised by their content. `-` reads standard input.
    #[arg(long, short, required = true, num_args = 1.., value_name = "FILE")]
    input: Vec<PathBuf>,

    /// Documents per transaction: a killed import keeps every finished batch.
    #[arg(long, default_value_t = ImportConfig::default().batch_size, value_name = "N")]
    batch_size: usize,

    /// Skip invalid lines (counting and logging them) instead of stopping at the first one.
    #[arg(long)]
    skip_invalid: bool,

    /// Source name for documents whose line has no `source` field.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
}

pub fn run(global: &Global, args: ImportArgs) -> Result<()> {
    let cfg = ImportConfig {
        batch_size: args.batch_size,
        skip_invalid: args.skip_invalid,
        source: args.source,
    };
    let start = Instant::now();
    let mut store = Store::open(&global.db)?;
    let report = corpus::import::run(&mut store, &args.input, &cfg, &Bar::new(global.quiet))?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "imported {} new documents into {} from {} file(s) in {secs:.1} s ({:.0} documents/s); \
         {} already stored, {} invalid lines skipped",
        report.inserted,
        global.db.display(),
        report.files,
        report.read as f64 / secs.max(1e-9),
        report.existing,
        report.invalid,
    );
    for example in &report.invalid_examples {
        println!("  skipped {example}");
    }
    Ok(())
}
