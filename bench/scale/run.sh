#!/usr/bin/env bash
# Scale bench: how each batch stage's wall time, CPU time, peak RSS and disk grow with the
# corpus, on generated documents (gen.py: real sentences recombined, real lengths, planted
# duplicates and junk). At each size in SIZES: import into a fresh store, clean, dedup (store,
# --memory-mib DEDUP_MIB), tokenizer training (vocabulary 32,000, --memory-mib TOKEN_MIB) and
# encoding, each timed alone. Then dedup file to file at DEDUP_SIZES (the large sizes, without
# a store); then tokenizer training alone on TOKEN_BYTES of text, bounded, against the unbounded
# trainer (up to UNBOUNDED_BYTES) by held-out tokens, and sentencepiece on the same text, sampled
# as its documentation recommends for large inputs, on text generated with gen.py --splice SPLICE
# (default 1: pieces keep growing with the text, as a real corpus's do; 0 recombines whole
# sentences, whose pieces stop growing); and the crawl frontier at FRONTIER_SIZES URLs
# (corpus/examples/frontier_scale.rs). report.py prints the tables, the slopes
# (log-log: 1 is linear) and writes the curves as SVG.
#   bench/scale/run.sh [DATA_DIR]        (default ../shared/data beside the repository)
#   SIZES="10000 100000 1000000"  DEDUP_SIZES=""  DEDUP_MIB=256
#   TOKEN_BYTES="1e8 1e9"  TOKEN_MIB=8192  UNBOUNDED_BYTES=1e9  SPM=1  SPLICE=1
#   FRONTIER_SIZES="100000 1000000"  APPEND=0
# A variable set empty runs none of its part (about 20 minutes with the defaults on
# two cores, about 5 GB of disk at the peak: the million-document store and its shards;
# sentencepiece takes 14 GB of memory at 1 and 10 GB, the unbounded trainer 8 GB at 1 GB). SIZES=10000000 adds 17 GB of JSONL, a 37 GB store and 50 minutes;
# DEDUP_SIZES=10000000 runs that size for dedup alone. APPEND=1 adds this run's figures
# to those already in bench/out/scale (a large size measured on its own) instead of starting
# afresh; a size and stage measured again replaces its old line in the report (run every
# TOKEN_BYTES size again when SPLICE changes: their rows are compared with each other).
source "$(dirname "$0")/../common.sh"
[ -d "$data/text" ] || { echo "no $data/text (pass the data folder)" >&2; exit 2; }
out="$root/bench/out/scale"
mkdir -p "$out"
sizes=${SIZES-10000 100000 1000000}
dedup_sizes=${DEDUP_SIZES:-}
dedup_mib=${DEDUP_MIB:-256}
frontier_sizes=${FRONTIER_SIZES-100000 1000000}
token_bytes=${TOKEN_BYTES-1e8 1e9}
splice=${SPLICE:-1}
token_mib=${TOKEN_MIB:-8192}
unbounded_bytes=${UNBOUNDED_BYTES:-1e9}
runs="$out/runs.jsonl"
[ "${APPEND:-0}" = 1 ] || : > "$runs"
gen() { python3 bench/scale/gen.py "$data/text" "$@"; }
# rec SIZE STAGE DISK -- COMMAND...: one measured run, appended to runs.jsonl with the bytes
# under DISK afterwards
rec() {
    local size=$1 stage=$2 disk=$3
    shift 4
    local r
    r=$(python3 bench/measure.py ${STDOUT:+--stdout "$STDOUT"} -- "$@")
    python3 -c 'import json, os, sys
r = json.loads(sys.argv[1])
p = sys.argv[4]
disk = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs) if os.path.isdir(p) \
    else (os.path.getsize(p) if os.path.exists(p) else 0)
r.update(size=float(sys.argv[2]), stage=sys.argv[3], disk_bytes=disk)
print(json.dumps(r))' "$r" "$size" "$stage" "$disk" >> "$runs"
}
zt=("$z" -q --threads "$THREADS")

for n in $sizes; do
    d="$out/docs-$n"
    rm -rf "$d" && mkdir -p "$d"
    gen --docs "$n" > "$d/docs.jsonl" 2> "$d/gen.json"
    rec "$n" import "$d/corpus.db" -- "${zt[@]}" import --db "$d/corpus.db" -i "$d/docs.jsonl"
    rm "$d/docs.jsonl"
    rec "$n" clean "$d/corpus.db" -- "${zt[@]}" clean --db "$d/corpus.db"
    rec "$n" dedup "$d/corpus.db" -- "${zt[@]}" dedup --db "$d/corpus.db" --memory-mib "$dedup_mib"
    rec "$n" tokenizer "$d/tok" -- "${zt[@]}" tokenizer train --db "$d/corpus.db" --vocab-size 32000 \
        --memory-mib "$token_mib" -o "$d/tok/tokenizer.json"
    rec "$n" encode "$d/shards" -- "${zt[@]}" tokenizer encode --db "$d/corpus.db" -t "$d/tok/tokenizer.json" \
        -o "$d/shards"
    "$z" -q stats --db "$d/corpus.db" > "$d/stats.txt" 2>&1 || true
    rm -rf "$d/shards" "$d"/corpus.db*
done

for n in $dedup_sizes; do
    d="$out/dedup-$n"
    rm -rf "$d" && mkdir -p "$d"
    gen --docs "$n" > "$d/docs.jsonl" 2> "$d/gen.json"
    STDOUT="$d/dedup.txt" rec "$n" dedup-files "$d/kept.jsonl" -- "${zt[@]}" dedup --memory-mib "$dedup_mib" \
        --input "$d/docs.jsonl" --output "$d/kept.jsonl"
    rm -f "$d/docs.jsonl" "$d/kept.jsonl"
done

# the crawl frontier at F URLs: enqueued into a fresh store, then a crawl's resume (the seen-set
# in memory, the queued hosts, one host's queue paged)
cargo build --release -q -p corpus --example frontier_scale
fs="$root/target/release/examples/frontier_scale"
for f in $frontier_sizes; do
    d="$out/frontier-$f"
    rm -rf "$d" && mkdir -p "$d"
    STDOUT="$d/enqueue.json" rec "$f" frontier-enqueue "$d/frontier.db" -- "$fs" enqueue "$d/frontier.db" "$f"
    STDOUT="$d/resume.json" rec "$f" frontier-resume "$d/frontier.db" -- "$fs" resume "$d/frontier.db"
    rm -f "$d"/frontier.db*
done

# tokenizer training alone on B bytes of text; held-out documents from another seed
if [ -n "$token_bytes" ]; then
    gen --docs 5000 --seed 99 --splice "$splice" > "$out/heldout.jsonl" 2> /dev/null
    venv tokenizer tokenizers==0.23.3 sentencepiece==0.2.3 tiktoken==0.14.0
    heldout_tokens() { "$z" -q tokenizer encode -t "$1" -i "$out/heldout.jsonl" -o "$out/heldout-shards" --val-fraction 0 |
        sed -n 's/.*into \([0-9]*\) tokens.*/\1/p'; }
    [ "${APPEND:-0}" = 1 ] || : > "$out/tokens.jsonl"
    for b in $token_bytes; do
        d="$out/text-$b"
        rm -rf "$d" && mkdir -p "$d"
        # four generators at once (seeds 3 to 6, ids a billion apart), each writing a quarter,
        # then joined: the same text whatever the thread count
        pids=()
        for k in 1 2 3 4; do
            gen --bytes "$(python3 -c "print($b / 4)")" --seed $((2 + k)) --start $(((k - 1) * 1000000000)) \
                --splice "$splice" > "$d/part-$k.jsonl" 2> "$d/gen-$k.json" &
            pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p"; done
        cat "$d"/part-[1-4].jsonl > "$d/text.jsonl" && rm "$d"/part-*.jsonl
        STDOUT="$d/bounded.txt" rec "$b" tokenizer-bounded "$d/bounded" -- "${zt[@]}" tokenizer train \
            -i "$d/text.jsonl" --vocab-size 32000 --memory-mib "$token_mib" -o "$d/bounded/tokenizer.json"
        sample=$(sed -n 's/.*trained on a \([0-9.]*\)% sample.*/\1/p' "$d/bounded.txt")
        bounded=$(heldout_tokens "$d/bounded/tokenizer.json")
        unbounded="" pieces=""
        if python3 -c "import sys; sys.exit(0 if float('$b') <= float('$unbounded_bytes') else 1)"; then
            STDOUT="$d/unbounded.txt" rec "$b" tokenizer-unbounded "$d/unbounded" -- "${zt[@]}" tokenizer train \
                -i "$d/text.jsonl" --vocab-size 32000 --memory-mib 0 -o "$d/unbounded/tokenizer.json"
            pieces=$(sed -n 's/.* \([0-9]*\) distinct pieces.*/\1/p' "$d/unbounded.txt")
            unbounded=$(heldout_tokens "$d/unbounded/tokenizer.json")
        fi
        if [ "${SPM:-1}" != 0 ]; then
            # one sentence per line, as sentencepiece reads; it samples 10 million of them
            python3 -c 'import json, re, sys
for l in open(sys.argv[1], encoding="utf-8"):
    for s in re.split(r"(?<=[。！？!?\n])", json.loads(l)["text"]):
        if s.strip():
            print(s.strip())' "$d/text.jsonl" > "$d/text.txt"
            rec "$b" sentencepiece "$d/spm.model" -- "$venv/bin/python" bench/tokenizer/peer_sentencepiece.py \
                "$d/text.txt" "$d/spm" 32000 "$THREADS" 10000000
            rm -f "$d/text.txt"
        fi
        echo "{\"bytes\": $b, \"splice\": $splice, \"sample\": ${sample:-100}, \"bounded\": ${bounded:-null}," \
            "\"unbounded\": ${unbounded:-null}, \"pieces\": ${pieces:-null}}" >> "$out/tokens.jsonl"
        rm -f "$d/text.jsonl"
    done
fi

python3 bench/scale/report.py "$out" "$root/docs/scale.svg"
