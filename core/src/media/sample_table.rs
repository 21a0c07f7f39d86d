//! A track's sample table (`stbl`): where each sample lies, how big it is, when it decodes, and
//! whether it is a sync sample (a keyframe).

use super::bytes::{Child, Cursor};
use super::{FourCc, MediaError};

/// One sample (a video frame, an audio packet) as stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Absolute file offset of the first byte.
    pub offset: u64,
    pub size: u32,
    /// A random-access point: decoding can start here.
    pub sync: bool,
    /// In the track's timescale, from the start of the track (or of the fragment's `tfdt`).
    pub decode_time: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Sizes {
    Constant { size: u32, count: u32 },
    Each(Vec<u32>),
}

impl Sizes {
    fn count(&self) -> u32 {
        match self {
            Sizes::Constant { count, .. } => *count,
            Sizes::Each(v) => u32::try_from(v.len()).expect("read from a u32 count"),
        }
    }
    fn get(&self, i: u32) -> u32 {
        match self {
            Sizes::Constant { size, .. } => *size,
            Sizes::Each(v) => v[i as usize],
        }
    }
    /// Bytes of `n` samples from sample `first` on.
    fn sum(&self, first: u32, n: u32) -> u64 {
        match self {
            Sizes::Constant { size, .. } => u64::from(*size) * u64::from(n),
            Sizes::Each(v) => v[first as usize..(first + n) as usize]
                .iter()
                .map(|&s| u64::from(s))
                .sum(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ChunkRun {
    /// 1-based index of the first chunk with this many samples.
    first_chunk: u32,
    samples_per_chunk: u32,
}

/// The parsed, validated tables of one track. Memory is proportional to the table bytes in
/// `moov`, never to a count field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleTable {
    sizes: Sizes,
    chunk_offsets: Vec<u64>,
    chunk_runs: Vec<ChunkRun>,
    /// `(sample_count, sample_delta)` runs.
    durations: Vec<(u32, u32)>,
    /// 1-based sync sample numbers; `None` when `stss` is absent (every sample is sync).
    sync: Option<Vec<u32>>,
}

fn u32s(table: &[u8]) -> impl Iterator<Item = u32> + '_ {
    table
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
}

fn parse_stsz(mut c: Cursor<'_>) -> Result<Sizes, MediaError> {
    c.full_header()?;
    let size = c.u32()?;
    let count = c.u32()?;
    if size != 0 {
        return Ok(Sizes::Constant { size, count });
    }
    Ok(Sizes::Each(u32s(c.table(count, 4)?).collect()))
}

fn parse_stz2(mut c: Cursor<'_>) -> Result<Sizes, MediaError> {
    c.full_header()?;
    c.skip(3)?;
    let field = c.u8()?;
    let count = c.u32()?;
    let n = count as usize;
    let sizes = match field {
        4 => {
            let t = c.table(count.div_ceil(2), 1)?;
            (0..n)
                .map(|i| u32::from((t[i / 2] >> (4 * (1 - i % 2))) & 0xf))
                .collect()
        }
        8 => c.table(count, 1)?.iter().map(|&b| u32::from(b)).collect(),
        16 => c
            .table(count, 2)?
            .chunks_exact(2)
            .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
            .collect(),
        _ => return Err(c.invalid("stz2 field size is not 4, 8 or 16")),
    };
    Ok(Sizes::Each(sizes))
}

fn parse_offsets(mut c: Cursor<'_>, wide: bool) -> Result<Vec<u64>, MediaError> {
    c.full_header()?;
    let count = c.u32()?;
    Ok(if wide {
        c.table(count, 8)?
            .chunks_exact(8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
            .collect()
    } else {
        u32s(c.table(count, 4)?).map(u64::from).collect()
    })
}

fn parse_stsc(mut c: Cursor<'_>) -> Result<Vec<ChunkRun>, MediaError> {
    c.full_header()?;
    let count = c.u32()?;
    let t = c.table(count, 12)?;
    let runs: Vec<ChunkRun> = t
        .chunks_exact(12)
        .map(|r| {
            let mut w = u32s(r);
            ChunkRun {
                first_chunk: w.next().expect("3 words"),
                samples_per_chunk: w.next().expect("3 words"),
            }
        })
        .collect();
    if runs.first().is_some_and(|r| r.first_chunk != 1)
        || runs
            .windows(2)
            .any(|w| w[0].first_chunk >= w[1].first_chunk)
    {
        return Err(c.invalid("stsc runs must start at chunk 1 and increase"));
    }
    Ok(runs)
}

fn parse_pairs(mut c: Cursor<'_>) -> Result<Vec<(u32, u32)>, MediaError> {
    c.full_header()?;
    let count = c.u32()?;
    let t = c.table(count, 8)?;
    Ok(t.chunks_exact(8)
        .map(|r| {
            let mut w = u32s(r);
            (w.next().expect("2 words"), w.next().expect("2 words"))
        })
        .collect())
}

fn parse_stss(mut c: Cursor<'_>) -> Result<Vec<u32>, MediaError> {
    c.full_header()?;
    let count = c.u32()?;
    Ok(u32s(c.table(count, 4)?).collect())
}

impl SampleTable {
    /// Parses the tables of an `stbl` and checks that every sample lies within the first
    /// `file_len` bytes of the file.
    pub(crate) fn parse(stbl: &Child<'_>, file_len: u64) -> Result<Self, MediaError> {
        let mut sizes = None;
        let mut chunk_offsets = None;
        let mut chunk_runs = None;
        let mut durations = Vec::new();
        let mut sync = None;
        for child in stbl.cursor().children() {
            let child = child?;
            let c = child.cursor();
            match &child.kind.0 {
                b"stsz" => sizes = Some(parse_stsz(c)?),
                b"stz2" => sizes = Some(parse_stz2(c)?),
                b"stco" => chunk_offsets = Some(parse_offsets(c, false)?),
                b"co64" => chunk_offsets = Some(parse_offsets(c, true)?),
                b"stsc" => chunk_runs = Some(parse_stsc(c)?),
                b"stts" => durations = parse_pairs(c)?,
                b"stss" => sync = Some(parse_stss(c)?),
                _ => {}
            }
        }
        let missing = |kind: &[u8; 4]| MediaError::Missing {
            kind: FourCc(*kind),
            parent: stbl.kind,
            offset: stbl.offset,
        };
        let table = SampleTable {
            sizes: sizes.ok_or_else(|| missing(b"stsz"))?,
            chunk_offsets: chunk_offsets.ok_or_else(|| missing(b"stco"))?,
            chunk_runs: chunk_runs.ok_or_else(|| missing(b"stsc"))?,
            durations,
            sync,
        };
        table.check(file_len)?;
        Ok(table)
    }

    /// Walks the chunks (never the samples of a constant-size table) to check that the chunks
    /// hold every sample and each chunk's bytes lie inside the file.
    fn check(&self, file_len: u64) -> Result<(), MediaError> {
        let count = self.sizes.count();
        // Samples never share bytes, so together they fit in the file; this also bounds the
        // time to iterate a constant-size table by the file's length.
        if self.sizes.sum(0, count) > file_len {
            return Err(MediaError::Inconsistent(
                "the samples add up to more bytes than the file holds",
            ));
        }
        let mut done = 0u32;
        let mut run = 0;
        for (i, &offset) in self.chunk_offsets.iter().enumerate() {
            if done == count {
                break;
            }
            while run + 1 < self.chunk_runs.len()
                && self.chunk_runs[run + 1].first_chunk as usize <= i + 1
            {
                run += 1;
            }
            let per = self.chunk_runs.get(run).map_or(0, |r| r.samples_per_chunk);
            let n = per.min(count - done);
            let bytes = self.sizes.sum(done, n);
            if offset.checked_add(bytes).is_none_or(|end| end > file_len) {
                return Err(MediaError::Inconsistent(
                    "a chunk's samples lie past the end of the file",
                ));
            }
            done += n;
        }
        if done < count {
            return Err(MediaError::Inconsistent(
                "the chunks hold fewer samples than the sample size table lists",
            ));
        }
        Ok(())
    }

    /// How many samples the track has.
    pub fn len(&self) -> u32 {
        self.sizes.count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an `stss` lists the sync samples (otherwise every sample is one).
    pub fn has_sync_table(&self) -> bool {
        self.sync.is_some()
    }

    /// The samples in decode order, computed from the tables as they are visited.
    pub fn samples(&self) -> Samples<'_> {
        Samples {
            t: self,
            index: 0,
            next_chunk: 0,
            left_in_chunk: 0,
            offset: 0,
            run: 0,
            stts: 0,
            stts_left: 0,
            delta: 0,
            time: 0,
            sync: 0,
        }
    }
}

/// Iterator over a track's samples; see [`SampleTable::samples`].
pub struct Samples<'a> {
    t: &'a SampleTable,
    index: u32,
    next_chunk: usize,
    left_in_chunk: u32,
    offset: u64,
    run: usize,
    stts: usize,
    stts_left: u32,
    delta: u32,
    time: u64,
    sync: usize,
}

impl Iterator for Samples<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        let t = self.t;
        if self.index >= t.sizes.count() {
            return None;
        }
        while self.left_in_chunk == 0 {
            // `check` guarantees the chunks hold every sample.
            let offset = *t.chunk_offsets.get(self.next_chunk)?;
            while self.run + 1 < t.chunk_runs.len()
                && t.chunk_runs[self.run + 1].first_chunk as usize <= self.next_chunk + 1
            {
                self.run += 1;
            }
            self.left_in_chunk = t.chunk_runs.get(self.run)?.samples_per_chunk;
            self.offset = offset;
            self.next_chunk += 1;
        }
        let size = t.sizes.get(self.index);
        let offset = self.offset;
        self.offset += u64::from(size);
        self.left_in_chunk -= 1;

        while self.stts_left == 0 && self.stts < t.durations.len() {
            (self.stts_left, self.delta) = t.durations[self.stts];
            self.stts += 1;
        }
        let decode_time = self.time;
        if self.stts_left > 0 {
            self.stts_left -= 1;
            self.time = self.time.saturating_add(u64::from(self.delta));
        }

        let number = self.index + 1;
        let sync = match &t.sync {
            None => true,
            Some(s) => {
                while self.sync < s.len() && s[self.sync] < number {
                    self.sync += 1;
                }
                s.get(self.sync) == Some(&number)
            }
        };
        self.index += 1;
        Some(Sample {
            offset,
            size,
            sync,
            decode_time,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.t.sizes.count() - self.index) as usize;
        (n, Some(n))
    }
}
