//! A Llama-style decoder (RMSNorm, rotary position embeddings, SwiGLU, tied or untied
//! embeddings).
//!
//! candle's fused `softmax_last_dim`, `rms_norm` and `layer_norm` and its `RmsNorm`/`LayerNorm`
//! modules drop gradients on contiguous input (candle issues #2168, #3011, #3569, #3752), so
//! normalisation, softmax, rotary embeddings and the loss come from [`crate::ops`]: kernels
//! with their own backward pass on the CPU, differentiable compositions elsewhere. A test checks
//! that one backward pass reaches every parameter with a finite, non-zero gradient and agrees
//! with finite differences.
//!
//! Parameters carry Hugging Face Llama names (`model.layers.0.self_attn.q_proj.weight`, ...), so
//! a checkpoint's weights are an HF model's weights.

use candle_core::{DType, Device, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::ops;

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::tiny()
    }
}

/// The shape of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// Hidden size of the SwiGLU feed-forward layer.
    pub d_ff: usize,
    /// Longest sequence (rotary tables are computed this far).
    pub max_seq_len: usize,
    /// The output projection is the embedding matrix (GPT-2, small Llamas).
    pub tied_embeddings: bool,
    pub rope_theta: f64,
    pub norm_eps: f64,
}

impl ModelConfig {
    /// A named preset for a vocabulary: `tiny` (the CPU test model), `small`, `124m` (GPT-2
    /// small's width and depth).
    pub fn preset(name: &str, vocab_size: usize) -> Option<ModelConfig> {
        let (d_model, n_layer, n_head, max_seq_len) = match name {
            "tiny" => (64, 2, 4, 256),
            "small" => (256, 4, 4, 512),
            "124m" => (768, 12, 12, 1024),
            _ => return None,
        };
        Some(ModelConfig {
            vocab_size,
            d_model,
            n_layer,
            n_head,
            // SwiGLU's 8/3 x d_model, rounded up to a multiple of 32 (Llama)
            d_ff: (8 * d_model / 3).div_ceil(32) * 32,
            max_seq_len,
            tied_embeddings: true,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
        })
    }

    /// The tiny preset for a vocabulary of 1,024 ids (what a settings file is read over).
    fn tiny() -> ModelConfig {
        ModelConfig::preset("tiny", 1024).unwrap_or_else(|| unreachable!("tiny is a preset"))
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Parameters in all (the tied output projection counted once).
    pub fn parameters(&self) -> usize {
        let per_layer =
            4 * self.d_model * self.d_model + 3 * self.d_model * self.d_ff + 2 * self.d_model;
        let embed = self.vocab_size * self.d_model;
        let head = if self.tied_embeddings { 0 } else { embed };
        embed + head + self.n_layer * per_layer + self.d_model
    }

    /// Training FLOPs per token at sequence length `t`: 6N for the weights plus 12·L·T·d for
    /// attention (PaLM's appendix B, as nanoGPT and llm.c count MFU).
    pub fn flops_per_token(&self, t: usize) -> f64 {
        let n = (self.parameters() - self.vocab_size * self.d_model) as f64;
        6.0 * n + 12.0 * (self.n_layer * t * self.d_model) as f64
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.d_model == 0 || self.n_head == 0 || !self.d_model.is_multiple_of(self.n_head) {
            return Err(format!(
                "d_model ({}) must be a positive multiple of n_head ({})",
                self.d_model, self.n_head
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err("the head dimension must be even for rotary embeddings".into());
        }
        if self.vocab_size == 0 || self.n_layer == 0 || self.d_ff == 0 || self.max_seq_len == 0 {
            return Err("vocab_size, n_layer, d_ff and max_seq_len must be positive".into());
        }
        for (key, v) in [("norm_eps", self.norm_eps), ("rope_theta", self.rope_theta)] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!("{key} must be a finite number above 0, not {v}"));
            }
        }
        Ok(())
    }
}

/// A deterministic normal generator (splitmix64 and Box-Muller), so that the same seed gives
/// the same initial weights on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Uniform below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// How weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InitScheme {
    /// N(0, 0.02), residual output projections scaled by 1/sqrt(2·n_layer) (GPT-2).
    #[default]
    Gpt2,
    /// DeepNet-style: residual output projections scaled by (8·n_layer)^(-1/4).
    Deepnet,
}

/// The type the forward pass computes in. Weights, their gradients and the optimiser's state
/// stay f32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bf16 matrix products and their activations; the residual stream, the norms, the
    /// attention softmax and the loss in f32 (PyTorch autocast's policy). Each step casts the
    /// f32 master weights to bf16, and the gradients flow back through the cast in f32.
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// One parameter: its HF name, its variable, and whether weight decay applies to it.
pub struct Param {
    pub name: String,
    pub var: Var,
    pub decay: bool,
}

/// The model's parameters and precomputed tables.
pub struct Model {
    pub cfg: ModelConfig,
    pub params: Vec<Param>,
    /// What the forward pass computes in (f32 unless set).
    pub precision: Precision,
    layers: Vec<Layer>,
    /// Indices in `params` of the embedding, final norm and (untied) output projection.
    embed: usize,
    norm: usize,
    head: usize,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

/// The keys and values of the positions generation has read so far, per layer.
#[derive(Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Indices in `params` of one block's weights.
struct Layer {
    input_norm: usize,
    q: usize,
    k: usize,
    v: usize,
    o: usize,
    post_norm: usize,
    gate: usize,
    up: usize,
    down: usize,
}

fn layer_name(i: usize, rest: &str) -> String {
    format!("model.layers.{i}.{rest}")
}

impl Model {
    /// A new model with weights drawn from `seed`.
    pub fn new(cfg: &ModelConfig, init: InitScheme, seed: u64, device: &Device) -> Result<Model> {
        let mut rng = Rng::new(seed);
        let residual_scale = match init {
            InitScheme::Gpt2 => 1.0 / (2.0 * cfg.n_layer as f64).sqrt(),
            InitScheme::Deepnet => (8.0 * cfg.n_layer as f64).powf(-0.25),
        };
        let mut params = Vec::new();
        let mut add = |name: String, shape: &[usize], std: Option<f64>| -> Result<usize> {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = match std {
                Some(s) => (0..n).map(|_| (rng.normal() * s) as f32).collect(),
                None => vec![1.0; n],
            };
            let t = Tensor::from_vec(data, shape, device)?;
            params.push(Param {
                name,
                var: Var::from_tensor(&t)?,
                decay: std.is_some(),
            });
            Ok(params.len() - 1)
        };
        let (d, f, v) = (cfg.d_model, cfg.d_ff, cfg.vocab_size);
        let embed = add("model.embed_tokens.weight".into(), &[v, d], Some(0.02))?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let input_norm = add(layer_name(i, "input_layernorm.weight"), &[d], None)?;
            let mut attn = |p: &str, std: f64| {
                add(
                    layer_name(i, &format!("self_attn.{p}.weight")),
                    &[d, d],
                    Some(std),
                )
            };
            let (q, k, v) = (
                attn("q_proj", 0.02)?,
                attn("k_proj", 0.02)?,
                attn("v_proj", 0.02)?,
            );
            let o = attn("o_proj", 0.02 * residual_scale)?;
            let post_norm = add(layer_name(i, "post_attention_layernorm.weight"), &[d], None)?;
            let gate = add(layer_name(i, "mlp.gate_proj.weight"), &[f, d], Some(0.02))?;
            let up = add(layer_name(i, "mlp.up_proj.weight"), &[f, d], Some(0.02))?;
            let down = add(
                layer_name(i, "mlp.down_proj.weight"),
                &[d, f],
                Some(0.02 * residual_scale),
            )?;
            layers.push(Layer {
                input_norm,
                q,
                k,
                v,
                o,
                post_norm,
                gate,
                up,
                down,
            });
        }
        let norm = add("model.norm.weight".into(), &[d], None)?;
        let head = if cfg.tied_embeddings {
            embed
        } else {
            add("lm_head.weight".into(), &[v, d], Some(0.02))?
        };
        let (cos, sin) = rope_tables(cfg, device)?;
        Ok(Model {
            cfg: cfg.clone(),
            params,
            precision: Precision::F32,
            layers,
            embed,
            norm,
            head,
            cos,
            sin,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn p(&self, i: usize) -> &Tensor {
        self.params[i].var.as_tensor()
    }

    /// A weight of a matrix product, in the compute type.
    fn w(&self, i: usize) -> Result<Tensor> {
        self.p(i).to_dtype(self.precision.dtype())
    }

    /// Logits (batch, time, vocab), f32, for token ids (batch, time).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        self.logits(ids)?.reshape((b, t, self.cfg.vocab_size))
    }

    /// Logits (batch x time, vocab), f32. Activations stay (rows, features) matrices so that
    /// no matrix product needs a reshape: each reshape is one more node whose gradient candle's
    /// backward pass zero-fills and adds into (on the logits, a batch x vocabulary buffer).
    fn logits(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let cfg = &self.cfg;
        let low = self.precision.dtype();
        // the residual stream is f32 whatever the compute type
        let mut x = self.p(self.embed).index_select(&ids.flatten_all()?, 0)?;
        let (cos, sin) = (self.cos.narrow(0, 0, t)?, self.sin.narrow(0, 0, t)?);
        for l in &self.layers {
            let h = ops::rms_norm(&x, self.p(l.input_norm), cfg.norm_eps)?.to_dtype(low)?;
            let a = self.attention(l, &h, (b, t), &cos, &sin)?;
            x = (x + a.to_dtype(DType::F32)?)?;
            x = (&x + self.feed_forward(l, &x)?)?;
        }
        let x = ops::rms_norm(&x, self.p(self.norm), cfg.norm_eps)?.to_dtype(low)?;
        linear(&x, &self.w(self.head)?)?.to_dtype(DType::F32)
    }

    /// The block's feed-forward output (f32) for the residual stream x: RMSNorm, SwiGLU.
    fn feed_forward(&self, l: &Layer, x: &Tensor) -> Result<Tensor> {
        let low = self.precision.dtype();
        let h = ops::rms_norm(x, self.p(l.post_norm), self.cfg.norm_eps)?.to_dtype(low)?;
        let gate = linear(&h, &self.w(l.gate)?)?;
        let up = linear(&h, &self.w(l.up)?)?;
        let m = linear(&ops::swiglu(&gate, &up)?, &self.w(l.down)?)?;
        m.to_dtype(DType::F32)
    }

    /// Attention of one block over h (batch x time, d_model).
    fn attention(
        &self,
        l: &Layer,
        h: &Tensor,
        (b, t): (usize, usize),
        cos: &Tensor,
        sin: &Tensor,
    ) -> Result<Tensor> {
        let d = self.cfg.d_model;
        let (nh, hd) = (self.cfg.n_head, self.cfg.head_dim());
        let heads = |w: usize| -> Result<Tensor> {
            linear(h, &self.w(w)?)?
                .reshape((b, t, nh, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = ops::rope(&heads(l.q)?, cos, sin)?;
        let k = ops::rope(&heads(l.k)?, cos, sin)?;
        let v = heads(l.v)?;
        let scores = q.matmul(&k.transpose(2, 3)?.contiguous()?)?;
        // the softmax in f32, its probabilities back in the compute type
        let att = ops::causal_softmax(&scores.to_dtype(DType::F32)?, 1.0 / (hd as f64).sqrt())?
            .to_dtype(h.dtype())?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b * t, d))?;
        linear(&y, &self.w(l.o)?)
    }

    /// Logits (vocab,) of the position after `ids` (one sequence), the keys and values of the
    /// positions before them taken from `cache` and those of `ids` added to it: generation
    /// without recomputing the prefix. `ids` starts at position `cache.len()`; a first call on
    /// an empty cache reads a whole prompt.
    pub fn forward_cached(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let t = ids.len();
        let pos = cache.len;
        if t == 0 || pos + t > self.cfg.max_seq_len {
            candle_core::bail!(
                "forward_cached: positions {pos}..{} outside the model's {}",
                pos + t,
                self.cfg.max_seq_len
            );
        }
        let cfg = &self.cfg;
        let low = self.precision.dtype();
        let ids = Tensor::from_slice(ids, (t,), &self.device)?;
        let mut x = self.p(self.embed).index_select(&ids, 0)?;
        let (cos, sin) = (self.cos.narrow(0, pos, t)?, self.sin.narrow(0, pos, t)?);
        let (nh, hd, d) = (cfg.n_head, cfg.head_dim(), cfg.d_model);
        if cache.layers.len() != self.layers.len() {
            cache.layers = vec![None; self.layers.len()];
        }
        for (l, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = ops::rms_norm(&x, self.p(l.input_norm), cfg.norm_eps)?.to_dtype(low)?;
            let heads = |w: usize| -> Result<Tensor> {
                linear(&h, &self.w(w)?)?
                    .reshape((1, t, nh, hd))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = ops::rope(&heads(l.q)?, &cos, &sin)?;
            let k = ops::rope(&heads(l.k)?, &cos, &sin)?;
            let v = heads(l.v)?;
            let (k, v) = match slot.take() {
                Some((pk, pv)) => (
                    Tensor::cat(&[&pk, &k], 2)?.contiguous()?,
                    Tensor::cat(&[&pv, &v], 2)?.contiguous()?,
                ),
                None => (k, v),
            };
            let scores = q
                .matmul(&k.transpose(2, 3)?.contiguous()?)?
                .to_dtype(DType::F32)?;
            let scale = 1.0 / (hd as f64).sqrt();
            let att = if t == 1 {
                // one new position sees every cached one
                ops::softmax(&(scores * scale)?)?
            } else if pos == 0 {
                ops::causal_softmax(&scores, scale)?
            } else {
                // a block after cached positions: mask the future within the block
                let mask: Vec<f32> = (0..t)
                    .flat_map(|i| {
                        (0..pos + t).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 })
                    })
                    .collect();
                let mask = Tensor::from_vec(mask, (t, pos + t), &self.device)?;
                ops::softmax(&(scores * scale)?.broadcast_add(&mask)?)?
            }
            .to_dtype(low)?;
            let y = att.matmul(&v)?.transpose(1, 2)?.reshape((t, d))?;
            *slot = Some((k, v));
            let a = linear(&y, &self.w(l.o)?)?;
            x = (x + a.to_dtype(DType::F32)?)?;
            x = (&x + self.feed_forward(l, &x)?)?;
        }
        cache.len += t;
        let last = x.narrow(0, t - 1, 1)?;
        let last = ops::rms_norm(&last, self.p(self.norm), cfg.norm_eps)?.to_dtype(low)?;
        linear(&last, &self.w(self.head)?)?
            .to_dtype(DType::F32)?
            .squeeze(0)
    }

    /// Mean cross-entropy of predicting `targets` (batch, time) from `ids`.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        ops::cross_entropy(&self.logits(ids)?, &targets.flatten_all()?)
    }

    /// The weights by name.
    pub fn tensors(&self) -> std::collections::HashMap<String, Tensor> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.var.as_tensor().clone()))
            .collect()
    }
}

/// `x @ w.T` for x (rows, in) and w (out, in): one 2-D product (a broadcast batched product
/// would also make the backward pass sum a gradient per batch row).
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.matmul(&w.t()?)
}

/// cos and sin tables (max_seq_len, head_dim / 2) of the rotary embedding.
fn rope_tables(cfg: &ModelConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let half = cfg.head_dim() / 2;
    let inv: Vec<f64> = (0..half)
        .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim() as f64))
        .collect();
    let mut cos = Vec::with_capacity(cfg.max_seq_len * half);
    let mut sin = Vec::with_capacity(cfg.max_seq_len * half);
    for pos in 0..cfg.max_seq_len {
        for f in &inv {
            cos.push((pos as f64 * f).cos() as f32);
            sin.push((pos as f64 * f).sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (cfg.max_seq_len, half), device)?,
        Tensor::from_vec(sin, (cfg.max_seq_len, half), device)?,
    ))
}

/// Ids as a tensor (batch, time).
pub fn ids_tensor(ids: &[u32], batch: usize, device: &Device) -> Result<Tensor> {
    Tensor::from_slice(ids, (batch, ids.len() / batch.max(1)), device)?.to_dtype(DType::U32)
}
