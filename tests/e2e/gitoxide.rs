//! gitoxide as the filter's client: gix-filter sends no `blob=` key and runs one filter process
//! per pipeline, so several may work on the same store at once.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::io::Read;
use std::path::Path;

use crate::support::*;
use gix::filter::plumbing::driver::apply::{Delay, MaybeDelayed};
use gix::filter::plumbing::pipeline::convert::{to_worktree, ToGitOutcome, ToWorktreeOutcome};

fn clean_with_gix(repo: &gix::Repository, path: &str, data: &[u8]) -> Vec<u8> {
    let (mut pipeline, index) = repo.filter_pipeline(None).unwrap();
    let mut out = Vec::new();
    match pipeline
        .convert_to_git(data, Path::new(path), &index)
        .unwrap()
    {
        ToGitOutcome::Process(mut r) => r.read_to_end(&mut out).map(drop).unwrap(),
        ToGitOutcome::Buffer(b) => out.extend_from_slice(b),
        ToGitOutcome::Unchanged(_) => panic!("{path}: the dits filter was not applied"),
    }
    out
}

fn smudge_with_gix(repo: &gix::Repository, path: &str, pointer: &[u8]) -> Vec<u8> {
    let (mut pipeline, _index) = repo.filter_pipeline(None).unwrap();
    let opts = to_worktree::Options {
        can_delay: Delay::Forbid,
        ..Default::default()
    };
    let mut out = Vec::new();
    match pipeline
        .convert_to_worktree(pointer, path.into(), opts)
        .unwrap()
    {
        ToWorktreeOutcome::Process(MaybeDelayed::Immediate(mut r)) => {
            r.read_to_end(&mut out).unwrap();
        }
        ToWorktreeOutcome::Buffer(b) => out.extend_from_slice(b),
        _ => panic!("{path}: unexpected outcome"),
    }
    out
}

#[test]
fn gix_cleans_and_smudges_through_dits_filter_concurrently() {
    let env = Env::new();
    let repo_dir = env.repo("r", &["*.bin"]);
    // gix spawns filters with this test process's environment, whose PATH lacks the Dits
    // binaries; give the repository an absolute filter command instead.
    env.git(
        &repo_dir,
        &[
            "config",
            "filter.dits.process",
            &format!("{}/dits-filter process", env.bin.display()),
        ],
    );
    let repo = gix::open(&repo_dir).unwrap();
    let inputs: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| {
            (
                format!("clip{i}.bin"),
                content(300 + i, 2_000_000 + i as usize),
            )
        })
        .collect();
    // Three pipelines, three filter processes, one store, at the same time.
    let pointers: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|(name, data)| {
                let dir = &repo_dir;
                s.spawn(move || clean_with_gix(&gix::open(dir).unwrap(), name, data))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((name, data), pointer) in inputs.iter().zip(&pointers) {
        let text = String::from_utf8(pointer.clone()).unwrap();
        assert!(
            text.contains(&format!("blake3 {}\n", b3_bytes(data))),
            "{name}: {text}"
        );
        assert_eq!(&smudge_with_gix(&repo, name, pointer), data, "{name}");
    }
}

/// gitoxide checks a tree out the way `gix clone` and `gix worktree add` do: the filter
/// processes exit at the end of the checkout and the index is written only afterwards, so
/// when Dits writes a large file there is no index to record its stat in (issue 20). The next
/// Dits command records it; `git status` is clean after that, without `git add`.
#[test]
fn gix_checkout_of_a_large_file_ends_clean() {
    use std::sync::atomic::AtomicBool;
    let env = Env::new();
    let src = env.repo("src", &["*.bin"]);
    write_content(&src.join("big.bin"), 2201, 68 << 20);
    write_content(&src.join("small.bin"), 2202, 1 << 20);
    env.commit_all(&src, "media");
    let (big, small) = (b3(&src.join("big.bin")), b3(&src.join("small.bin")));

    let dest = env.path("dest");
    env.git(
        env.tmp.path(),
        &[
            "clone",
            "-q",
            "--no-checkout",
            src.to_str().unwrap(),
            "dest",
        ],
    );
    env.dits(&dest, &["install", "-q"]);
    env.git(
        &dest,
        &[
            "config",
            "filter.dits.process",
            &format!("{}/dits-filter process", env.bin.display()),
        ],
    );
    let _ = std::fs::remove_file(dest.join(".git/index"));

    let repo = gix::open(&dest).unwrap();
    let tree = repo.head_commit().unwrap().tree_id().unwrap();
    let mut index = repo.index_from_tree(&tree).unwrap();
    let mut opts = repo
        .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
        .unwrap();
    opts.destination_is_initially_empty = true;
    let outcome = gix::worktree::state::checkout(
        &mut index,
        repo.workdir().unwrap(),
        repo.objects.clone().into_arc().unwrap(),
        &gix::progress::Discard,
        &gix::progress::Discard,
        &AtomicBool::new(false),
        opts,
    )
    .unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(outcome.collisions.is_empty(), "{:?}", outcome.collisions);
    // As gix does: the index is written after the filters have exited.
    index.write(Default::default()).unwrap();

    assert_eq!(b3(&dest.join("big.bin")), big, "big.bin byte-exact");
    assert_eq!(b3(&dest.join("small.bin")), small, "small.bin byte-exact");
    let status = env.dits_stdout(&dest, &["status"]);
    assert!(
        status.contains("Index updated:    1 file(s)"),
        "git dits status records the waiting file:\n{status}"
    );
    env.assert_clean(&dest);
    // And git can move on from it.
    env.git(&dest, &["checkout", "-q", "-b", "other"]);
    env.assert_clean(&dest);
}

/// gix spawns a filter it may not need and closes the pipe before the handshake: the filter
/// exits quietly (issue 20).
#[test]
fn filter_closed_before_the_handshake_is_silent() {
    let env = Env::new();
    let dir = env.repo("r", &["*.bin"]);
    let out = env
        .cmd(&dir, env.bin.join("dits-filter"))
        .arg("process")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        show(&out)
    );
}
