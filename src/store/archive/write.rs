//! Writing a layout archive as one stream: the archive side of [`Destination`].
//!
//! # What the bytes are
//!
//! The archive depends only on what is written into it and the options, never on the machine,
//! the clock or the order in which blobs were found:
//! - entries come in this order: `oci-layout`; the files the caller adds before any blob, in
//!   the order added (a bundle's description and `SHA256SUMS`; a docker archive's
//!   `manifest.json`, `repositories` and legacy layer directories); then the blobs, sorted by
//!   path (`blobs/<algorithm>/<encoded>`), each directory entry just before the first entry
//!   below it; and `index.json` last;
//! - every entry is owned by uid/gid 0 with empty owner names, carries the one mtime of the
//!   options (0 by default; the CLI passes `SOURCE_DATE_EPOCH`), mode 0644 (directories 0755),
//!   in a ustar header, with a PAX record only for a name too long for ustar (a sha512 blob);
//! - the archive ends with two zero blocks (no padding to a record size), and compression is
//!   [`CompressWriter`]'s, which is deterministic too.
//!
//! `index.json` comes last because it is known last: names are recorded once the blobs they
//! name are in (as in a layout directory), and a reader that extracts sees the same layout
//! whatever the order.
//!
//! # Streaming
//!
//! Blob sizes are known from their descriptors, so each header is written before the blob's
//! bytes, which stream from the source through the verifying reader into the tar: memory does
//! not grow with the archive. Reading (and hashing) runs on a second thread, a few chunks ahead
//! of writing, so the two overlap. A blob whose bytes do not match its digest or size stops
//! the archive: an archive with a wrong blob is never finished.
//!
//! # Never half-written under its name
//!
//! Written to a file, the archive goes to a temp file beside it (`.ocikit-tmp-*` in the same
//! directory, so the final rename stays on one file system), which is synced and renamed over
//! the final name by [`ArchiveWriter::finish`]. Dropped unfinished (an error, a panic), the
//! temp file is removed; after a crash it is left, under its temp name only. Written to a
//! stream (stdout), bytes go out as they are made, and a failure leaves the stream cut short,
//! without its end-of-archive marker, which every reader refuses as truncated.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tar::EntryType;

use crate::codec::layer::builder::entry_start;
use crate::codec::layer::{CompressOptions, CompressWriter};
use crate::codec::pipe::{copy_hashed, PipeError};
use crate::codec::tar::padding;
use crate::error::{Error, IoContext, Result};
use crate::progress::Progress;
use crate::spec::digest::Digest;
use crate::store::destination::{BlobRef, Destination, DocumentStore, Placements};
use crate::store::layout::syncing::Syncing;
use crate::store::layout::{
    blob_file, layout_header, IndexFile, LayoutRead, Link, Placed, TEMP_PREFIX,
};

/// How an archive is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiveOptions {
    /// The compression of the whole tar (none, gzip or zstd).
    pub compress: CompressOptions,
    /// The modification time of every entry, in seconds since the epoch.
    pub mtime: u64,
}

impl ArchiveOptions {
    /// `compress`, mtime 0.
    pub fn new(compress: CompressOptions) -> ArchiveOptions {
        ArchiveOptions { compress, mtime: 0 }
    }

    /// The same options with every entry's mtime `mtime`.
    pub fn with_mtime(self, mtime: u64) -> ArchiveOptions {
        ArchiveOptions { mtime, ..self }
    }
}

/// What [`ArchiveWriter::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The archive's path; `None` for a stream.
    pub path: Option<PathBuf>,
    /// Bytes written (compressed, when compressed).
    pub bytes: u64,
    /// Blobs in the archive.
    pub blobs: usize,
}

/// A layout archive being written (see the module documentation).
pub struct ArchiveWriter {
    name: String,
    /// The temp file and the final path, for an archive written to a file.
    file: Option<(tempfile::NamedTempFile, PathBuf)>,
    /// The thread that syncs what is written as it is written, for an archive written to a
    /// file.
    syncer: Option<std::thread::JoinHandle<()>>,
    /// Whether the final rename must never replace what is at the path (an archive made
    /// with [`ArchiveWriter::create_new`]).
    no_replace: bool,
    mtime: u64,
    state: Mutex<State>,
    index: Mutex<IndexFile>,
}

type Sink = CompressWriter<Counting<BufWriter<Box<dyn Write + Send>>>>;

/// What has been written so far.
struct State {
    /// `None` once a write failed: nothing more is written, and the archive is not finished.
    out: Option<Sink>,
    blobs: HashSet<Digest>,
    dirs: HashSet<String>,
    /// Whether a blob was written: files are added before any blob only.
    blobs_started: bool,
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl ArchiveWriter {
    /// Starts an archive that will be `path` once finished, written to a temp file beside it.
    pub fn create(path: &Path, options: &ArchiveOptions) -> Result<ArchiveWriter> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if path.is_dir() {
            return Err(Error::Conflict {
                what: path.display().to_string(),
                reason: "is a directory; an archive is written to a file".into(),
            });
        }
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(dir)
            .ctx("cannot create a temp file in", dir)?;
        let file = temp.as_file().try_clone().ctx("cannot open", temp.path())?;
        let (syncing, syncer) = Syncing::start(file).ctx("cannot open", temp.path())?;
        let mut writer =
            ArchiveWriter::new(Box::new(syncing), path.display().to_string(), options)?;
        writer.file = Some((temp, path.to_path_buf()));
        writer.syncer = Some(syncer);
        writer.start()?;
        Ok(writer)
    }

    /// As [`ArchiveWriter::create`], for a path that must not exist: the final rename never
    /// replaces a file that appeared there meanwhile (`RENAME_NOREPLACE`, or link and unlink
    /// where the file system lacks it); the temp file is removed if it fails.
    pub fn create_new(path: &Path, options: &ArchiveOptions) -> Result<ArchiveWriter> {
        let mut writer = ArchiveWriter::create(path, options)?;
        writer.no_replace = true;
        Ok(writer)
    }

    /// Starts an archive written to `out` as it is made (stdout, say); `name` names it in
    /// messages.
    pub fn to_stream(
        out: Box<dyn Write + Send>,
        name: impl Into<String>,
        options: &ArchiveOptions,
    ) -> Result<ArchiveWriter> {
        let writer = ArchiveWriter::new(out, name.into(), options)?;
        writer.start()?;
        Ok(writer)
    }

    fn new(
        out: Box<dyn Write + Send>,
        name: String,
        options: &ArchiveOptions,
    ) -> Result<ArchiveWriter> {
        let counting = Counting {
            inner: BufWriter::with_capacity(256 * 1024, out),
            count: 0,
        };
        Ok(ArchiveWriter {
            name,
            file: None,
            syncer: None,
            no_replace: false,
            mtime: options.mtime,
            state: Mutex::new(State {
                out: Some(CompressWriter::new(counting, &options.compress)?),
                blobs: HashSet::new(),
                dirs: HashSet::new(),
                blobs_started: false,
            }),
            index: Mutex::new(IndexFile::empty()),
        })
    }

    fn start(&self) -> Result<()> {
        self.add_file("oci-layout", layout_header().as_bytes())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a regular file at `name` (relative to the archive's top, `/`-separated) with its
    /// directories. Files come before the blobs: adding one after a blob is an error.
    pub fn add_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.add_entry(name, None, bytes)
    }

    /// Adds a symbolic link at `name` to `target` (which must lead inside the archive:
    /// relative, without a leading `/`), with its directories, before any blob.
    pub fn add_symlink(&self, name: &str, target: &str) -> Result<()> {
        let normalized = crate::codec::tar::path::normalize(target.as_bytes());
        let inside = crate::codec::tar::path::resolve_symlink(name.as_bytes(), target.as_bytes())
            .is_some_and(|to| !to.is_empty());
        if normalized.absolute || !inside {
            return Err(Error::InvalidInput {
                what: format!("the symlink {name} -> {target}"),
                reason: "must lead to a path inside the archive".into(),
            });
        }
        self.add_entry(name, Some(target), &[])
    }

    fn add_entry(&self, name: &str, link: Option<&str>, bytes: &[u8]) -> Result<()> {
        check_name(name)?;
        let mut state = self.lock();
        if state.blobs_started {
            return Err(Error::InvalidInput {
                what: format!("the archive entry {name}"),
                reason: "comes after the blobs; files are added before any blob".into(),
            });
        }
        let (kind, mode) = match link {
            Some(_) => (EntryType::Symlink, 0o777),
            None => (EntryType::Regular, 0o644),
        };
        let start = entry_start(kind, name, link, mode, self.mtime, bytes.len() as u64);
        let name_owned = name.to_string();
        self.write(&mut state, |out, dirs, mtime| {
            write_dirs(out, dirs, &name_owned, mtime)?;
            out.write_all(&start)?;
            write_padded(out, bytes)
        })
    }

    /// Runs `write` on the output; after a failure the archive is dead.
    fn write(
        &self,
        state: &mut State,
        write: impl FnOnce(&mut Sink, &mut HashSet<String>, u64) -> io::Result<()>,
    ) -> Result<()> {
        let State { out, dirs, .. } = state;
        let Some(sink) = out.as_mut() else {
            return Err(self.dead());
        };
        write(sink, dirs, self.mtime).map_err(|e| {
            *out = None;
            Error::io("cannot write archive", &self.name, e)
        })
    }

    fn dead(&self) -> Error {
        Error::InvalidInput {
            what: format!("archive {}", self.name),
            reason: "cannot be written further: an earlier write failed".into(),
        }
    }

    /// The bytes `index.json` will have, as recorded so far.
    pub fn index_bytes(&self) -> Vec<u8> {
        self.index
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .to_bytes()
    }

    /// Writes `index.json` and the end of the archive, then (for a file) syncs it and renames
    /// it into place.
    pub fn finish(self) -> Result<Finished> {
        let index = self
            .index
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .to_bytes();
        let mut state = self.lock();
        let blobs = state.blobs.len();
        self.write(&mut state, |out, dirs, mtime| {
            let start = entry_start(
                EntryType::Regular,
                "index.json",
                None,
                0o644,
                mtime,
                index.len() as u64,
            );
            write_dirs(out, dirs, "index.json", mtime)?;
            out.write_all(&start)?;
            write_padded(out, &index)?;
            out.write_all(&[0; 1024])
        })?;
        let sink = state.out.take().ok_or_else(|| self.dead())?;
        drop(state);
        let counting = sink
            .finish()
            .map_err(|e| Error::io("cannot write archive", &self.name, e))?;
        let bytes = counting.count;
        let mut buffered = counting.inner;
        buffered
            .flush()
            .map_err(|e| Error::io("cannot write archive", &self.name, e))?;
        drop(buffered);
        if let Some(syncer) = self.syncer {
            // Its channel closed with the writer: it ends after the sync under way.
            let _ = syncer.join();
        }
        let path = match self.file {
            Some((temp, path)) => {
                temp.as_file()
                    .sync_all()
                    .ctx("cannot sync temp file", temp.path())?;
                let persisted = if self.no_replace {
                    temp.persist_noclobber(&path)
                } else {
                    temp.persist(&path)
                };
                persisted.map_err(|e| match e.error.kind() {
                    io::ErrorKind::AlreadyExists => Error::Conflict {
                        what: path.display().to_string(),
                        reason: "appeared while the archive was written; it is left as it is"
                            .into(),
                    },
                    _ => Error::io("cannot move the archive into place at", &path, e.error),
                })?;
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .ctx("cannot sync directory", &dir)?;
                Some(path)
            }
            None => None,
        };
        Ok(Finished { path, bytes, blobs })
    }
}

/// Refuses a name that is not a plain relative path.
fn check_name(name: &str) -> Result<()> {
    let normalized = crate::codec::tar::path::normalize(name.as_bytes());
    if !normalized.is_plain() || normalized.as_str() != Some(name) || name.is_empty() {
        return Err(Error::InvalidInput {
            what: format!("the archive entry name {name:?}"),
            reason: "must be a plain relative path (no `.`, `..`, empty or leading `/` parts)"
                .into(),
        });
    }
    Ok(())
}

/// Writes the directory entries of `name`'s parents that are not written yet.
fn write_dirs(
    out: &mut impl Write,
    dirs: &mut HashSet<String>,
    name: &str,
    mtime: u64,
) -> io::Result<()> {
    for (i, _) in name.match_indices('/') {
        let dir = &name[..=i];
        if dirs.insert(dir.to_string()) {
            out.write_all(&entry_start(
                EntryType::Directory,
                dir,
                None,
                0o755,
                mtime,
                0,
            ))?;
        }
    }
    Ok(())
}

/// Writes `bytes` and the padding after them.
fn write_padded(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes)?;
    out.write_all(&[0; 512][..padding(bytes.len() as u64) as usize])
}

impl Destination for ArchiveWriter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.lock().blobs.contains(digest))
    }

    /// Blobs go in sorted by path, each verified as it streams from `source`; `link` has no
    /// meaning for an archive.
    fn write_blobs(
        &self,
        source: &dyn LayoutRead,
        blobs: &[BlobRef],
        _link: Link,
        progress: &dyn Progress,
    ) -> Result<Placements> {
        let mut state = self.lock();
        state.blobs_started = true;
        let mut todo: Vec<(String, &BlobRef)> = blobs
            .iter()
            .filter(|b| !state.blobs.contains(&b.digest))
            .map(|b| (blob_file(&b.digest), b))
            .collect();
        todo.sort();
        todo.dedup_by(|a, b| a.0 == b.0);
        let mut placements = Placements {
            present: blobs.len() - todo.len(),
            ..Placements::default()
        };
        progress.total(todo.iter().map(|(_, b)| b.size).sum());
        for (name, blob) in &todo {
            self.write_blob(&mut state, source, name, blob, progress)?;
            state.blobs.insert(blob.digest.clone());
            placements.add(Placed::Copied, blob.size);
        }
        Ok(placements)
    }

    fn update_index(&self, change: &mut dyn FnMut(&mut IndexFile) -> Result<bool>) -> Result<()> {
        change(&mut self.index.lock().unwrap_or_else(PoisonError::into_inner)).map(|_| ())
    }

    fn documents(&self) -> Option<&dyn DocumentStore> {
        None
    }
}

impl ArchiveWriter {
    /// Writes one blob's entry: its header, its bytes as they stream from `source` (read and
    /// hashed a thread ahead of the writes), its padding; then checks the digest and size. A
    /// mismatch leaves the archive dead, never finished.
    fn write_blob(
        &self,
        state: &mut State,
        source: &dyn LayoutRead,
        name: &str,
        blob: &BlobRef,
        progress: &dyn Progress,
    ) -> Result<()> {
        let digest = &blob.digest;
        let algorithm = digest.known_algorithm().ok_or_else(|| Error::Unsupported {
            what: format!("blob {digest}"),
            reason: "cannot be copied and verified: ocikit computes only sha256 and sha512 digests"
                .into(),
        })?;
        let mut raw = source.open_blob_raw(digest)?;
        let mut failed_read = None;
        self.write(state, |out, dirs, mtime| {
            write_dirs(out, dirs, name, mtime)?;
            out.write_all(&entry_start(
                EntryType::Regular,
                name,
                None,
                0o644,
                mtime,
                blob.size,
            ))?;
            let copied = copy_hashed(
                &mut raw,
                algorithm,
                blob.size,
                blob.size.saturating_add(1),
                &mut |chunk| {
                    progress.advance(chunk.len() as u64);
                    out.write_all(chunk)
                },
            );
            let copied = match copied {
                Ok(copied) => copied,
                Err(PipeError::Write(e)) => return Err(e),
                Err(PipeError::Read(e)) => {
                    failed_read = Some(Error::io(
                        "cannot read blob",
                        format!("{digest} of {}", source.name()),
                        e,
                    ));
                    return Err(io::Error::other("a blob could not be read"));
                }
            };
            if &copied.digest != digest || copied.size != blob.size {
                failed_read = Some(Error::CorruptBlob {
                    digest: digest.clone(),
                    layout: source.name(),
                    detail: format!(
                        "it reads as {} bytes hashing to {}, {} bytes were expected",
                        copied.size, copied.digest, blob.size
                    ),
                });
                return Err(io::Error::other("a blob does not match its digest"));
            }
            out.write_all(&[0; 512][..padding(blob.size) as usize])
        })
        .map_err(|e| failed_read.take().unwrap_or(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode::Limits;
    use crate::progress::NoProgress;
    use crate::spec::document::media_type::Compression;
    use crate::store::archive::Archive;
    use crate::store::layout::Layout;

    /// A layout with blobs of these contents, named in index.json.
    fn source(contents: &[&[u8]]) -> (tempfile::TempDir, Layout, Vec<BlobRef>) {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = Layout::init(&dir.path().join("src")).unwrap();
        let writer = layout.writer().unwrap();
        let blobs = contents
            .iter()
            .map(|c| {
                let w = writer.write_blob_bytes(c).unwrap();
                BlobRef {
                    digest: w.digest,
                    size: w.size,
                }
            })
            .collect();
        drop(writer);
        (dir, layout, blobs)
    }

    /// Writes `blobs` into an archive at `path`, naming the smallest digest in index.json.
    fn write(
        path: &Path,
        layout: &Layout,
        blobs: &[BlobRef],
        compression: Compression,
    ) -> Result<Finished> {
        let named = blobs.iter().min().cloned().unwrap();
        let options = ArchiveOptions::new(CompressOptions::new(compression)).with_mtime(1234);
        let writer = ArchiveWriter::create(path, &options)?;
        writer.add_file("extra/first.json", b"{}")?;
        writer.write_blobs(layout, blobs, Link::Copy, &NoProgress)?;
        writer.update_index(&mut |index| {
            index.push_raw(serde_json::json!({
                "mediaType": "application/octet-stream",
                "digest": named.digest,
                "size": named.size,
            }))?;
            Ok(true)
        })?;
        writer.finish()
    }

    #[test]
    fn the_same_content_gives_the_same_bytes_in_a_fixed_order() {
        let big = vec![3u8; 2 * crate::codec::pipe::CHUNK + 1];
        let (dir, layout, blobs) = source(&[b"one", &big, b"three"]);
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let a = dir.path().join(format!("a-{}.tar", compression.name()));
            let b = dir.path().join(format!("b-{}.tar", compression.name()));
            let reversed: Vec<BlobRef> = blobs.iter().rev().cloned().collect();
            let finished = write(&a, &layout, &blobs, compression).unwrap();
            write(&b, &layout, &reversed, compression).unwrap();
            let bytes = fs_read(&a);
            assert!(
                bytes == fs_read(&b),
                "{compression:?}: same content, same bytes"
            );
            assert_eq!(finished.bytes, bytes.len() as u64);
            assert_eq!(finished.blobs, 3);
            // Read back as a layout, with every entry in its place and owned by root.
            let archive = Archive::open(&a, &Limits::default()).unwrap();
            for blob in &blobs {
                let mut out = Vec::new();
                archive
                    .open_blob(&blob.digest, Some(blob.size))
                    .unwrap()
                    .copy_to(&mut out)
                    .unwrap();
                assert_eq!(out.len() as u64, blob.size);
            }
            assert_eq!(archive.index().unwrap().entries().len(), 1);
        }
        let plain = fs_read(&dir.path().join("a-none.tar"));
        let mut reader = crate::codec::tar::Reader::new(&plain[..]);
        let mut names = Vec::new();
        while let Some(entry) = reader.next_entry().unwrap() {
            let header = entry.header();
            assert_eq!((header.uid, header.gid, header.mtime), (0, 0, 1234));
            assert!(header.uname.is_empty() && header.gname.is_empty());
            names.push(String::from_utf8(header.path.clone()).unwrap());
        }
        let mut sorted_blobs: Vec<String> = blobs.iter().map(|b| blob_file(&b.digest)).collect();
        sorted_blobs.sort();
        let mut expected = vec![
            "oci-layout".to_string(),
            "extra/".into(),
            "extra/first.json".into(),
            "blobs/".into(),
            "blobs/sha256/".into(),
        ];
        expected.extend(sorted_blobs);
        expected.push("index.json".into());
        assert_eq!(names, expected);
        // Two zero blocks and nothing after them.
        assert!(plain.ends_with(&[0u8; 1024]));
        assert_eq!(plain.len() % 512, 0);
    }

    fn fs_read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_blob_that_does_not_match_leaves_nothing_under_the_final_name() {
        let big = vec![9u8; 3 * crate::codec::pipe::CHUNK];
        let (dir, layout, blobs) = source(&[b"small", &big]);
        for corrupt in &blobs {
            let path = layout.blob_path(&corrupt.digest);
            let good = fs_read(&path);
            let mut bad = good.clone();
            bad[0] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            let out = dir.path().join("out.tar");
            std::fs::write(&out, b"the previous archive").unwrap();
            let error = write(&out, &layout, &blobs, Compression::None).unwrap_err();
            assert!(matches!(error, Error::CorruptBlob { .. }), "{error}");
            assert_eq!(fs_read(&out), b"the previous archive");
            let leftovers: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(TEMP_PREFIX))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
            std::fs::write(&path, &good).unwrap();
        }
    }

    #[test]
    fn a_stream_gets_the_same_bytes_and_files_come_before_blobs_only() {
        let (dir, layout, blobs) = source(&[b"a"]);
        let file = dir.path().join("f.tar");
        write(&file, &layout, &blobs, Compression::None).unwrap();
        let (tx, out) = shared_buffer();
        let options = ArchiveOptions::new(CompressOptions::new(Compression::None)).with_mtime(1234);
        let writer = ArchiveWriter::to_stream(Box::new(tx), "memory", &options).unwrap();
        writer.add_file("extra/first.json", b"{}").unwrap();
        writer
            .write_blobs(&layout, &blobs, Link::Copy, &NoProgress)
            .unwrap();
        let late = writer.add_file("late", b"x").unwrap_err();
        assert!(late.to_string().contains("before any blob"), "{late}");
        for bad in ["/abs", "a/../b", "", "./x"] {
            assert!(writer.add_file(bad, b"").is_err(), "{bad}");
        }
        writer
            .update_index(&mut |index| {
                index.push_raw(serde_json::json!({
                    "mediaType": "application/octet-stream",
                    "digest": blobs[0].digest,
                    "size": blobs[0].size,
                }))?;
                Ok(true)
            })
            .unwrap();
        let finished = writer.finish().unwrap();
        assert_eq!(finished.path, None);
        assert!(*out.lock().unwrap() == fs_read(&file));
    }

    /// A writer into a buffer the test keeps.
    fn shared_buffer() -> (SharedBuffer, std::sync::Arc<Mutex<Vec<u8>>>) {
        let buffer = std::sync::Arc::new(Mutex::new(Vec::new()));
        (SharedBuffer(buffer.clone()), buffer)
    }

    struct SharedBuffer(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_long_blob_name_gets_a_pax_record() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = Layout::init(&dir.path().join("src")).unwrap();
        let writer = layout.writer().unwrap();
        let mut sink = writer
            .blob_sink(crate::spec::digest::Algorithm::Sha512)
            .unwrap();
        sink.write_all(b"sha512 content").unwrap();
        let blob = sink.finish().unwrap().commit().unwrap();
        drop(writer);
        let out = dir.path().join("long.tar");
        let blobs = [BlobRef {
            digest: blob.digest.clone(),
            size: blob.size,
        }];
        write(&out, &layout, &blobs, Compression::None).unwrap();
        let archive = Archive::open(&out, &Limits::default()).unwrap();
        assert_eq!(archive.blob_len(&blob.digest).unwrap(), Some(blob.size));
        // tar(1) reads the name too.
        let listed = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&out)
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains(&blob_file(&blob.digest)), "{listed}");
    }

    #[test]
    fn an_archive_made_new_never_replaces_a_file_that_appeared_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.tar");
        let options = ArchiveOptions::new(CompressOptions::new(Compression::None)).with_mtime(1234);
        let writer = ArchiveWriter::create_new(&path, &options).unwrap();
        writer.add_file("oci-layout", b"{}").unwrap();
        // Someone else's file, made while the archive is written.
        std::fs::write(&path, b"precious").unwrap();
        let error = writer.finish().unwrap_err();
        assert!(matches!(error, Error::Conflict { .. }), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        // Ours: a symlink there (even dangling) is not replaced either; no temp file is left.
        std::fs::remove_file(&path).unwrap();
        let writer = ArchiveWriter::create_new(&path, &options).unwrap();
        std::os::unix::fs::symlink("nowhere", &path).unwrap();
        assert!(writer.finish().is_err());
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
