use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use cleaner::{Cleaner, Config, QualityModel, Thresholds, TrainConfig};
use corpus::Store;

use crate::Global;
use crate::cmd::extract::BadInput;
use crate::progress::Bar;

/// `zhcorpus clean`: a verdict for every document, over the database or file to file.
#[derive(Args)]
pub struct CleanArgs {
    /// JSONL(.zst) files to clean file to file instead of the database (read twice: lines are
    /// counted per host first).
    #[arg(short, long, value_name = "FILE", num_args = 1.., requires = "output")]
    input: Vec<PathBuf>,

    /// With --input: the kept documents, with their cleaned text.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// With --input: the rejected documents as they were, with a `clean` field giving the rule
    /// and every measured value.
    #[arg(long, value_name = "FILE", requires = "input")]
    rejected: Option<PathBuf>,

    /// A TOML file of settings; every threshold can be set there (see docs/clean.md).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// The strict preset: Han ratio 0.7 (MNBVC) and 200 characters (ChineseWebText).
    #[arg(long)]
    strict: bool,

    /// Convert traditional script to simplified (zhconv's OpenCC and MediaWiki tables).
    #[arg(long)]
    to_simplified: bool,

    /// A word list (one word per line) of ads, gambling or adult terms, besides the built-in one.
    #[arg(long, value_name = "FILE")]
    words: Option<PathBuf>,

    /// Leave the built-in word list out.
    #[arg(long)]
    no_default_words: bool,

    /// A model from `zhcorpus quality train`: its score is stored and judged.
    #[arg(long, value_name = "FILE")]
    quality_model: Option<PathBuf>,

    /// With a model: keep documents scoring at least this [default: 0.5, or the config's].
    #[arg(long, value_name = "P")]
    quality_threshold: Option<f64>,

    /// With a model: keep by GPT-3's Pareto sampling with this alpha (GPT-3 used 9) instead
    /// of the threshold.
    #[arg(long, value_name = "ALPHA")]
    quality_pareto: Option<f64>,

    /// Print every rule's value, threshold and verdict for one document of the database, with
    /// its cleaned text, and exit.
    #[arg(long, value_name = "DOC_ID")]
    explain: Option<String>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

/// `zhcorpus quality train`
#[derive(Args)]
pub struct QualityArgs {
    #[command(subcommand)]
    command: QualityCommand,
}

#[derive(Subcommand)]
enum QualityCommand {
    /// Train the quality classifier: reference text against raw text.
    Train(TrainArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// JSONL(.zst) of text to be like (encyclopedia, edited news, books).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    positive: Vec<PathBuf>,

    /// JSONL(.zst) of text not to be like (raw crawl, spam).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    negative: Vec<PathBuf>,

    /// Where the model goes.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,

    /// Share of each class held out to measure accuracy and AUC.
    #[arg(long, value_name = "SHARE", default_value_t = 0.1)]
    holdout: f64,

    /// Passes over the training set.
    #[arg(long, value_name = "N", default_value_t = 5)]
    epochs: u32,

    /// Feature buckets as a power of two (18: 262,144 buckets, a 1 MiB model).
    #[arg(long, value_name = "BITS", default_value_t = 18)]
    bits: u32,

    /// Shuffling and hold-out seed.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
}

fn settings(args: &CleanArgs) -> Result<(Config, Vec<String>, Option<QualityModel>)> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
            toml::from_str::<Config>(&text)
                .map_err(|e| BadInput(format!("{}: {e}", path.display())))?
        }
        None => Config::default(),
    };
    if args.strict {
        let strict = Thresholds::strict();
        config.rules.min_chars = strict.min_chars;
        config.rules.min_han_ratio = strict.min_han_ratio;
    }
    if args.to_simplified {
        config.to_simplified = true;
    }
    if args.no_default_words {
        config.default_bad_words = false;
    }
    if let Some(t) = args.quality_threshold {
        config.quality_threshold = t;
    }
    if let Some(a) = args.quality_pareto {
        config.quality_pareto_alpha = Some(a);
    }
    let words = match &args.words {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("{}: {e}", path.display())))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    let model = match &args.quality_model {
        Some(path) => Some(QualityModel::load(path).map_err(BadInput)?),
        None => None,
    };
    Ok((config, words, model))
}

pub fn run(global: &Global, args: CleanArgs) -> Result<()> {
    let (config, words, model) = settings(&args)?;
    if args.print_config {
        print!("{}", toml::to_string(&config)?);
        return Ok(());
    }
    let cleaner = Cleaner::new(config, &words, model).map_err(|e| anyhow::anyhow!(e))?;
    if let Some(id) = &args.explain {
        return explain(global, &cleaner, id);
    }
    let bar = Bar::new(global.quiet);
    let report = if args.input.is_empty() {
        let mut store = Store::open_existing(&global.db)?;
        cleaner::run_store(&mut store, &cleaner, &bar)?
    } else {
        let output = args
            .output
            .as_deref()
            .context("--output is required with --input")?;
        cleaner::run_files(
            &args.input,
            output,
            args.rejected.as_deref(),
            &cleaner,
            &bar,
        )?
    };
    println!(
        "cleaned {} documents in {:.1} s ({:.0} docs/s): {} kept, {} rejected; {} changed by cleaning",
        report.documents,
        report.seconds,
        report.documents as f64 / report.seconds.max(1e-9),
        report.kept,
        report.documents - report.kept,
        report.changed
    );
    for (rule, n) in &report.rejected {
        println!("  {n:>8}  {rule}");
    }
    println!(
        "lines dropped: {} recurring on their host, {} boilerplate phrases; personal data masked: {}",
        report.recurring_lines_dropped,
        report.phrase_lines_dropped,
        serde_json::to_string(&report.pii)?
    );
    Ok(())
}

fn explain(global: &Global, cleaner: &Cleaner, id: &str) -> Result<()> {
    let store = Store::open_existing(&global.db)?;
    let Some(doc) = store.document(id)? else {
        anyhow::bail!(BadInput(format!(
            "no document {id:?} in {}",
            global.db.display()
        )));
    };
    let host = doc.doc.source.clone().unwrap_or_default();
    // the host's line counts, for the recurring-lines cleanup
    let mut counts = cleaner::LineCounts::default();
    if cleaner.needs_line_counts() {
        for d in store.documents(corpus::Selection::All) {
            let d = d?;
            if d.doc.source.clone().unwrap_or_default() == host {
                counts.add(&host, &cleaner.line_text(&d.doc.text));
            }
        }
    }
    let v = cleaner.clean_keyed(&doc.doc.text, &host, Some(&counts), id);
    println!(
        "document {id} (source {host:?}): {}",
        if v.keep { "kept" } else { "rejected" }
    );
    println!(
        "  {:<22} {:>12} {:>14}  verdict",
        "rule", "value", "threshold"
    );
    for m in &v.measures {
        let bound = if m.at_least { ">=" } else { "<=" };
        println!(
            "  {:<22} {:>12.4} {bound} {:>11.4}  {}",
            m.rule,
            m.value,
            m.threshold,
            if m.pass { "pass" } else { "FAIL" }
        );
    }
    println!(
        "  lines dropped: {} recurring, {} boilerplate phrases; personal data: {}",
        v.lines.recurring,
        v.lines.phrase,
        serde_json::to_string(&v.pii)?
    );
    if let Some(stored) = store.clean_verdict(doc.seq)? {
        println!(
            "  stored verdict: {}{}",
            if stored.keep { "kept" } else { "rejected" },
            stored.rule.map(|r| format!(" by {r}")).unwrap_or_default()
        );
    } else {
        println!("  stored verdict: none (zhcorpus clean has not judged it)");
    }
    println!("cleaned text:\n{}", v.text);
    Ok(())
}

pub fn run_quality(global: &Global, args: QualityArgs) -> Result<()> {
    let QualityCommand::Train(args) = args.command;
    if !(0.0..0.9).contains(&args.holdout) {
        anyhow::bail!(BadInput("--holdout is a share below 0.9".into()));
    }
    if !(10..=24).contains(&args.bits) {
        anyhow::bail!(BadInput("--bits goes from 10 to 24".into()));
    }
    let config = TrainConfig {
        bits: args.bits,
        epochs: args.epochs.max(1),
        seed: args.seed,
        ..TrainConfig::default()
    };
    let read = |paths: &[PathBuf]| -> corpus::Result<Vec<String>> {
        corpus::read_all(paths)
            .map(|d| d.map(|d| cleaner::normalize::normalize(&d.text)))
            .collect()
    };
    let positive = read(&args.positive)?;
    let negative = read(&args.negative)?;
    if positive.is_empty() || negative.is_empty() {
        anyhow::bail!(BadInput(
            "both --positive and --negative need documents".into()
        ));
    }
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut train = Vec::new();
    let mut held = Vec::new();
    for (texts, label) in [(&positive, true), (&negative, false)] {
        let mut idx: Vec<usize> = (0..texts.len()).collect();
        rng.shuffle(&mut idx);
        let n_held = (texts.len() as f64 * args.holdout).round() as usize;
        for (k, &i) in idx.iter().enumerate() {
            let f = cleaner::quality::features(&texts[i], config.bits, config.max_n);
            if k < n_held {
                held.push((f, label));
            } else {
                train.push((f, label));
            }
        }
    }
    let _ = global;
    let start = std::time::Instant::now();
    let model = QualityModel::train(&train, &config);
    let seconds = start.elapsed().as_secs_f64();
    model
        .save(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "trained on {} documents ({} positive, {} negative) in {seconds:.1} s; model in {}",
        train.len(),
        train.iter().filter(|(_, y)| *y).count(),
        train.iter().filter(|(_, y)| !*y).count(),
        args.output.display()
    );
    if !held.is_empty() {
        let scored: Vec<(f64, bool)> = held
            .iter()
            .map(|(f, y)| (model.score_features(f), *y))
            .collect();
        let accuracy =
            scored.iter().filter(|(s, y)| (*s >= 0.5) == *y).count() as f64 / scored.len() as f64;
        println!(
            "held out {} documents: accuracy {accuracy:.3}, AUC {:.3}",
            scored.len(),
            cleaner::quality::auc(&scored)
        );
    }
    Ok(())
}
