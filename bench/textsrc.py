"""Readers for the evaluation text's formats, shared by the benchmark set builders: CSV review
columns, the visible text of the technical manuals' raw HTML, and every genre of the text
folder at once (`genres`)."""
import csv, glob, html.parser, json, re

csv.field_size_limit(10**9)


def rows_csv(paths, col):
    """The non-empty `col` of every row of the CSV files `paths` (a path or a list of them)."""
    for path in [paths] if isinstance(paths, str) else paths:
        with open(path, encoding="utf-8-sig") as f:
            for row in csv.DictReader(f):
                t = (row.get(col) or "").strip().lstrip("\ufeff")
                if t:
                    yield t


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        if tag in ("p", "div", "br", "li", "h1", "h2", "h3", "pre", "tr", "title"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def page_text(h, collapse=False):
    """The text of an HTML page, a line break per block; `collapse` drops blank lines."""
    p = _Text()
    p.feed(h)
    text = "".join(p.parts)
    return re.sub(r"\n\s*\n+", "\n", text).strip() if collapse else text


def jsonl(pattern, field):
    """The non-empty `field` of every line of the JSONL files matching `pattern`, in file order."""
    for path in sorted(glob.glob(pattern)):
        for line in open(path, encoding="utf-8"):
            t = json.loads(line).get(field)
            if t:
                yield t


def genres(d):
    """Every document of the text folder `d` by genre: reviews, Weibo posts, THUCNews articles,
    Toutiao headlines, Wikipedia paragraphs (each once), Song ci, Tang poems (traditional),
    Yuan qu, classics, and the manuals' visible text."""
    g = {}
    g["reviews"] = list(rows_csv(sorted(glob.glob(f"{d}/reviews/*.csv")), "review"))
    g["weibo"] = list(rows_csv([f"{d}/social/weibo_senti_100k_subset.csv"], "review"))
    g["news"] = [l.split("\t", 1)[1].strip() for l in open(f"{d}/news/thucnews_dev.tsv", encoding="utf-8") if "\t" in l]
    g["headlines"] = [l.split("---", 1)[1].strip() for f in sorted(glob.glob(f"{d}/news/toutiao_ent_headlines.*.txt"))
                      for l in open(f, encoding="utf-8") if "---" in l]
    g["encyclopedia"] = list(dict.fromkeys(jsonl(f"{d}/encyclopedia/*.jsonl", "context")))
    g["song_ci"] = list(jsonl(f"{d}/literature/songci_simplified.*.jsonl", "text"))
    g["tang_traditional"] = list(jsonl(f"{d}/literature/quantangshi_traditional_part.*.jsonl", "text"))
    g["yuan_qu"] = list(jsonl(f"{d}/literature/yuanqu.*.jsonl", "text"))
    g["classics"] = list(jsonl(f"{d}/literature/classics_misc.jsonl", "text"))
    g["technical"] = [page_text(h, collapse=True) for h in jsonl(f"{d}/technical/*.jsonl", "html")]
    return g
