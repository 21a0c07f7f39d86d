//! Dits networking: the wire protocol on QUIC and on TLS over TCP (frames are encoded by
//! `dits_core::wire`; [`transport`] carries them), the client [`client::Session`] and
//! [`client::RemoteSource`], the server behind `git dits serve`, and the git remote helper
//! loop behind `git-remote-dits`, and [`locks`]: the server's lock database and the git
//! questions locks ask (which paths a push changes).
//!
//! Everything here is driven by tokio; public client methods block, so callers stay
//! synchronous. See docs/protocol.md for the protocol.
#![deny(clippy::print_stdout)]

pub mod client;
pub mod error;
mod frames;
pub mod helper;
pub mod locks;
pub mod server;
pub mod tls;
pub mod transport;
pub mod url;

pub use client::Session;
pub use error::NetError;
pub use url::DitsUrl;
