//! Air-gapped bundles: many images with their referrers in one layout (a directory or an
//! archive), described by `ocikit-bundle.json`, listed with their hashes in `SHA256SUMS`
//! (checkable with `sha256sum -c`), optionally signed (`SHA256SUMS.sig`, SSHSIG), and
//! optionally incremental against an earlier bundle.
//!
//! [`create`] writes one ([`create::create`]); [`verify`] checks one on the far side.

pub mod create;
pub mod description;
pub mod sign;
pub mod sums;
pub mod verify;

use std::io::Read;
use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::codec::decode::Limits;
use crate::codec::sniff::{sniff, Format};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::spec::digest::{Algorithm, Digest, Hasher};
use crate::store::archive::{Archive, Kept, Stage};
use crate::store::layout::{Layout, LayoutRead};

/// A bundle opened for reading: a layout directory or an archive.
pub enum Bundle {
    Directory(Layout),
    /// A plain tar, read in place (its files are positioned reads, in parallel).
    Archive(Archive),
    /// A compressed archive, read once as it streamed past: small files were kept, every
    /// larger one hashed on the way (sha256 and length, by its path from the layout's root)
    /// and let pass, so nothing is decompressed twice or spooled to disk.
    Streamed(Archive, HashMap<String, Hashed>, Option<Reopen>),
}

/// How to read a streamed archive again, in place, should a document it let pass be needed
/// (more small files than the stream keeps in memory).
pub struct Reopen {
    path: PathBuf,
    limits: Limits,
}

impl Reopen {
    /// The archive read in place (decompressed once more, into a temp file).
    pub fn open(&self) -> Result<Archive> {
        Archive::open(&self.path, &self.limits)
    }
}

impl Bundle {
    /// Opens the bundle at `path`: a directory; a plain tar, read in place; or a compressed
    /// archive, read once under `limits` (see [`Bundle::Streamed`]), its bytes counted in
    /// `progress`.
    pub fn open(path: &Path, limits: &Limits, progress: &dyn Progress) -> Result<Bundle> {
        if path.is_dir() {
            // A directory with neither a SHA256SUMS nor a description is no bundle (could
            // not run); one with either is a bundle, and a layout it fails to be is damage.
            return match Layout::open(path) {
                Ok(layout) => Ok(Bundle::Directory(layout)),
                Err(e)
                    if [sums::SUMS, description::DESCRIPTION]
                        .iter()
                        .all(|name| std::fs::symlink_metadata(path.join(name)).is_err()) =>
                {
                    Err(Error::InvalidInput {
                        what: path.display().to_string(),
                        reason: format!("is not a bundle: it has no {} ({e})", sums::SUMS),
                    })
                }
                Err(e) => Err(e),
            };
        }
        // Checked before opening: opening a FIFO would hang.
        let is_file = std::fs::metadata(path)
            .map_err(|e| Error::io("cannot open", path, e))?
            .is_file();
        if !is_file {
            return Err(Error::InvalidInput {
                what: path.display().to_string(),
                reason: "is not a bundle: neither a directory nor a regular file".into(),
            });
        }
        // A file that is no bundle, rather than a damaged one, could not be checked.
        Bundle::open_archive(path, limits, progress)
            .map_err(|e| verify::unless_a_bundle(path, limits, e))
    }

    /// Opens the archive at `path` (see [`Bundle::open`]).
    fn open_archive(path: &Path, limits: &Limits, progress: &dyn Progress) -> Result<Bundle> {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
        let mut head = [0u8; 8];
        let n = read_head(&mut file, &mut head).map_err(|e| Error::io("cannot read", path, e))?;
        if !matches!(sniff(&head[..n]), Format::Gzip | Format::Zstd) {
            return Ok(Bundle::Archive(Archive::open(path, limits)?));
        }
        let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
        progress.total(file.metadata().map(|m| m.len()).unwrap_or(0));
        let reopen = Reopen {
            path: path.to_path_buf(),
            limits: *limits,
        };
        Bundle::from_stream(
            file,
            &path.display().to_string(),
            limits,
            progress,
            Some(reopen),
        )
    }

    /// Reads a bundle archive (plain or compressed) from `input`, once, as it comes (see
    /// [`Bundle::Streamed`]); `name` names it in messages. `reopen`: how to read it again in
    /// place, if it can be.
    pub fn from_stream(
        input: impl Read,
        name: &str,
        limits: &Limits,
        progress: &dyn Progress,
        reopen: Option<Reopen>,
    ) -> Result<Bundle> {
        let hashing = Hashing::default();
        let archive = Archive::read_stream(input, name, limits, &hashing, progress)?;
        archive.check_oci_layout()?;
        // Each file is known by one name: its path from the layout's root. Files outside the
        // root are no file of the bundle (verify reports them, never reads them as one).
        let hashed = hashing
            .seen
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .into_iter()
            .filter_map(|(name, found)| {
                let path = name.strip_prefix(archive.root())?;
                (!path.is_empty()).then(|| (path.to_string(), found))
            })
            .collect();
        Ok(Bundle::Streamed(archive, hashed, reopen))
    }

    /// The bundle as a layout.
    pub fn layout(&self) -> &dyn LayoutRead {
        match self {
            Bundle::Directory(layout) => layout,
            Bundle::Archive(archive) | Bundle::Streamed(archive, ..) => archive,
        }
    }

    /// Every link entry of an archive bundle (none for a directory, whose symlinks are
    /// files that are not regular): its name from the top of the archive, its path from the
    /// layout's root when it is inside it, and what it links to. `bundle create` writes no
    /// links, and a link is never read as the file it leads to.
    pub fn links(&self) -> Vec<(String, Option<String>, String)> {
        let (Bundle::Archive(archive) | Bundle::Streamed(archive, ..)) = self else {
            return Vec::new();
        };
        archive
            .links()
            .into_iter()
            .map(|(name, link)| {
                let path = name.strip_prefix(archive.root()).map(str::to_string);
                (name, path, link)
            })
            .collect()
    }

    /// The sha256 and length of the file at `path` (relative to the layout's root, its one
    /// name), when they were taken as the archive streamed past (its bytes cannot be read
    /// again). Exact: no other name of the archive ever stands for it.
    pub fn hashed(&self, path: &str) -> Option<Hashed> {
        let Bundle::Streamed(_, hashed, _) = self else {
            return None;
        };
        hashed.get(path).cloned()
    }

    /// A stream of the file at `path` (relative, `/`-separated).
    pub fn open_file(&self, path: &str) -> Result<Box<dyn Read + Send + '_>> {
        match self {
            Bundle::Directory(layout) => {
                // Not through a symlink, and a regular file (a FIFO or device never ends).
                let full: PathBuf = layout.root().join(path);
                let file = crate::store::layout::open_regular_file(&full)?;
                Ok(Box::new(file))
            }
            Bundle::Archive(archive) | Bundle::Streamed(archive, ..) => {
                Ok(archive.open_file(path)?.1)
            }
        }
    }
}

/// Reads up to `head.len()` bytes from the start of `file`.
fn read_head(file: &mut std::fs::File, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            read => n += read,
        }
    }
    Ok(n)
}

/// The [`Stage`] of a bundle verified as it streams: every larger file is hashed and let pass.
#[derive(Default)]
struct Hashing {
    seen: Mutex<HashMap<String, Hashed>>,
}

impl Stage for Hashing {
    fn stage(&self, name: &str, _size: u64, data: &mut dyn Read) -> Result<Option<Kept>> {
        // The name's algorithm, for a blob of another than sha256 (its root is not known
        // yet: any name ending `blobs/<algorithm>/<hex>`).
        let also = name
            .rsplitn(4, '/')
            .collect::<Vec<_>>()
            .get(1..3)
            .and_then(|p| {
                (p[1] == "blobs")
                    .then(|| Algorithm::from_name(p[0]))
                    .flatten()
            })
            .filter(|a| *a != Algorithm::Sha256);
        let hashed = hash_of(data, also, &crate::progress::NoProgress)
            .map_err(|e| Error::io("cannot read", name, e))?;
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), hashed);
        Ok(None)
    }
}

/// A file as hashed: its sha256, its digest in the other algorithm asked for (a blob named
/// by a sha512 digest), and its length.
#[derive(Clone, Debug)]
pub struct Hashed {
    pub sha256: Digest,
    pub also: Option<Digest>,
    pub len: u64,
}

/// The sha256 of everything `reader` gives, and its length; `progress` counts the bytes. Read
/// in 1 MiB chunks (every file a bundle hashes goes through here).
pub fn sha256_of(reader: &mut dyn Read, progress: &dyn Progress) -> std::io::Result<(Digest, u64)> {
    hash_of(reader, None, progress).map(|h| (h.sha256, h.len))
}

/// The sha256 of everything `reader` gives and, in the same read, its digest in `also` (when
/// another algorithm), and its length; `progress` counts the bytes.
pub fn hash_of(
    reader: &mut dyn Read,
    also: Option<Algorithm>,
    progress: &dyn Progress,
) -> std::io::Result<Hashed> {
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut other = also.filter(|a| *a != Algorithm::Sha256).map(Hasher::new);
    let mut buffer = vec![0; 1024 * 1024];
    let mut len = 0;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(Hashed {
                sha256: hasher.finish(),
                also: other.map(Hasher::finish),
                len,
            });
        }
        hasher.update(&buffer[..n]);
        if let Some(other) = &mut other {
            other.update(&buffer[..n]);
        }
        progress.advance(n as u64);
        len += n as u64;
    }
}

/// The blob at `path` (`blobs/<algorithm>/<hex>`, an algorithm other than sha256, whose
/// name `SHA256SUMS` must list) whose bytes hashed to `hashed`, checked against the digest
/// its name gives: `None` when it matches (or is no such blob), else the digest it has.
pub fn blob_name_mismatch(path: &str, hashed: &Hashed) -> Option<Digest> {
    let Some(Ok(named)) = crate::store::layout::blob_file_digest(path) else {
        return None;
    };
    let found = match named.known_algorithm()? {
        Algorithm::Sha256 => return None,
        _ => hashed.also.as_ref()?,
    };
    (found != &named).then(|| found.clone())
}
