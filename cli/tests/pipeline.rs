//! `zhcorpus pipeline` end to end on generated documents and the site farm: killed with
//! SIGKILL at every stage boundary and in the middle of every stage, the same command finishes
//! the job with shards and a model checkpoint byte-identical to an uninterrupted run's.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use farm::{Farm, FarmConfig};

/// 1,200 generated documents of 150 to 400 characters, and 40 exact copies for dedup.
fn documents(path: &Path) {
    let mut rng = tests::Rng::new(11);
    let mut docs = Vec::new();
    for i in 0..1200 {
        let len = 150 + rng.below(250);
        let mut d =
            corpus::Document::new(format!("doc-{i:05}"), tests::generate_text(&mut rng, len));
        d.source = Some(["news", "forum", "blog"][i % 3].to_string());
        docs.push(d);
    }
    for i in 0..40 {
        let mut d = docs[i * 31].clone();
        d.id = format!("copy-{i:03}");
        docs.push(d);
    }
    write_jsonl(path, &docs);
}

/// The settings: the documents, and one host of the farm crawled one page at a time: the
/// crawl's order, and so the store's, is then the same in every run (with more hosts or
/// fetches in flight it depends on timing, and so do the documents' places in the shards).
fn config(dir: &Path, farm: &Farm) -> PathBuf {
    documents(&dir.join("docs.jsonl"));
    // the farm's first host alone: its other hosts share 127.0.0.1, so they are in scope
    let seed = farm.seeds()[0].clone();
    let text = format!(
        r#"inputs = ["docs.jsonl"]

[import]
batch_size = 400

[crawl]
seeds = ["{seed}"]
include = ['^{seed}']
delay = 0.0
concurrency = 1

[crawl.fetch]
allow_private = true

[tokenizer]
vocab_size = 700

[encode]
val_fraction = 0.05
shard_tokens = 40000

[train]
max_steps = 30
checkpoint_every = 10
eval_every = 15
eval_batches = 2
batch_size = 4
seq_len = 32

[train.optim]
warmup_steps = 5
"#
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn pipeline(dir: &Path, out: &str) -> std::process::Command {
    let mut cmd = zhcorpus();
    cmd.current_dir(dir)
        .args(["pipeline", "--config", "pipeline.toml", "--output", out]);
    cmd
}

/// The files whose bytes must not depend on interruptions: every shard, the manifest, the
/// checkpoint.
fn outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for sub in ["shards", "run/checkpoint"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
            files.insert(name, std::fs::read(&path).unwrap());
        }
    }
    files
}

/// Starts the pipeline paused at `at` and kills it with SIGKILL there.
fn kill_at(dir: &Path, out: &str, at: &str) {
    let args = ["pipeline", "--config", "pipeline.toml", "--output", out];
    let mut child = paused(dir, &args, at);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn kill_9_anywhere_then_the_same_command_gives_identical_output() {
    let farm = Farm::start(FarmConfig {
        articles_per_host: 20,
        traps: false,
        crawl_delay: 0.0,
        latency: std::time::Duration::from_millis(10),
        ..FarmConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &farm);

    let first = ok(pipeline(dir.path(), "straight").output().unwrap());
    for stage in [
        "import",
        "crawl",
        "clean",
        "dedup",
        "tokenizer",
        "encode",
        "train",
    ] {
        assert!(first.contains(&format!("{stage:<10} ran")), "{first}");
    }
    let expected = outputs(&dir.path().join("straight"));
    assert!(expected.keys().any(|k| k.ends_with("model.safetensors")));
    assert!(expected.keys().filter(|k| k.ends_with(".bin")).count() >= 3);

    // a boundary (a stage's first phase starting) and a point inside each stage
    let points = [
        ("import:start", "import:2"),
        ("crawl:start", "crawl:2"),
        ("lines:start", "clean:1"),
        ("sketch:start", "sketch:1"),
        ("count:start", "merge:1"),
        ("encode:start", "encode:1"),
        ("train:start", "train:15"),
    ];
    for (k, at) in points.iter().flat_map(|(a, b)| [a, b]).enumerate() {
        let out = format!("killed-{k}");
        kill_at(dir.path(), &out, at);
        let again = ok(pipeline(dir.path(), &out).output().unwrap());
        assert!(
            again.contains("skipped: complete") || at.starts_with("import"),
            "{at}: {again}"
        );
        let got = outputs(&dir.path().join(&out));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "killed at {at}"
        );
        // the shards first: a model trained on other shards differs too
        for (name, bytes) in expected.iter().rev() {
            assert!(got[name] == *bytes, "killed at {at}: {name} differs");
        }
        // and once complete, nothing is redone
        let third = ok(pipeline(dir.path(), &out).output().unwrap());
        assert_eq!(
            third.matches("skipped: complete").count(),
            7,
            "{at}: {third}"
        );
    }
}

#[test]
fn from_reruns_a_stage_and_until_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    documents(&dir.path().join("docs.jsonl"));
    std::fs::write(
        dir.path().join("pipeline.toml"),
        "inputs = [\"docs.jsonl\"]\n[tokenizer]\nvocab_size = 600\n[train]\nmax_steps = 5\n",
    )
    .unwrap();
    let out = ok(pipeline(dir.path(), "o")
        .args(["--until", "dedup"])
        .output()
        .unwrap());
    assert!(out.contains("dedup      ran"), "{out}");
    assert!(out.contains("tokenizer  not reached"), "{out}");
    assert!(!dir.path().join("o/shards").exists());
    let out = ok(pipeline(dir.path(), "o").output().unwrap());
    assert!(out.contains("dedup      skipped: complete"), "{out}");
    assert!(out.contains("train      ran"), "{out}");
    let out = ok(pipeline(dir.path(), "o")
        .args(["--from", "dedup"])
        .output()
        .unwrap());
    assert!(out.contains("clean      skipped: complete"), "{out}");
    for stage in ["dedup", "tokenizer", "encode", "train"] {
        assert!(out.contains(&format!("{stage:<10} ran")), "{out}");
    }
    // a stage rerun by hand invalidates what came after it
    ok(run(dir.path(), &["clean", "--db", "o/corpus.db"]));
    let out = ok(pipeline(dir.path(), "o").output().unwrap());
    assert!(out.contains("clean      skipped: complete"), "{out}");
    assert!(out.contains("dedup      ran"), "{out}");
    assert!(out.contains("train      ran"), "{out}");
}

#[test]
fn a_bad_pipeline_file_exits_2_naming_the_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        "inputs = [\"docs.jsonl\"]\n\n[dedup]\nthreshhold = 0.7\n",
    )
    .unwrap();
    let o = run(dir.path(), &["pipeline", "--config", "p.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("p.toml:4") && err.contains("threshhold"),
        "{err}"
    );
    std::fs::write(dir.path().join("p.toml"), "[clean]\nmask_pii = true\n").unwrap();
    let o = run(dir.path(), &["pipeline", "--config", "p.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("inputs and crawl.seeds"),
        "{}",
        stderr(&o)
    );
}

/// Ctrl-C during training stops the pipeline after the step with a checkpoint (exit 130); the
/// same command resumes the run to its end.
#[test]
fn a_signal_during_training_stops_the_pipeline_and_the_same_command_resumes() {
    let dir = tempfile::tempdir().unwrap();
    documents(&dir.path().join("docs.jsonl"));
    std::fs::write(
        dir.path().join("pipeline.toml"),
        "inputs = [\"docs.jsonl\"]\n[tokenizer]\nvocab_size = 600\n\
         [train]\nmax_steps = 300\nbatch_size = 4\nseq_len = 32\n[train.optim]\nwarmup_steps = 5\n",
    )
    .unwrap();
    let child = pipeline(dir.path(), "o")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = dir.path().join("o/run/metrics.jsonl");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |t| t.lines().count()) < 5 {
        assert!(started.elapsed() < std::time::Duration::from_secs(120));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child
    #[allow(unsafe_code)]
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(r, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("interrupted in the train stage"),
        "{}",
        stderr(&o)
    );
    let done = train::checkpoint_step(&dir.path().join("o/run")).unwrap();
    assert!(done < 300, "{done}");
    let again = ok(pipeline(dir.path(), "o").output().unwrap());
    assert!(again.contains("encode     skipped: complete"), "{again}");
    assert!(again.contains("train      ran: 300 steps"), "{again}");
    assert_eq!(train::checkpoint_step(&dir.path().join("o/run")), Some(300));
}

/// A crawl that ended at its own limit is complete: the same command skips every stage and
/// keeps the trained model.
#[test]
fn a_crawl_ended_by_its_limit_is_complete() {
    let farm = Farm::start(FarmConfig {
        articles_per_host: 5,
        traps: false,
        crawl_delay: 0.0,
        ..FarmConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    documents(&dir.path().join("docs.jsonl"));
    let seed = farm.seeds()[0].clone();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        format!(
            "inputs = [\"docs.jsonl\"]\n[crawl]\nseeds = [\"{seed}\"]\ndelay = 0.0\nmax_pages = 3\n\
             [crawl.fetch]\nallow_private = true\n[tokenizer]\nvocab_size = 600\n\
             [train]\nmax_steps = 3\n[train.optim]\nwarmup_steps = 1\n"
        ),
    )
    .unwrap();
    let first = ok(pipeline(dir.path(), "o").output().unwrap());
    assert!(first.contains("crawl      ran: "), "{first}");
    let model = std::fs::read(dir.path().join("o/run/checkpoint/model.safetensors")).unwrap();
    let again = ok(pipeline(dir.path(), "o").output().unwrap());
    assert_eq!(again.matches("skipped: complete").count(), 7, "{again}");
    assert_eq!(
        std::fs::read(dir.path().join("o/run/checkpoint/model.safetensors")).unwrap(),
        model
    );
}
