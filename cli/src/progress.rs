//! Progress on stderr: indicatif bars on a terminal; elsewhere a line every 10 seconds for the
//! stages that describe their state (crawl, train); nothing with `--quiet`.
//!
//! For the interruption tests, `ZHCORPUS_PAUSE_AT=PHASE:N` stops the process inside the N-th
//! progress report of PHASE (`PHASE:start` as it starts), after saying so on stderr, until it
//! is killed: a way to `kill -9` a stage at a known point.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The CLI's implementation of [`corpus::Progress`].
pub struct Bar {
    terminal: bool,
    quiet: bool,
    state: Mutex<State>,
    pause_at: Option<(String, String)>,
}

#[derive(Default)]
struct State {
    bar: Option<ProgressBar>,
    phase: String,
    updates: u64,
    custom_message: bool,
    last_line: Option<Instant>,
}

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        let pause_at = std::env::var("ZHCORPUS_PAUSE_AT").ok().and_then(|v| {
            v.split_once(':')
                .map(|(phase, at)| (phase.to_string(), at.to_string()))
        });
        Bar {
            terminal: !quiet && std::io::stderr().is_terminal(),
            quiet,
            state: Mutex::new(State::default()),
            pause_at,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn maybe_pause(&self, phase: &str, at: &str) {
        if let Some((p, a)) = &self.pause_at
            && p == phase
            && a == at
        {
            eprintln!("zhcorpus: paused at {phase}:{at} (ZHCORPUS_PAUSE_AT)");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}

impl corpus::Progress for Bar {
    fn start(&self, phase: &str, total: Option<u64>) {
        crate::cmd::signals::set_cooperative(matches!(phase, "train" | "crawl" | "images fetch"));
        self.maybe_pause(phase, "start");
        let mut s = self.state();
        if let Some(old) = s.bar.take() {
            old.finish_and_clear();
        }
        *s = State {
            phase: phase.to_string(),
            ..State::default()
        };
        if !self.terminal {
            return;
        }
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{prefix:>9} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{prefix:>9} {spinner} {msg} ({elapsed})")
                    .expect("valid template"),
            ),
        };
        bar.set_prefix(phase.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        s.bar = Some(bar);
    }

    fn update(&self, position: u64, items: u64) {
        let (phase, n) = {
            let mut s = self.state();
            s.updates += 1;
            if let Some(bar) = &s.bar {
                bar.set_position(position);
                if !s.custom_message {
                    let rate = items as f64 / bar.elapsed().as_secs_f64().max(1e-3);
                    bar.set_message(format!("{items} docs, {rate:.0}/s"));
                }
            }
            (s.phase.clone(), s.updates)
        };
        self.maybe_pause(&phase, &n.to_string());
    }

    fn message(&self, message: &str) {
        let mut s = self.state();
        s.custom_message = true;
        if let Some(bar) = &s.bar {
            bar.set_message(message.to_string());
        } else if !self.quiet {
            let due = s
                .last_line
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
            if due && s.last_line.is_some() {
                eprintln!("{}: {message}", s.phase);
            }
            if due {
                s.last_line = Some(Instant::now());
            }
        }
    }

    fn finish(&self) {
        crate::cmd::signals::set_cooperative(false);
        if let Some(bar) = self.state().bar.take() {
            bar.finish_and_clear();
        }
    }

    fn cancelled(&self) -> bool {
        crate::cmd::signals::cancelled()
    }
}
