//! The process's thread budget: `--threads N`, else `ZHCORPUS_THREADS`, else
//! `RAYON_NUM_THREADS`, else every core. One number sizes rayon's global pool, which runs every
//! stage's data parallelism, training's shards of a batch, the matrix products and the fused
//! kernels; and the crawler's async workers: a benchmark that gives zhcorpus and a peer the
//! same N compares like with like. candle's own pool for its elementwise operations is held to
//! one thread (`CANDLE_NUM_THREADS=1`): they run inside the shards' tasks.

use crate::error::UsageError;

/// Where the thread count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    ZhcorpusThreads,
    RayonNumThreads,
    Cores,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Flag => "--threads",
            Source::ZhcorpusThreads => "ZHCORPUS_THREADS",
            Source::RayonNumThreads => "RAYON_NUM_THREADS",
            Source::Cores => "the machine's cores",
        }
    }
}

/// The thread count asked for, and where it came from; a variable that is set but not a
/// whole number from 1 is a usage error naming it.
pub fn resolve(
    flag: Option<usize>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<(usize, Source), UsageError> {
    if let Some(n) = flag {
        if n == 0 {
            return Err(UsageError("--threads: must be at least 1".into()));
        }
        return Ok((n, Source::Flag));
    }
    for (name, source) in [
        ("ZHCORPUS_THREADS", Source::ZhcorpusThreads),
        ("RAYON_NUM_THREADS", Source::RayonNumThreads),
    ] {
        if let Some(v) = var(name) {
            return match v.trim().parse::<usize>() {
                Ok(n) if n >= 1 => Ok((n, source)),
                _ => Err(UsageError(format!(
                    "{name}={v:?}: must be a whole number of threads, at least 1"
                ))),
            };
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok((cores, Source::Cores))
}

/// Sizes the global pool; call once, before any other thread starts. Returns the number of
/// threads the pool has, read back from it.
pub fn configure(n: usize) -> usize {
    // candle sizes its elementwise pool from the environment when a kernel first runs. It gets
    // one thread: training runs the shards of a batch as tasks of rayon's pool, each on its own
    // thread, and candle's pool (a lock and threads of its own) made those tasks take turns at
    // every elementwise operation (2,217 against 3,600 tokens/s for the small preset on two
    // cores). Matrix products still split across rayon's pool, where a thread is idle.
    // SAFETY: called from `main` before any other thread exists (the doc comment above), so
    // nothing reads the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
        // candle splits a matrix product into as many parts as RAYON_NUM_THREADS says
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    // training's backward passes run on the pool's threads (candle walks its graph
    // recursively), and a thread waiting in a join may run another shard's pass on top of its
    // own: more than rayon's default 2 MiB of stack. An error means a pool already exists:
    // keep it, and say its size
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .stack_size(16 << 20)
        .build_global();
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_our_variable_then_rayons_then_the_cores() {
        let vars = |z: Option<&str>, r: Option<&str>| {
            let (z, r) = (z.map(String::from), r.map(String::from));
            move |name: &str| match name {
                "ZHCORPUS_THREADS" => z.clone(),
                "RAYON_NUM_THREADS" => r.clone(),
                _ => None,
            }
        };
        assert_eq!(
            resolve(Some(3), vars(Some("5"), Some("7"))).unwrap(),
            (3, Source::Flag)
        );
        assert_eq!(
            resolve(None, vars(Some("5"), Some("7"))).unwrap(),
            (5, Source::ZhcorpusThreads)
        );
        assert_eq!(
            resolve(None, vars(None, Some("7"))).unwrap(),
            (7, Source::RayonNumThreads)
        );
        assert_eq!(resolve(None, vars(None, None)).unwrap().1, Source::Cores);
        assert!(resolve(Some(0), vars(None, None)).is_err());
        let err = resolve(None, vars(Some("many"), None)).unwrap_err();
        assert!(err.0.contains("ZHCORPUS_THREADS"), "{}", err.0);
        assert!(resolve(None, vars(Some("0"), None)).is_err());
    }
}
