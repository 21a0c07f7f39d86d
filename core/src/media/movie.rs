//! The movie box (`moov`): tracks, their codecs and their sample tables.

use super::boxes::open_box;
use super::bytes::{Child, Cursor};
use super::fragment::{parse_trex, TrackExtends};
use super::sample_table::{SampleTable, Samples};
use super::{FourCc, MediaError};

/// A parsed `moov`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movie {
    /// Units per second of `duration` (from `mvhd`).
    pub timescale: u32,
    pub duration: u64,
    pub tracks: Vec<Track>,
    /// `mvex` is present: samples also (or only) live in `moof` fragments.
    pub fragmented: bool,
    /// Per-track fragment defaults from `mvex/trex`, for [`super::parse_moof`].
    pub track_extends: Vec<TrackExtends>,
}

/// Picture size of a video track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
}

/// Sound parameters of an audio track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioInfo {
    /// Samples per second (from the sample entry, else the media timescale).
    pub sample_rate: u32,
    pub channels: u16,
}

/// One `trak`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    pub id: u32,
    /// `vide`, `soun`, `text`, `tmcd`, ... from `hdlr`.
    pub handler: FourCc,
    /// Units per second of `duration` and of sample decode times (from `mdhd`).
    pub timescale: u32,
    pub duration: u64,
    /// The first sample entry's format: `avc1`, `hvc1`, `hev1`, `apcn`, `mp4a`, ...
    pub codec: Option<FourCc>,
    pub video: Option<VideoInfo>,
    pub audio: Option<AudioInfo>,
    pub table: SampleTable,
}

impl Track {
    /// The samples in `stbl`, in decode order (empty for a fragmented file's `empty_moov`).
    pub fn samples(&self) -> Samples<'_> {
        self.table.samples()
    }
}

/// Parses a whole `moov` box (header included) that starts at `offset` in a file of `file_len`
/// bytes; every sample of every track must lie inside the file.
pub fn parse_moov(bytes: &[u8], offset: u64, file_len: u64) -> Result<Movie, MediaError> {
    let moov = open_box(bytes, offset, b"moov")?;
    let mut movie = Movie {
        timescale: 0,
        duration: 0,
        tracks: Vec::new(),
        fragmented: false,
        track_extends: Vec::new(),
    };
    let mut have_mvhd = false;
    for child in moov.children() {
        let child = child?;
        match &child.kind.0 {
            b"mvhd" => {
                let mut c = child.cursor();
                let (v, _) = c.full_header()?;
                c.u32_or_u64(v)?;
                c.u32_or_u64(v)?;
                movie.timescale = c.u32()?;
                movie.duration = c.u32_or_u64(v)?;
                have_mvhd = true;
            }
            b"trak" => movie.tracks.push(parse_trak(&child, file_len)?),
            b"mvex" => {
                movie.fragmented = true;
                for c in child.cursor().children() {
                    let c = c?;
                    if c.kind == *b"trex" {
                        movie.track_extends.push(parse_trex(c.cursor())?);
                    }
                }
            }
            _ => {}
        }
    }
    if !have_mvhd {
        return Err(MediaError::Missing {
            kind: FourCc(*b"mvhd"),
            parent: moov.kind,
            offset,
        });
    }
    Ok(movie)
}

fn parse_trak(trak: &Child<'_>, file_len: u64) -> Result<Track, MediaError> {
    let mut c = trak.cursor().children().find(b"tkhd")?.cursor();
    let (v, _) = c.full_header()?;
    c.u32_or_u64(v)?;
    c.u32_or_u64(v)?;
    let id = c.u32()?;
    c.skip(4)?;
    c.u32_or_u64(v)?;
    c.skip(8 + 2 + 2 + 2 + 2 + 36)?;
    // 16.16 fixed point.
    let tkhd_size = (c.u32()? >> 16, c.u32()? >> 16);

    let mdia = trak.cursor().children().find(b"mdia")?;
    let mut c = mdia.cursor().children().find(b"mdhd")?.cursor();
    let (v, _) = c.full_header()?;
    c.u32_or_u64(v)?;
    c.u32_or_u64(v)?;
    let timescale = c.u32()?;
    let duration = c.u32_or_u64(v)?;

    let mut c = mdia.cursor().children().find(b"hdlr")?.cursor();
    c.full_header()?;
    c.skip(4)?;
    let handler = c.fourcc()?;

    let minf = mdia.cursor().children().find(b"minf")?;
    let stbl = minf.cursor().children().find(b"stbl")?;
    let stsd = stbl.cursor().children().find(b"stsd")?;
    let entry = parse_stsd(stsd.cursor(), &handler)?;
    let table = SampleTable::parse(&stbl, file_len)?;

    let mut track = Track {
        id,
        handler,
        timescale,
        duration,
        codec: entry.as_ref().map(|e| e.0),
        video: None,
        audio: None,
        table,
    };
    match entry.map(|e| e.1) {
        Some(Entry::Visual { width, height }) => {
            let (width, height) = if width > 0 && height > 0 {
                (u32::from(width), u32::from(height))
            } else {
                tkhd_size
            };
            track.video = Some(VideoInfo { width, height });
        }
        Some(Entry::Sound {
            sample_rate,
            channels,
        }) => {
            track.audio = Some(AudioInfo {
                sample_rate: if sample_rate > 0 {
                    sample_rate
                } else {
                    timescale
                },
                channels,
            });
        }
        None if &handler.0 == b"vide" && tkhd_size.0 > 0 => {
            track.video = Some(VideoInfo {
                width: tkhd_size.0,
                height: tkhd_size.1,
            });
        }
        Some(Entry::Other) | None => {}
    }
    Ok(track)
}

enum Entry {
    Visual { width: u16, height: u16 },
    Sound { sample_rate: u32, channels: u16 },
    Other,
}

/// The format of the first sample entry, with its picture or sound parameters.
fn parse_stsd(mut c: Cursor<'_>, handler: &FourCc) -> Result<Option<(FourCc, Entry)>, MediaError> {
    c.full_header()?;
    let count = c.u32()?;
    if count == 0 {
        return Ok(None);
    }
    let Some(first) = c.children().next() else {
        return Err(c.truncated());
    };
    let first = first?;
    let mut e = first.cursor();
    e.skip(6 + 2)?; // reserved, data_reference_index
    let entry = match &handler.0 {
        b"vide" => {
            e.skip(16)?; // pre_defined, reserved (QuickTime: version, vendor, qualities)
            Entry::Visual {
                width: e.u16()?,
                height: e.u16()?,
            }
        }
        b"soun" => {
            let version = e.u16()?;
            e.skip(6)?;
            if version == 2 {
                // QuickTime sound description v2: a float64 rate after 16 bytes of constants.
                e.skip(16)?;
                let rate = f64::from_bits(e.u64()?);
                let channels = e.u32()?;
                let sample_rate = if rate.is_finite() && rate >= 0.0 && rate < f64::from(u32::MAX) {
                    rate as u32
                } else {
                    0
                };
                Entry::Sound {
                    sample_rate,
                    channels: u16::try_from(channels).unwrap_or(u16::MAX),
                }
            } else {
                let channels = e.u16()?;
                e.skip(6)?; // sample size, compression id, packet size
                Entry::Sound {
                    sample_rate: e.u32()? >> 16,
                    channels,
                }
            }
        }
        _ => Entry::Other,
    };
    Ok(Some((first.kind, entry)))
}
