use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use cleaner::{Cleaner, Config, Thresholds, TrainConfig};
use corpus::Store;

use crate::error::UsageError;
use crate::progress::Bar;
use crate::settings::{self, Overrides};
use crate::{Db, Global};

/// `zhcorpus clean`: a verdict for every document, over the database or file to file.
#[derive(Args)]
pub struct CleanArgs {
    #[command(flatten)]
    db: Db,

    /// JSONL(.zst) files to clean file to file instead of the database (read twice: lines are
    /// counted per host first).
    #[arg(short, long, value_name = "FILE", num_args = 1.., requires = "output")]
    input: Vec<PathBuf>,

    /// With --input: the kept documents, with their cleaned text.
    #[arg(short, long, value_name = "FILE", requires = "input")]
    output: Option<PathBuf>,

    /// With --input: the rejected documents as they were, with a `clean` field giving the rule
    /// and every measured value.
    #[arg(long, value_name = "FILE", requires = "input")]
    rejected: Option<PathBuf>,

    #[command(flatten)]
    skip: crate::cmd::SkipInvalid,

    /// A TOML file of settings; every threshold can be set there (see docs/clean.md); flags
    /// override it.
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

    /// With a model: keep documents scoring at least this [default: 0.2].
    #[arg(allow_negative_numbers = true, long, value_name = "P")]
    quality_threshold: Option<f64>,

    /// With a model: keep by GPT-3's Pareto sampling with this alpha (GPT-3 used 9) instead
    /// of the threshold.
    #[arg(allow_negative_numbers = true, long, value_name = "ALPHA")]
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
    #[arg(long, value_name = "FILE", num_args = 1.., required_unless_present = "print_config")]
    positive: Vec<PathBuf>,

    /// JSONL(.zst) of text not to be like (raw crawl, spam).
    #[arg(long, value_name = "FILE", num_args = 1.., required_unless_present = "print_config")]
    negative: Vec<PathBuf>,

    /// Where the model goes.
    #[arg(
        short,
        long,
        value_name = "FILE",
        required_unless_present = "print_config"
    )]
    output: Option<PathBuf>,

    /// Share of each class held out to measure accuracy and AUC [default: 0.1].
    #[arg(allow_negative_numbers = true, long, value_name = "SHARE")]
    holdout: Option<f64>,

    /// Passes over the training set [default: 5].
    #[arg(long, value_name = "N")]
    epochs: Option<u32>,

    /// Feature buckets as a power of two (22: 4,194,304 buckets, a 16 MiB model) [default: 22].
    #[arg(long, value_name = "BITS")]
    bits: Option<u32>,

    /// Shuffling and hold-out seed [default: 1].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    #[command(flatten)]
    skip: crate::cmd::SkipInvalid,

    /// A TOML file of settings (bits, max_n, line_shapes, epochs, learning_rate, l2, seed, holdout,
    /// skip_invalid).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

fn settings(args: &CleanArgs) -> Result<Config> {
    let mut flags = Overrides::default();
    let strict = Thresholds::strict();
    flags
        .switch("rules.min_chars", args.strict, strict.min_chars)
        .switch("rules.min_han_ratio", args.strict, strict.min_han_ratio)
        .switch("to_simplified", args.to_simplified, true)
        .switch("default_bad_words", args.no_default_words, false)
        .set("quality_threshold", args.quality_threshold)
        .set("quality_pareto_alpha", args.quality_pareto)
        .set("words_file", args.words.clone())
        .set("quality_model", args.quality_model.clone())
        .switch("skip_invalid", args.skip.skip_invalid, true);
    settings::resolve(&Config::default(), args.config.as_deref(), &flags)
}

pub fn run(global: &Global, args: CleanArgs) -> Result<()> {
    let config = settings(&args)?;
    if args.print_config {
        return settings::print(&config);
    }
    let cleaner = Cleaner::from_config(config)?;
    if let Some(id) = &args.explain {
        return explain(&args.db, &cleaner, id);
    }
    let bar = Bar::new(global.quiet);
    let report = match &args.output {
        None => {
            let mut store = Store::open_existing(&args.db.db)?;
            cleaner::run_store(&mut store, &cleaner, &bar)?
        }
        Some(output) => cleaner::run_files(
            &args.input,
            output,
            args.rejected.as_deref(),
            &cleaner,
            &bar,
        )?,
    };
    outln!(
        "cleaned {} documents in {:.1} s ({:.0} docs/s): {} kept, {} rejected; {} changed by cleaning",
        report.documents,
        report.seconds,
        report.documents as f64 / report.seconds.max(1e-9),
        report.kept,
        report.documents - report.kept,
        report.changed
    );
    for (rule, n) in &report.rejected {
        outln!("  {n:>8}  {rule}");
    }
    if report.invalid_lines > 0 {
        outln!("{} invalid input lines skipped", report.invalid_lines);
        for e in &report.invalid_examples {
            outln!("  skipped {e}");
        }
    }
    outln!(
        "lines dropped: {} recurring on their host, {} boilerplate phrases; {} repeated sentences dropped; personal data masked: {}",
        report.recurring_lines_dropped,
        report.phrase_lines_dropped,
        report.repeated_sentences_dropped,
        serde_json::to_string(&report.pii)?
    );
    Ok(())
}

fn explain(db: &Db, cleaner: &Cleaner, id: &str) -> Result<()> {
    let store = Store::open_existing(&db.db)?;
    let x = cleaner::explain(&store, cleaner, id)?;
    let v = &x.verdict;
    outln!(
        "document {id} (source {:?}): {}",
        x.host,
        if v.keep { "kept" } else { "rejected" }
    );
    outln!(
        "  {:<22} {:>12} {:>14}  verdict",
        "rule",
        "value",
        "threshold"
    );
    for m in &v.measures {
        let bound = if m.at_least { ">=" } else { "<=" };
        outln!(
            "  {:<22} {:>12.4} {bound} {:>11.4}  {}",
            m.rule,
            m.value,
            m.threshold,
            if m.pass { "pass" } else { "FAIL" }
        );
    }
    outln!(
        "  lines dropped: {} recurring, {} boilerplate phrases; {} repeated sentences; personal data: {}",
        v.lines.recurring,
        v.lines.phrase,
        v.lines.repeated_sentences,
        serde_json::to_string(&v.pii)?
    );
    match &x.stored {
        Some((keep, rule)) => outln!(
            "  stored verdict: {}{}",
            if *keep { "kept" } else { "rejected" },
            rule.as_ref()
                .map(|r| format!(" by {r}"))
                .unwrap_or_default()
        ),
        None => outln!("  stored verdict: none (zhcorpus clean has not judged it)"),
    }
    outln!("cleaned text:\n{}", v.text);
    Ok(())
}

pub fn run_quality(_global: &Global, args: QualityArgs) -> Result<()> {
    let QualityCommand::Train(args) = args.command;
    let mut flags = Overrides::default();
    flags
        .set("holdout", args.holdout)
        .set("epochs", args.epochs)
        .set("bits", args.bits)
        .set("seed", args.seed)
        .switch("skip_invalid", args.skip.skip_invalid, true);
    let config: TrainConfig =
        settings::resolve(&TrainConfig::default(), args.config.as_deref(), &flags)?;
    if args.print_config {
        return settings::print(&config);
    }
    let output = args
        .output
        .ok_or_else(|| UsageError("--output is required".into()))?;
    let r = cleaner::quality::train_files(&args.positive, &args.negative, &output, &config)?;
    outln!(
        "trained on {} documents ({} positive, {} negative) in {:.1} s; model in {}",
        r.positive + r.negative,
        r.positive,
        r.negative,
        r.seconds,
        output.display()
    );
    if r.invalid_lines > 0 {
        outln!("{} invalid input lines skipped", r.invalid_lines);
    }
    if let (Some(accuracy), Some(auc)) = (r.accuracy, r.auc) {
        outln!(
            "held out {} documents: accuracy {accuracy:.3}, AUC {auc:.3}",
            r.held_out
        );
    }
    Ok(())
}
