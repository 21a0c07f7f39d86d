//! Access tokens. The server keeps only each token's BLAKE3 hash, its rights, the
//! repository paths it covers and whose it is, one per line in `<root>/server/tokens`:
//!
//! ```text
//! <blake3 hex of the token> <read|write|admin> <pattern> <user> [<label>]
//! ```
//! A pattern is a repository path (`team/film`), a prefix ending in `/*` (`team/*`), or `*`.
//! The user owns the locks the token takes; `admin` is write plus breaking other users'
//! locks. (A line of the first format, `<hash> <rights> <pattern> <label>`, reads as user
//! `<label>`.)
//! The file is re-read on every connection, so tokens added or revoked apply at once.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use dits_core::wire::Rights;

use crate::error::NetError;
use crate::url::check_repo_path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub hash: String,
    pub rights: Rights,
    pub pattern: String,
    pub user: String,
    pub label: String,
}

pub fn tokens_path(root: &Path) -> PathBuf {
    root.join("server").join("tokens")
}

pub(crate) fn hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

fn check_pattern(pattern: &str) -> Result<(), NetError> {
    let base = pattern.strip_suffix("/*").unwrap_or(pattern);
    if pattern == "*" {
        return Ok(());
    }
    check_repo_path(base).map_err(|e| NetError::Config(format!("bad token pattern: {e}")))
}

fn matches(pattern: &str, repo: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(prefix) => repo
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/')),
        None => pattern == repo,
    }
}

pub fn load(root: &Path) -> Result<Vec<TokenEntry>, NetError> {
    let path = tokens_path(root);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetError::io(format!("reading {}", path.display()), e)),
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.splitn(5, ' ');
        let (Some(hash), Some(rights), Some(pattern)) = (f.next(), f.next(), f.next()) else {
            tracing::warn!("{}:{}: malformed token line ignored", path.display(), n + 1);
            continue;
        };
        let Some(rights) = Rights::from_name(rights) else {
            tracing::warn!(
                "{}:{}: unknown rights {rights:?}; line ignored",
                path.display(),
                n + 1
            );
            continue;
        };
        let user = f.next().unwrap_or("").to_owned();
        out.push(TokenEntry {
            user: if user.is_empty() {
                format!("token-{}", &hash[..hash.len().min(8)])
            } else {
                user
            },
            hash: hash.to_owned(),
            rights,
            pattern: pattern.to_owned(),
            label: f.next().unwrap_or("").to_owned(),
        });
    }
    Ok(out)
}

/// The entry of `token` granting the most on `repo`, if any.
pub fn grant_for<'a>(entries: &'a [TokenEntry], token: &str, repo: &str) -> Option<&'a TokenEntry> {
    let h = hash(token);
    entries
        .iter()
        .filter(|e| e.hash == h && matches(&e.pattern, repo))
        .max_by_key(|e| e.rights)
}

/// The best rights `token` grants on `repo`, if any.
pub fn rights_for(entries: &[TokenEntry], token: &str, repo: &str) -> Option<Rights> {
    grant_for(entries, token, repo).map(|e| e.rights)
}

/// Whether `token` is known at all (to tell "wrong repository" from "unknown token").
pub fn known(entries: &[TokenEntry], token: &str) -> bool {
    let h = hash(token);
    entries.iter().any(|e| e.hash == h)
}

fn save(root: &Path, entries: &[TokenEntry]) -> Result<(), NetError> {
    let path = tokens_path(root);
    let dir = path.parent().expect("tokens live in <root>/server");
    fs::create_dir_all(dir).map_err(|e| NetError::io(format!("creating {}", dir.display()), e))?;
    let mut text = String::from(
        "# git dits serve tokens: <blake3 of token> <read|write|admin> <pattern> <user> [<label>]\n",
    );
    for e in entries {
        let line = format!(
            "{} {} {} {} {}",
            e.hash,
            e.rights.as_str(),
            e.pattern,
            e.user,
            e.label
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| NetError::io(format!("writing {}", path.display()), e))
}

/// Whether `name` can be a token's user: one word of letters, digits and `.-_@`.
pub fn check_user(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(NetError::Config(format!(
            "{name:?} cannot be a user name: use one word of letters, digits, '.', '-', '_' or '@'"
        )))
    }
}

/// Creates a token for `user`; returns it (the only time it is ever shown).
pub fn add(
    root: &Path,
    pattern: &str,
    rights: Rights,
    user: &str,
    label: &str,
) -> Result<String, NetError> {
    check_pattern(pattern)?;
    check_user(user)?;
    if label.contains('\n') {
        return Err(NetError::Config("a token label must be one line".into()));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| NetError::io("generating a token", std::io::Error::other(e.to_string())))?;
    let token = format!(
        "dits_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let mut entries = load(root)?;
    entries.push(TokenEntry {
        hash: hash(&token),
        rights,
        pattern: pattern.to_owned(),
        user: user.to_owned(),
        label: label.to_owned(),
    });
    save(root, &entries)?;
    Ok(token)
}

/// Removes tokens whose label, user or hash prefix (at least 8 hex digits) is `which`.
pub fn revoke(root: &Path, which: &str) -> Result<usize, NetError> {
    let mut entries = load(root)?;
    let before = entries.len();
    entries.retain(|e| {
        !(e.label == which || e.user == which || (which.len() >= 8 && e.hash.starts_with(which)))
    });
    let removed = before - entries.len();
    if removed > 0 {
        save(root, &entries)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_grant_only_their_repositories_and_rights() {
        let dir = tempfile::tempdir().unwrap();
        let w = add(dir.path(), "team/*", Rights::Write, "alice", "").unwrap();
        let r = add(dir.path(), "team/film", Rights::Read, "ci", "nightly").unwrap();
        let entries = load(dir.path()).unwrap();
        assert_eq!(rights_for(&entries, &w, "team/film"), Some(Rights::Write));
        assert_eq!(rights_for(&entries, &w, "team/a/b"), Some(Rights::Write));
        assert_eq!(rights_for(&entries, &w, "teamx/film"), None);
        assert_eq!(rights_for(&entries, &w, "other"), None);
        assert_eq!(rights_for(&entries, &r, "team/film"), Some(Rights::Read));
        assert_eq!(rights_for(&entries, &r, "team/film2"), None);
        assert_eq!(rights_for(&entries, "dits_guess", "team/film"), None);
        assert!(known(&entries, &r) && !known(&entries, "nope"));
        let text = fs::read_to_string(tokens_path(dir.path())).unwrap();
        assert!(!text.contains(&w), "tokens are stored hashed");
        assert!(add(dir.path(), "../x", Rights::Read, "bad", "").is_err());
        assert!(add(dir.path(), "x", Rights::Read, "two words", "").is_err());
        assert_eq!(grant_for(&entries, &r, "team/film").unwrap().user, "ci");
        assert_eq!(revoke(dir.path(), "ci").unwrap(), 1);
        let entries = load(dir.path()).unwrap();
        assert_eq!(rights_for(&entries, &r, "team/film"), None);
        assert_eq!(rights_for(&entries, &w, "team/film"), Some(Rights::Write));
    }
}
