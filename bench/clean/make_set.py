"""Builds the cleaning benchmark's input from the real text in ../shared/data/text: one JSONL
document per review, post, headline, article, paragraph, poem or manual page, with its genre as
`source`. Also writes the Tang poems for the traditional to simplified check (the classifier's
labelled set is make_quality_set.py's).

usage: make_set.py DATA_TEXT_DIR OUT_DIR
"""
import json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from textsrc import page_text, rows_csv  # noqa: E402

text_dir, out = sys.argv[1], sys.argv[2]


genres = {}
genres["reviews"] = list(rows_csv(f"{text_dir}/reviews/waimai_10k.csv", "review"))[:3000] \
    + list(rows_csv(f"{text_dir}/reviews/ChnSentiCorp_htl_all.csv", "review"))[:3000] \
    + list(rows_csv(f"{text_dir}/reviews/online_shopping_10_cats.part00.csv", "review"))[:3000]
genres["weibo"] = list(rows_csv(f"{text_dir}/social/weibo_senti_100k_subset.csv", "review"))
genres["news"] = [l.split("\t", 1)[1].strip() for l in open(f"{text_dir}/news/thucnews_dev.tsv", encoding="utf-8") if "\t" in l]
genres["headlines"] = [l.split("---", 1)[1].strip() for l in open(f"{text_dir}/news/toutiao_ent_headlines.test.txt", encoding="utf-8") if "---" in l][:5000]
seen = set()
genres["encyclopedia"] = []
for l in open(f"{text_dir}/encyclopedia/cmrc2018_wiki_contexts_with_repeats.jsonl", encoding="utf-8"):
    c = json.loads(l)["context"]
    if c not in seen:
        seen.add(c)
        genres["encyclopedia"].append(c)
genres["poetry"] = [json.loads(l)["text"] for l in open(f"{text_dir}/literature/songci_simplified.part00.jsonl", encoding="utf-8")][:3000]
tang = [json.loads(l) for l in open(f"{text_dir}/literature/quantangshi_traditional_part.part00.jsonl", encoding="utf-8")]
genres["tang_traditional"] = [p["text"] for p in tang[:3000]]
genres["technical_html"] = []
for name in ("maint-guide-zh-cn.html.jsonl", "debian-faq-zh-cn.html.jsonl", "debian-reference-zh-cn.html.part00.jsonl"):
    for l in open(f"{text_dir}/technical/{name}", encoding="utf-8"):
        genres["technical_html"].append(page_text(json.loads(l)["html"]))

os.makedirs(out, exist_ok=True)
with open(f"{out}/all.jsonl", "w", encoding="utf-8") as f:
    for g, texts in genres.items():
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"{g}-{i}", "text": t, "source": g}, ensure_ascii=False) + "\n")
with open(f"{out}/tang.jsonl", "w", encoding="utf-8") as f:
    for i, p in enumerate(tang):
        f.write(json.dumps({"id": f"tang-{i}", "text": p["text"]}, ensure_ascii=False) + "\n")
print(json.dumps({g: len(t) for g, t in genres.items()}))
