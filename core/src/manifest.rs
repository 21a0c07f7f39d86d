//! The manifest: how to rebuild one file from chunks. Stored in the side store under the
//! file's [`FileId`]; the pointer in Git only names that id. Binary layout (all integers
//! little-endian), specified in docs/store-format.md:
//!
//! ```text
//! "DITSMANI" | version u8 = 1 | algorithm u8 | 0u16 | min u32 | avg u32 | max u32
//! file id [32] | size u64 | count u32 | count × (chunk id [32], length u32)
//! checksum [32] = BLAKE3 derive-key("dits 2026-11 manifest v1") of everything before it
//! ```

use crate::chunker::{ChunkerParams, ALGORITHM_FASTCDC_2020};
use crate::id::{ChunkId, FileId};

const MAGIC: &[u8; 8] = b"DITSMANI";
const VERSION: u8 = 1;
const CHECKSUM_CONTEXT: &str = "dits 2026-11 manifest v1";
const HEADER_LEN: usize = 8 + 1 + 1 + 2 + 12 + 32 + 8 + 4;
const ENTRY_LEN: usize = 36;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub id: ChunkId,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub file_id: FileId,
    pub size: u64,
    pub params: ChunkerParams,
    pub chunks: Vec<ChunkRef>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is truncated or has trailing bytes ({len} bytes)")]
    BadLength { len: usize },
    #[error("not a manifest (bad magic)")]
    BadMagic,
    #[error("manifest version {0} is not supported; hint: upgrade git-dits")]
    UnknownVersion(u8),
    #[error("manifest uses unknown chunker algorithm {0}; hint: upgrade git-dits")]
    UnknownAlgorithm(u8),
    #[error("manifest checksum mismatch (corrupted on disk)")]
    Checksum,
    #[error("manifest is inconsistent: {0}")]
    Inconsistent(&'static str),
}

impl Manifest {
    /// Byte offset of each chunk's start, plus the total at the end.
    pub fn offsets(&self) -> impl Iterator<Item = u64> + '_ {
        self.chunks.iter().scan(0u64, |acc, c| {
            let start = *acc;
            *acc += u64::from(c.len);
            Some(start)
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.chunks.len() * ENTRY_LEN + 32);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(ALGORITHM_FASTCDC_2020);
        out.extend_from_slice(&0u16.to_le_bytes());
        for v in [self.params.min, self.params.avg, self.params.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(self.file_id.as_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        let count = u32::try_from(self.chunks.len())
            .expect("chunk count fits u32 (16 TiB at 4 KiB chunks)");
        out.extend_from_slice(&count.to_le_bytes());
        for c in &self.chunks {
            out.extend_from_slice(c.id.as_bytes());
            out.extend_from_slice(&c.len.to_le_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let bad_len = ManifestError::BadLength { len: bytes.len() };
        if bytes.len() < HEADER_LEN + 32 {
            return Err(bad_len);
        }
        if &bytes[..8] != MAGIC {
            return Err(ManifestError::BadMagic);
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if bytes[8] != VERSION {
            return Err(ManifestError::UnknownVersion(bytes[8]));
        }
        if checksum(body) != sum {
            return Err(ManifestError::Checksum);
        }
        if bytes[9] != ALGORITHM_FASTCDC_2020 {
            return Err(ManifestError::UnknownAlgorithm(bytes[9]));
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let params = ChunkerParams {
            min: u32_at(12),
            avg: u32_at(16),
            max: u32_at(20),
        };
        if !params.is_valid() {
            return Err(ManifestError::Inconsistent("invalid chunker parameters"));
        }
        let file_id = FileId(bytes[24..56].try_into().expect("32 bytes"));
        let size = u64::from_le_bytes(bytes[56..64].try_into().expect("8 bytes"));
        let count = u32_at(64) as usize;
        // Checked before allocating so a hostile count cannot ask for gigabytes.
        if body.len() != HEADER_LEN + count.saturating_mul(ENTRY_LEN) {
            return Err(bad_len);
        }
        let mut chunks = Vec::with_capacity(count);
        let mut total = 0u64;
        for e in body[HEADER_LEN..].chunks_exact(ENTRY_LEN) {
            let len = u32::from_le_bytes(e[32..36].try_into().expect("4 bytes"));
            if len == 0 || len > params.max {
                return Err(ManifestError::Inconsistent("chunk length out of bounds"));
            }
            total += u64::from(len);
            chunks.push(ChunkRef {
                id: ChunkId(e[..32].try_into().expect("32 bytes")),
                len,
            });
        }
        if total != size {
            return Err(ManifestError::Inconsistent(
                "chunk lengths do not add up to the size",
            ));
        }
        Ok(Manifest {
            file_id,
            size,
            params,
            chunks,
        })
    }
}

fn checksum(body: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(CHECKSUM_CONTEXT);
    h.update(body);
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            file_id: FileId::of(b"abcdef"),
            size: 6,
            params: ChunkerParams::default(),
            chunks: vec![
                ChunkRef {
                    id: ChunkId::of(b"abc"),
                    len: 3,
                },
                ChunkRef {
                    id: ChunkId::of(b"def"),
                    len: 3,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode()), Ok(m.clone()));
        assert_eq!(m.offsets().collect::<Vec<_>>(), vec![0, 3]);
    }

    #[test]
    fn detects_corruption_anywhere() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Manifest::decode(&b).is_err(), "bit flip at {i} accepted");
        }
        for n in 0..bytes.len() {
            assert!(
                Manifest::decode(&bytes[..n]).is_err(),
                "truncation to {n} accepted"
            );
        }
    }

    #[test]
    fn hostile_count_is_rejected_without_allocating() {
        let mut b = sample().encode();
        b[64..68].copy_from_slice(&u32::MAX.to_le_bytes());
        let body_len = b.len() - 32;
        let sum = checksum(&b[..body_len]);
        b[body_len..].copy_from_slice(&sum);
        assert!(matches!(
            Manifest::decode(&b),
            Err(ManifestError::BadLength { .. })
        ));
    }
}
