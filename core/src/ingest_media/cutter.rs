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
    params: ChunkerParams,
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
                last_key: None,
                same: 0,
            },
            chunker: Chunker::new(params),
            params,
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
            let (segment, seg_eof) = match segment_end {
                Some(end) => (&block.data[start..end], true),
                None => (&block.data[start..limit], at_end),
            };
            let cut = self.chunker.next_cut(segment, seg_eof).map(|len| {
                let (min, max) = (self.params.min as usize, self.params.max as usize);
                if len == max && segment.len() >= max {
                    fallback_cut(segment, min, max)
                } else {
                    len
                }
            });
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
    /// The last sample's draw key (length and probe), and how many samples in a row had it:
    /// identical samples (silence, a still picture) all draw the same, so among them every
    /// k-th starts a chunk, counted from the first of the run. Chunks of k identical samples
    /// are the same bytes wherever a trim starts the run.
    last_key: Option<[u8; 32]>,
    same: u64,
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
            let key = draw_key(probe, len);
            let chosen = if self.last_key == Some(key) {
                self.same += 1;
                self.same % (self.spacing / len.max(1)).max(1) == 0
            } else {
                self.same = 0;
                self.last_key = Some(key);
                below(&key, len, self.spacing)
            };
            // The stream's start starts a chunk anyway.
            if start == 0 || chosen {
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

/// The keyed hash of a sample's length and first bytes that decides whether it starts a
/// chunk.
fn draw_key(probe: &[u8], len: u64) -> [u8; 32] {
    // Keyed once: deriving the key per sample cost more than hashing the sample's probe.
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(|| blake3::derive_key("dits 2026-11 sample cut", b""));
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&len.to_le_bytes());
    h.update(probe);
    *h.finalize().as_bytes()
}

/// Whether a sample of `len` bytes with draw `key` starts a chunk: with probability
/// `len / spacing` (always, for a sample at least `spacing` long).
fn below(key: &[u8; 32], len: u64, spacing: u64) -> bool {
    let draw = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    u128::from(draw) * u128::from(spacing) < u128::from(len) << 64
}

/// Where to cut `data` (at least `max` bytes from a chunk's start) when FastCDC found no
/// cut before `max`: at the position in `min..=max` whose preceding 8 bytes hash highest,
/// the last such. On periodic bytes (silence coded as runs of identical tiny frames, a
/// table of equal entries) that position recurs with the content's period, so the cuts keep
/// the content's phase whatever came before, and the chunks after the first are the same
/// bytes; cutting at exactly `max` would carry the phase of the stream's start.
fn fallback_cut(data: &[u8], min: usize, max: usize) -> usize {
    let mut best = (0u64, max);
    for p in min.max(8)..=max.min(data.len()) {
        let w = u64::from_le_bytes(data[p - 8..p].try_into().expect("8 bytes"));
        let h = w.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        if h >= best.0 {
            best = (h, p);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_cut_keeps_the_phase_of_periodic_content() {
        // Identical 6-byte frames after prefixes of different lengths: the second chunk is
        // the same bytes in every case (a cut at exactly `max` would shift with the prefix).
        let body: Vec<u8> = b"\x21\x10\x05\x00\xa0\x1c"
            .iter()
            .copied()
            .cycle()
            .take(400_000)
            .collect();
        let (min, max) = (4096, 65536);
        let mut seconds = Vec::new();
        for prefix in [0usize, 1, 5, 7, 1000] {
            let data = [vec![0xEE; prefix], body.clone()].concat();
            let first = fallback_cut(&data, min, max);
            let second = first + fallback_cut(&data[first..], min, max);
            assert!((min..=max).contains(&first) && second - first <= max);
            seconds.push(data[first..second].to_vec());
        }
        assert!(seconds.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn identical_samples_start_a_chunk_every_so_many_wherever_the_run_starts() {
        let plan = |starts: Vec<u64>, len: u64| StreamPlan {
            video: false,
            len,
            cuts: Vec::new(),
            sample_starts: starts,
            nal: None,
        };
        let frame = [7u8; 400];
        let cuts_of = |frames: usize| {
            let starts: Vec<u64> = (0..frames as u64).map(|i| i * 400).collect();
            let p = plan(starts, frames as u64 * 400);
            let mut c = Cutter::new(&p, ChunkerParams::default().quarter());
            let mut block = Block {
                data: frame.repeat(frames),
                ends: Vec::new(),
            };
            let mut carry = Vec::new();
            c.cut(&mut block, true, &mut carry);
            block.chunks().map(<[u8]>::to_vec).collect::<Vec<_>>()
        };
        let (whole, trimmed) = (cuts_of(1000), cuts_of(987));
        // Every chunk but the run's last is the same k frames, in both.
        assert!(whole.len() > 10);
        assert_eq!(whole[1], whole[2]);
        assert_eq!(trimmed[1], whole[1]);
    }
}
