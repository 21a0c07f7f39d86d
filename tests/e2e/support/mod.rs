//! Hermetic real-git harness for the end-to-end tests.
//!
//! Every test gets its own temp HOME (with a minimal global config), `GIT_CONFIG_NOSYSTEM=1`,
//! fixed author/committer dates, and a PATH that starts with a directory holding the Dits
//! binaries Cargo built for this test run and a `git` link to the git under test
//! (`DITS_TEST_GIT`, default /usr/local/bin/git). Commands assert their exit code and print
//! both streams when they fail.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // helpers panic to fail the test

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod server;
pub mod udp_proxy;

pub const GITS: &[&str] = &["/usr/local/bin/git", "/usr/bin/git"];

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub bin: PathBuf,
    pub git: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let git = std::env::var_os("DITS_TEST_GIT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(GITS[0]));
        Env::with_git(&git)
    }

    pub fn with_git(git: &Path) -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("dits-e2e-")
            .tempdir()
            .expect("temp dir");
        let home = tmp.path().join("home");
        let bin = tmp.path().join("bin");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&bin).unwrap();
        for exe in [
            env!("CARGO_BIN_EXE_git-dits"),
            env!("CARGO_BIN_EXE_dits-filter"),
            env!("CARGO_BIN_EXE_git-remote-dits"),
        ] {
            let name = Path::new(exe).file_name().unwrap();
            std::os::unix::fs::symlink(exe, bin.join(name)).unwrap();
        }
        std::os::unix::fs::symlink(git, bin.join("git")).unwrap();
        fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Dits Test\n\temail = test@dits.invalid\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n[core]\n\tquotePath = false\n",
        )
        .unwrap();
        Env {
            tmp,
            home,
            bin,
            git: git.to_owned(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// A command with the hermetic environment, run in `dir`.
    pub fn cmd(&self, dir: &Path, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.current_dir(dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "2026-11-01T12:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-11-01T12:00:00Z")
            .env("LANG", "C")
            .env("TZ", "UTC")
            .stdin(Stdio::null());
        if let Some(v) = std::env::var_os("DITS_LOG") {
            c.env("DITS_LOG", v);
        }
        c
    }

    /// Runs git and asserts success.
    pub fn git(&self, dir: &Path, args: &[&str]) -> Output {
        self.run_ok(self.cmd(dir, "git").args(args))
    }

    /// Runs git and asserts failure.
    pub fn git_fails(&self, dir: &Path, args: &[&str]) -> Output {
        let out = self.cmd(dir, "git").args(args).output().unwrap();
        assert!(
            !out.status.success(),
            "git {args:?} unexpectedly succeeded\n{}",
            show(&out)
        );
        out
    }

    pub fn git_stdout(&self, dir: &Path, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.git(dir, args).stdout).into_owned()
    }

    pub fn dits(&self, dir: &Path, args: &[&str]) -> Output {
        self.run_ok(self.cmd(dir, "git").arg("dits").args(args))
    }

    pub fn dits_stdout(&self, dir: &Path, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.dits(dir, args).stdout).into_owned()
    }

    pub fn run_ok(&self, cmd: &mut Command) -> Output {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        assert!(out.status.success(), "{cmd:?} failed\n{}", show(&out));
        out
    }

    /// `git init` + `git dits install` + `git dits track PATTERNS`, returning the work tree.
    pub fn repo(&self, name: &str, patterns: &[&str]) -> PathBuf {
        let dir = self.path(name);
        fs::create_dir_all(&dir).unwrap();
        self.git(&dir, &["init", "-q"]);
        self.dits(&dir, &["install", "-q"]);
        let mut args = vec!["track", "-q"];
        args.extend_from_slice(patterns);
        self.dits(&dir, &args);
        dir
    }

    /// `git status --porcelain` must be empty: no phantom modifications.
    pub fn assert_clean(&self, dir: &Path) {
        let s = self.git_stdout(dir, &["status", "--porcelain", "--untracked-files=no"]);
        assert!(
            s.is_empty(),
            "work tree not clean in {}:\n{s}",
            dir.display()
        );
    }

    pub fn commit_all(&self, dir: &Path, msg: &str) {
        self.git(dir, &["add", "-A"]);
        self.git(dir, &["commit", "-q", "-m", msg]);
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Deterministic bytes: BLAKE3's extendable output keyed by `seed` (fast, never changes).
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Writes `len` deterministic bytes to `path` without holding them all in memory.
pub fn write_content(path: &Path, seed: u64, len: u64) {
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut xof = blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        xof.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// BLAKE3 of a file, streamed (the same value `b3sum` prints and pointers carry).
pub fn b3(path: &Path) -> String {
    let mut h = blake3::Hasher::new();
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::copy(&mut f, &mut h).unwrap();
    h.finalize().to_hex().to_string()
}

pub fn b3_bytes(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// The pointer text git stores for `path` at `rev`.
pub fn pointer_at(env: &Env, dir: &Path, rev_path: &str) -> String {
    env.git_stdout(dir, &["cat-file", "-p", rev_path])
}

// ---- Helpers for steps whose outcome a test checks itself.

impl Env {
    /// Runs git without asserting the outcome (for steps that are expected to fail).
    pub fn git_output(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd(dir, "git").args(args).output().unwrap()
    }

    /// Runs `git dits ARGS` without asserting the outcome.
    pub fn dits_output(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd(dir, "git")
            .arg("dits")
            .args(args)
            .output()
            .unwrap()
    }

    /// `git status --porcelain --untracked-files=no`, for asserting an exact expected state.
    pub fn porcelain(&self, dir: &Path) -> String {
        self.git_stdout(dir, &["status", "--porcelain", "--untracked-files=no"])
    }

    /// BLAKE3 of what `git dits cat SPEC` prints.
    pub fn cat_b3(&self, dir: &Path, spec: &str) -> String {
        b3_bytes(&self.dits(dir, &["cat", spec]).stdout)
    }
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The file id (the `blake3` line) of the pointer git stores at `rev_path`.
pub fn pointer_id(env: &Env, dir: &Path, rev_path: &str) -> String {
    let text = pointer_at(env, dir, rev_path);
    text.lines()
        .find_map(|l| l.strip_prefix("blake3 "))
        .unwrap_or_else(|| panic!("{rev_path} is not a pointer:\n{text}"))
        .to_owned()
}

/// Processes below `root` (by parent pid) whose command name is `name`.
pub fn descendants_named(root: u32, name: &str) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut names: HashMap<u32, String> = HashMap::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push(pid);
            names.insert(pid, stat[open + 1..close].to_owned());
        }
    }
    let (mut found, mut todo, mut seen) = (Vec::new(), vec![root], HashSet::new());
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if seen.insert(c) {
                if names.get(&c).is_some_and(|n| n == name) {
                    found.push(c);
                }
                todo.push(c);
            }
        }
    }
    found
}
