//! Bringing one blob of any layout into this one: the one blob-transfer primitive
//! ([`LayoutWriter::copy_blob`]), which copy, import, export's layout side and image building
//! on a base all go through.
//!
//! A blob the destination has is left alone. Otherwise, when the source has it as a file of its
//! own ([`LayoutRead::local_blob`]) and the link mode allows, it is *linked*: a reflink
//! (`FICLONE`: a copy-on-write clone, on btrfs, XFS and others) or a hard link (the same
//! inode under a second name), both on one file system only. Linking reads no bytes, so it
//! verifies nothing but the size: the destination gets the source's file as it is, which is
//! what content addressing promises it is. A blob that cannot be linked is *copied*: read
//! through the verifying reader, written to a temp file, checked against its digest and size,
//! synced. Every way ends with an atomic rename that never replaces a file, so a concurrent
//! writer of the same blob is harmless, and the blob directory is synced once before the next
//! `index.json` update rather than after every blob.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::syncing::{Syncing, SYNC_EVERY};
use super::{open_regular_file, LayoutWriter, PendingBlob, Staged};
use crate::codec::pipe::{copy_hashed, PipeError};
use crate::error::{Error, IoContext, Result};
use crate::spec::digest::{Digest, Mismatch};
use crate::store::layout::LayoutRead;

/// How a blob may get from a source layout into a destination layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Link {
    /// A reflink where the file system can make one, else a hard link, else a copy.
    #[default]
    Auto,
    /// A hard link; failing that, an error.
    Hardlink,
    /// A reflink; failing that, an error.
    Reflink,
    /// Always a copy: read, verified and written.
    Copy,
}

impl Link {
    /// `auto`, `hardlink`, `reflink` or `copy`.
    pub fn name(self) -> &'static str {
        match self {
            Link::Auto => "auto",
            Link::Hardlink => "hardlink",
            Link::Reflink => "reflink",
            Link::Copy => "copy",
        }
    }
}

/// How a blob got into the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    /// It was there already.
    Present,
    Reflinked,
    Hardlinked,
    /// Its bytes were read, verified and written.
    Copied,
}

/// What [`Link::Auto`] found it cannot do from one source, so that a copy of many blobs tries
/// a reflink (or a hard link) once, not once per blob.
#[derive(Debug, Default)]
pub(super) struct Cannot {
    reflink: AtomicBool,
    hardlink: AtomicBool,
}

impl LayoutWriter<'_> {
    /// Makes blob `digest` of `size` bytes, read from `source`, a blob of this layout (see the
    /// module documentation for how). A blob already here is left alone.
    pub fn copy_blob(
        &self,
        source: &dyn LayoutRead,
        digest: &Digest,
        size: u64,
        link: Link,
    ) -> Result<Placed> {
        if self.holds(digest)? {
            return Ok(Placed::Present);
        }
        let local = match link {
            Link::Copy => None,
            _ => source.local_blob(digest)?,
        };
        if local.is_none() && matches!(link, Link::Hardlink | Link::Reflink) {
            return Err(Error::Unsupported {
                what: format!("blob {digest} of {}", source.name()),
                reason: format!(
                    "cannot be linked ({}): it is not a file of its own",
                    link.name()
                ),
            });
        }
        if let Some(local) = local {
            if let Some(placed) = self.link_blob(&source.name(), &local, digest, size, link)? {
                return Ok(placed);
            }
        }
        self.copy_verified(source.open_blob_raw(digest)?, &source.name(), digest, size)
    }

    /// Makes a staged file (see [`Staged`]) the blob it hashed to: linked into place where
    /// the file system allows, else copied. The staged file stays until it is dropped.
    pub fn adopt(&self, staged: &Staged) -> Result<Placed> {
        let digest = &staged.digest;
        if self.holds(digest)? {
            return Ok(Placed::Present);
        }
        let local = staged.path();
        let name = local.display().to_string();
        if let Some(placed) = self.link_blob(&name, local, digest, staged.size, Link::Auto)? {
            return Ok(placed);
        }
        let file = open_regular_file(staged.path())?;
        self.copy_verified(Box::new(file), &name, digest, staged.size)
    }

    /// Whether blob `digest` is here already (a regular file in its place).
    fn holds(&self, digest: &Digest) -> Result<bool> {
        let target = self.layout.blob_path(digest);
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_file() => Ok(true),
            Ok(_) => Err(super::not_regular(&target)),
            Err(_) => Ok(false),
        }
    }

    /// Copies blob `digest` of `size` bytes from `raw` (read from `from`) into place. The bytes
    /// are hashed once, as they are read (a thread ahead of the writes into the temp file), and
    /// checked against the digest and the size before the rename; no more than one byte past
    /// the size is read.
    fn copy_verified(
        &self,
        raw: Box<dyn Read + Send + '_>,
        from: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Placed> {
        let algorithm = digest.known_algorithm().ok_or_else(|| Error::Unsupported {
            what: format!("blob {digest}"),
            reason: "cannot be copied and verified: ocikit computes only sha256 and sha512 digests"
                .into(),
        })?;
        let temp = self.layout.temp_file()?;
        // A large blob is synced as it is written (the writeback overlaps the copy), so that
        // the sync before its rename is short.
        let file = temp.as_file().try_clone().ctx("cannot open", temp.path())?;
        let (mut out, syncer): (Box<dyn Write>, _) = if size > SYNC_EVERY {
            let (syncing, syncer) = Syncing::start(file).ctx("cannot open", temp.path())?;
            (Box::new(syncing), Some(syncer))
        } else {
            (Box::new(file), None)
        };
        let mut raw = raw;
        let copied = copy_hashed(
            &mut raw,
            algorithm,
            size,
            size.saturating_add(1),
            &mut |chunk| out.write_all(chunk),
        )
        .map_err(|e| match e {
            PipeError::Read(e) => Error::io("cannot read blob", format!("{digest} of {from}"), e),
            PipeError::Write(e) => Error::io("cannot write blob to", temp.path(), e),
        });
        drop(out);
        if let Some(syncer) = syncer {
            let _ = syncer.join();
        }
        let copied = copied?;
        let pending = PendingBlob {
            layout: self.layout,
            temp,
            digest: copied.digest,
            size: copied.size,
        };
        if &pending.digest != digest || pending.size != size {
            let detail = if pending.size > size {
                Mismatch::TooLong { expected: size }.to_string()
            } else if pending.size < size {
                Mismatch::TooShort {
                    expected: size,
                    actual: pending.size,
                }
                .to_string()
            } else {
                Mismatch::Digest {
                    actual: pending.digest.clone(),
                }
                .to_string()
            };
            return Err(Error::CorruptBlob {
                digest: digest.clone(),
                layout: from.to_string(),
                detail,
            });
        }
        self.place(pending)?;
        Ok(Placed::Copied)
    }

    /// Renames a written blob into `blobs/` without replacing anything there; the directory is
    /// synced before the next `index.json` update.
    fn place(&self, pending: PendingBlob<'_>) -> Result<()> {
        pending
            .temp
            .as_file()
            .sync_all()
            .ctx("cannot sync temp file", pending.temp.path())?;
        let target = self.layout.blob_path(&pending.digest);
        let dir = self.blob_dir(&target)?;
        match pending.temp.persist_noclobber(&target) {
            Ok(_) => {}
            // Someone placed the same blob meanwhile: the same bytes, by content addressing.
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => {
                return Err(Error::io(
                    "cannot move blob into place at",
                    &target,
                    e.error,
                ))
            }
        }
        self.unsynced(dir);
        Ok(())
    }

    /// The directory `target` goes in, created when missing.
    fn blob_dir(&self, target: &Path) -> Result<std::path::PathBuf> {
        let dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.layout.root.join("blobs"));
        fs::create_dir_all(&dir).ctx("cannot create directory", &dir)?;
        Ok(dir)
    }

    /// Links `local` into place as `link` allows; `None` when it cannot and a copy should be
    /// made instead (only with [`Link::Auto`]).
    fn link_blob(
        &self,
        from: &str,
        local: &Path,
        digest: &Digest,
        size: u64,
        link: Link,
    ) -> Result<Option<Placed>> {
        let file = open_regular_file(local).map_err(|e| match e {
            Error::Io { source: io, .. } if io.kind() == io::ErrorKind::NotFound => {
                Error::BlobNotFound {
                    digest: digest.clone(),
                    layout: from.to_string(),
                }
            }
            other => other,
        })?;
        let meta = file.metadata().ctx("cannot read", local)?;
        if meta.len() != size {
            return Err(Error::CorruptBlob {
                digest: digest.clone(),
                layout: from.to_string(),
                detail: format!("it is {} bytes long, {size} were expected", meta.len()),
            });
        }
        let target = self.layout.blob_path(digest);
        let auto = link == Link::Auto;
        if link == Link::Reflink || (auto && !self.cannot.reflink.load(Ordering::Relaxed)) {
            let temp = self.layout.temp_file()?;
            match rustix::fs::ioctl_ficlone(temp.as_file(), &file) {
                Ok(()) => {
                    let pending = PendingBlob {
                        layout: self.layout,
                        temp,
                        digest: digest.clone(),
                        size,
                    };
                    self.place(pending)?;
                    return Ok(Some(Placed::Reflinked));
                }
                Err(e) if link == Link::Reflink => {
                    return Err(Error::io(
                        "cannot reflink (the file system must support FICLONE, and both layouts be on it)",
                        local,
                        e.into(),
                    ))
                }
                Err(_) => self.cannot.reflink.store(true, Ordering::Relaxed),
            }
        }
        if link == Link::Hardlink || (auto && !self.cannot.hardlink.load(Ordering::Relaxed)) {
            // Linked under a temp name first and checked to be the very file opened above (not
            // something put in its place since, such as a symlink), then renamed into place.
            let linked = tempfile::Builder::new()
                .prefix(super::TEMP_PREFIX)
                .make_in(&self.layout.root, |path| fs::hard_link(local, path));
            match linked {
                Ok(temp) => {
                    let same = fs::symlink_metadata(temp.path())
                        .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev());
                    if !same {
                        return Err(Error::io(
                            "refusing to link",
                            local,
                            io::Error::other("the file changed while it was being linked"),
                        ));
                    }
                    let dir = self.blob_dir(&target)?;
                    return match temp.persist_noclobber(&target) {
                        Ok(()) => {
                            self.unsynced(dir);
                            Ok(Some(Placed::Hardlinked))
                        }
                        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                            Ok(Some(Placed::Present))
                        }
                        Err(e) => Err(Error::io(
                            "cannot move blob into place at",
                            &target,
                            e.error,
                        )),
                    };
                }
                Err(e) if link == Link::Hardlink => {
                    return Err(Error::io(
                        "cannot hard-link (both layouts must be on one file system)",
                        local,
                        e,
                    ))
                }
                Err(_) => self.cannot.hardlink.store(true, Ordering::Relaxed),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::store::layout::Layout;
    use std::os::unix::fs::MetadataExt;

    fn two_layouts() -> (tempfile::TempDir, Layout, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = Layout::init(&dir.path().join("a")).unwrap();
        let (b, _) = Layout::init(&dir.path().join("b")).unwrap();
        (dir, a, b)
    }

    /// A source of one blob held in memory.
    struct Memory(Vec<u8>);

    impl LayoutRead for Memory {
        fn name(&self) -> String {
            "memory".into()
        }
        fn index_bytes(&self) -> Result<Vec<u8>> {
            Ok(b"{}".to_vec())
        }
        fn open_blob_raw(&self, _: &Digest) -> Result<Box<dyn Read + Send + '_>> {
            Ok(Box::new(&self.0[..]))
        }
        fn blob_len(&self, _: &Digest) -> Result<Option<u64>> {
            Ok(Some(self.0.len() as u64))
        }
        fn files(&self) -> Result<Vec<crate::store::layout::FileInfo>> {
            Ok(Vec::new())
        }
        fn root_file(&self, _: &str, _: u64) -> Result<Option<Vec<u8>>> {
            Ok(None)
        }
    }

    fn inode(path: &Path) -> u64 {
        fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn every_mode_places_the_blob_and_a_present_one_is_left_alone() {
        let bytes = vec![7u8; 3 * crate::codec::pipe::CHUNK + 5];
        for link in [Link::Auto, Link::Hardlink, Link::Copy] {
            let (_dir, a, b) = two_layouts();
            let blob = a.writer().unwrap().write_blob_bytes(&bytes).unwrap();
            let writer = b.writer().unwrap();
            let placed = writer.copy_blob(&a, &blob.digest, blob.size, link).unwrap();
            let (from, to) = (a.blob_path(&blob.digest), b.blob_path(&blob.digest));
            assert_eq!(fs::read(&to).unwrap(), bytes, "{link:?}");
            match placed {
                Placed::Hardlinked => assert_eq!(inode(&from), inode(&to)),
                Placed::Copied => assert_ne!(inode(&from), inode(&to)),
                Placed::Reflinked => {}
                Placed::Present => panic!("{link:?}: it was not there"),
            }
            if link == Link::Copy {
                assert_eq!(placed, Placed::Copied);
            }
            assert_eq!(
                writer.copy_blob(&a, &blob.digest, blob.size, link).unwrap(),
                Placed::Present
            );
            // Nothing is left behind.
            let temps = fs::read_dir(b.root())
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy()
                        .starts_with(crate::store::layout::TEMP_PREFIX)
                })
                .count();
            assert_eq!(temps, 0, "{link:?}");
        }
    }

    #[test]
    fn a_copy_is_verified_and_a_link_checks_the_size() {
        for len in [5usize, 3 * crate::codec::pipe::CHUNK] {
            let (_dir, a, b) = two_layouts();
            let good = vec![1u8; len];
            let blob = a.writer().unwrap().write_blob_bytes(&good).unwrap();
            // The source's file no longer matches its name.
            let mut bad = good.clone();
            bad[len / 2] ^= 1;
            fs::write(a.blob_path(&blob.digest), &bad).unwrap();
            let writer = b.writer().unwrap();
            let error = writer
                .copy_blob(&a, &blob.digest, blob.size, Link::Copy)
                .unwrap_err();
            assert!(matches!(error, Error::CorruptBlob { .. }), "{error}");
            assert!(!b.blob_path(&blob.digest).exists());
            // Longer than its descriptor says: refused before more than one byte too many is read.
            fs::write(a.blob_path(&blob.digest), vec![1u8; len + 4096]).unwrap();
            for link in [Link::Copy, Link::Hardlink] {
                let error = writer
                    .copy_blob(&a, &blob.digest, blob.size, link)
                    .unwrap_err();
                assert!(
                    matches!(error, Error::CorruptBlob { .. }),
                    "{link:?}: {error}"
                );
                assert!(error.to_string().contains("expected"), "{error}");
            }
            assert!(!b.blob_path(&blob.digest).exists());
        }
    }

    #[test]
    fn explicit_link_modes_fail_clearly_when_they_cannot_link() {
        let (_dir, a, b) = two_layouts();
        let blob = a.writer().unwrap().write_blob_bytes(b"x").unwrap();
        let writer = b.writer().unwrap();
        // A source whose blobs are not files of their own (an archive read in place, say).
        let memory = Memory(b"y".to_vec());
        let digest = Digest::sha256_of(b"y");
        for link in [Link::Hardlink, Link::Reflink] {
            let error = writer.copy_blob(&memory, &digest, 1, link).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
            assert!(
                error.to_string().contains("not a file of its own"),
                "{error}"
            );
        }
        assert_eq!(
            writer.copy_blob(&memory, &digest, 1, Link::Auto).unwrap(),
            Placed::Copied
        );
        // A reflink on a file system without them (ext4, tmpfs) is an error when asked for, a
        // hard link with auto.
        match writer.copy_blob(&a, &blob.digest, blob.size, Link::Reflink) {
            Ok(placed) => assert_eq!(placed, Placed::Reflinked),
            Err(error) => {
                assert!(error.to_string().contains("cannot reflink"), "{error}");
                assert!(!b.blob_path(&blob.digest).exists());
            }
        }
        let auto = writer
            .copy_blob(&a, &blob.digest, blob.size, Link::Auto)
            .unwrap();
        assert!(matches!(
            auto,
            Placed::Reflinked | Placed::Hardlinked | Placed::Present
        ));
    }

    #[test]
    fn a_missing_source_blob_is_not_found_in_every_mode() {
        let (_dir, a, b) = two_layouts();
        let writer = b.writer().unwrap();
        let absent = Digest::sha256_of(b"absent");
        for link in [Link::Auto, Link::Hardlink, Link::Copy] {
            let error = writer.copy_blob(&a, &absent, 6, link).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::NotFound, "{link:?}: {error}");
        }
    }
}
