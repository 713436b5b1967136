//! The tokenizer stage's two jobs as library calls: [`train_tokenizer`] (documents to a
//! `tokenizer.json`) and [`encode`] (documents to llm.c token shards with a manifest), over
//! files or the store's kept documents.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use corpus::shards::{Dtype, Manifest, ShardError, ShardWriter, Split};
use corpus::{Progress, RunStatus, Selection, Store};
use serde::{Deserialize, Serialize};

use crate::sample::Sketch;
use crate::{Encoder, InvalidTokenizer, PieceCounts, TrainConfig};

/// What can stop the tokenizer stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting that cannot work: the key and the range it takes.
    #[error("invalid tokenizer setting {0}")]
    Config(String),
    /// A tokenizer file that cannot be read or used.
    #[error("{0}")]
    Tokenizer(#[from] InvalidTokenizer),
    /// An input line that is not text.
    #[error("{}:{line}: {message}", path.display())]
    BadLine {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("no documents to train on (the inputs are empty, or the store keeps none)")]
    NoDocuments,
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error(transparent)]
    Shards(#[from] ShardError),
    #[error(transparent)]
    Corpus(#[from] corpus::Error),
}

impl Error {
    /// True when the error is the user's input rather than a failure of the machine.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Config(_) | Error::Tokenizer(_) | Error::BadLine { .. } | Error::NoDocuments => {
                true
            }
            Error::Corpus(e) => e.is_bad_input(),
            Error::Io { .. } | Error::Shards(_) => false,
        }
    }
}

impl From<crate::train::ConfigError> for Error {
    fn from(e: crate::train::ConfigError) -> Error {
        Error::Config(e.0)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |err| Error::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Where documents come from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// Text files (`.txt`: one document per non-empty line) or JSONL(.zst) files (their `text`).
    Files(&'a [PathBuf]),
    /// The documents the store keeps (`Selection::Kept`), in store order.
    Store(&'a Store),
}

const BATCH: usize = 4096;
/// A batch also ends past this many bytes of text, so that long documents do not make it large.
const BATCH_BYTES: usize = 8 << 20;

/// Calls `f` with batches of (id, text), in order (4,096 documents or 8 MiB of text at most,
/// whichever comes first, unless one document is longer). With `skip`, lines of files that are not
/// documents (or not UTF-8) are counted into `invalid` instead of stopping the reading.
pub fn for_batches(
    source: Source<'_>,
    skip: bool,
    invalid: &corpus::InvalidLines,
    mut f: impl FnMut(&[(String, String)]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut batch: Vec<(String, String)> = Vec::with_capacity(BATCH);
    let mut bytes = 0;
    let mut push = |batch: &mut Vec<(String, String)>, id: String, text: String| {
        bytes += text.len();
        batch.push((id, text));
        if batch.len() == BATCH || bytes >= BATCH_BYTES {
            f(batch)?;
            batch.clear();
            bytes = 0;
        }
        Ok::<(), Error>(())
    };
    match source {
        Source::Store(store) => {
            for doc in store.documents(Selection::Kept) {
                let d = doc?.doc;
                push(&mut batch, d.id, d.text)?;
            }
        }
        Source::Files(paths) => {
            for path in paths {
                let name = path.display().to_string();
                if name.ends_with(".txt") {
                    let file = std::fs::File::open(path).map_err(|err| corpus::Error::Input {
                        path: path.clone(),
                        err,
                    })?;
                    let mut reader = std::io::BufReader::new(file);
                    let mut line = Vec::new();
                    let mut n = 0u64;
                    loop {
                        line.clear();
                        let read = reader.read_until(b'\n', &mut line).map_err(|e| {
                            corpus::Error::Input {
                                path: path.clone(),
                                err: e,
                            }
                        })?;
                        if read == 0 {
                            break;
                        }
                        n += 1;
                        let text = match std::str::from_utf8(&line) {
                            Ok(t) => t.trim_end_matches(['\n', '\r']),
                            Err(e) => {
                                let bad = corpus::Error::BadLine {
                                    path: path.clone(),
                                    line: n,
                                    message: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                                };
                                if skip {
                                    invalid.add(&bad);
                                    continue;
                                }
                                return Err(bad.into());
                            }
                        };
                        if !text.trim().is_empty() {
                            push(&mut batch, format!("{name}:{n}"), text.to_string())?;
                        }
                    }
                } else {
                    let one = std::slice::from_ref(path);
                    for doc in corpus::read_all_skipping(one, skip, invalid) {
                        let d = doc?;
                        push(&mut batch, d.id, d.text)?;
                    }
                }
            }
        }
    }
    if !batch.is_empty() {
        f(&batch)?;
    }
    Ok(())
}

/// What training a tokenizer did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrainReport {
    pub documents: u64,
    pub bytes: u64,
    /// The documents the tokenizer was trained on: all of them (level 0), or the sample of
    /// them at `sample_level` ([`crate::sample::rate`] of them) when their piece table would
    /// pass `memory_mib` (see [`crate::sample`]).
    pub sample_level: u8,
    pub sampled_documents: u64,
    pub sampled_bytes: u64,
    pub distinct_pieces: u64,
    /// Estimated bytes of the piece table trained on.
    pub table_bytes: u64,
    /// Times the piece table was pruned to stay under `memory_mib`, the pieces split, and the
    /// count at or under which they were (0: never pruned).
    pub pruned: u64,
    pub split_pieces: u64,
    pub split_threshold: u64,
    pub vocab_size: usize,
    pub merges: usize,
    pub counting_s: f64,
    /// Input lines skipped as invalid (with `skip_invalid`).
    pub invalid_lines: u64,
    pub seconds: f64,
}

/// Trains a tokenizer on the source's documents and writes `output` (`tokenizer.json`, with
/// `vocab.json`, `merges.txt` and the settings sidecar beside it; folders created). On the
/// store it is recorded as a `tokenizer` run.
pub fn train_tokenizer(
    source: Source<'_>,
    cfg: &TrainConfig,
    output: &Path,
    progress: &dyn Progress,
) -> Result<TrainReport, Error> {
    cfg.validate()?;
    corpus::check_output(output)?;
    let run = match source {
        Source::Store(store) => Some({
            store.require_complete("train a tokenizer on", &["clean", "dedup"])?;
            store.begin_run(
                "tokenizer",
                &serde_json::json!({ "config": cfg, "output": output }),
            )?
        }),
        Source::Files(_) => None,
    };
    let result = train_inner(source, cfg, output, progress);
    if let (Some(run), Source::Store(store)) = (run, source) {
        let status = RunStatus::of(&result);
        store.finish_run(run, status, &result.as_ref().ok())?;
    }
    result
}

fn train_inner(
    source: Source<'_>,
    cfg: &TrainConfig,
    output: &Path,
    progress: &dyn Progress,
) -> Result<TrainReport, Error> {
    let start = Instant::now();
    progress.start("count", None);
    let limit = cfg.table_limit();
    // The whole input's table while it fits; past the bound, only the sketch of each sample's
    // table goes on, and a second pass counts the largest sample that fits. Standard input and
    // pipes cannot be read twice: bounded, their table is pruned instead.
    let twice = match source {
        Source::Store(_) => true,
        Source::Files(paths) => paths
            .iter()
            .all(|p| p.as_os_str() != "-" && std::fs::metadata(p).is_ok_and(|m| m.is_file())),
    };
    let mut counts = match limit {
        Some(l) if !twice => PieceCounts::with_limit(l),
        _ => PieceCounts::default(),
    };
    let mut sketch = limit.filter(|_| twice).map(|_| Sketch::default());
    let mut whole = true;
    let (mut texts_seen, mut bytes_seen) = (0u64, 0u64);
    let invalid = corpus::InvalidLines::default();
    for_batches(source, cfg.skip_invalid, &invalid, |batch| {
        let texts: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
        let pieces = crate::sample::batch_pieces(&texts, &cfg.pre, 0);
        texts_seen += pieces.texts;
        bytes_seen += pieces.bytes;
        if let Some(s) = sketch.as_mut() {
            s.add(&pieces);
        }
        if whole {
            counts.add_pieces(&pieces);
            if twice && limit.is_some_and(|l| counts.held_bytes() > l) {
                whole = false;
                let full = std::mem::take(&mut counts);
                std::thread::spawn(move || drop(full));
            }
        }
        progress.update(bytes_seen, texts_seen);
        Ok(())
    })?;
    progress.finish();
    let mut level = 0;
    if let (false, Some(limit), Some(sketch)) = (whole, limit, &sketch) {
        // three quarters of the bound: room for the sketch's error
        level = sketch.level_for(limit as f64 * 0.75);
        let bytes = sketch.table_bytes();
        tracing::info!(
            "tokenizer: the whole input's piece table passes --memory-mib {} (about {:.0} MiB); counting {:.1}% of the documents (about {:.0} MiB)",
            cfg.memory_mib,
            bytes.first().copied().unwrap_or(0.0) / (1 << 20) as f64,
            100.0 * crate::sample::rate(level),
            bytes.get(usize::from(level)).copied().unwrap_or(0.0) / (1 << 20) as f64
        );
        progress.start("count sample", Some(bytes_seen));
        counts = PieceCounts::with_limit(limit);
        // lines skipped are counted once, in the first pass
        let again = corpus::InvalidLines::default();
        let mut read = 0u64;
        for_batches(source, cfg.skip_invalid, &again, |batch| {
            let texts: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
            counts.add_pieces(&crate::sample::batch_pieces(&texts, &cfg.pre, level));
            read += texts.iter().map(|t| t.len() as u64).sum::<u64>();
            progress.update(read, counts.texts);
            Ok(())
        })?;
        progress.finish();
    }
    let counting_s = start.elapsed().as_secs_f64();
    tracing::info!(
        "tokenizer: {} documents, {} bytes trained on, {} distinct pieces ({:.0} MiB) counted in {counting_s:.1} s",
        counts.texts,
        counts.bytes,
        counts.distinct(),
        counts.held_bytes() as f64 / (1 << 20) as f64
    );
    if counts.prunes > 0 {
        tracing::info!(
            "tokenizer: the piece table was pruned {} times to stay under --memory-mib: {} pieces seen at most {} times split",
            counts.prunes,
            counts.split,
            counts.threshold
        );
    }
    let tok = merge_and_save(&counts, cfg, output, progress)?;
    let report = TrainReport {
        documents: texts_seen,
        bytes: bytes_seen,
        sample_level: level,
        sampled_documents: counts.texts,
        sampled_bytes: counts.bytes,
        distinct_pieces: counts.distinct() as u64,
        table_bytes: counts.held_bytes() as u64,
        pruned: counts.prunes,
        split_pieces: counts.split,
        split_threshold: counts.threshold,
        vocab_size: tok.vocab_size(),
        merges: tok.merges().len(),
        counting_s,
        invalid_lines: invalid.count(),
        seconds: 0.0,
    };
    // freeing a million pieces takes a while: not on the way out
    std::thread::spawn(move || drop(counts));
    Ok(TrainReport {
        seconds: start.elapsed().as_secs_f64(),
        ..report
    })
}

/// How documents become shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {
    /// Share of documents (by a hash of their id) that go to the validation shards.
    pub val_fraction: f64,
    /// Tokens per shard (llm.c's FineWeb shards hold 100 million).
    pub shard_tokens: usize,
    /// From files: skip lines that are not documents or not UTF-8 (counted and reported)
    /// instead of stopping at the first.
    pub skip_invalid: bool,
}

impl Default for EncodeConfig {
    fn default() -> Self {
        EncodeConfig {
            val_fraction: 0.005,
            shard_tokens: 100_000_000,
            skip_invalid: false,
        }
    }
}

impl EncodeConfig {
    /// Refuses settings that cannot work, naming the key and the range it takes.
    pub fn validate(&self) -> Result<(), Error> {
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(Error::Config(format!(
                "val_fraction: must be in [0, 1), not {}",
                self.val_fraction
            )));
        }
        if self.shard_tokens == 0 {
            return Err(Error::Config(
                "shard_tokens: must be at least 1".to_string(),
            ));
        }
        Ok(())
    }
}

/// The encoder a `--tokenizer` value names: `bytes`, or a tokenizer.json (with its bytes, copied
/// beside the shards).
pub fn load_encoder(spec: &str) -> Result<(Encoder, Option<Vec<u8>>), Error> {
    if spec == "bytes" {
        return Ok((Encoder::Bytes, None));
    }
    let path = Path::new(spec);
    let tok = crate::hf::load(path)?;
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok((Encoder::Bpe(tok), Some(bytes)))
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
    /// Starts a shard folder (created if missing; the shards and manifest of an earlier run
    /// removed).
    pub fn create(
        encoder: &'a Encoder,
        dir: &Path,
        cfg: &EncodeConfig,
    ) -> Result<Sharder<'a>, Error> {
        cfg.validate()?;
        let eot = encoder.end_of_text()?;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        clear_shards(dir)?;
        let dtype = Dtype::for_vocab(encoder.vocab_size());
        Ok(Sharder {
            encoder,
            dir: dir.to_path_buf(),
            writer: ShardWriter::new(dir, dtype, cfg.shard_tokens, eot),
            val_fraction: cfg.val_fraction,
            dtype,
            chars: 0,
        })
    }

    /// Encodes a batch of (id, text) and appends each to its split.
    pub fn add_batch(&mut self, batch: &[(String, String)]) -> Result<(), Error> {
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
    /// the manifest, last (a manifest in place means the folder is complete).
    pub fn finish(mut self, json: Option<&[u8]>) -> Result<Manifest, Error> {
        self.writer.finish()?;
        // the tokenizer goes with its shards (the trainer records it; sampling decodes with it)
        let hash = match (json, self.encoder) {
            (Some(bytes), Encoder::Bpe(tok)) => {
                let copy = self.dir.join("tokenizer.json");
                std::fs::write(&copy, bytes).map_err(io(&copy))?;
                crate::hf::save_sidecar(&copy, bytes, tok.pre_tokenizer()).map_err(io(&copy))?;
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
            shards: {
                let mut shards = w.shards.clone();
                sort_shards(&mut shards);
                shards
            },
        };
        manifest.write(&self.dir)?;
        Ok(manifest)
    }
}

/// What encoding did.
#[derive(Debug, Clone, Serialize)]
pub struct EncodeReport {
    pub manifest: Manifest,
    /// Characters encoded.
    pub chars: u64,
    /// Input lines skipped as invalid (with `skip_invalid`).
    pub invalid_lines: u64,
    pub seconds: f64,
}

impl EncodeReport {
    /// Characters per token (the end-of-text tokens not counted).
    pub fn chars_per_token(&self) -> f64 {
        let m = &self.manifest;
        let docs = m.documents.train + m.documents.val;
        let tokens = m.tokens.train + m.tokens.val;
        self.chars as f64 / (tokens.saturating_sub(docs)).max(1) as f64
    }
}

/// Encodes the source's documents into llm.c shards in `output` with the tokenizer `spec`
/// names (a tokenizer.json path, or `bytes`); on the store it is recorded as an `encode` run.
pub fn encode(
    source: Source<'_>,
    spec: &str,
    output: &Path,
    cfg: &EncodeConfig,
    progress: &dyn Progress,
) -> Result<EncodeReport, Error> {
    cfg.validate()?;
    if output.is_file() {
        return Err(corpus::Error::BadOutput {
            path: output.to_path_buf(),
            why: "is a file; name a folder for the shards".into(),
        }
        .into());
    }
    let (encoder, json) = load_encoder(spec)?;
    let run = match source {
        Source::Store(store) => Some({
            store.require_complete("encode", &["clean", "dedup"])?;
            store.begin_run(
                "encode",
                &serde_json::json!({ "config": cfg, "tokenizer": spec, "output": output }),
            )?
        }),
        Source::Files(_) => None,
    };
    let start = Instant::now();
    let result = (|| {
        let mut sharder = Sharder::create(&encoder, output, cfg)?;
        tracing::info!(
            "encode: {} ids into {} ({} tokens a shard, {} held out)",
            encoder.vocab_size(),
            output.display(),
            cfg.shard_tokens,
            cfg.val_fraction
        );
        progress.start("encode", None);
        let invalid = corpus::InvalidLines::default();
        for_batches(source, cfg.skip_invalid, &invalid, |batch| {
            sharder.add_batch(batch)?;
            let (bytes, docs) = sharder.progress();
            progress.update(bytes, docs);
            Ok(())
        })?;
        let chars = sharder.chars;
        let manifest = sharder.finish(json.as_deref())?;
        progress.finish();
        Ok(EncodeReport {
            manifest,
            chars,
            invalid_lines: invalid.count(),
            seconds: start.elapsed().as_secs_f64(),
        })
    })();
    if let (Some(run), Source::Store(store)) = (run, source) {
        let status = RunStatus::of(&result);
        store.finish_run(run, status, &result.as_ref().ok().map(|r| &r.manifest))?;
    }
    result
}

/// The merge loop over counted pieces, and the tokenizer written to `output` (its folder
/// created): the end of [`train_tokenizer`] and of [`train_from_counts`].
fn merge_and_save(
    counts: &PieceCounts,
    cfg: &TrainConfig,
    output: &Path,
    progress: &dyn Progress,
) -> Result<crate::Tokenizer, Error> {
    if counts.texts == 0 {
        return Err(Error::NoDocuments);
    }
    let wanted = cfg.vocab_size.saturating_sub(256 + 1 + cfg.specials.len()) as u64;
    progress.start("merge", Some(wanted));
    let tok = crate::train(counts, cfg, |done, _| {
        progress.update(done as u64, done as u64)
    })?;
    progress.finish();
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    crate::hf::save(&tok, output).map_err(io(output))?;
    Ok(tok)
}

/// The first bytes of a piece-count file (its layout's version in the last).
const PIECES_MAGIC: &[u8; 8] = b"ZHPIECE2";

/// What one task's piece count did ([`count_pieces`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CountReport {
    pub documents: u64,
    pub bytes: u64,
    pub distinct_pieces: u64,
    /// Times the table was pruned to stay under `memory_mib` (0: the counts are exact).
    pub pruned: u64,
    pub invalid_lines: u64,
    pub seconds: f64,
}

/// Tokenizer training split over tasks, the map: counts the pieces of this task's documents
/// (under `memory_mib`'s table bound, pruned past it as lossy counting does) and writes the
/// table to `output` (synced, then renamed). [`train_from_counts`] sums the tables and trains.
pub fn count_pieces(
    source: Source<'_>,
    cfg: &TrainConfig,
    output: &Path,
    progress: &dyn Progress,
) -> Result<CountReport, Error> {
    use std::io::Write;
    cfg.validate()?;
    let start = Instant::now();
    let mut counts = cfg
        .table_limit()
        .map_or_else(PieceCounts::default, PieceCounts::with_limit);
    let invalid = corpus::InvalidLines::default();
    progress.start("count", None);
    for_batches(source, cfg.skip_invalid, &invalid, |batch| {
        let texts: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
        counts.add_pieces(&crate::sample::batch_pieces(&texts, &cfg.pre, 0));
        progress.update(counts.bytes, counts.texts);
        Ok(())
    })?;
    progress.finish();
    // the folder created, the file synced and renamed into place
    let write = || -> std::io::Result<()> {
        let mut w = corpus::shard::AtomicFile::create(output)?;
        w.write_all(PIECES_MAGIC)?;
        for v in [
            counts.texts,
            counts.bytes,
            counts.prunes,
            invalid.count(),
            counts.distinct() as u64,
        ] {
            w.write_all(&v.to_le_bytes())?;
        }
        for (piece, n) in counts.iter() {
            w.write_all(&(piece.len() as u32).to_le_bytes())?;
            w.write_all(piece.as_bytes())?;
            w.write_all(&n.to_le_bytes())?;
        }
        w.finish()
    };
    write().map_err(io(output))?;
    Ok(CountReport {
        documents: counts.texts,
        bytes: counts.bytes,
        distinct_pieces: counts.distinct() as u64,
        pruned: counts.prunes,
        invalid_lines: invalid.count(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Tokenizer training split over tasks, the reduce: sums the tables [`count_pieces`] wrote
/// (under the same bound) and trains on them, writing `output` as [`train_tokenizer`] does.
/// While every table and their sum fit `memory_mib` the counts are exact, and the tokenizer is
/// the one [`train_tokenizer`] trains on all the tasks' documents; past the bound, the sum is
/// pruned (lossy counting) where one process would count a sample of the documents.
pub fn train_from_counts(
    tables: &[PathBuf],
    cfg: &TrainConfig,
    output: &Path,
    progress: &dyn Progress,
) -> Result<TrainReport, Error> {
    use std::io::Read;
    cfg.validate()?;
    corpus::check_output(output)?;
    let start = Instant::now();
    let mut counts = cfg
        .table_limit()
        .map_or_else(PieceCounts::default, PieceCounts::with_limit);
    progress.start("sum", Some(tables.len() as u64));
    let (mut rank_prunes, mut invalid_lines) = (0u64, 0u64);
    for (k, path) in tables.iter().enumerate() {
        let bad = |what: &str| Error::BadLine {
            path: path.clone(),
            line: 1,
            message: format!("not a piece-count file of this zhcorpus: {what}"),
        };
        let file = std::fs::File::open(path).map_err(io(path))?;
        let mut r = std::io::BufReader::with_capacity(1 << 20, file);
        let mut word = [0u8; 8];
        r.read_exact(&mut word).map_err(io(path))?;
        if &word != PIECES_MAGIC {
            return Err(bad("its first bytes"));
        }
        let mut next = |r: &mut std::io::BufReader<std::fs::File>| -> Result<u64, Error> {
            r.read_exact(&mut word).map_err(io(path))?;
            Ok(u64::from_le_bytes(word))
        };
        let (texts, bytes) = (next(&mut r)?, next(&mut r)?);
        rank_prunes += next(&mut r)?;
        invalid_lines += next(&mut r)?;
        let n = next(&mut r)?;
        let mut piece = Vec::new();
        for _ in 0..n {
            let mut len = [0u8; 4];
            r.read_exact(&mut len).map_err(io(path))?;
            piece.clear();
            (&mut r)
                .take(u64::from(u32::from_le_bytes(len)))
                .read_to_end(&mut piece)
                .map_err(io(path))?;
            if piece.len() != u32::from_le_bytes(len) as usize {
                return Err(bad("it ends inside a piece"));
            }
            let text = std::str::from_utf8(&piece).map_err(|_| bad("a piece is not UTF-8"))?;
            let count = next(&mut r)?;
            counts.add_count(text, count);
        }
        counts.added(texts, bytes);
        progress.update(k as u64 + 1, counts.texts);
    }
    progress.finish();
    let counting_s = start.elapsed().as_secs_f64();
    let tok = merge_and_save(&counts, cfg, output, progress)?;
    Ok(TrainReport {
        documents: counts.texts,
        bytes: counts.bytes,
        sample_level: 0,
        sampled_documents: counts.texts,
        sampled_bytes: counts.bytes,
        distinct_pieces: counts.distinct() as u64,
        table_bytes: counts.held_bytes() as u64,
        // the ranks' prunes too: a rank's table pruned makes the sum inexact though it fits
        pruned: counts.prunes + rank_prunes,
        split_pieces: counts.split,
        split_threshold: counts.threshold,
        vocab_size: tok.vocab_size(),
        merges: tok.merges().len(),
        counting_s,
        invalid_lines,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The shards of many encode tasks (`dirs`, each a folder [`encode`] wrote, in corpus order)
/// joined into `output` as one encode over all their documents writes them: each split's
/// tokens in order, cut every `shard_tokens`, the same file names, the counts summed; so the
/// files are byte-identical to a one-process encode of the same documents. The folders must
/// have been encoded with the same tokenizer and settings.
pub fn join_shards(
    dirs: &[PathBuf],
    output: &Path,
    shard_tokens: usize,
) -> Result<Manifest, Error> {
    let manifests: Vec<Manifest> = dirs
        .iter()
        .map(|d| Manifest::read(d))
        .collect::<Result<_, _>>()?;
    let Some(first) = manifests.first() else {
        return Err(Error::NoDocuments);
    };
    for (dir, m) in dirs.iter().zip(&manifests) {
        let same = first.tokenizer_hash == m.tokenizer_hash
            && first.vocab_size == m.vocab_size
            && first.dtype == m.dtype
            && first.val_fraction == m.val_fraction;
        if !same {
            return Err(Error::Config(format!(
                "{}: encoded with another tokenizer or settings than {}",
                dir.display(),
                dirs[0].display()
            )));
        }
    }
    // every shard listed is there, whole, before anything in `output` is removed
    for (dir, m) in dirs.iter().zip(&manifests) {
        for shard in &m.shards {
            let header = corpus::shards::read_header(&dir.join(&shard.file))?;
            if header.tokens != shard.tokens {
                return Err(Error::Config(format!(
                    "{}: {} tokens where the manifest says {}",
                    dir.join(&shard.file).display(),
                    header.tokens,
                    shard.tokens
                )));
            }
        }
    }
    std::fs::create_dir_all(output).map_err(io(output))?;
    clear_shards(output)?;
    let mut writer = ShardWriter::new(output, first.dtype, shard_tokens, first.end_of_text);
    for split in [Split::Train, Split::Val] {
        for (dir, m) in dirs.iter().zip(&manifests) {
            for shard in m.shards.iter().filter(|s| s.split == split) {
                let tokens = corpus::shards::read_tokens(&dir.join(&shard.file))?;
                writer.extend(split, &tokens)?;
            }
        }
    }
    writer.finish()?;
    let mut joined = first.clone();
    joined.documents = Default::default();
    joined.tokens = Default::default();
    joined.bytes = Default::default();
    for m in &manifests {
        for (a, b) in [
            (&mut joined.documents, m.documents),
            (&mut joined.tokens, m.tokens),
            (&mut joined.bytes, m.bytes),
        ] {
            a.train += b.train;
            a.val += b.val;
        }
    }
    joined.shards = writer.shards.clone();
    sort_shards(&mut joined.shards);
    for name in ["tokenizer.json", "tokenizer.zhcorpus.json"] {
        let from = dirs[0].join(name);
        if from.exists() {
            let to = output.join(name);
            std::fs::copy(&from, &to).map_err(io(&to))?;
        }
    }
    joined.write(output)?;
    Ok(joined)
}

/// Shards listed train first, each split in file order: the manifest of the same shards is
/// the same whatever order they were written in.
fn sort_shards(shards: &mut [corpus::shards::ShardInfo]) {
    shards.sort_by(|a, b| (a.split as u8, &a.file).cmp(&(b.split as u8, &b.file)));
}

/// Removes the shards and manifest of an earlier run from a shard folder.
fn clear_shards(dir: &Path) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let name = entry
            .map_err(io(dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let shard =
            (name.starts_with("train_") || name.starts_with("val_")) && name.ends_with(".bin");
        if shard || name == Manifest::FILE {
            let path = dir.join(&name);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}
