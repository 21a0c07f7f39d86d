//! ISO base media files (MP4, MOV, M4A, 3GP, fragmented MP4): the box structure and the sample
//! tables, for video-aware chunking. Everything here treats its input as hostile.
//!
//! - [`boxes`]: the top-level walk over a file read through a `read_at` callback (multi-GiB
//!   `mdat`s are never loaded), and reading one small box (`moov`, `moof`) whole, under a cap.
//! - [`movie`]: [`parse_moov`] into tracks with codec, size, rate and timing.
//! - [`sample_table`]: `stbl` tables and [`Track::samples`] (offset, size, sync, decode time).
//! - [`fragment`]: [`parse_moof`] into runs of samples for fragmented files.
//! - [`info`]: the description kept in manifests ([`MediaInfo`]).
//! - [`layout`]: which bytes are container and which are each track's samples ([`analyze`]).
//!
//! Limits: counts are checked against the bytes that hold them before anything is allocated,
//! every sample must lie inside the file, and the boxes read whole are capped ([`MOOV_LIMIT`],
//! [`MOOF_LIMIT`]). Edit lists, composition offsets and sample groups are not interpreted.

pub mod boxes;
mod bytes;
mod error;
pub mod fragment;
pub mod info;
pub mod layout;
pub mod movie;
pub mod sample_table;

pub use boxes::{
    read_box, slice_reader, top_level_boxes, BoxSpan, MAX_TOP_LEVEL_BOXES, MOOF_LIMIT, MOOV_LIMIT,
};
pub use error::MediaError;
pub use fragment::{parse_moof, FragmentRun, TrackExtends, MAX_IMPLICIT_SAMPLES};
pub use info::{MediaInfo, TrackInfo};
pub use layout::{analyze, sniff, FileLayout, Run, StreamPlan};
pub use movie::{parse_moov, AudioInfo, Movie, Track, VideoInfo};
pub use sample_table::{Sample, SampleTable, Samples};

use std::fmt;

/// A four-character box or codec code, e.g. `moov`, `avc1`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourCc(pub [u8; 4]);

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}

impl PartialEq<[u8; 4]> for FourCc {
    fn eq(&self, other: &[u8; 4]) -> bool {
        self.0 == *other
    }
}
