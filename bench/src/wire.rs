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

const SNMP: &str = "/proc/net/snmp";

/// Packets this network namespace has sent, by protocol, since boot (`/proc/net/snmp`): which
/// transport a command really used shows in which of the two grew.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpCounters {
    /// `Udp: OutDatagrams` (QUIC; one per `sendmsg`, so a GSO batch counts once).
    pub udp_out_datagrams: u64,
    /// `Tcp: OutSegs` (TLS over TCP; segments, acks included).
    pub tcp_out_segs: u64,
}

impl IpCounters {
    pub fn read() -> Result<IpCounters> {
        let text = fs::read_to_string(SNMP).with_context(|| format!("reading {SNMP}"))?;
        Self::parse(&text).with_context(|| format!("no Udp OutDatagrams or Tcp OutSegs in {SNMP}"))
    }

    /// Each protocol is two lines, `Proto: names...` then `Proto: values...`.
    fn parse(text: &str) -> Option<IpCounters> {
        let field = |proto: &str, name: &str| -> Option<u64> {
            let mut lines = text.lines().filter(|l| l.starts_with(proto));
            let names = lines.next()?;
            let values = lines.next()?;
            let at = names.split_whitespace().position(|n| n == name)?;
            values.split_whitespace().nth(at)?.parse().ok()
        };
        Some(IpCounters {
            udp_out_datagrams: field("Udp:", "OutDatagrams")?,
            tcp_out_segs: field("Tcp:", "OutSegs")?,
        })
    }

    /// Growth from `before` to `self`.
    pub fn since(&self, before: &IpCounters) -> IpCounters {
        IpCounters {
            udp_out_datagrams: self
                .udp_out_datagrams
                .saturating_sub(before.udp_out_datagrams),
            tcp_out_segs: self.tcp_out_segs.saturating_sub(before.tcp_out_segs),
        }
    }
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
    fn snmp_counters_parse() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm ActiveOpens OutSegs\nTcp: 1 25 3677\n\
                    Udp: InDatagrams NoPorts OutDatagrams\nUdp: 2709 115 2825\n\
                    UdpLite: InDatagrams OutDatagrams\nUdpLite: 0 0\n";
        let c = IpCounters::parse(text);
        assert_eq!(
            c,
            Some(IpCounters {
                udp_out_datagrams: 2825,
                tcp_out_segs: 3677
            })
        );
        assert!(IpCounters::read().is_ok());
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
