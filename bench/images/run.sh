#!/usr/bin/env bash
# Image-text pairs benchmark, two parts.
#
# 1. Download: zhcorpus (images fetch, filter, export) and img2dataset (throwaway venv) fetch
#    the same URL and caption list from the site farm on loopback (HOSTS hosts, PER_HOST
#    photos each of 400 to 1,279 pixels wide, every answer after LATENCY_MS), with the same
#    total concurrency, the same size and shape rules (shorter side >= 200, aspect <= 3), the
#    same resize (longer side scaled down to MAX_SIDE) and the same output (WebDataset tar
#    shards of JPEG quality 95), in one run. zhcorpus also keeps one request in flight per host
#    with DELAY seconds between request starts and reads robots.txt; img2dataset has neither.
#    Both skip `X-Robots-Tag: noai`. zhcorpus runs `images fetch --urls` then `images filter
#    --output` (filter and export in one pass, each image decoded once). Prints pairs/s, CPU
#    seconds per 1,000 pairs, peak RSS, and the ratio of pairs per CPU second; then the same
#    for `images filter` and `images export` run apart, over the same store.
# 2. Harvest: the 62 real news pages of ../shared/data/extract/gne-news-pages served on
#    loopback, crawled, and their candidates' captions judged without fetching (their images
#    are on the public web, which no benchmark reaches): candidates, caption sources, removals
#    by reason, a sample of kept captions.
#   HOSTS=50 PER_HOST=40 LATENCY_MS=20 DELAY=0.05 CONCURRENCY=32 MAX_SIDE=256 bench/images/run.sh [DATA]
packages=(zhcorpus farm)
source "$(dirname "$0")/../common.sh"
hosts=${HOSTS:-50}
per_host=${PER_HOST:-40}
latency=${LATENCY_MS:-20}
delay=${DELAY:-0.05}
concurrency=${CONCURRENCY:-32}
max_side=${MAX_SIDE:-256}
out="$root/bench/out/images"
rm -rf "$out"
mkdir -p "$out"
venv images img2dataset==1.47.0 opencv-python-headless==4.14.0.94 pyarrow==26.0.1 \
    webdataset==0.2.111 fsspec==2026.9.0 pandas==2.3.3

"$root/target/release/zhcorpus-farm" --hosts "$hosts" --articles 4 --latency-ms "$latency" \
    --crawl-delay 0 --no-traps --distinct-ips > "$out/farm.json" 2> /dev/null &
farm=$!
server=
trap 'kill $farm $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$out/farm.json" ] && break; sleep 0.1; done

# the list, and one warm-up request per image so that the farm has drawn every image before
# either tool asks (its drawing would otherwise take the tools' cores)
python3 - "$out" "$per_host" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
out, per_host = sys.argv[1], int(sys.argv[2])
hosts = json.load(open(f"{out}/farm.json"))["hosts"]
places = ["江边", "古镇", "山顶", "老街", "湖心岛", "校园", "车站", "公园", "港口", "草原"]
things = ["石桥", "晚霞", "老房子", "梯田", "渔船", "樱花", "灯笼", "集市", "雪山", "茶园"]
rows = []
for h, host in enumerate(hosts):
    for i in range(per_host):
        caption = f"站点{h}第{i}张照片：{places[(h + i) % 10]}的{things[(h * 7 + i) % 10]}，摄于{2015 + i % 10}年"
        rows.append((f"{host}/pics/{i}.jpg", caption))
with open(f"{out}/list.tsv", "w") as f:
    f.write("url\tcaption\n")
    for u, c in rows:
        f.write(f"{u}\t{c}\n")
with ThreadPoolExecutor(16) as ex:
    sizes = list(ex.map(lambda r: len(urllib.request.urlopen(r[0], timeout=60).read()), rows))
print(f"list: {len(rows)} pairs over {len(hosts)} hosts, {sum(sizes) / len(sizes) / 1024:.0f} KiB per image")
PY

per_process=$(( (concurrency + THREADS - 1) / THREADS ))
python3 bench/measure.py -- sh -c "'$z' --quiet images fetch --db '$out/zhcorpus.db' --urls '$out/list.tsv' \
    --allow-private --concurrency $concurrency --delay $delay --max-attempts 1 \
    && '$z' --quiet images filter --db '$out/zhcorpus.db' --output '$out/zhcorpus' --max-side $max_side" \
    > "$out/zhcorpus.json"
python3 bench/measure.py -- "$venv/bin/python" bench/images/peer_img2dataset.py "$out/list.tsv" \
    "$out/img2dataset" "$THREADS" "$per_process" "$max_side" > "$out/img2dataset.json" 2> "$out/img2dataset.log"

# the two steps apart, over the same store: the filter decoding every image again for its hash
python3 -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM image_checks'); c.commit()" \
    "$out/zhcorpus.db"
python3 bench/measure.py -- "$z" --quiet images filter --db "$out/zhcorpus.db" > "$out/apart-filter.json"
python3 bench/measure.py -- "$z" --quiet images export --db "$out/zhcorpus.db" --output "$out/apart" \
    --max-side "$max_side" > "$out/apart-export.json"

python3 - "$out" "$hosts" "$per_host" "$latency" "$delay" "$concurrency" "$max_side" "$THREADS" "$per_process" \
    "$("$venv/bin/pip" show img2dataset | grep ^Version | cut -d' ' -f2)" <<'PY'
import glob, io, json, sys, tarfile
out, hosts, per_host, latency, delay, conc, max_side, threads, per_process, version = sys.argv[1:]

def samples(folder):
    n, largest = 0, 0
    for t in sorted(glob.glob(f"{folder}/*.tar")):
        with tarfile.open(t) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".jpg"):
                    n += 1
                    data = tar.extractfile(m).read()
                    # JPEG SOF0/SOF2 marker: height and width
                    i = 2
                    while i < len(data) - 9:
                        if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2):
                            h, w = int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big")
                            largest = max(largest, w, h)
                            break
                        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return n, largest

m = {k: json.load(open(f"{out}/{k}.json")) for k in ("zhcorpus", "img2dataset")}
print(f"farm: {hosts} hosts x {per_host} photos, {latency} ms latency; {conc} downloads in flight in all "
      f"(img2dataset: {threads} processes x {per_process} threads); longer side scaled to {max_side}, JPEG q95, "
      f"WebDataset; img2dataset {version}")
print(f"politeness: zhcorpus 1 request per host, {delay} s between starts, robots.txt read; "
      f"img2dataset no per-host limit, no robots.txt; both skip X-Robots-Tag noai")
print(f"{'tool':<12} {'pairs':>6} {'largest side':>12} {'pairs/s':>8} {'CPU s/1k pairs':>15} {'pairs per CPU s':>16} {'peak RSS MiB':>13}")
row = {}
for name in ("zhcorpus", "img2dataset"):
    r = m[name]
    n, largest = samples(f"{out}/{name}")
    cpu = r["user_s"] + r["sys_s"]
    row[name] = (n / r["wall_s"], n / cpu if cpu else 0)
    print(f"{name:<12} {n:>6} {largest:>12} {n / r['wall_s']:>8.1f} {1000 * cpu / max(n, 1):>15.2f} "
          f"{row[name][1]:>16.1f} {r['peak_rss_mib']:>13.1f}")
apart = {k: json.load(open(f"{out}/apart-{k}.json")) for k in ("filter", "export")}
cpu = lambda r: r["user_s"] + r["sys_s"]
n = samples(f"{out}/zhcorpus")[0]
print(f"zhcorpus's steps apart, CPU s per 1,000 pairs: images filter {1000 * cpu(apart['filter']) / n:.2f}, "
      f"images export {1000 * cpu(apart['export']) / n:.2f} (each decoding every image); "
      f"fetch and the fused filter --output together {1000 * cpu(m['zhcorpus']) / n:.2f}")
print(f"ratio: img2dataset: {row['zhcorpus'][1] / row['img2dataset'][1]:.1f}x pairs per CPU second, "
      f"{row['zhcorpus'][0] / row['img2dataset'][0]:.2f}x pairs/s (zhcorpus also decodes every image for its "
      f"perceptual hash and judges every caption; img2dataset has no per-host delay)")
PY

# 2. harvest on real pages
pages="$data/extract/gne-news-pages"
if [ ! -d "$pages" ]; then
    echo "harvest: $pages is missing; the harvest part did not run"
    exit 0
fi
site="$out/site"
mkdir -p "$site"
cp -r "$pages"/. "$site/"
(cd "$site" && find . -name '*.html' | sort | sed 's|^\./||' \
    | awk 'BEGIN { print "<html><body>" } { printf "<a href=\"%s\">%s</a>\n", $0, $0 } END { print "</body></html>" }' > index.html)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$site" > /dev/null 2>&1 &
server=$!
for _ in $(seq 50); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/index.html')" 2> /dev/null && break; sleep 0.1; done
"$z" --quiet crawl --db "$out/harvest.db" --allow-private --delay 0 --max-depth 1 --no-sitemaps "http://127.0.0.1:$port/index.html" > /dev/null
"$z" --quiet images filter --db "$out/harvest.db" --captions-only > /dev/null
python3 - "$out/harvest.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
one = lambda q: db.execute(q).fetchone()[0]
pages = one("SELECT COUNT(*) FROM pages WHERE url LIKE '%.html' AND url NOT LIKE '%index.html'")
cands = one("SELECT COUNT(*) FROM image_text")
print(f"harvest: {pages} real news pages (gne-news-pages, kept aside: never tuned on), "
      f"{cands} image candidates in or near the main text; captions judged without fetching")
print("caption sources: " + ", ".join(f"{s or 'none'} {n}" for s, n in db.execute(
    "SELECT caption_source, COUNT(*) FROM image_text GROUP BY 1 ORDER BY 2 DESC")))
kept = one("SELECT COUNT(*) FROM image_verdicts WHERE keep = 1")
print(f"captions kept: {kept} of {cands}; removed: " + ", ".join(f"{r} {n}" for r, n in db.execute(
    "SELECT reason, COUNT(*) FROM image_verdicts WHERE keep = 0 GROUP BY 1 ORDER BY 2 DESC")))
print("sample of kept pairs (caption source: caption):")
for src, cap, url in db.execute(
        "SELECT t.caption_source, t.caption, d.url FROM image_verdicts v JOIN image_text t ON t.id = v.pair "
        "JOIN documents d ON d.seq = t.doc WHERE v.keep = 1 ORDER BY t.id LIMIT 12"):
    print(f"  {src}: {cap}  [{url.split('/', 3)[-1]}]")
PY
