//! In-process protocol tests: `serve` is fed the exact bytes git sends and its answers are
//! compared byte for byte. The pkt-line framing used to build both sides here is written
//! independently of the crate's codec, so a framing bug cannot cancel itself out.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use dits_filter::pktline::{PktLineError, MAX_DATA_LEN, MAX_PACKET_LEN};
use dits_filter::server::{
    serve, Capability, Command, Failure, Handler, ProtocolError, Request, Response,
};

// ---------------------------------------------------------------------------------------------
// Framing helpers

/// A pkt-line stream under construction.
#[derive(Debug, Default, Clone)]
struct Pkts(Vec<u8>);

impl Pkts {
    fn new() -> Self {
        Pkts::default()
    }

    fn packet(mut self, payload: &[u8]) -> Self {
        assert!(payload.len() <= MAX_DATA_LEN, "test helper misuse");
        self.0
            .extend_from_slice(format!("{:04x}", payload.len() + 4).as_bytes());
        self.0.extend_from_slice(payload);
        self
    }

    /// A text packet: `text` plus LF.
    fn line(self, text: impl AsRef<[u8]>) -> Self {
        let mut payload = text.as_ref().to_vec();
        payload.push(b'\n');
        self.packet(&payload)
    }

    fn flush(mut self) -> Self {
        self.0.extend_from_slice(b"0000");
        self
    }

    /// A content section: max-size packets, then a flush.
    fn content(mut self, data: &[u8]) -> Self {
        for chunk in data.chunks(MAX_DATA_LEN) {
            self = self.packet(chunk);
        }
        self.flush()
    }

    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// What git sends for a clean or smudge request.
    fn request(self, command: &str, path: &[u8], extra: &[&str], content: &[u8]) -> Self {
        let mut p = self
            .line(format!("command={command}"))
            .line([&b"pathname="[..], path].concat());
        for key in extra {
            p = p.line(key);
        }
        p.flush().content(content)
    }

    fn list_available_blobs(self) -> Self {
        self.line("command=list_available_blobs").flush()
    }

    /// Our answer: success, the content, and the empty "status unchanged" list.
    fn success(self, content: &[u8]) -> Self {
        self.status("success").content(content).flush()
    }

    fn status(self, status: &str) -> Self {
        self.line(format!("status={status}")).flush()
    }
}

/// What git sends to open the session, offering `caps`.
fn git_handshake(caps: &[&str]) -> Pkts {
    let mut p = Pkts::new()
        .line("git-filter-client")
        .line("version=2")
        .flush();
    for cap in caps {
        p = p.line(format!("capability={cap}"));
    }
    p.flush()
}

/// Our reply to the handshake, accepting `caps`.
fn server_handshake(caps: &[&str]) -> Pkts {
    let mut p = Pkts::new()
        .line("git-filter-server")
        .line("version=2")
        .flush();
    for cap in caps {
        p = p.line(format!("capability={cap}"));
    }
    p.flush()
}

const ALL: &[&str] = &["clean", "smudge", "delay"];

#[derive(Debug, PartialEq, Eq)]
enum Pkt {
    Data(Vec<u8>),
    Flush,
}

/// Parses a pkt-line stream, asserting every packet is well-formed and within git's limit.
fn parse(mut bytes: &[u8]) -> Vec<Pkt> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = usize::from_str_radix(std::str::from_utf8(&bytes[..4]).unwrap(), 16).unwrap();
        if len == 0 {
            out.push(Pkt::Flush);
            bytes = &bytes[4..];
            continue;
        }
        assert!(
            (4..=MAX_PACKET_LEN).contains(&len),
            "packet length {len} out of range"
        );
        out.push(Pkt::Data(bytes[4..len].to_vec()));
        bytes = &bytes[len..];
    }
    out
}

/// A compact rendering of a stream, for assertion messages.
fn show(bytes: &[u8]) -> String {
    parse(bytes)
        .iter()
        .map(|p| match p {
            Pkt::Flush => "0000".to_owned(),
            Pkt::Data(d) if d.len() > 40 => format!("<{} bytes>", d.len()),
            Pkt::Data(d) => format!("{:?}", d.escape_ascii().to_string()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[track_caller]
fn assert_stream(actual: &[u8], expected: &Pkts) {
    assert!(
        actual == expected.0.as_slice(),
        "stream mismatch\n  actual: {}\nexpected: {}",
        show(actual),
        show(&expected.0)
    );
}

// ---------------------------------------------------------------------------------------------
// A small filter

/// Uppercases on clean, echoes on smudge; the path picks misbehaviours:
/// "bad" -> error, "abort" -> abort, "ignore" -> answers without reading its input,
/// "partial" -> output fails after its content, "slow" -> delays when allowed,
/// "wrongdelay" -> delays even when not allowed.
struct TestFilter {
    caps: Vec<Capability>,
    seen: Vec<Request>,
    out: Vec<u8>,
    /// Delayed and not yet reported by `available`.
    delayed: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Reported by `available`, waiting for git's re-request.
    ready: BTreeMap<Vec<u8>, Vec<u8>>,
    finished: bool,
    finish_fails: bool,
}

const IGNORED_ANSWER_LEN: u64 = 1 << 20;

impl TestFilter {
    fn new(caps: &[Capability]) -> Self {
        TestFilter {
            caps: caps.to_vec(),
            seen: Vec::new(),
            out: Vec::new(),
            delayed: BTreeMap::new(),
            ready: BTreeMap::new(),
            finished: false,
            finish_fails: false,
        }
    }

    fn all() -> Self {
        Self::new(&[Capability::Clean, Capability::Smudge, Capability::Delay])
    }
}

/// Yields its bytes, then fails instead of ending.
struct FailAfter<'a>(&'a [u8]);

impl Read for FailAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::other("disk on fire"));
        }
        self.0.read(buf)
    }
}

impl Handler for TestFilter {
    fn capabilities(&self) -> &[Capability] {
        &self.caps
    }

    fn handle<'a>(
        &'a mut self,
        req: &Request,
        input: &mut dyn Read,
    ) -> Result<Response<'a>, Failure> {
        self.seen.push(req.clone());
        let path = req.path_lossy().into_owned();
        if path.contains("abort") {
            return Err(Failure::Abort("told to abort".into()));
        }
        if path.contains("bad") {
            return Err(Failure::Error("told to fail".into()));
        }
        if path.contains("ignore") {
            return Ok(Response::Content(Box::new(
                io::repeat(b'I').take(IGNORED_ANSWER_LEN),
            )));
        }
        if path.contains("wrongdelay") {
            return Ok(Response::Delayed);
        }
        self.out.clear();
        input
            .read_to_end(&mut self.out)
            .map_err(|e| Failure::Error(e.to_string()))?;
        if path.contains("slow") {
            if req.can_delay {
                self.delayed
                    .insert(req.pathname.clone(), std::mem::take(&mut self.out));
                return Ok(Response::Delayed);
            }
            assert!(self.out.is_empty(), "a re-request carries no content");
            self.out = self
                .ready
                .remove(&req.pathname)
                .ok_or_else(|| Failure::Error("never delayed".into()))?;
        }
        if req.command == Command::Clean {
            self.out.make_ascii_uppercase();
        }
        if path.contains("partial") {
            return Ok(Response::Content(Box::new(FailAfter(&self.out))));
        }
        Ok(Response::Content(Box::new(&self.out[..])))
    }

    fn available(&mut self) -> Result<Vec<Vec<u8>>, Failure> {
        let now_ready = std::mem::take(&mut self.delayed);
        let paths = now_ready.keys().cloned().collect();
        self.ready.extend(now_ready);
        Ok(paths)
    }

    fn finish(&mut self) -> Result<(), Failure> {
        self.finished = true;
        if self.finish_fails {
            return Err(Failure::Error("cleanup failed".into()));
        }
        Ok(())
    }
}

fn run(filter: &mut TestFilter, input: &Pkts) -> (Result<(), ProtocolError>, Vec<u8>) {
    let mut out = Vec::new();
    let res = serve(&input.0[..], &mut out, filter);
    (res, out)
}

/// Runs a session that must end cleanly and returns what the server wrote.
#[track_caller]
fn run_ok(filter: &mut TestFilter, input: &Pkts) -> Vec<u8> {
    let (res, out) = run(filter, input);
    if let Err(e) = res {
        panic!("serve failed: {e}\n  output: {}", show(&out));
    }
    assert!(filter.finished, "finish() runs at a clean end of input");
    out
}

fn lowercase_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// Handshake

#[test]
fn handshake_bytes_are_exact() {
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &git_handshake(ALL));
    assert_eq!(
        out,
        b"0016git-filter-server\n000eversion=2\n0000\
          0015capability=clean\n0016capability=smudge\n0015capability=delay\n0000"
    );
    assert!(filter.seen.is_empty());
}

#[test]
fn version_2_is_picked_among_several() {
    let input = Pkts::new()
        .line("git-filter-client")
        .line("version=3")
        .line("version=2")
        .line("version=1")
        .flush()
        .line("capability=clean")
        .flush();
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    assert_stream(&out, &server_handshake(&["clean"]));
}

#[test]
fn git_offering_only_clean_gets_only_clean_and_smudge_is_refused() {
    let input = git_handshake(&["clean"]).request("smudge", b"a.txt", &[], b"data");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    assert_stream(&out, &server_handshake(&["clean"]).status("error"));
    assert!(
        filter.seen.is_empty(),
        "handler not asked for an unnegotiated command"
    );
}

#[test]
fn delay_is_not_answered_when_the_handler_lacks_it() {
    let input = git_handshake(&["clean", "smudge", "delay", "teleport"]);
    let mut filter = TestFilter::new(&[Capability::Smudge, Capability::Clean]);
    let out = run_ok(&mut filter, &input);
    // In git's order, not the handler's; unknown offers are ignored.
    assert_stream(&out, &server_handshake(&["clean", "smudge"]));
}

#[test]
fn list_available_blobs_without_negotiated_delay_keeps_the_two_list_shape() {
    let input = git_handshake(&["clean", "smudge"]).list_available_blobs();
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    assert_stream(
        &out,
        &server_handshake(&["clean", "smudge"])
            .flush()
            .status("error"),
    );
}

#[test]
fn bad_handshakes_are_errors_naming_what_came() {
    let cases: Vec<(Pkts, &str)> = vec![
        (
            Pkts::new().line("git-filter-clint").line("version=2").flush(),
            "bad filter handshake: expected \"git-filter-client\", got \"git-filter-clint\"",
        ),
        (
            Pkts::new().flush(),
            "bad filter handshake: expected \"git-filter-client\", got a flush packet",
        ),
        (
            Pkts::new()
                .line("git-filter-client")
                .line("capability=clean")
                .flush(),
            "bad filter handshake: expected \"version=<n>\" or a flush packet, got \"capability=clean\"",
        ),
        (
            Pkts::new()
                .line("git-filter-client")
                .line("version=2")
                .flush()
                .line("clean")
                .flush(),
            "bad filter handshake: expected \"capability=<name>\" or a flush packet, got \"clean\"",
        ),
    ];
    for (input, message) in cases {
        let mut filter = TestFilter::all();
        let (res, _) = run(&mut filter, &input);
        let err = res.unwrap_err();
        assert!(matches!(err, ProtocolError::BadHandshake { .. }), "{err:?}");
        assert_eq!(err.to_string(), message);
        assert!(!filter.finished);
    }
}

#[test]
fn missing_version_2_fails_clearly_without_answering() {
    let input = Pkts::new()
        .line("git-filter-client")
        .line("version=1")
        .line("version=3")
        .flush();
    let mut filter = TestFilter::all();
    let (res, out) = run(&mut filter, &input);
    match res.unwrap_err() {
        ProtocolError::UnsupportedVersion { offered } => assert_eq!(offered, ["1", "3"]),
        other => panic!("{other:?}"),
    }
    assert!(
        out.is_empty(),
        "nothing is answered to an unsupported version"
    );
}

#[test]
fn garbage_instead_of_pkt_lines_is_a_typed_error() {
    let input = Pkts::new().raw(b"GET / HTTP/1.1\r\n");
    let mut filter = TestFilter::all();
    let (res, _) = run(&mut filter, &input);
    assert!(matches!(
        res,
        Err(ProtocolError::PktLine(PktLineError::BadPrefix { prefix })) if &prefix == b"GET "
    ));
}

// ---------------------------------------------------------------------------------------------
// Requests

#[test]
fn clean_of_multi_packet_content_is_reassembled_and_repacketized() {
    let content = lowercase_pattern(3 * MAX_DATA_LEN + 123);
    let input = git_handshake(ALL).request("clean", b"big.txt", &[], &content);
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);

    let upper = content.to_ascii_uppercase();
    assert_stream(&out, &server_handshake(ALL).success(&upper));

    let answer = &out[server_handshake(ALL).0.len()..];
    let packets = parse(answer);
    let data: Vec<&[u8]> = packets
        .iter()
        .filter_map(|p| match p {
            Pkt::Data(d) => Some(d.as_slice()),
            Pkt::Flush => None,
        })
        .collect();
    // status line, then content in full-size packets and one remainder.
    assert_eq!(data.len(), 1 + 4);
    assert!(data[1..4].iter().all(|d| d.len() == MAX_DATA_LEN));
    assert_eq!(data[4].len(), 123);
    assert_eq!(data[1..].concat(), upper);
}

#[test]
fn request_keys_are_parsed_and_unknown_ones_ignored() {
    let input = git_handshake(ALL)
        .request(
            "smudge",
            b"dir/a=b.txt\n",
            &[
                "ref=refs/heads/main",
                "treeish=0123456789abcdef0123456789abcdef01234567",
                "blob=89abcdef0123456789abcdef0123456789abcdef",
                "future-key=x=y",
                "no equals sign here",
                "can-delay=1",
            ],
            b"x",
        )
        // gitoxide's shape: no blob, ref or treeish.
        .request("clean", b"plain.txt", &[], b"y");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    assert_stream(&out, &server_handshake(ALL).success(b"x").success(b"Y"));
    assert_eq!(
        filter.seen,
        [
            Request {
                command: Command::Smudge,
                // Only the line's own LF is stripped; the path's trailing LF stays.
                pathname: b"dir/a=b.txt\n".to_vec(),
                blob: Some("89abcdef0123456789abcdef0123456789abcdef".into()),
                treeish: Some("0123456789abcdef0123456789abcdef01234567".into()),
                reference: Some("refs/heads/main".into()),
                can_delay: true,
            },
            Request {
                command: Command::Clean,
                pathname: b"plain.txt".to_vec(),
                blob: None,
                treeish: None,
                reference: None,
                can_delay: false,
            },
        ]
    );
}

#[test]
fn empty_file_gets_zero_content_packets() {
    let input = git_handshake(ALL).request("clean", b"empty.txt", &[], b"");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    let handshake_len = server_handshake(ALL).0.len();
    assert_eq!(&out[handshake_len..], b"0013status=success\n000000000000");
}

#[test]
fn error_for_one_file_then_the_next_file_succeeds() {
    let big = lowercase_pattern(2 * MAX_DATA_LEN + 1);
    let input = git_handshake(ALL)
        .request("clean", b"bad.bin", &[], &big)
        .request("clean", b"good.txt", &[], b"fine");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    assert_stream(
        &out,
        &server_handshake(ALL).status("error").success(b"FINE"),
    );
    assert_eq!(filter.seen.len(), 2);
}

#[test]
fn error_part_way_follows_the_partial_content() {
    let input = git_handshake(ALL)
        .request("clean", b"partial.txt", &[], b"half written")
        .request("smudge", b"next.txt", &[], b"ok");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    let expected = server_handshake(ALL)
        .status("success")
        .content(b"HALF WRITTEN")
        .status("error")
        .success(b"ok");
    assert_stream(&out, &expected);
}

#[test]
fn abort_answers_status_abort_and_keeps_serving() {
    let input = git_handshake(ALL)
        .request("clean", b"abort.bin", &[], b"zzz")
        .request("smudge", b"after.txt", &[], b"still here");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    assert_stream(
        &out,
        &server_handshake(ALL).status("abort").success(b"still here"),
    );
}

#[test]
fn unknown_command_gets_status_error_and_the_loop_continues() {
    let input = git_handshake(ALL)
        .line("command=frobnicate")
        .line("pathname=x")
        .flush()
        .request("clean", b"y.txt", &[], b"y");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    assert_stream(&out, &server_handshake(ALL).status("error").success(b"Y"));
    assert_eq!(filter.seen.len(), 1);
}

#[test]
fn handler_that_reads_nothing_is_drained_and_the_stream_stays_in_sync() {
    let big = lowercase_pattern(5 * MAX_DATA_LEN + 7);
    let input = git_handshake(ALL)
        .request("clean", b"ignore.bin", &[], &big)
        .request("clean", b"next.txt", &[], b"next");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    let ignored = vec![b'I'; IGNORED_ANSWER_LEN as usize];
    assert_stream(
        &out,
        &server_handshake(ALL).success(&ignored).success(b"NEXT"),
    );
}

#[test]
fn delay_flow_with_list_available_blobs_and_re_request() {
    let input = git_handshake(ALL)
        .request("smudge", b"slow.bin", &["can-delay=1"], b"slow data")
        .request("smudge", b"fast.txt", &["can-delay=1"], b"fast data")
        .list_available_blobs()
        .request("smudge", b"slow.bin", &[], b"")
        .list_available_blobs();
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    let expected = server_handshake(ALL)
        .status("delayed")
        .success(b"fast data")
        .line("pathname=slow.bin")
        .flush()
        .status("success")
        .success(b"slow data")
        // Nothing pending any more: empty list, then success.
        .flush()
        .status("success");
    assert_stream(&out, &expected);
    assert!(filter.ready.is_empty() && filter.delayed.is_empty());
}

#[test]
fn delayed_answer_without_can_delay_is_a_per_file_error() {
    let input = git_handshake(ALL)
        .request("smudge", b"wrongdelay.bin", &[], b"abc")
        .request("smudge", b"ok.txt", &[], b"ok");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    assert_stream(&out, &server_handshake(ALL).status("error").success(b"ok"));
}

#[test]
fn non_utf8_pathname_survives_both_ways() {
    let path: &[u8] = b"m\xe9dia/slow-\xff.bin";
    let input = git_handshake(ALL)
        .request("smudge", path, &["can-delay=1"], b"bytes")
        .list_available_blobs()
        .request("smudge", path, &[], b"");
    let mut filter = TestFilter::all();
    let out = run_ok(&mut filter, &input);
    let expected = server_handshake(ALL)
        .status("delayed")
        .line([&b"pathname="[..], path].concat())
        .flush()
        .status("success")
        .success(b"bytes");
    assert_stream(&out, &expected);
    assert_eq!(filter.seen[0].pathname, path);
    assert_eq!(filter.seen[1].pathname, path);
    assert_eq!(
        filter.seen[0].path_lossy(),
        "m\u{fffd}dia/slow-\u{fffd}.bin"
    );
}

// ---------------------------------------------------------------------------------------------
// Broken input and session end

#[test]
fn truncated_input_is_a_protocol_error_not_a_panic() {
    let full = git_handshake(ALL).request("clean", b"t.txt", &[], b"0123456789");
    let handshake_len = git_handshake(ALL).0.len();
    // Every strict prefix that ends after the handshake but inside the request.
    for cut in handshake_len + 1..full.0.len() {
        let input = Pkts(full.0[..cut].to_vec());
        let mut filter = TestFilter::all();
        let (res, _) = run(&mut filter, &input);
        let err = res.expect_err("truncated input must fail");
        assert!(
            matches!(
                err,
                ProtocolError::PktLine(PktLineError::Truncated { .. } | PktLineError::MissingFlush)
                    | ProtocolError::UnexpectedEof { .. }
            ),
            "cut at {cut}: {err:?}"
        );
        assert!(
            !filter.finished,
            "cut at {cut}: finish() only at a clean end"
        );
    }
    // And every prefix inside the handshake.
    for cut in 1..handshake_len {
        let input = Pkts(full.0[..cut].to_vec());
        let (res, _) = run(&mut TestFilter::all(), &input);
        assert!(res.is_err(), "cut at {cut}");
    }
}

#[test]
fn eof_inside_a_key_list_and_missing_command_are_reported() {
    let input = git_handshake(ALL).line("command=clean");
    let (res, _) = run(&mut TestFilter::all(), &input);
    let err = res.unwrap_err();
    assert!(
        matches!(err, ProtocolError::UnexpectedEof { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "git closed the pipe in the middle of a request's key list"
    );

    let input = git_handshake(ALL).line("pathname=a").flush().content(b"");
    let (res, _) = run(&mut TestFilter::all(), &input);
    match res.unwrap_err() {
        ProtocolError::MissingCommand { keys } => assert_eq!(keys, ["pathname"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn content_without_its_flush_is_a_protocol_error() {
    // The handler sees an I/O error and answers Failure::Error, but the session cannot go on.
    let input = git_handshake(ALL)
        .line("command=clean")
        .line("pathname=a.txt")
        .flush()
        .packet(b"abc");
    let mut filter = TestFilter::all();
    let (res, out) = run(&mut filter, &input);
    assert!(matches!(
        res,
        Err(ProtocolError::PktLine(PktLineError::MissingFlush))
    ));
    assert_stream(&out, &server_handshake(ALL));
}

#[test]
fn finish_runs_at_clean_eof_and_its_failure_is_reported() {
    let input = git_handshake(ALL).request("clean", b"a", &[], b"a");
    let mut filter = TestFilter::all();
    filter.finish_fails = true;
    let (res, out) = run(&mut filter, &input);
    assert!(filter.finished);
    match res.unwrap_err() {
        ProtocolError::Finish { message } => assert_eq!(message, "cleanup failed"),
        other => panic!("{other:?}"),
    }
    assert_stream(&out, &server_handshake(ALL).success(b"A"));
}

/// Records where the server flushed its output.
#[derive(Default)]
struct FlushRecorder {
    bytes: Vec<u8>,
    flushed_at: Vec<usize>,
}

impl Write for FlushRecorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushed_at.push(self.bytes.len());
        Ok(())
    }
}

#[test]
fn output_is_flushed_once_per_complete_answer() {
    let big = lowercase_pattern(3 * MAX_DATA_LEN);
    let input = git_handshake(ALL)
        .request("clean", b"big.txt", &[], &big)
        .request("clean", b"bad.txt", &[], b"")
        .list_available_blobs();
    let mut filter = TestFilter::all();
    let mut out = FlushRecorder::default();
    serve(&input.0[..], &mut out, &mut filter).unwrap();

    let version = Pkts::new()
        .line("git-filter-server")
        .line("version=2")
        .flush();
    let mut expected = vec![version.0.len(), server_handshake(ALL).0.len()];
    let mut answers = server_handshake(ALL);
    answers = answers.success(&big.to_ascii_uppercase());
    expected.push(answers.0.len());
    answers = answers.status("error");
    expected.push(answers.0.len());
    answers = answers.flush().status("success");
    expected.push(answers.0.len());

    assert_stream(&out.bytes, &answers);
    assert_eq!(out.flushed_at, expected);
}

/// Over a real socket pair with kernel-sized buffers, a large request the handler never reads
/// followed by a large answer must not deadlock: git writes all content before reading.
#[cfg(unix)]
#[test]
fn real_pipes_large_unread_request_and_large_answer_do_not_deadlock() {
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    let (git, filter_end) = UnixStream::pair().unwrap();
    let server = thread::spawn(move || {
        let mut filter = TestFilter::all();
        let input = io::BufReader::new(filter_end.try_clone().unwrap());
        let output = io::BufWriter::new(filter_end);
        let res = serve(input, output, &mut filter);
        (
            res.map_err(|e| e.to_string()),
            filter.seen.len(),
            filter.finished,
        )
    });

    let big = lowercase_pattern(4 << 20);
    let (done_tx, done_rx) = mpsc::channel();
    let mut git_side = git.try_clone().unwrap();
    let client = thread::spawn(move || {
        // Like git: each message is written in full before its answer is read.
        let mut expect = |sent: &Pkts, answer: &Pkts| {
            git_side.write_all(&sent.0).unwrap();
            let mut got = vec![0u8; answer.0.len()];
            git_side.read_exact(&mut got).unwrap();
            assert_stream(&got, answer);
        };
        expect(
            &Pkts::new()
                .line("git-filter-client")
                .line("version=2")
                .flush(),
            &Pkts::new()
                .line("git-filter-server")
                .line("version=2")
                .flush(),
        );
        expect(
            &Pkts::new()
                .line("capability=clean")
                .line("capability=smudge")
                .flush(),
            &Pkts::new()
                .line("capability=clean")
                .line("capability=smudge")
                .flush(),
        );
        expect(
            &Pkts::new().request("clean", b"ignore.bin", &[], &big),
            &Pkts::new().success(&vec![b'I'; IGNORED_ANSWER_LEN as usize]),
        );
        expect(
            &Pkts::new().request("smudge", b"small.txt", &[], b"small"),
            &Pkts::new().success(b"small"),
        );
        // Closing our write side ends the session.
        git_side.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        git_side.read_to_end(&mut rest).unwrap();
        done_tx.send(rest).unwrap();
    });

    match done_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(rest) => assert!(rest.is_empty(), "nothing after the last answer"),
        // The client thread panicked (dropping the sender): report its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(client.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Unblock both threads so the failure is reported rather than hanging.
            git.shutdown(std::net::Shutdown::Both).ok();
            panic!("filter session deadlocked");
        }
    }
    client.join().unwrap();
    let (res, seen, finished) = server.join().unwrap();
    assert_eq!(res, Ok(()));
    assert_eq!(seen, 2);
    assert!(finished);
}

/// gitoxide starts a filter process it may then not use and closes the pipe at once: that
/// is a quiet end, not a bad handshake.
#[test]
fn a_client_that_leaves_before_the_handshake_ends_the_session_quietly() {
    let mut filter = TestFilter::all();
    let (res, out) = run(&mut filter, &Pkts::new());
    assert!(res.is_ok(), "{res:?}");
    assert!(out.is_empty(), "nothing is written to a client that left");
    assert!(!filter.finished, "no session, nothing to finish");
}
