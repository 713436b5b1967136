//! A crawl frontier shared by many workers through Redis: `zhcorpus crawl --frontier
//! redis://HOST:PORT/DB --db worker1.db`.
//!
//! Hosts are spread over a fixed number of partitions by a hash of `host[:port]`. Each
//! partition is leased to one worker at a time (a key with a TTL, renewed while the worker
//! lives), so one worker alone asks a host at any moment and the per-host politeness of the
//! engine (delay, in-flight limit, Crawl-delay, back-off) holds across the cluster. A worker
//! leases `ceil(partitions / live workers)` of them; one that holds more lets the extra ones
//! without work go once their hosts are idle and their politeness delay has run out, so that
//! the next owner can start at once. Partitions with work move by the hosts' balance: each
//! heartbeat carries the worker's hosts with work and fetch slots, and a worker with more hosts
//! per slot than another hands it partitions, the lease passing straight to it.
//!
//! Each partition's URLs wait in a Redis stream read through one consumer group. An entry
//! stays pending until its page is committed to the worker's own store; then it is
//! acknowledged and deleted. A partition's next owner claims every pending entry
//! (`XAUTOCLAIM`): the URLs a dead worker held or had in flight are fetched again, nothing is
//! lost. One set of URL hashes is the seen-set: a URL is queued once across all workers
//! (added and queued in one script, so that no crash can leave it seen and not queued).
//! robots.txt answers are shared (one hash per host, expiring after the robots TTL), so each
//! host's robots.txt is fetched once per TTL whatever the worker.
//!
//! Order of a batch's writes: the discovered URLs are queued in Redis, then the pages committed
//! to the store, then their entries acknowledged (in groups: `ACK_BATCH`, `ACK_WAIT`). A worker
//! killed between the commit and the acknowledgement leaves pages that their partition's next
//! owner fetches again: the pair is found by `zhcorpus merge`, which keeps one page per URL;
//! the same worker restarted on its store sees the page stored and only acknowledges it.
//!
//! Every Redis call is retried with back-off while the server is unreachable, up to
//! `give_up_after`; then the crawl stops with an error, keeping what it committed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use corpus::{BatchWritten, CrawlBatch, HostRobots, NewUrl, QueuedUrl, RunId, Store, UrlKind};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script, Value};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::engine::{Config, Report};
use crate::frontier::{Frontier, HostsNow};
use crate::urls;

/// The consumer group every partition's stream is read through.
const GROUP: &str = "crawl";

/// Committed pages' entries are acknowledged together, once this many wait or the oldest has
/// waited this long, and at every upkeep (four times a second, before any partition changes
/// hands): one Redis call for several commits. A worker killed meanwhile leaves them to be
/// fetched again by the next owner.
const ACK_BATCH: usize = 256;
const ACK_WAIT: Duration = Duration::from_millis(250);

/// How a shared frontier is used; every worker of a crawl should be given the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharedConfig {
    /// Partitions the hosts are spread over. The first worker fixes the number for the crawl;
    /// later workers take it from Redis. More partitions than workers let the work move in
    /// small pieces when a worker joins or dies.
    pub partitions: u32,
    /// How long a worker's lease on a partition lasts without renewal (renewed every third of
    /// it): how long a dead worker's hosts wait before another worker takes them.
    #[serde(with = "crate::serde_util::secs")]
    pub lease_ttl: Duration,
    /// How long Redis may stay unreachable before the crawl stops with an error.
    #[serde(with = "crate::serde_util::secs")]
    pub give_up_after: Duration,
    /// This worker's name in the cluster [default: the host name, the store's file name and
    /// the process id].
    pub worker: Option<String>,
    /// URLs a worker holds from Redis at most (waiting in its hosts' queues or in flight),
    /// spread over its partitions: a partition's URLs come in the order they were found, so
    /// with too few held per partition one host's burst of links holds back the partition's
    /// other hosts.
    pub buffer: usize,
    /// The prefix of every Redis key of the crawl: two crawls on one Redis database need two.
    pub prefix: String,
}

impl Default for SharedConfig {
    fn default() -> Self {
        SharedConfig {
            partitions: 64,
            lease_ttl: Duration::from_secs(10),
            give_up_after: Duration::from_secs(60),
            worker: None,
            buffer: 4096,
            prefix: "zhcorpus".to_string(),
        }
    }
}

impl SharedConfig {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("shared.{key}: {why}")));
        if !(1..=65_536).contains(&self.partitions) {
            return bad("partitions", "must be from 1 to 65536");
        }
        if self.lease_ttl < Duration::from_millis(300) {
            return bad("lease_ttl", "must be at least 0.3 seconds");
        }
        if self.buffer == 0 {
            return bad("buffer", "must be at least 1");
        }
        if self.prefix.is_empty() || self.prefix.contains(char::is_whitespace) {
            return bad("prefix", "must be a word without spaces");
        }
        if self
            .worker
            .as_deref()
            .is_some_and(|w| w.is_empty() || w.contains(char::is_whitespace))
        {
            return bad("worker", "must be a word without spaces");
        }
        Ok(())
    }

    /// How often the share of work is looked at again (one small Redis call, more when work
    /// moves): a third of the TTL, and at least four times a second, so that a worker that
    /// joins gets its share within a second or two.
    pub(crate) fn renew_every(&self) -> Duration {
        (self.lease_ttl / 3).min(Duration::from_millis(250))
    }
}

/// Refuses a frontier address that is not a Redis URL.
pub(crate) fn check_url(url: &str) -> Result<(), Error> {
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| Error::Config(format!("frontier: {url:?} is not a Redis URL ({e})")))?;
    if url.to_ascii_lowercase().contains("protocol=resp3") {
        return Err(Error::Config(format!(
            "frontier: {url:?}: the shared frontier speaks RESP2; leave out protocol=resp3"
        )));
    }
    Ok(())
}

/// A URL as it waits in a partition's stream.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    url: String,
    host: String,
    depth: u32,
    #[serde(default)]
    sitemap: bool,
}

/// A partition this worker holds.
#[derive(Debug)]
struct Part {
    /// Its pending entries (a dead owner's, this worker's before a lost reply, or those it
    /// let go while draining) are still to be claimed.
    recover: bool,
    /// Held beyond this worker's share: let go once its hosts are idle.
    draining: bool,
    /// Until when the lease is surely this worker's (the last renewal's start, plus the TTL
    /// less a margin): past it, the partition's hosts are left alone until renewed.
    until: Instant,
    /// When this worker leased it.
    since: Instant,
    /// The worker it is being handed to (once its hosts are idle), and since when, when it
    /// drains for one.
    hand_to: Option<(String, Instant)>,
    /// When another worker handed it to this one: not handed on again for a while.
    handed: Option<Instant>,
}

/// A worker's load: hosts with URLs to fetch, and how many it can ask at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Load {
    pub hosts: usize,
    pub slots: usize,
}

/// What a heartbeat tells: the live workers, and the others' loads.
struct Beat {
    live: u64,
    others: Vec<(String, Load)>,
}

/// Whom to hand hosts to, and how many: the other worker with the fewest hosts per slot, when
/// moving hosts to it evens out the time both need (hosts per slot) by at least a host, or two
/// (and an eighth of this worker's hosts) when it is not hungry. A worker that can ask all its
/// hosts at once keeps them.
pub(crate) fn plan_handover(me: Load, others: &[(String, Load)]) -> Option<(String, usize)> {
    if me.slots == 0 || me.hosts <= me.slots {
        return None;
    }
    let (name, to) = others
        .iter()
        .filter(|(_, l)| l.slots > 0)
        .min_by(|(na, a), (nb, b)| {
            (a.hosts * b.slots)
                .cmp(&(b.hosts * a.slots))
                .then_with(|| na.cmp(nb))
        })?;
    // hosts k moved evens the ratios: (H - k) / S = (h + k) / s
    let k = (me.hosts * to.slots).saturating_sub(to.hosts * me.slots) / (me.slots + to.slots);
    let least = if to.hosts < to.slots {
        1
    } else {
        me.hosts.div_ceil(8).max(2)
    };
    (k >= least).then(|| (name.clone(), k))
}

pub(crate) struct Shared {
    /// The address, for messages (without a password).
    url: String,
    conn: ConnectionManager,
    config: SharedConfig,
    me: String,
    /// The worker's store, shown in the cluster's status.
    db: String,
    robots_ttl: Duration,
    owned: BTreeMap<u32, Part>,
    /// Entries held, by the id of their URL in the store: partition and stream entry id.
    held: HashMap<i64, (u32, String)>,
    /// Hosts whose robots.txt was looked up in Redis.
    robots_checked: HashSet<String>,
    /// robots.txt answers fetched here, to be shared at the next commit.
    robots_out: Vec<(String, HostRobots)>,
    /// A call failed and was tried again: a read's reply may have been lost, leaving entries
    /// pending to this worker that it never saw; they are claimed again at the next pull.
    troubled: std::cell::Cell<bool>,
    /// URLs held by hosts this run will not fetch (parked, at their page limit), per
    /// partition, as the engine last said.
    stuck: HashMap<u32, usize>,
    /// The crawl's scope: the domains of every worker's seeds.
    domains: Vec<String>,
    /// Partitions this worker let go of or handed over, and when: not leased back for a while.
    given: HashMap<u32, Instant>,
    /// Its hosts with work and slots, as the engine last said.
    load: Load,
    /// Entries of pages committed to the store and not acknowledged yet, and since when.
    unacked: Vec<(u32, String)>,
    unacked_since: Option<Instant>,
    /// Partitions taken from its handed set at the last heartbeat: removed from the set at the
    /// next one (a reply lost, they are read again).
    taken: Vec<u32>,
    /// When it last handed partitions to another worker (the others' loads take a moment to
    /// show it).
    last_handover: Option<Instant>,
    /// When the leases were last renewed, and the scope and the status line last written:
    /// every third of the TTL, while the share is looked at four times a second.
    renewed: Option<Instant>,
    reported: Option<Instant>,
}

/// Queues URLs not seen before: KEYS = the seen-set, then one stream per URL; ARGV = hash and
/// entry per URL. The stream's consumer group is created with it.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for i = 2, #KEYS do
  if redis.call('SADD', KEYS[1], ARGV[2 * i - 3]) == 1 then
    if redis.call('EXISTS', KEYS[i]) == 0 then
      redis.call('XGROUP', 'CREATE', KEYS[i], 'crawl', '0', 'MKSTREAM')
    end
    redis.call('XADD', KEYS[i], '*', 'u', ARGV[2 * i - 2])
    n = n + 1
  end
end
return n",
    )
});

/// Creates every partition's stream and group that is missing. ARGV = prefix, partitions.
static CREATE_GROUPS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for p = 0, tonumber(ARGV[2]) - 1 do
  local k = ARGV[1] .. ':q:' .. p
  if redis.call('EXISTS', k) == 0 then
    redis.call('XGROUP', 'CREATE', k, 'crawl', '0', 'MKSTREAM')
  end
end
return 1",
    )
});

/// Leases up to ARGV[5] free partitions, from ARGV[6] on: ARGV = prefix, partitions, me,
/// ttl ms, how many, start, whether only partitions with URLs in their stream, then the
/// partitions not to take. Returns those leased.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n, want, start = tonumber(ARGV[2]), tonumber(ARGV[5]), tonumber(ARGV[6])
local nonempty = ARGV[7] == '1'
local skip = {}
for i = 8, #ARGV do skip[tonumber(ARGV[i])] = true end
local got = {}
for j = 0, n - 1 do
  if want <= 0 then break end
  local p = (start + j) % n
  if not skip[p] and (not nonempty or redis.call('XLEN', ARGV[1] .. ':q:' .. p) > 0) then
    if redis.call('SET', ARGV[1] .. ':lease:' .. p, ARGV[3], 'PX', ARGV[4], 'NX') then
      table.insert(got, p)
      want = want - 1
    end
  end
end
return got",
    )
});

/// Renews the leases in KEYS held by ARGV[1] for ARGV[2] ms; returns the indexes (from 0) of
/// those no longer held.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lost = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  else
    table.insert(lost, i - 1)
  end
end
return lost",
    )
});

/// Deletes the leases in KEYS that ARGV[1] holds.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1",
    )
});

/// Marks ARGV[1] alive in the workers' sorted set (KEYS[1], scored by the server's clock in
/// ms), records the URLs it holds and will not fetch (KEYS[2], field ARGV[1] = ARGV[3]) and its
/// load (KEYS[3], field ARGV[1] = ARGV[4], "hosts slots"), and reads the partitions handed to
/// it (the set KEYS[4]): those it took at its last heartbeat (ARGV[6..]) leave the set, those
/// whose lease (under the prefix ARGV[5]) is no longer its own too, and the others get a fresh
/// TTL and are returned (again, should the reply be lost). Returns the workers seen within
/// ARGV[2] ms, the other live workers' loads (name, load, ...) and the partitions handed.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local since = now - tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
local loads = {}
for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf')) do
  if w ~= ARGV[1] then
    table.insert(loads, w)
    table.insert(loads, redis.call('HGET', KEYS[3], w) or '')
  end
end
for i = 6, #ARGV do redis.call('SREM', KEYS[4], ARGV[i]) end
local handed = {}
for _, p in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local k = ARGV[5] .. ':lease:' .. p
  if redis.call('GET', k) == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2])
    table.insert(handed, tonumber(p))
  else
    redis.call('SREM', KEYS[4], p)
  end
end
return {redis.call('ZCOUNT', KEYS[1], since, '+inf'), loads, handed}",
    )
});

/// Hands the partitions whose leases are KEYS, held by ARGV[1], to the worker ARGV[2]: each
/// lease passes to it for ARGV[3] ms and the partition (ARGV[4 + i]) joins its set of handed
/// partitions ARGV[4], read at its next heartbeat. Returns how many were handed.
static HAND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3])
    redis.call('SADD', ARGV[4], ARGV[4 + i])
    n = n + 1
  end
end
redis.call('PEXPIRE', ARGV[4], ARGV[3])
return n",
    )
});

/// Acknowledges and deletes entries: KEYS = their streams, ARGV = their ids.
static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #KEYS do
  redis.call('XACK', KEYS[i], 'crawl', ARGV[i])
  redis.call('XDEL', KEYS[i], ARGV[i])
end
return #KEYS",
    )
});

/// The entries left in every partition (waiting or pending), and the entries the live
/// workers hold and will not fetch: ARGV = prefix, partitions, ttl ms.
static REMAINING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local left = 0
for p = 0, tonumber(ARGV[2]) - 1 do
  left = left + redis.call('XLEN', ARGV[1] .. ':q:' .. p)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stuck = 0
for _, w in ipairs(redis.call('ZRANGEBYSCORE', ARGV[1] .. ':workers', now - tonumber(ARGV[3]), '+inf')) do
  stuck = stuck + tonumber(redis.call('HGET', ARGV[1] .. ':stuck', w) or '0')
end
return {left, stuck}",
    )
});

/// Whether an error may go away by itself (the server restarting, loading, a dropped
/// connection), so that the call is worth trying again.
fn transient(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::BusyLoading | ServerErrorKind::TryAgain)
        )
}

/// A Redis URL without its password, for messages.
fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

async fn connect_manager(url: &str) -> Result<ConnectionManager, Error> {
    let shown = display_url(url);
    check_url(url)?;
    let client = redis::Client::open(url)
        .map_err(|e| Error::Config(format!("frontier: {shown:?} is not a Redis URL ({e})")))?;
    let manager = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(1));
    let connect = client.get_connection_manager_with_config(manager);
    let mut conn = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| Error::FrontierUnreachable(format!("{shown}: no answer in 10 s")))?
        .map_err(|e| Error::FrontierUnreachable(format!("{shown}: {e}")))?;
    let pong: RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
    pong.map_err(|e| Error::FrontierUnreachable(format!("{shown}: {e}")))?;
    Ok(conn)
}

/// Checks that the frontier answers, on a runtime of its own: for callers about to create a
/// store, so that nothing is written when Redis cannot be reached.
pub fn check_reachable(url: &str) -> Result<(), Error> {
    small_runtime()?.block_on(connect_manager(url)).map(drop)
}

/// A one-thread runtime for the blocking calls that talk to Redis alone.
fn small_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Client(format!("starting the async runtime: {e}")))
}

fn worker_name(db: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_string());
    let file = db
        .file_name()
        .map(|f| f.to_string_lossy().replace(char::is_whitespace, "_"))
        .unwrap_or_default();
    format!("{host}:{file}:{}", std::process::id())
}

/// Parses a stream entry `[id, [field, value, ...]]`: its id and its `u` field (none when
/// the entry was deleted).
fn entry_of(v: &Value) -> Option<(String, Option<Vec<u8>>)> {
    let Value::Array(parts) = v else { return None };
    let id = match parts.first()? {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        _ => return None,
    };
    let mut body = None;
    if let Some(Value::Array(fields)) = parts.get(1) {
        for pair in fields.chunks(2) {
            if let [Value::BulkString(k), Value::BulkString(v)] = pair
                && k == b"u"
            {
                body = Some(v.clone());
            }
        }
    }
    Some((id, body))
}

fn entries_of(v: &Value) -> Vec<(String, Option<Vec<u8>>)> {
    match v {
        Value::Array(items) => items.iter().filter_map(entry_of).collect(),
        _ => Vec::new(),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Shared {
    /// Connects, fixes the partition count, creates the streams and registers this worker.
    pub(crate) async fn connect(url: &str, config: &Config, db: &Path) -> Result<Shared, Error> {
        let mut cfg = config.shared.clone();
        let conn = connect_manager(url).await?;
        let me = cfg.worker.clone().unwrap_or_else(|| worker_name(db));
        let mut shared = Shared {
            url: display_url(url),
            conn,
            config: cfg.clone(),
            me,
            db: db.display().to_string(),
            robots_ttl: config.robots_ttl,
            owned: BTreeMap::new(),
            held: HashMap::new(),
            robots_checked: HashSet::new(),
            robots_out: Vec::new(),
            troubled: std::cell::Cell::new(false),
            stuck: HashMap::new(),
            domains: Vec::new(),
            given: HashMap::new(),
            load: Load::default(),
            last_handover: None,
            unacked: Vec::new(),
            unacked_since: None,
            taken: Vec::new(),
            renewed: None,
            reported: None,
        };
        let meta = shared.key("meta");
        let want = cfg.partitions;
        let partitions: u32 = shared
            .call("fixing the partition count", move |mut c| {
                let meta = meta.clone();
                async move {
                    redis::cmd("HSETNX")
                        .arg(&meta)
                        .arg("partitions")
                        .arg(want)
                        .query_async::<()>(&mut c)
                        .await?;
                    redis::cmd("HGET")
                        .arg(&meta)
                        .arg("partitions")
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        if partitions != want {
            tracing::info!(
                "frontier: the crawl has {partitions} partitions (fixed by its first worker), \
                 not {want}"
            );
        }
        cfg.partitions = partitions;
        shared.config = cfg;
        shared.create_groups().await?;
        Ok(shared)
    }

    /// The scope's domains: this worker's added to the crawl's set, and the set's union
    /// returned, so that a worker started without seeds (or with other seeds) follows the
    /// same links. Read again at every upkeep.
    pub(crate) async fn domains(&mut self, mine: Vec<String>) -> Result<Vec<String>, Error> {
        let key = self.key("domains");
        let all: Vec<String> = self
            .call("reading the crawl's scope", move |mut c| {
                let (key, mine) = (key.clone(), mine.clone());
                async move {
                    if !mine.is_empty() {
                        redis::cmd("SADD")
                            .arg(&key)
                            .arg(&mine)
                            .query_async::<()>(&mut c)
                            .await?;
                    }
                    redis::cmd("SMEMBERS").arg(&key).query_async(&mut c).await
                }
            })
            .await?;
        let mut all = all;
        all.sort();
        self.domains = all.clone();
        Ok(all)
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.config.prefix)
    }

    fn stream(&self, p: u32) -> String {
        format!("{}:q:{p}", self.config.prefix)
    }

    fn lease(&self, p: u32) -> String {
        format!("{}:lease:{p}", self.config.prefix)
    }

    fn partition(&self, host: &str) -> u32 {
        (xxhash_rust::xxh3::xxh3_64(host.as_bytes()) % u64::from(self.config.partitions)) as u32
    }

    /// Until when a lease renewed (or taken) at `at` is surely this worker's: the TTL less a
    /// sixth of it, for clocks and the call's own time.
    fn lease_until(&self, at: Instant) -> Instant {
        at + self.config.lease_ttl - self.config.lease_ttl / 6
    }

    /// Runs a call, again with back-off while Redis cannot be reached, up to `give_up_after`.
    async fn call<T, Fut>(
        &self,
        what: &str,
        f: impl Fn(ConnectionManager) -> Fut,
    ) -> Result<T, Error>
    where
        Fut: Future<Output = RedisResult<T>>,
    {
        let start = Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            match f(self.conn.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && start.elapsed() < self.config.give_up_after => {
                    self.troubled.set(true);
                    tracing::warn!("frontier {}: {what}: {e}; trying again", self.url);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    let after = if transient(&e) {
                        format!(
                            " (unreachable for {:.0} s, the limit set by shared.give_up_after)",
                            start.elapsed().as_secs_f64()
                        )
                    } else {
                        String::new()
                    };
                    return Err(Error::Frontier(format!("{}: {what}: {e}{after}", self.url)));
                }
            }
        }
    }

    async fn run_script<T: redis::FromRedisValue + Send + 'static>(
        &self,
        what: &str,
        script: &'static Script,
        keys: Vec<String>,
        args: Vec<Vec<u8>>,
    ) -> Result<T, Error> {
        self.call(what, move |mut c| {
            let (keys, args) = (keys.clone(), args.clone());
            async move {
                let mut inv = script.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                for a in &args {
                    inv.arg(a.as_slice());
                }
                inv.invoke_async(&mut c).await
            }
        })
        .await
    }

    async fn create_groups(&self) -> Result<(), Error> {
        let args = vec![
            self.config.prefix.clone().into_bytes(),
            self.config.partitions.to_string().into_bytes(),
        ];
        self.run_script::<i64>(
            "creating the partitions' streams",
            &CREATE_GROUPS,
            vec![],
            args,
        )
        .await
        .map(drop)
    }

    /// Queues the URLs not seen before by any worker.
    async fn enqueue(&self, urls: &[NewUrl]) -> Result<(), Error> {
        for chunk in urls.chunks(256) {
            let mut keys = vec![self.key("seen")];
            let mut args = Vec::with_capacity(chunk.len() * 2);
            for u in chunk {
                let entry = Entry {
                    url: u.url.clone(),
                    host: u.host.clone(),
                    depth: u.depth,
                    sitemap: u.kind == UrlKind::Sitemap,
                };
                keys.push(self.stream(self.partition(&u.host)));
                args.push(u.hash.to_le_bytes().to_vec());
                args.push(serde_json::to_vec(&entry).unwrap_or_default());
            }
            self.run_script::<i64>("queueing URLs", &ENQUEUE, keys, args)
                .await?;
        }
        Ok(())
    }

    /// Acknowledges the entries of the pages committed so far.
    async fn flush_acks(&mut self) -> Result<(), Error> {
        self.unacked_since = None;
        if self.unacked.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.unacked);
        self.ack(entries).await
    }

    async fn ack(&self, entries: Vec<(u32, String)>) -> Result<(), Error> {
        for chunk in entries.chunks(512) {
            let keys = chunk.iter().map(|(p, _)| self.stream(*p)).collect();
            let args = chunk
                .iter()
                .map(|(_, id)| id.clone().into_bytes())
                .collect();
            self.run_script::<i64>("acknowledging URLs", &ACK, keys, args)
                .await?;
        }
        Ok(())
    }

    /// Claims every pending entry of partition `p` (whoever held it) for this worker.
    async fn claim_pending(&self, p: u32) -> Result<Vec<(String, Option<Vec<u8>>)>, Error> {
        let key = self.stream(p);
        let mut cursor = "0-0".to_string();
        let mut out = Vec::new();
        loop {
            let (k, me, from) = (key.clone(), self.me.clone(), cursor.clone());
            let reply: Value = self
                .call("claiming a partition's pending URLs", move |mut c| {
                    let (k, me, from) = (k.clone(), me.clone(), from.clone());
                    async move {
                        redis::cmd("XAUTOCLAIM")
                            .arg(&k)
                            .arg(GROUP)
                            .arg(&me)
                            .arg(0)
                            .arg(&from)
                            .arg("COUNT")
                            .arg(256)
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            let Value::Array(parts) = &reply else { break };
            let next = parts.first().and_then(text).unwrap_or_else(|| "0-0".into());
            if let Some(entries) = parts.get(1) {
                out.extend(entries_of(entries));
            }
            if next == "0-0" || next == cursor {
                break;
            }
            cursor = next;
        }
        Ok(out)
    }

    /// Reads new entries from the partitions this worker may fetch and has room for.
    async fn read_new(&self) -> Result<Vec<(u32, String, Option<Vec<u8>>)>, Error> {
        let active: Vec<u32> = self
            .owned
            .iter()
            .filter(|(_, part)| !part.draining)
            .map(|(p, _)| *p)
            .collect();
        let stuck: usize = self.stuck.values().sum();
        if active.is_empty() || self.held.len().saturating_sub(stuck) >= self.config.buffer {
            return Ok(Vec::new());
        }
        let cap = (self.config.buffer / active.len()).max(4);
        // what a partition's fetchable hosts hold: stuck hosts' URLs do not take its room
        let mut per_part: HashMap<u32, usize> = HashMap::new();
        for (p, _) in self.held.values() {
            *per_part.entry(*p).or_default() += 1;
        }
        for (p, n) in &self.stuck {
            if let Some(held) = per_part.get_mut(p) {
                *held = held.saturating_sub(*n);
            }
        }
        let want: Vec<u32> = active
            .into_iter()
            .filter(|p| per_part.get(p).copied().unwrap_or(0) <= cap / 2)
            .collect();
        if want.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = want.iter().map(|p| self.stream(*p)).collect();
        let me = self.me.clone();
        let count = cap.div_ceil(2).max(1);
        let reply: Value = self
            .call("reading URLs", move |mut c| {
                let (keys, me) = (keys.clone(), me.clone());
                async move {
                    let mut cmd = redis::cmd("XREADGROUP");
                    cmd.arg("GROUP")
                        .arg(GROUP)
                        .arg(&me)
                        .arg("COUNT")
                        .arg(count)
                        .arg("STREAMS");
                    for k in &keys {
                        cmd.arg(k);
                    }
                    for _ in &keys {
                        cmd.arg(">");
                    }
                    cmd.query_async(&mut c).await
                }
            })
            .await?;
        let mut out = Vec::new();
        let Value::Array(streams) = reply else {
            return Ok(out);
        };
        for s in &streams {
            let (name, entries) = match s {
                Value::Array(kv) if kv.len() == 2 => (text(&kv[0]), &kv[1]),
                _ => continue,
            };
            let Some(p) = name
                .and_then(|n| n.rsplit(':').next().map(str::to_string))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            for (id, body) in entries_of(entries) {
                out.push((p, id, body));
            }
        }
        Ok(out)
    }

    /// Copies the shared robots.txt of hosts not looked up yet into the store, when fresher
    /// than the store's own.
    async fn share_robots_in(&mut self, store: &Store, hosts: Vec<String>) -> Result<(), Error> {
        for host in hosts {
            if !self.robots_checked.insert(host.clone()) {
                continue;
            }
            let key = self.key(&format!("robots:{host}"));
            let fields: HashMap<String, Vec<u8>> = self
                .call("reading a shared robots.txt", move |mut c| {
                    let key = key.clone();
                    async move { redis::cmd("HGETALL").arg(&key).query_async(&mut c).await }
                })
                .await?;
            let Some(at) = fields
                .get("at")
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<f64>().ok())
            else {
                continue;
            };
            if store
                .host_robots(&host)?
                .is_some_and(|local| local.fetched_at >= at)
            {
                continue;
            }
            let number = |k: &str| {
                fields
                    .get(k)
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u16>().ok())
            };
            let robots = HostRobots {
                status: number("status"),
                error: fields
                    .get("error")
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                body: fields.get("body").cloned(),
                fetched_at: at,
            };
            store.save_robots(&host, &robots)?;
        }
        Ok(())
    }

    async fn share_robots_out(&mut self) -> Result<(), Error> {
        let ttl_ms = self.robots_ttl.as_millis().max(1) as u64;
        for (host, r) in std::mem::take(&mut self.robots_out) {
            let key = self.key(&format!("robots:{host}"));
            self.call("sharing a robots.txt", move |mut c| {
                let (key, r) = (key.clone(), r.clone());
                async move {
                    let mut pipe = redis::pipe();
                    pipe.atomic().cmd("DEL").arg(&key).ignore();
                    let mut hset = redis::cmd("HSET");
                    hset.arg(&key).arg("at").arg(r.fetched_at.to_string());
                    if let Some(s) = r.status {
                        hset.arg("status").arg(s);
                    }
                    if let Some(e) = &r.error {
                        hset.arg("error").arg(e);
                    }
                    if let Some(b) = &r.body {
                        hset.arg("body").arg(b.as_slice());
                    }
                    pipe.add_command(hset).ignore();
                    pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
                    pipe.query_async::<()>(&mut c).await
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Marks this worker alive with its load and takes the partitions handed to it; returns
    /// the live workers and the others' loads.
    async fn heartbeat(&mut self) -> Result<Beat, Error> {
        let stuck: usize = self.stuck.values().sum();
        let keys = vec![
            self.key("workers"),
            self.key("stuck"),
            self.key("load"),
            self.key(&format!("handed:{}", self.me)),
        ];
        let mut args = vec![
            self.me.clone().into_bytes(),
            (self.config.lease_ttl.as_millis() as u64)
                .to_string()
                .into_bytes(),
            stuck.to_string().into_bytes(),
            format!("{} {}", self.load.hosts, self.load.slots).into_bytes(),
            self.config.prefix.clone().into_bytes(),
        ];
        args.extend(self.taken.iter().map(|p| p.to_string().into_bytes()));
        let at = Instant::now();
        let (live, loads, handed): (u64, Vec<String>, Vec<u32>) = self
            .run_script("marking the worker alive", &HEARTBEAT, keys, args)
            .await?;
        let until = self.lease_until(at);
        self.taken.clear();
        for p in handed {
            if p >= self.config.partitions {
                continue;
            }
            self.taken.push(p);
            if self
                .owned
                .get(&p)
                .is_some_and(|part| part.handed.is_some() && !part.draining)
            {
                // taken at the last heartbeat, whose reply was lost
                continue;
            }
            tracing::info!("frontier: partition {p} handed over by another worker");
            self.owned.insert(
                p,
                Part {
                    recover: true,
                    draining: false,
                    until,
                    since: at,
                    hand_to: None,
                    handed: Some(at),
                },
            );
        }
        let others = loads
            .chunks(2)
            .filter_map(|kv| {
                let (name, load) = (kv.first()?, kv.get(1)?);
                let mut it = load.split(' ').map(|n| n.parse::<usize>().ok());
                let (hosts, slots) = (it.next()??, it.next()??);
                Some((name.clone(), Load { hosts, slots }))
            })
            .collect();
        Ok(Beat { live, others })
    }

    /// Leases up to `want` free partitions (only those with URLs waiting when `nonempty`),
    /// not those given away lately.
    async fn acquire(&mut self, want: usize, nonempty: bool) -> Result<(), Error> {
        let n = self.config.partitions;
        let recently = self.config.lease_ttl.max(Duration::from_secs(5));
        self.given.retain(|_, at| at.elapsed() < recently);
        let mut args = vec![
            self.config.prefix.clone().into_bytes(),
            n.to_string().into_bytes(),
            self.me.clone().into_bytes(),
            (self.config.lease_ttl.as_millis() as u64)
                .to_string()
                .into_bytes(),
            want.to_string().into_bytes(),
            fastrand::u32(0..n).to_string().into_bytes(),
            if nonempty {
                b"1".to_vec()
            } else {
                b"0".to_vec()
            },
        ];
        args.extend(self.given.keys().map(|p| p.to_string().into_bytes()));
        let at = Instant::now();
        let got: Vec<u32> = self
            .run_script("leasing partitions", &ACQUIRE, vec![], args)
            .await?;
        if !got.is_empty() {
            tracing::info!(
                "frontier: leased {} partitions{}",
                got.len(),
                if nonempty { " with URLs waiting" } else { "" }
            );
        }
        let until = self.lease_until(at);
        for p in got {
            self.owned.insert(
                p,
                Part {
                    recover: true,
                    draining: false,
                    until,
                    since: at,
                    hand_to: None,
                    handed: None,
                },
            );
        }
        Ok(())
    }

    /// Partitions with work for this worker: URLs held for hosts it will ask, a busy host,
    /// pending URLs still to claim, or leased a moment ago (not read yet).
    fn with_work(&self, busy: &HashSet<u32>) -> HashSet<u32> {
        let mut work: HashMap<u32, usize> = HashMap::new();
        for (p, _) in self.held.values() {
            *work.entry(*p).or_default() += 1;
        }
        for (p, n) in &self.stuck {
            if let Some(w) = work.get_mut(p) {
                *w = w.saturating_sub(*n);
            }
        }
        let fresh = self.config.renew_every() * 4;
        self.owned
            .iter()
            .filter(|(p, part)| {
                work.get(p).is_some_and(|&n| n > 0)
                    || busy.contains(p)
                    || part.recover
                    || part.since.elapsed() < fresh
            })
            .map(|(p, _)| *p)
            .collect()
    }
}

impl Frontier for Shared {
    async fn open(&mut self, _: &mut Store, seeds: &[NewUrl]) -> Result<Vec<String>, Error> {
        self.enqueue(seeds).await?;
        self.maintain(&HostsNow::default(), &Report::default())
            .await?;
        Ok(Vec::new())
    }

    fn refill(&mut self, _: &Store, _: &str, _: i64, _: usize) -> Result<Vec<QueuedUrl>, Error> {
        Ok(Vec::new())
    }

    async fn pull(&mut self, store: &mut Store) -> Result<Vec<QueuedUrl>, Error> {
        let mut got: Vec<(u32, String, Option<Vec<u8>>)> = Vec::new();
        if self.troubled.replace(false) {
            for part in self.owned.values_mut() {
                part.recover = true;
            }
        }
        let recover: Vec<u32> = self
            .owned
            .iter()
            .filter(|(_, part)| part.recover && !part.draining)
            .map(|(p, _)| *p)
            .collect();
        for p in recover {
            for (id, body) in self.claim_pending(p).await? {
                got.push((p, id, body));
            }
            if let Some(part) = self.owned.get_mut(&p) {
                part.recover = false;
            }
        }
        got.extend(self.read_new().await?);
        if got.is_empty() {
            return Ok(Vec::new());
        }
        let mut urls = Vec::with_capacity(got.len());
        let mut ids = Vec::with_capacity(got.len());
        let mut bad = Vec::new();
        for (p, id, body) in got {
            let entry = body.and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
            let parsed = entry.as_ref().and_then(|e| urls::parse(&e.url));
            match (entry, parsed) {
                (Some(e), Some(u)) => {
                    urls.push(NewUrl {
                        hash: urls::hash(&u),
                        url: e.url,
                        host: e.host,
                        depth: e.depth,
                        parent: None,
                        kind: if e.sitemap {
                            UrlKind::Sitemap
                        } else {
                            UrlKind::Page
                        },
                    });
                    ids.push((p, id));
                }
                _ => {
                    tracing::warn!(
                        "frontier {}: entry {id} of partition {p} is not a URL entry; dropped",
                        self.url
                    );
                    bad.push((p, id));
                }
            }
        }
        let claimed = store.claim_urls(&urls)?;
        let mut out = Vec::new();
        let mut done = bad;
        let mut hosts = Vec::new();
        for ((u, (p, id)), (local, state)) in urls.into_iter().zip(ids).zip(claimed) {
            if let Some(held) = self.held.get(&local) {
                // delivered again (a claim after a lost reply): held once; another entry of
                // the same URL is done with
                if *held != (p, id.clone()) {
                    done.push((p, id));
                }
                continue;
            }
            if state != "queued" && state != "in_flight" {
                // this store finished it before the worker could say so
                done.push((p, id));
                continue;
            }
            self.held.insert(local, (p, id));
            if !self.robots_checked.contains(&u.host) {
                hosts.push(u.host.clone());
            }
            out.push(QueuedUrl {
                id: local,
                url: u.url,
                host: u.host,
                depth: u.depth,
                kind: u.kind,
                attempts: 0,
            });
        }
        if !done.is_empty() {
            self.unacked.extend(done);
            self.flush_acks().await?;
        }
        hosts.sort();
        hosts.dedup();
        self.share_robots_in(store, hosts).await?;
        Ok(out)
    }

    async fn commit(
        &mut self,
        store: &mut Store,
        run: RunId,
        batch: &mut CrawlBatch,
    ) -> Result<BatchWritten, Error> {
        // links first: once the page is committed and acknowledged, they must be queued
        let discovered = std::mem::take(&mut batch.discovered);
        self.enqueue(&discovered).await?;
        self.share_robots_out().await?;
        let mut written = store.record_crawl(run, batch)?;
        let finished: Vec<(u32, String)> = batch
            .finished
            .iter()
            .filter_map(|f| self.held.remove(&f.frontier_id))
            .collect();
        // acknowledged in groups: one call for the pages of several commits
        self.unacked.extend(finished);
        if !self.unacked.is_empty() {
            let since = *self.unacked_since.get_or_insert_with(Instant::now);
            if self.unacked.len() >= ACK_BATCH || since.elapsed() >= ACK_WAIT {
                self.flush_acks().await?;
            }
        }
        written.discovered_ids = vec![None; discovered.len()];
        batch.discovered = discovered;
        Ok(written)
    }

    fn owns(&self, host: &str) -> bool {
        self.owned
            .get(&self.partition(host))
            .is_some_and(|part| !part.draining && Instant::now() < part.until)
    }

    fn dropped(&mut self, job: &QueuedUrl) {
        // left pending in Redis: claimed again by whoever holds the partition next (this
        // worker too, should it keep it)
        if let Some((p, _)) = self.held.remove(&job.id)
            && let Some(part) = self.owned.get_mut(&p)
        {
            part.recover = true;
        }
    }

    fn robots_fetched(&mut self, host: &str, robots: &HostRobots) {
        self.robots_out.push((host.to_string(), robots.clone()));
    }

    async fn maintain(&mut self, hosts: &HostsNow, report: &Report) -> Result<(), Error> {
        // before any partition changes hands: its next owner must not fetch them again
        self.flush_acks().await?;
        self.set_stuck(&hosts.stuck);
        self.load = Load {
            hosts: hosts.working.len(),
            slots: hosts.slots,
        };
        let beat = self.heartbeat().await?;
        let live = beat.live;
        let n = self.config.partitions;
        let share = n.div_ceil(live.max(1) as u32) as usize;
        let ttl = (self.config.lease_ttl.as_millis() as u64).to_string();
        // renew: a lease lost (this worker stalled past its TTL) is another's now
        let held: Vec<u32> = self.owned.keys().copied().collect();
        let due = |at: Option<Instant>, every: Duration| at.is_none_or(|t| t.elapsed() >= every);
        let slow = self.config.lease_ttl / 3;
        if !held.is_empty() && due(self.renewed, slow) {
            let at = Instant::now();
            self.renewed = Some(at);
            let keys = held.iter().map(|p| self.lease(*p)).collect();
            let args = vec![self.me.clone().into_bytes(), ttl.clone().into_bytes()];
            let lost: Vec<usize> = self
                .run_script("renewing leases", &RENEW, keys, args)
                .await?;
            for i in lost {
                if let Some(p) = held.get(i) {
                    tracing::warn!(
                        "frontier {}: lease on partition {p} lost to another worker",
                        self.url
                    );
                    self.owned.remove(p);
                }
            }
            let until = self.lease_until(at);
            for part in self.owned.values_mut() {
                part.until = until;
            }
        }
        let busy_parts: HashSet<u32> = hosts.busy.iter().map(|h| self.partition(h)).collect();
        let work = self.with_work(&busy_parts);
        let active = self.owned.values().filter(|p| !p.draining).count();
        if active > share {
            // beyond the share: let go of the partitions without work (those with work move
            // by the hosts' balance below)
            let mut order: Vec<u32> = self
                .owned
                .iter()
                .filter(|(p, part)| !part.draining && !work.contains(p))
                .map(|(p, _)| *p)
                .collect();
            order.sort_by_key(|p| std::cmp::Reverse(*p));
            for p in order.into_iter().take(active - share) {
                if let Some(part) = self.owned.get_mut(&p) {
                    part.draining = true;
                }
            }
        } else if active < share {
            let mut need = share - active;
            for part in self
                .owned
                .values_mut()
                .filter(|p| p.draining && p.hand_to.is_none())
            {
                if need == 0 {
                    break;
                }
                // what it let go while draining is claimed back
                part.draining = false;
                part.recover = true;
                need -= 1;
            }
            if need > 0 {
                self.acquire(need, false).await?;
            }
        }
        // the hosts' balance: a worker with more hosts per slot than another hands it some of
        // its partitions with work, straight to it (one handover at a time), so that both
        // finish together and a hungry worker gets work at once
        let recently = self.config.lease_ttl.max(Duration::from_secs(5));
        // a handover waits for the partition's hosts to be idle: called off when the other
        // worker has gone quiet, or when a host stays busy (a long back-off) past a lease
        for part in self.owned.values_mut() {
            let off = part.hand_to.as_ref().is_some_and(|(to, at)| {
                at.elapsed() >= self.config.lease_ttl || !beat.others.iter().any(|(w, _)| w == to)
            });
            if off {
                part.hand_to = None;
                part.draining = false;
                part.recover = true;
            }
        }
        let handing = self.owned.values().any(|part| part.hand_to.is_some());
        let settled = self.last_handover.is_none_or(|t| {
            // the other worker takes it at its next heartbeat and shows its new hosts at
            // the one after
            t.elapsed() >= (self.config.renew_every() * 6).max(Duration::from_millis(1500))
        });
        let plan = plan_handover(self.load, &beat.others);
        if let (false, true, Some((to, k))) = (handing, settled, plan) {
            let mut per_part: HashMap<u32, usize> = HashMap::new();
            for h in &hosts.working {
                *per_part.entry(self.partition(h)).or_default() += 1;
            }
            let mut candidates: Vec<(usize, u32)> = per_part
                .iter()
                .filter(|(p, _)| {
                    self.owned.get(p).is_some_and(|part| {
                        !part.draining && part.handed.is_none_or(|t| t.elapsed() >= recently)
                    })
                })
                .map(|(p, n)| (*n, *p))
                .collect();
            candidates.sort();
            let mut excess = k;
            let mut kept = candidates.len();
            for (hosts_in, p) in candidates {
                if excess == 0 || kept <= 1 || hosts_in > excess {
                    break;
                }
                if let Some(part) = self.owned.get_mut(&p) {
                    part.draining = true;
                    part.hand_to = Some((to.clone(), Instant::now()));
                }
                self.given.insert(p, Instant::now());
                self.last_handover = Some(Instant::now());
                tracing::info!("frontier: partition {p} ({hosts_in} hosts) handed to {to}");
                excess -= hosts_in;
                kept -= 1;
            }
        }
        if self.load.hosts < self.load.slots {
            // free slots: take partitions with URLs waiting that nobody holds
            self.acquire(4, true).await?;
        }
        // let go of the extra partitions whose hosts are idle, or hand them over: the lease
        // passes straight to the other worker, which may ask the hosts at once
        let free: Vec<u32> = self
            .owned
            .iter()
            .filter(|(p, part)| part.draining && !busy_parts.contains(p))
            .map(|(p, _)| *p)
            .collect();
        let mut to_release = Vec::new();
        let mut to_hand: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for p in free {
            match self
                .owned
                .remove(&p)
                .and_then(|part| part.hand_to.map(|(to, _)| to))
            {
                Some(to) => to_hand.entry(to).or_default().push(p),
                None => to_release.push(p),
            }
        }
        if !to_release.is_empty() {
            let keys = to_release.iter().map(|p| self.lease(*p)).collect();
            self.run_script::<i64>(
                "releasing partitions",
                &RELEASE,
                keys,
                vec![self.me.clone().into_bytes()],
            )
            .await?;
        }
        for (to, parts) in to_hand {
            let keys = parts.iter().map(|p| self.lease(*p)).collect();
            let mut args = vec![
                self.me.clone().into_bytes(),
                to.clone().into_bytes(),
                ttl.clone().into_bytes(),
                self.key(&format!("handed:{to}")).into_bytes(),
            ];
            args.extend(parts.iter().map(|p| p.to_string().into_bytes()));
            self.run_script::<i64>("handing partitions over", &HAND, keys, args)
                .await?;
            self.last_handover = Some(Instant::now());
        }
        if due(self.reported, slow.min(Duration::from_secs(2))) {
            self.reported = Some(Instant::now());
            self.domains(Vec::new()).await?;
            self.report_status(report, true).await?;
        }
        Ok(())
    }

    async fn exhausted(&mut self, stuck: &[(String, usize)]) -> Result<bool, Error> {
        self.flush_acks().await?;
        self.set_stuck(stuck);
        self.heartbeat().await?;
        let args = vec![
            self.config.prefix.clone().into_bytes(),
            self.config.partitions.to_string().into_bytes(),
            (self.config.lease_ttl.as_millis() as u64)
                .to_string()
                .into_bytes(),
        ];
        let (left, stuck_all): (u64, u64) = self
            .run_script("counting the URLs left", &REMAINING, vec![], args)
            .await?;
        Ok(left <= stuck_all)
    }

    fn domains(&self) -> Option<Vec<String>> {
        (!self.domains.is_empty()).then(|| self.domains.clone())
    }

    fn queued(&self, _: &Store) -> u64 {
        self.held.len() as u64
    }

    async fn close(&mut self, busy: &[&str], report: &Report) -> Result<(), Error> {
        // one try each: leases expire by themselves when Redis is gone; a partition with a
        // host still in its politeness wait keeps its lease until it expires, so that its next
        // owner cannot ask the host sooner
        let busy: HashSet<u32> = busy.iter().map(|h| self.partition(h)).collect();
        let mut c = self.conn.clone();
        // partitions handed to this worker and not taken yet go back too
        let handed_key = self.key(&format!("handed:{}", self.me));
        let handed: Vec<u32> = redis::cmd("SMEMBERS")
            .arg(&handed_key)
            .query_async(&mut c)
            .await
            .unwrap_or_default();
        let keys: Vec<String> = self
            .owned
            .keys()
            .chain(handed.iter())
            .filter(|p| !busy.contains(p))
            .map(|p| self.lease(*p))
            .collect();
        // the committed pages' entries first: a partition let go with them pending would
        // have them fetched again
        let unacked = std::mem::take(&mut self.unacked);
        let mut acked: RedisResult<i64> = Ok(0);
        for chunk in unacked.chunks(512) {
            let mut inv = ACK.prepare_invoke();
            for (p, id) in chunk {
                inv.key(self.stream(*p)).arg(id);
            }
            acked = inv.invoke_async(&mut c).await;
            if acked.is_err() {
                break;
            }
        }
        let mut inv = RELEASE.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(&self.me);
        let released: RedisResult<i64> = if acked.is_ok() {
            inv.invoke_async(&mut c).await
        } else {
            acked
        };
        self.owned.clear();
        self.stuck.clear();
        let stats = self.report_status(report, false).await;
        let gone: RedisResult<()> = redis::pipe()
            .cmd("ZREM")
            .arg(self.key("workers"))
            .arg(&self.me)
            .ignore()
            .cmd("HDEL")
            .arg(self.key("stuck"))
            .arg(&self.me)
            .ignore()
            .cmd("HDEL")
            .arg(self.key("load"))
            .arg(&self.me)
            .ignore()
            .cmd("DEL")
            .arg(&handed_key)
            .ignore()
            .query_async(&mut c)
            .await;
        if let Err(e) = released.map(drop).and(gone) {
            tracing::warn!(
                "frontier {}: could not give back this worker's partitions ({e}); they are \
                 free once their leases expire",
                self.url
            );
        }
        stats.or(Ok(()))
    }
}

impl Shared {
    /// Records the engine's stuck hosts per partition (of the partitions still held).
    fn set_stuck(&mut self, stuck: &[(String, usize)]) {
        self.stuck.clear();
        for (host, n) in stuck {
            let p = self.partition(host);
            if self.owned.contains_key(&p) {
                *self.stuck.entry(p).or_default() += n;
            }
        }
    }

    /// This worker's line in the cluster's status; `retry` as other calls, or one try.
    async fn report_status(&self, report: &Report, retry: bool) -> Result<(), Error> {
        let key = self.key(&format!("worker:{}", self.me));
        let (names, me) = (self.key("names"), self.me.clone());
        let fields = vec![
            ("db".to_string(), self.db.clone()),
            ("pages".to_string(), report.pages.to_string()),
            ("documents".to_string(), report.documents.to_string()),
            (
                "pages_per_sec".to_string(),
                format!("{:.2}", report.pages_per_sec()),
            ),
            ("partitions".to_string(), self.owned.len().to_string()),
            ("held".to_string(), self.held.len().to_string()),
            ("at".to_string(), crate::engine::unix_now().to_string()),
        ];
        let send = move |mut c: ConnectionManager| {
            let (key, fields, names, me) = (key.clone(), fields.clone(), names.clone(), me.clone());
            async move {
                redis::pipe()
                    .cmd("SADD")
                    .arg(&names)
                    .arg(&me)
                    .ignore()
                    .cmd("HSET")
                    .arg(&key)
                    .arg(&fields)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&key)
                    .arg(7 * 24 * 3600)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            }
        };
        if retry {
            self.call("reporting the worker's counts", send).await
        } else {
            send(self.conn.clone()).await.map_err(|e| {
                Error::Frontier(format!("{}: reporting the worker's counts: {e}", self.url))
            })
        }
    }
}

/// One partition in the cluster's status.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionStatus {
    pub partition: u32,
    /// The worker holding its lease, and the milliseconds left on it.
    pub owner: Option<String>,
    pub lease_ms: Option<i64>,
    /// URLs waiting to be handed out, and handed out but not yet stored.
    pub waiting: u64,
    pub pending: u64,
}

/// One worker in the cluster's status.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    pub worker: String,
    /// Seconds since it last said it was alive; alive when within the lease TTL.
    pub last_seen_s: f64,
    pub alive: bool,
    pub fields: BTreeMap<String, String>,
}

/// A shared crawl as Redis sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub frontier: String,
    /// URLs ever queued (the seen-set's size).
    pub seen: u64,
    pub waiting: u64,
    pub pending: u64,
    pub partitions: Vec<PartitionStatus>,
    pub workers: Vec<WorkerStatus>,
}

/// Reads the state of a shared crawl from Redis alone.
pub fn cluster_status(url: &str, config: &SharedConfig) -> Result<ClusterStatus, Error> {
    small_runtime()?.block_on(async {
        let mut c = connect_manager(url).await?;
        let shown = display_url(url);
        let err = |e: redis::RedisError| Error::Frontier(format!("{shown}: reading status: {e}"));
        let prefix = &config.prefix;
        let partitions: Option<u32> = redis::cmd("HGET")
            .arg(format!("{prefix}:meta"))
            .arg("partitions")
            .query_async(&mut c)
            .await
            .map_err(err)?;
        let Some(n) = partitions else {
            return Err(Error::Config(format!(
                "frontier {shown}: no crawl with the key prefix {prefix:?} there"
            )));
        };
        let seen: u64 = redis::cmd("SCARD")
            .arg(format!("{prefix}:seen"))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        let mut parts = Vec::with_capacity(n as usize);
        for p in 0..n {
            let stream = format!("{prefix}:q:{p}");
            let lease = format!("{prefix}:lease:{p}");
            let (len, pending, owner, ttl): (u64, Value, Option<String>, i64) = redis::pipe()
                .cmd("XLEN")
                .arg(&stream)
                .cmd("XPENDING")
                .arg(&stream)
                .arg(GROUP)
                .cmd("GET")
                .arg(&lease)
                .cmd("PTTL")
                .arg(&lease)
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let pending = match &pending {
                Value::Array(v) => v.first().and_then(text).and_then(|s| s.parse().ok()),
                _ => None,
            }
            .unwrap_or(0u64);
            parts.push(PartitionStatus {
                partition: p,
                lease_ms: owner.is_some().then_some(ttl),
                owner,
                waiting: len.saturating_sub(pending),
                pending,
            });
        }
        let now_ms: (u64, u64) = redis::cmd("TIME").query_async(&mut c).await.map_err(err)?;
        let now_ms = now_ms.0 * 1000 + now_ms.1 / 1000;
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("{prefix}:names"))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        names.sort();
        let mut workers = Vec::new();
        for w in names {
            let (fields, score): (BTreeMap<String, String>, Option<f64>) = redis::pipe()
                .cmd("HGETALL")
                .arg(format!("{prefix}:worker:{w}"))
                .cmd("ZSCORE")
                .arg(format!("{prefix}:workers"))
                .arg(&w)
                .query_async(&mut c)
                .await
                .map_err(err)?;
            // a worker that stopped has left the live set: its last report says when
            let seen_ms = score.or_else(|| {
                fields
                    .get("at")
                    .and_then(|a| a.parse::<f64>().ok())
                    .map(|s| s * 1000.0)
            });
            let last = seen_ms.map_or(f64::INFINITY, |ms| (now_ms as f64 - ms).max(0.0) / 1000.0);
            workers.push(WorkerStatus {
                alive: score.is_some() && last <= config.lease_ttl.as_secs_f64(),
                worker: w,
                last_seen_s: last,
                fields,
            });
        }
        Ok(ClusterStatus {
            frontier: shown,
            seen,
            waiting: parts.iter().map(|p| p.waiting).sum(),
            pending: parts.iter().map(|p| p.pending).sum(),
            partitions: parts,
            workers,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::{Load, plan_handover};

    fn load(hosts: usize, slots: usize) -> Load {
        Load { hosts, slots }
    }

    #[test]
    fn hosts_move_to_even_out_the_hosts_per_slot() {
        // this worker's load, the others', and the handover wanted
        type Case<'a> = (Load, &'a [(&'a str, Load)], Option<(&'a str, usize)>);
        let cases: [Case; 8] = [
            // 27 hosts against 13, five slots each: seven hosts move, 20 and 20
            (load(27, 5), &[("b", load(13, 5))], Some(("b", 7))),
            // to the worker with the fewest hosts per slot; slots count
            (
                load(30, 5),
                &[("b", load(10, 5)), ("c", load(12, 10))],
                Some(("c", 16)),
            ),
            // a hungry worker gets a single host
            (load(6, 5), &[("b", load(3, 5))], Some(("b", 1))),
            // not hungry: one host of difference is not worth a handover
            (load(7, 5), &[("b", load(5, 5))], None),
            (load(20, 5), &[("b", load(19, 5))], None),
            // a worker that asks all its hosts at once keeps them
            (load(5, 5), &[("b", load(0, 5))], None),
            // alone, or among workers without slots
            (load(40, 5), &[], None),
            (load(40, 5), &[("b", load(0, 0))], None),
        ];
        for (me, others, want) in cases {
            let others: Vec<(String, Load)> =
                others.iter().map(|(n, l)| (n.to_string(), *l)).collect();
            assert_eq!(
                plan_handover(me, &others),
                want.map(|(n, k)| (n.to_string(), k)),
                "{me:?} against {others:?}"
            );
        }
    }
}
