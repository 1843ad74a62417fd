//! The one tar reader: a hardened, streaming reader that every tar ocikit reads goes through
//! (layout archives, layers under `validate --deep`, and what unpacks tars to disk), and the
//! one normaliser of entry names ([`path`]).
//!
//! [`Reader`] pulls 512-byte blocks from a [`BufRead`] and yields each entry with every
//! extension header applied; an [`Entry`] reads that entry's data as a bounded stream, and
//! data not read is skipped (by [`Input::skip`]: consumed from the buffer for a stream, a seek
//! for a file read in place), never copied.
//!
//! # Where readers differ, it reads as Go's `archive/tar` does
//!
//! Go's `archive/tar` is what containerd, Docker, skopeo and umoci unpack with, so where tar
//! readers disagree ocikit sees what they see:
//! - a GNU long name (`L`) or link (`K`) overrides a PAX `path`/`linkpath`, which overrides the
//!   header; a PAX record with an empty value keeps the header's field; a second extended
//!   header before the same entry replaces the first; `GNU.sparse.name` names a PAX sparse
//!   file;
//! - a PAX global header (`g`) applies to nothing, as in Go; but GNU tar and Python's tarfile
//!   apply its records to every later entry, so a global header that sets a name, link, size,
//!   sparse layout, owner or extended attribute, or that comes
//!   while an extended header is pending (Go drops it, others apply it to the next entry), is
//!   a differential: an error, or with [`Reader::report_differentials`] a note on the next
//!   entry ([`Header::differential`]). A global header with only a `comment` (as `git
//!   archive` writes) or other records that change nothing is read as Go reads it;
//! - the format follows the magic bytes: the ustar prefix is joined for ustar and star headers
//!   only (and for GNU headers whose time fields do not parse, as Go does for its own pre-1.8
//!   output); every numeric field (mode, uid, gid, size, mtime, device numbers) must parse,
//!   octal or base-256, else the archive is invalid; the checksum may be signed or unsigned;
//! - links, symlinks, devices, directories and FIFOs carry no data whatever their size field
//!   says ([`Header::ignored_size`] keeps it so callers can report the disagreement with
//!   readers that skip it); a type-`\0` entry whose name ends in `/` is a directory;
//! - the archive ends at two zero blocks, at one zero block followed by the end of the stream,
//!   or at the end of the stream on a block boundary ([`End`] says which, so that a caller can
//!   refuse a truncated archive); a zero block followed by anything else is invalid.
//!
//! # Bounded whatever the bytes
//!
//! The only data held in memory is that of extension headers, and each is refused past
//! [`Limits::max_meta_size`] (1 MiB, Go's own limit) before anything is allocated; PAX headers
//! are also limited to [`Limits::max_pax_records`] records. Every numeric field is parsed with
//! checked arithmetic. Sparse entries are flagged ([`Header::sparse`]) and their data is not
//! expanded (reading it is an error), so a sparse map can never make ocikit write holes.

pub mod path;

mod header;

use std::io::{self, BufRead, BufReader, Read};

use header::{Block, Format, BLOCK};

pub(crate) use header::checksum_ok;

/// Largest GNU long name / long link / PAX header held in memory: Go's `archive/tar` limit.
pub const MAX_META_SIZE: u64 = 1 << 20;
/// Largest number of records in one PAX header.
pub const MAX_PAX_RECORDS: usize = 10_000;

/// The caps of a [`Reader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest extension header (PAX, GNU long name or link), in bytes.
    pub max_meta_size: u64,
    /// Largest number of records in one PAX header.
    pub max_pax_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_meta_size: MAX_META_SIZE,
            max_pax_records: MAX_PAX_RECORDS,
        }
    }
}

/// Where a [`Reader`] reads from: buffered bytes that can be passed over without being read.
pub trait Input: BufRead {
    /// Passes over up to `n` bytes; returns how many there were (fewer only at the end).
    fn skip(&mut self, n: u64) -> io::Result<u64>;
}

/// Passes over `n` bytes of a stream by consuming them from its buffer (no copy).
fn consume_up_to<R: BufRead + ?Sized>(reader: &mut R, n: u64) -> io::Result<u64> {
    let mut left = n;
    while left > 0 {
        let available = match reader.fill_buf() {
            Ok(buf) => buf.len(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available == 0 {
            break;
        }
        let k = (available as u64).min(left) as usize;
        reader.consume(k);
        left -= k as u64;
    }
    Ok(n - left)
}

impl<R: Read> Input for BufReader<R> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        consume_up_to(self, n)
    }
}

impl Input for &[u8] {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        consume_up_to(self, n)
    }
}

impl<I: Input + ?Sized> Input for &mut I {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        (**self).skip(n)
    }
}

/// What an entry is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// `0`, or `\0` without a trailing `/`.
    #[default]
    Regular,
    /// `7`: GNU tar extracts it as a regular file, Go programs refuse it.
    Contiguous,
    /// `1`: a hard link to an earlier entry (its [`Header::link`], relative to the root).
    HardLink,
    /// `2`: a symbolic link to [`Header::link`], relative to the link's directory.
    Symlink,
    CharDevice,
    BlockDevice,
    /// `5`, or `\0` with a trailing `/`.
    Directory,
    Fifo,
    /// GNU old sparse (`S`), a volume label (`V`) or any other type: the type byte.
    Other(u8),
}

impl Kind {
    fn of(typeflag: u8) -> Kind {
        match typeflag {
            b'0' | 0 => Kind::Regular,
            b'7' => Kind::Contiguous,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Directory,
            b'6' => Kind::Fifo,
            other => Kind::Other(other),
        }
    }

    /// Header-only kinds carry no data whatever their size field says (Go's
    /// `isHeaderOnlyType`).
    fn is_header_only(self) -> bool {
        matches!(
            self,
            Kind::HardLink
                | Kind::Symlink
                | Kind::CharDevice
                | Kind::BlockDevice
                | Kind::Directory
                | Kind::Fifo
        )
    }

    /// "regular file", "hard link", …, for messages.
    pub fn describe(self) -> String {
        match self {
            Kind::Regular => "regular file".into(),
            Kind::Contiguous => "contiguous file".into(),
            Kind::HardLink => "hard link".into(),
            Kind::Symlink => "symbolic link".into(),
            Kind::CharDevice => "character device".into(),
            Kind::BlockDevice => "block device".into(),
            Kind::Directory => "directory".into(),
            Kind::Fifo => "FIFO".into(),
            Kind::Other(b'S') => "GNU sparse file".into(),
            Kind::Other(b'V') => "GNU volume label".into(),
            Kind::Other(other) => format!("entry of type {:?}", char::from(other)),
        }
    }
}

/// One entry's header, with every extension header applied.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Header {
    /// The name, raw (see [`path::normalize`] for what it means).
    pub path: Vec<u8>,
    /// The link target of a hard link or symlink, raw.
    pub link: Vec<u8>,
    /// The type byte as stored (`\0` is kept: [`Header::kind`] says what it means).
    pub typeflag: u8,
    pub kind: Kind,
    /// A GNU sparse file (old `S` entries, or PAX `GNU.sparse.*` records): its data is a sparse
    /// encoding, which ocikit does not expand.
    pub sparse: bool,
    /// Bytes of data the entry has in the archive (0 for header-only kinds).
    pub size: u64,
    /// The size a link, symlink, device, directory or FIFO declares although it carries no
    /// data: Go reads none, other readers skip that much, so they disagree about the rest.
    pub ignored_size: u64,
    pub mode: i64,
    pub uid: i64,
    pub gid: i64,
    /// Modification time, in whole seconds since the epoch.
    pub mtime: i64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub devmajor: i64,
    pub devminor: i64,
    /// Extended attributes (PAX `SCHILY.xattr.<name>` records): (name, value).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where the entry's first header (extension headers included) starts in the stream.
    pub offset: u64,
    /// Where its data starts in the stream.
    pub data_offset: u64,
    /// What tar readers read differently about this entry (a PAX global header before it):
    /// set only by a reader told to [report](Reader::report_differentials) rather than refuse.
    pub differential: Option<String>,
}

impl Header {
    /// The name for messages (lossy UTF-8, a long one cut: [`path::display`]).
    pub fn shown(&self) -> String {
        path::display(&self.path)
    }
}

/// How a tar stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Two zero blocks: the end-of-archive marker.
    Marker,
    /// One zero block, then the end of the stream (Go and GNU tar accept it as the end).
    LoneZeroBlock,
    /// The stream ends between entries with no end-of-archive marker at all: complete to Go and
    /// GNU tar, but as likely an archive cut short on a block boundary.
    Unmarked,
    /// The stream ends inside the zero padding after the last entry's data (all of which is
    /// present), with no end-of-archive marker: Go reads this as the end too.
    InPadding {
        /// The last entry's name.
        entry: String,
        /// Its data size.
        size: u64,
        /// Padding bytes that are missing.
        missing: u64,
    },
}

impl End {
    /// Whether the stream has an end-of-archive marker (one or two zero blocks).
    pub fn is_marked(&self) -> bool {
        matches!(self, End::Marker | End::LoneZeroBlock)
    }

    /// What is missing, for a stream without a marker; `None` when it has one.
    pub fn missing(&self) -> Option<String> {
        match self {
            End::Marker | End::LoneZeroBlock => None,
            End::Unmarked => Some(
                "it ends between two entries without the end-of-archive marker (two zero blocks) that ends a complete tar, so entries may be missing".into(),
            ),
            End::InPadding { entry, size, missing } => Some(format!(
                "it ends inside the padding after the data of {entry}: all {size} bytes of its data are present, but {missing} padding bytes and the end-of-archive marker (two zero blocks) are missing, so entries may be missing too"
            )),
        }
    }
}

/// Why a tar stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// Reading the stream underneath failed (a decompression error or limit, an I/O error).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The bytes are not a well-formed tar, or an extension header is beyond a cap.
    #[error("{message}")]
    Malformed {
        /// Where in the stream (uncompressed bytes).
        offset: u64,
        message: String,
    },
}

/// A streaming tar reader (see the module documentation).
pub struct Reader<R> {
    input: R,
    limits: Limits,
    /// Bytes consumed from `input`.
    offset: u64,
    /// The current entry (reused from one entry to the next).
    header: Header,
    /// Its data not yet read, and the padding after it.
    remaining: u64,
    padding: u64,
    end: Option<End>,
    /// Set after an error: the reader does not go on.
    failed: Option<String>,
    /// Differentials are noted on the entry ([`Header::differential`]) rather than refused.
    report_differentials: bool,
}

/// The entry [`Reader::next_entry`] returned: its header, and its data as a stream (`Read` and
/// `BufRead`, ending where the entry's data ends). Data left unread is skipped by the next
/// call to `next_entry`.
pub struct Entry<'a, R> {
    reader: &'a mut Reader<R>,
}

impl<R: Input> Reader<R> {
    /// A reader with the default [`Limits`].
    pub fn new(input: R) -> Reader<R> {
        Reader::with_limits(input, Limits::default())
    }

    pub fn with_limits(input: R, limits: Limits) -> Reader<R> {
        Reader {
            input,
            limits,
            offset: 0,
            header: Header::default(),
            remaining: 0,
            padding: 0,
            end: None,
            failed: None,
            report_differentials: false,
        }
    }

    /// Notes what tar readers read differently (a PAX global header that GNU tar applies and
    /// Go does not) on the next entry's [`Header::differential`] instead of refusing it, for a
    /// caller that reports such entries itself (and refuses them, or lists them).
    pub fn report_differentials(mut self) -> Reader<R> {
        self.report_differentials = true;
        self
    }

    /// Bytes of the stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How the stream ended, once [`next_entry`](Reader::next_entry) has returned `None`.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// The input, positioned after what was read (after the end-of-archive marker at the end).
    pub fn into_inner(self) -> R {
        self.input
    }

    /// The input.
    pub fn get_ref(&self) -> &R {
        &self.input
    }

    /// The next entry, or `None` at the end of the archive (see [`end`](Reader::end)). After an
    /// error, every later call fails too.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, R>>, TarError> {
        if let Some(message) = &self.failed {
            return Err(TarError::Malformed {
                offset: self.offset,
                message: message.clone(),
            });
        }
        if self.end.is_some() {
            return Ok(None);
        }
        match self.advance() {
            Ok(true) => Ok(Some(Entry { reader: self })),
            Ok(false) => Ok(None),
            Err(e) => {
                self.failed = Some(match &e {
                    TarError::Io(io) => format!("the stream failed: {io}"),
                    TarError::Malformed { message, .. } => message.clone(),
                });
                Err(e)
            }
        }
    }

    fn malformed(&self, at: u64, message: String) -> TarError {
        TarError::Malformed {
            offset: at,
            message,
        }
    }

    /// Skips what is left of the current entry, then reads headers up to the next entry.
    /// `Ok(false)` at the end.
    fn advance(&mut self) -> Result<bool, TarError> {
        if self.remaining > 0 {
            let want = self.remaining;
            let skipped = self.skip(want)?;
            self.remaining -= skipped;
            if skipped < want {
                let size = self.header.size;
                return Err(self.malformed(
                    self.offset,
                    format!(
                        "the tar stream is truncated inside the data of {} ({} of {size} bytes present)",
                        self.header.shown(),
                        size - self.remaining
                    ),
                ));
            }
        }
        if self.padding > 0 {
            let want = self.padding;
            let skipped = self.skip(want)?;
            self.padding = 0;
            if skipped < want {
                // Go treats this as the end of the archive; say exactly what is missing.
                self.end = Some(End::InPadding {
                    entry: self.header.shown(),
                    size: self.header.size,
                    missing: want - skipped,
                });
                return Ok(false);
            }
        }

        let mut block = [0u8; BLOCK];
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<header::Pax> = None;
        let mut differential: Option<String> = None;
        let mut first = self.offset;
        loop {
            let at = self.offset;
            let pending = long_name.is_some() || long_link.is_some() || pax.is_some();
            let orphan = |this: &Self| {
                this.malformed(at, format!("the tar stream ends (at byte {at}) right after a GNU long-name or PAX header, which describes no entry"))
            };
            if !self.block(&mut block)? {
                if pending {
                    return Err(orphan(self));
                }
                self.end = Some(End::Unmarked);
                return Ok(false);
            }
            if block.iter().all(|&b| b == 0) {
                if pending {
                    return Err(orphan(self));
                }
                let second = self.offset;
                if !self.block(&mut block)? {
                    self.end = Some(End::LoneZeroBlock);
                    return Ok(false);
                }
                if block.iter().all(|&b| b == 0) {
                    self.end = Some(End::Marker);
                    return Ok(false);
                }
                return Err(self.malformed(second, format!("a zero block (at byte {at}) is followed by a non-zero one: readers that stop at the zero block see a different archive from readers that skip it")));
            }
            let Some(format) = header::format(&block) else {
                return Err(self.malformed(at, format!("the block at byte {at} is not a valid tar header (bad checksum): the stream is corrupt, or not a tar")));
            };
            let mut fields = header::parse(&block, format).map_err(|field| {
                self.malformed(
                    at,
                    format!("the tar header at byte {at} has an invalid {field} field"),
                )
            })?;
            let typeflag = fields.header.typeflag;
            if matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
                let data = self.meta(fields.size, typeflag, at)?;
                match typeflag {
                    b'L' => long_name = Some(header::c_string(&data).to_vec()),
                    b'K' => long_link = Some(header::c_string(&data).to_vec()),
                    _ => {
                        let parsed = header::parse_pax(&data, self.limits.max_pax_records)
                            .map_err(|e| {
                                self.malformed(
                                    at,
                                    format!("the PAX header at byte {at} is malformed: {e}"),
                                )
                            })?;
                        if typeflag == b'x' {
                            pax = Some(parsed);
                        } else {
                            // Go returns a global header as an entry of its own, which drops
                            // the extended headers read before it; it applies to nothing. GNU
                            // tar and Python apply it: where that changes an entry, refuse.
                            let mut why = Vec::new();
                            let keys = header::applied_globally(&parsed);
                            if !keys.is_empty() {
                                why.push(format!("the PAX global header at byte {at} sets {}, which GNU tar and Python's tarfile apply to every later entry and Go's archive/tar to none", keys.join(", ")));
                            }
                            if pending {
                                why.push(format!("the extended header at byte {first} comes right before the PAX global header at byte {at}: Go's archive/tar drops it, other readers apply it to the global header or to the next entry"));
                            }
                            if !why.is_empty() {
                                let message = format!(
                                    "{}, so tar readers read different archives",
                                    why.join("; and ")
                                );
                                if !self.report_differentials {
                                    return Err(self.malformed(at, message));
                                }
                                differential = Some(match differential.take() {
                                    Some(before) => format!("{before}; {message}"),
                                    None => message,
                                });
                            }
                            pax = None;
                            long_name = None;
                            long_link = None;
                            first = self.offset;
                        }
                    }
                }
                continue;
            }

            // An entry: apply the extension headers in Go's order.
            let pax = pax.take().unwrap_or_default();
            header::merge_pax(&mut fields, &pax).map_err(|record| {
                self.malformed(
                    at,
                    format!(
                        "the PAX header of the entry at byte {at} has an invalid {record} record"
                    ),
                )
            })?;
            let mut header = fields.header;
            if let Some(name) = long_name.take().filter(|n| !n.is_empty()) {
                header.path = name;
            }
            if let Some(link) = long_link.take().filter(|l| !l.is_empty()) {
                header.link = link;
            }
            let mut kind = Kind::of(typeflag);
            if typeflag == 0 && header.path.ends_with(b"/") {
                kind = Kind::Directory; // legacy archives mark directories with a slash
            }
            let mut sparse = false;
            if let Some(name) = header::pax_sparse(&pax) {
                sparse = true;
                if let Some(name) = name {
                    header.path = name.to_vec();
                }
                for value in [&pax.sparse_size, &pax.sparse_realsize] {
                    if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                        header::parse_decimal(v).ok_or_else(|| {
                            self.malformed(at, format!("the PAX header of the entry at byte {at} has an invalid sparse size"))
                        })?;
                        break;
                    }
                }
            }
            if typeflag == b'S' {
                if format != Format::Gnu {
                    return Err(self.malformed(at, format!("the entry at byte {at} is a GNU sparse file in a header that is not GNU format")));
                }
                sparse = true;
                // Old GNU sparse: extension blocks of the sparse map follow the header.
                let mut extended = block[482] != 0;
                while extended {
                    if !self.block(&mut block)? {
                        return Err(self.malformed(
                            self.offset,
                            format!(
                                "the tar stream is truncated inside the sparse map of {}",
                                header.shown()
                            ),
                        ));
                    }
                    extended = block[504] != 0;
                }
            }
            let (size, ignored_size) = if kind.is_header_only() {
                (0, u64::try_from(fields.size).unwrap_or(0))
            } else {
                let size = u64::try_from(fields.size).map_err(|_| {
                    self.malformed(
                        at,
                        format!(
                            "the entry {} at byte {at} has a negative size",
                            header.shown()
                        ),
                    )
                })?;
                (size, 0)
            };
            header.kind = kind;
            header.sparse = sparse;
            header.size = size;
            header.ignored_size = ignored_size;
            header.offset = first;
            header.data_offset = self.offset;
            header.differential = differential;
            self.header = header;
            self.remaining = size;
            self.padding = padding(size);
            return Ok(true);
        }
    }

    /// Reads one block: `false` at a clean end of the stream (not one byte of it).
    fn block(&mut self, block: &mut Block) -> Result<bool, TarError> {
        let at = self.offset;
        let mut filled = 0;
        while filled < BLOCK {
            let buf = match self.input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if buf.is_empty() {
                break;
            }
            let n = buf.len().min(BLOCK - filled);
            block[filled..filled + n].copy_from_slice(&buf[..n]);
            self.input.consume(n);
            filled += n;
        }
        self.offset += filled as u64;
        match filled {
            0 => Ok(false),
            BLOCK => Ok(true),
            n => Err(self.malformed(
                at,
                format!("the tar stream is truncated: it ends {n} bytes into a header block (at byte {at})"),
            )),
        }
    }

    fn skip(&mut self, n: u64) -> Result<u64, TarError> {
        let skipped = self.input.skip(n)?;
        self.offset += skipped;
        Ok(skipped)
    }

    /// Reads the data of an extension header (at most `max_meta_size` bytes) and its padding.
    fn meta(&mut self, size: i64, typeflag: u8, at: u64) -> Result<Vec<u8>, TarError> {
        let what = match typeflag {
            b'L' => "GNU long-name",
            b'K' => "GNU long-link",
            b'g' => "PAX global",
            _ => "PAX",
        };
        let max = self.limits.max_meta_size;
        let size = u64::try_from(size).map_err(|_| {
            self.malformed(
                at,
                format!("the {what} header at byte {at} has a negative size"),
            )
        })?;
        if size > max {
            return Err(self.malformed(at, format!("a {what} header of {size} bytes (at byte {at}) is larger than the {max} bytes ocikit and Go's archive/tar accept")));
        }
        let mut data = Vec::with_capacity(size as usize);
        let truncated = |this: &Self| {
            this.malformed(
                this.offset,
                format!("the tar stream is truncated inside a {what} header (at byte {at})"),
            )
        };
        while (data.len() as u64) < size {
            let buf = match self.input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if buf.is_empty() {
                return Err(truncated(self));
            }
            let k = buf.len().min((size - data.len() as u64) as usize);
            data.extend_from_slice(&buf[..k]);
            self.input.consume(k);
            self.offset += k as u64;
        }
        let pad = padding(size);
        if self.skip(pad)? < pad {
            return Err(truncated(self));
        }
        Ok(data)
    }
}

impl<R> Entry<'_, R> {
    /// The entry's header.
    pub fn header(&self) -> &Header {
        &self.reader.header
    }

    /// Data bytes not read yet.
    pub fn remaining(&self) -> u64 {
        self.reader.remaining
    }
}

impl<R: Input> Entry<'_, R> {
    fn truncated(&self) -> io::Error {
        let header = &self.reader.header;
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the tar stream is truncated inside the data of {} ({} of {} bytes present)",
                header.shown(),
                header.size - self.reader.remaining,
                header.size
            ),
        )
    }
}

impl<R: Input> BufRead for Entry<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.reader.remaining == 0 {
            return Ok(&[]);
        }
        if self.reader.header.sparse {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} is a sparse file, whose data ocikit does not expand",
                    self.reader.header.shown()
                ),
            ));
        }
        let remaining = self.reader.remaining;
        let empty = self.reader.input.fill_buf()?.is_empty();
        if empty {
            return Err(self.truncated());
        }
        let buf = self.reader.input.fill_buf()?;
        let n = (buf.len() as u64).min(remaining) as usize;
        Ok(&buf[..n])
    }

    fn consume(&mut self, amount: usize) {
        let amount = (amount as u64).min(self.reader.remaining);
        self.reader.input.consume(amount as usize);
        self.reader.remaining -= amount;
        self.reader.offset += amount;
    }
}

impl<R: Input> Read for Entry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// What follows a tar's end-of-archive marker ([`trailer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Its length in bytes.
    pub len: u64,
    /// Offset (from the end of the marker) of the first non-zero byte: data there is entries
    /// to a reader that reads on past zero blocks (`tar -i`), nothing to one that stops.
    pub first_nonzero: Option<u64>,
}

/// Reads a stream (the input after a [`Reader`]'s end-of-archive marker) to its end, noting
/// where non-zero bytes start.
pub fn trailer<R: BufRead + ?Sized>(reader: &mut R) -> io::Result<Trailer> {
    let mut trailer = Trailer {
        len: 0,
        first_nonzero: None,
    };
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
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

/// The zero bytes after `size` bytes of data up to the next block boundary.
pub fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testkit::{gnu_sparse, header, pax_records, set_checksum, Tar};

    type Entries = (Vec<(Header, Vec<u8>)>, End);

    /// Every entry of `tar`: (header, data), and how it ended; or the error.
    fn read_all(tar: &[u8]) -> Result<Entries, TarError> {
        let mut reader = Reader::new(tar);
        let mut entries = Vec::new();
        while let Some(mut entry) = reader.next_entry()? {
            let header = entry.header().clone();
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            entries.push((header, data));
        }
        Ok((entries, reader.end().cloned().expect("an end")))
    }

    fn names(tar: &[u8]) -> Vec<String> {
        read_all(tar)
            .unwrap()
            .0
            .iter()
            .map(|(h, _)| h.shown())
            .collect()
    }

    fn error(tar: &[u8]) -> String {
        match read_all(tar) {
            Err(e) => e.to_string(),
            Ok(read) => panic!("read without an error: {:?}", read.1),
        }
    }

    #[test]
    fn extension_headers_apply_in_gos_order() {
        let long = "l".repeat(150);
        let gnu_long_name = |name: &str| {
            let data = format!("{name}\0");
            Tar::default().raw(
                header(b"././@LongLink", b'L', data.len() as u64, b""),
                data.as_bytes(),
            )
        };
        // A GNU long name wins over a PAX path, which wins over the header's name.
        let tar = Tar(gnu_long_name(&long).0)
            .pax(&[("path", "from-pax")])
            .file("header", b"x")
            .pax(&[("path", "from-pax")])
            .file("header", b"y")
            .pax(&[("path", "")])
            .file("kept", b"z")
            .end();
        assert_eq!(names(&tar), [long.as_str(), "from-pax", "kept"]);
        // A second extended header replaces the first; a global header that changes nothing
        // (`git archive` writes one with a comment) applies to nothing.
        let tar = Tar::default()
            .pax(&[("path", "first"), ("linkpath", "t")])
            .pax(&[("path", "second")])
            .node("n", b'2', "header-target")
            .global(&[("comment", "0123abcd"), ("mtime", "1"), ("vendor.key", "v")])
            .raw(header(b"g", b'g', 0, b""), b"")
            .file("plain", b"")
            .end();
        let (entries, end) = read_all(&tar).unwrap();
        assert_eq!(end, End::Marker);
        assert_eq!(entries[0].0.shown(), "second");
        assert_eq!(entries[0].0.link, b"header-target");
        assert_eq!(entries[1].0.shown(), "plain");
        // PAX size, uid and mtime are applied; extended attributes kept.
        let tar = Tar::default()
            .pax(&[
                ("size", "3"),
                ("uid", "1000"),
                ("mtime", "12.5"),
                ("SCHILY.xattr.user.a", "b"),
            ])
            .raw(header(b"f", b'0', 0, b""), b"abc")
            .end();
        let (entries, _) = read_all(&tar).unwrap();
        let (h, data) = &entries[0];
        assert_eq!((data.as_slice(), h.uid, h.mtime), (&b"abc"[..], 1000, 12));
        assert_eq!(h.xattrs, vec![(b"user.a".to_vec(), b"b".to_vec())]);
    }

    #[test]
    fn a_global_header_that_gnu_tar_applies_is_a_differential() {
        // Each record GNU tar and Python apply to later entries is refused, naming the offset.
        for (key, value) in [
            ("path", "zzz"),
            ("linkpath", "t"),
            ("size", "0"),
            ("uid", "0"),
            ("gid", "0"),
            ("uname", "root"),
            ("gname", "root"),
            ("GNU.sparse.name", "zzz"),
            ("GNU.sparse.major", "1"),
            ("SCHILY.xattr.security.capability", "x"),
        ] {
            let tar = Tar::default()
                .file("a", b"a")
                .global(&[("comment", "c"), (key, value)])
                .file("b", b"b")
                .end();
            let message = error(&tar);
            assert!(
                message.contains("the PAX global header at byte 1024 sets")
                    && message.contains("so tar readers read different archives"),
                "{key}: {message}"
            );
            let shown = if key.starts_with("GNU.sparse") {
                "GNU.sparse.*"
            } else if key.starts_with("SCHILY") {
                "SCHILY.xattr.*"
            } else {
                key
            };
            assert!(message.contains(&format!("sets {shown},")), "{message}");
            match read_all_reporting(&tar) {
                Ok(entries) => {
                    assert_eq!(entries[0].differential, None);
                    let noted = entries[1].differential.as_deref().unwrap_or_default();
                    assert!(noted.contains("at byte 1024"), "{noted}");
                }
                Err(e) => panic!("{key}: reported, not refused: {e}"),
            }
        }
        // An extended header pending when a global header comes: readers disagree where it
        // goes, whatever the global header says.
        let tar = Tar::default()
            .pax(&[("path", "where")])
            .global(&[("comment", "c")])
            .file("b", b"b")
            .end();
        let message = error(&tar);
        assert!(
            message.contains("the extended header at byte 0 comes right before the PAX global header at byte 1024"),
            "{message}"
        );
        // Only a comment, other harmless records, or nothing: read as Go reads it.
        let tar = Tar::default()
            .global(&[("comment", "4b825dc642cb6eb9a060e54bf8d69288fbee4904")])
            .file("a", b"a")
            .global(&[
                ("mtime", "1"),
                ("atime", "2"),
                ("charset", "x"),
                ("org.example", "y"),
            ])
            .raw(header(b"g", b'g', 0, b""), b"")
            .file("b", b"b")
            .end();
        assert_eq!(names(&tar), ["a", "b"]);
        let entries = read_all_reporting(&tar).unwrap();
        assert!(entries.iter().all(|h| h.differential.is_none()));
    }

    /// The headers of `tar`, read by a reader that reports differentials.
    fn read_all_reporting(tar: &[u8]) -> Result<Vec<Header>, TarError> {
        let mut reader = Reader::new(tar).report_differentials();
        let mut headers = Vec::new();
        while let Some(entry) = reader.next_entry()? {
            headers.push(entry.header().clone());
        }
        Ok(headers)
    }

    #[test]
    fn types_and_formats_follow_go() {
        // `\0` with a trailing slash is a directory; links carry no data whatever their size.
        let tar = Tar::default()
            .raw(header(b"old-dir/", 0, 0, b""), b"")
            .raw(header(b"old-file", 0, 1, b""), b"x")
            .raw(header(b"link", b'2', 512, b"t"), b"")
            .file("after", b"still in step")
            .end();
        let (entries, _) = read_all(&tar).unwrap();
        let kinds: Vec<Kind> = entries.iter().map(|(h, _)| h.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Directory, Kind::Regular, Kind::Symlink, Kind::Regular]
        );
        assert_eq!((entries[2].0.size, entries[2].0.ignored_size), (0, 512));
        assert_eq!(entries[3].1, b"still in step");

        // The ustar prefix is joined for ustar headers only; a GNU header keeps times there,
        // unless they do not parse (Go reads a prefix then, for its own pre-1.8 output).
        let mut ustar = header(b"name", b'0', 0, b"");
        ustar[345..351].copy_from_slice(b"prefix");
        set_checksum(&mut ustar);
        let mut gnu = ustar;
        gnu[257..265].copy_from_slice(b"ustar  \0");
        set_checksum(&mut gnu);
        let mut gnu_times = gnu;
        gnu_times[345..357].copy_from_slice(b"00000000001\0");
        set_checksum(&mut gnu_times);
        let tar = Tar::default()
            .raw(ustar, b"")
            .raw(gnu, b"")
            .raw(gnu_times, b"")
            .end();
        assert_eq!(names(&tar), ["prefix/name", "prefix/name", "name"]);

        // A signed checksum (old tars) is accepted; a base-256 size is read.
        let mut signed = header(b"\xe9t\xe9", b'0', 0, b"");
        signed[148..156].fill(b' ');
        let sum: i64 = signed.iter().map(|&b| i64::from(b as i8)).sum();
        signed[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut big = header(b"big", b'0', 0, b"");
        big[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        set_checksum(&mut big);
        let tar = Tar::default().raw(signed, b"").raw(big, b"hi").end();
        let (entries, _) = read_all(&tar).unwrap();
        assert_eq!(entries[1].1, b"hi");
    }

    #[test]
    fn invalid_headers_are_errors_naming_what_is_wrong() {
        let with = |at: std::ops::Range<usize>, value: &[u8]| {
            let mut h = header(b"f", b'0', 0, b"");
            h[at].copy_from_slice(value);
            set_checksum(&mut h);
            Tar::default().raw(h, b"").end()
        };
        for (tar, expected) in [
            (with(100..108, b"0000649\0"), "invalid mode field"),
            (with(108..116, b"12 34\0\0\0"), "invalid uid field"),
            (with(136..148, b"mtime-here!\0"), "invalid mtime field"),
            (with(329..337, b"zz\0\0\0\0\0\0"), "invalid devmajor field"),
            (with(124..136, &[0xff; 12]), "negative size"),
            (
                Tar::default().pax(&[("size", "x")]).file("f", b"").end(),
                "invalid size record",
            ),
            (
                Tar::default().pax(&[("mtime", ".5")]).file("f", b"").end(),
                "invalid mtime record",
            ),
            (
                {
                    let mut t = Tar::default().file("f", b"").0;
                    t.extend([0u8; 512]);
                    t.extend(header(b"g", b'0', 0, b""));
                    t
                },
                "followed by a non-zero one",
            ),
            (
                {
                    let mut t = Tar::default().pax(&[("path", "p")]).0;
                    t.extend([0u8; 1024]);
                    t
                },
                "describes no entry",
            ),
            (
                {
                    let mut h = gnu_sparse("s", &[(0, 1)], 1);
                    h[257..265].copy_from_slice(b"ustar\x0000");
                    let mut block: [u8; 512] = h[..512].try_into().unwrap();
                    set_checksum(&mut block);
                    h[..512].copy_from_slice(&block);
                    h
                },
                "not GNU format",
            ),
        ] {
            let message = error(&tar);
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn extension_headers_are_capped_before_anything_is_allocated() {
        // 1 GiB claimed, 1 block present: refused from the size field alone.
        let mut tar = header(b"././@LongLink", b'L', 1 << 30, b"").to_vec();
        tar.extend([b'a'; 512]);
        assert!(error(&tar).contains("larger than the 1048576 bytes"));
        let records: Vec<(String, String)> = (0..20)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let records: Vec<(&str, &str)> = records
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let data = pax_records(&records);
        let tar = Tar::default()
            .raw(header(b"p", b'x', data.len() as u64, b""), &data)
            .file("f", b"")
            .end();
        let limits = Limits {
            max_pax_records: 10,
            ..Limits::default()
        };
        let mut reader = Reader::with_limits(&tar[..], limits);
        let message = reader.next_entry().err().unwrap().to_string();
        assert!(message.contains("more than 10 records"), "{message}");
        // Exactly 1 MiB is accepted, as Go accepts it.
        let name = "n".repeat(MAX_META_SIZE as usize);
        let tar = Tar::default()
            .raw(
                header(b"././@LongLink", b'L', MAX_META_SIZE, b""),
                name.as_bytes(),
            )
            .file("short", b"")
            .end();
        let (entries, _) = read_all(&tar).unwrap();
        assert!(entries.len() == 1 && entries[0].0.path == name.as_bytes());
    }

    #[test]
    fn how_a_stream_ends_is_told_apart() {
        let entries = Tar::default().file("a", &[b'a'; 100]).0;
        let ending = |bytes: &[u8]| read_all(bytes).unwrap().1;
        assert_eq!(ending(&[]), End::Unmarked);
        assert_eq!(ending(&entries), End::Unmarked);
        let mut one = entries.clone();
        one.extend([0u8; 512]);
        assert_eq!(ending(&one), End::LoneZeroBlock);
        let mut two = one.clone();
        two.extend([0u8; 512]);
        assert_eq!(ending(&two), End::Marker);
        let cut = &entries[..entries.len() - 12];
        let end = ending(cut);
        assert_eq!(
            end,
            End::InPadding {
                entry: "a".into(),
                size: 100,
                missing: 12
            }
        );
        assert!(end
            .missing()
            .unwrap()
            .contains("all 100 bytes of its data are present"));
        // Inside the data, and inside a header, it is an error.
        assert!(
            error(&entries[..512 + 50]).contains("inside the data of a (50 of 100 bytes present)")
        );
        assert!(error(&entries[..100]).contains("ends 100 bytes into a header block"));
    }

    #[test]
    fn entry_data_is_a_bounded_stream_and_sparse_data_is_not_expanded() {
        let tar = Tar(gnu_sparse("sparse", &[(0, 512), (8192, 512)], 1 << 30))
            .file("after", b"data")
            .end();
        let mut reader = Reader::new(&tar[..]);
        let mut entry = reader.next_entry().unwrap().unwrap();
        assert!(entry.header().sparse);
        assert!(entry.read(&mut [0u8; 16]).is_err());
        let mut entry = reader.next_entry().unwrap().unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        assert_eq!(data, b"data");
        assert_eq!(entry.remaining(), 0);
        // Data left unread is skipped; the reader stays in step.
        let tar = Tar::default()
            .file("big", &[7u8; 5000])
            .file("next", b"n")
            .end();
        let mut reader = Reader::new(&tar[..]);
        let mut entry = reader.next_entry().unwrap().unwrap();
        let mut first = [0u8; 10];
        entry.read_exact(&mut first).unwrap();
        assert_eq!(entry.remaining(), 4990);
        let entry = reader.next_entry().unwrap().unwrap();
        assert_eq!(entry.header().shown(), "next");
        assert_eq!(entry.header().data_offset, 512 + 5120 + 512);
    }

    #[test]
    fn an_error_is_sticky() {
        let mut tar = Tar::default().file("a", b"").0;
        tar.extend([1u8; 512]);
        let mut reader = Reader::new(&tar[..]);
        assert!(reader.next_entry().unwrap().is_some());
        assert!(reader.next_entry().is_err());
        assert!(reader.next_entry().is_err());
    }
}
