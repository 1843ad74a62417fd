//! `bundle create`: images from any layouts or archives, their referrers (recursively), a
//! description and `SHA256SUMS`, in one layout directory or archive.
//!
//! A bundle is a transfer ([`crate::ops::transfer`]) of every image asked for into a new
//! layout, plus three files at its top: `ocikit-bundle.json` (what it holds),
//! `SHA256SUMS` (every other file with its sha256; the bundle's identity is the sha256 of this
//! file) and, when signed, `SHA256SUMS.sig`.
//!
//! - **A directory** is built under a temp name beside `OUT` (`.ocikit-tmp-*`), through the
//!   layout writer (blobs linked where the source shares the file system, else copied and
//!   verified), then the description and `SHA256SUMS` are written, and the whole directory is
//!   renamed to `OUT` without replacing anything: `OUT` is absent or a whole bundle.
//! - **An archive** is written as one stream with `oci-layout`, the description and
//!   `SHA256SUMS` as its first entries, so a reader can verify it in one pass: `index.json`
//!   is rendered from the plan's entries before anything is written, and blobs are listed
//!   under the hash their sha256 digest names (any other digest is hashed first).
//!
//! Each image's `index.json` entry carries its full name in both
//! `org.opencontainers.image.ref.name` and `io.containerd.image.name`, so images with the same
//! tag from different repositories do not collide, and two images given one name are refused.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::graph::closure::closure;
use crate::graph::referrers::{Discovery, Scope};
use crate::ops::bundle::description::{
    self, Description, Omitted, Tool, DESCRIPTION, MEDIA_TYPE, MIN_READER_VERSION, SCHEMA_VERSION,
};
use crate::ops::bundle::sign::{SigningKey, SIGNATURE};
use crate::ops::bundle::sums::{Sums, SUMS};
use crate::ops::bundle::verify::BaseContent;
use crate::ops::bundle::{blob_name_mismatch, hash_of, sha256_of};
use crate::ops::transfer::{self, Plan, Selection};
use crate::progress::{NoProgress, Progress};
use crate::spec::digest::{Algorithm, Digest};
use crate::spec::reference::Reference;
use crate::spec::time::{rfc3339, Clock};
use crate::store::archive::parts::{PartList, PartsWriter};
use crate::store::archive::{ArchiveOptions, ArchiveWriter};
use crate::store::destination::BlobRef;
use crate::store::layout::{
    blob_file, blob_file_digest, layout_header, publish_dir, FileKind, IndexFile, Layout,
    LayoutRead, Link, TEMP_PREFIX,
};
use crate::store::union::Union;

/// One image asked for: where it is read, what names it, and the reference as given.
pub struct Request<'a> {
    pub source: &'a dyn LayoutRead,
    pub reference: Reference,
    /// As the user wrote it (recorded in the description).
    pub text: String,
}

/// Where a bundle goes.
#[derive(Clone, Debug)]
pub enum Output {
    /// A layout directory, which must not exist.
    Directory(PathBuf),
    /// An archive file, which must not exist, written as the options say.
    Archive(PathBuf, ArchiveOptions),
}

impl Output {
    /// The path written.
    pub fn path(&self) -> &Path {
        match self {
            Output::Directory(p) | Output::Archive(p, _) => p,
        }
    }
}

/// How to create a bundle.
#[non_exhaustive]
pub struct Options {
    pub transfer: transfer::Options,
    /// The creation time (`SOURCE_DATE_EPOCH` or now).
    pub clock: Clock,
    /// How blobs get into a directory bundle.
    pub link: Link,
    /// Signs `SHA256SUMS` into `SHA256SUMS.sig`.
    pub sign: Option<SigningKey>,
    /// An incremental bundle: blobs this base holds are left out.
    pub base: Option<BaseContent>,
    /// For an archive: split it into parts of this many bytes, plus a part list.
    pub split: Option<u64>,
}

impl Options {
    /// Referrers along, blobs linked where possible, no signature, complete.
    pub fn new(clock: Clock) -> Options {
        Options {
            transfer: transfer::Options::default(),
            clock,
            link: Link::Auto,
            sign: None,
            base: None,
            split: None,
        }
    }

    /// An archive split into parts of `split` bytes.
    pub fn with_split(self, split: Option<u64>) -> Options {
        Options { split, ..self }
    }

    /// With these transfer options.
    pub fn with_transfer(self, transfer: transfer::Options) -> Options {
        Options { transfer, ..self }
    }

    /// Blobs placed as `link` says.
    pub fn with_link(self, link: Link) -> Options {
        Options { link, ..self }
    }

    /// Signed with `key`.
    pub fn with_sign(self, sign: Option<SigningKey>) -> Options {
        Options { sign, ..self }
    }

    /// Incremental against `base`.
    pub fn with_base(self, base: Option<BaseContent>) -> Options {
        Options { base, ..self }
    }
}

/// What [`create`] made.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Created {
    pub path: PathBuf,
    /// The bundle's identity: the sha256 of its `SHA256SUMS`.
    pub bundle: Digest,
    pub description: Description,
    /// Files listed in `SHA256SUMS` (every file but it and the signature).
    pub files: usize,
    /// Bytes of those files.
    pub bytes: u64,
    /// The archive's size, for an archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_bytes: Option<u64>,
    /// For a split archive: the part list (written to `path` + `.parts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<PartList>,
    /// The signing key's fingerprint, when signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    pub warnings: Vec<String>,
}

/// Creates a bundle of `requests` at `output`.
pub fn create(
    requests: &[Request<'_>],
    output: &Output,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Created> {
    let path = output.path();
    if options.split.is_some() && !matches!(output, Output::Archive(..)) {
        return Err(Error::InvalidInput {
            what: "splitting into parts".into(),
            reason: "is for archives; name the bundle .tar, .tar.gz or .tar.zst".into(),
        });
    }
    if path.exists() || path.is_symlink() {
        return Err(Error::Conflict {
            what: path.display().to_string(),
            reason: "exists; a bundle is written whole, under a new name".into(),
        });
    }
    if requests.is_empty() {
        return Err(Error::InvalidInput {
            what: "a bundle".into(),
            reason: "needs at least one image".into(),
        });
    }
    // One source per layout (however many images it gives), so that each layout's index and
    // documents are read once; its images keep the order given.
    let mut groups: Vec<(&dyn LayoutRead, Vec<usize>)> = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|(source, _)| std::ptr::addr_eq(*source, request.source))
        {
            Some((_, members)) => members.push(i),
            None => groups.push((request.source, vec![i])),
        }
    }
    let sources: Vec<(&dyn LayoutRead, Selection)> = groups
        .iter()
        .map(|(source, members)| {
            let references = members
                .iter()
                .map(|&i| requests[i].reference.clone())
                .collect();
            (*source, Selection::Refs(references))
        })
        .collect();
    // The requests in the order the plan's roots come: (position given, request).
    let grouped: Vec<(usize, &Request<'_>)> = groups
        .iter()
        .flat_map(|(_, members)| members.iter().map(|&i| (i, &requests[i])))
        .collect();
    let requests = &grouped[..];
    let mut plan = Plan::new(&sources, &options.transfer)?;
    // A bundle never silently loses a signature: a referrer that cannot be read would leave
    // the bundle without it, yet listed (by a fallback tag), so failing its own verify.
    if let Some(first) = plan.unreadable_referrers().first() {
        return Err(Error::InvalidInput {
            what: "the bundle".into(),
            reason: format!(
                "cannot carry every referrer of its images: {first}{}",
                match plan.unreadable_referrers().len() - 1 {
                    0 => String::new(),
                    more => format!(" (and {more} more)"),
                }
            ),
        });
    }
    let names: Vec<Option<String>> = plan
        .entries()
        .iter()
        .filter(|e| e.root)
        .map(|e| e.identity().map(str::to_string))
        .collect();
    for (i, name) in names.iter().enumerate() {
        if let Some(name) = name {
            plan.name_root(i, name)?;
        }
    }
    let omitted: Vec<Omitted> = match &options.base {
        Some(base) => {
            let mut out: Vec<Omitted> = plan
                .omit(|d| base.has(d))
                .into_iter()
                .map(|b| Omitted {
                    digest: b.digest,
                    size: b.size,
                })
                .collect();
            out.sort();
            out
        }
        None => Vec::new(),
    };
    let made = match output {
        Output::Directory(path) => directory(&plan, requests, path, options, &omitted, progress)?,
        Output::Archive(path, archive) => {
            archive_bundle(&plan, requests, path, archive, options, &omitted, progress)?
        }
    };
    Ok(made)
}

/// The description and `SHA256SUMS` of a bundle whose layout files (all but the description)
/// are listed in `sums`; `view` reads the bundle's `index.json` and every blob.
struct Finished {
    description: Description,
    description_bytes: Vec<u8>,
    sums: Sums,
    sums_bytes: Vec<u8>,
    signature: Option<Vec<u8>>,
}

fn finish(
    view: &dyn LayoutRead,
    plan: &Plan<'_>,
    requests: &[(usize, &Request<'_>)],
    mut sums: Sums,
    options: &Options,
    omitted: &[Omitted],
) -> Result<Finished> {
    let bundle_id = Digest::sha256_of(&sums.render());
    let mut description = describe(view, plan, requests, &options.clock, bundle_id)?;
    if let Some(base) = &options.base {
        description.base = Some(description::Base {
            bundle: base.bundle.clone(),
            omitted: omitted.to_vec(),
        });
    }
    let description_bytes = description.to_bytes()?;
    sums.insert_bytes(DESCRIPTION, &description_bytes)?;
    let sums_bytes = sums.render();
    let signature = match &options.sign {
        Some(key) => Some(key.sign(&sums_bytes)?),
        None => None,
    };
    Ok(Finished {
        description,
        description_bytes,
        sums,
        sums_bytes,
        signature,
    })
}

/// What [`create`] reports; `index_len`: the length of the bundle's `index.json`.
fn created(
    path: &Path,
    finished: Finished,
    options: &Options,
    plan: &Plan<'_>,
    index_len: usize,
) -> Created {
    // The files SHA256SUMS lists: the blobs, index.json, oci-layout and the description.
    let bytes = finished.description.totals.bytes
        + (index_len + layout_header().len() + finished.description_bytes.len()) as u64;
    Created {
        path: path.to_path_buf(),
        bundle: Digest::sha256_of(&finished.sums_bytes),
        files: finished.sums.len(),
        bytes,
        description: finished.description,
        archive_bytes: None,
        parts: None,
        signed_by: options.sign.as_ref().map(SigningKey::fingerprint),
        warnings: plan
            .warnings()
            .iter()
            .cloned()
            .chain(plan.foreign().iter().map(|layer| {
                format!("foreign layer {layer} is not in the source (its descriptor lists where it is), so it is not in the bundle")
            }))
            .collect(),
    }
}

/// A directory bundle, built under a temp name and renamed into place.
fn directory(
    plan: &Plan<'_>,
    requests: &[(usize, &Request<'_>)],
    path: &Path,
    options: &Options,
    omitted: &[Omitted],
    progress: &dyn Progress,
) -> Result<Created> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io("cannot create", &parent, e))?;
    let temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir_in(&parent)
        .map_err(|e| Error::io("cannot create a temp directory in", &parent, e))?;
    let (layout, _) = Layout::init(temp.path())?;
    {
        let writer = layout.writer()?;
        transfer::write(plan, &writer, options.link, false, progress)?;
    }
    let index_bytes = layout.index_bytes()?;
    let index_len = index_bytes.len();
    let mut view = Union::of(plan.source());
    view.set_index(index_bytes);
    let mut sums = Sums::new();
    for file in layout.files()? {
        if file.kind != FileKind::Regular {
            continue;
        }
        let digest = match blob_file_digest(&file.path) {
            Some(Ok(digest)) if digest.known_algorithm() == Some(Algorithm::Sha256) => digest,
            named => {
                // Read once for SHA256SUMS, and a blob (linked, so not yet verified) checked
                // against its name in the same read.
                let full = temp.path().join(&file.path);
                let mut opened =
                    std::fs::File::open(&full).map_err(|e| Error::io("cannot open", &full, e))?;
                let also = named.and_then(|d| d.ok()?.known_algorithm());
                let hashed = hash_of(&mut opened, also, &NoProgress)
                    .map_err(|e| Error::io("cannot read", &full, e))?;
                if let Some(found) = blob_name_mismatch(&file.path, &hashed) {
                    return Err(Error::CorruptBlob {
                        digest: blob_file_digest(&file.path)
                            .and_then(|d| d.ok())
                            .unwrap_or_else(|| hashed.sha256.clone()),
                        layout: plan.source().name(),
                        detail: format!("its content hashes to {found}"),
                    });
                }
                hashed.sha256
            }
        };
        sums.insert(&file.path, &digest)?;
    }
    let finished = finish(&view, plan, requests, sums, options, omitted)?;
    layout.write_file_atomic(DESCRIPTION, &finished.description_bytes)?;
    layout.write_file_atomic(SUMS, &finished.sums_bytes)?;
    if let Some(signature) = &finished.signature {
        layout.write_file_atomic(SIGNATURE, signature)?;
    }
    publish_dir(temp.path(), path)?;
    // Moved: nothing is left to remove.
    let _ = temp.keep();
    Ok(created(path, finished, options, plan, index_len))
}

/// An archive bundle: the description and `SHA256SUMS` first, then the layout.
fn archive_bundle(
    plan: &Plan<'_>,
    requests: &[(usize, &Request<'_>)],
    path: &Path,
    archive: &ArchiveOptions,
    options: &Options,
    omitted: &[Omitted],
    progress: &dyn Progress,
) -> Result<Created> {
    let name = path.display().to_string();
    let mut index = IndexFile::empty();
    transfer::record(&mut index, plan.entries(), false, None, &name)?;
    let index_bytes = index.to_bytes();
    let mut view = Union::of(plan.source());
    view.set_index(index_bytes.clone());
    let mut sums = Sums::new();
    sums.insert_bytes("oci-layout", layout_header().as_bytes())?;
    sums.insert_bytes("index.json", &index_bytes)?;
    for blob in plan.blobs() {
        let digest = sha256_of_blob(plan.source(), blob)?;
        sums.insert(&blob_file(&blob.digest), &digest)?;
    }
    let finished = finish(&view, plan, requests, sums, options, omitted)?;
    let parts = match options.split {
        Some(size) => Some(PartsWriter::create(path, size)?),
        None => None,
    };
    let writer = match &parts {
        Some(parts) => ArchiveWriter::to_stream(Box::new(parts.sink()), name.clone(), archive)?,
        None => ArchiveWriter::create_new(path, archive)?,
    };
    writer.add_file(DESCRIPTION, &finished.description_bytes)?;
    writer.add_file(SUMS, &finished.sums_bytes)?;
    if let Some(signature) = &finished.signature {
        writer.add_file(SIGNATURE, signature)?;
    }
    transfer::write(plan, &writer, Link::Copy, false, progress)?;
    if writer.index_bytes() != index_bytes {
        return Err(Error::InvalidInput {
            what: format!("the index.json of {name}"),
            reason: "came out other than SHA256SUMS lists it; the archive is not finished".into(),
        });
    }
    let done = writer.finish()?;
    let mut made = created(path, finished, options, plan, index_bytes.len());
    made.archive_bytes = Some(done.bytes);
    if let Some(parts) = parts {
        made.parts = Some(parts.finish()?);
    }
    Ok(made)
}

/// A blob's sha256: the digest itself when it is one, else the hash of its bytes (verified
/// against its own digest as they are read).
fn sha256_of_blob(source: &dyn LayoutRead, blob: &BlobRef) -> Result<Digest> {
    if blob.digest.known_algorithm() == Some(Algorithm::Sha256) {
        return Ok(blob.digest.clone());
    }
    let mut reader = source.open_blob(&blob.digest, Some(blob.size))?;
    let (digest, _) = sha256_of(&mut reader, &NoProgress).map_err(|e| reader.error(e))?;
    Ok(digest)
}

/// The description of what `view` (the bundle's `index.json` over every blob) holds for
/// `requests`.
fn describe(
    view: &dyn LayoutRead,
    plan: &Plan<'_>,
    requests: &[(usize, &Request<'_>)],
    clock: &Clock,
    bundle_id: Digest,
) -> Result<Description> {
    let catalog = crate::ops::catalog::load(view)?;
    let discovery = Discovery::new(view, Scope::default())?;
    let mut images = Vec::new();
    let roots: Vec<&transfer::Entry> = plan.entries().iter().filter(|e| e.root).collect();
    let mut positions = Vec::new();
    for ((position, request), entry) in requests.iter().zip(roots) {
        positions.push(*position);
        let descriptor = &entry.descriptor;
        let alone = closure(&discovery, std::slice::from_ref(descriptor), false)?;
        let with = closure(&discovery, std::slice::from_ref(descriptor), true)?;
        let platforms = catalog
            .rows
            .iter()
            .find(|r| r.digest == descriptor.digest)
            .map(|r| r.platforms.clone())
            .unwrap_or_default();
        let mut seen = HashSet::new();
        let referrers = with
            .referrers
            .iter()
            .filter(|(_, r)| seen.insert(r.digest.clone()))
            .map(|(subject, r)| description::Referrer {
                digest: r.digest.clone(),
                artifact_type: r.artifact_type.clone(),
                size: r.size,
                subject: subject.clone(),
            })
            .collect();
        images.push(description::Image {
            reference: request.text.clone(),
            name: entry.identity().map(str::to_string),
            digest: descriptor.digest.clone(),
            media_type: descriptor.media_type.clone(),
            size: descriptor.size,
            content_size: alone.blobs.iter().map(|(_, s)| s).sum(),
            platforms,
            referrers,
        });
    }
    // In the order given.
    let mut ordered: Vec<(usize, description::Image)> = positions.into_iter().zip(images).collect();
    ordered.sort_by_key(|(position, _)| *position);
    let images: Vec<description::Image> = ordered.into_iter().map(|(_, image)| image).collect();
    Ok(Description {
        schema_version: SCHEMA_VERSION,
        media_type: MEDIA_TYPE.into(),
        bundle_id,
        created: rfc3339(clock.created()),
        tool: Tool::this(),
        min_reader_version: MIN_READER_VERSION.into(),
        totals: description::Totals {
            images: images.len(),
            referrers: plan.referrers(),
            blobs: plan.blobs().len(),
            bytes: plan.bytes(),
        },
        images,
        base: None,
    })
}
