//! Byte-level BPE for Chinese: a fast trainer, an encoder that gives the same ids as Hugging
//! Face `tokenizers` on the `tokenizer.json` it writes, and llm.c-format token shards.
//!
//! - [`pretok`]: the split of text into pieces (a Qwen-style expression with capped Han runs,
//!   optionally jieba's word boundaries);
//! - [`train`]: piece counting and the merge loop;
//! - [`bpe`]: the model, encoding and decoding;
//! - [`hf`]: `tokenizer.json`, `vocab.json` and `merges.txt`;
//!
//! The token shards' format lives in `corpus::shards`, so that the trainer reads them without
//! linking this crate.

pub mod bpe;
pub mod hf;
pub mod pretok;
pub mod train;

pub use bpe::{Cache, InvalidTokenizer, Tokenizer};
pub use pretok::{PreTokenizer, Segment};
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
