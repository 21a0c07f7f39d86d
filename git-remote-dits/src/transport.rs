//! The two ways a connection carries request streams: QUIC (the default), and TLS 1.3 over
//! TCP with the same streams multiplexed by yamux, for networks that block UDP. Both give the
//! protocol the same thing: an authenticated connection on which either side opens
//! bidirectional streams, each carrying one request. Everything above this module (frames,
//! the client session, the server's handlers, the git tunnel) is written once against
//! [`Connection`], [`SendHalf`] and [`RecvHalf`].
//!
//! A multiplexed connection can run over any byte stream, so the in-process tests run the
//! real server and client code over an in-memory duplex.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

/// How a connection reached its peer (for messages and the benchmark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Quic,
    Tcp,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Quic => "QUIC",
            Kind::Tcp => "TCP",
        })
    }
}

#[derive(Clone)]
pub enum Connection {
    Quic(quinn::Connection),
    Mux(Mux),
}

type MuxStream = Compat<yamux::Stream>;

pub enum SendHalf {
    Quic(quinn::SendStream),
    Mux(tokio::io::WriteHalf<MuxStream>),
    /// A stream of the in-process tests (one end of a duplex).
    Pipe(tokio::io::WriteHalf<tokio::io::DuplexStream>),
}

pub enum RecvHalf {
    Quic(quinn::RecvStream),
    Mux(tokio::io::ReadHalf<MuxStream>),
    Pipe(tokio::io::ReadHalf<tokio::io::DuplexStream>),
}

impl Connection {
    pub fn kind(&self) -> Kind {
        match self {
            Connection::Quic(_) => Kind::Quic,
            Connection::Mux(_) => Kind::Tcp,
        }
    }

    /// Opens a request stream.
    pub async fn open_bi(&self) -> Result<(SendHalf, RecvHalf), String> {
        match self {
            Connection::Quic(c) => c
                .open_bi()
                .await
                .map(|(s, r)| (SendHalf::Quic(s), RecvHalf::Quic(r)))
                .map_err(|e| e.to_string()),
            Connection::Mux(m) => m.open().await.map(split),
        }
    }

    /// The next stream the peer opened; `None` once the connection is closed.
    pub async fn accept_bi(&self) -> Option<(SendHalf, RecvHalf)> {
        match self {
            Connection::Quic(c) => c
                .accept_bi()
                .await
                .ok()
                .map(|(s, r)| (SendHalf::Quic(s), RecvHalf::Quic(r))),
            Connection::Mux(m) => m.accept().await.map(split),
        }
    }

    pub fn close(&self, code: u32, reason: &[u8]) {
        match self {
            Connection::Quic(c) => c.close(code.into(), reason),
            Connection::Mux(m) => m.close(),
        }
    }

    /// Why the connection ended, if it has.
    pub fn closed(&self) -> Option<String> {
        match self {
            Connection::Quic(c) => c.close_reason().map(|r| r.to_string()),
            Connection::Mux(m) => m
                .shared
                .closed
                .load(Ordering::SeqCst)
                .then(|| "the connection was closed".to_owned()),
        }
    }

    /// Bytes sent and received on the wire so far.
    pub fn wire_bytes(&self) -> (u64, u64) {
        match self {
            Connection::Quic(c) => {
                let s = c.stats();
                (s.udp_tx.bytes, s.udp_rx.bytes)
            }
            Connection::Mux(m) => (
                m.shared.sent.load(Ordering::Relaxed),
                m.shared.received.load(Ordering::Relaxed),
            ),
        }
    }
}

fn split(stream: yamux::Stream) -> (SendHalf, RecvHalf) {
    let (r, w) = tokio::io::split(stream.compat());
    (SendHalf::Mux(w), RecvHalf::Mux(r))
}

impl SendHalf {
    /// Hands `data` to the transport; QUIC takes the buffer as it is, without a copy.
    pub async fn write_bytes(&mut self, data: bytes::Bytes) -> io::Result<()> {
        match self {
            SendHalf::Quic(s) => s.write_chunk(data).await.map_err(io::Error::other),
            other => other.write_all(&data).await,
        }
    }

    /// Ends our side of the stream; the peer reads the end after the last byte.
    pub async fn finish(&mut self) {
        match self {
            // Already finished or reset: the peer learns of it anyway.
            SendHalf::Quic(s) => {
                let _ = s.finish();
            }
            other => {
                let _ = other.shutdown().await;
            }
        }
    }

    /// Waits until the peer has received everything sent (QUIC acknowledges; a multiplexed
    /// stream delivers what was queued as long as its connection lives).
    pub async fn delivered(&mut self) {
        if let SendHalf::Quic(s) = self {
            let _ = s.stopped().await;
        }
    }

    /// Abandons the stream: the peer sees it broken, not ended.
    pub fn reset(&mut self) {
        match self {
            SendHalf::Quic(s) => {
                let _ = s.reset(1u32.into());
            }
            // A multiplexed stream has no reset; the caller closes the connection, which the
            // peer sees as a broken stream.
            SendHalf::Mux(_) | SendHalf::Pipe(_) => {}
        }
    }
}

impl AsyncWrite for SendHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SendHalf::Quic(s) => Pin::new(s).poll_write(cx, buf).map_err(io::Error::other),
            SendHalf::Mux(s) => Pin::new(s).poll_write(cx, buf),
            SendHalf::Pipe(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SendHalf::Quic(s) => Pin::new(s).poll_flush(cx),
            SendHalf::Mux(s) => Pin::new(s).poll_flush(cx),
            SendHalf::Pipe(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SendHalf::Quic(s) => Pin::new(s).poll_shutdown(cx),
            SendHalf::Mux(s) => Pin::new(s).poll_shutdown(cx),
            SendHalf::Pipe(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for RecvHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RecvHalf::Quic(s) => Pin::new(s).poll_read(cx, buf),
            RecvHalf::Mux(s) => Pin::new(s).poll_read(cx, buf),
            RecvHalf::Pipe(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

/// A pair of in-memory request streams, for tests of one handler or one exchange:
/// `(client send, client recv)` and `(server send, server recv)`.
pub fn pipe() -> ((SendHalf, RecvHalf), (SendHalf, RecvHalf)) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    (
        (SendHalf::Pipe(aw), RecvHalf::Pipe(ar)),
        (SendHalf::Pipe(bw), RecvHalf::Pipe(br)),
    )
}

struct MuxShared {
    closed: AtomicBool,
    sent: AtomicU64,
    received: AtomicU64,
}

/// A yamux connection, driven by a task of its own (yamux makes progress only while its
/// connection is polled); this handle asks that task for new streams.
#[derive(Clone)]
pub struct Mux {
    open: mpsc::Sender<oneshot::Sender<Result<yamux::Stream, String>>>,
    inbound: Arc<Mutex<mpsc::UnboundedReceiver<yamux::Stream>>>,
    close: Arc<std::sync::Mutex<Option<oneshot::Sender<()>>>>,
    shared: Arc<MuxShared>,
}

impl Mux {
    /// Starts multiplexing over `io` (a TLS stream, or a duplex in tests) on the current
    /// tokio runtime. `server` says which end this is.
    pub fn start<T>(io: T, server: bool) -> Mux
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(MuxShared {
            closed: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        });
        let counted = Counted {
            io,
            shared: Arc::clone(&shared),
        };
        let mut config = yamux::Config::default();
        config.set_max_num_streams(256);
        // Bulk transfers keep a few batches in flight per stream.
        config.set_max_connection_receive_window(Some(256 << 20));
        let mode = if server {
            yamux::Mode::Server
        } else {
            yamux::Mode::Client
        };
        let conn = yamux::Connection::new(counted.compat(), config, mode);
        let (open_tx, open_rx) = mpsc::channel(16);
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let (close_tx, close_rx) = oneshot::channel();
        let driver_shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if let Err(e) = drive(conn, open_rx, in_tx, close_rx).await {
                tracing::debug!("multiplexed connection ended: {e}");
            }
            driver_shared.closed.store(true, Ordering::SeqCst);
        });
        Mux {
            open: open_tx,
            inbound: Arc::new(Mutex::new(in_rx)),
            close: Arc::new(std::sync::Mutex::new(Some(close_tx))),
            shared,
        }
    }

    async fn open(&self) -> Result<yamux::Stream, String> {
        let (tx, rx) = oneshot::channel();
        self.open
            .send(tx)
            .await
            .map_err(|_| "the connection is closed".to_owned())?;
        rx.await
            .map_err(|_| "the connection is closed".to_owned())?
    }

    async fn accept(&self) -> Option<yamux::Stream> {
        self.inbound.lock().await.recv().await
    }

    fn close(&self) {
        if let Some(tx) = self.close.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

type OpenRequest = oneshot::Sender<Result<yamux::Stream, String>>;

async fn drive<T>(
    mut conn: yamux::Connection<T>,
    mut open_rx: mpsc::Receiver<OpenRequest>,
    inbound: mpsc::UnboundedSender<yamux::Stream>,
    mut close_rx: oneshot::Receiver<()>,
) -> Result<(), String>
where
    T: futures_util::io::AsyncRead + futures_util::io::AsyncWrite + Unpin,
{
    let mut waiting: std::collections::VecDeque<OpenRequest> = Default::default();
    let mut closing = false;
    std::future::poll_fn(|cx| {
        if !closing && Pin::new(&mut close_rx).poll(cx).is_ready() {
            closing = true;
        }
        if closing {
            return conn.poll_close(cx).map_err(|e| e.to_string());
        }
        while let Poll::Ready(Some(reply)) = open_rx.poll_recv(cx) {
            waiting.push_back(reply);
        }
        while !waiting.is_empty() {
            match conn.poll_new_outbound(cx) {
                Poll::Ready(r) => {
                    let reply = waiting.pop_front().expect("not empty");
                    let _ = reply.send(r.map_err(|e| e.to_string()));
                }
                Poll::Pending => break,
            }
        }
        loop {
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    // Nobody accepting (a client): the stream is dropped, which refuses it.
                    let _ = inbound.send(stream);
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e.to_string())),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// Counts the bytes a multiplexed connection moves.
struct Counted<T> {
    io: T,
    shared: Arc<MuxShared>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.shared.received.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.shared.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multiplexed_streams_carry_bytes_both_ways_at_once() {
        let (a, b) = tokio::io::duplex(64 << 10);
        let client = Connection::Mux(Mux::start(a, false));
        let server = Connection::Mux(Mux::start(b, true));
        let echo = tokio::spawn(async move {
            while let Some((mut w, mut r)) = server.accept_bi().await {
                tokio::spawn(async move {
                    let mut all = Vec::new();
                    r.read_to_end(&mut all).await.expect("read");
                    w.write_all(&all).await.expect("write");
                    w.finish().await;
                });
            }
        });
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let (mut w, mut r) = client.open_bi().await.expect("open");
                let data = vec![i; 300_000];
                w.write_all(&data).await.expect("write");
                w.finish().await;
                let mut back = Vec::new();
                r.read_to_end(&mut back).await.expect("read");
                assert_eq!(back, data);
            }));
        }
        for t in tasks {
            t.await.expect("stream task");
        }
        let (sent, received) = client.wire_bytes();
        assert!(sent > 8 * 300_000 && received > 8 * 300_000);
        client.close(0, b"done");
        echo.abort();
    }
}
