//! `zhcorpus-farm`: serves the site farm on loopback until killed, for benchmarks and demos.
//! Prints one JSON line with the hosts' URLs, then a line per second with the request count,
//! the most requests in flight on one host and the least gap between two request starts on one
//! host.

use std::time::Duration;

fn main() {
    let mut config = farm::FarmConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--hosts" => config.hosts = value().parse().unwrap_or(config.hosts),
            "--articles" => {
                config.articles_per_host = value().parse().unwrap_or(config.articles_per_host)
            }
            "--latency-ms" => config.latency = Duration::from_millis(value().parse().unwrap_or(0)),
            "--crawl-delay" => config.crawl_delay = value().parse().unwrap_or(config.crawl_delay),
            "--seed" => config.seed = value().parse().unwrap_or(config.seed),
            "--no-traps" => config.traps = false,
            "--distinct-ips" => config.distinct_ips = true,
            "--images" => config.images = true,
            _ => {
                eprintln!(
                    "usage: zhcorpus-farm [--hosts N] [--articles N] [--latency-ms MS] \
                     [--crawl-delay S] [--seed N] [--no-traps] [--distinct-ips] [--images]"
                );
                std::process::exit(2);
            }
        }
    }
    let farm = match farm::Farm::start(config) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("zhcorpus-farm: cannot start: {e}");
            std::process::exit(1);
        }
    };
    let info = serde_json::json!({
        "hosts": farm.hosts,
        "seeds": farm.seeds(),
        "outside": farm.outside,
        "html_pages": farm.html_pages().len(),
        "articles": farm.articles().len(),
    });
    println!("{info}");
    loop {
        std::thread::sleep(Duration::from_secs(1));
        // politeness as the hosts saw it: the most requests in flight on one host, and the
        // least time between two request starts on one host
        let log = farm.requests();
        let in_flight = (0..farm.hosts.len())
            .map(|h| farm.max_in_flight(h))
            .max()
            .unwrap_or(0);
        let mut starts: Vec<Vec<Duration>> = vec![Vec::new(); farm.hosts.len()];
        for r in &log {
            if let Some(s) = starts.get_mut(r.host) {
                s.push(r.at);
            }
        }
        let gap = starts
            .iter_mut()
            .filter_map(|s| {
                s.sort();
                s.windows(2).map(|w| w[1] - w[0]).min()
            })
            .min()
            .map_or(-1.0, |d| d.as_secs_f64() * 1000.0);
        eprintln!(
            "requests: {}; most in flight on one host: {in_flight}; least gap between request \
             starts on one host: {gap:.1} ms",
            log.len()
        );
    }
}
