//! `dits-filter`: git's long-running filter process (protocol version 2).
//!
//! The protocol layer ([`pktline`], [`server`]) knows nothing about Dits; it drives any
//! [`server::Handler`] over any `Read + Write` pair so that it can be tested in-process over
//! pipes as well as under real git. The Dits handler lives in [`handler`].
#![deny(clippy::print_stdout)]

pub mod deferred;
mod delay;
#[doc(hidden)]
pub mod fuzzing;
pub mod handler;
mod meter;
pub use dits_core::pktline;
pub mod server;
mod spool;

pub use handler::{DitsHandler, FilterConfig, Sources};
