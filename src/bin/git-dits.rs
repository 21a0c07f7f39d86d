//! `git dits`: see `git dits --help`.
#![deny(clippy::print_stdout)]

fn main() -> std::process::ExitCode {
    dits::init_logging("git-dits");
    git_dits::run()
}
