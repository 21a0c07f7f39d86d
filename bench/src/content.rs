//! Seeded content and the edits applied to it. Everything streams: nothing here holds a file in
//! memory, and the same seed gives the same bytes on every machine, so runs compare.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};

pub const MIB: u64 = 1 << 20;

/// Domain of the BLAKE3 XOF that produces every byte the benchmark writes.
const CONTENT_CONTEXT: &str = "dits-bench 2025-01-01 seeded content v1";

const BUF: usize = 1 << 20;

fn write_seeded(w: &mut impl Write, seed: &str, len: u64) -> io::Result<()> {
    let mut h = blake3::Hasher::new_derive_key(CONTENT_CONTEXT);
    h.update(seed.as_bytes());
    let mut xof = h.finalize_xof();
    let mut buf = vec![0u8; BUF];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(BUF as u64)).unwrap_or(BUF);
        xof.fill(&mut buf[..n]);
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Writes `len` pseudo-random bytes derived from `seed` to a new file at `path`.
pub fn create_seeded(path: &Path, seed: &str, len: u64) -> Result<()> {
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(BUF, f);
    write_seeded(&mut w, seed, len).with_context(|| format!("writing {}", path.display()))?;
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

pub fn hash_file(path: &Path) -> Result<blake3::Hash> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = blake3::Hasher::new();
    h.update_reader(f)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(h.finalize())
}

/// Apparent size of every file under `dir` (0 if it does not exist yet).
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let meta = entry
            .path()
            .symlink_metadata()
            .with_context(|| format!("stat {}", entry.path().display()))?;
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Where in the file an edit happens.
#[derive(Debug, Clone, Copy)]
pub enum At {
    Start,
    Middle,
}

/// One edit of the benchmark's sequence; each is committed before the next.
#[derive(Debug, Clone, Copy)]
pub enum Edit {
    Overwrite { len: u64 },
    Insert { at: At, len: u64 },
    Append { len: u64 },
    Delete { len: u64 },
}

impl Edit {
    /// The sequence (a)–(e) of the benchmark.
    pub fn sequence() -> [Edit; 5] {
        [
            Edit::Overwrite { len: MIB },
            Edit::Insert {
                at: At::Start,
                len: 100,
            },
            Edit::Insert {
                at: At::Middle,
                len: 100,
            },
            Edit::Append { len: 10 * MIB },
            Edit::Delete { len: MIB },
        ]
    }

    pub fn label(&self) -> String {
        use crate::report::bytes;
        match *self {
            Edit::Overwrite { len } => format!("overwrite {} in the middle", bytes(len)),
            Edit::Insert { at: At::Start, len } => format!("insert {} at offset 0", bytes(len)),
            Edit::Insert {
                at: At::Middle,
                len,
            } => format!("insert {} in the middle", bytes(len)),
            Edit::Append { len } => format!("append {}", bytes(len)),
            Edit::Delete { len } => format!("delete {} in the middle", bytes(len)),
        }
    }

    /// Bytes the edit touches: written, inserted, appended or removed.
    pub fn edited_bytes(&self) -> u64 {
        match *self {
            Edit::Overwrite { len }
            | Edit::Insert { len, .. }
            | Edit::Append { len }
            | Edit::Delete { len } => len,
        }
    }

    /// Applies the edit to the file at `path`; new bytes come from `seed`. Overwrite and append
    /// change the file in place; insert and delete rewrite it to a temporary file that is then
    /// renamed over it, as an editor would.
    pub fn apply(&self, path: &Path, seed: &str) -> Result<()> {
        let size = fs::metadata(path)
            .with_context(|| format!("stat {}", path.display()))?
            .len();
        let mid = size / 2;
        let ctx = || format!("applying `{}` to {}", self.label(), path.display());
        match *self {
            Edit::Overwrite { len } => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(ctx)?;
                f.seek(SeekFrom::Start(mid.saturating_sub(len / 2)))
                    .with_context(ctx)?;
                let mut w = BufWriter::with_capacity(BUF, f);
                write_seeded(&mut w, seed, len).with_context(ctx)?;
                w.flush().with_context(ctx)
            }
            Edit::Append { len } => {
                let f = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .with_context(ctx)?;
                let mut w = BufWriter::with_capacity(BUF, f);
                write_seeded(&mut w, seed, len).with_context(ctx)?;
                w.flush().with_context(ctx)
            }
            Edit::Insert { at, len } => {
                let off = match at {
                    At::Start => 0,
                    At::Middle => mid,
                };
                rewrite(path, |src, dst| {
                    copy_range(src, dst, 0, off)?;
                    write_seeded(dst, seed, len)?;
                    copy_range(src, dst, off, size - off)
                })
                .with_context(ctx)
            }
            Edit::Delete { len } => {
                let off = mid.saturating_sub(len / 2);
                let end = (off + len).min(size);
                rewrite(path, |src, dst| {
                    copy_range(src, dst, 0, off)?;
                    copy_range(src, dst, end, size - end)
                })
                .with_context(ctx)
            }
        }
    }
}

/// Copies `len` bytes at `off` of `src` to the current end of `dst`.
fn copy_range(src: &mut File, dst: &mut File, off: u64, len: u64) -> io::Result<()> {
    src.seek(SeekFrom::Start(off))?;
    let copied = io::copy(&mut io::Read::take(&mut *src, len), dst)?;
    if copied != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file ended after {copied} of {len} bytes at offset {off}"),
        ));
    }
    Ok(())
}

fn rewrite(
    path: &Path,
    body: impl FnOnce(&mut File, &mut File) -> io::Result<()>,
) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".bench-tmp");
    let tmp = Path::new(&tmp_name);
    let mut src = File::open(path)?;
    let mut dst = File::create(tmp)?;
    body(&mut src, &mut dst)?;
    drop(dst);
    fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_change_sizes_as_labelled() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("f.bin");
        create_seeded(&p, "t", 4 * MIB)?;
        let base = fs::read(&p)?;
        let sizes = [
            4 * MIB,
            4 * MIB + 100,
            4 * MIB + 200,
            14 * MIB + 200,
            13 * MIB + 200,
        ];
        for (edit, want) in Edit::sequence().iter().zip(sizes) {
            edit.apply(&p, "e")?;
            assert_eq!(fs::metadata(&p)?.len(), want, "{}", edit.label());
        }
        // Bytes far from every edit are untouched (offset 0 moved by the 100-byte insert).
        let now = fs::read(&p)?;
        assert_eq!(&now[100..100 + 4096], &base[..4096]);
        Ok(())
    }

    #[test]
    fn seeded_is_deterministic() -> Result<()> {
        let mut a = Vec::new();
        write_seeded(&mut a, "x", 3 * MIB + 7)?;
        let mut b = Vec::new();
        write_seeded(&mut b, "x", 3 * MIB + 7)?;
        assert_eq!(a, b);
        let mut c = Vec::new();
        write_seeded(&mut c, "y", 16)?;
        assert_ne!(&a[..16], &c[..]);
        Ok(())
    }
}
