//! `zhcorpus images fetch|filter|export`: image-text pairs from the stored pages' candidates.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use corpus::{ImageCandidate, Store};
use crawler::ImageFetchConfig;
use images::{ExportConfig, FilterConfig};

use crate::error::{Interrupted, UsageError};
use crate::progress::Bar;
use crate::settings::{self, Overrides};
use crate::{Db, Global};

/// `zhcorpus images ...`
#[derive(Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Download the images of the stored pages' candidates (and of a URL list) under the
    /// crawl's politeness; resumable.
    Fetch(Box<FetchArgs>),
    /// Judge every pair: image size and shape, animation, caption, duplicates; each verdict
    /// with its reason.
    Filter(FilterArgs),
    /// Write the kept pairs as WebDataset tar shards.
    Export(ExportArgs),
}

/// `zhcorpus images fetch --db corpus.db`
#[derive(Args)]
pub struct FetchArgs {
    #[command(flatten)]
    db: Db,

    /// Also fetch the pairs listed in FILE: JSONL with `url` and `caption` (or `text`), or
    /// tab-separated `URL<TAB>caption` lines, with or without img2dataset's `url<TAB>caption`
    /// header.
    #[arg(long, value_name = "FILE")]
    urls: Option<PathBuf>,

    /// The User-Agent header [default: zhcorpus/VERSION (+its home page)].
    #[arg(long, value_name = "UA")]
    user_agent: Option<String>,

    /// Fetches in flight across all hosts [default: 64].
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,

    /// Fetches in flight per host [default: 1].
    #[arg(long, value_name = "N")]
    per_host: Option<usize>,

    /// Seconds between two request starts on one host; a host's Crawl-delay raises it
    /// [default: 1].
    #[arg(allow_negative_numbers = true, long, value_name = "SECONDS")]
    delay: Option<f64>,

    /// Largest image kept, in bytes [default: 10 MiB].
    #[arg(long, value_name = "BYTES")]
    max_bytes: Option<usize>,

    /// Seconds for a whole request, body included [default: 60].
    #[arg(allow_negative_numbers = true, long, value_name = "SECONDS")]
    timeout: Option<f64>,

    /// Tries per URL over all runs, for timeouts, refused connections, 429 and 5xx
    /// [default: 3].
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,

    /// Stop after this many requests in this run [default: no limit].
    #[arg(long, value_name = "N")]
    max_images: Option<u64>,

    /// Allow private, loopback and link-local addresses (for local sites and tests).
    #[arg(long)]
    allow_private: bool,

    /// A TOML file of settings (every flag's key, `[fetch]` for the HTTP client's).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

/// `zhcorpus images filter --db corpus.db`
#[derive(Args)]
pub struct FilterArgs {
    #[command(flatten)]
    db: Db,

    /// Shorter side in pixels below which an image is removed [default: 200, as Wukong].
    #[arg(long, value_name = "PIXELS")]
    min_side: Option<u32>,

    /// Longer side over shorter side above which an image is removed [default: 3, as Wukong].
    #[arg(long, value_name = "RATIO")]
    max_aspect: Option<f64>,

    /// Fewest caption characters [default: 5, as LAION-400M].
    #[arg(long, value_name = "N")]
    min_caption_chars: Option<usize>,

    /// Most caption characters [default: 128].
    #[arg(long, value_name = "N")]
    max_caption_chars: Option<usize>,

    /// A caption on more pages than this is a stock line [default: 10].
    #[arg(long, value_name = "N")]
    max_caption_pages: Option<u32>,

    /// Largest Hamming distance (of 64 bits) between near-duplicate images [default: 6].
    #[arg(long, value_name = "BITS")]
    near_distance: Option<u32>,

    /// Keep animated GIF, APNG and WebP images.
    #[arg(long)]
    allow_animated: bool,

    /// Judge the captions alone, before any image is fetched: no fetch, image or duplicate
    /// rules.
    #[arg(long)]
    captions_only: bool,

    /// Also write the kept pairs as WebDataset shards into DIR, in the same pass: each image
    /// is decoded once for its hash and its sample (what `images export` writes, faster).
    #[arg(long, short, value_name = "DIR")]
    output: Option<PathBuf>,

    /// With --output: how the shards are written, as `images export` takes it.
    #[command(flatten)]
    shards: ShardFlags,

    /// A TOML file of settings; flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

/// `zhcorpus images export --db corpus.db --output shards/`
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    db: Db,

    /// The folder of shards; created, and refused when it holds files.
    #[arg(long, short, value_name = "DIR")]
    output: PathBuf,

    #[command(flatten)]
    shards: ShardFlags,

    /// A TOML file of settings; flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

/// How shards are written: `images export`'s flags, which `images filter --output` takes too.
#[derive(Args)]
pub struct ShardFlags {
    /// Scale images down to at most this many pixels on the longer side [default: keep].
    #[arg(long, value_name = "PIXELS")]
    max_side: Option<u32>,

    /// Samples per tar shard [default: 10000].
    #[arg(long, value_name = "N")]
    shard_size: Option<usize>,

    /// `jpg` (every image as JPEG) or `original` (each image's own bytes unless resized)
    /// [default: jpg].
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,

    /// JPEG quality [default: 95].
    #[arg(long, value_name = "1-100")]
    quality: Option<u8>,
}

impl ShardFlags {
    fn given(&self) -> bool {
        self.max_side.is_some()
            || self.shard_size.is_some()
            || self.format.is_some()
            || self.quality.is_some()
    }

    fn overrides(self) -> Overrides {
        let mut flags = Overrides::default();
        flags
            .set("max_side", self.max_side)
            .set("shard_size", self.shard_size)
            .set("format", self.format)
            .set("quality", self.quality);
        flags
    }
}

pub fn run(global: &Global, args: ImagesArgs) -> Result<()> {
    match args.command {
        ImagesCommand::Fetch(a) => fetch(global, *a),
        ImagesCommand::Filter(a) => filter(global, a),
        ImagesCommand::Export(a) => export(global, a),
    }
}

fn fetch(global: &Global, args: FetchArgs) -> Result<()> {
    let mut flags = Overrides::default();
    flags
        .set("concurrency", args.concurrency)
        .set("per_host", args.per_host)
        .set("delay", args.delay)
        .set("max_attempts", args.max_attempts)
        .set("max_images", args.max_images)
        .set("fetch.user_agent", args.user_agent)
        .set("fetch.max_body", args.max_bytes)
        .set("fetch.timeout", args.timeout)
        .switch("fetch.allow_private", args.allow_private, true);
    let config: ImageFetchConfig =
        settings::resolve(&ImageFetchConfig::default(), args.config.as_deref(), &flags)?;
    if args.print_config {
        return settings::print(&config);
    }
    let db = &args.db.db;
    if args.urls.is_none() && !db.exists() {
        anyhow::bail!(UsageError(format!(
            "{}: no such database; crawl pages into it first, or give --urls FILE",
            db.display()
        )));
    }
    let mut store = Store::open(db)?;
    if let Some(path) = &args.urls {
        let list = read_list(path)?;
        let added = store.insert_image_list(&list)?;
        outln!(
            "{}: {} pairs listed, {added} new",
            path.display(),
            list.len()
        );
    }
    run_fetch(global, &mut store, config)
}

/// Fetches the store's pending images and prints the report (also `crawl --images`).
pub fn run_fetch(global: &Global, store: &mut Store, config: ImageFetchConfig) -> Result<()> {
    let progress = Bar::new(global.quiet);
    let report = crawler::fetch_images_blocking(store, config, &progress)?;
    outln!("images: {}", report.line());
    if crate::cmd::signals::cancelled() {
        return Err(Interrupted(
            "the image fetch was interrupted; run the same command to resume".into(),
        )
        .into());
    }
    Ok(())
}

/// Reads a pair list: JSONL objects with `url` and `caption` (or `text`), or `URL<TAB>caption`.
fn read_list(path: &Path) -> Result<Vec<ImageCandidate>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |why: String| UsageError(format!("{}:{}: {why}", path.display(), i + 1));
        let (url, caption) = if line.starts_with('{') {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
            let url = v["url"]
                .as_str()
                .ok_or_else(|| at("no \"url\" string".into()))?
                .to_string();
            let caption = v["caption"]
                .as_str()
                .or(v["text"].as_str())
                .map(str::to_string);
            (url, caption)
        } else {
            let mut parts = line.splitn(2, '\t');
            let url = parts.next().unwrap_or_default().trim().to_string();
            if out.is_empty() && url == "url" {
                // img2dataset's header line
                continue;
            }
            (url, parts.next().map(|c| c.trim().to_string()))
        };
        // stored as the fetch records it, so that its outcome is found again
        let Some(url) = url::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| u.to_string())
        else {
            anyhow::bail!(at(format!("{url:?} is not an http(s) URL")));
        };
        out.push(ImageCandidate {
            url,
            caption_source: caption.as_ref().map(|_| "list".to_string()),
            caption,
            ..ImageCandidate::default()
        });
    }
    Ok(out)
}

fn filter(global: &Global, args: FilterArgs) -> Result<()> {
    let mut flags = Overrides::default();
    flags
        .set("min_side", args.min_side)
        .set("max_aspect", args.max_aspect)
        .set("min_caption_chars", args.min_caption_chars)
        .set("max_caption_chars", args.max_caption_chars)
        .set("max_caption_pages", args.max_caption_pages)
        .set("near_distance", args.near_distance)
        .switch("allow_animated", args.allow_animated, true)
        .switch("captions_only", args.captions_only, true);
    let config: FilterConfig =
        settings::resolve(&FilterConfig::default(), args.config.as_deref(), &flags)?;
    if args.print_config {
        return settings::print(&config);
    }
    if args.output.is_none() && args.shards.given() {
        anyhow::bail!(UsageError(
            "--max-side, --shard-size, --format and --quality go with --output DIR".into()
        ));
    }
    let mut store = Store::open_existing(&args.db.db)?;
    let progress = Bar::new(global.quiet);
    let Some(output) = &args.output else {
        let report = images::filter(&mut store, &config, &progress)?;
        outln!("images filter: {}", report.line());
        return Ok(());
    };
    let export: ExportConfig =
        settings::resolve(&ExportConfig::default(), None, &args.shards.overrides())?;
    let (filtered, exported) =
        images::filter_and_export(&mut store, &config, &export, output, &progress)?;
    outln!("images filter: {}", filtered.line());
    outln!(
        "images export: {} into {}",
        exported.line(),
        output.display()
    );
    Ok(())
}

fn export(global: &Global, args: ExportArgs) -> Result<()> {
    let config: ExportConfig = settings::resolve(
        &ExportConfig::default(),
        args.config.as_deref(),
        &args.shards.overrides(),
    )?;
    if args.print_config {
        return settings::print(&config);
    }
    let store = Store::open_existing(&args.db.db)?;
    let progress = Bar::new(global.quiet);
    let report = images::export(&store, &args.output, &config, &progress)?;
    outln!(
        "images export: {} into {}",
        report.line(),
        args.output.display()
    );
    Ok(())
}
