//! Smudge: stream a file back out of the store, one verified chunk at a time, and check the
//! whole content against its file id at the end.

use std::io::{self, Read};

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
        if data.len() != chunk.len as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "chunk {} has {} bytes but the manifest of {} says {}",
                    chunk.id,
                    data.len(),
                    self.manifest.file_id,
                    chunk.len
                ),
            ));
        }
        self.hasher.update(&data);
        self.current = data;
        self.pos = 0;
        self.next += 1;
        Ok(true)
    }

    fn verify_whole(&mut self) -> io::Result<()> {
        let got = FileId(*self.hasher.finalize().as_bytes());
        if got != self.manifest.file_id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "content rebuilt for {} hashes to {got}; the manifest is wrong; hint: run `git dits fsck --repair` and re-add the file",
                    self.manifest.file_id
                ),
            ));
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
