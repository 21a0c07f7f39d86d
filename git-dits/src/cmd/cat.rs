//! `git dits cat REV:PATH`: the content of a tracked file at any revision, to stdout.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use dits_core::reader::stream_to;
use dits_core::transfer::ensure_local;

use crate::repo::Repo;
use crate::tracked::blob_pointer;

pub fn run(spec: &str) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let id = repo
        .repo
        .rev_parse_single(spec)
        .with_context(|| {
            format!("{spec}: no such object; hint: use REV:PATH, e.g. HEAD:video/intro.mp4")
        })?
        .detach();
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    match blob_pointer(&repo.repo, id)? {
        Some(pointer) => {
            let store = repo.open_store()?;
            if pointer.size > 0 {
                ensure_local(
                    &store,
                    &repo.open_sources(),
                    &pointer,
                    &dits_core::progress::Silent,
                )
                .with_context(|| format!("{spec} (file {})", pointer.id))?;
            }
            stream_to(&store, &pointer, &mut out)
                .with_context(|| format!("{spec} (file {})", pointer.id))?;
        }
        None => {
            let obj = repo.repo.find_object(id)?;
            out.write_all(&obj.data)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
