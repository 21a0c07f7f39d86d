//! Which Dits server holds this repository's content: a `dits://` Git remote, or for a
//! repository on an ordinary Git host, `dits.url` from git config or from a committed
//! `.ditsconfig` (so clones and CI find the server without set-up).

use anyhow::Result;
use git_remote_dits::DitsUrl;

use crate::repo::Repo;

/// Where the content of a push or fetch goes, and how it was chosen (for messages).
#[derive(Debug, Clone)]
pub struct DitsServer {
    pub url: DitsUrl,
    pub origin: String,
}

/// The remote's URL as configured (raw: gix need not understand the `dits` scheme); for
/// pushing, `pushurl` wins as in git.
fn remote_url(repo: &Repo, name: &str, push: bool) -> Option<String> {
    let cfg = repo.repo.config_snapshot();
    let key = |k: &str| cfg.string(format!("remote.{name}.{k}").as_str());
    push.then(|| key("pushurl"))
        .flatten()
        .or_else(|| key("url"))
        .map(|v| v.to_string())
}

/// The repository's remotes, origin first: it is what a bare `git push` / `git clone` uses.
fn remote_names(repo: &Repo) -> Vec<String> {
    let mut names: Vec<String> = repo
        .repo
        .remote_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    names.sort_by_key(|n| n != "origin");
    names
}

/// `dits.url` from git config, else from `.ditsconfig` (see [`Repo::shared_setting`]).
pub fn configured_url(repo: &Repo) -> Result<Option<(String, &'static str)>> {
    Ok(repo.shared_setting("dits.url").map(|(v, from)| {
        (
            v,
            if from == "git config" {
                "dits.url"
            } else {
                from
            },
        )
    }))
}

/// The Dits server for `remote` (a Git remote name), or for the repository if `None`: the
/// remote itself if it is a `dits://` URL, else the configured `dits.url`. `push` picks the
/// remote's `pushurl` where it has one, as git does.
pub fn server_for(repo: &Repo, remote: Option<&str>, push: bool) -> Result<Option<DitsServer>> {
    let names: Vec<String> = match remote {
        Some(r) => vec![r.to_owned()],
        None => remote_names(repo),
    };
    for name in &names {
        if let Some(url) = remote_url(repo, name, push) {
            if url.starts_with("dits://") {
                return Ok(Some(DitsServer {
                    url: DitsUrl::parse(&url)?,
                    origin: format!("remote {name}"),
                }));
            }
        }
    }
    if let Some(r) = remote.filter(|r| r.starts_with("dits://")) {
        return Ok(Some(DitsServer {
            url: DitsUrl::parse(r)?,
            origin: "command line".into(),
        }));
    }
    match configured_url(repo)? {
        Some((url, origin)) => Ok(Some(DitsServer {
            url: DitsUrl::parse(&url).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?,
            origin: origin.into(),
        })),
        None => Ok(None),
    }
}

/// A session with `server`, for commands that talk to it directly (`push`, `fetch`, `pull`,
/// `prune`, `status`, `fsck`, the pre-push hook). `verbose` shows "connecting to..." on a
/// terminal if the server is slow to answer; `timeout` shortens the wait for commands that
/// only report.
pub fn connect(
    repo: &Repo,
    server: &DitsServer,
    verbose: bool,
    timeout: Option<std::time::Duration>,
) -> Result<git_remote_dits::Session> {
    use anyhow::Context;
    let mut settings = repo.net_settings()?;
    settings.verbose = verbose;
    if let Some(t) = timeout {
        settings.connect_timeout = settings.connect_timeout.min(t);
        settings.timeout = settings.timeout.min(t);
    }
    git_remote_dits::Session::connect(&server.url, &settings)
        .with_context(|| format!("connecting to {} ({})", server.url, server.origin))
}

/// Every `dits://` URL this repository knows (remotes, then `dits.url`), for fetching.
pub fn all_servers(repo: &Repo) -> Vec<DitsUrl> {
    let mut out: Vec<DitsUrl> = Vec::new();
    for name in remote_names(repo) {
        if let Some(url) = remote_url(repo, &name, false) {
            if let Ok(u) = DitsUrl::parse(&url) {
                out.push(u);
            }
        }
    }
    if let Ok(Some((url, _))) = configured_url(repo) {
        if let Ok(u) = DitsUrl::parse(&url) {
            if !out.contains(&u) {
                out.push(u);
            }
        }
    }
    out
}
