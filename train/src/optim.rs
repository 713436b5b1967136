//! AdamW with decoupled weight decay (Loshchilov and Hutter), off for norms; global-norm
//! gradient clipping; linear warmup then cosine decay.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::Param;

/// Optimiser settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
        }
    }
}

/// The learning rate at `step` (0-based) of `total`.
pub fn lr_at(cfg: &OptimConfig, step: u64, total: u64) -> f64 {
    if step < cfg.warmup_steps {
        return cfg.lr * (step + 1) as f64 / cfg.warmup_steps as f64;
    }
    let span = total.saturating_sub(cfg.warmup_steps).max(1);
    let progress = ((step - cfg.warmup_steps) as f64 / span as f64).min(1.0);
    cfg.min_lr + 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()) * (cfg.lr - cfg.min_lr)
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

    /// One update with `grads` (one per parameter, already averaged and clipped).
    pub fn step(
        &mut self,
        cfg: &OptimConfig,
        lr: f64,
        params: &[Param],
        grads: &[Tensor],
    ) -> Result<()> {
        self.t += 1;
        let bc1 = 1.0 - cfg.beta1.powi(self.t as i32);
        let bc2 = 1.0 - cfg.beta2.powi(self.t as i32);
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * cfg.beta1)? + (g * (1.0 - cfg.beta1))?)?;
            let v = ((&self.v[i] * cfg.beta2)? + (g.sqr()? * (1.0 - cfg.beta2))?)?;
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + cfg.eps)?)?;
            let w = p.var.as_tensor();
            let w = if p.decay && cfg.weight_decay > 0.0 {
                (w * (1.0 - lr * cfg.weight_decay))?
            } else {
                w.clone()
            };
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
