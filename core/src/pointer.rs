//! The pointer: the small text Git stores in place of a tracked file.
//!
//! ```text
//! dits-pointer v1
//! blake3 <64 lowercase hex digits: plain BLAKE3 of the content, as b3sum prints it>
//! size <decimal byte count, no leading zeros>
//! ```
//! Exactly these three lines, each ending in LF, nothing else: one content has exactly one
//! pointer, so Git never sees a phantom change. See docs/pointer.md.

use std::fmt;

use crate::id::FileId;

/// The first line's prefix; anything that starts with it is *meant* to be a pointer, so it
/// gets a precise error rather than being passed through as ordinary content.
pub const MAGIC: &[u8] = b"dits-pointer ";
pub const VERSION: &str = "v1";
/// No valid pointer is longer than this; longer content is never a pointer.
pub const MAX_LEN: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointer {
    pub id: FileId,
    pub size: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PointerError {
    #[error("not a Dits pointer")]
    NotAPointer,
    #[error("Dits pointer version {0:?} is not supported by this git-dits (it reads v1); hint: upgrade git-dits")]
    UnknownVersion(String),
    #[error("malformed Dits pointer: {0}; hint: restore the file with `git checkout -- <path>` or re-add the original content")]
    Malformed(&'static str),
}

impl Pointer {
    pub fn new(id: FileId, size: u64) -> Self {
        Pointer { id, size }
    }

    /// Whether `data` begins like a pointer (and so must parse as one or be reported).
    pub fn looks_like(data: &[u8]) -> bool {
        data.starts_with(MAGIC)
    }

    /// Parses canonical pointer text. `NotAPointer` means "ordinary content, pass it through".
    pub fn parse(data: &[u8]) -> Result<Pointer, PointerError> {
        if !Self::looks_like(data) {
            return Err(PointerError::NotAPointer);
        }
        if data.len() > MAX_LEN {
            // Real content that happens to start like a pointer (this file's docs, say).
            return Err(PointerError::NotAPointer);
        }
        let text =
            std::str::from_utf8(data).map_err(|_| PointerError::Malformed("not UTF-8 text"))?;
        if text.contains('\r') {
            // Typically core.autocrlf rewrote the pointer; say so rather than "bad version".
            return Err(PointerError::Malformed(
                "CRLF line endings (is core.autocrlf converting it?)",
            ));
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(PointerError::Malformed("truncated (no final newline)"))?;
        let mut lines = body.split('\n');
        let version = lines
            .next()
            .and_then(|l| l.strip_prefix("dits-pointer "))
            .ok_or(PointerError::Malformed("missing version line"))?;
        if version != VERSION {
            return Err(PointerError::UnknownVersion(version.to_owned()));
        }
        let id = lines
            .next()
            .and_then(|l| l.strip_prefix("blake3 "))
            .ok_or(PointerError::Malformed("missing `blake3` line"))?
            .parse::<FileId>()
            .map_err(|_| PointerError::Malformed("`blake3` is not 64 lowercase hex digits"))?;
        let size_text = lines
            .next()
            .and_then(|l| l.strip_prefix("size "))
            .ok_or(PointerError::Malformed("missing `size` line"))?;
        let canonical_number = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        if !canonical_number {
            return Err(PointerError::Malformed("`size` is not a canonical decimal"));
        }
        let size = size_text
            .parse::<u64>()
            .map_err(|_| PointerError::Malformed("`size` out of range"))?;
        if lines.next().is_some() {
            return Err(PointerError::Malformed("unexpected extra lines"));
        }
        Ok(Pointer { id, size })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dits-pointer {VERSION}\nblake3 {}\nsize {}\n",
            self.id, self.size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Pointer {
        Pointer::new(FileId::of(b"hello"), 5)
    }

    #[test]
    fn round_trip_is_canonical() {
        let p = sample();
        let text = p.to_string();
        assert_eq!(
            text,
            "dits-pointer v1\nblake3 ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f\nsize 5\n"
        );
        assert_eq!(Pointer::parse(text.as_bytes()), Ok(p));
        assert!(text.len() <= MAX_LEN);
    }

    #[test]
    fn ordinary_content_is_not_a_pointer() {
        assert_eq!(Pointer::parse(b""), Err(PointerError::NotAPointer));
        assert_eq!(
            Pointer::parse(b"version https://git-lfs"),
            Err(PointerError::NotAPointer)
        );
        // Longer than any pointer: content that merely starts like one (docs about Dits).
        let mut doc = sample().to_string().into_bytes();
        doc.extend_from_slice(&[b'x'; MAX_LEN]);
        assert_eq!(Pointer::parse(&doc), Err(PointerError::NotAPointer));
    }

    #[test]
    fn rejects_every_non_canonical_form() {
        let good = sample().to_string();
        let cases = [
            good.trim_end().to_owned(),                             // truncated
            good[..30].to_owned(),                                  // cut mid-id
            good.replace("size 5", "size 05"),                      // leading zero
            good.replace("size 5", "size +5"),                      // sign
            good.replace("size 5", "size "),                        // empty
            good.replace("size 5", "size 99999999999999999999999"), // overflow
            good.replace("ea8f", "EA8F"),                           // uppercase hex
            good.replace('\n', "\r\n"),                             // CRLF
            format!("{good}extra\n"),                               // trailing line
            good.replace("blake3", "sha256"),                       // wrong key
        ];
        for c in cases {
            assert!(
                matches!(
                    Pointer::parse(c.as_bytes()),
                    Err(PointerError::Malformed(_))
                ),
                "accepted {c:?}"
            );
        }
    }

    #[test]
    fn unknown_version_is_named() {
        let v2 = sample().to_string().replace("v1", "v2");
        assert_eq!(
            Pointer::parse(v2.as_bytes()),
            Err(PointerError::UnknownVersion("v2".into()))
        );
    }
}
