//! The LSH index: every document's exact key and band keys, grouped to find candidate pairs.
//! It lives in memory up to a budget; past it, each key slot (the exact keys, then one slot per
//! band) is written to its own file as sorted runs, and candidates come from a k-way merge of
//! the runs, one slot at a time, as datatrove lays its buckets out. Memory then depends on the
//! chunk being sketched and on the number of duplicates, not on the corpus size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use rayon::prelude::*;

use crate::Sketch;

/// Bytes of one record on disk: a 128-bit key and a document index.
const RECORD: usize = 20;

pub(crate) struct BandIndex {
    exact: bool,
    bands: usize,
    budget: usize,
    bytes: usize,
    /// The records not yet written: exact keys, and one list per band (64-bit keys, so a
    /// record takes 16 bytes in memory).
    mem_exact: Vec<(u128, u32)>,
    mem_bands: Vec<Vec<(u64, u32)>>,
    dir: Option<tempfile::TempDir>,
    files: Vec<BufWriter<File>>,
    /// Per slot, each run's offset and record count.
    runs: Vec<Vec<(u64, u64)>>,
    parent: Option<std::path::PathBuf>,
}

impl BandIndex {
    /// `bands` band slots (0 when near duplicates are off); spills to a temporary folder in
    /// `parent` (or the system's) past `budget` bytes.
    pub fn new(exact: bool, bands: usize, budget: usize, parent: Option<&Path>) -> BandIndex {
        let slots = usize::from(exact) + bands;
        BandIndex {
            exact,
            bands,
            budget,
            bytes: 0,
            mem_exact: Vec::new(),
            mem_bands: vec![Vec::new(); bands],
            dir: None,
            files: Vec::new(),
            runs: vec![Vec::new(); slots],
            parent: parent.map(Path::to_path_buf),
        }
    }

    /// Sorted runs written so far (0 while everything fits in memory).
    pub fn runs(&self) -> usize {
        self.runs.first().map_or(0, Vec::len)
    }

    /// Adds the keys of a chunk of sketches (document `first` onwards).
    pub fn add(&mut self, first: usize, sketches: &[Sketch]) -> std::io::Result<()> {
        // the lists grow by doubling, but never past what the budget holds: a list that
        // doubled past it would hold up to twice the budget
        let per_doc = 32 * usize::from(self.exact) + 16 * self.bands;
        let cap = (self.budget / per_doc.max(1)).saturating_add(sketches.len());
        if self.exact {
            grow(&mut self.mem_exact, sketches.len(), cap);
        }
        for v in &mut self.mem_bands {
            grow(v, sketches.len(), cap);
        }
        for (k, s) in sketches.iter().enumerate() {
            let idx = (first + k) as u32;
            if self.exact {
                self.mem_exact.push((s.exact, idx));
                self.bytes += 32;
            }
            if s.bands.len() == self.bands {
                for (b, key) in s.bands.iter().enumerate() {
                    self.mem_bands[b].push((*key, idx));
                }
                self.bytes += 16 * self.bands;
            }
        }
        if self.bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> std::io::Result<()> {
        if self.dir.is_none() {
            let dir = match &self.parent {
                Some(p) => tempfile::Builder::new()
                    .prefix("zhcorpus-dedup-")
                    .tempdir_in(p)?,
                None => tempfile::Builder::new()
                    .prefix("zhcorpus-dedup-")
                    .tempdir()?,
            };
            for slot in 0..self.runs.len() {
                let f = File::create(dir.path().join(format!("slot-{slot:03}.bin")))?;
                self.files.push(BufWriter::with_capacity(256 << 10, f));
            }
            self.dir = Some(dir);
        }
        let mut exact = std::mem::take(&mut self.mem_exact);
        exact.par_sort_unstable();
        let mut bands = std::mem::take(&mut self.mem_bands);
        bands.par_iter_mut().for_each(|v| v.sort_unstable());
        let mut slot = 0;
        if self.exact {
            let f = &mut self.files[0];
            let offset = f.stream_position()?;
            for (key, idx) in &exact {
                f.write_all(&key.to_le_bytes())?;
                f.write_all(&idx.to_le_bytes())?;
            }
            self.runs[0].push((offset, exact.len() as u64));
            slot = 1;
        }
        for (b, records) in bands.iter_mut().enumerate() {
            let f = &mut self.files[slot + b];
            let offset = f.stream_position()?;
            for (key, idx) in records.iter() {
                f.write_all(&u128::from(*key).to_le_bytes())?;
                f.write_all(&idx.to_le_bytes())?;
            }
            self.runs[slot + b].push((offset, records.len() as u64));
            *records = Vec::new();
        }
        self.mem_bands = bands;
        self.bytes = 0;
        Ok(())
    }

    /// Candidate pairs (first member of a key group, other member, is the exact slot), exact
    /// pairs first; near pairs are deduplicated, but those between documents with the same
    /// exact key are still among them (see [`crate::drop_near_within_exact`]).
    pub fn pairs(mut self) -> std::io::Result<Vec<(u32, u32, bool)>> {
        let pending = !self.mem_exact.is_empty() || self.mem_bands.iter().any(|m| !m.is_empty());
        if self.dir.is_some() && pending {
            self.spill()?;
        }
        let slots = self.runs.len();
        let exact = self.exact;
        fn group<K: Ord + Copy + Send>(
            mut v: Vec<(K, u32)>,
            is_exact: bool,
        ) -> Vec<(u32, u32, bool)> {
            v.sort_unstable();
            let mut out = Vec::new();
            for run in v.chunk_by(|a, b| a.0 == b.0) {
                for &(_, other) in &run[1..] {
                    out.push((run[0].1, other, is_exact));
                }
            }
            out
        }
        let groups: Vec<Vec<(u32, u32, bool)>> = if self.dir.is_none() {
            let mut groups = vec![group(std::mem::take(&mut self.mem_exact), true)];
            let bands = std::mem::take(&mut self.mem_bands);
            groups.extend(
                bands
                    .into_par_iter()
                    .map(|v| group(v, false))
                    .collect::<Vec<_>>(),
            );
            if !exact {
                groups.remove(0);
            }
            groups
        } else {
            for f in &mut self.files {
                f.flush()?;
            }
            let dir = self
                .dir
                .as_ref()
                .map(|d| d.path().to_path_buf())
                .unwrap_or_default();
            let runs = &self.runs;
            (0..slots)
                .into_par_iter()
                .map(|slot| {
                    merge(
                        &dir.join(format!("slot-{slot:03}.bin")),
                        &runs[slot],
                        exact && slot == 0,
                    )
                })
                .collect::<std::io::Result<_>>()?
        };
        let mut pairs: Vec<(u32, u32, bool)> = Vec::new();
        let mut near: Vec<(u32, u32)> = Vec::new();
        for (slot, g) in groups.into_iter().enumerate() {
            if exact && slot == 0 {
                pairs.extend(g);
            } else {
                near.extend(g.into_iter().map(|(a, b, _)| (a, b)));
            }
        }
        near.par_sort_unstable();
        near.dedup();
        pairs.extend(near.into_iter().map(|(a, b)| (a, b, false)));
        Ok(pairs)
    }
}

/// Room in `v` for `more` records: doubling, but to at most `cap` records while below it
/// (documents without bands let the exact keys pass it: doubling again from there).
fn grow<T>(v: &mut Vec<T>, more: usize, cap: usize) {
    let need = v.len() + more;
    if v.capacity() < need {
        let doubled = v.len() * 2;
        let target = if v.len() < cap {
            doubled.min(cap)
        } else {
            doubled
        }
        .max(need);
        v.reserve_exact(target - v.len());
    }
}

/// A sorted run being read.
struct Run {
    reader: BufReader<File>,
    left: u64,
}

impl Run {
    fn next(&mut self) -> std::io::Result<Option<(u128, u32)>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; RECORD];
        self.reader.read_exact(&mut buf)?;
        self.left -= 1;
        let mut key = [0u8; 16];
        key.copy_from_slice(&buf[..16]);
        let mut idx = [0u8; 4];
        idx.copy_from_slice(&buf[16..]);
        Ok(Some((u128::from_le_bytes(key), u32::from_le_bytes(idx))))
    }
}

/// Merges one slot's sorted runs and pairs each key group's first member with the others.
fn merge(path: &Path, runs: &[(u64, u64)], exact: bool) -> std::io::Result<Vec<(u32, u32, bool)>> {
    let mut readers = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::new();
    for (i, &(offset, count)) in runs.iter().enumerate() {
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut run = Run {
            reader: BufReader::with_capacity(64 << 10, f),
            left: count,
        };
        if let Some((key, idx)) = run.next()? {
            heap.push(Reverse((key, idx, i)));
        }
        readers.push(run);
    }
    let mut out = Vec::new();
    let mut group: Option<(u128, u32)> = None;
    while let Some(Reverse((key, idx, i))) = heap.pop() {
        match group {
            Some((k, first)) if k == key => out.push((first, idx, exact)),
            _ => group = Some((key, idx)),
        }
        if let Some((key, idx)) = readers[i].next()? {
            heap.push(Reverse((key, idx, i)));
        }
    }
    Ok(out)
}
