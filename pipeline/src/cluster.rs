//! The pipeline's batch stages as arrays of tasks, for Slurm (`zhcorpus slurm submit`) or for
//! processes on one machine (`zhcorpus slurm local`): the same plan, the same tasks, the same
//! files.
//!
//! A [`Plan`] is fixed at launch and written to `plan.json` in the output folder: the sorted
//! input files, the number of ranks, the whole pipeline configuration and the steps, each an
//! array of tasks. A task ([`Plan::run_task`]) takes its part of the inputs by the shard
//! contract ([`corpus::shard`]), writes only its own files (under temporary names, synced,
//! renamed) and its completion marker last; a task with a marker is skipped when run again, a
//! task without one runs from the start. The steps:
//!
//! | step | tasks | writes |
//! |---|---|---|
//! | `extract` | ranks | `extract/docs-R.jsonl.zst`: the pages of the rank's stores extracted (when the inputs are crawl workers' stores) |
//! | `clean-count` | ranks | `clean/lines-R.bin`: the rank's line counts per host |
//! | `clean-judge` | ranks | `clean/kept-R.jsonl.zst`, `clean/rejected-R.jsonl.zst`, judged with every rank's counts |
//! | `dedup-sketch` | ranks | `dedup/index/sketch-R.*`: keys sorted per slot, facts |
//! | `dedup-pairs` | ranks (at most one per slot) | `dedup/index/pairs-S.bin`: each slot's pairs, global ids |
//! | `dedup-sets` | ranks | `dedup/index/sets-R.bin`: shingle sets of the documents in near pairs |
//! | `dedup-cluster` | 1 | `dedup/index/outcomes-R.bin`: verified pairs clustered |
//! | `dedup-filter` | ranks | `dedup/kept-R.jsonl.zst`: the kept documents |
//! | `tokenizer-count` | ranks | `tokenizer/pieces-R.bin`: the pieces of the rank's kept documents, counted |
//! | `tokenizer` | 1 | `tokenizer/tokenizer.json`, trained on the summed counts |
//! | `encode` | ranks | `encode/rank-R/`: llm.c shards of the rank's kept documents |
//! | `shards` | 1 | `shards/`: the ranks' tokens joined and cut as one process cuts them, the ranks' folders then removed |
//! | `store` | ranks | `stores/rank-R.db`: the rank's kept documents imported (with `[slurm] store`) |
//! | `merge` | 1 | `corpus.db`: the ranks' stores merged, in rank order |
//!
//! The kept documents of the ranks, in rank order, are those the one-machine file-to-file runs
//! (`zhcorpus clean` then `zhcorpus dedup` over the same sorted inputs) keep, in the same
//! order, with the same texts; the tokenizer and the token shards are byte-identical to those a
//! one-machine `zhcorpus tokenizer train` and `tokenizer encode` of those documents write.

use std::path::{Path, PathBuf};
use std::process::Command;

use corpus::Progress;
use corpus::shard::{Markers, Shard};
use serde::{Deserialize, Serialize};

use crate::{Config, Error};

/// How the plan runs on Slurm: the `[slurm]` section of the pipeline's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Tasks per array step: the sorted input files are split into this many contiguous
    /// parts (with more ranks than files, the extra ranks get none and write empty files).
    pub ranks: usize,
    /// Tasks of one step running at once (`--array=0-N%K`); none: as many as Slurm allows.
    pub max_parallel: Option<usize>,
    /// `--partition`; none: the cluster's default.
    pub partition: Option<String>,
    /// `--time` of each task.
    pub time: String,
    /// `--mem` of each task.
    pub mem: String,
    /// Also import the kept documents into one store, `corpus.db` (a store per rank, then
    /// `zhcorpus merge`); off, the corpus is the ranks' JSONL files alone.
    pub store: bool,
    /// `--cpus-per-task`; each task runs this many threads.
    pub cpus_per_task: usize,
    /// More `#SBATCH` options, each as `--name=value`.
    pub sbatch_options: Vec<String>,
    /// The zhcorpus binary the tasks run, as the compute nodes see it; none: this one.
    pub binary: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ranks: 4,
            max_parallel: None,
            partition: None,
            time: "04:00:00".into(),
            mem: "8G".into(),
            store: true,
            cpus_per_task: 2,
            sbatch_options: Vec::new(),
            binary: None,
        }
    }
}

/// One array step of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Extract,
    CleanCount,
    CleanJudge,
    DedupSketch,
    DedupPairs,
    DedupSets,
    DedupCluster,
    DedupFilter,
    TokenizerCount,
    Tokenizer,
    Encode,
    Shards,
    Store,
    Merge,
}

impl Step {
    pub const ALL: [Step; 14] = [
        Step::Extract,
        Step::CleanCount,
        Step::CleanJudge,
        Step::DedupSketch,
        Step::DedupPairs,
        Step::DedupSets,
        Step::DedupCluster,
        Step::DedupFilter,
        Step::TokenizerCount,
        Step::Tokenizer,
        Step::Encode,
        Step::Shards,
        Step::Store,
        Step::Merge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Extract => "extract",
            Step::CleanCount => "clean-count",
            Step::CleanJudge => "clean-judge",
            Step::DedupSketch => "dedup-sketch",
            Step::DedupPairs => "dedup-pairs",
            Step::DedupSets => "dedup-sets",
            Step::DedupCluster => "dedup-cluster",
            Step::DedupFilter => "dedup-filter",
            Step::TokenizerCount => "tokenizer-count",
            Step::Tokenizer => "tokenizer",
            Step::Encode => "encode",
            Step::Shards => "shards",
            Step::Store => "store",
            Step::Merge => "merge",
        }
    }

    pub fn parse(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A step and its number of tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    pub step: Step,
    pub tasks: usize,
}

/// Everything the tasks need, fixed at launch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The output folder, absolute.
    pub output: PathBuf,
    /// The input files, absolute, sorted.
    pub inputs: Vec<PathBuf>,
    pub ranks: usize,
    pub steps: Vec<Planned>,
    pub config: Config,
}

/// Where a plan's files go inside its output folder.
fn path(out: &Path, parts: &[&str]) -> PathBuf {
    parts.iter().fold(out.to_path_buf(), |p, s| p.join(s))
}

fn rank_file(out: &Path, dir: &str, stem: &str, rank: usize, ext: &str) -> PathBuf {
    out.join(dir).join(format!("{stem}-{rank:05}.{ext}"))
}

/// What running one task did.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// It had a completion marker.
    Skipped,
    /// It ran; its report (also in its marker).
    Ran(serde_json::Value),
}

/// One step's state, from its markers.
#[derive(Debug, Clone, Serialize)]
pub struct StepStatus {
    pub step: Step,
    pub tasks: usize,
    pub done: usize,
    /// The failed ranks and why, from their failure markers.
    pub failed: Vec<(usize, String)>,
}

/// A plan's task failed, or the plan cannot run yet (a step before is incomplete): the user's
/// to fix, so exit 2.
fn usage_error(e: impl std::fmt::Display) -> Error {
    Error::Stage {
        stage: "slurm",
        source: e.to_string().into(),
        bad_input: true,
    }
}

/// Running a plan failed on the machine: a file, sbatch or squeue.
fn run_error(e: impl std::fmt::Display) -> Error {
    Error::Stage {
        stage: "slurm",
        source: e.to_string().into(),
        bad_input: false,
    }
}

/// A task of `step` failed (its error and log in the message).
fn task_failed(step: Step, message: String) -> Error {
    Error::Stage {
        stage: step.name(),
        source: message.into(),
        bad_input: true,
    }
}

fn config_error(e: impl std::fmt::Display) -> Error {
    Error::Config(e.to_string())
}

fn task_error<E: std::error::Error + Send + Sync + 'static>(
    step: Step,
    bad_input: impl Fn(&E) -> bool,
) -> impl Fn(E) -> Error {
    move |e| Error::Stage {
        stage: step.name(),
        bad_input: bad_input(&e),
        source: Box::new(e),
    }
}

impl Plan {
    /// The plan for `config` into `output`, with `ranks` tasks per array step (the config's
    /// `[slurm] ranks` when `None`). Only the batch stages over files split: the inputs are
    /// JSONL(.zst) files, and a crawl, the image branch, paragraph dedup and decontamination
    /// are refused (they run on one machine: `zhcorpus pipeline`).
    pub fn new(config: &Config, output: &Path, ranks: Option<usize>) -> Result<Plan, Error> {
        config.validate()?;
        if config.inputs.is_empty() {
            return Err(config_error(
                "inputs: a split run reads JSONL(.zst) files; give them in `inputs`",
            ));
        }
        if !config.crawl.seeds.is_empty() {
            return Err(config_error(
                "crawl.seeds: a split run starts from files; crawl with many workers on a \
                 shared frontier (`zhcorpus crawl --frontier redis://...`), then give the \
                 exported documents as `inputs`",
            ));
        }
        if config.images.enabled {
            return Err(config_error(
                "images.enabled: the image branch runs on one machine (`zhcorpus pipeline`)",
            ));
        }
        let dedup = dedup::Dedup::from_config(&config.dedup)
            .map_err(|e| Error::Config(format!("[dedup] {e}")))?;
        dedup::shard::check_splittable(&dedup)
            .map_err(|e| Error::Config(format!("[dedup] {e}")))?;
        let ranks = ranks.unwrap_or(config.slurm.ranks);
        if ranks == 0 {
            return Err(config_error("slurm.ranks: must be at least 1"));
        }
        let abs = |p: &Path| -> Result<PathBuf, Error> {
            std::path::absolute(p).map_err(|e| config_error(format!("{}: {e}", p.display())))
        };
        let mut inputs = Vec::new();
        for p in &config.inputs {
            if !p.is_file() {
                return Err(config_error(format!(
                    "inputs: {} is not a file",
                    p.display()
                )));
            }
            inputs.push(abs(p)?);
        }
        let inputs = corpus::shard::sorted_inputs(&inputs);
        // crawl workers' stores (their pages extracted first), or documents: not both
        let is_store = |p: &PathBuf| p.extension().is_some_and(|e| e == "db");
        let from_stores = inputs.iter().all(is_store);
        if !from_stores && inputs.iter().any(is_store) {
            return Err(config_error(
                "inputs: all stores (.db: crawl workers' stores, their pages extracted) or all \
                 JSONL(.zst) documents, not both",
            ));
        }
        let slots = dedup::shard::slots(&dedup).max(1);
        let steps = Step::ALL
            .into_iter()
            .filter(|s| config.slurm.store || !matches!(s, Step::Store | Step::Merge))
            .filter(|s| from_stores || *s != Step::Extract)
            .map(|step| Planned {
                step,
                tasks: match step {
                    Step::DedupCluster | Step::Tokenizer | Step::Shards | Step::Merge => 1,
                    Step::DedupPairs => ranks.min(slots),
                    _ => ranks,
                },
            })
            .collect();
        Ok(Plan {
            output: abs(output)?,
            inputs,
            ranks,
            steps,
            config: config.clone(),
        })
    }

    /// The plan file of an output folder.
    pub fn file(output: &Path) -> PathBuf {
        output.join("plan.json")
    }

    /// Reads the plan an output folder holds.
    pub fn read(output: &Path) -> Result<Plan, Error> {
        let file = Plan::file(output);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| config_error(format!("{}: {e}", file.display())))?;
        serde_json::from_str(&text).map_err(|e| config_error(format!("{}: {e}", file.display())))
    }

    /// Writes `plan.json`, or checks that the one there is this plan: a folder holds one plan,
    /// so that a rerun finds the tasks it left.
    pub fn write(&self) -> Result<(), Error> {
        let file = Plan::file(&self.output);
        if file.exists() {
            let there = Plan::read(&self.output)?;
            // what the tasks compute from: how Slurm runs them (queue, time, memory) may change
            let json = |p: &Plan| {
                let mut p = p.clone();
                p.config.slurm = Settings::default();
                serde_json::to_value(p).unwrap_or_default()
            };
            if json(&there) != json(self) {
                return Err(config_error(format!(
                    "{} holds another plan (other inputs, ranks or stage settings); use a \
                     new output folder",
                    file.display()
                )));
            }
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(self).map_err(config_error)?;
        corpus::shard::write_atomic(&file, &bytes).map_err(task_error(Step::CleanCount, |_| false))
    }

    pub fn markers(&self) -> Markers {
        Markers::new(self.output.join("markers"))
    }

    /// The tasks of `step`.
    pub fn tasks(&self, step: Step) -> usize {
        self.steps
            .iter()
            .find(|p| p.step == step)
            .map_or(0, |p| p.tasks)
    }

    /// The kept documents of every rank, in rank order: the split run's JSONL set.
    pub fn kept_files(&self) -> Vec<PathBuf> {
        (0..self.ranks)
            .map(|r| rank_file(&self.output, "dedup", "kept", r, "jsonl.zst"))
            .collect()
    }

    /// The folder of the token shards, with the manifest over every rank's.
    pub fn shards(&self) -> PathBuf {
        self.output.join("shards")
    }

    /// What clean reads for rank `rank`: its part of the input documents, or the documents
    /// the extract step made of its part of the stores.
    fn clean_inputs(&self, rank: usize) -> Vec<PathBuf> {
        if self.tasks(Step::Extract) > 0 {
            vec![rank_file(
                &self.output,
                "extract",
                "docs",
                rank,
                "jsonl.zst",
            )]
        } else {
            let shard = Shard::new(rank, self.ranks).unwrap_or(Shard::ALONE);
            shard.part(&self.inputs).to_vec()
        }
    }

    /// The piece counts of one tokenizer-count task.
    fn pieces(&self, rank: usize) -> PathBuf {
        rank_file(&self.output, "tokenizer", "pieces", rank, "bin")
    }

    /// The shards of one encode task, joined into [`Plan::shards`] by the last step.
    fn encoded(&self, rank: usize) -> PathBuf {
        self.output.join("encode").join(format!("rank-{rank:05}"))
    }

    /// The tokenizer the plan trains.
    pub fn tokenizer(&self) -> PathBuf {
        path(&self.output, &["tokenizer", "tokenizer.json"])
    }

    /// Each step's state.
    pub fn status(&self) -> Vec<StepStatus> {
        let m = self.markers();
        self.steps
            .iter()
            .map(|p| StepStatus {
                step: p.step,
                tasks: p.tasks,
                done: (0..p.tasks)
                    .filter(|&r| m.is_done(p.step.name(), r))
                    .count(),
                failed: (0..p.tasks)
                    .filter_map(|r| m.failure(p.step.name(), r).map(|w| (r, w)))
                    .collect(),
            })
            .collect()
    }

    /// The reports of every task of `step`, which must all be complete.
    fn reports<T: serde::de::DeserializeOwned>(&self, step: Step) -> Result<Vec<T>, Error> {
        let m = self.markers();
        (0..self.tasks(step))
            .map(|r| {
                m.done::<T>(step.name(), r)
                    .map_err(task_error(step, corpus::Error::is_bad_input))?
                    .ok_or_else(|| {
                        usage_error(format!(
                            "{} task {r} is not complete: run that step first",
                            step.name()
                        ))
                    })
            })
            .collect()
    }

    /// Runs task `rank` of `step`, unless it is complete; the step before must be complete.
    /// A failure is recorded (`markers/STEP-R.failed`) before it is returned.
    pub fn run_task(
        &self,
        step: Step,
        rank: usize,
        progress: &dyn Progress,
    ) -> Result<TaskOutcome, Error> {
        let tasks = self.tasks(step);
        if rank >= tasks {
            return Err(usage_error(format!(
                "{} has {tasks} task(s): rank {rank} is not one of them",
                step.name()
            )));
        }
        let m = self.markers();
        if m.is_done(step.name(), rank) {
            return Ok(TaskOutcome::Skipped);
        }
        m.clear_failure(step.name(), rank);
        let start = std::time::Instant::now();
        let result = self.run_task_inner(step, rank, progress);
        match result {
            Ok(mut report) => {
                // every marker says how long its task took, whatever the stage's report holds
                if let Some(o) = report.as_object_mut() {
                    o.insert(
                        "task_seconds".into(),
                        serde_json::json!(start.elapsed().as_secs_f64()),
                    );
                }
                m.mark_done(step.name(), rank, &report)
                    .map_err(task_error(step, corpus::Error::is_bad_input))?;
                Ok(TaskOutcome::Ran(report))
            }
            Err(e) => {
                // the error alone: the marker's name says the step
                let why = match &e {
                    Error::Stage { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                let _ = m.mark_failed(step.name(), rank, &why);
                Err(e)
            }
        }
    }

    fn run_task_inner(
        &self,
        step: Step,
        rank: usize,
        progress: &dyn Progress,
    ) -> Result<serde_json::Value, Error> {
        // every task of the step before is complete
        if let Some(i) = self.steps.iter().position(|p| p.step == step)
            && i > 0
        {
            let before = self.steps[i - 1];
            let m = self.markers();
            if let Some(r) = (0..before.tasks).find(|&r| !m.is_done(before.step.name(), r)) {
                return Err(usage_error(format!(
                    "{} task {r} is not complete: {} needs every task of it",
                    before.step.name(),
                    step.name()
                )));
            }
        }
        let out = &self.output;
        let shard = Shard::new(rank, self.ranks).unwrap_or(Shard::ALONE);
        let corpus_err = |s: Step| task_error(s, corpus::Error::is_bad_input);
        let cleaner = || {
            cleaner::Cleaner::from_config(self.config.clean.clone())
                .map_err(task_error(step, cleaner::Error::is_bad_input))
        };
        let dedup = || {
            dedup::Dedup::from_config(&self.config.dedup)
                .map_err(task_error(step, dedup::Error::is_bad_input))
        };
        let work = path(out, &["dedup", "index"]);
        let clean_kept = |r: usize| rank_file(out, "clean", "kept", r, "jsonl.zst");
        let counts = || -> Result<Vec<u64>, Error> {
            Ok(self
                .reports::<dedup::shard::SketchReport>(Step::DedupSketch)?
                .iter()
                .map(|r| r.documents)
                .collect())
        };
        match step {
            Step::Store => {
                let db = rank_file(out, "stores", "rank", rank, "db");
                // a store made again makes the merged one stale: it is merged again; and a
                // task run again starts its own store afresh
                remove_store(&out.join("corpus.db"))?;
                remove_store(&db)?;
                let dir = out.join("stores");
                std::fs::create_dir_all(&dir)
                    .map_err(|e| run_error(format!("{}: {e}", dir.display())))?;
                let mut store = corpus::Store::open(&db).map_err(corpus_err(step))?;
                let files = [self.kept_files()[rank].clone()];
                let r = corpus::import::run(&mut store, &files, &self.config.import, progress)
                    .map_err(corpus_err(step))?;
                // closed: its write-ahead log folded into the file, which alone travels
                drop(store);
                Ok(json(&r))
            }
            Step::Merge => {
                let db = out.join("corpus.db");
                // merge writes under a temporary name and renames when complete: a store in
                // place is a finished merge whose marker was not written
                if !db.exists() {
                    let sources: Vec<PathBuf> = (0..self.ranks)
                        .map(|r| rank_file(out, "stores", "rank", r, "db"))
                        .collect();
                    corpus::merge::merge(&db, &sources, progress).map_err(corpus_err(step))?;
                }
                let store = corpus::Store::open_existing(&db).map_err(corpus_err(step))?;
                let documents = store.document_count().map_err(corpus_err(step))?;
                Ok(serde_json::json!({ "documents": documents, "store": db }))
            }
            Step::Extract => {
                let docs = rank_file(out, "extract", "docs", rank, "jsonl.zst");
                let r = crawler::extract_stores(shard.part(&self.inputs), &docs, progress)
                    .map_err(task_error(step, crawler::Error::is_bad_input))?;
                Ok(json(&r))
            }
            Step::CleanCount => {
                let inputs = &self.clean_inputs(rank);
                let lines = rank_file(out, "clean", "lines", rank, "bin");
                let r = cleaner::count_shard(inputs, &lines, &cleaner()?, progress)
                    .map_err(corpus_err(step))?;
                Ok(json(&r))
            }
            Step::CleanJudge => {
                let inputs = &self.clean_inputs(rank);
                let lines: Vec<PathBuf> = (0..self.ranks)
                    .map(|r| rank_file(out, "clean", "lines", r, "bin"))
                    .collect();
                let rejected = rank_file(out, "clean", "rejected", rank, "jsonl.zst");
                let r = cleaner::judge_shard(
                    inputs,
                    &lines,
                    &clean_kept(rank),
                    Some(&rejected),
                    &cleaner()?,
                    progress,
                )
                .map_err(corpus_err(step))?;
                Ok(json(&r))
            }
            Step::DedupSketch => {
                let r = dedup::shard::sketch_shard(
                    &dedup()?,
                    &[clean_kept(rank)],
                    &work,
                    rank,
                    progress,
                )
                .map_err(corpus_err(step))?;
                Ok(json(&r))
            }
            Step::DedupPairs => {
                let tasks = self.tasks(step);
                let slots: Vec<usize> = (0..dedup::shard::slots(&dedup()?))
                    .filter(|s| s % tasks == rank)
                    .collect();
                let r = dedup::shard::pairs_task(&work, &counts()?, &slots, progress)
                    .map_err(corpus_err(step))?;
                Ok(json(&r))
            }
            Step::DedupSets => {
                let r = dedup::shard::sets_shard(
                    &dedup()?,
                    &[clean_kept(rank)],
                    &work,
                    &counts()?,
                    rank,
                    progress,
                )
                .map_err(corpus_err(step))?;
                Ok(json(&r))
            }
            Step::DedupCluster => {
                let r = dedup::shard::cluster(&dedup()?, &work, &counts()?, progress)
                    .map_err(corpus_err(step))?;
                Ok(json(&r))
            }
            Step::DedupFilter => {
                let documents = counts()?.get(rank).copied().unwrap_or(0);
                let kept = rank_file(out, "dedup", "kept", rank, "jsonl.zst");
                let r = dedup::shard::filter_shard(
                    &dedup()?,
                    &[clean_kept(rank)],
                    &work,
                    rank,
                    documents,
                    &kept,
                    progress,
                )
                .map_err(corpus_err(step))?;
                Ok(json(&r))
            }
            Step::TokenizerCount => {
                let files = [self.kept_files()[rank].clone()];
                let r = tokenizer::count_pieces(
                    tokenizer::Source::Files(&files),
                    &self.config.tokenizer,
                    &self.pieces(rank),
                    progress,
                )
                .map_err(task_error(step, tokenizer::Error::is_bad_input))?;
                Ok(json(&r))
            }
            Step::Tokenizer => {
                let tables: Vec<PathBuf> = (0..self.ranks).map(|r| self.pieces(r)).collect();
                let r = tokenizer::train_from_counts(
                    &tables,
                    &self.config.tokenizer,
                    &self.tokenizer(),
                    progress,
                )
                .map_err(task_error(step, tokenizer::Error::is_bad_input))?;
                Ok(json(&r))
            }
            Step::Encode => {
                let files = [self.kept_files()[rank].clone()];
                let dir = self.encoded(rank);
                let spec = self.tokenizer().to_string_lossy().into_owned();
                let r = tokenizer::encode(
                    tokenizer::Source::Files(&files),
                    &spec,
                    &dir,
                    &self.config.encode,
                    progress,
                )
                .map_err(task_error(step, tokenizer::Error::is_bad_input))?;
                Ok(json(&r.manifest))
            }
            Step::Shards => {
                let dirs: Vec<PathBuf> = (0..self.ranks).map(|r| self.encoded(r)).collect();
                let joined = self.shards().join(corpus::shards::Manifest::FILE);
                let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
                // the joined manifest is written last, after the shards are on disk: when it is
                // newer than every rank's, the join is complete (the task died removing the
                // ranks' folders, before its marker) and is not redone over half-removed folders
                let joined_at = modified(&joined);
                let complete = joined_at.is_some_and(|at| {
                    dirs.iter().all(|d| {
                        modified(&d.join(corpus::shards::Manifest::FILE)).is_none_or(|m| m <= at)
                    })
                });
                let m = if complete {
                    corpus::shards::Manifest::read(&self.shards())
                        .map_err(task_error(step, |_| false))?
                } else if dirs
                    .iter()
                    .all(|d| d.join(corpus::shards::Manifest::FILE).is_file())
                {
                    tokenizer::join_shards(&dirs, &self.shards(), self.config.encode.shard_tokens)
                        .map_err(task_error(step, tokenizer::Error::is_bad_input))?
                } else {
                    return Err(usage_error(format!(
                        "the encode tasks' folders under {} are gone and {} was never written: \
                         run the encode step again (remove its markers)",
                        self.output.join("encode").display(),
                        joined.display()
                    )));
                };
                // the ranks' shards are in the joined ones now
                for d in &dirs {
                    if d.is_dir() {
                        std::fs::remove_dir_all(d)
                            .map_err(|e| run_error(format!("removing {}: {e}", d.display())))?;
                    }
                }
                Ok(json(&m))
            }
        }
    }

    /// Where `submit` writes the sbatch script of `step`.
    pub fn script(&self, step: Step) -> PathBuf {
        path(&self.output, &["slurm", &format!("{}.sbatch", step.name())])
    }

    /// The sbatch script of `step`: a job array of its tasks, each running
    /// `zhcorpus slurm task` with its rank from `SLURM_ARRAY_TASK_ID`, its log in `logs/`.
    pub fn sbatch_script(&self, step: Step, binary: &Path) -> String {
        let s = &self.config.slurm;
        let tasks = self.tasks(step);
        let mut array = format!("0-{}", tasks.saturating_sub(1));
        if let Some(k) = s.max_parallel {
            array.push_str(&format!("%{k}"));
        }
        let logs = self.output.join("logs");
        let mut lines = vec![
            "#!/bin/bash".to_string(),
            format!("#SBATCH --job-name=zhcorpus-{}", step.name()),
            format!("#SBATCH --array={array}"),
            format!(
                "#SBATCH --output={}",
                logs.join(format!("{}-%a.log", step.name())).display()
            ),
            format!("#SBATCH --cpus-per-task={}", s.cpus_per_task),
            format!("#SBATCH --mem={}", s.mem),
            format!("#SBATCH --time={}", s.time),
            // a failed step cancels the steps waiting on it instead of leaving them pending
            "#SBATCH --kill-on-invalid-dep=yes".to_string(),
        ];
        if let Some(p) = &s.partition {
            lines.push(format!("#SBATCH --partition={p}"));
        }
        for o in &s.sbatch_options {
            lines.push(format!("#SBATCH {o}"));
        }
        lines.push(format!(
            "# zhcorpus plan {}: step {} ({tasks} task(s))",
            Plan::file(&self.output).display(),
            step.name()
        ));
        lines.push("export ZHCORPUS_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"".to_string());
        lines.push(format!(
            "exec {} slurm task --plan {} --step {}",
            shell_quote(&binary.to_string_lossy()),
            shell_quote(&Plan::file(&self.output).to_string_lossy()),
            step.name()
        ));
        lines.join("\n") + "\n"
    }

    /// Writes every step's script into `slurm/` and submits them in order with `sbatch`, each
    /// after the one before it (`--dependency=afterok`); steps already complete are not
    /// submitted. Returns the (step, job id) of each submitted; also written to
    /// `slurm/jobs.json`.
    /// Refused while a job of the last submission is still queued or running (`squeue`): two
    /// copies of a task would write the same files.
    pub fn submit(
        &self,
        binary: &Path,
        sbatch: &Path,
        squeue: &Path,
    ) -> Result<Vec<(Step, String)>, Error> {
        if let Some(q) = self.queued(squeue)?
            && !q.is_empty()
        {
            return Err(config_error(format!(
                "jobs of the last submission are still in the queue ({}): wait for them or \
                 scancel them, then submit again",
                q.join("; ")
            )));
        }
        self.write()?;
        let dir = self.output.join("slurm");
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e: std::io::Error| run_error(format!("{}: {e}", p.display()))
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        std::fs::create_dir_all(self.output.join("logs")).map_err(io(&self.output))?;
        let status = self.status();
        let mut jobs: Vec<(Step, String)> = Vec::new();
        let record = |jobs: &[(Step, String)]| -> Result<(), Error> {
            let record: Vec<serde_json::Value> = jobs
                .iter()
                .map(|(s, id)| serde_json::json!({ "step": s.name(), "job": id }))
                .collect();
            let bytes = serde_json::to_vec_pretty(&record).map_err(config_error)?;
            corpus::shard::write_atomic(&dir.join("jobs.json"), &bytes).map_err(io(&dir))
        };
        for st in status {
            if st.done == st.tasks {
                continue;
            }
            let script = self.script(st.step);
            std::fs::write(&script, self.sbatch_script(st.step, binary)).map_err(io(&script))?;
            let mut cmd = Command::new(sbatch);
            cmd.arg("--parsable");
            if let Some((_, prev)) = jobs.last() {
                cmd.arg(format!("--dependency=afterok:{prev}"));
            }
            cmd.arg(&script);
            let out = cmd
                .output()
                .map_err(|e| run_error(format!("cannot run {}: {e}", sbatch.display())))?;
            if !out.status.success() {
                return Err(run_error(format!(
                    "sbatch {} failed: {}",
                    script.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            // `--parsable` prints "jobid" or "jobid;cluster"
            let id = text.trim().split(';').next().unwrap_or("").to_string();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(run_error(format!(
                    "sbatch {} printed no job id: {text:?}",
                    script.display()
                )));
            }
            jobs.push((st.step, id));
            // recorded as each job is queued: a later sbatch that fails leaves the ones before
            // it known, so that the next submission waits for them
            record(&jobs)?;
        }
        if jobs.is_empty() {
            record(&jobs)?;
        }
        Ok(jobs)
    }

    /// The jobs of the last submission still in the queue, one `id name state reason` line
    /// each; `None` when nothing was submitted. Jobs Slurm no longer knows are not queued.
    pub fn queued(&self, squeue: &Path) -> Result<Option<Vec<String>>, Error> {
        let jobs = self.submitted();
        if jobs.is_empty() {
            return Ok(None);
        }
        let ids: Vec<&str> = jobs.iter().map(|(_, id)| id.as_str()).collect();
        let out = Command::new(squeue)
            .args(["-h", "-r", "-o", "%i %j %T %r", "-j", &ids.join(",")])
            .output()
            .map_err(|e| run_error(format!("cannot run {}: {e}", squeue.display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // every id purged from the controller's memory
            if err.contains("Invalid job id") {
                return Ok(Some(Vec::new()));
            }
            return Err(run_error(format!("squeue failed: {}", err.trim())));
        }
        Ok(Some(text.lines().map(str::to_string).collect()))
    }

    /// The jobs the last submission made, (step, job id).
    pub fn submitted(&self) -> Vec<(String, String)> {
        let file = self.output.join("slurm").join("jobs.json");
        let Ok(text) = std::fs::read_to_string(file) else {
            return Vec::new();
        };
        let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
        v.iter()
            .filter_map(|j| {
                Some((
                    j.get("step")?.as_str()?.to_string(),
                    j.get("job")?.as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// Runs the plan on this machine: each step's tasks as up to `processes` child processes of
    /// `binary slurm task` at a time, step after step; stops after a step with a failed task,
    /// naming it. Complete tasks are skipped, as on Slurm.
    pub fn run_local(
        &self,
        binary: &Path,
        processes: usize,
        threads: usize,
        progress: &dyn Progress,
    ) -> Result<Vec<StepStatus>, Error> {
        self.write()?;
        // this machine runs the plan now: jobs of an earlier Slurm submission are not its own
        let jobs = self.output.join("slurm").join("jobs.json");
        if jobs.exists() {
            std::fs::remove_file(&jobs)
                .map_err(|e| run_error(format!("removing {}: {e}", jobs.display())))?;
        }
        let logs = self.output.join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| run_error(format!("{}: {e}", logs.display())))?;
        let processes = processes.max(1);
        for p in &self.steps {
            progress.start(p.step.name(), Some(p.tasks as u64));
            let mut pending: Vec<usize> = (0..p.tasks).rev().collect();
            let mut running: Vec<(usize, std::process::Child)> = Vec::new();
            let mut failed: Vec<usize> = Vec::new();
            let mut finished = 0u64;
            while !pending.is_empty() || !running.is_empty() {
                while running.len() < processes
                    && let Some(rank) = pending.pop()
                {
                    let log = logs.join(format!("{}-{rank}.log", p.step.name()));
                    let file = std::fs::File::create(&log)
                        .map_err(|e| run_error(format!("{}: {e}", log.display())))?;
                    let err = file
                        .try_clone()
                        .map_err(|e| run_error(format!("{}: {e}", log.display())))?;
                    let child = Command::new(binary)
                        .args(["slurm", "task", "--plan"])
                        .arg(Plan::file(&self.output))
                        .args(["--step", p.step.name(), "--rank", &rank.to_string()])
                        .env("ZHCORPUS_THREADS", threads.max(1).to_string())
                        .stdout(file)
                        .stderr(err)
                        .spawn()
                        .map_err(|e| run_error(format!("cannot run {}: {e}", binary.display())))?;
                    running.push((rank, child));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                let mut k = 0;
                while k < running.len() {
                    match running[k].1.try_wait() {
                        Ok(Some(status)) => {
                            let (rank, _) = running.swap_remove(k);
                            if !status.success() {
                                failed.push(rank);
                            }
                            finished += 1;
                            progress.update(finished, finished);
                        }
                        Ok(None) => k += 1,
                        Err(e) => return Err(run_error(e)),
                    }
                }
                if progress.cancelled() {
                    for (_, c) in &mut running {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    return Err(Error::Interrupted(p.step.name()));
                }
            }
            progress.finish();
            if let Some(&rank) = failed.iter().min() {
                let why = self
                    .markers()
                    .failure(p.step.name(), rank)
                    .unwrap_or_else(|| "it exited without saying why".into());
                let log = logs.join(format!("{}-{rank}.log", p.step.name()));
                return Err(task_failed(
                    p.step,
                    format!("task {rank} failed: {why} (log: {})", log.display()),
                ));
            }
        }
        Ok(self.status())
    }
}

/// `s` quoted for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A task's report as JSON.
fn json<T: Serialize>(report: &T) -> serde_json::Value {
    serde_json::to_value(report).unwrap_or_default()
}

/// Removes a SQLite store and its write-ahead files, where they exist.
fn remove_store(db: &Path) -> Result<(), Error> {
    for ext in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{ext}", db.display()));
        if p.exists() {
            std::fs::remove_file(&p)
                .map_err(|e| run_error(format!("removing {}: {e}", p.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_paths_and_quotes_the_rest() {
        assert_eq!(shell_quote("/opt/bin/zhcorpus"), "/opt/bin/zhcorpus");
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }

    #[test]
    fn every_step_has_its_name() {
        for s in Step::ALL {
            assert_eq!(Step::parse(s.name()), Some(s));
        }
    }
}
