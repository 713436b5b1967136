#!/usr/bin/env python3
"""Runs a command and prints its wall time, CPU time and peak RSS as one JSON object.

usage: measure.py -- COMMAND [ARGS...]
Each call measures one child, so RUSAGE_CHILDREN is that command alone.
"""
import json, resource, subprocess, sys, time

cmd = sys.argv[sys.argv.index("--") + 1:]
start = time.perf_counter()
proc = subprocess.run(cmd, stdout=subprocess.DEVNULL)
wall = time.perf_counter() - start
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": proc.returncode, "wall_s": wall, "user_s": ru.ru_utime,
                  "sys_s": ru.ru_stime, "peak_rss_mib": ru.ru_maxrss / 1024}))
sys.exit(proc.returncode)
