//! The batch stages split over ranks (`zhcorpus slurm`): run by the local executor and as real
//! Slurm job arrays, their results are those of one machine, byte for byte: the kept
//! documents, the tokenizer and the token shards. A cancelled task is rerun alone; a failed one
//! stops the steps after it and `slurm status` names it and why.
//!
//! The Slurm tests start their own one-node cluster (munged on its own socket, slurmctld and
//! slurmd on free loopback ports, every file in a temporary folder) and stop it by its pid
//! files. They need Slurm and munge installed and root (slurmd runs the jobs): missing, that
//! is a failure under `CI=true` (the README's test command installs `slurm-wlm` and `munge`)
//! and a note that nothing was checked elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use common::{ok, run, stderr, stdout, write_jsonl};
use corpus::Document;

/// One cluster at a time: both Slurm tests run on this machine's one node name.
static SLURM: Mutex<()> = Mutex::new(());

/// Documents over `files` files (`big` of them, in the middle of the sorted list, ten times
/// larger, so that one rank's tasks take seconds): hosts with a recurring footer, exact copies
/// and near copies across files.
fn corpus(dir: &Path, files: usize, big: &[usize]) -> Vec<PathBuf> {
    let mut rng = tests::Rng::new(3);
    let mut all: Vec<Document> = Vec::new();
    let mut paths = Vec::new();
    for f in 0..files {
        let n = if big.contains(&f) { 2500 } else { 250 };
        let mut docs = Vec::new();
        for _ in 0..n {
            let i = all.len();
            let host = format!("site{}.example.cn", i % 9);
            let mut paras: Vec<String> = Vec::new();
            for _ in 0..3 {
                let len = 50 + rng.below(80);
                paras.push(tests::generate_text(&mut rng, len));
            }
            if i.is_multiple_of(4) {
                paras.push(format!(
                    "{host}版权所有，未经书面许可不得转载或镜像本站内容"
                ));
            }
            let mut text = paras.join("\n");
            if i > 200 && i.is_multiple_of(13) {
                text = all[i % 200].text.clone();
            } else if i > 200 && i.is_multiple_of(17) {
                let mut chars: Vec<char> = all[i % 190].text.chars().collect();
                let at = chars.len() / 2;
                chars[at] = '改';
                text = chars.into_iter().collect();
            }
            let mut d = Document::new(format!("doc-{i:06}"), text);
            d.source = Some(host);
            all.push(d.clone());
            docs.push(d);
        }
        let path = dir.join(format!("part-{f:02}.jsonl"));
        write_jsonl(&path, &docs);
        paths.push(path);
    }
    paths
}

/// The settings of a split run over `inputs`.
fn settings(dir: &Path, inputs: &[PathBuf], slurm: &str) -> PathBuf {
    let list: Vec<String> = inputs
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let text = format!(
        "inputs = [{}]\n[tokenizer]\nvocab_size = 600\n[encode]\nshard_tokens = 50000\n\
         [slurm]\nranks = 4\n{slurm}\n",
        list.join(", ")
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What one machine makes of `inputs`: clean, dedup, tokenizer train, encode, file to file.
fn one_machine(dir: &Path, inputs: &[PathBuf]) -> PathBuf {
    let out = dir.join("one");
    std::fs::create_dir_all(&out).unwrap();
    let mut sorted = inputs.to_vec();
    sorted.sort();
    let mut args: Vec<String> = vec!["-q".into(), "clean".into(), "-i".into()];
    args.extend(sorted.iter().map(|p| p.display().to_string()));
    args.extend(["-o".into(), "one/clean.jsonl".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(run(dir, &args));
    ok(run(
        dir,
        &[
            "-q",
            "dedup",
            "-i",
            "one/clean.jsonl",
            "-o",
            "one/kept.jsonl",
        ],
    ));
    ok(run(
        dir,
        &[
            "-q",
            "tokenizer",
            "train",
            "-i",
            "one/kept.jsonl",
            "-o",
            "one/tokenizer/tokenizer.json",
            "--vocab-size",
            "600",
        ],
    ));
    ok(run(
        dir,
        &[
            "-q",
            "tokenizer",
            "encode",
            "-i",
            "one/kept.jsonl",
            "-t",
            "one/tokenizer/tokenizer.json",
            "-o",
            "one/shards",
            "--shard-tokens",
            "50000",
        ],
    ));
    out
}

/// The documents of JSONL(.zst) files, in order, as their lines.
fn lines(files: &[PathBuf]) -> Vec<String> {
    corpus::read_all(files)
        .map(|d| serde_json::to_string(&d.unwrap()).unwrap())
        .collect()
}

/// Every file under `dir`, by its path from `dir`, with its bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// The split run in `out` made what one machine made in `one`, byte for byte.
#[track_caller]
fn assert_same_as_one_machine(out: &Path, one: &Path) {
    let kept: Vec<PathBuf> = (0..4)
        .map(|r| out.join(format!("dedup/kept-{r:05}.jsonl.zst")))
        .collect();
    let split = lines(&kept);
    let single = lines(&[one.join("kept.jsonl")]);
    assert!(single.len() > 1000, "{} documents kept", single.len());
    assert_eq!(split.len(), single.len(), "documents kept");
    assert!(
        split == single,
        "the kept documents differ from one machine's"
    );
    assert_eq!(
        std::fs::read(out.join("tokenizer/tokenizer.json")).unwrap(),
        std::fs::read(one.join("tokenizer/tokenizer.json")).unwrap(),
        "tokenizer.json"
    );
    // and the one store the ranks' stores were merged into holds them, in the same order
    let store = corpus::Store::open_existing(out.join("corpus.db")).unwrap();
    let stored: Vec<(String, String)> = store
        .documents(corpus::Selection::All)
        .map(|d| {
            let d = d.unwrap().doc;
            (d.id, d.text)
        })
        .collect();
    let kept: Vec<(String, String)> = corpus::read_all(&[one.join("kept.jsonl")])
        .map(|d| {
            let d = d.unwrap();
            (d.id, d.text)
        })
        .collect();
    assert!(stored == kept, "corpus.db differs from the kept documents");
    let (a, b) = (tree(&out.join("shards")), tree(&one.join("shards")));
    let names = |t: &[(PathBuf, Vec<u8>)]| t.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "shard files");
    assert!(a.len() > 5, "{} shard files", a.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{} differs from one machine's", name.display());
    }
}

/// The arguments of `zhcorpus slurm COMMAND --config CONFIG -o OUT EXTRA...`.
fn slurm_args<'a>(
    command: &'a str,
    config: &'a Path,
    out: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "slurm",
        command,
        "--config",
        config.to_str().unwrap(),
        "-o",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

/// `zhcorpus slurm local --config CONFIG -o OUT EXTRA...` in `dir`.
fn local(dir: &Path, config: &Path, out: &str, extra: &[&str]) -> Output {
    run(dir, &slurm_args("local", config, out, extra))
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn the_local_executor_matches_one_machine_and_reruns_nothing_complete() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = corpus(dir.path(), 6, &[]);
    let config = settings(dir.path(), &inputs, "");
    let one = one_machine(dir.path(), &inputs);
    let stdout = ok(local(dir.path(), &config, "split", &["--processes", "2"]));
    assert!(
        stdout.contains("dedup-cluster  1/1 tasks complete"),
        "{stdout}"
    );
    let out = dir.path().join("split");
    assert_same_as_one_machine(&out, &one);
    // the ranks' own shard folders are gone once joined
    assert!(!out.join("encode/rank-00000").exists());
    // again: every task complete, skipped, nothing rewritten
    let marker = out.join("markers/clean-judge-00002.done");
    let before = mtime(&marker);
    ok(local(dir.path(), &config, "split", &[]));
    assert_eq!(mtime(&marker), before, "a complete task ran again");
    let log = std::fs::read_to_string(out.join("logs/dedup-sketch-3.log")).unwrap();
    assert!(log.contains("complete already, skipped"), "{log}");
    assert_same_as_one_machine(&out, &one);
    // another plan in the same folder is refused
    let other = settings(dir.path(), &inputs[..3], "");
    let o = local(dir.path(), &other, "split", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("holds another plan"), "{}", stderr(&o));
}

#[test]
fn a_failed_task_is_named_with_its_line_and_the_rerun_redoes_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = corpus(dir.path(), 6, &[]);
    // a broken line in the fifth file: rank 3's (files 4 and 5 of 6)
    let good = std::fs::read_to_string(&inputs[4]).unwrap();
    let mut broken: Vec<&str> = good.lines().collect();
    broken.insert(7, "{\"id\": \"broken\", \"text\": ");
    std::fs::write(&inputs[4], broken.join("\n") + "\n").unwrap();
    let config = settings(dir.path(), &inputs, "");
    let o = local(dir.path(), &config, "split", &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("clean-count stage: task 3 failed") && err.contains("part-04.jsonl:8"),
        "{err}"
    );
    let status = run(dir.path(), &["slurm", "status", "-o", "split"]);
    assert!(!status.status.success());
    let text = stdout(&status);
    assert!(
        text.contains("clean-count    3/4 tasks complete  FAILED"),
        "{text}"
    );
    assert!(
        text.contains("task 3 failed") && text.contains("part-04.jsonl:8"),
        "{text}"
    );
    assert!(text.contains("clean-judge    0/4"), "{text}");
    let out = dir.path().join("split");
    let marker = out.join("markers/clean-count-00001.done");
    let before = mtime(&marker);
    // fixed, the same command goes on: only the failed task and the steps after it run
    std::fs::write(&inputs[4], good).unwrap();
    ok(local(dir.path(), &config, "split", &[]));
    assert_eq!(mtime(&marker), before, "a complete task ran again");
    assert!(!out.join("markers/clean-count-00003.failed").exists());
    let one = one_machine(dir.path(), &inputs);
    assert_same_as_one_machine(&out, &one);
}

/// A one-node Slurm cluster of its own: munged, slurmctld and slurmd, stopped when dropped.
struct Slurm {
    dir: PathBuf,
}

impl Slurm {
    /// Starts the cluster, or says why it cannot (a failure under `CI=true`).
    fn start(dir: &Path) -> Option<Slurm> {
        let have = |p: &str| {
            ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(p).is_file())
        };
        let missing: Vec<&str> = [
            "munged",
            "slurmctld",
            "slurmd",
            "sbatch",
            "squeue",
            "scancel",
        ]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
        // slurmd must be root to run jobs as their owner
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !missing.is_empty() || !root {
            let why = if missing.is_empty() {
                "they must run as root (slurmd starts the jobs)".to_string()
            } else {
                format!(
                    "{} not installed (apt-get install slurm-wlm munge)",
                    missing.join(", ")
                )
            };
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "the Slurm tests must run in CI: {why}; the README's test command sets them up"
                );
            }
            eprintln!(
                "NOT RUN: the Slurm tests need a one-node cluster: {why}; this test checked nothing"
            );
            return None;
        }
        let d = dir.to_path_buf();
        for sub in ["state", "spool", "log"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        // munge: its own key and socket
        let key: Vec<u8> = (0..128u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        std::fs::write(d.join("munge.key"), key).unwrap();
        std::fs::set_permissions(
            d.join("munge.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let sock = d.join("munge.sock");
        let st = Command::new("munged")
            .arg("--force")
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--key-file={}", d.join("munge.key").display()))
            .arg(format!("--pid-file={}", d.join("munged.pid").display()))
            .arg(format!("--log-file={}", d.join("log/munged.log").display()))
            .arg(format!("--seed-file={}", d.join("munge.seed").display()))
            .status()
            .unwrap();
        assert!(st.success(), "munged did not start");
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let conf = format!(
            "ClusterName=zhcorpus-test\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\n\
             SlurmdUser=root\nSlurmctldPort={}\nSlurmdPort={}\nAuthType=auth/munge\n\
             AuthInfo=socket={sock}\nCredType=cred/munge\nStateSaveLocation={dir}/state\n\
             SlurmdSpoolDir={dir}/spool\nSlurmctldPidFile={dir}/slurmctld.pid\n\
             SlurmdPidFile={dir}/slurmd.pid\nSlurmctldLogFile={dir}/log/slurmctld.log\n\
             SlurmdLogFile={dir}/log/slurmd.log\nProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\nJobCompType=jobcomp/none\n\
             SchedulerType=sched/backfill\nSelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\nReturnToService=2\nMpiDefault=none\n\
             MinJobAge=600\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN\n\
             PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
            port(),
            port(),
            sock = sock.display(),
            dir = d.display(),
        );
        std::fs::write(d.join("slurm.conf"), conf).unwrap();
        let s = Slurm { dir: d };
        for daemon in ["slurmctld", "slurmd"] {
            let st = s.command(daemon).arg("-f").arg(s.conf()).status().unwrap();
            assert!(st.success(), "{daemon} did not start: {}", s.logs());
        }
        let start = Instant::now();
        loop {
            let o = s
                .command("sinfo")
                .args(["-h", "-o", "%T"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&o.stdout).trim() == "idle" {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the node did not come up: {}",
                s.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(s)
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    /// A Slurm command talking to this cluster.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    /// A `zhcorpus` command talking to this cluster.
    fn zhcorpus(&self, dir: &Path, args: &[&str]) -> Output {
        common::zhcorpus()
            .current_dir(dir)
            .env("SLURM_CONF", self.conf())
            .args(args)
            .output()
            .unwrap()
    }

    /// `zhcorpus slurm submit --config CONFIG -o OUT EXTRA...` in `dir`, to this cluster.
    fn submit(&self, dir: &Path, config: &Path, out: &str, extra: &[&str]) -> Output {
        self.zhcorpus(dir, &slurm_args("submit", config, out, extra))
    }

    fn logs(&self) -> String {
        ["slurmctld.log", "slurmd.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join("log").join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The jobs in the queue, as `id state`.
    fn queue(&self) -> Vec<String> {
        let o = self
            .command("squeue")
            .args(["-h", "-r", "-o", "%i %T"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until the queue is empty.
    fn drain(&self, within: Duration) {
        let start = Instant::now();
        while !self.queue().is_empty() {
            assert!(
                start.elapsed() < within,
                "jobs left in the queue: {:?}",
                self.queue()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        for pid in ["slurmd.pid", "slurmctld.pid", "munged.pid"] {
            if let Ok(p) = std::fs::read_to_string(self.dir.join(pid)) {
                let _ = Command::new("kill").arg(p.trim()).status();
                // wait for it to go, so that the next cluster can take the node name
                for _ in 0..100 {
                    if !Path::new(&format!("/proc/{}", p.trim())).exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// The job id of `step` in a submission's output.
fn job_of(submitted: &str, step: &str) -> String {
    submitted
        .lines()
        .find(|l| l.starts_with(&format!("{step} ")))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_else(|| panic!("no job for {step} in {submitted}"))
        .to_string()
}

#[test]
fn slurm_job_arrays_match_one_machine_and_a_cancelled_task_reruns_alone() {
    let _one = SLURM.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let Some(slurm) = Slurm::start(&dir.path().join("slurm")) else {
        return;
    };
    // files 4 and 5 of 8 (rank 2's) are large: its tasks take seconds
    let inputs = corpus(dir.path(), 8, &[4, 5]);
    let config = settings(
        dir.path(),
        &inputs,
        "max_parallel = 1\ncpus_per_task = 1\nmem = \"500M\"",
    );
    let dry = ok(slurm.submit(dir.path(), &config, "split", &["--dry-run"]));
    assert!(dry.contains("#SBATCH --array=0-3%1"), "{dry}");
    assert!(
        !dir.path().join("split/plan.json").exists(),
        "a dry run writes nothing"
    );
    let submitted = ok(slurm.submit(dir.path(), &config, "split", &[]));
    // a second submission while the first's jobs are queued is refused: two copies of a task
    // would write the same files
    let twice = slurm.submit(dir.path(), &config, "split", &[]);
    assert_eq!(twice.status.code(), Some(2), "{}", stderr(&twice));
    assert!(
        stderr(&twice).contains("still in the queue"),
        "{}",
        stderr(&twice)
    );
    // task 2 of clean-judge cancelled while it runs
    let judge = job_of(&submitted, "clean-judge");
    let task = format!("{judge}_2");
    let start = Instant::now();
    loop {
        if slurm
            .queue()
            .iter()
            .any(|l| l == &format!("{task} RUNNING"))
        {
            break;
        }
        assert!(
            !dir.path()
                .join("split/markers/clean-judge-00002.done")
                .exists(),
            "task 2 finished before it could be cancelled"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{task} never ran: {:?}",
            slurm.queue()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let st = slurm.command("scancel").arg(&task).status().unwrap();
    assert!(st.success());
    slurm.drain(Duration::from_secs(120));
    let out = dir.path().join("split");
    assert!(!out.join("markers/clean-judge-00002.done").exists());
    assert!(out.join("markers/clean-judge-00001.done").exists());
    assert!(
        !out.join("markers/dedup-sketch-00000.done").exists(),
        "a step after the cancelled one ran"
    );
    let o = slurm.zhcorpus(dir.path(), &["slurm", "status", "-o", "split"]);
    assert_eq!(o.status.code(), Some(2), "a lost task is a failure");
    let status = stdout(&o);
    assert!(
        status.contains("clean-judge    3/4 tasks complete"),
        "{status}"
    );
    assert!(status.contains("task 2 not running: no marker"), "{status}");
    assert!(!status.contains("task 1 not running"), "{status}");
    let kept = mtime(&out.join("markers/clean-judge-00003.done"));
    // submitted again (how Slurm runs the tasks may change: all at once now): the complete
    // steps are left out, the complete tasks skipped
    let config = settings(dir.path(), &inputs, "cpus_per_task = 1\nmem = \"500M\"");
    let again = ok(slurm.submit(dir.path(), &config, "split", &[]));
    assert!(!again.contains("clean-count "), "{again}");
    slurm.drain(Duration::from_secs(600));
    let status = stdout(&slurm.zhcorpus(dir.path(), &["slurm", "status", "-o", "split"]));
    assert!(
        status.contains("shards         1/1 tasks complete  complete"),
        "{status}\n{}",
        slurm.logs()
    );
    assert_eq!(
        mtime(&out.join("markers/clean-judge-00003.done")),
        kept,
        "a complete task ran again"
    );
    let log = std::fs::read_to_string(out.join("logs/clean-judge-3.log")).unwrap();
    assert!(log.contains("complete already, skipped"), "{log}");
    let one = one_machine(dir.path(), &inputs);
    assert_same_as_one_machine(&out, &one);
}

#[test]
fn a_failing_slurm_task_stops_the_steps_after_it_and_status_says_why() {
    let _one = SLURM.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let Some(slurm) = Slurm::start(&dir.path().join("slurm")) else {
        return;
    };
    let inputs = corpus(dir.path(), 4, &[]);
    let text = std::fs::read_to_string(&inputs[1]).unwrap();
    std::fs::write(&inputs[1], format!("{text}not json at all\n")).unwrap();
    let config = settings(dir.path(), &inputs, "cpus_per_task = 1\nmem = \"500M\"");
    ok(slurm.submit(dir.path(), &config, "split", &[]));
    slurm.drain(Duration::from_secs(120));
    let o = slurm.zhcorpus(dir.path(), &["slurm", "status", "-o", "split"]);
    assert_eq!(o.status.code(), Some(2), "status of a failed plan exits 2");
    let text = stdout(&o);
    assert!(
        text.contains("clean-count    3/4 tasks complete  FAILED"),
        "{text}"
    );
    assert!(
        text.contains("task 1 failed") && text.contains("part-01.jsonl:251"),
        "{text}"
    );
    assert!(text.contains("clean-judge    0/4 tasks complete"), "{text}");
    let out = dir.path().join("split");
    let log = std::fs::read_to_string(out.join("logs/clean-count-1.log")).unwrap();
    assert!(log.contains("part-01.jsonl:251"), "{log}");
    assert!(
        !out.join("clean/kept-00000.jsonl.zst").exists(),
        "a dependent step ran"
    );
    assert!(
        !text.contains("not running"),
        "the steps after a failure are waiting: {text}"
    );
    let markers: Vec<String> = std::fs::read_dir(out.join("markers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("clean-count-"))
        .collect();
    assert!(
        markers.is_empty(),
        "steps after the failed one ran: {markers:?}"
    );
}

/// Crawl workers' stores as the inputs: the extract step turns each rank's stores' pages into
/// documents, as the crawl extracted them, and the rest runs as on documents: the kept ones are
/// those one machine keeps from the stores' exported documents.
#[test]
fn crawl_workers_stores_are_extracted_and_kept_as_one_machine_keeps_their_documents() {
    let farm = farm::Farm::start(farm::FarmConfig {
        hosts: 4,
        articles_per_host: 25,
        traps: false,
        crawl_delay: 0.0,
        ..farm::FarmConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // two workers' stores, each with half of the hosts
    let seeds = farm.seeds();
    let (a, b) = seeds.split_at(seeds.len() / 2);
    for (name, part) in [("a", a), ("b", b)] {
        std::fs::write(d.join(format!("{name}.txt")), part.join("\n") + "\n").unwrap();
        let seeds = format!("{name}.txt");
        let db = format!("{name}.db");
        ok(run(
            d,
            &[
                "-q",
                "crawl",
                "--db",
                &db,
                "--seeds",
                &seeds,
                "--allow-private",
                "--delay",
                "0",
            ],
        ));
        let docs = format!("{name}.jsonl");
        ok(run(d, &["-q", "export", "--db", &db, "-o", &docs]));
    }
    let stores = [d.join("a.db"), d.join("b.db")];
    let config = settings(d, &stores, "store = false");
    let out = ok(local(d, &config, "split", &["--ranks", "2"]));
    assert!(out.contains("extract        2/2 tasks complete"), "{out}");
    let one = one_machine(d, &[d.join("a.jsonl"), d.join("b.jsonl")]);
    let kept: Vec<PathBuf> = (0..2)
        .map(|r| d.join(format!("split/dedup/kept-{r:05}.jsonl.zst")))
        .collect();
    let split = lines(&kept);
    let single = lines(&[one.join("kept.jsonl")]);
    assert!(single.len() > 50, "{} documents kept", single.len());
    assert!(
        split == single,
        "the kept documents differ from one machine's"
    );
    // a mix of stores and documents is refused
    let mixed = settings(d, &[d.join("a.db"), d.join("b.jsonl")], "");
    let o = local(d, &mixed, "mixed", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not both"), "{}", stderr(&o));
}
