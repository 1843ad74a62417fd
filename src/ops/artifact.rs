//! Artifacts (image-spec 1.1): creating them from files (`push`), attaching them to a subject
//! (`attach`), writing their files out safely (`pull`), and turning the pre-release artifact
//! manifest into an image manifest (`artifact_to_image`).
//!
//! Every input is checked before the first blob is written — files, media types, annotations,
//! the annotation file, the subject, and the size the manifest will have — so a bad input leaves
//! the layout exactly as it was. The manifest's size is known in advance because digests have a
//! fixed length and `data` is as long as the blob's size says; a directory is packed into an
//! anonymous temp file first, which gives its size.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::codec::apply;
use crate::codec::decode;
use crate::codec::extract::{Metadata, Policy, Root};
use crate::codec::layer::{encode_layer, Entry, LayerOptions};
use crate::codec::tar::Kind;
use crate::error::{Error, IoContext, Result};
use crate::graph::referrers::{self, descriptor_value, Format};
use crate::graph::resolve::{resolve, resolve_in, Resolved};
use crate::spec::digest::{Algorithm, Digest, Mismatch, VerifyingReader};
use crate::spec::document::media_type::{
    self, Compression, OCI_ARTIFACT_MANIFEST, OCI_EMPTY, OCI_LAYER_GZIP, OCI_MANIFEST,
};
use crate::spec::document::{
    canonical, Annotations, Descriptor, Document, CREATED, REF_NAME, TITLE,
};
use crate::spec::platform::Platform;
use crate::spec::reference::Reference;
use crate::spec::time::{rfc3339, Clock};
use crate::store::layout::{
    Layout, LayoutRead, LayoutWriter, PendingBlob, MAX_DOCUMENT_SIZE, TEMP_PREFIX,
};

/// The largest manifest registries accept (image-spec, distribution-spec): 4 MiB.
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;
/// The media type of a file given without one.
pub const DEFAULT_FILE_MEDIA_TYPE: &str = "application/octet-stream";
/// The media type of a `--config` file given without one (as oras uses).
pub const DEFAULT_CONFIG_MEDIA_TYPE: &str = "application/vnd.unknown.config.v1+json";
/// oras's annotation holding the digest of a directory layer's uncompressed tar.
pub const ORAS_CONTENT_DIGEST: &str = "io.deis.oras.content.digest";
/// oras's annotation telling `oras pull` to unpack a directory layer.
pub const ORAS_CONTENT_UNPACK: &str = "io.deis.oras.content.unpack";
/// The annotation-file key for the manifest's annotations.
pub const ANNOTATIONS_MANIFEST_KEY: &str = "$manifest";
/// The annotation-file key for the config descriptor's annotations.
pub const ANNOTATIONS_CONFIG_KEY: &str = "$config";

/// The empty descriptor's content and its base64.
const EMPTY_JSON: &[u8] = b"{}";
const EMPTY_DATA: &str = "e30=";

/// A file argument, `PATH[:MEDIATYPE]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileArg {
    /// The argument as given, without the media type (annotation-file keys may use it).
    pub given: String,
    pub path: PathBuf,
    pub media_type: Option<String>,
}

impl FileArg {
    /// Parses `PATH[:MEDIATYPE]`. A path that exists as given is taken whole (file names may
    /// contain ':'); otherwise text after the last ':' is the media type, which must follow
    /// RFC 6838.
    pub fn parse(text: &str) -> Result<FileArg> {
        let whole = || FileArg {
            given: text.to_string(),
            path: PathBuf::from(text),
            media_type: None,
        };
        if fs::symlink_metadata(text).is_ok() {
            return Ok(whole());
        }
        let Some((path, media_type)) = text.rsplit_once(':') else {
            return Ok(whole());
        };
        if !media_type.contains('/') && fs::symlink_metadata(path).is_err() {
            return Ok(whole());
        }
        if !media_type::is_rfc6838(media_type) {
            return Err(Error::InvalidInput {
                what: format!("{text:?}:"),
                reason: format!("{media_type:?} is not a media type as RFC 6838 defines it (type/subtype, e.g. application/json)"),
            });
        }
        Ok(FileArg {
            given: path.to_string(),
            path: PathBuf::from(path),
            media_type: Some(media_type.to_string()),
        })
    }
}

/// Parses an `--annotation` value, `KEY=VALUE` (the value may be empty, the key may not).
pub fn parse_annotation(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(Error::InvalidInput {
            what: format!("the annotation {text:?}"),
            reason: "is malformed: expected KEY=VALUE with a non-empty KEY".into(),
        }),
    }
}

/// Everything an artifact is made of, as given on the command line.
#[derive(Clone, Debug, Default)]
pub struct ArtifactSpec {
    /// The manifest's `artifactType` (RFC 6838).
    pub artifact_type: String,
    /// Files and directories, each one layer; none gives one empty-descriptor layer.
    pub files: Vec<FileArg>,
    /// The config blob; the empty descriptor when absent.
    pub config: Option<FileArg>,
    /// Manifest annotations (`--annotation`), in order given.
    pub annotations: Vec<(String, String)>,
    /// An annotation file in oras's format: `{"$manifest": {…}, "$config": {…}, "FILE": {…}}`.
    pub annotation_file: Option<PathBuf>,
    /// Blobs of at most this many bytes are also embedded in their descriptor's `data`.
    pub inline_max: Option<u64>,
    /// Write a manifest larger than [`MANIFEST_LIMIT`] anyway.
    pub allow_large: bool,
    /// The time to record: `created`, and the mtime of packed directories.
    pub clock: Clock,
}

/// An artifact ocikit wrote.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// The manifest's descriptor as bookkeeping records it (with artifactType, annotations).
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
}

/// What one layer will be made of.
#[derive(Debug)]
enum Source {
    File { path: PathBuf, size: u64 },
    Directory { path: PathBuf },
    Empty,
}

#[derive(Debug)]
struct PlannedBlob {
    source: Source,
    media_type: String,
    annotations: Annotations,
}

/// A validated spec: nothing is written until every part of it has been checked.
#[derive(Debug)]
struct Plan {
    artifact_type: String,
    layers: Vec<PlannedBlob>,
    config: PlannedBlob,
    annotations: Annotations,
    inline_max: Option<u64>,
    allow_large: bool,
    mtime: u64,
}

/// Where a blob's bytes come from once every size is known.
enum Ready<'w> {
    File(PathBuf),
    Packed(PendingBlob<'w>),
    Empty,
}

/// A blob ready to be stored: its size is known, and its digest unless it is a file (whose
/// digest is a placeholder of the same length until it is stored).
struct Prepared<'w> {
    ready: Ready<'w>,
    digest: Digest,
    size: u64,
    /// The digest of a packed directory's uncompressed tar.
    diff_id: Option<Digest>,
}

impl Plan {
    fn new(spec: &ArtifactSpec) -> Result<Plan> {
        if !media_type::is_rfc6838(&spec.artifact_type) {
            return Err(Error::InvalidInput {
                what: format!("the artifact type {:?}", spec.artifact_type),
                reason: "is not a media type as RFC 6838 defines it (type/subtype, e.g. application/spdx+json)".into(),
            });
        }
        if let Some(max) = spec.inline_max {
            if max > MANIFEST_LIMIT {
                return Err(Error::InvalidInput {
                    what: format!("the inline size limit {max}"),
                    reason: format!("is more than the {MANIFEST_LIMIT}-byte manifest limit"),
                });
            }
        }
        let mut layers = Vec::with_capacity(spec.files.len());
        let mut titles: BTreeMap<String, &str> = BTreeMap::new();
        for arg in &spec.files {
            let (source, default_type) = source_of(arg)?;
            let title = title_of(&arg.path)?;
            if let Some(other) = titles.insert(title.clone(), &arg.given) {
                return Err(Error::Conflict {
                    what: format!("{other:?} and {:?}", arg.given),
                    reason: format!(
                        "would both be titled {title:?}; an artifact's files need distinct names"
                    ),
                });
            }
            let mut annotations = Annotations::new();
            annotations.insert(TITLE.to_string(), title);
            layers.push(PlannedBlob {
                source,
                media_type: arg.media_type.clone().unwrap_or(default_type.into()),
                annotations,
            });
        }
        let config = match &spec.config {
            None => PlannedBlob {
                source: Source::Empty,
                media_type: OCI_EMPTY.into(),
                annotations: Annotations::new(),
            },
            Some(arg) => match source_of(arg)? {
                (source @ Source::File { .. }, _) => PlannedBlob {
                    source,
                    media_type: arg
                        .media_type
                        .clone()
                        .unwrap_or(DEFAULT_CONFIG_MEDIA_TYPE.into()),
                    annotations: Annotations::new(),
                },
                _ => {
                    return Err(Error::InvalidInput {
                        what: format!("the config {}", arg.path.display()),
                        reason: "is a directory; it must be a file".into(),
                    })
                }
            },
        };
        let mut plan = Plan {
            artifact_type: spec.artifact_type.clone(),
            layers,
            config,
            annotations: Annotations::new(),
            inline_max: spec.inline_max,
            allow_large: spec.allow_large,
            mtime: spec.clock.mtime(),
        };
        if let Some(path) = &spec.annotation_file {
            plan.apply_annotation_file(path, spec)?;
        }
        for (key, value) in &spec.annotations {
            if plan
                .annotations
                .insert(key.clone(), value.clone())
                .is_some()
            {
                return Err(Error::Conflict {
                    what: format!("the annotation {key:?}"),
                    reason: format!("is given twice (among the annotations and the annotation file's {ANNOTATIONS_MANIFEST_KEY})"),
                });
            }
        }
        if !plan.annotations.contains_key(CREATED) {
            let created = rfc3339(spec.clock.created());
            plan.annotations.insert(CREATED.into(), created);
        }
        if plan.layers.is_empty() {
            plan.layers.push(PlannedBlob {
                source: Source::Empty,
                media_type: OCI_EMPTY.into(),
                annotations: Annotations::new(),
            });
        }
        Ok(plan)
    }

    /// Reads an annotation file (oras's format) into the plan. Every key must be `$manifest`,
    /// `$config`, or name one of the files (as given, or by its title).
    fn apply_annotation_file(&mut self, path: &Path, spec: &ArtifactSpec) -> Result<()> {
        let what = path.display().to_string();
        let bytes = crate::store::layout::read_small_file(path, MAX_DOCUMENT_SIZE)?;
        let value: Value = crate::spec::document::parse_json(&bytes, &what)?;
        let shape = |pointer: String, message: &str| Error::Json {
            file: what.clone(),
            pointer,
            message: message.to_string(),
        };
        let Value::Object(top) = value else {
            return Err(shape(
                String::new(),
                "an annotation file must be a JSON object of objects of strings",
            ));
        };
        for (key, inner) in top {
            let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
            let Value::Object(inner) = inner else {
                return Err(shape(pointer, "each value must be an object of strings"));
            };
            let mut annotations = Annotations::new();
            for (k, v) in inner {
                let Value::String(v) = v else {
                    return Err(shape(
                        format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                        "annotation values must be strings",
                    ));
                };
                annotations.insert(k, v);
            }
            let target = match key.as_str() {
                ANNOTATIONS_MANIFEST_KEY => &mut self.annotations,
                ANNOTATIONS_CONFIG_KEY => &mut self.config.annotations,
                file => {
                    let i = spec
                        .files
                        .iter()
                        .zip(&self.layers)
                        .position(|(arg, layer)| {
                            arg.given == file || layer.annotations.get(TITLE).map(String::as_str) == Some(file)
                        })
                        .ok_or_else(|| {
                            shape(
                                pointer.clone(),
                                &format!(
                                    "the key {file:?} is neither {ANNOTATIONS_MANIFEST_KEY}, {ANNOTATIONS_CONFIG_KEY} nor one of the files given"
                                ),
                            )
                        })?;
                    &mut self.layers[i].annotations
                }
            };
            target.extend(annotations);
        }
        Ok(())
    }

    /// Packs directories into blobs not yet committed; after this every size is known. Nothing
    /// is visible in the layout yet.
    fn prepare<'w>(&self, writer: &'w LayoutWriter<'_>) -> Result<Vec<Prepared<'w>>> {
        let mut ready = Vec::with_capacity(self.layers.len() + 1);
        for blob in self.layers.iter().chain(std::iter::once(&self.config)) {
            ready.push(match &blob.source {
                Source::File { path, size } => Prepared {
                    ready: Ready::File(path.clone()),
                    digest: placeholder_digest(),
                    size: *size,
                    diff_id: None,
                },
                Source::Directory { path } => {
                    let title = blob.annotations.get(TITLE).cloned().unwrap_or_default();
                    let (packed, diff_id) = pack_directory(writer, path, &title, self.mtime)?;
                    Prepared {
                        digest: packed.digest.clone(),
                        size: packed.size,
                        ready: Ready::Packed(packed),
                        diff_id: Some(diff_id),
                    }
                }
                Source::Empty => Prepared {
                    ready: Ready::Empty,
                    digest: Digest::sha256_of(EMPTY_JSON),
                    size: 2,
                    diff_id: None,
                },
            });
        }
        Ok(ready)
    }

    /// The descriptor of blob `planned` with the given digest and size (and `data`).
    fn descriptor(
        &self,
        planned: &PlannedBlob,
        digest: &Digest,
        size: u64,
        diff_id: Option<&Digest>,
        data: Option<String>,
    ) -> Descriptor {
        let mut annotations = planned.annotations.clone();
        if let Some(diff_id) = diff_id {
            annotations
                .entry(ORAS_CONTENT_DIGEST.into())
                .or_insert_with(|| diff_id.to_string());
            annotations
                .entry(ORAS_CONTENT_UNPACK.into())
                .or_insert_with(|| "true".into());
        }
        let data = match planned.source {
            Source::Empty => Some(EMPTY_DATA.to_string()),
            _ => data,
        };
        Descriptor {
            annotations: (!annotations.is_empty()).then_some(annotations),
            data,
            ..Descriptor::new(planned.media_type.clone(), digest.clone(), size)
        }
    }

    /// The manifest for blobs of these digests and sizes; `inline` gives each blob's `data`.
    fn manifest(
        &self,
        blobs: &[(Digest, u64, Option<Digest>)],
        inline: &dyn Fn(usize, u64) -> Result<Option<String>>,
        subject: Option<&Descriptor>,
    ) -> Result<(Vec<u8>, Vec<Descriptor>, Descriptor)> {
        let all: Vec<&PlannedBlob> = self.layers.iter().chain([&self.config]).collect();
        let mut descriptors = Vec::with_capacity(all.len());
        for (i, (planned, (digest, size, diff_id))) in all.iter().zip(blobs).enumerate() {
            let inlined = self.inline_max.is_some_and(|max| *size <= max);
            let data = if inlined && !matches!(planned.source, Source::Empty) {
                inline(i, *size)?
            } else {
                None
            };
            descriptors.push(self.descriptor(planned, digest, *size, diff_id.as_ref(), data));
        }
        let config = descriptors.pop().ok_or_else(|| Error::InvalidInput {
            what: "the artifact".into(),
            reason: "has no config descriptor".into(),
        })?;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": self.artifact_type,
            "config": descriptor_value(&config)?,
            "layers": descriptors.iter().map(descriptor_value).collect::<Result<Vec<_>>>()?,
            "annotations": self.annotations,
        });
        if let Some(subject) = subject {
            manifest["subject"] = descriptor_value(subject)?;
        }
        Ok((canonical::to_vec(&manifest), descriptors, config))
    }

    fn check_size(&self, bytes: usize) -> Result<()> {
        if bytes as u64 > MANIFEST_LIMIT && !self.allow_large {
            return Err(Error::ManifestTooLarge {
                what: "the manifest".into(),
                size: bytes as u64,
                limit: MANIFEST_LIMIT,
            });
        }
        Ok(())
    }

    /// Checks the manifest's size, then stores every blob and the manifest. Returns the
    /// manifest's descriptor as bookkeeping records it, its config and layers.
    fn write(&self, writer: &LayoutWriter<'_>, subject: Option<&Descriptor>) -> Result<Artifact> {
        let prepared = self.prepare(writer)?;
        // Size check with placeholder digests (same length) and placeholder data (same length).
        let sizes: Vec<(Digest, u64, Option<Digest>)> = prepared
            .iter()
            .map(|p| (p.digest.clone(), p.size, p.diff_id.clone()))
            .collect();
        let placeholder = |_: usize, size: u64| -> Result<Option<String>> {
            Ok(Some("A".repeat(base64_len(size))))
        };
        let (predicted, _, _) = self.manifest(&sizes, &placeholder, subject)?;
        self.check_size(predicted.len())?;

        // Store the blobs.
        let mut stored = Vec::with_capacity(prepared.len());
        for Prepared {
            ready,
            size,
            diff_id,
            ..
        } in prepared
        {
            let written = match ready {
                Ready::File(path) => {
                    let mut file = File::open(&path).ctx("cannot open", &path)?;
                    let written = writer.write_blob(&mut file, None)?;
                    if written.size != size {
                        return Err(Error::Conflict {
                            what: path.display().to_string(),
                            reason: format!(
                                "changed while ocikit read it ({size} bytes before, {} after)",
                                written.size
                            ),
                        });
                    }
                    written
                }
                Ready::Packed(pending) => pending.commit()?,
                Ready::Empty => writer.write_blob_bytes(EMPTY_JSON)?,
            };
            stored.push((written.digest, written.size, diff_id));
        }
        let layout = writer.layout();
        let inline = |i: usize, size: u64| -> Result<Option<String>> {
            let bytes = layout.read_blob_limited(&stored[i].0, Some(size))?;
            Ok(Some(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ))
        };
        let (bytes, layers, config) = self.manifest(&stored, &inline, subject)?;
        self.check_size(bytes.len())?;
        let written = writer.write_blob_bytes(&bytes)?;
        Ok(Artifact {
            manifest: Descriptor {
                annotations: Some(self.annotations.clone()),
                artifact_type: Some(self.artifact_type.clone()),
                ..Descriptor::new(OCI_MANIFEST, written.digest, written.size)
            },
            config,
            layers,
            subject: subject.cloned(),
        })
    }
}

/// What a file argument is, and the media type it gets by default.
fn source_of(arg: &FileArg) -> Result<(Source, &'static str)> {
    let meta = fs::metadata(&arg.path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::InvalidInput {
            what: arg.path.display().to_string(),
            reason: "does not exist".into(),
        },
        _ => Error::io("cannot read", &arg.path, e),
    })?;
    if meta.is_dir() {
        Ok((
            Source::Directory {
                path: arg.path.clone(),
            },
            OCI_LAYER_GZIP,
        ))
    } else if meta.is_file() {
        Ok((
            Source::File {
                path: arg.path.clone(),
                size: meta.len(),
            },
            DEFAULT_FILE_MEDIA_TYPE,
        ))
    } else {
        Err(Error::InvalidInput {
            what: arg.path.display().to_string(),
            reason: "is neither a regular file nor a directory".into(),
        })
    }
}

/// The title of a file: its base name (of the absolute path for `.` and the like).
fn title_of(path: &Path) -> Result<String> {
    let named = match path.file_name() {
        Some(name) => Some(name.to_os_string()),
        None => fs::canonicalize(path)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_os_string())),
    };
    named
        .and_then(|n| n.into_string().ok())
        .ok_or_else(|| Error::InvalidInput {
            what: path.display().to_string(),
            reason: "has no file name (or one that is not UTF-8) to title its layer with".into(),
        })
}

/// A digest-shaped placeholder: every sha256 digest has this length.
fn placeholder_digest() -> Digest {
    Digest::from_hash(Algorithm::Sha256, &[0u8; 32])
}

/// The length of the padded base64 of `size` bytes.
fn base64_len(size: u64) -> usize {
    (size as usize).div_ceil(3) * 4
}

/// Packs `dir` as oras does: entries under `title/`, tar+gzip, reproducible (sorted, root-owned,
/// one mtime). Symlinks are kept as links; devices, FIFOs and sockets are refused.
fn pack_directory<'w>(
    writer: &'w LayoutWriter<'_>,
    dir: &Path,
    title: &str,
    mtime: u64,
) -> Result<(PendingBlob<'w>, Digest)> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries = vec![Entry::dir(title)];
    for item in walkdir::WalkDir::new(dir).min_depth(1).follow_links(false) {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            Error::io("cannot read", path, e.into())
        })?;
        let relative = item.path().strip_prefix(dir).unwrap_or(item.path());
        let relative = relative.to_str().ok_or_else(|| Error::Unsupported {
            what: item.path().display().to_string(),
            reason: "has a name that is not UTF-8".into(),
        })?;
        let name = format!("{title}/{relative}");
        let meta = item
            .path()
            .symlink_metadata()
            .ctx("cannot read", item.path())?;
        let mode = meta.permissions().mode();
        let kind = meta.file_type();
        entries.push(if kind.is_dir() {
            Entry::dir(name).with_mode(mode)
        } else if kind.is_file() {
            Entry::file_from(name, item.path()).with_mode(mode)
        } else if kind.is_symlink() {
            let target = fs::read_link(item.path()).ctx("cannot read link", item.path())?;
            let target = target.to_str().ok_or_else(|| Error::Unsupported {
                what: format!("the link {}", item.path().display()),
                reason: "has a target that is not UTF-8".into(),
            })?;
            Entry::symlink(name, target)
        } else {
            return Err(Error::Unsupported {
                what: item.path().display().to_string(),
                reason: "is a device, FIFO or socket; it cannot be put in a layer".into(),
            });
        });
    }
    let options = LayerOptions::new(Compression::Gzip).with_mtime(mtime);
    let (sink, diff_id) = encode_layer(&entries, &options, writer.blob_sink(Algorithm::Sha256)?)?;
    Ok((sink.finish()?, diff_id))
}

/// Creates an artifact from `spec` and names it `name` in `layout` (a name names one thing:
/// any other entry of that name loses it).
pub fn push(layout: &Layout, name: &str, spec: &ArtifactSpec) -> Result<Artifact> {
    crate::ops::tag::check_new_name(name)?;
    let plan = Plan::new(spec)?;
    let writer = layout.writer()?;
    let artifact = plan.write(&writer, None)?;
    let mut named = artifact.manifest.clone();
    named
        .annotations
        .get_or_insert_with(Default::default)
        .insert(REF_NAME.into(), name.into());
    let entry = descriptor_value(&named)?;
    writer.update_index(|index| {
        index.remove_where(|d| d.ref_name() == Some(name));
        index.push_raw(entry)?;
        Ok(((), true))
    })?;
    Ok(artifact)
}

/// Creates an artifact from `spec` whose `subject` is what `subject` names (with `platform`,
/// one manifest of an index), and records it as a referrer in the conventions of `format`.
pub fn attach(
    layout: &Layout,
    subject: &Reference,
    platform: Option<&Platform>,
    spec: &ArtifactSpec,
    format: Format,
) -> Result<Artifact> {
    let plan = Plan::new(spec)?;
    let writer = layout.writer()?;
    writer.update_index(|index| {
        // The subject is resolved, and its bookkeeping read, under the index lock and before
        // the first blob is written; index.json is parsed once.
        let resolved = resolve_in(layout, index, subject, platform)?;
        // The subject descriptor says "manifest" (or "index"): only of bytes that are one.
        resolved.require_document()?;
        let subject = Descriptor::new(
            resolved.descriptor.media_type.clone(),
            resolved.descriptor.digest.clone(),
            resolved.descriptor.size,
        );
        let pending = referrers::Pending::read(layout, index, &subject.digest, format)?;
        let artifact = plan.write(&writer, Some(&subject))?;
        let changed = pending.record(&writer, index, &artifact.manifest)?;
        Ok((artifact, changed))
    })
}

// ---- pull ----

/// What `pull` wrote.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pulled {
    pub files: Vec<PulledFile>,
    /// Layers without a title, which have no file name to be written under.
    pub skipped: Vec<Digest>,
}

/// One file or directory `pull` wrote.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PulledFile {
    /// Relative to the output directory.
    pub path: String,
    pub digest: Digest,
    pub size: u64,
    /// True for a directory layer that was unpacked.
    pub unpacked: bool,
}

/// Writes the titled layers of the artifact `reference` names into `out`: each as the file its
/// `org.opencontainers.image.title` names, directories (`io.deis.oras.content.unpack`)
/// unpacked. With `config`, the config blob is written as that file too. Nothing is written
/// outside `out`: every path is resolved on disk below it ([`crate::codec::extract`], refusing), so no
/// link that leads out — already there, made by an earlier entry, or a hard link to one — is
/// followed or made; titles and tar names that are absolute or contain `..` are refused, since
/// tools read those differently. Each file is written to a temp file and renamed into place once
/// its digest is verified; a directory is unpacked into a temp directory and renamed into place
/// once its digests are verified and its links judged as the tree finally is.
pub fn pull(
    layout: &dyn LayoutRead,
    reference: &Reference,
    platform: Option<&Platform>,
    out: &Path,
    config: Option<&str>,
    limits: &decode::Limits,
) -> Result<Pulled> {
    let resolved = resolve(layout, reference, platform)?;
    let Document::Manifest(manifest) = &resolved.document else {
        return Err(Error::UnexpectedMediaType {
            what: format!("{}", resolved.descriptor.digest),
            media_type: resolved.descriptor.media_type.clone(),
            expected: "but pull needs an artifact or image manifest, not an index (select one of its manifests by platform)"
                .into(),
        });
    };
    // Every name is checked before anything is written.
    let mut plan: Vec<(Vec<String>, &Descriptor, bool)> = Vec::new();
    let mut pulled = Pulled::default();
    let mut names = HashSet::new();
    for layer in manifest.content() {
        let Some(title) = layer.annotation(TITLE) else {
            pulled.skipped.push(layer.digest.clone());
            continue;
        };
        let components = safe_components(title, &format!("the title of layer {}", layer.digest))?;
        if !names.insert(components.clone()) {
            return Err(Error::Conflict {
                what: format!("two layers are titled {title:?};"),
                reason: "refusing to write one over the other".into(),
            });
        }
        let unpack = layer.annotation(ORAS_CONTENT_UNPACK) == Some("true");
        plan.push((components, layer, unpack));
    }
    if let (Some(name), Some(descriptor)) = (config, manifest.config.as_ref()) {
        let components = safe_components(name, "the config's file name")?;
        if !names.insert(components.clone()) {
            return Err(Error::Conflict {
                what: format!("the config's file name {name:?}"),
                reason: "is also a layer's title".into(),
            });
        }
        plan.push((components, descriptor, false));
    } else if config.is_some() {
        return Err(Error::InvalidInput {
            what: format!("manifest {}", resolved.descriptor.digest),
            reason: "has no config to write".into(),
        });
    }
    if plan.is_empty() {
        return Err(Error::InvalidInput {
            what: format!("manifest {}", resolved.descriptor.digest),
            reason: "has no titled layers; there is nothing to write".into(),
        });
    }
    fs::create_dir_all(out).ctx("cannot create directory", out)?;
    if !fs::metadata(out).ctx("cannot read", out)?.is_dir() {
        return Err(Error::InvalidInput {
            what: out.display().to_string(),
            reason: "is not a directory".into(),
        });
    }
    let root = Root::open(out, Policy::Refuse)?;
    for (components, descriptor, unpack) in plan {
        let mut content = open_content(layout, descriptor)?;
        if unpack {
            unpack_layer(
                &layout.name(),
                &root,
                &components,
                descriptor,
                content.as_mut(),
                limits,
            )?;
        } else {
            write_file(&root, &components, descriptor, content.as_mut())?;
        }
        pulled.files.push(PulledFile {
            path: components.join("/"),
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            unpacked: unpack,
        });
    }
    Ok(pulled)
}

/// A verified stream of a blob: from the layout, or from the descriptor's `data` when the
/// layout lacks the blob.
fn open_content<'a>(
    layout: &'a dyn LayoutRead,
    descriptor: &Descriptor,
) -> Result<Box<dyn Read + Send + 'a>> {
    if layout.blob_len(&descriptor.digest)?.is_none() {
        if let Some(data) = &descriptor.data {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| Error::CorruptBlob {
                    digest: descriptor.digest.clone(),
                    layout: layout.name(),
                    detail: format!("the data field of its descriptor is not base64: {e}"),
                })?;
            return Ok(Box::new(VerifyingReader::new(
                io::Cursor::new(bytes),
                descriptor.digest.clone(),
                Some(descriptor.size),
            )));
        }
    }
    Ok(Box::new(
        layout.open_blob(&descriptor.digest, Some(descriptor.size))?,
    ))
}

/// The components of a relative path, refusing what could leave the directory it is joined to.
fn safe_components(text: &str, what: &str) -> Result<Vec<String>> {
    let refuse = |reason: &str| {
        Err(Error::InvalidInput {
            what: format!("{what} {text:?}"),
            reason: format!("{reason}; refusing it"),
        })
    };
    if text.starts_with('/') {
        return refuse("is an absolute path");
    }
    if text.contains('\0') {
        return refuse("contains a NUL byte");
    }
    let mut components = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return refuse("contains '..'"),
            other => components.push(other.to_string()),
        }
    }
    if components.is_empty() {
        return refuse("names no file");
    }
    Ok(components)
}

/// Says a refusal of the extraction root as a sentence about `what` (a tar entry, a file).
fn refused(what: &str, e: Error) -> Error {
    match e {
        Error::Extract { reason, .. } => Error::InvalidInput {
            what: format!("the {what}"),
            reason: format!("{reason}; refusing it"),
        },
        e => e,
    }
}

/// Writes `content` to `components…` below the root, whole or not at all.
fn write_file(
    root: &Root,
    components: &[String],
    descriptor: &Descriptor,
    content: &mut dyn Read,
) -> Result<()> {
    let path: PathBuf = components.iter().collect();
    let shown = root.path().join(&path).display().to_string();
    root.replace_file(&path, 0o644, TEMP_PREFIX, |file| {
        copy(content, file, &shown).map(drop)
    })
    .map_err(|e| {
        let what = format!(
            "file {:?} of blob {}",
            components.join("/"),
            descriptor.digest
        );
        refused(&what, e)
    })
}

/// Copies a verified stream to `out`; a mismatch is reported as corruption of `what`.
fn copy(content: &mut dyn Read, out: &mut dyn Write, what: &str) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(match Mismatch::from_io(&e) {
                    Some(m) => Error::InvalidInput {
                        what: format!("the blob for {what}"),
                        reason: format!("is corrupt: {m}"),
                    },
                    None => Error::io("cannot read the blob for", what, e),
                })
            }
        };
        out.write_all(&buf[..n]).ctx("cannot write", what)?;
        total += n as u64;
    }
}

/// Unpacks a directory layer (tar, compressed as its media type says) into a staging directory
/// inside the root, which stands for the titled directory and is the extraction root of its
/// entries (so no link in it leads above it); checks the blob's digest and the tar's
/// (`io.deis.oras.content.digest`) and judges every link again; then renames it into place.
fn unpack_layer(
    layout_name: &str,
    root: &Root,
    components: &[String],
    descriptor: &Descriptor,
    content: &mut (dyn Read + Send),
    limits: &decode::Limits,
) -> Result<()> {
    let compression = match media_type::kind(&descriptor.media_type) {
        media_type::Kind::Layer(c) => c,
        _ if descriptor.media_type.ends_with("+zstd") => Compression::Zstd,
        _ if descriptor.media_type.ends_with("+gzip")
            || descriptor.media_type.ends_with(".gzip") =>
        {
            Compression::Gzip
        }
        _ => Compression::None,
    };
    let name = components.last().ok_or_else(|| Error::InvalidInput {
        what: "a path".into(),
        reason: "is empty".into(),
    })?;
    let staging = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempdir_in(root.path())
        .ctx("cannot create a temp directory in", root.path())?;
    let staged = staging
        .path()
        .file_name()
        .map(PathBuf::from)
        .ok_or_else(|| Error::InvalidInput {
            what: staging.path().display().to_string(),
            reason: "has no file name".into(),
        })?;
    // Everything that may fail once the staging directory is there.
    let mut unpack = || -> Result<()> {
        let stage = Root::open(staging.path(), Policy::Refuse)?;
        let digest = &descriptor.digest;
        // The titled directory itself is 0755 unless the tar says otherwise.
        stage.set_metadata(
            Path::new(""),
            &Metadata {
                mode: Some(0o755),
                ..Metadata::default()
            },
        )?;
        let options = apply::Options::plain(*limits);
        let mut names = Titled {
            title: name,
            digest,
        };
        let applied = apply::apply(
            &stage,
            content,
            compression,
            digest,
            layout_name,
            &options,
            &mut names,
        )?;
        stage.finish().map_err(|e| {
            let entry = match &e {
                Error::Extract { path, .. } => format!("{name}/{}", path.display()),
                _ => name.to_string(),
            };
            refused(&format!("tar entry {entry:?} of layer {digest}"), e)
        })?;
        if let (Some(want), Some(tar_digest)) = (
            descriptor.annotation(ORAS_CONTENT_DIGEST),
            applied.diff_id.as_ref(),
        ) {
            if want != tar_digest.as_str() {
                return Err(Error::InvalidInput {
                    what: format!("the {ORAS_CONTENT_DIGEST} annotation of layer {digest}"),
                    reason: format!(
                        "does not match the layer: it says {want}, but the layer's tar hashes to {tar_digest}"
                    ),
                });
            }
        }
        stage.sync()?;
        let target: PathBuf = components.iter().collect();
        root.rename(&staged, &target).map_err(|e| match e {
            Error::Io { source, .. }
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EEXIST | libc::ENOTEMPTY | libc::ENOTDIR | libc::EISDIR)
                ) =>
            {
                Error::Conflict {
                    what: root.path().join(&target).display().to_string(),
                    reason: "already exists; remove it or write into another directory".into(),
                }
            }
            e => refused(&format!("title of layer {digest}"), e),
        })?;
        Ok(())
    };
    let unpacked = unpack();
    match unpacked {
        // Renamed away: nothing is left for the temp directory to clean up.
        Ok(()) => drop(staging.keep()),
        // The tree may hold read-only directories, which the one removal opens up first.
        Err(_) => {
            if root.remove(&staged).is_ok() {
                drop(staging.keep());
            }
        }
    }
    unpacked
}

/// The names of a directory layer: every entry must lie under `title/`, which is stripped (the
/// staging directory stands for it); names with `..` or a leading `/` are refused, since tools
/// read those differently.
struct Titled<'a> {
    title: &'a str,
    digest: &'a Digest,
}

impl apply::Names for Titled<'_> {
    fn place(&mut self, raw: &[u8], role: apply::Role) -> Result<Option<PathBuf>> {
        let digest = self.digest;
        let of = match role {
            apply::Role::Entry(_) => format!("in layer {digest}, the tar entry"),
            apply::Role::LinkTarget => {
                format!("in layer {digest}, the hard link target of a tar entry")
            }
        };
        // Names are written as the tar gives them, never made up: two names that are not
        // UTF-8 would otherwise become one.
        let Ok(name) = std::str::from_utf8(raw) else {
            return Err(Error::InvalidInput {
                what: format!("{of} {:?}", crate::codec::tar::path::display(raw)),
                reason: "is not valid UTF-8; refusing it".into(),
            });
        };
        let components = safe_components(name, &of)?;
        if components[0] != self.title {
            return Err(Error::InvalidInput {
                what: format!("{of} {name:?}"),
                reason: format!(
                    "is not inside {:?}, the directory the layer is titled; refusing it",
                    self.title
                ),
            });
        }
        let rest: PathBuf = components[1..].iter().collect();
        if let apply::Role::Entry(kind) = role {
            if rest.as_os_str().is_empty() && kind != Kind::Directory {
                return Err(Error::InvalidInput {
                    what: format!("the tar entry {name:?} of layer {digest}"),
                    reason: format!(
                        "is a {} entry, but it names the directory the layer is titled; refusing it",
                        kind.describe()
                    ),
                });
            }
        }
        Ok(Some(rest))
    }
}

// ---- convert ----

/// What `artifact_to_image` did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Converted {
    /// The pre-release artifact manifest.
    pub from: Descriptor,
    /// The image-spec 1.1 manifest that replaces it.
    pub to: Descriptor,
    /// index.json entries now pointing at the new manifest.
    pub entries: usize,
    /// Fallback tags whose list now names the new manifest.
    pub tags: Vec<String>,
    /// Referrers whose subject is the old manifest (their subject cannot change).
    pub orphaned_referrers: Vec<Digest>,
}

/// Turns the pre-release `application/vnd.oci.artifact.manifest.v1+json` that `reference`
/// names into an image-spec 1.1 manifest with the same `artifactType`, `subject`, annotations
/// and blobs (as layers; the empty descriptor as config), and points the bookkeeping at it:
/// index.json entries of the old manifest are replaced in place, and its subject's fallback
/// index lists the new one instead. An artifact that nothing recorded (found by digest in
/// `blobs/`) and that has a subject is recorded in both conventions.
pub fn artifact_to_image(
    layout: &Layout,
    reference: &Reference,
    platform: Option<&Platform>,
) -> Result<Converted> {
    let resolved = resolve(layout, reference, platform)?;
    let (bytes, subject) = converted_manifest(&resolved)?;
    let from = resolved.descriptor.clone();
    let discovery = referrers::Discovery::new(layout, referrers::Scope::default())?;
    let recorded = discovery
        .index()
        .entries()
        .iter()
        .any(|d| d.digest == from.digest)
        || subject.as_ref().is_some_and(|s| {
            discovery
                .referrers(s)
                .iter()
                .any(|r| r.digest == from.digest)
        });
    if !recorded && subject.is_none() {
        return Err(Error::InvalidInput {
            what: format!("manifest {}", from.digest),
            reason: "is not named in index.json and has no subject; give it a name first".into(),
        });
    }
    let orphaned_referrers = discovery
        .referrers(&from.digest)
        .into_iter()
        .map(|r| r.digest)
        .collect();
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Json {
        file: "the converted manifest".into(),
        pointer: String::new(),
        message: e.to_string(),
    })?;
    let artifact_type = value["artifactType"].as_str().map(str::to_string);
    let annotations = resolved.document.annotations().cloned();

    let writer = layout.writer()?;
    writer.write_blob_bytes(EMPTY_JSON)?;
    let written = writer.write_blob_bytes(&bytes)?;
    let to = Descriptor {
        annotations,
        artifact_type,
        ..Descriptor::new(OCI_MANIFEST, written.digest, written.size)
    };
    let (entries, tags) = writer.update_index(|index| {
        let mut entries = 0;
        for i in 0..index.entries().len() {
            if index.entries()[i].digest != from.digest {
                continue;
            }
            let mut entry = index.raw_entry(i).unwrap_or(Value::Null);
            if let Some(fields) = entry.as_object_mut() {
                fields.insert("mediaType".into(), Value::from(OCI_MANIFEST));
                fields.insert("digest".into(), Value::from(to.digest.as_str()));
                fields.insert("size".into(), Value::from(to.size));
                if let Some(t) = &to.artifact_type {
                    fields.insert("artifactType".into(), Value::from(t.as_str()));
                }
            }
            index.replace_raw(i, entry)?;
            entries += 1;
        }
        let mut tags = Vec::new();
        if let Some(subject) = &subject {
            let replacement = descriptor_value(&to)?;
            let replaced = referrers::edit_fallback(&writer, index, subject, |list| {
                let mut changed = false;
                for item in list.iter_mut() {
                    if item.get("digest").and_then(Value::as_str) == Some(from.digest.as_str()) {
                        *item = replacement.clone();
                        changed = true;
                    }
                }
                changed
            })?;
            if replaced {
                tags.push(referrers::fallback_tag(subject));
            }
            if entries == 0 && !replaced {
                referrers::record(&writer, index, subject, &to, Format::Both)?;
                tags.push(referrers::fallback_tag(subject));
                entries += 1;
            }
        }
        let changed = entries > 0 || !tags.is_empty();
        Ok(((entries, tags), changed))
    })?;
    Ok(Converted {
        from,
        to,
        entries,
        tags,
        orphaned_referrers,
    })
}

/// The image manifest for a pre-release artifact manifest (canonical bytes), and its subject.
fn converted_manifest(resolved: &Resolved) -> Result<(Vec<u8>, Option<Digest>)> {
    let what = format!("manifest {}", resolved.descriptor.digest);
    let value: Value = crate::spec::document::parse_document(
        &resolved.bytes,
        crate::spec::document::Schema::ManifestLike,
        &what,
    )?;
    let own = value.get("mediaType").and_then(Value::as_str);
    if resolved.descriptor.media_type != OCI_ARTIFACT_MANIFEST && own != Some(OCI_ARTIFACT_MANIFEST)
    {
        return Err(Error::UnexpectedMediaType {
            what,
            media_type: own.unwrap_or(&resolved.descriptor.media_type).to_string(),
            expected: format!(
                "not {OCI_ARTIFACT_MANIFEST}; only pre-release artifact manifests are converted"
            ),
        });
    }
    let field = |pointer: &str, message: &str| Error::Json {
        file: what.clone(),
        pointer: pointer.into(),
        message: message.into(),
    };
    let artifact_type = value
        .get("artifactType")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            field(
                "/artifactType",
                "a pre-release artifact manifest needs a string artifactType",
            )
        })?;
    let blobs = match value.get("blobs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(field("/blobs", "blobs must be an array")),
    };
    let layers = if blobs.is_empty() {
        vec![
            json!({"mediaType": OCI_EMPTY, "digest": Digest::sha256_of(EMPTY_JSON), "size": 2, "data": EMPTY_DATA}),
        ]
    } else {
        blobs
    };
    let mut manifest = Map::new();
    manifest.insert("schemaVersion".into(), Value::from(2));
    manifest.insert("mediaType".into(), Value::from(OCI_MANIFEST));
    manifest.insert("artifactType".into(), Value::from(artifact_type));
    manifest.insert(
        "config".into(),
        json!({"mediaType": OCI_EMPTY, "digest": Digest::sha256_of(EMPTY_JSON), "size": 2, "data": EMPTY_DATA}),
    );
    manifest.insert("layers".into(), Value::Array(layers));
    for key in ["subject", "annotations"] {
        if let Some(v) = value.get(key).filter(|v| !v.is_null()) {
            manifest.insert(key.into(), v.clone());
        }
    }
    let bytes = canonical::to_vec(&Value::Object(manifest));
    if bytes.len() as u64 > MANIFEST_LIMIT {
        return Err(Error::ManifestTooLarge {
            what: "the converted manifest".into(),
            size: bytes.len() as u64,
            limit: MANIFEST_LIMIT,
        });
    }
    Ok((bytes, resolved.document.subject().map(|s| s.digest.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_arguments_split_at_the_last_colon_only_for_media_types() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a:b");
        fs::write(&odd, b"x").unwrap();
        let whole = FileArg::parse(odd.to_str().unwrap()).unwrap();
        assert_eq!(whole.path, odd);
        assert_eq!(whole.media_type, None);
        let typed = FileArg::parse(&format!("{}:application/json", odd.display())).unwrap();
        assert_eq!(typed.path, odd);
        assert_eq!(typed.media_type.as_deref(), Some("application/json"));
        assert!(FileArg::parse(&format!("{}:bad type/x", odd.display())).is_err());
        assert_eq!(
            FileArg::parse("missing").unwrap().path,
            PathBuf::from("missing")
        );
    }

    #[test]
    fn annotations_need_a_key() {
        assert_eq!(
            parse_annotation("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(parse_annotation("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_annotation("=b").is_err());
        assert!(parse_annotation("ab").is_err());
    }

    #[test]
    fn safe_components_refuse_escapes() {
        assert_eq!(safe_components("a/./b", "x").unwrap(), vec!["a", "b"]);
        for bad in ["/etc/passwd", "../x", "a/../../x", "", ".", "a\0b"] {
            assert!(safe_components(bad, "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn base64_lengths_are_padded() {
        for n in 0..10u64 {
            let bytes = vec![0u8; n as usize];
            assert_eq!(
                base64::engine::general_purpose::STANDARD
                    .encode(&bytes)
                    .len(),
                base64_len(n)
            );
        }
    }
}
