//! Where one stream of a media file is cut into chunks: FastCDC, plus the stream's forced
//! cuts (box starts, keyframes) and cuts at sample starts chosen by content. Shared by the
//! spooled and the streaming clean, so both cut the same content the same way.

use std::sync::OnceLock;

use crate::chunker::{Block, Chunker, ChunkerParams};
use crate::media::StreamPlan;

/// The chunk bounds for `plan`'s stream: audio, text and the container are a few percent of
/// a video file, and smaller chunks make an edit to them (a trim's first and last second of
/// audio, a remux's tables) cost less, at little cost in index size.
pub(super) fn stream_params(plan: &StreamPlan, params: ChunkerParams) -> ChunkerParams {
    match params.quarter() {
        q if !plan.video && q.is_valid() => q,
        _ => params,
    }
}

/// Cuts one stream, a block at a time. The cuts depend only on the stream's bytes and plan,
/// never on how the bytes arrive in blocks.
pub(super) struct Cutter<'a> {
    /// Forced cuts: the plan's (ascending).
    cuts: &'a [u64],
    next_forced: usize,
    /// Sample starts chosen as they are read (ascending).
    chosen: Vec<u64>,
    next_chosen: usize,
    samples: SampleCuts<'a>,
    chunker: Chunker,
    /// Stream offset of the first byte of the next block.
    base: u64,
}

impl<'a> Cutter<'a> {
    pub(super) fn new(plan: &'a StreamPlan, params: ChunkerParams) -> Self {
        Cutter {
            cuts: &plan.cuts,
            next_forced: 0,
            chosen: Vec::new(),
            next_chosen: 0,
            samples: SampleCuts {
                nal: plan.nal,
                starts: &plan.sample_starts,
                next: 0,
                stream_len: plan.len,
                // Audio: half the chunk size, so a trim's first and last partial chunk cost
                // half as much, for twice as many (small) audio chunks. Video keyframes: half
                // the minimum, so every GOP of 8 KiB or more starts a chunk (long-GOP video
                // at every keyframe, as before) and all-intra video of small frames is cut
                // every 8 KiB or so: a trim's first partial chunk is small.
                spacing: u64::from(if plan.video {
                    params.min / 2
                } else {
                    params.avg / 2
                })
                .max(1),
            },
            chunker: Chunker::new(params),
            base: 0,
        }
    }

    /// Finds the whole chunks in `block.data` (this stream's bytes from where the last call
    /// stopped) and moves what follows the last cut to `carry`, for the next block. With
    /// `eof`, everything is cut.
    pub(super) fn cut(&mut self, block: &mut Block, eof: bool, carry: &mut Vec<u8>) {
        block.ends.clear();
        // Cuts are decided only up to the first sample whose first bytes are not here yet.
        let limit = self
            .samples
            .choose(self.base, &block.data, eof, &mut self.chosen);
        let at_end = eof && limit == block.data.len();
        let mut start = 0;
        loop {
            let pos = self.base + start as u64;
            // A forced or chosen cut inside what we hold ends the segment: chunk up to it as
            // if the stream ended there.
            let segment_end = self
                .next_cut_after(pos)
                .map(|c| (c - self.base) as usize)
                .filter(|&e| e <= limit);
            let cut = match segment_end {
                Some(end) => self.chunker.next_cut(&block.data[start..end], true),
                None => self.chunker.next_cut(&block.data[start..limit], at_end),
            };
            match cut {
                Some(len) => {
                    start += len;
                    block.ends.push(start);
                }
                None => break,
            }
        }
        carry.extend_from_slice(&block.data[start..]);
        block.data.truncate(start);
        self.base += start as u64;
    }

    /// The first forced or chosen cut past `pos`.
    fn next_cut_after(&mut self, pos: u64) -> Option<u64> {
        while self.cuts.get(self.next_forced).is_some_and(|&c| c <= pos) {
            self.next_forced += 1;
        }
        while self.chosen.get(self.next_chosen).is_some_and(|&c| c <= pos) {
            self.next_chosen += 1;
        }
        match (
            self.cuts.get(self.next_forced),
            self.chosen.get(self.next_chosen),
        ) {
            (Some(&a), Some(&b)) => Some(a.min(b)),
            (a, b) => a.or(b).copied(),
        }
    }
}

/// Content-defined cuts at sample starts, for audio and other tracks of small samples: a
/// sample starts a chunk when a hash of its first bytes (and its length) falls under a
/// threshold proportional to its size, so cuts come every `spacing` bytes on average and
/// depend on nothing but the sample itself. A trim that drops the first samples then meets
/// the same cuts at once, where byte-level chunking would take a few chunks to fall back
/// into step.
struct SampleCuts<'a> {
    /// Keyframes of H.264/HEVC: the cut also falls where the picture data starts, and the
    /// choice is made by the picture's bytes, not by in-band parameter sets before them.
    nal: Option<crate::media::movie::NalUnits>,
    starts: &'a [u64],
    next: usize,
    stream_len: u64,
    spacing: u64,
}

impl SampleCuts<'_> {
    /// How many bytes of a sample decide whether it starts a chunk.
    const PROBE: u64 = 64;
    /// How many bytes of a NAL keyframe are searched for where its picture starts
    /// (parameter sets are tens of bytes; SEI can be more).
    const NAL_HEADERS: u64 = 4096;

    /// Adds the cuts of the samples whose probes lie in `data` (stream offsets from `base`)
    /// to `cuts`; returns how much of `data` is decided (up to the first undecided sample).
    /// At `eof` the stream may be shorter than planned: samples past its end decide nothing.
    fn choose(&mut self, base: u64, data: &[u8], eof: bool, cuts: &mut Vec<u64>) -> usize {
        let held_end = base + data.len() as u64;
        while let Some(&start) = self.starts.get(self.next) {
            let end = self
                .starts
                .get(self.next + 1)
                .copied()
                .unwrap_or(self.stream_len);
            let window = if self.nal.is_some() {
                Self::NAL_HEADERS
            } else {
                Self::PROBE
            };
            let window_end = start + end.saturating_sub(start).min(window);
            if window_end > held_end {
                if eof {
                    break;
                }
                // Everything before that sample is decided (all we hold, if it starts
                // past it: video's keyframes can be far apart).
                return ((start.max(base) - base) as usize).min(data.len());
            }
            let window = &data[(start - base) as usize..(window_end - base) as usize];
            let headers = self.nal.map_or(0, |n| n.header_len(window));
            let probe = &window[headers..window.len().min(headers + Self::PROBE as usize)];
            let len = end - start - headers as u64;
            // The stream's start starts a chunk anyway.
            if start == 0 || starts_chunk(probe, len, self.spacing) {
                if start > 0 {
                    cuts.push(start);
                }
                if headers > 0 && (headers as u64) < end - start {
                    cuts.push(start + headers as u64);
                }
            }
            self.next += 1;
        }
        data.len()
    }
}

/// Whether a sample of `len` bytes starting with `probe` starts a chunk: with probability
/// `len / spacing` (always, for a sample at least `spacing` long).
fn starts_chunk(probe: &[u8], len: u64, spacing: u64) -> bool {
    // Keyed once: deriving the key per sample cost more than hashing the sample's probe.
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(|| blake3::derive_key("dits 2026-11 sample cut", b""));
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&len.to_le_bytes());
    h.update(probe);
    let draw = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
    u128::from(draw) * u128::from(spacing) < u128::from(len) << 64
}
