//! Progress reporting: sources report bytes consumed so the CLI can draw a bar.

use std::io::Read;

/// Receives the number of bytes consumed so far, from time to time.
pub trait Progress: Send {
    /// Called with the running total of bytes read from the current file.
    fn bytes_read(&mut self, total: u64);
}

/// Progress that goes nowhere (tests, servers).
pub struct NoProgress;

impl Progress for NoProgress {
    fn bytes_read(&mut self, _total: u64) {}
}

/// A reader that reports how many bytes passed through it, every 1 MiB or so.
pub struct CountingReader<'p, R> {
    inner: R,
    total: u64,
    reported: u64,
    progress: &'p mut dyn Progress,
}

impl<'p, R: Read> CountingReader<'p, R> {
    /// Wraps `inner`, reporting to `progress`.
    pub fn new(inner: R, progress: &'p mut dyn Progress) -> Self {
        CountingReader {
            inner,
            total: 0,
            reported: 0,
            progress,
        }
    }
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if n == 0 || self.total - self.reported >= 1 << 20 {
            self.reported = self.total;
            self.progress.bytes_read(self.total);
        }
        Ok(n)
    }
}
