//! The Dits wire protocol, sans IO: how requests and answers are laid out as frames on a QUIC
//! stream. The network crate moves the bytes; everything that parses bytes from a peer lives
//! here, so it can be unit-tested and fuzzed without sockets. Specified in docs/protocol.md.

mod codec;
mod message;

pub use codec::{decode_frame, encode_frame, FrameHeader, WireError, FRAME_HEADER_LEN, MAX_FRAME};
pub use message::{ErrorCode, Message, Rights, CHUNK_KIND, PROTOCOL_VERSION};

/// ALPN name of the protocol; a TLS peer that does not speak it is refused in the handshake.
pub const ALPN: &[u8] = b"dits/1";

/// Ids per have/want query, so a query frame stays well under [`MAX_FRAME`] (8192 × 32 B).
pub const MAX_IDS_PER_QUERY: usize = 8192;
