//! Reading a layout tarball in place, without extracting it.
//!
//! [`Archive::open`] detects the compression from the file's first bytes (gzip `1f 8b`, zstd
//! `28 b5 2f fd`; anything else is read as a plain tar) and makes one pass over the tar
//! headers, building an index from each entry's normalized name to where its data lies.
//!
//! * **Plain tar**: the pass seeks from header to header, so it reads only the headers. A blob is
//!   then a positioned read (`pread`) of its byte range in the archive file: no copy, no temp
//!   file, and any number of threads can read at once because no file cursor is shared.
//! * **Compressed tar**: the pass decompresses the whole stream once and keeps small regular
//!   files in memory (each at most 1 MiB, 256 MiB in all; `oci-layout` and `index.json` up to
//!   16 MiB, budgeted apart). That covers `index.json`, manifests and configs, so `ls` and
//!   `inspect` need no temp file. The first read of a larger or uncached entry (a layer)
//!   decompresses the archive once more, into an anonymous temp file as large as the
//!   uncompressed tar; from then on, uncached entries are positioned reads of that file, as for
//!   a plain tar.
//!
//! Memory does not grow with blob size: large entries are streamed, never held.
//!
//! Names: a leading `./` is dropped, directories are ignored, and entries with absolute paths or
//! `..` components are not used. If `oci-layout` is not at the top, the one top-level directory
//! that contains an `oci-layout` is the layout's root (`tar czf x.tgz mylayout/`). Hard links and
//! relative symlinks resolve to the entry they name inside the archive (Docker 25+ `docker save`
//! archives use them); a link leading outside the archive, or to nothing, is an error naming the
//! entry when it is read, and is never followed on the host.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::error::{Error, Result};
use crate::spec::digest::Digest;
use crate::spec::document::{parse_document, Schema};
use crate::store::layout::{FileInfo, FileKind, LayoutRead, MAX_DOCUMENT_SIZE};

/// The largest entry a compressed archive's first pass keeps in memory.
const CACHE_ENTRY_LIMIT: u64 = 1024 * 1024;
/// The most a compressed archive's first pass keeps in memory, in all.
const CACHE_TOTAL_LIMIT: u64 = 256 * 1024 * 1024;
/// The most a compressed archive's first pass keeps of `oci-layout` and `index.json` files
/// (each up to [`MAX_DOCUMENT_SIZE`]), apart from other entries.
const DOCUMENTS_TOTAL_LIMIT: u64 = 4 * MAX_DOCUMENT_SIZE;
/// How many links are followed, one to the next, before giving up (a loop).
const MAX_LINK_HOPS: usize = 40;
/// The largest `oci-layout` file ocikit reads.
const OCI_LAYOUT_LIMIT: u64 = 64 * 1024;

/// How the archive's bytes are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// A regular file in the archive: where its data lies in the uncompressed tar stream, and, for a
/// compressed archive, its bytes when the first pass kept them.
#[derive(Debug)]
struct FileEntry {
    offset: u64,
    size: u64,
    cached: Option<Box<[u8]>>,
}

/// What the index knows about one name in the archive.
#[derive(Debug)]
enum Node {
    File(FileEntry),
    /// A hard link or symlink: the normalized archive path it leads to, or why it cannot be
    /// followed.
    Link(std::result::Result<String, String>),
    /// Something that is neither a file nor a link (a device, a FIFO, a sparse file).
    Other(&'static str),
    /// A directory entry (kept so that validation sees empty directories such as `blobs/`).
    Dir,
}

/// A layout archive opened for reading. It is `Send + Sync`: blobs may be read from several
/// threads at once (see the module documentation for how and at what cost).
pub struct Archive {
    path: PathBuf,
    /// The archive file, opened once; read only with positioned reads.
    file: File,
    compression: Compression,
    /// Every usable entry, by normalized path from the top of the archive.
    entries: HashMap<String, Node>,
    /// The layout's root inside the archive: `""` or `"dir/"`.
    root: String,
    /// Where the last entry's data ends in the uncompressed tar stream.
    tar_end: u64,
    /// The uncompressed tar, written on the first read of an uncached entry (compressed only).
    spool: OnceLock<File>,
    spool_lock: Mutex<()>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("path", &self.path)
            .field("compression", &self.compression)
            .field("entries", &self.entries.len())
            .field("root", &self.root)
            .field("spooled", &self.spool.get().is_some())
            .finish()
    }
}

impl Archive {
    /// Opens a layout archive, detecting its compression from its first bytes, and indexes its
    /// entries (see the module documentation).
    pub fn open(path: &Path) -> Result<Archive> {
        let archive = Archive::open_with(path, true)?;
        archive.check_oci_layout()?;
        Ok(archive)
    }

    /// Opens an archive without requiring a valid `oci-layout`, for `validate`, which reports a
    /// missing or wrong one as a finding. The archive must still be a readable tar.
    pub fn open_unchecked(path: &Path) -> Result<Archive> {
        Archive::open_with(path, false)
    }

    fn open_with(path: &Path, strict: bool) -> Result<Archive> {
        // Checked before opening: opening a FIFO would hang.
        let is_file = std::fs::metadata(path)
            .map_err(|e| Error::io("cannot open", path, e))?
            .is_file();
        if !is_file {
            return Err(archive_error(path, None, "it is not a regular file"));
        }
        let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io("cannot read", path, e))?;
        let len = meta.len();
        if len == 0 {
            return Err(archive_error(path, None, "it is empty, not a tar archive"));
        }
        let mut magic = [0u8; 6];
        let got =
            read_full_at(&file, &mut magic, 0).map_err(|e| Error::io("cannot read", path, e))?;
        let magic = &magic[..got];
        let compression = if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            return Err(unsupported_compression(path, "xz"));
        } else if magic.starts_with(b"BZh") {
            return Err(unsupported_compression(path, "bzip2"));
        } else {
            Compression::None
        };

        let scan = match compression {
            Compression::None => scan_plain(path, &file, len)?,
            Compression::Gzip | Compression::Zstd => {
                scan_compressed(path, &file, len, compression)?
            }
        };
        let root = match find_root(path, &scan.entries) {
            Ok(root) => root,
            // No oci-layout anywhere: read the top as the layout, for validate to report.
            Err(_) if !strict && !scan.entries.keys().any(|k| k.ends_with("oci-layout")) => {
                String::new()
            }
            Err(e) => return Err(e),
        };
        Ok(Archive {
            path: path.to_path_buf(),
            file,
            compression,
            entries: scan.entries,
            root,
            tar_end: scan.tar_end,
            spool: OnceLock::new(),
            spool_lock: Mutex::new(()),
        })
    }

    /// Checks that `oci-layout` says version 1.x, as [`crate::store::layout::Layout::open`] does.
    fn check_oci_layout(&self) -> Result<()> {
        let name = self.full_name("oci-layout");
        let bytes = self.read_entry("oci-layout", OCI_LAYOUT_LIMIT)?;
        let value: serde_json::Value = parse_document(
            &bytes,
            Schema::LayoutHeader,
            &format!("{}:{name}", self.name()),
        )?;
        match value.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(v) if v.starts_with("1.") => Ok(()),
            Some(v) => Err(self.error(
                Some(&name),
                format!("oci-layout has imageLayoutVersion {v:?}; ocikit reads 1.x"),
            )),
            None => Err(self.error(Some(&name), "oci-layout has no string imageLayoutVersion")),
        }
    }

    /// The archive path of a layout file (`index.json` → `mylayout/index.json`).
    fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.root)
    }

    fn error(&self, entry: Option<&str>, message: impl Into<String>) -> Error {
        archive_error(&self.path, entry, message)
    }

    /// Follows links from the layout file `name` to the regular file they lead to. `Ok(None)`
    /// when there is no such entry.
    fn resolve(&self, name: &str) -> Result<Option<&FileEntry>> {
        let first = self.full_name(name);
        let mut current = first.clone();
        for hop in 0..MAX_LINK_HOPS {
            match self.entries.get(&current) {
                None if hop == 0 => return Ok(None),
                None => {
                    return Err(self.error(
                        Some(&first),
                        format!("it is a link to {current}, which is not in the archive"),
                    ))
                }
                Some(Node::File(file)) => return Ok(Some(file)),
                Some(Node::Link(Ok(target))) => current = target.clone(),
                Some(Node::Link(Err(why))) => {
                    let message = if current == first {
                        format!("it {why}")
                    } else {
                        format!("it leads to {current}, which {why}")
                    };
                    return Err(self.error(Some(&first), message));
                }
                Some(Node::Other(kind)) => {
                    return Err(self.error(
                        Some(&first),
                        format!("{current} is {kind}, not a regular file"),
                    ))
                }
                Some(Node::Dir) => {
                    return Err(self.error(
                        Some(&first),
                        format!("{current} is a directory, not a regular file"),
                    ))
                }
            }
        }
        Err(self.error(
            Some(&first),
            format!(
                "it is a link that does not lead to a file after {MAX_LINK_HOPS} links (a loop?)"
            ),
        ))
    }

    /// A stream of a file entry's bytes.
    fn open_entry<'a>(&'a self, entry: &'a FileEntry) -> Result<Box<dyn Read + Send + 'a>> {
        if let Some(bytes) = &entry.cached {
            return Ok(Box::new(&bytes[..]));
        }
        let file = match self.compression {
            Compression::None => &self.file,
            Compression::Gzip | Compression::Zstd => self.spool()?,
        };
        Ok(Box::new(BufReader::with_capacity(
            64 * 1024,
            RangeReader::new(file, entry.offset, entry.size),
        )))
    }

    /// Reads the layout file `name` whole, refusing one larger than `limit`.
    fn read_entry(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let full = self.full_name(name);
        let entry = self
            .resolve(name)?
            .ok_or_else(|| self.error(Some(&full), "the layout has no such file"))?;
        if entry.size > limit {
            return Err(self.error(
                Some(&full),
                format!(
                    "it is {} bytes, more than the {limit} bytes ocikit reads",
                    entry.size
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(entry.size as usize);
        self.open_entry(entry)?
            .read_to_end(&mut bytes)
            .map_err(|e| self.error(Some(&full), format!("cannot read it: {e}")))?;
        Ok(bytes)
    }

    /// The uncompressed tar in an anonymous temp file, written on first use (once, even when
    /// several threads ask at the same time).
    fn spool(&self) -> Result<&File> {
        if let Some(file) = self.spool.get() {
            return Ok(file);
        }
        let _guard = self
            .spool_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = self.spool.get() {
            return Ok(file);
        }
        let temp = tempfile::tempfile().map_err(|e| {
            Error::io(
                "cannot create a temp file (in $TMPDIR) to decompress",
                &self.path,
                e,
            )
        })?;
        let len = self
            .file
            .metadata()
            .map_err(|e| Error::io("cannot read", &self.path, e))?
            .len();
        let mut decoder = decoder(self.compression, RangeReader::new(&self.file, 0, len))
            .map_err(|e| self.error(None, format!("cannot decompress it: {e}")))?;
        let mut out = BufWriter::with_capacity(256 * 1024, temp);
        let copied = io::copy(&mut (&mut decoder).take(self.tar_end), &mut out).map_err(|e| {
            if e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded {
                Error::io(
                    "cannot write the decompressed archive to a temp file for",
                    &self.path,
                    e,
                )
            } else {
                self.error(
                    None,
                    format!(
                        "cannot decompress it ({} data; did it change since it was opened?): {e}",
                        self.compression.name()
                    ),
                )
            }
        })?;
        if copied < self.tar_end {
            return Err(self.error(
                None,
                "it decompressed to less than when it was opened; did it change meanwhile?",
            ));
        }
        let temp = out.into_inner().map_err(|e| {
            Error::io(
                "cannot write the decompressed archive to a temp file for",
                &self.path,
                e.into_error(),
            )
        })?;
        // Another thread cannot have set it: we hold the lock.
        let _ = self.spool.set(temp);
        self.spool
            .get()
            .ok_or_else(|| self.error(None, "the decompressed copy went missing"))
    }

    /// Whether the uncompressed copy has been written (for tests and diagnostics).
    #[cfg(test)]
    fn spooled(&self) -> bool {
        self.spool.get().is_some()
    }
}

impl LayoutRead for Archive {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn index_bytes(&self) -> Result<Vec<u8>> {
        self.read_entry("index.json", MAX_DOCUMENT_SIZE * 16)
    }

    fn open_blob_raw(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        match self.resolve(&blob_name(digest))? {
            Some(entry) => self.open_entry(entry),
            None => Err(Error::BlobNotFound {
                digest: digest.clone(),
                layout: self.name(),
            }),
        }
    }

    fn blob_len(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.resolve(&blob_name(digest))?.map(|e| e.size))
    }

    fn files(&self) -> Result<Vec<FileInfo>> {
        let mut files = Vec::new();
        for (name, node) in &self.entries {
            let Some(path) = name.strip_prefix(&self.root) else {
                continue;
            };
            if path.is_empty() {
                continue;
            }
            let (kind, len) = match node {
                Node::File(f) => (FileKind::Regular, f.size),
                // A link that leads to a file in the archive reads as that file (Docker 25+
                // archives link blobs); one that does not is reported as a symlink.
                Node::Link(_) => match self.resolve(path) {
                    Ok(Some(f)) => (FileKind::Regular, f.size),
                    _ => (FileKind::Symlink, 0),
                },
                Node::Dir => (FileKind::Directory, 0),
                Node::Other(_) => (FileKind::Other, 0),
            };
            files.push(FileInfo {
                path: path.to_string(),
                kind,
                len,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    fn root_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        match self.resolve(name)? {
            None => Ok(None),
            Some(_) => self.read_entry(name, limit).map(Some),
        }
    }
}

/// The layout path of a blob. The digest grammar admits neither `/` nor `..`.
fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.encoded())
}

fn archive_error(path: &Path, entry: Option<&str>, message: impl Into<String>) -> Error {
    Error::Archive {
        path: path.to_path_buf(),
        entry: entry.map(str::to_string),
        message: message.into(),
    }
}

fn unsupported_compression(path: &Path, what: &str) -> Error {
    archive_error(
        path,
        None,
        format!("it is {what}-compressed; ocikit reads plain, gzip and zstd tar archives (decompress it first)"),
    )
}

/// Reads into `buf` at `offset` until it is full or the file ends; returns how much was read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A byte range of a file, read with positioned reads (no shared cursor). Ending before the
/// range does is an error: the file was truncated after it was indexed.
struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl<'a> RangeReader<'a> {
    fn new(file: &'a File, offset: u64, len: u64) -> Self {
        RangeReader {
            file,
            pos: offset,
            end: offset.saturating_add(len),
        }
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.end - self.pos;
        if remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ended early (was it truncated after it was opened?)",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The decompressing reader for `compression` over `input`.
fn decoder<'a, R: Read + Send + 'a>(
    compression: Compression,
    input: R,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        // Multi-member: `cat a.gz b.gz` and parallel compressors write several members.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            input,
        ))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
    })
}

/// What the first pass found.
struct Scan {
    entries: HashMap<String, Node>,
    tar_end: u64,
}

/// Indexes a plain tar: seeks from header to header, reading no data.
fn scan_plain(path: &Path, file: &File, len: u64) -> Result<Scan> {
    let mut tar = tar::Archive::new(file);
    let entries = tar
        .entries_with_seek()
        .map_err(|e| archive_error(path, None, format!("cannot read it: {e}")))?;
    let mut scan = Scan {
        entries: HashMap::new(),
        tar_end: 0,
    };
    let mut last: Option<String> = None;
    for entry in entries {
        let entry =
            entry.map_err(|e| tar_error(path, last.as_deref(), Compression::None, &e, false))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let end = entry.raw_file_position().saturating_add(entry.size());
        // A sparse entry's size is its expanded size, not what the archive holds.
        if end > len && !entry.header().entry_type().is_gnu_sparse() {
            return Err(archive_error(
                path,
                Some(&name),
                format!(
                    "the archive is truncated: this entry's data ends at byte {end}, the file has {len} bytes"
                ),
            ));
        }
        index_entry(&mut scan, entry, |_| Ok(None))?;
        last = Some(name);
    }
    if last.is_none() {
        return Err(archive_error(
            path,
            None,
            "it is not a tar archive (it holds no entries)",
        ));
    }
    Ok(scan)
}

/// Indexes a compressed tar in one streaming pass, keeping small files in memory.
fn scan_compressed(path: &Path, file: &File, len: u64, compression: Compression) -> Result<Scan> {
    let failed = std::cell::Cell::new(false);
    let decoded = decoder(compression, RangeReader::new(file, 0, len)).map_err(|e| {
        archive_error(
            path,
            None,
            format!("it is not valid {} data: {e}", compression.name()),
        )
    })?;
    let mut tracked = Tracked {
        inner: decoded,
        failed: &failed,
    };
    let mut scan = Scan {
        entries: HashMap::new(),
        tar_end: 0,
    };
    // Small files, and separately the root documents, each within their own budget, so that
    // memory stays bounded whatever the archive holds.
    let mut cached_total = 0u64;
    let mut documents_total = 0u64;
    let mut last: Option<String> = None;
    {
        let mut tar = tar::Archive::new(&mut tracked);
        let entries = tar
            .entries()
            .map_err(|e| archive_error(path, None, format!("cannot read it: {e}")))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| tar_error(path, last.as_deref(), compression, &e, failed.get()))?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            index_entry(&mut scan, entry, |entry| {
                let size = entry.size();
                let document = normalize(&entry.path_bytes()).is_some_and(|n| is_root_document(&n));
                let (budget, limit, total) = if document {
                    (
                        &mut documents_total,
                        MAX_DOCUMENT_SIZE,
                        DOCUMENTS_TOTAL_LIMIT,
                    )
                } else {
                    (&mut cached_total, CACHE_ENTRY_LIMIT, CACHE_TOTAL_LIMIT)
                };
                if size > limit || *budget + size > total {
                    return Ok(None);
                }
                *budget += size;
                let mut bytes = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut bytes).map_err(|e| {
                    let what = if failed.get() {
                        format!("the {} stream is corrupt or truncated", compression.name())
                    } else {
                        "the tar data is corrupt or truncated".to_string()
                    };
                    archive_error(path, Some(&name), format!("{what}: {e}"))
                })?;
                if bytes.len() as u64 != size {
                    return Err(archive_error(
                        path,
                        Some(&name),
                        "the archive is truncated: this entry's data is cut short",
                    ));
                }
                Ok(Some(bytes.into_boxed_slice()))
            })?;
            last = Some(name);
        }
    }
    if last.is_none() {
        return Err(archive_error(
            path,
            None,
            format!(
                "it is {}-compressed but not a tar archive (it holds no entries)",
                compression.name()
            ),
        ));
    }
    // Read to the end of the compressed stream so that truncation and checksum errors after the
    // last entry are seen now, not on a later read.
    io::copy(&mut tracked, &mut io::sink()).map_err(|e| {
        archive_error(
            path,
            None,
            format!(
                "the {} stream is corrupt or truncated after the last entry: {e}",
                compression.name()
            ),
        )
    })?;
    Ok(scan)
}

/// A reader that remembers whether the reader below it (the decompressor) failed, to tell a
/// corrupt compressed stream from a corrupt tar.
struct Tracked<'a, R> {
    inner: R,
    failed: &'a std::cell::Cell<bool>,
}

impl<R: Read> Read for Tracked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed.set(true))
    }
}

/// The error for a failure while walking the tar headers.
fn tar_error(
    path: &Path,
    last: Option<&str>,
    compression: Compression,
    e: &io::Error,
    decompression_failed: bool,
) -> Error {
    let message = if decompression_failed {
        format!(
            "the {} stream is corrupt or truncated: {e}",
            compression.name()
        )
    } else if last.is_none() {
        // The tar crate's message quotes the bytes it choked on; for a file that is not a tar
        // at all, that is noise.
        let what = match compression {
            Compression::None => "it is not a tar archive".to_string(),
            _ => format!(
                "it is {}-compressed but not a tar archive",
                compression.name()
            ),
        };
        format!("{what}: it does not start with a valid tar header")
    } else {
        format!("the tar data is corrupt or truncated: {e}")
    };
    let entry = last.map(|l| format!("after {l}"));
    archive_error(path, entry.as_deref(), message)
}

/// Files ocikit reads before anything else; a compressed archive's pass always keeps them.
fn is_root_document(normalized: &str) -> bool {
    let depth = normalized.matches('/').count();
    let base = normalized.rsplit('/').next().unwrap_or(normalized);
    depth <= 1 && (base == "oci-layout" || base == "index.json")
}

/// Adds one tar entry to the index; `cache` may read a regular file's bytes to keep them.
fn index_entry<R: Read>(
    scan: &mut Scan,
    mut entry: tar::Entry<'_, R>,
    cache: impl FnOnce(&mut tar::Entry<'_, R>) -> Result<Option<Box<[u8]>>>,
) -> Result<()> {
    let raw_name = entry.path_bytes().into_owned();
    let Some(name) = normalize(&raw_name) else {
        return Ok(()); // absolute, `..`, not UTF-8, or the top directory itself
    };
    let kind = entry.header().entry_type();
    let node = match kind {
        _ if kind.is_dir() || raw_name.ends_with(b"/") => Node::Dir,
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let offset = entry.raw_file_position();
            let size = entry.size();
            scan.tar_end = scan.tar_end.max(offset.saturating_add(size));
            let cached = cache(&mut entry)?;
            Node::File(FileEntry {
                offset,
                size,
                cached,
            })
        }
        tar::EntryType::Link => Node::Link(match entry.link_name_bytes() {
            Some(target) => normalize(&target).ok_or_else(|| {
                format!(
                    "is a hard link to {:?}, outside the archive",
                    String::from_utf8_lossy(&target)
                )
            }),
            None => Err("is a hard link without a target".to_string()),
        }),
        tar::EntryType::Symlink => Node::Link(match entry.link_name_bytes() {
            Some(target) => resolve_symlink(&name, &target),
            None => Err("is a symlink without a target".to_string()),
        }),
        tar::EntryType::GNUSparse => Node::Other("a sparse file (not supported)"),
        tar::EntryType::Char | tar::EntryType::Block => Node::Other("a device"),
        tar::EntryType::Fifo => Node::Other("a FIFO"),
        _ => return Ok(()), // pax global headers and unknown kinds
    };
    // A later entry of the same name replaces an earlier one, as when extracting.
    scan.entries.insert(name, node);
    Ok(())
}

/// A tar entry name as a clean relative path (`./a//b` → `a/b`); `None` for absolute paths,
/// paths with `..`, names that are not UTF-8, and the top directory itself.
fn normalize(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    if text.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// Where the symlink `name` (normalized) pointing at `target` leads, as a normalized archive
/// path, or why it cannot be followed.
fn resolve_symlink(name: &str, target: &[u8]) -> std::result::Result<String, String> {
    let shown = String::from_utf8_lossy(target).into_owned();
    let outside = || format!("is a symlink to {shown:?}, outside the archive");
    let text = std::str::from_utf8(target).map_err(|_| outside())?;
    if text.is_empty() {
        return Err("is a symlink without a target".to_string());
    }
    if text.starts_with('/') {
        return Err(outside());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop(); // relative to the link's directory
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(outside)?;
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(format!("is a symlink to {shown:?}, the top of the archive"));
    }
    Ok(parts.join("/"))
}

/// The layout's root inside the archive: `""` when `oci-layout` is at the top, else the one
/// top-level directory holding an `oci-layout`.
fn find_root(path: &Path, entries: &HashMap<String, Node>) -> Result<String> {
    if entries.contains_key("oci-layout") {
        return Ok(String::new());
    }
    let tops: BTreeSet<&str> = entries
        .keys()
        .filter_map(|name| name.split_once('/').map(|(top, _)| top))
        .collect();
    let layouts: Vec<&str> = tops
        .iter()
        .copied()
        .filter(|top| entries.contains_key(&format!("{top}/oci-layout")))
        .collect();
    match layouts.as_slice() {
        [one] => return Ok(format!("{one}/")),
        [] => {}
        several => {
            return Err(archive_error(
                path,
                None,
                format!(
                    "it holds several layouts ({}); ocikit reads an archive with one layout",
                    several
                        .iter()
                        .map(|t| format!("{t}/"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    }
    let docker = entries.contains_key("manifest.json")
        || (tops.len() == 1
            && tops
                .iter()
                .any(|top| entries.contains_key(&format!("{top}/manifest.json"))));
    let message = if docker {
        "it has no oci-layout file; it has a manifest.json, so this looks like a `docker save` \
         archive from before Docker 25; use `ocikit import` to turn it into a layout"
    } else {
        "it has no oci-layout file, so it is not an OCI image layout archive"
    };
    Err(archive_error(path, None, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    const CONFIG: &[u8] =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

    /// A layout's files: (name, bytes), plus the digests of the manifest and the layer.
    struct Fixture {
        files: Vec<(String, Vec<u8>)>,
        manifest: Digest,
        manifest_bytes: Vec<u8>,
        layer: Digest,
        layer_bytes: Vec<u8>,
    }

    fn fixture(layer_bytes: Vec<u8>) -> Fixture {
        let config = Digest::sha256_of(CONFIG);
        let layer = Digest::sha256_of(&layer_bytes);
        let manifest_bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{}}}]}}"#,
            CONFIG.len(),
            layer_bytes.len()
        )
        .into_bytes();
        let manifest = Digest::sha256_of(&manifest_bytes);
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#,
            manifest_bytes.len()
        );
        let files = vec![
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), index.into_bytes()),
            (blob_name(&config), CONFIG.to_vec()),
            (blob_name(&manifest), manifest_bytes.clone()),
            (blob_name(&layer), layer_bytes.clone()),
        ];
        Fixture {
            files,
            manifest,
            manifest_bytes,
            layer,
            layer_bytes,
        }
    }

    /// Bytes that do not compress to nothing, so spooling is really exercised.
    fn big_bytes(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect()
    }

    /// Appends an entry with an exact (unchecked) name, as hostile or odd archives have.
    fn raw_entry(
        tar: &mut tar::Builder<Vec<u8>>,
        kind: tar::EntryType,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) {
        let mut header = tar::Header::new_gnu();
        let slot = &mut header.as_old_mut().name;
        slot[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.set_link_name_literal(link).unwrap();
        }
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        tar.append(&header, data).unwrap();
    }

    fn tar_of(files: &[(String, Vec<u8>)], prefix: &str) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        if !prefix.is_empty() {
            raw_entry(&mut tar, tar::EntryType::Directory, prefix, None, b"");
        }
        for (name, bytes) in files {
            raw_entry(
                &mut tar,
                tar::EntryType::Regular,
                &format!("{prefix}{name}"),
                None,
                bytes,
            );
        }
        tar.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(bytes, 3).unwrap()
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn open_bytes(name: &str, bytes: &[u8]) -> (tempfile::TempDir, Result<Archive>) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, name, bytes);
        let archive = Archive::open(&path);
        (dir, archive)
    }

    fn message(error: Error) -> (Option<String>, String) {
        match error {
            Error::Archive { entry, message, .. } => (entry, message),
            other => panic!("expected an archive error, got {other:?}"),
        }
    }

    fn read_blob(archive: &Archive, digest: &Digest) -> Vec<u8> {
        let mut out = Vec::new();
        let size = archive.blob_len(digest).unwrap();
        archive
            .open_blob(digest, size)
            .unwrap()
            .copy_to(&mut out)
            .unwrap();
        out
    }

    fn assert_reads_layout(archive: &Archive, fx: &Fixture) {
        let index = archive.index().unwrap();
        assert_eq!(index.entries().len(), 1);
        assert_eq!(index.entries()[0].digest, fx.manifest);
        assert_eq!(read_blob(archive, &fx.manifest), fx.manifest_bytes);
        assert_eq!(read_blob(archive, &fx.layer), fx.layer_bytes);
        assert_eq!(
            archive.blob_len(&fx.layer).unwrap(),
            Some(fx.layer_bytes.len() as u64)
        );
    }

    #[test]
    fn a_plain_tar_is_read_in_place_without_copies() {
        let fx = fixture(big_bytes(3 * 1024 * 1024));
        let (_dir, archive) = open_bytes("layout.tar", &tar_of(&fx.files, ""));
        let archive = archive.unwrap();
        assert_eq!(archive.compression, Compression::None);
        assert!(archive.entries.values().all(|n| match n {
            Node::File(f) => f.cached.is_none(),
            _ => true,
        }));
        assert_reads_layout(&archive, &fx);
        assert!(!archive.spooled());
    }

    #[test]
    fn compression_is_detected_from_magic_bytes_not_the_file_name() {
        let fx = fixture(b"layer".to_vec());
        let tar = tar_of(&fx.files, "");
        for (bytes, expected) in [
            (gzip(&tar), Compression::Gzip),
            (zstd(&tar), Compression::Zstd),
        ] {
            let (_dir, archive) = open_bytes("misnamed.tar", &bytes);
            let archive = archive.unwrap();
            assert_eq!(archive.compression, expected);
            assert_reads_layout(&archive, &fx);
        }
        let (_dir, archive) = open_bytes("misnamed.tar.zst", &tar);
        assert_eq!(archive.unwrap().compression, Compression::None);
    }

    #[test]
    fn a_compressed_archive_serves_small_entries_from_memory_and_spools_once_for_a_large_one() {
        let fx = fixture(big_bytes(3 * 1024 * 1024 + 17));
        let tar = tar_of(&fx.files, "");
        for bytes in [gzip(&tar), zstd(&tar)] {
            let (_dir, archive) = open_bytes("layout.tar.zst", &bytes);
            let archive = archive.unwrap();
            archive.index().unwrap();
            assert_eq!(read_blob(&archive, &fx.manifest), fx.manifest_bytes);
            assert_eq!(
                archive.blob_len(&fx.layer).unwrap(),
                Some(fx.layer_bytes.len() as u64)
            );
            assert!(
                !archive.spooled(),
                "documents and lengths need no temp file"
            );
            assert_eq!(read_blob(&archive, &fx.layer), fx.layer_bytes);
            assert!(archive.spooled());
            assert_eq!(read_blob(&archive, &fx.layer), fx.layer_bytes);
        }
    }

    #[test]
    fn blobs_can_be_read_from_several_threads_at_once() {
        let fx = fixture(big_bytes(2 * 1024 * 1024));
        let tar = tar_of(&fx.files, "");
        for bytes in [tar.clone(), zstd(&tar)] {
            let (_dir, archive) = open_bytes("layout.tar", &bytes);
            let archive = archive.unwrap();
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        assert_eq!(read_blob(&archive, &fx.layer), fx.layer_bytes);
                        assert_eq!(read_blob(&archive, &fx.manifest), fx.manifest_bytes);
                    });
                }
            });
        }
    }

    #[test]
    fn a_leading_dot_slash_is_ignored() {
        let fx = fixture(b"layer".to_vec());
        let (_dir, archive) = open_bytes("layout.tar", &tar_of(&fx.files, "./"));
        assert_reads_layout(&archive.unwrap(), &fx);
    }

    #[test]
    fn a_single_top_level_directory_holding_the_layout_is_its_root() {
        let fx = fixture(b"layer".to_vec());
        let tar = tar_of(&fx.files, "mylayout/");
        let (_dir, archive) = open_bytes("layout.tgz", &gzip(&tar));
        let archive = archive.unwrap();
        assert_eq!(archive.root, "mylayout/");
        assert_reads_layout(&archive, &fx);
    }

    #[test]
    fn two_layouts_in_one_archive_are_refused_by_name() {
        let fx = fixture(b"layer".to_vec());
        let mut tar = tar_of(&fx.files, "a/");
        tar.truncate(tar.len() - 1024); // drop the end-of-archive blocks
        tar.extend(tar_of(&fx.files, "b/"));
        let (_dir, archive) = open_bytes("two.tar", &tar);
        let (_, message) = message(archive.unwrap_err());
        assert!(message.contains("several layouts (a/, b/)"), "{message}");
    }

    #[test]
    fn hard_links_and_relative_symlinks_resolve_to_entries_inside_the_archive() {
        let fx = fixture(b"layer".to_vec());
        let mut files = fx.files.clone();
        let layer_name = blob_name(&fx.layer);
        let manifest_name = blob_name(&fx.manifest);
        files.retain(|(n, _)| *n != layer_name && *n != manifest_name);
        let mut tar = tar::Builder::new(Vec::new());
        for (name, bytes) in &files {
            raw_entry(
                &mut tar,
                tar::EntryType::Regular,
                &format!("./{name}"),
                None,
                bytes,
            );
        }
        // Docker 25+ style: the real file elsewhere, the blob a link to it.
        raw_entry(
            &mut tar,
            tar::EntryType::Regular,
            "./layers/abc/layer.tar",
            None,
            &fx.layer_bytes,
        );
        raw_entry(
            &mut tar,
            tar::EntryType::Link,
            &format!("./{layer_name}"),
            Some("./layers/abc/layer.tar"),
            b"",
        );
        raw_entry(
            &mut tar,
            tar::EntryType::Regular,
            "docs/manifest",
            None,
            &fx.manifest_bytes,
        );
        raw_entry(
            &mut tar,
            tar::EntryType::Symlink,
            "docs/alias",
            Some("./manifest"),
            b"",
        );
        raw_entry(
            &mut tar,
            tar::EntryType::Symlink,
            &manifest_name,
            Some("../../docs/alias"),
            b"",
        );
        let (_dir, archive) = open_bytes("docker25.tar", &tar.into_inner().unwrap());
        assert_reads_layout(&archive.unwrap(), &fx);
    }

    #[test]
    fn links_leading_outside_the_archive_or_nowhere_are_errors_naming_the_entry() {
        let fx = fixture(b"layer".to_vec());
        let layer_name = blob_name(&fx.layer);
        let files: Vec<_> = fx
            .files
            .iter()
            .filter(|(n, _)| *n != layer_name)
            .cloned()
            .collect();
        for (kind, target, expected) in [
            (
                tar::EntryType::Symlink,
                "../../../etc/passwd",
                "outside the archive",
            ),
            (
                tar::EntryType::Symlink,
                "/etc/passwd",
                "outside the archive",
            ),
            (tar::EntryType::Link, "../etc/passwd", "outside the archive"),
            (
                tar::EntryType::Symlink,
                "nothing-here",
                "not in the archive",
            ),
            (tar::EntryType::Symlink, "loop", "a loop"),
        ] {
            let mut tar = tar::Builder::new(Vec::new());
            for (name, bytes) in &files {
                raw_entry(&mut tar, tar::EntryType::Regular, name, None, bytes);
            }
            raw_entry(&mut tar, kind, &layer_name, Some(target), b"");
            raw_entry(
                &mut tar,
                tar::EntryType::Symlink,
                "blobs/sha256/loop",
                Some("loop"),
                b"",
            );
            let (_dir, archive) = open_bytes("links.tar", &tar.into_inner().unwrap());
            let archive = archive.unwrap();
            assert_eq!(read_blob(&archive, &fx.manifest), fx.manifest_bytes);
            let error = match archive.open_blob_raw(&fx.layer) {
                Ok(_) => panic!("{target}: the link was followed"),
                Err(e) => e,
            };
            let (entry, message) = message(error);
            assert_eq!(entry.as_deref(), Some(layer_name.as_str()));
            assert!(message.contains(expected), "{target}: {message}");
            assert!(archive.blob_len(&fx.layer).is_err());
        }
    }

    #[test]
    fn entries_with_absolute_paths_or_dot_dot_are_not_layout_files() {
        let fx = fixture(b"layer".to_vec());
        let mut tar = tar::Builder::new(Vec::new());
        for (name, bytes) in &fx.files {
            let name = if name == "oci-layout" {
                "../oci-layout".to_string()
            } else {
                format!("/{name}")
            };
            raw_entry(&mut tar, tar::EntryType::Regular, &name, None, bytes);
        }
        let (_dir, archive) = open_bytes("evil.tar", &tar.into_inner().unwrap());
        let (_, message) = message(archive.unwrap_err());
        assert!(message.contains("no oci-layout"), "{message}");
    }

    #[test]
    fn a_truncated_archive_is_refused() {
        let fx = fixture(big_bytes(200 * 1024));
        let tar = tar_of(&fx.files, "");
        let cut = |mut b: Vec<u8>, keep: usize| {
            b.truncate(keep);
            b
        };
        // Inside the layer's data, and inside a header.
        let layer_header = tar.len() - 1024 - 200 * 1024 - 512;
        for bytes in [
            cut(tar.clone(), tar.len() - 1024 - 100 * 1024),
            cut(tar.clone(), layer_header + 100),
        ] {
            let (_dir, archive) = open_bytes("cut.tar", &bytes);
            let (_, message) = message(archive.unwrap_err());
            assert!(message.contains("truncated"), "{message}");
        }
        for (name, bytes) in [("cut.tgz", gzip(&tar)), ("cut.tar.zst", zstd(&tar))] {
            let keep = bytes.len() * 2 / 3;
            let (_dir, archive) = open_bytes(name, &cut(bytes, keep));
            let (_, message) = message(archive.unwrap_err());
            assert!(message.contains("truncated"), "{name}: {message}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_tar_is_refused() {
        for (name, bytes) in [
            (
                "text.tar",
                b"hello, this is not a tar archive at all".repeat(20),
            ),
            ("short.tar", b"hi".to_vec()),
            ("text.tgz", gzip(&b"plain text, gzipped".repeat(40))),
            ("bad.tgz", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]),
            ("empty.tar", Vec::new()),
        ] {
            let (_dir, archive) = open_bytes(name, &bytes);
            let (_, message) = message(archive.unwrap_err());
            assert!(
                message.contains("not a tar") || message.contains("gzip stream is corrupt"),
                "{name}: {message}"
            );
        }
        let (_dir, archive) = open_bytes("x.tar.xz", &[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2]);
        assert!(message(archive.unwrap_err()).1.contains("xz-compressed"));
    }

    #[test]
    fn a_docker_save_archive_without_oci_layout_points_at_import() {
        let files = vec![
            (
                "manifest.json".to_string(),
                br#"[{"Config":"abc.json","RepoTags":["x:1"],"Layers":["abc/layer.tar"]}]"#
                    .to_vec(),
            ),
            ("abc.json".to_string(), CONFIG.to_vec()),
            ("abc/layer.tar".to_string(), b"layer".to_vec()),
        ];
        let (_dir, archive) = open_bytes("docker.tar", &tar_of(&files, ""));
        let (entry, message) = message(archive.unwrap_err());
        assert_eq!(entry, None);
        assert!(message.contains("docker save"), "{message}");
        assert!(message.contains("ocikit import"), "{message}");
    }

    #[test]
    fn an_absent_blob_has_no_length_and_cannot_be_opened() {
        let fx = fixture(b"layer".to_vec());
        let (_dir, archive) = open_bytes("layout.tar", &tar_of(&fx.files, ""));
        let archive = archive.unwrap();
        let absent = Digest::sha256_of(b"absent");
        assert_eq!(archive.blob_len(&absent).unwrap(), None);
        assert!(matches!(
            archive.open_blob_raw(&absent),
            Err(Error::BlobNotFound { .. })
        ));
    }

    #[test]
    fn an_unknown_layout_version_is_refused() {
        let mut fx = fixture(b"layer".to_vec());
        fx.files[0].1 = br#"{"imageLayoutVersion":"2.0.0"}"#.to_vec();
        let (_dir, archive) = open_bytes("layout.tar", &tar_of(&fx.files, ""));
        let (entry, message) = message(archive.unwrap_err());
        assert_eq!(entry.as_deref(), Some("oci-layout"));
        assert!(message.contains("2.0.0"), "{message}");
    }

    #[test]
    fn names_are_normalized_and_symlinks_resolved_relative_to_their_directory() {
        assert_eq!(normalize(b"./a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize(b"/etc/passwd"), None);
        assert_eq!(normalize(b"a/../b"), None);
        assert_eq!(normalize(b"./"), None);
        assert_eq!(resolve_symlink("a/b/c", b"../d").as_deref(), Ok("a/d"));
        assert_eq!(resolve_symlink("a/b", b"./c/d").as_deref(), Ok("a/c/d"));
        assert!(resolve_symlink("a/b", b"../../c").is_err());
        assert!(resolve_symlink("a/b", b"/c").is_err());
    }
}
