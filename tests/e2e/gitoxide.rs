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
