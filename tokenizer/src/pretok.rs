//! Pre-tokenization: the split of text into the pieces BPE merges within.
//!
//! The split is the Qwen/cl100k regular expression with one change for Chinese: letters of the
//! Han script and other letters are separate pieces, and a run of Han characters is cut every
//! `han_max` characters. Written as the regular expression [`pattern`] (which goes into
//! `tokenizer.json`, so that Hugging Face `tokenizers` splits the same way) and implemented
//! here as a hand-written scanner, which is several times faster than a backtracking regex
//! engine and needs no look-ahead support. A test checks the scanner against the regex.
//!
//! Optionally jieba's word boundaries cut Han runs instead: every word a piece
//! ([`Segment::Jieba`]), or only runs longer than `han_max` cut at the word boundaries that
//! keep pieces under it ([`Segment::JiebaLong`]).

use serde::{Deserialize, Serialize};
use unicode_general_category::{GeneralCategory as G, get_general_category};
use unicode_script::{Script, UnicodeScript};

/// How Han runs are cut into pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Segment {
    /// Every `han_max` characters from the start of the run (the regex alone).
    #[default]
    None,
    /// Every jieba word is a piece.
    Jieba,
    /// Runs longer than `han_max` are cut at jieba word boundaries.
    JiebaLong,
}

/// The pre-tokenizer's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreTokenizer {
    pub han_max: usize,
    pub segment: Segment,
}

impl Default for PreTokenizer {
    fn default() -> Self {
        PreTokenizer {
            han_max: 16,
            segment: Segment::None,
        }
    }
}

/// The split as a regular expression in Oniguruma syntax (what Hugging Face `tokenizers`
/// runs), for runs of at most `han_max` Han characters.
pub fn pattern(han_max: usize) -> String {
    format!(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{{L}}\p{{N}}]?[\p{{L}}&&[^\p{{Han}}]]+|[^\r\n\p{{L}}\p{{N}}]?\p{{Han}}{{1,{han_max}}}|\p{{N}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
}

fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    matches!(
        get_general_category(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
    )
}

fn is_number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    matches!(
        get_general_category(c),
        G::DecimalNumber | G::LetterNumber | G::OtherNumber
    )
}

fn is_han(c: char) -> bool {
    // the CJK unified ideographs block first: most Chinese text is in it
    ('\u{4e00}'..='\u{9fff}').contains(&c) || (!c.is_ascii() && c.script() == Script::Han)
}

/// Character classes of the expression, computed once per character.
#[derive(Clone, Copy)]
struct Class {
    letter: bool,
    number: bool,
    han: bool,
    space: bool,
    newline: bool,
}

impl Class {
    fn of(c: char) -> Class {
        let han = is_han(c);
        Class {
            letter: han && ('\u{4e00}'..='\u{9fff}').contains(&c) || is_letter(c),
            number: is_number(c),
            han,
            space: c.is_whitespace(),
            newline: c == '\r' || c == '\n',
        }
    }
    /// `[^\r\n\p{L}\p{N}]`
    fn prefix(self) -> bool {
        !self.newline && !self.letter && !self.number
    }
    /// `[\p{L}&&[^\p{Han}]]`
    fn other_letter(self) -> bool {
        self.letter && !self.han
    }
    /// `[^\s\p{L}\p{N}]`
    fn symbol(self) -> bool {
        !self.space && !self.letter && !self.number
    }
}

/// Splits `text` into pieces, calling `f` with each (consecutive, covering the whole text).
pub fn split<'a>(text: &'a str, han_max: usize, mut f: impl FnMut(&'a str)) {
    let chars: Vec<(usize, char, Class)> = text
        .char_indices()
        .map(|(i, c)| (i, c, Class::of(c)))
        .collect();
    let end_of = |k: usize| chars.get(k).map_or(text.len(), |c| c.0);
    let n = chars.len();
    let han_max = han_max.max(1);
    let mut i = 0;
    while i < n {
        let j = match_at(&chars, i, han_max, text);
        debug_assert!(j > i);
        f(&text[chars[i].0..end_of(j)]);
        i = j;
    }
}

/// The end (in characters) of the match starting at character `i`.
fn match_at(chars: &[(usize, char, Class)], i: usize, han_max: usize, text: &str) -> usize {
    let n = chars.len();
    let cls = |k: usize| chars[k].2;
    let run = |mut k: usize, p: &dyn Fn(Class) -> bool| {
        while k < n && p(cls(k)) {
            k += 1;
        }
        k
    };
    let (_, c, cl) = chars[i];
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if c == '\'' {
        let rest = &text[chars[i].0 + 1..];
        let mut it = rest.chars();
        let lower = |c: Option<char>| {
            c.map(|c| {
                if c == 'ſ' {
                    's'
                } else {
                    c.to_ascii_lowercase()
                }
            })
        };
        let (a, b) = (lower(it.next()), lower(it.next()));
        match (a, b) {
            (Some('s' | 't' | 'm' | 'd'), _) => return i + 2,
            (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => {
                return i + 3;
            }
            _ => {}
        }
    }
    let next = (i + 1 < n).then(|| cls(i + 1));
    // [^\r\n\p{L}\p{N}]?[\p{L}&&[^\p{Han}]]+
    if cl.prefix() && next.is_some_and(Class::other_letter) {
        return run(i + 1, &|c| c.other_letter());
    }
    if cl.other_letter() {
        return run(i, &|c| c.other_letter());
    }
    // [^\r\n\p{L}\p{N}]?\p{Han}{1,han_max}
    let han_run = |k: usize| {
        let mut e = k;
        while e < n && e - k < han_max && cls(e).han {
            e += 1;
        }
        e
    };
    if cl.prefix() && next.is_some_and(|c| c.han) {
        return han_run(i + 1);
    }
    if cl.han {
        return han_run(i);
    }
    // \p{N}
    if cl.number {
        return i + 1;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    if c == ' ' && next.is_some_and(Class::symbol) {
        let k = run(i + 1, &|c| c.symbol());
        return run(k, &|c| c.newline);
    }
    if cl.symbol() {
        let k = run(i, &|c| c.symbol());
        return run(k, &|c| c.newline);
    }
    // whitespace from here on
    let w = run(i, &|c| c.space);
    // \s*[\r\n]+ : up to the last line break of the run
    if let Some(last) = (i..w).rev().find(|&k| cls(k).newline) {
        return last + 1;
    }
    // \s+(?!\S) : the run, less its last character when a non-space follows
    if w == n || w - i == 1 { w } else { w - 1 }
}

/// Pieces of `text` under `pre`: the regex split, with Han runs re-cut by jieba when asked.
pub fn pieces<'a>(text: &'a str, pre: &PreTokenizer, mut f: impl FnMut(&'a str)) {
    match pre.segment {
        Segment::None => split(text, pre.han_max, f),
        Segment::Jieba | Segment::JiebaLong => {
            // split with uncapped Han runs, then cut each Han run by jieba
            let long = pre.segment == Segment::JiebaLong;
            split(text, usize::MAX, |piece| {
                let han_start = piece
                    .char_indices()
                    .find(|(_, c)| is_han(*c))
                    .map(|(i, _)| i);
                let Some(start) = han_start else {
                    return f(piece);
                };
                let han = &piece[start..];
                if long && han.chars().count() <= pre.han_max {
                    return f(piece);
                }
                let words = jieba().cut(han, false);
                // the prefix character goes with the first word
                let mut from = 0;
                let mut acc = 0;
                let mut at = start;
                for w in words {
                    let len = w.word.chars().count();
                    if long {
                        if acc > 0 && acc + len > pre.han_max {
                            f(&piece[from..at]);
                            from = at;
                            acc = 0;
                        }
                        acc += len;
                    } else if at > start {
                        f(&piece[from..at]);
                        from = at;
                    }
                    at += w.word.len();
                }
                if from < piece.len() {
                    f(&piece[from..]);
                }
            })
        }
    }
}

fn jieba() -> &'static jieba_rs::Jieba {
    static JIEBA: std::sync::OnceLock<jieba_rs::Jieba> = std::sync::OnceLock::new();
    JIEBA.get_or_init(jieba_rs::Jieba::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str, han_max: usize) -> Vec<&str> {
        let mut v = Vec::new();
        split(text, han_max, |p| v.push(p));
        v
    }

    #[test]
    fn splits_like_the_expression() {
        assert_eq!(
            parts("我们在2024年去了北京大学，It's   fine!\n\n  ok", 4),
            [
                "我们在",
                "2",
                "0",
                "2",
                "4",
                "年去了北",
                "京大学",
                "，It",
                "'s",
                "  ",
                " fine",
                "!\n\n",
                " ",
                " ok"
            ]
        );
        assert_eq!(parts(" 中文abc", 8), [" 中文", "abc"]);
        assert_eq!(parts("a \n b", 8), ["a", " \n", " b"]);
    }

    #[test]
    fn jieba_cuts_only_long_runs() {
        let pre = PreTokenizer {
            han_max: 4,
            segment: Segment::JiebaLong,
        };
        let mut v = Vec::new();
        pieces("我们去北京大学看看，好的", &pre, |p| {
            v.push(p.to_string())
        });
        assert_eq!(v.concat(), "我们去北京大学看看，好的");
        assert!(v.iter().all(|p| p.chars().count() <= 5), "{v:?}");
        assert!(v.contains(&"，好的".to_string()), "{v:?}");
    }
}
