//! Byte-level BPE for Chinese: a fast trainer, an encoder that gives the same ids as Hugging
//! Face `tokenizers` on the `tokenizer.json` it writes, and llm.c-format token shards.
//!
//! - [`pretok`]: the split of text into pieces (a Qwen-style expression with capped Han runs,
//!   optionally jieba's word boundaries);
//! - [`train`]: piece counting and the merge loop;
//! - [`sample`]: a sample of the documents sized to the memory bound, for inputs past it;
//! - [`bpe`]: the model, encoding and decoding;
//! - [`hf`]: `tokenizer.json`, `vocab.json` and `merges.txt`;
//!
//! The token shards' format lives in `corpus::shards`, so that the trainer reads them without
//! linking this crate.

pub mod bpe;
pub mod hf;
pub mod pretok;
pub mod run;
pub mod sample;
pub mod train;

pub use bpe::{Cache, InvalidTokenizer, Tokenizer};
pub use pretok::{PreTokenizer, Segment};
pub use run::{
    CountReport, EncodeConfig, EncodeReport, Error, Sharder, Source, TrainReport, count_pieces,
    encode, join_shards, train_from_counts, train_tokenizer,
};
pub use train::{END_OF_TEXT, PieceCounts, TrainConfig, train};

/// What turns text into ids for shards: a trained BPE, or raw UTF-8 bytes (ids 0 to 255, the
/// end-of-text token 256), for byte-level models.
#[derive(Debug, Clone)]
pub enum Encoder {
    Bpe(Tokenizer),
    Bytes,
}

impl Encoder {
    pub fn vocab_size(&self) -> usize {
        match self {
            Encoder::Bpe(t) => t.vocab_size(),
            Encoder::Bytes => 257,
        }
    }

    /// The id that goes before every document.
    pub fn end_of_text(&self) -> Result<u32, InvalidTokenizer> {
        match self {
            Encoder::Bpe(t) => t.special(END_OF_TEXT).ok_or_else(|| {
                InvalidTokenizer(format!("the tokenizer has no {END_OF_TEXT} token"))
            }),
            Encoder::Bytes => Ok(256),
        }
    }

    /// The encoder of a run or shard folder: its `tokenizer.json`, or raw bytes when it has
    /// none (a byte-level run).
    pub fn for_folder(dir: &std::path::Path) -> Result<Encoder, InvalidTokenizer> {
        let path = dir.join("tokenizer.json");
        if path.exists() {
            Ok(Encoder::Bpe(hf::load(&path)?))
        } else {
            Ok(Encoder::Bytes)
        }
    }

    /// A prompt's ids, after the end-of-text id that starts every document.
    pub fn prompt(&self, text: &str) -> Result<Vec<u32>, InvalidTokenizer> {
        let mut ids = vec![self.end_of_text()?];
        match self {
            Encoder::Bpe(t) => ids.extend(t.encode(text)),
            Encoder::Bytes => ids.extend(text.bytes().map(u32::from)),
        }
        Ok(ids)
    }

    /// The text of generated ids (ids that are not bytes are left out of a byte-level run's).
    pub fn decode(&self, ids: &[u32]) -> Result<String, InvalidTokenizer> {
        Ok(String::from_utf8_lossy(&self.decode_bytes(ids)?).into_owned())
    }

    /// The bytes of generated ids, which may end inside a character (for streaming).
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, InvalidTokenizer> {
        match self {
            Encoder::Bpe(t) => t.decode_bytes(ids),
            Encoder::Bytes => Ok(ids.iter().filter(|&&i| i < 256).map(|&i| i as u8).collect()),
        }
    }

    /// The ids of many texts, in parallel, in order.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        use rayon::prelude::*;
        match self {
            Encoder::Bpe(t) => t.encode_batch(texts),
            Encoder::Bytes => texts
                .par_iter()
                .map(|t| t.as_ref().bytes().map(u32::from).collect())
                .collect(),
        }
    }
}
