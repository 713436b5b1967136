//! Data parallelism: the [`Collective`] operations a run needs between its ranks (all-reduce,
//! broadcast, all-gather, barrier), a single-process backend that does nothing, and an MPI
//! backend over the system's MPI (the `mpi` feature). No transport of our own: the engine
//! the cluster already runs moves the bytes.
//!
//! Every collective of the MPI backend is started non-blocking and waited on with a deadline:
//! a rank that died or hangs makes the others stop with an error naming the operation, not
//! wait forever. MPI cannot go on once a collective is abandoned, so that error aborts the
//! whole job (`MPI_Abort`) after it is logged.

use std::time::Duration;

/// A collective operation that could not complete.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CollectiveError(pub String);

/// The operations a data-parallel run needs between its ranks. Every rank calls the same
/// operations in the same order with buffers of the same length.
pub trait Collective {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// How many ranks the run has.
    fn world(&self) -> usize;
    /// Element-wise sum over all ranks, in place; `what` names the operation in errors.
    fn all_reduce_f32(&self, buf: &mut [f32], what: &str) -> Result<(), CollectiveError>;
    /// Element-wise sum over all ranks, in place.
    fn all_reduce_f64(&self, buf: &mut [f64], what: &str) -> Result<(), CollectiveError>;
    /// `root`'s buffer into every rank's.
    fn broadcast_f32(
        &self,
        buf: &mut [f32],
        root: usize,
        what: &str,
    ) -> Result<(), CollectiveError>;
    /// Every rank's value, in rank order.
    fn all_gather_u64(&self, value: u64, what: &str) -> Result<Vec<u64>, CollectiveError>;
    /// Returns once every rank has called it.
    fn barrier(&self, what: &str) -> Result<(), CollectiveError>;
    /// Ends every rank of the job with `status` (after an error on this one, which the others
    /// may be waiting for).
    fn abort(&self, status: i32) -> !;
}

/// One process: every operation is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn all_reduce_f32(&self, _: &mut [f32], _: &str) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn all_reduce_f64(&self, _: &mut [f64], _: &str) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn broadcast_f32(&self, _: &mut [f32], _: usize, _: &str) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn all_gather_u64(&self, value: u64, _: &str) -> Result<Vec<u64>, CollectiveError> {
        Ok(vec![value])
    }
    fn barrier(&self, _: &str) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn abort(&self, status: i32) -> ! {
        std::process::exit(status)
    }
}

/// How a data-parallel run uses its collectives.
#[derive(Debug, Clone, PartialEq)]
pub struct DistOptions {
    /// Gradients are all-reduced in buckets of about this many bytes (PyTorch DDP's
    /// `bucket_cap_mb` default: 25 MiB).
    pub bucket_bytes: usize,
    /// ZeRO stage 1: each rank keeps the AdamW moments of its share of the parameters,
    /// updates those, and sends them to the others.
    pub zero1: bool,
    /// The ranks compare a checksum of their weights every this many steps (0: only at the
    /// start and at checkpoints).
    pub verify_every: u64,
}

impl Default for DistOptions {
    fn default() -> Self {
        DistOptions {
            bucket_bytes: 25 << 20,
            zero1: false,
            verify_every: 1,
        }
    }
}

/// Where the launcher says this process stands: (rank, world size) from `srun`
/// (`SLURM_PROCID`, `SLURM_NTASKS`) or `mpirun` (`OMPI_COMM_WORLD_RANK`,
/// `OMPI_COMM_WORLD_SIZE`, or MPICH's `PMI_RANK`, `PMI_SIZE`); `None` outside a launcher.
/// `env` reads a variable (the caller passes `std::env::var`).
pub fn launcher_rank(env: impl Fn(&str) -> Option<String>) -> Option<(usize, usize)> {
    for (rank, size) in [
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
        ("PMI_RANK", "PMI_SIZE"),
        ("SLURM_PROCID", "SLURM_NTASKS"),
    ] {
        let parse = |name: &str| env(name).and_then(|v| v.trim().parse::<usize>().ok());
        if let (Some(r), Some(n)) = (parse(rank), parse(size))
            && r < n
        {
            return Some((r, n));
        }
    }
    None
}

/// A fast checksum of f32 bit patterns (four independent lanes, then folded).
pub fn checksum(data: &[f32], seed: u64) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lanes = [seed ^ 1, seed ^ 2, seed ^ 3, seed ^ 4];
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(c) {
            *lane = (*lane ^ u64::from(x.to_bits()))
                .wrapping_mul(K)
                .rotate_left(29);
        }
    }
    for &x in chunks.remainder() {
        lanes[0] = (lanes[0] ^ u64::from(x.to_bits()))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    lanes.iter().fold(data.len() as u64, |h, &l| {
        (h ^ l).wrapping_mul(K).rotate_left(31)
    })
}

/// Assigns each parameter (by its element count) to one rank, largest first to the rank with
/// the fewest elements so far: the ZeRO-1 owners. Deterministic, so every rank computes the
/// same assignment.
pub fn owners(sizes: &[usize], world: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut load = vec![0usize; world.max(1)];
    let mut owner = vec![0usize; sizes.len()];
    for i in order {
        let r = (0..load.len())
            .min_by_key(|&r| (load[r], r))
            .unwrap_or_default();
        owner[i] = r;
        load[r] += sizes[i];
    }
    owner
}

#[cfg(feature = "mpi")]
pub use self::mpi_backend::Mpi;

#[cfg(feature = "mpi")]
mod mpi_backend {
    use std::time::{Duration, Instant};

    use mpi::collective::SystemOperation;
    use mpi::topology::{Communicator, SimpleCommunicator};
    use mpi::traits::*;

    use super::{Collective, CollectiveError};

    /// The MPI backend: `MPI_COMM_WORLD` of the system's MPI (OpenMPI, MPICH), started by
    /// `mpirun` or `srun`. Initialised once per process; finalised when dropped.
    pub struct Mpi {
        _universe: mpi::environment::Universe,
        world: SimpleCommunicator,
        timeout: Duration,
        scratch: std::cell::RefCell<Vec<f32>>,
    }

    /// The exit status of a job aborted because a collective timed out.
    const ABORTED: i32 = 3;

    /// The most elements one MPI call is given (its counts are C ints).
    const CHUNK: usize = 1 << 28;

    impl Mpi {
        /// Initialises MPI; each collective waits at most `timeout` for the other ranks.
        pub fn init(timeout: Duration) -> Result<Mpi, CollectiveError> {
            let universe = mpi::initialize().ok_or_else(|| {
                CollectiveError("MPI could not be initialised (or was already)".into())
            })?;
            let world = universe.world();
            Ok(Mpi {
                _universe: universe,
                world,
                timeout,
                scratch: Default::default(),
            })
        }

        /// Waits for `req` until the deadline; past it, logs which operation hung and aborts
        /// the job (MPI cannot abandon a started collective and go on).
        fn finish<'a, D: ?Sized, S: mpi::request::Scope<'a>>(
            &self,
            mut req: mpi::request::Request<'a, D, S>,
            what: &str,
        ) {
            let began = Instant::now();
            let mut spins = 0u32;
            loop {
                match req.test() {
                    Ok(_) => return,
                    Err(r) => req = r,
                }
                if began.elapsed() > self.timeout {
                    tracing::error!(
                        "rank {} of {}: {what} waited {:.0} s for the other ranks \
                         (--collective-timeout): one of them died or hangs; aborting the job",
                        self.world.rank(),
                        self.world.size(),
                        self.timeout.as_secs_f64()
                    );
                    self.world.abort(ABORTED);
                }
                spins += 1;
                if spins < 1000 {
                    std::hint::spin_loop();
                } else {
                    // a long wait (the others are still computing) leaves the core to them
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
    }

    impl Collective for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }

        fn world(&self) -> usize {
            self.world.size() as usize
        }

        fn all_reduce_f32(&self, buf: &mut [f32], what: &str) -> Result<(), CollectiveError> {
            let mut send = self.scratch.borrow_mut();
            // MPI counts elements in an int: pieces of at most CHUNK
            for piece in buf.chunks_mut(CHUNK) {
                send.clear();
                send.extend_from_slice(piece);
                mpi::request::scope(|scope| {
                    let req = self.world.immediate_all_reduce_into(
                        scope,
                        &send[..],
                        piece,
                        SystemOperation::sum(),
                    );
                    self.finish(req, what);
                });
            }
            Ok(())
        }

        fn all_reduce_f64(&self, buf: &mut [f64], what: &str) -> Result<(), CollectiveError> {
            let send = buf.to_vec();
            mpi::request::scope(|scope| {
                let req = self.world.immediate_all_reduce_into(
                    scope,
                    &send[..],
                    buf,
                    SystemOperation::sum(),
                );
                self.finish(req, what);
            });
            Ok(())
        }

        fn broadcast_f32(
            &self,
            buf: &mut [f32],
            root: usize,
            what: &str,
        ) -> Result<(), CollectiveError> {
            if root >= self.world() {
                return Err(CollectiveError(format!(
                    "{what}: no rank {root} among {}",
                    self.world()
                )));
            }
            let root = self.world.process_at_rank(root as i32);
            for piece in buf.chunks_mut(CHUNK) {
                mpi::request::scope(|scope| {
                    let req = root.immediate_broadcast_into(scope, piece);
                    self.finish(req, what);
                });
            }
            Ok(())
        }

        fn all_gather_u64(&self, value: u64, what: &str) -> Result<Vec<u64>, CollectiveError> {
            let send = [value];
            let mut out = vec![0u64; self.world()];
            mpi::request::scope(|scope| {
                let req = self
                    .world
                    .immediate_all_gather_into(scope, &send[..], &mut out[..]);
                self.finish(req, what);
            });
            Ok(out)
        }

        fn barrier(&self, what: &str) -> Result<(), CollectiveError> {
            let req = self.world.immediate_barrier();
            self.finish(req, what);
            Ok(())
        }

        fn abort(&self, status: i32) -> ! {
            self.world.abort(status)
        }
    }
}

/// The default wait of one collective before the job is aborted (PyTorch's NCCL default is
/// ten minutes too): long enough for rank 0 to write a large checkpoint while the others wait.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launcher_rank_reads_mpirun_then_srun() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(launcher_rank(env(&[])), None);
        assert_eq!(
            launcher_rank(env(&[("SLURM_PROCID", "3"), ("SLURM_NTASKS", "4")])),
            Some((3, 4))
        );
        assert_eq!(
            launcher_rank(env(&[
                ("OMPI_COMM_WORLD_RANK", "1"),
                ("OMPI_COMM_WORLD_SIZE", "2"),
                ("SLURM_PROCID", "0"),
                ("SLURM_NTASKS", "1"),
            ])),
            Some((1, 2))
        );
        // a rank outside the world is no launcher's
        assert_eq!(
            launcher_rank(env(&[("SLURM_PROCID", "4"), ("SLURM_NTASKS", "4")])),
            None
        );
    }

    #[test]
    fn owners_balance_the_elements() {
        let sizes = [100, 10, 60, 50, 40, 1];
        let o = owners(&sizes, 2);
        let load = |r| {
            o.iter()
                .zip(&sizes)
                .filter(|(x, _)| **x == r)
                .map(|(_, s)| s)
                .sum::<usize>()
        };
        assert_eq!(load(0) + load(1), 261);
        assert!(load(0).abs_diff(load(1)) <= 20, "{o:?}");
        assert_eq!(owners(&sizes, 1), vec![0; 6]);
        assert_eq!(o, owners(&sizes, 2), "the same on every rank");
    }

    #[test]
    fn checksum_sees_one_bit() {
        let a: Vec<f32> = (0..1001).map(|i| i as f32 * 0.5).collect();
        let mut b = a.clone();
        b[777] = f32::from_bits(b[777].to_bits() ^ 1);
        assert_ne!(checksum(&a, 0), checksum(&b, 0));
        assert_eq!(checksum(&a, 0), checksum(&a.clone(), 0));
        let mut c = a.clone();
        c[1000] = -c[1000];
        assert_ne!(checksum(&a, 0), checksum(&c, 0));
    }
}
