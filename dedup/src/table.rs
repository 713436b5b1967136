//! The facts a run needs of every document after sketching (its exact key, its length, its
//! quality score, its place in the store), as fixed-width rows in a temporary file: row `i` is
//! document `i`. Resolving reads the rows of the documents in candidate pairs only, and the
//! verdicts are written from one sequential scan, so a run holds nothing per document in
//! memory: the operating system's page cache keeps the file as far as memory allows.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// One document's facts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    pub exact: u128,
    /// Length in characters, normalised.
    pub len: u64,
    pub score: Option<f64>,
    /// The document's seq in the store (0 file to file).
    pub seq: i64,
}

/// Bytes of a row on disk: key, length, score (NaN when none), seq.
const ROW: usize = 16 + 8 + 8 + 8;

/// Written first, read after: every row is pushed before the first read.
pub(crate) struct DocTable {
    file: BufWriter<File>,
    rows: u64,
}

impl DocTable {
    /// An empty table in a temporary file inside `parent` (the system's temporary folder when
    /// absent), removed when the table is dropped (or the process dies).
    pub fn new(parent: Option<&Path>) -> std::io::Result<DocTable> {
        let file = match parent {
            Some(p) => tempfile::tempfile_in(p)?,
            None => tempfile::tempfile()?,
        };
        Ok(DocTable {
            file: BufWriter::with_capacity(1 << 20, file),
            rows: 0,
        })
    }

    /// Rows written.
    pub fn len(&self) -> u64 {
        self.rows
    }

    pub fn push(&mut self, row: &Row) -> std::io::Result<()> {
        let mut buf = [0u8; ROW];
        buf[..16].copy_from_slice(&row.exact.to_le_bytes());
        buf[16..24].copy_from_slice(&row.len.to_le_bytes());
        buf[24..32].copy_from_slice(&row.score.unwrap_or(f64::NAN).to_le_bytes());
        buf[32..].copy_from_slice(&row.seq.to_le_bytes());
        self.file.write_all(&buf)?;
        self.rows += 1;
        Ok(())
    }

    /// The rows of documents `ids` (ascending), in that order.
    pub fn rows_of(&mut self, ids: &[u32]) -> std::io::Result<Vec<Row>> {
        self.file.flush()?;
        let f = self.file.get_mut();
        let mut out = Vec::with_capacity(ids.len());
        let mut buf = [0u8; ROW];
        for &i in ids {
            if u64::from(i) >= self.rows {
                return Err(std::io::Error::other(format!(
                    "dedup: document {i} is past the {} rows of the document table",
                    self.rows
                )));
            }
            f.seek(SeekFrom::Start(u64::from(i) * ROW as u64))?;
            f.read_exact(&mut buf)?;
            out.push(decode(&buf));
        }
        Ok(out)
    }

    /// Every row in order.
    pub fn scan(&mut self) -> std::io::Result<Scan> {
        self.file.flush()?;
        let mut f = self.file.get_ref().try_clone()?;
        f.seek(SeekFrom::Start(0))?;
        Ok(Scan {
            reader: BufReader::with_capacity(1 << 20, f),
            left: self.rows,
        })
    }
}

fn decode(buf: &[u8; ROW]) -> Row {
    let word = |a: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[a..a + 8]);
        b
    };
    let mut key = [0u8; 16];
    key.copy_from_slice(&buf[..16]);
    let score = f64::from_le_bytes(word(24));
    Row {
        exact: u128::from_le_bytes(key),
        len: u64::from_le_bytes(word(16)),
        score: (!score.is_nan()).then_some(score),
        seq: i64::from_le_bytes(word(32)),
    }
}

/// The rows of a table, read in order.
pub(crate) struct Scan {
    reader: BufReader<File>,
    left: u64,
}

impl Iterator for Scan {
    type Item = std::io::Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut buf = [0u8; ROW];
        Some(self.reader.read_exact(&mut buf).map(|()| decode(&buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_by_index_and_in_order() {
        let mut t = DocTable::new(None).unwrap();
        let rows: Vec<Row> = (0..5000u64)
            .map(|i| Row {
                exact: u128::from(i) << 70 | 7,
                len: i * 3,
                score: (i % 3 == 0).then_some(i as f64 / 7.0),
                seq: i as i64 * 2 + 1,
            })
            .collect();
        for r in &rows {
            t.push(r).unwrap();
        }
        assert_eq!(t.len(), 5000);
        let picked = t.rows_of(&[0, 3, 4096, 4999]).unwrap();
        assert_eq!(picked, vec![rows[0], rows[3], rows[4096], rows[4999]]);
        let all: Vec<Row> = t.scan().unwrap().collect::<std::io::Result<_>>().unwrap();
        assert_eq!(all, rows);
        // a second scan after random reads starts at the top again
        t.rows_of(&[17]).unwrap();
        assert_eq!(t.scan().unwrap().count(), 5000);
        assert!(t.rows_of(&[5000]).is_err());
    }
}
