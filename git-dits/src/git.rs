//! Running the `git` program, for what gix does not do (config writes, `rev-list` set
//! operations, pathspecs, `update-index`): the one place `git-dits` starts git. Every run sees
//! the real objects (`GIT_NO_REPLACE_OBJECTS`, set for the whole process at start-up), fails
//! with git's own stderr, and never inherits stdout (which may be git's protocol pipe).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// A git command line being built.
pub struct Git {
    cmd: Command,
    args: Vec<String>,
    input: Option<Vec<u8>>,
}

/// `git ARGS`.
pub fn git<S: AsRef<str>>(args: &[S]) -> Git {
    let mut cmd = Command::new("git");
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    cmd.args(&args);
    Git {
        cmd,
        args,
        input: None,
    }
}

impl Git {
    /// Runs in `dir` instead of the current directory.
    pub fn current_dir(mut self, dir: &Path) -> Git {
        self.cmd.current_dir(dir);
        self
    }

    /// Sets an environment variable for git.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Git {
        self.cmd.env(key, value);
        self
    }

    /// Feeds `input` to git's stdin.
    pub fn input(mut self, input: Vec<u8>) -> Git {
        self.input = Some(input);
        self
    }

    fn describe(&self) -> String {
        format!("git {}", self.args.join(" "))
    }

    /// Runs git; its stdout if it exits 0, else an error with its stderr.
    pub fn output(mut self) -> Result<Vec<u8>> {
        let what = self.describe();
        self.cmd
            .stdin(if self.input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .cmd
            .spawn()
            .with_context(|| format!("running {what}"))?;
        // Written from another thread: git may fill its stdout before it reads all of stdin.
        let writer = match (self.input.take(), child.stdin.take()) {
            (Some(bytes), Some(mut stdin)) => {
                Some(std::thread::spawn(move || stdin.write_all(&bytes)))
            }
            _ => None,
        };
        let out = child
            .wait_with_output()
            .with_context(|| format!("running {what}"))?;
        if let Some(w) = writer {
            let _ = w.join();
        }
        anyhow::ensure!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(out.stdout)
    }

    /// [`Self::output`] as text (git prints object names and most things in ASCII).
    pub fn text(self) -> Result<String> {
        self.output()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Runs git and its stdout if it exits 0; `None` if it exits non-zero (a config key that
    /// is not set, a blob that does not exist), with its stderr swallowed.
    pub fn optional(mut self) -> Result<Option<Vec<u8>>> {
        let what = self.describe();
        let out = self
            .cmd
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .with_context(|| format!("running {what}"))?;
        Ok(out.status.success().then_some(out.stdout))
    }

    /// Runs git for its exit code alone, output discarded (`git config --unset` says "was
    /// not set" with code 5).
    pub fn code(mut self) -> Result<Option<i32>> {
        let what = self.describe();
        let status = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {what}"))?;
        Ok(status.code())
    }

    /// The child process, for callers that stream (`cat-file --batch`).
    pub fn spawn(mut self) -> Result<std::process::Child> {
        let what = self.describe();
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("running {what}"))
    }
}

/// Which .gitattributes files [`check_attr`] reads.
#[derive(Clone, Copy)]
pub enum AttrSource<'a> {
    WorkTree,
    Index,
    /// The index in this file (a tree read into a temporary index, for bare repositories).
    IndexFile(&'a Path),
}

/// The value of attribute `attr` for each of `paths`, in order, by git's own rules (nested
/// .gitattributes, macros), in one git run in `dir`: `set`, `unset`, `unspecified` or the
/// value.
pub fn check_attr<P: AsRef<[u8]>>(
    dir: &Path,
    attr: &str,
    paths: &[P],
    from: AttrSource<'_>,
) -> Result<Vec<Vec<u8>>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut input = Vec::new();
    for p in paths {
        input.extend_from_slice(p.as_ref());
        input.push(0);
    }
    let mut args = vec!["check-attr", "-z", "--stdin"];
    if !matches!(from, AttrSource::WorkTree) {
        args.push("--cached");
    }
    args.push(attr);
    let mut cmd = git(&args).current_dir(dir).input(input);
    if let AttrSource::IndexFile(index) = from {
        cmd = cmd.env("GIT_INDEX_FILE", index);
    }
    let out = cmd.output()?;
    // `path NUL attr NUL value NUL`, in input order.
    let fields: Vec<&[u8]> = out.split(|&b| b == 0).collect();
    Ok(fields
        .chunks(3)
        .filter_map(|c| match c {
            [_, _, value] => Some(value.to_vec()),
            _ => None,
        })
        .take(paths.len())
        .collect())
}
