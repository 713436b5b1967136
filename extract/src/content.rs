//! Choosing the main text: each block gets a value, positive for prose and negative for
//! boilerplate; the element whose blocks sum highest holds the article (a maximum-sum subtree,
//! so a page's navigation and footer count against choosing the whole body).

use crate::blocks::{Block, Mark, Page};

/// How far up the tree a block's value is carried. Deeper nesting than this is not a layout.
const MAX_DEPTH: usize = 512;

/// Fewest sibling items of one tag and class that make a list of records.
const MIN_RECORDS: usize = 4;
/// Longest line that counts as a record's header (a user name and time, a linked headline, a
/// date, a reply button), and most characters in one record.
const MAX_RECORD_HEADER: usize = 30;
const MAX_RECORD_CHARS: usize = 400;
const RECORD_TAGS: &[&str] = &["li", "div", "dd", "dl", "section", "article"];
/// A sibling whose value is above this is a gap in an article (an image, an ad line, an editor's
/// note) rather than something that separates it from the rest of the page.
const MAX_GAP: f64 = -40.0;

/// A block's evidence of being article text.
pub(crate) fn value(b: &Block) -> f64 {
    if b.boiler {
        return -(b.chars as f64);
    }
    text_value(b)
}

/// A block's evidence from its own text alone.
fn text_value(b: &Block) -> f64 {
    let text = (b.chars - b.link_chars) as f64;
    let link_density = b.link_chars as f64 / b.chars as f64;
    if link_density > 0.5 {
        return -(b.chars as f64);
    }
    if b.punct == 0 {
        // a label, a heading, a table cell, a line of a menu: weak evidence either way (menus
        // are mostly links and count against the page above). Penalising these instead lost
        // data-heavy articles such as encyclopedia pages with infoboxes.
        return 0.0;
    }
    text * (1.0 - link_density)
}

/// Decides which blocks are boilerplate. A widget's class is a hint, not a verdict: the mark is
/// ignored on an element that holds half or more of the page's prose (an article wrapped in
/// `class="img_share_area"` is no share bar). Section marks (comments, footers, navigation)
/// always hold: a comment thread can outweigh the post above it.
pub(crate) fn resolve_boilerplate(page: &mut Page) {
    let mut prose = vec![0.0f64; page.parent.len().max(1)];
    let mut total = 0.0;
    for b in &page.blocks {
        let v = text_value(b).max(0.0);
        total += v;
        for i in ancestors(page, b.owner) {
            prose[i] += v;
        }
    }
    let marked: Vec<bool> = page
        .marks
        .iter()
        .zip(&prose)
        .map(|(&m, &p)| match m {
            Mark::Section => true,
            Mark::Widget => p * 2.0 < total,
            Mark::None => false,
        })
        .collect();
    let records = records(page);
    let marked: Vec<bool> = marked.iter().zip(&records).map(|(&m, &r)| m || r).collect();
    for b in page.blocks.iter_mut() {
        b.boiler = ancestors_of(&page.parent, b.owner).any(|i| marked[i]);
    }
    page.marked = marked;
    page.records = records;
}

/// The items of lists of records: [`MIN_RECORDS`] or more sibling elements with the same tag
/// and class, three in four of which hold several text blocks, one of them a short header line
/// without a sentence (a user name and time, a linked headline, a date), and none more than
/// [`MAX_RECORD_CHARS`] characters. Comment threads, related stories and news lists have this
/// shape whatever their class names; an article's paragraphs hold one block each. Only
/// containers (`li`, `div`, `dd`, `dl`, `section`, `article`) make records: a `<p>` cut into
/// lines by `<br>` is a paragraph, and table rows lay out the articles of old pages.
fn records(page: &Page) -> Vec<bool> {
    let n = page.parent.len();
    let mut blocks = vec![0usize; n];
    let mut chars = vec![0usize; n];
    let mut header = vec![false; n];
    for b in &page.blocks {
        let is_header =
            b.chars <= MAX_RECORD_HEADER && (b.punct == 0 || b.link_chars * 2 > b.chars);
        for i in ancestors(page, b.owner) {
            blocks[i] += 1;
            chars[i] += b.chars;
            header[i] |= is_header;
        }
    }
    let mut groups: std::collections::HashMap<(usize, &str), Vec<usize>> =
        std::collections::HashMap::new();
    for (i, p) in page.parent.iter().enumerate() {
        let kind = page.kinds.get(i).map_or("", String::as_str);
        if let Some(p) = *p
            && blocks[i] > 0
            && RECORD_TAGS.contains(&kind.split('.').next().unwrap_or(""))
        {
            groups.entry((p, kind)).or_default().push(i);
        }
    }
    let mut record = vec![false; n];
    for items in groups.values() {
        if items.len() < MIN_RECORDS || items.iter().any(|&i| chars[i] > MAX_RECORD_CHARS) {
            continue;
        }
        let shaped = items
            .iter()
            .filter(|&&i| blocks[i] >= 2 && header[i])
            .count();
        if shaped * 4 >= items.len() * 3 {
            for &i in items {
                record[i] = true;
            }
        }
    }
    record
}

/// Whether `node` or an ancestor is boilerplate (after [`resolve_boilerplate`]).
pub(crate) fn in_boilerplate(page: &Page, node: usize) -> bool {
    ancestors(page, node).any(|i| page.marked.get(i).copied().unwrap_or(false))
}

/// Whether `node` or an ancestor is an item of a list of records (after
/// [`resolve_boilerplate`]).
pub(crate) fn in_records(page: &Page, node: usize) -> bool {
    ancestors(page, node).any(|i| page.records.get(i).copied().unwrap_or(false))
}

/// `node` and its ancestors, nearest first, at most [`MAX_DEPTH`] of them.
fn ancestors(page: &Page, node: usize) -> impl Iterator<Item = usize> + '_ {
    ancestors_of(&page.parent, node)
}

fn ancestors_of(parent: &[Option<usize>], node: usize) -> impl Iterator<Item = usize> + '_ {
    std::iter::successors(Some(node), move |&i| parent.get(i).copied().flatten()).take(MAX_DEPTH)
}

/// The dense index of the element holding the main text, or `None` when no element has
/// positive evidence.
pub(crate) fn main_element(page: &Page) -> Option<usize> {
    let mut sum = vec![0.0f64; page.parent.len().max(1)];
    for b in &page.blocks {
        let v = value(b);
        for i in ancestors(page, b.owner) {
            sum[i] += v;
        }
    }
    let mut best = None;
    let mut best_sum = 0.0;
    for (i, &s) in sum.iter().enumerate() {
        // later elements in document order are deeper: ties go to the smaller subtree
        if s > 0.0 && s >= best_sum {
            best = Some(i);
            best_sum = s;
        }
    }
    best
}

/// The main element and the siblings that continue its article: a page that splits its text
/// over several containers (an ad or an image box between two halves) has them side by side.
/// Going out from `main` both ways, a sibling with prose of its own (positive value from at
/// least half its characters, two paragraphs that end a sentence, no boilerplate mark: a
/// one-line promotion is no half of an article) is joined, a small
/// one (value above [`MAX_GAP`]) is stepped over, and anything else ends the article.
pub(crate) fn with_siblings(page: &Page, main: usize) -> Vec<usize> {
    let Some(parent) = page.parent.get(main).copied().flatten() else {
        return vec![main];
    };
    let siblings: Vec<usize> = (parent + 1..page.parent.len())
        .filter(|&i| page.parent[i] == Some(parent))
        .collect();
    let Some(at) = siblings.iter().position(|&i| i == main) else {
        return vec![main];
    };
    let mut sum = vec![0.0f64; page.parent.len()];
    let mut chars = vec![0usize; page.parent.len()];
    let mut ends = vec![0usize; page.parent.len()];
    for b in &page.blocks {
        let v = value(b);
        for i in ancestors(page, b.owner) {
            if page.parent[i] != Some(parent) {
                continue;
            }
            sum[i] += v;
            chars[i] += b.chars;
            ends[i] += usize::from(b.ends > 0 && b.link_chars * 2 <= b.chars);
            break;
        }
    }
    let joins = |i: usize| {
        !page.marked.get(i).copied().unwrap_or(false)
            && sum[i] > 0.0
            && sum[i] * 2.0 >= chars[i] as f64
            && ends[i] >= 2
    };
    let mut out = vec![main];
    // outwards from `main`: back towards the first sibling, then on towards the last
    let mut walk = |side: &mut dyn Iterator<Item = &usize>| {
        for &i in side {
            if joins(i) {
                out.push(i);
            } else if page.marked.get(i).copied().unwrap_or(false) || sum[i] <= MAX_GAP {
                break;
            }
        }
    };
    walk(&mut siblings[..at].iter().rev());
    walk(&mut siblings[at + 1..].iter());
    out.sort_unstable();
    out
}

/// Whether element `node` is `ancestor` or inside it.
pub(crate) fn within(page: &Page, node: usize, ancestor: usize) -> bool {
    ancestors(page, node).any(|i| i == ancestor)
}

/// The indices of the blocks that make up the main text: those inside the `main` elements, or
/// every block when there are none.
pub(crate) fn main_blocks(page: &Page, main: &[usize]) -> Vec<usize> {
    let inside = |b: &Block| main.is_empty() || main.iter().any(|&m| within(page, b.owner, m));
    let mut keep: Vec<usize> = page
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| inside(b) && !b.boiler && b.link_chars * 2 <= b.chars)
        .map(|(i, _)| i)
        .collect();
    // leading and trailing lines without a finished sentence are bylines, dates, share bars,
    // edit notes: trim back to the first and last block that ends a sentence
    let prose = |i: &usize| page.blocks[*i].ends > 0;
    let first = keep.iter().position(prose);
    let last = keep.iter().rposition(prose);
    match (first, last) {
        (Some(f), Some(l)) => {
            keep.truncate(l + 1);
            keep.drain(..f);
        }
        _ => keep.clear(),
    }
    keep
}
