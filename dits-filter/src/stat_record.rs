//! Records of work-tree files Dits itself just wrote, so that git's re-clean of them (the
//! re-stage after hydration) costs one BLAKE3 pass instead of chunking the file again.
//!
//! A record holds the file's inode, size, mtime and ctime at the moment Dits wrote it, and its
//! id. Clean uses it only when the file's stat still matches *and* the plain BLAKE3 of what
//! git sends equals the recorded id; if the hash differs the clean fails for that file (it
//! never answers a wrong pointer). One small file per path under `<git dir>/dits-hydrated/`.

use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use dits_core::Pointer;

fn stamp(meta: &fs::Metadata) -> String {
    format!(
        "{} {} {}.{} {}.{}",
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

fn record_path(dir: &Path, rel: &Path) -> PathBuf {
    let key = blake3::hash(rel.as_os_str().as_bytes()).to_hex();
    dir.join(&key[..32])
}

/// Notes that `abs` (work-tree path `rel`) now holds the content `pointer` names.
pub fn record(dir: &Path, rel: &Path, abs: &Path, pointer: &Pointer) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let meta = fs::symlink_metadata(abs)?;
    let mut text = format!("{}\n{} {}\n", stamp(&meta), pointer.id, pointer.size).into_bytes();
    text.extend_from_slice(rel.as_os_str().as_bytes());
    let dest = record_path(dir, rel);
    let tmp = dest.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, &dest)
}

/// The pointer recorded for `rel` if `abs` still has exactly the recorded stat data.
pub fn lookup(dir: &Path, rel: &Path, abs: &Path) -> Option<Pointer> {
    let path = record_path(dir, rel);
    let text = fs::read(&path).ok()?;
    let mut parts = text.splitn(3, |&b| b == b'\n');
    let (Some(st), Some(id_size), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let current = fs::symlink_metadata(abs).ok().map(|m| stamp(&m));
    if name != rel.as_os_str().as_bytes() || current.as_deref().map(str::as_bytes) != Some(st) {
        // Stale: the file changed since Dits wrote it.
        let _ = fs::remove_file(&path);
        return None;
    }
    let text = std::str::from_utf8(id_size).ok()?;
    let (id, size) = text.split_once(' ')?;
    Some(Pointer::new(id.parse().ok()?, size.parse().ok()?))
}

/// Reads all of `input` and tells whether it is exactly the content `pointer` names.
pub fn content_matches(input: &mut dyn Read, pointer: &Pointer) -> io::Result<bool> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok(total == pointer.size && hasher.finalize().as_bytes() == pointer.id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dits_core::FileId;

    #[test]
    fn matches_only_while_the_file_is_untouched() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("clip.mov");
        fs::write(&file, b"frames")?;
        let p = Pointer::new(FileId::of(b"frames"), 6);
        let records = dir.path().join("records");
        record(&records, Path::new("clip.mov"), &file, &p)?;
        assert_eq!(lookup(&records, Path::new("clip.mov"), &file), Some(p));
        assert_eq!(lookup(&records, Path::new("other.mov"), &file), None);
        assert!(content_matches(&mut &b"frames"[..], &p)?);
        assert!(!content_matches(&mut &b"framez"[..], &p)?);
        // Any write changes ctime (and here the size): the record no longer applies.
        fs::write(&file, b"frames!")?;
        assert_eq!(lookup(&records, Path::new("clip.mov"), &file), None);
        Ok(())
    }
}
