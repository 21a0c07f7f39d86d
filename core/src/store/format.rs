//! On-disk formats of packs and pack indexes (see docs/store-format.md).
//!
//! A pack is append-only: a 16-byte header, then records `id | flags | raw len | stored len |
//! payload`. Its index lists the records that are durable, sorted by id, with a checksum; the
//! index is rewritten whole and renamed into place, so readers see either the old or the new
//! list, and bytes past the last indexed record (a crash mid-write) are simply ignored.

use crate::id::ChunkId;

pub const PACK_MAGIC: &[u8; 8] = b"DITSPACK";
pub const PACK_VERSION: u32 = 1;
pub const PACK_HEADER_LEN: u64 = 16;
pub const RECORD_HEADER_LEN: usize = 32 + 1 + 4 + 4;
/// Record flag: payload is a zstd frame.
pub const FLAG_ZSTD: u8 = 1;

pub const IDX_MAGIC: &[u8; 8] = b"DITSIDX\0";
pub const IDX_VERSION: u32 = 1;
const IDX_HEADER_LEN: usize = 8 + 4 + 4 + 8;
const IDX_ENTRY_LEN: usize = 32 + 8 + 4 + 4 + 1;

pub fn pack_header() -> [u8; PACK_HEADER_LEN as usize] {
    let mut h = [0u8; PACK_HEADER_LEN as usize];
    h[..8].copy_from_slice(PACK_MAGIC);
    h[8..12].copy_from_slice(&PACK_VERSION.to_le_bytes());
    h
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub id: ChunkId,
    pub flags: u8,
    pub raw_len: u32,
    pub stored_len: u32,
}

impl RecordHeader {
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        b[..32].copy_from_slice(self.id.as_bytes());
        b[32] = self.flags;
        b[33..37].copy_from_slice(&self.raw_len.to_le_bytes());
        b[37..41].copy_from_slice(&self.stored_len.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; RECORD_HEADER_LEN]) -> RecordHeader {
        RecordHeader {
            id: ChunkId(b[..32].try_into().expect("32 bytes")),
            flags: b[32],
            raw_len: u32::from_le_bytes(b[33..37].try_into().expect("4 bytes")),
            stored_len: u32::from_le_bytes(b[37..41].try_into().expect("4 bytes")),
        }
    }
}

/// Where a record lives in its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxEntry {
    pub id: ChunkId,
    /// Offset of the record header.
    pub offset: u64,
    pub raw_len: u32,
    pub stored_len: u32,
    pub flags: u8,
}

impl IdxEntry {
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.stored_len)
    }
}

/// A validated pack index, kept as its raw bytes and searched in place (no per-entry
/// allocation, so opening a store with millions of chunks stays cheap).
#[derive(Debug, Clone)]
pub struct PackIndex {
    bytes: Vec<u8>,
    count: usize,
    pack_len: u64,
}

impl PackIndex {
    /// Serialises `entries` (sorted here) for a pack whose durable length is `pack_len`.
    pub fn encode(entries: &mut [IdxEntry], pack_len: u64) -> Vec<u8> {
        entries.sort_unstable_by_key(|e| e.id);
        let mut out = Vec::with_capacity(IDX_HEADER_LEN + entries.len() * IDX_ENTRY_LEN + 32);
        out.extend_from_slice(IDX_MAGIC);
        out.extend_from_slice(&IDX_VERSION.to_le_bytes());
        let count = u32::try_from(entries.len()).expect("a pack holds far fewer than 2^32 chunks");
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&pack_len.to_le_bytes());
        for e in entries.iter() {
            out.extend_from_slice(e.id.as_bytes());
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.raw_len.to_le_bytes());
            out.extend_from_slice(&e.stored_len.to_le_bytes());
            out.push(e.flags);
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// The index of a pack with no records indexed (one its writer has not published yet).
    pub fn empty() -> PackIndex {
        let bytes = Self::encode(&mut [], PACK_HEADER_LEN);
        PackIndex {
            bytes,
            count: 0,
            pack_len: PACK_HEADER_LEN,
        }
    }

    /// Parses and fully validates an index: checksum, sort order, and that every record lies
    /// inside the durable part of the pack.
    pub fn decode(bytes: Vec<u8>) -> Result<PackIndex, String> {
        if bytes.len() < IDX_HEADER_LEN + 32 {
            return Err(format!("too short ({} bytes)", bytes.len()));
        }
        if &bytes[..8] != IDX_MAGIC {
            return Err("bad magic".into());
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != IDX_VERSION {
            return Err(format!("unsupported index version {version}"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != sum {
            return Err("checksum mismatch".into());
        }
        let count = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
        let pack_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        if body.len() != IDX_HEADER_LEN + count * IDX_ENTRY_LEN {
            return Err("length does not match entry count".into());
        }
        let idx = PackIndex {
            bytes,
            count,
            pack_len,
        };
        let mut prev: Option<ChunkId> = None;
        for e in idx.iter() {
            if prev.is_some_and(|p| p >= e.id) {
                return Err("entries not sorted".into());
            }
            if e.offset < PACK_HEADER_LEN || e.offset + e.record_len() > pack_len {
                return Err(format!("entry {} points outside the pack", e.id));
            }
            prev = Some(e.id);
        }
        Ok(idx)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Length of the pack prefix this index covers.
    pub fn pack_len(&self) -> u64 {
        self.pack_len
    }

    pub fn entry(&self, i: usize) -> IdxEntry {
        let e = &self.bytes[IDX_HEADER_LEN + i * IDX_ENTRY_LEN..][..IDX_ENTRY_LEN];
        IdxEntry {
            id: ChunkId(e[..32].try_into().expect("32 bytes")),
            offset: u64::from_le_bytes(e[32..40].try_into().expect("8 bytes")),
            raw_len: u32::from_le_bytes(e[40..44].try_into().expect("4 bytes")),
            stored_len: u32::from_le_bytes(e[44..48].try_into().expect("4 bytes")),
            flags: e[48],
        }
    }

    fn id_at(&self, i: usize) -> &[u8] {
        &self.bytes[IDX_HEADER_LEN + i * IDX_ENTRY_LEN..][..32]
    }

    pub fn find(&self, id: &ChunkId) -> Option<IdxEntry> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.id_at(mid).cmp(id.as_bytes().as_slice()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.entry(mid)),
            }
        }
        None
    }

    pub fn iter(&self) -> impl Iterator<Item = IdxEntry> + '_ {
        (0..self.count).map(|i| self.entry(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u32) -> Vec<IdxEntry> {
        let mut off = PACK_HEADER_LEN;
        (0..n)
            .map(|i| {
                let e = IdxEntry {
                    id: ChunkId::of(&i.to_le_bytes()),
                    offset: off,
                    raw_len: 100 + i,
                    stored_len: 100 + i,
                    flags: 0,
                };
                off += e.record_len();
                e
            })
            .collect()
    }

    #[test]
    fn index_round_trip_and_lookup() {
        let mut es = entries(50);
        let end = es
            .iter()
            .map(|e| e.offset + e.record_len())
            .max()
            .unwrap_or(0);
        let idx = PackIndex::decode(PackIndex::encode(&mut es, end)).expect("valid index");
        assert_eq!(idx.len(), 50);
        for e in &es {
            assert_eq!(idx.find(&e.id), Some(*e));
        }
        assert_eq!(idx.find(&ChunkId::of(b"absent")), None);
    }

    #[test]
    fn index_rejects_damage() {
        let mut es = entries(5);
        let end = es
            .iter()
            .map(|e| e.offset + e.record_len())
            .max()
            .unwrap_or(0);
        let bytes = PackIndex::encode(&mut es, end);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(PackIndex::decode(b).is_err(), "flip at {i} accepted");
        }
        assert!(PackIndex::decode(bytes[..bytes.len() - 1].to_vec()).is_err());
        // An index claiming records beyond its pack length is refused.
        let short = PackIndex::encode(&mut es, end - 1);
        assert!(PackIndex::decode(short).is_err());
    }

    #[test]
    fn record_header_round_trip() {
        let h = RecordHeader {
            id: ChunkId::of(b"x"),
            flags: FLAG_ZSTD,
            raw_len: 65536,
            stored_len: 1234,
        };
        assert_eq!(RecordHeader::decode(&h.encode()), h);
    }
}
