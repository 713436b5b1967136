//! Ctrl-C and SIGTERM (what Slurm sends before it kills a job), handled alike by every command.
//!
//! The first signal asks the running stage to stop: training finishes its step and writes a
//! checkpoint, the crawl lets its fetches in flight finish; a stage that cannot stop early
//! (its work is committed batch by batch) ends at once. A second signal ends the process at
//! once. Either way the exit code is 130.

use std::sync::atomic::{AtomicBool, Ordering};

static CANCELLED: AtomicBool = AtomicBool::new(false);
static COOPERATIVE: AtomicBool = AtomicBool::new(false);

/// Starts listening for SIGINT and SIGTERM.
pub fn install() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        std::thread::spawn(move || {
            for _ in signals.forever() {
                if CANCELLED.swap(true, Ordering::SeqCst) || !COOPERATIVE.load(Ordering::SeqCst) {
                    // every finished batch is committed; the rest is redone by the next run;
                    // outputs being written are removed, not left half-written
                    corpus::remove_partial_files();
                    std::process::exit(130);
                }
                eprintln!(
                    "stopping after the work in progress (a step, the fetches in flight); \
                     Ctrl-C again to quit now"
                );
            }
        });
    }
}

/// Whether a signal asked the command to stop.
pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// Whether the phase now running stops at a safe point on its own (training, the crawl):
/// otherwise the first signal ends the process at once.
pub fn set_cooperative(on: bool) {
    COOPERATIVE.store(on, Ordering::SeqCst);
}
