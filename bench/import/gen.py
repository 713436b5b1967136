#!/usr/bin/env python3
"""Writes N short generated Chinese documents as JSONL (id, text, url, source, one extra field)."""
import json, random, sys

n = int(sys.argv[1])
rng = random.Random(1)
han = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
out = sys.stdout
for i in range(n):
    text = "".join(rng.choice(han) for _ in range(rng.randint(20, 60))) + "。"
    doc = {"id": f"doc-{i:08d}", "text": text, "url": f"http://s{i % 7}.example.cn/{i}.html",
           "source": ("news", "forum", "wiki")[i % 3], "n": i}
    out.write(json.dumps(doc, ensure_ascii=False) + "\n")
