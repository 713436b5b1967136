//! One module per subcommand: its clap arguments and the glue that calls the library.

pub mod clean;
pub mod crawl;
pub mod dedup;
pub mod demo;
pub mod export;
pub mod extract;
pub mod import;
pub mod pipeline;
pub mod signals;
pub mod stats;
pub mod tokenizer;
pub mod train;
