#!/usr/bin/env python3
"""Scores zhcorpus, trafilatura and a keep-all-visible-text baseline on cwced-dev, on the
gne-news-pages against the hand-made truth in gne_truth.json (its dev sites and, apart, its
held-out sites), and on the generated fixtures of the extractor's known failure kinds.

Metric: precision, recall and F1 over multisets of character bigrams after removing all
whitespace (the ground truth keeps the pages' hard line wraps), per page, then averaged
over pages (macro). Timing: pages/s over all pages, each tool in one process.
"""
import collections, json, os, re, subprocess, sys, time
from importlib.metadata import version

import lxml.html
import trafilatura

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gne as gne_truth  # noqa: E402

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
# the threads of the timed all-core run: bench/common.sh exports RAYON_NUM_THREADS (THREADS)
threads = os.environ.get("RAYON_NUM_THREADS") or str(os.cpu_count())
# timed on the page list five times over in one process (31 pages alone take less time than
# starting the process), best of three runs, on all cores and on one
REPEAT = 5
zh_lines = run_zhcorpus(paths)[0]
zh_secs = min(run_zhcorpus(paths * REPEAT)[1] for _ in range(3)) / REPEAT
zh1_secs = min(run_zhcorpus(paths * REPEAT, threads=1)[1] for _ in range(3)) / REPEAT
zh = {i: l for i, l in zip(ids, zh_lines)}

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding


def resiliparse_extract(raw):
    """DCLM's extractor as its documentation gives it: charset detection, then main content."""
    return extract_plain_text(bytes_to_str(raw, detect_encoding(raw)), main_content=True)


def timed(fn, items):
    """Outputs of `fn` over `items`, and seconds per pass: the list five times over, best of
    three runs, as zhcorpus is timed (one thread: these peers run in one Python process)."""
    outs = {i: fn(x) for i, x in items.items()}
    best = min(_time_pass(fn, list(items.values()) * REPEAT) for _ in range(3))
    return outs, best / REPEAT


def _time_pass(fn, xs):
    t0 = time.perf_counter()
    for x in xs:
        fn(x)
    return time.perf_counter() - t0


tools = {}
trafilatura.extract(pages[ids[0]])  # warm-up: its first call loads its models, untimed
# the ground truth has no comments: trafilatura's documentation says to leave them out then
traf = lambda h: trafilatura.extract(h, include_comments=False, target_language=None)
tools["trafilatura (raw bytes)"], traf_secs = timed(traf, pages)
# trafilatura given text decoded with the charset zhcorpus chose
decoded = {i: pages[i].decode(zh[i]["charset"]["name"], errors="replace") for i in ids}
tools["trafilatura (decoded)"], traf_dec_secs = timed(lambda h: trafilatura.extract(h, include_comments=False), decoded)
tools["resiliparse"], resi_secs = timed(resiliparse_extract, pages)
t0 = time.perf_counter()
tools["all visible text"] = {i: baseline(decoded[i]) for i in ids}
base_secs = time.perf_counter() - t0
tools = {"zhcorpus": {i: zh[i]["text"] for i in ids}, **tools}
secs = {"zhcorpus": zh_secs, "zhcorpus (1 thread)": zh1_secs, "trafilatura (raw bytes)": traf_secs,
        "trafilatura (decoded)": traf_dec_secs, "resiliparse": resi_secs, "all visible text": base_secs}

rows, per_page = {}, collections.defaultdict(dict)
for name, preds in tools.items():
    s = [score(preds[i], truth[i]["articleBody"]) for i in ids]
    for i, x in zip(ids, s):
        per_page[i][name] = x[2]
    rows[name] = [sum(v[k] for v in s) / len(s) for k in range(3)]

print(f"cwced-dev: {len(ids)} pages; trafilatura {version('trafilatura')} (comments left out), "
      f"resiliparse {version('resiliparse')} (main_content=True); peers on one thread, zhcorpus on 1 and on {threads} threads")
print(f"{'tool':<26} {'P':>6} {'R':>6} {'F1':>6} {'pages/s':>9}")
for name, (p, r, f) in rows.items():
    print(f"{name:<26} {p:>6.3f} {r:>6.3f} {f:>6.3f} {len(ids) / secs[name]:>9.1f}")
    if name == "zhcorpus":
        print(f"{'zhcorpus (1 thread)':<26} {'':>6} {'':>6} {'':>6} {len(ids) / zh1_secs:>9.1f}")
zf = rows["zhcorpus"][2]
t = secs["trafilatura (raw bytes)"]
print(f"zhcorpus / trafilatura (raw): F1 {zf - rows['trafilatura (raw bytes)'][2]:+.3f}, "
      f"speed {t / zh_secs:.1f}x ({threads} threads), {t / zh1_secs:.1f}x on one thread")
print(f"zhcorpus / resiliparse: F1 {zf - rows['resiliparse'][2]:+.3f}, "
      f"speed {resi_secs / zh1_secs:.2f}x per core (both on one thread)")

with open(os.path.join(out, "per_page.tsv"), "w") as f:
    names = list(tools)
    f.write("page\t" + "\t".join(names) + "\n")
    for i in ids:
        f.write(i + "\t" + "\t".join(f"{per_page[i][n]:.3f}" for n in names) + "\n")
worst = sorted(ids, key=lambda i: per_page[i]["zhcorpus"])[:5]
print("lowest zhcorpus F1:", ", ".join(f"{i[:8]} {per_page[i]['zhcorpus']:.2f}" for i in worst))

def truth_date(g):
    """A cwced date file as `YYYY-MM-DD`, or `YYYY-MM` where it gives only the month (`2003-5`);
    None for `UNKNOWN`, its misspellings and empty files. Months and days are often unpadded
    (`2005-8-12`)."""
    m = re.match(r"(\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?", g)
    if not m:
        return None
    return f"{int(m[1]):04}-{int(m[2]):02}" + (f"-{int(m[3]):02}" if m[3] else "")


def read(kind, i):
    return open(os.path.join(cw, kind, i + ".txt"), encoding="utf-8").read().strip()


dates = [(zh[i].get("published"), truth_date(read("date", i))) for i in ids]
known = [(p, g) for p, g in dates if g]
day = sum(1 for p, g in known if p and p[:len(g)] == g)
print(f"dates: {day}/{len(known)} pages with a known date got the right day (the month where the truth gives only the month)")
# authors: a name of the truth file (several are space-separated) in the answer, or no answer
# where the truth is UNKNOWN
authors = [(zh[i].get("author"), read("author", i)) for i in ids]
right = sum((not p) if g == "UNKNOWN" else (bool(p) and any(n in p for n in g.split())) for p, g in authors)
print(f"authors: {right}/{len(authors)} right")

# gne-news-pages: charset decisions, and scores against the hand-made truth
gne = os.path.join(data, "gne-news-pages")
gpaths = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(gne) for f in fs if f.endswith(".html"))
glines = run_zhcorpus(gpaths)[0]
gsecs = min(run_zhcorpus(gpaths * REPEAT)[1] for _ in range(3)) / REPEAT
charsets = collections.Counter((l["charset"]["name"], l["charset"]["source"], l["charset"]["declared"]) for l in glines)
images = sum(len(l["images"]) for l in glines)
captioned = sum(1 for l in glines for im in l["images"] if im["alt"] or im["caption"])
# the speed on these pages too, timed as on cwced-dev: modern pages are three times larger
graw = [open(p, "rb").read() for p in gpaths]
g1_secs = min(run_zhcorpus(gpaths * REPEAT, threads=1)[1] for _ in range(3)) / REPEAT
gresi_secs = min(_time_pass(resiliparse_extract, graw * REPEAT) for _ in range(3)) / REPEAT
print(f"gne-news-pages: {len(gpaths)} pages ({sum(map(len, graw)) / len(graw) / 1024:.0f} KiB on average), "
      f"{len(gpaths) / gsecs:.1f} pages/s on {threads} threads; one thread: zhcorpus {len(gpaths) / g1_secs:.1f}, "
      f"resiliparse {len(gpaths) / gresi_secs:.1f} pages/s")
print("  charset decisions:", "; ".join(f"{n} by {s} (declared {d}): {c}" for (n, s, d), c in charsets.most_common()))
print(f"  image candidates: {images}, with alt text or caption: {captioned}")

gt, gpages = gne_truth.load(data)
zg = {os.path.relpath(p, gne): l for p, l in zip(gpaths, glines)}


def traf_bare(raw):
    try:
        d = trafilatura.bare_extraction(raw.decode("utf-8", errors="replace"), with_metadata=True)
    except Exception:
        return {}
    if d is None:
        return {}
    return d if isinstance(d, dict) else d.as_dict()


tb = {p: traf_bare(raw) for p, (_, raw, _) in gpages.items()}
gtools = {
    "zhcorpus": {p: (zg[p]["text"], zg[p]["title"], zg[p]["author"], zg[p]["published"]) for p in gpages},
    "trafilatura": {p: (tb[p].get("text"), tb[p].get("title"), tb[p].get("author"), tb[p].get("date")) for p in gpages},
    # text only: resiliparse gives no title, author or date
    "resiliparse": {p: (resiliparse_extract(raw), None, None, None) for p, (_, raw, _) in gpages.items()},
}
print(f"gne truth: {len(gpages)} pages scored, {len(gt['excluded'])} excluded "
      f"({', '.join(gt['excluded'])}: article rendered by JavaScript)")
print(f"{'tool':<14} {'part':<9} {'pages':>5} {'P':>6} {'R':>6} {'F1':>6}   title   author  date")
gne_dev_rows = collections.defaultdict(dict)
for name, preds in gtools.items():
    for part in ("dev", "held_out"):
        ps = [p for p, (sp, _, _) in gpages.items() if sp == part]
        s = [score(preds[p][0], gpages[p][2]) for p in ps]
        if part == "dev":
            for p, x in zip(ps, s):
                gne_dev_rows[p][name] = x[2]
        m = gne_truth.meta_scores(gt, {p: preds[p][1:] for p in ps})
        avg = [sum(v[k] for v in s) / len(s) for k in range(3)]
        meta = (f"{m[0]:>2}/{m[1]:<2}   {m[2]:>2}/{m[3]:<2}   {m[4]:>2}/{m[5]:<2}" if name != "resiliparse"
                else "(text only)")
        print(f"{name:<14} {part:<9} {len(ps):>5} {avg[0]:>6.3f} {avg[1]:>6.3f} {avg[2]:>6.3f}   {meta}")
# captions against the truth's (what the page shows under or beside an image). The caption
# field is the text chosen to describe an image for image-text pairs: a figcaption, else alt or
# title text of 4 characters or more, else a caption line beside the image. Scored twice: the
# field whatever its source, and the field where it is a caption the page shows (figcaption or
# the line beside the image; alt text is not shown)
print(f"{'captions':<14} {'part':<9} {'pages':>5} {'precision':>15} {'recall':>15}  sources")
for label, sources in (("any", None), ("shown", ("figcaption", "nearby"))):
    for part in ("dev", "held_out"):
        ps = [p for p, (sp, _, _) in gpages.items() if sp == part]
        r, n, f, t = gne_truth.caption_scores(gt, {
            p: [im["caption"] for im in zg[p]["images"]
                if im["caption"] and (sources is None or im["caption_source"] in sources)] for p in ps})
        scored = sum(1 for p in ps if "captions" in gt["pages"][p])
        print(f"{'zhcorpus':<14} {part:<9} {scored:>5} {r:>5}/{n:<3} {r / n if n else 0:>5.3f} "
              f"{f:>5}/{t:<3} {f / t if t else 0:>5.3f}  {label}")
# per-page figures of the dev part only: the held-out part is looked at only as a total
with open(os.path.join(out, "gne_dev_per_page.tsv"), "w") as f:
    f.write("page\tzhcorpus\ttrafilatura\n")
    for p, r in sorted(gne_dev_rows.items()):
        f.write(f"{p}\t{r['zhcorpus']:.3f}\t{r['trafilatura']:.3f}\n")

# the generated pages of the three failure kinds (written by extract's `fixtures` example)
fx_dir = os.path.join(out, "fixtures")
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
subprocess.run(["cargo", "run", "--release", "-q", "-p", "extract", "--example", "fixtures", "--", fx_dir],
               check=True, cwd=root)
fx = json.load(open(os.path.join(fx_dir, "fixtures.json"), encoding="utf-8"))
fnames = sorted(fx)
flines, _ = run_zhcorpus([os.path.join(fx_dir, n + ".html") for n in fnames])
fz = {n: l["text"] for n, l in zip(fnames, flines)}
ft = {n: trafilatura.extract(open(os.path.join(fx_dir, n + ".html"), encoding="utf-8").read()) for n in fnames}
print(f"{'failure kind (generated)':<30} {'pages':>5} {'zhcorpus F1':>12} {'trafilatura F1':>15}")
for kind in sorted({v["kind"] for v in fx.values()}):
    ns = [n for n in fnames if fx[n]["kind"] == kind]
    z = sum(score(fz[n], fx[n]["truth"])[2] for n in ns) / len(ns)
    t = sum(score(ft[n], fx[n]["truth"])[2] for n in ns) / len(ns)
    print(f"{kind:<30} {len(ns):>5} {z:>12.3f} {t:>15.3f}")
# the speed ratios on cwced-dev once more, in the form bench/all.sh collects
print(f"ratio: trafilatura: {traf_secs / zh_secs:.1f}x pages/s on {threads} threads, {traf_secs / zh1_secs:.1f}x on one "
      f"(cwced-dev; F1 {zf - rows['trafilatura (raw bytes)'][2]:+.3f})")
print(f"ratio: resiliparse: {resi_secs / zh1_secs:.2f}x pages/s, both on one thread "
      f"(cwced-dev; F1 {zf - rows['resiliparse'][2]:+.3f})")
gne_f1 = {name: sum(score(gtools[name][p][0], gpages[p][2])[2] for p in gpages) / len(gpages) for name in gtools}
print(f"ratio: resiliparse: {gresi_secs / g1_secs:.2f}x pages/s, both on one thread "
      f"(gne-news-pages; F1 {gne_f1['zhcorpus'] - gne_f1['resiliparse']:+.3f} on the {len(gpages)} pages with truth)")
