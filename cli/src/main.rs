//! The `zhcorpus` command: argument parsing, settings, logging, progress and exit codes. The
//! work is done by the library crates: each command parses its flags, resolves its settings
//! (defaults, then `--config FILE`, then flags), calls one library function and prints its
//! report.

/// `println!` that returns the error (a closed pipe ends the command quietly) instead of
/// panicking.
macro_rules! outln {
    () => {
        std::io::Write::write_all(&mut std::io::stdout(), b"\n")?
    };
    ($($t:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout(), format_args!("{}\n", format_args!($($t)*)))?
    };
}

/// `print!` that returns the error instead of panicking.
macro_rules! out {
    ($($t:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout(), format_args!($($t)*))?
    };
}

mod cmd;
mod error;
mod plot;
mod progress;
mod settings;
mod threads;

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
    /// Nothing on stderr but errors: no progress bars or lines, no warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// More logging on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Threads for every stage: the data-parallel pool, the trainer's CPU kernels, the
    /// crawler's workers [default: $ZHCORPUS_THREADS, else $RAYON_NUM_THREADS, else every core].
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
}

/// The corpus database, for the commands that read or write one.
#[derive(Args, Clone)]
pub struct Db {
    /// The corpus database (one SQLite file). Commands that write create it; commands that only
    /// read require it to exist.
    #[arg(long, value_name = "PATH", default_value = "corpus.db")]
    pub db: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run every stage from one config file: import, crawl, clean, dedup, tokenizer, encode,
    /// train; complete stages are skipped, so the same command resumes after any interruption.
    Pipeline(cmd::pipeline::PipelineArgs),
    /// Fetch the seeds' sites politely into the database, resumable; main text extracted.
    Crawl(Box<cmd::crawl::CrawlArgs>),
    /// Judge every document: normalisation, Chinese quality rules, PII masking, classifier.
    Clean(Box<cmd::clean::CleanArgs>),
    /// Run the pipeline on built-in sample data and show what it made.
    Demo(cmd::demo::DemoArgs),
    /// Remove exact and near-duplicate documents (MinHash LSH), over the database or files.
    Dedup(Box<cmd::dedup::DedupArgs>),
    /// Image-text pairs: fetch the images, filter the pairs, export WebDataset shards.
    Images(cmd::images::ImagesArgs),
    /// Store JSONL(.zst) documents in the database.
    Import(cmd::import::ImportArgs),
    /// Write documents from the database as JSONL(.zst).
    Export(cmd::export::ExportArgs),
    /// Combine stores (crawl workers', per-rank) into one, keyed by URL and document id.
    Merge(cmd::merge::MergeArgs),
    /// Main text, title, author, date and images of HTML pages, as JSON.
    Extract(cmd::extract::ExtractArgs),
    /// The quality classifier: `zhcorpus quality train`.
    Quality(cmd::clean::QualityArgs),
    /// Counts and sizes: documents per source, verdicts per stage, pages, runs.
    Stats(cmd::stats::StatsArgs),
    /// One self-contained HTML page that shows what the corpus is made of.
    Report(cmd::report::ReportArgs),
    /// Train a byte-level BPE tokenizer; encode documents into llm.c token shards.
    Tokenizer(cmd::tokenizer::TokenizerArgs),
    /// Pretrain a GPT (Llama-style) on token shards; resumable.
    Train(Box<cmd::train::TrainArgs>),
    /// Generate text from a trained run.
    Sample(cmd::train::SampleArgs),
    /// Write a trained run as a Hugging Face model folder (Llama) that transformers loads.
    HfExport(cmd::train::ExportArgs),
    /// The batch stages as Slurm job arrays over shards (or processes on this machine).
    Slurm(cmd::slurm::SlurmArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose, cli.global.quiet);
    match threads::resolve(cli.global.threads, |name| std::env::var(name).ok()) {
        Ok((n, source)) => {
            let n = threads::configure(n);
            let s = if n == 1 { "" } else { "s" };
            tracing::info!("{n} thread{s} (from {})", source.describe());
        }
        Err(err) => return error::report(&anyhow::Error::new(err)),
    }
    cmd::signals::install();
    let g = &cli.global;
    let result = match cli.command {
        Command::Pipeline(args) => cmd::pipeline::run(g, args),
        Command::Crawl(args) => cmd::crawl::run(g, *args),
        Command::Clean(args) => cmd::clean::run(g, *args),
        Command::Quality(args) => cmd::clean::run_quality(g, args),
        Command::Demo(args) => cmd::demo::run(g, args),
        Command::Dedup(args) => cmd::dedup::run(g, *args),
        Command::Images(args) => cmd::images::run(g, args),
        Command::Import(args) => cmd::import::run(g, args),
        Command::Export(args) => cmd::export::run(g, args),
        Command::Slurm(args) => cmd::slurm::run(g, args),
        Command::Merge(args) => cmd::merge::run(g, args),
        Command::Extract(args) => cmd::extract::run(g, args),
        Command::Stats(args) => cmd::stats::run(g, args),
        Command::Report(args) => cmd::report::run(g, args),
        Command::Tokenizer(args) => cmd::tokenizer::run(g, args),
        Command::Train(args) => cmd::train::run(g, *args),
        Command::Sample(args) => cmd::train::run_sample(g, args),
        Command::HfExport(args) => cmd::train::run_export(g, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error::report(&err),
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        _ if quiet => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
