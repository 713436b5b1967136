//! Fetched pages and the documents extracted from them.
//!
//! A page's document has the stable id `page-<xxh3-64 of its URL>`. Re-extracting a page
//! (after the extractor improves) replaces that document's text, title and fields and clears
//! its verdicts, which judged the old text: the one way a stored document changes.

use rusqlite::{OptionalExtension, params};
use xxhash_rust::xxh3::xxh3_64;

use crate::document::Document;
use crate::error::{Error, Result};
use crate::store::{RunId, Store, insert_document, now, sqlite_error};

/// A fetch to record.
#[derive(Debug, Clone, Default)]
pub struct NewPage {
    /// The frontier row this fetch answered, when the crawler made it.
    pub frontier_id: Option<i64>,
    pub url: String,
    pub final_url: Option<String>,
    /// HTTP status, `None` when no response came.
    pub status: Option<u16>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    /// Response headers in order.
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub elapsed_ms: Option<u64>,
    /// The raw body; stored zstd-compressed.
    pub body: Option<Vec<u8>>,
}

/// A stored page with its body, for extraction.
#[derive(Debug, Clone)]
pub struct StoredPage {
    pub id: i64,
    pub url: String,
    pub final_url: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl StoredPage {
    /// The URL the body came from.
    pub fn effective_url(&self) -> &str {
        self.final_url.as_deref().unwrap_or(&self.url)
    }

    /// The charset in the Content-Type header, if any.
    pub fn http_charset(&self) -> Option<&str> {
        charset_param(self.content_type.as_deref()?)
    }
}

/// The `charset` parameter of a Content-Type value (`text/html; charset="gbk"` → `gbk`).
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(['"', '\'']))
    })
}

/// The extractor's result for one page.
#[derive(Debug, Clone)]
pub struct PageExtraction {
    pub page_id: i64,
    /// The document (its id is replaced by the page's stable id).
    pub doc: Document,
    pub charset: String,
    pub charset_source: String,
    /// Image candidates, in page order.
    pub images: Vec<ImageCandidate>,
}

/// An image on a page and what describes it, as the extractor found it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageCandidate {
    pub url: String,
    pub alt: Option<String>,
    pub title: Option<String>,
    /// The chosen caption and where it came from (`figcaption`, `alt`, `title`, `nearby`).
    pub caption: Option<String>,
    pub caption_source: Option<String>,
    /// The paragraph around the image.
    pub context: Option<String>,
}

/// What writing extractions did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExtractionCounts {
    pub created: u64,
    pub updated: u64,
}

/// The document id of the page at `url`.
pub fn page_document_id(url: &str) -> String {
    format!("page-{:016x}", xxh3_64(url.as_bytes()))
}

impl Store {
    /// Records a fetch and returns its page id.
    pub fn insert_page(&mut self, page: &NewPage) -> Result<i64> {
        let path = self.path().to_path_buf();
        insert_page(self.conn(), page).map_err(|e| match e {
            PageError::Sqlite(err) => Error::Sqlite { path, err },
            PageError::Io(e) => Error::Io(e),
        })
    }

    /// The next `limit` pages after page id `after` that have a body and a successful status,
    /// in id order: call again with the last id to stream them all.
    pub fn pages_after(&self, after: i64, limit: usize) -> Result<Vec<StoredPage>> {
        let path = self.path().to_path_buf();
        let mut stmt = self.sql(self.conn().prepare_cached(
            "SELECT id, url, final_url, content_type, body FROM pages
             WHERE id > ?1 AND body IS NOT NULL AND status BETWEEN 200 AND 299
             ORDER BY id LIMIT ?2",
        ))?;
        let rows = self.sql(stmt.query_map(params![after, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        }))?;
        let mut pages = Vec::new();
        for row in rows {
            let (id, url, final_url, content_type, compressed) = self.sql(row)?;
            let body = zstd::stream::decode_all(&compressed[..]).map_err(|e| Error::Sqlite {
                path: path.clone(),
                err: rusqlite::Error::FromSqlConversionFailure(
                    4,
                    rusqlite::types::Type::Blob,
                    format!("page {id}: body is not valid zstd: {e}").into(),
                ),
            })?;
            pages.push(StoredPage {
                id,
                url,
                final_url,
                content_type,
                body,
            });
        }
        Ok(pages)
    }

    /// Writes the documents extracted from pages, in one transaction: a new document for a
    /// page seen for the first time, otherwise the page's document replaced and its verdicts
    /// cleared. Records each page's charset decision and replaces its image candidates.
    pub fn record_extractions(
        &mut self,
        run: RunId,
        extractions: &[PageExtraction],
    ) -> Result<ExtractionCounts> {
        let path = self.path().to_path_buf();
        let sql = sqlite_error(&path);
        let mut counts = ExtractionCounts::default();
        let tx = self.conn_mut().transaction().map_err(&sql)?;
        let now = now(&tx).map_err(&sql)?;
        for x in extractions {
            write_extraction(&tx, run, x, &now, &mut counts).map_err(&sql)?;
        }
        tx.commit().map_err(&sql)?;
        Ok(counts)
    }
}

/// Creates or replaces the document of one extracted page, inside the caller's transaction.
pub(crate) fn write_extraction(
    tx: &rusqlite::Transaction<'_>,
    run: RunId,
    x: &PageExtraction,
    now: &str,
    counts: &mut ExtractionCounts,
) -> rusqlite::Result<()> {
    let d = &x.doc;
    let extra = d.extra_json();
    let existing: Option<i64> = tx
        .query_row("SELECT seq FROM documents WHERE id = ?1", [&d.id], |r| {
            r.get(0)
        })
        .optional()?;
    let seq = match existing {
        Some(seq) => {
            tx.execute(
                "UPDATE documents SET url = ?2, source = ?3, title = ?4, text = ?5,
                    lang = ?6, created = ?7, extra = ?8, content_hash = ?9,
                    run_id = ?10, page_id = ?11
                 WHERE seq = ?1",
                params![
                    seq,
                    d.url,
                    d.source,
                    d.title,
                    d.text,
                    d.lang,
                    d.created,
                    extra,
                    d.content_hash(),
                    run.0,
                    x.page_id
                ],
            )?;
            tx.execute("DELETE FROM clean_verdicts WHERE doc = ?1", [seq])?;
            tx.execute("DELETE FROM dedup_verdicts WHERE doc = ?1", [seq])?;
            tx.execute(
                "DELETE FROM image_verdicts WHERE pair IN
                    (SELECT id FROM image_text WHERE doc = ?1 AND status = 'candidate')",
                [seq],
            )?;
            tx.execute(
                "DELETE FROM image_text WHERE doc = ?1 AND status = 'candidate'",
                [seq],
            )?;
            counts.updated += 1;
            seq
        }
        None => {
            insert_document(tx, d, Some(run), Some(x.page_id), now)?;
            counts.created += 1;
            tx.last_insert_rowid()
        }
    };
    tx.execute(
        "UPDATE pages SET charset = ?2, charset_source = ?3 WHERE id = ?1",
        params![x.page_id, x.charset, x.charset_source],
    )?;
    for i in &x.images {
        tx.execute(
            "INSERT OR IGNORE INTO image_text
                (doc, page_id, image_url, alt, caption, title, caption_source, context)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                seq,
                x.page_id,
                i.url,
                i.alt,
                i.caption,
                i.title,
                i.caption_source,
                i.context
            ],
        )?;
    }
    Ok(())
}

pub(crate) enum PageError {
    Sqlite(rusqlite::Error),
    Io(std::io::Error),
}

impl From<rusqlite::Error> for PageError {
    fn from(e: rusqlite::Error) -> Self {
        PageError::Sqlite(e)
    }
}

/// Inserts a page row (body zstd-compressed) and returns its id.
pub(crate) fn insert_page(
    conn: &rusqlite::Connection,
    page: &NewPage,
) -> std::result::Result<i64, PageError> {
    let body = match &page.body {
        Some(b) => Some(zstd::bulk::compress(b, 3).map_err(PageError::Io)?),
        None => None,
    };
    let headers =
        serde_json::to_string(&page.headers).map_err(|e| PageError::Io(std::io::Error::from(e)))?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO pages (frontier_id, url, final_url, status, error_class, error, headers,
            content_type, elapsed_ms, body_len, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    stmt.execute(params![
        page.frontier_id,
        page.url,
        page.final_url,
        page.status,
        page.error_class,
        page.error,
        headers,
        page.content_type,
        page.elapsed_ms,
        page.body.as_ref().map(|b| b.len() as i64),
        body,
    ])?;
    Ok(conn.last_insert_rowid())
}
