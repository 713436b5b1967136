#!/usr/bin/env python3
"""Pairwise precision and recall of each tool's clusters against the planted truth: a pair of
documents from the same original whose exact character 5-gram Jaccard is at least the
threshold (the quantity MinHash estimates)."""
import itertools, json, sys

out, threshold, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
docs = {}
for line in open(f"{out}/eval.jsonl", encoding="utf-8"):
    d = json.loads(line)
    t = "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in d["text"])
    t = "".join(t.split()).lower()
    docs[d["id"]] = {t[i:i + n] for i in range(max(1, len(t) - n + 1))}
truth = set()
kinds = {}
for group in json.load(open(f"{out}/groups.json"))["groups"]:
    for a, b in itertools.combinations(sorted(group), 2):
        j = len(docs[a] & docs[b]) / len(docs[a] | docs[b])
        if j >= threshold:
            truth.add((a, b))

def pairs_of(path, zhcorpus):
    pairs = set()
    for line in open(path):
        c = json.loads(line)
        members = [c["kept"]] + [r["id"] for r in c["removed"]] if zhcorpus else c["members"]
        pairs.update(itertools.combinations(sorted(members), 2))
    return pairs

rows = {}
for tool, path in [("zhcorpus", f"{out}/zhcorpus.clusters.jsonl"), ("datasketch", f"{out}/datasketch.clusters.jsonl"),
                   ("datatrove", f"{out}/datatrove.clusters.jsonl")]:
    pred = pairs_of(path, tool == "zhcorpus")
    hit = len(pred & truth)
    rows[tool] = (hit / len(pred) if pred else 0.0, hit / len(truth) if truth else 0.0)
json.dump({"truth_pairs": len(truth), "rows": rows}, open(f"{out}/score.json", "w"))
