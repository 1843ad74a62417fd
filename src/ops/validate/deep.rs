//! `--deep`: reading a layer once to check its compression, its diff_id and its tar stream.
//!
//! # One pass, bounded memory
//!
//! [`check_layer`] reads the raw blob exactly once. The bytes flow through a chain of readers,
//! each pulling from the one before, so nothing is read twice and nothing is held whole:
//!
//! ```text
//! blob ─► RawTee ─► BufReader ─► gzip / zstd decoder ─► Inflow ─► BufReader ─► tar walker
//!         hash → blob digest (L8)                       hash → diff_id (T3), caps (T10)
//! ```
//!
//! The decoders write straight into the last buffer, the hashes read it there and the tar
//! walker skips file data by consuming it from that buffer: the uncompressed bytes are never
//! copied. Memory is a few buffers of [`BUF`] bytes, the zstd window (at most 128 MiB, see
//! below), and 16 bytes per distinct path of the layer for the duplicate check — it grows with
//! the number of entries, never with the blob's size, and that too is capped.
//!
//! # What is checked
//!
//! - **T2** the first bytes (gzip `1f 8b`, zstd `28 b5 2f fd` or a skippable frame, else
//!   plain) agree with the media type. On disagreement the layer is decompressed as what its
//!   bytes are, when that is recognizable (gzip, zstd, an uncompressed tar), so the other
//!   checks still run; otherwise only its digest is computed.
//! - **T1** the stream decompresses (gzip with any number of members, zstd with any number of
//!   frames) to its end: corrupt data, a bad CRC, truncation and trailing garbage are T1.
//! - **T11** zstd frames needing a window above 128 MiB are refused: the first frame's header
//!   is read here for a clear message, and the decoder is limited to `window_log_max` 27 for
//!   later frames.
//! - **T10** decompression stops at the caps below, and the raw bytes are still read to their
//!   end so that the blob's own digest (L8) stays right.
//! - **T3** the uncompressed stream's digest equals every diff_id configs give for the layer.
//! - **T4**–**T9** the tar stream, walked as it flows (see `walk_tar`): it reads to its end
//!   (truncation, bad headers, non-zero data after the end-of-archive marker, parser
//!   differentials), no duplicate paths (T5), no absolute paths or `..` (T6, also in hard-link
//!   targets), no bare `.wh.` (T7), well-formed whiteouts (T8), sparse files warned (T9).
//!
//! # Caps, and why these values
//!
//! - [`MAX_UNCOMPRESSED`] = 64 GiB of uncompressed data per layer. The largest real layers
//!   (machine-learning images with model weights) hold tens of GiB; anything above 64 GiB is
//!   far more likely an attack than an image, would fill the disk of whoever unpacks it, and
//!   already costs a minute of CPU here just to hash.
//! - [`MAX_RATIO`] = 1000:1, checked once [`RATIO_GRACE`] = 64 MiB have come out. Real layers
//!   compress 2:1 to 10:1, text-heavy ones rarely beyond 50:1. deflate cannot exceed about
//!   1032:1, so a gzip layer only gets near the cap when it is almost entirely one repeated
//!   byte (a zero-filled file, the classic bomb); zstd goes far beyond on such runs. The grace
//!   keeps small, very compressible layers (an empty tar is 10 KiB of zeros) from ever
//!   tripping it. The ratio is measured as the stream flows, against the compressed bytes the
//!   decoder has consumed (not those merely buffered ahead), so a bomb is stopped after about
//!   64 MiB of output, not after its whole expansion: 200 MiB of zeros in a ~200 KiB gzip
//!   layer (about 1030:1) is caught, as is any zstd bomb.
//! - [`MAX_ZSTD_WINDOW_LOG`] = 27 (a 128 MiB window), libzstd's own default decoder limit
//!   (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`): `zstd -d` refuses larger frames without `--long`, and a
//!   decoder has to allocate the whole window, so a larger one is a memory bomb per layer.
//! - [`MAX_META_SIZE`] = 1 MiB for a GNU long name/link or a PAX header: their data is held in
//!   memory, and Go's `archive/tar` (containerd, Docker) has the same limit, so a larger one
//!   would not unpack there anyway. (This is why the walker is ocikit's own: the `tar` crate
//!   reads such headers whole, without a limit, and expands sparse holes when entries are read.)
//! - [`MAX_TRACKED_PATHS`] = 4 million paths per layer for the duplicate check, each kept as
//!   16 bytes (a truncated SHA-256 of the normalized path, so long hostile paths cost nothing
//!   more): at most about 150 MB in the worst case, about 1 MB for a 30,000-file Debian layer.
//!   Past the cap, duplicates are no longer tracked and that is reported (T10).
//! - [`MAX_FINDINGS_PER_RULE`] = 20 findings per tar rule per layer, then one summary finding:
//!   a hostile layer with a million bad entries cannot flood the report.
//!
//! Caps apply to decompression only: an uncompressed layer's size is its blob's size, which
//! has no amplification. A test can lower every cap with [`check_layer_with`] and
//! [`DeepLimits`].
//!
//! Nothing here panics on what a blob contains: every header field is parsed with checked
//! arithmetic, and errors become findings.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use sha2::Digest as _;

use super::finding::{Findings, Place};
use crate::spec::digest::{Algorithm, Digest, Hasher};
use crate::spec::document::media_type::Compression;

/// Size of the buffers between the stages (the raw reads, the decoder's output).
pub const BUF: usize = 256 * 1024;
/// Largest uncompressed size of one layer (see the module documentation).
pub const MAX_UNCOMPRESSED: u64 = 64 << 30;
/// Largest ratio uncompressed / compressed once [`RATIO_GRACE`] bytes have come out.
pub const MAX_RATIO: u64 = 1000;
/// Uncompressed bytes before the ratio is checked.
pub const RATIO_GRACE: u64 = 64 << 20;
/// Largest zstd window, as a power of two: 2^27 = 128 MiB.
pub const MAX_ZSTD_WINDOW_LOG: u32 = 27;
/// Largest GNU long name / long link / PAX header data held in memory (as Go's archive/tar).
pub const MAX_META_SIZE: u64 = 1 << 20;
/// Largest number of distinct paths tracked per layer for the duplicate check (T5).
pub const MAX_TRACKED_PATHS: usize = 4_000_000;
/// Findings of one tar rule listed per layer before they are summarized.
pub const MAX_FINDINGS_PER_RULE: usize = 20;

/// The largest zstd window (bytes) a frame may need.
const MAX_ZSTD_WINDOW: u64 = 1 << MAX_ZSTD_WINDOW_LOG;
const BLOCK: usize = 512;
const HEAD: usize = BLOCK;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What a layer's manifests and configs expect of it.
#[derive(Clone, Debug)]
pub struct LayerCheck {
    /// The media type it is referenced with (first seen).
    pub media_type: String,
    /// The compression that media type declares.
    pub compression: Compression,
    /// The diff_ids configs give for it, with where they come from.
    pub diff_ids: Vec<Expectation>,
}

/// One config's diff_id for a layer.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub diff_id: Digest,
    /// The config that lists it.
    pub config: Digest,
    /// Its position in `rootfs.diff_ids`.
    pub position: usize,
}

/// The caps of a deep check (see the module documentation for the defaults and why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeepLimits {
    /// Largest uncompressed size of a compressed layer.
    pub max_uncompressed: u64,
    /// Largest ratio uncompressed / compressed, checked past `ratio_grace` uncompressed bytes.
    pub max_ratio: u64,
    pub ratio_grace: u64,
    /// Largest number of distinct paths tracked for the duplicate check.
    pub max_tracked_paths: usize,
    /// Findings of one tar rule listed per layer before one summary finding.
    pub max_findings_per_rule: usize,
}

impl Default for DeepLimits {
    fn default() -> Self {
        DeepLimits {
            max_uncompressed: MAX_UNCOMPRESSED,
            max_ratio: MAX_RATIO,
            ratio_grace: RATIO_GRACE,
            max_tracked_paths: MAX_TRACKED_PATHS,
            max_findings_per_rule: MAX_FINDINGS_PER_RULE,
        }
    }
}

/// Reads a whole layer blob once, returning the digest of its raw bytes (for the blob check)
/// and recording `T*` findings at `place`. An error is an I/O error reading the blob itself;
/// everything wrong with its content is a finding.
pub fn check_layer(
    raw: &mut dyn Read,
    algorithm: Algorithm,
    check: &LayerCheck,
    findings: &mut Findings,
    place: &Place,
) -> io::Result<Digest> {
    check_layer_with(
        raw,
        algorithm,
        check,
        &DeepLimits::default(),
        findings,
        place,
    )
}

/// [`check_layer`] with caps of the caller's choosing.
pub fn check_layer_with(
    raw: &mut dyn Read,
    algorithm: Algorithm,
    check: &LayerCheck,
    limits: &DeepLimits,
    findings: &mut Findings,
    place: &Place,
) -> io::Result<Digest> {
    let mut raw = RawTee::new(raw, algorithm);
    raw.fill_head(HEAD)?;
    let sniffed = Sniffed::of(&raw.head);
    let Some(decode) = choose_decoding(check, sniffed, &raw.head, findings, place) else {
        return raw.finish();
    };
    if decode == Compression::Zstd {
        if let Some(window) = zstd_first_window(&raw.head).filter(|w| *w > MAX_ZSTD_WINDOW) {
            let message = format!(
                "the first zstd frame needs a {} window (its header says so), more than the {} a decoder accepts by default (`zstd -d` refuses it without --long); a decoder must allocate the whole window, so ocikit does not decompress this layer",
                mib(window),
                mib(MAX_ZSTD_WINDOW)
            );
            findings.add_full("T11", place, None, None, message);
            return raw.finish();
        }
    }

    // The diff_id algorithms to compute; an uncompressed layer's diff_id is its blob digest.
    let mut algorithms: Vec<Algorithm> = Vec::new();
    for expectation in &check.diff_ids {
        if let Some(a) = expectation.diff_id.known_algorithm() {
            if !algorithms.contains(&a) {
                algorithms.push(a);
            }
        }
    }
    let shares_raw_hash = decode == Compression::None && algorithms.contains(&algorithm);
    let decoder = Decoder::new(raw, decode)?;
    let mut inflow = Inflow {
        decoder,
        hashers: algorithms
            .iter()
            .filter(|a| !(shares_raw_hash && **a == algorithm))
            .map(|a| Hasher::new(*a))
            .collect(),
        count: 0,
        caps: (decode != Compression::None).then_some(*limits),
        stop: None,
    };

    {
        let mut reader = BufReader::with_capacity(BUF, &mut inflow);
        let mut checks = EntryChecks::new(findings, place, limits);
        let walked = walk_tar(&mut reader, &mut checks);
        let check_trailer = match walked {
            Ok(()) => true,
            Err(TarError::Format(message)) => {
                checks.report("T4", None, message);
                false
            }
            Err(TarError::Stream(e)) => {
                // Every stream error is recorded by the Inflow; this is only a safety net.
                if reader.get_ref().stop.is_none() {
                    checks.report("T4", None, format!("the tar stream cannot be read: {e}"));
                }
                false
            }
        };
        // Whatever the tar walk made of it, the stream is read to its end: the diff_id covers
        // the padding after the end-of-archive marker, and the decoder checks its trailer.
        if let Ok(trailer) = drain(&mut reader) {
            if check_trailer {
                if let Some(at) = trailer.first_nonzero {
                    let message = format!("the tar stream has non-zero data after its end-of-archive marker ({at} bytes after the first zero block, in {} trailing bytes): readers that skip zero blocks see more than readers that stop there", trailer.len);
                    checks.report("T4", None, message);
                }
            }
        }
        checks.finish();
    }

    let complete = match inflow.stop.take() {
        Some(Stop::Raw(e)) => return Err(e),
        Some(Stop::Decode(e)) => {
            let (rule, message) =
                decode_failure(decode, &e, inflow.count, inflow.decoder.consumed());
            findings.add_full(rule, place, None, None, message);
            false
        }
        Some(Stop::Cap(message)) => {
            findings.add_full("T10", place, None, None, message);
            false
        }
        None => true,
    };
    let mut uncompressed: Vec<Digest> = inflow.hashers.into_iter().map(Hasher::finish).collect();
    let blob = inflow.decoder.into_raw().finish()?;
    if !complete {
        return Ok(blob);
    }
    if shares_raw_hash {
        uncompressed.push(blob.clone());
    }
    for expectation in &check.diff_ids {
        let Some(actual) = uncompressed
            .iter()
            .find(|d| d.algorithm() == expectation.diff_id.algorithm())
        else {
            continue; // an algorithm ocikit cannot compute
        };
        if *actual != expectation.diff_id {
            let message = format!(
                "the layer's uncompressed content hashes to {actual}, but config {} lists {} as rootfs.diff_ids[{}]",
                expectation.config, expectation.diff_id, expectation.position
            );
            findings.add_full("T3", place, None, None, message);
        }
    }
    Ok(blob)
}

/// Hashes a stream to its end.
pub fn hash_stream(raw: &mut dyn Read, algorithm: Algorithm) -> io::Result<Digest> {
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; BUF];
    loop {
        match raw.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compression: what the bytes are, and decoding them
// ---------------------------------------------------------------------------------------------

/// What a blob's first bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sniffed {
    Gzip,
    Zstd,
    /// A tar header (ustar magic, a valid checksum) or an all-zero block.
    Tar,
    Xz,
    Bzip2,
    Empty,
    Unknown,
}

impl Sniffed {
    fn of(head: &[u8]) -> Sniffed {
        let zstd_skippable =
            head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18];
        if head.is_empty() {
            Sniffed::Empty
        } else if head.starts_with(&GZIP_MAGIC) {
            Sniffed::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) || zstd_skippable {
            Sniffed::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Sniffed::Xz
        } else if head.starts_with(b"BZh") {
            Sniffed::Bzip2
        } else if head.get(257..262) == Some(&b"ustar"[..])
            || head.get(..BLOCK).is_some_and(|b| b.iter().all(|&x| x == 0))
            || <&[u8; BLOCK]>::try_from(&head[..head.len().min(BLOCK)]).is_ok_and(checksum_ok)
        {
            Sniffed::Tar
        } else {
            Sniffed::Unknown
        }
    }

    fn compression(self) -> Option<Compression> {
        match self {
            Sniffed::Gzip => Some(Compression::Gzip),
            Sniffed::Zstd => Some(Compression::Zstd),
            _ => None,
        }
    }

    fn describe(self, head: &[u8]) -> String {
        match self {
            Sniffed::Gzip => "gzip magic bytes (1f 8b)".into(),
            Sniffed::Zstd => "zstd magic bytes".into(),
            Sniffed::Tar => "an uncompressed tar header".into(),
            Sniffed::Xz => "xz magic bytes".into(),
            Sniffed::Bzip2 => "bzip2 magic bytes".into(),
            Sniffed::Empty => "nothing: the blob is empty".into(),
            Sniffed::Unknown => {
                let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
                format!(
                    "bytes {} (neither gzip, zstd nor a tar header)",
                    hex.join(" ")
                )
            }
        }
    }
}

/// T2: how to decode the layer, given its media type and first bytes (`head`); `None` when it
/// cannot be decoded at all (the caller then only hashes it).
fn choose_decoding(
    check: &LayerCheck,
    sniffed: Sniffed,
    head: &[u8],
    findings: &mut Findings,
    place: &Place,
) -> Option<Compression> {
    let declared = check.compression;
    let actual = sniffed.compression();
    if actual == Some(declared) || (declared == Compression::None && actual.is_none()) {
        return Some(declared);
    }
    let (decode, then) = match actual {
        Some(actual) => (
            Some(actual),
            format!("checked as {} instead", actual.name()),
        ),
        None if sniffed == Sniffed::Tar => (
            Some(Compression::None),
            "checked as an uncompressed tar instead".to_string(),
        ),
        None => (
            None,
            "so it is not decompressed; only its digest is checked".to_string(),
        ),
    };
    let says = match declared {
        Compression::None => "an uncompressed tar".to_string(),
        other => format!("{} compression", other.name()),
    };
    let message = format!(
        "the media type {} declares {says}, but the blob starts with {}; {then}",
        check.media_type,
        sniffed.describe(head)
    );
    findings.add_full("T2", place, None, None, message);
    decode
}

/// The window the first zstd frame of `head` needs, from its frame header.
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

/// The rule and message for a decoder error.
fn decode_failure(
    decode: Compression,
    e: &io::Error,
    uncompressed: u64,
    compressed: u64,
) -> (&'static str, String) {
    let name = decode.name();
    if decode == Compression::Zstd && is_zstd_window_error(e) {
        return ("T11", format!("a zstd frame after {uncompressed} uncompressed bytes needs a window larger than {} (`zstd -d` refuses it without --long); ocikit stopped decompressing this layer", mib(MAX_ZSTD_WINDOW)));
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return ("T1", format!("the {name} stream is truncated: it ends after {compressed} compressed bytes ({uncompressed} uncompressed) before its end ({e})"));
    }
    ("T1", format!("the layer does not decompress as {name}: {e} (after {compressed} compressed, {uncompressed} uncompressed bytes)"))
}

/// Whether a zstd decoder error says the frame's window exceeds the limit.
fn is_zstd_window_error(e: &io::Error) -> bool {
    use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
    let code = ZSTD_ErrorCode::ZSTD_error_frameParameter_windowTooLarge as usize;
    e.to_string() == zstd::zstd_safe::get_error_name(0usize.wrapping_sub(code))
}

fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// The raw blob, hashed as it is read. Its first bytes are read ahead (for [`Sniffed`]) and
/// served again.
struct RawTee<'a> {
    inner: &'a mut dyn Read,
    hasher: Hasher,
    /// Bytes read from the blob so far.
    count: u64,
    head: Vec<u8>,
    head_pos: usize,
    /// The I/O error reading the blob failed with (the readers above see a stand-in).
    error: Option<io::Error>,
}

impl<'a> RawTee<'a> {
    fn new(inner: &'a mut dyn Read, algorithm: Algorithm) -> RawTee<'a> {
        RawTee {
            inner,
            hasher: Hasher::new(algorithm),
            count: 0,
            head: Vec::new(),
            head_pos: 0,
            error: None,
        }
    }

    /// Reads up to `n` first bytes into `head`.
    fn fill_head(&mut self, n: usize) -> io::Result<()> {
        let mut head = vec![0u8; n];
        let mut filled = 0;
        while filled < n {
            match self.read_inner(&mut head[filled..])? {
                0 => break,
                k => filled += k,
            }
        }
        head.truncate(filled);
        self.head = head;
        Ok(())
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.hasher.update(&buf[..n]);
                    self.count += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the rest of the blob and returns its digest.
    fn finish(mut self) -> io::Result<Digest> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut buf = vec![0u8; BUF];
        while self.read_inner(&mut buf)? > 0 {}
        Ok(self.hasher.finish())
    }
}

impl Read for RawTee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.head_pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.head_pos);
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            return Ok(n);
        }
        self.read_inner(buf).map_err(|e| {
            let stand_in = io::Error::new(e.kind(), e.to_string());
            self.error = Some(e);
            stand_in
        })
    }
}

/// The decompressing stage.
enum Decoder<'a> {
    Plain(Box<RawTee<'a>>),
    Gzip(Box<MultiGzDecoder<BufReader<RawTee<'a>>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<RawTee<'a>>>>),
}

impl<'a> Decoder<'a> {
    fn new(raw: RawTee<'a>, compression: Compression) -> io::Result<Decoder<'a>> {
        Ok(match compression {
            Compression::None => Decoder::Plain(Box::new(raw)),
            Compression::Gzip => Decoder::Gzip(Box::new(MultiGzDecoder::new(
                BufReader::with_capacity(BUF, raw),
            ))),
            Compression::Zstd => {
                let mut decoder =
                    zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(BUF, raw))?;
                decoder.window_log_max(MAX_ZSTD_WINDOW_LOG)?;
                Decoder::Zstd(Box::new(decoder))
            }
        })
    }

    /// Compressed bytes the decoder has consumed (read from the blob, minus what waits in the
    /// buffers): what the compression ratio is measured against.
    fn consumed(&self) -> u64 {
        let (raw, buffered) = match self {
            Decoder::Plain(r) => (&**r, 0),
            Decoder::Gzip(d) => (d.get_ref().get_ref(), d.get_ref().buffer().len()),
            Decoder::Zstd(d) => (d.get_ref().get_ref(), d.get_ref().buffer().len()),
        };
        raw.count
            .saturating_sub((raw.head.len() - raw.head_pos) as u64)
            .saturating_sub(buffered as u64)
    }

    fn raw_mut(&mut self) -> &mut RawTee<'a> {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(d) => d.get_mut().get_mut(),
            Decoder::Zstd(d) => d.get_mut().get_mut(),
        }
    }

    /// The raw stage, to read the rest of the blob (what the decoder had buffered is hashed
    /// already).
    fn into_raw(self) -> RawTee<'a> {
        match self {
            Decoder::Plain(r) => *r,
            Decoder::Gzip(d) => d.into_inner().into_inner(),
            Decoder::Zstd(d) => d.finish().into_inner(),
        }
    }
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// Why the uncompressed stream stopped early.
enum Stop {
    /// Reading the blob failed (an I/O error, not a finding).
    Raw(io::Error),
    /// The decoder failed: T1 (or T11).
    Decode(io::Error),
    /// A cap was reached: T10, with the message.
    Cap(String),
}

/// The uncompressed stream: hashed (diff_ids) and measured against the caps as it flows.
/// After a [`Stop`] every read fails.
struct Inflow<'a> {
    decoder: Decoder<'a>,
    hashers: Vec<Hasher>,
    count: u64,
    /// `None` for an uncompressed layer (no amplification to cap).
    caps: Option<DeepLimits>,
    stop: Option<Stop>,
}

impl Inflow<'_> {
    fn over_cap(&self) -> Option<String> {
        let caps = self.caps?;
        let compressed = self.decoder.consumed().max(1);
        if self.count > caps.max_uncompressed {
            return Some(format!(
                "decompression stopped: the layer expands beyond {} bytes (the cap on a layer's uncompressed size), from {compressed} compressed bytes so far; it is treated as a decompression bomb",
                caps.max_uncompressed
            ));
        }
        if self.count > caps.ratio_grace && self.count / compressed > caps.max_ratio {
            return Some(format!(
                "decompression stopped: {} compressed bytes expanded to {} bytes, a ratio above the cap of {}:1; it is treated as a decompression bomb",
                compressed, self.count, caps.max_ratio
            ));
        }
        None
    }
}

impl Read for Inflow<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.is_some() {
            return Err(io::Error::other("the layer's stream was stopped"));
        }
        match self.decoder.read(buf) {
            Ok(n) => {
                for hasher in &mut self.hashers {
                    hasher.update(&buf[..n]);
                }
                self.count += n as u64;
                if let Some(message) = self.over_cap() {
                    self.stop = Some(Stop::Cap(message));
                    return Err(io::Error::other("decompression cap reached"));
                }
                Ok(n)
            }
            Err(e) => {
                let message = e.to_string();
                self.stop = Some(match self.decoder.raw_mut().error.take() {
                    Some(raw) => Stop::Raw(raw),
                    None => Stop::Decode(e),
                });
                Err(io::Error::other(message))
            }
        }
    }
}

/// What follows the tar's end-of-archive marker.
struct Trailer {
    len: u64,
    /// Offset (in the uncompressed stream) of the first non-zero byte.
    first_nonzero: Option<u64>,
}

/// Reads a stream to its end, noting where non-zero bytes start. Errors are those of the
/// [`Inflow`] (which records why).
fn drain<R: BufRead>(reader: &mut R) -> io::Result<Trailer> {
    let mut trailer = Trailer {
        len: 0,
        first_nonzero: None,
    };
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(trailer);
        }
        if trailer.first_nonzero.is_none() {
            if let Some(i) = buf.iter().position(|&b| b != 0) {
                trailer.first_nonzero = Some(trailer.len + i as u64);
            }
        }
        let n = buf.len();
        trailer.len += n as u64;
        reader.consume(n);
    }
}

// ---------------------------------------------------------------------------------------------
// The tar walker
// ---------------------------------------------------------------------------------------------

/// Why a tar walk ended early.
enum TarError {
    /// The stream underneath failed (its [`Inflow`] says why).
    Stream(io::Error),
    /// The bytes are not a well-formed tar: T4, with the message.
    Format(String),
}

impl From<io::Error> for TarError {
    fn from(e: io::Error) -> Self {
        TarError::Stream(e)
    }
}

/// One entry of the tar stream, with every extension header applied.
struct TarEntry {
    /// The path: PAX `path`, else a GNU long name, else the header's (ustar prefix joined).
    path: Vec<u8>,
    /// The link target: PAX `linkpath`, else a GNU long link, else the header's.
    link: Vec<u8>,
    typeflag: u8,
    /// A GNU sparse entry (type `S`) or a PAX sparse one (`GNU.sparse.*` records).
    sparse: bool,
    /// Where its header starts in the uncompressed stream.
    offset: u64,
}

/// What PAX extended headers say about the next entry.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    sparse: bool,
    /// `GNU.sparse.name`: the real name of a PAX 0.1/1.0 sparse file.
    sparse_name: Option<Vec<u8>>,
}

/// Reading 512-byte blocks and skipping data, counting the offset.
struct Blocks<'r, R> {
    reader: &'r mut R,
    offset: u64,
}

impl<R: BufRead> Blocks<'_, R> {
    /// Reads one block: `false` at a clean end of the stream (not one byte of it).
    fn block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool, TarError> {
        let mut filled = 0;
        while filled < BLOCK {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len().min(BLOCK - filled);
            block[filled..filled + n].copy_from_slice(&buf[..n]);
            self.reader.consume(n);
            filled += n;
        }
        let at = self.offset;
        self.offset += filled as u64;
        match filled {
            0 => Ok(false),
            BLOCK => Ok(true),
            n => Err(TarError::Format(format!(
                "the tar stream is truncated: it ends {n} bytes into a header block (at uncompressed byte {at})"
            ))),
        }
    }

    /// Skips up to `n` bytes; returns how many there were.
    fn skip(&mut self, n: u64) -> Result<u64, TarError> {
        let mut left = n;
        while left > 0 {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let k = (buf.len() as u64).min(left) as usize;
            self.reader.consume(k);
            left -= k as u64;
        }
        self.offset += n - left;
        Ok(n - left)
    }

    /// Reads the data of an extension header (at most [`MAX_META_SIZE`]) and its padding.
    fn meta(&mut self, size: u64, what: &str) -> Result<Vec<u8>, TarError> {
        if size > MAX_META_SIZE {
            return Err(TarError::Format(format!(
                "a {what} header of {size} bytes (at uncompressed byte {}) is larger than the {MAX_META_SIZE} bytes ocikit and Go's archive/tar accept",
                self.offset
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        let mut left = size as usize;
        while left > 0 {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Err(TarError::Format(format!(
                    "the tar stream is truncated inside a {what} header"
                )));
            }
            let k = buf.len().min(left);
            data.extend_from_slice(&buf[..k]);
            self.reader.consume(k);
            left -= k;
        }
        self.offset += size;
        let pad = padding(size);
        if self.skip(pad)? < pad {
            return Err(TarError::Format(format!(
                "the tar stream is truncated inside a {what} header"
            )));
        }
        Ok(data)
    }
}

/// The zero bytes after `size` bytes of data up to the next 512-byte boundary.
fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Walks a tar stream to its end-of-archive marker (or to the end of the stream: Go's
/// archive/tar and GNU tar accept a tar without the marker, and truncation is caught by the
/// digests anyway), calling `checks` for every entry and skipping its data. What is not a
/// well-formed tar is a [`TarError::Format`].
///
/// It follows Go's archive/tar (what containerd and Docker unpack with) where readers differ:
/// PAX records override GNU long names, which override the header; header-only entry types
/// (links, devices, directories, FIFOs) carry no data, and a non-zero size on one is reported
/// (T4), since readers then disagree about where the next header is.
fn walk_tar<R: BufRead>(reader: &mut R, checks: &mut EntryChecks<'_>) -> Result<(), TarError> {
    let mut blocks = Blocks { reader, offset: 0 };
    let mut block = [0u8; BLOCK];
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax: Option<Pax> = None;
    loop {
        let at = blocks.offset;
        let pending = long_name.is_some() || long_link.is_some() || pax.is_some();
        let orphan = || {
            TarError::Format(format!(
                "the tar stream ends (at uncompressed byte {at}) right after a GNU long-name or PAX header, which describes no entry"
            ))
        };
        if !blocks.block(&mut block)? {
            return if pending { Err(orphan()) } else { Ok(()) };
        }
        if block.iter().all(|&b| b == 0) {
            return if pending { Err(orphan()) } else { Ok(()) };
        }
        if !checksum_ok(&block) {
            return Err(TarError::Format(format!(
                "the block at uncompressed byte {at} is not a valid tar header (bad checksum): the stream is corrupt, or not a tar"
            )));
        }
        let typeflag = block[156];
        let Some(header_size) = parse_numeric(&block[124..136]) else {
            return Err(TarError::Format(format!(
                "the tar header at uncompressed byte {at} has an invalid size field"
            )));
        };
        match typeflag {
            b'L' => {
                long_name = Some(until_nul(&blocks.meta(header_size, "GNU long-name")?).to_vec());
                continue;
            }
            b'K' => {
                long_link = Some(until_nul(&blocks.meta(header_size, "GNU long-link")?).to_vec());
                continue;
            }
            b'x' => {
                let data = blocks.meta(header_size, "PAX")?;
                pax = Some(parse_pax(&data).map_err(|e| {
                    TarError::Format(format!(
                        "the PAX header at uncompressed byte {at} is malformed: {e}"
                    ))
                })?);
                continue;
            }
            b'g' | b'V' => {
                // A PAX global header or a GNU volume label: not a file.
                let data = blocks.meta(header_size, "PAX global")?;
                if typeflag == b'g' {
                    parse_pax(&data).map_err(|e| {
                        TarError::Format(format!(
                            "the PAX global header at uncompressed byte {at} is malformed: {e}"
                        ))
                    })?;
                }
                continue;
            }
            _ => {}
        }
        let pax_here = pax.take().unwrap_or_default();
        let entry = TarEntry {
            path: pax_here
                .sparse_name
                .or(pax_here.path)
                .or(long_name.take())
                .unwrap_or_else(|| header_path(&block)),
            link: pax_here
                .linkpath
                .or(long_link.take())
                .unwrap_or_else(|| until_nul(&block[157..257]).to_vec()),
            typeflag,
            sparse: typeflag == b'S' || pax_here.sparse,
            offset: at,
        };
        long_name = None;
        long_link = None;
        let mut size = pax_here.size.unwrap_or(header_size);
        if typeflag == b'S' && block[482] != 0 {
            // Old GNU sparse: extension blocks of the sparse map follow the header.
            loop {
                if !blocks.block(&mut block)? {
                    return Err(TarError::Format(format!(
                        "the tar stream is truncated inside the sparse map of {}",
                        shown(&entry.path)
                    )));
                }
                if block[504] == 0 {
                    break;
                }
            }
        }
        if matches!(typeflag, b'1'..=b'6') && size != 0 {
            checks.report("T4", Some(&entry.path), format!("the entry is a {} with a non-zero size ({size} bytes): Go's archive/tar reads no data for it but other readers skip {size} bytes, so they disagree about the rest of the archive (ocikit follows Go)", kind_name(typeflag)));
            size = 0;
        }
        checks.entry(&entry);
        let Some(data) = size.checked_add(padding(size)) else {
            return Err(TarError::Format(format!(
                "the size of {} ({size} bytes) is out of range",
                shown(&entry.path)
            )));
        };
        let skipped = blocks.skip(data)?;
        if skipped < data {
            return Err(TarError::Format(format!(
                "the tar stream is truncated inside the data of {} ({} of {size} bytes present)",
                shown(&entry.path),
                skipped.min(size)
            )));
        }
    }
}

/// A header's checksum: the unsigned sum of its bytes with the checksum field as spaces (or
/// the signed sum, which some old tars wrote; Go and GNU tar accept both).
fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let Some(stored) = parse_octal(&block[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 8 * u64::from(b' ');
    let mut signed: i64 = 8 * i64::from(b' ');
    for (i, &b) in block.iter().enumerate() {
        if !(148..156).contains(&i) {
            unsigned += u64::from(b);
            signed += i64::from(b as i8);
        }
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// An octal field, padded with spaces or NULs on either side (empty: 0).
fn parse_octal(field: &[u8]) -> Option<u64> {
    let trimmed = trim(field);
    let mut value: u64 = 0;
    for &b in trimmed {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// A numeric field: octal, or GNU base-256 when the high bit of its first byte is set
/// (negative values are refused).
fn parse_numeric(field: &[u8]) -> Option<u64> {
    let (&first, rest) = field.split_first()?;
    if first & 0x80 == 0 {
        return parse_octal(field);
    }
    if first & 0x40 != 0 {
        return None; // negative
    }
    let mut value = u64::from(first & 0x3f);
    for &b in rest {
        value = value.checked_mul(256)?.checked_add(u64::from(b))?;
    }
    Some(value)
}

fn trim(field: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == 0;
    let start = field.iter().position(|b| !blank(b)).unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &field[start..end.max(start)]
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// The path a header holds: its name, joined to its prefix in ustar (and star) headers.
fn header_path(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = until_nul(&block[..100]);
    let prefix = if &block[257..263] == b"ustar\0" {
        if &block[508..512] == b"tar\0" {
            until_nul(&block[345..476]) // star: atime and ctime follow a shorter prefix
        } else {
            until_nul(&block[345..500])
        }
    } else {
        &[] // GNU and v7 headers have no prefix (GNU keeps times there)
    };
    if prefix.is_empty() {
        name.to_vec()
    } else {
        [prefix, b"/", name].concat()
    }
}

/// Parses PAX records (`"%d %s=%s\n"`), keeping what the checks need.
fn parse_pax(mut data: &[u8]) -> Result<Pax, String> {
    let mut pax = Pax::default();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a record has no length")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or("a record's length is not a number")?;
        if len <= space + 1 || len > data.len() {
            return Err(format!("a record's length ({len}) does not fit the header"));
        }
        let record = &data[space + 1..len];
        let Some((&b'\n', body)) = record.split_last() else {
            return Err("a record does not end with a newline".into());
        };
        let eq = body
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a record has no '='")?;
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.linkpath = Some(value.to_vec()),
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse().ok())
                    .ok_or("its size record is not a non-negative number")?;
                pax.size = Some(size);
            }
            b"GNU.sparse.name" => {
                pax.sparse = true;
                pax.sparse_name = Some(value.to_vec());
            }
            k if k.starts_with(b"GNU.sparse.") => pax.sparse = true,
            _ => {}
        }
        data = &data[len..];
    }
    Ok(pax)
}

fn kind_name(typeflag: u8) -> String {
    match typeflag {
        b'0' | 0 => "regular file".into(),
        b'1' => "hard link".into(),
        b'2' => "symbolic link".into(),
        b'3' => "character device".into(),
        b'4' => "block device".into(),
        b'5' => "directory".into(),
        b'6' => "FIFO".into(),
        b'7' => "contiguous file".into(),
        b'S' => "GNU sparse file".into(),
        other => format!("entry of type {:?}", char::from(other)),
    }
}

fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Per-entry rules
// ---------------------------------------------------------------------------------------------

/// The tar rules that look at entries, with the duplicate-path set and the per-rule caps.
struct EntryChecks<'a> {
    findings: &'a mut Findings,
    place: &'a Place,
    limits: DeepLimits,
    /// Truncated SHA-256 of every normalized path seen (16 bytes each, whatever the path's
    /// length): memory grows with the number of entries, not with the blob's size, and stops
    /// at `limits.max_tracked_paths`.
    seen: HashSet<u128>,
    tracking: bool,
    /// Findings per rule: T4 to T9.
    counts: [usize; 6],
}

impl<'a> EntryChecks<'a> {
    fn new(findings: &'a mut Findings, place: &'a Place, limits: &DeepLimits) -> Self {
        EntryChecks {
            findings,
            place,
            limits: *limits,
            seen: HashSet::new(),
            tracking: true,
            counts: [0; 6],
        }
    }

    /// Records a finding unless this rule already has `max_findings_per_rule` in this layer.
    fn report(&mut self, rule: &'static str, entry: Option<&[u8]>, message: String) {
        let Some(i) = rule_slot(rule) else {
            self.findings
                .add_full(rule, self.place, None, None, message);
            return;
        };
        self.counts[i] += 1;
        if self.counts[i] <= self.limits.max_findings_per_rule {
            let entry = entry.map(shown);
            self.findings
                .add_full(rule, self.place, None, entry.as_deref(), message);
        }
    }

    fn entry(&mut self, e: &TarEntry) {
        let path = &e.path[..];
        if path.starts_with(b"/") {
            self.report(
                "T6",
                Some(path),
                "the path is absolute; layer paths are relative to the root".into(),
            );
        }
        if has_dotdot(path) {
            self.report(
                "T6",
                Some(path),
                "the path has a `..` component, which points outside the layer's root".into(),
            );
        }
        if e.typeflag == b'1' {
            if e.link.starts_with(b"/") {
                let message = format!("the hard link's target {} is absolute; hard-link targets are paths inside the layer", shown(&e.link));
                self.report("T6", Some(path), message);
            }
            if has_dotdot(&e.link) {
                let message = format!("the hard link's target {} has a `..` component, which points outside the layer's root", shown(&e.link));
                self.report("T6", Some(path), message);
            }
        }

        let normalized = normalize(path);
        if self.tracking {
            if self.seen.len() >= self.limits.max_tracked_paths {
                self.tracking = false;
                let message = format!("the layer has more than {} distinct paths; ocikit stopped checking it for duplicate paths (T5) at entry {} (uncompressed byte {})", self.limits.max_tracked_paths, shown(path), e.offset);
                self.findings
                    .add_full("T10", self.place, None, None, message);
            } else if !self.seen.insert(path_key(&normalized)) {
                let message = format!("the path {} appears more than once in the layer: an earlier entry is silently replaced by this one", shown(&normalized));
                self.report("T5", Some(path), message);
            }
        }

        let base = normalized.rsplit(|&b| b == b'/').next().unwrap_or_default();
        let regular = matches!(e.typeflag, b'0' | 0 | b'7');
        if base == b".wh." {
            self.report(
                "T7",
                Some(path),
                "a bare .wh. entry: a whiteout that names nothing".into(),
            );
        } else if base == b".wh..wh..opq" {
            if !regular {
                let message = format!(
                    "the opaque-directory marker .wh..wh..opq must be a regular file, not a {}",
                    kind_name(e.typeflag)
                );
                self.report("T8", Some(path), message);
            }
        } else if base.starts_with(b".wh..wh.") {
            let message = format!("{} uses the reserved .wh..wh. prefix; the only name defined with it is .wh..wh..opq (an opaque directory)", shown(base));
            self.report("T8", Some(path), message);
        } else if let Some(target) = base.strip_prefix(b".wh.") {
            if target == b"." || target == b".." {
                let message = format!(
                    "{} would white out {}, which is not a name in its directory",
                    shown(base),
                    shown(target)
                );
                self.report("T8", Some(path), message);
            } else if !regular {
                let message = format!(
                    "the whiteout {} must be a regular file, not a {}",
                    shown(base),
                    kind_name(e.typeflag)
                );
                self.report("T8", Some(path), message);
            }
        }
        if e.sparse {
            self.report("T9", Some(path), "a sparse file: not every tool that unpacks layers supports sparse entries, and they unpack differently".into());
        }
    }

    /// One summary finding per rule whose findings were cut off.
    fn finish(self) {
        for (i, rule) in ["T4", "T5", "T6", "T7", "T8", "T9"].into_iter().enumerate() {
            let count = self.counts[i];
            let max = self.limits.max_findings_per_rule;
            if count > max {
                let message = format!("{} more {rule} findings in this layer are not listed (only the first {max} are)", count - max);
                self.findings
                    .add_full(rule, self.place, None, None, message);
            }
        }
    }
}

fn rule_slot(rule: &str) -> Option<usize> {
    ["T4", "T5", "T6", "T7", "T8", "T9"]
        .iter()
        .position(|r| *r == rule)
}

fn has_dotdot(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').any(|c| c == b"..")
}

/// A path as unpacking sees it: no empty or `.` components, no leading or trailing `/`
/// (`./a`, `a/`, `/a` and `a` are the same path).
fn normalize(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for component in path.split(|&b| b == b'/') {
        if component.is_empty() || component == b"." {
            continue;
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(component);
    }
    out
}

/// 128 bits of the SHA-256 of a normalized path: collisions are out of reach, even for a
/// layer built to cause one.
fn path_key(normalized: &[u8]) -> u128 {
    let hash = sha2::Sha256::digest(normalized);
    let mut key = [0u8; 16];
    key.copy_from_slice(&hash[..16]);
    u128::from_le_bytes(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::layer::{compress_bytes, CompressOptions};
    use crate::ops::validate::finding::Finding;
    use crate::ops::validate::rules::Level;

    // ---- building tars by hand (hostile ones included) ----

    fn set_checksum(h: &mut [u8; BLOCK]) {
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    /// A ustar header.
    fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        set_checksum(&mut h);
        h
    }

    #[derive(Default)]
    struct Tar(Vec<u8>);

    impl Tar {
        fn raw(mut self, header: [u8; BLOCK], data: &[u8]) -> Tar {
            self.0.extend_from_slice(&header);
            self.0.extend_from_slice(data);
            self.0
                .resize(self.0.len() + padding(data.len() as u64) as usize, 0);
            self
        }
        fn file(self, name: &str, data: &[u8]) -> Tar {
            self.raw(header(name.as_bytes(), b'0', data.len() as u64, b""), data)
        }
        fn node(self, name: &str, typeflag: u8, link: &str) -> Tar {
            self.raw(header(name.as_bytes(), typeflag, 0, link.as_bytes()), b"")
        }
        fn pax(self, records: &[(&str, &str)]) -> Tar {
            let data = pax_records(records);
            self.raw(
                header(b"././@PaxHeader", b'x', data.len() as u64, b""),
                &data,
            )
        }
        /// Two zero blocks, padded to a 10 KiB record as GNU tar does.
        fn end(mut self) -> Vec<u8> {
            let len = (self.0.len() + 2 * BLOCK).div_ceil(10240) * 10240;
            self.0.resize(len, 0);
            self.0
        }
    }

    fn pax_records(records: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            while format!("{len}").len() + body.len() != len {
                len += 1;
            }
            out.extend_from_slice(format!("{len}{body}").as_bytes());
        }
        out
    }

    /// A GNU sparse header ('S') with `regions` (offset, length) of data, the first four in the
    /// header, the rest in extension blocks.
    fn gnu_sparse(name: &str, regions: &[(u64, u64)], real_size: u64) -> Vec<u8> {
        let data: u64 = regions.iter().map(|r| r.1).sum();
        let mut h = header(name.as_bytes(), b'S', data, b"");
        h[257..265].copy_from_slice(b"ustar  \0");
        let put = |block: &mut [u8; BLOCK], at: usize, (offset, len): (u64, u64)| {
            block[at..at + 12].copy_from_slice(format!("{offset:011o}\0").as_bytes());
            block[at + 12..at + 24].copy_from_slice(format!("{len:011o}\0").as_bytes());
        };
        for (i, r) in regions.iter().take(4).enumerate() {
            put(&mut h, 386 + 24 * i, *r);
        }
        h[483..495].copy_from_slice(format!("{real_size:011o}\0").as_bytes());
        let rest: Vec<&(u64, u64)> = regions.iter().skip(4).collect();
        let chunks: Vec<&[&(u64, u64)]> = rest.chunks(21).collect();
        h[482] = u8::from(!chunks.is_empty());
        set_checksum(&mut h);
        let mut out = h.to_vec();
        for (c, chunk) in chunks.iter().enumerate() {
            let mut ext = [0u8; BLOCK];
            for (i, r) in chunk.iter().enumerate() {
                put(&mut ext, 24 * i, **r);
            }
            ext[504] = u8::from(c + 1 < chunks.len());
            out.extend_from_slice(&ext);
        }
        out.resize(out.len() + data as usize + padding(data) as usize, b'x');
        out
    }

    fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
        compress_bytes(tar, &CompressOptions::new(compression)).unwrap()
    }

    /// A zstd frame of raw blocks whose header declares `window_descriptor`.
    fn zstd_raw_frame(window_descriptor: u8, content: &[u8]) -> Vec<u8> {
        let mut frame = ZSTD_MAGIC.to_vec();
        frame.extend_from_slice(&[0x00, window_descriptor]);
        let chunks: Vec<&[u8]> = if content.is_empty() {
            vec![&[]]
        } else {
            content.chunks(1024).collect()
        };
        for (i, chunk) in chunks.iter().enumerate() {
            let last = u32::from(i + 1 == chunks.len());
            let block = last | ((chunk.len() as u32) << 3);
            frame.extend_from_slice(&block.to_le_bytes()[..3]);
            frame.extend_from_slice(chunk);
        }
        frame
    }

    // ---- running the check ----

    struct Outcome {
        findings: Vec<Finding>,
        digest: io::Result<Digest>,
    }

    impl Outcome {
        fn rules(&self) -> Vec<&'static str> {
            self.findings.iter().map(|f| f.rule).collect()
        }
        fn only(&self, rule: &str) -> &Finding {
            let hits: Vec<&Finding> = self.findings.iter().filter(|f| f.rule == rule).collect();
            assert_eq!(hits.len(), 1, "expected one {rule}: {:#?}", self.findings);
            hits[0]
        }
        fn clean(&self) {
            assert!(self.findings.is_empty(), "{:#?}", self.findings);
        }
    }

    fn check_with(
        blob: &[u8],
        declared: Compression,
        diff_ids: &[Digest],
        limits: DeepLimits,
        strict: bool,
    ) -> Outcome {
        let check = LayerCheck {
            media_type: crate::codec::layer::layer_media_type(declared).to_string(),
            compression: declared,
            diff_ids: diff_ids
                .iter()
                .enumerate()
                .map(|(position, d)| Expectation {
                    diff_id: d.clone(),
                    config: Digest::sha256_of(b"config"),
                    position,
                })
                .collect(),
        };
        let mut findings = Findings::new(strict);
        let place = Place::blob(&Digest::sha256_of(blob));
        let digest = check_layer_with(
            &mut &blob[..],
            Algorithm::Sha256,
            &check,
            &limits,
            &mut findings,
            &place,
        );
        if let Ok(d) = &digest {
            assert_eq!(
                *d,
                Digest::sha256_of(blob),
                "the blob digest is always the raw bytes' hash"
            );
        }
        Outcome {
            findings: findings.into_vec(),
            digest,
        }
    }

    /// Checks `tar` compressed with `c`, with its true diff_id.
    fn check_tar(tar: &[u8], c: Compression) -> Outcome {
        check_with(
            &compress(tar, c),
            c,
            &[Digest::sha256_of(tar)],
            DeepLimits::default(),
            false,
        )
    }

    const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    fn sample_tar() -> Vec<u8> {
        Tar::default()
            .node("etc/", b'5', "")
            .file("etc/os-release", b"NAME=test\n")
            .node("etc/motd", b'2', "../hello.txt")
            .file("hello.txt", &vec![b'h'; 3000])
            .node("hello-again", b'1', "hello.txt")
            .end()
    }

    // ---- clean layers and decoys ----

    #[test]
    fn clean_layers_have_no_findings() {
        for c in ALL {
            let out = check_tar(&sample_tar(), c);
            out.clean();
            assert!(out.digest.is_ok());
        }
    }

    #[test]
    fn decoys_stay_clean() {
        let long = format!("{}/file", "deep".repeat(60));
        let tar = Tar::default()
            .node("./", b'5', "")
            .file("./etc/.wh.removed", b"")
            .node("var/", b'5', "")
            .file("var/.wh..wh..opq", b"")
            .node("etc/localtime", b'2', "/usr/share/zoneinfo/UTC")
            .node("etc/up", b'2', "../../..")
            .node("usr/lib/link", b'1', "etc/os-release")
            .pax(&[
                ("path", &long),
                ("mtime", "1.5"),
                ("SCHILY.xattr.user.x", "y"),
            ])
            .file("ignored-short-name", b"long")
            .pax(&[("linkpath", &long)])
            .node("long-link", b'2', "x")
            .raw(header(b"pax_global_header", b'g', 0, b""), b"")
            .file("a..b/..c/d..", b"dots in names are fine")
            .end();
        for c in ALL {
            check_tar(&tar, c).clean();
        }
        // GNU long names and links, written by the tar crate.
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, &long, &b"hello"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        builder.append_link(&mut h, "short", &long).unwrap();
        let gnu = builder.into_inner().unwrap();
        check_tar(&gnu, Compression::Gzip).clean();
        // ocikit's own reproducible tars (PAX for long paths).
        let entries = [
            crate::codec::layer::Entry::file(long.as_str(), "x"),
            crate::codec::layer::Entry::dir("d"),
        ];
        let ours = crate::codec::layer::write_tar(&entries, 0, Vec::new()).unwrap();
        check_tar(&ours, Compression::Zstd).clean();
    }

    #[test]
    fn empty_and_marker_only_tars_are_clean() {
        for tar in [
            Vec::new(),
            vec![0u8; 1024],
            vec![0u8; 10240],
            vec![0u8; 512],
        ] {
            for c in ALL {
                check_tar(&tar, c).clean();
            }
        }
    }

    #[test]
    fn multi_member_gzip_and_multi_frame_zstd_are_read_whole() {
        let tar = sample_tar();
        let (a, b) = tar.split_at(1000);
        for c in [Compression::Gzip, Compression::Zstd] {
            let mut blob = compress(a, c);
            blob.extend(compress(b, c));
            check_with(
                &blob,
                c,
                &[Digest::sha256_of(&tar)],
                DeepLimits::default(),
                false,
            )
            .clean();
        }
    }

    #[test]
    fn a_tar_without_end_marker_is_accepted() {
        let tar = Tar::default().file("a", b"data").node("b", b'5', "").0;
        for c in ALL {
            check_tar(&tar, c).clean();
        }
    }

    // ---- T2, T1, T3 ----

    #[test]
    fn diff_id_mismatch_is_t3_naming_config_and_position() {
        let tar = sample_tar();
        for c in ALL {
            let wrong = Digest::sha256_of(b"something else");
            let out = check_with(
                &compress(&tar, c),
                c,
                &[Digest::sha256_of(&tar), wrong.clone()],
                DeepLimits::default(),
                false,
            );
            let f = out.only("T3");
            assert!(f.message.contains(&wrong.to_string()), "{}", f.message);
            assert!(f.message.contains("rootfs.diff_ids[1]"), "{}", f.message);
            assert!(
                f.message
                    .contains(&Digest::sha256_of(b"config").to_string()),
                "{}",
                f.message
            );
        }
    }

    #[test]
    fn magic_mismatch_is_t2_and_the_layer_is_still_checked() {
        let tar = Tar::default().file("../evil", b"x").end();
        let diff_id = Digest::sha256_of(&tar);
        for (bytes, declared) in [
            (Compression::Gzip, Compression::Zstd),
            (Compression::Zstd, Compression::Gzip),
            (Compression::Gzip, Compression::None),
            (Compression::None, Compression::Gzip),
            (Compression::None, Compression::Zstd),
        ] {
            let out = check_with(
                &compress(&tar, bytes),
                declared,
                std::slice::from_ref(&diff_id),
                DeepLimits::default(),
                false,
            );
            assert_eq!(
                out.rules(),
                ["T2", "T6"],
                "{bytes:?} as {declared:?}: {:#?}",
                out.findings
            );
        }
    }

    #[test]
    fn unrecognizable_bytes_under_a_compressed_type_are_only_hashed() {
        for blob in [
            &b""[..],
            b"\xfd7zXZ\0 some xz",
            b"BZh91AY",
            b"not a layer at all, just text",
        ] {
            let out = check_with(
                blob,
                Compression::Gzip,
                &[Digest::sha256_of(b"")],
                DeepLimits::default(),
                false,
            );
            assert_eq!(out.rules(), ["T2"], "{:#?}", out.findings);
            assert!(out.digest.is_ok());
        }
        // Under the uncompressed type, text is simply not a tar.
        let out = check_with(
            b"not a layer at all, just text",
            Compression::None,
            &[],
            DeepLimits::default(),
            false,
        );
        assert_eq!(out.rules(), ["T4"], "{:#?}", out.findings);
    }

    #[test]
    fn truncated_and_corrupt_streams_are_t1() {
        let tar = Tar::default()
            .file(
                "big",
                &(0..200_000u32)
                    .map(|i| (i * 7 % 251) as u8)
                    .collect::<Vec<_>>(),
            )
            .end();
        for c in [Compression::Gzip, Compression::Zstd] {
            let blob = compress(&tar, c);
            let truncated = &blob[..blob.len() / 2];
            let out = check_with(
                truncated,
                c,
                &[Digest::sha256_of(&tar)],
                DeepLimits::default(),
                false,
            );
            assert_eq!(out.rules(), ["T1"], "{c:?} truncated: {:#?}", out.findings);
            assert!(
                out.findings[0].message.contains("truncated"),
                "{}",
                out.findings[0].message
            );

            let mut corrupt = blob.clone();
            let mid = corrupt.len() / 2;
            for b in &mut corrupt[mid..mid + 16] {
                *b ^= 0x5a;
            }
            let out = check_with(
                &corrupt,
                c,
                &[Digest::sha256_of(&tar)],
                DeepLimits::default(),
                false,
            );
            // zstd frames without a checksum may decode to other bytes: the diff_id catches it.
            assert!(
                out.rules().contains(&"T1") || out.rules() == ["T3"],
                "{c:?} corrupt: {:#?}",
                out.findings
            );

            let mut trailing = blob.clone();
            trailing.extend_from_slice(b"garbage after the stream");
            let out = check_with(
                &trailing,
                c,
                &[Digest::sha256_of(&tar)],
                DeepLimits::default(),
                false,
            );
            assert_eq!(
                out.rules(),
                ["T1"],
                "{c:?} trailing garbage: {:#?}",
                out.findings
            );
        }
        // gzip's trailer: a wrong CRC
        let mut blob = compress(&tar, Compression::Gzip);
        let n = blob.len();
        blob[n - 8] ^= 1;
        let out = check_with(&blob, Compression::Gzip, &[], DeepLimits::default(), false);
        assert_eq!(out.rules(), ["T1"], "{:#?}", out.findings);
    }

    // ---- T11 ----

    #[test]
    fn zstd_window_above_128_mib_is_t11() {
        let tar = sample_tar();
        // First frame: 256 MiB window (exponent 18 → 2^28).
        let out = check_with(
            &zstd_raw_frame(18 << 3, &tar),
            Compression::Zstd,
            &[Digest::sha256_of(&tar)],
            DeepLimits::default(),
            false,
        );
        assert_eq!(out.rules(), ["T11"], "{:#?}", out.findings);
        assert!(
            out.only("T11").message.contains("256 MiB"),
            "{}",
            out.findings[0].message
        );
        // 128 MiB + one eighth (mantissa 1): above the limit too.
        let out = check_with(
            &zstd_raw_frame((17 << 3) | 1, &tar),
            Compression::Zstd,
            &[],
            DeepLimits::default(),
            false,
        );
        assert_eq!(out.rules(), ["T11"], "{:#?}", out.findings);
        // A later frame: the decoder's limit catches it.
        let (a, b) = tar.split_at(2048);
        let mut blob = zstd_raw_frame(10 << 3, a);
        blob.extend(zstd_raw_frame(18 << 3, b));
        let out = check_with(
            &blob,
            Compression::Zstd,
            &[Digest::sha256_of(&tar)],
            DeepLimits::default(),
            false,
        );
        assert_eq!(out.rules(), ["T11"], "{:#?}", out.findings);
        // Exactly 128 MiB is accepted.
        let out = check_with(
            &zstd_raw_frame(17 << 3, &tar),
            Compression::Zstd,
            &[Digest::sha256_of(&tar)],
            DeepLimits::default(),
            false,
        );
        out.clean();
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

    // ---- T10 ----

    #[test]
    fn decompression_bombs_are_stopped_and_the_blob_still_hashed() {
        let tar = Tar::default().file("zeros", &vec![0u8; 8 << 20]).end();
        let limits = DeepLimits {
            ratio_grace: 1 << 20,
            max_ratio: 100,
            ..DeepLimits::default()
        };
        for c in [Compression::Gzip, Compression::Zstd] {
            let out = check_with(
                &compress(&tar, c),
                c,
                &[Digest::sha256_of(b"wrong")],
                limits,
                false,
            );
            assert_eq!(out.rules(), ["T10"], "{c:?}: {:#?}", out.findings);
            assert!(
                out.findings[0].message.contains("ratio"),
                "{}",
                out.findings[0].message
            );
        }
        let limits = DeepLimits {
            max_uncompressed: 1 << 20,
            ..DeepLimits::default()
        };
        let out = check_with(
            &compress(&tar, Compression::Zstd),
            Compression::Zstd,
            &[],
            limits,
            false,
        );
        assert_eq!(out.rules(), ["T10"], "{:#?}", out.findings);
        // An uncompressed layer has nothing to amplify: no cap.
        let out = check_with(
            &tar,
            Compression::None,
            &[Digest::sha256_of(&tar)],
            limits,
            false,
        );
        out.clean();
        // Under the default caps, this small layer is fine.
        check_tar(&tar, Compression::Zstd).clean();
    }

    /// A layer of one file of `mib` MiB of zeros, compressed as it is written (no big buffer).
    fn zeros_layer(mib: usize, c: Compression) -> Vec<u8> {
        use std::io::Write;
        let mut w =
            crate::codec::layer::CompressWriter::new(Vec::new(), &CompressOptions::new(c)).unwrap();
        w.write_all(&header(b"zeros", b'0', (mib as u64) << 20, b""))
            .unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..mib + 1 {
            w.write_all(&chunk).unwrap(); // the data, then the end-of-archive zeros
        }
        w.finish().unwrap()
    }

    #[test]
    fn gzip_and_zstd_bombs_are_caught_by_the_default_caps() {
        for c in [Compression::Gzip, Compression::Zstd] {
            let blob = zeros_layer(200, c);
            let out = check_with(&blob, c, &[], DeepLimits::default(), false);
            assert_eq!(
                out.rules(),
                ["T10"],
                "{c:?} ({} bytes): {:#?}",
                blob.len(),
                out.findings
            );
        }
    }

    // ---- T4 ----

    #[test]
    fn broken_tars_are_t4() {
        let good = sample_tar();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated in data", good[..512 * 4 + 100].to_vec()),
            ("truncated in a header", good[..512 * 3 + 100].to_vec()),
            ("bad checksum", {
                let mut t = good.clone();
                t[512 + 10] ^= 1;
                t
            }),
            ("trailing data", {
                let mut t = good.clone();
                let n = t.len();
                t[n - 100] = 1;
                t
            }),
            ("orphan pax header", {
                let mut t = Tar::default().file("a", b"a").pax(&[("path", "b")]).0;
                t.extend_from_slice(&[0u8; 1024]);
                t
            }),
            (
                "bad pax record",
                Tar::default()
                    .raw(header(b"p", b'x', 9, b""), b"7 path=x\n")
                    .file("a", b"")
                    .end(),
            ),
            ("pax header too large", {
                let data = pax_records(&[("comment", &"x".repeat(2 << 20))]);
                Tar::default()
                    .raw(header(b"p", b'x', data.len() as u64, b""), &data)
                    .file("a", b"")
                    .end()
            }),
            ("bad size field", {
                let mut h = header(b"a", b'0', 0, b"");
                h[124..136].copy_from_slice(b"12345678x01\0");
                set_checksum(&mut h);
                Tar::default().raw(h, b"").end()
            }),
            (
                "random bytes",
                (0..4096u32).map(|i| (i * 131 % 256) as u8).collect(),
            ),
        ];
        for (what, tar) in cases {
            for c in ALL {
                let out = check_with(
                    &compress(&tar, c),
                    c,
                    &[Digest::sha256_of(&tar)],
                    DeepLimits::default(),
                    false,
                );
                assert_eq!(out.rules(), ["T4"], "{what} ({c:?}): {:#?}", out.findings);
            }
        }
    }

    #[test]
    fn header_only_entries_with_data_are_t4_and_followed_as_go_does() {
        // A directory that claims 512 bytes of data: Go reads none, so the "data" is the next header.
        let tar = Tar::default()
            .raw(header(b"d/", b'5', 512, b""), b"")
            .file("d/f", b"x")
            .end();
        let out = check_tar(&tar, Compression::Gzip);
        assert_eq!(out.rules(), ["T4"], "{:#?}", out.findings);
        assert_eq!(out.findings[0].entry.as_deref(), Some("d/"));
    }

    // ---- T5–T9 ----

    #[test]
    fn duplicates_are_t5_after_normalization() {
        let tar = Tar::default()
            .node("a/", b'5', "")
            .node("./a", b'5', "")
            .file("a//b", b"1")
            .file("./a/./b", b"2")
            .file(".wh.b", b"")
            .file("b", b"")
            .end();
        let out = check_tar(&tar, Compression::Gzip);
        assert_eq!(out.rules(), ["T5", "T5"], "{:#?}", out.findings);
        assert_eq!(out.findings[0].entry.as_deref(), Some("./a"));
        assert_eq!(out.findings[1].entry.as_deref(), Some("./a/./b"));
    }

    #[test]
    fn escaping_paths_are_t6() {
        let tar = Tar::default()
            .file("../etc/passwd", b"x")
            .file("/abs", b"x")
            .file("a/../../b", b"x")
            .node("hl", b'1', "../outside")
            .node("hl2", b'1', "/etc/shadow")
            .node("symlink-is-fine", b'2', "/etc/shadow")
            .end();
        let out = check_tar(&tar, Compression::Zstd);
        assert_eq!(
            out.rules(),
            ["T6", "T6", "T6", "T6", "T6"],
            "{:#?}",
            out.findings
        );
        let entries: Vec<_> = out
            .findings
            .iter()
            .map(|f| f.entry.clone().unwrap_or_default())
            .collect();
        assert_eq!(entries, ["../etc/passwd", "/abs", "a/../../b", "hl", "hl2"]);
    }

    #[test]
    fn bare_whiteout_is_t7_a_should() {
        let tar = Tar::default().file("etc/.wh.", b"").end();
        let out = check_with(
            &compress(&tar, Compression::Gzip),
            Compression::Gzip,
            &[],
            DeepLimits::default(),
            false,
        );
        assert_eq!(out.only("T7").level, Level::Warning);
        assert_eq!(out.only("T7").entry.as_deref(), Some("etc/.wh."));
        let out = check_with(
            &compress(&tar, Compression::Gzip),
            Compression::Gzip,
            &[],
            DeepLimits::default(),
            true,
        );
        assert_eq!(out.only("T7").level, Level::Error);
    }

    #[test]
    fn malformed_whiteouts_are_t8() {
        let tar = Tar::default()
            .file(".wh..wh.foo", b"")
            .node("etc/.wh.dir", b'5', "")
            .node(".wh..wh..opq", b'2', "x")
            .file(".wh...", b"")
            .node("usr/.wh.link", b'1', "etc/x")
            .end();
        let out = check_tar(&tar, Compression::None);
        assert_eq!(out.rules(), ["T8"; 5], "{:#?}", out.findings);
    }

    #[test]
    fn sparse_files_are_t9_warnings() {
        let regions: Vec<(u64, u64)> = (0..30).map(|i| (i * 4096, 512)).collect();
        let mut tar = gnu_sparse("sparse-many", &regions, 30 * 4096);
        tar.extend(gnu_sparse("sparse-few", &[(0, 512), (8192, 512)], 1 << 30));
        let tar = Tar(tar).file("after", b"still read in step").end();
        let pax = Tar::default()
            .pax(&[
                ("GNU.sparse.major", "1"),
                ("GNU.sparse.minor", "0"),
                ("GNU.sparse.name", "real-name"),
                ("GNU.sparse.realsize", "100000"),
            ])
            .file("./GNUSparseFile.0/real-name", b"1\n0\n512\n")
            .end();
        for (t, expected) in [
            (tar, vec!["sparse-many", "sparse-few"]),
            (pax, vec!["real-name"]),
        ] {
            let out = check_tar(&t, Compression::Gzip);
            assert!(
                out.findings
                    .iter()
                    .all(|f| f.rule == "T9" && f.level == Level::Warning),
                "{:#?}",
                out.findings
            );
            let entries: Vec<_> = out
                .findings
                .iter()
                .map(|f| f.entry.clone().unwrap_or_default())
                .collect();
            assert_eq!(entries, expected);
        }
    }

    #[test]
    fn findings_per_rule_are_capped_with_a_summary() {
        let mut tar = Tar::default();
        for i in 0..50 {
            tar = tar.file(&format!("/abs{i}"), b"");
        }
        let out = check_tar(&tar.end(), Compression::Gzip);
        assert_eq!(
            out.findings.len(),
            MAX_FINDINGS_PER_RULE + 1,
            "{:#?}",
            out.findings
        );
        let last = out.findings.last().unwrap();
        assert!(
            last.entry.is_none() && last.message.contains("30 more T6"),
            "{}",
            last.message
        );
    }

    #[test]
    fn tracked_paths_are_capped() {
        let mut tar = Tar::default();
        for i in 0..10 {
            tar = tar.file(&format!("f{i}"), b"");
        }
        let tar = tar.file("f0", b"").end();
        let limits = DeepLimits {
            max_tracked_paths: 5,
            ..DeepLimits::default()
        };
        let out = check_with(&tar, Compression::None, &[], limits, false);
        assert_eq!(out.rules(), ["T10"], "{:#?}", out.findings);
    }

    // ---- I/O, hostile input ----

    #[test]
    fn read_errors_are_errors_not_findings() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                self.0 -= 1;
                buf[0] = 0x1f;
                Ok(1)
            }
        }
        let check = LayerCheck {
            media_type: "m".into(),
            compression: Compression::Gzip,
            diff_ids: Vec::new(),
        };
        let place = Place::default();
        for n in [0, 3, 600] {
            let mut findings = Findings::new(false);
            let result = check_layer(
                &mut Failing(n),
                Algorithm::Sha256,
                &check,
                &mut findings,
                &place,
            );
            assert!(result.unwrap_err().to_string().contains("disk on fire"));
        }
    }

    #[test]
    fn mutated_layers_never_panic() {
        let tar = sample_tar();
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for c in ALL {
            let blob = compress(&tar, c);
            for _ in 0..300 {
                let mut mutated = blob.clone();
                for _ in 0..(next() % 4 + 1) {
                    let i = next() as usize % mutated.len();
                    mutated[i] = next() as u8;
                }
                if next() % 5 == 0 {
                    mutated.truncate(next() as usize % mutated.len());
                }
                let _ = check_with(
                    &mutated,
                    c,
                    &[Digest::sha256_of(&tar)],
                    DeepLimits::default(),
                    false,
                );
            }
        }
    }

    #[test]
    fn numeric_fields() {
        assert_eq!(parse_octal(b"  0000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"\0\0\0"), Some(0));
        assert_eq!(parse_octal(b"12 34"), None);
        assert_eq!(
            parse_numeric(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
        assert_eq!(
            parse_numeric(&[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]),
            None
        );
        assert_eq!(
            parse_numeric(&[
                0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]),
            None
        );
        assert_eq!(normalize(b"./a//b/./c/"), b"a/b/c");
        assert_eq!(normalize(b"/"), b"");
    }
}
