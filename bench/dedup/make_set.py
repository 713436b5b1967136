#!/usr/bin/env python3
"""Builds the near-duplicate evaluation sets.
  make_set.py news THUCNEWS_TSV OUT: every THUCNews article, plus copies edited at several rates
    (character insertions and deletions, sentence reordering, appended boilerplate);
  make_set.py headlines TOUTIAO_TXT OUT [N]: the first N (10,000) Toutiao headlines, whose
    near duplicates are natural rewordings of one story;
  make_set.py big TEXT_DIR OUT: every real document of the text folder (reviews, headlines,
    Weibo posts, Wikipedia paragraphs with their repeats, news, Song ci, Tang poems, Yuan qu,
    classics: about 160,000, with their natural duplicates) plus an edited copy of one in ten
    documents of 30+ characters (the same edits as for news), about 175,000 in all.
Writes OUT/eval.jsonl and, for datatrove, OUT/datatrove-in/ (the small sets; a fifth argument
splits it into that many files, one per datatrove task, 2 by default). The truth is computed from the
texts themselves by score.py."""
import json, os, random, sys

kind, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
rng = random.Random(42)
originals = []
if kind == "big":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from textsrc import rows_csv
    d = src
    rev = [f"{d}/reviews/{f}" for f in sorted(os.listdir(f"{d}/reviews"))]
    originals += list(rows_csv(rev, "review"))
    originals += list(rows_csv(f"{d}/social/weibo_senti_100k_subset.csv", "review"))
    for line in open(f"{d}/news/toutiao_ent_headlines.test.txt", encoding="utf-8"):
        t = line.rstrip("\n").split("---", 1)[-1].strip()
        if t:
            originals.append(t)
    for line in open(f"{d}/news/thucnews_dev.tsv", encoding="utf-8"):
        t = line.rstrip("\n").partition("\t")[2].strip()
        if t:
            originals.append(t[:3000])
    for line in open(f"{d}/encyclopedia/cmrc2018_wiki_contexts_with_repeats.jsonl", encoding="utf-8"):
        originals.append(json.loads(line)["context"])
    for f in sorted(os.listdir(f"{d}/literature")):
        if f.endswith(".jsonl"):
            for line in open(f"{d}/literature/{f}", encoding="utf-8"):
                t = json.loads(line).get("text", "").strip()
                if t:
                    originals.append(t[:3000])
elif kind == "headlines":
    limit = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else 10_000
    for line in open(src, encoding="utf-8"):
        text = line.rstrip("\n").split("---", 1)[-1].strip()
        if text:
            originals.append(text)
        if len(originals) == limit:
            break
else:
    for line in open(src, encoding="utf-8"):
        label, _, text = line.rstrip("\n").partition("\t")
        if len(text) >= 200:
            originals.append(text[:3000])

def char_edits(text, rate):
    out = []
    for c in text:
        r = rng.random()
        if r < rate / 2:
            continue                       # deletion
        out.append(c)
        if r > 1 - rate / 2:
            out.append(chr(0x4E00 + rng.randrange(3000)))  # insertion
    return "".join(out)

def reorder(text):
    parts = [p for p in text.replace("。", "。\n").split("\n") if p]
    i = rng.randrange(len(parts))
    j = rng.randrange(len(parts))
    parts[i], parts[j] = parts[j], parts[i]
    return "".join(parts)

BOILER = "（责任编辑：本网编辑）本文来源于网络，转载请注明出处。更多精彩内容请关注我们的公众号。"
EDITS = [("chars1", lambda t: char_edits(t, 0.01)), ("chars3", lambda t: char_edits(t, 0.03)),
         ("chars10", lambda t: char_edits(t, 0.10)), ("reorder", reorder),
         ("boilerplate", lambda t: t + BOILER), ("exact", lambda t: t)]
docs = []
if kind == "big":
    for g, text in enumerate(originals):
        docs.append({"id": f"b{g:06d}", "text": text})
        if len(text) >= 30 and rng.random() < 0.1:
            name, f = rng.choice(EDITS)
            docs.append({"id": f"b{g:06d}-{name}", "text": f(text)})
    order = list(range(len(docs)))
    rng.shuffle(order)
elif kind == "headlines":
    docs = [{"id": f"h{i:05d}", "text": t} for i, t in enumerate(originals)]
    order = list(range(len(docs)))
else:
    for g, text in enumerate(originals):
        docs.append({"id": f"o{g:04d}", "text": text, "kind": "original"})
        for name, f in rng.sample(EDITS, 3):
            docs.append({"id": f"o{g:04d}-{name}", "text": f(text), "kind": name})
    order = list(range(len(docs)))
    rng.shuffle(order)
with open(f"{out}/eval.jsonl", "w", encoding="utf-8") as f:
    for i in order:
        f.write(json.dumps(docs[i], ensure_ascii=False) + "\n")

# datatrove's input: the same documents with the normalised text's characters separated by
# spaces (its shingles are word n-grams, so these become character n-grams), in one file per
# task (THREADS, the fifth argument)
def spaced(t):
    t = "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in t)
    return " ".join("".join(t.split()).lower())
if kind != "big":  # datatrove runs on the small sets only
    os.makedirs(f"{out}/datatrove-in", exist_ok=True)
    parts = int(sys.argv[5]) if len(sys.argv) > 5 else 2  # one per datatrove task (THREADS)
    for k in range(parts):
        with open(f"{out}/datatrove-in/part{k}.jsonl", "w", encoding="utf-8") as f:
            for i in order[k::parts]:
                f.write(json.dumps({"id": docs[i]["id"], "text": spaced(docs[i]["text"])}, ensure_ascii=False) + "\n")
print(f"{kind}: {len(originals)} originals, {len(docs)} documents", file=sys.stderr)
