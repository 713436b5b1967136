#!/usr/bin/env python3
"""Runs a command and prints its wall time, CPU time and peak RSS as one JSON object.

usage: measure.py [--best N] -- COMMAND [ARGS...]
Each run measures one child (RUSAGE_CHILDREN is read before and after it). With --best N the
command runs N times and the fastest run is printed, with every run's wall time in `walls`:
for commands of a few seconds, where one run's time varies by a third on a shared machine.
"""
import json, resource, subprocess, sys, time

args = sys.argv[1:sys.argv.index("--")]
cmd = sys.argv[sys.argv.index("--") + 1:]
rounds = int(args[args.index("--best") + 1]) if "--best" in args else 1


def run():
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    # peak RSS over children so far: the runs are the same command, so the largest is this one's
    return {"rc": proc.returncode, "wall_s": wall, "user_s": ru.ru_utime - before.ru_utime,
            "sys_s": ru.ru_stime - before.ru_stime, "peak_rss_mib": ru.ru_maxrss / 1024}


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
