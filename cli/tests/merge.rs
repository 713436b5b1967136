//! `zhcorpus merge`: stores combined by document id and URL, the output written whole or not
//! at all, bad sources and outputs refused before anything is written.

mod common;

use common::{count, ok, run, stderr, write_jsonl};
use corpus::Document;

fn docs(ids: std::ops::Range<usize>) -> Vec<Document> {
    ids.map(|i| {
        Document::new(
            format!("doc-{i}"),
            format!("第{i}篇文章讲的是城市里的公园和河流，市民每天早上都去散步锻炼身体。"),
        )
    })
    .collect()
}

#[test]
fn stores_merge_by_document_id_and_the_output_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_jsonl(&d.join("a.jsonl"), &docs(0..30));
    write_jsonl(&d.join("b.jsonl"), &docs(20..50));
    ok(run(d, &["import", "--db", "a.db", "-i", "a.jsonl"]));
    ok(run(d, &["import", "--db", "b.db", "-i", "b.jsonl"]));
    ok(run(d, &["clean", "--db", "b.db"]));
    let out = ok(run(d, &["merge", "-o", "m.db", "a.db", "b.db"]));
    assert_eq!(count(&d.join("m.db")), 50, "{out}");
    assert!(out.contains("10 documents"), "{out}");
    // b's verdicts are not carried: the merged corpus is judged again
    assert!(out.contains("30 verdicts not carried"), "{out}");
    assert!(!d.join("m.db.partial").exists());
    // each source's runs, marked with where they came from
    let conn = rusqlite::Connection::open(d.join("m.db")).unwrap();
    let from: Vec<String> = conn
        .prepare(
            "SELECT json_extract(config, '$.merged_from') FROM runs
             WHERE stage = 'import' ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(from, ["a.db", "b.db"]);
    let linked: i64 = conn
        .query_row(
            "SELECT count(*) FROM documents WHERE run_id IN (SELECT id FROM runs WHERE stage = 'import')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(linked, 50);

    // a merged store is not merged into again, a source that is not a store is named
    let again = run(d, &["merge", "-o", "m.db", "a.db"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("m.db"), "{}", stderr(&again));
    std::fs::write(d.join("junk.db"), b"not a database at all, just some bytes").unwrap();
    let bad = run(d, &["merge", "-o", "n.db", "a.db", "junk.db"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("junk.db"), "{}", stderr(&bad));
    let missing = run(d, &["merge", "-o", "n.db", "a.db", "nope.db"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(!d.join("n.db").exists() && !d.join("n.db.partial").exists());
    let itself = run(d, &["merge", "-o", "a.db", "a.db"]);
    assert_eq!(itself.status.code(), Some(2), "{}", stderr(&itself));
}
