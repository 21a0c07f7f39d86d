//! The manifest: how to rebuild one file from chunks. Stored in the side store under the
//! file's [`FileId`]; the pointer in Git only names that id.
//!
//! A flat chunk list costs 36 bytes per 64 KiB chunk (~470 KiB for 1 GiB), and every new
//! version of a file would store it again whole, so a 100-byte edit would cost half a
//! megabyte. Instead the list is cut into *groups* at content-defined points (after a chunk
//! whose id's first two bytes are 0 mod 64, so ~64 chunks a group, at most 256) and each group
//! is stored as an object in the chunk store, deduplicated like any chunk. An edit changes
//! the one or two groups around it; the top-level manifest lists groups only (~7 KiB/GiB).
//! Layouts (integers little-endian), specified in docs/store-format.md:
//!
//! ```text
//! top:   "DITSMANI" | version u8 = 2 | algorithm u8 | 0u16 | min u32 | avg u32 | max u32
//!        file id [32] | size u64 | group count u32
//!        group count × (group id [32], chunk count u32, byte length u64)
//!        checksum [32] = BLAKE3 derive-key("dits 2026-11 manifest v2") of everything before it
//! group: "DITSGRP1" | chunk count u32 | count × (chunk id [32], length u32)
//! ```

use crate::chunker::{ChunkerParams, ALGORITHM_FASTCDC_2020};
use crate::id::{ChunkId, FileId};

const MAGIC: &[u8; 8] = b"DITSMANI";
const VERSION: u8 = 2;
const CHECKSUM_CONTEXT: &str = "dits 2026-11 manifest v2";
const HEADER_LEN: usize = 8 + 1 + 1 + 2 + 12 + 32 + 8 + 4;
const GROUP_REF_LEN: usize = 32 + 4 + 8;
const GROUP_MAGIC: &[u8; 8] = b"DITSGRP1";
const ENTRY_LEN: usize = 36;
/// A group ends after a chunk whose id starts with a multiple of this (as u16)...
const GROUP_DIVISOR: u16 = 64;
/// ...or once it has this many chunks.
const GROUP_MAX: usize = 256;

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

/// One group as the top-level manifest lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRef {
    pub id: ChunkId,
    pub chunks: u32,
    pub bytes: u64,
}

/// A decoded top-level manifest, before its groups are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopManifest {
    pub file_id: FileId,
    pub size: u64,
    pub params: ChunkerParams,
    pub groups: Vec<GroupRef>,
}

/// A manifest ready to store: the group objects (to put in the chunk store first) and the
/// top-level bytes.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub groups: Vec<(ChunkId, Vec<u8>)>,
    pub top: Vec<u8>,
    /// What the top level says of each group, in order (chunk counts cut the chunk list).
    pub refs: Vec<GroupRef>,
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

fn ends_group(id: &ChunkId, len_so_far: usize) -> bool {
    u16::from_le_bytes([id.0[0], id.0[1]]) % GROUP_DIVISOR == 0 || len_so_far >= GROUP_MAX
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

impl Manifest {
    pub fn encode(&self) -> Encoded {
        let mut groups = Vec::new();
        let mut refs = Vec::new();
        let mut current: Vec<ChunkRef> = Vec::new();
        let mut flush = |current: &mut Vec<ChunkRef>| {
            if current.is_empty() {
                return;
            }
            let mut g = Vec::with_capacity(12 + current.len() * ENTRY_LEN);
            g.extend_from_slice(GROUP_MAGIC);
            g.extend_from_slice(&(current.len() as u32).to_le_bytes());
            for c in current.iter() {
                g.extend_from_slice(c.id.as_bytes());
                g.extend_from_slice(&c.len.to_le_bytes());
            }
            let id = ChunkId::of(&g);
            refs.push(GroupRef {
                id,
                chunks: current.len() as u32,
                bytes: current.iter().map(|c| u64::from(c.len)).sum(),
            });
            groups.push((id, g));
            current.clear();
        };
        for c in &self.chunks {
            current.push(*c);
            if ends_group(&c.id, current.len()) {
                flush(&mut current);
            }
        }
        flush(&mut current);

        let mut top = Vec::with_capacity(HEADER_LEN + refs.len() * GROUP_REF_LEN + 32);
        top.extend_from_slice(MAGIC);
        top.push(VERSION);
        top.push(ALGORITHM_FASTCDC_2020);
        top.extend_from_slice(&0u16.to_le_bytes());
        for v in [self.params.min, self.params.avg, self.params.max] {
            top.extend_from_slice(&v.to_le_bytes());
        }
        top.extend_from_slice(self.file_id.as_bytes());
        top.extend_from_slice(&self.size.to_le_bytes());
        let count = u32::try_from(refs.len()).expect("group count fits u32");
        top.extend_from_slice(&count.to_le_bytes());
        for r in &refs {
            top.extend_from_slice(r.id.as_bytes());
            top.extend_from_slice(&r.chunks.to_le_bytes());
            top.extend_from_slice(&r.bytes.to_le_bytes());
        }
        let sum = checksum(&top);
        top.extend_from_slice(&sum);
        Encoded { groups, top, refs }
    }

    /// Rebuilds the manifest from its top level and the bytes of each group, in order.
    /// Group bytes must already be verified against their ids (the store does that).
    pub fn assemble(top: TopManifest, groups: &[Vec<u8>]) -> Result<Manifest, ManifestError> {
        if groups.len() != top.groups.len() {
            return Err(ManifestError::Inconsistent("wrong number of groups"));
        }
        let mut chunks = Vec::new();
        for (r, g) in top.groups.iter().zip(groups) {
            if g.len() < 12 || &g[..8] != GROUP_MAGIC {
                return Err(ManifestError::Inconsistent(
                    "a group object is not a chunk list",
                ));
            }
            let n = u32_at(g, 8) as usize;
            if n != r.chunks as usize || g.len() != 12 + n.saturating_mul(ENTRY_LEN) {
                return Err(ManifestError::Inconsistent(
                    "a group's chunk count does not match",
                ));
            }
            let mut bytes = 0u64;
            for e in g[12..].chunks_exact(ENTRY_LEN) {
                let len = u32_at(e, 32);
                if len == 0 || len > top.params.max {
                    return Err(ManifestError::Inconsistent("chunk length out of bounds"));
                }
                bytes += u64::from(len);
                chunks.push(ChunkRef {
                    id: ChunkId(e[..32].try_into().expect("32 bytes")),
                    len,
                });
            }
            if bytes != r.bytes {
                return Err(ManifestError::Inconsistent(
                    "a group's byte length does not match",
                ));
            }
        }
        Ok(Manifest {
            file_id: top.file_id,
            size: top.size,
            params: top.params,
            chunks,
        })
    }
}

impl TopManifest {
    pub fn decode(bytes: &[u8]) -> Result<TopManifest, ManifestError> {
        let bad_len = ManifestError::BadLength { len: bytes.len() };
        if bytes.len() < HEADER_LEN + 32 {
            return Err(bad_len);
        }
        if &bytes[..8] != MAGIC {
            return Err(ManifestError::BadMagic);
        }
        if bytes[8] != VERSION {
            return Err(ManifestError::UnknownVersion(bytes[8]));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if checksum(body) != sum {
            return Err(ManifestError::Checksum);
        }
        if bytes[9] != ALGORITHM_FASTCDC_2020 {
            return Err(ManifestError::UnknownAlgorithm(bytes[9]));
        }
        let params = ChunkerParams {
            min: u32_at(bytes, 12),
            avg: u32_at(bytes, 16),
            max: u32_at(bytes, 20),
        };
        if !params.is_valid() {
            return Err(ManifestError::Inconsistent("invalid chunker parameters"));
        }
        let file_id = FileId(bytes[24..56].try_into().expect("32 bytes"));
        let size = u64_at(bytes, 56);
        let count = u32_at(bytes, 64) as usize;
        // Checked before allocating so a hostile count cannot ask for gigabytes.
        if body.len() != HEADER_LEN + count.saturating_mul(GROUP_REF_LEN) {
            return Err(bad_len);
        }
        let groups: Vec<GroupRef> = body[HEADER_LEN..]
            .chunks_exact(GROUP_REF_LEN)
            .map(|e| GroupRef {
                id: ChunkId(e[..32].try_into().expect("32 bytes")),
                chunks: u32_at(e, 32),
                bytes: u64_at(e, 36),
            })
            .collect();
        if groups.iter().map(|g| g.bytes).sum::<u64>() != size {
            return Err(ManifestError::Inconsistent(
                "group lengths do not add up to the size",
            ));
        }
        Ok(TopManifest {
            file_id,
            size,
            params,
            groups,
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
    use std::collections::HashMap;

    fn manifest(n: u32) -> Manifest {
        let chunks: Vec<ChunkRef> = (0..n)
            .map(|i| ChunkRef {
                id: ChunkId::of(&i.to_le_bytes()),
                len: 1000 + i,
            })
            .collect();
        Manifest {
            file_id: FileId::of(&n.to_le_bytes()),
            size: chunks.iter().map(|c| u64::from(c.len)).sum(),
            params: ChunkerParams::default(),
            chunks,
        }
    }

    fn round_trip(m: &Manifest) -> Result<Manifest, ManifestError> {
        let enc = m.encode();
        let store: HashMap<ChunkId, Vec<u8>> = enc.groups.into_iter().collect();
        let top = TopManifest::decode(&enc.top)?;
        let groups: Vec<Vec<u8>> = top.groups.iter().map(|g| store[&g.id].clone()).collect();
        Manifest::assemble(top, &groups)
    }

    #[test]
    fn round_trip_small_large_and_empty() {
        for n in [0, 1, 2, 300, 20_000] {
            let m = manifest(n);
            assert_eq!(round_trip(&m), Ok(m.clone()), "{n} chunks");
        }
    }

    #[test]
    fn groups_are_bounded_and_an_edit_changes_few_of_them() {
        let m = manifest(16_384); // a 1 GiB file's worth of 64 KiB chunks
        let a = m.encode();
        assert!(a
            .groups
            .iter()
            .all(|(_, g)| g.len() <= 12 + GROUP_MAX * ENTRY_LEN));
        assert!(a.top.len() < 32 * 1024, "top level {} bytes", a.top.len());
        let mut edited = m.clone();
        edited.chunks[8000] = ChunkRef {
            id: ChunkId::of(b"new"),
            len: 1234,
        };
        edited.chunks.insert(
            100,
            ChunkRef {
                id: ChunkId::of(b"ins"),
                len: 99,
            },
        );
        let b = edited.encode();
        let old: std::collections::HashSet<ChunkId> = a.groups.iter().map(|g| g.0).collect();
        let new_groups = b.groups.iter().filter(|g| !old.contains(&g.0)).count();
        assert!(new_groups <= 4, "{new_groups} groups changed for two edits");
    }

    #[test]
    fn detects_corruption_of_the_top_level() {
        let bytes = manifest(40).encode().top;
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(TopManifest::decode(&b).is_err(), "bit flip at {i} accepted");
        }
        for n in 0..bytes.len() {
            assert!(
                TopManifest::decode(&bytes[..n]).is_err(),
                "truncation to {n} accepted"
            );
        }
    }

    #[test]
    fn mismatched_groups_are_rejected() {
        let m = manifest(500);
        let enc = m.encode();
        let top = TopManifest::decode(&enc.top).expect("valid");
        let mut groups: Vec<Vec<u8>> = enc.groups.iter().map(|g| g.1.clone()).collect();
        groups.swap(0, 1);
        assert!(Manifest::assemble(top.clone(), &groups).is_err());
        groups.pop();
        assert!(Manifest::assemble(top, &groups).is_err());
    }

    #[test]
    fn hostile_count_is_rejected_without_allocating() {
        let mut b = manifest(3).encode().top;
        b[64..68].copy_from_slice(&u32::MAX.to_le_bytes());
        let body_len = b.len() - 32;
        let sum = checksum(&b[..body_len]);
        b[body_len..].copy_from_slice(&sum);
        assert!(matches!(
            TopManifest::decode(&b),
            Err(ManifestError::BadLength { .. })
        ));
    }
}
