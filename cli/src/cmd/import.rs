use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use corpus::Store;
use corpus::import::ImportConfig;

use crate::progress::Bar;
use crate::settings::{self, Overrides};
use crate::{Db, Global};

/// `zhcorpus import --db corpus.db --input docs.jsonl [more.jsonl.zst ...]`
#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    db: Db,

    /// JSONL files, one document per line with at least `text` (and usually `id`); zstd
    /// compressed files are recognised by their content. `-` reads standard input.
    #[arg(long, short, num_args = 1.., value_name = "FILE", required_unless_present = "print_config")]
    input: Vec<PathBuf>,

    /// Documents per transaction: a killed import keeps every finished batch [default: 1000].
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,

    /// Skip invalid lines (counting and logging them) instead of stopping at the first one.
    #[arg(long)]
    skip_invalid: bool,

    /// Source name for documents whose line has no `source` field.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,

    /// A TOML file of settings (batch_size, skip_invalid, source); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn run(global: &Global, args: ImportArgs) -> Result<()> {
    let mut flags = Overrides::default();
    flags
        .set("batch_size", args.batch_size)
        .switch("skip_invalid", args.skip_invalid, true)
        .set("source", args.source);
    let cfg: ImportConfig =
        settings::resolve(&ImportConfig::default(), args.config.as_deref(), &flags)?;
    if args.print_config {
        return settings::print(&cfg);
    }
    let start = Instant::now();
    let mut store = Store::open(&args.db.db)?;
    let report = corpus::import::run(&mut store, &args.input, &cfg, &Bar::new(global.quiet))?;
    let secs = start.elapsed().as_secs_f64();
    outln!(
        "imported {} new documents into {} from {} file(s) in {secs:.1} s ({:.0} documents/s); \
         {} already stored, {} invalid lines skipped",
        report.inserted,
        args.db.db.display(),
        report.files,
        report.read as f64 / secs.max(1e-9),
        report.existing,
        report.invalid,
    );
    for example in &report.invalid_examples {
        outln!("  skipped {example}");
    }
    Ok(())
}
