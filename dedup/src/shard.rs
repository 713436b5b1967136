//! Dedup split over tasks, in datatrove's layout, with the one-machine run's results. Five
//! steps, each writing only its own files in a work folder shared by the tasks:
//!
//! 1. [`sketch_shard`], one task per input shard: each document's exact key and LSH band keys,
//!    written sorted per key slot (`sketch-RRRRR.slot-SSS.bin`), and its facts (exact key,
//!    length, score) in document order (`sketch-RRRRR.rows.bin`).
//! 2. [`pairs_task`], one task per group of slots: a k-way merge of every shard's sorted
//!    file of the slot, emitting each key group's pairs (first member, other) with global ids:
//!    a document's global id is its position in its shard plus the documents of the shards
//!    before it (`pairs-SSS.bin`).
//! 3. [`sets_shard`], one task per input shard: the shingle sets of this shard's documents that
//!    are in a near pair, for the exact Jaccard check (`sets-RRRRR.bin`).
//! 4. [`cluster`], one task: the pairs of every slot, verified by exact Jaccard as on one
//!    machine, clustered (union-find over global ids), the kept member of each cluster chosen
//!    by the keep policy; the outcome of every document not kept alone, per shard
//!    (`outcomes-RRRRR.bin`).
//! 5. [`filter_shard`], one task per input shard: the shard's kept documents, in order.
//!
//! The shards' kept documents, in shard order, are those [`crate::run_files`] keeps over the
//! shards' inputs in the same order. Paragraph-level dedup and decontamination read the corpus
//! in order and are refused here ([`check_splittable`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use corpus::shard::AtomicFile;
use corpus::{DedupKind, Document, JsonlWriter, Progress};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::verify::Sets;
use crate::{Dedup, Error, Facts, Outcome};

/// Documents sketched per parallel chunk.
const CHUNK: usize = 8192;

/// Refuses the settings a split run cannot honour: paragraph dedup and decontamination judge
/// each document against every one before it, in corpus order.
pub fn check_splittable(dedup: &Dedup) -> Result<(), Error> {
    if dedup.config().paragraphs {
        return Err(Error::Config(
            "paragraphs = true: paragraph-level dedup reads the corpus in order and runs on \
             one machine only"
                .into(),
        ));
    }
    if dedup.contamination_ngrams().is_some() {
        return Err(Error::Config(
            "contamination: decontamination runs on one machine only".into(),
        ));
    }
    Ok(())
}

/// Key slots: the exact keys (slot 0, when exact dedup is on), then one per LSH band.
pub fn slots(dedup: &Dedup) -> usize {
    let c = dedup.config();
    usize::from(c.exact) + if c.near { dedup.params().bands } else { 0 }
}

/// Whether `slot` holds exact keys.
fn is_exact_slot(dedup: &Dedup, slot: usize) -> bool {
    dedup.config().exact && slot == 0
}

fn sketch_slot(work: &Path, rank: usize, slot: usize) -> PathBuf {
    work.join(format!("sketch-{rank:05}.slot-{slot:03}.bin"))
}

fn rows_file(work: &Path, rank: usize) -> PathBuf {
    work.join(format!("sketch-{rank:05}.rows.bin"))
}

fn pairs_file(work: &Path, slot: usize) -> PathBuf {
    work.join(format!("pairs-{slot:03}.bin"))
}

fn sets_file(work: &Path, rank: usize) -> PathBuf {
    work.join(format!("sets-{rank:05}.bin"))
}

fn outcomes_file(work: &Path, rank: usize) -> PathBuf {
    work.join(format!("outcomes-{rank:05}.bin"))
}

/// Each shard's first global id: the prefix sums of the shards' document counts.
fn offsets(counts: &[u64]) -> Vec<u64> {
    let mut at = 0;
    counts
        .iter()
        .map(|&n| {
            let first = at;
            at += n;
            first
        })
        .collect()
}

/// Global ids are u32, as on one machine.
fn check_total(counts: &[u64]) -> corpus::Result<()> {
    let total: u64 = counts.iter().sum();
    if total > u64::from(u32::MAX) {
        return Err(corpus::Error::Io(std::io::Error::other(format!(
            "{total} documents: one dedup run takes at most {} (split the corpus)",
            u32::MAX
        ))));
    }
    Ok(())
}

fn open(path: &Path) -> corpus::Result<BufReader<File>> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 16, f))
        .map_err(|err| corpus::Error::Input {
            path: path.to_path_buf(),
            err,
        })
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> corpus::Error + '_ {
    move |err| corpus::Error::Input {
        path: path.to_path_buf(),
        err,
    }
}

/// Reads `N` bytes, or `None` at a clean end of file.
fn read_array<const N: usize>(r: &mut impl Read) -> std::io::Result<Option<[u8; N]>> {
    let mut b = [0; N];
    let mut got = 0;
    while got < N {
        match r.read(&mut b[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    Ok(Some(b))
}

/// What one shard's sketch step did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SketchReport {
    pub documents: u64,
    pub invalid_lines: u64,
    pub seconds: f64,
}

/// Step 1 for shard `rank`: sketches its `inputs` into the work folder.
pub fn sketch_shard(
    dedup: &Dedup,
    inputs: &[PathBuf],
    work: &Path,
    rank: usize,
    progress: &dyn Progress,
) -> corpus::Result<SketchReport> {
    let start = Instant::now();
    fs_err::create_dir_all(work)?;
    let skip = dedup.config().skip_invalid;
    let invalid = corpus::InvalidLines::default();
    let slots = slots(dedup);
    let exact = dedup.config().exact;
    let mut keys_exact: Vec<(u128, u32)> = Vec::new();
    let mut keys_band: Vec<Vec<(u64, u32)>> = vec![Vec::new(); slots - usize::from(exact)];
    let mut rows = AtomicFile::create(&rows_file(work, rank))?;
    let mut n: u32 = 0;
    progress.start("sketch", None);
    let mut chunk: Vec<Document> = Vec::with_capacity(CHUNK);
    let mut flush = |chunk: &mut Vec<Document>, n: &mut u32| -> corpus::Result<()> {
        let texts: Vec<&str> = chunk.iter().map(|d| d.text.as_str()).collect();
        let sketches = dedup.sketch_all(&texts);
        for (d, s) in chunk.iter().zip(sketches) {
            if exact {
                keys_exact.push((s.exact, *n));
            }
            for (slot, &k) in keys_band.iter_mut().zip(&s.bands) {
                slot.push((k, *n));
            }
            let score = d.extra.get("score").and_then(|v| v.as_f64());
            rows.write_all(&s.exact.to_le_bytes())?;
            rows.write_all(&(s.len as u64).to_le_bytes())?;
            rows.write_all(&[u8::from(score.is_some())])?;
            rows.write_all(&score.unwrap_or(0.0).to_le_bytes())?;
            *n = n
                .checked_add(1)
                .ok_or_else(|| std::io::Error::other("a shard of more than 4 billion documents"))?;
        }
        chunk.clear();
        progress.update(u64::from(*n), u64::from(*n));
        Ok(())
    };
    for d in corpus::read_all_skipping(inputs, skip, &invalid) {
        chunk.push(d?);
        if chunk.len() == CHUNK {
            flush(&mut chunk, &mut n)?;
        }
    }
    flush(&mut chunk, &mut n)?;
    rows.finish()?;
    // each slot sorted, as the merge reads it
    if exact {
        keys_exact.par_sort_unstable();
        let mut w = AtomicFile::create(&sketch_slot(work, rank, 0))?;
        for (k, i) in &keys_exact {
            w.write_all(&k.to_le_bytes())?;
            w.write_all(&i.to_le_bytes())?;
        }
        w.finish()?;
    }
    drop(keys_exact);
    let first_band = usize::from(exact);
    keys_band
        .into_par_iter()
        .enumerate()
        .map(|(b, mut keys)| -> std::io::Result<()> {
            keys.sort_unstable();
            let mut w = AtomicFile::create(&sketch_slot(work, rank, first_band + b))?;
            for (k, i) in &keys {
                w.write_all(&u128::from(*k).to_le_bytes())?;
                w.write_all(&i.to_le_bytes())?;
            }
            w.finish()
        })
        .collect::<std::io::Result<()>>()?;
    progress.finish();
    Ok(SketchReport {
        documents: u64::from(n),
        invalid_lines: invalid.count(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// What a pairs task did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PairsReport {
    pub slots: Vec<usize>,
    pub pairs: u64,
    pub seconds: f64,
}

/// Step 2: for each of `slots`, merges every shard's sorted keys (shards' document counts in
/// `counts`, in rank order) and writes the slot's pairs with global ids.
pub fn pairs_task(
    work: &Path,
    counts: &[u64],
    slots: &[usize],
    progress: &dyn Progress,
) -> corpus::Result<PairsReport> {
    let start = Instant::now();
    check_total(counts)?;
    let offsets = offsets(counts);
    progress.start("pairs", Some(slots.len() as u64));
    let pairs: Vec<u64> = slots
        .par_iter()
        .map(|&slot| merge_slot(work, &offsets, slot))
        .collect::<corpus::Result<_>>()?;
    progress.finish();
    Ok(PairsReport {
        slots: slots.to_vec(),
        pairs: pairs.iter().sum(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn merge_slot(work: &Path, offsets: &[u64], slot: usize) -> corpus::Result<u64> {
    let paths: Vec<PathBuf> = (0..offsets.len())
        .map(|r| sketch_slot(work, r, slot))
        .collect();
    let mut readers: Vec<BufReader<File>> =
        paths.iter().map(|p| open(p)).collect::<Result<_, _>>()?;
    let next = |r: &mut BufReader<File>,
                path: &Path,
                offset: u64|
     -> corpus::Result<Option<(u128, u32)>> {
        let Some(rec) = read_array::<20>(r).map_err(read_err(path))? else {
            return Ok(None);
        };
        let key = u128::from_le_bytes(rec[..16].try_into().unwrap_or_default());
        let local = u32::from_le_bytes(rec[16..].try_into().unwrap_or_default());
        Ok(Some((key, (offset + u64::from(local)) as u32)))
    };
    let mut heap = BinaryHeap::new();
    for (r, reader) in readers.iter_mut().enumerate() {
        if let Some((k, id)) = next(reader, &paths[r], offsets[r])? {
            heap.push(Reverse((k, id, r)));
        }
    }
    let mut out = AtomicFile::create(&pairs_file(work, slot))?;
    let mut written = 0;
    let mut group: Option<(u128, u32)> = None;
    while let Some(Reverse((k, id, r))) = heap.pop() {
        match group {
            Some((gk, first)) if gk == k => {
                out.write_all(&first.to_le_bytes())?;
                out.write_all(&id.to_le_bytes())?;
                written += 1;
            }
            _ => group = Some((k, id)),
        }
        if let Some((k, id)) = next(&mut readers[r], &paths[r], offsets[r])? {
            heap.push(Reverse((k, id, r)));
        }
    }
    out.finish()?;
    Ok(written)
}

/// Reads one slot's pairs.
fn read_pairs(work: &Path, slot: usize, mut each: impl FnMut(u32, u32)) -> corpus::Result<()> {
    let path = pairs_file(work, slot);
    let mut r = open(&path)?;
    while let Some(rec) = read_array::<8>(&mut r).map_err(read_err(&path))? {
        let a = u32::from_le_bytes(rec[..4].try_into().unwrap_or_default());
        let b = u32::from_le_bytes(rec[4..].try_into().unwrap_or_default());
        each(a, b);
    }
    Ok(())
}

/// What a sets task did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SetsReport {
    pub sets: u64,
    pub seconds: f64,
}

/// Step 3 for shard `rank`: the shingle sets of its documents in a near pair (none when
/// candidates are not verified).
pub fn sets_shard(
    dedup: &Dedup,
    inputs: &[PathBuf],
    work: &Path,
    counts: &[u64],
    rank: usize,
    progress: &dyn Progress,
) -> corpus::Result<SetsReport> {
    let start = Instant::now();
    check_total(counts)?;
    let offsets = offsets(counts);
    let first = offsets.get(rank).copied().unwrap_or(0);
    let end = first + counts.get(rank).copied().unwrap_or(0);
    let mut need: HashSet<u32> = HashSet::new();
    if dedup.config().verify {
        for slot in 0..slots(dedup) {
            if !is_exact_slot(dedup, slot) {
                read_pairs(work, slot, |a, b| {
                    for i in [a, b] {
                        if (first..end).contains(&u64::from(i)) {
                            need.insert((u64::from(i) - first) as u32);
                        }
                    }
                })?;
            }
        }
    }
    progress.start("sets", Some(need.len() as u64));
    let mut out = AtomicFile::create(&sets_file(work, rank))?;
    let skip = dedup.config().skip_invalid;
    let invalid = corpus::InvalidLines::default();
    let mut written = 0u64;
    if !need.is_empty() {
        let mut chunk: Vec<(u32, String)> = Vec::new();
        let mut write = |chunk: &mut Vec<(u32, String)>| -> std::io::Result<()> {
            let sets: Vec<(u32, Vec<u64>)> = chunk
                .par_iter()
                .map(|(i, t)| (*i, dedup.shingle_set(t)))
                .collect();
            for (i, set) in sets {
                out.write_all(&((first + u64::from(i)) as u32).to_le_bytes())?;
                out.write_all(&(set.len() as u32).to_le_bytes())?;
                for h in set {
                    out.write_all(&h.to_le_bytes())?;
                }
                written += 1;
            }
            chunk.clear();
            progress.update(written, written);
            Ok(())
        };
        for (i, d) in corpus::read_all_skipping(inputs, skip, &invalid)
            .take((end - first) as usize)
            .enumerate()
        {
            let d = d?;
            if need.contains(&(i as u32)) {
                chunk.push((i as u32, d.text));
                if chunk.len() == CHUNK {
                    write(&mut chunk)?;
                }
            }
        }
        write(&mut chunk)?;
    }
    out.finish()?;
    progress.finish();
    Ok(SetsReport {
        sets: written,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// What the cluster task decided.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterReport {
    pub documents: u64,
    pub candidate_pairs: u64,
    pub pairs_rejected_by_verification: u64,
    pub exact_duplicates: u64,
    pub near_duplicates: u64,
    /// Clusters of two or more documents.
    pub clusters: u64,
    pub seconds: f64,
}

/// One shard's rows: (exact key, length, score) of its documents at the asked positions.
fn rows_of(work: &Path, rank: usize, wanted: &[u32]) -> corpus::Result<Vec<Facts>> {
    const ROW: u64 = 16 + 8 + 1 + 8;
    let path = rows_file(work, rank);
    let mut f = File::open(&path).map_err(read_err(&path))?;
    let mut out = Vec::with_capacity(wanted.len());
    for &i in wanted {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(u64::from(i) * ROW))
            .map_err(read_err(&path))?;
        let b = read_array::<33>(&mut f)
            .map_err(read_err(&path))?
            .ok_or_else(|| corpus::Error::Input {
                path: path.clone(),
                err: std::io::ErrorKind::UnexpectedEof.into(),
            })?;
        let exact = u128::from_le_bytes(b[..16].try_into().unwrap_or_default());
        let len = u64::from_le_bytes(b[16..24].try_into().unwrap_or_default()) as usize;
        let score =
            (b[24] == 1).then(|| f64::from_le_bytes(b[25..].try_into().unwrap_or_default()));
        out.push(Facts { exact, len, score });
    }
    Ok(out)
}

/// Step 4, one task: the pairs of every slot verified and clustered; each shard's outcomes
/// written for its filter.
pub fn cluster(
    dedup: &Dedup,
    work: &Path,
    counts: &[u64],
    progress: &dyn Progress,
) -> corpus::Result<ClusterReport> {
    let start = Instant::now();
    check_total(counts)?;
    if counts.is_empty() {
        return Ok(ClusterReport::default());
    }
    let offsets = offsets(counts);
    progress.start("cluster", None);
    // exact pairs first, then the near ones deduplicated, as one machine's index gives them
    let mut pairs: Vec<(u32, u32, bool)> = Vec::new();
    let mut near: Vec<(u32, u32)> = Vec::new();
    for slot in 0..slots(dedup) {
        if is_exact_slot(dedup, slot) {
            read_pairs(work, slot, |a, b| pairs.push((a, b, true)))?;
        } else {
            read_pairs(work, slot, |a, b| near.push((a, b)))?;
        }
    }
    near.par_sort_unstable();
    near.dedup();
    pairs.extend(near.into_iter().map(|(a, b)| (a, b, false)));
    // the facts of the documents in pairs, shard by shard
    let rank_of = |i: u32| {
        offsets
            .partition_point(|&o| o <= u64::from(i))
            .saturating_sub(1)
    };
    let mut ends = crate::pair_ends(&pairs);
    let mut facts: Vec<Facts> = Vec::with_capacity(ends.len());
    let mut k = 0;
    while k < ends.len() {
        let r = rank_of(ends[k]);
        let stop = k + ends[k..].partition_point(|&i| rank_of(i) == r);
        let local: Vec<u32> = ends[k..stop]
            .iter()
            .map(|&i| (u64::from(i) - offsets[r]) as u32)
            .collect();
        facts.extend(rows_of(work, r, &local)?);
        k = stop;
    }
    if dedup.config().exact {
        let exact = |i: u32| ends.binary_search(&i).map_or(0, |k| facts[k].exact);
        pairs = crate::drop_near_within_exact(pairs, exact);
    }
    let mut report = ClusterReport {
        documents: counts.iter().sum(),
        candidate_pairs: pairs.iter().filter(|p| !p.2).count() as u64,
        ..ClusterReport::default()
    };
    if dedup.config().verify && report.candidate_pairs > 0 {
        let need: HashSet<u32> = pairs
            .iter()
            .filter(|p| !p.2)
            .flat_map(|&(a, b, _)| [a, b])
            .collect();
        // in memory up to the verification budget, on disk past it, as on one machine
        let c = dedup.config();
        let mut sets = Sets::new(crate::run::budgets(c).1, c.spill_dir.as_deref());
        for r in 0..counts.len() {
            let path = sets_file(work, r);
            let mut f = open(&path)?;
            while let Some(head) = read_array::<8>(&mut f).map_err(read_err(&path))? {
                let id = u32::from_le_bytes(head[..4].try_into().unwrap_or_default());
                let n = u32::from_le_bytes(head[4..].try_into().unwrap_or_default()) as u64;
                // read through `take`: a corrupt length cannot ask for more than the file holds
                let mut bytes = Vec::new();
                (&mut f)
                    .take(n * 8)
                    .read_to_end(&mut bytes)
                    .map_err(read_err(&path))?;
                if bytes.len() as u64 != n * 8 {
                    return Err(read_err(&path)(std::io::ErrorKind::UnexpectedEof.into()));
                }
                if need.contains(&id) {
                    let set = bytes
                        .chunks_exact(8)
                        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
                        .collect();
                    sets.add(id, set)?;
                }
            }
        }
        pairs = sets.verify(pairs, c.threshold)?;
        let kept = pairs.iter().filter(|p| !p.2).count() as u64;
        report.pairs_rejected_by_verification = report.candidate_pairs - kept;
    }
    // the documents left in pairs, and their facts
    let left = crate::pair_ends(&pairs);
    if left.len() < ends.len() {
        facts = left
            .iter()
            .filter_map(|i| ends.binary_search(i).ok().map(|k| facts[k]))
            .collect();
        ends = left;
    }
    let sparse = dedup.resolve_sparse(&pairs, &ends, &facts, &[]);
    // each shard's outcomes: (position in the shard, keep, kind, the kept member's global id)
    let mut writers: Vec<AtomicFile> = (0..counts.len())
        .map(|r| AtomicFile::create(&outcomes_file(work, r)))
        .collect::<std::io::Result<_>>()?;
    for (i, o) in &sparse {
        let r = rank_of(*i);
        let w = &mut writers[r];
        w.write_all(&((u64::from(*i) - offsets[r]) as u32).to_le_bytes())?;
        w.write_all(&[u8::from(o.keep), kind_byte(o.kind)])?;
        let cluster = o.cluster.map_or(u32::MAX, |c| c as u32);
        w.write_all(&cluster.to_le_bytes())?;
        match (o.keep, o.kind) {
            (true, _) if o.cluster.is_some() => report.clusters += 1,
            (false, DedupKind::Exact) => report.exact_duplicates += 1,
            (false, _) => report.near_duplicates += 1,
            _ => {}
        }
    }
    for w in writers {
        w.finish()?;
    }
    progress.finish();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

fn kind_byte(k: DedupKind) -> u8 {
    match k {
        DedupKind::Unique => 0,
        DedupKind::Exact => 1,
        DedupKind::Near => 2,
        DedupKind::Contaminated => 3,
    }
}

fn byte_kind(b: u8) -> DedupKind {
    match b {
        1 => DedupKind::Exact,
        2 => DedupKind::Near,
        3 => DedupKind::Contaminated,
        _ => DedupKind::Unique,
    }
}

/// What one shard's filter did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FilterReport {
    pub documents: u64,
    pub kept: u64,
    pub exact_duplicates: u64,
    pub near_duplicates: u64,
    pub seconds: f64,
}

/// Step 5 for shard `rank`: writes its kept documents (`documents` of them were sketched) to
/// `output`, in order.
pub fn filter_shard(
    dedup: &Dedup,
    inputs: &[PathBuf],
    work: &Path,
    rank: usize,
    documents: u64,
    output: &Path,
    progress: &dyn Progress,
) -> corpus::Result<FilterReport> {
    let start = Instant::now();
    corpus::check_output(output)?;
    let path = outcomes_file(work, rank);
    let mut f = open(&path)?;
    let mut sparse: Vec<(u32, Outcome)> = Vec::new();
    while let Some(b) = read_array::<10>(&mut f).map_err(read_err(&path))? {
        let i = u32::from_le_bytes(b[..4].try_into().unwrap_or_default());
        let cluster = u32::from_le_bytes(b[6..].try_into().unwrap_or_default());
        sparse.push((
            i,
            Outcome {
                keep: b[4] == 1,
                kind: byte_kind(b[5]),
                cluster: (cluster != u32::MAX).then_some(cluster as usize),
            },
        ));
    }
    progress.start("filter", Some(documents));
    let mut report = FilterReport::default();
    let mut out = JsonlWriter::create(output)?;
    let skip = dedup.config().skip_invalid;
    let invalid = corpus::InvalidLines::default();
    let mut next = sparse.iter().peekable();
    for (i, d) in corpus::read_all_skipping(inputs, skip, &invalid)
        .take(documents as usize)
        .enumerate()
    {
        let d = d?;
        let o = match next.next_if(|p| p.0 as usize == i) {
            Some(&(_, o)) => o,
            None => Outcome::ALONE,
        };
        report.documents += 1;
        match (o.keep, o.kind) {
            (true, _) => {
                report.kept += 1;
                out.write(&d)?;
            }
            (false, DedupKind::Exact) => report.exact_duplicates += 1,
            (false, _) => report.near_duplicates += 1,
        }
        if report.documents % 8192 == 0 {
            progress.update(report.documents, report.documents);
        }
    }
    out.finish()?;
    progress.finish();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use corpus::NoProgress;

    /// Documents with exact and near copies spread over the files, some near pairs below the
    /// threshold once checked.
    fn corpus(dir: &Path) -> Vec<PathBuf> {
        let mut rng = ::tests::Rng::new(11);
        let mut docs: Vec<Document> = Vec::new();
        for i in 0..600 {
            let text = if i >= 40 && i % 9 == 0 {
                // an exact copy of an earlier document
                docs[(i * 7) % 40].text.clone()
            } else if i >= 40 && i % 5 == 0 {
                // a near copy: an earlier text with a few characters changed (three: well
                // above the threshold; five: near it, so that the check turns some down)
                let mut chars: Vec<char> = docs[(i * 3) % 40].text.chars().collect();
                for k in 0..(if i % 2 == 0 { 3 } else { 5 }) {
                    let at = (i * 13 + k * 31) % chars.len();
                    chars[at] = '变';
                }
                chars.into_iter().collect()
            } else {
                ::tests::generate_text(&mut rng, 150)
            };
            let mut d = Document::new(format!("d{i:04}"), text);
            d.extra
                .insert("score".into(), ((i % 10) as f64 / 10.0).into());
            docs.push(d);
        }
        let mut files = Vec::new();
        for (f, part) in docs.chunks(110).enumerate() {
            let path = dir.join(format!("in-{f}.jsonl"));
            let mut w = JsonlWriter::create(&path).unwrap();
            for d in part {
                w.write(d).unwrap();
            }
            w.finish().unwrap();
            files.push(path);
        }
        files
    }

    fn ids(path: &Path) -> Vec<String> {
        corpus::read_all(&[path.to_path_buf()])
            .map(|d| d.unwrap().id)
            .collect()
    }

    /// Every step of a split run over `world` shards; the kept ids of the shards in order.
    fn split_run(dedup: &Dedup, files: &[PathBuf], world: usize, dir: &Path) -> Vec<String> {
        let work = dir.join(format!("work-{world}"));
        let inputs: Vec<&[PathBuf]> = (0..world)
            .map(|r| corpus::shard::Shard::new(r, world).unwrap().part(files))
            .collect();
        let counts: Vec<u64> = (0..world)
            .map(|r| {
                sketch_shard(dedup, inputs[r], &work, r, &NoProgress)
                    .unwrap()
                    .documents
            })
            .collect();
        let all: Vec<usize> = (0..slots(dedup)).collect();
        // two pairs tasks, each with every other slot
        for t in 0..2 {
            let mine: Vec<usize> = all.iter().copied().filter(|s| s % 2 == t).collect();
            pairs_task(&work, &counts, &mine, &NoProgress).unwrap();
        }
        for (r, part) in inputs.iter().enumerate() {
            sets_shard(dedup, part, &work, &counts, r, &NoProgress).unwrap();
        }
        let report = cluster(dedup, &work, &counts, &NoProgress).unwrap();
        assert!(
            report.exact_duplicates > 0 && report.near_duplicates > 0,
            "{report:?}"
        );
        let mut kept = Vec::new();
        for r in 0..world {
            let out = work.join(format!("kept-{r}.jsonl"));
            let f = filter_shard(dedup, inputs[r], &work, r, counts[r], &out, &NoProgress).unwrap();
            assert_eq!(f.documents, counts[r]);
            kept.extend(ids(&out));
        }
        kept
    }

    #[test]
    fn a_split_run_keeps_what_one_machine_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let files = corpus(dir.path());
        // the third: the shingle sets checked from disk, past a budget of one hash
        for (keep, verify_memory) in [
            (crate::KeepPolicy::First, 16 << 20),
            (crate::KeepPolicy::Score, 16 << 20),
            (crate::KeepPolicy::First, 1),
        ] {
            let cfg = crate::Config {
                keep,
                verify_memory,
                ..crate::Config::default()
            };
            let dedup = Dedup::new(&cfg).unwrap();
            let one = dir
                .path()
                .join(format!("one-{keep:?}-{verify_memory}.jsonl"));
            let out = crate::FileOutputs {
                kept: one.clone(),
                clusters: None,
            };
            let r = crate::run_files(&files, &out, &dedup, &NoProgress).unwrap();
            assert!(r.exact_duplicates > 0 && r.near_duplicates > 0, "{r:?}");
            assert!(r.pairs_rejected_by_verification > 0, "{r:?}");
            assert_eq!(r.verified_on_disk, verify_memory == 1, "{r:?}");
            let expected = ids(&one);
            // 8 shards over 6 files: two of them empty
            for world in [1, 2, 4, 6, 8] {
                let got = split_run(&dedup, &files, world, dir.path());
                assert_eq!(got, expected, "{world} shards, keep {keep:?}");
                std::fs::remove_dir_all(dir.path().join(format!("work-{world}"))).unwrap();
            }
        }
    }

    #[test]
    fn paragraphs_and_decontamination_are_refused() {
        let cfg = crate::Config {
            paragraphs: true,
            ..crate::Config::default()
        };
        let err = check_splittable(&Dedup::new(&cfg).unwrap()).unwrap_err();
        assert!(err.to_string().contains("paragraphs"), "{err}");
    }
}
