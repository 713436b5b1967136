//! A Llama-style decoder (RMSNorm, rotary position embeddings, SwiGLU, tied or untied
//! embeddings) written with differentiable tensor operations only.
//!
//! candle's fused `softmax_last_dim`, `rms_norm` and `layer_norm` and its `RmsNorm`/`LayerNorm`
//! modules drop gradients on contiguous input (candle issues #2168, #3011, #3569, #3752), so
//! normalisation and softmax here are built from `sqr`, `mean`, `exp`, `sum` and friends, and a
//! test checks that one backward pass reaches every parameter with a finite, non-zero gradient
//! and agrees with finite differences.
//!
//! Parameters carry Hugging Face Llama names (`model.layers.0.self_attn.q_proj.weight`, ...), so
//! a checkpoint's weights are an HF model's weights.

use candle_core::{D, DType, Device, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

/// The shape of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    cos: Tensor,
    sin: Tensor,
    device: Device,
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
        let mut add = |name: String, shape: &[usize], std: Option<f64>| -> Result<()> {
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
            Ok(())
        };
        let (d, f, v) = (cfg.d_model, cfg.d_ff, cfg.vocab_size);
        add("model.embed_tokens.weight".into(), &[v, d], Some(0.02))?;
        for i in 0..cfg.n_layer {
            add(layer_name(i, "input_layernorm.weight"), &[d], None)?;
            for p in ["q_proj", "k_proj", "v_proj"] {
                add(
                    layer_name(i, &format!("self_attn.{p}.weight")),
                    &[d, d],
                    Some(0.02),
                )?;
            }
            add(
                layer_name(i, "self_attn.o_proj.weight"),
                &[d, d],
                Some(0.02 * residual_scale),
            )?;
            add(layer_name(i, "post_attention_layernorm.weight"), &[d], None)?;
            add(layer_name(i, "mlp.gate_proj.weight"), &[f, d], Some(0.02))?;
            add(layer_name(i, "mlp.up_proj.weight"), &[f, d], Some(0.02))?;
            add(
                layer_name(i, "mlp.down_proj.weight"),
                &[d, f],
                Some(0.02 * residual_scale),
            )?;
        }
        add("model.norm.weight".into(), &[d], None)?;
        if !cfg.tied_embeddings {
            add("lm_head.weight".into(), &[v, d], Some(0.02))?;
        }
        let (cos, sin) = rope_tables(cfg, device)?;
        Ok(Model {
            cfg: cfg.clone(),
            params,
            cos,
            sin,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn p(&self, name: &str) -> &Tensor {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.var.as_tensor())
            .expect("the model made every parameter it names")
    }

    /// Logits (batch, time, vocab) for token ids (batch, time).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let cfg = &self.cfg;
        let embed = self.p("model.embed_tokens.weight");
        let mut x = embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, cfg.d_model))?;
        let mask = causal_mask(t, &self.device)?;
        let (cos, sin) = (self.cos.narrow(0, 0, t)?, self.sin.narrow(0, 0, t)?);
        for i in 0..cfg.n_layer {
            let h = rms_norm(
                &x,
                self.p(&layer_name(i, "input_layernorm.weight")),
                cfg.norm_eps,
            )?;
            let a = self.attention(i, &h, &mask, &cos, &sin)?;
            x = (x + a)?;
            let h = rms_norm(
                &x,
                self.p(&layer_name(i, "post_attention_layernorm.weight")),
                cfg.norm_eps,
            )?;
            let gate = linear(&h, self.p(&layer_name(i, "mlp.gate_proj.weight")))?;
            let up = linear(&h, self.p(&layer_name(i, "mlp.up_proj.weight")))?;
            let m = linear(
                &(silu(&gate)? * up)?,
                self.p(&layer_name(i, "mlp.down_proj.weight")),
            )?;
            x = (x + m)?;
        }
        let x = rms_norm(&x, self.p("model.norm.weight"), cfg.norm_eps)?;
        let head = if cfg.tied_embeddings {
            embed
        } else {
            self.p("lm_head.weight")
        };
        linear(&x, head)
    }

    fn attention(
        &self,
        i: usize,
        h: &Tensor,
        mask: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
    ) -> Result<Tensor> {
        let (b, t, d) = h.dims3()?;
        let (nh, hd) = (self.cfg.n_head, self.cfg.head_dim());
        let heads = |name: &str| -> Result<Tensor> {
            linear(
                h,
                self.p(&layer_name(i, &format!("self_attn.{name}.weight"))),
            )?
            .reshape((b, t, nh, hd))?
            .transpose(1, 2)?
            .contiguous()
        };
        let q = rope(&heads("q_proj")?, cos, sin)?;
        let k = rope(&heads("k_proj")?, cos, sin)?;
        let v = heads("v_proj")?;
        let scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? / (hd as f64).sqrt())?;
        let scores = scores.broadcast_add(mask)?;
        let att = softmax(&scores)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        linear(&y, self.p(&layer_name(i, "self_attn.o_proj.weight")))
    }

    /// Mean cross-entropy of predicting `targets` (batch, time) from `ids`.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logits = self.forward(ids)?;
        let (b, t, v) = logits.dims3()?;
        cross_entropy(&logits.reshape((b * t, v))?, &targets.flatten_all()?)
    }

    /// The weights by name.
    pub fn tensors(&self) -> std::collections::HashMap<String, Tensor> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.var.as_tensor().clone()))
            .collect()
    }
}

/// `x @ w.T` for x (.., in) and w (out, in), as one 2-D product (a broadcast batched product
/// would also make the backward pass sum a gradient per batch row).
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (rows, k) = (
        dims[..dims.len() - 1].iter().product::<usize>(),
        dims[dims.len() - 1],
    );
    let y = x.reshape((rows, k))?.matmul(&w.t()?)?;
    let mut out = dims;
    let last = out.len() - 1;
    out[last] = w.dim(0)?;
    y.reshape(out)
}

fn silu(x: &Tensor) -> Result<Tensor> {
    // x * sigmoid(x), from exp so that the gradient is candle's elementwise chain rule
    x / (x.neg()?.exp()? + 1.0)?
}

/// RMSNorm from differentiable operations (not candle's fused op).
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(weight)
}

/// Softmax over the last dimension from differentiable operations; the row maximum is
/// subtracted (detached: softmax does not change under a shift) for stability.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Mean negative log-likelihood of `targets` (n) under `logits` (n, vocab).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    // mean of logsumexp(row) - row[target]: no log-probability matrix is made
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let log_z = (logits
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + &max)?;
    let picked = logits.gather(&targets.unsqueeze(1)?, 1)?;
    (log_z - picked)?.mean_all()
}

fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(data, (t, t), device)
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

/// Rotary embedding, HF Llama's layout (the two halves of each head rotate together), on
/// x (batch, heads, time, head_dim).
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let hd = x.dim(D::Minus1)?;
    let half = hd / 2;
    let (x1, x2) = (
        x.narrow(D::Minus1, 0, half)?,
        x.narrow(D::Minus1, half, half)?,
    );
    let cos = cos.to_dtype(x.dtype())?;
    let sin = sin.to_dtype(x.dtype())?;
    let r1 = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
    let r2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
    Tensor::cat(&[r1, r2], D::Minus1)
}

/// Ids as a tensor (batch, time).
pub fn ids_tensor(ids: &[u32], batch: usize, device: &Device) -> Result<Tensor> {
    Tensor::from_slice(ids, (batch, ids.len() / batch.max(1)), device)?.to_dtype(DType::U32)
}
