//! Crash-safe file primitives: write to a temp file in the destination's directory, fsync,
//! then rename or link into place, then fsync the directory so the name itself is durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;

/// A name no other writer (thread or process) will pick.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.update(&now.to_le_bytes());
    h.update(format!("{:?}", std::thread::current().id()).as_bytes());
    let hex = h.finalize().to_hex();
    format!("{prefix}{}", &hex[..16])
}

pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Flushes everything written to the filesystem holding `path` (data and names, every file):
/// one call where a batch of files would otherwise need an fsync each.
#[allow(unsafe_code)]
pub fn sync_filesystem(path: &Path) -> Result<(), StoreError> {
    let dir = File::open(path).map_err(|e| StoreError::io(path, e))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: plain syscall on a descriptor `dir` keeps open for the call; no memory passed.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(StoreError::io(path, io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: `sync` takes no arguments and cannot fail.
        unsafe { libc::sync() };
        drop(dir);
    }
    Ok(())
}

fn write_temp(dir: &Path, bytes: &[u8], sync: bool) -> Result<PathBuf, StoreError> {
    let tmp = dir.join(unique_name(".tmp-"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    let res = f
        .write_all(bytes)
        .and_then(|_| if sync { f.sync_all() } else { Ok(()) });
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io(&tmp, e));
    }
    Ok(tmp)
}

/// Atomically and durably replaces `dest` with `bytes`.
pub fn replace_file(dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    replace_file_with(dest, bytes, true)
}

/// Atomically replaces `dest` with `bytes`; flushed first (file, then directory) if `sync`.
pub(crate) fn replace_file_with(dest: &Path, bytes: &[u8], sync: bool) -> Result<(), StoreError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = write_temp(dir, bytes, sync)?;
    if let Err(e) = fs::rename(&tmp, dest) {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io(dest, e));
    }
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Creates `dest` with `bytes` unless it already exists; never overwrites. Content-addressed
/// files have one correct content, so an existing file is as good as ours. The file appears
/// whole or not at all; it is flushed (with its directory) before this returns if `sync`.
pub fn create_once(dest: &Path, bytes: &[u8], sync: bool) -> Result<(), StoreError> {
    let dir = dest.parent().expect("store paths have a parent");
    if dest.exists() {
        return Ok(());
    }
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        // The new directory's own name must be durable too.
        if let Some(parent) = dir.parent().filter(|_| sync) {
            sync_dir(parent)?;
        }
    }
    let tmp = write_temp(dir, bytes, sync)?;
    let linked = fs::hard_link(&tmp, dest);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) if sync => sync_dir(dir),
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::io(dest, e)),
    }
}

/// Asks the kernel to start writing `[from, to)` of `file` to disk without waiting, so a later
/// fsync has little left to do. Only a hint: on failure the fsync simply does all the work.
#[allow(unsafe_code)]
pub fn start_writeback(file: &File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: plain syscall on a file descriptor that `file` keeps open for the duration of
        // the call; no memory is passed.
        let _ = unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                from as libc::off64_t,
                (to - from) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
}
