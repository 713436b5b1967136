#!/usr/bin/env python3
"""The exact Jaccard check as a post-step any MinHash tool can add (zhcorpus does it inside):
reads a tool's candidates (JSONL pairs `[id, id]`, or clusters `{"members": [...]}` whose
member pairs are then the candidates), keeps the pairs whose exact shingle Jaccard is at least
the threshold, and joins pairs into clusters by union-find, written with and without the check.
Shingles from shingles.py, the ones score.py computes the truth on.
  verify.py EVAL.jsonl CANDIDATES.jsonl THRESHOLD N UNVERIFIED_OUT VERIFIED_OUT
Prints {"candidates", "passed", "verify_s"} (the time of the check alone)."""
import itertools, json, sys, time

from shingles import char_shingles

path, cands, threshold, n, raw_out, ver_out = sys.argv[1:7]
threshold, n = float(threshold), int(n)


pairs = []
for line in open(cands, encoding="utf-8"):
    c = json.loads(line)
    if isinstance(c, list):
        pairs.append((c[0], c[1]))
    else:
        members = c["members"] if "members" in c else [c["kept"]] + [r["id"] for r in c["removed"]]
        pairs.extend(itertools.combinations(members, 2))
texts = {}
need = {x for p in pairs for x in p}
for line in open(path, encoding="utf-8"):
    d = json.loads(line)
    if d["id"] in need:
        texts[d["id"]] = d["text"]

start = time.perf_counter()
sets = {}


def shingles(i):
    if i not in sets:
        sets[i] = char_shingles(texts[i], n)
    return sets[i]


passed = []
for a, b in pairs:
    x, y = shingles(a), shingles(b)
    common = len(x & y)
    union = len(x) + len(y) - common
    if union and common / union >= threshold:
        passed.append((a, b))
verify_s = time.perf_counter() - start


def write(pairs, out):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    clusters = {}
    for x in parent:
        clusters.setdefault(find(x), []).append(x)
    with open(out, "w", encoding="utf-8") as f:
        for members in clusters.values():
            if len(members) > 1:
                f.write(json.dumps({"members": sorted(members)}) + "\n")


write(pairs, raw_out)
write(passed, ver_out)
print(json.dumps({"candidates": len(pairs), "passed": len(passed), "verify_s": verify_s}))
