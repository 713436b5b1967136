"""The peer: datatrove's filters on the same JSONL, Chinese word tokenizer (spaCy with jieba, what
datatrove picks for cmn_Hani), one task. Two profiles:

  adapted   Gopher repetition, Gopher quality, C4 and FineWeb quality filters, in that order, at
            datatrove's (English) defaults, except that Gopher quality's word-length and stop-word
            rules are relaxed: with its defaults it drops every Chinese document (average word
            length under 3, no English stop words). Keeps almost nothing: the repetition rules
            fire on jieba segmentations and C4 wants sentences of three words per line.
  fineweb2  What FineWeb-2 runs on Mandarin Chinese (cmn_Hani): its per-language filtering step
            (Gopher repetition, FineWeb quality, Gopher quality, no C4) with the thresholds and
            stop words of its configs/cmn_Hani.yml, then its final touches (FTFY, PII, table
            symbol lines). The Chinese-tuned peer.

Writes the kept documents and WORK_DIR/summary.json: per genre (`source`), how many each filter
dropped, how many each of its rules (datatrove's filter_reason) dropped, and how many were kept.

usage: peer_datatrove.py [--profile adapted|fineweb2] INPUT.jsonl WORK_DIR
"""
import argparse, json, os
from collections import Counter, defaultdict

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)
from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter, SymbolLinesFormatter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

LANG = "cmn_Hani"

# FineWeb-2's settings for cmn_Hani, copied from github.com/huggingface/fineweb-2 (commit d0defb2,
# 2025-10-27): configs/cmn_Hani.yml holds the per-language values, fineweb-2-pipeline.py (step 5,
# "language specific filtering pipeline") the values that are the same for every language.
FW2_CMN_HANI = {
    # configs/cmn_Hani.yml
    "dup_line_frac": 0.287,
    "top_n_grams": ((2, 0.256), (3, 0.201), (4, 0.171)),
    "dup_n_grams": ((5, 0.198), (6, 0.182), (7, 0.167), (8, 0.154), (9, 0.14), (10, 0.127)),
    "line_punct_thr": 0.106,
    "new_line_ratio": 0.178,
    "min_avg_word_length": 1,
    "max_avg_word_length": 5,
    "max_non_alpha_words_ratio": 0.735,
    "stopwords": ["的", "年", "在", "月", "是", "和", "日", "了", "於", "·", "為", "有", "被", "人", "中",
                  "为", "他", "與", "後", "也", "而", "由"],
    # configs/cmn_Hani.yml also sets language_score 0.692, the minimum GlotLID confidence of
    # FineWeb-2's language filter (its step 3). Not applied here: GlotLID's model would have to be
    # downloaded, and every benchmark document is Chinese by construction. MinHash deduplication
    # (its step 4) is left out too: `zhcorpus clean` does not deduplicate either.
}


def excl(work, name):
    return JsonlWriter(f"{work}/excluded/{name}", compression=None)


def adapted(work):
    return [
        ("gopher_repetition", GopherRepetitionFilter(language=LANG, exclusion_writer=excl(work, "gopher_repetition"))),
        # Chinese words average under two characters, and the default stop words are English ones
        ("gopher_quality", GopherQualityFilter(language=LANG, min_avg_word_length=1, max_avg_word_length=10,
                                               min_stop_words=None, exclusion_writer=excl(work, "gopher_quality"))),
        ("c4", C4QualityFilter(language=LANG, exclusion_writer=excl(work, "c4"))),
        ("fineweb", FineWebQualityFilter(language=LANG, exclusion_writer=excl(work, "fineweb"))),
    ], []


def fineweb2(work):
    c = FW2_CMN_HANI
    return [
        # fineweb-2-pipeline.py: the paragraph rules and the duplicate-line character share are
        # disabled for every language (trafilatura keeps no paragraphs; FineWeb quality's
        # char_duplicates_ratio takes the place of dup_line_char_frac); the rest from cmn_Hani.yml.
        # Every other argument is datatrove's default, as in FineWeb-2.
        ("gopher_repetition", GopherRepetitionFilter(
            language=LANG, dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
            dup_line_frac=c["dup_line_frac"], top_n_grams=c["top_n_grams"], dup_n_grams=c["dup_n_grams"],
            exclusion_writer=excl(work, "gopher_repetition"))),
        # fineweb-2-pipeline.py: short_line_thr=999 (the short-line rule off) and
        # char_duplicates_ratio=0.1 (0.01 in FineWeb English) for every language; line_punct_thr
        # and new_line_ratio from cmn_Hani.yml. Terminal punctuation is datatrove's list, which
        # holds the Chinese full stops, question and exclamation marks.
        ("fineweb", FineWebQualityFilter(
            language=LANG, short_line_thr=999, char_duplicates_ratio=0.1,
            line_punct_thr=c["line_punct_thr"], new_line_ratio=c["new_line_ratio"],
            exclusion_writer=excl(work, "fineweb"))),
        # fineweb-2-pipeline.py: min_stop_words=2 with cmn_Hani.yml's stop words; word lengths and
        # the alphabetic-word share from cmn_Hani.yml; min_doc_words (50), max_doc_words, the
        # symbol, bullet and ellipsis rules at datatrove's defaults, as in FineWeb-2.
        ("gopher_quality", GopherQualityFilter(
            language=LANG, min_avg_word_length=c["min_avg_word_length"],
            max_avg_word_length=c["max_avg_word_length"], stop_words=c["stopwords"],
            max_non_alpha_words_ratio=c["max_non_alpha_words_ratio"], min_stop_words=2,
            exclusion_writer=excl(work, "gopher_quality"))),
        # "we do not apply the C4 filters" (fineweb-2-pipeline.py; README: they "seemed to degrade
        # performance in this multilingual setting")
    ], [
        # fineweb-2-pipeline.py step 6, "final touches": the counterpart of zhcorpus's
        # normalisation and PII masking
        FTFYFormatter(),
        PIIFormatter(),
        SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n"),
    ]


PROFILES = {"adapted": adapted, "fineweb2": fineweb2}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=PROFILES, default="adapted")
    ap.add_argument("input")
    ap.add_argument("work")
    args = ap.parse_args()
    inp, work = args.input, args.work
    filters, after = PROFILES[args.profile](work)
    pipeline = [
        JsonlReader(os.path.dirname(os.path.abspath(inp)), glob_pattern=os.path.basename(inp),
                    default_metadata={}),
        *(f for _, f in filters),
        *after,
        JsonlWriter(f"{work}/kept", compression=None),
    ]
    LocalPipelineExecutor(pipeline=pipeline, tasks=1, workers=1, logging_dir=f"{work}/logs").run()
    per, reasons = defaultdict(Counter), defaultdict(Counter)
    for name, _ in filters:
        d = f"{work}/excluded/{name}"
        for fn in os.listdir(d) if os.path.isdir(d) else []:
            for l in open(os.path.join(d, fn), encoding="utf-8"):
                meta = json.loads(l)["metadata"]
                per[meta.get("source", "?")][name] += 1
                reasons[meta.get("source", "?")][meta.get("filter_reason", name)] += 1
    kept = Counter()
    for fn in os.listdir(f"{work}/kept") if os.path.isdir(f"{work}/kept") else []:
        for l in open(os.path.join(f"{work}/kept", fn), encoding="utf-8"):
            kept[json.loads(l)["metadata"].get("source", "?")] += 1
    json.dump({"profile": args.profile, "dropped": per, "reasons": reasons, "kept": kept}, open(f"{work}/summary.json", "w"))
