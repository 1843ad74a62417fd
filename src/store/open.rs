//! Opening what a reference's layout part names: a layout directory or a layout archive.

use std::path::Path;

use crate::codec::decode::Limits;
use crate::error::{Error, Result};
use crate::spec::reference::{Reference, Transport};
use crate::store::archive::Archive;
use crate::store::layout::{Layout, LayoutRead};

/// Parses a reference against what is on disk: a layout path may contain `:`, and the longest
/// prefix of the text that exists is the layout (see [`Reference::parse_with`]).
pub fn parse_reference(text: &str) -> Result<Reference> {
    Reference::parse_with(text, |path| path.exists())
}

/// How strictly to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// `oci-layout` must be present and name a 1.x version.
    Layout,
    /// Anything that is a directory or a complete, readable tar: for validation, which reports
    /// a missing or wrong `oci-layout`, and an archive's ambiguous entries, as findings.
    Unchecked,
}

/// Opens a reference's layout for reading: a directory, or an archive read in place (by its
/// transport prefix, or because the path is a file), decompressed under `limits`.
pub fn open_read(
    reference: &Reference,
    check: Check,
    limits: &Limits,
) -> Result<Box<dyn LayoutRead>> {
    let path = reference.layout.as_path();
    let unchecked = check == Check::Unchecked;
    Ok(if is_archive(reference) {
        Box::new(if unchecked {
            Archive::open_unchecked(path, limits)?
        } else {
            Archive::open(path, limits)?
        })
    } else {
        Box::new(if unchecked {
            Layout::open_unchecked(path)?
        } else {
            Layout::open(path)?
        })
    })
}

/// Opens a reference's layout for writing; archives cannot be changed in place.
pub fn open_write(reference: &Reference) -> Result<Layout> {
    let path: &Path = reference.layout.as_path();
    if is_archive(reference) || path.is_file() {
        return Err(Error::ReadOnly {
            what: path.display().to_string(),
            hint: "archives cannot be changed in place".into(),
        });
    }
    Layout::open(path)
}

/// Opens a reference's layout for writing, creating it first when the path does not exist or
/// is an empty directory (as `Layout::init` does); archives cannot be changed in place.
pub fn open_or_init(reference: &Reference) -> Result<Layout> {
    let path: &Path = reference.layout.as_path();
    if is_archive(reference) || path.is_file() {
        return open_write(reference);
    }
    Ok(Layout::init(path)?.0)
}

/// Whether the reference names an archive: by its prefix, or because its path is a file.
fn is_archive(reference: &Reference) -> bool {
    match reference.transport {
        Transport::Archive | Transport::DockerArchive => true,
        Transport::Directory => false,
        Transport::Auto => reference.layout.is_file(),
    }
}
