//! The fused CPU kernels against the compositions of differentiable operations they replace:
//! the same values, the same gradients for every input, clear errors on bad input.

use candle_core::{DType, Device, Tensor, Var};
use train::model::Rng;
use train::ops;

fn randn(shape: &[usize], seed: u64, scale: f64) -> Tensor {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| (rng.normal() * scale) as f32).collect();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let (a, b) = (values(a), values(b));
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: fused {x}, composed {y} (largest magnitude {scale})"
        );
    }
}

/// Runs `f` on fresh variables made from `inputs` and returns its output and the gradients of
/// sum(output · weights) for every input.
fn value_and_grads(
    inputs: &[Tensor],
    weights: &Tensor,
    f: impl Fn(&[Tensor]) -> Tensor,
) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts);
    let objective = out.broadcast_mul(weights).unwrap().sum_all().unwrap();
    let grads = objective.backward().unwrap();
    let g = ts
        .iter()
        .map(|t| grads.get(t).expect("a gradient for every input").clone())
        .collect();
    (out, g)
}

fn check(
    what: &str,
    inputs: &[Tensor],
    weights: &Tensor,
    fused: impl Fn(&[Tensor]) -> Tensor,
    composed: impl Fn(&[Tensor]) -> Tensor,
) {
    let (a, ga) = value_and_grads(inputs, weights, fused);
    let (b, gb) = value_and_grads(inputs, weights, composed);
    assert_close(&format!("{what} value"), &a, &b, 1e-5);
    for (i, (x, y)) in ga.iter().zip(&gb).enumerate() {
        assert_close(&format!("{what} gradient of input {i}"), x, y, 1e-4);
    }
}

/// Runs `f` once on each vector unit the fused kernels are compiled for that this CPU has
/// (baseline, AVX2, AVX-512), forcing each in turn; one test at a time holds the level.
fn on_every_vector_unit(f: impl Fn(ops::Simd)) {
    static LEVEL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = LEVEL.lock().unwrap_or_else(|e| e.into_inner());
    let widest = ops::detected_simd();
    for level in [ops::Simd::Baseline, ops::Simd::Avx2, ops::Simd::Avx512] {
        if level > widest {
            continue;
        }
        assert_eq!(ops::limit_simd(level), level);
        assert_eq!(ops::dispatched_simd(), level);
        f(level);
    }
    assert_eq!(ops::limit_simd(ops::Simd::Avx512), widest);
}

#[test]
fn the_widest_vector_unit_is_used_and_each_can_be_forced() {
    // a unit is used only where the CPU has it (pulp asks for more features than these: a
    // machine whose virtualisation hides one of them gets the narrower unit)
    #[cfg(target_arch = "x86_64")]
    {
        let has = |f: &[bool]| f.iter().all(|&b| b);
        use std::arch::is_x86_feature_detected as x;
        let avx512 = has(&[
            x!("avx512f"),
            x!("avx512bw"),
            x!("avx512vl"),
            x!("avx512dq"),
        ]);
        let avx2 = has(&[x!("avx2"), x!("fma"), x!("bmi2")]);
        match ops::detected_simd() {
            ops::Simd::Avx512 => assert!(avx512 && avx2),
            ops::Simd::Avx2 => assert!(avx2),
            ops::Simd::Baseline => {}
        }
        if !avx2 {
            assert_eq!(ops::detected_simd(), ops::Simd::Baseline);
        }
    }
    let mut seen = Vec::new();
    let seen_ref = std::sync::Mutex::new(&mut seen);
    on_every_vector_unit(|level| {
        assert_eq!(ops::simd(), level);
        assert_eq!(ops::dispatched_simd(), level);
        seen_ref.lock().unwrap().push(level);
    });
    assert_eq!(seen.first(), Some(&ops::Simd::Baseline));
    assert_eq!(seen.last(), Some(&ops::detected_simd()));
    // this machine's vector units, for the test log: a CPU without one cannot test its path
    eprintln!("fused kernels tested on: {seen:?}");
}

#[test]
fn cross_entropy_matches_the_composition() {
    on_every_vector_unit(|_| {
        let (n, v) = (300, 37);
        let logits = randn(&[n, v], 1, 3.0);
        let mut rng = Rng::new(2);
        let targets: Vec<u32> = (0..n).map(|_| rng.below(v as u64) as u32).collect();
        let targets = Tensor::from_vec(targets, n, &Device::Cpu).unwrap();
        let one = Tensor::new(1f32, &Device::Cpu).unwrap();
        check(
            "cross-entropy",
            &[logits],
            &one,
            |x| ops::cross_entropy(&x[0], &targets).unwrap(),
            |x| ops::cross_entropy_composed(&x[0], &targets).unwrap(),
        );
    });
}

#[test]
fn causal_softmax_matches_the_composition() {
    on_every_vector_unit(|_| {
        let shape = [3, 2, 19, 19];
        let scale = 0.35;
        check(
            "causal softmax",
            &[randn(&shape, 3, 2.0)],
            &randn(&shape, 4, 1.0),
            |x| ops::causal_softmax(&x[0], scale).unwrap(),
            |x| ops::causal_softmax_composed(&x[0], scale).unwrap(),
        );
        // nothing above the diagonal, rows sum to one
        let y = ops::causal_softmax(&randn(&[1, 1, 5, 5], 5, 1.0), 1.0).unwrap();
        let rows: Vec<Vec<f32>> = y.squeeze(0).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
        for (i, row) in rows.iter().enumerate() {
            assert!(row[i + 1..].iter().all(|&p| p == 0.0), "row {i}: {row:?}");
            assert!(
                (row.iter().sum::<f32>() - 1.0).abs() < 1e-6,
                "row {i}: {row:?}"
            );
        }
    });
}

#[test]
fn rms_norm_matches_the_composition() {
    on_every_vector_unit(|_| {
        // more rows than one partial sum of the weight gradient covers, and a ragged last chunk
        let (rows, d) = (2 * 64 + 37, 24);
        let weight = (randn(&[d], 6, 0.3) + 1.0).unwrap();
        check(
            "rms-norm",
            &[randn(&[5, rows / 5, d], 7, 1.5), weight],
            &randn(&[5, rows / 5, d], 8, 1.0),
            |x| ops::rms_norm(&x[0], &x[1], 1e-5).unwrap(),
            |x| ops::rms_norm_composed(&x[0], &x[1], 1e-5).unwrap(),
        );
    });
}

#[test]
fn rope_matches_the_composition() {
    on_every_vector_unit(|_| {
        let (b, h, t, hd) = (2, 3, 11, 8);
        let mut rng = Rng::new(9);
        let angles: Vec<f32> = (0..t * hd / 2)
            .map(|_| (rng.uniform() * 6.0) as f32)
            .collect();
        let angles = Tensor::from_vec(angles, (t, hd / 2), &Device::Cpu).unwrap();
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
        check(
            "rope",
            &[randn(&[b, h, t, hd], 10, 1.0)],
            &randn(&[b, h, t, hd], 11, 1.0),
            |x| ops::rope(&x[0], &cos, &sin).unwrap(),
            |x| ops::rope_composed(&x[0], &cos, &sin).unwrap(),
        );
        // a rotation keeps each pair's length
        let x = randn(&[1, 1, t, hd], 12, 1.0);
        let y = ops::rope(&x, &cos, &sin).unwrap();
        let norm = |t: &Tensor| values(&t.sqr().unwrap().sum_all().unwrap())[0];
        assert!((norm(&x) - norm(&y)).abs() < 1e-4 * norm(&x));
    });
}

#[test]
fn swiglu_matches_the_composition() {
    on_every_vector_unit(|_| {
        let shape = [7, 13, 10];
        check(
            "swiglu",
            &[randn(&shape, 13, 2.0), randn(&shape, 14, 1.0)],
            &randn(&shape, 15, 1.0),
            |x| ops::swiglu(&x[0], &x[1]).unwrap(),
            |x| ops::swiglu_composed(&x[0], &x[1]).unwrap(),
        );
    });
}

#[test]
fn non_contiguous_inputs_are_accepted() {
    // a transposed view goes through the kernels as its contiguous copy
    let x = randn(&[6, 4, 4], 16, 1.0).transpose(1, 2).unwrap();
    let fused = ops::causal_softmax(&x, 0.5).unwrap();
    let composed = ops::causal_softmax_composed(&x, 0.5).unwrap();
    assert_close("transposed causal softmax", &fused, &composed, 1e-6);
    let w = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
    let fused = ops::rms_norm(&x, &w, 1e-5).unwrap();
    let composed = ops::rms_norm_composed(&x, &w, 1e-5).unwrap();
    assert_close("transposed rms-norm", &fused, &composed, 1e-6);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let logits = randn(&[4, 5], 17, 1.0);
    let targets = Tensor::new(&[0u32, 1, 5, 2], &Device::Cpu).unwrap();
    let err = ops::cross_entropy(&logits, &targets)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("target 5") && err.contains("vocabulary of 5"),
        "{err}"
    );
    let err = ops::causal_softmax(&randn(&[2, 3, 4], 18, 1.0), 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("(.., t, t)"), "{err}");
    let err = ops::rms_norm(
        &logits,
        &Tensor::ones(3, DType::F32, &Device::Cpu).unwrap(),
        1e-5,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("weight of 3"), "{err}");
}

#[test]
fn other_types_use_the_composition() {
    // f64 is not a kernel type: the same functions still compute (and differentiate) it
    let x = randn(&[3, 6], 19, 1.0);
    let w = Tensor::ones(6, DType::F32, &Device::Cpu).unwrap();
    let a = ops::rms_norm(
        &x.to_dtype(DType::F64).unwrap(),
        &w.to_dtype(DType::F64).unwrap(),
        1e-5,
    )
    .unwrap();
    let b = ops::rms_norm(&x, &w, 1e-5).unwrap();
    assert_close("f64 rms-norm", &a.to_dtype(DType::F32).unwrap(), &b, 1e-6);
}

#[test]
fn exp_is_within_two_ulp() {
    let mut worst = 0f64;
    let mut x = -87.0f32;
    while x < 88.3 {
        for v in [x, x + 1e-3, x + 0.3466] {
            let want = f64::from(v).exp();
            let got = f64::from(ops::exp(v));
            // an ulp of the true value
            let ulp = f64::from(f32::EPSILON) * 2f64.powi(want.log2().floor() as i32);
            worst = worst.max((got - want).abs() / ulp);
        }
        x += 0.0137;
    }
    assert!(worst <= 2.0, "worst error {worst} ulp");
    assert_eq!(ops::exp(0.0), 1.0);
    assert_eq!(ops::exp(-100.0), 0.0);
    assert_eq!(ops::exp(f32::NEG_INFINITY), 0.0);
    assert_eq!(ops::exp(100.0), f32::INFINITY);
    assert!(ops::exp(f32::NAN).is_nan());
}

#[test]
fn adamw_in_place_matches_the_composed_update() {
    use train::OptimConfig;
    use train::model::Param;
    use train::optim::AdamW;
    // f32 on the CPU takes the in-place kernels; f64 takes the composed update
    let params = |dtype: DType| -> Vec<Param> {
        [
            ([50usize, 7usize].as_slice(), true),
            ([7].as_slice(), false),
        ]
        .iter()
        .enumerate()
        .map(|(i, (shape, decay))| Param {
            name: format!("p{i}"),
            var: Var::from_tensor(&randn(shape, 20 + i as u64, 0.5).to_dtype(dtype).unwrap())
                .unwrap(),
            decay: *decay,
        })
        .collect()
    };
    let (pa, pb) = (params(DType::F32), params(DType::F64));
    let (mut a, mut b) = (AdamW::new(&pa).unwrap(), AdamW::new(&pb).unwrap());
    let cfg = OptimConfig::default();
    for step in 0..4u64 {
        let ga: Vec<Tensor> = pa
            .iter()
            .enumerate()
            .map(|(i, p)| randn(p.var.dims(), 100 + 10 * step + i as u64, 1.0))
            .collect();
        let gb: Vec<Tensor> = ga.iter().map(|g| g.to_dtype(DType::F64).unwrap()).collect();
        a.step(&cfg, 1e-2, &pa, &ga, 0.5).unwrap();
        b.step(&cfg, 1e-2, &pb, &gb, 0.5).unwrap();
    }
    let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    for (i, (x, y)) in pa.iter().zip(&pb).enumerate() {
        assert_close(
            &format!("weights {i}"),
            x.var.as_tensor(),
            &f32s(y.var.as_tensor()),
            1e-5,
        );
        assert_close(&format!("first moment {i}"), &a.m[i], &f32s(&b.m[i]), 1e-5);
        assert_close(&format!("second moment {i}"), &a.v[i], &f32s(&b.v[i]), 1e-5);
    }
    // the weights moved
    let start = params(DType::F32);
    let moved = (pa[0].var.as_tensor() - start[0].var.as_tensor()).unwrap();
    assert!(values(&moved.abs().unwrap().max_all().unwrap())[0] > 1e-3);
}

/// The matrix products run on the widest kernels this CPU has (AVX-512 where present, chosen at
/// run time): checked against a plain f64 product on shapes that end inside a kernel's tile and
/// on one large enough to be split across threads.
#[test]
fn matmul_matches_a_plain_product_on_this_cpus_kernels() {
    for &(m, k, n) in &[
        (1, 1, 1),
        (37, 53, 29),
        (16, 64, 48),
        (129, 257, 65),
        (256, 256, 256),
    ] {
        let (ta, tb) = (randn(&[m, k], 7, 1.0), randn(&[k, n], 8, 1.0));
        let (a, b) = (values(&ta), values(&tb));
        let got = values(&ta.matmul(&tb).unwrap());
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k)
                    .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                    .sum();
                let d = (f64::from(got[i * n + j]) - want).abs();
                assert!(
                    d < 1e-3,
                    "{m}x{k}x{n} at ({i}, {j}): {} against {want} on {}",
                    got[i * n + j],
                    train::cpu_kernels()
                );
            }
        }
    }
}
