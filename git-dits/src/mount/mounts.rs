//! The Dits mounts of this machine, read from `/proc/self/mountinfo` (filesystem type
//! `fuse.dits`), and taking them down with `fusermount3 -u`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub dir: PathBuf,
    /// `dits:<repository>@<commit>`.
    pub source: String,
}

/// Every `fuse.dits` mount visible to this process.
pub fn list() -> Result<Vec<MountEntry>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let mut after = after.split(' ');
        let (Some(fstype), Some(source)) = (after.next(), after.next()) else {
            continue;
        };
        let Some(dir) = before.split(' ').nth(4) else {
            continue;
        };
        if fstype == "fuse.dits" {
            out.push(MountEntry {
                dir: PathBuf::from(unescape(dir)),
                source: unescape(source),
            });
        }
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1] <= b'3'
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let digit = |k: usize| bytes[i + k] - b'0';
            out.push(digit(1) * 64 + digit(2) * 8 + digit(3));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn find(dir: &Path) -> Result<Option<MountEntry>> {
    Ok(list()?.into_iter().find(|m| m.dir == dir))
}

/// Whether the mount at `dir` has lost its process ("Transport endpoint is not connected").
pub fn is_dead(dir: &Path) -> bool {
    matches!(std::fs::metadata(dir), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN))
}

fn busy(dir: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: the mount is in use; hint: close the programs reading it (`fuser -m {}` lists them), or `git dits unmount --lazy`",
        dir.display(),
        dir.display()
    )
}

/// Unmounts `dir`; `lazy` detaches it even while programs still use it.
pub fn unmount(dir: &Path, lazy: bool) -> Result<()> {
    let mut fusermount = Command::new("fusermount3");
    fusermount.arg("-u").arg("-q");
    if lazy {
        fusermount.arg("-z");
    }
    let out = fusermount.arg(dir).output();
    match out {
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr).trim().to_owned();
            if why.contains("busy") {
                return Err(busy(dir));
            }
            tracing::debug!("fusermount3 -u failed: {why}; trying umount");
        }
        Err(e) => tracing::debug!("cannot run fusermount3 ({e}); trying umount"),
    }
    // Root can unmount without fusermount3 (which may not be installed).
    let mut umount = Command::new("umount");
    if lazy {
        umount.arg("-l");
    }
    let out = umount
        .arg(dir)
        .output()
        .context("running fusermount3 and umount; hint: install fuse3")?;
    if !out.status.success() {
        if String::from_utf8_lossy(&out.stderr).contains("busy") {
            return Err(busy(dir));
        }
        bail!(
            "cannot unmount {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dits_mounts_from_mountinfo() {
        let text = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
88 22 0:50 / /tmp/with\\040space ro,nosuid,nodev - fuse.dits dits:/src/film@1a2b3c4d5e6f ro,user_id=0
89 22 0:51 / /mnt/other rw - fuse.sshfs host:/x rw
";
        let mounts = parse_mountinfo(text);
        assert_eq!(
            mounts,
            vec![MountEntry {
                dir: PathBuf::from("/tmp/with space"),
                source: "dits:/src/film@1a2b3c4d5e6f".into(),
            }]
        );
    }

    #[test]
    fn unescapes_only_octal_escapes() {
        assert_eq!(unescape("a\\134b\\011c"), "a\\b\tc");
        assert_eq!(unescape("trailing\\"), "trailing\\");
        assert_eq!(unescape("not\\9xx"), "not\\9xx");
    }
}
