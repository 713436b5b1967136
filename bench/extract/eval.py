#!/usr/bin/env python3
"""Scores zhcorpus, trafilatura and a keep-all-visible-text baseline on cwced-dev.

Metric: precision, recall and F1 over multisets of character bigrams after removing all
whitespace (the ground truth keeps the pages' hard line wraps), per page, then averaged
over pages (macro). Timing: pages/s over all pages, each tool in one process.
"""
import collections, json, os, subprocess, sys, time
from importlib.metadata import version

import lxml.html
import trafilatura

zhcorpus, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
cw = os.path.join(data, "cwced-dev")
truth = json.load(open(os.path.join(cw, "ground_truth.json"), encoding="utf-8"))
ids = sorted(truth)
pages = {i: open(os.path.join(cw, "original", i + ".html"), "rb").read() for i in ids}


def bigrams(text):
    s = "".join(text.split())
    return collections.Counter(s[k:k + 2] for k in range(len(s) - 1))


def score(pred, gold):
    p, g = bigrams(pred or ""), bigrams(gold)
    hit = sum((p & g).values())
    prec = hit / sum(p.values()) if p else 0.0
    rec = hit / sum(g.values()) if g else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1


def run_zhcorpus(paths, threads=None):
    env = dict(os.environ, **({"RAYON_NUM_THREADS": str(threads)} if threads else {}))
    start = time.perf_counter()
    res = subprocess.run([zhcorpus, "extract", *paths], capture_output=True, check=True, env=env)
    secs = time.perf_counter() - start
    lines = [json.loads(l) for l in res.stdout.decode().splitlines()]
    return lines, secs


def baseline(raw):
    try:
        tree = lxml.html.fromstring(raw)
    except Exception:
        return ""
    for bad in tree.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    return tree.text_content()


paths = [os.path.join(cw, "original", i + ".html") for i in ids]
# timed on the page list five times over in one process (31 pages alone take less time than
# starting the process), best of three runs, on all cores and on one
REPEAT = 5
zh_lines = run_zhcorpus(paths)[0]
zh_secs = min(run_zhcorpus(paths * REPEAT)[1] for _ in range(3)) / REPEAT
zh1_secs = min(run_zhcorpus(paths * REPEAT, threads=1)[1] for _ in range(3)) / REPEAT
zh = {i: l for i, l in zip(ids, zh_lines)}

tools = {}
trafilatura.extract(pages[ids[0]])  # warm-up: its first call loads its models, untimed
t0 = time.perf_counter()
tools["trafilatura (raw bytes)"] = {i: trafilatura.extract(pages[i], target_language=None) for i in ids}
traf_secs = time.perf_counter() - t0
# trafilatura given text decoded with the charset zhcorpus chose
decoded = {i: pages[i].decode(zh[i]["charset"]["name"], errors="replace") for i in ids}
t0 = time.perf_counter()
tools["trafilatura (decoded)"] = {i: trafilatura.extract(decoded[i]) for i in ids}
traf_dec_secs = time.perf_counter() - t0
t0 = time.perf_counter()
tools["all visible text"] = {i: baseline(decoded[i]) for i in ids}
base_secs = time.perf_counter() - t0
tools = {"zhcorpus": {i: zh[i]["text"] for i in ids}, **tools}
secs = {"zhcorpus": zh_secs, "zhcorpus (1 thread)": zh1_secs, "trafilatura (raw bytes)": traf_secs,
        "trafilatura (decoded)": traf_dec_secs, "all visible text": base_secs}

rows, per_page = {}, collections.defaultdict(dict)
for name, preds in tools.items():
    s = [score(preds[i], truth[i]["articleBody"]) for i in ids]
    for i, x in zip(ids, s):
        per_page[i][name] = x[2]
    rows[name] = [sum(v[k] for v in s) / len(s) for k in range(3)]

print(f"cwced-dev: {len(ids)} pages; trafilatura {version('trafilatura')}")
print(f"{'tool':<26} {'P':>6} {'R':>6} {'F1':>6} {'pages/s':>9}")
for name, (p, r, f) in rows.items():
    print(f"{name:<26} {p:>6.3f} {r:>6.3f} {f:>6.3f} {len(ids) / secs[name]:>9.1f}")
    if name == "zhcorpus":
        print(f"{'zhcorpus (1 thread)':<26} {'':>6} {'':>6} {'':>6} {len(ids) / zh1_secs:>9.1f}")
zf = rows["zhcorpus"][2]
t = secs["trafilatura (raw bytes)"]
print(f"zhcorpus / trafilatura (raw): F1 {zf - rows['trafilatura (raw bytes)'][2]:+.3f}, "
      f"speed {t / zh_secs:.1f}x ({os.cpu_count()} cores), {t / zh1_secs:.1f}x on one thread")

with open(os.path.join(out, "per_page.tsv"), "w") as f:
    names = list(tools)
    f.write("page\t" + "\t".join(names) + "\n")
    for i in ids:
        f.write(i + "\t" + "\t".join(f"{per_page[i][n]:.3f}" for n in names) + "\n")
worst = sorted(ids, key=lambda i: per_page[i]["zhcorpus"])[:5]
print("lowest zhcorpus F1:", ", ".join(f"{i[:8]} {per_page[i]['zhcorpus']:.2f}" for i in worst))

dates = [(zh[i].get("published"), open(os.path.join(cw, "date", i + ".txt")).read().strip()) for i in ids]
known = [(p, g) for p, g in dates if g != "UNKNOWN"]
day = sum(1 for p, g in known if p and p[:10] == g[:10].replace("/", "-"))
print(f"dates: {day}/{len(known)} pages with a known date got the right day")

# gne-news-pages: no ground truth; report short outputs and charset decisions
gne = os.path.join(data, "gne-news-pages")
gpaths = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(gne) for f in fs if f.endswith(".html"))
glines, gsecs = run_zhcorpus(gpaths)
charsets = collections.Counter((l["charset"]["name"], l["charset"]["source"], l["charset"]["declared"]) for l in glines)
short = [(os.path.relpath(p, gne), len(l["text"])) for p, l in zip(gpaths, glines) if len(l["text"]) < 200]
images = sum(len(l["images"]) for l in glines)
captioned = sum(1 for l in glines for im in l["images"] if im["alt"] or im["caption"])
print(f"gne-news-pages: {len(gpaths)} pages, {len(gpaths) / gsecs:.1f} pages/s")
print("  charset decisions:", "; ".join(f"{n} by {s} (declared {d}): {c}" for (n, s, d), c in charsets.most_common()))
print(f"  text under 200 characters: {len(short)}", ", ".join(f"{p} ({n})" for p, n in short))
print(f"  image candidates: {images}, with alt text or caption: {captioned}")
