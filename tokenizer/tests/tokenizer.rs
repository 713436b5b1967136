//! The tokenizer against slow references: the split against the regular expression it
//! implements, the trainer against a from-scratch BPE, encoding against decoding.

use proptest::prelude::*;
use rustc_hash::FxHashMap;
use tokenizer::pretok::{self, PreTokenizer, Segment};
use tokenizer::{END_OF_TEXT, PieceCounts, Tokenizer, TrainConfig, train};

/// Characters that exercise every branch of the expression.
const ALPHABET: &[char] = &[
    '中', '文', '字', '我', '们', '〇', '⺀', '𠀀', 'a', 'B', 'z', 'é', 'ſ', 'K', 'λ', 'Ж', 'あ',
    'ア', '한', '0', '7', '٣', '²', 'Ⅻ', '½', ' ', ' ', '\t', '\n', '\r', '\u{3000}', '\u{a0}',
    '\'', '\'', 's', 't', 'l', 'd', 'r', 'e', 'v', 'm', ',', '，', '。', '!', '“', '-', '_', '$',
    '😀', '\u{301}', '\u{200b}', '\u{0}',
];

fn text_strategy(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ALPHABET), 0..max)
        .prop_map(|v| v.into_iter().collect())
}

fn regex_split(re: &fancy_regex::Regex, text: &str) -> Vec<String> {
    re.find_iter(text)
        .map(|m| m.expect("regex").as_str().to_string())
        .collect()
}

fn scanner_split(text: &str, han_max: usize) -> Vec<String> {
    let mut v = Vec::new();
    pretok::split(text, han_max, |p| v.push(p.to_string()));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_scanner_splits_as_the_expression(text in text_strategy(40), han_max in 1usize..6) {
        static RES: std::sync::OnceLock<Vec<fancy_regex::Regex>> = std::sync::OnceLock::new();
        let res = RES.get_or_init(|| {
            (0..6).map(|k| fancy_regex::Regex::new(&pretok::pattern(k.max(1))).unwrap()).collect()
        });
        prop_assert_eq!(scanner_split(&text, han_max), regex_split(&res[han_max], &text));
    }
}

#[test]
fn the_scanner_splits_real_text_as_the_expression() {
    let mut rng = tests::Rng::new(1);
    let re = fancy_regex::Regex::new(&pretok::pattern(8)).unwrap();
    for _ in 0..200 {
        let text = format!(
            "{} It's 2024, they'll say:\r\n\n  \"{}\"\t{}  ",
            tests::generate_text(&mut rng, 60),
            tests::generate_text(&mut rng, 30),
            tests::generate_text(&mut rng, 5)
        );
        assert_eq!(scanner_split(&text, 8), regex_split(&re, &text), "{text:?}");
    }
}

/// A corpus of generated Chinese with some English, numbers and repeated phrases.
fn corpus(n: usize, seed: u64) -> Vec<String> {
    let mut rng = tests::Rng::new(seed);
    let phrases = [
        "人工智能",
        "北京大学",
        "中华人民共和国",
        "the model",
        "数据集",
    ];
    (0..n)
        .map(|i| {
            format!(
                "{}{} {} 第{}章。{}\n",
                tests::generate_text(&mut rng, 40),
                phrases[i % phrases.len()],
                phrases[(i * 7) % phrases.len()],
                i % 13,
                tests::generate_text(&mut rng, 20)
            )
        })
        .collect()
}

/// Every character's occurrences in a table.
fn char_counts(c: &PieceCounts) -> FxHashMap<char, u64> {
    let mut out = FxHashMap::default();
    for (p, n) in c.iter() {
        for ch in p.chars() {
            *out.entry(ch).or_default() += n;
        }
    }
    out
}

/// A piece table held under `limit` bytes, filled batch by batch on `threads` threads, checking
/// the bound after every batch.
fn bounded_counts(
    texts: &[String],
    pre: &PreTokenizer,
    limit: usize,
    threads: usize,
) -> PieceCounts {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut c = PieceCounts::with_limit(limit);
        for chunk in texts.chunks(64) {
            c.add_batch(chunk, pre);
            assert!(
                c.held_bytes() <= limit,
                "{} bytes held, limit {limit}",
                c.held_bytes()
            );
        }
        c
    })
}

/// Bounded, the table keeps every character occurrence, loses at most `prunes x threshold`
/// of any piece's count, stays under its limit, and does not depend on the thread count.
#[test]
fn a_bounded_piece_table_keeps_every_character_and_the_frequent_pieces() {
    let texts = corpus(4000, 11);
    let pre = PreTokenizer::default();
    let full = counts(&texts, &pre);
    let limit = full.held_bytes() / 4;
    let one = bounded_counts(&texts, &pre, limit, 1);
    assert!(one.prunes > 1 && one.split > 0, "never pruned");
    assert!(one.distinct() * 3 < full.distinct());
    // nothing lost; the middle characters of split pieces counted twice
    let (got_chars, want_chars) = (char_counts(&one), char_counts(&full));
    assert_eq!(got_chars.len(), want_chars.len());
    for (c, n) in &want_chars {
        assert!(got_chars[c] >= *n, "{c}: {} of {n}", got_chars[c]);
    }
    let loss = one.prunes * one.threshold;
    let got: FxHashMap<&str, u64> = one.iter().collect();
    let mut frequent = 0;
    for (p, n) in full.iter() {
        if n > loss {
            frequent += 1;
            let kept = got.get(p).copied().unwrap_or(0);
            assert!(kept + loss >= n, "{p:?}: {kept} of {n} (loss bound {loss})");
        }
    }
    // the phrases, chapter numbers and punctuation the generated text repeats
    assert!(
        frequent >= 20,
        "{frequent} frequent pieces (loss bound {loss})"
    );
    let two = bounded_counts(&texts, &pre, limit, 2);
    let mut a: Vec<(&str, u64)> = one.iter().collect();
    let mut b: Vec<(&str, u64)> = two.iter().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
    assert_eq!(
        (one.prunes, one.split, one.threshold),
        (two.prunes, two.split, two.threshold)
    );
}

/// What the bound costs: a tokenizer trained on a quarter of the table compresses held-out
/// text almost as well as the unbounded one.
#[test]
fn a_bounded_table_trains_almost_the_same_tokenizer() {
    let texts = corpus(4000, 12);
    let heldout = corpus(400, 13);
    let cfg = TrainConfig {
        vocab_size: 1500,
        ..TrainConfig::default()
    };
    let full = counts(&texts, &cfg.pre);
    let bounded = bounded_counts(&texts, &cfg.pre, full.held_bytes() / 4, 2);
    let tokens = |c: &PieceCounts| -> usize {
        let tok = train(c, &cfg, |_, _| {}).unwrap();
        tok.encode_batch(&heldout).iter().map(Vec::len).sum()
    };
    let (a, b) = (tokens(&full), tokens(&bounded));
    eprintln!("held-out tokens: {a} unbounded, {b} with a quarter of the table");
    assert!(b as f64 <= a as f64 * 1.02, "{a} -> {b}");
}

/// Past the bound, the trainer reads the input twice: the report covers the whole input, the
/// sample is the largest that fits (the next size up would not have), invalid lines are
/// counted once, and the tokenizer is the same on one thread and two.
#[test]
fn a_bounded_training_samples_the_documents_whose_table_fits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.txt");
    let mut rng = tests::Rng::new(41);
    let mut text = Vec::new();
    let mut bytes = 0;
    for i in 0..8_000 {
        let line = tests::generate_text(&mut rng, 100);
        bytes += line.len() as u64;
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        if i == 10 {
            text.extend_from_slice(b"\xff\xfe not UTF-8\n");
        }
    }
    std::fs::write(&path, text).unwrap();
    let cfg = TrainConfig {
        vocab_size: 400,
        memory_mib: 41,
        skip_invalid: true,
        ..TrainConfig::default()
    };
    cfg.validate().unwrap();
    let limit = cfg.table_limit().unwrap() as f64;
    let inputs = [path];
    let train_on = |threads: usize, out: &std::path::Path| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            tokenizer::train_tokenizer(
                tokenizer::Source::Files(&inputs),
                &cfg,
                out,
                &corpus::NoProgress,
            )
            .unwrap()
        })
    };
    let one = dir.path().join("one/tokenizer.json");
    let r = train_on(1, &one);
    assert_eq!((r.documents, r.bytes, r.invalid_lines), (8_000, bytes, 1));
    assert!(r.sample_level > 0 && r.sampled_documents < 4_000, "{r:?}");
    assert_eq!(r.pruned, 0, "{r:?}");
    // random text: the table grows with the documents, so the chosen sample's is between
    // three quarters of the limit, over the step between sizes (2^(1/4)), and the limit
    let t = r.table_bytes as f64;
    assert!(
        t <= limit && t >= 0.75 * limit / 2f64.powf(0.25) * 0.9,
        "{t} of {limit}"
    );
    let two = dir.path().join("two/tokenizer.json");
    train_on(2, &two);
    assert_eq!(std::fs::read(one).unwrap(), std::fs::read(two).unwrap());
}

fn counts(texts: &[String], pre: &PreTokenizer) -> PieceCounts {
    let mut c = PieceCounts::default();
    for chunk in texts.chunks(7) {
        c.add_batch(chunk, pre);
    }
    c
}

/// BPE training as the textbook states it: count every adjacent pair over all pieces, merge the
/// most frequent (ties: the smallest pair of ids), repeat; after a character stage.
fn reference_train(texts: &[String], cfg: &TrainConfig) -> (Vec<Vec<u8>>, Vec<(u32, u32)>) {
    // first the character stage: the most frequent multi-byte characters, covering
    // `char_coverage` of their occurrences, are built from their bytes
    let mut pieces: Vec<&str> = Vec::new();
    for t in texts {
        pretok::pieces(t, &cfg.pre, |p| pieces.push(p));
    }
    let target = cfg.vocab_size - 1 - cfg.specials.len();
    let mut vocab: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut merges = Vec::new();
    let mut char_counts: std::collections::BTreeMap<char, u64> = Default::default();
    for p in &pieces {
        for c in p.chars().filter(|c| c.len_utf8() > 1) {
            *char_counts.entry(c).or_default() += 1;
        }
    }
    let mut chars: Vec<(char, u64)> = char_counts.into_iter().collect();
    chars.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: u64 = chars.iter().map(|c| c.1).sum();
    let mut covered = 0;
    for &(c, n) in &chars {
        if covered as f64 >= cfg.char_coverage * total as f64 || n < cfg.min_frequency {
            break;
        }
        let bytes = c.to_string().into_bytes();
        let missing: Vec<usize> = (2..=bytes.len())
            .filter(|&k| !vocab.contains(&bytes[..k].to_vec()))
            .collect();
        if merges.len() + missing.len() > (target - 256) / 2 {
            break;
        }
        for k in missing {
            let left = vocab.iter().position(|v| *v == bytes[..k - 1]).unwrap() as u32;
            merges.push((left, u32::from(bytes[k - 1])));
            vocab.push(bytes[..k].to_vec());
        }
        covered += n;
    }
    let mut words: FxHashMap<Vec<u32>, u64> = FxHashMap::default();
    for p in &pieces {
        let mut w = Vec::new();
        for c in p.chars() {
            let bytes = c.to_string().into_bytes();
            let k = (1..=bytes.len())
                .rev()
                .find(|&k| vocab.contains(&bytes[..k].to_vec()))
                .unwrap();
            w.push(vocab.iter().position(|v| *v == bytes[..k]).unwrap() as u32);
            w.extend(bytes[k..].iter().map(|&b| u32::from(b)));
        }
        *words.entry(w).or_default() += 1;
    }
    while vocab.len() < target {
        let mut pairs: FxHashMap<(u32, u32), u64> = FxHashMap::default();
        for (w, c) in &words {
            for p in w.windows(2) {
                *pairs.entry((p[0], p[1])).or_default() += c;
            }
        }
        let Some((&pair, &count)) = pairs
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        else {
            break;
        };
        if count < cfg.min_frequency {
            break;
        }
        let bytes = [
            vocab[pair.0 as usize].clone(),
            vocab[pair.1 as usize].clone(),
        ]
        .concat();
        let id = match vocab.iter().position(|v| *v == bytes) {
            Some(i) => i as u32,
            None => {
                vocab.push(bytes);
                (vocab.len() - 1) as u32
            }
        };
        merges.push(pair);
        words = words
            .into_iter()
            .map(|(w, c)| {
                let mut out = Vec::new();
                let mut i = 0;
                while i < w.len() {
                    if i + 1 < w.len() && (w[i], w[i + 1]) == pair {
                        out.push(id);
                        i += 2;
                    } else {
                        out.push(w[i]);
                        i += 1;
                    }
                }
                (out, c)
            })
            .fold(FxHashMap::default(), |mut m, (w, c)| {
                *m.entry(w).or_default() += c;
                m
            });
    }
    (vocab, merges)
}

#[test]
fn training_matches_the_reference() {
    for (seed, han_max, segment, vocab_size, char_coverage) in [
        (1, 8, Segment::None, 600, 0.0),
        (1, 8, Segment::None, 600, 0.9),
        (2, 3, Segment::None, 500, 0.5),
        (3, 4, Segment::JiebaLong, 500, 0.0),
        (4, 8, Segment::Jieba, 700, 0.99),
    ] {
        let texts = corpus(120, seed);
        let cfg = TrainConfig {
            vocab_size,
            min_frequency: 2,
            pre: PreTokenizer { han_max, segment },
            specials: vec![],
            char_coverage,
            skip_invalid: false,
            memory_mib: 0,
        };
        let tok = train(&counts(&texts, &cfg.pre), &cfg, |_, _| {}).unwrap();
        let (vocab, merges) = reference_train(&texts, &cfg);
        assert_eq!(tok.merges(), merges.as_slice(), "seed {seed}");
        assert_eq!(tok.vocab_size(), vocab.len() + 1, "seed {seed}");
        for (id, bytes) in vocab.iter().enumerate() {
            assert_eq!(tok.token_bytes(id as u32), Some(bytes.as_slice()));
        }
    }
}

#[test]
fn encoding_applies_merges_by_rank_and_compresses() {
    let texts = corpus(200, 5);
    let cfg = TrainConfig {
        vocab_size: 800,
        ..TrainConfig::default()
    };
    let tok = train(&counts(&texts, &cfg.pre), &cfg, |_, _| {}).unwrap();
    let text = "中华人民共和国的北京大学在研究人工智能。";
    let ids = tok.encode(text);
    assert_eq!(tok.decode(&ids).unwrap(), text);
    // the phrases seen often became few tokens
    assert!(
        ids.len() * 2 < text.len(),
        "{} ids for {} bytes",
        ids.len(),
        text.len()
    );
    // the batch encoder and its cache give what one-at-a-time encoding gives
    let batch = tok.encode_batch(&texts);
    for (t, ids) in texts.iter().zip(&batch) {
        assert_eq!(&tok.encode(t), ids);
    }
}

/// One small tokenizer for the property tests.
fn shared_tokenizer() -> &'static Tokenizer {
    static TOK: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
    TOK.get_or_init(|| small_tokenizer(vec![]))
}

fn small_tokenizer(specials: Vec<String>) -> Tokenizer {
    let texts = corpus(80, 9);
    let cfg = TrainConfig {
        vocab_size: 500,
        specials,
        ..TrainConfig::default()
    };
    train(&counts(&texts, &cfg.pre), &cfg, |_, _| {}).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_bytes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let tok = shared_tokenizer();
        let ids = tok.encode_bytes(&bytes);
        prop_assert_eq!(tok.decode_bytes(&ids).unwrap(), bytes);
    }

    #[test]
    fn any_text_round_trips(text in any::<String>(), cjk in text_strategy(60)) {
        let tok = shared_tokenizer();
        for t in [&text, &cjk] {
            prop_assert_eq!(&tok.decode(&tok.encode(t)).unwrap(), t);
        }
    }
}

#[test]
fn special_tokens_are_never_split() {
    let tok = small_tokenizer(vec!["<|im_start|>".into(), "<|im_end|>".into()]);
    let eot = tok.special(END_OF_TEXT).unwrap();
    let start = tok.special("<|im_start|>").unwrap();
    let end = tok.special("<|im_end|>").unwrap();
    assert_eq!(tok.vocab_size(), 500);
    assert_eq!([eot, start, end], [497, 498, 499]);
    let ids = tok.encode("<|im_start|>你好<|endoftext|><|im_end|><|im_start");
    assert_eq!(ids[0], start);
    assert!(ids.contains(&eot));
    assert_eq!(ids.iter().filter(|&&i| i == end).count(), 1);
    assert_eq!(ids.iter().filter(|&&i| i == start).count(), 1);
    assert_eq!(
        tok.decode(&ids).unwrap(),
        "<|im_start|>你好<|endoftext|><|im_end|><|im_start"
    );
}

#[test]
fn tokenizer_json_round_trips_and_names_its_problems() {
    let tok = small_tokenizer(vec!["<|user|>".into()]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    tokenizer::hf::save(&tok, &path).unwrap();
    assert!(dir.path().join("vocab.json").exists());
    let merges = std::fs::read_to_string(dir.path().join("merges.txt")).unwrap();
    assert_eq!(merges.lines().count(), tok.merges().len() + 1);
    let back = tokenizer::hf::load(&path).unwrap();
    let texts = corpus(30, 77);
    for t in &texts {
        assert_eq!(back.encode(t), tok.encode(t));
    }
    assert_eq!(back.special("<|user|>"), tok.special("<|user|>"));

    std::fs::write(&path, "{\"model\": {\"type\": \"WordPiece\"}}").unwrap();
    let err = tokenizer::hf::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("not a BPE model"),
        "{err}"
    );
    std::fs::write(&path, "not json").unwrap();
    let err = tokenizer::hf::load(&path).unwrap_err().to_string();
    assert!(err.contains("not JSON"), "{err}");
}

#[test]
fn bad_training_configurations_are_refused() {
    let c = counts(&corpus(5, 1), &PreTokenizer::default());
    let too_small = TrainConfig {
        vocab_size: 200,
        ..TrainConfig::default()
    };
    assert!(train(&c, &too_small, |_, _| {}).is_err());
    let empty_special = TrainConfig {
        specials: vec![String::new()],
        ..TrainConfig::default()
    };
    assert!(train(&c, &empty_special, |_, _| {}).is_err());
}

#[test]
fn jieba_settings_travel_in_the_sidecar_of_their_own_tokenizer() {
    let texts = corpus(80, 12);
    let cfg = TrainConfig {
        vocab_size: 500,
        pre: PreTokenizer {
            han_max: 4,
            segment: Segment::JiebaLong,
        },
        ..TrainConfig::default()
    };
    let tok = train(&counts(&texts, &cfg.pre), &cfg, |_, _| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    tokenizer::hf::save(&tok, &path).unwrap();
    assert_eq!(
        tokenizer::hf::load(&path).unwrap().pre_tokenizer(),
        &cfg.pre
    );
    // a tokenizer.json changed after the sidecar was written: the sidecar no longer applies
    let mut j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    j["version"] = "1.0 ".into();
    std::fs::write(&path, j.to_string()).unwrap();
    let pre = *tokenizer::hf::load(&path).unwrap().pre_tokenizer();
    assert_eq!(pre.segment, Segment::None);
    assert_eq!(pre.han_max, 4);
}
