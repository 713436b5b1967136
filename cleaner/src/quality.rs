//! A quality classifier in the spirit of GPT-3's: a logistic regression over hashed character
//! n-gram features, trained to tell reference text (positive) from raw crawl (negative). The
//! score is the probability of "reference-like"; a document is kept above a threshold, or by
//! GPT-3's Pareto sampling, which keeps some low scorers for diversity.
//!
//! Features: character 1- to 3-grams of the normalised text, hashed (xxh3) into 2^22 buckets,
//! counted as log(1 + n) and scaled to unit length. Training: stochastic gradient descent with
//! AdaGrad steps and a small L2 penalty, in a shuffled order fixed by a seed; the model is
//! the average of the weights over every step.

use std::io::{Read, Write};
use std::path::Path;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Models written before line shapes were features (n-grams only).
const MAGIC_V1: &[u8; 8] = b"ZHQMODL1";
const MAGIC: &[u8; 8] = b"ZHQMODL2";

/// A trained model.
#[derive(Debug, Clone)]
pub struct QualityModel {
    bits: u32,
    max_n: u32,
    line_shapes: bool,
    bias: f32,
    weights: Vec<f32>,
}

/// Training settings (`zhcorpus quality train --config`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Feature buckets as a power of two (22: 4,194,304 buckets, a 16 MiB model; fewer
    /// buckets collide more n-grams and generalise worse to unseen text).
    pub bits: u32,
    /// Longest character n-gram hashed.
    pub max_n: u32,
    /// Each line's shape (its length, whether it ends a sentence, its share of Han
    /// characters) as features too: n-grams do not see lines, and a page of short unfinished
    /// lines (a menu, a footer, a link list) is junk whatever its words.
    pub line_shapes: bool,
    /// Passes over the training set.
    pub epochs: u32,
    pub learning_rate: f32,
    pub l2: f32,
    /// Shuffling and hold-out seed.
    pub seed: u64,
    /// Share of each class held out to measure accuracy and AUC.
    pub holdout: f64,
    /// Skip input lines that are not documents (counted) instead of stopping at the first.
    pub skip_invalid: bool,
}

impl TrainConfig {
    /// Refuses settings that cannot work, naming the key and the range it takes.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |key: &str, why: &str| Err(crate::Error::QualityConfig(format!("{key}: {why}")));
        if !(10..=24).contains(&self.bits) {
            return bad("bits", "goes from 10 to 24");
        }
        if !(1..=5).contains(&self.max_n) {
            return bad("max_n", "goes from 1 to 5");
        }
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be a finite number above 0");
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return bad("l2", "must be a finite number, 0 or more");
        }
        if !(0.0..0.9).contains(&self.holdout) {
            return bad("holdout", "must be a share from 0 to below 0.9");
        }
        Ok(())
    }
}

/// What training the classifier measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrainReport {
    pub positive: usize,
    pub negative: usize,
    pub held_out: usize,
    /// On the held-out documents (absent when none were held out).
    pub accuracy: Option<f64>,
    pub auc: Option<f64>,
    /// Input lines skipped as invalid (with `skip_invalid`).
    pub invalid_lines: u64,
    pub seconds: f64,
}

/// Trains the classifier on reference text (`positive`) against raw text (`negative`), both
/// JSONL(.zst) files, holding out a share of each class to measure it; writes the model to
/// `output`.
pub fn train_files(
    positive: &[std::path::PathBuf],
    negative: &[std::path::PathBuf],
    output: &Path,
    config: &TrainConfig,
) -> Result<TrainReport, crate::Error> {
    config.validate()?;
    corpus::check_output(output)?;
    let invalid = corpus::InvalidLines::default();
    let read = |paths: &[std::path::PathBuf]| -> corpus::Result<Vec<String>> {
        corpus::read_all_skipping(paths, config.skip_invalid, &invalid)
            .map(|d| d.map(|d| crate::normalize::normalize(&d.text)))
            .collect()
    };
    let positive = read(positive)?;
    let negative = read(negative)?;
    if positive.is_empty() || negative.is_empty() {
        return Err(crate::Error::QualityConfig(
            "positive and negative: both files need documents".into(),
        ));
    }
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let mut train = Vec::new();
    let mut held = Vec::new();
    for (texts, label) in [(&positive, true), (&negative, false)] {
        let mut idx: Vec<usize> = (0..texts.len()).collect();
        rng.shuffle(&mut idx);
        let n_held = (texts.len() as f64 * config.holdout).round() as usize;
        for (k, &i) in idx.iter().enumerate() {
            let f = features_with(&texts[i], config.bits, config.max_n, config.line_shapes);
            if k < n_held {
                held.push((f, label));
            } else {
                train.push((f, label));
            }
        }
    }
    let start = std::time::Instant::now();
    let model = QualityModel::train(&train, config);
    let seconds = start.elapsed().as_secs_f64();
    model.save(output).map_err(|err| crate::Error::Io {
        path: output.to_path_buf(),
        err,
    })?;
    let mut report = TrainReport {
        positive: train.iter().filter(|(_, y)| *y).count(),
        negative: train.iter().filter(|(_, y)| !*y).count(),
        held_out: held.len(),
        invalid_lines: invalid.count(),
        seconds,
        ..TrainReport::default()
    };
    if !held.is_empty() {
        let scored: Vec<(f64, bool)> = held
            .iter()
            .map(|(f, y)| (model.score_features(f), *y))
            .collect();
        report.accuracy = Some(
            scored.iter().filter(|(s, y)| (*s >= 0.5) == *y).count() as f64 / scored.len() as f64,
        );
        report.auc = Some(auc(&scored));
    }
    Ok(report)
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            bits: 22,
            max_n: 3,
            line_shapes: true,
            epochs: 5,
            learning_rate: 0.5,
            l2: 1e-6,
            seed: 1,
            holdout: 0.1,
            skip_invalid: false,
        }
    }
}

/// Sparse feature vector: bucket and value.
pub type Features = Vec<(u32, f32)>;

/// The hashed n-gram features of `text`.
pub fn features(text: &str, bits: u32, max_n: u32) -> Features {
    features_with(text, bits, max_n, false)
}

/// The hashed features of `text`: character n-grams, and with `line_shapes` one token per
/// line for its shape (length class, sentence end, Han share).
pub fn features_with(text: &str, bits: u32, max_n: u32, line_shapes: bool) -> Features {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mask = (1u64 << bits) - 1;
    let mut counts: std::collections::HashMap<u32, f32> = std::collections::HashMap::new();
    let mut buf = String::new();
    for n in 1..=max_n as usize {
        for w in chars.windows(n) {
            buf.clear();
            buf.extend(w);
            let b = (xxh3_64_with_seed(buf.as_bytes(), n as u64) & mask) as u32;
            *counts.entry(b).or_default() += 1.0;
        }
    }
    if line_shapes {
        for line in text.lines() {
            let n = line.chars().filter(|c| !c.is_whitespace()).count();
            if n == 0 {
                continue;
            }
            let han = line.chars().filter(|&c| crate::rules::is_han(c)).count();
            let length = (usize::BITS - n.leading_zeros()).min(10) as u8;
            let ends = u8::from(line.trim_end().ends_with(crate::rules::TERMINAL));
            let han_share = (han * 4 / n).min(3) as u8;
            let b = (xxh3_64_with_seed(&[length, ends, han_share], 100) & mask) as u32;
            *counts.entry(b).or_default() += 1.0;
        }
    }
    let mut f: Features = counts
        .into_iter()
        .map(|(k, v)| (k, (1.0 + v).ln()))
        .collect();
    let norm = f.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, v) in &mut f {
            *v /= norm;
        }
    }
    f.sort_unstable_by_key(|(k, _)| *k);
    f
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl QualityModel {
    /// Trains on labelled feature vectors (`true` = positive). The model is the average of
    /// the weights over every step (averaged SGD): the last weights of plain SGD depend on the
    /// order of the last few examples, so adding or removing one document moved a borderline
    /// article across the threshold; the average does not swing with the order.
    pub fn train(examples: &[(Features, bool)], config: &TrainConfig) -> QualityModel {
        let dims = 1usize << config.bits;
        let mut w = vec![0f32; dims];
        // sum over steps of (step × change), so that the average is w - u / steps without
        // touching every weight at every step; in f64, as is the step count (f32 stops
        // counting at 2^24 steps)
        let mut u = vec![0f64; dims];
        let mut g2 = vec![1e-8f32; dims];
        let mut bias = 0f32;
        let mut bias_u = 0f64;
        let mut bias_g2 = 1e-8f32;
        let mut step = 1f64;
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = fastrand::Rng::with_seed(config.seed);
        // positives and negatives weighted to count equally
        let pos = examples.iter().filter(|(_, y)| *y).count().max(1) as f32;
        let neg = (examples.len() as f32 - pos).max(1.0);
        let total = examples.len() as f32;
        for _ in 0..config.epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let (x, y) = &examples[i];
                let z = bias + x.iter().map(|&(k, v)| w[k as usize] * v).sum::<f32>();
                let weight = if *y {
                    total / (2.0 * pos)
                } else {
                    total / (2.0 * neg)
                };
                let err = (sigmoid(z) - if *y { 1.0 } else { 0.0 }) * weight;
                for &(k, v) in x {
                    let k = k as usize;
                    let g = err * v + config.l2 * w[k];
                    g2[k] += g * g;
                    let delta = config.learning_rate * g / g2[k].sqrt();
                    w[k] -= delta;
                    u[k] -= step * f64::from(delta);
                }
                bias_g2 += err * err;
                let delta = config.learning_rate * err / bias_g2.sqrt();
                bias -= delta;
                bias_u -= step * f64::from(delta);
                step += 1.0;
            }
        }
        for (w, u) in w.iter_mut().zip(&u) {
            *w = (f64::from(*w) - u / step) as f32;
        }
        let bias = (f64::from(bias) - bias_u / step) as f32;
        QualityModel {
            bits: config.bits,
            max_n: config.max_n,
            line_shapes: config.line_shapes,
            bias,
            weights: w,
        }
    }

    /// The probability that `text` is like the positive examples.
    pub fn score(&self, text: &str) -> f64 {
        self.score_features(&features_with(
            text,
            self.bits,
            self.max_n,
            self.line_shapes,
        ))
    }

    pub fn score_features(&self, x: &Features) -> f64 {
        let z = self.bias
            + x.iter()
                .map(|&(k, v)| self.weights.get(k as usize).copied().unwrap_or(0.0) * v)
                .sum::<f32>();
        f64::from(sigmoid(z))
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    pub fn max_n(&self) -> u32 {
        self.max_n
    }

    /// Whether line shapes are features of this model.
    pub fn line_shapes(&self) -> bool {
        self.line_shapes
    }

    /// Writes the model: magic, bits, max n, flags (1: line shapes), bias, then the weights,
    /// little-endian.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(24 + self.weights.len() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.bits.to_le_bytes());
        out.extend_from_slice(&self.max_n.to_le_bytes());
        out.extend_from_slice(&u32::from(self.line_shapes).to_le_bytes());
        out.extend_from_slice(&self.bias.to_le_bytes());
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        let tmp = path.with_extension("partial");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(tmp, path)
    }

    /// Reads a model written by [`QualityModel::save`].
    pub fn load(path: &Path) -> Result<QualityModel, String> {
        let mut data = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let bad = || format!("{}: not a zhcorpus quality model", path.display());
        let v1 = data.len() >= 20 && &data[..8] == MAGIC_V1;
        if !v1 && (data.len() < 24 || &data[..8] != MAGIC) {
            return Err(bad());
        }
        let u32_at = |i: usize| u32::from_le_bytes(data[i..i + 4].try_into().unwrap_or_default());
        let bits = u32_at(8);
        let max_n = u32_at(12);
        let (flags, header) = if v1 { (0, 20) } else { (u32_at(16), 24) };
        if !(8..=24).contains(&bits) || !(1..=5).contains(&max_n) || flags > 1 {
            return Err(bad());
        }
        let bias = f32::from_le_bytes(data[header - 4..header].try_into().unwrap_or_default());
        let dims = 1usize << bits;
        if data.len() != header + dims * 4 {
            return Err(bad());
        }
        let weights = data[header..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        Ok(QualityModel {
            bits,
            max_n,
            line_shapes: flags == 1,
            bias,
            weights,
        })
    }
}

/// Area under the ROC curve of scores against labels (ties counted half).
pub fn auc(scored: &[(f64, bool)]) -> f64 {
    let mut v = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = v.iter().filter(|(_, y)| *y).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    // rank sum of the positives, average ranks for ties
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * v[i..j].iter().filter(|(_, y)| *y).count() as f64;
        i = j;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// GPT-3's keep rule: keep when a Pareto(α) draw exceeds 1 − score. The draw is fixed by the
/// document's key, so a rerun keeps the same documents.
pub fn pareto_keep(score: f64, alpha: f64, key: &str) -> bool {
    let u = (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64;
    // numpy.random.pareto: Lomax, (1 - u)^(-1/α) - 1
    let draw = (1.0 - u).powf(-1.0 / alpha) - 1.0;
    draw > 1.0 - score
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model written before line shapes were features still loads, and scores n-grams only.
    #[test]
    fn first_format_models_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.bin");
        let bits = 10u32;
        let mut data = Vec::new();
        data.extend_from_slice(MAGIC_V1);
        data.extend_from_slice(&bits.to_le_bytes());
        data.extend_from_slice(&3u32.to_le_bytes());
        data.extend_from_slice(&0.25f32.to_le_bytes());
        for i in 0..1u32 << bits {
            data.extend_from_slice(&((i % 7) as f32 * 0.01).to_le_bytes());
        }
        std::fs::write(&path, &data).unwrap();
        let model = QualityModel::load(&path).unwrap();
        assert!(!model.line_shapes());
        let text = "第一行文字。\n第二行";
        let expected = model.score_features(&features(text, bits, 3));
        assert_eq!(model.score(text), expected);
        // saved again, it is the second format and the same model
        let again = dir.path().join("v2.bin");
        model.save(&again).unwrap();
        let reloaded = QualityModel::load(&again).unwrap();
        assert_eq!(reloaded.score(text), expected);
        assert!(!reloaded.line_shapes());
        // a second-format header with an unknown flag is refused
        let mut bad = std::fs::read(&again).unwrap();
        bad[16] = 7;
        std::fs::write(&again, &bad).unwrap();
        assert!(QualityModel::load(&again).is_err());
    }

    /// The model is the average of the weights over every step (the starting zeros
    /// included), computed without touching every weight at each step: checked against a
    /// trainer that keeps the whole trajectory.
    #[test]
    fn model_is_the_average_of_the_trajectory() {
        let config = TrainConfig {
            bits: 10,
            epochs: 3,
            ..TrainConfig::default()
        };
        let texts = [
            ("今天天气很好，我们去公园散步。", true),
            ("首页 | 新闻 | 体育 | 娱乐", false),
            ("研究人员发现，这种方法可以提高效率。", true),
            ("点击这里 登录 注册 返回顶部", false),
            ("他说：“我们会继续努力。”", true),
        ];
        let examples: Vec<(Features, bool)> = texts
            .iter()
            .map(|(t, y)| (features_with(t, config.bits, config.max_n, true), *y))
            .collect();
        let model = QualityModel::train(&examples, &config);

        // the same steps, every intermediate weight vector summed
        let dims = 1usize << config.bits;
        let (mut w, mut g2, mut sum) = (vec![0f64; dims], vec![1e-8f64; dims], vec![0f64; dims]);
        let (mut bias, mut bias_g2, mut bias_sum, mut steps) = (0f64, 1e-8f64, 0f64, 1f64);
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let pos = 3.0;
        let (neg, total) = (2.0, 5.0);
        for _ in 0..config.epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let (x, y) = &examples[i];
                let z = bias
                    + x.iter()
                        .map(|&(k, v)| w[k as usize] * f64::from(v))
                        .sum::<f64>();
                let weight = if *y {
                    total / (2.0 * pos)
                } else {
                    total / (2.0 * neg)
                };
                let err = (1.0 / (1.0 + (-z).exp()) - if *y { 1.0 } else { 0.0 }) * weight;
                for &(k, v) in x {
                    let k = k as usize;
                    let g = err * f64::from(v) + f64::from(config.l2) * w[k];
                    g2[k] += g * g;
                    w[k] -= f64::from(config.learning_rate) * g / g2[k].sqrt();
                }
                bias_g2 += err * err;
                bias -= f64::from(config.learning_rate) * err / bias_g2.sqrt();
                for (s, w) in sum.iter_mut().zip(&w) {
                    *s += w;
                }
                bias_sum += bias;
                steps += 1.0;
            }
        }
        let touched: Vec<usize> = (0..dims).filter(|&k| sum[k] != 0.0).collect();
        assert!(touched.len() > 20);
        for k in touched {
            let want = sum[k] / steps;
            let got = f64::from(model.weights[k]);
            assert!(
                (got - want).abs() < 1e-4,
                "weight {k}: {got} against {want}"
            );
            // the last weights are not the average (the test would pass for plain SGD otherwise)
            assert!((w[k] - want).abs() > 1e-6 || w[k] == 0.0);
        }
        assert!((f64::from(model.bias) - bias_sum / steps).abs() < 1e-4);
    }
}
