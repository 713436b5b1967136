//! AdamW with decoupled weight decay (Loshchilov and Hutter), off for norms; global-norm
//! gradient clipping; linear warmup then cosine decay.

use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Result, Tensor, bail};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::Param;
use crate::ops::f32s;

/// Optimiser settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    pub lr: f64,
    /// The learning rate at the end of the cosine decay.
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Gradients are scaled down when their global norm exceeds this (0: never).
    pub grad_clip: f64,
    /// The learning rate's shape after warmup: `cosine` decay to `min_lr` over the run, or
    /// `wsd` (warmup, stable at `lr`, then a cosine decay over the last `decay_fraction` of
    /// the run), which a run can be extended in without touching its past.
    pub schedule: Schedule,
    /// With `wsd`: the share of the run spent decaying.
    pub decay_fraction: f64,
}

/// The learning rate's shape after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    #[default]
    Cosine,
    Wsd,
}

impl Default for OptimConfig {
    fn default() -> Self {
        // nanoGPT's and llm.c's GPT-2 settings
        OptimConfig {
            lr: 6e-4,
            min_lr: 6e-5,
            warmup_steps: 100,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
            schedule: Schedule::Cosine,
            decay_fraction: 0.2,
        }
    }
}

/// The learning rate at `step` (0-based) of `total`.
pub fn lr_at(cfg: &OptimConfig, step: u64, total: u64) -> f64 {
    if step < cfg.warmup_steps {
        return cfg.lr * (step + 1) as f64 / cfg.warmup_steps as f64;
    }
    let decay_from = match cfg.schedule {
        Schedule::Cosine => cfg.warmup_steps,
        Schedule::Wsd => {
            let decay = (total as f64 * cfg.decay_fraction).round() as u64;
            total.saturating_sub(decay).max(cfg.warmup_steps)
        }
    };
    if step < decay_from {
        return cfg.lr;
    }
    cosine(
        cfg.lr,
        cfg.min_lr,
        step - decay_from,
        total.saturating_sub(decay_from),
    )
}

/// From `from` down to `to` over `span` steps by half a cosine; `to` after it.
pub fn cosine(from: f64, to: f64, step: u64, span: u64) -> f64 {
    let progress = (step as f64 / span.max(1) as f64).min(1.0);
    to + 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()) * (from - to)
}

/// AdamW's moments, one pair per parameter.
pub struct AdamW {
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// Updates applied so far (for bias correction).
    pub t: u64,
}

impl AdamW {
    pub fn new(params: &[Param]) -> Result<AdamW> {
        let zeros = |p: &Param| p.var.as_tensor().zeros_like();
        Ok(AdamW {
            m: params.iter().map(zeros).collect::<Result<_>>()?,
            v: params.iter().map(zeros).collect::<Result<_>>()?,
            t: 0,
        })
    }

    /// Keeps the moments of the parameters `mine` says this rank owns (ZeRO stage 1); the
    /// others' become empty, and [`AdamW::step`] leaves those parameters to their owners.
    pub fn keep_only(&mut self, mine: impl Fn(usize) -> bool) -> Result<()> {
        for i in 0..self.m.len() {
            if !mine(i) {
                let none = Tensor::zeros(0, self.m[i].dtype(), self.m[i].device())?;
                self.m[i] = none.clone();
                self.v[i] = none;
            }
        }
        Ok(())
    }

    /// One update with `grads` (one per parameter) multiplied by `grad_scale` (the averaging
    /// over micro-batches and the clipping factor).
    ///
    /// On the CPU the moments and weights are updated in place, one pass each: the composed
    /// update below makes a dozen passes and as many fresh buffers per parameter.
    pub fn step(
        &mut self,
        cfg: &OptimConfig,
        lr: f64,
        params: &[Param],
        grads: &[Tensor],
        grad_scale: f64,
    ) -> Result<()> {
        self.t += 1;
        let bc1 = 1.0 - cfg.beta1.powi(self.t as i32);
        let bc2 = 1.0 - cfg.beta2.powi(self.t as i32);
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let w = p.var.as_tensor();
            if self.m[i].elem_count() != w.elem_count() {
                // another rank's parameter (ZeRO-1): its owner updates it
                continue;
            }
            let decay = if p.decay {
                1.0 - lr * cfg.weight_decay
            } else {
                1.0
            };
            if [w, g, &self.m[i], &self.v[i]]
                .iter()
                .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous())
            {
                let scale = grad_scale as f32;
                self.m[i].inplace_op2(
                    g,
                    &Moment {
                        beta: cfg.beta1 as f32,
                        scale,
                        square: false,
                    },
                )?;
                self.v[i].inplace_op2(
                    g,
                    &Moment {
                        beta: cfg.beta2 as f32,
                        scale,
                        square: true,
                    },
                )?;
                w.inplace_op3(
                    &self.m[i],
                    &self.v[i],
                    &Update {
                        lr: lr as f32,
                        decay: decay as f32,
                        bc1: bc1 as f32,
                        bc2: bc2 as f32,
                        eps: cfg.eps as f32,
                    },
                )?;
                continue;
            }
            let g = &(g * grad_scale)?;
            let m = ((&self.m[i] * cfg.beta1)? + (g * (1.0 - cfg.beta1))?)?;
            let v = ((&self.v[i] * cfg.beta2)? + (g.sqr()? * (1.0 - cfg.beta2))?)?;
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + cfg.eps)?)?;
            let w = (w * decay)?;
            p.var.set(&(w - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// The global L2 norm of the gradients.
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    let mut sum = 0f64;
    for g in grads {
        sum += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
    }
    Ok(sum.sqrt())
}

/// m ← β·m + (1-β)·s·g, or with `square` v ← β·v + (1-β)·(s·g)², in place.
struct Moment {
    beta: f32,
    scale: f32,
    square: bool,
}

/// w ← decay·w - lr · (m / bc1) / (sqrt(v / bc2) + eps), in place.
struct Update {
    lr: f32,
    decay: f32,
    bc1: f32,
    bc2: f32,
    eps: f32,
}

/// Elements handed to one rayon task at least.
const CHUNK: usize = 1 << 14;

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    let (a, b) = match l.contiguous_offsets() {
        Some(r) => r,
        None => bail!("adamw: a non-contiguous tensor"),
    };
    match s {
        CpuStorage::F32(v) => Ok(&mut v[a..b]),
        _ => bail!("adamw: f32 expected"),
    }
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let m = slice_mut(s1, l1)?;
        let g = f32s(s2, l2, self.name())?;
        if m.len() != g.len() {
            bail!("adamw: a gradient of {} for {} weights", g.len(), m.len());
        }
        let (beta, k) = (self.beta, 1.0 - self.beta);
        m.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .for_each(|(m, g)| {
                for (m, &g) in m.iter_mut().zip(g) {
                    let g = g * self.scale;
                    let x = if self.square { g * g } else { g };
                    *m = beta * *m + k * x;
                }
            });
        Ok(())
    }
}

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let w = slice_mut(s1, l1)?;
        let (m, v) = (f32s(s2, l2, self.name())?, f32s(s3, l3, self.name())?);
        if m.len() != w.len() || v.len() != w.len() {
            bail!("adamw: moments do not match {} weights", w.len());
        }
        w.par_chunks_mut(CHUNK)
            .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
            .for_each(|(w, (m, v))| {
                for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
                    let update = (m / self.bc1) / ((v / self.bc2).sqrt() + self.eps);
                    *w = *w * self.decay - update * self.lr;
                }
            });
        Ok(())
    }
}
