//! How a long-running library function reports progress without printing anything itself.

/// Receives progress from a stage. The CLI draws it as a bar; tests and library users pass
/// [`NoProgress`].
pub trait Progress: Sync {
    /// A phase starts; `total` is in the same unit as [`Progress::update`]'s `position`.
    fn start(&self, phase: &str, total: Option<u64>);
    /// Work done so far in this phase (`position`) and items handled (`items`).
    fn update(&self, position: u64, items: u64);
    /// The phase ended.
    fn finish(&self);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn update(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}
