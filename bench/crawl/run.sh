#!/usr/bin/env bash
# Crawl benchmark: zhcorpus and Scrapy (throwaway venv) crawl the same site farm on loopback,
# every host answering after a simulated latency, under the same politeness settings (robots.txt
# obeyed, one request in flight per host, the same delay, the same global concurrency), in one
# run. Prints pages/s, CPU seconds per 1,000 pages, peak RSS, the ratios, and pages/s against
# the ideal the politeness settings allow. Needs no data beyond what the farm generates.
# Then many workers: zhcorpus on one Redis frontier and scrapy-redis, one worker and two, each
# worker's in-flight slots the limit (WORKER_CONCURRENCY per worker, one per host, the hosts
# answering after WORKER_LATENCY_MS), against the single-process crawler with as many slots;
# the politeness each run kept is read from the farm's own log. The zhcorpus cases run
# WORKER_ROUNDS times, in turn (CPU time on a shared machine drifts by a quarter from run to
# run): medians. pages/s is given over the whole run and in the steady state (the farm's
# requests between the 10th and the 90th percentile of the run's requests: start-up and the
# tail, where a few hosts are left and politeness alone sets the pace, left out).
#   HOSTS=20 ARTICLES=250 LATENCY_MS=50 DELAY=0.1 bench/crawl/run.sh
#   WORKER_HOSTS=40 WORKER_ARTICLES=50 WORKER_CONCURRENCY=5 WORKER_LATENCY_MS=100 WORKER_ROUNDS=3
packages=(zhcorpus farm)
source "$(dirname "$0")/../common.sh"
hosts=${HOSTS:-20}
articles=${ARTICLES:-250}
latency=${LATENCY_MS:-50}
delay=${DELAY:-0.1}
concurrency=${CONCURRENCY:-32}
out="$root/bench/out/crawl"
rm -rf "$out"
mkdir -p "$out"
venv crawl scrapy==2.19.0 warcio==1.8.1 scrapy-redis==0.9.1 redis==8.1.0

# one farm for both crawlers: hosts on 127.0.0.10.. (one port), since Scrapy keys its
# per-host slots by host name alone
"$root/target/release/zhcorpus-farm" --hosts "$hosts" --articles "$articles" --latency-ms "$latency" \
    --crawl-delay 0 --no-traps --distinct-ips > "$out/farm.json" 2> /dev/null &
farm=$!
trap 'kill $farm 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$out/farm.json" ] && break; sleep 0.1; done
python3 -c "import json,sys; print('\n'.join(json.load(open(sys.argv[1]))['seeds']))" "$out/farm.json" > "$out/seeds.txt"

python3 bench/measure.py -- "$z" crawl --db "$out/zhcorpus.db" --quiet --seeds "$out/seeds.txt" --allow-private \
    --delay "$delay" --per-host 1 --concurrency "$concurrency" --no-sitemaps --warc "$out/warc" > "$out/zhcorpus.json"
python3 bench/measure.py -- "$venv/bin/python" bench/crawl/peer_scrapy.py "$out/seeds.txt" "$out/scrapy.jsonl" \
    "$concurrency" "$delay" > "$out/scrapy.json"
"$venv/bin/warcio" check "$out"/warc/*.warc.gz > "$out/warcio.txt" 2>&1 && warc_ok=yes || warc_ok=no

python3 - "$out" "$hosts" "$latency" "$delay" "$concurrency" "$warc_ok" \
    "$("$venv/bin/pip" show scrapy | grep ^Version | cut -d' ' -f2)" <<'PY'
import json, sqlite3, sys
out, hosts, latency, delay, conc, warc_ok, version = sys.argv[1:]
hosts, latency, delay = int(hosts), int(latency) / 1000, float(delay)
farm = json.load(open(f"{out}/farm.json"))
want = farm["html_pages"]
db = sqlite3.connect(f"{out}/zhcorpus.db")
z_pages, z_distinct = db.execute(
    "SELECT count(*), count(DISTINCT url) FROM pages WHERE status = 200 AND body IS NOT NULL").fetchone()
z_docs = db.execute("SELECT count(*) FROM documents").fetchone()[0]
s_urls = [json.loads(l)["url"] for l in open(f"{out}/scrapy.jsonl")]
s_pages, s_distinct = len(s_urls), len(set(s_urls))
m = {k: json.load(open(f"{out}/{k}.json")) for k in ("zhcorpus", "scrapy")}
# the politeness limit: each host asked once per max(delay, latency), all hosts at once;
# robots.txt is one more request per host
ideal = hosts / max(delay, latency)
print(f"farm: {hosts} hosts, {want} HTML pages, {latency * 1000:.0f} ms latency; one request in flight "
      f"per host, {delay} s between requests to a host, {conc} in flight in all; Scrapy {version}")
print(f"{'tool':<10} {'pages':>6} {'distinct':>8} {'pages/s':>8} {'of ideal':>8} {'CPU s/1k pages':>15} "
      f"{'pages per CPU s':>16} {'peak RSS MiB':>13}")
row = {}
for name, pages in (("zhcorpus", z_pages), ("scrapy", s_pages)):
    r = m[name]
    cpu = r["user_s"] + r["sys_s"]
    rate = pages / r["wall_s"]
    row[name] = (rate, pages / cpu)
    print(f"{name:<10} {pages:>6} {(z_distinct if name == 'zhcorpus' else s_distinct):>8} {rate:>8.1f} "
          f"{rate / ideal:>8.0%} {1000 * cpu / pages:>15.2f} {pages / cpu:>16.0f} {r['peak_rss_mib']:>13.1f}")
print(f"ideal under these settings: {ideal:.0f} pages/s")
print(f"ratio: zhcorpus {row['zhcorpus'][0] / row['scrapy'][0]:.2f}x Scrapy's pages/s, "
      f"{row['zhcorpus'][1] / row['scrapy'][1]:.1f}x its pages per CPU second "
      f"(zhcorpus also extracted {z_docs} documents and wrote WARC; Scrapy only saved the HTML)")
print(f"every farm page stored once by zhcorpus: {'yes' if z_pages == z_distinct == want else 'NO'}; "
      f"warcio check of the WARC output: {'passed' if warc_ok == 'yes' else 'FAILED'}")
PY

# ---- many workers on one shared frontier ----
w_hosts=${WORKER_HOSTS:-40}
w_articles=${WORKER_ARTICLES:-50}
w_conc=${WORKER_CONCURRENCY:-5}
w_latency=${WORKER_LATENCY_MS:-100}
w_rounds=${WORKER_ROUNDS:-3}
command -v redis-server > /dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }
redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$out/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$out/redis" \
    --daemonize no --logfile "$out/redis/redis.log" &
redis_pid=$!
trap 'kill $farm $redis_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$redis_port" ping > /dev/null 2>&1 && break; sleep 0.1; done
redis_url="redis://127.0.0.1:$redis_port/0"
redis_ticks() { awk '{ print $14 + $15 }' "/proc/$redis_pid/stat"; }

# case NAME COMMAND...: a fresh farm and an empty Redis, the command measured (its workers'
# CPU included), Redis's own CPU, and the farm's last politeness line
case_run() {
    local name=$1
    shift
    "$root/target/release/zhcorpus-farm" --hosts "$w_hosts" --articles "$w_articles" \
        --latency-ms "$w_latency" --crawl-delay 0 --no-traps --distinct-ips \
        > "$out/w-$name.farm.json" 2> "$out/w-$name.farm.err" &
    local wfarm=$!
    for _ in $(seq 50); do [ -s "$out/w-$name.farm.json" ] && break; sleep 0.1; done
    python3 -c "import json,sys; print('\n'.join(json.load(open(sys.argv[1]))['seeds']))" \
        "$out/w-$name.farm.json" > "$out/w-seeds.txt"
    redis-cli -p "$redis_port" flushall > /dev/null
    local t0 t1
    t0=$(redis_ticks)
    python3 bench/measure.py -- "$@" > "$out/w-$name.json"
    t1=$(redis_ticks)
    sleep 1.5
    kill "$wfarm"
    wait "$wfarm" 2> /dev/null || true
    echo "$(( t1 - t0 ))" > "$out/w-$name.redis_ticks"
}
zw() {  # zw DB [extra flags]: one zhcorpus worker
    local db=$1
    shift
    "$z" crawl --db "$out/$db" --quiet --seeds "$out/w-seeds.txt" --allow-private --delay "$delay" \
        --per-host 1 --concurrency "$w_conc" --no-sitemaps "$@"
}
sw() {  # sw OUT: one scrapy-redis worker
    "$venv/bin/python" bench/crawl/peer_scrapy_redis.py "$out/w-seeds.txt" "$out/$1" "$w_conc" "$delay" "$redis_url"
}
export -f zw sw
export z out delay w_conc redis_url venv
rm -f "$out"/w-*.db "$out"/w-*.jsonl "$out"/w-*.json "$out"/w-*.redis_ticks
for r in $(seq "$w_rounds"); do
  export r
  case_run "single-$r" bash -c 'zw w-single-$r.db'
  case_run "redis1-$r" bash -c 'zw w-r1-$r.db --frontier "$redis_url" --worker one'
  case_run "redis2-$r" bash -c 'zw w-r2a-$r.db --frontier "$redis_url" --worker a & zw w-r2b-$r.db --frontier "$redis_url" --worker b & wait'
done
case_run scrapy1 bash -c 'sw w-s1.jsonl'
case_run scrapy2 bash -c 'sw w-s2a.jsonl & sw w-s2b.jsonl & wait'

python3 - "$out" "$w_hosts" "$w_latency" "$delay" "$w_conc" "$(getconf CLK_TCK)" \
    "$("$venv/bin/pip" show scrapy-redis | grep ^Version | cut -d' ' -f2)" "$w_rounds" <<'PY'
import json, re, sqlite3, statistics, sys
out, hosts, latency, delay, conc, tck, version, rounds = sys.argv[1:]
hosts, latency, delay, conc, tck, rounds = int(hosts), int(latency) / 1000, float(delay), int(conc), int(tck), int(rounds)

def pages_db(*names):
    urls = []
    for n in names:
        db = sqlite3.connect(f"{out}/{n}")
        urls += [u for (u,) in db.execute("SELECT url FROM pages WHERE status = 200 AND body IS NOT NULL")]
    return urls

def pages_jsonl(*names):
    return [json.loads(l)["url"] for n in names for l in open(f"{out}/{n}")]

R = range(1, rounds + 1)
cases = [
    ("single", "zhcorpus, one process", 1, [(f"single-{r}", pages_db(f"w-single-{r}.db")) for r in R]),
    ("redis1", "zhcorpus, Redis frontier", 1, [(f"redis1-{r}", pages_db(f"w-r1-{r}.db")) for r in R]),
    ("redis2", "zhcorpus, Redis frontier", 2,
     [(f"redis2-{r}", pages_db(f"w-r2a-{r}.db", f"w-r2b-{r}.db")) for r in R]),
    ("scrapy1", "scrapy-redis", 1, [("scrapy1", pages_jsonl("w-s1.jsonl"))]),
    ("scrapy2", "scrapy-redis", 2, [("scrapy2", pages_jsonl("w-s2a.jsonl", "w-s2b.jsonl"))]),
]
want = json.load(open(f"{out}/w-single-1.farm.json"))["html_pages"]

def steady(key):
    # the farm's cumulative request count, one line a second: the rate between the moments
    # (interpolated) the run passed 10% and 90% of its requests
    counts = [int(m.group(1)) for m in
              (re.match(r"requests: (\d+);", l) for l in open(f"{out}/w-{key}.farm.err")) if m]
    total = counts[-1]
    def when(x):
        for i, c in enumerate(counts):
            if c >= x:
                before = counts[i - 1] if i else 0
                return i + (x - before) / max(c - before, 1)
        return len(counts)
    return 0.8 * total / (when(0.9 * total) - when(0.1 * total))
# each worker's slots: `conc` hosts at once, each asked once per max(delay, latency)
per_worker = conc / max(delay, latency)
limit = hosts / max(delay, latency)
print()
print(f"many workers: farm of {hosts} hosts, {want} HTML pages, {latency * 1000:.0f} ms latency; "
      f"{conc} in flight per worker, one per host, {delay} s between requests to a host; "
      f"scrapy-redis {version}; Redis's own CPU counted with the workers'")
print(f"zhcorpus runs: {rounds} rounds each, in turn; medians (the rounds' CPU in brackets)")
print(f"{'run':<26} {'workers':>7} {'pages':>6} {'distinct':>8} {'pages/s':>8} {'steady':>8} {'of slots':>8} "
      f"{'CPU s/1k pages':>15} {'most in flight/host':>20} {'least gap ms':>13} {'peak RSS MiB':>13}")
row = {}
for key, name, workers, runs in cases:
    rates, steadies, cpus, rss, inflights, gaps, pages_n, distinct = [], [], [], [], [], [], [], []
    for run_key, urls in runs:
        r = json.load(open(f"{out}/w-{run_key}.json"))
        redis_cpu = int(open(f"{out}/w-{run_key}.redis_ticks").read()) / tck if key != "single" else 0.0
        cpu = r["user_s"] + r["sys_s"] + redis_cpu
        rates.append(len(urls) / r["wall_s"])
        steadies.append(steady(run_key))
        cpus.append(1000 * cpu / len(urls))
        rss.append(r["peak_rss_mib"])
        last = open(f"{out}/w-{run_key}.farm.err").read().strip().splitlines()[-1]
        inflights.append(int(re.search(r"most in flight on one host: (\d+)", last).group(1)))
        gaps.append(float(re.search(r"least gap between request starts on one host: (-?[\d.]+)", last).group(1)))
        pages_n.append(len(urls))
        distinct.append(len(set(urls)))
    med = statistics.median
    rate, st, cpu = med(rates), med(steadies), med(cpus)
    slots = min(per_worker * workers, limit)
    row[key] = (rate, cpu, st)
    spread = f" [{', '.join(f'{c:.2f}' for c in cpus)}]" if len(cpus) > 1 else ""
    print(f"{name:<26} {workers:>7} {max(pages_n):>6} {min(distinct):>8} {rate:>8.1f} {st:>8.1f} {st / slots:>8.0%} "
          f"{cpu:>15.2f} {max(inflights):>20} {min(gaps):>13.1f} {med(rss):>13.1f}{spread}")
print(f"a worker's slots allow {per_worker:.0f} pages/s; the hosts' politeness limit is {limit:.0f} pages/s; "
      f"'of slots' is the steady rate against the slots")
print(f"ratio: two zhcorpus workers on Redis {row['redis2'][0] / row['redis1'][0]:.2f}x one worker's pages/s "
      f"over the whole run, {row['redis2'][2] / row['redis1'][2]:.2f}x in the steady state "
      f"({row['redis2'][0] / row['single'][0]:.2f}x and {row['redis2'][2] / row['single'][2]:.2f}x one process's)")
print(f"ratio: the Redis frontier costs {row['redis1'][1] / row['single'][1] - 1:+.0%} CPU per page against the "
      f"single-process crawler (Redis's own CPU included)")
print(f"ratio: two zhcorpus workers {row['redis2'][0] / row['scrapy2'][0]:.2f}x two scrapy-redis workers' "
      f"pages/s at {row['scrapy2'][1] / row['redis2'][1]:.1f}x less CPU per page")
PY
