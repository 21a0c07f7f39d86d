//! Content-defined chunking (FastCDC 2020) over a stream, in large recycled blocks.
//!
//! `fastcdc`'s own `StreamCDC` allocates a `Vec` per chunk and shifts its whole buffer after
//! every cut; on multi-GiB inputs that copying costs as much as the cutting itself. Here we read
//! the stream into big blocks, find every cut inside a block in one pass, and carry only the
//! unfinished tail (< `max` bytes) into the next block. Cut points are identical to
//! `fastcdc::v2020::FastCDC` over the whole input, which a test checks.

use std::io::{self, Read};

use fastcdc::v2020::{self, Normalization};

/// Chunker algorithm tag recorded in manifests.
pub const ALGORITHM_FASTCDC_2020: u8 = 1;

/// Chunk size bounds. Recorded in every manifest so the defaults can change later without
/// making old manifests unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min: 16 * 1024,
            avg: 64 * 1024,
            max: 256 * 1024,
        }
    }
}

impl ChunkerParams {
    /// A quarter of each bound (kept even and within `fastcdc`'s limits): for the small
    /// streams of a media file, whose edits should cost a quarter as much.
    pub fn quarter(&self) -> ChunkerParams {
        let q = |v: u32, lo: usize| ((v / 4) & !1).max(lo as u32);
        ChunkerParams {
            min: q(self.min, v2020::MINIMUM_MIN),
            avg: q(self.avg, v2020::AVERAGE_MIN),
            max: q(self.max, v2020::MAXIMUM_MIN),
        }
    }

    /// Whether `fastcdc` accepts these bounds (it only debug-asserts them itself).
    pub fn is_valid(&self) -> bool {
        let (min, avg, max) = (self.min as usize, self.avg as usize, self.max as usize);
        (v2020::MINIMUM_MIN..=v2020::MINIMUM_MAX).contains(&min)
            && (v2020::AVERAGE_MIN..=v2020::AVERAGE_MAX).contains(&avg)
            && (v2020::MAXIMUM_MIN..=v2020::MAXIMUM_MAX).contains(&max)
            && min <= avg
            && avg <= max
            && min % 2 == 0
            && avg % 2 == 0
            && max % 2 == 0
    }
}

/// Finds cut points with fixed parameters.
#[derive(Debug, Clone)]
pub struct Chunker {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
}

impl Chunker {
    /// Panics on invalid params: callers validate them (manifests are checked when decoded).
    pub fn new(params: ChunkerParams) -> Chunker {
        assert!(params.is_valid(), "invalid chunker params {params:?}");
        let (mask_s, mask_l) = v2020::select_masks(params.avg as usize, Normalization::Level1);
        Chunker {
            params,
            mask_s,
            mask_l,
        }
    }

    /// Length of the chunk that starts at `data[0]`, or `None` if more input is needed to
    /// decide (fewer than `max` bytes are buffered and the stream has not ended).
    pub fn next_cut(&self, data: &[u8], at_eof: bool) -> Option<usize> {
        if data.is_empty() || (!at_eof && data.len() < self.params.max as usize) {
            return None;
        }
        let (_, len) = v2020::cut(
            data,
            self.params.min as usize,
            self.params.avg as usize,
            self.params.max as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
        );
        Some(len)
    }
}

/// A block of input with the chunk boundaries found in it.
#[derive(Debug, Default)]
pub struct Block {
    pub data: Vec<u8>,
    /// End offsets of the chunks in `data`, ascending; the last equals `data.len()`.
    pub ends: Vec<usize>,
}

impl Block {
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let c = &self.data[start..end];
            start = end;
            c
        })
    }
}

/// Default block size: big enough to amortise per-block costs, small enough to keep a few in
/// flight between pipeline stages without noticeable memory.
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// Something that yields [`Block`]s of whole chunks: a plain stream ([`BlockReader`]) or one
/// stream of a media file (`ingest_media`).
pub trait BlockSource {
    /// Fills `block` (reusing its allocations) with the next whole chunks. Returns `false`
    /// once the input is exhausted and nothing was produced.
    fn next_block(&mut self, block: &mut Block) -> io::Result<bool>;
    /// Bytes consumed so far.
    fn total(&self) -> u64;
}

impl<R: Read> BlockSource for BlockReader<R> {
    fn next_block(&mut self, block: &mut Block) -> io::Result<bool> {
        BlockReader::next_block(self, block)
    }
    fn total(&self) -> u64 {
        BlockReader::total(self)
    }
}

/// Splits a reader into [`Block`]s of whole chunks.
pub struct BlockReader<R> {
    reader: R,
    chunker: Chunker,
    block_size: usize,
    /// Bytes read but not yet part of an emitted chunk.
    carry: Vec<u8>,
    eof: bool,
    total: u64,
}

impl<R: Read> BlockReader<R> {
    pub fn new(reader: R, params: ChunkerParams) -> Self {
        Self::with_block_size(reader, params, BLOCK_SIZE)
    }

    pub fn with_block_size(reader: R, params: ChunkerParams, block_size: usize) -> Self {
        let block_size = block_size.max(2 * params.max as usize);
        BlockReader {
            reader,
            chunker: Chunker::new(params),
            block_size,
            carry: Vec::new(),
            eof: false,
            total: 0,
        }
    }

    /// Bytes consumed from the reader so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Fills `block` (reusing its allocations) with the next whole chunks. Returns `false` once
    /// the input is exhausted and nothing was produced.
    pub fn next_block(&mut self, block: &mut Block) -> io::Result<bool> {
        block.data.clear();
        block.ends.clear();
        block.data.append(&mut self.carry);
        if block.data.capacity() < self.block_size {
            block.data.reserve_exact(self.block_size - block.data.len());
        }
        // Reads land in place in a zero-filled region that doubles as it fills: a 4 MiB fill
        // per 64 KiB pkt-line would dominate a large file, and one per block a small one
        // (thousands of 50 KiB files would each zero 4 MiB).
        let mut filled = block.data.len();
        let mut zeroed = filled;
        while !self.eof && filled < self.block_size {
            if filled == zeroed {
                zeroed = (2 * zeroed).clamp(64 << 10, self.block_size);
                block.data.resize(zeroed, 0);
            }
            match self.reader.read(&mut block.data[filled..zeroed]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    filled += n;
                    self.total += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    block.data.truncate(filled);
                    return Err(e);
                }
            }
        }
        block.data.truncate(filled);
        let mut start = 0;
        while let Some(len) = self.chunker.next_cut(&block.data[start..], self.eof) {
            start += len;
            block.ends.push(start);
        }
        self.carry.extend_from_slice(&block.data[start..]);
        block.data.truncate(start);
        Ok(!block.ends.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::pseudo_random;

    fn lengths_streamed(data: &[u8], block: usize, read_size: usize) -> Vec<usize> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r =
            BlockReader::with_block_size(Trickle(data, read_size), ChunkerParams::default(), block);
        let mut b = Block::default();
        let mut out = Vec::new();
        while r.next_block(&mut b).expect("in-memory read") {
            out.extend(b.chunks().map(<[u8]>::len));
        }
        out
    }

    #[test]
    fn streaming_matches_whole_buffer_fastcdc() {
        let data = pseudo_random(7, 5 * 1024 * 1024 + 12345);
        let p = ChunkerParams::default();
        let expect: Vec<usize> =
            v2020::FastCDC::new(&data, p.min as usize, p.avg as usize, p.max as usize)
                .map(|c| c.length)
                .collect();
        for (block, read) in [(BLOCK_SIZE, 1 << 20), (600_000, 65516), (1 << 20, 7)] {
            assert_eq!(
                lengths_streamed(&data, block, read),
                expect,
                "block {block}"
            );
        }
        assert_eq!(expect.iter().sum::<usize>(), data.len());
    }

    #[test]
    fn sizes_respect_bounds() {
        let data = pseudo_random(1, 8 * 1024 * 1024);
        let lens = lengths_streamed(&data, BLOCK_SIZE, 1 << 16);
        let p = ChunkerParams::default();
        let (last, rest) = lens.split_last().expect("several chunks");
        assert!(rest
            .iter()
            .all(|&l| l >= p.min as usize && l <= p.max as usize));
        assert!(*last <= p.max as usize);
        let avg = data.len() / lens.len();
        assert!((32 * 1024..=128 * 1024).contains(&avg), "avg {avg}");
    }

    #[test]
    fn empty_and_tiny_inputs() {
        assert!(lengths_streamed(&[], BLOCK_SIZE, 100).is_empty());
        assert_eq!(lengths_streamed(b"tiny", BLOCK_SIZE, 100), vec![4]);
    }

    /// Golden table: the chunk layout of a fixed input must never change silently, because
    /// stored manifests and dedup across versions depend on it.
    #[test]
    fn golden_boundaries() {
        let data = pseudo_random(2026, 1024 * 1024);
        let lens = lengths_streamed(&data, BLOCK_SIZE, 1 << 16);
        let ids: Vec<(String, usize)> = {
            let mut start = 0;
            lens.iter()
                .map(|&l| {
                    let id = crate::ChunkId::of(&data[start..start + l]).short();
                    start += l;
                    (id, l)
                })
                .collect()
        };
        let golden = crate::test_data::GOLDEN_1MIB;
        let got: Vec<(&str, usize)> = ids.iter().map(|(s, l)| (s.as_str(), *l)).collect();
        assert_eq!(got, golden);
    }

    #[test]
    fn boundaries_resynchronise_after_insert_and_delete() {
        let base = pseudo_random(3, 4 * 1024 * 1024);
        let chunk_set = |d: &[u8]| -> std::collections::HashSet<crate::ChunkId> {
            let lens = lengths_streamed(d, BLOCK_SIZE, 1 << 16);
            let mut start = 0;
            lens.iter()
                .map(|&l| {
                    let id = crate::ChunkId::of(&d[start..start + l]);
                    start += l;
                    id
                })
                .collect()
        };
        let before = chunk_set(&base);
        let mut inserted = base.clone();
        inserted.splice(2_000_000..2_000_000, [0xAB; 100]);
        let mut deleted = base.clone();
        deleted.drain(1_000_000..1_000_100);
        for edited in [inserted, deleted] {
            let after = chunk_set(&edited);
            let new = after.difference(&before).count();
            // One edit disturbs the chunk it lands in and at most its neighbour.
            assert!(new <= 3, "{new} new chunks after a 100-byte edit");
        }
    }
}
