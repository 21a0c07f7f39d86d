//! The transfer log, `<root>/server/transfer.log`: one line per batch moved, so an operator
//! (and the tests) can see exactly what crossed the wire:
//!
//! ```text
//! <unix seconds> conn=<n> repo=<path> op=<put|get|manifest> chunks=<n> bytes=<payload bytes>
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use crate::error::NetError;

pub struct TransferLog {
    file: Mutex<File>,
}

impl TransferLog {
    pub fn open(root: &Path) -> Result<TransferLog, NetError> {
        let path = root.join("server").join("transfer.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| NetError::io(format!("opening {}", path.display()), e))?;
        Ok(TransferLog {
            file: Mutex::new(file),
        })
    }

    pub fn record(&self, conn: u64, repo: &str, op: &str, chunks: u64, bytes: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let line = format!("{now} conn={conn} repo={repo} op={op} chunks={chunks} bytes={bytes}\n");
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line (O_APPEND): lines never interleave. A failed log write must not
        // fail the transfer it describes.
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::warn!("cannot write the transfer log: {e}");
        }
    }
}
