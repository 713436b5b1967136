//! Memory stays flat as the corpus grows, and within the bound a command is given.
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

/// The tests here run one at a time: a child forked while another test's thread holds memory
/// would count it in its peak.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits for a child and returns its peak resident set size in bytes, asserting it succeeded.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also returns its rusage
fn peak_rss(child: std::process::Child, what: &str) -> u64 {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what} failed"
    );
    usage.ru_maxrss as u64 * 1024
}

/// Imports `n` generated documents streamed through standard input and returns the import's
/// peak resident set size in bytes.
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
    let peak = peak_rss(child, "import");
    writer.join().unwrap();
    peak
}

/// Peak memory of an import does not grow with the corpus. Bound: SQLite's page cache
/// (16 MiB, set by the store), at most three batches of parsed documents alive (being parsed,
/// queued, being written: 3 x 1,000 short documents, a few MiB), the binary, two thread stacks
/// and two malloc arenas (about 15 MiB) stay under 48 MiB. Measured: about 19 MiB at 20k
/// documents and 30 MiB at 1M (the page cache filling up). Holding the documents or even their
/// ids would add 40 MiB or more at 1M and fail this.
#[test]
fn import_memory_stays_flat_up_to_a_million_documents() {
    let _serial = one_at_a_time();
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

/// Trains a small vocabulary on `text` with `--memory-mib mib` and returns the peak RSS and
/// what the command printed.
fn tokenizer_peak_rss(dir: &Path, text: &Path, mib: u64) -> (u64, String) {
    let out = dir.join(format!("out-{mib}.txt"));
    let child = zhcorpus()
        .current_dir(dir)
        .args(["tokenizer", "train", "-i"])
        .arg(text)
        .args(["--vocab-size", "400", "--memory-mib", &mib.to_string()])
        .args(["-o", &format!("tok-{mib}/tokenizer.json")])
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    let peak = peak_rss(child, "tokenizer train");
    (peak, std::fs::read_to_string(out).unwrap())
}

/// Tokenizer training holds what `--memory-mib` says. The text is the worst case for the piece
/// table: random characters, so nearly every piece is new (12 MB, about 400,000 distinct
/// pieces). Unbounded, training it peaks near 300 MiB; bounded to 64 MiB, it trains on the
/// sample of the documents whose table fits, and stays under 64 MiB.
#[test]
fn tokenizer_training_stays_within_memory_mib() {
    let _serial = one_at_a_time();
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("random.txt");
    {
        let mut w = BufWriter::new(std::fs::File::create(&text).unwrap());
        let mut rng = tests::Rng::new(31);
        for _ in 0..20_000 {
            writeln!(w, "{}", tests::generate_text(&mut rng, 200)).unwrap();
        }
    }
    let (unbounded, _) = tokenizer_peak_rss(dir.path(), &text, 0);
    let (bounded, printed) = tokenizer_peak_rss(dir.path(), &text, 64);
    eprintln!(
        "peak RSS: {:.1} MiB unbounded, {:.1} MiB with --memory-mib 64",
        unbounded as f64 / MIB as f64,
        bounded as f64 / MIB as f64
    );
    assert!(printed.contains("% sample of them"), "{printed}");
    assert!(
        bounded < 64 * MIB,
        "peak RSS {bounded} bytes with --memory-mib 64"
    );
    assert!(
        unbounded > 3 * bounded,
        "{unbounded} unbounded, {bounded} bounded"
    );
}

/// Writes `n` generated short documents to `path`, one in twenty an exact copy of the
/// document 1,000 before it, streaming (the test process holds none of them).
fn write_documents(path: &Path, n: usize) {
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    let mut rng = tests::Rng::new(41);
    let mut texts: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for i in 0..n {
        let mut d = tests::generate_document(&mut rng, i);
        if i % 20 == 19 && texts.len() == 1000 {
            d.text = texts[0].clone();
        }
        texts.push_back(d.text.clone());
        if texts.len() > 1000 {
            texts.pop_front();
        }
        writeln!(w, "{}", d.to_json()).unwrap();
    }
}

/// Deduplicates `input` file to file under `--memory-mib mib`; returns the peak RSS and the
/// number of documents kept.
fn dedup_peak_rss(dir: &Path, input: &Path, mib: u64) -> (u64, usize) {
    let kept = dir.join("kept.jsonl");
    let child = zhcorpus()
        .current_dir(dir)
        .args([
            "dedup",
            "--quiet",
            "--memory-mib",
            &mib.to_string(),
            "--input",
        ])
        .arg(input)
        .arg("--output")
        .arg(&kept)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let peak = peak_rss(child, "dedup");
    // counted through a small buffer: this process must stay small for the next test's child
    let mut r = std::io::BufReader::new(std::fs::File::open(&kept).unwrap());
    let (mut lines, mut line) = (0, String::new());
    while std::io::BufRead::read_line(&mut r, &mut line).unwrap() > 0 {
        lines += 1;
        line.clear();
    }
    (peak, lines)
}

/// Dedup holds nothing per document: memory is the budget, a chunk of documents being
/// sketched and the duplicates being clustered, whatever the corpus size. From 40,000 to
/// 400,000 documents under --memory-mib 4 (both spill their keys) the peak grows by less
/// than 12 MiB: 18,000 more duplicates, and more sorted runs to merge. Holding the document
/// table, the outcomes or the ids in memory, as dedup did before, adds about 200 bytes a
/// document (70 MiB here) and fails this.
#[test]
fn dedup_memory_stays_flat_under_memory_mib() {
    let _serial = one_at_a_time();
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let small_input = dir.path().join("small.jsonl");
    let big_input = dir.path().join("big.jsonl");
    write_documents(&small_input, 40_000);
    write_documents(&big_input, 400_000);
    let (small, small_kept) = dedup_peak_rss(dir.path(), &small_input, 4);
    let (big, big_kept) = dedup_peak_rss(dir.path(), &big_input, 4);
    eprintln!(
        "peak RSS under --memory-mib 4: {:.1} MiB at 40k documents, {:.1} MiB at 400k",
        small as f64 / MIB as f64,
        big as f64 / MIB as f64
    );
    // the planted copies are removed (a copy of a copy is one too)
    assert_eq!(small_kept, 40_000 - (40_000 - 1000) / 20);
    assert_eq!(big_kept, 400_000 - (400_000 - 1000) / 20);
    assert!(big < small + 12 * MIB, "{small} -> {big}");
    assert!(big < 64 * MIB, "peak RSS {big} bytes at 400k documents");
}

/// Writes `n` documents over a thousand hosts, each of 30 lines of 11 random Han characters
/// (every line distinct) and its host's footer, which recurs in every document of the host:
/// once in each batch of a thousand documents the first pass counts.
fn write_line_documents(path: &Path, n: usize) {
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    let han: Vec<char> = tests::HAN.chars().collect();
    let mut rng = tests::Rng::new(53);
    for i in 0..n {
        let mut text = String::new();
        for _ in 0..30 {
            text.extend((0..11).map(|_| han[rng.below(han.len())]));
            text.push_str("。\n");
        }
        text.push_str(&format!("欢迎光临第{}号站点的新闻频道", i % 1000));
        let doc = serde_json::json!({"id": format!("d{i}"), "text": text, "source": format!("site{}", i % 1000)});
        writeln!(w, "{doc}").unwrap();
    }
}

/// Cleans `input` file to file with `line_memory_entries` set; returns the peak RSS and the
/// kept file's text.
fn clean_peak_rss(dir: &Path, input: &Path, entries: usize) -> (u64, String) {
    let config = dir.join(format!("clean-{entries}.toml"));
    std::fs::write(&config, format!("line_memory_entries = {entries}\n")).unwrap();
    let kept = dir.join(format!("kept-{entries}.jsonl"));
    let _ = std::fs::remove_file(&kept);
    let child = zhcorpus()
        .current_dir(dir)
        .args(["clean", "--quiet", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(&kept)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let peak = peak_rss(child, "clean");
    (peak, std::fs::read_to_string(kept).unwrap())
}

/// Clean's first pass holds at most `line_memory_entries` distinct lines, however many the
/// corpus has, and the bound costs no recurring line. 16,000 documents hold 480,000 distinct
/// lines: counted without a bound, the table grows to 2^20 slots (36 MiB more than under a
/// bound of 100,000 entries, 2^17 slots); the bounded peak grows by less than 12 MiB from
/// 1,600 documents to 16,000 (measured: 25.3, 32.7 and 64.2 MiB unbounded). Each footer
/// is seen once a batch, so it reaches the four documents that make a line recurring only if
/// the bound never forgets the lines of the batch being added: the kept documents are the
/// same as unbounded, none with its footer. Ignoring the bound fails this, and so does
/// forgetting every line seen once.
#[test]
fn clean_line_counts_stay_within_line_memory_entries() {
    let _serial = one_at_a_time();
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let small_input = dir.path().join("small.jsonl");
    let big_input = dir.path().join("big.jsonl");
    write_line_documents(&small_input, 1_600);
    write_line_documents(&big_input, 16_000);
    let (small, _) = clean_peak_rss(dir.path(), &small_input, 100_000);
    let (bounded, bounded_kept) = clean_peak_rss(dir.path(), &big_input, 100_000);
    let (unbounded, unbounded_kept) = clean_peak_rss(dir.path(), &big_input, 100_000_000);
    eprintln!(
        "clean peak RSS: {:.1} MiB at 1,600 documents and {:.1} MiB at 16,000 under 100,000 \
         entries, {:.1} MiB at 16,000 unbounded",
        small as f64 / MIB as f64,
        bounded as f64 / MIB as f64,
        unbounded as f64 / MIB as f64
    );
    let kept = bounded_kept.lines().count();
    assert!(kept > 15_000, "{kept} of 16,000 documents kept");
    assert!(
        !bounded_kept.contains("号站点的新闻频道"),
        "a footer survived"
    );
    assert_eq!(bounded_kept, unbounded_kept);
    assert!(bounded < small + 12 * MIB, "{small} -> {bounded}");
    assert!(
        unbounded > bounded + 20 * MIB,
        "{unbounded} unbounded, {bounded} bounded"
    );
}
