//! The `zhcorpus` command: argument parsing, logging and progress. Glue only: the work is done
//! by the library crates.

mod cmd;
mod plot;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Build Chinese pretraining corpora end to end: crawl, extract, clean, deduplicate, train a
/// tokenizer, pretrain, in one binary over one SQLite file.
#[derive(Parser)]
#[command(name = "zhcorpus", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Args)]
pub struct Global {
    /// The corpus database (one SQLite file). Commands that write create it; commands that only
    /// read require it to exist.
    #[arg(long, global = true, value_name = "PATH", default_value = "corpus.db")]
    pub db: PathBuf,

    /// No progress bars (they are also off when stderr is not a terminal).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// More logging on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch the seeds' sites politely into the database, resumable; main text extracted.
    Crawl(Box<cmd::crawl::CrawlArgs>),
    /// Judge every document: normalisation, Chinese quality rules, PII masking, classifier.
    Clean(Box<cmd::clean::CleanArgs>),
    /// Run the pipeline on built-in sample data and show what it made.
    Demo(cmd::demo::DemoArgs),
    /// Remove exact and near-duplicate documents (MinHash LSH), over the database or files.
    Dedup(cmd::dedup::DedupArgs),
    /// Store JSONL(.zst) documents in the database.
    Import(cmd::import::ImportArgs),
    /// Write documents from the database as JSONL(.zst).
    Export(cmd::export::ExportArgs),
    /// Main text, title, author, date and images of HTML pages, as JSON.
    Extract(cmd::extract::ExtractArgs),
    /// The quality classifier: `zhcorpus quality train`.
    Quality(cmd::clean::QualityArgs),
    /// Counts and sizes: documents per source, verdicts per stage, pages, runs.
    Stats(cmd::stats::StatsArgs),
    /// Train a byte-level BPE tokenizer; encode documents into llm.c token shards.
    Tokenizer(cmd::tokenizer::TokenizerArgs),
    /// Pretrain a GPT (Llama-style) on token shards; resumable.
    Train(Box<cmd::train::TrainArgs>),
    /// Generate text from a trained run.
    Sample(cmd::train::SampleArgs),
    /// Write a trained run as a Hugging Face model folder (Llama) that transformers loads.
    HfExport(cmd::train::ExportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let result = match cli.command {
        Command::Crawl(args) => cmd::crawl::run(&cli.global, *args),
        Command::Clean(args) => cmd::clean::run(&cli.global, *args),
        Command::Quality(args) => cmd::clean::run_quality(&cli.global, args),
        Command::Demo(args) => cmd::demo::run(&cli.global, args),
        Command::Dedup(args) => cmd::dedup::run(&cli.global, args),
        Command::Import(args) => cmd::import::run(&cli.global, args),
        Command::Export(args) => cmd::export::run(&cli.global, args),
        Command::Extract(args) => cmd::extract::run(&cli.global, args),
        Command::Stats(args) => cmd::stats::run(&cli.global, args),
        Command::Tokenizer(args) => cmd::tokenizer::run(&cli.global, args),
        Command::Train(args) => cmd::train::run(&cli.global, *args),
        Command::Sample(args) => cmd::train::run_sample(&cli.global, args),
        Command::HfExport(args) => cmd::train::run_export(&cli.global, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            let bad_input = err.chain().any(|e| {
                e.downcast_ref::<corpus::Error>()
                    .is_some_and(|e| e.is_bad_input())
                    || e.is::<cmd::extract::BadInput>()
                    || e.downcast_ref::<crawler::Error>()
                        .is_some_and(|e| matches!(e, crawler::Error::BadSeed(_)))
            });
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // html5ever warns about every page that is not valid HTML: not the user's concern
    let level = match verbose {
        0 => "warn,html5ever=error",
        1 => "info,html5ever=error",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
