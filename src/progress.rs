//! Progress reporting from long work. The library only counts; the binary decides whether and
//! how to draw.

use std::io::{self, Read};

/// Receives progress while layers are read.
pub trait Progress: Sync {
    /// Work of `total` bytes starts.
    fn begin(&self, _total: u64) {}
    /// `bytes` more bytes were read.
    fn advance(&self, _bytes: u64) {}
    /// The work ended.
    fn end(&self) {}
}

/// Progress that nobody watches.
pub struct Silent;

impl Progress for Silent {}

/// Reports every read through it as progress.
pub struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<'a, R> ProgressReader<'a, R> {
    pub fn new(inner: R, progress: &'a dyn Progress) -> Self {
        ProgressReader { inner, progress }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.progress.advance(read as u64);
        Ok(read)
    }
}
