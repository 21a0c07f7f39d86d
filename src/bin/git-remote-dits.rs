//! `git-remote-dits`: the remote helper for dits:// URLs (not built yet: see issue "Share it").
#![deny(clippy::print_stdout)]

fn main() -> std::process::ExitCode {
    dits::init_logging("git-remote-dits");
    eprintln!("git-remote-dits: dits:// remotes are not implemented yet; hint: use a file:// or ssh remote for now");
    std::process::ExitCode::from(128)
}
