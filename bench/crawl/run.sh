#!/usr/bin/env bash
# Crawl benchmark: zhcorpus and Scrapy (throwaway venv) crawl the same site farm on loopback,
# every host answering after a simulated latency, under the same politeness settings (robots.txt
# obeyed, one request in flight per host, the same delay, the same global concurrency), in one
# run. Prints pages/s, CPU seconds per 1,000 pages, peak RSS, the ratios, and pages/s against
# the ideal the politeness settings allow. Needs no data beyond what the farm generates.
#   HOSTS=20 ARTICLES=250 LATENCY_MS=50 DELAY=0.1 bench/crawl/run.sh
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
venv crawl scrapy==2.19.0 warcio==1.8.1

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
