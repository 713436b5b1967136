//! The page as a sequence of text blocks: each run of text between block-level boundaries,
//! with the counts the scorer needs and its place in the element tree.
//!
//! The walk takes the parser's events one by one and keeps its own stack, so any nesting
//! depth is safe.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use crate::html::{self, Sink, Tag};

/// One run of text.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub text: String,
    /// Characters that are not whitespace.
    pub chars: usize,
    /// Of which inside links.
    pub link_chars: usize,
    /// Sentence punctuation (Chinese and ASCII).
    pub punct: usize,
    /// Sentence-ending punctuation: `。！？；…!?;`.
    pub ends: usize,
    /// Characters inside an inline element whose class or id names a caption
    /// (`<span class=img_descr>`).
    pub caption_chars: usize,
    /// Dense index of the innermost block-level element holding the text.
    pub owner: usize,
    /// Inside an element marked as boilerplate (navigation, footer, comments, sharing...);
    /// set by [`crate::content::resolve_boilerplate`] once the whole page is known.
    pub boiler: bool,
}

/// An `<img>` found on the way, with what may describe it.
#[derive(Debug, Clone)]
pub(crate) struct ImageRef {
    pub src: Option<String>,
    pub alt: Option<String>,
    pub title: Option<String>,
    /// `<figcaption>` of the enclosing `<figure>`, filled in when the figure closes.
    pub figcaption: Option<String>,
    /// Dense index of the element that holds the image.
    pub owner: usize,
    /// Index of the first block after the image.
    pub next_block: usize,
    pub tiny: bool,
}

/// The walk's result.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub blocks: Vec<Block>,
    pub images: Vec<ImageRef>,
    /// Parent of each element, by dense index (elements numbered in document order).
    pub parent: Vec<Option<usize>>,
    /// How each element's tag, class or id marks it.
    pub marks: Vec<Mark>,
    /// Each element's tag and class attribute, by dense index: siblings with the same one are
    /// items of one list.
    pub kinds: Vec<String>,
    /// Whether each element is boilerplate, once [`crate::content::resolve_boilerplate`] ran.
    pub marked: Vec<bool>,
    /// Whether each element is an item of a list of records (comments, related stories, news
    /// lists), once [`crate::content::resolve_boilerplate`] ran.
    pub records: Vec<bool>,
    pub title: Option<String>,
    pub h1: Vec<(usize, String)>,
    /// Other headings (`h2` to `h6`): the element, the number of blocks before it, the text.
    pub headings: Vec<(usize, usize, String)>,
    /// Elements whose tag, class or id names an image caption (`figcaption`, `caption`,
    /// `pic-text`, `img_desc`...), by dense index.
    pub caption_like: Vec<bool>,
    /// `<meta>` name/property/itemprop (lower case) and content, in order.
    pub meta: Vec<(String, String)>,
    /// `<time datetime>` elements: the element (dense index) and the value.
    pub times: Vec<(usize, String)>,
    /// Texts of `application/ld+json` scripts.
    pub json_ld: Vec<String>,
    pub base: Option<String>,
    /// `href`s of visible links not marked `rel=nofollow`, in document order.
    pub links: Vec<String>,
}

/// Subtrees whose text is never content.
fn skipped(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "iframe"
            | "object"
            | "embed"
            | "svg"
            | "math"
            | "select"
            | "textarea"
            | "button"
            | "canvas"
            | "video"
            | "audio"
            | "map"
            | "option"
            | "title"
    )
}

/// Elements that end a block of text.
fn block_level(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "center"
            | "dd"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "frameset"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "html"
            | "li"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "table"
            | "tbody"
            | "thead"
            | "tfoot"
            | "tr"
            | "td"
            | "th"
            | "ul"
            | "caption"
            | "summary"
            | "legend"
            | "br"
            | "text"
    )
}

/// How an element's tag, class or id marks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    None,
    /// A widget: share bars, ads, related lists, tags, sidebars. Small by nature, so the mark
    /// is ignored on an element holding most of the page's prose.
    Widget,
    /// A section that is never the article however large: comments, replies, navigation,
    /// footers, copyright notices.
    Section,
}

/// Class or id words (matched as whole words) and fragments (matched anywhere) for sections.
const SECTION_WORDS: &[&str] = &[
    "nav",
    "navbar",
    "navi",
    "menu",
    "footer",
    "foot",
    "comment",
    "comments",
    "reply",
    "copyright",
    "breadcrumb",
    "breadcrumbs",
    "crumb",
    "login",
    "topbar",
    "sitemap",
];
const SECTION_PARTS: &[&str] = &[
    "comment",
    "footer",
    "copyright",
    "breadcrumb",
    "navbar",
    "topnav",
];

/// The same for widgets.
const WIDGET_WORDS: &[&str] = &[
    "sidebar",
    "side",
    "share",
    "sharing",
    "related",
    "recommend",
    "ad",
    "ads",
    "advert",
    "advertisement",
    "banner",
    "toolbar",
    "pager",
    "pagination",
    "hot",
    "hotnews",
    "rank",
    "ranking",
    "friendlink",
    "links",
    "bottom",
    "tags",
    "guide",
];
const WIDGET_PARTS: &[&str] = &[
    "sidebar",
    "recommend",
    "advert",
    "share",
    "related",
    "friendlink",
];

/// Sentence punctuation, Chinese and ASCII.
pub(crate) fn is_punct(c: char) -> bool {
    matches!(
        c,
        '，' | '。'
            | '！'
            | '？'
            | '；'
            | '：'
            | '、'
            | '…'
            | '“'
            | '”'
            | '「'
            | '」'
            | '（'
            | '）'
            | ','
            | '.'
            | '!'
            | '?'
            | ';'
    )
}

fn is_sentence_end(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '；' | '…' | '!' | '?' | ';')
}

const F_BLOCK: u8 = 1;
const F_LINK: u8 = 2;
const F_CAPTION: u8 = 4;
const F_FIGURE: u8 = 16;
const F_FIGCAPTION: u8 = 32;
const F_TITLE: u8 = 64;

#[derive(Default)]
struct Walker {
    page: Page,
    buf: String,
    chars: usize,
    link_chars: usize,
    punct: usize,
    ends: usize,
    caption_chars: usize,
    pending_space: bool,
    link: usize,
    /// Open inline elements that name a caption.
    caption: usize,
    /// Open elements: dense index and flags.
    open: Vec<(usize, u8)>,
    /// Innermost open block element.
    blocks: Vec<usize>,
    /// Images inside each open `<figure>` (indices into page.images).
    figures: Vec<Vec<usize>>,
    figcaption: Option<String>,
    capture: Option<String>,
    /// Depth inside a subtree whose text is never content (0: not in one).
    skip: usize,
    grab: Option<Grab>,
}

pub(crate) fn walk(html: &str) -> Page {
    let mut w = Walker::default();
    html::parse(html, &mut w);
    w.flush();
    w.page
}

/// Raw text the walk keeps whole: the first `<title>` and `application/ld+json` scripts.
enum Grab {
    Title(String),
    JsonLd(String),
}

impl Sink for Walker {
    fn open(&mut self, el: &Tag<'_>) {
        if self.skip > 0 {
            self.skip += 1;
            return;
        }
        let name = el.name;
        match name {
            "title" if self.page.title.is_none() => self.grab = Some(Grab::Title(String::new())),
            "meta" => meta(&mut self.page, el),
            "time" if !hidden(el) => {
                if let Some(d) = el.attr("datetime") {
                    // the index the element gets when it opens below
                    self.page
                        .times
                        .push((self.page.parent.len(), d.to_string()));
                }
            }
            "base" if self.page.base.is_none() => {
                self.page.base = el.attr("href").map(str::to_string);
            }
            "script" if el.attr("type").is_some_and(|t| t.contains("ld+json")) => {
                self.grab = Some(Grab::JsonLd(String::new()));
            }
            _ => {}
        }
        if skipped(name) || hidden(el) {
            self.skip = 1;
            return;
        }
        self.open_element(name, el);
    }

    fn text(&mut self, t: &str) {
        if self.skip > 0 {
            if let Some(Grab::Title(s) | Grab::JsonLd(s)) = self.grab.as_mut() {
                s.push_str(t);
            }
            return;
        }
        self.visible_text(t);
    }

    fn close(&mut self) {
        if self.skip > 0 {
            self.skip -= 1;
            if self.skip == 0 {
                match self.grab.take() {
                    Some(Grab::Title(t)) => self.page.title = Some(collapse(&t)),
                    Some(Grab::JsonLd(t)) => self.page.json_ld.push(collapse(&t)),
                    None => {}
                }
            }
            return;
        }
        self.close_element();
    }
}

/// Collapses whitespace runs to one space and trims.
pub(crate) fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn meta(page: &mut Page, el: &Tag<'_>) {
    let key = el
        .attr("name")
        .or_else(|| el.attr("property"))
        .or_else(|| el.attr("itemprop"));
    if let (Some(k), Some(v)) = (key, el.attr("content")) {
        page.meta
            .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
}

fn hidden(el: &Tag<'_>) -> bool {
    if el.attr("hidden").is_some() || el.attr("aria-hidden") == Some("true") {
        return true;
    }
    el.attr("style").is_some_and(|s| {
        // most styles hide nothing: look closer only where `none` or `hidden` is written
        let lower = |w: &[u8]| {
            s.as_bytes()
                .windows(w.len())
                .any(|x| x.eq_ignore_ascii_case(w))
        };
        if !lower(b"none") && !lower(b"hidden") {
            return false;
        }
        let s: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        s.contains("display:none") || s.contains("visibility:hidden")
    })
}

/// Class or id fragments that name an image caption.
const CAPTION_PARTS: &[&str] = &[
    "caption", "figcap", "pictext", "pic_text", "pic-text", "pictxt", "imgtext", "img_text",
    "img-text", "imgtxt", "img-txt", "picinfo", "pic-info", "pic_info", "imgdesc", "img-desc",
    "img_desc", "picdesc", "pic-desc", "pic_desc", "picnote", "pic-note", "imgnote", "img-note",
];

fn caption_like(name: &str, classes: Classes) -> bool {
    matches!(name, "figcaption" | "caption") || classes.caption
}

/// What an element's `id` and `class` name: a section, a widget, a caption.
#[derive(Clone, Copy, Default)]
struct Classes {
    section: bool,
    widget: bool,
    caption: bool,
}

/// Every fragment of [`SECTION_PARTS`], [`WIDGET_PARTS`] and [`CAPTION_PARTS`], found in one
/// pass over a value.
static PARTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::new(
        SECTION_PARTS
            .iter()
            .chain(WIDGET_PARTS)
            .chain(CAPTION_PARTS),
    )
    .expect("fixed patterns build")
});

fn classify(values: &[Cow<'_, str>]) -> Classes {
    let mut c = Classes::default();
    for v in values {
        for m in PARTS.find_overlapping_iter(v.as_ref()) {
            let i = m.pattern().as_usize();
            if i < SECTION_PARTS.len() {
                c.section = true;
            } else if i < SECTION_PARTS.len() + WIDGET_PARTS.len() {
                c.widget = true;
            } else {
                c.caption = true;
            }
        }
        for word in v.split(|c: char| !c.is_ascii_alphanumeric()) {
            c.section |= SECTION_WORDS.contains(&word);
            c.widget |= WIDGET_WORDS.contains(&word);
        }
    }
    c
}

/// The element's `id` and `class` in lower case.
fn id_and_class<'a>(el: &'a Tag<'_>) -> [Cow<'a, str>; 2] {
    [el.attr("id"), el.attr("class")].map(|v| {
        let v = v.unwrap_or_default();
        if v.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(v.to_ascii_lowercase())
        } else {
            Cow::Borrowed(v)
        }
    })
}

fn boilerplate(name: &str, classes: Classes) -> Mark {
    match name {
        "nav" | "footer" => Mark::Section,
        "aside" => Mark::Widget,
        "html" | "body" => Mark::None,
        _ if classes.section => Mark::Section,
        _ if classes.widget => Mark::Widget,
        _ => Mark::None,
    }
}

impl Walker {
    fn link_target(&mut self, el: &Tag<'_>) {
        let nofollow = el.attr("rel").is_some_and(|r| {
            r.split_ascii_whitespace()
                .any(|w| w.eq_ignore_ascii_case("nofollow"))
        });
        if let Some(href) = el.attr("href").filter(|_| !nofollow) {
            self.page.links.push(href.trim().to_string());
        }
    }

    fn open_element(&mut self, name: &str, el: &Tag<'_>) {
        let index = self.page.parent.len();
        self.page.parent.push(self.open.last().map(|(i, _)| *i));
        let mut flags = 0;
        if block_level(name) {
            self.flush();
            flags |= F_BLOCK;
            self.blocks.push(index);
        }
        match name {
            // an anchor without href (`<a name=top>`) is no link; left unclosed, the parser
            // reopens it around everything after it
            "a" if el.attr("href").is_some() => {
                flags |= F_LINK;
                self.link += 1;
                self.link_target(el);
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                flags |= F_TITLE;
                self.capture = Some(String::new());
            }
            "figure" => {
                flags |= F_FIGURE;
                self.figures.push(Vec::new());
            }
            "figcaption" => {
                flags |= F_FIGCAPTION;
                self.figcaption = Some(String::new());
            }
            "img" => self.image(el, index),
            _ => {}
        }
        let classes = classify(&id_and_class(el));
        self.page.marks.push(boilerplate(name, classes));
        let caption = caption_like(name, classes);
        if caption && flags & F_BLOCK == 0 {
            flags |= F_CAPTION;
            self.caption += 1;
        }
        self.page.caption_like.push(caption);
        self.page
            .kinds
            .push([name, ".", el.attr("class").unwrap_or("").trim()].concat());
        self.open.push((index, flags));
    }

    fn close_element(&mut self) {
        let Some((index, flags)) = self.open.pop() else {
            return;
        };
        if flags & F_BLOCK != 0 {
            self.flush();
            self.blocks.pop();
        }
        if flags & F_LINK != 0 {
            self.link -= 1;
        }
        if flags & F_CAPTION != 0 {
            self.caption -= 1;
        }
        if flags & F_TITLE != 0
            && let Some(t) = self.capture.take()
        {
            let t = collapse(&t);
            let h1 = self
                .page
                .kinds
                .get(index)
                .is_some_and(|k| k.starts_with("h1."));
            if t.is_empty() {
                // an empty heading names nothing
            } else if h1 {
                self.page.h1.push((index, t));
            } else {
                let before = self.page.blocks.len().saturating_sub(1);
                self.page.headings.push((index, before, t));
            }
        }
        if flags & F_FIGCAPTION != 0
            && let Some(c) = self.figcaption.take()
            && let Some(images) = self.figures.last()
        {
            let c = collapse(&c);
            for &i in images {
                if !c.is_empty() {
                    self.page.images[i].figcaption = Some(c.clone());
                }
            }
        }
        if flags & F_FIGURE != 0 {
            self.figures.pop();
        }
    }

    fn image(&mut self, el: &Tag<'_>, owner: usize) {
        let attr = |n: &str| {
            el.attr(n)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let lazy = [
            "data-src",
            "data-original",
            "data-lazy-src",
            "data-actualsrc",
            "data-url",
        ]
        .iter()
        .find_map(|n| attr(n));
        let src = attr("src").filter(|s| !s.starts_with("data:"));
        let srcset = attr("srcset")
            .or_else(|| attr("data-srcset"))
            .and_then(|s| largest_in_srcset(&s));
        let src = lazy.or(src).or(srcset);
        let dim = |n: &str| attr(n).and_then(|v| v.trim_end_matches("px").parse::<u32>().ok());
        let tiny = matches!((dim("width"), dim("height")), (Some(w), _) if w < 50)
            || matches!((dim("width"), dim("height")), (_, Some(h)) if h < 50);
        let i = self.page.images.len();
        self.page.images.push(ImageRef {
            src,
            alt: attr("alt").map(|a| collapse(&a)),
            title: attr("title").map(|a| collapse(&a)),
            figcaption: None,
            owner,
            next_block: self.page.blocks.len() + usize::from(self.chars > 0),
            tiny,
        });
        if let Some(f) = self.figures.last_mut() {
            f.push(i);
        }
    }

    fn visible_text(&mut self, t: &str) {
        if let Some(c) = self.capture.as_mut() {
            c.push_str(t);
        }
        if let Some(c) = self.figcaption.as_mut() {
            c.push_str(t);
        }
        for c in t.chars() {
            if c.is_whitespace() || c == '\u{a0}' {
                self.pending_space = true;
                continue;
            }
            if self.pending_space && !self.buf.is_empty() {
                self.buf.push(' ');
            }
            self.pending_space = false;
            self.buf.push(c);
            self.chars += 1;
            if self.link > 0 {
                self.link_chars += 1;
            }
            if self.caption > 0 {
                self.caption_chars += 1;
            }
            if is_punct(c) {
                self.punct += 1;
                if is_sentence_end(c) {
                    self.ends += 1;
                }
            }
        }
    }

    fn flush(&mut self) {
        if self.chars > 0 {
            self.page.blocks.push(Block {
                text: std::mem::take(&mut self.buf),
                chars: self.chars,
                link_chars: self.link_chars,
                punct: self.punct,
                ends: self.ends,
                caption_chars: self.caption_chars,
                owner: self.blocks.last().copied().unwrap_or(0),
                boiler: false,
            });
        }
        self.buf.clear();
        self.chars = 0;
        self.link_chars = 0;
        self.punct = 0;
        self.ends = 0;
        self.caption_chars = 0;
        self.pending_space = false;
    }
}

/// The URL with the largest width or density descriptor in a `srcset`.
fn largest_in_srcset(srcset: &str) -> Option<String> {
    srcset
        .split(',')
        .filter_map(|candidate| {
            let mut parts = candidate.split_whitespace();
            let url = parts.next()?;
            let size = parts
                .next()
                .and_then(|d| d.trim_end_matches(['w', 'x']).parse::<f64>().ok())
                .unwrap_or(1.0);
            Some((size, url.to_string()))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, url)| url)
}
