//! The three ways extraction failed on pages it was not tuned on, as generated pages: a short
//! article beside a longer comment or related-story section, a short article on a page of
//! lists, and an article split over two containers. Each kind must score high on every
//! variant.

mod fixtures;

use fixtures::{Kind, f1};

fn scores(kind: Kind) -> Vec<(String, f64)> {
    fixtures::all()
        .into_iter()
        .filter(|f| f.kind == kind)
        .map(|f| {
            let page = extract::extract(f.html.as_bytes(), &extract::Options::default());
            (f.name, f1(&page.text, &f.truth))
        })
        .collect()
}

fn check(kind: Kind) {
    let s = scores(kind);
    let bad: Vec<_> = s.iter().filter(|(_, f)| *f < 0.95).collect();
    assert!(bad.is_empty(), "{}: {bad:?}", kind.name());
}

#[test]
fn short_article_beside_long_comments_or_related_stories() {
    check(Kind::ShortArticleLongComments);
}

#[test]
fn short_article_on_a_page_of_lists() {
    check(Kind::ListPage);
}

#[test]
fn article_split_over_two_containers() {
    check(Kind::SplitArticle);
}
