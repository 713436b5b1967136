use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use corpus::Store;
use crawler::{Config, CrawlProgress, FetchConfig, Report};
use regex::Regex;

use crate::Global;
use crate::cmd::extract::BadInput;

/// `zhcorpus crawl --seeds seeds.txt`: fetch the seeds' sites politely into the database.
#[derive(Args)]
pub struct CrawlArgs {
    /// Seed URLs, besides those in --seeds.
    #[arg(value_name = "URL")]
    urls: Vec<String>,

    /// A file of seed URLs, one per line; blank lines and lines starting with `#` are skipped.
    #[arg(long, value_name = "FILE")]
    seeds: Option<PathBuf>,

    /// Print the state of the crawl in the database (running or stopped) and exit.
    #[arg(long)]
    status: bool,

    /// With --status: print JSON.
    #[arg(long, requires = "status")]
    json: bool,

    /// The User-Agent header: name the tool and a page that explains the crawl.
    #[arg(long, value_name = "UA", default_value = crawler::DEFAULT_USER_AGENT)]
    user_agent: String,

    /// The token matched against robots.txt `User-agent` lines.
    #[arg(long, value_name = "TOKEN", default_value = "zhcorpus")]
    robots_token: String,

    /// Fetches in flight across all hosts.
    #[arg(long, value_name = "N", default_value_t = 64)]
    concurrency: usize,

    /// Fetches in flight per host.
    #[arg(long, value_name = "N", default_value_t = 1)]
    per_host: usize,

    /// Seconds between two request starts on one host; a host's Crawl-delay raises it.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    delay: f64,

    /// The largest Crawl-delay honoured, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    max_crawl_delay: f64,

    /// Link hops followed from a seed (0: the seeds only).
    #[arg(long, value_name = "N")]
    max_depth: Option<u32>,

    /// Stop once the database holds this many fetched pages.
    #[arg(long, value_name = "N")]
    max_pages: Option<u64>,

    /// Fetched pages per host at most.
    #[arg(long, value_name = "N")]
    max_pages_per_host: Option<u64>,

    /// A domain in scope, with its subdomains (repeatable). Default: the seeds' registrable
    /// domains (news.sina.com.cn → sina.com.cn).
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,

    /// Only URLs matching one of these regexes are followed (repeatable).
    #[arg(long, value_name = "REGEX")]
    include: Vec<String>,

    /// URLs matching one of these regexes are not followed (repeatable).
    #[arg(long, value_name = "REGEX")]
    exclude: Vec<String>,

    /// Longer URLs are treated as traps.
    #[arg(long, value_name = "BYTES", default_value_t = 2048)]
    max_url_len: usize,

    /// A path segment repeated more often than this marks a trap (`/a/b/a/b/a/b/a`).
    #[arg(long, value_name = "N", default_value_t = 3)]
    max_segment_repeats: usize,

    /// Distinct query strings followed per host and path (calendars, faceted search).
    #[arg(long, value_name = "N", default_value_t = 200)]
    max_query_variants: usize,

    /// Seconds to wait for a connection.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    connect_timeout: f64,

    /// Seconds to wait for the next bytes of a response.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    read_timeout: f64,

    /// Seconds for a whole request, body included.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    timeout: f64,

    /// Most bytes of a body, counted after decompression.
    #[arg(long, value_name = "BYTES", default_value_t = 10 << 20)]
    max_body: usize,

    /// Most decompressed bytes per transferred byte (past the first MiB): a gzip bomb's cap.
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_ratio: usize,

    /// Redirects followed for robots.txt and sitemaps, and redirect hops queued for pages.
    #[arg(long, value_name = "N", default_value_t = 5)]
    max_redirects: usize,

    /// Tries per URL on timeouts, connection errors, 429 and 5xx.
    #[arg(long, value_name = "N", default_value_t = 3)]
    max_attempts: u32,

    /// Consecutive failures after which a host is left alone for the rest of the crawl.
    #[arg(long, value_name = "N", default_value_t = 10)]
    host_error_budget: u32,

    /// Do not queue the sitemaps named in robots.txt.
    #[arg(long)]
    no_sitemaps: bool,

    /// Allow private, loopback and link-local addresses (for local sites and tests).
    #[arg(long)]
    allow_private: bool,

    /// Also write every request and response to gzipped WARC files in this directory.
    #[arg(long, value_name = "DIR")]
    warc: Option<PathBuf>,
}

pub fn run(global: &Global, args: CrawlArgs) -> Result<()> {
    if args.status {
        return status(global, args.json);
    }
    let mut seeds = args.urls.clone();
    if let Some(path) = &args.seeds {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("seeds file {}: {e}", path.display())))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if crawler::urls::parse(line).is_none() {
                anyhow::bail!(BadInput(format!(
                    "{}:{}: {line:?} is not an http(s) URL",
                    path.display(),
                    i + 1
                )));
            }
            seeds.push(line.to_string());
        }
    }
    for s in &args.urls {
        if crawler::urls::parse(s).is_none() {
            anyhow::bail!(BadInput(format!("seed {s:?} is not an http(s) URL")));
        }
    }
    let regexes = |list: &[String]| -> Result<Vec<Regex>> {
        list.iter()
            .map(|r| {
                Regex::new(r).map_err(|e| anyhow::Error::new(BadInput(format!("regex {r:?}: {e}"))))
            })
            .collect()
    };
    let secs = |s: f64, name: &str| -> Result<Duration> {
        Duration::try_from_secs_f64(s)
            .map_err(|_| anyhow::Error::new(BadInput(format!("--{name} {s} is not a duration"))))
    };
    let config = Config {
        seeds,
        fetch: FetchConfig {
            user_agent: args.user_agent,
            connect_timeout: secs(args.connect_timeout, "connect-timeout")?,
            read_timeout: secs(args.read_timeout, "read-timeout")?,
            timeout: secs(args.timeout, "timeout")?,
            max_body: args.max_body,
            max_ratio: args.max_ratio.max(1),
            max_redirects: args.max_redirects,
            allow_private: args.allow_private,
            keep_raw: args.warc.is_some(),
        },
        robots_token: args.robots_token,
        concurrency: args.concurrency.max(1),
        per_host: args.per_host.max(1),
        delay: secs(args.delay, "delay")?,
        max_crawl_delay: secs(args.max_crawl_delay, "max-crawl-delay")?,
        max_depth: args.max_depth,
        max_pages: args.max_pages,
        max_pages_per_host: args.max_pages_per_host,
        domains: args.domains,
        include: regexes(&args.include)?,
        exclude: regexes(&args.exclude)?,
        max_url_len: args.max_url_len,
        max_segment_repeats: args.max_segment_repeats.max(1),
        max_query_variants: args.max_query_variants,
        max_attempts: args.max_attempts.max(1),
        host_error_budget: args.host_error_budget.max(1),
        robots_ttl: Duration::from_secs(24 * 3600),
        sitemaps: !args.no_sitemaps,
        warc: args.warc,
    };
    let resumable = config.seeds.is_empty()
        && global.db.exists()
        && !Store::open_existing(&global.db)?.queued_hosts()?.is_empty();
    if config.seeds.is_empty() && !resumable {
        anyhow::bail!(BadInput(
            "no seeds: give URLs, or --seeds FILE, or a database with a crawl to resume".into()
        ));
    }
    let mut store = Store::open(&global.db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let progress = Live::new(global.quiet);
    let report = runtime.block_on(async {
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("stopping: waiting for fetches in flight (Ctrl-C again to quit now)");
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                // every finished fetch is committed; the rest are queued for the next run
                std::process::exit(130);
            });
        };
        crawler::crawl(&mut store, config, &progress, shutdown).await
    });
    progress.finish();
    let report = report?;
    print_report(&report, &global.db);
    Ok(())
}

fn print_report(r: &Report, db: &std::path::Path) {
    println!(
        "crawled {} pages into {} in {:.1} s ({:.1} pages/s): {} documents, {} retries, {} disallowed by robots.txt, {} trap links left out",
        r.pages,
        db.display(),
        r.elapsed_s,
        r.pages_per_sec(),
        r.documents,
        r.retries,
        r.robots_disallowed,
        r.traps
    );
    for (class, n) in &r.errors {
        println!("  {n:>8}  {class}");
    }
    if r.hosts_parked > 0 {
        println!("  {} hosts parked after repeated failures", r.hosts_parked);
    }
    if r.stopped {
        println!(
            "stopped with {} URLs queued: run the same command to resume",
            r.queued
        );
    }
    for f in &r.warc_files {
        println!("  WARC: {f}");
    }
}

fn status(global: &Global, json: bool) -> Result<()> {
    let store = Store::open_existing(&global.db)?;
    let s = store.crawl_status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let state = |k: &str| s.frontier.get(k).copied().unwrap_or(0);
    match &s.last_run {
        Some((started, None, _)) => println!("crawl running (or killed) since {started}"),
        Some((started, Some(finished), status)) => {
            println!("last crawl {status}: {started} to {finished}")
        }
        None => println!("no crawl has run on {}", global.db.display()),
    }
    println!(
        "frontier: {} queued, {} done, {} failed, {} skipped, {} in flight",
        state("queued"),
        state("done"),
        state("failed"),
        state("skipped"),
        state("in_flight")
    );
    println!(
        "pages: {} stored, {:.1}/s over the last minute; hosts: {} with queued URLs, {} parked",
        s.pages, s.pages_per_sec_last_minute, s.hosts_queued, s.hosts_parked
    );
    if !s.errors.is_empty() {
        let errors: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("errors: {}", errors.join(", "));
    }
    Ok(())
}

/// The live line: a spinner on a terminal, a line every 10 s otherwise, nothing with --quiet.
struct Live {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    last: Mutex<Instant>,
}

impl Live {
    fn new(quiet: bool) -> Live {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("   crawl {spinner} {msg} ({elapsed})")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Live {
            bar,
            quiet,
            last: Mutex::new(Instant::now()),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn line(r: &Report) -> String {
    let mut s = format!(
        "{} pages ({:.1}/s), {} docs, queue {}, in flight {}, hosts {}",
        r.pages,
        r.pages_per_sec(),
        r.documents,
        r.queued,
        r.in_flight,
        r.hosts_active
    );
    if !r.errors.is_empty() {
        let errors: Vec<String> = r.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s.push_str(&format!(", errors: {}", errors.join(" ")));
    }
    s
}

impl CrawlProgress for Live {
    fn update(&self, r: &Report) {
        if let Some(bar) = &self.bar {
            bar.set_message(line(r));
        } else if !self.quiet {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= Duration::from_secs(10) {
                *last = Instant::now();
                eprintln!("crawl: {}", line(r));
            }
        }
    }
}
