//! Random access to a stored file: which spans (byte ranges of chunks) cover a byte range.
//! The mount reads through it, and so does parsing a media file's boxes out of the store.

use std::ops::Range;

use crate::manifest::{ChunkRef, Manifest, Span};

/// A file's spans with their end offsets: span `i` covers `ends[i-1]..ends[i]`.
#[derive(Debug, Clone, Default)]
pub struct SpanMap {
    spans: Vec<Span>,
    ends: Vec<u64>,
}

impl SpanMap {
    pub fn new(spans: Vec<Span>) -> SpanMap {
        let mut end = 0;
        let ends = spans
            .iter()
            .map(|s| {
                end += u64::from(s.len);
                end
            })
            .collect();
        SpanMap { spans, ends }
    }

    pub fn of(manifest: &Manifest) -> SpanMap {
        SpanMap::new(manifest.spans().collect())
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    pub fn span(&self, i: usize) -> Span {
        self.spans[i]
    }

    /// File offset of span `i`'s first byte.
    pub fn start(&self, i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            self.ends[i - 1]
        }
    }

    /// File offset just past span `i`.
    pub fn end(&self, i: usize) -> u64 {
        self.ends[i]
    }

    /// The spans covering `offset..end` (`end` > `offset`, both within the file).
    pub fn covering(&self, offset: u64, end: u64) -> Range<usize> {
        let first = self.ends.partition_point(|&e| e <= offset);
        let last = self.ends.partition_point(|&e| e < end);
        first..(last + 1).min(self.spans.len())
    }

    /// The distinct chunks of spans `range`, in order (a video-aware layout takes several
    /// pieces from one chunk, alternating with other streams' chunks).
    pub fn chunks(&self, range: Range<usize>) -> Vec<ChunkRef> {
        let mut out: Vec<ChunkRef> = Vec::new();
        for s in &self.spans[range] {
            if !out.iter().rev().take(16).any(|c| c.id == s.chunk.id) {
                out.push(s.chunk);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChunkId;

    #[test]
    fn covering_finds_exactly_the_spans_touched() {
        let span = |i: u8, start: u32, len: u32| Span {
            chunk: ChunkRef {
                id: ChunkId::of(&[i]),
                len: 100,
            },
            start,
            len,
        };
        // Two pieces of chunk 0 around a piece of chunk 1.
        let m = SpanMap::new(vec![span(0, 0, 10), span(1, 0, 20), span(0, 10, 30)]);
        assert_eq!(m.covering(0, 1), 0..1);
        assert_eq!(m.covering(9, 10), 0..1);
        assert_eq!(m.covering(9, 11), 0..2);
        assert_eq!(m.covering(10, 30), 1..2);
        assert_eq!(m.covering(29, 31), 1..3);
        assert_eq!(m.covering(0, 60), 0..3);
        assert_eq!(m.covering(59, 60), 2..3);
        assert_eq!((m.start(2), m.end(2), m.size()), (30, 60, 60));
        let ids: Vec<ChunkId> = m.chunks(0..3).iter().map(|c| c.id).collect();
        assert_eq!(ids, [ChunkId::of(&[0]), ChunkId::of(&[1])]);
    }
}
