//! The crawler's frontier: every URL it has decided to fetch, its state, and what it knows of
//! each host. A fetch's page, its document, its frontier state and the links it found are
//! written in one transaction, so a crawl killed at any moment resumes without losing a page
//! or storing one twice.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::Error;
use crate::error::Result;
use crate::pages::{ExtractionCounts, NewPage, PageError, PageExtraction, insert_page};
use crate::store::{RunId, Store, now, sqlite_error};

/// What a frontier URL is fetched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    /// An HTML page: stored, extracted, its links followed.
    Page,
    /// A sitemap or sitemap index: its URLs are queued.
    Sitemap,
}

impl UrlKind {
    fn as_str(self) -> &'static str {
        match self {
            UrlKind::Page => "page",
            UrlKind::Sitemap => "sitemap",
        }
    }

    fn parse(s: &str) -> UrlKind {
        if s == "sitemap" {
            UrlKind::Sitemap
        } else {
            UrlKind::Page
        }
    }
}

/// A URL to add to the frontier; one already there (same hash) is ignored.
#[derive(Debug, Clone)]
pub struct NewUrl {
    pub url: String,
    /// xxh3-64 of the normalised URL: the seen-set key.
    pub hash: i64,
    /// The politeness key, `host[:port]`.
    pub host: String,
    pub depth: u32,
    pub parent: Option<i64>,
    pub kind: UrlKind,
}

/// A URL waiting to be fetched.
#[derive(Debug, Clone)]
pub struct QueuedUrl {
    pub id: i64,
    pub url: String,
    pub host: String,
    pub depth: u32,
    pub kind: UrlKind,
    pub attempts: u32,
}

/// How a frontier URL ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalState {
    /// Fetched (whatever the status) and stored.
    Done,
    /// Given up on after its attempts; the page row says why.
    Failed,
    /// Not fetched: robots.txt or a limit said no.
    Skipped,
}

impl FinalState {
    fn as_str(self) -> &'static str {
        match self {
            FinalState::Done => "done",
            FinalState::Failed => "failed",
            FinalState::Skipped => "skipped",
        }
    }
}

/// One frontier URL finished, with what to store for it.
#[derive(Debug, Clone)]
pub struct Finished {
    pub frontier_id: i64,
    pub state: FinalState,
    pub attempts: u32,
    pub page: Option<NewPage>,
    /// The page's document; its page id is filled in on write.
    pub extraction: Option<PageExtraction>,
}

/// What a batch of crawl results writes, in one transaction.
#[derive(Debug, Default)]
pub struct CrawlBatch {
    pub finished: Vec<Finished>,
    /// URLs to try again later: frontier id and attempts so far.
    pub retries: Vec<(i64, u32)>,
    /// Links and sitemap entries found.
    pub discovered: Vec<NewUrl>,
}

impl CrawlBatch {
    pub fn is_empty(&self) -> bool {
        self.finished.is_empty() && self.retries.is_empty() && self.discovered.is_empty()
    }
}

/// What writing a batch did.
#[derive(Debug, Default)]
pub struct BatchWritten {
    /// For each discovered URL, its new frontier id, or `None` if it was known.
    pub discovered_ids: Vec<Option<i64>>,
    pub documents: ExtractionCounts,
}

/// A host's robots.txt as last fetched.
#[derive(Debug, Clone)]
pub struct HostRobots {
    /// HTTP status, `None` when no response came.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub body: Option<Vec<u8>>,
    /// Unix time of the fetch, in seconds.
    pub fetched_at: f64,
}

/// A crawl's state, read from the database alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CrawlStatus {
    /// Frontier URLs by state.
    pub frontier: BTreeMap<String, u64>,
    /// Fetches stored, and those that failed by error class.
    pub pages: u64,
    pub errors: BTreeMap<String, u64>,
    /// HTTP statuses of stored fetches.
    pub statuses: BTreeMap<String, u64>,
    /// Fetches stored in the last 60 seconds, per second.
    pub pages_per_sec_last_minute: f64,
    /// Hosts with URLs still queued, and hosts parked after too many errors.
    pub hosts_queued: u64,
    pub hosts_parked: u64,
    /// The latest crawl run: started, finished (if it did), status.
    pub last_run: Option<(String, Option<String>, String)>,
}

fn page_error(path: &std::path::Path) -> impl Fn(PageError) -> Error + '_ {
    move |e| match e {
        PageError::Sqlite(err) => Error::Sqlite {
            path: path.to_path_buf(),
            err,
        },
        PageError::Io(e) => Error::Io(e),
    }
}

fn insert_url(tx: &rusqlite::Connection, u: &NewUrl) -> rusqlite::Result<Option<i64>> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO frontier (url, url_hash, host, depth, parent, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let n = stmt.execute(params![
        u.url,
        u.hash,
        u.host,
        u.depth,
        u.parent,
        u.kind.as_str()
    ])?;
    Ok((n == 1).then(|| tx.last_insert_rowid()))
}

impl Store {
    /// Adds URLs (seeds) to the frontier; returns the new ids, `None` for known ones.
    pub fn enqueue(&mut self, urls: &[NewUrl]) -> Result<Vec<Option<i64>>> {
        let path = self.path().to_path_buf();
        let sql = sqlite_error(&path);
        let tx = self.conn_mut().transaction().map_err(&sql)?;
        let mut ids = Vec::with_capacity(urls.len());
        for u in urls {
            ids.push(insert_url(&tx, u).map_err(&sql)?);
        }
        tx.commit().map_err(&sql)?;
        Ok(ids)
    }

    /// Enters URLs handed out by a frontier shared with other workers into this store's own
    /// frontier (queued, when new): each one's id here and its state, so that a URL this store
    /// already finished (a worker that died between its commit and telling the shared
    /// frontier) is not fetched again.
    pub fn claim_urls(&mut self, urls: &[NewUrl]) -> Result<Vec<(i64, String)>> {
        let path = self.path().to_path_buf();
        let sql = sqlite_error(&path);
        let tx = self.conn_mut().transaction().map_err(&sql)?;
        let mut out = Vec::with_capacity(urls.len());
        for u in urls {
            insert_url(&tx, u).map_err(&sql)?;
            let row = tx
                .prepare_cached("SELECT id, state FROM frontier WHERE url_hash = ?1")
                .and_then(|mut s| s.query_row([u.hash], |r| Ok((r.get(0)?, r.get(1)?))))
                .map_err(&sql)?;
            out.push(row);
        }
        tx.commit().map_err(&sql)?;
        Ok(out)
    }

    /// Puts URLs left in flight by a crawl that died back in the queue.
    pub fn reset_in_flight(&self) -> Result<u64> {
        let n = self.sql(self.conn().execute(
            "UPDATE frontier SET state = 'queued' WHERE state = 'in_flight'",
            [],
        ))?;
        Ok(n as u64)
    }

    /// Every URL hash in the frontier: the crawler's seen-set on resume.
    pub fn frontier_hashes(&self) -> Result<Vec<i64>> {
        let mut stmt = self.sql(self.conn().prepare("SELECT url_hash FROM frontier"))?;
        let rows = self.sql(stmt.query_map([], |r| r.get(0)))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// URLs waiting in the frontier.
    pub fn queued_count(&self) -> Result<u64> {
        self.sql(self.conn().query_row(
            "SELECT count(*) FROM frontier WHERE state = 'queued'",
            [],
            |r| r.get(0),
        ))
    }

    /// Hosts with queued URLs.
    pub fn queued_hosts(&self) -> Result<Vec<String>> {
        let mut stmt = self.sql(
            self.conn()
                .prepare("SELECT DISTINCT host FROM frontier WHERE state = 'queued'"),
        )?;
        let rows = self.sql(stmt.query_map([], |r| r.get(0)))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// Up to `limit` queued URLs of `host` with an id above `after`, in id order.
    pub fn queued_urls(&self, host: &str, after: i64, limit: usize) -> Result<Vec<QueuedUrl>> {
        let mut stmt = self.sql(self.conn().prepare_cached(
            "SELECT id, url, host, depth, kind, attempts FROM frontier
             WHERE host = ?1 AND state = 'queued' AND id > ?2 ORDER BY id LIMIT ?3",
        ))?;
        let rows = self.sql(stmt.query_map(params![host, after, limit as i64], |r| {
            Ok(QueuedUrl {
                id: r.get(0)?,
                url: r.get(1)?,
                host: r.get(2)?,
                depth: r.get(3)?,
                kind: UrlKind::parse(&r.get::<_, String>(4)?),
                attempts: r.get(5)?,
            })
        }))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// Finished pages (state `done`, kind `page`) per host.
    pub fn done_per_host(&self) -> Result<BTreeMap<String, u64>> {
        let mut stmt = self.sql(self.conn().prepare(
            "SELECT host, count(*) FROM frontier
             WHERE state = 'done' AND kind = 'page' GROUP BY host",
        ))?;
        let rows = self.sql(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))))?;
        rows.map(|r| self.sql(r)).collect()
    }

    /// Writes a batch of crawl results in one transaction: page rows, documents, frontier
    /// states, retries and discovered URLs.
    pub fn record_crawl(&mut self, run: RunId, batch: &CrawlBatch) -> Result<BatchWritten> {
        let path = self.path().to_path_buf();
        let sql = sqlite_error(&path);
        let page_err = page_error(&path);
        let mut written = BatchWritten::default();
        let tx = self.conn_mut().transaction().map_err(&sql)?;
        let now = now(&tx).map_err(&sql)?;
        for f in &batch.finished {
            let page_id = match &f.page {
                Some(page) => Some(insert_page(&tx, page).map_err(&page_err)?),
                None => None,
            };
            if let (Some(page_id), Some(x)) = (page_id, &f.extraction) {
                let mut x = x.clone();
                x.page_id = page_id;
                crate::pages::write_extraction(&tx, run, &x, &now, &mut written.documents)
                    .map_err(&sql)?;
            }
            tx.prepare_cached("UPDATE frontier SET state = ?2, attempts = ?3 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![f.frontier_id, f.state.as_str(), f.attempts]))
                .map_err(&sql)?;
        }
        for (id, attempts) in &batch.retries {
            tx.prepare_cached("UPDATE frontier SET attempts = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, attempts]))
                .map_err(&sql)?;
        }
        for u in &batch.discovered {
            written
                .discovered_ids
                .push(insert_url(&tx, u).map_err(&sql)?);
        }
        tx.commit().map_err(&sql)?;
        Ok(written)
    }

    /// The robots.txt last stored for `host`.
    pub fn host_robots(&self, host: &str) -> Result<Option<HostRobots>> {
        self.sql(
            self.conn()
                .query_row(
                    "SELECT robots_status, robots_error, robots_body, robots_fetched_at
                     FROM hosts WHERE host = ?1 AND robots_fetched_at IS NOT NULL",
                    [host],
                    |r| {
                        Ok(HostRobots {
                            status: r.get(0)?,
                            error: r.get(1)?,
                            body: r.get(2)?,
                            fetched_at: r.get(3)?,
                        })
                    },
                )
                .optional(),
        )
    }

    /// Stores a host's robots.txt fetch.
    pub fn save_robots(&self, host: &str, robots: &HostRobots) -> Result<()> {
        self.sql(self.conn().execute(
            "INSERT INTO hosts (host, robots_status, robots_error, robots_body, robots_fetched_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (host) DO UPDATE SET robots_status = ?2, robots_error = ?3,
                robots_body = ?4, robots_fetched_at = ?5",
            params![
                host,
                robots.status,
                robots.error,
                robots.body,
                robots.fetched_at
            ],
        ))?;
        Ok(())
    }

    /// Marks a host parked (too many errors), with the reason.
    pub fn park_host(&self, host: &str, reason: &str) -> Result<()> {
        self.sql(self.conn().execute(
            "INSERT INTO hosts (host, parked_at, parked_reason) VALUES (?1, ?2, ?3)
             ON CONFLICT (host) DO UPDATE SET parked_at = ?2, parked_reason = ?3",
            params![host, now_text(self)?, reason],
        ))?;
        Ok(())
    }

    /// Clears every host's parked mark: a new crawl gives each host a fresh error budget.
    pub fn unpark_hosts(&self) -> Result<()> {
        self.sql(self.conn().execute(
            "UPDATE hosts SET parked_at = NULL, parked_reason = NULL WHERE parked_at IS NOT NULL",
            [],
        ))?;
        Ok(())
    }

    /// The crawl's state from the database: works on a crawl running in another process.
    pub fn crawl_status(&self) -> Result<CrawlStatus> {
        let c = self.conn();
        let mut status = CrawlStatus::default();
        let grouped = |query: &str, into: &mut BTreeMap<String, u64>| -> Result<()> {
            let mut stmt = self.sql(c.prepare(query))?;
            let rows = self.sql(stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?))))?;
            for row in rows {
                let (k, n) = self.sql(row)?;
                into.insert(k, n);
            }
            Ok(())
        };
        grouped(
            "SELECT state, count(*) FROM frontier GROUP BY state",
            &mut status.frontier,
        )?;
        grouped(
            "SELECT error_class, count(*) FROM pages WHERE error_class IS NOT NULL
             GROUP BY error_class",
            &mut status.errors,
        )?;
        grouped(
            "SELECT coalesce(CAST(status AS TEXT), 'none'), count(*) FROM pages GROUP BY status",
            &mut status.statuses,
        )?;
        status.pages = status.statuses.values().sum();
        let recent: i64 = self.sql(c.query_row(
            "SELECT count(*) FROM pages
             WHERE fetched_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds')",
            [],
            |r| r.get(0),
        ))?;
        status.pages_per_sec_last_minute = recent as f64 / 60.0;
        status.hosts_queued = self.sql(c.query_row(
            "SELECT count(DISTINCT host) FROM frontier WHERE state = 'queued'",
            [],
            |r| r.get(0),
        ))?;
        status.hosts_parked = self.sql(c.query_row(
            "SELECT count(*) FROM hosts WHERE parked_at IS NOT NULL",
            [],
            |r| r.get(0),
        ))?;
        status.last_run = self.sql(
            c.query_row(
                "SELECT started_at, finished_at, status, json_extract(counts, '$.stopped')
                 FROM runs WHERE stage = 'crawl' ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    let status: String = r.get(2)?;
                    let stopped: Option<bool> = r.get(3)?;
                    // a crawl that ended with URLs queued (a signal, a limit) stopped
                    let status = if status == "done" && stopped == Some(true) {
                        "stopped".to_string()
                    } else {
                        status
                    };
                    Ok((r.get(0)?, r.get(1)?, status))
                },
            )
            .optional(),
        )?;
        if let Some((_, _, state)) = &mut status.last_run
            && state == "running"
            && !self.stage_is_live("crawl")
        {
            *state = "interrupted".to_string();
        }
        Ok(status)
    }
}

fn now_text(store: &Store) -> Result<String> {
    store.sql(
        store
            .conn()
            .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
                r.get(0)
            }),
    )
}
