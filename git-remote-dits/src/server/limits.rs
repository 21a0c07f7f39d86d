//! What one peer may take of a server: memory for frames still arriving, connections, and
//! time. A token holder cannot inflate the server's memory by declaring large frames and
//! sending a few bytes (bodies grow as bytes arrive, and what is still arriving counts against
//! a budget per connection and in all), cannot open unlimited connections, and nobody can
//! hold a connection open without authenticating.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::frames::Budget;

/// A TLS handshake over TCP must finish within this.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of frames still arriving, all connections together.
    pub frame_bytes: usize,
    /// Bytes of frames still arriving on one connection.
    pub frame_bytes_per_connection: usize,
    /// Connections that have not authenticated yet.
    pub unauthenticated: usize,
    /// Authenticated connections per token.
    pub per_token: usize,
    /// A new connection must authenticate within this.
    pub hello_within: Duration,
    /// A frame must start within this, and arrive at `min_rate` bytes per second.
    pub frame_allowance: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame_bytes: 512 << 20,
            frame_bytes_per_connection: 64 << 20,
            unauthenticated: 256,
            per_token: 32,
            hello_within: Duration::from_secs(10),
            frame_allowance: crate::tls::SERVER_IDLE,
        }
    }
}

/// The live counts behind [`Limits`].
pub struct Gauges {
    pub limits: Limits,
    frames: Arc<Semaphore>,
    unauthenticated: Arc<Semaphore>,
    per_token: Mutex<HashMap<String, usize>>,
}

/// Held while a connection is unauthenticated.
pub type Pending = tokio::sync::OwnedSemaphorePermit;

/// Held while an authenticated connection is open; gives its token's slot back on drop.
pub struct TokenSlot {
    gauges: Arc<Gauges>,
    token: String,
}

impl Drop for TokenSlot {
    fn drop(&mut self) {
        let mut map = self
            .gauges
            .per_token
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.token);
            }
        }
    }
}

impl Gauges {
    pub fn new(limits: Limits) -> Gauges {
        Gauges {
            frames: Arc::new(Semaphore::new(kib(limits.frame_bytes))),
            unauthenticated: Arc::new(Semaphore::new(limits.unauthenticated)),
            per_token: Mutex::new(HashMap::new()),
            limits,
        }
    }

    /// A slot for a new, unauthenticated connection, if one is free.
    pub fn admit(&self) -> Option<Pending> {
        Arc::clone(&self.unauthenticated).try_acquire_owned().ok()
    }

    /// A slot for one more connection of the token with hash `token`, if it has one left.
    pub fn authenticated(self: &Arc<Self>, token: &str) -> Option<TokenSlot> {
        let mut map = self.per_token.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(token.to_owned()).or_insert(0);
        if *n >= self.limits.per_token {
            return None;
        }
        *n += 1;
        Some(TokenSlot {
            gauges: Arc::clone(self),
            token: token.to_owned(),
        })
    }

    /// The frame budget of a new connection.
    pub fn budget(&self) -> Arc<Budget> {
        Arc::new(Budget {
            total: Arc::clone(&self.frames),
            connection: Arc::new(Semaphore::new(kib(self.limits.frame_bytes_per_connection))),
        })
    }
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}
