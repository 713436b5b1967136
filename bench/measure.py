#!/usr/bin/env python3
"""Runs a command and prints its wall time, CPU time and peak RSS as one JSON object.

usage: measure.py [--best N] [--stdout FILE] -- COMMAND [ARGS...]
Each run measures one child, its own usage read when it ends (wait4). With --best N the
command runs N times and the fastest run is printed, with every run's wall time in `walls`:
for commands of a few seconds, where one run's time varies by a third on a shared machine.
The command's standard output is discarded, or written to FILE with --stdout.
"""
import json, os, subprocess, sys, time

args = sys.argv[1:sys.argv.index("--")]
cmd = sys.argv[sys.argv.index("--") + 1:]
rounds = int(args[args.index("--best") + 1]) if "--best" in args else 1
stdout_path = args[args.index("--stdout") + 1] if "--stdout" in args else None


def run():
    start = time.perf_counter()
    sink = open(stdout_path, "w") if stdout_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=sink)
    # this child's own usage (its peak RSS too), not the maximum over every child so far
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if stdout_path:
        sink.close()
    rc = os.waitstatus_to_exitcode(status)
    return {"rc": rc, "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "peak_rss_mib": ru.ru_maxrss / 1024}


runs = []
for _ in range(rounds):
    r = run()
    runs.append(r)
    if r["rc"] != 0:
        break
best = min(runs, key=lambda r: (r["rc"] != 0, r["wall_s"]))
if rounds > 1:
    best["walls"] = [round(r["wall_s"], 3) for r in runs]
print(json.dumps(best))
sys.exit(best["rc"] if all(r["rc"] == 0 for r in runs) else runs[-1]["rc"])
