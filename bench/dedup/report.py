#!/usr/bin/env python3
"""The dedup benchmark's tables from the files run.sh left in OUT.
  report.py OUT N THREADS "SETS"
Per set: each tool's wall time, its start-up alone, documents/s with and without the start-up,
peak memory, and precision / recall of its candidates as given and after the exact Jaccard
check (zhcorpus's own; verify.py's post-step for the peers, whose time is shown apart)."""
import json, os, sys

out, n, threads, sets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split()


def load(path):
    return json.load(open(path)) if os.path.exists(path) else None


def version(pkg):
    import importlib.metadata
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "?"


startup = {k: load(f"{out}/startup-{k}.json")["wall_s"] for k in ("zhcorpus", "rensa", "datasketch", "datatrove")}
print(f"rensa {version('rensa')}, datasketch {version('datasketch')}, datatrove {version('datatrove')}; "
      f"128 permutations, the same shingles (datatrove's after its own normalisation, which drops "
      f"punctuation and folds digits) and bands x rows for every tool; {threads} threads where a tool "
      f"takes more than one")
print("start-up alone: " + ", ".join(f"{k} {v:.2f} s" for k, v in startup.items()))
ABOUT = {
    "big": "every real document of the text folder and edited copies of one in ten; character 5-grams, "
           "threshold 0.8, 16 x 8",
    "news": "THUCNews articles and edited copies; character 5-grams, threshold 0.8, 9 x 13",
    "headlines": "Toutiao headlines; character 3-grams, threshold 0.6, 18 x 7",
}
for name in sets:
    d = f"{out}/{name}"
    if not os.path.exists(f"{d}/score.json"):
        continue
    docs = sum(1 for _ in open(f"{d}/eval.jsonl", encoding="utf-8"))
    score = json.load(open(f"{d}/score.json"))
    words = load(f"{d}/score-words.json")
    rows = score["rows"]
    print(f"\n{name}: {docs:,} documents ({ABOUT[name]}); {score['truth_pairs']:,} true pairs by exact Jaccard")
    print(f"{'tool':<34} {'wall s':>7} {'docs/s':>9} {'w/o start':>9} {'RSS MiB':>8} "
          f"{'candidates P / R':>17} {'checked P / R':>14} {'check s':>8}")

    def row(label, run, start, checked, raw, verify=None):
        """One tool's line: `checked` and `raw` name its clusters in score.json with and
        without the exact check (None: that run has only the other)."""
        m = load(f"{d}/{run}.json")
        if m is None:
            return None
        pr = lambda key: f"{rows[key][0]:.3f} / {rows[key][1]:.3f}" if key in rows else "-"
        v = load(f"{d}/{verify}.verify.json") if verify else None
        body = m["wall_s"] - start
        check = f"{v['verify_s']:.2f}" if v else ("inside" if checked else "-")
        print(f"{label:<34} {m['wall_s']:>7.2f} {docs / m['wall_s']:>9,.0f} {docs / body:>9,.0f} "
              f"{m['peak_rss_mib']:>8.0f} {pr(raw) if raw else '-':>17} {pr(checked) if checked else '-':>13}  {check:>7}")
        return m

    two = "zhcorpus2" if "zhcorpus2" in rows else "zhcorpus"
    z = row(f"zhcorpus ({threads} threads)", "zhcorpus", startup["zhcorpus"], two, None)
    z1 = row("zhcorpus (1 thread)", "zhcorpus1", startup["zhcorpus"], "zhcorpus", None)
    row("zhcorpus --no-verify (1 thread)", "zhcorpus1-raw", startup["zhcorpus"], None, "zhcorpus-raw")
    r1 = row("rensa (1 thread)", "rensa1", startup["rensa"], "rensa", "rensa-raw", "rensa")
    r = row(f"rensa ({threads} threads)", "rensa", startup["rensa"], "rensa", "rensa-raw", "rensa")
    ds = row("datasketch (1 thread)", "datasketch", startup["datasketch"], "datasketch", "datasketch-raw",
             "datasketch")
    dt = row(f"datatrove ({threads} workers)", "datatrove", startup["datatrove"], "datatrove", "datatrove-raw",
             "datatrove")
    if words:
        m = load(f"{d}/words.json")
        p, rc = words["rows"]["words"]
        print(f"{'zhcorpus, jieba words (' + str(threads) + ' thr.)':<34} {m['wall_s']:>7.2f} "
              f"{docs / m['wall_s']:>9,.0f} {'':>9} {m['peak_rss_mib']:>8.0f} {'':>17} {p:.3f} / {rc:.3f} "
              f"(word truth: {words['truth_pairs']:,} pairs)")
    per_core = lambda peer, peer_start: (peer["wall_s"] / z1["wall_s"],
                                         (peer["wall_s"] - peer_start) / (z1["wall_s"] - startup["zhcorpus"]))
    if r1:
        a, b = per_core(r1, startup["rensa"])
        print(f"ratio: rensa: {a:.1f}x documents per core ({b:.1f}x without start-up), zhcorpus with its "
              f"exact check against rensa without one; {r['wall_s'] / z['wall_s']:.1f}x on {threads} threads")
    if ds:
        a, _ = per_core(ds, startup["datasketch"])
        print(f"ratio: datasketch: {a:.0f}x documents per core")
    if dt:
        print(f"ratio: datatrove: {dt['wall_s'] / z['wall_s']:.0f}x documents/s on {threads} threads and workers each")

if n and os.path.exists(f"{out}/scale.json"):
    s = json.load(open(f"{out}/scale.json"))
    print(f"\nscaling: {n:,} generated documents in {s['wall_s']:.1f} s = {n / s['wall_s']:,.0f} docs/s "
          f"on {threads} threads, peak RSS {s['peak_rss_mib']:.0f} MiB "
          f"({s['peak_rss_mib'] * 2**20 / n:.0f} bytes per document)")
