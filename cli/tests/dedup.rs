//! `zhcorpus dedup` file to file, and its answers to bad input.

mod common;

use common::{ok, run, stderr, write_jsonl};
use corpus::Document;

#[test]
fn file_to_file_writes_kept_documents_and_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = tests::Rng::new(3);
    let a = tests::generate_text(&mut rng, 200);
    let b = tests::generate_text(&mut rng, 200);
    let docs = [
        Document::new("a", a.clone()),
        Document::new("b", b.clone()),
        // a re-spaced copy of a: exact after normalisation
        Document::new("a-copy", format!(" {} ", a.replace('，', ", "))),
        // b with one character changed at the end: near
        Document::new("b-edit", format!("{}变", &b[..b.len() - 3])),
    ];
    write_jsonl(&dir.path().join("in.jsonl"), &docs);
    let out = ok(run(
        dir.path(),
        &[
            "dedup",
            "-i",
            "in.jsonl",
            "-o",
            "kept.jsonl",
            "--clusters",
            "clusters.jsonl",
        ],
    ));
    assert!(out.contains("deduplicated 4 documents"), "{out}");
    assert!(
        out.contains("2 kept, 1 exact and 1 near duplicates removed, in 2 clusters"),
        "{out}"
    );
    let kept = std::fs::read_to_string(dir.path().join("kept.jsonl")).unwrap();
    assert_eq!(
        kept,
        format!("{}\n{}\n", docs[0].to_json(), docs[1].to_json())
    );
    let clusters = std::fs::read_to_string(dir.path().join("clusters.jsonl")).unwrap();
    assert_eq!(
        clusters,
        "{\"kept\":\"a\",\"removed\":[{\"id\":\"a-copy\",\"kind\":\"exact\"}]}\n\
         {\"kept\":\"b\",\"removed\":[{\"id\":\"b-edit\",\"kind\":\"near\"}]}\n"
    );
}

#[test]
fn word_shingles_ignore_punctuation_between_words() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = tests::Rng::new(5);
    let words = [
        "经济", "发展", "城市", "居民", "政府", "市场", "企业", "技术", "学校", "医院",
    ];
    let text: Vec<&str> = (0..120).map(|_| words[rng.below(words.len())]).collect();
    let docs = [
        Document::new("a", text.join("，")),
        Document::new("a-relisted", text.join("、")),
    ];
    write_jsonl(&dir.path().join("in.jsonl"), &docs);
    let dedup = |unit: &str| {
        ok(run(
            dir.path(),
            &[
                "dedup",
                "-i",
                "in.jsonl",
                "-o",
                "kept.jsonl",
                "--shingle",
                unit,
            ],
        ))
    };
    assert!(dedup("words").contains("1 near duplicates removed"));
    assert!(dedup("chars").contains("0 near duplicates removed"));
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(&dir.path().join("in.jsonl"), &[Document::new("a", "文字")]);
    let cases: [(&[&str], &str); 4] = [
        (
            &["dedup", "-i", "-", "-o", "k.jsonl"],
            "error: cannot read -: dedup reads its inputs twice; standard input cannot be\n",
        ),
        (
            &[
                "dedup",
                "-i",
                "in.jsonl",
                "-o",
                "k.jsonl",
                "--threshold",
                "1.5",
            ],
            "error: invalid dedup setting threshold: must be between 0 and 1 (exclusive), not 1.5\n",
        ),
        (
            &["dedup", "-i", "missing.jsonl", "-o", "k.jsonl"],
            "error: cannot read missing.jsonl: No such file or directory (os error 2)\n",
        ),
        (
            &["dedup", "--db", "none.db"],
            "error: database none.db does not exist (create one with `zhcorpus import --db none.db`)\n",
        ),
    ];
    for (args, expected) in cases {
        let o = run(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).ends_with(expected), "{args:?}: {}", stderr(&o));
    }
    // flags that only make sense together
    for args in [
        &["dedup", "--bands", "4"][..],
        &["dedup", "-i", "in.jsonl"][..],
        &["dedup", "--clusters", "c.jsonl"][..],
    ] {
        assert_eq!(run(dir.path(), args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn decontaminate_against_an_evaluation_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = tests::Rng::new(8);
    let texts: Vec<String> = (0..5)
        .map(|_| tests::generate_text(&mut rng, 200))
        .collect();
    let docs: Vec<Document> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Document::new(format!("d{i}"), t.clone()))
        .collect();
    write_jsonl(&dir.path().join("in.jsonl"), &docs);
    let quoted: String = texts[2].chars().skip(50).take(30).collect();
    write_jsonl(
        &dir.path().join("eval.jsonl"),
        &[Document::new("q1", format!("问题：{quoted}"))],
    );
    let out = ok(run(
        dir.path(),
        &[
            "dedup",
            "-i",
            "in.jsonl",
            "-o",
            "kept.jsonl",
            "--clusters",
            "clusters.jsonl",
            "--decontaminate",
            "eval.jsonl",
        ],
    ));
    assert!(out.contains("1 documents removed as contaminated"), "{out}");
    assert!(out.contains("near-duplicate candidate pairs: 0"), "{out}");
    let kept = std::fs::read_to_string(dir.path().join("kept.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), 4);
    assert!(!kept.contains("\"d2\""));
    let clusters = std::fs::read_to_string(dir.path().join("clusters.jsonl")).unwrap();
    assert!(
        clusters.contains("{\"contaminated\":\"d2\",\"span\":"),
        "{clusters}"
    );
    let out = run(
        dir.path(),
        &[
            "dedup",
            "-i",
            "in.jsonl",
            "-o",
            "k.jsonl",
            "--decontaminate",
            "missing.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.jsonl"));
}
