//! Which character encoding a page is in, and how we know.
//!
//! Order of evidence: a byte-order mark; bytes that are valid UTF-8 (whatever a page declares,
//! valid UTF-8 with non-ASCII text is not GBK by accident); the HTTP `Content-Type` charset; a
//! `<meta>` declaration in the first 8 KiB; detection by chardetng. A declaration is trusted
//! only if decoding with it gives almost no errors. `gb2312` and `gbk` are decoded as GB18030,
//! their superset, as browsers do.

use encoding_rs::{Encoding, GB18030, UTF_8};
use serde::Serialize;

/// How the encoding was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CharsetSource {
    /// A byte-order mark.
    Bom,
    /// The bytes are valid UTF-8.
    Utf8Valid,
    /// The HTTP Content-Type header.
    Http,
    /// A `<meta charset>` or `<meta http-equiv>` declaration.
    Meta,
    /// chardetng's guess from the bytes.
    Detected,
}

impl CharsetSource {
    /// The name recorded with a page, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            CharsetSource::Bom => "bom",
            CharsetSource::Utf8Valid => "utf8_valid",
            CharsetSource::Http => "http",
            CharsetSource::Meta => "meta",
            CharsetSource::Detected => "detected",
        }
    }
}

/// The decision, as recorded with every extraction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charset {
    /// The WHATWG name of the encoding used, e.g. `UTF-8`, `gb18030`, `Big5`.
    pub name: String,
    pub source: CharsetSource,
    /// What the page or server declared, if anything, verbatim.
    pub declared: Option<String>,
    /// Malformed sequences replaced while decoding.
    pub errors: usize,
}

/// How far into the page to look for a `<meta>` declaration. The HTML standard's prescan looks
/// at 1,024 bytes; Chinese pages often put scripts and comments first, so look further.
const META_SCAN: usize = 8192;

/// How many bytes of a page's non-ASCII text the detector sees: about 1,000 Chinese characters
/// in GBK or Big5, enough for a confident guess.
const DETECT_BYTES: usize = 2 * 1024;

/// A declaration is rejected when more than this share of the decoded characters are errors.
const MAX_ERROR_RATE: f64 = 0.001;

/// Decodes `bytes`, choosing the encoding as described in the module documentation.
pub fn decode(bytes: &[u8], http_charset: Option<&str>) -> (String, Charset) {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, errors) = decode_with(enc, &bytes[bom_len..]);
        return (text, decision(enc, CharsetSource::Bom, None, errors));
    }
    let meta = sniff_meta(&bytes[..bytes.len().min(META_SCAN)]);
    let declared = http_charset
        .map(|c| (c.to_string(), CharsetSource::Http))
        .or_else(|| meta.map(|m| (m, CharsetSource::Meta)));
    let declared_label = declared.as_ref().map(|(d, _)| d.clone());
    if !bytes.is_ascii()
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        return (
            text.to_string(),
            decision(UTF_8, CharsetSource::Utf8Valid, declared_label, 0),
        );
    }
    if let Some((label, source)) = &declared
        && let Some(enc) = Encoding::for_label(label.trim().as_bytes()).map(widen)
    {
        // UTF-16 declared in a byte stream without a BOM is a lie (the standard says so too)
        if enc != encoding_rs::UTF_16LE && enc != encoding_rs::UTF_16BE {
            let (text, errors) = decode_with(enc, bytes);
            if (errors as f64) <= MAX_ERROR_RATE * text.chars().count().max(1) as f64 {
                return (text, decision(enc, *source, declared_label, errors));
            }
        }
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    // a sample cut short is a prefix: chardetng must not be told the stream ended, or it counts
    // a character cut at the end against the encodings
    let (sample, whole) = detection_sample(bytes);
    detector.feed(&sample, whole);
    let enc = widen(detector.guess(None, chardetng::Utf8Detection::Allow));
    // chardetng rules out an encoding at the first invalid sequence, and real pages are often
    // damaged in a few places (a title cut in the middle of a character). When it settles on a
    // single-byte encoding, a multi-byte one that decodes nearly everything into Han text wins.
    if enc.is_single_byte() {
        for candidate in [UTF_8, GB18030, encoding_rs::BIG5] {
            let (text, errors) = decode_with(candidate, bytes);
            if mostly_han_with_few_errors(&text, errors) {
                return (
                    text,
                    decision(candidate, CharsetSource::Detected, declared_label, errors),
                );
            }
        }
    }
    let (text, errors) = decode_with(enc, bytes);
    (
        text,
        decision(enc, CharsetSource::Detected, declared_label, errors),
    )
}

/// What the detector sees of a page: only non-ASCII bytes tell encodings apart, and markup
/// and scripts cost chardetng as much per byte as text does. Each non-ASCII byte goes in with
/// the byte after it (a trail byte of GBK, Big5 or Shift_JIS may be ASCII), so no sequence is
/// split; every other run of ASCII becomes one space. At most [`DETECT_BYTES`] (a byte more
/// to end on a pair), and whether the whole page fitted.
fn detection_sample(bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut sample = Vec::with_capacity(DETECT_BYTES + 2);
    let mut i = 0;
    while i < bytes.len() {
        if sample.len() >= DETECT_BYTES {
            return (sample, false);
        }
        if bytes[i] >= 0x80 {
            sample.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
            i += 2;
        } else {
            if sample.last().is_some_and(|&b| b != b' ') {
                sample.push(b' ');
            }
            i += bytes[i..]
                .iter()
                .position(|&b| b >= 0x80)
                .unwrap_or(bytes.len() - i);
        }
    }
    (sample, true)
}

/// Whether a tolerant decoding is good enough: one error, or at most one per 500 non-ASCII
/// characters, and most non-ASCII characters Han.
fn mostly_han_with_few_errors(text: &str, errors: usize) -> bool {
    let non_ascii = text.chars().filter(|c| !c.is_ascii()).count();
    let han = text
        .chars()
        .filter(|&c| ('\u{4e00}'..='\u{9fff}').contains(&c))
        .count();
    non_ascii >= 16 && errors <= 1 + non_ascii / 500 && han * 2 >= non_ascii
}

/// GBK (and gb2312, which WHATWG maps to it) decode as GB18030, their superset.
fn widen(enc: &'static Encoding) -> &'static Encoding {
    if enc == encoding_rs::GBK {
        GB18030
    } else {
        enc
    }
}

fn decision(
    enc: &'static Encoding,
    source: CharsetSource,
    declared: Option<String>,
    errors: usize,
) -> Charset {
    Charset {
        name: enc.name().to_string(),
        source,
        declared,
        errors,
    }
}

/// Decodes without a BOM check, counting replaced malformed sequences.
fn decode_with(enc: &'static Encoding, bytes: &[u8]) -> (String, usize) {
    let mut decoder = enc.new_decoder_without_bom_handling();
    let cap = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len().saturating_mul(3));
    let mut out = String::with_capacity(cap.min(bytes.len() * 3 + 16));
    let mut errors = 0;
    let mut input = bytes;
    loop {
        let (result, read) = decoder.decode_to_string_without_replacement(input, &mut out, true);
        input = &input[read..];
        match result {
            encoding_rs::DecoderResult::InputEmpty => break,
            encoding_rs::DecoderResult::OutputFull => {
                out.reserve(input.len() * 3 + 16);
            }
            encoding_rs::DecoderResult::Malformed(_, _) => {
                errors += 1;
                out.push('\u{fffd}');
            }
        }
    }
    (out, errors)
}

/// Finds a charset declared in a `<meta>` tag: `<meta charset="gbk">` or
/// `<meta http-equiv="Content-Type" content="text/html; charset=gb2312">`.
pub fn sniff_meta(head: &[u8]) -> Option<String> {
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let mut at = 0;
    while let Some(i) = memchr::memmem::find(&lower[at..], b"<meta") {
        let start = at + i;
        let end = memchr::memmem::find(&lower[start..], b">").map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(c) = memchr::memmem::find(tag, b"charset") {
            // positions found in the lower-cased copy; the value is taken from the original
            let rest = &head[start + c + 7..end];
            let rest = trim_start(rest);
            if let Some(rest) = rest.strip_prefix(b"=") {
                let rest = trim_start(rest);
                let rest = rest
                    .strip_prefix(b"\"")
                    .or(rest.strip_prefix(b"'"))
                    .unwrap_or(rest);
                let len = rest
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || b"-_:.".contains(b)))
                    .unwrap_or(rest.len());
                if len > 0 {
                    return Some(String::from_utf8_lossy(&rest[..len]).into_owned());
                }
            }
        }
        at = end;
    }
    None
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes and returns "text | encoding source declared errors".
    fn check(bytes: &[u8], http: Option<&str>, expected: &str) {
        let (text, cs) = decode(bytes, http);
        let text: String = text
            .chars()
            .filter(|c| !c.is_ascii() || c.is_ascii_alphanumeric())
            .collect();
        let got = format!(
            "{text} | {} {:?} {:?} {}",
            cs.name, cs.source, cs.declared, cs.errors
        );
        assert_eq!(got, expected);
    }

    fn gbk(s: &str) -> Vec<u8> {
        GB18030.encode(s).0.into_owned()
    }

    #[test]
    fn decisions() {
        let page = |meta: &str, body: &str| {
            let mut b = format!("<html><head>{meta}</head><body>").into_bytes();
            b.extend(gbk(body));
            b
        };
        // declared and right
        check(
            &page(r#"<meta charset="gb2312">"#, "中文网页"),
            None,
            "htmlheadmetacharsetgb2312headbody中文网页 | gb18030 Meta Some(\"gb2312\") 0",
        );
        // http-equiv form, GBK bytes
        check(
            &page(
                r#"<meta http-equiv="Content-Type" content="text/html; charset=GBK" />"#,
                "简体",
            ),
            None,
            "htmlheadmetahttpequivContentTypecontenttexthtmlcharsetGBKheadbody简体 | gb18030 Meta Some(\"GBK\") 0",
        );
        // the server's header wins over the meta tag
        check(
            &gbk("汉字"),
            Some("gbk"),
            "汉字 | gb18030 Http Some(\"gbk\") 0",
        );
        // declares gb2312, is UTF-8: valid UTF-8 wins
        check(
            "<meta charset=gb2312>你好，世界".as_bytes(),
            None,
            "metacharsetgb2312你好，世界 | UTF-8 Utf8Valid Some(\"gb2312\") 0",
        );
        // declares UTF-8, is GBK: detection
        check(
            &[
                b"<meta charset=utf-8>".as_slice(),
                &gbk("这是一个用国标码写成的中文网页，没有声明正确的编码。"),
            ]
            .concat(),
            None,
            "metacharsetutf8这是一个用国标码写成的中文网页，没有声明正确的编码。 | gb18030 Detected Some(\"utf-8\") 0",
        );
        // nothing declared
        check(
            &gbk("没有声明编码的网页内容，只能靠猜测。"),
            None,
            "没有声明编码的网页内容，只能靠猜测。 | gb18030 Detected None 0",
        );
        // BOM
        check(
            &[b"\xef\xbb\xbf".as_slice(), "带BOM".as_bytes()].concat(),
            Some("gbk"),
            "带BOM | UTF-8 Bom None 0",
        );
        // GB18030 four-byte sequences decode
        check(
            &gbk("𠀀"),
            Some("gb18030"),
            "𠀀 | gb18030 Http Some(\"gb18030\") 0",
        );
        // pure ASCII with an unknown label
        check(
            b"plain",
            Some("x-unknown"),
            "plain | UTF-8 Detected Some(\"x-unknown\") 0",
        );
    }

    #[test]
    fn detection_sees_text_not_markup() {
        // ASCII runs become one space (none before the first text); a GBK character whose
        // trail byte is ASCII (`丂` is 0x81 0x40) stays whole
        let bytes = [
            b"<p class=x>".as_slice(),
            &gbk("丂中"),
            b"</p>\n<p>",
            &gbk("文"),
        ]
        .concat();
        let (sample, whole) = detection_sample(&bytes);
        assert_eq!(sample, [gbk("丂中").as_slice(), b" ", &gbk("文")].concat());
        assert!(whole);
        // once full, the sample ends on a whole character, and keeps the text it was in: a
        // short title and then one long paragraph without ASCII give a sample of the paragraph
        let page = [
            b"<title>".as_slice(),
            &gbk("新闻"),
            b"</title><p>",
            &gbk(&"今天的天气很好，我们一起去公园散步，看见了很多花。".repeat(100)),
            b"</p>",
        ]
        .concat();
        let (sample, whole) = detection_sample(&page);
        assert!(!whole);
        assert!(sample.len() >= DETECT_BYTES, "{}", sample.len());
        assert!(!GB18030.decode_without_bom_handling(&sample).1);
        assert_eq!(decode(&page, None).1.name, "gb18030");
        let big5 = [
            b"<title>".as_slice(),
            &encoding_rs::BIG5.encode("新聞").0,
            b"</title><p>",
            &encoding_rs::BIG5
                .encode(&"今天的天氣很好，我們一起去公園散步，看見了很多花。".repeat(100))
                .0,
            b"</p>",
        ]
        .concat();
        assert_eq!(decode(&big5, None).1.name, "Big5");
        // a page that is mostly script before its text, nothing declared
        let script = format!("<script>{}</script>", "var a = 'b';\n".repeat(5000));
        let bytes = [
            script.as_bytes(),
            &gbk("<p>正文在很多脚本之后才出现，没有声明编码。</p>"),
        ]
        .concat();
        let (text, cs) = decode(&bytes, None);
        assert_eq!(
            (cs.name.as_str(), cs.source),
            ("gb18030", CharsetSource::Detected)
        );
        assert!(text.contains("正文在很多脚本之后"));
        // and Big5 is told from GBK
        let big5 = encoding_rs::BIG5
            .encode("<p>繁體中文的網頁，沒有聲明編碼，也要猜對。</p>")
            .0
            .into_owned();
        assert_eq!(
            decode(&[script.as_bytes(), &big5].concat(), None).1.name,
            "Big5"
        );
    }

    #[test]
    fn meta_sniffing() {
        let cases = [
            (r#"<META CHARSET='Big5'>"#, Some("Big5")),
            (
                r#"<meta content="text/html;charset = gb2312">"#,
                Some("gb2312"),
            ),
            (r#"<meta name="x"><meta charset=utf-8/>"#, Some("utf-8")),
            (r#"<meta name="charset">"#, None),
            ("<meta charset=", None),
            ("no tags", None),
        ];
        for (html, want) in cases {
            assert_eq!(sniff_meta(html.as_bytes()).as_deref(), want, "{html}");
        }
    }
}
