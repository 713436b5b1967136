#!/usr/bin/env bash
# Import benchmark: `zhcorpus import` against a Python json + sqlite3 loader doing the same
# work, on the same generated JSONL, in one run. Prints documents/s, peak RSS and the ratio.
#   N=1000000 bench/import/run.sh
source "$(dirname "$0")/../common.sh"
n=${N:-1000000}
out="$root/bench/out/import"
mkdir -p "$out"
zhcorpus=$z
echo "generating $n documents" >&2
python3 bench/import/gen.py "$n" > "$out/docs.jsonl"
size=$(stat -c %s "$out/docs.jsonl")

run() { # name, command...
    local name=$1; shift
    rm -rf "$out"/"$name".db*  # the database, its -wal and -shm, and its .locks folder
    python3 bench/measure.py -- "$@" > "$out/$name.json"
}
run zhcorpus "$zhcorpus" import --quiet --db "$out/zhcorpus.db" --input "$out/docs.jsonl"
run python python3 bench/import/python_loader.py "$out/python.db" "$out/docs.jsonl"

python3 - "$out" "$n" "$size" "$(python3 --version)" <<'PY'
import json, sys
out, n, size, pyver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = {k: json.load(open(f"{out}/{k}.json")) for k in ("zhcorpus", "python")}
print(f"import of {n:,} documents ({size / 2**20:.0f} MiB JSONL); peer: {pyver} json + sqlite3")
print(f"{'tool':<10} {'docs/s':>10} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13}")
for k, r in rows.items():
    cpu = r["user_s"] + r["sys_s"]
    print(f"{k:<10} {n / r['wall_s']:>10,.0f} {r['wall_s']:>8.1f} {cpu:>8.1f} {r['peak_rss_mib']:>13.1f}")
z, p = rows["zhcorpus"], rows["python"]
print(f"ratio (zhcorpus / python): {p['wall_s'] / z['wall_s']:.2f}x documents/s, "
      f"{(p['user_s'] + p['sys_s']) / (z['user_s'] + z['sys_s']):.2f}x less CPU, "
      f"{z['peak_rss_mib'] / p['peak_rss_mib']:.2f}x the peak memory")
PY
