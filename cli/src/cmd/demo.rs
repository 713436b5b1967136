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

    println!("step 1/8  import the built-in sample into {}", db.display());
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

    println!("step 2/8  crawl the built-in site farm (4 Chinese sites served on 127.0.0.1)");
    crawl_farm(&mut store)?;

    println!("step 3/8  clean: Chinese quality rules, boilerplate lines, personal data masked");
    let cleaner = cleaner::Cleaner::new(cleaner::Config::default(), &[], None)
        .map_err(|e| anyhow::anyhow!(e))?;
    let report = cleaner::run_store(&mut store, &cleaner, &bar)?;
    let reasons: Vec<String> = report
        .rejected
        .iter()
        .map(|(rule, n)| format!("{rule} {n}"))
        .collect();
    println!(
        "          {} documents, {} kept, {} rejected ({})",
        report.documents,
        report.kept,
        report.documents - report.kept,
        reasons.join(", ")
    );

    println!("step 4/8  remove exact and near duplicates (MinHash LSH over character 5-grams)");
    let dedup = dedup::Dedup::new(&dedup::Config::default())?;
    let report = dedup::run_store(&mut store, &dedup, &bar)?;
    println!(
        "          {} documents, {} exact and {} near duplicates removed",
        report.documents, report.exact_duplicates, report.near_duplicates
    );

    let kept = args.dir.join("kept.jsonl");
    println!(
        "step 5/8  export the documents kept for training to {}",
        kept.display()
    );
    let mut out = JsonlWriter::create(&kept)?;
    let n = corpus::export::run(&store, Selection::Kept, &mut out, &bar)?;
    out.finish().context("writing the demo export")?;
    println!("          {n} documents written");

    let tok_path = args.dir.join("tokenizer").join("tokenizer.json");
    println!(
        "step 6/8  train a byte-level BPE tokenizer on them ({} ids) into {}",
        DEMO_VOCAB,
        tok_path.display()
    );
    let docs: Vec<(String, String)> = store
        .documents(Selection::Kept)
        .map(|d| d.map(|d| (d.doc.id, d.doc.text)))
        .collect::<corpus::Result<_>>()?;
    let texts: Vec<&str> = docs.iter().map(|d| d.1.as_str()).collect();
    let cfg = tokenizer::TrainConfig {
        vocab_size: DEMO_VOCAB,
        ..tokenizer::TrainConfig::default()
    };
    let mut counts = tokenizer::PieceCounts::default();
    counts.add_batch(&texts, &cfg.pre);
    let tok = tokenizer::train(&counts, &cfg, |_, _| {})?;
    fs_err::create_dir_all(args.dir.join("tokenizer"))?;
    tokenizer::hf::save(&tok, &tok_path)?;
    let ids = tok.encode_batch(&texts);
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    let tokens: usize = ids.iter().map(Vec::len).sum();
    println!(
        "          {} ids ({} merges), {:.2} characters per token on these documents",
        tok.vocab_size(),
        tok.merges().len(),
        chars as f64 / tokens.max(1) as f64
    );

    let shard_dir = args.dir.join("shards");
    println!(
        "step 7/8  encode them into llm.c token shards in {}",
        shard_dir.display()
    );
    let json = fs_err::read(&tok_path)?;
    let encoder = tokenizer::Encoder::Bpe(tok.clone());
    // a tenth held out: the demo's documents are few
    let mut sharder =
        crate::cmd::tokenizer::Sharder::create(&encoder, &shard_dir, 0.1, 100_000_000)?;
    sharder.add_batch(&docs)?;
    let manifest = sharder.finish(Some(&json))?;
    println!(
        "          {} documents ({} train, {} validation), {} tokens, {} shards",
        manifest.documents.train + manifest.documents.val,
        manifest.documents.train,
        manifest.documents.val,
        manifest.tokens.train + manifest.tokens.val,
        manifest.shards.len()
    );

    let run_dir = args.dir.join("run");
    println!(
        "step 8/8  pretrain the tiny GPT on the shards ({DEMO_STEPS} steps on the CPU) into {}",
        run_dir.display()
    );
    pretrain(global, &shard_dir, &run_dir, manifest.vocab_size, &tok)?;

    println!();
    print!(
        "{}",
        crate::cmd::stats::render(&db.display().to_string(), &store.stats()?)
    );
    Ok(())
}

/// Training steps of the demo's model: its 48 training documents are about 13,000 tokens, which
/// a 0.17M-parameter model starts to fit within a few seconds.
const DEMO_STEPS: u64 = 200;

/// Trains the tiny preset on the shards, writes its loss curve, and samples a continuation.
fn pretrain(
    global: &Global,
    shards: &std::path::Path,
    run_dir: &std::path::Path,
    vocab: usize,
    tok: &tokenizer::Tokenizer,
) -> Result<()> {
    if run_dir.exists() {
        // a rerun of the demo trains afresh
        fs_err::remove_dir_all(run_dir)?;
    }
    let mut cfg = train::RunConfig::preset("tiny", vocab).context("the tiny preset")?;
    cfg.max_steps = DEMO_STEPS;
    cfg.eval_every = DEMO_STEPS;
    cfg.checkpoint_every = 0;
    // a short run: a short warmup and a higher peak than the long-run default
    cfg.optim.warmup_steps = 20;
    cfg.optim.lr = 3e-3;
    cfg.optim.min_lr = 3e-4;
    let bar = crate::progress::Steps::new(global.quiet, cfg.max_steps);
    let history = train::train(
        shards,
        run_dir,
        &cfg,
        false,
        &candle_core::Device::Cpu,
        |m| bar.step(m.step, &format!("loss {:.3}", m.loss)),
    )?;
    bar.finish();
    let metrics = crate::cmd::train::read_metrics(&run_dir.join("metrics.jsonl"))?;
    crate::plot::loss_curve(&metrics, &run_dir.join("loss.png"))?;
    let (first, last) = match (history.first(), history.last()) {
        (Some(a), Some(b)) => (a, b),
        _ => anyhow::bail!("the demo's training made no step"),
    };
    let tps = history.iter().map(|m| m.tokens_per_s).sum::<f64>() / history.len() as f64;
    println!(
        "          {} parameters; loss {:.2} -> {:.2} (ln {vocab} = {:.2}), validation {}; {:.0} tokens/s",
        cfg.model.parameters(),
        first.loss,
        last.loss,
        (vocab as f64).ln(),
        last.val_loss
            .map(|v| format!("{v:.2}"))
            .unwrap_or_else(|| "not measured".into()),
        tps
    );
    let model = train::load_run(run_dir, &candle_core::Device::Cpu)?;
    let eot = tok
        .special(tokenizer::END_OF_TEXT)
        .context("the demo tokenizer has <|endoftext|>")?;
    let prompt = "北京";
    let mut ids = vec![eot];
    ids.extend(tok.encode(prompt));
    let out = train::sample(&model, &ids, 30, 0.8, 50, 1, Some(eot))?;
    println!(
        "          a sample: {prompt}{} (zhcorpus sample --checkpoint {} for more)",
        tok.decode(&out)?,
        run_dir.display()
    );
    Ok(())
}

/// The demo tokenizer's size: the kept documents are a few dozen.
const DEMO_VOCAB: usize = 1024;

/// Crawls a small site farm on loopback: robots.txt, politeness, extraction and storage, with
/// reposts across the sites for the dedup step to find. A rerun finds the crawl done and
/// fetches nothing (the farm's ports change from run to run, so its URLs would be new).
fn crawl_farm(store: &mut Store) -> Result<()> {
    if store.crawl_status()?.last_run.is_some() {
        println!("          crawled by an earlier run of the demo: nothing fetched");
        return Ok(());
    }
    let farm = farm::Farm::start(farm::FarmConfig {
        hosts: 4,
        articles_per_host: 12,
        traps: false,
        crawl_delay: 0.0,
        ..farm::FarmConfig::default()
    })
    .context("starting the site farm on 127.0.0.1")?;
    let config = crawler::Config {
        seeds: farm.seeds(),
        fetch: crawler::FetchConfig {
            allow_private: true,
            ..crawler::FetchConfig::default()
        },
        delay: std::time::Duration::from_millis(20),
        ..crawler::Config::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(crawler::crawl(
        store,
        config,
        &corpus::NoProgress,
        std::future::pending(),
    ))?;
    println!(
        "          {} pages fetched in {:.1} s, {} documents extracted, {} URLs disallowed by robots.txt",
        report.pages, report.elapsed_s, report.documents, report.robots_disallowed
    );
    Ok(())
}
