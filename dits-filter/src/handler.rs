//! The Dits side of the filter: clean stores content and answers a pointer; smudge answers
//! content, or leaves the pointer for files too large for git's in-memory smudge buffer and
//! writes those itself when git closes the pipe (see docs/ARCHITECTURE.md).

use std::io::{self, Cursor, Read};
use std::path::PathBuf;
use std::sync::Arc;

use dits_core::chunker::ChunkerParams;
use dits_core::ingest_media::ingest_any;
use dits_core::pointer::{Pointer, PointerError, MAX_LEN};
use dits_core::progress::Silent;
use dits_core::reader::ManifestReader;
use dits_core::rebuild::manifest_for;
use dits_core::source::ContentSource;
use dits_core::store::{ChunkSource, DiskStore, StoreError, StoreOptions};
use dits_core::transfer::ensure_local;
use dits_core::worktree::{hydrate_file, stat_record, Hydrated, Prepared};
use dits_core::PathFilter;

use crate::deferred::Journal;
use crate::delay::Delayer;
use crate::server::{Capability, Command, Failure, Handler, Request, Response};
use crate::spool::Spool;

/// Everything the filter needs to know, resolved by the caller from the repository.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    /// `<common git dir>/dits`.
    pub store_root: PathBuf,
    pub store_options: StoreOptions,
    pub params: ChunkerParams,
    /// Smudged files of at least this size are written by Dits, not through git's pipe.
    pub inline_limit: u64,
    /// `GIT_DITS_SKIP_SMUDGE=1`: leave pointers in the work tree.
    pub skip_smudge: bool,
    /// `dits.mp4`: chunk content that sniffs as ISO-BMFF video-aware.
    pub mp4: bool,
    /// Where to record deferred files so a hook can finish them if this process dies.
    pub journal_dir: Option<PathBuf>,
    /// Where missing content can come from: stores of local-path remotes, Dits servers.
    pub sources: Sources,
    /// Where records of files Dits wrote are kept (see `stat_record`).
    pub stat_records: Option<PathBuf>,
    /// `dits.skipDownloadErrors`: a file whose content cannot be had is left as its pointer
    /// (and listed at the end) instead of failing the checkout.
    pub skip_download_errors: bool,
    /// `dits.fetchInclude` / `dits.fetchExclude`: files whose content is not here already are
    /// downloaded only if wanted; the others stay pointers (and are counted at the end).
    pub fetch: PathFilter,
}

/// Sources of missing content, each opened (or connected) only when first asked.
#[derive(Clone, Default)]
pub struct Sources(pub Arc<Vec<Arc<dyn ContentSource>>>);

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| s.describe()))
            .finish()
    }
}

pub struct DitsHandler {
    config: FilterConfig,
    store: Arc<DiskStore>,
    delayer: Option<Delayer>,
    /// Pointers of delayed paths: git asks for them again with an empty content.
    delayed: std::collections::HashMap<Vec<u8>, Pointer>,
    journal: Option<Journal>,
    /// Files to write after git, with their content if it was written while fetched.
    deferred: Vec<(PathBuf, Pointer, Option<Prepared>)>,
    /// Files written by `finish`, for the caller to refresh git's index stat data.
    hydrated: Vec<(PathBuf, Pointer)>,
    /// Files whose content could not be had, with why (left as pointers, or failed).
    unavailable: Vec<(String, String)>,
    /// Tracked paths whose blob is ordinary content, not a pointer.
    raw_blobs: Vec<String>,
    /// Files left as pointers because the fetch filter does not want them.
    left_out: usize,
}

impl DitsHandler {
    pub fn new(config: FilterConfig) -> Result<Self, dits_core::store::StoreError> {
        let store = Arc::new(DiskStore::open(&config.store_root, config.store_options)?);
        Ok(DitsHandler {
            journal: config.journal_dir.clone().map(Journal::new),
            config,
            store,
            delayer: None,
            delayed: std::collections::HashMap::new(),
            deferred: Vec::new(),
            hydrated: Vec::new(),
            unavailable: Vec::new(),
            raw_blobs: Vec::new(),
            left_out: 0,
        })
    }

    /// Files under Dits patterns that git holds as ordinary blobs (committed by someone
    /// without the filter set up, or before the pattern was tracked): once, at the end.
    fn report_raw_blobs(&mut self) {
        let raw = std::mem::take(&mut self.raw_blobs);
        if raw.is_empty() {
            return;
        }
        let mut names: Vec<&str> = raw.iter().map(String::as_str).take(5).collect();
        if raw.len() > 5 {
            names.push("...");
        }
        eprintln!(
            "dits: warning: {} file(s) under Dits patterns are committed as ordinary Git blobs, not Dits pointers: {}\nhint: store them with Dits: git add --renormalize . && git commit -m 'Move media to Dits'",
            raw.len(),
            names.join(", ")
        );
    }

    pub fn hydrated(&self) -> &[(PathBuf, Pointer)] {
        &self.hydrated
    }

    fn clean(&mut self, req: &Request, input: &mut dyn Read) -> Result<Response<'_>, Failure> {
        let path = req.path_lossy();
        let mut head = Vec::with_capacity(MAX_LEN + 1);
        input
            .take(MAX_LEN as u64 + 1)
            .read_to_end(&mut head)
            .map_err(|e| Failure::Error(format!("{path}: reading content from git: {e}")))?;
        if let Some(pointer) = self.known_content(req) {
            // Dits wrote this file and it has not changed since: one hash pass confirms it.
            let mut all = Cursor::new(head).chain(input);
            return match stat_record::content_matches(&mut all, &pointer) {
                Ok(true) => Ok(Response::Content(Box::new(Cursor::new(pointer.to_bytes())))),
                Ok(false) => Err(Failure::Error(format!(
                    "{path}: content differs from what Dits wrote although the file's times did not change; hint: run `git add` again"
                ))),
                Err(e) => Err(Failure::Error(format!("{path}: reading content from git: {e}"))),
            };
        }
        if head.is_empty() {
            // Empty files stay empty: nothing to store, and nothing for smudge to look up.
            return Ok(Response::Content(Box::new(io::empty())));
        }
        match Pointer::parse(&head) {
            // Already a pointer (e.g. a file left un-hydrated): clean is the identity.
            Ok(p) => return Ok(Response::Content(Box::new(Cursor::new(p.to_bytes())))),
            // A newer Dits's pointer must not be wrapped as content of an older one.
            Err(e @ PointerError::UnknownVersion(_)) => {
                return Err(Failure::Error(format!("{path}: {e}")))
            }
            // Anything else, even text that merely looks like a pointer, is content.
            Err(_) => {}
        }
        let mut writer = self
            .store
            .writer()
            .map_err(|e| Failure::Error(format!("{path}: {e}")))?;
        let content = Cursor::new(head).chain(input);
        let tmp = self.store.tmp_dir();
        // Git runs the filter at the top of the work tree: for `git add` the file there is
        // what git is sending, and media can be laid out from it before the bytes arrive.
        let work_tree_file = PathBuf::from(bytes_to_os(&req.pathname));
        let got = ingest_any(
            content,
            self.config.mp4,
            Some(&work_tree_file),
            &tmp,
            self.config.params,
            &mut writer,
            &Silent,
        )
        .map_err(|e| Failure::Error(format!("{path}: cannot store content: {e}")))?;
        tracing::debug!(
            path = %path,
            size = got.manifest.size,
            new_chunks = got.new_chunks,
            stored = got.stored_bytes,
            "cleaned"
        );
        let pointer = Pointer::new(got.manifest.file_id, got.manifest.size);
        Ok(Response::Content(Box::new(Cursor::new(pointer.to_bytes()))))
    }

    fn smudge(&mut self, req: &Request, input: &mut dyn Read) -> Result<Response<'_>, Failure> {
        let path = req.path_lossy().into_owned();
        let mut spool = Spool::new(&self.store.tmp_dir());
        io::copy(input, &mut spool)
            .map_err(|e| Failure::Error(format!("{path}: reading blob from git: {e}")))?;
        let redelivery: Option<Pointer> = match spool.small_bytes() {
            Some([]) => self.delayed.remove(&req.pathname),
            _ => None,
        };
        let pointer = match redelivery
            .map(Ok)
            .or_else(|| spool.small_bytes().map(Pointer::parse))
        {
            Some(Ok(p)) => p,
            Some(Err(PointerError::NotAPointer)) | None => {
                // Ordinary content (committed before the path was tracked, or by someone
                // without the filter): unchanged, and said at the end.
                if spool.small_bytes() != Some(&[]) {
                    self.raw_blobs.push(path.clone());
                }
                let reader = spool
                    .into_reader()
                    .map_err(|e| Failure::Error(format!("{path}: {e}")))?;
                return Ok(Response::Content(reader));
            }
            Some(Err(e)) => {
                let blob = req.blob.as_deref().unwrap_or("?");
                return Err(Failure::Error(format!("{path} (blob {blob}): {e}")));
            }
        };
        let pointer_text = || Response::Content(Box::new(Cursor::new(pointer.to_bytes())));
        if self.config.skip_smudge {
            return Ok(pointer_text());
        }
        if let Some(why) = self
            .delayer
            .as_ref()
            .and_then(|d| d.take_failure(&req.pathname))
        {
            return self.unavailable(path, &pointer, why);
        }
        let local = match manifest_for(&*self.store, &pointer) {
            Ok(m) if m.chunks.iter().all(|c| self.store.has_chunk(&c.id)) => Some(m),
            Ok(_) | Err(StoreError::ManifestMissing { .. }) => None,
            // A manifest that does not fit the pointer (or does not decode) is never used.
            Err(e) => return Err(Failure::Error(format!("{path}: {e}"))),
        };
        // A partial fetch leaves out of the work tree what it does not want (content that is
        // here is written whatever it says: a file pulled once stays written). Only a checkout
        // offers to delay (see below); `git archive` and the other callers get the content.
        if local.is_none() && req.can_delay && !self.config.fetch.wants(&req.pathname) {
            self.left_out += 1;
            return Ok(pointer_text());
        }
        // Only a checkout writes into the work tree, and only git's checkout offers to delay
        // (and asks again, without the offer, for what it delayed): every other caller (`git
        // archive`, `cat-file --filters`, `checkout-index --prefix`, a diff of a temp copy)
        // gets the content itself, through git's pipe. See docs/filter-protocol.md.
        let checkout = req.can_delay || redelivery.is_some();
        let manifest = match local {
            Some(m) => m,
            None if req.can_delay && !self.config.sources.0.is_empty() => {
                // Fetch on a worker while git sends the next files.
                let threads = std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .min(8);
                let (store, sources) = (Arc::clone(&self.store), self.sources());
                self.delayer
                    .get_or_insert_with(|| Delayer::new(store, sources, threads))
                    .submit(
                        req.pathname.clone(),
                        pointer,
                        pointer.size >= self.config.inline_limit,
                    );
                self.delayed.insert(req.pathname.clone(), pointer);
                return Ok(Response::Delayed);
            }
            None => {
                let sources = self.sources();
                match ensure_local(&self.store, &sources, &pointer, &Silent) {
                    Ok(m) => m,
                    Err(e) => return self.unavailable(path, &pointer, e.to_string()),
                }
            }
        };
        if checkout && pointer.size >= self.config.inline_limit {
            let rel = PathBuf::from(bytes_to_os(&req.pathname));
            if let Some(j) = &mut self.journal {
                if let Err(e) = j.record(&rel, &pointer) {
                    tracing::warn!("{path}: cannot record deferred file: {e}");
                }
            }
            let prepared = self
                .delayer
                .as_ref()
                .and_then(|d| d.take_prepared(&req.pathname));
            self.deferred.push((rel, pointer, prepared));
            return Ok(pointer_text());
        }
        Ok(Response::Content(Box::new(ForgetWrong {
            inner: ManifestReader::new(&*self.store, manifest),
            store: &self.store,
        })))
    }
}

/// Smudge's content, which forgets the local manifest if the content it rebuilt does not
/// hash to its id (so the next checkout fetches it again instead of failing forever).
struct ForgetWrong<'a> {
    inner: ManifestReader<'a, DiskStore>,
    store: &'a DiskStore,
}

impl Read for ForgetWrong<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            let wrong = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<StoreError>());
            if let Some(StoreError::ContentMismatch { id, .. }) = wrong {
                let _ = self.store.remove_manifest(id);
            }
        })
    }
}

impl DitsHandler {
    fn sources(&self) -> Arc<Vec<Arc<dyn ContentSource>>> {
        Arc::clone(&self.config.sources.0)
    }

    /// The pointer of a file Dits wrote itself and that is unchanged since, if this is one.
    fn known_content(&self, req: &Request) -> Option<Pointer> {
        let dir = self.config.stat_records.as_ref()?;
        let rel = PathBuf::from(bytes_to_os(&req.pathname));
        let pointer = stat_record::lookup(dir, &rel, &rel)?;
        // Only content the store still holds whole: a lost chunk is stored again by a full
        // clean, which is what "re-add the file" promises.
        let complete = manifest_for(&*self.store, &pointer)
            .is_ok_and(|m| m.chunks.iter().all(|c| self.store.has_chunk(&c.id)));
        complete.then_some(pointer)
    }

    /// The content of `path` cannot be had (`why`): fail the file, so the checkout fails and
    /// says so, unless `dits.skipDownloadErrors` asks for the pointer to be left. Either way
    /// the first failure names every file that has failed so far, once.
    fn unavailable(
        &mut self,
        path: String,
        pointer: &Pointer,
        why: String,
    ) -> Result<Response<'static>, Failure> {
        tracing::debug!("{path}: content {} not available: {why}", pointer.id);
        self.unavailable.push((path.clone(), why));
        if self.config.skip_download_errors {
            return Ok(Response::Content(Box::new(Cursor::new(pointer.to_bytes()))));
        }
        let mut failed: Vec<(String, String)> = self
            .delayer
            .as_ref()
            .map(|d| d.failures())
            .unwrap_or_default();
        failed.retain(|(p, _)| *p != path);
        if self.unavailable.len() == 1 {
            failed.insert(0, (path.clone(), self.unavailable[0].1.clone()));
            eprintln!("{}", summary(&failed, false));
        }
        Err(Failure::Error(format!(
            "{path}: the content of file {} cannot be had",
            pointer.id
        )))
    }
}

/// One message for many files: the files (a few of them), the cause (each distinct one
/// once), and what to do.
fn summary(failed: &[(String, String)], left_as_pointers: bool) -> String {
    let mut causes: Vec<&str> = Vec::new();
    for (_, why) in failed {
        if !causes.contains(&why.as_str()) {
            causes.push(why);
        }
    }
    let mut names: Vec<&str> = failed.iter().map(|(p, _)| p.as_str()).take(5).collect();
    if failed.len() > 5 {
        names.push("...");
    }
    let what = if left_as_pointers {
        "left as pointers (dits.skipDownloadErrors)"
    } else {
        "could not be checked out"
    };
    let hint = if left_as_pointers {
        "hint: once the content can be had, `git dits pull` writes them".to_owned()
    } else {
        "hint: fix the cause and run `git dits pull` (or, after a clone, `git restore --source=HEAD :/`); `git -c dits.skipDownloadErrors=true ...` leaves pointers instead of failing".to_owned()
    };
    format!(
        "dits: {} file(s) {what}: {}\ndits: cause: {}\n{hint}",
        failed.len(),
        names.join(", "),
        causes.join("; "),
    )
}

impl Handler for DitsHandler {
    fn capabilities(&self) -> &[Capability] {
        &[Capability::Clean, Capability::Smudge, Capability::Delay]
    }

    fn handle<'a>(
        &'a mut self,
        req: &Request,
        input: &mut dyn Read,
    ) -> Result<Response<'a>, Failure> {
        match req.command {
            Command::Clean => self.clean(req, input),
            Command::Smudge => self.smudge(req, input),
        }
    }

    fn available(&mut self) -> Result<Vec<Vec<u8>>, Failure> {
        Ok(self
            .delayer
            .as_ref()
            .map(Delayer::wait_ready)
            .unwrap_or_default())
    }

    /// Git has written every file and its index; now write the large ones it left as pointers.
    fn finish(&mut self) -> Result<(), Failure> {
        if let Some(d) = &mut self.delayer {
            d.finish_meter();
        }
        self.report_raw_blobs();
        let mut failed = 0;
        for (path, pointer, prepared) in std::mem::take(&mut self.deferred) {
            let placed = prepared.map(|p| p.place(&path));
            let written = match placed {
                Some(Ok(done)) => {
                    tracing::debug!(path = %path.display(), "placed, written while it was fetched");
                    Ok(done)
                }
                Some(Err(e)) => {
                    // E.g. the git dir is on another file system: write it the usual way.
                    tracing::debug!("{e}; writing it from the store");
                    hydrate_file(&*self.store, &path, &pointer)
                }
                None => hydrate_file(&*self.store, &path, &pointer),
            };
            match written {
                Ok(Hydrated::Written) => {
                    if let Some(dir) = &self.config.stat_records {
                        let _ = stat_record::record(dir, &path, &path, &pointer);
                    }
                    self.hydrated.push((path, pointer))
                }
                Ok(Hydrated::Skipped) => {
                    // Written meanwhile by a hook this command ran (rebase runs post-checkout
                    // part-way): git has written its index since, with the pointer's stat
                    // data, so the index must learn the file's again.
                    let ours = self
                        .config
                        .stat_records
                        .as_ref()
                        .and_then(|dir| stat_record::lookup(dir, &path, &path));
                    if ours == Some(pointer) {
                        self.hydrated.push((path, pointer));
                    }
                }
                Err(e) => {
                    failed += 1;
                    tracing::error!("{e}; hint: run `git dits checkout`");
                }
            }
        }
        if let Some(j) = self.journal.take() {
            if failed == 0 {
                j.remove();
            }
        }
        if self.config.skip_download_errors && !self.unavailable.is_empty() {
            eprintln!("{}", summary(&self.unavailable, true));
        }
        if self.left_out > 0 {
            eprintln!(
                "dits: {} file(s) left as pointers by {}; hint: `git dits pull PATH` downloads them, `git dits status` lists them",
                std::mem::take(&mut self.left_out),
                self.config.fetch.describe()
            );
        }
        // The last batch of cleaned files: flushed and indexed now, while an error can still
        // be reported (their records are written already, so a kill cannot lose them).
        if let Err(e) = self.store.sync() {
            return Err(Failure::Error(format!(
                "flushing the Dits store: {e}; hint: run `git dits fsck`"
            )));
        }
        if failed > 0 {
            return Err(Failure::Error(format!(
                "{failed} large file(s) could not be written"
            )));
        }
        Ok(())
    }
}

#[cfg(unix)]
fn bytes_to_os(b: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(b).to_owned()
}
