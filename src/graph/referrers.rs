//! Referrers inside a layout: the one module that knows the three conventions of PRODUCT.md
//! §"Referrers inside a layout", reads them all and writes them.
//!
//! - **(a) index**: an untagged `index.json` entry whose manifest has a `subject` (oras). The
//!   entry carries the referrer's `artifactType` and annotations.
//! - **(b) tag**: the distribution-spec fallback tag, an index named `sha256-<hex of subject>`
//!   listing the referrers' descriptors (regctl).
//! - **(c) scan**: only the blob, referenced from nowhere (cosign); found by reading every
//!   document-sized blob of `blobs/`, and only on request.
//!
//! The truth is always the referrer's own manifest: a descriptor that bookkeeping lists is
//! counted under a subject only if the manifest behind it names that subject. [`Discovery`]
//! reads index.json, the subject's fallback index and the referrers' manifests — never all of
//! `blobs/` unless asked to scan.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::graph::resolve::fallback_tag_subject;
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self, OCI_INDEX};
use crate::spec::document::{canonical, parse_json, Annotations, Descriptor, Document, REF_NAME};
use crate::store::layout::{
    blob_file_digest, FileKind, IndexFile, LayoutRead, LayoutWriter, MAX_DOCUMENT_SIZE,
};

/// Where a referrer was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An `index.json` entry (untagged, or named when a whole layout is read).
    Index,
    /// The subject's fallback-tag index `sha256-<hex>`.
    Tag,
    /// A blob found by scanning `blobs/`.
    Scan,
}

impl Source {
    /// `index`, `tag` or `scan`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Index => "index",
            Source::Tag => "tag",
            Source::Scan => "scan",
        }
    }
}

/// How a layout records its referrers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Untagged `index.json` entries only (convention a).
    Index,
    /// Fallback-tag indexes only (convention b).
    Tag,
    /// Both, so that every tool finds them (ocikit's default).
    Both,
}

impl Format {
    fn index(self) -> bool {
        matches!(self, Format::Index | Format::Both)
    }

    fn tag(self) -> bool {
        matches!(self, Format::Tag | Format::Both)
    }
}

/// The fallback tag of a subject: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.encoded())
}

/// What a manifest-like blob says about itself.
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    pub(crate) media_type: String,
    size: u64,
    artifact_type: Option<String>,
    annotations: Option<Annotations>,
    pub(crate) subject: Option<Digest>,
}

/// Reads the document behind `descriptor` and what a referrers listing needs from it.
fn read_facts(layout: &dyn LayoutRead, descriptor: &Descriptor) -> Result<Facts> {
    let bytes = layout.read_document(descriptor)?;
    facts_of(&bytes, Some(&descriptor.media_type), &descriptor.digest)
}

fn facts_of(bytes: &[u8], media_type: Option<&str>, digest: &Digest) -> Result<Facts> {
    let document = Document::parse(bytes, media_type, &format!("manifest {digest}"))?;
    let own = match &document {
        Document::Manifest(m) => m.media_type.clone(),
        Document::Index(i) => i.media_type.clone(),
    };
    let media_type = media_type
        .filter(|m| media_type::is_manifest_like(m))
        .map(str::to_string)
        .or(own)
        .unwrap_or_else(|| match document {
            Document::Index(_) => OCI_INDEX.to_string(),
            Document::Manifest(_) => media_type::OCI_MANIFEST.to_string(),
        });
    Ok(Facts {
        media_type,
        size: bytes.len() as u64,
        artifact_type: document.effective_artifact_type().map(str::to_string),
        annotations: document.annotations().cloned(),
        subject: document.subject().map(|s| s.digest.clone()),
    })
}

/// One referrer of a subject, merged from every convention that records it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    /// The manifest's `artifactType`, or else its config's media type (distribution-spec).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub size: u64,
    pub annotations: Annotations,
    /// The conventions it was found through.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub found_in: BTreeSet<Source>,
    /// Why its manifest could not be read (it is then described by the bookkeeping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Referrer {
    fn from_facts(digest: &Digest, facts: &Facts, source: Source) -> Referrer {
        Referrer {
            digest: digest.clone(),
            media_type: facts.media_type.clone(),
            artifact_type: facts.artifact_type.clone(),
            size: facts.size,
            annotations: facts.annotations.clone().unwrap_or_default(),
            found_in: [source].into(),
            problem: None,
        }
    }

    /// The descriptor bookkeeping records for it: media type, digest, size, `artifactType`
    /// and the manifest's annotations.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
            artifact_type: self.artifact_type.clone(),
            ..Descriptor::new(self.media_type.clone(), self.digest.clone(), self.size)
        }
    }
}

/// Which referrers a listing keeps: all conditions must hold.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this artifact type.
    pub artifact_type: Option<String>,
    /// Only referrers carrying each of these annotations with exactly this value.
    pub annotations: Vec<(String, String)>,
}

impl Filter {
    /// Whether `referrer` passes the filter.
    pub fn matches(&self, referrer: &Referrer) -> bool {
        self.artifact_type
            .as_ref()
            .is_none_or(|t| referrer.artifact_type.as_ref() == Some(t))
            && self
                .annotations
                .iter()
                .all(|(k, v)| referrer.annotations.get(k) == Some(v))
    }
}

/// A node of a referrers tree: the subject at the root, its referrers below it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// What the node is (for the root: the subject, found in no convention).
    #[serde(flatten)]
    pub item: Referrer,
    /// True when this referrer is also one of its own ancestors here (not expanded again).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cycle: bool,
    /// Its referrers; absent where the listing stopped (`--depth`, a cycle, or no `--tree`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers: Option<Vec<Node>>,
}

impl Node {
    /// The root of a tree: the subject as it was resolved.
    pub fn root(descriptor: &Descriptor, document: &Document) -> Node {
        Node::from(Referrer {
            digest: descriptor.digest.clone(),
            media_type: descriptor.media_type.clone(),
            artifact_type: document.listed_artifact_type().map(str::to_string),
            size: descriptor.size,
            annotations: document.annotations().cloned().unwrap_or_default(),
            found_in: BTreeSet::new(),
            problem: None,
        })
    }

    /// The root of a tree whose subject is not in the layout (referrers may outlive it).
    pub fn absent(digest: &Digest) -> Node {
        Node::from(Referrer {
            digest: digest.clone(),
            media_type: String::new(),
            artifact_type: None,
            size: 0,
            annotations: Annotations::new(),
            found_in: BTreeSet::new(),
            problem: Some("the subject is not in the layout".into()),
        })
    }
}

impl From<Referrer> for Node {
    fn from(item: Referrer) -> Node {
        Node {
            item,
            cycle: false,
            referrers: None,
        }
    }
}

/// What reading one subject's bookkeeping found.
#[derive(Default)]
struct Collected {
    referrers: Vec<Referrer>,
    /// Manifests a fallback index lists under this subject whose own subject is another one.
    misfiled: Vec<(Digest, Referrer)>,
}

/// The referrers of a layout, read from every convention, queried subject by subject.
pub struct Discovery<'a> {
    layout: &'a dyn LayoutRead,
    index: IndexFile,
    /// Subject → referrers found through index.json entries, in entry order.
    from_index: HashMap<Digest, Vec<Digest>>,
    /// Subject → positions of its fallback-tag entries in index.json.
    tags: HashMap<Digest, Vec<usize>>,
    /// Subject → referrers found by scanning blobs/, by digest.
    from_scan: HashMap<Digest, Vec<Digest>>,
    facts: Mutex<HashMap<Digest, std::result::Result<Facts, String>>>,
    problems: Mutex<BTreeSet<String>>,
    warnings: Mutex<BTreeSet<String>>,
}

/// What [`Discovery`] reads besides index.json and fallback indexes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope {
    /// Also read named entries' manifests (a named manifest with a `subject` is a referrer too).
    /// Off for listings, which then read only bookkeeping and referrers.
    pub named: bool,
    /// Scan every document-sized blob of `blobs/` for manifests with a `subject` (convention c).
    pub scan: bool,
}

impl<'a> Discovery<'a> {
    /// Reads `layout`'s index.json and the manifests of its untagged entries (in parallel).
    pub fn new(layout: &'a dyn LayoutRead, scope: Scope) -> Result<Discovery<'a>> {
        let index = layout.index()?;
        Discovery::with_index(layout, index, scope)
    }

    /// The same, with index.json already read (inside the index lock, say).
    pub fn with_index(
        layout: &'a dyn LayoutRead,
        index: IndexFile,
        scope: Scope,
    ) -> Result<Discovery<'a>> {
        let mut discovery = Discovery {
            layout,
            index,
            from_index: HashMap::new(),
            tags: HashMap::new(),
            from_scan: HashMap::new(),
            facts: Mutex::new(HashMap::new()),
            problems: Mutex::new(BTreeSet::new()),
            warnings: Mutex::new(BTreeSet::new()),
        };
        let mut candidates: Vec<&Descriptor> = Vec::new();
        let mut seen = HashSet::new();
        for (i, entry) in discovery.index.entries().iter().enumerate() {
            if let Some(name) = entry.ref_name() {
                if let Some(subject) = fallback_tag_subject(name) {
                    discovery.tags.entry(subject).or_default().push(i);
                    continue;
                }
                if !scope.named {
                    continue;
                }
            }
            if media_type::is_manifest_like(&entry.media_type) && seen.insert(&entry.digest) {
                candidates.push(entry);
            }
        }
        let read: Vec<(Digest, std::result::Result<Facts, String>)> = candidates
            .par_iter()
            .map(|d| {
                let facts = read_facts(layout, d).map_err(|e| e.to_string());
                (d.digest.clone(), facts)
            })
            .collect();
        let mut from_index: HashMap<Digest, Vec<Digest>> = HashMap::new();
        for (digest, facts) in &read {
            match facts {
                Ok(f) => {
                    if let Some(subject) = &f.subject {
                        from_index
                            .entry(subject.clone())
                            .or_default()
                            .push(digest.clone());
                    }
                }
                Err(e) => discovery.problem(format!("index.json entry {digest}: {e}")),
            }
        }
        discovery.from_index = from_index;
        if let Ok(mut cache) = discovery.facts.lock() {
            cache.extend(read);
        }
        if scope.scan {
            discovery.scan()?;
        }
        Ok(discovery)
    }

    /// The index.json that was read.
    pub fn index(&self) -> &IndexFile {
        &self.index
    }

    /// What could not be read; the listings may be incomplete where these say so.
    pub fn problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Bookkeeping that disagrees with the manifests it lists (which the listings ignore).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|w| w.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn problem(&self, text: String) {
        if let Ok(mut problems) = self.problems.lock() {
            problems.insert(text);
        }
    }

    fn warning(&self, text: String) {
        if let Ok(mut warnings) = self.warnings.lock() {
            warnings.insert(text);
        }
    }

    /// Every subject some convention records referrers for.
    pub fn subjects(&self) -> BTreeSet<Digest> {
        self.from_index
            .keys()
            .chain(self.tags.keys())
            .chain(self.from_scan.keys())
            .cloned()
            .collect()
    }

    /// Whether entry `i` of index.json is referrer bookkeeping rather than an image: a
    /// fallback-tag index, or an untagged entry whose manifest has a subject.
    pub fn is_bookkeeping(&self, i: usize) -> bool {
        let Some(entry) = self.index.entries().get(i) else {
            return false;
        };
        match entry.ref_name() {
            Some(name) => fallback_tag_subject(name).is_some(),
            None => self.cached_subject(&entry.digest).is_some(),
        }
    }

    fn cached_subject(&self, digest: &Digest) -> Option<Digest> {
        let cache = self.facts.lock().ok()?;
        cache.get(digest)?.as_ref().ok()?.subject.clone()
    }

    /// The referrers of `subject`, merged from every convention read, each once, in the order
    /// index.json entries list them, then the fallback index's order, then by digest.
    pub fn referrers(&self, subject: &Digest) -> Vec<Referrer> {
        let collected = self.collect(subject);
        for (real, referrer) in &collected.misfiled {
            self.warning(format!(
                "the fallback index {} lists {}, whose subject is {real}; it is not counted there (`ocikit referrers sync` fixes the bookkeeping)",
                fallback_tag(subject),
                referrer.digest
            ));
        }
        collected.referrers
    }

    fn collect(&self, subject: &Digest) -> Collected {
        let mut out = Collected::default();
        let mut position: HashMap<Digest, usize> = HashMap::new();
        let mut add = |out: &mut Collected, referrer: Referrer| match position.get(&referrer.digest)
        {
            Some(&i) => out.referrers[i].found_in.extend(referrer.found_in),
            None => {
                position.insert(referrer.digest.clone(), out.referrers.len());
                out.referrers.push(referrer);
            }
        };
        for digest in self.from_index.get(subject).into_iter().flatten() {
            if let Some(Ok(facts)) = self.cached(digest) {
                add(
                    &mut out,
                    Referrer::from_facts(digest, &facts, Source::Index),
                );
            }
        }
        for &i in self.tags.get(subject).into_iter().flatten() {
            let entry = &self.index.entries()[i];
            let listed = match fallback_list(self.layout, entry) {
                Ok(listed) => listed,
                Err(e) => {
                    self.problem(format!(
                        "fallback index {} ({}): {e}",
                        fallback_tag(subject),
                        entry.digest
                    ));
                    continue;
                }
            };
            for descriptor in listed {
                match self.facts_for(&descriptor) {
                    Ok(facts) if facts.subject.as_ref() == Some(subject) => {
                        add(
                            &mut out,
                            Referrer::from_facts(&descriptor.digest, &facts, Source::Tag),
                        );
                    }
                    Ok(facts) => {
                        if let Some(real) = facts.subject.clone() {
                            let referrer =
                                Referrer::from_facts(&descriptor.digest, &facts, Source::Tag);
                            out.misfiled.push((real, referrer));
                        } else {
                            self.warning(format!(
                                "the fallback index {} lists {}, which has no subject; it is not counted",
                                fallback_tag(subject),
                                descriptor.digest
                            ));
                        }
                    }
                    Err(problem) => add(
                        &mut out,
                        Referrer {
                            digest: descriptor.digest.clone(),
                            media_type: descriptor.media_type.clone(),
                            artifact_type: descriptor.artifact_type.clone(),
                            size: descriptor.size,
                            annotations: descriptor.annotations.clone().unwrap_or_default(),
                            found_in: [Source::Tag].into(),
                            problem: Some(problem),
                        },
                    ),
                }
            }
        }
        for digest in self.from_scan.get(subject).into_iter().flatten() {
            if let Some(Ok(facts)) = self.cached(digest) {
                add(&mut out, Referrer::from_facts(digest, &facts, Source::Scan));
            }
        }
        out
    }

    /// The subject the manifest `digest` names, read from its blob if no bookkeeping did.
    pub fn subject_of(&self, digest: &Digest) -> Option<Digest> {
        if let Some(known) = self.cached(digest) {
            return known.ok()?.subject;
        }
        let bytes = self.layout.read_blob_limited(digest, None).ok()?;
        let facts = facts_of(&bytes, None, digest).ok()?;
        if let Ok(mut cache) = self.facts.lock() {
            cache.insert(digest.clone(), Ok(facts.clone()));
        }
        facts.subject
    }

    fn cached(&self, digest: &Digest) -> Option<std::result::Result<Facts, String>> {
        self.facts.lock().ok()?.get(digest).cloned()
    }

    fn facts_for(&self, descriptor: &Descriptor) -> std::result::Result<Facts, String> {
        if let Some(known) = self.cached(&descriptor.digest) {
            return known;
        }
        let facts = read_facts(self.layout, descriptor).map_err(|e| e.to_string());
        if let Ok(mut cache) = self.facts.lock() {
            cache.insert(descriptor.digest.clone(), facts.clone());
        }
        facts
    }

    /// The referrers tree below `root`: `filter` applies at every level, `depth` (≥ 1) stops
    /// the descent (`None`: all the way down). A referrer that is already an ancestor is
    /// marked as a cycle and not expanded again.
    pub fn tree(&self, mut root: Node, filter: &Filter, depth: Option<usize>) -> Node {
        let mut path = vec![root.item.digest.clone()];
        root.referrers = Some(self.expand(&root.item.digest, filter, depth, &mut path));
        root
    }

    fn expand(
        &self,
        subject: &Digest,
        filter: &Filter,
        depth: Option<usize>,
        path: &mut Vec<Digest>,
    ) -> Vec<Node> {
        let below = depth.map(|d| d.saturating_sub(1));
        self.referrers(subject)
            .into_iter()
            .filter(|r| filter.matches(r))
            .map(|referrer| {
                let mut node = Node::from(referrer);
                if path.contains(&node.item.digest) {
                    node.cycle = true;
                } else if below != Some(0) {
                    path.push(node.item.digest.clone());
                    node.referrers = Some(self.expand(&node.item.digest, filter, below, path));
                    path.pop();
                }
                node
            })
            .collect()
    }

    /// Reads every document-sized blob of `blobs/` that looks like JSON, keeping the
    /// manifests that have a subject.
    fn scan(&mut self) -> Result<()> {
        let mut blobs: Vec<(Digest, u64)> = Vec::new();
        for file in self.layout.files()? {
            let Some(Ok(digest)) = blob_file_digest(&file.path) else {
                continue;
            };
            match file.kind {
                FileKind::Regular if file.len <= MAX_DOCUMENT_SIZE => {
                    blobs.push((digest, file.len))
                }
                FileKind::Regular | FileKind::Directory => {}
                FileKind::Symlink | FileKind::Other => self.problem(format!(
                    "scan: {} is not a regular file; it was not read",
                    file.path
                )),
            }
        }
        let known: HashSet<Digest> = self
            .facts
            .lock()
            .map(|f| f.keys().cloned().collect())
            .unwrap_or_default();
        let layout = self.layout;
        let found: Vec<(Digest, std::result::Result<Option<Facts>, String>)> = blobs
            .par_iter()
            .filter(|(d, _)| !known.contains(d))
            .map(|(digest, len)| (digest.clone(), scan_blob(layout, digest, *len)))
            .collect();
        let mut from_scan: BTreeMap<Digest, Vec<Digest>> = BTreeMap::new();
        let mut cache = self
            .facts
            .lock()
            .map_err(|_| Error::Invalid("a scan thread panicked".into()))?;
        for (digest, outcome) in found {
            match outcome {
                Ok(Some(facts)) => {
                    if let Some(subject) = &facts.subject {
                        from_scan
                            .entry(subject.clone())
                            .or_default()
                            .push(digest.clone());
                    }
                    cache.insert(digest, Ok(facts));
                }
                Ok(None) => {}
                Err(e) => {
                    if let Ok(mut problems) = self.problems.lock() {
                        problems.insert(format!("scan: blob {digest}: {e}"));
                    }
                }
            }
        }
        // Blobs already read through index.json count as found by the scan too.
        for (digest, facts) in cache.iter() {
            if let Ok(Facts {
                subject: Some(subject),
                ..
            }) = facts
            {
                let list = from_scan.entry(subject.clone()).or_default();
                if !list.contains(digest) {
                    list.push(digest.clone());
                }
            }
        }
        drop(cache);
        self.from_scan = from_scan
            .into_iter()
            .map(|(subject, mut list)| {
                list.sort();
                (subject, list)
            })
            .collect();
        Ok(())
    }
}

/// A scanned blob: `None` unless it is a JSON manifest or index. Only blobs whose first
/// bytes look like JSON (`{` after any whitespace) are read whole.
pub(crate) fn scan_blob(
    layout: &dyn LayoutRead,
    digest: &Digest,
    len: u64,
) -> std::result::Result<Option<Facts>, String> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut raw = layout.open_blob_raw(digest).map_err(|e| e.to_string())?;
    let n = raw.read(&mut head).map_err(|e| e.to_string())?;
    drop(raw);
    if crate::codec::sniff::sniff(&head[..n]) != crate::codec::sniff::Format::Json {
        return Ok(None);
    }
    let bytes = layout
        .read_blob_limited(digest, Some(len))
        .map_err(|e| e.to_string())?;
    Ok(facts_of(&bytes, None, digest).ok())
}

/// The descriptors a fallback-tag index lists.
fn fallback_list(layout: &dyn LayoutRead, entry: &Descriptor) -> Result<Vec<Descriptor>> {
    let bytes = layout.read_document(entry)?;
    match Document::parse(
        &bytes,
        Some(&entry.media_type),
        &format!("fallback index {}", entry.digest),
    )? {
        Document::Index(index) => Ok(index.manifests),
        Document::Manifest(_) => Err(Error::UnexpectedMediaType {
            what: format!("fallback index {}", entry.digest),
            media_type: entry.media_type.clone(),
            expected: "but a fallback tag must name an index".into(),
        }),
    }
}

// ---- writing bookkeeping ----

/// `value` with its object keys in canonical (sorted) order, as the documents ocikit writes.
pub(crate) fn canonical_value(value: &Value) -> Result<Value> {
    serde_json::from_slice(&canonical::to_vec(value))
        .map_err(|e| Error::Invalid(format!("cannot reorder a JSON value: {e}")))
}

/// A descriptor as JSON, keys sorted.
pub(crate) fn descriptor_value(descriptor: &Descriptor) -> Result<Value> {
    let value = serde_json::to_value(descriptor)
        .map_err(|e| Error::Invalid(format!("cannot serialize a descriptor: {e}")))?;
    canonical_value(&value)
}

/// Records `referrer` (a descriptor with `artifactType` and annotations) as a referrer of
/// `subject` in `index`, in the conventions `format` names: an untagged entry, and the
/// fallback index merged with what it already lists. Returns whether index.json changed.
pub fn record(
    writer: &LayoutWriter<'_>,
    index: &mut IndexFile,
    subject: &Digest,
    referrer: &Descriptor,
    format: Format,
) -> Result<bool> {
    Pending::read(writer.layout(), index, subject, format)?.record(writer, index, referrer)
}

/// A subject's bookkeeping, read before a referrer is recorded, so that a fallback index that
/// cannot be read is reported before any blob is written.
pub struct Pending {
    format: Format,
    fallback: Option<Fallback>,
}

impl Pending {
    /// Reads what recording a referrer of `subject` in `format` will change.
    pub fn read(
        layout: &dyn LayoutRead,
        index: &IndexFile,
        subject: &Digest,
        format: Format,
    ) -> Result<Pending> {
        let fallback = if format.tag() {
            Some(Fallback::read(layout, index, subject)?)
        } else {
            None
        };
        Ok(Pending { format, fallback })
    }

    /// Records `referrer`; returns whether index.json changed.
    pub fn record(
        self,
        writer: &LayoutWriter<'_>,
        index: &mut IndexFile,
        referrer: &Descriptor,
    ) -> Result<bool> {
        let mut changed = false;
        if self.format.index() && !has_untagged(index, &referrer.digest) {
            index.push_raw(descriptor_value(referrer)?)?;
            changed = true;
        }
        if let Some(fallback) = self.fallback {
            changed |= fallback.append(writer, index, referrer)?;
        }
        Ok(changed)
    }
}

/// Whether `index` has an untagged entry for `digest`.
fn has_untagged(index: &IndexFile, digest: &Digest) -> bool {
    index
        .entries()
        .iter()
        .any(|d| &d.digest == digest && d.ref_name().is_none())
}

fn listed_digest(value: &Value) -> Option<&str> {
    value.get("digest").and_then(Value::as_str)
}

/// A subject's fallback-tag index as read: its entries in index.json and its content.
/// Several entries of that tag are merged into one.
struct Fallback {
    name: String,
    positions: Vec<usize>,
    content: Content,
}

/// What a fallback index holds.
enum Content {
    /// The common case, left as bytes: one index in canonical JSON, whose `manifests` array
    /// ends at `end` (the offset of its `]`). A descriptor is appended by splicing, which keeps
    /// the document canonical and costs no parse, however long the list.
    Canonical { bytes: Vec<u8>, end: usize },
    /// Anything else, as raw JSON.
    Raw(RawFallback),
}

/// A fallback index as raw JSON: the document's other fields and the listed descriptors (so
/// what other tools put there survives).
#[derive(Default)]
struct RawFallback {
    base: Option<Map<String, Value>>,
    list: Vec<Value>,
}

impl RawFallback {
    /// Adds the document `bytes` (named `what` in errors) to the merge: its fields, unless an
    /// earlier document gave them, and the descriptors not listed yet.
    fn merge(&mut self, bytes: &[u8], what: String, seen: &mut HashSet<String>) -> Result<()> {
        let value: Value = parse_json(bytes, &what)?;
        let Value::Object(mut object) = value else {
            return Err(Error::Json {
                file: what,
                pointer: String::new(),
                message: "the document is not a JSON object".into(),
            });
        };
        let Some(Value::Array(manifests)) = object.remove("manifests") else {
            return Err(Error::Json {
                file: what,
                pointer: "/manifests".into(),
                message: "manifests must be an array".into(),
            });
        };
        for item in manifests {
            let key = listed_digest(&item).map(str::to_string);
            if key.is_none_or(|k| seen.insert(k)) {
                self.list.push(item);
            }
        }
        self.base.get_or_insert(object);
        Ok(())
    }
}

impl Fallback {
    fn read(layout: &dyn LayoutRead, index: &IndexFile, subject: &Digest) -> Result<Fallback> {
        let name = fallback_tag(subject);
        let positions = index.find_name(&name);
        let what = |i: usize| format!("fallback index {name} ({})", index.entries()[i].digest);
        if let [only] = positions[..] {
            let bytes = layout.read_document(&index.entries()[only])?;
            let content = match canonical_array_end(&bytes, "manifests") {
                Some(end) => Content::Canonical { bytes, end },
                None => {
                    let mut raw = RawFallback::default();
                    raw.merge(&bytes, what(only), &mut HashSet::new())?;
                    Content::Raw(raw)
                }
            };
            return Ok(Fallback {
                name,
                positions,
                content,
            });
        }
        let mut raw = RawFallback::default();
        let mut seen = HashSet::new();
        for &i in &positions {
            let bytes = layout.read_document(&index.entries()[i])?;
            raw.merge(&bytes, what(i), &mut seen)?;
        }
        Ok(Fallback {
            name,
            positions,
            content: Content::Raw(raw),
        })
    }

    /// Lists `referrer` unless it is listed already; returns whether index.json changed.
    fn append(
        self,
        writer: &LayoutWriter<'_>,
        index: &mut IndexFile,
        referrer: &Descriptor,
    ) -> Result<bool> {
        let entry = descriptor_value(referrer)?;
        if let Content::Canonical { bytes, end } = &self.content {
            // In canonical JSON this text appears where the descriptor is listed (or, very
            // rarely, as an annotation: then the parse below decides).
            let needle = format!("\"digest\":\"{}\"", referrer.digest);
            if !contains(bytes, needle.as_bytes()) {
                use std::io::Read as _;
                let item = canonical::to_vec(&entry);
                let comma: &[u8] = if bytes[*end - 1] == b'[' { b"" } else { b"," };
                let mut spliced = bytes[..*end]
                    .chain(comma)
                    .chain(&item[..])
                    .chain(&bytes[*end..]);
                let media_type = media_type_of(bytes);
                let written = writer.write_blob(&mut spliced, None)?;
                replace_entry(&self.name, &self.positions, index, &media_type, written)?;
                return Ok(true);
            }
        }
        self.edit(writer, index, |list| {
            if list
                .iter()
                .any(|v| listed_digest(v) == Some(referrer.digest.as_str()))
            {
                false
            } else {
                list.push(entry);
                true
            }
        })
    }

    /// Applies `edit` to the list and records the result: a new index (canonical JSON) under
    /// the tag, in the place of the old entry; an empty list drops the tag. Returns whether
    /// index.json changed.
    fn edit(
        self,
        writer: &LayoutWriter<'_>,
        index: &mut IndexFile,
        edit: impl FnOnce(&mut Vec<Value>) -> bool,
    ) -> Result<bool> {
        let RawFallback { base, mut list } = match self.content {
            Content::Raw(raw) => raw,
            Content::Canonical { bytes, .. } => {
                let mut raw = RawFallback::default();
                let what = format!("fallback index {}", self.name);
                raw.merge(&bytes, what, &mut HashSet::new())?;
                raw
            }
        };
        let changed = edit(&mut list);
        if !changed && self.positions.len() <= 1 {
            return Ok(false);
        }
        if list.is_empty() {
            let name = self.name.as_str();
            let removed = index.remove_where(|d| d.ref_name() == Some(name));
            return Ok(removed > 0);
        }
        let mut object = base.unwrap_or_default();
        object
            .entry("schemaVersion")
            .or_insert_with(|| Value::from(2));
        object
            .entry("mediaType")
            .or_insert_with(|| Value::from(OCI_INDEX));
        object.insert("manifests".into(), Value::Array(list));
        let media_type = object
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(OCI_INDEX)
            .to_string();
        let written = writer.write_blob_bytes(&canonical::to_vec(&Value::Object(object)))?;
        replace_entry(&self.name, &self.positions, index, &media_type, written)?;
        Ok(true)
    }
}

/// Whether `haystack` contains `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == first)
        .any(|(i, _)| haystack[i + 1..].starts_with(rest))
}

/// The top-level `mediaType` of an index (`OCI_INDEX` when it has none).
fn media_type_of(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MediaType {
        media_type: Option<String>,
    }
    serde_json::from_slice::<MediaType>(bytes)
        .ok()
        .and_then(|m| m.media_type)
        .unwrap_or_else(|| OCI_INDEX.to_string())
}

/// Points the (first) entry of fallback tag `name` (at `positions`) at `written`, or adds one.
fn replace_entry(
    name: &str,
    positions: &[usize],
    index: &mut IndexFile,
    media_type: &str,
    written: crate::store::layout::WrittenBlob,
) -> Result<()> {
    match positions.first() {
        Some(&first) => {
            let mut entry = index.raw_entry(first).unwrap_or(Value::Null);
            if let Some(fields) = entry.as_object_mut() {
                fields.insert("mediaType".into(), Value::from(media_type));
                fields.insert("digest".into(), Value::from(written.digest.as_str()));
                fields.insert("size".into(), Value::from(written.size));
            }
            index.replace_raw(first, entry)?;
            let mut kept_first = false;
            index.remove_where(|d| {
                d.ref_name() == Some(name) && std::mem::replace(&mut kept_first, true)
            });
        }
        None => {
            let mut annotations = Annotations::new();
            annotations.insert(REF_NAME.to_string(), name.to_string());
            index.push_raw(descriptor_value(&Descriptor {
                annotations: Some(annotations),
                ..Descriptor::new(media_type, written.digest, written.size)
            })?)?;
        }
    }
    Ok(())
}

/// Where the array that the top-level key `key` holds ends (the offset of its `]`), provided
/// `bytes` are exactly what [`canonical::to_vec`] writes for the document they hold. `None`
/// for anything else — including canonical JSON this check is too strict for (floats, keys
/// with escapes, very deep nesting) — and the caller then parses the document.
fn canonical_array_end(bytes: &[u8], key: &str) -> Option<usize> {
    std::str::from_utf8(bytes).ok()?;
    let mut scanner = Scanner {
        bytes,
        pos: 0,
        key: key.as_bytes(),
        found: None,
    };
    if bytes.first() != Some(&b'{') {
        return None;
    }
    scanner.value(0, false)?;
    (scanner.pos == bytes.len()).then_some(())?;
    scanner.found
}

/// A validating pass over canonical JSON (see [`canonical_array_end`]).
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    key: &'a [u8],
    found: Option<usize>,
}

impl Scanner<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// One value at nesting `depth`; `target` marks the array to report.
    fn value(&mut self, depth: usize, target: bool) -> Option<()> {
        if depth > 64 {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => {
                self.pos += 1;
                if self.peek()? != b']' {
                    loop {
                        self.value(depth + 1, false)?;
                        if self.peek()? == b']' {
                            break;
                        }
                        (self.next()? == b',').then_some(())?;
                    }
                }
                if target {
                    self.found = Some(self.pos);
                }
                self.pos += 1;
                Some(())
            }
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    /// An object whose keys are unescaped and strictly increasing (so sorted, no duplicates).
    fn object(&mut self, depth: usize) -> Option<()> {
        self.pos += 1;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        let mut previous: Option<(usize, usize)> = None;
        loop {
            (self.peek()? == b'"').then_some(())?;
            let (start, end, escaped) = self.string()?;
            if escaped {
                return None;
            }
            if let Some((ps, pe)) = previous {
                (self.bytes[ps..pe] < self.bytes[start..end]).then_some(())?;
            }
            previous = Some((start, end));
            (self.next()? == b':').then_some(())?;
            let target = depth == 0 && &self.bytes[start..end] == self.key;
            self.value(depth + 1, target)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string escaped as serde_json escapes: `\"`, `\\`, `\b \f \n \r \t`, and `\u00xx`
    /// (lowercase) for other control characters; nothing else. Returns the span of its
    /// content and whether it has escapes.
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.next()? {
                b'"' => return Some((start, self.pos - 1, escaped)),
                b'\\' => {
                    escaped = true;
                    match self.next()? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.bytes.get(self.pos..self.pos + 4)?;
                            self.pos += 4;
                            let digit = |b: u8| match b {
                                b'0'..=b'9' => Some(b - b'0'),
                                b'a'..=b'f' => Some(b - b'a' + 10),
                                _ => None,
                            };
                            (hex[0] == b'0' && hex[1] == b'0').then_some(())?;
                            let code = digit(hex[2])? * 16 + digit(hex[3])?;
                            let short = matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d);
                            (code < 0x20 && !short).then_some(())?;
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// An integer as serde_json writes it (no `-0`, no leading zeros, no fraction or
    /// exponent), short enough to be a 64-bit integer whatever its sign.
    fn integer(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.pos += 1;
            matches!(self.peek()?, b'1'..=b'9').then_some(())?;
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.bytes[start..self.pos];
        let well_formed =
            !digits.is_empty() && digits.len() <= 18 && (digits[0] != b'0' || digits.len() == 1);
        let no_fraction = !matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        (well_formed && no_fraction).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes[self.pos..].starts_with(word).then_some(())?;
        self.pos += word.len();
        Some(())
    }
}

/// Applies `edit` to the list of descriptors of `subject`'s fallback index (raw JSON) and
/// records the result in place of the old entry (see `Fallback`); an empty list drops the
/// tag. Returns whether index.json changed.
pub fn edit_fallback(
    writer: &LayoutWriter<'_>,
    index: &mut IndexFile,
    subject: &Digest,
    edit: impl FnOnce(&mut Vec<Value>) -> bool,
) -> Result<bool> {
    Fallback::read(writer.layout(), index, subject)?.edit(writer, index, edit)
}

/// Removes `referrer` from `subject`'s fallback index (dropping the tag when nothing is left).
pub fn unlist(
    writer: &LayoutWriter<'_>,
    index: &mut IndexFile,
    subject: &Digest,
    referrer: &Digest,
) -> Result<bool> {
    if index.find_name(&fallback_tag(subject)).is_empty() {
        return Ok(false);
    }
    edit_fallback(writer, index, subject, |list| {
        let before = list.len();
        list.retain(|v| listed_digest(v) != Some(referrer.as_str()));
        list.len() != before
    })
}

// ---- sync ----

/// What `sync` changed.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// How many referrers the layout has (each once).
    pub referrers: usize,
    /// Untagged entries added, by referrer digest.
    pub added_entries: Vec<Digest>,
    /// Untagged entries removed, by referrer digest.
    pub removed_entries: Vec<Digest>,
    /// Fallback tags written (new, or with a changed list).
    pub written_tags: Vec<String>,
    /// Fallback tags dropped (stale, empty, or not wanted in this format).
    pub removed_tags: Vec<String>,
    /// What could not be read; such manifests were left out of the truth.
    pub problems: Vec<String>,
}

/// Rewrites a layout's referrer bookkeeping to `format`, from the truth: the manifests with a
/// `subject` found through index.json (named or not), the fallback indexes and, with `scan`,
/// `blobs/`. Adds missing entries, removes stale ones and drops fallback indexes that list
/// nothing. Running it twice changes nothing the second time.
pub fn sync(
    layout: &crate::store::layout::Layout,
    format: Format,
    scan: bool,
) -> Result<SyncReport> {
    let writer = layout.writer()?;
    writer.update_index(|index| {
        let scope = Scope { named: true, scan };
        let discovery = Discovery::with_index(layout, index.clone(), scope)?;
        // The truth: subject → its referrers, each under the subject its manifest names.
        let mut truth: BTreeMap<Digest, Vec<Referrer>> = BTreeMap::new();
        let mut seen: HashSet<Digest> = HashSet::new();
        for subject in discovery.subjects() {
            let collected = discovery.collect(&subject);
            let misfiled = collected.misfiled.into_iter();
            let own = collected
                .referrers
                .into_iter()
                .map(|r| (subject.clone(), r));
            for (subject, referrer) in own.chain(misfiled) {
                if referrer.problem.is_some() || !seen.insert(referrer.digest.clone()) {
                    continue; // a listing without a readable manifest is stale
                }
                truth.entry(subject).or_default().push(referrer);
            }
        }
        let mut report = SyncReport {
            referrers: seen.len(),
            problems: discovery.problems(),
            ..SyncReport::default()
        };
        let mut changed = false;

        // (a) untagged entries.
        if format.index() {
            for referrer in truth.values().flatten() {
                if !has_untagged(index, &referrer.digest) {
                    index.push_raw(descriptor_value(&referrer.descriptor())?)?;
                    report.added_entries.push(referrer.digest.clone());
                }
            }
        } else {
            let removed: Vec<Digest> = index
                .entries()
                .iter()
                .enumerate()
                .filter(|(i, d)| d.ref_name().is_none() && discovery.is_bookkeeping(*i))
                .map(|(_, d)| d.digest.clone())
                .collect();
            index.remove_where(|d| d.ref_name().is_none() && removed.contains(&d.digest));
            report.removed_entries = removed;
        }
        changed |= !report.added_entries.is_empty() || !report.removed_entries.is_empty();

        // (b) fallback indexes.
        let tagged: BTreeSet<Digest> = index
            .entries()
            .iter()
            .filter_map(|d| d.ref_name().and_then(fallback_tag_subject))
            .collect();
        for subject in tagged
            .iter()
            .filter(|s| !format.tag() || !truth.contains_key(*s))
        {
            let name = fallback_tag(subject);
            index.remove_where(|d| d.ref_name() == Some(name.as_str()));
            report.removed_tags.push(name);
            changed = true;
        }
        if format.tag() {
            for (subject, referrers) in &truth {
                let wanted: Vec<&Referrer> = referrers.iter().collect();
                let mut values = Vec::with_capacity(wanted.len());
                for r in &wanted {
                    values.push(descriptor_value(&r.descriptor())?);
                }
                let wrote = edit_fallback(&writer, index, subject, |list| {
                    let before_len = list.len();
                    let before: Vec<String> = list
                        .iter()
                        .filter_map(|v| listed_digest(v).map(str::to_string))
                        .collect();
                    list.retain(|v| {
                        listed_digest(v)
                            .is_some_and(|d| wanted.iter().any(|r| r.digest.as_str() == d))
                    });
                    for (r, value) in wanted.iter().zip(&values) {
                        if !list
                            .iter()
                            .any(|v| listed_digest(v) == Some(r.digest.as_str()))
                        {
                            list.push(value.clone());
                        }
                    }
                    let after: Vec<String> = list
                        .iter()
                        .filter_map(|v| listed_digest(v).map(str::to_string))
                        .collect();
                    before != after || before_len != before.len()
                })?;
                if wrote {
                    report.written_tags.push(fallback_tag(subject));
                    changed = true;
                }
            }
        }
        Ok((report, changed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_tag_names_the_subject() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(fallback_tag(&d), format!("sha256-{}", d.encoded()));
        assert_eq!(fallback_tag_subject(&fallback_tag(&d)), Some(d));
    }

    #[test]
    fn the_canonical_scan_accepts_exactly_what_canonical_json_looks_like() {
        let document = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "x-vendor": {"n": -12, "t": true, "f": false, "z": null, "s": "a\"b\\c\nd\u{1}é/<>"},
            "manifests": [
                {"digest": Digest::sha256_of(b"a").to_string(), "size": 0, "urls": ["u"]},
                {"digest": Digest::sha256_of(b"b").to_string(), "annotations": {"k": "v"}},
            ],
        });
        let bytes = canonical::to_vec(&document);
        let end = canonical_array_end(&bytes, "manifests").expect("canonical");
        assert_eq!(bytes[end], b']');
        assert!(bytes[end + 1..].starts_with(b",\"mediaType\""));
        let empty = canonical::to_vec(&serde_json::json!({"manifests": [], "schemaVersion": 2}));
        let end = canonical_array_end(&empty, "manifests").unwrap();
        assert_eq!(&empty[end - 1..=end], b"[]");
        let text = String::from_utf8(bytes.clone()).unwrap();
        for other in [
            text.replacen(',', ", ", 1),                                // whitespace
            text.replacen("\"manifests\"", "\"zzz\"", 1),               // unsorted keys
            text.replacen("\"k\":\"v\"", "\"k\":\"v\",\"k\":\"w\"", 1), // duplicate key
            text.replacen("\\n", "\\u000a", 1),                         // long escape
            text.replacen("é/", "é\\/", 1),                             // needless escape
            text.replacen("-12", "-12.0", 1),                           // float
            text.replacen("-12", "-012", 1),                            // leading zero
            format!("{text} "),                                         // trailing space
            text.replacen("\"manifests\"", "\"manifestz\"", 1),         // no such key
        ] {
            assert_ne!(other, text);
            assert_eq!(
                canonical_array_end(other.as_bytes(), "manifests"),
                None,
                "{other}"
            );
        }
        assert_eq!(canonical_array_end(b"[]", "manifests"), None);
    }

    #[test]
    fn contains_finds_a_needle() {
        assert!(contains(b"abcabd", b"abd"));
        assert!(!contains(b"abcab", b"abd"));
        assert!(contains(b"x", b""));
    }

    #[test]
    fn filters_need_every_condition() {
        let referrer = Referrer {
            digest: Digest::sha256_of(b"r"),
            media_type: media_type::OCI_MANIFEST.into(),
            artifact_type: Some("application/x".into()),
            size: 1,
            annotations: [("k".to_string(), "v".to_string())].into(),
            found_in: [Source::Index].into(),
            problem: None,
        };
        assert!(Filter::default().matches(&referrer));
        let by_type = Filter {
            artifact_type: Some("application/x".into()),
            annotations: vec![("k".into(), "v".into())],
        };
        assert!(by_type.matches(&referrer));
        let wrong = Filter {
            annotations: vec![("k".into(), "w".into())],
            ..Filter::default()
        };
        assert!(!wrong.matches(&referrer));
    }
}
