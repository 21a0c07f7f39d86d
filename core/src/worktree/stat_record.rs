//! Records of work-tree files Dits itself just wrote, so that git's re-clean of them (the
//! re-stage after hydration) costs one BLAKE3 pass instead of chunking the file again.
//!
//! A record holds the file's inode, size, mtime and ctime at the moment Dits wrote it, and its
//! id. Clean uses it only when the file's stat still matches *and* the plain BLAKE3 of what
//! git sends equals the recorded id; if the hash differs the clean fails for that file (it
//! never answers a wrong pointer). One small file per path under `<git dir>/dits-hydrated/`.
//!
//! A record is also *pending* (a marker in `pending/`) until git's index has learned the
//! file's stat data: git's index still holds the pointer's size, and git calls any file whose
//! size differs "modified" without asking the filter. A client that writes its index only
//! after its filters exit (gitoxide), or a command that writes its index again after a hook
//! wrote files (rebase), leaves such files; whatever Dits runs next finishes them
//! ([`pending`], [`settle`]).

use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::Pointer;

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
    fs::rename(&tmp, &dest)?;
    let marker = pending_path(dir, rel);
    fs::create_dir_all(marker.parent().expect("markers live in pending/"))?;
    fs::write(marker, b"")
}

fn pending_path(dir: &Path, rel: &Path) -> PathBuf {
    let key = blake3::hash(rel.as_os_str().as_bytes()).to_hex();
    dir.join("pending").join(&key[..32])
}

/// Git's index has the stat data of `rel`: it no longer needs finishing.
pub fn settle(dir: &Path, rel: &Path) {
    let _ = fs::remove_file(pending_path(dir, rel));
}

/// Files Dits wrote whose stat data git's index may not have yet, `(work-tree path,
/// pointer)`, for those still exactly as Dits wrote them (`work_tree` resolves the paths).
/// Markers of files changed since are dropped.
pub fn pending(dir: &Path, work_tree: &Path) -> Vec<(PathBuf, Pointer)> {
    let Ok(entries) = fs::read_dir(dir.join("pending")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let marker = entry.path();
        let record = dir.join(entry.file_name());
        let rel = fs::read(&record).ok().and_then(|text| {
            let name = text.splitn(3, |&b| b == b'\n').nth(2)?.to_vec();
            Some(PathBuf::from(std::ffi::OsString::from_vec(name)))
        });
        let still = rel.and_then(|rel| {
            let pointer = lookup(dir, &rel, &work_tree.join(&rel))?;
            Some((rel, pointer))
        });
        match still {
            Some(found) => out.push(found),
            None => {
                let _ = fs::remove_file(marker);
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
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
    use crate::FileId;

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
        assert_eq!(
            pending(&records, dir.path()),
            vec![(PathBuf::from("clip.mov"), p)],
            "pending until the index has it"
        );
        settle(&records, Path::new("clip.mov"));
        assert!(pending(&records, dir.path()).is_empty());
        record(&records, Path::new("clip.mov"), &file, &p)?;
        // Any write changes ctime (and here the size): the record no longer applies.
        fs::write(&file, b"frames!")?;
        assert_eq!(lookup(&records, Path::new("clip.mov"), &file), None);
        assert!(
            pending(&records, dir.path()).is_empty(),
            "a changed file is not finished"
        );
        Ok(())
    }
}
