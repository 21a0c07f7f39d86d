//! The flags every mode of `dits-bench` takes, and the loop that reads flags for all of them.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// `--size-mib`, `--dir`, `--out`, `--git`, `--dits-bin`.
pub struct Common {
    pub size_mib: u64,
    pub dir: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub git: PathBuf,
    pub dits_bin: Option<PathBuf>,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            size_mib: 1024,
            dir: None,
            out: None,
            git: PathBuf::from("/usr/local/bin/git"),
            dits_bin: None,
        }
    }
}

impl Common {
    /// Where the Dits programs are: `--dits-bin`, else `<workspace>/target/release`.
    pub fn dits_bin_dir(&self, workspace: &std::path::Path) -> PathBuf {
        self.dits_bin
            .clone()
            .unwrap_or_else(|| workspace.join("target/release"))
    }
}

/// A way to take the value of the flag at hand.
pub type Value<'a> = dyn FnMut() -> Result<OsString> + 'a;

/// Reads `args`: the common flags into `common`, any other flag to `extra`, which says whether
/// it knew it. `-h`/`--help` prints `usage` and exits.
pub fn parse(
    args: impl Iterator<Item = OsString>,
    usage: &str,
    common: &mut Common,
    mut extra: impl FnMut(&str, &mut Value) -> Result<bool>,
) -> Result<()> {
    let mut it = args;
    while let Some(flag) = it.next() {
        let flag = flag.to_string_lossy().into_owned();
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{usage}"))
        };
        match flag.as_str() {
            "--size-mib" => {
                common.size_mib = value()?.to_string_lossy().parse().context("--size-mib")?;
            }
            "--dir" => common.dir = Some(value()?.into()),
            "--out" => common.out = Some(value()?.into()),
            "--git" => common.git = value()?.into(),
            "--dits-bin" => common.dits_bin = Some(value()?.into()),
            "-h" | "--help" => {
                eprintln!("{usage}");
                std::process::exit(0);
            }
            other => {
                if !extra(other, &mut value)? {
                    bail!("unknown argument {other:?}\n{usage}");
                }
            }
        }
    }
    Ok(())
}
