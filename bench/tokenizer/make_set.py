#!/usr/bin/env python3
"""Builds the tokenizer benchmark's sample from the real text in ../shared/data/text: every
review, post, headline, article, paragraph, poem and manual page, one JSONL document each with
its genre as `source`. One document in twenty (by position) of each genre is held out for the
compression figures; the rest is the training sample. Also writes the training sample as plain
text, one line per sentence, for sentencepiece.

usage: make_set.py DATA_TEXT_DIR OUT_DIR
"""
import glob, json, os, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from textsrc import page_text, rows_csv  # noqa: E402

text_dir, out = sys.argv[1], sys.argv[2]


def jsonl(pattern, field):
    for path in sorted(glob.glob(pattern)):
        for line in open(path, encoding="utf-8"):
            t = json.loads(line).get(field)
            if t:
                yield t


g = {}
g["reviews"] = list(rows_csv(sorted(glob.glob(f"{text_dir}/reviews/*.csv")), "review"))
g["weibo"] = list(rows_csv([f"{text_dir}/social/weibo_senti_100k_subset.csv"], "review"))
g["news"] = [l.split("\t", 1)[1].strip() for l in open(f"{text_dir}/news/thucnews_dev.tsv", encoding="utf-8") if "\t" in l]
g["headlines"] = [l.split("---", 1)[1].strip() for f in sorted(glob.glob(f"{text_dir}/news/toutiao_ent_headlines.*.txt"))
                  for l in open(f, encoding="utf-8") if "---" in l]
g["encyclopedia"] = list(dict.fromkeys(jsonl(f"{text_dir}/encyclopedia/*.jsonl", "context")))
g["song_ci"] = list(jsonl(f"{text_dir}/literature/songci_simplified.*.jsonl", "text"))
g["tang_traditional"] = list(jsonl(f"{text_dir}/literature/quantangshi_traditional_part.*.jsonl", "text"))
g["yuan_qu"] = list(jsonl(f"{text_dir}/literature/yuanqu.*.jsonl", "text"))
g["classics"] = list(jsonl(f"{text_dir}/literature/classics_misc.jsonl", "text"))
g["technical"] = [page_text(h, collapse=True) for h in jsonl(f"{text_dir}/technical/*.jsonl", "html")]

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
