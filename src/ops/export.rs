//! Writing images into one archive: an OCI layout tar, or a `docker save` archive.
//!
//! Both are a transfer ([`crate::ops::transfer`]) into an [`ArchiveWriter`]: the same closure,
//! the same verified streaming of blobs, the same deterministic tar.
//!
//! # The docker format
//!
//! What `docker save` writes since Docker 25, which every loader reads: an OCI layout (the
//! images' manifests, configs and layers under `blobs/`, `index.json` naming them as Docker 25
//! does, with the full reference in `io.containerd.image.name` and the tag in
//! `org.opencontainers.image.ref.name`), plus `manifest.json` pointing each image's config and
//! layers into `blobs/`, and, for loaders from before Docker 1.10, a legacy directory per layer
//! (`<id>/json`, `<id>/VERSION`, `<id>/layer.tar` as a symlink to the blob) and a
//! `repositories` file, as containers/image writes them (ids are chain IDs). Layers are written
//! as they are stored (compressed or not): Docker, podman and skopeo decompress them on load.
//! It holds images only (one manifest per name: an index must be narrowed to a platform) and no
//! referrers, which Docker has no place for.
//!
//! A Docker repository tag is `repository:tag`: a name is used as one when it is one (the
//! containerd name first, else the ref.name); a bare tag (`v1`) becomes one with the
//! repository the caller gives, and otherwise the image is written without a tag (loaded by
//! its id).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::transfer::{self, Plan, Selection, Written};
use crate::progress::Progress;
use crate::spec::digest::Digest;
use crate::spec::docker_archive::{self, ManifestItem, LEGACY_VERSION};
use crate::spec::document::media_type::{self, Compression, Kind};
use crate::spec::document::{
    parse_document, Descriptor, Document, ImageConfig, Schema, CONTAINERD_NAME, REF_NAME,
};
use crate::store::archive::{ArchiveOptions, ArchiveWriter, Finished};
use crate::store::destination::Destination;
use crate::store::layout::{blob_file, LayoutRead, Link};

/// Which archive format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// An OCI image layout tar (`oci-archive:`).
    #[default]
    Oci,
    /// A `docker save` archive that is an OCI layout too, as Docker 25+ writes it
    /// (`docker-archive:`).
    Docker,
}

/// How to export.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    pub transfer: transfer::Options,
    pub format: Format,
    pub archive: ArchiveOptions,
    /// The repository a bare tag is given in a docker archive (`app` makes `v1` `app:v1`).
    pub repository: Option<String>,
}

impl Options {
    /// Exports in `format`, written as `archive` says.
    pub fn new(format: Format, archive: ArchiveOptions) -> Options {
        Options {
            transfer: transfer::Options::default(),
            format,
            archive,
            repository: None,
        }
    }

    /// The same options with `transfer`.
    pub fn with_transfer(self, transfer: transfer::Options) -> Options {
        Options { transfer, ..self }
    }

    /// The same options with `repository` for bare tags.
    pub fn with_repository(self, repository: Option<String>) -> Options {
        Options { repository, ..self }
    }
}

/// Where an archive goes.
pub enum Output {
    /// A file: written beside it and renamed into place at the end.
    File(PathBuf),
    /// A stream (stdout), named in messages.
    Stream(Box<dyn Write + Send>, String),
}

/// The compression an archive's name asks for: `.tar.gz`/`.tgz` gzip, `.tar.zst`/`.tzst`
/// zstd, anything else none.
pub fn compression_for(path: &Path) -> Compression {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Compression::Gzip
    } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") || name.ends_with(".tar.zstd") {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Whether a path that does not exist yet names an archive rather than a layout directory:
/// it ends in `.tar`, `.tar.gz`, `.tgz`, `.tar.zst` or `.tzst`.
pub fn names_archive(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".tar") || compression_for(path) != Compression::None
}

/// An image of a docker archive, as `manifest.json` lists it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerImage {
    pub manifest: Digest,
    pub repo_tags: Vec<String>,
    /// Names that could not become repository tags (a bare tag with no repository given).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub untagged_names: Vec<String>,
}

/// What [`export`] wrote.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Exported {
    #[serde(flatten)]
    pub written: Written,
    /// The archive's path (`None` for a stream).
    pub path: Option<PathBuf>,
    /// Its size in bytes.
    pub bytes: u64,
    /// For the docker format: the images of `manifest.json`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub docker: Vec<DockerImage>,
}

/// Exports what `sources` select into one archive at `output`.
pub fn export(
    sources: &[(&dyn LayoutRead, Selection)],
    output: Output,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Exported> {
    let mut transfer = options.transfer.clone();
    if options.format == Format::Docker {
        transfer.referrers = false;
    }
    let plan = Plan::new(sources, &transfer)?;
    write(&plan, output, options, progress)
}

/// Writes a planned transfer into one archive at `output` (see [`export`]).
pub fn write(
    plan: &Plan<'_>,
    output: Output,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Exported> {
    let writer = match output {
        Output::File(path) => ArchiveWriter::create(&path, &options.archive)?,
        Output::Stream(out, name) => ArchiveWriter::to_stream(out, name, &options.archive)?,
    };
    let (written, docker) = match options.format {
        Format::Oci => (
            transfer::write(plan, &writer, Link::Copy, false, progress)?,
            Vec::new(),
        ),
        Format::Docker => docker(plan, &writer, options, progress)?,
    };
    let Finished { path, bytes, .. } = writer.finish()?;
    Ok(Exported {
        written,
        path,
        bytes,
        docker,
    })
}

/// One image of a docker archive, read.
struct DockerSource {
    descriptor: Descriptor,
    names: Vec<String>,
    config: Descriptor,
    config_value: Value,
    layers: Vec<Descriptor>,
    diff_ids: Vec<Digest>,
}

/// The docker format's part of [`write()`]: its files, then the blobs, then `index.json`.
fn docker(
    plan: &Plan<'_>,
    writer: &ArchiveWriter,
    options: &Options,
    progress: &dyn Progress,
) -> Result<(Written, Vec<DockerImage>)> {
    let source = plan.source();
    if let Some(layer) = plan.foreign().first() {
        return Err(Error::Unsupported {
            what: format!("layer {layer}"),
            reason: "is not in the layout (a foreign layer, stored elsewhere), and a docker archive must hold every layer".into(),
        });
    }
    // One image per manifest, with every name it has.
    let mut images: Vec<DockerSource> = Vec::new();
    for entry in plan.entries().iter().filter(|e| e.root) {
        let descriptor = &entry.descriptor;
        let name = descriptor
            .containerd_name()
            .or(descriptor.ref_name())
            .map(str::to_string);
        if let Some(image) = images
            .iter_mut()
            .find(|i| i.descriptor.digest == descriptor.digest)
        {
            image.names.extend(name);
            continue;
        }
        images.push(read_image(source, descriptor, name)?);
    }
    let mut items = Vec::new();
    let mut reported = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut legacy: BTreeMap<String, (Option<String>, String, Option<Value>)> = BTreeMap::new();
    for image in &images {
        let mut repo_tags = Vec::new();
        let mut untagged_names = Vec::new();
        for name in &image.names {
            match repo_tag(name, options.repository.as_deref()) {
                Some(tag) => repo_tags.push(tag),
                None => untagged_names.push(name.clone()),
            }
        }
        let ids: Vec<String> = docker_archive::chain_ids(&image.diff_ids)
            .iter()
            .map(|d| d.encoded().to_string())
            .collect();
        for (i, (id, layer)) in ids.iter().zip(&image.layers).enumerate() {
            let parent = i.checked_sub(1).map(|p| ids[p].clone());
            let top = (i + 1 == ids.len()).then(|| image.config_value.clone());
            legacy
                .entry(id.clone())
                .or_insert((parent, blob_file(&layer.digest), top));
        }
        if let Some(top) = ids.last() {
            for tag in &repo_tags {
                if let Some((repository, tag)) = docker_archive::split_repo_tag(tag) {
                    repositories
                        .entry(repository.to_string())
                        .or_default()
                        .insert(tag.to_string(), top.clone());
                }
            }
        }
        items.push(ManifestItem {
            config: blob_file(&image.config.digest),
            repo_tags: (!repo_tags.is_empty()).then(|| repo_tags.clone()),
            layers: image.layers.iter().map(|l| blob_file(&l.digest)).collect(),
            parent: None,
            layer_sources: None,
        });
        reported.push(DockerImage {
            manifest: image.descriptor.digest.clone(),
            repo_tags,
            untagged_names,
        });
    }
    writer.add_file("manifest.json", &docker_archive::manifest_bytes(&items))?;
    writer.add_file(
        "repositories",
        &docker_archive::repositories_bytes(&repositories),
    )?;
    for (id, (parent, blob, top)) in &legacy {
        writer.add_file(&format!("{id}/VERSION"), LEGACY_VERSION.as_bytes())?;
        writer.add_file(
            &format!("{id}/json"),
            &docker_archive::legacy_layer_json(id, parent.as_deref(), top.as_ref()),
        )?;
        writer.add_symlink(&format!("{id}/layer.tar"), &format!("../{blob}"))?;
    }
    let blobs = writer.write_blobs(source, plan.blobs(), Link::Copy, progress)?;
    let mut names = transfer::Names::default();
    writer.update_index(&mut |index| {
        for (image, report) in images.iter().zip(&reported) {
            let mut entries = Vec::new();
            for tag in &report.repo_tags {
                let short = docker_archive::split_repo_tag(tag).map_or(tag.as_str(), |(_, t)| t);
                entries.push(serde_json::json!({
                    CONTAINERD_NAME: tag,
                    REF_NAME: short,
                }));
                names.added.push(tag.clone());
            }
            if entries.is_empty() {
                names.untagged += 1;
                entries.push(Value::Null);
            }
            for annotations in entries {
                let mut entry = serde_json::json!({
                    "mediaType": image.descriptor.media_type,
                    "digest": image.descriptor.digest,
                    "size": image.descriptor.size,
                });
                if let (Value::Object(e), Value::Object(_)) = (&mut entry, &annotations) {
                    e.insert("annotations".into(), annotations);
                }
                index.push_raw(entry)?;
            }
        }
        Ok(true)
    })?;
    let written = Written {
        images: plan.images(),
        referrers: 0,
        blobs,
        names,
        foreign: plan.foreign().to_vec(),
        warnings: plan.warnings().to_vec(),
    };
    Ok((written, reported))
}

/// The Docker repository tag for `name`: itself when it is one, else `repository:name` when a
/// repository is given and that is one.
fn repo_tag(name: &str, repository: Option<&str>) -> Option<String> {
    if docker_archive::split_repo_tag(name).is_some() {
        return Some(name.to_string());
    }
    let tagged = format!("{}:{name}", repository?);
    let valid = docker_archive::split_repo_tag(&tagged).is_some();
    valid.then_some(tagged)
}

/// Reads what a docker archive needs of the image `descriptor` names: its config and layers,
/// refusing what Docker cannot load.
fn read_image(
    source: &dyn LayoutRead,
    descriptor: &Descriptor,
    name: Option<String>,
) -> Result<DockerSource> {
    let shown = name
        .clone()
        .unwrap_or_else(|| descriptor.digest.to_string());
    let not_an_image = |reason: String| Error::Unsupported {
        what: format!("{shown} ({})", descriptor.digest),
        reason,
    };
    let bytes = source.read_document(descriptor)?;
    let document = Document::parse(
        &bytes,
        Some(&descriptor.media_type),
        &format!("manifest {}", descriptor.digest),
    )?;
    let manifest = match document {
        Document::Manifest(m) => m,
        Document::Index(index) => {
            return Err(Error::NeedsPlatform {
                what: format!("{shown} ({})", descriptor.digest),
                platforms: index.member_platforms(),
                needed: "a docker archive holds one image per name".into(),
            })
        }
    };
    let config = manifest
        .config
        .clone()
        .filter(|c| media_type::kind(&c.media_type) == Kind::Config)
        .ok_or_else(|| {
            not_an_image(
                "is not an image (it has no image config), and a docker archive holds images only"
                    .into(),
            )
        })?;
    let config_bytes = source.read_document(&config)?;
    let what = format!("config {}", config.digest);
    let config_value: Value = parse_document(&config_bytes, Schema::Config, &what)?;
    let parsed: ImageConfig = crate::spec::document::from_value(config_value.clone(), &what)?;
    let diff_ids = parsed.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    let layers = manifest.layers.clone();
    if diff_ids.len() != layers.len() {
        return Err(not_an_image(format!(
            "has {} layers and {} diff_ids in its config; Docker refuses to load such an image",
            layers.len(),
            diff_ids.len()
        )));
    }
    let non_layer: BTreeSet<&str> = layers
        .iter()
        .filter(|l| !matches!(media_type::kind(&l.media_type), Kind::Layer(_)))
        .map(|l| l.media_type.as_str())
        .collect();
    if let Some(other) = non_layer.first() {
        return Err(not_an_image(format!(
            "has a layer of media type {other:?}, which is not a filesystem layer Docker can load"
        )));
    }
    Ok(DockerSource {
        descriptor: descriptor.clone(),
        names: name.into_iter().collect(),
        config,
        config_value,
        layers,
        diff_ids,
    })
}
