//! `unpack`: an image's root file system, its layers applied in order onto a directory.
//!
//! Every layer goes through the one applier ([`crate::codec::apply`]) with
//! [`Policy::Chroot`]: names and links resolve on disk as inside a chroot, so absolute targets
//! and `..` stay inside the directory (a merged-usr `lib -> usr/lib` works), including links
//! planted by earlier layers and hard links to symlinks. OCI whiteouts are applied as the
//! image spec says (`.wh.NAME` hides NAME of lower layers only; `.wh..wh..opq` hides the lower
//! children of its directory wherever it stands in the tar). Each layer's uncompressed stream
//! is hashed as it is applied and checked against the config's `rootfs.diff_ids`; the blob
//! itself is verified against its digest as it is read. On any failure what was unpacked is
//! removed (the directory too, when unpack made it), unless the caller keeps it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::codec::apply::{self, Applied, Clean};
use crate::codec::decode;
use crate::codec::extract::{Policy, Root};
use crate::error::{Error, Result};
use crate::graph::resolve::resolve;
use crate::progress::{Counted, Progress};
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self, Compression, Kind};
use crate::spec::document::{parse_document, Document, ImageConfig, Schema};
use crate::spec::platform::Platform;
use crate::spec::reference::Reference;
use crate::store::layout::LayoutRead;

/// How an image is unpacked.
#[derive(Clone, Debug)]
pub struct Options {
    /// The decompression-bomb policy for every layer.
    pub limits: decode::Limits,
    /// Apply owners (uid/gid) from the layers (needs privilege).
    pub owners: bool,
    /// Make device nodes (needs privilege); otherwise they are skipped with a warning.
    pub devices: bool,
    /// On failure, leave what was unpacked and say it is partial.
    pub keep_partial: bool,
}

impl Options {
    pub fn new(limits: decode::Limits) -> Options {
        Options {
            limits,
            owners: false,
            devices: false,
            keep_partial: false,
        }
    }
}

/// One layer unpacked.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnpackedLayer {
    pub digest: Digest,
    /// Its uncompressed digest, checked against the config.
    pub diff_id: Digest,
    /// Uncompressed bytes.
    pub size: u64,
    /// Tar entries applied.
    pub entries: u64,
}

/// What [`unpack`] did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unpacked {
    /// The image manifest unpacked.
    pub manifest: Digest,
    pub dir: PathBuf,
    pub layers: Vec<UnpackedLayer>,
    /// What could not be done and was skipped (device nodes without privilege, extended
    /// attributes the file system refused).
    pub warnings: Vec<String>,
}

/// Unpacks the image `reference` names (with `platform` for an index) into `dir`, which must be
/// empty or missing.
pub fn unpack(
    layout: &dyn LayoutRead,
    reference: &Reference,
    platform: Option<&Platform>,
    dir: &Path,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Unpacked> {
    let resolved = resolve(layout, reference, platform)?;
    let manifest = match &resolved.document {
        Document::Manifest(manifest) => manifest,
        Document::Index(index) => {
            return Err(Error::NeedsPlatform {
                what: format!("{}", resolved.descriptor.digest),
                platforms: index.member_platforms(),
                needed: "a root file system is one image's".into(),
            })
        }
    };
    let Some(config) = manifest
        .config
        .as_ref()
        .filter(|c| media_type::kind(&c.media_type) == Kind::Config)
    else {
        return Err(Error::UnexpectedMediaType {
            what: format!("manifest {}", resolved.descriptor.digest),
            media_type: manifest
                .config
                .as_ref()
                .map(|c| c.media_type.clone())
                .unwrap_or_default(),
            expected: "as its config, but unpacking needs an image config (with rootfs.diff_ids)"
                .into(),
        });
    };
    let config_bytes = layout.read_document(config)?;
    let image: ImageConfig = parse_document(
        &config_bytes,
        Schema::Config,
        &format!("config {}", config.digest),
    )?;
    let diff_ids = image.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    let layers = manifest.content();
    if diff_ids.len() != layers.len() {
        return Err(Error::InvalidInput {
            what: format!("image {}", resolved.descriptor.digest),
            reason: format!(
                "has {} layers but its config lists {} diff_ids",
                layers.len(),
                diff_ids.len()
            ),
        });
    }
    let mut plan = Vec::new();
    for layer in layers {
        let compression = match media_type::kind(&layer.media_type) {
            Kind::Layer(c) => c,
            _ => {
                return Err(Error::UnexpectedMediaType {
                    what: format!("layer {}", layer.digest),
                    media_type: layer.media_type.clone(),
                    expected: "but unpacking needs a layer tar (plain, gzip or zstd)".into(),
                })
            }
        };
        if layout.blob_len(&layer.digest)?.is_none() {
            return Err(Error::BlobNotFound {
                digest: layer.digest.clone(),
                layout: layout.name(),
            });
        }
        plan.push((layer, compression));
    }
    let created = prepare(dir)?;
    let root = Root::open(dir, Policy::Chroot)?.replacing_directories();
    let mut apply_options = apply::Options::rootfs(options.limits, options.devices);
    apply_options.owners = options.owners;
    progress.total(plan.iter().map(|(l, _)| l.size).sum());
    let mut unpacked = Unpacked {
        manifest: resolved.descriptor.digest.clone(),
        dir: dir.to_path_buf(),
        layers: Vec::new(),
        warnings: Vec::new(),
    };
    for (i, ((layer, compression), diff_id)) in plan.iter().zip(&diff_ids).enumerate() {
        let applied = open_and_apply(layout, &root, layer, *compression, &apply_options, progress)
            .and_then(|applied| check_diff_id(applied, &layer.digest, i, diff_id));
        match applied {
            Ok(applied) => {
                unpacked.warnings.extend(applied.warnings);
                unpacked.layers.push(UnpackedLayer {
                    digest: layer.digest.clone(),
                    diff_id: diff_id.clone(),
                    size: applied.size,
                    entries: applied.entries,
                });
            }
            Err(e) if options.keep_partial => {
                return Err(Error::Partial {
                    dir: dir.to_path_buf(),
                    done: i,
                    total: plan.len(),
                    source: Box::new(e),
                })
            }
            Err(e) => {
                drop(root);
                // The failure is the error worth reporting; a cleanup that fails leaves files,
                // and says so.
                if clean_up(dir, created).is_err() {
                    return Err(Error::Partial {
                        dir: dir.to_path_buf(),
                        done: i,
                        total: plan.len(),
                        source: Box::new(e),
                    });
                }
                return Err(e);
            }
        }
    }
    Ok(unpacked)
}

/// Checks that `dir` is empty or missing; makes it when missing. Returns whether it was made.
fn prepare(dir: &Path) -> Result<bool> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))?;
            Ok(true)
        }
        Err(e) => Err(Error::io("cannot read", dir, e)),
        Ok(meta) if !meta.is_dir() => Err(Error::Conflict {
            what: dir.display().to_string(),
            reason:
                "exists and is not a directory; unpack writes into an empty or missing directory"
                    .into(),
        }),
        Ok(_) => {
            let mut entries = fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
            if entries.next().is_some() {
                return Err(Error::Conflict {
                    what: dir.display().to_string(),
                    reason: "is not empty; unpack writes into an empty or missing directory".into(),
                });
            }
            Ok(false)
        }
    }
}

/// Removes what was unpacked into `dir` (and `dir` itself when unpack made it), through a root
/// so that no link in it is followed.
fn clean_up(dir: &Path, created: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // A layer may have made the directory itself read-only; it is ours to empty.
    let mode = fs::metadata(dir)
        .map_err(|e| Error::io("cannot read", dir, e))?
        .permissions()
        .mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode((mode | 0o700) & 0o7777))
            .map_err(|e| Error::io("cannot set the mode of", dir, e))?;
    }
    let root = Root::open(dir, Policy::Chroot)?;
    for (name, _) in root.read_dir(Path::new(""))? {
        root.remove(Path::new(&name))?;
    }
    if !root.read_dir(Path::new(""))?.is_empty() {
        return Err(Error::io(
            "cannot empty",
            dir,
            io::Error::other("entries are left"),
        ));
    }
    drop(root);
    if created {
        fs::remove_dir(dir).map_err(|e| Error::io("cannot remove", dir, e))?;
    }
    Ok(())
}

fn open_and_apply(
    layout: &dyn LayoutRead,
    root: &Root,
    layer: &crate::spec::document::Descriptor,
    compression: Compression,
    options: &apply::Options,
    progress: &dyn Progress,
) -> Result<Applied> {
    let blob = layout.open_blob(&layer.digest, Some(layer.size))?;
    let mut counted = Counted::new(blob, progress);
    let mut names = Clean {
        layer: &layer.digest,
    };
    apply::apply(
        root,
        &mut counted,
        compression,
        &layer.digest,
        &layout.name(),
        options,
        &mut names,
    )
}

fn check_diff_id(applied: Applied, layer: &Digest, i: usize, want: &Digest) -> Result<Applied> {
    match &applied.diff_id {
        Some(got) if got == want => Ok(applied),
        got => Err(Error::InvalidInput {
            what: format!("layer {layer}"),
            reason: format!(
                "does not match the image's config: its uncompressed content hashes to {}, but diff_id {i} is {want}",
                got.as_ref().map(|d| d.to_string()).unwrap_or_default()
            ),
        }),
    }
}
