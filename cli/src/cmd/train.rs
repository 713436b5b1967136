use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use train::{RunConfig, StepMetrics};

use crate::Global;
use crate::cmd::extract::BadInput;

/// `zhcorpus train --data SHARDS --output RUN`
#[derive(Args)]
pub struct TrainArgs {
    /// The shard folder `zhcorpus tokenizer encode` wrote.
    #[arg(long, short, value_name = "DIR")]
    data: PathBuf,

    /// The run folder: config.json, metrics.jsonl, loss.png, checkpoint/, tokenizer.json.
    #[arg(long, short, value_name = "DIR")]
    output: PathBuf,

    /// Model and run preset: tiny (CPU tests), small, 124m (GPT-2 small's size).
    #[arg(long, default_value = "tiny", value_name = "NAME")]
    preset: String,

    /// A TOML file with any RunConfig fields (model, optim, seq_len, ...) over the preset;
    /// `--print-config` shows them all.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Continue the run in --output from its checkpoint (same settings), onto the same curve.
    #[arg(long)]
    resume: bool,

    /// Optimisation steps (the cosine schedule spans them).
    #[arg(long, value_name = "N")]
    max_steps: Option<u64>,

    /// Stop after this many training tokens (the schedule still spans --max-steps).
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,

    /// Stop after this many seconds, with a checkpoint.
    #[arg(long, value_name = "SECONDS")]
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
    #[arg(long, value_name = "LR")]
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
    #[arg(long, value_name = "FLOPS")]
    peak_flops: Option<f64>,

    /// Print the full configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
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

/// The device a `--device` value names; none: the first GPU of a CUDA build, else the CPU.
fn device(name: Option<&str>) -> Result<candle_core::Device> {
    use candle_core::Device;
    let cuda = |ordinal: usize| {
        Device::new_cuda(ordinal).map_err(|e| {
            BadInput(format!(
                "--device cuda:{ordinal}: {e} (CUDA needs a build with `--features cuda`)"
            ))
        })
    };
    Ok(match name {
        None if candle_core::utils::cuda_is_available() => cuda(0)?,
        None | Some("cpu") => Device::Cpu,
        Some("cuda") => cuda(0)?,
        Some(other) => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => cuda(n)?,
            _ => {
                return Err(
                    BadInput(format!("--device {other:?}: expected cpu, cuda or cuda:N")).into(),
                );
            }
        },
    })
}

pub fn run(global: &Global, args: TrainArgs) -> Result<()> {
    let manifest =
        corpus::shards::Manifest::read(&args.data).map_err(|e| BadInput(e.to_string()))?;
    let mut cfg = if args.resume && args.output.join("config.json").exists() {
        // a resumed run starts from its own settings (flags given must agree with them), but
        // not from the stopping rules of the session that stopped
        RunConfig {
            max_tokens: 0,
            max_time_s: 0.0,
            ..train::saved_config(&args.output).map_err(|e| BadInput(e.to_string()))?
        }
    } else {
        RunConfig::preset(&args.preset, manifest.vocab_size).ok_or_else(|| {
            BadInput(format!(
                "unknown preset {:?} (tiny, small, 124m)",
                args.preset
            ))
        })?
    };
    if let Some(path) = &args.config {
        let text = fs_err::read_to_string(path)?;
        let mut base = toml::Value::try_from(&cfg).context("the preset as TOML")?;
        let over: toml::Value =
            toml::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        merge(&mut base, over);
        cfg = base
            .try_into()
            .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    }
    if let Some(v) = args.max_steps {
        cfg.max_steps = v;
    }
    if let Some(v) = args.max_tokens {
        cfg.max_tokens = v;
    }
    if let Some(v) = args.max_time {
        cfg.max_time_s = v;
    }
    if let Some(v) = args.batch_size {
        cfg.batch_size = v;
    }
    if let Some(v) = args.seq_len {
        cfg.seq_len = v;
    }
    if let Some(v) = args.grad_accum {
        cfg.grad_accum = v.max(1);
    }
    if let Some(v) = args.lr {
        cfg.optim.lr = v;
        cfg.optim.min_lr = v / 10.0;
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    let device = device(args.device.as_deref())?;
    match args.precision.as_deref() {
        Some("bf16") => cfg.precision = train::Precision::Bf16,
        Some(_) => cfg.precision = train::Precision::F32,
        // a new run on a GPU computes in bf16; a resumed run keeps what it started with
        None if !args.resume && device.is_cuda() => cfg.precision = train::Precision::Bf16,
        None => {}
    }
    if args.print_config {
        print!("{}", toml::to_string(&cfg)?);
        return Ok(());
    }
    keep_freed_memory();
    let params = cfg.model.parameters();
    let flops = cfg.model.flops_per_token(cfg.seq_len);
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
    let bar = crate::progress::Steps::new(global.quiet, cfg.max_steps);
    let history = train::train(
        &args.data,
        &args.output,
        &cfg,
        args.resume,
        &device,
        |m: &StepMetrics| {
            let mfu = args
                .peak_flops
                .map(|p| format!(" MFU {:.1}%", 100.0 * m.tokens_per_s * flops / p))
                .unwrap_or_default();
            let val = m
                .val_loss
                .map(|v| format!(" val {v:.3}"))
                .unwrap_or_default();
            bar.step(
                m.step,
                &format!(
                    "loss {:.3}{val} {:.0} tok/s{mfu}{}",
                    m.loss,
                    m.tokens_per_s,
                    if m.skipped { " SKIPPED" } else { "" }
                ),
            );
        },
    )
    .map_err(|e| match e {
        train::TrainError::Data(d) => anyhow::Error::from(BadInput(d.to_string())),
        train::TrainError::Invalid(s) => BadInput(s).into(),
        other => other.into(),
    })?;
    bar.finish();
    let all = read_metrics(&args.output.join("metrics.jsonl"))?;
    crate::plot::loss_curve(&all, &args.output.join("loss.png"))?;
    let last = all.last();
    let tps = history.iter().map(|m| m.tokens_per_s).sum::<f64>() / history.len().max(1) as f64;
    let tps = if history.is_empty() {
        "nothing left to train".to_string()
    } else {
        format!("{tps:.0} tokens/s")
    };
    println!(
        "trained {} steps ({} this run) to loss {:.3}{}; {}; run folder {}",
        last.map_or(0, |m| m.step),
        history.len(),
        last.map_or(f64::NAN, |m| m.loss),
        all.iter()
            .rev()
            .find_map(|m| m.val_loss)
            .map(|v| format!(", validation loss {v:.3}"))
            .unwrap_or_default(),
        tps,
        args.output.display()
    );
    let skipped = all.iter().filter(|m| m.skipped).count();
    if skipped > 0 {
        println!("{skipped} steps skipped: their loss or gradient norm was not finite");
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

/// `over`'s keys replace `base`'s, tables merged recursively.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// `zhcorpus sample --checkpoint RUN --prompt "..."`
#[derive(Args)]
pub struct SampleArgs {
    /// The run folder `zhcorpus train` wrote.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,

    #[arg(long, default_value = "")]
    prompt: String,

    /// Tokens to generate.
    #[arg(long, default_value_t = 100, value_name = "N")]
    tokens: usize,

    /// 0 for greedy decoding.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,

    /// Sample among this many most likely tokens.
    #[arg(long, default_value_t = 50, value_name = "K")]
    top_k: usize,

    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Keep generating past `<|endoftext|>` (printed as such) instead of stopping there.
    #[arg(long)]
    ignore_eot: bool,
}

pub fn run_sample(_global: &Global, args: SampleArgs) -> Result<()> {
    let device = candle_core::Device::Cpu;
    let model = train::load_run(&args.checkpoint, &device).map_err(|e| match e {
        train::TrainError::Candle(c) => anyhow::Error::from(c),
        other => BadInput(other.to_string()).into(),
    })?;
    let tok_path = args.checkpoint.join("tokenizer.json");
    let (prompt, tok, eot) = if tok_path.exists() {
        let tok = tokenizer::hf::load(&tok_path).map_err(|e| BadInput(e.to_string()))?;
        let eot = tok.special(tokenizer::END_OF_TEXT).unwrap_or(0);
        let mut ids = vec![eot];
        ids.extend(tok.encode(&args.prompt));
        (ids, Some(tok), eot)
    } else {
        // a byte-level run: the prompt's bytes, after the end-of-text id 256
        let mut ids = vec![256];
        ids.extend(args.prompt.bytes().map(u32::from));
        (ids, None, 256)
    };
    let out = train::sample(
        &model,
        &prompt,
        args.tokens,
        args.temperature,
        args.top_k,
        args.seed,
        (!args.ignore_eot).then_some(eot),
    )?;
    let text = match &tok {
        Some(t) => t.decode(&out)?,
        None => String::from_utf8_lossy(
            &out.iter()
                .filter(|&&i| i < 256)
                .map(|&i| i as u8)
                .collect::<Vec<_>>(),
        )
        .into_owned(),
    };
    println!("{}{}", args.prompt, text);
    Ok(())
}

/// `zhcorpus hf-export --checkpoint RUN --output DIR`
#[derive(Args)]
pub struct ExportArgs {
    /// The run folder `zhcorpus train` wrote.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,

    /// The Hugging Face model folder to write.
    #[arg(long, short, value_name = "DIR")]
    output: PathBuf,
}

pub fn run_export(_global: &Global, args: ExportArgs) -> Result<()> {
    let tok_path = args.checkpoint.join("tokenizer.json");
    let eot = if tok_path.exists() {
        let tok = tokenizer::hf::load(&tok_path).map_err(|e| BadInput(e.to_string()))?;
        tok.special(tokenizer::END_OF_TEXT).unwrap_or(0)
    } else {
        256
    };
    train::export_hf(&args.checkpoint, &args.output, eot).map_err(|e| match e {
        train::TrainError::Candle(c) => anyhow::Error::from(c),
        other => BadInput(other.to_string()).into(),
    })?;
    println!(
        "wrote a Hugging Face Llama model folder to {} (config.json, model.safetensors{})",
        args.output.display(),
        if tok_path.exists() {
            ", tokenizer.json"
        } else {
            ""
        }
    );
    Ok(())
}
