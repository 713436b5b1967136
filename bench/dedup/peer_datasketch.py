#!/usr/bin/env python3
"""datasketch MinHashLSH on the same documents, shingles and settings as zhcorpus: character
n-grams of the text with full-width folded, case and whitespace ignored. Each document is
queried before it is inserted; every candidate pair (LSH band matches, unverified) is written as
JSONL `[id, id]`, and verify.py joins them into clusters, with and without the exact check."""
import json, sys
from datasketch import MinHash, MinHashLSH
from shingles import compact, grams

path, out, threshold, num_perm, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
bands, rows = int(sys.argv[6]), int(sys.argv[7])  # the same bands x rows as zhcorpus

ids, lsh = [], MinHashLSH(threshold=threshold, num_perm=num_perm, params=(bands, rows))
with open(out, "w", encoding="utf-8") as f:
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        m = MinHash(num_perm=num_perm)
        m.update_batch([g.encode() for g in grams(compact(d["text"]), n)])
        i = len(ids)
        ids.append(d["id"])
        for j in lsh.query(m):
            f.write(json.dumps([ids[j], d["id"]]) + "\n")
        lsh.insert(i, m)
