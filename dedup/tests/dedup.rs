//! Dedup on generated documents with planted duplicates at known edit rates.

use corpus::{DedupKind, Document, JsonlReader, NoProgress, Selection, Store};
use dedup::minhash::{self, MinHasher};
use dedup::{Config, Dedup, FileOutputs, KeepPolicy};
use tests::{Rng, generate_text};

/// Writes `docs` to `dir/in.jsonl` and returns its path.
fn write_input(dir: &std::path::Path, docs: &[Document]) -> std::path::PathBuf {
    let input = dir.join("in.jsonl");
    let mut w = corpus::JsonlWriter::create(&input).unwrap();
    for d in docs {
        w.write(d).unwrap();
    }
    w.finish().unwrap();
    input
}

/// `text` with `rate` of its characters replaced by other Han characters.
fn edit(rng: &mut Rng, text: &str, rate: f64) -> String {
    text.chars()
        .map(|c| {
            if (rng.below(10_000) as f64) < rate * 10_000.0 {
                char::from_u32(0x4e00 + rng.below(2000) as u32).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// 200 originals of about 300 characters; then, for each of the first 60, a copy that differs
/// only in spacing and full-width letters, and for the next 60 a copy with 1% of characters
/// changed; for the next 40 a copy with 30% changed (not a duplicate).
struct Planted {
    texts: Vec<String>,
    /// (original, copy, is a duplicate)
    pairs: Vec<(usize, usize, bool)>,
}

fn planted() -> Planted {
    let mut rng = Rng::new(7);
    let mut texts: Vec<String> = (0..200).map(|_| generate_text(&mut rng, 300)).collect();
    let mut pairs = Vec::new();
    for i in 0..160 {
        let copy = match i {
            0..60 => format!("  {}\n", texts[i].replace('，', ", ").replace('。', "。 ")),
            60..120 => edit(&mut rng, &texts[i], 0.01),
            _ => edit(&mut rng, &texts[i], 0.30),
        };
        pairs.push((i, texts.len(), i < 120));
        texts.push(copy);
    }
    Planted { texts, pairs }
}

#[test]
fn planted_duplicates_are_found_and_unrelated_documents_kept() {
    let p = planted();
    let dedup = Dedup::new(&Config::default()).unwrap();
    let sketches = dedup.sketch_all(&p.texts);
    let outcomes = dedup.resolve(&sketches, &[]);
    let mut found_exact = 0;
    let mut found_edited = 0;
    for &(orig, copy, dup) in &p.pairs {
        let o = outcomes[copy];
        let found = !o.keep && o.cluster == Some(orig);
        if orig < 60 {
            found_exact += usize::from(found && o.kind == DedupKind::Exact);
        } else if dup {
            // a 1% edit may change no character at all: then it is an exact copy
            found_edited += usize::from(found);
        } else {
            assert!(
                o.keep,
                "a copy with 30% of characters changed is not a duplicate"
            );
        }
        assert!(outcomes[orig].keep, "originals come first and are kept");
    }
    // spacing and width differences are exact duplicates after normalisation: all of them
    assert_eq!(found_exact, 60);
    // 1% edits: Jaccard of 5-grams about 0.9, where 9 x 13 bands catch a pair with
    // probability 0.93; allow for the tail
    assert!(
        found_edited >= 52,
        "found {found_edited} of 60 near duplicates"
    );
    // no original is removed: unrelated generated texts are never candidates
    assert_eq!(outcomes[..200].iter().filter(|o| !o.keep).count(), 0);
}

#[test]
fn clusters_are_transitive() {
    // a ~ b and b ~ c, while a and c are less alike: all three end in one cluster
    let mut rng = Rng::new(9);
    let a = generate_text(&mut rng, 400);
    let b = edit(&mut rng, &a, 0.003);
    let c = edit(&mut rng, &b, 0.003);
    let other = generate_text(&mut rng, 400);
    let dedup = Dedup::new(&Config::default()).unwrap();
    let s = dedup.sketch_all(&[&a, &b, &c, &other]);
    let o = dedup.resolve(&s, &[]);
    assert_eq!(o[1].cluster, Some(0));
    assert_eq!(o[2].cluster, Some(0));
    assert!(o[0].keep && !o[1].keep && !o[2].keep && o[3].keep);
    assert_eq!(o[3].cluster, None);
}

#[test]
fn keep_policies_choose_the_member() {
    let base = "这是一段用来测试保留策略的文字，内容重复出现在几个文档里面。";
    let texts = [base.to_string(), format!("{base}多一点"), base.to_string()];
    let run = |keep| {
        let dedup = Dedup::new(&Config {
            keep,
            ..Config::default()
        })
        .unwrap();
        let s = dedup.sketch_all(&texts);
        dedup
            .resolve(&s, &[Some(0.1), Some(0.2), Some(0.9)])
            .iter()
            .map(|o| o.keep)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(KeepPolicy::First), [true, false, false]);
    assert_eq!(run(KeepPolicy::Longest), [false, true, false]);
    assert_eq!(run(KeepPolicy::Score), [false, false, true]);
}

#[test]
fn bad_configurations_are_refused() {
    let bad = [
        Config {
            threshold: 1.5,
            ..Config::default()
        },
        Config {
            num_perm: 0,
            ..Config::default()
        },
        Config {
            bands: Some(20),
            rows: Some(10),
            ..Config::default()
        },
        Config {
            bands: Some(4),
            rows: None,
            ..Config::default()
        },
    ];
    for cfg in bad {
        assert!(Dedup::new(&cfg).is_err(), "{cfg:?}");
    }
}

#[test]
fn store_and_file_modes_agree() {
    let p = planted();
    let docs: Vec<Document> = p
        .texts
        .iter()
        .enumerate()
        .map(|(i, t)| Document::new(format!("d{i:04}"), t.clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &docs);
    let dedup = Dedup::new(&Config::default()).unwrap();

    let out = FileOutputs {
        kept: dir.path().join("kept.jsonl"),
        clusters: Some(dir.path().join("clusters.jsonl")),
    };
    let file_report = dedup::run_files(&[input], &out, &dedup, &NoProgress).unwrap();
    let from_file: Vec<String> = JsonlReader::open(&out.kept)
        .unwrap()
        .map(|d| d.unwrap().id)
        .collect();

    let mut store = Store::open(dir.path().join("corpus.db")).unwrap();
    store.insert_documents(None, &docs).unwrap();
    let store_report = dedup::run_store(&mut store, &dedup, &NoProgress).unwrap();
    let from_store: Vec<String> = store
        .documents(Selection::Kept)
        .map(|d| d.unwrap().doc.id)
        .collect();

    assert_eq!(from_file, from_store);
    assert_eq!(
        (
            file_report.kept,
            file_report.exact_duplicates,
            file_report.near_duplicates
        ),
        (
            store_report.kept,
            store_report.exact_duplicates,
            store_report.near_duplicates
        )
    );
    assert_eq!(store.stats().unwrap().dedup.judged, docs.len() as u64);
    // every removed document is listed once in the clusters file, under a kept one
    let clusters = std::fs::read_to_string(out.clusters.unwrap()).unwrap();
    let removed: usize = clusters
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["removed"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(
        removed as u64,
        file_report.exact_duplicates + file_report.near_duplicates
    );

    // a second run over the store replaces its verdicts rather than adding to them
    dedup::run_store(&mut store, &dedup, &NoProgress).unwrap();
    assert_eq!(store.stats().unwrap().dedup.judged, docs.len() as u64);
}

/// The dedup verdicts in a store, by document: (doc, keep, kind, cluster).
fn stored_verdicts(path: &std::path::Path) -> Vec<(i64, bool, String, Option<i64>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT doc, keep, kind, cluster FROM dedup_verdicts ORDER BY doc")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// The smallest memory budget changes no verdict. Under it the key index spills a sorted run
/// at every chunk, the first pass keeps no shingle set and the candidates' sets are checked
/// from disk; file to file and over the store, under each keep policy, the kept documents,
/// the clusters file and the stored verdicts are those of a run that holds everything in
/// memory.
#[test]
fn the_smallest_memory_budget_changes_no_verdict() {
    let p = planted();
    // then short fillers, so that there are three chunks, with an exact copy of one in fifty
    let mut rng = Rng::new(77);
    let mut texts = p.texts.clone();
    let n0 = texts.len();
    for i in 0..17_000 {
        let t = if i % 50 == 49 {
            texts[n0 + i - 30].clone()
        } else {
            generate_text(&mut rng, 30)
        };
        texts.push(t);
    }
    let score = |i: usize| (i * 37 % 101) as f64 / 100.0;
    let docs: Vec<Document> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut d = Document::new(format!("d{i:05}"), t.as_str());
            d.extra.insert("score".into(), score(i).into());
            d
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &docs);
    for keep in [KeepPolicy::First, KeepPolicy::Longest, KeepPolicy::Score] {
        let mut results = Vec::new();
        for tight in [false, true] {
            let config = Config {
                keep,
                memory_budget: if tight { 4096 } else { 1 << 30 },
                ..Config::default()
            };
            let dedup = Dedup::new(&config).unwrap();
            let name = format!("{keep:?}-{tight}");
            let out = FileOutputs {
                kept: dir.path().join(format!("{name}.kept.jsonl")),
                clusters: Some(dir.path().join(format!("{name}.clusters.jsonl"))),
            };
            let r =
                dedup::run_files(std::slice::from_ref(&input), &out, &dedup, &NoProgress).unwrap();
            assert_eq!(
                (r.spilled_runs >= 3, r.verified_on_disk),
                (tight, tight),
                "{r:?}"
            );
            assert!(
                r.exact_duplicates >= 60 + 300 && r.near_duplicates >= 50,
                "{r:?}"
            );

            let db = dir.path().join(format!("{name}.db"));
            let mut store = Store::open(&db).unwrap();
            store.insert_documents(None, &docs).unwrap();
            let seqs: Vec<i64> = store
                .documents(Selection::All)
                .map(|d| d.unwrap().seq)
                .collect();
            let run = store.begin_run("clean", &serde_json::json!({})).unwrap();
            let verdicts: Vec<corpus::CleanVerdict> = (0..docs.len())
                .map(|i| corpus::CleanVerdict {
                    doc: seqs[i],
                    keep: true,
                    rule: None,
                    value: None,
                    score: Some(score(i)),
                    details: None,
                    text: None,
                })
                .collect();
            store.record_clean_verdicts(run, &verdicts).unwrap();
            store
                .finish_run(run, corpus::RunStatus::Done, &serde_json::json!({}))
                .unwrap();
            let s = dedup::run_store(&mut store, &dedup, &NoProgress).unwrap();
            assert_eq!(
                (s.kept, s.exact_duplicates, s.near_duplicates, s.clusters),
                (r.kept, r.exact_duplicates, r.near_duplicates, r.clusters)
            );
            drop(store);
            // each document the store removed points at the member the clusters file kept
            let mut kept_of = std::collections::HashMap::new();
            for line in std::fs::read_to_string(out.clusters.as_ref().unwrap())
                .unwrap()
                .lines()
            {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                for m in v["removed"].as_array().unwrap() {
                    kept_of.insert(m["id"].as_str().unwrap().to_string(), v["kept"].clone());
                }
            }
            let id_of = |seq: i64| {
                docs[seqs.iter().position(|&s| s == seq).unwrap()]
                    .id
                    .clone()
            };
            let stored = stored_verdicts(&db);
            assert_eq!(stored.len(), docs.len());
            let removed: Vec<_> = stored.iter().filter(|v| !v.1).collect();
            assert_eq!(removed.len(), kept_of.len());
            for (doc, _, kind, cluster) in removed {
                let kept = id_of(cluster.expect("a removed duplicate names its cluster"));
                assert_eq!(kept_of[&id_of(*doc)], kept.as_str(), "{kind}");
            }
            results.push((
                std::fs::read(&out.kept).unwrap(),
                std::fs::read(out.clusters.as_ref().unwrap()).unwrap(),
                stored_verdicts(&db),
            ));
        }
        assert!(
            results[0] == results[1],
            "{keep:?}: a tight budget changed the verdicts"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// The MinHash estimate of 256 permutations is within 5 standard deviations
    /// (sqrt(J(1-J)/256) <= 0.031) of the exact Jaccard similarity.
    #[test]
    fn minhash_tracks_exact_jaccard(shared in 0usize..300, only_a in 0usize..300, only_b in 0usize..300, seed: u64) {
        proptest::prop_assume!(shared + only_a + only_b > 0);
        let mut rng = Rng::new(seed);
        let mut draw = |n: usize| (0..n).map(|_| rng.next_u64()).collect::<Vec<u64>>();
        let common = draw(shared);
        let mut a: Vec<u64> = common.iter().copied().chain(draw(only_a)).collect();
        let mut b: Vec<u64> = common.iter().copied().chain(draw(only_b)).collect();
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        let exact = minhash::jaccard(&a, &b);
        let hasher = MinHasher::new(256, seed ^ 0x5eed);
        let est = minhash::estimate(&hasher.signature(&a), &hasher.signature(&b));
        let sigma = (exact * (1.0 - exact) / 256.0).sqrt();
        proptest::prop_assert!((est - exact).abs() <= 5.0 * sigma + 0.01, "exact {exact} estimate {est}");
    }
}

#[test]
fn verification_turns_down_lsh_false_positives() {
    // pairs near Jaccard 0.4, made candidates by loose bands (32 x 2), removed only without
    // the exact check
    let mut rng = Rng::new(21);
    let mut texts = Vec::new();
    for _ in 0..20 {
        let a = generate_text(&mut rng, 600);
        let b = edit(&mut rng, &a, 0.12);
        let (x, y) = (
            minhash::shingles(&minhash::compact(&minhash::normalize(&a)), 5),
            minhash::shingles(&minhash::compact(&minhash::normalize(&b)), 5),
        );
        let j = minhash::jaccard(&x, &y);
        assert!(j < 0.8, "{j}");
        texts.push(a);
        texts.push(b);
    }
    let loose = |verify| Config {
        bands: Some(32),
        rows: Some(2),
        verify,
        ..Config::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<Document> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Document::new(format!("d{i}"), t.as_str()))
        .collect();
    let input = write_input(dir.path(), &docs);
    let out = FileOutputs {
        kept: dir.path().join("kept.jsonl"),
        clusters: None,
    };
    let unverified = Dedup::new(&loose(false)).unwrap();
    let r = dedup::run_files(std::slice::from_ref(&input), &out, &unverified, &NoProgress).unwrap();
    assert!(r.near_duplicates >= 15, "{r:?}");
    assert_eq!(r.pairs_rejected_by_verification, 0);
    let verified = Dedup::new(&loose(true)).unwrap();
    let r = dedup::run_files(std::slice::from_ref(&input), &out, &verified, &NoProgress).unwrap();
    assert_eq!(r.near_duplicates, 0, "{r:?}");
    assert!(r.pairs_rejected_by_verification >= 15);
    assert_eq!(r.kept, 40);

    // the store path verifies the same way
    let mut store = Store::open(dir.path().join("corpus.db")).unwrap();
    store.insert_documents(None, &docs).unwrap();
    let r = dedup::run_store(&mut store, &verified, &NoProgress).unwrap();
    assert_eq!((r.near_duplicates, r.kept), (0, 40));

    // with no memory for the first pass's sets, the candidates are read again: same verdicts
    let reread = Dedup::new(&Config {
        verify_memory: 0,
        ..loose(true)
    })
    .unwrap();
    let r2 = dedup::run_files(std::slice::from_ref(&input), &out, &reread, &NoProgress).unwrap();
    assert_eq!((r2.near_duplicates, r2.kept), (0, 40));
    assert_eq!(
        r2.pairs_rejected_by_verification,
        r.pairs_rejected_by_verification
    );
    let r3 = dedup::run_store(&mut store, &reread, &NoProgress).unwrap();
    assert_eq!(
        r3.pairs_rejected_by_verification,
        r.pairs_rejected_by_verification
    );
}

#[test]
fn decontamination_removes_documents_sharing_evaluation_text() {
    let mut rng = Rng::new(33);
    let texts: Vec<String> = (0..30).map(|_| generate_text(&mut rng, 300)).collect();
    // an evaluation item quoting 20 characters of document 7 (with different spacing and width)
    let quoted: String = texts[7].chars().skip(100).take(20).collect();
    let mut c = dedup::Contamination::new(13);
    c.add(&format!("阅读理解：{quoted}？"));
    c.add("短"); // shorter than 13 characters: adds nothing
    assert!(c.len() > 20 - 13, "{}", c.len());
    let dedup = Dedup::new(&Config::default())
        .unwrap()
        .with_contamination(c);
    let sketches = dedup.sketch_all(&texts);
    let outcomes = dedup.resolve(&sketches, &[]);
    for (i, o) in outcomes.iter().enumerate() {
        if i == 7 {
            assert_eq!((o.keep, o.kind), (false, DedupKind::Contaminated));
            let span = sketches[7].contaminated.as_deref().unwrap();
            assert_eq!(span.chars().count(), 13);
            assert!(minhash::compact(&minhash::normalize(&quoted)).contains(span));
        } else {
            assert!(o.keep, "{i}");
        }
    }

    // over the store the span is recorded with the verdict
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let mut store = Store::open(&db).unwrap();
    let docs: Vec<Document> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Document::new(format!("d{i}"), t.as_str()))
        .collect();
    store.insert_documents(None, &docs).unwrap();
    let r = dedup::run_store(&mut store, &dedup, &NoProgress).unwrap();
    assert_eq!(r.contaminated, 1);
    assert_eq!(store.documents(Selection::Kept).count(), 29);
}

#[test]
fn a_corpus_beyond_the_memory_budget_completes_with_the_same_verdicts() {
    // two sketch chunks (8,192 documents each) of short texts with planted copies
    let mut rng = Rng::new(44);
    let mut docs = Vec::new();
    for i in 0..9000 {
        let t = if i % 10 == 9 {
            let src: &Document = &docs[i - 5];
            edit(&mut rng, &src.text, 0.01)
        } else {
            generate_text(&mut rng, 60)
        };
        docs.push(Document::new(format!("d{i}"), t));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &docs);
    let run = |memory_budget| {
        let dedup = Dedup::new(&Config {
            memory_budget,
            spill_dir: Some(dir.path().to_path_buf()),
            ..Config::default()
        })
        .unwrap();
        let out = FileOutputs {
            kept: dir.path().join(format!("kept-{memory_budget}.jsonl")),
            clusters: Some(dir.path().join(format!("clusters-{memory_budget}.jsonl"))),
        };
        let r = dedup::run_files(std::slice::from_ref(&input), &out, &dedup, &NoProgress).unwrap();
        (r, std::fs::read_to_string(out.clusters.unwrap()).unwrap())
    };
    let (in_memory, clusters_a) = run(1 << 30);
    let (spilled, clusters_b) = run(0);
    assert_eq!(in_memory.spilled_runs, 0);
    assert_eq!(spilled.spilled_runs, 2);
    assert!(
        in_memory.near_duplicates + in_memory.exact_duplicates >= 600,
        "{in_memory:?}"
    );
    assert_eq!(
        (
            spilled.kept,
            spilled.near_duplicates,
            spilled.exact_duplicates
        ),
        (
            in_memory.kept,
            in_memory.near_duplicates,
            in_memory.exact_duplicates
        )
    );
    assert_eq!(clusters_a, clusters_b);
    // the runs are removed with their temporary folder
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("zhcorpus-dedup-")
        })
        .collect();
    assert!(left.is_empty());
}

#[test]
fn paragraph_level_dedup_removes_repeated_paragraphs_across_documents() {
    let mut rng = Rng::new(55);
    let p: Vec<String> = (0..6).map(|_| generate_text(&mut rng, 80)).collect();
    let docs = vec![
        Document::new("a", format!("{}\n{}", p[0], p[1])),
        // repeats a's first paragraph (re-spaced: the same after normalisation)
        Document::new(
            "b",
            format!("{}\n {} \n短行", p[2], p[0].replace('，', ", ")),
        ),
        // nothing but paragraphs seen before: removed
        Document::new("c", format!("{}\n{}", p[1], p[2])),
        Document::new("d", format!("{}\n{}", p[3], p[4])),
    ];
    let config = Config {
        paragraphs: true,
        ..Config::default()
    };
    let dedup = Dedup::new(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &docs);
    let out = FileOutputs {
        kept: dir.path().join("kept.jsonl"),
        clusters: None,
    };
    let r = dedup::run_files(std::slice::from_ref(&input), &out, &dedup, &NoProgress).unwrap();
    assert_eq!(
        (r.paragraphs_removed, r.emptied_by_paragraphs),
        (3, 1),
        "{r:?}"
    );
    assert_eq!(r.kept, 3);
    let kept: Vec<Document> = JsonlReader::open(&out.kept)
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    let texts: Vec<&str> = kept.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            docs[0].text.as_str(),
            &format!("{}\n短行", p[2]),
            docs[3].text.as_str()
        ]
    );

    // over the store: the same, and the kept text is what export and later stages read
    let mut store = Store::open(dir.path().join("corpus.db")).unwrap();
    store.insert_documents(None, &docs).unwrap();
    let r = dedup::run_store(&mut store, &dedup, &NoProgress).unwrap();
    assert_eq!(
        (r.paragraphs_removed, r.emptied_by_paragraphs, r.kept),
        (3, 1, 3)
    );
    let from_db: Vec<String> = store
        .documents(Selection::Kept)
        .map(|d| d.unwrap().doc.text)
        .collect();
    assert_eq!(from_db, texts);
    // the stored documents are untouched
    assert_eq!(store.document("b").unwrap().unwrap().doc.text, docs[1].text);
}

#[test]
fn word_shingles_follow_jieba_words() {
    assert_eq!(
        minhash::words("我们，去公园散步吧！ ok"),
        ["我们", "去", "公园", "散步", "吧", "ok"]
    );
    // a text of words from a small vocabulary; the copy has two words swapped for others
    let vocab = [
        "经济", "发展", "城市", "居民", "政府", "工作", "问题", "市场", "企业", "技术", "学生",
        "学校", "医院", "医生", "记者", "今天", "明天", "我们", "他们", "已经", "开始", "提高",
        "服务", "质量", "建设", "项目", "资金", "投资", "银行", "公司",
    ];
    let mut rng = Rng::new(7);
    let text =
        |rng: &mut Rng| -> Vec<&str> { (0..160).map(|_| vocab[rng.below(vocab.len())]).collect() };
    let a = text(&mut rng);
    let mut b = a.clone();
    b[40] = "天气";
    b[120] = "新闻";
    let other = text(&mut rng);
    let words = Dedup::new(&Config {
        unit: dedup::Unit::Words,
        ..Config::default()
    })
    .unwrap();
    let sa = words.shingle_set(&a.join("，"));
    let sb = words.shingle_set(&b.join("，"));
    let so = words.shingle_set(&other.join("，"));
    let jaccard = |x: &[u64], y: &[u64]| {
        let common = x.iter().filter(|h| y.binary_search(h).is_ok()).count();
        common as f64 / (x.len() + y.len() - common) as f64
    };
    assert!(jaccard(&sa, &sb) > 0.85, "{}", jaccard(&sa, &sb));
    assert!(jaccard(&sa, &so) < 0.05);
    // punctuation between words does not count: the same words joined differently match
    assert_eq!(sa, words.shingle_set(&a.join("、")));
    let s = words.sketch_all(&[a.join("，"), b.join("，"), other.join("，")]);
    let o = words.resolve(&s, &[]);
    assert_eq!(
        o.iter().map(|o| o.keep).collect::<Vec<_>>(),
        [true, false, true]
    );
    // character shingles see the punctuation, so this pair differs for them
    let chars = Dedup::new(&Config::default()).unwrap();
    assert_ne!(
        chars.shingle_set(&a.join("，")),
        chars.shingle_set(&a.join("、"))
    );
}

#[test]
fn short_texts_become_candidates_as_the_s_curve_says() {
    // Headline-length texts have far fewer shingles than permutations, so most bins of the
    // one-permutation signature are borrowed: the candidate rate of pairs above the threshold
    // must still follow LSH's S-curve at their exact Jaccard, as with k independent hashes.
    let cfg = Config {
        threshold: 0.6,
        ngram: 3,
        verify: false,
        exact: false,
        ..Config::default()
    };
    let dedup = Dedup::new(&cfg).unwrap();
    let p = dedup.params();
    let mut rng = Rng::new(11);
    let (mut expected, mut found, mut pairs) = (0.0, 0usize, 0usize);
    let trials = 1000;
    for _ in 0..trials {
        let a = generate_text(&mut rng, 24);
        let rate = 0.01 + rng.below(8) as f64 / 100.0;
        let b = edit(&mut rng, &a, rate);
        let (sa, sb) = (dedup.shingle_set(&a), dedup.shingle_set(&b));
        let common = sa.iter().filter(|h| sb.binary_search(h).is_ok()).count();
        let j = common as f64 / (sa.len() + sb.len() - common) as f64;
        if j < cfg.threshold {
            continue;
        }
        pairs += 1;
        expected += minhash::candidate_probability(j, p.bands, p.rows);
        let s = dedup.sketch_all(&[&a, &b]);
        if !dedup.candidates(&s).is_empty() {
            found += 1;
        }
    }
    let expected = expected / pairs as f64;
    let rate = found as f64 / pairs as f64;
    assert!(
        (rate - expected).abs() < 0.05,
        "rate {rate:.3}, S-curve {expected:.3}"
    );
}
