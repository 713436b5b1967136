use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use corpus::Store;
use tokenizer::{EncodeConfig, Source, TrainConfig};

use crate::progress::Bar;
use crate::settings::{self, Overrides};
use crate::{Db, Global};

/// `zhcorpus tokenizer train` and `zhcorpus tokenizer encode`
#[derive(Args)]
pub struct TokenizerArgs {
    #[command(subcommand)]
    command: TokenizerCommand,
}

#[derive(Subcommand)]
enum TokenizerCommand {
    /// Train a byte-level BPE tokenizer; writes a Hugging Face tokenizer.json (with vocab.json
    /// and merges.txt beside it).
    Train(TrainArgs),
    /// Encode documents into llm.c token shards (train/val split by document) with a manifest.
    Encode(EncodeArgs),
}

/// Where documents come from: files, or the database's kept documents.
#[derive(Args)]
struct Inputs {
    #[command(flatten)]
    db: Db,

    /// Text files (one document per non-empty line) or JSONL(.zst) files (their `text`);
    /// without it, the documents kept by clean and dedup in --db.
    #[arg(long, short, num_args = 1.., value_name = "FILE")]
    input: Vec<PathBuf>,

    #[command(flatten)]
    skip: crate::cmd::SkipInvalid,
}

impl Inputs {
    /// Opens the store when the documents come from it.
    fn store(&self) -> Result<Option<Store>> {
        Ok(if self.input.is_empty() {
            Some(Store::open_existing(&self.db.db)?)
        } else {
            None
        })
    }
}

fn source<'a>(inputs: &'a Inputs, store: &'a Option<Store>) -> Source<'a> {
    match store {
        Some(s) => Source::Store(s),
        None => Source::Files(&inputs.input),
    }
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// Where tokenizer.json goes (vocab.json and merges.txt go beside it).
    #[arg(long, short, value_name = "FILE", default_value = "tokenizer.json")]
    output: PathBuf,

    /// Ids in all: 256 bytes, the merges, the special tokens [default: 32000].
    #[arg(long, value_name = "N")]
    vocab_size: Option<usize>,

    /// Pairs seen fewer times are never merged (the vocabulary may then stay smaller)
    /// [default: 2].
    #[arg(long, value_name = "N")]
    min_frequency: Option<u64>,

    /// Longest run of Han characters in one pre-tokenizer piece; longer runs are cut
    /// [default: 16].
    #[arg(long, value_name = "N")]
    han_max: Option<usize>,

    /// jieba word boundaries: `none` (runs cut every --han-max characters), `jieba-long`
    /// (runs longer than --han-max cut at word boundaries), `jieba` (every word a piece). The
    /// jieba modes cannot be written as a Hugging Face pre-tokenizer: other tools reading the
    /// tokenizer.json split by the expression alone [default: none].
    #[arg(long, value_enum, value_name = "MODE")]
    pre_segment: Option<PreSegment>,

    /// Share of multi-byte character occurrences whose characters are made tokens first,
    /// before any other merge (sentencepiece's character coverage for Chinese); 0 for textbook
    /// byte-level BPE, which reaches the same characters many times slower [default: 0.99].
    #[arg(allow_negative_numbers = true, long, value_name = "F")]
    char_coverage: Option<f64>,

    /// Special tokens besides <|endoftext|> (which is always the first), never split.
    #[arg(long = "special", value_name = "TOKEN")]
    specials: Vec<String>,

    /// MiB the training may hold. When the whole input's piece table would not fit (its share
    /// is what is left after 32 MiB and 1.5 KiB per token, divided by 7), a second pass
    /// trains on the largest sample of the documents that fits, so that any amount of text
    /// trains in this much memory; 0 for no bound [default: 4096].
    #[arg(long, value_name = "MIB")]
    memory_mib: Option<u64>,

    /// A TOML file of settings (vocab_size, min_frequency, char_coverage, specials,
    /// memory_mib, [pre] han_max and segment); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum PreSegment {
    None,
    Jieba,
    JiebaLong,
}

#[derive(Args)]
struct EncodeArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// A tokenizer.json, or `bytes` for raw UTF-8 bytes (ids 0-255, <|endoftext|> 256).
    #[arg(
        long,
        short,
        value_name = "FILE|bytes",
        required_unless_present = "print_config"
    )]
    tokenizer: Option<String>,

    /// The folder for the shards, manifest.json and a copy of tokenizer.json.
    #[arg(
        long,
        short,
        value_name = "DIR",
        required_unless_present = "print_config"
    )]
    output: Option<PathBuf>,

    /// Share of documents (by a hash of their id) that go to the validation shards
    /// [default: 0.005].
    #[arg(allow_negative_numbers = true, long, value_name = "F")]
    val_fraction: Option<f64>,

    /// Tokens per shard (llm.c's FineWeb shards hold 100 million) [default: 100000000].
    #[arg(long, value_name = "N")]
    shard_tokens: Option<usize>,

    /// A TOML file of settings (val_fraction, shard_tokens); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn run(global: &Global, args: TokenizerArgs) -> Result<()> {
    match args.command {
        TokenizerCommand::Train(a) => train(global, a),
        TokenizerCommand::Encode(a) => encode(global, a),
    }
}

fn train(global: &Global, args: TrainArgs) -> Result<()> {
    let mut flags = Overrides::default();
    flags
        .set("vocab_size", args.vocab_size)
        .set("min_frequency", args.min_frequency)
        .set("pre.han_max", args.han_max)
        .set(
            "pre.segment",
            args.pre_segment.map(|s| match s {
                PreSegment::None => tokenizer::Segment::None,
                PreSegment::Jieba => tokenizer::Segment::Jieba,
                PreSegment::JiebaLong => tokenizer::Segment::JiebaLong,
            }),
        )
        .set("char_coverage", args.char_coverage)
        .set("memory_mib", args.memory_mib)
        .set(
            "specials",
            (!args.specials.is_empty()).then_some(args.specials),
        )
        .switch("skip_invalid", args.inputs.skip.skip_invalid, true);
    let cfg: TrainConfig =
        settings::resolve(&TrainConfig::default(), args.config.as_deref(), &flags)?;
    if args.print_config {
        return settings::print(&cfg);
    }
    let store = args.inputs.store()?;
    let r = tokenizer::train_tokenizer(
        source(&args.inputs, &store),
        &cfg,
        &args.output,
        &Bar::new(global.quiet),
    )?;
    outln!(
        "trained a {}-token vocabulary ({} merges) on {} documents, {:.1} MB, {} distinct pieces, in {:.1} s (counting {:.1} s, merging {:.1} s)",
        r.vocab_size,
        r.merges,
        r.documents,
        r.bytes as f64 / 1e6,
        r.distinct_pieces,
        r.seconds,
        r.counting_s,
        r.seconds - r.counting_s
    );
    if r.invalid_lines > 0 {
        outln!("{} invalid input lines skipped", r.invalid_lines);
    }
    if r.sample_level > 0 {
        outln!(
            "the pieces of all {} documents would pass --memory-mib {}: trained on a {:.1}% sample of them ({} documents, {:.1} MB)",
            r.documents,
            cfg.memory_mib,
            100.0 * tokenizer::sample::rate(r.sample_level),
            r.sampled_documents,
            r.sampled_bytes as f64 / 1e6
        );
    }
    if r.pruned > 0 {
        outln!(
            "the piece table was pruned {} times to stay under --memory-mib {}: {} pieces seen at most {} times were split into halves",
            r.pruned,
            cfg.memory_mib,
            r.split_pieces,
            r.split_threshold
        );
    }
    if r.vocab_size < cfg.vocab_size {
        outln!(
            "no pair occurs --min-frequency {} times any more: the vocabulary stopped at {}",
            cfg.min_frequency,
            r.vocab_size
        );
    }
    outln!(
        "wrote {} (with vocab.json and merges.txt beside it)",
        args.output.display()
    );
    Ok(())
}

fn encode(global: &Global, args: EncodeArgs) -> Result<()> {
    let mut flags = Overrides::default();
    flags
        .set("val_fraction", args.val_fraction)
        .set("shard_tokens", args.shard_tokens)
        .switch("skip_invalid", args.inputs.skip.skip_invalid, true);
    let cfg: EncodeConfig =
        settings::resolve(&EncodeConfig::default(), args.config.as_deref(), &flags)?;
    if args.print_config {
        return settings::print(&cfg);
    }
    let (Some(spec), Some(output)) = (&args.tokenizer, &args.output) else {
        unreachable!("clap requires --tokenizer and --output without --print-config")
    };
    let store = args.inputs.store()?;
    let r = tokenizer::encode(
        source(&args.inputs, &store),
        spec,
        output,
        &cfg,
        &Bar::new(global.quiet),
    )?;
    let m = &r.manifest;
    let docs = m.documents.train + m.documents.val;
    let tokens = m.tokens.train + m.tokens.val;
    let bytes = m.bytes.train + m.bytes.val;
    outln!(
        "encoded {docs} documents ({} train, {} validation) into {tokens} tokens in {} shards ({:?}) in {:.1} s ({:.1} MB/s); {:.2} characters per token",
        m.documents.train,
        m.documents.val,
        m.shards.len(),
        m.dtype,
        r.seconds,
        bytes as f64 / 1e6 / r.seconds.max(1e-9),
        r.chars_per_token()
    );
    if r.invalid_lines > 0 {
        outln!("{} invalid input lines skipped", r.invalid_lines);
    }
    outln!(
        "wrote {}",
        output.join(corpus::shards::Manifest::FILE).display()
    );
    Ok(())
}
