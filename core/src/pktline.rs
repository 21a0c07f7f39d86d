//! pkt-line framing, as git uses it on its pipes (git's
//! `Documentation/technical/protocol-common.txt`): the one codec for the filter protocol and
//! for the push commands and ref advertisement the remote helper reads on their way through.
//!
//! A packet is a 4 hex-digit length that counts itself, followed by the payload; `0000` is a
//! flush packet that ends a list or a content section. Lengths 1..=3 are special packets of
//! other git protocols (delimiter, response end) that the filter protocol never uses, so they
//! are rejected here rather than silently misread.
//!
//! Content can be many GiB, so the hot paths never allocate per packet: [`DataReader`] reads
//! payload bytes straight into the caller's buffer, and [`PktWriter::send_from`] reuses one
//! packet-sized buffer for the writer's whole life.

use std::io::{self, Read, Write};

/// Bytes in the length prefix.
const HEADER_LEN: usize = 4;
/// Largest packet git sends or accepts, prefix included (git's `LARGE_PACKET_MAX`).
pub const MAX_PACKET_LEN: usize = 65520;
/// Largest payload of one packet.
pub const MAX_DATA_LEN: usize = MAX_PACKET_LEN - HEADER_LEN;
/// The flush packet.
pub const FLUSH_PKT: &[u8; 4] = b"0000";

/// What went wrong while reading or writing pkt-lines.
#[derive(Debug, thiserror::Error)]
pub enum PktLineError {
    /// The underlying pipe failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The length prefix is not 4 hex digits.
    #[error("invalid pkt-line length prefix \"{}\": expected 4 hex digits", .prefix.escape_ascii())]
    BadPrefix { prefix: [u8; 4] },
    /// Lengths 1..=3 are delimiter/response-end packets of other git protocols.
    #[error("pkt-line length {len} is a special packet the filter protocol does not use")]
    ReservedLength { len: usize },
    /// The prefix announces more than [`MAX_PACKET_LEN`] bytes.
    #[error("pkt-line length {len} exceeds the maximum of {MAX_PACKET_LEN} bytes")]
    Oversize { len: usize },
    /// The input ended inside a packet (in its prefix or its payload).
    #[error("input ended inside a pkt-line: got {got} of {expected} bytes")]
    Truncated { expected: usize, got: usize },
    /// The input ended at a packet boundary, but inside a content section that must end with
    /// a flush packet.
    #[error("input ended before the flush packet that ends the content")]
    MissingFlush,
    /// A text line (with its LF) does not fit in one packet.
    #[error("text line of {len} bytes does not fit in one pkt-line (max {} with its LF)", MAX_DATA_LEN - 1)]
    LineTooLong { len: usize },
}

impl PktLineError {
    /// The `io::ErrorKind` this error is reported as through `Read`.
    fn io_kind(&self) -> io::ErrorKind {
        match self {
            PktLineError::Io(e) => e.kind(),
            PktLineError::Truncated { .. } | PktLineError::MissingFlush => {
                io::ErrorKind::UnexpectedEof
            }
            PktLineError::BadPrefix { .. }
            | PktLineError::ReservedLength { .. }
            | PktLineError::Oversize { .. } => io::ErrorKind::InvalidData,
            PktLineError::LineTooLong { .. } => io::ErrorKind::InvalidInput,
        }
    }
}

impl From<PktLineError> for io::Error {
    fn from(e: PktLineError) -> io::Error {
        match e {
            PktLineError::Io(e) => e,
            other => io::Error::new(other.io_kind(), other),
        }
    }
}

/// One packet as read; `Data` borrows the reader's buffer until the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    Data(&'a [u8]),
    Flush,
}

/// A decoded length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Flush,
    /// Payload length (prefix excluded).
    Data(usize),
}

/// Reads pkt-lines from any `Read`. Wrap unbuffered pipes in a `BufReader`: every packet
/// costs two reads on the inner reader.
#[derive(Debug)]
pub struct PktReader<R> {
    inner: R,
    /// Payload of the last packet from [`read_packet`](Self::read_packet); grows to the
    /// largest payload seen and is then reused.
    buf: Vec<u8>,
}

impl<R: Read> PktReader<R> {
    pub fn new(inner: R) -> Self {
        PktReader {
            inner,
            buf: Vec::new(),
        }
    }

    /// The next packet, or `None` when the input ends exactly at a packet boundary (for git:
    /// it closed the pipe). An end inside a packet is [`PktLineError::Truncated`].
    pub fn read_packet(&mut self) -> Result<Option<Packet<'_>>, PktLineError> {
        match self.read_header()? {
            None => Ok(None),
            Some(Header::Flush) => Ok(Some(Packet::Flush)),
            Some(Header::Data(len)) => {
                if self.buf.len() < len {
                    self.buf.resize(len, 0);
                }
                let got = fill(&mut self.inner, &mut self.buf[..len])?;
                if got < len {
                    return Err(PktLineError::Truncated {
                        expected: HEADER_LEN + len,
                        got: HEADER_LEN + got,
                    });
                }
                Ok(Some(Packet::Data(&self.buf[..len])))
            }
        }
    }

    /// Like [`read_packet`](Self::read_packet), for text lists: a data packet has one
    /// trailing LF removed (git terminates `key=value` lines with LF, but the LF is optional
    /// in pkt-line text and must not be stripped twice: a pathname may end in one).
    pub fn read_line(&mut self) -> Result<Option<Packet<'_>>, PktLineError> {
        Ok(match self.read_packet()? {
            Some(Packet::Data(line)) => Some(Packet::Data(strip_lf(line))),
            other => other,
        })
    }

    /// A `Read` over the data packets that follow, ending (`Ok(0)`) at the next flush packet.
    pub fn data_reader(&mut self) -> DataReader<'_, R> {
        DataReader {
            reader: self,
            packet_len: 0,
            remaining: 0,
            state: DataState::Open,
        }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads and decodes a length prefix; `None` at a clean end of input.
    fn read_header(&mut self) -> Result<Option<Header>, PktLineError> {
        let mut prefix = [0u8; HEADER_LEN];
        let got = fill(&mut self.inner, &mut prefix)?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(PktLineError::Truncated {
                expected: HEADER_LEN,
                got,
            });
        }
        decode_len(prefix).map(Some)
    }
}

/// Removes exactly one trailing LF, if present.
pub fn strip_lf(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

fn decode_len(prefix: [u8; HEADER_LEN]) -> Result<Header, PktLineError> {
    let mut len = 0usize;
    for b in prefix {
        // git's own parser accepts either case, so we do too.
        let digit = char::from(b)
            .to_digit(16)
            .ok_or(PktLineError::BadPrefix { prefix })?;
        len = len * 16 + digit as usize;
    }
    match len {
        0 => Ok(Header::Flush),
        1..HEADER_LEN => Err(PktLineError::ReservedLength { len }),
        _ if len > MAX_PACKET_LEN => Err(PktLineError::Oversize { len }),
        _ => Ok(Header::Data(len - HEADER_LEN)),
    }
}

fn encode_len(len: usize) -> [u8; HEADER_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    debug_assert!(len <= MAX_PACKET_LEN, "callers split payloads first");
    [
        HEX[(len >> 12) & 0xf],
        HEX[(len >> 8) & 0xf],
        HEX[(len >> 4) & 0xf],
        HEX[len & 0xf],
    ]
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn fill<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let (filled, err) = fill_partial(r, buf);
    match err {
        Some(e) => Err(e),
        None => Ok(filled),
    }
}

/// Like `fill`, but reports how much arrived before an error too, so that content read
/// before a failure can still be sent.
fn fill_partial<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

#[derive(Debug)]
enum DataState {
    Open,
    /// The flush packet was read.
    Done,
    /// A read failed; the typed error waits for [`DataReader::drain`] (taken once).
    Failed(Option<PktLineError>),
}

/// Content section reader: yields the payloads of data packets as one byte stream and ends
/// at the flush packet. Payload bytes go straight from the inner reader into the caller's
/// buffer.
///
/// Errors are sticky: once the framing is broken nothing after it can be trusted, so later
/// reads fail too, and [`drain`](Self::drain) hands back the original typed error.
#[derive(Debug)]
pub struct DataReader<'r, R> {
    reader: &'r mut PktReader<R>,
    /// Payload length of the current packet, for error messages.
    packet_len: usize,
    /// Payload bytes of the current packet not yet read.
    remaining: usize,
    state: DataState,
}

impl<R: Read> DataReader<'_, R> {
    /// Reads and discards the rest of the section, up to and including its flush packet.
    /// Returns how many payload bytes were discarded.
    pub fn drain(&mut self) -> Result<u64, PktLineError> {
        let mut scratch = [0u8; 16 * 1024];
        let mut total = 0u64;
        loop {
            match self.read(&mut scratch) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.take_error().unwrap_or(PktLineError::Io(e))),
            }
        }
    }

    /// Whether the flush packet ending the section has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, DataState::Done)
    }

    fn take_error(&mut self) -> Option<PktLineError> {
        match &mut self.state {
            DataState::Failed(err) => err.take(),
            DataState::Open | DataState::Done => None,
        }
    }

    /// Records `err` and turns it into the `io::Error` the `Read` caller sees.
    fn fail(&mut self, err: PktLineError) -> io::Error {
        let seen = io::Error::new(err.io_kind(), err.to_string());
        self.state = DataState::Failed(Some(err));
        seen
    }
}

impl<R: Read> Read for DataReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                DataState::Open => {}
                DataState::Done => return Ok(0),
                DataState::Failed(_) => {
                    return Err(io::Error::other(
                        "pkt-line content stream already failed; see the first error",
                    ))
                }
            }
            if self.remaining == 0 {
                match self.reader.read_header() {
                    Ok(Some(Header::Flush)) => self.state = DataState::Done,
                    // An empty data packet (`0004`) is legal; just move on to the next one.
                    Ok(Some(Header::Data(len))) => {
                        self.packet_len = len;
                        self.remaining = len;
                    }
                    Ok(None) => return Err(self.fail(PktLineError::MissingFlush)),
                    Err(e) => return Err(self.fail(e)),
                }
                continue;
            }
            let want = out.len().min(self.remaining);
            return match self.reader.inner.read(&mut out[..want]) {
                Ok(0) => {
                    let got = self.packet_len - self.remaining;
                    Err(self.fail(PktLineError::Truncated {
                        expected: HEADER_LEN + self.packet_len,
                        got: HEADER_LEN + got,
                    }))
                }
                Ok(n) => {
                    self.remaining -= n;
                    Ok(n)
                }
                // Nothing was consumed, so the caller may simply retry.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
                Err(e) => {
                    let kind = e.kind();
                    let msg = e.to_string();
                    self.state = DataState::Failed(Some(PktLineError::Io(e)));
                    Err(io::Error::new(kind, msg))
                }
            };
        }
    }
}

/// Writes pkt-lines to any `Write`. It never flushes the inner writer on its own: callers
/// flush once per complete answer, so a `BufWriter` can batch the packets.
#[derive(Debug)]
pub struct PktWriter<W> {
    inner: W,
    /// One packet's payload for [`send_from`](Self::send_from), allocated on first use.
    buf: Vec<u8>,
}

/// Why [`PktWriter::send_from`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The source failed after `sent` bytes had been written as packets.
    #[error("reading the content failed after {sent} bytes")]
    Read {
        sent: u64,
        #[source]
        source: io::Error,
    },
    /// Writing the packets failed.
    #[error(transparent)]
    Write(#[from] PktLineError),
}

impl<W: Write> PktWriter<W> {
    pub fn new(inner: W) -> Self {
        PktWriter {
            inner,
            buf: Vec::new(),
        }
    }

    /// Writes `data` as data packets of at most [`MAX_DATA_LEN`] bytes each. Empty `data`
    /// writes nothing (an empty content section is just its flush packet).
    pub fn write_data(&mut self, data: &[u8]) -> Result<(), PktLineError> {
        for payload in data.chunks(MAX_DATA_LEN) {
            write_packet(&mut self.inner, payload)?;
        }
        Ok(())
    }

    /// Writes `line` plus LF as one packet.
    pub fn write_text(&mut self, line: &[u8]) -> Result<(), PktLineError> {
        self.write_text_parts(&[line])
    }

    /// Writes the concatenation of `parts` plus LF as one packet, so that `key=` and a
    /// value can be sent without building the line first.
    pub fn write_text_parts(&mut self, parts: &[&[u8]]) -> Result<(), PktLineError> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        if len + 1 > MAX_DATA_LEN {
            return Err(PktLineError::LineTooLong { len });
        }
        self.inner.write_all(&encode_len(HEADER_LEN + len + 1))?;
        for part in parts {
            self.inner.write_all(part)?;
        }
        self.inner.write_all(b"\n")?;
        Ok(())
    }

    /// Writes a flush packet (into the inner writer; see [`flush`](Self::flush)).
    pub fn write_flush(&mut self) -> Result<(), PktLineError> {
        self.inner.write_all(FLUSH_PKT)?;
        Ok(())
    }

    /// Flushes the inner writer, handing everything written so far to the peer.
    pub fn flush(&mut self) -> Result<(), PktLineError> {
        self.inner.flush()?;
        Ok(())
    }

    /// Streams `src` to its end as data packets, each full-size except the last. Only one
    /// packet is held in memory. A read error is returned as [`SendError::Read`] after the
    /// bytes that did arrive were sent, so the caller can still end the section properly.
    pub fn send_from<S: Read + ?Sized>(&mut self, src: &mut S) -> Result<u64, SendError> {
        if self.buf.len() < MAX_DATA_LEN {
            self.buf.resize(MAX_DATA_LEN, 0);
        }
        let mut sent = 0u64;
        loop {
            // Filling whole packets (rather than one packet per `read`) keeps the framing
            // overhead minimal whatever read sizes the source yields.
            let (filled, err) = fill_partial(src, &mut self.buf[..MAX_DATA_LEN]);
            if filled > 0 {
                write_packet(&mut self.inner, &self.buf[..filled])?;
                sent += filled as u64;
            }
            if let Some(source) = err {
                return Err(SendError::Read { sent, source });
            }
            if filled < MAX_DATA_LEN {
                return Ok(sent);
            }
        }
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

fn write_packet<W: Write>(w: &mut W, payload: &[u8]) -> Result<(), PktLineError> {
    debug_assert!(payload.len() <= MAX_DATA_LEN);
    w.write_all(&encode_len(HEADER_LEN + payload.len()))?;
    w.write_all(payload)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test reports failure
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> PktReader<&[u8]> {
        PktReader::new(bytes)
    }

    #[test]
    fn reads_data_flush_and_clean_eof() {
        let mut r = reader(b"0009hello0000000aworld\n");
        assert_eq!(r.read_packet().unwrap(), Some(Packet::Data(b"hello")));
        assert_eq!(r.read_packet().unwrap(), Some(Packet::Flush));
        assert_eq!(r.read_line().unwrap(), Some(Packet::Data(b"world")));
        assert_eq!(r.read_packet().unwrap(), None);
    }

    #[test]
    fn read_line_strips_exactly_one_lf() {
        let mut r = reader(b"0006a\n0007a\n\n0005a");
        assert_eq!(r.read_line().unwrap(), Some(Packet::Data(b"a")));
        assert_eq!(r.read_line().unwrap(), Some(Packet::Data(b"a\n")));
        assert_eq!(r.read_line().unwrap(), Some(Packet::Data(b"a")));
    }

    #[test]
    fn accepts_uppercase_hex_and_empty_packet() {
        let mut r = reader(b"0004000Aabcdef");
        assert_eq!(r.read_packet().unwrap(), Some(Packet::Data(b"")));
        assert_eq!(r.read_packet().unwrap(), Some(Packet::Data(b"abcdef")));
    }

    #[test]
    fn rejects_bad_prefixes() {
        for (input, want) in [
            (&b"00g1"[..], "BadPrefix"),
            (b"+001", "BadPrefix"),
            (b"0001", "ReservedLength"),
            (b"0002", "ReservedLength"),
            (b"0003", "ReservedLength"),
            (b"fff1", "Oversize"),
            (b"ffff", "Oversize"),
        ] {
            let err = reader(input).read_packet().unwrap_err();
            assert!(
                format!("{err:?}").starts_with(want),
                "{input:?}: got {err:?}"
            );
        }
        let err = reader(b"0001").read_packet().unwrap_err();
        assert!(matches!(err, PktLineError::ReservedLength { len: 1 }));
        let err = reader(b"zz00").read_packet().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid pkt-line length prefix \"zz00\": expected 4 hex digits"
        );
    }

    #[test]
    fn max_packet_is_accepted() {
        let mut bytes = b"fff0".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', MAX_DATA_LEN));
        let mut r = reader(&bytes);
        match r.read_packet().unwrap() {
            Some(Packet::Data(d)) => assert_eq!(d.len(), MAX_DATA_LEN),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncation_is_an_error_not_eof() {
        let err = reader(b"00").read_packet().unwrap_err();
        assert!(matches!(
            err,
            PktLineError::Truncated {
                expected: 4,
                got: 2
            }
        ));
        let err = reader(b"000ahel").read_packet().unwrap_err();
        assert!(matches!(
            err,
            PktLineError::Truncated {
                expected: 10,
                got: 7
            }
        ));
    }

    #[test]
    fn data_reader_streams_until_flush_and_leaves_the_rest() {
        let mut r = reader(b"0007abc0004000adefghi00000008next");
        let mut content = Vec::new();
        let mut dr = r.data_reader();
        dr.read_to_end(&mut content).unwrap();
        assert!(dr.is_done());
        assert_eq!(content, b"abcdefghi");
        assert_eq!(r.read_packet().unwrap(), Some(Packet::Data(b"next")));
    }

    #[test]
    fn data_reader_small_reads_and_drain() {
        let mut r = reader(b"0007abc0007def0000rest");
        let mut dr = r.data_reader();
        let mut two = [0u8; 2];
        assert_eq!(dr.read(&mut two).unwrap(), 2);
        assert_eq!(&two, b"ab");
        assert_eq!(dr.drain().unwrap(), 4);
        assert_eq!(dr.read(&mut two).unwrap(), 0);
        assert_eq!(r.into_inner(), b"rest");
    }

    #[test]
    fn data_reader_missing_flush_and_truncation_are_sticky_typed_errors() {
        let mut r = reader(b"0007abc");
        let mut dr = r.data_reader();
        let err = std::io::read_to_string(&mut dr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(matches!(dr.drain(), Err(PktLineError::MissingFlush)));

        let mut r = reader(b"0007abc0008de");
        let mut dr = r.data_reader();
        let mut buf = [0u8; 64];
        assert_eq!(dr.read(&mut buf).unwrap(), 3);
        assert_eq!(dr.read(&mut buf).unwrap(), 2);
        assert!(dr.read(&mut buf).is_err());
        assert!(dr.read(&mut buf).is_err(), "errors stay");
        assert!(matches!(
            dr.drain(),
            Err(PktLineError::Truncated {
                expected: 8,
                got: 6
            })
        ));
    }

    #[test]
    fn writer_frames_text_data_and_flush() {
        let mut w = PktWriter::new(Vec::new());
        w.write_text(b"status=success").unwrap();
        w.write_flush().unwrap();
        w.write_data(b"").unwrap();
        w.write_data(b"xyz").unwrap();
        w.write_text_parts(&[b"pathname=", b"a\xffb"]).unwrap();
        assert_eq!(
            w.into_inner(),
            b"0013status=success\n00000007xyz0011pathname=a\xffb\n"
        );
    }

    #[test]
    fn writer_splits_large_buffers_and_rejects_long_lines() {
        let data = vec![7u8; 2 * MAX_DATA_LEN + 5];
        let mut w = PktWriter::new(Vec::new());
        w.write_data(&data).unwrap();
        let out = w.into_inner();
        assert_eq!(out.len(), data.len() + 3 * 4);
        assert_eq!(&out[..4], b"fff0");
        assert_eq!(&out[4 + MAX_DATA_LEN..8 + MAX_DATA_LEN], b"fff0");
        assert_eq!(&out[2 * MAX_PACKET_LEN..2 * MAX_PACKET_LEN + 4], b"0009");

        let mut w = PktWriter::new(Vec::new());
        assert!(w.write_text(&vec![b'a'; MAX_DATA_LEN - 1]).is_ok());
        assert!(matches!(
            w.write_text(&vec![b'a'; MAX_DATA_LEN]),
            Err(PktLineError::LineTooLong { .. })
        ));
    }

    /// Yields `data` a few bytes per read, then fails.
    struct Dribble<'a> {
        data: &'a [u8],
        fail_at_end: bool,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return if self.fail_at_end {
                    Err(io::Error::other("boom"))
                } else {
                    Ok(0)
                };
            }
            let n = buf.len().min(self.data.len()).min(1000);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn send_from_fills_whole_packets_and_round_trips() {
        let data: Vec<u8> = (0..MAX_DATA_LEN * 2 + 10).map(|i| i as u8).collect();
        let mut w = PktWriter::new(Vec::new());
        let mut src = Dribble {
            data: &data,
            fail_at_end: false,
        };
        assert_eq!(w.send_from(&mut src).unwrap(), data.len() as u64);
        w.write_flush().unwrap();
        let out = w.into_inner();
        assert_eq!(out.len(), data.len() + 3 * 4 + 4);
        assert_eq!(&out[..4], b"fff0");

        let mut r = PktReader::new(&out[..]);
        let mut back = Vec::new();
        r.data_reader().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn send_from_sends_what_arrived_before_an_error() {
        let mut w = PktWriter::new(Vec::new());
        let mut src = Dribble {
            data: b"partial",
            fail_at_end: true,
        };
        match w.send_from(&mut src) {
            Err(SendError::Read { sent: 7, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(w.into_inner(), b"000bpartial");
    }
}
