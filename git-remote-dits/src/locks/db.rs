//! The server's lock database: `<root>/server/locks.db`, SQLite in WAL mode with a full
//! fsync at every commit, so a lock the server confirmed survives a `kill -9` or a power
//! cut. The server and its git hooks (separate processes, which check pushes) open the same
//! file; SQLite serialises their writes.
//!
//! Tables: `locks` (one row per held lock, unique per repository and [`lock_key`]), `audit`
//! (append-only: every lock broken by an admin and every lock released by a push), and
//! `notices` (messages for a user, shown once: "your lock was broken").

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use dits_core::locks::{lock_key, LockInfo, Refusal};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::NetError;

/// Where a server rooted at `root` keeps its locks.
pub fn db_path(root: &Path) -> PathBuf {
    root.join("server").join("locks.db")
}

/// The largest page a listing returns.
pub const MAX_PAGE: u32 = 5000;

/// What a lock or unlock did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done(Vec<LockInfo>),
    /// Nothing changed: these locks (or, for paths nobody locked, these paths) are why.
    Refused {
        why: Refusal,
        locks: Vec<LockInfo>,
        paths: Vec<String>,
    },
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: u64,
    pub repo: String,
    /// `force-unlock` or `released-by-push`.
    pub action: String,
    pub lock: LockInfo,
    /// Who did it.
    pub actor: String,
    pub reason: String,
}

pub struct LockDb {
    conn: Mutex<Connection>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS locks (
    repo TEXT NOT NULL,
    key TEXT NOT NULL,
    path TEXT NOT NULL,
    owner TEXT NOT NULL,
    branch TEXT NOT NULL,
    reason TEXT NOT NULL,
    since INTEGER NOT NULL,
    release_on_push INTEGER NOT NULL,
    PRIMARY KEY (repo, key)
);
CREATE INDEX IF NOT EXISTS locks_by_path ON locks (repo, path);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    repo TEXT NOT NULL,
    action TEXT NOT NULL,
    path TEXT NOT NULL,
    owner TEXT NOT NULL,
    branch TEXT NOT NULL,
    since INTEGER NOT NULL,
    lock_reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS notices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    user TEXT NOT NULL,
    text TEXT NOT NULL
);
";

const COLUMNS: &str = "path, owner, branch, reason, since, release_on_push";

/// The lock on `path` in `repo`, by its [`lock_key`].
fn find(conn: &Connection, repo: &str, path: &str) -> rusqlite::Result<Option<LockInfo>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM locks WHERE repo = ?1 AND key = ?2"
    ))?
    .query_row(params![repo, lock_key(path)], row_lock)
    .optional()
}

/// `paths` without the ones that name a file already named (by [`lock_key`]).
fn distinct(paths: &[String]) -> Vec<&String> {
    let mut seen = std::collections::HashSet::new();
    paths.iter().filter(|p| seen.insert(lock_key(p))).collect()
}

fn row_lock(row: &rusqlite::Row<'_>) -> rusqlite::Result<LockInfo> {
    Ok(LockInfo {
        path: row.get(0)?,
        owner: row.get(1)?,
        branch: row.get(2)?,
        reason: row.get(3)?,
        since: row.get::<_, i64>(4)?.max(0) as u64,
        release_on_push: row.get(5)?,
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether a lock taken for `lock_branch` guards pushes to `branch`.
fn guards(lock_branch: &str, branch: &str) -> bool {
    lock_branch.is_empty() || lock_branch == branch
}

impl LockDb {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<LockDb, NetError> {
        let db = |e| NetError::Db {
            what: format!("opening the lock database {}", path.display()),
            source: e,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| NetError::io(format!("creating {}", dir.display()), e))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        // A hook and the server may write at the same moment: wait for the other, briefly.
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(LockDb {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    fn err(&self, what: &str) -> impl Fn(rusqlite::Error) -> NetError + '_ {
        let what = what.to_owned();
        move |e| NetError::Db {
            what: format!("{what} ({})", self.path.display()),
            source: e,
        }
    }

    /// Runs `f` in one write transaction (taken at once, so two lockers of the same path
    /// are serialised and exactly one wins).
    fn write<T>(
        &self,
        what: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, NetError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.err(what))?;
        let out = f(&tx).map_err(self.err(what))?;
        tx.commit().map_err(self.err(what))?;
        Ok(out)
    }

    fn read<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, NetError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(self.err(what))
    }

    /// Locks all of `paths` (checked by the caller with [`dits_core::locks::lock_path`]) for
    /// `owner`, or none: a path another user holds refuses the whole call. Paths the owner
    /// already holds stay as they are (and are returned).
    pub fn lock(
        &self,
        repo: &str,
        owner: &str,
        branch: &str,
        reason: &str,
        release_on_push: bool,
        paths: &[String],
    ) -> Result<Outcome, NetError> {
        let since = now();
        self.write("taking locks", |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO locks (repo, key, path, owner, branch, reason, since, release_on_push)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            // Look first, write after: a refusal leaves the database as it was.
            let (mut held, mut taken, mut free) = (Vec::new(), Vec::new(), Vec::new());
            for path in distinct(paths) {
                match find(tx, repo, path)? {
                    Some(l) if l.owner == owner => taken.push(l),
                    Some(l) => held.push(l),
                    None => free.push(path),
                }
            }
            if !held.is_empty() {
                return Ok(Outcome::Refused {
                    why: Refusal::Held,
                    locks: held,
                    paths: Vec::new(),
                });
            }
            for path in free {
                insert.execute(params![
                    repo,
                    lock_key(path),
                    path,
                    owner,
                    branch,
                    reason,
                    since as i64,
                    release_on_push
                ])?;
                taken.push(LockInfo {
                    path: path.clone(),
                    owner: owner.to_owned(),
                    branch: branch.to_owned(),
                    reason: reason.to_owned(),
                    since,
                    release_on_push,
                });
            }
            Ok(Outcome::Done(taken))
        })
    }

    /// Releases `paths`. Another user's lock is released only with `force` by an `admin`,
    /// which is recorded in the audit log and noticed to its owner. All or nothing.
    pub fn unlock(
        &self,
        repo: &str,
        actor: &str,
        admin: bool,
        force: Option<&str>,
        paths: &[String],
    ) -> Result<Outcome, NetError> {
        let at = now();
        self.write("releasing locks", |tx| {
            let (mut found, mut missing, mut others) = (Vec::new(), Vec::new(), Vec::new());
            // Each lock once: `unlock a A` breaks, audits and notices one lock, not two.
            for path in distinct(paths) {
                match find(tx, repo, path)? {
                    Some(l) if l.owner != actor => others.push(l),
                    Some(l) => found.push(l),
                    None => missing.push(path.clone()),
                }
            }
            if !missing.is_empty() {
                return Ok(Outcome::Refused {
                    why: Refusal::NotLocked,
                    locks: Vec::new(),
                    paths: missing,
                });
            }
            let may_break = admin && force.is_some();
            if !others.is_empty() && !may_break {
                return Ok(Outcome::Refused {
                    why: Refusal::NotYours,
                    locks: others,
                    paths: Vec::new(),
                });
            }
            let mut delete = tx.prepare_cached("DELETE FROM locks WHERE repo = ?1 AND key = ?2")?;
            for l in found.iter().chain(&others) {
                delete.execute(params![repo, lock_key(&l.path)])?;
            }
            let reason = force.unwrap_or("");
            for l in &others {
                audit(tx, at, repo, "force-unlock", l, actor, reason)?;
                tx.execute(
                    "INSERT INTO notices (repo, user, text) VALUES (?1, ?2, ?3)",
                    params![
                        repo,
                        l.owner,
                        format!(
                            "your lock on {} ({}) was broken by {actor} on {}{}",
                            l.path,
                            l.branch,
                            crate::locks::format_time(at),
                            if reason.is_empty() {
                                String::new()
                            } else {
                                format!(": {reason}")
                            }
                        )
                    ],
                )?;
            }
            found.extend(others);
            Ok(Outcome::Done(found))
        })
    }

    /// One page of `repo`'s locks in path order: under `prefix`, of `owner` if given, after
    /// the path `after`. Returns the page and the path to continue after, if there is more.
    pub fn list(
        &self,
        repo: &str,
        prefix: &str,
        owner: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<LockInfo>, Option<String>), NetError> {
        let limit = if limit == 0 {
            MAX_PAGE
        } else {
            limit.min(MAX_PAGE)
        };
        self.read("listing locks", |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM locks
                 WHERE repo = ?1 AND path > ?2 AND substr(path, 1, length(?3)) = ?3
                   AND (?4 IS NULL OR owner = ?4)
                 ORDER BY path LIMIT ?5"
            ))?;
            let mut page: Vec<LockInfo> = stmt
                .query_map(
                    params![repo, after.unwrap_or(""), prefix, owner, limit + 1],
                    row_lock,
                )?
                .collect::<rusqlite::Result<_>>()?;
            let next = if page.len() > limit as usize {
                page.truncate(limit as usize);
                page.last().map(|l| l.path.clone())
            } else {
                None
            };
            Ok((page, next))
        })
    }

    /// The locks of users other than `pusher` that guard `branch` on any of `paths`.
    pub fn conflicts(
        &self,
        repo: &str,
        pusher: &str,
        branch: &str,
        paths: &[String],
    ) -> Result<Vec<LockInfo>, NetError> {
        Ok(self
            .on_paths(repo, paths)?
            .into_iter()
            .filter(|l| l.owner != pusher && guards(&l.branch, branch))
            .collect())
    }

    /// Whether `repo` has any lock at all (so a push to a repository nobody locks in
    /// skips listing what it changes).
    pub fn any(&self, repo: &str) -> Result<bool, NetError> {
        self.read("looking up locks", |conn| {
            conn.prepare_cached("SELECT 1 FROM locks WHERE repo = ?1 LIMIT 1")?
                .exists(params![repo])
        })
    }

    /// The locks on any of `paths` (by [`lock_key`]).
    pub fn on_paths(&self, repo: &str, paths: &[String]) -> Result<Vec<LockInfo>, NetError> {
        self.read("looking up locks", |conn| {
            let mut out = Vec::new();
            for path in distinct(paths) {
                out.extend(find(conn, repo, path)?);
            }
            Ok(out)
        })
    }

    /// After a push by `pusher` landed changes to `paths` on `branch`: releases the pusher's
    /// locks there that ask for it (or all of them, with `all`), recording each in the audit
    /// log. Returns what it released.
    pub fn release_pushed(
        &self,
        repo: &str,
        pusher: &str,
        branch: &str,
        paths: &[String],
        all: bool,
    ) -> Result<Vec<LockInfo>, NetError> {
        let mine: Vec<LockInfo> = self
            .on_paths(repo, paths)?
            .into_iter()
            .filter(|l| {
                l.owner == pusher && guards(&l.branch, branch) && (all || l.release_on_push)
            })
            .collect();
        if mine.is_empty() {
            return Ok(mine);
        }
        let at = now();
        self.write("releasing pushed locks", |tx| {
            for l in &mine {
                tx.execute(
                    "DELETE FROM locks WHERE repo = ?1 AND key = ?2 AND owner = ?3",
                    params![repo, lock_key(&l.path), pusher],
                )?;
                audit(tx, at, repo, "released-by-push", l, pusher, branch)?;
            }
            Ok(())
        })?;
        Ok(mine)
    }

    /// Whether notices wait for `user`.
    pub fn has_notices(&self, repo: &str, user: &str) -> Result<bool, NetError> {
        self.read("looking up notices", |conn| {
            conn.prepare_cached("SELECT 1 FROM notices WHERE repo = ?1 AND user = ?2 LIMIT 1")?
                .exists(params![repo, user])
        })
    }

    /// The notices waiting for `user`, removed as they are returned.
    pub fn take_notices(&self, repo: &str, user: &str) -> Result<Vec<String>, NetError> {
        self.write("reading notices", |tx| {
            let texts = tx
                .prepare_cached(
                    "SELECT text FROM notices WHERE repo = ?1 AND user = ?2 ORDER BY seq",
                )?
                .query_map(params![repo, user], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            if !texts.is_empty() {
                tx.execute(
                    "DELETE FROM notices WHERE repo = ?1 AND user = ?2",
                    params![repo, user],
                )?;
            }
            Ok(texts)
        })
    }

    /// Writes a consistent copy of the whole database to `dest` (a new file) while the
    /// server runs: SQLite's `VACUUM INTO`, one read transaction.
    pub fn backup_to(&self, dest: &Path) -> Result<(), NetError> {
        let dest = dest
            .to_str()
            .ok_or_else(|| NetError::Config(format!("{}: not a UTF-8 path", dest.display())))?;
        self.read("backing up the lock database", |conn| {
            conn.execute("VACUUM INTO ?1", params![dest]).map(drop)
        })
    }

    /// The audit log, oldest first (of one repository, or all).
    pub fn audit_log(&self, repo: Option<&str>) -> Result<Vec<AuditEntry>, NetError> {
        self.read("reading the audit log", |conn| {
            let mut stmt = conn.prepare(
                "SELECT at, repo, action, path, owner, branch, since, lock_reason, actor, reason
                 FROM audit WHERE ?1 IS NULL OR repo = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![repo], |r| {
                Ok(AuditEntry {
                    at: r.get::<_, i64>(0)?.max(0) as u64,
                    repo: r.get(1)?,
                    action: r.get(2)?,
                    lock: LockInfo {
                        path: r.get(3)?,
                        owner: r.get(4)?,
                        branch: r.get(5)?,
                        since: r.get::<_, i64>(6)?.max(0) as u64,
                        reason: r.get(7)?,
                        release_on_push: false,
                    },
                    actor: r.get(8)?,
                    reason: r.get(9)?,
                })
            })?;
            rows.collect()
        })
    }
}

fn audit(
    tx: &rusqlite::Transaction<'_>,
    at: u64,
    repo: &str,
    action: &str,
    l: &LockInfo,
    actor: &str,
    reason: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (at, repo, action, path, owner, branch, since, lock_reason, actor, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            at as i64,
            repo,
            action,
            l.path,
            l.owner,
            l.branch,
            l.since as i64,
            l.reason,
            actor,
            reason
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn locks_are_all_or_nothing_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks.db");
        let db = LockDb::open(&path).unwrap();
        let main = "refs/heads/main";
        let got = db
            .lock("r", "alice", main, "retouch", false, &paths(&["a.psd"]))
            .unwrap();
        assert!(matches!(got, Outcome::Done(ref l) if l.len() == 1 && l[0].owner == "alice"));
        // Bob asks for a free path and one of Alice's (in another case): none is taken.
        match db
            .lock("r", "bob", main, "", false, &paths(&["b.psd", "A.PSD"]))
            .unwrap()
        {
            Outcome::Refused {
                why: Refusal::Held,
                locks,
                ..
            } => {
                assert_eq!(locks.len(), 1);
                assert_eq!(
                    (locks[0].path.as_str(), locks[0].owner.as_str()),
                    ("a.psd", "alice")
                );
                assert_eq!(locks[0].reason, "retouch");
            }
            other => panic!("{other:?}"),
        }
        drop(db);
        let db = LockDb::open(&path).unwrap();
        let (all, next) = db.list("r", "", None, None, 0).unwrap();
        assert_eq!(
            all.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(),
            ["a.psd"]
        );
        assert!(next.is_none());
        // Locking again what one holds is fine; other repositories are separate.
        assert!(matches!(
            db.lock("r", "alice", main, "", false, &paths(&["a.psd"]))
                .unwrap(),
            Outcome::Done(_)
        ));
        assert!(matches!(
            db.lock("other", "bob", main, "", false, &paths(&["a.psd"]))
                .unwrap(),
            Outcome::Done(_)
        ));
        assert_eq!(
            db.conflicts("r", "bob", main, &paths(&["a.psd", "c"]))
                .unwrap()
                .len(),
            1
        );
        assert!(db
            .conflicts("r", "alice", main, &paths(&["a.psd"]))
            .unwrap()
            .is_empty());
        assert!(db
            .conflicts("r", "bob", "refs/heads/dev", &paths(&["a.psd"]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unlocking_needs_the_owner_or_a_forcing_admin_and_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let db = LockDb::open(&dir.path().join("locks.db")).unwrap();
        let main = "refs/heads/main";
        db.lock("r", "alice", main, "", false, &paths(&["a", "b"]))
            .unwrap();
        assert!(matches!(
            db.unlock("r", "bob", false, None, &paths(&["a"])).unwrap(),
            Outcome::Refused {
                why: Refusal::NotYours,
                ..
            }
        ));
        assert!(matches!(
            db.unlock("r", "bob", false, Some("left"), &paths(&["a"]))
                .unwrap(),
            Outcome::Refused {
                why: Refusal::NotYours,
                ..
            }
        ));
        assert!(matches!(
            db.unlock("r", "alice", false, None, &paths(&["zzz"]))
                .unwrap(),
            Outcome::Refused {
                why: Refusal::NotLocked,
                ..
            }
        ));
        assert!(db.audit_log(None).unwrap().is_empty());
        let done = db
            .unlock("r", "root", true, Some("alice left"), &paths(&["a", "A"]))
            .unwrap();
        assert!(matches!(done, Outcome::Done(ref l) if l.len() == 1));
        let log = db.audit_log(Some("r")).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (
                log[0].action.as_str(),
                log[0].actor.as_str(),
                log[0].lock.owner.as_str()
            ),
            ("force-unlock", "root", "alice")
        );
        assert_eq!(log[0].reason, "alice left");
        let notices = db.take_notices("r", "alice").unwrap();
        assert!(
            notices.len() == 1 && notices[0].contains("broken by root"),
            "{notices:?}"
        );
        assert!(
            db.take_notices("r", "alice").unwrap().is_empty(),
            "shown once"
        );
        // The log cannot be rewritten, even by SQL.
        let conn = db.conn.lock().unwrap();
        assert!(conn.execute("DELETE FROM audit", []).is_err());
        drop(conn);
        assert!(matches!(
            db.unlock("r", "alice", false, None, &paths(&["b"]))
                .unwrap(),
            Outcome::Done(_)
        ));
    }

    #[test]
    fn two_users_locking_one_path_at_once_leaves_exactly_one_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks.db");
        for round in 0..20 {
            let file = vec![format!("f{round}")];
            // Separate connections, as the server and a hook would have.
            let results: Vec<bool> = std::thread::scope(|s| {
                let handles: Vec<_> = ["alice", "bob", "carol"]
                    .iter()
                    .map(|user| {
                        let (path, file) = (&path, &file);
                        s.spawn(move || {
                            let db = LockDb::open(path).unwrap();
                            matches!(
                                db.lock("r", user, "refs/heads/main", "", false, file)
                                    .unwrap(),
                                Outcome::Done(_)
                            )
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(
                results.iter().filter(|&&won| won).count(),
                1,
                "round {round}: {results:?}"
            );
        }
    }

    #[test]
    fn listings_page_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = LockDb::open(&dir.path().join("locks.db")).unwrap();
        let all: Vec<String> = (0..25).map(|i| format!("art/{i:02}.psd")).collect();
        db.lock("r", "alice", "", "", false, &all).unwrap();
        db.lock("r", "bob", "", "", false, &paths(&["code/x.uasset"]))
            .unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = db.list("r", "art/", None, after.as_deref(), 10).unwrap();
            seen.extend(page.into_iter().map(|l| l.path));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, all);
        let (bobs, _) = db.list("r", "", Some("bob"), None, 0).unwrap();
        assert_eq!(bobs.len(), 1);
    }
}
