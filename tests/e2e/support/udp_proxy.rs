//! A UDP relay on 127.0.0.1 between a QUIC client and the server, for fault injection: it
//! can cut the path after a number of bytes (as a pulled cable would: packets vanish, no
//! error reaches either side), drop one packet in N, or delay every packet.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct Faults {
    /// Bytes relayed so far, both directions.
    relayed: AtomicU64,
    /// Once `relayed` passes this, nothing more is relayed either way (0: never).
    cut_after: AtomicU64,
    cut: AtomicBool,
    /// Drop one packet in this many (0: none).
    drop_one_in: AtomicU32,
    delay_ms: AtomicU32,
    stop: AtomicBool,
    counter: AtomicU64,
}

pub struct UdpProxy {
    pub addr: SocketAddr,
    faults: Arc<Faults>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpProxy {
    pub fn start(server: &str) -> UdpProxy {
        let server: SocketAddr = server.parse().unwrap();
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(server).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let faults = Arc::new(Faults::default());
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let (front, back) = (Arc::new(front), Arc::new(back));
        let up = {
            let (front, back, faults, client) = (
                Arc::clone(&front),
                Arc::clone(&back),
                Arc::clone(&faults),
                Arc::clone(&client),
            );
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !faults.stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else {
                        continue;
                    };
                    *client.lock().unwrap() = Some(from);
                    if faults.pass(n as u64) {
                        let _ = back.send(&buf[..n]);
                    }
                }
            })
        };
        let down = {
            let (front, back, faults, client) = (front, back, Arc::clone(&faults), client);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !faults.stop.load(Ordering::Relaxed) {
                    let Ok(n) = back.recv(&mut buf) else { continue };
                    let to = *client.lock().unwrap();
                    if let Some(to) = to {
                        if faults.pass(n as u64) {
                            let _ = front.send_to(&buf[..n], to);
                        }
                    }
                }
            })
        };
        UdpProxy {
            addr,
            faults,
            threads: vec![up, down],
        }
    }

    /// `127.0.0.1:PORT` to put in a dits:// URL.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn cut_after(&self, bytes: u64) {
        self.faults.cut_after.store(bytes, Ordering::SeqCst);
    }

    pub fn relayed(&self) -> u64 {
        self.faults.relayed.load(Ordering::SeqCst)
    }

    pub fn is_cut(&self) -> bool {
        self.faults.cut.load(Ordering::SeqCst)
    }

    /// Relays again (a new connection is needed: the old one timed out).
    pub fn restore(&self) {
        self.faults.cut_after.store(0, Ordering::SeqCst);
        self.faults.cut.store(false, Ordering::SeqCst);
    }

    pub fn drop_one_in(&self, n: u32) {
        self.faults.drop_one_in.store(n, Ordering::SeqCst);
    }

    pub fn delay(&self, ms: u32) {
        self.faults.delay_ms.store(ms, Ordering::SeqCst);
    }
}

impl Faults {
    fn pass(&self, n: u64) -> bool {
        if self.cut.load(Ordering::SeqCst) {
            return false;
        }
        let total = self.relayed.fetch_add(n, Ordering::SeqCst) + n;
        let limit = self.cut_after.load(Ordering::SeqCst);
        if limit > 0 && total > limit {
            self.cut.store(true, Ordering::SeqCst);
            return false;
        }
        let every = self.drop_one_in.load(Ordering::Relaxed);
        if every > 0 && self.counter.fetch_add(1, Ordering::Relaxed) % u64::from(every) == 0 {
            return false;
        }
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(u64::from(delay)));
        }
        true
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.faults.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
