#!/usr/bin/env bash
# Dedup benchmark: zhcorpus against rensa (Rust MinHash + LSH, the fast peer), datasketch's
# MinHashLSH and datatrove's MinHash pipeline (throwaway venv, pinned), the same shingles,
# permutations, threshold and bands x rows for every tool, in one run, on three sets of real
# text:
#   big        every real document of the text folder (reviews, headlines, Weibo, Wikipedia,
#              news, poems: about 169,000 with their natural duplicates) plus edited copies of
#              one in ten, about 179,000; 16 bands x 8 rows of 128 (every tool takes it)
#   news       THUCNews articles with planted edited copies; datasketch's optimal 9 x 13
#   headlines  40,000 Toutiao headlines with their natural rewordings; 18 x 7
# Every tool's precision and recall against the exact all-pairs truth (score.py), both as the
# tool gives its candidates and after the exact Jaccard check (zhcorpus does it inside; for the
# peers verify.py adds it as a post-step). Start-up (an interpreter and its imports, or the
# binary on one document) is measured alone and reported beside the speeds.
#   bench/dedup/run.sh [DATA_DIR]        (default ../shared/data beside the repository)
#   THREADS=N (default: every core) for every tool; ROUNDS=3 runs of zhcorpus and rensa, the
#   fastest kept (datasketch and datatrove run once: they take minutes); N=1000000 sets the size of the scaling run
#   (0 skips it); SETS="big news headlines" selects the sets; datatrove runs on the small sets
#   only (about 100 documents/s: half an hour on the big one)
source "$(dirname "$0")/../common.sh"
n=${N:-1000000}
sets=${SETS:-big news headlines}
text="$data/text"
news="$text/news/thucnews_dev.tsv"
headlines="$text/news/toutiao_ent_headlines.test.txt"
for f in "$news" "$headlines"; do
    [ -f "$f" ] || { echo "no $f (pass the data folder)" >&2; exit 2; }
done
out="$root/bench/out/dedup"
mkdir -p "$out"
venv dedup datasketch==2.0.0 rensa==0.5.0 datatrove==0.10.1 orjson==3.13.0 spacy==3.8.18 regex==2026.11.19 \
    tokenizers==0.23.3 xxhash==4.1.0 jieba==0.42.1
py="$root/bench/out/venv-dedup/bin/python"
m() { python3 bench/measure.py -- "$@"; }
# the fast tools (a few seconds a run) run ROUNDS times (3) and keep the fastest, every tool alike
b() { python3 bench/measure.py --best "${ROUNDS:-3}" -- "$@"; }

# start-up alone: the binary on one document, each interpreter with its imports
echo '{"id":"a","text":"一个文档。"}' > "$out/one.jsonl"
m "$z" dedup --quiet --threads 1 --input "$out/one.jsonl" --output "$out/one.kept.jsonl" > "$out/startup-zhcorpus.json"
m "$py" -c "import json, rensa" > "$out/startup-rensa.json"
m "$py" -c "import json, datasketch" > "$out/startup-datasketch.json"
m "$py" -c "import json, datatrove.pipeline.dedup.minhash, datatrove.executor" > "$out/startup-datatrove.json"

# one set: SET THRESHOLD NGRAM BANDS ROWS PEERS
run_set() {
    local set=$1 t=$2 ng=$3 b=$4 r=$5 peers=$6 d="$out/$1"
    local lsh=(--threshold "$t" --ngram "$ng" --bands "$b" --rows "$r")
    b "$z" dedup --quiet --threads "$THREADS" "${lsh[@]}" --input "$d/eval.jsonl" \
        --output "$d/zhcorpus.kept.jsonl" --clusters "$d/zhcorpus.clusters.jsonl" > "$d/zhcorpus.json"
    b "$z" dedup --quiet --threads 1 "${lsh[@]}" --input "$d/eval.jsonl" \
        --output "$d/zhcorpus1.kept.jsonl" --clusters "$d/zhcorpus1.clusters.jsonl" > "$d/zhcorpus1.json"
    b "$z" dedup --quiet --threads 1 --no-verify "${lsh[@]}" --input "$d/eval.jsonl" \
        --output "$d/zhcorpus1-raw.kept.jsonl" --clusters "$d/zhcorpus1-raw.clusters.jsonl" > "$d/zhcorpus1-raw.json"
    local score=(zhcorpus="$d/zhcorpus1.clusters.jsonl" zhcorpus2="$d/zhcorpus.clusters.jsonl"
        zhcorpus-raw="$d/zhcorpus1-raw.clusters.jsonl")
    for p in $peers; do
        case $p in
        rensa)
            # rensa spreads a large batch over Rayon workers: one thread, then THREADS
            b env RAYON_NUM_THREADS=1 "$py" bench/dedup/peer_rensa.py "$d/eval.jsonl" "$d/rensa.pairs.jsonl" \
                "$t" 128 "$ng" "$b" > "$d/rensa1.json"
            b env RAYON_NUM_THREADS="$THREADS" "$py" bench/dedup/peer_rensa.py "$d/eval.jsonl" \
                "$d/rensa.pairs.jsonl" "$t" 128 "$ng" "$b" > "$d/rensa.json"
            cands="$d/rensa.pairs.jsonl" ;;
        datasketch)
            m "$py" bench/dedup/peer_datasketch.py "$d/eval.jsonl" "$d/datasketch.pairs.jsonl" \
                "$t" 128 "$ng" "$b" "$r" > "$d/datasketch.json"
            cands="$d/datasketch.pairs.jsonl" ;;
        datatrove)
            rm -rf "$d/datatrove-work"
            m "$py" bench/dedup/peer_datatrove.py "$d/datatrove-in" "$d/datatrove-work" \
                "$d/datatrove.clusters.jsonl" "$b" "$r" "$ng" "$THREADS" > "$d/datatrove.json"
            cands="$d/datatrove.clusters.jsonl" ;;
        esac
        "$py" bench/dedup/verify.py "$d/eval.jsonl" "$cands" "$t" "$ng" "$d/$p-raw.clusters.jsonl" \
            "$d/$p.clusters.jsonl" > "$d/$p.verify.json"
        score+=("$p"="$d/$p.clusters.jsonl" "$p"-raw="$d/$p-raw.clusters.jsonl")
    done
    "$py" bench/dedup/score.py "$d" "$t" "$ng" chars "${score[@]}" > "$d/score.json"
    if [ "$set" != big ]; then
        m "$z" dedup --quiet --threads "$THREADS" "${lsh[@]}" --shingle words --input "$d/eval.jsonl" \
            --output "$d/words.kept.jsonl" --clusters "$d/words.clusters.jsonl" > "$d/words.json"
        "$py" bench/dedup/score.py "$d" "$t" "$ng" words words="$d/words.clusters.jsonl" > "$d/score-words.json"
    fi
}
for set in $sets; do
    case $set in
    big)
        python3 bench/dedup/make_set.py big "$text" "$out/big"
        run_set big 0.8 5 16 8 "rensa datasketch" ;;
    news)
        python3 bench/dedup/make_set.py news "$news" "$out/news" "" "$THREADS"
        # datasketch's optimal bands x rows for 128 permutations: 9 x 13 at 0.8
        run_set news 0.8 5 9 13 "datasketch datatrove" ;;
    headlines)
        python3 bench/dedup/make_set.py headlines "$headlines" "$out/headlines" 40000 "$THREADS"
        # headlines are short (about 20 characters): character 3-grams at 0.6 find their rewordings
        run_set headlines 0.6 3 18 7 "datasketch datatrove" ;;
    esac
done

if [ "$n" -gt 0 ]; then
    python3 bench/import/gen.py "$n" > "$out/generated.jsonl"
    m "$z" dedup --quiet --threads "$THREADS" --input "$out/generated.jsonl" \
        --output "$out/generated.kept.jsonl" > "$out/scale.json"
fi

"$py" bench/dedup/report.py "$out" "$n" "$THREADS" "$sets"
