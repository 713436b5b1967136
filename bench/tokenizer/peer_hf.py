#!/usr/bin/env python3
"""Hugging Face tokenizers: byte-level BPE with the same split expression as zhcorpus (read
from zhcorpus's tokenizer.json, so both split identically), the 256 byte symbols as the initial
alphabet, <|endoftext|> as a special token. A .txt input is trained with
`Tokenizer.train([files])`, as its documentation recommends (Rust reads the file, a line per
sequence, so line breaks themselves are never seen); a .jsonl input through an iterator of
whole documents, line breaks kept. usage: peer_hf.py TRAIN_TXT|TRAIN_JSONL PATTERN_FROM_JSON OUT VOCAB"""
import json, sys
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

inp, pattern_from, out, vocab = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pattern = json.load(open(pattern_from))["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(pattern), "isolated"),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=["<|endoftext|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)

if inp.endswith(".jsonl"):
    def texts():
        for line in open(inp, encoding="utf-8"):
            yield json.loads(line)["text"]
    tok.train_from_iterator(texts(), trainer=trainer)
else:
    tok.train([inp], trainer=trainer)
tok.save(out)
