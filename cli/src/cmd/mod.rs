//! One module per subcommand: its clap arguments and the glue that calls the library.

pub mod clean;
pub mod crawl;
pub mod dedup;
pub mod demo;
pub mod export;
pub mod extract;
pub mod images;
pub mod import;
pub mod merge;
pub mod pipeline;
pub mod report;
pub mod signals;
pub mod slurm;
pub mod stats;
pub mod tokenizer;
pub mod train;

/// `--skip-invalid` for the stages that read files.
#[derive(clap::Args)]
pub struct SkipInvalid {
    /// With input files: skip lines that are not documents or not UTF-8 (counted, the first
    /// named) instead of stopping at the first.
    #[arg(long)]
    pub skip_invalid: bool,
}
