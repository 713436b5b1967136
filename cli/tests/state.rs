//! Trustworthy state between runs and stages: "kept" means judged, one writer per stage,
//! no silent overwrite, signals, refusals, numbers, output paths, invalid input, pipes, logs,
//! file modes. Each test pins one reproduced defect, through the real binary.

#![allow(unsafe_code)] // kill(2)

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn signal(child: &Child, sig: libc::c_int) {
    let r = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(r, 0);
}

/// `n` generated documents of about 200 characters, which the cleaner keeps.
fn documents(path: &Path, n: usize, seed: u64) {
    let mut rng = tests::Rng::new(seed);
    let docs: Vec<corpus::Document> = (0..n)
        .map(|i| corpus::Document::new(format!("d{seed}-{i}"), tests::generate_text(&mut rng, 200)))
        .collect();
    write_jsonl(path, &docs);
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn code(o: &std::process::Output) -> Option<i32> {
    o.status.code()
}

/// Item 1: documents imported after a clean run, or left by an interrupted one, are unjudged:
/// not kept, counted, and the later stages refuse to run on them.
#[test]
fn unjudged_documents_are_not_kept_and_later_stages_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    documents(&d.join("a.jsonl"), 50, 1);
    ok(run(d, &["import", "-i", "a.jsonl"]));
    ok(run(d, &["clean"]));
    std::fs::write(d.join("late.jsonl"), "{\"id\":\"late\",\"text\":\"aaa\"}\n").unwrap();
    ok(run(d, &["import", "-i", "late.jsonl"]));
    let o = run(d, &["export", "--kept-only", "-o", "kept.jsonl"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let kept = std::fs::read_to_string(d.join("kept.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), 50);
    assert!(!kept.contains("\"late\""));
    assert!(
        stderr(&o).contains("1 documents left out as unjudged"),
        "{}",
        stderr(&o)
    );
    let stats: serde_json::Value = serde_json::from_str(&ok(run(d, &["stats", "--json"]))).unwrap();
    assert_eq!(stats["kept"], 50);
    assert_eq!(stats["unjudged"]["clean"], 1);
    assert!(ok(run(d, &["stats"])).contains("unjudged    1 without a clean verdict"));
    for args in [
        vec!["dedup"],
        vec![
            "tokenizer",
            "train",
            "--vocab-size",
            "300",
            "-o",
            "t/tokenizer.json",
        ],
        vec!["tokenizer", "encode", "-t", "bytes", "-o", "s"],
    ] {
        let o = run(d, &args);
        assert_eq!(code(&o), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("1 documents have no clean verdict")
                && stderr(&o).contains("run `zhcorpus clean` first"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // judged again, the late document is rejected and nothing is unjudged
    ok(run(d, &["clean"]));
    ok(run(d, &["dedup"]));
    let stats: serde_json::Value = serde_json::from_str(&ok(run(d, &["stats", "--json"]))).unwrap();
    assert_eq!(stats["unjudged"]["clean"], 0);
    assert_eq!(stats["kept"], 50);
}

/// Items 1 and 3: a clean killed in the middle is shown as interrupted, its unjudged
/// documents are not kept, and dedup refuses; while a clean runs, a second clean and a dedup
/// are refused naming it.
#[test]
fn an_interrupted_clean_is_shown_as_such_and_a_running_one_excludes_writers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    documents(&d.join("a.jsonl"), 2500, 2);
    ok(run(d, &["import", "-i", "a.jsonl"]));
    let first = paused(d, &["clean"], "clean:1");
    let o = run(d, &["clean"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("another `zhcorpus clean`") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    let o = run(d, &["dedup"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is still running"), "{}", stderr(&o));
    // readers stay allowed
    let stats: serde_json::Value = serde_json::from_str(&ok(run(d, &["stats", "--json"]))).unwrap();
    assert_eq!(stats["runs"][0]["status"], "running");
    kill(first);

    let stats: serde_json::Value = serde_json::from_str(&ok(run(d, &["stats", "--json"]))).unwrap();
    assert_eq!(stats["runs"][0]["stage"], "clean");
    assert_eq!(stats["runs"][0]["status"], "interrupted");
    assert_eq!(stats["unjudged"]["clean"], 1500);
    assert_eq!(stats["clean"]["judged"], 1000);
    assert_eq!(stats["kept"], stats["clean"]["kept"]);
    let o = run(d, &["dedup"]);
    assert_eq!(code(&o), Some(2));
    assert!(stderr(&o).contains("was interrupted"), "{}", stderr(&o));
    ok(run(d, &["clean"]));
    ok(run(d, &["dedup"]));
}

/// Item 3: a second crawl on the store is refused at once, and the crawl that holds it
/// fetches every URL once.
#[test]
fn a_second_crawl_on_the_store_is_refused_and_nothing_is_fetched_twice() {
    let farm = farm::Farm::start(farm::FarmConfig {
        articles_per_host: 10,
        traps: false,
        crawl_delay: 0.0,
        latency: Duration::from_millis(5),
        ..farm::FarmConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("seeds.txt"), farm.seeds().join("\n") + "\n").unwrap();
    let args = [
        "crawl",
        "--seeds",
        "seeds.txt",
        "--allow-private",
        "--delay",
        "0.05",
    ];
    let first = paused(d, &args, "crawl:2");
    let started = Instant::now();
    let o = run(d, &args);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        stderr(&o).contains(&format!("another `zhcorpus crawl` (pid {}", first.id())),
        "{}",
        stderr(&o)
    );
    kill(first);
    let o = run(d, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut seen = std::collections::HashMap::new();
    for r in farm.requests() {
        *seen.entry((r.host, r.path.clone())).or_insert(0) += 1;
    }
    // the page in flight when the first crawl was killed may be asked twice, nothing else
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.len() <= 1, "{twice:?}");
}

/// Item 7: a seed the address guard refuses exits 2 at once, naming --allow-private.
#[test]
fn a_private_seed_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = run(dir.path(), &["crawl", "http://127.0.0.1:1/"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--allow-private"), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Shards of generated documents, bytes as tokens.
fn shards(d: &Path) {
    documents(&d.join("t.jsonl"), 40, 3);
    ok(run(
        d,
        &[
            "tokenizer",
            "encode",
            "-i",
            "t.jsonl",
            "-t",
            "bytes",
            "-o",
            "shards",
        ],
    ));
}

fn train(d: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--data",
        "shards",
        "--output",
        "run",
        "--seq-len",
        "32",
    ];
    args.extend(extra);
    run(d, &args)
}

fn metrics(d: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(d.join("run/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Items 2, 5, 6: a run folder is not overwritten without --overwrite; --resume before the
/// first checkpoint names what is missing; a larger --max-steps extends a finished run, its
/// learning rate going down from where it stood; changing the model is still refused.
#[test]
fn train_refuses_overwrites_and_extends_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    std::fs::write(d.join("w.toml"), "[optim]\nwarmup_steps = 2\n").unwrap();
    // 10 of 20 steps (256 tokens a step)
    ok(train(
        d,
        &[
            "--config",
            "w.toml",
            "--max-steps",
            "20",
            "--max-tokens",
            "2560",
        ],
    ));
    let o = train(d, &["--config", "w.toml", "--max-steps", "5"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already holds a run (10 steps)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(metrics(d).len(), 10);

    let out = ok(train(
        d,
        &["--config", "w.toml", "--resume", "--max-steps", "40"],
    ));
    assert!(out.contains("trained 40 steps (30 this run)"), "{out}");
    let m = metrics(d);
    assert_eq!(m.len(), 40);
    let lr = |i: usize| m[i]["lr"].as_f64().unwrap();
    // from where the 20-step schedule stood at step 11, down to min_lr at the new end
    assert!(
        lr(10) <= lr(9) && lr(10) > 3e-4,
        "{} then {}",
        lr(9),
        lr(10)
    );
    for i in 11..40 {
        assert!(
            lr(i) < lr(i - 1),
            "step {}: {} after {}",
            i + 1,
            lr(i),
            lr(i - 1)
        );
    }
    assert!((lr(39) - 6e-5).abs() < 1e-5, "{}", lr(39));
    let o = train(
        d,
        &[
            "--config",
            "w.toml",
            "--resume",
            "--max-steps",
            "50",
            "--batch-size",
            "3",
        ],
    );
    assert_eq!(code(&o), Some(2));
    assert!(stderr(&o).contains("other settings"), "{}", stderr(&o));
    // resumed again, the re-planned tail is kept
    ok(train(
        d,
        &["--config", "w.toml", "--resume", "--max-steps", "40"],
    ));
    assert_eq!(metrics(d).len(), 40);

    ok(train(d, &["--overwrite", "--max-steps", "3"]));
    assert_eq!(metrics(d).len(), 3);

    // killed before its first checkpoint
    std::fs::remove_dir_all(d.join("run")).unwrap();
    let child = paused(
        d,
        &[
            "train",
            "--data",
            "shards",
            "--output",
            "run",
            "--seq-len",
            "32",
            "--max-steps",
            "50",
        ],
        "train:3",
    );
    kill(child);
    let o = train(d, &["--resume"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("run has no checkpoint yet: start it again without --resume"),
        "{}",
        stderr(&o)
    );
    // and started again, it needs no --overwrite
    ok(train(d, &["--max-steps", "2"]));
}

/// The same extension with the warmup-stable-decay schedule keeps the stable rate.
#[test]
fn a_wsd_run_extends_at_its_stable_rate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    std::fs::write(
        d.join("t.toml"),
        "[optim]\nschedule = \"wsd\"\nwarmup_steps = 2\n",
    )
    .unwrap();
    ok(train(
        d,
        &[
            "--config",
            "t.toml",
            "--max-steps",
            "20",
            "--max-tokens",
            "2560",
        ],
    ));
    assert_eq!(metrics(d).len(), 10);
    ok(train(d, &["--resume", "--max-steps", "40"]));
    let m = metrics(d);
    let lr = |i: usize| m[i]["lr"].as_f64().unwrap();
    // stable at the peak until the last fifth of the 40 steps
    for i in 2..32 {
        assert_eq!(lr(i), 6e-4, "step {}", i + 1);
    }
    assert!(lr(39) < lr(32));
}

/// Item 4: SIGINT or SIGTERM finishes the step, writes a checkpoint and exits 130; the run
/// resumes from it. A stage that cannot stop early exits 130 at once.
#[test]
fn a_signal_stops_training_with_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let _ = std::fs::remove_dir_all(d.join("run"));
        let child = zhcorpus()
            .current_dir(d)
            .args([
                "train",
                "--data",
                "shards",
                "--output",
                "run",
                "--seq-len",
                "32",
            ])
            .args(["--max-steps", "100000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while metrics_lines(d) < 5 {
            assert!(started.elapsed() < Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(20));
        }
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), Some(130), "{}", stderr(&o));
        let steps = metrics(d).len() as u64;
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join("run/checkpoint/state.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            state["step"], steps,
            "the checkpoint holds every finished step"
        );
        assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    }
    let out = ok(train(d, &["--resume", "--max-tokens", "8192"]));
    assert!(out.contains("this run)"), "{out}");

    // clean commits batch by batch and stops at once
    documents(&d.join("c.jsonl"), 2500, 4);
    ok(run(d, &["import", "-i", "c.jsonl"]));
    let child = paused(d, &["clean"], "clean:1");
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), Some(130));
}

fn metrics_lines(d: &Path) -> usize {
    std::fs::read_to_string(d.join("run/metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Item 8: numbers that cannot work exit 2 naming the setting; a warmup as long as the run
/// is warned about; sample's top-k 0 means no filtering.
#[test]
fn numbers_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    for (extra, key) in [
        (vec!["--lr", "nan"], "optim.lr"),
        (vec!["--lr=-1"], "optim.lr"),
        (vec!["--grad-accum", "0"], "grad_accum"),
        (vec!["--batch-size", "0"], "batch_size"),
    ] {
        let o = train(d, &extra);
        assert_eq!(code(&o), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(key), "{extra:?}: {}", stderr(&o));
        assert!(!d.join("run").exists(), "{extra:?} left a run folder");
    }
    for (args, key) in [
        (
            vec!["crawl", "--max-attempts", "0", "http://a.cn/"],
            "max_attempts",
        ),
        (vec!["crawl", "--timeout", "0", "http://a.cn/"], "timeout"),
        (
            vec!["tokenizer", "train", "-i", "t.jsonl", "--vocab-size", "100"],
            "vocab_size",
        ),
    ] {
        let o = run(d, &args);
        assert_eq!(code(&o), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(key), "{args:?}: {}", stderr(&o));
    }
    // 0 steps: the initialised model as the step-0 checkpoint, to start another trainer from
    let o = train(d, &["--max-steps", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(train::checkpoint_step(&d.join("run")), Some(0));
    assert_eq!(metrics_lines(d), 0);
    std::fs::remove_dir_all(d.join("run")).unwrap();
    let o = train(d, &["--max-steps", "5"]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("never reaches its peak"),
        "{}",
        stderr(&o)
    );
    let o = run(
        d,
        &["sample", "--checkpoint", "run", "--temperature", "nan"],
    );
    assert_eq!(code(&o), Some(2));
    let out = ok(run(
        d,
        &[
            "sample",
            "--checkpoint",
            "run/checkpoint",
            "--top-k",
            "0",
            "--tokens",
            "5",
            "--ignore-eot",
        ],
    ));
    assert!(!out.is_empty());
}

/// Item 9: outputs are checked before the work, missing folders are created, and nothing
/// temporary is left behind.
#[test]
fn outputs_are_checked_first_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    documents(&d.join("a.jsonl"), 30, 5);
    ok(run(d, &["import", "-i", "a.jsonl"]));
    std::fs::create_dir(d.join("adir")).unwrap();
    for args in [
        vec!["export", "-o", "adir"],
        vec!["clean", "-i", "a.jsonl", "-o", "adir"],
        vec!["dedup", "-i", "a.jsonl", "-o", "adir"],
    ] {
        let o = run(d, &args);
        assert_eq!(code(&o), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("adir is a folder"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    ok(run(d, &["export", "-o", "new/deeper/all.jsonl"]));
    assert!(d.join("new/deeper/all.jsonl").exists());
    ok(run(
        d,
        &[
            "clean",
            "-i",
            "a.jsonl",
            "-o",
            "c/kept.jsonl",
            "--rejected",
            "c2/r.jsonl",
        ],
    ));
    let mut left = Vec::new();
    for entry in walk(d) {
        let name = entry.to_string_lossy().into_owned();
        if name.ends_with(".partial") || name.ends_with(".tmp") {
            left.push(name);
        }
    }
    assert!(left.is_empty(), "{left:?}");
}

fn walk(d: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// Item 10: invalid UTF-8 is named with file, line and byte; --skip-invalid counts it and
/// goes on, in every stage that reads files.
#[test]
fn invalid_utf8_is_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut bad = b"\xe7\x9a\x84\xe4\xb8\x80 first line\n".to_vec();
    bad.extend_from_slice(b"ok \xff\xfe here\n");
    bad.extend_from_slice("第三行文字\n".as_bytes());
    std::fs::write(d.join("bad.txt"), &bad).unwrap();
    let train_bad = [
        "tokenizer",
        "train",
        "-i",
        "bad.txt",
        "--vocab-size",
        "300",
        "-o",
        "t/t.json",
    ];
    let o = run(d, &train_bad);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bad.txt:2: invalid UTF-8 at byte 3"),
        "{}",
        stderr(&o)
    );
    let mut skipping = train_bad.to_vec();
    skipping.push("--skip-invalid");
    let out = ok(run(d, &skipping));
    assert!(out.contains("1 invalid input lines skipped"), "{out}");

    documents(&d.join("a.jsonl"), 20, 6);
    let mut lines = std::fs::read(d.join("a.jsonl")).unwrap();
    lines.extend_from_slice(b"{\"id\":\"x\",\"text\":\"\xff\"}\n");
    std::fs::write(d.join("b.jsonl"), &lines).unwrap();
    for args in [
        vec!["clean", "-i", "b.jsonl", "-o", "k.jsonl"],
        vec!["dedup", "-i", "b.jsonl", "-o", "k.jsonl"],
        vec![
            "tokenizer",
            "encode",
            "-i",
            "b.jsonl",
            "-t",
            "bytes",
            "-o",
            "s",
        ],
    ] {
        let o = run(d, &args);
        assert_eq!(code(&o), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains("b.jsonl:21: invalid UTF-8 at byte"),
            "{args:?}: {}",
            stderr(&o)
        );
        let mut a = args.clone();
        a.push("--skip-invalid");
        let out = ok(run(d, &a));
        assert!(
            out.contains("1 invalid input lines skipped"),
            "{args:?}: {out}"
        );
    }
}

/// Item 11: a reader that goes away ends the command quietly, with exit 0.
#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    documents(&d.join("a.jsonl"), 3000, 7);
    ok(run(d, &["import", "-i", "a.jsonl"]));
    // outputs far larger than a pipe's buffer, so the writer meets the closed pipe
    for args in [
        vec!["export"],
        vec!["clean", "-i", "a.jsonl", "-o", "-"],
        vec!["dedup", "-i", "a.jsonl", "-o", "-"],
    ] {
        let mut child = zhcorpus()
            .current_dir(d)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        let _ = stdout.read(&mut first).unwrap();
        drop(stdout);
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), Some(0), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("error"), "{args:?}: {}", stderr(&o));
    }
}

/// Item 12: no colour off a terminal; -v says what a stage does; --quiet leaves errors only.
#[test]
fn logs_fit_where_they_go() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    documents(&d.join("a.jsonl"), 20, 8);
    ok(run(d, &["import", "-i", "a.jsonl"]));
    ok(run(d, &["clean"]));
    ok(run(d, &["import", "-i", "a.jsonl", "--source", "x"]));
    std::fs::write(d.join("late.jsonl"), "{\"id\":\"late\",\"text\":\"aaa\"}\n").unwrap();
    ok(run(d, &["import", "-i", "late.jsonl"]));
    let o = run(d, &["export", "--kept-only", "-o", "k.jsonl"]);
    assert!(stderr(&o).contains("WARN"), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\x1b'), "{:?}", stderr(&o));
    let o = run(d, &["-q", "export", "--kept-only", "-o", "k.jsonl"]);
    assert_eq!(stderr(&o), "");
    for args in [vec!["-v", "clean"], vec!["-v", "dedup"]] {
        let o = run(d, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("INFO"), "{args:?}: {}", stderr(&o));
    }
}

/// Item 14: checkpoints and exported models are as readable as any file the user makes.
#[test]
fn model_files_get_the_usual_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    ok(train(d, &["--max-steps", "2"]));
    ok(run(d, &["hf-export", "--checkpoint", "run", "-o", "hf"]));
    std::fs::write(d.join("probe"), "").unwrap();
    let usual = std::fs::metadata(d.join("probe"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    for f in [
        "run/checkpoint/model.safetensors",
        "run/checkpoint/optimizer.safetensors",
        "hf/model.safetensors",
    ] {
        let mode = std::fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, usual, "{f}: {mode:o}");
    }
}

/// Item 7: a host whose robots.txt never answers is given up after --max-attempts tries,
/// its URLs get failure rows, and the summary says why.
#[test]
fn a_host_whose_robots_txt_never_answers_is_given_up_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let seed = format!("http://127.0.0.1:{port}/");
    let out = ok(run(
        d,
        &["crawl", "--allow-private", "--max-attempts", "2", &seed],
    ));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(out.contains("robots_unavailable"), "{out}");
    assert!(
        out.contains(&format!(
            "host 127.0.0.1:{port} left alone: robots.txt unavailable"
        )),
        "{out}"
    );
    let conn = rusqlite::Connection::open(d.join("corpus.db")).unwrap();
    let failed: i64 = conn
        .query_row(
            "SELECT count(*) FROM pages WHERE error_class = 'robots_unavailable'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 1);
    // out of the host's error budget first: the URLs fail all the same
    let d2 = dir.path().join("again");
    std::fs::create_dir(&d2).unwrap();
    let out = ok(run(
        &d2,
        &[
            "crawl",
            "--allow-private",
            "--max-attempts",
            "5",
            "--host-error-budget",
            "1",
            &seed,
        ],
    ));
    assert!(out.contains("robots_unavailable"), "{out}");
}

/// Exporting a model never writes over the run it reads, nor into a folder of other files;
/// settings that make a NaN run are refused; train's settings print without shards.
#[test]
fn exports_and_runs_are_not_overwritten_by_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    ok(train(d, &["--max-steps", "2"]));
    let model = std::fs::read(d.join("run/checkpoint/model.safetensors")).unwrap();
    for out in ["run", "run/checkpoint", "shards", "."] {
        let o = run(d, &["hf-export", "--checkpoint", "run", "-o", out]);
        assert_eq!(code(&o), Some(2), "{out}: {}", stderr(&o));
    }
    assert_eq!(
        std::fs::read(d.join("run/checkpoint/model.safetensors")).unwrap(),
        model
    );
    ok(run(d, &["hf-export", "--checkpoint", "run", "-o", "hf"]));
    ok(run(d, &["hf-export", "--checkpoint", "run", "-o", "hf"]));
    for text in ["[model]\nnorm_eps = nan\n", "[model]\nrope_theta = 0.0\n"] {
        std::fs::write(d.join("m.toml"), text).unwrap();
        let o = train(
            d,
            &["--overwrite", "--config", "m.toml", "--max-steps", "3"],
        );
        assert_eq!(code(&o), Some(2), "{text}: {}", stderr(&o));
    }
    let printed = ok(run(d, &["train", "--print-config"]));
    assert!(printed.contains("vocab_size = 1024"), "{printed}");
}

/// Review findings: a clean run again after dedup makes dedup's verdicts stale; a signal in a
/// stage that stops at once leaves no `.partial` output; a foreign model folder is not an
/// export to replace; --overwrite keeps the old run when the new one cannot start.
#[test]
fn stale_verdicts_partial_outputs_foreign_folders_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    documents(&d.join("a.jsonl"), 30, 9);
    ok(run(d, &["import", "-i", "a.jsonl"]));
    ok(run(d, &["clean"]));
    ok(run(d, &["dedup"]));
    ok(run(d, &["clean"]));
    let o = run(d, &["tokenizer", "encode", "-t", "bytes", "-o", "s"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("clean ran again after it"),
        "{}",
        stderr(&o)
    );

    documents(&d.join("big.jsonl"), 2500, 10);
    let child = paused(
        d,
        &["clean", "-i", "big.jsonl", "-o", "out.jsonl"],
        "clean:1",
    );
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), Some(130));
    assert!(!d.join("out.jsonl.partial").exists());
    assert!(!d.join("out.jsonl").exists());

    shards(d);
    ok(train(d, &["--max-steps", "2"]));
    std::fs::create_dir(d.join("other")).unwrap();
    std::fs::write(
        d.join("other/config.json"),
        "{\"architectures\":[\"Qwen2ForCausalLM\"]}",
    )
    .unwrap();
    let o = run(d, &["hf-export", "--checkpoint", "run", "-o", "other"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    std::fs::remove_file(d.join("shards/train_000000.bin")).unwrap();
    let o = train(d, &["--overwrite", "--max-steps", "3"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert_eq!(metrics(d).len(), 2, "the old run is still there");
}
