#!/usr/bin/env python3
"""rensa (Rust MinHash and LSH with Python bindings) on the same documents, shingles and LSH
settings as zhcorpus, used as its README recommends for a batch: signatures for every document
in one call (`RMinHash.from_token_sets`, full-set R-MinHash: every shingle counts, as in
zhcorpus; rensa's "rho" pipeline samples token positions instead), one `RMinHashLSH` filled with
`insert_many` and queried with `query_all`. Shingles: character n-grams of the text with
full-width folded, case and whitespace ignored, built in Python as a rensa user builds them.
Writes every candidate pair (LSH band matches, unverified) as JSONL `[id, id]`; verify.py joins
them into clusters, with and without the exact Jaccard check.
  peer_rensa.py EVAL.jsonl PAIRS.jsonl THRESHOLD NUM_PERM N BANDS"""
import json, sys

from rensa import RMinHash, RMinHashLSH
from shingles import compact, grams

path, out = sys.argv[1], sys.argv[2]
threshold, num_perm, n, bands = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])


ids, token_sets = [], []
for line in open(path, encoding="utf-8"):
    d = json.loads(line)
    ids.append(d["id"])
    token_sets.append(grams(compact(d["text"]), n))
minhashes = RMinHash.from_token_sets(token_sets, num_perm=num_perm, seed=42)
lsh = RMinHashLSH(threshold, num_perm, bands)
lsh.insert_many(minhashes)
with open(out, "w", encoding="utf-8") as f:
    for i, cands in enumerate(lsh.query_all(minhashes)):
        for j in cands:
            if j > i:
                f.write(json.dumps([ids[i], ids[j]]) + "\n")
