//! The publication date, checked against the page: the date a reader sees in the byline near
//! the headline decides, and metadata dates (meta tags, JSON-LD, `<time datetime>`) are kept
//! only when they agree with it or when the page shows none.
//!
//! Metadata is often another date: the crawl, the last modification, a template's default
//! (`1970-01-01`). Visible text holds other dates too: copyright lines (`© 2005-2020`), the
//! dates of related stories, a portal's "today is" bar. So a date counts as the byline's only
//! when it sits in a line of the page's own text (not mostly link text, not a copyright line,
//! not an item of a list of records, not after `更新`) among the dozen blocks before the
//! article's first line, nearest first, or in its first three lines.

use std::sync::LazyLock;

use regex::Regex;

use crate::blocks::{Block, Page};

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"((?:19|20)\d{2})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*日?(?:[T\s]*(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2}))?)?",
    )
    .expect("valid regex")
});

/// Meta tags that name the publication date, most specific first.
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

/// Earliest year taken as a publication date: before it a date is a template's default
/// (`1970-01-01`) or a historical date the article mentions, not the day a web page appeared.
const MIN_YEAR: u32 = 1990;

/// Blocks before the article's first line searched for the byline, and lines of the article.
const BYLINE_BEFORE: usize = 12;
const BYLINE_INSIDE: usize = 3;

/// Words that mark a copyright or registration line, whose dates are no article's.
const COPYRIGHT: &[&str] = &["©", "copyright", "版权", "all rights reserved", "icp"];

/// Words just before a date that make it the last modification's.
const UPDATED: &[&str] = &["更新", "修改", "修订", "update", "modified"];

/// The first date in `text`, normalised to `YYYY-MM-DD`, with ` HH:MM` or ` HH:MM:SS` when a
/// time follows it.
pub fn find_date(text: &str) -> Option<String> {
    dates(text).next()
}

/// Every date in `text`, normalised as by [`find_date`].
fn dates(text: &str) -> impl Iterator<Item = String> + '_ {
    DATE.captures_iter(text).filter_map(|c| {
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

/// The first date in `text` that can be a web page's publication date (from [`MIN_YEAR`] on).
fn plausible_date(text: &str) -> Option<String> {
    dates(text).find(|d| d[..4].parse::<u32>().is_ok_and(|y| y >= MIN_YEAR))
}

fn day(date: &str) -> &str {
    date.get(..10).unwrap_or(date)
}

/// Whether a block's text is the page's own: not mostly link text and not a list item with a
/// link (a related story's headline and date), not a copyright or registration line.
fn own_text(page: &Page, b: &Block) -> bool {
    if b.link_chars * 2 > b.chars {
        return false;
    }
    let tag = page.kinds.get(b.owner).and_then(|k| k.split('.').next());
    if b.link_chars > 0 && matches!(tag, Some("li" | "dd" | "dt")) {
        return false;
    }
    // the words are ASCII or Han: ASCII case folding finds them
    let lower = b.text.to_ascii_lowercase();
    !COPYRIGHT.iter().any(|w| lower.contains(w))
}

/// The first date in a byline line that is not an update (`最后更新: 2019-09-07 15:14`).
fn byline_date(text: &str) -> Option<String> {
    DATE.find_iter(text).find_map(|m| {
        let head = &text[..m.start()];
        let from = head.char_indices().rev().nth(7).map_or(0, |(i, _)| i);
        let before = head[from..].to_ascii_lowercase();
        if UPDATED.iter().any(|w| before.contains(w)) {
            return None;
        }
        plausible_date(m.as_str())
    })
}

/// The date shown in the byline: the nearest dated line before the article's first line, else
/// one of the lines up to its third (`kept`: the article's blocks). A line with a full stop is
/// prose, and its dates are what the article tells of (`2001年1月1日的事。`). Bylines often sit
/// in elements marked as boilerplate (a share bar, an `aside`, a `post-footer`), so only the
/// marks of lists of records count here: a related story's date is no byline.
fn byline(page: &Page, kept: &[usize]) -> Option<String> {
    let start = kept.first().copied().unwrap_or(0).min(page.blocks.len());
    let before = page.blocks[start.saturating_sub(BYLINE_BEFORE)..start]
        .iter()
        .rev();
    // the article's first lines and what lies between them (a byline the trim left out)
    let end = kept
        .get(BYLINE_INSIDE - 1)
        .or(kept.last())
        .map_or(start, |&i| (i + 1).min(page.blocks.len()));
    let inside = page.blocks[start..end.max(start)].iter();
    before
        .chain(inside)
        .filter(|b| !b.text.contains(['。', '！', '？']))
        .filter(|b| own_text(page, b) && !crate::content::in_records(page, b.owner))
        .find_map(|b| byline_date(&b.text))
}

/// Dates the page's metadata gives for its publication: the meta tags of [`DATE_META`] and
/// JSON-LD `datePublished`, each when it reads as a plausible date.
fn meta_dates(page: &Page) -> Vec<String> {
    let tags = DATE_META.iter().flat_map(|k| {
        page.meta
            .iter()
            .filter(move |(name, _)| name == k)
            .map(|(_, v)| v.clone())
    });
    tags.chain(crate::meta::json_ld(page, "datePublished"))
        .filter_map(|v| plausible_date(&v))
        .collect()
}

/// The publication date (see the module documentation). With a byline date, a metadata date
/// is used only when it names the same day (it may add the time); without one, the earliest
/// metadata date (publication comes before modification and crawling), else a `<time
/// datetime>` outside boilerplate, else the first date shown anywhere on the page.
pub(crate) fn published(page: &Page, kept: &[usize]) -> Option<String> {
    let meta = meta_dates(page);
    let times = || {
        page.times
            .iter()
            .filter(|(owner, _)| !crate::content::in_boilerplate(page, *owner))
            .filter_map(|(_, v)| plausible_date(v))
    };
    if let Some(shown) = byline(page, kept) {
        let agreeing = meta
            .iter()
            .cloned()
            .chain(times())
            .filter(|m| day(m) == day(&shown))
            .max_by_key(String::len);
        return Some(match agreeing {
            Some(m) if m.len() >= shown.len() => m,
            _ => shown,
        });
    }
    if let Some(m) = meta.iter().min_by(|a, b| day(a).cmp(day(b))) {
        return Some(m.clone());
    }
    if let Some(t) = times().next() {
        return Some(t);
    }
    page.blocks
        .iter()
        .filter(|b| !b.boiler && own_text(page, b))
        .find_map(|b| plausible_date(&b.text))
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
