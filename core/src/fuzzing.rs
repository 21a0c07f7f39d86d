//! Bodies of the fuzz targets in `fuzz/` (and of the hostile-input test that runs them over a
//! mutated corpus in CI). Each parses untrusted bytes and checks a round-trip property; any
//! panic is a bug.

use crate::manifest::{Manifest, TopManifest};
use crate::media;
use crate::pointer::Pointer;
use crate::store::format::PackIndex;

/// A parsed pointer prints back to exactly the bytes it came from (pointers are canonical).
pub fn pointer(data: &[u8]) {
    if let Ok(p) = Pointer::parse(data) {
        assert_eq!(p.to_bytes(), data, "a parsed pointer must be canonical");
    }
}

/// A top-level manifest that decodes re-encodes to the same bytes when assembled from groups
/// cut out of the same input; group objects never make `assemble` panic.
pub fn manifest(data: &[u8]) {
    let Ok(top) = TopManifest::decode(data) else {
        // Also feed the raw bytes as group objects (of both kinds) of a tiny valid top level.
        for sliced in [false, true] {
            let _ = Manifest::assemble(
                TopManifest {
                    file_id: crate::FileId([0; 32]),
                    size: 0,
                    params: crate::chunker::ChunkerParams::default(),
                    groups: Vec::new(),
                    sliced,
                    media: None,
                },
                &[data.to_vec()],
            );
        }
        return;
    };
    let groups: Vec<Vec<u8>> = top.groups.iter().map(|_| data.to_vec()).collect();
    if let Ok(m) = Manifest::assemble(top, &groups) {
        let enc = m.encode();
        let again = TopManifest::decode(&enc.top).expect("our own encoding decodes");
        let gs: Vec<Vec<u8>> = enc.groups.into_iter().map(|g| g.1).collect();
        assert_eq!(Manifest::assemble(again, &gs).expect("round trip"), m);
    }
}

/// A wire frame that decodes re-encodes to exactly the bytes it used (the codec is
/// canonical), and no input makes the decoder panic or allocate past the frame limit.
pub fn wire_frame(data: &[u8]) {
    if let Ok(Some((msg, used))) = crate::wire::decode_frame(data) {
        let mut again = Vec::new();
        crate::wire::encode_frame(&msg, &mut again);
        assert_eq!(
            again,
            &data[..used],
            "a decoded frame must re-encode to its bytes"
        );
    }
}

/// Frames of every message kind, for fuzzing corpora and the hostile-input test.
pub fn wire_seeds() -> Vec<Vec<u8>> {
    use crate::wire::{encode_frame, ErrorCode, Message, Rights};
    let msgs = [
        Message::Hello {
            version: 1,
            capabilities: vec!["chunks".into(), "git".into()],
            repo: "team/film".into(),
            token: Some("dits_00".into()),
            agent: "fuzz".into(),
        },
        Message::Welcome {
            version: 1,
            capabilities: vec!["chunks".into()],
            rights: Rights::Read,
        },
        Message::Error {
            code: ErrorCode::NotFound,
            message: "x".into(),
        },
        Message::HasChunks {
            ids: vec![crate::ChunkId([7; 32])],
        },
        Message::bitmap([true, false, true]),
        Message::Chunk {
            id: crate::ChunkId([1; 32]),
            data: vec![1, 2, 3],
        },
        Message::BatchAck {
            chunks: 1,
            bytes: 3,
        },
        Message::Git {
            service: "git-upload-pack".into(),
            protocol: String::new(),
        },
    ];
    msgs.iter()
        .map(|m| {
            let mut out = Vec::new();
            encode_frame(m, &mut out);
            out
        })
        .collect()
}

/// A pack index that decodes finds every entry it lists.
pub fn pack_index(data: &[u8]) {
    if let Ok(idx) = PackIndex::decode(data.to_vec()) {
        for e in idx.iter() {
            assert_eq!(idx.find(&e.id), Some(e));
        }
    }
}

/// An ISO-BMFF file: the top-level boxes tile the file exactly, and every sample of a parsed
/// `moov` or `moof` lies inside it. The bytes are also tried as a bare `moov` and `moof`.
pub fn mp4(data: &[u8]) {
    let len = data.len() as u64;
    let inside = |s: &media::Sample| s.offset + u64::from(s.size) <= len;
    if let Ok(m) = media::parse_moov(data, 0, len) {
        for t in &m.tracks {
            assert_eq!(t.samples().count(), t.table.len() as usize);
            assert!(t.samples().all(|s| inside(&s)));
        }
    }
    if let Ok(runs) = media::parse_moof(data, 0, len, &[]) {
        assert!(runs.iter().flat_map(|r| &r.samples).all(inside));
    }
    let Ok(spans) = media::top_level_boxes(media::slice_reader(data), len) else {
        return;
    };
    let mut end = 0;
    for s in &spans {
        assert_eq!(s.offset, end, "top-level boxes must tile the file");
        end = s.end();
    }
    assert_eq!(end, len);
    let mut extends = Vec::new();
    for s in &spans {
        if s.kind != *b"moov" && s.kind != *b"moof" {
            continue;
        }
        let Ok(bytes) = media::read_box(media::slice_reader(data), s, media::MOOV_LIMIT) else {
            continue;
        };
        if s.kind == *b"moov" {
            if let Ok(m) = media::parse_moov(&bytes, s.offset, len) {
                for t in &m.tracks {
                    assert!(t.samples().all(|s| inside(&s)));
                }
                extends = m.track_extends;
            }
        } else if s.kind == *b"moof" {
            if let Ok(runs) = media::parse_moof(&bytes, s.offset, len, &extends) {
                assert!(runs.iter().flat_map(|r| &r.samples).all(inside));
            }
        }
    }
}

/// The video-aware layout of a file: when it succeeds its runs tile the file in order, each
/// stream is exactly its runs, and its cuts and sample starts are ascending, inside the stream.
pub fn mp4_layout(data: &[u8]) {
    let len = data.len() as u64;
    let Ok(layout) = media::analyze(media::slice_reader(data), len, 16 * 1024) else {
        return;
    };
    let mut end = 0;
    let mut per_stream = vec![0u64; layout.streams.len()];
    for r in &layout.runs {
        assert_eq!(r.offset, end, "runs must tile the file");
        assert!(r.len > 0);
        end += r.len;
        per_stream[r.stream] += r.len;
    }
    assert_eq!(end, len);
    for (plan, &bytes) in layout.streams.iter().zip(&per_stream) {
        assert_eq!(plan.len, bytes);
        for list in [&plan.cuts, &plan.sample_starts] {
            assert!(list.windows(2).all(|w| w[0] < w[1]));
            assert!(list.iter().all(|&c| c < plan.len.max(1)));
        }
    }
}

/// A box with `payload`.
pub fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = u32::try_from(8 + payload.len())
        .expect("small test box")
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
}

/// A full box (version 0) with `flags` and `payload`.
pub fn mp4_full_box(kind: &[u8; 4], flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = flags.to_be_bytes().to_vec();
    p.extend_from_slice(payload);
    mp4_box(kind, &p)
}

fn be(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// A `moov` with one 320x240 `avc1` track at timescale 12800; `tables` are the `stbl` boxes
/// after `stsd`; `mvex` is appended when given.
pub fn mp4_moov(tables: &[Vec<u8>], mvex: Option<Vec<u8>>) -> Vec<u8> {
    let mvhd = mp4_full_box(b"mvhd", 0, &[be(&[0, 0, 1000, 400]), vec![0; 80]].concat());
    let tkhd = mp4_full_box(
        b"tkhd",
        3,
        &[
            be(&[0, 0, 1, 0, 400]),
            vec![0; 52],
            be(&[320 << 16, 240 << 16]),
        ]
        .concat(),
    );
    let mdhd = mp4_full_box(b"mdhd", 0, &[be(&[0, 0, 12800, 5120]), vec![0; 4]].concat());
    let hdlr = mp4_full_box(
        b"hdlr",
        0,
        &[be(&[0]), b"vide".to_vec(), vec![0; 13]].concat(),
    );
    let avc1 = mp4_box(
        b"avc1",
        &[
            vec![0, 0, 0, 0, 0, 0, 0, 1],
            vec![0; 16],
            be(&[320 << 16 | 240]),
            vec![0; 50],
        ]
        .concat(),
    );
    let stsd = mp4_full_box(b"stsd", 0, &[be(&[1]), avc1].concat());
    let stbl = mp4_box(b"stbl", &[vec![stsd], tables.to_vec()].concat().concat());
    let minf = mp4_box(b"minf", &stbl);
    let mdia = mp4_box(b"mdia", &[mdhd, hdlr, minf].concat());
    let trak = mp4_box(b"trak", &[tkhd, mdia].concat());
    mp4_box(b"moov", &[mvhd, trak, mvex.unwrap_or_default()].concat())
}

/// Small valid files for the hostile-input corpus: a plain one (ftyp, mdat, moov with 10
/// samples in 3 chunks, 2 of them sync) and a fragmented one (empty moov + mvex, moof, mdat).
pub fn mp4_seeds() -> Vec<Vec<u8>> {
    let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0isomavc1");
    let sizes: Vec<u32> = (10..20).collect();
    let data: Vec<u8> = (0..sizes.iter().sum::<u32>()).map(|i| i as u8).collect();
    let mdat = mp4_box(b"mdat", &data);
    let base = (ftyp.len() + 8) as u32;
    let stbl = vec![
        mp4_full_box(b"stts", 0, &be(&[1, 10, 512])),
        mp4_full_box(b"stss", 0, &be(&[2, 1, 5])),
        mp4_full_box(b"stsc", 0, &be(&[2, 1, 4, 1, 3, 2, 1])),
        mp4_full_box(b"stsz", 0, &[be(&[0, 10]), be(&sizes)].concat()),
        mp4_full_box(b"stco", 0, &be(&[3, base, base + 46, base + 108])),
    ];
    let plain = [ftyp.clone(), mdat.clone(), mp4_moov(&stbl, None)].concat();

    let empty = vec![
        mp4_full_box(b"stts", 0, &be(&[0])),
        mp4_full_box(b"stsc", 0, &be(&[0])),
        mp4_full_box(b"stsz", 0, &be(&[0, 0])),
        mp4_full_box(b"stco", 0, &be(&[0])),
    ];
    let trex = mp4_full_box(b"trex", 0, &be(&[1, 1, 512, 0, 0x0101_0000]));
    let moov = mp4_moov(&empty, Some(mp4_box(b"mvex", &trex)));
    let moof = |data_offset: u32| {
        let mfhd = mp4_full_box(b"mfhd", 0, &be(&[1]));
        let tfhd = mp4_full_box(b"tfhd", 0x2_0000, &be(&[1]));
        let tfdt = mp4_full_box(b"tfdt", 0, &be(&[0]));
        let trun = mp4_full_box(
            b"trun",
            0x205,
            &[be(&[10, data_offset, 0x0200_0000]), be(&sizes)].concat(),
        );
        let traf = mp4_box(b"traf", &[tfhd, tfdt, trun].concat());
        mp4_box(b"moof", &[mfhd, traf].concat())
    };
    let moof_len = moof(0).len() as u32;
    let fragmented = [ftyp, moov, moof(moof_len + 8), mdat].concat();
    vec![plain, fragmented]
}
