//! `zhcorpus slurm`: the pipeline's batch stages as Slurm job arrays over shards, or as
//! processes on this machine; the same plan either way.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use pipeline::Config;
use pipeline::cluster::{Plan, Step, TaskOutcome};

use crate::Global;
use crate::error::UsageError;
use crate::progress::Bar;
use crate::settings::{self, Overrides};

#[derive(Args)]
pub struct SlurmArgs {
    #[command(subcommand)]
    command: SlurmCommand,
}

#[derive(Subcommand)]
enum SlurmCommand {
    /// Write the plan and one sbatch script per step (job arrays chained with afterok) and
    /// submit them; steps already complete are left out.
    Submit(PlanArgs),
    /// Run the same plan on this machine, N processes at a time: no Slurm needed.
    Local(LocalArgs),
    /// Each step's tasks: complete, failed (with why), and the submitted jobs in the queue.
    Status(StatusArgs),
    /// Run one task of one step (what the sbatch scripts call); skipped when complete.
    Task(TaskArgs),
}

#[derive(Args)]
struct PlanArgs {
    /// The pipeline's settings (`zhcorpus pipeline --print-config`): `inputs`, the stage
    /// sections and `[slurm]` (ranks, partition, time, memory, CPUs per task).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,

    /// The folder for the plan, every task's files, markers and logs.
    #[arg(long, short, value_name = "DIR", default_value = "zhcorpus-out")]
    output: PathBuf,

    /// Tasks per array step [default: the settings' slurm.ranks, 4].
    #[arg(long, value_name = "N")]
    ranks: Option<usize>,

    /// Print the scripts instead of writing and submitting them.
    #[arg(long)]
    dry_run: bool,

    /// The sbatch program.
    #[arg(long, value_name = "PATH", default_value = "sbatch")]
    sbatch: PathBuf,

    /// The squeue program (asked whether the last submission's jobs are still queued).
    #[arg(long, value_name = "PATH", default_value = "squeue")]
    squeue: PathBuf,
}

#[derive(Args)]
struct LocalArgs {
    #[command(flatten)]
    plan: PlanArgs,

    /// Tasks running at once.
    #[arg(long, value_name = "N", default_value_t = 2)]
    processes: usize,
}

#[derive(Args)]
struct StatusArgs {
    /// The output folder of a submitted or local plan.
    #[arg(long, short, value_name = "DIR", default_value = "zhcorpus-out")]
    output: PathBuf,

    /// The squeue program (asked about the submitted jobs).
    #[arg(long, value_name = "PATH", default_value = "squeue")]
    squeue: PathBuf,
}

#[derive(Args)]
struct TaskArgs {
    /// The plan file (`DIR/plan.json`).
    #[arg(long, value_name = "FILE")]
    plan: PathBuf,

    /// The step: clean-count, clean-judge, dedup-sketch, dedup-pairs, dedup-sets,
    /// dedup-cluster, dedup-filter, tokenizer-count, tokenizer, encode, shards.
    #[arg(long, value_name = "STEP", value_parser = step)]
    step: Step,

    /// The task's rank [default: $SLURM_ARRAY_TASK_ID].
    #[arg(long, value_name = "R")]
    rank: Option<usize>,
}

fn step(name: &str) -> Result<Step, String> {
    Step::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

pub fn run(global: &Global, args: SlurmArgs) -> Result<()> {
    match args.command {
        SlurmCommand::Submit(a) => submit(a),
        SlurmCommand::Local(a) => local(global, a),
        SlurmCommand::Status(a) => status(a),
        SlurmCommand::Task(a) => task(global, a),
    }
}

fn plan(a: &PlanArgs) -> Result<Plan> {
    let config: Config =
        settings::resolve(&Config::default(), Some(&a.config), &Overrides::default())?;
    Ok(Plan::new(&config, &a.output, a.ranks)?)
}

/// The binary the tasks run: the settings' `slurm.binary`, else this one.
fn binary(plan: &Plan) -> Result<PathBuf> {
    match &plan.config.slurm.binary {
        Some(b) => Ok(b.clone()),
        None => std::env::current_exe().context("finding this program's path"),
    }
}

fn submit(a: PlanArgs) -> Result<()> {
    let plan = plan(&a)?;
    let bin = binary(&plan)?;
    if a.dry_run {
        for p in &plan.steps {
            outln!("# {}", plan.script(p.step).display());
            out!("{}", plan.sbatch_script(p.step, &bin));
            outln!();
        }
        return Ok(());
    }
    let jobs = plan.submit(&bin, &a.sbatch, &a.squeue)?;
    if jobs.is_empty() {
        outln!(
            "every step of {} is complete: nothing submitted",
            Plan::file(&plan.output).display()
        );
    }
    for (step, id) in &jobs {
        outln!(
            "{:<14} job {id} ({} task(s))",
            step.name(),
            plan.tasks(*step)
        );
    }
    outln!(
        "plan: {}; follow with `zhcorpus slurm status --output {}`",
        Plan::file(&plan.output).display(),
        a.output.display()
    );
    Ok(())
}

fn local(global: &Global, a: LocalArgs) -> Result<()> {
    let plan = plan(&a.plan)?;
    if a.plan.dry_run {
        anyhow::bail!(UsageError("--dry-run is for `slurm submit`".into()));
    }
    let bin = std::env::current_exe().context("finding this program's path")?;
    let threads = rayon::current_num_threads().div_ceil(a.processes.max(1));
    let status = plan.run_local(&bin, a.processes, threads, &Bar::new(global.quiet))?;
    for s in &status {
        outln!(
            "{:<14} {}/{} tasks complete",
            s.step.name(),
            s.done,
            s.tasks
        );
    }
    outln!(
        "kept documents: {}",
        plan.output.join("dedup").join("kept-*.jsonl.zst").display()
    );
    outln!("token shards: {}", plan.shards().display());
    Ok(())
}

fn status(a: StatusArgs) -> Result<()> {
    let plan = Plan::read(&a.output)?;
    // without squeue (or its controller) the markers alone are the state
    let queued = match plan.queued(&a.squeue) {
        Ok(q) => q,
        Err(e) => {
            outln!("the queue is unknown ({e}): the markers are the state");
            None
        }
    };
    let mut failed_any = false;
    let mut first_incomplete = true;
    for s in plan.status() {
        let state = if s.done == s.tasks {
            "complete"
        } else if s.failed.is_empty() {
            "waiting"
        } else {
            "FAILED"
        };
        outln!(
            "{:<14} {}/{} tasks complete  {state}",
            s.step.name(),
            s.done,
            s.tasks
        );
        let log = |rank: usize| {
            plan.output
                .join("logs")
                .join(format!("{}-{rank}.log", s.step.name()))
        };
        for (rank, why) in &s.failed {
            failed_any = true;
            outln!("  task {rank} failed: {why}");
            outln!("    log: {}", log(*rank).display());
        }
        // the first step not complete, with nothing of the submission left in the queue and
        // no failure written: its tasks were killed from outside (time limit, memory, node)
        if s.done < s.tasks && first_incomplete {
            first_incomplete = false;
            if s.failed.is_empty() && queued.as_ref().is_some_and(Vec::is_empty) {
                failed_any = true;
                let markers = plan.markers();
                for rank in (0..s.tasks).filter(|&r| !markers.is_done(s.step.name(), r)) {
                    outln!(
                        "  task {rank} not running: no marker, and no job of the last \
                         submission is in the queue (killed from outside: a time limit, memory, \
                         a lost node, scancel?)"
                    );
                    outln!("    log: {}", log(rank).display());
                }
            }
        }
    }
    match &queued {
        Some(q) if !q.is_empty() => {
            outln!("in the queue (job, name, state, reason):");
            for line in q {
                outln!("  {line}");
            }
        }
        Some(_) => outln!("no job of the last submission is in the queue"),
        None => {}
    }
    if failed_any {
        anyhow::bail!(UsageError(
            "a task failed or stopped: fix what it names, then submit again (complete tasks \
             are skipped)"
                .into()
        ));
    }
    Ok(())
}

fn task(global: &Global, a: TaskArgs) -> Result<()> {
    let output = a.plan.parent().unwrap_or(Path::new("."));
    let plan = Plan::read(output)?;
    let rank = match a.rank {
        Some(r) => r,
        None => {
            let id = std::env::var("SLURM_ARRAY_TASK_ID").map_err(|_| {
                UsageError("--rank: not given and SLURM_ARRAY_TASK_ID is not set".into())
            })?;
            id.parse()
                .map_err(|_| UsageError(format!("SLURM_ARRAY_TASK_ID={id}: not a rank")))?
        }
    };
    let started = std::time::Instant::now();
    match plan.run_task(a.step, rank, &Bar::new(global.quiet))? {
        TaskOutcome::Skipped => outln!("{} task {rank}: complete already, skipped", a.step.name()),
        TaskOutcome::Ran(r) => outln!(
            "{} task {rank}: done in {:.1} s: {r}",
            a.step.name(),
            started.elapsed().as_secs_f64()
        ),
    }
    Ok(())
}
