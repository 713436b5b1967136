#!/usr/bin/env python3
"""Pairwise precision and recall of each tool's clusters against the truth: every pair of
documents in the set whose exact shingle Jaccard is at least the threshold (the quantity MinHash
estimates), found by an exact all-pairs similarity join (prefix filtering), not by sampling.
  score.py OUT THRESHOLD N chars|words TOOL=CLUSTERS.jsonl ...
Shingles: character N-grams of the text with full-width folded, case and whitespace ignored, or
word N-grams of jieba's words (no HMM; tokens without a letter or digit left out)."""
import itertools, json, math, sys
from collections import defaultdict

from shingles import char_shingles, fold

out, threshold, n, unit = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tools = [a.split("=", 1) for a in sys.argv[5:]]

if unit == "words":
    import jieba
    jieba.setLogLevel(60)
    def shingles(t):
        w = [x for x in jieba.lcut(fold(t), HMM=False) if any(c.isalnum() for c in x)]
        return {"\x1f".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))} if w else set()
else:
    def shingles(t):
        return char_shingles(t, n)

ids, sets = [], []
for line in open(f"{out}/eval.jsonl", encoding="utf-8"):
    d = json.loads(line)
    ids.append(d["id"])
    sets.append(shingles(d["text"]))
freq = defaultdict(int)
for s in sets:
    for g in s:
        freq[g] += 1
truth = set()
index = defaultdict(list)
for i in sorted(range(len(sets)), key=lambda i: len(sets[i])):
    s = sets[i]
    if not s:
        continue
    toks = sorted(s, key=lambda g: (freq[g], g))
    prefix = len(toks) - math.ceil(threshold * len(toks) - 1e-9) + 1
    seen = set()
    for g in toks[:prefix]:
        for j in index[g]:
            if j in seen:
                continue
            seen.add(j)
            common = len(s & sets[j])
            if common / (len(s) + len(sets[j]) - common) >= threshold:
                truth.add(tuple(sorted((ids[i], ids[j]))))
        index[g].append(i)

def pairs_of(path):
    pairs = set()
    for line in open(path):
        c = json.loads(line)
        members = c["members"] if "members" in c else [c["kept"]] + [r["id"] for r in c["removed"]]
        pairs.update(itertools.combinations(sorted(members), 2))
    return pairs

rows = {}
for tool, path in tools:
    pred = pairs_of(path)
    hit = len(pred & truth)
    rows[tool] = (hit / len(pred) if pred else 0.0, hit / len(truth) if truth else 0.0)
json.dump({"truth_pairs": len(truth), "rows": rows}, sys.stdout)
