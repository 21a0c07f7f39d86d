//! `git dits migrate import`/`verify` on a repository made with the real `git lfs`: two
//! branches, a merge, an annotated and a lightweight tag, a rename, a plain large blob; every
//! version's content identical afterwards, history's shape and metadata unchanged (issue 16).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::support::*;

/// Every (commit subject, path) of all refs with the BLAKE3 of its content through the filters
/// (`cat-file --filters` smudges with whichever filter .gitattributes names).
fn contents(env: &Env, dir: &Path) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for line in env
        .git_stdout(dir, &["log", "--branches", "--tags", "--format=%H %s"])
        .lines()
    {
        let (commit, subject) = line.split_once(' ').unwrap();
        let files = env.git_stdout(dir, &["ls-tree", "-r", "--name-only", commit]);
        for path in files.lines().filter(|p| *p != ".gitattributes") {
            let spec = format!("{commit}:{path}");
            let data = env.git(dir, &["cat-file", "--filters", &spec]).stdout;
            out.insert((subject.to_owned(), path.to_owned()), b3_bytes(&data));
        }
    }
    out
}

/// A new repository `name` with Git LFS tracking `pattern`, and Dits installed beside it.
fn lfs_init(env: &Env, name: &str, pattern: &str) -> std::path::PathBuf {
    let dir = env.path(name);
    fs::create_dir_all(&dir).unwrap();
    env.git(&dir, &["init", "-q"]);
    env.git(&dir, &["lfs", "install", "--local"]);
    // LFS's hooks are in the way of Dits's: replaced (and kept as NAME.pre-dits).
    env.dits(&dir, &["install", "-q", "--force"]);
    env.git(&dir, &["lfs", "track", pattern]);
    dir
}

fn lfs_repo(env: &Env) -> std::path::PathBuf {
    let dir = lfs_init(env, "studio", "*.psd");
    write_content(&dir.join("a.psd"), 1601, 2 << 20);
    write_content(&dir.join("b.psd"), 1602, 1 << 20);
    fs::write(dir.join("README.md"), "# studio\n").unwrap();
    env.commit_all(&dir, "first");
    env.git(&dir, &["checkout", "-q", "-b", "side"]);
    let mut a = fs::read(dir.join("a.psd")).unwrap();
    a[1 << 20] ^= 0xff;
    fs::write(dir.join("a.psd"), &a).unwrap();
    write_content(&dir.join("c d é.psd"), 1603, 600 << 10);
    env.commit_all(&dir, "side edits");
    env.git(&dir, &["tag", "-a", "v1", "-m", "release one"]);
    env.git(&dir, &["checkout", "-q", "main"]);
    fs::create_dir_all(dir.join("art")).unwrap();
    env.git(&dir, &["mv", "b.psd", "art/b.psd"]);
    write_content(&dir.join("raw.mov"), 1604, 3 << 20);
    env.commit_all(&dir, "rename and raw footage");
    env.git(&dir, &["tag", "light"]);
    env.git(
        &dir,
        &["merge", "-q", "--no-edit", "-m", "merge side", "side"],
    );
    dir
}

#[test]
fn lfs_history_imported_into_dits_keeps_every_version_and_the_shape() {
    let env = Env::new();
    let dir = lfs_repo(&env);
    let before = contents(&env, &dir);
    let count = env.git_stdout(&dir, &["rev-list", "--branches", "--tags", "--count"]);
    let meta = env.git_stdout(
        &dir,
        &["log", "--branches", "--tags", "--format=%an %ae %ad %cd %s"],
    );
    let main_before = env.git_stdout(&dir, &["rev-parse", "main"]);

    // What would move, before anything does.
    let info = env.dits_stdout(
        &dir,
        &["migrate", "info", "--everything", "--include", "*.mov"],
    );
    assert!(info.contains("Would rewrite:    4 commit(s)"), "{info}");
    let psd = info
        .lines()
        .find(|l| l.starts_with(".psd"))
        .unwrap_or_default();
    assert_eq!(
        psd.split_whitespace().nth(1),
        Some("4"),
        "a.psd twice, b.psd, c d é.psd:\n{info}"
    );
    let mov = info
        .lines()
        .find(|l| l.starts_with(".mov"))
        .unwrap_or_default();
    assert_eq!(mov.split_whitespace().nth(4), Some("1"), "{info}");
    // The two versions of a.psd share all but a chunk or two: less to store than content.
    let store_line = info
        .lines()
        .find(|l| l.starts_with("Dits would store"))
        .unwrap();
    let ratio: f64 = store_line
        .split('(')
        .nth(1)
        .unwrap()
        .split('x')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ratio > 1.2, "{store_line}");
    assert_eq!(
        env.git_stdout(&dir, &["rev-parse", "main"]),
        main_before,
        "info changes nothing"
    );

    // A dirty work tree is refused, and nothing moves.
    fs::write(dir.join("README.md"), "# edited\n").unwrap();
    let out = env.dits_output(&dir, &["migrate", "import", "--everything"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr_of(&out).contains("uncommitted changes"),
        "{}",
        show(&out)
    );
    env.git(&dir, &["checkout", "--", "README.md"]);

    // An LFS object missing everywhere: refused by default, naming the file and the object.
    // The first a.psd: not in the work tree, so nothing makes LFS store it again.
    let pointer = env.git_stdout(&dir, &["cat-file", "blob", "main^1^1:a.psd"]);
    let oid = pointer
        .lines()
        .find_map(|l| l.strip_prefix("oid sha256:"))
        .unwrap()
        .to_owned();
    let object = dir.join(format!(
        ".git/lfs/objects/{}/{}/{oid}",
        &oid[..2],
        &oid[2..4]
    ));
    let saved = env.path("saved-object");
    fs::rename(&object, &saved).unwrap();
    let out = env.dits_output(&dir, &["migrate", "import", "--everything"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr_of(&out).contains(&oid) && stderr_of(&out).contains("a.psd"),
        "{}",
        show(&out)
    );
    assert_eq!(
        env.git_stdout(&dir, &["rev-parse", "main"]),
        main_before,
        "refs unchanged"
    );
    fs::rename(&saved, &object).unwrap();

    let out = env.dits(
        &dir,
        &["migrate", "import", "--everything", "--include", "*.mov"],
    );
    let said = stderr_of(&out);
    assert!(said.contains("verified 4 commit pair(s)"), "{said}");

    assert_eq!(
        env.git_stdout(&dir, &["rev-list", "--branches", "--tags", "--count"]),
        count
    );
    // Authors, committers, dates and messages, in the same order.
    assert_eq!(
        env.git_stdout(
            &dir,
            &["log", "--branches", "--tags", "--format=%an %ae %ad %cd %s"]
        ),
        meta
    );
    assert_eq!(
        env.git_stdout(&dir, &["rev-list", "--merges", "--branches", "--count"])
            .trim(),
        "1"
    );
    assert_eq!(
        env.git_stdout(&dir, &["cat-file", "-t", "v1"]).trim(),
        "tag"
    );
    assert_eq!(env.git_stdout(&dir, &["tag", "-l"]), "light\nv1\n");
    for path in ["a.psd", "art/b.psd", "c d é.psd", "raw.mov"] {
        let text = env.git_stdout(&dir, &["cat-file", "blob", &format!("HEAD:{path}")]);
        assert!(text.starts_with("dits-pointer v1\n"), "{path}: {text}");
    }
    let attrs = env.git_stdout(&dir, &["show", "HEAD:.gitattributes"]);
    assert!(
        attrs.contains("*.psd filter=dits diff=dits merge=dits -text"),
        "{attrs}"
    );
    assert!(attrs.contains("*.mov filter=dits"), "{attrs}");
    assert!(!attrs.contains("filter=lfs"), "{attrs}");
    // The first commit had no .mov: its attributes are the LFS ones, swapped.
    let first_attrs = env.git_stdout(&dir, &["show", "main~1~1:.gitattributes"]);
    assert!(!first_attrs.contains("*.mov"), "{first_attrs}");
    assert_eq!(contents(&env, &dir), before, "every version's content");
    env.assert_clean(&dir);
    assert_eq!(
        b3(&dir.join("raw.mov")),
        before[&("merge side".to_owned(), "raw.mov".to_owned())]
    );
    assert_eq!(
        env.git_stdout(
            &dir,
            &["rev-parse", "refs/dits-migrate/backup/refs/heads/main"]
        ),
        main_before
    );
    env.dits(&dir, &["migrate", "verify"]);

    // Run again (as after a kill): it starts from the originals and ends at the same commits.
    let main_after = env.git_stdout(&dir, &["rev-parse", "main"]);
    env.dits(
        &dir,
        &["migrate", "import", "--everything", "--include", "*.mov"],
    );
    assert_eq!(env.git_stdout(&dir, &["rev-parse", "main"]), main_after);

    // Work committed after a finished migration survives another run (it backs up the refs
    // as they are now, not the first originals).
    fs::write(dir.join("notes.txt"), "after the migration\n").unwrap();
    env.commit_all(&dir, "new work");
    env.dits(&dir, &["migrate", "import", "--everything"]);
    assert_eq!(
        env.git_stdout(&dir, &["log", "-1", "--format=%s"]),
        "new work\n"
    );

    // A damaged conversion is found by verify.
    let map = fs::read_to_string(dir.join(".git/dits-migrate/commit-map")).unwrap();
    let (old, _) = map.lines().next().unwrap().split_once(' ').unwrap();
    let lie = format!("{} {}\n", old, old);
    fs::write(dir.join(".git/dits-migrate/commit-map"), lie).unwrap();
    env.dits(&dir, &["migrate", "verify"]);
    let other = env.git_stdout(
        &dir,
        &["rev-parse", "refs/dits-migrate/backup/refs/heads/side"],
    );
    fs::write(
        dir.join(".git/dits-migrate/commit-map"),
        format!("{} {}\n", other.trim(), main_after.trim()),
    )
    .unwrap();
    let out = env.dits_output(&dir, &["migrate", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

#[test]
fn missing_lfs_objects_can_be_kept_as_pointers() {
    let env = Env::new();
    let dir = lfs_repo(&env);
    let pointer = env.git_stdout(&dir, &["cat-file", "blob", "main^1^1:a.psd"]);
    let oid = pointer
        .lines()
        .find_map(|l| l.strip_prefix("oid sha256:"))
        .unwrap()
        .to_owned();
    fs::remove_file(dir.join(format!(
        ".git/lfs/objects/{}/{}/{oid}",
        &oid[..2],
        &oid[2..4]
    )))
    .unwrap();
    let out = env.dits(
        &dir,
        &[
            "migrate",
            "import",
            "--everything",
            "--missing=keep-pointer",
        ],
    );
    assert!(
        stderr_of(&out).contains(&format!(
            "kept the LFS pointer of a.psd (object {oid} is not in .git/lfs)"
        )),
        "{}",
        show(&out)
    );
    assert_eq!(
        env.git_stdout(&dir, &["cat-file", "blob", "main^1^1:a.psd"]),
        pointer
    );
    let a = env.git_stdout(&dir, &["cat-file", "blob", "HEAD:a.psd"]);
    assert!(a.starts_with("dits-pointer v1\n"), "{a}");
}

/// `kill -9` in the middle of an import: the refs are the originals, and running the import
/// again finishes it, with every version intact.
#[test]
fn import_killed_midway_leaves_the_originals_and_resumes() {
    let env = Env::new();
    let dir = lfs_init(&env, "big", "*.exr");
    for round in 0..3u64 {
        for i in 0..12u64 {
            write_content(
                &dir.join(format!("shot{i:02}.exr")),
                7000 + round * 100 + i,
                2 << 20,
            );
        }
        env.commit_all(&dir, &format!("round {round}"));
    }
    let before = contents(&env, &dir);
    let main = env.git_stdout(&dir, &["rev-parse", "main"]);

    let mut child = env
        .cmd(&dir, "git")
        .args(["dits", "migrate", "import", "--everything"])
        .spawn()
        .unwrap();
    let log = dir.join(".git/dits-migrate/blobs");
    let start = std::time::Instant::now();
    while fs::metadata(&log).map(|m| m.len()).unwrap_or(0) < 200
        && start.elapsed() < std::time::Duration::from_secs(30)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // git runs git-dits as its child: kill -9 that one (not other tests' imports).
    let _ = std::process::Command::new("pkill")
        .args(["-9", "-P", &child.id().to_string()])
        .status();
    let _ = child.kill();
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after_kill = env.git_stdout(&dir, &["rev-parse", "main"]);
    let partial = fs::read_to_string(&log).unwrap_or_default().lines().count();
    eprintln!("killed after {partial} of 36 blobs");
    assert!(
        after_kill == main || partial == 36,
        "a killed import moved main before converting everything ({partial} of 36 blobs)"
    );

    env.dits(&dir, &["migrate", "import", "--everything"]);
    assert_ne!(env.git_stdout(&dir, &["rev-parse", "main"]), main);
    assert_eq!(contents(&env, &dir), before);
    env.assert_clean(&dir);
    env.dits(&dir, &["migrate", "verify"]);
    let text = env.git_stdout(&dir, &["cat-file", "blob", "HEAD:shot00.exr"]);
    assert!(text.starts_with("dits-pointer v1\n"), "{text}");
}

/// The way out: imported history exported back to Git LFS (`git lfs fsck` clean, every
/// version checked out by git lfs), imported again, and exported to plain blobs.
#[test]
fn imported_history_exports_back_to_lfs_and_to_plain_git() {
    let env = Env::new();
    let dir = lfs_repo(&env);
    let before = contents(&env, &dir);
    let count = env.git_stdout(&dir, &["rev-list", "--branches", "--tags", "--count"]);
    env.dits(
        &dir,
        &["migrate", "import", "--everything", "--include", "*.mov"],
    );
    // Keep only what LFS itself will need: its object store is emptied, so the export has to
    // write every object from Dits.
    fs::remove_dir_all(dir.join(".git/lfs/objects")).unwrap();

    let out = env.dits(&dir, &["migrate", "export", "--to", "lfs", "--everything"]);
    assert!(
        stderr_of(&out).contains("verified 4 commit pair(s)"),
        "{}",
        show(&out)
    );
    let attrs = env.git_stdout(&dir, &["show", "HEAD:.gitattributes"]);
    assert!(
        attrs.contains("*.psd filter=lfs diff=lfs merge=lfs -text"),
        "{attrs}"
    );
    assert!(!attrs.contains("dits"), "{attrs}");
    let a = env.git_stdout(&dir, &["cat-file", "blob", "HEAD:a.psd"]);
    assert!(
        a.starts_with("version https://git-lfs.github.com/spec/v1\n"),
        "{a}"
    );
    let fsck = env.git(&dir, &["lfs", "fsck"]);
    assert!(stdout_of(&fsck).contains("OK"), "{}", show(&fsck));
    assert_eq!(contents(&env, &dir), before, "git lfs gives every version");
    assert_eq!(
        env.git_stdout(&dir, &["rev-list", "--branches", "--tags", "--count"]),
        count
    );
    env.assert_clean(&dir);

    env.dits(
        &dir,
        &["migrate", "import", "--everything", "--include", "*.mov"],
    );
    env.dits(&dir, &["migrate", "export", "--to", "git", "--everything"]);
    let size = env.git_stdout(&dir, &["cat-file", "-s", "HEAD:a.psd"]);
    assert_eq!(size.trim(), (2u64 << 20).to_string(), "a plain blob again");
    let attrs = env.git_stdout(&dir, &["show", "HEAD:.gitattributes"]);
    assert!(!attrs.contains("filter="), "{attrs}");
    assert_eq!(
        contents(&env, &dir),
        before,
        "plain blobs give every version"
    );
    env.assert_clean(&dir);
    assert_eq!(
        b3(&dir.join("raw.mov")),
        before[&("merge side".to_owned(), "raw.mov".to_owned())]
    );
}
