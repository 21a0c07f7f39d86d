//! Command-line interface of `git dits`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "git-dits",
    bin_name = "git dits",
    version,
    about = "Large media in Git: chunked, deduplicated, and never buffered whole",
    after_help = "Exit codes: 0 success, 1 problems found (fsck) or command failed, 2 usage error.\nSettings are `git config dits.*` keys; see `git dits env`."
)]
pub struct Cli {
    /// Print nothing but errors (no progress bars, no summaries).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Clone, Copy, Args)]
#[group(multiple = false)]
pub struct Scope {
    /// This repository's config (the default).
    #[arg(long)]
    pub local: bool,
    /// Your user config (~/.gitconfig): every repository you use.
    #[arg(long)]
    pub global: bool,
    /// The system config: every user of this machine.
    #[arg(long)]
    pub system: bool,
}

#[derive(Debug, Subcommand)]
pub enum ServeAction {
    /// Manage access tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Print the certificate fingerprint clients pin (creating the certificate if needed).
    Fingerprint,
    /// Print the lock audit log (locks broken by admins, locks released by pushes), oldest
    /// first: time, repository, action, path, holder, who, reason.
    Audit {
        /// Only this repository (`team/film`).
        #[arg(long)]
        repo: Option<String>,
    },
    /// Write a consistent copy of the lock database (locks, audit log, notices) to FILE,
    /// while the server runs: what a backup takes instead of copying server/locks.db.
    BackupLocks {
        /// A new file to write.
        #[arg(value_name = "FILE")]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (the only time it is shown).
    Add {
        /// Repository path it covers: `team/film`, `team/*`, or `*`.
        #[arg(long)]
        repo: String,
        /// Allow pushing and locking (default: read only).
        #[arg(long)]
        write: bool,
        /// Write rights, and breaking other users' locks (`git dits unlock --force`).
        #[arg(long)]
        admin: bool,
        /// Whose token it is: the owner of the locks it takes (default: the label).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// A name to recognise and revoke it by.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List tokens (hash prefix, rights, pattern, user, label).
    List,
    /// Revoke tokens by label, user or hash prefix.
    Revoke {
        /// The token's label or user, or a prefix of its hash (as `token list` shows it).
        #[arg(value_name = "LABEL_OR_HASH")]
        which: String,
    },
}

/// What a migration looks at: which refs, and which paths in them.
#[derive(Debug, Args)]
pub struct Selection {
    /// Paths matching PATTERN (gitattributes syntax): `import` and `info` also take plain
    /// blobs there (and .gitattributes gains the pattern; LFS files are always taken);
    /// `export` takes only the Dits files there.
    #[arg(long, value_name = "PATTERN")]
    pub include: Vec<String>,
    /// Leave paths matching PATTERN as they are (LFS pointers stay LFS pointers).
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Every branch and tag (default: the current branch, or REFs).
    #[arg(long, conflicts_with = "refs")]
    pub everything: bool,
    /// Branches or tags.
    #[arg(value_name = "REF")]
    pub refs: Vec<String>,
}

/// Which files a download wants, instead of `dits.fetchInclude` / `dits.fetchExclude`
/// (comma-separated gitignore-style patterns: `*.mp4`, `footage/day1/*`, `textures/`).
#[derive(Debug, Clone, Args)]
pub struct FetchPatterns {
    /// Only files matching these patterns (default: dits.fetchInclude, else every file).
    #[arg(long, short = 'I', value_name = "PATTERNS")]
    pub include: Option<String>,
    /// Not files matching these patterns (default: dits.fetchExclude).
    #[arg(long, short = 'X', value_name = "PATTERNS")]
    pub exclude: Option<String>,
}

impl FetchPatterns {
    /// Whether either flag was given (then it applies even to named paths).
    pub fn given(&self) -> bool {
        self.include.is_some() || self.exclude.is_some()
    }

    /// The filter these flags give, or the configured one if neither is given.
    pub fn resolve(&self, repo: &crate::repo::Repo) -> dits_core::PathFilter {
        if !self.given() {
            return repo.fetch_filter();
        }
        dits_core::PathFilter::new(
            self.include.as_deref().unwrap_or(""),
            self.exclude.as_deref().unwrap_or(""),
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Rewrite history so LFS pointers and matching blobs become Dits pointers.
    ///
    /// Everything else stays byte-identical (messages, authors, dates, merges, modes, tags;
    /// signed tags lose their signatures, as with any rewrite). Each distinct blob is stored
    /// once; the original refs are kept under refs/dits-migrate/backup/, a restart after a
    /// kill begins again from them, and an old -> new commit map is written to
    /// .git/dits-migrate/commit-map. No remote ref is moved. Verified at the end (`verify`).
    Import {
        #[command(flatten)]
        selection: Selection,
        /// Only plain blobs of at least this many bytes are converted (LFS files always are).
        #[arg(long, value_name = "BYTES", default_value_t = 0)]
        above: u64,
        /// What to do with an LFS pointer whose object is not in .git/lfs.
        #[arg(long, value_enum, default_value = "fail")]
        missing: crate::cmd::migrate::Missing,
    },
    /// Rewrite history the other way: Dits pointers back into Git LFS pointers (objects
    /// into .git/lfs/objects) or plain blobs; .gitattributes follows. Verified at the end.
    Export {
        /// What the Dits files become.
        #[arg(long, value_enum)]
        to: crate::cmd::migrate::ExportTo,
        #[command(flatten)]
        selection: Selection,
    },
    /// What an import would move: file versions and bytes per extension (LFS and plain),
    /// the commits it would rewrite, and how much the Dits store would hold (the content is
    /// chunked to count distinct chunks; nothing is stored).
    Info {
        #[command(flatten)]
        selection: Selection,
        /// Only plain blobs of at least this many bytes.
        #[arg(long, value_name = "BYTES", default_value_t = 0)]
        above: u64,
    },
    /// Check the last migration: every converted file rebuilt from the Dits store matches
    /// the original (LFS SHA-256, or git blob id), every other entry is identical.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Configure git to use Dits: filter, diff and merge drivers, and hooks.
    ///
    /// Writes filter.dits.process/clean/smudge/required, diff.dits.textconv,
    /// merge.dits.driver, and (in a repository) the hooks: post-checkout and post-merge,
    /// which finish writing large files, and pre-push, which uploads tracked content to the
    /// Dits server before commits reach an ordinary Git host. The filter also puts missing
    /// hooks into every repository it runs in (`dits.autoHooks=false` turns that off).
    /// Idempotent. Existing hooks that are not Dits' own are left alone with a warning
    /// unless --force.
    Install {
        #[command(flatten)]
        scope: Scope,
        /// Replace existing hooks that are not Dits' own.
        #[arg(long)]
        force: bool,
    },
    /// Remove the configuration and hooks `install` wrote.
    Uninstall {
        #[command(flatten)]
        scope: Scope,
    },
    /// Track paths matching PATTERNs with Dits (.gitattributes); list patterns without one.
    Track {
        /// Git attribute patterns, as in .gitattributes: '*.mp4', 'footage/**', 'intro.mov'.
        /// Quote them so the shell does not expand them.
        #[arg(value_name = "PATTERN")]
        patterns: Vec<String>,
        /// Also mark them `lockable`: files that cannot be merged (.psd, .blend, .uasset).
        /// They are read-only in the work tree unless you hold their lock (`git dits lock`).
        #[arg(long)]
        lockable: bool,
    },
    /// Lock files on the Dits server so nobody else can push changes to them.
    ///
    /// All the paths are locked or none. Refused, naming the holder, for a file someone else
    /// has locked, and for a file whose version here is older than the branch on the server
    /// (pull first). Exit codes: 0 locked, 2 bad input, 3 held by someone else, 4 behind the
    /// server.
    Lock {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Why: shown to anyone the lock stops.
        #[arg(long, default_value = "")]
        reason: String,
        /// Release the lock when a push lands a change to the file on its branch.
        #[arg(long)]
        release_on_push: bool,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Release locks. Refused while your change to a file is not committed and pushed.
    /// `--force` breaks someone else's lock (admin tokens only; recorded in the server's audit
    /// log and shown to the holder) or gives up your unpushed change. Exit codes: 0 released,
    /// 2 bad input, 5 not locked, or not yours without --force, 6 unsaved work.
    Unlock {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Break other users' locks (needs an admin token and --reason).
        #[arg(long)]
        force: bool,
        /// Why the lock is broken (recorded in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// List the locks on the Dits server (path, holder, since, branch, reason).
    Locks {
        /// Only your own locks.
        #[arg(long)]
        mine: bool,
        /// Only paths starting with PREFIX (repository-relative).
        #[arg(long, value_name = "PREFIX", default_value = "")]
        path: String,
        /// Only the locks of user NAME.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stop tracking PATTERNs (files already committed stay as they are).
    Untrack {
        /// Patterns as `git dits track` lists them.
        #[arg(required = true, value_name = "PATTERN")]
        patterns: Vec<String>,
    },
    /// List tracked files with size, id and whether their content is present locally.
    LsFiles {
        /// List the files of this commit instead of the index.
        rev: Option<String>,
        /// Also show chunk counts, the blob id, and for media files their container, tracks
        /// (codec, picture size, frame or sample rate), keyframes and duration.
        #[arg(long)]
        long: bool,
    },
    /// Summarise tracked files: present locally, written in the work tree, or pointers.
    Status,
    /// Verify the content of every tracked file reachable from REVs (default: all refs, HEAD
    /// and the index), and every record in the store.
    ///
    /// Each file is rebuilt from its manifest and checked against its id (length and BLAKE3),
    /// so a manifest that names the wrong content is found as well as a damaged chunk.
    /// Content that is not here is fine if the Dits server has it. Exit code 1 if any problem
    /// is found; each problem names the path, the file id and the chunk.
    Fsck {
        /// Revisions whose files to check (default: all refs, HEAD and the index).
        revs: Vec<String>,
        /// Repair what can be repaired without losing anything readable: rebuild damaged or
        /// missing pack indexes from the packs' records, copy packs with a damaged header,
        /// drop damaged chunks and wrong manifests, re-store intact work-tree copies; then
        /// check again.
        #[arg(long)]
        repair: bool,
        /// Verify each chunk once against its id, without rebuilding whole files (faster; a
        /// wrong manifest goes unnoticed).
        #[arg(long)]
        quick: bool,
    },
    /// Show a file's pointer and a summary of its manifest.
    Pointer {
        /// A tracked file in the work tree (its content or its pointer).
        path: PathBuf,
    },
    /// Store statistics: logical vs stored bytes, chunks, packs, dedup ratio.
    Stats,
    /// Versions, settings in effect, and where the store is.
    Env,
    /// Write the content of tracked files that are pointers in the work tree.
    ///
    /// Missing content is fetched first (from a local-path remote's store or the Dits
    /// server, all files in one request). Also tells git's index the real size of files Dits
    /// wrote that it does not know yet (after a rebase, or a checkout by gitoxide).
    Checkout {
        /// Only the files these git pathspecs match (globs like '*.mp4', directories); without
        /// them, the files a partial fetch wants (see --include).
        #[arg(value_name = "PATHSPEC")]
        paths: Vec<String>,
        /// Only the files a filter left for later (what the hooks run).
        #[arg(long)]
        deferred: bool,
        #[command(flatten)]
        patterns: FetchPatterns,
    },
    /// Print the content of a tracked file at a revision (REV:PATH, or :PATH for the index).
    Cat {
        /// REV:PATH (for example HEAD~2:footage/a.mov), or :PATH for the staged version.
        #[arg(value_name = "REV:PATH")]
        spec: String,
    },
    /// Upload the content of tracked files to the Dits server (what the pre-push hook does).
    ///
    /// The server is REMOTE if it is a dits:// remote, else `dits.url` (git config or a
    /// committed .ditsconfig). Only what the server lacks is sent.
    Push {
        /// A remote name or dits:// URL (default: origin if it is dits://, else dits.url).
        remote: Option<String>,
        /// Revisions whose files to upload (default: all branches, tags and HEAD).
        #[arg(long = "rev", value_name = "REV")]
        revs: Vec<String>,
    },
    /// Download the content of the tracked files in REFs' trees into the local store, without
    /// touching the work tree (default: HEAD), so a later checkout needs no network.
    Fetch {
        /// The Dits server: a remote name or dits:// URL.
        #[arg(long)]
        remote: Option<String>,
        /// Revisions whose tracked files to download (default: HEAD).
        #[arg(value_name = "REF")]
        refs: Vec<String>,
        #[command(flatten)]
        patterns: FetchPatterns,
    },
    /// Download the content of tracked files in the work tree (all, or under PATHs) and write
    /// the files that are still pointers (after `GIT_DITS_SKIP_SMUDGE=1 git clone`).
    Pull {
        /// The Dits server: a remote name or dits:// URL.
        #[arg(long)]
        remote: Option<String>,
        /// Only the files these git pathspecs match (globs like '*.mp4' or 'footage/b*',
        /// directories); a pathspec that matches nothing is an error. Without them, the files
        /// a partial fetch wants (see --include).
        #[arg(value_name = "PATHSPEC")]
        paths: Vec<String>,
        #[command(flatten)]
        patterns: FetchPatterns,
    },
    /// Drop local copies of content the Dits server has (keeps a clone near 1x its size).
    ///
    /// After a clone every file is stored twice: in the work tree and in .git/dits. Chunks
    /// the server holds are dropped (packs are rewritten with the rest); content needed
    /// later is fetched again, verified. Packs written in the last hour are left alone
    /// unless --now.
    Prune {
        /// The Dits server: a remote name or dits:// URL (default: origin if dits://, else
        /// dits.url).
        #[arg(long)]
        remote: Option<String>,
        /// Also packs written in the last hour (only when no other git-dits runs).
        #[arg(long)]
        now: bool,
        /// Say what would be dropped; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show a commit as a read-only folder; Dits files are fetched as they are read.
    ///
    /// Every file appears at its real size at once; reading a Dits file fetches only the
    /// chunks it touches (with readahead for sequential readers) from the local store, a
    /// local-path remote, or the Dits server, verified, and keeps them in the local store
    /// (bounded by `dits.mount.cacheSize`). Works in a `GIT_DITS_SKIP_SMUDGE=1` clone. Runs in
    /// the background (log in .git/dits/mount.log) unless --foreground; the kernel unmounts
    /// it if the process dies.
    Mount {
        /// An existing directory to mount on.
        #[arg(required_unless_present = "list")]
        dir: Option<PathBuf>,
        /// The commit to show (a branch, tag or commit id).
        #[arg(long, default_value = "HEAD")]
        rev: String,
        /// Serve in this process until unmounted or Ctrl-C.
        #[arg(long)]
        foreground: bool,
        /// List the Dits mounts of this machine (`DIR<TAB>dits:REPO@COMMIT`).
        #[arg(long, conflicts_with_all = ["dir", "foreground"])]
        list: bool,
    },
    /// Unmount a folder mounted by `git dits mount` (its process then exits).
    Unmount {
        /// The folder `git dits mount` mounted.
        dir: PathBuf,
        /// Detach it now even if programs still have files open in it.
        #[arg(long)]
        lazy: bool,
    },
    /// Run a Dits server: bare Git repositories and chunk stores under --root, over QUIC.
    ///
    /// Prints `listening ADDR` and `fingerprint blake3:...` on stdout once ready; clients pin
    /// that fingerprint (or trust it on first use). Access needs a token: create one with
    /// `git dits serve --root DIR token add --repo team/film --write`. Stops on SIGINT/SIGTERM.
    Serve {
        /// Directory for repositories, chunks, tokens and the certificate (created if needed).
        #[arg(long, value_name = "DIR", global = true)]
        root: Option<PathBuf>,
        /// Address to listen on: QUIC on this UDP port and TLS over TCP on the same TCP port.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7418")]
        listen: String,
        /// Which transports to serve: both (the default), quic, or tcp.
        #[arg(long, value_name = "WHICH", default_value = "both", value_parser = ["both", "quic", "tcp"])]
        transport: String,
        /// PEM certificate chain to use instead of the generated self-signed one.
        #[arg(long, requires = "key", value_name = "FILE")]
        cert: Option<PathBuf>,
        /// PEM private key for --cert.
        #[arg(long, requires = "cert", value_name = "FILE")]
        key: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<ServeAction>,
    },
    /// What changed in tracked files from OLD to NEW: size, and for media duration, tracks,
    /// the time ranges whose samples are new, and bytes new versus reused.
    ///
    /// Reads manifests (and a media file's sample tables) from the local store. Exit code 0
    /// whether or not anything changed.
    Diff {
        /// The old revision.
        old: String,
        /// The new revision.
        new: String,
        /// Limit to these paths (files or directories), after `--`.
        #[arg(last = true)]
        paths: Vec<String>,
    },
    /// Bring history into Dits: rewrite Git LFS pointers (and, with --include, plain blobs)
    /// into Dits pointers, or check a migration.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// textconv for `git diff`/`git log -p`: a readable summary instead of binary noise.
    #[command(hide = true)]
    DiffTextconv { file: PathBuf },
    /// Merge driver for tracked files: `git dits merge-driver %O %A %B %P`.
    #[command(hide = true)]
    MergeDriver {
        base: PathBuf,
        ours: PathBuf,
        theirs: PathBuf,
        path: Option<String>,
    },
    /// Entry point of the hooks `install` writes.
    #[command(hide = true)]
    Hook {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}
