//! Bodies of the fuzz targets in `fuzz/` (and of the hostile-input test that runs them over a
//! mutated corpus in CI). Each parses untrusted bytes and checks a round-trip property; any
//! panic is a bug.

use crate::manifest::{Manifest, TopManifest};
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
        // Also feed the raw bytes as group objects of a tiny valid top level.
        let _ = Manifest::assemble(
            TopManifest {
                file_id: crate::FileId([0; 32]),
                size: 0,
                params: crate::chunker::ChunkerParams::default(),
                groups: Vec::new(),
            },
            &[data.to_vec()],
        );
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

/// A pack index that decodes finds every entry it lists.
pub fn pack_index(data: &[u8]) {
    if let Ok(idx) = PackIndex::decode(data.to_vec()) {
        for e in idx.iter() {
            assert_eq!(idx.find(&e.id), Some(e));
        }
    }
}
