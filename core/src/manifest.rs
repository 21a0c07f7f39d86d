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
//!
//! Version 3 is for files laid out from slices of chunks (video-aware chunking stores each
//! track's samples as a stream of its own, so a file is container bytes and runs of samples
//! interleaved; see `media_ingest`). Its groups list *pieces*, and the top level carries the
//! file's media description:
//!
//! ```text
//! top v3: as v2 with version 3, then | media length u32 | media info (`media::MediaInfo`)
//!         before the checksum
//! group:  "DITSGRP2" | piece count u32 | count × (chunk id [32], chunk length u32,
//!         start u32, length u32)
//! ```

use std::collections::HashMap;

use crate::chunker::{ChunkerParams, ALGORITHM_FASTCDC_2020};
use crate::id::{ChunkId, FileId};
use crate::media::MediaInfo;

const MAGIC: &[u8; 8] = b"DITSMANI";
const VERSION: u8 = 2;
const VERSION_SLICED: u8 = 3;
const CHECKSUM_CONTEXT: &str = "dits 2026-11 manifest v2";
const HEADER_LEN: usize = 8 + 1 + 1 + 2 + 12 + 32 + 8 + 4;
const GROUP_REF_LEN: usize = 32 + 4 + 8;
const GROUP_MAGIC: &[u8; 8] = b"DITSGRP1";
const ENTRY_LEN: usize = 36;
const PIECE_GROUP_MAGIC: &[u8; 8] = b"DITSGRP2";
const PIECE_ENTRY_LEN: usize = 44;
/// A group ends after a chunk whose id starts with a multiple of this (as u16)...
const GROUP_DIVISOR: u16 = 64;
/// ...or once it has this many chunks.
const GROUP_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub id: ChunkId,
    pub len: u32,
}

/// A slice of `Manifest::chunks[chunk]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub chunk: u32,
    pub start: u32,
    pub len: u32,
}

/// A byte range of one chunk: the file is its manifest's spans end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub chunk: ChunkRef,
    pub start: u32,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub file_id: FileId,
    pub size: u64,
    pub params: ChunkerParams,
    /// Without `pieces`: the file's chunks end to end (a chunk may repeat). With them: the
    /// distinct chunks the pieces cut from, in first-use order.
    pub chunks: Vec<ChunkRef>,
    /// When not empty, the file is these slices of `chunks` end to end.
    pub pieces: Vec<Piece>,
    /// What the file is, if it parsed as media.
    pub media: Option<MediaInfo>,
}

/// The spans of a manifest, in file order; see [`Manifest::spans`].
pub struct Spans<'a> {
    m: &'a Manifest,
    next: usize,
}

impl Iterator for Spans<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        let span = self.m.span(self.next)?;
        self.next += 1;
        Some(span)
    }
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
    /// Version 3: the groups list pieces (`DITSGRP2`).
    pub sliced: bool,
    pub media: Option<MediaInfo>,
}

/// A manifest ready to store: the group objects (to put in the chunk store first) and the
/// top-level bytes.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub groups: Vec<(ChunkId, Vec<u8>)>,
    pub top: Vec<u8>,
    /// What the top level says of each group, in order.
    pub refs: Vec<GroupRef>,
    /// The chunks each group refers to, in order (a chunk may be listed more than once).
    pub members: Vec<Vec<ChunkRef>>,
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
    /// A file that is its chunks end to end.
    pub fn plain(file_id: FileId, size: u64, params: ChunkerParams, chunks: Vec<ChunkRef>) -> Self {
        Manifest {
            file_id,
            size,
            params,
            chunks,
            pieces: Vec::new(),
            media: None,
        }
    }

    /// The byte ranges of chunks that make up the file, in order.
    pub fn spans(&self) -> Spans<'_> {
        Spans { m: self, next: 0 }
    }

    /// Span `i` of [`Manifest::spans`].
    pub fn span(&self, i: usize) -> Option<Span> {
        if self.pieces.is_empty() {
            let c = *self.chunks.get(i)?;
            Some(Span {
                chunk: c,
                start: 0,
                len: c.len,
            })
        } else {
            let p = self.pieces.get(i)?;
            Some(Span {
                chunk: *self.chunks.get(p.chunk as usize)?,
                start: p.start,
                len: p.len,
            })
        }
    }

    pub fn encode(&self) -> Encoded {
        let sliced = !self.pieces.is_empty() || self.media.is_some();
        let (magic, entry_len) = if sliced {
            (PIECE_GROUP_MAGIC, PIECE_ENTRY_LEN)
        } else {
            (GROUP_MAGIC, ENTRY_LEN)
        };
        let mut groups = Vec::new();
        let mut refs = Vec::new();
        let mut members = Vec::new();
        let mut current: Vec<Span> = Vec::new();
        let mut flush = |current: &mut Vec<Span>| {
            if current.is_empty() {
                return;
            }
            let mut g = Vec::with_capacity(12 + current.len() * entry_len);
            g.extend_from_slice(magic);
            g.extend_from_slice(&(current.len() as u32).to_le_bytes());
            for s in current.iter() {
                g.extend_from_slice(s.chunk.id.as_bytes());
                g.extend_from_slice(&s.chunk.len.to_le_bytes());
                if sliced {
                    g.extend_from_slice(&s.start.to_le_bytes());
                    g.extend_from_slice(&s.len.to_le_bytes());
                }
            }
            let id = ChunkId::of(&g);
            refs.push(GroupRef {
                id,
                chunks: current.len() as u32,
                bytes: current.iter().map(|s| u64::from(s.len)).sum(),
            });
            members.push(current.iter().map(|s| s.chunk).collect());
            groups.push((id, g));
            current.clear();
        };
        for s in self.spans() {
            current.push(s);
            if ends_group(&s.chunk.id, current.len()) {
                flush(&mut current);
            }
        }
        flush(&mut current);

        let media = self
            .media
            .as_ref()
            .map(MediaInfo::encode)
            .unwrap_or_default();
        let mut top =
            Vec::with_capacity(HEADER_LEN + refs.len() * GROUP_REF_LEN + 4 + media.len() + 32);
        top.extend_from_slice(MAGIC);
        top.push(if sliced { VERSION_SLICED } else { VERSION });
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
        if sliced {
            top.extend_from_slice(&(media.len() as u32).to_le_bytes());
            top.extend_from_slice(&media);
        }
        let sum = checksum(&top);
        top.extend_from_slice(&sum);
        Encoded {
            groups,
            top,
            refs,
            members,
        }
    }

    /// Rebuilds the manifest from its top level and the bytes of each group, in order.
    /// Group bytes must already be verified against their ids (the store does that).
    pub fn assemble(top: TopManifest, groups: &[Vec<u8>]) -> Result<Manifest, ManifestError> {
        if groups.len() != top.groups.len() {
            return Err(ManifestError::Inconsistent("wrong number of groups"));
        }
        let mut chunks = Vec::new();
        let mut pieces = Vec::new();
        let mut index: HashMap<ChunkId, u32> = HashMap::new();
        for (r, g) in top.groups.iter().zip(groups) {
            for (chunk, start, len) in top.group_entries(r, g)? {
                if !top.sliced {
                    chunks.push(chunk);
                    continue;
                }
                let i = *index.entry(chunk.id).or_insert_with(|| {
                    chunks.push(chunk);
                    (chunks.len() - 1) as u32
                });
                if chunks[i as usize].len != chunk.len {
                    return Err(ManifestError::Inconsistent(
                        "one chunk listed with two lengths",
                    ));
                }
                pieces.push(Piece {
                    chunk: i,
                    start,
                    len,
                });
            }
        }
        Ok(Manifest {
            file_id: top.file_id,
            size: top.size,
            params: top.params,
            chunks,
            pieces,
            media: top.media,
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
        let sliced = match bytes[8] {
            VERSION => false,
            VERSION_SLICED => true,
            v => return Err(ManifestError::UnknownVersion(v)),
        };
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
        let groups_end = HEADER_LEN.saturating_add(count.saturating_mul(GROUP_REF_LEN));
        let media = if sliced {
            let media_len = body
                .get(groups_end..groups_end.saturating_add(4))
                .ok_or(ManifestError::BadLength { len: bytes.len() })?;
            let media_len = u32::from_le_bytes(media_len.try_into().expect("4 bytes")) as usize;
            if body.len() != groups_end + 4 + media_len {
                return Err(bad_len);
            }
            match media_len {
                0 => None,
                _ => Some(
                    MediaInfo::decode(&body[groups_end + 4..])
                        .ok_or(ManifestError::Inconsistent("unreadable media description"))?,
                ),
            }
        } else {
            if body.len() != groups_end {
                return Err(bad_len);
            }
            None
        };
        let groups: Vec<GroupRef> = body[HEADER_LEN..groups_end]
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
            sliced,
            media,
        })
    }

    /// The entries of group `r`'s object `g` (verified against its id by the caller): each
    /// chunk with the slice of it the file uses (the whole chunk unless the manifest is
    /// sliced). Checks the entry count, lengths and byte total against the top level.
    pub fn group_entries(
        &self,
        r: &GroupRef,
        g: &[u8],
    ) -> Result<Vec<(ChunkRef, u32, u32)>, ManifestError> {
        let (magic, entry_len) = if self.sliced {
            (PIECE_GROUP_MAGIC, PIECE_ENTRY_LEN)
        } else {
            (GROUP_MAGIC, ENTRY_LEN)
        };
        if g.len() < 12 || &g[..8] != magic {
            return Err(ManifestError::Inconsistent(
                "a group object is not a chunk list",
            ));
        }
        let n = u32_at(g, 8) as usize;
        if n != r.chunks as usize || g.len() != 12 + n.saturating_mul(entry_len) {
            return Err(ManifestError::Inconsistent(
                "a group's chunk count does not match",
            ));
        }
        let mut out = Vec::with_capacity(n);
        let mut bytes = 0u64;
        for e in g[12..].chunks_exact(entry_len) {
            let chunk = ChunkRef {
                id: ChunkId(e[..32].try_into().expect("32 bytes")),
                len: u32_at(e, 32),
            };
            if chunk.len == 0 || chunk.len > self.params.max {
                return Err(ManifestError::Inconsistent("chunk length out of bounds"));
            }
            let (start, len) = if self.sliced {
                (u32_at(e, 36), u32_at(e, 40))
            } else {
                (0, chunk.len)
            };
            if len == 0 || u64::from(start) + u64::from(len) > u64::from(chunk.len) {
                return Err(ManifestError::Inconsistent(
                    "a piece lies outside its chunk",
                ));
            }
            bytes += u64::from(len);
            out.push((chunk, start, len));
        }
        if bytes != r.bytes {
            return Err(ManifestError::Inconsistent(
                "a group's byte length does not match",
            ));
        }
        Ok(out)
    }

    /// The size of group `g`'s object (its header and one entry per chunk or piece).
    pub fn group_object_len(&self, g: &GroupRef) -> u64 {
        let entry = if self.sliced {
            PIECE_ENTRY_LEN
        } else {
            ENTRY_LEN
        };
        12 + u64::from(g.chunks) * entry as u64
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
        Manifest::plain(
            FileId::of(&n.to_le_bytes()),
            chunks.iter().map(|c| u64::from(c.len)).sum(),
            ChunkerParams::default(),
            chunks,
        )
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

    /// Two interleaved streams cut into pieces, with a media description.
    fn sliced() -> Manifest {
        let mut m = manifest(40);
        m.pieces = (0..400u32)
            .map(|i| Piece {
                chunk: (i % 2) * 20 + i / 20,
                start: (i / 2 % 10) * 100,
                len: 100,
            })
            .collect();
        m.size = 400 * 100;
        m.media = Some(MediaInfo {
            brand: crate::media::FourCc(*b"isom"),
            fragmented: false,
            duration_ms: 1234,
            tracks: Vec::new(),
        });
        m
    }

    #[test]
    fn sliced_manifests_round_trip_and_reject_bad_pieces() {
        let m = sliced();
        let enc = m.encode();
        assert_eq!(enc.top[8], VERSION_SLICED);
        // Decoding lists chunks in first-use order; the file and the encoding are the same.
        let back = round_trip(&m).expect("round trip");
        assert!(back.spans().eq(m.spans()));
        assert_eq!((back.size, &back.media), (m.size, &m.media));
        assert!(back.encode().top == enc.top);
        assert_eq!(m.spans().count(), 400);
        assert_eq!(m.spans().map(|s| u64::from(s.len)).sum::<u64>(), m.size);
        // Every group lists the chunks its pieces use, for uploads.
        let listed: std::collections::HashSet<ChunkId> =
            enc.members.iter().flatten().map(|c| c.id).collect();
        assert_eq!(listed.len(), 40);
        for i in 0..enc.top.len() {
            let mut b = enc.top.clone();
            b[i] ^= 0x04;
            assert!(TopManifest::decode(&b).is_err(), "bit flip at {i} accepted");
        }
        let top = TopManifest::decode(&enc.top).expect("valid");
        let group = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut groups: Vec<Vec<u8>> = enc.groups.iter().map(|g| g.1.clone()).collect();
            edit(&mut groups[0]);
            Manifest::assemble(top.clone(), &groups)
        };
        assert!(group(&|_| {}).is_ok());
        // A piece past its chunk's end.
        assert!(group(&|g| g[12 + 36..12 + 40].copy_from_slice(&2000u32.to_le_bytes())).is_err());
        // The same chunk with another length.
        assert!(group(&|g| {
            let first = g[12..12 + 32].to_vec();
            g[12 + 44..12 + 44 + 32].copy_from_slice(&first);
        })
        .is_err());
        assert_eq!(
            top.group_object_len(&top.groups[0]),
            enc.groups[0].1.len() as u64
        );
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
