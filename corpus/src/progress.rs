//! How a long-running library function reports progress without printing anything itself:
//! every stage (crawl, extract, clean, dedup, tokenizer, encode, train) reports through
//! [`Progress`].

/// Receives progress from a stage. The CLI draws it as a bar; tests and library users pass
/// [`NoProgress`].
pub trait Progress: Sync {
    /// A phase starts; `total` is in the same unit as [`Progress::update`]'s `position`.
    fn start(&self, phase: &str, total: Option<u64>);
    /// Work done so far in this phase (`position`) and items handled (`items`).
    fn update(&self, position: u64, items: u64);
    /// The phase ended.
    fn finish(&self);
    /// A line about the state of the phase (a crawl's queue and errors, a training step's
    /// loss), shown beside the position; stages call it at most a few times a second.
    fn message(&self, _message: &str) {}
    /// The caller asks the stage to stop at its next safe point (a training step, the crawl's
    /// fetches in flight); stages that can stop early poll it.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn update(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}
