use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use pipeline::{Config, Span, Stage};
use serde_json::Value;

use crate::Global;
use crate::error::UsageError;
use crate::progress::Bar;
use crate::settings::{self, Overrides};

/// `zhcorpus pipeline --config pipeline.toml [--output DIR] [--from STAGE] [--until STAGE]`
#[derive(Args)]
pub struct PipelineArgs {
    /// The pipeline's settings: `inputs`, and one section per stage ([import], [crawl],
    /// [clean], [dedup], [tokenizer], [encode], [train]) with the same keys as that stage's
    /// own --config. `--print-config` without it prints a commented starting file.
    #[arg(long, value_name = "FILE", required_unless_present = "print_config")]
    config: Option<PathBuf>,

    /// The folder for everything: corpus.db, tokenizer/, shards/, run/. Running the same
    /// command again skips the stages whose output is complete.
    #[arg(long, short, value_name = "DIR", default_value = "zhcorpus-out")]
    output: PathBuf,

    /// Run this stage and the ones after it again, even when complete: import, crawl, clean,
    /// dedup, tokenizer, encode or train.
    #[arg(long, value_name = "STAGE", value_parser = stage)]
    from: Option<Stage>,

    /// Stop after this stage.
    #[arg(long, value_name = "STAGE", value_parser = stage)]
    until: Option<Stage>,

    /// Print the settings in effect (or, without --config, a commented starting file) and exit.
    #[arg(long)]
    print_config: bool,
}

fn stage(name: &str) -> Result<Stage, String> {
    Stage::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

pub fn run(global: &Global, args: PipelineArgs) -> Result<()> {
    let Some(file) = &args.config else {
        out!("{}", starting_file()?);
        return Ok(());
    };
    let config: Config = settings::resolve(&Config::default(), Some(file), &Overrides::default())?;
    if args.print_config {
        return settings::print(&config);
    }
    if let (Some(from), Some(until)) = (args.from, args.until)
        && from > until
    {
        anyhow::bail!(UsageError(format!(
            "--from {} comes after --until {}",
            from.name(),
            until.name()
        )));
    }
    for w in config.train.warnings() {
        tracing::warn!("[train] {w}");
    }
    let span = Span {
        from: args.from,
        until: args.until,
    };
    let report = pipeline::run(&config, &args.output, span, &Bar::new(global.quiet))?;
    for s in &report.stages {
        outln!(
            "{:<10} {}{}",
            s.stage.name(),
            s.outcome,
            summary(s.stage, &s.report)
                .map(|x| format!(": {x}"))
                .unwrap_or_default()
        );
    }
    outln!("output in {}", args.output.display());
    outln!("report: {}", report.report.display());
    Ok(())
}

/// One line of a stage's counts.
pub fn summary(stage: Stage, r: &Value) -> Option<String> {
    if r.is_null() {
        return None;
    }
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    Some(match stage {
        Stage::Import => format!(
            "{} documents read, {} new, {} already stored",
            n("read"),
            n("inserted"),
            n("existing")
        ),
        Stage::Crawl => format!(
            "{} pages fetched in {:.1} s, {} documents extracted, {} URLs disallowed by robots.txt",
            n("pages"),
            f("elapsed_s"),
            n("documents"),
            n("robots_disallowed")
        ),
        Stage::Images => format!(
            "{} images fetched ({} stored), {} pairs judged, {} kept, {} written in {} shards",
            r["fetch"]["requests"].as_u64().unwrap_or(0),
            r["fetch"]["stored"].as_u64().unwrap_or(0),
            r["filter"]["pairs"].as_u64().unwrap_or(0),
            r["filter"]["kept"].as_u64().unwrap_or(0),
            r["export"]["samples"].as_u64().unwrap_or(0),
            r["export"]["shards"].as_u64().unwrap_or(0)
        ),
        Stage::Clean => {
            let reasons: Vec<String> = r["rejected"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
                .unwrap_or_default();
            let reasons = if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            };
            format!(
                "{} documents, {} kept, {} rejected{reasons}",
                n("documents"),
                n("kept"),
                n("documents") - n("kept"),
            )
        }
        Stage::Dedup => format!(
            "{} documents, {} exact and {} near duplicates removed",
            n("documents"),
            n("exact_duplicates"),
            n("near_duplicates")
        ),
        Stage::Tokenizer => format!(
            "{} ids ({} merges) from {} documents",
            n("vocab_size"),
            n("merges"),
            n("documents")
        ),
        Stage::Encode => {
            let m = &r["manifest"];
            let both =
                |k: &str| m[k]["train"].as_u64().unwrap_or(0) + m[k]["val"].as_u64().unwrap_or(0);
            format!(
                "{} documents ({} train, {} validation), {} tokens, {} shards",
                both("documents"),
                m["documents"]["train"],
                m["documents"]["val"],
                both("tokens"),
                m["shards"].as_array().map_or(0, Vec::len)
            )
        }
        Stage::Train => format!(
            "{} steps, loss {:.2} -> {:.2}, validation {}; {:.0} tokens/s",
            n("steps"),
            f("first_loss"),
            f("loss"),
            r["val_loss"]
                .as_f64()
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "not measured".into()),
            f("tokens_per_s")
        ),
    })
}

/// A starting file: every section with its defaults, and what each is for.
fn starting_file() -> Result<String> {
    let example = Config {
        inputs: vec!["docs.jsonl".into()],
        ..Config::default()
    };
    let body = toml::to_string(&example)?;
    let mut out = String::from(
        "# zhcorpus pipeline settings: `zhcorpus pipeline --config THIS_FILE --output DIR`.\n\
         # Every key has the default shown; delete what you do not change. Each section takes the\n\
         # same keys as its stage command's --config (see docs/).\n\
         #\n\
         # inputs: JSONL(.zst) documents to import (at least `text`, usually `id`); and/or\n\
         # [crawl] seeds = [\"https://...\"] to crawl. At least one of the two.\n",
    );
    for line in body.lines() {
        let comment = match line {
            "[import]" => Some("how `inputs` are imported (docs/import.md)"),
            "[crawl]" => Some("the crawl runs when `seeds` has URLs (docs/crawl.md)"),
            "[crawl.fetch]" => Some("the HTTP client; durations in seconds"),
            "[clean]" => Some("quality rules, PII masking, classifier (docs/clean.md)"),
            "[clean.rules]" => Some("the rules' thresholds"),
            "[dedup]" => Some("exact and MinHash LSH near-duplicate removal (docs/dedup.md)"),
            "[tokenizer]" => Some("byte-level BPE on the kept documents (docs/tokenizer.md)"),
            "[tokenizer.pre]" => Some("the pre-tokenizer's split"),
            "[encode]" => Some("llm.c token shards of the kept documents"),
            "[slurm]" => Some(
                "the batch stages as Slurm job arrays: `zhcorpus slurm submit` (docs/cluster.md); \
                 `zhcorpus pipeline` ignores it",
            ),
            "[train]" => Some(
                "the GPT run, over the tiny preset; model.vocab_size comes from the tokenizer \
                 (docs/train.md)",
            ),
            _ => None,
        };
        if let Some(c) = comment {
            out.push_str(&format!("# {c}\n"));
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}
