//! Image-text pairs end to end: the farm's galleries crawled with `--images`, every image case
//! judged with its reason, the shards read back with `tar` and every image decoded; an image
//! fetch killed with SIGKILL and started again fetches nothing twice.

#![allow(unsafe_code)] // kill(2)

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ok, run, stderr};
use farm::{Farm, FarmConfig};

fn farm() -> Farm {
    Farm::start(FarmConfig {
        hosts: 4,
        articles_per_host: 8,
        traps: false,
        images: true,
        crawl_delay: 0.05,
        ..FarmConfig::default()
    })
    .unwrap()
}

fn crawl(dir: &Path, farm: &Farm, images: bool) -> String {
    let mut args = vec![
        "crawl",
        "--db",
        "corpus.db",
        "--allow-private",
        "--delay",
        if images { "0.1" } else { "0.02" },
    ];
    if images {
        args.push("--images");
    }
    let seeds = farm.seeds();
    args.extend(seeds.iter().map(String::as_str));
    ok(run(dir, &args))
}

/// (page URL, image URL) → (keep, reason, value, duplicate_of's image URL).
type Verdicts = HashMap<(String, String), (bool, Option<String>, Option<f64>, Option<String>)>;

fn verdicts(db: &Path) -> Verdicts {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT d.url, t.image_url, v.keep, v.reason, v.value, o.image_url
             FROM image_verdicts v JOIN image_text t ON t.id = v.pair
             JOIN documents d ON d.seq = t.doc
             LEFT JOIN image_text o ON o.id = v.duplicate_of",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            (r.get(0)?, r.get(1)?),
            (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn pairs_flow_from_the_crawl_to_tar_shards_with_every_verdict_and_its_reason() {
    let farm = farm();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let out = crawl(dir.path(), &farm, true);
    assert!(out.contains("images: "), "{out}");
    let out = ok(run(dir.path(), &["images", "filter", "--db", "corpus.db"]));
    assert!(out.contains("kept"), "{out}");

    let got = verdicts(&db);
    for (h, host) in farm.hosts.iter().enumerate() {
        for n in 0..farm::images::GALLERIES {
            let page = format!("{host}/gallery/{n}.html");
            for (path, want) in farm::images::expected(n) {
                let url = format!("{host}{path}");
                let v = got
                    .get(&(page.clone(), url.clone()))
                    .unwrap_or_else(|| panic!("no verdict for {url} on {page}"));
                assert_eq!(v.1.as_deref(), want, "host {h} gallery {n}: {path}: {v:?}");
                assert_eq!(v.0, want.is_none(), "{path}");
            }
        }
    }
    // the values measured and the pairs duplicates point at
    let host = &farm.hosts[0];
    let on = |n: usize, path: &str| {
        got[&(format!("{host}/gallery/{n}.html"), format!("{host}{path}"))].clone()
    };
    assert_eq!(on(1, "/photos/1/thumb.jpg").2, Some(90.0));
    assert_eq!(on(1, "/t.gif?page=1").2, Some(1.0));
    assert_eq!(on(1, "/photos/1/wide.jpg").2, Some(4.0));
    assert_eq!(on(1, "/photos/1/anim.gif").2, Some(3.0));
    assert_eq!(on(1, "/photos/1/short.jpg").2, Some(2.0));
    assert_eq!(on(1, "/photos/1/title2.jpg").2, Some(2.0));
    let near = on(1, "/photos/1/near.jpg");
    assert!(near.2.is_some_and(|d| d <= 6.0), "{near:?}");
    assert_eq!(near.3, Some(format!("{host}/photos/1/a.png")));
    assert_eq!(
        on(2, "/shared/same.jpg?from=2").3,
        Some(format!("{host}/shared/same.jpg?from=0"))
    );
    // the same image under three URLs is stored once per host; noai and robots-disallowed
    // images are not stored at all
    let same = count(
        &db,
        "SELECT COUNT(DISTINCT f.image) FROM image_fetches f WHERE f.url LIKE '%/shared/same.jpg%'",
    );
    assert_eq!(same, farm.hosts.len() as i64);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM image_fetches WHERE outcome IN ('noai', 'robots') AND image IS NOT NULL"
        ),
        0
    );
    let log = farm.requests();
    assert!(
        log.iter().all(|r| !r.path.starts_with("/private/")),
        "a robots-disallowed image was requested"
    );
    // politeness: one request in flight per host, image requests to one host at least the
    // delay (0.1 s) apart, less what arriving at a busy server can take off
    for h in 0..farm.hosts.len() {
        assert_eq!(farm.max_in_flight(h), 1, "host {h}");
    }
    let mut last: HashMap<usize, Duration> = HashMap::new();
    for r in log.iter().filter(|r| r.path.contains("/photos/")) {
        if let Some(prev) = last.insert(r.host, r.at) {
            assert!(
                r.at >= prev + Duration::from_millis(60),
                "host {}: {:?} after {:?}",
                r.host,
                r.at,
                prev
            );
        }
    }

    // a site's slogan under every gallery is a stock line once more pages carry it than allowed
    ok(run(
        dir.path(),
        &[
            "images",
            "filter",
            "--db",
            "corpus.db",
            "--max-caption-pages",
            "2",
        ],
    ));
    let got = verdicts(&db);
    let slogan = &got[&(
        format!("{host}/gallery/0.html"),
        format!("{host}/photos/0/slogan.jpg"),
    )];
    assert_eq!(slogan.1.as_deref(), Some("recurring_caption"));
    assert_eq!(slogan.2, Some(3.0));
    // verdicts on captions alone are no grounds for an export
    ok(run(
        dir.path(),
        &["images", "filter", "--db", "corpus.db", "--captions-only"],
    ));
    let refused = run(
        dir.path(),
        &["images", "export", "--db", "corpus.db", "--output", "co"],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("captions only"),
        "{}",
        stderr(&refused)
    );
    ok(run(dir.path(), &["images", "filter", "--db", "corpus.db"]));

    let stats = ok(run(dir.path(), &["stats", "--db", "corpus.db"]));
    assert!(stats.contains("near_duplicate"), "{stats}");

    // export: resized, sharded, read back with tar, every image decoded
    let kept = count(&db, "SELECT COUNT(*) FROM image_verdicts WHERE keep = 1");
    assert!(kept >= 4 * 3 * 4, "{kept}");
    let out = ok(run(
        dir.path(),
        &[
            "images",
            "export",
            "--db",
            "corpus.db",
            "--output",
            "shards",
            "--max-side",
            "256",
            "--shard-size",
            "20",
        ],
    ));
    assert!(out.contains(&format!("{kept} pairs")), "{out}");
    let shards = dir.path().join("shards");
    let mut tars: Vec<_> = std::fs::read_dir(&shards)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    tars.sort();
    assert_eq!(tars.len() as i64, (kept + 19) / 20);
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let mut samples = 0;
    let mut captions = HashSet::new();
    for tar in &tars {
        let st = std::process::Command::new("tar")
            .arg("-xf")
            .arg(tar)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(st.success(), "tar cannot read {}", tar.display());
        let index = std::fs::read_to_string(tar.with_extension("jsonl")).unwrap();
        for line in index.lines() {
            let meta: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = meta["key"].as_str().unwrap();
            let img = image::open(unpacked.join(format!("{key}.jpg"))).unwrap();
            assert!(img.width().max(img.height()) <= 256, "{key}");
            assert_eq!(meta["width"], img.width());
            let caption = std::fs::read_to_string(unpacked.join(format!("{key}.txt"))).unwrap();
            assert_eq!(meta["caption"], caption.as_str());
            let json: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(unpacked.join(format!("{key}.json"))).unwrap(),
            )
            .unwrap();
            assert_eq!(json, meta);
            captions.insert(caption);
            samples += 1;
        }
    }
    assert_eq!(samples, kept);
    assert!(
        captions.iter().any(|c| c.starts_with("图为站点")),
        "a nearby caption"
    );
    assert!(
        captions.iter().any(|c| c.contains("古镇的石板路")),
        "an alt caption"
    );
    assert!(!dir.path().join("shards/000000.tar.partial").exists());

    // filter and export in one pass, each image decoded once: the same shards, byte for byte
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM image_checks", [])
        .unwrap();
    let out = ok(run(
        dir.path(),
        &[
            "images",
            "filter",
            "--db",
            "corpus.db",
            "--output",
            "fused",
            "--max-side",
            "256",
            "--shard-size",
            "20",
        ],
    ));
    assert!(out.contains(&format!("{kept} pairs in")), "{out}");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM image_checks"),
        count(&db, "SELECT COUNT(*) FROM images")
    );
    for tar in &tars {
        let name = tar.file_name().unwrap();
        assert_eq!(
            std::fs::read(tar).unwrap(),
            std::fs::read(dir.path().join("fused").join(name)).unwrap(),
            "{}",
            name.to_string_lossy()
        );
    }

    // an output folder with files in it is refused, naming it
    let again = run(
        dir.path(),
        &[
            "images",
            "export",
            "--db",
            "corpus.db",
            "--output",
            "shards",
        ],
    );
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("shards"), "{}", stderr(&again));
}

fn start_fetch(dir: &Path) -> std::process::Child {
    common::zhcorpus()
        .current_dir(dir)
        .args([
            "images",
            "fetch",
            "--db",
            "corpus.db",
            "--allow-private",
            "--delay",
            "0.05",
            "--concurrency",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Requests for each image (host and path), pages and robots.txt left out.
fn image_requests(farm: &Farm) -> HashMap<(usize, String), usize> {
    let mut asked = HashMap::new();
    for r in farm.requests() {
        if r.path != "/robots.txt" && !r.path.ends_with(".html") && r.path != "/" {
            *asked.entry((r.host, r.path)).or_default() += 1;
        }
    }
    asked
}

/// Waits until the store holds `n` image fetches.
fn wait_for_fetches(db: &Path, child: &mut std::process::Child, n: i64) {
    let start = Instant::now();
    loop {
        let done = rusqlite::Connection::open(db)
            .ok()
            .and_then(|c| {
                c.query_row("SELECT COUNT(*) FROM image_fetches", [], |r| {
                    r.get::<_, i64>(0)
                })
                .ok()
            })
            .unwrap_or(0);
        if done >= n {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the fetch ended too early"
        );
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ctrl_c_stops_the_image_fetch_after_its_fetches_in_flight_and_the_same_command_resumes() {
    let farm = farm();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    crawl(dir.path(), &farm, false);
    let urls = count(&db, "SELECT COUNT(DISTINCT image_url) FROM image_text");
    let mut child = start_fetch(dir.path());
    wait_for_fetches(&db, &mut child, 20);
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(r, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("run the same command to resume"),
        "{}",
        stderr(&out)
    );
    let before = count(&db, "SELECT COUNT(*) FROM image_fetches");
    assert!(before < urls, "{before} of {urls}");
    let out = start_fetch(dir.path()).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM image_fetches"), urls);
    // a graceful stop commits every finished fetch: nothing was asked twice
    let asked = image_requests(&farm);
    assert!(
        asked.values().all(|&n| n == 1),
        "an image was fetched twice"
    );
}

#[test]
fn kill_9_during_the_image_fetch_then_resume_fetches_nothing_twice() {
    let farm = farm();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    crawl(dir.path(), &farm, false);
    let urls = count(&db, "SELECT COUNT(DISTINCT image_url) FROM image_text");
    assert!(urls > 100, "{urls}");
    let mut child = start_fetch(dir.path());
    wait_for_fetches(&db, &mut child, 30);
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(r, 0);
    child.wait().unwrap();
    let outcomes: HashMap<String, String> = rusqlite::Connection::open(&db)
        .unwrap()
        .prepare("SELECT url, outcome FROM image_fetches")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let before = outcomes.len() as i64;
    assert!(before >= 30 && before < urls, "{before} of {urls}");

    let out = start_fetch(dir.path()).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM image_fetches"), urls);
    // nothing committed before the kill was fetched again: only the fetches in flight (at most
    // the concurrency, 4) and those finished but not yet committed (a batch of at most 64,
    // committed at least every second) were made twice
    let asked: HashMap<String, usize> = image_requests(&farm)
        .into_iter()
        .map(|((h, path), n)| (format!("{}{path}", farm.hosts[h]), n))
        .collect();
    // the requests name the stored URLs (else the check below could not fail): every URL
    // stored was asked for but those robots.txt disallows
    let unasked: Vec<&String> = outcomes
        .iter()
        .filter(|&(u, o)| o != "robots" && !asked.contains_key(u))
        .map(|(u, _)| u)
        .collect();
    assert!(unasked.is_empty(), "stored, never asked for: {unasked:?}");
    let repeated: Vec<&String> = asked
        .iter()
        .filter(|&(_, &n)| n > 1)
        .map(|(u, _)| u)
        .collect();
    let again: Vec<&&String> = repeated
        .iter()
        .filter(|u| outcomes.contains_key(**u))
        .collect();
    assert!(
        again.is_empty(),
        "stored before the kill, fetched again: {again:?}"
    );
    assert!(
        repeated.len() <= 4 + 64,
        "{} images fetched twice",
        repeated.len()
    );
    let integrity: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}
