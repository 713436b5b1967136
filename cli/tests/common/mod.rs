//! Running the real `zhcorpus` binary in tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub fn zhcorpus() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhcorpus"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// Runs the binary with `args` in `dir` and returns its output.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    zhcorpus()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("zhcorpus runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Writes `docs` as canonical JSONL (what `export` writes).
pub fn write_jsonl(path: &Path, docs: &[corpus::Document]) {
    let mut w = corpus::JsonlWriter::create(path).unwrap();
    for d in docs {
        w.write(d).unwrap();
    }
    w.finish().unwrap();
}

/// Number of documents in a database, read without the CLI.
pub fn count(db: &Path) -> u64 {
    corpus::Store::open_existing(db)
        .unwrap()
        .document_count()
        .unwrap()
}

/// Starts `args` paused at `at` (see the CLI's progress) and waits until it says so.
pub fn paused(dir: &Path, args: &[&str], at: &str) -> Child {
    let mut child = zhcorpus()
        .current_dir(dir)
        .args(args)
        .env("ZHCORPUS_PAUSE_AT", at)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut said = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.contains("paused at") {
            return child;
        }
        said.push_str(&line);
    }
    let status = child.wait();
    panic!("{args:?} never reached {at} ({status:?}): {said}");
}
