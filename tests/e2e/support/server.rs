//! A real `git dits serve` process on 127.0.0.1 for the network tests, plus the client-side
//! set-up a user would do: a token from the server, stored with git's credential helper, and
//! the server's certificate pinned in the global config.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use super::{stdout_of, Env};

pub struct Server {
    child: Option<Child>,
    pub root: PathBuf,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub fingerprint: String,
    log: PathBuf,
}

impl Env {
    /// Starts a server rooted at `<tmp>/<name>` on a free port (or `addr` to reuse one).
    pub fn start_server_at(&self, name: &str, addr: &str) -> Server {
        self.start_server_with(name, addr, &[])
    }

    /// Starts a server with extra `git dits serve` arguments (e.g. `--cert`, `--key`).
    pub fn start_server_with(&self, name: &str, addr: &str, extra: &[&str]) -> Server {
        let root = self.path(name);
        std::fs::create_dir_all(&root).unwrap();
        let log = self.path(&format!("{name}.log"));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        // The binary itself, not `git dits`: git runs git-dits as a child, and killing git
        // would leave the server running.
        let mut child = self
            .cmd(self.tmp.path(), self.bin.join("git-dits"))
            .args(["serve", "--listen", addr, "--root"])
            .arg(&root)
            .args(extra)
            .env("DITS_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || {
            lines.next().map(|l| l.unwrap()).unwrap_or_else(|| {
                panic!(
                    "server exited early:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
        };
        let addr = next().strip_prefix("listening ").unwrap().to_owned();
        let fingerprint = next().strip_prefix("fingerprint ").unwrap().to_owned();
        Server {
            child: Some(child),
            root,
            addr,
            fingerprint,
            log,
        }
    }

    pub fn start_server(&self, name: &str) -> Server {
        self.start_server_at(name, "127.0.0.1:0")
    }

    /// A server named `name` and a write token for `team/film`, logged in (see [`Env::login`]).
    pub fn logged_in_server(&self, name: &str) -> (Server, String) {
        let server = self.start_server(name);
        let token = self.token(&server, "team/film", true);
        self.login(&server, &token);
        (server, token)
    }

    /// A new token of user `tester` for `pattern` (write or read-only).
    pub fn token(&self, server: &Server, pattern: &str, write: bool) -> String {
        let rights = if write { "--write" } else { "--read" };
        self.user_token(server, pattern, rights, "tester")
    }

    /// A new token of `user` for `pattern`; `rights` is `--read`, `--write` or `--admin`.
    pub fn user_token(&self, server: &Server, pattern: &str, rights: &str, user: &str) -> String {
        let root = server.root.display().to_string();
        let mut args = vec![
            "serve", "--root", &root, "token", "add", "--repo", pattern, "--user", user,
        ];
        if rights != "--read" {
            args.push(rights);
        }
        stdout_of(&self.dits(self.tmp.path(), &args))
            .trim()
            .to_owned()
    }

    /// What a user does once: `git dits install --global` (so clones get the filter), pin the
    /// server, and store a token with git's credential helper.
    pub fn login(&self, server: &Server, token: &str) {
        self.dits(&self.home, &["install", "--global", "-q"]);
        let creds = self.path("credentials");
        std::fs::write(&creds, format!("dits://user:{token}@{}\n", server.addr)).unwrap();
        let home = self.home.clone();
        let dir = home.as_path();
        self.git(
            dir,
            &[
                "config",
                "--global",
                "credential.helper",
                &format!("store --file={}", creds.display()),
            ],
        );
        self.pin(server);
    }

    /// Lets the client reach `server` through another address too (a fault proxy): the
    /// same token and pin under that authority.
    pub fn also_via(&self, server: &Server, token: &str, authority: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path("credentials"))
            .unwrap();
        writeln!(f, "dits://user:{token}@{authority}").unwrap();
        self.git(
            &self.home,
            &[
                "config",
                "--global",
                &format!("dits.{authority}.fingerprint"),
                &server.fingerprint,
            ],
        );
    }

    pub fn pin(&self, server: &Server) {
        self.git(
            &self.home,
            &[
                "config",
                "--global",
                &format!("dits.{}.fingerprint", server.addr),
                &server.fingerprint,
            ],
        );
    }
}

impl Server {
    pub fn url(&self, repo: &str) -> String {
        format!("dits://{}/{repo}", self.addr)
    }

    /// The bare repository the server keeps for `repo`.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join("repos").join(format!("{repo}.git"))
    }

    pub fn transfer_log(&self) -> String {
        std::fs::read_to_string(self.root.join("server").join("transfer.log")).unwrap_or_default()
    }

    /// Payload bytes of all `op` lines (put, get) in the transfer log so far.
    pub fn bytes(&self, op: &str) -> u64 {
        let tag = format!(" op={op} ");
        self.transfer_log()
            .lines()
            .filter(|l| l.contains(&tag))
            .filter_map(|l| l.rsplit_once("bytes="))
            .map(|(_, b)| b.trim().parse::<u64>().unwrap())
            .sum()
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: a clean shutdown.
    #[allow(unsafe_code)]
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = libc::pid_t::try_from(c.id()).unwrap();
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(|c| c.id())
            .expect("the server is running")
    }

    pub fn root_path(&self) -> &Path {
        &self.root
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
