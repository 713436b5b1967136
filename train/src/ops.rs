//! Fused CPU kernels for the operations that composed tensor operations make slow, each with
//! its own backward pass: cross-entropy, the attention's scaled causal softmax, RMSNorm, rotary
//! embeddings and SwiGLU.
//!
//! Composed from candle's elementwise operations, each of these reads and writes its whole
//! input several times in the forward pass and again in the backward pass (the loss alone
//! makes six passes over the batch x vocabulary logits). A fused kernel makes one pass each
//! way, row by row, rows in parallel.
//!
//! The kernels run on f32 CPU tensors. On any other device or type the same functions fall back
//! to the composition of differentiable operations (never candle's fused `softmax_last_dim`,
//! `rms_norm` or `layer_norm`, whose gradients are dropped on contiguous input: candle issues
//! #2168, #3011, #3569, #3752). Tests check every kernel and its gradients against the
//! composition.
//!
//! Each kernel's loop over a row is compiled for baseline x86-64, AVX2 and AVX-512 and runs on
//! the widest the CPU has, chosen at run time ([`simd`]; pulp's dispatch, the layer the gemm
//! crate's kernels are built on): the binary assumes no vector unit at build time.
//! [`limit_simd`] forces a narrower one, so that tests run each path on one machine; a build
//! without the `avx512` feature stops at AVX2, its matrix products too.
//!
//! Sums that cross rows (the RMSNorm weight gradient) are taken over fixed chunks of rows and
//! the chunks added in order, so that results do not depend on the number of threads and a
//! resumed run repeats an uninterrupted one bit for bit.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, DType, Device, Layout, Result, Shape, Tensor,
    bail,
};
use rayon::prelude::*;

/// The vector units the fused kernels are compiled for, narrowest first. Each kernel is
/// compiled once for each, and every call runs the widest the CPU has (see [`simd`]): the
/// binary assumes none at build time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// What the build targets (SSE2 on x86-64; NEON on ARM).
    Baseline,
    /// AVX2 with FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F, BW, CD, DQ and VL (x86-64-v4).
    Avx512,
}

impl Simd {
    pub fn name(self) -> &'static str {
        match self {
            Simd::Baseline => "baseline",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }
}

/// The widest level allowed, as set by [`limit_simd`] (`Avx512`: no limit).
static SIMD_LIMIT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(2);

/// The widest vector unit this CPU has among [`Simd`]'s (AVX-512 only in a build with the
/// `avx512` feature, the default).
pub fn detected_simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512") && pulp::x86::V4::try_new().is_some() {
            return Simd::Avx512;
        }
        if pulp::x86::V3::try_new().is_some() {
            return Simd::Avx2;
        }
    }
    Simd::Baseline
}

/// The vector unit the fused kernels run on: the widest the CPU has, at most the limit.
pub fn simd() -> Simd {
    let limit = match SIMD_LIMIT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => Simd::Baseline,
        1 => Simd::Avx2,
        _ => Simd::Avx512,
    };
    detected_simd().min(limit)
}

/// Holds the fused kernels to `level` at most (for every thread), so that tests and
/// benchmarks can run each compiled path on a CPU that has a wider one. Returns the level now
/// in use.
pub fn limit_simd(level: Simd) -> Simd {
    SIMD_LIMIT.store(level as u8, std::sync::atomic::Ordering::Relaxed);
    simd()
}

/// Runs `kernel` compiled for `arch`'s vector unit (pulp's dispatch, with run-time
/// detection): the kernel and what it calls inline are compiled once per unit, so that the
/// compiler's vectorisation of the kernels' loops uses the full width.
#[inline(always)]
fn vectorized<K: Kernel>(arch: pulp::Arch, kernel: K) -> K::Out {
    struct Call<K>(K);
    impl<K: Kernel> pulp::WithSimd for Call<K> {
        type Output = K::Out;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> K::Out {
            self.0.run()
        }
    }
    arch.dispatch(Call(kernel))
}

/// A kernel's work on one row (or one chunk of rows), with its arguments: `run` is
/// `#[inline(always)]`, so that it is compiled into each vector unit's copy (a closure or a
/// function called through `FnOnce` may stay out of line, compiled for the baseline only).
trait Kernel {
    type Out;
    fn run(self) -> Self::Out;
}

/// pulp's dispatcher for [`simd`]'s level.
#[inline(always)]
fn arch() -> pulp::Arch {
    #[cfg(target_arch = "x86_64")]
    {
        let arch = match simd() {
            Simd::Avx512 => pulp::x86::V4::try_new().map(pulp::Arch::V4),
            Simd::Avx2 => pulp::x86::V3::try_new().map(pulp::Arch::V3),
            Simd::Baseline => None,
        };
        arch.unwrap_or(pulp::Arch::Scalar)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        pulp::Arch::Scalar
    }
}

/// The vector unit a kernel dispatched now is compiled for, as the dispatcher reports it (a
/// check that [`limit_simd`] reaches the kernels, not only [`simd`]).
pub fn dispatched_simd() -> Simd {
    struct Probe;
    impl pulp::WithSimd for Probe {
        type Output = &'static str;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> &'static str {
            std::any::type_name::<S>()
        }
    }
    let name = arch().dispatch(Probe);
    if name.ends_with("V4") {
        Simd::Avx512
    } else if name.ends_with("V3") {
        Simd::Avx2
    } else {
        Simd::Baseline
    }
}

/// Rows handed to one rayon task at least (rows are short; fewer, larger tasks cost less).
const MIN_ROWS: usize = 16;
/// Rows per partial sum of a sum across rows (fixed: the result must not depend on threads).
const SUM_ROWS: usize = 64;

fn fused(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// The f32 elements of a contiguous CPU tensor.
pub(crate) fn f32s<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<f32>()?[a..b]),
        None => bail!("{op}: the input is not contiguous"),
    }
}

fn u32s<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [u32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<u32>()?[a..b]),
        None => bail!("{op}: the input is not contiguous"),
    }
}

fn last_dim(l: &Layout) -> Result<usize> {
    match l.dims().last() {
        Some(&d) if d > 0 => Ok(d),
        _ => bail!("an empty last dimension"),
    }
}

/// Lanes of the row reductions: sums and maxima over 8 independent accumulators vectorise
/// (one accumulator is a serial chain of dependent additions).
const LANES: usize = 8;

#[inline(always)]
fn max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = a.max(x);
        }
    }
    rest.iter()
        .chain(&acc)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

#[inline(always)]
fn sum(row: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// Σ e^(x - m) over the row.
#[inline(always)]
fn sum_exp(row: &[f32], m: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += exp(x - m);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&x| exp(x - m)).sum::<f32>()
}

/// Σ a·b over two rows.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in ca.zip(cb) {
        for ((a, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
            *a += x * y;
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// e^x to within 2 ulp, branch-free so that loops over it vectorise (the C library's `expf` is
/// a scalar call, and the loss and its gradient take 2 x batch x vocabulary of them).
///
/// Cephes' `expf`: x = n·ln2 + r with |r| <= ln2/2 (ln2 in two parts, the first exact in a
/// product with n), a minimax polynomial for e^r, and n put into the float's exponent bits.
/// Below -87.3 the result is 0 (e^x is subnormal there), above 88.7 it is +inf, NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4; // 355/512, exact
    const C2: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits
    const SHIFTER: f32 = 12_582_912.0;
    let xc = x.clamp(-87.33, 88.72);
    let shifted = xc * LOG2E + SHIFTER;
    let n = shifted - SHIFTER;
    let r = xc - n * C1 - n * C2;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // 2^n in two halves: n reaches 128 near the top of the range, past the largest exponent
    let k = shifted.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    let half = k >> 1;
    let two_to = |e: i32| f32::from_bits((e.wrapping_add(127) as u32) << 23);
    let y = e_r * two_to(half) * two_to(k - half);
    if x < -87.33 {
        0.0
    } else if x > 88.72 {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy

/// Mean negative log-likelihood of `targets` (n, u32) under `logits` (n, vocab).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if !fused(logits) {
        return cross_entropy_composed(logits, targets);
    }
    let targets = targets.to_dtype(DType::U32)?.contiguous()?;
    logits
        .contiguous()?
        .apply_op2(&targets, CrossEntropy)?
        .mean_all()
}

/// [`cross_entropy`] from differentiable operations: the mean of logsumexp(row) - row[target],
/// without a log-probability matrix.
pub fn cross_entropy_composed(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
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

/// Per-row losses (n) of logits (n, vocab) and targets (n).
struct CrossEntropy;

/// Gradient of the per-row losses: (softmax(row) - onehot(target)) x the row's incoming gradient.
struct CrossEntropyGrad;

fn check_targets(t: &[u32], n: usize, v: usize) -> Result<()> {
    if t.len() != n {
        bail!("cross-entropy: {} targets for {n} rows", t.len());
    }
    if let Some(bad) = t.iter().find(|&&t| t as usize >= v) {
        bail!("cross-entropy: target {bad} is outside the vocabulary of {v}");
    }
    Ok(())
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let v = last_dim(l1)?;
        let x = f32s(s1, l1, self.name())?;
        let n = x.len() / v;
        let t = u32s(s2, l2, self.name())?;
        check_targets(t, n, v)?;
        let mut out = vec![0f32; n];
        let arch = arch();
        out.par_iter_mut()
            .zip(x.par_chunks(v))
            .zip(t.par_iter())
            .with_min_len(MIN_ROWS)
            .for_each(|((o, row), &t)| vectorized(arch, LossRow(o, row, t)));
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = logits.apply_op3_no_bwd(targets, &grad.contiguous()?, &CrossEntropyGrad)?;
        Ok((Some(g), None))
    }
}

impl CustomOp3 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "cross-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let v = last_dim(l1)?;
        let x = f32s(s1, l1, self.name())?;
        let n = x.len() / v;
        let t = u32s(s2, l2, self.name())?;
        check_targets(t, n, v)?;
        let g = f32s(s3, l3, self.name())?;
        if g.len() != n {
            bail!("cross-entropy-grad: {} gradients for {n} rows", g.len());
        }
        let mut out = vec![0f32; x.len()];
        let arch = arch();
        out.par_chunks_mut(v)
            .zip(x.par_chunks(v))
            .zip(t.par_iter().zip(g.par_iter()))
            .with_min_len(MIN_ROWS)
            .for_each(|((o, row), (&t, &g))| vectorized(arch, LossGradRow(o, row, t, g)));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// Scaled causal softmax

/// Attention probabilities from raw scores (.., t, t): softmax over each row of `scale` x
/// scores, position j hidden from query i when j > i.
pub fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    let d = scores.dims();
    if d.len() < 2 || d[d.len() - 2] != d[d.len() - 1] {
        bail!("causal softmax: scores (.., t, t) expected, got {d:?}");
    }
    if !(scale > 0.0 && scale.is_finite()) {
        bail!("causal softmax: the scale must be positive, got {scale}");
    }
    if !fused(scores) {
        return causal_softmax_composed(scores, scale);
    }
    scores.contiguous()?.apply_op1(CausalSoftmax {
        scale: scale as f32,
    })
}

/// [`causal_softmax`] from differentiable operations.
pub fn causal_softmax_composed(scores: &Tensor, scale: f64) -> Result<Tensor> {
    let t = scores.dim(D::Minus1)?;
    let mask = causal_mask(t, scores.device())?.to_dtype(scores.dtype())?;
    softmax(&(scores * scale)?.broadcast_add(&mask)?)
}

/// Softmax over the last dimension from differentiable operations; the row maximum is
/// subtracted (detached: softmax does not change under a shift) for stability.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// 0 on and below the diagonal, -inf above (t, t).
pub fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(data, (t, t), device)
}

struct CausalSoftmax {
    scale: f32,
}

/// dx = scale · y · (dy - Σ dy·y) per row, from the probabilities y and their gradient dy.
struct CausalSoftmaxGrad {
    scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let t = last_dim(l)?;
        let x = f32s(s, l, self.name())?;
        let mut out = vec![0f32; x.len()];
        let arch = arch();
        out.par_chunks_mut(t)
            .zip(x.par_chunks(t))
            .enumerate()
            .with_min_len(MIN_ROWS)
            .for_each(|(r, (o, row))| {
                let seen = r % t + 1;
                vectorized(arch, SoftmaxRow(&mut o[..seen], &row[..seen], self.scale));
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let g = res.apply_op2_no_bwd(
            &grad.contiguous()?,
            &CausalSoftmaxGrad { scale: self.scale },
        )?;
        Ok(Some(g))
    }
}

impl CustomOp2 for CausalSoftmaxGrad {
    fn name(&self) -> &'static str {
        "causal-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let t = last_dim(l1)?;
        let y = f32s(s1, l1, self.name())?;
        let dy = f32s(s2, l2, self.name())?;
        same_len(y, dy, self.name())?;
        let mut out = vec![0f32; y.len()];
        let arch = arch();
        out.par_chunks_mut(t)
            .zip(y.par_chunks(t).zip(dy.par_chunks(t)))
            .enumerate()
            .with_min_len(MIN_ROWS)
            .for_each(|(r, (o, (y, dy)))| {
                let seen = r % t + 1;
                let row = SoftmaxGradRow(&mut o[..seen], &y[..seen], &dy[..seen], self.scale);
                vectorized(arch, row);
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

/// x / sqrt(mean(x²) + eps) · weight over the last dimension.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    if !fused(x) {
        return rms_norm_composed(x, weight, eps);
    }
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, RmsNorm { eps: eps as f32 })
}

/// [`rms_norm`] from differentiable operations.
pub fn rms_norm_composed(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(weight)
}

struct RmsNorm {
    eps: f32,
}

/// The input's gradient: r·w·dy - x · r³ · Σ(dy·w·x) / d, with r = 1 / rms(x).
struct RmsNormGradX {
    eps: f32,
}

/// The weight's gradient: Σ over rows of dy · x · r.
struct RmsNormGradW {
    eps: f32,
}

#[inline(always)]
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ms = dot(row, row) / row.len() as f32;
    1.0 / (ms + eps).sqrt()
}

fn check_weight(w: &[f32], d: usize) -> Result<()> {
    if w.len() != d {
        bail!("rms-norm: a weight of {} for rows of {d}", w.len());
    }
    Ok(())
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = last_dim(l1)?;
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        check_weight(w, d)?;
        let mut out = vec![0f32; x.len()];
        let arch = arch();
        out.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .with_min_len(MIN_ROWS)
            .for_each(|(o, row)| vectorized(arch, RmsNormRow(o, row, w, self.eps)));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let gx = x.apply_op3_no_bwd(w, &grad, &RmsNormGradX { eps: self.eps })?;
        let gw = x.apply_op2_no_bwd(&grad, &RmsNormGradW { eps: self.eps })?;
        Ok((Some(gx), Some(gw)))
    }
}

impl CustomOp3 for RmsNormGradX {
    fn name(&self) -> &'static str {
        "rms-norm-grad-x"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = last_dim(l1)?;
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let dy = f32s(s3, l3, self.name())?;
        check_weight(w, d)?;
        same_len(x, dy, self.name())?;
        let mut out = vec![0f32; x.len()];
        let arch = arch();
        out.par_chunks_mut(d)
            .zip(x.par_chunks(d).zip(dy.par_chunks(d)))
            .with_min_len(MIN_ROWS)
            .for_each(|(o, (x, dy))| vectorized(arch, RmsNormGradRow(o, x, dy, w, self.eps)));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

impl CustomOp2 for RmsNormGradW {
    fn name(&self) -> &'static str {
        "rms-norm-grad-w"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = last_dim(l1)?;
        let x = f32s(s1, l1, self.name())?;
        let dy = f32s(s2, l2, self.name())?;
        same_len(x, dy, self.name())?;
        let arch = arch();
        let partials: Vec<Vec<f32>> = x
            .par_chunks(d * SUM_ROWS)
            .zip(dy.par_chunks(d * SUM_ROWS))
            .map(|(x, dy)| vectorized(arch, RmsNormWeightRows(x, dy, d, self.eps)))
            .collect();
        let mut out = vec![0f32; d];
        for p in &partials {
            out.iter_mut().zip(p).for_each(|(o, p)| *o += p);
        }
        Ok((CpuStorage::F32(out), Shape::from(d)))
    }
}

// ---------------------------------------------------------------------------------------------
// Rotary embeddings

/// Rotary embedding, HF Llama's layout (the two halves of each head rotate together), on
/// x (batch, heads, time, head_dim) with tables cos, sin (time, head_dim / 2).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if !fused(x) {
        return rope_composed(x, cos, sin);
    }
    let (_, _, t, hd) = x.dims4()?;
    if cos.dims() != [t, hd / 2] || sin.dims() != [t, hd / 2] {
        bail!(
            "rope: tables {:?} and {:?} for {t} positions of {hd}",
            cos.dims(),
            sin.dims()
        );
    }
    x.contiguous()?.apply_op3(
        &cos.to_dtype(DType::F32)?.contiguous()?,
        &sin.to_dtype(DType::F32)?.contiguous()?,
        Rope { inverse: false },
    )
}

/// [`rope`] from differentiable operations.
pub fn rope_composed(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
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

/// The rotation, or (for the backward pass) its inverse, the rotation by -angle.
struct Rope {
    inverse: bool,
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let hd = last_dim(l1)?;
        let half = hd / 2;
        let t = match l1.dims() {
            [.., t, _] => *t,
            _ => bail!("rope: (.., time, head_dim) expected"),
        };
        let x = f32s(s1, l1, self.name())?;
        let cos = f32s(s2, l2, self.name())?;
        let sin = f32s(s3, l3, self.name())?;
        if cos.len() != t * half || sin.len() != t * half {
            bail!("rope: tables do not match {t} positions of {hd}");
        }
        let sign = if self.inverse { -1.0 } else { 1.0 };
        let mut out = vec![0f32; x.len()];
        let arch = arch();
        out.par_chunks_mut(hd)
            .zip(x.par_chunks(hd))
            .enumerate()
            .with_min_len(MIN_ROWS)
            .for_each(|(r, (o, x))| {
                let p = (r % t) * half;
                let row = RopeRow(o, x, &cos[p..p + half], &sin[p..p + half], sign);
                vectorized(arch, row);
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?.apply_op3_no_bwd(
            cos,
            sin,
            &Rope {
                inverse: !self.inverse,
            },
        )?;
        Ok((Some(g), None, None))
    }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU

/// silu(gate) · up, SwiGLU's product.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if !fused(gate) {
        return swiglu_composed(gate, up);
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, Swiglu)
}

/// [`swiglu`] from differentiable operations.
pub fn swiglu_composed(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    // x * sigmoid(x), from exp so that the gradient is candle's elementwise chain rule
    (gate / (gate.neg()?.exp()? + 1.0)?)? * up
}

struct Swiglu;

/// The gradient of SwiGLU for its gate (`up: false`) or its other input (`up: true`).
struct SwigluGrad {
    up: bool,
}

fn same_len(a: &[f32], b: &[f32], op: &str) -> Result<()> {
    if a.len() != b.len() {
        bail!("{op}: shapes differ");
    }
    Ok(())
}

impl CustomOp2 for Swiglu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = last_dim(l1)?;
        let g = f32s(s1, l1, self.name())?;
        let u = f32s(s2, l2, self.name())?;
        same_len(g, u, self.name())?;
        let mut out = vec![0f32; g.len()];
        let arch = arch();
        out.par_chunks_mut(d)
            .zip(g.par_chunks(d).zip(u.par_chunks(d)))
            .with_min_len(MIN_ROWS)
            .for_each(|(o, (g, u))| vectorized(arch, SwigluRow(o, g, u)));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let gg = gate.apply_op3_no_bwd(up, &grad, &SwigluGrad { up: false })?;
        let gu = gate.apply_op3_no_bwd(up, &grad, &SwigluGrad { up: true })?;
        Ok((Some(gg), Some(gu)))
    }
}

impl CustomOp3 for SwigluGrad {
    fn name(&self) -> &'static str {
        "swiglu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = last_dim(l1)?;
        let g = f32s(s1, l1, self.name())?;
        let u = f32s(s2, l2, self.name())?;
        let dy = f32s(s3, l3, self.name())?;
        same_len(g, u, self.name())?;
        same_len(g, dy, self.name())?;
        let mut out = vec![0f32; g.len()];
        let arch = arch();
        out.par_chunks_mut(d)
            .zip(g.par_chunks(d).zip(u.par_chunks(d).zip(dy.par_chunks(d))))
            .with_min_len(MIN_ROWS)
            .for_each(|(o, (g, (u, dy)))| {
                if self.up {
                    vectorized(arch, SwigluGradUpRow(o, g, dy));
                } else {
                    vectorized(arch, SwigluGradGateRow(o, g, u, dy));
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// The kernels' rows, each inlined into a copy per vector unit by [`vectorized`]

/// Each kernel's row as a type (its arguments, a lifetime `'a` for the slices it borrows) and
/// its [`Kernel::run`], `#[inline(always)]`: `Name(arg: Type, ..) -> Out { body }`.
macro_rules! kernels {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $out:ty)? $body:block)*) => {$(
        $(#[$doc])*
        struct $name<'a>($($ty),*);

        impl Kernel for $name<'_> {
            type Out = kernels!(@out $($out)?);
            #[inline(always)]
            fn run(self) -> Self::Out {
                let $name($($arg),*) = self;
                $body
            }
        }
    )*};
    (@out) => { () };
    (@out $out:ty) => { $out };
}

kernels! {
    /// One row's loss: logsumexp(row) - row[t].
    LossRow(o: &'a mut f32, row: &'a [f32], t: u32) {
        let m = max(row);
        *o = m + sum_exp(row, m).ln() - row[t as usize];
    }

    /// One row's loss gradient: (softmax(row) - onehot(t)) x g.
    LossGradRow(o: &'a mut [f32], row: &'a [f32], t: u32, g: f32) {
        let m = max(row);
        for (o, &a) in o.iter_mut().zip(row) {
            *o = exp(a - m);
        }
        let k = g / sum(o);
        o.iter_mut().for_each(|o| *o *= k);
        o[t as usize] -= g;
    }

    /// The softmax of `scale` x the positions a query sees (the rest of its row stays 0).
    SoftmaxRow(o: &'a mut [f32], row: &'a [f32], scale: f32) {
        // the scale is positive (a softmax temperature)
        let m = max(row) * scale;
        for (o, &a) in o.iter_mut().zip(row) {
            *o = exp(a * scale - m);
        }
        let inv = 1.0 / sum(o);
        o.iter_mut().for_each(|o| *o *= inv);
    }

    SoftmaxGradRow(o: &'a mut [f32], y: &'a [f32], dy: &'a [f32], scale: f32) {
        let dot = dot(y, dy);
        for ((o, &y), &dy) in o.iter_mut().zip(y).zip(dy) {
            *o = scale * y * (dy - dot);
        }
    }

    RmsNormRow(o: &'a mut [f32], row: &'a [f32], w: &'a [f32], eps: f32) {
        let r = inv_rms(row, eps);
        for ((o, &a), &w) in o.iter_mut().zip(row).zip(w) {
            *o = a * r * w;
        }
    }

    RmsNormGradRow(o: &'a mut [f32], x: &'a [f32], dy: &'a [f32], w: &'a [f32], eps: f32) {
        let r = inv_rms(x, eps);
        let dot: f32 = x.iter().zip(dy).zip(w).map(|((x, g), w)| x * g * w).sum();
        let k = r * r * r * dot / x.len() as f32;
        for (((o, &x), &dy), &w) in o.iter_mut().zip(x).zip(dy).zip(w) {
            *o = r * w * dy - x * k;
        }
    }

    /// The weight gradient's partial sum over a chunk of rows of width `d`.
    RmsNormWeightRows(x: &'a [f32], dy: &'a [f32], d: usize, eps: f32) -> Vec<f32> {
        let mut acc = vec![0f32; d];
        for (x, dy) in x.chunks(d).zip(dy.chunks(d)) {
            let r = inv_rms(x, eps);
            for ((a, &x), &dy) in acc.iter_mut().zip(x).zip(dy) {
                *a += dy * x * r;
            }
        }
        acc
    }

    /// One head's rotation at one position (`sign` -1 rotates back, for the gradient).
    RopeRow(o: &'a mut [f32], x: &'a [f32], c: &'a [f32], s: &'a [f32], sign: f32) {
        let half = c.len();
        let (x1, x2) = x.split_at(half);
        let (o1, o2) = o.split_at_mut(half);
        for i in 0..half {
            let s = sign * s[i];
            o1[i] = x1[i] * c[i] - x2[i] * s;
            o2[i] = x2[i] * c[i] + x1[i] * s;
        }
    }

    SwigluRow(o: &'a mut [f32], g: &'a [f32], u: &'a [f32]) {
        for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
            *o = g * sigmoid(g) * u;
        }
    }

    /// The gradient with respect to `up`: dy x silu(gate).
    SwigluGradUpRow(o: &'a mut [f32], g: &'a [f32], dy: &'a [f32]) {
        for ((o, &g), &dy) in o.iter_mut().zip(g).zip(dy) {
            *o = dy * g * sigmoid(g);
        }
    }

    /// The gradient with respect to `gate`: dy x up x silu'(gate).
    SwigluGradGateRow(o: &'a mut [f32], g: &'a [f32], u: &'a [f32], dy: &'a [f32]) {
        for (((o, &g), &u), &dy) in o.iter_mut().zip(g).zip(u).zip(dy) {
            let s = sigmoid(g);
            *o = dy * u * s * (1.0 + g * (1.0 - s));
        }
    }
}
