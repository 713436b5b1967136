#!/usr/bin/env bash
# Training benchmark on the CPU: zhcorpus against a PyTorch reference (bench/train/reference.py)
# with the same model, initial weights (zhcorpus's step-0 checkpoint, loaded by the reference),
# batches (zhcorpus's sampler reimplemented), optimiser and schedule, both on the same number of
# threads (read back from each run and printed): tokens/s and the ratio, and the loss of both at
# every step, to show they compute the same thing. PyTorch runs three ways: as PyTorch's
# documentation recommends for a decoder on the CPU (scaled_dot_product_attention with
# is_causal, F.rms_norm, fused AdamW), the same under torch.compile, and the naive script
# (explicit mask and softmax) it replaced; the ratio that counts is against the fastest.
#   bench/train/run.sh [DATA_DIR]     (default ../shared/data; the shards come from its text)
#   STEPS=30 PRESET=small SEQ=256 BATCH=8 ROUNDS=2 THREADS=$(nproc)
#   AVX2_ONLY=1: an AVX2-only machine on one with AVX-512: zhcorpus built without its AVX-512
#   kernels (--no-default-features: gemm's AVX2 kernels, fused kernels at most AVX2), PyTorch
#   held to AVX2 (ATEN_CPU_CAPABILITY=avx2 for its own kernels and torch.compile's code,
#   MKL_ENABLE_INSTRUCTIONS=AVX2 for MKL's, ONEDNN_MAX_CPU_ISA=AVX2 for oneDNN's); both read
#   back and printed; output in bench/out/train-avx2
out_name=train
if [ "${AVX2_ONLY:-0}" = 1 ]; then
  no_default_features=1
  out_name=train-avx2
  export ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
fi
source "$(dirname "$0")/../common.sh"
steps=${STEPS:-30}
[ -d "$data/text" ] || { echo "no $data/text (pass the data folder)" >&2; exit 2; }
out="$root/bench/out/$out_name"
mkdir -p "$out"
venv train torch==2.15.0 numpy==2.4.6 safetensors==0.8.0

# shards: an 8,000-token tokenizer over the tokenizer benchmark's sample
python3 bench/tokenizer/make_set.py "$data/text" "$out/text" 2> /dev/null
"$z" -q tokenizer train -i "$out/text/train.jsonl" --vocab-size 8000 -o "$out/tok/tokenizer.json" > /dev/null
"$z" -q tokenizer encode -t "$out/tok/tokenizer.json" -i "$out/text/train.jsonl" -o "$out/shards" > /dev/null

args=(--data "$out/shards" --preset "${PRESET:-small}" --seq-len "${SEQ:-256}" --batch-size "${BATCH:-8}")
rm -rf "$out/init" "$out/run"
# the initial weights: a run of 0 steps writes its step-0 checkpoint
"$z" -q train "${args[@]}" --output "$out/init" --max-steps 0 > /dev/null
threads=$THREADS
modes=(sdpa compile naive)
# rounds, each tool in turn, so that all see the same machine (shared machines drift)
rounds=${ROUNDS:-2}
for r in $(seq "$rounds"); do
  rm -rf "$out/run"
  "$z" -v --threads "$threads" train "${args[@]}" --max-steps "$steps" --output "$out/run" > /dev/null 2> "$out/zhcorpus-$r.log"
  cp "$out/run/metrics.jsonl" "$out/zhcorpus-$r.jsonl"
  for m in "${modes[@]}"; do
    # torch.compile needs a C++ compiler and may not work on every CPU: a failure is reported
    "$venv/bin/python" bench/train/reference.py "$out/init" "$out/shards" "$steps" "$threads" "$m" \
      > "$out/torch-$m-$r.jsonl" 2> "$out/torch-$m-$r.log" || echo "{\"failed\": true}" >> "$out/torch-$m-$r.jsonl"
  done
done

python3 - "$out" "$("$venv/bin/pip" show torch | grep ^Version | cut -d' ' -f2)" "$rounds" "$threads" <<'PY'
import json, re, statistics, sys
out, version, rounds, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
load = lambda p: [json.loads(l) for l in open(p)]
zs = [load(f"{out}/zhcorpus-{r}.jsonl") for r in range(1, rounds + 1)]
z_threads = {re.search(r"(\d+) threads? \(from", open(f"{out}/zhcorpus-{r}.log").read()).group(1) for r in range(1, rounds + 1)}
cfg = json.load(open(f"{out}/run/config.json"))["run"]
skip = 3  # the first steps warm caches and allocators (and compile, under torch.compile)
rate = lambda runs: statistics.median(m["tokens_per_s"] for run in runs for m in run[skip:])
m = cfg["model"]
kernels = re.search(r"CPU matrix kernels: (\S+), fused kernels: (\S+)", open(f"{out}/zhcorpus-1.log").read())
print(f"zhcorpus's matrix kernels (chosen at run time): {kernels.group(1) if kernels else 'not logged'}; "
      f"fused kernels: {kernels.group(2) if kernels else 'not logged'}")
print(f"model: {m['n_layer']} layers, d_model {m['d_model']}, {m['n_head']} heads, vocabulary {m['vocab_size']}; "
      f"T={cfg['seq_len']}, batch {cfg['batch_size']}; {len(zs[0])} steps x {rounds} rounds; PyTorch {version}")
rows = [("zhcorpus", zs, f"{','.join(sorted(z_threads))} threads")]
for mode in ("sdpa", "compile", "naive"):
    runs = [load(f"{out}/torch-{mode}-{r}.jsonl") for r in range(1, rounds + 1)]
    if any(l.get("failed") for run in runs for l in run):
        print(f"PyTorch {mode}: failed (see {out}/torch-{mode}-1.log)")
        continue
    head = runs[0][0]
    rows.append((f"PyTorch {mode}", [run[1:] for run in runs],
                 f"{head['threads']} threads, {head.get('cpu_capability', '?')} kernels"))
print(f"{'median tokens/s':<18}" + "".join(f"{'round ' + str(r + 1):>10}" for r in range(rounds)) + f"{'all':>10}  threads (read back)")
rates = {}
for name, runs, th in rows:
    rates[name] = rate(runs)
    print(f"{name:<18}" + "".join(f"{rate([run]):>10.0f}" for run in runs) + f"{rates[name]:>10.0f}  {th}")
best = max((n for n in rates if n != "zhcorpus"), key=rates.get)
for name in rates:
    if name != "zhcorpus":
        print(f"ratio: {rates['zhcorpus'] / rates[name]:.2f}x {name}'s tokens/s" + ("  (the fastest PyTorch)" if name == best else ""))
z = zs[0]
t = [l for l in load(f"{out}/torch-sdpa-1.jsonl")[1:]]
print("loss by step (zhcorpus, PyTorch sdpa, difference):")
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
"$venv/bin/pip" install -q transformers==5.24.0
"$z" -q hf-export --checkpoint "$out/run" --output "$out/hf" > /dev/null
ours=$("$z" -q sample --checkpoint "$out/run" --prompt "北京的冬天" --tokens 20 --temperature 0 --ignore-eot)
"$venv/bin/python" bench/train/check_hf.py "$out/hf" "北京的冬天" 20 "$ours" | tee "$out/hf-check.json"
