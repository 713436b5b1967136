#!/usr/bin/env bash
# Dedup benchmark: zhcorpus against datasketch's MinHashLSH and datatrove's MinHash pipeline
# (throwaway venv), same shingles, permutations, threshold and bands x rows, in one run, on two
# sets of real text: THUCNews articles with planted edited copies, and Toutiao headlines with
# their natural rewordings; then zhcorpus alone on a million generated documents.
#   bench/dedup/run.sh [DATA_DIR]        (default ../shared/data beside the repository)
#   N=1000000 sets the size of the scaling run (0 skips it)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${1:-$root/../shared/data}
n=${N:-1000000}
news="$data/text/news/thucnews_dev.tsv"
headlines="$data/text/news/toutiao_ent_headlines.test.txt"
for f in "$news" "$headlines"; do
    [ -f "$f" ] || { echo "no $f (pass the data folder)" >&2; exit 2; }
done
out="$root/bench/out/dedup"
venv="$root/bench/out/venv-dedup"
mkdir -p "$out"
cd "$root"
cargo build --release -q -p zhcorpus
z="$root/target/release/zhcorpus"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q datasketch datatrove orjson spacy regex tokenizers xxhash jieba

# one set: SET THRESHOLD NGRAM BANDS ROWS
run_set() {
    local set=$1 t=$2 ng=$3 b=$4 r=$5 d="$out/$1"
    local lsh=(--threshold "$t" --ngram "$ng" --bands "$b" --rows "$r")
    python3 bench/measure.py -- "$z" dedup --quiet "${lsh[@]}" --input "$d/eval.jsonl" \
        --output "$d/zhcorpus.kept.jsonl" --clusters "$d/zhcorpus.clusters.jsonl" > "$d/zhcorpus.json"
    python3 bench/measure.py -- env RAYON_NUM_THREADS=1 "$z" dedup --quiet "${lsh[@]}" \
        --input "$d/eval.jsonl" --output "$d/zhcorpus1.kept.jsonl" > "$d/zhcorpus1.json"
    python3 bench/measure.py -- "$z" dedup --quiet "${lsh[@]}" --shingle words --input "$d/eval.jsonl" \
        --output "$d/words.kept.jsonl" --clusters "$d/words.clusters.jsonl" > "$d/words.json"
    python3 bench/measure.py -- "$venv/bin/python" bench/dedup/peer_datasketch.py "$d/eval.jsonl" \
        "$d/datasketch.clusters.jsonl" "$t" 128 "$ng" "$b" "$r" > "$d/datasketch.json"
    rm -rf "$d/datatrove-work"
    python3 bench/measure.py -- "$venv/bin/python" bench/dedup/peer_datatrove.py "$d/datatrove-in" \
        "$d/datatrove-work" "$d/datatrove.clusters.jsonl" "$b" "$r" "$ng" > "$d/datatrove.json"
    "$venv/bin/python" bench/dedup/score.py "$d" "$t" "$ng" chars zhcorpus="$d/zhcorpus.clusters.jsonl" \
        datasketch="$d/datasketch.clusters.jsonl" datatrove="$d/datatrove.clusters.jsonl" > "$d/score.json"
    "$venv/bin/python" bench/dedup/score.py "$d" "$t" "$ng" words words="$d/words.clusters.jsonl" \
        > "$d/score-words.json"
}
python3 bench/dedup/make_set.py news "$news" "$out/news"
python3 bench/dedup/make_set.py headlines "$headlines" "$out/headlines" 40000
# datasketch's optimal bands x rows for 128 permutations: 9 x 13 at 0.8, 18 x 7 at 0.6
run_set news 0.8 5 9 13
# headlines are short (about 20 characters): character 3-grams at 0.6 find their rewordings
run_set headlines 0.6 3 18 7

if [ "$n" -gt 0 ]; then
    python3 bench/import/gen.py "$n" > "$out/generated.jsonl"
    python3 bench/measure.py -- "$z" dedup --quiet --input "$out/generated.jsonl" \
        --output "$out/generated.kept.jsonl" > "$out/scale.json"
fi

python3 - "$out" "$n" "$("$venv/bin/pip" show datasketch datatrove | grep ^Version | cut -d' ' -f2 | paste -sd/)" <<'PY'
import json, os, sys
out, n, versions = sys.argv[1], int(sys.argv[2]), sys.argv[3]
dsv, dtv = versions.split("/")
print(f"datasketch {dsv}, datatrove {dtv}; 128 permutations, the same bands x rows for every tool")
for name, about in [("news", "THUCNews articles and edited copies; character 5-grams, threshold 0.8, 9 x 13"),
                    ("headlines", "Toutiao headlines; character 3-grams, threshold 0.6, 18 x 7")]:
    d = f"{out}/{name}"
    docs = sum(1 for _ in open(f"{d}/eval.jsonl"))
    score = json.load(open(f"{d}/score.json"))
    words = json.load(open(f"{d}/score-words.json"))
    m = {k: json.load(open(f"{d}/{k}.json")) for k in ("zhcorpus", "zhcorpus1", "words", "datasketch", "datatrove")}
    print(f"\n{name}: {docs:,} documents ({about}); {score['truth_pairs']} true pairs by exact Jaccard "
          f"({words['truth_pairs']} at jieba word shingles)")
    print(f"{'tool':<30} {'docs/s':>9} {'peak RSS MiB':>13} {'precision':>10} {'recall':>8}")
    for label, key, (p, r) in [("zhcorpus (2 threads)", "zhcorpus", score["rows"]["zhcorpus"]),
                               ("zhcorpus (1 thread)", "zhcorpus1", score["rows"]["zhcorpus"]),
                               ("zhcorpus, jieba words (2 thr.)", "words", words["rows"]["words"]),
                               ("datasketch", "datasketch", score["rows"]["datasketch"]),
                               ("datatrove (2 workers)", "datatrove", score["rows"]["datatrove"])]:
        print(f"{label:<30} {docs / m[key]['wall_s']:>9,.0f} {m[key]['peak_rss_mib']:>13.1f} {p:>10.3f} {r:>8.3f}")
    print(f"ratio: {m['datasketch']['wall_s'] / m['zhcorpus']['wall_s']:.1f}x datasketch's documents/s on 2 threads, "
          f"{m['datasketch']['wall_s'] / m['zhcorpus1']['wall_s']:.1f}x on one; "
          f"{m['datatrove']['wall_s'] / m['zhcorpus']['wall_s']:.1f}x datatrove's on 2 workers each")
if n and os.path.exists(f"{out}/scale.json"):
    s = json.load(open(f"{out}/scale.json"))
    print(f"\nscaling: {n:,} generated documents in {s['wall_s']:.1f} s = {n / s['wall_s']:,.0f} docs/s, "
          f"peak RSS {s['peak_rss_mib']:.0f} MiB ({s['peak_rss_mib'] * 2**20 / n:.0f} bytes per document)")
PY
