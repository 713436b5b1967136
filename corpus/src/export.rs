//! `zhcorpus export`: documents out of the store as JSONL.

use crate::error::Result;
use crate::jsonl::JsonlWriter;
use crate::progress::Progress;
use crate::store::{Selection, Store};

/// Writes the selected documents to `out` in store order and returns how many were written.
/// The caller finishes the writer.
pub fn run(
    store: &Store,
    selection: Selection,
    out: &mut JsonlWriter,
    progress: &dyn Progress,
) -> Result<u64> {
    progress.start("export", Some(store.document_count()?));
    let mut n = 0;
    for doc in store.documents(selection) {
        let doc = doc?;
        out.write(&doc.doc)?;
        n += 1;
        if n % 10_000 == 0 {
            progress.update(n, n);
        }
    }
    progress.update(n, n);
    progress.finish();
    Ok(n)
}
