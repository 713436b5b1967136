//! The crawl frontier at scale, for `bench/scale`: what the store and the crawler's memory do
//! with millions of URLs, without fetching them.
//!
//! - `frontier_scale enqueue DB N` adds N new URLs over 10,000 hosts, a thousand per
//!   transaction, as a crawl records the links it finds.
//! - `frontier_scale resume DB` does what a crawl does when it starts on that store: loads the
//!   seen-set (every URL hash, into a hash set in memory), lists the hosts with queued URLs,
//!   and pages through one host's queue 256 URLs at a time.
//!
//! Each prints one JSON line of counts and seconds; `bench/scale/run.sh` measures each
//! process's time and peak memory.

use std::collections::HashSet;
use std::time::Instant;

use corpus::{NewUrl, Store, UrlKind};

const HOSTS: u64 = 10_000;

fn enqueue(db: &str, n: u64) -> corpus::Result<()> {
    let mut store = Store::open(db)?;
    let start = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    let mut added = 0;
    for i in 0..n {
        let host = format!("site{}.example.cn", i % HOSTS);
        let url = format!("http://{host}/news/2026/{}/{i}.html", i % 365);
        batch.push(NewUrl {
            hash: xxhash_rust::xxh3::xxh3_64(url.as_bytes()) as i64,
            url,
            host,
            depth: 1,
            parent: None,
            kind: UrlKind::Page,
        });
        if batch.len() == 1000 || i + 1 == n {
            added += store.enqueue(&batch)?.iter().flatten().count();
            batch.clear();
        }
    }
    println!(
        "{{\"enqueued\": {added}, \"seconds\": {:.3}}}",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn resume(db: &str) -> corpus::Result<()> {
    let store = Store::open_existing(db)?;
    let start = Instant::now();
    let seen: HashSet<i64> = store.frontier_hashes()?.into_iter().collect();
    let loaded = start.elapsed().as_secs_f64();
    let hosts = store.queued_hosts()?;
    let listed = start.elapsed().as_secs_f64();
    let mut paged = 0;
    if let Some(host) = hosts.first() {
        let mut after = 0;
        loop {
            let page = store.queued_urls(host, after, 256)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            paged += page.len();
        }
    }
    let done = start.elapsed().as_secs_f64();
    println!(
        "{{\"seen\": {}, \"hosts\": {}, \"paged\": {paged}, \"load_s\": {loaded:.3}, \"hosts_s\": {:.3}, \"page_s\": {:.3}}}",
        seen.len(),
        hosts.len(),
        listed - loaded,
        done - listed
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
        (Some("enqueue"), Some(db), Some(n)) => match n.parse() {
            Ok(n) => enqueue(db, n),
            Err(_) => {
                eprintln!("frontier_scale: N must be a whole number, not {n}");
                std::process::exit(2);
            }
        },
        (Some("resume"), Some(db), None) => resume(db),
        _ => {
            eprintln!("usage: frontier_scale enqueue DB N | frontier_scale resume DB");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("frontier_scale: {e}");
        std::process::exit(1);
    }
}
