//! `image build`: an image from directories and tars, on a base image or from scratch.
//!
//! Everything is checked before the first blob is written: the name, every layer source
//! (directories are read into entries, tars sniffed), the base (resolved, its manifest and
//! configuration read) and every configuration change. Then the base's blobs are put into the
//! target layout (hard-linked where possible), the new layers are built in parallel (each one
//! streamed once: tar → compressor → blob, hashed on the way), the configuration and the
//! manifest are written canonically, and the name moves to the new manifest in one
//! `index.json` update. A crash at any point leaves the layout as it was, plus unreferenced
//! blobs or temp files that `gc` removes.
//!
//! The same inputs give the same digest: directory layers are reproducible tars
//! ([`crate::codec::layer`]: sorted, mtimes clamped to the clock's `SOURCE_DATE_EPOCH` or 0),
//! compression does not depend on the thread count, every time recorded is the clock's
//! `created()`, and the documents are canonical JSON.

use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::config::{self, ConfigChanges, NewLayer};
use crate::codec::decode::Limits;
use crate::codec::layer::{scan, CompressOptions, Compression, Entry, LayerOptions, ScanOptions};
use crate::error::{Error, Result};
use crate::graph::resolve::resolve;
use crate::ops::layer::{build_layer_with, import_tar, tar_compression, BuiltLayer};
use crate::ops::tag::{check_new_name, name_entry};
use crate::progress::Progress;
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{
    self, layer_media_type, Kind, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, DOCKER_LAYER_ZSTD,
    OCI_CONFIG, OCI_MANIFEST,
};
use crate::spec::document::{canonical, parse_document, Descriptor, Document, Schema, CREATED};
use crate::spec::platform::Platform;
use crate::spec::reference::Reference;
use crate::spec::time::{rfc3339, Clock};
use crate::store::layout::{LayoutRead, LayoutWriter};
use crate::store::layout::{Link, Placed};
use crate::store::{open_or_init, open_read, Check};

/// The annotation naming the image a build is based on.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// The annotation giving the digest of the base image's manifest.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// Everything an image is built from.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    /// One layer each, in order: a directory, or a plain, gzip or zstd tar.
    pub layers: Vec<PathBuf>,
    /// The compression of new layers; `None`: gzip for directories, tars kept as they are.
    /// Given, every tar is recompressed too.
    pub compression: Option<Compression>,
    /// The compression level (gzip 0–9, zstd 1–22); `None` for the default.
    pub level: Option<i32>,
    /// Compression threads; `None`: as many as cores (at most 8). The bytes do not depend on
    /// it.
    pub threads: Option<u32>,
    /// How directories are read (owner, devices).
    pub scan: ScanOptions,
    /// The image to build on: its layers, configuration and history are inherited.
    pub base: Option<Reference>,
    /// The image's platform; `None`: the base's, else `default_platform`.
    pub platform: Option<Platform>,
    /// The platform when neither `platform` nor a base gives one (the caller's host).
    pub default_platform: Platform,
    pub config: ConfigChanges,
    /// Manifest annotations, after (and over) the ones ocikit sets.
    pub annotations: Vec<(String, String)>,
    /// Annotations of the manifest's config descriptor.
    pub config_annotations: Vec<(String, String)>,
    /// The time recorded (`created`, history, the `created` annotation) and the mtime clamp.
    pub clock: Clock,
    /// Decompression limits for compressed tars and archives read.
    pub limits: Limits,
}

/// What `build` wrote.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Built {
    /// The new manifest, as its `index.json` entry records it (without the name).
    pub manifest: Descriptor,
    pub config: Descriptor,
    /// The new layers, in order.
    pub layers: Vec<Layer>,
    /// The base manifest, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<Descriptor>,
    /// Base blobs put into the layout (hard-linked or copied; those present are not counted).
    pub base_blobs_added: usize,
    /// Sockets left out of directory layers.
    pub skipped: Vec<PathBuf>,
    /// Digests the name pointed at before.
    pub moved_from: Vec<Digest>,
}

/// One new layer.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub source: PathBuf,
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

/// A layer source, checked.
enum Source {
    Directory {
        path: PathBuf,
        entries: Vec<Entry>,
    },
    Tar {
        path: PathBuf,
        compression: Compression,
    },
}

/// A base image, read.
struct Base {
    layout: Box<dyn LayoutRead>,
    manifest: Descriptor,
    name: Option<String>,
    /// Its layer descriptors as its manifest has them (Docker layer types made OCI).
    layers: Vec<Value>,
    layer_descriptors: Vec<Descriptor>,
    config: Map<String, Value>,
}

/// Builds the image `spec` describes and names it `target`'s name in `target`'s layout (made
/// when missing). `progress` hears of the bytes of the layer sources read.
pub fn build(target: &Reference, spec: &BuildSpec, progress: &dyn Progress) -> Result<Built> {
    let name = target_name(target)?;
    if spec.layers.is_empty() && spec.base.is_none() {
        return Err(Error::InvalidInput {
            what: "the image".into(),
            reason: "has no layer and no base: give at least one layer".into(),
        });
    }
    for (key, _) in spec.annotations.iter().chain(&spec.config_annotations) {
        if key.is_empty() {
            return Err(Error::InvalidInput {
                what: "an annotation".into(),
                reason: "has an empty key".into(),
            });
        }
    }
    let mut skipped = Vec::new();
    let mut total = 0;
    let sources = spec
        .layers
        .iter()
        .map(|path| {
            if path.is_dir() {
                let scanned = scan(path, &spec.scan)?;
                skipped.extend(scanned.skipped);
                total += scanned.file_bytes;
                Ok(Source::Directory {
                    path: path.clone(),
                    entries: scanned.entries,
                })
            } else {
                let compression = tar_compression(path)?;
                total += std::fs::metadata(path).map_or(0, |m| m.len());
                Ok(Source::Tar {
                    path: path.clone(),
                    compression,
                })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let base = match &spec.base {
        Some(reference) => Some(load_base(reference, spec.platform.as_ref(), &spec.limits)?),
        None => None,
    };
    let platform = match (&spec.platform, &base) {
        (Some(platform), _) => platform.clone(),
        (None, Some(base)) => platform_of(&base.config).unwrap_or(spec.default_platform.clone()),
        (None, None) => spec.default_platform.clone(),
    };
    let compress = {
        let mut options = CompressOptions::new(spec.compression.unwrap_or(Compression::Gzip));
        options.level = spec.level;
        if let Some(threads) = spec.threads {
            options.workers = threads;
        }
        // A bad level is refused now, not after the base's blobs are copied.
        crate::codec::layer::CompressWriter::new(std::io::sink(), &options)?;
        options
    };

    let layout = open_or_init(target)?;
    let writer = layout.writer()?;
    progress.total(total);
    let base_blobs_added = match &base {
        Some(base) => copy_base_blobs(base, &writer)?,
        None => 0,
    };
    let layer_options = LayerOptions {
        compress,
        mtime: spec.clock.mtime(),
    };
    let built = sources
        .par_iter()
        .map(|source| match source {
            Source::Directory { entries, .. } => {
                build_layer_with(&writer, entries, &layer_options, progress)
            }
            Source::Tar { path, compression } => {
                let recompress = spec.compression.is_some().then_some(&compress);
                import_tar(
                    &writer,
                    path,
                    *compression,
                    recompress,
                    &spec.limits,
                    progress,
                )
            }
        })
        .collect::<Result<Vec<BuiltLayer>>>()?;

    let created = rfc3339(spec.clock.created());
    let new_layers: Vec<NewLayer> = sources
        .iter()
        .zip(&built)
        .map(|(source, layer)| NewLayer {
            diff_id: layer.diff_id.clone(),
            created_by: match source {
                Source::Directory { .. } => "ocikit image build: a directory".into(),
                Source::Tar { .. } => "ocikit image build: a tar".into(),
            },
        })
        .collect();
    let config_value = config::make(
        base.as_ref().map(|b| b.config.clone()),
        &platform,
        &spec.config,
        &new_layers,
        &created,
    )?;
    let config_blob = writer.write_blob_bytes(&canonical::to_vec(&config_value))?;
    let mut config = Descriptor::new(OCI_CONFIG, config_blob.digest, config_blob.size);
    if !spec.config_annotations.is_empty() {
        config.annotations = Some(spec.config_annotations.iter().cloned().collect());
    }

    let mut annotations = Map::new();
    annotations.insert(CREATED.into(), created.clone().into());
    if let Some(base) = &base {
        annotations.insert(BASE_DIGEST.into(), base.manifest.digest.to_string().into());
        if let Some(name) = &base.name {
            annotations.insert(BASE_NAME.into(), name.clone().into());
        }
    }
    for (key, value) in &spec.annotations {
        annotations.insert(key.clone(), value.clone().into());
    }
    let mut layers: Vec<Value> = base.as_ref().map(|b| b.layers.clone()).unwrap_or_default();
    for layer in &built {
        layers.push(to_value(&layer.descriptor)?);
    }
    let manifest_value = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": to_value(&config)?,
        "layers": layers,
        "annotations": annotations,
    });
    let manifest_blob = writer.write_blob_bytes(&canonical::to_vec(&manifest_value))?;
    let manifest = Descriptor {
        platform: Some(platform),
        ..Descriptor::new(OCI_MANIFEST, manifest_blob.digest, manifest_blob.size)
    };
    let entry = to_value(&manifest)?;
    let moved_from = writer.update_index(|index| Ok((name_entry(index, entry, name)?, true)))?;
    Ok(Built {
        manifest,
        config,
        layers: sources
            .iter()
            .zip(built)
            .map(|(source, layer)| Layer {
                source: match source {
                    Source::Directory { path, .. } | Source::Tar { path, .. } => path.clone(),
                },
                descriptor: layer.descriptor,
                diff_id: layer.diff_id,
            })
            .collect(),
        base: base.map(|b| b.manifest),
        base_blobs_added,
        skipped,
        moved_from,
    })
}

/// The name a writing command gives its new manifest: `LAYOUT:NAME`, no digest.
pub(super) fn target_name(target: &Reference) -> Result<&str> {
    let name = match (&target.name, &target.digest) {
        (Some(name), None) => name.as_str(),
        _ => {
            return Err(Error::InvalidInput {
                what: format!("the target {target}"),
                reason: "must be LAYOUT:NAME, the name the new manifest gets".into(),
            })
        }
    };
    check_new_name(name)?;
    Ok(name)
}

/// A descriptor as JSON, keys sorted.
pub(super) fn to_value(descriptor: &Descriptor) -> Result<Value> {
    crate::graph::referrers::descriptor_value(descriptor)
}

/// Reads the base image: resolves `reference` (narrowed to `platform` when it names an index),
/// and reads its manifest and configuration through the parser-differential checks.
fn load_base(reference: &Reference, platform: Option<&Platform>, limits: &Limits) -> Result<Base> {
    let layout = open_read(reference, Check::Layout, limits)?;
    let resolved = resolve(&*layout, reference, platform)?;
    let what = format!("base image {reference}");
    let config_descriptor = match &resolved.document {
        Document::Manifest(m) if m.schema_version == 2 => m.config.clone(),
        Document::Index(_) => {
            return Err(Error::InvalidInput {
                what,
                reason: "is an index: give the platform of the image to build on".into(),
            })
        }
        _ => None,
    };
    let config_descriptor = config_descriptor
        .filter(|c| media_type::kind(&c.media_type) == Kind::Config)
        .ok_or_else(|| Error::InvalidInput {
            what: what.clone(),
            reason: "is not an image manifest with an image configuration".into(),
        })?;
    let manifest_what = format!("{}@{}", layout.name(), resolved.descriptor.digest);
    let manifest: Map<String, Value> =
        parse_document(&resolved.bytes, Schema::ManifestLike, &manifest_what)?;
    let config_bytes = layout.read_document(&config_descriptor)?;
    let config_what = format!("{}@{}", layout.name(), config_descriptor.digest);
    let config: Map<String, Value> = parse_document(&config_bytes, Schema::Config, &config_what)?;
    let mut layers: Vec<Value> = manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut layer_descriptors = Vec::with_capacity(layers.len());
    for layer in &mut layers {
        let mut descriptor: Descriptor =
            crate::spec::document::from_value_ref(layer, &manifest_what)?;
        // Docker's layer types are OCI's under another name: same bytes, OCI manifest.
        if [DOCKER_LAYER_TAR, DOCKER_LAYER_GZIP, DOCKER_LAYER_ZSTD]
            .contains(&descriptor.media_type.as_str())
        {
            let compression =
                media_type::layer_compression(&descriptor.media_type).unwrap_or(Compression::None);
            descriptor.media_type = layer_media_type(compression).into();
            layer["mediaType"] = descriptor.media_type.clone().into();
        }
        layer_descriptors.push(descriptor);
    }
    let diff_ids = config
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if diff_ids != layers.len() {
        return Err(Error::InvalidInput {
            what,
            reason: format!(
                "has {} layers but its configuration lists {diff_ids} diff_ids",
                layers.len()
            ),
        });
    }
    Ok(Base {
        layout,
        manifest: Descriptor::new(
            resolved.descriptor.media_type.clone(),
            resolved.descriptor.digest.clone(),
            resolved.descriptor.size,
        ),
        name: resolved.name.clone().or_else(|| reference.name.clone()),
        layers,
        layer_descriptors,
        config,
    })
}

/// The platform a configuration states (`os` and `architecture`, and `variant`).
fn platform_of(config: &Map<String, Value>) -> Option<Platform> {
    let text = |key: &str| config.get(key).and_then(Value::as_str).map(str::to_string);
    Some(Platform {
        os: text("os")?,
        architecture: text("architecture")?,
        variant: text("variant"),
        ..Platform::default()
    })
}

/// Puts the base's layers into the target layout, hard-linked where possible, in parallel;
/// returns how many were not there.
fn copy_base_blobs(base: &Base, writer: &LayoutWriter<'_>) -> Result<usize> {
    let copied = base
        .layer_descriptors
        .par_iter()
        .map(|layer| writer.copy_blob(&*base.layout, &layer.digest, layer.size, Link::Auto))
        .collect::<Result<Vec<_>>>()?;
    Ok(copied.iter().filter(|c| **c != Placed::Present).count())
}
