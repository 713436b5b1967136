#!/usr/bin/env python3
"""bench/all.sh's bookkeeping.

  results.py record STAGE RC SECONDS STARTED COMMIT THREADS
      writes bench/out/STAGE/run.json beside the stage's report.txt and stderr.txt
  results.py write MACHINE_LINE COMMIT DATA_DIR [STAGE...]
      writes bench/RESULTS.md from every stage's latest report.txt and run.json; the STAGEs
      are the ones run this time, the others are marked with the date of their report; then
      bench/APART.md as it is (runs too long for all.sh or needing OpenMPI or Slurm, each
      with its own script, commit and date)

The summary table takes every line of a report that begins with `ratio`: the form
`ratio: PEER: Nx UNIT ...` names its peer; otherwise the peers are the names the line gives
(`X's`, `than X`, `(zhcorpus / X)`). Paths of this machine are written relative to the
repository.
"""
import datetime, json, os, re, sys

STAGES = ["import", "crawl", "images", "extract", "clean", "dedup", "tokenizer", "train", "scale"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")


def relative(text):
    """Paths of this machine made relative to the repository (its parent as `..`, home as `~`);
    only whole paths: the folder `/srv` is not the `/srv` in `nfs/srvs` of a sentence."""
    def sub(path, rep, text):
        # a path starts after a blank, a quote or a bracket and ends at a separator or a blank
        end = "" if path.endswith("/") else r"(?=/|[^\w.-]|$)"
        return re.sub(r"(?<![\w./-])" + re.escape(path) + end, rep, text)

    parent = os.path.dirname(ROOT)
    text = sub(ROOT + "/", "", text)
    text = sub(ROOT, ".", text)
    if parent not in ("", "/"):
        text = sub(parent + "/", "../", text)
        text = sub(parent, "..", text)
    home = os.path.expanduser("~")
    if home not in ("", "/", "~"):
        text = sub(home + "/", "~/", text)
    return text


def record(stage, rc, seconds, started, commit, threads):
    os.makedirs(os.path.join(OUT, stage), exist_ok=True)
    with open(os.path.join(OUT, stage, "run.json"), "w") as f:
        json.dump({"stage": stage, "rc": int(rc), "seconds": int(seconds), "started": started,
                   "commit": commit, "threads": int(threads)}, f)
        f.write("\n")


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None


def label(para):
    """What a paragraph of a report is about: its first line (the machine, thread and CPU
    lines skipped), up to a `;` or ` (`, a table header's first column."""
    for line in para:
        if re.match(r"(machine|threads):", line) or "vector units:" in line:
            continue
        if re.search(r"\S {2,}\S.* {2,}\S", line):  # a table header
            line = re.split(r" {2,}", line.strip())[0]
        line = re.split(r";| \(", line)[0].strip().rstrip(":")
        line = re.sub(r"\s+", " ", line)
        return line if len(line) <= 60 else line[:59] + "…"
    return ""


PEER = re.compile(r"\(zhcorpus / ([^)]+)\)|([A-Za-z][\w.+-]*(?: (?:sdpa|compile|naive))?)'s\b|\bthan ([A-Za-z][\w.+-]*)")


def ratios(report):
    """(peers, ratio text, paragraph label) for each line beginning with `ratio`."""
    rows, para = [], []
    lines = report.splitlines() + [""]
    for line in lines:
        if not line.strip():
            for l in para:
                if not l.startswith("ratio"):
                    continue
                head, _, rest = l.partition(": ")
                m = re.match(r"([^:]+): (\d.*)$", rest)
                if head == "ratio" and m:
                    peers, text = [m[1]], m[2]
                else:
                    peers = []
                    for g in PEER.finditer(l):
                        p = next(x for x in g.groups() if x)
                        if p.lower() not in ("its", "zhcorpus") and p not in peers:
                            peers.append(p)
                    text = re.sub(r"^zhcorpus ", "", rest)
                rows.append((", ".join(peers) or "?", text.strip(), label(para)))
            para = []
        else:
            para.append(line)
    return rows


def cell(s):
    return s.replace("|", "\\|")


def write(machine, commit, data, run_now):
    info, reports, errors = {}, {}, {}
    for s in STAGES:
        d = os.path.join(OUT, s)
        meta = read(os.path.join(d, "run.json"))
        if meta is None:
            continue
        info[s] = json.loads(meta)
        reports[s] = relative(read(os.path.join(d, "report.txt")) or "")
        errors[s] = relative(read(os.path.join(d, "stderr.txt")) or "")
    when = lambda s: info[s]["started"]
    md = ["# zhcorpus benchmark results", "",
          f"Written by `bench/all.sh` on {machine.removeprefix('machine: ')}.", "",
          f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
          f"- threads: {os.environ.get('THREADS', '?')} (`THREADS`, every tool)",
          f"- git commit: {commit}",
          f"- data: `{relative(data)}`",
          f"- run this time: {', '.join(run_now) or 'none'}"
          + ("" if set(run_now) >= set(info) else "; the other stages show the latest report of an earlier run, with its date"),
          "", "Each ratio is copied from a line of the stage's report that begins with `ratio` (read its "
          "unit: most are zhcorpus's speed over the peer's); the sections below hold the whole reports.", "",
          "| stage | zhcorpus against | ratio | where |", "|---|---|---|---|"]
    for s in STAGES:
        if s not in info:
            md.append(f"| {s} | | not run | |")
            continue
        link = f"[{s}](#{s})" + ("" if s in run_now else f", report of {when(s)}")
        if info[s]["rc"] != 0:
            md.append(f"| {s} | | **failed** (exit {info[s]['rc']}) | {link} |")
            continue
        rows = ratios(reports[s])
        if not rows:
            md.append(f"| {s} | | no `ratio` line in the report | {link} |")
        for peers, text, where in rows:
            md.append(f"| {s} | {cell(peers)} | {cell(text)} | {cell(where + (' — ' if where else '') + link)} |")
    md += ["", "| stage | result | time | started | commit | threads |", "|---|---|---|---|---|---|"]
    for s in STAGES:
        if s in info:
            i = info[s]
            result = "ok" if i["rc"] == 0 else f"failed (exit {i['rc']})"
            now = "" if s in run_now else " (not run this time)"
            md.append(f"| {s} | {result} | {i['seconds'] // 60}:{i['seconds'] % 60:02d} | {i['started']}{now} "
                      f"| {i['commit']} | {i['threads']} |")
    for s in STAGES:
        if s not in info:
            continue
        i = info[s]
        md += ["", f"## {s}", ""]
        status = "ok" if i["rc"] == 0 else f"**failed with exit code {i['rc']}**"
        md.append(f"`bench/{s}/run.sh`, started {i['started']}"
                  + ("" if s in run_now else " (not run this time: the latest report)")
                  + f", {i['seconds']} s, commit {i['commit']}, {i['threads']} threads: {status}.")
        if i["rc"] != 0:
            tail = "\n".join(errors[s].rstrip("\n").splitlines()[-25:])
            md += ["", "The last lines of its stderr (`bench/out/" + s + "/stderr.txt`):", "", "```text",
                   tail or "(empty)", "```"]
            if reports[s].strip():
                md += ["", "What it printed before it stopped:"]
        if reports[s].strip():
            md += ["", "```text", reports[s].rstrip("\n"), "```"]
    apart = read(os.path.join(ROOT, "bench", "APART.md"))
    if apart:
        md += ["", apart.rstrip("\n")]
    with open(os.path.join(ROOT, "bench", "RESULTS.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        record(*args)
    elif cmd == "write":
        write(args[0], args[1], args[2], args[3:])
    else:
        sys.exit(f"unknown command {cmd!r}")
