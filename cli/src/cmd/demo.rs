use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use corpus::{JsonlWriter, Selection, Store};
use pipeline::{Span, Stage};

use crate::Global;
use crate::cmd::pipeline::summary;
use crate::progress::Bar;

/// The built-in sample: short Chinese documents written for zhcorpus, in several genres.
const SAMPLE: &str = include_str!("../demo/sample.jsonl");

/// `zhcorpus demo [--output zhcorpus-demo]`
#[derive(Args)]
pub struct DemoArgs {
    /// Folder for everything the demo makes (its own `corpus.db`, tokenizer, shards, run,
    /// export); created if missing. Running the demo again reuses it: complete stages are
    /// skipped.
    #[arg(
        long,
        short,
        visible_alias = "dir",
        value_name = "DIR",
        default_value = "zhcorpus-demo"
    )]
    output: PathBuf,
}

/// Training steps of the demo's model: its 48 training documents are about 13,000 tokens, which
/// a 0.17M-parameter model starts to fit within a few seconds.
const DEMO_STEPS: u64 = 200;

/// The demo tokenizer's size: the kept documents are a few dozen.
const DEMO_VOCAB: usize = 1024;

/// The demo's pipeline: the sample imported, the farm crawled, the tiny GPT trained briefly.
fn config(sample: PathBuf, seeds: Vec<String>) -> pipeline::Config {
    let mut c = pipeline::Config {
        inputs: vec![sample],
        ..pipeline::Config::default()
    };
    c.crawl.seeds = seeds;
    c.crawl.fetch.allow_private = true;
    c.crawl.delay = std::time::Duration::from_millis(20);
    c.images.enabled = true;
    c.tokenizer.vocab_size = DEMO_VOCAB;
    // a tenth held out: the demo's documents are few
    c.encode.val_fraction = 0.1;
    let t = &mut c.train;
    t.max_steps = DEMO_STEPS;
    t.eval_every = DEMO_STEPS;
    t.checkpoint_every = 0;
    // a short run: a short warmup and a higher peak than the long-run default
    t.optim.warmup_steps = 20;
    t.optim.lr = 3e-3;
    t.optim.min_lr = 3e-4;
    c
}

pub fn run(global: &Global, args: DemoArgs) -> Result<()> {
    let dir = &args.output;
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(crate::error::UsageError(format!(
            "--output {} is a file: name a folder for the demo",
            dir.display()
        )));
    }
    fs_err::create_dir_all(dir)?;
    let sample = dir.join("sample.jsonl");
    fs_err::write(&sample, SAMPLE)?;
    // the farm's ports change from run to run: a rerun finds the crawl complete and skips it
    let farm = farm::Farm::start(farm::FarmConfig {
        hosts: 4,
        articles_per_host: 12,
        traps: false,
        crawl_delay: 0.0,
        images: true,
        ..farm::FarmConfig::default()
    })
    .context("starting the site farm on 127.0.0.1")?;
    let config = config(sample, farm.seeds());
    outln!(
        "running the pipeline on the built-in sample and a site farm of 4 Chinese sites served \
         on 127.0.0.1, into {}",
        dir.display()
    );
    let report = pipeline::run(&config, dir, Span::default(), &Bar::new(global.quiet))?;
    let what = |s: Stage| match s {
        Stage::Import => "import the built-in sample",
        Stage::Crawl => "crawl the site farm",
        Stage::Images => {
            "image-text pairs: fetch the pages' images, filter, export WebDataset shards"
        }
        Stage::Clean => "clean: Chinese quality rules, boilerplate lines, personal data masked",
        Stage::Dedup => "remove exact and near duplicates (MinHash LSH over character 5-grams)",
        Stage::Tokenizer => "train a byte-level BPE tokenizer on the kept documents",
        Stage::Encode => "encode them into llm.c token shards",
        Stage::Train => "pretrain the tiny GPT on the shards (CPU)",
    };
    let layout = pipeline::Layout::new(dir);
    for (k, s) in report.stages.iter().enumerate() {
        outln!(
            "step {}/{}  {}: {}",
            k + 1,
            report.stages.len() + 1,
            what(s.stage),
            s.outcome
        );
        if let Some(line) = summary(s.stage, &s.report) {
            outln!("          {line}");
        }
    }
    let store = Store::open_existing(&layout.db)?;
    let kept = dir.join("kept.jsonl");
    outln!(
        "step {0}/{0}  export the documents kept for training to {1}",
        report.stages.len() + 1,
        kept.display()
    );
    let mut out = JsonlWriter::create(&kept)?;
    let n = corpus::export::run(&store, Selection::Kept, &mut out, &corpus::NoProgress)?;
    out.finish().context("writing the demo export")?;
    outln!("          {n} documents written");

    let model = train::load_run(&layout.run, &candle_core::Device::Cpu)?;
    let encoder = tokenizer::Encoder::for_folder(&layout.run)?;
    let eot = encoder.end_of_text()?;
    let prompt = "北京";
    let out = train::sample(
        &model,
        &encoder.prompt(prompt)?,
        30,
        0.8,
        50,
        1,
        Some(eot),
        |_| {},
    )?;
    outln!(
        "a sample: {prompt}{} (zhcorpus sample --checkpoint {} for more)",
        encoder.decode(&out)?,
        layout.run.display()
    );
    let metrics = crate::cmd::train::read_metrics(&layout.run.join("metrics.jsonl"))?;
    crate::plot::loss_curve(&metrics, &layout.run.join("loss.png"))?;
    outln!();
    out!(
        "{}",
        crate::cmd::stats::render(&layout.db.display().to_string(), &store.stats()?)
    );
    outln!();
    outln!(
        "report: {} (open it in a browser: the funnel, each rule's cuts with examples, the \
         duplicates, the pairs, the loss)",
        report.report.display()
    );
    Ok(())
}
