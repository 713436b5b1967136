//! `zhcorpus train` and `zhcorpus sample` on shards made by `zhcorpus tokenizer encode`.

mod common;

use common::{ok, run, stderr, write_jsonl};
use corpus::Document;

/// Writes `n` generated documents of `chars` characters to `dir/in.jsonl`.
fn write_documents(dir: &std::path::Path, n: usize, chars: usize, seed: u64) {
    let mut rng = tests::Rng::new(seed);
    let docs: Vec<Document> = (0..n)
        .map(|i| Document::new(format!("d{i}"), tests::generate_text(&mut rng, chars)))
        .collect();
    write_jsonl(&dir.join("in.jsonl"), &docs);
}

#[test]
fn train_resume_and_sample_on_encoded_shards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_documents(d, 200, 80, 4);
    ok(run(
        d,
        &[
            "tokenizer",
            "train",
            "-i",
            "in.jsonl",
            "--vocab-size",
            "600",
            "-o",
            "tok/tokenizer.json",
        ],
    ));
    ok(run(
        d,
        &[
            "tokenizer",
            "encode",
            "-t",
            "tok/tokenizer.json",
            "-i",
            "in.jsonl",
            "-o",
            "shards",
            "--val-fraction",
            "0.1",
        ],
    ));

    // 8 of 16 steps, then the rest after a resume
    let first = ok(run(
        d,
        &[
            "train",
            "--data",
            "shards",
            "--output",
            "run",
            "--max-steps",
            "16",
            "--max-tokens",
            "4096",
        ],
    ));
    assert!(first.contains("trained 8 steps (8 this run)"), "{first}");
    // --threads sizes the pool whatever RAYON_NUM_THREADS says; candle's elementwise pool
    // keeps one thread (the shards of a batch run on the pool's threads instead)
    let o = common::zhcorpus()
        .current_dir(d)
        .env("RAYON_NUM_THREADS", "3")
        .env("CANDLE_NUM_THREADS", "3")
        .args([
            "--threads",
            "2",
            "-v",
            "train",
            "--data",
            "shards",
            "--output",
            "one",
        ])
        .args(["--max-steps", "1", "--max-tokens", "512"])
        .output()
        .unwrap();
    let log = stderr(&o);
    ok(o);
    assert!(log.contains("2 threads (from --threads)"), "{log}");
    assert!(log.contains("elementwise pool: 1 threads"), "{log}");
    assert!(log.contains("CPU matrix kernels: "), "{log}");
    assert!(
        log.contains(&format!(
            "fused kernels: {} (chosen at run time)",
            train::ops::simd().name()
        )),
        "{log}"
    );
    let second = ok(run(
        d,
        &["train", "--data", "shards", "--output", "run", "--resume"],
    ));
    assert!(second.contains("trained 16 steps (8 this run)"), "{second}");
    let metrics = std::fs::read_to_string(d.join("run/metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, (1..=16).collect::<Vec<_>>());
    let png = std::fs::read(d.join("run/loss.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(d.join("run/tokenizer.json").exists());

    let out = ok(run(
        d,
        &[
            "sample",
            "--checkpoint",
            "run",
            "--prompt",
            "中文",
            "--tokens",
            "10",
            "--temperature",
            "0",
            "--ignore-eot",
        ],
    ));
    assert!(out.starts_with("中文") && out.chars().count() > 3, "{out}");
    // greedy decoding is deterministic
    let again = ok(run(
        d,
        &[
            "sample",
            "--checkpoint",
            "run",
            "--prompt",
            "中文",
            "--tokens",
            "10",
            "--temperature",
            "0",
            "--ignore-eot",
        ],
    ));
    assert_eq!(out, again);
    // by default the continuation ends where the model ends the document
    let stopped = ok(run(
        d,
        &[
            "sample",
            "--checkpoint",
            "run",
            "--prompt",
            "中文",
            "--tokens",
            "10",
            "--temperature",
            "0",
        ],
    ));
    assert_eq!(
        stopped.trim_end(),
        out.trim_end().split("<|endoftext|>").next().unwrap(),
        "{out}"
    );

    // a Hugging Face folder
    let out = ok(run(
        d,
        &["hf-export", "--checkpoint", "run", "--output", "hf"],
    ));
    assert!(out.contains("Hugging Face Llama model folder"), "{out}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("hf/config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["vocab_size"], 600);
    assert_eq!(config["eos_token_id"], 599);
    assert_eq!(
        std::fs::read(d.join("hf/model.safetensors")).unwrap(),
        std::fs::read(d.join("run/checkpoint/model.safetensors")).unwrap()
    );
    assert!(d.join("hf/tokenizer.json").exists() && d.join("hf/tokenizer_config.json").exists());

    // a resume with other settings, missing shards, an unknown preset
    let o = run(
        d,
        &[
            "train",
            "--data",
            "shards",
            "--output",
            "run",
            "--max-steps",
            "16",
            "--lr",
            "0.1",
            "--resume",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("other settings"), "{}", stderr(&o));
    let o = run(d, &["train", "--data", "nowhere", "--output", "r2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));
    let o = run(
        d,
        &[
            "train", "--data", "shards", "--output", "r2", "--preset", "huge",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown preset"), "{}", stderr(&o));
    // devices: a bad name, and CUDA in a build without it
    let o = run(
        d,
        &[
            "train", "--data", "shards", "--output", "r2", "--device", "tpu",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cpu, cuda or cuda:N"), "{}", stderr(&o));
    if !cfg!(feature = "cuda") {
        let o = run(
            d,
            &[
                "train", "--data", "shards", "--output", "r2", "--device", "cuda:1",
            ],
        );
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("--features cuda"), "{}", stderr(&o));
    }
    // bf16 on the CPU, recorded in the run's configuration
    let o = run(
        d,
        &[
            "train",
            "--data",
            "shards",
            "--output",
            "r3",
            "--max-steps",
            "3",
            "--precision",
            "bf16",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("CPU bf16"), "{}", stderr(&o));
    let config = std::fs::read_to_string(d.join("r3/config.json")).unwrap();
    assert!(config.contains("\"precision\": \"bf16\""), "{config}");
}

#[test]
fn a_killed_run_resumes_onto_the_uninterrupted_curve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_documents(d, 100, 60, 6);
    ok(run(
        d,
        &[
            "tokenizer",
            "encode",
            "-t",
            "bytes",
            "-i",
            "in.jsonl",
            "-o",
            "s",
            "--val-fraction",
            "0",
        ],
    ));
    std::fs::write(d.join("run.toml"), "checkpoint_every = 5\neval_every = 0\n").unwrap();
    let args = |out: &'static str| {
        vec![
            "train",
            "--data",
            "s",
            "--output",
            out,
            "--config",
            "run.toml",
            "--max-steps",
            "300",
        ]
    };
    let mut child = common::zhcorpus()
        .current_dir(d)
        .args(args("killed"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill -9 once a checkpoint exists and the run has gone past it
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let lines = std::fs::read_to_string(d.join("killed/metrics.jsonl"))
            .map(|m| m.lines().count())
            .unwrap_or(0);
        if lines >= 12 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let logged = std::fs::read_to_string(d.join("killed/metrics.jsonl")).unwrap();
    assert!(
        logged.lines().count() < 300,
        "the run ended before the kill"
    );

    let mut resume = args("killed");
    resume.push("--resume");
    ok(run(d, &resume));
    ok(run(d, &args("straight")));
    let losses = |out: &str| -> Vec<(u64, f64)> {
        std::fs::read_to_string(d.join(out).join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap())
            })
            .collect()
    };
    let (killed, straight) = (losses("killed"), losses("straight"));
    assert_eq!(
        killed.iter().map(|m| m.0).collect::<Vec<_>>(),
        (1..=300).collect::<Vec<_>>()
    );
    for ((step, a), (_, b)) in killed.iter().zip(&straight) {
        assert!(
            (a - b).abs() < 1e-5,
            "step {step}: {a} after kill -9, {b} straight"
        );
    }
}
