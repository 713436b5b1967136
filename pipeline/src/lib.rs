//! The whole pipeline from one configuration: documents imported and/or crawled into one
//! store, cleaned, deduplicated, a tokenizer trained on what is kept, the kept documents
//! encoded into token shards, and a GPT pretrained on them.
//!
//! Every stage is the stage crate's own library call with the configuration's section for it
//! (the same keys as the stage command's `--config`). [`run`] skips a stage whose output is
//! complete: its run in the store finished after every earlier stage's, and its files are in
//! place (files are written under temporary names and renamed, the marker file last). So the
//! same call after a crash or `kill -9` at any point finishes the job, with output identical
//! to an uninterrupted run's.

pub mod cluster;

use std::path::{Path, PathBuf};

use corpus::{Progress, Store};
use serde::{Deserialize, Serialize};

/// The stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Import,
    Crawl,
    Images,
    Clean,
    Dedup,
    Tokenizer,
    Encode,
    Train,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Import,
        Stage::Crawl,
        Stage::Images,
        Stage::Clean,
        Stage::Dedup,
        Stage::Tokenizer,
        Stage::Encode,
        Stage::Train,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Import => "import",
            Stage::Crawl => "crawl",
            Stage::Images => "images",
            Stage::Clean => "clean",
            Stage::Dedup => "dedup",
            Stage::Tokenizer => "tokenizer",
            Stage::Encode => "encode",
            Stage::Train => "train",
        }
    }

    /// The stage of a name, as `--from` and `--until` take it.
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The whole pipeline's settings: its inputs and one section per stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// JSONL(.zst) documents imported into the store before the crawl.
    pub inputs: Vec<PathBuf>,
    /// How `inputs` are imported.
    pub import: corpus::import::ImportConfig,
    /// The crawl; it runs when `crawl.seeds` has URLs.
    pub crawl: crawler::Config,
    /// Image-text pairs from the crawled pages, when `images.enabled`.
    pub images: Images,
    pub clean: cleaner::Config,
    pub dedup: dedup::Config,
    pub tokenizer: tokenizer::TrainConfig,
    pub encode: tokenizer::EncodeConfig,
    /// The run (its `model.vocab_size` is taken from the tokenizer).
    pub train: train::RunConfig,
    /// The batch stages as Slurm job arrays (`zhcorpus slurm submit`); `zhcorpus pipeline`
    /// ignores it.
    pub slurm: cluster::Settings,
}

/// The image-text branch: the crawled pages' images fetched (the crawl's client and politeness
/// unless set here), the pairs filtered, the kept ones written as WebDataset shards into the
/// folder's `images/`. It feeds no text stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Images {
    pub enabled: bool,
    /// Fetch settings; `None` takes the crawl's client, politeness and robots settings.
    pub fetch: Option<crawler::ImageFetchConfig>,
    pub filter: images::FilterConfig,
    pub export: images::ExportConfig,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            enabled: false,
            fetch: None,
            filter: images::FilterConfig::default(),
            export: images::ExportConfig {
                max_side: Some(512),
                ..images::ExportConfig::default()
            },
        }
    }
}

/// What can stop the pipeline: the stage and its error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid pipeline setting {0}")]
    Config(String),
    /// Stopped on request (`Progress::cancelled`) during or after this stage; the same call
    /// goes on from there.
    #[error("interrupted in the {0} stage: run the same command to go on")]
    Interrupted(&'static str),
    /// Every stage ran; the report page could not be written.
    #[error("writing the report: {0}")]
    Report(#[source] Box<report::Error>),
    #[error("{stage} stage: {source}")]
    Stage {
        stage: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        bad_input: bool,
    },
}

impl Error {
    /// True when the error is the user's input rather than a failure of the machine.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Config(_) => true,
            Error::Interrupted(_) | Error::Report(_) => false,
            Error::Stage { bad_input, .. } => *bad_input,
        }
    }
}

fn stage_error<E: std::error::Error + Send + Sync + 'static>(
    stage: Stage,
    bad_input: impl Fn(&E) -> bool,
) -> impl Fn(E) -> Error {
    move |e| Error::Stage {
        stage: stage.name(),
        bad_input: bad_input(&e),
        source: Box::new(e),
    }
}

impl Config {
    /// Refuses settings that cannot work: each section's own checks, named by section.
    pub fn validate(&self) -> Result<(), Error> {
        let section =
            |name: &str, e: &dyn std::fmt::Display| Error::Config(format!("[{name}] {e}"));
        if self.inputs.is_empty() && self.crawl.seeds.is_empty() {
            return Err(Error::Config(
                "inputs and crawl.seeds: give documents to import, seeds to crawl, or both".into(),
            ));
        }
        self.crawl.validate().map_err(|e| section("crawl", &e))?;
        if let Some(f) = &self.images.fetch {
            f.validate().map_err(|e| section("images.fetch", &e))?;
        }
        self.images
            .filter
            .validate()
            .map_err(|e| section("images.filter", &e))?;
        self.images
            .export
            .validate()
            .map_err(|e| section("images.export", &e))?;
        self.clean.validate().map_err(|e| section("clean", &e))?;
        self.dedup.validate().map_err(|e| section("dedup", &e))?;
        self.tokenizer
            .validate()
            .map_err(|e| section("tokenizer", &e))?;
        self.encode.validate().map_err(|e| section("encode", &e))?;
        let mut run = self.train.clone();
        run.model.vocab_size = self.tokenizer.vocab_size;
        run.validate().map_err(|e| section("train", &e))?;
        Ok(())
    }
}

/// Where everything goes inside the output folder.
#[derive(Debug, Clone)]
pub struct Layout {
    pub db: PathBuf,
    pub tokenizer: PathBuf,
    pub shards: PathBuf,
    pub run: PathBuf,
    /// The image-text pairs' WebDataset shards.
    pub images: PathBuf,
    /// The report page, written after the last stage.
    pub report: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            db: dir.join("corpus.db"),
            tokenizer: dir.join("tokenizer").join("tokenizer.json"),
            shards: dir.join("shards"),
            run: dir.join("run"),
            images: dir.join("images"),
            report: dir.join("report.html"),
        }
    }
}

/// Which stages to run: all by default; `from` reruns that stage and those after it even when
/// complete, `until` stops after that stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    pub from: Option<Stage>,
    pub until: Option<Stage>,
}

/// What happened to one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: Stage,
    /// `ran`, `skipped: complete`, `skipped: nothing to do`, or `not reached`.
    pub outcome: String,
    /// The stage's own report (its counts), when it ran.
    pub report: serde_json::Value,
}

/// What the pipeline did, stage by stage.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub stages: Vec<StageReport>,
    pub layout_db: PathBuf,
    /// The report page written after the last stage.
    pub report: PathBuf,
}

/// Runs the pipeline into `dir` (created if missing).
pub fn run(
    config: &Config,
    dir: &Path,
    span: Span,
    progress: &dyn Progress,
) -> Result<Report, Error> {
    config.validate()?;
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Config(format!(
            "output {} is a file: name a folder for the pipeline's output",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(stage_error(Stage::Import, |_| false))?;
    let layout = Layout::new(dir);
    let mut store =
        Store::open(&layout.db).map_err(stage_error(Stage::Import, corpus::Error::is_bad_input))?;
    let mut stages = Vec::new();
    // the id of the last run of the stages before: a stage is complete only when its run
    // finished after theirs
    let mut upstream = 0i64;
    let mut forced = false;
    for stage in Stage::ALL {
        if span.from == Some(stage) {
            forced = true;
        }
        let before_from = span.from.is_some_and(|f| stage < f);
        let past_until = span.until.is_some_and(|u| stage > u);
        if past_until {
            stages.push(StageReport {
                stage,
                outcome: "not reached".into(),
                report: serde_json::Value::Null,
            });
            continue;
        }
        tracing::info!("pipeline: {}", stage.name());
        let (outcome, report, id) = run_stage(
            stage,
            config,
            &layout,
            &mut store,
            upstream,
            forced,
            before_from,
            progress,
        )?;
        tracing::info!("pipeline: {}: {outcome}", stage.name());
        upstream = upstream.max(id);
        stages.push(StageReport {
            stage,
            outcome,
            report,
        });
        if progress.cancelled() {
            return Err(Error::Interrupted(stage.name()));
        }
    }
    let report = write_report(&store, &layout)?;
    Ok(Report {
        stages,
        layout_db: layout.db,
        report,
    })
}

/// The folder's report page (`report.html`), drawn from the store and whichever of the run,
/// shards and tokenizer exist; its path.
fn write_report(store: &Store, layout: &Layout) -> Result<PathBuf, Error> {
    let failed = |e: report::Error| Error::Report(Box::new(e));
    let inputs = report::Inputs {
        run: layout
            .run
            .join("metrics.jsonl")
            .exists()
            .then(|| layout.run.clone()),
        shards: layout
            .shards
            .join("manifest.json")
            .exists()
            .then(|| layout.shards.clone()),
        tokenizer: layout.tokenizer.exists().then(|| layout.tokenizer.clone()),
    };
    let built = report::build(store, &inputs).map_err(failed)?;
    report::write(&layout.report, &report::render(&built)).map_err(failed)?;
    Ok(layout.report.clone())
}

/// The id of the stage's last run when it is done and after `upstream`.
/// For the judging stages, also: no document lacks their verdict (an `extract --db` or a crawl
/// run by hand on the folder's store adds or replaces documents).
fn done_after(store: &Store, stage: &str, upstream: i64) -> Result<Option<i64>, Error> {
    let last = store.last_run(stage).map_err(db_error)?;
    let unjudged = match stage {
        "clean" => store.unjudged().map_err(db_error)?.clean,
        "dedup" => store.unjudged().map_err(db_error)?.dedup,
        _ => 0,
    };
    Ok(last
        .filter(|r| r.is_done() && r.id > upstream && unjudged == 0)
        .map(|r| r.id))
}

/// An error of the store itself, between stages.
fn db_error(e: corpus::Error) -> Error {
    Error::Stage {
        stage: "store",
        bad_input: e.is_bad_input(),
        source: Box::new(e),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_stage(
    stage: Stage,
    config: &Config,
    layout: &Layout,
    store: &mut Store,
    upstream: i64,
    forced: bool,
    before_from: bool,
    progress: &dyn Progress,
) -> Result<(String, serde_json::Value, i64), Error> {
    let json = |r: &dyn erased::Report| r.json();
    let skipped = |id: i64| Ok(("skipped: complete".to_string(), serde_json::Value::Null, id));
    let nothing = || {
        Ok((
            "skipped: nothing to do".to_string(),
            serde_json::Value::Null,
            upstream,
        ))
    };
    let complete = |name: &str| -> Result<Option<i64>, Error> {
        if forced && !before_from {
            return Ok(None);
        }
        done_after(store, name, upstream)
    };
    match stage {
        Stage::Import => {
            if config.inputs.is_empty() {
                return nothing();
            }
            if let Some(id) = complete("import")? {
                return skipped(id);
            }
            let r = corpus::import::run(store, &config.inputs, &config.import, progress)
                .map_err(stage_error(stage, corpus::Error::is_bad_input))?;
            let id = last_id(store, "import")?;
            Ok(("ran".into(), json(&r), id))
        }
        Stage::Crawl => {
            if config.crawl.seeds.is_empty() {
                return nothing();
            }
            // a crawl is complete when its last run finished and was not stopped by a signal:
            // URLs left queued by its own limits (max_pages, parked hosts) stay for a crawl
            // with other settings
            if (!forced || before_from)
                && let Some(id) = done_after(store, "crawl", upstream)?
            {
                let last = store
                    .last_run_counts("crawl")
                    .map_err(stage_error(stage, corpus::Error::is_bad_input))?;
                let interrupted = last
                    .as_ref()
                    .and_then(|c| c.get("interrupted"))
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false);
                if !interrupted {
                    return skipped(id);
                }
            }
            let r = crawler::crawl_blocking(store, config.crawl.clone(), progress)
                .map_err(stage_error(stage, crawler::Error::is_bad_input))?;
            let id = last_id(store, "crawl")?;
            Ok(("ran".into(), json(&r), id))
        }
        Stage::Images => {
            // a branch: it reports the upstream id, so that running it never makes the text
            // stages after it look stale
            if !config.images.enabled {
                return nothing();
            }
            let marker = layout.images.join("stats.json");
            let unjudged = store.unjudged_pairs().map_err(db_error)?;
            if marker.exists() && unjudged == 0 && complete("images-filter")?.is_some() {
                return Ok((
                    "skipped: complete".to_string(),
                    serde_json::Value::Null,
                    upstream,
                ));
            }
            let fetch = config
                .images
                .fetch
                .clone()
                .unwrap_or_else(|| crawler::ImageFetchConfig::from_crawl(&config.crawl));
            let fetched = crawler::fetch_images_blocking(store, fetch, progress)
                .map_err(stage_error(stage, crawler::Error::is_bad_input))?;
            if progress.cancelled() {
                return Ok(("interrupted".into(), json(&fetched), upstream));
            }
            // written beside the folder, then renamed into place: never half a folder
            let io = stage_error(stage, |_: &std::io::Error| false);
            let partial = layout.images.with_extension("partial");
            if partial.exists() {
                std::fs::remove_dir_all(&partial).map_err(&io)?;
            }
            let (filtered, exported) = images::filter_and_export(
                store,
                &config.images.filter,
                &config.images.export,
                &partial,
                progress,
            )
            .map_err(stage_error(stage, images::Error::is_bad_input))?;
            // the last good shards stay until the new ones are complete
            if layout.images.exists() {
                std::fs::remove_dir_all(&layout.images).map_err(&io)?;
            }
            std::fs::rename(&partial, &layout.images).map_err(&io)?;
            let report = serde_json::json!({
                "fetch": json(&fetched),
                "filter": json(&filtered),
                "export": json(&exported),
            });
            Ok(("ran".into(), report, upstream))
        }
        Stage::Clean => {
            if let Some(id) = complete("clean")? {
                return skipped(id);
            }
            let cleaner = cleaner::Cleaner::from_config(config.clean.clone())
                .map_err(stage_error(stage, cleaner::Error::is_bad_input))?;
            let r = cleaner::run_store(store, &cleaner, progress)
                .map_err(stage_error(stage, corpus::Error::is_bad_input))?;
            Ok(("ran".into(), json(&r), last_id(store, "clean")?))
        }
        Stage::Dedup => {
            if let Some(id) = complete("dedup")? {
                return skipped(id);
            }
            let d = dedup::Dedup::from_config(&config.dedup)
                .map_err(stage_error(stage, dedup::Error::is_bad_input))?;
            let r = dedup::run_store(store, &d, progress)
                .map_err(stage_error(stage, corpus::Error::is_bad_input))?;
            Ok(("ran".into(), json(&r), last_id(store, "dedup")?))
        }
        Stage::Tokenizer => {
            if layout.tokenizer.exists()
                && let Some(id) = complete("tokenizer")?
            {
                return skipped(id);
            }
            let r = tokenizer::train_tokenizer(
                tokenizer::Source::Store(store),
                &config.tokenizer,
                &layout.tokenizer,
                progress,
            )
            .map_err(stage_error(stage, tokenizer::Error::is_bad_input))?;
            Ok(("ran".into(), json(&r), last_id(store, "tokenizer")?))
        }
        Stage::Encode => {
            if layout.shards.join(corpus::shards::Manifest::FILE).exists()
                && let Some(id) = complete("encode")?
            {
                return skipped(id);
            }
            let spec = layout.tokenizer.to_string_lossy().into_owned();
            let r = tokenizer::encode(
                tokenizer::Source::Store(store),
                &spec,
                &layout.shards,
                &config.encode,
                progress,
            )
            .map_err(stage_error(stage, tokenizer::Error::is_bad_input))?;
            Ok(("ran".into(), json(&r), last_id(store, "encode")?))
        }
        Stage::Train => {
            let bad = stage_error(stage, train::TrainError::is_bad_input);
            let manifest = corpus::shards::Manifest::read(&layout.shards)
                .map_err(|e| bad(train::TrainError::Data(e.into())))?;
            let mut cfg = config.train.clone();
            cfg.model.vocab_size = manifest.vocab_size;
            let corpus_err = stage_error(stage, corpus::Error::is_bad_input);
            // one training per folder: the lock before the run folder is looked at
            store.lock_stage("train").map_err(&corpus_err)?;
            // the last train run counts only when it started after the shards were written
            let last = store
                .last_run("train")
                .map_err(&corpus_err)?
                .filter(|r| r.id > upstream && (!forced || before_from));
            let done = train::checkpoint_step(&layout.run);
            let has_run = layout.run.join("config.json").exists();
            if last.as_ref().is_some_and(|r| r.is_done()) && done == Some(cfg.max_steps) && has_run
            {
                let id = last.map_or(upstream, |r| r.id);
                return Ok(("skipped: complete".into(), serde_json::Value::Null, id));
            }
            // a run on these shards with a checkpoint resumes; anything else starts afresh
            let resume = last.is_some() && done.is_some() && has_run;
            if !resume && layout.run.exists() {
                std::fs::remove_dir_all(&layout.run).map_err(|e| {
                    bad(train::TrainError::Io {
                        path: layout.run.clone(),
                        source: e,
                    })
                })?;
            }
            // every session is a run of its own (a refused resume leaves the last one as it was)
            let run = store.begin_run("train", &cfg).map_err(&corpus_err)?;
            let result = train::train(
                &layout.shards,
                &layout.run,
                &cfg,
                resume,
                &candle_core::Device::Cpu,
                progress,
            );
            let status = corpus::RunStatus::of(&result);
            let steps = result.as_ref().ok().and_then(|h| h.last().map(|m| m.step));
            // stopped on request before its end: the run stays open (shown as interrupted once
            // this process ends) and the next call resumes it
            if !(result.is_ok() && progress.cancelled()) {
                store
                    .finish_run(run, status, &serde_json::json!({ "steps": steps }))
                    .map_err(&corpus_err)?;
            }
            let history = result.map_err(&bad)?;
            let report = serde_json::json!({
                "steps": history.last().map(|m| m.step),
                "steps_this_run": history.len(),
                "first_loss": history.first().map(|m| m.loss),
                "loss": history.last().map(|m| m.loss),
                "val_loss": history.iter().rev().find_map(|m| m.val_loss),
                "tokens_per_s": history.iter().map(|m| m.tokens_per_s).sum::<f64>()
                    / history.len().max(1) as f64,
                "resumed": resume,
            });
            Ok(("ran".into(), report, run.0))
        }
    }
}

fn last_id(store: &Store, stage: &str) -> Result<i64, Error> {
    Ok(store.last_run(stage).map_err(db_error)?.map_or(0, |r| r.id))
}

mod erased {
    /// A stage report as JSON.
    pub trait Report {
        fn json(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Report for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}
