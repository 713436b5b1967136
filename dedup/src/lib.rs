//! The dedup stage: exact and near-duplicate detection as a batch job over the corpus.
//!
//! Every document is normalised ([`minhash::normalize`]: full-width folded, case and
//! whitespace ignored) and sketched: an xxh3-128 key of the normalised text for exact
//! duplicates, and the LSH band keys of a MinHash signature over character n-grams (5 by
//! default, the setting of data-juicer and NeMo Curator for Chinese) for near duplicates.
//! Documents with equal keys, or sharing any band, are joined by union-find; each cluster keeps
//! one member by a [`KeepPolicy`] and the others are removed as `exact` or `near` duplicates.
//! Sketching runs in parallel. A run holds no state per document in memory: the keys live in
//! the LSH index up to the memory budget and in sorted runs on disk past it, each document's
//! facts (exact key, length, score, place) in a table on disk, and only the documents in
//! candidate pairs are read back to be clustered.
//!
//! ```
//! use dedup::{Config, Dedup};
//!
//! let dedup = Dedup::new(&Config::default()).unwrap();
//! let texts = ["今天天气很好，我们去公园散步吧，顺便买点水果回家。",
//!              "今天天气很好，我们去公园散步吧，顺便买点水果回家！",
//!              "明天要下雨，记得带伞，路上注意安全，早点回家吃饭。"];
//! let sketches: Vec<_> = texts.iter().map(|t| dedup.sketch(t)).collect();
//! let outcomes = dedup.resolve(&sketches, &[None, None, None]);
//! assert!(outcomes[0].keep && !outcomes[1].keep && outcomes[2].keep);
//! ```

pub mod cluster;
pub mod minhash;
mod run;
pub mod shard;
mod spill;
mod table;
mod verify;

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use cluster::KeepPolicy;

pub use minhash::{Params, Unit};
pub use run::{FileOutputs, Report, run_files, run_store};

use cluster::{Member, UnionFind};
use minhash::MinHasher;

/// How to deduplicate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Jaccard similarity of shingle sets above which two documents are near duplicates.
    /// 0.8 is datasketch's and NeMo Curator's choice; data-juicer uses 0.7.
    pub threshold: f64,
    /// MinHash permutations: 128, as datasketch and datatrove default to.
    pub num_perm: usize,
    /// Shingle length in `unit`s: character 5-grams for Chinese (data-juicer, NeMo Curator).
    pub ngram: usize,
    /// Characters, or jieba words (datatrove's word 5-grams).
    pub unit: Unit,
    /// Bands and rows of the LSH index; when absent, the pair that minimises false positives
    /// plus false negatives at `threshold` (datasketch's rule).
    pub bands: Option<usize>,
    pub rows: Option<usize>,
    /// Remove exact duplicates (after normalisation).
    pub exact: bool,
    /// Remove near duplicates.
    pub near: bool,
    pub keep: KeepPolicy,
    /// Check every near-duplicate candidate pair by the exact Jaccard similarity of its
    /// shingle sets, dropping LSH's false positives (NeMo Curator's Jaccard step).
    pub verify: bool,
    /// Shingle hashes kept from the first pass for verification (8 bytes each; 16 Mi, 128 MiB,
    /// by default), and at most a quarter of `memory_budget`. A corpus with more is read a
    /// second time, for its candidates' texts only, and the sets that pass the bound then go
    /// to a file on disk.
    pub verify_memory: usize,
    /// Bytes of memory for the exact and band keys (about 176 per document at the defaults)
    /// and the shingle sets kept for verification; past it the keys go to sorted runs on disk
    /// and are merged band by band. Nothing else is held per document: a run's memory is this,
    /// a chunk of documents being sketched and the candidate pairs.
    pub memory_budget: usize,
    /// Where the runs go (a temporary folder inside it); the system's temporary folder when
    /// absent.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Also remove, from each kept document, the paragraphs (lines) that an earlier kept
    /// document already holds (CCNet's paragraph-level dedup, across the whole corpus).
    pub paragraphs: bool,
    /// Seed of the hash functions.
    pub seed: u64,
    /// Evaluation sets (JSONL(.zst), their `text`): documents sharing an n-gram of
    /// `decontaminate_ngram` characters with any of them are removed as contaminated.
    pub decontaminate: Vec<std::path::PathBuf>,
    /// N-gram length in characters (spaces ignored) for `decontaminate`: 13, GPT-3's length
    /// in words, a shorter span in Chinese characters and rarely shared by chance.
    pub decontaminate_ngram: usize,
    /// File to file: skip input lines that are not documents (counted and reported) instead
    /// of stopping at the first.
    pub skip_invalid: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threshold: 0.8,
            num_perm: 128,
            ngram: 5,
            unit: Unit::Chars,
            bands: None,
            rows: None,
            exact: true,
            near: true,
            keep: KeepPolicy::First,
            verify: true,
            verify_memory: 16 << 20,
            memory_budget: 1 << 30,
            spill_dir: None,
            paragraphs: false,
            seed: 1,
            decontaminate: Vec::new(),
            decontaminate_ngram: 13,
            skip_invalid: false,
        }
    }
}

/// What can stop the dedup stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting that cannot work: the key and the range it takes.
    #[error("invalid dedup setting {0}")]
    Config(String),
    #[error(transparent)]
    Corpus(#[from] corpus::Error),
}

impl Error {
    /// True when the error is the user's input rather than a failure of the machine.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Config(_) => true,
            Error::Corpus(e) => e.is_bad_input(),
        }
    }
}

impl Config {
    /// Refuses settings that cannot work, naming the key and the range it takes.
    pub fn validate(&self) -> Result<(), Error> {
        Dedup::new(self).map(|_| ())
    }
}

/// What resolving decided for one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub keep: bool,
    pub kind: corpus::DedupKind,
    /// The index of the member its cluster keeps (itself when kept); `None` when alone.
    pub cluster: Option<usize>,
}

impl Outcome {
    /// A document in no cluster: kept.
    pub const ALONE: Outcome = Outcome {
        keep: true,
        kind: corpus::DedupKind::Unique,
        cluster: None,
    };
}

/// What resolving needs to know of a document in a candidate pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Facts {
    pub exact: u128,
    /// Length in characters.
    pub len: usize,
    /// The cleaner's quality score, for [`KeepPolicy::Score`].
    pub score: Option<f64>,
}

/// The documents in `pairs`, ascending, each once.
pub fn pair_ends(pairs: &[(u32, u32, bool)]) -> Vec<u32> {
    let mut ends: Vec<u32> = pairs.iter().flat_map(|&(a, b, _)| [a, b]).collect();
    ends.par_sort_unstable();
    ends.dedup();
    ends
}

/// Drops the near pairs between documents with the same exact key: the exact pairs already
/// join them, and as exact duplicates.
pub fn drop_near_within_exact(
    pairs: Vec<(u32, u32, bool)>,
    exact: impl Fn(u32) -> u128,
) -> Vec<(u32, u32, bool)> {
    pairs
        .into_iter()
        .filter(|&(a, b, is_exact)| is_exact || exact(a) != exact(b))
        .collect()
}

/// One document's sketch.
#[derive(Debug, Clone)]
pub struct Sketch {
    pub exact: u128,
    /// Band keys; empty for a text without shingles.
    pub bands: Vec<u64>,
    /// Length in characters.
    pub len: usize,
    /// The first evaluation-set n-gram the text holds, when decontaminating.
    pub contaminated: Option<String>,
}

/// The n-grams of evaluation sets, to remove training documents that hold any of them (GPT-3's
/// decontamination, on characters: 13 characters by default). Texts are compared after
/// [`minhash::normalize`], spaces removed.
#[derive(Debug, Clone, Default)]
pub struct Contamination {
    ngram: usize,
    grams: std::collections::HashSet<u64>,
}

impl Contamination {
    pub fn new(ngram: usize) -> Contamination {
        Contamination {
            ngram: ngram.max(1),
            grams: Default::default(),
        }
    }

    /// Adds an evaluation text's n-grams; a text shorter than n characters adds none.
    pub fn add(&mut self, text: &str) {
        let compact = minhash::compact(&minhash::normalize(text));
        let offsets = char_offsets(&compact);
        for w in offsets.windows(self.ngram + 1) {
            let gram = &compact.as_bytes()[w[0]..w[self.ngram]];
            self.grams.insert(xxhash_rust::xxh3::xxh3_64(gram));
        }
    }

    /// Distinct n-grams held.
    pub fn len(&self) -> usize {
        self.grams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grams.is_empty()
    }

    /// The first evaluation n-gram in a compact text, as text.
    fn find(&self, compact: &str) -> Option<String> {
        let offsets = char_offsets(compact);
        offsets.windows(self.ngram + 1).find_map(|w| {
            let gram = &compact[w[0]..w[self.ngram]];
            self.grams
                .contains(&xxhash_rust::xxh3::xxh3_64(gram.as_bytes()))
                .then(|| gram.to_string())
        })
    }
}

/// Paragraph-level exact dedup (CCNet): a paragraph already held by an earlier kept document
/// is removed from later ones. Paragraphs are lines, compared after [`minhash::normalize`]
/// with spaces removed; lines under [`Paragraphs::MIN_CHARS`] characters are never removed.
#[derive(Debug, Default)]
pub struct Paragraphs {
    seen: std::collections::HashSet<u64>,
    /// Paragraphs removed so far.
    pub removed: u64,
}

impl Paragraphs {
    /// Shorter lines (list markers, one-word headings) stay.
    pub const MIN_CHARS: usize = 10;

    /// The text without the paragraphs seen before, or `None` when nothing was removed. The
    /// paragraphs of the text are remembered either way.
    pub fn filter(&mut self, text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut removed = 0;
        for line in text.lines() {
            let compact = minhash::compact(&minhash::normalize(line));
            if compact.chars().count() >= Self::MIN_CHARS
                && !self
                    .seen
                    .insert(xxhash_rust::xxh3::xxh3_64(compact.as_bytes()))
            {
                removed += 1;
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
        }
        self.removed += removed;
        (removed > 0).then_some(out)
    }
}

/// Byte offsets of each character and of the end.
fn char_offsets(s: &str) -> Vec<usize> {
    let mut o: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    o.push(s.len());
    o
}

/// A prepared deduplicator.
#[derive(Debug, Clone)]
pub struct Dedup {
    cfg: Config,
    params: Params,
    hasher: MinHasher,
    contamination: Option<std::sync::Arc<Contamination>>,
}

impl Dedup {
    /// A deduplicator for the settings, without decontamination (see [`Dedup::from_config`]).
    pub fn new(cfg: &Config) -> Result<Dedup, Error> {
        if !(cfg.threshold > 0.0 && cfg.threshold < 1.0) {
            return Err(Error::Config(format!(
                "threshold: must be between 0 and 1 (exclusive), not {}",
                cfg.threshold
            )));
        }
        if cfg.num_perm == 0 || cfg.ngram == 0 {
            return Err(Error::Config(
                "num_perm and ngram: must be at least 1".into(),
            ));
        }
        if cfg.decontaminate_ngram == 0 {
            return Err(Error::Config(
                "decontaminate_ngram: must be at least 1".into(),
            ));
        }
        if !cfg.exact && !cfg.near && cfg.decontaminate.is_empty() && !cfg.paragraphs {
            return Err(Error::Config(
                "exact and near: at least one of them must be on".into(),
            ));
        }
        let params = match (cfg.bands, cfg.rows) {
            (Some(b), Some(r)) if b > 0 && r > 0 && b * r <= cfg.num_perm => {
                Params::new(cfg.threshold, b, r)
            }
            (None, None) => Params::optimal(cfg.threshold, cfg.num_perm),
            _ => {
                return Err(Error::Config(format!(
                    "bands and rows: go together, are positive, and bands x rows is at most \
                     num_perm ({})",
                    cfg.num_perm
                )));
            }
        };
        Ok(Dedup {
            cfg: cfg.clone(),
            params,
            hasher: MinHasher::new(cfg.num_perm, cfg.seed),
            contamination: None,
        })
    }

    /// The deduplicator the settings describe, with the evaluation sets of `decontaminate`
    /// read (errors name the file and line).
    pub fn from_config(cfg: &Config) -> Result<Dedup, Error> {
        let dedup = Dedup::new(cfg)?;
        if cfg.decontaminate.is_empty() {
            return Ok(dedup);
        }
        let mut c = Contamination::new(cfg.decontaminate_ngram);
        for doc in corpus::read_all(&cfg.decontaminate) {
            c.add(&doc?.text);
        }
        Ok(dedup.with_contamination(c))
    }

    /// Distinct n-grams of the evaluation sets, when decontaminating.
    pub fn contamination_ngrams(&self) -> Option<usize> {
        self.contamination.as_ref().map(|c| c.len())
    }

    /// Also removes documents holding an n-gram of these evaluation sets.
    pub fn with_contamination(mut self, c: Contamination) -> Dedup {
        self.contamination = Some(std::sync::Arc::new(c));
        self
    }

    /// The LSH parameters in use, with their false-positive and false-negative areas.
    pub fn params(&self) -> Params {
        self.params
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn sketch(&self, text: &str) -> Sketch {
        self.sketch_keeping(text).0
    }

    /// The sketch, and the shingle set it was made from (for verification without a second
    /// read).
    pub fn sketch_keeping(&self, text: &str) -> (Sketch, Vec<u64>) {
        let normalized = minhash::normalize(text);
        let compact = minhash::compact(&normalized);
        let shingles = if self.cfg.near {
            self.shingles(&normalized, &compact)
        } else {
            Vec::new()
        };
        let bands = if shingles.is_empty() {
            Vec::new()
        } else {
            minhash::band_keys(&self.hasher.signature(&shingles), &self.params)
        };
        let sketch = Sketch {
            exact: minhash::exact_key(&compact),
            bands,
            len: normalized.chars().count(),
            contaminated: self.contamination.as_ref().and_then(|c| c.find(&compact)),
        };
        (sketch, shingles)
    }

    /// Sketches many texts in parallel, in order.
    pub fn sketch_all<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Sketch> {
        texts.par_iter().map(|t| self.sketch(t.as_ref())).collect()
    }

    /// Sketches in parallel and keeps the shingle sets too.
    pub fn sketch_all_keeping<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<(Sketch, Vec<u64>)> {
        texts
            .par_iter()
            .map(|t| self.sketch_keeping(t.as_ref()))
            .collect()
    }

    /// The sorted, deduplicated shingle hashes of a text, as [`Dedup::sketch`] sees it: what
    /// exact Jaccard verification compares.
    pub fn shingle_set(&self, text: &str) -> Vec<u64> {
        let normalized = minhash::normalize(text);
        self.shingles(&normalized, &minhash::compact(&normalized))
    }

    fn shingles(&self, normalized: &str, compact: &str) -> Vec<u64> {
        match self.cfg.unit {
            Unit::Chars => minhash::shingles(compact, self.cfg.ngram),
            Unit::Words => minhash::word_shingles(normalized, self.cfg.ngram),
        }
    }

    /// Candidate pairs (earlier, later): documents with the same exact key, or sharing an LSH
    /// band. Each pair is marked `true` when it is an exact duplicate.
    pub fn candidates(&self, sketches: &[Sketch]) -> Vec<(u32, u32, bool)> {
        let bands = if self.cfg.near { self.params.bands } else { 0 };
        let mut index = spill::BandIndex::new(self.cfg.exact, bands, usize::MAX, None);
        // in memory (the budget is unlimited), so no I/O can fail
        let pairs = index
            .add(0, sketches)
            .and_then(|()| index.pairs())
            .unwrap_or_default();
        if self.cfg.exact {
            drop_near_within_exact(pairs, |i| sketches[i as usize].exact)
        } else {
            pairs
        }
    }

    /// Clusters documents (in corpus order) and decides which to keep. `scores` are the
    /// cleaner's quality scores, for [`KeepPolicy::Score`]. Candidates are not verified: see
    /// [`Dedup::resolve_pairs`].
    pub fn resolve(&self, sketches: &[Sketch], scores: &[Option<f64>]) -> Vec<Outcome> {
        let pairs = self.candidates(sketches);
        self.resolve_pairs(sketches, scores, &pairs)
    }

    /// Clusters by the given pairs (from [`Dedup::candidates`], perhaps verified).
    pub fn resolve_pairs(
        &self,
        sketches: &[Sketch],
        scores: &[Option<f64>],
        pairs: &[(u32, u32, bool)],
    ) -> Vec<Outcome> {
        let ends = pair_ends(pairs);
        let facts: Vec<Facts> = ends
            .iter()
            .map(|&i| Facts {
                exact: sketches[i as usize].exact,
                len: sketches[i as usize].len,
                score: scores.get(i as usize).copied().flatten(),
            })
            .collect();
        let dirty: Vec<u32> = (0..sketches.len() as u32)
            .filter(|&i| sketches[i as usize].contaminated.is_some())
            .collect();
        let mut outcomes = vec![Outcome::ALONE; sketches.len()];
        for (i, o) in self.resolve_sparse(pairs, &ends, &facts, &dirty) {
            outcomes[i as usize] = o;
        }
        outcomes
    }

    /// Clusters by the given pairs and decides which member of each cluster to keep, knowing
    /// only the documents in pairs: `ends` are they, ascending ([`pair_ends`]), with their
    /// `facts` in the same order; `contaminated` the contaminated documents, ascending. Returns
    /// the outcomes of those documents, ascending; every other document is kept, alone
    /// ([`Outcome::ALONE`]). Memory follows the pairs, not the corpus.
    pub fn resolve_sparse(
        &self,
        pairs: &[(u32, u32, bool)],
        ends: &[u32],
        facts: &[Facts],
        contaminated: &[u32],
    ) -> Vec<(u32, Outcome)> {
        let local = |i: u32| ends.binary_search(&i).ok().filter(|&k| k < facts.len());
        let dirty = |i: u32| contaminated.binary_search(&i).is_ok();
        let mut uf = UnionFind::new(ends.len().min(facts.len()));
        // contaminated documents go whatever their cluster: they join none, so that no clean
        // document is removed as a copy of a removed one
        for &(a, b, _) in pairs {
            if let (Some(x), Some(y)) = (local(a), local(b))
                && !dirty(a)
                && !dirty(b)
            {
                uf.union(x, y);
            }
        }
        // members in ascending order, so a cluster's first is the first in the corpus
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for k in 0..ends.len().min(facts.len()) {
            if uf.set_size(k) > 1 {
                let root = uf.find(k);
                groups.entry(root).or_default().push(k);
            }
        }
        let members: Vec<Member> = facts
            .iter()
            .map(|f| Member {
                len: f.len,
                score: f.score,
            })
            .collect();
        let mut out: Vec<(u32, Outcome)> = contaminated
            .iter()
            .map(|&i| {
                let o = Outcome {
                    keep: false,
                    kind: corpus::DedupKind::Contaminated,
                    cluster: None,
                };
                (i, o)
            })
            .collect();
        for group in groups.values() {
            let kept = cluster::choose(group, &members, self.cfg.keep);
            let kept_at = ends[kept] as usize;
            for &m in group {
                let o = if m == kept {
                    Outcome {
                        keep: true,
                        kind: corpus::DedupKind::Unique,
                        cluster: Some(kept_at),
                    }
                } else {
                    Outcome {
                        keep: false,
                        kind: if facts[m].exact == facts[kept].exact {
                            corpus::DedupKind::Exact
                        } else {
                            corpus::DedupKind::Near
                        },
                        cluster: Some(kept_at),
                    }
                };
                out.push((ends[m], o));
            }
        }
        out.sort_unstable_by_key(|p| p.0);
        out
    }
}
