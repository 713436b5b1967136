"""Builds the labelled quality set: good prose and web junk, from real data in ../shared/data,
each document labelled with its genre and kept in one of two parts, `dev` (the rules and the
classifier's settings were tuned on it) and `heldout` (never looked at while tuning). The part
is fixed by a hash of the real item a document was made from, so one article never lands in
both parts, and every document made from one page goes to the page's part.

Good prose (label 1):
  news_joined      THUCNews articles as stored: title and paragraphs joined into one line
  news_paragraphs  the same articles with one paragraph per line (a line break after the
                   sentence that passes 120 characters), as extractors and most dumps give them
  encyclopedia     Chinese Wikipedia paragraphs (CMRC 2018 contexts, duplicates removed)
  technical        Debian's Chinese manuals, the visible text of each page but the index
                   pages (a table of contents is navigation, not an article)
  good_short       length-matched good text: a run of whole sentences of news (one paragraph
                   per line), encyclopedia or manual prose cut to the length of one junk
                   document, paragraph breaks kept (for the classifier)
Junk (label 0):
  boilerplate      the visible text of the real pages of cwced-dev and of the modern news
                   pages (gne) minus their article (for gne, the site's own article container
                   named in bench/extract/gne_truth.json, whose split by site the pages keep;
                   lines
                   not in the hand-made ground truth, compared without blanks and
                   punctuation, or sharing most 6-grams with it): navigation, footers, link
                   lists, comment widgets; one document per run of such lines of 60+
                   characters, and one per page with all of them. Lines of 60+ characters
                   with two or more sentences are left out: a second article or a long comment
                   is prose in the wrong place, not junk
  link_list        a news list page's text: 8 to 30 real Toutiao headlines, one per line, some
                   with a date or a comment count, as a list page shows them
  keyword_spam     SEO pages: a city and a service or product word from real headlines stuffed
                   into title lines (`北京装修公司_北京装修哪家好_...`), "热门搜索" tag clouds
                   and template sentences repeating the keyword, as doorway pages do
  garbled          machine-garbled text of real news: UTF-8 bytes read as GBK (mojibake), GBK
                   bytes read as UTF-8 (replacement characters), and random Han characters
                   with punctuation, as auto-generated spam pages fill space
  word_salad       "伪原创" spun text: the jieba words of a real article shuffled within
                   each sentence, punctuation kept
  product_list     e-commerce listing pages: brand, product, spec, price, monthly sales and
                   shop per line, products of the real review categories
  number_table     stock quotes, lottery draws and league tables: codes, names, numbers
  headline         single Toutiao headlines (removed by length today; must stay removed)

usage: make_quality_set.py DATA_DIR OUT_DIR    (writes OUT_DIR/quality_set.jsonl)
"""
import hashlib, html, json, os, random, re, sys, unicodedata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from textsrc import page_text, rows_csv  # noqa: E402

import jieba  # noqa: E402

jieba.setLogLevel(60)
data, out = sys.argv[1], sys.argv[2]
text_dir = f"{data}/text"
rng = random.Random(16)
HELDOUT = 3  # one item in three is kept aside


def part(origin):
    h = int(hashlib.md5(origin.encode()).hexdigest()[:8], 16)
    return "heldout" if h % HELDOUT == 0 else "dev"


docs = []


def add(genre, label, origin, text, source, fixed_part=None):
    text = text.strip()
    if text:
        docs.append({"genre": genre, "label": label, "part": fixed_part or part(origin), "origin": origin,
                     "text": text, "source": source})


SENT = re.compile(r"(?<=[。！？!?；…])(?![”」』\"）)])")


def sentences(t):
    return [s for s in SENT.split(t) if s.strip()]


# ---- good prose
news = [l.split("\t", 1)[1].strip() for l in open(f"{text_dir}/news/thucnews_dev.tsv", encoding="utf-8") if "\t" in l]
for i, a in enumerate(news):
    add("news_joined", 1, f"news{i}", a, "news.sina.com.cn")
    paras, cur = [], ""
    for s in sentences(a):
        cur += s
        if len(cur) >= 120:
            paras.append(cur)
            cur = ""
    if cur:
        paras.append(cur)
    add("news_paragraphs", 1, f"news{i}", "\n".join(paras), "news-paragraphs.example.cn")
seen = set()
wiki = []
for l in open(f"{text_dir}/encyclopedia/cmrc2018_wiki_contexts_with_repeats.jsonl", encoding="utf-8"):
    c = json.loads(l)["context"]
    if c not in seen:
        seen.add(c)
        wiki.append(c)
        add("encyclopedia", 1, f"wiki{len(wiki)}", c, "zh.wikipedia.org")
manual_seen = set()
for name in ("maint-guide-zh-cn.html.jsonl", "debian-faq-zh-cn.html.jsonl", "debian-reference-zh-cn.html.part00.jsonl",
             "debian-reference-zh-cn.html.part01.jsonl"):
    for l in open(f"{text_dir}/technical/{name}", encoding="utf-8"):
        row = json.loads(l)
        t = page_text(row["html"], collapse=True)
        # the reference manual is packaged twice under two paths: one copy, split by file name
        if t in manual_seen:
            continue
        manual_seen.add(t)
        add("technical", 1, f"manual:{os.path.basename(row.get('file', ''))}:{len(manual_seen)}", t, "www.debian.org")

# ---- junk
def decode(raw):
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            pass
    return raw.decode("gb18030", errors="replace")


cw = f"{data}/extract/cwced-dev"
truth = json.load(open(f"{cw}/ground_truth.json", encoding="utf-8"))
PUNCT = re.compile(r"[\W_]+")


def squash(s):
    """Text for matching lines against the ground truth: NFKC, no blanks, no punctuation."""
    return PUNCT.sub("", unicodedata.normalize("NFKC", s))


def grams(s, n=6):
    return {s[k:k + n] for k in range(max(len(s) - n + 1, 1))}


def add_boilerplate(origin, text, gold, source, fixed_part=None):
    """The page's visible lines that are not its article (`gold`), as one document for the
    page and one per run of 60+ characters of them."""
    gold = squash(gold)
    gold_grams = grams(gold)
    lines = [html.unescape(l).strip() for l in page_text(text, collapse=True).splitlines()]
    lines = [l for l in lines if l]

    def article(line):
        # the article's when its text is in the ground truth, or most of its 6-grams are
        # (the truth was copied by hand: its quotes and spaces differ from the page's here and there)
        q = squash(line)
        if not q:
            return True  # punctuation only: neither part
        if q in gold:
            return len(q) >= 4
        g = grams(q)
        return len(q) >= 12 and len(g & gold_grams) >= 0.5 * len(g)

    def prose(line):
        # a second article, a summary or a long comment: prose in the wrong place is not junk
        return len(line) >= 60 and len(re.findall(r"[。！？]", line)) >= 2

    lines = [l for l in lines if not prose(l)]
    flags = [article(l) for l in lines]
    junk = [l for l, a in zip(lines, flags) if not a]
    add("boilerplate", 0, origin, "\n".join(junk), source, fixed_part)
    run = []
    for l, a in list(zip(lines, flags)) + [(None, True)]:
        if not a:
            run.append(l)
            continue
        if sum(len(x) for x in run) >= 60:
            add("boilerplate", 0, origin, "\n".join(run), source, fixed_part)
        run = []


for pid in sorted(truth):
    raw = open(f"{cw}/original/{pid}.html", "rb").read()
    text = re.sub(r"^<text [^>]*>", "", decode(raw).lstrip())
    add_boilerplate(f"page:{pid}", text, html.unescape(truth[pid]["articleBody"]), f"page-{pid[:8]}")

# the modern news pages: the article is the site's own container named in the extraction
# benchmark's hand-made truth; the pages keep that benchmark's split by site
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "extract"))
import gne  # noqa: E402

_, gne_pages = gne.load(f"{data}/extract")
for page, (split, raw, gold) in gne_pages.items():
    site = page.split("/")[0]
    add_boilerplate(f"gne:{page}", raw.decode("utf-8", errors="replace"), gold, f"gne-{site}",
                    "heldout" if split == "held_out" else "dev")

headlines = [l.split("---", 1)[1].strip() for l in open(f"{text_dir}/news/toutiao_ent_headlines.test.txt", encoding="utf-8") if "---" in l]
for k in range(300):
    start = rng.randrange(len(headlines) - 40)
    items = headlines[start:start + rng.randint(8, 30)]
    style = rng.randrange(3)
    out_lines = []
    for h in items:
        if style == 1:
            h = f"{h} {rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        elif style == 2:
            h = f"{h} {rng.randint(0, 999)}评论"
        out_lines.append(h)
    add("link_list", 0, f"headlines{start}", "\n".join(out_lines), "ent.toutiao.com")
for k in range(0, 6000, 6):
    add("headline", 0, f"headline{k}", headlines[k], "ent.toutiao.com")

CITIES = "北京 上海 广州 深圳 杭州 成都 武汉 西安 南京 重庆 天津 苏州 郑州 长沙 东莞 青岛 沈阳 宁波 昆明 合肥".split()
SERVICES = ("装修公司 搬家公司 网站建设 SEO优化 驾校 英语培训 会计培训 空调维修 开锁 保洁 婚纱摄影 月嫂 律师 "
            "二手车 房产中介 代理记账 注册公司 网络推广 小程序开发 除甲醛").split()
import jieba.posseg  # noqa: E402
nouns = []
for h in headlines[:3000]:
    nouns += [p.word for p in jieba.posseg.lcut(h) if p.flag == "n" and len(p.word) >= 2]
TAILS = ["哪家好", "价格", "多少钱", "公司", "电话", "排名", "推荐", "收费标准", "官网", "怎么样", "联系方式", "首选"]
for k in range(400):
    city, svc = rng.choice(CITIES), rng.choice(SERVICES + nouns[:200])
    kw = city + svc
    lines = ["_".join(kw + t for t in rng.sample(TAILS, rng.randint(3, 6)))]
    for _ in range(rng.randint(2, 6)):
        form = rng.randrange(3)
        if form == 0:
            lines.append(f"{kw}，{rng.choice(['我们是', '本公司是', '欢迎来到'])}专业的{kw}，提供{kw}{rng.choice(TAILS)}、"
                         f"{city}{rng.choice(SERVICES)}、{kw}{rng.choice(TAILS)}服务。{kw}{rng.choice(TAILS)}？"
                         f"选择{kw}，{kw}{rng.choice(TAILS)}，就找{kw}！")
        elif form == 1:
            lines.append("热门搜索：" + " ".join(rng.choice(CITIES) + rng.choice(SERVICES) + rng.choice(TAILS)
                                               for _ in range(rng.randint(6, 15))))
        else:
            lines.append(" | ".join(f"{rng.choice(CITIES)}{svc}" for _ in range(rng.randint(5, 12))))
    rng.shuffle(lines[1:])
    add("keyword_spam", 0, f"spam{k}", "\n".join(lines), f"spam{k % 40}.example.cn")

HAN = [chr(c) for c in range(0x4E00, 0x9FA6)]
for i, a in enumerate(news):
    kind = i % 3
    if kind == 0:
        g = a.encode("utf-8").decode("gbk", errors="replace")
    elif kind == 1:
        g = a.encode("gb18030").decode("utf-8", errors="replace")
    else:
        n = len(a)
        g = ""
        while len(g) < n:
            g += "".join(rng.choice(HAN) for _ in range(rng.randint(5, 25))) + rng.choice("，。、；！？")
    add("garbled", 0, f"news{i}", g, f"garbled{i % 40}.example.cn")
    words = []
    out_s = []
    for s in sentences(a):
        w = jieba.lcut(s)
        body = [x for x in w if not re.fullmatch(r"[，。！？；、：]", x)]
        rng.shuffle(body)
        out_s.append("".join(body) + (s[-1] if s[-1] in "。！？；" else "。"))
    add("word_salad", 0, f"news{i}", "".join(out_s), f"spun{i % 40}.example.cn")

cats = sorted(set(rows_csv(f"{text_dir}/reviews/online_shopping_10_cats.part00.csv", "cat")))
BRANDS = "华为 小米 苹果 联想 海尔 美的 格力 蒙牛 伊利 李宁 安踏 优衣库 海飞丝 飘柔 三只松鼠 百草味 良品铺子 当当 中信出版社 人民文学出版社".split()
SPECS = ["8GB+256GB", "12GB+512GB", "1.5匹", "60升", "400ml", "750ml×2瓶", "250ml×12盒", "XL码", "5斤装", "精装版", "14英寸", "套装"]
for k in range(300):
    cat = rng.choice(cats)
    rows = []
    for _ in range(rng.randint(6, 24)):
        b = rng.choice(BRANDS)
        rows.append(f"【{rng.choice(['包邮', '自营', '新品', '热卖'])}】{b}{cat}{rng.choice(['旗舰款', '新款', '经典款', ''])} "
                    f"{rng.choice(SPECS)} ¥{rng.randint(9, 9999)}.{rng.choice(['00', '90', '99'])} "
                    f"月销{rng.randint(1, 99)}{rng.choice(['', '万'])}+ {b}官方旗舰店")
    add("product_list", 0, f"products{k}", "\n".join(rows), f"shop{k % 40}.example.cn")

STOCKS = [s for s in nouns if len(s) in (2, 4)][:300]
for k in range(300):
    kind = k % 3
    rows = []
    if kind == 0:
        rows.append("代码 名称 最新价 涨跌幅 成交量")
        for _ in range(rng.randint(8, 30)):
            rows.append(f"{rng.choice(['60', '00', '30'])}{rng.randint(1000, 9999)} {rng.choice(STOCKS)}"
                        f"{rng.choice(['股份', '科技', '集团', ''])} {rng.uniform(2, 300):.2f} {rng.uniform(-10, 10):+.2f}% "
                        f"{rng.uniform(0.1, 99):.1f}万手")
    elif kind == 1:
        for _ in range(rng.randint(8, 30)):
            nums = sorted(rng.sample(range(1, 34), 6))
            rows.append(f"第{rng.randint(2015, 2025)}{rng.randint(1, 150):03d}期 " + " ".join(f"{n:02d}" for n in nums)
                        + f" + {rng.randint(1, 16):02d} 开奖日期 {rng.randint(2015, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
    else:
        rows.append("排名 球队 场次 胜 平 负 进球 失球 积分")
        for r in range(1, rng.randint(10, 20)):
            w, d, l = rng.randint(0, 20), rng.randint(0, 10), rng.randint(0, 15)
            rows.append(f"{r} {rng.choice(CITIES)}{rng.choice(['队', '俱乐部', 'FC'])} {w + d + l} {w} {d} {l} "
                        f"{rng.randint(10, 60)} {rng.randint(10, 60)} {3 * w + d}")
    add("number_table", 0, f"table{k}", "\n".join(rows), f"data{k % 40}.example.cn")

# ---- length-matched good text: one cut per junk document, from good text of the same part
good_by_part = {"dev": [], "heldout": []}
for d in docs:
    if d["genre"] in ("news_paragraphs", "encyclopedia", "technical"):
        good_by_part[d["part"]].append(d)
junk = [d for d in docs if d["label"] == 0]
for j, d in enumerate(junk):
    want = len(d["text"])
    src = rng.choice(good_by_part[d["part"]])
    # manual pages: their prose lines only (a run of menu or code lines is not good text)
    body = src["text"] if src["genre"] != "technical" else "\n".join(
        x for x in src["text"].splitlines() if len(x) >= 30 and re.search(r"[。！？]$", x.strip()))
    # whole sentences, a line break after each line's last, so a cut keeps its paragraphs
    ss = []
    for line in body.splitlines():
        parts = sentences(line) or [line]
        ss += parts[:-1] + [parts[-1] + "\n"]
    start = rng.randrange(len(ss))
    cut = ""
    for s in ss[start:] + ss[:start]:
        if len(cut) >= want:
            break
        cut += s
    cut = cut.strip()
    # the cut keeps the part of the text it came from
    # its own host: cuts of one article must not make its lines recur on the article's host
    docs.append({"genre": "good_short", "label": 1, "part": d["part"], "origin": src["origin"], "text": cut,
                 "source": f"excerpt{j % 40}.example.cn"})

# a manual's index page is its table of contents: navigation, not an article. Its prose lines
# still feed the cuts above, and the page stays out of the set (dropped after the cuts are made,
# so every other document keeps its part and its cut)
docs = [d for d in docs if not (d["genre"] == "technical" and d["origin"].startswith("manual:index."))]

os.makedirs(out, exist_ok=True)
counts = {}
with open(f"{out}/quality_set.jsonl", "w", encoding="utf-8") as f:
    for n, d in enumerate(docs):
        key = (d["genre"], d["part"])
        counts[key] = counts.get(key, 0) + 1
        d["id"] = f"{d['genre']}.{d['part']}.{n}"
        f.write(json.dumps(d, ensure_ascii=False) + "\n")
print(json.dumps({f"{g}/{p}": c for (g, p), c in sorted(counts.items())}))
