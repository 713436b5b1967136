#!/usr/bin/env bash
# Cleaning benchmark: zhcorpus clean against two datatrove configurations (throwaway venv; Chinese
# words by spaCy with jieba; one task each) on the same real Chinese text in one run: "adapted",
# datatrove's Gopher repetition, Gopher quality, C4 and FineWeb quality filters at their defaults
# with Gopher quality's word-length and stop-word rules relaxed for Chinese, and "fineweb2", the
# filters, thresholds and stop words FineWeb-2 uses for Mandarin Chinese (cmn_Hani) with its final
# touches (peer_datatrove.py says where each value comes from). Documents/s, MB/s, the share each
# keeps, and the rejection table per genre. Then the labelled quality set (good prose against web
# junk, a dev part and a part kept aside): what the rules and the classifier keep per genre and
# what each rule removes (quality_eval.py), and the traditional-to-simplified conversion against
# OpenCC on Tang poems.
#   bench/clean/run.sh [DATA_DIR]        (default ../shared/data beside the repository)
source "$(dirname "$0")/../common.sh"
[ -d "$data/text" ] || { echo "no text folder at $data/text (pass the data folder)" >&2; exit 2; }
out="$root/bench/out/clean"
rm -rf "$out"
mkdir -p "$out"
venv clean datatrove==0.10.1 spacy==3.8.18 jieba==0.42.1 orjson==3.13.0 regex==2026.11.19 tokenizers==0.23.3 \
    xxhash==4.1.0 opencc-python-reimplemented==0.1.7 lxml==6.1.3 cssselect==1.6.0 ftfy==6.3.1

python3 bench/clean/make_set.py "$data/text" "$out" > "$out/genres.json"
python3 bench/measure.py -- "$z" clean --quiet --input "$out/all.jsonl" --output "$out/zhcorpus.kept.jsonl" \
    --rejected "$out/zhcorpus.rejected.jsonl" > "$out/zhcorpus.json"
python3 bench/measure.py -- env RAYON_NUM_THREADS=1 "$z" clean --quiet --input "$out/all.jsonl" \
    --output "$out/zhcorpus1.kept.jsonl" > "$out/zhcorpus1.json"
python3 bench/measure.py -- "$venv/bin/python" bench/clean/peer_datatrove.py --profile adapted \
    "$out/all.jsonl" "$out/datatrove" > "$out/datatrove.json"
python3 bench/measure.py -- "$venv/bin/python" bench/clean/peer_datatrove.py --profile fineweb2 \
    "$out/all.jsonl" "$out/datatrove-fineweb2" > "$out/datatrove-fineweb2.json"
"$venv/bin/python" bench/clean/make_quality_set.py "$data" "$out" > "$out/quality_set.json"
python3 bench/clean/quality_eval.py "$z" "$out/quality_set.jsonl" "$out" > "$out/quality_eval.txt"

# traditional to simplified: every rule off, conversion on
cat > "$out/convert-only.toml" <<'TOML'
to_simplified = true
mask_pii = false
drop_recurring_lines = false
drop_phrase_lines = false
default_bad_words = false
[rules]
min_chars = 0
min_han_ratio = 0.0
max_kana_hangul_ratio = 1.0
min_avg_line_chars = 0.0
max_short_line_ratio = 1.0
max_dup_line_ratio = 1.0
max_dup_line_char_ratio = 1.0
max_dup_ngram_char_ratio = 1.0
min_terminal_punct_ratio = 0.0
max_symbol_ratio = 1.0
max_digit_ratio = 1.0
TOML
python3 bench/measure.py -- "$z" clean --quiet --config "$out/convert-only.toml" --input "$out/tang.jsonl" \
    --output "$out/tang.zhcorpus.jsonl" > "$out/t2s.json"
"$venv/bin/python" - "$out" <<'PY'
import json, sys, time
from opencc import OpenCC
out = sys.argv[1]
cc = OpenCC("t2s")
src = [json.loads(l)["text"] for l in open(f"{out}/tang.jsonl", encoding="utf-8")]
start = time.perf_counter()
ref = [cc.convert(t) for t in src]
secs = time.perf_counter() - start
ours = [json.loads(l)["text"] for l in open(f"{out}/tang.zhcorpus.jsonl", encoding="utf-8")]
# normalisation folds whitespace per line; compare characters that are not blanks
strip = lambda s: [c for c in s if not c.isspace()]
same = total = changed_src = 0
for s, r, o in zip(src, ref, ours):
    r, o, s = strip(r), strip(o), strip(s)
    if len(r) != len(o):
        continue
    total += len(r)
    same += sum(a == b for a, b in zip(r, o))
    changed_src += sum(a != b for a, b in zip(s, r))
json.dump({"chars": total, "agree": same, "opencc_changed": changed_src, "opencc_s": secs,
           "poems": len(src)}, open(f"{out}/t2s.cmp.json", "w"))
PY

python3 - "$out" "$("$venv/bin/pip" show datatrove | grep ^Version | cut -d' ' -f2)" <<'PY'
import json, os, sys
from collections import Counter, defaultdict
out, version = sys.argv[1], sys.argv[2]
threads = int(os.environ["THREADS"])
docs = [json.loads(l) for l in open(f"{out}/all.jsonl", encoding="utf-8")]
mb = sum(len(d["text"].encode()) for d in docs) / 2**20
by_genre = Counter(d["source"] for d in docs)
m = {k: json.load(open(f"{out}/{k}.json")) for k in ("zhcorpus", "zhcorpus1", "datatrove", "datatrove-fineweb2")}
z_kept = Counter(json.loads(l)["source"] for l in open(f"{out}/zhcorpus.kept.jsonl", encoding="utf-8"))
z_rules = defaultdict(Counter)
for l in open(f"{out}/zhcorpus.rejected.jsonl", encoding="utf-8"):
    d = json.loads(l)
    z_rules[d["source"]][d["clean"]["rule"]] += 1
dt = json.load(open(f"{out}/datatrove/summary.json"))
fw = json.load(open(f"{out}/datatrove-fineweb2/summary.json"))
n = len(docs)
print(f"{n} documents, {mb:.1f} MB of real Chinese text in {len(by_genre)} genres; datatrove {version}")
print(f"{'tool':<34} {'docs/s':>8} {'MB/s':>7} {'kept':>7} {'peak RSS MiB':>13}")
for name, key, kept in ((f"zhcorpus ({threads} threads)", "zhcorpus", sum(z_kept.values())),
                        ("zhcorpus (1 thread)", "zhcorpus1", sum(z_kept.values())),
                        ("datatrove adapted (1 task)", "datatrove", sum(dt["kept"].values())),
                        ("datatrove fineweb2 cmn_Hani (1 task)", "datatrove-fineweb2", sum(fw["kept"].values()))):
    w = m[key]["wall_s"]
    print(f"{name:<34} {n / w:>8,.0f} {mb / w:>7.2f} {kept / n:>7.1%} {m[key]['peak_rss_mib']:>13.1f}")
print(f"ratio per core: zhcorpus {m['datatrove']['wall_s'] / m['zhcorpus1']['wall_s']:.0f}x datatrove's documents/s "
      f"(both on one core; the four datatrove filters against every zhcorpus rule, normalisation, line cleanup and PII masking)")
print(f"ratio: datatrove fineweb2 cmn_Hani: {m['datatrove-fineweb2']['wall_s'] / m['zhcorpus1']['wall_s']:.0f}x its documents/s "
      f"per core (both on one core; FineWeb-2's Chinese filters, thresholds and final touches, FTFY and PII, "
      f"against every zhcorpus rule, normalisation, line cleanup and PII masking)")
print()
print("rejections per genre, zhcorpus (first failing rule):")
for g in by_genre:
    rules = ", ".join(f"{r} {c}" for r, c in z_rules[g].most_common())
    print(f"  {g:<17} {by_genre[g]:>6} docs, kept {z_kept[g] / by_genre[g]:>6.1%}  {rules}")
print("rejections per genre, datatrove adapted (filter that dropped it):")
for g in by_genre:
    drops = ", ".join(f"{r} {c}" for r, c in Counter(dt["dropped"].get(g, {})).most_common())
    print(f"  {g:<17} {by_genre[g]:>6} docs, kept {dt['kept'].get(g, 0) / by_genre[g]:>6.1%}  {drops}")
print("rejections per genre, datatrove fineweb2 cmn_Hani (filter that dropped it: its rules):")
for g in by_genre:
    drops = ", ".join(f"{r} {c}" for r, c in Counter(fw["dropped"].get(g, {})).most_common())
    rules = ", ".join(f"{r} {c}" for r, c in Counter(fw["reasons"].get(g, {})).most_common())
    print(f"  {g:<17} {by_genre[g]:>6} docs, kept {fw['kept'].get(g, 0) / by_genre[g]:>6.1%}  {drops}"
          + (f" ({rules})" if rules else ""))
print()
c = json.load(open(f"{out}/t2s.cmp.json"))
t = json.load(open(f"{out}/t2s.json"))
print(f"traditional to simplified on {c['poems']} Tang poems: zhcorpus (zhconv) agrees with OpenCC t2s on "
      f"{c['agree'] / c['chars']:.2%} of {c['chars']:,} characters (OpenCC changed {c['opencc_changed']:,}); "
      f"zhcorpus {t['wall_s']:.2f} s, OpenCC (Python) {c['opencc_s']:.2f} s")
PY
echo
echo "labelled quality set (bench/clean/make_quality_set.py): dev part tuned on, heldout part never"
cat "$out/quality_eval.txt"
