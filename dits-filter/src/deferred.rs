//! The deferred-hydration journal: which work-tree files were left as pointers for Dits to
//! write after git finishes. The filter writes them itself at the end of the session; the
//! journal lets `git dits checkout --deferred` (run from post-checkout and post-merge hooks)
//! finish the job if the filter was killed first.
//!
//! One journal file per filter process (several may run at once), records separated by NUL
//! because paths may contain newlines: `<file id> <size> <path>\0`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dits_core::pointer::Pointer;

pub struct Journal {
    dir: PathBuf,
    path: Option<PathBuf>,
}

impl Journal {
    pub fn new(dir: PathBuf) -> Self {
        Journal { dir, path: None }
    }

    pub fn record(&mut self, rel: &Path, pointer: &Pointer) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let path = match &self.path {
            Some(p) => p.clone(),
            None => {
                fs::create_dir_all(&self.dir)?;
                let p = self.dir.join(format!(
                    "{}-{}",
                    std::process::id(),
                    dits_core::store::unique_temp_suffix()
                ));
                self.path = Some(p.clone());
                p
            }
        };
        let mut rec = format!("{} {} ", pointer.id, pointer.size).into_bytes();
        rec.extend_from_slice(rel.as_os_str().as_bytes());
        rec.push(0);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?
            .write_all(&rec)
    }

    pub fn remove(self) {
        if let Some(p) = self.path {
            let _ = fs::remove_file(p);
        }
    }
}

/// Every `(journal file, work-tree path, pointer)` recorded in `dir`.
/// Files one journal lists: `(work-tree path, pointer)`.
pub type Entries = Vec<(PathBuf, Pointer)>;

pub fn pending(dir: &Path) -> io::Result<Vec<(PathBuf, Entries)>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let journal = entry?.path();
        let bytes = fs::read(&journal)?;
        let mut items = Vec::new();
        // A record cut short by a crash has no terminating NUL and is skipped.
        let complete = match bytes.iter().rposition(|&b| b == 0) {
            Some(i) => &bytes[..=i],
            None => &[][..],
        };
        for rec in complete.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let mut parts = rec.splitn(3, |&b| b == b' ');
            let (Some(id), Some(size), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(id), Ok(size)) = (
                std::str::from_utf8(id).unwrap_or("").parse(),
                std::str::from_utf8(size).unwrap_or("").parse(),
            ) else {
                continue;
            };
            items.push((
                PathBuf::from(std::ffi::OsStr::from_bytes(path)),
                Pointer::new(id, size),
            ));
        }
        out.push((journal, items));
    }
    Ok(out)
}
