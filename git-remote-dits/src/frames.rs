//! Reading and writing protocol frames on QUIC streams (the codec itself is sans-IO in
//! `dits_core::wire`).

use dits_core::wire::{self, FrameHeader, Message, CHUNK_KIND, FRAME_HEADER_LEN};
use dits_core::ChunkId;
use quinn::{ReadExactError, RecvStream, SendStream};

use crate::error::NetError;

/// One direction of a request stream with the peer's name for error messages.
pub struct FrameReader {
    pub recv: RecvStream,
    pub peer: String,
    /// Frames with a longer body are refused before anything is allocated.
    pub limit: usize,
}

pub struct FrameWriter {
    pub send: SendStream,
    pub peer: String,
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn new(recv: RecvStream, peer: &str) -> FrameReader {
        FrameReader {
            recv,
            peer: peer.to_owned(),
            limit: dits_core::wire::MAX_FRAME as usize,
        }
    }

    /// The next message, or `None` if the peer finished the stream at a frame boundary.
    pub async fn next(&mut self) -> Result<Option<Message>, NetError> {
        let mut head = [0u8; FRAME_HEADER_LEN];
        match self.recv.read_exact(&mut head).await {
            Ok(()) => {}
            Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
            Err(e) => return Err(self.lost(e)),
        }
        let header = FrameHeader::parse(head).map_err(|source| self.wire(source))?;
        if header.body_len > self.limit {
            return Err(self.wire(wire::WireError::TooLarge {
                len: u32::try_from(header.body_len + 1).unwrap_or(u32::MAX),
            }));
        }
        if header.kind == CHUNK_KIND && header.body_len >= 32 {
            // Bulk data is read once, into the buffer that carries it on.
            let mut id = [0u8; 32];
            self.recv
                .read_exact(&mut id)
                .await
                .map_err(|e| self.lost(e))?;
            let mut data = vec![0u8; header.body_len - 32];
            self.recv
                .read_exact(&mut data)
                .await
                .map_err(|e| self.lost(e))?;
            return Ok(Some(Message::Chunk {
                id: dits_core::ChunkId(id),
                data,
            }));
        }
        let mut body = vec![0u8; header.body_len];
        self.recv
            .read_exact(&mut body)
            .await
            .map_err(|e| self.lost(e))?;
        Message::decode(header.kind, &body)
            .map(Some)
            .map_err(|source| self.wire(source))
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
        match self.expect("chunk").await? {
            Message::Chunk { id: got, data } if got == id && data.len() as u64 == len => Ok(data),
            Message::Chunk { id: got, .. } if got == id => Err(NetError::BadData {
                peer: self.peer.clone(),
                what: format!("chunk {id} with the wrong length"),
            }),
            other => Err(self.unexpected(&other, "chunk")),
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

    fn lost(&self, e: impl std::fmt::Display) -> NetError {
        NetError::Lost {
            peer: self.peer.clone(),
            reason: e.to_string(),
        }
    }
}

impl FrameWriter {
    pub fn new(send: SendStream, peer: &str) -> FrameWriter {
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
            .map_err(|e| NetError::Lost {
                peer: self.peer.clone(),
                reason: e.to_string(),
            })
    }

    /// Sends a chunk frame without copying `data`: the buffer is handed to QUIC as is.
    pub async fn send_chunk(
        &mut self,
        id: dits_core::ChunkId,
        data: Vec<u8>,
    ) -> Result<(), NetError> {
        let len = u32::try_from(1 + 32 + data.len()).map_err(|_| NetError::Lost {
            peer: self.peer.clone(),
            reason: "chunk too large for a frame".into(),
        })?;
        self.buf.clear();
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.push(CHUNK_KIND);
        self.buf.extend_from_slice(id.as_bytes());
        let lost = |e: quinn::WriteError| NetError::Lost {
            peer: self.peer.clone(),
            reason: e.to_string(),
        };
        self.send.write_all(&self.buf).await.map_err(lost)?;
        self.send
            .write_chunk(bytes::Bytes::from(data))
            .await
            .map_err(|e| NetError::Lost {
                peer: self.peer.clone(),
                reason: e.to_string(),
            })
    }

    /// Ends our side of the stream; the peer reads `None` after the last frame.
    pub fn finish(&mut self) {
        // Already finished or reset: the peer learns of it anyway.
        let _ = self.send.finish();
    }
}

/// Opens a request stream on `conn`.
pub async fn open(
    conn: &quinn::Connection,
    peer: &str,
) -> Result<(FrameWriter, FrameReader), NetError> {
    let (send, recv) = conn.open_bi().await.map_err(|e| NetError::Lost {
        peer: peer.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((FrameWriter::new(send, peer), FrameReader::new(recv, peer)))
}
