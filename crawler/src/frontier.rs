//! Where the crawl's URLs wait: the store's own frontier table (one process, the default), or
//! a frontier shared by many workers through Redis ([`crate::shared`]). The engine talks to
//! both through [`Frontier`]; politeness, robots.txt and the writing of pages stay in the
//! engine whichever it is.

use corpus::{BatchWritten, CrawlBatch, HostRobots, NewUrl, QueuedUrl, RunId, Store};

use crate::Error;
use crate::engine::Report;

/// The engine's hosts as the frontier's upkeep needs them.
#[derive(Debug, Default)]
pub(crate) struct HostsNow {
    /// Hosts with fetches in flight or a wait still running (delay, back-off): they must not
    /// change worker now.
    pub busy: Vec<String>,
    /// Hosts whose URLs this run will not fetch (parked, or at their page limit), with how
    /// many they hold.
    pub stuck: Vec<(String, usize)>,
    /// Hosts with URLs to fetch (queued or in flight).
    pub working: Vec<String>,
    /// Hosts the worker can ask at once: its fetches in flight over those per host.
    pub slots: usize,
}

/// The crawl's source of URLs and the place its discoveries go.
pub(crate) trait Frontier {
    /// Adds the seeds; returns the hosts whose URLs wait in the store (read with
    /// [`Frontier::refill`]).
    async fn open(&mut self, store: &mut Store, seeds: &[NewUrl]) -> Result<Vec<String>, Error>;

    /// Up to `limit` queued URLs of `host` in the store with an id above `after`.
    fn refill(
        &mut self,
        store: &Store,
        host: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<QueuedUrl>, Error>;

    /// URLs handed to this worker since the last call, entered into its store.
    async fn pull(&mut self, store: &mut Store) -> Result<Vec<QueuedUrl>, Error>;

    /// Writes a batch of results: the discovered URLs queued, the pages committed to the
    /// store, the finished URLs released. For each discovered URL, its id when it was queued
    /// in the store (the engine then holds it), `None` otherwise.
    async fn commit(
        &mut self,
        store: &mut Store,
        run: RunId,
        batch: &mut CrawlBatch,
    ) -> Result<BatchWritten, Error>;

    /// Whether this worker may fetch `host`'s URLs now.
    fn owns(&self, host: &str) -> bool;

    /// A URL this worker held and will not fetch (its host is no longer its own).
    fn dropped(&mut self, job: &QueuedUrl);

    /// A robots.txt this worker fetched, for the other workers.
    fn robots_fetched(&mut self, host: &str, robots: &HostRobots);

    /// Periodic upkeep: leases, the share of work, the worker's line in the status.
    async fn maintain(&mut self, hosts: &HostsNow, report: &Report) -> Result<(), Error>;

    /// Whether no URL waits anywhere but with stuck hosts: the crawl is over.
    async fn exhausted(&mut self, stuck: &[(String, usize)]) -> Result<bool, Error>;

    /// The crawl's scope when the frontier keeps it (the domains of every worker's seeds).
    fn domains(&self) -> Option<Vec<String>>;

    /// URLs waiting, for the report.
    fn queued(&self, store: &Store) -> u64;

    /// The end of the crawl (complete or not): what this worker holds is given back, but for
    /// the partitions of `busy` hosts, whose politeness wait must run out first (their leases
    /// expire by themselves).
    async fn close(&mut self, busy: &[&str], report: &Report) -> Result<(), Error>;
}

/// The frontier in the store itself: one process per store, resumable from the file alone.
pub(crate) struct Local;

impl Frontier for Local {
    async fn open(&mut self, store: &mut Store, seeds: &[NewUrl]) -> Result<Vec<String>, Error> {
        store.enqueue(seeds)?;
        Ok(store.queued_hosts()?)
    }

    fn refill(
        &mut self,
        store: &Store,
        host: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<QueuedUrl>, Error> {
        Ok(store.queued_urls(host, after, limit)?)
    }

    async fn pull(&mut self, _: &mut Store) -> Result<Vec<QueuedUrl>, Error> {
        Ok(Vec::new())
    }

    async fn commit(
        &mut self,
        store: &mut Store,
        run: RunId,
        batch: &mut CrawlBatch,
    ) -> Result<BatchWritten, Error> {
        Ok(store.record_crawl(run, batch)?)
    }

    fn owns(&self, _: &str) -> bool {
        true
    }

    fn dropped(&mut self, _: &QueuedUrl) {}

    fn robots_fetched(&mut self, _: &str, _: &HostRobots) {}

    async fn maintain(&mut self, _: &HostsNow, _: &Report) -> Result<(), Error> {
        Ok(())
    }

    async fn exhausted(&mut self, _: &[(String, usize)]) -> Result<bool, Error> {
        Ok(true)
    }

    fn domains(&self) -> Option<Vec<String>> {
        None
    }

    fn queued(&self, store: &Store) -> u64 {
        store.queued_count().unwrap_or(0)
    }

    async fn close(&mut self, _: &[&str], _: &Report) -> Result<(), Error> {
        Ok(())
    }
}
