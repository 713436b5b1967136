#!/usr/bin/env python3
"""Characters per token on the held-out documents of each genre, for each tokenizer; and
whether Hugging Face tokenizers, loading zhcorpus's tokenizer.json, gives the very ids zhcorpus
wrote into its shards.
usage: eval.py HELDOUT_JSONL OUT_JSON NAME=tokenizer.json|model ... [--check-shards DIR]"""
import json, struct, sys
from collections import defaultdict

args = sys.argv[1:]
check = None
if "--check-shards" in args:
    i = args.index("--check-shards")
    check = args[i + 1]
    args = args[:i] + args[i + 2:]
heldout, out, tools = args[0], args[1], [a.split("=", 1) for a in args[2:]]
docs = [json.loads(l) for l in open(heldout, encoding="utf-8")]

def load(path):
    if path.endswith(".model"):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=path)
        return lambda texts: sp.encode(texts)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(path)
    return lambda texts: [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]

result = {}
for name, path in tools:
    enc = load(path)
    ids = enc([d["text"] for d in docs])
    chars, tokens = defaultdict(int), defaultdict(int)
    for d, t in zip(docs, ids):
        chars[d["source"]] += len(d["text"])
        tokens[d["source"]] += len(t)
    per = {g: chars[g] / tokens[g] for g in chars}
    per["all"] = sum(chars.values()) / sum(tokens.values())
    result[name] = per
    if check and name == "zhcorpus":
        # the shards: <|endoftext|> then each document's ids, documents in input order
        manifest = json.load(open(f"{check}/manifest.json"))
        eot = manifest["end_of_text"]
        stream = []
        for s in manifest["shards"]:
            raw = open(f"{check}/{s['file']}", "rb").read()
            n = struct.unpack("<i", raw[8:12])[0]
            fmt = "<%dH" % n if manifest["dtype"] == "u16" else "<%dI" % n
            stream.extend(struct.unpack(fmt, raw[1024:1024 + n * (2 if manifest["dtype"] == "u16" else 4)]))
        expected = []
        for t in ids:
            expected.append(eot)
            expected.extend(t)
        same = stream == expected
        diff = next((i for i, (a, b) in enumerate(zip(stream, expected)) if a != b), None)
        result["identical_ids"] = {"same": same, "tokens": len(stream), "first_difference": diff}
json.dump(result, open(out, "w"), indent=1)
print(json.dumps(result, indent=1))
