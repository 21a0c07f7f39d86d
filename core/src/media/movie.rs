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
    /// How H.264/HEVC samples frame their NAL units (from `avcC`/`hvcC`).
    pub nal: Option<NalUnits>,
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
                movie.duration = duration_field(&mut c, v)?;
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

/// A duration of `mvhd` or `mdhd`; all ones (the formats' "unknown") reads as 0, so the
/// duration is taken from the samples instead.
fn duration_field(c: &mut Cursor<'_>, version: u8) -> Result<u64, MediaError> {
    let d = c.u32_or_u64(version)?;
    let unknown = if version == 1 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    Ok(if d == unknown { 0 } else { d })
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
    let duration = duration_field(&mut c, v)?;

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
        nal: None,
        video: None,
        audio: None,
        table,
    };
    match entry.map(|e| e.1) {
        Some(Entry::Visual { width, height, nal }) => {
            track.nal = nal;
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
    Visual {
        width: u16,
        height: u16,
        nal: Option<NalUnits>,
    },
    Sound {
        sample_rate: u32,
        channels: u16,
    },
    Other,
}

/// Samples made of length-prefixed NAL units (H.264 `avcC`, HEVC `hvcC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalUnits {
    pub hevc: bool,
    /// Bytes of each NAL unit's length prefix: 1, 2 or 4.
    pub length_size: u8,
}

impl NalUnits {
    /// How many bytes at the start of `sample` are NAL units that are not picture data
    /// (parameter sets, SEI, access unit delimiters), counting whole units only: where the
    /// picture starts. Editors and `ffmpeg -f concat` put parameter sets into every copied
    /// keyframe; cutting there lets the picture data chunk as it did without them.
    pub fn header_len(&self, sample: &[u8]) -> usize {
        let ls = usize::from(self.length_size);
        let mut at = 0usize;
        while let Some(prefix) = sample.get(at..at + ls) {
            let len = prefix
                .iter()
                .fold(0usize, |n, &b| (n << 8) | usize::from(b));
            let Some(&head) = sample.get(at + ls) else {
                break;
            };
            let picture = if self.hevc {
                (head >> 1) & 0x3F < 32
            } else {
                matches!(head & 0x1F, 1..=5)
            };
            if picture || len == 0 || at + ls + len > sample.len() {
                break;
            }
            at += ls + len;
        }
        at
    }
}

/// What a sample entry's child boxes say beyond its fixed fields: the original format of an
/// encrypted entry (`sinf`/`frma`), the codec an `mp4a` entry really carries and its channel
/// count (`esds`), the channels of AC-3 (`dac3`). Best effort: a child that does not parse
/// says nothing.
#[derive(Default)]
struct EntryExtras {
    format: Option<FourCc>,
    channels: Option<u16>,
    nal: Option<NalUnits>,
}

fn entry_extras(children: super::bytes::Children<'_>) -> EntryExtras {
    let mut out = EntryExtras::default();
    for child in children.flatten() {
        match &child.kind.0 {
            b"sinf" => {
                if let Ok(Some(frma)) = child.cursor().children().find_opt(b"frma") {
                    out.format = frma.cursor().fourcc().ok();
                }
            }
            b"esds" => {
                if let Some((object_type, channels)) = parse_esds(child.payload) {
                    // ISO/IEC 14496-1 object types 0x69 and 0x6B: MPEG-1/2 layer 3 audio.
                    if matches!(object_type, 0x69 | 0x6B) {
                        out.format = Some(FourCc(*b".mp3"));
                    }
                    out.channels = out.channels.or(channels);
                }
            }
            b"avcC" | b"hvcC" => {
                let hevc = &child.kind.0 == b"hvcC";
                let at = if hevc { 21 } else { 4 };
                if let Some(&b) = child.payload.get(at) {
                    let length_size = (b & 0x03) + 1;
                    if length_size != 3 {
                        out.nal = Some(NalUnits { hevc, length_size });
                    }
                }
            }
            b"dac3" => {
                // fscod(2) bsid(5) bsmod(3) acmod(3) lfeon(1) bit_rate_code(5) reserved(5)
                if let [_, b1, ..] = child.payload {
                    let acmod = usize::from((b1 >> 3) & 0x07);
                    let lfe = u16::from((b1 >> 2) & 1);
                    out.channels = Some([2, 1, 2, 3, 3, 4, 4, 5][acmod] + lfe);
                }
            }
            _ => {}
        }
    }
    out
}

/// An `esds` payload's object type, and the channel count its AudioSpecificConfig gives
/// (none for configurations that leave it to a program config element).
fn parse_esds(payload: &[u8]) -> Option<(u8, Option<u16>)> {
    // A descriptor: tag, then a length in up to four 7-bit groups.
    fn descriptor(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, mut rest) = d.split_first()?;
        let mut len = 0usize;
        for _ in 0..4 {
            let (&b, r) = rest.split_first()?;
            rest = r;
            len = (len << 7) | usize::from(b & 0x7F);
            if b & 0x80 == 0 {
                break;
            }
        }
        let body = rest.get(..len)?;
        Some((tag, body, &rest[len..]))
    }
    let (tag, es, _) = descriptor(payload.get(4..)?)?; // after the full box header
    if tag != 0x03 {
        return None;
    }
    let flags = *es.get(2)?;
    let mut at = 3;
    if flags & 0x80 != 0 {
        at += 2; // depends-on ES id
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*es.get(at)?); // URL
    }
    if flags & 0x20 != 0 {
        at += 2; // OCR ES id
    }
    let (tag, config, _) = descriptor(es.get(at..)?)?;
    if tag != 0x04 {
        return None;
    }
    let object_type = *config.first()?;
    let channels = descriptor(config.get(13..)?)
        .filter(|(tag, _, _)| *tag == 0x05)
        .and_then(|(_, asc, _)| audio_config_channels(asc));
    Some((object_type, channels))
}

/// The channel count of an AAC AudioSpecificConfig: object type (5 bits, or 6 more after
/// 31), frequency index (4 bits, or 24 more after 15), channel configuration (4 bits).
fn audio_config_channels(asc: &[u8]) -> Option<u16> {
    let mut bytes = [0u8; 8];
    let n = asc.len().min(8);
    bytes[..n].copy_from_slice(&asc[..n]);
    let bits = u64::from_be_bytes(bytes);
    let field = |at: u32, len: u32| (bits >> (64 - at - len)) & ((1 << len) - 1);
    let mut at = if field(0, 5) == 31 { 11 } else { 5 };
    at += if field(at, 4) == 15 { 28 } else { 4 };
    if (n * 8) < (at + 4) as usize {
        return None;
    }
    match field(at, 4) {
        n @ 1..=6 => Some(n as u16),
        7 | 12 | 14 => Some(8),
        11 => Some(7),
        13 => Some(24),
        _ => None,
    }
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
    let mut extras = EntryExtras::default();
    let entry = match &handler.0 {
        b"vide" => {
            e.skip(16)?; // pre_defined, reserved (QuickTime: version, vendor, qualities)
            let (width, height) = (e.u16()?, e.u16()?);
            // resolutions, reserved, frame count, compressor name, depth, pre_defined
            if e.skip(4 + 4 + 4 + 2 + 32 + 2 + 2).is_ok() {
                extras = entry_extras(e.children());
            }
            Entry::Visual {
                width,
                height,
                nal: extras.nal,
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
                // constant, bits per channel, flags, bytes per packet, frames per packet
                if e.skip(20).is_ok() {
                    extras = entry_extras(e.children());
                }
                Entry::Sound {
                    sample_rate,
                    channels: extras
                        .channels
                        .unwrap_or(u16::try_from(channels).unwrap_or(u16::MAX)),
                }
            } else {
                let channels = e.u16()?;
                e.skip(6)?; // sample size, compression id, packet size
                let sample_rate = e.u32()? >> 16;
                // QuickTime v1: samples per packet, bytes per packet, frame and sample.
                let fixed_rest = if version == 1 { 16 } else { 0 };
                if e.skip(fixed_rest).is_ok() {
                    extras = entry_extras(e.children());
                }
                Entry::Sound {
                    sample_rate,
                    channels: extras.channels.unwrap_or(channels),
                }
            }
        }
        _ => Entry::Other,
    };
    Ok(Some((extras.format.unwrap_or(first.kind), entry)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_data_starts_after_the_leading_parameter_sets() {
        let avc = NalUnits {
            hevc: false,
            length_size: 4,
        };
        // SPS (7), PPS (8), then an IDR slice (5).
        let mut sample = vec![0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 9];
        let headers = sample.len();
        sample.extend_from_slice(&[0, 0, 0, 4, 0x65, 7, 7, 7]);
        assert_eq!(avc.header_len(&sample), headers);
        // A slice first: nothing to cut off; a truncated unit is not counted.
        assert_eq!(avc.header_len(&sample[headers..]), 0);
        assert_eq!(avc.header_len(&sample[..headers - 1]), 7);
        // HEVC: VPS (32) then a CRA slice (21); the type sits in bits 1-6 of the header.
        let hevc = NalUnits {
            hevc: true,
            length_size: 4,
        };
        let sample = [0, 0, 0, 2, 32 << 1, 1, 0, 0, 0, 2, 21 << 1, 1];
        assert_eq!(hevc.header_len(&sample), 6);
    }

    #[test]
    fn aac_channel_configurations() {
        // AAC-LC (2), 48 kHz (3), mono (1) / 5.1 (6) / from a PCE (0).
        assert_eq!(audio_config_channels(&[0x11, 0x88]), Some(1));
        assert_eq!(audio_config_channels(&[0x11, 0xB0]), Some(6));
        assert_eq!(audio_config_channels(&[0x11, 0x80]), None);
        assert_eq!(audio_config_channels(&[0x11]), None);
    }
}
