//! The cleaner's rules on cases written here, the classifier on a generated set, and the store
//! and file modes against each other.

use cleaner::{Cleaner, Config, QualityModel, TrainConfig};
use corpus::{Document, JsonlWriter, NoProgress, Selection, Store};

const ARTICLE: &str = "北京时间昨天晚上，国家统计局发布了最新一期的经济数据，显示前三个季度国内生产总值同比增长五个百分点左右。
分析人士认为，消费和投资的稳定恢复是经济增长的主要动力，其中服务业对经济增长的贡献率持续提高。
统计局新闻发言人在发布会上表示，下一阶段将继续做好稳就业、稳物价的工作，推动经济持续回升向好。
不少企业负责人也表示，订单情况比上半年明显好转，对全年的经营目标充满信心。";

fn cleaner() -> Cleaner {
    Cleaner::new(Config::default(), &[], None).unwrap()
}

fn rule(text: &str) -> Option<&'static str> {
    cleaner().clean(text, "example.cn", None).rule
}

#[test]
fn each_rule_on_its_case() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("a good article", ARTICLE, None),
        (
            "navigation residue",
            "首页\n新闻\n体育\n财经\n科技\n娱乐\n登录\n注册\n网站导航",
            Some("min_chars"),
        ),
        (
            "an English page",
            "The National Bureau of Statistics released new figures on Tuesday, showing that the economy grew steadily in the first three quarters. Analysts said consumption and investment both recovered. 中国。",
            Some("han_ratio"),
        ),
        (
            "a Japanese page",
            "東京都は昨日、新しい経済対策を発表しました。この対策には、中小企業への支援や、物価高に対する家計への給付が含まれています。専門家は、効果が出るまでには時間がかかるとの見方を示しています。",
            Some("kana_hangul_ratio"),
        ),
        (
            "gambling spam",
            concat!(
                "澳门葡京百家乐真人娱乐，注册送彩金，网上赌场首存优惠，六合彩时时彩北京赛车天天开奖。\n",
                "百家乐老虎机真人娱乐平台，网赌开户送礼金，博彩玩家首选。\n",
                "澳门银河官方网站提供时时彩和六合彩，首存即送，网上赌博从这里开始。"
            ),
            Some("bad_words_per_line"),
        ),
        (
            "repeated lines",
            &format!(
                "{ARTICLE}\n{}",
                "更多北京装修公司的报价和案例图片请见本站的专题页面\n".repeat(6)
            ),
            Some("dup_line_ratio"),
        ),
        (
            "a menu page with one paragraph",
            &format!(
                "{}\n{}",
                ARTICLE.lines().next().unwrap(),
                "新闻 国内 国际 社会\n体育 足球 篮球 综合\n财经 股票 基金 理财\n科技 手机 数码 网络\n娱乐 电影 电视 音乐\n汽车 新车 用车 车型\n房产 新房 二手房\n教育 高考 考研 留学\n旅游 国内游 出境游\n健康 养生 疾病 医院"
            ),
            Some("short_line_ratio"),
        ),
        (
            "no sentences (a list of keywords)",
            concat!(
                "手机 电脑 平板 耳机 充电器 数据线 移动电源 智能手表 蓝牙音箱 路由器 键盘 鼠标 显示器 打印机\n",
                "笔记本电脑 台式机 一体机 服务器 交换机 摄像头 投影仪 扫描仪 硬盘 内存条 显卡 主板 电源 机箱\n",
                "冰箱 洗衣机 空调 电视 热水器 油烟机 燃气灶 微波炉 电饭煲 电磁炉 净水器 吸尘器 扫地机器人"
            ),
            Some("terminal_punct_ratio"),
        ),
        (
            "a table of numbers",
            concat!(
                "第2023001期双色球开奖号码为0123456789，和值是45。\n",
                "第2023002期双色球开奖号码为9876501234，和值是39。\n",
                "第2023003期双色球开奖号码为5647382910，和值是52。\n",
                "第2023004期双色球开奖号码为1029384756，和值是41。\n",
                "第2023005期双色球开奖号码为6758493021，和值是47。"
            ),
            Some("digit_ratio"),
        ),
    ];
    for (name, text, want) in cases {
        assert_eq!(rule(text), *want, "{name}");
    }
}

/// THUCNews and many dumps store an article as one line: its paragraphs joined, a byline or
/// "我要评论" at the end. The line-end rules judge such a line by its sentences.
#[test]
fn joined_paragraphs_are_judged_by_their_sentences() {
    let joined = ARTICLE.lines().collect::<String>();
    for tail in ["○本报记者 张三 文", "我要评论", ""] {
        let v = cleaner().clean(&format!("{joined}{tail}"), "a.cn", None);
        assert!(v.keep, "{tail:?}: {:?} {:?}", v.rule, v.value);
    }
    // a long line without sentences stays one unfinished unit
    let v = cleaner().clean(
        concat!(
            "北京装修公司 上海装修公司 广州装修公司 深圳装修公司 杭州装修公司 成都装修公司 武汉装修公司 西安装修公司 ",
            "南京装修公司 重庆装修公司 天津装修公司 苏州装修公司 郑州装修公司 长沙装修公司 东莞装修公司 青岛装修公司 ",
            "沈阳装修公司 宁波装修公司 昆明装修公司 合肥装修公司 厦门装修公司 福州装修公司 济南装修公司 大连装修公司"
        ),
        "a.cn",
        None,
    );
    assert_eq!(v.rule, Some("terminal_punct_ratio"));
    // with the split turned off, the joined article is one line ending in a byline
    let config: Config = toml::from_str("[rules]\nsentence_split_chars = 100000\n").unwrap();
    let v =
        Cleaner::new(config, &[], None)
            .unwrap()
            .clean(&format!("{joined}我要评论"), "a.cn", None);
    assert_eq!(v.rule, Some("terminal_punct_ratio"));
}

/// An article stored twice (a scraping artefact) keeps one copy instead of failing the
/// repetition rules; short sentences and unfinished pieces are not touched.
#[test]
fn repeated_sentences_go_and_the_article_stays() {
    let joined = ARTICLE.lines().collect::<String>();
    let v = cleaner().clean(&format!("{joined}{joined}"), "a.cn", None);
    assert!(v.keep, "{:?} {:?}", v.rule, v.value);
    assert_eq!(v.text, joined);
    assert_eq!(v.lines.repeated_sentences, 4);
    let v = cleaner().clean(&format!("{ARTICLE}\n{ARTICLE}"), "a.cn", None);
    assert_eq!((v.text.as_str(), v.lines.repeated_sentences), (ARTICLE, 4));
    let short = format!("{ARTICLE}\n是的。\n是的。");
    assert_eq!(
        cleaner()
            .clean(&short, "a.cn", None)
            .lines
            .repeated_sentences,
        0
    );
    let config = Config {
        drop_repeated_sentences: false,
        ..Config::default()
    };
    let v =
        Cleaner::new(config, &[], None)
            .unwrap()
            .clean(&format!("{joined}{joined}"), "a.cn", None);
    assert_eq!(v.rule, Some("dup_ngram_char_ratio"));
}

/// A manual's tables and lists between paragraphs are short lines, but few of its characters.
#[test]
fn short_lines_are_weighted_by_characters() {
    let table = "软件包\n流行度\n大小\n说明\nlocales\nV:1, I:17\n4.5 MB\nGNU C 库的本地化数据\nman-db\nV:9, I:93\n2.8 MB\n手册页\n";
    let prose: Vec<&str> = ARTICLE.lines().collect();
    let page = format!(
        "{}\n{}\n{table}{}\n{}",
        prose[0], prose[1], prose[2], prose[3]
    );
    let v = cleaner().clean(&page, "a.cn", None);
    assert!(v.keep, "{:?} {:?}", v.rule, v.value);
    let lines = page.lines().count() as f64;
    let short = table.lines().count() as f64;
    assert!(short / lines > 0.5, "more than half the lines are short");
    assert!(v.details()["rules"]["short_line_ratio"].as_f64().unwrap() < 0.3);
}

#[test]
fn every_value_is_recorded_and_thresholds_come_from_toml() {
    let v = cleaner().clean(ARTICLE, "a.cn", None);
    assert!(v.keep);
    let details = v.details();
    for rule in [
        "min_chars",
        "han_ratio",
        "avg_line_chars",
        "dup_line_ratio",
        "dup_ngram_char_ratio",
        "terminal_punct_ratio",
        "symbol_ratio",
        "digit_ratio",
        "bad_words_per_line",
    ] {
        assert!(details["rules"][rule].is_number(), "{rule}: {details}");
    }
    let config: Config = toml::from_str("[rules]\nmin_chars = 1000\n").unwrap();
    let strict = Cleaner::new(config, &[], None).unwrap();
    let v = strict.clean(ARTICLE, "a.cn", None);
    assert_eq!(v.rule, Some("min_chars"));
    assert!(v.value.unwrap() < 1000.0);
    assert!(toml::from_str::<Config>("[rules]\nmin_charz = 1\n").is_err());
}

#[test]
fn traditional_script_converts_when_asked() {
    let config = Config {
        to_simplified: true,
        ..Config::default()
    };
    let c = Cleaner::new(config, &[], None).unwrap();
    let v = c.clean(
        "牀前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。",
        "a.cn",
        None,
    );
    assert_eq!(v.text, "床前明月光，疑是地上霜。举头望明月，低头思故乡。");
    // off by default: the text stays as written
    let v = cleaner().clean("舉頭望明月", "a.cn", None);
    assert_eq!(v.text, "舉頭望明月");
}

#[test]
fn normalises_masks_and_drops_boilerplate_lines() {
    let text = format!(
        "{ARTICLE}\n记者联系电话：１３８１２３４５６７８，邮箱 reporter@example.com。\n责任编辑：张三\n分享到：微信 微博"
    );
    let v = cleaner().clean(&text, "a.cn", None);
    assert!(v.keep, "{:?}", v.rule);
    assert!(
        v.text.contains("记者联系电话：<PHONE>，邮箱 <EMAIL>。"),
        "{}",
        v.text
    );
    assert!(!v.text.contains("责任编辑") && !v.text.contains("分享到"));
    assert_eq!((v.pii.phone, v.pii.email, v.lines.phrase), (1, 1, 2));
}

#[test]
fn lines_recurring_across_a_hosts_documents_go() {
    let footer = "本网站所有内容均来自网友分享，仅供学习交流使用，如有侵权请来信告知删除处理";
    let mut counts = cleaner::LineCounts::default();
    let docs: Vec<String> = (0..5)
        .map(|i| {
            format!(
                "{}\n第{i}篇的独特内容。\n{footer}",
                ARTICLE.lines().nth(i % 4).unwrap()
            )
        })
        .collect();
    for d in &docs {
        counts.add("a.cn", &cleaner().line_text(d));
    }
    // another host's documents with the same line do not count for a.cn
    counts.add("b.cn", footer);
    let v = cleaner().clean(&docs[0], "a.cn", Some(&counts));
    assert!(!v.text.contains(footer));
    assert_eq!(v.lines.recurring, 1);
    let v = cleaner().clean(&docs[0], "c.cn", Some(&counts));
    assert!(v.text.contains(footer));

    // bounded memory: lines seen once are forgotten first, the recurring footer stays
    let before = counts.len();
    counts.bound(4);
    assert!(
        counts.len() < before && counts.len() <= 2,
        "{}",
        counts.len()
    );
    let v = cleaner().clean(&docs[0], "a.cn", Some(&counts));
    assert_eq!(v.lines.recurring, 1);
}

/// Generated "good" text (sentences with punctuation) against "bad" text (keyword soup).
fn generated(n: usize, good: bool, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let words_good = [
        "经济", "发展", "政府", "表示", "增长", "企业", "市场", "研究", "我们", "认为", "今年",
        "工作",
    ];
    let words_bad = [
        "免费", "点击", "下载", "最新", "高清", "破解", "福利", "视频", "在线", "观看", "资源",
        "热门",
    ];
    (0..n)
        .map(|_| {
            let mut s = String::new();
            for _ in 0..rng.usize(20..60) {
                let words = if good { &words_good } else { &words_bad };
                s.push_str(words[rng.usize(..words.len())]);
                if rng.usize(..5) == 0 {
                    s.push(if good { '，' } else { ' ' });
                }
                if good && rng.usize(..9) == 0 {
                    s.push('。');
                }
            }
            s
        })
        .collect()
}

#[test]
fn the_classifier_learns_a_separable_set() {
    let config = TrainConfig {
        bits: 14,
        ..TrainConfig::default()
    };
    let mut train = Vec::new();
    let features =
        |t: &str| cleaner::quality::features_with(t, config.bits, config.max_n, config.line_shapes);
    for t in generated(300, true, 1) {
        train.push((features(&t), true));
    }
    for t in generated(300, false, 2) {
        train.push((features(&t), false));
    }
    let model = QualityModel::train(&train, &config);
    let held: Vec<(f64, bool)> = generated(100, true, 3)
        .iter()
        .map(|t| (model.score(t), true))
        .chain(
            generated(100, false, 4)
                .iter()
                .map(|t| (model.score(t), false)),
        )
        .collect();
    let auc = cleaner::quality::auc(&held);
    let accuracy =
        held.iter().filter(|(s, y)| (*s >= 0.5) == *y).count() as f64 / held.len() as f64;
    assert!(auc > 0.99, "AUC {auc}");
    assert!(accuracy > 0.95, "accuracy {accuracy}");

    // saved and loaded, it scores the same; a foreign file is refused
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    model.save(&path).unwrap();
    let loaded = QualityModel::load(&path).unwrap();
    let t = &generated(1, true, 9)[0];
    assert_eq!(loaded.score(t), model.score(t));
    std::fs::write(dir.path().join("bad.bin"), b"not a model").unwrap();
    assert!(QualityModel::load(&dir.path().join("bad.bin")).is_err());

    assert!(loaded.line_shapes());

    // with the model, bad text is rejected by the quality rule
    let c = Cleaner::new(Config::default(), &[], Some(model)).unwrap();
    let v = c.clean(&generated(1, false, 5)[0], "a.cn", None);
    assert!(v.score.unwrap() < 0.5);
    assert!(v.measures.iter().any(|m| m.rule == "quality" && !m.pass));
    assert!((0.0..=1.0).contains(&cleaner::quality::auc(&[(0.1, false), (0.9, true)])));
    // Pareto sampling keeps every high scorer and is fixed by the key
    assert!(cleaner::quality::pareto_keep(0.999, 9.0, "x"));
    assert_eq!(
        cleaner::quality::pareto_keep(0.3, 9.0, "doc-1"),
        cleaner::quality::pareto_keep(0.3, 9.0, "doc-1")
    );
}

fn documents() -> Vec<Document> {
    let mut docs = Vec::new();
    for (i, line) in ARTICLE.lines().enumerate() {
        let mut d = Document::new(
            format!("good-{i}"),
            format!("{ARTICLE}\n{line}补充第{i}段。\n责任编辑：李四"),
        );
        // one site each: four copies of one article on one site would be its boilerplate
        d.source = Some(format!("news{i}.cn"));
        docs.push(d);
    }
    let mut d = Document::new("nav", "首页 新闻 体育 财经");
    d.source = Some("news.cn".into());
    docs.push(d);
    let mut d = Document::new("pii", format!("{ARTICLE}\n联系人手机13912345678。"));
    d.source = Some("other.cn".into());
    docs.push(d);
    docs
}

#[test]
fn store_and_file_modes_agree() {
    let dir = tempfile::tempdir().unwrap();
    let c = cleaner();
    let input = dir.path().join("in.jsonl");
    let mut w = JsonlWriter::create(&input).unwrap();
    for d in documents() {
        w.write(&d).unwrap();
    }
    w.finish().unwrap();
    let kept_file = dir.path().join("kept.jsonl");
    let rejected_file = dir.path().join("rejected.jsonl");
    let file_report = cleaner::run_files(
        std::slice::from_ref(&input),
        &kept_file,
        Some(&rejected_file),
        &c,
        &NoProgress,
    )
    .unwrap();

    let mut store = Store::open(dir.path().join("corpus.db")).unwrap();
    store.insert_documents(None, &documents()).unwrap();
    let db_report = cleaner::run_store(&mut store, &c, &NoProgress).unwrap();
    assert_eq!(file_report.kept, db_report.kept);
    assert_eq!(file_report.rejected, db_report.rejected);
    assert_eq!(db_report.documents, 6);
    assert_eq!(db_report.kept, 5);
    assert_eq!(db_report.rejected.get("min_chars"), Some(&1));
    assert_eq!(db_report.pii.phone, 1);
    // the recurring "责任编辑" line went both ways, by phrase
    assert_eq!(db_report.phrase_lines_dropped, 4);

    // what later stages read is the cleaned text, identical in both modes
    let from_db: Vec<(String, String)> = store
        .documents(Selection::CleanKept)
        .map(|d| d.map(|d| (d.doc.id, d.doc.text)).unwrap())
        .collect();
    let from_file: Vec<(String, String)> = std::fs::read_to_string(&kept_file)
        .unwrap()
        .lines()
        .map(|l| {
            let d = Document::from_json(l).unwrap();
            (d.id, d.text)
        })
        .collect();
    assert_eq!(from_db, from_file);
    assert!(from_db.iter().any(|(_, t)| t.contains("<PHONE>")));
    // the stored documents are untouched
    let raw = store.document("pii").unwrap().unwrap();
    assert!(raw.doc.text.contains("13912345678"));
    let rejected = std::fs::read_to_string(&rejected_file).unwrap();
    assert!(
        rejected.contains("\"clean\":{\"rule\":\"min_chars\""),
        "{rejected}"
    );
    // a second run replaces the first run's verdicts
    cleaner::run_store(&mut store, &c, &NoProgress).unwrap();
    assert_eq!(store.documents(Selection::CleanKept).count(), 5);
}

#[test]
fn a_corrupt_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.jsonl");
    std::fs::write(
        &input,
        format!(
            "{{\"id\":\"a\",\"text\":\"{}\"}}\n{{\"id\":\"b\",\"te",
            "好"
        ),
    )
    .unwrap();
    let err = cleaner::run_files(
        std::slice::from_ref(&input),
        &dir.path().join("out.jsonl"),
        None,
        &cleaner(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("bad.jsonl:2"), "{err}");
    assert!(!dir.path().join("out.jsonl").exists());
}

/// The same characters as paragraphs or cut into menu-like short lines: n-grams cannot tell
/// them apart (blanks are not features), line shapes can.
#[test]
fn line_shapes_tell_what_ngrams_cannot() {
    let as_menu = |t: &str| -> String {
        let chars: Vec<char> = t.chars().filter(|c| *c != '\n').collect();
        chars
            .chunks(6)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let set = |seed: u64, n: usize| -> Vec<(String, bool)> {
        generated(n, true, seed)
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                if i % 2 == 0 {
                    (t, true)
                } else {
                    (as_menu(&t), false)
                }
            })
            .collect()
    };
    for line_shapes in [true, false] {
        let config = TrainConfig {
            bits: 14,
            line_shapes,
            ..TrainConfig::default()
        };
        let f =
            |t: &str| cleaner::quality::features_with(t, config.bits, config.max_n, line_shapes);
        let train: Vec<_> = set(11, 400).iter().map(|(t, y)| (f(t), *y)).collect();
        let model = QualityModel::train(&train, &config);
        let held: Vec<(f64, bool)> = set(12, 200)
            .iter()
            .map(|(t, y)| (model.score(t), *y))
            .collect();
        let auc = cleaner::quality::auc(&held);
        if line_shapes {
            assert!(auc > 0.95, "with line shapes: AUC {auc}");
        } else {
            assert!(auc < 0.75, "n-grams alone should not see lines: AUC {auc}");
        }
    }
}

/// C4 drops every line naming terms of use or a privacy policy; a site's copyright notice or
/// disclaimer goes whatever its length, a paragraph that merely opens with the word stays.
#[test]
fn notices_go_whatever_their_length() {
    let notice = "版权声明：本站是博客托管服务提供商。如本文牵涉版权问题，本站不承担相关责任，请版权拥有者直接与文章作者联系解决。";
    let view = "（本文仅代表作者本人观点，不代表本站观点，文章内容仅供读者参考，据此操作风险自担，转载时请与作者联系取得授权。）";
    let text = format!("{ARTICLE}\n{notice}\n{view}");
    let v = cleaner().clean(&text, "a.cn", None);
    assert_eq!(v.text, ARTICLE);
    assert_eq!(v.lines.phrase, 2);
    let joined = ARTICLE.lines().collect::<String>();
    let long = format!("版权声明{joined}{joined}");
    assert!(long.chars().count() > 200);
    let v = cleaner().clean(&long, "a.cn", None);
    assert_eq!(
        v.lines.phrase, 0,
        "a paragraph opening with the word is text"
    );
    let config = Config {
        drop_phrase_lines: false,
        ..Config::default()
    };
    let v = Cleaner::new(config, &[], None)
        .unwrap()
        .clean(&text, "a.cn", None);
    assert_eq!(v.lines.phrase, 0);
}
