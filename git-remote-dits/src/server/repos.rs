//! The repositories a server holds: `<root>/repos/<path>.git`, each a real bare Git
//! repository whose common dir holds a Dits store (`<repo>.git/dits`), exactly as a client's
//! `.git/dits`. So the store code, `git dits fsck` and the integrity hook work on both sides.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use dits_core::store::{DiskStore, StoreOptions};

use crate::error::NetError;
use crate::url::check_repo_path;

pub struct Repos {
    root: PathBuf,
    /// The program the `update` hook runs (`git-dits`), so the hook works whatever PATH the
    /// server was started with.
    hook_program: PathBuf,
    stores: Mutex<HashMap<String, Arc<DiskStore>>>,
    /// Serialises creation so two first pushes do not both run `git init`.
    creating: Mutex<()>,
}

impl Repos {
    pub fn new(root: &Path, hook_program: PathBuf) -> Result<Repos, NetError> {
        let repos = Repos {
            root: root.to_owned(),
            hook_program,
            stores: Mutex::new(HashMap::new()),
            creating: Mutex::new(()),
        };
        repos.write_hooks()?;
        Ok(repos)
    }

    pub fn hooks_dir(&self) -> PathBuf {
        self.root.join("server").join("hooks")
    }

    /// Hooks every repository runs (see `git dits hook`): `update` refuses a ref whose new
    /// commits reference content the server lacks or change a path someone else locked;
    /// `post-update` points a new repository's HEAD at the first branch pushed, as Git hosts
    /// do; `post-receive` releases locks the push landed changes to, where asked. Rewritten at each start to run this
    /// binary.
    fn write_hooks(&self) -> Result<(), NetError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.hooks_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| NetError::io(format!("creating {}", dir.display()), e))?;
        let program = self
            .hook_program
            .display()
            .to_string()
            .replace('\'', "'\\''");
        for (name, why) in [
            ("update", "refuse refs whose content is not on this server"),
            (
                "post-update",
                "give a new repository's HEAD the first branch pushed",
            ),
            ("post-receive", "release the locks a push asked to release"),
        ] {
            let script = format!(
                "#!/bin/sh\n# Written by `git dits serve`: {why}.\nexec '{program}' hook {name} \"$@\"\n"
            );
            let path = dir.join(name);
            let tmp = dir.join(format!("{name}.tmp"));
            std::fs::write(&tmp, script)
                .and_then(|()| {
                    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                })
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| NetError::io(format!("writing {}", path.display()), e))?;
        }
        Ok(())
    }

    /// Where repository `repo` lives; the path is checked again here, whatever the caller did.
    pub fn dir(&self, repo: &str) -> Result<PathBuf, NetError> {
        check_repo_path(repo)?;
        Ok(self.root.join("repos").join(format!("{repo}.git")))
    }

    pub fn exists(&self, repo: &str) -> bool {
        self.dir(repo).is_ok_and(|d| d.join("HEAD").is_file())
    }

    /// Creates the bare repository if needed (callers check write rights first).
    pub fn create(&self, repo: &str) -> Result<PathBuf, NetError> {
        let dir = self.dir(repo)?;
        let _guard = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        if dir.join("HEAD").is_file() {
            return Ok(dir);
        }
        let run = |args: &[&str]| -> Result<(), NetError> {
            let out = Command::new("git")
                .args(args)
                .output()
                .map_err(|e| NetError::io("running git", e))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(NetError::io(
                    format!("git {}", args.join(" ")),
                    std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
                ))
            }
        };
        let dir_s = dir.display().to_string();
        let hooks = self.hooks_dir().display().to_string();
        run(&["init", "--bare", "--quiet", &dir_s])?;
        run(&["-C", &dir_s, "config", "core.hooksPath", &hooks])?;
        tracing::info!("created repository {repo}");
        Ok(dir)
    }

    /// The store of `repo`, opened once per server process and shared by all connections.
    pub fn store(&self, repo: &str, create: bool) -> Result<Option<Arc<DiskStore>>, NetError> {
        if let Some(s) = self
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(repo)
        {
            return Ok(Some(Arc::clone(s)));
        }
        let dir = if create {
            self.create(repo)?
        } else if self.exists(repo) {
            self.dir(repo)?
        } else {
            return Ok(None);
        };
        let store = Arc::new(DiskStore::open(dir.join("dits"), StoreOptions::default())?);
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Some(Arc::clone(
            stores.entry(repo.to_owned()).or_insert(store),
        )))
    }
}
