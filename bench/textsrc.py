"""Readers for the evaluation text's formats, shared by the benchmark set builders: CSV review
columns, and the visible text of the technical manuals' raw HTML."""
import csv, html.parser, re

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
