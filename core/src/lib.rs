//! The core of Dits: everything that needs no network and spawns no process.
//!
//! - [`chunker`]: content-defined chunking (FastCDC 2020) over streams.
//! - [`id`]: BLAKE3 ids with separate domains for chunks and files.
//! - [`pointer`]: the small text Git stores instead of a tracked file.
//! - [`manifest`]: the chunk list that rebuilds a file.
//! - [`store`]: the crash-safe, multi-writer chunk store in `.git/dits`.
//! - [`ingest`] / [`reader`] / [`worktree`]: clean, smudge, and writing work-tree files;
//!   [`rebuild`]: the one check of rebuilt content against its id.
//! - [`source`] / [`transfer`]: where missing content comes from, and fetching it;
//!   [`path_filter`]: which files a partial fetch wants.
//! - [`locks`]: file locks, the paths they take and the requests about them.

pub mod chunker;
#[doc(hidden)]
pub mod fuzzing;
pub mod id;
pub mod ingest;
pub mod ingest_media;
pub mod lfs;
pub mod locks;
pub mod manifest;
pub mod media;
pub mod path_filter;
pub mod pktline;
pub mod pointer;
pub mod progress;
pub mod reader;
pub mod rebuild;
pub mod source;
pub mod span_map;
pub mod store;
#[cfg(test)]
mod test_data;
pub mod transfer;
pub mod wire;
pub mod worktree;

pub use id::{ChunkId, FileId};
pub use manifest::Manifest;
pub use path_filter::PathFilter;
pub use pointer::Pointer;
