//! The clean stage over the store (a verdict per document) or file to file. Both make two
//! streaming passes when recurring lines are dropped: the first counts each host's lines, the
//! second cleans in parallel batches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use corpus::{CleanVerdict, Document, JsonlWriter, Progress, Selection, Store};
use rayon::prelude::*;
use serde::Serialize;

use crate::{Cleaner, LineCounts, PiiCounts, Verdict};

/// Documents cleaned per parallel batch and per transaction.
const BATCH: usize = 1000;

/// What a clean run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub documents: u64,
    pub kept: u64,
    /// Rejections by the first failing rule.
    pub rejected: BTreeMap<String, u64>,
    pub pii: PiiCounts,
    pub recurring_lines_dropped: u64,
    /// (host, line) entries the count forgot to stay under `line_memory_entries`: while 0,
    /// every recurring line was counted exactly (and a split run judges as one machine).
    pub line_entries_forgotten: u64,
    pub phrase_lines_dropped: u64,
    pub repeated_sentences_dropped: u64,
    /// Documents whose text the cleaning changed.
    pub changed: u64,
    pub characters_in: u64,
    /// Input lines skipped as invalid (file to file, with `skip_invalid`).
    pub invalid_lines: u64,
    /// The first of them, `file:line: why`.
    pub invalid_examples: Vec<String>,
    pub seconds: f64,
}

impl Report {
    fn add(&mut self, v: &Verdict, original: &str) {
        self.documents += 1;
        self.characters_in += original.chars().count() as u64;
        if v.keep {
            self.kept += 1;
        } else if let Some(rule) = v.rule {
            *self.rejected.entry(rule.to_string()).or_default() += 1;
        }
        self.pii.phone += v.pii.phone;
        self.pii.id_card += v.pii.id_card;
        self.pii.bank_card += v.pii.bank_card;
        self.pii.email += v.pii.email;
        self.pii.qq += v.pii.qq;
        self.pii.ip += v.pii.ip;
        self.recurring_lines_dropped += u64::from(v.lines.recurring);
        self.phrase_lines_dropped += u64::from(v.lines.phrase);
        self.repeated_sentences_dropped += u64::from(v.lines.repeated_sentences);
        if v.text != original {
            self.changed += 1;
        }
    }
}

fn host_of(doc: &Document) -> String {
    doc.source
        .clone()
        .or_else(|| {
            doc.url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_string))
        })
        .unwrap_or_default()
}

fn count_batch(cleaner: &Cleaner, docs: &[Document]) -> LineCounts {
    docs.par_iter()
        .fold(LineCounts::default, |mut c, d| {
            c.add(&host_of(d), &cleaner.line_text(&d.text));
            c
        })
        .reduce(LineCounts::default, |mut a, b| {
            a.merge(b);
            a
        })
}

/// Adds a batch's counts, first forgetting what makes room for them: the table never holds
/// more than `max` entries (but for a batch of more than half of them), so it never grows
/// past the size `max` entries need.
fn add_bounded(counts: &mut LineCounts, batch: LineCounts, max: usize) {
    counts.make_room(max, &batch);
    counts.merge(batch);
}

/// The first pass: how often each line occurs across each host's documents, when recurring
/// lines are dropped.
fn count_lines(
    cleaner: &Cleaner,
    docs: impl Iterator<Item = corpus::Result<Document>>,
    total: Option<u64>,
    progress: &dyn Progress,
) -> corpus::Result<Option<LineCounts>> {
    if !cleaner.needs_line_counts() {
        return Ok(None);
    }
    progress.start("lines", total);
    let max = cleaner.config().line_memory_entries;
    let mut counts = LineCounts::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut seen = 0;
    for doc in docs {
        batch.push(doc?);
        seen += 1;
        if batch.len() == BATCH {
            add_bounded(&mut counts, count_batch(cleaner, &batch), max);
            batch.clear();
            progress.update(seen, seen);
        }
    }
    add_bounded(&mut counts, count_batch(cleaner, &batch), max);
    progress.finish();
    Ok(Some(counts))
}

/// The counts a clean run judges with: every document's lines counted, then the entries that
/// cannot reach `recurring_min_docs` dropped.
fn counted(
    cleaner: &Cleaner,
    docs: impl Iterator<Item = corpus::Result<Document>>,
    total: Option<u64>,
    progress: &dyn Progress,
) -> corpus::Result<Option<LineCounts>> {
    let mut counts = count_lines(cleaner, docs, total, progress)?;
    if let Some(c) = counts.as_mut() {
        c.prune(cleaner.config().recurring_min_docs);
    }
    Ok(counts)
}

/// Cleans every document in the store and records a verdict for each (replacing an earlier
/// run's), with the cleaned text where it changed.
pub fn run_store(
    store: &mut Store,
    cleaner: &Cleaner,
    progress: &dyn Progress,
) -> corpus::Result<Report> {
    let start = Instant::now();
    store.lock_stage("clean")?;
    let total = store.document_count()?;
    tracing::info!(
        "clean: {total} documents in {}; recurring lines {}",
        store.path().display(),
        if cleaner.needs_line_counts() {
            "counted first, per host"
        } else {
            "kept"
        }
    );
    let docs = store.documents(Selection::All).map(|d| d.map(|d| d.doc));
    let counts = counted(cleaner, docs, Some(total), progress)?;
    let run = store.begin_run("clean", cleaner.config())?;
    progress.start("clean", Some(total));
    let mut report = Report {
        line_entries_forgotten: counts.as_ref().map_or(0, LineCounts::forgotten),
        ..Report::default()
    };
    let result = (|| -> corpus::Result<()> {
        let mut after = 0;
        loop {
            let page = store.documents_page(Selection::All, after)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            let docs: Vec<(i64, Document)> = page.into_iter().map(|d| (d.seq, d.doc)).collect();
            let verdicts = judge(cleaner, &docs, counts.as_ref(), &mut report);
            store.record_clean_verdicts(run, &verdicts)?;
            tracing::debug!(
                "clean: {} documents judged, {} kept",
                report.documents,
                report.kept
            );
            progress.update(report.documents, report.documents);
        }
    })();
    progress.finish();
    report.seconds = start.elapsed().as_secs_f64();
    let status = corpus::RunStatus::of(&result);
    store.finish_run(run, status, &report)?;
    result.map(|()| report)
}

fn judge(
    cleaner: &Cleaner,
    docs: &[(i64, Document)],
    counts: Option<&LineCounts>,
    report: &mut Report,
) -> Vec<CleanVerdict> {
    let verdicts: Vec<Verdict> = docs
        .par_iter()
        .map(|(_, d)| cleaner.clean_keyed(&d.text, &host_of(d), counts, &d.id))
        .collect();
    docs.iter()
        .zip(verdicts)
        .map(|((seq, d), v)| {
            report.add(&v, &d.text);
            CleanVerdict {
                doc: *seq,
                keep: v.keep,
                rule: v.rule.map(str::to_string),
                value: v.value,
                score: v.score,
                details: Some(v.details()),
                text: (v.text != d.text).then_some(v.text),
            }
        })
        .collect()
}

/// Cleans JSONL(.zst) files: kept documents (with their cleaned text) to `output`, rejected
/// ones as they were to `rejected` with a `clean` field naming the rule and its value.
pub fn run_files(
    inputs: &[PathBuf],
    output: &Path,
    rejected: Option<&Path>,
    cleaner: &Cleaner,
    progress: &dyn Progress,
) -> corpus::Result<Report> {
    let start = Instant::now();
    // outputs are checked before the work, not after the first pass
    check_outputs(output, rejected)?;
    let skip = cleaner.config().skip_invalid;
    tracing::info!(
        "clean: {} input files, two passes (line counts, then verdicts)",
        inputs.len()
    );
    let first = corpus::InvalidLines::default();
    let counts = counted(
        cleaner,
        corpus::read_all_skipping(inputs, skip, &first),
        None,
        progress,
    )?;
    clean_files(
        inputs,
        counts.as_ref(),
        output,
        rejected,
        cleaner,
        progress,
        start,
    )
}

/// Checks a file-to-file run's outputs before any work.
fn check_outputs(output: &Path, rejected: Option<&Path>) -> corpus::Result<()> {
    corpus::check_output(output)?;
    rejected.map_or(Ok(()), corpus::check_output)
}

/// The second pass of a file-to-file run: every document judged with `counts`, the kept ones
/// written to `output`, the rejected ones to `rejected`.
fn clean_files(
    inputs: &[PathBuf],
    counts: Option<&LineCounts>,
    output: &Path,
    rejected: Option<&Path>,
    cleaner: &Cleaner,
    progress: &dyn Progress,
    start: Instant,
) -> corpus::Result<Report> {
    let skip = cleaner.config().skip_invalid;
    let invalid = corpus::InvalidLines::default();
    progress.start("clean", None);
    let mut report = Report {
        line_entries_forgotten: counts.map_or(0, LineCounts::forgotten),
        ..Report::default()
    };
    let mut out = JsonlWriter::create(output)?;
    let mut rej = match rejected {
        Some(p) => Some(JsonlWriter::create(p)?),
        None => None,
    };
    let mut batch: Vec<(i64, Document)> = Vec::with_capacity(BATCH);
    let mut write = |batch: &mut Vec<(i64, Document)>, report: &mut Report| -> corpus::Result<()> {
        let verdicts: Vec<Verdict> = batch
            .par_iter()
            .map(|(_, d)| cleaner.clean_keyed(&d.text, &host_of(d), counts, &d.id))
            .collect();
        for ((_, mut d), v) in batch.drain(..).zip(verdicts) {
            report.add(&v, &d.text);
            if v.keep {
                d.text = v.text;
                out.write(&d)?;
            } else if let Some(rej) = rej.as_mut() {
                d.extra.insert(
                    "clean".to_string(),
                    serde_json::json!({ "rule": v.rule, "value": v.value, "details": v.details() }),
                );
                rej.write(&d)?;
            }
        }
        progress.update(report.documents, report.documents);
        Ok(())
    };
    for doc in corpus::read_all_skipping(inputs, skip, &invalid) {
        batch.push((0, doc?));
        if batch.len() == BATCH {
            write(&mut batch, &mut report)?;
        }
    }
    write(&mut batch, &mut report)?;
    report.invalid_lines = invalid.count();
    report.invalid_examples = invalid.examples();
    out.finish()?;
    if let Some(r) = rej {
        r.finish()?;
    }
    progress.finish();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// What one task's line count did ([`count_shard`]).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct CountReport {
    /// Distinct (host, line) entries written.
    pub entries: u64,
    /// Entries forgotten to stay under `line_memory_entries`.
    pub forgotten: u64,
    pub seconds: f64,
}

/// The first half of a clean run split over tasks: counts the lines of this task's `inputs`
/// (each host's, as a one-machine run does) and writes them to `counts`, atomically. Every
/// task's counts are summed by [`judge_shard`]. Without recurring-line dropping the file is
/// written empty.
pub fn count_shard(
    inputs: &[PathBuf],
    counts: &Path,
    cleaner: &Cleaner,
    progress: &dyn Progress,
) -> corpus::Result<CountReport> {
    let start = Instant::now();
    let skip = cleaner.config().skip_invalid;
    let invalid = corpus::InvalidLines::default();
    let lines = count_lines(
        cleaner,
        corpus::read_all_skipping(inputs, skip, &invalid),
        None,
        progress,
    )?
    .unwrap_or_default();
    let mut bytes = Vec::new();
    lines.write_to(&mut bytes)?;
    corpus::shard::write_atomic(counts, &bytes)?;
    Ok(CountReport {
        entries: lines.len() as u64,
        forgotten: lines.forgotten(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The second half of a clean run split over tasks: sums every task's line counts (`counts`,
/// written by [`count_shard`]; under the same `line_memory_entries` bound), then cleans this
/// task's `inputs` as [`run_files`] does. With every task's counts, the documents kept are
/// those a one-machine run over all the inputs keeps while the counts fit the bound (the
/// report's `line_entries_forgotten` is 0); past it, both forget the rarest lines, but not in
/// the same order, so a footer near `recurring_min_docs` may be judged differently.
pub fn judge_shard(
    inputs: &[PathBuf],
    counts: &[PathBuf],
    output: &Path,
    rejected: Option<&Path>,
    cleaner: &Cleaner,
    progress: &dyn Progress,
) -> corpus::Result<Report> {
    let start = Instant::now();
    check_outputs(output, rejected)?;
    let lines = if cleaner.needs_line_counts() {
        let max = cleaner.config().line_memory_entries;
        let mut total = LineCounts::default();
        for path in counts {
            let file = fs_err::File::open(path).map_err(|err| corpus::Error::Input {
                path: path.clone(),
                err,
            })?;
            let part =
                LineCounts::read_from(&mut std::io::BufReader::new(file)).map_err(|err| {
                    corpus::Error::Input {
                        path: path.clone(),
                        err,
                    }
                })?;
            add_bounded(&mut total, part, max);
        }
        total.prune(cleaner.config().recurring_min_docs);
        Some(total)
    } else {
        None
    };
    clean_files(
        inputs,
        lines.as_ref(),
        output,
        rejected,
        cleaner,
        progress,
        start,
    )
}

/// Every rule's measurement on one stored document, with its cleaned text and the verdict the
/// store holds for it (what `zhcorpus clean --explain` prints).
#[derive(Debug, Clone)]
pub struct Explanation {
    pub id: String,
    pub host: String,
    pub verdict: Verdict,
    /// The stored verdict: kept, and the rule that removed it; `None` when not judged yet.
    pub stored: Option<(bool, Option<String>)>,
}

/// Judges one stored document as a clean run would (the recurring-line counts taken over its
/// host's documents), without recording anything.
pub fn explain(store: &Store, cleaner: &Cleaner, id: &str) -> Result<Explanation, crate::Error> {
    let Some(doc) = store.document(id)? else {
        return Err(crate::Error::NoDocument {
            id: id.to_string(),
            db: store.path().to_path_buf(),
        });
    };
    let host = host_of(&doc.doc);
    let mut counts = LineCounts::default();
    if cleaner.needs_line_counts() {
        for d in store.documents(Selection::All) {
            let d = d?;
            if host_of(&d.doc) == host {
                counts.add(&host, &cleaner.line_text(&d.doc.text));
            }
        }
    }
    let verdict = cleaner.clean_keyed(&doc.doc.text, &host, Some(&counts), id);
    let stored = store.clean_verdict(doc.seq)?.map(|v| (v.keep, v.rule));
    Ok(Explanation {
        id: id.to_string(),
        host,
        verdict,
        stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 448;

    /// Counts 20 batches of 100 documents, `doc(batch, i)` giving each one's host and text,
    /// checking after each batch that the table holds at most `MAX` entries and has not
    /// doubled past what they need; returns the lines reaching 4 documents.
    fn count_batches(doc: impl Fn(usize, usize) -> (String, String)) -> usize {
        let mut counts = LineCounts::default();
        for b in 0..20 {
            let mut batch = LineCounts::default();
            for d in 0..100 {
                let (host, text) = doc(b, d);
                batch.add(&host, &text);
            }
            add_bounded(&mut counts, batch, MAX);
            assert!(counts.len() <= MAX, "{} entries", counts.len());
            assert!(counts.capacity() < 2 * MAX, "{} slots", counts.capacity());
        }
        assert!(counts.forgotten() > 0, "the bound forgot nothing");
        counts.prune(4);
        counts.len()
    }

    /// Room is made before a batch is added, so the table never grows past what its bound
    /// needs; adding first and bounding after lets it pass the bound by a batch, and the
    /// table doubles (896 slots here instead of 448). A footer in every document survives.
    /// A clean run split over tasks (each counting its files' lines, each judging with every
    /// task's counts) keeps the documents, with the texts, a one-machine run keeps; a footer
    /// recurring on a host whose pages fall in different shards is still dropped.
    #[test]
    fn a_split_run_keeps_what_one_machine_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ::tests::Rng::new(5);
        let mut files = Vec::new();
        for f in 0..5 {
            let path = dir.path().join(format!("in-{f}.jsonl"));
            let mut w = JsonlWriter::create(&path).unwrap();
            for i in 0..40 {
                let host = (f * 40 + i) % 6;
                let mut body = Vec::new();
                for _ in 0..4 {
                    body.push(::tests::generate_text(&mut rng, 60));
                }
                // one footer a host: once in each file, so no file alone reaches 4 documents
                if i < 6 {
                    body.push(format!(
                        "本站第{host}号的版权声明与页脚，未经许可不得转载本文"
                    ));
                }
                let mut d = Document::new(format!("d{f}-{i:02}"), body.join("\n"));
                d.source = Some(format!("site{host}.cn"));
                w.write(&d).unwrap();
            }
            w.finish().unwrap();
            files.push(path);
        }
        let cleaner = Cleaner::new(crate::Config::default(), &[], None).unwrap();
        let one = dir.path().join("one.jsonl");
        let r = run_files(&files, &one, None, &cleaner, &corpus::NoProgress).unwrap();
        assert!(r.recurring_lines_dropped >= 30, "{r:?}");
        let read = |p: &Path| -> Vec<(String, String)> {
            corpus::read_all(&[p.to_path_buf()])
                .map(|d| d.map(|d| (d.id, d.text)).unwrap())
                .collect()
        };
        let expected = read(&one);
        for world in [2, 3] {
            let parts: Vec<&[PathBuf]> = (0..world)
                .map(|r| corpus::shard::Shard::new(r, world).unwrap().part(&files))
                .collect();
            let counts: Vec<PathBuf> = (0..world)
                .map(|r| dir.path().join(format!("lines-{world}-{r}.bin")))
                .collect();
            for (part, file) in parts.iter().zip(&counts) {
                count_shard(part, file, &cleaner, &corpus::NoProgress).unwrap();
            }
            let mut got = Vec::new();
            let mut dropped = 0;
            for (r, part) in parts.iter().enumerate() {
                let out = dir.path().join(format!("kept-{world}-{r}.jsonl"));
                let rep =
                    judge_shard(part, &counts, &out, None, &cleaner, &corpus::NoProgress).unwrap();
                dropped += rep.recurring_lines_dropped;
                got.extend(read(&out));
            }
            assert_eq!(dropped, r.recurring_lines_dropped, "{world} shards");
            assert_eq!(got, expected, "{world} shards");
        }
    }

    #[test]
    fn the_line_table_never_grows_past_its_bound() {
        let recurring =
            count_batches(|b, d| ("site".into(), format!("本站的页脚\n第{b}批第{d}篇的一行")));
        assert_eq!(recurring, 1, "the footer alone reaches 4 documents");
    }

    /// A footer seen once a batch still adds up when every batch forces forgetting: the lines
    /// of the batch being added are never forgotten to make room for it. Forgetting every
    /// line seen once, the batch's included, loses all 100 footers.
    #[test]
    fn a_line_seen_once_a_batch_is_still_counted() {
        let recurring = count_batches(|b, d| {
            let lines: Vec<String> = (0..3).map(|k| format!("第{b}批第{d}篇第{k}行")).collect();
            (
                format!("site{d}"),
                format!("第{d}号站的页脚\n{}", lines.join("\n")),
            )
        });
        assert_eq!(recurring, 100, "every host's footer reaches 4 documents");
    }
}
