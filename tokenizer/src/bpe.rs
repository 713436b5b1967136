//! The byte-level BPE model: ids 0 to 255 are the bytes, then one id per merge result, then
//! the special tokens. Encoding applies merges by rank within each pre-tokenizer piece, as
//! Hugging Face's BPE model does, so both give the same ids.

use aho_corasick::{AhoCorasick, MatchKind};
use rustc_hash::FxHashMap;

use crate::pretok::{self, PreTokenizer};

/// Pieces already encoded, by their bytes (bounded: cleared past a million pieces).
#[derive(Debug, Default)]
pub struct Cache(FxHashMap<Box<[u8]>, Box<[u32]>>);

/// A trained tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    pub(crate) pre: PreTokenizer,
    /// The bytes of every id; a special token's are its text.
    pub(crate) vocab: Vec<Vec<u8>>,
    /// Merges in rank order: (left, right) ids.
    pub(crate) merges: Vec<(u32, u32)>,
    /// (left, right) -> (rank, merged id)
    ranks: FxHashMap<(u32, u32), (u32, u32)>,
    pub(crate) specials: Vec<(String, u32)>,
    special_matcher: Option<AhoCorasick>,
}

/// A vocabulary that does not hold together.
#[derive(Debug, thiserror::Error)]
#[error("invalid tokenizer: {0}")]
pub struct InvalidTokenizer(pub String);

impl Tokenizer {
    /// Builds a tokenizer from its parts: `vocab[i]` the bytes of id `i` (the first 256 must be
    /// the single bytes in order), merges in rank order, specials with their ids.
    pub fn new(
        pre: PreTokenizer,
        vocab: Vec<Vec<u8>>,
        merges: Vec<(u32, u32)>,
        specials: Vec<(String, u32)>,
    ) -> Result<Tokenizer, InvalidTokenizer> {
        if vocab.len() < 256 || (0..256).any(|b| vocab[b] != [b as u8]) {
            return Err(InvalidTokenizer(
                "ids 0 to 255 must be the 256 single bytes".into(),
            ));
        }
        let mut by_bytes: FxHashMap<&[u8], u32> = FxHashMap::default();
        for (id, bytes) in vocab.iter().enumerate() {
            by_bytes.entry(bytes.as_slice()).or_insert(id as u32);
        }
        let mut ranks = FxHashMap::default();
        for (rank, &(a, b)) in merges.iter().enumerate() {
            let (Some(x), Some(y)) = (vocab.get(a as usize), vocab.get(b as usize)) else {
                return Err(InvalidTokenizer(format!(
                    "merge {rank} names an unknown id"
                )));
            };
            let joined = [x.as_slice(), y.as_slice()].concat();
            let Some(&id) = by_bytes.get(joined.as_slice()) else {
                return Err(InvalidTokenizer(format!(
                    "merge {rank} makes a token that is not in the vocabulary"
                )));
            };
            ranks.entry((a, b)).or_insert((rank as u32, id));
        }
        for (text, id) in &specials {
            if vocab.get(*id as usize).map(Vec::as_slice) != Some(text.as_bytes()) {
                return Err(InvalidTokenizer(format!(
                    "special token {text:?} is not id {id}"
                )));
            }
        }
        let special_matcher = if specials.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(specials.iter().map(|(t, _)| t))
                    .map_err(|e| InvalidTokenizer(e.to_string()))?,
            )
        };
        Ok(Tokenizer {
            pre,
            vocab,
            merges,
            ranks,
            specials,
            special_matcher,
        })
    }

    /// Number of ids.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn pre_tokenizer(&self) -> &PreTokenizer {
        &self.pre
    }

    pub fn merges(&self) -> &[(u32, u32)] {
        &self.merges
    }

    /// The bytes of an id.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.vocab.get(id as usize).map(Vec::as_slice)
    }

    /// The id of a special token.
    pub fn special(&self, text: &str) -> Option<u32> {
        self.specials.iter().find(|(t, _)| t == text).map(|s| s.1)
    }

    pub fn specials(&self) -> &[(String, u32)] {
        &self.specials
    }

    /// The ids of a text; special tokens in it become their ids and are never split.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 2);
        self.encode_into(text, &mut out, &mut Cache::default());
        out
    }

    /// Appends the ids of `text` to `out`, remembering pieces' ids in `cache` (one cache per
    /// thread and tokenizer: see [`Tokenizer::encode_batch`]).
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>, cache: &mut Cache) {
        let Some(m) = &self.special_matcher else {
            return self.encode_ordinary(text, out, cache);
        };
        let mut at = 0;
        for found in m.find_iter(text) {
            self.encode_ordinary(&text[at..found.start()], out, cache);
            out.push(self.specials[found.pattern().as_usize()].1);
            at = found.end();
        }
        self.encode_ordinary(&text[at..], out, cache);
    }

    /// The ids of many texts, in parallel, in order.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        use rayon::prelude::*;
        texts
            .par_iter()
            .map_init(Cache::default, |cache, t| {
                let mut out = Vec::with_capacity(t.as_ref().len() / 2);
                self.encode_into(t.as_ref(), &mut out, cache);
                out
            })
            .collect()
    }

    /// The ids of any bytes: valid UTF-8 stretches are encoded as text, other bytes as their
    /// byte ids, so that `decode(encode_bytes(b)) == b` for every `b`.
    pub fn encode_bytes(&self, bytes: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cache = Cache::default();
        for chunk in bytes.utf8_chunks() {
            self.encode_into(chunk.valid(), &mut out, &mut cache);
            out.extend(chunk.invalid().iter().map(|&b| u32::from(b)));
        }
        out
    }

    /// Text without special-token handling.
    fn encode_ordinary(&self, text: &str, out: &mut Vec<u32>, cache: &mut Cache) {
        if text.is_empty() {
            return;
        }
        if cache.0.len() > 1 << 20 {
            cache.0.clear();
        }
        pretok::pieces(text, &self.pre, |piece| {
            let bytes = piece.as_bytes();
            if bytes.len() == 1 {
                out.push(u32::from(bytes[0]));
                return;
            }
            if let Some(ids) = cache.0.get(bytes) {
                out.extend_from_slice(ids);
                return;
            }
            let ids = self.bpe(bytes);
            out.extend_from_slice(&ids);
            cache.0.insert(bytes.into(), ids.into_boxed_slice());
        });
    }

    /// Merges the bytes of one piece: the lowest-ranked adjacent pair first, leftmost on ties.
    pub(crate) fn bpe(&self, bytes: &[u8]) -> Vec<u32> {
        let mut ids: Vec<u32> = bytes.iter().map(|&b| u32::from(b)).collect();
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for i in 0..ids.len().saturating_sub(1) {
                if let Some(&(rank, id)) = self.ranks.get(&(ids[i], ids[i + 1]))
                    && best.is_none_or(|b| rank < b.0)
                {
                    best = Some((rank, i, id));
                }
            }
            let Some((_, i, id)) = best else { break };
            ids[i] = id;
            ids.remove(i + 1);
        }
        ids
    }

    /// The bytes of ids; an unknown id is an error.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, InvalidTokenizer> {
        let mut out = Vec::with_capacity(ids.len() * 3);
        for &id in ids {
            let bytes = self
                .token_bytes(id)
                .ok_or_else(|| InvalidTokenizer(format!("unknown id {id}")))?;
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }

    /// The text of ids, with invalid UTF-8 replaced.
    pub fn decode(&self, ids: &[u32]) -> Result<String, InvalidTokenizer> {
        Ok(String::from_utf8_lossy(&self.decode_bytes(ids)?).into_owned())
    }
}
