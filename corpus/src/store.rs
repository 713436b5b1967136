//! The SQLite store: one file holds pages, documents and every stage's verdicts.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use crate::document::Document;
use crate::error::{Error, Result};
use crate::schema::{self, Found, SCHEMA_VERSION, now};

/// A document is kept when no stage's verdict removed it. This is the one definition of
/// "what goes into training"; `d` is the documents table.
pub(crate) const KEPT: &str = "(NOT EXISTS (SELECT 1 FROM runs WHERE stage = 'clean')
        OR EXISTS (SELECT 1 FROM clean_verdicts c WHERE c.doc = d.seq AND c.keep = 1))
    AND (NOT EXISTS (SELECT 1 FROM runs WHERE stage = 'dedup')
        OR EXISTS (SELECT 1 FROM dedup_verdicts v WHERE v.doc = d.seq AND v.keep = 1))";

/// Judged and kept by the cleaner, when it has run: what dedup reads.
const CLEAN_KEPT: &str = "(NOT EXISTS (SELECT 1 FROM runs WHERE stage = 'clean')
        OR EXISTS (SELECT 1 FROM clean_verdicts c WHERE c.doc = d.seq AND c.keep = 1))";

/// Rows fetched per query when streaming documents.
const PAGE: i64 = 1000;

/// An open corpus database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The stage locks this handle holds, by stage.
    locks: std::sync::Mutex<std::collections::HashMap<String, std::fs::File>>,
}

/// Documents that a stage which has run on the store has not judged: imported after it, or
/// left by an interrupted run. They are not kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Unjudged {
    /// Without a clean verdict, when clean has run.
    pub clean: u64,
    /// Kept by clean (or clean never ran) but without a dedup verdict, when dedup has run.
    pub dedup: u64,
}

impl Unjudged {
    pub fn total(&self) -> u64 {
        self.clean + self.dedup
    }
}

/// The id of a row in `runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunId(pub i64);

/// How a stage run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Done,
    Failed,
}

/// The latest run of a stage, as [`Store::last_run`] finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    pub id: i64,
    pub status: String,
    pub config: Value,
}

impl LastRun {
    /// The run finished its work.
    pub fn is_done(&self) -> bool {
        self.status == "done"
    }
}

impl RunStatus {
    /// `Done` for a stage that returned its result, `Failed` for one that returned an error.
    pub fn of<T, E>(result: &std::result::Result<T, E>) -> RunStatus {
        if result.is_ok() {
            RunStatus::Done
        } else {
            RunStatus::Failed
        }
    }
}

/// Which documents to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Every document.
    All,
    /// Documents that no recorded verdict removed.
    Kept,
    /// Documents the cleaner did not reject, whatever dedup said: what dedup works on.
    CleanKept,
}

/// A document with its row number in the store, which verdicts refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    pub seq: i64,
    pub doc: Document,
}

/// The cleaner's verdict on one document.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanVerdict {
    pub doc: i64,
    pub keep: bool,
    /// The rule that rejected the document.
    pub rule: Option<String>,
    /// The rule's measured value.
    pub value: Option<f64>,
    /// The quality classifier's score.
    pub score: Option<f64>,
    /// Every rule's value, as a JSON object.
    pub details: Option<Value>,
    /// The cleaned text, when it differs from the document's: what later stages read.
    pub text: Option<String>,
}

/// Why the dedup stage kept or removed a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupKind {
    Unique,
    Exact,
    Near,
    Contaminated,
}

impl DedupKind {
    /// The name stored in `dedup_verdicts.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            DedupKind::Unique => "unique",
            DedupKind::Exact => "exact",
            DedupKind::Near => "near",
            DedupKind::Contaminated => "contaminated",
        }
    }
}

/// The dedup stage's verdict on one document.
#[derive(Debug, Clone, PartialEq)]
pub struct DedupVerdict {
    pub doc: i64,
    pub keep: bool,
    pub kind: DedupKind,
    /// The seq of the cluster's kept member.
    pub cluster: Option<i64>,
    pub similarity: Option<f64>,
    /// For a contaminated document, the evaluation-set text it shares.
    pub span: Option<String>,
    /// The text left after paragraph-level dedup removed repeated paragraphs.
    pub text: Option<String>,
}

impl Store {
    /// Opens the database at `path`, creating it when it does not exist, and brings its schema
    /// up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with_schema(path.as_ref(), SCHEMA_VERSION)
    }

    /// Opens an existing database; a missing file is an error rather than a new store.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::NoDatabase {
                path: path.to_path_buf(),
            });
        }
        Store::open(path)
    }

    /// Opens `path` and migrates it to `version` only. For testing migrations from old files.
    #[doc(hidden)]
    pub fn open_with_schema(path: &Path, version: i64) -> Result<Store> {
        let sql = |err| Error::Sqlite {
            path: path.to_path_buf(),
            err,
        };
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(BUSY).map_err(sql)?;
        let found = schema::inspect_snapshot(&mut conn).map_err(|err| match err {
            rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::NotADatabase => {
                Error::NotOurs {
                    path: path.to_path_buf(),
                    reason: "it is not an SQLite file".to_string(),
                }
            }
            err => sql(err),
        })?;
        // WAL: readers never block the writer, and a killed writer loses only its open
        // transaction. NORMAL sync is durable against a crash of the process.
        let check = |found: Found| -> Result<i64> {
            let current = match found {
                Found::Empty => 0,
                Found::Ours(v) => v,
                Found::Foreign(reason) => {
                    return Err(Error::NotOurs {
                        path: path.to_path_buf(),
                        reason,
                    });
                }
            };
            if current > SCHEMA_VERSION {
                return Err(Error::TooNew {
                    path: path.to_path_buf(),
                    found: current,
                    supported: SCHEMA_VERSION,
                });
            }
            Ok(current)
        };
        let current = check(found)?;
        let mode = enable_wal(&conn).map_err(sql)?;
        if mode != "wal" {
            tracing::warn!(path = %path.display(), mode, "WAL not available");
        }
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;",
        )
        .map_err(sql)?;
        if current < version {
            check(schema::migrate(&mut conn, version).map_err(sql)?)?;
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            locks: Default::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T> {
        r.map_err(|err| Error::Sqlite {
            path: self.path.clone(),
            err,
        })
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64> {
        self.sql(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)))
    }

    /// Records the start of a stage run with its configuration.
    pub fn begin_run(&self, stage: &str, config: &impl Serialize) -> Result<RunId> {
        self.lock_stage(stage)?;
        let config = serde_json::to_string(config).map_err(std::io::Error::from)?;
        self.sql(self.conn.execute(
            "INSERT INTO runs (stage, config) VALUES (?1, ?2)",
            params![stage, config],
        ))?;
        Ok(RunId(self.conn.last_insert_rowid()))
    }

    /// The latest run of `stage`: its id, status (`running`, `done`, `failed`) and the
    /// configuration it recorded.
    pub fn last_run(&self, stage: &str) -> Result<Option<LastRun>> {
        self.sql(
            self.conn
                .query_row(
                    "SELECT id, status, config FROM runs WHERE stage = ?1 ORDER BY id DESC LIMIT 1",
                    params![stage],
                    |r| {
                        let config: String = r.get(2)?;
                        Ok(LastRun {
                            id: r.get(0)?,
                            status: r.get(1)?,
                            config: serde_json::from_str(&config).unwrap_or(Value::Null),
                        })
                    },
                )
                .optional(),
        )
    }

    /// Takes the one-writer lock of `stage` on this store (a file in `DB.locks/`, locked
    /// with the OS's advisory lock, so a process that dies releases it). Held until
    /// [`Store::finish_run`] of the stage's run or until the store is dropped; taking it again
    /// through the same handle is a no-op. Another process holding it is an
    /// [`Error::Busy`] naming its pid and command.
    pub fn lock_stage(&self, stage: &str) -> Result<()> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.contains_key(stage) {
            return Ok(());
        }
        let path = self.lock_path(stage);
        let io = |err| Error::Input {
            path: path.clone(),
            err,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(Error::Busy {
                    path: self.path.clone(),
                    stage: stage.to_string(),
                    holder: describe_holder(holder.trim()),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        use std::io::{Seek, Write};
        let pid = std::process::id();
        let _ = file.set_len(0);
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = writeln!(file, "{pid}");
        locks.insert(stage.to_string(), file);
        Ok(())
    }

    /// Whether a process (this one or another) holds `stage`'s lock on this store: a run of
    /// it marked `running` whose lock is free was interrupted.
    pub fn stage_is_live(&self, stage: &str) -> bool {
        if self
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(stage)
        {
            return true;
        }
        let Ok(file) = std::fs::File::open(self.lock_path(stage)) else {
            return false;
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(_) => true,
        }
    }

    /// `corpus.db.locks/STAGE`: one folder of lock files beside the database.
    fn lock_path(&self, stage: &str) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".locks");
        PathBuf::from(name).join(stage)
    }

    fn unlock_stage(&self, stage: &str) {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(stage);
    }

    /// The documents that stages which have run have not judged (see [`Unjudged`]).
    pub fn unjudged(&self) -> Result<Unjudged> {
        let one =
            |sql: &str| -> Result<u64> { self.sql(self.conn.query_row(sql, [], |r| r.get(0))) };
        let ran = |stage: &str| -> Result<bool> {
            Ok(one(&format!(
                "SELECT COUNT(*) FROM runs WHERE stage = '{stage}'"
            ))? > 0)
        };
        let clean = if ran("clean")? {
            one("SELECT COUNT(*) FROM documents d
                 WHERE NOT EXISTS (SELECT 1 FROM clean_verdicts c WHERE c.doc = d.seq)")?
        } else {
            0
        };
        let dedup = if ran("dedup")? {
            one(&format!(
                "SELECT COUNT(*) FROM documents d WHERE {CLEAN_KEPT}
                 AND NOT EXISTS (SELECT 1 FROM dedup_verdicts v WHERE v.doc = d.seq)"
            ))?
        } else {
            0
        };
        Ok(Unjudged { clean, dedup })
    }

    /// Refuses to go on when a stage before `stage` is incomplete on this store: its last run
    /// did not finish, or documents lack its verdict. `before` names the earlier stages that
    /// judge documents (`clean`, `dedup`).
    pub fn require_complete(&self, stage: &str, before: &[&str]) -> Result<()> {
        let unjudged = self.unjudged()?;
        // each earlier stage's run must also come after the run of the stage before it (a
        // clean run again after dedup leaves dedup's verdicts stale)
        let mut previous: Option<(&str, i64)> = None;
        for &earlier in before {
            let Some(last) = self.last_run(earlier)? else {
                continue;
            };
            if let Some((prev, prev_id)) = previous
                && last.id < prev_id
            {
                return Err(Error::Incomplete {
                    path: self.path.clone(),
                    stage: stage.to_string(),
                    earlier: earlier.to_string(),
                    why: format!("{prev} ran again after it: its verdicts are stale"),
                });
            }
            previous = Some((earlier, last.id));
            let missing = match earlier {
                "clean" => unjudged.clean,
                "dedup" => unjudged.dedup,
                _ => 0,
            };
            let state = if last.is_done() {
                None
            } else if self.stage_is_live(earlier) {
                Some("is still running")
            } else {
                Some("was interrupted")
            };
            if state.is_some() || missing > 0 {
                return Err(Error::Incomplete {
                    path: self.path.clone(),
                    stage: stage.to_string(),
                    earlier: earlier.to_string(),
                    why: match state {
                        Some(s) => format!("its last run (#{}) {s}", last.id),
                        None => format!(
                            "{missing} documents have no {earlier} verdict (added after its last run)"
                        ),
                    },
                });
            }
        }
        Ok(())
    }

    /// The counts the latest run of `stage` recorded, if it recorded any.
    pub fn last_run_counts(&self, stage: &str) -> Result<Option<Value>> {
        let counts: Option<Option<String>> = self.sql(
            self.conn
                .query_row(
                    "SELECT counts FROM runs WHERE stage = ?1 ORDER BY id DESC LIMIT 1",
                    params![stage],
                    |r| r.get(0),
                )
                .optional(),
        )?;
        Ok(counts.flatten().and_then(|c| serde_json::from_str(&c).ok()))
    }

    /// Records the end of a stage run with its counts, and releases the stage's lock.
    pub fn finish_run(&self, run: RunId, status: RunStatus, counts: &impl Serialize) -> Result<()> {
        let counts = serde_json::to_string(counts).map_err(std::io::Error::from)?;
        let stage: Option<String> = self.sql(
            self.conn
                .query_row(
                    "SELECT stage FROM runs WHERE id = ?1",
                    params![run.0],
                    |r| r.get(0),
                )
                .optional(),
        )?;
        let status = match status {
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
        };
        self.sql(self.conn.execute(
            concat!(
                "UPDATE runs SET status = ?2, counts = ?3, finished_at = ",
                now!(),
                " WHERE id = ?1"
            ),
            params![run.0, status, counts],
        ))?;
        if let Some(stage) = stage {
            self.unlock_stage(&stage);
        }
        Ok(())
    }

    /// Inserts documents in one transaction. A document whose id is already stored is left as
    /// it is. Returns how many were new.
    pub fn insert_documents(&mut self, run: Option<RunId>, docs: &[Document]) -> Result<u64> {
        let sql = sqlite_error(&self.path);
        let tx = self.conn.transaction().map_err(&sql)?;
        let now = now(&tx).map_err(&sql)?;
        let mut inserted = 0;
        for d in docs {
            inserted += u64::from(insert_document(&tx, d, run, None, &now).map_err(&sql)?);
        }
        tx.commit().map_err(&sql)?;
        Ok(inserted)
    }

    /// Streams documents in store order, a page of rows at a time: memory stays flat whatever
    /// the size of the corpus.
    pub fn documents(&self, selection: Selection) -> DocumentIter<'_> {
        DocumentIter {
            store: self,
            selection,
            after: 0,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    /// The row number of the document with this id.
    pub fn document_seq(&self, id: &str) -> Result<Option<i64>> {
        self.sql(
            self.conn
                .query_row("SELECT seq FROM documents WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional(),
        )
    }

    /// The document with this id, as stored.
    pub fn document(&self, id: &str) -> Result<Option<StoredDocument>> {
        self.sql(
            self.conn
                .query_row(&format!("{COLUMNS} WHERE d.id = ?1"), [id], row_to_document)
                .optional(),
        )
    }

    /// The cleaner's stored verdict on a document: keep, rule, value, score, details.
    pub fn clean_verdict(&self, seq: i64) -> Result<Option<CleanVerdict>> {
        self.sql(
            self.conn
                .query_row(
                    "SELECT keep, rule, value, score, details, text FROM clean_verdicts
                     WHERE doc = ?1",
                    [seq],
                    |r| {
                        let details: Option<String> = r.get(4)?;
                        Ok(CleanVerdict {
                            doc: seq,
                            keep: r.get(0)?,
                            rule: r.get(1)?,
                            value: r.get(2)?,
                            score: r.get(3)?,
                            details: details.and_then(|d| serde_json::from_str(&d).ok()),
                            text: r.get(5)?,
                        })
                    },
                )
                .optional(),
        )
    }

    /// Number of documents stored.
    pub fn document_count(&self) -> Result<u64> {
        self.sql(
            self.conn
                .query_row("SELECT COUNT(*) FROM documents", [], |r| r.get(0)),
        )
    }

    /// Records (or replaces) the cleaner's verdicts, in one transaction.
    pub fn record_clean_verdicts(&mut self, run: RunId, verdicts: &[CleanVerdict]) -> Result<()> {
        let sql = sqlite_error(&self.path);
        let tx = self.conn.transaction().map_err(&sql)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO clean_verdicts
                        (doc, run_id, keep, rule, value, score, details, text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&sql)?;
            for v in verdicts {
                let details = v.details.as_ref().map(Value::to_string);
                stmt.execute(params![
                    v.doc, run.0, v.keep, v.rule, v.value, v.score, details, v.text
                ])
                .map_err(&sql)?;
            }
        }
        tx.commit().map_err(&sql)
    }

    /// Records (or replaces) the dedup stage's verdicts, in one transaction.
    pub fn record_dedup_verdicts(&mut self, run: RunId, verdicts: &[DedupVerdict]) -> Result<()> {
        let sql = sqlite_error(&self.path);
        let tx = self.conn.transaction().map_err(&sql)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO dedup_verdicts
                        (doc, run_id, keep, kind, cluster, similarity, span, text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&sql)?;
            for v in verdicts {
                stmt.execute(params![
                    v.doc,
                    run.0,
                    v.keep,
                    v.kind.as_str(),
                    v.cluster,
                    v.similarity,
                    v.span,
                    v.text
                ])
                .map_err(&sql)?;
            }
        }
        tx.commit().map_err(&sql)
    }
    /// The cleaner's quality scores of the documents `seqs`, where it gave one: for a stage
    /// that needs the scores of a few documents without holding every document's.
    pub fn clean_scores_of(&self, seqs: &[i64]) -> Result<std::collections::HashMap<i64, f64>> {
        let mut stmt = self.sql(self.conn.prepare_cached(
            "SELECT score FROM clean_verdicts WHERE doc = ?1 AND score IS NOT NULL",
        ))?;
        let mut out = std::collections::HashMap::with_capacity(seqs.len());
        for &seq in seqs {
            let mut rows = self.sql(stmt.query([seq]))?;
            if let Some(r) = self.sql(rows.next())? {
                out.insert(seq, self.sql(r.get(0))?);
            }
        }
        Ok(out)
    }

    /// Counts and sizes of everything in the store.
    pub fn stats(&self) -> Result<crate::Stats> {
        crate::stats::collect(self)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Up to 1,000 documents of `selection` with a seq above `after`, in seq order: for a
    /// stage that writes between reads (call again with the last seq).
    pub fn documents_page(&self, selection: Selection, after: i64) -> Result<Vec<StoredDocument>> {
        self.fetch_page(selection, after)
    }

    fn fetch_page(&self, selection: Selection, after: i64) -> Result<Vec<StoredDocument>> {
        let sql = match selection {
            Selection::All => format!("{COLUMNS} WHERE d.seq > ?1 ORDER BY d.seq LIMIT ?2"),
            Selection::Kept => {
                format!("{KEPT_COLUMNS} WHERE d.seq > ?1 AND {KEPT} ORDER BY d.seq LIMIT ?2")
            }
            Selection::CleanKept => {
                format!(
                    "{CLEANED_COLUMNS} WHERE d.seq > ?1 AND {CLEAN_KEPT} ORDER BY d.seq LIMIT ?2"
                )
            }
        };
        let mut stmt = self.sql(self.conn.prepare_cached(&sql))?;
        let rows = self.sql(stmt.query_map(params![after, PAGE], row_to_document))?;
        rows.map(|r| self.sql(r)).collect()
    }
}

/// Maps SQLite errors to [`Error::Sqlite`] naming the database file.
pub(crate) fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |err| Error::Sqlite {
        path: path.to_path_buf(),
        err,
    }
}

/// Inserts one document unless its id is stored; returns whether it was new. The one INSERT of
/// a document, for imports and extracted pages alike.
pub(crate) fn insert_document(
    tx: &rusqlite::Transaction<'_>,
    d: &Document,
    run: Option<RunId>,
    page_id: Option<i64>,
    now: &str,
) -> rusqlite::Result<bool> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO documents
            (id, url, source, title, text, lang, created, extra, content_hash, run_id, page_id,
             added_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (id) DO NOTHING",
    )?;
    let n = stmt.execute(params![
        d.id,
        d.url,
        d.source,
        d.title,
        d.text,
        d.lang,
        d.created,
        d.extra_json(),
        d.content_hash(),
        run.map(|r| r.0),
        page_id,
        now,
    ])?;
    Ok(n == 1)
}

/// The current time as stored, read once per transaction: a per-row default would cost SQLite
/// a strftime per document.
pub(crate) fn now(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<String> {
    tx.query_row(concat!("SELECT ", now!()), [], |r| r.get(0))
}

/// How long opening waits for other processes that hold the database.
const BUSY: std::time::Duration = std::time::Duration::from_secs(30);

/// Switches to WAL. SQLite answers "database is locked" at once, without its busy handler,
/// when another connection is opening the same new file; so this waits and retries itself.
fn enable_wal(conn: &Connection) -> rusqlite::Result<String> {
    let deadline = std::time::Instant::now() + BUSY;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

const COLUMNS: &str =
    "SELECT d.seq, d.id, d.text, d.url, d.source, d.title, d.lang, d.created, d.extra
     FROM documents d";

/// The same columns with the cleaner's text in place of the stored one, where it made one:
/// what the stages after the cleaner read.
const CLEANED_COLUMNS: &str = "SELECT d.seq, d.id,
        coalesce((SELECT c.text FROM clean_verdicts c WHERE c.doc = d.seq), d.text),
        d.url, d.source, d.title, d.lang, d.created, d.extra
     FROM documents d";

/// For the kept documents: the text after paragraph-level dedup, else the cleaner's, else the
/// stored one.
const KEPT_COLUMNS: &str = "SELECT d.seq, d.id,
        coalesce((SELECT v.text FROM dedup_verdicts v WHERE v.doc = d.seq),
                 (SELECT c.text FROM clean_verdicts c WHERE c.doc = d.seq), d.text),
        d.url, d.source, d.title, d.lang, d.created, d.extra
     FROM documents d";

fn row_to_document(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredDocument> {
    let extra: Option<String> = row.get(8)?;
    let extra = match extra {
        None => serde_json::Map::new(),
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, Box::new(e))
        })?,
    };
    Ok(StoredDocument {
        seq: row.get(0)?,
        doc: Document {
            id: row.get(1)?,
            text: row.get(2)?,
            url: row.get(3)?,
            source: row.get(4)?,
            title: row.get(5)?,
            lang: row.get(6)?,
            created: row.get(7)?,
            extra,
        },
    })
}

/// Streams documents from a [`Store`]; see [`Store::documents`].
pub struct DocumentIter<'a> {
    store: &'a Store,
    selection: Selection,
    after: i64,
    page: std::vec::IntoIter<StoredDocument>,
    done: bool,
}

impl Iterator for DocumentIter<'_> {
    type Item = Result<StoredDocument>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(doc) = self.page.next() {
            self.after = doc.seq;
            return Some(Ok(doc));
        }
        if self.done {
            return None;
        }
        match self.store.fetch_page(self.selection, self.after) {
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(page) => {
                self.done = (page.len() as i64) < PAGE;
                self.page = page.into_iter();
                let doc = self.page.next()?;
                self.after = doc.seq;
                Some(Ok(doc))
            }
        }
    }
}

/// The pid and command line in a lock file, as a reader would like to see them.
fn describe_holder(pid: &str) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty());
    match cmdline {
        Some(c) => format!("pid {pid}: {c}"),
        None => format!("pid {pid}"),
    }
}
