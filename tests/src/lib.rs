//! Test support shared by the whole workspace, and (in `tests/`) the end-to-end tests of the
//! pipeline from one stage crate to the next.
//!
//! Everything here is generated: no third-party text is needed to run the tests.
//!
//! ```
//! let docs = tests::generate_documents(3, 7);
//! assert_eq!(docs.len(), 3);
//! assert_eq!(docs, tests::generate_documents(3, 7));
//! ```

use corpus::Document;

pub use farm::text::{HAN, Rng};

const PUNCT: [&str; 4] = ["，", "，", "。", "！"];

/// Chinese-looking text of about `chars` characters: Han runs broken by punctuation, ending
/// with a full stop.
pub fn generate_text(rng: &mut Rng, chars: usize) -> String {
    let han: Vec<char> = HAN.chars().collect();
    let mut out = String::with_capacity(chars * 3);
    let mut run = 0;
    for _ in 0..chars {
        out.push(han[rng.below(han.len())]);
        run += 1;
        if run > 6 && rng.below(8) == 0 {
            out.push_str(PUNCT[rng.below(PUNCT.len())]);
            run = 0;
        }
    }
    out.push('。');
    out
}

/// `n` documents with ids `doc-0000000`..., short texts, a source out of three and an extra
/// field, reproducible from `seed`.
pub fn generate_documents(n: usize, seed: u64) -> Vec<Document> {
    let mut rng = Rng::new(seed);
    (0..n).map(|i| generate_document(&mut rng, i)).collect()
}

/// The `i`-th generated document, drawing from `rng`.
pub fn generate_document(rng: &mut Rng, i: usize) -> Document {
    const SOURCES: [&str; 3] = ["news", "forum", "encyclopedia"];
    let len = 20 + rng.below(40);
    let mut doc = Document::new(format!("doc-{i:07}"), generate_text(rng, len));
    doc.source = Some(SOURCES[i % SOURCES.len()].to_string());
    doc.url = Some(format!("http://site{}.example.cn/page/{i}.html", i % 7));
    doc.extra.insert("n".to_string(), (i as u64).into());
    doc
}
