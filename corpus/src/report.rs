//! The rows `zhcorpus report` draws from: every page, document and pair with its verdicts,
//! without the texts and bodies (those are read for the few examples shown).

use rusqlite::params;

use crate::error::Result;
use crate::store::Store;

/// One fetched page, without its body.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRow {
    pub url: String,
    pub status: Option<i64>,
    pub error_class: Option<String>,
    pub charset: Option<String>,
    pub charset_source: Option<String>,
    pub fetched_at: String,
}

/// One document with both stages' verdicts, without its text.
#[derive(Debug, Clone, PartialEq)]
pub struct DocRow {
    pub seq: i64,
    pub source: Option<String>,
    pub url: Option<String>,
    pub title: Option<String>,
    /// Characters of the stored text.
    pub chars: u64,
    /// `None`: the cleaner has not judged it.
    pub clean_keep: Option<bool>,
    pub clean_rule: Option<String>,
    pub clean_value: Option<f64>,
    /// The cleaner's measured values and PII masks, as JSON (`{"rules": {...}, ...}`): kept
    /// as text, parsed one document at a time (a parsed object per document would take ten
    /// times the memory).
    pub clean_details: Option<String>,
    /// Characters of the cleaned text, when cleaning changed it.
    pub clean_chars: Option<u64>,
    pub dedup_keep: Option<bool>,
    pub dedup_kind: Option<String>,
    pub cluster: Option<i64>,
    pub similarity: Option<f64>,
    /// The evaluation-set n-gram a contaminated document shares.
    pub span: Option<String>,
}

/// One image-text pair with its fetch and verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct PairRow {
    pub id: i64,
    pub image_url: String,
    pub page_url: Option<String>,
    pub caption: Option<String>,
    pub caption_source: Option<String>,
    pub sha256: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub keep: Option<bool>,
    pub reason: Option<String>,
    pub value: Option<f64>,
}

/// A document's text, as stored and as the cleaner left it.
#[derive(Debug, Clone, PartialEq)]
pub struct DocText {
    pub seq: i64,
    pub text: String,
    pub cleaned: Option<String>,
}

impl Store {
    /// Every page, in the order fetched.
    pub fn report_pages(&self) -> Result<Vec<PageRow>> {
        let mut stmt = self.sql(self.conn().prepare(
            "SELECT url, status, error_class, charset, charset_source, fetched_at
             FROM pages ORDER BY id",
        ))?;
        let rows = self.sql(stmt.query_map([], |r| {
            Ok(PageRow {
                url: r.get(0)?,
                status: r.get(1)?,
                error_class: r.get(2)?,
                charset: r.get(3)?,
                charset_source: r.get(4)?,
                fetched_at: r.get(5)?,
            })
        }))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// Every document with its verdicts, in store order.
    pub fn report_documents(&self) -> Result<Vec<DocRow>> {
        let mut stmt = self.sql(self.conn().prepare(
            "SELECT d.seq, d.source, d.url, d.title, length(d.text),
                    c.keep, c.rule, c.value, c.details, length(c.text),
                    v.keep, v.kind, v.cluster, v.similarity, v.span
             FROM documents d
             LEFT JOIN clean_verdicts c ON c.doc = d.seq
             LEFT JOIN dedup_verdicts v ON v.doc = d.seq
             ORDER BY d.seq",
        ))?;
        let rows = self.sql(stmt.query_map([], |r| {
            Ok(DocRow {
                seq: r.get(0)?,
                source: r.get(1)?,
                url: r.get(2)?,
                title: r.get(3)?,
                chars: r.get::<_, i64>(4)? as u64,
                clean_keep: r.get::<_, Option<i64>>(5)?.map(|k| k == 1),
                clean_rule: r.get(6)?,
                clean_value: r.get(7)?,
                clean_details: r.get(8)?,
                clean_chars: r.get::<_, Option<i64>>(9)?.map(|n| n as u64),
                dedup_keep: r.get::<_, Option<i64>>(10)?.map(|k| k == 1),
                dedup_kind: r.get(11)?,
                cluster: r.get(12)?,
                similarity: r.get(13)?,
                span: r.get(14)?,
            })
        }))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// The texts of the documents `seqs` (those that exist), in the order asked.
    pub fn report_texts(&self, seqs: &[i64]) -> Result<Vec<DocText>> {
        // cached: the report asks for one text at a time, thousands of times
        let mut stmt = self.sql(self.conn().prepare_cached(
            "SELECT d.text, c.text FROM documents d
             LEFT JOIN clean_verdicts c ON c.doc = d.seq WHERE d.seq = ?1",
        ))?;
        let mut out = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let row = self.sql(rusqlite::OptionalExtension::optional(stmt.query_row(
                params![seq],
                |r| {
                    Ok(DocText {
                        seq,
                        text: r.get(0)?,
                        cleaned: r.get(1)?,
                    })
                },
            )))?;
            out.extend(row);
        }
        Ok(out)
    }

    /// Every image-text pair with its image and verdict.
    pub fn report_pairs(&self) -> Result<Vec<PairRow>> {
        let mut stmt = self.sql(self.conn().prepare(
            "SELECT t.id, t.image_url, p.url, t.caption, t.caption_source, f.image,
                    i.width, i.height, v.keep, v.reason, v.value
             FROM image_text t
             LEFT JOIN pages p ON p.id = t.page_id
             LEFT JOIN image_fetches f ON f.url = t.image_url
             LEFT JOIN images i ON i.sha256 = f.image
             LEFT JOIN image_verdicts v ON v.pair = t.id
             ORDER BY t.id",
        ))?;
        let rows = self.sql(stmt.query_map([], |r| {
            Ok(PairRow {
                id: r.get(0)?,
                image_url: r.get(1)?,
                page_url: r.get(2)?,
                caption: r.get(3)?,
                caption_source: r.get(4)?,
                sha256: r.get(5)?,
                width: r.get(6)?,
                height: r.get(7)?,
                keep: r.get::<_, Option<i64>>(8)?.map(|k| k == 1),
                reason: r.get(9)?,
                value: r.get(10)?,
            })
        }))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// The stored bytes of the image `sha256`, if stored.
    pub fn report_image_body(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.sql(rusqlite::OptionalExtension::optional(
            self.conn().query_row(
                "SELECT body FROM images WHERE sha256 = ?1",
                params![sha256],
                |r| r.get(0),
            ),
        ))
    }
}
