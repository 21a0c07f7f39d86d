//! Reading one pack record: the only decoder of records, used by every read, by `fsck` and by
//! the repair scan that rebuilds indexes. A record is returned only once its payload
//! (decompressed if flagged) has exactly `raw_len` bytes whose derive-key BLAKE3 is its id.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::compress;
use super::format::{IdxEntry, RecordHeader, FLAG_ZSTD, RECORD_HEADER_LEN};
use crate::id::ChunkId;

/// Largest payload a record may declare (chunks are at most 256 KiB; group objects smaller).
pub(crate) const MAX_STORED_LEN: u32 = 16 << 20;

/// Why a record could not be read.
#[derive(Debug)]
pub(crate) enum RecordError {
    /// Reading the file failed (the disk, not the data).
    Io(io::Error),
    /// The bytes are there but wrong, or the file ends inside the record.
    Corrupt(String),
}

/// The record header at `offset`, if the file holds a whole one there.
pub(crate) fn header_at(file: &File, offset: u64) -> Result<RecordHeader, RecordError> {
    let mut head = [0u8; RECORD_HEADER_LEN];
    file.read_exact_at(&mut head, offset)
        .map_err(eof_is_corrupt)?;
    Ok(RecordHeader::decode(&head))
}

/// Reads and verifies the record `entry` describes. The header on disk must agree with the
/// entry (a record that is not where the index says is corrupt, whatever its bytes).
pub(crate) fn read(file: &File, entry: &IdxEntry) -> Result<Vec<u8>, RecordError> {
    let header = header_at(file, entry.offset)?;
    if header.id != entry.id
        || header.raw_len != entry.raw_len
        || header.stored_len != entry.stored_len
        || header.flags != entry.flags
    {
        return Err(RecordError::Corrupt(
            "record header does not match the index".into(),
        ));
    }
    payload(file, entry)
}

/// The verified chunk of a record whose header was already read (`entry` from it).
pub(crate) fn payload(file: &File, entry: &IdxEntry) -> Result<Vec<u8>, RecordError> {
    if entry.stored_len > MAX_STORED_LEN || entry.raw_len > MAX_STORED_LEN {
        return Err(RecordError::Corrupt("record lengths out of bounds".into()));
    }
    // The payload lands where it is returned: one read into one buffer.
    let mut payload = vec![0u8; entry.stored_len as usize];
    file.read_exact_at(&mut payload, entry.offset + RECORD_HEADER_LEN as u64)
        .map_err(eof_is_corrupt)?;
    let data = if entry.flags & FLAG_ZSTD != 0 {
        compress::decompress(&payload, entry.raw_len)
            .map_err(|e| RecordError::Corrupt(format!("cannot decompress: {e}")))?
    } else {
        payload
    };
    if data.len() != entry.raw_len as usize {
        return Err(RecordError::Corrupt("payload has the wrong length".into()));
    }
    if ChunkId::of(&data) != entry.id {
        return Err(RecordError::Corrupt(
            "content does not match its BLAKE3 id".into(),
        ));
    }
    Ok(data)
}

fn eof_is_corrupt(e: io::Error) -> RecordError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => RecordError::Corrupt("pack is truncated".into()),
        _ => RecordError::Io(e),
    }
}

/// The record whose header starts at `offset` of a file of `len` bytes, and whether its
/// declared lengths and flags are plausible and it fits in the file. `None`: no whole header
/// there.
fn candidate_at(file: &File, offset: u64, len: u64) -> io::Result<Option<(IdxEntry, bool)>> {
    if offset + RECORD_HEADER_LEN as u64 > len {
        return Ok(None);
    }
    let header = match header_at(file, offset) {
        Ok(h) => h,
        Err(RecordError::Io(e)) => return Err(e),
        Err(RecordError::Corrupt(_)) => return Ok(None),
    };
    let entry = IdxEntry {
        id: header.id,
        offset,
        raw_len: header.raw_len,
        stored_len: header.stored_len,
        flags: header.flags,
    };
    let fits = header.stored_len <= MAX_STORED_LEN
        && header.flags & !FLAG_ZSTD == 0
        && offset + entry.record_len() <= len;
    Ok(Some((entry, fits)))
}

/// The records from `from` on that are whole and verify, up to the first that is not (a
/// writer may be appending it right now, or died in the middle of it): `(entries, end)`, where
/// `end` is the offset just past the last good record. Nothing is skipped: what follows a bad
/// record is left to the repair [`scan`].
pub(crate) fn walk(file: &File, from: u64, len: u64) -> io::Result<(Vec<IdxEntry>, u64)> {
    let mut entries = Vec::new();
    let mut offset = from;
    while let Some((entry, true)) = candidate_at(file, offset, len)? {
        match payload(file, &entry) {
            Ok(_) => {}
            Err(RecordError::Io(e)) => return Err(e),
            Err(RecordError::Corrupt(_)) => break,
        }
        offset += entry.record_len();
        entries.push(entry);
    }
    Ok((entries, offset))
}

/// Every record of a pack file that verifies, in file order, found by walking the records
/// from the header on: what an index would list if the pack's own index is damaged or lost.
/// A record that does not verify is skipped by its declared length when that length is
/// plausible, else the walk looks for the next record that verifies byte by byte (a damaged
/// header loses one record, not the rest of the pack). Returns the entries (each id once) and
/// the length of the pack they lie in.
pub(crate) fn scan(file: &File, len: u64) -> io::Result<Vec<IdxEntry>> {
    use super::format::PACK_HEADER_LEN;
    let mut entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut offset = PACK_HEADER_LEN;
    let mut resync = false;
    while let Some((entry, fits)) = candidate_at(file, offset, len)? {
        let verified = fits && payload(file, &entry).is_ok();
        match (verified, resync) {
            (true, _) => {
                resync = false;
                if seen.insert(entry.id) {
                    entries.push(entry);
                }
                offset += entry.record_len();
            }
            // A damaged payload under a sane header: step over it.
            (false, false) if fits => offset += entry.record_len(),
            // No sane header here: look for the next record one byte further on.
            (false, _) => {
                resync = true;
                offset += 1;
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::format::{pack_header, PACK_HEADER_LEN};
    use std::io::Write;

    fn record(data: &[u8]) -> Vec<u8> {
        let h = RecordHeader {
            id: ChunkId::of(data),
            flags: 0,
            raw_len: data.len() as u32,
            stored_len: data.len() as u32,
        };
        let mut out = h.encode().to_vec();
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn scan_steps_over_a_damaged_record_and_resyncs_after_a_damaged_header(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let chunks: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 1000 + i as usize]).collect();
        let mut pack = pack_header().to_vec();
        let mut offsets = Vec::new();
        for c in &chunks {
            offsets.push(pack.len());
            pack.extend_from_slice(&record(c));
        }
        // Damage the payload of record 1 and the stored length in record 3's header.
        pack[offsets[1] + RECORD_HEADER_LEN + 5] ^= 1;
        pack[offsets[3] + 40] ^= 0x40;
        let mut file = tempfile::tempfile()?;
        file.write_all(&pack)?;
        let found = scan(&file, pack.len() as u64)?;
        let ids: Vec<ChunkId> = found.iter().map(|e| e.id).collect();
        let expect: Vec<ChunkId> = [0, 2, 4, 5]
            .iter()
            .map(|&i| ChunkId::of(&chunks[i]))
            .collect();
        assert_eq!(ids, expect);
        assert!(found.iter().all(|e| e.offset >= PACK_HEADER_LEN));
        for e in &found {
            assert!(read(&file, e).is_ok());
        }
        Ok(())
    }
}
