//! Work behind git's `delay` capability: fetching content that is not in the local store runs
//! on worker threads while git goes on sending other files; git collects the finished ones
//! with `list_available_blobs` and asks for them again.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use dits_core::store::DiskStore;
use dits_core::transfer::{ensure_local, FileSource};
use dits_core::FileId;

#[derive(Default)]
struct State {
    pending: usize,
    ready: Vec<Vec<u8>>,
    failed: HashMap<Vec<u8>, String>,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

pub struct Delayer {
    state: Shared,
    jobs: Option<mpsc::Sender<(Vec<u8>, FileId)>>,
    workers: Vec<JoinHandle<()>>,
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    // Workers never panic while holding the lock (they only update counters), so a poisoned
    // lock still holds consistent state.
    state.0.lock().unwrap_or_else(|p| p.into_inner())
}

impl Delayer {
    pub fn new(
        store: Arc<DiskStore>,
        sources: Arc<Vec<Arc<dyn FileSource>>>,
        threads: usize,
    ) -> Delayer {
        let state: Shared = Arc::default();
        let (tx, rx) = mpsc::channel::<(Vec<u8>, FileId)>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads.max(1))
            .map(|_| {
                let (state, rx, store, sources) = (
                    Arc::clone(&state),
                    Arc::clone(&rx),
                    Arc::clone(&store),
                    Arc::clone(&sources),
                );
                std::thread::spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((path, id)) = job else { return };
                    let result = ensure_local(&store, &sources, &id);
                    let mut s = lock(&state);
                    s.pending -= 1;
                    if let Err(e) = result {
                        s.failed.insert(path.clone(), e.to_string());
                    }
                    s.ready.push(path);
                    state.1.notify_all();
                })
            })
            .collect();
        Delayer {
            state,
            jobs: Some(tx),
            workers,
        }
    }

    pub fn submit(&self, path: Vec<u8>, id: FileId) {
        lock(&self.state).pending += 1;
        if let Some(tx) = &self.jobs {
            if tx.send((path.clone(), id)).is_err() {
                let mut s = lock(&self.state);
                s.pending -= 1;
                s.failed
                    .insert(path.clone(), "worker threads stopped".into());
                s.ready.push(path);
            }
        }
    }

    /// Blocks until at least one job is done, unless none is pending; returns the finished
    /// paths (empty when there is nothing left).
    pub fn wait_ready(&self) -> Vec<Vec<u8>> {
        let mut s = lock(&self.state);
        while s.ready.is_empty() && s.pending > 0 {
            s = self.state.1.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        std::mem::take(&mut s.ready)
    }

    /// Why fetching `path` failed, if it did.
    pub fn take_failure(&self, path: &[u8]) -> Option<String> {
        lock(&self.state).failed.remove(path)
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
