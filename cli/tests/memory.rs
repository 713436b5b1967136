//! Memory stays flat as the corpus grows.
//!
//! This test has a binary of its own: Linux counts the memory a child had between fork and
//! exec in its peak RSS, so a child forked from a test process holding a large fixture would
//! seem to use that much. Keep other tests out of this file.

#![allow(unsafe_code)] // wait4(2), to read a child's peak RSS

mod common;

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Stdio;

use common::{count, zhcorpus};

/// Imports `n` generated documents streamed through standard input and returns the import's
/// peak resident set size in bytes.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also returns its rusage
fn import_peak_rss(dir: &Path, n: usize) -> u64 {
    let mut child = zhcorpus()
        .current_dir(dir)
        .args(["import", "-i", "-", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut w = BufWriter::new(stdin);
        let mut rng = tests::Rng::new(23);
        for i in 0..n {
            let d = tests::generate_document(&mut rng, i);
            writeln!(w, "{}", d.to_json()).unwrap();
        }
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    writer.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "import failed"
    );
    usage.ru_maxrss as u64 * 1024
}

/// Peak memory of an import does not grow with the corpus. Bound: SQLite's page cache
/// (16 MiB, set by the store), at most three batches of parsed documents alive (being parsed,
/// queued, being written: 3 x 1,000 short documents, a few MiB), the binary, two thread stacks
/// and two malloc arenas (about 15 MiB) stay under 48 MiB. Measured: about 19 MiB at 20k
/// documents and 30 MiB at 1M (the page cache filling up). Holding the documents or even their
/// ids would add 40 MiB or more at 1M and fail this.
#[test]
fn import_memory_stays_flat_up_to_a_million_documents() {
    const MIB: u64 = 1 << 20;
    let small_dir = tempfile::tempdir().unwrap();
    let small = import_peak_rss(small_dir.path(), 20_000);
    let big_dir = tempfile::tempdir().unwrap();
    let big = import_peak_rss(big_dir.path(), 1_000_000);
    assert_eq!(count(&big_dir.path().join("corpus.db")), 1_000_000);
    eprintln!(
        "peak RSS: {:.1} MiB at 20k documents, {:.1} MiB at 1M",
        small as f64 / MIB as f64,
        big as f64 / MIB as f64
    );
    assert!(big < 48 * MIB, "peak RSS {big} bytes at 1M documents");
    // the page cache fills up to its 16 MiB limit on the big import only
    assert!(big < small + 20 * MIB, "{small} -> {big}");
}
