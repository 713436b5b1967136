#!/usr/bin/env python3
"""Writes realistic generated Chinese documents at any size, for the scale bench.

Each document takes a genre (reviews, Weibo posts, news articles, headlines, encyclopedia
paragraphs, poems, classics, manual pages from ../shared/data/text, in the shares of SHARE
below), the number of sentences of a real document of that genre drawn at random, and that many sentences drawn from the genre's real sentences; news, encyclopedia
and manual text is broken into paragraphs of two to six sentences. So lengths follow the real
distribution and the text is real sentences, recombined.

Planted at known rates, each document says what it is in `planted`:
  exact:ID   a copy of an earlier document ID (3%)
  near:ID    an earlier document with one sentence in ten replaced, at least one (4%)
  junk:KIND  navigation boilerplate, one line repeated, Latin letters and digits, or a
             document of a few characters (4%)
  ""         a fresh document

With --splice P, each sentence of a fresh document is, with probability P, rebuilt from cuts
of 2 to 10 characters of other real sentences of its genre, at random places: the pieces a
tokenizer counts then keep growing with the text, as a real corpus's do, where recombined
whole sentences repeat the source's pieces and stop adding new ones (2.7 million at 1 GB).
P = 1 makes about as many distinct pieces per megabyte as the tokenizer bench's real sample
(1.06 million in 31 MB, against 1.1 million); the growth stays almost linear past it (7.8
times the pieces for 10 times the text from 0.1 to 1 GB), harsher
than real text, whose growth slows.

usage: gen.py DATA_TEXT_DIR (--docs N | --bytes B) [--seed S] [--start K] [--splice P] > out.jsonl
The same arguments give the same bytes on every machine; --start K starts the ids at K (the
documents are the same as those of a larger run from K on only when K is 0).
"""
import argparse, json, os, random, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from textsrc import genres  # noqa: E402

EXACT, NEAR, JUNK = 0.03, 0.04, 0.04
# each genre's share of the documents: the real sets' counts are nearly all reviews and
# headlines, so a web-like mix is set here instead
SHARE = {"reviews": 25, "weibo": 15, "headlines": 10, "news": 20, "encyclopedia": 15,
         "technical": 3, "poems": 7, "classics": 5}
RECENT = 20000  # copies are of one of the last RECENT fresh documents
NAV = ["首页", "新闻", "体育", "娱乐", "财经", "科技", "汽车", "房产", "登录", "注册", "返回顶部",
       "联系我们", "关于我们", "网站地图", "版权所有", "上一篇", "下一篇", "更多>>", "点击查看大图"]


def load(d):
    """The genres of `genres`, the Song ci and Yuan qu together as poems, without the Tang poems
    (traditional script)."""
    g = genres(d)
    g["poems"] = g.pop("song_ci") + g.pop("yuan_qu")
    del g["tang_traditional"]
    return {k: v for k, v in g.items() if v}


SPLIT = re.compile(r"(?<=[。！？!?；\n])")


def sentences(t):
    return [s.strip() for s in SPLIT.split(t) if s.strip()]


def splice(rng, s, pool):
    """A sentence as long as `s` made of pieces of 2 to 10 characters, each cut from a random
    place of a random sentence of the pool, and ending as `s` ends."""
    out, n = [], 0
    while n < len(s) - 1:
        t = rng.choice(pool)
        k = rng.randint(2, 10)
        at = rng.randint(0, max(0, len(t) - k))
        out.append(t[at:at + k])
        n += len(out[-1])
    return "".join(out)[:max(1, len(s) - 1)] + s[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("text_dir")
    ap.add_argument("--docs", type=int)
    ap.add_argument("--bytes", type=float)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--splice", type=float, default=0.0)
    a = ap.parse_args()
    if (a.docs is None) == (a.bytes is None):
        ap.error("give --docs or --bytes")
    genres = load(a.text_dir)
    names = sorted(genres)
    pools = {k: [s for t in genres[k] for s in sentences(t)] for k in names}
    lengths = {k: [max(1, len(sentences(t))) for t in genres[k]] for k in names}
    weights = [SHARE.get(k, 1) for k in names]
    paragraphs = {"news", "encyclopedia", "technical", "classics"}
    rng = random.Random(a.seed)
    recent = []
    out = sys.stdout
    n, size = 0, 0
    limit_docs = a.docs if a.docs is not None else float("inf")
    limit_bytes = a.bytes if a.bytes is not None else float("inf")
    while n < limit_docs and size < limit_bytes:
        i = a.start + n
        r = rng.random()
        genre = rng.choices(names, weights)[0]
        planted = ""
        if r < EXACT and recent:
            src_id, genre, text = rng.choice(recent)
            planted = f"exact:{src_id}"
        elif r < EXACT + NEAR and recent:
            src_id, genre, text = rng.choice(recent)
            lines = text.split("\n")
            flat = [(li, s) for li, line in enumerate(lines) for s in sentences(line)]
            pool = pools[genre]
            for _ in range(max(1, len(flat) // 10)):
                k = rng.randrange(len(flat))
                flat[k] = (flat[k][0], rng.choice(pool))
            text = "\n".join("".join(s for li, s in flat if li == L) for L in range(len(lines)))
            planted = f"near:{src_id}"
        elif r < EXACT + NEAR + JUNK:
            kind = rng.choice(["nav", "repeat", "latin", "short"])
            if kind == "nav":
                text = "\n".join(" | ".join(rng.sample(NAV, 6)) for _ in range(rng.randint(3, 12)))
            elif kind == "repeat":
                text = "\n".join([rng.choice(pools[genre])] * rng.randint(5, 30))
            elif kind == "latin":
                text = " ".join("".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(2, 10)))
                                for _ in range(rng.randint(20, 200)))
            else:
                text = "".join(rng.choices(rng.choice(pools[genre]), k=rng.randint(1, 4)))
            planted = f"junk:{kind}"
        else:
            m = rng.choice(lengths[genre])
            picked = rng.choices(pools[genre], k=m)
            if a.splice:
                picked = [splice(rng, s, pools[genre]) if rng.random() < a.splice else s for s in picked]
            if genre in paragraphs and m > 2:
                parts, k = [], 0
                while k < m:
                    step = rng.randint(2, 6)
                    parts.append("".join(picked[k:k + step]))
                    k += step
                text = "\n".join(parts)
            else:
                text = "".join(picked)
            src = (f"gen-{i:09d}", genre, text)
            if len(recent) < RECENT:
                recent.append(src)
            else:
                recent[rng.randrange(RECENT)] = src
        doc = {"id": f"gen-{i:09d}", "text": text, "source": genre,
               "url": f"http://site{i % 997}.example.cn/{genre}/{i}.html", "planted": planted}
        line = json.dumps(doc, ensure_ascii=False) + "\n"
        out.write(line)
        n += 1
        size += len(text.encode())
    print(json.dumps({"documents": n, "text_bytes": size}), file=sys.stderr)


main()
