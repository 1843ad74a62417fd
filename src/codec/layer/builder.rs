//! Reproducible layer tars, built from a list of entries and compressed.
//!
//! The tar depends only on the entries and the modification time given: entries are sorted by
//! path (bytewise), owners are the entry's uid/gid (0 unless given) with empty user and group
//! names (names differ between machines), mtimes are clamped to the caller's (0, or
//! `SOURCE_DATE_EPOCH`; an entry without a time of its own gets it), headers are ustar, and
//! what ustar cannot hold goes in a PAX extended header: a long path or link target (`path`,
//! `linkpath`), a uid, gid, size or mtime too large for its field (`uid`, `gid`, `size`,
//! `mtime`; the header then carries it in base-256 too), and extended attributes
//! (`SCHILY.xattr.NAME`, sorted by name). Directories are written with a trailing `/`, as
//! `tar`, Docker and BuildKit do. A hard link names an entry written before it.
//!
//! [`mod@super::scan`] makes the entries of a directory on disk.
//!
//! [`encode_layer`] streams the tar through the compressor into any writer (a blob being
//! stored, say) while hashing the tar (the diff_id): one pass, bounded memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::compress::{CompressOptions, CompressWriter};
use crate::error::{Error, IoContext, Result};
use crate::progress::{NoProgress, Progress};
use crate::spec::digest::{Algorithm, Digest, HashingWriter};
use crate::spec::document::media_type::Compression;

/// Longest name (and link target) a ustar header holds without a PAX record.
const USTAR_NAME_MAX: usize = 100;
/// The name of PAX extended headers (as GNU tar names its long-name entries).
const PAX_HEADER_NAME: &[u8] = b"././@PaxHeader";

/// The largest value a ustar uid or gid field holds in octal (7 digits).
const USTAR_ID_MAX: u64 = 0o7_777_777;
/// The largest value a ustar size or mtime field holds in octal (11 digits).
const USTAR_NUMBER_MAX: u64 = 0o77_777_777_777;

/// One entry of a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    path: String,
    mode: u32,
    kind: EntryKind,
    /// uid and gid; `None` is root (0, 0).
    owner: Option<(u64, u64)>,
    /// Its own modification time (clamped when written); `None` takes the layer's.
    mtime: Option<u64>,
    /// Extended attributes, name and value.
    xattrs: Vec<(String, Vec<u8>)>,
}

/// What an [`Entry`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File(Content),
    /// A symbolic link to the target, stored exactly as given.
    Symlink(String),
    /// A hard link to another entry of the layer (a regular file that sorts before it).
    HardLink(String),
    /// A character device.
    CharDevice {
        major: u32,
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        major: u32,
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// The content of a regular file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Bytes held in memory.
    Bytes(Vec<u8>),
    /// A file on disk, streamed when the tar is written. Its length is taken when it is opened;
    /// a file that shrinks while it is read is an error, bytes appended meanwhile are ignored.
    Path(PathBuf),
}

impl Entry {
    /// An entry of `kind` with permission bits `mode`, owned by root, with the layer's mtime.
    pub fn new(path: impl Into<String>, mode: u32, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            mode: mode & 0o7777,
            kind,
            owner: None,
            mtime: None,
            xattrs: Vec::new(),
        }
    }

    /// A directory, mode 0755. `path` is inside the layer: `/etc`, `etc` and `./etc/` are the
    /// same entry.
    pub fn dir(path: impl Into<String>) -> Entry {
        Entry::new(path, 0o755, EntryKind::Directory)
    }

    /// A regular file with the given bytes, mode 0644.
    pub fn file(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Entry {
        Entry::new(path, 0o644, EntryKind::File(Content::Bytes(content.into())))
    }

    /// A regular file whose bytes are read from `source` when the tar is written, mode 0644.
    pub fn file_from(path: impl Into<String>, source: impl Into<PathBuf>) -> Entry {
        Entry::new(path, 0o644, EntryKind::File(Content::Path(source.into())))
    }

    /// A symbolic link to `target`, mode 0777.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry::new(path, 0o777, EntryKind::Symlink(target.into()))
    }

    /// A hard link to the entry `target` (a regular file of the same layer sorting before it).
    pub fn hard_link(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry::new(path, 0o644, EntryKind::HardLink(target.into()))
    }

    /// The same entry owned by `uid` and `gid`.
    pub fn with_owner(self, uid: u64, gid: u64) -> Entry {
        Entry {
            owner: Some((uid, gid)),
            ..self
        }
    }

    /// The same entry with modification time `mtime` (seconds since the epoch), clamped to
    /// the layer's when written.
    pub fn with_mtime(self, mtime: u64) -> Entry {
        Entry {
            mtime: Some(mtime),
            ..self
        }
    }

    /// The same entry with extended attributes `xattrs` (written sorted by name).
    pub fn with_xattrs(self, xattrs: Vec<(String, Vec<u8>)>) -> Entry {
        Entry { xattrs, ..self }
    }

    /// The same entry with permission bits `mode` (masked to 0o7777).
    pub fn with_mode(self, mode: u32) -> Entry {
        Entry {
            mode: mode & 0o7777,
            ..self
        }
    }

    /// The path as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// What the entry is.
    pub fn kind(&self) -> &EntryKind {
        &self.kind
    }
}

/// How to build a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerOptions {
    /// Compression of the stored blob.
    pub compress: CompressOptions,
    /// The latest modification time an entry may have, in seconds since the epoch: the time
    /// of entries without one of their own, and the clamp of those with one.
    pub mtime: u64,
}

impl LayerOptions {
    /// `compression` at its default level, mtime 0.
    pub fn new(compression: Compression) -> LayerOptions {
        LayerOptions {
            compress: CompressOptions::new(compression),
            mtime: 0,
        }
    }

    /// The same options with mtime `mtime`.
    pub fn with_mtime(self, mtime: u64) -> LayerOptions {
        LayerOptions { mtime, ..self }
    }
}

/// Writes the reproducible tar of `entries` to `out` and returns `out`; `mtime` is the latest
/// modification time an entry may have ([`LayerOptions::mtime`]).
///
/// Every path is checked before anything is written: an empty path, a `..` component, a NUL
/// byte, two entries with the same path or a hard link to anything but a regular file
/// written before it are errors.
pub fn write_tar<W: Write>(entries: &[Entry], mtime: u64, out: W) -> Result<W> {
    let sorted = prepare(entries)?;
    write_sorted(
        &sorted,
        mtime,
        out,
        Path::new("the tar output"),
        &NoProgress,
    )
}

/// Writes the reproducible tar of `entries`, compressed as `options` say, to `out`; returns
/// `out` and the digest of the uncompressed tar (the layer's diff_id). One pass: the tar is
/// hashed on its way into the compressor.
pub fn encode_layer<W: Write>(
    entries: &[Entry],
    options: &LayerOptions,
    out: W,
) -> Result<(W, Digest)> {
    encode_layer_with(entries, options, out, &NoProgress)
}

/// [`encode_layer`], telling `progress` how many bytes of files on disk were read.
pub fn encode_layer_with<W: Write>(
    entries: &[Entry],
    options: &LayerOptions,
    out: W,
    progress: &dyn Progress,
) -> Result<(W, Digest)> {
    let sorted = prepare(entries)?;
    let tar = LayerSink::new(out, &options.compress)?;
    let tar = write_sorted(
        &sorted,
        options.mtime,
        tar,
        Path::new("the layer"),
        progress,
    )?;
    tar.finish()
}

/// Where a layer's tar goes on its way to the blob: hashed (the diff_id), then compressed into
/// `W`, in one pass.
pub struct LayerSink<W: Write> {
    inner: HashingWriter<CompressWriter<W>>,
}

impl<W: Write> LayerSink<W> {
    /// A tar stream into `out`, compressed as `options` say.
    pub fn new(out: W, options: &CompressOptions) -> Result<LayerSink<W>> {
        let compressed = CompressWriter::new(out, options)?;
        Ok(LayerSink {
            inner: HashingWriter::new(compressed, Algorithm::Sha256),
        })
    }

    /// Ends the compressed stream; returns the writer underneath and the tar's digest.
    pub fn finish(self) -> Result<(W, Digest)> {
        let (diff_id, _, compressed) = self.inner.finish();
        let out = compressed
            .finish()
            .map_err(|e| Error::io("cannot write", "the compressed layer", e))?;
        Ok((out, diff_id))
    }
}

impl<W: Write> Write for LayerSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An entry with its normalized tar name (and its link target's, for a hard link).
struct Prepared<'a> {
    name: String,
    link: Option<String>,
    entry: &'a Entry,
}

/// Normalizes and checks every path, sorts, and refuses duplicates and hard links that do not
/// name a regular file written before them.
fn prepare(entries: &[Entry]) -> Result<Vec<Prepared<'_>>> {
    let bad = |entry: &Entry, reason: &str| Error::InvalidInput {
        what: format!("layer entry {:?}:", entry.path),
        reason: reason.to_string(),
    };
    let mut sorted = entries
        .iter()
        .map(|entry| {
            let name = normalize(&entry.path)?;
            let link = match &entry.kind {
                EntryKind::Symlink(target) if target.is_empty() || target.contains('\0') => {
                    return Err(bad(
                        entry,
                        "a symlink target must be non-empty and without NUL bytes",
                    ))
                }
                EntryKind::HardLink(target) => Some(normalize(target)?),
                _ => None,
            };
            if let Some((key, _)) = entry
                .xattrs
                .iter()
                .find(|(key, _)| key.is_empty() || key.contains(['\0', '=']))
            {
                return Err(bad(
                    entry,
                    &format!("the extended attribute name {key:?} cannot be stored in a tar"),
                ));
            }
            Ok(Prepared { name, link, entry })
        })
        .collect::<Result<Vec<_>>>()?;
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = sorted.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::Conflict {
            what: format!(
                "layer entries {:?} and {:?}",
                pair[0].entry.path, pair[1].entry.path
            ),
            reason: format!("are the same path {:?}", pair[0].name),
        });
    }
    for p in &sorted {
        let Some(target) = &p.link else { continue };
        let found = sorted
            .binary_search_by(|q| q.name.as_str().cmp(target))
            .ok()
            .map(|i| &sorted[i]);
        match found {
            Some(t) if t.name < p.name && matches!(t.entry.kind, EntryKind::File(_)) => {}
            _ => {
                return Err(bad(
                    p.entry,
                    &format!(
                        "a hard link must name a regular file of the layer that sorts before it, and {target:?} is not one"
                    ),
                ))
            }
        }
    }
    Ok(sorted)
}

/// `/a//b/./c/` → `a/b/c` (the one tar-name normaliser); refuses `..`, NUL and paths naming
/// the root.
fn normalize(path: &str) -> Result<String> {
    let bad = |reason: &str| Error::InvalidInput {
        what: format!("layer entry {path:?}:"),
        reason: reason.to_string(),
    };
    let normalized = crate::codec::tar::path::normalize(path.as_bytes());
    if normalized.nul {
        return Err(bad("a path cannot contain a NUL byte"));
    }
    if normalized.dotdot {
        return Err(bad("a path cannot contain '..'"));
    }
    match normalized.as_str() {
        Some("") | None => Err(bad("a path must name something below the root")),
        Some(clean) => Ok(clean.to_string()),
    }
}

fn write_sorted<W: Write>(
    entries: &[Prepared<'_>],
    mtime: u64,
    out: W,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<W> {
    let sink = |e: io::Error| Error::io("cannot write the layer tar to", dest, e);
    let mut builder = tar::Builder::new(out);
    for p in entries {
        let entry = p.entry;
        let header = |kind: EntryType, size: u64| {
            let mtime = entry.mtime.map_or(mtime, |own| own.min(mtime));
            new_header(kind, entry, mtime, size)
        };
        let mut data: Box<dyn Read> = Box::new(io::empty());
        let mut source_reader = None;
        let (mut header, name, link) = match &entry.kind {
            EntryKind::Directory => (
                header(EntryType::Directory, 0),
                format!("{}/", p.name),
                None,
            ),
            EntryKind::Symlink(target) => (
                header(EntryType::Symlink, 0),
                p.name.clone(),
                Some(target.as_str()),
            ),
            EntryKind::HardLink(_) => (
                header(EntryType::Link, 0),
                p.name.clone(),
                p.link.as_deref(),
            ),
            EntryKind::Fifo => (header(EntryType::Fifo, 0), p.name.clone(), None),
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                let kind = match entry.kind {
                    EntryKind::CharDevice { .. } => EntryType::Char,
                    _ => EntryType::Block,
                };
                let mut h = header(kind, 0);
                h.set_device_major(*major)
                    .and_then(|()| h.set_device_minor(*minor))
                    .map_err(|e| Error::InvalidInput {
                        what: format!("layer entry {:?}:", entry.path),
                        reason: format!("its device numbers cannot be stored: {e}"),
                    })?;
                (h, p.name.clone(), None)
            }
            EntryKind::File(Content::Bytes(bytes)) => {
                data = Box::new(&bytes[..]);
                (
                    header(EntryType::Regular, bytes.len() as u64),
                    p.name.clone(),
                    None,
                )
            }
            EntryKind::File(Content::Path(source)) => {
                let file = open_source(entry, source)?;
                let len = file.metadata().ctx("cannot read", source)?.len();
                source_reader = Some(SourceReader {
                    file,
                    remaining: len,
                    failure: None,
                    progress,
                });
                (header(EntryType::Regular, len), p.name.clone(), None)
            }
        };
        let pax = extended_records(&mut header, entry, &name, link);
        let result = match &mut source_reader {
            Some(reader) => append(&mut builder, header, &pax, mtime, reader),
            None => append(&mut builder, header, &pax, mtime, &mut data),
        };
        if let Err(e) = result {
            let read_failure = source_reader.as_mut().and_then(|r| r.failure.take());
            return Err(match (read_failure, &entry.kind) {
                (Some(read_error), EntryKind::File(Content::Path(source))) => {
                    Error::io("cannot read", source, read_error)
                }
                _ => sink(e),
            });
        }
    }
    builder.into_inner().map_err(sink)
}

/// Opens the source of a file entry without following a symbolic link (the tree may change
/// while it is read: a file replaced by a link is not read through it), and only if it is a
/// regular file.
fn open_source(entry: &Entry, source: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(source);
    let not_file = || Error::InvalidInput {
        what: format!("layer entry {:?}:", entry.path),
        reason: format!("{} is not a regular file", source.display()),
    };
    let file = match file {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(not_file()),
        other => other.ctx("cannot open", source)?,
    };
    if !file.metadata().ctx("cannot read", source)?.is_file() {
        return Err(not_file());
    }
    Ok(file)
}

/// A ustar header with the given type, the entry's permissions and owner, `mtime` and `size`.
/// Values too large for their octal field are written in base-256 here and as PAX records by
/// [`extended_records`].
fn new_header(kind: EntryType, entry: &Entry, mtime: u64, size: u64) -> Header {
    // A new ustar header is all zeros but for its magic: empty user and group names, device
    // numbers 0.
    let (uid, gid) = entry.owner.unwrap_or((0, 0));
    let mut header = Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(entry.mode & 0o7777);
    header.set_uid(uid);
    header.set_gid(gid);
    header.set_mtime(mtime);
    header.set_size(size);
    header
}

/// Puts `name` (and `link`) in the header; returns the PAX records needed for what does not
/// fit: long names, values too large for ustar, extended attributes.
fn extended_records(header: &mut Header, entry: &Entry, name: &str, link: Option<&str>) -> Vec<u8> {
    let mut pax = Vec::new();
    if header.set_path(name).is_err() {
        // Too long for ustar's name and prefix fields: a PAX `path` record, and as much of the
        // name as fits in the header for readers that ignore PAX.
        pax_record(&mut pax, "path", name.as_bytes());
        if let Some(ustar) = header.as_ustar_mut() {
            ustar.prefix = [0; 155];
            ustar.name = [0; USTAR_NAME_MAX];
            let cut = truncate(name, USTAR_NAME_MAX);
            ustar.name[..cut.len()].copy_from_slice(cut.as_bytes());
        }
    }
    if let Some(target) = link {
        let stored = if target.len() <= USTAR_NAME_MAX {
            target
        } else {
            pax_record(&mut pax, "linkpath", target.as_bytes());
            truncate(target, USTAR_NAME_MAX)
        };
        // Fits by construction; the literal setter keeps the target's bytes as they are.
        let _ = header.set_link_name_literal(stored);
    }
    let (uid, gid) = entry.owner.unwrap_or((0, 0));
    let numbers = [
        ("gid", gid, USTAR_ID_MAX),
        ("mtime", header.mtime().unwrap_or(0), USTAR_NUMBER_MAX),
        ("size", header.entry_size().unwrap_or(0), USTAR_NUMBER_MAX),
        ("uid", uid, USTAR_ID_MAX),
    ];
    for (key, value, max) in numbers {
        if value > max {
            pax_record(&mut pax, key, value.to_string().as_bytes());
        }
    }
    let mut xattrs: Vec<&(String, Vec<u8>)> = entry.xattrs.iter().collect();
    xattrs.sort();
    for (key, value) in xattrs {
        pax_record(&mut pax, &format!("SCHILY.xattr.{key}"), value);
    }
    pax
}
/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends one PAX record: `"<length> <key>=<value>\n"`, the length counting itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Appends the PAX header (when there are records) and the entry.
fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    header: Header,
    pax: &[u8],
    mtime: u64,
    data: &mut dyn Read,
) -> io::Result<()> {
    let out = builder.get_mut();
    out.write_all(&start_blocks(header, pax, mtime))?;
    let written = io::copy(data, out)?;
    out.write_all(&[0; 512][..crate::codec::tar::padding(written) as usize])
}

/// The blocks that start an entry: the PAX extended header holding `pax` (when there are
/// records) with its padded data, then `header`, both checksummed. The entry's data and its
/// padding follow them.
fn start_blocks(mut header: Header, pax: &[u8], mtime: u64) -> Vec<u8> {
    let mut blocks = Vec::with_capacity(1024 + pax.len());
    if !pax.is_empty() {
        let mut pax_header = Header::new_ustar();
        pax_header.set_entry_type(EntryType::XHeader);
        pax_header.set_mode(0o644);
        pax_header.set_mtime(mtime);
        pax_header.set_size(pax.len() as u64);
        // Written raw: `set_path` would drop the `./` components. Readers ignore this name.
        if let Some(ustar) = pax_header.as_ustar_mut() {
            ustar.name[..PAX_HEADER_NAME.len()].copy_from_slice(PAX_HEADER_NAME);
        }
        pax_header.set_cksum();
        blocks.extend_from_slice(pax_header.as_bytes());
        blocks.extend_from_slice(pax);
        blocks.resize(
            blocks.len() + crate::codec::tar::padding(pax.len() as u64) as usize,
            0,
        );
    }
    header.set_cksum();
    blocks.extend_from_slice(header.as_bytes());
    blocks
}

/// The blocks that start one entry written as the layer tar writes its entries (owned by root,
/// `mtime`, ustar with a PAX record for a name or link that does not fit): for writers of
/// other reproducible tars (layout archives). `kind` is a directory (whose `name` ends in
/// `/`), a regular file of `size` bytes, or a symlink to `link`.
pub(crate) fn entry_start(
    kind: EntryType,
    name: &str,
    link: Option<&str>,
    mode: u32,
    mtime: u64,
    size: u64,
) -> Vec<u8> {
    let entry = Entry {
        path: name.to_string(),
        mode,
        kind: EntryKind::Directory, // not read: the header's type is `kind`
        owner: None,
        mtime: None,
        xattrs: Vec::new(),
    };
    let mut header = new_header(kind, &entry, mtime, size);
    let pax = extended_records(&mut header, &entry, name, link);
    start_blocks(header, &pax, mtime)
}

/// Reads at most `remaining` bytes of a source file, remembering why a read failed so the
/// error can name the source rather than the output.
struct SourceReader<'p> {
    file: File,
    remaining: u64,
    failure: Option<io::Error>,
    progress: &'p dyn Progress,
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.file.read(&mut buf[..want]) {
            Ok(0) => {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file became shorter while it was being read",
                );
                self.failure = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
            Ok(n) => {
                self.remaining -= n as u64;
                self.progress.advance(n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failure = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode::{decompress, Limits};
    use crate::codec::layer::sample_entries as sample;
    use crate::codec::tar::{Kind, Reader};

    struct Seen {
        path: String,
        kind: Kind,
        mode: i64,
        mtime: i64,
        link: Option<String>,
        content: Vec<u8>,
    }

    fn read_back(tar_bytes: &[u8]) -> Vec<Seen> {
        let mut reader = Reader::new(tar_bytes);
        let mut seen = Vec::new();
        while let Some(mut e) = reader.next_entry().unwrap() {
            let h = e.header().clone();
            assert_eq!((h.uid, h.gid), (0, 0));
            assert_eq!((&h.uname[..], &h.gname[..]), (&b""[..], &b""[..]));
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            seen.push(Seen {
                path: String::from_utf8(h.path).unwrap(),
                kind: h.kind,
                mode: h.mode,
                mtime: h.mtime,
                link: (!h.link.is_empty()).then(|| String::from_utf8(h.link).unwrap()),
                content,
            });
        }
        assert_eq!(reader.end(), Some(&crate::codec::tar::End::Marker));
        seen
    }

    #[test]
    fn sorted_owned_by_root_with_fixed_mtime() {
        let tar_bytes = write_tar(&sample(), 1_704_067_200, Vec::new()).unwrap();
        let seen = read_back(&tar_bytes);
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin/",
                "bin/tool",
                "etc/",
                "etc/motd",
                "etc/os-release",
                "hello.txt"
            ]
        );
        assert!(seen.iter().all(|s| s.mtime == 1_704_067_200));
        assert_eq!(seen[0].kind, Kind::Directory);
        assert_eq!(seen[0].mode, 0o755);
        assert_eq!(seen[1].mode, 0o755);
        assert_eq!(seen[1].content, vec![0u8; 1000]);
        assert_eq!(seen[3].kind, Kind::Symlink);
        assert_eq!(seen[3].link.as_deref(), Some("../hello.txt"));
        assert_eq!(seen[4].mode, 0o600);
        assert_eq!(seen[5].content, b"hello\n");
        assert_eq!(seen[5].mode, 0o644);
        // header blocks, data blocks, and the two zero blocks of the end
        assert_eq!(tar_bytes.len() % 512, 0);
        assert!(tar_bytes.ends_with(&[0u8; 1024]));
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(
            write_tar(&sample(), 0, Vec::new()).unwrap(),
            write_tar(&reversed, 0, Vec::new()).unwrap()
        );
    }

    #[test]
    fn long_paths_and_targets_use_pax() {
        let long_dir = "d".repeat(120);
        let long_name = format!("{long_dir}/{}", "f".repeat(150));
        let long_target = format!("/{}", "t".repeat(200));
        let entries = vec![
            Entry::dir(long_dir.clone()),
            Entry::file(long_name.clone(), "x"),
            Entry::symlink("link", long_target.clone()),
            // fits the ustar prefix + name split, no PAX needed
            Entry::file(format!("{long_dir}/short"), "y"),
        ];
        let tar_bytes = write_tar(&entries, 0, Vec::new()).unwrap();
        let seen = read_back(&tar_bytes);
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        let dir_name = format!("{long_dir}/");
        let short_name = format!("{long_dir}/short");
        assert_eq!(paths, [&dir_name, &long_name, &short_name, "link"]);
        assert_eq!(seen[3].link.as_deref(), Some(long_target.as_str()));
        assert_eq!(seen[1].content, b"x");
        let pax_headers = tar_bytes
            .chunks(512)
            .filter(|block| block.starts_with(b"././@PaxHeader"))
            .count();
        assert_eq!(
            pax_headers, 3,
            "the directory, the long file name and the long target"
        );
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for value_len in [
            0, 1, 5, 6, 7, 90, 95, 96, 97, 98, 99, 100, 994, 995, 996, 1000,
        ] {
            let value = "v".repeat(value_len);
            let mut out = Vec::new();
            pax_record(&mut out, "path", value.as_bytes());
            let text = String::from_utf8(out).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), text.len(), "{text}");
        }
    }

    #[test]
    fn rejects_bad_paths_and_duplicates() {
        for entries in [
            vec![Entry::file("", "x")],
            vec![Entry::dir("/")],
            vec![Entry::file("a/../b", "x")],
            vec![Entry::file("a\0b", "x")],
            vec![Entry::symlink("a", "")],
            vec![Entry::file("/a", "x"), Entry::dir("a/")],
            // hard links: to nothing, to a directory, to a file written after the link
            vec![Entry::hard_link("a", "missing")],
            vec![Entry::dir("d"), Entry::hard_link("l", "d")],
            vec![Entry::file("z", "x"), Entry::hard_link("a", "z")],
            vec![Entry::file("a", "x").with_xattrs(vec![("k=v".into(), vec![])])],
        ] {
            assert!(write_tar(&entries, 0, Vec::new()).is_err(), "{entries:?}");
        }
    }

    #[test]
    fn files_from_disk_are_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src.bin");
        std::fs::write(&source, b"from disk").unwrap();
        let entries = vec![Entry::file_from("data.bin", &source)];
        let seen = read_back(&write_tar(&entries, 0, Vec::new()).unwrap());
        assert_eq!(seen[0].content, b"from disk");

        let missing = vec![Entry::file_from("x", dir.path().join("missing"))];
        let err = write_tar(&missing, 0, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        let not_file = vec![Entry::file_from("x", dir.path())];
        assert!(write_tar(&not_file, 0, Vec::new()).is_err());
    }

    #[test]
    fn encode_layer_compresses_the_tar_and_reports_its_diff_id() {
        let tar_bytes = write_tar(&sample(), 7, Vec::new()).unwrap();
        let diff_id = Digest::sha256_of(&tar_bytes);
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let options = LayerOptions::new(compression).with_mtime(7);
            let (blob, got) = encode_layer(&sample(), &options, Vec::new()).unwrap();
            assert_eq!(got, diff_id, "{}", compression.name());
            let mut plain = Vec::new();
            decompress(&blob[..], compression, &Limits::default())
                .unwrap()
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, tar_bytes);
            // the same again gives the same blob
            assert_eq!(
                encode_layer(&sample(), &options, Vec::new()).unwrap().0,
                blob
            );
        }
    }
}
