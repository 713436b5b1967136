//! GPT pretraining on Candle over llm.c token shards (read through `corpus::shards`; this
//! crate never links the tokenizer).
//!
//! - [`model`]: a Llama-style decoder, HF parameter names;
//! - [`ops`]: fused CPU kernels with their backward passes (loss, attention softmax, RMSNorm,
//!   rotary embeddings, SwiGLU), differentiable compositions on other devices;
//! - [`data`]: memory-mapped shards, deterministic random windows;
//! - [`optim`]: AdamW with decoupled decay, clipping, warmup and cosine decay;
//! - [`dist`]: the collectives of data-parallel runs (one process, or MPI);
//! - this module: the run (gradient accumulation, validation, non-finite guard, metrics,
//!   checkpoints that resume onto the uninterrupted loss curve) and sampling.

pub mod data;
pub mod dist;
pub mod model;
pub mod ops;
pub mod optim;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use corpus::Progress;
use corpus::shards::{Manifest, Split};
use serde::{Deserialize, Serialize};

pub use data::{DataError, Loader};
pub use dist::{Collective, CollectiveError, DistOptions, Single};
pub use model::{InitScheme, KvCache, Model, ModelConfig, Precision};
pub use optim::{OptimConfig, Schedule};

/// The widest matrix kernels of this CPU, as the matrix multiplications choose them at run
/// time (gemm, built with its AVX-512 kernels unless the `avx512` feature is off): `avx512f`,
/// `fma` (AVX2 and FMA), `neon`, or `baseline`. The binary assumes no vector unit at build
/// time; each run asks the CPU.
pub fn cpu_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512") && std::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        // gemm takes its AVX2 kernels on FMA
        if std::is_x86_feature_detected!("fma") {
            return "fma";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return "neon";
        }
    }
    "baseline"
}

/// Everything a run needs besides its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub optim: OptimConfig,
    pub init: InitScheme,
    /// What the forward pass computes in: `f32`, or `bf16` with f32 master weights.
    #[serde(default)]
    pub precision: Precision,
    /// Tokens per sequence (T).
    pub seq_len: usize,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches whose gradients are averaged into one step.
    pub grad_accum: usize,
    pub max_steps: u64,
    /// Stop once this many tokens have been trained on (0: no limit).
    pub max_tokens: u64,
    /// Stop after this many seconds (0: no limit); a checkpoint is written.
    pub max_time_s: f64,
    /// Validation every this many steps (0: never), over `eval_batches` fixed batches.
    pub eval_every: u64,
    pub eval_batches: usize,
    /// Checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    pub seed: u64,
}

impl RunConfig {
    /// A run of the named preset model for a vocabulary.
    pub fn preset(name: &str, vocab_size: usize) -> Option<RunConfig> {
        let model = ModelConfig::preset(name, vocab_size)?;
        let seq_len = model.max_seq_len.min(if name == "tiny" {
            64
        } else {
            model.max_seq_len
        });
        Some(RunConfig {
            seq_len,
            batch_size: if name == "tiny" { 8 } else { 16 },
            grad_accum: 1,
            max_steps: 1000,
            max_tokens: 0,
            max_time_s: 0.0,
            eval_every: 100,
            eval_batches: 8,
            checkpoint_every: 200,
            seed: 1,
            init: InitScheme::Gpt2,
            precision: Precision::F32,
            optim: OptimConfig::default(),
            model,
        })
    }

    /// Refuses settings that cannot work, naming the key and the range it takes.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |key: &str, why: &str| Err(TrainError::Invalid(format!("{key}: {why}")));
        self.model
            .validate()
            .map_err(|e| TrainError::Invalid(format!("model: {e}")))?;
        let o = &self.optim;
        if !(o.lr > 0.0 && o.lr.is_finite()) {
            return bad("optim.lr", "must be a finite number above 0");
        }
        if !(o.min_lr >= 0.0 && o.min_lr <= o.lr) {
            return bad("optim.min_lr", "must be from 0 to optim.lr");
        }
        for (key, v) in [("optim.beta1", o.beta1), ("optim.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(key, "must be in [0, 1)");
            }
        }
        if !(0.0..=1.0).contains(&o.decay_fraction) {
            return bad("optim.decay_fraction", "must be a share from 0 to 1");
        }
        if !(o.eps > 0.0 && o.eps.is_finite()) {
            return bad("optim.eps", "must be a finite number above 0");
        }
        for (key, v) in [
            ("optim.weight_decay", o.weight_decay),
            ("optim.grad_clip", o.grad_clip),
            ("max_time_s", self.max_time_s),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(key, "must be a finite number, 0 or more");
            }
        }
        if self.seq_len == 0 || self.seq_len > self.model.max_seq_len {
            return bad(
                "seq_len",
                &format!(
                    "must be from 1 to model.max_seq_len ({})",
                    self.model.max_seq_len
                ),
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.grad_accum == 0 {
            return bad("grad_accum", "must be at least 1");
        }
        if self.eval_every > 0 && self.eval_batches == 0 {
            return bad("eval_batches", "must be at least 1 when eval_every is set");
        }
        Ok(())
    }

    /// Legal settings that are surely not what was meant, one sentence each.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.max_steps > 0 && self.optim.warmup_steps >= self.max_steps {
            out.push(format!(
                "optim.warmup_steps ({}) is not below max_steps ({}): the learning rate never \
                 reaches its peak {}",
                self.optim.warmup_steps, self.max_steps, self.optim.lr
            ));
        }
        out
    }

    pub fn tokens_per_step(&self) -> u64 {
        (self.seq_len * self.batch_size * self.grad_accum) as u64
    }
}

impl Default for RunConfig {
    /// The tiny preset for a vocabulary of 1,024 ids.
    fn default() -> Self {
        RunConfig::preset("tiny", 1024).unwrap_or_else(|| unreachable!("tiny is a preset"))
    }
}

/// What stops a run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Collective(#[from] CollectiveError),
    /// The ranks of a data-parallel run disagree (settings, shards, weights).
    #[error("{0}")]
    Distributed(String),
}

impl TrainError {
    /// True when the error is the user's input (settings, shards, a run folder) rather than a
    /// failure of the machine.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, TrainError::Data(_) | TrainError::Invalid(_))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One optimisation step, as written to `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: u64,
    pub tokens_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_loss: Option<f64>,
    /// The step's loss or gradient norm was not finite: no update was made.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub skipped: bool,
    /// Seconds of the step spent all-reducing gradients (data-parallel runs only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub allreduce_s: Option<f64>,
}

impl StepMetrics {
    /// The step as a progress line: loss, validation loss, tokens/s.
    pub fn line(&self) -> String {
        let val = self
            .val_loss
            .map(|v| format!(" val {v:.3}"))
            .unwrap_or_default();
        format!(
            "loss {:.3}{val} {:.0} tok/s{}",
            self.loss,
            self.tokens_per_s,
            if self.skipped { " SKIPPED" } else { "" }
        )
    }
}

/// The state a checkpoint holds besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    /// Steps completed.
    step: u64,
    tokens: u64,
    adam_t: u64,
}

const CHECKPOINT: &str = "checkpoint";
const METRICS: &str = "metrics.jsonl";
const CONFIG: &str = "config.json";

/// A run folder: `config.json` (the run's settings and the shards it read), `metrics.jsonl`,
/// `checkpoint/` (`model.safetensors`, `optimizer.safetensors`, `state.json`) and a copy of the
/// shards' `tokenizer.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunRecord {
    run: RunConfig,
    data: PathBuf,
    tokenizer_hash: String,
    /// Set when the run was extended (or shortened) on resume: from this step the learning
    /// rate decays by a cosine from the rate the run had reached to `min_lr` at the new end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tail: Option<Tail>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Tail {
    from: u64,
    lr: f64,
}

impl RunRecord {
    /// The record of a new run of `cfg` on the shards in `data`.
    fn new(cfg: &RunConfig, data: &Path, manifest: &Manifest) -> RunRecord {
        RunRecord {
            run: cfg.clone(),
            data: data.to_path_buf(),
            tokenizer_hash: manifest.tokenizer_hash.clone(),
            tail: None,
        }
    }

    /// The learning rate of `step` (0-based).
    fn lr_at(&self, step: u64) -> f64 {
        let o = &self.run.optim;
        match self.tail {
            Some(t) if step >= t.from => {
                optim::cosine(t.lr, o.min_lr, step - t.from, self.run.max_steps - t.from)
            }
            _ => optim::lr_at(o, step, self.run.max_steps),
        }
    }
}

/// Trains on the shards in `data` into the run folder `out`, resuming from its checkpoint when
/// `resume` is set. `progress` hears of every step (its number, the tokens so far, and a line
/// with the loss and the rate).
pub fn train(
    data: &Path,
    out: &Path,
    cfg: &RunConfig,
    resume: bool,
    device: &Device,
    progress: &dyn Progress,
) -> Result<Vec<StepMetrics>, TrainError> {
    train_with(
        data,
        out,
        cfg,
        resume,
        device,
        progress,
        &Single,
        &DistOptions::default(),
    )
}

/// [`train`] as one rank of a data-parallel run over `comm`. Every rank starts from rank 0's
/// weights (broadcast, then checked by checksum), computes its `batch_size / world` rows of each
/// micro-batch, and the gradients are summed across ranks in buckets once per step (after
/// accumulation), so clipping and the update see the global gradient and the loss curve is
/// the one process's with the same global batch. Only rank 0 writes the run folder.
#[allow(clippy::too_many_arguments)]
pub fn train_with(
    data: &Path,
    out: &Path,
    cfg: &RunConfig,
    resume: bool,
    device: &Device,
    progress: &dyn Progress,
    comm: &dyn Collective,
    opts: &DistOptions,
) -> Result<Vec<StepMetrics>, TrainError> {
    cfg.validate()?;
    if out.exists() && !out.is_dir() {
        return Err(TrainError::Invalid(format!(
            "{} is a file: the run needs a folder",
            out.display()
        )));
    }
    if !cfg.batch_size.is_multiple_of(comm.world()) {
        return Err(TrainError::Invalid(format!(
            "batch_size: {} sequences do not divide among {} ranks (the global batch is split \
             evenly: give a multiple of {})",
            cfg.batch_size,
            comm.world(),
            comm.world()
        )));
    }
    progress.start("train", Some(cfg.max_steps));
    let result = train_inner(data, out, cfg, resume, device, progress, comm, opts);
    progress.finish();
    result
}

/// FNV-1a over bytes: the fingerprint the ranks compare at start-up.
fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &b in *part {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
    // 0 means "this rank could not start"
    h.max(1)
}

/// Where the run stands after rank 0 set up its folder.
struct Start {
    step: u64,
    tokens: u64,
    adam_t: u64,
}

/// Rank 0's part of starting a run: checks and writes the run folder, loads the checkpoint
/// into `model` and `adam` on resume.
#[allow(clippy::too_many_arguments)]
fn open_run(
    data: &Path,
    out: &Path,
    cfg: &RunConfig,
    resume: bool,
    manifest: &Manifest,
    model: &Model,
    adam: &mut optim::AdamW,
    device: &Device,
) -> Result<(RunRecord, Start), TrainError> {
    std::fs::create_dir_all(out.join(CHECKPOINT)).map_err(io(out))?;
    let mut start = Start {
        step: 0,
        tokens: 0,
        adam_t: 0,
    };
    let mut record = RunRecord::new(cfg, data, manifest);
    let metrics_path = out.join(METRICS);
    if resume {
        if !out.join(CONFIG).exists() {
            return Err(TrainError::Invalid(format!(
                "{} holds no run to resume: start it without --resume",
                out.display()
            )));
        }
        let Some(done) = checkpoint_step(out) else {
            return Err(TrainError::Invalid(format!(
                "{} has no checkpoint yet: start it again without --resume",
                out.display()
            )));
        };
        let saved: RunRecord = read_json(&out.join(CONFIG))?;
        // when to stop may change between sessions (max_steps re-plans the schedule's tail);
        // what to train may not
        let what = |c: &RunConfig| RunConfig {
            max_tokens: 0,
            max_time_s: 0.0,
            max_steps: 0,
            ..c.clone()
        };
        let (a, b) = (json_fields(&what(&saved.run)), json_fields(&what(cfg)));
        let differ: Vec<String> = a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k} was {v}, now {}", b.get(k).cloned().unwrap_or_default()))
            .collect();
        if !differ.is_empty() {
            return Err(TrainError::Invalid(format!(
                "{}: the run was started with other settings ({}); resume with the same ones",
                out.join(CONFIG).display(),
                differ.join(", ")
            )));
        }
        if cfg.max_steps < done {
            return Err(TrainError::Invalid(format!(
                "max_steps: {} is below the {done} steps {} has trained",
                cfg.max_steps,
                out.display()
            )));
        }
        record.tail = saved.tail;
        if cfg.max_steps != saved.run.max_steps {
            // the rate the run has reached, then a fresh decay to the new end
            let now = saved.lr_at(done);
            let plain = optim::lr_at(&cfg.optim, done, cfg.max_steps);
            record.tail = (saved.tail.is_some()
                || (now - plain).abs() > 1e-12 * now.abs().max(1e-30))
            .then_some(Tail {
                from: done,
                lr: now,
            });
            write_json(&out.join(CONFIG), &record)?;
        }
        let state = load_checkpoint(&out.join(CHECKPOINT), model, adam, device)?;
        tracing::info!(
            "train: resuming {} at step {} of {}",
            out.display(),
            state.step,
            cfg.max_steps
        );
        start = Start {
            step: state.step,
            tokens: state.tokens,
            adam_t: state.adam_t,
        };
        truncate_metrics(&metrics_path, start.step)?;
    } else {
        if let Some(done) = checkpoint_step(out).filter(|_| out.join(CONFIG).exists()) {
            return Err(TrainError::Invalid(format!(
                "{} already holds a run ({done} steps): --resume to continue it, or \
                 --overwrite to replace it",
                out.display()
            )));
        }
        write_json(&out.join(CONFIG), &record)?;
        std::fs::write(&metrics_path, "").map_err(io(&metrics_path))?;
        if data.join("tokenizer.json").exists() {
            std::fs::copy(data.join("tokenizer.json"), out.join("tokenizer.json"))
                .map_err(io(&out.join("tokenizer.json")))?;
        }
    }
    Ok((record, start))
}

/// A tensor's elements as f32 on the host.
fn host_f32(t: &Tensor) -> Result<Vec<f32>, TrainError> {
    Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
}

/// `values` as a tensor shaped and placed like `like`.
fn like(values: &[f32], like: &Tensor) -> Result<Tensor, TrainError> {
    Ok(Tensor::from_slice(values, like.shape(), like.device())?.to_dtype(like.dtype())?)
}

/// Rank `root`'s tensors into every rank's, concatenated into one broadcast.
fn broadcast_tensors(
    comm: &dyn Collective,
    tensors: &[Tensor],
    root: usize,
    what: &str,
) -> Result<Vec<Tensor>, TrainError> {
    let mut flat = Vec::with_capacity(tensors.iter().map(Tensor::elem_count).sum());
    for t in tensors {
        if comm.rank() == root {
            flat.extend(host_f32(t)?);
        } else {
            flat.resize(flat.len() + t.elem_count(), 0.0);
        }
    }
    comm.broadcast_f32(&mut flat, root, what)?;
    let mut at = 0;
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        out.push(like(&flat[at..at + t.elem_count()], t)?);
        at += t.elem_count();
    }
    Ok(out)
}

/// Sums the gradients over the ranks in buckets of about `bucket_bytes`.
fn all_reduce_grads(
    comm: &dyn Collective,
    grads: &[Tensor],
    bucket_bytes: usize,
    step: u64,
) -> Result<Vec<Tensor>, TrainError> {
    let cap = (bucket_bytes / 4).max(1);
    let mut out = Vec::with_capacity(grads.len());
    let (mut i, mut bucket) = (0, 0);
    let mut flat = Vec::new();
    while i < grads.len() {
        flat.clear();
        let mut j = i;
        while j < grads.len() && (j == i || flat.len() + grads[j].elem_count() <= cap) {
            flat.extend(host_f32(&grads[j])?);
            j += 1;
        }
        comm.all_reduce_f32(
            &mut flat,
            &format!(
                "the all-reduce of step {}'s gradients (bucket {bucket})",
                step + 1
            ),
        )?;
        let mut at = 0;
        for g in &grads[i..j] {
            out.push(like(&flat[at..at + g.elem_count()], g)?);
            at += g.elem_count();
        }
        i = j;
        bucket += 1;
    }
    Ok(out)
}

/// Checks that every rank holds the same weights (a checksum of their bits, gathered).
fn verify_weights(comm: &dyn Collective, model: &Model, step: u64) -> Result<(), TrainError> {
    if comm.world() == 1 {
        return Ok(());
    }
    let mut h = 0u64;
    for p in &model.params {
        h = dist::checksum(&host_f32(p.var.as_tensor())?, h);
    }
    let sums = comm.all_gather_u64(h, "the weights' checksum")?;
    match sums.iter().position(|&s| s != sums[0]) {
        Some(r) => Err(TrainError::Distributed(format!(
            "after step {step}, rank {r}'s weights differ from rank 0's (checksums {:016x} and \
             {:016x}): the ranks have diverged",
            sums[r], sums[0]
        ))),
        None => Ok(()),
    }
}

/// The full optimiser state on rank 0 (its moments gathered from their owners under ZeRO-1),
/// one parameter at a time: the other ranks hold one parameter's moments at most in passing.
fn gather_moments(
    comm: &dyn Collective,
    adam: &optim::AdamW,
    owner: &[usize],
    params: &[model::Param],
) -> Result<Option<optim::AdamW>, TrainError> {
    if comm.world() == 1 || owner.is_empty() {
        return Ok(None);
    }
    let (mut m, mut v) = (Vec::new(), Vec::new());
    for (i, p) in params.iter().enumerate() {
        let w = p.var.as_tensor();
        let sent = if comm.rank() == owner[i] {
            [adam.m[i].clone(), adam.v[i].clone()]
        } else {
            [w.clone(), w.clone()]
        };
        let got = broadcast_tensors(comm, &sent, owner[i], "the gathering of the moments")?;
        if comm.rank() == 0 {
            let [a, b]: [Tensor; 2] = got
                .try_into()
                .map_err(|_| TrainError::Distributed("a moment went missing".into()))?;
            m.push(a);
            v.push(b);
        }
    }
    Ok((comm.rank() == 0).then_some(optim::AdamW { m, v, t: adam.t }))
}

/// Rank 0's moments (loaded from a checkpoint) to every rank, one parameter at a time; under
/// ZeRO-1 each rank keeps those it owns.
fn scatter_moments(
    comm: &dyn Collective,
    adam: &mut optim::AdamW,
    owner: &[usize],
    params: &[model::Param],
) -> Result<(), TrainError> {
    for (i, p) in params.iter().enumerate() {
        let w = p.var.as_tensor();
        let sent = if comm.rank() == 0 {
            [adam.m[i].clone(), adam.v[i].clone()]
        } else {
            [w.clone(), w.clone()]
        };
        let got = broadcast_tensors(comm, &sent, 0, "the moments' broadcast")?;
        if owner.is_empty() || owner[i] == comm.rank() {
            let [a, b]: [Tensor; 2] = got
                .try_into()
                .map_err(|_| TrainError::Distributed("a moment went missing".into()))?;
            adam.m[i] = a;
            adam.v[i] = b;
        } else if comm.rank() == 0 {
            adam.keep_only(|j| j != i)?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn train_inner(
    data: &Path,
    out: &Path,
    cfg: &RunConfig,
    resume: bool,
    device: &Device,
    progress: &dyn Progress,
    comm: &dyn Collective,
    opts: &DistOptions,
) -> Result<Vec<StepMetrics>, TrainError> {
    let (rank, world) = (comm.rank(), comm.world());
    let lead = rank == 0;
    let window = cfg.seq_len + 1;
    // every rank opens its data; then they compare what they were started with, so that a
    // rank with other settings or other shards is refused before anything is written
    let opened = (|| -> Result<_, TrainError> {
        let manifest = Manifest::read(data).map_err(DataError::from)?;
        if manifest.vocab_size != cfg.model.vocab_size {
            return Err(TrainError::Invalid(format!(
                "the shards' vocabulary is {} ids, the model's {}",
                manifest.vocab_size, cfg.model.vocab_size
            )));
        }
        let train_data = Loader::open(data, Split::Train, window)?;
        let val_data = Loader::open(data, Split::Val, window).ok();
        Ok((manifest, train_data, val_data))
    })();
    let mine = match &opened {
        Ok((manifest, _, val)) => fingerprint(&[
            serde_json::to_string(cfg).unwrap_or_default().as_bytes(),
            serde_json::to_string(manifest)
                .unwrap_or_default()
                .as_bytes(),
            // a rank without validation windows would skip the evaluations' collectives
            &[
                u8::from(resume),
                u8::from(opts.zero1),
                u8::from(val.is_some()),
            ],
            &(opts.bucket_bytes as u64).to_le_bytes(),
            &opts.verify_every.to_le_bytes(),
        ]),
        Err(_) => 0,
    };
    let prints = comm.all_gather_u64(mine, "the start-up check of settings and shards")?;
    let (manifest, train_data, val_data) = opened?;
    if let Some(r) = prints.iter().position(|&p| p == 0) {
        return Err(TrainError::Invalid(format!(
            "rank {r} could not open the shards or settings (its own error says why)"
        )));
    }
    if let Some(r) = prints.iter().position(|&p| p != prints[0]) {
        return Err(TrainError::Invalid(format!(
            "rank {r} was started with other settings or other shards than rank 0 (every rank \
             needs the same command line, --config and shard folder): refused"
        )));
    }

    let mut model = Model::new(&cfg.model, cfg.init, cfg.seed, device)?;
    model.precision = cfg.precision;
    let mut adam = optim::AdamW::new(&model.params)?;
    let owner: Vec<usize> = if opts.zero1 && world > 1 {
        let sizes: Vec<usize> = model.params.iter().map(|p| p.var.elem_count()).collect();
        dist::owners(&sizes, world)
    } else {
        Vec::new()
    };
    if !lead && !owner.is_empty() {
        // rank 0 loads the whole checkpoint; the others never hold moments they do not own
        adam.keep_only(|i| owner[i] == rank)?;
    }
    let setup = if lead {
        Some(open_run(
            data, out, cfg, resume, &manifest, &model, &mut adam, device,
        ))
    } else {
        None
    };
    let ok = u64::from(!matches!(setup, Some(Err(_))));
    let oks = comm.all_gather_u64(ok, "the start of the run")?;
    let (record, start) = match setup {
        Some(result) => result?,
        None if oks[0] == 0 => {
            return Err(TrainError::Invalid(
                "rank 0 could not open the run folder (its own error says why)".into(),
            ));
        }
        None => (
            RunRecord::new(cfg, data, &manifest),
            Start {
                step: 0,
                tokens: 0,
                adam_t: 0,
            },
        ),
    };
    let mut record = record;
    let (mut step, mut tokens) = (start.step, start.tokens);
    adam.t = start.adam_t;
    if world > 1 {
        // where rank 0 stands (a resumed run's step and schedule), then its weights and moments
        let state = [
            comm.all_gather_u64(step, "the start step")?[0],
            comm.all_gather_u64(tokens, "the start tokens")?[0],
            comm.all_gather_u64(adam.t, "the optimiser's step")?[0],
        ];
        (step, tokens, adam.t) = (state[0], state[1], state[2]);
        let tail = comm.all_gather_u64(
            record.tail.map_or(u64::MAX, |t| t.from),
            "the schedule's tail",
        )?[0];
        let mut tail_lr = [if lead {
            record.tail.map_or(0.0, |t| t.lr)
        } else {
            0.0
        }];
        comm.all_reduce_f64(&mut tail_lr, "the schedule's tail")?;
        record.tail = (tail != u64::MAX).then_some(Tail {
            from: tail,
            lr: tail_lr[0],
        });
        let weights: Vec<Tensor> = model
            .params
            .iter()
            .map(|p| p.var.as_tensor().clone())
            .collect();
        for (p, w) in model.params.iter().zip(broadcast_tensors(
            comm,
            &weights,
            0,
            "the weights' broadcast",
        )?) {
            p.var.set(&w)?;
        }
        if resume {
            scatter_moments(comm, &mut adam, &owner, &model.params)?;
        } else if !owner.is_empty() {
            adam.keep_only(|i| owner[i] == rank)?;
        }
        verify_weights(comm, &model, step)?;
    }
    let metrics_path = out.join(METRICS);
    let mut metrics_file = if lead {
        Some(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&metrics_path)
                .map_err(io(&metrics_path))?,
        )
    } else {
        None
    };
    let save = |model: &Model, adam: &optim::AdamW, step: u64, tokens: u64| {
        let full = gather_moments(comm, adam, &owner, &model.params)?;
        if lead {
            save_checkpoint(
                &out.join(CHECKPOINT),
                model,
                full.as_ref().unwrap_or(adam),
                step,
                tokens,
            )?;
        }
        Ok::<(), TrainError>(())
    };

    let began = Instant::now();
    let rows = cfg.batch_size / world;
    let mine = rank * rows..(rank + 1) * rows;
    let mut history = Vec::new();
    while step < cfg.max_steps {
        if cfg.max_tokens > 0 && tokens >= cfg.max_tokens {
            break;
        }
        let t0 = Instant::now();
        let lr = record.lr_at(step);
        let mut grads: Option<Vec<Tensor>> = None;
        let mut loss_sum = 0f64;
        for micro in 0..cfg.grad_accum {
            let k = step * cfg.grad_accum as u64 + micro as u64;
            let (x, y) = train_data.batch_rows(cfg.seed, k, cfg.batch_size, mine.clone())?;
            let (loss, these) = loss_and_grads(&model, &x, &y, rows, device)?;
            loss_sum += loss;
            grads = Some(match grads {
                None => these,
                Some(acc) => acc
                    .iter()
                    .zip(&these)
                    .map(|(a, b)| a + b)
                    .collect::<Result<_, _>>()?,
            });
        }
        // the gradients summed over micro-batches and ranks: their mean is the sum over
        // grad_accum x world (every rank's rows are as many)
        let mut grads = grads.unwrap_or_default();
        let out_of_time = cfg.max_time_s > 0.0 && began.elapsed().as_secs_f64() >= cfg.max_time_s;
        let mut stop = u8::from(out_of_time || progress.cancelled());
        let mut allreduce_s = None;
        if world > 1 {
            let t = Instant::now();
            grads = all_reduce_grads(comm, &grads, opts.bucket_bytes, step)?;
            // the loss, and whether any rank has to stop (out of time, or a signal)
            let mut shared = [loss_sum, f64::from(stop)];
            comm.all_reduce_f64(&mut shared, "the all-reduce of the loss")?;
            loss_sum = shared[0];
            stop = u8::from(shared[1] > 0.0);
            allreduce_s = Some(t.elapsed().as_secs_f64());
        }
        let mean = 1.0 / (cfg.grad_accum * world) as f64;
        let loss = loss_sum * mean;
        let norm = optim::global_norm(&grads)? * mean;
        let skipped = !loss.is_finite() || !norm.is_finite();
        if !skipped {
            let clip = if cfg.optim.grad_clip > 0.0 && norm > cfg.optim.grad_clip {
                cfg.optim.grad_clip / norm
            } else {
                1.0
            };
            adam.step(&cfg.optim, lr, &model.params, &grads, mean * clip)?;
            if !owner.is_empty() {
                // each rank updated the parameters it owns: they go to the others
                for r in 0..world {
                    let theirs: Vec<usize> = (0..owner.len()).filter(|&i| owner[i] == r).collect();
                    let sent: Vec<Tensor> = theirs
                        .iter()
                        .map(|&i| model.params[i].var.as_tensor().clone())
                        .collect();
                    let got = broadcast_tensors(comm, &sent, r, "the updated weights' broadcast")?;
                    if r != rank {
                        for (&i, w) in theirs.iter().zip(got) {
                            model.params[i].var.set(&w)?;
                        }
                    }
                }
            }
        }
        step += 1;
        tokens += cfg.tokens_per_step();
        if world > 1 && opts.verify_every > 0 && step.is_multiple_of(opts.verify_every) {
            verify_weights(comm, &model, step)?;
        }
        let seconds = t0.elapsed().as_secs_f64();
        let val_loss = match &val_data {
            Some(v)
                if cfg.eval_every > 0
                    && (step.is_multiple_of(cfg.eval_every) || step == cfg.max_steps) =>
            {
                Some(evaluate(&model, v, cfg, device, comm)?)
            }
            _ => None,
        };
        let m = StepMetrics {
            step,
            loss,
            lr,
            grad_norm: norm,
            tokens,
            tokens_per_s: cfg.tokens_per_step() as f64 / seconds.max(1e-9),
            val_loss,
            skipped,
            allreduce_s,
        };
        if let Some(file) = metrics_file.as_mut() {
            let line = serde_json::to_string(&m).unwrap_or_default();
            writeln!(file, "{line}").map_err(io(&metrics_path))?;
        }
        progress.update(m.step, m.tokens);
        progress.message(&m.line());
        history.push(m);
        // out of time or cancelled: every rank agrees (the flag went with the loss), and the
        // checkpoint after the loop keeps every finished step
        let stopping = if world > 1 {
            stop > 0
        } else {
            (cfg.max_time_s > 0.0 && began.elapsed().as_secs_f64() >= cfg.max_time_s)
                || progress.cancelled()
        };
        if cfg.checkpoint_every > 0 && step.is_multiple_of(cfg.checkpoint_every) && !stopping {
            save(&model, &adam, step, tokens)?;
            if world > 1 {
                verify_weights(comm, &model, step)?;
            }
            tracing::info!("train: checkpoint at step {step}");
        }
        if stopping {
            break;
        }
    }
    if let Some(file) = metrics_file.as_mut() {
        file.flush().map_err(io(&metrics_path))?;
    }
    save(&model, &adam, step, tokens)?;
    // no rank leaves (and, stopped by a signal, exits) before rank 0 has written the checkpoint
    comm.barrier("the end of the run")?;
    Ok(history)
}

/// Tokens a shard of a batch holds at least (rows of `seq_len` tokens; a batch with fewer is
/// one shard). Large enough that a shard's matrix products run near the kernels' peak, small
/// enough that a batch of 8 x 256 tokens keeps two threads busy.
const SHARD_TOKENS: usize = 1024;

/// The shards of `rows` rows of `t` tokens: consecutive row ranges of a size that depends on
/// the batch alone, never on the number of threads, so that a run's gradients (summed over
/// the shards in a fixed order) are the same bits on any number of threads. Off the CPU a batch
/// is one shard.
fn shards(rows: usize, t: usize, device: &Device) -> Vec<std::ops::Range<usize>> {
    let per = if device.is_cpu() {
        SHARD_TOKENS.div_ceil(t.max(1)).clamp(1, rows.max(1))
    } else {
        rows.max(1)
    };
    (0..rows)
        .step_by(per)
        .map(|a| a..(a + per).min(rows))
        .collect()
}

/// One shard's inputs and targets as ids tensors, and its share of the batch's rows.
fn shard_tensors(
    x: &[u32],
    y: &[u32],
    rows: usize,
    r: &std::ops::Range<usize>,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor, f64)> {
    let t = x.len() / rows.max(1);
    let n = r.len();
    let xs = model::ids_tensor(&x[r.start * t..r.end * t], n, device)?;
    let ys = model::ids_tensor(&y[r.start * t..r.end * t], n, device)?;
    Ok((xs, ys, n as f64 / rows as f64))
}

/// The mean loss of a batch of `rows` rows (inputs `x`, targets `y`) and its gradients, one
/// per parameter.
///
/// The batch is cut into [`shards`], each shard's forward and backward pass a task of the
/// thread pool: a pass over a whole batch hands every operation to all threads and waits for
/// them, which cost a quarter of a step on two threads; shards keep each thread on its own
/// rows, as ranks do, sharing nothing but the weights. Each shard's loss is weighted by its
/// share of the rows, so that the sum of the shards' gradients is the batch's. The sums are
/// taken over a fixed binary tree of the shards (halves of the list, whatever thread takes
/// them), so the result does not depend on the number of threads, and a pair of halves is
/// added as soon as both are done: a thread holds the gradients of a few shards at a time,
/// not of the whole batch.
fn loss_and_grads(
    model: &Model,
    x: &[u32],
    y: &[u32],
    rows: usize,
    device: &Device,
) -> Result<(f64, Vec<Tensor>), TrainError> {
    let t = x.len() / rows.max(1);
    let parts = shards(rows, t, device);
    let one = |r: &std::ops::Range<usize>| -> candle_core::Result<(f64, Vec<Tensor>)> {
        let (xs, ys, share) = shard_tensors(x, y, rows, r, device)?;
        let loss = (model.loss(&xs, &ys)? * share)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        let store = loss.backward()?;
        let grads = model
            .params
            .iter()
            .map(|p| match store.get(p.var.as_tensor()) {
                Some(g) => Ok(g.clone()),
                None => p.var.as_tensor().zeros_like(),
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok((value, grads))
    };
    if parts.is_empty() {
        return Err(TrainError::Invalid("a batch of no rows".into()));
    }
    Ok(sum_tree(&parts, &one)?)
}

/// `f`'s losses and gradients summed over `parts`: the two halves in parallel, then added.
fn sum_tree(
    parts: &[std::ops::Range<usize>],
    f: &(impl Fn(&std::ops::Range<usize>) -> candle_core::Result<(f64, Vec<Tensor>)> + Sync),
) -> candle_core::Result<(f64, Vec<Tensor>)> {
    use rayon::prelude::*;
    if parts.len() <= 1 {
        return match parts.first() {
            Some(r) => f(r),
            None => candle_core::bail!("no shards to sum"),
        };
    }
    let (left, right) = parts.split_at(parts.len() / 2);
    let (a, b) = rayon::join(|| sum_tree(left, f), || sum_tree(right, f));
    let ((la, ga), (lb, gb)) = (a?, b?);
    let grads = ga
        .par_iter()
        .zip(&gb)
        .map(|(a, b)| a + b)
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok((la + lb, grads))
}

/// Mean loss over the fixed validation batches (each rank its rows of every batch).
fn evaluate(
    model: &Model,
    val: &Loader,
    cfg: &RunConfig,
    device: &Device,
    comm: &dyn Collective,
) -> Result<f64, TrainError> {
    use rayon::prelude::*;
    let mut sum = [0f64];
    let batches = cfg.eval_batches.max(1);
    let rows = cfg.batch_size / comm.world();
    let mine = comm.rank() * rows..(comm.rank() + 1) * rows;
    for k in 0..batches {
        let (x, y) = val.batch_rows(cfg.seed ^ 0x7a1d, k as u64, cfg.batch_size, mine.clone())?;
        // the shards of the batch in parallel, their weighted losses added in order
        let parts = shards(rows, x.len() / rows.max(1), device);
        let losses = parts
            .par_iter()
            .map(|r| -> candle_core::Result<f64> {
                let (xs, ys, share) = shard_tensors(&x, &y, rows, r, device)?;
                Ok(share * f64::from(model.loss(&xs, &ys)?.detach().to_scalar::<f32>()?))
            })
            .collect::<candle_core::Result<Vec<f64>>>()?;
        sum[0] += losses.iter().sum::<f64>();
    }
    comm.all_reduce_f64(&mut sum, "the validation loss")?;
    Ok(sum[0] / (batches * comm.world()) as f64)
}

/// A configuration's fields as dotted names and JSON values (`optim.lr`: `0.0006`).
fn json_fields(cfg: &RunConfig) -> std::collections::BTreeMap<String, serde_json::Value> {
    fn walk(
        prefix: &str,
        v: &serde_json::Value,
        out: &mut std::collections::BTreeMap<String, serde_json::Value>,
    ) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&name, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk("", &serde_json::to_value(cfg).unwrap_or_default(), &mut out);
    out
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
}

/// Gives files in `dir` the mode a newly created file gets there (0644 under the usual umask):
/// the safetensors writer creates its files readable by their owner only.
fn shareable(dir: &Path, names: &[&str]) -> Result<(), TrainError> {
    let probe = dir.join(".mode");
    let mode = std::fs::File::create(&probe)
        .and_then(|f| f.metadata())
        .map_err(io(&probe))?
        .permissions();
    let _ = std::fs::remove_file(&probe);
    for name in names {
        let path = dir.join(name);
        std::fs::set_permissions(&path, mode.clone()).map_err(io(&path))?;
    }
    Ok(())
}

/// Writes the checkpoint into a fresh folder and renames it over the old one, so a crash
/// leaves either the old checkpoint or the new one.
fn save_checkpoint(
    dir: &Path,
    model: &Model,
    adam: &optim::AdamW,
    step: u64,
    tokens: u64,
) -> Result<(), TrainError> {
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    candle_core::safetensors::save(&model.tensors(), tmp.join("model.safetensors"))?;
    let mut opt: HashMap<String, Tensor> = HashMap::new();
    for (i, p) in model.params.iter().enumerate() {
        opt.insert(format!("{}.m", p.name), adam.m[i].clone());
        opt.insert(format!("{}.v", p.name), adam.v[i].clone());
    }
    candle_core::safetensors::save(&opt, tmp.join("optimizer.safetensors"))?;
    shareable(&tmp, &["model.safetensors", "optimizer.safetensors"])?;
    write_json(
        &tmp.join("state.json"),
        &State {
            step,
            tokens,
            adam_t: adam.t,
        },
    )?;
    let old = dir.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn load_checkpoint(
    dir: &Path,
    model: &Model,
    adam: &mut optim::AdamW,
    device: &Device,
) -> Result<State, TrainError> {
    // a crash between the two renames leaves the previous checkpoint as `.old`
    let dir = if dir.join("state.json").exists() {
        dir.to_path_buf()
    } else {
        dir.with_extension("old")
    };
    let state: State = read_json(&dir.join("state.json"))?;
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), device)?;
    let opt = candle_core::safetensors::load(dir.join("optimizer.safetensors"), device)?;
    for (i, p) in model.params.iter().enumerate() {
        let missing = |what: &str| {
            TrainError::Invalid(format!("{}: no {what} for {}", dir.display(), p.name))
        };
        let w = weights.get(&p.name).ok_or_else(|| missing("weights"))?;
        if w.dims() != p.var.as_tensor().dims() {
            return Err(TrainError::Invalid(format!(
                "{}: {} has shape {:?}, the model {:?}",
                dir.display(),
                p.name,
                w.dims(),
                p.var.as_tensor().dims()
            )));
        }
        p.var.set(&w.to_dtype(DType::F32)?)?;
        adam.m[i] = opt
            .get(&format!("{}.m", p.name))
            .ok_or_else(|| missing("moments"))?
            .clone();
        adam.v[i] = opt
            .get(&format!("{}.v", p.name))
            .ok_or_else(|| missing("moments"))?
            .clone();
    }
    Ok(state)
}

/// Keeps the metrics of the steps a checkpoint holds (a killed run may have logged more).
fn truncate_metrics(path: &Path, steps: u64) -> Result<(), TrainError> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<StepMetrics>(l).is_ok_and(|m| m.step <= steps))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(path, kept).map_err(io(path))
}

/// The file that marks a folder as one `export_hf` wrote (so another export may replace it).
const EXPORT_MARK: &str = "zhcorpus-export.json";

/// Refuses an export folder that would overwrite the run (the run folder, its checkpoint, a
/// folder around it) or other files: it must be new, empty, or an earlier export.
fn check_export_folder(run: &Path, out: &Path) -> Result<(), TrainError> {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (run_abs, out_abs) = (abs(run), abs(out));
    if out_abs.starts_with(&run_abs) || run_abs.starts_with(&out_abs) {
        return Err(TrainError::Invalid(format!(
            "{} is inside the run {} (or holds it): export to a folder of its own",
            out.display(),
            run.display()
        )));
    }
    if out.exists() && !out.is_dir() {
        return Err(TrainError::Invalid(format!(
            "{} is a file: export to a folder",
            out.display()
        )));
    }
    let earlier_export = out.join(EXPORT_MARK).exists();
    let empty = std::fs::read_dir(out).map_or(true, |mut d| d.next().is_none());
    if !empty && !earlier_export {
        return Err(TrainError::Invalid(format!(
            "{} holds other files: export to a new or empty folder (or one an earlier export \
             wrote)",
            out.display()
        )));
    }
    Ok(())
}

/// The record of a run folder that holds a checkpoint; errors name the folder the user gave.
fn run_record(run: &Path) -> Result<RunRecord, TrainError> {
    if !run.exists() {
        return Err(TrainError::Invalid(format!(
            "{} does not exist",
            run.display()
        )));
    }
    if !run.join(CONFIG).exists() {
        return Err(TrainError::Invalid(format!(
            "{} is not a run folder of `zhcorpus train` (it has no {CONFIG})",
            run.display()
        )));
    }
    if checkpoint_step(run).is_none() {
        return Err(TrainError::Invalid(format!(
            "{} has no checkpoint yet: train it first (or resume it with --resume)",
            run.display()
        )));
    }
    read_json(&run.join(CONFIG))
}

/// The steps the run folder's checkpoint holds (`None` when it has no checkpoint yet).
pub fn checkpoint_step(run: &Path) -> Option<u64> {
    let ckpt = run.join(CHECKPOINT);
    [ckpt.clone(), ckpt.with_extension("old")]
        .iter()
        .find_map(|dir| read_json::<State>(&dir.join("state.json")).ok())
        .map(|s| s.step)
}

/// The settings a run folder was started with.
pub fn saved_config(run: &Path) -> Result<RunConfig, TrainError> {
    Ok(read_json::<RunRecord>(&run.join(CONFIG))?.run)
}

/// A trained model loaded from a run folder's checkpoint.
pub fn load_run(run: &Path, device: &Device) -> Result<Model, TrainError> {
    let record = run_record(run)?;
    let model = Model::new(&record.run.model, record.run.init, record.run.seed, device)?;
    let mut adam = optim::AdamW::new(&model.params)?;
    load_checkpoint(&run.join(CHECKPOINT), &model, &mut adam, device)?;
    Ok(model)
}

/// Continues `prompt` by up to `n` tokens: temperature sampling from the top `top_k` (all
/// tokens when 0, as Hugging Face's `top_k=0`; greedy at temperature 0), seeded; generation
/// ends before the `stop` token if it is drawn. Keys and values are cached, so each token costs
/// one position's forward pass; past the model's longest context, the last positions are
/// read again as a fresh window. `each` hears of every token as it is drawn.
#[allow(clippy::too_many_arguments)]
pub fn sample(
    model: &Model,
    prompt: &[u32],
    n: usize,
    temperature: f64,
    top_k: usize,
    seed: u64,
    stop: Option<u32>,
    mut each: impl FnMut(u32),
) -> Result<Vec<u32>, TrainError> {
    if !(temperature >= 0.0 && temperature.is_finite()) {
        return Err(TrainError::Invalid(format!(
            "temperature: must be a finite number, 0 or more, not {temperature}"
        )));
    }
    if prompt.is_empty() {
        return Err(TrainError::Invalid(
            "the prompt needs at least one token".into(),
        ));
    }
    let max = model.cfg.max_seq_len;
    let mut rng = model::Rng::new(seed);
    let mut ids = prompt.to_vec();
    let mut cache = model::KvCache::default();
    let mut pending: Vec<u32> = ids[ids.len().saturating_sub(max)..].to_vec();
    for _ in 0..n {
        if cache.len() + pending.len() > max {
            // the window slides: read its last max - 1 positions afresh
            cache = model::KvCache::default();
            pending = ids[ids.len() - max.saturating_sub(1).max(1)..].to_vec();
        }
        let last: Vec<f32> = model.forward_cached(&pending, &mut cache)?.to_vec1()?;
        let mut order: Vec<usize> = (0..last.len()).collect();
        order.sort_by(|&a, &b| last[b].total_cmp(&last[a]));
        let next = if temperature <= 0.0 {
            order[0]
        } else {
            let k = if top_k == 0 {
                order.len()
            } else {
                top_k.min(order.len())
            };
            let top = &order[..k];
            let best = last[top[0]] as f64;
            let weights: Vec<f64> = top
                .iter()
                .map(|&i| ((last[i] as f64 - best) / temperature).exp())
                .collect();
            let total: f64 = weights.iter().sum();
            let mut r = rng.uniform() * total;
            let mut pick = top[k - 1];
            for (w, &i) in weights.iter().zip(top) {
                if r < *w {
                    pick = i;
                    break;
                }
                r -= w;
            }
            pick
        };
        if stop == Some(next as u32) {
            break;
        }
        ids.push(next as u32);
        each(next as u32);
        pending = vec![next as u32];
    }
    Ok(ids[prompt.len()..].to_vec())
}

/// Writes a Hugging Face model folder for a run: `config.json` (LlamaForCausalLM),
/// `model.safetensors` (the checkpoint's weights, already under HF Llama's names),
/// `generation_config.json`, and the run's `tokenizer.json` with a `tokenizer_config.json`, so
/// that `transformers`' Auto classes load it. `end_of_text` is the tokenizer's `<|endoftext|>`
/// id (beginning and end of sequence).
pub fn export_hf(run: &Path, out: &Path, end_of_text: u32) -> Result<(), TrainError> {
    let record = run_record(run)?;
    let m = &record.run.model;
    check_export_folder(run, out)?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let ckpt = run.join(CHECKPOINT);
    let dir = if ckpt.join("state.json").exists() {
        ckpt
    } else {
        ckpt.with_extension("old")
    };
    let from = dir.join("model.safetensors");
    std::fs::copy(&from, out.join("model.safetensors")).map_err(io(&from))?;
    shareable(out, &["model.safetensors"])?;
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": m.vocab_size,
        "hidden_size": m.d_model,
        "intermediate_size": m.d_ff,
        "num_hidden_layers": m.n_layer,
        "num_attention_heads": m.n_head,
        "num_key_value_heads": m.n_head,
        "head_dim": m.head_dim(),
        "hidden_act": "silu",
        "max_position_embeddings": m.max_seq_len,
        "rms_norm_eps": m.norm_eps,
        "rope_theta": m.rope_theta,
        "tie_word_embeddings": m.tied_embeddings,
        "attention_bias": false,
        "mlp_bias": false,
        "bos_token_id": end_of_text,
        "eos_token_id": end_of_text,
        "torch_dtype": "float32",
    });
    write_json(&out.join("config.json"), &config)?;
    write_json(
        &out.join("generation_config.json"),
        &serde_json::json!({"bos_token_id": end_of_text, "eos_token_id": end_of_text}),
    )?;
    let tok = run.join("tokenizer.json");
    if tok.exists() {
        std::fs::copy(&tok, out.join("tokenizer.json")).map_err(io(&tok))?;
        write_json(
            &out.join("tokenizer_config.json"),
            &serde_json::json!({
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<|endoftext|>",
                "eos_token": "<|endoftext|>",
                "model_max_length": m.max_seq_len,
            }),
        )?;
    }
    // a byte-level run has no tokenizer: none of an earlier export's may stay
    if !run.join("tokenizer.json").exists() {
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            let _ = std::fs::remove_file(out.join(name));
        }
    }
    write_json(
        &out.join(EXPORT_MARK),
        &serde_json::json!({ "run": run, "written_by": "zhcorpus hf-export" }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two ranks as seen from rank 0, the other holding weights whose checksum is `theirs`
    /// (`None`: the same as ours).
    struct Twin {
        theirs: Option<u64>,
    }

    impl Collective for Twin {
        fn rank(&self) -> usize {
            0
        }
        fn world(&self) -> usize {
            2
        }
        fn all_reduce_f32(&self, _: &mut [f32], _: &str) -> Result<(), CollectiveError> {
            Ok(())
        }
        fn all_reduce_f64(&self, _: &mut [f64], _: &str) -> Result<(), CollectiveError> {
            Ok(())
        }
        fn broadcast_f32(&self, _: &mut [f32], _: usize, _: &str) -> Result<(), CollectiveError> {
            Ok(())
        }
        fn all_gather_u64(&self, value: u64, _: &str) -> Result<Vec<u64>, CollectiveError> {
            Ok(vec![value, self.theirs.unwrap_or(value)])
        }
        fn barrier(&self, _: &str) -> Result<(), CollectiveError> {
            Ok(())
        }
        fn abort(&self, status: i32) -> ! {
            panic!("abort {status}")
        }
    }

    #[test]
    fn shards_depend_on_the_batch_alone_and_their_gradients_sum_to_the_batchs() {
        // 1,024 tokens a shard at least: rows of 256 go four to a shard, rows of 2,048 alone
        assert_eq!(shards(8, 256, &Device::Cpu), vec![0..4, 4..8]);
        assert_eq!(shards(6, 256, &Device::Cpu), vec![0..4, 4..6]);
        assert_eq!(shards(3, 2048, &Device::Cpu), vec![0..1, 1..2, 2..3]);
        assert_eq!(shards(2, 16, &Device::Cpu), vec![0..2]);
        assert!(shards(0, 16, &Device::Cpu).is_empty());

        let mut cfg = ModelConfig::preset("tiny", 64).unwrap();
        cfg.max_seq_len = 512;
        let model = Model::new(&cfg, InitScheme::Gpt2, 7, &Device::Cpu).unwrap();
        // five rows of 512 tokens: shards of two, two and one rows (three, so that the order of
        // the sums matters), the last weighted half as much
        let (rows, t) = (5, 512);
        let mut rng = model::Rng::new(11);
        let ids: Vec<u32> = (0..rows * (t + 1)).map(|_| rng.below(64) as u32).collect();
        let (x, y): (Vec<u32>, Vec<u32>) = ids
            .chunks(t + 1)
            .flat_map(|w| w[..t].iter().copied().zip(w[1..].iter().copied()))
            .unzip();
        assert_eq!(shards(rows, t, &Device::Cpu), vec![0..2, 2..4, 4..5]);
        let pool = |n: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let (loss, grads) = pool(2)
            .install(|| loss_and_grads(&model, &x, &y, rows, &Device::Cpu))
            .unwrap();
        // the same bits on one thread as on two
        let (loss1, grads1) = pool(1)
            .install(|| loss_and_grads(&model, &x, &y, rows, &Device::Cpu))
            .unwrap();
        assert_eq!(loss.to_bits(), loss1.to_bits());
        for (a, b) in grads.iter().zip(&grads1) {
            assert_eq!(host_f32(a).unwrap(), host_f32(b).unwrap());
        }
        // the whole batch in one pass, through candle's backward
        let whole = model
            .loss(
                &model::ids_tensor(&x, rows, &Device::Cpu).unwrap(),
                &model::ids_tensor(&y, rows, &Device::Cpu).unwrap(),
            )
            .unwrap();
        let store = whole.backward().unwrap();
        let whole_loss = f64::from(whole.to_scalar::<f32>().unwrap());
        assert!(
            (loss - whole_loss).abs() < 1e-5,
            "{loss} against {whole_loss}"
        );
        for (p, g) in model.params.iter().zip(&grads) {
            let want = host_f32(store.get(p.var.as_tensor()).unwrap()).unwrap();
            let got = host_f32(g).unwrap();
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "{}", p.name);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-4 * scale, "{}: {a} against {b}", p.name);
            }
        }
    }

    #[test]
    fn diverged_weights_are_named() {
        let cfg = RunConfig::default();
        let model = Model::new(&cfg.model, cfg.init, cfg.seed, &Device::Cpu).unwrap();
        verify_weights(&Twin { theirs: None }, &model, 3).unwrap();
        let err = verify_weights(&Twin { theirs: Some(42) }, &model, 3).unwrap_err();
        assert!(
            err.to_string()
                .contains("after step 3, rank 1's weights differ from rank 0's"),
            "{err}"
        );
        // one bit of one weight changes the checksum
        let mut h = 0u64;
        for p in &model.params {
            h = dist::checksum(&host_f32(p.var.as_tensor()).unwrap(), h);
        }
        let w = model.params[1].var.as_tensor();
        let mut bits = host_f32(w).unwrap();
        bits[0] = f32::from_bits(bits[0].to_bits() ^ 1);
        model.params[1].var.set(&like(&bits, w).unwrap()).unwrap();
        let err = verify_weights(&Twin { theirs: Some(h) }, &model, 4).unwrap_err();
        assert!(err.to_string().contains("rank 1's weights differ"), "{err}");
    }
}
