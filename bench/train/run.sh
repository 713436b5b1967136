#!/usr/bin/env bash
# Training benchmark on the CPU: zhcorpus against a PyTorch reference (CPU threads pinned to the
# same count, a nanoGPT-style script written here, bench/train/reference.py) with the same model,
# initial weights (zhcorpus's step-0 checkpoint, loaded by the reference), batches (zhcorpus's
# sampler reimplemented), optimiser and schedule: tokens/s and the ratio, and the loss of both
# at every step, to show they compute the same thing.
#   bench/train/run.sh [DATA_DIR]     (default ../shared/data; the shards come from its text)
#   STEPS=30 PRESET=small SEQ=256 BATCH=8
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${1:-$root/../shared/data}
steps=${STEPS:-30}
[ -d "$data/text" ] || { echo "no $data/text (pass the data folder)" >&2; exit 2; }
out="$root/bench/out/train"
venv="$root/bench/out/venv-train"
mkdir -p "$out"
cd "$root"
cargo build --release -q -p zhcorpus
z="$root/target/release/zhcorpus"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q torch numpy safetensors

# shards: an 8,000-token tokenizer over the tokenizer benchmark's sample
python3 bench/tokenizer/make_set.py "$data/text" "$out/text" 2> /dev/null
"$z" -q tokenizer train -i "$out/text/train.jsonl" --vocab-size 8000 -o "$out/tok/tokenizer.json" > /dev/null
"$z" -q tokenizer encode -t "$out/tok/tokenizer.json" -i "$out/text/train.jsonl" -o "$out/shards" > /dev/null

args=(--data "$out/shards" --preset "${PRESET:-small}" --seq-len "${SEQ:-256}" --batch-size "${BATCH:-8}")
rm -rf "$out/init" "$out/run"
# the initial weights: a run of 0 steps writes its step-0 checkpoint
"$z" -q train "${args[@]}" --output "$out/init" --max-steps 0 > /dev/null
# two rounds, each tool in turn, so that both see the same machine (shared machines drift)
rounds=${ROUNDS:-2}
for r in $(seq "$rounds"); do
  rm -rf "$out/run"
  "$z" -q train "${args[@]}" --max-steps "$steps" --output "$out/run" > /dev/null
  cp "$out/run/metrics.jsonl" "$out/zhcorpus-$r.jsonl"
  "$venv/bin/python" bench/train/reference.py "$out/init" "$out/shards" "$steps" 2 > "$out/torch-$r.jsonl"
done

python3 - "$out" "$("$venv/bin/pip" show torch | grep ^Version | cut -d' ' -f2)" "$rounds" <<'PY'
import json, statistics, sys
out, version, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
load = lambda p: [json.loads(l) for l in open(p)]
zs = [load(f"{out}/zhcorpus-{r}.jsonl") for r in range(1, rounds + 1)]
ts = [load(f"{out}/torch-{r}.jsonl") for r in range(1, rounds + 1)]
z, t = zs[0], ts[0]
cfg = json.load(open(f"{out}/run/config.json"))["run"]
skip = 3  # the first steps warm caches and allocators
# the median step of each round and of all rounds: robust to the odd slow step
rate = lambda runs: statistics.median(m["tokens_per_s"] for run in runs for m in run[skip:])
zr, tr = rate(zs), rate(ts)
m = cfg["model"]
print(f"model: {m['n_layer']} layers, d_model {m['d_model']}, {m['n_head']} heads, vocabulary {m['vocab_size']}; "
      f"T={cfg['seq_len']}, batch {cfg['batch_size']}; {len(z)} steps x {rounds} rounds; PyTorch {version}, 2 threads each")
print(f"{'median tokens/s':<16}" + "".join(f"{'round ' + str(r + 1):>10}" for r in range(rounds)) + f"{'all':>10}")
for name, runs, all_ in (("zhcorpus", zs, zr), ("PyTorch", ts, tr)):
    print(f"{name:<16}" + "".join(f"{rate([run]):>10.0f}" for run in runs) + f"{all_:>10.0f}")
print(f"ratio: {zr / tr:.2f}x PyTorch's tokens/s")
print("loss by step (zhcorpus, PyTorch, difference):")
worst = 0.0
for a, b in zip(z, t):
    d = abs(a["loss"] - b["loss"])
    worst = max(worst, d)
    if a["step"] in (1, 2, 5, 10, 20, 30, 50, 100) or a["step"] == len(z):
        print(f"  step {a['step']:>4}: {a['loss']:.4f} {b['loss']:.4f} {d:.1e}")
print(f"largest difference over all steps: {worst:.1e}")
PY

# the run as a Hugging Face folder: transformers loads it and continues a prompt greedily as
# zhcorpus does
"$venv/bin/pip" install -q transformers
"$z" -q hf-export --checkpoint "$out/run" --output "$out/hf" > /dev/null
ours=$("$z" -q sample --checkpoint "$out/run" --prompt "北京的冬天" --tokens 20 --temperature 0 --ignore-eot)
"$venv/bin/python" bench/train/check_hf.py "$out/hf" "北京的冬天" 20 "$ours" | tee "$out/hf-check.json"
