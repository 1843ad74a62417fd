//! Reading a layout tarball in place, without extracting it.
//!
//! [`Archive::open`] detects the compression from the file's first bytes
//! ([`crate::codec::sniff`]) and makes one pass over the tar with the one tar reader
//! ([`crate::codec::tar`]: Go's `archive/tar` semantics, header caps), building an index from
//! each entry's normalized name to where its data lies.
//!
//! * **Plain tar**: the pass passes over data with positioned reads, so it reads only the
//!   headers. A blob is then a positioned read (`pread`) of its byte range in the archive file:
//!   no copy, no temp file, and any number of threads can read at once because no file cursor
//!   is shared.
//! * **Compressed tar**: the pass decompresses the whole stream once through the one decoder
//!   ([`crate::codec::decode`]), under the caller's decompression limits, and keeps small
//!   regular files in memory (each at most 1 MiB, 256 MiB in all; `oci-layout` and
//!   `index.json` up to 16 MiB, budgeted apart). That covers `index.json`, manifests and
//!   configs, so `ls` and `inspect` need no temp file. The first read of a larger or uncached
//!   entry (a layer) decompresses the archive once more, into an anonymous temp file as large
//!   as the uncompressed tar; from then on, uncached entries are positioned reads of that file,
//!   as for a plain tar.
//!
//! * **A stream** (stdin, or a compressed archive being imported): [`Archive::read_stream`]
//!   reads it once, as it comes: small files are kept in memory (within the same kind of
//!   budget), and every larger file is handed to a [`Stage`] as it passes, which stages it as
//!   a file of its own (hashed on the way: an import stages blobs inside the destination
//!   layout, so that keeping one is a link, not a copy) or lets it pass. Nothing is read twice
//!   and nothing is spooled but what is kept.
//!
//! Memory does not grow with blob size: large entries are streamed, never held.
//!
//! # Read as extraction would, or refused
//!
//! An archive means what `tar -x` (then any reader of the directory), skopeo's `oci-archive:`
//! and containerd's importer make of it; where those differ, ocikit refuses the archive rather
//! than pick one, naming the entries ([`Ambiguity`]; `validate` reports them as findings and
//! reads as extraction would):
//! - two entries with the same name after normalization (`./index.json` and `index.json`), a
//!   directory and a file of the same name: extraction keeps the later one, a reader that
//!   indexes names may keep the earlier;
//! - an absolute name (GNU tar and skopeo strip the `/` and use it, containerd ignores it), a
//!   `..` component (GNU tar refuses it, Go programs clean it), a file whose name ends in `/`,
//!   an entry below a file or symlink of the archive, a link or directory that declares data
//!   (Go reads none, other readers skip it).
//!
//! What is not ambiguous is read as extraction would: a hard link is the entry it names *as it
//! was when the link was made* (a later entry of that name does not change it; that later
//! entry is a duplicate, refused above), and a hard link to a symlink is that symlink placed at
//! the link's path; a symlink is followed at read time, relative to its own directory, to the
//! last entry of the name it leads to, never outside the archive and never on the host. A
//! single top-level directory holding `oci-layout` is the layout's root (`tar czf x.tgz
//! mylayout/`). The archive must end with its end-of-archive marker: one cut on a block
//! boundary is truncated, not complete.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::codec::decode::{self, Decoder, Limits};
use crate::codec::sniff::{self, Format};
use crate::codec::tar::{self, path, Header, Kind, TarError};
use sha2::Digest as _;

use crate::error::{Error, LimitExceeded, Result};
use crate::progress::Progress;
use crate::spec::digest::Digest;
use crate::spec::document::media_type::Compression;
use crate::spec::document::{parse_document, Schema};
use crate::spec::units::compact_size;
use crate::store::layout::{
    Ambiguity, AmbiguityKind, FileInfo, FileKind, LayoutRead, Staged, MAX_DOCUMENT_SIZE,
};

/// The largest entry a compressed archive's first pass keeps in memory.
const CACHE_ENTRY_LIMIT: u64 = 1024 * 1024;
/// The most a compressed archive's first pass keeps in memory, in all.
const CACHE_TOTAL_LIMIT: u64 = 256 * 1024 * 1024;
/// The most a streamed archive keeps in memory, in all (beyond that, files are staged).
const STREAM_CACHE_TOTAL_LIMIT: u64 = 16 * 1024 * 1024;
/// The most a compressed archive's first pass keeps of `oci-layout` and `index.json` files
/// (each up to [`MAX_DOCUMENT_SIZE`]), apart from other entries.
const DOCUMENTS_TOTAL_LIMIT: u64 = 4 * MAX_DOCUMENT_SIZE;
/// How many symlinks are followed, one to the next, before giving up (a loop).
const MAX_LINK_HOPS: usize = 40;
/// The largest `oci-layout` file ocikit reads.
const OCI_LAYOUT_LIMIT: u64 = 64 * 1024;
/// Ambiguities named in the error that refuses an archive (all are counted).
const AMBIGUITIES_SHOWN: usize = 3;
/// The longest entry name (and symlink target) indexed: Linux's `PATH_MAX`; no extractor can
/// create a longer path.
const MAX_NAME_LEN: usize = 4096;
/// Ambiguities kept (for `validate` to list); more are counted.
const MAX_AMBIGUITIES: usize = 100;
/// The most entries a layout archive may have (a layout of 100,000 blobs has about as many).
const MAX_ENTRIES: usize = 1_000_000;
/// The most bytes of entry names indexed.
const MAX_NAME_BYTES: usize = 64 << 20;

/// A regular file in the archive: where its data lies in the uncompressed tar stream, and
/// where else it is when the pass that indexed it kept it.
#[derive(Clone, Debug)]
struct FileEntry {
    offset: u64,
    size: u64,
    data: Data,
}

/// Where a file's bytes can be read.
#[derive(Clone, Debug)]
enum Data {
    /// In the archive at the entry's offset (of the uncompressed tar: for a compressed
    /// archive, in its spooled copy).
    InArchive,
    /// In memory: a small file of a compressed or streamed archive.
    Cached(Arc<[u8]>),
    /// In a file of its own, staged while the archive streamed past.
    Staged(Arc<Staged>),
    /// Passed over while the archive streamed past, because the same bytes are in this file
    /// (a blob the destination of an import has already).
    Elsewhere(PathBuf),
    /// Passed over while the archive streamed past: whoever read it did not need it.
    Dropped,
}

/// Where the larger files of a streamed archive go (see [`Archive::read_stream`]).
pub trait Stage: Sync {
    /// Takes the `size` bytes of the regular file `name` (normalized, from the top of the
    /// archive) from `data`: stages them, says where the same bytes are already, or returns
    /// `None` to let them pass. An error of `data` itself (a truncated or corrupt stream) is
    /// reported by the archive, not here.
    fn stage(&self, name: &str, size: u64, data: &mut dyn Read) -> Result<Option<Kept>>;
}

/// Where a [`Stage`] kept a file's bytes.
#[derive(Debug)]
pub enum Kept {
    /// In a staged file of its own.
    Staged(Staged),
    /// Nowhere new: the same bytes are in this file already (a blob a destination has, by its
    /// digest); the archive reads that file for it, verified like any blob.
    Elsewhere(PathBuf),
}

/// What an archive must be to be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// An OCI layout; ambiguous entries refused.
    Layout,
    /// Any complete tar, ambiguities kept for `validate`.
    Unchecked,
    /// Any tar (a layout or a `docker save` archive); ambiguous entries refused.
    AnyTar,
}

/// What the index knows about one name in the archive.
#[derive(Clone, Debug)]
enum Node {
    File(FileEntry),
    /// A symlink: where it leads (a normalized archive path), or why it cannot be followed;
    /// and its raw target, for a hard link that copies it to another directory.
    Symlink {
        target: Vec<u8>,
        leads_to: std::result::Result<Vec<u8>, String>,
    },
    /// Something that cannot be read as a file, and why: a device, a FIFO, a sparse file, a
    /// hard link to nothing.
    Other(String),
    /// A directory entry (kept so that validation sees empty directories such as `blobs/`).
    Dir,
}

/// A layout archive opened for reading. It is `Send + Sync`: blobs may be read from several
/// threads at once (see the module documentation for how and at what cost).
pub struct Archive {
    path: PathBuf,
    /// The archive file, opened once; read only with positioned reads. `None` for an archive
    /// read from a stream, whose files are all kept elsewhere or dropped.
    file: Option<File>,
    compression: Compression,
    limits: Limits,
    /// Every usable entry, by normalized path from the top of the archive.
    entries: HashMap<Vec<u8>, (usize, Node)>,
    /// The layout's root inside the archive: `""` or `"dir/"`.
    root: String,
    /// Where the last file's data ends in the uncompressed tar stream.
    tar_end: u64,
    /// What readers read differently (only an archive opened unchecked keeps any).
    ambiguities: Vec<Ambiguity>,
    /// The names whose entry is a symlink or a hard link, and what it links to.
    links: HashMap<Vec<u8>, String>,
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
            .field("ambiguities", &self.ambiguities.len())
            .field("spooled", &self.spool.get().is_some())
            .finish()
    }
}

impl Archive {
    /// Opens a layout archive, decompressing under `limits`, and indexes its entries (see the
    /// module documentation). An archive whose entries readers read differently is refused.
    pub fn open(path: &Path, limits: &Limits) -> Result<Archive> {
        let archive = Archive::open_with(path, limits, Expect::Layout)?;
        archive.check_oci_layout()?;
        Ok(archive)
    }

    /// Opens an archive without requiring a valid `oci-layout` and without refusing ambiguous
    /// entries, for `validate`, which reports both as findings
    /// ([`LayoutRead::ambiguities`]). The archive must still be a complete, readable tar.
    pub fn open_unchecked(path: &Path, limits: &Limits) -> Result<Archive> {
        Archive::open_with(path, limits, Expect::Unchecked)
    }

    /// Opens any tar whose entries every reader reads alike: an OCI layout archive (not yet
    /// checked: see [`Archive::check_oci_layout`]) or a `docker save` archive from before
    /// Docker 25, whose files are read by name ([`Archive::open_file`]). Its root is the
    /// layout's (a single top-level directory holding `oci-layout`), else the top.
    pub fn open_tar(path: &Path, limits: &Limits) -> Result<Archive> {
        Archive::open_with(path, limits, Expect::AnyTar)
    }

    /// Reads an archive from a stream, once, as it comes (see the module documentation): small
    /// files are kept in memory, larger ones are offered to `stage`. Opened as
    /// [`Archive::open_tar`] opens a file; `name` names the stream in messages. `progress`
    /// counts the stream's bytes.
    pub fn read_stream(
        input: impl Read,
        name: &str,
        limits: &Limits,
        stage: &dyn Stage,
        progress: &dyn Progress,
    ) -> Result<Archive> {
        let path = PathBuf::from(name);
        let mut input = BufReader::with_capacity(
            256 * 1024,
            Counted {
                inner: input,
                progress,
            },
        );
        let head = input
            .fill_buf()
            .map_err(|e| Error::io("cannot read", &path, e))?;
        if head.is_empty() {
            return Err(archive_error(&path, None, "it is empty, not a tar archive"));
        }
        let compression = match sniff::sniff(head) {
            Format::Xz => return Err(unsupported_compression(&path, "xz")),
            Format::Bzip2 => return Err(unsupported_compression(&path, "bzip2")),
            format => format.compression().unwrap_or(Compression::None),
        };
        let mut scan = Scan::default();
        let mut budget = Budget::new(STREAM_CACHE_TOTAL_LIMIT);
        let mut take = |header: &Header, data: &mut dyn Read| -> Result<Data> {
            if let Some(size) = budget.keep(header) {
                let mut bytes = Vec::with_capacity(size as usize);
                data.read_to_end(&mut bytes)
                    .map_err(|e| stream_error(&path, compression, Some(&header.shown()), e))?;
                return Ok(Data::Cached(Arc::from(bytes)));
            }
            let name = path::normalize(&header.path);
            let Some(clean) = name.as_str().filter(|_| name.is_plain()) else {
                return Ok(Data::Dropped); // refused as ambiguous below
            };
            let mut captured = Capture {
                inner: data,
                failure: None,
            };
            match stage.stage(clean, header.size, &mut captured) {
                Ok(Some(Kept::Staged(staged))) => Ok(Data::Staged(Arc::new(staged))),
                Ok(Some(Kept::Elsewhere(path))) => Ok(Data::Elsewhere(path)),
                Ok(None) => Ok(Data::Dropped),
                Err(e) => Err(match captured.failure {
                    Some(failure) => {
                        stream_error(&path, compression, Some(&header.shown()), failure)
                    }
                    None => e,
                }),
            }
        };
        match compression {
            Compression::None => {
                let rest = scan_tar(&path, input, compression, &mut scan, &mut take)?;
                drain(&path, compression, rest)?;
            }
            Compression::Gzip | Compression::Zstd => {
                let decoder = Decoder::new(input, compression, limits)
                    .map_err(|e| stream_error(&path, compression, None, e))?;
                let tar = BufReader::with_capacity(256 * 1024, decoder);
                let rest = scan_tar(&path, tar, compression, &mut scan, &mut take)?;
                drain(&path, compression, rest)?;
            }
        }
        Archive::indexed(path, None, compression, limits, scan, Expect::AnyTar)
    }

    fn open_with(path: &Path, limits: &Limits, expect: Expect) -> Result<Archive> {
        // Checked before opening: opening a FIFO would hang.
        let is_file = std::fs::metadata(path)
            .map_err(|e| Error::io("cannot open", path, e))?
            .is_file();
        if !is_file {
            return Err(archive_error(path, None, "it is not a regular file"));
        }
        let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("cannot read", path, e))?
            .len();
        if len == 0 {
            return Err(archive_error(path, None, "it is empty, not a tar archive"));
        }
        let mut head = [0u8; 8];
        let got =
            read_full_at(&file, &mut head, 0).map_err(|e| Error::io("cannot read", path, e))?;
        let compression = match sniff::sniff(&head[..got]) {
            Format::Xz => return Err(unsupported_compression(path, "xz")),
            Format::Bzip2 => return Err(unsupported_compression(path, "bzip2")),
            format => format.compression().unwrap_or(Compression::None),
        };

        let mut scan = Scan::default();
        match compression {
            Compression::None => {
                let input = PreadInput::new(&file, len);
                scan_tar(path, input, compression, &mut scan, |_, _| {
                    Ok(Data::InArchive)
                })?;
            }
            Compression::Gzip | Compression::Zstd => {
                scan_compressed(path, &file, len, compression, limits, &mut scan)?
            }
        }
        Archive::indexed(
            path.to_path_buf(),
            Some(file),
            compression,
            limits,
            scan,
            expect,
        )
    }

    /// The archive a pass over its tar made: ambiguities refused unless unchecked, the root
    /// found.
    fn indexed(
        path: PathBuf,
        file: Option<File>,
        compression: Compression,
        limits: &Limits,
        scan: Scan,
        expect: Expect,
    ) -> Result<Archive> {
        let path = path.as_path();
        if expect != Expect::Unchecked && !scan.ambiguities.is_empty() {
            return Err(ambiguous(path, &scan.ambiguities, scan.unlisted));
        }
        let root = match find_root(path, &scan.entries) {
            Ok(root) => root,
            // No oci-layout anywhere: read the top as the layout, for validate to report, or as
            // the `docker save` archive it may be — though validate is told it is one (a
            // manifest.json and no index.json: another format, not a broken layout).
            Err(_)
                if expect != Expect::Layout
                    && !scan.entries.keys().any(|k| k.ends_with(b"oci-layout"))
                    && (expect == Expect::AnyTar
                        || !scan.entries.contains_key(&b"manifest.json"[..])
                        || scan.entries.contains_key(&b"index.json"[..])) =>
            {
                String::new()
            }
            Err(e) => return Err(e),
        };
        let mut ambiguities = scan.ambiguities;
        if scan.unlisted > 0 {
            ambiguities.push(Ambiguity {
                kind: AmbiguityKind::Unclear,
                path: None,
                entry: String::new(),
                message: format!(
                    "{} more entries that tar readers read differently are not listed (only the first {MAX_AMBIGUITIES} are)",
                    scan.unlisted
                ),
            });
        }
        for a in &mut ambiguities {
            a.path = a
                .path
                .take()
                .and_then(|p| p.strip_prefix(&root).map(str::to_string));
        }
        Ok(Archive {
            path: path.to_path_buf(),
            file,
            compression,
            limits: *limits,
            entries: scan.entries,
            root,
            tar_end: scan.tar_end,
            ambiguities,
            links: scan.links,
            spool: OnceLock::new(),
            spool_lock: Mutex::new(()),
        })
    }

    /// Checks that `oci-layout` says version 1.x, as [`crate::store::layout::Layout::open`] does.
    pub fn check_oci_layout(&self) -> Result<()> {
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

    /// The layout's root inside the archive: `""` when `oci-layout` is at the top, else
    /// `"dir/"`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Every entry that is a symlink or a hard link (which [`Archive::open_file`] reads as
    /// what it leads to): its name from the top of the archive, and "a symlink to …" or
    /// "a hard link to …", sorted by name.
    pub fn links(&self) -> Vec<(String, String)> {
        let mut links: Vec<(String, String)> = self
            .links
            .iter()
            .map(|(name, link)| (String::from_utf8_lossy(name).into_owned(), link.clone()))
            .collect();
        links.sort();
        links
    }

    /// The archive path of a layout file (`index.json` → `mylayout/index.json`).
    fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.root)
    }

    fn error(&self, entry: Option<&str>, message: impl Into<String>) -> Error {
        archive_error(&self.path, entry, message)
    }

    /// Follows symlinks from the layout file `name` to the regular file they lead to.
    /// `Ok(None)` when there is no such entry.
    fn resolve(&self, name: &str) -> Result<Option<&FileEntry>> {
        let first = self.full_name(name);
        let mut current = first.clone().into_bytes();
        for hop in 0..MAX_LINK_HOPS {
            let shown = path::display(&current);
            match self.entries.get(&current).map(|(_, node)| node) {
                None if hop == 0 => return Ok(None),
                None => {
                    return Err(self.error(
                        Some(&first),
                        format!("it is a link to {shown}, which is not in the archive"),
                    ))
                }
                Some(Node::File(file)) => return Ok(Some(file)),
                Some(Node::Symlink {
                    leads_to: Ok(target),
                    ..
                }) => current = target.clone(),
                Some(Node::Symlink {
                    leads_to: Err(why), ..
                })
                | Some(Node::Other(why)) => {
                    let message = if hop == 0 {
                        format!("it {why}")
                    } else {
                        format!("it leads to {shown}, which {why}")
                    };
                    return Err(self.error(Some(&first), message));
                }
                Some(Node::Dir) => {
                    return Err(self.error(
                        Some(&first),
                        format!("{shown} is a directory, not a regular file"),
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
        match &entry.data {
            Data::Cached(bytes) => return Ok(Box::new(&bytes[..])),
            Data::Staged(staged) => return open_local(staged.path()),
            Data::Elsewhere(path) => return open_local(path),
            Data::Dropped => {
                return Err(self.error(None, "a file of it was not kept when it streamed past"))
            }
            Data::InArchive => {}
        }
        let file = match (self.compression, &self.file) {
            (Compression::None, Some(file)) => file,
            (Compression::Gzip | Compression::Zstd, Some(_)) => self.spool()?,
            (_, None) => {
                return Err(self.error(None, "it was read as a stream and cannot be read again"))
            }
        };
        Ok(Box::new(BufReader::with_capacity(
            64 * 1024,
            RangeReader::new(file, entry.offset, entry.size),
        )))
    }

    /// Whether the archive has a file (or a link to one) named `name`, relative to its root.
    pub fn has_file(&self, name: &str) -> Result<bool> {
        Ok(self.resolve(name)?.is_some())
    }

    /// A stream of the file `name` (relative to the root, links followed), and its length.
    pub fn open_file(&self, name: &str) -> Result<(u64, Box<dyn Read + Send + '_>)> {
        let entry = self.resolve(name)?.ok_or_else(|| {
            self.error(Some(&self.full_name(name)), "the archive has no such file")
        })?;
        Ok((entry.size, self.open_entry(entry)?))
    }

    /// The file `name` as staged while the archive streamed past, if it was.
    pub fn staged_file(&self, name: &str) -> Result<Option<&Staged>> {
        Ok(match self.resolve(name)? {
            Some(FileEntry {
                data: Data::Staged(staged),
                ..
            }) => Some(staged),
            _ => None,
        })
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
        let Some(source) = &self.file else {
            return Err(self.error(None, "it was read as a stream and cannot be read again"));
        };
        let len = source
            .metadata()
            .map_err(|e| Error::io("cannot read", &self.path, e))?
            .len();
        let mut decoder = decode::decompress(
            RangeReader::new(source, 0, len),
            self.compression,
            &self.limits,
        )?;
        let mut out = BufWriter::with_capacity(256 * 1024, temp);
        let copied = io::copy(&mut (&mut decoder).take(self.tar_end), &mut out).map_err(|e| {
            if e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded {
                Error::io(
                    "cannot write the decompressed archive to a temp file for",
                    &self.path,
                    e,
                )
            } else {
                stream_error(&self.path, self.compression, None, e)
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

    /// A blob staged while the archive streamed past is a file of its own, when it hashed to
    /// its name (one that did not is read, and refused, through the verifying reader); so is
    /// one the stage found elsewhere.
    fn local_blob(&self, digest: &Digest) -> Result<Option<PathBuf>> {
        Ok(match self.resolve(&blob_name(digest))? {
            Some(FileEntry {
                data: Data::Staged(staged),
                ..
            }) if &staged.digest == digest => Some(staged.path().to_path_buf()),
            Some(FileEntry {
                data: Data::Elsewhere(path),
                ..
            }) => Some(path.clone()),
            _ => None,
        })
    }

    fn files(&self) -> Result<Vec<FileInfo>> {
        let mut files = Vec::new();
        for (name, (_, node)) in &self.entries {
            let Some(path) = std::str::from_utf8(name)
                .ok()
                .and_then(|n| n.strip_prefix(&self.root))
            else {
                continue;
            };
            if path.is_empty() {
                continue;
            }
            let (kind, len) = match node {
                Node::File(f) => (FileKind::Regular, f.size),
                // A link that leads to a file in the archive reads as that file (Docker 25+
                // archives link blobs); one that does not is reported as a symlink.
                Node::Symlink { .. } => match self.resolve(path) {
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

    fn ambiguities(&self) -> &[Ambiguity] {
        &self.ambiguities
    }

    fn outside_root(&self) -> Vec<String> {
        let root_dir = self.root.trim_end_matches('/').as_bytes();
        let mut outside: Vec<String> = self
            .entries
            .keys()
            .filter(|name| !name.starts_with(self.root.as_bytes()) && name.as_slice() != root_dir)
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        outside.sort();
        outside
    }
}

/// A file of its own, for reading.
fn open_local(path: &Path) -> Result<Box<dyn Read + Send + 'static>> {
    let file = crate::store::layout::open_regular_file(path)?;
    Ok(Box::new(BufReader::with_capacity(256 * 1024, file)))
}

/// The error refusing an archive with entries tar readers read differently.
fn ambiguous(path: &Path, all: &[Ambiguity], unlisted: usize) -> Error {
    let mut message = format!(
        "tar readers disagree about what it holds, so ocikit does not read it: {}",
        all.iter()
            .take(AMBIGUITIES_SHOWN)
            .map(|a| a.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let more = (all.len() + unlisted).saturating_sub(AMBIGUITIES_SHOWN);
    if more > 0 {
        message.push_str(&format!(" (and {more} more such entries)"));
    }
    let entry = all
        .first()
        .map(|a| a.entry.as_str())
        .filter(|e| !e.is_empty());
    archive_error(path, entry, message)
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

/// The error for a failure of the stream underneath the tar: a decompression limit, a corrupt
/// or truncated compressed stream, or an I/O error.
fn stream_error(path: &Path, compression: Compression, entry: Option<&str>, e: io::Error) -> Error {
    if let Some(exceeded) = LimitExceeded::in_io(&e) {
        let what = match entry {
            Some(entry) => format!("archive {}, entry {entry}", path.display()),
            None => format!("archive {}", path.display()),
        };
        return Error::DecompressionLimit {
            what,
            source: exceeded.clone(),
        };
    }
    let message = match compression {
        Compression::None => format!("cannot read it: {e}"),
        c => format!("the {} stream is corrupt or truncated: {e}", c.name()),
    };
    archive_error(path, entry, message)
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

/// A plain tar file as the tar reader's input: headers are read with positioned reads of a
/// small buffer, and data is passed over by moving the position, so opening reads only the
/// headers.
struct PreadInput<'a> {
    file: &'a File,
    /// The file position of the end of `buf`'s valid bytes.
    pos: u64,
    len: u64,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<'a> PreadInput<'a> {
    fn new(file: &'a File, len: u64) -> Self {
        PreadInput {
            file,
            pos: 0,
            len,
            buf: vec![0u8; 8 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }
}

impl Read for PreadInput<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for PreadInput<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end && self.pos < self.len {
            let want = (self.buf.len() as u64).min(self.len - self.pos) as usize;
            let n = loop {
                match self.file.read_at(&mut self.buf[..want], self.pos) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            self.pos += n as u64;
            self.start = 0;
            self.end = n;
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, amount: usize) {
        self.start = (self.start + amount).min(self.end);
    }
}

impl tar::Input for PreadInput<'_> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let buffered = ((self.end - self.start) as u64).min(n);
        self.start += buffered as usize;
        let rest = (n - buffered).min(self.len - self.pos);
        self.pos += rest;
        Ok(buffered + rest)
    }
}

/// What the first pass found.
#[derive(Default)]
struct Scan {
    /// Every name's latest entry, and its position in the archive (1 for the first entry).
    entries: HashMap<Vec<u8>, (usize, Node)>,
    /// Hashes ([`name_key`]) of every directory the names so far imply, and of directory
    /// entries: kept as 16 bytes each, whatever the names' lengths.
    dirs: HashSet<u128>,
    /// Hashes of every name whose latest entry is not a directory.
    non_dirs: HashSet<u128>,
    /// Names some hard link was made to, with the link's (normalized) name and position.
    linked: HashMap<Vec<u8>, (Vec<u8>, usize)>,
    /// Names whose latest entry is a symlink or a hard link, and what it links to.
    links: HashMap<Vec<u8>, String>,
    /// Bytes of the names in `entries`.
    name_bytes: usize,
    tar_end: u64,
    count: usize,
    ambiguities: Vec<Ambiguity>,
    /// Ambiguities found beyond the first [`MAX_AMBIGUITIES`], which are not kept.
    unlisted: usize,
}

impl Scan {
    /// Notes an ambiguity; past [`MAX_AMBIGUITIES`] it is only counted.
    fn ambiguity(
        &mut self,
        kind: AmbiguityKind,
        path: Option<&str>,
        header: &Header,
        message: String,
    ) {
        if self.ambiguities.len() >= MAX_AMBIGUITIES {
            self.unlisted += 1;
            return;
        }
        self.ambiguities.push(Ambiguity {
            kind,
            path: path.map(str::to_string),
            entry: header.shown(),
            message,
        });
    }
}

/// Indexes a compressed tar in one streaming pass, keeping small files in memory.
fn scan_compressed(
    path: &Path,
    file: &File,
    len: u64,
    compression: Compression,
    limits: &Limits,
    scan: &mut Scan,
) -> Result<()> {
    let decoder = Decoder::new(
        BufReader::with_capacity(256 * 1024, RangeReader::new(file, 0, len)),
        compression,
        limits,
    )
    .map_err(|e| stream_error(path, compression, None, e))?;
    let input = BufReader::with_capacity(256 * 1024, decoder);
    // Small files, and separately the root documents, each within their own budget, so that
    // memory stays bounded whatever the archive holds.
    let mut budget = Budget::new(CACHE_TOTAL_LIMIT);
    let input = scan_tar(path, input, compression, scan, |header, data| {
        let Some(size) = budget.keep(header) else {
            return Ok(Data::InArchive);
        };
        let mut bytes = Vec::with_capacity(size as usize);
        data.read_to_end(&mut bytes)
            .map_err(|e| stream_error(path, compression, Some(&header.shown()), e))?;
        Ok(Data::Cached(Arc::from(bytes)))
    })?;
    drain(path, compression, input)
}

/// Reads a compressed stream to its end after the tar's end-of-archive marker, so that
/// truncation and checksum errors after the last entry are seen now, not on a later read.
fn drain(path: &Path, compression: Compression, mut input: impl Read) -> Result<()> {
    io::copy(&mut input, &mut io::sink()).map_err(|e| stream_error(path, compression, None, e))?;
    Ok(())
}

/// Small files a pass keeps in memory: each up to a limit, within a budget, and the root
/// documents (`oci-layout`, `index.json`) in a budget of their own, so that memory stays
/// bounded whatever the archive holds.
struct Budget {
    files: u64,
    files_limit: u64,
    documents: u64,
}

impl Budget {
    fn new(files_limit: u64) -> Budget {
        Budget {
            files: 0,
            files_limit,
            documents: 0,
        }
    }

    /// Whether to keep the file `header` describes; its size when it is kept.
    fn keep(&mut self, header: &Header) -> Option<u64> {
        let size = header.size;
        let document = is_root_document(&path::normalize(&header.path).clean);
        let (used, limit, total) = if document {
            (
                &mut self.documents,
                MAX_DOCUMENT_SIZE,
                DOCUMENTS_TOTAL_LIMIT,
            )
        } else {
            (&mut self.files, CACHE_ENTRY_LIMIT, self.files_limit)
        };
        if size > limit || *used + size > total {
            return None;
        }
        *used += size;
        Some(size)
    }
}

/// Counts the bytes of a stream as they are read.
struct Counted<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// A reader that keeps its first error, so that a stream's own failure (a truncation, a
/// decompression limit) is reported as such even when it surfaces through a writer.
struct Capture<'a> {
    inner: &'a mut dyn Read,
    failure: Option<io::Error>,
}

impl Read for Capture<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.failure.is_none() {
                self.failure = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// Makes the pass over a tar: every entry goes into `scan`; `take` is given each regular
/// file's data to say where it is kept (it may read it, or leave it to be passed over).
/// Returns the input, positioned after the end-of-archive marker.
fn scan_tar<I: tar::Input>(
    path: &Path,
    input: I,
    compression: Compression,
    scan: &mut Scan,
    mut take: impl FnMut(&Header, &mut dyn Read) -> Result<Data>,
) -> Result<I> {
    let mut reader = tar::Reader::new(input).report_differentials();
    let not_a_tar = |detail: &str| {
        let what = match compression {
            Compression::None => "it is not a tar archive".to_string(),
            c => format!("it is {}-compressed but not a tar archive", c.name()),
        };
        archive_error(path, None, format!("{what} ({detail})"))
    };
    loop {
        let mut entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(TarError::Io(e)) => return Err(stream_error(path, compression, None, e)),
            Err(TarError::Malformed { message, .. }) if scan.count == 0 => {
                return Err(not_a_tar(&format!(
                    "it does not start with a valid tar header: {message}"
                )))
            }
            Err(TarError::Malformed { message, .. }) => {
                return Err(archive_error(path, None, message))
            }
        };
        scan.count += 1;
        let header = entry.header().clone();
        let data = if header.kind == Kind::Regular && !header.sparse {
            take(&header, &mut entry)?
        } else {
            Data::InArchive
        };
        index_entry(scan, &header, data).map_err(|e| archive_error(path, None, e))?;
    }
    if scan.count == 0 {
        return Err(not_a_tar("it holds no entries"));
    }
    if let Some(missing) = reader.end().and_then(tar::End::missing) {
        return Err(archive_error(
            path,
            None,
            format!("the archive is truncated: {missing}"),
        ));
    }
    let marker_end = reader.offset();
    let mut input = reader.into_inner();
    // After the end-of-archive marker, only zeros (the padding to a record): a reader that reads
    // on past zero blocks (`tar -i`) would see any entries there, one that stops would not.
    let trailer = tar::trailer(&mut input).map_err(|e| stream_error(path, compression, None, e))?;
    if let Some(nonzero) = trailer.first_nonzero.map(|n| marker_end + n) {
        let message = format!("the archive has non-zero data at byte {nonzero}, after its end-of-archive marker (which ends at byte {marker_end}): readers that read on past zero blocks (`tar -i`) see entries there that readers stopping at the marker do not");
        scan.ambiguity(AmbiguityKind::Unclear, None, &Header::default(), message);
    }
    Ok(input)
}

/// Adds one entry to the index, as extraction would, noting what readers would read
/// differently.
fn index_entry(scan: &mut Scan, header: &Header, data: Data) -> Result<(), String> {
    let name = path::normalize(&header.path);
    let this = format!("{} (entry {})", quoted(&header.path), scan.count);
    let shown_clean = quoted(&name.clean);
    let unclear = |scan: &mut Scan, message: String| {
        scan.ambiguity(AmbiguityKind::Unclear, name.as_str(), header, message);
    };
    if let Some(differential) = &header.differential {
        unclear(scan, format!("before {this}, {differential}"));
    }
    if name.absolute {
        unclear(scan, format!("{this} has an absolute name: GNU tar and skopeo strip the `/` and use it as {shown_clean}, containerd ignores it"));
    }
    if name.dotdot {
        unclear(scan, format!("{this} has a `..` component: GNU tar refuses or strips it, Go programs clean it (to {shown_clean})"));
    }
    if header.ignored_size != 0 {
        unclear(scan, format!("{this} is a {} that declares {} bytes of data: Go reads none and other readers skip them, so they disagree about every entry after it", header.kind.describe(), header.ignored_size));
    }
    if name.escapes {
        return Ok(()); // it names nothing inside the archive
    }
    if name.clean.len() > MAX_NAME_LEN {
        unclear(scan, format!("{this} has a name of {} bytes, longer than any path a filesystem accepts ({MAX_NAME_LEN} bytes): extracting it fails", name.clean.len()));
        return Ok(());
    }
    let node = match header.kind {
        _ if header.sparse => Node::Other("is a sparse file, which ocikit does not expand".into()),
        Kind::Directory => Node::Dir,
        Kind::Regular => {
            let end = header.data_offset.saturating_add(header.size);
            scan.tar_end = scan.tar_end.max(end);
            Node::File(FileEntry {
                offset: header.data_offset,
                size: header.size,
                data,
            })
        }
        Kind::Symlink if header.link.len() > MAX_NAME_LEN => Node::Other(format!(
            "is a symlink whose target is {} bytes long, longer than any filesystem accepts",
            header.link.len()
        )),
        Kind::Symlink => {
            scan.name_bytes += header.link.len();
            Node::Symlink {
                target: header.link.clone(),
                leads_to: symlink_target(&name.clean, &header.link),
            }
        }
        Kind::HardLink => hard_link(scan, header, &name.clean, &this),
        Kind::Contiguous => Node::Other(
            "is a contiguous file (type 7), which GNU tar extracts but Go programs refuse".into(),
        ),
        Kind::CharDevice | Kind::BlockDevice => {
            Node::Other("is a device, not a regular file".into())
        }
        Kind::Fifo => Node::Other("is a FIFO, not a regular file".into()),
        Kind::Other(_) => Node::Other(format!(
            "is a {}, which readers treat differently",
            header.kind.describe()
        )),
    };
    let is_dir = matches!(node, Node::Dir);
    if name.trailing_slash && !is_dir {
        unclear(scan, format!("{this} is a {} whose name ends in `/`: Go programs clean the name to {shown_clean}, GNU tar cannot create it", header.kind.describe()));
    }
    if name.clean.is_empty() {
        if !is_dir {
            unclear(
                scan,
                format!(
                    "{this} is a {} named like the archive's root",
                    header.kind.describe()
                ),
            );
        }
        return Ok(());
    }

    // Every parent must be a directory: below a file or a symlink, extractors that follow the
    // symlink write elsewhere and the others fail. Keys of the parents are computed in one
    // pass over the name, so a deep name costs no more than its length.
    let clean = &name.clean;
    let mut hasher = sha2::Sha256::new();
    let mut below: Option<Vec<u8>> = None;
    let mut start = 0;
    for (i, &b) in clean.iter().enumerate() {
        if b != b'/' {
            continue;
        }
        hasher.update(&clean[start..i]);
        start = i;
        let key = truncate(hasher.clone().finalize());
        if below.is_none() && scan.non_dirs.contains(&key) && scan.entries.contains_key(&clean[..i])
        {
            below = Some(clean[..i].to_vec());
        }
        scan.dirs.insert(key);
    }
    hasher.update(&clean[start..]);
    let key = truncate(hasher.finalize());
    if let Some(parent) = below {
        let earlier = describe(&scan.entries, &parent);
        unclear(scan, format!("{this} lies below {earlier}, which is not a directory: extractors that follow it write elsewhere, the others fail"));
    }

    // The same name again: extraction keeps the later entry. Two directory entries of the
    // same name agree, and so does a directory entry for a directory the names imply.
    let replaces = match scan.entries.get(clean) {
        Some((_, Node::Dir)) => !is_dir,
        Some(_) => true,
        None => !is_dir && scan.dirs.contains(&key),
    };
    if replaces {
        let earlier = if scan.entries.contains_key(clean) {
            describe(&scan.entries, clean)
        } else {
            format!("the directory {shown_clean} that earlier entries lie in")
        };
        let message = match scan.linked.get(clean) {
            Some((link, ordinal)) => format!("{} (entry {ordinal}) is a hard link to {earlier}, which {this} replaces: tar -x keeps the content the link had when it was made, readers that resolve links by name see the later entry", quoted(link)),
            None => format!("{earlier} and {this} are the same path {shown_clean}: extraction keeps the later one, readers that look names up may find the earlier"),
        };
        scan.ambiguity(AmbiguityKind::Duplicate, name.as_str(), header, message);
    }
    if is_dir {
        scan.dirs.insert(key);
        scan.non_dirs.remove(&key);
    } else {
        scan.non_dirs.insert(key);
    }
    if !scan.entries.contains_key(clean) {
        scan.name_bytes += clean.len();
        if scan.entries.len() >= MAX_ENTRIES || scan.name_bytes > MAX_NAME_BYTES {
            return Err(too_many());
        }
    }
    match header.kind {
        Kind::Symlink | Kind::HardLink => {
            let what = match header.kind {
                Kind::Symlink => "a symlink",
                _ => "a hard link",
            };
            let link = format!("{what} to {}", quoted(&header.link));
            scan.links.insert(name.clean.clone(), link);
        }
        _ => {
            scan.links.remove(&name.clean);
        }
    }
    scan.entries.insert(name.clean, (scan.count, node));
    Ok(())
}

/// Why an archive is too large to index.
fn too_many() -> String {
    format!(
        "it has more entries or directories (or longer names) than ocikit indexes in a layout archive ({MAX_ENTRIES} entries and as many directories, {} of names)",
        compact_size(MAX_NAME_BYTES as u64)
    )
}

/// "entry 3 ("index.json")": an indexed name and where its latest entry is.
fn describe(entries: &HashMap<Vec<u8>, (usize, Node)>, name: &[u8]) -> String {
    let ordinal = entries.get(name).map_or(0, |(n, _)| *n);
    format!("{} (entry {ordinal})", quoted(name))
}

/// 128 bits of a SHA-256: collisions are out of reach, even for an archive built to cause one.
fn truncate(hash: impl AsRef<[u8]>) -> u128 {
    let mut key = [0u8; 16];
    key.copy_from_slice(&hash.as_ref()[..16]);
    u128::from_le_bytes(key)
}

/// A hard link as extraction makes it: the entry its target names at this point of the
/// archive (a later entry of that name does not change it), and a link to a symlink is that
/// symlink placed here.
fn hard_link(scan: &mut Scan, header: &Header, name: &[u8], this: &str) -> Node {
    let target = path::normalize(&header.link);
    let shown = quoted(&header.link);
    if !target.is_plain() || target.clean.is_empty() {
        let message = format!("{this} is a hard link to {shown}, which is not a plain name inside the archive: readers resolve it differently");
        scan.ambiguity(AmbiguityKind::Unclear, None, header, message);
        return Node::Other(format!("is a hard link to {shown}, outside the archive"));
    }
    let node = match scan.entries.get(&target.clean).map(|(_, node)| node) {
        None => {
            return Node::Other(format!(
                "is a hard link to {shown}, which no earlier entry of the archive is: extracting it fails"
            ))
        }
        Some(Node::Dir) => {
            return Node::Other(format!("is a hard link to the directory {shown}"))
        }
        Some(Node::Symlink { target: raw, .. }) => Node::Symlink {
            target: raw.clone(),
            leads_to: symlink_target(name, raw),
        },
        Some(other) => other.clone(),
    };
    scan.linked
        .insert(target.clean, (name.to_vec(), scan.count));
    node
}

/// Where a symlink named `name` (normalized) pointing at `target` leads, or why it cannot be
/// followed.
fn symlink_target(name: &[u8], target: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let shown = quoted(target);
    match path::resolve_symlink(name, target) {
        Some(leads_to) if leads_to.is_empty() => {
            Err(format!("is a symlink to {shown}, the top of the archive"))
        }
        Some(leads_to) => Ok(leads_to),
        None if target.is_empty() => Err("is a symlink without a target".into()),
        None => Err(format!("is a symlink to {shown}, outside the archive")),
    }
}

fn quoted(name: &[u8]) -> String {
    format!("{:?}", path::display(name))
}

/// Files ocikit reads before anything else; a compressed archive's pass always keeps them.
fn is_root_document(normalized: &[u8]) -> bool {
    let depth = normalized.iter().filter(|&&b| b == b'/').count();
    let base = normalized
        .rsplit(|&b| b == b'/')
        .next()
        .unwrap_or(normalized);
    depth <= 1 && (base == b"oci-layout" || base == b"index.json")
}

/// The layout's root inside the archive: `""` when `oci-layout` is at the top, else the one
/// top-level directory holding an `oci-layout`.
fn find_root(path: &Path, entries: &HashMap<Vec<u8>, (usize, Node)>) -> Result<String> {
    if entries.contains_key(&b"oci-layout"[..]) {
        return Ok(String::new());
    }
    let tops: BTreeSet<&str> = entries
        .keys()
        .filter_map(|name| std::str::from_utf8(name).ok())
        .filter_map(|name| name.split_once('/').map(|(top, _)| top))
        .collect();
    let layouts: Vec<&str> = tops
        .iter()
        .copied()
        .filter(|top| entries.contains_key(format!("{top}/oci-layout").as_bytes()))
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
    let docker = entries.contains_key(&b"manifest.json"[..])
        || (tops.len() == 1
            && tops
                .iter()
                .any(|top| entries.contains_key(format!("{top}/manifest.json").as_bytes())));
    if docker {
        return Err(Error::DockerSave {
            path: path.to_path_buf(),
        });
    }
    Err(archive_error(
        path,
        None,
        "it has no oci-layout file, so it is not an OCI image layout archive",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testkit::{header, pax_records, Tar};
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
        tar: &mut ::tar::Builder<Vec<u8>>,
        kind: ::tar::EntryType,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) {
        let mut header = ::tar::Header::new_gnu();
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
        let mut tar = ::tar::Builder::new(Vec::new());
        if !prefix.is_empty() {
            raw_entry(&mut tar, ::tar::EntryType::Directory, prefix, None, b"");
        }
        for (name, bytes) in files {
            raw_entry(
                &mut tar,
                ::tar::EntryType::Regular,
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
        let archive = Archive::open(&path, &Limits::default());
        (dir, archive)
    }

    fn parts(error: Error) -> (Option<String>, String) {
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
        assert!(archive.entries.values().all(|(_, n)| match n {
            Node::File(f) => matches!(f.data, Data::InArchive),
            _ => true,
        }));
        assert_reads_layout(&archive, &fx);
        assert!(!archive.spooled());
    }

    /// Bytes this thread has read with read(2) and pread(2) so far (`rchar`).
    fn thread_reads() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn opening_a_plain_tar_reads_its_headers_only() {
        let fx = fixture(big_bytes(20 * 1024 * 1024));
        let (dir, _) = open_bytes("layout.tar", &tar_of(&fx.files, ""));
        let before = thread_reads();
        let archive = Archive::open(&dir.path().join("layout.tar"), &Limits::default()).unwrap();
        archive.index().unwrap();
        let read = thread_reads() - before;
        assert!(read < 64 * 1024, "opening read {read} bytes");
        assert_eq!(read_blob(&archive, &fx.layer), fx.layer_bytes);
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
        let (_, message) = parts(archive.unwrap_err());
        assert!(message.contains("several layouts (a/, b/)"), "{message}");
    }

    #[test]
    fn hard_links_and_relative_symlinks_resolve_to_entries_inside_the_archive() {
        let fx = fixture(b"layer".to_vec());
        let mut files = fx.files.clone();
        let layer_name = blob_name(&fx.layer);
        let manifest_name = blob_name(&fx.manifest);
        files.retain(|(n, _)| *n != layer_name && *n != manifest_name);
        let mut tar = ::tar::Builder::new(Vec::new());
        for (name, bytes) in &files {
            raw_entry(
                &mut tar,
                ::tar::EntryType::Regular,
                &format!("./{name}"),
                None,
                bytes,
            );
        }
        // Docker 25+ style: the real file elsewhere, the blob a link to it.
        raw_entry(
            &mut tar,
            ::tar::EntryType::Regular,
            "./layers/abc/layer.tar",
            None,
            &fx.layer_bytes,
        );
        raw_entry(
            &mut tar,
            ::tar::EntryType::Link,
            &format!("./{layer_name}"),
            Some("./layers/abc/layer.tar"),
            b"",
        );
        raw_entry(
            &mut tar,
            ::tar::EntryType::Regular,
            "docs/manifest",
            None,
            &fx.manifest_bytes,
        );
        raw_entry(
            &mut tar,
            ::tar::EntryType::Symlink,
            "docs/alias",
            Some("./manifest"),
            b"",
        );
        raw_entry(
            &mut tar,
            ::tar::EntryType::Symlink,
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
                ::tar::EntryType::Symlink,
                "../../../etc/passwd",
                "outside the archive",
            ),
            (
                ::tar::EntryType::Symlink,
                "/etc/passwd",
                "outside the archive",
            ),
            (
                ::tar::EntryType::Link,
                "blobs/sha256/later",
                "no earlier entry",
            ),
            (
                ::tar::EntryType::Symlink,
                "nothing-here",
                "not in the archive",
            ),
            (::tar::EntryType::Symlink, "loop", "a loop"),
        ] {
            let mut tar = ::tar::Builder::new(Vec::new());
            for (name, bytes) in &files {
                raw_entry(&mut tar, ::tar::EntryType::Regular, name, None, bytes);
            }
            raw_entry(&mut tar, kind, &layer_name, Some(target), b"");
            raw_entry(
                &mut tar,
                ::tar::EntryType::Symlink,
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
            let (entry, message) = parts(error);
            assert_eq!(entry.as_deref(), Some(layer_name.as_str()));
            assert!(message.contains(expected), "{target}: {message}");
            assert!(archive.blob_len(&fx.layer).is_err());
        }
    }

    #[test]
    fn entries_with_absolute_paths_or_dot_dot_are_refused_and_read_as_extraction_would() {
        let fx = fixture(b"layer".to_vec());
        let mut tar = ::tar::Builder::new(Vec::new());
        for (name, bytes) in &fx.files {
            let name = if name == "oci-layout" {
                "x/../oci-layout".to_string()
            } else {
                format!("/{name}")
            };
            raw_entry(&mut tar, ::tar::EntryType::Regular, &name, None, bytes);
        }
        raw_entry(
            &mut tar,
            ::tar::EntryType::Link,
            "hl",
            Some("../etc/passwd"),
            b"",
        );
        let bytes = tar.into_inner().unwrap();
        let (dir, archive) = open_bytes("evil.tar", &bytes);
        let (entry, message) = parts(archive.unwrap_err());
        assert_eq!(entry.as_deref(), Some("x/../oci-layout"));
        assert!(message.contains("tar readers disagree"), "{message}");
        assert!(message.contains("`..` component"), "{message}");
        assert!(message.contains("absolute name"), "{message}");
        assert!(message.contains("and 3 more"), "{message}");
        // validate reads it as GNU tar and skopeo extract it, and reports every entry.
        let archive =
            Archive::open_unchecked(&dir.path().join("evil.tar"), &Limits::default()).unwrap();
        assert_reads_layout(&archive, &fx);
        let unclear = archive
            .ambiguities()
            .iter()
            .filter(|a| a.kind == AmbiguityKind::Unclear)
            .count();
        assert_eq!(unclear, 6, "{:#?}", archive.ambiguities());
        assert!(archive
            .ambiguities()
            .iter()
            .any(|a| a.entry == "hl" && a.message.contains("not a plain name")));
    }

    /// A layout's files as hand-built tar entries (no end-of-archive marker yet).
    fn kit_tar(fx: &Fixture) -> Tar {
        fx.files
            .iter()
            .fold(Tar::default(), |tar, (name, bytes)| tar.file(name, bytes))
    }

    /// The layout's files but `index.json`, as hand-built tar entries.
    fn without_index(fx: &Fixture) -> Tar {
        fx.files
            .iter()
            .filter(|(n, _)| n != "index.json")
            .fold(Tar::default(), |tar, (name, bytes)| tar.file(name, bytes))
    }

    fn other_index(fx: &Fixture) -> Vec<u8> {
        let index = std::str::from_utf8(&fx.files[1].1).unwrap();
        index.replace("\"v1\"", "\"v2\"").into_bytes()
    }

    fn open_both(bytes: &[u8]) -> (tempfile::TempDir, Result<Archive>, Archive) {
        let (dir, strict) = open_bytes("x.tar", bytes);
        let unchecked = Archive::open_unchecked(&dir.path().join("x.tar"), &Limits::default())
            .expect("validate opens it");
        (dir, strict, unchecked)
    }

    #[test]
    fn a_global_header_gnu_tar_applies_and_entries_after_the_end_are_differentials() {
        let fx = fixture(b"layer".to_vec());
        // A global size=0 before index.json: refused; validate lists it on index.json.
        let tar = without_index(&fx)
            .global(&[("size", "0")])
            .file("index.json", &fx.files[1].1)
            .end();
        let (_dir, strict, unchecked) = open_both(&tar);
        let (entry, message) = parts(strict.unwrap_err());
        assert_eq!(entry.as_deref(), Some("index.json"));
        assert!(message.contains("tar readers disagree"), "{message}");
        assert!(message.contains("global header at byte"), "{message}");
        assert!(message.contains("sets size"), "{message}");
        assert_eq!(unchecked.ambiguities().len(), 1);
        assert_eq!(unchecked.ambiguities()[0].entry, "index.json");
        // A comment (as `git archive` writes) changes nothing.
        let tar = Tar::default()
            .global(&[("comment", "0123abcd")])
            .0
            .into_iter()
            .chain(kit_tar(&fx).end())
            .collect::<Vec<u8>>();
        assert_reads_layout(&open_bytes("x.tar", &tar).1.unwrap(), &fx);
        // A second index.json after the end-of-archive marker (`tar -i` reads it).
        let mut tar = kit_tar(&fx).end();
        tar.extend(Tar::default().file("index.json", &other_index(&fx)).end());
        let (_dir, strict, unchecked) = open_both(&tar);
        let (entry, message) = parts(strict.unwrap_err());
        assert_eq!(entry, None);
        assert!(
            message.contains("non-zero data at byte") && message.contains("`tar -i`"),
            "{message}"
        );
        assert_reads_layout(&unchecked, &fx);
        assert_eq!(unchecked.ambiguities().len(), 1);
    }

    #[test]
    fn a_hard_link_to_an_entry_replaced_later_is_refused_and_keeps_its_content_at_link_time() {
        let fx = fixture(b"layer".to_vec());
        let index = fx.files[1].1.clone();
        let other = other_index(&fx);
        let tar = without_index(&fx)
            .file("spare/index", &index)
            .node("index.json", b'1', "spare/index")
            .file("spare/index", &other)
            .end();
        let (_dir, strict, unchecked) = open_both(&tar);
        let (entry, message) = parts(strict.unwrap_err());
        assert_eq!(entry.as_deref(), Some("spare/index"));
        assert!(message.contains("\"index.json\" (entry 6) is a hard link to \"spare/index\" (entry 5), which \"spare/index\" (entry 7) replaces"), "{message}");
        // As tar -x: the link keeps what spare/index was when the link was made.
        assert_eq!(unchecked.index_bytes().unwrap(), index);
        assert_eq!(unchecked.ambiguities().len(), 1);
        assert_eq!(unchecked.ambiguities()[0].kind, AmbiguityKind::Duplicate);
    }

    #[test]
    fn a_hard_link_chain_keeps_the_first_content() {
        let fx = fixture(b"layer".to_vec());
        let index = fx.files[1].1.clone();
        let tar = without_index(&fx)
            .file("a", &index)
            .node("b", b'1', "a")
            .node("index.json", b'1', "./b")
            .file("a", &other_index(&fx))
            .end();
        let (_dir, strict, unchecked) = open_both(&tar);
        let (_, message) = parts(strict.unwrap_err());
        assert!(message.contains("is a hard link to \"a\""), "{message}");
        assert_eq!(unchecked.index_bytes().unwrap(), index);
        // Without the replacement the chain is fine, and read through.
        let tar = without_index(&fx)
            .file("a", &index)
            .node("b", b'1', "a")
            .node("index.json", b'1', "./b")
            .end();
        let (_dir, strict, _) = open_both(&tar);
        assert_reads_layout(&strict.unwrap(), &fx);
    }

    #[test]
    fn an_absolute_index_json_after_a_relative_one_is_refused_and_read_as_gnu_tar_extracts() {
        let fx = fixture(b"layer".to_vec());
        let other = other_index(&fx);
        let tar = kit_tar(&fx).file("/index.json", &other).end();
        let (_dir, strict, unchecked) = open_both(&tar);
        let (entry, message) = parts(strict.unwrap_err());
        assert_eq!(entry.as_deref(), Some("/index.json"));
        assert!(
            message.contains("\"/index.json\" (entry 6) has an absolute name"),
            "{message}"
        );
        assert!(
            message.contains(
                "\"index.json\" (entry 2) and \"/index.json\" (entry 6) are the same path"
            ),
            "{message}"
        );
        assert_eq!(unchecked.index_bytes().unwrap(), other);
        let kinds: Vec<_> = unchecked.ambiguities().iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [AmbiguityKind::Unclear, AmbiguityKind::Duplicate]);
        assert!(unchecked
            .ambiguities()
            .iter()
            .all(|a| a.path.as_deref() == Some("index.json")));
    }

    #[test]
    fn dot_slash_and_plain_names_of_the_same_file_are_duplicates() {
        let fx = fixture(b"layer".to_vec());
        let tar = kit_tar(&fx).file("./index.json", &other_index(&fx)).end();
        let (_dir, strict, unchecked) = open_both(&tar);
        let (_, message) = parts(strict.unwrap_err());
        assert!(message.contains("same path \"index.json\""), "{message}");
        assert_eq!(unchecked.index_bytes().unwrap(), other_index(&fx));
        // A directory listed twice, or after what lies in it, is not a duplicate.
        let tar = kit_tar(&fx)
            .node("blobs/", b'5', "")
            .node("./blobs", b'5', "")
            .end();
        assert_reads_layout(&open_both(&tar).1.unwrap(), &fx);
        // A file where earlier entries had a directory is.
        let tar = kit_tar(&fx).file("blobs/sha256", b"x").end();
        let (_, message) = parts(open_both(&tar).1.unwrap_err());
        assert!(
            message.contains("the directory \"blobs/sha256\" that earlier entries lie in"),
            "{message}"
        );
    }

    #[test]
    fn a_symlinked_index_json_reads_its_target_as_it_ends_up() {
        let fx = fixture(b"layer".to_vec());
        let index = fx.files[1].1.clone();
        let base = without_index(&fx);
        // A symlink is followed when read, so it sees the last entry of its target's name.
        let tar = Tar(base.0.clone())
            .node("index.json", b'2', "docs/index")
            .file("docs/index", &index)
            .end();
        let (_dir, strict, _) = open_both(&tar);
        assert_reads_layout(&strict.unwrap(), &fx);
        let tar = Tar(base.0.clone())
            .file("docs/index", &other_index(&fx))
            .node("index.json", b'2', "docs/index")
            .file("docs/index", &index)
            .end();
        let (_dir, strict, unchecked) = open_both(&tar);
        assert!(strict.is_err());
        assert_eq!(unchecked.index_bytes().unwrap(), index);
        // A hard link to a symlink is that symlink at the link's place: relative to another
        // directory, it leads elsewhere.
        let tar = Tar(base.0.clone())
            .file("docs/index", &index)
            .node("docs/link", b'2', "index")
            .node("index.json", b'1', "docs/link")
            .end();
        let (_dir, strict, _) = open_both(&tar);
        let archive = strict.unwrap();
        let (entry, message) = parts(archive.index_bytes().unwrap_err());
        assert_eq!(entry.as_deref(), Some("index.json"));
        assert!(
            message.contains("link to index, which is not in the archive"),
            "{message}"
        );
        // A path through a symlink of the archive is refused.
        let tar = Tar(base.0)
            .node("docs", b'2', "blobs")
            .file("docs/x", b"x")
            .file("index.json", &index)
            .end();
        let (_, message) = parts(open_both(&tar).1.unwrap_err());
        assert!(
            message.contains("lies below \"docs\" (entry 5), which is not a directory"),
            "{message}"
        );
    }

    #[test]
    fn links_and_directories_that_declare_data_are_refused() {
        let fx = fixture(b"layer".to_vec());
        let tar = kit_tar(&fx).raw(header(b"d/", b'5', 512, b""), b"").end();
        let (_, message) = parts(open_both(&tar).1.unwrap_err());
        assert!(message.contains("declares 512 bytes of data"), "{message}");
        let tar = kit_tar(&fx).file("odd/", b"x").end();
        let (_, message) = parts(open_both(&tar).1.unwrap_err());
        assert!(message.contains("whose name ends in `/`"), "{message}");
    }

    #[test]
    fn a_tar_cut_on_a_block_boundary_or_in_padding_is_truncated() {
        let fx = fixture(b"layer".to_vec());
        let unmarked = kit_tar(&fx).0;
        let last = fx.files.last().unwrap();
        for (bytes, expected) in [
            (unmarked.clone(), "ends between two entries without the end-of-archive marker".to_string()),
            (unmarked[..unmarked.len() - 100].to_vec(), format!("ends inside the padding after the data of {}: all {} bytes of its data are present, but 100 padding bytes", last.0, last.1.len())),
        ] {
            for (name, bytes) in [("cut.tar", bytes.clone()), ("cut.tar.gz", gzip(&bytes)), ("cut.tar.zst", zstd(&bytes))] {
                let (_dir, archive) = open_bytes(name, &bytes);
                let (_, message) = parts(archive.unwrap_err());
                assert!(message.contains("the archive is truncated"), "{name}: {message}");
                assert!(message.contains(&expected), "{name}: {message}");
            }
        }
        // One zero block is an end (Go and GNU tar read it so).
        let mut one = unmarked;
        one.extend([0u8; 512]);
        assert_reads_layout(&open_bytes("one.tar", &one).1.unwrap(), &fx);
    }

    #[test]
    fn compressed_archives_are_decompressed_under_the_limits() {
        let fx = fixture(vec![0u8; 8 << 20]);
        let tar = tar_of(&fx.files, "");
        let limits = Limits::default()
            .with_ratio_grace(1 << 20)
            .with_max_ratio(100);
        for bytes in [gzip(&tar), zstd(&tar)] {
            let dir = tempfile::tempdir().unwrap();
            let path = write(&dir, "bomb.tar.zst", &bytes);
            let error = Archive::open(&path, &limits).unwrap_err();
            let Error::DecompressionLimit { what, source } = &error else {
                panic!("{error:?}");
            };
            assert_eq!(what, &format!("archive {}", path.display()));
            assert_eq!(source.limit, crate::error::Limit::Ratio);
            assert!(
                source.uncompressed < 8 << 20,
                "it stopped early: {source:?}"
            );
            // Under the defaults it opens, and the spool honours the limits too.
            let archive = Archive::open(&path, &Limits::default()).unwrap();
            assert_eq!(read_blob(&archive, &fx.layer).len(), 8 << 20);
        }
    }

    #[test]
    fn ambiguities_past_a_hundred_are_counted_not_kept() {
        let fx = fixture(b"layer".to_vec());
        let mut tar = kit_tar(&fx);
        for _ in 0..150 {
            tar = tar.file("./oci-layout", &fx.files[0].1);
        }
        let (_dir, strict, unchecked) = open_both(&tar.end());
        let (_, message) = parts(strict.unwrap_err());
        assert!(
            message.ends_with("(and 147 more such entries)"),
            "{message}"
        );
        let all = unchecked.ambiguities();
        assert_eq!(all.len(), MAX_AMBIGUITIES + 1);
        let last = all.last().unwrap();
        assert!(
            last.entry.is_empty() && last.message.starts_with("50 more entries"),
            "{last:?}"
        );
    }

    #[test]
    fn long_names_and_targets_are_shown_cut_and_not_indexed() {
        let fx = fixture(b"layer".to_vec());
        let long = "d/".repeat(3000);
        let tar = kit_tar(&fx)
            .pax(&[("path", &long)])
            .file("ignored", b"x")
            .pax(&[("linkpath", &"t".repeat(5000))])
            .node("far", b'2', "x")
            .end();
        let (_dir, strict, unchecked) = open_both(&tar);
        let (_, message) = parts(strict.unwrap_err());
        assert!(message.contains("has a name of 5999 bytes"), "{message}");
        assert!(
            message.len() < 2500,
            "the name is shown cut: {}",
            message.len()
        );
        assert_eq!(unchecked.ambiguities().len(), 1);
        assert!(!unchecked.entries.keys().any(|k| k.len() > MAX_NAME_LEN));
        assert!(matches!(
            unchecked.entries.get(&b"far"[..]),
            Some((_, Node::Other(_)))
        ));
    }

    #[test]
    fn hostile_headers_are_refused_without_allocating_them() {
        // A GNU long name claiming 1 GiB: refused from its size field, nothing read.
        let mut tar = Tar::default()
            .raw(header(b"././@LongLink", b'L', 1 << 30, b""), b"")
            .0;
        tar.truncate(512);
        let (_, message) = parts(open_bytes("long.tar", &tar).1.unwrap_err());
        assert!(
            message.contains("larger than the 1048576 bytes"),
            "{message}"
        );
        let data = pax_records(&[("path", &"p".repeat(2 << 20))]);
        let tar = Tar::default()
            .raw(header(b"p", b'x', data.len() as u64, b""), &data)
            .file("a", b"")
            .end();
        let (_, message) = parts(open_bytes("pax.tar", &tar).1.unwrap_err());
        assert!(message.contains("PAX header"), "{message}");
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
            let (_, message) = parts(archive.unwrap_err());
            assert!(message.contains("truncated"), "{message}");
        }
        for (name, bytes) in [("cut.tgz", gzip(&tar)), ("cut.tar.zst", zstd(&tar))] {
            let keep = bytes.len() * 2 / 3;
            let (_dir, archive) = open_bytes(name, &cut(bytes, keep));
            let (_, message) = parts(archive.unwrap_err());
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
            let (_, message) = parts(archive.unwrap_err());
            assert!(
                message.contains("not a tar") || message.contains("gzip stream is corrupt"),
                "{name}: {message}"
            );
        }
        let (_dir, archive) = open_bytes("x.tar.xz", &[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2]);
        assert!(parts(archive.unwrap_err()).1.contains("xz-compressed"));
    }

    #[test]
    fn a_docker_save_archive_without_oci_layout_says_what_it_is() {
        let files = vec![
            (
                "manifest.json".to_string(),
                br#"[{"Config":"abc.json","RepoTags":["x:1"],"Layers":["abc/layer.tar"]}]"#
                    .to_vec(),
            ),
            ("abc.json".to_string(), CONFIG.to_vec()),
            ("abc/layer.tar".to_string(), b"layer".to_vec()),
        ];
        let (dir, archive) = open_bytes("docker.tar", &tar_of(&files, ""));
        let error = archive.unwrap_err();
        assert!(matches!(error, Error::DockerSave { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("docker save"), "{message}");
        assert!(!message.contains("ocikit"), "no command named: {message}");
        // Opened as any tar, its files are read by name.
        let archive =
            Archive::open_tar(&dir.path().join("docker.tar"), &Limits::default()).unwrap();
        assert!(archive.has_file("manifest.json").unwrap());
        assert!(!archive.has_file("oci-layout").unwrap());
        let (len, mut layer) = archive.open_file("abc/layer.tar").unwrap();
        let mut bytes = Vec::new();
        layer.read_to_end(&mut bytes).unwrap();
        assert_eq!((len, bytes), (5, b"layer".to_vec()));
    }

    /// A stage that keeps every file it is offered in a temp directory (hashed, as an import
    /// stages blobs), or none.
    struct TestStage {
        layout: crate::store::layout::Layout,
        keep: bool,
        offered: Mutex<Vec<String>>,
    }

    impl Stage for TestStage {
        fn stage(&self, name: &str, _size: u64, data: &mut dyn Read) -> Result<Option<Kept>> {
            self.offered.lock().unwrap().push(name.to_string());
            if !self.keep {
                return Ok(None);
            }
            let writer = self.layout.writer()?;
            writer
                .stage(data, crate::spec::digest::Algorithm::Sha256)
                .map(|staged| Some(Kept::Staged(staged)))
        }
    }

    /// `bytes` read as a stream through `stage`.
    fn stream(bytes: &[u8], stage: &TestStage) -> Result<Archive> {
        Archive::read_stream(
            bytes,
            "-",
            &Limits::default(),
            stage,
            &crate::progress::NoProgress,
        )
    }

    fn test_stage(keep: bool) -> (tempfile::TempDir, TestStage) {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = crate::store::layout::Layout::init(&dir.path().join("l")).unwrap();
        let stage = TestStage {
            layout,
            keep,
            offered: Mutex::new(Vec::new()),
        };
        (dir, stage)
    }

    #[test]
    fn a_stream_is_read_once_small_files_kept_large_ones_staged_or_dropped() {
        let fx = fixture(big_bytes(3 * 1024 * 1024));
        for (name, bytes) in [
            ("plain", tar_of(&fx.files, "")),
            ("gzip", gzip(&tar_of(&fx.files, "top/"))),
        ] {
            let (_dir, stage) = test_stage(true);
            let archive = stream(&bytes[..], &stage).unwrap();
            assert_reads_layout(&archive, &fx);
            archive.check_oci_layout().unwrap();
            let offered = stage.offered.lock().unwrap().clone();
            assert_eq!(
                offered.len(),
                1,
                "{name}: only the layer is large: {offered:?}"
            );
            let local = archive.local_blob(&fx.layer).unwrap().unwrap();
            assert_eq!(std::fs::read(&local).unwrap(), fx.layer_bytes, "{name}");
            drop(archive);
            assert!(
                !local.exists(),
                "{name}: a staged file goes with the archive"
            );

            // Dropped files cannot be read, and say why.
            let (_dir, stage) = test_stage(false);
            let archive = stream(&bytes[..], &stage).unwrap();
            let error = archive.open_blob(&fx.layer, None).err().unwrap();
            assert!(error.to_string().contains("not kept"), "{error}");
            assert_eq!(read_blob(&archive, &fx.manifest), fx.manifest_bytes);
        }
    }

    #[test]
    fn a_stream_is_refused_as_a_file_is() {
        let fx = fixture(b"layer".to_vec());
        let mut tar = ::tar::Builder::new(Vec::new());
        for (name, bytes) in &fx.files {
            raw_entry(&mut tar, ::tar::EntryType::Regular, name, None, bytes);
        }
        raw_entry(
            &mut tar,
            ::tar::EntryType::Regular,
            "./index.json",
            None,
            b"{}",
        );
        let duplicated = tar.into_inner().unwrap();
        let (_dir, stage) = test_stage(true);
        let error = stream(&duplicated[..], &stage).unwrap_err();
        assert!(
            error.to_string().contains("tar readers disagree"),
            "{error}"
        );
        // Cut short: truncated.
        let plain = tar_of(&fx.files, "");
        let cut = &plain[..plain.len() - 1024];
        let error = stream(cut, &stage).unwrap_err();
        assert!(error.to_string().contains("truncated"), "{error}");
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
        let (entry, message) = parts(archive.unwrap_err());
        assert_eq!(entry.as_deref(), Some("oci-layout"));
        assert!(message.contains("2.0.0"), "{message}");
    }
}
