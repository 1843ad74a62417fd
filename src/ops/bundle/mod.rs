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
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::codec::decode::Limits;
use crate::error::{Error, Result};
use crate::store::archive::Archive;
use crate::store::layout::{Layout, LayoutRead};

/// A bundle opened for reading: a layout directory or an archive.
pub enum Bundle {
    Directory(Layout),
    Archive(Archive),
}

impl Bundle {
    /// Opens the bundle at `path` (a directory, or an archive decompressed under `limits`).
    pub fn open(path: &Path, limits: &Limits) -> Result<Bundle> {
        if path.is_dir() {
            Ok(Bundle::Directory(Layout::open(path)?))
        } else {
            Ok(Bundle::Archive(Archive::open(path, limits)?))
        }
    }

    /// The bundle as a layout.
    pub fn layout(&self) -> &dyn LayoutRead {
        match self {
            Bundle::Directory(layout) => layout,
            Bundle::Archive(archive) => archive,
        }
    }

    /// A stream of the file at `path` (relative, `/`-separated).
    pub fn open_file(&self, path: &str) -> Result<Box<dyn Read + Send + '_>> {
        match self {
            Bundle::Directory(layout) => {
                let full: PathBuf = layout.root().join(path);
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&full)
                    .map_err(|e| Error::io("cannot open", &full, e))?;
                Ok(Box::new(file))
            }
            Bundle::Archive(archive) => Ok(archive.open_file(path)?.1),
        }
    }
}
