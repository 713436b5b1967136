use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use train::{RunConfig, StepMetrics};

use crate::Global;
use crate::error::{Interrupted, UsageError};
use crate::progress::Bar;
use crate::settings::{self, Overrides};

/// `zhcorpus train --data SHARDS --output RUN`
#[derive(Args)]
pub struct TrainArgs {
    /// The shard folder `zhcorpus tokenizer encode` wrote (its vocabulary sizes the model).
    #[arg(
        long,
        short,
        value_name = "DIR",
        required_unless_present = "print_config"
    )]
    data: Option<PathBuf>,

    /// The run folder: config.json, metrics.jsonl, loss.png, checkpoint/, tokenizer.json.
    #[arg(
        long,
        short,
        value_name = "DIR",
        required_unless_present = "print_config"
    )]
    output: Option<PathBuf>,

    /// Model and run preset: tiny (CPU tests), small, 124m (GPT-2 small's size).
    #[arg(long, default_value = "tiny", value_name = "NAME")]
    preset: String,

    /// A TOML file with any run settings (model, optim, seq_len, ...) over the preset; flags
    /// override it; `--print-config` shows them all.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Continue the run in --output from its checkpoint (same settings), onto the same curve.
    /// A larger --max-steps extends it: the learning rate decays from where it stands to the
    /// new end (see docs/train.md).
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,

    /// Replace the run --output holds (without it, a folder with a run is refused).
    #[arg(long)]
    overwrite: bool,

    /// Optimisation steps (the cosine schedule spans them).
    #[arg(long, value_name = "N")]
    max_steps: Option<u64>,

    /// Stop after this many training tokens (the schedule still spans --max-steps).
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,

    /// Stop after this many seconds, with a checkpoint.
    #[arg(allow_negative_numbers = true, long, value_name = "SECONDS")]
    max_time: Option<f64>,

    /// Sequences per micro-batch (preset: 8 for tiny, 16 otherwise).
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,

    /// Tokens per sequence, T (preset: 64 for tiny, the model's longest otherwise).
    #[arg(long, value_name = "N")]
    seq_len: Option<usize>,

    /// Micro-batches per optimisation step.
    #[arg(long, value_name = "N")]
    grad_accum: Option<usize>,

    /// Peak learning rate.
    #[arg(allow_negative_numbers = true, long, value_name = "LR")]
    lr: Option<f64>,

    /// Seed of the initial weights and of the batch order (preset: 1).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Where to train: cpu, cuda or cuda:N (default: cuda:0 in a build with the `cuda` feature
    /// that finds a GPU, else cpu).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,

    /// What the forward pass computes in: f32, or bf16 with f32 master weights (default: bf16
    /// on a GPU, f32 on the CPU, where bf16 has no fast products).
    #[arg(long, value_name = "TYPE", value_parser = ["f32", "bf16"])]
    precision: Option<String>,

    /// The device's peak FLOP/s, for MFU (default: none on CPU, so no MFU is shown).
    #[arg(allow_negative_numbers = true, long, value_name = "FLOPS")]
    peak_flops: Option<f64>,

    /// Print the full configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,

    /// Data-parallel training: this process is one rank of a job started by `mpirun -np N` or
    /// `srun` (needs a build with `--features mpi`). Every rank is given the same command line;
    /// the global batch (--batch-size) is split among them, and only rank 0 writes the run
    /// folder. See docs/train.md.
    #[arg(long)]
    distributed: bool,

    /// With --distributed: the longest one collective waits for the other ranks before the
    /// job is aborted (a rank died or hangs).
    #[arg(
        long,
        default_value_t = 600.0,
        value_name = "SECONDS",
        requires = "distributed"
    )]
    collective_timeout: f64,

    /// With --distributed: gradients are all-reduced in buckets of this many MiB (PyTorch
    /// DDP's default, 25).
    #[arg(
        long,
        default_value_t = 25,
        value_name = "MIB",
        requires = "distributed"
    )]
    bucket_mib: usize,

    /// With --distributed: ZeRO stage 1, each rank keeps the AdamW moments of its share of
    /// the parameters (memory for the moments divided by the ranks; one broadcast per rank
    /// and step more).
    #[arg(long, requires = "distributed")]
    zero1: bool,

    /// With --distributed: the ranks compare a checksum of their weights every N steps (0:
    /// only at the start and at checkpoints).
    #[arg(long, default_value_t = 1, value_name = "N", requires = "distributed")]
    verify_every: u64,
}

/// The collectives of this process: MPI's with --distributed, none otherwise. A process that a
/// launcher started as one of several ranks without --distributed is refused: each would write
/// the same run folder.
fn collective(args: &TrainArgs) -> Result<Box<dyn train::Collective>> {
    let launched = train::dist::launcher_rank(|name| std::env::var(name).ok());
    if !args.distributed {
        // rank 0 alone may be a batch script's own shell (sbatch sets SLURM_PROCID=0 and
        // SLURM_NTASKS there): only the other ranks are sure to be copies
        if let Some((rank, world)) = launched.filter(|&(r, n)| n > 1 && r > 0) {
            return Err(UsageError(format!(
                "this process is rank {rank} of {world} (started by mpirun or srun) but has no \
                 --distributed: each rank would train alone into the same run folder"
            ))
            .into());
        }
        return Ok(Box::new(train::Single));
    }
    if !(args.collective_timeout > 0.0 && args.collective_timeout.is_finite()) {
        return Err(
            UsageError("--collective-timeout: must be a number of seconds above 0".into()).into(),
        );
    }
    #[cfg(feature = "mpi")]
    {
        use train::Collective;
        let timeout = std::time::Duration::from_secs_f64(args.collective_timeout);
        let comm = train::dist::Mpi::init(timeout).map_err(train::TrainError::from)?;
        if let Some((rank, world)) = launched
            && (rank, world) != (comm.rank(), comm.world())
        {
            return Err(UsageError(format!(
                "the launcher says rank {rank} of {world}, MPI says {} of {}: was this binary \
                 built against another MPI than the one that started it?",
                comm.rank(),
                comm.world()
            ))
            .into());
        }
        Ok(Box::new(comm))
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = launched;
        Err(UsageError(
            "--distributed: this zhcorpus was built without MPI; build it with \
             `cargo build --release -p zhcorpus --features mpi` (needs libopenmpi-dev)"
                .into(),
        )
        .into())
    }
}

/// glibc serves allocations over 32 MiB with their own `mmap` and returns them on free, and
/// trims the heap's free top: each training step's logits, gradients and activations then
/// fault in fresh zeroed pages (15% of a CPU step in a profile, 13% more tokens/s without).
/// Serve every allocation from the heap and keep freed memory for the next step.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt changes allocator parameters under the allocator's own lock; any value is
    // valid (a refused one leaves the default).
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// The device a `--device` value names; none: a GPU in a CUDA build (the first, or in a
/// data-parallel run the one of this rank's index on its node), else the CPU.
fn device(name: Option<&str>, distributed: bool) -> Result<candle_core::Device> {
    use candle_core::Device;
    // mpirun and srun number the ranks of each node from 0
    let local = || {
        [
            "OMPI_COMM_WORLD_LOCAL_RANK",
            "SLURM_LOCALID",
            "MPI_LOCALRANKID",
        ]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok())
        .unwrap_or(0)
    };
    let first = if distributed { local() } else { 0 };
    let cuda = |ordinal: usize| {
        Device::new_cuda(ordinal).map_err(|e| {
            UsageError(format!(
                "--device cuda:{ordinal}: {e} (CUDA needs a build with `--features cuda`)"
            ))
        })
    };
    Ok(match name {
        None if candle_core::utils::cuda_is_available() => cuda(first)?,
        None | Some("cpu") => Device::Cpu,
        Some("cuda") => cuda(first)?,
        Some(other) => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => cuda(n)?,
            _ => {
                return Err(UsageError(format!(
                    "--device {other:?}: expected cpu, cuda or cuda:N"
                ))
                .into());
            }
        },
    })
}

pub fn run(global: &Global, args: TrainArgs) -> Result<()> {
    let comm = if args.print_config {
        Box::new(train::Single)
    } else {
        collective(&args)?
    };
    if comm.world() == 1 {
        return run_rank(global, args, comm.as_ref());
    }
    let rank = comm.rank();
    match run_rank(global, args, comm.as_ref()) {
        Ok(()) => Ok(()),
        // stopped by a signal: every rank stopped after the same step, rank 0 wrote the
        // checkpoint, and each exits 130 on its own
        Err(err) if crate::error::status(&err) == 130 => Err(err),
        Err(err) => {
            // the other ranks may be waiting in a collective for this one: the error is
            // printed, then the whole job is stopped with its status
            let err = err.context(format!("rank {rank} of {}", comm.world()));
            let status = crate::error::status(&err);
            crate::error::report(&err);
            std::thread::sleep(std::time::Duration::from_millis(500));
            comm.abort(i32::from(status))
        }
    }
}

fn run_rank(global: &Global, args: TrainArgs, comm: &dyn train::Collective) -> Result<()> {
    let lead = comm.rank() == 0;
    // without shards (only --print-config), the preset for the default vocabulary
    let vocab = match &args.data {
        Some(data) => {
            corpus::shards::Manifest::read(data)
                .map_err(|e| train::TrainError::Data(e.into()))?
                .vocab_size
        }
        None => RunConfig::default().model.vocab_size,
    };
    let output = args.output.clone().unwrap_or_default();
    let base = if args.resume && output.join("config.json").exists() {
        // a resumed run starts from its own settings (flags given must agree with them), but
        // not from the stopping rules of the session that stopped
        RunConfig {
            max_tokens: 0,
            max_time_s: 0.0,
            ..train::saved_config(&output)?
        }
    } else {
        RunConfig::preset(&args.preset, vocab).ok_or_else(|| {
            UsageError(format!(
                "unknown preset {:?} (tiny, small, 124m)",
                args.preset
            ))
        })?
    };
    let device = device(args.device.as_deref(), comm.world() > 1)?;
    if device.is_cpu() {
        tracing::info!(
            "CPU matrix kernels: {}, fused kernels: {} (chosen at run time); elementwise pool: {} threads",
            train::cpu_kernels(),
            train::ops::simd().name(),
            candle_core::utils::barrier_pool().n_workers() + 1
        );
    }
    let precision = match args.precision.as_deref() {
        Some("bf16") => Some(train::Precision::Bf16),
        Some(_) => Some(train::Precision::F32),
        None => None,
    };
    let mut base = base;
    // a new run on a GPU computes in bf16 unless the file or a flag says otherwise; a resumed
    // run keeps what it started with
    if !args.resume && device.is_cuda() {
        base.precision = train::Precision::Bf16;
    }
    // --lr also sets min_lr to a tenth of it, unless the file sets min_lr
    let file_min_lr = match &args.config {
        Some(path) => settings::read_file::<RunConfig>(path)?
            .get("optim")
            .and_then(|o| o.get("min_lr"))
            .is_some(),
        None => false,
    };
    let mut flags = Overrides::default();
    flags
        .set("max_steps", args.max_steps)
        .set("max_tokens", args.max_tokens)
        .set("max_time_s", args.max_time)
        .set("batch_size", args.batch_size)
        .set("seq_len", args.seq_len)
        .set("grad_accum", args.grad_accum)
        .set("optim.lr", args.lr)
        .set(
            "optim.min_lr",
            args.lr.filter(|_| !file_min_lr).map(|v| v / 10.0),
        )
        .set("seed", args.seed)
        .set("precision", precision);
    let cfg: RunConfig = settings::resolve(&base, args.config.as_deref(), &flags)?;
    if args.print_config {
        return settings::print(&cfg);
    }
    let Some(data) = args.data.clone() else {
        unreachable!("clap requires --data without --print-config")
    };
    for w in cfg.warnings().iter().filter(|_| lead) {
        tracing::warn!("{w}");
    }
    if args.overwrite && lead {
        // the shards are checked before the old run goes
        train::Loader::open(&data, corpus::shards::Split::Train, cfg.seq_len + 1)
            .map_err(train::TrainError::from)?;
        for name in [
            "config.json",
            "metrics.jsonl",
            "loss.png",
            "tokenizer.json",
            "checkpoint",
            "checkpoint.old",
        ] {
            let path = output.join(name);
            if path.is_dir() {
                fs_err::remove_dir_all(&path)?;
            } else if path.exists() {
                fs_err::remove_file(&path)?;
            }
        }
    }
    keep_freed_memory();
    let params = cfg.model.parameters();
    let flops = cfg.model.flops_per_token(cfg.seq_len);
    if comm.world() > 1 && lead {
        eprintln!(
            "data-parallel: {} ranks, {} sequences each per micro-batch{}",
            comm.world(),
            cfg.batch_size / comm.world().max(1),
            if args.zero1 { ", ZeRO-1" } else { "" }
        );
    }
    if lead {
        eprintln!(
            "model: {} layers, d_model {}, {} heads, {:.2}M parameters; {} tokens per step; {} {}",
            cfg.model.n_layer,
            cfg.model.d_model,
            cfg.model.n_head,
            params as f64 / 1e6,
            cfg.tokens_per_step(),
            if device.is_cuda() { "CUDA" } else { "CPU" },
            match cfg.precision {
                train::Precision::F32 => "f32",
                train::Precision::Bf16 => "bf16",
            },
        );
    }
    let opts = train::DistOptions {
        bucket_bytes: args.bucket_mib.max(1) << 20,
        zero1: args.zero1,
        verify_every: args.verify_every,
    };
    let history = train::train_with(
        &data,
        &output,
        &cfg,
        args.resume,
        &device,
        &Bar::new(global.quiet || !lead),
        comm,
        &opts,
    )?;
    if !lead {
        if crate::cmd::signals::cancelled() {
            return Err(
                Interrupted("stopped by a signal; rank 0 wrote the checkpoint".into()).into(),
            );
        }
        return Ok(());
    }
    let all = read_metrics(&output.join("metrics.jsonl"))?;
    crate::plot::loss_curve(&all, &output.join("loss.png"))?;
    let last = all.last();
    let tps = history.iter().map(|m| m.tokens_per_s).sum::<f64>() / history.len().max(1) as f64;
    let rate = if history.is_empty() {
        "nothing left to train".to_string()
    } else {
        let mfu = args
            .peak_flops
            .map(|p| format!(", MFU {:.1}%", 100.0 * tps * flops / p))
            .unwrap_or_default();
        let comm_share = {
            let (mut comm_s, mut step_s) = (0.0, 0.0);
            for m in &history {
                comm_s += m.allreduce_s.unwrap_or(0.0);
                step_s += cfg.tokens_per_step() as f64 / m.tokens_per_s.max(1e-9);
            }
            if comm_s > 0.0 {
                format!(", all-reduce {:.1}% of a step", 100.0 * comm_s / step_s)
            } else {
                String::new()
            }
        };
        format!("{tps:.0} tokens/s{mfu}{comm_share}")
    };
    outln!(
        "trained {} steps ({} this run) to loss {:.3}{}; {}; run folder {}",
        last.map_or(0, |m| m.step),
        history.len(),
        last.map_or(f64::NAN, |m| m.loss),
        all.iter()
            .rev()
            .find_map(|m| m.val_loss)
            .map(|v| format!(", validation loss {v:.3}"))
            .unwrap_or_default(),
        rate,
        output.display()
    );
    let skipped = all.iter().filter(|m| m.skipped).count();
    if skipped > 0 {
        outln!("{skipped} steps skipped: their loss or gradient norm was not finite");
    }
    if crate::cmd::signals::cancelled() {
        return Err(Interrupted(format!(
            "stopped by a signal after step {}, checkpoint written: add --resume to go on",
            last.map_or(0, |m| m.step)
        ))
        .into());
    }
    Ok(())
}

pub fn read_metrics(path: &std::path::Path) -> Result<Vec<StepMetrics>> {
    let text = fs_err::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// `zhcorpus sample --checkpoint RUN --prompt "..."`
#[derive(Args)]
pub struct SampleArgs {
    /// The run folder `zhcorpus train` wrote (or its checkpoint folder).
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,

    /// The text to continue.
    #[arg(long, default_value = "")]
    prompt: String,

    /// Tokens to generate.
    #[arg(long, default_value_t = 100, value_name = "N")]
    tokens: usize,

    /// 0 for greedy decoding.
    #[arg(allow_negative_numbers = true, long, default_value_t = 0.8)]
    temperature: f64,

    /// Sample among this many most likely tokens (0: all of them, as Hugging Face's top_k=0).
    #[arg(long, default_value_t = 50, value_name = "K")]
    top_k: usize,

    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Keep generating past `<|endoftext|>` (printed as such) instead of stopping there.
    #[arg(long)]
    ignore_eot: bool,
}

pub fn run_sample(_global: &Global, args: SampleArgs) -> Result<()> {
    use std::io::Write;
    let device = candle_core::Device::Cpu;
    let run = run_folder(&args.checkpoint);
    let model = train::load_run(&run, &device)?;
    let encoder = tokenizer::Encoder::for_folder(&run)?;
    let prompt = encoder.prompt(&args.prompt)?;
    let eot = encoder.end_of_text()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write!(out, "{}", args.prompt)?;
    out.flush()?;
    // tokens are printed as they are drawn; bytes of a character cut between two tokens wait
    // for the rest of it
    let mut drawn: Vec<u32> = Vec::new();
    let mut printed = 0usize;
    let mut failure: Option<std::io::Error> = None;
    let mut print = |ids: &[u32], last: bool| {
        let Ok(bytes) = encoder.decode_bytes(ids) else {
            return;
        };
        let rest = &bytes[printed.min(bytes.len())..];
        let upto = match std::str::from_utf8(rest) {
            Ok(_) => rest.len(),
            Err(e) if last || e.error_len().is_some() => rest.len(),
            Err(e) => e.valid_up_to(),
        };
        let text = String::from_utf8_lossy(&rest[..upto]);
        if let Err(e) = write!(out, "{text}").and_then(|()| out.flush()) {
            failure.get_or_insert(e);
        }
        printed += upto;
    };
    train::sample(
        &model,
        &prompt,
        args.tokens,
        args.temperature,
        args.top_k,
        args.seed,
        (!args.ignore_eot).then_some(eot),
        |id| {
            drawn.push(id);
            print(&drawn, false);
        },
    )?;
    print(&drawn, true);
    if let Some(e) = failure {
        return Err(e.into());
    }
    writeln!(std::io::stdout())?;
    Ok(())
}

/// The run folder a `--checkpoint` names: the run folder itself, or its `checkpoint/`.
fn run_folder(path: &std::path::Path) -> PathBuf {
    if !path.join("config.json").exists()
        && path.join("state.json").exists()
        && let Some(parent) = path.parent()
    {
        return parent.to_path_buf();
    }
    path.to_path_buf()
}

/// `zhcorpus hf-export --checkpoint RUN --output DIR`
#[derive(Args)]
pub struct ExportArgs {
    /// The run folder `zhcorpus train` wrote (or its checkpoint folder).
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,

    /// The Hugging Face model folder to write.
    #[arg(long, short, value_name = "DIR")]
    output: PathBuf,
}

pub fn run_export(_global: &Global, args: ExportArgs) -> Result<()> {
    let run = run_folder(&args.checkpoint);
    let encoder = tokenizer::Encoder::for_folder(&run)?;
    train::export_hf(&run, &args.output, encoder.end_of_text()?)?;
    outln!(
        "wrote a Hugging Face Llama model folder to {} (config.json, model.safetensors{})",
        args.output.display(),
        if matches!(encoder, tokenizer::Encoder::Bpe(_)) {
            ", tokenizer.json"
        } else {
            ""
        }
    );
    Ok(())
}
