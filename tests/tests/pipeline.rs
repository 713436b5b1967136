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

/// The whole pipeline through the library: every stage runs once, then every stage is found
/// complete; a later `from` reruns that stage and the ones after it.
#[test]
fn the_pipeline_library_call_runs_then_skips_complete_stages() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("docs.jsonl");
    let mut rng = tests::Rng::new(3);
    let mut w = JsonlWriter::create(&input).unwrap();
    for i in 0..200 {
        let text = tests::generate_text(&mut rng, 180);
        w.write(&corpus::Document::new(format!("d{i}"), text))
            .unwrap();
    }
    w.finish().unwrap();
    let mut config = pipeline::Config {
        inputs: vec![input],
        ..pipeline::Config::default()
    };
    config.tokenizer.vocab_size = 400;
    config.train.max_steps = 3;
    config.train.optim.warmup_steps = 1;
    let out = dir.path().join("out");
    let outcomes = |span| -> Vec<String> {
        pipeline::run(&config, &out, span, &NoProgress)
            .unwrap()
            .stages
            .into_iter()
            .map(|s| format!("{} {}", s.stage.name(), s.outcome))
            .collect()
    };
    let first = outcomes(pipeline::Span::default());
    assert_eq!(
        first,
        [
            "import ran",
            "crawl skipped: nothing to do",
            "images skipped: nothing to do",
            "clean ran",
            "dedup ran",
            "tokenizer ran",
            "encode ran",
            "train ran"
        ]
    );
    let second = outcomes(pipeline::Span::default());
    assert_eq!(
        second
            .iter()
            .filter(|s| s.ends_with("skipped: complete"))
            .count(),
        6
    );
    let third = outcomes(pipeline::Span {
        from: Some(pipeline::Stage::Encode),
        until: None,
    });
    assert_eq!(
        &third[5..],
        ["tokenizer skipped: complete", "encode ran", "train ran"]
    );
    let store = Store::open_existing(out.join("corpus.db")).unwrap();
    let kept = store.documents(Selection::Kept).count();
    let manifest = corpus::shards::Manifest::read(&out.join("shards")).unwrap();
    assert_eq!(
        manifest.documents.train + manifest.documents.val,
        kept as u64
    );
    assert_eq!(train::checkpoint_step(&out.join("run")), Some(3));
}
