#!/usr/bin/env python3
"""sentencepiece BPE on a large text (one sentence per line), as its documentation recommends
for large inputs: a random sample of 10 million sentences (input_sentence_size with
shuffle_input_sentence), with the settings ../shared/PEERS.md gives for Chinese (character
coverage 0.9995, byte fallback, digits split), on THREADS threads.
usage: peer_sentencepiece.py TRAIN_TXT OUT_PREFIX VOCAB_SIZE THREADS"""
import sys
import sentencepiece as spm

inp, prefix, vocab, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
spm.SentencePieceTrainer.train(
    input=inp, model_prefix=prefix, vocab_size=vocab, model_type="bpe",
    character_coverage=0.9995, byte_fallback=True, split_digits=True, num_threads=threads,
    input_sentence_size=10_000_000, shuffle_input_sentence=True, max_sentence_length=1 << 16,
    train_extremely_large_corpus=True, minloglevel=2)
