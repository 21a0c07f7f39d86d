//! `git dits`: see `git dits --help`.
#![deny(clippy::print_stdout)]

fn main() -> std::process::ExitCode {
    dits::default_sigpipe();
    dits::real_objects_only();
    dits::tune_allocator();
    dits::init_logging("git-dits");
    dits::init_interrupt();
    git_dits::run()
}
