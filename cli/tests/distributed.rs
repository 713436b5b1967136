//! `zhcorpus train --distributed` under a real `mpirun` (OpenMPI), two ranks oversubscribed on
//! whatever cores there are. Without `mpirun`, or with a binary built without the `mpi`
//! feature, these tests fail under `CI=true` and say they checked nothing elsewhere.
//!
//! Tolerance: two ranks compute each half of a micro-batch's mean loss and gradient, and MPI
//! sums the halves; one rank sums all rows at once. The f32 sums are the same numbers added in
//! another order, so they differ by a few units in the last place (relative 1e-7); AdamW's
//! update divides by the root of the second moment, which passes such differences through
//! without growing them much over 30 steps. Measured: under 1e-7 relative after 30 steps at a
//! learning rate of 3e-3 (the losses print it with --nocapture). The tests allow 1e-5 relative,
//! room for other CPUs' kernels and far below what a wrong split shows (a rank training on the
//! other's rows, or gradients summed without averaging, move the loss in the second or third
//! decimal within a few steps).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ok, run, stderr, write_jsonl};
use corpus::Document;

/// One MPI job at a time: two `mpirun`s started together by the test harness's threads on a
/// small machine starved each other (one made no progress for minutes).
static ONE_JOB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`ONE_JOB`] for the test (a failed test's poison is no concern of the next one).
fn one_job() -> std::sync::MutexGuard<'static, ()> {
    ONE_JOB.lock().unwrap_or_else(|e| e.into_inner())
}

/// `mpirun` on the PATH and a binary with MPI; `None` (with a note) outside CI when missing.
fn mpirun() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("mpirun"))
            .find(|p| p.is_file())
    });
    let Some(found) = found else {
        assert!(
            !ci,
            "no mpirun on the PATH: the data-parallel tests must run in CI; the README's test \
             command installs openmpi-bin"
        );
        eprintln!("no mpirun on the PATH: the data-parallel test checked nothing");
        return None;
    };
    let probe = common::zhcorpus()
        .args(["train", "--data", ".", "--output", ".", "--distributed"])
        .env_remove("OMPI_COMM_WORLD_RANK")
        .output()
        .unwrap();
    if stderr(&probe).contains("built without MPI") {
        assert!(
            !ci,
            "the binary was built without the `mpi` feature: the README's test command builds \
             it with --features zhcorpus/mpi"
        );
        eprintln!("zhcorpus built without MPI: the data-parallel test checked nothing");
        return None;
    }
    Some(found)
}

/// `mpirun` for `ranks` copies of `zhcorpus --threads 1 -q train ARGS`, as root where it runs
/// as root, oversubscribed, unbound.
fn mpi(mpirun: &Path, dir: &Path, ranks: usize, args: &[&str]) -> Command {
    let mut cmd = Command::new(mpirun);
    cmd.current_dir(dir)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env_remove("RUST_LOG")
        .args([
            "--oversubscribe",
            "--bind-to",
            "none",
            "-np",
            &ranks.to_string(),
        ])
        .arg(env!("CARGO_BIN_EXE_zhcorpus"))
        .args(["--threads", "1", "-q", "train", "--distributed"])
        .args(args);
    cmd
}

/// Shards of generated text in `dir/shards`.
fn shards(dir: &Path) {
    let mut rng = tests::Rng::new(7);
    let docs: Vec<Document> = (0..300)
        .map(|i| Document::new(format!("d{i}"), tests::generate_text(&mut rng, 120)))
        .collect();
    write_jsonl(&dir.join("in.jsonl"), &docs);
    ok(run(
        dir,
        &[
            "-q",
            "tokenizer",
            "train",
            "-i",
            "in.jsonl",
            "--vocab-size",
            "600",
            "-o",
            "tok/tokenizer.json",
        ],
    ));
    ok(run(
        dir,
        &[
            "-q",
            "tokenizer",
            "encode",
            "-t",
            "tok/tokenizer.json",
            "-i",
            "in.jsonl",
            "-o",
            "shards",
            "--val-fraction",
            "0.1",
        ],
    ));
}

/// (step, loss, grad_norm, validation loss or 0) of each line of a run's metrics.
type Point = (u64, f64, f64, f64);

fn curve(run: &Path) -> Vec<Point> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["step"].as_u64().unwrap(),
                v["loss"].as_f64().unwrap(),
                v["grad_norm"].as_f64().unwrap(),
                v["val_loss"].as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

#[track_caller]
fn same_curve(a: &[Point], b: &[Point], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: {a:?}\n{b:?}");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x.1 - y.1) / x.1).abs().max(((x.2 - y.2) / x.2).abs()))
        .fold(0f64, f64::max);
    eprintln!("{what}: largest relative difference {worst:.1e}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.0, y.0, "{what}");
        let close = |p: f64, q: f64| (p - q).abs() <= 1e-5 * p.abs().max(q.abs());
        assert!(
            close(x.1, y.1) && close(x.2, y.2) && close(x.3, y.3),
            "{what}: step {} differs: loss {} against {}, gradient norm {} against {}, \
             validation loss {} against {}",
            x.0,
            x.1,
            y.1,
            x.2,
            y.2,
            x.3,
            y.3
        );
    }
}

#[track_caller]
fn mpi_ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "mpirun exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        common::stdout(&o),
        stderr(&o)
    );
    common::stdout(&o)
}

#[test]
fn two_ranks_train_the_one_rank_curve() {
    let _one = one_job();
    let Some(mpirun) = mpirun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let base = ["--data", "shards", "--max-steps", "30", "--lr", "3e-3"];
    for (name, extra) in [
        ("plain", &[][..]),
        ("accumulated", &["--grad-accum", "2"][..]),
        ("zero1", &["--zero1"][..]),
    ] {
        let one = format!("one-{name}");
        let two = format!("two-{name}");
        let single_extra: Vec<&str> = extra.iter().copied().filter(|a| *a != "--zero1").collect();
        ok(run(
            d,
            &[
                &["--threads", "1", "-q", "train", "--output", &one][..],
                &base,
                &single_extra,
            ]
            .concat(),
        ));
        let out = mpi_ok(
            mpi(
                &mpirun,
                d,
                2,
                &[&["--output", &two][..], &base, extra].concat(),
            )
            .output()
            .unwrap(),
        );
        assert!(out.contains("trained 30 steps"), "{out}");
        assert!(out.contains("all-reduce"), "{out}");
        let (a, b) = (curve(&d.join(&one)), curve(&d.join(&two)));
        assert_eq!(a.len(), 30);
        // the loss moves: a curve that stands still would match anything
        assert!(a[29].1 < a[0].1 - 0.3, "{a:?}");
        // the last step is validated (on the ranks' shares of the validation batches)
        assert!(a[29].3 > 0.0 && b[29].3 > 0.0, "{a:?}");
        same_curve(&a, &b, name);
        // one run folder, written by rank 0 alone: one line per step
        let lines = std::fs::read_to_string(d.join(&two).join("metrics.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 30, "{lines}");
    }
    // ZeRO-1's checkpoint holds every parameter's moments, gathered from their owners: the
    // same file as without it
    let read = |run: &str| std::fs::read(d.join(run).join("checkpoint/optimizer.safetensors"));
    assert_eq!(read("two-zero1").unwrap(), read("two-plain").unwrap());
}

#[test]
fn a_killed_rank_stops_the_job_and_the_run_resumes_on_its_curve() {
    let _one = one_job();
    let Some(mpirun) = mpirun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    std::fs::write(d.join("run.toml"), "checkpoint_every = 10\n").unwrap();
    let long = [
        "--data",
        "shards",
        "--max-steps",
        "100000",
        "--config",
        "run.toml",
    ];
    // with ZeRO-1: the checkpoint gathers the moments from their owners, the resume sends
    // them back out
    let mut job = mpi(
        &mpirun,
        d,
        2,
        &[&["--output", "run", "--zero1"][..], &long].concat(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // past the second checkpoint, rank 1 is killed
    wait_steps(&d.join("run"), 25, &mut job);
    let rank1 = rank_pid(1).expect("rank 1 runs");
    let killed = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-9", &rank1.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_bounded(&mut job, Duration::from_secs(60));
    let said = {
        let mut s = String::new();
        use std::io::Read;
        job.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        s
    };
    assert!(
        !status.success(),
        "the job went on without rank 1: {status:?}\n{said}"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(60),
        "the job took {:?} to stop",
        killed.elapsed()
    );
    assert!(
        said.contains("rank 1") && said.contains("exited on signal 9"),
        "no word of the killed rank:\n{said}"
    );
    // the last checkpoint, then 10 steps more: the curve of an uninterrupted run
    let done = std::fs::read_to_string(d.join("run/checkpoint/state.json")).unwrap();
    let step = serde_json::from_str::<serde_json::Value>(&done).unwrap()["step"]
        .as_u64()
        .unwrap();
    assert!(step >= 20 && step.is_multiple_of(10), "{done}");
    let tokens_per_step = 8 * 64;
    let upto = ((step + 10) * tokens_per_step).to_string();
    copy_dir(&d.join("run"), &d.join("run-one"));
    mpi_ok(
        mpi(
            &mpirun,
            d,
            2,
            &[
                &[
                    "--output",
                    "run",
                    "--resume",
                    "--zero1",
                    "--max-tokens",
                    &upto,
                ][..],
                &long,
            ]
            .concat(),
        )
        .output()
        .unwrap(),
    );
    ok(run(
        d,
        &[
            &["-q", "train", "--output", "whole", "--max-tokens", &upto][..],
            &long,
        ]
        .concat(),
    ));
    let whole = curve(&d.join("whole"));
    let resumed = curve(&d.join("run"));
    assert_eq!(resumed.len() as u64, step + 10, "{resumed:?}");
    same_curve(&whole, &resumed, "resumed on two ranks");
    // the batch schedule is global: the same checkpoint resumes on one rank too
    ok(run(
        d,
        &[
            &[
                "--threads",
                "1",
                "-q",
                "train",
                "--output",
                "run-one",
                "--resume",
                "--max-tokens",
                &upto,
            ][..],
            &long,
        ]
        .concat(),
    ));
    same_curve(&whole, &curve(&d.join("run-one")), "resumed on one rank");
}

/// A rank that stops answering (SIGSTOP) makes the others give up after --collective-timeout
/// with an error naming the operation, instead of waiting forever.
#[test]
fn a_hung_rank_times_out_the_others() {
    let _one = one_job();
    let Some(mpirun) = mpirun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let mut job = mpi(
        &mpirun,
        d,
        2,
        &[
            "--data",
            "shards",
            "--output",
            "run",
            "--max-steps",
            "100000",
            "--collective-timeout",
            "3",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_steps(&d.join("run"), 5, &mut job);
    let rank1 = rank_pid(1).expect("rank 1 runs");
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-STOP", &rank1.to_string()])
        .status()
        .unwrap();
    let status = wait_bounded(&mut job, Duration::from_secs(60));
    // whatever happened, nothing of the job stays behind
    let _ = Command::new("kill")
        .args(["-9", &rank1.to_string()])
        .status();
    let mut said = String::new();
    use std::io::Read;
    job.stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert!(!status.success(), "{said}");
    assert!(
        said.contains("waited 3 s for the other ranks"),
        "no timeout error:\n{said}"
    );
    let waited = stopped.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(30),
        "stopped after {waited:?}"
    );
}

/// Ctrl-C to `mpirun` reaches every rank: all stop after the same step and rank 0's checkpoint
/// holds every step the metrics show.
#[test]
fn a_signal_stops_every_rank_after_the_same_step_with_a_checkpoint() {
    let _one = one_job();
    let Some(mpirun) = mpirun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let mut job = mpi(
        &mpirun,
        d,
        2,
        &[
            "--data",
            "shards",
            "--output",
            "run",
            "--max-steps",
            "100000",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_steps(&d.join("run"), 20, &mut job);
    Command::new("kill")
        .args(["-INT", &job.id().to_string()])
        .status()
        .unwrap();
    let status = wait_bounded(&mut job, Duration::from_secs(60));
    assert!(!status.success(), "a stopped run is not a finished one");
    let state = std::fs::read_to_string(d.join("run/checkpoint/state.json")).unwrap();
    let step = serde_json::from_str::<serde_json::Value>(&state).unwrap()["step"]
        .as_u64()
        .unwrap();
    let logged = curve(&d.join("run"));
    assert!(step >= 20, "{state}");
    assert_eq!(
        logged.last().map(|p| p.0),
        Some(step),
        "the checkpoint is not the last step logged"
    );
}

#[test]
fn ranks_with_other_settings_or_no_distributed_flag_are_refused() {
    let _one = one_job();
    let Some(mpirun) = mpirun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    // MPMD: rank 1 has another seed
    let bin = env!("CARGO_BIN_EXE_zhcorpus");
    let rank = |seed: &'static str| {
        [
            "-np",
            "1",
            bin,
            "-q",
            "train",
            "--distributed",
            "--data",
            "shards",
            "--output",
            "run",
            "--max-steps",
            "5",
            "--seed",
            seed,
        ]
    };
    let o = Command::new(&mpirun)
        .current_dir(d)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(["--oversubscribe", "--bind-to", "none"])
        .args(rank("1"))
        .arg(":")
        .args(rank("2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("rank 1 was started with other settings"),
        "{}",
        stderr(&o)
    );
    // nothing was trained
    assert!(!d.join("run/metrics.jsonl").exists() || curve_len(&d.join("run")) == 0);

    // a global batch that does not split evenly
    let o = mpi(
        &mpirun,
        d,
        2,
        &[
            "--data",
            "shards",
            "--output",
            "odd",
            "--batch-size",
            "5",
            "--max-steps",
            "2",
        ],
    )
    .output()
    .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("do not divide among 2 ranks"),
        "{}",
        stderr(&o)
    );

    // started by a launcher as the second of two ranks, without --distributed (rank 0 alone
    // may be a batch script's shell, which sbatch gives SLURM_PROCID=0)
    let o = common::zhcorpus()
        .current_dir(d)
        .env("SLURM_PROCID", "1")
        .env("SLURM_NTASKS", "2")
        .args([
            "train",
            "--data",
            "shards",
            "--output",
            "alone",
            "--max-steps",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("rank 1 of 2"), "{}", stderr(&o));
    assert!(!d.join("alone").exists());
}

/// Waits until `run` has logged `steps` steps (two minutes at most; the job still runs).
fn wait_steps(run: &Path, steps: usize, job: &mut std::process::Child) {
    let began = Instant::now();
    while curve_len(run) < steps {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "no progress: {:?}",
            job.try_wait()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn curve_len(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The pid of the zhcorpus process that MPI started as `rank` (read from its environment).
fn rank_pid(rank: usize) -> Option<u32> {
    let bin = std::fs::canonicalize(env!("CARGO_BIN_EXE_zhcorpus")).ok()?;
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let exe = std::fs::read_link(e.path().join("exe")).ok()?;
        if exe != bin {
            return None;
        }
        let env = std::fs::read(e.path().join("environ")).ok()?;
        env.split(|&b| b == 0)
            .any(|v| v == want.as_bytes())
            .then_some(pid)
    })
}

/// Waits for `child` at most `limit`; kills it (and fails) past that.
fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            panic!("the job still ran {limit:?} after one of its ranks was gone: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
