//! git's long-running filter process protocol, version 2 (git's `gitattributes(5)`,
//! "Long Running Filter Process"), as a server generic over `Read + Write`.
//!
//! [`serve`] runs the handshake, then answers requests until git closes the pipe. The
//! [`Handler`] only sees parsed [`Request`]s and a content stream; every status line, flush
//! packet and ordering rule of the protocol lives here, so handlers cannot get them wrong.

use std::borrow::Cow;
use std::io::{Read, Write};

use dits_core::pktline::{Packet, PktLineError, PktReader, PktWriter, SendError, MAX_DATA_LEN};

/// A filter capability, as negotiated in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Clean,
    Smudge,
    Delay,
}

impl Capability {
    fn name(self) -> &'static [u8] {
        match self {
            Capability::Clean => b"clean",
            Capability::Smudge => b"smudge",
            Capability::Delay => b"delay",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        match name {
            b"clean" => Some(Capability::Clean),
            b"smudge" => Some(Capability::Smudge),
            b"delay" => Some(Capability::Delay),
            _ => None,
        }
    }
}

/// A content-carrying command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Clean,
    Smudge,
}

impl Command {
    fn capability(self) -> Capability {
        match self {
            Command::Clean => Capability::Clean,
            Command::Smudge => Capability::Smudge,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Command::Clean => "clean",
            Command::Smudge => "smudge",
        }
    }
}

/// One clean or smudge request, as git described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    /// Raw bytes as git sent them (paths need not be UTF-8).
    pub pathname: Vec<u8>,
    /// gitoxide sends no `blob=` key; never require it.
    pub blob: Option<String>,
    pub treeish: Option<String>,
    /// The `ref=` key.
    pub reference: Option<String>,
    pub can_delay: bool,
}

impl Request {
    /// The pathname for messages; invalid UTF-8 becomes U+FFFD.
    pub fn path_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.pathname)
    }
}

/// A handler's answer to a request.
pub enum Response<'a> {
    /// Answer status=success and stream this content back. A read error part-way becomes
    /// `status=error` after the partial content (git then discards it).
    Content(Box<dyn Read + 'a>),
    /// Answer status=delayed (only legal when the request had can_delay=1; if not, it is
    /// treated as a handler bug: status=error for that file).
    Delayed,
}

/// A handler's refusal.
#[derive(Debug)]
pub enum Failure {
    /// status=error for this one file; the process keeps serving. The message is logged via
    /// `tracing::error!` with the path.
    Error(String),
    /// status=abort: git stops sending this command type for the rest of the session.
    Abort(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Error(m) | Failure::Abort(m) => f.write_str(m),
        }
    }
}

/// What the protocol layer needs from the filter itself.
pub trait Handler {
    /// Capabilities this handler supports; the server answers the intersection with what git
    /// offers.
    fn capabilities(&self) -> &[Capability];

    /// `input` yields the request's content (de-packetized) and then EOF at the flush. The
    /// handler may read all, part or none of it; the server drains whatever is left BEFORE it
    /// writes any answer (git writes the whole content before reading our answer, so
    /// answering early could deadlock).
    fn handle<'a>(
        &'a mut self,
        req: &Request,
        input: &mut dyn Read,
    ) -> Result<Response<'a>, Failure>;

    /// `command=list_available_blobs`: block until at least one delayed blob is ready, if any
    /// are pending; return the ready pathnames (empty when nothing is pending any more). Git
    /// then re-requests each with an empty content and no can-delay; that arrives through
    /// `handle`.
    fn available(&mut self) -> Result<Vec<Vec<u8>>, Failure>;

    /// Git closed the pipe at a request boundary (normal end of session).
    fn finish(&mut self) -> Result<(), Failure> {
        Ok(())
    }
}

/// Why the session with git ended abnormally. None of these is worth retrying inside the
/// session: the stream is out of sync or gone, and git restarts the filter for the next file.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Framing or I/O failure on the pipes.
    #[error(transparent)]
    PktLine(#[from] PktLineError),
    /// Git closed the pipe in the middle of an exchange.
    #[error("git closed the pipe in the middle of {during}")]
    UnexpectedEof { during: &'static str },
    /// The handshake did not have the expected shape.
    #[error("bad filter handshake: expected {expected}, got {got}")]
    BadHandshake { expected: &'static str, got: String },
    /// Git did not offer protocol version 2.
    #[error(
        "git offered filter protocol versions [{}] but this filter only speaks version 2; \
         hint: use a git that supports filter.<driver>.process (git 2.11 or later)",
        .offered.join(", ")
    )]
    UnsupportedVersion { offered: Vec<String> },
    /// A request without `command=`: we cannot tell whether content follows, so the stream
    /// cannot be resynchronised.
    #[error("request without a command= key (keys sent: [{}])", .keys.join(", "))]
    MissingCommand { keys: Vec<String> },
    /// [`Handler::finish`] failed at the end of the session.
    #[error("filter failed to finish the session: {message}")]
    Finish { message: String },
}

const PROTOCOL_VERSION: &[u8] = b"2";

/// Runs handshake + request loop until git closes the pipe; calls `handler.finish()` at clean
/// EOF.
pub fn serve<R: Read, W: Write, H: Handler>(
    input: R,
    output: W,
    handler: &mut H,
) -> Result<(), ProtocolError> {
    let mut session = Session {
        reader: PktReader::new(input),
        writer: PktWriter::new(output),
        negotiated: Vec::new(),
    };
    if !session.handshake(handler.capabilities())? {
        // The client went away before saying anything (gitoxide starts filter processes it
        // may then not need): nothing was asked, nothing failed.
        tracing::debug!("git closed the filter pipe before the handshake");
        return Ok(());
    }
    while let Some(request) = session.read_request()? {
        session.answer(request, handler)?;
        // One flush per complete answer: git reads nothing until it has the whole answer
        // anyway, and a flush per packet would defeat the caller's `BufWriter`.
        session.writer.flush()?;
    }
    tracing::debug!("git closed the filter pipe; finishing");
    handler.finish().map_err(|failure| ProtocolError::Finish {
        message: match failure {
            Failure::Error(m) | Failure::Abort(m) => m,
        },
    })
}

struct Session<R, W> {
    reader: PktReader<R>,
    writer: PktWriter<W>,
    /// Capabilities both sides agreed on, in git's order.
    negotiated: Vec<Capability>,
}

/// A request as read from the key list, before it is checked against what we can do.
enum Incoming {
    Content {
        command: Command,
        /// `None` if git sent no `pathname=` (it always does; a broken client might not).
        pathname: Option<Vec<u8>>,
        blob: Option<String>,
        treeish: Option<String>,
        reference: Option<String>,
        can_delay: bool,
    },
    ListAvailableBlobs,
    Unknown(Vec<u8>),
}

impl<R: Read, W: Write> Session<R, W> {
    /// `false` if the client closed the pipe before sending anything.
    fn handshake(&mut self, ours: &[Capability]) -> Result<bool, ProtocolError> {
        const DURING: &str = "the handshake";
        match self.reader.read_line()? {
            None => return Ok(false),
            Some(Packet::Data(b"git-filter-client")) => {}
            other => {
                return Err(ProtocolError::BadHandshake {
                    expected: "\"git-filter-client\"",
                    got: describe(other),
                })
            }
        }

        let offered: Vec<String> = self
            .read_list(b"version=", "\"version=<n>\" or a flush packet", DURING)?
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if !offered.iter().any(|v| v.as_bytes() == PROTOCOL_VERSION) {
            return Err(ProtocolError::UnsupportedVersion { offered });
        }
        self.writer.write_text(b"git-filter-server")?;
        self.writer
            .write_text_parts(&[b"version=", PROTOCOL_VERSION])?;
        self.writer.write_flush()?;
        // Git waits for our version before it sends its capabilities.
        self.writer.flush()?;

        let names = self.read_list(
            b"capability=",
            "\"capability=<name>\" or a flush packet",
            DURING,
        )?;
        for name in names {
            match Capability::from_name(&name) {
                Some(cap) if ours.contains(&cap) && !self.negotiated.contains(&cap) => {
                    self.negotiated.push(cap)
                }
                // Offered by git but not by us, or a capability newer than this code: not
                // answering it is exactly how the protocol says "no".
                _ => {}
            }
        }
        for cap in &self.negotiated {
            self.writer
                .write_text_parts(&[b"capability=", cap.name()])?;
        }
        self.writer.write_flush()?;
        self.writer.flush()?;
        tracing::debug!(capabilities = ?self.negotiated, "filter handshake done");
        Ok(true)
    }

    /// Reads `<prefix><value>` lines up to a flush and returns the values.
    fn read_list(
        &mut self,
        prefix: &[u8],
        expected: &'static str,
        during: &'static str,
    ) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let mut values = Vec::new();
        loop {
            match self.reader.read_line()? {
                Some(Packet::Data(line)) => match line.strip_prefix(prefix) {
                    Some(v) => values.push(v.to_vec()),
                    None => {
                        return Err(ProtocolError::BadHandshake {
                            expected,
                            got: describe(Some(Packet::Data(line))),
                        })
                    }
                },
                Some(Packet::Flush) => return Ok(values),
                None => return Err(ProtocolError::UnexpectedEof { during }),
            }
        }
    }

    /// Reads one request's key list; `None` when git closed the pipe before a new request.
    fn read_request(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        const DURING: &str = "a request's key list";
        let mut command: Option<Vec<u8>> = None;
        let mut pathname = None;
        let mut blob = None;
        let mut treeish = None;
        let mut reference = None;
        let mut can_delay = false;
        let mut keys = Vec::new();
        let mut first = true;
        loop {
            let line = match self.reader.read_line()? {
                Some(Packet::Data(line)) => line,
                Some(Packet::Flush) => break,
                None if first => return Ok(None),
                None => return Err(ProtocolError::UnexpectedEof { during: DURING }),
            };
            first = false;
            // Split at the first '=': keys never contain one, values may.
            let Some(eq) = line.iter().position(|&b| b == b'=') else {
                tracing::debug!(line = %line.escape_ascii(), "ignoring request line without '='");
                continue;
            };
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            keys.push(String::from_utf8_lossy(key).into_owned());
            match key {
                b"command" => command = Some(value.to_vec()),
                b"pathname" => pathname = Some(value.to_vec()),
                b"blob" => blob = Some(lossy_value(key, value)),
                b"treeish" => treeish = Some(lossy_value(key, value)),
                b"ref" => reference = Some(lossy_value(key, value)),
                b"can-delay" => can_delay = value == b"1",
                // Newer git may send more metadata; ignoring it keeps us compatible.
                _ => tracing::trace!(key = %key.escape_ascii(), "ignoring unknown request key"),
            }
        }
        let Some(command) = command else {
            return Err(ProtocolError::MissingCommand { keys });
        };
        let command = match command.as_slice() {
            b"clean" => Command::Clean,
            b"smudge" => Command::Smudge,
            b"list_available_blobs" => return Ok(Some(Incoming::ListAvailableBlobs)),
            _ => return Ok(Some(Incoming::Unknown(command))),
        };
        Ok(Some(Incoming::Content {
            command,
            pathname,
            blob,
            treeish,
            reference,
            can_delay,
        }))
    }

    fn answer<H: Handler>(
        &mut self,
        incoming: Incoming,
        handler: &mut H,
    ) -> Result<(), ProtocolError> {
        match incoming {
            Incoming::Content {
                command,
                pathname,
                blob,
                treeish,
                reference,
                can_delay,
            } => {
                let missing_path = pathname.is_none();
                let request = Request {
                    command,
                    pathname: pathname.unwrap_or_default(),
                    blob,
                    treeish,
                    reference,
                    can_delay,
                };
                self.answer_content(&request, missing_path, handler)
            }
            Incoming::ListAvailableBlobs => self.answer_available(handler),
            Incoming::Unknown(command) => {
                // We never advertised such a command, so we cannot know whether a content
                // section follows; git only sends commands it negotiated, so assume none.
                tracing::error!(
                    command = %command.escape_ascii(),
                    "unknown filter command; answering status=error"
                );
                self.write_status(b"error")
            }
        }
    }

    fn answer_content<H: Handler>(
        &mut self,
        req: &Request,
        missing_path: bool,
        handler: &mut H,
    ) -> Result<(), ProtocolError> {
        tracing::debug!(
            command = req.command.name(),
            path = %req.path_lossy(),
            can_delay = req.can_delay,
            "filter request"
        );
        let mut input = self.reader.data_reader();
        let outcome = if missing_path {
            Err(Failure::Error("request has no pathname= key".to_owned()))
        } else if !self.negotiated.contains(&req.command.capability()) {
            Err(Failure::Error(format!(
                "git sent command={} although it was not negotiated",
                req.command.name()
            )))
        } else {
            handler.handle(req, &mut input)
        };
        // Git writes the whole content before it reads any answer: answering first could
        // block both sides on full pipes. Draining also resyncs the stream after handlers
        // that stop reading early.
        input.drain()?;

        let outcome = match outcome {
            Ok(Response::Delayed) if !req.can_delay => Err(Failure::Error(
                "handler answered delayed to a request without can-delay=1 (handler bug)"
                    .to_owned(),
            )),
            other => other,
        };
        match outcome {
            Ok(Response::Content(mut content)) => {
                self.writer.write_text(b"status=success")?;
                self.writer.write_flush()?;
                match self.writer.send_from(&mut *content) {
                    Ok(sent) => {
                        self.writer.write_flush()?;
                        // Empty list: the status stays "success".
                        self.writer.write_flush()?;
                        tracing::debug!(path = %req.path_lossy(), bytes = sent, "filtered");
                        Ok(())
                    }
                    Err(SendError::Read { sent, source }) => {
                        tracing::error!(
                            path = %req.path_lossy(),
                            command = req.command.name(),
                            sent,
                            "filter output failed part-way: {source}"
                        );
                        // End the content section, then overturn the status; git discards
                        // what it got.
                        self.writer.write_flush()?;
                        self.write_status(b"error")
                    }
                    Err(SendError::Write(e)) => Err(e.into()),
                }
            }
            Ok(Response::Delayed) => {
                tracing::debug!(path = %req.path_lossy(), "delayed");
                self.write_status(b"delayed")
            }
            Err(Failure::Error(message)) => {
                tracing::error!(
                    path = %req.path_lossy(),
                    command = req.command.name(),
                    "filter failed for this file: {message}"
                );
                self.write_status(b"error")
            }
            Err(Failure::Abort(message)) => {
                tracing::error!(
                    path = %req.path_lossy(),
                    command = req.command.name(),
                    "filter aborting this command for the session: {message}"
                );
                self.write_status(b"abort")
            }
        }
    }

    /// Answers `list_available_blobs`: `pathname=` lines, flush, then a status list. Every
    /// outcome keeps that two-list shape because that is what git reads.
    fn answer_available<H: Handler>(&mut self, handler: &mut H) -> Result<(), ProtocolError> {
        let outcome = if self.negotiated.contains(&Capability::Delay) {
            handler.available()
        } else {
            Err(Failure::Error(
                "git sent list_available_blobs although delay was not negotiated".to_owned(),
            ))
        };
        let outcome = outcome.and_then(|paths| {
            // Checked up front so that a bad path cannot leave a half-written list.
            match paths
                .iter()
                .find(|p| b"pathname=".len() + p.len() + 1 > MAX_DATA_LEN)
            {
                Some(p) => Err(Failure::Error(format!(
                    "available pathname of {} bytes does not fit in a pkt-line",
                    p.len()
                ))),
                None => Ok(paths),
            }
        });
        match outcome {
            Ok(paths) => {
                for path in &paths {
                    self.writer.write_text_parts(&[b"pathname=", path])?;
                }
                self.writer.write_flush()?;
                tracing::debug!(count = paths.len(), "listed available blobs");
                self.write_status(b"success")
            }
            Err(failure) => {
                let (status, message): (&[u8], _) = match failure {
                    Failure::Error(m) => (b"error", m),
                    Failure::Abort(m) => (b"abort", m),
                };
                tracing::error!("list_available_blobs failed: {message}");
                self.writer.write_flush()?;
                self.write_status(status)
            }
        }
    }

    /// `status=<status>` and a flush packet.
    fn write_status(&mut self, status: &[u8]) -> Result<(), ProtocolError> {
        self.writer.write_text_parts(&[b"status=", status])?;
        self.writer.write_flush()?;
        Ok(())
    }
}

fn lossy_value(key: &[u8], value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(v) => v.to_owned(),
        Err(_) => {
            tracing::warn!(key = %key.escape_ascii(), "request value is not UTF-8; using a lossy copy");
            String::from_utf8_lossy(value).into_owned()
        }
    }
}

/// A packet as shown in handshake errors.
fn describe(packet: Option<Packet<'_>>) -> String {
    match packet {
        Some(Packet::Data(line)) => format!("\"{}\"", line.escape_ascii()),
        Some(Packet::Flush) => "a flush packet".to_owned(),
        None => "the end of input".to_owned(),
    }
}
