#!/usr/bin/env python3
"""Encoding speed of the peers on the same texts and the same vocabulary (zhcorpus's
tokenizer.json): Hugging Face tokenizers' encode_batch, and tiktoken built from the same
ranks and split expression (its BPE merges by the rank of the merged token, so a few pieces may
split differently: the share of identical documents is reported). Reading the file is not
timed. usage: peer_encode.py TEXTS_JSONL TOKENIZER_JSON THREADS"""
import json, os, sys, time

path, tok_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.environ["RAYON_NUM_THREADS"] = str(threads)
from tokenizers import Tokenizer
import tiktoken

texts = [json.loads(l)["text"] for l in open(path, encoding="utf-8")]
mb = sum(len(t.encode()) for t in texts) / 1e6
j = json.load(open(tok_path))
hf = Tokenizer.from_file(tok_path)
t = time.perf_counter()
hf_ids = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
hf_s = time.perf_counter() - t

byte_chars = {}
n = 0
for b in range(256):
    if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255:
        byte_chars[chr(b)] = b
    else:
        byte_chars[chr(256 + n)] = b
        n += 1
specials = {t["content"]: t["id"] for t in j["added_tokens"]}
ranks = {bytes(byte_chars[c] for c in tok): i for tok, i in j["model"]["vocab"].items() if tok not in specials}
pattern = j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
enc = tiktoken.Encoding("zhcorpus", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
t = time.perf_counter()
tk_ids = enc.encode_ordinary_batch(texts, num_threads=threads)
tk_s = time.perf_counter() - t
same = sum(a == b for a, b in zip(hf_ids, tk_ids)) / len(texts)
print(json.dumps({"mb": mb, "hf_mb_s": mb / hf_s, "tiktoken_mb_s": mb / tk_s, "tiktoken_same_docs": same,
                  "hf_tokens": sum(map(len, hf_ids))}))
