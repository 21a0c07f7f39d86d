//! A store on a file system that fills up: a write that fails with ENOSPC must leave the
//! writer, and every later writer of the same process, as if it had never started. Runs on a
//! real tmpfs of a few megabytes that the test mounts (and grows) itself, so it needs root, as
//! the CI machines have.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use dits_core::chunker::ChunkerParams;
use dits_core::ingest::ingest;
use dits_core::progress::Silent;
use dits_core::reader::ManifestReader;
use dits_core::store::{ChunkSource, DiskStore, StoreOptions};
use dits_core::FileId;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A tmpfs mounted on a temp dir, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> Result {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed (these tests mount a tmpfs and need root): {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

impl Tmpfs {
    fn mount(bytes: u64) -> Result<Tmpfs> {
        let dir = tempfile::tempdir()?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "dits-test"])
            .arg(dir.path()))?;
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Frees space the way deleting a filler file would.
    fn resize(&self, bytes: u64) -> Result {
        run(Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(self.dir.path()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

fn read_back(store: &DiskStore, id: &FileId) -> std::io::Result<Vec<u8>> {
    let m = store.read_manifest(id).map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    ManifestReader::new(store, m).read_to_end(&mut out)?;
    Ok(out)
}

fn add(store: &DiskStore, data: &[u8]) -> std::result::Result<FileId, String> {
    let mut w = store.writer().map_err(|e| e.to_string())?;
    ingest(data, ChunkerParams::default(), &mut w, &Silent)
        .map(|i| i.manifest.file_id)
        .map_err(|e| e.to_string())
}

/// Every indexed record of every pack reads back and verifies.
fn assert_store_clean(store: &DiskStore) -> Result {
    let mut problems = Vec::new();
    store.verify_all(|e| problems.push(e.to_string()), &Silent)?;
    assert!(problems.is_empty(), "store damaged: {problems:#?}");
    assert!(store.damaged_indexes().is_empty());
    Ok(())
}

/// Fill the disk mid-file, free space, write again in the same process: the later writes
/// (which reuse the process's open pack) land where the index says.
#[test]
fn a_write_after_enospc_in_the_same_process_is_exact() -> Result {
    let fs = Tmpfs::mount(3 << 20)?;
    let root: PathBuf = fs.path().join("dits");
    let store = DiskStore::open(&root, StoreOptions::default())?;
    let first = noise(1, 1 << 20);
    let first_id = add(&store, &first)?;
    let too_big = noise(2, 3 << 20);
    let err = add(&store, &too_big).expect_err("the disk is full");
    assert!(err.contains("free disk space"), "{err}");
    assert_store_clean(&store)?;

    fs.resize(64 << 20)?;
    // Several files, so records go into the pack the failed writer held and past it.
    let later: Vec<Vec<u8>> = (3..6).map(|s| noise(s, (1 << 20) + 12_345)).collect();
    let mut ids = Vec::new();
    for data in &later {
        ids.push(add(&store, data)?);
    }
    let again = add(&store, &too_big)?;
    assert_store_clean(&store)?;
    assert_eq!(read_back(&store, &first_id)?, first);
    for (id, data) in ids.iter().zip(&later) {
        assert_eq!(&read_back(&store, id)?, data);
    }
    assert_eq!(read_back(&store, &again)?, too_big);
    // And as another process sees it.
    let reopened = DiskStore::open(&root, StoreOptions::default())?;
    assert_store_clean(&reopened)?;
    assert_eq!(read_back(&reopened, &again)?, too_big);
    Ok(())
}

/// A sweep over disk sizes puts the failure at every step of a write (pack header, record
/// buffer flush, fsync, index temp file, index rename, manifest): whatever failed, the
/// store stays clean and the same process stores everything once space is back.
#[test]
fn enospc_at_every_write_point_leaves_a_clean_store() -> Result {
    let files: Vec<Vec<u8>> = (10..14).map(|s| noise(s, 700_000 + s as usize)).collect();
    let mut failures = 0;
    // tmpfs counts whole pages, so steps of 32 KiB move the failure through every stage.
    for size in (256u64..=3200).step_by(96).map(|k| k << 10) {
        let fs = Tmpfs::mount(size)?;
        let root = fs.path().join("dits");
        let Ok(store) = DiskStore::open(&root, StoreOptions::default()) else {
            continue;
        };
        let mut stored = Vec::new();
        for data in &files {
            match add(&store, data) {
                Ok(id) => stored.push((id, data)),
                Err(_) => failures += 1,
            }
        }
        assert_store_clean(&store)?;
        fs.resize(64 << 20)?;
        for data in &files {
            let id = add(&store, data)?;
            stored.push((id, data));
        }
        assert_store_clean(&store)?;
        for (id, data) in &stored {
            assert_eq!(
                &&read_back(&store, id)?,
                data,
                "file {id} after size {size}"
            );
        }
        let reopened = DiskStore::open(&root, StoreOptions::default())?;
        assert_store_clean(&reopened)?;
    }
    assert!(failures > 10, "the sweep hit ENOSPC only {failures} times");
    Ok(())
}
