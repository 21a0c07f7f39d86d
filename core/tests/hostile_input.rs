//! The fuzz targets' bodies over a deterministic, mutated corpus: what `cargo fuzz` explores
//! for minutes by hand, a few thousand cases of it on every test run.

use dits_core::chunker::ChunkerParams;
use dits_core::fuzzing;
use dits_core::manifest::{ChunkRef, Manifest};
use dits_core::store::format::{IdxEntry, PackIndex, PACK_HEADER_LEN};
use dits_core::{ChunkId, FileId, Pointer};

/// xorshift64: reproducible mutations without an RNG dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.truncate(rng.below(v.len() + 1)),
            2 => {
                let i = rng.below(v.len() + 1);
                let b = rng.next() as u8;
                v.insert(i, b);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            4 => {
                // Splice a run of one byte value, e.g. huge little-endian counts.
                let i = rng.below(v.len() + 1);
                let b = if rng.below(2) == 0 { 0xff } else { 0 };
                let n = 1 + rng.below(8);
                v.splice(i..i, std::iter::repeat_n(b, n));
            }
            _ => v = (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        }
    }
    v
}

fn run(seeds: &[Vec<u8>], cases: usize, target: fn(&[u8])) {
    let mut rng = Rng(0x5eed_d175);
    for s in seeds {
        target(s);
    }
    for _ in 0..cases {
        let seed = &seeds[rng.below(seeds.len())];
        target(&mutate(&mut rng, seed));
    }
}

#[test]
fn pointers() {
    let seeds = vec![
        Pointer::new(FileId::of(b"x"), 1).to_bytes(),
        Pointer::new(FileId::of(b""), 0).to_bytes(),
        b"dits-pointer v2\nblake3 00\nsize 1\n".to_vec(),
    ];
    run(&seeds, 20_000, fuzzing::pointer);
}

#[test]
fn manifests() {
    let m = |n: u32| {
        Manifest::plain(
            FileId::of(&n.to_le_bytes()),
            (0..n).map(|i| u64::from(100 + i)).sum(),
            ChunkerParams::default(),
            (0..n)
                .map(|i| ChunkRef {
                    id: ChunkId::of(&i.to_le_bytes()),
                    len: 100 + i,
                })
                .collect(),
        )
    };
    let mut seeds = Vec::new();
    for n in [0, 1, 3, 70, 300] {
        let enc = m(n).encode();
        seeds.push(enc.top);
        seeds.extend(enc.groups.into_iter().map(|g| g.1));
    }
    run(&seeds, 20_000, fuzzing::manifest);
}

#[test]
fn pack_indexes() {
    let mut entries: Vec<IdxEntry> = (0..20u32)
        .map(|i| IdxEntry {
            id: ChunkId::of(&i.to_le_bytes()),
            offset: PACK_HEADER_LEN + u64::from(i) * 200,
            raw_len: 150,
            stored_len: 150,
            flags: 0,
        })
        .collect();
    let seeds = vec![
        PackIndex::encode(&mut entries, PACK_HEADER_LEN + 20 * 200),
        PackIndex::encode(&mut [], PACK_HEADER_LEN),
    ];
    run(&seeds, 20_000, fuzzing::pack_index);
}

#[test]
fn mp4_boxes() {
    let mut seeds = fuzzing::mp4_seeds();
    // Each seed's moov and moof alone too, so mutations reach the tables directly.
    for file in seeds.clone() {
        let mut at = 0;
        while at + 8 <= file.len() {
            let size = u32::from_be_bytes(file[at..at + 4].try_into().expect("4 bytes")) as usize;
            if &file[at + 4..at + 8] == b"moov" || &file[at + 4..at + 8] == b"moof" {
                seeds.push(file[at..at + size].to_vec());
            }
            at += size;
        }
    }
    run(&seeds, 20_000, fuzzing::mp4);
    run(&seeds, 20_000, fuzzing::mp4_layout);
}

#[test]
fn wire_frames() {
    let mut seeds = fuzzing::wire_seeds();
    // A length prefix that claims more than the limit, and one frame cut short.
    seeds.push(vec![0xff, 0xff, 0xff, 0x7f, 0x21]);
    let mut cut = seeds[0].clone();
    cut.truncate(cut.len() / 2);
    seeds.push(cut);
    run(&seeds, 20_000, fuzzing::wire_frame);
}
