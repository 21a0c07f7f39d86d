//! The one error type of the media parser.

use super::FourCc;

/// Why a media file (or one of its boxes) was rejected. Offsets are absolute file offsets of the
/// box named by `kind` (or of the field, for [`MediaError::Read`]).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The box, or a field inside it, runs past the end of the data that holds it.
    #[error("box `{kind}` at offset {offset} is truncated")]
    Truncated { kind: FourCc, offset: u64 },
    /// The box's size field is impossible (smaller than its own header, or past its parent).
    #[error("box `{kind}` at offset {offset} has an impossible size {size}")]
    BadSize {
        kind: FourCc,
        offset: u64,
        size: u64,
    },
    /// The box (or the count it declares) is beyond what we agree to hold in memory.
    #[error("box `{kind}` at offset {offset} declares {size}, over the limit of {limit}")]
    TooLarge {
        kind: FourCc,
        offset: u64,
        size: u64,
        limit: u64,
    },
    /// A box we need is missing.
    #[error("box `{kind}` is missing inside `{parent}` at offset {offset}")]
    Missing {
        kind: FourCc,
        parent: FourCc,
        offset: u64,
    },
    /// Fields that each parse but contradict each other (or the file length).
    #[error("box `{kind}` at offset {offset}: {what}")]
    Invalid {
        kind: FourCc,
        offset: u64,
        what: &'static str,
    },
    /// The tables of a track disagree with each other.
    #[error("inconsistent media: {0}")]
    Inconsistent(&'static str),
    /// The caller's `read_at` failed.
    #[error("reading {len} bytes at offset {offset}")]
    Read {
        offset: u64,
        len: usize,
        #[source]
        source: std::io::Error,
    },
}
