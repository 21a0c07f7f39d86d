//! Where each byte of an ISO-BMFF file belongs: to the container (box headers, `moov`, `moof`,
//! anything that is not a sample) or to one track's coded samples. Video-aware chunking
//! stores each of these as a stream of its own, so that a muxer that interleaves the same
//! samples differently, or moves `moov`, changes only the container stream.

use super::boxes::{read_box, top_level_boxes, MOOF_LIMIT, MOOV_LIMIT};
use super::info::{MediaInfo, TrackInfo, MAX_TRACKS};
use super::{parse_moof, parse_moov, FourCc, MediaError, Movie, Sample};

/// Most entries (samples, or runs of tiny ones) a file may have before it is chunked as plain
/// bytes (memory: 40 bytes each; two hours of 60 fps video with audio has under a million).
pub const MAX_SAMPLES: usize = 1 << 23;
/// Shortest average run (bytes of one stream in a row) a layout may have: finer interleaving
/// would cost more in pieces (44 bytes each in the manifest) than it could save.
const MIN_AVERAGE_RUN: u64 = 4096;
/// Samples smaller than this (PCM audio frames) are laid out in runs, and their streams are
/// chunked by bytes: a 4-byte sample says too little to choose cuts by.
const TINY_SAMPLE: u32 = 64;
/// The longest run of tiny samples kept as one entry.
const COALESCED_MAX: u32 = 1 << 20;

/// What [`samples`] counts per track while it lays samples out.
#[derive(Clone, Copy, Debug, Default)]
struct Count {
    samples: u32,
    sync: u32,
    last_time: u64,
}

/// One sample where it lies, or a run of tiny samples taken together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// For a run: its first sample's time and sync flag, and the run's offset and size.
    pub sample: Sample,
    /// The track's stream: track `i` of the movie is stream `i + 1`.
    pub stream: usize,
    /// Several tiny samples (PCM audio frames) taken together.
    pub run: bool,
}

/// The container stream's index; track `i` of [`FileLayout::info`] is stream `i + 1`.
pub const CONTAINER: usize = 0;

/// A stretch of the file that belongs to one stream. Runs cover the file in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub stream: usize,
    pub offset: u64,
    pub len: u64,
}

/// One stream: its length and the stream offsets where a chunk must end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamPlan {
    /// A video track's samples: chunked at the full chunk size and cut at keyframes. Other
    /// streams (container, audio, text) are small and use smaller chunks (see
    /// `ingest_media`).
    pub video: bool,
    pub len: u64,
    /// Ascending stream offsets (> 0, < `len`) where a chunk boundary is forced.
    pub cuts: Vec<u64>,
    /// Where the chunker may cut, choosing by the content found there (see
    /// `ingest_media`): for video the keyframes (so a GOP at least a chunk long always starts
    /// one, and the keyframes of all-intra video are chosen by their own bytes, whatever the
    /// frames before them), for other tracks every sample of some size.
    pub sample_starts: Vec<u64>,
    /// A video track of length-prefixed NAL units: a chosen keyframe cut is followed by a
    /// cut where its picture data starts (after in-band parameter sets).
    pub nal: Option<super::movie::NalUnits>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLayout {
    pub info: MediaInfo,
    /// The container stream first, then one per track (empty for a track without samples).
    pub streams: Vec<StreamPlan>,
    pub runs: Vec<Run>,
}

/// Whether `head` (the first bytes of a file) starts like an ISO-BMFF file: a plausible box
/// size and one of the box types that open MP4/MOV/3GP files.
pub fn sniff(head: &[u8]) -> bool {
    const FIRST_BOXES: &[&[u8; 4]] = &[
        b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid",
    ];
    if head.len() < 8 {
        return false;
    }
    let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    (size == 1 || size >= 8) && FIRST_BOXES.iter().any(|k| head[4..8] == k[..])
}

/// Maps a file of `len` bytes, read through `read_at`, to streams. Errors mean "chunk it as
/// plain bytes": a file that does not parse, samples that overlap each other or a box header,
/// or more than [`MAX_SAMPLES`] samples.
///
/// `min_chunk` is the chunker's minimum: a keyframe at least that big is a chunk of its own.
pub fn analyze(
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    len: u64,
    min_chunk: u64,
) -> Result<FileLayout, MediaError> {
    let Samples {
        boxes,
        movie,
        mut samples,
        info,
    } = samples(&mut read_at, len)?;
    let tracks = &movie.tracks[..movie.tracks.len().min(MAX_TRACKS)];
    samples.retain(|p| p.sample.size > 0);
    samples.sort_unstable_by_key(|p| p.sample.offset);

    let mut streams = vec![StreamPlan::default(); tracks.len() + 1];
    for (plan, t) in streams[1..].iter_mut().zip(tracks) {
        plan.video = t.handler == *b"vide";
        plan.nal = t.nal.filter(|_| plan.video);
    }
    let mut runs: Vec<Run> = Vec::new();
    // Box starts, in order, to place the container's forced cuts and to catch samples that
    // would cover a box header.
    let mut box_starts = boxes.iter().map(|b| b.offset).peekable();
    let mut pos = 0u64;
    for placed in &samples {
        let s = &placed.sample;
        if s.offset < pos {
            return Err(MediaError::Inconsistent("samples overlap"));
        }
        let end = s.offset + u64::from(s.size);
        // Container bytes before this sample; a box starting among them is a forced cut.
        while let Some(&b) = box_starts.peek() {
            if b >= end {
                break;
            }
            if b >= s.offset {
                return Err(MediaError::Inconsistent("a sample covers a box header"));
            }
            if b >= pos {
                let at = streams[CONTAINER].len + (b - pos);
                if at > 0 {
                    streams[CONTAINER].cuts.push(at);
                }
            }
            box_starts.next();
        }
        add(&mut runs, &mut streams, CONTAINER, pos, s.offset - pos);
        let stream = placed.stream;
        let video = streams[stream].video;
        // A keyframe may start a chunk, so a trim or a concat at keyframes reuses whole
        // chunks and a reader can decode a chunk from its first byte. Which keyframes do is
        // decided by their content and their GOP's length (a GOP of a chunk or more always),
        // never by counting from the stream's start: a trim of all-intra video that drops
        // one frame meets the same cuts at once. Other tracks: only a real sample of some
        // size says enough to choose a cut by; runs of tiny samples (PCM) are cut by bytes,
        // as the muxer's interleaving groups them.
        let candidate = if video {
            s.sync
        } else {
            !placed.run && s.size >= TINY_SAMPLE
        };
        let at = streams[stream].len;
        // The stream's first sample is one for H.264/HEVC too: its parameter sets and SEI
        // are cut off its picture like every other keyframe's.
        if candidate && (at > 0 || streams[stream].nal.is_some()) {
            streams[stream].sample_starts.push(at);
        }
        add(&mut runs, &mut streams, stream, s.offset, u64::from(s.size));
        if video && s.sync && u64::from(s.size) >= min_chunk {
            // A big keyframe is a chunk of its own: it is the largest frame of its GOP, and
            // a trim that ends a few frames into a GOP then reuses it, as does a reader that
            // seeks to it.
            let end = streams[stream].len;
            streams[stream].cuts.push(end);
        }
        pos = end;
    }
    for b in box_starts {
        if b >= pos {
            let at = streams[CONTAINER].len + (b - pos);
            if at > 0 {
                streams[CONTAINER].cuts.push(at);
            }
        }
    }
    add(&mut runs, &mut streams, CONTAINER, pos, len - pos);
    if runs.len() as u64 > len / MIN_AVERAGE_RUN + 4096 {
        return Err(MediaError::Inconsistent(
            "streams interleaved too finely to lay out",
        ));
    }
    for plan in &mut streams {
        // A keyframe that ends its stream leaves a cut at the very end: not a cut.
        plan.cuts.retain(|&c| c < plan.len);
    }
    Ok(FileLayout {
        info,
        streams,
        runs,
    })
}

/// A media file's boxes, movie, every sample (tagged with its stream: track `i` is stream
/// `i + 1`) and description.
pub struct Samples {
    pub boxes: Vec<super::BoxSpan>,
    pub movie: Movie,
    pub samples: Vec<Placed>,
    pub info: MediaInfo,
}

/// Parses the boxes and sample tables of a file of `len` bytes (of its first [`MAX_TRACKS`]
/// tracks), in track order then fragment order.
pub fn samples(
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    len: u64,
) -> Result<Samples, MediaError> {
    let boxes = top_level_boxes(&mut read_at, len)?;
    let invalid = |what| MediaError::Invalid {
        kind: FourCc(*b"file"),
        offset: 0,
        what,
    };
    let moov_span = boxes
        .iter()
        .find(|b| b.kind == *b"moov")
        .ok_or(invalid("no moov box"))?;
    let moov_bytes = read_box(&mut read_at, moov_span, MOOV_LIMIT)?;
    let movie = parse_moov(&moov_bytes, moov_span.offset, len)?;
    drop(moov_bytes);
    let tracks = &movie.tracks[..movie.tracks.len().min(MAX_TRACKS)];

    // Every sample, tagged with its stream; runs of tiny samples (PCM audio stores one per
    // audio frame, 4 bytes each) become one entry, or an hour of PCM would be 170 million.
    let mut samples: Vec<Placed> = Vec::new();
    let mut counts = vec![Count::default(); tracks.len()];
    // Every sample declared counts, merged or not, so hostile tables cannot make the walk
    // long: real samples do not overlap, so a real file has fewer than it has bytes.
    let mut budget = (MAX_SAMPLES as u64).saturating_add(len);
    let mut push = |s: Sample, stream: usize| -> Result<(), MediaError> {
        budget = budget.checked_sub(1).ok_or(MediaError::Inconsistent(
            "more samples than the file has bytes",
        ))?;
        let c = &mut counts[stream - 1];
        c.samples = c.samples.saturating_add(1);
        c.sync = c.sync.saturating_add(u32::from(s.sync));
        c.last_time = c.last_time.max(s.decode_time);
        if s.size < TINY_SAMPLE && tracks[stream - 1].handler != *b"vide" {
            if let Some(last) = samples.last_mut() {
                let end = last.sample.offset + u64::from(last.sample.size);
                let tiny = last.run || last.sample.size < TINY_SAMPLE;
                if last.stream == stream
                    && tiny
                    && end == s.offset
                    && last.sample.size < COALESCED_MAX
                {
                    last.sample.size += s.size;
                    last.run = true;
                    return Ok(());
                }
            }
        }
        if samples.len() >= MAX_SAMPLES {
            return Err(MediaError::Inconsistent("too many samples to lay out"));
        }
        samples.push(Placed {
            sample: s,
            stream,
            run: false,
        });
        Ok(())
    };
    for (i, t) in tracks.iter().enumerate() {
        for s in t.samples() {
            push(s, i + 1)?;
        }
    }
    if movie.fragmented {
        for span in boxes.iter().filter(|b| b.kind == *b"moof") {
            let bytes = read_box(&mut read_at, span, MOOF_LIMIT)?;
            for run in parse_moof(&bytes, span.offset, len, &movie.track_extends)? {
                let i = tracks.iter().position(|t| t.id == run.track_id).ok_or(
                    MediaError::Inconsistent("a fragment names an unknown track"),
                )?;
                for s in run.samples {
                    push(s, i + 1)?;
                }
            }
        }
    }
    // The major brand; QuickTime files from before `ftyp` existed are `qt  `.
    let mut brand = FourCc(*b"qt  ");
    if let Some(ftyp) = boxes.first().filter(|b| b.kind == *b"ftyp" && b.size >= 12) {
        read_at(ftyp.payload_offset(), &mut brand.0).map_err(|source| MediaError::Read {
            offset: ftyp.payload_offset(),
            len: 4,
            source,
        })?;
    }
    let info = describe(brand, &movie, tracks, &counts);
    Ok(Samples {
        boxes,
        movie,
        samples,
        info,
    })
}

fn describe(brand: FourCc, movie: &Movie, tracks: &[super::Track], counts: &[Count]) -> MediaInfo {
    let tracks: Vec<TrackInfo> = tracks
        .iter()
        .zip(counts)
        .map(|(t, c)| {
            let (samples, sync_samples, last_time) = (c.samples, c.sync, c.last_time);
            // Fragmented files often leave `mdhd` at 0: estimate from the decode times.
            let duration = if t.duration > 0 || samples < 2 {
                t.duration
            } else {
                last_time.saturating_add(last_time / u64::from(samples - 1))
            };
            TrackInfo {
                id: t.id,
                handler: t.handler,
                codec: t.codec.unwrap_or(FourCc([0; 4])),
                timescale: t.timescale,
                duration,
                samples,
                sync_samples,
                width: t.video.map_or(0, |v| v.width),
                height: t.video.map_or(0, |v| v.height),
                sample_rate: t.audio.map_or(0, |a| a.sample_rate),
                channels: t.audio.map_or(0, |a| a.channels),
            }
        })
        .collect();
    let movie_ms = if movie.timescale > 0 {
        movie.duration.saturating_mul(1000) / u64::from(movie.timescale)
    } else {
        0
    };
    let duration_ms = if movie_ms > 0 {
        movie_ms
    } else {
        tracks
            .iter()
            .map(|t| (t.seconds() * 1000.0) as u64)
            .max()
            .unwrap_or(0)
    };
    MediaInfo {
        brand,
        fragmented: movie.fragmented,
        duration_ms,
        tracks,
    }
}

/// Appends `n` bytes at file `offset` to `stream`, extending the last run when it continues.
fn add(runs: &mut Vec<Run>, streams: &mut [StreamPlan], stream: usize, offset: u64, n: u64) {
    if n == 0 {
        return;
    }
    match runs.last_mut() {
        Some(r) if r.stream == stream && r.offset + r.len == offset => r.len += n,
        _ => runs.push(Run {
            stream,
            offset,
            len: n,
        }),
    }
    streams[stream].len += n;
}
