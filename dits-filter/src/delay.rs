//! Work behind git's `delay` capability: fetching content that is not in the local store runs
//! on worker threads while git goes on sending other files; git collects the finished ones
//! with `list_available_blobs` and asks for them again.
//!
//! A file Dits will write itself after git (one of at least `dits.smudge.inlineLimit` bytes)
//! is also written on the way, into a temp file, from the chunks as they land
//! (`dits_core::prepared`): the fetch and the writing overlap, and nothing is read back.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use dits_core::progress::Silent;
use dits_core::source::ContentSource;
use dits_core::store::DiskStore;
use dits_core::transfer::{ensure_local, ensure_prepared, fetch_all, FetchedAll};
use dits_core::worktree::Prepared;
use dits_core::Pointer;

use crate::meter::{BatchMeter, FileMeter, Meter};

#[derive(Default)]
struct State {
    pending: usize,
    ready: Vec<Vec<u8>>,
    failed: HashMap<Vec<u8>, String>,
    prepared: HashMap<Vec<u8>, Prepared>,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

struct Job {
    path: Vec<u8>,
    pointer: Pointer,
    /// Whether to write the file into a temp file while fetching it.
    prepare: bool,
    meter: FileMeter,
}

pub struct Delayer {
    state: Shared,
    jobs: Option<crossbeam_channel::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    meter: Meter,
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    // Workers never panic while holding the lock (they only update counters), so a poisoned
    // lock still holds consistent state.
    state.0.lock().unwrap_or_else(|p| p.into_inner())
}

impl Delayer {
    pub fn new(
        store: Arc<DiskStore>,
        sources: Arc<Vec<Arc<dyn ContentSource>>>,
        threads: usize,
    ) -> Delayer {
        let state: Shared = Arc::default();
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let workers = (0..threads.max(1))
            .map(|_| {
                let (state, rx, store, sources) = (
                    Arc::clone(&state),
                    rx.clone(),
                    Arc::clone(&store),
                    Arc::clone(&sources),
                );
                std::thread::spawn(move || {
                    let mut held = None;
                    while let Some(batch) = next_batch(&rx, &mut held) {
                        let results = match &batch[..] {
                            [one] if one.prepare => vec![fetch_prepared(&store, &sources, one)],
                            jobs => fetch_batch(&store, &sources, jobs),
                        };
                        let mut s = lock(&state);
                        for (job, (prepared, result)) in batch.into_iter().zip(results) {
                            job.meter.done(result.is_ok());
                            s.pending -= 1;
                            if let Err(e) = result {
                                s.failed.insert(job.path.clone(), e);
                            }
                            if let Some(p) = prepared {
                                s.prepared.insert(job.path.clone(), p);
                            }
                            s.ready.push(job.path);
                        }
                        state.1.notify_all();
                    }
                })
            })
            .collect();
        Delayer {
            state,
            jobs: Some(tx),
            workers,
            meter: Meter::new(),
        }
    }

    /// Fetches `pointer`'s content for `path`; with `prepare`, also writes it into a temp
    /// file on the way (see [`Delayer::take_prepared`]).
    pub fn submit(&self, path: Vec<u8>, pointer: Pointer, prepare: bool) {
        lock(&self.state).pending += 1;
        if let Some(tx) = &self.jobs {
            let job = Job {
                path: path.clone(),
                pointer,
                prepare,
                meter: self.meter.add(pointer.size),
            };
            if tx.send(job).is_err() {
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

    /// The content of `path` written while it was fetched, if it was.
    pub fn take_prepared(&self, path: &[u8]) -> Option<Prepared> {
        lock(&self.state).prepared.remove(path)
    }

    /// Every failure so far, `(path, why)`, without taking them.
    pub fn failures(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = lock(&self.state)
            .failed
            .iter()
            .map(|(p, why)| (String::from_utf8_lossy(p).into_owned(), why.clone()))
            .collect();
        out.sort();
        out
    }

    /// Ends the progress line (or prints the summary): git has collected every file.
    pub fn finish_meter(&mut self) {
        self.meter.finish();
    }

    /// Why fetching `path` failed, if it did.
    pub fn take_failure(&self, path: &[u8]) -> Option<String> {
        lock(&self.state).failed.remove(path)
    }
}

/// Small files are fetched together: one request for all their manifests and one stream of
/// their chunks instead of three round trips per file. A batch is what has queued up while the
/// worker was busy, so a burst of smudges from git becomes a few large requests.
const BATCH_FILES: usize = 512;
const BATCH_BYTES: u64 = 64 << 20;

/// The next job to run alone (a file written while it is fetched), or the small files queued
/// now, up to [`BATCH_FILES`] or [`BATCH_BYTES`]. A large file met on the way is `held` for
/// the next call. `None` once the queue is closed and drained.
fn next_batch(rx: &crossbeam_channel::Receiver<Job>, held: &mut Option<Job>) -> Option<Vec<Job>> {
    let first = match held.take() {
        Some(job) => job,
        None => rx.recv().ok()?,
    };
    if first.prepare {
        return Some(vec![first]);
    }
    let mut bytes = first.pointer.size;
    let mut batch = vec![first];
    while batch.len() < BATCH_FILES && bytes < BATCH_BYTES {
        match rx.try_recv() {
            Ok(job) if job.prepare => {
                *held = Some(job);
                break;
            }
            Ok(job) => {
                bytes += job.pointer.size;
                batch.push(job);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

/// A large file, fetched alone and written into a temp file on the way.
fn fetch_prepared(
    store: &DiskStore,
    sources: &[Arc<dyn ContentSource>],
    job: &Job,
) -> (Option<Prepared>, Result<(), String>) {
    let pointer = &job.pointer;
    match ensure_prepared(store, sources, pointer, &store.tmp_dir(), &job.meter) {
        Ok(p) => (Some(p), Ok(())),
        // The content may have arrived even so (only writing the temp file failed): then it
        // is written from the store at the end.
        Err(e) => match ensure_local(store, &[], pointer, &Silent) {
            Ok(_) => {
                tracing::debug!("{}: written from the store later: {e}", pointer.id);
                (None, Ok(()))
            }
            Err(_) => (None, Err(e.to_string())),
        },
    }
}

/// Small files, fetched together.
fn fetch_batch(
    store: &DiskStore,
    sources: &[Arc<dyn ContentSource>],
    jobs: &[Job],
) -> Vec<(Option<Prepared>, Result<(), String>)> {
    let pointers: Vec<Pointer> = jobs.iter().map(|j| j.pointer).collect();
    let meters: Vec<&FileMeter> = jobs.iter().map(|j| &j.meter).collect();
    let got = fetch_all(store, sources, &pointers, &BatchMeter::new(&meters));
    let missing: HashMap<_, _> = got
        .missing
        .into_iter()
        .map(|(p, why)| (p.id, why))
        .collect();
    pointers
        .iter()
        .map(|p| match missing.get(&p.id) {
            Some(why) => (None, Err(FetchedAll::reason(p, why))),
            None => (None, Ok(())),
        })
        .collect()
}

impl Drop for Delayer {
    fn drop(&mut self) {
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small files queued together make one batch; a large one ends the batch and runs alone
    /// next, and what follows it starts the next batch.
    #[test]
    fn queued_small_files_batch_and_a_large_one_runs_alone() {
        let meter = Meter::new();
        let (tx, rx) = crossbeam_channel::unbounded();
        let job = |name: &str, prepare: bool| Job {
            path: name.as_bytes().to_vec(),
            pointer: Pointer::new(dits_core::FileId::of(name.as_bytes()), 10),
            prepare,
            meter: meter.add(10),
        };
        for (name, large) in [("a", false), ("b", false), ("big", true), ("c", false)] {
            tx.send(job(name, large)).expect("queued");
        }
        drop(tx);
        let mut held = None;
        let mut rounds = Vec::new();
        while let Some(batch) = next_batch(&rx, &mut held) {
            rounds.push(
                batch
                    .iter()
                    .map(|j| String::from_utf8_lossy(&j.path).into_owned())
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(rounds, [vec!["a", "b"], vec!["big"], vec!["c"]]);
    }
}
