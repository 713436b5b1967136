//! Counts and sizes of a store, for `zhcorpus stats`.

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::store::{KEPT, Store};

/// Everything `zhcorpus stats` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    pub schema_version: i64,
    /// Size of the database file and its write-ahead log.
    pub file_bytes: u64,
    pub documents: u64,
    /// Documents judged by every stage that has run and removed by none.
    pub kept: u64,
    /// Documents a stage that has run has not judged (not kept).
    pub unjudged: crate::Unjudged,
    pub text_bytes: u64,
    pub text_chars: u64,
    pub sources: Vec<SourceStats>,
    pub clean: VerdictStats,
    pub dedup: VerdictStats,
    pub pages: u64,
    pub pages_by_status: Vec<Count>,
    pub frontier: Vec<Count>,
    pub image_text: u64,
    /// Image-text pairs: fetches, images, verdicts.
    pub images: crate::images::ImageStats,
    /// The most recent runs, newest first.
    pub runs: Vec<RunSummary>,
}

/// Documents of one source.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceStats {
    /// `None` for documents without a source.
    pub source: Option<String>,
    pub documents: u64,
    pub kept: u64,
    pub text_bytes: u64,
    pub text_chars: u64,
}

/// One stage's verdicts.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct VerdictStats {
    pub judged: u64,
    pub kept: u64,
    /// Removed documents by rule (clean) or by kind (dedup).
    pub removed: Vec<Count>,
}

/// A named count.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Count {
    pub name: String,
    pub count: u64,
}

/// One row of `runs`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunSummary {
    pub id: i64,
    pub stage: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub counts: Option<Value>,
}

/// How many recent runs the stats list.
const RECENT_RUNS: i64 = 10;

pub(crate) fn collect(store: &Store) -> Result<Stats> {
    let conn = store.conn();
    let counts = |sql: &str| -> Result<Vec<Count>> {
        let mut stmt = store.sql(conn.prepare(sql))?;
        let rows = store.sql(stmt.query_map([], |r| {
            Ok(Count {
                name: r.get(0)?,
                count: r.get(1)?,
            })
        }))?;
        rows.map(|r| store.sql(r)).collect()
    };
    let one = |sql: &str| -> Result<u64> { store.sql(conn.query_row(sql, [], |r| r.get(0))) };

    let sources = {
        let sql = format!(
            "SELECT d.source, COUNT(*), SUM({}), SUM(length(CAST(d.text AS BLOB))),
                SUM(length(d.text))
             FROM documents d GROUP BY d.source ORDER BY COUNT(*) DESC, d.source",
            KEPT
        );
        let mut stmt = store.sql(conn.prepare(&sql))?;
        let rows = store.sql(stmt.query_map([], |r| {
            Ok(SourceStats {
                source: r.get(0)?,
                documents: r.get(1)?,
                kept: r.get(2)?,
                text_bytes: r.get(3)?,
                text_chars: r.get(4)?,
            })
        }))?;
        rows.map(|r| store.sql(r)).collect::<Result<Vec<_>>>()?
    };
    let verdicts = |table: &str, reason: &str| -> Result<VerdictStats> {
        Ok(VerdictStats {
            judged: one(&format!("SELECT COUNT(*) FROM {table}"))?,
            kept: one(&format!("SELECT COUNT(*) FROM {table} WHERE keep = 1"))?,
            removed: counts(&format!(
                "SELECT COALESCE({reason}, '(none)'), COUNT(*) FROM {table} WHERE keep = 0
                 GROUP BY 1 ORDER BY 2 DESC, 1"
            ))?,
        })
    };
    let runs = {
        let mut stmt = store.sql(conn.prepare(
            "SELECT id, stage, status, started_at, finished_at, counts FROM runs
             ORDER BY id DESC LIMIT ?1",
        ))?;
        let rows = store.sql(stmt.query_map([RECENT_RUNS], |r| {
            let counts: Option<String> = r.get(5)?;
            Ok(RunSummary {
                id: r.get(0)?,
                stage: r.get(1)?,
                status: r.get::<_, String>(2)?,
                started_at: r.get(3)?,
                finished_at: r.get(4)?,
                counts: counts.and_then(|c| serde_json::from_str(&c).ok()),
            })
        }))?;
        let mut runs = rows.map(|r| store.sql(r)).collect::<Result<Vec<_>>>()?;
        // a run still marked running whose stage lock nobody holds: its process died
        let mut latest = std::collections::HashSet::new();
        for r in &mut runs {
            let newest = latest.insert(r.stage.clone());
            if r.status == "running" && (!newest || !store.stage_is_live(&r.stage)) {
                r.status = "interrupted".to_string();
            }
        }
        runs
    };
    let file_bytes = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut p = store.path().as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .sum();

    Ok(Stats {
        schema_version: store.schema_version()?,
        file_bytes,
        documents: sources.iter().map(|s| s.documents).sum(),
        kept: sources.iter().map(|s| s.kept).sum(),
        unjudged: store.unjudged()?,
        text_bytes: sources.iter().map(|s| s.text_bytes).sum(),
        text_chars: sources.iter().map(|s| s.text_chars).sum(),
        sources,
        clean: verdicts("clean_verdicts", "rule")?,
        dedup: verdicts("dedup_verdicts", "kind")?,
        pages: one("SELECT COUNT(*) FROM pages")?,
        pages_by_status: counts(
            "SELECT CASE WHEN status IS NULL THEN 'error:' || COALESCE(error_class, 'unknown')
                         ELSE (status / 100) || 'xx' END, COUNT(*)
             FROM pages GROUP BY 1 ORDER BY 1",
        )?,
        frontier: counts("SELECT state, COUNT(*) FROM frontier GROUP BY state ORDER BY state")?,
        image_text: one("SELECT COUNT(*) FROM image_text")?,
        images: store.image_stats()?,
        runs,
    })
}
