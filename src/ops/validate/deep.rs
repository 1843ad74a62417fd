//! `--deep`: reading a layer once to check its compression, its diff_id and its tar stream.
//!
//! # One pass, bounded memory
//!
//! [`check_layer`] reads the raw blob exactly once. The bytes flow through a chain of readers,
//! each pulling from the one before, so nothing is read twice and nothing is held whole:
//!
//! ```text
//! blob ─► RawTee ─► BufReader ─► codec::decode::Decoder ─► Inflow ─► BufReader ─► codec::tar::Reader
//!         hash → blob digest (L8)   limits (T10, T11)       hash → diff_id (T3)      T4–T9
//! ```
//!
//! The decoders write straight into the last buffer, the hashes read it there and the tar
//! reader skips file data by consuming it from that buffer: the uncompressed bytes are never
//! copied. Memory is a few buffers of [`BUF`] bytes, the zstd window (at most 128 MiB by
//! default), and 16 bytes per distinct path of the layer for the duplicate check — it grows
//! with the number of entries, never with the blob's size, and that too is capped.
//!
//! The decoder and its decompression-bomb policy are [`crate::codec::decode`]'s, the tar
//! reader (Go's `archive/tar` semantics, header caps) is [`crate::codec::tar`]'s: the same ones
//! every other reader in ocikit uses. This module holds the rules on top of them.
//!
//! # What is checked
//!
//! - **T2** the first bytes ([`crate::codec::sniff`]) agree with the media type. On
//!   disagreement the layer is decompressed as what its bytes are, when that is recognizable
//!   (gzip, zstd, an uncompressed tar), so the other checks still run; otherwise only its
//!   digest is computed.
//! - **T1** the stream decompresses (gzip with any number of members, zstd with any number of
//!   frames) to its end: corrupt data, a bad CRC, truncation and trailing garbage are T1.
//! - **T11** zstd frames needing a window above the limit are refused (a decoder must allocate
//!   the whole window).
//! - **T10** decompression stops at the size and ratio limits, and the raw bytes are still read
//!   to their end so that the blob's own digest (L8) stays right. Past
//!   [`MAX_TRACKED_PATHS`] paths, duplicates are no longer tracked; that is T10 too.
//! - **T3** the uncompressed stream's digest equals every diff_id configs give for the layer.
//! - **T4**–**T9** the tar stream, read as it flows: it reads to its end (truncation, bad
//!   headers, headers beyond the caps, non-zero data after the end-of-archive marker, parser
//!   differentials), no duplicate paths (T5), no absolute paths or `..` (T6, also in hard-link
//!   targets), no bare `.wh.` (T7), well-formed whiteouts (T8), sparse files warned (T9).
//!
//! # Caps of this module, and why these values
//!
//! - [`MAX_TRACKED_PATHS`] = 4 million paths per layer for the duplicate check, each kept as
//!   16 bytes (a truncated SHA-256 of the normalized path, so long hostile paths cost nothing
//!   more): at most about 150 MB in the worst case, about 1 MB for a 30,000-file Debian layer.
//! - [`MAX_FINDINGS_PER_RULE`] = 20 findings per tar rule per layer, then one summary finding:
//!   a hostile layer with a million bad entries cannot flood the report.
//!
//! Nothing here panics on what a blob contains: errors become findings.

use std::collections::HashSet;
use std::io::{self, BufReader, Read};

use sha2::Digest as _;

use super::finding::{Findings, Place};
use crate::codec::decode::{self, Decoder};
use crate::codec::sniff::{self, Format};
use crate::codec::tar::{self, path, Header, Kind, TarError};
use crate::error::{Limit, LimitExceeded};
use crate::spec::digest::{Algorithm, Digest, Hasher};
use crate::spec::document::media_type::Compression;

/// Size of the buffers between the stages (the raw reads, the decoder's output).
pub const BUF: usize = 256 * 1024;
/// Largest number of distinct paths tracked per layer for the duplicate check (T5).
pub const MAX_TRACKED_PATHS: usize = 4_000_000;
/// Findings of one tar rule listed per layer before they are summarized.
pub const MAX_FINDINGS_PER_RULE: usize = 20;

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

/// The caps of a deep check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeepLimits {
    /// The decompression-bomb policy (T10, T11).
    pub decode: decode::Limits,
    /// The tar reader's header caps (beyond them: T4).
    pub tar: tar::Limits,
    /// Largest number of distinct paths tracked for the duplicate check.
    pub max_tracked_paths: usize,
    /// Findings of one tar rule listed per layer before one summary finding.
    pub max_findings_per_rule: usize,
}

impl Default for DeepLimits {
    fn default() -> Self {
        DeepLimits::with_decode(decode::Limits::default())
    }
}

impl DeepLimits {
    /// The default caps, with the decompression limits `decode`.
    pub fn with_decode(decode: decode::Limits) -> DeepLimits {
        DeepLimits {
            decode,
            tar: tar::Limits::default(),
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
    limits: &DeepLimits,
    findings: &mut Findings,
    place: &Place,
) -> io::Result<Digest> {
    let mut raw = RawTee::new(raw, algorithm);
    raw.fill_head(sniff::HEAD)?;
    let sniffed = sniff::sniff(&raw.head);
    let Some(decode) = choose_decoding(check, sniffed, &raw.head, findings, place) else {
        return raw.finish();
    };

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
    let decoder = Decoder::new(BufReader::with_capacity(BUF, raw), decode, &limits.decode)?;
    let mut inflow = Inflow {
        decoder,
        hashers: algorithms
            .iter()
            .filter(|a| !(shares_raw_hash && **a == algorithm))
            .map(|a| Hasher::new(*a))
            .collect(),
        stop: None,
    };

    {
        let mut reader = BufReader::with_capacity(BUF, &mut inflow);
        let mut checks = EntryChecks::new(findings, place, limits);
        let check_trailer = walk_tar(&mut reader, limits.tar, &mut checks);
        // Whatever the tar walk made of it, the stream is read to its end: the diff_id covers
        // the padding after the end-of-archive marker, and the decoder checks its trailer.
        if let Ok(trailer) = tar::trailer(&mut reader) {
            if check_trailer {
                if let Some(at) = trailer.first_nonzero {
                    let message = format!("the tar stream has non-zero data after its end-of-archive marker ({at} bytes after the marker, in {} trailing bytes): readers that skip zero blocks see more than readers that stop there", trailer.len);
                    checks.report("T4", None, message);
                }
            }
        }
        checks.finish();
    }

    let complete = match inflow.stop.take() {
        Some(Stop::Raw(e)) => return Err(e),
        Some(Stop::Decode(e)) => {
            let message = decode_failure(
                decode,
                &e,
                inflow.decoder.produced(),
                inflow.decoder.consumed(),
            );
            findings.add_full("T1", place, None, None, message);
            false
        }
        Some(Stop::Limit(exceeded)) => {
            let rule = match exceeded.limit {
                Limit::ZstdWindow => "T11",
                Limit::Uncompressed | Limit::Ratio => "T10",
            };
            findings.add_full(rule, place, None, None, exceeded.to_string());
            false
        }
        None => true,
    };
    let mut uncompressed: Vec<Digest> = inflow.hashers.into_iter().map(Hasher::finish).collect();
    let blob = inflow.decoder.into_inner().into_inner().finish()?;
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

/// T2: how to decode the layer, given its media type and first bytes (`head`); `None` when it
/// cannot be decoded at all (the caller then only hashes it).
fn choose_decoding(
    check: &LayerCheck,
    sniffed: Format,
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
        None if sniffed == Format::Tar => (
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

/// The message for a decoder error (T1).
fn decode_failure(
    decode: Compression,
    e: &io::Error,
    uncompressed: u64,
    compressed: u64,
) -> String {
    let name = decode.name();
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return format!("the {name} stream is truncated: it ends after {compressed} compressed bytes ({uncompressed} uncompressed) before its end ({e})");
    }
    format!("the layer does not decompress as {name}: {e} (after {compressed} compressed, {uncompressed} uncompressed bytes)")
}

/// The raw blob, hashed as it is read. Its first bytes are read ahead (for the sniff) and
/// served again.
struct RawTee<'a> {
    inner: &'a mut dyn Read,
    hasher: Hasher,
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

/// Why the uncompressed stream stopped early.
enum Stop {
    /// Reading the blob failed (an I/O error, not a finding).
    Raw(io::Error),
    /// The decoder failed: T1.
    Decode(io::Error),
    /// A limit of the decompression policy was reached: T10 or T11.
    Limit(LimitExceeded),
}

/// The uncompressed stream, hashed (diff_ids) as it flows. After a [`Stop`] every read fails.
struct Inflow<'a> {
    decoder: Decoder<BufReader<RawTee<'a>>>,
    hashers: Vec<Hasher>,
    stop: Option<Stop>,
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
                Ok(n)
            }
            Err(e) => {
                let message = e.to_string();
                self.stop = Some(match self.decoder.get_mut().get_mut().error.take() {
                    Some(raw) => Stop::Raw(raw),
                    None => match LimitExceeded::in_io(&e) {
                        Some(exceeded) => Stop::Limit(exceeded.clone()),
                        None => Stop::Decode(e),
                    },
                });
                Err(io::Error::other(message))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tar stream
// ---------------------------------------------------------------------------------------------

/// Reads the tar stream to its end with the one tar reader, calling `checks` for every entry.
/// Returns whether the stream ended at its end-of-archive marker, so the bytes after it are to
/// be checked.
///
/// A tar that ends between entries without a marker is accepted, as Go's archive/tar and GNU
/// tar accept it (and the diff_id catches a layer cut short); one that ends inside the padding
/// after an entry's data is T4, saying what exactly is missing.
fn walk_tar<R: tar::Input>(
    reader: &mut R,
    limits: tar::Limits,
    checks: &mut EntryChecks<'_>,
) -> bool {
    let mut tar = tar::Reader::with_limits(reader, limits);
    loop {
        match tar.next_entry() {
            Ok(Some(entry)) => checks.entry(entry.header()),
            Ok(None) => break,
            Err(TarError::Malformed { message, .. }) => {
                checks.report("T4", None, message);
                return false;
            }
            // Every stream error is recorded by the Inflow (T1, T10, T11, or a read error).
            Err(TarError::Io(_)) => return false,
        }
    }
    match tar.end() {
        Some(end @ tar::End::InPadding { .. }) => {
            let missing = end.missing().unwrap_or_default();
            checks.report(
                "T4",
                None,
                format!("the tar stream is truncated: {missing}"),
            );
            false
        }
        Some(end) => end.is_marked(),
        None => false,
    }
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

    fn entry(&mut self, e: &Header) {
        let path = &e.path[..];
        if e.ignored_size != 0 {
            let size = e.ignored_size;
            self.report("T4", Some(path), format!("the entry is a {} with a non-zero size ({size} bytes): Go's archive/tar reads no data for it but other readers skip {size} bytes, so they disagree about the rest of the archive (ocikit follows Go)", e.kind.describe()));
        }
        let name = path::normalize(path);
        if name.absolute {
            self.report(
                "T6",
                Some(path),
                "the path is absolute; layer paths are relative to the root".into(),
            );
        }
        if name.dotdot {
            self.report("T6", Some(path), dotdot_message("path", &name));
        }
        if e.kind == Kind::HardLink {
            let target = path::normalize(&e.link);
            if target.absolute {
                let message = format!("the hard link's target {} is absolute; hard-link targets are paths inside the layer", shown(&e.link));
                self.report("T6", Some(path), message);
            }
            if target.dotdot {
                let what = format!("hard link's target {}", shown(&e.link));
                self.report("T6", Some(path), dotdot_message(&what, &target));
            }
        }

        if self.tracking {
            if self.seen.len() >= self.limits.max_tracked_paths {
                self.tracking = false;
                let message = format!("the layer has more than {} distinct paths; ocikit stopped checking it for duplicate paths (T5) at entry {} (uncompressed byte {})", self.limits.max_tracked_paths, shown(path), e.offset);
                self.findings
                    .add_full("T10", self.place, None, None, message);
            } else if !self.seen.insert(path_key(&name.clean)) {
                let message = format!("the path {} appears more than once in the layer: an earlier entry is silently replaced by this one", shown(&name.clean));
                self.report("T5", Some(path), message);
            }
        }

        let base = name.clean.rsplit(|&b| b == b'/').next().unwrap_or_default();
        let regular = matches!(e.kind, Kind::Regular | Kind::Contiguous);
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
                    e.kind.describe()
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
                    e.kind.describe()
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

/// The T6 message for a name with a `..` component.
fn dotdot_message(what: &str, name: &path::TarPath) -> String {
    if name.escapes {
        format!("the {what} has a `..` component that climbs above the layer's root")
    } else {
        format!("the {what} has a `..` component: Go's unpackers resolve it, GNU tar refuses the entry, so readers disagree about it")
    }
}

fn rule_slot(rule: &str) -> Option<usize> {
    ["T4", "T5", "T6", "T7", "T8", "T9"]
        .iter()
        .position(|r| *r == rule)
}

fn shown(name: &[u8]) -> String {
    path::display(name)
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
    use crate::codec::testkit::*;
    use crate::ops::validate::finding::Finding;
    use crate::ops::validate::rules::Level;

    fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
        compress_bytes(tar, &CompressOptions::new(compression)).unwrap()
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
            media_type: crate::spec::document::media_type::layer_media_type(declared).to_string(),
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
        let digest = check_layer(
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
        let mut builder = ::tar::Builder::new(Vec::new());
        let mut h = ::tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_entry_type(::tar::EntryType::Regular);
        builder.append_data(&mut h, &long, &b"hello"[..]).unwrap();
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(::tar::EntryType::Link);
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

    #[test]
    fn a_tar_cut_in_the_padding_says_the_data_is_whole_and_what_is_missing() {
        let whole = Tar::default().file("x", &[b'x'; 681]).0;
        let tar = &whole[..512 + 681 + 100];
        for c in ALL {
            let out = check_tar(tar, c);
            let message = &out.only("T4").message;
            assert!(
                message.contains("the padding after the data of x: all 681 bytes of its data are present, but 243 padding bytes and the end-of-archive marker"),
                "{message}"
            );
        }
        // Cut inside the data, it says how much is there.
        let out = check_tar(&whole[..512 + 600], Compression::Gzip);
        let message = &out.only("T4").message;
        assert!(
            message.contains("truncated inside the data of x (600 of 681 bytes present)"),
            "{message}"
        );
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

    // ---- T10 ----

    #[test]
    fn decompression_bombs_are_stopped_and_the_blob_still_hashed() {
        let tar = Tar::default().file("zeros", &vec![0u8; 8 << 20]).end();
        let limits = DeepLimits::with_decode(
            decode::Limits::default()
                .with_ratio_grace(1 << 20)
                .with_max_ratio(100),
        );
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
        let limits =
            DeepLimits::with_decode(decode::Limits::default().with_max_uncompressed(1 << 20));
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
                &DeepLimits::default(),
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
}
