use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use corpus::Store;
use crawler::{Config, Report};

use crate::error::{Interrupted, UsageError};
use crate::progress::Bar;
use crate::settings::{self, Overrides};
use crate::{Db, Global};

/// `zhcorpus crawl --seeds seeds.txt`: fetch the seeds' sites politely into the database.
#[derive(Args)]
pub struct CrawlArgs {
    #[command(flatten)]
    db: Db,

    /// Seed URLs, besides those in --seeds.
    #[arg(value_name = "URL")]
    urls: Vec<String>,

    /// A file of seed URLs, one per line; blank lines and lines starting with `#` are skipped.
    #[arg(long, value_name = "FILE")]
    seeds: Option<PathBuf>,

    /// Print the state of the crawl in the database (running or stopped) and exit; with
    /// --frontier, the state of the whole cluster in Redis (partitions, owners, queues,
    /// workers).
    #[arg(long)]
    status: bool,

    /// With --status: print JSON.
    #[arg(long, requires = "status")]
    json: bool,

    /// The User-Agent header: name the tool and a page that explains the crawl [default:
    /// zhcorpus/VERSION (+its home page)].
    #[arg(long, value_name = "UA")]
    user_agent: Option<String>,

    /// The token matched against robots.txt `User-agent` lines [default: zhcorpus].
    #[arg(long, value_name = "TOKEN")]
    robots_token: Option<String>,

    /// Fetches in flight across all hosts [default: 64].
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,

    /// Fetches in flight per host [default: 1].
    #[arg(long, value_name = "N")]
    per_host: Option<usize>,

    /// Seconds between two request starts on one host; a host's Crawl-delay raises it
    /// [default: 1].
    #[arg(allow_negative_numbers = true, long, value_name = "SECONDS")]
    delay: Option<f64>,

    /// The largest Crawl-delay honoured, in seconds [default: 30].
    #[arg(allow_negative_numbers = true, long, value_name = "SECONDS")]
    max_crawl_delay: Option<f64>,

    /// Link hops followed from a seed (0: the seeds only) [default: no limit].
    #[arg(long, value_name = "N")]
    max_depth: Option<u32>,

    /// Stop once the database holds this many fetched pages [default: no limit].
    #[arg(long, value_name = "N")]
    max_pages: Option<u64>,

    /// Fetched pages per host at most [default: no limit].
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

    /// Longer URLs are treated as traps [default: 2048].
    #[arg(long, value_name = "BYTES")]
    max_url_len: Option<usize>,

    /// A path segment repeated more often than this marks a trap (`/a/b/a/b/a/b/a`)
    /// [default: 3].
    #[arg(long, value_name = "N")]
    max_segment_repeats: Option<usize>,

    /// Distinct query strings followed per host and path (calendars, faceted search)
    /// [default: 200].
    #[arg(long, value_name = "N")]
    max_query_variants: Option<usize>,

    /// Seconds to wait for a connection [default: 10].
    #[arg(allow_negative_numbers = true, long, value_name = "SECONDS")]
    connect_timeout: Option<f64>,

    /// Seconds to wait for the next bytes of a response [default: 30].
    #[arg(allow_negative_numbers = true, long, value_name = "SECONDS")]
    read_timeout: Option<f64>,

    /// Seconds for a whole request, body included [default: 60].
    #[arg(allow_negative_numbers = true, long, value_name = "SECONDS")]
    timeout: Option<f64>,

    /// Most bytes of a body, counted after decompression [default: 10 MiB].
    #[arg(long, value_name = "BYTES")]
    max_body: Option<usize>,

    /// Most decompressed bytes per transferred byte (past the first MiB): a gzip bomb's cap
    /// [default: 100].
    #[arg(long, value_name = "N")]
    max_ratio: Option<usize>,

    /// Redirects followed for robots.txt and sitemaps, and redirect hops queued for pages
    /// [default: 5].
    #[arg(long, value_name = "N")]
    max_redirects: Option<usize>,

    /// Tries per URL on timeouts, connection errors, 429 and 5xx [default: 3].
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,

    /// Consecutive failures after which a host is left alone for the rest of the crawl
    /// [default: 10].
    #[arg(long, value_name = "N")]
    host_error_budget: Option<u32>,

    /// Do not queue the sitemaps named in robots.txt.
    #[arg(long)]
    no_sitemaps: bool,

    /// Allow private, loopback and link-local addresses (for local sites and tests).
    #[arg(long)]
    allow_private: bool,

    /// Also write every request and response to gzipped WARC files in this directory.
    #[arg(long, value_name = "DIR")]
    warc: Option<PathBuf>,

    /// Share the frontier with other workers through Redis (`redis://HOST:PORT/DB`): each
    /// worker crawls into its own --db, hosts are leased to one worker at a time, and a dead
    /// worker's URLs are taken over after its lease [default: the frontier in --db, one
    /// process].
    #[arg(long, value_name = "URL")]
    frontier: Option<String>,

    /// With --frontier: this worker's name in the cluster [default: host name, --db's file
    /// name and process id].
    #[arg(long, value_name = "NAME", requires = "frontier")]
    worker: Option<String>,

    /// With --frontier: partitions the hosts are spread over, fixed by the crawl's first
    /// worker [default: 64].
    #[arg(long, value_name = "N", requires = "frontier")]
    partitions: Option<u32>,

    /// With --frontier: seconds a worker's lease on its partitions lasts without renewal, the
    /// time a dead worker's hosts wait for another [default: 10].
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "SECONDS",
        requires = "frontier"
    )]
    lease_ttl: Option<f64>,

    /// After the crawl, fetch the images of the crawled pages' image-text candidates under the
    /// same politeness (`zhcorpus images fetch`).
    #[arg(long)]
    images: bool,

    /// A TOML file of settings (every flag's key, `[fetch]` for the HTTP client's, durations
    /// in seconds); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn run(global: &Global, args: CrawlArgs) -> Result<()> {
    let db = &args.db.db;
    if args.status {
        if let Some(url) = &args.frontier {
            return cluster_status(url, args.config.as_deref(), args.lease_ttl, args.json);
        }
        return status(db, args.json);
    }
    let mut seeds = args.urls.clone();
    if let Some(path) = &args.seeds {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("seeds file {}: {e}", path.display())))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if crawler::urls::parse(line).is_none() {
                anyhow::bail!(UsageError(format!(
                    "{}:{}: {line:?} is not an http(s) URL",
                    path.display(),
                    i + 1
                )));
            }
            seeds.push(line.to_string());
        }
    }
    let mut flags = Overrides::default();
    flags
        .set("seeds", (!seeds.is_empty()).then_some(seeds))
        .set("robots_token", args.robots_token)
        .set("concurrency", args.concurrency)
        .set("per_host", args.per_host)
        .set("delay", args.delay)
        .set("max_crawl_delay", args.max_crawl_delay)
        .set("max_depth", args.max_depth)
        .set("max_pages", args.max_pages)
        .set("max_pages_per_host", args.max_pages_per_host)
        .set(
            "domains",
            (!args.domains.is_empty()).then_some(args.domains),
        )
        .set(
            "include",
            (!args.include.is_empty()).then_some(args.include),
        )
        .set(
            "exclude",
            (!args.exclude.is_empty()).then_some(args.exclude),
        )
        .set("max_url_len", args.max_url_len)
        .set("max_segment_repeats", args.max_segment_repeats)
        .set("max_query_variants", args.max_query_variants)
        .set("max_attempts", args.max_attempts)
        .set("host_error_budget", args.host_error_budget)
        .switch("sitemaps", args.no_sitemaps, false)
        .set("warc", args.warc)
        .set("frontier", args.frontier)
        .set("shared.worker", args.worker)
        .set("shared.partitions", args.partitions)
        .set("shared.lease_ttl", args.lease_ttl)
        .set("fetch.user_agent", args.user_agent)
        .set("fetch.connect_timeout", args.connect_timeout)
        .set("fetch.read_timeout", args.read_timeout)
        .set("fetch.timeout", args.timeout)
        .set("fetch.max_body", args.max_body)
        .set("fetch.max_ratio", args.max_ratio)
        .set("fetch.max_redirects", args.max_redirects)
        .switch("fetch.allow_private", args.allow_private, true);
    let config: Config = settings::resolve(&Config::default(), args.config.as_deref(), &flags)?;
    if args.print_config {
        return settings::print(&config);
    }
    if let Some(url) = &config.frontier {
        // a worker joins the crawl in Redis, seeds or not; nothing is written when Redis
        // cannot be reached
        config.validate()?;
        crawler::shared::check_reachable(url)?;
    } else {
        let resumable = config.seeds.is_empty()
            && db.exists()
            && !Store::open_existing(db)?.queued_hosts()?.is_empty();
        if config.seeds.is_empty() && !resumable {
            anyhow::bail!(UsageError(
                "no seeds: give URLs, or --seeds FILE, or a database with a crawl to resume".into()
            ));
        }
    }
    let mut store = Store::open(db)?;
    let progress = Bar::new(global.quiet);
    let images = args
        .images
        .then(|| crawler::ImageFetchConfig::from_crawl(&config));
    let report = crawler::crawl_blocking(&mut store, config, &progress)?;
    print_report(&report, db)?;
    if crate::cmd::signals::cancelled() {
        return Err(Interrupted(
            "the crawl was interrupted; run the same command to resume".into(),
        )
        .into());
    }
    if let Some(images) = images {
        drop(progress);
        crate::cmd::images::run_fetch(global, &mut store, images)?;
    }
    Ok(())
}

fn print_report(r: &Report, db: &std::path::Path) -> Result<()> {
    outln!(
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
        outln!("  {n:>8}  {class}");
    }
    for (host, why) in &r.parked {
        outln!("  host {host} left alone: {why}");
    }
    if r.stopped {
        outln!(
            "stopped with {} URLs queued: run the same command to resume",
            r.queued
        );
    }
    for f in &r.warc_files {
        outln!("  WARC: {f}");
    }
    Ok(())
}

fn status(db: &std::path::Path, json: bool) -> Result<()> {
    let store = Store::open_existing(db)?;
    let s = store.crawl_status()?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let state = |k: &str| s.frontier.get(k).copied().unwrap_or(0);
    match &s.last_run {
        Some((started, None, state)) if state == "interrupted" => outln!(
            "last crawl interrupted (its process died) after starting {started}: run the same \
             command to resume"
        ),
        Some((started, None, _)) => outln!("crawl running since {started}"),
        Some((started, Some(finished), status)) => {
            outln!("last crawl {status}: {started} to {finished}")
        }
        None => outln!("no crawl has run on {}", db.display()),
    }
    outln!(
        "frontier: {} queued, {} done, {} failed, {} skipped, {} in flight",
        state("queued"),
        state("done"),
        state("failed"),
        state("skipped"),
        state("in_flight")
    );
    outln!(
        "pages: {} stored, {:.1}/s over the last minute; hosts: {} with queued URLs, {} parked",
        s.pages,
        s.pages_per_sec_last_minute,
        s.hosts_queued,
        s.hosts_parked
    );
    if !s.errors.is_empty() {
        let errors: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        outln!("errors: {}", errors.join(", "));
    }
    Ok(())
}

/// `--status --frontier URL`: the cluster as Redis sees it.
fn cluster_status(
    url: &str,
    config: Option<&std::path::Path>,
    lease_ttl: Option<f64>,
    json: bool,
) -> Result<()> {
    let mut flags = Overrides::default();
    flags.set("shared.lease_ttl", lease_ttl);
    let settings: Config = settings::resolve(&Config::default(), config, &flags)?;
    let s = crawler::shared::cluster_status(url, &settings.shared)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    outln!(
        "frontier {}: {} URLs seen, {} waiting, {} handed out and not yet stored",
        s.frontier,
        s.seen,
        s.waiting,
        s.pending
    );
    outln!("workers:");
    for w in &s.workers {
        let field = |k: &str| w.fields.get(k).map_or("-", String::as_str);
        outln!(
            "  {:<32} {:<5} seen {:>6.1} s ago  {:>7} pages  {:>6} pages/s  {:>3} partitions  {}",
            w.worker,
            if w.alive { "alive" } else { "gone" },
            w.last_seen_s,
            field("pages"),
            field("pages_per_sec"),
            field("partitions"),
            field("db")
        );
    }
    outln!("partitions (owner, lease left, waiting, pending):");
    for p in &s.partitions {
        outln!(
            "  {:>5}  {:<32} {:>7}  {:>7}  {:>7}",
            p.partition,
            p.owner.as_deref().unwrap_or("-"),
            p.lease_ms
                .map_or("-".to_string(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
            p.waiting,
            p.pending
        );
    }
    Ok(())
}
