"""The peer: datatrove's Gopher repetition, Gopher quality, C4 and FineWeb quality filters, in
that order, on the same JSONL, Chinese word tokenizer (spaCy with jieba), one task. With its
defaults Gopher quality drops every Chinese document (average word length under 3, no English
stop words), so its word-length and stop-word rules are set for Chinese. Writes the
kept documents and prints, as JSON, how many each filter dropped per genre.

usage: peer_datatrove.py INPUT.jsonl WORK_DIR
"""
import json, os, sys
from collections import Counter, defaultdict

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

inp, work = sys.argv[1], sys.argv[2]
LANG = "cmn_Hani"


def excl(name):
    return JsonlWriter(f"{work}/excluded/{name}", compression=None)


if __name__ == "__main__":
    pipeline = [
        JsonlReader(os.path.dirname(os.path.abspath(inp)), glob_pattern=os.path.basename(inp),
                    default_metadata={}),
        GopherRepetitionFilter(language=LANG, exclusion_writer=excl("gopher_repetition")),
        # adapted to Chinese as FineWeb-2 adapts it per language: Chinese words average under
        # two characters, and the default stop words are English ones
        GopherQualityFilter(language=LANG, min_avg_word_length=1, max_avg_word_length=10,
                            min_stop_words=None, exclusion_writer=excl("gopher_quality")),
        C4QualityFilter(language=LANG, exclusion_writer=excl("c4")),
        FineWebQualityFilter(language=LANG, exclusion_writer=excl("fineweb")),
        JsonlWriter(f"{work}/kept", compression=None),
    ]
    LocalPipelineExecutor(pipeline=pipeline, tasks=1, workers=1, logging_dir=f"{work}/logs").run()
    per = defaultdict(Counter)
    for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb"):
        d = f"{work}/excluded/{name}"
        for fn in os.listdir(d) if os.path.isdir(d) else []:
            for l in open(os.path.join(d, fn), encoding="utf-8"):
                per[json.loads(l)["metadata"].get("source", "?")][name] += 1
    kept = Counter()
    for fn in os.listdir(f"{work}/kept") if os.path.isdir(f"{work}/kept") else []:
        for l in open(os.path.join(f"{work}/kept", fn), encoding="utf-8"):
            kept[json.loads(l)["metadata"].get("source", "?")] += 1
    json.dump({"dropped": per, "kept": kept}, open(f"{work}/summary.json", "w"))
