//! Smudge: stream a file back out of the store, one verified chunk at a time, and check the
//! whole content against its file id at the end.

use std::io::{self, Read, Write};

use crate::id::FileId;
use crate::manifest::Manifest;
use crate::store::{ChunkSource, StoreError};

pub struct ManifestReader<'a, S: ChunkSource + ?Sized> {
    store: &'a S,
    manifest: Manifest,
    next: usize,
    current: Vec<u8>,
    pos: usize,
    hasher: blake3::Hasher,
    finished: bool,
}

impl<'a, S: ChunkSource + ?Sized> ManifestReader<'a, S> {
    pub fn new(store: &'a S, manifest: Manifest) -> Self {
        ManifestReader {
            store,
            manifest,
            next: 0,
            current: Vec::new(),
            pos: 0,
            hasher: blake3::Hasher::new(),
            finished: false,
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn load_next(&mut self) -> io::Result<bool> {
        let Some(chunk) = self.manifest.chunks.get(self.next) else {
            return Ok(false);
        };
        if crate::progress::interrupted() {
            // Not ErrorKind::Interrupted: io::copy would retry that forever.
            return Err(io::Error::other("interrupted by the user"));
        }
        let data = self.store.read_chunk(&chunk.id).map_err(into_io)?;
        let data = check_len(data, chunk.len, &chunk.id, &self.manifest)?;
        self.hasher.update(&data);
        self.current = data;
        self.pos = 0;
        self.next += 1;
        Ok(true)
    }

    fn verify_whole(&mut self) -> io::Result<()> {
        let got = FileId(*self.hasher.finalize().as_bytes());
        if got != self.manifest.file_id {
            return Err(whole_file_mismatch(&self.manifest));
        }
        Ok(())
    }
}

impl<S: ChunkSource + ?Sized> Read for ManifestReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.finished {
                return Ok(0);
            }
            if !self.load_next()? {
                self.finished = true;
                self.verify_whole()?;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes the whole file to `out`, reading and verifying chunks on a second thread while this
/// one hashes the content and writes it: for large files the two halves of the work overlap
/// (a checkout of 1 GiB spends about as long verifying chunks as hashing and writing).
pub fn copy_prefetched<S: ChunkSource + ?Sized, W: Write>(
    store: &S,
    manifest: &Manifest,
    out: &mut W,
) -> io::Result<u64> {
    const AHEAD: usize = 16;
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(AHEAD);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for chunk in &manifest.chunks {
                let result = if crate::progress::interrupted() {
                    Err(io::Error::other("interrupted by the user"))
                } else {
                    store
                        .read_chunk(&chunk.id)
                        .map_err(into_io)
                        .and_then(|data| check_len(data, chunk.len, &chunk.id, manifest))
                };
                let failed = result.is_err();
                // A closed channel means the writer stopped; so do we.
                if tx.send(result).is_err() || failed {
                    return;
                }
            }
        });
        let mut hasher = blake3::Hasher::new();
        let mut total = 0u64;
        for data in rx {
            let data = data?;
            hasher.update(&data);
            out.write_all(&data)?;
            total += data.len() as u64;
        }
        if total != manifest.size || hasher.finalize().as_bytes() != manifest.file_id.as_bytes() {
            return Err(whole_file_mismatch(manifest));
        }
        Ok(total)
    })
}

fn check_len(data: Vec<u8>, len: u32, id: &crate::ChunkId, m: &Manifest) -> io::Result<Vec<u8>> {
    if data.len() != len as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "chunk {id} has {} bytes but the manifest of {} says {len}",
                data.len(),
                m.file_id
            ),
        ));
    }
    Ok(data)
}

fn whole_file_mismatch(m: &Manifest) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "content rebuilt for {} does not hash to its id; the manifest is wrong; hint: run `git dits fsck --repair` and re-add the file",
            m.file_id
        ),
    )
}

/// Keeps the store error's message (it names the chunk and the hint) through `io::Error`.
pub fn into_io(e: StoreError) -> io::Error {
    io::Error::other(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::ChunkerParams;
    use crate::ingest::ingest;
    use crate::progress::Silent;
    use crate::store::MemoryStore;
    use crate::test_data::pseudo_random;

    #[test]
    fn corrupted_chunk_is_an_error_not_bad_bytes() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = MemoryStore::default();
        let data = pseudo_random(5, 1024 * 1024);
        let m = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        store.corrupt(&m.chunks[3].id);
        let mut out = Vec::new();
        let err = ManifestReader::new(&store, m.clone())
            .read_to_end(&mut out)
            .expect_err("corruption must be reported");
        assert!(
            err.to_string().contains(&m.chunks[3].id.to_string()),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn prefetched_copy_matches_and_stops_on_corruption() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = MemoryStore::default();
        let data = pseudo_random(7, 3 * 1024 * 1024);
        let m = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        let mut out = Vec::new();
        assert_eq!(copy_prefetched(&store, &m, &mut out)?, data.len() as u64);
        assert_eq!(out, data);
        store.corrupt(&m.chunks[10].id);
        let err = copy_prefetched(&store, &m, &mut Vec::new()).expect_err("corruption");
        assert!(
            err.to_string().contains(&m.chunks[10].id.to_string()),
            "{err}"
        );
        let mut swapped = m.clone();
        swapped.chunks.swap(0, 1);
        assert!(copy_prefetched(&MemoryStore::default(), &swapped, &mut Vec::new()).is_err());
        Ok(())
    }

    #[test]
    fn wrong_manifest_is_caught_by_the_file_hash() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = MemoryStore::default();
        let data = pseudo_random(6, 512 * 1024);
        let mut m = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        m.chunks.swap(0, 1);
        let mut out = Vec::new();
        assert!(ManifestReader::new(&store, m)
            .read_to_end(&mut out)
            .is_err());
        Ok(())
    }
}
