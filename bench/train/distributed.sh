#!/usr/bin/env bash
# Data-parallel training on one machine: 2 ranks x 1 thread (mpirun, MPI over shared memory)
# against 1 rank x 2 threads and 1 rank x 1 thread, and the peer, PyTorch's
# DistributedDataParallel over gloo (torchrun, 2 ranks x 1 thread; and PyTorch on 1 rank x 2
# threads), same model, initial weights, data, global batch and steps:
# tokens/s, the all-reduce's share of a step (timed inside the run: the gradient buckets' and
# the loss's all-reduce, with the copies in and out), the bytes all-reduced per step against
# the model's size, and the largest difference between the curves (they should agree).
#   bench/train/distributed.sh [DATA_DIR]     (default ../shared/data)
#   STEPS=30 PRESET=small SEQ=256 BATCH=8 ROUNDS=2
# Needs OpenMPI (openmpi-bin, libopenmpi-dev) and libclang-dev: the binary is built with the
# `mpi` feature.
features=mpi
source "$(dirname "$0")/../common.sh"
steps=${STEPS:-30}
[ -d "$data/text" ] || { echo "no $data/text (pass the data folder)" >&2; exit 2; }
command -v mpirun > /dev/null || { echo "no mpirun (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 2; }
out="$root/bench/out/train-dist"
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
venv train torch==2.15.0 numpy==2.4.6 safetensors==0.8.0

# the train benchmark's shards: an 8,000-token tokenizer over the tokenizer benchmark's sample
python3 bench/tokenizer/make_set.py "$data/text" "$out/text" 2> /dev/null
"$z" -q tokenizer train -i "$out/text/train.jsonl" --vocab-size 8000 -o "$out/tok/tokenizer.json" > /dev/null
"$z" -q tokenizer encode -t "$out/tok/tokenizer.json" -i "$out/text/train.jsonl" -o "$out/shards" > /dev/null

args=(--data "$out/shards" --preset "${PRESET:-small}" --seq-len "${SEQ:-256}" --batch-size "${BATCH:-8}")
rounds=${ROUNDS:-2}
# the initial weights PyTorch starts from: a run of 0 steps writes its step-0 checkpoint
rm -rf "$out/init"
"$z" -q train "${args[@]}" --max-steps 0 --output "$out/init" > /dev/null
args+=(--max-steps "$steps")
for r in $(seq "$rounds"); do
  "$venv/bin/torchrun" --standalone --nproc_per_node 2 bench/train/reference.py "$out/init" "$out/shards" "$steps" 1 sdpa \
    > "$out/ddp2-$r.jsonl" 2> "$out/ddp2-$r.log"
  "$venv/bin/python" bench/train/reference.py "$out/init" "$out/shards" "$steps" 2 sdpa \
    > "$out/torch2-$r.jsonl" 2> "$out/torch2-$r.log"
  for mode in one2 mpi2 one1; do
    rm -rf "$out/$mode"
    case $mode in
      one2) "$z" --threads 2 train "${args[@]}" --output "$out/$mode" > "$out/$mode-$r.txt" 2>&1 ;;
      one1) "$z" --threads 1 train "${args[@]}" --output "$out/$mode" > "$out/$mode-$r.txt" 2>&1 ;;
      mpi2) mpirun --bind-to none -np 2 "$z" --threads 1 train --distributed "${args[@]}" \
              --output "$out/$mode" > "$out/$mode-$r.txt" 2>&1 ;;
    esac
    cp "$out/$mode/metrics.jsonl" "$out/$mode-$r.jsonl"
  done
done

python3 - "$out" "$rounds" "$(mpirun --version | head -n 1)" <<'PY'
import json, statistics, sys
out, rounds, mpi = sys.argv[1], int(sys.argv[2]), sys.argv[3]
load = lambda p: [json.loads(l) for l in open(p)]
cfg = json.load(open(f"{out}/one2/config.json"))["run"]
m = cfg["model"]
import struct
with open(f"{out}/one2/checkpoint/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
params = sum(
    __import__("math").prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
skip = 3  # the first steps warm caches and allocators
tps_step = cfg["seq_len"] * cfg["batch_size"] * cfg["grad_accum"]
runs = {mode: [load(f"{out}/{mode}-{r}.jsonl") for r in range(1, rounds + 1)] for mode in ("one2", "mpi2", "one1")}
# PyTorch's first line says how it runs
torch_info = {mode: load(f"{out}/{mode}-1.jsonl")[0] for mode in ("ddp2", "torch2")}
for mode in ("ddp2", "torch2"):
    runs[mode] = [load(f"{out}/{mode}-{r}.jsonl")[1:] for r in range(1, rounds + 1)]
rate = lambda mode: statistics.median(x["tokens_per_s"] for run in runs[mode] for x in run[skip:])
share = statistics.median(
    x["allreduce_s"] / (tps_step / x["tokens_per_s"]) for run in runs["mpi2"] for x in run[skip:])
ar = statistics.median(x["allreduce_s"] for run in runs["mpi2"] for x in run[skip:])
worst = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(runs["one2"][0], runs["mpi2"][0]))
grad_bytes = params * 4 + 16
print(f"model: {m['n_layer']} layers, d_model {m['d_model']}, {m['n_head']} heads, vocabulary {m['vocab_size']}, "
      f"{params / 1e6:.2f}M parameters ({params * 4 / 2**20:.1f} MiB in f32); T={cfg['seq_len']}, global batch "
      f"{cfg['batch_size']}; {len(runs['one2'][0])} steps x {rounds} rounds; {mpi}")
print()
print("| run | tokens/s | vs 1 rank x 2 threads | all-reduce per step | share of a step |")
print("|---|---:|---:|---:|---:|")
base = rate("one2")
print(f"| 1 rank x 2 threads | {base:,.0f} | 1.00x | - | - |")
print(f"| 2 ranks x 1 thread (mpirun) | {rate('mpi2'):,.0f} | {rate('mpi2') / base:.2f}x | {ar * 1000:.1f} ms | {100 * share:.1f}% |")
print(f"| 1 rank x 1 thread | {rate('one1'):,.0f} | {rate('one1') / base:.2f}x | - | - |")
print(f"| PyTorch {torch_info['ddp2']['torch']} DDP over gloo, {torch_info['ddp2']['ranks']} ranks x "
      f"{torch_info['ddp2']['threads']} thread (torchrun) | {rate('ddp2'):,.0f} | {rate('ddp2') / base:.2f}x | overlapped | - |")
print(f"| PyTorch, 1 rank x {torch_info['torch2']['threads']} threads | {rate('torch2'):,.0f} | {rate('torch2') / base:.2f}x | - | - |")
print()
print(f"ratio: zhcorpus 2 ranks / PyTorch DDP 2 ranks: {rate('mpi2') / rate('ddp2'):.2f}x tokens/s")
ddp_worst = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(runs["mpi2"][0], runs["ddp2"][0]))
print(f"curves: largest relative loss difference, zhcorpus 2 ranks against PyTorch DDP 2 ranks: {ddp_worst:.1e}")
print(f"bytes all-reduced per step: {grad_bytes / 2**20:.1f} MiB (every gradient once, plus the loss): "
      f"{grad_bytes / (params * 4):.3f}x the model's f32 weights; a ring all-reduce moves 2(N-1)/N of it "
      f"through each rank's link, {2 * grad_bytes / 2**20:.1f} MiB per rank and step for large N")
print(f"goal: all-reduce under 10% of a step: {'met' if share < 0.10 else 'missed'} ({100 * share:.1f}%)")
print(f"curves: largest relative loss difference, 2 ranks against 1: {worst:.1e}")
PY
