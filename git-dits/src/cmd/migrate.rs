//! `git dits migrate import` and `verify`: rewrite history so that Git LFS pointers (and,
//! with `--include`, plain blobs) become Dits pointers, everything else byte-identical.
//!
//! The rewrite is git's own: `git fast-export --no-data --full-tree --show-original-ids`
//! streams every commit with its whole tree by blob id; this module replaces the entries it
//! converts (and `.gitattributes`) by inline blobs and hands the stream to
//! `git fast-import`, which writes the objects and moves the refs at the very end. Each
//! distinct blob is converted once (the conversion is remembered on disk, so a restart after a
//! kill skips what was done); the original refs are kept under `refs/dits-migrate/backup/`
//! and a restart begins again from them, so a kill at any point leaves either the old refs or
//! the new ones, never a mixture. `verify` rebuilds every converted file from the Dits store
//! and checks it against the original (SHA-256 for LFS objects, the git blob id for plain
//! blobs), and compares every other tree entry of every commit pair.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bstr::{BStr, ByteSlice};
use dits_core::ingest_media::ingest_any;
use dits_core::lfs::LfsPointer;
use dits_core::progress::Silent;
use dits_core::reader::ManifestReader;
use dits_core::rebuild::manifest_for;
use dits_core::store::DiskStore;
use dits_core::Pointer;

use crate::cli::Selection;
use crate::git::git;
use crate::repo::Repo;

/// Where the original refs are kept.
const BACKUP: &str = "refs/dits-migrate/backup/";

/// What to do with an LFS pointer whose object is nowhere to be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Missing {
    /// Stop, naming the file and the object (nothing is rewritten).
    Fail,
    /// Keep the LFS pointer in the rewritten commit and list it at the end.
    KeepPointer,
}

/// What one rewrite takes: the refs and paths, plain blobs from what size, and what to do
/// with missing LFS objects.
struct RewriteArgs<'a> {
    selection: &'a Selection,
    above: u64,
    missing: Missing,
}

/// Which paths a migration touches: gitattributes-style patterns.
struct Patterns {
    include: Vec<gix::glob::Pattern>,
    exclude: Vec<gix::glob::Pattern>,
}

impl Patterns {
    fn new(include: &[String], exclude: &[String]) -> Result<Patterns> {
        let parse = |list: &[String]| -> Result<Vec<gix::glob::Pattern>> {
            list.iter()
                .map(|p| {
                    gix::glob::parse(p.as_bytes())
                        .with_context(|| format!("{p:?} is not a pattern"))
                })
                .collect()
        };
        Ok(Patterns {
            include: parse(include)?,
            exclude: parse(exclude)?,
        })
    }

    fn matches(list: &[gix::glob::Pattern], path: &BStr) -> bool {
        let base = path.rfind_byte(b'/').map(|i| i + 1);
        list.iter().any(|p| {
            p.matches_repo_relative_path(
                path,
                base,
                Some(false),
                gix::glob::pattern::Case::Sensitive,
                gix::glob::wildmatch::Mode::NO_MATCH_SLASH_LITERAL,
            )
        })
    }

    /// Whether an LFS pointer at `path` is converted: always, unless excluded.
    fn lfs(&self, path: &BStr) -> bool {
        !Self::matches(&self.exclude, path)
    }

    /// Whether a plain blob at `path` is converted: only under an explicit pattern.
    fn plain(&self, path: &BStr) -> bool {
        !Self::matches(&self.exclude, path) && Self::matches(&self.include, path)
    }
}

/// Where `migrate export` takes Dits files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportTo {
    /// Git LFS pointers, with the objects put into .git/lfs/objects (`git lfs push --all`
    /// then uploads them).
    Lfs,
    /// Plain git blobs.
    Git,
}

/// Which way a rewrite goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Import,
    Export(ExportTo),
}

impl Direction {
    /// The file remembering converted blobs, per direction.
    fn log_name(self) -> &'static str {
        match self {
            Direction::Import => "blobs",
            Direction::Export(ExportTo::Lfs) => "blobs-to-lfs",
            Direction::Export(ExportTo::Git) => "blobs-to-git",
        }
    }
}

/// What became of one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Converted {
    /// Stored in Dits: the blob is replaced by this pointer.
    Dits(Pointer),
    /// Left as it is (an LFS pointer whose object is missing, with `--missing=keep-pointer`).
    Keep,
    /// Exported: replaced by this LFS pointer (its object in .git/lfs/objects).
    Lfs(LfsPointer),
    /// Exported: replaced by this plain blob.
    Git(String),
}

/// The migration's files under `<git dir>/dits-migrate/`.
struct State {
    dir: PathBuf,
}

impl State {
    fn open(repo: &Repo) -> Result<State> {
        let dir = repo.common_dir().join("dits-migrate");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(State { dir })
    }

    /// Blobs converted by earlier runs: `<blob id> <dits id> <size>` or `<blob id> keep`.
    fn converted(&self, direction: Direction) -> HashMap<String, Converted> {
        let text = fs::read_to_string(self.dir.join(direction.log_name())).unwrap_or_default();
        let mut out = HashMap::new();
        for line in text.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            let entry =
                match parts.as_slice() {
                    [blob, "keep"] => Some((blob.to_string(), Converted::Keep)),
                    [blob, "git", sha] => Some((blob.to_string(), Converted::Git(sha.to_string()))),
                    [blob, "lfs", oid, size] => size.parse().ok().map(|size| {
                        (
                            blob.to_string(),
                            Converted::Lfs(LfsPointer {
                                oid: oid.to_string(),
                                size,
                            }),
                        )
                    }),
                    [blob, id, size] => id.parse().ok().zip(size.parse().ok()).map(|(id, size)| {
                        (blob.to_string(), Converted::Dits(Pointer::new(id, size)))
                    }),
                    _ => None,
                };
            if let Some((k, v)) = entry {
                out.insert(k, v);
            }
        }
        out
    }

    fn blob_log(&self, direction: Direction) -> Result<fs::File> {
        let path = self.dir.join(direction.log_name());
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))
    }
}

fn rev_parse(rev: &str) -> Result<Option<String>> {
    Ok(git(&["rev-parse", "-q", "--verify", rev])
        .optional()?
        .map(|o| String::from_utf8_lossy(&o).trim().to_owned()))
}

/// The full ref names to rewrite.
fn refs_to_rewrite(everything: bool, refs: &[String]) -> Result<Vec<String>> {
    if everything {
        let text = git(&[
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads",
            "refs/tags",
        ])
        .text()?;
        return Ok(text.lines().map(str::to_owned).collect());
    }
    let wanted: Vec<String> = if refs.is_empty() {
        vec!["HEAD".into()]
    } else {
        refs.to_vec()
    };
    let mut out = Vec::new();
    for r in wanted {
        let full = git(&["rev-parse", "--symbolic-full-name", &r]).text()?;
        let full = full.trim();
        if !full.starts_with("refs/heads/") && !full.starts_with("refs/tags/") {
            bail!("{r}: not a branch or tag (HEAD must be on a branch); hint: name branches, or use --everything");
        }
        out.push(full.to_owned());
    }
    Ok(out)
}

pub fn import(
    selection: &Selection,
    above: u64,
    missing: Missing,
    quiet: bool,
) -> Result<ExitCode> {
    let args = RewriteArgs {
        selection,
        above,
        missing,
    };
    run(Direction::Import, &args, quiet)
}

/// `git dits migrate export --to lfs|git`: the way out.
pub fn export(to: ExportTo, selection: &Selection, quiet: bool) -> Result<ExitCode> {
    let args = RewriteArgs {
        selection,
        above: 0,
        missing: Missing::Fail,
    };
    run(Direction::Export(to), &args, quiet)
}

fn run(direction: Direction, args: &RewriteArgs, quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    match direction {
        Direction::Import => crate::setup::require_filter(&repo)?,
        Direction::Export(ExportTo::Lfs) => {
            if git(&["config", "filter.lfs.process"]).optional()?.is_none() {
                bail!("Git LFS is not set up here, so the exported files could not be checked out; hint: `git lfs install`, then run the export again");
            }
        }
        Direction::Export(ExportTo::Git) => {}
    }
    if git(&["rev-parse", "--is-shallow-repository"])
        .text()?
        .trim()
        == "true"
    {
        bail!("this is a shallow clone: rewriting it would cut history at the shallow boundary; hint: `git fetch --unshallow` first");
    }
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).text()?;
    if !dirty.trim().is_empty() {
        bail!(
            "the work tree has uncommitted changes:\n{}hint: commit or stash them, then run the migration again",
            dirty
        );
    }
    let refs = refs_to_rewrite(args.selection.everything, &args.selection.refs)?;
    if refs.is_empty() {
        bail!("nothing to rewrite: no branches or tags");
    }
    let state = State::open(&repo)?;
    // The refs as they were are backed up before anything is rewritten. While a migration
    // is under way (`in-progress` exists), a restart after a kill begins again from those
    // backups; once it has finished, a new migration backs up the refs as they are then.
    let in_progress = state.dir.join("in-progress");
    let resuming = in_progress.exists();
    for r in &refs {
        let backup = format!("{BACKUP}{r}");
        match rev_parse(&backup)? {
            Some(orig) if resuming => {
                git(&["update-ref", r, &orig]).output()?;
            }
            _ => {
                let orig = rev_parse(r)?.with_context(|| format!("{r} does not exist"))?;
                git(&["update-ref", &backup, &orig]).output()?;
            }
        }
    }
    fs::write(&in_progress, refs.join("\n"))
        .with_context(|| format!("writing {}", in_progress.display()))?;
    let patterns = Patterns::new(&args.selection.include, &args.selection.exclude)?;
    let store = repo.open_store()?;
    let settings = repo.settings()?;
    let mut converter = Converter {
        direction,
        sources: if matches!(direction, Direction::Export(_)) {
            repo.open_sources()
        } else {
            Vec::new()
        },
        store: &store,
        lfs_dir: repo.common_dir().join("lfs"),
        mp4: settings.mp4,
        params: repo.chunker_params(),
        done: state.converted(direction),
        log: state.blob_log(direction)?,
        missing: args.missing,
        above: args.above,
        kept: Vec::new(),
        converted_files: 0,
        converted_bytes: 0,
        seen: HashSet::new(),
        batch: None,
    };
    let marks = state.dir.join("import-marks");
    let mut export_args: Vec<String> = [
        "fast-export",
        "--no-data",
        "--full-tree",
        "--show-original-ids",
        "--signed-tags=strip",
        "--reencode=no",
        "--use-done-feature",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    export_args.extend(refs.iter().cloned());
    let mut export = git(&export_args).spawn()?;
    let mut import = git(&[
        "fast-import",
        "--force",
        "--quiet",
        &format!("--export-marks={}", marks.display()),
    ])
    .spawn()?;
    let from =
        BufReader::with_capacity(1 << 20, export.stdout.take().context("fast-export stdout")?);
    let mut to =
        BufWriter::with_capacity(1 << 20, import.stdin.take().context("fast-import stdin")?);
    let mut originals: HashMap<String, String> = HashMap::new();
    let rewritten = rewrite(
        from,
        &mut to,
        &patterns,
        &mut converter,
        &args.selection.include,
        &mut originals,
    );
    drop(to);
    let exported = export.wait()?;
    let imported = import.wait()?;
    rewritten?;
    if !exported.success() {
        bail!("git fast-export failed; the refs are unchanged (originals in {BACKUP})");
    }
    if !imported.success() {
        bail!("git fast-import failed; the refs are unchanged (originals in {BACKUP})");
    }
    // The old -> new commit map.
    let marks_text = fs::read_to_string(&marks).unwrap_or_default();
    let mut map = String::new();
    for line in marks_text.lines() {
        if let Some((mark, new)) = line.split_once(' ') {
            if let Some(old) = originals.get(mark) {
                map.push_str(&format!("{old} {new}\n"));
            }
        }
    }
    fs::write(state.dir.join("commit-map"), &map)?;
    // Done: the refs are the rewritten ones from here on.
    fs::remove_file(&in_progress).with_context(|| format!("removing {}", in_progress.display()))?;
    // The work tree: the checked-out branch now has Dits pointers and attributes.
    git(&["reset", "-q", "--hard"]).output()?;
    let code = verify_pairs(&store, &map, quiet)?;
    if !quiet {
        let now_in = match direction {
            Direction::Import => "Dits",
            Direction::Export(ExportTo::Lfs) => {
                "Git LFS (objects in .git/lfs/objects; `git lfs push --all` uploads them)"
            }
            Direction::Export(ExportTo::Git) => "plain git blobs",
        };
        eprintln!(
            "dits: migrated {} commit(s) of {}: {} file version(s) ({}) now in {now_in}; old -> new commit map in {}",
            map.lines().count(),
            refs.join(" "),
            converter.converted_files,
            dits_core::progress::human(converter.converted_bytes),
            state.dir.join("commit-map").display()
        );
        for (path, oid) in &converter.kept {
            eprintln!("dits: kept the LFS pointer of {path} (object {oid} is not in .git/lfs)");
        }
        eprintln!(
            "hint: the original refs are under {BACKUP}; to publish, `git push --force-with-lease` each rewritten branch and tag (and push the content: `git dits push`), then have everyone re-clone; no remote ref was moved"
        );
    }
    Ok(code)
}

struct Converter<'a> {
    direction: Direction,
    /// Where Dits content missing locally comes from (export).
    sources: Vec<std::sync::Arc<dyn dits_core::source::ContentSource>>,
    store: &'a DiskStore,
    lfs_dir: PathBuf,
    mp4: bool,
    params: dits_core::chunker::ChunkerParams,
    done: HashMap<String, Converted>,
    log: fs::File,
    missing: Missing,
    above: u64,
    kept: Vec<(String, String)>,
    converted_files: u64,
    converted_bytes: u64,
    /// Blobs looked at and left alone (not converted at the path they were first seen at).
    seen: HashSet<(String, bool, bool)>,
    batch: Option<Batch>,
}

/// One `git cat-file --batch` for the whole migration.
struct Batch {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    out: BufReader<std::process::ChildStdout>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        // Read-only: stopping it loses nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Converter<'_> {
    fn batch(&mut self) -> Result<&mut Batch> {
        if self.batch.is_none() {
            // Small pack windows: reading every blob of a large history through the default
            // 1 GiB windows maps the whole pack into this process (gigabytes of resident
            // memory, reclaimable but counted).
            let mut child = git(&[
                "-c",
                "core.packedGitWindowSize=32m",
                "-c",
                "core.packedGitLimit=128m",
                "cat-file",
                "--batch",
            ])
            .spawn()?;
            let stdin = child.stdin.take().context("git cat-file stdin")?;
            let out = BufReader::with_capacity(
                1 << 20,
                child.stdout.take().context("git cat-file stdout")?,
            );
            self.batch = Some(Batch { child, stdin, out });
        }
        self.batch.as_mut().context("git cat-file")
    }

    /// What `blob` at `path` becomes; `None` when it stays as it is.
    fn convert(
        &mut self,
        blob: &str,
        path: &BStr,
        patterns: &Patterns,
    ) -> Result<Option<Converted>> {
        if let Some(c) = self.done.get(blob) {
            return Ok(Some(c.clone()));
        }
        // What decides a blob's fate besides its bytes is whether its path is under the
        // patterns; a blob already left alone under the same answers is not read again.
        let key = (blob.to_owned(), patterns.plain(path), patterns.lfs(path));
        if !self.seen.insert(key) {
            return Ok(None);
        }
        let direction = self.direction;
        let b = self.batch()?;
        writeln!(b.stdin, "{blob}")?;
        b.stdin.flush()?;
        let mut header = String::new();
        b.out.read_line(&mut header)?;
        let size: u64 = header
            .split(' ')
            .nth(2)
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| {
                format!("git cat-file: unexpected answer {header:?} for blob {blob}")
            })?;
        let converted = if let Direction::Export(to) = direction {
            // Only Dits pointers (small) are exported.
            let mut data = Vec::new();
            (&mut b.out).take(size + 1).read_to_end(&mut data)?;
            data.pop();
            match Pointer::parse(&data) {
                Ok(p)
                    if patterns.lfs(path)
                        && (patterns.include.is_empty() || patterns.plain(path)) =>
                {
                    Some(self.export(&p, to, blob, path)?)
                }
                _ => None,
            }
        } else if size as usize <= dits_core::lfs::MAX_LEN {
            let mut data = vec![0u8; size as usize + 1];
            b.out.read_exact(&mut data)?;
            data.pop();
            match LfsPointer::parse(&data) {
                // Already a Dits pointer (history migrated before): stays as it is.
                _ if Pointer::parse(&data).is_ok() => None,
                Some(lfs) if patterns.lfs(path) => self.convert_lfs(blob, path, &lfs)?,
                Some(_) => None,
                None if patterns.plain(path) && size >= self.above => {
                    Some(Converted::Dits(self.ingest(&data[..], blob, path, None)?))
                }
                None => None,
            }
        } else if patterns.plain(path) && size >= self.above {
            let (store, mp4, params) = (self.store, self.mp4, self.params);
            let b = self.batch()?;
            let mut reader = (&mut b.out).take(size);
            let pointer = ingest_into(store, mp4, params, &mut reader, blob, path)?;
            let mut nl = [0u8; 1];
            b.out.read_exact(&mut nl)?;
            Some(Converted::Dits(pointer))
        } else {
            // Not converted: skip its bytes.
            let b = self.batch()?;
            std::io::copy(&mut (&mut b.out).take(size + 1), &mut std::io::sink())?;
            None
        };
        if let Some(c) = converted.clone() {
            self.remember(blob, c)?;
        }
        Ok(converted)
    }

    fn convert_lfs(
        &mut self,
        blob: &str,
        path: &BStr,
        lfs: &LfsPointer,
    ) -> Result<Option<Converted>> {
        let object = lfs.object_path(&self.lfs_dir);
        match fs::File::open(&object) {
            Ok(f) => {
                let pointer = self.ingest(f, blob, path, Some(lfs))?;
                Ok(Some(Converted::Dits(pointer)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match self.missing {
                Missing::Fail => bail!(
                    "{path} (blob {blob}): its LFS object {} is not in {}; nothing was rewritten; hint: `git lfs fetch --all` first, or `--missing=keep-pointer` to keep such pointers as they are",
                    lfs.oid,
                    self.lfs_dir.display()
                ),
                Missing::KeepPointer => {
                    self.kept.push((path.to_string(), lfs.oid.clone()));
                    Ok(Some(Converted::Keep))
                }
            },
            Err(e) => Err(e).with_context(|| format!("reading {}", object.display())),
        }
    }

    /// Stores `content` in Dits; with `lfs`, checks it against the LFS pointer's SHA-256 and size.
    fn ingest(
        &mut self,
        content: impl Read,
        blob: &str,
        path: &BStr,
        lfs: Option<&LfsPointer>,
    ) -> Result<Pointer> {
        let mut hashing = Sha256Reader {
            inner: content,
            ctx: ring::digest::Context::new(&ring::digest::SHA256),
            len: 0,
        };
        let pointer = ingest_into(self.store, self.mp4, self.params, &mut hashing, blob, path)?;
        if let Some(lfs) = lfs {
            let digest = hashing.ctx.finish();
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            if hex != lfs.oid || hashing.len != lfs.size {
                bail!(
                    "{path} (blob {blob}): the LFS object in .git/lfs does not match its pointer (sha256 {hex}, {} bytes; the pointer says {} and {} bytes); nothing was rewritten; hint: `git lfs fsck` and `git lfs fetch` the object again",
                    hashing.len,
                    lfs.oid,
                    lfs.size
                );
            }
        }
        Ok(pointer)
    }

    /// The content of Dits file `p` as an LFS object or a plain blob.
    fn export(&mut self, p: &Pointer, to: ExportTo, blob: &str, path: &BStr) -> Result<Converted> {
        let manifest = match manifest_for(self.store, p) {
            Ok(m) if m.chunks.iter().all(|c| dits_core::store::ChunkSource::has_chunk(self.store, &c.id)) => m,
            _ => dits_core::transfer::ensure_local(self.store, &self.sources, p, &Silent).map_err(|e| {
                anyhow::anyhow!("{path} (blob {blob}): file {} is not here and cannot be fetched: {e}; nothing was rewritten; hint: `git dits fetch --all`-style: `git dits fetch` the refs first", p.id)
            })?,
        };
        let mut content = ManifestReader::new(self.store, manifest);
        match to {
            ExportTo::Lfs => {
                let tmp_dir = self.lfs_dir.join("tmp");
                fs::create_dir_all(&tmp_dir)?;
                let tmp = tmp_dir.join(format!("dits-export-{}", p.id));
                let mut file = fs::File::create(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                let mut hashing = Sha256Reader {
                    inner: &mut content,
                    ctx: ring::digest::Context::new(&ring::digest::SHA256),
                    len: 0,
                };
                std::io::copy(&mut hashing, &mut file)
                    .with_context(|| format!("{path}: writing {}", tmp.display()))?;
                file.sync_all()?;
                let hex: String = hashing
                    .ctx
                    .finish()
                    .as_ref()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let lfs = LfsPointer {
                    oid: hex,
                    size: hashing.len,
                };
                let dest = lfs.object_path(&self.lfs_dir);
                if let Some(dir) = dest.parent() {
                    fs::create_dir_all(dir)?;
                }
                fs::rename(&tmp, &dest)
                    .with_context(|| format!("moving {} into place", dest.display()))?;
                Ok(Converted::Lfs(lfs))
            }
            ExportTo::Git => {
                let mut child = git(&["hash-object", "-w", "--stdin", "--no-filters"]).spawn()?;
                let mut stdin = child.stdin.take().context("git hash-object stdin")?;
                std::io::copy(&mut content, &mut stdin)
                    .with_context(|| format!("{path}: writing it as a git blob"))?;
                drop(stdin);
                let mut sha = String::new();
                child
                    .stdout
                    .take()
                    .context("git hash-object stdout")?
                    .read_to_string(&mut sha)?;
                anyhow::ensure!(child.wait()?.success(), "{path}: git hash-object failed");
                Ok(Converted::Git(sha.trim().to_owned()))
            }
        }
    }

    fn remember(&mut self, blob: &str, c: Converted) -> Result<()> {
        match &c {
            Converted::Dits(Pointer { size, .. }) | Converted::Lfs(LfsPointer { size, .. }) => {
                self.converted_files += 1;
                self.converted_bytes += size;
            }
            Converted::Git(_) => self.converted_files += 1,
            Converted::Keep => {}
        }
        let line = match &c {
            Converted::Dits(p) => format!("{blob} {} {}\n", p.id, p.size),
            Converted::Keep => format!("{blob} keep\n"),
            Converted::Lfs(l) => format!("{blob} lfs {} {}\n", l.oid, l.size),
            Converted::Git(sha) => format!("{blob} git {sha}\n"),
        };
        self.log.write_all(line.as_bytes())?;
        self.done.insert(blob.to_owned(), c);
        Ok(())
    }
}

fn ingest_into(
    store: &DiskStore,
    mp4: bool,
    params: dits_core::chunker::ChunkerParams,
    content: &mut dyn Read,
    blob: &str,
    path: &BStr,
) -> Result<Pointer> {
    let mut writer = store.writer()?;
    let got = ingest_any(
        content,
        mp4,
        None,
        &store.tmp_dir(),
        params,
        &mut writer,
        &Silent,
    )
    .with_context(|| format!("{path} (blob {blob}): cannot store its content"))?;
    Ok(Pointer::new(got.manifest.file_id, got.manifest.size))
}

struct Sha256Reader<R> {
    inner: R,
    ctx: ring::digest::Context,
    len: u64,
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ctx.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// A C-style quoted path of fast-export, unquoted (git quotes paths with special bytes).
fn unquote(path: &[u8]) -> Vec<u8> {
    if !(path.len() >= 2 && path[0] == b'"' && path[path.len() - 1] == b'"') {
        return path.to_vec();
    }
    let inner = &path[1..path.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            let c = inner[i + 1];
            let (byte, used) = match c {
                b'n' => (b'\n', 2),
                b't' => (b'\t', 2),
                b'r' => (b'\r', 2),
                b'a' => (7, 2),
                b'b' => (8, 2),
                b'f' => (12, 2),
                b'v' => (11, 2),
                b'0'..=b'3' if i + 3 < inner.len() => {
                    let oct = &inner[i + 1..i + 4];
                    let v = oct
                        .iter()
                        .fold(0u32, |a, d| a * 8 + u32::from(d.wrapping_sub(b'0')));
                    (v as u8, 4)
                }
                other => (other, 2),
            };
            out.push(byte);
            i += used;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    out
}

/// `.gitattributes` for a commit that holds converted files. Import: LFS attributes become
/// Dits's, and each `--include` pattern gets a Dits line if it has none. Export: Dits
/// attributes become LFS's, or (to plain git) are dropped, with lines left empty dropped.
fn attributes(
    original: &[u8],
    include: &[String],
    direction: Direction,
    swap_lfs: bool,
) -> Vec<u8> {
    if let Direction::Export(to) = direction {
        let mut out = Vec::with_capacity(original.len());
        for line in original.lines_with_terminator() {
            let l = line.to_str_lossy();
            if !l.split_whitespace().any(|a| a == "filter=dits") {
                out.extend_from_slice(line);
                continue;
            }
            let words: Vec<&str> = l
                .trim_end_matches(['\n', '\r'])
                .split(' ')
                .filter_map(|w| match (to, w) {
                    (ExportTo::Lfs, "filter=dits") => Some("filter=lfs"),
                    (ExportTo::Lfs, "diff=dits") => Some("diff=lfs"),
                    (ExportTo::Lfs, "merge=dits") => Some("merge=lfs"),
                    (ExportTo::Git, "filter=dits" | "diff=dits" | "merge=dits") => None,
                    (_, other) => Some(other),
                })
                .collect();
            let kept: Vec<&&str> = words.iter().filter(|w| !w.is_empty()).collect();
            if kept.len() > 1 && !(kept.len() == 2 && *kept[1] == "-text" && to == ExportTo::Git) {
                out.extend_from_slice(words.join(" ").as_bytes());
                out.push(b'\n');
            }
        }
        return out;
    }
    let mut out = Vec::with_capacity(original.len() + 64);
    for line in original.lines_with_terminator() {
        let l = line.to_str_lossy();
        if swap_lfs && l.split_whitespace().any(|a| a == "filter=lfs") {
            let swapped: Vec<String> = l
                .trim_end_matches(['\n', '\r'])
                .split(' ')
                .map(|w| match w {
                    "filter=lfs" => "filter=dits".to_owned(),
                    "diff=lfs" => "diff=dits".to_owned(),
                    "merge=lfs" => "merge=dits".to_owned(),
                    other => other.to_owned(),
                })
                .collect();
            out.extend_from_slice(swapped.join(" ").as_bytes());
            out.push(b'\n');
        } else {
            out.extend_from_slice(line);
        }
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let text = out.to_str_lossy().into_owned();
    for p in include {
        let has = text.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(p.as_str()) && w.any(|a| a == "filter=dits")
        });
        if !has {
            out.extend_from_slice(
                format!("{p} filter=dits diff=dits merge=dits -text\n").as_bytes(),
            );
        }
    }
    out
}

fn inline(to: &mut dyn Write, mode: &[u8], path: &[u8], data: &[u8]) -> std::io::Result<()> {
    to.write_all(b"M ")?;
    to.write_all(mode)?;
    to.write_all(b" inline ")?;
    to.write_all(path)?;
    writeln!(to, "\ndata {}", data.len())?;
    to.write_all(data)?;
    to.write_all(b"\n")
}

/// Copies the fast-export stream `from` to fast-import's `to`, converting file entries.
/// Records, for each commit mark, the original commit id (`originals`).
fn rewrite(
    mut from: impl BufRead,
    to: &mut dyn Write,
    patterns: &Patterns,
    conv: &mut Converter,
    include: &[String],
    originals: &mut HashMap<String, String>,
) -> Result<()> {
    let swap_lfs = patterns.exclude.is_empty();
    let mut line = Vec::new();
    let mut mark: Option<String> = None;
    let mut in_commit = false;
    // A commit's file entries, held until its end so .gitattributes can follow what it holds.
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut collecting = false;
    loop {
        line.clear();
        if from.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if collecting && line != b"\n" && (line.starts_with(b"M ") || line.starts_with(b"D ")) {
            files.push(line.clone());
            continue;
        }
        if collecting {
            flush_files(to, &files, patterns, conv, include, swap_lfs)?;
            files.clear();
            collecting = false;
        }
        if let Some(rest) = line.strip_prefix(b"data ") {
            to.write_all(&line)?;
            let n: u64 = rest
                .trim()
                .to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .context("fast-export: a data command without a length")?;
            std::io::copy(&mut (&mut from).take(n), to)?;
            continue;
        }
        if line.starts_with(b"commit ") {
            in_commit = true;
            mark = None;
        } else if line.starts_with(b"tag ") || line.starts_with(b"reset ") {
            in_commit = false;
        } else if let Some(m) = line.strip_prefix(b"mark ") {
            mark = Some(m.trim().to_str_lossy().into_owned());
        } else if let Some(o) = line.strip_prefix(b"original-oid ") {
            if let (true, Some(m)) = (in_commit, mark.take()) {
                originals.insert(m, o.trim().to_str_lossy().into_owned());
            }
        } else if line == b"deleteall\n" {
            collecting = true;
        }
        to.write_all(&line)?;
    }
    if collecting {
        flush_files(to, &files, patterns, conv, include, swap_lfs)?;
    }
    to.flush()?;
    Ok(())
}

fn flush_files(
    to: &mut dyn Write,
    files: &[Vec<u8>],
    patterns: &Patterns,
    conv: &mut Converter,
    include: &[String],
    swap_lfs: bool,
) -> Result<()> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(files.len());
    let mut any = false;
    // The --include patterns this commit has converted files under: .gitattributes gains
    // each where it first applies.
    let mut applies: Vec<String> = Vec::new();
    let mut attrs: Option<(Vec<u8>, String)> = None;
    for entry in files {
        let body = entry.strip_suffix(b"\n").unwrap_or(entry);
        let parts: Vec<&[u8]> = body.splitn(4, |&b| b == b' ').collect();
        let [b"M", mode, blob, path] = parts.as_slice() else {
            out.push(entry.clone());
            continue;
        };
        let real = unquote(path);
        if real == b".gitattributes" {
            attrs = Some((mode.to_vec(), blob.to_str_lossy().into_owned()));
            continue;
        }
        if !matches!(*mode, b"100644" | b"100755") {
            out.push(entry.clone());
            continue;
        }
        let blob_id = blob.to_str_lossy();
        match conv.convert(&blob_id, real.as_bstr(), patterns)? {
            Some(Converted::Dits(p)) => {
                any = true;
                for (text, pattern) in include.iter().zip(&patterns.include) {
                    if Patterns::matches(std::slice::from_ref(pattern), real.as_bstr())
                        && !applies.contains(text)
                    {
                        applies.push(text.clone());
                    }
                }
                let mut buf = Vec::new();
                inline(&mut buf, mode, path, &p.to_bytes())?;
                out.push(buf);
            }
            Some(Converted::Lfs(l)) => {
                any = true;
                let mut buf = Vec::new();
                inline(&mut buf, mode, path, &l.to_bytes())?;
                out.push(buf);
            }
            Some(Converted::Git(sha)) => {
                any = true;
                let mut buf = b"M ".to_vec();
                buf.extend_from_slice(mode);
                buf.push(b' ');
                buf.extend_from_slice(sha.as_bytes());
                buf.push(b' ');
                buf.extend_from_slice(path);
                buf.push(b'\n');
                out.push(buf);
            }
            Some(Converted::Keep) | None => out.push(entry.clone()),
        }
    }
    match attrs {
        Some((mode, blob)) if any => {
            let original = git(&["cat-file", "blob", &blob]).output()?;
            let mut buf = Vec::new();
            inline(
                &mut buf,
                &mode,
                b".gitattributes",
                &attributes(&original, &applies, conv.direction, swap_lfs),
            )?;
            to.write_all(&buf)?;
        }
        Some((mode, blob)) => {
            to.write_all(format!("M {} {blob} .gitattributes\n", mode.to_str_lossy()).as_bytes())?;
        }
        None if any => {
            let mut buf = Vec::new();
            inline(
                &mut buf,
                b"100644",
                b".gitattributes",
                &attributes(b"", &applies, conv.direction, swap_lfs),
            )?;
            to.write_all(&buf)?;
        }
        None => {}
    }
    for e in out {
        to.write_all(&e)?;
    }
    Ok(())
}

/// Per extension: file versions and bytes, LFS and plain.
#[derive(Default)]
struct Tally {
    lfs: (u64, u64),
    plain: (u64, u64),
}

/// `git dits migrate info`: what an import would move, before anything is rewritten.
pub fn info(selection: &Selection, above: u64) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let refs = refs_to_rewrite(selection.everything, &selection.refs)?;
    let patterns = Patterns::new(&selection.include, &selection.exclude)?;
    let lfs_dir = repo.common_dir().join("lfs");
    let mut list_args = vec!["rev-list".to_owned(), "--objects".to_owned()];
    list_args.extend(refs.iter().cloned());
    let listed = git(&list_args).output()?;
    let mut commits_args = vec!["rev-list".to_owned(), "--count".to_owned()];
    commits_args.extend(refs.iter().cloned());
    let commits = git(&commits_args).text()?;
    // Objects with a path are trees and blobs; their type and size from one batch-check.
    let mut named: Vec<(String, Vec<u8>)> = Vec::new();
    for line in ByteSlice::lines(listed.as_slice()) {
        if let Some((oid, path)) = line.split_once_str(" ") {
            named.push((oid.to_str_lossy().into_owned(), path.to_vec()));
        }
    }
    let input: Vec<u8> = named
        .iter()
        .flat_map(|(o, _)| format!("{o}\n").into_bytes())
        .collect();
    let checked = git(&["cat-file", "--batch-check=%(objecttype) %(objectsize)"])
        .input(input)
        .text()?;
    let mut batch = git(&["cat-file", "--batch"]).spawn()?;
    let mut stdin = batch.stdin.take().context("git cat-file stdin")?;
    let mut out = BufReader::new(batch.stdout.take().context("git cat-file stdout")?);
    let mut by_ext: std::collections::BTreeMap<String, Tally> = Default::default();
    let mut chunks: HashSet<dits_core::ChunkId> = HashSet::new();
    let (mut content_bytes, mut stored_estimate, mut missing) = (0u64, 0u64, 0u64);
    let params = repo.chunker_params();
    let mp4 = repo.settings()?.mp4;
    let tmp = tempfile_dir(&repo)?;
    for ((oid, path), line) in named.iter().zip(checked.lines()) {
        let mut parts = line.split(' ');
        let (Some("blob"), Some(size)) = (
            parts.next(),
            parts.next().and_then(|s| s.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let path = path.as_bstr();
        let is_candidate_plain = patterns.plain(path) && size >= above;
        if size as usize > dits_core::lfs::MAX_LEN && !is_candidate_plain {
            continue;
        }
        writeln!(stdin, "{oid}")?;
        stdin.flush()?;
        let mut header = String::new();
        out.read_line(&mut header)?;
        let mut data = Vec::new();
        (&mut out).take(size + 1).read_to_end(&mut data)?;
        data.pop();
        let ext = Path::new(&path.to_os_str_lossy())
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_else(|| "(none)".into());
        let content: Option<Box<dyn Read>> = match LfsPointer::parse(&data) {
            Some(lfs) if patterns.lfs(path) => {
                let t = by_ext.entry(ext).or_default();
                t.lfs.0 += 1;
                t.lfs.1 += lfs.size;
                match fs::File::open(lfs.object_path(&lfs_dir)) {
                    Ok(f) => Some(Box::new(f)),
                    Err(_) => {
                        missing += 1;
                        None
                    }
                }
            }
            None if is_candidate_plain && Pointer::parse(&data).is_err() => {
                let t = by_ext.entry(ext).or_default();
                t.plain.0 += 1;
                t.plain.1 += size;
                Some(Box::new(std::io::Cursor::new(data)))
            }
            _ => None,
        };
        if let Some(mut content) = content {
            let mut sink = dits_core::store::Discard;
            let got = ingest_any(&mut content, mp4, None, &tmp, params, &mut sink, &Silent)?;
            content_bytes += got.manifest.size;
            for c in &got.manifest.chunks {
                if chunks.insert(c.id) {
                    stored_estimate += u64::from(c.len);
                }
            }
        }
    }
    drop(stdin);
    let _ = batch.wait();
    let human = dits_core::progress::human;
    println!(
        "Would rewrite:    {} commit(s) of {}",
        commits.trim(),
        refs.join(" ")
    );
    println!(
        "{:<12} {:>10} {:>12} {:>10} {:>12}",
        "extension", "LFS files", "LFS bytes", "plain", "plain bytes"
    );
    let (mut lfs_total, mut plain_total) = ((0, 0), (0, 0));
    for (ext, t) in &by_ext {
        println!(
            "{ext:<12} {:>10} {:>12} {:>10} {:>12}",
            t.lfs.0,
            human(t.lfs.1),
            t.plain.0,
            human(t.plain.1)
        );
        lfs_total = (lfs_total.0 + t.lfs.0, lfs_total.1 + t.lfs.1);
        plain_total = (plain_total.0 + t.plain.0, plain_total.1 + t.plain.1);
    }
    println!(
        "Already in LFS:   {} file version(s), {}{}",
        lfs_total.0,
        human(lfs_total.1),
        if missing > 0 {
            format!(" ({missing} of them not in .git/lfs: `git lfs fetch --all` first)")
        } else {
            String::new()
        }
    );
    println!(
        "Plain blobs:      {} file version(s), {} (under --include)",
        plain_total.0,
        human(plain_total.1)
    );
    if content_bytes > 0 {
        println!(
            "Dits would store: about {} before compression for {} of content ({:.2}x less), {} distinct chunks",
            human(stored_estimate),
            human(content_bytes),
            content_bytes as f64 / stored_estimate.max(1) as f64,
            chunks.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir(repo: &Repo) -> Result<PathBuf> {
    let dir = repo.store_root().join("tmp");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `git dits migrate verify`: the last migration's commit pairs, checked.
pub fn verify(quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let state = State::open(&repo)?;
    let map = fs::read_to_string(state.dir.join("commit-map"))
        .context("no migration to verify here (.git/dits-migrate/commit-map); hint: `git dits migrate import` writes it")?;
    let store = repo.open_store()?;
    verify_pairs(&store, &map, quiet)
}

/// A tree's entries, path -> (mode, object id).
fn tree(commit: &str) -> Result<HashMap<Vec<u8>, (String, String)>> {
    let out = git(&["ls-tree", "-r", "-z", "--full-tree", commit]).output()?;
    let mut entries = HashMap::new();
    for rec in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let Some(tab) = rec.find_byte(b'\t') else {
            continue;
        };
        let meta: Vec<&str> = std::str::from_utf8(&rec[..tab])
            .unwrap_or("")
            .split(' ')
            .collect();
        if let [mode, _kind, oid] = meta.as_slice() {
            entries.insert(rec[tab + 1..].to_vec(), (mode.to_string(), oid.to_string()));
        }
    }
    Ok(entries)
}

fn verify_pairs(store: &DiskStore, map: &str, quiet: bool) -> Result<ExitCode> {
    let mut checked: HashSet<(String, String)> = HashSet::new();
    // (commit, path, old blob, new blob) of each converted version, rebuilt below in parallel.
    let mut rebuild: Vec<(String, String, String, String)> = Vec::new();
    let mut problems = Vec::new();
    let mut commits = 0;
    for line in map.lines() {
        let Some((old, new)) = line.split_once(' ') else {
            continue;
        };
        commits += 1;
        let (a, b) = (tree(old)?, tree(new)?);
        for (path, (mode, oid)) in &a {
            let shown = path.to_str_lossy();
            let Some((new_mode, new_oid)) = b.get(path) else {
                problems.push(format!("{new}: {shown} is missing (it is in {old})"));
                continue;
            };
            if new_mode != mode {
                problems.push(format!("{new}: {shown} has mode {new_mode}, was {mode}"));
            }
            if new_oid == oid || path.as_slice() == b".gitattributes" {
                continue;
            }
            if checked.insert((oid.clone(), new_oid.clone())) {
                rebuild.push((
                    new.to_owned(),
                    shown.into_owned(),
                    oid.clone(),
                    new_oid.clone(),
                ));
            }
        }
        for path in b.keys() {
            if !a.contains_key(path) && path.as_slice() != b".gitattributes" {
                problems.push(format!("{new}: {} was added", path.to_str_lossy()));
            }
        }
    }
    problems.extend(rebuild_all(store, &rebuild));
    if problems.is_empty() {
        if !quiet {
            eprintln!(
                "dits: verified {commits} commit pair(s): every tree entry identical, {} converted file version(s) rebuilt and matching the original",
                checked.len()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    for p in problems.iter().take(20) {
        eprintln!("error: {p}");
    }
    eprintln!(
        "dits: {} problem(s) in the migration; hint: the original refs are under {BACKUP}",
        problems.len()
    );
    Ok(ExitCode::from(1))
}

/// Checks every converted version (see [`same_content`]) on as many threads as there are
/// cores: each is a rebuild and a hash of the whole file, and they are independent. Returns
/// the problems, in the order of `versions`.
fn rebuild_all(store: &DiskStore, versions: &[(String, String, String, String)]) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let found = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.min(versions.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((commit, path, old, new)) = versions.get(i) else {
                    return;
                };
                if let Err(e) = same_content(store, old, new) {
                    let problem = (i, format!("{commit}: {path}: {e:#}"));
                    found
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(problem);
                }
            });
        }
    });
    let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// One of the blobs `old` and `new` is a Dits pointer, and it holds exactly the content the
/// other one stands for (an LFS pointer's object, or a plain blob).
fn same_content(store: &DiskStore, old: &str, new: &str) -> Result<()> {
    let (old_data, new_data) = (
        git(&["cat-file", "blob", old]).output()?,
        git(&["cat-file", "blob", new]).output()?,
    );
    let (pointer, other, other_id) = match (Pointer::parse(&new_data), Pointer::parse(&old_data)) {
        (Ok(p), _) => (p, old_data, old),
        (_, Ok(p)) => (p, new_data, new),
        _ => bail!("blobs {old} and {new} differ and neither is a Dits pointer"),
    };
    let manifest = manifest_for(store, &pointer)?;
    let mut content = ManifestReader::new(store, manifest);
    let mut buf = vec![0u8; 1 << 20];
    if let Some(lfs) = LfsPointer::parse(&other) {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut len = 0u64;
        loop {
            let n = content.read(&mut buf)?;
            if n == 0 {
                break;
            }
            ctx.update(&buf[..n]);
            len += n as u64;
        }
        let hex: String = ctx
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        anyhow::ensure!(
            hex == lfs.oid && len == lfs.size,
            "file {} rebuilds to sha256 {hex} ({len} bytes), the LFS pointer {other_id} says {} ({} bytes)",
            pointer.id,
            lfs.oid,
            lfs.size
        );
        return Ok(());
    }
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(format!("blob {}\0", pointer.size).as_bytes());
    loop {
        let n = content.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let id = hasher.try_finalize().map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        gix::ObjectId::from_hex(other_id.as_bytes()).ok() == Some(id),
        "file {} rebuilds to git blob {id}, the other side is {other_id}",
        pointer.id
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquotes_what_git_quotes() {
        assert_eq!(unquote(b"plain/name.bin"), b"plain/name.bin");
        assert_eq!(unquote(br#""a\"b\\c\nd""#), b"a\"b\\c\nd");
        assert_eq!(unquote(br#""caf\303\251.bin""#), "café.bin".as_bytes());
    }

    #[test]
    fn attributes_swap_lfs_and_add_patterns_once() {
        let original = b"*.psd filter=lfs diff=lfs merge=lfs -text\n*.txt text\n";
        let out = attributes(
            original,
            &["*.mov".into(), "*.psd".into()],
            Direction::Import,
            true,
        );
        assert_eq!(
            out.to_str_lossy(),
            "*.psd filter=dits diff=dits merge=dits -text\n*.txt text\n*.mov filter=dits diff=dits merge=dits -text\n"
        );
        let kept = attributes(original, &[], Direction::Import, false);
        assert_eq!(kept, original);
        let back = attributes(&out, &[], Direction::Export(ExportTo::Lfs), true);
        assert_eq!(
            back.to_str_lossy(),
            "*.psd filter=lfs diff=lfs merge=lfs -text\n*.txt text\n*.mov filter=lfs diff=lfs merge=lfs -text\n"
        );
        let plain = attributes(&out, &[], Direction::Export(ExportTo::Git), true);
        assert_eq!(plain.to_str_lossy(), "*.txt text\n");
    }

    #[test]
    fn patterns_match_like_gitattributes() -> Result<()> {
        let p = Patterns::new(
            &["*.bin".into(), "footage/**".into()],
            &["keep/*.bin".into()],
        )?;
        assert!(p.plain(b"a.bin".as_bstr()));
        assert!(p.plain(b"deep/dir/a.bin".as_bstr()));
        assert!(p.plain(b"footage/x/y.mov".as_bstr()));
        assert!(!p.plain(b"keep/a.bin".as_bstr()));
        assert!(!p.plain(b"a.txt".as_bstr()));
        let lfs_only = Patterns::new(&[], &[])?;
        assert!(lfs_only.lfs(b"any/file.psd".as_bstr()));
        assert!(!lfs_only.plain(b"any/file.psd".as_bstr()));
        Ok(())
    }
}
