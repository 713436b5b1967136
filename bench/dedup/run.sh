#!/usr/bin/env bash
# Dedup benchmark: zhcorpus against datasketch's MinHashLSH (throwaway venv) on a
# near-duplicate set built from real news articles, same shingles, permutations and threshold,
# in one run; then zhcorpus alone on a million generated documents.
#   bench/dedup/run.sh [DATA_DIR]        (default ../shared/data beside the repository)
#   N=1000000 sets the size of the scaling run (0 skips it)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${1:-$root/../shared/data}
n=${N:-1000000}
news="$data/text/news/thucnews_dev.tsv"
[ -f "$news" ] || { echo "no THUCNews file at $news (pass the data folder)" >&2; exit 2; }
out="$root/bench/out/dedup"
venv="$root/bench/out/venv-dedup"
mkdir -p "$out"
cd "$root"
cargo build --release -q -p zhcorpus
z="$root/target/release/zhcorpus"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q datasketch datatrove orjson spacy regex tokenizers xxhash

python3 bench/dedup/make_set.py "$news" "$out"
python3 bench/measure.py -- "$z" dedup --quiet --input "$out/eval.jsonl" --output "$out/zhcorpus.kept.jsonl" \
    --clusters "$out/zhcorpus.clusters.jsonl" > "$out/zhcorpus.json"
python3 bench/measure.py -- env RAYON_NUM_THREADS=1 "$z" dedup --quiet --input "$out/eval.jsonl" \
    --output "$out/zhcorpus1.kept.jsonl" > "$out/zhcorpus1.json"
python3 bench/measure.py -- "$venv/bin/python" bench/dedup/peer_datasketch.py "$out/eval.jsonl" \
    "$out/datasketch.clusters.jsonl" 0.8 128 5 > "$out/datasketch.json"
rm -rf "$out/datatrove-work"
python3 bench/measure.py -- "$venv/bin/python" bench/dedup/peer_datatrove.py "$out/datatrove-in" \
    "$out/datatrove-work" "$out/datatrove.clusters.jsonl" 9 13 > "$out/datatrove.json"
python3 bench/dedup/score.py "$out" 0.8 5
docs=$(wc -l < "$out/eval.jsonl")

if [ "$n" -gt 0 ]; then
    python3 bench/import/gen.py "$n" > "$out/generated.jsonl"
    python3 bench/measure.py -- "$z" dedup --quiet --input "$out/generated.jsonl" \
        --output "$out/generated.kept.jsonl" > "$out/scale.json"
fi

python3 - "$out" "$docs" "$n" "$("$venv/bin/pip" show datasketch datatrove | grep ^Version | cut -d' ' -f2 | paste -sd/)" <<'PY'
import json, os, sys
out, docs, n, versions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
dsv, dtv = versions.split("/")
score = json.load(open(f"{out}/score.json"))
m = {k: json.load(open(f"{out}/{k}.json")) for k in ("zhcorpus", "zhcorpus1", "datasketch", "datatrove")}
print(f"near-duplicate set: {docs} documents from THUCNews, {score['truth_pairs']} true pairs "
      f"(5-gram Jaccard >= 0.8); 128 permutations, threshold 0.8; datasketch {dsv}, datatrove {dtv}")
print(f"{'tool':<22} {'docs/s':>9} {'peak RSS MiB':>13} {'precision':>10} {'recall':>8}")
for name, key, sk in [("zhcorpus (2 threads)", "zhcorpus", "zhcorpus"), ("zhcorpus (1 thread)", "zhcorpus1", "zhcorpus"),
                      ("datasketch", "datasketch", "datasketch"), ("datatrove (2 workers)", "datatrove", "datatrove")]:
    p, r = score["rows"][sk]
    print(f"{name:<22} {docs / m[key]['wall_s']:>9,.0f} {m[key]['peak_rss_mib']:>13.1f} {p:>10.3f} {r:>8.3f}")
print(f"ratio: {m['datasketch']['wall_s'] / m['zhcorpus']['wall_s']:.1f}x datasketch's documents/s on 2 threads, "
      f"{m['datasketch']['wall_s'] / m['zhcorpus1']['wall_s']:.1f}x on one; "
      f"{m['datatrove']['wall_s'] / m['zhcorpus']['wall_s']:.1f}x datatrove's on 2 workers each")
if n and os.path.exists(f"{out}/scale.json"):
    s = json.load(open(f"{out}/scale.json"))
    print(f"scaling: {n:,} generated documents in {s['wall_s']:.1f} s = {n / s['wall_s']:,.0f} docs/s, "
          f"peak RSS {s['peak_rss_mib']:.0f} MiB ({s['peak_rss_mib'] * 2**20 / n:.0f} bytes per document)")
PY
