//! FUSE glue (Linux): translates kernel requests into [`View`] calls. Nothing here knows
//! about chunks or Git.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request, SessionACL,
};

use super::snapshot::{Attr, FileKind};
use super::view::{View, ViewError};

/// A commit never changes, so the kernel may cache names and attributes for long.
const TTL: Duration = Duration::from_secs(3600);
/// Largest read request we ask the kernel for (it also bounds its readahead requests).
const MAX_REQUEST: u32 = 1 << 20;
/// Threads answering the kernel: readers blocked on the network must not stall the others.
const THREADS: usize = 4;

pub struct Fuse {
    view: Arc<View>,
    uid: u32,
    gid: u32,
}

impl Fuse {
    pub fn new(view: Arc<View>, uid: u32, gid: u32) -> Fuse {
        Fuse { view, uid, gid }
    }

    fn file_attr(&self, a: &Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(a.ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: a.mtime,
            mtime: a.mtime,
            ctime: a.mtime,
            crtime: a.mtime,
            kind: match a.kind {
                FileKind::Dir => FileType::Directory,
                FileKind::File => FileType::RegularFile,
                FileKind::Symlink => FileType::Symlink,
            },
            perm: a.perm,
            nlink: if a.kind == FileKind::Dir { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 1 << 16,
            flags: 0,
        }
    }
}

fn errno(e: &ViewError) -> Errno {
    match e {
        ViewError::NotFound => Errno::ENOENT,
        ViewError::NotDir => Errno::ENOTDIR,
        ViewError::IsDir => Errno::EISDIR,
        ViewError::NotLink => Errno::EINVAL,
        ViewError::Io(_) => Errno::EIO,
    }
}

impl Filesystem for Fuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Read-only, but max_write also sets the largest request (max_pages) the kernel sends.
        let _ = config.set_max_write(MAX_REQUEST);
        let _ = config.set_max_readahead(MAX_REQUEST);
        Ok(())
    }

    fn destroy(&mut self) {
        self.view.content.shutdown();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.view.lookup(parent.0, name) {
            Ok(a) => reply.entry(&TTL, &self.file_attr(&a), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.view.attr(ino.0) {
            Ok(a) => reply.attr(&TTL, &self.file_attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.view.readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            reply.error(Errno::EROFS);
            return;
        }
        match self.view.open(ino.0) {
            // Content is immutable: the page cache stays valid across opens.
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        thread_local! {
            // One buffer per FUSE thread, reused: see `Content::read`.
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| match self.view.read(fh.0, offset, size, buf) {
            Ok(()) => reply.data(buf),
            Err(e) => reply.error(errno(&e)),
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.view.release(fh.0);
        reply.ok();
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing is ever written, so there is nothing to flush.
        reply.ok();
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENODATA);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if self.view.is_dir(ino.0) {
            reply.opened(FileHandle(0), FopenFlags::FOPEN_CACHE_DIR);
        } else {
            reply.error(Errno::ENOTDIR);
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.view.list(ino.0) {
            Ok(e) => e,
            Err(e) => {
                reply.error(errno(&e));
                return;
            }
        };
        // An entry's offset is the index of the next one: where a later call resumes.
        for (i, (name, a)) in entries.iter().enumerate().skip(offset as usize) {
            let kind = self.file_attr(a).kind;
            if reply.add(INodeNo(a.ino), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, 1 << 16, 255, 1 << 16);
    }
}

/// Mounts `view` at `dir` read-only and serves it on background threads until unmounted.
/// The kernel unmounts by itself if this process dies (`auto_unmount`, through fusermount3)
/// where the system allows it.
pub fn mount(
    view: &Arc<View>,
    uid: u32,
    gid: u32,
    dir: &Path,
    source: &str,
) -> std::io::Result<fuser::BackgroundSession> {
    let options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::FSName(source.replace([',', ' '], "_")),
        MountOption::Subtype("dits".into()),
        MountOption::DefaultPermissions,
    ];
    let mut config = Config::default();
    config.n_threads = Some(THREADS);
    config.clone_fd = true;
    // auto_unmount needs allow_root, which for a user needs user_allow_other in
    // /etc/fuse.conf. Without it, mount anyway: `git dits mount` clears a dead mount itself.
    let mut auto = config.clone();
    auto.acl = SessionACL::RootAndOwner;
    auto.mount_options = options.clone();
    auto.mount_options.push(MountOption::AutoUnmount);
    let fs = || Fuse::new(Arc::clone(view), uid, gid);
    let session = match fuser::Session::new(fs(), dir, &auto) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "mounting without auto_unmount ({e}): if this process is killed, run `git dits unmount {}`; hint: add user_allow_other to /etc/fuse.conf",
                dir.display()
            );
            config.mount_options = options;
            fuser::Session::new(fs(), dir, &config)?
        }
    };
    session.spawn()
}
