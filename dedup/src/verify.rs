//! The exact Jaccard check of near-duplicate candidates. It needs the shingle sets of both
//! ends of every candidate pair: in memory while they fit the budget, else written to a
//! temporary file as they are made and read back pair by pair, so that the check's memory
//! does not grow with the number of duplicates either.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use rayon::prelude::*;

/// Near pairs checked per parallel task when the sets are on disk.
const BATCH: usize = 4096;

/// The shingle sets of the documents verification needs.
pub(crate) enum Sets {
    Memory {
        sets: HashMap<u32, Vec<u64>>,
        hashes: usize,
        budget: usize,
        parent: Option<std::path::PathBuf>,
    },
    Disk {
        file: tempfile::NamedTempFile,
        out: BufWriter<File>,
        /// Each set's offset and length in hashes.
        at: HashMap<u32, (u64, u32)>,
        end: u64,
    },
}

impl Sets {
    /// Holding up to `budget` hashes in memory, past it in a temporary file in `parent` (the
    /// system's temporary folder when absent).
    pub fn new(budget: usize, parent: Option<&Path>) -> Sets {
        Sets::Memory {
            sets: HashMap::new(),
            hashes: 0,
            budget,
            parent: parent.map(Path::to_path_buf),
        }
    }

    /// Sets already in memory (kept from the first pass).
    pub fn held(sets: HashMap<u32, Vec<u64>>) -> Sets {
        Sets::Memory {
            hashes: sets.values().map(Vec::len).sum(),
            sets,
            budget: usize::MAX,
            parent: None,
        }
    }

    /// True when the sets went to disk.
    pub fn on_disk(&self) -> bool {
        matches!(self, Sets::Disk { .. })
    }

    pub fn add(&mut self, doc: u32, set: Vec<u64>) -> std::io::Result<()> {
        match self {
            Sets::Memory {
                sets,
                hashes,
                budget,
                parent,
            } => {
                *hashes += set.len();
                sets.insert(doc, set);
                if *hashes > *budget {
                    let mut disk = Sets::disk(parent.as_deref())?;
                    let mut held: Vec<(u32, Vec<u64>)> = std::mem::take(sets).into_iter().collect();
                    held.sort_unstable_by_key(|p| p.0);
                    for (d, s) in held {
                        disk.add(d, s)?;
                    }
                    *self = disk;
                }
                Ok(())
            }
            Sets::Disk { out, at, end, .. } => {
                at.insert(doc, (*end, set.len() as u32));
                for h in &set {
                    out.write_all(&h.to_le_bytes())?;
                }
                *end += 8 * set.len() as u64;
                Ok(())
            }
        }
    }

    fn disk(parent: Option<&Path>) -> std::io::Result<Sets> {
        let file = match parent {
            Some(p) => tempfile::Builder::new()
                .prefix("zhcorpus-dedup-sets-")
                .tempfile_in(p)?,
            None => tempfile::Builder::new()
                .prefix("zhcorpus-dedup-sets-")
                .tempfile()?,
        };
        let out = BufWriter::with_capacity(1 << 20, file.reopen()?);
        Ok(Sets::Disk {
            file,
            out,
            at: HashMap::new(),
            end: 0,
        })
    }

    /// Keeps the exact pairs and the near pairs whose sets' Jaccard similarity reaches
    /// `threshold` (a pair whose set is missing is kept), in their order.
    pub fn verify(
        &mut self,
        pairs: Vec<(u32, u32, bool)>,
        threshold: f64,
    ) -> std::io::Result<Vec<(u32, u32, bool)>> {
        let similar = |x: &[u64], y: &[u64]| crate::minhash::jaccard(x, y) >= threshold;
        match self {
            Sets::Memory { sets, .. } => Ok(pairs
                .into_par_iter()
                .filter(|&(a, b, exact)| {
                    exact
                        || match (sets.get(&a), sets.get(&b)) {
                            (Some(x), Some(y)) => similar(x, y),
                            _ => true,
                        }
                })
                .collect()),
            Sets::Disk { file, out, at, .. } => {
                out.flush()?;
                let path = file.path();
                let at = &*at;
                let keep: Vec<Vec<bool>> = pairs
                    .par_chunks(BATCH)
                    .map(|batch| -> std::io::Result<Vec<bool>> {
                        let mut f = BufReader::with_capacity(64 << 10, File::open(path)?);
                        // pairs come sorted by their first member: read it once per run
                        let mut first: Option<(u32, Vec<u64>)> = None;
                        let mut other = Vec::new();
                        batch
                            .iter()
                            .map(|&(a, b, exact)| {
                                if exact {
                                    return Ok(true);
                                }
                                let (Some(&pa), Some(&pb)) = (at.get(&a), at.get(&b)) else {
                                    return Ok(true);
                                };
                                if first.as_ref().is_none_or(|f| f.0 != a) {
                                    let mut set = Vec::new();
                                    read_set(&mut f, pa, &mut set)?;
                                    first = Some((a, set));
                                }
                                read_set(&mut f, pb, &mut other)?;
                                let x = first.as_ref().map_or(&[][..], |f| &f.1[..]);
                                Ok(similar(x, &other))
                            })
                            .collect()
                    })
                    .collect::<std::io::Result<_>>()?;
                Ok(pairs
                    .into_iter()
                    .zip(keep.into_iter().flatten())
                    .filter_map(|(p, k)| k.then_some(p))
                    .collect())
            }
        }
    }
}

fn read_set(
    f: &mut BufReader<File>,
    (offset, len): (u64, u32),
    into: &mut Vec<u64>,
) -> std::io::Result<()> {
    f.seek(SeekFrom::Start(offset))?;
    into.clear();
    let mut buf = [0u8; 8];
    for _ in 0..len {
        f.read_exact(&mut buf)?;
        into.push(u64::from_le_bytes(buf));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same pairs survive whether the sets stay in memory or go to disk part-way.
    #[test]
    fn sets_on_disk_verify_as_in_memory() {
        let set = |i: u32| -> Vec<u64> {
            // documents in groups of three share most of their hashes
            let base = u64::from(i / 3) * 1000;
            let mut s: Vec<u64> = (base..base + 40).collect();
            s.extend((0..u64::from(i % 3) * 6).map(|k| 1_000_000 + u64::from(i) * 100 + k));
            s.sort_unstable();
            s
        };
        let mut pairs = Vec::new();
        for a in 0..300u32 {
            for b in [a + 1, a + 2, a + 7] {
                pairs.push((a, b, a % 50 == 0));
            }
        }
        let mut memory = Sets::new(usize::MAX, None);
        let mut disk = Sets::new(500, None);
        for i in 0..310u32 {
            memory.add(i, set(i)).unwrap();
            disk.add(i, set(i)).unwrap();
        }
        assert!(!memory.on_disk() && disk.on_disk());
        let a = memory.verify(pairs.clone(), 0.8).unwrap();
        let b = disk.verify(pairs.clone(), 0.8).unwrap();
        assert_eq!(a, b);
        // exact pairs stay; near pairs stay when close (3 and 4: 40 of 46 hashes shared)
        assert!(pairs.iter().filter(|p| p.2).all(|p| a.contains(p)));
        assert!(a.contains(&(3, 4, false)));
        // and go when not (4 and 5: 40 of 58; 3 and 10: none)
        assert!(!a.contains(&(4, 5, false)) && !a.contains(&(3, 10, false)));
    }
}
