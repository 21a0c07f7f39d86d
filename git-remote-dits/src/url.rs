//! `dits://host[:port]/repo/path` URLs and the rules for repository paths, shared by the
//! client (to refuse a bad URL early) and the server (never to trust the client's).

use std::fmt;

/// Port a `dits://` URL means when it names none.
pub const DEFAULT_PORT: u16 = 7418;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DitsUrl {
    pub host: String,
    pub port: u16,
    /// Validated by [`check_repo_path`].
    pub repo: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("{url:?} is not a dits:// URL; expected dits://host[:port]/path/to/repo")]
    NotDits { url: String },
    #[error("{url:?} has no host; expected dits://host[:port]/path/to/repo")]
    NoHost { url: String },
    #[error("{url:?} has an invalid port")]
    BadPort { url: String },
    #[error("invalid repository path {path:?}: {why}")]
    BadRepo { path: String, why: &'static str },
}

impl DitsUrl {
    pub fn parse(url: &str) -> Result<DitsUrl, UrlError> {
        let rest = url
            .strip_prefix("dits://")
            .ok_or_else(|| UrlError::NotDits {
                url: url.to_owned(),
            })?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // Credentials never belong in the URL (they would land in .git/config); git's
        // credential system supplies them. Drop a `user@` if someone wrote one.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| UrlError::NoHost {
                url: url.to_owned(),
            })?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost {
                url: url.to_owned(),
            });
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| UrlError::BadPort {
                    url: url.to_owned(),
                })?,
        };
        let repo = path.trim_end_matches('/');
        let repo = repo.strip_suffix(".git").unwrap_or(repo);
        check_repo_path(repo)?;
        Ok(DitsUrl {
            host: host.to_owned(),
            port,
            repo: repo.to_owned(),
        })
    }

    /// `host:port`, the key under which a server's certificate pin and credentials are kept.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for DitsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dits://{}/{}", self.authority(), self.repo)
    }
}

/// A repository path is one or more `/`-separated segments of `[A-Za-z0-9._-]`, none empty,
/// none starting with a dot (so no `..`, no hidden names), 1–200 bytes in all. That rules out
/// absolute paths, traversal and anything a shell or filesystem would treat specially.
pub fn check_repo_path(path: &str) -> Result<(), UrlError> {
    let bad = |why| {
        Err(UrlError::BadRepo {
            path: path.to_owned(),
            why,
        })
    };
    if path.is_empty() {
        return bad("it is empty");
    }
    if path.len() > 200 {
        return bad("it is longer than 200 bytes");
    }
    if path.starts_with('/') {
        return bad("it must be relative (no leading '/')");
    }
    for seg in path.split('/') {
        if seg.is_empty() {
            return bad("it has an empty segment ('//' or a trailing '/')");
        }
        if seg.starts_with('.') {
            return bad("a segment starts with '.' ('..' and hidden names are not allowed)");
        }
        if seg.to_ascii_lowercase().ends_with(".git") {
            // Repositories live at <path>.git; a segment ending so would reach inside one.
            return bad("a segment ends with '.git'");
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return bad("only letters, digits, '.', '_', '-' and '/' are allowed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_path() {
        let u = DitsUrl::parse("dits://127.0.0.1:4433/team/film").unwrap();
        assert_eq!(
            u,
            DitsUrl {
                host: "127.0.0.1".into(),
                port: 4433,
                repo: "team/film".into()
            }
        );
        assert_eq!(u.to_string(), "dits://127.0.0.1:4433/team/film");
        let u = DitsUrl::parse("dits://user@example.org/a.git/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.repo.as_str()),
            ("example.org", DEFAULT_PORT, "a")
        );
        let u = DitsUrl::parse("dits://[::1]:9/x").unwrap();
        assert_eq!(u.authority(), "[::1]:9");
    }

    #[test]
    fn refuses_hostile_paths_and_bad_urls() {
        for bad in [
            "dits://h/",
            "dits://h/../etc",
            "dits://h/a/../../b",
            "dits://h//abs",
            "dits://h/a//b",
            "dits://h/.git",
            "dits://h/a b",
            "dits://h/a;rm",
            "dits://h/team.git/refs",
            "dits://h/a\\b",
            "dits://h:0/a",
            "dits://h:99999/a",
            "dits://:1/a",
            "https://h/a",
        ] {
            assert!(DitsUrl::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(check_repo_path(&"a".repeat(201)).is_err());
        assert!(check_repo_path("team/film-2026_v1.0").is_ok());
    }
}
