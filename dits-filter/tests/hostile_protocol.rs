//! The filter-protocol fuzz target's body over a mutated corpus of well-formed sessions.

fn pkt(s: &[u8]) -> Vec<u8> {
    let mut v = format!("{:04x}", s.len() + 4).into_bytes();
    v.extend_from_slice(s);
    v
}

fn session() -> Vec<u8> {
    let mut v = Vec::new();
    for l in [&b"git-filter-client\n"[..], b"version=2\n"] {
        v.extend(pkt(l));
    }
    v.extend_from_slice(b"0000");
    for l in [
        &b"capability=clean\n"[..],
        b"capability=smudge\n",
        b"capability=delay\n",
    ] {
        v.extend(pkt(l));
    }
    v.extend_from_slice(b"0000");
    for (cmd, path, delay) in [
        ("clean", "a", false),
        ("smudge", "b", true),
        ("smudge", "err", false),
    ] {
        v.extend(pkt(format!("command={cmd}\n").as_bytes()));
        v.extend(pkt(format!("pathname={path}\n").as_bytes()));
        if delay {
            v.extend(pkt(b"can-delay=1\n"));
        }
        v.extend_from_slice(b"0000");
        v.extend(pkt(b"some content"));
        v.extend_from_slice(b"0000");
    }
    v.extend(pkt(b"command=list_available_blobs\n"));
    v.extend_from_slice(b"0000");
    v
}

#[test]
fn mutated_sessions_never_panic() {
    let seed = session();
    let mut x: u64 = 0xfeed_beef;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    dits_filter::fuzzing::filter_protocol(&seed);
    for _ in 0..5_000 {
        let mut v = seed.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % v.len() as u64) as usize;
            match next() % 3 {
                0 => v[i] ^= 1 << (next() % 8),
                1 => v.truncate(i),
                _ => v.insert(i, next() as u8),
            }
            if v.is_empty() {
                break;
            }
        }
        dits_filter::fuzzing::filter_protocol(&v);
    }
}
