//! The repository as Dits sees it: where things live and which `dits.*` settings apply.
//! Read through gix; nothing here writes to Git.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dits_core::chunker::ChunkerParams;
use std::sync::{Arc, OnceLock};

use dits_core::source::{ContentSource, LocalSource};
use dits_core::store::{DiskStore, Fsync, StoreOptions};
use dits_core::PathFilter;
use git_remote_dits::client::{NetSettings, RemoteSource};

/// Settings from `git config` (and the environment), with their defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreOptions,
    pub inline_limit: u64,
    pub skip_smudge: bool,
    /// `dits.mp4`: chunk ISO-BMFF content video-aware.
    pub mp4: bool,
    /// `dits.skipDownloadErrors`: leave pointers for content that cannot be had instead of
    /// failing the checkout.
    pub skip_download_errors: bool,
}

/// `(key, default, meaning)` of every setting, for `git dits env` and the docs.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("dits.compression", "3", "zstd level for compressible chunks (0 = never compress)"),
    ("dits.packSizeLimit", "1g", "start a new pack file past this size"),
    ("dits.fsync", "batch", "when added content is flushed to disk: batch (once per 64 MiB or second of writes, and when the command ends), always (before each file's pointer reaches git) or never; see docs/store-format.md"),
    ("dits.smudge.inlineLimit", "64m", "files at least this large are written by Dits after git's checkout, not through git's in-memory smudge buffer"),
    ("dits.mp4", "true", "chunk content that sniffs as MP4/MOV (ISO-BMFF) by track and keyframe, so remuxes and metadata edits store almost nothing new"),
    ("dits.skipSmudge", "false", "leave pointers in the work tree (also GIT_DITS_SKIP_SMUDGE=1)"),
    ("dits.skipDownloadErrors", "false", "when content cannot be downloaded, leave the pointer and carry on instead of failing the checkout (like lfs.skipdownloaderrors)"),
    ("dits.autoHooks", "true", "the filter puts Dits's hooks (pre-push, post-checkout, post-merge) into a repository that lacks them, never over another tool's hook"),
    ("dits.url", "", "the Dits server of a repository on an ordinary Git host (also in a committed .ditsconfig)"),
    ("dits.fetchInclude", "", "partial fetch: only files matching these comma-separated gitignore-style patterns are downloaded by clone, checkout, fetch and pull; the rest stay pointers (also in .ditsconfig)"),
    ("dits.fetchExclude", "", "partial fetch: files matching these patterns are not downloaded (also in .ditsconfig)"),
    ("dits.mount.cacheSize", "0", "bytes of fetched chunks `git dits mount` keeps; past it the oldest are dropped (0 = no bound)"),
    ("dits.timeout", "30", "seconds a silent Dits server is waited for before a transfer fails (and can be resumed)"),
    ("dits.credentialCache", "900", "seconds a token typed at the prompt stays in git's in-memory credential cache (git credential-cache), so one command asks once; 0: never"),
    ("dits.connectTimeout", "10", "seconds a Dits server that does not answer at all is waited for"),
    ("dits.transport", "auto", "how to reach Dits servers: auto (QUIC, and TLS over TCP if UDP gets no answer), quic or tcp"),
    ("dits.trustNewServers", "false", "trust a Dits server's certificate on first use and pin it (also GIT_DITS_TRUST_NEW_SERVER=1)"),
    ("dits.caFile", "", "extra CA certificates (PEM) for Dits servers with CA-issued certificates"),
    ("dits.<host:port>.fingerprint", "", "the pinned certificate of a Dits server (blake3:...)"),
];

pub struct Repo {
    pub repo: gix::Repository,
    /// Absolute, so paths built from it compare equal to paths built from the current dir.
    work_tree: Option<PathBuf>,
    net: OnceLock<NetSettings>,
    /// `.ditsconfig`'s settings at HEAD, then in the work tree (`(key, value)`, keys
    /// lower-case as git lists them), read once.
    ditsconfig: OnceLock<[Vec<(String, String)>; 2]>,
}

impl Repo {
    /// The repository around the current directory, honouring GIT_DIR and friends, and the
    /// settings given on git's command line (`git -c dits.x=y ...`, which git passes on in
    /// `GIT_CONFIG_PARAMETERS`).
    pub fn discover() -> Result<Repo> {
        let overrides = command_line_config();
        let mut mapping = gix::sec::trust::Mapping::<gix::open::Options>::default();
        mapping.full = mapping.full.config_overrides(overrides.clone());
        mapping.reduced = mapping.reduced.config_overrides(overrides);
        let repo = gix::ThreadSafeRepository::discover_with_environment_overrides_opts(
            ".",
            Default::default(),
            mapping,
        )
        .context(
            "not in a Git repository; hint: run this inside a repository, or `git init` first",
        )?;
        Ok(Repo::new(repo.into()))
    }

    fn new(repo: gix::Repository) -> Repo {
        let mut work_tree = repo.workdir().map(Path::to_owned);
        // Git's rule: with GIT_DIR set and no GIT_WORK_TREE or core.worktree, the current
        // directory is the work tree unless the repository is bare. Hooks and filters run like
        // that (and so does `--separate-git-dir`); gix alone would call it bare.
        let bare = repo.config_snapshot().boolean("core.bare").unwrap_or(false);
        if work_tree.is_none()
            && !bare
            && std::env::var_os("GIT_DIR").is_some()
            && std::env::var_os("GIT_WORK_TREE").is_none()
        {
            work_tree = std::env::current_dir().ok();
        }
        let work_tree = work_tree.map(|w| std::fs::canonicalize(&w).unwrap_or(w));
        Repo {
            repo,
            work_tree,
            net: OnceLock::new(),
            ditsconfig: OnceLock::new(),
        }
    }

    /// How to reach Dits servers: read from git config once per process (through git, so
    /// every scope and `git -c` applies), then shared.
    pub fn net_settings(&self) -> Result<NetSettings> {
        if let Some(s) = self.net.get() {
            return Ok(s.clone());
        }
        let s = NetSettings::from_git()?;
        Ok(self.net.get_or_init(|| s).clone())
    }

    /// The per-worktree git dir (`.git`, or `.git/worktrees/<name>`).
    pub fn git_dir(&self) -> &Path {
        self.repo.git_dir()
    }

    /// Shared by all worktrees: the store lives here.
    pub fn common_dir(&self) -> &Path {
        self.repo.common_dir()
    }

    pub fn work_tree(&self) -> Result<&Path> {
        self.work_tree.as_deref().context(
            "this repository has no work tree (bare); hint: run in a clone with a work tree",
        )
    }

    pub fn store_root(&self) -> PathBuf {
        let dir = self.common_dir().join("dits");
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// Where the filter journals files it left as pointers (per worktree).
    pub fn journal_dir(&self) -> PathBuf {
        self.git_dir().join("dits-deferred")
    }

    /// Records of work-tree files Dits wrote (per worktree); see `dits_core::worktree::stat_record`.
    pub fn stat_record_dir(&self) -> PathBuf {
        self.git_dir().join("dits-hydrated")
    }

    pub fn hooks_dir(&self) -> PathBuf {
        let cfg = self.repo.config_snapshot();
        match cfg.trusted_path("core.hooksPath") {
            Ok(Some(p)) => {
                if p.is_absolute() {
                    p
                } else {
                    self.work_tree().map(|w| w.join(&p)).unwrap_or(p)
                }
            }
            _ => self.common_dir().join("hooks"),
        }
    }

    pub fn settings(&self) -> Result<Settings> {
        let cfg = self.repo.config_snapshot();
        let int = |key: &str, default: i64| -> Result<i64> {
            match cfg.integer(key) {
                None => Ok(default),
                Some(v) if v >= 0 => Ok(v),
                Some(v) => anyhow::bail!(
                    "{key} = {v}: must not be negative; hint: git config --unset {key}"
                ),
            }
        };
        let level = int("dits.compression", 3)?;
        anyhow::ensure!(
            level <= 22,
            "dits.compression = {level}: zstd levels go from 0 (off) to 22; hint: git config dits.compression 3"
        );
        let pack_size_limit = int("dits.packSizeLimit", 1 << 30)?.max(1 << 20) as u64;
        let inline_limit = int("dits.smudge.inlineLimit", 64 << 20)? as u64;
        let fsync = match cfg.string("dits.fsync") {
            None => Fsync::Batch,
            Some(v) => v.to_string().parse().map_err(|e: String| {
                anyhow::anyhow!("dits.fsync: {e}; hint: git config dits.fsync batch")
            })?,
        };
        let env_skip =
            std::env::var_os("GIT_DITS_SKIP_SMUDGE").is_some_and(|v| v != "0" && !v.is_empty());
        let skip_smudge = env_skip || cfg.boolean("dits.skipSmudge").unwrap_or(false);
        Ok(Settings {
            store: StoreOptions {
                compression_level: level as i32,
                pack_size_limit,
                fsync,
            },
            inline_limit,
            skip_smudge,
            mp4: cfg.boolean("dits.mp4").unwrap_or(true),
            skip_download_errors: cfg.boolean("dits.skipDownloadErrors").unwrap_or(false),
        })
    }

    /// A `dits.*` setting from git config, else from `.ditsconfig` (committed at HEAD, or in
    /// the work tree before it is committed), with where it came from: settings a team shares
    /// (the server, what a partial clone fetches) can be committed once for every clone.
    pub fn shared_setting(&self, key: &str) -> Option<(String, &'static str)> {
        if let Some(v) = self.repo.config_snapshot().string(key) {
            return Some((v.to_string(), "git config"));
        }
        let key = key.to_ascii_lowercase();
        // In each file the last value wins, as in git; HEAD's file before the work tree's.
        self.ditsconfig
            .get_or_init(|| self.read_ditsconfig())
            .iter()
            .find_map(|file| file.iter().rev().find(|(k, _)| *k == key))
            .map(|(_, v)| (v.clone(), ".ditsconfig"))
            .filter(|(v, _)| !v.is_empty())
    }

    /// The settings of `.ditsconfig` at HEAD and in the work tree, one `git config` each.
    fn read_ditsconfig(&self) -> [Vec<(String, String)>; 2] {
        let list = |args: &[&str]| -> Option<Vec<(String, String)>> {
            let out = crate::git::git(args).optional().ok()??;
            Some(
                String::from_utf8_lossy(&out)
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                    .collect(),
            )
        };
        let committed =
            list(&["config", "--blob", "HEAD:.ditsconfig", "--list"]).unwrap_or_default();
        let in_work_tree = match self.work_tree().map(|w| w.join(".ditsconfig")) {
            Ok(file) if file.is_file() => {
                let path = file.display().to_string();
                list(&["config", "-f", &path, "--list"]).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        [committed, in_work_tree]
    }

    /// What a partial fetch wants: `dits.fetchInclude` / `dits.fetchExclude`.
    pub fn fetch_filter(&self) -> PathFilter {
        let get = |key| self.shared_setting(key).map(|(v, _)| v).unwrap_or_default();
        PathFilter::new(&get("dits.fetchInclude"), &get("dits.fetchExclude"))
    }

    pub fn open_store(&self) -> Result<DiskStore> {
        let settings = self.settings()?;
        let root = self.store_root();
        DiskStore::open(&root, settings.store)
            .with_context(|| format!("opening the Dits store at {}", root.display()))
    }

    /// Stores of remotes that are local paths (`git clone /path` or `file://`): content missing
    /// here is imported from them, verified chunk by chunk.
    pub fn source_stores(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for name in self.repo.remote_names() {
            let Ok(remote) = self.repo.find_remote(name.as_ref() as &bstr::BStr) else {
                continue;
            };
            let Some(url) = remote.url(gix::remote::Direction::Fetch) else {
                continue;
            };
            if url.scheme != gix::url::Scheme::File {
                continue;
            }
            let base = PathBuf::from(url.path.to_string());
            let base = if base.is_absolute() {
                base
            } else {
                self.work_tree().map(|w| w.join(&base)).unwrap_or(base)
            };
            for candidate in [base.join(".git").join("dits"), base.join("dits")] {
                if candidate.join("format").is_file() && candidate != self.store_root() {
                    out.push(candidate);
                }
            }
        }
        out
    }

    /// Everywhere missing content may come from, nearest first: stores of local-path
    /// remotes, then Dits servers. Nothing is opened or connected until first asked.
    pub fn open_sources(&self) -> Vec<Arc<dyn ContentSource>> {
        self.open_sources_waiting(None)
    }

    /// [`open_sources`](Self::open_sources), waiting at most `wait` for a server to connect
    /// or to answer (both capped, never raised): for readers that a person waits on, like
    /// the mount, where a server that died must fail a read in seconds.
    pub fn open_sources_waiting(
        &self,
        wait: Option<std::time::Duration>,
    ) -> Vec<Arc<dyn ContentSource>> {
        let mut out: Vec<Arc<dyn ContentSource>> = Vec::new();
        for path in self.source_stores() {
            out.push(Arc::new(LocalSource::new(path)));
        }
        let servers = crate::remote::all_servers(self);
        if servers.is_empty() {
            return out;
        }
        match self.net_settings() {
            Ok(mut settings) => {
                if let Some(w) = wait {
                    settings.connect_timeout = settings.connect_timeout.min(w);
                    settings.timeout = settings.timeout.min(w);
                }
                for url in servers {
                    out.push(Arc::new(RemoteSource::new(url, settings.clone())));
                }
            }
            Err(e) => tracing::warn!("Dits servers are not used: {e:#}"),
        }
        out
    }

    pub fn chunker_params(&self) -> ChunkerParams {
        ChunkerParams::default()
    }
}

/// The settings of git's command line (`git -c key=value`), which git hands to the commands
/// it runs in `GIT_CONFIG_PARAMETERS` and gix does not read: as `key=value` overrides.
fn command_line_config() -> Vec<String> {
    std::env::var("GIT_CONFIG_PARAMETERS")
        .map(|v| parse_config_parameters(&v))
        .unwrap_or_default()
}

/// Parses git's `GIT_CONFIG_PARAMETERS`: shell-quoted words, each `'key'='value'` (git 2.31
/// and later; `'key'=` with nothing after is a bare boolean, `-c key`), or `'key=value'`
/// (older gits).
fn parse_config_parameters(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return out;
        }
        let mut word = String::new();
        // Whether an `=` outside quotes was seen, and whether anything came after it.
        let (mut split, mut valued) = (false, false);
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            match c {
                '\'' => {
                    valued |= split;
                    for q in chars.by_ref() {
                        if q == '\'' {
                            break;
                        }
                        word.push(q);
                    }
                }
                '\\' => {
                    valued |= split;
                    if let Some(escaped) = chars.next() {
                        word.push(escaped);
                    }
                }
                '=' if !split => {
                    split = true;
                    word.push('=');
                }
                c => {
                    valued |= split;
                    word.push(c);
                }
            }
        }
        if (split && !valued) || !word.contains('=') {
            out.push(format!("{}=true", word.trim_end_matches('=')));
        } else {
            out.push(word);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_git_command_line_config_in_both_formats() {
        // What `git -c dits.skipSmudge=true -c 'dits.url=dits://h/it'\''s' -c dits.mp4 ...`
        // exports (new format), and the older one-word format.
        let new = r#"'dits.skipsmudge'='true' 'dits.url'='dits://h/it'\''s' 'dits.mp4'= 'x.y'='' 'alias.p'=''\!'echo'"#;
        assert_eq!(
            parse_config_parameters(new),
            vec![
                "dits.skipsmudge=true",
                "dits.url=dits://h/it's",
                "dits.mp4=true",
                "x.y=",
                "alias.p=!echo"
            ]
        );
        let old = "'dits.skipsmudge=true' 'core.x=a b'";
        assert_eq!(
            parse_config_parameters(old),
            vec!["dits.skipsmudge=true", "core.x=a b"]
        );
        assert!(parse_config_parameters("").is_empty());
    }
}
