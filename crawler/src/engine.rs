//! The crawl loop: one scheduler owns the store and the per-host state; fetches run as tokio
//! tasks and report back over a channel; each batch of results is written in one transaction.
//!
//! Politeness is per host (`host[:port]`): at most `per_host` requests in flight, request
//! starts at least `delay` apart (raised to the host's Crawl-delay, up to a cap), back-off on
//! 429/503 (honouring Retry-After) and on errors, and a host that keeps failing is parked.
//! Speed comes from many hosts at once: a heap orders the hosts by when each may next be
//! asked, and up to `concurrency` fetches run across them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use corpus::{
    CrawlBatch, FinalState, Finished, HostRobots, NewPage, NewUrl, Progress, QueuedUrl, RunId,
    Store, UrlKind,
};
use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use url::Url;

use crate::fetch::{Client, ErrorClass, FetchConfig, FetchError, Response, Want, retry_after};
use crate::frontier::{Frontier, HostsNow, Local};
use crate::robots::Robots;
use crate::urls::{self, Scope};
use crate::warc::WarcWriter;
use crate::{Error, sitemap};

/// URLs of one host kept in memory; the rest wait in the database.
const MEMORY_QUEUE: usize = 256;

/// Most robots.txt bytes parsed (RFC 9309 asks for at least 500 KiB).
const ROBOTS_LIMIT: usize = 512 << 10;

/// Everything a crawl is told; every field has its default in [`Config::default`] and can be
/// set in a TOML file (durations in seconds, regexes as strings).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub seeds: Vec<String>,
    pub fetch: FetchConfig,
    /// The product token matched against robots.txt `User-agent` lines.
    pub robots_token: String,
    /// Fetches in flight across all hosts.
    pub concurrency: usize,
    /// Fetches in flight per host.
    pub per_host: usize,
    /// Least time between two request starts on one host.
    #[serde(with = "crate::serde_util::secs")]
    pub delay: Duration,
    /// The largest Crawl-delay honoured; a larger one is cut to this.
    #[serde(with = "crate::serde_util::secs")]
    pub max_crawl_delay: Duration,
    /// Link hops from a seed; `None` for no limit.
    pub max_depth: Option<u32>,
    /// Pages fetched in the database in all (this crawl and those it resumes).
    pub max_pages: Option<u64>,
    pub max_pages_per_host: Option<u64>,
    /// Domains in scope; empty means the seeds' registrable domains.
    pub domains: Vec<String>,
    #[serde(with = "crate::serde_util::regexes")]
    pub include: Vec<Regex>,
    #[serde(with = "crate::serde_util::regexes")]
    pub exclude: Vec<Regex>,
    pub max_url_len: usize,
    pub max_segment_repeats: usize,
    /// Distinct queries followed per host and path (calendar and faceted-search traps).
    pub max_query_variants: usize,
    /// Tries per URL before it is given up.
    pub max_attempts: u32,
    /// Consecutive failures after which a host is parked for the rest of the crawl.
    pub host_error_budget: u32,
    /// How long a stored robots.txt is trusted.
    #[serde(with = "crate::serde_util::secs")]
    pub robots_ttl: Duration,
    /// Queue the URLs of sitemaps named in robots.txt.
    pub sitemaps: bool,
    pub warc: Option<PathBuf>,
    /// A frontier shared with other workers (`redis://HOST:PORT/DB`); `None` keeps it in the
    /// store, for one process.
    pub frontier: Option<String>,
    /// How a shared frontier is used.
    pub shared: crate::shared::SharedConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seeds: Vec::new(),
            fetch: FetchConfig::default(),
            robots_token: "zhcorpus".to_string(),
            concurrency: 64,
            per_host: 1,
            delay: Duration::from_secs(1),
            max_crawl_delay: Duration::from_secs(30),
            max_depth: None,
            max_pages: None,
            max_pages_per_host: None,
            domains: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            max_url_len: 2048,
            max_segment_repeats: 3,
            max_query_variants: 200,
            max_attempts: 3,
            host_error_budget: 10,
            robots_ttl: Duration::from_secs(24 * 3600),
            sitemaps: true,
            warc: None,
            frontier: None,
            shared: crate::shared::SharedConfig::default(),
        }
    }
}

impl Config {
    /// Refuses settings that cannot work, naming the key and the range it takes.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("{key}: {why}")));
        for s in &self.seeds {
            let Some(url) = urls::parse(s) else {
                return Err(Error::BadSeed(s.clone()));
            };
            if !self.fetch.allow_private && urls::is_private_host(&url) {
                return Err(Error::Config(format!(
                    "seeds: {s} is a private or loopback address, refused unless \
                     --allow-private (fetch.allow_private = true) is given"
                )));
            }
        }
        if self.concurrency == 0 {
            return bad("concurrency", "must be at least 1");
        }
        if self.per_host == 0 {
            return bad("per_host", "must be at least 1");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts", "must be at least 1");
        }
        if self.host_error_budget == 0 {
            return bad("host_error_budget", "must be at least 1");
        }
        if self.max_segment_repeats == 0 {
            return bad("max_segment_repeats", "must be at least 1");
        }
        if self.max_url_len < 16 {
            return bad("max_url_len", "must be at least 16 bytes");
        }
        if self.robots_token.trim().is_empty() {
            return bad("robots_token", "must not be empty");
        }
        if self.max_pages == Some(0) || self.max_pages_per_host == Some(0) {
            return bad("max_pages", "must be at least 1 when set");
        }
        if let Some(url) = &self.frontier {
            crate::shared::check_url(url)?;
        }
        self.shared.validate()?;
        self.fetch.validate()
    }
}

/// The crawl's counts, live and at the end.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Responses stored (any status).
    pub pages: u64,
    pub documents: u64,
    /// URLs robots.txt kept us from.
    pub robots_disallowed: u64,
    pub retries: u64,
    /// Final failures by class.
    pub errors: std::collections::BTreeMap<String, u64>,
    /// URLs queued (memory and database).
    pub queued: u64,
    pub in_flight: u64,
    /// Hosts with work or fetches.
    pub hosts_active: u64,
    pub hosts_parked: u64,
    /// Links left out as traps (repeated segments, query variants, length).
    pub traps: u64,
    pub elapsed_s: f64,
    /// Stopped before the frontier was empty (Ctrl-C or a limit).
    pub stopped: bool,
    /// Stopped by the caller (`shutdown`, a signal) rather than by its own limits: the crawl
    /// has work left that the same settings would do.
    pub interrupted: bool,
    /// Hosts left alone, with why (robots.txt refused or failing, repeated errors).
    pub parked: std::collections::BTreeMap<String, String>,
    pub warc_files: Vec<String>,
}

impl Report {
    pub fn pages_per_sec(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.pages as f64 / self.elapsed_s
        } else {
            0.0
        }
    }
}

impl Report {
    /// The live line: pages, rate, queue, errors.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} pages ({:.1}/s), {} docs, queue {}, in flight {}, hosts {}",
            self.pages,
            self.pages_per_sec(),
            self.documents,
            self.queued,
            self.in_flight,
            self.hosts_active
        );
        if !self.errors.is_empty() {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            s.push_str(&format!(", errors: {}", errors.join(" ")));
        }
        s
    }

    fn report_to(&self, progress: &dyn Progress) {
        progress.update(self.pages, self.documents);
        progress.message(&self.line());
    }
}

enum RobotsState {
    Unknown,
    Fetching,
    Ready(Arc<Robots>),
}

struct Host {
    key: String,
    /// scheme of its URLs, for robots.txt
    scheme: String,
    queue: VecDeque<QueuedUrl>,
    last_loaded: i64,
    db_more: bool,
    in_flight: usize,
    next_at: Instant,
    delay: Duration,
    robots: RobotsState,
    errors: u32,
    /// robots.txt fetches in a row that got no usable answer.
    robots_failures: u32,
    /// When the last request to the host started.
    last_start: Option<Instant>,
    parked: bool,
    done: u64,
    scheduled: bool,
}

enum Msg {
    Page {
        host: usize,
        job: QueuedUrl,
        result: Box<Result<Response, FetchError>>,
        extraction: Option<Box<extract::Extraction>>,
        sitemap: Option<sitemap::Sitemap>,
    },
    Robots {
        host: usize,
        robots: HostRobots,
        hops: Vec<crate::fetch::Hop>,
    },
}

struct Engine<'a, F: Frontier> {
    store: &'a mut Store,
    frontier: F,
    config: Arc<Config>,
    run: RunId,
    client: Client,
    scope: Scope,
    hosts: Vec<Host>,
    host_index: HashMap<String, usize>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    seen: HashSet<i64>,
    /// Redirect hops that led to a queued URL, by URL hash (a chain longer than
    /// `max_redirects` is cut).
    redirect_hops: HashMap<i64, usize>,
    query_variants: HashMap<u64, usize>,
    in_flight: usize,
    started_pages: u64,
    /// Pages per host stored before this run.
    done_before: HashMap<String, u64>,
    limit_reached: bool,
    tx: mpsc::UnboundedSender<Msg>,
    batch: CrawlBatch,
    report: Report,
    warc: Option<WarcWriter>,
}

/// Crawls until the frontier is empty, a limit is reached, or `shutdown` completes; then the
/// fetches in flight finish (or are left queued for the next run) and the report is returned.
pub async fn crawl(
    store: &mut Store,
    config: Config,
    progress: &dyn Progress,
    shutdown: impl Future<Output = ()>,
) -> Result<Report, Error> {
    config.validate()?;
    let mut config = config;
    config.fetch.keep_raw = config.warc.is_some();
    let config = Arc::new(config);
    let client = Client::new(config.fetch.clone()).map_err(Error::Client)?;
    let seeds = parse_seeds(&config.seeds)?;
    // a shared frontier is reached before anything is written: unreachable, nothing changes
    let mut shared = match &config.frontier {
        Some(url) => Some(crate::shared::Shared::connect(url, &config, store.path()).await?),
        None => None,
    };
    let mut domains: Vec<String> = config
        .domains
        .iter()
        .map(|d| d.to_ascii_lowercase())
        .collect();
    if domains.is_empty() {
        domains = seeds
            .iter()
            .filter_map(|u| u.host_str().map(urls::registrable_domain))
            .collect();
        domains.sort();
        domains.dedup();
    }
    if let Some(shared) = &mut shared {
        domains = shared.domains(domains).await?;
    }
    let scope = Scope {
        domains,
        include: config.include.clone(),
        exclude: config.exclude.clone(),
        max_url_len: config.max_url_len,
        max_segment_repeats: config.max_segment_repeats,
    };
    // one crawl per store: another one would fetch the same queued URLs
    store.lock_stage("crawl")?;
    let requeued = store.reset_in_flight()?;
    store.unpark_hosts()?;
    tracing::info!(
        "crawl: {} seeds, scope {:?}, {} fetches in flight at most ({} per host), {:.2} s between requests to a host{}",
        seeds.len(),
        scope.domains,
        config.concurrency,
        config.per_host,
        config.delay.as_secs_f64(),
        if requeued > 0 {
            format!("; {requeued} URLs in flight when the last crawl stopped are queued again")
        } else {
            String::new()
        }
    );
    let run = store.begin_run("crawl", &config_summary(&config))?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let warc = match &config.warc {
        Some(dir) => Some(WarcWriter::new(dir).map_err(|err| Error::Io {
            path: dir.clone(),
            err,
        })?),
        None => None,
    };
    let parts = Parts {
        store,
        config,
        run,
        client,
        scope,
        tx,
        warc,
    };
    match shared {
        Some(shared) => drive(parts, shared, &seeds, &mut rx, progress, shutdown).await,
        None => drive(parts, Local, &seeds, &mut rx, progress, shutdown).await,
    }
}

/// What the engine is built from, whichever frontier it uses.
struct Parts<'a> {
    store: &'a mut Store,
    config: Arc<Config>,
    run: RunId,
    client: Client,
    scope: Scope,
    tx: mpsc::UnboundedSender<Msg>,
    warc: Option<WarcWriter>,
}

/// Runs the engine over `frontier` and records the run's end.
async fn drive<F: Frontier>(
    parts: Parts<'_>,
    frontier: F,
    seeds: &[Url],
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    progress: &dyn Progress,
    shutdown: impl Future<Output = ()>,
) -> Result<Report, Error> {
    let Parts {
        store,
        config,
        run,
        client,
        scope,
        tx,
        warc,
    } = parts;
    let mut engine = Engine {
        store,
        frontier,
        config: config.clone(),
        run,
        client,
        scope,
        hosts: Vec::new(),
        host_index: HashMap::new(),
        heap: BinaryHeap::new(),
        seen: HashSet::new(),
        redirect_hops: HashMap::new(),
        query_variants: HashMap::new(),
        in_flight: 0,
        started_pages: 0,
        done_before: HashMap::new(),
        limit_reached: false,
        tx,
        batch: CrawlBatch::default(),
        report: Report::default(),
        warc,
    };
    progress.start("crawl", config.max_pages);
    let mut result = engine.run(seeds, rx, progress, shutdown).await;
    progress.finish();
    let report = engine.finish_report();
    // what this worker holds of a shared frontier goes back to it, even after an error
    let busy: Vec<String> = engine.busy().into_iter().map(str::to_string).collect();
    let busy: Vec<&str> = busy.iter().map(String::as_str).collect();
    let closed = engine.frontier.close(&busy, &report).await;
    if result.is_ok() {
        result = closed;
    }
    let status = corpus::RunStatus::of(&result);
    engine.store.finish_run(run, status, &report)?;
    result.map(|()| report)
}

/// Fetches a robots.txt (redirects followed anywhere, the first 512 KiB kept): what to store,
/// and the requests made, for the WARC file.
pub(crate) async fn fetch_robots(
    client: &Client,
    url: &str,
) -> (HostRobots, Vec<crate::fetch::Hop>) {
    let result = match Url::parse(url) {
        Ok(u) => client.fetch(&u, Want::Any, &|_| true).await,
        Err(e) => Err(FetchError {
            class: ErrorClass::InvalidUrl,
            message: e.to_string(),
            status: None,
            final_url: None,
            headers: Vec::new(),
        }),
    };
    let fetched_at = unix_now();
    match result {
        Ok(r) => (
            HostRobots {
                status: Some(r.status),
                error: None,
                body: Some(r.body[..r.body.len().min(ROBOTS_LIMIT)].to_vec()),
                fetched_at,
            },
            r.hops,
        ),
        Err(e) => (
            HostRobots {
                status: e.status,
                error: Some(format!("{}: {}", e.class.as_str(), e.message)),
                body: None,
                fetched_at,
            },
            Vec::new(),
        ),
    }
}

/// The rules a robots.txt fetch gives: `None` when it must be fetched again later.
pub(crate) fn rules_from(r: &HostRobots, token: &str) -> Option<Robots> {
    match r.status {
        Some(s) if (200..300).contains(&s) => {
            Some(Robots::parse(r.body.as_deref().unwrap_or_default(), token))
        }
        // 4xx: no rules (RFC 9309 2.3.1.3); 429 is treated as unreachable
        Some(s) if (400..500).contains(&s) && s != 429 => Some(Robots::allow_all()),
        _ => None,
    }
}

/// The error class of a robots.txt failure that no retry can change.
fn permanent(error: Option<&str>) -> Option<ErrorClass> {
    let class = error?.split(':').next()?;
    [ErrorClass::PrivateAddress, ErrorClass::InvalidUrl]
        .into_iter()
        .find(|c| c.as_str() == class)
}

fn parse_seeds(seeds: &[String]) -> Result<Vec<Url>, Error> {
    seeds
        .iter()
        .map(|s| urls::parse(s).ok_or_else(|| Error::BadSeed(s.clone())))
        .collect()
}

fn config_summary(c: &Config) -> serde_json::Value {
    serde_json::json!({
        "seeds": c.seeds.len(),
        "concurrency": c.concurrency,
        "per_host": c.per_host,
        "delay_s": c.delay.as_secs_f64(),
        "max_depth": c.max_depth,
        "max_pages": c.max_pages,
        "domains": c.domains,
        "user_agent": c.fetch.user_agent,
    })
}

impl<F: Frontier> Engine<'_, F> {
    async fn run(
        &mut self,
        seeds: &[Url],
        rx: &mut mpsc::UnboundedReceiver<Msg>,
        progress: &dyn Progress,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let start = Instant::now();
        self.seen = self.store.frontier_hashes()?.into_iter().collect();
        let seed_rows: Vec<NewUrl> = seeds
            .iter()
            .filter(|u| self.scope.check(u).is_ok())
            .map(|u| new_url(u, 0, None, UrlKind::Page))
            .collect();
        for u in &seed_rows {
            self.seen.insert(u.hash);
        }
        let queued_hosts = self.frontier.open(self.store, &seed_rows).await?;
        let done = self.store.done_per_host()?;
        self.started_pages = done.values().sum();
        self.done_before = done.clone().into_iter().collect();
        for host in queued_hosts {
            let h = self.host(&host, None);
            self.hosts[h].done = done.get(&host).copied().unwrap_or(0);
            self.hosts[h].db_more = true;
            self.schedule(h);
        }
        self.pull().await?;
        self.report.queued = self.count_queued();
        tokio::pin!(shutdown);
        let mut stopping = false;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut upkeep = Instant::now();
        loop {
            if !stopping {
                self.dispatch()?;
            }
            if self.in_flight == 0 && (stopping || self.limit_reached) {
                break;
            }
            if self.in_flight == 0 && self.heap.is_empty() {
                // nothing here to do: the frontier may hand out more (other workers' links)
                self.write_batch().await?;
                if !self.heap.is_empty() || self.pull().await? > 0 {
                    continue;
                }
                let stuck: Vec<(String, usize)> = self
                    .stuck()
                    .into_iter()
                    .map(|(k, n)| (k.to_string(), n))
                    .collect();
                if self.frontier.exhausted(&stuck).await? {
                    break;
                }
            }
            let wake = self
                .heap
                .peek()
                .map(|Reverse((at, _))| *at)
                .filter(|_| {
                    !stopping && self.in_flight < self.config.concurrency && !self.limit_reached
                })
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    self.handle(msg)?;
                    while let Ok(msg) = rx.try_recv() {
                        self.handle(msg)?;
                    }
                    self.write_batch().await?;
                }
                () = tokio::time::sleep_until(wake.into()) => {}
                () = &mut shutdown, if !stopping => {
                    stopping = true;
                    self.report.stopped = true;
                    self.report.interrupted = true;
                }
                _ = tick.tick() => {
                    // only a shared frontier has upkeep: one process skips the host scans
                    if self.config.frontier.is_some()
                        // a tick may come a little early: a slack, or upkeep would skip one
                        && upkeep.elapsed() + Duration::from_millis(25)
                            >= self.config.shared.renew_every()
                    {
                        upkeep = Instant::now();
                        self.upkeep().await?;
                    }
                    if !stopping {
                        self.pull().await?;
                    }
                    self.report.elapsed_s = start.elapsed().as_secs_f64();
                    self.report.in_flight = self.in_flight as u64;
                    self.report.hosts_active = self.hosts.iter().filter(|h| h.in_flight > 0 || h.scheduled).count() as u64;
                    self.report.report_to(progress);
                }
            }
        }
        self.write_batch().await?;
        if self.limit_reached {
            self.report.stopped = true;
        }
        self.report.elapsed_s = start.elapsed().as_secs_f64();
        self.report.report_to(progress);
        Ok(())
    }

    fn finish_report(&mut self) -> Report {
        self.report.in_flight = 0;
        self.report.queued = self.count_queued();
        self.report.hosts_active = 0;
        self.report.hosts_parked = self.hosts.iter().filter(|h| h.parked).count() as u64;
        if let Some(w) = self.warc.take()
            && let Ok(files) = w.finish()
        {
            self.report.warc_files = files.iter().map(|p| p.display().to_string()).collect();
        }
        self.report.clone()
    }

    fn count_queued(&self) -> u64 {
        self.frontier.queued(self.store)
    }

    /// Hosts whose queued URLs this run will not fetch (parked after repeated errors, or at
    /// `max_pages_per_host`), with how many they hold.
    fn stuck(&self) -> Vec<(&str, usize)> {
        (0..self.hosts.len())
            .filter(|&h| {
                let host = &self.hosts[h];
                !host.queue.is_empty()
                    && host.in_flight == 0
                    && (host.parked || !self.under_host_limit(h))
            })
            .map(|h| (self.hosts[h].key.as_str(), self.hosts[h].queue.len()))
            .collect()
    }

    /// Hosts that must not change worker now: a fetch in flight, or a wait still running (the
    /// delay since the last request, a Crawl-delay, a back-off or a Retry-After).
    fn busy(&self) -> Vec<&str> {
        let now = Instant::now();
        self.hosts
            .iter()
            .filter(|h| h.in_flight > 0 || (h.last_start.is_some() && h.next_at > now))
            .map(|h| h.key.as_str())
            .collect()
    }

    /// Leaves what a host holds to the frontier: the host is no longer this worker's.
    fn let_go(&mut self, h: usize) {
        while let Some(job) = self.hosts[h].queue.pop_front() {
            self.frontier.dropped(&job);
        }
    }

    /// The frontier's upkeep; then the URLs of hosts that went to another worker are let go.
    async fn upkeep(&mut self) -> Result<(), Error> {
        let stuck: Vec<(String, usize)> = self
            .stuck()
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        let working = (0..self.hosts.len())
            .filter(|&h| {
                let host = &self.hosts[h];
                host.in_flight > 0
                    || (!host.queue.is_empty() && !host.parked && self.under_host_limit(h))
            })
            .map(|h| self.hosts[h].key.clone())
            .collect();
        let now = HostsNow {
            busy: self.busy().into_iter().map(str::to_string).collect(),
            stuck,
            working,
            slots: (self.config.concurrency / self.config.per_host).max(1),
        };
        self.frontier.maintain(&now, &self.report).await?;
        for h in 0..self.hosts.len() {
            if !self.hosts[h].queue.is_empty()
                && self.hosts[h].in_flight == 0
                && !self.frontier.owns(&self.hosts[h].key)
            {
                self.let_go(h);
            }
        }
        if let Some(domains) = self.frontier.domains() {
            self.scope.domains = domains;
        }
        Ok(())
    }

    /// Takes the URLs the frontier hands out into their hosts' queues; returns how many.
    async fn pull(&mut self) -> Result<usize, Error> {
        let urls = self.frontier.pull(self.store).await?;
        let n = urls.len();
        for u in urls {
            let scheme = u.url.split("://").next().map(str::to_string);
            let h = self.host(&u.host, scheme.as_deref());
            self.hosts[h].queue.push_back(u);
            self.report.queued += 1;
            self.schedule(h);
        }
        Ok(n)
    }

    /// The index of a host, created on first sight.
    fn host(&mut self, key: &str, scheme: Option<&str>) -> usize {
        if let Some(&h) = self.host_index.get(key) {
            return h;
        }
        let h = self.hosts.len();
        self.hosts.push(Host {
            key: key.to_string(),
            scheme: scheme.unwrap_or("http").to_string(),
            queue: VecDeque::new(),
            last_loaded: 0,
            db_more: false,
            in_flight: 0,
            next_at: Instant::now(),
            delay: self.config.delay,
            robots: RobotsState::Unknown,
            errors: 0,
            robots_failures: 0,
            last_start: None,
            parked: false,
            // pages of the host this store holds from earlier runs (a shared frontier hands
            // hosts out as the crawl goes)
            done: self.done_before.get(key).copied().unwrap_or(0),
            scheduled: false,
        });
        self.host_index.insert(key.to_string(), h);
        h
    }

    fn has_work(&self, h: usize) -> bool {
        let host = &self.hosts[h];
        (!host.queue.is_empty() || host.db_more) && self.under_host_limit(h)
    }

    fn schedule(&mut self, h: usize) {
        let host = &self.hosts[h];
        if host.scheduled
            || host.parked
            || matches!(host.robots, RobotsState::Fetching)
            || host.in_flight >= self.config.per_host
            || !self.has_work(h)
        {
            return;
        }
        self.heap.push(Reverse((host.next_at, h)));
        self.hosts[h].scheduled = true;
    }

    fn refill(&mut self, h: usize) -> Result<(), Error> {
        let host = &self.hosts[h];
        if !host.queue.is_empty() || !host.db_more {
            return Ok(());
        }
        let (key, after) = (host.key.clone(), host.last_loaded);
        let urls = self
            .frontier
            .refill(self.store, &key, after, MEMORY_QUEUE)?;
        let host = &mut self.hosts[h];
        host.db_more = urls.len() == MEMORY_QUEUE;
        if let Some(last) = urls.last() {
            host.last_loaded = last.id;
            if let Ok(u) = Url::parse(&last.url) {
                host.scheme = u.scheme().to_string();
            }
        }
        host.queue.extend(urls);
        Ok(())
    }

    fn dispatch(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        while self.in_flight < self.config.concurrency && !self.limit_reached {
            let Some(&Reverse((at, h))) = self.heap.peek() else {
                break;
            };
            if at > now {
                break;
            }
            self.heap.pop();
            self.hosts[h].scheduled = false;
            if self.hosts[h].parked || self.hosts[h].in_flight >= self.config.per_host {
                continue;
            }
            if !self.frontier.owns(&self.hosts[h].key) {
                // its host went to another worker: what this one held is left to it
                self.let_go(h);
                continue;
            }
            if matches!(self.hosts[h].robots, RobotsState::Unknown) {
                self.start_robots(h)?;
                continue;
            }
            let RobotsState::Ready(robots) = &self.hosts[h].robots else {
                continue;
            };
            let robots = robots.clone();
            self.refill(h)?;
            let Some(job) = self.hosts[h].queue.pop_front() else {
                continue;
            };
            if !self.under_host_limit(h) {
                self.hosts[h].queue.push_front(job);
                continue;
            }
            let Ok(url) = Url::parse(&job.url) else {
                self.finish_without_fetch(
                    &job,
                    FinalState::Failed,
                    ErrorClass::InvalidUrl,
                    "unparsable URL",
                );
                self.schedule(h);
                continue;
            };
            if job.kind == UrlKind::Page && !robots.allowed_url(&url) {
                self.report.robots_disallowed += 1;
                self.finish_without_fetch(
                    &job,
                    FinalState::Skipped,
                    ErrorClass::RobotsDisallowed,
                    "disallowed by robots.txt",
                );
                // no request was made: the host may be asked again at once
                self.schedule(h);
                continue;
            }
            if job.kind == UrlKind::Page {
                if let Some(max) = self.config.max_pages
                    && self.started_pages >= max
                {
                    self.hosts[h].queue.push_front(job);
                    self.limit_reached = true;
                    break;
                }
                self.started_pages += 1;
            }
            let host = &mut self.hosts[h];
            host.in_flight += 1;
            host.last_start = Some(now);
            host.next_at = now + host.delay;
            self.in_flight += 1;
            self.spawn_fetch(h, job, url);
            self.schedule(h);
        }
        Ok(())
    }

    /// Whether the host may start another page under `max_pages_per_host`.
    fn under_host_limit(&self, h: usize) -> bool {
        let host = &self.hosts[h];
        self.config
            .max_pages_per_host
            .is_none_or(|max| host.done + (host.in_flight as u64) < max)
    }

    fn finish_without_fetch(
        &mut self,
        job: &QueuedUrl,
        state: FinalState,
        class: ErrorClass,
        why: &str,
    ) {
        self.batch.finished.push(Finished {
            frontier_id: job.id,
            state,
            attempts: job.attempts,
            page: Some(NewPage {
                frontier_id: Some(job.id),
                url: job.url.clone(),
                error_class: Some(class.as_str().to_string()),
                error: Some(why.to_string()),
                ..NewPage::default()
            }),
            extraction: None,
        });
        if class != ErrorClass::RobotsDisallowed {
            *self
                .report
                .errors
                .entry(class.as_str().to_string())
                .or_default() += 1;
        }
    }

    fn start_robots(&mut self, h: usize) -> Result<(), Error> {
        let key = self.hosts[h].key.clone();
        if let Some(stored) = self.store.host_robots(&key)? {
            let age = unix_now() - stored.fetched_at;
            if age >= 0.0
                && age < self.config.robots_ttl.as_secs_f64()
                && let Some(robots) = self.robots_from(&stored)
            {
                self.set_robots(h, robots, false);
                self.schedule(h);
                return Ok(());
            }
        }
        let host = &mut self.hosts[h];
        host.robots = RobotsState::Fetching;
        host.in_flight += 1;
        host.last_start = Some(Instant::now());
        host.next_at = Instant::now() + host.delay;
        self.in_flight += 1;
        let url = format!("{}://{}/robots.txt", host.scheme, host.key);
        let client = self.client.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let (robots, hops) = fetch_robots(&client, &url).await;
            let _ = tx.send(Msg::Robots {
                host: h,
                robots,
                hops,
            });
        });
        Ok(())
    }

    fn robots_from(&self, r: &HostRobots) -> Option<Robots> {
        rules_from(r, &self.config.robots_token)
    }

    fn set_robots(&mut self, h: usize, robots: Robots, fresh: bool) {
        let cap = self.config.max_crawl_delay;
        let host = &mut self.hosts[h];
        if let Some(d) = robots.crawl_delay() {
            let d = Duration::from_secs_f64(d.min(cap.as_secs_f64()));
            host.delay = self.config.delay.max(d);
            if let Some(t) = host.last_start {
                host.next_at = host.next_at.max(t + host.delay);
            }
        }
        if fresh && self.config.sitemaps {
            for s in robots.sitemaps() {
                if let Some(u) = urls::parse(s)
                    && self.scope.check(&u).is_ok()
                    && self.seen.insert(urls::hash(&u))
                {
                    self.batch
                        .discovered
                        .push(new_url(&u, 0, None, UrlKind::Sitemap));
                }
            }
        }
        self.hosts[h].robots = RobotsState::Ready(Arc::new(robots));
    }

    fn spawn_fetch(&mut self, h: usize, job: QueuedUrl, url: Url) {
        let client = self.client.clone();
        let tx = self.tx.clone();
        let want = match job.kind {
            UrlKind::Page => Want::Html,
            UrlKind::Sitemap => Want::Any,
        };
        let max_body = self.config.fetch.max_body;
        tokio::spawn(async move {
            // a page's redirect is queued as a URL of its own (so that each URL is fetched
            // once, under robots.txt and politeness); robots.txt and sitemaps follow them
            let result = client.fetch(&url, want, &|_| want == Want::Any).await;
            let mut extraction = None;
            let mut map = None;
            if let Ok(resp) = &result
                && (200..300).contains(&resp.status)
            {
                let body = resp.body.clone();
                let final_url = resp.final_url.to_string();
                let charset = resp
                    .content_type
                    .as_deref()
                    .and_then(corpus::charset_param)
                    .map(str::to_string);
                let kind = job.kind;
                let parsed = tokio::task::spawn_blocking(move || match kind {
                    UrlKind::Page => (
                        Some(extract::extract(
                            &body,
                            &extract::Options {
                                url: Some(final_url),
                                http_charset: charset,
                                skip_links: false,
                            },
                        )),
                        None,
                    ),
                    UrlKind::Sitemap => (None, sitemap::parse(&body, max_body).ok()),
                })
                .await;
                if let Ok((x, s)) = parsed {
                    extraction = x;
                    map = s;
                }
            }
            let _ = tx.send(Msg::Page {
                host: h,
                job,
                result: Box::new(result),
                extraction: extraction.map(Box::new),
                sitemap: map,
            });
        });
    }

    fn handle(&mut self, msg: Msg) -> Result<(), Error> {
        match msg {
            Msg::Robots {
                host: h,
                robots,
                hops,
            } => {
                self.in_flight -= 1;
                self.hosts[h].in_flight -= 1;
                self.write_warc(&hops)?;
                match self.robots_from(&robots) {
                    Some(parsed) => {
                        tracing::debug!(
                            "{}: robots.txt status {:?}",
                            self.hosts[h].key,
                            robots.status
                        );
                        self.store.save_robots(&self.hosts[h].key, &robots)?;
                        self.frontier.robots_fetched(&self.hosts[h].key, &robots);
                        self.hosts[h].errors = 0;
                        self.hosts[h].robots_failures = 0;
                        self.set_robots(h, parsed, true);
                    }
                    None if permanent(robots.error.as_deref()).is_some() => {
                        // a refusal no retry changes (the address guard): the host's URLs
                        // fail now, with the reason, instead of waiting out the error budget
                        self.store.save_robots(&self.hosts[h].key, &robots)?;
                        let class = permanent(robots.error.as_deref())
                            .unwrap_or(ErrorClass::PrivateAddress);
                        let why = format!(
                            "robots.txt refused: {}",
                            robots.error.clone().unwrap_or_default()
                        );
                        self.fail_host(h, class, &why)?;
                    }
                    None => {
                        self.store.save_robots(&self.hosts[h].key, &robots)?;
                        // unreachable: everything is disallowed until it answers, asked again
                        // with back-off up to --max-attempts times, then the host's URLs fail
                        let why = format!(
                            "robots.txt unavailable: {}",
                            robots
                                .error
                                .clone()
                                .unwrap_or_else(|| format!("status {:?}", robots.status))
                        );
                        self.hosts[h].robots_failures += 1;
                        // out of tries, or out of the host's error budget: its URLs fail now
                        // (parking alone would leave them queued with no row)
                        if self.hosts[h].robots_failures >= self.config.max_attempts
                            || self.hosts[h].errors + 1 >= self.config.host_error_budget
                        {
                            self.fail_host(h, ErrorClass::RobotsUnavailable, &why)?;
                        } else {
                            self.report.retries += 1;
                            self.hosts[h].robots = RobotsState::Unknown;
                            let wait = self.retry_wait(h, None);
                            self.hosts[h].next_at = Instant::now() + wait;
                            self.host_failed(h, &why)?;
                        }
                    }
                }
                self.schedule(h);
            }
            Msg::Page {
                host: h,
                job,
                result,
                extraction,
                sitemap,
            } => {
                self.in_flight -= 1;
                self.hosts[h].in_flight -= 1;
                self.page_done(h, job, *result, extraction.map(|x| *x), sitemap)?;
                self.schedule(h);
            }
        }
        Ok(())
    }

    /// Writes the request and response records of each hop, when writing WARC.
    fn write_warc(&mut self, hops: &[crate::fetch::Hop]) -> Result<(), Error> {
        if let Some(w) = self.warc.as_mut() {
            for hop in hops {
                w.write_hop(hop).map_err(|e| Error::Warc(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The wait before asking a failing host again: Retry-After when given, else exponential
    /// in its consecutive failures, with jitter.
    fn retry_wait(&self, h: usize, retry_after: Option<Duration>) -> Duration {
        if let Some(r) = retry_after {
            return r.min(Duration::from_secs(3600));
        }
        let host = &self.hosts[h];
        let base = host.delay.max(Duration::from_millis(500));
        let exp = base.saturating_mul(1 << host.errors.min(10));
        let capped = exp.min(Duration::from_secs(300));
        capped.mul_f64(0.5 + fastrand::f64())
    }

    /// Fails every queued URL of a host with `class` (each gets its page row) and parks it.
    fn fail_host(&mut self, h: usize, class: ErrorClass, why: &str) -> Result<(), Error> {
        loop {
            self.refill(h)?;
            let Some(job) = self.hosts[h].queue.pop_front() else {
                break;
            };
            self.finish_without_fetch(&job, FinalState::Failed, class, why);
        }
        let host = &mut self.hosts[h];
        host.errors = self.config.host_error_budget;
        if !host.parked {
            host.parked = true;
            tracing::warn!("{}: {why}", host.key);
            self.store.park_host(&host.key.clone(), why)?;
        }
        self.report
            .parked
            .insert(self.hosts[h].key.clone(), why.to_string());
        Ok(())
    }

    fn host_failed(&mut self, h: usize, why: &str) -> Result<(), Error> {
        let host = &mut self.hosts[h];
        host.errors += 1;
        if host.errors >= self.config.host_error_budget && !host.parked {
            host.parked = true;
            tracing::warn!(
                "{}: parked after {} consecutive failures ({why})",
                host.key,
                host.errors
            );
            self.store.park_host(&host.key.clone(), why)?;
            self.report.parked.insert(host.key.clone(), why.to_string());
        }
        Ok(())
    }

    fn page_done(
        &mut self,
        h: usize,
        mut job: QueuedUrl,
        result: Result<Response, FetchError>,
        extraction: Option<extract::Extraction>,
        map: Option<sitemap::Sitemap>,
    ) -> Result<(), Error> {
        job.attempts += 1;
        if let Ok(resp) = &result {
            self.write_warc(&resp.hops)?;
        }
        let resp = match result {
            Ok(resp) if resp.status == 429 || resp.status >= 500 => {
                let wait = resp.header("retry-after").and_then(retry_after);
                let why = format!("HTTP {}", resp.status);
                if self.retry(h, &job, wait)? {
                    return self.host_failed(h, &why);
                }
                self.host_failed(h, &why)?;
                resp
            }
            Ok(resp) => resp,
            Err(e) => {
                if e.class.retryable() {
                    if self.retry(h, &job, None)? {
                        return self.host_failed(h, &e.message);
                    }
                    self.host_failed(h, &e.message)?;
                }
                *self
                    .report
                    .errors
                    .entry(e.class.as_str().to_string())
                    .or_default() += 1;
                self.report.pages += 1;
                self.batch.finished.push(Finished {
                    frontier_id: job.id,
                    state: FinalState::Failed,
                    attempts: job.attempts,
                    page: Some(NewPage {
                        frontier_id: Some(job.id),
                        url: job.url.clone(),
                        final_url: e.final_url.as_ref().map(Url::to_string),
                        status: e.status,
                        error_class: Some(e.class.as_str().to_string()),
                        error: Some(e.message),
                        content_type: crate::fetch::header(&e.headers, "content-type")
                            .map(str::to_string),
                        headers: e.headers,
                        ..NewPage::default()
                    }),
                    extraction: None,
                });
                return Ok(());
            }
        };
        if resp.status < 400 {
            self.hosts[h].errors = 0;
        }
        let ok = (200..400).contains(&resp.status);
        if !ok {
            *self
                .report
                .errors
                .entry(ErrorClass::Http.as_str().to_string())
                .or_default() += 1;
        }
        if job.kind == UrlKind::Page && ok {
            self.hosts[h].done += 1;
        }
        self.report.pages += 1;
        let final_url = resp.final_url.to_string();
        let redirected = final_url != job.url;
        let mut class = (!ok).then_some(ErrorClass::Http);
        // a page's redirect: its target is queued at the same depth, up to max_redirects hops
        if (300..400).contains(&resp.status) && job.kind == UrlKind::Page {
            let hops = self
                .redirect_hops
                .get(&url_hash(&job.url))
                .copied()
                .unwrap_or(0)
                + 1;
            if let Some(loc) = resp
                .header("location")
                .and_then(|l| resp.final_url.join(l).ok())
            {
                if hops > self.config.fetch.max_redirects {
                    class = Some(ErrorClass::TooManyRedirects);
                    *self
                        .report
                        .errors
                        .entry(ErrorClass::TooManyRedirects.as_str().to_string())
                        .or_default() += 1;
                } else if let Some(next) = urls::normalize(&loc) {
                    self.redirect_hops.insert(urls::hash(&next), hops);
                    self.discover(&next, job.depth, Some(job.id), UrlKind::Page);
                }
            }
        }
        let mut document = None;
        if let Some(x) = extraction {
            if job.max_depth_ok(self.config.max_depth) {
                for link in &x.links {
                    if let Ok(u) = Url::parse(link) {
                        self.discover(&u, job.depth + 1, Some(job.id), UrlKind::Page);
                    }
                }
            }
            if !x.text.is_empty() && !x.noindex {
                self.report.documents += 1;
                document = Some(crate::page_document(0, x, final_url.clone()));
            }
        }
        if let Some(map) = map {
            for s in &map.sitemaps {
                if let Ok(u) = Url::parse(s) {
                    self.discover(&u, job.depth, Some(job.id), UrlKind::Sitemap);
                }
            }
            for p in &map.pages {
                if let Ok(u) = Url::parse(p) {
                    self.discover(&u, job.depth, Some(job.id), UrlKind::Page);
                }
            }
        }
        let keep_body = job.kind == UrlKind::Page && (200..300).contains(&resp.status);
        self.batch.finished.push(Finished {
            frontier_id: job.id,
            state: if ok {
                FinalState::Done
            } else {
                FinalState::Failed
            },
            attempts: job.attempts,
            page: Some(NewPage {
                frontier_id: Some(job.id),
                url: job.url.clone(),
                final_url: redirected.then_some(final_url),
                status: Some(resp.status),
                error_class: class.map(|c| c.as_str().to_string()),
                error: None,
                content_type: resp.content_type.clone(),
                elapsed_ms: Some(resp.elapsed.as_millis() as u64),
                body: keep_body.then_some(resp.body),
                headers: resp.headers,
            }),
            extraction: document,
        });
        Ok(())
    }

    /// Puts a URL back at the head of its host's queue after a delay, if it has tries left.
    fn retry(&mut self, h: usize, job: &QueuedUrl, wait: Option<Duration>) -> Result<bool, Error> {
        if job.attempts >= self.config.max_attempts {
            return Ok(false);
        }
        let wait = self.retry_wait(h, wait);
        let host = &mut self.hosts[h];
        host.next_at = host.next_at.max(Instant::now() + wait);
        host.queue.push_front(job.clone());
        self.batch.retries.push((job.id, job.attempts));
        self.report.retries += 1;
        if job.kind == UrlKind::Page {
            self.started_pages = self.started_pages.saturating_sub(1);
        }
        Ok(true)
    }

    /// Queues a link if it is in scope, new, and not a trap.
    fn discover(&mut self, url: &Url, depth: u32, parent: Option<i64>, kind: UrlKind) {
        let Some(url) = urls::normalize(url) else {
            return;
        };
        if kind == UrlKind::Page && self.config.max_depth.is_some_and(|max| depth > max) {
            return;
        }
        match self.scope.check(&url) {
            Ok(()) => {}
            Err(urls::OutOfScope::Domain | urls::OutOfScope::Pattern) => return,
            Err(_) => {
                self.report.traps += 1;
                return;
            }
        }
        let hash = urls::hash(&url);
        if self.seen.contains(&hash) {
            return;
        }
        if url.query().is_some() {
            let key = xxhash_rust::xxh3::xxh3_64(
                format!("{}{}", urls::authority(&url), url.path()).as_bytes(),
            );
            let n = self.query_variants.entry(key).or_default();
            if *n >= self.config.max_query_variants {
                self.report.traps += 1;
                return;
            }
            *n += 1;
        }
        self.seen.insert(hash);
        self.batch
            .discovered
            .push(new_url(&url, depth, parent, kind));
    }

    async fn write_batch(&mut self) -> Result<(), Error> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.batch);
        let written = self
            .frontier
            .commit(self.store, self.run, &mut batch)
            .await?;
        for (u, id) in batch.discovered.into_iter().zip(written.discovered_ids) {
            let Some(id) = id else { continue };
            let scheme = u.url.split("://").next().map(str::to_string);
            let h = self.host(&u.host, scheme.as_deref());
            let host = &mut self.hosts[h];
            if !host.db_more && host.queue.len() < MEMORY_QUEUE {
                host.queue.push_back(QueuedUrl {
                    id,
                    url: u.url,
                    host: u.host,
                    depth: u.depth,
                    kind: u.kind,
                    attempts: 0,
                });
                host.last_loaded = host.last_loaded.max(id);
            } else {
                host.db_more = true;
            }
            self.report.queued += 1;
            self.schedule(h);
        }
        let finished = batch.finished.len() as u64;
        self.report.queued = self.report.queued.saturating_sub(finished);
        Ok(())
    }
}

trait DepthOk {
    fn max_depth_ok(&self, max: Option<u32>) -> bool;
}

impl DepthOk for QueuedUrl {
    /// Whether links found on this page may still be followed.
    fn max_depth_ok(&self, max: Option<u32>) -> bool {
        max.is_none_or(|m| self.depth < m)
    }
}

fn new_url(u: &Url, depth: u32, parent: Option<i64>, kind: UrlKind) -> NewUrl {
    NewUrl {
        url: u.to_string(),
        hash: urls::hash(u),
        host: urls::authority(u),
        depth,
        parent,
        kind,
    }
}

fn url_hash(url: &str) -> i64 {
    urls::parse(url).map_or(0, |u| urls::hash(&u))
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
