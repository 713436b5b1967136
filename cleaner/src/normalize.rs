//! Text normalisation: what every later rule and every later stage sees.
//!
//! - HTML entity residue (`&nbsp;`, `&amp;`, `&#20013;`) decoded;
//! - NFKC, except on Chinese full-width punctuation (`，。！？：；（）` and the like), which
//!   NFKC would turn into ASCII and which Chinese text is written with: so full-width letters and
//!   digits become ASCII, compatibility ideographs and circled numbers become their plain forms,
//!   and `，` stays `，`;
//! - control and invisible characters (zero-width spaces and joiners, BOMs, soft hyphens,
//!   bidirectional marks) removed;
//! - whitespace: runs of blanks collapsed to one space, lines trimmed, empty lines dropped.

use unicode_normalization::UnicodeNormalization;

/// Full-width punctuation kept as it is (U+FF01..U+FF5E minus letters and digits, plus the
/// halfwidth CJK marks); NFKC would fold it to ASCII.
fn keep_fullwidth(c: char) -> bool {
    let u = c as u32;
    (0xFF01..=0xFF5E).contains(&u) && !c.is_alphanumeric() || (0xFF5F..=0xFF65).contains(&u)
}

fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    ) || (c.is_control() && c != '\n' && c != '\t')
}

/// Normalises `text` (see the module documentation).
pub fn normalize(text: &str) -> String {
    let decoded = if text.contains('&') {
        html_escape::decode_html_entities(text).into_owned()
    } else {
        text.to_string()
    };
    // NFKC run by run, leaving the protected punctuation alone
    let mut folded = String::with_capacity(decoded.len());
    let mut run = String::new();
    for c in decoded.chars() {
        if invisible(c) {
            continue;
        }
        if keep_fullwidth(c) {
            folded.extend(run.nfkc());
            run.clear();
            folded.push(c);
        } else {
            run.push(c);
        }
    }
    folded.extend(run.nfkc());
    // whitespace: NFKC made U+3000 and NBSP plain spaces
    let mut out = String::with_capacity(folded.len());
    for line in folded.split(['\n', '\r', '\u{2028}', '\u{2029}']) {
        let mut first = true;
        for word in line.split_whitespace() {
            if first {
                if !out.is_empty() {
                    out.push('\n');
                }
                first = false;
            } else {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_what_should_fold_and_keeps_chinese_punctuation() {
        assert_eq!(normalize("ＡＢＣ１２３，测试！"), "ABC123，测试！");
        assert_eq!(
            normalize("价格&nbsp;100&amp;200&#20013;&lt;"),
            "价格 100&200中<"
        );
        assert_eq!(normalize("零\u{200B}宽\u{FEFF}字\u{00AD}符"), "零宽字符");
        assert_eq!(
            normalize("  第一行　　文字  \r\n\n\n  第二行\t\t结束 "),
            "第一行 文字\n第二行 结束"
        );
        assert_eq!(normalize("①号（完）"), "1号（完）");
        // a compatibility ideograph (U+F900) becomes the unified one
        assert_eq!(normalize("\u{F900}"), "\u{8C48}");
        assert_eq!(normalize(""), "");
    }
}
