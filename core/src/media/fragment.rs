//! Movie fragments (`moof`): runs of samples whose tables live next to their data.

use super::boxes::open_box;
use super::bytes::{Child, Cursor};
use super::sample_table::Sample;
use super::MediaError;

/// Most samples the `trun`s of one `moof` may declare without per-sample records (records
/// bound a count by the box's bytes; without them only this budget does).
pub const MAX_IMPLICIT_SAMPLES: u32 = 1 << 20;

/// A track's fragment defaults (`mvex/trex`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackExtends {
    pub track_id: u32,
    pub default_sample_duration: u32,
    pub default_sample_size: u32,
    pub default_sample_flags: u32,
}

/// The samples of one `trun`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentRun {
    pub track_id: u32,
    pub samples: Vec<Sample>,
}

pub(crate) fn parse_trex(mut c: Cursor<'_>) -> Result<TrackExtends, MediaError> {
    c.full_header()?;
    let track_id = c.u32()?;
    c.skip(4)?; // default_sample_description_index
    Ok(TrackExtends {
        track_id,
        default_sample_duration: c.u32()?,
        default_sample_size: c.u32()?,
        default_sample_flags: c.u32()?,
    })
}

/// A sample is a sync sample unless `sample_is_non_sync_sample` is set or it depends on others.
fn is_sync(flags: u32) -> bool {
    let depends_on = (flags >> 24) & 3;
    flags & 0x0001_0000 == 0 && depends_on != 1
}

/// Parses a whole `moof` box (header included) that starts at `moof_offset` in a file of
/// `file_len` bytes, with the `trex` defaults of its movie. Every sample must lie in the file.
pub fn parse_moof(
    bytes: &[u8],
    moof_offset: u64,
    file_len: u64,
    track_extends: &[TrackExtends],
) -> Result<Vec<FragmentRun>, MediaError> {
    let moof = open_box(bytes, moof_offset, b"moof")?;
    let mut runs = Vec::new();
    // Without an explicit base, a traf's data follows the previous traf's (the first: the moof).
    let mut prev_end = moof_offset;
    let mut ctx = Context {
        moof_offset,
        file_len,
        track_extends,
        implicit_left: MAX_IMPLICIT_SAMPLES,
    };
    for child in moof.children() {
        let child = child?;
        if child.kind == *b"traf" {
            prev_end = parse_traf(&child, prev_end, &mut ctx, &mut runs)?;
        }
    }
    Ok(runs)
}

struct Context<'a> {
    moof_offset: u64,
    file_len: u64,
    track_extends: &'a [TrackExtends],
    implicit_left: u32,
}

struct Defaults {
    duration: Option<u32>,
    size: Option<u32>,
    flags: Option<u32>,
}

fn parse_traf(
    traf: &Child<'_>,
    prev_end: u64,
    ctx: &mut Context<'_>,
    runs: &mut Vec<FragmentRun>,
) -> Result<u64, MediaError> {
    let mut c = traf.cursor().children().find(b"tfhd")?.cursor();
    let (_, flags) = c.full_header()?;
    let track_id = c.u32()?;
    let base_data_offset = if flags & 0x1 != 0 {
        Some(c.u64()?)
    } else {
        None
    };
    if flags & 0x2 != 0 {
        c.u32()?; // sample_description_index
    }
    let trex = ctx.track_extends.iter().find(|t| t.track_id == track_id);
    let mut field = |bit: u32, from_trex: Option<u32>| -> Result<Option<u32>, MediaError> {
        Ok(if flags & bit != 0 {
            Some(c.u32()?)
        } else {
            from_trex
        })
    };
    let defaults = Defaults {
        duration: field(0x8, trex.map(|t| t.default_sample_duration))?,
        size: field(0x10, trex.map(|t| t.default_sample_size))?,
        flags: field(0x20, trex.map(|t| t.default_sample_flags))?,
    };
    let base = match base_data_offset {
        Some(b) => b,
        None if flags & 0x2_0000 != 0 => ctx.moof_offset,
        None => prev_end,
    };

    let mut time = match traf.cursor().children().find_opt(b"tfdt")? {
        Some(t) => {
            let mut c = t.cursor();
            let (v, _) = c.full_header()?;
            c.u32_or_u64(v)?
        }
        None => 0,
    };
    let mut next = base;
    for child in traf.cursor().children() {
        let child = child?;
        if child.kind == *b"trun" {
            let run;
            (run, next, time) =
                parse_trun(child.cursor(), track_id, base, next, time, &defaults, ctx)?;
            runs.push(run);
        }
    }
    Ok(next)
}

fn parse_trun(
    mut c: Cursor<'_>,
    track_id: u32,
    base: u64,
    next: u64,
    mut time: u64,
    d: &Defaults,
    ctx: &mut Context<'_>,
) -> Result<(FragmentRun, u64, u64), MediaError> {
    let (_, flags) = c.full_header()?;
    let count = c.u32()?;
    let mut offset = if flags & 0x1 != 0 {
        let rel = i64::from(c.u32()? as i32);
        base.checked_add_signed(rel)
            .ok_or_else(|| c.invalid("data offset before the start of the file"))?
    } else {
        next
    };
    let first_flags = if flags & 0x4 != 0 {
        Some(c.u32()?)
    } else {
        None
    };
    let per_sample = [0x100, 0x200, 0x400, 0x800].map(|bit| flags & bit != 0);
    let record = 4 * per_sample.iter().filter(|&&b| b).count();
    if record == 0 {
        ctx.implicit_left = ctx
            .implicit_left
            .checked_sub(count)
            .ok_or(MediaError::TooLarge {
                kind: c.kind,
                offset: c.base,
                size: u64::from(count),
                limit: u64::from(MAX_IMPLICIT_SAMPLES),
            })?;
    }
    let table = c.table(count, record)?;
    let mut t = Cursor::new(table, c.kind, c.base);
    let mut samples = Vec::with_capacity(count as usize);
    for i in 0..count {
        let mut opt = |present: bool, default: Option<u32>| -> Result<Option<u32>, MediaError> {
            Ok(if present { Some(t.u32()?) } else { default })
        };
        let duration = opt(per_sample[0], d.duration)?.unwrap_or(0);
        let size = opt(per_sample[1], d.size)?
            .ok_or_else(|| c.invalid("no sample size in trun, tfhd or trex"))?;
        let default_flags = if i == 0 {
            first_flags.or(d.flags)
        } else {
            d.flags
        };
        let sample_flags = opt(per_sample[2], default_flags)?.unwrap_or(0);
        if per_sample[3] {
            t.u32()?; // composition time offset
        }
        let end = offset
            .checked_add(u64::from(size))
            .filter(|&e| e <= ctx.file_len)
            .ok_or(MediaError::Inconsistent(
                "a fragment's sample lies past the end of the file",
            ))?;
        samples.push(Sample {
            offset,
            size,
            sync: is_sync(sample_flags),
            decode_time: time,
        });
        time = time.saturating_add(u64::from(duration));
        offset = end;
    }
    Ok((FragmentRun { track_id, samples }, offset, time))
}
