//! `convert`: an image (or an index of images) in another form, in the same layout.
//!
//! Three conversions, which combine: layers recompressed (gzip, zstd or none), Docker v2
//! schema2 documents turned into OCI ones, and non-distributable layers made ordinary ones.
//! What never changes is what the image *is*: the uncompressed layers (their diff_ids) and so
//! the configuration's bytes. Every document that changes is a new one, written canonically;
//! one that does not change keeps its bytes and digest.
//!
//! The work is planned before anything is written: every document is read (each once), every
//! layer gets an action from its media type alone (kept, given another media type, or
//! recompressed), non-distributable layers whose blob is absent are refused, and the
//! referrers of every document that changes are counted. Then the distinct layers to
//! recompress are converted in parallel, each in one stream (blob read and verified →
//! [`crate::codec::decode`] under the caller's limits → [`CompressWriter`], the uncompressed
//! bytes hashed for the diff_id on [`crate::codec::pipe`]'s thread as they pass → a temp file
//! of the layout, hashed and synced), so each blob is read once and written once. A diff_id
//! that does not match the configuration's stops the conversion; the new blobs are put in
//! place only when every layer converted, so a refusal leaves the layout as it was. Then the
//! documents are written bottom-up and `index.json` is updated once, under the layout's locks.
//!
//! The same input gives the same output digests on every run and thread count: the
//! compressors' bytes do not depend on the thread count, and the documents are canonical.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, SyncSender};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::codec::decode::{self, Limits};
use crate::codec::layer::{CompressOptions, CompressWriter, Compression};
use crate::codec::pipe::{self, PipeError};
use crate::error::{Error, LimitExceeded, Result};
use crate::graph::referrers::{self, descriptor_value, Discovery, Format, Scope};
use crate::graph::resolve::{resolve, resolve_in};
use crate::graph::walk::MAX_DEPTH;
use crate::ops::tag::{check_new_name, name_entry};
use crate::progress::Progress;
use crate::spec::digest::{Algorithm, Digest, Mismatch};
use crate::spec::document::media_type::{
    self, docker_layer_media_type, is_docker, is_nondistributable, layer_compression,
    layer_media_type, Kind, DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG,
    OCI_INDEX, OCI_MANIFEST,
};
use crate::spec::document::{
    canonical, from_value_ref, parse_document, Descriptor, Document, ImageConfig, Schema,
};
use crate::spec::platform::Platform;
use crate::spec::reference::Reference;
use crate::store::layout::{Layout, LayoutRead, LayoutWriter, Staged};

/// The annotation containerd and Docker 25 keep a full image name in: a new name does not
/// inherit it.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// How the refusal to convert what no entry names ends (the CLI adds its flag).
pub const NEEDS_NAME: &str = "give the converted version a name";
/// BuildKit's annotation on an index member that is an attestation, not an image.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// What to convert to.
#[derive(Clone, Debug, Default)]
pub struct ConvertSpec {
    /// Recompress every layer into this (a layer already in it is kept as it is).
    pub compression: Option<Compression>,
    /// The compression level (gzip 0–9, zstd 1–22); `None` for the default.
    pub level: Option<i32>,
    /// Compression threads per layer; `None`: as many as cores (at most 8). The bytes do not
    /// depend on it.
    pub threads: Option<u32>,
    /// Docker v2 schema2 manifests, lists, configs and layer types become OCI ones; implies
    /// `distributable`.
    pub to_oci: bool,
    /// Non-distributable and foreign layers become ordinary layers (their blob must be in the
    /// layout), without `urls`.
    pub distributable: bool,
    /// Copies of the referrers of every converted document are attached to its new version.
    pub copy_referrers: bool,
    /// The name the converted image gets; `None`: the names of the old one move to it.
    pub name: Option<String>,
    /// Decompression limits for the layers read.
    pub limits: Limits,
}

impl ConvertSpec {
    fn any(&self) -> bool {
        self.compression.is_some() || self.to_oci || self.distributable
    }
}

/// What `convert` did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Converted {
    /// The document the reference named.
    pub from: Descriptor,
    /// Its converted version (the same when nothing needed converting).
    pub to: Descriptor,
    /// Every document that changed, old and new digest: manifests, then the indexes listing
    /// them.
    pub documents: Vec<Change>,
    /// The layers recompressed or given another media type, each once.
    pub layers: Vec<LayerChange>,
    /// Layers kept as they were (already in the target form, or non-distributable layers
    /// left so because that was not asked for).
    pub layers_kept: usize,
    /// Names now on the converted document.
    pub names: Vec<String>,
    /// Digests the new name pointed at before (only with a new name).
    pub moved_from: Vec<Digest>,
    /// Referrers of the old documents, and their copies when copies were asked for.
    pub referrers: Vec<ReferrerCopy>,
}

/// A document that changed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub from: Digest,
    pub to: Digest,
    pub media_type: String,
}

/// A layer recompressed or retyped.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerChange {
    pub from: Digest,
    pub to: Digest,
    pub media_type: String,
    pub size: u64,
    /// Whether its bytes were recompressed (else only its media type changed).
    pub recompressed: bool,
}

/// A referrer of a converted document.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerCopy {
    /// The old document it refers to.
    pub subject: Digest,
    pub referrer: Digest,
    /// Its copy referring to the new document, when copies were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<Digest>,
}

/// What happens to one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Keep,
    /// Same bytes, another media type (Docker → OCI, non-distributable → ordinary).
    Retype {
        media_type: String,
        drop_urls: bool,
    },
    Recompress {
        from: Compression,
        media_type: String,
        drop_urls: bool,
    },
}

/// A layer to recompress.
struct Job {
    layer: Descriptor,
    from: Compression,
    diff_id: Digest,
}

/// A recompressed layer's blob.
#[derive(Clone, Debug)]
struct Done {
    digest: Digest,
    size: u64,
}

/// Converts what `reference` names (an image manifest or an index; with `platform`, the
/// index's manifest for it) in `layout` as `spec` says, and names the result (see
/// [`ConvertSpec::name`]). `progress` hears of the compressed bytes of the layers read.
pub fn convert(
    layout: &Layout,
    reference: &Reference,
    platform: Option<&Platform>,
    spec: &ConvertSpec,
    progress: &dyn Progress,
) -> Result<Converted> {
    if !spec.any() {
        return Err(Error::InvalidInput {
            what: "the conversion".into(),
            reason: "names nothing to convert to".into(),
        });
    }
    if let Some(name) = &spec.name {
        check_new_name(name)?;
    }
    let compress = match spec.compression {
        Some(compression) => {
            let mut options = CompressOptions::new(compression);
            options.level = spec.level;
            if let Some(threads) = spec.threads {
                options.workers = threads;
            }
            // A bad level is refused now, before anything is read.
            CompressWriter::new(io::sink(), &options)?;
            Some(options)
        }
        None => None,
    };
    let resolved = resolve(layout, reference, platform)?;
    resolved.require_document()?;
    let from = Descriptor::new(
        resolved.descriptor.media_type.clone(),
        resolved.descriptor.digest.clone(),
        resolved.descriptor.size,
    );
    let index = layout.index()?;
    let named = index
        .entries()
        .iter()
        .any(|entry| entry.digest == from.digest);
    if spec.name.is_none() && !named {
        return Err(Error::InvalidInput {
            what: format!("{} in {}", from.digest, layout.name()),
            reason: format!(
                "is not an index.json entry, so no name can move to its converted version: \
                 {NEEDS_NAME}"
            ),
        });
    }

    let mut converter = Converter::new(layout, spec);
    // Pass 1: read every document, decide every layer's action, refuse what cannot be done.
    converter.visit(&from, 0, true, None)?;
    let discovery = Discovery::new(layout, Scope::default())?;

    let writer = layout.writer()?;
    if let Some(options) = &compress {
        let total = converter.jobs.values().map(|job| job.layer.size).sum();
        progress.total(total);
        let pending = converter
            .jobs
            .par_iter()
            .map(|(digest, job)| {
                recompress(layout, &writer, job, options, &spec.limits, progress)
                    .map(|blob| (digest.clone(), blob))
            })
            .collect::<Result<Vec<(Digest, Staged)>>>()?;
        // Every layer converted: the staged (already synced) files become blobs, linked into
        // place; their directories are synced once, before index.json changes.
        for (digest, staged) in pending {
            writer.adopt(&staged)?;
            converter.done.insert(
                digest,
                Done {
                    digest: staged.digest.clone(),
                    size: staged.size,
                },
            );
        }
    }
    // Pass 2: the documents, bottom-up.
    let to = converter.visit(&from, 0, true, Some(&writer))?;

    // Referrers of every document that changed: counted always, copied when asked.
    let mut referrer_copies = Vec::new();
    let mut copies = Vec::new();
    for change in &converter.changes {
        for referrer in discovery.referrers(&change.from) {
            let copy = if spec.copy_referrers && referrer.problem.is_none() {
                let subject = converter.rewritten[&change.from].clone();
                let copy = copy_referrer(layout, &writer, &referrer.descriptor(), &subject)?;
                let digest = copy.digest.clone();
                copies.push((subject.digest.clone(), copy));
                Some(digest)
            } else {
                None
            };
            referrer_copies.push(ReferrerCopy {
                subject: change.from.clone(),
                referrer: referrer.digest,
                copy,
            });
        }
    }

    let (names, moved_from) = writer.update_index(|index| {
        // Resolved again under the index lock: what is renamed is what was converted.
        let now = resolve_in(layout, index, reference, platform)?;
        if now.descriptor.digest != from.digest {
            return Err(Error::Conflict {
                what: format!("{reference}"),
                reason: format!(
                    "changed while it was converted (from {} to {})",
                    from.digest, now.descriptor.digest
                ),
            });
        }
        let mut changed = false;
        let mut names = Vec::new();
        let mut moved_from = Vec::new();
        let positions: Vec<usize> = (0..index.entries().len())
            .filter(|&i| index.entries()[i].digest == from.digest)
            .collect();
        match &spec.name {
            Some(name) => {
                let mut entry = match positions
                    .iter()
                    .find(|&&i| index.entries()[i].ref_name() == now.name.as_deref())
                {
                    Some(&i) => index.raw_entry(i).unwrap_or(Value::Null),
                    None => descriptor_value(&from)?,
                };
                retarget(&mut entry, &to);
                if let Some(annotations) =
                    entry.get_mut("annotations").and_then(Value::as_object_mut)
                {
                    annotations.remove(CONTAINERD_NAME);
                }
                moved_from = name_entry(index, entry, name)?;
                names.push(name.clone());
                changed = true;
            }
            None if to.digest != from.digest => {
                if positions.is_empty() {
                    return Err(Error::Conflict {
                        what: format!("{reference}"),
                        reason: "lost its index.json entry while it was converted".into(),
                    });
                }
                for i in positions {
                    let mut entry = index.raw_entry(i).unwrap_or(Value::Null);
                    retarget(&mut entry, &to);
                    index.replace_raw(i, entry)?;
                    names.extend(index.entries()[i].names().map(str::to_string));
                }
                changed = true;
            }
            None => {
                for i in positions {
                    names.extend(index.entries()[i].names().map(str::to_string));
                }
            }
        }
        for (subject, copy) in &copies {
            changed |= referrers::record(&writer, index, subject, copy, Format::Both)?;
        }
        names.sort();
        names.dedup();
        Ok(((names, moved_from), changed))
    })?;

    Ok(Converted {
        from,
        to,
        documents: converter.changes,
        layers: converter.layer_changes,
        layers_kept: converter.kept.len(),
        names,
        moved_from,
        referrers: referrer_copies,
    })
}

/// Points an `index.json` entry (or a descriptor in a document) at `to`, keeping its other
/// fields.
fn retarget(entry: &mut Value, to: &Descriptor) {
    if let Some(fields) = entry.as_object_mut() {
        fields.insert("mediaType".into(), Value::from(to.media_type.as_str()));
        fields.insert("digest".into(), Value::from(to.digest.as_str()));
        fields.insert("size".into(), Value::from(to.size));
    }
}

/// The state of one conversion.
struct Converter<'a> {
    layout: &'a Layout,
    spec: &'a ConvertSpec,
    /// Documents read, by digest (each read once).
    documents: HashMap<Digest, Vec<u8>>,
    /// Distinct layers to recompress, by their digest.
    jobs: BTreeMap<Digest, Job>,
    done: HashMap<Digest, Done>,
    /// Documents written in pass 2: old digest → new descriptor (the same when unchanged).
    rewritten: HashMap<Digest, Descriptor>,
    changes: Vec<Change>,
    /// In the order met; each layer once.
    layer_changes: Vec<LayerChange>,
    kept: BTreeSet<Digest>,
}

impl<'a> Converter<'a> {
    fn new(layout: &'a Layout, spec: &'a ConvertSpec) -> Converter<'a> {
        Converter {
            layout,
            spec,
            documents: HashMap::new(),
            jobs: BTreeMap::new(),
            done: HashMap::new(),
            rewritten: HashMap::new(),
            changes: Vec::new(),
            layer_changes: Vec::new(),
            kept: BTreeSet::new(),
        }
    }

    fn bytes(&mut self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        if let Some(bytes) = self.documents.get(&descriptor.digest) {
            return Ok(bytes.clone());
        }
        let bytes = self.layout.read_document(descriptor)?;
        self.documents
            .insert(descriptor.digest.clone(), bytes.clone());
        Ok(bytes)
    }

    /// Pass 1 (`writer` is `None`): reads and plans. Pass 2: writes; returns the document's
    /// new descriptor (`descriptor` itself, but for media type, digest and size, when it
    /// changed). A document that is not an image manifest or an index of them is kept, but as
    /// the root, where it is refused.
    fn visit(
        &mut self,
        descriptor: &Descriptor,
        depth: usize,
        root: bool,
        writer: Option<&LayoutWriter<'_>>,
    ) -> Result<Descriptor> {
        if writer.is_some() {
            if let Some(done) = self.rewritten.get(&descriptor.digest) {
                return Ok(done.clone());
            }
        }
        let what = format!("{}@{}", self.layout.name(), descriptor.digest);
        if depth > MAX_DEPTH {
            return Err(Error::Limit {
                what,
                detail: format!("is nested more than {MAX_DEPTH} indexes deep"),
            });
        }
        let bytes = self.bytes(descriptor)?;
        let document = Document::parse(&bytes, Some(&descriptor.media_type), &what)?;
        let new = match &document {
            Document::Index(_) => self.index(descriptor, &bytes, &what, depth, writer)?,
            Document::Manifest(m) => {
                let image = m
                    .config
                    .as_ref()
                    .is_some_and(|c| media_type::kind(&c.media_type) == Kind::Config);
                if !image {
                    if root {
                        return Err(Error::UnexpectedMediaType {
                            what,
                            media_type: m
                                .config
                                .as_ref()
                                .map_or("(no config)".into(), |c| c.media_type.clone()),
                            expected: "which is not an image configuration: only images and \
                                       indexes of images are converted"
                                .into(),
                        });
                    }
                    descriptor.clone()
                } else {
                    self.manifest(descriptor, &bytes, &what, writer)?
                }
            }
        };
        if writer.is_some() {
            if new.digest != descriptor.digest {
                self.changes.push(Change {
                    from: descriptor.digest.clone(),
                    to: new.digest.clone(),
                    media_type: new.media_type.clone(),
                });
            }
            self.rewritten
                .insert(descriptor.digest.clone(), new.clone());
        }
        Ok(new)
    }

    fn index(
        &mut self,
        descriptor: &Descriptor,
        bytes: &[u8],
        what: &str,
        depth: usize,
        writer: Option<&LayoutWriter<'_>>,
    ) -> Result<Descriptor> {
        let mut value: Map<String, Value> = parse_document(bytes, Schema::ManifestLike, what)?;
        let mut changed = false;
        if let Some(children) = value.get_mut("manifests").and_then(Value::as_array_mut) {
            for child in children.iter_mut() {
                let child_descriptor: Descriptor = from_value_ref(child, what)?;
                if self.layout.blob_len(&child_descriptor.digest)?.is_none() {
                    return Err(Error::BlobNotFound {
                        digest: child_descriptor.digest,
                        layout: format!(
                            "{} (listed by index {})",
                            self.layout.name(),
                            descriptor.digest
                        ),
                    });
                }
                if child_descriptor.annotation(REFERENCE_TYPE) == Some("attestation-manifest") {
                    // BuildKit's attestations describe the image by its old digest: kept as
                    // they are (their config is an image config, their layers statements).
                    continue;
                }
                let new = self.visit(&child_descriptor, depth + 1, false, writer)?;
                let mut new_type = new.media_type.clone();
                if self.spec.to_oci && new_type == DOCKER_MANIFEST {
                    new_type = OCI_MANIFEST.into();
                }
                if new.digest != child_descriptor.digest || new_type != child_descriptor.media_type
                {
                    retarget(
                        child,
                        &Descriptor::new(new_type, new.digest.clone(), new.size),
                    );
                    changed = true;
                }
            }
        }
        let mut media_type = descriptor.media_type.clone();
        if self.spec.to_oci {
            if value.get("mediaType").and_then(Value::as_str) == Some(DOCKER_MANIFEST_LIST) {
                value.insert("mediaType".into(), OCI_INDEX.into());
                changed = true;
            }
            if media_type == DOCKER_MANIFEST_LIST {
                media_type = OCI_INDEX.into();
                changed = true;
            }
        }
        self.finish(descriptor, value, changed, media_type, writer)
    }

    fn manifest(
        &mut self,
        descriptor: &Descriptor,
        bytes: &[u8],
        what: &str,
        writer: Option<&LayoutWriter<'_>>,
    ) -> Result<Descriptor> {
        let mut value: Map<String, Value> = parse_document(bytes, Schema::ManifestLike, what)?;
        let mut changed = false;
        let mut media_type = descriptor.media_type.clone();
        if self.spec.to_oci {
            if value.get("mediaType").and_then(Value::as_str) == Some(DOCKER_MANIFEST) {
                value.insert("mediaType".into(), OCI_MANIFEST.into());
                changed = true;
            }
            if media_type == DOCKER_MANIFEST {
                media_type = OCI_MANIFEST.into();
                changed = true;
            }
            if let Some(config) = value.get_mut("config").and_then(Value::as_object_mut) {
                if config.get("mediaType").and_then(Value::as_str) == Some(DOCKER_CONFIG) {
                    config.insert("mediaType".into(), OCI_CONFIG.into());
                    changed = true;
                }
            }
        }
        let config_descriptor: Descriptor = match value.get("config") {
            Some(config) => from_value_ref(config, what)?,
            None => missing_config(what)?,
        };
        let layers: Vec<Descriptor> = match value.get("layers") {
            Some(layers) => from_value_ref(layers, what)?,
            None => Vec::new(),
        };
        let actions = layers
            .iter()
            .enumerate()
            .map(|(i, layer)| self.action(layer, i, what))
            .collect::<Result<Vec<_>>>()?;
        let recompresses = actions
            .iter()
            .any(|a| matches!(a, Action::Recompress { .. }));
        let diff_ids = if recompresses {
            let config_bytes = self.bytes(&config_descriptor)?;
            let config_what = format!("{}@{}", self.layout.name(), config_descriptor.digest);
            let config: ImageConfig = parse_document(&config_bytes, Schema::Config, &config_what)?;
            let diff_ids = config.rootfs.map(|r| r.diff_ids).unwrap_or_default();
            if diff_ids.len() != layers.len() {
                return Err(Error::InvalidInput {
                    what: what.to_string(),
                    reason: format!(
                        "has {} layers but its configuration lists {} diff_ids",
                        layers.len(),
                        diff_ids.len()
                    ),
                });
            }
            diff_ids
        } else {
            Vec::new()
        };
        for (i, (layer, action)) in layers.iter().zip(&actions).enumerate() {
            match action {
                Action::Keep => {
                    self.kept.insert(layer.digest.clone());
                }
                Action::Retype {
                    media_type,
                    drop_urls,
                } => {
                    if writer.is_some() {
                        let new =
                            Descriptor::new(media_type.clone(), layer.digest.clone(), layer.size);
                        edit_layer(&mut value, i, &new, *drop_urls);
                        self.note_layer(layer, &new, false);
                    }
                    changed = true;
                }
                Action::Recompress {
                    from,
                    media_type,
                    drop_urls,
                    ..
                } => {
                    if writer.is_none() {
                        self.plan(layer, *from, &diff_ids[i], what)?;
                    } else {
                        let done = self.done.get(&layer.digest).cloned().ok_or_else(|| {
                            Error::InvalidInput {
                                what: format!("layer {}", layer.digest),
                                reason: "was not converted".into(),
                            }
                        })?;
                        let new = Descriptor::new(media_type.clone(), done.digest, done.size);
                        edit_layer(&mut value, i, &new, *drop_urls);
                        self.note_layer(layer, &new, true);
                    }
                    changed = true;
                }
            }
        }
        self.finish(descriptor, value, changed, media_type, writer)
    }

    /// Writes a changed document (pass 2) and returns its descriptor.
    fn finish(
        &mut self,
        descriptor: &Descriptor,
        value: Map<String, Value>,
        changed: bool,
        media_type: String,
        writer: Option<&LayoutWriter<'_>>,
    ) -> Result<Descriptor> {
        match writer {
            Some(writer) if changed => {
                let written = writer.write_blob_bytes(&canonical::to_vec(&Value::Object(value)))?;
                Ok(Descriptor {
                    platform: descriptor.platform.clone(),
                    annotations: descriptor.annotations.clone(),
                    artifact_type: descriptor.artifact_type.clone(),
                    ..Descriptor::new(media_type, written.digest, written.size)
                })
            }
            _ => Ok(descriptor.clone()),
        }
    }

    fn note_layer(&mut self, layer: &Descriptor, new: &Descriptor, recompressed: bool) {
        if self.layer_changes.iter().any(|c| c.from == layer.digest) {
            return;
        }
        self.layer_changes.push(LayerChange {
            from: layer.digest.clone(),
            to: new.digest.clone(),
            media_type: new.media_type.clone(),
            size: new.size,
            recompressed,
        });
    }

    /// Registers a layer to recompress; the same blob is recompressed once, whoever lists it.
    fn plan(
        &mut self,
        layer: &Descriptor,
        from: Compression,
        diff_id: &Digest,
        what: &str,
    ) -> Result<()> {
        if let Some(job) = self.jobs.get(&layer.digest) {
            if &job.diff_id != diff_id {
                return Err(Error::InvalidInput {
                    what: format!("layer {}", layer.digest),
                    reason: format!(
                        "has diff_id {} in {what} but {} in another image's configuration",
                        diff_id, job.diff_id
                    ),
                });
            }
            return Ok(());
        }
        self.jobs.insert(
            layer.digest.clone(),
            Job {
                layer: Descriptor::new(layer.media_type.clone(), layer.digest.clone(), layer.size),
                from,
                diff_id: diff_id.clone(),
            },
        );
        Ok(())
    }

    /// What to do with layer `i` of the manifest `what`, from its descriptor alone.
    fn action(&self, layer: &Descriptor, i: usize, what: &str) -> Result<Action> {
        let spec = self.spec;
        // Not a filesystem layer (an in-toto statement of an attestation manifest, say):
        // nothing to recompress, nothing to retype.
        let Some(compression) = layer_compression(&layer.media_type) else {
            return Ok(Action::Keep);
        };
        let nondistributable = is_nondistributable(&layer.media_type);
        let make_distributable = nondistributable && (spec.to_oci || spec.distributable);
        if nondistributable && !make_distributable {
            return Ok(Action::Keep);
        }
        if make_distributable && self.layout.blob_len(&layer.digest)?.is_none() {
            return Err(Error::InvalidInput {
                what: format!(
                    "non-distributable layer {i} ({}, {}) of {what}",
                    layer.digest, layer.media_type
                ),
                reason: format!(
                    "is not in the layout (its blob is fetched from {}), so it cannot be made \
                     an ordinary layer",
                    layer
                        .urls
                        .as_ref()
                        .filter(|u| !u.is_empty())
                        .map_or("elsewhere".into(), |u| u.join(", "))
                ),
            });
        }
        let target = spec.compression.unwrap_or(compression);
        let docker = is_docker(&layer.media_type) && !spec.to_oci;
        let media_type = if docker {
            docker_layer_media_type(target)
        } else {
            layer_media_type(target)
        }
        .to_string();
        Ok(if target != compression {
            Action::Recompress {
                from: compression,
                media_type,
                drop_urls: make_distributable,
            }
        } else if media_type != layer.media_type {
            Action::Retype {
                media_type,
                drop_urls: make_distributable,
            }
        } else {
            Action::Keep
        })
    }
}

fn missing_config(what: &str) -> Result<Descriptor> {
    Err(Error::Json {
        file: what.to_string(),
        pointer: "/config".into(),
        message: "an image manifest needs a config".into(),
    })
}

/// Points layer `i` of a manifest at `new`, dropping its `urls` when asked.
fn edit_layer(manifest: &mut Map<String, Value>, i: usize, new: &Descriptor, drop_urls: bool) {
    let Some(layer) = manifest.get_mut("layers").and_then(|l| l.get_mut(i)) else {
        return;
    };
    retarget(layer, new);
    if drop_urls {
        if let Some(fields) = layer.as_object_mut() {
            fields.remove("urls");
        }
    }
}

/// Recompresses one layer in one stream: the blob read (verified) → decoded under `limits` →
/// hashed (its diff_id, checked against the configuration's) and compressed → a temp file of
/// the layout, hashed. Returns it staged (synced, so that the syncs of several layers overlap
/// with the work of the others), not yet a blob.
fn recompress(
    layout: &Layout,
    writer: &LayoutWriter<'_>,
    job: &Job,
    options: &CompressOptions,
    limits: &Limits,
    progress: &dyn Progress,
) -> Result<Staged> {
    let digest = &job.layer.digest;
    let failed = |e: io::Error| -> Error {
        if let Some(exceeded) = LimitExceeded::in_io(&e) {
            return Error::DecompressionLimit {
                what: format!("layer {digest}"),
                source: exceeded.clone(),
            };
        }
        if let Some(mismatch) = Mismatch::from_io(&e) {
            return Error::CorruptBlob {
                digest: digest.clone(),
                layout: layout.name(),
                detail: mismatch.to_string(),
            };
        }
        Error::InvalidInput {
            what: format!("layer {digest}"),
            reason: format!("cannot be decompressed as {}: {e}", job.from.name()),
        }
    };
    let blob = layout.open_blob(digest, Some(job.layer.size))?;
    let counted = Counted {
        inner: blob,
        progress,
    };
    let mut decoder = decode::decompress(counted, job.from, limits)?;
    let sink = writer.blob_sink(Algorithm::Sha256)?;
    let write_failed = |e: io::Error| Error::io("cannot write", "the converted layer", e);
    // This thread reads, verifies, decodes and feeds the compressor (whose workers are its
    // own); the diff_id is hashed on another thread as the decoded bytes pass, and the
    // compressed stream is hashed and written into the temp file on a third: the decoding
    // thread, the critical path, does nothing else.
    let (copied, sink) = std::thread::scope(|scope| -> Result<_> {
        let (chunks, received) = sync_channel::<Vec<u8>>(HANDOFF_AHEAD);
        let writing = scope.spawn(move || -> io::Result<_> {
            let mut sink = sink;
            for chunk in received {
                sink.write_all(&chunk)?;
            }
            Ok(sink)
        });
        let converted = (|| {
            let handoff = Handoff {
                chunks,
                pending: Vec::with_capacity(pipe::CHUNK),
            };
            let mut out = CompressWriter::new(handoff, options)?;
            let copied = pipe::copy_hashed(
                &mut decoder,
                Algorithm::Sha256,
                job.layer.size,
                u64::MAX,
                &mut |bytes| out.write_all(bytes),
            )
            .map_err(|e| match e {
                PipeError::Read(e) => failed(e),
                PipeError::Write(e) => write_failed(e),
            })?;
            out.finish()
                .and_then(Handoff::close)
                .map_err(write_failed)?;
            Ok(copied)
        })();
        // The handoff is gone (finished or dropped): the writing thread ends; its own error,
        // if it had one, is the one to report.
        match (converted, writing.join()) {
            (_, Ok(Err(e))) => Err(write_failed(e)),
            (Err(e), _) => Err(e),
            (Ok(copied), Ok(Ok(sink))) => Ok((copied, sink)),
            (Ok(_), Err(_)) => Err(write_failed(io::Error::other(
                "the writing thread panicked",
            ))),
        }
    })?;
    // The rest of the blob, so that its digest is checked to its end.
    let mut rest = decoder.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(failed)?;
    let diff_id = copied.digest;
    if diff_id != job.diff_id {
        return Err(Error::CorruptBlob {
            digest: digest.clone(),
            layout: layout.name(),
            detail: format!(
                "its uncompressed content hashes to {diff_id}, but the configuration's diff_id \
                 for it is {}",
                job.diff_id
            ),
        });
    }
    sink.finish()?.stage()
}

/// How many chunks of compressed output may wait for the writing thread.
const HANDOFF_AHEAD: usize = 4;

/// A writer that hands what is written, in chunks of [`pipe::CHUNK`] bytes, to another thread.
struct Handoff {
    chunks: SyncSender<Vec<u8>>,
    pending: Vec<u8>,
}

impl Handoff {
    fn send(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.pending, Vec::with_capacity(pipe::CHUNK));
        self.chunks
            .send(full)
            .map_err(|_| io::Error::other("the writing thread stopped"))
    }

    /// Hands over what is left; the other thread's end closes when this is dropped.
    fn close(mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

impl Write for Handoff {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= pipe::CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that tells `progress` of the bytes it reads.
struct Counted<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Writes a copy of the referrer `referrer` whose subject is `subject`; returns the copy's
/// descriptor (as bookkeeping records it).
fn copy_referrer(
    layout: &Layout,
    writer: &LayoutWriter<'_>,
    referrer: &Descriptor,
    subject: &Descriptor,
) -> Result<Descriptor> {
    let what = format!("{}@{}", layout.name(), referrer.digest);
    let bytes = layout.read_document(referrer)?;
    let mut value: Map<String, Value> = parse_document(&bytes, Schema::ManifestLike, &what)?;
    value.insert(
        "subject".into(),
        descriptor_value(&Descriptor::new(
            subject.media_type.clone(),
            subject.digest.clone(),
            subject.size,
        ))?,
    );
    let written = writer.write_blob_bytes(&canonical::to_vec(&Value::Object(value)))?;
    Ok(Descriptor {
        digest: written.digest,
        size: written.size,
        ..referrer.clone()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::codec::layer::{sample_entries, LayerOptions};
    use crate::ops::layer::build_layer;
    use crate::progress::NoProgress;
    use crate::spec::document::media_type::{
        DOCKER_LAYER_FOREIGN_GZIP, DOCKER_LAYER_GZIP, DOCKER_LAYER_ZSTD, OCI_LAYER_GZIP,
        OCI_LAYER_NONDIST_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD,
    };

    #[test]
    fn each_layer_gets_its_action_from_its_media_type() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = Layout::init(dir.path()).unwrap();
        let present = build_layer(
            &layout.writer().unwrap(),
            &sample_entries(),
            &LayerOptions::new(Compression::Gzip),
        )
        .unwrap()
        .descriptor;
        let absent = Digest::sha256_of(b"not in the layout");
        let layer = |media_type: &str, digest: &Digest| {
            Descriptor::new(media_type, digest.clone(), present.size)
        };
        let zstd = ConvertSpec {
            compression: Some(Compression::Zstd),
            ..ConvertSpec::default()
        };
        let to_oci = ConvertSpec {
            to_oci: true,
            ..ConvertSpec::default()
        };
        let recompress = |media_type: &str, drop_urls| Action::Recompress {
            from: Compression::Gzip,
            media_type: media_type.into(),
            drop_urls,
        };
        let retype = |media_type: &str, drop_urls| Action::Retype {
            media_type: media_type.into(),
            drop_urls,
        };
        let d = &present.digest;
        for (spec, media_type, digest, want) in [
            (&zstd, OCI_LAYER_GZIP, d, recompress(OCI_LAYER_ZSTD, false)),
            (
                &zstd,
                DOCKER_LAYER_GZIP,
                d,
                recompress(DOCKER_LAYER_ZSTD, false),
            ),
            (&zstd, OCI_LAYER_ZSTD, d, Action::Keep),
            (&zstd, OCI_LAYER_NONDIST_GZIP, &absent, Action::Keep),
            (&zstd, "application/vnd.in-toto+json", d, Action::Keep),
            (&to_oci, DOCKER_LAYER_GZIP, d, retype(OCI_LAYER_GZIP, false)),
            (
                &to_oci,
                DOCKER_LAYER_FOREIGN_GZIP,
                d,
                retype(OCI_LAYER_GZIP, true),
            ),
            (
                &to_oci,
                OCI_LAYER_NONDIST_GZIP,
                d,
                retype(OCI_LAYER_GZIP, true),
            ),
            (&to_oci, OCI_LAYER_TAR, d, Action::Keep),
        ] {
            let got = Converter::new(&layout, spec)
                .action(&layer(media_type, digest), 0, "m")
                .unwrap();
            assert_eq!(got, want, "{media_type}");
        }
        let err = Converter::new(&layout, &to_oci)
            .action(&layer(OCI_LAYER_NONDIST_GZIP, &absent), 3, "m")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("non-distributable layer 3") && err.contains(absent.as_str()),
            "{err}"
        );
    }

    #[test]
    fn recompressing_checks_the_diff_id_and_keeps_nothing_on_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = Layout::init(dir.path()).unwrap();
        let writer = layout.writer().unwrap();
        let built = build_layer(
            &writer,
            &sample_entries(),
            &LayerOptions::new(Compression::Gzip),
        )
        .unwrap();
        let job = |diff_id: &Digest| Job {
            layer: built.descriptor.clone(),
            from: Compression::Gzip,
            diff_id: diff_id.clone(),
        };
        let options = CompressOptions::new(Compression::Zstd);
        let limits = Limits::default();
        let blobs = || {
            std::fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count()
        };
        let before = blobs();
        let wrong = Digest::sha256_of(b"another tar");
        let err = recompress(
            &layout,
            &writer,
            &job(&wrong),
            &options,
            &limits,
            &NoProgress,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("diff_id") && err.contains(wrong.as_str()),
            "{err}"
        );
        let written = recompress(
            &layout,
            &writer,
            &job(&built.diff_id),
            &options,
            &limits,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(blobs(), before, "nothing in blobs/ before it is adopted");
        writer.adopt(&written).unwrap();
        let again = build_layer(
            &writer,
            &sample_entries(),
            &LayerOptions::new(Compression::Zstd),
        )
        .unwrap();
        assert_eq!(
            written.digest, again.descriptor.digest,
            "the same as a zstd build"
        );
    }

    #[test]
    fn retarget_keeps_the_other_fields() {
        let mut entry = json!({"mediaType": "a", "digest": "sha256:x", "size": 1,
                               "platform": {"os": "linux"}, "x-vendor": true});
        let to = Descriptor::new(OCI_MANIFEST, Digest::sha256_of(b"m"), 9);
        retarget(&mut entry, &to);
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
        assert_eq!(entry["size"], 9);
        assert_eq!(entry["platform"]["os"], "linux");
        assert_eq!(entry["x-vendor"], true);
    }
}
