//! Reading and writing protocol frames on a request stream (the codec itself is sans-IO in
//! `dits_core::wire`). Generic over the stream, so the same code runs on QUIC streams, on
//! multiplexed TCP streams and, in tests, on in-memory pipes.
//!
//! A reader never waits forever and never lets a peer make it hold memory the peer did not
//! send: each frame must arrive within the stream's [`Deadline`] (a fixed allowance plus its
//! length at a minimum rate, so a peer that goes silent or drips a byte a second is cut off),
//! a large body grows as its bytes arrive rather than being allocated at the size the peer
//! declared, and on a server the bytes of frames still arriving count against a [`Budget`].

use std::sync::Arc;
use std::time::Duration;

use dits_core::wire::{self, FrameHeader, Message, CHUNK_KIND, FRAME_HEADER_LEN};
use dits_core::ChunkId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::error::NetError;
use crate::transport::{Connection, RecvHalf, SendHalf};

/// Bodies up to this size are allocated at once; larger ones grow as their bytes arrive.
const EAGER_BODY: usize = 1 << 20;

/// How long a frame may take: `allowance` for it to start and for the rest, plus its length
/// at `min_rate` bytes per second.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub allowance: Duration,
    pub min_rate: u64,
}

impl Deadline {
    /// `dits.timeout` on the client; 64 KiB/s is slower than any link a studio pushes
    /// media over, and faster than any peer that is stalling on purpose.
    pub fn new(allowance: Duration) -> Deadline {
        Deadline {
            allowance,
            min_rate: 64 << 10,
        }
    }

    fn for_bytes(&self, len: usize) -> Duration {
        self.allowance + Duration::from_secs_f64(len as f64 / self.min_rate.max(1) as f64)
    }
}

/// Memory a server lets frames that are still arriving take: in all, and per connection.
/// A frame's declared length is taken from both before its body is read (waiting if need
/// be) and given back once the frame is complete.
pub struct Budget {
    pub total: Arc<Semaphore>,
    pub connection: Arc<Semaphore>,
}

/// Permits are counted in KiB so that a budget of gigabytes fits the semaphore's range.
fn kib(len: usize) -> u32 {
    u32::try_from(len.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// One direction of a request stream with the peer's name for error messages.
pub struct FrameReader<R = RecvHalf> {
    pub recv: R,
    pub peer: String,
    /// Frames with a longer body are refused before anything is allocated.
    pub limit: usize,
    pub deadline: Deadline,
    pub budget: Option<Arc<Budget>>,
}

pub struct FrameWriter<W = SendHalf> {
    pub send: W,
    pub peer: String,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin + Send> FrameReader<R> {
    pub fn new(recv: R, peer: &str, deadline: Deadline) -> FrameReader<R> {
        FrameReader {
            recv,
            peer: peer.to_owned(),
            limit: wire::MAX_FRAME as usize,
            deadline,
            budget: None,
        }
    }

    /// The next message, or `None` if the peer finished the stream at a frame boundary.
    pub async fn next(&mut self) -> Result<Option<Message>, NetError> {
        self.next_sized(None).await
    }

    /// [`Self::next`], knowing the body's length when the caller expects a chunk of a known
    /// size (it is then read straight into its buffer).
    async fn next_sized(&mut self, expect: Option<usize>) -> Result<Option<Message>, NetError> {
        let mut head = [0u8; FRAME_HEADER_LEN];
        // The peer may finish the stream here; anywhere else the stream ending is a loss.
        let (peer, deadline) = (self.peer.clone(), self.deadline);
        let first = timed(
            &peer,
            deadline,
            FRAME_HEADER_LEN,
            self.recv.read(&mut head[..1]),
        )
        .await?;
        if first == 0 {
            return Ok(None);
        }
        let rest = &mut head[1..];
        timed(
            &peer,
            deadline,
            FRAME_HEADER_LEN,
            self.recv.read_exact(rest),
        )
        .await?;
        let header = FrameHeader::parse(head).map_err(|source| self.wire(source))?;
        if header.body_len > self.limit {
            return Err(self.wire(wire::WireError::TooLarge {
                len: u32::try_from(header.body_len + 1).unwrap_or(u32::MAX),
            }));
        }
        let _permits = match &self.budget {
            Some(b) if header.body_len > EAGER_BODY => {
                let n = kib(header.body_len);
                let conn = Arc::clone(&b.connection).acquire_many_owned(n);
                let total = Arc::clone(&b.total).acquire_many_owned(n);
                Some((conn.await.ok(), total.await.ok()))
            }
            _ => None,
        };
        if header.kind == CHUNK_KIND && header.body_len >= 32 {
            // Bulk data is read once, into the buffer that carries it on.
            let mut id = [0u8; 32];
            timed(&peer, deadline, 32, self.recv.read_exact(&mut id)).await?;
            let len = header.body_len - 32;
            let data = self.body(len, expect == Some(len)).await?;
            return Ok(Some(Message::Chunk {
                id: ChunkId(id),
                data,
            }));
        }
        let body = self.body(header.body_len, false).await?;
        Message::decode(header.kind, &body)
            .map(Some)
            .map_err(|source| self.wire(source))
    }

    /// A body of `len` bytes: allocated at once if small or `expected` (the caller knows the
    /// length from a manifest), else grown as the bytes arrive.
    async fn body(&mut self, len: usize, expected: bool) -> Result<Vec<u8>, NetError> {
        let deadline = self.deadline.for_bytes(len);
        let peer = self.peer.clone();
        let recv = &mut self.recv;
        let read = async move {
            if expected || len <= EAGER_BODY {
                let mut data = vec![0u8; len];
                recv.read_exact(&mut data).await?;
                return Ok::<_, std::io::Error>(data);
            }
            let mut data = Vec::with_capacity(EAGER_BODY);
            while data.len() < len {
                let want = (len - data.len()).min(data.capacity().max(EAGER_BODY));
                data.reserve(want);
                let n = (&mut *recv).take(want as u64).read_buf(&mut data).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            Ok(data)
        };
        match tokio::time::timeout(deadline, read).await {
            Ok(Ok(data)) => Ok(data),
            Ok(Err(e)) => Err(lost(&peer, &e)),
            Err(_) => Err(stalled(&peer, len, deadline)),
        }
    }

    /// The next message, which must exist; an `Error` frame becomes [`NetError::Remote`].
    pub async fn expect(&mut self, expected: &'static str) -> Result<Message, NetError> {
        match self.next().await? {
            Some(Message::Error { code, message }) => Err(NetError::Remote { code, message }),
            Some(m) => Ok(m),
            None => Err(NetError::Lost {
                peer: self.peer.clone(),
                reason: format!("the stream ended where {expected} was expected"),
            }),
        }
    }

    /// The next frame as chunk `id` of `len` bytes (the length is known from a manifest, so
    /// a wrong one is refused before anything else is read). Not verified here.
    pub async fn expect_chunk(&mut self, id: ChunkId, len: u64) -> Result<Vec<u8>, NetError> {
        let got = self.next_sized(usize::try_from(len).ok()).await?;
        match got {
            Some(Message::Chunk { id: got, data }) if got == id && data.len() as u64 == len => {
                Ok(data)
            }
            Some(Message::Chunk { id: got, .. }) if got == id => Err(NetError::BadData {
                peer: self.peer.clone(),
                what: format!("chunk {id} with the wrong length"),
            }),
            Some(Message::Error { code, message }) => Err(NetError::Remote { code, message }),
            Some(other) => Err(self.unexpected(&other, "chunk")),
            None => Err(NetError::Lost {
                peer: self.peer.clone(),
                reason: "the stream ended where a chunk was expected".into(),
            }),
        }
    }

    pub fn unexpected(&self, got: &Message, expected: &'static str) -> NetError {
        NetError::Unexpected {
            peer: self.peer.clone(),
            got: got.name(),
            expected,
        }
    }

    fn wire(&self, source: wire::WireError) -> NetError {
        NetError::Wire {
            peer: self.peer.clone(),
            source,
        }
    }
}

/// Runs one read of `len` bytes within the deadline.
async fn timed<T>(
    peer: &str,
    deadline: Deadline,
    len: usize,
    op: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, NetError> {
    let waited = deadline.for_bytes(len);
    match tokio::time::timeout(waited, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(lost(peer, &e)),
        Err(_) => Err(stalled(peer, len, waited)),
    }
}

fn lost(peer: &str, e: &dyn std::fmt::Display) -> NetError {
    NetError::Lost {
        peer: peer.to_owned(),
        reason: e.to_string(),
    }
}

fn stalled(peer: &str, len: usize, waited: Duration) -> NetError {
    NetError::Stalled {
        peer: peer.to_owned(),
        what: format!(
            "{len} bytes did not arrive within {:.0} s",
            waited.as_secs_f64()
        ),
    }
}

impl<W: AsyncWrite + Unpin + Send> FrameWriter<W> {
    pub fn new(send: W, peer: &str) -> FrameWriter<W> {
        FrameWriter {
            send,
            peer: peer.to_owned(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, msg: &Message) -> Result<(), NetError> {
        self.buf.clear();
        wire::encode_frame(msg, &mut self.buf);
        self.send
            .write_all(&self.buf)
            .await
            .map_err(|e| lost(&self.peer, &e))
    }
}

impl FrameWriter<SendHalf> {
    /// Sends a chunk frame; on QUIC the buffer is handed over as is, without a copy.
    pub async fn send_chunk(&mut self, id: ChunkId, data: Vec<u8>) -> Result<(), NetError> {
        let len = u32::try_from(1 + 32 + data.len()).map_err(|_| NetError::Lost {
            peer: self.peer.clone(),
            reason: "chunk too large for a frame".into(),
        })?;
        self.buf.clear();
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.push(CHUNK_KIND);
        self.buf.extend_from_slice(id.as_bytes());
        self.send
            .write_all(&self.buf)
            .await
            .map_err(|e| lost(&self.peer, &e))?;
        self.send
            .write_bytes(bytes::Bytes::from(data))
            .await
            .map_err(|e| lost(&self.peer, &e))
    }

    /// Ends our side of the stream; the peer reads `None` after the last frame.
    pub async fn finish(&mut self) {
        self.send.finish().await;
    }
}

/// Opens a request stream on `conn`.
pub async fn open(
    conn: &Connection,
    peer: &str,
    deadline: Deadline,
) -> Result<(FrameWriter, FrameReader), NetError> {
    let (send, recv) = conn.open_bi().await.map_err(|reason| NetError::Lost {
        peer: peer.to_owned(),
        reason,
    })?;
    Ok((
        FrameWriter::new(send, peer),
        FrameReader::new(recv, peer, deadline),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dits_core::wire::encode_frame;

    #[tokio::test]
    async fn a_peer_that_goes_silent_or_drips_is_cut_off() {
        let deadline = Deadline {
            allowance: Duration::from_millis(200),
            min_rate: 1000,
        };
        // Silent after the first half of a header.
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        tx.write_all(&[9, 0]).await.expect("write");
        let mut r = FrameReader::new(rx, "test peer", deadline);
        let err = r.next().await.expect_err("silent");
        assert!(matches!(err, NetError::Stalled { .. }), "{err}");
        assert!(err.retryable());
        // A body dripped slower than the minimum rate.
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut frame = Vec::new();
        encode_frame(&Message::ManifestTop { top: vec![7; 5000] }, &mut frame);
        let drip = tokio::spawn(async move {
            for b in frame {
                if tx.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let mut r = FrameReader::new(rx, "test peer", deadline);
        let err = r.next().await.expect_err("dripping");
        assert!(matches!(err, NetError::Stalled { .. }), "{err}");
        drip.abort();
    }

    #[tokio::test]
    async fn a_declared_length_is_not_allocated_before_its_bytes_arrive() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut head = ((16u32 << 20) + 1).to_le_bytes().to_vec();
        head.push(0x32); // manifest-top
        head.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        tx.write_all(&head).await.expect("write");
        drop(tx);
        let budget = Arc::new(Budget {
            total: Arc::new(Semaphore::new(32 << 10)),
            connection: Arc::new(Semaphore::new(32 << 10)),
        });
        let mut r = FrameReader::new(rx, "test peer", Deadline::new(Duration::from_secs(5)));
        r.budget = Some(Arc::clone(&budget));
        let err = r.next().await.expect_err("cut short");
        assert!(matches!(err, NetError::Lost { .. }), "{err}");
        assert_eq!(
            budget.total.available_permits(),
            32 << 10,
            "permits given back"
        );
    }
}
