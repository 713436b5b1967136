#!/usr/bin/env python3
"""Loads zhcorpus's exported Hugging Face folder with transformers' Auto classes and continues
a prompt greedily; prints whether the continuation equals zhcorpus's own greedy sample.
usage: check_hf.py HF_DIR PROMPT TOKENS ZHCORPUS_OUTPUT"""
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

path, prompt, n, theirs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
ids = [tok.convert_tokens_to_ids("<|endoftext|>")] + tok.encode(prompt, add_special_tokens=False)
# greedy decoding by hand (generate() would stop at <|endoftext|>; the bench runs zhcorpus sample
# with --ignore-eot, which does not)
seq = list(ids)
with torch.no_grad():
    for _ in range(n):
        logits = model(torch.tensor([seq[-model.config.max_position_embeddings:]])).logits[0, -1]
        seq.append(int(torch.argmax(logits)))
text = prompt + tok.decode(seq[len(ids):])
print(json.dumps({"class": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters()),
                  "transformers": text, "zhcorpus": theirs, "identical": text == theirs}, ensure_ascii=False))
