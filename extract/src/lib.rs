//! Extraction: raw HTML bytes in, Chinese main text, title, author, date and image candidates
//! out, with the charset decision recorded.
//!
//! The page is decoded ([`charset`]), parsed by the crate's own streaming parser (`html`),
//! and walked once into text blocks. Each block is valued by Chinese-aware evidence (text length, sentence
//! punctuation such as `，。！？`, link density, boilerplate class names such as `comment` or
//! `footer`), and the element whose blocks sum highest holds the article. Paragraph breaks are
//! kept. Any byte sequence gives a result: extraction never fails and never panics.
//!
//! ```
//! let html = "<html><head><title>标题_示例网</title></head><body>
//!     <div class=nav><a href=/>首页</a> | <a href=/news>新闻</a></div>
//!     <div class=article><h1>标题</h1><p>这是正文的第一段，说明了事情的经过。</p>
//!     <p>这是第二段，补充了细节。</p></div>
//!     <div class=footer>版权所有</div></body></html>";
//! let page = extract::extract(html.as_bytes(), &extract::Options::default());
//! assert_eq!(page.title.as_deref(), Some("标题"));
//! assert_eq!(page.text, "这是正文的第一段，说明了事情的经过。\n这是第二段，补充了细节。");
//! ```

mod blocks;
pub mod charset;
mod content;
mod date;
mod html;
mod meta;

use serde::Serialize;

pub use charset::{Charset, CharsetSource};
pub use date::find_date;

/// What the caller knows about the page besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The page's URL, to resolve relative image URLs.
    pub url: Option<String>,
    /// The charset from the HTTP `Content-Type` header.
    pub http_charset: Option<String>,
    /// Leave [`Extraction::links`] empty: only a crawler follows them, and making every link
    /// absolute is a tenth of the work on a modern page.
    pub skip_links: bool,
}

/// Everything extracted from one page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extraction {
    pub title: Option<String>,
    /// The main text, one paragraph per line.
    pub text: String,
    pub author: Option<String>,
    /// Publication date, `YYYY-MM-DD` with ` HH:MM[:SS]` when known.
    pub published: Option<String>,
    pub charset: Charset,
    /// Images in or near the main text, with what describes them.
    pub images: Vec<Image>,
    /// No element stood out as the article: the text is every non-boilerplate block.
    pub fallback: bool,
    /// Absolute http(s) URLs of the page's visible links, without fragment, each once, in
    /// document order; `rel=nofollow` links are left out, and all of them when a robots
    /// `<meta>` says `nofollow`. Not serialised: the crawler's to follow.
    #[serde(skip)]
    pub links: Vec<String>,
    /// A robots `<meta>` asks not to index the page (`noindex` or `none`).
    #[serde(skip)]
    pub noindex: bool,
}

/// An image-text candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Image {
    /// Absolute when the page URL (or a `<base>`) was known.
    pub src: String,
    pub alt: Option<String>,
    pub title: Option<String>,
    /// The text chosen to describe the image: the `<figcaption>`, else the alt text, else the
    /// title attribute (when either is real text of at least 4 characters, not a file name),
    /// else a short line right after the image that sits in a caption element (by tag or
    /// class) or reads as a caption (`图为…`, `…摄`, `…供图`), else a shorter alt or title.
    pub caption: Option<String>,
    /// Where [`Image::caption`] came from.
    pub caption_source: Option<CaptionSource>,
    /// The paragraph around the image (before it, else after it), cut to 300 characters.
    pub context: Option<String>,
}

/// Where an image's caption came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptionSource {
    Figcaption,
    Alt,
    Title,
    /// A caption-like line next to the image.
    Nearby,
}

impl CaptionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptionSource::Figcaption => "figcaption",
            CaptionSource::Alt => "alt",
            CaptionSource::Title => "title",
            CaptionSource::Nearby => "nearby",
        }
    }
}

/// Whether an alt or title text is a file name or an identifier rather than a description:
/// `IMG_2034.JPG`, `DSC01234`, `20231105142233`, `pic-3`, `banner.png`, a URL.
pub fn is_file_name(text: &str) -> bool {
    let t = text.trim();
    if t.is_empty() {
        return true;
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("//") {
        return true;
    }
    const EXTENSIONS: [&str; 9] = [
        ".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".svg", ".tif", ".tiff",
    ];
    if EXTENSIONS.iter().any(|e| lower.ends_with(e)) {
        return true;
    }
    // an identifier: ASCII letters, digits and separators only, with a digit, no space
    t.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && t.chars().any(|c| c.is_ascii_digit())
}

/// Fewest characters of an alt or title text that comes before a caption line after the image.
const MIN_DESCRIPTION_CHARS: usize = 4;

/// Most characters of an image's context paragraph.
const MAX_CONTEXT_CHARS: usize = 300;

/// Fewest characters of a block taken as an image's context.
const MIN_CONTEXT_CHARS: usize = 20;

/// Longest line taken as an image's caption.
const MAX_CAPTION_CHARS: usize = 80;

/// Extracts from raw bytes; see the crate documentation.
pub fn extract(bytes: &[u8], options: &Options) -> Extraction {
    let (text, charset) = charset::decode(bytes, options.http_charset.as_deref());
    extract_decoded(&text, charset, options)
}

/// Extracts from text that is already decoded.
pub fn extract_str(html: &str, options: &Options) -> Extraction {
    let charset = Charset {
        name: "UTF-8".to_string(),
        source: CharsetSource::Utf8Valid,
        declared: None,
        errors: 0,
    };
    extract_decoded(html, charset, options)
}

fn extract_decoded(html: &str, charset: Charset, options: &Options) -> Extraction {
    let mut page = blocks::walk(html);
    content::resolve_boilerplate(&mut page);
    let main = content::main_element(&page);
    let mains = main.map_or_else(Vec::new, |m| content::with_siblings(&page, m));
    let mut kept = content::main_blocks(&page, &mains);
    let mut fallback = false;
    if kept.is_empty() {
        fallback = true;
        kept = content::main_blocks(&page, &[]);
    }
    let text = kept
        .iter()
        .map(|&i| page.blocks[i].text.as_str())
        .collect::<Vec<_>>()
        .join("\n");

    // text around the start of the article, for the byline
    let start = kept.first().copied().unwrap_or(0);
    let near: Vec<&str> = page.blocks[start.saturating_sub(12)..(start + 3).min(page.blocks.len())]
        .iter()
        .map(|b| b.text.as_str())
        .collect();

    let base = page
        .base
        .as_deref()
        .and_then(|b| resolve(options.url.as_deref(), b))
        .or_else(|| options.url.clone());
    let images = page
        .images
        .iter()
        .filter(|img| !img.tiny && !content::in_boilerplate(&page, img.owner))
        .filter(|img| {
            mains.is_empty() || mains.iter().any(|&m| content::within(&page, img.owner, m))
        })
        .filter_map(|img| {
            let src = img.src.as_deref()?;
            let src = resolve(base.as_deref(), src).unwrap_or_else(|| src.to_string());
            let nearby = page
                .blocks
                .get(img.next_block)
                .filter(|b| b.chars <= MAX_CAPTION_CHARS && b.link_chars * 2 <= b.chars)
                .filter(|b| {
                    b.caption_chars * 2 > b.chars
                        || caption_place(&page, b.owner)
                        || caption_words(&b.text)
                })
                .map(|b| b.text.clone());
            let alt = img.alt.clone().filter(|a| !a.is_empty());
            let title = img.title.clone().filter(|t| !t.is_empty());
            let real = |t: &Option<String>, min: usize| {
                t.clone().filter(|t| {
                    !is_file_name(t) && t.chars().filter(|c| !c.is_whitespace()).count() >= min
                })
            };
            // a label of two or three characters (`柳树`, `第一张`) gives way to a caption line
            let (caption, caption_source) = if let Some(c) = img.figcaption.clone() {
                (Some(c), Some(CaptionSource::Figcaption))
            } else if let Some(a) = real(&alt, MIN_DESCRIPTION_CHARS) {
                (Some(a), Some(CaptionSource::Alt))
            } else if let Some(t) = real(&title, MIN_DESCRIPTION_CHARS) {
                (Some(t), Some(CaptionSource::Title))
            } else if let Some(n) = nearby.clone() {
                (Some(n), Some(CaptionSource::Nearby))
            } else if let Some(a) = real(&alt, 1) {
                (Some(a), Some(CaptionSource::Alt))
            } else if let Some(t) = real(&title, 1) {
                (Some(t), Some(CaptionSource::Title))
            } else {
                (None, None)
            };
            // the paragraph before the image, else the first one after it that is not its caption
            let before = img.next_block.checked_sub(1);
            let context = [before, Some(img.next_block), Some(img.next_block + 1)]
                .into_iter()
                .flatten()
                .filter_map(|i| page.blocks.get(i))
                .find(|b| {
                    b.chars >= MIN_CONTEXT_CHARS
                        && !b.boiler
                        && b.link_chars * 2 <= b.chars
                        && Some(&b.text) != caption.as_ref()
                        && Some(&b.text) != nearby.as_ref()
                })
                .map(|b| b.text.chars().take(MAX_CONTEXT_CHARS).collect());
            Some(Image {
                src,
                alt,
                title,
                caption,
                caption_source,
                context,
            })
        })
        .collect();

    let robots: Vec<String> = page
        .meta
        .iter()
        .filter(|(k, _)| k == "robots")
        .flat_map(|(_, v)| v.split(',').map(|w| w.trim().to_ascii_lowercase()))
        .collect();
    let has = |w: &str| robots.iter().any(|r| r == w || r == "none");
    let links = if options.skip_links || has("nofollow") {
        Vec::new()
    } else {
        absolute_links(base.as_deref(), &page.links)
    };
    Extraction {
        links,
        noindex: has("noindex"),
        title: meta::title(&page, main, start),
        author: meta::author(&page, &near),
        published: date::published(&page, &kept),
        text,
        charset,
        images,
        fallback,
    }
}

/// Whether the element holding a line, or its parent, is a caption by its tag or class (a
/// line mostly inside an inline caption element, `<span class=img_descr>`, is one too).
fn caption_place(page: &blocks::Page, owner: usize) -> bool {
    let parent = page.parent.get(owner).copied().flatten();
    [Some(owner), parent]
        .into_iter()
        .flatten()
        .any(|i| page.caption_like.get(i).copied().unwrap_or(false))
}

/// Whether a line reads as a Chinese photo caption: `图为…`, `图片来源：…`, `▲…`, `（图…）`,
/// `…摄`, `…供图`, `资料图`, `…截图`. A body paragraph, a `为你推荐` heading or an editor's name does not.
fn caption_words(text: &str) -> bool {
    let t = text.trim().trim_end_matches(['。', '）', ')', ' ']);
    t.starts_with("图为")
        || t.starts_with("图片来源")
        || t.starts_with("图片来自")
        || t.starts_with('▲')
        || t.starts_with("图：")
        || t.starts_with("图/")
        || t.starts_with("（图")
        || t.starts_with("(图")
        || t.ends_with('摄')
        || t.ends_with("供图")
        || t.ends_with("资料图")
        || t.ends_with("视觉中国")
        || t.ends_with("截图")
}

/// Links made absolute, http(s) only, fragments cut, duplicates dropped.
fn absolute_links(base: Option<&str>, hrefs: &[String]) -> Vec<String> {
    let base = base.and_then(|b| url::Url::parse(b).ok());
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for href in hrefs {
        let parsed = match &base {
            Some(b) => b.join(href),
            None => url::Url::parse(href),
        };
        let Ok(mut u) = parsed else { continue };
        if u.scheme() != "http" && u.scheme() != "https" {
            continue;
        }
        u.set_fragment(None);
        let s = u.to_string();
        if seen.insert(s.clone()) {
            out.push(s);
        }
    }
    out
}

/// `href` resolved against `base`; `None` when it cannot be made absolute.
fn resolve(base: Option<&str>, href: &str) -> Option<String> {
    if let Ok(u) = url::Url::parse(href) {
        return Some(u.to_string());
    }
    let base = url::Url::parse(base?).ok()?;
    base.join(href).ok().map(|u| u.to_string())
}
