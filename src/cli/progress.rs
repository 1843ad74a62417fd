//! The progress bar of long commands (`validate --deep`): bytes read, rate and ETA on stderr,
//! shown only when stderr is a terminal, so logs and pipes get nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ocikit::progress::Progress;

/// A byte-counting progress bar; hidden when stderr is not a terminal. It clears itself when
/// dropped, so the command's own output is not mixed with a stale bar.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar labelled `message` (e.g. "validating"), on stderr if stderr is a terminal.
    pub fn new(message: &'static str) -> Bar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        let template = "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, ETA {eta}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message);
        Bar { bar }
    }
}

impl Progress for Bar {
    fn total(&self, bytes: u64) {
        self.bar.set_length(bytes);
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
