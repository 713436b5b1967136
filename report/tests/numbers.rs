//! The report's numbers against a store whose contents the test knows.

use corpus::{CleanVerdict, DedupKind, DedupVerdict, Document, RunStatus, Store};
use serde_json::json;

/// Ten documents in two sources; the cleaner removes three (two too short, one not Chinese);
/// dedup keeps five of the seven: one cluster of three (its keeper, an exact and a near copy).
fn store(dir: &std::path::Path, judged: bool) -> Store {
    let mut store = Store::open(dir.join("c.db")).unwrap();
    let long = "今天的天气很好，我们一起去公园散步，看见许多人在湖边钓鱼。".repeat(3);
    let mut docs = Vec::new();
    for i in 0..10 {
        let text = match i {
            0..=1 => "太短了。".to_string(),
            2 => "This page is in English only and has no Chinese at all.".to_string(),
            3 | 4 => long.clone(),
            5 => format!("{long}另外"),
            _ => format!(
                "第{i}篇：{}",
                "北京大学的图书馆藏书丰富，每天都有很多学生来读书。".repeat(i)
            ),
        };
        let mut d = Document::new(format!("d{i}"), text);
        d.source = Some(if i % 2 == 0 { "news" } else { "forum" }.to_string());
        docs.push(d);
    }
    store.insert_documents(None, &docs).unwrap();
    if !judged {
        return store;
    }
    let config = json!({"rules": {"min_chars": 10, "min_han_ratio": 0.3}});
    let run = store.begin_run("clean", &config).unwrap();
    let verdicts: Vec<CleanVerdict> = (1..=10)
        .map(|seq| {
            let (keep, rule, value, chars, han) = match seq {
                1 | 2 => (false, Some("min_chars"), Some(4.0), 4.0, 0.75),
                3 => (false, Some("han_ratio"), Some(0.0), 56.0, 0.0),
                _ => (true, None, None, 60.0 + seq as f64, 0.9),
            };
            CleanVerdict {
                doc: seq,
                keep,
                rule: rule.map(str::to_string),
                value,
                score: None,
                details: Some(json!({"rules": {"min_chars": chars, "han_ratio": han}, "pii": {"phone": if seq == 4 { 2 } else { 0 }}})),
                text: None,
            }
        })
        .collect();
    store.record_clean_verdicts(run, &verdicts).unwrap();
    store.finish_run(run, RunStatus::Done, &json!({})).unwrap();
    let run = store.begin_run("dedup", &json!({})).unwrap();
    let verdicts: Vec<DedupVerdict> = (4..=10)
        .map(|seq| {
            let (keep, kind, cluster) = match seq {
                4 => (true, DedupKind::Unique, Some(4)),
                5 => (false, DedupKind::Exact, Some(4)),
                6 => (false, DedupKind::Near, Some(4)),
                _ => (true, DedupKind::Unique, None),
            };
            DedupVerdict {
                doc: seq,
                keep,
                kind,
                cluster,
                similarity: (seq == 6).then_some(0.93),
                span: None,
                text: None,
            }
        })
        .collect();
    store.record_dedup_verdicts(run, &verdicts).unwrap();
    store.finish_run(run, RunStatus::Done, &json!({})).unwrap();
    store
}

#[test]
fn the_funnel_adds_up_and_each_section_counts_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), true);
    let r = report::build(&store, &report::Inputs::default()).unwrap();
    let steps: Vec<Option<u64>> = r.funnel.steps.iter().map(|s| s.count).collect();
    // no pages, no shards: not counted rather than zero
    assert_eq!(steps, vec![None, Some(10), Some(7), Some(5), None]);
    let sum = |f: fn(&report::SourceFunnel) -> u64| r.funnel.sources.iter().map(f).sum::<u64>();
    assert_eq!(sum(|s| s.documents), 10);
    assert_eq!(sum(|s| s.clean_kept), 7);
    assert_eq!(sum(|s| s.dedup_kept), 5);
    let stats = store.stats().unwrap();
    assert_eq!(stats.kept, 5);

    let clean = r.clean.as_ref().unwrap();
    assert_eq!((clean.judged, clean.kept), (10, 7));
    let removed: Vec<(String, u64)> = clean
        .removed
        .iter()
        .map(|c| (c.name.clone(), c.count))
        .collect();
    assert_eq!(
        removed,
        vec![("min_chars".into(), 2), ("han_ratio".into(), 1)]
    );
    let min_chars = clean.rules.iter().find(|x| x.rule == "min_chars").unwrap();
    assert_eq!(min_chars.threshold, Some(10.0));
    assert_eq!(min_chars.bound.as_deref(), Some("min"));
    assert_eq!(min_chars.histogram.iter().map(|b| b.count).sum::<u64>(), 10);
    assert_eq!(min_chars.rejected.len(), 2);
    assert_eq!(min_chars.rejected[0].text, "太短了。");
    // every value the cleaner measured, shown with the example
    assert_eq!(
        min_chars.rejected[0].values,
        vec![
            ("min_chars".to_string(), 4.0),
            ("han_ratio".to_string(), 0.75)
        ]
    );
    // barely kept: the kept documents nearest the threshold, nearest first
    assert_eq!(min_chars.barely_kept[0].seq, 4);
    let han = clean.rules.iter().find(|x| x.rule == "han_ratio").unwrap();
    assert_eq!((han.threshold, han.removed), (Some(0.3), 1));
    assert_eq!(clean.pii.len(), 1);
    assert_eq!(
        (clean.pii[0].name.as_str(), clean.pii[0].count),
        ("phone", 2)
    );

    let dedup = r.dedup.as_ref().unwrap();
    assert_eq!((dedup.judged, dedup.kept), (7, 5));
    assert_eq!(dedup.cluster_sizes.len(), 1);
    assert_eq!(
        (
            dedup.cluster_sizes[0].name.as_str(),
            dedup.cluster_sizes[0].count
        ),
        ("3", 1)
    );
    let c = &dedup.largest[0];
    assert_eq!((c.cluster, c.size, c.kept.seq), (4, 3, 4));
    assert!(
        c.diff.iter().all(|p| p.op == "same"),
        "an exact copy is shown first: {:?}",
        c.diff
    );

    assert_eq!(r.lengths.all.iter().map(|b| b.count).sum::<u64>(), 10);
    assert_eq!(r.lengths.kept.iter().map(|b| b.count).sum::<u64>(), 5);
    let share: f64 = r.about.sources.iter().map(|s| s.share).sum();
    assert!((share - 1.0).abs() < 1e-9, "{share}");
    assert!(
        r.about
            .sources
            .iter()
            .any(|s| s.words.iter().any(|w| w.name == "图书馆"))
    );

    let html = report::render(&r);
    assert_eq!(
        html.matches("class=\"threshold\"").count(),
        2,
        "min_chars and han_ratio"
    );
    assert!(html.contains("太短了。"));
    assert!(!html.contains("<script"));
}

#[test]
fn missing_stages_and_files_are_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), false);
    let r = report::build(&store, &report::Inputs::default()).unwrap();
    assert!(r.clean.is_none() && r.dedup.is_none() && r.crawl.is_none());
    let steps: Vec<Option<u64>> = r.funnel.steps.iter().map(|s| s.count).collect();
    assert_eq!(steps, vec![None, Some(10), None, None, None]);
    // nothing judged: every document is kept
    assert_eq!(r.lengths.kept.iter().map(|b| b.count).sum::<u64>(), 10);
    for key in [
        "clean",
        "dedup",
        "crawl",
        "images",
        "training",
        "tokenizer",
        "tokens",
    ] {
        assert!(r.missing.contains_key(key), "{key}: {:?}", r.missing);
    }
    let html = report::render(&r);
    assert!(html.contains("the cleaner has not judged any document"));
    assert!(
        html.contains("not counted: pages fetched (2xx), kept by clean, kept by dedup, tokens")
    );

    // a run folder without metrics, a shard folder without a manifest: errors naming the file
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for inputs in [
        report::Inputs {
            run: Some(empty.clone()),
            ..Default::default()
        },
        report::Inputs {
            shards: Some(empty.clone()),
            ..Default::default()
        },
    ] {
        let err = report::build(&store, &inputs).unwrap_err().to_string();
        assert!(err.contains(&empty.display().to_string()), "{err}");
    }
}
