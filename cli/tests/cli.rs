//! The `zhcorpus` command as a user runs it: import, export, stats, demo, and bad input.

mod common;

use std::fs;

use common::{count, ok, run, stderr, stdout, write_jsonl};

#[test]
fn import_then_export_gives_identical_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let docs = tests::generate_documents(12_000, 11);
    write_jsonl(&dir.path().join("docs.jsonl"), &docs);
    let out = ok(run(dir.path(), &["import", "--input", "docs.jsonl"]));
    assert!(
        out.starts_with("imported 12000 new documents into corpus.db"),
        "{out}"
    );
    ok(run(dir.path(), &["export", "--output", "back.jsonl"]));
    assert_eq!(
        fs::read(dir.path().join("docs.jsonl")).unwrap(),
        fs::read(dir.path().join("back.jsonl")).unwrap()
    );
    // to standard output too
    let exported = ok(run(dir.path(), &["export"]));
    assert_eq!(
        exported.as_bytes(),
        fs::read(dir.path().join("docs.jsonl")).unwrap()
    );
}

#[test]
fn zstd_input_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let docs = tests::generate_documents(3_000, 12);
    write_jsonl(&dir.path().join("a.jsonl.zst"), &docs[..1_000]);
    write_jsonl(&dir.path().join("b.jsonl"), &docs[1_000..]);
    ok(run(
        dir.path(),
        &[
            "import",
            "--input",
            "a.jsonl.zst",
            "b.jsonl",
            "--db",
            "z.db",
        ],
    ));
    ok(run(
        dir.path(),
        &["export", "--db", "z.db", "-o", "all.jsonl.zst"],
    ));
    let compressed = fs::read(dir.path().join("all.jsonl.zst")).unwrap();
    assert_eq!(&compressed[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd frame");
    let back: Vec<_> = corpus::JsonlReader::open(&dir.path().join("all.jsonl.zst"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back, docs);
}

#[test]
fn foreign_field_order_and_types_survive() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"text":"第一篇","meta":{"score":0.5,"tags":["新闻"]},"id":"x1","url":"http://a.cn/1"}"#,
        r#"{"id":7,"source":"forum","text":"第二篇","created":"2024-05-01","n":null}"#,
        r#"{"text":"没有编号的文档"}"#,
    ];
    fs::write(dir.path().join("in.jsonl"), lines.join("\n")).unwrap();
    ok(run(dir.path(), &["import", "--input", "in.jsonl"]));
    let out = ok(run(dir.path(), &["export"]));
    let got: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut want: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    want[1]["id"] = "7".into();
    want[2]["id"] = corpus::text_hash_id("没有编号的文档").into();
    assert_eq!(got, want);
}

#[test]
fn reimport_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(
        &dir.path().join("d.jsonl"),
        &tests::generate_documents(500, 13),
    );
    ok(run(dir.path(), &["import", "-i", "d.jsonl"]));
    let out = ok(run(dir.path(), &["import", "-i", "d.jsonl"]));
    assert!(out.contains("imported 0 new documents"), "{out}");
    assert!(out.contains("500 already stored"), "{out}");
    assert_eq!(count(&dir.path().join("corpus.db")), 500);
}

#[test]
fn corrupt_line_is_named_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let docs = tests::generate_documents(20, 14);
    write_jsonl(&dir.path().join("good.jsonl"), &docs[..10]);
    ok(run(dir.path(), &["import", "-i", "good.jsonl"]));

    let mut text: String = docs[10..].iter().map(|d| d.to_json() + "\n").collect();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(4, r#"{"id":"broken","text":"没有结尾"#);
    text = lines.join("\n");
    fs::write(dir.path().join("bad.jsonl"), &text).unwrap();
    let o = run(dir.path(), &["import", "-i", "bad.jsonl"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    insta::assert_snapshot!(stderr(&o), @r"
    error: bad.jsonl:5: invalid JSON: EOF while parsing a string at line 1 column 35
    ");
    // what was stored stays; the lines before the bad one were stored too
    let db = dir.path().join("corpus.db");
    assert_eq!(count(&db), 14);
    // fixing the line and importing again completes the file
    fs::write(
        dir.path().join("bad.jsonl"),
        text.replace("没有结尾\n", "没有结尾\"}\n"),
    )
    .unwrap();
    ok(run(dir.path(), &["import", "-i", "bad.jsonl"]));
    assert_eq!(count(&db), 21);
}

#[test]
fn skip_invalid_counts_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("in.jsonl"),
        "{\"id\":\"a\",\"text\":\"好\"}\nnot json\n{\"id\":\"b\"}\n{\"id\":\"c\",\"text\":\"的\"}\n",
    )
    .unwrap();
    let out = ok(run(
        dir.path(),
        &["import", "-i", "in.jsonl", "--skip-invalid"],
    ));
    assert!(out.contains("imported 2 new documents"), "{out}");
    assert!(out.contains("2 invalid lines skipped"), "{out}");
    assert!(out.contains("in.jsonl:2: invalid JSON"), "{out}");
    assert!(out.contains("in.jsonl:3: missing field `text`"), "{out}");
}

#[test]
fn bad_input_exits_2_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["import", "-i", "missing.jsonl"],
            "error: cannot read missing.jsonl: No such file or directory (os error 2)\n",
        ),
        (
            &["stats", "--db", "nothing.db"],
            "error: database nothing.db does not exist (create one with `zhcorpus import --db nothing.db`)\n",
        ),
        (
            &["export", "--db", "notes.txt"],
            "error: notes.txt is not a zhcorpus database: it is not an SQLite file\n",
        ),
        (
            &["import", "--db", "notes.txt", "-i", "missing.jsonl"],
            "error: notes.txt is not a zhcorpus database: it is not an SQLite file\n",
        ),
    ];
    fs::write(
        dir.path().join("notes.txt"),
        "随便写的笔记，不是数据库。".repeat(200),
    )
    .unwrap();
    for (args, expected) in cases {
        let o = run(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), expected, "{args:?}");
        assert!(stdout(&o).is_empty());
    }
    assert!(!dir.path().join("nothing.db").exists());
    // usage errors are 2 as well
    assert_eq!(run(dir.path(), &["import"]).status.code(), Some(2));
}

#[test]
fn stats_counts_sources_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(
        &dir.path().join("d.jsonl"),
        &tests::generate_documents(30, 15),
    );
    ok(run(dir.path(), &["import", "-i", "d.jsonl"]));
    let json: serde_json::Value =
        serde_json::from_str(&ok(run(dir.path(), &["stats", "--json"]))).unwrap();
    assert_eq!(json["documents"], 30);
    assert_eq!(json["kept"], 30);
    assert_eq!(json["sources"].as_array().unwrap().len(), 3);
    assert_eq!(json["sources"][0]["documents"], 10);
    assert_eq!(json["runs"][0]["stage"], "import");
    assert_eq!(json["runs"][0]["status"], "done");
    assert_eq!(json["runs"][0]["counts"]["inserted"], 30);
    assert_eq!(json["clean"]["judged"], 0);
    let text = ok(run(dir.path(), &["stats"]));
    assert!(text.contains("documents   30 (30 kept)"), "{text}");
    assert!(text.contains("clean       not run"), "{text}");
}

#[test]
fn demo_runs_on_a_fresh_folder_and_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(run(dir.path(), &["demo", "--output", "d"]));
    assert!(out.contains("17 documents read, 17 new"), "{out}");
    // the farm: 4 sites of 12 articles, 3 galleries, a home page and 2 list pages each;
    // robots.txt disallows two linked URLs per site
    assert!(
        out.contains("74 pages fetched") && out.contains("60 documents extracted"),
        "{out}"
    );
    // the galleries' image-text pairs: every case but the 4 kept per gallery and the
    // articles' photos removed with its reason (cli/tests/images.rs checks each one)
    assert!(
        out.contains("276 pairs judged, 64 kept, 64 written in 1 shards"),
        "{out}"
    );
    assert!(dir.path().join("d/images/000000.tar").exists());
    assert!(out.contains("8 URLs disallowed by robots.txt"), "{out}");
    // the cleaner rejects the sample's navigation residue, advert, English page and the
    // reviews shorter than a web page's 60 characters
    assert!(
        out.contains("77 documents, 71 kept, 6 rejected (han_ratio 1, min_chars 5)"),
        "{out}"
    );
    // the sample holds one repost of a news article; site 2 reposts 4 of site 0's articles,
    // and its 3 galleries are built from them; the galleries of a site share their boilerplate
    assert!(
        out.contains("71 documents, 1 exact and 9 near duplicates removed"),
        "{out}"
    );
    assert!(out.contains("documents   77 (61 kept)"), "{out}");
    // a tokenizer on the kept documents, and their shards
    assert!(out.contains("1024 ids (767 merges)"), "{out}");
    let manifest = corpus::shards::Manifest::read(&dir.path().join("d/shards")).unwrap();
    assert_eq!(manifest.documents.train + manifest.documents.val, 61);
    assert!(manifest.documents.val > 0);
    let tok = dir.path().join("d/shards/tokenizer.json");
    assert_eq!(
        fs::read(&tok).unwrap(),
        fs::read(dir.path().join("d/tokenizer/tokenizer.json")).unwrap()
    );
    // a tiny GPT pretrained on the shards: its loss falls from ln(1024), and it samples
    let line = out
        .lines()
        .find(|l| l.contains("200 steps, loss"))
        .unwrap_or_else(|| panic!("no training line in {out}"));
    let losses: Vec<f64> = line
        .split("loss ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .split(" -> ")
        .map(|x| x.parse().unwrap())
        .collect();
    assert!((losses[0] - 1024f64.ln()).abs() < 0.3, "{line}");
    assert!(losses[1] < losses[0] - 0.5, "{line}");
    assert!(out.contains("a sample: 北京"), "{out}");
    assert!(dir.path().join("d/run/loss.png").exists());
    let metrics = fs::read_to_string(dir.path().join("d/run/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 200);
    let model = fs::read(dir.path().join("d/run/checkpoint/model.safetensors")).unwrap();
    // the same command again: every stage is complete, nothing is redone
    let out = ok(run(dir.path(), &["demo", "--output", "d"]));
    assert_eq!(out.matches("skipped: complete").count(), 8, "{out}");
    assert!(out.contains("documents   77 (61 kept)"), "{out}");
    assert_eq!(
        fs::read(dir.path().join("d/run/checkpoint/model.safetensors")).unwrap(),
        model
    );
    let kept = fs::read_to_string(dir.path().join("d/kept.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), 61);
    assert!(!kept.contains("\"news-0004\""));
}

#[test]
fn every_command_explains_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        "import",
        "export",
        "stats",
        "extract",
        "dedup",
        "crawl",
        "clean",
        "tokenizer train",
        "tokenizer encode",
        "images fetch",
        "images filter",
        "images export",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let help = ok(run(dir.path(), &args));
        // clap wraps to the terminal width
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(help.contains("--db <PATH>"), "{cmd}: {help}");
        assert!(help.contains("[default: corpus.db]"), "{cmd}: {help}");
        assert!(help.contains("--quiet"), "{cmd}: {help}");
    }
    let help = ok(run(dir.path(), &["import", "--help"]));
    assert!(help.contains("[default: 1000]"), "{help}");
    // --db only where a database is used
    for cmd in [
        "demo",
        "train",
        "sample",
        "hf-export",
        "quality train",
        "pipeline",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let help = ok(run(dir.path(), &args));
        assert!(!help.contains("--db"), "{cmd}: {help}");
        assert!(help.contains("--quiet"), "{cmd}: {help}");
    }
}

/// One thread budget for the whole process: the flag, else `ZHCORPUS_THREADS`, else
/// `RAYON_NUM_THREADS`; the log says the size read back from the pool, a bad value exits 2
/// naming it, and the work does not depend on it.
#[test]
fn threads_come_from_the_flag_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<corpus::Document> = (0..40)
        .map(|i| corpus::Document {
            id: format!("d{i}"),
            text: format!("第{i}篇文章。北京时间昨天晚上，国家统计局发布了最新一期的经济数据，显示前三个季度国内生产总值同比增长。分析人士认为，消费和投资的稳定恢复是经济增长的主要动力。"),
            source: Some("example.cn".into()),
            ..corpus::Document::default()
        })
        .collect();
    write_jsonl(&dir.path().join("in.jsonl"), &docs);
    let clean = |threads: &str, out: &str| {
        let o = run(
            dir.path(),
            &[
                "--threads",
                threads,
                "-v",
                "clean",
                "--input",
                "in.jsonl",
                "--output",
                out,
            ],
        );
        let err = stderr(&o);
        ok(o);
        err
    };
    assert!(clean("3", "three.jsonl").contains("3 threads (from --threads)"));
    assert!(clean("1", "one.jsonl").contains("1 thread (from --threads)"));
    assert_eq!(
        fs::read(dir.path().join("three.jsonl")).unwrap(),
        fs::read(dir.path().join("one.jsonl")).unwrap()
    );
    let o = common::zhcorpus()
        .current_dir(dir.path())
        .env("ZHCORPUS_THREADS", "2")
        .env("RAYON_NUM_THREADS", "5")
        .args(["-v", "stats", "--db", "none.db"])
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("2 threads (from ZHCORPUS_THREADS)"),
        "{}",
        stderr(&o)
    );
    let o = common::zhcorpus()
        .current_dir(dir.path())
        .env("ZHCORPUS_THREADS", "many")
        .args(["stats", "--db", "none.db"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("ZHCORPUS_THREADS"), "{}", stderr(&o));
    let o = run(dir.path(), &["--threads", "0", "stats"]);
    assert_eq!(o.status.code(), Some(2));
}
