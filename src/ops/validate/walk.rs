//! Validating a whole layout: its files, the graph of documents reachable from `index.json`,
//! the referrers bookkeeping, and the content of every blob.
//!
//! The graph is walked by the one walker ([`crate::graph::walk`]), so validate follows exactly
//! what gc keeps and `ls` counts: a blob is checked as a manifest or index whenever any
//! descriptor says it is one. Each blob is read once. Documents (manifests, indexes) are read
//! whole, hashed in memory and checked as the walk reaches them, in parallel; configs likewise
//! after the walk; the walk is then replayed in document order to check every descriptor where
//! it appears (sizes, presence, media types, cycles), so findings come in the order of the
//! layout. Every other blob is streamed afterwards, in parallel, and hashed — and with
//! `--deep`, a layer is decompressed and its tar walked in the same read. (One exception: a
//! blob that one descriptor calls a config and another a manifest is read a second time, for
//! its config checks.)

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;

use rayon::prelude::*;

use super::check::{Checker, ConfigFacts, IndexFacts, ManifestFacts};
use super::deep::{self, Expectation, LayerCheck};
use super::finding::{Finding, Findings, Place};
use super::{Options, Stats};
use crate::error::{Error, Result};
use crate::graph::documents::document_kind;
use crate::graph::referrers::fallback_tag_subject;
use crate::graph::resolve::match_name;
use crate::graph::walk::{self, Child, Event, Field, Reader, Role, State, Step, MAX_DEPTH};
use crate::progress::{Counted, Progress};
use crate::spec::digest::{Digest, Hasher};
use crate::spec::document::media_type::{self as mt, Kind};
use crate::spec::document::{Descriptor, Schema};
use crate::store::layout::{FileKind, LayoutRead, MAX_DOCUMENT_SIZE, TEMP_PREFIX};

/// What was learned from a document blob.
enum Facts {
    /// Boxed (as is `Index`): much larger than the other variants.
    Manifest(Box<ManifestFacts>),
    Index(Box<IndexFacts>),
    Config(ConfigFacts),
    /// Read but not usable (not JSON, wrong shape, too large).
    Unusable,
}

/// A blob file found under `blobs/`.
struct BlobFile {
    len: u64,
}

/// One blob read and checked on its own (in parallel, as the walk reaches it): what it says,
/// and the findings about the blob itself.
struct Checked {
    facts: Facts,
    findings: Findings,
    /// The bytes read, when it could be read.
    read: Option<u64>,
    /// Its content was hashed (L8).
    hashed: bool,
    /// It was parsed as JSON and checked as a manifest or index (the "manifests" count).
    counted: bool,
    /// A pre-release artifact manifest (whose layers are `blobs`).
    artifact: bool,
    /// The media type its checks compared its own with: the descriptor's it was read by, or
    /// none when it says it is another kind of document than that descriptor does.
    expected: Option<String>,
}

impl Checked {
    fn new(strict: bool) -> Checked {
        Checked {
            facts: Facts::Unusable,
            findings: Findings::new(strict),
            read: None,
            hashed: false,
            counted: false,
            artifact: false,
            expected: None,
        }
    }
}

/// How validate reads a document for the walk: raw bytes, hashed in memory, checked value by
/// value (so one document yields every finding), never trusted.
struct DocumentReader<'a> {
    layout: &'a dyn LayoutRead,
    blobs: Arc<BTreeMap<Digest, BlobFile>>,
    strict: bool,
}

impl DocumentReader<'_> {
    /// Reads and checks blob `d` as what `kind` says it is (a manifest, an index, or else a
    /// config). `hash`: whether to hash it (not when it was read before).
    fn check(&self, d: &Descriptor, kind: Kind, hash: bool) -> Checked {
        let mut checked = Checked::new(self.strict);
        if !self.blobs.contains_key(&d.digest) {
            return checked; // reported (L11) where each descriptor names it
        }
        let place = Place::blob(&d.digest);
        let Some(bytes) = read_document(self.layout, d, &place, hash, &mut checked) else {
            return checked;
        };
        let mut checker = Checker::new(&mut checked.findings, place);
        let Some(value) = checker.parse(&bytes) else {
            return checked;
        };
        // Checked as what the document is (`document_kind`: what every reader of ocikit reads
        // it as), against the descriptor's media type when that says the same kind of document;
        // else each descriptor is compared with the document where it appears.
        let is_index = |k: Kind| k == Kind::Index;
        let (kind, expected) = match document_kind(&value, Some(&d.media_type)) {
            Some(read_as) if kind != Kind::Config && is_index(read_as) != is_index(kind) => {
                (read_as, None)
            }
            _ => (kind, Some(d.media_type.as_str())),
        };
        let own = value
            .get("mediaType")
            .and_then(|m| m.as_str())
            .filter(|m| mt::is_manifest_like(m));
        checker.differentials(
            &bytes,
            match kind {
                Kind::Manifest | Kind::Index | Kind::ArtifactManifest => Schema::ManifestLike,
                _ => Schema::Config,
            },
        );
        checked.expected = expected.map(str::to_string);
        checked.artifact = own.or(expected) == Some(mt::OCI_ARTIFACT_MANIFEST);
        checked.facts = match kind {
            Kind::Manifest | Kind::ArtifactManifest => checker
                .manifest(&value, expected, bytes.len())
                .map(|m| Facts::Manifest(Box::new(m))),
            Kind::Index => checker
                .index(&value, expected)
                .map(|i| Facts::Index(Box::new(i))),
            _ => checker.config(&value).map(Facts::Config),
        }
        .unwrap_or(Facts::Unusable);
        checked.counted = matches!(kind, Kind::Manifest | Kind::Index | Kind::ArtifactManifest);
        checked
    }
}

impl Reader for DocumentReader<'_> {
    type Doc = Checked;

    fn read(&self, d: &Descriptor) -> Checked {
        self.check(d, mt::kind(&d.media_type), true)
    }

    fn children<'d>(&self, checked: &'d Checked) -> Vec<Child<'d>> {
        let mut out = Vec::new();
        match &checked.facts {
            Facts::Manifest(m) => {
                if let Some(config) = &m.config {
                    out.push(Child {
                        field: Field::Config,
                        descriptor: config,
                    });
                }
                for (i, layer) in m.layers.iter().enumerate() {
                    if let Some(descriptor) = layer {
                        let field = if checked.artifact {
                            Field::Blob(i)
                        } else {
                            Field::Layer(i)
                        };
                        out.push(Child { field, descriptor });
                    }
                }
                if let Some(subject) = &m.subject {
                    out.push(Child {
                        field: Field::Subject,
                        descriptor: subject,
                    });
                }
            }
            Facts::Index(index) => {
                for (i, descriptor) in &index.manifests {
                    out.push(Child {
                        field: Field::Manifest(*i),
                        descriptor,
                    });
                }
                if let Some(subject) = &index.subject {
                    out.push(Child {
                        field: Field::Subject,
                        descriptor: subject,
                    });
                }
            }
            Facts::Config(_) | Facts::Unusable => {}
        }
        out
    }
}

/// Reads a document whole (bounded), hashing it in memory (L8) unless `hash` is false.
fn read_document(
    layout: &dyn LayoutRead,
    d: &Descriptor,
    place: &Place,
    hash: bool,
    checked: &mut Checked,
) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let read = layout.open_blob_raw(&d.digest).and_then(|r| {
        r.take(MAX_DOCUMENT_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read", place.file.clone().unwrap_or_default(), e))
    });
    if let Err(e) = read {
        checked
            .findings
            .add("L8", place, "", format!("the blob cannot be read: {e}"));
        return None;
    }
    checked.read = Some(bytes.len() as u64);
    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
        checked.findings.add("M9", place, "", format!("the document is larger than {MAX_DOCUMENT_SIZE} bytes; ocikit does not check its content"));
        return None;
    }
    if let Some(algorithm) = d.digest.known_algorithm().filter(|_| hash) {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(&bytes);
        let actual = hasher.finish();
        checked.hashed = true;
        if actual != d.digest {
            checked.findings.add(
                "L8",
                place,
                "",
                format!("the blob's content hashes to {actual}, not to its name"),
            );
        }
    }
    Some(bytes)
}

/// The walk over the documents, read by validate.
type Graph<'a> = walk::Walk<'a, DocumentReader<'a>>;

struct Walk<'a> {
    layout: &'a dyn LayoutRead,
    options: &'a Options,
    findings: Findings,
    stats: Stats,
    /// Valid blob files by digest.
    blobs: Arc<BTreeMap<Digest, BlobFile>>,
    /// What documents and configs say, by digest (once the graph is walked).
    docs: HashMap<Digest, Facts>,
    /// Blobs hashed while reading documents.
    hashed: HashSet<Digest>,
    /// Everything the graph references.
    reached: HashSet<Digest>,
    /// Layers to check with `--deep`.
    layers: HashMap<Digest, LayerCheck>,
    /// (manifest, config, layer digests) of image manifests, for C5 and diff_ids.
    images: Vec<(Digest, Digest, Vec<Option<Digest>>)>,
}

pub(super) fn run(
    layout: &dyn LayoutRead,
    options: &Options,
    progress: &dyn Progress,
) -> Result<(Vec<Finding>, Stats)> {
    let mut walk = Walk {
        layout,
        options,
        findings: Findings::new(options.strict),
        stats: Stats::default(),
        blobs: Arc::new(BTreeMap::new()),
        docs: HashMap::new(),
        hashed: HashSet::new(),
        reached: HashSet::new(),
        layers: HashMap::new(),
        images: Vec::new(),
    };
    walk.check_header()?;
    walk.check_files()?;
    let roots = walk.check_index_json()?;
    let reader = DocumentReader {
        layout,
        blobs: walk.blobs.clone(),
        strict: options.strict,
    };
    let mut graph = walk::Walk::new(reader, walk::Options::default());
    graph.add_roots(
        roots
            .iter()
            .map(|(position, d)| (Field::Root(*position), Cow::Borrowed(d))),
    );
    let mut configs = check_configs(&graph);
    graph.events(|event| walk.replay(event, &graph, &mut configs));
    walk.keep(graph, configs);
    walk.check_referrers(&roots);
    walk.check_images();
    walk.hash_blobs(progress);
    if options.names.is_empty() {
        walk.report_unreferenced();
    }
    Ok((walk.findings.into_vec(), walk.stats))
}

/// Every blob some descriptor calls a config, read and checked once, in parallel. (One that is
/// also a manifest or index was read as that already: it is read again for these checks, not
/// hashed again.)
fn check_configs(graph: &Graph<'_>) -> HashMap<Digest, Checked> {
    let configs: Vec<(&Digest, bool)> = graph
        .nodes()
        .filter(|(_, node)| node.claimed(Role::Config))
        .map(|(digest, node)| (digest, node.doc().is_none()))
        .collect();
    let reader = graph.reader();
    configs
        .par_iter()
        .map(|(digest, hash)| {
            let descriptor = Descriptor::new(mt::OCI_CONFIG, (*digest).clone(), 0);
            (
                (*digest).clone(),
                reader.check(&descriptor, Kind::Config, *hash),
            )
        })
        .collect()
}

impl Walk<'_> {
    fn check_header(&mut self) -> Result<()> {
        let place = Place::file("oci-layout");
        let bytes = match self.layout.root_file("oci-layout", 64 * 1024) {
            Err(e) if is_unusable(&e) => {
                self.findings.add(
                    "L2",
                    &place,
                    "",
                    format!("oci-layout cannot be read as a JSON file: {e}"),
                );
                return Ok(());
            }
            other => other?,
        };
        match bytes {
            None => self
                .findings
                .add("L1", &place, "", "the layout has no oci-layout file".into()),
            Some(bytes) => match serde_json::from_slice(&bytes) {
                Ok(value) => {
                    let mut checker = Checker::new(&mut self.findings, place);
                    checker.differentials(&bytes, Schema::LayoutHeader);
                    checker.layout_header(&value);
                }
                Err(e) => self.findings.add(
                    "L2",
                    &place,
                    "",
                    format!("oci-layout is not valid JSON: {e}"),
                ),
            },
        }
        Ok(())
    }

    /// L6, L7, L9, L12, L13: what is in the layout's directory tree.
    fn check_files(&mut self) -> Result<()> {
        let files = self.layout.files()?;
        let mut blobs = BTreeMap::new();
        for linked in files.iter().filter(|f| {
            f.kind == FileKind::Symlink
                && (f.path == "blobs"
                    || f.path
                        .strip_prefix("blobs/")
                        .is_some_and(|rest| !rest.contains('/')))
        }) {
            self.findings.add(
                "L13",
                &Place::file(linked.path.clone()),
                "",
                format!(
                    "{} is a symbolic link; blobs read or written through it would be outside the layout, so no blob is read",
                    linked.path
                ),
            );
        }
        if !files.iter().any(|f| {
            f.path.starts_with("blobs/")
                || (f.path == "blobs" && matches!(f.kind, FileKind::Directory | FileKind::Symlink))
        }) {
            self.findings.add(
                "L6",
                &Place::file("blobs"),
                "",
                "the layout has no blobs directory".into(),
            );
        }
        for file in &files {
            let name = file.path.rsplit('/').next().unwrap_or(&file.path);
            let place = Place::file(file.path.clone());
            if name.starts_with(TEMP_PREFIX) {
                self.findings.add("L9", &place, "", format!("{} is left over from an interrupted write ({} bytes); garbage collection removes it", file.path, file.len));
                continue;
            }
            let Some(rest) = file.path.strip_prefix("blobs/") else {
                continue;
            };
            let parts: Vec<&str> = rest.split('/').collect();
            if parts.len() == 1 && file.kind == FileKind::Symlink {
                continue; // L13, above
            }
            match parts.as_slice() {
                [algorithm] if file.kind == FileKind::Directory => {
                    if !crate::spec::digest::is_valid_algorithm(algorithm) {
                        self.findings.add(
                            "L7",
                            &place,
                            "",
                            format!("blobs/{algorithm} is not named after a digest algorithm"),
                        );
                    }
                }
                [algorithm, encoded] => match Digest::parse(&format!("{algorithm}:{encoded}")) {
                    Ok(digest) if file.kind == FileKind::Regular => {
                        blobs.insert(digest, BlobFile { len: file.len });
                    }
                    Ok(digest) => self.findings.add(
                        "L12",
                        &Place::blob(&digest),
                        "",
                        format!(
                            "{} is a {}, not a regular file",
                            file.path,
                            kind_name(file.kind)
                        ),
                    ),
                    Err(e) => self.findings.add(
                        "L7",
                        &place,
                        "",
                        format!("{} is not named after a valid digest: {e}", file.path),
                    ),
                },
                _ if parts.len() > 2
                    && Digest::parse(&format!("{}:{}", parts[0], parts[1])).is_ok() =>
                {
                    // Inside a "blob" that is a directory: reported once, as L12, above.
                }
                _ => self.findings.add(
                    "L7",
                    &place,
                    "",
                    format!("{} is not at blobs/<algorithm>/<encoded>", file.path),
                ),
            }
        }
        self.blobs = Arc::new(blobs);
        Ok(())
    }

    /// L4, L5 and the index rules for `index.json`; returns the roots to walk.
    fn check_index_json(&mut self) -> Result<Vec<(usize, Descriptor)>> {
        let place = Place::file("index.json");
        let bytes = match self.layout.root_file("index.json", MAX_DOCUMENT_SIZE * 16) {
            Err(e) if is_unusable(&e) => {
                self.findings.add(
                    "L5",
                    &place,
                    "",
                    format!("index.json cannot be read as a JSON file: {e}"),
                );
                return Ok(Vec::new());
            }
            other => other?,
        };
        let Some(bytes) = bytes else {
            self.findings
                .add("L4", &place, "", "the layout has no index.json file".into());
            return Ok(Vec::new());
        };
        let value: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                self.findings.add(
                    "L5",
                    &place,
                    "",
                    format!("index.json is not valid JSON: {e}"),
                );
                return Ok(Vec::new());
            }
        };
        let mut checker = Checker::new(&mut self.findings, place);
        checker.differentials(&bytes, Schema::Index);
        let Some(facts) = checker.index(&value, None) else {
            return Ok(Vec::new());
        };
        let mut roots = facts.manifests;
        if !self.options.names.is_empty() {
            let descriptors: Vec<Descriptor> = roots.iter().map(|(_, d)| d.clone()).collect();
            let mut wanted = HashSet::new();
            for name in &self.options.names {
                let matches = match_name(&descriptors, name);
                if matches.is_empty() {
                    return Err(Error::NameNotFound {
                        name: name.clone(),
                        layout: self.layout.name(),
                        available: descriptors
                            .iter()
                            .filter_map(|d| d.ref_name().map(str::to_string))
                            .collect(),
                    });
                }
                wanted.extend(matches);
            }
            roots = roots
                .into_iter()
                .enumerate()
                .filter(|(i, _)| wanted.contains(i))
                .map(|(_, root)| root)
                .collect();
        }
        Ok(roots)
    }

    /// One descriptor as the walk is replayed in document order: presence and size, and for
    /// documents their own findings (at the first descriptor that names them) or how this
    /// descriptor agrees with them.
    fn replay(
        &mut self,
        event: &Event<'_, '_, Checked>,
        graph: &Graph<'_>,
        configs: &mut HashMap<Digest, Checked>,
    ) {
        let d = event.descriptor;
        let place = match event.from {
            Some(parent) => Place::blob(parent),
            None => Place::file("index.json"),
        };
        let pointer = event.field.pointer();
        if event.step == Step::Leave {
            // An index's child, once visited: a platform-specific manifest needs a platform.
            let child_of_index = event.from.is_some() && matches!(event.field, Field::Manifest(_));
            if child_of_index && d.platform.is_none() && is_image_manifest(graph, &d.digest) {
                self.findings.add("D10", &place, &pointer, format!("{} is an image manifest (platform-specific) but its descriptor has no platform", d.digest));
            }
            return;
        }
        let Some(blob) = self.blobs.get(&d.digest) else {
            let foreign = d.urls.as_ref().is_some_and(|u| !u.is_empty());
            if !(foreign && self.options.allow_foreign) {
                let hint = if foreign {
                    " (it has urls: a foreign layer, which validation can be told to accept)"
                } else {
                    ""
                };
                self.findings.add(
                    "L11",
                    &place,
                    &pointer,
                    format!(
                        "blob {} is referenced here but missing from blobs/{hint}",
                        d.digest
                    ),
                );
            }
            return;
        };
        if blob.len != d.size {
            self.findings.add(
                "D5",
                &place,
                &format!("{pointer}/size"),
                format!(
                    "size is {} but blob {} is {} bytes",
                    d.size, d.digest, blob.len
                ),
            );
        }
        match mt::kind(&d.media_type) {
            Kind::Manifest | Kind::Index | Kind::ArtifactManifest => {
                if event.cycle {
                    self.findings.add(
                        "I5",
                        &place,
                        &pointer,
                        format!(
                            "{} is one of its own ancestors: the indexes form a cycle",
                            d.digest
                        ),
                    );
                    return;
                }
                let checked = match &event.node.state {
                    State::Read(checked) => checked,
                    State::TooDeep => {
                        self.findings.add(
                            "I5",
                            &place,
                            &pointer,
                            format!(
                                "indexes nest more than {MAX_DEPTH} deep here; not followed further"
                            ),
                        );
                        return;
                    }
                    State::Leaf => return,
                };
                // The document was checked against the descriptor it was read by; any other
                // descriptor is compared with it where it appears (M2, I3).
                if !event.descend || checked.expected.as_deref() != Some(&d.media_type) {
                    self.compare(d, checked, &place, &pointer);
                }
                if event.descend {
                    self.findings.extend_from(&checked.findings);
                    if let Facts::Manifest(m) = &checked.facts {
                        self.note_image(&d.digest, m);
                    }
                }
            }
            Kind::Config => {
                if let Some(checked) = configs.get_mut(&d.digest) {
                    let findings = std::mem::take(&mut checked.findings);
                    self.findings.extend(findings);
                }
            }
            Kind::Layer(compression) => {
                self.layers
                    .entry(d.digest.clone())
                    .or_insert_with(|| LayerCheck {
                        media_type: d.media_type.clone(),
                        compression,
                        diff_ids: Vec::new(),
                    });
            }
            Kind::Other => {}
        }
    }

    /// M2, I3: a descriptor's media type against the document's own.
    fn compare(&mut self, d: &Descriptor, checked: &Checked, place: &Place, pointer: &str) {
        let own = match &checked.facts {
            Facts::Manifest(m) => m.media_type.as_deref().map(|own| ("M2", own)),
            Facts::Index(i) => i.media_type.as_deref().map(|own| ("I3", own)),
            _ => None,
        };
        if let Some((rule, own)) = own.filter(|(_, own)| *own != d.media_type) {
            let message = format!(
                "the descriptor says mediaType {:?} but {} says {own:?}",
                d.media_type, d.digest
            );
            self.findings
                .add(rule, place, &format!("{pointer}/mediaType"), message);
        }
    }

    /// An image manifest: its config and layers, for C5, C9 and the diff_ids.
    fn note_image(&mut self, digest: &Digest, m: &ManifestFacts) {
        if let Some(config) = m
            .config
            .as_ref()
            .filter(|c| mt::kind(&c.media_type) == Kind::Config && m.layers_listed)
        {
            let layers = m
                .layers
                .iter()
                .map(|l| l.as_ref().map(|l| l.digest.clone()))
                .collect();
            self.images
                .push((digest.clone(), config.digest.clone(), layers));
        }
    }

    /// Takes what the walk learned: what each blob says, what was read and hashed.
    fn keep(&mut self, graph: Graph<'_>, configs: HashMap<Digest, Checked>) {
        for node in graph.into_nodes() {
            let digest = node.digest().clone();
            self.reached.insert(digest.clone());
            if let State::Read(checked) = node.state {
                if self.blobs.contains_key(&digest) {
                    self.count(&digest, &checked);
                    self.docs.insert(digest, checked.facts);
                }
            }
        }
        for (digest, checked) in configs {
            if self.blobs.contains_key(&digest) && !self.docs.contains_key(&digest) {
                self.count(&digest, &checked);
                self.docs.insert(digest, checked.facts);
            }
        }
    }

    fn count(&mut self, digest: &Digest, checked: &Checked) {
        if let Some(len) = checked.read {
            self.stats.blobs += 1;
            self.stats.bytes += len;
        }
        if checked.hashed {
            self.hashed.insert(digest.clone());
        }
        if checked.counted {
            self.stats.manifests += 1;
        }
    }

    /// R1–R4 and M8: the referrers bookkeeping agrees with the manifests.
    fn check_referrers(&mut self, roots: &[(usize, Descriptor)]) {
        let index_place = Place::file("index.json");
        for (position, entry) in roots {
            let pointer = format!("/manifests/{position}");
            if let Some(subject) = entry.ref_name().and_then(fallback_tag_subject) {
                let Some(Facts::Index(listing)) = self.docs.get(&entry.digest) else {
                    if self.blobs.contains_key(&entry.digest) {
                        self.findings.add(
                            "R4",
                            &index_place,
                            &pointer,
                            format!(
                                "the fallback tag {} names {}, which is not an image index",
                                entry.ref_name().unwrap_or_default(),
                                entry.digest
                            ),
                        );
                    }
                    continue;
                };
                let listing_place = Place::blob(&entry.digest);
                let mut problems = Vec::new();
                for (i, listed) in &listing.manifests {
                    let Some(facts) = self.docs.get(&listed.digest) else {
                        continue;
                    };
                    let (subject_of, artifact_type, annotations) = referrer_view(facts);
                    let at = format!("/manifests/{i}");
                    if subject_of.as_ref() != Some(&subject) {
                        problems.push(("R1", at.clone(), format!("{} is listed under the fallback tag of {subject}, but its subject is {}", listed.digest, subject_of.map_or("absent".to_string(), |s| s.to_string()))));
                    }
                    if listed.artifact_type.as_deref() != artifact_type.as_deref() {
                        problems.push((
                            "R2",
                            format!("{at}/artifactType"),
                            format!(
                                "artifactType is {:?} but the manifest's is {:?}",
                                listed.artifact_type, artifact_type
                            ),
                        ));
                    }
                    if listed.annotations.clone().unwrap_or_default() != annotations {
                        problems.push((
                            "R2",
                            format!("{at}/annotations"),
                            "the annotations differ from the manifest's".to_string(),
                        ));
                    }
                }
                for (rule, at, message) in problems {
                    self.findings.add(rule, &listing_place, &at, message);
                }
            } else if entry.ref_name().is_none() {
                let Some(facts) = self.docs.get(&entry.digest) else {
                    continue;
                };
                let (subject, artifact_type, _) = referrer_view(facts);
                if subject.is_some() {
                    if let Some(declared) = &entry.artifact_type {
                        if Some(declared) != artifact_type.as_ref() {
                            let message = format!("the entry says artifactType {declared:?} but the manifest's is {artifact_type:?}");
                            self.findings.add(
                                "R3",
                                &index_place,
                                &format!("{pointer}/artifactType"),
                                message,
                            );
                        }
                    }
                }
            }
        }
        let mut missing = Vec::new();
        for (digest, facts) in &self.docs {
            let subject = match facts {
                Facts::Manifest(m) => m.subject.as_ref(),
                Facts::Index(i) => i.subject.as_ref(),
                _ => None,
            };
            if let Some(s) = subject {
                if !self.blobs.contains_key(&s.digest) {
                    missing.push((digest.clone(), s.digest.clone()));
                }
            }
        }
        missing.sort();
        for (digest, subject) in missing {
            self.findings.add(
                "M8",
                &Place::blob(&digest),
                "/subject",
                format!("the subject {subject} is not in the layout"),
            );
        }
    }

    /// C5, C9, and the diff_ids each layer must have.
    fn check_images(&mut self) {
        for (manifest, config, layers) in std::mem::take(&mut self.images) {
            let Some(Facts::Config(facts)) = self.docs.get(&config) else {
                continue;
            };
            let place = Place::blob(&config);
            if let Some(history) = facts.history_layers {
                if history != layers.len() {
                    self.findings.add("C9", &place, "/history", format!("history has {history} entries that are not empty_layer, but manifest {manifest} has {} layers", layers.len()));
                }
            }
            let Some(diff_ids) = facts.diff_ids.clone() else {
                continue;
            };
            if diff_ids.len() != layers.len() {
                self.findings.add(
                    "C5",
                    &place,
                    "/rootfs/diff_ids",
                    format!(
                        "the config lists {} diff_ids but manifest {manifest} has {} layers",
                        diff_ids.len(),
                        layers.len()
                    ),
                );
                continue;
            }
            for (position, (diff_id, layer)) in diff_ids.into_iter().zip(layers).enumerate() {
                if let Some(check) = layer.and_then(|l| self.layers.get_mut(&l)) {
                    check.diff_ids.push(Expectation {
                        diff_id,
                        config: config.clone(),
                        position,
                    });
                }
            }
        }
    }

    /// L8 (and `--deep`): every blob not yet hashed is read once, in parallel.
    fn hash_blobs(&mut self, progress: &dyn Progress) {
        let todo: Vec<(&Digest, u64)> = self
            .blobs
            .iter()
            .filter(|(d, _)| !self.hashed.contains(*d))
            .filter(|(d, _)| self.options.names.is_empty() || self.reached.contains(*d))
            .map(|(d, b)| (d, b.len))
            .collect();
        progress.total(todo.iter().map(|(_, len)| len).sum());
        let deep = self.options.deep;
        let limits = deep::DeepLimits::with_decode(self.options.limits);
        let layout = self.layout;
        let layers = &self.layers;
        let strict = self.findings.strict();
        let results: Vec<(Findings, u64, bool)> = todo
            .par_iter()
            .map(|(digest, len)| {
                let mut findings = Findings::new(strict);
                let place = Place::blob(digest);
                let Some(algorithm) = digest.known_algorithm() else {
                    findings.add("G3", &place, "", format!("{} uses an algorithm ocikit cannot compute, so its content is not verified", digest.algorithm()));
                    return (findings, 0, false);
                };
                let layer = layers.get(*digest).filter(|_| deep);
                let outcome = layout.open_blob_raw(digest).and_then(|raw| {
                    let mut counted = Counted::new(raw, progress);
                    match layer {
                        Some(check) => deep::check_layer(&mut counted, algorithm, check, &limits, &mut findings, &place),
                        None => deep::hash_stream(&mut counted, algorithm),
                    }
                    .map_err(|e| Error::io("cannot read", place.file.clone().unwrap_or_default(), e))
                });
                match outcome {
                    Ok(actual) if &actual != *digest => findings.add("L8", &place, "", format!("the blob's content hashes to {actual}, not to its name")),
                    Ok(_) => {}
                    Err(e) => findings.add("L8", &place, "", format!("the blob cannot be read: {e}")),
                }
                (findings, *len, layer.is_some())
            })
            .collect();
        for (findings, len, was_layer) in results {
            self.stats.blobs += 1;
            self.stats.bytes += len;
            self.stats.layers += usize::from(was_layer);
            self.findings.extend(findings);
        }
    }

    /// L10: blobs nothing references.
    fn report_unreferenced(&mut self) {
        let unreferenced: Vec<(Digest, u64)> = self
            .blobs
            .iter()
            .filter(|(d, _)| !self.reached.contains(*d))
            .map(|(d, b)| (d.clone(), b.len))
            .collect();
        for (digest, len) in unreferenced {
            self.stats.unreferenced += 1;
            self.stats.unreferenced_bytes += len;
            self.findings.add(
                "L10",
                &Place::blob(&digest),
                "",
                format!("nothing references this blob ({len} bytes); garbage collection would remove it"),
            );
        }
    }
}

/// An image manifest (a config of an image), not a referrer: the referrers listings
/// (fallback-tag indexes) list signatures with image configs, which carry no platform.
fn is_image_manifest(graph: &Graph<'_>, digest: &Digest) -> bool {
    let facts = graph.node(digest).and_then(|n| n.doc()).map(|c| &c.facts);
    matches!(facts, Some(Facts::Manifest(m)) if m.subject.is_none() && m.config.as_ref().is_some_and(|c| mt::kind(&c.media_type) == Kind::Config))
}

/// (subject, artifact type as a referrers listing shows it, annotations) of a document.
fn referrer_view(facts: &Facts) -> (Option<Digest>, Option<String>, BTreeMap<String, String>) {
    match facts {
        Facts::Manifest(m) => (
            m.subject.as_ref().map(|s| s.digest.clone()),
            m.artifact_type
                .clone()
                .or_else(|| m.config.as_ref().map(|c| c.media_type.clone())),
            m.annotations.clone(),
        ),
        Facts::Index(i) => (
            i.subject.as_ref().map(|s| s.digest.clone()),
            i.artifact_type.clone(),
            i.annotations.clone(),
        ),
        _ => (None, None, BTreeMap::new()),
    }
}

/// Whether reading a root file (`oci-layout`, `index.json`) failed because of the file itself
/// (not a regular file, too large): a finding. Other failures (permissions, I/O) mean the
/// layout cannot be validated.
fn is_unusable(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => source.kind() == io::ErrorKind::InvalidData,
        Error::Archive { .. } | Error::Limit { .. } | Error::InvalidInput { .. } => true,
        _ => false,
    }
}

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Regular => "regular file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Other => "device, FIFO or socket",
    }
}
