//! Progress bars on stderr, drawn by indicatif; hidden with `--quiet` or when stderr is not a
//! terminal.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The CLI's implementation of [`corpus::Progress`].
pub struct Bar {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        Bar {
            enabled: !quiet && std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            f(bar)
        }
    }
}

impl corpus::Progress for Bar {
    fn start(&self, phase: &str, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30}] {percent:>3}% {msg} ({elapsed}, eta {eta})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{prefix:>8} {spinner} {msg} ({elapsed})")
                    .expect("valid template"),
            ),
        };
        bar.set_prefix(phase.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn update(&self, position: u64, items: u64) {
        self.with(|bar| {
            bar.set_position(position);
            let rate = items as f64 / bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{items} docs, {rate:.0}/s"));
        })
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// A step counter for training: position, rate and a message (loss, tokens/s).
pub struct Steps {
    bar: Option<ProgressBar>,
}

impl Steps {
    pub fn new(quiet: bool, total: u64) -> Steps {
        let enabled = !quiet && std::io::stderr().is_terminal();
        let bar = enabled.then(|| {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            )
        });
        if let Some(b) = &bar {
            b.set_prefix("train");
        }
        Steps { bar }
    }

    pub fn step(&self, step: u64, message: &str) {
        if let Some(b) = &self.bar {
            b.set_position(step);
            b.set_message(message.to_string());
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
