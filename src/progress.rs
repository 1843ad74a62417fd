//! Progress of long operations, reported to whoever draws it (the binary draws a bar on a
//! terminal). Every long operation takes a `&dyn Progress`; the library never draws anything.

/// Receives progress while bytes are read or written.
pub trait Progress: Sync {
    /// The number of bytes that will be processed in all.
    fn total(&self, bytes: u64);
    /// `bytes` more were processed.
    fn advance(&self, bytes: u64);
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn total(&self, _bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
}

/// A reader that reports the bytes it passes to a [`Progress`].
pub struct Counted<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<'a, R> Counted<'a, R> {
    pub fn new(inner: R, progress: &'a dyn Progress) -> Counted<'a, R> {
        Counted { inner, progress }
    }
}

impl<R: std::io::Read> std::io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
