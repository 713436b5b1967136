//! Running dedup over the store or from files to files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use corpus::{DedupVerdict, JsonlWriter, Progress, RunStatus, Selection, Store};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::spill::BandIndex;
use crate::table::{DocTable, Row};
use crate::verify::Sets;
use crate::{Dedup, Facts, Outcome, Params};

/// Calls `each` with the documents of `docs` in chunks of up to [`CHUNK`], in order.
fn in_chunks<T>(
    docs: impl Iterator<Item = corpus::Result<T>>,
    mut each: impl FnMut(Vec<T>) -> corpus::Result<()>,
) -> corpus::Result<()> {
    let mut chunk = Vec::with_capacity(CHUNK);
    for d in docs {
        chunk.push(d?);
        if chunk.len() == CHUNK {
            each(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))?;
        }
    }
    if chunk.is_empty() {
        Ok(())
    } else {
        each(chunk)
    }
}

/// What the first pass leaves: the LSH index, one row per document, the contaminated
/// documents' spans and the shingle sets kept for verification.
struct Sketched {
    index: BandIndex,
    table: DocTable,
    spans: BTreeMap<u32, String>,
    kept: KeptShingles,
}

impl Sketched {
    fn new(dedup: &Dedup) -> corpus::Result<Sketched> {
        let c = dedup.config();
        let bands = if c.near { dedup.params().bands } else { 0 };
        let (index_bytes, kept_hashes) = budgets(c);
        Ok(Sketched {
            index: BandIndex::new(c.exact, bands, index_bytes, c.spill_dir.as_deref()),
            table: DocTable::new(c.spill_dir.as_deref())?,
            spans: BTreeMap::new(),
            kept: KeptShingles::new(keeps(c.verify && c.near, kept_hashes), kept_hashes),
        })
    }

    /// Documents sketched so far.
    fn len(&self) -> u64 {
        self.table.len()
    }

    /// Sketches a chunk of texts with each one's (seq, score), keeping their shingle sets while
    /// the budget allows, moving their keys into the LSH index and their facts to the table.
    fn add(
        &mut self,
        dedup: &Dedup,
        texts: &[String],
        extra: &[(i64, Option<f64>)],
    ) -> corpus::Result<()> {
        let first = self.table.len() as usize;
        let chunk: Vec<crate::Sketch> = if self.kept.overflowed {
            dedup.sketch_all(texts)
        } else {
            let kept = &mut self.kept;
            dedup
                .sketch_all_keeping(texts)
                .into_iter()
                .map(|(s, set)| {
                    kept.keep(set);
                    s
                })
                .collect()
        };
        self.index.add(first, &chunk)?;
        for (k, (s, &(seq, score))) in chunk.into_iter().zip(extra).enumerate() {
            self.table.push(&Row {
                exact: s.exact,
                len: s.len as u64,
                score,
                seq,
            })?;
            if let Some(span) = s.contaminated {
                self.spans.insert((first + k) as u32, span);
            }
        }
        Ok(())
    }
}

/// The key index's bytes and the shingle hashes kept for verification, out of the memory
/// budget: the kept sets take at most a quarter of it (and `verify_memory`).
pub(crate) fn budgets(c: &crate::Config) -> (usize, usize) {
    if !c.verify {
        return (c.memory_budget, 0);
    }
    let kept = c.verify_memory.min(c.memory_budget / 4 / 8);
    (c.memory_budget - kept * 8, kept)
}

/// Below this many hashes (32 MiB) no shingle set is kept from the first pass: one chunk's
/// sets would pass it before the budget is checked.
const KEEP_AT_LEAST: usize = 4 << 20;

/// Whether the first pass keeps shingle sets, under a budget of `hashes`.
fn keeps(verify: bool, hashes: usize) -> bool {
    verify && hashes >= KEEP_AT_LEAST
}

/// The documents in clusters after the first pass: the candidate pairs, verified by exact
/// Jaccard when configured (with the shingle sets kept from the first pass, or else from the
/// texts read again by `reread`), the documents in them (ascending) and their table rows.
struct Resolved {
    pairs: Vec<(u32, u32, bool)>,
    ends: Vec<u32>,
    rows: Vec<Row>,
}

impl Resolved {
    /// The row of document `i`, when it is in a pair.
    fn row(&self, i: u32) -> Option<&Row> {
        self.ends.binary_search(&i).ok().map(|k| &self.rows[k])
    }
}

fn candidate_pairs<I: Iterator<Item = corpus::Result<String>>>(
    dedup: &Dedup,
    index: BandIndex,
    kept: KeptShingles,
    table: &mut DocTable,
    report: &mut Report,
    reread: impl FnOnce() -> I,
) -> corpus::Result<Resolved> {
    report.spilled_runs = index.runs() as u64;
    let mut pairs = index.pairs()?;
    let mut ends = crate::pair_ends(&pairs);
    let mut rows = table.rows_of(&ends)?;
    if dedup.config().exact {
        let exact = |i: u32| ends.binary_search(&i).map_or(0, |k| rows[k].exact);
        pairs = crate::drop_near_within_exact(pairs, exact);
    }
    report.candidate_pairs = pairs.iter().filter(|p| !p.2).count() as u64;
    if dedup.config().verify && report.candidate_pairs > 0 {
        let need = needed(&pairs);
        let mut sets = match kept.take(&need) {
            Some(sets) => Sets::held(sets),
            None => {
                let c = dedup.config();
                let mut sets = Sets::new(budgets(c).1, c.spill_dir.as_deref());
                let mut first = 0;
                in_chunks(reread(), |texts| {
                    shingle_sets(dedup, first, &texts, &need, &mut sets)?;
                    first += texts.len();
                    Ok(())
                })?;
                sets
            }
        };
        report.verified_on_disk = sets.on_disk();
        pairs = sets.verify(pairs, dedup.config().threshold)?;
        let near_kept = pairs.iter().filter(|p| !p.2).count() as u64;
        report.pairs_rejected_by_verification = report.candidate_pairs - near_kept;
    }
    // the documents left in pairs, and their rows
    let left = crate::pair_ends(&pairs);
    if left.len() < ends.len() {
        rows = left
            .iter()
            .filter_map(|i| ends.binary_search(i).ok().map(|k| rows[k]))
            .collect();
        ends = left;
    }
    Ok(Resolved { pairs, ends, rows })
}

/// Clusters the pairs and decides each document's outcome: the documents in pairs and the
/// contaminated ones, ascending; every other document is kept alone. `scores` gives the
/// quality scores of the documents in pairs when the keep policy needs them (by seq).
fn resolve(
    dedup: &Dedup,
    resolved: &Resolved,
    spans: &BTreeMap<u32, String>,
    scores: Option<&HashMap<i64, f64>>,
) -> Vec<(u32, Outcome)> {
    let facts: Vec<Facts> = resolved
        .rows
        .iter()
        .map(|r| Facts {
            exact: r.exact,
            len: r.len as usize,
            score: match scores {
                Some(s) => s.get(&r.seq).copied(),
                None => r.score,
            },
        })
        .collect();
    let dirty: Vec<u32> = spans.keys().copied().collect();
    dedup.resolve_sparse(&resolved.pairs, &resolved.ends, &facts, &dirty)
}

/// Each document's outcome in corpus order, from the sparse list of those not kept alone.
struct Outcomes<'a> {
    sparse: std::iter::Peekable<std::slice::Iter<'a, (u32, Outcome)>>,
}

impl<'a> Outcomes<'a> {
    fn new(sparse: &'a [(u32, Outcome)]) -> Outcomes<'a> {
        Outcomes {
            sparse: sparse.iter().peekable(),
        }
    }

    /// The outcome of document `i`; asked in ascending order.
    fn of(&mut self, i: u32) -> Outcome {
        while self.sparse.next_if(|p| p.0 < i).is_some() {}
        match self.sparse.next_if(|p| p.0 == i) {
            Some(&(_, o)) => o,
            None => Outcome::ALONE,
        }
    }
}

/// Paragraph-level dedup of one kept document: the text left (`None` when unchanged), its
/// outcome turned into an exact duplicate when nothing is left.
fn drop_paragraphs(
    paragraphs: &mut crate::Paragraphs,
    text: &str,
    outcome: &mut Outcome,
    report: &mut Report,
) -> Option<String> {
    let left = paragraphs.filter(text)?;
    if left.trim().is_empty() {
        *outcome = Outcome {
            keep: false,
            kind: corpus::DedupKind::Exact,
            cluster: None,
        };
        report.emptied_by_paragraphs += 1;
        return None;
    }
    Some(left)
}

/// The documents whose shingle sets verification needs: both ends of every near pair.
fn needed(pairs: &[(u32, u32, bool)]) -> HashSet<u32> {
    pairs
        .iter()
        .filter(|p| !p.2)
        .flat_map(|&(a, b, _)| [a, b])
        .collect()
}

/// Shingle sets of the needed documents among `texts` (positions `first..`).
fn shingle_sets(
    dedup: &Dedup,
    first: usize,
    texts: &[String],
    need: &HashSet<u32>,
    into: &mut Sets,
) -> std::io::Result<()> {
    let sets: Vec<(u32, Vec<u64>)> = texts
        .par_iter()
        .enumerate()
        .filter(|(k, _)| need.contains(&((first + k) as u32)))
        .map(|(k, t)| ((first + k) as u32, dedup.shingle_set(t)))
        .collect();
    for (doc, set) in sets {
        into.add(doc, set)?;
    }
    Ok(())
}

/// Documents sketched per parallel chunk.
const CHUNK: usize = 8192;
/// Verdicts per transaction.
const WRITE_BATCH: usize = 20_000;
/// Shingle sets kept from the first pass while they fit the budget.
struct KeptShingles {
    sets: Vec<Vec<u64>>,
    total: usize,
    budget: usize,
    overflowed: bool,
}

impl KeptShingles {
    /// Keeping up to `budget` hashes when verifying.
    fn new(verify: bool, budget: usize) -> KeptShingles {
        KeptShingles {
            sets: Vec::new(),
            total: 0,
            budget,
            overflowed: !verify,
        }
    }

    fn keep(&mut self, set: Vec<u64>) {
        if !self.overflowed {
            // a set costs its hashes and its vector's three words (and the allocator's one)
            self.total += set.len() + 4;
            self.sets.push(set);
            if self.total > self.budget {
                self.overflowed = true;
                self.sets = Vec::new();
            }
        }
    }

    /// The kept sets of the needed documents, when nothing was dropped.
    fn take(self, need: &HashSet<u32>) -> Option<HashMap<u32, Vec<u64>>> {
        if self.overflowed {
            return None;
        }
        Some(
            self.sets
                .into_iter()
                .enumerate()
                .filter(|(i, _)| need.contains(&(*i as u32)))
                .map(|(i, s)| (i as u32, s))
                .collect(),
        )
    }
}

/// What a dedup run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Report {
    pub documents: u64,
    pub kept: u64,
    pub exact_duplicates: u64,
    pub near_duplicates: u64,
    /// Clusters of two or more documents.
    pub clusters: u64,
    pub bands: usize,
    pub rows: usize,
    pub false_positive_area: f64,
    pub false_negative_area: f64,
    /// Near-duplicate candidate pairs, and those the exact Jaccard check turned down.
    pub candidate_pairs: u64,
    pub pairs_rejected_by_verification: u64,
    /// The candidates' shingle sets outgrew the memory budget and were checked from disk.
    pub verified_on_disk: bool,
    /// Documents holding an evaluation-set n-gram.
    pub contaminated: u64,
    /// Sorted runs the LSH index wrote to disk per key slot (0: it stayed in memory).
    pub spilled_runs: u64,
    /// Paragraphs removed from kept documents by paragraph-level dedup, and the documents
    /// left with no text (counted as exact duplicates).
    pub paragraphs_removed: u64,
    pub emptied_by_paragraphs: u64,
    /// Input lines skipped as invalid (file to file, with `skip_invalid`).
    pub invalid_lines: u64,
    pub seconds: f64,
}

impl Report {
    fn new(params: Params) -> Report {
        Report {
            bands: params.bands,
            rows: params.rows,
            false_positive_area: params.false_positive,
            false_negative_area: params.false_negative,
            ..Report::default()
        }
    }

    /// Counts one document's final outcome.
    fn tally(&mut self, o: &Outcome) {
        self.documents += 1;
        match (o.keep, o.kind) {
            (true, _) => self.kept += 1,
            (false, corpus::DedupKind::Exact) => self.exact_duplicates += 1,
            (false, corpus::DedupKind::Contaminated) => self.contaminated += 1,
            (false, _) => self.near_duplicates += 1,
        }
        if o.keep && o.cluster.is_some() {
            self.clusters += 1;
        }
    }
}

/// The table's rows in order with their positions, read one ahead: for a pass over the store
/// that must find the row of each document it pages through by seq.
struct RowCursor {
    scan: crate::table::Scan,
    next: Option<(u32, Row)>,
    at: u32,
}

impl RowCursor {
    fn new(table: &mut DocTable) -> corpus::Result<RowCursor> {
        let mut c = RowCursor {
            scan: table.scan()?,
            next: None,
            at: 0,
        };
        c.advance()?;
        Ok(c)
    }

    fn advance(&mut self) -> corpus::Result<()> {
        self.next = match self.scan.next() {
            Some(r) => {
                let row = r?;
                self.at += 1;
                Some((self.at - 1, row))
            }
            None => None,
        };
        Ok(())
    }

    /// The position and row of the document `seq` (seqs asked in ascending order), when the
    /// first pass saw it.
    fn find(&mut self, seq: i64) -> corpus::Result<Option<(u32, Row)>> {
        while let Some((_, r)) = self.next {
            if r.seq >= seq {
                break;
            }
            self.advance()?;
        }
        match self.next {
            Some((i, r)) if r.seq == seq => {
                self.advance()?;
                Ok(Some((i, r)))
            }
            _ => Ok(None),
        }
    }
}

/// Deduplicates the documents the cleaner kept and records a verdict for each.
pub fn run_store(
    store: &mut Store,
    dedup: &Dedup,
    progress: &dyn Progress,
) -> corpus::Result<Report> {
    let start = Instant::now();
    store.lock_stage("dedup")?;
    store.require_complete("dedup", &["clean"])?;
    let run = store.begin_run("dedup", dedup.config())?;
    let p = dedup.params();
    tracing::info!(
        "dedup: LSH {} bands x {} rows at threshold {} (false-positive area {:.4}, false-negative area {:.4})",
        p.bands,
        p.rows,
        dedup.config().threshold,
        p.false_positive,
        p.false_negative
    );
    let result = (|| -> corpus::Result<Report> {
        let total = store.document_count()?;
        progress.start("sketch", Some(total));
        let mut sketched = Sketched::new(dedup)?;
        in_chunks(store.documents(Selection::CleanKept), |chunk| {
            let extra: Vec<(i64, Option<f64>)> = chunk.iter().map(|d| (d.seq, None)).collect();
            let texts: Vec<String> = chunk.into_iter().map(|d| d.doc.text).collect();
            sketched.add(dedup, &texts, &extra)?;
            progress.update(sketched.len(), sketched.len());
            Ok(())
        })?;
        progress.finish();
        let mut report = Report::new(dedup.params());
        let Sketched {
            index,
            mut table,
            mut spans,
            kept,
        } = sketched;
        let resolved = candidate_pairs(dedup, index, kept, &mut table, &mut report, || {
            store
                .documents(Selection::CleanKept)
                .map(|d| d.map(|d| d.doc.text))
        })?;
        // the scores of the documents in clusters only
        let scores = if dedup.config().keep == crate::KeepPolicy::Score {
            let seqs: Vec<i64> = resolved.rows.iter().map(|r| r.seq).collect();
            Some(store.clean_scores_of(&seqs)?)
        } else {
            None
        };
        let sparse = resolve(dedup, &resolved, &spans, scores.as_ref());
        let mut outcomes = Outcomes::new(&sparse);
        // the kept member of a cluster is in a pair, so its row is at hand
        let seq_of = |k: usize| resolved.row(k as u32).map_or(0, |r| r.seq);
        let verdict =
            |seq: i64, o: &Outcome, span: Option<String>, text: Option<String>| DedupVerdict {
                doc: seq,
                keep: o.keep,
                kind: o.kind,
                cluster: o.cluster.map(seq_of),
                similarity: None,
                span,
                text,
            };
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        if dedup.config().paragraphs {
            // a third pass, in corpus order: kept documents lose the paragraphs seen before
            let mut paragraphs = crate::Paragraphs::default();
            let mut rows = RowCursor::new(&mut table)?;
            let mut after = 0;
            loop {
                let page = store.documents_page(Selection::CleanKept, after)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for d in page {
                    // the store may have changed since the first pass: match by seq
                    let Some((i, row)) = rows.find(d.seq)? else {
                        continue;
                    };
                    let mut o = outcomes.of(i);
                    let text = if o.keep {
                        drop_paragraphs(&mut paragraphs, &d.doc.text, &mut o, &mut report)
                    } else {
                        None
                    };
                    report.tally(&o);
                    batch.push(verdict(row.seq, &o, spans.remove(&i), text));
                }
                store.record_dedup_verdicts(run, &batch)?;
                batch.clear();
            }
            report.paragraphs_removed = paragraphs.removed;
        } else {
            for (i, row) in table.scan()?.enumerate() {
                let row = row?;
                let i = i as u32;
                let o = outcomes.of(i);
                report.tally(&o);
                batch.push(verdict(row.seq, &o, spans.remove(&i), None));
                if batch.len() == WRITE_BATCH {
                    store.record_dedup_verdicts(run, &batch)?;
                    batch.clear();
                }
            }
            store.record_dedup_verdicts(run, &batch)?;
        }
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    })();
    match &result {
        Ok(r) => store.finish_run(run, RunStatus::Done, r)?,
        Err(e) => store.finish_run(run, RunStatus::Failed, &json!({ "error": e.to_string() }))?,
    }
    result
}

/// Where a file-to-file run writes.
#[derive(Debug, Clone)]
pub struct FileOutputs {
    /// The kept documents, in input order.
    pub kept: PathBuf,
    /// One line per cluster of two or more: the kept id and the removed ones with their kind.
    pub clusters: Option<PathBuf>,
}

#[derive(Serialize)]
struct ClusterLine<'a> {
    kept: &'a str,
    removed: Vec<Removed<'a>>,
}

#[derive(Serialize)]
struct Removed<'a> {
    id: &'a str,
    kind: &'static str,
}

/// Deduplicates JSONL files: one pass to sketch, one for the candidates' shingle sets when
/// verifying, one to write the kept documents (so inputs must be files, not standard input).
pub fn run_files(
    inputs: &[PathBuf],
    out: &FileOutputs,
    dedup: &Dedup,
    progress: &dyn Progress,
) -> corpus::Result<Report> {
    let start = Instant::now();
    if let Some(p) = inputs.iter().find(|p| p.as_path() == Path::new("-")) {
        return Err(corpus::Error::Input {
            path: p.clone(),
            err: std::io::Error::other("dedup reads its inputs twice; standard input cannot be"),
        });
    }
    // outputs are checked before the work
    corpus::check_output(&out.kept)?;
    if let Some(c) = &out.clusters {
        corpus::check_output(c)?;
    }
    progress.start("sketch", None);
    let mut sketched = Sketched::new(dedup)?;
    // every pass skips the same invalid lines, so positions agree between passes
    let skip = dedup.config().skip_invalid;
    let invalid = corpus::InvalidLines::default();
    let again = corpus::InvalidLines::default();
    in_chunks(corpus::read_all_skipping(inputs, skip, &invalid), |chunk| {
        let extra: Vec<(i64, Option<f64>)> = chunk
            .iter()
            .map(|d| (0, d.extra.get("score").and_then(|v| v.as_f64())))
            .collect();
        let texts: Vec<String> = chunk.into_iter().map(|d| d.text).collect();
        sketched.add(dedup, &texts, &extra)?;
        progress.update(sketched.len(), sketched.len());
        Ok(())
    })?;
    progress.finish();
    let mut report = Report::new(dedup.params());
    report.invalid_lines = invalid.count();
    let Sketched {
        index,
        mut table,
        spans,
        kept,
    } = sketched;
    let resolved = candidate_pairs(dedup, index, kept, &mut table, &mut report, || {
        corpus::read_all_skipping(inputs, skip, &again).map(|d| d.map(|d| d.text))
    })?;
    let sparse = resolve(dedup, &resolved, &spans, None);
    // lines past the first pass's (a file that grew since) are not judged, so not written
    let sketched_count = table.len();
    drop(table);

    // the last pass writes the kept documents and collects the ids the cluster file names
    let mut ids: HashMap<u32, String> = HashMap::new();
    let mut kept = JsonlWriter::create(&out.kept)?;
    let mut outcomes = Outcomes::new(&sparse);
    let mut paragraphs = dedup.config().paragraphs.then(crate::Paragraphs::default);
    for (i, d) in corpus::read_all_skipping(inputs, skip, &again)
        .take(sketched_count as usize)
        .enumerate()
    {
        let mut d = d?;
        let i = i as u32;
        let mut o = outcomes.of(i);
        if out.clusters.is_some() && (o.cluster.is_some() || spans.contains_key(&i)) {
            ids.insert(i, d.id.clone());
        }
        if o.keep
            && let Some(p) = paragraphs.as_mut()
            && let Some(text) = drop_paragraphs(p, &d.text, &mut o, &mut report)
        {
            d.text = text;
        }
        report.tally(&o);
        if o.keep {
            kept.write(&d)?;
        }
    }
    kept.finish()?;
    report.paragraphs_removed = paragraphs.map_or(0, |p| p.removed);
    if let Some(path) = &out.clusters {
        let id = |i: usize| ids.get(&(i as u32)).map_or("", String::as_str);
        let mut removed: BTreeMap<usize, Vec<(u32, Outcome)>> = BTreeMap::new();
        for &(m, o) in &sparse {
            if let (false, Some(k)) = (o.keep, o.cluster) {
                removed.entry(k).or_default().push((m, o));
            }
        }
        let mut w = JsonlWriter::create(path)?;
        for (i, span) in &spans {
            w.write(&json!({ "contaminated": id(*i as usize), "span": span }))?;
        }
        for (k, members) in &removed {
            w.write(&ClusterLine {
                kept: id(*k),
                removed: members
                    .iter()
                    .map(|(m, o)| Removed {
                        id: id(*m as usize),
                        kind: o.kind.as_str(),
                    })
                    .collect(),
            })?;
        }
        w.finish()?;
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
