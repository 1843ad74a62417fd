//! The one layer applier: a layer blob (tar, compressed or not) written onto a directory.
//! `artifact pull` (a directory layer, [`Policy::Refuse`](crate::codec::extract::Policy)) and
//! `unpack` (an image's layers, `Policy::Chroot`, with OCI whiteouts) both go through it, so
//! the hardening of each part lands once for both:
//!
//! - the bytes are decompressed by the one decoder ([`crate::codec::decode`], under the
//!   caller's bomb [`decode::Limits`]) and hashed on the way (the diff_id, returned);
//! - entries come from the one tar reader ([`crate::codec::tar`]: extension headers capped, so
//!   a 1 GiB PAX or GNU long-name header is an error before anything is allocated);
//! - names are normalised by [`crate::codec::tar::path`] and placed by the caller's
//!   [`Names`] (pull refuses `..` and absolute names and strips its title; unpack takes
//!   the clean name);
//! - every write goes through [`Root`], which resolves on disk and never follows a link out
//!   (a hard link to a symlink is that symlink placed at the new path).
//!
//! Directory metadata is set once the layer is written, deepest first, so a read-only
//! directory is filled before it closes and a directory's mtime is not changed by its
//! children; only on the very directory the entry made (a later entry may have put something
//! else there). Whiteouts spare what the same layer wrote, compared by physical path. The
//! caller checks the blob's digest (its reader) and the diff_id (returned).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::codec::decode;
use crate::codec::extract::{self, Identity, Metadata, Root, Special};
use crate::codec::pipe::fill;
use crate::codec::tar::{self, Header, Kind, TarError};
use crate::error::{Error, LimitExceeded, Result};
use crate::spec::digest::{Algorithm, Digest, Hasher, Mismatch};
use crate::spec::document::media_type::Compression;

/// The OCI whiteout prefix: `.wh.NAME` hides `NAME` of lower layers.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The opaque whiteout: hides every lower child of its directory.
pub const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";

/// What becomes of device nodes and FIFOs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Specials {
    /// An error naming the entry.
    Refuse,
    /// Made (device nodes need privilege).
    Make,
    /// FIFOs made, device nodes skipped with a warning.
    SkipDevices,
}

/// How a layer is applied.
#[derive(Clone, Debug)]
pub struct Options {
    /// The decompression-bomb policy.
    pub limits: decode::Limits,
    /// Permission bits kept from the headers (`0o777`, or `0o7777` with setuid/setgid/sticky).
    pub mode_bits: u32,
    /// OCI whiteouts are applied (and not written). (An entry that is not a directory replaces
    /// a directory there when the root is [`Root::replacing_directories`].)
    pub whiteouts: bool,
    /// Owners (uid/gid) from the headers are applied.
    pub owners: bool,
    /// Modification times from the headers are applied.
    pub mtimes: bool,
    /// Extended attributes (PAX `SCHILY.xattr.*`) are applied where the file system allows.
    pub xattrs: bool,
    pub specials: Specials,
}

impl Options {
    /// For files to be read on the host (`artifact pull`): permission bits only, no owners,
    /// times, attributes, whiteouts or special files.
    pub fn plain(limits: decode::Limits) -> Options {
        Options {
            limits,
            mode_bits: 0o777,
            whiteouts: false,
            owners: false,
            mtimes: false,
            xattrs: false,
            specials: Specials::Refuse,
        }
    }

    /// For an image's root file system (`unpack`): whiteouts, times, attributes, and owners and
    /// device nodes as `privileged` says.
    pub fn rootfs(limits: decode::Limits, privileged: bool) -> Options {
        Options {
            limits,
            mode_bits: 0o7777,
            whiteouts: true,
            owners: privileged,
            mtimes: true,
            xattrs: true,
            specials: if privileged {
                Specials::Make
            } else {
                Specials::SkipDevices
            },
        }
    }
}

/// What a name of the tar is being placed as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An entry of this kind.
    Entry(Kind),
    /// The target of a hard link.
    LinkTarget,
}

/// Where the names of a tar go below the root.
pub trait Names {
    /// The path below the root for `raw` (a name or hard-link target as stored); `Ok(None)`
    /// skips the entry. An error refuses the layer.
    fn place(&mut self, raw: &[u8], role: Role) -> Result<Option<PathBuf>>;
}

/// Names as an image's root file system reads them: the clean name (`./`, `//`, a leading
/// `/`, `..` resolved lexically and never above the root); a NUL byte is refused.
pub struct Clean<'a> {
    /// The layer, for messages.
    pub layer: &'a Digest,
}

impl Names for Clean<'_> {
    fn place(&mut self, raw: &[u8], role: Role) -> Result<Option<PathBuf>> {
        let name = tar::path::normalize(raw);
        if name.nul {
            return Err(entry_error(
                self.layer,
                raw,
                "contains a NUL byte; refusing it".into(),
            ));
        }
        if name.clean.is_empty() && role != Role::Entry(Kind::Directory) {
            return Err(entry_error(
                self.layer,
                raw,
                "names the root directory itself; refusing it".into(),
            ));
        }
        Ok(Some(PathBuf::from(OsStr::from_bytes(&name.clean))))
    }
}

/// What [`apply`] did.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// The digest of the uncompressed stream, all of it (the layer's diff_id).
    pub diff_id: Option<Digest>,
    /// Uncompressed bytes.
    pub size: u64,
    /// Entries written (whiteouts included).
    pub entries: u64,
    /// What could not be done and was skipped (at most a few; the rest counted).
    pub warnings: Vec<String>,
}

/// Most warnings kept by [`Applied::warnings`]; past it one line counts the rest.
const MAX_WARNINGS: usize = 20;

/// A message about one tar entry of a layer.
fn entry_error(layer: &Digest, raw: &[u8], reason: String) -> Error {
    Error::InvalidInput {
        what: format!(
            "the tar entry {:?} of layer {layer}",
            tar::path::display(raw)
        ),
        reason,
    }
}

/// Reads the tar in `blob` (compressed with `compression`) and writes its entries below
/// `root`, placed by `names`. `layer` names the layer in errors; `layout` names where the blob
/// is read from (for corruption found by the blob's own verifying reader). Reads `blob` to
/// its end, so a verifying reader checks its digest.
pub fn apply(
    root: &Root,
    blob: &mut (dyn Read + Send),
    compression: Compression,
    layer: &Digest,
    layout: &str,
    options: &Options,
    names: &mut dyn Names,
) -> Result<Applied> {
    let read_error = |e: io::Error| -> Error {
        if let Some(m) = Mismatch::from_io(&e) {
            return Error::CorruptBlob {
                digest: layer.clone(),
                layout: layout.to_string(),
                detail: m.to_string(),
            };
        }
        if let Some(exceeded) = LimitExceeded::in_io(&e) {
            return Error::DecompressionLimit {
                what: format!("layer {layer}"),
                source: exceeded.clone(),
            };
        }
        Error::InvalidInput {
            what: format!("layer {layer}"),
            reason: match compression {
                Compression::None => format!("cannot be read as an uncompressed tar: {e}"),
                c => format!("cannot be read as a {} tar: {e}", c.name()),
            },
        }
    };
    let decoder = decode::decompress(blob, compression, &options.limits)?;
    let (jobs, queue) = sync_channel::<Job>(QUEUE);
    let queue = Mutex::new(queue);
    let written = Mutex::new(Written::default());
    // One thread decompresses and hashes a few chunks ahead; this one reads the tar and makes
    // the names; writer threads write the data of small files.
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..writers())
            .map(|_| scope.spawn(|| writer(&queue, &written)))
            .collect();
        let (send, chunks) = sync_channel::<io::Result<Vec<u8>>>(AHEAD);
        let producer = scope.spawn(move || -> io::Result<(Digest, u64)> {
            let mut decoder = decoder;
            let mut hasher = Hasher::new(Algorithm::Sha256);
            let mut size = 0u64;
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let n = match fill(&mut decoder, &mut chunk) {
                    Ok(n) => n,
                    Err(e) => {
                        let kind = e.kind();
                        let message = e.to_string();
                        // The reader gets the error itself; the join only says it failed.
                        let _ = send.send(Err(e));
                        return Err(io::Error::new(kind, message));
                    }
                };
                if n == 0 {
                    break;
                }
                hasher.update(&chunk[..n]);
                size += n as u64;
                chunk.truncate(n);
                if send.send(Ok(chunk)).is_err() {
                    return Err(io::Error::other("the tar reader stopped"));
                }
            }
            drop(send);
            // What follows the compressed stream is part of the blob, whose reader checks its
            // digest at its end.
            let mut rest = decoder.into_inner();
            io::copy(&mut rest, &mut io::sink())?;
            Ok((hasher.finish(), size))
        });
        let input = Chunks {
            chunks,
            current: Vec::new(),
            at: 0,
        };
        let mut reader = tar::Reader::new(BufReader::with_capacity(256 * 1024, input));
        let mut state = State {
            root,
            layer,
            options,
            upper: HashSet::new(),
            ancestors: HashSet::new(),
            plain: BTreeSet::new(),
            opened: Vec::new(),
            touched: HashMap::new(),
            directories: Vec::new(),
            applied: Applied::default(),
            skipped_warnings: 0,
            jobs: Some(jobs),
        };
        loop {
            let mut entry = match reader.next_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(TarError::Io(e)) => return Err(read_error(e)),
                Err(TarError::Malformed { offset, message }) => {
                    return Err(Error::InvalidInput {
                        what: format!("layer {layer}"),
                        reason: format!("is not a well-formed tar (at byte {offset}): {message}"),
                    })
                }
            };
            let header = entry.header().clone();
            state.applied.entries += 1;
            state.entry(&header, &mut entry, names, &read_error)?;
        }
        // Every file written before the directories close.
        drop(state.jobs.take());
        for handle in writers {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        let done = match written.lock() {
            Ok(mut written) => std::mem::take(&mut *written),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        if let Some(e) = done.error {
            return Err(e);
        }
        for warning in done.warnings {
            state.warn(warning);
        }
        state.close_directories()?;
        // What follows the end of the tar is part of the diff_id.
        let mut input = reader.into_inner();
        io::copy(&mut input, &mut io::sink()).map_err(read_error)?;
        drop(input);
        let (diff_id, size) = match producer.join() {
            Ok(result) => result.map_err(read_error)?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let mut applied = state.applied;
        applied.size = size;
        applied.diff_id = Some(diff_id);
        Ok(applied)
    })
}

/// The size of the chunks decompressed ahead.
const CHUNK: usize = 1024 * 1024;
/// How many chunks may wait to be read.
const AHEAD: usize = 4;

/// The decompressed stream, as the chunks the decompressing thread sends.
struct Chunks {
    chunks: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Extended attributes: (name, value).
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// One layer being applied.
struct State<'a> {
    root: &'a Root,
    layer: &'a Digest,
    options: &'a Options,
    /// What this layer wrote, by physical path (from the root, through no link: a name written
    /// through `lib -> usr/lib` is `usr/lib/…`), which whiteouts do not touch.
    upper: HashSet<Vec<u8>>,
    /// Directories above what this layer wrote, by physical path.
    ancestors: HashSet<Vec<u8>>,
    /// Directories whose name resolved through no link (so it is their physical path), until
    /// an entry or whiteout replaces them or something above them.
    plain: BTreeSet<Vec<u8>>,
    /// Directories (their name in the tar, where they are, the directory made) and their
    /// metadata, set once the layer is written.
    directories: Vec<(Vec<u8>, PathBuf, Identity, Metadata, Xattrs)>,
    /// Directories given `u+rwx` to write in them without being root (a lower layer's
    /// read-only directory): where they are, which they are, and their mode, restored once
    /// the layer is written.
    opened: Vec<(PathBuf, Identity, u32)>,
    /// Directories this layer changed (added or removed a name in) by their physical path,
    /// which they are and their modification time before: it is set back once the layer is
    /// written, as umoci does (a directory entry of the layer sets its own instead).
    touched: HashMap<Vec<u8>, (Identity, SystemTime)>,
    applied: Applied,
    skipped_warnings: usize,
    /// Where small files go to be written, when there are writer threads.
    jobs: Option<SyncSender<Job>>,
}

/// Largest file whose data is handed to a writer thread (larger ones are streamed here).
const BUFFERED_MAX: u64 = 1 << 20;
/// Files that may wait for a writer thread (so at most this many MiB are held).
const QUEUE: usize = 32;

/// A file whose data a writer thread writes, then its attributes and metadata.
struct Job {
    file: std::fs::File,
    data: Vec<u8>,
    metadata: Metadata,
    xattrs: Xattrs,
    shown: PathBuf,
}

/// What the writer threads report: the first error, and warnings.
#[derive(Default)]
struct Written {
    error: Option<Error>,
    warnings: Vec<String>,
}

/// Sets a written file's extended attributes (failures are returned as warnings) and then its
/// owner, mode and time.
fn finish_file(
    file: &std::fs::File,
    metadata: &Metadata,
    xattrs: &Xattrs,
    shown: &Path,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (name, value) in xattrs {
        if let Err(e) = extract::set_file_xattr(file, name, value, shown) {
            warnings.push(e.to_string());
        }
    }
    if metadata.owner.is_some() || metadata.mtime.is_some() {
        extract::set_file_metadata(file, metadata, shown)?;
    }
    Ok(warnings)
}

/// A writer thread: writes the files `queue` hands it until it is closed.
fn writer(queue: &Mutex<Receiver<Job>>, written: &Mutex<Written>) {
    loop {
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(mut job) = job else {
            return;
        };
        let result = job
            .file
            .write_all(&job.data)
            .map_err(|e| Error::io("cannot write", &job.shown, e))
            .and_then(|()| finish_file(&job.file, &job.metadata, &job.xattrs, &job.shown));
        let Ok(mut written) = written.lock() else {
            return;
        };
        match result {
            Ok(warnings) => written.warnings.extend(warnings),
            Err(e) => {
                written.error.get_or_insert(e);
            }
        }
    }
}

/// How many writer threads write small files beside the reader.
fn writers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

impl State<'_> {
    fn warn(&mut self, message: String) {
        if self.applied.warnings.len() < MAX_WARNINGS {
            self.applied.warnings.push(message);
        } else {
            self.skipped_warnings += 1;
        }
    }

    fn refused(&self, raw: &[u8], e: Error) -> Error {
        match e {
            Error::Extract { reason, .. } => {
                entry_error(self.layer, raw, format!("{reason}; refusing it"))
            }
            e => e,
        }
    }

    fn metadata(&self, header: &Header, with_mode: bool) -> Metadata {
        let owner = match (u32::try_from(header.uid), u32::try_from(header.gid)) {
            (Ok(uid), Ok(gid)) if self.options.owners => Some((uid, gid)),
            _ => None,
        };
        let mtime = self.options.mtimes.then(|| {
            if header.mtime >= 0 {
                UNIX_EPOCH + Duration::from_secs(header.mtime as u64)
            } else {
                UNIX_EPOCH - Duration::from_secs(header.mtime.unsigned_abs())
            }
        });
        let mode = with_mode.then_some(header.mode as u32 & self.options.mode_bits);
        Metadata { mode, mtime, owner }
    }

    fn entry<R: tar::Input>(
        &mut self,
        header: &Header,
        entry: &mut tar::Entry<'_, R>,
        names: &mut dyn Names,
        read_error: &dyn Fn(io::Error) -> Error,
    ) -> Result<()> {
        let raw = header.path.as_slice();
        if self.options.whiteouts {
            let clean = tar::path::normalize(raw).clean;
            let (dir, base) = split(&clean);
            if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
                let dir = dir.to_vec();
                if base == OPAQUE_WHITEOUT {
                    let mut done = self.opaque(&dir);
                    if matches!(&done, Err(e) if denied(e))
                        && self.open_up(Path::new(OsStr::from_bytes(&clean)))?
                    {
                        done = self.opaque(&dir);
                    }
                    return done.map_err(|e| self.refused(raw, e));
                }
                if matches!(hidden, b"" | b"." | b"..") {
                    return Err(entry_error(
                        self.layer,
                        raw,
                        "is a whiteout that names no file; refusing it".into(),
                    ));
                }
                if hidden.starts_with(WHITEOUT_PREFIX) {
                    // `.wh..wh.*` (aufs bookkeeping) other than the opaque marker: nothing.
                    return Ok(());
                }
                let mut done = self.whiteout(&dir, hidden);
                if matches!(&done, Err(e) if denied(e))
                    && self.open_up(Path::new(OsStr::from_bytes(&clean)))?
                {
                    done = self.whiteout(&dir, hidden);
                }
                return done.map_err(|e| self.refused(raw, e));
            }
        }
        let Some(path) = names.place(raw, Role::Entry(header.kind))? else {
            return Ok(());
        };
        if self.options.whiteouts && self.options.mtimes {
            let dir = split(path.as_os_str().as_bytes()).0.to_vec();
            let mut noted = self.touch_dir(&dir);
            if matches!(&noted, Err(e) if denied(e)) && self.open_up(&path)? {
                noted = self.touch_dir(&dir);
            }
            noted.map_err(|e| self.refused(raw, e))?;
        }
        self.write(header, entry, names, read_error, raw, &path)?;
        if self.options.whiteouts {
            self.record(&path, header.kind == Kind::Directory)
                .map_err(|e| self.refused(raw, e))?;
        }
        Ok(())
    }

    /// Notes `path` (a clean name) as written by this layer, by where it physically is.
    fn record(&mut self, path: &Path, is_dir: bool) -> Result<()> {
        let clean = path.as_os_str().as_bytes();
        let (dir, base) = split(clean);
        let Some(mut physical) = self.physical_dir(dir)? else {
            return Ok(());
        };
        if !physical.is_empty() {
            physical.push(b'/');
        }
        physical.extend_from_slice(base);
        if !is_dir {
            // It may have replaced a directory, and what was below it.
            self.forget(&physical);
        }
        let mut end = physical.len();
        while let Some(i) = physical[..end].iter().rposition(|&b| b == b'/') {
            if !self.ancestors.insert(physical[..i].to_vec()) {
                break;
            }
            end = i;
        }
        self.upper.insert(physical);
        Ok(())
    }

    /// The physical path of the directory `dir` (a clean name, links followed inside the
    /// root); `None` when there is no such directory.
    fn physical_dir(&mut self, dir: &[u8]) -> Result<Option<Vec<u8>>> {
        if dir.is_empty() || self.plain.contains(dir) {
            return Ok(Some(dir.to_vec()));
        }
        // A directory itself (not a link) right below one known: known too, without a walk.
        let parent = split(dir).0;
        if parent.is_empty() || self.plain.contains(parent) {
            let status = self.root.status(Path::new(OsStr::from_bytes(dir)))?;
            if status.is_some_and(|(mode, ..)| mode & libc::S_IFMT == libc::S_IFDIR) {
                self.plain.insert(dir.to_vec());
                return Ok(Some(dir.to_vec()));
            }
        }
        let Some((physical, links)) = self.root.resolve_dir(Path::new(OsStr::from_bytes(dir)))?
        else {
            return Ok(None);
        };
        let physical = physical.into_os_string().into_vec();
        if !links {
            self.plain.insert(physical.clone());
        }
        Ok(Some(physical))
    }

    /// [`State::touch`] of the directory `dir` (a clean name), when there is one.
    fn touch_dir(&mut self, dir: &[u8]) -> Result<()> {
        match self.physical_dir(dir)? {
            Some(physical) => self.touch(physical),
            None => Ok(()),
        }
    }

    /// Notes the modification time of the physical directory `dir`, about to change, the first
    /// time this layer changes it.
    fn touch(&mut self, dir: Vec<u8>) -> Result<()> {
        if !self.options.mtimes || self.touched.contains_key(&dir) {
            return Ok(());
        }
        if let Some((_, identity, mtime)) = self.root.status(Path::new(OsStr::from_bytes(&dir)))? {
            self.touched.insert(dir, (identity, mtime));
        }
        Ok(())
    }

    /// Forgets what is known of the directories at and below the physical path `path`.
    fn forget(&mut self, path: &[u8]) {
        if path.is_empty() {
            self.plain.clear();
            return;
        }
        self.plain.remove(path);
        let mut from = path.to_vec();
        from.push(b'/');
        let mut to = path.to_vec();
        to.push(b'/' + 1);
        let below: Vec<Vec<u8>> = self.plain.range(from..to).cloned().collect();
        for p in below {
            self.plain.remove(&p);
        }
    }

    /// Writes one entry at `path`.
    fn write<R: tar::Input>(
        &mut self,
        header: &Header,
        entry: &mut tar::Entry<'_, R>,
        names: &mut dyn Names,
        read_error: &dyn Fn(io::Error) -> Error,
        raw: &[u8],
        path: &Path,
    ) -> Result<()> {
        let path = path.to_path_buf();
        let root = self.root;
        let shown = root.path().join(&path);
        match header.kind {
            Kind::Directory => {
                let identity = self
                    .writable(&path, || root.mkdir(&path))
                    .map_err(|e| self.refused(raw, e))?;
                let metadata = self.metadata(header, true);
                let xattrs = if self.options.xattrs {
                    header.xattrs.clone()
                } else {
                    Vec::new()
                };
                self.directories
                    .push((raw.to_vec(), path, identity, metadata, xattrs));
            }
            Kind::Regular | Kind::Contiguous => {
                let metadata = self.metadata(header, true);
                let mode = metadata.mode.unwrap_or(0o644);
                let mut file = self
                    .writable(&path, || root.create_file(&path, mode))
                    .map_err(|e| self.refused(raw, e))?;
                let xattrs = if self.options.xattrs {
                    header.xattrs.clone()
                } else {
                    Vec::new()
                };
                match &self.jobs {
                    // A small file's data is handed to a writer thread: the names are made
                    // here, in the tar's order, while the data is written beside.
                    Some(jobs) if header.size <= BUFFERED_MAX => {
                        let mut data = Vec::with_capacity(header.size as usize);
                        entry.read_to_end(&mut data).map_err(read_error)?;
                        let job = Job {
                            file,
                            data,
                            metadata,
                            xattrs,
                            shown,
                        };
                        if jobs.send(job).is_err() {
                            return Err(Error::io(
                                "cannot write",
                                root.path(),
                                io::Error::other("the writer threads stopped"),
                            ));
                        }
                    }
                    _ => {
                        copy_data(entry, &mut file, &shown, read_error)?;
                        for warning in finish_file(&file, &metadata, &xattrs, &shown)? {
                            self.warn(warning);
                        }
                    }
                }
            }
            Kind::Symlink => {
                let target = PathBuf::from(OsStr::from_bytes(&header.link));
                self.writable(&path, || root.symlink(&target, &path))
                    .map_err(|e| self.refused(raw, e))?;
                let metadata = self.metadata(header, false);
                if metadata.owner.is_some() || metadata.mtime.is_some() {
                    root.set_metadata(&path, &metadata)
                        .map_err(|e| self.refused(raw, e))?;
                }
            }
            Kind::HardLink => {
                let Some(source) = names.place(&header.link, Role::LinkTarget)? else {
                    return Ok(());
                };
                self.writable(&path, || root.hard_link(&source, &path))
                    .map_err(|e| self.refused(raw, e))?;
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => {
                let special = match header.kind {
                    Kind::Fifo => Special::Fifo,
                    kind => {
                        let (major, minor) = (
                            u32::try_from(header.devmajor),
                            u32::try_from(header.devminor),
                        );
                        let (Ok(major), Ok(minor)) = (major, minor) else {
                            return Err(entry_error(
                                self.layer,
                                raw,
                                "has device numbers out of range; refusing it".into(),
                            ));
                        };
                        if kind == Kind::CharDevice {
                            Special::Char(major, minor)
                        } else {
                            Special::Block(major, minor)
                        }
                    }
                };
                match (self.options.specials, special) {
                    (Specials::Refuse, _) => {
                        return Err(Error::Unsupported {
                            what: format!(
                                "the tar entry {:?} of layer {}",
                                tar::path::display(raw),
                                self.layer
                            ),
                            reason: format!(
                                "is a {} entry (device, FIFO…); refusing it",
                                header.kind.describe()
                            ),
                        })
                    }
                    (Specials::SkipDevices, Special::Char(..) | Special::Block(..)) => {
                        self.warn(format!(
                            "skipped the {} {} of layer {} (making device nodes needs root)",
                            header.kind.describe(),
                            tar::path::display(raw),
                            self.layer
                        ));
                        return Ok(());
                    }
                    _ => {}
                }
                let metadata = self.metadata(header, true);
                self.writable(&path, || {
                    root.make_special(&path, special, metadata.mode.unwrap_or(0o644))
                })
                .map_err(|e| self.refused(raw, e))?;
                root.set_metadata(&path, &metadata)
                    .map_err(|e| self.refused(raw, e))?;
            }
            Kind::Other(_) => {
                return Err(Error::Unsupported {
                    what: format!(
                        "the tar entry {:?} of layer {}",
                        tar::path::display(raw),
                        self.layer
                    ),
                    reason: format!("is a {}; refusing it", header.kind.describe()),
                })
            }
        }
        Ok(())
    }

    /// `.wh.NAME` in `dir`: removes `NAME` and all below it as lower layers left it, wherever
    /// the whiteout stands in the tar. What this layer wrote stays (a whiteout applies to
    /// lower layers only): a name this layer wrote, or a directory above names it wrote,
    /// keeps that and loses the lower rest, as if the directory were opaque (as umoci and
    /// containerd do). Names are compared by where they physically are, so a whiteout reached
    /// through a link (`lib -> usr/lib`) spares what this layer wrote by the other name.
    fn whiteout(&mut self, dir: &[u8], hidden: &[u8]) -> Result<()> {
        let Some(mut path) = self.physical_dir(dir)? else {
            return Ok(());
        };
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(hidden);
        if self.upper.contains(&path) || self.ancestors.contains(&path) {
            // Only a directory itself (not through a link at its name) has lower children.
            let shown = Path::new(OsStr::from_bytes(&path));
            if let Some((_, false)) = self.root.resolve_dir(shown)? {
                self.opaque_physical(path)?;
            }
            return Ok(());
        }
        let root = self.root;
        let shown = Path::new(OsStr::from_bytes(&path));
        self.touch(split(&path).0.to_vec())?;
        self.writable(shown, || root.remove(shown))?;
        self.forget(&path);
        Ok(())
    }

    /// `.wh..wh..opq` in `dir`: removes every child of `dir` that lower layers left, wherever
    /// the marker stands in the tar (what this layer wrote stays, also below).
    fn opaque(&mut self, dir: &[u8]) -> Result<()> {
        match self.physical_dir(dir)? {
            Some(physical) => self.opaque_physical(physical),
            None => Ok(()),
        }
    }

    /// [`State::opaque`] of the physical directory `dir`.
    fn opaque_physical(&mut self, dir: Vec<u8>) -> Result<()> {
        self.forget(&dir);
        let mut todo = vec![dir];
        while let Some(dir) = todo.pop() {
            let children = self.root.read_dir(Path::new(OsStr::from_bytes(&dir)))?;
            for (name, is_dir) in children {
                let mut child = dir.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(name.as_bytes());
                if self.upper.contains(&child) || self.ancestors.contains(&child) {
                    if is_dir {
                        todo.push(child);
                    }
                    continue;
                }
                let root = self.root;
                let shown = Path::new(OsStr::from_bytes(&child));
                self.touch(dir.clone())?;
                self.writable(shown, || root.remove(shown))?;
            }
        }
        Ok(())
    }

    /// Runs `op`, which writes `path`; when it is denied (not root, in a directory without
    /// `u+wx`), gives the directories on the way to `path` `u+rwx` (recording their modes, to
    /// be restored once the layer is written) and runs it again, as `umoci --rootless` does.
    fn writable<T>(&mut self, path: &Path, op: impl Fn() -> Result<T>) -> Result<T> {
        match op() {
            Err(e) if denied(&e) && self.open_up(path)? => op(),
            result => result,
        }
    }

    /// Gives the directories from the root to `path`'s parent `u+rwx` where they lack it;
    /// returns whether any changed.
    fn open_up(&mut self, path: &Path) -> Result<bool> {
        let mut changed = false;
        let mut parents: Vec<&Path> = path.ancestors().skip(1).collect();
        if parents.is_empty() {
            parents.push(Path::new(""));
        }
        for prefix in parents.into_iter().rev() {
            let Some((physical, _)) = self.root.resolve_dir(prefix)? else {
                break;
            };
            let Some((mode, identity, _)) = self.root.status(&physical)? else {
                break;
            };
            let mode = mode & 0o7777;
            if mode & 0o700 == 0o700 {
                continue;
            }
            let opened = Metadata {
                mode: Some(mode | 0o700),
                ..Metadata::default()
            };
            self.root.set_metadata(&physical, &opened)?;
            if !self.opened.iter().any(|(_, id, _)| *id == identity) {
                self.opened.push((physical, identity, mode));
            }
            changed = true;
        }
        Ok(changed)
    }

    /// Sets the metadata of the layer's directories, deepest first.
    fn close_directories(&mut self) -> Result<()> {
        // Directories the layer changed keep their time, unless an entry sets it below.
        for (dir, (identity, mtime)) in std::mem::take(&mut self.touched) {
            let kept = Metadata {
                mtime: Some(mtime),
                ..Metadata::default()
            };
            self.root
                .set_dir_metadata(Path::new(OsStr::from_bytes(&dir)), &kept, identity)?;
        }
        let mut directories = std::mem::take(&mut self.directories);
        directories.sort_by_key(|(_, path, ..)| std::cmp::Reverse(path.components().count()));
        let mut set = HashSet::new();
        for (raw, path, identity, metadata, xattrs) in &directories {
            // Only the directory the entry made gets them, not what a later entry put there.
            let same = xattrs.is_empty()
                || self
                    .root
                    .set_dir_metadata(path, &Metadata::default(), *identity)
                    .map_err(|e| self.refused(raw, e))?;
            if !same {
                continue;
            }
            for (name, value) in xattrs {
                if let Err(e) = self.root.set_dir_xattr(path, name, value) {
                    self.warn(e.to_string());
                }
            }
            self.root
                .set_dir_metadata(path, metadata, *identity)
                .map_err(|e| self.refused(raw, e))?;
            set.insert(*identity);
        }
        // Directories opened up to write in them get their mode back (deepest first), unless
        // an entry of this layer gave them one.
        let mut opened = std::mem::take(&mut self.opened);
        opened.sort_by_key(|(path, ..)| std::cmp::Reverse(path.components().count()));
        for (path, identity, mode) in opened {
            if set.contains(&identity) {
                continue;
            }
            let restored = Metadata {
                mode: Some(mode),
                ..Metadata::default()
            };
            self.root.set_dir_metadata(&path, &restored, identity)?;
        }
        if self.skipped_warnings > 0 {
            let more = self.skipped_warnings;
            self.applied
                .warnings
                .push(format!("… and {more} more of the same kinds"));
        }
        Ok(())
    }
}

/// Whether `e` is a permission denied (`EACCES`), which opening up directories may cure.
fn denied(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.raw_os_error() == Some(libc::EACCES))
}

/// A clean name split at its last `/`: (directory, base name).
fn split(clean: &[u8]) -> (&[u8], &[u8]) {
    match clean.iter().rposition(|&b| b == b'/') {
        Some(i) => (&clean[..i], &clean[i + 1..]),
        None => (&clean[..0], clean),
    }
}

/// Copies an entry's data to `out`.
fn copy_data(
    entry: &mut dyn BufRead,
    out: &mut std::fs::File,
    shown: &Path,
    read_error: &dyn Fn(io::Error) -> Error,
) -> Result<()> {
    loop {
        let buf = match entry.fill_buf() {
            Ok([]) => return Ok(()),
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        let n = buf.len();
        out.write_all(buf)
            .map_err(|e| Error::io("cannot write", shown, e))?;
        entry.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::extract::{Policy, Resolver};
    use crate::codec::testkit::{header, Tar};
    use std::fs;

    struct Scene {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn scene() -> Scene {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        Scene {
            _tmp: tmp,
            root,
            outside,
        }
    }

    /// Applies `tar` as one layer of a root file system, with each resolver.
    fn layer(scene: &Scene, resolver: Resolver, tar: Vec<u8>) -> Result<Applied> {
        let root = Root::open(&scene.root, Policy::Chroot)
            .unwrap()
            .with_resolver(resolver)
            .unwrap_or_else(|_| {
                Root::open(&scene.root, Policy::Chroot)
                    .unwrap()
                    .with_resolver(Resolver::Walk)
                    .unwrap()
            })
            .replacing_directories();
        let digest = Digest::sha256_of(&tar);
        let options = Options::rootfs(decode::Limits::default(), false);
        let applied = apply(
            &root,
            &mut &tar[..],
            Compression::None,
            &digest,
            "test",
            &options,
            &mut Clean { layer: &digest },
        )?;
        assert_eq!(applied.diff_id, Some(digest));
        Ok(applied)
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = walkdir::WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    fn each(case: impl Fn(&Scene, Resolver)) {
        for resolver in [Resolver::Openat2, Resolver::Walk] {
            let scene = scene();
            case(&scene, resolver);
            assert_eq!(
                listing(&scene.outside),
                Vec::<String>::new(),
                "{resolver:?}"
            );
        }
    }

    #[test]
    fn whiteouts_remove_names_of_lower_layers_only() {
        each(|s, r| {
            let lower = Tar::default()
                .node("a/", b'5', "")
                .file("a/x", b"1")
                .file("a/y", b"2")
                .file("b", b"3")
                .file("d", b"lower d")
                .end();
            layer(s, r, lower).unwrap();
            let upper = Tar::default()
                .file("a/.wh.x", b"")
                .file("c", b"same layer")
                // A whiteout of a name the same layer adds leaves it, before or after.
                .file(".wh.c", b"")
                .file(".wh.d", b"")
                .file("d", b"upper d")
                .file(".wh.missing", b"")
                .end();
            layer(s, r, upper).unwrap();
            assert_eq!(listing(&s.root), ["a", "a/y", "b", "c", "d"]);
            assert_eq!(fs::read_to_string(s.root.join("d")).unwrap(), "upper d");
        });
    }

    #[test]
    fn an_opaque_marker_hides_lower_children_wherever_it_stands() {
        for marker_first in [true, false] {
            each(|s, r| {
                let lower = Tar::default()
                    .file("d/old", b"1")
                    .file("d/sub/old2", b"2")
                    .file("keep/k", b"3")
                    .end();
                layer(s, r, lower).unwrap();
                let mut upper = Tar::default();
                if marker_first {
                    upper = upper.file("d/.wh..wh..opq", b"");
                }
                upper = upper
                    .file("d/new", b"n")
                    .node("d/sub/", b'5', "")
                    .file("d/sub/new2", b"n2");
                if !marker_first {
                    upper = upper.file("d/.wh..wh..opq", b"");
                }
                layer(s, r, upper.end()).unwrap();
                assert_eq!(
                    listing(&s.root),
                    ["d", "d/new", "d/sub", "d/sub/new2", "keep", "keep/k"],
                    "marker first: {marker_first}"
                );
            });
        }
    }

    #[test]
    fn links_planted_by_an_earlier_layer_stay_inside() {
        each(|s, r| {
            let lower = Tar::default()
                .node("outside/", b'5', "")
                .node("up", b'2', "../../..")
                .node("abs", b'2', "/")
                .node("esc", b'2', "../outside")
                .node("deep/er/s", b'2', "../../../outside")
                .node("lib", b'2', "usr/lib")
                .node("usr/lib/", b'5', "")
                .end();
            layer(s, r, lower).unwrap();
            let upper = Tar::default()
                .file("up/a", b"1")
                .file("abs/outside/b", b"2")
                .file("esc/c", b"3")
                // A hard link to a deep symlink is that symlink at the new path.
                .node("h", b'1', "deep/er/s")
                .file("h/d", b"4")
                .file("../../e", b"5")
                .file("/abs/f", b"6")
                .file("lib/libx.so", b"7")
                .end();
            layer(s, r, upper).unwrap();
            for (path, content) in [
                ("a", "1"),
                ("outside/b", "2"),
                ("outside/c", "3"),
                ("outside/d", "4"),
                ("e", "5"),
                ("f", "6"),
                ("usr/lib/libx.so", "7"),
            ] {
                assert_eq!(
                    fs::read_to_string(s.root.join(path))
                        .unwrap_or_else(|e| panic!("{path}: {e}: {:?}", listing(&s.root))),
                    content,
                    "{path}"
                );
            }
            assert_eq!(
                fs::read_link(s.root.join("h")).unwrap(),
                Path::new("../../../outside")
            );
        });
    }

    #[test]
    fn a_file_replaces_a_lower_directory_and_modes_and_times_are_kept() {
        each(|s, r| {
            layer(s, r, Tar::default().file("x/inner", b"1").end()).unwrap();
            let mut h = header(b"x", b'0', 1, b"");
            h[100..108].copy_from_slice(b"0004755\0");
            h[136..148].copy_from_slice(b"00000001750\0");
            crate::codec::testkit::set_checksum(&mut h);
            let mut dir = header(b"dir/", b'5', 0, b"");
            dir[100..108].copy_from_slice(b"0000700\0");
            dir[136..148].copy_from_slice(b"00000000144\0");
            crate::codec::testkit::set_checksum(&mut dir);
            let upper = Tar::default()
                .raw(h, b"f")
                .raw(dir, b"")
                .file("dir/child", b"c")
                .end();
            layer(s, r, upper).unwrap();
            use std::os::unix::fs::MetadataExt;
            let x = fs::symlink_metadata(s.root.join("x")).unwrap();
            assert!(x.is_file());
            assert_eq!(x.mode() & 0o7777, 0o4755);
            assert_eq!(x.mtime(), 0o1750);
            let dir = fs::symlink_metadata(s.root.join("dir")).unwrap();
            assert_eq!(dir.mode() & 0o7777, 0o700);
            assert_eq!(dir.mtime(), 100, "set after its children");
        });
    }

    /// A header for `name` with the permission bits `mode`.
    fn with_mode(name: &str, typeflag: u8, mode: u32, link: &str) -> [u8; 512] {
        let mut h = header(name.as_bytes(), typeflag, 0, link.as_bytes());
        h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
        crate::codec::testkit::set_checksum(&mut h);
        h
    }

    #[test]
    fn a_whiteout_of_a_directory_this_layer_wrote_still_hides_the_lower_children() {
        each(|s, r| {
            let lower = Tar::default()
                .file("b/f", b"lower")
                .file("b/sub/old", b"lower")
                .file("c/f", b"lower")
                .file("c/sub/old", b"lower")
                .end();
            layer(s, r, lower).unwrap();
            let upper = Tar::default()
                // The directory entry, a child, then the whiteout (image-spec: the whiteout
                // hides the lower name; this layer's entries stay).
                .node("b/", b'5', "")
                .file("b/g", b"upper")
                .file(".wh.b", b"")
                // Variant: no directory entry, only a deeper child.
                .file("c/sub/new", b"upper")
                .file(".wh.c", b"")
                .end();
            layer(s, r, upper).unwrap();
            assert_eq!(
                listing(&s.root),
                ["b", "b/g", "c", "c/sub", "c/sub/new"],
                "{r:?}"
            );
        });
    }

    #[test]
    fn what_a_layer_wrote_through_a_link_is_its_own_to_whiteouts_by_either_name() {
        each(|s, r| {
            let lower = Tar::default()
                .node("lib", b'2', "usr/lib")
                .file("usr/lib/old.so", b"old")
                .end();
            layer(s, r, lower).unwrap();
            let upper = Tar::default()
                .file("usr/lib/new.so", b"new")
                .file("lib/.wh.new.so", b"")
                .end();
            layer(s, r, upper).unwrap();
            assert_eq!(
                listing(&s.root),
                ["lib", "usr", "usr/lib", "usr/lib/new.so", "usr/lib/old.so"]
            );
            // Variant: written through the link, the marker by the real name.
            let upper = Tar::default()
                .file("lib/newer.so", b"newer")
                .file("usr/lib/.wh..wh..opq", b"")
                .end();
            layer(s, r, upper).unwrap();
            assert_eq!(
                listing(&s.root),
                ["lib", "usr", "usr/lib", "usr/lib/newer.so"]
            );
        });
    }

    #[test]
    fn a_directorys_metadata_does_not_land_on_what_replaced_it() {
        use std::os::unix::fs::MetadataExt;
        each(|s, r| {
            layer(s, r, Tar::default().file("usr/bin/bash", b"sh").end()).unwrap();
            let upper = Tar::default()
                .raw(with_mode("x/", b'5', 0o4755, ""), b"")
                .node("x", b'1', "usr/bin/bash")
                // Variants: a symlink, and a file, in the directory's place.
                .raw(with_mode("y/", b'5', 0o4777, ""), b"")
                .node("y", b'2', "usr/bin/bash")
                .raw(with_mode("z/", b'5', 0o4777, ""), b"")
                .file("z", b"z")
                .end();
            layer(s, r, upper).unwrap();
            let mode = |p: &str| fs::symlink_metadata(s.root.join(p)).unwrap().mode() & 0o7777;
            assert_eq!(mode("usr/bin/bash"), 0o644);
            assert_eq!(mode("z"), 0o644);
            assert!(fs::symlink_metadata(s.root.join("y"))
                .unwrap()
                .file_type()
                .is_symlink());
            // A directory made again by a later entry gets that entry's metadata only.
            let again = Tar::default()
                .raw(with_mode("d/", b'5', 0o700, ""), b"")
                .file("d", b"file")
                .raw(with_mode("d/", b'5', 0o750, ""), b"")
                .end();
            layer(s, r, again).unwrap();
            assert_eq!(mode("d"), 0o750);
        });
    }

    #[test]
    fn whiteouts_that_name_no_file_are_refused() {
        for name in ["a/.wh..", ".wh.", "a/.wh.", ".wh..."] {
            each(|s, r| {
                layer(s, r, Tar::default().file("a/f", b"1").end()).unwrap();
                let e = layer(s, r, Tar::default().file(name, b"").end())
                    .unwrap_err()
                    .to_string();
                assert!(e.contains(name) && e.contains("names no file"), "{e}");
                assert_eq!(listing(&s.root), ["a", "a/f"]);
            });
        }
    }

    #[test]
    fn a_refusal_while_setting_directory_metadata_names_the_entry() {
        each(|s, r| {
            let tar = Tar::default()
                .node("d/etc/", b'5', "")
                .node("d", b'2', "d")
                .end();
            let e = layer(s, r, tar).unwrap_err().to_string();
            assert!(e.contains("\"d/etc/\"") && e.contains("of layer"), "{e}");
        });
    }

    #[test]
    fn a_directory_a_later_layer_changes_without_an_entry_keeps_its_time() {
        use std::os::unix::fs::MetadataExt;
        each(|s, r| {
            let dir = |name: &str, mtime: u32| {
                let mut h = header(name.as_bytes(), b'5', 0, b"");
                h[136..148].copy_from_slice(format!("{mtime:011o}\0").as_bytes());
                crate::codec::testkit::set_checksum(&mut h);
                h
            };
            let lower = Tar::default()
                .raw(dir("d/", 100), b"")
                .file("d/old", b"1")
                .raw(dir("e/", 200), b"")
                .file("e/f", b"2")
                .raw(dir("o/", 300), b"")
                .file("o/f", b"3")
                .raw(dir("n/", 400), b"")
                .end();
            layer(s, r, lower).unwrap();
            let upper = Tar::default()
                // A name added, one removed, an opaque directory: each keeps its time.
                .file("d/new", b"n")
                .file("e/.wh.f", b"")
                .file("o/.wh..wh..opq", b"")
                // With an entry of its own, the entry's time.
                .raw(dir("n/", 500), b"")
                .file("n/x", b"x")
                .end();
            layer(s, r, upper).unwrap();
            let mtime = |p: &str| fs::symlink_metadata(s.root.join(p)).unwrap().mtime();
            assert_eq!(
                [mtime("d"), mtime("e"), mtime("o"), mtime("n")],
                [100, 200, 300, 500],
                "{r:?}"
            );
            assert_eq!(
                listing(&s.root),
                ["d", "d/new", "d/old", "e", "n", "n/x", "o"]
            );
        });
    }

    #[test]
    fn devices_are_skipped_with_a_warning_without_privilege_and_fifos_made() {
        each(|s, r| {
            let tar = Tar::default()
                .node("dev/null", b'3', "")
                .node("fifo", b'6', "")
                .end();
            let applied = layer(s, r, tar).unwrap();
            assert!(applied.warnings[0].contains("needs root"), "{applied:?}");
            assert_eq!(listing(&s.root), ["fifo"]);
        });
    }

    #[test]
    fn a_huge_extension_header_is_refused_before_anything_is_allocated() {
        let s = scene();
        let tar = Tar::default()
            .raw(header(b"././@LongLink", b'L', 1 << 30, b""), b"")
            .0;
        let e = layer(&s, Resolver::Walk, tar).unwrap_err().to_string();
        assert!(e.contains("larger than the 1048576 bytes"), "{e}");
    }
}
