//! JSONL readers and writers, plain or zstd-compressed, one document per line.
//!
//! Compressed input is recognised by its zstd magic bytes, whatever the file is called;
//! output is compressed when the file name ends in `.zst`. `-` names standard input or output.
//! A writer writes to `NAME.partial` and renames it on [`JsonlWriter::finish`], so a run that is
//! killed never leaves a truncated file under the final name.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::document::Document;
use crate::error::{Error, Result};

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Reads documents from a JSONL file, line by line, in constant memory.
pub struct JsonlReader {
    path: PathBuf,
    inner: Box<dyn BufRead + Send>,
    line: u64,
    buf: Vec<u8>,
    consumed: Arc<AtomicU64>,
    len: Option<u64>,
}

impl JsonlReader {
    /// Opens `path` (`-` for standard input), decompressing zstd when the data starts with its
    /// magic number.
    pub fn open(path: &Path) -> Result<JsonlReader> {
        let input_err = |err| Error::Input {
            path: path.to_path_buf(),
            err,
        };
        let consumed = Arc::new(AtomicU64::new(0));
        let (raw, len): (Box<dyn Read + Send>, Option<u64>) = if path == Path::new("-") {
            (Box::new(io::stdin()), None)
        } else {
            let file = std::fs::File::open(path).map_err(input_err)?;
            let len = file.metadata().ok().map(|m| m.len());
            (Box::new(file), len)
        };
        let counting = Counting {
            inner: raw,
            count: consumed.clone(),
        };
        let mut buffered = BufReader::with_capacity(1 << 16, counting);
        let compressed = buffered
            .fill_buf()
            .map_err(input_err)?
            .starts_with(&ZSTD_MAGIC);
        let inner: Box<dyn BufRead + Send> = if compressed {
            let decoder = zstd::Decoder::with_buffer(buffered).map_err(input_err)?;
            Box::new(BufReader::with_capacity(1 << 16, decoder))
        } else {
            Box::new(buffered)
        };
        Ok(JsonlReader {
            path: path.to_path_buf(),
            inner,
            line: 0,
            buf: Vec::new(),
            consumed,
            len,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the file read so far (compressed bytes for a compressed file), for progress.
    pub fn bytes_read(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    /// The file's size in bytes, when it is a regular file.
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    /// Whether the file is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }

    /// The next non-blank line as text with its 1-based line number, or `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<(u64, &str)>> {
        loop {
            self.buf.clear();
            let n = self
                .inner
                .read_until(b'\n', &mut self.buf)
                .map_err(|err| Error::Input {
                    path: self.path.clone(),
                    err,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        let text = std::str::from_utf8(&self.buf).map_err(|e| Error::BadLine {
            path: self.path.clone(),
            line: self.line,
            message: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        })?;
        Ok(Some((self.line, text.trim_end_matches(['\n', '\r']))))
    }

    /// The next document with its line number. A line that is not a document is an
    /// [`Error::BadLine`]; the reader can go on past it.
    pub fn next_document(&mut self) -> Option<Result<(u64, Document)>> {
        let path = self.path.clone();
        match self.next_line() {
            Ok(None) => None,
            Err(e) => Some(Err(e)),
            Ok(Some((line, text))) => Some(
                Document::from_json(text)
                    .map(|doc| (line, doc))
                    .map_err(|message| Error::BadLine {
                        path,
                        line,
                        message,
                    }),
            ),
        }
    }
}

impl Iterator for JsonlReader {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_document().map(|r| r.map(|(_, doc)| doc))
    }
}

/// Every document of several JSONL(.zst) files, in order; a file that cannot be opened is an
/// error in its place.
pub fn read_all(paths: &[std::path::PathBuf]) -> impl Iterator<Item = Result<Document>> + '_ {
    paths
        .iter()
        .flat_map(|path| -> Box<dyn Iterator<Item = Result<Document>>> {
            match JsonlReader::open(path) {
                Ok(reader) => Box::new(reader),
                Err(e) => Box::new(std::iter::once(Err(e))),
            }
        })
}

/// Lines skipped as invalid (not JSON, not a document, not UTF-8) while reading with
/// [`read_all_skipping`]: counted, the first few kept as examples with file and line.
#[derive(Debug, Default)]
pub struct InvalidLines {
    count: AtomicU64,
    examples: std::sync::Mutex<Vec<String>>,
}

impl InvalidLines {
    /// Examples kept.
    const EXAMPLES: usize = 10;

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The first skipped lines' errors (`file:line: why`).
    pub fn examples(&self) -> Vec<String> {
        self.examples.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Counts one skipped line.
    pub fn add(&self, e: &Error) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut ex) = self.examples.lock()
            && ex.len() < Self::EXAMPLES
        {
            ex.push(e.to_string());
        }
    }
}

/// [`read_all`], with every line that is not a document skipped into `invalid` when `skip` is
/// set (an unreadable file still stops the reading). Without `skip` it is `read_all`.
pub fn read_all_skipping<'a>(
    paths: &'a [std::path::PathBuf],
    skip: bool,
    invalid: &'a InvalidLines,
) -> impl Iterator<Item = Result<Document>> + 'a {
    read_all(paths).filter(move |r| match r {
        Err(e @ Error::BadLine { .. }) if skip => {
            invalid.add(e);
            false
        }
        _ => true,
    })
}

/// Counts the bytes that pass through a reader.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Checks an output file before any work: not a folder; its missing folders are created (the
/// one rule for every output of every command). `-` is standard output.
pub fn check_output(path: &Path) -> Result<()> {
    if path == Path::new("-") {
        return Ok(());
    }
    if path.is_dir() {
        return Err(Error::BadOutput {
            path: path.to_path_buf(),
            why: "is a folder; name a file to write".into(),
        });
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::BadOutput {
            path: path.to_path_buf(),
            why: format!("its folder cannot be created: {e}"),
        })?;
    }
    Ok(())
}

/// A file being written under a temporary name: renamed into place when kept, removed when
/// dropped otherwise (an error, a panic), so no temporary file is left behind.
struct Pending {
    partial: PathBuf,
    path: PathBuf,
    kept: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.partial);
        }
        if let Ok(mut open) = OPEN_PARTIALS.lock() {
            open.retain(|p| p != &self.partial);
        }
    }
}

/// The `.partial` files being written now, for [`remove_partial_files`].
static OPEN_PARTIALS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every `.partial` file this process is writing: for a caller about to end the
/// process without unwinding (a signal handler's exit), so that no temporary file stays.
pub fn remove_partial_files() {
    if let Ok(open) = OPEN_PARTIALS.lock() {
        for p in open.iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes JSON lines, zstd-compressed when the path ends in `.zst`.
pub struct JsonlWriter {
    target: Option<Pending>,
    sink: Sink,
    lines: u64,
}

enum Sink {
    Plain(BufWriter<Box<dyn Write + Send>>),
    Zstd(zstd::Encoder<'static, BufWriter<Box<dyn Write + Send>>>),
}

impl JsonlWriter {
    /// Creates `path` (`-` for standard output). The data goes to `path.partial` until
    /// [`finish`](Self::finish) renames it.
    pub fn create(path: &Path) -> Result<JsonlWriter> {
        let compress = path.extension().is_some_and(|e| e == "zst");
        let (out, target): (Box<dyn Write + Send>, _) = if path == Path::new("-") {
            (Box::new(io::stdout()), None)
        } else {
            check_output(path)?;
            let mut partial = path.as_os_str().to_owned();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let file = fs_err::File::create(&partial)?;
            if let Ok(mut open) = OPEN_PARTIALS.lock() {
                open.push(partial.clone());
            }
            let pending = Pending {
                partial,
                path: path.to_path_buf(),
                kept: false,
            };
            (Box::new(file), Some(pending))
        };
        let buffered = BufWriter::with_capacity(1 << 16, out);
        let sink = if compress {
            Sink::Zstd(zstd::Encoder::new(buffered, 3)?)
        } else {
            Sink::Plain(buffered)
        };
        Ok(JsonlWriter {
            target,
            sink,
            lines: 0,
        })
    }

    /// Writes one value as a line: a [`Document`], or any serialisable record.
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let w: &mut dyn Write = match &mut self.sink {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w,
        };
        serde_json::to_writer(&mut *w, value).map_err(io::Error::from)?;
        w.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes everything, ends the zstd frame and moves the file to its final name.
    pub fn finish(self) -> Result<()> {
        let mut inner = match self.sink {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w.finish()?,
        };
        inner.flush()?;
        drop(inner);
        if let Some(mut p) = self.target {
            // on disk before it takes its name, so a name never holds a torn file
            fs_err::File::open(&p.partial)?.sync_all()?;
            fs_err::rename(&p.partial, &p.path)?;
            p.kept = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<Document> {
        (0..100)
            .map(|i| {
                let mut d = Document::new(format!("d{i}"), format!("第{i}篇文档。\n第二段"));
                d.source = Some("test".into());
                d.extra.insert("n".into(), i.into());
                d
            })
            .collect()
    }

    fn round_trip(name: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let mut w = JsonlWriter::create(&path).unwrap();
        for d in docs() {
            w.write(&d).unwrap();
        }
        assert!(!path.exists(), "the final name appears only on finish");
        w.finish().unwrap();
        let back: Vec<Document> = JsonlReader::open(&path)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(back, docs());
    }

    #[test]
    fn plain_round_trip() {
        round_trip("a.jsonl");
    }

    #[test]
    fn zstd_round_trip() {
        round_trip("a.jsonl.zst");
        // compressed input is found by its magic number, not its name
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.jsonl.zst");
        let mut w = JsonlWriter::create(&path).unwrap();
        w.write(&Document::new("x", "压缩")).unwrap();
        w.finish().unwrap();
        let renamed = dir.path().join("b.data");
        std::fs::rename(&path, &renamed).unwrap();
        let back: Vec<_> = JsonlReader::open(&renamed).unwrap().collect();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].as_ref().unwrap().text, "压缩");
    }

    #[test]
    fn bad_lines_are_numbered_and_skippable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        let mut data = b"{\"id\":\"a\",\"text\":\"x\"}\n\n{oops\n".to_vec();
        data.extend_from_slice(
            b"{\"id\":\"b\",\"text\":\"\xff\"}\n{\"id\":\"c\",\"text\":\"y\"}\r\n",
        );
        std::fs::write(&path, data).unwrap();
        let mut r = JsonlReader::open(&path).unwrap();
        let mut got = Vec::new();
        while let Some(item) = r.next_document() {
            got.push(match item {
                Ok((line, d)) => format!("{line}: {}", d.id),
                Err(e) => e.to_string().replace(&path.display().to_string(), "F"),
            });
        }
        assert_eq!(
            got,
            [
                "1: a",
                "F:3: invalid JSON: key must be a string at line 1 column 2",
                "F:4: invalid UTF-8 at byte 18",
                "5: c",
            ]
        );
    }

    #[test]
    fn truncated_zstd_is_an_input_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl.zst");
        let mut w = JsonlWriter::create(&path).unwrap();
        for d in docs() {
            w.write(&d).unwrap();
        }
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = JsonlReader::open(&path)
            .unwrap()
            .find_map(|r| r.err())
            .expect("a truncated frame is an error");
        assert!(matches!(err, Error::Input { .. }), "{err}");
        assert!(err.to_string().contains("t.jsonl.zst"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = JsonlReader::open(Path::new("/nonexistent/x.jsonl"))
            .err()
            .unwrap();
        assert!(err.is_bad_input());
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/x.jsonl: ")
        );
    }
}
