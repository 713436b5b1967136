//! Personal data masking with typed placeholders.
//!
//! Digit runs are classified by their shape and their checksums, so that a price or a date is
//! left alone: an 18-character mainland ID (17 digits and a digit or X) must carry a valid
//! ISO 7064 MOD 11-2 check and a plausible birth date; a bank card (16 to 19 digits) must pass
//! Luhn; a mobile number is 11 digits starting 13 to 19; a QQ number is 5 to 11 digits right
//! after "QQ" or "扣扣". Emails and IPv4 addresses are found by pattern. A run glued to more
//! digits or letters is not taken apart.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// Masks found, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PiiCounts {
    pub phone: u32,
    pub id_card: u32,
    pub bank_card: u32,
    pub email: u32,
    pub qq: u32,
    pub ip: u32,
}

impl PiiCounts {
    pub fn total(&self) -> u32 {
        self.phone + self.id_card + self.bank_card + self.email + self.qq + self.ip
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
        .expect("valid regex")
});
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}").expect("valid regex"));
/// Digit runs, with a final X for ID numbers.
static DIGITS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d{5,19}[Xx]?").expect("valid regex"));

/// Whether an 18-character ID number has a valid check character and birth date.
pub fn valid_id_card(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    if b[17].to_ascii_uppercase() != CHECK[(sum % 11) as usize] {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    (1900..=2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// The Luhn check of a card number.
pub fn luhn(s: &str) -> bool {
    let mut sum = 0;
    for (i, c) in s.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn glued(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    alnum(before) || alnum(after)
}

/// Masks personal data in `text`, returning the new text and the counts.
pub fn mask(text: &str) -> (String, PiiCounts) {
    let mut counts = PiiCounts::default();
    if !text.bytes().any(|b| b.is_ascii_digit() || b == b'@') {
        return (text.to_string(), counts);
    }
    let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
    for m in EMAIL.find_iter(text) {
        spans.push((m.start(), m.end(), "<EMAIL>"));
        counts.email += 1;
    }
    let free = |spans: &[(usize, usize, &str)], s: usize, e: usize| {
        spans.iter().all(|&(a, b, _)| e <= a || s >= b)
    };
    for m in IPV4.find_iter(text) {
        if glued(text, m.start(), m.end()) || !free(&spans, m.start(), m.end()) {
            continue;
        }
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        if before == Some('.') || after == Some('.') {
            continue;
        }
        if m.as_str()
            .split('.')
            .all(|o| o.parse::<u32>().is_ok_and(|v| v <= 255))
        {
            spans.push((m.start(), m.end(), "<IP>"));
            counts.ip += 1;
        }
    }
    for m in DIGITS.find_iter(text) {
        let (s, e) = (m.start(), m.end());
        if glued(text, s, e) || !free(&spans, s, e) {
            continue;
        }
        let d = m.as_str();
        let before = text[..s].chars().next_back();
        if before == Some('.')
            || text[e..].starts_with('.')
                && text[e..].chars().nth(1).is_some_and(|c| c.is_ascii_digit())
        {
            continue; // part of a decimal number
        }
        let kind = if d.len() == 18 && valid_id_card(d) {
            counts.id_card += 1;
            "<ID_CARD>"
        } else if d.len() == 11 && d.starts_with('1') && (b'3'..=b'9').contains(&d.as_bytes()[1]) {
            counts.phone += 1;
            "<PHONE>"
        } else if (16..=19).contains(&d.len()) && luhn(d) {
            counts.bank_card += 1;
            "<BANK_CARD>"
        } else if (5..=11).contains(&d.len())
            && d.bytes().all(|b| b.is_ascii_digit())
            && after_qq(&text[..s])
        {
            counts.qq += 1;
            "<QQ>"
        } else {
            continue;
        };
        spans.push((s, e, kind));
    }
    if spans.is_empty() {
        return (text.to_string(), counts);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e, tag) in spans {
        out.push_str(&text[at..s]);
        out.push_str(tag);
        at = e;
    }
    out.push_str(&text[at..]);
    (out, counts)
}

/// Whether the text before a number ends with a QQ label (`QQ:`, `qq号 `, `扣扣：`).
fn after_qq(before: &str) -> bool {
    let tail: String = before
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let t = tail
        .trim_end_matches([':', '：', ' ', '号', '是', '为'])
        .to_ascii_lowercase();
    t.ends_with("qq") || t.ends_with("扣扣")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_by_kind_with_checksums() {
        // a valid ID number (the national standard's example) and one with a wrong check digit
        assert!(valid_id_card("11010519491231002X"));
        assert!(!valid_id_card("110105194912310021"));
        assert!(!valid_id_card("110105194913310028")); // month 13
        assert!(luhn("6222020200112233440") || !luhn("6222020200112233441"));
        assert!(luhn("4111111111111111"));
        assert!(!luhn("4111111111111112"));

        let (t, c) =
            mask("联系电话13812345678，身份证11010519491231002X，邮箱zhang.san@example.com。");
        assert_eq!(t, "联系电话<PHONE>，身份证<ID_CARD>，邮箱<EMAIL>。");
        assert_eq!((c.phone, c.id_card, c.email), (1, 1, 1));

        let (t, c) = mask("卡号4111111111111111，QQ：12345678，服务器192.168.1.10上线");
        assert_eq!(t, "卡号<BANK_CARD>，QQ：<QQ>，服务器<IP>上线");
        assert_eq!(c.total(), 3);
    }

    #[test]
    fn leaves_numbers_that_are_not_personal() {
        for s in [
            "2023年GDP为1260582亿元，增长5.2%。",
            "订单号20231101123456789", // 17 digits, no checksum
            "版本1.2.3.4567发布",      // not an address: 4567 > 255
            "圆周率3.14159265358979",
            "12345678901234567890123", // too long for anything
            "ID110105194912310021X",   // glued to letters
        ] {
            let (t, c) = mask(s);
            assert_eq!(t, s, "{c:?}");
        }
        // a number that is not after a QQ label is no QQ number
        assert_eq!(mask("共12345678人").0, "共12345678人");
    }
}
