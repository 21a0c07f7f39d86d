//! Content ids.
//!
//! Two kinds of BLAKE3 names exist and must never be confused:
//! - [`FileId`] is the *plain* BLAKE3 of a whole file, so anyone can check a pointer with `b3sum`.
//! - [`ChunkId`] is BLAKE3 in key-derivation mode with a Dits-specific context, so a chunk id can
//!   never equal a file id, even for a file that is a single chunk.

use std::fmt;
use std::str::FromStr;

/// Context string for chunk ids. Changing it changes every chunk id: never do that.
const CHUNK_CONTEXT: &str = "dits 2026-11 chunk v1";

/// Error for an id that is not 64 lowercase hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid id {input:?}: expected 64 lowercase hex digits")]
pub struct ParseIdError {
    pub input: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The first 12 hex digits, for listings.
            pub fn short(&self) -> String {
                let mut s = self.to_string();
                s.truncate(12);
                s
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex32(s).map($name).ok_or_else(|| ParseIdError { input: s.to_owned() })
            }
        }
    };
}

id_type!(
    /// Name of a chunk: BLAKE3 derive-key hash of its (uncompressed) bytes.
    ChunkId
);
id_type!(
    /// Name of a file's content: plain BLAKE3 of all its bytes (what `b3sum` prints).
    FileId
);

impl ChunkId {
    pub fn of(data: &[u8]) -> ChunkId {
        let mut h = chunk_hasher();
        h.update(data);
        ChunkId(*h.finalize().as_bytes())
    }
}

impl FileId {
    pub fn of(data: &[u8]) -> FileId {
        FileId(*blake3::hash(data).as_bytes())
    }
}

/// A hasher that produces [`ChunkId`]s.
pub fn chunk_hasher() -> blake3::Hasher {
    blake3::Hasher::new_derive_key(CHUNK_CONTEXT)
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

/// Lowercase only: ids have one canonical spelling, so pointers compare byte for byte.
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_id_is_plain_blake3() {
        // b3sum of "abc", computed independently by the reference implementation.
        assert_eq!(
            FileId::of(b"abc").to_string(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
    }

    #[test]
    fn chunk_and_file_ids_are_separate_domains() {
        let data = b"one chunk file";
        assert_ne!(ChunkId::of(data).0, FileId::of(data).0);
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let id = ChunkId::of(b"x");
        assert_eq!(id.to_string().parse::<ChunkId>(), Ok(id));
        assert!("ABC".parse::<ChunkId>().is_err());
        assert!(id.to_string().to_uppercase().parse::<ChunkId>().is_err());
        assert!(format!("{id}0").parse::<ChunkId>().is_err());
        assert_eq!(id.short().len(), 12);
    }
}
