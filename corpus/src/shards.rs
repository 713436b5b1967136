//! Token shards in llm.c's `.bin` format: a header of 256 little-endian int32 (magic, version,
//! token count, then zeros) and the tokens, uint16 (magic 20240520, version 1, llm.c's GPT-2
//! shards) or uint32 for vocabularies over 65,536 ids (magic 20240801, version 7, llm.c's
//! Llama 3 shards). Documents go to `train` or `val` by a hash of their id, each preceded by
//! the end-of-text token, as llm.c's data scripts write them; `manifest.json` lists the shards.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const HEADER_INTS: usize = 256;
pub const MAGIC_U16: i32 = 20240520;
pub const VERSION_U16: i32 = 1;
pub const MAGIC_U32: i32 = 20240801;
pub const VERSION_U32: i32 = 7;

/// A shard file that is not one.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Format { path: PathBuf, what: String },
}

/// The error of an I/O operation on a shard file: `.map_err(io(&path))`.
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ShardError + '_ {
    move |source| ShardError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Token width in a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    U16,
    U32,
}

impl Dtype {
    /// The narrowest width that holds ids below `vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> Dtype {
        if vocab_size <= 1 << 16 {
            Dtype::U16
        } else {
            Dtype::U32
        }
    }
    pub fn bytes(self) -> usize {
        match self {
            Dtype::U16 => 2,
            Dtype::U32 => 4,
        }
    }
    fn header(self) -> (i32, i32) {
        match self {
            Dtype::U16 => (MAGIC_U16, VERSION_U16),
            Dtype::U32 => (MAGIC_U32, VERSION_U32),
        }
    }
}

/// A shard's header, read and checked against the file's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardHeader {
    pub dtype: Dtype,
    pub tokens: u64,
}

/// Reads and checks the header of a shard: magic, version, and a size that matches the count.
pub fn read_header(path: &Path) -> Result<ShardHeader, ShardError> {
    let mut f = File::open(path).map_err(io(path))?;
    let len = f.metadata().map_err(io(path))?.len();
    let bad = |what: String| ShardError::Format {
        path: path.to_path_buf(),
        what,
    };
    if len < (HEADER_INTS * 4) as u64 {
        return Err(bad(format!(
            "{len} bytes is shorter than the 1,024-byte header"
        )));
    }
    let mut header = [0u8; HEADER_INTS * 4];
    f.read_exact(&mut header).map_err(io(path))?;
    let int = |i: usize| {
        i32::from_le_bytes([
            header[4 * i],
            header[4 * i + 1],
            header[4 * i + 2],
            header[4 * i + 3],
        ])
    };
    let dtype = match (int(0), int(1)) {
        (MAGIC_U16, VERSION_U16) => Dtype::U16,
        (MAGIC_U32, VERSION_U32) => Dtype::U32,
        (m, v) => {
            return Err(bad(format!(
                "magic {m} version {v} is not an llm.c token shard"
            )));
        }
    };
    let tokens = u64::try_from(int(2)).map_err(|_| bad("negative token count".into()))?;
    let expected = (HEADER_INTS * 4) as u64 + tokens * dtype.bytes() as u64;
    if len != expected {
        return Err(bad(format!(
            "the header says {tokens} tokens ({expected} bytes) but the file has {len} bytes"
        )));
    }
    Ok(ShardHeader { dtype, tokens })
}

/// Reads a whole shard's tokens (checked as [`read_header`] does).
pub fn read_tokens(path: &Path) -> Result<Vec<u32>, ShardError> {
    let h = read_header(path)?;
    let bytes = fs_err::read(path).map_err(io(path))?;
    let body = &bytes[HEADER_INTS * 4..];
    Ok(match h.dtype {
        Dtype::U16 => body
            .chunks_exact(2)
            .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::U32 => body
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    })
}

/// Writes `tokens` as one shard (through a temporary file, renamed into place).
pub fn write_shard(path: &Path, tokens: &[u32], dtype: Dtype) -> Result<(), ShardError> {
    let bad = |what: String| ShardError::Format {
        path: path.to_path_buf(),
        what,
    };
    let count = i32::try_from(tokens.len())
        .map_err(|_| bad(format!("{} tokens do not fit one shard", tokens.len())))?;
    let tmp = path.with_extension("bin.tmp");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io(&tmp))?);
    let (magic, version) = dtype.header();
    let mut header = [0i32; HEADER_INTS];
    header[0] = magic;
    header[1] = version;
    header[2] = count;
    for h in header {
        w.write_all(&h.to_le_bytes()).map_err(io(&tmp))?;
    }
    match dtype {
        Dtype::U16 => {
            for &t in tokens {
                let t = u16::try_from(t).map_err(|_| bad(format!("token {t} does not fit u16")))?;
                w.write_all(&t.to_le_bytes()).map_err(io(&tmp))?;
            }
        }
        Dtype::U32 => {
            for &t in tokens {
                w.write_all(&t.to_le_bytes()).map_err(io(&tmp))?;
            }
        }
    }
    w.into_inner()
        .map_err(|e| io(&tmp)(e.into_error()))?
        .sync_all()
        .map_err(io(&tmp))?;
    fs_err::rename(&tmp, path).map_err(io(path))
}

/// Which split a document goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
    /// The split of a document by its id: a stable hash, so the same corpus always splits the
    /// same way whatever the order or the number of threads.
    pub fn of(id: &str, val_fraction: f64) -> Split {
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), 0x5eed);
        if (h as f64 / u64::MAX as f64) < val_fraction {
            Split::Val
        } else {
            Split::Train
        }
    }
}

/// One shard in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardInfo {
    pub file: String,
    pub split: Split,
    pub tokens: u64,
}

/// `manifest.json`: what made the shards and what they hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    /// "bpe" (with `tokenizer.json` beside the shards) or "bytes".
    pub tokenizer: String,
    /// xxh3-64 of the tokenizer.json bytes, hex; empty for bytes.
    pub tokenizer_hash: String,
    pub vocab_size: usize,
    pub end_of_text: u32,
    pub dtype: Dtype,
    pub val_fraction: f64,
    pub documents: SplitCounts,
    pub tokens: SplitCounts,
    pub bytes: SplitCounts,
    pub shards: Vec<ShardInfo>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct SplitCounts {
    pub train: u64,
    pub val: u64,
}

impl SplitCounts {
    pub fn add(&mut self, split: Split, n: u64) {
        match split {
            Split::Train => self.train += n,
            Split::Val => self.val += n,
        }
    }
}

impl Manifest {
    pub const FILE: &str = "manifest.json";

    pub fn read(dir: &Path) -> Result<Manifest, ShardError> {
        let path = dir.join(Self::FILE);
        let text = fs_err::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text).map_err(|e| ShardError::Format {
            path: path.clone(),
            what: e.to_string(),
        })
    }

    pub fn write(&self, dir: &Path) -> Result<(), ShardError> {
        let path = dir.join(Self::FILE);
        let tmp = dir.join("manifest.json.tmp");
        let json = serde_json::to_string_pretty(self).unwrap_or_default();
        fs_err::write(&tmp, json).map_err(io(&tmp))?;
        // the manifest says the folder is complete: it and the shards are on disk first
        fs_err::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
        fs_err::rename(&tmp, &path).map_err(io(&path))?;
        crate::shard::sync_dir(dir).map_err(io(dir))
    }
}

/// Collects each split's tokens and writes a shard whenever `shard_tokens` have gathered.
pub struct ShardWriter {
    dir: PathBuf,
    dtype: Dtype,
    shard_tokens: usize,
    end_of_text: u32,
    buffers: [Vec<u32>; 2],
    next_index: [usize; 2],
    pub shards: Vec<ShardInfo>,
    pub documents: SplitCounts,
    pub tokens: SplitCounts,
    pub bytes: SplitCounts,
}

impl ShardWriter {
    pub fn new(dir: &Path, dtype: Dtype, shard_tokens: usize, end_of_text: u32) -> ShardWriter {
        ShardWriter {
            dir: dir.to_path_buf(),
            dtype,
            shard_tokens: shard_tokens.max(1),
            end_of_text,
            buffers: [Vec::new(), Vec::new()],
            next_index: [0, 0],
            shards: Vec::new(),
            documents: SplitCounts::default(),
            tokens: SplitCounts::default(),
            bytes: SplitCounts::default(),
        }
    }

    pub fn end_of_text(&self) -> u32 {
        self.end_of_text
    }

    /// Adds one document's tokens (the end-of-text token goes before them).
    pub fn add(&mut self, split: Split, tokens: &[u32], text_bytes: u64) -> Result<(), ShardError> {
        let s = split as usize;
        self.buffers[s].push(self.end_of_text);
        self.buffers[s].extend_from_slice(tokens);
        self.documents.add(split, 1);
        self.tokens.add(split, tokens.len() as u64 + 1);
        self.bytes.add(split, text_bytes);
        while self.buffers[s].len() >= self.shard_tokens {
            let rest = self.buffers[s].split_off(self.shard_tokens);
            let full = std::mem::replace(&mut self.buffers[s], rest);
            self.flush(split, &full)?;
        }
        Ok(())
    }

    /// Appends tokens as they are (documents already separated by the end-of-text token,
    /// as a shard holds them), writing each shard as it fills; the counts are the caller's.
    pub fn extend(&mut self, split: Split, tokens: &[u32]) -> Result<(), ShardError> {
        let s = split as usize;
        self.buffers[s].extend_from_slice(tokens);
        while self.buffers[s].len() >= self.shard_tokens {
            let rest = self.buffers[s].split_off(self.shard_tokens);
            let full = std::mem::replace(&mut self.buffers[s], rest);
            self.flush(split, &full)?;
        }
        Ok(())
    }

    fn flush(&mut self, split: Split, tokens: &[u32]) -> Result<(), ShardError> {
        let s = split as usize;
        let file = format!("{}_{:06}.bin", split.name(), self.next_index[s]);
        self.next_index[s] += 1;
        write_shard(&self.dir.join(&file), tokens, self.dtype)?;
        self.shards.push(ShardInfo {
            file,
            split,
            tokens: tokens.len() as u64,
        });
        Ok(())
    }

    /// Writes what is left of each split.
    pub fn finish(&mut self) -> Result<(), ShardError> {
        for split in [Split::Train, Split::Val] {
            let rest = std::mem::take(&mut self.buffers[split as usize]);
            if !rest.is_empty() {
                self.flush(split, &rest)?;
            }
        }
        Ok(())
    }
}
