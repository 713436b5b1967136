use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use corpus::Store;
use dedup::{Config, Dedup, FileOutputs};

use crate::progress::Bar;
use crate::settings::{self, Overrides};
use crate::{Db, Global};

/// `zhcorpus dedup --db corpus.db`, or `zhcorpus dedup --input a.jsonl --output kept.jsonl`
#[derive(Args)]
pub struct DedupArgs {
    #[command(flatten)]
    db: Db,

    /// JSONL(.zst) files to deduplicate file to file instead of the database (read twice, so
    /// not standard input).
    #[arg(long, short, num_args = 1.., value_name = "FILE", requires = "output")]
    input: Vec<PathBuf>,

    /// With --input: where the kept documents go, in input order.
    #[arg(long, short, value_name = "FILE", requires = "input")]
    output: Option<PathBuf>,

    /// With --input: one line per cluster, its kept id and the removed ids with their kind.
    #[arg(long, value_name = "FILE", requires = "input")]
    clusters: Option<PathBuf>,

    /// Jaccard similarity of shingles above which documents are near duplicates
    /// (datasketch's and NeMo Curator's 0.8) [default: 0.8].
    #[arg(allow_negative_numbers = true, long)]
    threshold: Option<f64>,

    /// MinHash permutations (datasketch's and datatrove's 128) [default: 128].
    #[arg(long, value_name = "N")]
    num_perm: Option<usize>,

    /// Shingle length in --shingle units (character 5-grams, as data-juicer and NeMo Curator use
    /// for Chinese) [default: 5].
    #[arg(long, value_name = "N")]
    ngram: Option<usize>,

    /// What shingles are made of: characters, or words as jieba cuts them (datatrove's word
    /// n-grams; slower, and looser on edits inside a word) [default: chars].
    #[arg(long, value_enum, value_name = "UNIT")]
    shingle: Option<Shingle>,

    /// LSH bands; with --rows. By default the pair that minimises false positives plus false
    /// negatives at the threshold, as datasketch chooses it.
    #[arg(long, requires = "rows", value_name = "N")]
    bands: Option<usize>,

    /// Rows per LSH band; with --bands.
    #[arg(long, requires = "bands", value_name = "N")]
    rows: Option<usize>,

    /// Which member of a cluster is kept [default: first].
    #[arg(long, value_enum)]
    keep: Option<Keep>,

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
    decontaminate: Vec<PathBuf>,

    /// N-gram length, in characters (spaces ignored), for --decontaminate. GPT-3 used 13 words;
    /// 13 Chinese characters are a shorter span, and rarely shared by chance [default: 13].
    #[arg(long, value_name = "N")]
    decontaminate_ngram: Option<usize>,

    /// MiB of memory for the exact and band keys (about 176 bytes a document) and the
    /// shingle sets kept for verification (at most a quarter); past it the keys are written to
    /// sorted runs on disk and merged band by band, and the candidates' sets are checked from
    /// disk, so any corpus completes. Nothing else is held per document [default: 1024].
    #[arg(long, value_name = "MIB")]
    memory_mib: Option<usize>,

    /// Also remove from each kept document the paragraphs (lines of 10 or more characters) that
    /// an earlier kept document holds, as CCNet does; a document left empty is removed.
    #[arg(long)]
    paragraphs: bool,

    /// Where the sorted runs go (a temporary folder inside it) [default: the system's
    /// temporary folder].
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,

    #[command(flatten)]
    skip: crate::cmd::SkipInvalid,

    /// A TOML file of settings (every key of docs/dedup.md); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
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
    let mut flags = Overrides::default();
    flags
        .set("threshold", args.threshold)
        .set("num_perm", args.num_perm)
        .set("ngram", args.ngram)
        .set(
            "unit",
            args.shingle.map(|s| match s {
                Shingle::Chars => dedup::Unit::Chars,
                Shingle::Words => dedup::Unit::Words,
            }),
        )
        .set("bands", args.bands)
        .set("rows", args.rows)
        .switch("exact", args.no_exact, false)
        .switch("near", args.exact_only, false)
        .set(
            "keep",
            args.keep.map(|k| match k {
                Keep::First => dedup::KeepPolicy::First,
                Keep::Longest => dedup::KeepPolicy::Longest,
                Keep::Score => dedup::KeepPolicy::Score,
            }),
        )
        .switch("verify", args.no_verify, false)
        .set(
            "memory_budget",
            args.memory_mib.map(|m| m.saturating_mul(1 << 20)),
        )
        .set("spill_dir", args.spill_dir)
        .switch("paragraphs", args.paragraphs, true)
        .set(
            "decontaminate",
            (!args.decontaminate.is_empty()).then_some(args.decontaminate),
        )
        .set("decontaminate_ngram", args.decontaminate_ngram)
        .switch("skip_invalid", args.skip.skip_invalid, true);
    let cfg: Config = settings::resolve(&Config::default(), args.config.as_deref(), &flags)?;
    if args.print_config {
        return settings::print(&cfg);
    }
    let dedup = Dedup::from_config(&cfg)?;
    if let Some(n) = dedup.contamination_ngrams() {
        tracing::info!(
            "decontamination: {n} distinct {}-grams from {} evaluation files",
            cfg.decontaminate_ngram,
            cfg.decontaminate.len()
        );
    }
    let p = dedup.params();
    if cfg.near {
        tracing::info!(
            "LSH: {} bands x {} rows at threshold {}: false-positive area {:.4}, false-negative area {:.4}",
            p.bands,
            p.rows,
            cfg.threshold,
            p.false_positive,
            p.false_negative
        );
    }
    let bar = Bar::new(global.quiet);
    let report = match args.output {
        None => {
            let mut store = Store::open_existing(&args.db.db)?;
            dedup::run_store(&mut store, &dedup, &bar)?
        }
        Some(kept) => {
            let outputs = FileOutputs {
                kept,
                clusters: args.clusters,
            };
            dedup::run_files(&args.input, &outputs, &dedup, &bar)?
        }
    };
    outln!(
        "deduplicated {} documents in {:.1} s ({:.0} documents/s): {} kept, {} exact and {} near duplicates removed, in {} clusters",
        report.documents,
        report.seconds,
        report.documents as f64 / report.seconds.max(1e-9),
        report.kept,
        report.exact_duplicates,
        report.near_duplicates,
        report.clusters
    );
    if cfg.near {
        outln!(
            "LSH: {} bands x {} rows at threshold {}",
            p.bands,
            p.rows,
            cfg.threshold
        );
    }
    if report.invalid_lines > 0 {
        outln!("{} invalid input lines skipped", report.invalid_lines);
    }
    if cfg.paragraphs {
        outln!(
            "paragraph-level dedup: {} repeated paragraphs removed, {} documents left empty",
            report.paragraphs_removed,
            report.emptied_by_paragraphs
        );
    }
    if report.spilled_runs > 0 {
        outln!(
            "the LSH index outgrew --memory-mib: {} sorted runs per band on disk, merged",
            report.spilled_runs
        );
    }
    if report.verified_on_disk {
        outln!("the candidates' shingle sets outgrew --memory-mib: checked from disk");
    }
    if !cfg.decontaminate.is_empty() {
        outln!(
            "{} documents removed as contaminated by the evaluation sets",
            report.contaminated
        );
    }
    if cfg.near {
        outln!(
            "near-duplicate candidate pairs: {}, of which {} turned down by the exact Jaccard check",
            report.candidate_pairs,
            report.pairs_rejected_by_verification
        );
    }
    Ok(())
}
