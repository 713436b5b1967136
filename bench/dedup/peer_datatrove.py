#!/usr/bin/env python3
"""datatrove's MinHash pipeline (signature -> buckets -> cluster -> filter) on the same
documents. datatrove shingles word n-grams from a per-language tokenizer; to compare at the
same shingles its input carries the normalised text with characters separated by spaces, so
its n-grams are character n-grams. Same bands x rows as zhcorpus, 64-bit sha1 hashes (the
notes on datatrove's pitfalls), as many tasks and workers as the benchmark's threads (the
clustering stage is one task by design). Writes the clusters as JSONL."""
import json, os, sys

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets,
                                              MinhashDedupCluster, MinhashDedupFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.hashing import HashConfig

if __name__ == "__main__":
    inp, work, out, bands, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    n = int(sys.argv[6])
    k = int(sys.argv[7]) if len(sys.argv) > 7 else 2
    cfg = MinhashConfig(n_grams=n, num_buckets=bands, hashes_per_bucket=rows,
                        hash_config=HashConfig(precision=64, hash_fc="sha1"))
    logs = f"{work}/logs"
    LocalPipelineExecutor(pipeline=[JsonlReader(inp), MinhashDedupSignature(f"{work}/sigs", config=cfg)],
                          tasks=k, workers=k, logging_dir=f"{logs}/1").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=cfg)],
                          tasks=bands, workers=k, logging_dir=f"{logs}/2").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=cfg,
                                                        save_cluster_id=True)],
                          tasks=1, logging_dir=f"{logs}/3").run()
    LocalPipelineExecutor(pipeline=[JsonlReader(inp),
                                    MinhashDedupFilter(f"{work}/remove", load_cluster_ids=True,
                                                       exclusion_writer=JsonlWriter(f"{work}/removed", compression=None)),
                                    JsonlWriter(f"{work}/kept", compression=None)],
                          tasks=k, workers=k, logging_dir=f"{logs}/4").run()
    clusters = {}
    for sub in ("kept", "removed"):
        for name in os.listdir(f"{work}/{sub}"):
            for line in open(f"{work}/{sub}/{name}"):
                d = json.loads(line)
                cid = d.get("metadata", {}).get("minhash_cluster_id")
                if cid is not None and cid != -1:
                    clusters.setdefault(cid, []).append(d["id"])
    with open(out, "w") as f:
        for members in clusters.values():
            if len(members) > 1:
                f.write(json.dumps({"members": members}) + "\n")
