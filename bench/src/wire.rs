//! What a networked command cost beyond time and memory: the bytes it moved over loopback, and
//! the disk a directory tree takes.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

const LO_TX: &str = "/sys/class/net/lo/statistics/tx_bytes";

/// Bytes transmitted on the loopback interface since boot. Every loopback packet is sent once
/// (and received once), so a delta counts both directions of every connection, headers
/// included, and everything else on loopback at the time.
pub fn lo_tx_bytes() -> Result<u64> {
    let s = fs::read_to_string(LO_TX).with_context(|| format!("reading {LO_TX}"))?;
    s.trim()
        .parse()
        .with_context(|| format!("parsing {LO_TX}: {s:?}"))
}

/// Disk allocated to everything under `dir`, as `du -s --block-size=1` counts it: `st_blocks`
/// × 512 of each file, directory and symlink, a hard-linked file once.
pub fn allocated_bytes(dir: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    allocated(dir, &mut seen)
}

fn allocated(path: &Path, seen: &mut HashSet<(u64, u64)>) -> Result<u64> {
    let meta = match path.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
    };
    if !seen.insert((meta.dev(), meta.ino())) {
        return Ok(0);
    }
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        for entry in fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
            let entry = entry.with_context(|| format!("listing {}", path.display()))?;
            total += allocated(&entry.path(), seen)?;
        }
    }
    Ok(total)
}

/// Allocated disk of a work tree: everything under `repo` except `.git`, and `.git` itself.
pub fn clone_disk(repo: &Path) -> Result<(u64, u64)> {
    let mut seen = HashSet::new();
    let git = allocated(&repo.join(".git"), &mut seen)?;
    // `.git` is in `seen` now, so this walk counts the rest.
    let rest = allocated(repo, &mut seen)?;
    Ok((git + rest, git))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_counter_is_readable() -> Result<()> {
        let a = lo_tx_bytes()?;
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut c = std::net::TcpStream::connect(l.local_addr()?)?;
        let (mut s, _) = l.accept()?;
        io::Write::write_all(&mut c, &[7u8; 100_000])?;
        drop(c);
        let mut got = Vec::new();
        io::Read::read_to_end(&mut s, &mut got)?;
        assert_eq!(got.len(), 100_000);
        assert!(lo_tx_bytes()? - a >= 100_000);
        Ok(())
    }

    #[test]
    fn hard_links_count_once() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let repo = dir.path().join("r");
        fs::create_dir_all(repo.join(".git"))?;
        fs::write(repo.join(".git/obj"), vec![1u8; 1 << 20])?;
        fs::hard_link(repo.join(".git/obj"), repo.join("file"))?;
        let (all, git) = clone_disk(&repo)?;
        assert!(git >= 1 << 20, "{git}");
        assert!(all < 2 << 20, "{all}");
        assert_eq!(allocated_bytes(&repo)?, all);
        Ok(())
    }
}
