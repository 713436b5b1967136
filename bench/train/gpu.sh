#!/usr/bin/env bash
# The GPU benchmark, in two halves, for when the machine with the GPU cannot build Rust:
#
#   bench/train/gpu.sh prepare [DATA_DIR]   here: the CUDA binary (cargo build --release
#                                            --features cuda; needs nvcc, cuBLAS, cuRAND, NVRTC)
#                                            and the shards, into bench/out/gpu/
#   bench/train/gpu.sh run                   on the GPU machine, from a copy of the repository
#                                            that carries bench/out/gpu/
#
# `run` prints the GPU, checks the binary's libraries, then:
#   1. the tiny model for 20 steps on the CPU and on the GPU, both f32, from the same step-0
#      weights and batches: the largest loss difference (the GPU computes what the CPU does);
#   2. a 10-step bf16 smoke run of the 124m preset;
#   3. the timed run: 124m, T=1024, batch 16, bf16, STEPS steps (default 40): median tokens/s
#      and MFU against PEAK_FLOPS (default 989e12, an H100/H200's dense bf16 peak).
# Results go to bench/out/gpu/results/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/bench/out/gpu"
z="$out/zhcorpus"

prepare() {
  local data=${1:-$root/../shared/data}
  [ -d "$data/text" ] || { echo "no $data/text (pass the data folder)" >&2; exit 2; }
  mkdir -p "$out"
  cd "$root"
  # the CUDA build in its own target folder, so that the CPU build stays as it is
  cargo build --release --features cuda --bin zhcorpus --target-dir "$out/cuda-target"
  strip -o "$z" "$out/cuda-target/release/zhcorpus"
  # shards: a 32,000-token tokenizer over the tokenizer benchmark's sample, with the CPU build
  # (the CUDA one needs the CUDA libraries to start)
  cargo build --release -q -p zhcorpus
  local cpu="$root/target/release/zhcorpus"
  python3 bench/tokenizer/make_set.py "$data/text" "$out/text" 2> /dev/null
  "$cpu" -q tokenizer train -i "$out/text/train.jsonl" --vocab-size 32000 -o "$out/tok/tokenizer.json" > /dev/null
  # 8 MB of it encoded (about 1.7M tokens: a timed run of 40 steps reads 655k), to keep the
  # copy to the GPU machine small
  head -c 8000000 "$out/text/train.jsonl" | head -n -1 > "$out/text/part.jsonl"
  rm -rf "$out/shards"
  "$cpu" -q tokenizer encode -t "$out/tok/tokenizer.json" -i "$out/text/part.jsonl" -o "$out/shards" > /dev/null
  rm -rf "$out/text" "$out/tok"
  # what the GPU machine needs: the stripped binary and the shards (not the build folder)
  du -sh "$z" "$out/shards"
}

median_rate() {  # metrics.jsonl -> median tokens/s after the first 3 steps
  python3 -c 'import json,statistics,sys; m=[json.loads(l) for l in open(sys.argv[1])][3:]; print(round(statistics.median(x["tokens_per_s"] for x in m)))' "$1"
}

run() {
  local res="$out/results"
  mkdir -p "$res"
  nvidia-smi | tee "$res/nvidia-smi.txt"
  # the CUDA libraries: the toolkit's, or a Python environment's nvidia/cu13/lib
  local libs
  libs=$(find / -name 'libcublas.so.13*' -not -path '*/proc/*' 2> /dev/null | head -1 || true)
  [ -n "$libs" ] && export LD_LIBRARY_PATH="$(dirname "$libs"):${LD_LIBRARY_PATH:-}"
  ldd "$z" | grep -E 'cuda|cublas|curand|cudart|nvrtc' | tee "$res/ldd.txt"
  if ldd "$z" | grep -q 'not found'; then echo "missing libraries" >&2; exit 1; fi

  # 1. the same computation on both devices
  local tiny=(--data "$out/shards" --preset tiny --max-steps 20 --precision f32 -q)
  rm -rf "$res/tiny-cpu" "$res/tiny-gpu"
  "$z" train "${tiny[@]}" --device cpu --output "$res/tiny-cpu" 2>&1 | tail -1
  "$z" train "${tiny[@]}" --device cuda --output "$res/tiny-gpu" 2>&1 | tail -1
  python3 - "$res" <<'PY' | tee "$res/agreement.txt"
import json, sys
r = sys.argv[1]
a = [json.loads(l)["loss"] for l in open(f"{r}/tiny-cpu/metrics.jsonl")]
b = [json.loads(l)["loss"] for l in open(f"{r}/tiny-gpu/metrics.jsonl")]
print(f"tiny, f32, 20 steps: CPU {a[-1]:.5f}, GPU {b[-1]:.5f}, largest difference {max(abs(x - y) for x, y in zip(a, b)):.1e}")
PY

  # 2. smoke, 3. timed
  local big=(--data "$out/shards" --preset 124m --seq-len 1024 --batch-size 16 --precision bf16
             --device cuda --peak-flops "${PEAK_FLOPS:-989e12}")
  rm -rf "$res/smoke" "$res/timed"
  "$z" train "${big[@]}" --max-steps 10 --output "$res/smoke" 2>&1 | tail -2
  "$z" train "${big[@]}" --max-steps "${STEPS:-40}" --output "$res/timed" 2>&1 | tail -2
  local tps
  tps=$(median_rate "$res/timed/metrics.jsonl")
  python3 - "$res/timed/config.json" "$tps" "${PEAK_FLOPS:-989e12}" <<'PY' | tee "$res/summary.txt"
import json, sys
cfg = json.load(open(sys.argv[1]))["run"]
m, tps, peak = cfg["model"], float(sys.argv[2]), float(sys.argv[3])
n = 4 * m["d_model"] ** 2 + 3 * m["d_model"] * m["d_ff"] + 2 * m["d_model"]
flops = 6 * (m["n_layer"] * n + m["d_model"]) + 12 * m["n_layer"] * cfg["seq_len"] * m["d_model"]
print(f"124m, T={cfg['seq_len']}, batch {cfg['batch_size']}, bf16: {tps:.0f} tokens/s, MFU {100 * tps * flops / peak:.1f}%")
PY
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) run ;;
  *) echo "usage: $0 prepare [DATA_DIR] | run" >&2; exit 2 ;;
esac
