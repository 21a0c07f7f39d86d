//! The git remote helper protocol (`gitremote-helpers(7)`) for `dits://` URLs. We advertise
//! `connect`: git then speaks its own pack protocol to a real `git upload-pack` /
//! `git receive-pack` on the server through a tunnel stream. For a push, the helper reads
//! git's ref-update commands before passing them on and first makes sure the server has the
//! content the new commits need (the server's hook enforces it too); then the commands and
//! the pack follow. So chunks go first and refs last.

use std::io::{BufRead, Read, Write};

use dits_core::pktline::{Packet, PktReader};

use crate::client::{NetSettings, Session};
use crate::error::NetError;
use crate::transport::{RecvHalf, SendHalf};
use crate::url::DitsUrl;

/// One ref update of a push, as git's `receive-pack` protocol states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

/// What the helper needs from the repository: uploading the content of pushed commits.
pub trait PushPreparer {
    /// Called before git's commands reach the server, with the object ids the server
    /// advertised (its refs: commits it has, with their content). An error aborts the push;
    /// its text is shown to the user.
    fn before_push(
        &mut self,
        session: &Session,
        updates: &[RefUpdate],
        advertised: &[String],
        talk: Verbosity,
    ) -> Result<(), String>;
}

/// What git asked the helper to print (`option progress`, `option verbosity`).
#[derive(Debug, Clone, Copy)]
pub struct Verbosity {
    /// Progress bars (git says so when stderr is a terminal).
    pub progress: bool,
    /// `git push -q`: nothing but errors, not even a summary.
    pub quiet: bool,
}

/// The capability block git reads (`connect` and `option`, then a blank line).
pub const CAPABILITIES: &str = "connect\noption\n\n";

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Capabilities,
    Option { name: String, value: String },
    Connect { service: String },
    End,
    Unknown(String),
}

fn parse(line: &str) -> Command {
    let line = line.trim_end_matches('\n');
    if line.is_empty() {
        return Command::End;
    }
    if line == "capabilities" {
        return Command::Capabilities;
    }
    if let Some(rest) = line.strip_prefix("option ") {
        let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
        return Command::Option {
            name: name.to_owned(),
            value: value.to_owned(),
        };
    }
    if let Some(service) = line.strip_prefix("connect ") {
        return Command::Connect {
            service: service.to_owned(),
        };
    }
    Command::Unknown(line.to_owned())
}

/// Runs the helper until git is done. `url` is the remote's URL as git passed it.
pub fn run<R: BufRead + Send, W: Write + Send>(
    url: &str,
    mut input: R,
    mut output: W,
    preparer: &mut dyn PushPreparer,
) -> Result<(), NetError> {
    let url = DitsUrl::parse(url)?;
    let mut progress = true;
    let mut quiet = false;
    let mut line = String::new();
    loop {
        line.clear();
        let n = input
            .read_line(&mut line)
            .map_err(|e| NetError::io("reading git's helper commands", e))?;
        let reply = match parse(&line) {
            _ if n == 0 => return Ok(()),
            Command::End => return Ok(()),
            Command::Capabilities => CAPABILITIES.to_owned(),
            Command::Option { name, value } => match name.as_str() {
                "progress" => {
                    progress = value == "true";
                    "ok\n".to_owned()
                }
                "verbosity" => {
                    if value.parse::<i32>().is_ok_and(|v| v < 1) {
                        progress = false;
                        quiet = true;
                    }
                    "ok\n".to_owned()
                }
                _ => "unsupported\n".to_owned(),
            },
            Command::Connect { service } => {
                let mut settings = NetSettings::from_git()?;
                settings.verbose = progress;
                let session = Session::connect(&url, &settings)?;
                let protocol = std::env::var("GIT_PROTOCOL").unwrap_or_default();
                let (send, recv) = session.git_tunnel(&service, &protocol)?;
                output
                    .write_all(b"\n")
                    .and_then(|()| output.flush())
                    .map_err(|e| NetError::io("writing to git", e))?;
                let intercept = service == "git-receive-pack";
                return tunnel(&session, send, recv, input, output, intercept, |s, u, a| {
                    preparer.before_push(s, u, a, Verbosity { progress, quiet })
                });
            }
            Command::Unknown(what) => {
                return Err(NetError::Helper(format!(
                    "git asked the dits helper for {what:?}, which it does not support; hint: upgrade git-dits"
                )))
            }
        };
        output
            .write_all(reply.as_bytes())
            .and_then(|()| output.flush())
            .map_err(|e| NetError::io("writing to git", e))?;
    }
}

/// A request stream as a blocking reader.
struct StreamReader<'a> {
    session: &'a Session,
    recv: &'a mut RecvHalf,
}

impl Read for StreamReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use tokio::io::AsyncReadExt;
        self.session.block_on(self.recv.read(buf))
    }
}

/// Copies git's side to the server and back until the server is done. With `intercept`, the
/// first pkt-line section from git (the push commands) is held until `before_push` succeeds;
/// it is given the object ids of the server's ref advertisement, read on the way down.
fn tunnel<R: Read + Send, W: Write + Send>(
    session: &Session,
    mut send: SendHalf,
    mut recv: RecvHalf,
    mut input: R,
    mut output: W,
    intercept: bool,
    mut before_push: impl FnMut(&Session, &[RefUpdate], &[String]) -> Result<(), String>,
) -> Result<(), NetError> {
    let (adv_tx, adv_rx) = std::sync::mpsc::channel::<Vec<String>>();
    let up_done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let down = scope.spawn(|| {
            let result = copy_down(session, &mut recv, &mut output, intercept, &adv_tx);
            let _ = output.flush();
            if !up_done.load(std::sync::atomic::Ordering::SeqCst) {
                // The server's side is over but git may still be blocked writing to us, or
                // waiting for bytes that will never come: nothing we do with its stdin
                // matters any more, and only our exit ends git's wait.
                if let Err(e) = &result {
                    eprintln!("fatal: {e}");
                }
                std::process::exit(if result.is_ok() { 0 } else { 128 });
            }
            result
        });
        let up = (|| -> Result<(), NetError> {
            if intercept {
                let (held, lines) = read_section(&mut input)
                    .map_err(|e| NetError::io("reading git's push commands", e))?;
                let real: Vec<RefUpdate> = lines
                    .iter()
                    .filter_map(|l| parse_update(l))
                    .filter(|u| !is_zero(&u.new))
                    .collect();
                if !real.is_empty() {
                    // Git sent its commands, so it has read the whole advertisement.
                    let advertised = adv_rx.recv().unwrap_or_default();
                    if let Err(why) = before_push(session, &real, &advertised) {
                        // Said before the reset ends the download side, so that it leaves
                        // the exit (and the message naming what is missing) to us.
                        up_done.store(true, std::sync::atomic::Ordering::SeqCst);
                        // Nothing was sent: the server sees a broken stream and moves no ref.
                        send.reset();
                        return Err(NetError::PushStopped(why));
                    }
                }
                session
                    .block_on(tokio::io::AsyncWriteExt::write_all(&mut send, &held))
                    .map_err(|e| lost(session, &e))?;
            }
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = input
                    .read(&mut buf)
                    .map_err(|e| NetError::io("reading from git", e))?;
                if n == 0 {
                    session.block_on(send.finish());
                    return Ok(());
                }
                session
                    .block_on(tokio::io::AsyncWriteExt::write_all(&mut send, &buf[..n]))
                    .map_err(|e| lost(session, &e))?;
            }
        })();
        up_done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Err(e) = up {
            // Closing our side ends the server's git, which ends the download side.
            session.abort(b"push aborted");
            let _ = down.join();
            return Err(e);
        }
        down.join().unwrap_or_else(|_| {
            Err(NetError::io(
                "copying the server's answer to git",
                std::io::Error::other("the copying thread panicked"),
            ))
        })
    })
}

/// Copies the server's side to git; with `intercept`, first reads the ref advertisement and
/// passes its object ids on.
fn copy_down<W: Write>(
    session: &Session,
    recv: &mut RecvHalf,
    output: &mut W,
    intercept: bool,
    adv_tx: &std::sync::mpsc::Sender<Vec<String>>,
) -> Result<(), NetError> {
    if intercept {
        let mut reader = StreamReader { session, recv };
        let (raw, lines) = read_section(&mut reader)
            .map_err(|e| NetError::io("reading the server's ref advertisement", e))?;
        output
            .write_all(&raw)
            .and_then(|()| output.flush())
            .map_err(|e| NetError::io("writing to git", e))?;
        let oids = lines
            .iter()
            .filter_map(|l| l.split(' ').next())
            .filter(|o| is_oid(o) && !is_zero(o))
            .map(str::to_owned)
            .collect();
        let _ = adv_tx.send(oids);
    }
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match session.block_on(tokio::io::AsyncReadExt::read(recv, &mut buf)) {
            Ok(0) => return Ok(()),
            Ok(n) => output
                .write_all(&buf[..n])
                .and_then(|()| output.flush())
                .map_err(|e| NetError::io("writing to git", e))?,
            Err(e) => return Err(lost(session, &e)),
        }
    }
}

fn lost(session: &Session, e: &dyn std::fmt::Display) -> NetError {
    NetError::Lost {
        peer: session.url().authority(),
        reason: e.to_string(),
    }
}

/// Whether `oid` is git's all-zero id (a ref created or deleted).
pub fn is_zero(oid: &str) -> bool {
    oid.bytes().all(|b| b == b'0')
}

fn is_oid(s: &str) -> bool {
    s.len() >= 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `<old> <new> <ref>` of a push command (capabilities after a NUL already removed).
fn parse_update(line: &str) -> Option<RefUpdate> {
    let mut f = line.splitn(3, ' ');
    let (old, new, name) = (f.next()?, f.next()?, f.next()?);
    (is_oid(old) && is_oid(new)).then(|| RefUpdate {
        old: old.to_owned(),
        new: new.to_owned(),
        name: name.to_owned(),
    })
}

/// Reads pkt-lines up to and including the first flush; returns their bytes (to forward
/// unchanged) and their text, each cut at a NUL (capabilities) and without the newline.
fn read_section<R: Read>(input: &mut R) -> std::io::Result<(Vec<u8>, Vec<String>)> {
    let mut held = Vec::new();
    let mut lines = Vec::new();
    let mut reader = PktReader::new(input);
    loop {
        match reader.read_packet().map_err(std::io::Error::from)? {
            // Nothing at all (git gave up before sending, e.g. a refusing hook): no section.
            None if held.is_empty() => return Ok((held, lines)),
            None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Some(Packet::Flush) => {
                held.extend_from_slice(b"0000");
                return Ok((held, lines));
            }
            Some(Packet::Data(payload)) => {
                held.extend_from_slice(format!("{:04x}", payload.len() + 4).as_bytes());
                held.extend_from_slice(payload);
                let text = String::from_utf8_lossy(payload);
                let text = text.split('\0').next().unwrap_or("").trim_end_matches('\n');
                lines.push(text.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_helper_commands() {
        assert_eq!(parse("capabilities\n"), Command::Capabilities);
        assert_eq!(
            parse("option progress true\n"),
            Command::Option {
                name: "progress".into(),
                value: "true".into()
            }
        );
        assert_eq!(
            parse("connect git-receive-pack\n"),
            Command::Connect {
                service: "git-receive-pack".into()
            }
        );
        assert_eq!(parse("\n"), Command::End);
        assert_eq!(parse("fetch abc x"), Command::Unknown("fetch abc x".into()));
    }

    /// A push preparer for sessions that never push.
    struct NoPush;

    impl PushPreparer for NoPush {
        fn before_push(
            &mut self,
            _: &Session,
            _: &[RefUpdate],
            _: &[String],
            _: Verbosity,
        ) -> Result<(), String> {
            Err("no push in this test".into())
        }
    }

    /// Runs the helper loop on `input` as git would send it; what it answered, and how it ended.
    fn drive(input: &str) -> (String, Result<(), NetError>) {
        let mut out = Vec::new();
        let ended = run(
            "dits://127.0.0.1:1/team/film",
            input.as_bytes(),
            &mut out,
            &mut NoPush,
        );
        (String::from_utf8(out).unwrap_or_default(), ended)
    }

    #[test]
    fn the_loop_answers_git_as_git_expects() {
        // What git sends before a fetch, then the blank line that ends the session.
        let (out, ended) =
            drive("capabilities\noption progress false\noption verbosity 0\noption depth 1\n\n");
        assert!(ended.is_ok(), "{ended:?}");
        assert_eq!(out, "connect\noption\n\nok\nok\nunsupported\n");
        // Git closing the pipe ends the session too.
        let (out, ended) = drive("capabilities\n");
        assert!(ended.is_ok(), "{ended:?}");
        assert_eq!(out, CAPABILITIES);
        // A command this helper does not have is an error that says so, after the answers
        // before it.
        let (out, ended) = drive("capabilities\nlist for-push\n");
        assert_eq!(out, CAPABILITIES);
        match ended {
            Err(NetError::Helper(text)) => {
                assert!(text.contains("\"list for-push\""), "{text}")
            }
            other => panic!("expected a helper error, got {other:?}"),
        }
        // A URL that is not a Dits URL is refused before anything is answered.
        let mut out = Vec::new();
        let ended = run(
            "https://example.invalid/x",
            &b"capabilities\n"[..],
            &mut out,
            &mut NoPush,
        );
        assert!(ended.is_err() && out.is_empty(), "{ended:?}");
    }

    #[test]
    fn reads_push_commands_up_to_the_flush_and_keeps_the_rest() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let z = "0".repeat(40);
        let pkt = |s: &str| format!("{:04x}{s}", s.len() + 4);
        let stream = format!(
            "{}{}0000PACKDATA",
            pkt(&format!(
                "{a} {b} refs/heads/main\0report-status side-band-64k\n"
            )),
            pkt(&format!("{b} {z} refs/heads/old\n")),
        );
        let mut input = stream.as_bytes();
        let (held, lines) = read_section(&mut input).unwrap();
        let updates: Vec<RefUpdate> = lines.iter().filter_map(|l| parse_update(l)).collect();
        assert_eq!(held, stream.as_bytes()[..stream.len() - 8]);
        assert_eq!(input, b"PACKDATA");
        assert_eq!(
            updates,
            vec![
                RefUpdate {
                    old: a.clone(),
                    new: b.clone(),
                    name: "refs/heads/main".into()
                },
                RefUpdate {
                    old: b,
                    new: z,
                    name: "refs/heads/old".into()
                }
            ]
        );
        let mut garbage = &b"zzzz"[..];
        assert!(read_section(&mut garbage).is_err());
    }
}
