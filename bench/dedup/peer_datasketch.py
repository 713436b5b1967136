#!/usr/bin/env python3
"""datasketch MinHashLSH on the same documents, shingles and settings as zhcorpus: character
n-grams of the text with full-width folded, case and whitespace ignored. Each document is
queried before it is inserted; every candidate pair (LSH band matches, unverified) is written as
JSONL `[id, id]`, and verify.py joins them into clusters, with and without the exact check."""
import json, sys
from datasketch import MinHash, MinHashLSH

path, out, threshold, num_perm, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
bands, rows = int(sys.argv[6]), int(sys.argv[7])  # the same bands x rows as zhcorpus

def normalize(t):
    t = "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in t)
    return "".join(t.split()).lower()

ids, lsh = [], MinHashLSH(threshold=threshold, num_perm=num_perm, params=(bands, rows))
with open(out, "w", encoding="utf-8") as f:
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        t = normalize(d["text"])
        m = MinHash(num_perm=num_perm)
        m.update_batch([t[i:i + n].encode() for i in range(max(1, len(t) - n + 1))])
        i = len(ids)
        ids.append(d["id"])
        for j in lsh.query(m):
            f.write(json.dumps([ids[j], d["id"]]) + "\n")
        lsh.insert(i, m)
