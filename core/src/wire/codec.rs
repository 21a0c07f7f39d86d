//! Frame layout: `length u32 LE | type u8 | body`, where `length` counts the type byte and the
//! body. A length above [`MAX_FRAME`] is refused before anything is allocated, so a hostile
//! peer cannot make us reserve gigabytes with four bytes.

use super::message::Message;

/// Largest frame accepted: a 16 MiB body (top-level manifests of multi-terabyte files) plus
/// slack for the type byte and small headers. Chunks are at most 256 KiB.
pub const MAX_FRAME: u32 = (16 << 20) + 1024;

/// Bytes before the body: the length and the type byte.
pub const FRAME_HEADER_LEN: usize = 5;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME} bytes")]
    TooLarge { len: u32 },
    #[error("empty frame (a frame has at least a type byte)")]
    Empty,
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    #[error("malformed {kind} frame: {reason}")]
    Malformed {
        kind: &'static str,
        reason: &'static str,
    },
}

/// The fixed part of a frame, parsed from its first [`FRAME_HEADER_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: u8,
    /// Bytes of body that follow the header.
    pub body_len: usize,
}

impl FrameHeader {
    pub fn parse(head: [u8; FRAME_HEADER_LEN]) -> Result<FrameHeader, WireError> {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if len == 0 {
            return Err(WireError::Empty);
        }
        if len > MAX_FRAME {
            return Err(WireError::TooLarge { len });
        }
        Ok(FrameHeader {
            kind: head[4],
            body_len: len as usize - 1,
        })
    }
}

/// Appends `msg` as one frame to `out`.
pub fn encode_frame(msg: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(msg.kind());
    msg.encode_body(out);
    let len = u32::try_from(out.len() - start - 4).expect("message bodies are bounded");
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Decodes one frame from the front of `buf`: `Ok(None)` if more bytes are needed, else the
/// message and the number of bytes it used.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Message, usize)>, WireError> {
    let Some(head) = buf.get(..FRAME_HEADER_LEN) else {
        return Ok(None);
    };
    let header = FrameHeader::parse(head.try_into().expect("5 bytes"))?;
    let end = FRAME_HEADER_LEN + header.body_len;
    let Some(body) = buf.get(FRAME_HEADER_LEN..end) else {
        return Ok(None);
    };
    Ok(Some((Message::decode(header.kind, body)?, end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ErrorCode, Rights};
    use crate::{ChunkId, FileId};

    fn samples() -> Vec<Message> {
        vec![
            Message::Hello {
                version: 1,
                capabilities: vec!["chunks".into(), "git".into()],
                repo: "team/film".into(),
                token: Some("t0k".into()),
                agent: "git-dits/0.1".into(),
            },
            Message::Hello {
                version: 1,
                capabilities: vec![],
                repo: "a".into(),
                token: None,
                agent: String::new(),
            },
            Message::Welcome {
                version: 1,
                capabilities: vec!["chunks".into()],
                rights: Rights::Write,
            },
            Message::Error {
                code: ErrorCode::Forbidden,
                message: "no".into(),
            },
            Message::HasChunks {
                ids: vec![ChunkId([1; 32]), ChunkId([2; 32])],
            },
            Message::HasFiles {
                ids: vec![FileId([3; 32])],
            },
            Message::Bitmap {
                count: 10,
                bits: vec![0b1010_0001, 0b10],
            },
            Message::PutChunks,
            Message::Chunk {
                id: ChunkId([9; 32]),
                data: b"payload".to_vec(),
            },
            Message::BatchEnd,
            Message::BatchAck {
                chunks: 3,
                bytes: 1 << 40,
            },
            Message::PutManifest { top: vec![7; 100] },
            Message::Done,
            Message::GetChunks {
                ids: vec![ChunkId([4; 32])],
            },
            Message::GetManifest {
                id: FileId([5; 32]),
            },
            Message::ManifestTop { top: vec![1, 2, 3] },
            Message::Git {
                service: "git-upload-pack".into(),
                protocol: "version=2".into(),
            },
            Message::GitReady,
        ]
    }

    #[test]
    fn every_message_round_trips_and_partial_input_asks_for_more() {
        for msg in samples() {
            let mut buf = Vec::new();
            encode_frame(&msg, &mut buf);
            for cut in 0..buf.len() {
                assert_eq!(decode_frame(&buf[..cut]), Ok(None), "{msg:?} cut at {cut}");
            }
            buf.extend_from_slice(b"next");
            let (back, used) = decode_frame(&buf).unwrap().unwrap();
            assert_eq!(back, msg);
            assert_eq!(used, buf.len() - 4);
        }
    }

    #[test]
    fn hostile_frames_are_refused_without_allocating() {
        let mut huge = (MAX_FRAME + 1).to_le_bytes().to_vec();
        huge.push(0x01);
        assert_eq!(
            decode_frame(&huge),
            Err(WireError::TooLarge { len: MAX_FRAME + 1 })
        );
        assert_eq!(decode_frame(&[0, 0, 0, 0, 1]), Err(WireError::Empty));
        assert_eq!(
            decode_frame(&[1, 0, 0, 0, 0xee]),
            Err(WireError::UnknownType(0xee))
        );
        // A has-query whose body is not a whole number of ids.
        let mut odd = 34u32.to_le_bytes().to_vec();
        odd.push(Message::HasChunks { ids: vec![] }.kind());
        odd.extend_from_slice(&[0; 33]);
        assert!(matches!(
            decode_frame(&odd),
            Err(WireError::Malformed { .. })
        ));
        // A string length that runs past the body.
        let mut bad = Vec::new();
        encode_frame(
            &Message::Git {
                service: "git-upload-pack".into(),
                protocol: String::new(),
            },
            &mut bad,
        );
        bad[5] = 0xff;
        assert!(matches!(
            decode_frame(&bad),
            Err(WireError::Malformed { .. })
        ));
    }
}
