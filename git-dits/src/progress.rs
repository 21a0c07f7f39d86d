//! Progress bars on stderr, only when stderr is a terminal and `--quiet` was not given.

use std::io::IsTerminal;

use dits_core::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bar(ProgressBar);

impl Bar {
    pub fn bytes(quiet: bool, message: &str) -> Bar {
        let pb = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            pb.set_style(style);
            pb
        };
        pb.set_message(message.to_owned());
        Bar(pb)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn inc(&self, delta: u64) {
        self.0.inc(delta);
    }
    fn set_message(&self, message: &str) {
        self.0.set_message(message.to_owned());
    }
}
