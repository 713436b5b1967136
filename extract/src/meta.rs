//! Title and author: from meta tags and JSON-LD first, then from the headings and the byline
//! around the article. The date has its own module, [`crate::date`].

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::blocks::Page;

static AUTHOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:作者|记者|撰文|文/|文：)\s*[:：]?\s*([\p{Han}·]{2,8}|[A-Za-z][A-Za-z .]{1,20})")
        .expect("valid regex")
});

/// Words that follow `记者` or `作者` in a sentence but are no name: `记者获悉`, `原作者女儿`.
const NOT_NAMES: &[&str] = &[
    "获悉", "了解", "表示", "发现", "注意", "看到", "采访", "调查", "走访", "来到", "从", "在",
    "对", "向", "近日", "日前", "昨日", "今日", "今天", "昨天", "女儿", "儿子", "父亲", "母亲",
    "妈妈", "爸爸", "本人", "朋友", "团队", "介绍", "说", "称", "问", "注", "们", "会", "站",
];

/// Media outlets whose names have none of the endings in [`OUTLET_ENDS`].
const OUTLETS: &[&str] = &[
    "参考消息",
    "新华社",
    "中新社",
    "网易",
    "新浪",
    "腾讯",
    "搜狐",
    "凤凰",
    "财新",
    "今日头条",
    "本报",
    "本网",
    "本台",
    "本站",
    "本刊",
];

/// Endings of media outlets' names (`新京报`, `中国新闻网`, `央视新闻`, `南方周刊`). `社` and
/// `台` alone are given names too (`王建社`), so only their outlets' words count.
const OUTLET_ENDS: &[&str] = &[
    "报",
    "网",
    "新闻",
    "周刊",
    "杂志",
    "传媒",
    "集团",
    "频道",
    "客户端",
    "通讯社",
    "新华社",
    "中新社",
    "出版社",
    "杂志社",
    "报社",
    "电视台",
    "电台",
    "广播台",
    "卫视",
];

/// Whether `name` names a media outlet, a source rather than an author: one of [`OUTLETS`], or
/// three or more characters ending as in [`OUTLET_ENDS`] (two-character names are people's:
/// `李网` is rare, but no outlet is that short).
fn is_outlet(name: &str) -> bool {
    let n = name.trim();
    OUTLETS.contains(&n) || (n.chars().count() >= 3 && OUTLET_ENDS.iter().any(|e| n.ends_with(e)))
}

/// What follows a name in a byline: `记者李四报道`, `张三摄`.
const NAME_ENDS: &[&str] = &[
    "报道", "摄影", "整理", "编译", "发自", "综合", "摄", "报", "讯",
];

const AUTHOR_META: &[&str] = &["author", "article:author", "dc.creator", "byl"];

fn meta_value<'a>(page: &'a Page, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| {
        page.meta
            .iter()
            .find(|(name, v)| name == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    })
}

/// Values of `key` anywhere in the page's JSON-LD.
pub(crate) fn json_ld(page: &Page, key: &str) -> Option<String> {
    fn search(v: &Value, key: &str, depth: usize) -> Option<String> {
        if depth > 16 {
            return None;
        }
        match v {
            Value::Object(map) => {
                if let Some(found) = map.get(key) {
                    match found {
                        Value::String(s) if !s.trim().is_empty() => return Some(s.clone()),
                        Value::Object(o) => {
                            if let Some(Value::String(s)) = o.get("name") {
                                return Some(s.clone());
                            }
                        }
                        Value::Array(a) => {
                            if let Some(s) = a.iter().find_map(search_name) {
                                return Some(s);
                            }
                        }
                        _ => {}
                    }
                }
                map.values().find_map(|x| search(x, key, depth + 1))
            }
            Value::Array(a) => a.iter().find_map(|x| search(x, key, depth + 1)),
            _ => None,
        }
    }
    fn search_name(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    }
    page.json_ld.iter().find_map(|text| {
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| search(&v, key, 0))
    })
}

/// The site's own names: `og:site_name`, `application-name`, and the parts of the `<title>`
/// beside its longest one (`标题_新浪财经_新浪网`).
fn site_names(page: &Page) -> Vec<String> {
    let mut names: Vec<String> = page
        .meta
        .iter()
        .filter(|(k, v)| {
            matches!(
                k.as_str(),
                "og:site_name" | "application-name" | "site_name"
            ) && !v.is_empty()
        })
        .map(|(_, v)| v.clone())
        .collect();
    if let Some(t) = page.title.as_deref() {
        let parts = title_parts(t);
        let longest = parts.iter().map(|p| p.chars().count()).max().unwrap_or(0);
        let mut skipped = false;
        for p in parts {
            if p.chars().count() == longest && !skipped {
                skipped = true;
            } else if p.chars().count() >= 2 {
                names.push(p.to_string());
            }
        }
        if let Some((_, tail)) = t.rsplit_once('-') {
            let tail = tail.trim();
            if (2..=16).contains(&tail.chars().count()) {
                names.push(tail.to_string());
            }
        }
    }
    names
}

/// A `<title>` cut at the separators sites put between the article's title and their names.
fn title_parts(t: &str) -> Vec<&str> {
    t.split(['_', '|', '－', '—'])
        .flat_map(|p| p.split(" - "))
        .flat_map(|p| p.split("--"))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// A title without the site's name: the longest part between separators, then a short tail
/// after a bare `-` that is a site name or holds Chinese (`标题-新华网`, `标题-EDN 电子技术设计`)
/// and not a number (`COVID-19` keeps its number).
fn strip_site(t: &str, sites: &[String]) -> String {
    let parts = title_parts(t);
    let mut core = parts
        .iter()
        .copied()
        .max_by_key(|p| p.chars().count())
        .unwrap_or(t)
        .to_string();
    if let Some((head, tail)) = core.rsplit_once('-') {
        let (head, tail) = (head.trim(), tail.trim());
        let tail_len = tail.chars().count();
        let is_site = sites.iter().any(|s| s == tail)
            || tail.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        if is_site && tail_len <= 16 && head.chars().count() > tail_len.max(2) {
            core = head.to_string();
        }
    }
    core
}

/// The page's title: the first `<h1>` that the `<title>` contains (the title usually adds the
/// site's name), else another heading before the article that the `<title>` contains, else
/// `og:title` or JSON-LD `headline`, else the `<title>` without its site's name; when that is
/// shown in no heading and a heading sits just before the article (`start`, a block index),
/// the `<title>` names the site or a section and the heading is the article's.
pub(crate) fn title(page: &Page, main: Option<usize>, start: usize) -> Option<String> {
    let title = page.title.as_deref().filter(|t| !t.is_empty());
    let sites = site_names(page);
    let h1 = |in_title: bool| {
        page.h1.iter().find(|(node, h)| {
            (!in_title || title.is_some_and(|t| t.contains(h.as_str())))
                && main.is_none_or(|m| {
                    crate::content::within(page, *node, m) || h.chars().count() >= 4
                })
        })
    };
    if let Some((_, h)) = h1(true) {
        return Some(h.clone());
    }
    // headings up to a dozen blocks before the article's first line
    let before = page
        .headings
        .iter()
        .filter(|(node, at, h)| {
            *at <= start
                && *at + 12 >= start
                && h.chars().count() >= 6
                && !crate::content::in_boilerplate(page, *node)
        })
        .map(|(_, _, h)| h.as_str());
    if let Some(t) = title
        && let Some(h) = before.clone().find(|h| t.contains(h))
    {
        return Some(h.to_string());
    }
    if let Some(t) = meta_value(page, &["og:title", "twitter:title"]) {
        return Some(strip_site(t, &sites));
    }
    if let Some(t) = json_ld(page, "headline") {
        return Some(t);
    }
    if let Some(t) = title {
        let core = strip_site(t, &sites);
        let shown = page
            .h1
            .iter()
            .map(|(_, h)| h)
            .chain(page.headings.iter().map(|(_, _, h)| h))
            .any(|h| h.contains(core.as_str()));
        if !shown && let Some(h) = before.clone().next_back() {
            return Some(h.to_string());
        }
        return Some(core);
    }
    h1(false).map(|(_, h)| h.clone())
}

/// The author: meta tags, JSON-LD, or a byline such as `作者：张三` near the article; each
/// only when it reads as a name (see [`as_name`]).
pub(crate) fn author(page: &Page, near: &[&str]) -> Option<String> {
    let sites = site_names(page);
    let from_meta = AUTHOR_META.iter().find_map(|k| {
        page.meta
            .iter()
            .filter(|(name, _)| name == k)
            .find_map(|(_, v)| as_name(v, &sites))
    });
    if from_meta.is_some() {
        return from_meta;
    }
    if let Some(a) = json_ld(page, "author").and_then(|a| as_name(&a, &sites)) {
        return Some(a);
    }
    near.iter().find_map(|t| {
        AUTHOR.captures_iter(t).find_map(|c| {
            let mut name = c.get(1)?.as_str().trim();
            // before cutting `报道` or `报` off a name: `文/新京报` names an outlet
            if is_outlet(name) {
                return None;
            }
            for end in NAME_ENDS {
                if let Some(n) = name.strip_suffix(end) {
                    name = n;
                }
            }
            let han = name.chars().filter(|c| !c.is_ascii()).count();
            if han > 0 && !(2..=4).contains(&name.chars().filter(|&c| c != '·').count()) {
                return None;
            }
            if NOT_NAMES.iter().any(|w| name.starts_with(w)) {
                return None;
            }
            as_name(name, &sites)
        })
    })
}

/// `value` when it can be a person's or an author's name: not empty, at most 30 characters, no
/// e-mail address, link or digit (a template's `name, email@gmail.com`, a user number such as
/// `104363`), not the site's own name (`网易` on `标题_网易新闻`), and naming no media outlet
/// (`参考消息`, `新京报`, `www.example.cn,某某日报报业集团`: see [`is_outlet`]).
fn as_name(value: &str, sites: &[String]) -> Option<String> {
    let v = value.trim();
    if v.split([',', '，', '、', '/', ' ']).any(is_outlet) {
        return None;
    }
    let len = v.chars().count();
    if len == 0 || len > 30 || v.contains('@') || v.contains("http") {
        return None;
    }
    if v.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    if sites
        .iter()
        .any(|s| s.contains(v) || (s.chars().count() >= 2 && v.contains(s.as_str())))
    {
        return None;
    }
    Some(v.to_string())
}
