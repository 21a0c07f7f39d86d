//! What a media file is, in the terms an editor uses (brand, tracks, codecs, sizes, rates,
//! durations, keyframes): kept in the file's manifest so `ls-files --long` and `diff` can say
//! it without the file's bytes.
//!
//! Encoding (big-endian, fixed size per track so a decoder needs no parsing state):
//!
//! ```text
//! brand [4] | flags u8 (bit 0: fragmented) | duration_ms u64 | track count u8
//! per track: id u32 | handler [4] | codec [4] | timescale u32 | duration u64
//!            samples u32 | sync samples u32 | width u32 | height u32
//!            sample rate u32 | channels u16
//! ```

use super::FourCc;

/// Tracks recorded per file; more are counted in nothing (a file with 256 tracks is odd, not
/// a reason to grow every manifest).
pub const MAX_TRACKS: usize = 64;
const HEADER_LEN: usize = 4 + 1 + 8 + 1;
const TRACK_LEN: usize = 4 + 4 + 4 + 4 + 8 + 4 + 4 + 4 + 4 + 4 + 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaInfo {
    /// The `ftyp` major brand (`isom`, `qt  `, ...); `qt  ` for QuickTime files without `ftyp`.
    pub brand: FourCc,
    pub fragmented: bool,
    pub duration_ms: u64,
    pub tracks: Vec<TrackInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    pub id: u32,
    /// `vide`, `soun`, `text`, `tmcd`...
    pub handler: FourCc,
    /// Sample entry format (`avc1`, `hvc1`, `apcn`, `mp4a`...), zeros when unknown.
    pub codec: FourCc,
    pub timescale: u32,
    /// In `timescale` units.
    pub duration: u64,
    pub samples: u32,
    pub sync_samples: u32,
    pub width: u32,
    pub height: u32,
    pub sample_rate: u32,
    pub channels: u16,
}

impl TrackInfo {
    pub fn seconds(&self) -> f64 {
        if self.timescale == 0 {
            0.0
        } else {
            self.duration as f64 / f64::from(self.timescale)
        }
    }

    /// Samples per second (frames per second for video).
    pub fn rate(&self) -> f64 {
        let s = self.seconds();
        if s > 0.0 {
            f64::from(self.samples) / s
        } else {
            0.0
        }
    }

    pub fn kind(&self) -> &'static str {
        match &self.handler.0 {
            b"vide" => "video",
            b"soun" => "audio",
            b"text" | b"sbtl" | b"subt" => "text",
            b"tmcd" => "timecode",
            b"meta" => "metadata",
            _ => "other",
        }
    }

    /// One line for people: `video avc1 640x360 25.000 fps, 500 samples, 10 keyframes, 20.000 s`.
    pub fn describe(&self) -> String {
        let codec = if self.codec.0 == [0; 4] {
            "?".to_string()
        } else {
            self.codec.to_string()
        };
        let mut s = format!("{} {codec}", self.kind());
        if self.width > 0 && self.height > 0 {
            s += &format!(" {}x{} {:.3} fps", self.width, self.height, self.rate());
        }
        if self.sample_rate > 0 {
            s += &format!(" {} Hz {} ch", self.sample_rate, self.channels);
        }
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        s += &format!(", {}", plural(self.samples as u64, "sample", "samples"));
        if self.sync_samples != self.samples {
            s += &format!(
                ", {}",
                plural(self.sync_samples as u64, "keyframe", "keyframes")
            );
        } else if self.handler == *b"vide" {
            s += ", all keyframes";
        }
        s + &format!(", {:.3} s", self.seconds())
    }
}

impl MediaInfo {
    pub fn encode(&self) -> Vec<u8> {
        let tracks = &self.tracks[..self.tracks.len().min(MAX_TRACKS)];
        let mut b = Vec::with_capacity(HEADER_LEN + tracks.len() * TRACK_LEN);
        b.extend_from_slice(&self.brand.0);
        b.push(u8::from(self.fragmented));
        b.extend_from_slice(&self.duration_ms.to_be_bytes());
        b.push(tracks.len() as u8);
        for t in tracks {
            b.extend_from_slice(&t.id.to_be_bytes());
            b.extend_from_slice(&t.handler.0);
            b.extend_from_slice(&t.codec.0);
            b.extend_from_slice(&t.timescale.to_be_bytes());
            b.extend_from_slice(&t.duration.to_be_bytes());
            for v in [t.samples, t.sync_samples, t.width, t.height, t.sample_rate] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            b.extend_from_slice(&t.channels.to_be_bytes());
        }
        b
    }

    /// `None` unless `b` is exactly one encoding.
    pub fn decode(b: &[u8]) -> Option<MediaInfo> {
        let n = usize::from(*b.get(HEADER_LEN - 1)?);
        if n > MAX_TRACKS || b.len() != HEADER_LEN + n * TRACK_LEN || b[4] > 1 {
            return None;
        }
        let fourcc = |o: usize| FourCc([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u32_at = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| u64::from_be_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let tracks = (0..n)
            .map(|i| {
                let o = HEADER_LEN + i * TRACK_LEN;
                TrackInfo {
                    id: u32_at(o),
                    handler: fourcc(o + 4),
                    codec: fourcc(o + 8),
                    timescale: u32_at(o + 12),
                    duration: u64_at(o + 16),
                    samples: u32_at(o + 24),
                    sync_samples: u32_at(o + 28),
                    width: u32_at(o + 32),
                    height: u32_at(o + 36),
                    sample_rate: u32_at(o + 40),
                    channels: u16::from_be_bytes([b[o + 44], b[o + 45]]),
                }
            })
            .collect();
        Some(MediaInfo {
            brand: fourcc(0),
            fragmented: b[4] == 1,
            duration_ms: u64_at(5),
            tracks,
        })
    }

    /// One line for people: `mp4 brand isom, 20.000 s, fragmented`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "mp4 brand {}, {:.3} s",
            self.brand,
            self.duration_ms as f64 / 1000.0
        );
        if self.fragmented {
            s += ", fragmented";
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_wrong_lengths() {
        let info = MediaInfo {
            brand: FourCc(*b"isom"),
            fragmented: true,
            duration_ms: 20_000,
            tracks: vec![TrackInfo {
                id: 1,
                handler: FourCc(*b"vide"),
                codec: FourCc(*b"avc1"),
                timescale: 12800,
                duration: 256_000,
                samples: 500,
                sync_samples: 10,
                width: 640,
                height: 360,
                sample_rate: 0,
                channels: 0,
            }],
        };
        let b = info.encode();
        assert_eq!(MediaInfo::decode(&b), Some(info.clone()));
        assert_eq!(MediaInfo::decode(&b[..b.len() - 1]), None);
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(MediaInfo::decode(&longer), None);
        assert_eq!(
            info.tracks[0].describe(),
            "video avc1 640x360 25.000 fps, 500 samples, 10 keyframes, 20.000 s"
        );
        let mut one = info.tracks[0].clone();
        one.sync_samples = 1;
        assert!(
            one.describe().contains(", 500 samples, 1 keyframe, "),
            "{}",
            one.describe()
        );
    }
}
