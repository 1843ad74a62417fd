//! Copying images between layouts and archives: any source a reference opens, into a layout
//! directory (created when missing) or a new archive.
//!
//! A copy is a transfer ([`crate::ops::transfer`]): the closure of what the source reference
//! names (or of every entry), with referrers unless left out, written into the destination.
//! Into a layout, blobs it has are skipped and the others are linked where both layouts share
//! a file system (see [`Link`]) or copied and verified. Into an archive, the archive is written
//! whole, as `export` writes it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ops::export::{self, names_archive, Format, Output};
use crate::ops::transfer::{self, Plan, Selection, Written};
use crate::progress::Progress;
use crate::spec::reference::{Reference, Transport};
use crate::store::archive::ArchiveOptions;
use crate::store::layout::{InitOutcome, Layout, LayoutRead, Link};

/// Where a copy writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A layout directory, created when missing.
    Layout(PathBuf),
    /// A new archive.
    Archive(PathBuf, Format),
}

impl Target {
    /// What a destination reference names: an archive when its prefix says so
    /// (`oci-archive:`, `docker-archive:`), when it is a file, or when it does not exist and
    /// its name ends like one (`.tar`, `.tar.gz`, `.tgz`, `.tar.zst`, `.tzst`); a layout
    /// directory otherwise.
    pub fn of(reference: &Reference) -> Target {
        let path = reference.layout.clone();
        match reference.transport {
            Transport::DockerArchive => Target::Archive(path, Format::Docker),
            Transport::Archive => Target::Archive(path, Format::Oci),
            Transport::Directory => Target::Layout(path),
            Transport::Auto if path.is_file() => Target::Archive(path, Format::Oci),
            Transport::Auto if !path.exists() && names_archive(&path) => {
                Target::Archive(path, Format::Oci)
            }
            Transport::Auto => Target::Layout(path),
        }
    }

    fn path(&self) -> &Path {
        match self {
            Target::Layout(p) | Target::Archive(p, _) => p,
        }
    }
}

/// How to copy.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    pub transfer: transfer::Options,
    /// Every entry of the source, not what its reference names.
    pub all: bool,
    /// How blobs may get into a layout.
    pub link: Link,
    /// Move names the destination gives to other images; replace an existing archive.
    pub force: bool,
    /// How an archive is written.
    pub archive: ArchiveOptions,
    /// For a docker archive: the repository bare tags are given.
    pub repository: Option<String>,
}

impl Options {
    /// A copy with these transfer options, writing archives as `archive` says.
    pub fn new(transfer: transfer::Options, archive: ArchiveOptions) -> Options {
        Options {
            transfer,
            all: false,
            link: Link::Auto,
            force: false,
            archive,
            repository: None,
        }
    }

    /// Every entry (`true`), or what the reference names.
    pub fn with_all(self, all: bool) -> Options {
        Options { all, ..self }
    }

    /// Blobs placed as `link` says.
    pub fn with_link(self, link: Link) -> Options {
        Options { link, ..self }
    }

    /// Forced (see [`Options::force`]).
    pub fn with_force(self, force: bool) -> Options {
        Options { force, ..self }
    }

    /// Bare tags given `repository` in a docker archive.
    pub fn with_repository(self, repository: Option<String>) -> Options {
        Options { repository, ..self }
    }
}

/// What [`copy`] did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Copied {
    #[serde(flatten)]
    pub written: Written,
    /// Where it went.
    pub destination: PathBuf,
    /// Whether the destination was created (a new layout, or any archive).
    pub created: bool,
    /// The archive's size in bytes, for an archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_bytes: Option<u64>,
}

/// Copies what `reference` names in `source` (every entry with [`Options::all`]) to
/// `destination`, which may name the one image copied (`DST:NAME`).
pub fn copy(
    source: &dyn LayoutRead,
    reference: &Reference,
    destination: &Reference,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Copied> {
    if let Some(digest) = &destination.digest {
        return Err(Error::InvalidInput {
            what: format!("the destination {destination}"),
            reason: format!("names a digest ({digest}); a copy keeps digests, name the destination LAYOUT[:NAME]"),
        });
    }
    let target = Target::of(destination);
    let selection = if options.all {
        Selection::All
    } else {
        Selection::Refs(vec![reference.clone()])
    };
    let mut transfer_options = options.transfer.clone();
    if matches!(target, Target::Archive(_, Format::Docker)) {
        transfer_options.referrers = false;
    }
    let mut plan = Plan::new(&[(source, selection)], &transfer_options)?;
    if let Some(name) = &destination.name {
        plan.rename(name)?;
    }
    match &target {
        Target::Layout(path) => {
            let (layout, outcome) = Layout::init(path)?;
            let writer = layout.writer()?;
            let written = transfer::write(&plan, &writer, options.link, options.force, progress)?;
            Ok(Copied {
                written,
                destination: target.path().to_path_buf(),
                created: outcome == InitOutcome::Created,
                archive_bytes: None,
            })
        }
        Target::Archive(path, format) => {
            if path.exists() && !options.force {
                return Err(Error::Conflict {
                    what: path.display().to_string(),
                    reason: "exists, and an archive is written whole, not added to".into(),
                });
            }
            let export_options = export::Options::new(*format, options.archive)
                .with_repository(options.repository.clone());
            let exported =
                export::write(&plan, Output::File(path.clone()), &export_options, progress)?;
            Ok(Copied {
                written: exported.written,
                destination: path.clone(),
                created: true,
                archive_bytes: Some(exported.bytes),
            })
        }
    }
}
