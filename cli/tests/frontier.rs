//! Many `zhcorpus crawl` workers on one Redis frontier, against the site farm: every page
//! stored once across the workers' stores, politeness held across workers, a worker killed
//! with SIGKILL taken over, Redis restarted (AOF) and lost mid-crawl.
//!
//! Each test starts its own `redis-server` on a free loopback port, its files in a temporary
//! folder, and stops it when done. Without `redis-server` the tests fail under `CI=true` (the
//! README's test command installs it) and say they checked nothing otherwise.

#![allow(unsafe_code)] // kill(2)

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok, run, stderr, stdout, zhcorpus};
use farm::{Farm, FarmConfig};

/// `redis-server` on the PATH: missing, a failure under `CI=true`, a note elsewhere.
fn redis_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join("redis-server");
        if p.is_file() {
            return Some(p);
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "no redis-server on the PATH: the shared frontier's tests must run in CI; the \
             README's test command installs Debian's redis-server"
        );
    }
    eprintln!(
        "NOT RUN: the shared frontier's tests need redis-server (apt-get install \
         redis-server); this test checked nothing"
    );
    None
}

/// A Redis server of the test's own, on loopback, its files in `dir`.
struct Redis {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    aof: bool,
    child: Option<Child>,
}

impl Redis {
    fn start(binary: PathBuf, dir: &Path, aof: bool) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(dir).unwrap();
        let mut r = Redis {
            binary,
            dir: dir.to_path_buf(),
            port,
            aof,
            child: None,
        };
        r.spawn();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let start = Instant::now();
        while !self.pong() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pong(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// Stops the server with SIGTERM (with AOF on, it writes what it has) and waits for it.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGTERM);
            child.wait().unwrap();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let r = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(r, 0);
}

fn farm(hosts: usize, articles: usize) -> Farm {
    Farm::start(FarmConfig {
        hosts,
        articles_per_host: articles,
        traps: false,
        crawl_delay: 0.15,
        ..FarmConfig::default()
    })
    .unwrap()
}

const DELAY: f64 = 0.1;

/// Starts a worker on `redis` into `dir/<name>.db`, with the farm's seeds.
fn worker(dir: &Path, farm: &Farm, redis: &str, name: &str, extra: &[&str]) -> Child {
    std::fs::write(dir.join("seeds.txt"), farm.seeds().join("\n") + "\n").unwrap();
    let mut args = vec!["--seeds", "seeds.txt"];
    args.extend_from_slice(extra);
    joiner(dir, redis, name, &args)
}

/// Starts a worker on `redis` into `dir/<name>.db` that joins the crawl without seeds.
fn joiner(dir: &Path, redis: &str, name: &str, extra: &[&str]) -> Child {
    zhcorpus()
        .current_dir(dir)
        .args(["crawl", "--db", &format!("{name}.db")])
        .args(["--allow-private", "--delay", &DELAY.to_string()])
        .args(["--frontier", redis, "--worker", name, "--lease-ttl", "2"])
        .args(if extra.contains(&"--concurrency") {
            &[][..]
        } else {
            &["--concurrency", "8"][..]
        })
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Successful HTML pages stored in a store, by URL.
fn stored(db: &Path) -> HashMap<String, i64> {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return HashMap::new();
    };
    let Ok(mut stmt) = conn.prepare(
        "SELECT url, count(*) FROM pages WHERE status = 200 AND body IS NOT NULL GROUP BY url",
    ) else {
        return HashMap::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// The URLs of a store's pages, the last committed first.
fn newest_first(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT url FROM pages WHERE status = 200 AND body IS NOT NULL ORDER BY id DESC")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn total_stored(dbs: &[PathBuf]) -> usize {
    dbs.iter().map(|d| stored(d).len()).sum()
}

fn wait_for(dbs: &[PathBuf], n: usize, children: &mut [&mut Child]) {
    let start = Instant::now();
    while total_stored(dbs) < n {
        for c in children.iter_mut() {
            assert!(c.try_wait().unwrap().is_none(), "a worker ended too early");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[track_caller]
fn finished(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Every HTML page of the farm once in the merged store, and in each store at most once.
fn assert_merged_once(dir: &Path, dbs: &[PathBuf], farm: &Farm) -> HashMap<String, i64> {
    let mut across: HashMap<String, i64> = HashMap::new();
    for db in dbs {
        for (url, n) in stored(db) {
            assert_eq!(n, 1, "{url} stored {n} times in {}", db.display());
            *across.entry(url).or_default() += 1;
        }
    }
    let merged = dir.join("merged.db");
    let _ = std::fs::remove_file(&merged);
    let mut args = vec!["merge".to_string(), "-o".into(), "merged.db".into()];
    args.extend(dbs.iter().map(|d| d.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(run(dir, &args));
    let merged = stored(&merged);
    let pages = farm.html_pages();
    for p in &pages {
        assert_eq!(merged.get(p), Some(&1), "{p} in the merged store");
    }
    assert_eq!(merged.len(), pages.len());
    across
}

#[test]
fn two_workers_share_the_farm_politely_and_store_every_page_once() {
    let Some(binary) = redis_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(binary, &dir.path().join("redis"), false);
    let farm = farm(8, 16);
    // two fetches at a time per worker, for 8 hosts: a, alone at first, cannot ask all its
    // hosts at once, so it hands some to b when b joins with free slots
    let slots = ["--concurrency", "2"];
    let mut a = worker(dir.path(), &farm, &redis.url(), "a", &slots);
    std::thread::sleep(Duration::from_millis(500));
    // b joins without seeds: it follows the links of the pages it is handed all the same
    let b = joiner(dir.path(), &redis.url(), "b", &slots);
    let _ = a.try_wait();
    finished(b);
    finished(a);
    let dbs = [dir.path().join("a.db"), dir.path().join("b.db")];
    let across = assert_merged_once(dir.path(), &dbs, &farm);
    // no crash: no page fetched by both
    assert!(across.values().all(|&n| n == 1), "{across:?}");
    for db in &dbs {
        assert!(!stored(db).is_empty(), "{} did no work", db.display());
    }

    // politeness across the workers, from the farm's log: one request at a time per host,
    // starts at least the delay apart (Crawl-delay on host 3), robots.txt asked once per host
    let log = farm.requests();
    for host in 0..farm.hosts.len() {
        let mut times: Vec<Duration> = log
            .iter()
            .filter(|r| r.host == host)
            .map(|r| r.at)
            .collect();
        times.sort();
        let want = if host == 3 {
            150
        } else {
            (DELAY * 1000.0) as u64
        };
        let min_gap = times.windows(2).map(|w| w[1] - w[0]).min().unwrap();
        // the server's clock: a few ms of scheduling noise
        assert!(
            min_gap >= Duration::from_millis(want - 5),
            "host {host}: requests {min_gap:?} apart, want {want} ms"
        );
        assert_eq!(farm.max_in_flight(host), 1, "host {host}");
        let robots = log
            .iter()
            .filter(|r| r.host == host && r.path == "/robots.txt")
            .count();
        assert_eq!(robots, 1, "host {host}: robots.txt asked {robots} times");
    }

    // the cluster's status: both workers, their fetches adding up to the responses stored
    let status = ok(run(
        dir.path(),
        &["crawl", "--frontier", &redis.url(), "--status", "--json"],
    ));
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(json["waiting"], 0);
    assert_eq!(json["pending"], 0);
    assert_eq!(json["partitions"].as_array().unwrap().len(), 64);
    let workers = json["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{status}");
    let pages: u64 = workers
        .iter()
        .map(|w| {
            w["fields"]["pages"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    let rows: u64 = dbs
        .iter()
        .map(|d| {
            rusqlite::Connection::open(d)
                .unwrap()
                .query_row(
                    "SELECT count(*) FROM pages WHERE status IS NOT NULL",
                    [],
                    |r| r.get::<_, u64>(0),
                )
                .unwrap()
        })
        .sum();
    assert_eq!(pages, rows, "{status}");
    let text = ok(run(
        dir.path(),
        &["crawl", "--frontier", &redis.url(), "--status"],
    ));
    assert!(text.contains("workers:") && text.contains(" a "), "{text}");
}

#[test]
fn a_worker_killed_mid_crawl_is_taken_over_and_nothing_is_lost() {
    let Some(binary) = redis_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(binary, &dir.path().join("redis"), false);
    let farm = farm(6, 24);
    let dbs = [dir.path().join("a.db"), dir.path().join("b.db")];
    let mut a = worker(dir.path(), &farm, &redis.url(), "a", &[]);
    let mut b = worker(dir.path(), &farm, &redis.url(), "b", &[]);
    wait_for(&dbs, 40, &mut [&mut a, &mut b]);
    signal(&a, libc::SIGKILL);
    a.wait().unwrap();
    let a_had = stored(&dbs[0]).len();
    assert!(a_had < farm.html_pages().len());
    let started = Instant::now();
    finished(b);
    // b waited out a's leases (2 s) and finished a's hosts
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let across = assert_merged_once(dir.path(), &dbs, &farm);
    // at-least-once: a page is in both stores only when a died between committing it and
    // telling Redis (acknowledgements go in groups, at the next upkeep, every 0.25 s, or once
    // 256 wait), so only the pages of a's last quarter second
    // can be: with one request per host every 0.1 s, at most three pages per host, and they
    // are the newest rows of a's store
    let mut in_both: Vec<&String> = across
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(u, _)| u)
        .collect();
    let both = in_both.len();
    assert!(both <= 3 * farm.hosts.len(), "{both} pages in both stores");
    let mut newest = newest_first(&dbs[0]);
    newest.truncate(both);
    newest.sort();
    in_both.sort();
    assert_eq!(
        in_both,
        newest.iter().collect::<Vec<_>>(),
        "the pages in both stores are not the last ones a committed"
    );
    // what a had in flight was fetched again by b; nothing else was fetched twice
    let a_pages = stored(&dbs[0]);
    let b_pages = stored(&dbs[1]);
    let mut asked: HashMap<(usize, &str), usize> = HashMap::new();
    let log = farm.requests();
    for r in &log {
        *asked.entry((r.host, r.path.as_str())).or_default() += 1;
    }
    let twice: Vec<_> = asked.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.len() <= 8 + both,
        "{} URLs fetched twice",
        twice.len()
    );
    for ((host, path), _) in &twice {
        if *path == "/robots.txt" {
            continue;
        }
        let url = format!("{}{path}", farm.hosts[*host]);
        assert!(
            b_pages.contains_key(&url),
            "{url} fetched twice, not stored by b"
        );
        assert!(
            !a_pages.contains_key(&url) || in_both.contains(&&url),
            "{url} fetched twice, stored by a and not one of its last pages"
        );
    }
}

#[test]
fn redis_restarted_with_aof_mid_crawl_and_the_crawl_completes() {
    let Some(binary) = redis_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Redis::start(binary, &dir.path().join("redis"), true);
    let farm = farm(4, 30);
    let dbs = [dir.path().join("a.db"), dir.path().join("b.db")];
    let mut a = worker(dir.path(), &farm, &redis.url(), "a", &[]);
    let mut b = worker(dir.path(), &farm, &redis.url(), "b", &[]);
    wait_for(&dbs, 30, &mut [&mut a, &mut b]);
    redis.restart();
    finished(a);
    finished(b);
    let across = assert_merged_once(dir.path(), &dbs, &farm);
    assert!(across.values().all(|&n| n == 1), "{across:?}");
}

#[test]
fn redis_lost_stops_the_worker_with_a_clear_error_and_the_rerun_loses_nothing() {
    let Some(binary) = redis_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Redis::start(binary, &dir.path().join("redis"), true);
    let farm = farm(4, 30);
    std::fs::write(
        dir.path().join("crawl.toml"),
        "[shared]\ngive_up_after = 2\n",
    )
    .unwrap();
    let dbs = [dir.path().join("a.db")];
    let mut a = worker(
        dir.path(),
        &farm,
        &redis.url(),
        "a",
        &["--config", "crawl.toml"],
    );
    wait_for(&dbs, 20, &mut [&mut a]);
    redis.stop();
    let start = Instant::now();
    let out = a.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&redis.url()) && err.contains("unreachable for"),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    let kept = stored(&dbs[0]).len();
    assert!(kept >= 20);
    let integrity: String = rusqlite::Connection::open(&dbs[0])
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    // Redis back (its AOF kept the queues): the same command finishes the crawl
    redis.spawn();
    finished(worker(
        dir.path(),
        &farm,
        &redis.url(),
        "a",
        &["--config", "crawl.toml"],
    ));
    let pages = stored(&dbs[0]);
    for p in farm.html_pages() {
        assert_eq!(pages.get(&p), Some(&1), "{p}");
    }
}

#[test]
fn an_unreachable_frontier_exits_2_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let out = run(
        dir.path(),
        &[
            "crawl",
            "--db",
            "w.db",
            "--frontier",
            &url,
            "--allow-private",
            "http://127.0.0.1:9/",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&url), "{}", stderr(&out));
    assert!(!dir.path().join("w.db").exists());
    let out = run(
        dir.path(),
        &["crawl", "--frontier", "http://x/", "--status"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_url_stored_but_not_acknowledged_is_acknowledged_without_a_fetch() {
    let Some(binary) = redis_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(binary, &dir.path().join("redis"), false);
    let farm = farm(4, 6);
    finished(worker(dir.path(), &farm, &redis.url(), "a", &[]));
    let before = farm.requests().len();
    // what a worker killed between its commit and its acknowledgement leaves: the URL of a
    // page in its store, pending to a consumer that is gone (in every partition's stream,
    // wherever its host falls)
    let url = &farm.html_pages()[3];
    let host = url.trim_start_matches("http://").split('/').next().unwrap();
    let entry = format!(r#"{{"url":"{url}","host":"{host}","depth":1}}"#);
    for p in 0..64 {
        let key = format!("zhcorpus:q:{p}");
        redis_cli(redis.port, &["XADD", &key, "*", "u", &entry]);
        redis_cli(
            redis.port,
            &[
                "XREADGROUP",
                "GROUP",
                "crawl",
                "gone",
                "COUNT",
                "1",
                "STREAMS",
                &key,
                ">",
            ],
        );
    }
    let status = ok(run(
        dir.path(),
        &["crawl", "--frontier", &redis.url(), "--status", "--json"],
    ));
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(json["pending"], 64, "{status}");
    // the same worker on its store: claims them, finds the page stored, fetches nothing
    finished(worker(dir.path(), &farm, &redis.url(), "a", &[]));
    assert_eq!(farm.requests().len(), before);
    let status = ok(run(
        dir.path(),
        &["crawl", "--frontier", &redis.url(), "--status", "--json"],
    ));
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(json["pending"], 0, "{status}");
    assert_eq!(json["waiting"], 0, "{status}");
    assert_eq!(stored(&dir.path().join("a.db")).get(url.as_str()), Some(&1));
}

/// Waits for a worker to end, killing it and failing after `secs`.
#[track_caller]
fn finished_within(mut child: Child, secs: u64) -> String {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("the worker did not end in {secs} s:\n{}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    finished(child)
}

#[test]
fn hosts_at_their_page_limit_do_not_keep_the_workers_waiting() {
    let Some(binary) = redis_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(binary, &dir.path().join("redis"), false);
    let farm = farm(4, 30);
    let limit = ["--max-pages-per-host", "5"];
    let a = worker(dir.path(), &farm, &redis.url(), "a", &limit);
    let b = worker(dir.path(), &farm, &redis.url(), "b", &limit);
    // the URLs over the limit stay queued in Redis; the crawl still ends
    finished_within(a, 60);
    finished_within(b, 60);
    for db in ["a.db", "b.db"] {
        let conn = rusqlite::Connection::open(dir.path().join(db)).unwrap();
        let most: i64 = conn
            .query_row(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM frontier
                 WHERE state = 'done' AND kind = 'page' GROUP BY host)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(most <= 5, "{db}: {most} pages of one host");
    }
    let status = ok(run(
        dir.path(),
        &["crawl", "--frontier", &redis.url(), "--status", "--json"],
    ));
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(json["waiting"].as_u64().unwrap() + json["pending"].as_u64().unwrap() > 0);
}
