//! `zhcorpus merge`: many stores (crawl workers', per-rank stores) into one, keyed by URL and
//! document id, with no duplicates.
//!
//! What is carried: the crawl's frontier (one row per URL; a finished state wins over a queued
//! one), pages (one per URL: a fetch that succeeded wins over one that failed, then the first
//! store given), documents (one per id, pointing at the kept page), image-text candidates,
//! hosts' robots.txt (the latest), images and their fetches and checks, and the runs of every
//! source, each marked with the store it came from. Verdicts are not carried: they judge a
//! corpus as a whole (near duplicates across stores), so clean and dedup run again on the
//! merged store; the report counts those left behind.
//!
//! The output is written under a temporary name and renamed when complete: a merge that is
//! interrupted leaves no half-merged store, and the same command starts it again.

use std::path::{Path, PathBuf};

use rusqlite::params;
use serde::Serialize;

use crate::error::Result;
use crate::store::{Store, sqlite_error};
use crate::{Error, Progress};

/// What a merge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MergeReport {
    pub sources: u64,
    /// Rows in the merged store.
    pub frontier: u64,
    pub pages: u64,
    pub documents: u64,
    pub image_pairs: u64,
    pub images: u64,
    /// Rows of the sources not carried because the merged store had them already (the same
    /// URL fetched by two workers, the same document id).
    pub duplicate_pages: u64,
    pub duplicate_documents: u64,
    /// Verdict rows of the sources left behind (clean and dedup run again on the merge).
    pub verdicts_left: u64,
}

/// Merges `sources` into a new store at `output`. An existing `output` is refused unless it is
/// empty (no documents, pages or frontier rows).
pub fn merge(output: &Path, sources: &[PathBuf], progress: &dyn Progress) -> Result<MergeReport> {
    if sources.is_empty() {
        return Err(Error::BadOutput {
            path: output.to_path_buf(),
            why: "needs at least one store to merge".into(),
        });
    }
    if output.exists() {
        let store = Store::open_existing(output)?;
        let s = store.stats()?;
        if s.documents > 0 || store.crawl_status()?.pages > 0 || store.queued_count()? > 0 {
            return Err(Error::BadOutput {
                path: output.to_path_buf(),
                why: "holds a corpus already: merge writes a new store (give another path)".into(),
            });
        }
    }
    for s in sources {
        if same_file(s, output) {
            return Err(Error::BadOutput {
                path: output.to_path_buf(),
                why: format!("is also a source ({})", s.display()),
            });
        }
        // each source is checked (ours, a version this build reads) before anything is written
        drop(Store::open_existing(s)?);
    }
    let partial = partial_path(output);
    let _ = std::fs::remove_file(&partial);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&partial, suffix));
    }
    let mut report = MergeReport::default();
    {
        let mut store = Store::open(&partial)?;
        let run = store.begin_run(
            "merge",
            &serde_json::json!({
                "sources": sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()
            }),
        )?;
        progress.start("merge", Some(sources.len() as u64));
        // pages that succeeded first, from every source; then the rest
        for pass in [Pass::Succeeded, Pass::Rest] {
            for (i, source) in sources.iter().enumerate() {
                if progress.cancelled() {
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "merge interrupted",
                    )));
                }
                merge_one(&mut store, source, i, pass, &mut report)?;
                if pass == Pass::Rest {
                    progress.update(i as u64 + 1, 0);
                }
            }
        }
        progress.finish();
        report.sources = sources.len() as u64;
        let count = |table: &str| -> Result<u64> {
            store.sql(
                store
                    .conn()
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)),
            )
        };
        report.frontier = count("frontier")?;
        report.pages = count("pages")?;
        report.documents = count("documents")?;
        report.image_pairs = count("image_text")?;
        report.images = count("images")?;
        store.finish_run(run, crate::RunStatus::Done, &report)?;
        store.sql(
            store
                .conn()
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"),
        )?;
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&partial, suffix));
    }
    std::fs::rename(&partial, output).map_err(|e| Error::BadOutput {
        path: output.to_path_buf(),
        why: format!("cannot be written: {e}"),
    })?;
    Ok(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Succeeded,
    Rest,
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn partial_path(output: &Path) -> PathBuf {
    with_suffix(output, ".partial")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// One source, in one transaction: the frontier and runs on the first pass, with the pages
/// that succeeded; the other pages, documents, images and robots.txt on the second.
fn merge_one(
    store: &mut Store,
    source: &Path,
    index: usize,
    pass: Pass,
    report: &mut MergeReport,
) -> Result<()> {
    let path = store.path().to_path_buf();
    let sql = sqlite_error(&path);
    let conn = store.conn_mut();
    conn.execute("ATTACH DATABASE ?1 AS src", [source.to_string_lossy()])
        .map_err(|err| Error::Sqlite {
            path: source.to_path_buf(),
            err,
        })?;
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        let tag = source.display().to_string();
        if pass == Pass::Succeeded {
            // runs, mapped to their new ids for the rows that point at them
            tx.execute_batch(&format!(
                "DROP TABLE IF EXISTS temp.run_map_{index};
                 CREATE TEMP TABLE run_map_{index} (old INTEGER PRIMARY KEY, new INTEGER NOT NULL);"
            ))?;
            let runs: Vec<i64> = {
                let mut stmt = tx.prepare("SELECT id FROM src.runs ORDER BY id")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for old in runs {
                tx.execute(
                    "INSERT INTO runs (stage, config, started_at, finished_at, status, counts)
                     SELECT stage,
                        CASE WHEN json_valid(config) AND json_type(config) = 'object'
                            THEN json_set(config, '$.merged_from', ?2) ELSE config END,
                        started_at, finished_at, status, counts
                     FROM src.runs WHERE id = ?1",
                    params![old, tag],
                )?;
                let new = tx.last_insert_rowid();
                tx.execute(
                    &format!("INSERT INTO temp.run_map_{index} VALUES (?1, ?2)"),
                    params![old, new],
                )?;
            }
            // the frontier: one row per URL, a finished state over a waiting one
            tx.execute(
                "INSERT INTO frontier (url, url_hash, host, depth, state, attempts, not_before,
                    discovered_at, kind)
                 SELECT url, url_hash, host, depth, state, attempts, not_before, discovered_at,
                    kind FROM src.frontier WHERE true
                 ON CONFLICT (url_hash) DO UPDATE SET state = excluded.state,
                    attempts = excluded.attempts
                 WHERE frontier.state IN ('queued', 'in_flight')
                    AND excluded.state NOT IN ('queued', 'in_flight')",
                [],
            )?;
            tx.execute(
                "UPDATE frontier SET parent = (
                    SELECT tp.id FROM src.frontier s
                    JOIN src.frontier sp ON sp.id = s.parent
                    JOIN frontier tp ON tp.url_hash = sp.url_hash
                    WHERE s.url_hash = frontier.url_hash)
                 WHERE parent IS NULL AND url_hash IN (
                    SELECT url_hash FROM src.frontier WHERE parent IS NOT NULL)",
                [],
            )?;
        }
        // pages: one per URL, the latest fetch of it in this source
        let (which, which2) = match pass {
            Pass::Succeeded => (
                "s.status BETWEEN 200 AND 399",
                "s2.status BETWEEN 200 AND 399",
            ),
            Pass::Rest => (
                "(s.status IS NULL OR s.status NOT BETWEEN 200 AND 399)",
                "(s2.status IS NULL OR s2.status NOT BETWEEN 200 AND 399)",
            ),
        };
        let offered: u64 = tx.query_row(
            &format!("SELECT count(*) FROM src.pages s WHERE {which}"),
            [],
            |r| r.get(0),
        )?;
        let added = tx.execute(
            &format!(
                "INSERT INTO pages (frontier_id, url, final_url, status, error_class, error,
                    headers, content_type, charset, charset_source, fetched_at, elapsed_ms,
                    body_len, body)
                 SELECT (SELECT t.id FROM frontier t JOIN src.frontier f
                            ON f.url_hash = t.url_hash WHERE f.id = s.frontier_id),
                    s.url, s.final_url, s.status, s.error_class, s.error, s.headers,
                    s.content_type, s.charset, s.charset_source, s.fetched_at, s.elapsed_ms,
                    s.body_len, s.body
                 FROM src.pages s
                 WHERE {which}
                    AND s.id = (SELECT max(id) FROM src.pages s2
                                WHERE s2.url = s.url AND {which2})
                    AND NOT EXISTS (SELECT 1 FROM pages p WHERE p.url = s.url)
                 ORDER BY s.id"
            ),
            [],
        )? as u64;
        report.duplicate_pages += offered - added;
        if pass == Pass::Rest {
            // documents: one per id, pointing at the kept page of their URL
            let offered: u64 =
                tx.query_row("SELECT count(*) FROM src.documents", [], |r| r.get(0))?;
            let added = tx.execute(
                &format!(
                    "INSERT OR IGNORE INTO documents (id, url, source, title, text, lang, created,
                    extra, content_hash, added_at, run_id, page_id)
                 SELECT d.id, d.url, d.source, d.title, d.text, d.lang, d.created, d.extra,
                    d.content_hash, d.added_at,
                    (SELECT new FROM temp.run_map_{index} WHERE old = d.run_id),
                    (SELECT t.id FROM pages t JOIN src.pages sp ON sp.url = t.url
                        WHERE sp.id = d.page_id)
                 FROM src.documents d ORDER BY d.seq"
                ),
                [],
            )? as u64;
            report.duplicate_documents += offered - added;
            tx.execute(
                "INSERT OR IGNORE INTO image_text (doc, page_id, image_url, alt, caption, status,
                    mime, width, height, body, title, caption_source, context)
                 SELECT (SELECT t.seq FROM documents t JOIN src.documents sd ON sd.id = t.id
                            WHERE sd.seq = i.doc),
                    (SELECT t.id FROM pages t JOIN src.pages sp ON sp.url = t.url
                        WHERE sp.id = i.page_id),
                    i.image_url, i.alt, i.caption, i.status, i.mime, i.width, i.height, i.body,
                    i.title, i.caption_source, i.context
                 FROM src.image_text i ORDER BY i.id",
                [],
            )?;
            tx.execute_batch(&format!(
                "INSERT INTO hosts (host, robots_status, robots_error, robots_body,
                    robots_fetched_at, parked_at, parked_reason)
                 SELECT host, robots_status, robots_error, robots_body, robots_fetched_at,
                    parked_at, parked_reason FROM src.hosts WHERE true
                 ON CONFLICT (host) DO UPDATE SET robots_status = excluded.robots_status,
                    robots_error = excluded.robots_error, robots_body = excluded.robots_body,
                    robots_fetched_at = excluded.robots_fetched_at
                 WHERE coalesce(excluded.robots_fetched_at, 0)
                    > coalesce(hosts.robots_fetched_at, 0);
                 INSERT OR IGNORE INTO images SELECT * FROM src.images;
                 INSERT OR IGNORE INTO image_checks SELECT * FROM src.image_checks;
                 INSERT INTO image_fetches (url, run_id, final_url, status, outcome,
                    error, image, attempts, elapsed_ms, fetched_at)
                 SELECT url, (SELECT new FROM temp.run_map_{index} WHERE old = run_id), final_url,
                    status, outcome, error, image, attempts, elapsed_ms, fetched_at
                 FROM src.image_fetches WHERE true
                 ON CONFLICT (url) DO UPDATE SET run_id = excluded.run_id,
                    final_url = excluded.final_url, status = excluded.status,
                    outcome = excluded.outcome, error = excluded.error, image = excluded.image,
                    attempts = excluded.attempts, elapsed_ms = excluded.elapsed_ms,
                    fetched_at = excluded.fetched_at
                 WHERE image_fetches.outcome != 'ok' AND excluded.outcome = 'ok';
                 UPDATE frontier SET state = 'done' WHERE state = 'failed' AND id IN (
                    SELECT frontier_id FROM pages WHERE status BETWEEN 200 AND 399);"
            ))?;
            let verdicts: u64 = tx.query_row(
                "SELECT (SELECT count(*) FROM src.clean_verdicts)
                      + (SELECT count(*) FROM src.dedup_verdicts)
                      + (SELECT count(*) FROM src.image_verdicts)",
                [],
                |r| r.get(0),
            )?;
            report.verdicts_left += verdicts;
        }
        tx.commit()
    })();
    let detached = conn.execute("DETACH DATABASE src", []);
    result.map_err(|err| Error::Sqlite {
        path: source.to_path_buf(),
        err,
    })?;
    detached.map_err(&sql)?;
    Ok(())
}
