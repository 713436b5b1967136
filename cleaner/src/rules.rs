//! Document-level quality rules: each measures one value of the cleaned text and compares it
//! with its threshold. Every value is recorded, whether or not its rule rejects.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// Thresholds of the rules; see `docs/clean.md` for where each default comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Fewest characters (whitespace not counted).
    pub min_chars: usize,
    /// Most characters.
    pub max_chars: usize,
    /// Least share of Han characters among non-whitespace characters.
    pub min_han_ratio: f64,
    /// Most share of kana and hangul among CJK letters (Japanese and Korean pages).
    pub max_kana_hangul_ratio: f64,
    /// Least average line length, in characters.
    pub min_avg_line_chars: f64,
    /// A line with fewer Han characters than this, and fewer than `short_line_chars`
    /// characters, is short.
    pub short_line_han: usize,
    /// A line of at least this many characters is never short, whatever its script: a line of
    /// code or an English sentence in a manual is not a menu item.
    pub short_line_chars: usize,
    /// Most share of the characters that stand in short lines: a page that is mostly menu
    /// items, table cells and link text. Weighted by characters, so a manual's tables and
    /// lists between paragraphs of prose do not count as much as the prose.
    pub max_short_line_ratio: f64,
    /// Most share of lines that repeat an earlier line.
    pub max_dup_line_ratio: f64,
    /// Most share of characters in repeated lines.
    pub max_dup_line_char_ratio: f64,
    /// Character n-gram length for the repetition rule.
    pub dup_ngram: usize,
    /// Most share of characters covered by character n-grams that occur more than once.
    pub max_dup_ngram_char_ratio: f64,
    /// Least share of lines ending in terminal punctuation (long lines counted by sentences).
    pub min_terminal_punct_ratio: f64,
    /// A line longer than this many characters is judged by its sentences: joined paragraphs
    /// (one line per article, as in THUCNews and many dumps) are not one unfinished line.
    pub sentence_split_chars: usize,
    /// Most `#` and ellipses per character.
    pub max_symbol_ratio: f64,
    /// Most share of ASCII digits among characters.
    pub max_digit_ratio: f64,
    /// Most word-list matches per line.
    pub max_bad_words_per_line: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_chars: 60,
            max_chars: 500_000,
            min_han_ratio: 0.3,
            max_kana_hangul_ratio: 0.1,
            min_avg_line_chars: 10.0,
            short_line_han: 10,
            short_line_chars: 30,
            max_short_line_ratio: 0.5,
            max_dup_line_ratio: 0.3,
            max_dup_line_char_ratio: 0.2,
            dup_ngram: 13,
            max_dup_ngram_char_ratio: 0.5,
            min_terminal_punct_ratio: 0.12,
            sentence_split_chars: 100,
            max_symbol_ratio: 0.05,
            max_digit_ratio: 0.3,
            max_bad_words_per_line: 0.5,
        }
    }
}

impl Thresholds {
    /// The strict preset: MNBVC's Han ratio 0.7 and ChineseWebText's 200 characters.
    pub fn strict() -> Self {
        Thresholds {
            min_chars: 200,
            min_han_ratio: 0.7,
            ..Thresholds::default()
        }
    }
}

/// One rule's measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Measure {
    pub rule: &'static str,
    pub value: f64,
    pub threshold: f64,
    /// `true` when the value must be at least the threshold, `false` at most.
    pub at_least: bool,
    pub pass: bool,
}

pub(crate) fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2EBEF
        | 0x30000..=0x323AF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

fn is_kana_hangul(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x31F0..=0x31FF | 0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F)
}

pub(crate) const TERMINAL: &[char] = &[
    '。', '！', '？', '…', '.', '!', '?', '”', '」', '』', '"', '）', ')', '；',
];

/// Closing quotes and brackets that may follow a sentence's terminal punctuation.
const CLOSERS: &[char] = &['”', '」', '』', '"', '）', ')', '’', '\''];

/// Splits a line into sentences after Chinese sentence-ending punctuation (`。！？；…` and
/// `!?`, with the closing quotes that follow them). A period only ends a sentence when a
/// blank or the line's end follows it, so `5.3` and `e.g.在` stay whole. The last piece may be
/// an unfinished sentence (a byline, "我要评论").
pub fn sentences(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = None;
        let mut it = rest.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            let ends = match c {
                '。' | '！' | '？' | '；' | '!' | '?' | '…' => true,
                '.' => it.peek().is_none_or(|&(_, n)| n.is_whitespace()),
                _ => false,
            };
            if ends {
                let mut stop = i + c.len_utf8();
                // a run of terminals and the closers after them belong to this sentence
                while let Some(&(j, n)) = it.peek() {
                    if matches!(n, '。' | '！' | '？' | '!' | '?' | '…' | '.')
                        || CLOSERS.contains(&n)
                    {
                        stop = j + n.len_utf8();
                        it.next();
                    } else {
                        break;
                    }
                }
                end = Some(stop);
                break;
            }
        }
        let stop = end.unwrap_or(rest.len());
        let (head, tail) = rest.split_at(stop);
        rest = tail;
        Some(head)
    })
    .filter(|s| !s.trim().is_empty())
}

/// The units the line-end rules count: each line, or the sentences of a line longer than
/// `split_chars` characters.
fn units<'a>(lines: &'a [&'a str], split_chars: usize) -> impl Iterator<Item = &'a str> + 'a {
    lines.iter().flat_map(move |&l| {
        let long = l.chars().nth(split_chars).is_some();
        let (whole, split) = if long {
            (None, Some(sentences(l)))
        } else {
            (Some(l), None)
        };
        whole.into_iter().chain(split.into_iter().flatten())
    })
}

/// Measures every rule on `text` (already normalised, one paragraph per line, or paragraphs
/// joined into long lines: the line-end rules then count sentences).
/// `bad_words` counts word-list matches per line.
pub fn measure(text: &str, t: &Thresholds, bad_words: &dyn Fn(&str) -> usize) -> Vec<Measure> {
    let mut chars = 0usize;
    let mut han = 0usize;
    let mut kana = 0usize;
    let mut digits = 0usize;
    let mut symbols = 0usize;
    let mut prev_dot = 0;
    for c in text.chars() {
        if c.is_whitespace() {
            continue;
        }
        chars += 1;
        if is_han(c) {
            han += 1;
        } else if is_kana_hangul(c) {
            kana += 1;
        } else if c.is_ascii_digit() {
            digits += 1;
        }
        if c == '#' || c == '…' {
            symbols += 1;
        }
        if c == '.' {
            prev_dot += 1;
            if prev_dot == 3 {
                symbols += 1;
                prev_dot = 0;
            }
        } else {
            prev_dot = 0;
        }
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let n_lines = lines.len().max(1) as f64;
    let line_chars: usize = lines.iter().map(|l| l.chars().count()).sum();
    let short_chars: usize = lines
        .iter()
        .filter(|l| {
            l.chars().filter(|&c| is_han(c)).count() < t.short_line_han
                && l.chars()
                    .filter(|c| !c.is_whitespace())
                    .nth(t.short_line_chars.saturating_sub(1))
                    .is_none()
        })
        .map(|l| l.chars().count())
        .sum();
    // one pass over the units (sentences of long lines are split once) for both line-end rules
    let mut n_units = 0usize;
    let mut terminal = 0usize;
    let mut bad = 0usize;
    for u in units(&lines, t.sentence_split_chars) {
        n_units += 1;
        if u.trim_end().ends_with(TERMINAL) {
            terminal += 1;
        }
        bad += bad_words(u);
    }
    let n_units_f = n_units.max(1) as f64;
    // repeated lines (Gopher): a line counts as a duplicate from its second occurrence
    let mut seen: HashMap<u64, ()> = HashMap::with_capacity(lines.len());
    let mut dup_lines = 0usize;
    let mut dup_line_chars = 0usize;
    for l in &lines {
        if seen.insert(xxh3_64(l.as_bytes()), ()).is_some() {
            dup_lines += 1;
            dup_line_chars += l.chars().count();
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let dup_ngram = dup_ngram_char_ratio(text, t.dup_ngram);
    let cjk = han + kana;

    let at_least = |rule, value: f64, threshold: f64| Measure {
        rule,
        value,
        threshold,
        at_least: true,
        pass: value >= threshold,
    };
    let at_most = |rule, value: f64, threshold: f64| Measure {
        rule,
        value,
        threshold,
        at_least: false,
        pass: value <= threshold,
    };
    vec![
        // language first: "not Chinese" says more than "too short"
        at_least("han_ratio", ratio(han, chars), t.min_han_ratio),
        at_most(
            "kana_hangul_ratio",
            ratio(kana, cjk),
            t.max_kana_hangul_ratio,
        ),
        at_least("min_chars", chars as f64, t.min_chars as f64),
        at_most("max_chars", chars as f64, t.max_chars as f64),
        at_least(
            "avg_line_chars",
            line_chars as f64 / n_lines,
            t.min_avg_line_chars,
        ),
        at_most(
            "short_line_ratio",
            ratio(short_chars, line_chars),
            t.max_short_line_ratio,
        ),
        at_most(
            "dup_line_ratio",
            dup_lines as f64 / n_lines,
            t.max_dup_line_ratio,
        ),
        at_most(
            "dup_line_char_ratio",
            ratio(dup_line_chars, line_chars),
            t.max_dup_line_char_ratio,
        ),
        at_most(
            "dup_ngram_char_ratio",
            dup_ngram,
            t.max_dup_ngram_char_ratio,
        ),
        at_least(
            "terminal_punct_ratio",
            terminal as f64 / n_units_f,
            t.min_terminal_punct_ratio,
        ),
        at_most("symbol_ratio", ratio(symbols, chars), t.max_symbol_ratio),
        at_most("digit_ratio", ratio(digits, chars), t.max_digit_ratio),
        at_most(
            "bad_words_per_line",
            bad as f64 / n_units_f,
            t.max_bad_words_per_line,
        ),
    ]
}

/// Share of characters covered by character `n`-grams that occur more than once (Gopher's
/// duplicate n-gram fraction, on characters: Chinese has no spaces to count words by).
fn dup_ngram_char_ratio(text: &str, n: usize) -> f64 {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if n == 0 || chars.len() < n {
        return 0.0;
    }
    let mut buf = [0u8; 4];
    let hashes: Vec<u64> = chars
        .windows(n)
        .map(|w| {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            for c in w {
                h.update(c.encode_utf8(&mut buf).as_bytes());
            }
            h.digest()
        })
        .collect();
    let mut counts: HashMap<u64, u32> = HashMap::with_capacity(hashes.len());
    for h in &hashes {
        *counts.entry(*h).or_default() += 1;
    }
    let mut covered = vec![false; chars.len()];
    for (i, h) in hashes.iter().enumerate() {
        if counts[h] > 1 {
            for c in &mut covered[i..i + n] {
                *c = true;
            }
        }
    }
    covered.iter().filter(|&&c| c).count() as f64 / chars.len() as f64
}

#[cfg(test)]
mod tests {
    use super::sentences;

    #[test]
    fn sentences_split_after_chinese_terminals_and_keep_their_closers() {
        let s: Vec<&str> =
            sentences("他说：“走吧。”我们就走了！5.3级地震。e.g.在句中；End. 最后一句没有句号")
                .collect();
        assert_eq!(
            s,
            [
                "他说：“走吧。”",
                "我们就走了！",
                "5.3级地震。",
                "e.g.在句中；",
                "End.",
                " 最后一句没有句号"
            ]
        );
        assert_eq!(sentences("").count(), 0);
        assert_eq!(sentences("……").collect::<Vec<_>>(), ["……"]);
    }
}
