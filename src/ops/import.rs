//! Importing an archive into a layout directory: an OCI layout tar, or a `docker save` archive
//! (Docker 25+, which is an OCI layout too, or older, which is converted), plain, gzip or
//! zstd (detected from the bytes), from a file or a stream.
//!
//! - **Reading.** A plain tar file is read in place ([`Archive::open_tar`]: its headers only,
//!   then each blob a positioned read, in parallel). A compressed file, or a stream, is read
//!   once as it comes ([`Archive::read_stream`]): small files are kept in memory, every larger
//!   file is staged as a temp file inside the destination layout while it is hashed, and a
//!   blob the layout already has is not written at all. Keeping a staged blob is then a hard
//!   link (or a reflink) into `blobs/`, not a second copy; what is not kept goes when the
//!   import ends, and what a crash leaves is removed by `gc`.
//! - **Safe.** The archive is read by the one tar reader under the decompression limits, and
//!   refused whole when readers would read it differently (duplicate names, links to replaced
//!   entries, absolute or `..` names, links leading out): nothing from it is ever extracted, so
//!   nothing is written outside the layout. Every blob is verified against its digest before
//!   it is kept.
//! - **Merging.** Blobs the layout has are skipped; a name the layout gives to another image
//!   is an error unless forced; `index.json` is updated last, under the layout's locks, so an
//!   import that fails leaves it as it was (blobs already written are only unreferenced).
//!
//! # `docker save` archives from before Docker 25
//!
//! They hold `manifest.json` (each image's config file, tags and layer files), not an OCI
//! layout. Each image becomes an OCI image manifest (canonical JSON) over the config's bytes,
//! unchanged, and the layer files, unchanged: Docker writes them uncompressed, and they stay
//! so (`application/vnd.oci.image.layer.v1.tar`; a compressed one keeps its compression), so
//! each layer's digest is its diff_id and is checked against the config. Converting them to
//! gzip or zstd is a separate step. Each `RepoTags` entry becomes a name
//! (`org.opencontainers.image.ref.name`, the tag as written: `app:1`); an image without tags
//! gets an untagged entry.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::codec::decode::Limits;
use crate::codec::sniff::{self, Format as Sniffed};
use crate::error::{Error, Result};
use crate::ops::bundle::sign::Signer;
use crate::ops::bundle::sums::{Sums, MAX_SUMS_SIZE, SUMS};
use crate::ops::transfer::{self, Entry, EntryKind, Image, Names, Plan, Selection, Written};
use crate::progress::Progress;
use crate::spec::digest::{Algorithm, Digest};
use crate::spec::docker_archive::{self, ManifestItem};
use crate::spec::document::media_type::{self, Compression, OCI_CONFIG, OCI_MANIFEST};
use crate::spec::document::{canonical, parse_document, ImageConfig, Schema, REF_NAME};
use crate::store::archive::{Archive, Kept, Stage};
use crate::store::destination::{Destination, Placements};
use crate::store::layout::{
    blob_file_digest, IndexFile, InitOutcome, Layout, LayoutRead, LayoutWriter, Link, Placed,
    Staged, MAX_DOCUMENT_SIZE,
};

/// What is imported.
pub enum Input {
    /// An archive file.
    File(PathBuf),
    /// A stream (stdin), read once; named in messages.
    Stream(Box<dyn Read + Send>, String),
}

/// How to import.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// Move names the layout gives to other images.
    pub force: bool,
    /// The decompression limits for a compressed archive.
    pub limits: Limits,
    /// When set, the archive must be a bundle whose `SHA256SUMS.sig` one of these allowed
    /// signers (ssh-keygen's format) made, checked at `now` (seconds since the epoch).
    pub allowed_signers: Option<String>,
    /// The time signers' validity is checked at.
    pub now: u64,
}

impl Options {
    /// Forcing or not, under `limits`.
    pub fn new(force: bool, limits: Limits) -> Options {
        Options {
            force,
            limits,
            ..Options::default()
        }
    }

    /// Requires a bundle signed by one of `allowed_signers`, valid at `now`.
    pub fn with_allowed_signers(self, allowed_signers: Option<String>, now: u64) -> Options {
        Options {
            allowed_signers,
            now,
            ..self
        }
    }
}

/// What kind of archive was imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveKind {
    /// An OCI image layout tar (Docker 25+ and `ctr images export` write one too).
    Oci,
    /// A `docker save` archive from before Docker 25 (or containers/image's docker-archive).
    DockerSave,
}

/// What [`import`] did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Imported {
    pub kind: ArchiveKind,
    /// Whether the layout was created.
    pub created: bool,
    /// Who signed the bundle, when its signature was required and checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<Signer>,
    #[serde(flatten)]
    pub written: Written,
}

/// Imports `input` into the layout at `layout` (created when missing).
pub fn import(
    input: Input,
    layout: &Path,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Imported> {
    let existed = layout.exists();
    let (target, outcome) = Layout::init(layout)?;
    let created = outcome == InitOutcome::Created;
    let imported = import_into(input, &target, options, progress);
    if imported.is_err() && !existed {
        remove_if_untouched(&target);
    }
    imported.map(|mut imported| {
        imported.created = created;
        imported
    })
}

/// Removes the directory of a layout this import created, if nothing was recorded in it
/// meanwhile.
fn remove_if_untouched(layout: &Layout) {
    let empty = layout
        .index()
        .is_ok_and(|index: IndexFile| index.entries().is_empty());
    if empty {
        let _ = std::fs::remove_dir_all(layout.root());
    }
}

fn import_into(
    input: Input,
    layout: &Layout,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Imported> {
    let writer = layout.writer()?;
    let stage = Staging { writer: &writer };
    // Progress is the stream read for a stream (keeping staged blobs is then quick), the blobs
    // copied for a plain file read in place.
    let quiet = crate::progress::NoProgress;
    let (archive, progress): (Archive, &dyn Progress) = match input {
        Input::File(path) => {
            // Checked before opening: opening a FIFO would hang.
            let is_file = path.metadata().is_ok_and(|m| m.is_file());
            let mut file =
                std::fs::File::open(&path).map_err(|e| Error::io("cannot open", &path, e))?;
            let mut head = [0u8; 8];
            let n = if is_file {
                file.read(&mut head)
                    .map_err(|e| Error::io("cannot read", &path, e))?
            } else {
                0
            };
            if is_file && sniff::sniff(&head[..n]) == Sniffed::Tar {
                (Archive::open_tar(&path, &options.limits)?, progress)
            } else {
                let file =
                    std::fs::File::open(&path).map_err(|e| Error::io("cannot open", &path, e))?;
                progress.total(file.metadata().map(|m| m.len()).unwrap_or(0));
                let name = path.display().to_string();
                let archive = Archive::read_stream(file, &name, &options.limits, &stage, progress)?;
                (archive, &quiet)
            }
        }
        Input::Stream(stream, name) => (
            Archive::read_stream(stream, &name, &options.limits, &stage, progress)?,
            &quiet,
        ),
    };
    // A bundle is an OCI layout archive with SHA256SUMS. Its bytes are read once: the
    // signature is checked against the very bytes every file is then checked against (a plain
    // tar is read in place, and a second read could see another file).
    let oci = archive.has_file("oci-layout")?;
    let sums = match oci {
        true => archive.root_file(SUMS, MAX_SUMS_SIZE)?,
        false => None,
    };
    // A required signature is checked first: nothing of an archive no allowed signer vouches
    // for is looked at further.
    let signed_by = match &options.allowed_signers {
        Some(allowed) => Some(check_signature(
            &archive,
            sums.as_deref(),
            allowed,
            options.now,
        )?),
        None => None,
    };
    if oci {
        archive.check_oci_layout()?;
        if let Some(sums) = &sums {
            check_bundle(&archive, sums)?;
        }
        crate::ops::bundle::verify::require_base(&archive, layout)?;
        let plan = Plan::new(
            &[(&archive as &dyn LayoutRead, Selection::All)],
            &transfer::Options::default(),
        )?;
        let written = transfer::write(&plan, &writer, Link::Auto, options.force, progress)?;
        return Ok(Imported {
            kind: ArchiveKind::Oci,
            created: false,
            signed_by,
            written,
        });
    }
    if archive.has_file("manifest.json")? {
        return docker_save(&archive, &writer, options, progress);
    }
    Err(Error::Archive {
        path: PathBuf::from(archive.name()),
        entry: None,
        message: "it holds neither an oci-layout file (an OCI image layout archive) nor a manifest.json (a docker save archive)".into(),
    })
}

/// Checks that `archive` is a bundle whose `SHA256SUMS.sig` is a good signature of `sums`, its
/// `SHA256SUMS` as read (`None`: it has none, or is no OCI layout archive), by a key `allowed`
/// lists for the bundle namespace at `now`. The files are then checked against those same
/// bytes ([`check_bundle`]), so the signature vouches for every byte imported.
fn check_signature(
    archive: &Archive,
    sums: Option<&[u8]>,
    allowed: &str,
    now: u64,
) -> Result<Signer> {
    use crate::ops::bundle::sign::{self, SIGNATURE};
    let refused = |message: String| Error::Archive {
        path: PathBuf::from(archive.name()),
        entry: None,
        message: format!("{message}; nothing was imported"),
    };
    // An archive of another kind is never checked against a SHA256SUMS, so a signed one taken
    // from a bundle could not vouch for it.
    let Some(sums) = sums else {
        return Err(refused(format!(
            "is not a bundle (an OCI layout with {SUMS}), so no signature can vouch for it"
        )));
    };
    let Some(signature) = archive.root_file(SIGNATURE, 1024 * 1024)? else {
        return Err(refused(format!(
            "is an unsigned bundle: it has no {SIGNATURE}"
        )));
    };
    sign::verify(allowed, &signature, sums, now)?
        .map_err(|rejected| refused(format!("its signature is not accepted: {rejected}")))
}

/// A bundle (an archive carrying `SHA256SUMS`, whose bytes are `bytes`) is verified as it is
/// imported, before `index.json` is touched: every file listed and present, none unlisted,
/// each hashing to what `SHA256SUMS` says. Read once: a sha256 blob is listed with its own name (its bytes are
/// checked against that name as they are imported), every other file (kept as the archive was
/// read, or a blob of another algorithm) is hashed from what was read. So what was verified is
/// what is imported, even if the archive changes on disk meanwhile. (Its signature is checked
/// first when allowed signers are given: [`check_signature`].)
fn check_bundle(archive: &Archive, bytes: &[u8]) -> Result<()> {
    use crate::ops::bundle::sign::SIGNATURE;
    let bad = |entry: &str, message: String| Error::Archive {
        path: PathBuf::from(archive.name()),
        entry: Some(entry.to_string()),
        message: format!("{message}; the bundle does not verify, and nothing was imported"),
    };
    let sums = Sums::parse(bytes, SUMS)?;
    if let Some(outside) = archive.outside_root().first() {
        return Err(bad(
            outside,
            format!("is outside the bundle's root, not in {SUMS}"),
        ));
    }
    let files: std::collections::HashMap<String, crate::store::layout::FileInfo> = archive
        .files()?
        .into_iter()
        .filter(|f| f.kind != crate::store::layout::FileKind::Directory)
        .map(|f| (f.path.clone(), f))
        .collect();
    if let Some(path) = files
        .keys()
        .find(|p| sums.get(p).is_none() && *p != SUMS && *p != SIGNATURE)
    {
        return Err(bad(path, format!("is not listed in {SUMS}")));
    }
    let listed: Vec<(&str, &str)> = sums.entries().collect();
    listed.par_iter().try_for_each(|(path, hex)| {
        match files.get(*path) {
            None => return Err(bad(path, format!("is listed in {SUMS} and missing"))),
            Some(f) if f.kind != crate::store::layout::FileKind::Regular => {
                return Err(bad(path, "is not a regular file".into()))
            }
            Some(_) => {}
        }
        if let Some(Ok(digest)) = blob_file_digest(path) {
            if digest.known_algorithm() == Some(Algorithm::Sha256) {
                return match digest.encoded() == *hex {
                    true => Ok(()),
                    false => Err(bad(
                        path,
                        format!("is listed in {SUMS} as {hex}, not its name"),
                    )),
                };
            }
        }
        let (_, mut reader) = archive.open_file(path)?;
        let (found, _) = crate::ops::bundle::sha256_of(&mut reader, &crate::progress::NoProgress)
            .map_err(|e| Error::io("cannot read", *path, e))?;
        match found.encoded() == *hex {
            true => Ok(()),
            false => Err(bad(
                path,
                format!("hashes to {found}, and {SUMS} says sha256:{hex}"),
            )),
        }
    })
}

/// Stages what an import reads from a stream inside the destination layout (see the module
/// documentation).
struct Staging<'w, 'l> {
    writer: &'w LayoutWriter<'l>,
}

impl Stage for Staging<'_, '_> {
    fn stage(&self, name: &str, _size: u64, data: &mut dyn Read) -> Result<Option<Kept>> {
        // `blobs/<alg>/<encoded>`, at the top or below the one directory a layout may be in.
        let blob = name
            .match_indices("blobs/")
            .filter(|(i, _)| *i == 0 || name[..*i].matches('/').count() == 1)
            .find_map(|(i, _)| blob_file_digest(&name[i..])?.ok());
        let algorithm = match &blob {
            Some(digest) => {
                if self.writer.layout().blob_len(digest)?.is_some() {
                    return Ok(Some(Kept::Elsewhere(
                        self.writer.layout().blob_path(digest),
                    )));
                }
                digest.known_algorithm().unwrap_or(Algorithm::Sha256)
            }
            None => Algorithm::Sha256,
        };
        Ok(Some(Kept::Staged(self.writer.stage(data, algorithm)?)))
    }
}

/// A layer file of a `docker save` archive, imported.
struct Layer {
    digest: Digest,
    size: u64,
    media_type: &'static str,
    placed: Placed,
}

/// Imports a `docker save` archive from before Docker 25 (see the module documentation).
fn docker_save(
    archive: &Archive,
    writer: &LayoutWriter<'_>,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Imported> {
    let what = format!("{}:manifest.json", archive.name());
    let bytes = archive
        .root_file("manifest.json", MAX_DOCUMENT_SIZE)?
        .unwrap_or_default();
    let items = docker_archive::parse_manifest(&bytes, &what)?;
    if items.is_empty() {
        return Err(Error::InvalidInput {
            what,
            reason: "lists no images".into(),
        });
    }
    // Every layer file once, however many images share it, in parallel.
    let mut paths: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for item in &items {
        for layer in &item.layers {
            if seen.insert(layer) {
                paths.push(layer);
            }
        }
    }
    let mut total = 0;
    for path in &paths {
        total += archive.open_file(path)?.0;
    }
    progress.total(total);
    let layers: Vec<Layer> = paths
        .par_iter()
        .map(|path| import_layer(archive, writer, path, progress))
        .collect::<Result<_>>()?;
    let layer_of = |path: &str| paths.iter().position(|p| *p == path).map(|i| &layers[i]);

    let mut blobs = Placements::default();
    for layer in &layers {
        blobs.add(layer.placed, layer.size);
    }
    let mut entries = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let manifest = image_manifest(archive, writer, item, i, &layer_of, &mut blobs)?;
        let tags = item.repo_tags.clone().unwrap_or_default();
        if tags.is_empty() {
            entries.push(Entry::new(EntryKind::Untagged, manifest.clone(), true)?);
        }
        for tag in tags {
            let mut entry = manifest.clone();
            if let Some(object) = entry.as_object_mut() {
                object.insert("annotations".into(), serde_json::json!({ REF_NAME: tag }));
            }
            entries.push(Entry::new(EntryKind::Named, entry, true)?);
        }
    }
    let mut names = Names::default();
    let destination = writer.layout().name();
    Destination::update_index(writer, &mut |index| {
        names = transfer::record(index, &entries, options.force, Some(writer), &destination)?;
        Ok(names.changed())
    })?;
    let images = entries
        .iter()
        .map(|e| Image {
            name: e.identity().map(str::to_string),
            digest: e.descriptor.digest.clone(),
            media_type: e.descriptor.media_type.clone(),
            size: e.descriptor.size,
        })
        .collect();
    Ok(Imported {
        signed_by: None,
        kind: ArchiveKind::DockerSave,
        created: false,
        written: Written {
            images,
            referrers: 0,
            blobs,
            names,
            foreign: Vec::new(),
            warnings: Vec::new(),
        },
    })
}

/// Imports one layer file: a staged one is linked into place, one read in place is streamed
/// into a blob; either way hashed once. Its media type says how it is compressed.
fn import_layer(
    archive: &Archive,
    writer: &LayoutWriter<'_>,
    path: &str,
    progress: &dyn Progress,
) -> Result<Layer> {
    let (digest, size, placed) = match archive.staged_file(path)? {
        Some(staged) => (staged.digest.clone(), staged.size, writer.adopt(staged)?),
        None => {
            let (_, mut data) = archive.open_file(path)?;
            let staged: Staged = writer.stage(&mut data, Algorithm::Sha256)?;
            (staged.digest.clone(), staged.size, writer.adopt(&staged)?)
        }
    };
    progress.advance(size);
    let mut head = [0u8; 512];
    let mut blob = writer.layout().open_blob_raw(&digest)?;
    let n = blob
        .read(&mut head)
        .map_err(|e| Error::io("cannot read blob", digest.to_string(), e))?;
    let compression = match sniff::sniff(&head[..n]) {
        Sniffed::Tar => Compression::None,
        // A layer that is empty (no entries) is a tar of zero blocks.
        _ if head[..n].iter().all(|&b| b == 0) => Compression::None,
        other => other.compression().ok_or_else(|| Error::InvalidInput {
            what: format!("the layer file {path} of {}", archive.name()),
            reason: format!(
                "is not a tar archive (it is {})",
                other.describe(&head[..n])
            ),
        })?,
    };
    Ok(Layer {
        digest,
        size,
        media_type: media_type::layer_media_type(compression),
        placed,
    })
}

/// Writes the config and the OCI manifest of image `item` (number `i` of `manifest.json`);
/// returns its `index.json` entry (without a name).
fn image_manifest<'l>(
    archive: &Archive,
    writer: &LayoutWriter<'_>,
    item: &ManifestItem,
    i: usize,
    layer_of: &dyn Fn(&str) -> Option<&'l Layer>,
    blobs: &mut Placements,
) -> Result<Value> {
    let what = format!(
        "{}:{} (image {i} of manifest.json)",
        archive.name(),
        item.config
    );
    let config_bytes = archive
        .root_file(&item.config, MAX_DOCUMENT_SIZE)?
        .ok_or_else(|| Error::InvalidInput {
            what: what.clone(),
            reason: "is not in the archive".into(),
        })?;
    let config: ImageConfig = parse_document(&config_bytes, Schema::Config, &what)?;
    let diff_ids = config.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    if diff_ids.len() != item.layers.len() {
        return Err(Error::InvalidInput {
            what,
            reason: format!(
                "lists {} diff_ids, and manifest.json {} layers",
                diff_ids.len(),
                item.layers.len()
            ),
        });
    }
    let mut layers = Vec::new();
    for (path, diff_id) in item.layers.iter().zip(&diff_ids) {
        let layer = layer_of(path).ok_or_else(|| Error::InvalidInput {
            what: format!("the layer file {path} of {}", archive.name()),
            reason: "was not imported".into(),
        })?;
        if layer.media_type == media_type::OCI_LAYER_TAR && &layer.digest != diff_id {
            return Err(Error::CorruptBlob {
                digest: diff_id.clone(),
                layout: archive.name(),
                detail: format!(
                    "the layer file {path} hashes to {}, not to the diff_id its config gives",
                    layer.digest
                ),
            });
        }
        layers.push(serde_json::json!({
            "mediaType": layer.media_type,
            "digest": layer.digest,
            "size": layer.size,
        }));
    }
    let config_blob = writer.write_blob_bytes(&config_bytes)?;
    blobs.add(Placed::Copied, config_blob.size);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": config_blob.digest,
            "size": config_blob.size,
        },
        "layers": layers,
    });
    let manifest_bytes = canonical::to_vec(&manifest);
    let manifest_blob = writer.write_blob_bytes(&manifest_bytes)?;
    blobs.add(Placed::Copied, manifest_blob.size);
    Ok(serde_json::json!({
        "mediaType": OCI_MANIFEST,
        "digest": manifest_blob.digest,
        "size": manifest_blob.size,
    }))
}
