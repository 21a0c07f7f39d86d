//! Git LFS pointers (spec v1), for adopting repositories that hold them: parsing what a blob
//! says, and where `git lfs` keeps the object it names.
//!
//! A pointer is UTF-8 text of at most 1024 bytes: `version https://git-lfs.github.com/spec/v1`
//! first, then `key value` lines sorted by key, among them `oid sha256:<64 hex>` and
//! `size <decimal>`, each ending in LF. Anything else is not a pointer (and is left alone).

use std::path::{Path, PathBuf};

/// The first line of every LFS pointer.
pub const VERSION_LINE: &str = "version https://git-lfs.github.com/spec/v1";
/// LFS's limit: larger blobs are never pointers.
pub const MAX_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LfsPointer {
    /// The content's SHA-256, 64 lowercase hex digits.
    pub oid: String,
    pub size: u64,
}

impl LfsPointer {
    /// The pointer `data` holds, or `None` if it is not a well-formed LFS pointer.
    pub fn parse(data: &[u8]) -> Option<LfsPointer> {
        if data.len() > MAX_LEN {
            return None;
        }
        let text = std::str::from_utf8(data).ok()?;
        let body = text.strip_suffix('\n')?;
        let mut lines = body.split('\n');
        if lines.next()? != VERSION_LINE {
            return None;
        }
        let (mut oid, mut size, mut last_key) = (None, None, String::new());
        for line in lines {
            let (key, value) = line.split_once(' ')?;
            if key.is_empty() || key <= last_key.as_str() {
                return None;
            }
            last_key = key.to_owned();
            match key {
                "oid" => {
                    let hex = value.strip_prefix("sha256:")?;
                    let ok = hex.len() == 64
                        && hex
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                    oid = ok.then(|| hex.to_owned());
                    oid.as_ref()?;
                }
                "size" => {
                    let canonical = !value.is_empty()
                        && value.bytes().all(|b| b.is_ascii_digit())
                        && (value == "0" || !value.starts_with('0'));
                    if !canonical {
                        return None;
                    }
                    size = Some(value.parse().ok()?);
                }
                _ => {}
            }
        }
        Some(LfsPointer {
            oid: oid?,
            size: size?,
        })
    }

    /// The pointer's canonical text (what `git lfs` writes).
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{VERSION_LINE}\noid sha256:{}\nsize {}\n",
            self.oid, self.size
        )
        .into_bytes()
    }

    /// Where `git lfs` keeps the object under `lfs_dir` (`<git dir>/lfs`).
    pub fn object_path(&self, lfs_dir: &Path) -> PathBuf {
        lfs_dir
            .join("objects")
            .join(&self.oid[0..2])
            .join(&self.oid[2..4])
            .join(&self.oid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn parses_what_git_lfs_writes_and_nothing_else() {
        let text = format!("{VERSION_LINE}\noid sha256:{OID}\nsize 12345\n");
        let p = LfsPointer::parse(text.as_bytes()).expect("a pointer");
        assert_eq!(p.oid, OID);
        assert_eq!(p.size, 12345);
        assert_eq!(p.to_bytes(), text.as_bytes());
        assert_eq!(
            p.object_path(Path::new("/r/.git/lfs")),
            Path::new("/r/.git/lfs/objects/4d/7a").join(OID)
        );
        // Extra keys in order are allowed (LFS extensions).
        let ext = format!("{VERSION_LINE}\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 1\n");
        assert!(LfsPointer::parse(ext.as_bytes()).is_some());
        for bad in [
            format!("{VERSION_LINE}\noid sha256:{OID}\nsize 12345"),
            format!("{VERSION_LINE}\nsize 12345\noid sha256:{OID}\n"),
            format!("{VERSION_LINE}\noid sha256:{}\nsize 1\n", &OID[1..]),
            format!(
                "{VERSION_LINE}\noid sha256:{}\nsize 1\n",
                OID.to_uppercase()
            ),
            format!("{VERSION_LINE}\noid sha256:{OID}\nsize 012\n"),
            format!("{VERSION_LINE}\noid sha256:{OID}\n"),
            format!("version https://example.invalid\noid sha256:{OID}\nsize 1\n"),
            "plain content\n".to_owned(),
        ] {
            assert_eq!(LfsPointer::parse(bad.as_bytes()), None, "{bad:?}");
        }
        let long = format!(
            "{VERSION_LINE}\noid sha256:{OID}\nsize 1\nzz {}\n",
            "x".repeat(1100)
        );
        assert_eq!(LfsPointer::parse(long.as_bytes()), None);
    }
}
