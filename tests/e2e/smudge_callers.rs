//! Git commands that smudge content without writing the work tree (`git archive`,
//! `cat-file --filters`, `checkout-index --prefix`) get the content of large files, not the
//! pointer the filter leaves for a checkout to replace (issue 21); skip-smudge gives pointers.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::fs;
use std::path::Path;

use crate::support::*;

/// Above `dits.smudge.inlineLimit` (64 MiB): the size a checkout defers.
const BIG: u64 = 70 << 20;

fn repo_with_big_and_small(env: &Env) -> (std::path::PathBuf, String, String) {
    let dir = env.repo("r", &["*.bin"]);
    write_content(&dir.join("big.bin"), 2101, BIG);
    write_content(&dir.join("small.bin"), 2102, 1 << 20);
    env.commit_all(&dir, "media");
    let (big, small) = (b3(&dir.join("big.bin")), b3(&dir.join("small.bin")));
    (dir, big, small)
}

fn untar(env: &Env, dir: &Path, tar: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    env.run_ok(env.cmd(dir, "tar").arg("-xf").arg(tar).arg("-C").arg(into));
}

#[test]
fn archive_and_cat_file_filters_give_large_files_content() {
    let env = Env::new();
    let (dir, big, small) = repo_with_big_and_small(&env);

    let tar = env.path("out.tar");
    env.git(&dir, &["archive", "-o", tar.to_str().unwrap(), "HEAD"]);
    let x = env.path("x");
    untar(&env, &dir, &tar, &x);
    assert_eq!(b3(&x.join("big.bin")), big, "git archive: big.bin");
    assert_eq!(b3(&x.join("small.bin")), small, "git archive: small.bin");

    let out = env.git(&dir, &["cat-file", "--filters", "HEAD:big.bin"]);
    assert_eq!(out.stdout.len() as u64, BIG, "cat-file --filters: size");
    assert_eq!(b3_bytes(&out.stdout), big, "cat-file --filters: content");
    env.assert_clean(&dir);
}

#[test]
fn checkout_index_prefix_writes_under_the_prefix_only() {
    let env = Env::new();
    let (dir, big, _) = repo_with_big_and_small(&env);
    // The source work tree holds a pointer (a skip-smudge checkout of that file).
    fs::remove_file(dir.join("big.bin")).unwrap();
    env.run_ok(
        env.cmd(&dir, "git")
            .env("GIT_DITS_SKIP_SMUDGE", "1")
            .args(["checkout", "--", "big.bin"]),
    );
    let pointer = fs::read(dir.join("big.bin")).unwrap();
    assert!(pointer.starts_with(b"dits-pointer v1"), "setup: a pointer");

    env.git(&dir, &["checkout-index", "--prefix=export/", "big.bin"]);
    assert_eq!(b3(&dir.join("export/big.bin")), big, "under the prefix");
    assert_eq!(
        fs::read(dir.join("big.bin")).unwrap(),
        pointer,
        "the source work tree's file is left alone"
    );
}

#[test]
fn skip_smudge_gives_pointers_to_every_caller() {
    let env = Env::new();
    let (dir, big, _) = repo_with_big_and_small(&env);
    let pointer = env.git(&dir, &["cat-file", "blob", "HEAD:big.bin"]).stdout;
    let skip = |args: &[&str]| {
        env.run_ok(
            env.cmd(&dir, "git")
                .env("GIT_DITS_SKIP_SMUDGE", "1")
                .args(args),
        )
    };
    let out = skip(&["cat-file", "--filters", "HEAD:big.bin"]);
    assert_eq!(out.stdout, pointer, "cat-file --filters under skip-smudge");

    let tar = env.path("skip.tar");
    skip(&["archive", "-o", tar.to_str().unwrap(), "HEAD"]);
    let x = env.path("xs");
    untar(&env, &dir, &tar, &x);
    assert_eq!(fs::read(x.join("big.bin")).unwrap(), pointer, "archive");
    // And the same command without the setting gives content again.
    let out = env.git(&dir, &["cat-file", "--filters", "HEAD:big.bin"]);
    assert_eq!(b3_bytes(&out.stdout), big);
}
