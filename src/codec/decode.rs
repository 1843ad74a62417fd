//! The one decoder: gzip, zstd or nothing, with the decompression-bomb policy ([`Limits`])
//! applied to every byte it produces.
//!
//! # The policy, and why these values
//!
//! - [`MAX_UNCOMPRESSED`] = 64 GiB out of one stream. The largest real layers (machine-learning
//!   images with model weights) hold tens of GiB; anything above 64 GiB is far more likely an
//!   attack than an image, would fill the disk of whoever unpacks it, and already costs a
//!   minute of CPU just to hash.
//! - [`MAX_RATIO`] = 1000:1, checked once [`RATIO_GRACE`] = 64 MiB have come out. Real layers
//!   and archives compress 2:1 to 10:1, text-heavy ones rarely beyond 50:1. deflate cannot
//!   exceed about 1032:1, so a gzip stream only gets near the cap when it is almost entirely
//!   one repeated byte (a zero-filled file, the classic bomb); zstd goes far beyond on such
//!   runs. The grace keeps small, very compressible streams (an empty tar is 10 KiB of zeros)
//!   from ever tripping it. The ratio is measured as the stream flows, against the compressed
//!   bytes the decoder has *consumed* (not those merely buffered ahead), so a bomb is stopped
//!   after about 64 MiB of output, not after its whole expansion.
//! - [`MAX_ZSTD_WINDOW`] = 128 MiB, libzstd's own default decoder limit
//!   (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`): `zstd -d` refuses larger frames without `--long`, and a
//!   decoder has to allocate the whole window, so a larger one is a memory bomb. The first
//!   frame's header is read before decoding, for a message that says how large a window it
//!   wants; later frames are caught by the decoder's own limit.
//!
//! An uncompressed stream has no amplification, so nothing is capped. The limits are a value
//! the caller chooses: the defaults, or raised for input it trusts.
//!
//! A stopped stream fails every later read with an [`io::Error`] that carries a
//! [`LimitExceeded`] ([`LimitExceeded::in_io`]): which limit, its value, and how far the stream
//! got.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

use crate::error::{Error, Limit, LimitExceeded, Result};
use crate::spec::document::media_type::Compression;

/// Largest uncompressed size of one stream (see the module documentation).
pub const MAX_UNCOMPRESSED: u64 = 64 << 30;
/// Largest ratio uncompressed / compressed once [`RATIO_GRACE`] bytes have come out.
pub const MAX_RATIO: u64 = 1000;
/// Uncompressed bytes before the ratio is checked.
pub const RATIO_GRACE: u64 = 64 << 20;
/// Largest zstd window a frame may need: 128 MiB.
pub const MAX_ZSTD_WINDOW: u64 = 128 << 20;
/// The largest window zstd's decoder accepts at all on 64-bit machines: 2 GiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 31;

/// The decompression-bomb policy (see the module documentation for the defaults and why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest uncompressed size of one stream, in bytes.
    pub max_uncompressed: u64,
    /// Largest ratio uncompressed / compressed, checked past `ratio_grace` uncompressed bytes.
    pub max_ratio: u64,
    pub ratio_grace: u64,
    /// Largest zstd window a frame may need, in bytes (at least 1 KiB; zstd windows are powers
    /// of two, give or take an eighth, up to 2 GiB on 64-bit machines).
    pub max_zstd_window: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uncompressed: MAX_UNCOMPRESSED,
            max_ratio: MAX_RATIO,
            ratio_grace: RATIO_GRACE,
            max_zstd_window: MAX_ZSTD_WINDOW,
        }
    }
}

impl Limits {
    /// The same limits with `max_uncompressed` bytes.
    pub fn with_max_uncompressed(self, max_uncompressed: u64) -> Limits {
        Limits {
            max_uncompressed,
            ..self
        }
    }

    /// The same limits with a ratio cap of `max_ratio`:1.
    pub fn with_max_ratio(self, max_ratio: u64) -> Limits {
        Limits { max_ratio, ..self }
    }

    /// The same limits with a ratio checked past `ratio_grace` uncompressed bytes.
    pub fn with_ratio_grace(self, ratio_grace: u64) -> Limits {
        Limits {
            ratio_grace,
            ..self
        }
    }

    /// The same limits with zstd windows of up to `max_zstd_window` bytes.
    pub fn with_max_zstd_window(self, max_zstd_window: u64) -> Limits {
        Limits {
            max_zstd_window,
            ..self
        }
    }

    /// The window limit in bytes, as far as zstd's decoder can go (2 GiB).
    fn zstd_window(&self) -> u64 {
        self.max_zstd_window.min(1 << ZSTD_WINDOW_LOG_MAX)
    }

    /// The window limit as the power of two zstd's decoder takes (10 to 31).
    fn zstd_window_log(&self) -> u32 {
        let log = 63 - self.zstd_window().max(1).leading_zeros();
        log.clamp(10, ZSTD_WINDOW_LOG_MAX)
    }
}

/// A `BufRead` that counts the bytes its reader consumes: what the ratio is measured against.
struct Counted<R> {
    inner: R,
    consumed: u64,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
        self.consumed += amount as u64;
    }
}

enum Inner<R: BufRead> {
    Plain(Counted<R>),
    Gzip(Box<MultiGzDecoder<Counted<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, Counted<R>>>),
}

/// A reader of the decompressed bytes of `R`, under the [`Limits`].
///
/// gzip input may hold several concatenated members (all are read, as `gunzip` does); zstd
/// input may hold several frames. Bytes after the compressed stream are an error (a gzip
/// member that does not start with the gzip magic, a zstd frame that is not one).
pub struct Decoder<R: BufRead> {
    inner: Inner<R>,
    compression: Compression,
    limits: Limits,
    produced: u64,
    /// Whether the first zstd frame's header was looked at.
    checked_header: bool,
    stopped: Option<LimitExceeded>,
}

impl<R: BufRead> Decoder<R> {
    /// Decodes `input`, compressed with `compression`, under `limits`. Fails only if zstd
    /// cannot set up its decoder.
    pub fn new(input: R, compression: Compression, limits: &Limits) -> io::Result<Decoder<R>> {
        let input = Counted {
            inner: input,
            consumed: 0,
        };
        let inner = match compression {
            Compression::None => Inner::Plain(input),
            Compression::Gzip => Inner::Gzip(Box::new(MultiGzDecoder::new(input))),
            Compression::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(input)?;
                decoder.window_log_max(limits.zstd_window_log())?;
                Inner::Zstd(Box::new(decoder))
            }
        };
        Ok(Decoder {
            inner,
            compression,
            limits: *limits,
            produced: 0,
            checked_header: compression != Compression::Zstd,
            stopped: None,
        })
    }

    /// The compression being decoded.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Compressed bytes the decoder has consumed (not counting what waits in buffers).
    pub fn consumed(&self) -> u64 {
        self.counted().consumed
    }

    /// Uncompressed bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The input, as far as it was read.
    pub fn get_ref(&self) -> &R {
        &self.counted().inner
    }

    /// The input, to look at (reading from it directly would corrupt the decoding).
    pub fn get_mut(&mut self) -> &mut R {
        match &mut self.inner {
            Inner::Plain(c) => &mut c.inner,
            Inner::Gzip(d) => &mut d.get_mut().inner,
            Inner::Zstd(d) => &mut d.get_mut().inner,
        }
    }

    /// The input, as far as it was read (bytes the decoder had buffered ahead are lost).
    pub fn into_inner(self) -> R {
        match self.inner {
            Inner::Plain(c) => c.inner,
            Inner::Gzip(d) => d.into_inner().inner,
            Inner::Zstd(d) => d.finish().inner,
        }
    }

    fn counted(&self) -> &Counted<R> {
        match &self.inner {
            Inner::Plain(c) => c,
            Inner::Gzip(d) => d.get_ref(),
            Inner::Zstd(d) => d.get_ref(),
        }
    }

    fn exceeded(&self, limit: Limit, value: u64, needed: Option<u64>) -> LimitExceeded {
        LimitExceeded {
            limit,
            value,
            compression: self.compression.name(),
            compressed: self.consumed(),
            uncompressed: self.produced,
            needed,
            grace: self.limits.ratio_grace,
        }
    }

    fn stop(&mut self, exceeded: LimitExceeded) -> io::Error {
        self.stopped = Some(exceeded.clone());
        io::Error::other(exceeded)
    }

    /// The limit the stream has just gone past, if any.
    fn over(&self) -> Option<LimitExceeded> {
        let limits = &self.limits;
        if self.produced > limits.max_uncompressed {
            return Some(self.exceeded(Limit::Uncompressed, limits.max_uncompressed, None));
        }
        let compressed = self.consumed().max(1);
        if self.produced > limits.ratio_grace && self.produced / compressed > limits.max_ratio {
            return Some(self.exceeded(Limit::Ratio, limits.max_ratio, None));
        }
        None
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(stopped) = &self.stopped {
            return Err(io::Error::other(stopped.clone()));
        }
        if !self.checked_header {
            self.checked_header = true;
            if let Inner::Zstd(d) = &mut self.inner {
                let head = d.get_mut().inner.fill_buf()?;
                if let Some(window) = zstd_first_window(head) {
                    if window > self.limits.max_zstd_window {
                        let exceeded = self.exceeded(
                            Limit::ZstdWindow,
                            self.limits.max_zstd_window,
                            Some(window),
                        );
                        return Err(self.stop(exceeded));
                    }
                }
            }
        }
        let result = match &mut self.inner {
            Inner::Plain(c) => c.read(buf),
            Inner::Gzip(d) => d.read(buf),
            Inner::Zstd(d) => d.read(buf),
        };
        let n = match result {
            Ok(n) => n,
            Err(e) if self.compression == Compression::Zstd && is_zstd_window_error(&e) => {
                let exceeded = self.exceeded(Limit::ZstdWindow, self.limits.zstd_window(), None);
                return Err(self.stop(exceeded));
            }
            Err(e) => return Err(e),
        };
        self.produced += n as u64;
        if self.compression != Compression::None {
            if let Some(exceeded) = self.over() {
                return Err(self.stop(exceeded));
            }
        }
        Ok(n)
    }
}

/// A decoder of `input` (buffered here) compressed with `compression`, under `limits`.
pub fn decompress<R: Read>(
    input: R,
    compression: Compression,
    limits: &Limits,
) -> Result<Decoder<BufReader<R>>> {
    Decoder::new(
        BufReader::with_capacity(256 * 1024, input),
        compression,
        limits,
    )
    .map_err(|e| Error::Unsupported {
        what: format!("the {} decompressor", compression.name()),
        reason: format!("cannot be set up: {e}"),
    })
}

/// The window the first zstd frame of `head` needs, from its frame header; `None` when `head`
/// does not start with a whole zstd frame header.
fn zstd_first_window(head: &[u8]) -> Option<u64> {
    if !head.starts_with(&ZSTD_MAGIC) {
        return None;
    }
    let descriptor = *head.get(4)?;
    if descriptor & 0x20 == 0 {
        // Window_Descriptor: exponent (5 bits) and mantissa (3 bits).
        let window = *head.get(5)?;
        let base = 1u64 << (10 + u32::from(window >> 3));
        return Some(base + base / 8 * u64::from(window & 7));
    }
    // Single segment: the window is the frame's content size.
    let dictionary = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let size_bytes = [1, 2, 4, 8][usize::from(descriptor >> 6)];
    let start = 5 + dictionary;
    let field = head.get(start..start + size_bytes)?;
    let mut size = field
        .iter()
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if size_bytes == 2 {
        size += 256;
    }
    Some(size)
}

pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Whether a zstd decoder error says the frame's window exceeds the limit.
fn is_zstd_window_error(e: &io::Error) -> bool {
    use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
    let code = ZSTD_ErrorCode::ZSTD_error_frameParameter_windowTooLarge as usize;
    e.to_string() == zstd::zstd_safe::get_error_name(0usize.wrapping_sub(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testkit::{compress, zstd_raw_frame};

    fn decode_all(bytes: &[u8], c: Compression, limits: &Limits) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decompress(bytes, c, limits)
            .unwrap()
            .read_to_end(&mut out)?;
        Ok(out)
    }

    fn zeros(n: usize, c: Compression) -> Vec<u8> {
        compress(&vec![0u8; n], c)
    }

    #[test]
    fn each_limit_stops_the_stream_and_says_how_far_it_got() {
        let ratio = Limits::default()
            .with_ratio_grace(1 << 20)
            .with_max_ratio(100);
        for c in [Compression::Gzip, Compression::Zstd] {
            let bomb = zeros(8 << 20, c);
            let e = decode_all(&bomb, c, &ratio).unwrap_err();
            let stop = LimitExceeded::in_io(&e).expect("a limit");
            assert_eq!(stop.limit, Limit::Ratio);
            assert!(
                stop.uncompressed > 1 << 20 && stop.uncompressed < 8 << 20,
                "{stop:?}"
            );
            assert!(stop.compressed > 0 && stop.compressed < bomb.len() as u64);
            assert!(
                e.to_string().contains("ratio above the limit of 100:1"),
                "{e}"
            );

            let total = Limits::default().with_max_uncompressed(1 << 20);
            let e = decode_all(&bomb, c, &total).unwrap_err();
            let stop = LimitExceeded::in_io(&e).unwrap();
            assert_eq!(stop.limit, Limit::Uncompressed);
            assert!(e.to_string().contains("beyond 1 MiB"), "{e}");
            // Raised limits let the same stream through.
            assert_eq!(
                decode_all(&bomb, c, &Limits::default()).unwrap().len(),
                8 << 20
            );
        }
        // Nothing to amplify in an uncompressed stream: no cap.
        let plain = vec![0u8; 2 << 20];
        let tight = Limits::default().with_max_uncompressed(1 << 20);
        assert_eq!(
            decode_all(&plain, Compression::None, &tight).unwrap().len(),
            2 << 20
        );
    }

    #[test]
    fn a_stopped_stream_stays_stopped() {
        let limits = Limits::default().with_max_uncompressed(1000);
        let bomb = zeros(1 << 20, Compression::Zstd);
        let mut d = decompress(&bomb[..], Compression::Zstd, &limits).unwrap();
        let mut out = Vec::new();
        assert!(d.read_to_end(&mut out).is_err());
        let again = d.read(&mut [0u8; 16]).unwrap_err();
        assert!(LimitExceeded::in_io(&again).is_some());
    }

    #[test]
    fn zstd_windows_above_the_limit_are_refused_before_decoding() {
        let content = vec![7u8; 3000];
        // 256 MiB window (exponent 18 → 2^28) in the first frame.
        let e = decode_all(
            &zstd_raw_frame(18 << 3, &content),
            Compression::Zstd,
            &Limits::default(),
        )
        .unwrap_err();
        let stop = LimitExceeded::in_io(&e).unwrap();
        assert_eq!(
            (stop.limit, stop.needed),
            (Limit::ZstdWindow, Some(256 << 20))
        );
        assert!(e.to_string().contains("256 MiB"), "{e}");
        // Exactly 128 MiB is accepted; a later frame above it is caught by the decoder.
        let mut two = zstd_raw_frame(17 << 3, &content);
        assert_eq!(
            decode_all(&two, Compression::Zstd, &Limits::default()).unwrap(),
            content
        );
        two.extend(zstd_raw_frame(19 << 3, &content));
        let e = decode_all(&two, Compression::Zstd, &Limits::default()).unwrap_err();
        let stop = LimitExceeded::in_io(&e).unwrap();
        assert_eq!((stop.limit, stop.needed), (Limit::ZstdWindow, None));
        // Raised, the window is fine.
        let raised = Limits::default().with_max_zstd_window(1 << 30);
        assert_eq!(
            decode_all(&two, Compression::Zstd, &raised).unwrap().len(),
            6000
        );
    }

    #[test]
    fn zstd_window_from_single_segment_header() {
        // single segment, 4-byte content size of 200 MiB
        let head = [0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0x80, 0x0c];
        assert_eq!(zstd_first_window(&head), Some(200 << 20));
        assert_eq!(
            zstd_first_window(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x90]),
            Some(256 << 20)
        );
        assert_eq!(zstd_first_window(&[0x28, 0xb5, 0x2f, 0xfd, 0x00]), None);
        assert_eq!(
            zstd_first_window(&[0x28, 0xb5, 0x2f, 0xfd, 0x60, 0x10, 0x00]),
            Some(16 + 256)
        );
    }

    #[test]
    fn consumed_counts_what_the_decoder_took_not_what_was_buffered() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for c in [Compression::Gzip, Compression::Zstd] {
            let blob = compress(&data, c);
            let mut d = decompress(&blob[..], c, &Limits::default()).unwrap();
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
            assert_eq!(d.consumed(), blob.len() as u64, "{c:?}");
            assert_eq!(d.produced(), data.len() as u64);
        }
    }
}
