//! File locks: what a lock is, which paths can be locked, and the requests and answers
//! clients and servers exchange about them. The server's database and the git side live in
//! `git-remote-dits`; this module is the vocabulary both sides (and `--json` output) share.
//!
//! A lock is taken on a path of the repository for one branch. Two spellings of one name
//! that a case-insensitive or normalising file system (macOS, Windows) would treat as the
//! same file are the same lock: paths compare by their [`lock_key`].

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// One lock as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Repository-relative path with `/` separators, in Unicode NFC.
    pub path: String,
    /// The user of the token that took it.
    pub owner: String,
    /// The branch it was taken for (`refs/heads/main`).
    pub branch: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When it was taken, seconds since the Unix epoch.
    pub since: u64,
    /// Released by the push that lands a change to it on its branch.
    #[serde(default)]
    pub release_on_push: bool,
}

/// What a client asks about locks (one request frame, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum LockCall {
    Lock(LockRequest),
    Unlock(UnlockRequest),
    List(ListRequest),
    Check(CheckRequest),
}

/// Take locks on all of `paths` or on none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    pub branch: String,
    pub paths: Vec<LockAsk>,
    #[serde(default)]
    pub reason: String,
    /// The newest commit of the branch the client has seen (the merge base of its HEAD and
    /// its copy of the server's branch): a path changed on the server since then is behind
    /// and cannot be locked.
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub release_on_push: bool,
}

/// Release `paths`. `force` breaks other users' locks (admin tokens only) and is recorded in
/// the audit log with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockRequest {
    pub paths: Vec<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub reason: String,
}

/// One page of the locks, ordered by path, starting after `after` (0: the largest page).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRequest {
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub owner: Option<String>,
    /// Only the locks of the token's user (`owner` is ignored then).
    #[serde(default)]
    pub mine: bool,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub limit: u32,
}

/// Which locks of other users would a push to `branch` changing `paths` break? `pusher`
/// names the user for a hook asking with an admin token (a Git host's pre-receive);
/// otherwise the token's user pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRequest {
    pub branch: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub pusher: Option<String>,
}

/// A path to lock and the blob the client has for it at HEAD (`None`: not in HEAD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockAsk {
    pub path: String,
    #[serde(default)]
    pub blob: Option<String>,
}

/// The server's answer to a [`LockCall`] (one frame, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum LockReply {
    /// The locks taken, released or listed (for `Check`: the conflicting ones, empty if the
    /// push may go on). `next` continues a listing.
    Ok {
        locks: Vec<LockInfo>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
        /// Messages for this user (a lock of theirs broken by an admin), shown once.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notices: Vec<String>,
    },
    /// Nothing was done: `locks` are the locks in the way (for `behind`, the paths).
    Refused {
        why: Refusal,
        message: String,
        #[serde(default)]
        locks: Vec<LockInfo>,
        #[serde(default)]
        paths: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// Another user holds a lock on the path.
    Held,
    /// The client's version of the path is older than the branch on the server.
    Behind,
    /// Unlocking a path nobody has locked.
    NotLocked,
    /// Breaking another user's lock without `force`, or `force` without an admin token.
    NotYours,
}

impl Refusal {
    /// The process exit code a script can tell apart: 2 bad input, 3 held by someone
    /// else, 4 behind the server, 5 not locked / not yours.
    pub fn exit_code(self) -> u8 {
        match self {
            Refusal::Held => 3,
            Refusal::Behind => 4,
            Refusal::NotLocked | Refusal::NotYours => 5,
        }
    }
}

/// Why a path cannot be locked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockPathError {
    #[error("{0:?}: a lock path is relative to the repository's top, without a leading '/'")]
    Absolute(String),
    #[error("{0:?}: '..' and '.' are not allowed in a lock path")]
    Dots(String),
    #[error("{0:?}: empty path component")]
    Empty(String),
    #[error("{0:?}: paths inside .git cannot be locked")]
    GitDir(String),
    #[error("{0:?}: a lock path cannot contain a backslash, NUL or a newline")]
    Character(String),
}

/// Checks a repository-relative path and returns it in the form locks are stored (NFC).
pub fn lock_path(path: &str) -> Result<String, LockPathError> {
    let owned = || path.to_owned();
    if path.starts_with('/') {
        return Err(LockPathError::Absolute(owned()));
    }
    if path.contains(['\\', '\0', '\n', '\r']) {
        return Err(LockPathError::Character(owned()));
    }
    if path.is_empty() {
        return Err(LockPathError::Empty(owned()));
    }
    for part in path.split('/') {
        match part {
            "" => return Err(LockPathError::Empty(owned())),
            "." | ".." => return Err(LockPathError::Dots(owned())),
            p if p.eq_ignore_ascii_case(".git") => return Err(LockPathError::GitDir(owned())),
            _ => {}
        }
    }
    Ok(path.nfc().collect())
}

/// What two paths share when they name the same file on a case-insensitive, normalising
/// file system: NFC, then lower case.
pub fn lock_key(path: &str) -> String {
    path.nfc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_paths_are_relative_clean_and_normalised() {
        assert_eq!(lock_path("art/hero.psd").unwrap(), "art/hero.psd");
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "",
            ".git/config",
            "a/.GIT/x",
            "a\\b",
        ] {
            assert!(lock_path(bad).is_err(), "{bad:?} was accepted");
        }
        // "é" decomposed (macOS) and composed (Linux) are one file, and so are two cases.
        let nfd = "cafe\u{301}.blend";
        let nfc = "caf\u{e9}.blend";
        assert_eq!(lock_path(nfd).unwrap(), nfc);
        assert_eq!(lock_key(nfd), lock_key("CAF\u{c9}.BLEND"));
        assert_ne!(lock_key("a.psd"), lock_key("b.psd"));
    }

    #[test]
    fn calls_and_replies_survive_json() {
        let call = LockCall::Lock(LockRequest {
            branch: "refs/heads/main".into(),
            paths: vec![LockAsk {
                path: "a.psd".into(),
                blob: None,
            }],
            reason: "retouch".into(),
            base: Some("abc".into()),
            release_on_push: true,
        });
        let text = serde_json::to_string(&call).unwrap();
        assert!(text.contains("\"op\":\"lock\""), "{text}");
        assert_eq!(serde_json::from_str::<LockCall>(&text).unwrap(), call);
        let reply = LockReply::Refused {
            why: Refusal::Held,
            message: "held".into(),
            locks: vec![],
            paths: vec![],
        };
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<LockReply>(&text).unwrap(), reply);
    }
}
