//! Training on more text than the memory bound holds: a sample of the documents, its size
//! chosen from the bound.
//!
//! Every document has a sampling level from a hash of its text (at most [`MAX_LEVEL`]): level
//! `j` or more is a `2^(-j/4)` sample of the documents (four sizes per halving), the same
//! whatever the order or the thread count, and exact duplicates go together. While the piece
//! table is counted, a [`Sketch`] sees every distinct piece with the highest level of a
//! document holding it, and estimates, for each level, how many distinct pieces the sample
//! from that level would hold and their mean length (a k-minimum-values sketch per level,
//! about 2% error). When the whole input's table outgrows the bound, the trainer reads the
//! input again and counts the largest sample whose table the sketch says fits. This is what
//! sentencepiece does with `input_sentence_size`, with the size taken from the memory bound
//! instead of a count of sentences; dropping or cutting rare pieces instead (lossy counting)
//! compressed worse at the same table size in the benchmark.

use std::collections::BinaryHeap;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::pretok::{self, PreTokenizer};

/// Levels per halving of the sample: level `j` or more is a `2^(-j / STEPS)` sample.
pub const STEPS: u8 = 4;
/// The smallest sample is `2^-16` of the documents.
pub const MAX_LEVEL: u8 = 16 * STEPS;
/// Hashes kept per level: a relative error of about `1 / sqrt(K)` on the distinct count.
const K: usize = 2048;
/// Seeds, so that a document's level and its pieces' hashes are unrelated.
const DOC_SEED: u64 = 0x5a4d_706c_6576_656c;
const PIECE_SEED: u64 = 0x7069_6563_6573_6b76;

/// A document's sampling level: with `u` its hash as a share of the hash range (uniform in
/// (0, 1]), the largest `j` with `u <= 2^(-j / STEPS)`.
pub fn level(text: &str) -> u8 {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(text.as_bytes(), DOC_SEED);
    let u = (h as f64 + 1.0) / 2f64.powi(64);
    let j = (-u.log2() * f64::from(STEPS)).floor();
    if j >= f64::from(MAX_LEVEL) {
        MAX_LEVEL
    } else {
        j.max(0.0) as u8
    }
}

/// The share of documents at `level` or above.
pub fn rate(level: u8) -> f64 {
    2f64.powf(-f64::from(level) / f64::from(STEPS))
}

/// The distinct pieces of a batch's documents at `min_level` or above, counted in parallel.
#[derive(Debug, Default)]
pub struct BatchPieces<'a> {
    /// Each piece's count and the highest level of a document holding it.
    pub pieces: FxHashMap<&'a str, (u64, u8)>,
    /// The documents counted, and their bytes.
    pub texts: u64,
    pub bytes: u64,
}

/// Counts the pieces of a batch's documents at `min_level` or above, in parallel.
pub fn batch_pieces<'a, S: AsRef<str> + Sync>(
    texts: &'a [S],
    pre: &PreTokenizer,
    min_level: u8,
) -> BatchPieces<'a> {
    texts
        .par_iter()
        .fold(BatchPieces::default, |mut b, t| {
            let t = t.as_ref();
            let l = level(t);
            if l >= min_level {
                b.texts += 1;
                b.bytes += t.len() as u64;
                pretok::pieces(t, pre, |p| {
                    let e = b.pieces.entry(p).or_default();
                    e.0 += 1;
                    e.1 = e.1.max(l);
                });
            }
            b
        })
        .reduce(BatchPieces::default, |a, b| {
            let (mut big, small) = if a.pieces.len() < b.pieces.len() {
                (b, a)
            } else {
                (a, b)
            };
            for (k, (n, l)) in small.pieces {
                let e = big.pieces.entry(k).or_default();
                e.0 += n;
                e.1 = e.1.max(l);
            }
            big.texts += small.texts;
            big.bytes += small.bytes;
            big
        })
}

/// The k smallest hashes of the distinct pieces seen, with the bytes of their table entries.
#[derive(Debug, Default)]
struct Kmv {
    heap: BinaryHeap<(u64, u32)>,
    held: FxHashSet<u64>,
}

impl Kmv {
    fn insert(&mut self, hash: u64, len: u32) {
        if self.heap.len() == K && self.heap.peek().is_some_and(|&(top, _)| hash >= top) {
            return;
        }
        if !self.held.insert(hash) {
            return;
        }
        self.heap.push((hash, len));
        if self.heap.len() > K
            && let Some((out, _)) = self.heap.pop()
        {
            self.held.remove(&out);
        }
    }

    /// Estimated distinct pieces, and the mean bytes of their entries.
    fn estimate(&self) -> (f64, f64) {
        let n = self.heap.len();
        if n == 0 {
            return (0.0, 0.0);
        }
        let mean = self.heap.iter().map(|&(_, l)| f64::from(l)).sum::<f64>() / n as f64;
        if n < K {
            return (n as f64, mean);
        }
        let top = self.heap.peek().map_or(u64::MAX, |&(h, _)| h);
        // the k-th smallest of n uniform hashes sits near k / n of the range
        let share = (top as f64 + 1.0) / 2f64.powi(64);
        ((K - 1) as f64 / share, mean)
    }
}

/// Per sampling level, an estimate of the distinct pieces its sample holds and of the bytes of
/// their table.
#[derive(Debug)]
pub struct Sketch {
    levels: Vec<Kmv>,
    /// The highest level of a document seen (None: no document yet).
    top: Option<u8>,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            levels: (0..=MAX_LEVEL).map(|_| Kmv::default()).collect(),
            top: None,
        }
    }
}

impl Sketch {
    /// Shows the sketch a batch's pieces (from [`batch_pieces`]), each kept with the bytes of
    /// its table entry.
    pub fn add(&mut self, batch: &BatchPieces<'_>) {
        for (p, &(_, top)) in &batch.pieces {
            let h = xxhash_rust::xxh3::xxh3_64_with_seed(p.as_bytes(), PIECE_SEED);
            let bytes = crate::PieceCounts::entry_bytes(p) as u32;
            for l in 0..=top {
                self.levels[usize::from(l)].insert(h, bytes);
            }
            self.top = self.top.max(Some(top));
        }
    }

    /// The estimated table bytes of each level's sample, up to the highest level a document
    /// reached (empty before any piece).
    pub fn table_bytes(&self) -> Vec<f64> {
        let Some(top) = self.top else {
            return Vec::new();
        };
        self.levels[..=usize::from(top)]
            .iter()
            .map(|k| {
                let (n, mean) = k.estimate();
                n * mean
            })
            .collect()
    }

    /// The lowest level (largest sample) whose table the sketch expects to fit `limit` bytes;
    /// when none does, the highest level a document reached (the smallest sample that is not
    /// empty). 0 before any piece.
    pub fn level_for(&self, limit: f64) -> u8 {
        let bytes = self.table_bytes();
        bytes
            .iter()
            .position(|&b| b <= limit)
            .unwrap_or(bytes.len().saturating_sub(1)) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_sample_the_documents_at_their_rate() {
        let n = 200_000;
        let levels: Vec<u8> = (0..n).map(|i| level(&format!("文档 {i}"))).collect();
        for j in [0, 1, 2, 4, 8, 12] {
            let at = levels.iter().filter(|&&l| l >= j).count();
            let want = n as f64 * rate(j);
            assert!(
                (at as f64 - want).abs() < want * 0.03 + 1.0,
                "level {j}: {at} of {n}, want {want}"
            );
        }
    }

    #[test]
    fn the_sketch_counts_distinct_pieces_within_a_few_percent() {
        let mut s = Sketch::default();
        assert_eq!(s.level_for(1.0), 0);
        let names: Vec<String> = (0..300_000).map(|i| format!("{i:08}")).collect();
        // every piece three times, at level 0 or 1 (a third at level 1)
        for round in 0..3 {
            let pieces: FxHashMap<&str, (u64, u8)> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), (1, u8::from(i % 3 == round % 3))))
                .collect();
            s.add(&BatchPieces {
                pieces,
                ..BatchPieces::default()
            });
        }
        let entry = crate::PieceCounts::entry_bytes("00000000") as f64;
        let bytes = s.table_bytes();
        // levels 0 and 1: every piece (each was at level 1 once); no document above
        assert_eq!(bytes.len(), 2);
        for b in &bytes {
            assert!(
                (b / entry - 300_000.0).abs() < 300_000.0 * 0.05,
                "{bytes:?}"
            );
        }
        // nothing fits: the smallest sample that is not empty, never an empty one
        assert_eq!(s.level_for(1e6), 1);
        assert_eq!(s.level_for(400_000.0 * entry), 0);
    }
}
