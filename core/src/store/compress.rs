//! Per-chunk zstd, only where it pays. Video and most media are already compressed, so we probe
//! a small prefix first and skip the full attempt when the probe does not shrink.

use std::io;

/// Size of the probe compressed before deciding to try the whole chunk.
const PROBE_LEN: usize = 8 * 1024;

pub struct Compressor {
    probe: zstd::bulk::Compressor<'static>,
    full: zstd::bulk::Compressor<'static>,
}

impl Compressor {
    pub fn new(level: i32) -> io::Result<Self> {
        Ok(Compressor {
            probe: zstd::bulk::Compressor::new(1)?,
            full: zstd::bulk::Compressor::new(level)?,
        })
    }

    /// The compressed form if it saves at least 1/8 of the bytes, else `None`.
    pub fn compress(&mut self, data: &[u8]) -> io::Result<Option<Vec<u8>>> {
        if data.len() < 512 {
            return Ok(None);
        }
        let probe = &data[..data.len().min(PROBE_LEN)];
        if !worth_it(self.probe.compress(probe)?.len(), probe.len()) {
            return Ok(None);
        }
        let out = self.full.compress(data)?;
        Ok(worth_it(out.len(), data.len()).then_some(out))
    }
}

fn worth_it(compressed: usize, raw: usize) -> bool {
    compressed < raw - raw / 8
}

pub fn decompress(payload: &[u8], raw_len: u32) -> io::Result<Vec<u8>> {
    let out = zstd::bulk::decompress(payload, raw_len as usize)?;
    if out.len() != raw_len as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("decompressed to {} bytes, expected {raw_len}", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::pseudo_random;

    #[test]
    fn compresses_text_but_not_noise() -> io::Result<()> {
        let mut c = Compressor::new(3)?;
        let text = "frame 0001 position 12.5 rotation 0.0\n".repeat(2000);
        let packed = c.compress(text.as_bytes())?.expect("text compresses");
        assert!(packed.len() < text.len() / 4);
        assert_eq!(decompress(&packed, text.len() as u32)?, text.as_bytes());
        assert!(c.compress(&pseudo_random(9, 65536))?.is_none());
        Ok(())
    }
}
