//! The crawler against the site farm: real HTTP servers on loopback, a real SQLite file.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::time::Duration;

use corpus::{NoProgress, Store};
use crawler::{Config, FetchConfig, Report};
use farm::{Farm, FarmConfig};

fn quick_fetch() -> FetchConfig {
    FetchConfig {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(700),
        timeout: Duration::from_millis(1500),
        allow_private: true,
        ..FetchConfig::default()
    }
}

fn config(farm: &Farm) -> Config {
    Config {
        seeds: farm.seeds(),
        fetch: quick_fetch(),
        delay: Duration::from_millis(10),
        max_attempts: 2,
        max_query_variants: 12,
        ..Config::default()
    }
}

fn crawl(store: &mut Store, config: Config) -> Report {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(crawler::crawl(
        store,
        config,
        &NoProgress,
        std::future::pending(),
    ))
    .unwrap()
}

fn query<T: rusqlite::types::FromSql>(db: &std::path::Path, sql: &str) -> Vec<T> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Character-bigram F1 of two texts, whitespace ignored.
fn f1(got: &str, want: &str) -> f64 {
    let grams = |s: &str| {
        let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
        let mut m: HashMap<(char, char), usize> = HashMap::new();
        for w in chars.windows(2) {
            *m.entry((w[0], w[1])).or_default() += 1;
        }
        m
    };
    let (g, w) = (grams(got), grams(want));
    let common: usize = g
        .iter()
        .map(|(k, n)| (*n).min(*w.get(k).unwrap_or(&0)))
        .sum();
    let (gn, wn): (usize, usize) = (g.values().sum(), w.values().sum());
    if common == 0 {
        return 0.0;
    }
    let p = common as f64 / gn as f64;
    let r = common as f64 / wn as f64;
    2.0 * p * r / (p + r)
}

#[test]
fn crawls_the_farm_completely_and_politely() {
    let farm = Farm::start(FarmConfig {
        crawl_delay: 0.1,
        ..FarmConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let mut store = Store::open(&db).unwrap();
    let mut cfg = config(&farm);
    cfg.fetch.user_agent = "zhcorpus-test/1 (+http://example.invalid/crawl)".into();
    cfg.warc = Some(dir.path().join("warc"));
    cfg.fetch.keep_raw = true;
    let report = crawl(&mut store, cfg);
    let log = farm.requests();

    // every HTML page stored exactly once, with status 200
    let stored: Vec<String> = query(
        &db,
        "SELECT url FROM pages WHERE status = 200 AND body IS NOT NULL",
    );
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for u in &stored {
        *counts.entry(u.as_str()).or_default() += 1;
    }
    for page in farm.html_pages() {
        assert_eq!(
            counts.get(page.as_str()),
            Some(&1),
            "{page} stored {:?} times",
            counts.get(page.as_str())
        );
    }
    assert!(counts.values().all(|&n| n == 1));

    // every article's document holds its text, whatever its charset
    let conn = rusqlite::Connection::open(&db).unwrap();
    for a in farm.articles() {
        let (text, title): (String, Option<String>) = conn
            .query_row(
                "SELECT d.text, d.title FROM documents d JOIN pages p ON d.page_id = p.id
                 WHERE p.url = ?1",
                [&a.url],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or_else(|e| panic!("{}: no document: {e}", a.url));
        let score = f1(&text, &a.text);
        assert!(
            score > 0.97,
            "{}: F1 {score:.3}\n{text}\n--- want\n{}",
            a.url,
            a.text
        );
        assert_eq!(title.as_deref(), Some(a.title.as_str()), "{}", a.url);
    }
    assert!(farm.articles().iter().any(|a| a.sitemap_only));

    // robots.txt obeyed: nothing under /private/ was asked for; it was asked first, per host
    assert!(
        log.iter().all(|r| !r.path.starts_with("/private/")),
        "a disallowed path was requested"
    );
    for host in 0..farm.hosts.len() {
        let first = log.iter().find(|r| r.host == host).unwrap();
        assert_eq!(first.path, "/robots.txt");
        assert_eq!(
            log.iter()
                .filter(|r| r.host == host && r.path == "/robots.txt")
                .count(),
            1
        );
    }
    assert_eq!(report.robots_disallowed, 2 * farm.hosts.len() as u64);
    // the host outside the scope was never contacted
    assert!(log.iter().all(|r| r.host != usize::MAX));
    assert!(
        log.iter()
            .all(|r| r.user_agent.starts_with("zhcorpus-test/1"))
    );

    // no URL asked twice but the ones that failed and were retried
    let mut asked: HashMap<(usize, &str), usize> = HashMap::new();
    for r in &log {
        *asked.entry((r.host, r.path.as_str())).or_default() += 1;
    }
    let retried: HashSet<&str> = ["/busy.html", "/broken", "/slow.html", "/hang.html"].into();
    for ((host, path), n) in &asked {
        if !retried.contains(path) {
            assert_eq!(*n, 1, "host {host} {path} asked {n} times");
        }
    }
    // 429 with Retry-After: 1 second later it worked
    let busy: Vec<_> = log.iter().filter(|r| r.path == "/busy.html").collect();
    assert_eq!(busy.len(), 2);
    assert!(busy[1].at - busy[0].at >= Duration::from_millis(950));

    // traps end
    let calendar = log
        .iter()
        .filter(|r| r.path.starts_with("/calendar"))
        .count();
    assert!(calendar <= 13, "calendar asked {calendar} times");
    let deep = log.iter().filter(|r| r.path.starts_with("/deep/")).count();
    assert!(deep <= 3, "deep asked {deep} times");
    let chain = log.iter().filter(|r| r.path.starts_with("/chain/")).count();
    assert_eq!(chain, 6, "chain: the first request and 5 redirects");
    assert_eq!(
        log.iter().filter(|r| r.path.starts_with("/loop/")).count(),
        2
    );
    assert!(report.traps > 0);

    // failures are rows with their class
    let class = |url: &str| -> Vec<String> {
        query(
            &db,
            &format!(
                "SELECT coalesce(error_class, '') FROM pages WHERE url = '{}{url}'",
                farm.hosts[0]
            ),
        )
    };
    assert_eq!(class("/bomb.html"), ["compression_bomb"]);
    assert_eq!(class("/huge.html"), ["too_large"]);
    assert_eq!(class("/photo.jpg"), ["content_type"]);
    assert_eq!(class("/hang.html"), ["timeout"]);
    assert_eq!(class("/slow.html"), ["timeout"]);
    assert_eq!(class("/gone"), ["http"]);
    assert_eq!(class("/broken"), ["http"]);
    assert_eq!(class("/chain/5"), ["too_many_redirects"]);
    assert_eq!(class("/busy.html"), [""]);
    assert_eq!(
        query::<i64>(
            &db,
            "SELECT count(*) FROM frontier WHERE state IN ('queued', 'in_flight')"
        ),
        [0]
    );
    assert!(!report.stopped);

    // image candidates with captions came along
    let captions: Vec<String> = query(
        &db,
        "SELECT caption FROM image_text WHERE caption IS NOT NULL",
    );
    assert!(captions.iter().any(|c| c.contains("现场照片")));

    // the WARC file: every record's length and SHA-1 digests check out
    let warc = &report.warc_files;
    assert_eq!(warc.len(), 1);
    let records = check_warc(std::path::Path::new(&warc[0]));
    assert_eq!(records.get("warcinfo"), Some(&1));
    assert!(records.get("response").copied().unwrap_or(0) >= farm.html_pages().len());
    assert_eq!(records.get("response"), records.get("request"));
}

/// Reads a WARC file of gzip members, checks every record's Content-Length and digests, and
/// counts records by type.
fn check_warc(path: &std::path::Path) -> HashMap<String, usize> {
    use sha1::Digest;
    let raw = std::fs::read(path).unwrap();
    let mut data = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut data)
        .unwrap();
    let mut counts = HashMap::new();
    let mut at = 0;
    while at < data.len() {
        let head_end = at
            + data[at..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap();
        let head = std::str::from_utf8(&data[at..head_end]).unwrap();
        assert!(head.starts_with("WARC/1.1\r\n"), "{head}");
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_string)
        };
        let len: usize = field("Content-Length").unwrap().parse().unwrap();
        let block = &data[head_end + 4..head_end + 4 + len];
        let digest = format!(
            "sha1:{}",
            data_encoding::BASE32.encode(&sha1::Sha1::digest(block))
        );
        assert_eq!(field("WARC-Block-Digest").unwrap(), digest);
        let kind = field("WARC-Type").unwrap();
        if kind == "response" {
            let body_at = block.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let payload = format!(
                "sha1:{}",
                data_encoding::BASE32.encode(&sha1::Sha1::digest(&block[body_at..]))
            );
            assert_eq!(field("WARC-Payload-Digest").unwrap(), payload);
        }
        *counts.entry(kind).or_default() += 1;
        at = head_end + 4 + len;
        assert_eq!(&data[at..at + 4], b"\r\n\r\n");
        at += 4;
    }
    counts
}

#[test]
fn per_host_delay_and_concurrency_hold() {
    let farm = Farm::start(FarmConfig {
        articles_per_host: 8,
        latency: Duration::from_millis(30),
        crawl_delay: 0.4,
        traps: false,
        ..FarmConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("corpus.db")).unwrap();
    let mut cfg = config(&farm);
    cfg.delay = Duration::from_millis(200);
    cfg.per_host = 1;
    cfg.concurrency = 16;
    let report = crawl(&mut store, cfg);
    assert_eq!(report.errors.len(), 0, "{:?}", report.errors);
    let log = farm.requests();
    for host in 0..farm.hosts.len() {
        let times: Vec<Duration> = log
            .iter()
            .filter(|r| r.host == host)
            .map(|r| r.at)
            .collect();
        let want = if host == 3 { 400 } else { 200 };
        let min_gap = times.windows(2).map(|w| w[1] - w[0]).min().unwrap();
        // the server's clock: allow a few ms of scheduling noise
        assert!(
            min_gap >= Duration::from_millis(want - 5),
            "host {host}: requests {min_gap:?} apart, want {want} ms"
        );
        assert_eq!(farm.max_in_flight(host), 1, "host {host}");
    }
    // hosts were crawled side by side: the crawl took about as long as the slowest host
    let host3 = log.iter().filter(|r| r.host == 3).count() as f64;
    assert!(
        report.elapsed_s < host3 * 0.4 + 2.0,
        "{} s",
        report.elapsed_s
    );
}

#[test]
fn two_connections_per_host_when_asked() {
    let farm = Farm::start(FarmConfig {
        articles_per_host: 12,
        latency: Duration::from_millis(150),
        traps: false,
        crawl_delay: 0.0,
        ..FarmConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("corpus.db")).unwrap();
    let mut cfg = config(&farm);
    cfg.delay = Duration::from_millis(20);
    cfg.per_host = 2;
    crawl(&mut store, cfg);
    for host in 0..farm.hosts.len() {
        assert_eq!(farm.max_in_flight(host), 2, "host {host}");
    }
}

#[test]
fn private_addresses_are_refused_without_the_flag() {
    let farm = Farm::start(FarmConfig {
        articles_per_host: 2,
        traps: false,
        ..FarmConfig::default()
    })
    .unwrap();
    let port = farm::addr_of(&farm.hosts[0]).unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let mut store = Store::open(&db).unwrap();
    let mut cfg = config(&farm);
    cfg.seeds = vec![
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::1]:{port}/"),
    ];
    cfg.fetch.allow_private = false;
    // seeds that are private addresses are refused before anything starts
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(crawler::crawl(
            &mut store,
            cfg.clone(),
            &NoProgress,
            std::future::pending(),
        ))
        .unwrap_err();
    assert!(
        err.is_bad_input() && err.to_string().contains("--allow-private"),
        "{err}"
    );
    assert!(
        query::<i64>(&db, "SELECT count(*) FROM runs")[0] == 0,
        "nothing recorded"
    );
    // and every connection is checked: the client refuses each of them
    let client = crawler::fetch::Client::new(cfg.fetch.clone()).unwrap();
    for seed in &cfg.seeds {
        let url = url::Url::parse(seed).unwrap();
        let got = rt.block_on(client.fetch(&url, crawler::fetch::Want::Any, &|_| true));
        let e = got.err().unwrap_or_else(|| panic!("{seed} was fetched"));
        assert_eq!(
            e.class,
            crawler::ErrorClass::PrivateAddress,
            "{seed}: {}",
            e.message
        );
    }
    assert!(farm.requests().is_empty(), "{:?}", farm.requests());
}

#[test]
fn limits_and_scope() {
    let farm = Farm::start(FarmConfig {
        articles_per_host: 25,
        traps: false,
        ..FarmConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // depth 0: the seeds only
    let db = dir.path().join("depth.db");
    let mut store = Store::open(&db).unwrap();
    let mut cfg = config(&farm);
    cfg.max_depth = Some(0);
    cfg.sitemaps = false;
    crawl(&mut store, cfg);
    let urls: Vec<String> = query(&db, "SELECT url FROM pages WHERE status = 200");
    assert_eq!(urls.len(), farm.hosts.len(), "{urls:?}");

    // max pages, across hosts; the run says it stopped
    let db = dir.path().join("max.db");
    let mut store = Store::open(&db).unwrap();
    let mut cfg = config(&farm);
    cfg.max_pages = Some(20);
    let report = crawl(&mut store, cfg);
    assert_eq!(
        query::<i64>(
            &db,
            "SELECT count(*) FROM pages WHERE status = 200 AND body IS NOT NULL"
        ),
        [20]
    );
    assert!(report.stopped);

    // an exclude pattern and a per-host cap
    let db = dir.path().join("scope.db");
    let mut store = Store::open(&db).unwrap();
    let mut cfg = config(&farm);
    cfg.exclude = vec![regex::Regex::new(r"/list/[12]\.html").unwrap()];
    cfg.max_pages_per_host = Some(15);
    crawl(&mut store, cfg);
    let urls: Vec<String> = query(&db, "SELECT url FROM pages WHERE status = 200");
    assert!(
        urls.iter()
            .all(|u| !u.contains("/list/1.html") && !u.contains("/list/2.html"))
    );
    let per_host: Vec<i64> = query(
        &db,
        "SELECT count(*) FROM pages p JOIN frontier f ON p.frontier_id = f.id
         WHERE p.status = 200 AND p.body IS NOT NULL GROUP BY f.host",
    );
    assert!(per_host.iter().all(|&n| n <= 15), "{per_host:?}");
}

#[test]
fn five_thousand_pages_every_one_stored_once() {
    let farm = Farm::start(FarmConfig {
        hosts: 10,
        articles_per_host: 480,
        traps: false,
        crawl_delay: 0.0,
        ..FarmConfig::default()
    })
    .unwrap();
    let want = farm.html_pages();
    assert!(want.len() >= 5000, "{}", want.len());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let mut store = Store::open(&db).unwrap();
    let mut cfg = config(&farm);
    cfg.delay = Duration::ZERO;
    cfg.per_host = 2;
    cfg.concurrency = 20;
    let report = crawl(&mut store, cfg);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let stored: Vec<String> = query(
        &db,
        "SELECT url FROM pages WHERE status = 200 AND body IS NOT NULL",
    );
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), unique.len(), "a page stored twice");
    let want: HashSet<&String> = want.iter().collect();
    assert_eq!(unique, want);
    assert_eq!(report.documents, 4800);
}
