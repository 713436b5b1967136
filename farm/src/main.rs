//! `zhcorpus-farm`: serves the site farm on loopback until killed, for benchmarks and demos.
//! Prints one JSON line with the hosts' URLs, then a line per second with the request count.

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
        eprintln!("requests: {}", farm.requests().len());
    }
}
