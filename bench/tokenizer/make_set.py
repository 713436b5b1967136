#!/usr/bin/env python3
"""Builds the tokenizer benchmark's sample from the real text in ../shared/data/text: every
review, post, headline, article, paragraph, poem and manual page, one JSONL document each with
its genre as `source`. One document in twenty (by position) of each genre is held out for the
compression figures; the rest is the training sample. Also writes the training sample as plain
text, one line per sentence, for sentencepiece.

usage: make_set.py DATA_TEXT_DIR OUT_DIR
"""
import json, os, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from textsrc import genres  # noqa: E402

text_dir, out = sys.argv[1], sys.argv[2]
g = genres(text_dir)

os.makedirs(out, exist_ok=True)
train = open(f"{out}/train.jsonl", "w", encoding="utf-8")
lines = open(f"{out}/train.txt", "w", encoding="utf-8")
held = open(f"{out}/heldout.jsonl", "w", encoding="utf-8")
size = {"train": 0, "heldout": 0}
for genre, texts in g.items():
    for i, t in enumerate(texts):
        d = json.dumps({"id": f"{genre}-{i}", "text": t, "source": genre}, ensure_ascii=False) + "\n"
        if i % 20 == 10:
            held.write(d)
            size["heldout"] += len(t.encode())
        else:
            train.write(d)
            size["train"] += len(t.encode())
            for s in re.split(r"(?<=[。！？!?\n])", t):
                if s.strip():
                    lines.write(s.strip() + "\n")
print(json.dumps({"genres": {k: len(v) for k, v in g.items()}, "bytes": size}), file=sys.stderr)
