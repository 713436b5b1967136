use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use corpus::import::ImportConfig;
use corpus::{JsonlWriter, Selection, Store};

use crate::Global;
use crate::progress::Bar;

/// The built-in sample: short Chinese documents written for zhcorpus, in several genres.
const SAMPLE: &str = include_str!("../demo/sample.jsonl");

/// `zhcorpus demo [--dir zhcorpus-demo]`
#[derive(Args)]
pub struct DemoArgs {
    /// Folder for everything the demo makes (its own `corpus.db`, exports); created if missing.
    /// Running the demo again reuses it: stored documents are not imported twice.
    #[arg(long, value_name = "DIR", default_value = "zhcorpus-demo")]
    dir: PathBuf,
}

pub fn run(global: &Global, args: DemoArgs) -> Result<()> {
    fs_err::create_dir_all(&args.dir)?;
    let sample = args.dir.join("sample.jsonl");
    fs_err::write(&sample, SAMPLE)?;
    let db = args.dir.join("corpus.db");
    let mut store = Store::open(&db)?;
    let bar = Bar::new(global.quiet);

    println!("step 1/3  import the built-in sample into {}", db.display());
    let report = corpus::import::run(
        &mut store,
        std::slice::from_ref(&sample),
        &ImportConfig::default(),
        &bar,
    )?;
    println!(
        "          {} documents read, {} new, {} already stored",
        report.read, report.inserted, report.existing
    );

    println!("step 2/3  remove exact and near duplicates (MinHash LSH over character 5-grams)");
    let dedup = dedup::Dedup::new(&dedup::Config::default())?;
    let report = dedup::run_store(&mut store, &dedup, &bar)?;
    println!(
        "          {} documents, {} exact and {} near duplicates removed",
        report.documents, report.exact_duplicates, report.near_duplicates
    );

    let kept = args.dir.join("kept.jsonl");
    println!(
        "step 3/3  export the documents kept for training to {}",
        kept.display()
    );
    let mut out = JsonlWriter::create(&kept)?;
    let n = corpus::export::run(&store, Selection::Kept, &mut out, &bar)?;
    out.finish().context("writing the demo export")?;
    println!("          {n} documents written");

    println!();
    print!(
        "{}",
        crate::cmd::stats::render(&db.display().to_string(), &store.stats()?)
    );
    Ok(())
}
