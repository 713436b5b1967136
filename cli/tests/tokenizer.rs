//! `zhcorpus tokenizer train` and `encode`: files and database agree, shards read back into the
//! documents, bad input is named.

mod common;

use common::{ok, run, stderr, write_jsonl};
use corpus::Document;
use corpus::shards::{self, Manifest, Split};

/// Documents with repeated words, English, digits and punctuation.
fn documents(n: usize) -> Vec<Document> {
    let mut rng = tests::Rng::new(21);
    let words = [
        "北京大学",
        "人工智能",
        "数据",
        "模型",
        "训练",
        "the corpus",
        "中文",
    ];
    (0..n)
        .map(|i| {
            let text = format!(
                "{}{}，{}在{}年。{} {}",
                words[i % words.len()],
                tests::generate_text(&mut rng, 30),
                words[(i * 3) % words.len()],
                1990 + i % 30,
                tests::generate_text(&mut rng, 20),
                words[(i * 5) % words.len()],
            );
            Document::new(format!("doc-{i:04}"), text)
        })
        .collect()
}

/// All tokens of a shard folder's shards of one split, in order.
fn split_tokens(dir: &std::path::Path, split: Split) -> Vec<u32> {
    let m = Manifest::read(dir).unwrap();
    m.shards
        .iter()
        .filter(|s| s.split == split)
        .flat_map(|s| shards::read_tokens(&dir.join(&s.file)).unwrap())
        .collect()
}

#[test]
fn files_and_database_train_and_encode_alike() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let docs = documents(300);
    write_jsonl(&d.join("in.jsonl"), &docs);
    ok(run(d, &["import", "--input", "in.jsonl"]));

    let out = ok(run(
        d,
        &[
            "tokenizer",
            "train",
            "-i",
            "in.jsonl",
            "--vocab-size",
            "700",
            "-o",
            "file/tokenizer.json",
        ],
    ));
    assert!(out.contains("trained a 700-token vocabulary"), "{out}");
    ok(run(
        d,
        &[
            "tokenizer",
            "train",
            "--vocab-size",
            "700",
            "-o",
            "db/tokenizer.json",
        ],
    ));
    let file_json = std::fs::read(d.join("file/tokenizer.json")).unwrap();
    assert_eq!(
        file_json,
        std::fs::read(d.join("db/tokenizer.json")).unwrap()
    );
    for other in ["vocab.json", "merges.txt", "tokenizer.zhcorpus.json"] {
        assert!(d.join("file").join(other).exists(), "{other}");
    }

    let args = |input: bool, out: &'static str| {
        let mut a = vec![
            "tokenizer",
            "encode",
            "-t",
            "file/tokenizer.json",
            "-o",
            out,
        ];
        a.extend(["--val-fraction", "0.2", "--shard-tokens", "1000"]);
        if input {
            a.extend(["-i", "in.jsonl"]);
        }
        a
    };
    let out = ok(run(d, &args(true, "shards-file")));
    assert!(out.contains("encoded 300 documents"), "{out}");
    ok(run(d, &args(false, "shards-db")));
    let (f, b) = (d.join("shards-file"), d.join("shards-db"));
    assert_eq!(Manifest::read(&f).unwrap(), Manifest::read(&b).unwrap());
    for split in [Split::Train, Split::Val] {
        assert_eq!(split_tokens(&f, split), split_tokens(&b, split));
    }

    // the shards hold <|endoftext|> then each document, in order, split by id
    let m = Manifest::read(&f).unwrap();
    assert!(m.shards.len() > 2 && m.shards.iter().all(|s| s.tokens <= 1000));
    assert_eq!(m.vocab_size, 700);
    assert!(
        m.documents.val > 20 && m.documents.train > 150,
        "{:?}",
        m.documents
    );
    let tok = tokenizer::hf::load(&f.join("tokenizer.json")).unwrap();
    assert_eq!(m.end_of_text, tok.special("<|endoftext|>").unwrap());
    for split in [Split::Train, Split::Val] {
        let stream = split_tokens(&f, split);
        let decoded: Vec<String> = stream
            .split(|&t| t == m.end_of_text)
            .skip(1)
            .map(|ids| tok.decode(ids).unwrap())
            .collect();
        let expected: Vec<&str> = docs
            .iter()
            .filter(|doc| Split::of(&doc.id, 0.2) == split)
            .map(|doc| doc.text.as_str())
            .collect();
        assert_eq!(decoded, expected);
    }
}

#[test]
fn bytes_and_text_files_encode() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("lines.txt"), "第一行文字\n\n第二行 ok\n").unwrap();
    let out = ok(run(
        d,
        &[
            "tokenizer",
            "encode",
            "-t",
            "bytes",
            "-i",
            "lines.txt",
            "-o",
            "b",
            "--val-fraction",
            "0",
        ],
    ));
    assert!(out.contains("encoded 2 documents"), "{out}");
    let m = Manifest::read(&d.join("b")).unwrap();
    assert_eq!(
        (m.vocab_size, m.end_of_text, m.tokenizer.as_str()),
        (257, 256, "bytes")
    );
    let mut expected = vec![256];
    expected.extend("第一行文字".bytes().map(u32::from));
    expected.push(256);
    expected.extend("第二行 ok".bytes().map(u32::from));
    assert_eq!(split_tokens(&d.join("b"), Split::Train), expected);
    assert!(!d.join("b/tokenizer.json").exists());
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_jsonl(&d.join("in.jsonl"), &documents(5));
    std::fs::write(d.join("bad.json"), "{\"model\": 1}").unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["tokenizer", "train", "-i", "missing.jsonl"],
            "missing.jsonl",
        ),
        (
            &[
                "tokenizer",
                "train",
                "-i",
                "in.jsonl",
                "--vocab-size",
                "100",
            ],
            "vocab_size: must be at least 257",
        ),
        (
            &[
                "tokenizer",
                "encode",
                "-t",
                "bad.json",
                "-i",
                "in.jsonl",
                "-o",
                "s",
            ],
            "bad.json: not a BPE model",
        ),
        (
            &[
                "tokenizer",
                "encode",
                "-t",
                "bytes",
                "-i",
                "in.jsonl",
                "-o",
                "s",
                "--val-fraction",
                "1.5",
            ],
            "val_fraction: must be in [0, 1)",
        ),
    ];
    for (args, expected) in cases {
        let o = run(d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
}

/// Standard input cannot be read twice: bounded, its piece table is pruned in one pass instead
/// of sampled in a second.
#[test]
fn a_bounded_training_from_standard_input_prunes_in_one_pass() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = tests::Rng::new(43);
    let mut jsonl = String::new();
    for i in 0..8_000 {
        let d = Document::new(format!("d{i}"), tests::generate_text(&mut rng, 100));
        jsonl.push_str(&d.to_json());
        jsonl.push('\n');
    }
    let mut child = common::zhcorpus()
        .current_dir(dir.path())
        .args(["tokenizer", "train", "-i", "-", "--vocab-size", "400"])
        .args(["--memory-mib", "41", "-o", "tok/tokenizer.json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(jsonl.as_bytes()).unwrap());
    let out = ok(child.wait_with_output().unwrap());
    writer.join().unwrap();
    assert!(out.contains("on 8000 documents"), "{out}");
    assert!(
        out.contains("was pruned") && !out.contains("sample"),
        "{out}"
    );
    assert!(dir.path().join("tok/tokenizer.json").exists());
}
