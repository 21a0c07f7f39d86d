//! The end-to-end suite: real git (2.47 and 2.39), the real binaries, real servers on
//! loopback, real FUSE. One test binary with a module per area, so `cargo test` links it
//! once; `support` is the hermetic harness every module uses.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

mod support;

mod basic;
mod faults;
mod filter_process;
mod first_hour;
mod gitoxide;
mod integrity;
mod interrupt;
mod locks;
mod many_files;
mod media;
mod memory;
mod migrate;
mod mount;
mod remote;
mod remote_faults;
mod smudge_callers;
mod wire;
mod workflows;
