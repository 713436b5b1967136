#!/usr/bin/env bash
# Tokenizer benchmark: zhcorpus against Hugging Face tokenizers (byte-level BPE with the same
# split expression) and sentencepiece BPE (throwaway venv), vocabulary 32,000, on a 31 MB sample
# of every genre in ../shared/data/text, in one run: training time and peak RSS, characters per
# token on held-out documents of each genre, whether HF loading zhcorpus's tokenizer.json gives
# the same ids, and encoding MB/s against HF's encode_batch and tiktoken. Then what the
# pre-tokenizer settings (Han run cap, jieba) do to compression and speed, and what training
# under --memory-mib costs (MEMORY_MIB="512 384 256").
#   bench/tokenizer/run.sh [DATA_DIR]        (default ../shared/data beside the repository)
#   PRETOK=0 skips the pre-tokenizer table; THREADS=N (default: every core) for every tool
source "$(dirname "$0")/../common.sh"
[ -d "$data/text" ] || { echo "no $data/text (pass the data folder)" >&2; exit 2; }
out="$root/bench/out/tokenizer"
mkdir -p "$out"
venv tokenizer tokenizers==0.23.3 sentencepiece==0.2.3 tiktoken==0.14.0
m() { python3 bench/measure.py -- "$@"; }
threads=$THREADS

python3 bench/tokenizer/make_set.py "$data/text" "$out" 2> "$out/set.json"
m "$z" -q --threads "$threads" tokenizer train -i "$out/train.jsonl" --vocab-size 32000 -o "$out/z/tokenizer.json" > "$out/train-zhcorpus.json"
# HF from the plain-text file, as its documentation recommends (the same text, a line per
# sentence), and from whole documents through an iterator (line breaks kept, as zhcorpus sees them)
RAYON_NUM_THREADS=$threads m "$venv/bin/python" bench/tokenizer/peer_hf.py "$out/train.txt" "$out/z/tokenizer.json" \
    "$out/hf.json" 32000 > "$out/train-hf.json"
RAYON_NUM_THREADS=$threads m "$venv/bin/python" bench/tokenizer/peer_hf.py "$out/train.jsonl" "$out/z/tokenizer.json" \
    "$out/hf-docs.json" 32000 > "$out/train-hfdocs.json"
m "$venv/bin/python" bench/tokenizer/peer_sentencepiece.py "$out/train.txt" "$out/spm" 32000 "$threads" > "$out/train-spm.json"

"$z" -q tokenizer encode -t "$out/z/tokenizer.json" -i "$out/heldout.jsonl" -o "$out/heldout-shards" --val-fraction 0 > /dev/null
"$venv/bin/python" bench/tokenizer/eval.py "$out/heldout.jsonl" "$out/eval.json" zhcorpus="$out/z/tokenizer.json" \
    hf="$out/hf.json" hf_docs="$out/hf-docs.json" sentencepiece="$out/spm.model" --check-shards "$out/heldout-shards" > /dev/null

m "$z" -q --threads "$threads" tokenizer encode -t "$out/z/tokenizer.json" -i "$out/train.jsonl" -o "$out/train-shards" > "$out/encode-zhcorpus.json"
m "$z" -q --threads 1 tokenizer encode -t "$out/z/tokenizer.json" -i "$out/train.jsonl" -o "$out/train-shards" \
    > "$out/encode-zhcorpus1.json"
"$venv/bin/python" bench/tokenizer/peer_encode.py "$out/train.jsonl" "$out/z/tokenizer.json" "$threads" > "$out/encode-peers.json"

# bounded memory: the same training under --memory-mib (a sample of the documents past it)
: > "$out/memory.jsonl"
for mib in ${MEMORY_MIB:-512 384 256}; do
    d="$out/memory/$mib"
    t=$(m "$z" -q --threads "$threads" tokenizer train -i "$out/train.jsonl" --vocab-size 32000 --memory-mib "$mib" -o "$d/tokenizer.json")
    said=$("$z" -q --threads "$threads" tokenizer train -i "$out/train.jsonl" --vocab-size 32000 --memory-mib "$mib" -o "$d/tokenizer.json")
    e=$("$z" -q tokenizer encode -t "$d/tokenizer.json" -i "$out/heldout.jsonl" -o "$d/shards" --val-fraction 0)
    python3 -c 'import json,re,sys; t=json.loads(sys.argv[2]); s=re.search(r"a ([0-9.]+)% sample", sys.argv[3]); print(json.dumps({"mib": int(sys.argv[1]), "train_s": t["wall_s"], "rss": t["peak_rss_mib"], "sample": float(s.group(1)) if s else 100.0, "tokens": int(re.search(r"into ([0-9]+) tokens", sys.argv[4]).group(1))}))' \
        "$mib" "$t" "$said" "$e" >> "$out/memory.jsonl"
done
unbounded_tokens=$("$z" -q tokenizer encode -t "$out/z/tokenizer.json" -i "$out/heldout.jsonl" -o "$out/heldout-shards" --val-fraction 0 | sed -n 's/.*into \([0-9]*\) tokens.*/\1/p')

if [ "${PRETOK:-1}" != 0 ]; then
    : > "$out/pretok.jsonl"
    for v in "--han-max 4" "--han-max 8" "--han-max 16" "--han-max 64" "--pre-segment jieba-long" "--pre-segment jieba"; do
        d="$out/pretok/$(echo "$v" | tr -d ' -')"
        t=$(m "$z" -q tokenizer train -i "$out/train.jsonl" --vocab-size 32000 $v -o "$d/tokenizer.json")
        e=$("$z" -q tokenizer encode -t "$d/tokenizer.json" -i "$out/heldout.jsonl" -o "$d/shards" --val-fraction 0)
        python3 -c 'import json,re,sys; t=json.loads(sys.argv[2]); print(json.dumps({"setting": sys.argv[1], "train_s": t["wall_s"], "rss": t["peak_rss_mib"], "cpt": float(re.search(r"([0-9.]+) characters per token", sys.argv[3]).group(1))}))' \
            "$v" "$t" "$e" >> "$out/pretok.jsonl"
    done
fi

python3 - "$out" "$("$venv/bin/pip" show tokenizers sentencepiece tiktoken | grep ^Version | cut -d' ' -f2 | paste -sd/)" "$threads" "$unbounded_tokens" <<'PY'
import json, os, sys
out, versions, threads = sys.argv[1], sys.argv[2].split("/"), int(sys.argv[3])
unbounded_tokens = int(sys.argv[4])
L = lambda n: json.load(open(f"{out}/{n}"))
mb = L("set.json")["bytes"]["train"] / 1e6
print(f"threads: {threads} for every tool")
print(f"sample: {mb:.1f} MB to train on, {L('set.json')['bytes']['heldout'] / 1e6:.1f} MB held out; vocabulary 32,000; "
      f"tokenizers {versions[0]}, sentencepiece {versions[1]}, tiktoken {versions[2]}")
print(f"\n{'training':<28} {'seconds':>8} {'peak RSS MiB':>13}")
t = {k: L(f"train-{k}.json") for k in ("zhcorpus", "hf", "hfdocs", "spm")}
for name, k in [("zhcorpus", "zhcorpus"), ("HF tokenizers, from the file", "hf"),
                ("HF tokenizers, documents", "hfdocs"), ("sentencepiece BPE", "spm")]:
    print(f"{name:<28} {t[k]['wall_s']:>8.1f} {t[k]['peak_rss_mib']:>13.0f}")
hf_best = min(t["hf"]["wall_s"], t["hfdocs"]["wall_s"])
print(f"ratio: {hf_best / t['zhcorpus']['wall_s']:.1f}x faster than HF's faster way, "
      f"{t['spm']['wall_s'] / t['zhcorpus']['wall_s']:.1f}x faster than sentencepiece")
e = L("eval.json")
genres = [g for g in e["zhcorpus"] if g != "all"] + ["all"]
print("\ncharacters per token on held-out text (higher is better)")
print(f"{'genre':<18}" + "".join(f"{k:>15}" for k in ("zhcorpus", "hf", "hf_docs", "sentencepiece")))
for g in genres:
    print(f"{g:<18}" + "".join(f"{e[k][g]:>15.3f}" for k in ("zhcorpus", "hf", "hf_docs", "sentencepiece")))
same = e["identical_ids"]
print(f"HF tokenizers loading zhcorpus's tokenizer.json: {'identical' if same['same'] else 'DIFFERENT'} ids "
      f"on {same['tokens']:,} held-out tokens")
z2, z1, p = L("encode-zhcorpus.json"), L("encode-zhcorpus1.json"), L("encode-peers.json")
print(f"\nencoding {p['mb']:.1f} MB (same vocabulary)")
print(f"zhcorpus encode, {threads} threads: {mb / z2['wall_s']:.1f} MB/s (whole command: JSONL in, shards out)")
print(f"zhcorpus encode, 1 thread:  {mb / z1['wall_s']:.1f} MB/s")
print(f"HF encode_batch, {threads} threads: {p['hf_mb_s']:.1f} MB/s")
print(f"tiktoken, {threads} threads:        {p['tiktoken_mb_s']:.1f} MB/s ({p['tiktoken_same_docs']:.1%} of documents with identical ids)")
print(f"ratio: {mb / z2['wall_s'] / p['hf_mb_s']:.1f}x HF's encode_batch, {mb / z2['wall_s'] / p['tiktoken_mb_s']:.1f}x tiktoken's")
rows = [json.loads(l) for l in open(f"{out}/memory.jsonl")]
if rows:
    print(f"\nbounded memory (zhcorpus, the same training under --memory-mib; held-out tokens, "
          f"{unbounded_tokens:,} unbounded in {t['zhcorpus']['peak_rss_mib']:.0f} MiB)")
    for r in rows:
        print(f"--memory-mib {r['mib']:<5} trained on {r['sample']:5.1f}% of the documents, "
              f"{r['train_s']:>5.1f} s {r['rss']:>6.0f} MiB, {r['tokens']:,} held-out tokens "
              f"({r['tokens'] / unbounded_tokens - 1:+.2%})")
    r = min(rows, key=lambda r: r["mib"])
    print(f"ratio: under --memory-mib {r['mib']}, {r['tokens'] / unbounded_tokens - 1:+.2%} held-out tokens "
          f"against the unbounded trainer, in {r['rss'] / t['zhcorpus']['peak_rss_mib']:.2f}x its memory, "
          f"{t['spm']['wall_s'] / r['train_s']:.1f}x faster than sentencepiece on all the text")
if os.path.exists(f"{out}/pretok.jsonl"):
    print("\npre-tokenizer settings (zhcorpus, held-out characters per token, all genres)")
    for l in open(f"{out}/pretok.jsonl"):
        r = json.loads(l)
        print(f"{r['setting']:<26} train {r['train_s']:>5.1f} s {r['rss']:>6.0f} MiB  {r['cpt']:.2f} chars/token")
PY
