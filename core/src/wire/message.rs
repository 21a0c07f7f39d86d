//! The messages of protocol version 1 and their bodies. Integers are little-endian; a string
//! is `len u16 | UTF-8`; an id list is a whole number of 32-byte ids filling the body.

use super::codec::WireError;
use crate::id::{ChunkId, FileId};
use crate::locks::{LockCall, LockReply};

/// Frame type of [`Message::Chunk`], whose body is `id [32] | data`: readers may read the
/// data straight into its own buffer.
pub const CHUNK_KIND: u8 = kind::CHUNK;

/// The protocol version this build speaks; the first exchange settles on it or fails.
pub const PROTOCOL_VERSION: u16 = 1;

/// What a token lets a client do with one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rights {
    Read,
    Write,
    /// Write, and break other users' locks.
    Admin,
}

impl Rights {
    /// The word tokens files and listings use.
    pub fn as_str(self) -> &'static str {
        match self {
            Rights::Read => "read",
            Rights::Write => "write",
            Rights::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Rights> {
        match name {
            "read" => Some(Rights::Read),
            "write" => Some(Rights::Write),
            "admin" => Some(Rights::Admin),
            _ => None,
        }
    }
}

/// Why a request failed. Each code says whether trying again can help ([`ErrorCode::retryable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    AuthRequired,
    Forbidden,
    NotFound,
    UnsupportedVersion,
    InvalidRepo,
    CorruptChunk,
    MissingObjects,
    Internal,
    Busy,
    /// A code from a newer peer.
    Other(u16),
}

impl ErrorCode {
    fn to_u16(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 1,
            ErrorCode::AuthRequired => 2,
            ErrorCode::Forbidden => 3,
            ErrorCode::NotFound => 4,
            ErrorCode::UnsupportedVersion => 5,
            ErrorCode::InvalidRepo => 6,
            ErrorCode::CorruptChunk => 7,
            ErrorCode::MissingObjects => 8,
            ErrorCode::Internal => 9,
            ErrorCode::Busy => 10,
            ErrorCode::Other(n) => n,
        }
    }

    fn from_u16(n: u16) -> ErrorCode {
        match n {
            1 => ErrorCode::BadRequest,
            2 => ErrorCode::AuthRequired,
            3 => ErrorCode::Forbidden,
            4 => ErrorCode::NotFound,
            5 => ErrorCode::UnsupportedVersion,
            6 => ErrorCode::InvalidRepo,
            7 => ErrorCode::CorruptChunk,
            8 => ErrorCode::MissingObjects,
            9 => ErrorCode::Internal,
            10 => ErrorCode::Busy,
            n => ErrorCode::Other(n),
        }
    }

    /// Whether the same request may succeed later without anyone changing anything: a server
    /// that is busy or hit a local fault. Auth, validation and missing data need a change first.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorCode::Internal | ErrorCode::Busy)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// First frame of a connection, client to server.
    Hello {
        version: u16,
        capabilities: Vec<String>,
        repo: String,
        token: Option<String>,
        agent: String,
    },
    /// The server accepts the hello.
    Welcome {
        version: u16,
        capabilities: Vec<String>,
        rights: Rights,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    /// A request succeeded and has nothing else to say.
    Done,
    /// Which of these chunks does the server have? Answered by a [`Message::Bitmap`].
    HasChunks {
        ids: Vec<ChunkId>,
    },
    /// Which of these files does the server have complete (manifest and every chunk)?
    HasFiles {
        ids: Vec<FileId>,
    },
    /// Bit i (LSB first) set: the i-th id asked about is present.
    Bitmap {
        count: u32,
        bits: Vec<u8>,
    },
    /// Opens an upload stream: batches of [`Message::Chunk`] each ended by [`Message::BatchEnd`].
    PutChunks,
    Chunk {
        id: ChunkId,
        data: Vec<u8>,
    },
    /// End of a batch; the receiver makes it durable, then answers [`Message::BatchAck`].
    BatchEnd,
    BatchAck {
        chunks: u32,
        bytes: u64,
    },
    /// A top-level manifest whose groups and chunks were uploaded before.
    PutManifest {
        top: Vec<u8>,
    },
    /// Asks for chunks; answered by one [`Message::Chunk`] per id, in order, then `BatchEnd`.
    GetChunks {
        ids: Vec<ChunkId>,
    },
    GetManifest {
        id: FileId,
    },
    ManifestTop {
        top: Vec<u8>,
    },
    /// Turns the stream into a tunnel to `git-upload-pack` or `git-receive-pack`.
    Git {
        service: String,
        protocol: String,
    },
    /// The git process runs; raw bytes follow in both directions.
    GitReady,
    /// A request about locks (body: JSON), answered by one [`Message::LockReply`].
    Lock(LockCall),
    LockReply(LockReply),
}

mod kind {
    pub const HELLO: u8 = 0x01;
    pub const WELCOME: u8 = 0x02;
    pub const ERROR: u8 = 0x03;
    pub const DONE: u8 = 0x04;
    pub const HAS_CHUNKS: u8 = 0x10;
    pub const HAS_FILES: u8 = 0x11;
    pub const BITMAP: u8 = 0x12;
    pub const PUT_CHUNKS: u8 = 0x20;
    pub const CHUNK: u8 = 0x21;
    pub const BATCH_END: u8 = 0x22;
    pub const BATCH_ACK: u8 = 0x23;
    pub const PUT_MANIFEST: u8 = 0x24;
    pub const GET_CHUNKS: u8 = 0x30;
    pub const GET_MANIFEST: u8 = 0x31;
    pub const MANIFEST_TOP: u8 = 0x32;
    pub const GIT: u8 = 0x40;
    pub const GIT_READY: u8 = 0x41;
    pub const LOCK: u8 = 0x50;
    pub const LOCK_REPLY: u8 = 0x51;
}

impl Message {
    pub fn kind(&self) -> u8 {
        match self {
            Message::Hello { .. } => kind::HELLO,
            Message::Welcome { .. } => kind::WELCOME,
            Message::Error { .. } => kind::ERROR,
            Message::Done => kind::DONE,
            Message::HasChunks { .. } => kind::HAS_CHUNKS,
            Message::HasFiles { .. } => kind::HAS_FILES,
            Message::Bitmap { .. } => kind::BITMAP,
            Message::PutChunks => kind::PUT_CHUNKS,
            Message::Chunk { .. } => kind::CHUNK,
            Message::BatchEnd => kind::BATCH_END,
            Message::BatchAck { .. } => kind::BATCH_ACK,
            Message::PutManifest { .. } => kind::PUT_MANIFEST,
            Message::GetChunks { .. } => kind::GET_CHUNKS,
            Message::GetManifest { .. } => kind::GET_MANIFEST,
            Message::ManifestTop { .. } => kind::MANIFEST_TOP,
            Message::Git { .. } => kind::GIT,
            Message::GitReady => kind::GIT_READY,
            Message::Lock(_) => kind::LOCK,
            Message::LockReply(_) => kind::LOCK_REPLY,
        }
    }

    /// A short name for errors and logs.
    pub fn name(&self) -> &'static str {
        name_of(self.kind())
    }

    pub(super) fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello {
                version,
                capabilities,
                repo,
                token,
                agent,
            } => {
                out.extend_from_slice(&version.to_le_bytes());
                put_strings(out, capabilities);
                put_str(out, repo);
                match token {
                    Some(t) => {
                        out.push(1);
                        put_str(out, t);
                    }
                    None => out.push(0),
                }
                put_str(out, agent);
            }
            Message::Welcome {
                version,
                capabilities,
                rights,
            } => {
                out.extend_from_slice(&version.to_le_bytes());
                put_strings(out, capabilities);
                out.push(match rights {
                    Rights::Read => 1,
                    Rights::Write => 2,
                    Rights::Admin => 3,
                });
            }
            Message::Error { code, message } => {
                out.extend_from_slice(&code.to_u16().to_le_bytes());
                put_str(out, message);
            }
            Message::HasChunks { ids } | Message::GetChunks { ids } => {
                for id in ids {
                    out.extend_from_slice(id.as_bytes());
                }
            }
            Message::HasFiles { ids } => {
                for id in ids {
                    out.extend_from_slice(id.as_bytes());
                }
            }
            Message::Bitmap { count, bits } => {
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(bits);
            }
            Message::Chunk { id, data } => {
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(data);
            }
            Message::BatchAck { chunks, bytes } => {
                out.extend_from_slice(&chunks.to_le_bytes());
                out.extend_from_slice(&bytes.to_le_bytes());
            }
            Message::PutManifest { top } | Message::ManifestTop { top } => {
                out.extend_from_slice(top);
            }
            Message::GetManifest { id } => out.extend_from_slice(id.as_bytes()),
            Message::Git { service, protocol } => {
                put_str(out, service);
                put_str(out, protocol);
            }
            // Serialising these plain data types cannot fail.
            Message::Lock(call) => {
                let _ = serde_json::to_writer(&mut *out, call);
            }
            Message::LockReply(reply) => {
                let _ = serde_json::to_writer(&mut *out, reply);
            }
            Message::Done | Message::PutChunks | Message::BatchEnd | Message::GitReady => {}
        }
    }

    /// Decodes a body of frame type `kind` (the codec's second half, for callers that read
    /// the header themselves).
    pub fn decode(kind: u8, body: &[u8]) -> Result<Message, WireError> {
        let name = name_of(kind);
        let mut r = Reader { body, name };
        let msg = match kind {
            kind::HELLO => {
                let version = r.u16()?;
                let capabilities = r.strings()?;
                let repo = r.string()?;
                let token = match r.u8()? {
                    0 => None,
                    1 => Some(r.string()?),
                    _ => return Err(r.malformed("token flag is neither 0 nor 1")),
                };
                let agent = r.string()?;
                Message::Hello {
                    version,
                    capabilities,
                    repo,
                    token,
                    agent,
                }
            }
            kind::WELCOME => {
                let version = r.u16()?;
                let capabilities = r.strings()?;
                let rights = match r.u8()? {
                    1 => Rights::Read,
                    2 => Rights::Write,
                    3 => Rights::Admin,
                    _ => return Err(r.malformed("unknown rights")),
                };
                Message::Welcome {
                    version,
                    capabilities,
                    rights,
                }
            }
            kind::ERROR => Message::Error {
                code: ErrorCode::from_u16(r.u16()?),
                message: r.string()?,
            },
            kind::DONE => Message::Done,
            kind::HAS_CHUNKS => Message::HasChunks {
                ids: r.ids()?.into_iter().map(ChunkId).collect(),
            },
            kind::GET_CHUNKS => Message::GetChunks {
                ids: r.ids()?.into_iter().map(ChunkId).collect(),
            },
            kind::HAS_FILES => Message::HasFiles {
                ids: r.ids()?.into_iter().map(FileId).collect(),
            },
            kind::BITMAP => {
                let count = r.u32()?;
                let bits = r.rest().to_vec();
                if bits.len() != (count as usize).div_ceil(8) {
                    return Err(r.malformed("bitmap length does not match its count"));
                }
                Message::Bitmap { count, bits }
            }
            kind::PUT_CHUNKS => Message::PutChunks,
            kind::CHUNK => Message::Chunk {
                id: ChunkId(r.id()?),
                data: r.rest().to_vec(),
            },
            kind::BATCH_END => Message::BatchEnd,
            kind::BATCH_ACK => Message::BatchAck {
                chunks: r.u32()?,
                bytes: r.u64()?,
            },
            kind::PUT_MANIFEST => Message::PutManifest {
                top: r.rest().to_vec(),
            },
            kind::MANIFEST_TOP => Message::ManifestTop {
                top: r.rest().to_vec(),
            },
            kind::GET_MANIFEST => Message::GetManifest {
                id: FileId(r.id()?),
            },
            kind::GIT => Message::Git {
                service: r.string()?,
                protocol: r.string()?,
            },
            kind::GIT_READY => Message::GitReady,
            kind::LOCK => Message::Lock(
                serde_json::from_slice(r.rest())
                    .map_err(|_| r.malformed("not a lock request (JSON)"))?,
            ),
            kind::LOCK_REPLY => Message::LockReply(
                serde_json::from_slice(r.rest())
                    .map_err(|_| r.malformed("not a lock answer (JSON)"))?,
            ),
            other => return Err(WireError::UnknownType(other)),
        };
        if !r.body.is_empty() {
            return Err(r.malformed("trailing bytes"));
        }
        Ok(msg)
    }

    /// Bit `i` of a [`Message::Bitmap`] body.
    pub fn bit(bits: &[u8], i: usize) -> bool {
        bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// Packs booleans into a [`Message::Bitmap`].
    pub fn bitmap(present: impl IntoIterator<Item = bool>) -> Message {
        let mut bits = Vec::new();
        let mut count = 0u32;
        for (i, p) in present.into_iter().enumerate() {
            if i % 8 == 0 {
                bits.push(0);
            }
            if p {
                *bits.last_mut().expect("pushed above") |= 1 << (i % 8);
            }
            count += 1;
        }
        Message::Bitmap { count, bits }
    }
}

fn name_of(kind: u8) -> &'static str {
    match kind {
        kind::HELLO => "hello",
        kind::WELCOME => "welcome",
        kind::ERROR => "error",
        kind::DONE => "done",
        kind::HAS_CHUNKS => "has-chunks",
        kind::HAS_FILES => "has-files",
        kind::BITMAP => "bitmap",
        kind::PUT_CHUNKS => "put-chunks",
        kind::CHUNK => "chunk",
        kind::BATCH_END => "batch-end",
        kind::BATCH_ACK => "batch-ack",
        kind::PUT_MANIFEST => "put-manifest",
        kind::GET_CHUNKS => "get-chunks",
        kind::GET_MANIFEST => "get-manifest",
        kind::MANIFEST_TOP => "manifest",
        kind::GIT => "git",
        kind::GIT_READY => "git-ready",
        kind::LOCK => "lock",
        kind::LOCK_REPLY => "lock-reply",
        _ => "unknown",
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Strings are names, paths and messages; longer ones are cut at a char boundary.
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn put_strings(out: &mut Vec<u8>, list: &[String]) {
    let n = list.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(n as u16).to_le_bytes());
    for s in &list[..n] {
        put_str(out, s);
    }
}

struct Reader<'a> {
    body: &'a [u8],
    name: &'static str,
}

impl<'a> Reader<'a> {
    fn malformed(&self, reason: &'static str) -> WireError {
        WireError::Malformed {
            kind: self.name,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.body.len() < n {
            return Err(self.malformed("body too short"));
        }
        let (head, tail) = self.body.split_at(n);
        self.body = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn id(&mut self) -> Result<[u8; 32], WireError> {
        Ok(self.take(32)?.try_into().expect("32 bytes"))
    }

    fn string(&mut self) -> Result<String, WireError> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.malformed("string is not UTF-8"))
    }

    fn strings(&mut self) -> Result<Vec<String>, WireError> {
        let n = self.u16()?;
        (0..n).map(|_| self.string()).collect()
    }

    fn ids(&mut self) -> Result<Vec<[u8; 32]>, WireError> {
        if self.body.len() % 32 != 0 {
            return Err(self.malformed("id list is not a multiple of 32 bytes"));
        }
        let ids = self
            .body
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        self.body = &[];
        Ok(ids)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.body)
    }
}
