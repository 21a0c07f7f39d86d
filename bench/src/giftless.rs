//! The Git LFS side's server: giftless (from PyPI, installed by `bench/giftless/setup.sh` into
//! a virtual environment), run with Flask's built-in server on loopback, anonymous read-write,
//! storing objects in a local directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::server::{self, Server};

/// The giftless server for one run. Dropping it stops the server.
pub struct Giftless {
    pub server: Server,
    pub port: u16,
    /// Where giftless keeps the objects (`<storage>/<org>/<repo>/<oid>`).
    pub storage: PathBuf,
}

impl Giftless {
    /// The LFS endpoint of repository `org/repo` (giftless' legacy `/<org>/<repo>` endpoints,
    /// its default).
    pub fn lfs_url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }
}

/// `<venv>/bin/flask`, or an error naming the set-up script.
pub fn flask(venv: &Path) -> Result<PathBuf> {
    let flask = venv.join("bin/flask");
    if !flask.is_file() {
        bail!(
            "{} not found; hint: run `bash bench/giftless/setup.sh {}` first",
            flask.display(),
            venv.display()
        );
    }
    Ok(flask)
}

/// giftless' version as pip installed it.
pub fn version(venv: &Path) -> String {
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import importlib.metadata as m, sys; \
             print('giftless', m.version('giftless'), 'on Flask', m.version('flask'), \
             'werkzeug', m.version('werkzeug'), 'Python', sys.version.split()[0])",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => format!("unknown ({})", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => format!("unknown ({e})"),
    }
}

/// The configuration: anonymous read and write, and the `basic` transfer adapter streaming
/// through the server into local storage under `storage`.
fn config(storage: &Path) -> String {
    // A JSON string is a valid YAML scalar, and escapes whatever the path holds.
    let path = format!("{:?}", storage.display().to_string());
    format!(
        "\
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: {path}
      action_lifetime: 900
"
    )
}

/// Writes the configuration under `dir`, starts giftless on a free port of 127.0.0.1 and waits
/// until it accepts connections. `env` is the hermetic environment to run it in.
pub fn start(
    venv: &Path,
    dir: &Path,
    mut cmd_for: impl FnMut(&Path) -> Command,
) -> Result<Giftless> {
    let flask = flask(venv)?;
    let storage = dir.join("lfs-storage");
    std::fs::create_dir_all(&storage).with_context(|| format!("creating {}", storage.display()))?;
    let cfg = dir.join("giftless.yaml");
    std::fs::write(&cfg, config(&storage)).with_context(|| format!("writing {}", cfg.display()))?;
    let port = server::free_tcp_port()?;
    let mut cmd = cmd_for(&flask);
    cmd.current_dir(dir)
        .env("GIFTLESS_CONFIG_FILE", &cfg)
        // giftless warns that its default legacy endpoints will go away; we use them on purpose.
        .env("PYTHONWARNINGS", "ignore::FutureWarning")
        .args([
            "--app",
            "giftless.wsgi_entrypoint",
            "run",
            "-h",
            "127.0.0.1",
            "-p",
        ])
        .arg(port.to_string());
    let mut server = Server::spawn("giftless", cmd, &dir.join("giftless"))?;
    server.wait_for_tcp(SocketAddr::from(([127, 0, 0, 1], port)))?;
    Ok(Giftless {
        server,
        port,
        storage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_storage_path_quoted() {
        let c = config(Path::new("/tmp/a b/\"x\""));
        assert!(c.contains("giftless.auth.allow_anon:read_write"));
        assert!(c.contains(r#"path: "/tmp/a b/\"x\"""#), "{c}");
    }
}
