use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use corpus::shards::{Dtype, Manifest, ShardWriter, Split};
use corpus::{Progress, Selection, Store};
use tokenizer::{Encoder, PieceCounts, PreTokenizer, Segment, TrainConfig};

use crate::Global;
use crate::cmd::extract::BadInput;
use crate::progress::Bar;

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
    /// Text files (one document per non-empty line) or JSONL(.zst) files (their `text`);
    /// without it, the documents kept by clean and dedup in --db.
    #[arg(long, short, num_args = 1.., value_name = "FILE")]
    input: Vec<PathBuf>,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// Where tokenizer.json goes (vocab.json and merges.txt go beside it).
    #[arg(long, short, value_name = "FILE", default_value = "tokenizer.json")]
    output: PathBuf,

    /// Ids in all: 256 bytes, the merges, the special tokens.
    #[arg(long, default_value_t = TrainConfig::default().vocab_size, value_name = "N")]
    vocab_size: usize,

    /// Pairs seen fewer times are never merged (the vocabulary may then stay smaller).
    #[arg(long, default_value_t = TrainConfig::default().min_frequency, value_name = "N")]
    min_frequency: u64,

    /// Longest run of Han characters in one pre-tokenizer piece; longer runs are cut.
    #[arg(long, default_value_t = PreTokenizer::default().han_max, value_name = "N")]
    han_max: usize,

    /// jieba word boundaries: `none` (runs cut every --han-max characters), `jieba-long`
    /// (runs longer than --han-max cut at word boundaries), `jieba` (every word a piece). The
    /// jieba modes cannot be written as a Hugging Face pre-tokenizer: other tools reading the
    /// tokenizer.json split by the expression alone.
    #[arg(long, value_enum, default_value = "none", value_name = "MODE")]
    pre_segment: PreSegment,

    /// Share of multi-byte character occurrences whose characters are made tokens first,
    /// before any other merge (sentencepiece's character coverage for Chinese); 0 for textbook
    /// byte-level BPE, which reaches the same characters many times slower.
    #[arg(long, default_value_t = TrainConfig::default().char_coverage, value_name = "F")]
    char_coverage: f64,

    /// Special tokens besides <|endoftext|> (which is always the first), never split.
    #[arg(long = "special", value_name = "TOKEN")]
    specials: Vec<String>,
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
    #[arg(long, short, value_name = "FILE|bytes")]
    tokenizer: String,

    /// The folder for the shards, manifest.json and a copy of tokenizer.json.
    #[arg(long, short, value_name = "DIR")]
    output: PathBuf,

    /// Share of documents (by a hash of their id) that go to the validation shards.
    #[arg(long, default_value_t = 0.005, value_name = "F")]
    val_fraction: f64,

    /// Tokens per shard (llm.c's FineWeb shards hold 100 million).
    #[arg(long, default_value_t = 100_000_000, value_name = "N")]
    shard_tokens: usize,
}

pub fn run(global: &Global, args: TokenizerArgs) -> Result<()> {
    match args.command {
        TokenizerCommand::Train(a) => train(global, a),
        TokenizerCommand::Encode(a) => encode(global, a),
    }
}

const BATCH: usize = 4096;

/// Calls `f` with batches of (id, text): from the files in order, or from the database's kept
/// documents.
fn for_batches(
    global: &Global,
    inputs: &Inputs,
    mut f: impl FnMut(&[(String, String)]) -> Result<()>,
) -> Result<()> {
    let mut batch: Vec<(String, String)> = Vec::with_capacity(BATCH);
    let mut push = |batch: &mut Vec<(String, String)>, id: String, text: String| -> Result<()> {
        batch.push((id, text));
        if batch.len() == BATCH {
            f(batch)?;
            batch.clear();
        }
        Ok(())
    };
    if inputs.input.is_empty() {
        let store = Store::open_existing(&global.db)?;
        for doc in store.documents(Selection::Kept) {
            let d = doc?.doc;
            push(&mut batch, d.id, d.text)?;
        }
    } else {
        for path in &inputs.input {
            let name = path.display().to_string();
            if name.ends_with(".txt") {
                let file = fs_err::File::open(path)?;
                for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                    let line = line.map_err(|e| BadInput(format!("{name}:{}: {e}", n + 1)))?;
                    if !line.trim().is_empty() {
                        push(&mut batch, format!("{name}:{}", n + 1), line)?;
                    }
                }
            } else {
                for doc in corpus::read_all(std::slice::from_ref(path)) {
                    let d = doc?;
                    push(&mut batch, d.id, d.text)?;
                }
            }
        }
    }
    if !batch.is_empty() {
        f(&batch)?;
    }
    Ok(())
}

fn train(global: &Global, args: TrainArgs) -> Result<()> {
    let cfg = TrainConfig {
        vocab_size: args.vocab_size,
        min_frequency: args.min_frequency,
        pre: PreTokenizer {
            han_max: args.han_max.max(1),
            segment: match args.pre_segment {
                PreSegment::None => Segment::None,
                PreSegment::Jieba => Segment::Jieba,
                PreSegment::JiebaLong => Segment::JiebaLong,
            },
        },
        specials: args.specials.clone(),
        char_coverage: args.char_coverage,
    };
    let start = Instant::now();
    let bar = Bar::new(global.quiet);
    bar.start("count", None);
    let mut counts = PieceCounts::default();
    for_batches(global, &args.inputs, |batch| {
        let texts: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
        counts.add_batch(&texts, &cfg.pre);
        bar.update(counts.bytes, counts.texts);
        Ok(())
    })?;
    bar.finish();
    let counted = start.elapsed().as_secs_f64();
    if counts.texts == 0 {
        return Err(BadInput("no documents to train on".into()).into());
    }
    let wanted = cfg.vocab_size.saturating_sub(256 + 1 + cfg.specials.len()) as u64;
    bar.start("merge", Some(wanted));
    let tok = tokenizer::train(&counts, &cfg, |done, _| {
        bar.update(done as u64, done as u64)
    })
    .map_err(|e| BadInput(e.to_string()))?;
    bar.finish();
    let (texts, bytes, distinct) = (counts.texts, counts.bytes, counts.distinct());
    // freeing a million pieces takes a while: not on the way out
    std::thread::spawn(move || drop(counts));
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    tokenizer::hf::save(&tok, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let total = start.elapsed().as_secs_f64();
    println!(
        "trained a {}-token vocabulary ({} merges) on {} documents, {:.1} MB, {} distinct pieces, in {:.1} s (counting {:.1} s, merging {:.1} s)",
        tok.vocab_size(),
        tok.merges().len(),
        texts,
        bytes as f64 / 1e6,
        distinct,
        total,
        counted,
        total - counted
    );
    if tok.vocab_size() < cfg.vocab_size {
        println!(
            "no pair occurs --min-frequency {} times any more: the vocabulary stopped at {}",
            cfg.min_frequency,
            tok.vocab_size()
        );
    }
    println!(
        "wrote {} (with vocab.json and merges.txt beside it)",
        args.output.display()
    );
    Ok(())
}

/// Documents into a shard folder: encoded in parallel a batch at a time, split by id.
pub struct Sharder<'a> {
    encoder: &'a Encoder,
    dir: PathBuf,
    writer: ShardWriter,
    val_fraction: f64,
    dtype: Dtype,
    /// Characters encoded (for characters per token).
    pub chars: u64,
}

impl<'a> Sharder<'a> {
    /// Starts a shard folder (created if missing; shards of an earlier run removed).
    pub fn create(
        encoder: &'a Encoder,
        dir: &Path,
        val_fraction: f64,
        shard_tokens: usize,
    ) -> Result<Sharder<'a>> {
        let eot = encoder.end_of_text().map_err(|e| BadInput(e.to_string()))?;
        fs_err::create_dir_all(dir)?;
        for entry in fs_err::read_dir(dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if (name.starts_with("train_") || name.starts_with("val_")) && name.ends_with(".bin") {
                fs_err::remove_file(dir.join(&name))?;
            }
        }
        let dtype = Dtype::for_vocab(encoder.vocab_size());
        Ok(Sharder {
            encoder,
            dir: dir.to_path_buf(),
            writer: ShardWriter::new(dir, dtype, shard_tokens, eot),
            val_fraction,
            dtype,
            chars: 0,
        })
    }

    /// Encodes a batch of (id, text) and appends each to its split.
    pub fn add_batch(&mut self, batch: &[(String, String)]) -> Result<()> {
        let texts: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
        let ids = self.encoder.encode_batch(&texts);
        for ((id, text), ids) in batch.iter().zip(&ids) {
            self.chars += text.chars().count() as u64;
            let split = Split::of(id, self.val_fraction);
            self.writer.add(split, ids, text.len() as u64)?;
        }
        Ok(())
    }

    /// Bytes and documents so far.
    pub fn progress(&self) -> (u64, u64) {
        let w = &self.writer;
        (
            w.bytes.train + w.bytes.val,
            w.documents.train + w.documents.val,
        )
    }

    /// Writes the last shards, a copy of the tokenizer (`json`, its tokenizer.json bytes) and
    /// the manifest.
    pub fn finish(mut self, json: Option<&[u8]>) -> Result<Manifest> {
        self.writer.finish()?;
        // the tokenizer goes with its shards (the trainer records it; sampling decodes with it)
        let hash = match (json, self.encoder) {
            (Some(bytes), Encoder::Bpe(tok)) => {
                let copy = self.dir.join("tokenizer.json");
                fs_err::write(&copy, bytes)?;
                tokenizer::hf::save_sidecar(&copy, bytes, tok.pre_tokenizer())?;
                format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
            }
            _ => String::new(),
        };
        let w = &self.writer;
        let manifest = Manifest {
            format: "llm.c".into(),
            tokenizer: match self.encoder {
                Encoder::Bpe(_) => "bpe",
                Encoder::Bytes => "bytes",
            }
            .into(),
            tokenizer_hash: hash,
            vocab_size: self.encoder.vocab_size(),
            end_of_text: w.end_of_text(),
            dtype: self.dtype,
            val_fraction: self.val_fraction,
            documents: w.documents,
            tokens: w.tokens,
            bytes: w.bytes,
            shards: w.shards.clone(),
        };
        manifest.write(&self.dir)?;
        Ok(manifest)
    }
}

fn encode(global: &Global, args: EncodeArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.val_fraction) {
        return Err(BadInput(format!(
            "--val-fraction must be in [0, 1), not {}",
            args.val_fraction
        ))
        .into());
    }
    let (encoder, json) = if args.tokenizer == "bytes" {
        (Encoder::Bytes, None)
    } else {
        let path = Path::new(&args.tokenizer);
        let tok = tokenizer::hf::load(path).map_err(|e| BadInput(e.to_string()))?;
        (Encoder::Bpe(tok), Some(fs_err::read(path)?))
    };
    let mut sharder =
        Sharder::create(&encoder, &args.output, args.val_fraction, args.shard_tokens)?;
    let start = Instant::now();
    let bar = Bar::new(global.quiet);
    bar.start("encode", None);
    for_batches(global, &args.inputs, |batch| {
        sharder.add_batch(batch)?;
        let (bytes, docs) = sharder.progress();
        bar.update(bytes, docs);
        Ok(())
    })?;
    let chars = sharder.chars;
    let manifest = sharder.finish(json.as_deref())?;
    bar.finish();
    let seconds = start.elapsed().as_secs_f64();
    let docs = manifest.documents.train + manifest.documents.val;
    let tokens = manifest.tokens.train + manifest.tokens.val;
    let bytes = manifest.bytes.train + manifest.bytes.val;
    println!(
        "encoded {docs} documents ({} train, {} validation) into {tokens} tokens in {} shards ({:?}) in {:.1} s ({:.1} MB/s); {:.2} characters per token",
        manifest.documents.train,
        manifest.documents.val,
        manifest.shards.len(),
        manifest.dtype,
        seconds,
        bytes as f64 / 1e6 / seconds.max(1e-9),
        chars as f64 / (tokens - docs).max(1) as f64
    );
    println!("wrote {}", args.output.join(Manifest::FILE).display());
    Ok(())
}
