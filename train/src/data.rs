//! The data loader: the shards of one split, memory-mapped, read as random windows of T + 1
//! tokens. Windows never cross a shard's end; the k-th batch depends only on the seed and k,
//! so a resumed run reads exactly what the uninterrupted run would have read.

use std::path::Path;

use corpus::shards::{self, Dtype, Manifest, Split};
use memmap2::Mmap;

use crate::model::Rng;

/// A shard folder that cannot be trained on.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Shard(#[from] shards::ShardError),
    #[error("{0}")]
    Invalid(String),
}

struct Shard {
    map: Mmap,
    dtype: Dtype,
    tokens: usize,
}

impl Shard {
    fn token(&self, i: usize) -> u32 {
        let at = shards::HEADER_INTS * 4 + i * self.dtype.bytes();
        let b = &self.map[at..at + self.dtype.bytes()];
        match self.dtype {
            Dtype::U16 => u32::from(u16::from_le_bytes([b[0], b[1]])),
            Dtype::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    }
}

/// The shards of one split, ready to sample windows from.
pub struct Loader {
    shards: Vec<Shard>,
    /// Cumulative count of window start positions per shard (for uniform sampling).
    starts: Vec<u64>,
    window: usize,
    pub vocab_size: usize,
    pub tokens: u64,
}

impl Loader {
    /// Opens the `split` shards listed in `dir`'s manifest for windows of `window` tokens
    /// (sequence length + 1). Every shard's header is checked against its size and the
    /// manifest, and every token against the vocabulary size is not (that would read the
    /// corpus); ids are checked when batches are built.
    pub fn open(dir: &Path, split: Split, window: usize) -> Result<Loader, DataError> {
        let manifest = Manifest::read(dir)?;
        let mut shards = Vec::new();
        for info in manifest.shards.iter().filter(|s| s.split == split) {
            let path = dir.join(&info.file);
            let header = shards::read_header(&path)?;
            if header.tokens != info.tokens || header.dtype != manifest.dtype {
                return Err(DataError::Invalid(format!(
                    "{}: the manifest says {} {:?} tokens, the file holds {} {:?}",
                    path.display(),
                    info.tokens,
                    manifest.dtype,
                    header.tokens,
                    header.dtype
                )));
            }
            let file = std::fs::File::open(&path).map_err(shards::io(&path))?;
            // a shard is written once, renamed into place, and never modified after
            #[allow(unsafe_code)]
            let map = unsafe { Mmap::map(&file) }.map_err(shards::io(&path))?;
            shards.push(Shard {
                map,
                dtype: header.dtype,
                tokens: header.tokens as usize,
            });
        }
        let mut starts = Vec::with_capacity(shards.len());
        let mut total = 0u64;
        for s in &shards {
            total += s.tokens.saturating_sub(window - 1) as u64;
            starts.push(total);
        }
        if total == 0 {
            return Err(DataError::Invalid(format!(
                "{}: no {} shard holds a window of {window} tokens",
                dir.display(),
                split.name()
            )));
        }
        Ok(Loader {
            tokens: shards.iter().map(|s| s.tokens as u64).sum(),
            shards,
            starts,
            window,
            vocab_size: manifest.vocab_size,
        })
    }

    /// The window starting at global window position `pos`.
    fn window_at(&self, pos: u64, out: &mut Vec<u32>) {
        let shard = self.starts.partition_point(|&s| s <= pos);
        let first = if shard == 0 {
            0
        } else {
            self.starts[shard - 1]
        };
        let offset = (pos - first) as usize;
        let s = &self.shards[shard];
        out.extend((offset..offset + self.window).map(|i| s.token(i)));
    }

    /// Batch number `k` of `batch` windows for `seed`: (inputs, targets), each batch x T.
    pub fn batch(
        &self,
        seed: u64,
        k: u64,
        batch: usize,
    ) -> Result<(Vec<u32>, Vec<u32>), DataError> {
        self.batch_rows(seed, k, batch, 0..batch)
    }

    /// The `rows` of batch number `k` of `batch` windows: one rank's part of a global batch
    /// (the rows of all ranks together are [`Loader::batch`]).
    pub fn batch_rows(
        &self,
        seed: u64,
        k: u64,
        batch: usize,
        rows: std::ops::Range<usize>,
    ) -> Result<(Vec<u32>, Vec<u32>), DataError> {
        let total = *self.starts.last().unwrap_or(&0);
        let mut rng = Rng::new(seed ^ k.wrapping_mul(0xa076_1d64_78bd_642f));
        let (mut inputs, mut targets) = (Vec::new(), Vec::new());
        let mut w = Vec::with_capacity(self.window);
        for row in 0..batch.min(rows.end) {
            let pos = rng.below(total);
            if row < rows.start {
                continue;
            }
            w.clear();
            self.window_at(pos, &mut w);
            if let Some(bad) = w.iter().find(|&&t| t as usize >= self.vocab_size) {
                return Err(DataError::Invalid(format!(
                    "token {bad} is outside the manifest's vocabulary of {}",
                    self.vocab_size
                )));
            }
            inputs.extend_from_slice(&w[..self.window - 1]);
            targets.extend_from_slice(&w[1..]);
        }
        Ok((inputs, targets))
    }
}
