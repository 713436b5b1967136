use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use corpus::Store;
use dedup::{Config, Dedup, FileOutputs, KeepPolicy};

use crate::Global;
use crate::cmd::extract::BadInput;
use crate::progress::Bar;

/// `zhcorpus dedup --db corpus.db`, or `zhcorpus dedup --input a.jsonl --output kept.jsonl`
#[derive(Args)]
pub struct DedupArgs {
    /// JSONL(.zst) files to deduplicate file to file instead of the database (read twice, so
    /// not standard input).
    #[arg(long, short, num_args = 1.., value_name = "FILE", requires = "output")]
    input: Vec<PathBuf>,

    /// With --input: where the kept documents go, in input order.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    /// With --input: one line per cluster, its kept id and the removed ids with their kind.
    #[arg(long, value_name = "FILE", requires = "input")]
    clusters: Option<PathBuf>,

    /// Jaccard similarity of character shingles above which documents are near duplicates
    /// (datasketch's and NeMo Curator's 0.8).
    #[arg(long, default_value_t = Config::default().threshold)]
    threshold: f64,

    /// MinHash permutations (datasketch's and datatrove's 128).
    #[arg(long, default_value_t = Config::default().num_perm, value_name = "N")]
    num_perm: usize,

    /// Shingle length in --shingle units (character 5-grams, as data-juicer and NeMo Curator use
    /// for Chinese).
    #[arg(long, default_value_t = Config::default().ngram, value_name = "N")]
    ngram: usize,

    /// What shingles are made of: characters, or words as jieba cuts them (datatrove's word
    /// n-grams; slower, and looser on edits inside a word).
    #[arg(long, value_enum, default_value = "chars", value_name = "UNIT")]
    shingle: Shingle,

    /// LSH bands; with --rows. By default the pair that minimises false positives plus false
    /// negatives at the threshold, as datasketch chooses it.
    #[arg(long, requires = "rows", value_name = "N")]
    bands: Option<usize>,

    /// Rows per LSH band; with --bands.
    #[arg(long, requires = "bands", value_name = "N")]
    rows: Option<usize>,

    /// Which member of a cluster is kept.
    #[arg(long, value_enum, default_value = "first")]
    keep: Keep,

    /// Only exact duplicates (after normalisation), no MinHash.
    #[arg(long, conflicts_with = "no_exact")]
    exact_only: bool,

    /// Only near duplicates: do not join exact copies by their hash.
    #[arg(long)]
    no_exact: bool,

    /// Trust LSH's candidates: skip the exact Jaccard check of each candidate pair (saves a
    /// pass over the candidates' texts; lets LSH's false positives through).
    #[arg(long)]
    no_verify: bool,

    /// Evaluation sets (JSONL(.zst), their `text`): documents sharing an n-gram of
    /// --decontaminate-ngram characters with any of them are removed as contaminated, with the
    /// shared text recorded (GPT-3's decontamination).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    decontaminate: Vec<std::path::PathBuf>,

    /// N-gram length, in characters (spaces ignored), for --decontaminate. GPT-3 used 13 words;
    /// 13 Chinese characters are a shorter span, and rarely shared by chance.
    #[arg(long, value_name = "N", default_value_t = 13)]
    decontaminate_ngram: usize,

    /// MiB of exact and band keys held in memory (about 176 bytes a document); past it the keys
    /// are written to sorted runs on disk and merged band by band, so any corpus completes.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    memory_mib: usize,

    /// Also remove from each kept document the paragraphs (lines of 10 or more characters) that
    /// an earlier kept document holds, as CCNet does; a document left empty is removed.
    #[arg(long)]
    paragraphs: bool,

    /// Where the sorted runs go (a temporary folder inside it) [default: the system's
    /// temporary folder].
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Shingle {
    /// Character n-grams of the text without spaces.
    Chars,
    /// jieba word n-grams, punctuation left out.
    Words,
}

#[derive(Clone, Copy, ValueEnum)]
enum Keep {
    /// The first in corpus order.
    First,
    /// The longest text.
    Longest,
    /// The highest quality score from the cleaner (a numeric `score` field in files).
    Score,
}

pub fn run(global: &Global, args: DedupArgs) -> Result<()> {
    let cfg = Config {
        threshold: args.threshold,
        num_perm: args.num_perm,
        ngram: args.ngram,
        unit: match args.shingle {
            Shingle::Chars => dedup::Unit::Chars,
            Shingle::Words => dedup::Unit::Words,
        },
        bands: args.bands,
        rows: args.rows,
        exact: !args.no_exact,
        near: !args.exact_only,
        keep: match args.keep {
            Keep::First => KeepPolicy::First,
            Keep::Longest => KeepPolicy::Longest,
            Keep::Score => KeepPolicy::Score,
        },
        verify: !args.no_verify,
        verify_memory: Config::default().verify_memory,
        memory_budget: args.memory_mib.saturating_mul(1 << 20),
        spill_dir: args.spill_dir.clone(),
        paragraphs: args.paragraphs,
        seed: Config::default().seed,
    };
    let mut dedup = Dedup::new(&cfg).map_err(|e| BadInput(e.to_string()))?;
    if !args.decontaminate.is_empty() {
        let mut c = dedup::Contamination::new(args.decontaminate_ngram);
        for doc in corpus::read_all(&args.decontaminate) {
            c.add(&doc?.text);
        }
        eprintln!(
            "decontamination: {} distinct {}-grams from {} evaluation files",
            c.len(),
            args.decontaminate_ngram,
            args.decontaminate.len()
        );
        dedup = dedup.with_contamination(c);
    }
    let p = dedup.params();
    if cfg.near {
        eprintln!(
            "LSH: {} bands x {} rows at threshold {}: false-positive area {:.4}, false-negative area {:.4}",
            p.bands, p.rows, cfg.threshold, p.false_positive, p.false_negative
        );
    }
    let bar = Bar::new(global.quiet);
    let report = if args.input.is_empty() {
        let mut store = Store::open_existing(&global.db)?;
        dedup::run_store(&mut store, &dedup, &bar)?
    } else {
        let outputs = FileOutputs {
            kept: args.output.expect("clap requires --output with --input"),
            clusters: args.clusters,
        };
        dedup::run_files(&args.input, &outputs, &dedup, &bar)?
    };
    println!(
        "deduplicated {} documents in {:.1} s ({:.0} documents/s): {} kept, {} exact and {} near duplicates removed, in {} clusters",
        report.documents,
        report.seconds,
        report.documents as f64 / report.seconds.max(1e-9),
        report.kept,
        report.exact_duplicates,
        report.near_duplicates,
        report.clusters
    );
    if args.paragraphs {
        println!(
            "paragraph-level dedup: {} repeated paragraphs removed, {} documents left empty",
            report.paragraphs_removed, report.emptied_by_paragraphs
        );
    }
    if report.spilled_runs > 0 {
        println!(
            "the LSH index outgrew --memory-mib: {} sorted runs per band on disk, merged",
            report.spilled_runs
        );
    }
    if !args.decontaminate.is_empty() {
        println!(
            "{} documents removed as contaminated by the evaluation sets",
            report.contaminated
        );
    }
    if cfg.near {
        println!(
            "near-duplicate candidate pairs: {}, of which {} turned down by the exact Jaccard check",
            report.candidate_pairs, report.pairs_rejected_by_verification
        );
    }
    Ok(())
}
