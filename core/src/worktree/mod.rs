//! Writing tracked files into the work tree, the one module every path that does so uses
//! (the filter after git's checkout, `git dits checkout` and `pull`, a clone writing a file
//! while it is fetched):
//!
//! - [`hydrate`]: replace a pointer file by its content from the store, atomically and only
//!   while the file still holds exactly that pointer;
//! - [`prepared`]: write a file's content into a temp file while its chunks arrive, then put
//!   it in place under the same rule;
//! - [`stat_record`]: remember the stat data of files Dits wrote, so git's re-clean of them
//!   costs one hash pass and git's index can be told their real size.
//!
//! Content is always rebuilt through [`crate::rebuild`], which checks length and BLAKE3
//! against the file id; the manifest's size is checked against the pointer before a byte is
//! written.

pub mod hydrate;
pub mod prepared;
pub mod stat_record;

pub use hydrate::{hydrate_file, read_pointer_file, HydrateError, Hydrated};
pub use prepared::{Prepared, Preparer};
