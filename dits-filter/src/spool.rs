//! Holding a request's content until git has finished sending it.
//!
//! Git writes a request's whole content before it reads our answer, so an answer that depends
//! on content we pass through (smudge of a blob that is not a pointer) must be kept somewhere
//! first: in memory while small, in a temp file beyond that, so memory stays bounded.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const IN_MEMORY: usize = 8 << 20;

pub struct Spool {
    dir: PathBuf,
    mem: Vec<u8>,
    file: Option<File>,
}

impl Spool {
    pub fn new(dir: &Path) -> Self {
        Spool {
            dir: dir.to_owned(),
            mem: Vec::new(),
            file: None,
        }
    }

    /// The content, if it stayed in memory.
    pub fn small_bytes(&self) -> Option<&[u8]> {
        self.file.is_none().then_some(self.mem.as_slice())
    }

    pub fn into_reader<'a>(self) -> io::Result<Box<dyn Read + 'a>> {
        match self.file {
            None => Ok(Box::new(Cursor::new(self.mem))),
            Some(mut f) => {
                f.seek(SeekFrom::Start(0))?;
                Ok(Box::new(f))
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.mem.len() + buf.len() > IN_MEMORY {
            // An unnamed temp file: nothing to clean up if we crash.
            let mut f = tempfile::tempfile_in(&self.dir)?;
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write(buf),
            None => {
                self.mem.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
