//! `zhcorpus crawl` as a process against the site farm: killed with SIGKILL mid-crawl and
//! started again, stopped with SIGINT, its status read from the database.

#![allow(unsafe_code)] // kill(2)

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{ok, run, stderr, stdout, zhcorpus};
use farm::{Farm, FarmConfig};

fn stored_pages(db: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return 0;
    };
    conn.query_row(
        "SELECT count(*) FROM pages WHERE status = 200 AND body IS NOT NULL",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

fn start_crawl(dir: &Path, farm: &Farm) -> Child {
    std::fs::write(dir.join("seeds.txt"), farm.seeds().join("\n") + "\n").unwrap();
    zhcorpus()
        .current_dir(dir)
        .args([
            "crawl",
            "--db",
            "corpus.db",
            "--seeds",
            "seeds.txt",
            "--allow-private",
            "--delay",
            "0.03",
            "--concurrency",
            "8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_pages(db: &Path, child: &mut Child, n: i64) {
    let start = Instant::now();
    while stored_pages(db) < n {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the crawl ended too early"
        );
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let r = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(r, 0);
}

/// Every HTML page of the farm is stored exactly once.
fn assert_every_page_once(db: &Path, farm: &Farm) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT url, count(*) FROM pages WHERE status = 200 AND body IS NOT NULL GROUP BY url",
        )
        .unwrap();
    let stored: HashMap<String, i64> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let pages = farm.html_pages();
    for p in &pages {
        assert_eq!(stored.get(p), Some(&1), "{p}");
    }
    assert_eq!(stored.len(), pages.len());
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

fn farm() -> Farm {
    Farm::start(FarmConfig {
        articles_per_host: 60,
        traps: false,
        crawl_delay: 0.05,
        ..FarmConfig::default()
    })
    .unwrap()
}

#[test]
fn kill_9_mid_crawl_then_resume_stores_every_page_once() {
    let farm = farm();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let mut child = start_crawl(dir.path(), &farm);
    wait_for_pages(&db, &mut child, 60);
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let before = stored_pages(&db);
    assert!(before < farm.html_pages().len() as i64);

    // the status of a crawl that died: read from the database alone
    let status = ok(run(dir.path(), &["crawl", "--db", "corpus.db", "--status"]));
    assert!(status.contains("interrupted"), "{status}");
    let queued: u64 = status
        .split("frontier: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(queued > 0, "{status}");
    assert!(status.contains("pages: "), "{status}");

    let requests_before = farm.requests().len();
    let out = start_crawl(dir.path(), &farm).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_every_page_once(&db, &farm);
    // what was stored was not fetched again (robots.txt neither: it is kept for 24 hours);
    // only the fetches in flight at the kill, at most the concurrency, were repeated
    let log = farm.requests();
    let mut asked: HashMap<(usize, &str), usize> = HashMap::new();
    for r in &log {
        *asked.entry((r.host, r.path.as_str())).or_default() += 1;
    }
    let repeated = asked.values().filter(|&&n| n > 1).count();
    assert!(repeated <= 8, "{repeated} URLs fetched twice");
    assert!(
        log[requests_before..]
            .iter()
            .all(|r| r.path != "/robots.txt")
    );

    let status = ok(run(
        dir.path(),
        &["crawl", "--db", "corpus.db", "--status", "--json"],
    ));
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(json["frontier"]["queued"], serde_json::Value::Null);
    assert_eq!(json["last_run"][2], "done");
}

#[test]
fn ctrl_c_stops_cleanly_and_the_same_command_resumes() {
    let farm = farm();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let mut child = start_crawl(dir.path(), &farm);
    wait_for_pages(&db, &mut child, 40);
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    // interrupted: 130, as a shell reports a command ended by Ctrl-C
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("run the same command to resume"),
        "{}",
        stdout(&out)
    );
    let status = ok(run(dir.path(), &["crawl", "--db", "corpus.db", "--status"]));
    assert!(status.starts_with("last crawl stopped"), "{status}");

    let out = start_crawl(dir.path(), &farm).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_every_page_once(&db, &farm);
}

#[test]
fn bad_seeds_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("seeds.txt"),
        "# news\nhttp://a.test/\nnot a url\n",
    )
    .unwrap();
    let out = run(dir.path(), &["crawl", "--seeds", "seeds.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("seeds.txt:3"), "{}", stderr(&out));
    let out = run(dir.path(), &["crawl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no seeds"), "{}", stderr(&out));
    let out = run(dir.path(), &["crawl", "--seeds", "missing.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.txt"), "{}", stderr(&out));
}
