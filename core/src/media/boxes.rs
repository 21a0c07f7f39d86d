//! Box headers and the top-level walk of a file that is never loaded whole.

use super::{FourCc, MediaError};

/// The largest `moov` we read into memory (real ones are a few MiB even for hours of video).
pub const MOOV_LIMIT: u64 = 64 << 20;
/// The largest `moof` we read into memory.
pub const MOOF_LIMIT: u64 = 16 << 20;
/// The most top-level boxes we list (a day of one-second fragments is ~170 000).
pub const MAX_TOP_LEVEL_BOXES: usize = 1 << 20;

/// Longest header: size, type, largesize, uuid extended type.
const MAX_HEADER: usize = 32;

/// Where one box lies in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxSpan {
    pub kind: FourCc,
    /// File offset of the first header byte.
    pub offset: u64,
    /// 8, 16 (64-bit largesize), or either plus 16 for a `uuid` box.
    pub header_len: u8,
    /// Whole box, header included (a size 0 box is resolved to the end of the file).
    pub size: u64,
    /// The extended type of a `uuid` box.
    pub user_type: Option<[u8; 16]>,
}

impl BoxSpan {
    /// File offset of the payload's first byte.
    pub fn payload_offset(&self) -> u64 {
        self.offset + u64::from(self.header_len)
    }
    /// File offset just past the box.
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// Parses the header at the start of `rest`, a box at file offset `offset` with `avail` bytes
/// left in its container (`rest` may hold fewer, but at least the header). Guarantees
/// `header_len <= size <= avail`, so a walk that adds `size` always progresses and stays inside.
pub(crate) fn parse_header(
    rest: &[u8],
    offset: u64,
    avail: u64,
    parent: FourCc,
) -> Result<BoxSpan, MediaError> {
    if rest.len() < 8 {
        return Err(MediaError::Truncated {
            kind: parent,
            offset,
        });
    }
    let kind = FourCc([rest[4], rest[5], rest[6], rest[7]]);
    let truncated = MediaError::Truncated { kind, offset };
    let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let (mut header_len, size) = match size32 {
        0 => (8usize, avail),
        1 => {
            let b: [u8; 8] = rest
                .get(8..16)
                .ok_or(truncated)?
                .try_into()
                .expect("8 bytes");
            (16, u64::from_be_bytes(b))
        }
        n => (8, u64::from(n)),
    };
    let mut user_type = None;
    if kind == *b"uuid" {
        let b: [u8; 16] = rest
            .get(header_len..header_len + 16)
            .ok_or(MediaError::Truncated { kind, offset })?
            .try_into()
            .expect("16 bytes");
        user_type = Some(b);
        header_len += 16;
    }
    if size < header_len as u64 {
        return Err(MediaError::BadSize { kind, offset, size });
    }
    if size > avail {
        return Err(MediaError::Truncated { kind, offset });
    }
    Ok(BoxSpan {
        kind,
        offset,
        header_len: header_len as u8,
        size,
        user_type,
    })
}

fn read(
    read_at: &mut impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), MediaError> {
    read_at(offset, buf).map_err(|source| MediaError::Read {
        offset,
        len: buf.len(),
        source,
    })
}

/// Lists the top-level boxes of a file of `len` bytes, reading only their headers through
/// `read_at(offset, buf)` (which must fill `buf` completely). Every byte of the file must belong
/// to a box: trailing garbage is an error, as is a box past the end. Files without `ftyp`
/// (older QuickTime) are accepted; nothing here checks which boxes appear.
pub fn top_level_boxes(
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    len: u64,
) -> Result<Vec<BoxSpan>, MediaError> {
    let file = FourCc(*b"file");
    let mut spans = Vec::new();
    let mut offset = 0u64;
    let mut buf = [0u8; MAX_HEADER];
    while offset < len {
        if spans.len() >= MAX_TOP_LEVEL_BOXES {
            return Err(MediaError::TooLarge {
                kind: file,
                offset,
                size: spans.len() as u64 + 1,
                limit: MAX_TOP_LEVEL_BOXES as u64,
            });
        }
        let avail = len - offset;
        let n = usize::try_from(avail).map_or(MAX_HEADER, |a| a.min(MAX_HEADER));
        read(&mut read_at, offset, &mut buf[..n])?;
        let span = parse_header(&buf[..n], offset, avail, file)?;
        offset += span.size;
        spans.push(span);
    }
    Ok(spans)
}

/// A `read_at` over bytes already in memory (small files, tests, fuzzing).
pub fn slice_reader(data: &[u8]) -> impl FnMut(u64, &mut [u8]) -> std::io::Result<()> + '_ {
    move |offset, buf| {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| data.get(o..)?.get(..buf.len()))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Reads one whole box (header included), refusing boxes larger than `limit` bytes.
pub fn read_box(
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    span: &BoxSpan,
    limit: u64,
) -> Result<Vec<u8>, MediaError> {
    if span.size > limit {
        return Err(MediaError::TooLarge {
            kind: span.kind,
            offset: span.offset,
            size: span.size,
            limit,
        });
    }
    let n = usize::try_from(span.size).expect("at most the limit, which fits in memory");
    let mut buf = vec![0; n];
    read(&mut read_at, span.offset, &mut buf)?;
    Ok(buf)
}

/// Reads a whole box held in memory: checks its header and returns a cursor on its payload.
pub(crate) fn open_box<'a>(
    bytes: &'a [u8],
    offset: u64,
    kind: &[u8; 4],
) -> Result<super::bytes::Cursor<'a>, MediaError> {
    let span = parse_header(bytes, offset, bytes.len() as u64, FourCc(*kind))?;
    if span.kind != *kind || span.size != bytes.len() as u64 {
        return Err(MediaError::Invalid {
            kind: span.kind,
            offset,
            what: "not the expected box, or not exactly one box",
        });
    }
    let payload = &bytes[usize::from(span.header_len)..];
    Ok(super::bytes::Cursor::new(
        payload,
        span.kind,
        span.payload_offset(),
    ))
}
