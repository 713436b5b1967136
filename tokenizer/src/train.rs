//! The BPE trainer: pieces counted in parallel, then merges chosen one at a time with pair
//! counts kept up to date incrementally (only the pieces holding the merged pair are touched)
//! and a priority queue of pairs with lazy deletion. Memory is proportional to the number of
//! distinct pieces, not to the input size.

use std::collections::BinaryHeap;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::bpe::Tokenizer;
use crate::pretok::PreTokenizer;

/// The end-of-text token every tokenizer has.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// `memory_mib` by default: a bound no corpus that fits a workstation's memory unbounded
/// reaches, so only larger ones are pruned.
pub const DEFAULT_MEMORY_MIB: u64 = 4096;
/// The merge loop holds about this many times the piece table's estimated bytes at its peak
/// (the pieces as symbol lists, every pair occurrence sorted, the per-pair piece lists, the
/// queue), measured on the benchmark's mix at 6; the table gets what is left of the bound
/// after [`TrainConfig::fixed_mib`], divided by this.
const TABLE_SHARE: usize = 7;

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Ids in all: 256 bytes, the merges, and the special tokens.
    pub vocab_size: usize,
    /// Pairs seen fewer times than this are never merged.
    pub min_frequency: u64,
    pub pre: PreTokenizer,
    /// Special tokens besides `<|endoftext|>` (which is always there, the first of them).
    pub specials: Vec<String>,
    /// Share of the multi-byte character occurrences whose characters become tokens before any
    /// other merge (see [`train`]); 0 for textbook byte-level BPE.
    pub char_coverage: f64,
    /// From files: skip lines that are not documents or not UTF-8 (counted and reported)
    /// instead of stopping at the first.
    pub skip_invalid: bool,
    /// MiB the whole training may hold (the piece table, then the merge loop's working
    /// tables); the piece table is pruned to fit (see [`PieceCounts`]). 0: no bound.
    pub memory_mib: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            vocab_size: 32_000,
            min_frequency: 2,
            pre: PreTokenizer::default(),
            specials: Vec::new(),
            char_coverage: 0.99,
            skip_invalid: false,
            memory_mib: DEFAULT_MEMORY_MIB,
        }
    }
}

impl TrainConfig {
    /// Refuses settings that cannot work, naming the key and the range it takes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        let least = 256 + 1 + self.specials.len();
        if self.vocab_size < least || self.vocab_size > u32::MAX as usize {
            return bad(
                "vocab_size",
                &format!(
                    "must be at least {least} (256 bytes, the special tokens) and fit 32 bits"
                ),
            );
        }
        if self.min_frequency == 0 {
            return bad("min_frequency", "must be at least 1");
        }
        if self.pre.han_max == 0 {
            return bad("pre.han_max", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.char_coverage) {
            return bad("char_coverage", "must be a share from 0 to 1");
        }
        if self.specials.iter().any(String::is_empty) {
            return bad("specials", "a special token cannot be empty");
        }
        let least = self.fixed_mib() + 8;
        if self.memory_mib > 0 && self.memory_mib < least {
            return bad(
                "memory_mib",
                &format!(
                    "must be 0 (no bound) or at least {least} for a vocabulary of {}",
                    self.vocab_size
                ),
            );
        }
        Ok(())
    }

    /// MiB a training takes whatever its input: the program and its threads (about 15 MiB), a
    /// batch of text read (at most 8 MiB unless one document is longer) with its pieces, the
    /// sketch of the samples (about 4.5 MiB), together 32 MiB; and what the merge loop keeps per token
    /// (1.5 KiB; measured on the benchmark's mix, a 32,000-token vocabulary trained on 1 MB
    /// takes 65 MiB).
    pub fn fixed_mib(&self) -> u64 {
        32 + (self.vocab_size as u64 * 3).div_ceil(2048)
    }

    /// The piece table's share of `memory_mib`, in bytes (None: no bound).
    pub fn table_limit(&self) -> Option<usize> {
        (self.memory_mib > 0).then(|| {
            let left = self.memory_mib.saturating_sub(self.fixed_mib()) as usize;
            left.saturating_mul(1 << 20) / TABLE_SHARE
        })
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid tokenizer setting {0}")]
pub struct ConfigError(pub String);

/// Distinct pieces and how often each occurs, in a table that can be held under a memory bound.
///
/// Bounded ([`PieceCounts::with_limit`]), the table is pruned whenever its estimated size passes
/// the limit, as lossy counting does: every piece seen at most `threshold` times so far is
/// taken out and split into two halves that share its middle character, which are counted in
/// its place, until the table is down to three quarters of the limit; the threshold doubles
/// while a pass does not get there, and never comes down. Every pair of adjacent characters
/// keeps its count (a two-character piece alone, split last, loses its pair): what the bound
/// gives up is the pairs of longer tokens across the middle of rare pieces, the counts a
/// frequent piece had before it was first pruned, and the middle characters counted twice.
/// Frequent pieces (the ones merges are made of) are kept whole. Single characters are never
/// split. The result does not depend on the thread count.
#[derive(Debug, Default)]
pub struct PieceCounts {
    counts: FxHashMap<Box<str>, u64>,
    /// Texts and bytes counted.
    pub texts: u64,
    pub bytes: u64,
    /// Estimated bytes the table holds (see [`PieceCounts::entry_bytes`]).
    held: usize,
    /// Bound on `held`; 0 for none.
    limit: usize,
    /// Pieces seen at most this often were split when the table was pruned (0: never pruned).
    pub threshold: u64,
    /// Times the table was pruned, and pieces split.
    pub prunes: u64,
    pub split: u64,
}

/// Estimated bytes of one table entry besides its text: the slot (the box's pointer and length,
/// the count, a control byte) at the lowest load a growing table has, and the allocator's
/// header of the text.
const ENTRY: usize = 64;

impl PieceCounts {
    /// A table held under about `bytes` bytes (the characters alone, never split, may need more).
    pub fn with_limit(bytes: usize) -> PieceCounts {
        PieceCounts {
            limit: bytes.max(1),
            ..PieceCounts::default()
        }
    }

    /// Estimated bytes a piece's entry takes.
    pub fn entry_bytes(piece: &str) -> usize {
        ENTRY + piece.len().next_multiple_of(16)
    }

    /// Estimated bytes the table holds.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Counts the pieces of a batch of texts, in parallel.
    pub fn add_batch<S: AsRef<str> + Sync>(&mut self, texts: &[S], pre: &PreTokenizer) {
        self.add_pieces(&crate::sample::batch_pieces(texts, pre, 0));
    }

    /// Counts a batch's pieces (see [`crate::sample::batch_pieces`]).
    pub fn add_pieces(&mut self, batch: &crate::sample::BatchPieces<'_>) {
        for (k, &(n, _)) in &batch.pieces {
            self.add(k, n);
        }
        self.texts += batch.texts;
        self.bytes += batch.bytes;
        if self.limit > 0 && self.held > self.limit {
            self.prune();
        }
    }

    fn add(&mut self, piece: &str, n: u64) {
        match self.counts.get_mut(piece) {
            Some(c) => *c += n,
            None => {
                self.held += Self::entry_bytes(piece);
                self.counts.insert(piece.into(), n);
            }
        }
    }

    /// Splits rare pieces into halves until the table is down to three quarters of the limit.
    fn prune(&mut self) {
        let target = self.limit / 4 * 3;
        self.prunes += 1;
        let mut t = self.threshold.max(1);
        loop {
            let rare: Vec<(Box<str>, u64)> = self
                .counts
                .extract_if(|k, v| *v <= t && k.chars().nth(1).is_some())
                .collect();
            for (piece, n) in &rare {
                self.held -= Self::entry_bytes(piece);
                let (left, right) = halves(piece);
                self.add(left, *n);
                self.add(right, *n);
            }
            self.split += rare.len() as u64;
            if self.held <= target {
                break;
            }
            if rare.is_empty() {
                // nothing left to split at this threshold: raise it, unless nothing is
                // splittable at all (single characters only)
                if !self.counts.keys().any(|k| k.chars().nth(1).is_some()) {
                    break;
                }
                t = t.saturating_mul(2);
            }
        }
        self.threshold = t;
        // splitting may have grown the table's slots past what its entries need (the halves
        // are inserted before their pieces' slots are reused): give the extra back
        let len = self.counts.len();
        if self.counts.capacity() > 2 * len.max(1024) {
            self.counts.shrink_to(len + len / 3);
        }
    }

    /// Adds a count made elsewhere (another task's table, see [`crate::count_pieces`]); call
    /// [`PieceCounts::added`] after each table.
    pub fn add_count(&mut self, piece: &str, n: u64) {
        self.add(piece, n);
    }

    /// Ends the addition of a table of `texts` documents and `bytes` bytes: their totals
    /// counted, the table pruned if it passed its bound.
    pub fn added(&mut self, texts: u64, bytes: u64) {
        self.texts += texts;
        self.bytes += bytes;
        if self.limit > 0 && self.held > self.limit {
            self.prune();
        }
    }

    /// Number of distinct pieces.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// The pieces and their counts, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts.iter().map(|(k, v)| (&**k, *v))
    }
}

/// The two pieces a rare piece is split into: for three characters or more, halves that share
/// the middle character, so that every pair of adjacent characters is still in one of them
/// (only pairs of longer tokens across the middle are lost, and the shared character is
/// counted twice); two characters become one each.
fn halves(piece: &str) -> (&str, &str) {
    let mut bounds = piece.char_indices().map(|(i, _)| i).chain([piece.len()]);
    let chars = piece.chars().count();
    if chars < 3 {
        let mid = bounds.nth(1).unwrap_or(piece.len());
        return (&piece[..mid], &piece[mid..]);
    }
    // the middle character spans bounds[m]..bounds[m + 1]
    let m = (chars - 1) / 2;
    let start = bounds.nth(m).unwrap_or(0);
    let end = bounds.next().unwrap_or(piece.len());
    (&piece[..end], &piece[start..])
}

/// A pair in the queue: highest count first, then the smallest pair of ids (deterministic).
#[derive(PartialEq, Eq)]
struct Entry {
    count: u64,
    pair: (u32, u32),
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.count
            .cmp(&other.count)
            .then_with(|| other.pair.cmp(&self.pair))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn pairs_of(symbols: &[u32]) -> impl Iterator<Item = (u32, u32)> + '_ {
    symbols.windows(2).map(|w| (w[0], w[1]))
}

/// Merges touching fewer pieces than this run on one thread.
const PARALLEL_MERGE: usize = 4096;
/// Pieces per parallel task.
const CHUNK: usize = 1 << 14;

/// What merging inside some pieces did: the change of each pair's count, and the pieces
/// where pairs holding the new id appeared.
#[derive(Default)]
struct Part {
    deltas: Vec<((u32, u32), i64)>,
    added: Vec<((u32, u32), u32)>,
}

impl Part {
    /// Sums the deltas of each pair (done in the parallel tasks, so that applying them is one
    /// map operation per distinct pair).
    fn aggregate(mut self) -> Part {
        self.deltas.sort_unstable_by_key(|d| d.0);
        let mut out: Vec<((u32, u32), i64)> = Vec::with_capacity(self.deltas.len() / 2);
        for (pair, d) in self.deltas {
            match out.last_mut() {
                Some(last) if last.0 == pair => last.1 += d,
                _ => out.push((pair, d)),
            }
        }
        self.deltas = out;
        self.added.sort_unstable();
        self
    }
}

/// Replaces every non-overlapping occurrence of `pair`, left to right, by `id` in piece `w`
/// (in place), and records how the counts of the neighbouring pairs change (the merged pair
/// itself is dropped by the caller). A stale or repeated holder finds nothing to merge.
fn merge_word(word: &mut Vec<u32>, w: u32, pair: (u32, u32), id: u32, f: i64, out: &mut Part) {
    let (a, b) = pair;
    let n = word.len();
    let mut r = 0;
    let mut wr = 0;
    while r < n {
        if r + 1 < n && word[r] == a && word[r + 1] == b {
            if wr > 0 {
                let prev = word[wr - 1];
                out.deltas.push(((prev, a), -f));
                out.deltas.push(((prev, id), f));
                out.added.push(((prev, id), w));
            }
            if r + 2 < n {
                let next = word[r + 2];
                out.deltas.push(((b, next), -f));
                out.deltas.push(((id, next), f));
                out.added.push(((id, next), w));
            }
            word[wr] = id;
            wr += 1;
            r += 2;
        } else {
            word[wr] = word[r];
            wr += 1;
            r += 1;
        }
    }
    word.truncate(wr);
}

/// Merges that assemble the most frequent multi-byte characters; returns the symbols every
/// multi-byte character of the pieces starts BPE as (the character's id, or its bytes with any
/// prefix the stage made merged, as the encoder will see them).
fn char_stage(
    pieces: &[(&str, u64)],
    cfg: &TrainConfig,
    target: usize,
    vocab: &mut Vec<Vec<u8>>,
    by_bytes: &mut FxHashMap<Vec<u8>, u32>,
    merges: &mut Vec<(u32, u32)>,
) -> FxHashMap<char, Vec<u32>> {
    let counts: FxHashMap<char, u64> = pieces
        .par_iter()
        .fold(FxHashMap::default, |mut m, (p, f)| {
            for c in p.chars().filter(|c| c.len_utf8() > 1) {
                *m.entry(c).or_default() += f;
            }
            m
        })
        .reduce(FxHashMap::default, |mut a, b| {
            for (k, v) in b {
                *a.entry(k).or_default() += v;
            }
            a
        });
    let mut chars: Vec<(char, u64)> = counts.into_iter().collect();
    chars.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total: u64 = chars.iter().map(|c| c.1).sum();
    // at most half the merges go to characters
    let budget = (target - vocab.len()) / 2;
    let mut covered = 0u64;
    for &(c, n) in &chars {
        if (covered as f64) >= cfg.char_coverage * total as f64 || n < cfg.min_frequency.max(1) {
            break;
        }
        let mut buf = [0u8; 4];
        let bytes = c.encode_utf8(&mut buf).as_bytes();
        let needed = (2..=bytes.len())
            .filter(|&k| !by_bytes.contains_key(&bytes[..k]))
            .count();
        if merges.len() + needed > budget {
            break;
        }
        for k in 2..=bytes.len() {
            if by_bytes.contains_key(&bytes[..k]) {
                continue;
            }
            let left = by_bytes[&bytes[..k - 1]];
            let id = vocab.len() as u32;
            merges.push((left, u32::from(bytes[k - 1])));
            vocab.push(bytes[..k].to_vec());
            by_bytes.insert(bytes[..k].to_vec(), id);
        }
        covered += n;
    }
    // every character's starting symbols: its longest prefix that is a token, then bytes
    chars
        .iter()
        .map(|&(c, _)| {
            let mut buf = [0u8; 4];
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            let k = (1..=bytes.len())
                .rev()
                .find(|&k| by_bytes.contains_key(&bytes[..k]))
                .unwrap_or(1);
            let mut ids = vec![by_bytes[&bytes[..k]]];
            ids.extend(bytes[k..].iter().map(|&b| u32::from(b)));
            (c, ids)
        })
        .collect()
}

/// Trains a tokenizer on counted pieces. `progress` is called with (merges done, merges
/// wanted) now and then.
pub fn train(
    counts: &PieceCounts,
    cfg: &TrainConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<Tokenizer, ConfigError> {
    let mut specials: Vec<String> = vec![END_OF_TEXT.to_string()];
    for s in &cfg.specials {
        if s.is_empty() {
            return Err(ConfigError("a special token cannot be empty".into()));
        }
        if !specials.contains(s) {
            specials.push(s.clone());
        }
    }
    if cfg.vocab_size < 256 + specials.len() {
        return Err(ConfigError(format!(
            "--vocab-size must be at least 256 bytes + {} special tokens",
            specials.len()
        )));
    }
    let target = cfg.vocab_size - specials.len();

    // pieces as symbol lists; their order does not matter (ties between pairs break by ids)
    let pieces: Vec<(&str, u64)> = counts.counts.iter().map(|(k, v)| (&**k, *v)).collect();
    let freq: Vec<u64> = pieces.iter().map(|p| p.1).collect();

    let mut vocab: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut by_bytes: FxHashMap<Vec<u8>, u32> = vocab
        .iter()
        .enumerate()
        .map(|(i, v)| (v.clone(), i as u32))
        .collect();
    let mut merges: Vec<(u32, u32)> = Vec::new();
    let wanted = target - 256;

    // The character stage: the most frequent multi-byte characters (covering `char_coverage`
    // of their occurrences, sentencepiece's rule) are assembled from their bytes first, by
    // merges that can only apply inside a character. Byte-level BPE would spend its first few
    // thousand merges on the same thing, each touching most pieces.
    let symbols_of = char_stage(&pieces, cfg, target, &mut vocab, &mut by_bytes, &mut merges);
    let mut words: Vec<Vec<u32>> = pieces
        .par_iter()
        .map(|(p, _)| {
            let mut w = Vec::with_capacity(p.len());
            for c in p.chars() {
                match symbols_of.get(&c) {
                    Some(ids) => w.extend_from_slice(ids),
                    None => {
                        let mut buf = [0u8; 4];
                        w.extend(c.encode_utf8(&mut buf).bytes().map(u32::from));
                    }
                }
            }
            w
        })
        .collect();
    drop(pieces);

    // initial pair counts, and where each pair occurs: every (pair, piece) sorted in
    // parallel, then one map entry per distinct pair. The position lists are append-only, so
    // an entry may go stale (the pair merged away since) or repeat; merging checks for both.
    let mut occurrences: Vec<((u32, u32), u32)> = words
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, word)| pairs_of(word).map(move |p| (p, i as u32)))
        .collect();
    occurrences.par_sort_unstable();
    let groups: Vec<&[((u32, u32), u32)]> = occurrences.chunk_by(|x, y| x.0 == y.0).collect();
    let mut pair_counts: FxHashMap<(u32, u32), u64> =
        FxHashMap::with_capacity_and_hasher(groups.len(), Default::default());
    let mut where_: FxHashMap<(u32, u32), Vec<u32>> =
        FxHashMap::with_capacity_and_hasher(groups.len(), Default::default());
    for group in groups {
        let pair = group[0].0;
        let mut list: Vec<u32> = group.iter().map(|o| o.1).collect();
        pair_counts.insert(pair, list.iter().map(|&w| freq[w as usize]).sum());
        list.dedup();
        where_.insert(pair, list);
    }
    drop(occurrences);
    let mut queue: BinaryHeap<Entry> = pair_counts
        .iter()
        .map(|(&pair, &count)| Entry { count, pair })
        .collect();

    let mut raised: Vec<(u32, u32)> = Vec::new();
    while vocab.len() < target {
        let Some(top) = queue.pop() else { break };
        let current = pair_counts.get(&top.pair).copied().unwrap_or(0);
        if current != top.count {
            // stale: a smaller count goes back in; a larger one is in the queue already
            if current > 0 && current < top.count {
                queue.push(Entry {
                    count: current,
                    pair: top.pair,
                });
            }
            continue;
        }
        if top.count < cfg.min_frequency.max(1) {
            break;
        }
        let (a, b) = top.pair;
        let bytes = [vocab[a as usize].as_slice(), vocab[b as usize].as_slice()].concat();
        let id = match by_bytes.get(&bytes) {
            Some(&id) => id,
            None => {
                let id = vocab.len() as u32;
                by_bytes.insert(bytes.clone(), id);
                vocab.push(bytes);
                id
            }
        };
        merges.push(top.pair);

        // apply the merge to every piece holding the pair: in parallel over disjoint chunks
        // of pieces when there are many, each chunk summing its pair-count changes
        let mut holders = where_.remove(&top.pair).unwrap_or_default();
        holders.sort_unstable();
        holders.dedup();
        let parts: Vec<Part> = if holders.len() < PARALLEL_MERGE {
            let mut part = Part::default();
            for &w in &holders {
                let f = freq[w as usize] as i64;
                merge_word(&mut words[w as usize], w, top.pair, id, f, &mut part);
            }
            vec![part]
        } else {
            words
                .par_chunks_mut(CHUNK)
                .enumerate()
                .filter_map(|(c, chunk)| {
                    let base = c * CHUNK;
                    let lo = holders.partition_point(|&h| (h as usize) < base);
                    let hi = holders.partition_point(|&h| (h as usize) < base + CHUNK);
                    if lo == hi {
                        return None;
                    }
                    let mut part = Part::default();
                    for &w in &holders[lo..hi] {
                        let f = freq[w as usize] as i64;
                        merge_word(&mut chunk[w as usize - base], w, top.pair, id, f, &mut part);
                    }
                    Some(part.aggregate())
                })
                .collect()
        };
        raised.clear();
        for mut part in parts {
            for (pair, delta) in part.deltas {
                if delta > 0 {
                    *pair_counts.entry(pair).or_default() += delta as u64;
                    raised.push(pair);
                } else if delta < 0
                    && let Some(c) = pair_counts.get_mut(&pair)
                {
                    *c = c.saturating_sub(delta.unsigned_abs());
                    if *c == 0 {
                        pair_counts.remove(&pair);
                    }
                }
            }
            // new pairs (all hold the new id), grouped so each list is looked up once
            if !part.added.is_sorted() {
                part.added.sort_unstable();
            }
            for group in part.added.chunk_by(|x, y| x.0 == y.0) {
                let list = where_.entry(group[0].0).or_default();
                for &(_, w) in group {
                    if list.last() != Some(&w) {
                        list.push(w);
                    }
                }
            }
        }
        raised.sort_unstable();
        raised.dedup();
        for &p in &raised {
            if let Some(&count) = pair_counts.get(&p) {
                queue.push(Entry { count, pair: p });
            }
        }
        pair_counts.remove(&top.pair);
        if merges.len().is_multiple_of(256) {
            progress(vocab.len() - 256, wanted);
        }
    }
    progress(vocab.len() - 256, wanted);

    let mut special_ids = Vec::new();
    for s in specials {
        special_ids.push((s.clone(), vocab.len() as u32));
        vocab.push(s.into_bytes());
    }
    // freeing millions of small vectors takes a second: let a thread do it
    std::thread::spawn(move || drop((words, where_, pair_counts, queue)));
    Tokenizer::new(cfg.pre, vocab, merges, special_ids).map_err(|e| ConfigError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::halves;

    #[test]
    fn halves_share_the_middle_character() {
        assert_eq!(halves("中文"), ("中", "文"));
        assert_eq!(halves("中文字"), ("中文", "文字"));
        assert_eq!(halves("中文字符"), ("中文", "文字符"));
        assert_eq!(halves("中文字符集"), ("中文字", "字符集"));
        assert_eq!(halves(" the"), (" t", "the"));
    }
}
