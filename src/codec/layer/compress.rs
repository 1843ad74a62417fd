//! Deterministic layer compression.
//!
//! The same input bytes and the same [`CompressOptions`] always give the same compressed bytes,
//! whatever machine runs ocikit:
//! - **gzip** is written by flate2 (zlib-rs backend) with a fixed header: mtime 0, no file name,
//!   no comment, OS byte 255 ("unknown"). A stream longer than one block is compressed in
//!   fixed-size blocks in parallel, pigz-style, into one gzip member whose bytes do not depend
//!   on the number of threads ([`super::gzip`]). The deflate stream depends only on the input,
//!   the level and the compressor's implementation (a different zlib-rs release could, in
//!   principle, pick different matches; the bytes are reproducible for a given ocikit build).
//! - **zstd** is always written in multithreaded mode (`nbWorkers` ≥ 1). zstd's multithreaded
//!   format does not depend on the number of workers: input is cut into jobs of a fixed size
//!   ([`ZSTD_JOB_SIZE`]), not one derived from the worker count, so a 1-core CI runner and a
//!   64-core workstation produce identical blobs. (Single-threaded mode, `nbWorkers` = 0,
//!   produces a *different* stream, which is why it is never used.)
//!
//! Two things would otherwise let the *caller's* behaviour leak into the bytes, so
//! [`CompressWriter`] rules them out:
//! - how input is split into `write` calls: the deflate encoder's output depends on it (zstd's
//!   does not seem to, but nothing promises it), so input is fed to either compressor in fixed
//!   pieces ([`CHUNK`] bytes, or gzip's blocks), whatever sizes the caller writes;
//! - flushing: a sync flush ends a deflate block or a zstd block early, so `flush` only flushes
//!   the writer underneath, and everything is written out by [`CompressWriter::finish`].

use std::io::{self, Write};

use super::gzip;
use crate::error::{Error, Result};
pub use crate::spec::document::media_type::Compression;

/// The zstd level ocikit uses unless told otherwise (zstd's own default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// The gzip level ocikit uses unless told otherwise (zlib's default).
pub const DEFAULT_GZIP_LEVEL: u32 = 6;
/// The size of zstd's jobs. zstd's default (four windows: 8 MiB at level 3) costs about 22 MiB
/// of buffers per worker; 2 MiB costs about 6, for 0.8% more bytes on a Debian root
/// filesystem. Fixed, it also keeps the bytes from changing with a zstd release's default.
pub const ZSTD_JOB_SIZE: u32 = 2 * 1024 * 1024;
/// The size of the pieces the compressors are fed (see the module documentation).
pub const CHUNK: usize = 128 * 1024;
/// The most compression threads ocikit starts by default (more rarely helps for layer-sized
/// input).
const MAX_DEFAULT_WORKERS: u32 = 8;

/// How to compress a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompressOptions {
    /// The algorithm; `None` passes the bytes through.
    pub compression: Compression,
    /// The level: gzip 0–9 (default 6), zstd 1–22 (default 3). `None` for the default.
    pub level: Option<i32>,
    /// Compression threads: zstd's workers, gzip's block compressors (at least 1; 0 is treated
    /// as 1). The output does not depend on it.
    pub workers: u32,
}

impl CompressOptions {
    /// Default level; as many compression threads as cores (at most 8).
    pub fn new(compression: Compression) -> CompressOptions {
        CompressOptions {
            compression,
            level: None,
            workers: default_workers(),
        }
    }

    /// The same options with `level`.
    pub fn with_level(self, level: i32) -> CompressOptions {
        CompressOptions {
            level: Some(level),
            ..self
        }
    }
}

impl Default for CompressOptions {
    /// gzip, the most widely readable layer compression.
    fn default() -> Self {
        CompressOptions::new(Compression::Gzip)
    }
}

fn default_workers() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
        .clamp(1, MAX_DEFAULT_WORKERS)
}

/// A writer that compresses what is written through it into `W`.
///
/// Call [`finish`](CompressWriter::finish) at the end: dropping the writer without it leaves the
/// compressed stream incomplete.
pub struct CompressWriter<W: Write> {
    inner: Inner<W>,
    /// Input not yet given to zstd; it is fed in whole [`CHUNK`]s.
    pending: Vec<u8>,
}

enum Inner<W: Write> {
    None(W),
    Gzip(gzip::Writer<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> CompressWriter<W> {
    /// Starts a compressed stream into `inner`. Fails on a level out of range, or if zstd
    /// cannot set up its workers.
    pub fn new(inner: W, options: &CompressOptions) -> Result<CompressWriter<W>> {
        let inner = match options.compression {
            Compression::None => Inner::None(inner),
            Compression::Gzip => {
                let level = match options.level {
                    None => DEFAULT_GZIP_LEVEL,
                    Some(l @ 0..=9) => l as u32,
                    Some(l) => return Err(bad_level("gzip", l, "0 to 9")),
                };
                Inner::Gzip(gzip::Writer::new(inner, level, options.workers))
            }
            Compression::Zstd => {
                let level = options.level.unwrap_or(DEFAULT_ZSTD_LEVEL);
                if !(1..=22).contains(&level) {
                    return Err(bad_level("zstd", level, "1 to 22"));
                }
                let setup = |e: io::Error| Error::Unsupported {
                    what: "the zstd compressor".into(),
                    reason: format!("cannot be set up: {e}"),
                };
                let mut encoder = zstd::Encoder::new(inner, level).map_err(setup)?;
                // Always multithreaded, even with one worker: the zstdmt format does not depend
                // on the worker count, so the bytes are the same on every machine.
                encoder.multithread(options.workers.max(1)).map_err(setup)?;
                encoder
                    .set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))
                    .map_err(setup)?;
                Inner::Zstd(encoder)
            }
        };
        // gzip cuts its input into blocks itself.
        let pending = match inner {
            Inner::Zstd(_) => Vec::with_capacity(CHUNK),
            _ => Vec::new(),
        };
        Ok(CompressWriter { inner, pending })
    }

    /// Ends the compressed stream and returns the writer underneath (not flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.feed_pending()?;
        match self.inner {
            Inner::None(w) => Ok(w),
            Inner::Gzip(e) => e.finish(),
            Inner::Zstd(e) => e.finish(),
        }
    }

    /// Gives the pending input to the compressor and empties the buffer.
    fn feed_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        match &mut self.inner {
            Inner::None(w) => w.write_all(&self.pending)?,
            Inner::Gzip(e) => e.write_all(&self.pending)?,
            Inner::Zstd(e) => e.write_all(&self.pending)?,
        }
        self.pending.clear();
        Ok(())
    }
}

fn bad_level(what: &str, level: i32, range: &str) -> Error {
    Error::InvalidInput {
        what: format!("{level}"),
        reason: format!("is not a valid {what} compression level (use {range})"),
    }
}

impl<W: Write> Write for CompressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::None(w) => return w.write(buf),
            Inner::Gzip(e) => return e.write(buf),
            Inner::Zstd(_) => {}
        }
        let n = buf.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == CHUNK {
            self.feed_pending()?;
        }
        Ok(n)
    }

    /// Flushes the writer underneath only: flushing the compressor would change its output.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::None(w) => w.flush(),
            Inner::Gzip(e) => e.get_mut().flush(),
            Inner::Zstd(e) => e.get_mut().flush(),
        }
    }
}

/// Compresses `bytes` in memory (for small inputs and tests).
pub fn compress_bytes(bytes: &[u8], options: &CompressOptions) -> Result<Vec<u8>> {
    let mut writer = CompressWriter::new(Vec::new(), options)?;
    let memory = |e: io::Error| Error::io("cannot compress", "bytes in memory", e);
    writer.write_all(bytes).map_err(memory)?;
    writer.finish().map_err(memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode::Limits;
    use std::io::Read;

    const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    /// Compressible but not trivial input of `n` bytes.
    fn sample(n: u32) -> Vec<u8> {
        let mut state = 0x2545_f491_u32;
        (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if i % 7 == 0 {
                    (state % 251) as u8
                } else {
                    b"the quick brown fox "[(i % 20) as usize]
                }
            })
            .collect()
    }

    fn roundtrip(compression: Compression, input: &[u8]) -> Vec<u8> {
        let compressed = compress_bytes(input, &CompressOptions::new(compression)).unwrap();
        let mut out = Vec::new();
        crate::codec::decode::decompress(&compressed[..], compression, &Limits::default())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn same_input_same_bytes() {
        let input = sample(100_000);
        for c in ALL {
            let options = CompressOptions::new(c);
            let a = compress_bytes(&input, &options).unwrap();
            let b = compress_bytes(&input, &options).unwrap();
            assert_eq!(a, b, "{}", c.name());
        }
    }

    #[test]
    fn round_trips() {
        for input in [Vec::new(), b"x".to_vec(), sample(100_000)] {
            for c in ALL {
                assert_eq!(roundtrip(c, &input), input, "{}", c.name());
            }
        }
    }

    #[test]
    fn gzip_header_is_fixed() {
        let out = compress_bytes(b"abc", &CompressOptions::new(Compression::Gzip)).unwrap();
        // magic, deflate, no flags, mtime 0, xfl 0 (default level), OS unknown
        assert_eq!(&out[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn zstd_output_does_not_depend_on_workers() {
        // More than two zstd jobs at level 3 (8 MiB each), so the workers really split it.
        let input = sample(20 * 1024 * 1024);
        // Written in uneven chunks, as a tar builder would.
        let one = compress_with(Compression::Zstd, &input, 1, 512);
        assert_eq!(one, compress_with(Compression::Zstd, &input, 4, 70_001));
        assert_eq!(
            one,
            compress_with(Compression::Zstd, &input, 0, 70_001),
            "0 workers is treated as 1"
        );
        let mut out = Vec::new();
        crate::codec::decode::decompress(&one[..], Compression::Zstd, &Limits::default())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, input);
    }

    /// `input` compressed with `workers` threads, written in pieces of `piece` bytes.
    fn compress_with(c: Compression, input: &[u8], workers: u32, piece: usize) -> Vec<u8> {
        let options = CompressOptions {
            workers,
            ..CompressOptions::new(c)
        };
        let mut w = CompressWriter::new(Vec::new(), &options).unwrap();
        for chunk in input.chunks(piece) {
            w.write_all(chunk).unwrap();
            w.flush().unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn gzip_output_does_not_depend_on_threads() {
        use crate::codec::layer::gzip::BLOCK;
        // One block and a byte, several blocks and a partial one, exactly three blocks: each
        // cut of the stream into blocks, on 1, 2 and 5 threads, in uneven writes.
        for len in [BLOCK + 1, 3 * BLOCK + 12_345, 3 * BLOCK] {
            let input = sample(len as u32);
            let one = compress_with(Compression::Gzip, &input, 1, 4096);
            assert_eq!(one, compress_with(Compression::Gzip, &input, 2, 70_001));
            assert_eq!(one, compress_with(Compression::Gzip, &input, 5, BLOCK + 3));
            assert_eq!(one, compress_with(Compression::Gzip, &input, 0, len));
            let mut out = Vec::new();
            crate::codec::decode::decompress(&one[..], Compression::Gzip, &Limits::default())
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, input, "{len} bytes");
            // One gzip member: flate2's single-member decoder reads all of it too.
            let mut single = Vec::new();
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut single)
                .unwrap();
            assert_eq!(single, input);
            // The blocks cost little against one deflate stream.
            let stream = {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                e.write_all(&input).unwrap();
                e.finish().unwrap()
            };
            assert!(
                one.len() <= stream.len() + stream.len() / 50,
                "{} vs {}",
                one.len(),
                stream.len()
            );
        }
    }

    #[test]
    fn output_does_not_depend_on_which_thread_compressed_which_block() {
        // Real, varied bytes (this test's own executable): a compressor that kept anything of
        // the block it compressed before (zlib-rs's reset keeps the window) gives other
        // matches, so the bytes would change with how blocks fall on threads.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let input = &exe[..exe.len().min(12 * 1024 * 1024)];
        for c in [Compression::Gzip, Compression::Zstd] {
            let one = compress_with(c, input, 1, 65_536);
            for threads in [2, 3, 2, 4] {
                let many = compress_with(c, input, threads, 65_536);
                assert!(
                    one == many,
                    "{}: {threads} threads gave other bytes",
                    c.name()
                );
            }
        }
    }

    #[test]
    fn gzip_of_one_block_is_one_deflate_stream() {
        use crate::codec::layer::gzip::BLOCK;
        let input = sample(BLOCK as u32);
        let mut e = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), flate2::Compression::new(6));
        for piece in input.chunks(CHUNK) {
            e.write_all(piece).unwrap();
        }
        assert_eq!(
            compress_with(Compression::Gzip, &input, 3, 999),
            e.finish().unwrap()
        );
    }

    #[test]
    fn gzip_header_is_the_same_in_both_forms() {
        use crate::codec::layer::gzip::BLOCK;
        let big = sample(2 * BLOCK as u32);
        for level in [0, 1, 5, 6, 9] {
            let options = CompressOptions::new(Compression::Gzip).with_level(level);
            let small = compress_bytes(b"abc", &options).unwrap();
            let large = compress_bytes(&big, &options).unwrap();
            assert_eq!(small[..10], large[..10], "level {level}");
        }
    }

    #[test]
    fn gzip_output_does_not_depend_on_chunking_or_flush() {
        let input = sample(100_000);
        let options = CompressOptions::new(Compression::Gzip);
        let mut w = CompressWriter::new(Vec::new(), &options).unwrap();
        for chunk in input.chunks(333) {
            w.write_all(chunk).unwrap();
            w.flush().unwrap();
        }
        assert_eq!(
            w.finish().unwrap(),
            compress_bytes(&input, &options).unwrap()
        );
    }

    #[test]
    fn rejects_bad_levels() {
        for (c, level) in [(Compression::Gzip, 10), (Compression::Zstd, 0)] {
            let err = CompressWriter::new(Vec::new(), &CompressOptions::new(c).with_level(level))
                .err()
                .unwrap();
            assert!(err.to_string().contains("compression level"), "{err}");
        }
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let options = CompressOptions::new(Compression::Gzip);
        let mut both = compress_bytes(b"hello ", &options).unwrap();
        both.extend(compress_bytes(b"world", &options).unwrap());
        let mut out = String::new();
        crate::codec::decode::decompress(&both[..], Compression::Gzip, &Limits::default())
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello world");
    }
}
