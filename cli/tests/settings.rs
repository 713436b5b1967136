//! Settings resolve the same way for every stage command: `--print-config` prints a file that
//! `--config` reads back to the same settings (and the same results), flags override the
//! file, and a bad file exits 2 naming the file, the line and the key.

mod common;

use std::path::Path;

use common::*;

/// Every stage command, with what it needs besides its settings to print them.
fn commands(dir: &Path) -> Vec<Vec<String>> {
    // train reads the vocabulary from a shard folder
    write_jsonl(&dir.join("d.jsonl"), &tests::generate_documents(20, 3));
    ok(run(
        dir,
        &[
            "tokenizer",
            "encode",
            "-i",
            "d.jsonl",
            "-t",
            "bytes",
            "-o",
            "shards",
        ],
    ));
    [
        "import -i d.jsonl",
        "crawl",
        "clean",
        "dedup",
        "tokenizer train",
        "tokenizer encode",
        "quality train",
        "train --data shards --output run",
    ]
    .iter()
    .map(|c| c.split(' ').map(str::to_string).collect())
    .collect()
}

fn with(cmd: &[String], extra: &[&str]) -> Vec<String> {
    let mut v = cmd.to_vec();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_args(dir: &Path, args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(dir, &refs)
}

#[test]
fn printed_settings_read_back_to_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in commands(dir.path()) {
        let printed = ok(run_args(dir.path(), &with(&cmd, &["--print-config"])));
        assert!(printed.contains(" = "), "{cmd:?}: {printed}");
        std::fs::write(dir.path().join("s.toml"), &printed).unwrap();
        let again = ok(run_args(
            dir.path(),
            &with(&cmd, &["--config", "s.toml", "--print-config"]),
        ));
        assert_eq!(printed, again, "{cmd:?}");
    }
    // the pipeline's starting file, and its settings read back
    let start = ok(run(dir.path(), &["pipeline", "--print-config"]));
    assert!(start.starts_with("# zhcorpus pipeline settings"), "{start}");
    std::fs::write(dir.path().join("p.toml"), &start).unwrap();
    let printed = ok(run(
        dir.path(),
        &["pipeline", "--config", "p.toml", "--print-config"],
    ));
    std::fs::write(dir.path().join("p2.toml"), &printed).unwrap();
    let again = ok(run(
        dir.path(),
        &["pipeline", "--config", "p2.toml", "--print-config"],
    ));
    assert_eq!(printed, again);
}

#[test]
fn flags_override_the_file_which_overrides_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("d.toml"),
        "threshold = 0.7\nnum_perm = 64\n",
    )
    .unwrap();
    let printed = ok(run(
        dir.path(),
        &[
            "dedup",
            "--config",
            "d.toml",
            "--num-perm",
            "96",
            "--print-config",
        ],
    ));
    assert!(printed.contains("threshold = 0.7\n"), "{printed}");
    assert!(printed.contains("num_perm = 96\n"), "{printed}");
    assert!(printed.contains("ngram = 5\n"), "{printed}");
}

#[test]
fn a_printed_config_gives_the_same_run_as_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let mut docs = tests::generate_documents(300, 5);
    for d in &mut docs {
        d.text = d.text.repeat(4);
    }
    write_jsonl(&dir.path().join("in.jsonl"), &docs);
    let flags = [
        "--strict",
        "--no-default-words",
        "--quality-threshold",
        "0.4",
    ];
    let mut args = vec!["clean", "-i", "in.jsonl", "-o", "a.jsonl"];
    args.extend(flags);
    let by_flags = ok(run(dir.path(), &args));
    let mut print = vec!["clean"];
    print.extend(flags);
    print.push("--print-config");
    std::fs::write(dir.path().join("c.toml"), ok(run(dir.path(), &print))).unwrap();
    let by_file = ok(run(
        dir.path(),
        &[
            "clean", "-i", "in.jsonl", "-o", "b.jsonl", "--config", "c.toml",
        ],
    ));
    let counts = |s: &str| s.split(" in ").next().unwrap().to_string();
    assert_eq!(counts(&by_flags), counts(&by_file));
    assert_eq!(
        std::fs::read(dir.path().join("a.jsonl")).unwrap(),
        std::fs::read(dir.path().join("b.jsonl")).unwrap()
    );
}

#[test]
fn an_unknown_key_or_a_wrong_type_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in commands(dir.path()) {
        std::fs::write(dir.path().join("bad.toml"), "# settings\nno_such_key = 1\n").unwrap();
        let o = run_args(
            dir.path(),
            &with(&cmd, &["--config", "bad.toml", "--print-config"]),
        );
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("bad.toml:2") && err.contains("no_such_key"),
            "{cmd:?}: {err}"
        );
    }
    for (cmd, text, key) in [
        (vec!["dedup"], "\nthreshold = \"high\"\n", "threshold"),
        (vec!["crawl"], "\n\n[fetch]\ntimeout = -1\n", "timeout"),
        (
            vec!["clean"],
            "[rules]\nmin_chars = \"many\"\n",
            "min_chars",
        ),
        (
            vec!["tokenizer", "train"],
            "vocab_size = 1.5\n",
            "vocab_size",
        ),
    ] {
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        let mut args = cmd.clone();
        args.extend(["--config", "bad.toml", "--print-config"]);
        let o = run(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", stderr(&o));
        let line = text.lines().position(|l| l.contains(key)).unwrap() + 1;
        let err = stderr(&o);
        assert!(
            err.contains(&format!("bad.toml:{line}")) && err.contains(key),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn settings_that_cannot_work_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (args, key) in [
        (
            vec!["crawl", "--concurrency", "0", "http://a.cn/"],
            "concurrency",
        ),
        (vec!["crawl", "--per-host", "0", "http://a.cn/"], "per_host"),
        (
            vec!["tokenizer", "train", "--char-coverage", "1.5"],
            "char_coverage",
        ),
        (vec!["tokenizer", "train", "--han-max", "0"], "han_max"),
        (
            vec!["tokenizer", "train", "--memory-mib", "86"],
            "memory_mib",
        ),
        (vec!["dedup", "--threshold", "1.5"], "threshold"),
        (
            vec!["clean", "--quality-threshold", "2"],
            "quality_threshold",
        ),
    ] {
        let mut a = args.clone();
        a.push("--print-config");
        let o = run(dir.path(), &a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(key), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn flag_values_are_never_dropped_and_never_reset_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &["train", "--print-config", "--seed", "18446744073709551615"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("seed"), "{}", stderr(&o));
    std::fs::write(dir.path().join("t.toml"), "[optim]\nmin_lr = 0.0\n").unwrap();
    let printed = ok(run(
        dir.path(),
        &[
            "train",
            "--print-config",
            "--config",
            "t.toml",
            "--lr",
            "0.001",
        ],
    ));
    assert!(printed.contains("lr = 0.001\nmin_lr = 0.0\n"), "{printed}");
    let printed = ok(run(
        dir.path(),
        &["train", "--print-config", "--lr", "0.001"],
    ));
    assert!(printed.contains("min_lr = 0.0001\n"), "{printed}");
}
