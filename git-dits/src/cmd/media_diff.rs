//! `git dits diff A B [-- PATH...]`: what changed in tracked files between two revisions, in
//! the terms of the media: size, duration, tracks, the time ranges whose samples are new, and
//! how many bytes of the new version are new versus reused from the old one.
//!
//! Bytes are counted over the new version's pieces: a piece whose chunk the old version also
//! uses is reused. A sample is "changed" when any of its bytes lie in a new chunk; its time
//! comes from the new version's sample tables, read (verified) out of the local store.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bstr::ByteSlice;
use dits_core::media::layout::samples;
use dits_core::media::{MediaInfo, TrackInfo};
use dits_core::reader::ManifestReadAt;
use dits_core::store::{ChunkSource, DiskStore};
use dits_core::{ChunkId, Manifest, Pointer};

use super::human;
use crate::repo::Repo;
use crate::tracked;

/// Time ranges listed per track before the rest are summed up.
const MAX_RANGES: usize = 12;

pub fn run(old_rev: &str, new_rev: &str, paths: &[String]) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let store = repo.open_store()?;
    let by_path = |rev: &str| -> Result<BTreeMap<String, Pointer>> {
        Ok(tracked::in_rev(&repo, rev)?
            .into_iter()
            .map(|f| (f.path.to_str_lossy().into_owned(), f.pointer))
            .collect())
    };
    let (old, new) = (by_path(old_rev)?, by_path(new_rev)?);
    let wanted = |p: &str| {
        paths.is_empty()
            || paths.iter().any(|w| {
                let w = w.trim_end_matches('/');
                p == w || p.strip_prefix(w).is_some_and(|r| r.starts_with('/'))
            })
    };
    let mut all: Vec<&String> = old.keys().chain(new.keys()).filter(|p| wanted(p)).collect();
    all.sort();
    all.dedup();
    let mut out = io::stdout().lock();
    for path in all {
        let (a, b) = (old.get(path), new.get(path));
        if a == b {
            continue;
        }
        writeln!(out, "{path}")?;
        match (a, b) {
            (None, Some(b)) => writeln!(out, "  added: {} ({} bytes)", human(b.size), b.size)?,
            (Some(a), None) => writeln!(out, "  removed: {} ({} bytes)", human(a.size), a.size)?,
            (Some(a), Some(b)) => {
                let manifest = |p: &Pointer, rev: &str| {
                    store.read_manifest(&p.id).with_context(|| {
                        format!(
                            "{path} at {rev}: the manifest of {} is not in the local store; hint: `git dits fetch {rev}` first",
                            p.id
                        )
                    })
                };
                compare(
                    &mut out,
                    &store,
                    &manifest(a, old_rev)?,
                    &manifest(b, new_rev)?,
                )?;
            }
            (None, None) => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn compare(out: &mut impl Write, store: &DiskStore, a: &Manifest, b: &Manifest) -> Result<()> {
    writeln!(
        out,
        "  size: {} -> {} ({} -> {} bytes)",
        human(a.size),
        human(b.size),
        a.size,
        b.size
    )?;
    if let (Some(ma), Some(mb)) = (&a.media, &b.media) {
        describe_changes(out, ma, mb)?;
    }
    let old: HashSet<ChunkId> = a.chunks.iter().map(|c| c.id).collect();
    let (mut new_bytes, mut reused) = (0u64, 0u64);
    for s in b.spans() {
        if old.contains(&s.chunk.id) {
            reused += u64::from(s.len);
        } else {
            new_bytes += u64::from(s.len);
        }
    }
    writeln!(out, "  bytes: {new_bytes} B new, {reused} B reused")?;
    if b.media.is_some() {
        changed_times(out, store, b, &old)?;
    }
    Ok(())
}

fn describe_changes(out: &mut impl Write, a: &MediaInfo, b: &MediaInfo) -> io::Result<()> {
    let secs = |m: &MediaInfo| m.duration_ms as f64 / 1000.0;
    if a.duration_ms == b.duration_ms {
        writeln!(out, "  duration: {:.3} s (unchanged)", secs(b))?;
    } else {
        writeln!(out, "  duration: {:.3} s -> {:.3} s", secs(a), secs(b))?;
    }
    if a.brand != b.brand {
        writeln!(out, "  brand: {} -> {}", a.brand, b.brand)?;
    }
    let find = |m: &'_ MediaInfo, id: u32| m.tracks.iter().find(|t| t.id == id).cloned();
    let mut ids: Vec<u32> = a.tracks.iter().chain(&b.tracks).map(|t| t.id).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        match (find(a, id), find(b, id)) {
            (Some(x), Some(y)) if x == y => {
                writeln!(out, "  track {id}: {} (unchanged)", y.describe())?
            }
            (Some(x), Some(y)) => {
                writeln!(out, "  track {id}: {} -> {}", x.describe(), y.describe())?
            }
            (None, Some(y)) => writeln!(out, "  track {id}: added: {}", y.describe())?,
            (Some(x), None) => writeln!(out, "  track {id}: removed: {}", x.describe())?,
            (None, None) => {}
        }
    }
    Ok(())
}

/// Per track of `b`: the time ranges whose samples touch chunks `old` lacks.
fn changed_times(
    out: &mut impl Write,
    store: &DiskStore,
    b: &Manifest,
    old: &HashSet<ChunkId>,
) -> Result<()> {
    let mut reader = ManifestReadAt::new(store, b);
    let parsed = match samples(|o, buf| reader.read_at(o, buf), b.size) {
        Ok(p) => p,
        Err(e) => {
            writeln!(
                out,
                "  changed: unknown (cannot read the sample tables: {e})"
            )?;
            return Ok(());
        }
    };
    // File ranges that come from new chunks, in order.
    let mut fresh: Vec<(u64, u64)> = Vec::new();
    let mut at = 0u64;
    for s in b.spans() {
        let end = at + u64::from(s.len);
        if !old.contains(&s.chunk.id) {
            match fresh.last_mut() {
                Some(r) if r.1 == at => r.1 = end,
                _ => fresh.push((at, end)),
            }
        }
        at = end;
    }
    let touches_fresh = |offset: u64, size: u64| {
        let i = fresh.partition_point(|r| r.1 <= offset);
        fresh.get(i).is_some_and(|r| r.0 < offset + size)
    };
    for (i, track) in parsed.info.tracks.iter().enumerate() {
        let times: Vec<(u64, bool)> = parsed
            .samples
            .iter()
            .filter(|p| p.stream == i + 1)
            .map(|p| {
                let s = &p.sample;
                (s.decode_time, touches_fresh(s.offset, u64::from(s.size)))
            })
            .collect();
        let ranges = ranges(&times, track);
        let shown: Vec<String> = ranges
            .iter()
            .take(MAX_RANGES)
            .map(|(a, b)| format!("{a:.3}-{b:.3} s"))
            .collect();
        let more = match ranges.len().saturating_sub(MAX_RANGES) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let list = if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        };
        writeln!(out, "  track {} changed: {list}{more}", track.id)?;
    }
    Ok(())
}

/// Merges runs of changed samples into `(start, end)` seconds; a run ends where the next
/// unchanged sample starts (or at the track's end).
fn ranges(times: &[(u64, bool)], track: &TrackInfo) -> Vec<(f64, f64)> {
    let secs = |t: u64| {
        if track.timescale == 0 {
            0.0
        } else {
            t as f64 / f64::from(track.timescale)
        }
    };
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut open: Option<u64> = None;
    for &(t, changed) in times {
        match (changed, open) {
            (true, None) => open = Some(t),
            (false, Some(start)) => {
                out.push((secs(start), secs(t)));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        out.push((secs(start), track.seconds().max(secs(start))));
    }
    out
}
