//! Normalisation, shingles, MinHash signatures and LSH band keys.

use serde::Serialize;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed, xxh3_128};

/// Text as compared: full-width ASCII and the ideographic space folded to ASCII, ASCII letters
/// lower-cased, whitespace runs collapsed to one space, trimmed. Full-width and half-width
/// punctuation (`，` and `,`) compare equal.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let c = match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        };
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The normalised text without its spaces: what both keys are computed from (Chinese puts no
/// spaces between words, and a repost that only re-spaced a text is the same text).
pub fn compact(normalized: &str) -> String {
    normalized.chars().filter(|c| *c != ' ').collect()
}

/// The exact-duplicate key: xxh3-128 of the compact text.
pub fn exact_key(compact: &str) -> u128 {
    xxh3_128(compact.as_bytes())
}

/// Hashes of the character `n`-grams of the compact text, sorted and deduplicated. A text
/// shorter than `n` characters is one shingle; an empty text has none.
pub fn shingles(compact: &str, n: usize) -> Vec<u64> {
    if compact.is_empty() {
        return Vec::new();
    }
    // byte offsets of every character, and the end: a window of n characters is a byte slice
    let mut offsets: Vec<usize> = compact.char_indices().map(|(i, _)| i).collect();
    offsets.push(compact.len());
    let chars = offsets.len() - 1;
    let n = n.clamp(1, chars);
    let bytes = compact.as_bytes();
    let mut hashes: Vec<u64> = (0..=chars - n)
        .map(|i| xxh3_64(&bytes[offsets[i]..offsets[i + n]]))
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// What a shingle is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Characters of the compact text (data-juicer, NeMo Curator).
    #[default]
    Chars,
    /// Words from jieba's segmentation, punctuation and spaces left out (datatrove/FineWeb,
    /// which segments Chinese with jieba).
    Words,
}

fn jieba() -> &'static jieba_rs::Jieba {
    static JIEBA: std::sync::OnceLock<jieba_rs::Jieba> = std::sync::OnceLock::new();
    JIEBA.get_or_init(jieba_rs::Jieba::new)
}

/// The words of a normalised text as jieba cuts it (without its HMM for unknown words, so a
/// word does not depend on the text around it more than the dictionary makes it), leaving out
/// whitespace and tokens with no letter or digit.
pub fn words(normalized: &str) -> Vec<&str> {
    jieba()
        .cut(normalized, false)
        .into_iter()
        .map(|t| t.word)
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect()
}

/// Hashes of the word `n`-grams of a normalised text, sorted and deduplicated. A text of fewer
/// than `n` words is one shingle; a text without words has none.
pub fn word_shingles(normalized: &str, n: usize) -> Vec<u64> {
    let words: Vec<u64> = words(normalized)
        .into_iter()
        .map(|w| xxh3_64(w.as_bytes()))
        .collect();
    if words.is_empty() {
        return Vec::new();
    }
    let n = n.clamp(1, words.len());
    let mut buf = Vec::with_capacity(8 * n);
    let mut hashes: Vec<u64> = words
        .windows(n)
        .map(|w| {
            buf.clear();
            for h in w {
                buf.extend_from_slice(&h.to_le_bytes());
            }
            xxh3_64(&buf)
        })
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// LSH banding: `bands` bands of `rows` signature values each.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    pub bands: usize,
    pub rows: usize,
    /// Area under the S-curve below the threshold: how likely pairs less similar than the
    /// threshold become candidates, integrated over similarity.
    pub false_positive: f64,
    /// Area above the S-curve over the threshold: how likely pairs more similar than it are
    /// missed.
    pub false_negative: f64,
}

/// Probability that two documents of Jaccard similarity `s` share at least one band.
pub fn candidate_probability(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    // Simpson's rule: the integrands are smooth polynomials
    let n = 200;
    let h = (b - a) / n as f64;
    let mut sum = f(a) + f(b);
    for i in 1..n {
        let x = a + i as f64 * h;
        sum += if i % 2 == 1 { 4.0 } else { 2.0 } * f(x);
    }
    sum * h / 3.0
}

impl Params {
    /// The false-positive and false-negative areas of `bands` x `rows` at `threshold`.
    pub fn new(threshold: f64, bands: usize, rows: usize) -> Params {
        Params {
            bands,
            rows,
            false_positive: integrate(|s| candidate_probability(s, bands, rows), 0.0, threshold),
            false_negative: integrate(
                |s| 1.0 - candidate_probability(s, bands, rows),
                threshold,
                1.0,
            ),
        }
    }

    /// The bands and rows, with `bands * rows <= num_perm`, that minimise the sum of the two
    /// areas, as datasketch chooses them.
    pub fn optimal(threshold: f64, num_perm: usize) -> Params {
        let mut best: Option<Params> = None;
        for bands in 1..=num_perm.max(1) {
            for rows in 1..=(num_perm / bands) {
                let p = Params::new(threshold, bands, rows);
                let err = p.false_positive + p.false_negative;
                if best.is_none_or(|b| err < b.false_positive + b.false_negative) {
                    best = Some(p);
                }
            }
        }
        best.unwrap_or_else(|| Params::new(threshold, 1, 1))
    }
}

/// Computes signatures by one-permutation hashing with optimal densification (Li, Owen and
/// Zhang 2012; Shrivastava 2017): each shingle hash is mixed once with the seed and falls into
/// one of `num_perm` bins by its value; a bin keeps its minimum. An empty bin borrows the value
/// of a bin chosen by a hash of its index and the attempt, the same for every document, so the
/// share of equal bins still estimates the Jaccard similarity without bias. One hash per
/// shingle instead of `num_perm`: the signature costs what reading the shingles costs.
#[derive(Debug, Clone)]
pub struct MinHasher {
    bins: usize,
    seed: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl MinHasher {
    pub fn new(num_perm: usize, seed: u64) -> MinHasher {
        MinHasher {
            bins: num_perm.max(1),
            seed: mix(seed.wrapping_add(0x9e37_79b9_7f4a_7c15)),
        }
    }

    pub fn num_perm(&self) -> usize {
        self.bins
    }

    /// The signature of a set of shingle hashes (all `u64::MAX` for an empty set).
    pub fn signature(&self, shingles: &[u64]) -> Vec<u64> {
        let k = self.bins as u128;
        let mut mins = vec![u64::MAX; self.bins];
        for &h in shingles {
            let v = mix(h ^ self.seed);
            let bin = ((u128::from(v) * k) >> 64) as usize;
            // the value within the bin: the bits the bin choice did not use
            let within = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            if within < mins[bin] {
                mins[bin] = within;
            }
        }
        if shingles.is_empty() || mins.iter().all(|&m| m != u64::MAX) {
            return mins;
        }
        // optimal densification: each empty bin takes a full bin picked by a per-bin hash chain
        let full = mins.clone();
        for (i, m) in mins.iter_mut().enumerate() {
            if *m != u64::MAX {
                continue;
            }
            let mut attempt = 0u64;
            loop {
                attempt += 1;
                let r = mix(self.seed ^ ((i as u64) << 32) ^ attempt);
                let j = ((u128::from(r) * k) >> 64) as usize;
                if full[j] != u64::MAX {
                    // the donor's value, made distinct per borrowing bin
                    *m = full[j];
                    break;
                }
            }
        }
        mins
    }
}

/// The key of each band of a signature: xxh3 of its values, seeded by the band number so that
/// equal values in different bands never meet.
pub fn band_keys(signature: &[u64], params: &Params) -> Vec<u64> {
    // one buffer for every band's bytes, not an allocation per band
    let mut bytes = Vec::with_capacity(params.rows * 8);
    (0..params.bands)
        .map(|band| {
            bytes.clear();
            for v in &signature[band * params.rows..(band + 1) * params.rows] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            xxh3_64_with_seed(&bytes, band as u64)
        })
        .collect()
}

/// The share of equal positions: MinHash's estimate of the Jaccard similarity.
pub fn estimate(a: &[u64], b: &[u64]) -> f64 {
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f64 / a.len().max(1) as f64
}

/// Exact Jaccard similarity of two sorted, deduplicated shingle sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - both;
    if union == 0 {
        1.0
    } else {
        both as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        let cases = [
            ("你好，世界！", "你好,世界!"),
            ("  ＡＢＣ　abc \n\t d ", "abc abc d"),
            ("", ""),
            ("Ｔｅｓｔ１２３", "test123"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input:?}");
        }
    }

    #[test]
    fn shingle_counts() {
        assert_eq!(shingles("", 5).len(), 0);
        assert_eq!(shingles("短", 5).len(), 1);
        assert_eq!(shingles("一二三四五", 5).len(), 1);
        assert_eq!(shingles("一二三四五六", 5).len(), 2);
        // repeated n-grams count once; spaces are ignored
        assert_eq!(shingles(&compact("一二 一二"), 2), shingles("一二一二", 2));
        assert_eq!(shingles("一二一二", 2).len(), 2);
    }

    #[test]
    fn optimal_params_match_datasketch() {
        // what datasketch 1.x MinHashLSH(threshold, num_perm) chose, read off its .b and .r
        for (threshold, num_perm, bands, rows) in [
            (0.8, 128, 9, 13),
            (0.5, 128, 25, 5),
            (0.9, 256, 9, 28),
            (0.7, 256, 25, 10),
        ] {
            let p = Params::optimal(threshold, num_perm);
            assert_eq!((p.bands, p.rows), (bands, rows), "{threshold} {num_perm}");
        }
    }
}
