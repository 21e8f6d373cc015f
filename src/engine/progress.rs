//! Progress reporting: an indicatif bar on a terminal, a plain line every few seconds
//! otherwise (CI logs, SLURM output files).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Jets done so far, shown to the user.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
    quiet: bool,
}

const LINE_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    /// Starts reporting for `total` jets. `quiet` silences everything.
    pub fn new(total: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} jets ({per_sec}, ETA {eta})",
                )
                .expect("valid template"),
            );
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            total,
            done: 0,
            started: now,
            last_line: now,
            quiet,
        }
    }

    /// Adds `n` finished jets.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if !self.quiet && self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!(
                "progress: {}/{} jets ({:.1}%), {:.0} jets/s",
                self.done,
                self.total,
                100.0 * self.done as f64 / self.total.max(1) as f64,
                self.done as f64 / secs.max(1e-9)
            );
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
