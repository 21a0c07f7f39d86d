//! The ISO-BMFF parser against real files made by ffmpeg (H.264, HEVC, ProRes; plain,
//! faststart and fragmented) and against hand-built malformed boxes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use dits_core::fuzzing::{mp4_box, mp4_full_box, mp4_moov, mp4_seeds};
use dits_core::media::{
    self, parse_moof, parse_moov, read_box, slice_reader, top_level_boxes, BoxSpan, FragmentRun,
    MediaError, Movie, Sample,
};

const FRAMES: usize = 100; // 4 s at 25 fps

/// Encodes 4 s of test pattern (320x240, 25 fps) and a 48 kHz sine with `args` into `name`.
fn ffmpeg(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc2=size=320x240:rate=25")
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "4",
        ])
        .args(args)
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("ffmpeg is needed for the media tests (apt-get install ffmpeg): {e}")
        });
    assert!(status.success(), "ffmpeg failed for {name}: {status}");
    out
}

/// Key frames of the first video stream as ffprobe sees them, if ffprobe is installed.
fn ffprobe_keyframes(path: &Path) -> Option<usize> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_frames"])
        .args(["-show_entries", "frame=key_frame", "-of", "csv"])
        .arg(path)
        .output()
        .ok()?;
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().filter(|l| l.starts_with("frame,1")).count())
}

fn file_reader(path: &Path) -> impl FnMut(u64, &mut [u8]) -> std::io::Result<()> {
    let mut f = File::open(path).expect("open media file");
    move |offset, buf| {
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}

struct Parsed {
    spans: Vec<BoxSpan>,
    movie: Movie,
    runs: Vec<FragmentRun>,
}

impl Parsed {
    fn kinds(&self) -> Vec<String> {
        self.spans.iter().map(|s| s.kind.to_string()).collect()
    }

    /// Every sample of `track_id`, from `stbl` and from fragments.
    fn samples(&self, track_id: u32) -> Vec<Sample> {
        let t = self.movie.tracks.iter().find(|t| t.id == track_id);
        let mut v: Vec<Sample> = t.into_iter().flat_map(|t| t.samples()).collect();
        for r in self.runs.iter().filter(|r| r.track_id == track_id) {
            v.extend(&r.samples);
        }
        v
    }

    fn video(&self) -> &media::Track {
        self.movie
            .tracks
            .iter()
            .find(|t| t.handler == *b"vide")
            .expect("a video track")
    }

    fn audio(&self) -> &media::Track {
        self.movie
            .tracks
            .iter()
            .find(|t| t.handler == *b"soun")
            .expect("an audio track")
    }
}

fn parse(path: &Path) -> Parsed {
    let len = std::fs::metadata(path).expect("stat").len();
    let mut read = file_reader(path);
    let spans = top_level_boxes(&mut read, len).expect("top-level boxes");
    let moov = spans.iter().find(|s| s.kind == *b"moov").expect("a moov");
    let bytes = read_box(&mut read, moov, media::MOOV_LIMIT).expect("read moov");
    let movie = parse_moov(&bytes, moov.offset, len).expect("parse moov");
    let mut runs = Vec::new();
    for s in spans.iter().filter(|s| s.kind == *b"moof") {
        let bytes = read_box(&mut read, s, media::MOOF_LIMIT).expect("read moof");
        runs.extend(parse_moof(&bytes, s.offset, len, &movie.track_extends).expect("parse moof"));
    }
    Parsed { spans, movie, runs }
}

/// The checks every real file passes: samples inside an `mdat`, no overlaps within a track,
/// the expected picture, rate and key frames.
fn check(p: &Parsed, path: &Path, codecs: &[&[u8; 4]]) {
    let mdats: Vec<&BoxSpan> = p.spans.iter().filter(|s| s.kind == *b"mdat").collect();
    assert!(!mdats.is_empty());
    for t in &p.movie.tracks {
        let mut samples = p.samples(t.id);
        assert!(!samples.is_empty(), "track {} has samples", t.id);
        for s in &samples {
            let end = s.offset + u64::from(s.size);
            assert!(
                mdats
                    .iter()
                    .any(|m| m.payload_offset() <= s.offset && end <= m.end()),
                "sample {s:?} of track {} lies outside every mdat",
                t.id
            );
        }
        assert!(samples
            .windows(2)
            .all(|w| w[0].decode_time <= w[1].decode_time));
        samples.sort_by_key(|s| s.offset);
        for w in samples.windows(2) {
            assert!(
                w[0].offset + u64::from(w[0].size) <= w[1].offset,
                "overlap in track {}",
                t.id
            );
        }
    }

    let v = p.video();
    let codec = v.codec.expect("a video codec");
    assert!(codecs.iter().any(|c| codec == **c), "codec {codec}");
    let size = v.video.expect("video info");
    assert_eq!((size.width, size.height), (320, 240));
    let frames = p.samples(v.id);
    assert_eq!(frames.len(), FRAMES);
    assert!(v.timescale > 0);
    let last = frames.last().expect("frames");
    let seconds = (last.decode_time as f64) / f64::from(v.timescale);
    assert!(
        (3.8..4.1).contains(&seconds),
        "last frame decodes at {seconds} s"
    );

    let a = p.audio();
    assert_eq!(a.audio.expect("audio info").sample_rate, 48000);

    let keys = frames.iter().filter(|s| s.sync).count();
    match ffprobe_keyframes(path) {
        Some(k) => assert_eq!(keys, k, "key frames vs ffprobe"),
        None => assert_eq!(keys, FRAMES.div_ceil(25)),
    }
}

const X264: &[&str] = &[
    "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
];

#[test]
fn h264_default_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = ffmpeg(dir.path(), "a.mp4", X264);
    let p = parse(&path);
    assert_eq!(p.kinds(), ["ftyp", "free", "mdat", "moov"]);
    check(&p, &path, &[b"avc1"]);
    assert_eq!(p.video().samples().filter(|s| s.sync).count(), 4);
    let secs = p.movie.duration as f64 / f64::from(p.movie.timescale);
    assert!((3.9..4.2).contains(&secs), "movie lasts {secs} s");
}

#[test]
fn h264_faststart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [X264, &["-movflags", "+faststart"]].concat();
    let path = ffmpeg(dir.path(), "b.mp4", &args);
    let p = parse(&path);
    let kinds = p.kinds();
    assert_eq!(kinds.first().map(String::as_str), Some("ftyp"));
    assert_eq!(kinds.get(1).map(String::as_str), Some("moov"));
    assert_eq!(kinds.last().map(String::as_str), Some("mdat"));
    check(&p, &path, &[b"avc1"]);
}

#[test]
fn h264_fragmented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [X264, &["-movflags", "frag_keyframe+empty_moov"]].concat();
    let path = ffmpeg(dir.path(), "c.mp4", &args);
    let p = parse(&path);
    let kinds = p.kinds();
    assert_eq!(&kinds[..2], ["ftyp", "moov"]);
    assert!(
        kinds.iter().filter(|k| *k == "moof").count() >= 4,
        "{kinds:?}"
    );
    assert!(p.movie.fragmented);
    assert!(p.movie.tracks.iter().all(|t| t.table.is_empty()));
    check(&p, &path, &[b"avc1"]);
    // frag_keyframe: every video fragment starts with its key frame.
    let v = p.video().id;
    for r in p.runs.iter().filter(|r| r.track_id == v) {
        assert!(r.samples.first().is_none_or(|s| s.sync));
    }
}

#[test]
fn hevc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["-c:v", "libx265", "-preset", "ultrafast", "-g", "25"];
    let args = [
        &args[..],
        &["-x265-params", "log-level=error", "-c:a", "aac"],
    ]
    .concat();
    let path = ffmpeg(dir.path(), "d.mp4", &args);
    check(&parse(&path), &path, &[b"hev1", b"hvc1"]);
}

#[test]
fn prores_mov_all_intra() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["-c:v", "prores_ks", "-profile:v", "2", "-c:a", "pcm_s16le"];
    let path = ffmpeg(dir.path(), "e.mov", &args);
    let p = parse(&path);
    check(&p, &path, &[b"apcn"]);
    // No stss: every ProRes frame is a sync sample.
    assert!(!p.video().table.has_sync_table());
    assert_eq!(p.video().samples().filter(|s| s.sync).count(), FRAMES);
}

// ---- synthetic and malformed input ----

fn spans(data: &[u8]) -> Result<Vec<BoxSpan>, MediaError> {
    top_level_boxes(slice_reader(data), data.len() as u64)
}

#[test]
fn synthetic_seeds_parse() {
    let seeds = mp4_seeds();
    let plain = &seeds[0];
    let s = spans(plain).expect("plain");
    let moov = s.iter().find(|s| s.kind == *b"moov").expect("moov");
    let bytes = read_box(slice_reader(plain), moov, media::MOOV_LIMIT).expect("read");
    let m = parse_moov(&bytes, moov.offset, plain.len() as u64).expect("moov");
    let samples: Vec<Sample> = m.tracks[0].samples().collect();
    assert_eq!(samples.len(), 10);
    assert_eq!(samples.iter().filter(|s| s.sync).count(), 2);
    assert_eq!(samples[4].offset, 24 + 8 + 46);
    assert_eq!(samples[9].decode_time, 9 * 512);
    let mdat = s.iter().find(|s| s.kind == *b"mdat").expect("mdat");
    assert_eq!(samples[0].offset, mdat.payload_offset());
    assert_eq!(samples[9].offset + 19, mdat.end());

    let frag = &seeds[1];
    let s = spans(frag).expect("fragmented");
    let moof = s.iter().find(|s| s.kind == *b"moof").expect("moof");
    let mdat = s.iter().find(|s| s.kind == *b"mdat").expect("mdat");
    let bytes = read_box(slice_reader(frag), moof, media::MOOF_LIMIT).expect("read");
    let runs = parse_moof(&bytes, moof.offset, frag.len() as u64, &[]).expect("moof");
    assert_eq!(runs[0].samples[0].offset, mdat.payload_offset());
    assert!(runs[0].samples[0].sync);
    assert_eq!(runs[0].samples[9].offset + 19, mdat.end());
}

#[test]
fn size_one_and_zero_and_uuid() {
    // largesize: 16-byte header, then 4 payload bytes.
    let mut big = 1u32.to_be_bytes().to_vec();
    big.extend_from_slice(b"free");
    big.extend_from_slice(&20u64.to_be_bytes());
    big.extend_from_slice(&[0; 4]);
    let mut uuid = mp4_box(b"uuid", &[7; 20]);
    let zero = [0, 0, 0, 0, b'm', b'd', b'a', b't', 1, 2, 3];
    let data = [big.clone(), uuid.clone(), zero.to_vec()].concat();
    let s = spans(&data).expect("valid");
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].header_len, s[0].size), (16, 20));
    assert_eq!((s[1].header_len, s[1].user_type), (24, Some([7; 16])));
    assert_eq!((s[2].kind, s[2].size), (media::FourCc(*b"mdat"), 11));

    // largesize smaller than its own header, and one past the end.
    let mut bad = big.clone();
    bad[8..16].copy_from_slice(&8u64.to_be_bytes());
    assert!(matches!(
        spans(&bad),
        Err(MediaError::BadSize { size: 8, .. })
    ));
    bad[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(spans(&bad), Err(MediaError::Truncated { .. })));
    // A uuid box whose size leaves no room for its extended type, with and without the bytes.
    uuid[..4].copy_from_slice(&20u32.to_be_bytes());
    assert!(matches!(
        spans(&uuid),
        Err(MediaError::BadSize { size: 20, .. })
    ));
    uuid.truncate(20);
    assert!(matches!(spans(&uuid), Err(MediaError::Truncated { .. })));
}

#[test]
fn malformed_top_level() {
    let ftyp = mp4_box(b"ftyp", b"isom\0\0\0\0isom");
    // Truncated header, box past the end, size below the header (the would-be endless loop:
    // sizes 0..8 would never advance a naive walker).
    for tail in [
        vec![0, 0, 0],
        mp4_box(b"mdat", &[1; 10])[..12].to_vec(),
        vec![0, 0, 0, 4, b'f', b'r', b'e', b'e'],
        vec![0, 0, 0, 7, b'f', b'r', b'e', b'e'],
    ] {
        let data = [ftyp.clone(), tail.clone()].concat();
        assert!(spans(&data).is_err(), "tail {tail:?} must be rejected");
    }
    // Random bytes after a valid ftyp.
    let mut x = 0x9e37_79b9_u32;
    for _ in 0..200 {
        let n = 8 + (x % 64) as usize;
        let junk: Vec<u8> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 3) as u8
            })
            .collect();
        let data = [ftyp.clone(), junk].concat();
        // The junk's first word is almost never a size that fits exactly; either way, no panic.
        if let Ok(s) = spans(&data) {
            assert_eq!(s.last().map(BoxSpan::end), Some(data.len() as u64));
        }
    }
    let junk = [ftyp.clone(), vec![0xff; 40]].concat();
    assert!(spans(&junk).is_err());
    // A read error is reported, not a panic.
    let err = top_level_boxes(|_, _| Err(std::io::ErrorKind::Other.into()), 100);
    assert!(matches!(err, Err(MediaError::Read { offset: 0, .. })));
    // A box too large to read whole.
    let s = spans(&ftyp).expect("ftyp");
    assert!(matches!(
        read_box(slice_reader(&ftyp), &s[0], 8),
        Err(MediaError::TooLarge { .. })
    ));
}

fn stbl(tables: &[Vec<u8>], file_len: u64) -> Result<Movie, MediaError> {
    let moov = mp4_moov(tables, None);
    parse_moov(&moov, 0, file_len)
}

fn be(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

#[test]
fn malformed_sample_tables() {
    let ok = || {
        vec![
            mp4_full_box(b"stts", 0, &be(&[1, 2, 512])),
            mp4_full_box(b"stsc", 0, &be(&[1, 1, 2, 1])),
            mp4_full_box(b"stsz", 0, &be(&[0, 2, 10, 10])),
            mp4_full_box(b"stco", 0, &be(&[1, 100])),
        ]
    };
    let m = stbl(&ok(), 120).expect("valid tables");
    assert_eq!(m.tracks[0].samples().count(), 2);
    // The samples end at 120: a shorter file is an error.
    assert!(matches!(stbl(&ok(), 119), Err(MediaError::Inconsistent(_))));

    let cases: Vec<(usize, Vec<u8>)> = vec![
        // Huge counts in tiny tables: never allocated, always an error.
        (2, mp4_full_box(b"stsz", 0, &be(&[0, u32::MAX, 10]))),
        (3, mp4_full_box(b"stco", 0, &be(&[u32::MAX, 100]))),
        (1, mp4_full_box(b"stsc", 0, &be(&[0x4000_0000, 1, 2, 1]))),
        (0, mp4_full_box(b"stts", 0, &be(&[u32::MAX, 2, 512]))),
        // A constant size with a huge count: the chunks cannot hold it.
        (2, mp4_full_box(b"stsz", 0, &be(&[10, u32::MAX]))),
        // Chunk offset past the end.
        (
            3,
            mp4_full_box(
                b"co64",
                0,
                &[be(&[1]), u64::MAX.to_be_bytes().to_vec()].concat(),
            ),
        ),
        // stsc must start at chunk 1 and increase.
        (1, mp4_full_box(b"stsc", 0, &be(&[1, 2, 2, 1]))),
        (1, mp4_full_box(b"stsc", 0, &be(&[2, 1, 1, 1, 1, 1, 1]))),
        // stz2 with an unknown field size.
        (2, mp4_full_box(b"stz2", 0, &be(&[3, 2, 0]))),
        // A truncated full box.
        (2, mp4_box(b"stsz", &[0, 0])),
        // A child box claiming more than its parent holds.
        (0, [be(&[1000]), b"stts".to_vec()].concat()),
    ];
    let expect = [
        "`stsz` at offset 467 is truncated",
        "`stco` at offset 495 is truncated",
        "`stsc` at offset 439 is truncated",
        "`stts` at offset 415 is truncated",
        "the chunks hold fewer samples",
        "past the end of the file",
        "stsc runs must start at chunk 1",
        "stsc runs must start at chunk 1",
        "stz2 field size",
        "`stsz` at offset 467 is truncated",
        "`stts` at offset 407 is truncated",
    ];
    assert_eq!(cases.len(), expect.len());
    for (i, ((slot, table), want)) in cases.into_iter().zip(expect).enumerate() {
        let mut t = ok();
        t[slot] = table;
        let e = stbl(&t, 1 << 40).expect_err("a malformed table must be rejected");
        assert!(e.to_string().contains(want), "case {i}: {e}");
    }
    // Missing tables.
    let mut t = ok();
    t.remove(3);
    assert!(matches!(stbl(&t, 1 << 40), Err(MediaError::Missing { .. })));
}

#[test]
fn malformed_fragments() {
    let frag = &mp4_seeds()[1];
    let s = spans(frag).expect("fragmented");
    let moof = s.iter().find(|s| s.kind == *b"moof").expect("moof");
    let bytes = read_box(slice_reader(frag), moof, media::MOOF_LIMIT).expect("read");
    let len = frag.len() as u64;
    // The moof's runs point past the end of a shorter file.
    assert!(parse_moof(&bytes, moof.offset, len - 1, &[]).is_err());
    // A trun without per-sample fields and a huge count.
    let trun = mp4_full_box(b"trun", 0, &be(&[u32::MAX]));
    let tfhd = mp4_full_box(b"tfhd", 0x2_0010, &be(&[1, 1]));
    let moof_box = mp4_box(b"moof", &mp4_box(b"traf", &[tfhd.clone(), trun].concat()));
    assert!(matches!(
        parse_moof(&moof_box, 0, 1 << 40, &[]),
        Err(MediaError::TooLarge { .. })
    ));
    // A huge count with per-sample sizes but a tiny table.
    let trun = mp4_full_box(b"trun", 0x200, &be(&[u32::MAX, 5]));
    let moof_box = mp4_box(b"moof", &mp4_box(b"traf", &[tfhd, trun].concat()));
    assert!(matches!(
        parse_moof(&moof_box, 0, 1 << 40, &[]),
        Err(MediaError::Truncated { .. })
    ));
    // Not a moof, or trailing bytes after it.
    assert!(parse_moof(&bytes[..bytes.len() - 1], moof.offset, len, &[]).is_err());
    assert!(parse_moov(&bytes, moof.offset, len).is_err());
}

#[test]
fn compact_sizes_and_wide_offsets() {
    let t = vec![
        mp4_full_box(b"stsc", 0, &be(&[1, 1, 3, 1])),
        mp4_full_box(b"stz2", 0, &[be(&[4, 3]), vec![0x12, 0x30]].concat()),
        mp4_full_box(
            b"co64",
            0,
            &[be(&[1]), 100u64.to_be_bytes().to_vec()].concat(),
        ),
    ];
    let m = stbl(&t, 106).expect("valid");
    let got: Vec<(u64, u32, bool)> = m.tracks[0]
        .samples()
        .map(|s| (s.offset, s.size, s.sync))
        .collect();
    assert_eq!(got, [(100, 1, true), (101, 2, true), (103, 3, true)]);
    assert!(stbl(&t, 105).is_err());
}

#[test]
fn overlapping_chunks_cannot_multiply_samples() {
    // 20 samples of 10 bytes in two chunks that both start at 0: each chunk fits in 150 bytes,
    // all of them together cannot.
    let t = vec![
        mp4_full_box(b"stsc", 0, &be(&[1, 1, 10, 1])),
        mp4_full_box(b"stsz", 0, &be(&[10, 20])),
        mp4_full_box(b"stco", 0, &be(&[2, 0, 0])),
    ];
    assert!(matches!(stbl(&t, 150), Err(MediaError::Inconsistent(_))));
    assert_eq!(stbl(&t, 200).expect("fits").tracks[0].samples().count(), 20);
}

#[test]
fn implicit_samples_budget_is_per_moof() {
    let tfhd = mp4_full_box(b"tfhd", 0x2_0010, &be(&[1, 1]));
    let trun = mp4_full_box(b"trun", 0, &be(&[600_000]));
    let one = mp4_box(
        b"moof",
        &mp4_box(b"traf", &[tfhd.clone(), trun.clone()].concat()),
    );
    let runs = parse_moof(&one, 0, 1 << 40, &[]).expect("one run fits the budget");
    assert_eq!(runs[0].samples.len(), 600_000);
    let two = mp4_box(
        b"moof",
        &mp4_box(b"traf", &[tfhd, trun.clone(), trun].concat()),
    );
    assert!(matches!(
        parse_moof(&two, 0, 1 << 40, &[]),
        Err(MediaError::TooLarge { .. })
    ));
}

// ---- video-aware ingest ----

use dits_core::chunker::ChunkerParams;
use dits_core::ingest::Ingested;
use dits_core::ingest_media::ingest_media;
use dits_core::progress::Silent;
use dits_core::reader::ManifestReader;
use dits_core::store::{ChunkSource, MemoryStore};
use dits_core::FileId;

fn ingest_path(store: &mut MemoryStore, path: &Path) -> Ingested {
    let data = std::fs::read(path).expect("read media");
    let file = File::open(path).expect("open media");
    let got = ingest_media(
        &file,
        data.len() as u64,
        FileId::of(&data),
        ChunkerParams::default(),
        store,
        &Silent,
    )
    .expect("ingest");
    let mut back = Vec::new();
    ManifestReader::new(&*store, got.manifest.clone())
        .read_to_end(&mut back)
        .expect("read back");
    assert!(back == data, "{} does not round-trip", path.display());
    assert_eq!(
        store.read_manifest(&got.manifest.file_id).ok(),
        Some(got.manifest.clone())
    );
    got
}

/// Re-muxes `src` with `-c copy` and `args` into `name`.
fn remux(src: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = src.with_file_name(name);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(src)
        .args(["-map", "0", "-c", "copy"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "remux to {name}");
    out
}

#[test]
fn media_files_are_laid_out_by_track_and_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frag = [X264, &["-movflags", "frag_keyframe+empty_moov"]].concat();
    let prores = ["-c:v", "prores_ks", "-profile:v", "2", "-c:a", "pcm_s16le"];
    for (name, args, codec) in [
        ("a.mp4", X264, b"avc1"),
        ("c.mp4", &frag[..], b"avc1"),
        ("e.mov", &prores[..], b"apcn"),
    ] {
        let path = ffmpeg(dir.path(), name, args);
        let mut store = MemoryStore::default();
        let m = ingest_path(&mut store, &path).manifest;
        let info = m.media.as_ref().expect("described as media");
        let video = info
            .tracks
            .iter()
            .find(|t| t.handler == *b"vide")
            .expect("video");
        assert_eq!(video.codec.0, *codec, "{name}");
        assert_eq!(
            (video.width, video.height, video.samples),
            (320, 240, FRAMES as u32)
        );
        let audio = info
            .tracks
            .iter()
            .find(|t| t.handler == *b"soun")
            .expect("audio");
        assert_eq!(audio.sample_rate, 48000, "{name}");
        assert!(
            (3900..4200).contains(&info.duration_ms),
            "{name}: {}",
            info.duration_ms
        );
        // Interleaved tracks: the pieces alternate between chunks of different streams.
        assert!(
            m.pieces.len() > m.chunks.len(),
            "{name}: {} pieces",
            m.pieces.len()
        );
    }
}

#[test]
fn keyframes_start_video_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 2 Mbit/s, a keyframe a second: GOPs of ~250 KB, each cut into chunks of its own.
    let args = [X264, &["-b:v", "2M"]].concat();
    let path = ffmpeg(dir.path(), "k.mp4", &args);
    let p = parse(&path);
    let mut store = MemoryStore::default();
    let m = ingest_path(&mut store, &path).manifest;
    // File offsets where pieces start.
    let mut starts = std::collections::HashSet::new();
    let mut at = 0u64;
    for s in m.spans() {
        if s.start == 0 {
            starts.insert(at);
        }
        at += u64::from(s.len);
    }
    let keys: Vec<u64> = p
        .video()
        .samples()
        .filter(|s| s.sync)
        .map(|s| s.offset)
        .collect();
    assert_eq!(keys.len(), 4);
    for k in &keys[1..] {
        assert!(starts.contains(k), "no chunk starts at the keyframe at {k}");
    }
}

#[test]
fn remuxes_store_almost_nothing_new() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [X264, &["-b:v", "2M"]].concat();
    let a = ffmpeg(dir.path(), "r.mp4", &args);
    let mut store = MemoryStore::default();
    ingest_path(&mut store, &a);
    for (name, extra) in [
        ("r-fast.mp4", &["-movflags", "+faststart"][..]),
        ("r-meta.mp4", &["-metadata", "title=An edit"][..]),
        ("r.mov", &[][..]),
    ] {
        let b = remux(&a, name, extra);
        let size = std::fs::metadata(&b).expect("stat").len();
        let got = ingest_path(&mut store, &b);
        // The new container stream (moov, ftyp) plus the manifest's groups.
        assert!(
            got.stored_bytes * 100 < size * 2,
            "{name}: {} of {size} bytes new",
            got.stored_bytes
        );
    }
}

#[test]
fn what_does_not_parse_is_stored_as_plain_bytes() {
    let mut seeds = mp4_seeds();
    let mut ftyp_then_noise = mp4_box(b"ftyp", b"isom\0\0\x02\0isom");
    ftyp_then_noise.extend((0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    seeds.push(ftyp_then_noise);
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, data) in seeds.iter().enumerate() {
        let path = dir.path().join(format!("s{i}"));
        std::fs::write(&path, data).expect("write");
        let mut store = MemoryStore::default();
        let mut truncated = data.clone();
        truncated.truncate(data.len() * 2 / 3);
        let short = dir.path().join(format!("t{i}"));
        std::fs::write(&short, &truncated).expect("write");
        let whole = ingest_path(&mut store, &path).manifest;
        if i + 1 == seeds.len() {
            assert!(whole.media.is_none(), "noise after ftyp is not media");
        }
        // A box now runs past the end: the walk fails, so the bytes are stored plainly.
        let m = ingest_path(&mut store, &short).manifest;
        assert!(
            m.media.is_none() && m.pieces.is_empty(),
            "seed {i} truncated"
        );
    }
}

#[test]
fn streaming_with_a_predicted_layout_matches_the_spooled_clean() {
    use dits_core::ingest_media::ingest_any;
    let dir = tempfile::tempdir().expect("tempdir");
    let a = ffmpeg(dir.path(), "p.mp4", X264);
    let b = ffmpeg(dir.path(), "q.mp4", &[X264, &["-b:v", "1M"]].concat());
    let data = std::fs::read(&a).expect("read");
    let clean = |like: Option<&Path>| {
        let mut store = MemoryStore::default();
        let m = ingest_any(
            &data[..],
            true,
            like,
            dir.path(),
            ChunkerParams::default(),
            &mut store,
            &Silent,
        )
        .expect("ingest")
        .manifest;
        let mut back = Vec::new();
        ManifestReader::new(&store, m.clone())
            .read_to_end(&mut back)
            .expect("read back");
        assert!(back == data, "not byte-exact with like={like:?}");
        m
    };
    let spooled = clean(None);
    // Routed through the layout of the same file: the very same chunks and pieces.
    assert_eq!(clean(Some(&a)), spooled);
    // A wrong prediction (another file) still stores the content exactly, undescribed.
    let wrong = clean(Some(&b));
    assert!(wrong.media.is_none());
    assert_eq!(wrong.file_id, spooled.file_id);
}

#[test]
fn quicktime_without_ftyp_is_laid_out_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["-c:v", "prores_ks", "-profile:v", "0", "-c:a", "pcm_s16le"];
    let path = ffmpeg(dir.path(), "old.mov", &args);
    let mut data = std::fs::read(&path).expect("read");
    // Older QuickTime files start without `ftyp`: turn it into padding of the same size.
    assert_eq!(&data[4..8], b"ftyp");
    data[4..8].copy_from_slice(b"free");
    std::fs::write(&path, &data).expect("write");
    let mut store = MemoryStore::default();
    let m = ingest_path(&mut store, &path).manifest;
    let info = m.media.expect("laid out as media");
    assert_eq!(info.brand.0, *b"qt  ");
    assert!(info.tracks.iter().any(|t| t.codec.0 == *b"apco"));
}
