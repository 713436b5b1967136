//! End-to-end: documents in, verdicts recorded by stages, the kept set out.

use corpus::{
    CleanVerdict, DedupKind, DedupVerdict, JsonlReader, JsonlWriter, NoProgress, Selection, Store,
    import::ImportConfig,
};

#[test]
fn import_verdicts_export_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl.zst");
    let docs = tests::generate_documents(300, 1);
    let mut w = JsonlWriter::create(&input).unwrap();
    for d in &docs {
        w.write(d).unwrap();
    }
    w.finish().unwrap();

    let mut store = Store::open(dir.path().join("corpus.db")).unwrap();
    let report =
        corpus::import::run(&mut store, &[input], &ImportConfig::default(), &NoProgress).unwrap();
    assert_eq!(report.inserted, 300);

    // The cleaner rejects every 10th document, dedup removes every 7th as a near duplicate of
    // the document before it. Verdicts are keyed by seq, so look the seqs up.
    let seqs: Vec<i64> = docs
        .iter()
        .map(|d| store.document_seq(&d.id).unwrap().unwrap())
        .collect();
    let seq = |i: usize| seqs[i];
    let run = store.begin_run("clean", &serde_json::json!({})).unwrap();
    let clean: Vec<_> = (0..300)
        .map(|i| CleanVerdict {
            doc: seq(i),
            keep: i % 10 != 0,
            rule: (i % 10 == 0).then(|| "min_length".to_string()),
            value: Some(i as f64),
            score: None,
            details: None,
            text: None,
        })
        .collect();
    store.record_clean_verdicts(run, &clean).unwrap();
    let run = store.begin_run("dedup", &serde_json::json!({})).unwrap();
    let dedup: Vec<_> = (1..300)
        .map(|i| DedupVerdict {
            doc: seq(i),
            keep: i % 7 != 0,
            kind: if i % 7 == 0 {
                DedupKind::Near
            } else {
                DedupKind::Unique
            },
            cluster: (i % 7 == 0).then(|| seq(i - 1)),
            similarity: None,
            span: None,
            text: None,
        })
        .collect();
    store.record_dedup_verdicts(run, &dedup).unwrap();

    let expected: Vec<_> = (0..300)
        .filter(|i| i % 10 != 0 && (i % 7 != 0 || *i == 0))
        .map(|i| docs[i].clone())
        .collect();
    let out = dir.path().join("kept.jsonl");
    let mut w = JsonlWriter::create(&out).unwrap();
    let n = corpus::export::run(&store, Selection::Kept, &mut w, &NoProgress).unwrap();
    w.finish().unwrap();
    assert_eq!(n as usize, expected.len());
    let back: Vec<_> = JsonlReader::open(&out)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back, expected);

    let stats = store.stats().unwrap();
    assert_eq!(stats.kept as usize, expected.len());
    assert_eq!(stats.clean.removed[0].name, "min_length");
    assert_eq!(stats.clean.removed[0].count, 30);
    assert_eq!(stats.dedup.removed[0].name, "near");
    // documents are never rewritten by a stage
    let all: Vec<_> = store
        .documents(Selection::All)
        .map(|d| d.unwrap().doc)
        .collect();
    assert_eq!(all, docs);
}
