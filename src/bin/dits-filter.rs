//! `dits-filter`: git's clean/smudge filter for Dits. stdout is git's protocol.
#![deny(clippy::print_stdout)]

fn main() -> std::process::ExitCode {
    dits::real_objects_only();
    dits::tune_allocator();
    dits::init_logging("dits-filter");
    git_dits::filter::main()
}
