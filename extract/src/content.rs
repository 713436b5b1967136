//! Choosing the main text: each block gets a value, positive for prose and negative for
//! boilerplate; the element whose blocks sum highest holds the article (a maximum-sum subtree,
//! so a page's navigation and footer count against choosing the whole body).

use crate::blocks::{Block, Mark, Page};

/// How far up the tree a block's value is carried. Deeper nesting than this is not a layout.
const MAX_DEPTH: usize = 512;

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
    for b in page.blocks.iter_mut() {
        b.boiler = ancestors_of(&page.parent, b.owner).any(|i| marked[i]);
    }
    page.marked = marked;
}

/// Whether `node` or an ancestor is boilerplate (after [`resolve_boilerplate`]).
pub(crate) fn in_boilerplate(page: &Page, node: usize) -> bool {
    ancestors(page, node).any(|i| page.marked.get(i).copied().unwrap_or(false))
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

/// Whether element `node` is `ancestor` or inside it.
pub(crate) fn within(page: &Page, node: usize, ancestor: usize) -> bool {
    ancestors(page, node).any(|i| i == ancestor)
}

/// The indices of the blocks that make up the main text.
pub(crate) fn main_blocks(page: &Page, main: Option<usize>) -> Vec<usize> {
    let inside = |b: &Block| main.is_none_or(|m| within(page, b.owner, m));
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
