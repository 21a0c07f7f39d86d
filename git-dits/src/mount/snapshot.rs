//! The tree of one commit as numbered nodes (inodes), loaded a directory at a time: mounting a
//! repository with a million files costs nothing until someone lists them.
//!
//! Every node gets the commit's time as its mtime, so the same commit mounts with the same
//! times every time (a video editor's media cache keys on them).

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use dits_core::pointer::{Pointer, MAX_LEN};
use gix::ObjectId;

pub type Ino = u64;
pub const ROOT: Ino = 1;

#[derive(Debug, Clone)]
pub enum Kind {
    Dir {
        tree: ObjectId,
    },
    /// A file Git stores itself.
    Plain {
        blob: ObjectId,
        size: u64,
        executable: bool,
    },
    /// A file whose blob is a Dits pointer: the content comes from the chunk store.
    Dits {
        pointer: Pointer,
        executable: bool,
    },
    Symlink {
        blob: ObjectId,
        size: u64,
    },
    /// A submodule (a commit in the tree): shown as an empty directory, as git checks it out.
    Submodule,
}

#[derive(Debug)]
pub struct Node {
    pub parent: Ino,
    /// The path from the root, for log messages.
    pub path: String,
    pub kind: Kind,
}

/// What `stat` shows, independent of any filesystem API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: FileKind,
    pub size: u64,
    pub perm: u16,
    pub mtime: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
}

/// A loaded directory: entries in Git's order (for listing) and by name (for lookups, which
/// the kernel makes once per entry it shows).
#[derive(Debug, Default)]
pub struct Dir {
    pub entries: Vec<(OsString, Ino)>,
    by_name: HashMap<OsString, Ino>,
}

type Children = Arc<Dir>;

/// gix's repository handle is not thread-safe in our build (no `parallel` feature), so one
/// thread owns it and the filesystem's threads send it work.
struct GitThread {
    tx: Mutex<mpsc::Sender<GitWork>>,
}

type GitWork = Box<dyn FnOnce(&gix::Repository) + Send>;

impl GitThread {
    /// Opens the repository at `git_dir` on a thread of its own.
    fn start(git_dir: PathBuf) -> Result<GitThread> {
        let (tx, rx) = mpsc::channel::<GitWork>();
        let (opened_tx, opened_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("dits-mount-git".into())
            .spawn(move || {
                let repo = match gix::open(&git_dir) {
                    Ok(r) => {
                        let _ = opened_tx.send(Ok(()));
                        r
                    }
                    Err(e) => {
                        let _ = opened_tx
                            .send(Err(anyhow::anyhow!("opening {}: {e}", git_dir.display())));
                        return;
                    }
                };
                while let Ok(work) = rx.recv() {
                    work(&repo);
                }
            })
            .context("starting the git reader thread")?;
        opened_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the git reader thread has stopped"))??;
        Ok(GitThread { tx: Mutex::new(tx) })
    }

    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&gix::Repository) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = mpsc::channel();
        let job = Box::new(move |repo: &gix::Repository| {
            let _ = tx.send(work(repo));
        });
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| anyhow::anyhow!("the git reader thread has stopped"))?;
        rx.recv()
            .map_err(|_| anyhow::anyhow!("the git reader thread has stopped"))?
    }
}

pub struct Snapshot {
    git: GitThread,
    pub mtime: SystemTime,
    /// Node `ino` is at index `ino - 1`.
    nodes: RwLock<Vec<Arc<Node>>>,
    children: RwLock<HashMap<Ino, Children>>,
}

impl Snapshot {
    /// The tree of `commit_id` (resolved by the caller from what the user typed).
    pub fn open(repo: &gix::Repository, commit_id: ObjectId) -> Result<Snapshot> {
        let commit = repo
            .find_commit(commit_id)
            .with_context(|| format!("reading commit {commit_id}"))?;
        let seconds = commit
            .time()
            .with_context(|| format!("reading the time of commit {commit_id}"))?
            .seconds;
        let tree = commit
            .tree_id()
            .with_context(|| format!("reading the tree of commit {commit_id}"))?
            .detach();
        drop(commit);
        let mtime = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
        let root = Arc::new(Node {
            parent: ROOT,
            path: String::new(),
            kind: Kind::Dir { tree },
        });
        Ok(Snapshot {
            git: GitThread::start(repo.git_dir().to_owned())?,
            mtime,
            nodes: RwLock::new(vec![root]),
            children: RwLock::new(HashMap::new()),
        })
    }

    pub fn node(&self, ino: Ino) -> Option<Arc<Node>> {
        let index = usize::try_from(ino.checked_sub(1)?).ok()?;
        self.nodes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(index)
            .cloned()
    }

    pub fn attr(&self, ino: Ino) -> Option<Attr> {
        let node = self.node(ino)?;
        let (kind, size, perm) = match &node.kind {
            Kind::Dir { .. } | Kind::Submodule => (FileKind::Dir, 0, 0o555),
            Kind::Plain {
                size, executable, ..
            } => (FileKind::File, *size, file_perm(*executable)),
            Kind::Dits {
                pointer,
                executable,
            } => (FileKind::File, pointer.size, file_perm(*executable)),
            Kind::Symlink { size, .. } => (FileKind::Symlink, *size, 0o777),
        };
        Some(Attr {
            ino,
            kind,
            size,
            perm,
            mtime: self.mtime,
        })
    }

    /// The entries of directory `ino` (loading them on first use), or `None` if it is not a
    /// directory.
    pub fn children(&self, ino: Ino) -> Result<Option<Children>> {
        if let Some(c) = self
            .children
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ino)
        {
            return Ok(Some(Arc::clone(c)));
        }
        let Some(node) = self.node(ino) else {
            return Ok(None);
        };
        let tree = match node.kind {
            Kind::Dir { tree } => tree,
            Kind::Submodule => return Ok(Some(Arc::new(Dir::default()))),
            _ => return Ok(None),
        };
        let loaded = self
            .load_dir(&node.path, tree)
            .with_context(|| format!("reading tree {tree} ({})", display_dir(&node.path)))?;
        // Two threads may load the same directory at once; the first to publish wins so an
        // entry never changes its inode number.
        let mut children = self.children.write().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = children.get(&ino) {
            return Ok(Some(Arc::clone(c)));
        }
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        let mut dir = Dir::default();
        for (name, path, kind) in loaded {
            nodes.push(Arc::new(Node {
                parent: ino,
                path,
                kind,
            }));
            dir.by_name.insert(name.clone(), nodes.len() as Ino);
            dir.entries.push((name, nodes.len() as Ino));
        }
        let list = Arc::new(dir);
        children.insert(ino, Arc::clone(&list));
        Ok(Some(list))
    }

    pub fn lookup(&self, parent: Ino, name: &std::ffi::OsStr) -> Result<Option<Ino>> {
        Ok(self
            .children(parent)?
            .and_then(|c| c.by_name.get(name).copied()))
    }

    /// The bytes of a blob Git stores (plain files and symlink targets).
    pub fn blob(&self, id: ObjectId) -> Result<Vec<u8>> {
        self.git.run(move |repo| {
            let object = repo
                .find_object(id)
                .with_context(|| format!("reading blob {id}"))?;
            Ok(object.detach().data)
        })
    }

    fn load_dir(&self, dir: &str, tree: ObjectId) -> Result<Vec<(OsString, String, Kind)>> {
        let dir = dir.to_owned();
        self.git.run(move |repo| load_dir(repo, &dir, tree))
    }
}

fn load_dir(
    repo: &gix::Repository,
    dir: &str,
    tree: ObjectId,
) -> Result<Vec<(OsString, String, Kind)>> {
    use gix::object::tree::EntryKind;
    {
        let tree = repo.find_tree(tree)?;
        let mut out = Vec::new();
        for entry in tree.iter() {
            let entry = entry?;
            let name = entry.filename().to_owned();
            let path = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            let oid = entry.oid().to_owned();
            let kind = match entry.mode().kind() {
                EntryKind::Tree => Kind::Dir { tree: oid },
                EntryKind::Commit => Kind::Submodule,
                EntryKind::Link => Kind::Symlink {
                    blob: oid,
                    size: repo.find_header(oid)?.size(),
                },
                kind @ (EntryKind::Blob | EntryKind::BlobExecutable) => {
                    let executable = kind == EntryKind::BlobExecutable;
                    let size = repo.find_header(oid)?.size();
                    // Only small blobs can be pointers: big ones are never read here.
                    let pointer = if size <= MAX_LEN as u64 {
                        Pointer::parse(&repo.find_object(oid)?.data).ok()
                    } else {
                        None
                    };
                    match pointer {
                        Some(pointer) => Kind::Dits {
                            pointer,
                            executable,
                        },
                        None => Kind::Plain {
                            blob: oid,
                            size,
                            executable,
                        },
                    }
                }
            };
            out.push((OsString::from_vec(name.into()), path, kind));
        }
        Ok(out)
    }
}

fn file_perm(executable: bool) -> u16 {
    if executable {
        0o555
    } else {
        0o444
    }
}

fn display_dir(path: &str) -> &str {
    if path.is_empty() {
        "the root"
    } else {
        path
    }
}
