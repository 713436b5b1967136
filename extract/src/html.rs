//! A streaming HTML parser: bytes of a decoded page in, element opens, texts and closes out,
//! in document order and always balanced.
//!
//! The extractor needs the element tree only as the walk sees it, so no tree is built: the
//! tokenizer finds tags, comments and texts with `memchr` over the page, and a tree builder
//! keeps the stack of open elements and applies the HTML standard's rules that decide where
//! text ends up on real pages:
//! - `<html>`, `<head>` and `<body>` implied where a page leaves them out, and head elements
//!   written after `</head>` kept out of the body;
//! - void elements (`<img>`, `<br>`, `<meta>`...) and raw text (`<script>`, `<style>`,
//!   `<title>`, `<textarea>`, `<noscript>` as with scripting on) whatever the markup inside,
//!   with the script states that let `<!-- document.write('<script></script>') -->` stay
//!   inside the script;
//! - end tags implied: a block closes an open `<p>`, `<li>` closes the last `<li>`, `<td>`
//!   the last cell, a heading an open heading, `<option>` an open option;
//! - `<tbody>` and `<tr>` implied in tables;
//! - an inline end tag closes every element opened after its match, and is ignored when a
//!   block element (the standard's "special" elements) stands between; a block's end tag
//!   closes what is open inside it; `</a>` ends a link around blocks left open inside it;
//! - self-closing tags honoured inside `<svg>` and `<math>` only, whose `<foreignObject>` and
//!   text elements hold HTML again;
//! - character references, named (with the legacy forms without `;`) and numeric.
//!
//! What it leaves out, on purpose: the adoption agency's re-parenting of misnested formatting
//! elements (an unclosed `<b>` or `<a>` ends where its parent ends instead of being reopened
//! around what follows), foster parenting of text misplaced inside a table (it stays where it
//! is written), frames, and quirks beyond "no doctype". Any input gives balanced events. At
//! most [`MAX_DEPTH`] elements are open and [`MAX_ATTRS`] attributes of a tag kept, so the
//! work is linear in the page's length, floods of stray end tags included.

use std::borrow::Cow;
use std::ops::Range;

/// Receives the parse.
pub(crate) trait Sink {
    /// An element opens; its text and children follow until the matching [`Sink::close`].
    fn open(&mut self, tag: &Tag<'_>);
    /// Text, with character references decoded. Adjacent texts may come in pieces.
    fn text(&mut self, text: &str);
    /// The innermost open element closes.
    fn close(&mut self);
}

/// A start tag: the name in lower case and the attributes in order, the first of a name kept.
pub(crate) struct Tag<'a> {
    pub name: &'a str,
    attrs: &'a [(Cow<'a, str>, Cow<'a, str>)],
}

impl Tag<'_> {
    /// The value of the attribute named `name` (lower case), decoded.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// Parses `html`, calling `sink` for each element and text.
pub(crate) fn parse(html: &str, sink: &mut impl Sink) {
    let mut tree = Tree {
        html,
        token: 0..0,
        sink,
        stack: Vec::new(),
        counts: [0; TRACKED],
        phase: Phase::Start,
        quirks: true,
    };
    let bytes = html.as_bytes();
    let mut attrs: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    let mut pos = 0;
    // where the current run of text began
    let mut text_from = 0;
    while pos < bytes.len() {
        let Some(lt) = memchr::memchr(b'<', &bytes[pos..]).map(|i| pos + i) else {
            break;
        };
        let rest = &bytes[lt + 1..];
        let next = rest.first().copied();
        let markup = match next {
            Some(b'!' | b'?') => true,
            Some(b'/') => rest.len() > 1,
            Some(c) => c.is_ascii_alphabetic(),
            None => false,
        };
        if !markup {
            // a `<` that starts no markup is text
            pos = lt + 1;
            continue;
        }
        tree.text(&html[text_from..lt]);
        let end = match next {
            Some(b'!') if rest.starts_with(b"!--") => comment_end(bytes, lt + 4),
            Some(b'!') => {
                if rest.len() >= 8 && rest[1..8].eq_ignore_ascii_case(b"doctype") {
                    tree.doctype();
                }
                after(bytes, lt + 2, b'>')
            }
            Some(b'/') => match rest[1] {
                c if c.is_ascii_alphabetic() => {
                    attrs.clear();
                    match read_tag(html, lt + 2, &mut attrs) {
                        Some((name, _, end)) => {
                            tree.end_tag(&name);
                            end
                        }
                        None => bytes.len(),
                    }
                }
                b'>' => lt + 3,
                _ => after(bytes, lt + 2, b'>'),
            },
            Some(c) if c.is_ascii_alphabetic() => {
                attrs.clear();
                match read_tag(html, lt + 1, &mut attrs) {
                    Some((name, self_closing, end)) => {
                        tree.token = lt..end;
                        let opened = tree.start_tag(&name, &attrs, self_closing);
                        match raw_text_kind(&name).filter(|_| opened && !tree.current_is_foreign())
                        {
                            Some(kind) => {
                                let (content_end, resume) = raw_text_end(html, end, &name, kind);
                                let content = &html[end..content_end];
                                if kind == RawText::Rcdata {
                                    tree.text(&decode(content, false));
                                } else {
                                    tree.text(content);
                                }
                                tree.end_tag(&name);
                                resume
                            }
                            None => end,
                        }
                    }
                    None => bytes.len(),
                }
            }
            // `<?`: a bogus comment
            _ => after(bytes, lt + 2, b'>'),
        };
        pos = end.min(bytes.len());
        text_from = pos;
    }
    tree.text(&html[text_from.min(bytes.len())..]);
    tree.finish();
}

/// Index just past the first `byte` at or after `from`, or the end.
fn after(bytes: &[u8], from: usize, byte: u8) -> usize {
    if from >= bytes.len() {
        return bytes.len();
    }
    memchr::memchr(byte, &bytes[from..]).map_or(bytes.len(), |i| from + i + 1)
}

/// Index just past the comment whose text starts at `from` (after `<!--`): `-->`, `--!>`,
/// or at once for `<!-->` and `<!--->`.
fn comment_end(bytes: &[u8], from: usize) -> usize {
    let rest = bytes.get(from..).unwrap_or_default();
    if rest.starts_with(b">") {
        return from + 1;
    }
    if rest.starts_with(b"->") {
        return from + 2;
    }
    let mut at = from;
    while let Some(i) = memchr::memchr(b'>', bytes.get(at..).unwrap_or_default()) {
        let gt = at + i;
        let before = &bytes[from..gt];
        if before.ends_with(b"--") || before.ends_with(b"--!") {
            return gt + 1;
        }
        at = gt + 1;
    }
    bytes.len()
}

/// Reads a tag whose name starts at `from`: its lower-case name, the attributes (pushed to
/// `attrs`), whether it ends in `/>`, and the index after its `>`. `None` when the page ends
/// inside the tag (the standard drops such a tag).
fn read_tag<'a>(
    html: &'a str,
    from: usize,
    attrs: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) -> Option<(Cow<'a, str>, bool, usize)> {
    let bytes = html.as_bytes();
    let name_end = from
        + bytes[from..]
            .iter()
            .position(|&b| is_space(b) || b == b'/' || b == b'>')
            .unwrap_or(bytes.len() - from);
    let name = lower(&html[from..name_end]);
    let mut i = name_end;
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b'/') {
            if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'>') {
                return Some((name, true, i + 2));
            }
            i += 1;
        }
        match bytes.get(i) {
            None => return None,
            Some(b'>') => return Some((name, false, i + 1)),
            Some(_) => {}
        }
        // an attribute's name: a leading `=` belongs to it
        let start = i;
        i += 1;
        while i < bytes.len() && !matches!(bytes[i], b'/' | b'>' | b'=') && !is_space(bytes[i]) {
            i += 1;
        }
        let attr_name = &html[start..i];
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        let mut value = "";
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && is_space(bytes[i]) {
                i += 1;
            }
            match bytes.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let close = memchr::memchr(q, &bytes[i + 1..])? + i + 1;
                    value = &html[i + 1..close];
                    i = close + 1;
                }
                Some(_) => {
                    let start = i;
                    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = &html[start..i];
                }
                None => return None,
            }
        }
        let attr_name = lower(attr_name);
        if attrs.len() < MAX_ATTRS && !attrs.iter().any(|(n, _)| *n == attr_name) {
            attrs.push((attr_name, decode(value, true)));
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RawText {
    /// Text up to the end tag, references left as written (`<script>`, `<style>`...).
    Raw,
    /// Text up to the end tag, references decoded (`<title>`, `<textarea>`).
    Rcdata,
    /// Everything to the end of the page (`<plaintext>`).
    Rest,
}

fn raw_text_kind(name: &str) -> Option<RawText> {
    match name {
        "script" | "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
            Some(RawText::Raw)
        }
        "title" | "textarea" => Some(RawText::Rcdata),
        "plaintext" => Some(RawText::Rest),
        _ => None,
    }
}

/// Where the raw text that starts at `from` ends, and where parsing resumes: at its end tag
/// (`</name` followed by a space, `/` or `>`, any case), else at the end of the page.
fn raw_text_end(html: &str, from: usize, name: &str, kind: RawText) -> (usize, usize) {
    let bytes = html.as_bytes();
    if kind == RawText::Rest {
        return (bytes.len(), bytes.len());
    }
    if name == "script" {
        let end = script_end(bytes, from);
        return (end, end);
    }
    let mut at = from;
    while let Some(i) = memchr::memmem::find(&bytes[at..], b"</") {
        let lt = at + i;
        let name_at = lt + 2;
        let end = name_at + name.len();
        if bytes.len() >= end
            && bytes[name_at..end].eq_ignore_ascii_case(name.as_bytes())
            && bytes
                .get(end)
                .is_none_or(|&b| is_space(b) || b == b'/' || b == b'>')
        {
            return (lt, lt);
        }
        at = lt + 2;
    }
    (bytes.len(), bytes.len())
}

/// Where a script's text ends, by the standard's script data states: inside `<!--`, a
/// `<script>` opens a nested one whose `</script>` does not end the outer script (old pages
/// write `<!-- document.write('<script src=x></script>'); //-->`); `-->` leaves both.
fn script_end(bytes: &[u8], from: usize) -> usize {
    #[derive(PartialEq)]
    enum State {
        Data,
        Escaped,
        DoubleEscaped,
    }
    let mut state = State::Data;
    let mut at = from;
    while let Some(i) = memchr::memchr2(b'<', b'-', bytes.get(at..).unwrap_or_default()) {
        let p = at + i;
        let rest = &bytes[p..];
        at = p + 1;
        if rest[0] == b'-' {
            if state != State::Data && rest.starts_with(b"-->") {
                state = State::Data;
                at = p + 3;
            }
            continue;
        }
        if state == State::Data && rest.starts_with(b"<!--") {
            state = State::Escaped;
            at = p + 4;
        } else if tag_named(rest, b"</", b"script") {
            if state != State::DoubleEscaped {
                return p;
            }
            state = State::Escaped;
        } else if state == State::Escaped && tag_named(rest, b"<", b"script") {
            state = State::DoubleEscaped;
        }
    }
    bytes.len()
}

/// Whether `rest` starts with `prefix` and `name` (any case) followed by a space, `/` or `>`.
fn tag_named(rest: &[u8], prefix: &[u8], name: &[u8]) -> bool {
    let end = prefix.len() + name.len();
    rest.starts_with(prefix)
        && rest.len() >= end
        && rest[prefix.len()..end].eq_ignore_ascii_case(name)
        && rest
            .get(end)
            .is_none_or(|&b| is_space(b) || b == b'/' || b == b'>')
}

/// Decodes character references. In an attribute value, a legacy reference without `;`
/// followed by a letter, a digit or `=` stays as written (`?a=1&copy=2` is a URL).
pub(crate) fn decode(s: &str, in_attribute: bool) -> Cow<'_, str> {
    let Some(first) = memchr::memchr(b'&', s.as_bytes()) else {
        return Cow::Borrowed(s);
    };
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut i = first;
    while i < bytes.len() {
        if bytes[i] != b'&' {
            let next = memchr::memchr(b'&', &bytes[i..]).map_or(bytes.len(), |j| i + j);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        match reference(&s[i + 1..], in_attribute, &mut out) {
            Some(len) => i += 1 + len,
            None => {
                out.push('&');
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Decodes the reference at the start of `s` (just after `&`) into `out`; how many bytes of `s`
/// it used, `None` (and nothing written) when there is none.
fn reference(s: &str, in_attribute: bool, out: &mut String) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.first() == Some(&b'#') {
        let hex = matches!(bytes.get(1), Some(b'x' | b'X'));
        let digits_from = if hex { 2 } else { 1 };
        let digits = bytes[digits_from..]
            .iter()
            .take_while(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return None;
        }
        let text = &s[digits_from..digits_from + digits];
        let value = u32::from_str_radix(text, if hex { 16 } else { 10 }).unwrap_or(u32::MAX);
        let mut len = digits_from + digits;
        if bytes.get(len) == Some(&b';') {
            len += 1;
        }
        out.push(numeric(value));
        return Some(len);
    }
    let name_len = bytes
        .iter()
        .take(40)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if name_len == 0 {
        return None;
    }
    if bytes.get(name_len) == Some(&b';') {
        // the usual ones without a look into the whole table
        let common = match &s[..name_len] {
            "nbsp" => Some("\u{a0}"),
            "amp" => Some("&"),
            "lt" => Some("<"),
            "gt" => Some(">"),
            "quot" => Some("\""),
            "apos" => Some("'"),
            "ldquo" => Some("“"),
            "rdquo" => Some("”"),
            "lsquo" => Some("‘"),
            "rsquo" => Some("’"),
            "hellip" => Some("…"),
            "mdash" => Some("—"),
            "middot" => Some("·"),
            "copy" => Some("©"),
            "emsp" => Some("\u{2003}"),
            "ensp" => Some("\u{2002}"),
            _ => None,
        };
        if let Some(c) = common {
            out.push_str(c);
            return Some(name_len + 1);
        }
        let with_semicolon = &s[..=name_len];
        let entity = format!("&{with_semicolon}");
        if let Cow::Owned(decoded) = html_escape::decode_html_entities(&entity)
            && decoded != entity
        {
            out.push_str(&decoded);
            return Some(name_len + 1);
        }
    }
    // the legacy references that need no `;`, longest first
    let name = &s[..name_len];
    let legacy = LEGACY
        .iter()
        .filter(|(n, _)| name.starts_with(n))
        .max_by_key(|(n, _)| n.len())?;
    let len = legacy.0.len();
    if in_attribute
        && bytes
            .get(len)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'=')
    {
        return None;
    }
    out.push_str(legacy.1);
    Some(len)
}

/// A numeric reference's character: NUL, surrogates and values past Unicode give U+FFFD, and
/// 0x80 to 0x9F are read as windows-1252, as the standard says.
fn numeric(value: u32) -> char {
    const C1: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}',
        '\u{017D}', '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}',
        '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}',
        '\u{9D}', '\u{017E}', '\u{0178}',
    ];
    match value {
        0 => '\u{FFFD}',
        0x80..=0x9F => C1[(value - 0x80) as usize],
        _ => char::from_u32(value).unwrap_or('\u{FFFD}'),
    }
}

/// The named references a page may write without `;`, with their characters.
const LEGACY: &[(&str, &str)] = &[
    ("AElig", "Æ"),
    ("AMP", "&"),
    ("Aacute", "Á"),
    ("Acirc", "Â"),
    ("Agrave", "À"),
    ("Aring", "Å"),
    ("Atilde", "Ã"),
    ("Auml", "Ä"),
    ("COPY", "©"),
    ("Ccedil", "Ç"),
    ("ETH", "Ð"),
    ("Eacute", "É"),
    ("Ecirc", "Ê"),
    ("Egrave", "È"),
    ("Euml", "Ë"),
    ("GT", ">"),
    ("Iacute", "Í"),
    ("Icirc", "Î"),
    ("Igrave", "Ì"),
    ("Iuml", "Ï"),
    ("LT", "<"),
    ("Ntilde", "Ñ"),
    ("Oacute", "Ó"),
    ("Ocirc", "Ô"),
    ("Ograve", "Ò"),
    ("Oslash", "Ø"),
    ("Otilde", "Õ"),
    ("Ouml", "Ö"),
    ("QUOT", "\""),
    ("REG", "®"),
    ("THORN", "Þ"),
    ("Uacute", "Ú"),
    ("Ucirc", "Û"),
    ("Ugrave", "Ù"),
    ("Uuml", "Ü"),
    ("Yacute", "Ý"),
    ("aacute", "á"),
    ("acirc", "â"),
    ("acute", "´"),
    ("aelig", "æ"),
    ("agrave", "à"),
    ("amp", "&"),
    ("aring", "å"),
    ("atilde", "ã"),
    ("auml", "ä"),
    ("brvbar", "¦"),
    ("ccedil", "ç"),
    ("cedil", "¸"),
    ("cent", "¢"),
    ("copy", "©"),
    ("curren", "¤"),
    ("deg", "°"),
    ("divide", "÷"),
    ("eacute", "é"),
    ("ecirc", "ê"),
    ("egrave", "è"),
    ("eth", "ð"),
    ("euml", "ë"),
    ("frac12", "½"),
    ("frac14", "¼"),
    ("frac34", "¾"),
    ("gt", ">"),
    ("iacute", "í"),
    ("icirc", "î"),
    ("iexcl", "¡"),
    ("igrave", "ì"),
    ("iquest", "¿"),
    ("iuml", "ï"),
    ("laquo", "«"),
    ("lt", "<"),
    ("macr", "¯"),
    ("micro", "µ"),
    ("middot", "·"),
    ("nbsp", "\u{a0}"),
    ("not", "¬"),
    ("ntilde", "ñ"),
    ("oacute", "ó"),
    ("ocirc", "ô"),
    ("ograve", "ò"),
    ("ordf", "ª"),
    ("ordm", "º"),
    ("oslash", "ø"),
    ("otilde", "õ"),
    ("ouml", "ö"),
    ("para", "¶"),
    ("plusmn", "±"),
    ("pound", "£"),
    ("quot", "\""),
    ("raquo", "»"),
    ("reg", "®"),
    ("sect", "§"),
    ("shy", "\u{ad}"),
    ("sup1", "¹"),
    ("sup2", "²"),
    ("sup3", "³"),
    ("szlig", "ß"),
    ("thorn", "þ"),
    ("times", "×"),
    ("uacute", "ú"),
    ("ucirc", "û"),
    ("ugrave", "ù"),
    ("uml", "¨"),
    ("uuml", "ü"),
    ("yacute", "ý"),
    ("yen", "¥"),
    ("yuml", "ÿ"),
];

/// Where the builder is in the page's outline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing opened yet.
    Start,
    /// `<html>` open, no `<head>` yet.
    BeforeHead,
    /// Inside `<head>`.
    InHead,
    /// `<head>` closed, no `<body>` yet.
    AfterHead,
    /// `<body>` open (given or implied).
    InBody,
}

struct Open {
    name: Cow<'static, str>,
    kind: Kind,
    /// Inside `<svg>` or `<math>` (the element itself included).
    foreign: bool,
    /// Where its start tag is in the page, to open a copy with the same attributes; empty
    /// for an element without attributes.
    source: Range<usize>,
}

struct Tree<'h, 's, S: Sink> {
    html: &'h str,
    /// The start tag being handled.
    token: Range<usize>,
    sink: &'s mut S,
    stack: Vec<Open>,
    /// How many elements of each [`Kind::slot`] are open.
    counts: [u32; TRACKED],
    phase: Phase,
    /// No doctype before the first element: a `<table>` leaves an open `<p>` open.
    quirks: bool,
}

/// Most elements open at once (Chromium's parser nests no deeper).
const MAX_DEPTH: usize = 512;

/// Most attributes kept of one tag: the rest are read past.
const MAX_ATTRS: usize = 128;

/// Most elements `</a>` closes and opens again (see [`Tree::close_link`]).
const MAX_REOPENED: usize = 16;

// One bit for each rule of the standard that names an element (see [`kind`]).

/// May sit in `<head>`.
const HEAD: u16 = 1;
/// Void: never has content.
const VOID: u16 = 1 << 1;
/// The standard's "special" elements: an inline end tag does not close through them.
const SPECIAL: u16 = 1 << 2;
/// Its start tag closes an open `<p>` (in button scope).
const CLOSES_P: u16 = 1 << 3;
/// Its end tag closes everything opened inside it (when it is in scope).
const CLOSES_BY_SCOPE: u16 = 1 << 4;
/// `h1` to `h6`.
const HEADING: u16 = 1 << 5;
/// Bounds the default scope.
const SCOPE: u16 = 1 << 6;
/// An SVG or MathML element whose content is HTML.
const INTEGRATION: u16 = 1 << 7;
/// Its start tag leaves `<svg>` or `<math>` content.
const BREAKS_OUT: u16 = 1 << 8;

/// How many elements have a slot in the open counts.
const TRACKED: usize = 19;

/// What the tree builder knows of an element name.
#[derive(Clone, Copy)]
struct Kind {
    /// The name as a static string, so that the stack holds it without allocating; empty for
    /// a name not in the table.
    name: &'static str,
    bits: u16,
    /// For the elements the builder searches the stack for: the slot that counts how many are
    /// open, so that with none open the search is skipped (the six headings share one).
    slot: Option<usize>,
}

impl Kind {
    fn has(self, bit: u16) -> bool {
        self.bits & bit != 0
    }
}

/// The table of element names, each once: its bits and, where it has one, its slot.
macro_rules! kinds {
    ($($name:literal: $bits:expr $(, slot $slot:literal)?;)*) => {
        fn kind(name: &str) -> Kind {
            match name {
                $($name => Kind { name: $name, bits: $bits, slot: kinds!(@slot $($slot)?) },)*
                _ => Kind { name: "", bits: 0, slot: None },
            }
        }

        #[cfg(test)]
        const KIND_NAMES: &[&str] = &[$($name),*];
    };
    (@slot) => { None };
    (@slot $slot:literal) => { Some($slot) };
}

kinds! {
    "a": 0, slot 0;
    "abbr": 0;
    "address": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "annotation-xml": INTEGRATION;
    "applet": SPECIAL | CLOSES_BY_SCOPE | SCOPE;
    "area": VOID | SPECIAL;
    "article": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "aside": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "b": BREAKS_OUT;
    "base": HEAD | VOID | SPECIAL;
    "basefont": HEAD | VOID | SPECIAL;
    "bgsound": HEAD | VOID | SPECIAL;
    "big": BREAKS_OUT;
    "blockquote": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE | BREAKS_OUT;
    "body": SPECIAL | BREAKS_OUT;
    "br": VOID | SPECIAL | BREAKS_OUT;
    "button": SPECIAL | CLOSES_BY_SCOPE, slot 5;
    "caption": SPECIAL | SCOPE, slot 15;
    "center": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE | BREAKS_OUT;
    "cite": 0;
    "code": BREAKS_OUT;
    "col": VOID | SPECIAL;
    "colgroup": SPECIAL, slot 16;
    "dd": SPECIAL | CLOSES_P | BREAKS_OUT, slot 3;
    "del": 0;
    "desc": INTEGRATION;
    "details": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "dialog": CLOSES_P | CLOSES_BY_SCOPE;
    "dir": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "div": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE | BREAKS_OUT;
    "dl": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE | BREAKS_OUT;
    "dt": SPECIAL | CLOSES_P | BREAKS_OUT, slot 4;
    "em": BREAKS_OUT;
    "embed": VOID | SPECIAL | BREAKS_OUT;
    "fieldset": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "figcaption": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "figure": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "font": 0;
    "footer": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "foreignobject": INTEGRATION;
    "form": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE, slot 7;
    "frame": VOID | SPECIAL;
    "frameset": SPECIAL;
    "g": 0;
    "h1": SPECIAL | CLOSES_P | HEADING | BREAKS_OUT, slot 18;
    "h2": SPECIAL | CLOSES_P | HEADING | BREAKS_OUT, slot 18;
    "h3": SPECIAL | CLOSES_P | HEADING | BREAKS_OUT, slot 18;
    "h4": SPECIAL | CLOSES_P | HEADING | BREAKS_OUT, slot 18;
    "h5": SPECIAL | CLOSES_P | HEADING | BREAKS_OUT, slot 18;
    "h6": SPECIAL | CLOSES_P | HEADING | BREAKS_OUT, slot 18;
    "head": SPECIAL | BREAKS_OUT, slot 17;
    "header": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "hgroup": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "hr": VOID | SPECIAL | CLOSES_P | BREAKS_OUT;
    "html": SPECIAL | SCOPE;
    "i": BREAKS_OUT;
    "iframe": SPECIAL;
    "image": VOID;
    "img": VOID | SPECIAL | BREAKS_OUT;
    "input": VOID | SPECIAL;
    "ins": 0;
    "keygen": VOID | SPECIAL;
    "label": 0;
    "li": SPECIAL | CLOSES_P | BREAKS_OUT, slot 2;
    "link": HEAD | VOID | SPECIAL;
    "listing": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE | BREAKS_OUT;
    "main": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "marquee": SPECIAL | CLOSES_BY_SCOPE | SCOPE;
    "menu": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE | BREAKS_OUT;
    "meta": HEAD | VOID | SPECIAL | BREAKS_OUT;
    "mi": INTEGRATION;
    "mn": INTEGRATION;
    "mo": INTEGRATION;
    "ms": INTEGRATION;
    "mtext": INTEGRATION;
    "nav": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "nobr": BREAKS_OUT;
    "noembed": SPECIAL;
    "noframes": HEAD | SPECIAL;
    "noscript": HEAD | SPECIAL;
    "object": SPECIAL | CLOSES_BY_SCOPE | SCOPE;
    "ol": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE | BREAKS_OUT;
    "option": 0;
    "p": SPECIAL | CLOSES_P | BREAKS_OUT, slot 1;
    "param": VOID | SPECIAL;
    "path": 0;
    "plaintext": SPECIAL | CLOSES_P;
    "pre": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE | BREAKS_OUT;
    "ruby": BREAKS_OUT;
    "s": BREAKS_OUT;
    "script": HEAD | SPECIAL;
    "search": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "section": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "select": SPECIAL, slot 6;
    "small": BREAKS_OUT;
    "source": VOID | SPECIAL;
    "span": BREAKS_OUT;
    "strike": BREAKS_OUT;
    "strong": BREAKS_OUT;
    "style": HEAD | SPECIAL;
    "sub": BREAKS_OUT;
    "summary": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE;
    "sup": BREAKS_OUT;
    "svg": 0;
    "table": SPECIAL | SCOPE | BREAKS_OUT, slot 8;
    "tbody": SPECIAL, slot 9;
    "td": SPECIAL | SCOPE, slot 13;
    "template": HEAD | SPECIAL | SCOPE;
    "textarea": SPECIAL;
    "tfoot": SPECIAL, slot 11;
    "th": SPECIAL | SCOPE, slot 14;
    "thead": SPECIAL, slot 10;
    "time": 0;
    "title": HEAD | SPECIAL | INTEGRATION;
    "tr": SPECIAL, slot 12;
    "track": VOID | SPECIAL;
    "tt": BREAKS_OUT;
    "u": BREAKS_OUT;
    "ul": SPECIAL | CLOSES_P | CLOSES_BY_SCOPE | BREAKS_OUT;
    "var": BREAKS_OUT;
    "video": 0;
    "wbr": VOID | SPECIAL;
    "xmp": SPECIAL | CLOSES_P;
}

const NO_ATTRS: &[(Cow<'static, str>, Cow<'static, str>)] = &[];

impl<S: Sink> Tree<'_, '_, S> {
    fn doctype(&mut self) {
        if self.phase == Phase::Start {
            self.quirks = false;
        }
    }

    /// The current element is an SVG or MathML element (raw text and `/>` are HTML's and
    /// foreign content's respectively).
    fn current_is_foreign(&self) -> bool {
        self.stack.last().is_some_and(|o| o.foreign)
    }

    /// The current element is SVG or MathML content (inside `<foreignObject>`, `<desc>`, an
    /// SVG `<title>` or MathML text, HTML again).
    fn in_foreign(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|o| o.foreign && !o.kind.has(INTEGRATION))
    }

    fn current(&self) -> &str {
        self.stack.last().map_or("", |o| &o.name)
    }

    fn current_has(&self, bit: u16) -> bool {
        self.stack.last().is_some_and(|o| o.kind.has(bit))
    }

    fn push(&mut self, name: &str, attrs: &[(Cow<'_, str>, Cow<'_, str>)]) {
        // as deep as browsers nest: past it the innermost element closes first, so every
        // search of the stack is bounded
        if self.stack.len() >= MAX_DEPTH {
            self.pop();
        }
        let foreign = self.in_foreign() || name == "svg" || name == "math";
        self.sink.open(&Tag { name, attrs });
        let kind = kind(name);
        if let Some(slot) = kind.slot {
            self.counts[slot] += 1;
        }
        let source = if attrs.is_empty() {
            0..0
        } else {
            self.token.clone()
        };
        self.stack.push(Open {
            name: if kind.name.is_empty() {
                Cow::Owned(name.to_string())
            } else {
                Cow::Borrowed(kind.name)
            },
            kind,
            foreign,
            source,
        });
    }

    fn pop(&mut self) {
        if let Some(o) = self.stack.pop() {
            if let Some(slot) = o.kind.slot {
                self.counts[slot] -= 1;
            }
            self.sink.close();
        }
    }

    /// Whether no `name` is open (no heading, for one of them), known without a search for
    /// the names with a [`Kind::slot`].
    fn none_open(&self, name: &str) -> bool {
        kind(name).slot.is_some_and(|slot| self.counts[slot] == 0)
    }

    /// Index of the innermost open `name`, anywhere in the stack.
    fn find(&self, name: &str) -> Option<usize> {
        if self.none_open(name) {
            return None;
        }
        self.stack.iter().rposition(|o| &*o.name == name)
    }

    /// Pops up to and including the innermost element at `index`.
    fn pop_to(&mut self, index: usize) {
        while self.stack.len() > index {
            self.pop();
        }
    }

    /// Index of the innermost open `name` in scope: the search stops at the scope's
    /// boundaries (and at `extra`).
    fn in_scope(&self, name: &str, extra: &[&str]) -> Option<usize> {
        self.search(name, |o| o.kind.has(SCOPE) || extra.contains(&&*o.name))
    }

    /// Index of the innermost open `name` in table scope (`<html>`, `<table>`, `<template>`
    /// bound it).
    fn in_table_scope(&self, name: &str) -> Option<usize> {
        self.search(name, |o| matches!(&*o.name, "html" | "table" | "template"))
    }

    /// Index of the innermost open `name`, searching out from the current element until
    /// `stop`.
    fn search(&self, name: &str, stop: impl Fn(&Open) -> bool) -> Option<usize> {
        if self.none_open(name) {
            return None;
        }
        for (i, o) in self.stack.iter().enumerate().rev() {
            if &*o.name == name {
                return Some(i);
            }
            if stop(o) {
                return None;
            }
        }
        None
    }

    fn close_p(&mut self) {
        if let Some(i) = self.in_scope("p", &["button"]) {
            self.pop_to(i);
        }
    }

    fn ensure_html(&mut self) {
        if self.phase == Phase::Start {
            self.push("html", NO_ATTRS);
            self.phase = Phase::BeforeHead;
        }
    }

    /// Opens `<body>` if it is not open yet, closing `<head>` on the way.
    fn ensure_body(&mut self) {
        self.ensure_html();
        if self.phase == Phase::BeforeHead {
            self.push("head", NO_ATTRS);
            self.phase = Phase::InHead;
        }
        if self.phase == Phase::InHead {
            if let Some(i) = self.find("head") {
                self.pop_to(i);
            }
            self.phase = Phase::AfterHead;
        }
        if self.phase == Phase::AfterHead {
            // what opened after `</head>` (a `<template>`) closes: the body follows the head
            self.pop_to(1);
            self.push("body", NO_ATTRS);
            self.phase = Phase::InBody;
        }
    }

    fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.phase != Phase::InBody && text.bytes().all(is_space) {
            // whitespace before the body: the standard drops it or keeps it where no text is read
            if self.phase != Phase::Start {
                self.sink.text(text);
            }
            return;
        }
        // text before the body other than a title's or a script's opens the body
        let raw = self.current_is_raw_text();
        if self.phase != Phase::InBody && !raw {
            self.ensure_body();
        }
        if raw {
            self.sink.text(text);
        } else {
            self.sink.text(&decode(text, false));
        }
    }

    /// The current element holds raw text, handed over already decoded where it should be.
    fn current_is_raw_text(&self) -> bool {
        !self.current_is_foreign() && raw_text_kind(self.current()).is_some()
    }

    /// Handles a start tag; whether an element was opened.
    fn start_tag(
        &mut self,
        name: &str,
        attrs: &[(Cow<'_, str>, Cow<'_, str>)],
        self_closing: bool,
    ) -> bool {
        match self.phase {
            Phase::Start => {
                if name == "html" {
                    self.push("html", attrs);
                    self.phase = Phase::BeforeHead;
                    return true;
                }
                self.ensure_html();
                return self.start_tag(name, attrs, self_closing);
            }
            Phase::BeforeHead => {
                if name == "html" {
                    return false;
                }
                if name == "head" {
                    self.push("head", attrs);
                    self.phase = Phase::InHead;
                    return true;
                }
                self.push("head", NO_ATTRS);
                self.phase = Phase::InHead;
                return self.start_tag(name, attrs, self_closing);
            }
            Phase::InHead => {
                if kind(name).has(HEAD) {
                    return self.open(name, attrs, self_closing);
                }
                if name == "head" || name == "html" {
                    return false;
                }
                if let Some(i) = self.find("head") {
                    self.pop_to(i);
                }
                self.phase = Phase::AfterHead;
                return self.start_tag(name, attrs, self_closing);
            }
            Phase::AfterHead => {
                if name == "body" || name == "frameset" {
                    self.push(name, attrs);
                    self.phase = Phase::InBody;
                    return true;
                }
                if kind(name).has(HEAD) {
                    return self.open(name, attrs, self_closing);
                }
                if name == "head" || name == "html" {
                    return false;
                }
                self.ensure_body();
                return self.start_tag(name, attrs, self_closing);
            }
            Phase::InBody => {}
        }
        if self.in_foreign() {
            if kind(name).has(BREAKS_OUT) {
                while self.in_foreign() {
                    self.pop();
                }
            } else {
                self.push(name, attrs);
                if self_closing {
                    self.pop();
                }
                return true;
            }
        }
        if self.find("select").is_some() {
            match name {
                "option" | "optgroup" => {}
                "select" => {
                    if let Some(i) = self.find("select") {
                        self.pop_to(i);
                    }
                    return false;
                }
                "input" | "keygen" | "textarea" => {
                    if let Some(i) = self.find("select") {
                        self.pop_to(i);
                    }
                }
                "script" | "template" => return self.open(name, attrs, self_closing),
                _ => return false,
            }
        }
        match name {
            "html" | "head" | "body" | "frameset" => return false,
            "form" if self.find("form").is_some() => return false,
            "li" => self.close_list_item(&["li"]),
            "dd" | "dt" => self.close_list_item(&["dd", "dt"]),
            "table" => {
                if matches!(self.current(), "table" | "tbody" | "thead" | "tfoot" | "tr") {
                    if let Some(i) = self.in_table_scope("table") {
                        self.pop_to(i);
                    }
                } else if !self.quirks {
                    self.close_p();
                }
            }
            "tr" | "td" | "th" | "tbody" | "thead" | "tfoot" | "caption" | "colgroup" | "col" => {
                return self.table_part(name, attrs, self_closing);
            }
            // an open link closes before the next one
            "a" => self.close_link(),
            "button" => {
                if let Some(i) = self.in_scope("button", &[]) {
                    self.pop_to(i);
                }
            }
            "option" if self.current() == "option" => self.pop(),
            "optgroup" => {
                if self.current() == "option" {
                    self.pop();
                }
                if self.current() == "optgroup" {
                    self.pop();
                }
            }
            _ => {}
        }
        let k = kind(name);
        if k.has(CLOSES_P) {
            self.close_p();
        }
        if k.has(HEADING) && self.current_has(HEADING) {
            self.pop();
        }
        self.open(name, attrs, self_closing)
    }

    /// `<li>` closes the open `<li>` it would sit beside; `<dd>` and `<dt>` likewise.
    fn close_list_item(&mut self, names: &[&str]) {
        if names.iter().all(|n| self.none_open(n)) {
            return;
        }
        for i in (0..self.stack.len()).rev() {
            let o = &self.stack[i];
            if names.contains(&&*o.name) {
                self.pop_to(i);
                return;
            }
            if o.kind.has(SPECIAL) && !matches!(&*o.name, "address" | "div" | "p") {
                return;
            }
        }
    }

    /// The parts of a table: ignored outside one, with `<tbody>` and `<tr>` implied.
    fn table_part(
        &mut self,
        name: &str,
        attrs: &[(Cow<'_, str>, Cow<'_, str>)],
        self_closing: bool,
    ) -> bool {
        let Some(table) = self.in_table_scope("table") else {
            return false;
        };
        let stop: &[&str] = match name {
            "td" | "th" => &["tr", "tbody", "thead", "tfoot", "table"],
            "tr" => &["tbody", "thead", "tfoot", "table"],
            _ => &["table"],
        };
        while self.stack.len() > table + 1 && !stop.contains(&self.current()) {
            self.pop();
        }
        if matches!(name, "tr" | "td" | "th") && self.current() == "table" {
            self.push("tbody", NO_ATTRS);
        }
        if matches!(name, "td" | "th") && self.current() != "tr" {
            self.push("tr", NO_ATTRS);
        }
        self.open(name, attrs, self_closing)
    }

    /// Opens `name`; a void element closes at once.
    fn open(
        &mut self,
        name: &str,
        attrs: &[(Cow<'_, str>, Cow<'_, str>)],
        self_closing: bool,
    ) -> bool {
        let name = if name == "image" { "img" } else { name };
        self.push(name, attrs);
        if self.current_has(VOID) || (self_closing && self.current_is_foreign()) {
            self.pop();
        }
        true
    }

    fn end_tag(&mut self, name: &str) {
        match self.phase {
            Phase::Start | Phase::BeforeHead => {
                if !matches!(name, "head" | "body" | "html" | "br") {
                    return;
                }
                self.ensure_html();
            }
            Phase::InHead => {
                if name == "head" {
                    if let Some(i) = self.find("head") {
                        self.pop_to(i);
                    }
                    self.phase = Phase::AfterHead;
                    return;
                }
                if kind(name).has(HEAD) {
                    if let Some(i) = self.find(name) {
                        self.pop_to(i);
                    }
                    return;
                }
                if !matches!(name, "body" | "html" | "br") {
                    return;
                }
            }
            _ => {}
        }
        if self.in_foreign() {
            // the innermost element of that name inside the foreign content
            let foreign = self.stack.iter().rev().take_while(|o| o.foreign).count();
            let from = self.stack.len() - foreign;
            if let Some(i) = self.stack[from..]
                .iter()
                .rposition(|o| o.name.eq_ignore_ascii_case(name))
                .map(|i| from + i)
            {
                self.pop_to(i);
                return;
            }
        }
        match name {
            // the body stays open to the end of the page, as in browsers
            "body" | "html" | "head" => {}
            "p" => match self.in_scope("p", &["button"]) {
                Some(i) => self.pop_to(i),
                None => {
                    self.ensure_body();
                    self.push("p", NO_ATTRS);
                    self.pop();
                }
            },
            "br" => {
                self.ensure_body();
                self.push("br", NO_ATTRS);
                self.pop();
            }
            "li" => {
                if let Some(i) = self.in_scope("li", &["ol", "ul"]) {
                    self.pop_to(i);
                }
            }
            "dd" | "dt" => {
                if let Some(i) = self.in_scope(name, &[]) {
                    self.pop_to(i);
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                // any heading closes an open one
                let open = if self.none_open(name) {
                    None
                } else {
                    self.stack.iter().rposition(|o| o.kind.has(HEADING))
                };
                if let Some(i) = open
                    && !self.stack[i + 1..].iter().any(|o| o.kind.has(SCOPE))
                {
                    self.pop_to(i);
                }
            }
            "table" | "tbody" | "thead" | "tfoot" | "tr" | "td" | "th" | "caption" | "colgroup" => {
                if let Some(i) = self.in_table_scope(name) {
                    self.pop_to(i);
                }
            }
            "select" => {
                if let Some(i) = self.find("select") {
                    self.pop_to(i);
                }
            }
            "a" => self.close_link(),
            // blocks close whatever is open inside them
            _ if kind(name).has(CLOSES_BY_SCOPE) => {
                if let Some(i) = self.in_scope(name, &[]) {
                    self.pop_to(i);
                }
            }
            _ => {
                if self.find("select").is_some()
                    && !matches!(name, "option" | "optgroup" | "script" | "template")
                {
                    return;
                }
                for i in (0..self.stack.len()).rev() {
                    let o = &self.stack[i];
                    if o.name == name {
                        self.pop_to(i);
                        return;
                    }
                    if o.kind.has(SPECIAL) {
                        return;
                    }
                }
            }
        }
    }

    /// `</a>`: the link ends here even where blocks opened inside it were left open (`<a
    /// href=x>menu</a` lost, and the page's header `<div>` inside it). The standard moves
    /// those blocks out of the link; a stream cannot move what it has sent, so they close
    /// with the link and open again, as copies with the same attributes, outside it.
    fn close_link(&mut self) {
        let Some(i) = self.in_scope("a", &[]) else {
            return;
        };
        if !self.stack[i + 1..].iter().any(|o| o.kind.has(SPECIAL)) {
            self.pop_to(i);
            return;
        }
        // bounded, as the standard bounds its own loop: past it the `</a>` is ignored and the
        // link ends with its parent
        if self.stack.len() - i - 1 > MAX_REOPENED {
            return;
        }
        let above: Vec<(Cow<'static, str>, Range<usize>)> = self.stack[i + 1..]
            .iter()
            .map(|o| (o.name.clone(), o.source.clone()))
            .collect();
        let token = self.token.clone();
        self.pop_to(i);
        let mut attrs = Vec::new();
        for (name, source) in above {
            attrs.clear();
            if !source.is_empty() {
                let html = self.html;
                let _ = read_tag(html, source.start + 1, &mut attrs);
            }
            self.token = source;
            self.push(&name, &attrs);
        }
        self.token = token;
    }

    fn finish(&mut self) {
        if self.phase != Phase::InBody {
            self.ensure_body();
        }
        self.pop_to(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parse as a compact outline: `<name attr=value>` opens, `</>` closes, text as is.
    #[derive(Default)]
    struct Outline(String);

    impl Sink for Outline {
        fn open(&mut self, tag: &Tag<'_>) {
            self.0.push('<');
            self.0.push_str(tag.name);
            for (n, v) in tag.attrs {
                self.0.push_str(&format!(" {n}={v}"));
            }
            self.0.push('>');
        }
        fn text(&mut self, text: &str) {
            self.0.push_str(text);
        }
        fn close(&mut self) {
            self.0.push_str("</>");
        }
    }

    fn outline(html: &str) -> String {
        let mut o = Outline::default();
        parse(html, &mut o);
        o.0
    }

    /// The outline of `html` inside the implied `html`, `head` and `body`.
    fn body(html: &str) -> String {
        let o = outline(html);
        o.strip_prefix("<html><head></><body>")
            .and_then(|o| o.strip_suffix("</></>"))
            .unwrap_or(&o)
            .to_string()
    }

    #[test]
    fn the_table_of_names_is_consistent() {
        for name in KIND_NAMES {
            let k = kind(name);
            assert_eq!(k.name, *name);
            assert!(k.slot.is_none_or(|s| s < TRACKED), "{name}");
            assert_eq!(k.has(HEADING), k.slot == kind("h1").slot, "{name}");
        }
        assert!(kind("custom-element").name.is_empty());
    }

    #[test]
    fn document_outline_is_implied() {
        assert_eq!(outline(""), "<html><head></><body></></>");
        assert_eq!(outline("文字"), "<html><head></><body>文字</></>");
        assert_eq!(
            outline("<!DOCTYPE html><title>标题</title><p>正文"),
            "<html><head><title>标题</></><body><p>正文</></></>"
        );
        assert_eq!(
            outline(
                "<html lang=zh><head><meta charset=utf-8></head>\n<body class=b>x</body></html>\n后"
            ),
            "<html lang=zh><head><meta charset=utf-8></></>\n<body class=b>x\n后</></>"
        );
        // head content written after `</head>` does not take the body in
        assert_eq!(
            outline("<head><title>t</title></head>\n<script>var a=1;</script>\n<body><p>正文"),
            "<html><head><title>t</></>\n<script>var a=1;</>\n<body><p>正文</></></>"
        );
        assert_eq!(
            outline("<head></head><style>p{}</style><div>正文</div>"),
            "<html><head></><style>p{}</><body><div>正文</></></>"
        );
        // a second body, html or head is ignored
        assert_eq!(body("<div>a<body><html><head>b</div>"), "<div>ab</>");
    }

    #[test]
    fn raw_text_is_not_markup() {
        assert_eq!(
            body("<p><script>if (a<b) { x = '</div>'; }</script>t"),
            "<p><script>if (a<b) { x = '</div>'; }</>t</>"
        );
        assert_eq!(body("<p><style>p{}</STYLE >x"), "<p><style>p{}</>x</>");
        assert_eq!(body("<textarea>&lt;b&gt;</textarea>"), "<textarea><b></>");
        assert_eq!(body("<p><script>&lt;</script>"), "<p><script>&lt;</></>");
        assert_eq!(
            body("<p><noscript><img src=a></noscript>"),
            "<p><noscript><img src=a></></>"
        );
        // unclosed: to the end of the page
        assert_eq!(
            body("<p><script>a</scriptx>b"),
            "<p><script>a</scriptx>b</></>"
        );
        assert_eq!(body("<plaintext></p>x"), "<plaintext></p>x</>");
        // a script written by a script inside a comment does not end the outer one
        let s = "<!--\ndocument.write('<script src=x></script>');\n//-->";
        assert_eq!(
            body(&format!("<p><script>{s}</script>t")),
            format!("<p><script>{s}</>t</>")
        );
        assert_eq!(
            body("<p><script><!-- a --></script>t"),
            "<p><script><!-- a --></>t</>"
        );
        assert_eq!(
            body("<p><script>a<!-- <script> b --></script>t"),
            "<p><script>a<!-- <script> b --></>t</>"
        );
    }

    #[test]
    fn void_elements_and_self_closing() {
        assert_eq!(
            body("<p>a<br>b<img src=x.jpg alt=图/>c<div/>d</div>e"),
            "<p>a<br></>b<img src=x.jpg alt=图/></>c</><div>d</>e"
        );
        assert_eq!(
            body("<svg><path d=\"M0\"/><g><rect/></g></svg>x"),
            "<svg><path d=M0></><g><rect></></></>x"
        );
        assert_eq!(body("<svg><p>a</svg>"), "<svg></><p>a</>");
        // HTML inside `<foreignObject>` stays inside the SVG
        assert_eq!(
            body("<svg><foreignObject><div>图中文字</div></foreignObject></svg>x"),
            "<svg><foreignobject><div>图中文字</></></>x"
        );
    }

    #[test]
    fn end_tags_implied() {
        assert_eq!(body("<p>a<p>b<div>c</div>"), "<p>a</><p>b</><div>c</>");
        assert_eq!(
            body("<ul><li>a<li>b<ul><li>c</ul><li>d</ul>"),
            "<ul><li>a</><li>b<ul><li>c</></></><li>d</></>"
        );
        assert_eq!(
            body("<dl><dt>a<dd>b<dt>c</dl>"),
            "<dl><dt>a</><dd>b</><dt>c</></>"
        );
        assert_eq!(body("<h1>a<h2>b</h2>"), "<h1>a</><h2>b</>");
        assert_eq!(body("<p><span>a</p>b"), "<p><span>a</></>b");
        // an inline end tag does not close through a block; a block's end tag does
        assert_eq!(body("<span><div>a</span>b</div>c"), "<span><div>ab</>c</>");
        assert_eq!(body("<div><p>a<b>b</div>c"), "<div><p>a<b>b</></></>c");
        assert_eq!(body("<div></p>a"), "<div><p></>a</>");
        assert_eq!(body("a</br>b"), "a<br></>b");
        assert_eq!(
            body("<a href=1>x<a href=2>y</a>"),
            "<a href=1>x</><a href=2>y</>"
        );
        // a link left open around blocks ends at its end tag; the blocks go on outside it
        assert_eq!(
            body("<div><a href=1>menu<div class=h><p>x</a>y</div>z"),
            "<div><a href=1>menu<div class=h><p>x</></></><div class=h><p>y</></>z</>"
        );
        assert_eq!(
            body("<a href=1><div>x<a href=2>y</a>"),
            "<a href=1><div>x</></><div><a href=2>y</></>"
        );
        // in quirks mode a table stays inside the paragraph
        assert_eq!(body("<p>a<table></table>"), "<p>a<table></></>");
        assert_eq!(
            outline("<!doctype html><p>a<table></table>"),
            "<html><head></><body><p>a</><table></></></>"
        );
        assert_eq!(
            body("<select><option>a<option>b<div>c</div></select>d"),
            "<select><option>a</><option>bc</></>d"
        );
    }

    #[test]
    fn tables_get_their_rows() {
        assert_eq!(
            body("<table><td>a<td>b<tr><th>c</table>d"),
            "<table><tbody><tr><td>a</><td>b</></><tr><th>c</></></></>d"
        );
        assert_eq!(
            body("<table><tbody><tr><td><table><tr><td>x</table>y</td></tr></table>"),
            "<table><tbody><tr><td><table><tbody><tr><td>x</></></></>y</></></></>"
        );
        // table parts outside a table are ignored
        assert_eq!(body("<td>a</td><tr>b"), "ab");
    }

    #[test]
    fn attributes() {
        assert_eq!(
            body(r#"<IMG SRC="a b.jpg" alt='x"y' data-x=1 ALT=2 checked title=&quot;t&quot;>"#),
            "<img src=a b.jpg alt=x\"y data-x=1 checked= title=\"t\"></>"
        );
        assert_eq!(
            body("<a href='/s?a=1&copy=2&amp;b=3&lt=4'>x</a>"),
            "<a href=/s?a=1&copy=2&b=3&lt=4>x</>"
        );
        // a page ending inside a tag drops the tag
        assert_eq!(body("a<div class=\"x"), "a");
        assert_eq!(body("a<div"), "a");
    }

    #[test]
    fn comments_and_stray_markup() {
        assert_eq!(body("a<!-- <p>b</p> -->c<!---->d<!-->e<!--->f"), "acdef");
        assert_eq!(body("a<!-- x --!>b<?xml x?>c<![CDATA[y]]>d"), "abcd");
        assert_eq!(body("a < b <3 </ c> d</>e"), "a < b <3  de");
        assert_eq!(body("a<!-- never closed"), "a");
    }

    #[test]
    fn character_references() {
        assert_eq!(
            decode("&amp;&lt;&gt;&quot;&#39;&#x4e2d;&#20013;", false),
            "&<>\"'中中"
        );
        assert_eq!(
            decode("&nbsp&nbspx &copy 2024 &notit;", false),
            "\u{a0}\u{a0}x © 2024 ¬it;"
        );
        assert_eq!(decode("&ldquo;你好&rdquo;&hellip;", false), "“你好”…");
        assert_eq!(
            decode("&#150;&#0;&#xD800;&#x110000;&#65", false),
            "–\u{fffd}\u{fffd}\u{fffd}A"
        );
        assert_eq!(
            decode("a & b &unknown; &#; &#x;", false),
            "a & b &unknown; &#; &#x;"
        );
        assert_eq!(decode("&copy=1&copy;", true), "&copy=1©");
        // the usual references decoded without the table decode as the table does
        for name in [
            "nbsp", "amp", "lt", "gt", "quot", "apos", "ldquo", "rdquo", "lsquo", "rsquo",
            "hellip", "mdash", "middot", "copy", "emsp", "ensp",
        ] {
            let r = format!("&{name};");
            assert_eq!(
                decode(&r, false),
                html_escape::decode_html_entities(&r),
                "{r}"
            );
        }
    }

    #[test]
    fn any_input_gives_balanced_events() {
        struct Depth(i64, bool);
        impl Sink for Depth {
            fn open(&mut self, _: &Tag<'_>) {
                self.0 += 1;
            }
            fn text(&mut self, _: &str) {}
            fn close(&mut self) {
                self.0 -= 1;
                self.1 &= self.0 >= 0;
            }
        }
        let pieces = [
            "<p>",
            "</p>",
            "<div>",
            "</div>",
            "<table>",
            "<td>",
            "</tr>",
            "<svg>",
            "<g/>",
            "</svg>",
            "<select>",
            "<option>",
            "</select>",
            "<script>",
            "</script>",
            "<!--",
            "-->",
            "<a href=x>",
            "</a>",
            "<li>",
            "</ul>",
            "<h1>",
            "</h2>",
            "&amp",
            "文",
            "<",
            "\"",
            "'",
            "=",
            "<body>",
            "</html>",
            "<math>",
            "<b>",
            "</b>",
            "<textarea>",
        ];
        let mut seed = 7u64;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(seed % 40) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let mut d = Depth(0, true);
            parse(&s, &mut d);
            assert!(d.1 && d.0 == 0, "unbalanced on {s:?}");
        }
    }
}
