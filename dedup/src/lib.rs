//! The dedup stage (planned): exact (xxh3) and MinHash LSH near-duplicate detection as a batch
//! job, recording cluster ids and the kept member in `dedup_verdicts`.
//!
//! Nothing is implemented yet: `zhcorpus dedup` does not exist until this crate has its stage.
