//! `git-remote-dits`: the git remote helper for `dits://` URLs. All logic is in the
//! libraries (`git_dits::helper`, `git_remote_dits::helper`).
#![deny(clippy::print_stdout)]

use std::process::ExitCode;

fn main() -> ExitCode {
    dits::real_objects_only();
    dits::tune_allocator();
    dits::init_logging("git-remote-dits");
    dits::init_interrupt();
    git_dits::helper::main()
}
