//! Bounds-checked reading inside a box payload held in memory, and iteration over child boxes.

use super::{FourCc, MediaError};

/// A read position inside the payload of box `kind`, whose first byte is at file offset `base`.
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    pub(crate) kind: FourCc,
    pub(crate) base: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8], kind: FourCc, base: u64) -> Self {
        Cursor {
            data,
            pos: 0,
            kind,
            base,
        }
    }

    pub(crate) fn truncated(&self) -> MediaError {
        MediaError::Truncated {
            kind: self.kind,
            offset: self.base,
        }
    }

    pub(crate) fn invalid(&self, what: &'static str) -> MediaError {
        MediaError::Invalid {
            kind: self.kind,
            offset: self.base,
            what,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], MediaError> {
        if n > self.remaining() {
            return Err(self.truncated());
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), MediaError> {
        self.take(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MediaError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, MediaError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, MediaError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, MediaError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, MediaError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub(crate) fn fourcc(&mut self) -> Result<FourCc, MediaError> {
        Ok(FourCc(self.array()?))
    }

    /// Version and flags of a full box.
    pub(crate) fn full_header(&mut self) -> Result<(u8, u32), MediaError> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    /// A 32- or 64-bit field depending on a full box's version.
    pub(crate) fn u32_or_u64(&mut self, version: u8) -> Result<u64, MediaError> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// A table of `count` records of `record` bytes each: the count is checked against the bytes
    /// actually present before the caller allocates anything for it.
    pub(crate) fn table(&mut self, count: u32, record: usize) -> Result<&'a [u8], MediaError> {
        let n = usize::try_from(count).map_err(|_| self.truncated())?;
        let bytes = n.checked_mul(record).ok_or_else(|| self.truncated())?;
        self.take(bytes)
    }

    /// The child boxes of the rest of this payload.
    pub(crate) fn children(&self) -> Children<'a> {
        Children {
            data: &self.data[self.pos..],
            pos: 0,
            base: self.base + self.pos as u64,
            parent: self.kind,
        }
    }
}

/// One child box: its kind and payload, with the payload's file offset.
pub(crate) struct Child<'a> {
    pub(crate) kind: FourCc,
    /// File offset of the box's first header byte.
    pub(crate) offset: u64,
    pub(crate) payload: &'a [u8],
    /// File offset of the payload's first byte.
    pub(crate) payload_offset: u64,
}

impl<'a> Child<'a> {
    pub(crate) fn cursor(&self) -> Cursor<'a> {
        Cursor::new(self.payload, self.kind, self.payload_offset)
    }
}

/// Iterator over the boxes packed in a payload; stops at the first malformed one (after
/// yielding its error), so it always ends.
pub(crate) struct Children<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    parent: FourCc,
}

impl<'a> Children<'a> {
    fn next_child(&mut self) -> Result<Child<'a>, MediaError> {
        let rest = &self.data[self.pos..];
        let offset = self.base + self.pos as u64;
        let avail = rest.len() as u64;
        let header = super::boxes::parse_header(rest, offset, avail, self.parent)?;
        let size = usize::try_from(header.size).map_err(|_| MediaError::BadSize {
            kind: header.kind,
            offset,
            size: header.size,
        })?;
        let h = usize::from(header.header_len);
        let child = Child {
            kind: header.kind,
            offset,
            payload: &rest[h..size],
            payload_offset: offset + h as u64,
        };
        self.pos += size;
        Ok(child)
    }

    /// The first child of kind `kind`, or an error naming it as missing.
    pub(crate) fn find(self, kind: &[u8; 4]) -> Result<Child<'a>, MediaError> {
        let (parent, offset) = (self.parent, self.base);
        self.find_opt(kind)?.ok_or(MediaError::Missing {
            kind: FourCc(*kind),
            parent,
            offset,
        })
    }

    /// The first child of kind `kind`, if any; malformed siblings before it are errors.
    pub(crate) fn find_opt(self, kind: &[u8; 4]) -> Result<Option<Child<'a>>, MediaError> {
        for c in self {
            let c = c?;
            if c.kind == *kind {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Child<'a>, MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let r = self.next_child();
        if r.is_err() {
            self.pos = self.data.len();
        }
        Some(r)
    }
}
