#!/usr/bin/env python3
"""The scale bench's report: per stage and size, wall time, CPU time, peak RSS and disk; the
log-log slopes of time and memory against the size (1.0 is linear, 0 is flat); what a billion
documents would need at the measured rates; the tokenizer-alone runs; and the curves as an SVG
(log-log, time and peak memory against documents).
usage: report.py OUT_DIR SVG_PATH"""
import json, math, os, sys

out, svg_path = sys.argv[1], sys.argv[2]
# the last successful run of a stage at a size stands (a run appended with APPEND=1 replaces an
# older one); a failed run is shown only where none succeeded
everything = [json.loads(l) for l in open(os.path.join(out, "runs.jsonl")) if l.strip()]
last = {(r["stage"], r["size"]): r for r in everything if r["rc"] == 0}
for r in everything:
    if r["rc"] != 0 and (r["stage"], r["size"]) not in last:
        last[(r["stage"], r["size"])] = r
runs = list(last.values())
STAGES = ["import", "clean", "dedup", "tokenizer", "encode", "dedup-files", "frontier-enqueue",
          "frontier-resume"]
# what bounds each stage's memory by design, whatever the corpus (docs/scale.md says why)
BOUNDS = {
    "import": "bounded: SQLite's 16 MiB page cache and three batches of documents",
    "clean": "rises to its bound: the recurring-line counts (line_memory_entries: 7 million, a table of 300 MiB at most, plus a batch)",
    "dedup": "rises to its bound: --memory-mib, a chunk of documents, the duplicates being clustered",
    "dedup-files": "rises to its bound: --memory-mib, a chunk of documents, the duplicates being clustered",
    "tokenizer": "rises to its bound: --memory-mib (a sample of the documents past it)",
    "encode": "rises to its bound: one shard's tokens per split (shard_tokens: 100 million u32, 400 MB)",
    "frontier-enqueue": "bounded: SQLite's page cache and one batch of URLs",
    "frontier-resume": "grows with the URLs: the crawler's seen-set holds every URL's hash",
}


def slope(points):
    """Least-squares slope of log y against log x."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den if den else None


def fmt_slope(s):
    return "-" if s is None else f"{s:.2f}"


failed = [r for r in runs if r["rc"] != 0]
for r in failed:
    print(f"FAILED: {r['stage']} at {r['size']:g} (exit {r['rc']})")
by_stage = {s: sorted((r for r in runs if r["stage"] == s and r["rc"] == 0), key=lambda r: r["size"])
            for s in STAGES}
print("per stage and size (documents; URLs for the frontier); CPU is user + system; disk is the store"
      " (import, clean, dedup: the whole file), the tokenizer, the shards, the kept file or the frontier's store")
print(f"{'stage':<12}{'documents':>12}{'wall s':>10}{'CPU s':>10}{'docs/s':>12}{'peak MiB':>10}{'disk MB':>10}")
for s in STAGES:
    for r in by_stage[s]:
        cpu = r["user_s"] + r["sys_s"]
        print(f"{s:<12}{int(r['size']):>12,}{r['wall_s']:>10.1f}{cpu:>10.1f}{r['size'] / r['wall_s']:>12,.0f}"
              f"{r['peak_rss_mib']:>10.0f}{r['disk_bytes'] / 1e6:>10.1f}")
for n in sorted(r["size"] for r in by_stage["dedup-files"]):
    said = os.path.join(out, f"dedup-{int(n)}", "dedup.txt")
    if os.path.exists(said):
        print(f"dedup file to file at {int(n):,}: " + open(said).readline().strip())
for n in sorted(r["size"] for r in by_stage["frontier-resume"]):
    said = os.path.join(out, f"frontier-{int(n)}", "resume.json")
    if os.path.exists(said):
        print(f"frontier resume at {int(n):,} URLs: " + open(said).readline().strip())
print()
print("log-log slopes against documents (1.00: linear; 0: flat), and a billion documents: time and"
      " disk at the largest size's rates")
print(f"{'stage':<12}{'time':>8}{'CPU':>8}{'memory':>8}   per billion documents")
for s in STAGES:
    rs = by_stage[s]
    if len(rs) < 2:
        continue
    st = slope([(r["size"], r["wall_s"]) for r in rs])
    sc = slope([(r["size"], r["user_s"] + r["sys_s"]) for r in rs])
    sm = slope([(r["size"], r["peak_rss_mib"]) for r in rs])
    big = rs[-1]
    hours = big["wall_s"] / big["size"] * 1e9 / 3600
    disk = big["disk_bytes"] / big["size"] * 1e9 / 1e12
    # memory: flat below a slope of 0.15, else what bounds it by design
    mem = (f"memory flat at {big['peak_rss_mib']:.0f} MiB" if sm is None or sm < 0.15
           else f"memory {BOUNDS[s]}")
    if BOUNDS[s].startswith("grows") and big["size"] > rs[0]["size"]:
        # what it adds per item beyond the smallest size's (start-up), times a billion
        per = (big["peak_rss_mib"] - rs[0]["peak_rss_mib"]) * 2**20 / (big["size"] - rs[0]["size"])
        mem += f": {per:.0f} bytes each, {per * 1e9 / 2**30:,.0f} GiB at a billion"
    print(f"{s:<12}{fmt_slope(st):>8}{fmt_slope(sc):>8}{fmt_slope(sm):>8}   {hours:,.1f} h on this machine, "
          f"{disk:.2f} TB on disk, {mem}")

tok_path = os.path.join(out, "tokens.jsonl")
if os.path.exists(tok_path):
    print()
    tokens = {float(t["bytes"]): t for t in (json.loads(l) for l in open(tok_path) if l.strip())}
    splices = sorted({t.get("splice", 0) for t in tokens.values()})
    print("tokenizer training alone (vocabulary 32,000), generated text (gen.py --splice "
          f"{', '.join(f'{s:g}' for s in splices)}); held-out: 5,000 documents of another seed")
    for b in sorted(tokens):
        t = tokens[b]
        line = {r["stage"]: r for r in runs if r["size"] == b and r["rc"] == 0}
        parts = [f"{b / 1e9:g} GB:"]
        if t.get("pieces"):
            parts.append(f"{t['pieces']:,} distinct pieces;")
        if "tokenizer-bounded" in line:
            r = line["tokenizer-bounded"]
            parts.append(f"bounded {r['wall_s']:.0f} s, {r['peak_rss_mib']:.0f} MiB peak, on a {t['sample']:g}%"
                         f" sample, {t['bounded']:,} held-out tokens;")
        if "tokenizer-unbounded" in line and t.get("unbounded"):
            r = line["tokenizer-unbounded"]
            parts.append(f"unbounded {r['wall_s']:.0f} s, {r['peak_rss_mib']:.0f} MiB, {t['unbounded']:,} tokens"
                         f" (bounded {100 * (t['bounded'] / t['unbounded'] - 1):+.2f}%);")
        if "sentencepiece" in line:
            r = line["sentencepiece"]
            parts.append(f"sentencepiece (10M sentences sampled) {r['wall_s']:.0f} s, {r['peak_rss_mib']:.0f} MiB")
        print(" ".join(parts))
        if "tokenizer-bounded" in line and "sentencepiece" in line:
            z, p = line["tokenizer-bounded"], line["sentencepiece"]
            how = "all of it" if t["sample"] >= 100 else f"a {t['sample']:g}% sample"
            print(f"ratio: {p['wall_s'] / z['wall_s']:.2f}x sentencepiece's training speed on {b / 1e9:g} GB of text"
                  f" (zhcorpus on {how} within --memory-mib, sentencepiece on up to 10 million sentences),"
                  f" in {z['peak_rss_mib'] / p['peak_rss_mib']:.2f}x its memory")

# the curves: two log-log panels, wall time and peak RSS against documents
W, H, M = 360, 260, 50
COLORS = {"import": "#1f77b4", "clean": "#2ca02c", "dedup": "#d62728", "tokenizer": "#9467bd",
          "encode": "#ff7f0e", "dedup-files": "#8c564b"}
# documents only: the frontier's sizes are URLs
series = {s: rs for s, rs in by_stage.items() if rs and not s.startswith("frontier")}
if series:
    xs = [r["size"] for rs in series.values() for r in rs]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W + 160}" height="{H + 40}" '
             f'font-family="sans-serif" font-size="11">',
             '<rect width="100%" height="100%" fill="white"/>']
    for k, (key, label) in enumerate([("wall_s", "wall time, s"), ("peak_rss_mib", "peak RSS, MiB")]):
        ys = [r[key] for rs in series.values() for r in rs]
        x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
        y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        ox = k * W

        def px(x):
            return ox + M + (math.log10(x) - x0) / (x1 - x0) * (W - M - 10)

        def py(y):
            return H - M + 20 - (math.log10(y) - y0) / (y1 - y0) * (H - M - 10)

        parts.append(f'<text x="{ox + W / 2}" y="14" text-anchor="middle">{label} against documents (log-log)</text>')
        for e in range(x0, x1 + 1):
            parts.append(f'<line x1="{px(10 ** e)}" y1="{py(10 ** y0)}" x2="{px(10 ** e)}" y2="{py(10 ** y1)}" stroke="#ddd"/>')
            parts.append(f'<text x="{px(10 ** e)}" y="{py(10 ** y0) + 14}" text-anchor="middle">1e{e}</text>')
        for e in range(y0, y1 + 1):
            parts.append(f'<line x1="{px(10 ** x0)}" y1="{py(10 ** e)}" x2="{px(10 ** x1)}" y2="{py(10 ** e)}" stroke="#ddd"/>')
            parts.append(f'<text x="{px(10 ** x0) - 4}" y="{py(10 ** e) + 4}" text-anchor="end">1e{e}</text>')
        for s, rs in series.items():
            pts = " ".join(f"{px(r['size']):.1f},{py(r[key]):.1f}" for r in rs)
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS[s]}" stroke-width="2"/>')
            for r in rs:
                parts.append(f'<circle cx="{px(r["size"]):.1f}" cy="{py(r[key]):.1f}" r="3" fill="{COLORS[s]}"/>')
    for i, s in enumerate(series):
        y = 40 + 16 * i
        parts.append(f'<line x1="{2 * W + 10}" y1="{y}" x2="{2 * W + 30}" y2="{y}" stroke="{COLORS[s]}" stroke-width="2"/>')
        parts.append(f'<text x="{2 * W + 36}" y="{y + 4}">{s}</text>')
    parts.append("</svg>")
    with open(svg_path, "w") as f:
        f.write("\n".join(parts) + "\n")
    print()
    print(f"curves: {os.path.relpath(svg_path)}")
sys.exit(1 if failed else 0)
