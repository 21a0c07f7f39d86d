//! Recording the stat data of files Dits wrote into git's index directly.
//!
//! After Dits replaces a pointer by the real content, git's index still holds the pointer's
//! stat data, so `git status` would see a size change and call it modified. `git update-index`
//! fixes that, but only by cleaning the file again: git reads all of it and pipes it to the
//! filter, a second pass over every byte that costs about as much as writing it. The staged
//! blob is already right (it *is* the pointer), so only the stat data needs to change, and
//! that is what this module writes, under git's own `index.lock`.
//!
//! Two rules keep git's view exact:
//! - an entry is touched only while it still stages the pointer Dits wrote and the file still
//!   has the stat Dits recorded right after writing it (see `dits_core::worktree::stat_record`);
//! - the new index keeps the old one's mtime. Git judges "racily clean" entries (those not older
//!   than the index, to the second) by content, and a newer index would make a file edited just
//!   before it look clean. The rewritten files are backdated to a second before that mtime, so
//!   they are not racy themselves.
//!
//! Indexes this code cannot rewrite without losing something (split index, sparse, version 4,
//! untracked cache, fsmonitor, resolve-undo data) are left to `git update-index`.

use std::fs::{self, FileTimes};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use dits_core::worktree::stat_record;
use dits_core::Pointer;
use gix::index::entry::{Stage, Stat};

use crate::repo::Repo;

/// How long to wait for another git command's `index.lock`.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Records the current stat data of each `(work-tree relative path, pointer)` in the index.
/// Returns the files it did not record (left to the caller's slower way); an error means
/// nothing was written.
pub fn record(repo: &Repo, files: &[(PathBuf, Pointer)]) -> Result<Vec<(PathBuf, Pointer)>> {
    let work_tree = repo.work_tree()?;
    let pointer_blob = |p: &Pointer| {
        gix::objs::compute_hash(
            repo.repo.object_hash(),
            gix::objs::Kind::Blob,
            &p.to_bytes(),
        )
    };
    let edited = rewrite(repo, |index, index_second| {
        let mut left = Vec::new();
        let mut changed = false;
        for (rel, pointer) in files {
            let abs = work_tree.join(rel);
            let key = gix::path::os_str_into_bstr(rel.as_os_str()).ok();
            let entry = key.and_then(|k| index.entry_mut_by_path_and_stage(k, Stage::Unconflicted));
            let stat = match entry {
                Some(entry) if Some(entry.id) == pointer_blob(pointer).ok() => {
                    current_stat(repo, rel, &abs, pointer, index_second).map(|stat| (entry, stat))
                }
                _ => None,
            };
            match stat {
                Some((entry, stat)) => {
                    entry.stat = stat;
                    changed = true;
                }
                None => left.push((rel.clone(), *pointer)),
            }
        }
        (left, changed)
    })?;
    Ok(edited.unwrap_or_else(|| files.to_vec()))
}

/// After Dits changed only the permissions of `paths` (lockable files made read-only or
/// writable): a chmod moves the ctime, which git compares, so the next `git status` would
/// read (and clean) each file again. The new ctime goes into the index, for entries whose
/// every other stat field still matches the file (so the content is what the index says).
pub fn record_mode_change(repo: &Repo, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let work_tree = repo.work_tree()?;
    rewrite(repo, |index, _| {
        let mut changed = false;
        for rel in paths {
            let Some(entry) =
                index.entry_mut_by_path_and_stage(rel.as_str().into(), Stage::Unconflicted)
            else {
                continue;
            };
            let Ok(meta) = gix::index::fs::Metadata::from_path_no_follow(&work_tree.join(rel))
            else {
                continue;
            };
            let Ok(now) = Stat::from_fs(&meta) else {
                continue;
            };
            let same_but_ctime = Stat {
                ctime: entry.stat.ctime,
                ..now
            } == entry.stat;
            if same_but_ctime && now.ctime != entry.stat.ctime {
                entry.stat.ctime = now.ctime;
                changed = true;
            }
        }
        ((), changed)
    })?;
    Ok(())
}

/// Reads the index under git's `index.lock`, lets `edit` change entries (it says whether it
/// did), and writes it back keeping its mtime (see the module doc). `edit` gets the index's
/// mtime to the second. `None` if the index is of a kind this code cannot rewrite.
fn rewrite<T>(
    repo: &Repo,
    edit: impl FnOnce(&mut gix::index::File, SystemTime) -> (T, bool),
) -> Result<Option<T>> {
    let index_path = repo.repo.index_path();
    let mut lock = gix::lock::File::acquire_to_update_resource(
        &index_path,
        gix::lock::acquire::Fail::AfterDurationWithBackoff(LOCK_WAIT),
        None,
        0,
    )
    .with_context(|| format!("locking {}", index_path.display()))?;
    // Read under the lock: nobody else can change the index between this read and our write.
    let index_mtime = fs::metadata(&index_path)
        .and_then(|m| m.modified())
        .with_context(|| format!("reading {}", index_path.display()))?;
    let mut index = gix::index::File::at(
        &index_path,
        repo.repo.object_hash(),
        false,
        Default::default(),
    )
    .with_context(|| format!("reading {}", index_path.display()))?;
    if !rewritable(&index) {
        return Ok(None);
    }
    // Git compares whole seconds here unless built with USE_NSEC, which it is not by default:
    // a file whose mtime is not before this second would be racily clean.
    let index_second = index_mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let (out, changed) = edit(&mut index, index_second);
    if !changed {
        return Ok(Some(out));
    }
    lock.with_mut(|out| {
        let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut *out);
        index
            .write_to(&mut buffered, gix::index::write::Options::default())
            .map_err(std::io::Error::other)?;
        std::io::Write::flush(&mut buffered)?;
        drop(buffered);
        out.set_times(FileTimes::new().set_modified(index_mtime))
    })
    .with_context(|| format!("writing {}", index_path.display()))?;
    lock.commit()
        .map_err(|e| e.error)
        .with_context(|| format!("replacing {}", index_path.display()))?;
    Ok(Some(out))
}

/// Indexes whose every part gix writes back (it writes the tree cache and nothing else).
fn rewritable(index: &gix::index::File) -> bool {
    matches!(
        index.version(),
        gix::index::Version::V2 | gix::index::Version::V3
    ) && index.link().is_none()
        && index.untracked().is_none()
        && index.fs_monitor().is_none()
        && index.resolve_undo().is_none()
        && !index.is_sparse()
}

/// The stat data to record for a file Dits wrote, if it is still exactly that file. A file not
/// older than `index_second` is backdated first (it would be racily clean), and its record
/// renewed.
fn current_stat(
    repo: &Repo,
    rel: &Path,
    abs: &Path,
    pointer: &Pointer,
    index_second: SystemTime,
) -> Option<Stat> {
    let records = repo.stat_record_dir();
    if stat_record::lookup(&records, rel, abs) != Some(*pointer) {
        return None;
    }
    let mut meta = gix::index::fs::Metadata::from_path_no_follow(abs).ok()?;
    if meta.modified()? >= index_second {
        let earlier = index_second.checked_sub(Duration::from_secs(1))?;
        fs::File::options()
            .write(true)
            .open(abs)
            .and_then(|f| f.set_times(FileTimes::new().set_modified(earlier)))
            .ok()?;
        stat_record::record(&records, rel, abs, pointer).ok()?;
        meta = gix::index::fs::Metadata::from_path_no_follow(abs).ok()?;
    }
    Stat::from_fs(&meta).ok()
}
