//! A killed import leaves a consistent database, whatever the moment of the kill.

#![allow(unsafe_code)] // kill(2) with SIGKILL

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{count, ok, run, write_jsonl, zhcorpus};
use corpus::{Selection, Store};

/// Waits until `cond` holds, checking every few milliseconds, for at most a minute.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Documents stored, or 0 while the database is not there yet.
fn stored(db: &Path) -> u64 {
    if db.exists() {
        Store::open_existing(db)
            .and_then(|s| s.document_count())
            .unwrap_or(0)
    } else {
        0
    }
}

fn kill_9(child: &mut Child) {
    assert!(
        child.try_wait().unwrap().is_none(),
        "the import finished before it could be killed"
    );
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(r, 0);
    child.wait().unwrap();
}

/// Checks the database after a kill: SQLite's integrity check passes and the documents stored
/// are exactly the first `n` of `docs`, whole.
fn assert_prefix(db: &Path, docs: &[corpus::Document]) -> usize {
    let store = Store::open_existing(db).unwrap();
    let back: Vec<_> = store
        .documents(Selection::All)
        .map(|d| d.unwrap().doc)
        .collect();
    assert_eq!(back[..], docs[..back.len()]);
    let conn = rusqlite::Connection::open(db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let dangling: i64 = conn
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(dangling, 0);
    back.len()
}

#[test]
fn kill_9_between_batches_keeps_every_finished_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let docs = tests::generate_documents(12_000, 21);
    let mut child = zhcorpus()
        .current_dir(dir.path())
        .args(["import", "-i", "-", "--batch-size", "1000", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // ten full batches and half of the eleventh; standard input stays open, so the import is
    // waiting for more in the middle of a batch when it is killed
    for d in &docs[..10_500] {
        writeln!(stdin, "{}", d.to_json()).unwrap();
    }
    stdin.flush().unwrap();
    wait_until("ten batches", || stored(&db) >= 10_000);
    kill_9(&mut child);
    drop(stdin);
    assert_eq!(assert_prefix(&db, &docs), 10_000);

    // the same import again completes it, each document once
    write_jsonl(&dir.path().join("all.jsonl"), &docs);
    let out = ok(run(dir.path(), &["import", "-i", "all.jsonl"]));
    assert!(out.contains("imported 2000 new documents"), "{out}");
    assert!(out.contains("10000 already stored"), "{out}");
    assert_eq!(assert_prefix(&db, &docs), 12_000);
}

#[test]
fn kill_9_anywhere_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let docs = tests::generate_documents(300_000, 22);
    write_jsonl(&dir.path().join("big.jsonl"), &docs);
    let mut child = zhcorpus()
        .current_dir(dir.path())
        .args([
            "import",
            "-i",
            "big.jsonl",
            "--batch-size",
            "2000",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // kill while batches are being written, at no particular point
    wait_until("the first batches", || stored(&db) >= 6_000);
    kill_9(&mut child);
    let n = assert_prefix(&db, &docs);
    assert!((6_000..300_000).contains(&n), "{n}");
    assert_eq!(n % 2000, 0, "only whole batches are stored");

    ok(run(dir.path(), &["import", "-i", "big.jsonl", "--quiet"]));
    assert_eq!(count(&db), 300_000);
    assert_eq!(assert_prefix(&db, &docs), 300_000);
}
