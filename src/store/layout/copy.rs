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
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{open_regular_file, LayoutWriter, PendingBlob, Staged, VerifiedBlob};
use crate::error::{Error, IoContext, Result};
use crate::spec::digest::{Digest, VerifyingReader};
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
        self.copy_verified(
            source.open_blob(digest, Some(size))?,
            &source.name(),
            digest,
            size,
        )
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
        let blob = VerifiedBlob {
            inner: VerifyingReader::new(Box::new(file), digest.clone(), Some(staged.size)),
            digest: digest.clone(),
            layout: name.clone(),
        };
        self.copy_verified(blob, &name, digest, staged.size)
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

    /// Copies a verified stream of blob `digest` (from `from`) into place.
    fn copy_verified(
        &self,
        mut blob: VerifiedBlob<'_>,
        from: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Placed> {
        let algorithm = digest.known_algorithm().ok_or_else(|| Error::Unsupported {
            what: format!("blob {digest}"),
            reason: "cannot be copied and verified: ocikit computes only sha256 and sha512 digests"
                .into(),
        })?;
        let mut sink = self.blob_sink(algorithm)?;
        let sink_path = sink.path.clone();
        blob.copy_to(&mut sink).map_err(|e| match e {
            // What `copy_to` calls its output is the temp file.
            Error::Io {
                action: "cannot write",
                source,
                ..
            } => Error::io("cannot write blob to", &sink_path, source),
            other => other,
        })?;
        let pending = sink.finish()?;
        if &pending.digest != digest || pending.size != size {
            return Err(Error::CorruptBlob {
                digest: digest.clone(),
                layout: from.to_string(),
                detail: format!(
                    "it reads as {} bytes hashing to {}, {size} bytes were expected",
                    pending.size, pending.digest
                ),
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
