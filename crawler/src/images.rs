//! Fetching the images of stored pages' image-text candidates, under the crawl's rules: one
//! queue per host with the same spacing between request starts (the larger of `delay` and the
//! host's Crawl-delay), robots.txt obeyed (the stored copy while it is fresh), private
//! addresses refused, a size limit and timeouts. Every candidate of a page is fetched whatever
//! its depth: an image is part of the page it is on.
//!
//! Each image is sniffed from its bytes (the Content-Type is not trusted), its dimensions read
//! from the header without decoding, and stored once under the SHA-256 of its bytes; an image
//! served with `X-Robots-Tag: noai` or `noimageai` is not stored. Results are committed in
//! batches, each URL's outcome with its image, so a fetch killed at any moment and started again
//! fetches nothing that was stored; URLs that failed in a way a retry may change (timeouts,
//! refused connections, HTTP 429 and 5xx) are tried again by later runs, up to `max_attempts`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corpus::images::{FetchOutcome, ImageFetch, NewImage};
use corpus::{HostRobots, Progress, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use url::Url;

use crate::Error;
use crate::engine::{fetch_robots, rules_from, unix_now};
use crate::fetch::{Client, ErrorClass, FetchConfig, Want};
use crate::robots::Robots;
use crate::urls;

/// How images are fetched; every field has its default in [`ImageFetchConfig::default`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageFetchConfig {
    /// Client limits; `fetch.max_body` is the largest image kept (10 MiB by default).
    pub fetch: FetchConfig,
    pub robots_token: String,
    /// Fetches in flight across all hosts.
    pub concurrency: usize,
    /// Fetches in flight per host.
    pub per_host: usize,
    /// Least time between two request starts on one host.
    #[serde(with = "crate::serde_util::secs")]
    pub delay: Duration,
    /// The largest Crawl-delay honoured.
    #[serde(with = "crate::serde_util::secs")]
    pub max_crawl_delay: Duration,
    /// How long a stored robots.txt is trusted.
    #[serde(with = "crate::serde_util::secs")]
    pub robots_ttl: Duration,
    /// Tries per URL, over all runs, for failures a retry may change.
    pub max_attempts: u32,
    /// Stop after this many fetches in this run.
    pub max_images: Option<u64>,
}

impl Default for ImageFetchConfig {
    fn default() -> Self {
        let crawl = crate::Config::default();
        ImageFetchConfig::from_crawl(&crawl)
    }
}

impl ImageFetchConfig {
    /// The image fetch with a crawl's client, politeness and robots settings.
    pub fn from_crawl(c: &crate::Config) -> Self {
        ImageFetchConfig {
            fetch: c.fetch.clone(),
            robots_token: c.robots_token.clone(),
            concurrency: c.concurrency,
            per_host: c.per_host,
            delay: c.delay,
            max_crawl_delay: c.max_crawl_delay,
            robots_ttl: c.robots_ttl,
            max_attempts: c.max_attempts,
            max_images: None,
        }
    }

    /// Refuses settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("images.fetch.{key}: {why}")));
        if self.concurrency == 0 {
            return bad("concurrency", "must be at least 1");
        }
        if self.per_host == 0 {
            return bad("per_host", "must be at least 1");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts", "must be at least 1");
        }
        if self.robots_token.trim().is_empty() {
            return bad("robots_token", "must not be empty");
        }
        if self.max_images == Some(0) {
            return bad("max_images", "must be at least 1 when set");
        }
        self.fetch.validate()
    }
}

/// What an image fetch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageFetchReport {
    /// Requests for images made (robots.txt not counted).
    pub requests: u64,
    pub stored: u64,
    pub failed: u64,
    pub retry: u64,
    pub noai: u64,
    pub robots: u64,
    pub not_image: u64,
    /// Left for a later run, unrecorded: their host's robots.txt could not be read.
    pub robots_unavailable: u64,
    pub bytes: u64,
    pub hosts: u64,
    pub seconds: f64,
    /// The run stopped early (a signal or `max_images`); start it again to go on.
    pub stopped: bool,
}

impl ImageFetchReport {
    /// One line for logs and the CLI.
    pub fn line(&self) -> String {
        format!(
            "{} image requests to {} hosts in {:.1} s: {} stored ({} bytes), {} failed, {} to retry, {} noai, {} disallowed by robots.txt, {} not images, {} left for a robots.txt that could not be read",
            self.requests,
            self.hosts,
            self.seconds,
            self.stored,
            self.bytes,
            self.failed,
            self.retry,
            self.noai,
            self.robots,
            self.not_image,
            self.robots_unavailable
        )
    }
}

/// Candidates read from the store at a time.
const PAGE: usize = 2_000;

/// Results committed per transaction.
const BATCH: usize = 64;

/// Longest time a finished fetch waits to be committed.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

enum RobotsState {
    Unknown,
    Fetching,
    Ready(Arc<Robots>),
    /// robots.txt could not be read: the host's URLs wait for a later run.
    Unavailable(String),
}

struct Host {
    scheme: String,
    /// (the URL as stored, parsed)
    queue: VecDeque<(String, Url)>,
    robots: RobotsState,
    next_at: Instant,
    delay: Duration,
    in_flight: usize,
}

enum Msg {
    Robots { host: String, robots: HostRobots },
    Image(ImageFetch),
}

/// Fetches the images of every candidate not fetched yet, until none is left, `max_images`
/// is reached or `shutdown` completes (the fetches in flight finish first).
pub async fn fetch_images(
    store: &mut Store,
    config: ImageFetchConfig,
    progress: &dyn Progress,
    shutdown: impl Future<Output = ()>,
) -> Result<ImageFetchReport, Error> {
    config.validate()?;
    let client = Client::new(config.fetch.clone()).map_err(Error::Client)?;
    store.lock_stage("images-fetch")?;
    let run = store.begin_run("images-fetch", &config)?;
    progress.start("images fetch", None);
    let result = run_fetch(store, &config, &client, run, progress, shutdown).await;
    progress.finish();
    let status = corpus::RunStatus::of(&result);
    let report = result.as_ref().cloned().unwrap_or_default();
    store.finish_run(run, status, &report)?;
    result
}

async fn run_fetch(
    store: &mut Store,
    config: &ImageFetchConfig,
    client: &Client,
    run: corpus::RunId,
    progress: &dyn Progress,
    shutdown: impl Future<Output = ()>,
) -> Result<ImageFetchReport, Error> {
    let started = Instant::now();
    let mut report = ImageFetchReport::default();
    let mut hosts: HashMap<String, Host> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut after = 0i64;
    let mut exhausted = false;
    let mut queued = 0usize;
    let mut tasks: JoinSet<Msg> = JoinSet::new();
    let mut batch: Vec<ImageFetch> = Vec::new();
    let mut stopping = false;
    let mut started_images = 0u64;
    let mut last_write = Instant::now();
    tokio::pin!(shutdown);
    loop {
        // keep a page of candidates queued
        if !exhausted && !stopping && queued < PAGE {
            let rows = store.image_urls_to_fetch(after, PAGE, config.max_attempts)?;
            exhausted = rows.len() < PAGE;
            for (id, url, _) in rows {
                after = id;
                if !seen.insert(url.clone()) {
                    continue;
                }
                let Some(parsed) = Url::parse(&url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                else {
                    batch.push(failed(
                        &url,
                        FetchOutcome::Failed,
                        "invalid_url: not an http(s) URL",
                    ));
                    continue;
                };
                let key = urls::authority(&parsed);
                let host = hosts.entry(key).or_insert_with(|| Host {
                    scheme: parsed.scheme().to_string(),
                    queue: VecDeque::new(),
                    robots: RobotsState::Unknown,
                    next_at: Instant::now(),
                    delay: config.delay,
                    in_flight: 0,
                });
                host.queue.push_back((url, parsed));
                queued += 1;
            }
            report.hosts = hosts.len() as u64;
        }
        // start what politeness allows
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        if !stopping {
            for (key, host) in hosts.iter_mut() {
                while tasks.len() < config.concurrency
                    && host.in_flight < config.per_host
                    && !host.queue.is_empty()
                {
                    match &host.robots {
                        RobotsState::Unknown => {
                            if let Some(stored) = store.host_robots(key)? {
                                let age = unix_now() - stored.fetched_at;
                                if age >= 0.0
                                    && age < config.robots_ttl.as_secs_f64()
                                    && let Some(r) = rules_from(&stored, &config.robots_token)
                                {
                                    set_robots(host, r, config);
                                    continue;
                                }
                            }
                            if host.next_at > now {
                                break;
                            }
                            host.robots = RobotsState::Fetching;
                            host.in_flight += 1;
                            host.next_at = now + host.delay;
                            let url = format!("{}://{key}/robots.txt", host.scheme);
                            let client = client.clone();
                            let key = key.clone();
                            tasks.spawn(async move {
                                Msg::Robots {
                                    robots: fetch_robots(&client, &url).await.0,
                                    host: key,
                                }
                            });
                        }
                        RobotsState::Fetching => break,
                        RobotsState::Unavailable(why) => {
                            // left unrecorded: no request was made, the next run asks again
                            tracing::info!(
                                "images fetch: {key}: {} images left for a later run: {why}",
                                host.queue.len()
                            );
                            report.robots_unavailable += host.queue.len() as u64;
                            queued -= host.queue.len();
                            host.queue.clear();
                        }
                        RobotsState::Ready(robots) => {
                            let Some((stored, url)) = host.queue.front().cloned() else {
                                break;
                            };
                            if !robots.allowed_url(&url) {
                                host.queue.pop_front();
                                queued -= 1;
                                batch.push(failed(
                                    &stored,
                                    FetchOutcome::Robots,
                                    "robots_disallowed: robots.txt disallows it",
                                ));
                                continue;
                            }
                            if host.next_at > now {
                                break;
                            }
                            if config.max_images.is_some_and(|m| started_images >= m) {
                                stopping = true;
                                break;
                            }
                            host.queue.pop_front();
                            queued -= 1;
                            host.in_flight += 1;
                            host.next_at = now + host.delay;
                            started_images += 1;
                            let client = client.clone();
                            let robots = robots.clone();
                            tasks.spawn(async move {
                                Msg::Image(fetch_image(&client, stored, url, &robots).await)
                            });
                        }
                    }
                }
                if host.in_flight < config.per_host
                    && !host.queue.is_empty()
                    && host.next_at > now
                    && !matches!(host.robots, RobotsState::Fetching)
                {
                    wake = Some(wake.map_or(host.next_at, |w| w.min(host.next_at)));
                }
            }
        }
        // committed by the batch, when nothing is in flight, and at least every second
        if batch.len() >= BATCH
            || (!batch.is_empty() && (tasks.is_empty() || last_write.elapsed() >= COMMIT_EVERY))
        {
            tally(&mut report, &batch);
            store.record_image_fetches(run, &batch)?;
            batch.clear();
            last_write = Instant::now();
            progress.update(report.requests, report.stored);
        }
        let idle = tasks.is_empty();
        if idle && (stopping || (exhausted && queued == 0)) {
            break;
        }
        if idle && wake.is_none() && !stopping {
            if exhausted {
                // only hosts with no way forward are left (cannot happen: every state drains)
                break;
            }
            // a page of candidates that gave nothing to start: read the next one
            continue;
        }
        let sleep_until = wake.unwrap_or_else(|| Instant::now() + Duration::from_millis(200));
        tokio::select! {
            done = tasks.join_next(), if !tasks.is_empty() => {
                let Some(done) = done else { continue };
                let msg = done.map_err(|e| Error::Client(format!("image fetch task: {e}")))?;
                match msg {
                    Msg::Robots { host, robots } => {
                        store.save_robots(&host, &robots)?;
                        if let Some(h) = hosts.get_mut(&host) {
                            h.in_flight -= 1;
                            h.robots = match rules_from(&robots, &config.robots_token) {
                                Some(r) => {
                                    set_robots(h, r, config);
                                    continue;
                                }
                                None => RobotsState::Unavailable(format!(
                                    "robots_unavailable: {}",
                                    robots.error.clone().unwrap_or_else(|| format!(
                                        "robots.txt answered HTTP {}",
                                        robots.status.unwrap_or(0)
                                    ))
                                )),
                            };
                        }
                    }
                    Msg::Image(f) => {
                        report.requests += 1;
                        if let Some(h) = Url::parse(&f.url).ok().and_then(|u| hosts.get_mut(&urls::authority(&u))) {
                            h.in_flight -= 1;
                        }
                        batch.push(f);
                    }
                }
            }
            _ = tokio::time::sleep_until(sleep_until.into()), if !idle || wake.is_some() => {}
            _ = &mut shutdown, if !stopping => {
                tracing::info!("images fetch: stopping after the fetches in flight");
                stopping = true;
            }
        }
        if progress.cancelled() {
            stopping = true;
        }
    }
    if !batch.is_empty() {
        tally(&mut report, &batch);
        store.record_image_fetches(run, &batch)?;
    }
    report.stopped = stopping;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn set_robots(host: &mut Host, robots: Robots, config: &ImageFetchConfig) {
    if let Some(d) = robots.crawl_delay() {
        let d = Duration::from_secs_f64(d.min(config.max_crawl_delay.as_secs_f64()));
        host.delay = config.delay.max(d);
    }
    host.robots = RobotsState::Ready(Arc::new(robots));
}

fn tally(report: &mut ImageFetchReport, batch: &[ImageFetch]) {
    for f in batch {
        match f.outcome {
            FetchOutcome::Ok => {
                report.stored += 1;
                report.bytes += f.image.as_ref().map_or(0, |i| i.body.len() as u64);
            }
            FetchOutcome::Failed => report.failed += 1,
            FetchOutcome::Retry => report.retry += 1,
            FetchOutcome::Noai => report.noai += 1,
            FetchOutcome::Robots => report.robots += 1,
            FetchOutcome::NotImage => report.not_image += 1,
        }
    }
}

fn failed(url: &str, outcome: FetchOutcome, error: &str) -> ImageFetch {
    ImageFetch {
        url: url.to_string(),
        final_url: None,
        status: None,
        outcome,
        error: Some(error.to_string()),
        image: None,
        elapsed_ms: None,
    }
}

/// Whether an `X-Robots-Tag` value forbids use for AI training: `noai` or `noimageai`, alone
/// or after a user agent (`otherbot: noai`).
pub fn forbids_ai(value: &str) -> bool {
    value
        .split([',', ':', ' '])
        .map(|t| t.trim().to_ascii_lowercase())
        .any(|t| t == "noai" || t == "noimageai")
}

/// Sniffs an image from its bytes: format, width and height (from the header, not decoded).
pub fn sniff(body: &[u8]) -> Option<(String, Option<u32>, Option<u32>)> {
    let kind = imagesize::image_type(body).ok()?;
    let format = format!("{kind:?}").to_ascii_lowercase();
    let size = imagesize::blob_size(body).ok();
    let dim = |v: usize| u32::try_from(v).ok();
    Some((
        format,
        size.as_ref().and_then(|s| dim(s.width)),
        size.as_ref().and_then(|s| dim(s.height)),
    ))
}

/// The lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

/// Fetches one image, recorded under `stored` (the URL as the candidate holds it). Redirects
/// are followed on the same host where robots.txt allows the target; any other redirect is
/// recorded as a failure with its status.
async fn fetch_image(client: &Client, stored: String, url: Url, robots: &Robots) -> ImageFetch {
    let start = Instant::now();
    let host = urls::authority(&url);
    let follow = |next: &Url| urls::authority(next) == host && robots.allowed_url(next);
    let result = client.fetch(&url, Want::Any, &follow).await;
    let elapsed_ms = Some(start.elapsed().as_millis() as u64);
    let mut out = failed(&stored, FetchOutcome::Failed, "");
    out.elapsed_ms = elapsed_ms;
    match result {
        Err(e) => {
            out.status = e.status;
            out.final_url = e.final_url.map(|u| u.to_string());
            let server_busy = e.status.is_some_and(|s| s == 429 || s >= 500);
            out.outcome = if e.class.retryable() || server_busy {
                FetchOutcome::Retry
            } else {
                FetchOutcome::Failed
            };
            out.error = Some(format!("{}: {}", e.class.as_str(), e.message));
        }
        Ok(r) => {
            out.status = Some(r.status);
            out.final_url = (r.final_url != url).then(|| r.final_url.to_string());
            if !(200..300).contains(&r.status) {
                out.outcome = if r.status == 429 || r.status >= 500 {
                    FetchOutcome::Retry
                } else {
                    FetchOutcome::Failed
                };
                out.error = Some(format!(
                    "{}: answered HTTP {}",
                    ErrorClass::Http.as_str(),
                    r.status
                ));
            } else if r
                .headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("x-robots-tag") && forbids_ai(v))
            {
                out.outcome = FetchOutcome::Noai;
                out.error = Some("noai: X-Robots-Tag forbids AI use".to_string());
            } else if let Some((format, width, height)) = sniff(&r.body) {
                out.outcome = FetchOutcome::Ok;
                out.error = None;
                out.image = Some(NewImage {
                    sha256: sha256_hex(&r.body),
                    format,
                    width,
                    height,
                    body: r.body,
                });
            } else {
                out.outcome = FetchOutcome::NotImage;
                out.error = Some(format!(
                    "not_image: {} bytes of no known image format (content type {})",
                    r.body.len(),
                    r.content_type.as_deref().unwrap_or("none")
                ));
            }
        }
    }
    out
}

/// Runs [`fetch_images`] on a runtime of its own, stopping once `progress.cancelled()`.
pub fn fetch_images_blocking(
    store: &mut Store,
    config: ImageFetchConfig,
    progress: &dyn Progress,
) -> Result<ImageFetchReport, Error> {
    crate::runtime()?.block_on(fetch_images(
        store,
        config,
        progress,
        crate::until_cancelled(progress),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noai_tokens_alone_or_after_an_agent() {
        assert!(forbids_ai("noai"));
        assert!(forbids_ai("noindex, NoImageAI"));
        assert!(forbids_ai("otherbot: noai"));
        assert!(!forbids_ai("noindex, nofollow"));
        assert!(!forbids_ai("noaiprefix"));
    }
}
