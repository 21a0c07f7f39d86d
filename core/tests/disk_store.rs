//! The on-disk store against a real filesystem: durability, crash leftovers, concurrent
//! writers, and damage detection.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use dits_core::chunker::ChunkerParams;
use dits_core::ingest::ingest;
use dits_core::progress::Silent;
use dits_core::reader::ManifestReader;
use dits_core::store::{ChunkSink, ChunkSource, DiskStore, Fsync, StoreError, StoreOptions};
use dits_core::{ChunkId, FileId};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn read_back(store: &DiskStore, id: &FileId) -> std::io::Result<Vec<u8>> {
    let m = store.read_manifest(id).map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    ManifestReader::new(store, m).read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn survives_reopen_and_stays_packed() -> Result {
    let dir = tempfile::tempdir()?;
    let data = noise(1, 6 * 1024 * 1024);
    let id = {
        let store = DiskStore::open(dir.path(), StoreOptions::default())?;
        let mut w = store.writer()?;
        ingest(&data[..], ChunkerParams::default(), &mut w, &Silent)?
            .manifest
            .file_id
    };
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    assert_eq!(read_back(&store, &id)?, data);
    let packs = fs::read_dir(dir.path().join("packs"))?.count();
    assert_eq!(packs, 2, "one pack and its index, not one file per chunk");
    Ok(())
}

#[test]
fn pack_size_limit_rotates_packs() -> Result {
    let dir = tempfile::tempdir()?;
    let opts = StoreOptions {
        pack_size_limit: 1 << 20,
        ..StoreOptions::default()
    };
    let store = DiskStore::open(dir.path(), opts)?;
    let data = noise(2, 5 * 1024 * 1024);
    let id = ingest(
        &data[..],
        ChunkerParams::default(),
        &mut store.writer()?,
        &Silent,
    )?
    .manifest
    .file_id;
    let infos = store.pack_infos()?;
    assert!(infos.len() >= 4, "{} packs", infos.len());
    assert!(infos.iter().all(|p| p.indexed_len == Some(p.file_len)));
    assert_eq!(read_back(&DiskStore::open(dir.path(), opts)?, &id)?, data);
    Ok(())
}

/// What a `kill -9` between writing chunks and publishing their index leaves behind: the
/// records that reached the pack whole are found by walking it (each verified), a torn last
/// record is ignored, and `fsck` finds nothing wrong.
#[test]
fn a_killed_writers_tail_is_walked_and_a_torn_record_ignored() -> Result {
    let dir = tempfile::tempdir()?;
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let committed = noise(3, 300_000);
    let lost = noise(4, 2_000_000);
    let mut w = store.writer()?;
    let cid = ChunkId::of(&committed[..100_000]);
    w.put_chunk(cid, &committed[..100_000])?;
    w.commit()?;
    // More than the writer's buffer, so the bytes really reach the pack file.
    for part in lost.chunks(200_000) {
        w.put_chunk(ChunkId::of(part), part)?;
    }
    // Simulate the crash: the process dies, so neither commit nor Drop runs.
    std::mem::forget(w);
    let info = store.pack_infos()?.remove(0);
    // The kill also tore the last record written: cut it in the middle.
    let torn = fs::metadata(&info.data_path)?.len() - 1_000;
    fs::OpenOptions::new()
        .write(true)
        .open(&info.data_path)?
        .set_len(torn)?;
    let walked = ChunkId::of(&lost[..200_000]);
    let last = lost.chunks(200_000).last().expect("parts");
    let reopened = DiskStore::open(dir.path(), StoreOptions::default())?;
    assert!(reopened.has_chunk(&cid));
    assert!(
        reopened.has_chunk(&walked),
        "walked when the store was opened"
    );
    assert_eq!(reopened.read_chunk(&walked)?, &lost[..200_000]);
    // A walked record was never committed: a writer stores it again rather than count on it.
    assert!(!ChunkSink::has_chunk(&reopened.writer()?, &walked));
    assert!(matches!(
        reopened.read_chunk(&ChunkId::of(last)),
        Err(StoreError::ChunkMissing { .. })
    ));
    let mut problems = Vec::new();
    reopened.verify_all(|e| problems.push(e), &Silent)?;
    assert!(problems.is_empty(), "{problems:?}");
    // The torn chunk can simply be written again.
    let mut w = reopened.writer()?;
    assert!(w.put_chunk(ChunkId::of(last), last)? > 0);
    w.commit()?;
    assert_eq!(reopened.read_chunk(&ChunkId::of(last))?, last);
    Ok(())
}

/// With `dits.fsync=batch` a commit writes its records but indexes them only once the batch is
/// due: another process reads them at once (by walking), and closing the store indexes them.
#[test]
fn batched_commits_are_readable_at_once_and_indexed_when_the_store_closes() -> Result {
    let dir = tempfile::tempdir()?;
    let opts = StoreOptions {
        fsync: Fsync::Batch,
        ..StoreOptions::default()
    };
    let store = DiskStore::open(dir.path(), opts)?;
    let files: Vec<Vec<u8>> = (0..20).map(|i| noise(50 + i, 30_000)).collect();
    let mut ids = Vec::new();
    for f in &files {
        let mut w = store.writer()?;
        ids.push(
            ingest(&f[..], ChunkerParams::default(), &mut w, &Silent)?
                .manifest
                .file_id,
        );
    }
    let packs = store.pack_infos()?;
    assert_eq!(packs.len(), 1, "one pack for all the files: {packs:?}");
    assert_eq!(
        packs[0].indexed_len, None,
        "no index before the batch is due"
    );
    // Another process (a handle of its own) reads every file without an index.
    let other = DiskStore::open(dir.path(), StoreOptions::default())?;
    for (f, id) in files.iter().zip(&ids) {
        assert_eq!(&read_back(&other, id)?, f);
    }
    drop(store);
    let packs = DiskStore::open(dir.path(), StoreOptions::default())?.pack_infos()?;
    assert_eq!(
        packs[0].indexed_len,
        Some(packs[0].file_len),
        "closing the store indexed the whole batch"
    );
    Ok(())
}

#[test]
fn concurrent_writers_in_separate_processes_style() -> Result {
    let dir = tempfile::tempdir()?;
    let shared = noise(5, 2 * 1024 * 1024);
    let ids: Vec<FileId> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|i| {
                let path = dir.path().to_owned();
                let shared = &shared;
                s.spawn(move || -> std::result::Result<FileId, String> {
                    // Each thread opens its own store, as separate filter processes do.
                    let store = DiskStore::open(&path, StoreOptions::default())
                        .map_err(|e| e.to_string())?;
                    let mut data = shared.clone();
                    data.extend_from_slice(&noise(100 + i, 500_000));
                    let mut w = store.writer().map_err(|e| e.to_string())?;
                    ingest(&data[..], ChunkerParams::default(), &mut w, &Silent)
                        .map(|i| i.manifest.file_id)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic").expect("ingest"))
            .collect()
    });
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    for (i, id) in ids.iter().enumerate() {
        let mut expect = shared.clone();
        expect.extend_from_slice(&noise(100 + i as u64, 500_000));
        assert_eq!(read_back(&store, id)?, expect);
    }
    Ok(())
}

#[test]
fn bit_flip_is_detected_named_and_repairable() -> Result {
    let dir = tempfile::tempdir()?;
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let data = noise(6, 1024 * 1024);
    let m = ingest(
        &data[..],
        ChunkerParams::default(),
        &mut store.writer()?,
        &Silent,
    )?
    .manifest;
    let info = store.pack_infos()?.remove(0);
    // Flip one bit in the middle of the pack (inside some chunk's payload).
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&info.data_path)?;
    let at = info.file_len / 2;
    f.seek(SeekFrom::Start(at))?;
    let mut b = [0u8];
    f.read_exact(&mut b)?;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(&[b[0] ^ 0x40])?;
    drop(f);

    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let err = read_back(&store, &m.file_id).expect_err("corruption must surface");
    assert!(
        err.to_string().contains("does not match its BLAKE3 id"),
        "{err}"
    );
    let mut problems = Vec::new();
    store.verify_all(|e| problems.push(e), &Silent)?;
    assert_eq!(problems.len(), 1);
    let StoreError::ChunkCorrupt { id, pack, .. } = &problems[0] else {
        panic!("unexpected {:?}", problems[0]);
    };
    assert_eq!(pack, &info.data_path);
    // Repair forgets the damaged chunk; re-adding the content heals the store.
    assert_eq!(store.drop_damaged()?, vec![*id]);
    assert!(!store.has_chunk(id));
    ingest(
        &data[..],
        ChunkerParams::default(),
        &mut store.writer()?,
        &Silent,
    )?;
    assert_eq!(read_back(&store, &m.file_id)?, data);
    Ok(())
}

#[test]
fn truncated_pack_is_reported_not_read_past() -> Result {
    let dir = tempfile::tempdir()?;
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let data = noise(7, 1024 * 1024);
    let m = ingest(
        &data[..],
        ChunkerParams::default(),
        &mut store.writer()?,
        &Silent,
    )?
    .manifest;
    let info = store.pack_infos()?.remove(0);
    OpenOptions::new()
        .write(true)
        .open(&info.data_path)?
        .set_len(info.file_len / 3)?;
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let err = read_back(&store, &m.file_id).expect_err("truncation must surface");
    assert!(err.to_string().contains("truncated"), "{err}");
    Ok(())
}

#[test]
fn damaged_index_and_manifest_are_named() -> Result {
    let dir = tempfile::tempdir()?;
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let m = ingest(
        &noise(8, 200_000)[..],
        ChunkerParams::default(),
        &mut store.writer()?,
        &Silent,
    )?
    .manifest;
    let mpath = store.manifest_path(&m.file_id);
    let mut bytes = fs::read(&mpath)?;
    bytes[70] ^= 1;
    fs::write(&mpath, bytes)?;
    let err = store
        .read_manifest(&m.file_id)
        .expect_err("damaged manifest");
    assert!(
        err.to_string().contains(&mpath.display().to_string()),
        "{err}"
    );

    let idx = dir
        .path()
        .join("packs")
        .join(format!("{}.idx", store.pack_infos()?[0].name));
    fs::write(&idx, b"garbage")?;
    // The store still opens; the damaged index is reported, and repair rebuilds it from the
    // pack's self-describing records without losing a chunk.
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let damaged = store.damaged_indexes();
    assert_eq!(damaged.len(), 1);
    assert!(
        damaged[0].to_string().contains(&idx.display().to_string()),
        "{}",
        damaged[0]
    );
    assert!(!store.has_chunk(&m.chunks[0].id));
    assert_eq!(store.repair_packs(Duration::ZERO)?.indexes_rebuilt, 1);
    assert!(store.damaged_indexes().is_empty());
    for c in &m.chunks {
        assert_eq!(ChunkId::of(&store.read_chunk(&c.id)?), c.id);
    }
    Ok(())
}

/// A filter cleans many files one after another; they must share a pack, not make one each.
#[test]
fn successive_writers_share_one_pack() -> Result {
    let dir = tempfile::tempdir()?;
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let mut ids = Vec::new();
    for i in 0..50 {
        let data = noise(1000 + i, 30_000);
        let mut w = store.writer()?;
        ids.push((
            ingest(&data[..], ChunkerParams::default(), &mut w, &Silent)?
                .manifest
                .file_id,
            data,
        ));
    }
    assert_eq!(
        store.pack_infos()?.len(),
        1,
        "one pack for fifty small files"
    );
    let reopened = DiskStore::open(dir.path(), StoreOptions::default())?;
    for (id, data) in &ids {
        assert_eq!(&read_back(&reopened, id)?, data);
    }
    Ok(())
}

/// A pack whose header was overwritten is reported as damaged, but its intact records stay
/// readable, and repair copies them into a sound pack: nothing readable is lost.
#[test]
fn damaged_pack_header_is_reported_and_repaired_without_loss() -> Result {
    let dir = tempfile::tempdir()?;
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let data = noise(9, 300_000);
    let id = ingest(
        &data[..],
        ChunkerParams::default(),
        &mut store.writer()?,
        &Silent,
    )?
    .manifest
    .file_id;
    let info = store.pack_infos()?.remove(0);
    let mut f = OpenOptions::new().write(true).open(&info.data_path)?;
    f.write_all(b"NOTAPACK")?;
    drop(f);
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let damaged = store.damaged_indexes();
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert!(damaged[0].contains("header"), "{}", damaged[0]);
    assert_eq!(read_back(&store, &id)?, data, "records are still readable");
    let report = store.repair_packs(Duration::ZERO)?;
    assert_eq!(report.headers_repaired, 1, "{report:?}");
    assert!(store.damaged_indexes().is_empty());
    let reopened = DiskStore::open(dir.path(), StoreOptions::default())?;
    assert!(reopened.damaged_indexes().is_empty());
    assert_eq!(read_back(&reopened, &id)?, data);
    Ok(())
}

/// A deleted index only costs a walk of the pack, and is rebuilt from the pack's records; a
/// young orphan (another process may still be writing it) is left alone.
#[test]
fn a_missing_index_is_rebuilt_from_the_records() -> Result {
    let dir = tempfile::tempdir()?;
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    let data = noise(10, 900_000);
    let id = ingest(
        &data[..],
        ChunkerParams::default(),
        &mut store.writer()?,
        &Silent,
    )?
    .manifest
    .file_id;
    let info = store.pack_infos()?.remove(0);
    fs::remove_file(info.data_path.with_extension("idx"))?;
    let store = DiskStore::open(dir.path(), StoreOptions::default())?;
    assert_eq!(store.pack_infos()?[0].indexed_len, None);
    assert_eq!(read_back(&store, &id)?, data, "found by walking the pack");
    let young = store.repair_packs(Duration::from_secs(3600))?;
    assert_eq!((young.orphans_indexed, young.orphans_too_young), (0, 1));
    let report = store.repair_packs(Duration::ZERO)?;
    assert_eq!(report.orphans_indexed, 1, "{report:?}");
    assert!(report.chunks_recovered > 3);
    assert_eq!(read_back(&store, &id)?, data);
    Ok(())
}
