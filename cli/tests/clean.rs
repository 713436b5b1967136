//! `zhcorpus clean` and `zhcorpus quality train` as processes.

mod common;

use common::{ok, run, stderr, write_jsonl};
use corpus::Document;

const ARTICLE: &str = "北京时间昨天晚上，国家统计局发布了最新一期的经济数据，显示前三个季度国内生产总值同比增长五个百分点左右。
分析人士认为，消费和投资的稳定恢复是经济增长的主要动力，其中服务业对经济增长的贡献率持续提高。
联系人手机13912345678，欢迎读者来电。";

fn docs() -> Vec<Document> {
    vec![
        Document::new("good", ARTICLE),
        Document::new("nav", "首页 | 新闻 | 体育 | 财经"),
        Document::new(
            "english",
            "This page is written in English only, and it is long enough to pass the length rule easily, with several sentences. It has no Chinese at all.",
        ),
    ]
}

#[test]
fn clean_the_database_explain_and_export_cleaned_text() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(&dir.path().join("in.jsonl"), &docs());
    ok(run(dir.path(), &["import", "--input", "in.jsonl"]));
    let out = ok(run(dir.path(), &["clean"]));
    assert!(out.contains("cleaned 3 documents"), "{out}");
    assert!(out.contains("1 kept, 2 rejected"), "{out}");
    assert!(
        out.contains("han_ratio") && out.contains("min_chars"),
        "{out}"
    );

    let out = ok(run(dir.path(), &["clean", "--explain", "english"]));
    assert!(
        out.contains("document english (source \"\"): rejected"),
        "{out}"
    );
    assert!(out.contains("han_ratio") && out.contains("FAIL"), "{out}");
    assert!(
        out.contains("stored verdict: rejected by han_ratio"),
        "{out}"
    );

    // export gives what the cleaner made of the text, not the raw one
    ok(run(
        dir.path(),
        &["export", "--kept-only", "--output", "kept.jsonl"],
    ));
    let kept = std::fs::read_to_string(dir.path().join("kept.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), 1);
    assert!(
        kept.contains("<PHONE>") && !kept.contains("13912345678"),
        "{kept}"
    );

    let out = run(dir.path(), &["clean", "--explain", "missing"]);
    assert_eq!(out.status.code(), Some(2));

    // a strict run re-judges: the article is shorter than 200 characters
    let out = ok(run(dir.path(), &["clean", "--strict"]));
    assert!(out.contains("0 kept, 3 rejected"), "{out}");
}

#[test]
fn file_mode_config_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(&dir.path().join("in.jsonl"), &docs());
    std::fs::write(
        dir.path().join("loose.toml"),
        "[rules]\nmin_han_ratio = 0.0\nmin_chars = 10\nmax_short_line_ratio = 1.0\n",
    )
    .unwrap();
    let out = ok(run(
        dir.path(),
        &[
            "clean",
            "--config",
            "loose.toml",
            "--input",
            "in.jsonl",
            "--output",
            "kept.jsonl",
            "--rejected",
            "rej.jsonl",
        ],
    ));
    assert!(out.contains("2 kept, 1 rejected"), "{out}");
    let rejected = std::fs::read_to_string(dir.path().join("rej.jsonl")).unwrap();
    assert!(
        rejected.contains("\"id\":\"nav\"") && rejected.contains("\"clean\":{\"rule\":"),
        "{rejected}"
    );

    std::fs::write(dir.path().join("bad.toml"), "[rules]\nmin_charz = 1\n").unwrap();
    let out = run(
        dir.path(),
        &[
            "clean", "--config", "bad.toml", "--input", "in.jsonl", "--output", "k.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad.toml") && stderr(&out).contains("min_charz"),
        "{}",
        stderr(&out)
    );

    let out = ok(run(dir.path(), &["clean", "--print-config"]));
    let config: toml::Value = toml::from_str(&out).unwrap();
    assert_eq!(config["rules"]["min_chars"].as_integer(), Some(60));
}

#[test]
fn quality_train_then_clean_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let mut make = |good: bool, n: usize| -> Vec<Document> {
        let words: &[&str] = if good {
            &[
                "经济", "发展", "政府", "表示", "增长", "企业", "市场", "研究", "认为", "今年",
            ]
        } else {
            &[
                "免费", "点击", "下载", "最新", "高清", "破解", "福利", "视频", "在线", "观看",
            ]
        };
        (0..n)
            .map(|i| {
                let mut s = String::new();
                for k in 0..rng.usize(60..90) {
                    s.push_str(words[rng.usize(..words.len())]);
                    if k % 7 == 6 {
                        s.push_str(if good { "。" } else { "！" });
                    }
                }
                s.push_str(if good { "。" } else { "！" });
                Document::new(format!("{good}-{i}"), s)
            })
            .collect()
    };
    write_jsonl(&dir.path().join("pos.jsonl"), &make(true, 200));
    write_jsonl(&dir.path().join("neg.jsonl"), &make(false, 200));
    let out = ok(run(
        dir.path(),
        &[
            "quality",
            "train",
            "--positive",
            "pos.jsonl",
            "--negative",
            "neg.jsonl",
            "--output",
            "model.bin",
            "--bits",
            "14",
        ],
    ));
    assert!(
        out.contains("held out 40 documents: accuracy 1.000"),
        "{out}"
    );

    let mut test = make(true, 10);
    test.extend(make(false, 10));
    write_jsonl(&dir.path().join("test.jsonl"), &test);
    let out = ok(run(
        dir.path(),
        &[
            "clean",
            "--quality-model",
            "model.bin",
            "--input",
            "test.jsonl",
            "--output",
            "kept.jsonl",
        ],
    ));
    assert!(out.contains("10 kept, 10 rejected"), "{out}");
    assert!(out.contains("quality"), "{out}");

    std::fs::write(dir.path().join("junk.bin"), b"junk").unwrap();
    let out = run(
        dir.path(),
        &[
            "clean",
            "--quality-model",
            "junk.bin",
            "--input",
            "test.jsonl",
            "--output",
            "k.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a zhcorpus quality model"),
        "{}",
        stderr(&out)
    );
}
