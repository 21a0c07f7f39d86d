//! Body of the `filter_protocol` fuzz target: the server must answer or refuse any byte
//! stream git could (or a broken client might) send, and never panic.

use std::io::{self, Read};

use crate::server::{self, Capability, Command, Failure, Handler, Request, Response};

/// Echoes content, delays smudges that may be delayed, fails paths that say so.
#[derive(Default)]
struct Echo {
    delayed: Vec<Vec<u8>>,
}

impl Handler for Echo {
    fn capabilities(&self) -> &[Capability] {
        &[Capability::Clean, Capability::Smudge, Capability::Delay]
    }

    fn handle<'a>(
        &'a mut self,
        req: &Request,
        input: &mut dyn Read,
    ) -> Result<Response<'a>, Failure> {
        let mut buf = Vec::new();
        input
            .take(1 << 20)
            .read_to_end(&mut buf)
            .map_err(|e| Failure::Error(e.to_string()))?;
        if req.pathname.starts_with(b"err") {
            return Err(Failure::Error("asked to fail".into()));
        }
        if req.can_delay && req.command == Command::Smudge {
            self.delayed.push(req.pathname.clone());
            return Ok(Response::Delayed);
        }
        Ok(Response::Content(Box::new(io::Cursor::new(buf))))
    }

    fn available(&mut self) -> Result<Vec<Vec<u8>>, Failure> {
        Ok(std::mem::take(&mut self.delayed))
    }
}

pub fn filter_protocol(data: &[u8]) {
    let _ = server::serve(data, io::sink(), &mut Echo::default());
}
