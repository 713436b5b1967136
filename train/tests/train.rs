//! The trainer on the CPU: gradients reach every parameter and agree with finite differences,
//! the loss falls, a resumed run continues the uninterrupted curve, the loader is deterministic
//! and respects shard ends, bad shards are named.

use std::path::Path;

use candle_core::{Device, Tensor};
use corpus::shards::{Dtype, Manifest, ShardWriter, Split, SplitCounts};
use train::model::{self, Model, ModelConfig, Rng};
use train::{InitScheme, Loader, RunConfig};

fn tiny(vocab: usize) -> ModelConfig {
    ModelConfig {
        vocab_size: vocab,
        d_model: 32,
        n_layer: 2,
        n_head: 4,
        d_ff: 64,
        max_seq_len: 32,
        tied_embeddings: false,
        rope_theta: 10_000.0,
        norm_eps: 1e-5,
    }
}

/// Writes documents of tokens as shards with a manifest.
fn write_shards(dir: &Path, docs: &[Vec<u32>], vocab: usize, shard_tokens: usize, val: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let eot = (vocab - 1) as u32;
    let mut w = ShardWriter::new(dir, Dtype::U16, shard_tokens, eot);
    for (i, d) in docs.iter().enumerate() {
        w.add(Split::of(&format!("d{i}"), val), d, d.len() as u64)
            .unwrap();
    }
    w.finish().unwrap();
    Manifest {
        format: "llm.c".into(),
        tokenizer: "bytes".into(),
        tokenizer_hash: String::new(),
        vocab_size: vocab,
        end_of_text: eot,
        dtype: Dtype::U16,
        val_fraction: val,
        documents: w.documents,
        tokens: w.tokens,
        bytes: w.bytes,
        shards: w.shards.clone(),
    }
    .write(dir)
    .unwrap();
}

/// Documents from a small deterministic grammar: each token mostly follows from the one before.
fn markov_docs(n: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(seed);
    let symbols = (vocab - 1) as u64;
    (0..n)
        .map(|_| {
            let mut t = rng.below(symbols);
            (0..100)
                .map(|_| {
                    t = if rng.below(10) < 9 {
                        (t * 7 + 3) % symbols
                    } else {
                        rng.below(symbols)
                    };
                    t as u32
                })
                .collect()
        })
        .collect()
}

fn batch(vocab: usize, b: usize, t: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let ids: Vec<u32> = (0..b * (t + 1))
        .map(|_| rng.below(vocab as u64) as u32)
        .collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for row in ids.chunks(t + 1) {
        x.extend_from_slice(&row[..t]);
        y.extend_from_slice(&row[1..]);
    }
    (
        model::ids_tensor(&x, b, &Device::Cpu).unwrap(),
        model::ids_tensor(&y, b, &Device::Cpu).unwrap(),
    )
}

#[test]
fn every_parameter_gets_a_finite_nonzero_gradient() {
    for tied in [false, true] {
        let cfg = ModelConfig {
            tied_embeddings: tied,
            ..tiny(50)
        };
        let model = Model::new(&cfg, InitScheme::Gpt2, 1, &Device::Cpu).unwrap();
        let (x, y) = batch(50, 2, 16, 2);
        let grads = model.loss(&x, &y).unwrap().backward().unwrap();
        assert_eq!(model.params.len(), 2 + 9 * 2 + usize::from(!tied));
        for p in &model.params {
            let g = grads
                .get(p.var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {}", p.name));
            let v: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{}", p.name);
            assert!(
                v.iter().any(|x| *x != 0.0),
                "all-zero gradient for {}",
                p.name
            );
        }
    }
}

#[test]
fn gradients_agree_with_finite_differences() {
    let model = Model::new(&tiny(40), InitScheme::Gpt2, 3, &Device::Cpu).unwrap();
    let (x, y) = batch(40, 2, 12, 4);
    let loss = |m: &Model| f64::from(m.loss(&x, &y).unwrap().to_scalar::<f32>().unwrap());
    let grads = model.loss(&x, &y).unwrap().backward().unwrap();
    let h = 1e-2f32;
    let mut checked = 0;
    for p in &model.params {
        let g: Vec<f32> = grads
            .get(p.var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // the entry with the largest gradient: the one finite differences resolve best in f32
        let (i, &gi) = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap();
        let original = p.var.as_tensor().copy().unwrap();
        let shape = original.dims().to_vec();
        let mut w: Vec<f32> = original.flatten_all().unwrap().to_vec1().unwrap();
        let mut at = |delta: f32| {
            w[i] = original.flatten_all().unwrap().to_vec1::<f32>().unwrap()[i] + delta;
            p.var
                .set(&Tensor::from_slice(&w, shape.as_slice(), &Device::Cpu).unwrap())
                .unwrap();
            loss(&model)
        };
        let numeric = (at(h) - at(-h)) / (2.0 * f64::from(h));
        p.var.set(&original).unwrap();
        let err = (numeric - f64::from(gi)).abs() / f64::from(gi).abs().max(1e-3);
        assert!(err < 0.05, "{}: analytic {gi}, numeric {numeric}", p.name);
        checked += 1;
    }
    assert_eq!(checked, model.params.len());
}

/// A run on the CPU, without progress reports.
fn fit(
    data: &Path,
    out: &Path,
    cfg: &RunConfig,
    resume: bool,
) -> Result<Vec<train::StepMetrics>, train::TrainError> {
    train::train(data, out, cfg, resume, &Device::Cpu, &corpus::NoProgress)
}

fn run_config(vocab: usize, steps: u64) -> RunConfig {
    let mut cfg = RunConfig::preset("tiny", vocab).unwrap();
    cfg.model = tiny(vocab);
    cfg.seq_len = 32;
    cfg.batch_size = 8;
    cfg.max_steps = steps;
    cfg.optim.lr = 3e-3;
    cfg.optim.min_lr = 3e-4;
    cfg.optim.warmup_steps = 10;
    cfg.eval_every = 50;
    cfg.eval_batches = 2;
    cfg.checkpoint_every = 0;
    cfg
}

#[test]
fn the_loss_falls_well_below_chance() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = 32;
    write_shards(
        &dir.path().join("s"),
        &markov_docs(200, vocab, 5),
        vocab,
        1 << 20,
        0.1,
    );
    let cfg = run_config(vocab, 150);
    let history = fit(&dir.path().join("s"), &dir.path().join("run"), &cfg, false).unwrap();
    let chance = (vocab as f64).ln();
    let first = history[0].loss;
    let last = history.iter().rev().take(10).map(|m| m.loss).sum::<f64>() / 10.0;
    assert!(
        (first - chance).abs() < 0.5,
        "first loss {first}, ln(vocab) {chance}"
    );
    // the grammar is 90% deterministic: its entropy is far below ln(vocab)
    assert!(last < 0.5 * chance, "last loss {last}, ln(vocab) {chance}");
    let val = history.iter().rev().find_map(|m| m.val_loss).unwrap();
    assert!(val < 0.6 * chance, "validation loss {val}");
    let metrics = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 150);
    assert!(
        metrics
            .lines()
            .all(|l| l.contains("\"step\"") && l.contains("\"loss\""))
    );
}

#[test]
fn a_resumed_run_continues_the_uninterrupted_curve() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = 32;
    let data = dir.path().join("s");
    write_shards(&data, &markov_docs(100, vocab, 6), vocab, 1 << 20, 0.1);
    let cfg = run_config(vocab, 30);
    let whole = fit(&data, &dir.path().join("a"), &cfg, false).unwrap();
    // stopped after 12 steps (by a token budget, so the schedule is the same), then resumed
    let first = RunConfig {
        max_tokens: 12 * cfg.tokens_per_step(),
        ..cfg.clone()
    };
    let part = fit(&data, &dir.path().join("b"), &first, false).unwrap();
    assert_eq!(part.len(), 12);
    // other settings are refused; the stopping rule may change
    let other = RunConfig {
        seed: 2,
        ..cfg.clone()
    };
    let err = fit(&data, &dir.path().join("b"), &other, true);
    assert!(err.is_err_and(|e| e.to_string().contains("other settings")));
    let rest = fit(&data, &dir.path().join("b"), &cfg, true).unwrap();
    assert_eq!(rest.first().map(|m| m.step), Some(13));
    let resumed: Vec<f64> = part.iter().chain(&rest).map(|m| m.loss).collect();
    let uninterrupted: Vec<f64> = whole.iter().map(|m| m.loss).collect();
    assert_eq!(resumed.len(), uninterrupted.len());
    for (i, (a, b)) in resumed.iter().zip(&uninterrupted).enumerate() {
        assert!(
            (a - b).abs() < 1e-5,
            "step {}: resumed {a}, uninterrupted {b}",
            i + 1
        );
    }
    let metrics = std::fs::read_to_string(dir.path().join("b/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 30);

    // the checkpoint holds the trained weights: a loaded run predicts what the run predicted
    let loaded = train::load_run(&dir.path().join("a"), &Device::Cpu).unwrap();
    let again = train::load_run(&dir.path().join("b"), &Device::Cpu).unwrap();
    let (x, y) = batch(vocab, 2, 16, 9);
    let l1 = loaded.loss(&x, &y).unwrap().to_scalar::<f32>().unwrap();
    let l2 = again.loss(&x, &y).unwrap().to_scalar::<f32>().unwrap();
    assert!((l1 - l2).abs() < 1e-5);
    let sampled = train::sample(&loaded, &[1, 2, 3], 12, 0.0, 1, 1, None, |_| {}).unwrap();
    assert_eq!(sampled.len(), 12);
    assert_eq!(
        sampled,
        train::sample(&loaded, &[1, 2, 3], 12, 0.0, 1, 7, None, |_| {}).unwrap()
    );
    // a stop token ends the continuation where it is first drawn, without it
    let stop = sampled[6];
    let first = sampled.iter().position(|&t| t == stop).unwrap();
    assert_eq!(
        train::sample(&loaded, &[1, 2, 3], 12, 0.0, 1, 1, Some(stop), |_| {}).unwrap(),
        sampled[..first]
    );
}

#[test]
fn the_loader_is_deterministic_and_keeps_windows_inside_shards() {
    let dir = tempfile::tempdir().unwrap();
    // one document per shard, each of one repeated token: a window crossing a shard end would
    // mix two tokens (and the end-of-text token starts each shard)
    let docs: Vec<Vec<u32>> = (0..4).map(|i| vec![i as u32 + 1; 99]).collect();
    write_shards(dir.path(), &docs, 16, 100, 0.0);
    let loader = Loader::open(dir.path(), Split::Train, 17).unwrap();
    assert_eq!(loader.tokens, 400);
    for k in 0..50 {
        let (x, y) = loader.batch(3, k, 4).unwrap();
        assert_eq!(loader.batch(3, k, 4).unwrap(), (x.clone(), y.clone()));
        for (row, target) in x.chunks(16).zip(y.chunks(16)) {
            let body: Vec<u32> = row
                .iter()
                .chain(target)
                .copied()
                .filter(|&t| t != 15)
                .collect();
            assert!(body.windows(2).all(|w| w[0] == w[1]), "{row:?} {target:?}");
        }
    }
    assert_ne!(
        loader.batch(3, 0, 4).unwrap(),
        loader.batch(3, 1, 4).unwrap()
    );
    assert_ne!(
        loader.batch(3, 0, 4).unwrap(),
        loader.batch(4, 0, 4).unwrap()
    );
    // too long a window for any shard
    assert!(Loader::open(dir.path(), Split::Train, 101).is_err());
}

#[test]
fn bad_shards_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = 32;
    let data = dir.path().join("s");
    write_shards(&data, &markov_docs(20, vocab, 7), vocab, 1 << 20, 0.0);
    let run = |cfg: &RunConfig| {
        fit(&data, &dir.path().join("r"), cfg, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    // a model for another vocabulary
    let mut other = run_config(vocab, 2);
    other.model.vocab_size = 64;
    assert!(
        run(&other).contains("vocabulary is 32 ids, the model's 64"),
        "{}",
        run(&other)
    );
    // a truncated shard
    let shard = data.join("train_000000.bin");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 2]).unwrap();
    let err = run(&run_config(vocab, 2));
    assert!(err.contains("train_000000.bin"), "{err}");
    // a shard whose tokens exceed the manifest's vocabulary
    std::fs::write(&shard, &bytes).unwrap();
    let mut m = Manifest::read(&data).unwrap();
    m.vocab_size = 8;
    m.documents = SplitCounts::default();
    m.write(&data).unwrap();
    let mut small = run_config(8, 2);
    small.model.vocab_size = 8;
    assert!(
        run(&small).contains("outside the manifest's vocabulary of 8"),
        "{}",
        run(&small)
    );
}

#[test]
fn steps_with_a_non_finite_loss_are_skipped_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = 32;
    let data = dir.path().join("s");
    write_shards(&data, &markov_docs(20, vocab, 8), vocab, 1 << 20, 0.0);
    let mut cfg = run_config(vocab, 12);
    // a learning rate that blows the weights up within a few steps
    cfg.optim.lr = 1e9;
    cfg.optim.min_lr = 1e9;
    cfg.optim.warmup_steps = 0;
    cfg.optim.grad_clip = 0.0;
    let history = fit(&data, &dir.path().join("r"), &cfg, false).unwrap();
    assert_eq!(history.len(), 12);
    assert!(history.iter().any(|m| m.skipped), "{history:?}");
    let metrics = std::fs::read_to_string(dir.path().join("r/metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"skipped\":true"));
    // skipped steps made no update: no weight became NaN
    let model = train::load_run(&dir.path().join("r"), &Device::Cpu).unwrap();
    for p in &model.params {
        let v: Vec<f32> = p.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|x| !x.is_nan()), "{}", p.name);
    }
}

#[test]
fn bf16_compute_trains_f32_master_weights_like_f32() {
    use train::Precision;
    let cfg = tiny(50);
    let full = Model::new(&cfg, InitScheme::Gpt2, 1, &Device::Cpu).unwrap();
    let mut low = Model::new(&cfg, InitScheme::Gpt2, 1, &Device::Cpu).unwrap();
    low.precision = Precision::Bf16;
    let (x, y) = batch(50, 2, 16, 2);
    let (lf, ll) = (full.loss(&x, &y).unwrap(), low.loss(&x, &y).unwrap());
    let (a, b) = (
        lf.to_scalar::<f32>().unwrap(),
        ll.to_scalar::<f32>().unwrap(),
    );
    assert!((a - b).abs() < 0.02, "f32 loss {a}, bf16 loss {b}");
    let (gf, gl) = (lf.backward().unwrap(), ll.backward().unwrap());
    for (pf, pl) in full.params.iter().zip(&low.params) {
        let g = gl
            .get(pl.var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {}", pl.name));
        // the master weights and their gradients are f32
        assert_eq!(pl.var.dtype(), candle_core::DType::F32, "{}", pl.name);
        assert_eq!(g.dtype(), candle_core::DType::F32, "{}", pl.name);
        let (u, v): (Vec<f32>, Vec<f32>) = (
            g.flatten_all().unwrap().to_vec1().unwrap(),
            gf.get(pf.var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap(),
        );
        assert!(u.iter().all(|x| x.is_finite()), "{}", pl.name);
        let dot: f32 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
        let norm = |w: &[f32]| w.iter().map(|a| a * a).sum::<f32>().sqrt();
        let cosine = dot / (norm(&u) * norm(&v));
        assert!(cosine > 0.98, "{}: cosine {cosine}", pl.name);
    }

    // a short run in bf16 follows the f32 run's curve
    let dir = tempfile::tempdir().unwrap();
    let vocab = 32;
    let data = dir.path().join("s");
    write_shards(&data, &markov_docs(100, vocab, 7), vocab, 1 << 20, 0.1);
    let mut cfg = run_config(vocab, 60);
    let f32_run = fit(&data, &dir.path().join("a"), &cfg, false).unwrap();
    cfg.precision = Precision::Bf16;
    let bf16_run = fit(&data, &dir.path().join("b"), &cfg, false).unwrap();
    let tail = |h: &[train::StepMetrics]| h.iter().rev().take(5).map(|m| m.loss).sum::<f64>() / 5.0;
    let (a, b) = (tail(&f32_run), tail(&bf16_run));
    assert!(b < 0.8 * (vocab as f64).ln(), "bf16 loss {b} did not fall");
    assert!((a - b).abs() < 0.1, "after 60 steps: f32 {a}, bf16 {b}");
    let saved = std::fs::read_to_string(dir.path().join("b/config.json")).unwrap();
    assert!(saved.contains("\"precision\": \"bf16\""), "{saved}");
}

/// Generation with cached keys and values draws what a full forward pass over the window
/// draws, also past the model's longest context, and streams every token it keeps.
#[test]
fn cached_sampling_matches_the_full_forward_pass() {
    let mut cfg = tiny(97);
    cfg.max_seq_len = 16;
    let model = Model::new(&cfg, train::InitScheme::Gpt2, 5, &Device::Cpu).unwrap();
    let prompt = [3u32, 14, 15, 92, 65];
    // the reference: the whole window through `forward` for every token, greedy; the window
    // restarts from its last max - 1 positions when it is full, as the cache does
    let mut ids = prompt.to_vec();
    let mut start = 0;
    for _ in 0..30 {
        if ids.len() - start + 1 > cfg.max_seq_len + 1 {
            start = ids.len() - (cfg.max_seq_len - 1);
        }
        let ctx = &ids[start..];
        let x = candle_core::Tensor::from_slice(ctx, (1, ctx.len()), &Device::Cpu).unwrap();
        let logits = model.forward(&x).unwrap();
        let last: Vec<f32> = logits
            .squeeze(0)
            .unwrap()
            .get(ctx.len() - 1)
            .unwrap()
            .to_vec1()
            .unwrap();
        let best = (0..last.len())
            .max_by(|&a, &b| last[a].total_cmp(&last[b]))
            .unwrap();
        ids.push(best as u32);
    }
    // the cached logits are the full pass's, position by position
    let mut cache = train::KvCache::default();
    let mut fed = Vec::new();
    for (k, chunk) in [&ids[..5], &ids[5..6], &ids[6..7], &ids[7..10]]
        .iter()
        .enumerate()
    {
        fed.extend_from_slice(chunk);
        let cached: Vec<f32> = model
            .forward_cached(chunk, &mut cache)
            .unwrap()
            .to_vec1()
            .unwrap();
        let x = candle_core::Tensor::from_slice(&fed, (1, fed.len()), &Device::Cpu).unwrap();
        let full: Vec<f32> = model
            .forward(&x)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .get(fed.len() - 1)
            .unwrap()
            .to_vec1()
            .unwrap();
        for (a, b) in cached.iter().zip(&full) {
            assert!((a - b).abs() < 1e-4, "call {k}: {a} against {b}");
        }
    }
    let mut streamed = Vec::new();
    let got = train::sample(&model, &prompt, 30, 0.0, 0, 1, None, |t| streamed.push(t)).unwrap();
    assert_eq!(got, ids[prompt.len()..]);
    assert_eq!(streamed, got);
    // top_k 0 samples among every token; bad temperatures are refused
    assert_eq!(
        train::sample(&model, &prompt, 5, 1.0, 0, 3, None, |_| {})
            .unwrap()
            .len(),
        5
    );
    for t in [f64::NAN, -1.0, f64::INFINITY] {
        assert!(train::sample(&model, &prompt, 5, t, 0, 3, None, |_| {}).is_err());
    }
}
