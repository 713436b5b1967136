//! Image-text pairs: the candidates the extractor found on stored pages (`image_text`), the
//! images fetched for them (`image_fetches`, and `images` keyed by the SHA-256 of their bytes,
//! so that one image served under many URLs is stored once), the filter's checks of each image
//! (`image_checks`) and its verdict on each pair (`image_verdicts`).
//!
//! The fetch stage writes `image_fetches` and `images`; the filter stage writes `image_checks`
//! and `image_verdicts`; export reads the kept pairs. A URL with a fetch row is not fetched
//! again unless its outcome was `retry` (a timeout or a refused connection) and it has tries
//! left, so a fetch killed at any moment resumes without fetching anything that was stored.

use rusqlite::{OptionalExtension, params};

use crate::error::Result;
use crate::store::{RunId, Store, now, sqlite_error};

/// How an image fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchOutcome {
    /// An image was stored.
    Ok,
    /// An error no retry changes (HTTP 404, too large, a private address...).
    Failed,
    /// An error a later run may try again (timeout, connection refused, HTTP 5xx/429).
    Retry,
    /// Served with `X-Robots-Tag: noai` or `noimageai`: not stored.
    Noai,
    /// robots.txt disallows the URL.
    Robots,
    /// The bytes are no image format known (an HTML error page, a truncated file).
    NotImage,
}

impl FetchOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchOutcome::Ok => "ok",
            FetchOutcome::Failed => "failed",
            FetchOutcome::Retry => "retry",
            FetchOutcome::Noai => "noai",
            FetchOutcome::Robots => "robots",
            FetchOutcome::NotImage => "not_image",
        }
    }
}

/// An image's bytes with what the header says of them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImage {
    /// Lower-case hex SHA-256 of `body`.
    pub sha256: String,
    /// `jpeg`, `png`, `gif`, `webp`, `bmp`... sniffed from the bytes, not the Content-Type.
    pub format: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub body: Vec<u8>,
}

/// One image URL's fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFetch {
    pub url: String,
    pub final_url: Option<String>,
    pub status: Option<u16>,
    pub outcome: FetchOutcome,
    /// The error class and message, when it failed.
    pub error: Option<String>,
    pub image: Option<NewImage>,
    pub elapsed_ms: Option<u64>,
}

/// A pair with everything the filter judges it by.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImagePair {
    pub id: i64,
    pub doc: Option<i64>,
    pub page_url: Option<String>,
    pub page_title: Option<String>,
    pub image_url: String,
    pub alt: Option<String>,
    pub title: Option<String>,
    pub caption: Option<String>,
    pub caption_source: Option<String>,
    pub context: Option<String>,
    /// The fetch's outcome (`ok`, `failed`...), `None` when the URL was never fetched.
    pub outcome: Option<String>,
    pub fetch_error: Option<String>,
    pub status: Option<u16>,
    pub sha256: Option<String>,
    pub format: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bytes: Option<u64>,
}

/// What decoding an image found.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageCheck {
    pub sha256: String,
    /// Frames of an animation (1 for a still image), when it decoded.
    pub frames: Option<u32>,
    /// The perceptual hash's bytes, when it decoded.
    pub phash: Option<Vec<u8>>,
    /// Why it did not decode.
    pub error: Option<String>,
}

/// The filter's verdict on one pair.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageVerdict {
    pub pair: i64,
    pub keep: bool,
    /// The rule that removed it (`too_small`, `no_chinese`, `near_duplicate`...).
    pub reason: Option<String>,
    /// What the rule measured (the shorter side in pixels, the caption's length, the Hamming
    /// distance...).
    pub value: Option<f64>,
    /// For a duplicate, the kept pair it repeats.
    pub duplicate_of: Option<i64>,
}

/// A kept pair, for export.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptPair {
    pub id: i64,
    pub caption: String,
    pub caption_source: Option<String>,
    pub context: Option<String>,
    pub image_url: String,
    pub page_url: Option<String>,
    pub page_title: Option<String>,
    pub sha256: String,
    pub format: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub body: Vec<u8>,
}

/// Counts of the image tables, for `zhcorpus stats`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImageStats {
    /// Candidate pairs found on pages.
    pub pairs: u64,
    /// Distinct image URLs among them.
    pub urls: u64,
    /// Fetches by outcome.
    pub fetched: Vec<(String, u64)>,
    /// Distinct images stored and their bytes.
    pub images: u64,
    pub image_bytes: u64,
    pub kept: u64,
    /// Removed pairs by reason.
    pub removed: Vec<(String, u64)>,
}

const PAIR_COLUMNS: &str = "SELECT t.id, t.doc, d.url, d.title, t.image_url, t.alt, t.title,
        t.caption, t.caption_source, t.context, f.outcome, f.error, f.status, i.sha256,
        i.format, i.width, i.height, i.bytes
     FROM image_text t
     LEFT JOIN documents d ON d.seq = t.doc
     LEFT JOIN image_fetches f ON f.url = t.image_url
     LEFT JOIN images i ON i.sha256 = f.image";

impl Store {
    /// Up to `limit` candidate pairs with an id above `after` whose image URL has not been
    /// fetched, or was left to `retry` with fewer than `max_attempts` tries: (pair id, URL,
    /// tries so far). A URL on several pages comes once per pair; the caller skips repeats.
    pub fn image_urls_to_fetch(
        &self,
        after: i64,
        limit: usize,
        max_attempts: u32,
    ) -> Result<Vec<(i64, String, u32)>> {
        let mut stmt = self.sql(self.conn().prepare_cached(
            "SELECT t.id, t.image_url, COALESCE(f.attempts, 0) FROM image_text t
             LEFT JOIN image_fetches f ON f.url = t.image_url
             WHERE t.id > ?1 AND (f.url IS NULL OR (f.outcome = 'retry' AND f.attempts < ?2))
             ORDER BY t.id LIMIT ?3",
        ))?;
        let rows = self.sql(
            stmt.query_map(params![after, max_attempts, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            }),
        )?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// Records fetches in one transaction: each image once by its hash, each URL's outcome
    /// (a retried URL's tries counted).
    pub fn record_image_fetches(&mut self, run: RunId, fetches: &[ImageFetch]) -> Result<()> {
        let path = self.path().to_path_buf();
        let sql = sqlite_error(&path);
        let tx = self.conn_mut().transaction().map_err(&sql)?;
        let at = now(&tx).map_err(&sql)?;
        {
            let mut image = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO images (sha256, format, width, height, bytes, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(&sql)?;
            let mut fetch = tx
                .prepare_cached(
                    "INSERT INTO image_fetches (url, run_id, final_url, status, outcome, error,
                        image, elapsed_ms, fetched_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (url) DO UPDATE SET run_id = ?2, final_url = ?3, status = ?4,
                        outcome = ?5, error = ?6, image = ?7, elapsed_ms = ?8, fetched_at = ?9,
                        attempts = attempts + 1",
                )
                .map_err(&sql)?;
            for f in fetches {
                if let Some(i) = &f.image {
                    image
                        .execute(params![
                            i.sha256,
                            i.format,
                            i.width,
                            i.height,
                            i.body.len() as i64,
                            i.body
                        ])
                        .map_err(&sql)?;
                }
                fetch
                    .execute(params![
                        f.url,
                        run.0,
                        f.final_url,
                        f.status,
                        f.outcome.as_str(),
                        f.error,
                        f.image.as_ref().map(|i| &i.sha256),
                        f.elapsed_ms.map(|m| m as i64),
                        at
                    ])
                    .map_err(&sql)?;
            }
        }
        tx.commit().map_err(&sql)
    }

    /// Up to `limit` pairs with an id above `after`, in id order, with their fetch and image.
    pub fn image_pairs_page(&self, after: i64, limit: usize) -> Result<Vec<ImagePair>> {
        let mut stmt = self.sql(self.conn().prepare_cached(&format!(
            "{PAIR_COLUMNS} WHERE t.id > ?1 ORDER BY t.id LIMIT ?2"
        )))?;
        let rows = self.sql(stmt.query_map(params![after, limit as i64], |r| {
            Ok(ImagePair {
                id: r.get(0)?,
                doc: r.get(1)?,
                page_url: r.get(2)?,
                page_title: r.get(3)?,
                image_url: r.get(4)?,
                alt: r.get(5)?,
                title: r.get(6)?,
                caption: r.get(7)?,
                caption_source: r.get(8)?,
                context: r.get(9)?,
                outcome: r.get(10)?,
                fetch_error: r.get(11)?,
                status: r.get(12)?,
                sha256: r.get(13)?,
                format: r.get(14)?,
                width: r.get(15)?,
                height: r.get(16)?,
                bytes: r.get(17)?,
            })
        }))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// Up to `limit` stored images without a check, with a hash above `after`: (hash, bytes).
    pub fn unchecked_images(&self, after: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let mut stmt = self.sql(self.conn().prepare_cached(
            "SELECT i.sha256, i.body FROM images i
             LEFT JOIN image_checks c ON c.image = i.sha256
             WHERE c.image IS NULL AND i.sha256 > ?1 ORDER BY i.sha256 LIMIT ?2",
        ))?;
        let rows =
            self.sql(stmt.query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?))))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// The bytes of the stored images among `sha256s` (those not stored are left out).
    pub fn image_bodies(&self, sha256s: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
        let mut stmt = self.sql(
            self.conn()
                .prepare_cached("SELECT sha256, body FROM images WHERE sha256 = ?1"),
        )?;
        let mut out = Vec::with_capacity(sha256s.len());
        for sha in sha256s {
            let row = self.sql(
                stmt.query_row([sha], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional(),
            )?;
            out.extend(row);
        }
        Ok(out)
    }

    /// Records image checks in one transaction.
    pub fn record_image_checks(&mut self, checks: &[ImageCheck]) -> Result<()> {
        let path = self.path().to_path_buf();
        let sql = sqlite_error(&path);
        let tx = self.conn_mut().transaction().map_err(&sql)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO image_checks (image, frames, phash, error)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(&sql)?;
            for c in checks {
                stmt.execute(params![c.sha256, c.frames, c.phash, c.error])
                    .map_err(&sql)?;
            }
        }
        tx.commit().map_err(&sql)
    }

    /// The check of one image, if it was checked.
    pub fn image_check(&self, sha256: &str) -> Result<Option<ImageCheck>> {
        self.sql(
            self.conn()
                .query_row(
                    "SELECT image, frames, phash, error FROM image_checks WHERE image = ?1",
                    [sha256],
                    |r| {
                        Ok(ImageCheck {
                            sha256: r.get(0)?,
                            frames: r.get(1)?,
                            phash: r.get(2)?,
                            error: r.get(3)?,
                        })
                    },
                )
                .optional(),
        )
    }

    /// Removes every image verdict: the filter judges all pairs again.
    pub fn clear_image_verdicts(&mut self) -> Result<()> {
        self.sql(self.conn().execute("DELETE FROM image_verdicts", []))
            .map(|_| ())
    }

    /// Records the filter's verdicts in one transaction.
    pub fn record_image_verdicts(&mut self, run: RunId, verdicts: &[ImageVerdict]) -> Result<()> {
        let path = self.path().to_path_buf();
        let sql = sqlite_error(&path);
        let tx = self.conn_mut().transaction().map_err(&sql)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO image_verdicts
                        (pair, run_id, keep, reason, value, duplicate_of)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(&sql)?;
            for v in verdicts {
                stmt.execute(params![
                    v.pair,
                    run.0,
                    v.keep,
                    v.reason,
                    v.value,
                    v.duplicate_of
                ])
                .map_err(&sql)?;
            }
        }
        tx.commit().map_err(&sql)
    }

    /// The verdict on one pair.
    pub fn image_verdict(&self, pair: i64) -> Result<Option<ImageVerdict>> {
        self.sql(
            self.conn()
                .query_row(
                    "SELECT pair, keep, reason, value, duplicate_of FROM image_verdicts
                     WHERE pair = ?1",
                    [pair],
                    |r| {
                        Ok(ImageVerdict {
                            pair: r.get(0)?,
                            keep: r.get(1)?,
                            reason: r.get(2)?,
                            value: r.get(3)?,
                            duplicate_of: r.get(4)?,
                        })
                    },
                )
                .optional(),
        )
    }

    /// Up to `limit` kept pairs with an id above `after`, in id order, with the image's bytes.
    pub fn kept_pairs_page(&self, after: i64, limit: usize) -> Result<Vec<KeptPair>> {
        let mut stmt = self.sql(self.conn().prepare_cached(
            "SELECT t.id, t.caption, t.caption_source, t.context, t.image_url, d.url, d.title,
                i.sha256, i.format, i.width, i.height, i.body
             FROM image_verdicts v
             JOIN image_text t ON t.id = v.pair
             LEFT JOIN documents d ON d.seq = t.doc
             JOIN image_fetches f ON f.url = t.image_url
             JOIN images i ON i.sha256 = f.image
             WHERE v.keep = 1 AND t.id > ?1 AND t.caption IS NOT NULL
             ORDER BY t.id LIMIT ?2",
        ))?;
        let rows = self.sql(stmt.query_map(params![after, limit as i64], |r| {
            Ok(KeptPair {
                id: r.get(0)?,
                caption: r.get(1)?,
                caption_source: r.get(2)?,
                context: r.get(3)?,
                image_url: r.get(4)?,
                page_url: r.get(5)?,
                page_title: r.get(6)?,
                sha256: r.get(7)?,
                format: r.get(8)?,
                width: r.get(9)?,
                height: r.get(10)?,
                body: r.get(11)?,
            })
        }))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// Adds pairs from a list (no page): each URL and caption once, however often it is
    /// listed or added. Returns how many were new.
    pub fn insert_image_list(&mut self, items: &[crate::ImageCandidate]) -> Result<u64> {
        let path = self.path().to_path_buf();
        let sql = sqlite_error(&path);
        let tx = self.conn_mut().transaction().map_err(&sql)?;
        let mut added = 0;
        {
            let mut exists = tx
                .prepare_cached(
                    "SELECT 1 FROM image_text WHERE doc IS NULL AND image_url = ?1
                        AND caption IS ?2",
                )
                .map_err(&sql)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO image_text (image_url, alt, caption, title, caption_source, context)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(&sql)?;
            for i in items {
                if exists.exists(params![i.url, i.caption]).map_err(&sql)? {
                    continue;
                }
                insert
                    .execute(params![
                        i.url,
                        i.alt,
                        i.caption,
                        i.title,
                        i.caption_source,
                        i.context
                    ])
                    .map_err(&sql)?;
                added += 1;
            }
        }
        tx.commit().map_err(&sql)?;
        Ok(added)
    }

    /// Pairs without a verdict (added or extracted again after the last filter run).
    pub fn unjudged_pairs(&self) -> Result<u64> {
        self.sql(self.conn().query_row(
            "SELECT COUNT(*) FROM image_text t LEFT JOIN image_verdicts v ON v.pair = t.id
             WHERE v.pair IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        ))
        .map(|n| n as u64)
    }

    /// Counts of pairs, fetches, images and verdicts.
    pub fn image_stats(&self) -> Result<ImageStats> {
        let one = |q: &str| -> Result<u64> {
            self.sql(self.conn().query_row(q, [], |r| r.get::<_, i64>(0)))
                .map(|n| n as u64)
        };
        let grouped = |q: &str| -> Result<Vec<(String, u64)>> {
            let mut stmt = self.sql(self.conn().prepare(q))?;
            let rows = self.sql(stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            }))?;
            rows.map(|r| self.sql(r)).collect()
        };
        Ok(ImageStats {
            pairs: one("SELECT COUNT(*) FROM image_text")?,
            urls: one("SELECT COUNT(DISTINCT image_url) FROM image_text")?,
            fetched: grouped(
                "SELECT outcome, COUNT(*) FROM image_fetches GROUP BY outcome ORDER BY 2 DESC, 1",
            )?,
            images: one("SELECT COUNT(*) FROM images")?,
            image_bytes: one("SELECT COALESCE(SUM(bytes), 0) FROM images")?,
            kept: one("SELECT COUNT(*) FROM image_verdicts WHERE keep = 1")?,
            removed: grouped(
                "SELECT COALESCE(reason, '?'), COUNT(*) FROM image_verdicts WHERE keep = 0
                 GROUP BY reason ORDER BY 2 DESC, 1",
            )?,
        })
    }
}
