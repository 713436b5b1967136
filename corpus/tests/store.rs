//! The store: round trips, streaming, migrations from old files, files that are not ours.

use corpus::schema::SCHEMA_VERSION;
use corpus::{Document, Error, Selection, Store};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("corpus.db")).unwrap()
}

/// The message of an error with the temporary folder's path replaced by `DIR`.
fn message(err: Error, dir: &tempfile::TempDir) -> String {
    err.to_string()
        .replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn documents_round_trip_in_order_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    // more than one page of the streaming reader, in several transactions
    let docs = tests::generate_documents(2_345, 3);
    for chunk in docs.chunks(1000) {
        assert_eq!(
            store.insert_documents(None, chunk).unwrap(),
            chunk.len() as u64
        );
    }
    let back: Vec<_> = store
        .documents(Selection::All)
        .map(|d| d.unwrap().doc)
        .collect();
    assert_eq!(back, docs);
    assert_eq!(store.document_count().unwrap(), 2_345);
}

#[test]
fn existing_ids_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store
        .insert_documents(None, &[Document::new("a", "原文")])
        .unwrap();
    let n = store
        .insert_documents(
            None,
            &[Document::new("a", "改过"), Document::new("b", "新的")],
        )
        .unwrap();
    assert_eq!(n, 1);
    let texts: Vec<_> = store
        .documents(Selection::All)
        .map(|d| d.unwrap().doc.text)
        .collect();
    assert_eq!(texts, ["原文", "新的"]);
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let docs = tests::generate_documents(10, 4);
    open(&dir).insert_documents(None, &docs).unwrap();
    let store = open(&dir);
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.document_count().unwrap(), 10);
}

#[test]
fn old_files_are_migrated_with_their_data() {
    for old in 1..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.db");
        let docs = tests::generate_documents(50, 5);
        {
            let store = Store::open_with_schema(&path, old).unwrap();
            assert_eq!(store.schema_version().unwrap(), old);
            // the documents as that version wrote them: with the columns of schema 1, which
            // every later version has
            let conn = rusqlite::Connection::open(&path).unwrap();
            for d in &docs {
                let extra = serde_json::Value::Object(d.extra.clone()).to_string();
                conn.execute(
                    "INSERT INTO documents (id, url, source, title, text, lang, created, extra,
                        content_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    rusqlite::params![
                        d.id,
                        d.url,
                        d.source,
                        d.title,
                        d.text,
                        d.lang,
                        d.created,
                        extra,
                        d.content_hash()
                    ],
                )
                .unwrap();
            }
            drop(conn);
            let run = store
                .begin_run("import", &serde_json::json!({"old": old}))
                .unwrap();
            store
                .finish_run(run, corpus::RunStatus::Done, &serde_json::json!({}))
                .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let back: Vec<_> = store
            .documents(Selection::All)
            .map(|d| d.unwrap().doc)
            .collect();
        assert_eq!(back, docs, "from version {old}");
        // the tables of the later migrations work
        let seq = store.document_seq("doc-0000000").unwrap().unwrap();
        let run = store.begin_run("dedup", &serde_json::json!({})).unwrap();
        store
            .record_dedup_verdicts(
                run,
                &[corpus::DedupVerdict {
                    doc: seq,
                    keep: false,
                    kind: corpus::DedupKind::Exact,
                    cluster: None,
                    similarity: None,
                    span: None,
                    text: None,
                }],
            )
            .unwrap();
        // dedup has run: the document it removed and the 49 it has not judged are not kept
        assert_eq!(store.documents(Selection::Kept).count(), 0);
        assert_eq!(store.unjudged().unwrap().dedup, 49);
        assert_eq!(store.stats().unwrap().runs.len(), 2);
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.db");
    drop(open(&dir));
    let conn = raw_sql(&path);
    conn(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1));
    let err = Store::open(&path).err().unwrap();
    assert!(err.is_bad_input());
    assert_eq!(
        message(err, &dir),
        format!(
            "DIR/corpus.db has schema version {}, newer than the {SCHEMA_VERSION} this zhcorpus \
             knows; upgrade zhcorpus to open it",
            SCHEMA_VERSION + 1
        )
    );
}

#[test]
fn files_that_are_not_ours_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "这不是数据库，只是一段文字。".repeat(100)).unwrap();
    let before = std::fs::read(&text).unwrap();
    let err = Store::open(&text).err().unwrap();
    assert!(err.is_bad_input());
    assert_eq!(
        message(err, &dir),
        "DIR/notes.db is not a zhcorpus database: it is not an SQLite file"
    );
    assert_eq!(std::fs::read(&text).unwrap(), before);

    let other = dir.path().join("other.db");
    raw_sql(&other)("CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    let err = Store::open(&other).err().unwrap();
    assert_eq!(
        message(err, &dir),
        "DIR/other.db is not a zhcorpus database: it has tables (such as `t`) but no zhcorpus mark"
    );

    let app = dir.path().join("app.db");
    raw_sql(&app)("PRAGMA application_id = 7;");
    let err = Store::open(&app).err().unwrap();
    assert_eq!(
        message(err, &dir),
        "DIR/app.db is not a zhcorpus database: its application id is 0x7, not zhcorpus's 0x7a686370"
    );

    let err = Store::open_existing(dir.path().join("missing.db"))
        .err()
        .unwrap();
    assert_eq!(
        message(err, &dir),
        "database DIR/missing.db does not exist (create one with `zhcorpus import --db DIR/missing.db`)"
    );
    assert!(!dir.path().join("missing.db").exists());
}

/// Runs SQL on a file directly, without the store: to make files the store must refuse.
fn raw_sql(path: &std::path::Path) -> impl Fn(&str) + '_ {
    move |sql: &str| {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(sql).unwrap();
    }
}

/// Regression: a second process opening the file while the first was migrating it ran a
/// migration twice ("table frontier already exists").
#[test]
fn concurrent_opens_of_a_new_file_migrate_it_once() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.db");
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    barrier.wait();
                    let store = Store::open(&path).unwrap();
                    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
                });
            }
        });
    }
}
