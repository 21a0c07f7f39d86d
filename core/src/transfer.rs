//! Fetching content into the local store from a [`ContentSource`], and the server's rule for
//! accepting a manifest from a peer.
//!
//! Order and checks of a fetch, for any number of files at once:
//! 1. each wanted file's top-level manifest (unless one is here) is asked for in one request,
//!    and must be the file asked for, of the pointer's size, before anything else moves;
//! 2. the group objects the store lacks, then the chunks it lacks, in file order, batch by
//!    batch; each batch is made durable before the next is taken (an interrupted fetch
//!    resumes, and a broken transfer is retried under [`RetryPolicy`]);
//! 3. as chunks land, each file's content is rebuilt in order and checked against its id
//!    ([`crate::rebuild`]), and written into a temp file for the one file a caller wants
//!    prepared; only then is its manifest kept, as the bytes the source stored. A manifest
//!    whose content does not hash to its id is never kept, and is reported for that file.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::id::{ChunkId, FileId};
use crate::manifest::{ChunkRef, Manifest, TopManifest};
use crate::pointer::Pointer;
use crate::progress::{Progress, Silent};
use crate::rebuild::{check_size, manifest_for, Rebuild};
use crate::source::{Batch, ContentSource, RetryPolicy, SourceError, SourceErrorKind};
use crate::store::{ChunkSink, ChunkSource, DiskStore, StoreError};
use crate::worktree::{Prepared, Preparer};

/// Copies the manifest of `id` and every chunk it needs that `dest` lacks. Chunks are committed
/// before the manifest, as in ingest, so a crash never leaves a manifest without its chunks.
pub fn import_file<S: ChunkSource + ?Sized, D: ChunkSink>(
    source: &S,
    dest: &mut D,
    id: &FileId,
) -> Result<Manifest, StoreError> {
    let manifest = source.read_manifest(id)?;
    for c in &manifest.chunks {
        if dest.has_chunk(&c.id) {
            continue;
        }
        let data = source.read_chunk(&c.id)?;
        if let Err(e) = dest.put_chunk(c.id, &data) {
            dest.rollback();
            return Err(e);
        }
    }
    dest.commit()?;
    dest.put_manifest(&manifest)?;
    Ok(manifest)
}

/// What one [`fetch`] did.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Distinct files asked for.
    pub files: usize,
    /// Of those, files that were not complete locally.
    pub files_fetched: usize,
    pub chunks_fetched: u64,
    /// Chunk payload bytes received.
    pub bytes_fetched: u64,
    /// Files this source could not provide, and why (the others are complete locally).
    pub failed: Vec<(Pointer, SourceError)>,
    /// The file asked for in [`FetchOptions::prepare`], written into a temp file.
    pub prepared: Option<Prepared>,
}

#[derive(Default)]
pub struct FetchOptions<'a> {
    /// Also write this file's content into a temp file in the directory as it lands.
    pub prepare: Option<(FileId, &'a Path)>,
    pub progress: Option<&'a dyn Progress>,
    pub retry: RetryPolicy,
}

/// A file being fetched: its manifest and the check its content goes through.
struct Pending {
    pointer: Pointer,
    /// The top-level bytes to keep once the content checks out (None: the manifest is local).
    top: Option<Vec<u8>>,
    check: Check,
}

enum Check {
    Verify(Rebuild),
    Prepare(Preparer),
}

impl Check {
    fn manifest(&self) -> &Manifest {
        match self {
            Check::Verify(r) => r.manifest(),
            Check::Prepare(p) => p.manifest(),
        }
    }

    fn advance(
        &mut self,
        store: &DiskStore,
        fresh: &HashMap<ChunkId, &[u8]>,
    ) -> Result<bool, StoreError> {
        match self {
            Check::Verify(r) => {
                r.advance(store, fresh, &mut io::sink(), Path::new("-"))?;
                Ok(r.is_complete())
            }
            Check::Prepare(p) => {
                p.advance(store, fresh)?;
                Ok(false)
            }
        }
    }

    fn finish(self, store: &DiskStore) -> Result<Option<Prepared>, StoreError> {
        match self {
            Check::Verify(mut r) => r
                .finish(store, &mut io::sink(), Path::new("-"))
                .map(|()| None),
            Check::Prepare(p) => p.finish(store).map(Some),
        }
    }
}

/// Makes the files `pointers` name complete in `local`, from `source`. Files the source does
/// not have, or sends wrong, are listed in [`Fetched::failed`]; an error means the transfer
/// itself failed (the source is unreachable, refused, or broke for good).
pub fn fetch(
    local: &DiskStore,
    source: &dyn ContentSource,
    pointers: &[Pointer],
    opts: FetchOptions<'_>,
) -> Result<Fetched, SourceError> {
    let name = source.describe();
    let local_err = |e: StoreError| SourceError::local(name.clone(), e);
    let progress = opts.progress.unwrap_or(&Silent);
    let mut seen = HashSet::new();
    let mut out = Fetched::default();
    // Each manifest is read once. A file whose manifest is here but whose chunks are not
    // (dropped by `git dits prune`, or a version never pushed that shares chunks with one
    // that was) needs only chunks, by id: the source may not know the file at all.
    let mut manifests: Vec<(Pointer, Option<Vec<u8>>, Manifest)> = Vec::new();
    let mut unknown = Vec::new();
    for p in pointers.iter().filter(|p| p.size > 0 && seen.insert(p.id)) {
        match manifest_for(local, p) {
            Ok(m) if m.chunks.iter().all(|c| local.has_chunk(&c.id)) => {}
            Ok(m) => manifests.push((*p, None, m)),
            Err(StoreError::ManifestMissing { .. }) => unknown.push(*p),
            // A wrong manifest here is of no use; the source's may be right.
            Err(e) if e.is_corruption() => {
                tracing::warn!("{e}; fetching it again from {name}");
                local.remove_manifest(&p.id).map_err(local_err)?;
                unknown.push(*p);
            }
            Err(e) => return Err(local_err(e)),
        }
    }
    out.files = seen.len();
    out.files_fetched = manifests.len() + unknown.len();
    if out.files_fetched == 0 {
        return Ok(out);
    }
    let ids: Vec<FileId> = unknown.iter().map(|p| p.id).collect();
    let tops = opts.retry.run(|| source.manifest_tops(&ids))?;
    let mut decoded = Vec::new();
    for (p, top) in unknown.iter().zip(tops) {
        match top.map(|bytes| decode_top(&bytes, p).map(|t| (t, bytes))) {
            None => out.failed.push((
                *p,
                SourceError::new(
                    &name,
                    SourceErrorKind::NotThere,
                    format!("it does not have file {}", p.id),
                ),
            )),
            Some(Err(why)) => out
                .failed
                .push((*p, SourceError::new(&name, SourceErrorKind::BadData, why))),
            Some(Ok(ok)) => decoded.push((*p, ok)),
        }
    }
    let mut writer = local.writer().map_err(local_err)?;
    let mut listed: HashSet<ChunkId> = HashSet::new();
    let groups: Vec<ChunkRef> = decoded
        .iter()
        .flat_map(|(_, (t, _))| {
            t.groups.iter().map(move |g| ChunkRef {
                id: g.id,
                len: t.group_object_len(g) as u32,
            })
        })
        .filter(|g| listed.insert(g.id) && !local.has_chunk(&g.id))
        .collect();
    receive(source, &mut writer, &groups, opts.retry, &mut |_| Ok(()))?;
    for (p, (top, bytes)) in decoded {
        let assembled = top
            .groups
            .iter()
            .map(|g| local.read_chunk(&g.id))
            .collect::<Result<Vec<_>, _>>()
            .map_err(local_err)
            .and_then(|groups| {
                Manifest::assemble(top, &groups).map_err(|e| {
                    SourceError::new(
                        &name,
                        SourceErrorKind::BadData,
                        format!("its manifest of {} is inconsistent ({e})", p.id),
                    )
                })
            });
        match assembled {
            Ok(m) => manifests.push((p, Some(bytes), m)),
            Err(e) => out.failed.push((p, e)),
        }
    }

    // The chunks to move, in file order, each once; and each file's check, in the same order.
    let wanted: Vec<ChunkRef> = manifests
        .iter()
        .flat_map(|(_, _, m)| m.chunks.iter().copied())
        .filter(|c| listed.insert(c.id) && !local.has_chunk(&c.id))
        .collect();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    for (pointer, top, m) in manifests {
        let check = match opts.prepare {
            Some((id, dir)) if id == pointer.id => Check::Prepare(
                Preparer::create(dir, m).map_err(|e| local_err(StoreError::io(dir, e)))?,
            ),
            _ => Check::Verify(Rebuild::new(m)),
        };
        pending.push_back(Pending {
            pointer,
            top,
            check,
        });
    }
    progress.set_total(wanted.iter().map(|c| u64::from(c.len)).sum());
    let mut checked: Vec<Pending> = Vec::new();
    // Files whose content did not check out: (pointer, whether the manifest was local, why).
    let mut bad: Vec<(Pointer, bool, StoreError)> = Vec::new();
    let (chunks, bytes) = receive(source, &mut writer, &wanted, opts.retry, &mut |batch| {
        // Only the first unfinished file is rebuilt from each batch: chunks come in file
        // order, so the files behind it wait for theirs anyway (and hold no hasher yet).
        let fresh: HashMap<ChunkId, &[u8]> =
            batch.iter().map(|(id, d)| (*id, d.as_slice())).collect();
        while let Some(front) = pending.front_mut() {
            match front.check.advance(local, &fresh) {
                Ok(true) => checked.extend(pending.pop_front()),
                Ok(false) => break,
                Err(e) if e.is_corruption() => {
                    let p = pending.pop_front().expect("front exists");
                    bad.push((p.pointer, p.top.is_none(), e));
                }
                Err(e) => return Err(local_err(e)),
            }
        }
        progress.inc(batch.iter().map(|(_, d)| d.len() as u64).sum());
        Ok(())
    })?;
    out.chunks_fetched = chunks;
    out.bytes_fetched = bytes;
    checked.extend(pending);
    for p in checked {
        let Pending {
            pointer,
            top,
            check,
        } = p;
        let manifest_id = check.manifest().file_id;
        match check.finish(local) {
            Ok(prepared) => {
                if let Some(top) = top {
                    local
                        .write_manifest_top(&manifest_id, &top)
                        .map_err(local_err)?;
                }
                if prepared.is_some() {
                    out.prepared = prepared;
                }
            }
            Err(e) if e.is_corruption() => bad.push((pointer, top.is_none(), e)),
            Err(e) => return Err(local_err(e)),
        }
    }
    for (pointer, was_local, e) in bad {
        if was_local {
            // The local manifest was wrong: forget it, so the next source is asked.
            local.remove_manifest(&pointer.id).map_err(local_err)?;
        }
        out.failed.push((
            pointer,
            SourceError::new(&name, SourceErrorKind::BadData, e),
        ));
    }
    Ok(out)
}

/// What [`fetch_all`] did.
#[derive(Debug, Default)]
pub struct FetchedAll {
    pub files: usize,
    pub files_fetched: usize,
    pub chunks_fetched: u64,
    pub bytes_fetched: u64,
    /// Files no source could provide, with what each source that failed said (empty: no
    /// source had it).
    pub missing: Vec<(Pointer, Vec<String>)>,
}

impl FetchedAll {
    /// Why `pointer`'s file could not be had, in one line, from what the sources said of it
    /// (one of [`FetchedAll::missing`]).
    pub fn reason(pointer: &Pointer, said: &[String]) -> String {
        if said.is_empty() {
            format!("no source has file {}", pointer.id)
        } else {
            said.join("; ")
        }
    }
}

/// Makes every file `pointers` name complete in `local`, asking the sources in order, each
/// only for what the ones before it could not provide.
pub fn fetch_all(
    local: &DiskStore,
    sources: &[Arc<dyn ContentSource>],
    pointers: &[Pointer],
    progress: &dyn Progress,
) -> FetchedAll {
    let mut out = FetchedAll::default();
    let mut seen = HashSet::new();
    let mut left: Vec<Pointer> = pointers
        .iter()
        .filter(|p| p.size > 0 && seen.insert(p.id))
        .copied()
        .collect();
    out.files = left.len();
    let mut reasons: HashMap<FileId, Vec<String>> = HashMap::new();
    let mut first = true;
    for source in sources {
        if left.is_empty() {
            break;
        }
        let opts = FetchOptions {
            progress: Some(progress),
            ..FetchOptions::default()
        };
        match fetch(local, source.as_ref(), &left, opts) {
            Ok(got) => {
                if first {
                    out.files_fetched = got.files_fetched;
                }
                out.chunks_fetched += got.chunks_fetched;
                out.bytes_fetched += got.bytes_fetched;
                let failed: HashSet<FileId> = got.failed.iter().map(|(p, _)| p.id).collect();
                for (p, e) in got.failed {
                    if e.kind != SourceErrorKind::NotThere {
                        reasons.entry(p.id).or_default().push(e.to_string());
                    }
                }
                if first && failed.is_empty() {
                    return out;
                }
                left.retain(|p| failed.contains(&p.id));
            }
            Err(e) => {
                let e = e.to_string();
                for p in &left {
                    reasons.entry(p.id).or_default().push(e.clone());
                }
            }
        }
        first = false;
    }
    // Whatever is still not complete here (also when there was no source at all).
    for p in left {
        let complete =
            manifest_for(local, &p).is_ok_and(|m| m.chunks.iter().all(|c| local.has_chunk(&c.id)));
        if !complete {
            out.missing
                .push((p, reasons.remove(&p.id).unwrap_or_default()));
        }
    }
    out
}

/// A top-level manifest from a source, checked to be the file asked for and of its size.
fn decode_top(bytes: &[u8], pointer: &Pointer) -> Result<TopManifest, String> {
    let top = TopManifest::decode(bytes)
        .map_err(|e| format!("it sent an invalid manifest for {} ({e})", pointer.id))?;
    if top.file_id != pointer.id {
        return Err(format!(
            "it sent the manifest of {} when asked for {}",
            top.file_id, pointer.id
        ));
    }
    if top.size != pointer.size {
        return Err(format!(
            "its manifest of {} describes {} bytes but the pointer says {}; nothing was downloaded for it",
            pointer.id, top.size, pointer.size
        ));
    }
    Ok(top)
}

/// Receives `wanted` into `writer`, each batch committed (durable) before `on_batch` sees it;
/// a broken transfer resumes with what is still missing. Returns chunks and bytes received.
fn receive(
    source: &dyn ContentSource,
    writer: &mut crate::store::PackWriter,
    wanted: &[ChunkRef],
    retry: RetryPolicy,
    on_batch: &mut dyn FnMut(&Batch) -> Result<(), SourceError>,
) -> Result<(u64, u64), SourceError> {
    let name = source.describe();
    let (mut done, mut bytes) = (0usize, 0u64);
    retry.run(|| {
        let left = &wanted[done..];
        if left.is_empty() {
            return Ok(());
        }
        source.chunks(left, &mut |batch| {
            if crate::progress::interrupted() {
                return Err(SourceError::local(&name, StoreError::Interrupted));
            }
            for (id, data) in &batch {
                writer
                    .put_chunk(*id, data)
                    .map_err(|e| SourceError::local(&name, e))?;
            }
            writer.commit().map_err(|e| SourceError::local(&name, e))?;
            done += batch.len();
            bytes += batch.iter().map(|(_, d)| d.len() as u64).sum::<u64>();
            on_batch(&batch)
        })
    })?;
    Ok((done as u64, bytes))
}

/// The manifest of `pointer` from `source` (top level and groups, each verified), without
/// storing anything and without the file's chunks: what a reader that wants a few byte ranges
/// of a large file (the mount) needs first. Also returns the group objects, which the caller
/// may keep like any verified chunk; the top level it must not keep, as nothing has checked
/// the content against the file id yet.
pub fn manifest_from(
    source: &dyn ContentSource,
    pointer: &Pointer,
    local: &dyn ChunkSource,
) -> Result<(Manifest, Batch), SourceError> {
    let name = source.describe();
    let bytes = source
        .manifest_tops(&[pointer.id])?
        .pop()
        .flatten()
        .ok_or_else(|| {
            SourceError::new(
                &name,
                SourceErrorKind::NotThere,
                format!("it does not have file {}", pointer.id),
            )
        })?;
    let top = decode_top(&bytes, pointer)
        .map_err(|why| SourceError::new(&name, SourceErrorKind::BadData, why))?;
    // Group objects already here (from an earlier read) are not fetched again.
    let wanted: Vec<ChunkRef> = top
        .groups
        .iter()
        .filter(|g| !local.has_chunk(&g.id))
        .map(|g| ChunkRef {
            id: g.id,
            len: top.group_object_len(g) as u32,
        })
        .collect();
    let mut objects = Vec::with_capacity(wanted.len());
    source.chunks(&wanted, &mut |batch| {
        objects.extend(batch);
        Ok(())
    })?;
    let fetched: HashMap<ChunkId, &Vec<u8>> = objects.iter().map(|(id, d)| (*id, d)).collect();
    let groups = top
        .groups
        .iter()
        .map(|g| match fetched.get(&g.id) {
            Some(d) => Ok((*d).clone()),
            None => local
                .read_chunk(&g.id)
                .map_err(|e| SourceError::local(&name, e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let m = Manifest::assemble(top, &groups).map_err(|e| {
        SourceError::new(
            &name,
            SourceErrorKind::BadData,
            format!("its manifest of {} is inconsistent ({e})", pointer.id),
        )
    })?;
    check_size(&m, pointer).map_err(|e| SourceError::new(&name, SourceErrorKind::BadData, e))?;
    Ok((m, objects))
}

/// Content that is neither local nor obtainable from any source.
///
/// Said as what the sources said when one failed (the same words for every file a server
/// that is down could not give, so a summary of many files says it once), else as what is
/// missing locally.
#[derive(Debug, thiserror::Error)]
#[error("{}", if tried.is_empty() { missing.to_string() } else { tried.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ") })]
pub struct EnsureError {
    pub missing: StoreError,
    /// What failed sources said (sources that simply lack the content are not listed).
    pub tried: Vec<SourceError>,
}

impl EnsureError {
    /// Whether a source was asked and failed other than by lacking the content (a server
    /// down, a refused token), as opposed to the content existing nowhere.
    pub fn source_failed(&self) -> bool {
        !self.tried.is_empty()
    }
}

/// Makes `pointer`'s content complete in `local`, from the first of `sources` that has it.
/// Returns the manifest (its size checked against the pointer).
pub fn ensure_local(
    local: &DiskStore,
    sources: &[Arc<dyn ContentSource>],
    pointer: &Pointer,
    progress: &dyn Progress,
) -> Result<Manifest, EnsureError> {
    from_sources(local, sources, pointer, None, progress).map(|(m, _)| m)
}

/// Like [`ensure_local`], and writes the file into a temp file in `dir` on the way (from the
/// chunks as they are fetched), ready to replace its pointer.
pub fn ensure_prepared(
    local: &DiskStore,
    sources: &[Arc<dyn ContentSource>],
    pointer: &Pointer,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Prepared, EnsureError> {
    let (m, prepared) = from_sources(local, sources, pointer, Some(dir), progress)?;
    match prepared {
        Some(p) => Ok(p),
        None => prepare_from(local, m, dir).map_err(|missing| EnsureError {
            missing,
            tried: Vec::new(),
        }),
    }
}

/// The content of `manifest`, all of whose chunks are in `store`, in a temp file in `dir`.
pub fn prepare_from(
    store: &DiskStore,
    manifest: Manifest,
    dir: &Path,
) -> Result<Prepared, StoreError> {
    let preparer =
        Preparer::create(dir, manifest).map_err(|e| StoreError::io(dir.to_owned(), e))?;
    let prepared = preparer.finish(store);
    if let Err(StoreError::ContentMismatch { id, .. }) = &prepared {
        store.remove_manifest(id)?;
    }
    prepared
}

fn from_sources(
    local: &DiskStore,
    sources: &[Arc<dyn ContentSource>],
    pointer: &Pointer,
    prepare: Option<&Path>,
    progress: &dyn Progress,
) -> Result<(Manifest, Option<Prepared>), EnsureError> {
    let missing = match manifest_for(local, pointer) {
        Ok(m) => match m.chunks.iter().find(|c| !local.has_chunk(&c.id)) {
            None => return Ok((m, None)),
            Some(c) => StoreError::ChunkMissing { id: c.id },
        },
        Err(e) => e,
    };
    let mut tried = Vec::new();
    for source in sources {
        let opts = FetchOptions {
            prepare: prepare.map(|dir| (pointer.id, dir)),
            progress: Some(progress),
            ..FetchOptions::default()
        };
        match fetch(local, source.as_ref(), std::slice::from_ref(pointer), opts) {
            Ok(mut got) => match got.failed.pop() {
                None => match manifest_for(local, pointer) {
                    Ok(m) => {
                        tracing::debug!("fetched {} from {}", pointer.id, source.describe());
                        return Ok((m, got.prepared));
                    }
                    Err(e) => tried.push(SourceError::local(source.describe(), e)),
                },
                Some((_, e)) if e.kind == SourceErrorKind::NotThere => {
                    tracing::debug!("{}: {e}", pointer.id)
                }
                Some((_, e)) => tried.push(e),
            },
            Err(e) if e.kind == SourceErrorKind::NotThere => {
                tracing::debug!("{}: {e}", pointer.id)
            }
            Err(e) => {
                // Said once by the caller's summary, not once per file here.
                tracing::debug!("cannot fetch {}: {e}", pointer.id);
                tried.push(e);
            }
        }
    }
    Err(EnsureError { missing, tried })
}

/// Why a top-level manifest received from a peer was not stored.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("manifest is invalid: {0}")]
    Invalid(#[from] crate::manifest::ManifestError),
    #[error("manifest of {file} needs {} objects that were not uploaded (first: {})", missing.len(), missing[0])]
    Missing { file: FileId, missing: Vec<ChunkId> },
    #[error("manifest of {file} does not describe that file: {why}; it was not stored")]
    Wrong { file: FileId, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a top-level manifest sent by a peer, but only once its groups and every chunk they
/// list are in `store` (committed), and the content they rebuild hashes to the file id: "a
/// manifest under file id X exists" means the content of X is here, so a write token cannot
/// pre-register a wrong manifest for content someone will push later. This is the server's
/// half of the rule "chunks first, manifest after".
pub fn accept_manifest_top(store: &DiskStore, top_bytes: &[u8]) -> Result<Manifest, AcceptError> {
    let top = TopManifest::decode(top_bytes)?;
    store.refresh()?;
    let file = top.file_id;
    let missing: Vec<_> = top
        .groups
        .iter()
        .map(|g| g.id)
        .filter(|id| !store.has_chunk(id))
        .collect();
    if !missing.is_empty() {
        return Err(AcceptError::Missing { file, missing });
    }
    let groups = top
        .groups
        .iter()
        .map(|g| store.read_chunk(&g.id))
        .collect::<Result<Vec<_>, _>>()?;
    // Decoding checked that the groups add up to the size, assembling that each group adds
    // up to what the top level says.
    let manifest = Manifest::assemble(top, &groups)?;
    let missing: Vec<_> = manifest
        .chunks
        .iter()
        .map(|c| c.id)
        .filter(|id| !store.has_chunk(id))
        .collect();
    if !missing.is_empty() {
        return Err(AcceptError::Missing { file, missing });
    }
    if store.has_manifest(&file) {
        // Stored before, so checked before.
        return Ok(manifest);
    }
    match crate::reader::copy_prefetched(store, &manifest, &mut io::sink()) {
        Ok(_) => {}
        Err(e) => match crate::reader::from_io(e, &PathBuf::from("-")) {
            StoreError::ContentMismatch { reason, .. } => {
                return Err(AcceptError::Wrong { file, why: reason })
            }
            StoreError::ChunkCorrupt { id, reason, .. } => {
                return Err(AcceptError::Wrong {
                    file,
                    why: format!("chunk {id} is damaged on the server ({reason})"),
                })
            }
            other => return Err(other.into()),
        },
    }
    store.write_manifest_top(&file, top_bytes)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::ChunkerParams;
    use crate::ingest::ingest;
    use crate::progress::Silent;
    use crate::source::LocalSource;
    use crate::store::{MemoryStore, StoreOptions};
    use crate::test_data::pseudo_random;

    #[test]
    fn import_copies_only_missing_chunks_and_refuses_damage(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut src = MemoryStore::default();
        let data = pseudo_random(21, 2_000_000);
        let m = ingest(&data[..], ChunkerParams::default(), &mut src, &Silent)?.manifest;
        let mut dst = MemoryStore::default();
        ingest(
            &data[..500_000],
            ChunkerParams::default(),
            &mut dst,
            &Silent,
        )?;
        let already: Vec<bool> = m
            .chunks
            .iter()
            .map(|c| ChunkSource::has_chunk(&dst, &c.id))
            .collect();
        assert!(already.iter().any(|&b| b), "the prefix shares chunks");
        let before = dst.chunk_count();
        import_file(&src, &mut dst, &m.file_id)?;
        let copied = already.iter().filter(|&&b| !b).count();
        assert_eq!(
            dst.chunk_count(),
            before + copied,
            "only missing chunks are copied"
        );
        assert!(m.chunks.iter().all(|c| ChunkSource::has_chunk(&dst, &c.id)));
        assert!(dst.has_manifest(&m.file_id));

        let mut bad_src = MemoryStore::default();
        ingest(&data[..], ChunkerParams::default(), &mut bad_src, &Silent)?;
        bad_src.corrupt(&m.chunks[5].id);
        let mut dst2 = MemoryStore::default();
        assert!(import_file(&bad_src, &mut dst2, &m.file_id).is_err());
        assert!(!dst2.has_manifest(&m.file_id));
        assert_eq!(
            dst2.chunk_count(),
            0,
            "nothing committed after a failed import"
        );
        Ok(())
    }

    fn disk(dir: &Path) -> Result<DiskStore, StoreError> {
        DiskStore::open(dir, StoreOptions::default())
    }

    /// A source holding a manifest under an id whose content it does not rebuild (squatted or
    /// poisoned): the fetch keeps neither it nor a pointer to it, and the next source's honest
    /// manifest is fetched and kept.
    #[test]
    fn a_wrong_manifest_is_never_kept_and_the_next_source_is_asked(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dirs: Vec<tempfile::TempDir> = (0..3)
            .map(|_| tempfile::tempdir())
            .collect::<Result<_, _>>()?;
        let (honest, poisoned, local) = (
            disk(dirs[0].path())?,
            disk(dirs[1].path())?,
            disk(dirs[2].path())?,
        );
        let data = pseudo_random(51, 1_300_000);
        let other = pseudo_random(52, 1_300_000);
        let good = ingest(
            &data[..],
            ChunkerParams::default(),
            &mut honest.writer()?,
            &Silent,
        )?
        .manifest;
        // The poisoned store: another file's chunks under this file's id and size.
        let wrong = ingest(
            &other[..],
            ChunkerParams::default(),
            &mut poisoned.writer()?,
            &Silent,
        )?
        .manifest;
        let mut forged = wrong.clone();
        forged.file_id = good.file_id;
        let enc = forged.encode();
        poisoned.write_manifest_top(&good.file_id, &enc.top)?;
        {
            let mut w = poisoned.writer()?;
            for (id, g) in &enc.groups {
                w.put_chunk(*id, g)?;
            }
            w.commit()?;
        }
        let pointer = Pointer::new(good.file_id, good.size);
        let sources: Vec<Arc<dyn ContentSource>> = vec![
            Arc::new(LocalSource::new(dirs[1].path().to_owned())),
            Arc::new(LocalSource::new(dirs[0].path().to_owned())),
        ];
        let got = fetch(
            &local,
            sources[0].as_ref(),
            &[pointer],
            FetchOptions::default(),
        )?;
        assert_eq!(got.failed.len(), 1, "the poisoned manifest is refused");
        assert_eq!(got.failed[0].1.kind, SourceErrorKind::BadData);
        assert!(!local.has_manifest(&good.file_id), "and not kept");
        let m = ensure_local(&local, &sources, &pointer, &Silent)?;
        assert_eq!(m.file_id, good.file_id);
        let mut out = Vec::new();
        crate::reader::copy_prefetched(&local, &m, &mut out)?;
        assert_eq!(out, data);
        // A manifest claiming another size is refused before any chunk moves.
        let bomb = Pointer::new(good.file_id, 3);
        let fresh = tempfile::tempdir()?;
        let empty = disk(fresh.path())?;
        let got = fetch(
            &empty,
            sources[1].as_ref(),
            &[bomb],
            FetchOptions::default(),
        )?;
        assert_eq!((got.failed.len(), got.chunks_fetched), (1, 0));
        Ok(())
    }

    #[test]
    fn the_server_refuses_a_manifest_whose_content_is_another_file(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = disk(dir.path())?;
        let data = pseudo_random(61, 900_000);
        let m = ingest(
            &data[..],
            ChunkerParams::default(),
            &mut store.writer()?,
            &Silent,
        )?
        .manifest;
        let mut forged = m.clone();
        forged.file_id = FileId::of(b"content pushed later");
        let enc = forged.encode();
        let err = accept_manifest_top(&store, &enc.top).expect_err("squatting");
        assert!(matches!(err, AcceptError::Wrong { .. }), "{err}");
        assert!(!store.has_manifest(&forged.file_id));
        // The honest manifest is accepted.
        accept_manifest_top(&store, &m.encode().top)?;
        Ok(())
    }
}
