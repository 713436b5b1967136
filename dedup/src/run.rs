//! Running dedup over the store or from files to files.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use corpus::{DedupVerdict, JsonlWriter, Progress, RunStatus, Selection, Store};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::spill::BandIndex;
use crate::{Dedup, Outcome, Params, Sketch};

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

/// The candidate pairs from the index, verified by exact Jaccard when configured: with the
/// shingle sets kept from the first pass, or else from the texts read again by `reread`.
fn candidate_pairs<I: Iterator<Item = corpus::Result<String>>>(
    dedup: &Dedup,
    index: BandIndex,
    sketches: &[Sketch],
    kept: KeptShingles,
    report: &mut Report,
    reread: impl FnOnce() -> I,
) -> corpus::Result<Vec<(u32, u32, bool)>> {
    report.spilled_runs = index.runs() as u64;
    let pairs = index.pairs(sketches)?;
    report.candidate_pairs = pairs.iter().filter(|p| !p.2).count() as u64;
    if !dedup.config().verify || report.candidate_pairs == 0 {
        return Ok(pairs);
    }
    let need = needed(&pairs);
    let sets = match kept.take(&need) {
        Some(sets) => sets,
        None => {
            let mut sets = HashMap::with_capacity(need.len());
            let mut first = 0;
            in_chunks(reread(), |texts| {
                shingle_sets(dedup, first, &texts, &need, &mut sets);
                first += texts.len();
                Ok(())
            })?;
            sets
        }
    };
    Ok(verified(dedup, pairs, &sets, report))
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

/// Keeps exact pairs and the near pairs whose shingle sets' Jaccard similarity reaches the
/// threshold.
fn verified(
    dedup: &Dedup,
    pairs: Vec<(u32, u32, bool)>,
    sets: &HashMap<u32, Vec<u64>>,
    report: &mut Report,
) -> Vec<(u32, u32, bool)> {
    let threshold = dedup.config().threshold;
    let kept: Vec<(u32, u32, bool)> = pairs
        .into_par_iter()
        .filter(|&(a, b, exact)| {
            exact
                || match (sets.get(&a), sets.get(&b)) {
                    (Some(x), Some(y)) => crate::minhash::jaccard(x, y) >= threshold,
                    _ => true,
                }
        })
        .collect();
    let near_kept = kept.iter().filter(|p| !p.2).count() as u64;
    report.pairs_rejected_by_verification = report.candidate_pairs - near_kept;
    kept
}

/// Shingle sets of the needed documents among `texts` (positions `first..`).
fn shingle_sets(
    dedup: &Dedup,
    first: usize,
    texts: &[String],
    need: &HashSet<u32>,
    into: &mut HashMap<u32, Vec<u64>>,
) {
    let sets: Vec<(u32, Vec<u64>)> = texts
        .par_iter()
        .enumerate()
        .filter(|(k, _)| need.contains(&((first + k) as u32)))
        .map(|(k, t)| ((first + k) as u32, dedup.shingle_set(t)))
        .collect();
    into.extend(sets);
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
    fn new(config: &crate::Config) -> KeptShingles {
        KeptShingles {
            sets: Vec::new(),
            total: 0,
            budget: config.verify_memory,
            overflowed: !config.verify,
        }
    }

    fn keep(&mut self, set: Vec<u64>) {
        if !self.overflowed {
            self.total += set.len();
            self.sets.push(set);
            if self.total > self.budget {
                self.overflowed = true;
                self.sets = Vec::new();
            }
        }
    }
}

/// Sketches a chunk of texts, keeping their shingle sets while the budget allows and moving
/// their keys into the LSH index.
fn sketch_chunk(
    dedup: &Dedup,
    texts: &[String],
    kept: &mut KeptShingles,
    index: &mut BandIndex,
    sketches: &mut Vec<Sketch>,
) -> corpus::Result<()> {
    let first = sketches.len();
    let mut chunk: Vec<Sketch> = if kept.overflowed {
        dedup.sketch_all(texts)
    } else {
        dedup
            .sketch_all_keeping(texts)
            .into_iter()
            .map(|(s, set)| {
                kept.keep(set);
                s
            })
            .collect()
    };
    index.add(first, &chunk)?;
    // the index holds the band keys now
    for s in &mut chunk {
        s.bands = Vec::new();
    }
    sketches.extend(chunk);
    Ok(())
}

fn new_index(dedup: &Dedup) -> BandIndex {
    let c = dedup.config();
    let bands = if c.near { dedup.params().bands } else { 0 };
    BandIndex::new(c.exact, bands, c.memory_budget, c.spill_dir.as_deref())
}

impl KeptShingles {
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

    fn count(&mut self, outcomes: &[Outcome]) {
        self.documents = outcomes.len() as u64;
        for o in outcomes {
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
        let mut seqs = Vec::new();
        let mut sketches = Vec::new();
        let mut kept_sets = KeptShingles::new(dedup.config());
        let mut index = new_index(dedup);
        in_chunks(store.documents(Selection::CleanKept), |chunk| {
            let texts: Vec<String> = chunk
                .into_iter()
                .map(|d| {
                    seqs.push(d.seq);
                    d.doc.text
                })
                .collect();
            sketch_chunk(dedup, &texts, &mut kept_sets, &mut index, &mut sketches)?;
            progress.update(seqs.len() as u64, seqs.len() as u64);
            Ok(())
        })?;
        progress.finish();
        let scores = if dedup.config().keep == crate::KeepPolicy::Score {
            let all = store.clean_scores()?;
            seqs.iter().map(|s| all.get(s).copied()).collect()
        } else {
            Vec::new()
        };
        let mut report = Report::new(dedup.params());
        let pairs = candidate_pairs(dedup, index, &sketches, kept_sets, &mut report, || {
            store
                .documents(Selection::CleanKept)
                .map(|d| d.map(|d| d.doc.text))
        })?;
        let mut outcomes = dedup.resolve_pairs(&sketches, &scores, &pairs);
        let mut spans: Vec<Option<String>> = sketches.into_iter().map(|s| s.contaminated).collect();
        let verdict =
            |i: usize, o: &Outcome, span: Option<String>, text: Option<String>| DedupVerdict {
                doc: seqs[i],
                keep: o.keep,
                kind: o.kind,
                cluster: o.cluster.map(|k| seqs[k]),
                similarity: None,
                span,
                text,
            };
        if dedup.config().paragraphs {
            // a third pass, in corpus order: kept documents lose the paragraphs seen before
            let mut paragraphs = crate::Paragraphs::default();
            let mut after = 0;
            let mut i = 0;
            loop {
                let page = store.documents_page(Selection::CleanKept, after)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                let mut verdicts = Vec::with_capacity(page.len());
                for d in page {
                    // the store may have changed since the first pass: match by seq
                    let Ok(k) = seqs[i..].binary_search(&d.seq).map(|k| k + i) else {
                        continue;
                    };
                    i = k + 1;
                    let text = if outcomes[k].keep {
                        drop_paragraphs(&mut paragraphs, &d.doc.text, &mut outcomes[k], &mut report)
                    } else {
                        None
                    };
                    verdicts.push(verdict(k, &outcomes[k], spans[k].take(), text));
                }
                store.record_dedup_verdicts(run, &verdicts)?;
            }
            report.paragraphs_removed = paragraphs.removed;
        } else {
            let verdicts: Vec<DedupVerdict> = outcomes
                .iter()
                .enumerate()
                .map(|(i, o)| verdict(i, o, spans[i].take(), None))
                .collect();
            for batch in verdicts.chunks(WRITE_BATCH) {
                store.record_dedup_verdicts(run, batch)?;
            }
        }
        report.count(&outcomes);
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
    let mut ids = Vec::new();
    let mut scores = Vec::new();
    let mut sketches = Vec::new();
    let mut kept_sets = KeptShingles::new(dedup.config());
    let mut index = new_index(dedup);
    // every pass skips the same invalid lines, so positions agree between passes
    let skip = dedup.config().skip_invalid;
    let invalid = corpus::InvalidLines::default();
    let again = corpus::InvalidLines::default();
    in_chunks(corpus::read_all_skipping(inputs, skip, &invalid), |chunk| {
        let texts: Vec<String> = chunk
            .into_iter()
            .map(|d| {
                scores.push(d.extra.get("score").and_then(|v| v.as_f64()));
                ids.push(d.id);
                d.text
            })
            .collect();
        sketch_chunk(dedup, &texts, &mut kept_sets, &mut index, &mut sketches)?;
        progress.update(ids.len() as u64, ids.len() as u64);
        Ok(())
    })?;
    progress.finish();
    let mut report = Report::new(dedup.params());
    report.invalid_lines = invalid.count();
    let pairs = candidate_pairs(dedup, index, &sketches, kept_sets, &mut report, || {
        corpus::read_all_skipping(inputs, skip, &again).map(|d| d.map(|d| d.text))
    })?;
    let outcomes = dedup.resolve_pairs(&sketches, &scores, &pairs);
    let spans: Vec<Option<String>> = sketches.into_iter().map(|s| s.contaminated).collect();

    let mut kept = JsonlWriter::create(&out.kept)?;
    let mut outcomes = outcomes;
    let mut paragraphs = dedup.config().paragraphs.then(crate::Paragraphs::default);
    for (i, d) in corpus::read_all_skipping(inputs, skip, &again).enumerate() {
        let mut d = d?;
        if !outcomes.get(i).is_some_and(|o| o.keep) {
            continue;
        }
        if let Some(p) = paragraphs.as_mut()
            && let Some(text) = drop_paragraphs(p, &d.text, &mut outcomes[i], &mut report)
        {
            d.text = text;
        }
        if outcomes[i].keep {
            kept.write(&d)?;
        }
    }
    kept.finish()?;
    report.paragraphs_removed = paragraphs.map_or(0, |p| p.removed);
    if let Some(path) = &out.clusters {
        let mut removed: Vec<Vec<usize>> = vec![Vec::new(); outcomes.len()];
        for (m, o) in outcomes.iter().enumerate() {
            if let (false, Some(k)) = (o.keep, o.cluster) {
                removed[k].push(m);
            }
        }
        let mut w = JsonlWriter::create(path)?;
        for (i, span) in spans.iter().enumerate() {
            if let Some(span) = span {
                w.write(&json!({ "contaminated": ids[i], "span": span }))?;
            }
        }
        for (k, members) in removed.iter().enumerate().filter(|(_, m)| !m.is_empty()) {
            w.write(&ClusterLine {
                kept: &ids[k],
                removed: members
                    .iter()
                    .map(|&m| Removed {
                        id: &ids[m],
                        kind: outcomes[m].kind.as_str(),
                    })
                    .collect(),
            })?;
        }
        w.finish()?;
    }
    report.count(&outcomes);
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
