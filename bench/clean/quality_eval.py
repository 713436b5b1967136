"""Judges the labelled quality set (make_quality_set.py) with zhcorpus clean, through the store as a
user would (import, clean --db), and reports on both parts, `dev` (tuned on) and `heldout`
(never tuned on):

1. what the rules keep per genre, and the first failing rule;
2. per rule, the share of each genre the rule alone would remove: false removals on good
   prose, true removals on junk (every rule's value is in the verdict's details);
3. the quality classifier trained on the dev part (good text, whole and cut to the junk's
   lengths, against junk):
   held-out ROC AUC overall and per junk kind, and what rules plus classifier keep per genre
   at the default threshold.

usage: quality_eval.py ZHCORPUS SET.jsonl OUT_DIR [--markdown]
Prints the tables; writes OUT_DIR/quality_eval.json with every figure.
"""
import collections, json, os, sqlite3, subprocess, sys

zhcorpus, set_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
docs = {}
for l in open(set_path, encoding="utf-8"):
    d = json.loads(l)
    docs[d["id"]] = d
GOOD = ["news_joined", "news_paragraphs", "encyclopedia", "technical", "good_short"]
JUNK = ["boilerplate", "link_list", "keyword_spam", "garbled", "word_salad", "product_list", "number_table", "headline"]
PARTS = ["dev", "heldout"]


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


# settings to try (a TOML file), on the clean runs; none: the defaults
CLEAN = ["--config", os.environ["CLEAN_CONFIG"]] if os.environ.get("CLEAN_CONFIG") else []


db = os.path.join(out, "quality.db")
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(db + suffix):
        os.remove(db + suffix)
sh(zhcorpus, "import", "--quiet", "--db", db, "--input", set_path)
config = subprocess.run([zhcorpus, "clean", "--db", db, "--print-config", *CLEAN], check=True, capture_output=True, text=True).stdout


def thresholds():
    """Each rule's threshold and direction, from the settings the clean run prints."""
    import tomllib
    rules = tomllib.loads(config)["rules"]
    return {
        "han_ratio": (rules["min_han_ratio"], True),
        "kana_hangul_ratio": (rules["max_kana_hangul_ratio"], False),
        "min_chars": (rules["min_chars"], True),
        "max_chars": (rules["max_chars"], False),
        "avg_line_chars": (rules["min_avg_line_chars"], True),
        "short_line_ratio": (rules["max_short_line_ratio"], False),
        "dup_line_ratio": (rules["max_dup_line_ratio"], False),
        "dup_line_char_ratio": (rules["max_dup_line_char_ratio"], False),
        "dup_ngram_char_ratio": (rules["max_dup_ngram_char_ratio"], False),
        "terminal_punct_ratio": (rules["min_terminal_punct_ratio"], True),
        "symbol_ratio": (rules["max_symbol_ratio"], False),
        "digit_ratio": (rules["max_digit_ratio"], False),
        "bad_words_per_line": (rules["max_bad_words_per_line"], False),
    }


def verdicts():
    con = sqlite3.connect(db)
    rows = con.execute("SELECT d.id, v.keep, v.rule, v.score, v.details FROM clean_verdicts v "
                       "JOIN documents d ON d.seq = v.doc").fetchall()
    con.close()
    return {i: {"keep": k, "rule": r, "score": s, "details": json.loads(det) if det else {}} for i, k, r, s, det in rows}


def genres_present(names):
    return [g for g in names if any(d["genre"] == g for d in docs.values())]


def kept_table(v, title):
    res = {}
    print(title)
    print(f"  {'genre':<16} {'dev: n':>7} {'kept':>7} {'heldout: n':>11} {'kept':>7}  first failing rule (heldout)")
    for g in genres_present(GOOD) + genres_present(JUNK):
        row = {}
        for p in PARTS:
            ids = [i for i, d in docs.items() if d["genre"] == g and d["part"] == p]
            kept = sum(v[i]["keep"] for i in ids)
            row[p] = {"n": len(ids), "kept": kept / len(ids) if ids else 0.0,
                      "rules": collections.Counter(v[i]["rule"] for i in ids if not v[i]["keep"])}
        res[g] = row
        why = ", ".join(f"{r} {c}" for r, c in row["heldout"]["rules"].most_common(4))
        print(f"  {g:<16} {row['dev']['n']:>7} {row['dev']['kept']:>7.1%} {row['heldout']['n']:>11} "
              f"{row['heldout']['kept']:>7.1%}  {why}")
    return res


def rule_table(v):
    th = thresholds()
    res = {}
    print("each rule alone: share of each genre it would remove, dev / heldout "
          "(good genres: false removals; junk: true removals)")
    cols = genres_present(GOOD) + genres_present(JUNK)
    print("  " + f"{'rule':<21}" + "".join(f"{g[:12]:>14}" for g in cols))
    for rule, (t, at_least) in th.items():
        line = f"  {rule:<21}"
        res[rule] = {}
        for g in cols:
            shares = []
            for p in PARTS:
                ids = [i for i, d in docs.items() if d["genre"] == g and d["part"] == p]
                fails = 0
                for i in ids:
                    val = v[i]["details"].get("rules", {}).get(rule)
                    if val is not None and (val < t if at_least else val > t):
                        fails += 1
                shares.append(fails / len(ids) if ids else 0.0)
            res[rule][g] = dict(zip(PARTS, shares))
            line += f"{shares[0] * 100:>7.0f}/{shares[1] * 100:<5.0f}" + " "
        print(line)
    return res


def auc(pos, neg):
    """ROC AUC by ranks (ties count half)."""
    allv = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    ranks, i = {}, 0
    rank_sum = 0.0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        r = (i + j + 1) / 2
        rank_sum += r * sum(1 for k in range(i, j) if allv[k][1] == 1)
        i = j
    n1, n0 = len(pos), len(neg)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0) if n1 and n0 else float("nan")


report = {}
sh(zhcorpus, "clean", "--quiet", "--db", db, *CLEAN)
v = verdicts()
report["rules_kept"] = kept_table(v, "rules alone (zhcorpus clean, defaults):")
print()
report["rule_removals"] = rule_table(v)
print()

# the classifier: trained on the dev part only, length-matched good text against junk
pos = os.path.join(out, "q_pos.jsonl")
neg = os.path.join(out, "q_neg.jsonl")
with open(pos, "w", encoding="utf-8") as fp, open(neg, "w", encoding="utf-8") as fn:
    for i, d in docs.items():
        if d["part"] != "dev":
            continue
        # good text whole (each article in both its forms) and cut to the junk's lengths
        if d["label"] == 1:
            fp.write(json.dumps({"id": i, "text": d["text"]}, ensure_ascii=False) + "\n")
        elif d["label"] == 0:
            fn.write(json.dumps({"id": i, "text": d["text"]}, ensure_ascii=False) + "\n")
model = os.path.join(out, "quality.bin")
sh(zhcorpus, "quality", "train", "--quiet", "--positive", pos, "--negative", neg, "--output", model, "--holdout", "0")
sh(zhcorpus, "clean", "--quiet", "--db", db, "--quality-model", model, *CLEAN)
v = verdicts()
print("quality classifier trained on the dev part (good text, whole and length-matched, against every junk kind), scored on heldout:")
cls = {}
for p in PARTS:
    good = [v[i]["score"] for i, d in docs.items() if d["part"] == p and d["genre"] == "good_short"]
    bad = [v[i]["score"] for i, d in docs.items() if d["part"] == p and d["label"] == 0]
    cls[p] = {"auc": auc(good, bad), "per_kind": {}}
    for g in genres_present(JUNK):
        kb = [v[i]["score"] for i, d in docs.items() if d["part"] == p and d["genre"] == g]
        cls[p]["per_kind"][g] = auc(good, kb)
print(f"  AUC, length-matched good text against all junk: dev {cls['dev']['auc']:.3f} (trained on), "
      f"heldout {cls['heldout']['auc']:.3f}")
print("  heldout AUC per junk kind: " + ", ".join(f"{g} {a:.3f}" for g, a in cls["heldout"]["per_kind"].items()))
report["classifier"] = cls
print()
import tomllib  # noqa: E402
threshold = tomllib.loads(config)["quality_threshold"]
report["rules_and_classifier_kept"] = kept_table(v, f"rules and classifier (default threshold {threshold}):")
json.dump(report, open(os.path.join(out, "quality_eval.json"), "w"), indent=1, default=dict)


def tune():
    """How the default threshold was chosen, on the dev part only: dev split in two halves by
    the item each document came from, the classifier trained on one half and every threshold
    measured on the other (full good documents kept, junk removed after the rules)."""
    import hashlib
    half = lambda d: int(hashlib.sha1(d["origin"].encode()).hexdigest()[:8], 16) % 2
    dev = {i: d for i, d in docs.items() if d["part"] == "dev"}
    with open(pos, "w", encoding="utf-8") as fp, open(neg, "w", encoding="utf-8") as fn:
        for i, d in dev.items():
            if half(d) == 0 and d["label"] == 1:
                fp.write(json.dumps({"id": i, "text": d["text"]}, ensure_ascii=False) + "\n")
            elif half(d) == 0 and d["label"] == 0:
                fn.write(json.dumps({"id": i, "text": d["text"]}, ensure_ascii=False) + "\n")
    extra = ["--config", os.environ["QUALITY_CONFIG"]] if os.environ.get("QUALITY_CONFIG") else []
    sh(zhcorpus, "quality", "train", "--quiet", "--positive", pos, "--negative", neg, "--output", model, "--holdout", "0", *extra)
    sh(zhcorpus, "clean", "--quiet", "--db", db, "--quality-model", model, "--quality-threshold", "0", *CLEAN)
    v = verdicts()
    print("threshold tuning on dev: trained on one half, measured on the other")
    print("  " + f"{'threshold':>9}" + "".join(f"{g[:12]:>14}" for g in GOOD[:4] + JUNK))
    for t in (0.5, 0.4, 0.3, 0.2, 0.1, 0.05):
        row = f"  {t:>9}"
        for g in GOOD[:4] + JUNK:
            ids = [i for i, d in dev.items() if half(d) == 1 and d["genre"] == g]
            kept = sum(1 for i in ids if v[i]["keep"] and v[i]["score"] >= t)
            row += f"{kept / len(ids) if ids else 0:>14.1%}"
        print(row)


if "--tune" in sys.argv:
    tune()
