//! The shard contract of a batch stage run as many tasks (a Slurm job array, or processes on
//! one machine): task `rank` of `world` takes a fixed, deterministic part of a list fixed at
//! launch, writes only files of its own (under temporary names, synced, renamed), and marks
//! itself complete last. A rerun skips the tasks with a marker; a task that died without one
//! is simply run again, from the start.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Task `rank` of `world`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Shard {
    pub rank: usize,
    pub world: usize,
}

impl Shard {
    /// Task `rank` of `world`; `None` unless `rank < world`.
    pub fn new(rank: usize, world: usize) -> Option<Shard> {
        (rank < world).then_some(Shard { rank, world })
    }

    /// The one task of a one-task run.
    pub const ALONE: Shard = Shard { rank: 0, world: 1 };

    /// This task's contiguous part of `0..n`: the parts of all ranks, in rank order, are
    /// `0..n` in order, and their sizes differ by one at most.
    pub fn range(&self, n: usize) -> Range<usize> {
        // a shard read from a file may break `new`'s rule: an empty part then, not a panic
        let world = self.world.max(1) as u128;
        let rank = (self.rank as u128).min(world);
        let at = |r: u128| ((n as u128 * r / world) as usize).min(n);
        at(rank)..at(rank + 1)
    }

    /// This task's part of `items` (a list sorted at launch).
    pub fn part<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        &items[self.range(items.len())]
    }
}

/// Input files in the order every task sees them: sorted by path, each once.
pub fn sorted_inputs(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut v = inputs.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Writes `bytes` to `path` atomically: to a temporary name beside it, synced, renamed, and the
/// folder synced, so that `path` either does not exist or holds all of `bytes`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.finish()
}

/// A file written whole or not at all, streamed: to `PATH.partial` (its folder created), then
/// on [`finish`](AtomicFile::finish) synced, renamed to `PATH` and the folder synced. Dropped
/// unfinished, it leaves the partial file, which the next writer replaces.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> std::io::Result<AtomicFile> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs_err::create_dir_all(d)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let out = std::io::BufWriter::with_capacity(1 << 20, fs_err::File::create(&tmp)?.into());
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            out,
        })
    }

    pub fn finish(self) -> std::io::Result<()> {
        let f = self.out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        fs_err::rename(&self.tmp, &self.path)?;
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty());
        sync_dir(dir.unwrap_or(Path::new(".")))
    }
}

impl std::io::Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Syncs a folder, so that the names renamed into it survive a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs_err::File::open(dir)?.sync_all()
}

/// The completion markers of a run's tasks: `DIR/STEP-RRRRR.done` holds the task's report,
/// `DIR/STEP-RRRRR.failed` the error that stopped it (removed when it is run again).
#[derive(Debug, Clone)]
pub struct Markers {
    dir: PathBuf,
}

impl Markers {
    pub fn new(dir: impl Into<PathBuf>) -> Markers {
        Markers { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, step: &str, rank: usize, ext: &str) -> PathBuf {
        self.dir.join(format!("{step}-{rank:05}.{ext}"))
    }

    /// The report of a task marked complete.
    pub fn done<T: DeserializeOwned>(&self, step: &str, rank: usize) -> crate::Result<Option<T>> {
        let p = self.path(step, rank, "done");
        match fs_err::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| crate::Error::BadLine {
                    path: p,
                    line: 1,
                    message: format!("not a completion marker: {e}"),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::Error::Input { path: p, err: e }),
        }
    }

    /// Whether the task has a completion marker.
    pub fn is_done(&self, step: &str, rank: usize) -> bool {
        self.path(step, rank, "done").exists()
    }

    /// Marks the task complete with its report, written atomically; clears a failure.
    pub fn mark_done<T: Serialize>(
        &self,
        step: &str,
        rank: usize,
        report: &T,
    ) -> crate::Result<()> {
        let bytes = serde_json::to_vec_pretty(report).map_err(std::io::Error::from)?;
        write_atomic(&self.path(step, rank, "done"), &bytes)?;
        let _ = fs_err::remove_file(self.path(step, rank, "failed"));
        Ok(())
    }

    /// Records why the task failed.
    pub fn mark_failed(&self, step: &str, rank: usize, why: &str) -> crate::Result<()> {
        write_atomic(&self.path(step, rank, "failed"), why.as_bytes())?;
        Ok(())
    }

    /// Why the task failed last, when it did and has not completed since.
    pub fn failure(&self, step: &str, rank: usize) -> Option<String> {
        if self.is_done(step, rank) {
            return None;
        }
        fs_err::read_to_string(self.path(step, rank, "failed")).ok()
    }

    /// Clears a failure before the task runs again.
    pub fn clear_failure(&self, step: &str, rank: usize) {
        let _ = fs_err::remove_file(self.path(step, rank, "failed"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_everything_in_order() {
        for n in [0, 1, 3, 4, 7, 100] {
            for world in 1..=9 {
                let all: Vec<usize> = (0..world)
                    .flat_map(|r| Shard::new(r, world).unwrap().range(n))
                    .collect();
                assert_eq!(all, (0..n).collect::<Vec<_>>(), "n {n} world {world}");
                let sizes: Vec<usize> = (0..world)
                    .map(|r| Shard::new(r, world).unwrap().range(n).len())
                    .collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{sizes:?}");
            }
        }
        assert!(Shard::new(4, 4).is_none());
    }

    #[test]
    fn markers_record_done_and_failed() {
        let dir = tempfile::tempdir().unwrap();
        let m = Markers::new(dir.path().join("markers"));
        assert_eq!(m.done::<u64>("clean", 3).unwrap(), None);
        m.mark_failed("clean", 3, "input.jsonl:7: bad").unwrap();
        assert_eq!(m.failure("clean", 3).as_deref(), Some("input.jsonl:7: bad"));
        m.mark_done("clean", 3, &42u64).unwrap();
        assert_eq!(m.done::<u64>("clean", 3).unwrap(), Some(42));
        assert_eq!(m.failure("clean", 3), None);
        let names: Vec<String> = std::fs::read_dir(m.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["clean-00003.done"], "no temporary file left");
    }
}
