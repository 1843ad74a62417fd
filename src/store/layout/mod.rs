//! OCI image layouts on disk: the blob store, `index.json`, locks, and the read interface shared
//! with layout archives.

mod copy;
pub mod index;
pub mod lock;
pub(crate) mod syncing;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

pub use copy::{Link, Placed};

use crate::error::{Error, IoContext, Result};
use crate::spec::digest::{Algorithm, Digest, HashingWriter, Mismatch, VerifyingReader};
use crate::spec::document::{parse_document, Descriptor, Schema};
pub use index::IndexFile;
use lock::{LockGuard, Mode};

/// The version ocikit writes in `oci-layout`.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// The content of `oci-layout` that ocikit writes, in a directory or an archive.
pub fn layout_header() -> String {
    format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#)
}
/// Prefix of the temp files ocikit writes inside a layout (removed by `gc` after a crash).
pub const TEMP_PREFIX: &str = ".ocikit-tmp-";

/// The largest document (manifest, index, config) ocikit reads into memory. Four times the
/// 4 MiB manifest limit, so oversize documents can still be inspected and reported.
pub const MAX_DOCUMENT_SIZE: u64 = 16 * 1024 * 1024;

/// Read access to a layout, whether a directory or an archive.
pub trait LayoutRead: Send + Sync {
    /// How the layout is named in messages (its path).
    fn name(&self) -> String;

    /// The bytes of `index.json`.
    fn index_bytes(&self) -> Result<Vec<u8>>;

    /// An unverified stream of the blob's bytes.
    fn open_blob_raw(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>>;

    /// The blob's stored length, or `None` when the blob is absent.
    fn blob_len(&self, digest: &Digest) -> Result<Option<u64>>;

    /// Every file and directory of the layout, with paths relative to its root ('/'-separated),
    /// sorted. Symlinks are listed as such, never followed.
    fn files(&self) -> Result<Vec<FileInfo>>;

    /// A file at the layout's root (`oci-layout`, `index.json`), or `None` when it is absent.
    /// Larger than `limit` is an error.
    fn root_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>>;

    /// What readers read differently in this layout's bytes (an archive's duplicate or unclear
    /// entry names), for `validate` to report. Only a layout opened unchecked has any: every
    /// other opening refuses them. None for a directory.
    fn ambiguities(&self) -> &[Ambiguity] {
        &[]
    }

    /// The entries of an archive that lie outside the layout's root (a layout archived
    /// inside one top-level directory, beside other entries), by their names in the archive,
    /// sorted; the root's own directory entry aside. None for a directory.
    fn outside_root(&self) -> Vec<String> {
        Vec::new()
    }

    /// The blob as a file of its own on this host, which a destination on the same file system
    /// can link instead of copying ([`LayoutWriter::copy_blob`]): a layout's blob file, or a
    /// blob an import staged (and hashed). `None` when the blob lives inside something else
    /// (an archive read in place), or is known not to match its digest. Whether the file is
    /// there is not checked here.
    fn local_blob(&self, _digest: &Digest) -> Result<Option<PathBuf>> {
        Ok(None)
    }

    /// The parsed `index.json`.
    fn index(&self) -> Result<IndexFile> {
        IndexFile::parse(&self.index_bytes()?, &format!("{}/index.json", self.name()))
    }

    /// A stream of the blob that fails if its bytes do not match `digest` (and `size` if given).
    fn open_blob(&self, digest: &Digest, size: Option<u64>) -> Result<VerifiedBlob<'_>> {
        let raw = self.open_blob_raw(digest)?;
        Ok(VerifiedBlob {
            inner: VerifyingReader::new(raw, digest.clone(), size),
            digest: digest.clone(),
            layout: self.name(),
        })
    }

    /// Reads a whole, verified document blob into memory (refusing anything over
    /// [`MAX_DOCUMENT_SIZE`]).
    fn read_document(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        self.read_blob_limited(&descriptor.digest, Some(descriptor.size))
    }

    /// Reads a whole, verified blob of at most [`MAX_DOCUMENT_SIZE`] bytes.
    fn read_blob_limited(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let limit = size.unwrap_or(MAX_DOCUMENT_SIZE);
        if limit > MAX_DOCUMENT_SIZE {
            return Err(too_large_document(digest, limit));
        }
        let mut bytes = Vec::with_capacity(size.map_or(64 * 1024, |s| s as usize));
        let mut blob = self.open_blob(digest, size)?;
        blob.read_all(&mut bytes, MAX_DOCUMENT_SIZE)?;
        Ok(bytes)
    }
}

/// Where a blob lives, relative to the layout's root: `blobs/<algorithm>/<encoded>`.
pub fn blob_file(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.encoded())
}

/// The digest a path relative to the layout's root is named after, for paths below a
/// directory of `blobs/` (`blobs/<algorithm>/<rest>`): `Err` when `<algorithm>:<rest>` is not a
/// valid digest. `None` for paths anywhere else.
pub fn blob_file_digest(path: &str) -> Option<Result<Digest>> {
    let (algorithm, encoded) = path.strip_prefix("blobs/")?.split_once('/')?;
    Some(Digest::parse(&format!("{algorithm}:{encoded}")).map_err(Error::from))
}

/// One entry of a layout, as [`LayoutRead::files`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Relative to the layout's root, '/'-separated: `blobs/sha256/ab…`.
    pub path: String,
    pub kind: FileKind,
    /// Length in bytes (regular files only).
    pub len: u64,
}

/// Something in a layout's bytes that tar readers read differently (see
/// [`LayoutRead::ambiguities`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ambiguity {
    pub kind: AmbiguityKind,
    /// The layout path it is about (normalized, relative to the layout's root), when there is
    /// one.
    pub path: Option<String>,
    /// The first entry involved, as stored (its raw name); empty for a summary of several.
    pub entry: String,
    /// What readers do differently, as a sentence naming every entry involved.
    pub message: String,
}

/// The kinds of [`Ambiguity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmbiguityKind {
    /// Two entries have the same name after normalization (including a hard link to an entry
    /// that a later one replaces).
    Duplicate,
    /// An entry's name or type means different things to different readers: an absolute name,
    /// a `..` component, a file named with a trailing `/`, a path through a non-directory, a
    /// link or directory that declares data.
    Unclear,
}

/// What kind of entry a [`FileInfo`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    /// A device, FIFO, socket or sparse archive entry.
    Other,
}

/// A verified blob stream; converts mismatches into [`Error::CorruptBlob`].
pub struct VerifiedBlob<'a> {
    inner: VerifyingReader<Box<dyn Read + Send + 'a>>,
    digest: Digest,
    layout: String,
}

impl VerifiedBlob<'_> {
    /// Turns an error from this stream into ocikit's error, naming the blob.
    pub fn error(&self, e: io::Error) -> Error {
        match Mismatch::from_io(&e) {
            Some(m) => Error::CorruptBlob {
                digest: self.digest.clone(),
                layout: self.layout.clone(),
                detail: m.to_string(),
            },
            None => Error::io("cannot read blob", self.digest.to_string(), e),
        }
    }

    /// Copies the whole verified blob to `out`; returns the number of bytes.
    pub fn copy_to(&mut self, out: &mut dyn Write) -> Result<u64> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = match self.inner.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.error(e)),
            };
            out.write_all(&buf[..n])
                .map_err(|e| Error::io("cannot write", "output", e))?;
            total += n as u64;
        }
    }

    fn read_all(&mut self, out: &mut Vec<u8>, limit: u64) -> Result<()> {
        let mut limited = (&mut self.inner).take(limit + 1);
        limited.read_to_end(out).map_err(|e| self.error(e))?;
        if out.len() as u64 > limit {
            return Err(Error::Limit {
                what: format!("blob {}", self.digest),
                detail: format!("is larger than the {limit} bytes ocikit reads as a document"),
            });
        }
        Ok(())
    }
}

impl Read for VerifiedBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// An OCI image layout directory, for reading and writing.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    /// `blobs` or `blobs/<algorithm>` when one of them is a symbolic link: found when a layout
    /// is opened unchecked (for validation), which then reads no blob at all.
    linked_blob_dir: Option<String>,
}

/// What `Layout::init` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitOutcome {
    Created,
    AlreadyALayout,
}

impl Layout {
    /// Creates an empty layout at `root` (the directory may exist if it is empty). An existing
    /// layout is left exactly as it is.
    pub fn init(root: &Path) -> Result<(Layout, InitOutcome)> {
        if root.join("oci-layout").exists() {
            return Ok((Layout::open(root)?, InitOutcome::AlreadyALayout));
        }
        if root.exists() {
            if !root.is_dir() {
                return Err(Error::NotALayout {
                    path: root.to_path_buf(),
                    reason: "it exists and is not a directory".into(),
                });
            }
            let mut entries = fs::read_dir(root).ctx("cannot read directory", root)?;
            if entries.next().is_some() {
                return Err(Error::NotALayout {
                    path: root.to_path_buf(),
                    reason: "it is a non-empty directory without an oci-layout file; refusing to init there".into(),
                });
            }
        }
        fs::create_dir_all(root.join("blobs").join("sha256"))
            .ctx("cannot create directory", root.join("blobs/sha256"))?;
        let layout = Layout {
            root: root.to_path_buf(),
            linked_blob_dir: None,
        };
        // index.json before oci-layout: a crash in between leaves no half-made "layout".
        layout.write_file_atomic("index.json", &IndexFile::empty().to_bytes())?;
        layout.write_file_atomic("oci-layout", layout_header().as_bytes())?;
        Ok((layout, InitOutcome::Created))
    }

    /// Opens an existing layout directory, checking `oci-layout`.
    pub fn open(root: &Path) -> Result<Layout> {
        let not_layout = |reason: String| Error::NotALayout {
            path: root.to_path_buf(),
            reason,
        };
        let meta = fs::metadata(root).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => not_layout("it does not exist".into()),
            _ => Error::io("cannot read", root, e),
        })?;
        if !meta.is_dir() {
            return Err(not_layout("it is not a directory".into()));
        }
        let header_path = root.join("oci-layout");
        let header = read_small_file(&header_path, 64 * 1024).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                not_layout(match other_format(root) {
                    Some(format) => format!("it has no oci-layout file; {format}"),
                    None => "it has no oci-layout file".into(),
                })
            }
            other => other,
        })?;
        let value: serde_json::Value = parse_document(
            &header,
            Schema::LayoutHeader,
            &header_path.display().to_string(),
        )?;
        match value.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(v) if v.starts_with("1.") => {
                refuse_linked_blob_dirs(root)?;
                Ok(Layout {
                    root: root.to_path_buf(),
                    linked_blob_dir: None,
                })
            }
            Some(v) => Err(not_layout(format!(
                "oci-layout has imageLayoutVersion {v:?}; ocikit reads 1.x"
            ))),
            None => Err(not_layout(
                "oci-layout has no string imageLayoutVersion".into(),
            )),
        }
    }

    /// A layout directory taken as it is, without checking `oci-layout`: for `validate`, which
    /// reports what is wrong as findings. Fails only if `root` is not a directory.
    pub fn open_unchecked(root: &Path) -> Result<Layout> {
        let meta = fs::metadata(root).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotALayout {
                path: root.to_path_buf(),
                reason: "it does not exist".into(),
            },
            _ => Error::io("cannot read", root, e),
        })?;
        if !meta.is_dir() {
            return Err(Error::NotALayout {
                path: root.to_path_buf(),
                reason: "it is not a directory".into(),
            });
        }
        if let Some(format) = other_format(root) {
            return Err(Error::NotALayout {
                path: root.to_path_buf(),
                reason: format!("it has no oci-layout file; {format}"),
            });
        }
        Ok(Layout {
            root: root.to_path_buf(),
            linked_blob_dir: linked_blob_dir(root)?,
        })
    }

    /// Every file and directory, as [`LayoutRead::files`] lists them; with `sizes` false no
    /// file is `stat`ed and every `len` is 0, so listing 100,000 blobs costs only the directory
    /// reads. The walk is unsorted, then plain strings are sorted once: walkdir's
    /// `sort_by_file_name` re-parses path components on every comparison.
    pub fn list(&self, sizes: bool) -> Result<Vec<FileInfo>> {
        let root_len = self.root.as_os_str().len();
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(&self.root)
            .min_depth(1)
            .follow_links(false)
        {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&self.root).to_path_buf();
                Error::io("cannot list", path, e.into())
            })?;
            let full = entry.path().as_os_str().to_string_lossy();
            let path = full
                .get(root_len..)
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            let file_type = entry.file_type();
            let (kind, len) = if file_type.is_symlink() {
                (FileKind::Symlink, 0)
            } else if file_type.is_dir() {
                (FileKind::Directory, 0)
            } else if file_type.is_file() {
                let len = if sizes {
                    entry
                        .metadata()
                        .map_err(|e| Error::io("cannot read", entry.path(), e.into()))?
                        .len()
                } else {
                    0
                };
                (FileKind::Regular, len)
            } else {
                (FileKind::Other, 0)
            };
            files.push(FileInfo { path, kind, len });
        }
        files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives, for reading: [`Layout::blob_path`], unless the layout's blob
    /// directories are symbolic links (a layout opened unchecked), when no blob is read.
    fn readable_blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        match &self.linked_blob_dir {
            Some(dir) => Err(linked_blob_dir_error(&self.root, dir)),
            None => Ok(self.blob_path(digest)),
        }
    }

    /// Where a blob lives: `blobs/<algorithm>/<encoded>`. The digest grammar admits neither `/`
    /// nor `..`, so the path is always inside the layout.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.encoded())
    }

    /// Takes the shared blobs lock that every writer holds while it writes blobs and until its
    /// `index.json` update is committed (see [`lock`]).
    pub fn writer(&self) -> Result<LayoutWriter<'_>> {
        refuse_linked_blob_dirs(&self.root)?;
        // A writer's blobs are of use only if its index update can succeed: an index.json that
        // cannot be read (or that other tools read differently) is refused before any blob is
        // written, not after.
        self.index()?;
        let blobs = self.root.join("blobs");
        let guard = lock::lock_dir(&blobs, Mode::Shared)?;
        Ok(LayoutWriter {
            layout: self,
            _blobs_lock: guard,
            unsynced: Mutex::new(BTreeSet::new()),
            cannot: copy::Cannot::default(),
        })
    }

    /// Takes the blobs lock exclusively: while the guard lives no writer is between its first
    /// blob and its index update, and no writer can start. Used by `gc`.
    pub fn exclusive(&self) -> Result<Exclusive<'_>> {
        refuse_linked_blob_dirs(&self.root)?;
        let guard = lock::lock_dir(&self.root.join("blobs"), Mode::Exclusive)?;
        Ok(Exclusive {
            layout: self,
            _blobs_lock: guard,
        })
    }

    /// Reads `index.json`, applies `change`, and writes it back atomically, all under the index
    /// lock. `change` returns whether it changed anything; nothing is written if not. Private:
    /// callers go through [`LayoutWriter`] or [`Exclusive`], so the blobs lock is always held
    /// first (ARCHITECTURE.md §Locking protocol) and gc can never sweep a blob that an index
    /// update is about to reference.
    fn update_index<T>(
        &self,
        change: impl FnOnce(&mut IndexFile) -> Result<(T, bool)>,
    ) -> Result<T> {
        let _guard = lock::lock_dir(&self.root, Mode::Exclusive)?;
        let mut index = self.index()?;
        let (result, changed) = change(&mut index)?;
        if changed {
            self.write_file_atomic("index.json", &index.to_bytes())?;
        }
        Ok(result)
    }

    /// Writes `name` (a file directly in the layout) atomically: temp file, fsync, rename,
    /// fsync of the directory. Also for files kept beside the layout's own (a bundle's
    /// description and `SHA256SUMS`).
    pub fn write_file_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut temp = self.temp_file()?;
        temp.write_all(bytes)
            .ctx("cannot write temp file", temp.path())?;
        temp.as_file()
            .sync_all()
            .ctx("cannot sync temp file", temp.path())?;
        let target = self.root.join(name);
        temp.persist(&target)
            .map_err(|e| Error::io("cannot replace", &target, e.error))?;
        sync_dir(&self.root)
    }

    fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        // 0644 before the umask, like files other tools write: a 0600 blob or index.json would
        // lock other users out of a shared layout.
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&self.root)
            .ctx("cannot create a temp file in", &self.root)
    }
}

impl LayoutRead for Layout {
    fn name(&self) -> String {
        self.root.display().to_string()
    }

    fn index_bytes(&self) -> Result<Vec<u8>> {
        read_small_file(&self.root.join("index.json"), MAX_DOCUMENT_SIZE * 16)
    }

    fn open_blob_raw(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        let file = open_regular_file(&self.readable_blob_path(digest)?)
            .map_err(|e| self.missing_blob(e, digest))?;
        Ok(Box::new(BufReader::with_capacity(256 * 1024, file)))
    }

    fn files(&self) -> Result<Vec<FileInfo>> {
        self.list(true)
    }

    fn root_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        match read_small_file(&self.root.join(name), limit) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the file straight into a buffer of the expected size and verifies it in memory:
    /// listing thousands of manifests is dominated by per-file costs, not by bytes.
    fn read_blob_limited(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let limit = size.unwrap_or(MAX_DOCUMENT_SIZE);
        if limit > MAX_DOCUMENT_SIZE {
            return Err(too_large_document(digest, limit));
        }
        let path = self.readable_blob_path(digest)?;
        let file = open_regular_file(&path).map_err(|e| self.missing_blob(e, digest))?;
        let mut bytes = Vec::with_capacity(size.map_or(64 * 1024, |s| s as usize + 1));
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .ctx("cannot read", &path)?;
        if size.is_none() && bytes.len() as u64 > limit {
            return Err(too_large_document(digest, bytes.len() as u64));
        }
        verify_bytes(&bytes, digest, size).map_err(|detail| Error::CorruptBlob {
            digest: digest.clone(),
            layout: self.name(),
            detail,
        })?;
        Ok(bytes)
    }

    fn blob_len(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.readable_blob_path(digest)?;
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Err(not_regular(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read", &path, e)),
        }
    }

    fn local_blob(&self, digest: &Digest) -> Result<Option<PathBuf>> {
        Ok(Some(self.readable_blob_path(digest)?))
    }
}

impl Layout {
    /// Turns "no such file" into [`Error::BlobNotFound`].
    fn missing_blob(&self, error: Error, digest: &Digest) -> Error {
        match error {
            Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                Error::BlobNotFound {
                    digest: digest.clone(),
                    layout: self.name(),
                }
            }
            other => other,
        }
    }
}

/// Checks bytes held in memory against a digest and an optional size; the error says how they
/// differ.
fn verify_bytes(
    bytes: &[u8],
    digest: &Digest,
    size: Option<u64>,
) -> std::result::Result<(), String> {
    let len = bytes.len() as u64;
    match size {
        Some(expected) if len > expected => return Err(Mismatch::TooLong { expected }.to_string()),
        Some(expected) if len < expected => {
            return Err(Mismatch::TooShort {
                expected,
                actual: len,
            }
            .to_string())
        }
        _ => {}
    }
    if let Some(algorithm) = digest.known_algorithm() {
        let mut hasher = crate::spec::digest::Hasher::new(algorithm);
        hasher.update(bytes);
        let actual = hasher.finish();
        if &actual != digest {
            return Err(Mismatch::Digest { actual }.to_string());
        }
    }
    Ok(())
}

fn too_large_document(digest: &Digest, size: u64) -> Error {
    Error::Limit {
        what: format!("document {digest}"),
        detail: format!(
            "is {size} bytes, more than the {MAX_DOCUMENT_SIZE} bytes ocikit reads as a document"
        ),
    }
}

/// A process that is allowed to add blobs (it holds the shared blobs lock).
pub struct LayoutWriter<'a> {
    layout: &'a Layout,
    _blobs_lock: LockGuard,
    /// Blob directories that gained an entry whose rename is not yet synced: synced once,
    /// before the next `index.json` update, rather than once per blob.
    unsynced: Mutex<BTreeSet<PathBuf>>,
    /// Link modes [`Link::Auto`] found impossible here: not tried again for the next blob.
    cannot: copy::Cannot,
}

/// What a blob write produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenBlob {
    pub digest: Digest,
    pub size: u64,
}

/// A blob being written (see [`LayoutWriter::blob_sink`]).
pub struct BlobSink<'a> {
    layout: &'a Layout,
    path: PathBuf,
    out: HashingWriter<io::BufWriter<tempfile::NamedTempFile>>,
}

impl<'a> BlobSink<'a> {
    /// Ends the stream: the blob's digest and size are known, nothing is in `blobs/` yet.
    pub fn finish(self) -> Result<PendingBlob<'a>> {
        let (digest, size, buffered) = self.out.finish();
        let temp = buffered
            .into_inner()
            .map_err(|e| Error::io("cannot write blob to", &self.path, e.into_error()))?;
        Ok(PendingBlob {
            layout: self.layout,
            temp,
            digest,
            size,
        })
    }
}

impl Write for BlobSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A blob whose bytes are written and hashed, waiting in a temp file inside the layout to be
/// committed; dropped, it vanishes.
pub struct PendingBlob<'a> {
    layout: &'a Layout,
    temp: tempfile::NamedTempFile,
    /// The digest of the bytes written.
    pub digest: Digest,
    /// Their length.
    pub size: u64,
}

impl PendingBlob<'_> {
    /// The bytes written, from the start (to inline them, say).
    pub fn reader(&self) -> Result<File> {
        let mut file = self.temp.reopen().ctx("cannot reopen", self.temp.path())?;
        io::Seek::rewind(&mut file).ctx("cannot read", self.temp.path())?;
        Ok(file)
    }

    /// fsyncs the temp file and closes it, keeping it inside the layout under its temp name
    /// until the [`Staged`] blob is linked into place or dropped (see [`Staged`]).
    pub fn stage(self) -> Result<Staged> {
        self.temp
            .as_file()
            .sync_all()
            .ctx("cannot sync temp file", self.temp.path())?;
        Ok(Staged {
            path: self.temp.into_temp_path(),
            digest: self.digest,
            size: self.size,
        })
    }

    /// fsyncs the temp file and renames it into `blobs/`. A blob that already exists is left
    /// alone (content addressing: same name, same bytes, verified when read).
    pub fn commit(self) -> Result<WrittenBlob> {
        let PendingBlob {
            layout,
            temp,
            digest,
            size,
        } = self;
        let target = layout.blob_path(&digest);
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_file() => return Ok(WrittenBlob { digest, size }),
            Ok(_) => return Err(not_regular(&target)),
            Err(_) => {}
        }
        temp.as_file()
            .sync_all()
            .ctx("cannot sync temp file", temp.path())?;
        let dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| layout.root.join("blobs"));
        fs::create_dir_all(&dir).ctx("cannot create directory", &dir)?;
        temp.persist(&target)
            .map_err(|e| Error::io("cannot move blob into place at", &target, e.error))?;
        sync_dir(&dir)?;
        Ok(WrittenBlob { digest, size })
    }
}

/// A blob written to a temp file inside a layout, hashed and synced but not in `blobs/`: an
/// import stages what an archive holds while it reads the stream, before it knows which
/// entries it will keep. Held without an open file (a large archive stages thousands); the
/// file goes when this is dropped, and a crash leaves it for `gc`, like any temp file.
#[derive(Debug)]
pub struct Staged {
    path: tempfile::TempPath,
    /// The digest of its bytes (of the algorithm it was staged with).
    pub digest: Digest,
    pub size: u64,
}

impl Staged {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl LayoutWriter<'_> {
    /// The layout being written.
    pub fn layout(&self) -> &Layout {
        self.layout
    }

    /// Streams `content` into a temp file of the layout, hashed with `algorithm` on the way
    /// (see [`Staged`]). A failure is reported as a write failure: a caller whose reader can
    /// fail in ways of its own (a decoder, a tar entry cut short) keeps that error and reports
    /// it instead.
    pub fn stage(&self, content: &mut dyn Read, algorithm: Algorithm) -> Result<Staged> {
        let mut sink = self.blob_sink(algorithm)?;
        io::copy(content, &mut sink).ctx("cannot write blob to", &sink.path)?;
        sink.finish()?.stage()
    }

    /// Notes that `dir` gained an entry by a rename that is not synced yet.
    fn unsynced(&self, dir: PathBuf) {
        self.unsynced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dir);
    }

    /// Syncs every blob directory a deferred rename changed, so that what `index.json` is
    /// about to reference is durable first.
    fn sync_blob_dirs(&self) -> Result<()> {
        let dirs =
            std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(PoisonError::into_inner));
        dirs.iter().try_for_each(|dir| sync_dir(dir))
    }

    /// Streams `content` into the store: temp file inside the layout, hashed on the way, fsync,
    /// rename into `blobs/`. If the blob already exists it is left alone (the temp file goes).
    /// When `expected` is given, a mismatch of digest or size is an error and nothing is kept.
    pub fn write_blob(
        &self,
        content: &mut dyn Read,
        expected: Option<(&Digest, u64)>,
    ) -> Result<WrittenBlob> {
        let algorithm = match expected {
            Some((d, _)) => d.known_algorithm().ok_or_else(|| Error::Unsupported {
                what: format!("blob {d}"),
                reason: "cannot be stored: ocikit computes only sha256 and sha512 digests".into(),
            })?,
            None => Algorithm::Sha256,
        };
        let mut sink = self.blob_sink(algorithm)?;
        io::copy(content, &mut sink).ctx("cannot write blob to", &sink.path)?;
        let pending = sink.finish()?;
        if let Some((want, want_size)) = expected {
            if &pending.digest != want || pending.size != want_size {
                return Err(Error::CorruptBlob {
                    digest: want.clone(),
                    layout: self.layout.name(),
                    detail: format!(
                        "the bytes given for it are {} bytes hashing to {}, {want_size} bytes were expected",
                        pending.size, pending.digest
                    ),
                });
            }
        }
        pending.commit()
    }

    /// A blob to be written as a stream: the bytes go into a temp file inside the layout and
    /// are hashed on the way, so whoever produces them (an encoder, a copy) writes them once.
    /// Nothing is visible in `blobs/` until [`PendingBlob::commit`].
    pub fn blob_sink(&self, algorithm: Algorithm) -> Result<BlobSink<'_>> {
        let temp = self.layout.temp_file()?;
        let path = temp.path().to_path_buf();
        Ok(BlobSink {
            layout: self.layout,
            path,
            out: HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, temp), algorithm),
        })
    }

    /// Stores `bytes` as a sha256 blob.
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<WrittenBlob> {
        self.write_blob(&mut &bytes[..], None)
    }

    /// Reads `index.json`, applies `change` (which returns whether it changed anything) and
    /// writes it back atomically, under the index lock. Blobs placed before are durable first.
    pub fn update_index<T>(
        &self,
        change: impl FnOnce(&mut IndexFile) -> Result<(T, bool)>,
    ) -> Result<T> {
        self.sync_blob_dirs()?;
        self.layout.update_index(change)
    }
}

/// The layout with the blobs lock held exclusively (see [`Layout::exclusive`]).
pub struct Exclusive<'a> {
    layout: &'a Layout,
    _blobs_lock: LockGuard,
}

impl Exclusive<'_> {
    /// Updates `index.json` as [`LayoutWriter::update_index`] does.
    pub fn update_index<T>(
        &self,
        change: impl FnOnce(&mut IndexFile) -> Result<(T, bool)>,
    ) -> Result<T> {
        self.layout.update_index(change)
    }
}

/// What a directory without `oci-layout` holds instead, when it is a format other tools write:
/// a `skopeo copy … dir:` copy (`manifest.json` and `version`) or an extracted `docker save`
/// archive (`manifest.json` and `repositories`, or a `manifest.json` list).
fn other_format(root: &Path) -> Option<&'static str> {
    if root.join("oci-layout").exists() || root.join("index.json").exists() {
        return None;
    }
    let has = |name: &str| root.join(name).is_file();
    if !has("manifest.json") {
        return None;
    }
    if has("version") {
        return Some("it has a manifest.json and a version file, so this is a `skopeo copy … dir:` copy of one image, not an OCI image layout");
    }
    Some("it has a manifest.json, so this looks like an extracted `docker save` archive, not an OCI image layout")
}

/// `blobs`, or the first `blobs/<name>`, that is a symbolic link. Only `blobs/` is listed: it
/// holds one directory per digest algorithm, so this costs one short directory read.
fn linked_blob_dir(root: &Path) -> Result<Option<String>> {
    let blobs = root.join("blobs");
    match fs::symlink_metadata(&blobs) {
        Ok(meta) if meta.file_type().is_symlink() => return Ok(Some("blobs".into())),
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot read", blobs, e)),
    }
    let mut linked = Vec::new();
    for entry in fs::read_dir(&blobs).ctx("cannot list", &blobs)? {
        let entry = entry.ctx("cannot list", &blobs)?;
        if entry
            .file_type()
            .ctx("cannot read", entry.path())?
            .is_symlink()
        {
            linked.push(format!("blobs/{}", entry.file_name().to_string_lossy()));
        }
    }
    linked.sort();
    Ok(linked.into_iter().next())
}

/// Refuses a layout whose `blobs` or `blobs/<algorithm>` is a symbolic link: blobs read or
/// written through it would be files outside the layout.
fn refuse_linked_blob_dirs(root: &Path) -> Result<()> {
    match linked_blob_dir(root)? {
        Some(dir) => Err(linked_blob_dir_error(root, &dir)),
        None => Ok(()),
    }
}

fn linked_blob_dir_error(root: &Path, dir: &str) -> Error {
    let target = fs::read_link(root.join(dir))
        .map(|t| format!(" (to {})", t.display()))
        .unwrap_or_default();
    Error::NotALayout {
        path: root.to_path_buf(),
        reason: format!(
            "{dir} is a symbolic link{target}; blobs must be inside the layout, so ocikit reads and writes none through it"
        ),
    }
}

fn not_regular(path: &Path) -> Error {
    Error::io(
        "refusing to use",
        path,
        io::Error::new(
            io::ErrorKind::InvalidData,
            "it is not a regular file (a symlink, directory or device)",
        ),
    )
}

/// Opens a file only if it is a regular file: `O_NOFOLLOW` so no symlink leads out of the
/// layout, `O_NONBLOCK` so a FIFO cannot hang the open, then `fstat` on the open descriptor (no
/// window between the check and the use).
pub(crate) fn open_regular_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_regular(path),
            _ => Error::io("cannot open", path, e),
        })?;
    let meta = file.metadata().ctx("cannot read", path)?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    Ok(file)
}

/// Reads a small regular file whole, refusing one larger than `limit`.
pub(crate) fn read_small_file(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = open_regular_file(path)?;
    // Sized from the file's length (bounded by the limit), so a large index.json is not read
    // through a series of reallocations.
    let expected = file.metadata().map(|m| m.len().min(limit)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(expected as usize + 1);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .ctx("cannot read", path)?;
    if bytes.len() as u64 > limit {
        return Err(Error::Limit {
            what: path.display().to_string(),
            detail: format!("is larger than {limit} bytes; refusing to read it"),
        });
    }
    Ok(bytes)
}

/// fsyncs a directory so a rename inside it is durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("cannot sync directory", dir)
}

/// Moves the directory `temp` (a layout made under a temp name) to `target`, which must not
/// exist, not even as an empty directory (`renameat2(RENAME_NOREPLACE)`), then syncs the
/// parent: `target` is either absent or the whole layout, never half of one.
pub fn publish_dir(temp: &Path, target: &Path) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let renamed = match renameat_with(CWD, temp, CWD, target, RenameFlags::NOREPLACE) {
        // A file system without RENAME_NOREPLACE: checked, then renamed (a directory is only
        // renamed over an empty one, never over a bundle).
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS)
            if !target.exists() && !target.is_symlink() =>
        {
            fs::rename(temp, target)
        }
        other => other.map_err(io::Error::from),
    };
    renamed.map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => Error::Conflict {
            what: target.display().to_string(),
            reason: "exists; a new one is not written over it".into(),
        },
        _ => Error::io("cannot move the finished layout into place at", target, e),
    })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_open_write_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("l");
        let (layout, outcome) = Layout::init(&root).unwrap();
        assert_eq!(outcome, InitOutcome::Created);
        assert_eq!(Layout::init(&root).unwrap().1, InitOutcome::AlreadyALayout);
        let writer = layout.writer().unwrap();
        let blob = writer.write_blob_bytes(b"hello").unwrap();
        assert_eq!(blob.size, 5);
        // idempotent
        assert_eq!(writer.write_blob_bytes(b"hello").unwrap(), blob);
        let bytes = layout.read_blob_limited(&blob.digest, Some(5)).unwrap();
        assert_eq!(bytes, b"hello");
        // expected digest mismatch leaves nothing behind
        let wrong = Digest::sha256_of(b"other");
        assert!(writer
            .write_blob(&mut &b"hello"[..], Some((&wrong, 5)))
            .is_err());
        assert!(!layout.blob_path(&wrong).exists());
        let leftovers: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn corrupt_blob_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = Layout::init(dir.path()).unwrap();
        let d = Digest::sha256_of(b"hello");
        fs::write(layout.blob_path(&d), b"jello").unwrap();
        let err = layout.read_blob_limited(&d, Some(5)).unwrap_err();
        assert!(matches!(err, Error::CorruptBlob { .. }), "{err}");
    }

    #[test]
    fn refuses_non_layouts() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Layout::open(&dir.path().join("missing")).is_err());
        assert!(Layout::open(dir.path()).is_err());
        fs::write(dir.path().join("x"), b"").unwrap();
        assert!(Layout::init(dir.path()).is_err());
        fs::write(dir.path().join("oci-layout"), b"{}").unwrap();
        assert!(Layout::open(dir.path()).is_err());
    }
}
