"""The gne-news-pages set against the hand-made truth in gne_truth.json: article text from each
site's own container, headline, author and date as the page shows them."""
import json, os, re

import lxml.html

HERE = os.path.dirname(os.path.abspath(__file__))


def load(data):
    """(truth dict, {page: (split, raw bytes, gold text)}) for the pages that are scored."""
    truth = json.load(open(os.path.join(HERE, "gne_truth.json"), encoding="utf-8"))
    split = {s: "dev" for s in truth["split"]["dev"]}
    split.update({s: "held_out" for s in truth["split"]["held_out"]})
    pages = {}
    for page in sorted(truth["pages"]):
        if page in truth["excluded"]:
            continue
        site = page.split("/")[0]
        raw = open(os.path.join(data, "gne-news-pages", page), "rb").read()
        pages[page] = (split[site], raw, gold_text(raw, truth["pages"][page].get("body") or truth["sites"][site]["body"]))
    return truth, pages


def gold_text(raw, selector):
    tree = lxml.html.fromstring(raw.decode("utf-8", errors="replace"))
    for bad in tree.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    for bad in tree.xpath("//*[@style]"):
        if re.search(r"display\s*:\s*none", bad.get("style", "")) and bad.getparent() is not None:
            bad.drop_tree()
    found = tree.xpath(selector) if selector.startswith("/") else tree.cssselect(selector)
    text = "\n".join(e.text_content() for e in found)
    if not text.strip():
        raise SystemExit(f"gne truth: selector {selector!r} finds no text")
    return text


def norm(s):
    return "".join((s or "").split())


def meta_scores(truth, preds):
    """(title right, titles scored, author right, authors scored, date right, dates scored) over
    `preds`: {page: (title, author, date)}."""
    t = a = d = tn = an = dn = 0
    for page, (title, author, date) in preds.items():
        want = truth["pages"][page]
        tn += 1
        t += norm(title) == norm(want["title"])
        if "author" in want:
            an += 1
            names = want["author"]
            if names is None:
                a += not author
            else:
                a += bool(author) and any(n in author for n in names) and len(norm(author)) <= 4 * max(map(len, names)) + 8
        if "date" in want:
            dn += 1
            d += bool(date) and date[:10] == want["date"]
    return t, tn, a, an, d, dn


def caption_scores(truth, preds):
    """(right, predicted, found, truth) over `preds`: {page: [caption, ...]}, for the pages whose
    truth lists captions. A predicted caption is right when it equals a truth caption after
    removing whitespace; each distinct caption counts once per page. Precision is right /
    predicted, recall found / truth."""
    right = npred = found = ntruth = 0
    for page, captions in preds.items():
        want = truth["pages"][page].get("captions")
        if want is None:
            continue
        want = {norm(c) for c in want}
        got = {norm(c) for c in captions if norm(c)}
        right += len(got & want)
        npred += len(got)
        found += len(want & got)
        ntruth += len(want)
    return right, npred, found, ntruth
