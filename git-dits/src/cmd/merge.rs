//! Merge driver: media is merged as whole files. One side's change wins when only one side
//! changed; a change on both sides is a conflict that keeps ours and says how to pick.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

pub fn run(base: &Path, ours: &Path, theirs: &Path, path: Option<&str>) -> Result<ExitCode> {
    let read = |p: &Path| fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (o, a, b) = (read(base)?, read(ours)?, read(theirs)?);
    if a == b || o == b {
        return Ok(ExitCode::SUCCESS);
    }
    if o == a {
        fs::write(ours, &b).with_context(|| format!("writing {}", ours.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let path = path.unwrap_or("the file");
    eprintln!(
        "CONFLICT (dits): {path} changed on both sides; kept ours.\n  hint: take theirs with `git checkout --theirs -- {path} && git add {path}`, or keep ours with `git add {path}`"
    );
    Ok(ExitCode::from(1))
}
