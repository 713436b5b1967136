#!/usr/bin/env bash
# Cluster bench: the batch stages split over RANKS ranks (`zhcorpus slurm`) against one process
# on the same generated documents (gen.py, DOCS of them, in FILES files): clean, dedup,
# tokenizer training, encoding and the kept documents imported into a store, one machine file
# to file; then the same plan run by the
# local executor (2 processes of one thread each) and as real Slurm job arrays on a one-node
# cluster started here on loopback (munged, slurmctld, slurmd; stopped by pid at the end;
# needs root and Debian's slurm-wlm and munge, which scripts/test.sh installs). It checks
# that the three give the same kept documents, tokenizer and shards, and prints per step:
# each engine's wall time, the tasks' own time (the sum of their reports' seconds), and the
# engine's cost (wall time past what the tasks themselves took, two at a time).
#   bench/scale/cluster.sh [DATA_DIR]      DOCS=200000  FILES=16  RANKS=4
# On two cores four ranks cannot be faster than one process: what this measures is what the
# split costs (extra passes, files, the engine), not a speed-up.
source "$(dirname "$0")/../common.sh"
[ -d "$data/text" ] || { echo "no $data/text (pass the data folder)" >&2; exit 2; }
docs=${DOCS:-200000}
files=${FILES:-16}
ranks=${RANKS:-4}
out="$root/bench/out/cluster"
rm -rf "$out" && mkdir -p "$out/in"
python3 bench/scale/gen.py "$data/text" --docs "$docs" > "$out/all.jsonl" 2> /dev/null
split -d -a 3 -n "l/$files" --additional-suffix=.jsonl "$out/all.jsonl" "$out/in/part-"
rm "$out/all.jsonl"
inputs=$(ls "$out"/in/*.jsonl | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin]))')
vocab=32000
cat > "$out/pipeline.toml" <<TOML
inputs = $inputs
[tokenizer]
vocab_size = $vocab
[slurm]
ranks = $ranks
cpus_per_task = 1
mem = "4G"
TOML
times="$out/times.jsonl"
: > "$times"
# t NAME COMMAND...: wall and CPU seconds of one command, appended to times.jsonl
t() {
    local name=$1
    shift
    python3 bench/measure.py -- "$@" | python3 -c 'import json,sys; r=json.load(sys.stdin); r["name"]=sys.argv[1]; print(json.dumps(r))' "$name" >> "$times"
}
one="$out/one"
mkdir -p "$one"
zt=("$z" -q --threads "$THREADS")
t one-clean "${zt[@]}" clean -i "$out"/in/*.jsonl -o "$one/clean.jsonl"
t one-dedup "${zt[@]}" dedup -i "$one/clean.jsonl" -o "$one/kept.jsonl"
t one-tokenizer "${zt[@]}" tokenizer train -i "$one/kept.jsonl" -o "$one/tokenizer/tokenizer.json" --vocab-size $vocab
t one-encode "${zt[@]}" tokenizer encode -i "$one/kept.jsonl" -t "$one/tokenizer/tokenizer.json" -o "$one/shards"
t one-store "${zt[@]}" import --db "$one/corpus.db" --input "$one/kept.jsonl"

# the local executor: as many processes as threads, one thread each
t local "$z" -q slurm local --config "$out/pipeline.toml" -o "$out/local" --processes "$THREADS"

# a one-node Slurm cluster on loopback
sl="$out/slurm-cluster"
mkdir -p "$sl"/{state,spool,log}
head -c 128 /dev/urandom > "$sl/munge.key" && chmod 600 "$sl/munge.key"
munged --force --socket="$sl/munge.sock" --key-file="$sl/munge.key" --pid-file="$sl/munged.pid" \
    --log-file="$sl/log/munged.log" --seed-file="$sl/munge.seed"
stop_cluster() {
    for p in slurmd slurmctld munged; do
        [ -f "$sl/$p.pid" ] && kill "$(cat "$sl/$p.pid")" 2> /dev/null || true
    done
}
trap stop_cluster EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
cat > "$sl/slurm.conf" <<CONF
ClusterName=zhcorpus-bench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$sl/munge.sock
CredType=cred/munge
StateSaveLocation=$sl/state
SlurmdSpoolDir=$sl/spool
SlurmctldPidFile=$sl/slurmctld.pid
SlurmdPidFile=$sl/slurmd.pid
SlurmctldLogFile=$sl/log/slurmctld.log
SlurmdLogFile=$sl/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=16000 State=UNKNOWN
PartitionName=bench Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$sl/slurm.conf"
slurmctld -f "$SLURM_CONF" && slurmd -f "$SLURM_CONF"
for _ in $(seq 150); do [ "$(sinfo -h -o %T)" = idle ] && break; sleep 0.2; done
start=$(date +%s.%N)
"$z" -q slurm submit --config "$out/pipeline.toml" -o "$out/slurm" > "$out/submit.txt"
while [ -n "$(squeue -h)" ]; do sleep 0.2; done
end=$(date +%s.%N)
echo "{\"name\": \"slurm\", \"wall_s\": $(python3 -c "print($end - $start)")}" >> "$times"
"$z" slurm status -o "$out/slurm" > "$out/status.txt" || { cat "$out/status.txt"; exit 1; }
stop_cluster
trap - EXIT

python3 - "$out" "$ranks" <<'PY'
import glob, json, os, subprocess, sys
out, ranks = sys.argv[1], int(sys.argv[2])
times = {r["name"]: r for r in map(json.loads, open(os.path.join(out, "times.jsonl")))}
def kept(run):
    return subprocess.run(f"cat {' '.join(sorted(glob.glob(os.path.join(out, run, 'dedup/kept-*.jsonl.zst'))))} | zstd -dc",
                          shell=True, capture_output=True).stdout
one = open(os.path.join(out, "one/kept.jsonl"), "rb").read()
def same_tree(a, b):
    files = lambda d: sorted(os.path.relpath(os.path.join(p, f), d) for p, _, fs in os.walk(d) for f in fs)
    return files(a) == files(b) and all(open(os.path.join(a, f), "rb").read() == open(os.path.join(b, f), "rb").read() for f in files(a))
for run in ["local", "slurm"]:
    ok = kept(run) == one and same_tree(os.path.join(out, run, "shards"), os.path.join(out, "one/shards")) \
        and open(os.path.join(out, run, "tokenizer/tokenizer.json"), "rb").read() == open(os.path.join(out, "one/tokenizer/tokenizer.json"), "rb").read()
    print(f"{run}: kept documents, tokenizer and shards identical to one process: {'yes' if ok else 'NO'}")
    if not ok:
        sys.exit(1)
steps = ["clean-count", "clean-judge", "dedup-sketch", "dedup-pairs", "dedup-sets", "dedup-cluster",
         "dedup-filter", "tokenizer-count", "tokenizer", "encode", "shards", "store", "merge"]
stage = {"clean": ["clean-count", "clean-judge"], "dedup": steps[2:7], "tokenizer": ["tokenizer-count", "tokenizer"],
         "encode": ["encode", "shards"], "store": ["store", "merge"]}
def step_times(run):
    """Per step: the end (the last marker's time) and the tasks' own seconds."""
    res = {}
    for s in steps:
        ms = sorted(glob.glob(os.path.join(out, run, "markers", f"{s}-[0-9]*.done")))
        secs = [json.load(open(m))["task_seconds"] for m in ms]
        res[s] = (max(os.path.getmtime(m) for m in ms), secs)
    return res
print(f"\n{len(glob.glob(os.path.join(out, 'in', '*.jsonl')))} input files, {ranks} ranks; two tasks at a time (2 cores, one thread each)")
print(f"one process (2 threads): clean {times['one-clean']['wall_s']:.1f} s, dedup {times['one-dedup']['wall_s']:.1f} s, "
      f"tokenizer {times['one-tokenizer']['wall_s']:.1f} s, encode {times['one-encode']['wall_s']:.1f} s, "
      f"import into a store {times['one-store']['wall_s']:.1f} s; "
      f"total {sum(times['one-' + k]['wall_s'] for k in stage):.1f} s")
print(f"local executor: {times['local']['wall_s']:.1f} s in all; Slurm: {times['slurm']['wall_s']:.1f} s from submit to an empty queue\n")
print("| step | tasks | tasks' own s (sum) | local wall s | Slurm wall s | Slurm cost s |")
print("|---|---|---|---|---|---|")
rows = {}
for run in ["local", "slurm"]:
    rows[run] = step_times(run)
prev = {"local": None, "slurm": None}
first_start = {"local": os.path.getmtime(os.path.join(out, "local", "plan.json")),
               "slurm": os.path.getmtime(os.path.join(out, "slurm", "plan.json"))}
tot = {"own": 0, "local": 0, "slurm": 0}
for s in steps:
    walls = {}
    for run in ["local", "slurm"]:
        end, secs = rows[run][s]
        begin = prev[run] if prev[run] is not None else first_start[run]
        walls[run] = end - begin
        prev[run] = end
    own = rows["slurm"][s][1]
    # the least the step can take two tasks at a time: its longest task, or half the work
    least = max(max(own), sum(own) / 2)
    tot["own"] += sum(own); tot["local"] += walls["local"]; tot["slurm"] += walls["slurm"]
    print(f"| {s} | {len(own)} | {sum(own):.1f} | {walls['local']:.1f} | {walls['slurm']:.1f} | {walls['slurm'] - least:.1f} |")
print(f"| all | | {tot['own']:.1f} | {tot['local']:.1f} | {tot['slurm']:.1f} | |")
print("\nper stage, the ranks' own seconds against one process's (2 threads; the ranks ran one thread each):")
for k, ss in stage.items():
    own = sum(sum(rows["slurm"][s][1]) for s in ss)
    cpu = times['one-' + k]['user_s'] + times['one-' + k]['sys_s']
    print(f"  {k}: the ranks' tasks {own:.1f} s (one thread each) against {times['one-' + k]['wall_s']:.1f} s wall and "
          f"{cpu:.1f} s CPU in one process: the split costs {own / cpu:.2f}x the CPU")
PY
