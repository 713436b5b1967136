#!/usr/bin/env python3
"""sentencepiece BPE on the training sample (one sentence per line), with the settings
../shared/PEERS.md gives for Chinese: character coverage 0.9995, byte fallback, digits split,
on THREADS threads. With SENTENCES (bench/scale), a large text is trained as sentencepiece's
documentation recommends for large inputs: a random sample of that many sentences
(input_sentence_size with shuffle_input_sentence) in its large-corpus mode.
usage: peer_sentencepiece.py TRAIN_TXT OUT_PREFIX VOCAB_SIZE THREADS [SENTENCES]"""
import sys
import sentencepiece as spm

inp, prefix, vocab, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sentences = int(sys.argv[5]) if len(sys.argv) > 5 else 0
if sentences:
    sampling = dict(input_sentence_size=sentences, shuffle_input_sentence=True, max_sentence_length=1 << 16,
                    train_extremely_large_corpus=True)
else:
    sampling = dict(input_sentence_size=0, shuffle_input_sentence=False, max_sentence_length=1 << 20,
                    train_extremely_large_corpus=False)
spm.SentencePieceTrainer.train(
    input=inp, model_prefix=prefix, vocab_size=vocab, model_type="bpe",
    character_coverage=0.9995, byte_fallback=True, split_digits=True, num_threads=threads,
    minloglevel=2, **sampling)
