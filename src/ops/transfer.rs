//! One graph walk over a source into a destination: what copy, export, import and bundles
//! share.
//!
//! A transfer is planned, then written. [`Plan::new`] takes one or more sources (layout
//! directories or archives, through [`LayoutRead`]) and what to take from each (every entry,
//! or what some references name), resolves the roots, narrows them to a platform or a subset
//! of platforms when asked, and computes their closure with [`crate::graph::closure`]: every
//! blob, each once, and the referrers of everything carried unless they are left out. It also
//! says which `index.json` entries the destination gets. [`write()`] hands the blobs to a
//! [`Destination`] (a layout directory, an archive being written; see
//! [`crate::store::destination`]) and then records the entries, which is where a name that the
//! destination already gives to something else is refused (or replaced when forced).
//!
//! # Names and bookkeeping in the destination
//!
//! - A **named** entry (`org.opencontainers.image.ref.name`, or containerd's
//!   `io.containerd.image.name`, which holds the full reference when the other holds only the
//!   tag) collides with a destination entry of the same identity — its containerd name when it
//!   has one, else its ref.name — that points elsewhere. The same name at the same digest is
//!   left as it is.
//! - **Referrers** are recorded as untagged entries (convention a: oras and ocikit find them),
//!   copied from the source's own entry when it has one; and a subject's **fallback-tag index**
//!   (convention b) travels with the subject, byte for byte. Where the destination has another
//!   fallback index for the same subject, the two are merged into a new one.
//! - With **`platforms`**, an index whose children are not all wanted is replaced by a new
//!   index (canonical JSON) listing only the wanted ones, so its digest changes: the name then
//!   points at the new index. Attestation manifests (`vnd.docker.reference.digest`) stay with
//!   the manifest they describe.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::graph::closure::closure;
use crate::graph::documents::Documents;
use crate::graph::referrers::{
    descriptor_value, edit_fallback, fallback_tag, fallback_tag_subject, Discovery, Scope,
};
use crate::graph::resolve::{match_name, resolve_in};
use crate::progress::Progress;
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self, Kind};
use crate::spec::document::{
    canonical, from_value, parse_document, Descriptor, Document, Schema, CONTAINERD_NAME, REF_NAME,
};
use crate::spec::platform::Platform;
use crate::spec::reference::Reference;
use crate::store::destination::{BlobRef, Destination, DocumentStore, Placements};
use crate::store::layout::{IndexFile, LayoutRead, Link};
use crate::store::union::Union;

/// The annotation with which BuildKit ties an attestation manifest in an index to the image
/// manifest it describes.
const ATTESTATION_OF: &str = "vnd.docker.reference.digest";

/// What a transfer takes along.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Referrers of everything carried (and theirs), in every convention.
    pub referrers: bool,
    /// Also look for referrers that only a scan of the source's blobs finds (cosign keeps
    /// signatures so); they get untagged entries in the destination.
    pub scan: bool,
    /// Narrow each index to the manifest this platform selects (first match, through nested
    /// indexes): the name then points at that manifest.
    pub platform: Option<Platform>,
    /// Keep only these platforms of each index: an index that loses children is replaced by a
    /// new one (a new digest).
    pub platforms: Vec<Platform>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            referrers: true,
            scan: false,
            platform: None,
            platforms: Vec::new(),
        }
    }
}

impl Options {
    /// With referrers or without.
    pub fn with_referrers(self, referrers: bool) -> Options {
        Options { referrers, ..self }
    }

    /// Scanning the source's blobs for referrers too (see [`Options::scan`]).
    pub fn with_scan(self, scan: bool) -> Options {
        Options { scan, ..self }
    }

    /// Narrowed to `platform` (see [`Options::platform`]).
    pub fn with_platform(self, platform: Option<Platform>) -> Options {
        Options { platform, ..self }
    }

    /// Keeping only `platforms` (see [`Options::platforms`]).
    pub fn with_platforms(self, platforms: Vec<Platform>) -> Options {
        Options { platforms, ..self }
    }
}

/// What to take from one source.
#[derive(Clone, Debug)]
pub enum Selection {
    /// Every `index.json` entry (names, untagged images, referrers).
    All,
    /// What these references name (their name and digest; the layout part is not looked at).
    Refs(Vec<Reference>),
}

/// What a destination entry is (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// An entry with a name.
    Named,
    /// An untagged image.
    Untagged,
    /// An untagged referrer entry.
    Referrer,
    /// The fallback-tag index of `subject`, and what it lists (for a merge).
    Fallback { subject: Digest, listed: Vec<Value> },
}

/// An `index.json` entry a transfer records in its destination.
#[derive(Clone, Debug)]
pub struct Entry {
    pub kind: EntryKind,
    /// The entry as JSON (copied from the source where it came from one).
    pub value: Value,
    pub descriptor: Descriptor,
    /// Whether it is one of the roots asked for (not a referrer found on the way).
    pub root: bool,
}

impl Entry {
    /// An entry of `kind` whose JSON is `value`; `root`: one of the images asked for.
    pub(crate) fn new(kind: EntryKind, value: Value, root: bool) -> Result<Entry> {
        let descriptor = from_value::<Descriptor>(value.clone(), "an index.json entry")?;
        Ok(Entry {
            kind,
            value,
            descriptor,
            root,
        })
    }

    /// The name a collision is judged by: the containerd name when there is one, else the
    /// ref.name.
    pub fn identity(&self) -> Option<&str> {
        identity(&self.descriptor)
    }
}

fn identity(descriptor: &Descriptor) -> Option<&str> {
    descriptor.containerd_name().or(descriptor.ref_name())
}

/// An image a transfer carries (a root).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A planned transfer (see the module documentation).
pub struct Plan<'a> {
    union: Union<'a>,
    blobs: Vec<BlobRef>,
    entries: Vec<Entry>,
    referrers: usize,
    foreign: Vec<Digest>,
    warnings: Vec<String>,
    /// Referrers listed for the images whose manifest cannot be read (among `warnings`).
    unreadable: Vec<String>,
    /// Every manifest and index carried.
    documents: HashSet<Digest>,
}

/// One root before its closure is known.
struct Root {
    descriptor: Descriptor,
    entry: Entry,
}

impl<'a> Plan<'a> {
    /// Plans taking `selection` from each source.
    pub fn new(sources: &[(&'a dyn LayoutRead, Selection)], options: &Options) -> Result<Plan<'a>> {
        let name = sources
            .iter()
            .map(|(s, _)| s.name())
            .collect::<Vec<_>>()
            .join(", ");
        let mut union = Union::new(name);
        for (source, _) in sources {
            union.add_source(*source);
        }
        let mut plan = Plan {
            union,
            blobs: Vec::new(),
            entries: Vec::new(),
            referrers: 0,
            foreign: Vec::new(),
            warnings: Vec::new(),
            unreadable: Vec::new(),
            documents: HashSet::new(),
        };
        let mut seen: HashSet<Digest> = HashSet::new();
        for (i, (source, selection)) in sources.iter().enumerate() {
            plan.add_source(i, *source, selection, options, &mut seen)?;
        }
        Ok(plan)
    }

    fn add_source(
        &mut self,
        position: usize,
        source: &'a dyn LayoutRead,
        selection: &Selection,
        options: &Options,
        seen: &mut HashSet<Digest>,
    ) -> Result<()> {
        let index = source.index()?;
        let roots = self.roots(source, &index, selection, options)?;
        let descriptors: Vec<Descriptor> = roots.iter().map(|r| r.descriptor.clone()).collect();
        let (found, fallbacks) = {
            let scope = Scope {
                scan: options.referrers && options.scan,
            };
            let discovery = Discovery::with_index(&self.union, index.clone(), scope)?;
            let found = closure(&discovery, &descriptors, options.referrers)?;
            self.warnings.extend(discovery.problems());
            self.warnings.extend(found.unreadable.iter().cloned());
            self.unreadable.extend(found.unreadable.iter().cloned());
            let mut entries = Vec::new();
            for (_, referrer) in &found.referrers {
                let value = match untagged_entry(&index, &referrer.digest) {
                    Some(value) => value,
                    None => descriptor_value(&referrer.descriptor())?,
                };
                entries.push(Entry::new(EntryKind::Referrer, value, false)?);
            }
            let fallbacks = if options.referrers {
                fallback_entries(discovery.documents(), &index, &found.documents)?
            } else {
                Vec::new()
            };
            self.entries.extend(roots.into_iter().map(|r| r.entry));
            self.entries.extend(entries);
            (found, fallbacks)
        };
        self.referrers += found.referrers.len();
        self.foreign.extend(found.foreign);
        self.documents.extend(found.documents.iter().cloned());
        for (digest, size) in found.blobs {
            if seen.insert(digest.clone()) {
                self.union.assign(digest.clone(), position);
                self.blobs.push(BlobRef { digest, size });
            }
        }
        for entry in fallbacks {
            let blob = &entry.descriptor;
            if source.blob_len(&blob.digest)?.is_none() {
                self.warnings.push(format!(
                    "the fallback index {} ({}) is missing from {}; it is not carried",
                    blob.ref_name().unwrap_or_default(),
                    blob.digest,
                    source.name()
                ));
                continue;
            }
            self.documents.insert(blob.digest.clone());
            if seen.insert(blob.digest.clone()) {
                self.union.assign(blob.digest.clone(), position);
                self.blobs.push(BlobRef {
                    digest: blob.digest.clone(),
                    size: blob.size,
                });
            }
            self.entries.push(entry);
        }
        Ok(())
    }

    /// The roots `selection` names in `source`, narrowed as `options` say.
    fn roots(
        &mut self,
        source: &dyn LayoutRead,
        index: &IndexFile,
        selection: &Selection,
        options: &Options,
    ) -> Result<Vec<Root>> {
        let entries = index.entries();
        let mut roots = Vec::new();
        match selection {
            Selection::All => {
                let documents = Documents::new(source);
                for (i, descriptor) in entries.iter().enumerate() {
                    if descriptor
                        .ref_name()
                        .is_some_and(|n| fallback_tag_subject(n).is_some())
                    {
                        continue; // travels with its subject
                    }
                    let kind = if identity(descriptor).is_some() {
                        EntryKind::Named
                    } else if crate::graph::referrers::is_bookkeeping(descriptor, &documents) {
                        if !options.referrers {
                            continue; // an untagged referrer is left behind with the rest
                        }
                        EntryKind::Referrer
                    } else {
                        EntryKind::Untagged
                    };
                    let value = index.raw_entry(i).unwrap_or(Value::Null);
                    let reference = Reference {
                        digest: Some(descriptor.digest.clone()),
                        ..Reference::layout_only(source.name())
                    };
                    roots.push(self.root(source, index, &reference, kind, value, options)?);
                }
            }
            Selection::Refs(references) => {
                for reference in references {
                    let resolved = resolve_in(source, index, reference, None)?;
                    resolved.require_document()?;
                    let digest = &resolved.descriptor.digest;
                    let listed = match &reference.name {
                        Some(name) => match_name(entries, name)
                            .into_iter()
                            .find(|&i| &entries[i].digest == digest)
                            .and_then(|i| index.raw_entry(i)),
                        None => None,
                    };
                    let (kind, value) = match listed {
                        Some(value) => (EntryKind::Named, value),
                        None => {
                            let kind = match resolved.document.subject() {
                                Some(_) => EntryKind::Referrer,
                                None => EntryKind::Untagged,
                            };
                            (kind, descriptor_value(&resolved.descriptor)?)
                        }
                    };
                    roots.push(self.root(source, index, reference, kind, value, options)?);
                }
            }
        }
        Ok(roots)
    }

    /// One root: the entry `value` of kind `kind`, for what `reference` names, narrowed to a
    /// platform or a subset of platforms when it is an index.
    fn root(
        &mut self,
        source: &dyn LayoutRead,
        index: &IndexFile,
        reference: &Reference,
        kind: EntryKind,
        value: Value,
        options: &Options,
    ) -> Result<Root> {
        let entry = Entry::new(kind.clone(), value, true)?;
        let is_index = media_type::kind(&entry.descriptor.media_type) == Kind::Index;
        if !is_index || kind == EntryKind::Referrer {
            return Ok(Root {
                descriptor: entry.descriptor.clone(),
                entry,
            });
        }
        if let Some(platform) = &options.platform {
            let resolved = resolve_in(source, index, reference, Some(platform))?;
            let child = resolved.descriptor;
            let mut value = descriptor_value(&child)?;
            let names = entry.value.get("annotations").cloned();
            if let (Some(Value::Object(names)), Some(object)) = (names, value.as_object_mut()) {
                let annotations = object
                    .entry("annotations")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(annotations) = annotations {
                    annotations.extend(names);
                }
            }
            let entry = Entry::new(kind, value, true)?;
            return Ok(Root {
                descriptor: child,
                entry,
            });
        }
        if !options.platforms.is_empty() {
            let bytes = source.read_document(&entry.descriptor)?;
            if let Some(subset) = subset(&bytes, &entry.descriptor, &options.platforms)? {
                let size = subset.len() as u64;
                let digest = self.union.add_blob(subset);
                let mut value = entry.value.clone();
                if let Some(object) = value.as_object_mut() {
                    object.insert("digest".into(), Value::from(digest.to_string()));
                    object.insert("size".into(), Value::from(size));
                }
                let entry = Entry::new(kind, value, true)?;
                return Ok(Root {
                    descriptor: entry.descriptor.clone(),
                    entry,
                });
            }
        }
        Ok(Root {
            descriptor: entry.descriptor.clone(),
            entry,
        })
    }

    /// Gives the one root the name `name` (dropping a containerd name it had): for a copy to
    /// `DST:NAME`.
    pub fn rename(&mut self, name: &str) -> Result<()> {
        crate::store::layout::index::validate_ref_name(name)?;
        let roots = self.entries.iter().filter(|e| e.root).count();
        let entry = match self.entries.iter_mut().find(|e| e.root) {
            Some(entry) if roots == 1 => entry,
            _ => {
                return Err(Error::InvalidInput {
                    what: format!("the destination name {name:?}"),
                    reason: format!("names one image, and {roots} images are being copied"),
                })
            }
        };
        if let Some(object) = entry.value.as_object_mut() {
            let annotations = object
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(annotations) = annotations {
                annotations.remove(CONTAINERD_NAME);
                annotations.insert(REF_NAME.into(), Value::from(name));
            }
        }
        *entry = Entry::new(EntryKind::Named, entry.value.clone(), true)?;
        Ok(())
    }

    /// Gives the `i`-th root (in the order asked for) the name `name` in both conventions:
    /// `org.opencontainers.image.ref.name` and `io.containerd.image.name` both hold it, so
    /// that names from different repositories never collide (a bundle's entries).
    pub fn name_root(&mut self, i: usize, name: &str) -> Result<()> {
        crate::store::layout::index::validate_ref_name(name)?;
        let Some(entry) = self.entries.iter_mut().filter(|e| e.root).nth(i) else {
            return Err(Error::InvalidInput {
                what: format!("root {i}"),
                reason: "is not among the images planned".into(),
            });
        };
        if let Some(object) = entry.value.as_object_mut() {
            let annotations = object
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(annotations) = annotations {
                annotations.insert(REF_NAME.into(), Value::from(name));
                annotations.insert(CONTAINERD_NAME.into(), Value::from(name));
            }
        }
        *entry = Entry::new(EntryKind::Named, entry.value.clone(), true)?;
        Ok(())
    }

    /// Leaves out of the blobs to write every blob `omit` says, except manifests and indexes
    /// (which are always carried); returns those left out, with their sizes.
    pub fn omit(&mut self, omit: impl Fn(&Digest) -> bool) -> Vec<BlobRef> {
        let documents = &self.documents;
        let (out, kept): (Vec<BlobRef>, Vec<BlobRef>) = std::mem::take(&mut self.blobs)
            .into_iter()
            .partition(|b| omit(&b.digest) && !documents.contains(&b.digest));
        self.blobs = kept;
        out
    }

    /// What the blobs are read from (every source, and the documents the plan made).
    pub fn source(&self) -> &dyn LayoutRead {
        &self.union
    }

    /// Every blob to write, each once.
    pub fn blobs(&self) -> &[BlobRef] {
        &self.blobs
    }

    /// The entries the destination gets, roots first in the order asked for.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The images asked for (referrers asked for are counted with the referrers).
    pub fn images(&self) -> Vec<Image> {
        self.entries
            .iter()
            .filter(|e| e.root && e.kind != EntryKind::Referrer)
            .map(|e| Image {
                name: identity(&e.descriptor).map(str::to_string),
                digest: e.descriptor.digest.clone(),
                media_type: e.descriptor.media_type.clone(),
                size: e.descriptor.size,
            })
            .collect()
    }

    /// How many referrers come along.
    pub fn referrers(&self) -> usize {
        self.referrers
    }

    /// Bytes of every blob.
    pub fn bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }

    /// Foreign layers not carried (see [`crate::graph::closure::Closure::foreign`]).
    pub fn foreign(&self) -> &[Digest] {
        &self.foreign
    }

    /// What could not be read while planning (referrers may be missing where these say so).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The referrers listed for the images whose manifest cannot be read (not carried).
    pub fn unreadable_referrers(&self) -> &[String] {
        &self.unreadable
    }
}

/// The source's untagged entry for `digest`, as it is.
fn untagged_entry(index: &IndexFile, digest: &Digest) -> Option<Value> {
    index
        .find_digest(digest)
        .into_iter()
        .find(|&i| index.entries()[i].ref_name().is_none())
        .and_then(|i| index.raw_entry(i))
}

/// The fallback-tag entries of the subjects among `documents`, with what they list.
fn fallback_entries(
    read: &Documents<'_>,
    index: &IndexFile,
    documents: &[Digest],
) -> Result<Vec<Entry>> {
    let subjects: HashSet<&Digest> = documents.iter().collect();
    let mut out = Vec::new();
    for (i, descriptor) in index.entries().iter().enumerate() {
        let Some(subject) = descriptor.ref_name().and_then(fallback_tag_subject) else {
            continue;
        };
        if !subjects.contains(&subject) {
            continue;
        }
        let listed = match &*read.get(descriptor) {
            Ok(parsed) => match &parsed.document {
                Document::Index(list) => list
                    .manifests
                    .iter()
                    .map(descriptor_value)
                    .collect::<Result<Vec<_>>>()?,
                Document::Manifest(_) => continue,
            },
            // Unreadable: discovery said so; it is not carried.
            Err(_) => continue,
        };
        let value = index.raw_entry(i).unwrap_or(Value::Null);
        out.push(Entry::new(
            EntryKind::Fallback { subject, listed },
            value,
            false,
        )?);
    }
    Ok(out)
}

/// The index `bytes` (reached by `descriptor`) with only the children `platforms` select, as
/// canonical JSON; `None` when every child is wanted.
fn subset(
    bytes: &[u8],
    descriptor: &Descriptor,
    platforms: &[Platform],
) -> Result<Option<Vec<u8>>> {
    let what = format!("index {}", descriptor.digest);
    let mut value: Value = parse_document(bytes, Schema::ManifestLike, &what)?;
    let Some(Value::Array(children)) = value.get("manifests").cloned() else {
        return Ok(None);
    };
    let parsed: Vec<Descriptor> = children
        .iter()
        .map(|c| from_value::<Descriptor>(c.clone(), &what))
        .collect::<Result<_>>()?;
    let wanted = |d: &Descriptor| match &d.platform {
        Some(p) => platforms.iter().any(|w| p.satisfies(w)),
        // A nested index without a platform: kept whole.
        None => media_type::kind(&d.media_type) == Kind::Index,
    };
    let kept: HashSet<&str> = parsed
        .iter()
        .filter(|d| wanted(d))
        .map(|d| d.digest.as_str())
        .collect();
    if kept.is_empty() {
        return Err(Error::NoPlatformMatch {
            digest: descriptor.digest.clone(),
            platform: platforms
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
            available: parsed
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect(),
        });
    }
    let keep = |d: &Descriptor| {
        kept.contains(d.digest.as_str())
            || d.annotation(ATTESTATION_OF)
                .is_some_and(|of| kept.contains(of))
    };
    if parsed.iter().all(keep) {
        return Ok(None);
    }
    let children: Vec<Value> = children
        .into_iter()
        .zip(&parsed)
        .filter(|(_, d)| keep(d))
        .map(|(c, _)| c)
        .collect();
    if let Some(object) = value.as_object_mut() {
        object.insert("manifests".into(), Value::Array(children));
    }
    Ok(Some(canonical::to_vec(&value)))
}

/// What recording a transfer's entries did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Names {
    /// Names added.
    pub added: Vec<String>,
    /// Names that pointed elsewhere and were moved (forced), with where they pointed.
    pub replaced: Vec<(String, Digest)>,
    /// Names already pointing at the same digest.
    pub unchanged: Vec<String>,
    /// Untagged entries added (images and referrers).
    pub untagged: usize,
    /// Fallback-tag indexes added or merged.
    pub fallbacks: usize,
}

/// Records `entries` in `index` (see the module documentation): a name the destination gives
/// to another digest is an error unless `force`. `store` merges fallback indexes; without it
/// (a dry run, or a destination with nothing to merge with) a merge is only checked.
pub fn record(
    index: &mut IndexFile,
    entries: &[Entry],
    force: bool,
    store: Option<&dyn DocumentStore>,
    destination: &str,
) -> Result<Names> {
    let mut names = Names::default();
    for entry in entries {
        match &entry.kind {
            EntryKind::Named => {
                let Some(id) = entry.identity() else { continue };
                let same: Vec<usize> = (0..index.entries().len())
                    .filter(|&i| identity(&index.entries()[i]) == Some(id))
                    .collect();
                let digest = &entry.descriptor.digest;
                let elsewhere: Vec<Digest> = same
                    .iter()
                    .map(|&i| index.entries()[i].digest.clone())
                    .filter(|d| d != digest)
                    .collect();
                if !same.is_empty() && elsewhere.is_empty() {
                    names.unchanged.push(id.to_string());
                    continue;
                }
                if !elsewhere.is_empty() {
                    if !force {
                        return Err(Error::Conflict {
                            what: format!("the name {id:?}"),
                            reason: format!(
                                "is already in {destination} for {}, not {digest}",
                                elsewhere[0]
                            ),
                        });
                    }
                    index.remove_positions(&same.iter().copied().collect());
                    names.replaced.push((id.to_string(), elsewhere[0].clone()));
                } else {
                    names.added.push(id.to_string());
                }
                index.push_raw(entry.value.clone())?;
            }
            EntryKind::Untagged | EntryKind::Referrer => {
                let digest = &entry.descriptor.digest;
                let present = index
                    .find_digest(digest)
                    .into_iter()
                    .any(|i| identity(&index.entries()[i]).is_none());
                if !present {
                    index.push_raw(entry.value.clone())?;
                    names.untagged += 1;
                }
            }
            EntryKind::Fallback { subject, listed } => {
                let tag = fallback_tag(subject);
                let positions = index.find_name(&tag);
                if positions.is_empty() {
                    index.push_raw(entry.value.clone())?;
                    names.fallbacks += 1;
                    continue;
                }
                let same = positions.len() == 1
                    && index.entries()[positions[0]].digest == entry.descriptor.digest;
                if same {
                    continue;
                }
                let Some(store) = store else { continue };
                let merged = edit_fallback(store, index, subject, |list| {
                    let known: HashSet<String> = list
                        .iter()
                        .filter_map(|v| v.get("digest")?.as_str().map(str::to_string))
                        .collect();
                    let before = list.len();
                    list.extend(
                        listed
                            .iter()
                            .filter(|v| {
                                v.get("digest")
                                    .and_then(Value::as_str)
                                    .is_some_and(|d| !known.contains(d))
                            })
                            .cloned(),
                    );
                    list.len() != before
                })?;
                if merged {
                    names.fallbacks += 1;
                }
            }
        }
    }
    Ok(names)
}

impl Names {
    /// Whether `index.json` changed.
    pub fn changed(&self) -> bool {
        !self.added.is_empty()
            || !self.replaced.is_empty()
            || self.untagged > 0
            || self.fallbacks > 0
    }
}

/// What [`write()`] did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Written {
    pub images: Vec<Image>,
    pub referrers: usize,
    pub blobs: Placements,
    pub names: Names,
    /// Foreign layers not carried.
    pub foreign: Vec<Digest>,
    pub warnings: Vec<String>,
}

/// Writes `plan` into `destination`: names are checked first (a collision stops the transfer
/// before any blob is written), then blobs (`link` says whether they may be linked), then the
/// entries are recorded — checked again, under the destination's lock.
pub fn write(
    plan: &Plan<'_>,
    destination: &dyn Destination,
    link: Link,
    force: bool,
    progress: &dyn Progress,
) -> Result<Written> {
    let name = destination.name();
    if let Some(store) = destination.documents() {
        let mut index = store.reader().index()?;
        record(&mut index, &plan.entries, force, None, &name)?;
    }
    let blobs = destination.write_blobs(plan.source(), &plan.blobs, link, progress)?;
    let mut names = Names::default();
    let store = destination.documents();
    destination.update_index(&mut |index| {
        names = record(index, &plan.entries, force, store, &name)?;
        Ok(names.changed())
    })?;
    Ok(Written {
        images: plan.images(),
        referrers: plan.referrers,
        blobs,
        names,
        foreign: plan.foreign.clone(),
        warnings: plan.warnings.clone(),
    })
}
