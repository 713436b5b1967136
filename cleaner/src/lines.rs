//! Line-level cleanup before the document rules: lines that recur across many documents of one
//! host (copyright lines, "责任编辑：", share prompts) are dropped, as C4 and CCNet drop lines
//! by their hashes; so are short lines carrying a boilerplate phrase, as C4 drops lines with
//! "javascript" or "cookie policy".

use std::collections::{HashMap, HashSet};

use xxhash_rust::xxh3::xxh3_64;

/// Phrases that mark a short line as page furniture rather than text.
pub const BOILERPLATE_PHRASES: &[&str] = &[
    "责任编辑",
    "版权所有",
    "转载请注明",
    "未经授权",
    "本文来源",
    "分享到",
    "扫一扫",
    "扫描二维码",
    "关注我们",
    "关注公众号",
    "点击查看",
    "点击进入",
    "上一篇",
    "下一篇",
    "返回首页",
    "免责声明",
    "网站地图",
    "联系我们",
    "copyright",
    "all rights reserved",
    "javascript",
    "cookie",
    "©",
];

/// Lines longer than this are never dropped for a phrase: a phrase inside a long paragraph is
/// text, not furniture.
const PHRASE_LINE_MAX_CHARS: usize = 40;

/// A line opening with one of these is a site's notice, whatever its length (up to
/// [`NOTICE_LINE_MAX_CHARS`]), as C4 drops every line that mentions terms of use or a
/// privacy policy: "版权声明：本站是托管服务提供商，如本文牵涉版权问题……".
const NOTICE_PREFIXES: &[&str] = &[
    "版权声明",
    "免责声明",
    "郑重声明",
    "特别声明",
    "法律声明",
    "本站声明",
    "本网声明",
];

/// Phrases that make a line a notice wherever they stand in it.
const NOTICE_PHRASES: &[&str] = &[
    "不代表本站观点",
    "不代表本网观点",
    "不代表本网站观点",
    "仅代表作者本人观点",
    "仅代表作者个人观点",
    "本站仅提供信息存储空间服务",
];

/// Longer lines are paragraphs that happen to open with a notice word, not notices.
const NOTICE_LINE_MAX_CHARS: usize = 200;

/// Whether `line` is a site's notice (copyright, disclaimer, "does not represent our views").
fn is_notice(line: &str) -> bool {
    let start = line.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, '【' | '[' | '(' | '（' | '★' | '※' | '*')
    });
    line.chars().nth(NOTICE_LINE_MAX_CHARS).is_none()
        && (NOTICE_PREFIXES.iter().any(|p| start.starts_with(p))
            || NOTICE_PHRASES.iter().any(|p| line.contains(p)))
}

/// The line key: whitespace and case ignored.
fn line_key(line: &str) -> u64 {
    let folded: String = line
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    xxh3_64(folded.as_bytes())
}

/// The first bytes of a line-count file (its layout's version in the last).
const COUNTS_MAGIC: &[u8; 8] = b"ZHLINES2";

/// How often each line occurs across the documents of each host; built in a first pass.
#[derive(Debug, Default)]
pub struct LineCounts {
    /// (host hash, line hash) → documents holding the line
    counts: HashMap<(u64, u64), u32>,
    docs_per_host: HashMap<u64, u32>,
    /// Entries forgotten to stay under the bound: while 0, every count is exact.
    forgotten: u64,
}

impl LineCounts {
    /// Counts the lines of one document of `host` (each line once per document).
    pub fn add(&mut self, host: &str, text: &str) {
        let h = xxh3_64(host.as_bytes());
        *self.docs_per_host.entry(h).or_default() += 1;
        let mut seen = HashSet::new();
        for line in text.lines() {
            let k = line_key(line);
            if seen.insert(k) {
                *self.counts.entry((h, k)).or_default() += 1;
            }
        }
    }

    /// Merges counts made in parallel.
    pub fn merge(&mut self, other: LineCounts) {
        for (k, n) in other.counts {
            *self.counts.entry(k).or_default() += n;
        }
        for (k, n) in other.docs_per_host {
            *self.docs_per_host.entry(k).or_default() += n;
        }
        self.forgotten += other.forgotten;
    }

    /// Entries forgotten to stay under the bound (0: every count is exact).
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Keeps memory bounded: past `max_entries` distinct lines, the lines seen in one document
    /// only are forgotten (lossy counting: a line can then be undercounted by the documents
    /// seen before it was forgotten, so a rare footer may survive; a frequent one does not).
    pub fn bound(&mut self, max_entries: usize) {
        self.make_room(max_entries, &LineCounts::default());
    }

    /// Makes room for `incoming` before it is merged, so that the table never holds more than
    /// `max_entries` (unless the batch alone takes more than half of them): past that, the
    /// lines seen in one document only are forgotten, then the rarest, until half the room is
    /// free, but never a line the batch holds (its count is about to grow). The table is then
    /// rebuilt: forgotten entries leave tombstones that it would otherwise clear by doubling
    /// once more than half full.
    pub fn make_room(&mut self, max_entries: usize, incoming: &LineCounts) {
        // room for the entries the table does not hold yet: counts of lines it holds only grow
        let new = incoming
            .counts
            .keys()
            .filter(|k| !self.counts.contains_key(k))
            .count();
        let limit = max_entries.saturating_sub(new).max(max_entries / 2);
        if self.counts.len() <= limit {
            return;
        }
        let held = |k: &(u64, u64)| incoming.counts.contains_key(k);
        // one bar from the histogram of the counts the batch does not hold: at least the lines
        // seen once, then the rarest until at most half the room is taken
        let target = limit / 2;
        let mut by_count: std::collections::BTreeMap<u32, usize> = Default::default();
        let mut kept_anyway = 0;
        for (k, &n) in &self.counts {
            if held(k) {
                kept_anyway += 1;
            } else {
                *by_count.entry(n).or_default() += 1;
            }
        }
        let mut above: usize = by_count.values().sum();
        let mut bar = 1;
        for (&n, &entries) in &by_count {
            if n > 1 && kept_anyway + above <= target {
                break;
            }
            above -= entries;
            bar = n;
        }
        let before = self.counts.len();
        self.counts.retain(|k, n| *n > bar || held(k));
        self.forgotten += (before - self.counts.len()) as u64;
        self.counts.shrink_to_fit();
    }

    /// Entries the table has room for before it grows.
    pub fn capacity(&self) -> usize {
        self.counts.capacity()
    }

    /// Distinct (host, line) entries held.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Writes the counts in this build's binary layout (little-endian: a magic, the number of
    /// entries, then each host and line hash with its count; the same for the documents per
    /// host), for another task to read with [`LineCounts::read_from`].
    pub fn write_to(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        w.write_all(COUNTS_MAGIC)?;
        w.write_all(&(self.counts.len() as u64).to_le_bytes())?;
        for (&(h, k), &n) in &self.counts {
            w.write_all(&h.to_le_bytes())?;
            w.write_all(&k.to_le_bytes())?;
            w.write_all(&n.to_le_bytes())?;
        }
        w.write_all(&(self.docs_per_host.len() as u64).to_le_bytes())?;
        for (&h, &n) in &self.docs_per_host {
            w.write_all(&h.to_le_bytes())?;
            w.write_all(&n.to_le_bytes())?;
        }
        w.write_all(&self.forgotten.to_le_bytes())
    }

    /// Reads counts [`LineCounts::write_to`] wrote; a file of another layout is
    /// `InvalidData`.
    pub fn read_from(r: &mut impl std::io::Read) -> std::io::Result<LineCounts> {
        fn bytes<const N: usize>(r: &mut impl std::io::Read) -> std::io::Result<[u8; N]> {
            let mut b = [0; N];
            r.read_exact(&mut b)?;
            Ok(b)
        }
        if &bytes::<8>(r)? != COUNTS_MAGIC {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a line-count file of this zhcorpus",
            ));
        }
        let n = u64::from_le_bytes(bytes(r)?) as usize;
        let mut counts = HashMap::with_capacity(n.min(1 << 24));
        for _ in 0..n {
            let h = u64::from_le_bytes(bytes(r)?);
            let k = u64::from_le_bytes(bytes(r)?);
            counts.insert((h, k), u32::from_le_bytes(bytes(r)?));
        }
        let n = u64::from_le_bytes(bytes(r)?) as usize;
        let mut docs_per_host = HashMap::with_capacity(n.min(1 << 24));
        for _ in 0..n {
            let h = u64::from_le_bytes(bytes(r)?);
            docs_per_host.insert(h, u32::from_le_bytes(bytes(r)?));
        }
        let forgotten = u64::from_le_bytes(bytes(r)?);
        Ok(LineCounts {
            counts,
            docs_per_host,
            forgotten,
        })
    }

    /// Drops the entries that can never reach `min_docs`, to free memory before the second pass.
    pub fn prune(&mut self, min_docs: u32) {
        self.counts.retain(|_, n| *n >= min_docs);
    }

    fn documents_with(&self, host: u64, line: &str) -> u32 {
        self.counts
            .get(&(host, line_key(line)))
            .copied()
            .unwrap_or(0)
    }
}

/// What line cleanup removed from one document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinesDropped {
    /// Lines recurring across the host's documents.
    pub recurring: u32,
    /// Short lines with a boilerplate phrase.
    pub phrase: u32,
    /// Sentences repeating an earlier sentence of the same document.
    pub repeated_sentences: u32,
}

/// A sentence shorter than this (blanks not counted) is never dropped as a repeat: "是的。"
/// may well occur twice in good text.
const REPEAT_MIN_CHARS: usize = 15;

/// Drops every full sentence (ending in terminal punctuation, at least 15 characters) that
/// repeats an earlier sentence of the same document, and the lines left empty. Dumps and
/// scrapes often hold an article twice, its paragraphs joined into one line (THUCNews has
/// about 3% of such articles): the copy goes and the article stays, where Gopher's repetition
/// rules would drop the whole document. Unfinished pieces (a byline, a menu) are left for the
/// line and repetition rules to judge.
pub fn drop_repeated_sentences(text: &str) -> (String, u32) {
    let mut seen = HashSet::new();
    let mut dropped = 0u32;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut kept = String::new();
        for s in crate::rules::sentences(line) {
            let key: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            let full = s.trim_end().ends_with(crate::rules::TERMINAL);
            if full
                && key.chars().count() >= REPEAT_MIN_CHARS
                && !seen.insert(xxh3_64(key.as_bytes()))
            {
                dropped += 1;
                continue;
            }
            kept.push_str(s);
        }
        let kept = kept.trim();
        if kept.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(kept);
    }
    if dropped == 0 {
        return (text.to_string(), 0);
    }
    (out, dropped)
}

/// Drops boilerplate lines from `text`. A line is recurring when at least `min_docs`
/// documents of the host hold it; with `phrases`, short lines holding one of them and
/// notices of any length (up to 200 characters) go too.
pub fn drop_lines(
    text: &str,
    host: &str,
    counts: Option<&LineCounts>,
    min_docs: u32,
    phrases: Option<&aho_corasick::AhoCorasick>,
) -> (String, LinesDropped) {
    let h = xxh3_64(host.as_bytes());
    let mut dropped = LinesDropped::default();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if counts.is_some_and(|c| c.documents_with(h, line) >= min_docs) {
            dropped.recurring += 1;
            continue;
        }
        let phrase = phrases.is_some_and(|p| {
            (line.chars().count() <= PHRASE_LINE_MAX_CHARS && p.is_match(&line.to_lowercase()))
                || is_notice(line)
        });
        if phrase {
            dropped.phrase += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    (out, dropped)
}
