//! Title, author and publication date: from meta tags and JSON-LD first, then from the text
//! around the article (Chinese date patterns such as `2023年5月1日 08:30`).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::blocks::Page;

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"((?:19|20)\d{2})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*日?(?:[T\s]*(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2}))?)?",
    )
    .expect("valid regex")
});

static AUTHOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:作者|记者|撰文|文/|文：)\s*[:：]?\s*([\p{Han}A-Za-z·]{2,12})")
        .expect("valid regex")
});

const DATE_META: &[&str] = &[
    "article:published_time",
    "og:published_time",
    "og:release_date",
    "datepublished",
    "publishdate",
    "publish_date",
    "publish-date",
    "pubdate",
    "pubtime",
    "dc.date.issued",
    "dc.date",
    "date",
    "sailthru.date",
];

const AUTHOR_META: &[&str] = &["author", "article:author", "dc.creator", "byl"];

/// The first date in `text`, normalised to `YYYY-MM-DD`, with ` HH:MM` or ` HH:MM:SS` when a
/// time follows it.
pub fn find_date(text: &str) -> Option<String> {
    DATE.captures_iter(text).find_map(|c| {
        let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
        let (y, m, d) = (num(1)?, num(2)?, num(3)?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        let mut out = format!("{y:04}-{m:02}-{d:02}");
        if let (Some(h), Some(min)) = (num(4), num(5))
            && h < 24
            && min < 60
        {
            out.push_str(&format!(" {h:02}:{min:02}"));
            if let Some(s) = num(6).filter(|s| *s < 60) {
                out.push_str(&format!(":{s:02}"));
            }
        }
        Some(out)
    })
}

fn meta_value<'a>(page: &'a Page, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| {
        page.meta
            .iter()
            .find(|(name, v)| name == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    })
}

/// Values of `key` anywhere in the page's JSON-LD.
fn json_ld(page: &Page, key: &str) -> Option<String> {
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

/// The page's title: the first `<h1>` that the `<title>` contains (the title usually adds the
/// site's name), else `og:title` or JSON-LD `headline`, else the `<title>` without its site
/// suffix.
pub(crate) fn title(page: &Page, main: Option<usize>) -> Option<String> {
    let title = page.title.as_deref().filter(|t| !t.is_empty());
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
    if let Some(t) = meta_value(page, &["og:title", "twitter:title"]) {
        return Some(t.to_string());
    }
    if let Some(t) = json_ld(page, "headline") {
        return Some(t);
    }
    if let Some(t) = title {
        // "标题_新浪网", "标题 - 搜狐", "标题|某某论坛": keep the longest part
        let parts = t.split(['_', '|', '－', '—']).flat_map(|p| p.split(" - "));
        return parts
            .map(str::trim)
            .max_by_key(|p| p.chars().count())
            .map(str::to_string);
    }
    h1(false).map(|(_, h)| h.clone())
}

/// The publication date: meta tags, `<time datetime>`, JSON-LD, then the first date in the
/// text near the start of the article, then anywhere on the page.
pub(crate) fn published(page: &Page, near: &[&str], all: &[&str]) -> Option<String> {
    let from_meta = meta_value(page, DATE_META)
        .map(str::to_string)
        .or_else(|| page.times.first().cloned())
        .or_else(|| json_ld(page, "datePublished"));
    if let Some(d) = from_meta.as_deref().and_then(find_date) {
        return Some(d);
    }
    near.iter().chain(all.iter()).find_map(|t| find_date(t))
}

/// The author: meta tags, JSON-LD, or a byline such as `作者：张三` near the article.
pub(crate) fn author(page: &Page, near: &[&str]) -> Option<String> {
    if let Some(a) = meta_value(page, AUTHOR_META) {
        return Some(a.to_string());
    }
    if let Some(a) = json_ld(page, "author") {
        return Some(a);
    }
    near.iter().find_map(|t| {
        AUTHOR
            .captures(t)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::find_date;

    #[test]
    fn dates() {
        let cases = [
            ("发布时间：2023年5月1日 08:30", Some("2023-05-01 08:30")),
            ("2005-07-31 12:30 来源：新华网", Some("2005-07-31 12:30")),
            ("2022-02-13 20:04:17", Some("2022-02-13 20:04:17")),
            ("2004/12/10", Some("2004-12-10")),
            ("2006年12月27日", Some("2006-12-27")),
            ("2019.3.8", Some("2019-03-08")),
            ("电话 2023-13-01 或 2023-02-40", None),
            ("2023年2月3日20时15分", Some("2023-02-03 20:15")),
            ("没有日期", None),
            ("2021-04-05T10:11:12+08:00", Some("2021-04-05 10:11:12")),
        ];
        for (text, want) in cases {
            assert_eq!(find_date(text).as_deref(), want, "{text}");
        }
    }
}
