//! The store's schema, as a list of migrations applied in order on open.
//!
//! `PRAGMA application_id` marks a file as ours; `PRAGMA user_version` counts the migrations
//! applied. A migration is never edited once released: changes come as a new one at the end.

use rusqlite::{Connection, OptionalExtension};

/// "zhcp": written into the SQLite header of every zhcorpus database.
pub const APPLICATION_ID: i32 = 0x7a68_6370;

/// The schema version this build writes: the number of migrations.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Timestamps are UTC ISO 8601 text with milliseconds.
macro_rules! now {
    () => {
        "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
    };
}
pub(crate) use now;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: documents and the record of stage runs.
    concat!(
        "CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            stage TEXT NOT NULL,
            config TEXT NOT NULL DEFAULT '{}',
            started_at TEXT NOT NULL DEFAULT ",
        now!(),
        ",
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'done', 'failed')),
            counts TEXT
        );
        CREATE TABLE documents (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            url TEXT,
            source TEXT,
            title TEXT,
            text TEXT NOT NULL,
            lang TEXT,
            created TEXT,
            extra TEXT,
            content_hash BLOB NOT NULL,
            added_at TEXT NOT NULL DEFAULT ",
        now!(),
        ",
            run_id INTEGER REFERENCES runs(id)
        );
        CREATE INDEX documents_source ON documents(source);"
    ),
    // 2: the crawler's frontier and fetched pages; documents point at the page they came from.
    concat!(
        "CREATE TABLE frontier (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            url_hash INTEGER NOT NULL UNIQUE,
            host TEXT NOT NULL,
            depth INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'in_flight', 'done', 'failed', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0,
            parent INTEGER REFERENCES frontier(id),
            discovered_at TEXT NOT NULL DEFAULT ",
        now!(),
        "
        );
        CREATE INDEX frontier_state ON frontier(state, not_before);
        CREATE TABLE pages (
            id INTEGER PRIMARY KEY,
            frontier_id INTEGER REFERENCES frontier(id),
            url TEXT NOT NULL,
            final_url TEXT,
            status INTEGER,
            error_class TEXT,
            error TEXT,
            headers TEXT,
            content_type TEXT,
            charset TEXT,
            charset_source TEXT,
            fetched_at TEXT NOT NULL DEFAULT ",
        now!(),
        ",
            elapsed_ms INTEGER,
            body_len INTEGER,
            body BLOB
        );
        CREATE INDEX pages_url ON pages(url);
        ALTER TABLE documents ADD COLUMN page_id INTEGER REFERENCES pages(id);"
    ),
    // 3: one verdict table per stage, and image-text pairs.
    "CREATE TABLE clean_verdicts (
        doc INTEGER PRIMARY KEY REFERENCES documents(seq),
        run_id INTEGER REFERENCES runs(id),
        keep INTEGER NOT NULL CHECK (keep IN (0, 1)),
        rule TEXT,
        value REAL,
        score REAL,
        details TEXT
    );
    CREATE TABLE dedup_verdicts (
        doc INTEGER PRIMARY KEY REFERENCES documents(seq),
        run_id INTEGER REFERENCES runs(id),
        keep INTEGER NOT NULL CHECK (keep IN (0, 1)),
        kind TEXT NOT NULL CHECK (kind IN ('unique', 'exact', 'near', 'contaminated')),
        cluster INTEGER,
        similarity REAL
    );
    CREATE TABLE image_text (
        id INTEGER PRIMARY KEY,
        doc INTEGER REFERENCES documents(seq),
        page_id INTEGER REFERENCES pages(id),
        image_url TEXT NOT NULL,
        alt TEXT,
        caption TEXT,
        status TEXT NOT NULL DEFAULT 'candidate',
        mime TEXT,
        width INTEGER,
        height INTEGER,
        body BLOB,
        UNIQUE (doc, image_url)
    );",
    // 4: what the crawler knows of each host, sitemaps in the frontier, queues per host.
    "ALTER TABLE frontier ADD COLUMN kind TEXT NOT NULL DEFAULT 'page'
        CHECK (kind IN ('page', 'sitemap'));
    CREATE INDEX frontier_host ON frontier(host, state, id);
    CREATE INDEX pages_fetched ON pages(fetched_at);
    CREATE TABLE hosts (
        host TEXT PRIMARY KEY,
        robots_status INTEGER,
        robots_error TEXT,
        robots_body BLOB,
        robots_fetched_at REAL,
        parked_at TEXT,
        parked_reason TEXT
    );",
    // 5: the cleaner's output text, when cleaning changed it; the document stays as stored.
    "ALTER TABLE clean_verdicts ADD COLUMN text TEXT;",
    // 6: the evaluation-set n-gram a contaminated document shares.
    "ALTER TABLE dedup_verdicts ADD COLUMN span TEXT;",
    // 7: the text left after paragraph-level dedup, when it removed paragraphs.
    "ALTER TABLE dedup_verdicts ADD COLUMN text TEXT;",
    // 8: image-text pairs: where each caption came from, the images (content-addressed, stored
    // once whatever URLs serve them), one row per image URL fetched, the filter's checks of each
    // image and its verdict on each pair.
    "ALTER TABLE image_text ADD COLUMN title TEXT;
    ALTER TABLE image_text ADD COLUMN caption_source TEXT;
    ALTER TABLE image_text ADD COLUMN context TEXT;
    CREATE INDEX image_text_url ON image_text(image_url);
    CREATE TABLE images (
        sha256 TEXT PRIMARY KEY,
        format TEXT NOT NULL,
        width INTEGER,
        height INTEGER,
        bytes INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE image_fetches (
        url TEXT PRIMARY KEY,
        run_id INTEGER REFERENCES runs(id),
        final_url TEXT,
        status INTEGER,
        outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'retry', 'noai', 'robots', 'not_image')),
        error TEXT,
        image TEXT REFERENCES images(sha256),
        attempts INTEGER NOT NULL DEFAULT 1,
        elapsed_ms INTEGER,
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE image_checks (
        image TEXT PRIMARY KEY REFERENCES images(sha256),
        frames INTEGER,
        phash BLOB,
        error TEXT
    );
    CREATE TABLE image_verdicts (
        pair INTEGER PRIMARY KEY REFERENCES image_text(id),
        run_id INTEGER REFERENCES runs(id),
        keep INTEGER NOT NULL CHECK (keep IN (0, 1)),
        reason TEXT,
        value REAL,
        duplicate_of INTEGER
    );",
];

/// What the header of an opened file says about it.
pub(crate) enum Found {
    /// A new, empty database.
    Empty,
    /// Ours, at this version.
    Ours(i64),
    /// Someone else's SQLite file.
    Foreign(String),
}

/// Reads the header fields and the table list in one snapshot, and decides whose file this is.
pub(crate) fn inspect_snapshot(conn: &mut Connection) -> rusqlite::Result<Found> {
    let tx = conn.transaction()?;
    let found = inspect(&tx)?;
    tx.commit()?;
    Ok(found)
}

/// Reads the header fields and decides whose file this is; call it inside a transaction.
fn inspect(conn: &Connection) -> rusqlite::Result<Found> {
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if app == APPLICATION_ID {
        return Ok(Found::Ours(version));
    }
    if app != 0 {
        return Ok(Found::Foreign(format!(
            "its application id is {app:#x}, not zhcorpus's {APPLICATION_ID:#x}"
        )));
    }
    let table: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match table {
        None => Found::Empty,
        Some(t) => Found::Foreign(format!(
            "it has tables (such as `{t}`) but no zhcorpus mark"
        )),
    })
}

/// Brings the schema up to `target` in one `BEGIN IMMEDIATE` transaction. The header is read
/// again inside it, so that two processes opening a new file at once migrate it once: the
/// second waits for the first's write lock, then finds nothing left to do.
pub(crate) fn migrate(conn: &mut Connection, target: i64) -> rusqlite::Result<Found> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found = inspect(&tx)?;
    let from = match found {
        Found::Empty => 0,
        Found::Ours(v) if v < target => v,
        other => return Ok(other),
    };
    for version in from..target {
        tx.execute_batch(MIGRATIONS[version as usize])?;
        tracing::info!(version = version + 1, "applied schema migration");
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(Found::Ours(target))
}
