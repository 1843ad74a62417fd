//! The one walk over what references what: roots (`index.json` entries, or any descriptors) →
//! indexes → manifests → configs, layers and blobs, and subjects when asked.
//!
//! Every traversal of ocikit goes through [`Walk`]: gc's marking, `ls`'s summaries, validate's
//! layout walk, resolving a reference with `--platform`, `rm`'s cascade, and the coming copy,
//! export and bundle. What it guarantees, once, for all of them:
//!
//! - **What a blob is, is what the descriptors say.** A digest is read and followed as a
//!   manifest or index whenever *any* descriptor reaching it names a manifest or index media
//!   type, wherever that descriptor is and in whatever order it is met. A blob first reached
//!   as an artifact's `application/octet-stream` layer is still followed as the image manifest
//!   another descriptor says it is (a mark-once walk would sweep that image's layers).
//! - **Each blob once.** A document is read once however many descriptors reach it, and the
//!   graph holds each digest once.
//! - **One nesting limit**, [`MAX_DEPTH`]: a document deeper than that below every root is not
//!   read, and is marked [`State::TooDeep`] so that each caller says so in its own terms.
//! - **Parallel reads.** The walk goes level by level: every claim of a level is known before
//!   its documents are read, and those are read in parallel (rayon).
//! - **A platform filter** ([`Options::platform`]): each index is narrowed to the child the
//!   platform selects (image-spec 1.1: the first match), as `--platform` does everywhere.
//! - **Subjects only when asked** ([`Options::subjects`]): a referrer does not reach its
//!   subject unless the caller wants that.
//!
//! How a document is read is the caller's ([`Reader`]): typed views through the shared
//! [`Documents`] cache for most, validate's value-by-value checks for validate. After the
//! walk, [`Walk::events`] replays the graph depth-first in document order, every descriptor
//! once per place it appears, for callers that report per descriptor (validate's findings).
//!
//! A copy of a closure (copy, export, bundle) walks from its roots and then has, in
//! [`Walk::nodes`], every blob to copy, each once, with its size and what it is; the full
//! descriptor of a leaf (a foreign layer's `urls`, say) is where the documents that list it
//! hold it ([`Walk::children`], or [`Walk::events`] for each place).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::graph::documents::{Documents, FastMap, Loaded};
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self, Kind};
use crate::spec::document::{Descriptor, Document};
use crate::spec::platform::Platform;

/// How deep documents may nest below a root: a root is at depth 0, an index's children one
/// deeper. A document at this depth is not read ([`State::TooDeep`]): a hostile chain of
/// indexes must not cost unbounded work, and real layouts nest two or three deep.
pub const MAX_DEPTH: usize = 16;

/// The error for a walk that met a document [`MAX_DEPTH`] below every root: what lies below
/// `digest` is not known, so nothing that needs all of it (gc's marking, a copy's closure) may
/// go on.
pub fn too_deep(digest: &Digest) -> crate::error::Error {
    crate::error::Error::Limit {
        what: format!("indexes above {digest}"),
        detail: format!("nest more than {MAX_DEPTH} deep, so what it references is not known"),
    }
}

/// What a descriptor says a blob is, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Anything else: an artifact's file, an unknown type.
    Blob,
    /// A filesystem layer.
    Layer,
    /// An image configuration.
    Config,
    /// An image manifest (OCI, Docker, or the pre-release artifact manifest).
    Manifest,
    /// An image index or manifest list.
    Index,
}

impl Role {
    /// What `media_type` says a blob is.
    pub fn of(media_type: &str) -> Role {
        match media_type::kind(media_type) {
            Kind::Manifest | Kind::ArtifactManifest => Role::Manifest,
            Kind::Index => Role::Index,
            Kind::Config => Role::Config,
            Kind::Layer(_) => Role::Layer,
            Kind::Other => Role::Blob,
        }
    }

    /// A manifest or an index: a document the walk reads and follows.
    pub fn is_document(self) -> bool {
        matches!(self, Role::Manifest | Role::Index)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Where a descriptor sits in the document that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// A root, at this position among the roots given (for `index.json` entries: their
    /// position in `manifests`).
    Root(usize),
    Config,
    Layer(usize),
    /// An entry of a pre-release artifact manifest's `blobs`.
    Blob(usize),
    /// An entry of an index's `manifests`.
    Manifest(usize),
    Subject,
}

impl Field {
    /// The JSON pointer of the descriptor in its document (for a root: in `index.json`).
    pub fn pointer(self) -> String {
        match self {
            Field::Root(i) | Field::Manifest(i) => format!("/manifests/{i}"),
            Field::Config => "/config".into(),
            Field::Layer(i) => format!("/layers/{i}"),
            Field::Blob(i) => format!("/blobs/{i}"),
            Field::Subject => "/subject".into(),
        }
    }
}

/// A descriptor a document holds, and where.
#[derive(Clone, Copy, Debug)]
pub struct Child<'d> {
    pub field: Field,
    pub descriptor: &'d Descriptor,
}

/// The descriptors of a typed document, in document order: a manifest's config, layers and
/// (pre-release artifact) blobs, an index's manifests, then the subject.
pub fn children_of(document: &Document) -> Vec<Child<'_>> {
    let mut out = Vec::new();
    match document {
        Document::Manifest(m) => {
            if let Some(config) = &m.config {
                out.push(Child {
                    field: Field::Config,
                    descriptor: config,
                });
            }
            out.extend(m.layers.iter().enumerate().map(|(i, d)| Child {
                field: Field::Layer(i),
                descriptor: d,
            }));
            out.extend(m.blobs.iter().enumerate().map(|(i, d)| Child {
                field: Field::Blob(i),
                descriptor: d,
            }));
        }
        Document::Index(index) => {
            out.extend(index.manifests.iter().enumerate().map(|(i, d)| Child {
                field: Field::Manifest(i),
                descriptor: d,
            }));
        }
    }
    if let Some(subject) = document.subject() {
        out.push(Child {
            field: Field::Subject,
            descriptor: subject,
        });
    }
    out
}

/// The child of an index that `platform` selects (image-spec 1.1: the first match): a
/// manifest whose platform satisfies it, or a nested index without a platform (which is then
/// narrowed in turn).
pub fn select<'d>(children: &[Child<'d>], platform: &Platform) -> Option<Child<'d>> {
    children
        .iter()
        .filter(|c| matches!(c.field, Field::Manifest(_)))
        .find(|c| match &c.descriptor.platform {
            Some(p) => p.satisfies(platform),
            None => Role::of(&c.descriptor.media_type) == Role::Index,
        })
        .copied()
}

/// How a walk reads a document. Called once per document, from several threads at once.
pub trait Reader: Sync {
    /// What the walk keeps of a document (read failures included: a walk never stops).
    type Doc: Send + Sync;

    /// Reads the manifest or index `descriptor` points at (the first descriptor that named it
    /// a document).
    fn read(&self, descriptor: &Descriptor) -> Self::Doc;

    /// The descriptors `doc` holds, in document order.
    fn children<'d>(&self, doc: &'d Self::Doc) -> Vec<Child<'d>>;
}

/// The typed reader: documents through a shared [`Documents`] cache, so that a walk and
/// referrer discovery over one layout read each document once.
impl Reader for &Documents<'_> {
    type Doc = Arc<Loaded>;

    fn read(&self, descriptor: &Descriptor) -> Arc<Loaded> {
        self.get(descriptor)
    }

    fn children<'d>(&self, doc: &'d Arc<Loaded>) -> Vec<Child<'d>> {
        match &**doc {
            Ok(parsed) => children_of(&parsed.document),
            Err(_) => Vec::new(),
        }
    }
}

/// What a walk follows.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// Narrow every index to the child this platform selects ([`select`]).
    pub platform: Option<Platform>,
    /// Also follow `subject` descriptors (a referrer then reaches what it refers to).
    pub subjects: bool,
}

/// One blob the walk reached. It holds what descriptors said of it, not a copy of them (a
/// walk over a large layout reaches hundreds of thousands of blobs): a leaf's descriptors are
/// in the documents that list it.
#[derive(Debug)]
pub struct Node<'r, D> {
    digest: Digest,
    /// As the descriptor that says best what it is gives it: the first that named it a
    /// manifest or index, else the first that reached it.
    size: u64,
    /// For a manifest or index, the descriptor it is read by (the first that named it one).
    read_by: Option<Box<Cow<'r, Descriptor>>>,
    role: Role,
    claims: u8,
    /// How far below a root it was first reached (0 for a root).
    pub depth: usize,
    /// Read, or being read: later claims do not queue it again.
    queued: bool,
    pub state: State<D>,
}

impl<D> Node<'_, D> {
    /// Its digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Its size, as the descriptor that says best what it is gives it (the first that named it
    /// a manifest or index, else the first that reached it): what gc and `ls` count.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// For a manifest or index, the descriptor it is read by: the first that named it one.
    pub fn read_by(&self) -> Option<&Descriptor> {
        self.read_by.as_deref().map(|d| &**d)
    }

    /// What it is: a manifest or index if any descriptor said so, else the most specific
    /// thing one said (config, then layer, then blob).
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether some descriptor reaching it said it is a `role`.
    pub fn claimed(&self, role: Role) -> bool {
        self.claims & role.bit() != 0
    }

    /// What reading it gave, for a document that was read.
    pub fn doc(&self) -> Option<&D> {
        match &self.state {
            State::Read(doc) => Some(doc),
            State::Leaf | State::TooDeep => None,
        }
    }
}

/// Whether a reached blob was read.
#[derive(Debug)]
pub enum State<D> {
    /// A config, layer or other blob: the walk does not read these.
    Leaf,
    /// A manifest or index, and what reading it gave.
    Read(D),
    /// A manifest or index [`MAX_DEPTH`] or more below every root: not read, not followed.
    TooDeep,
}

/// Entering or leaving a descriptor in [`Walk::events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Enter,
    /// After everything below it was visited.
    Leave,
}

/// One descriptor, replayed by [`Walk::events`].
pub struct Event<'w, 'r, D> {
    pub step: Step,
    /// The document that holds the descriptor; `None` for a root.
    pub from: Option<&'w Digest>,
    pub field: Field,
    pub descriptor: &'w Descriptor,
    pub node: &'w Node<'r, D>,
    /// The descriptor names a manifest or index that is already on the path from the root:
    /// a cycle, not followed.
    pub cycle: bool,
    /// The replay goes into the document now: this is the first descriptor (in replay order)
    /// that names it a manifest or index, and it was read.
    pub descend: bool,
}

/// A walk over one layout (or any [`Reader`]): the blobs reached so far, each once. Roots may
/// be borrowed for `'r` (an `index.json` held by the caller) or owned.
pub struct Walk<'r, R: Reader> {
    reader: R,
    options: Options,
    /// The blobs reached, in the order first reached (so that callers report deterministically).
    nodes: Vec<Node<'r, R::Doc>>,
    /// Where each digest is in `nodes`.
    index: FastMap<Digest, usize>,
    roots: Vec<(Field, Cow<'r, Descriptor>)>,
}

impl<'r, R: Reader> Walk<'r, R> {
    /// An empty walk; [`Walk::add_roots`] walks.
    pub fn new(reader: R, options: Options) -> Walk<'r, R> {
        Walk {
            reader,
            options,
            nodes: Vec::new(),
            index: FastMap::default(),
            roots: Vec::new(),
        }
    }

    /// The reader.
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// Walks from `roots` as well: everything they reach that the walk has not reached yet is
    /// reached now (a document reached before only as a leaf is read now). Can be called again
    /// with more roots (gc adds the referrers of what it keeps until nothing changes).
    pub fn add_roots(&mut self, roots: impl IntoIterator<Item = (Field, Cow<'r, Descriptor>)>) {
        let start = self.roots.len();
        self.roots.extend(roots);
        let Walk {
            reader,
            options,
            nodes,
            index,
            roots,
        } = self;
        let mut graph = Claims { nodes, index };
        graph.reserve(roots.len() - start);
        // Level by level: every claim of a level is registered before its documents are read,
        // so that a document is read once even when several descriptors of the level (or a
        // leaf claim before them) reach it.
        let mut to_read: Vec<usize> = roots[start..]
            .iter()
            .filter_map(|(_, d)| graph.claim(d, || d.clone(), 0))
            .collect();
        while !to_read.is_empty() {
            let read_from = &*graph.nodes;
            // Only documents are queued, and a document has the descriptor it is read by.
            let docs: Vec<(usize, R::Doc)> = to_read
                .par_iter()
                .filter_map(|&i| Some((i, reader.read(read_from[i].read_by()?))))
                .collect();
            let mut next = Vec::new();
            for (i, doc) in &docs {
                let depth = graph.nodes[*i].depth + 1;
                let children = followed(&*reader, options, doc);
                graph.reserve(children.len());
                next.extend(children.into_iter().filter_map(|c| {
                    graph.claim(c.descriptor, || Cow::Owned(c.descriptor.clone()), depth)
                }));
            }
            for (i, doc) in docs {
                graph.nodes[i].state = State::Read(doc);
            }
            to_read = next;
        }
    }

    /// Walks from those of `more` that would reach something new ([`Walk::covers`]) as further
    /// roots (numbered after the others); returns whether there was any. Callers that add the
    /// referrers of what they reached call it until nothing is new.
    pub fn add_uncovered(&mut self, mut more: Vec<Descriptor>) -> bool {
        more.retain(|d| !self.covers(d));
        if more.is_empty() {
            return false;
        }
        let first = self.roots.len();
        self.add_roots(
            more.into_iter()
                .enumerate()
                .map(|(i, d)| (Field::Root(first + i), Cow::Owned(d))),
        );
        true
    }

    /// The blob `digest`, if the walk reached it.
    pub fn node(&self, digest: &Digest) -> Option<&Node<'r, R::Doc>> {
        self.index.get(digest).map(|&i| &self.nodes[i])
    }

    /// Whether the walk reached `digest`.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.index.contains_key(digest)
    }

    /// Whether walking from `descriptor` would reach nothing new: its blob is reached, and
    /// read if the descriptor names a manifest or index.
    pub fn covers(&self, descriptor: &Descriptor) -> bool {
        self.node(&descriptor.digest).is_some_and(|node| {
            !Role::of(&descriptor.media_type).is_document() || node.doc().is_some()
        })
    }

    /// How many blobs the walk reached.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the walk reached nothing.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every blob reached, in the order first reached.
    pub fn nodes(&self) -> impl Iterator<Item = (&Digest, &Node<'r, R::Doc>)> {
        self.nodes.iter().map(|n| (&n.digest, n))
    }

    /// The roots given, in order.
    pub fn roots(&self) -> &[(Field, Cow<'r, Descriptor>)] {
        &self.roots
    }

    /// The descriptors the walk follows out of `node`: its children with the platform and
    /// subject options applied; none for a blob that was not read.
    pub fn children<'w>(&'w self, node: &'w Node<'r, R::Doc>) -> Vec<Child<'w>> {
        match &node.state {
            State::Read(doc) => followed(&self.reader, &self.options, doc),
            State::Leaf | State::TooDeep => Vec::new(),
        }
    }

    /// Replays the walk depth-first from the roots in order, each document's descriptors in
    /// document order: `visit` sees every descriptor where it appears (so a blob reached from
    /// two places is seen twice), entering and then leaving it. The replay goes into a
    /// document once, at the first descriptor that names it a manifest or index, and never
    /// around a cycle. It keeps its own stack, so a long chain cannot overflow the thread's.
    pub fn events(&self, mut visit: impl FnMut(&Event<'_, 'r, R::Doc>)) {
        struct Frame<'w> {
            from: Option<&'w Digest>,
            field: Field,
            descriptor: &'w Descriptor,
            children: std::vec::IntoIter<Child<'w>>,
        }
        let mut descended: HashSet<&Digest> = HashSet::new();
        let mut on_path: HashSet<&Digest> = HashSet::new();
        let mut stack: Vec<Frame<'_>> = Vec::new();
        let mut roots = self.roots.iter();
        loop {
            let (from, field, descriptor) = match stack.last_mut() {
                Some(frame) => match frame.children.next() {
                    Some(child) => (
                        Some(&frame.descriptor.digest),
                        child.field,
                        child.descriptor,
                    ),
                    None => {
                        let Some(done) = stack.pop() else { break };
                        on_path.remove(&done.descriptor.digest);
                        if let Some(node) = self.node(&done.descriptor.digest) {
                            visit(&Event {
                                step: Step::Leave,
                                from: done.from,
                                field: done.field,
                                descriptor: done.descriptor,
                                node,
                                cycle: false,
                                descend: true,
                            });
                        }
                        continue;
                    }
                },
                None => match roots.next() {
                    Some((field, descriptor)) => (None, *field, &**descriptor),
                    None => break,
                },
            };
            let Some(node) = self.node(&descriptor.digest) else {
                continue; // every descriptor followed was claimed: cannot happen
            };
            let names_document = Role::of(&descriptor.media_type).is_document();
            let cycle = names_document && on_path.contains(&descriptor.digest);
            let descend = names_document
                && !cycle
                && matches!(node.state, State::Read(_))
                && descended.insert(&descriptor.digest);
            let mut event = Event {
                step: Step::Enter,
                from,
                field,
                descriptor,
                node,
                cycle,
                descend,
            };
            visit(&event);
            if descend {
                on_path.insert(&descriptor.digest);
                stack.push(Frame {
                    from,
                    field,
                    descriptor,
                    children: self.children(node).into_iter(),
                });
            } else {
                event.step = Step::Leave;
                visit(&event);
            }
        }
    }

    /// The reached blobs, in the order first reached (for callers that take what the walk
    /// read).
    pub fn into_nodes(mut self) -> Vec<Node<'r, R::Doc>> {
        std::mem::take(&mut self.nodes)
    }
}

/// The nodes of a walk while claims are registered.
struct Claims<'w, 'r, D> {
    nodes: &'w mut Vec<Node<'r, D>>,
    index: &'w mut FastMap<Digest, usize>,
}

impl<'r, D> Claims<'_, 'r, D> {
    fn reserve(&mut self, more: usize) {
        self.nodes.reserve(more);
        self.index.reserve(more);
    }

    /// Records that `descriptor` reached a blob at `depth`; returns the blob's position when it
    /// must be read now: a document neither read nor queued yet, shallow enough.
    /// `owned` gives the descriptor to keep, when it is kept (a root's is borrowed).
    fn claim(
        &mut self,
        descriptor: &Descriptor,
        owned: impl FnOnce() -> Cow<'r, Descriptor>,
        depth: usize,
    ) -> Option<usize> {
        let role = Role::of(&descriptor.media_type);
        let i = match self.index.get(&descriptor.digest) {
            Some(&i) => i,
            None => {
                let i = self.nodes.len();
                self.index.insert(descriptor.digest.clone(), i);
                self.nodes.push(Node {
                    digest: descriptor.digest.clone(),
                    size: descriptor.size,
                    read_by: None,
                    role,
                    claims: 0,
                    depth,
                    queued: false,
                    state: State::Leaf,
                });
                i
            }
        };
        let node = &mut self.nodes[i];
        node.claims |= role.bit();
        node.depth = node.depth.min(depth);
        if !role.is_document() {
            if !node.role.is_document() {
                node.role = node.role.max(role);
            }
            return None;
        }
        if node.read_by.is_none() {
            // The first descriptor that names it a document: it says what it is (even when a
            // leaf's reached it first), and it is read by this one.
            node.role = role;
            node.size = descriptor.size;
            node.read_by = Some(Box::new(owned()));
        }
        if node.queued {
            return None; // read, or being read
        }
        if node.depth >= MAX_DEPTH {
            node.state = State::TooDeep;
            return None;
        }
        node.queued = true;
        Some(i)
    }
}

/// The children of `doc` that a walk with `options` follows.
fn followed<'d, R: Reader>(reader: &R, options: &Options, doc: &'d R::Doc) -> Vec<Child<'d>> {
    let mut children = reader.children(doc);
    if !options.subjects {
        children.retain(|c| c.field != Field::Subject);
    }
    if let Some(platform) = &options.platform {
        let chosen = select(&children, platform).map(|c| c.field);
        children.retain(|c| !matches!(c.field, Field::Manifest(_)) || Some(c.field) == chosen);
    }
    children
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::document::canonical;
    use crate::spec::document::media_type::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Documents in memory, counting reads.
    #[derive(Default)]
    struct Memory {
        blobs: HashMap<Digest, Vec<u8>>,
        reads: Mutex<Vec<Digest>>,
    }

    impl Memory {
        fn add(&mut self, value: serde_json::Value) -> Vec<u8> {
            let bytes = canonical::to_vec(&value);
            self.blobs.insert(Digest::sha256_of(&bytes), bytes.clone());
            bytes
        }

        fn reads(&self) -> Vec<Digest> {
            let mut reads = self.reads.lock().unwrap().clone();
            reads.sort();
            reads
        }
    }

    impl Reader for Memory {
        type Doc = Option<Document>;

        fn read(&self, descriptor: &Descriptor) -> Option<Document> {
            self.reads.lock().unwrap().push(descriptor.digest.clone());
            let bytes = self.blobs.get(&descriptor.digest)?;
            Document::parse(bytes, Some(&descriptor.media_type), "test").ok()
        }

        fn children<'d>(&self, doc: &'d Option<Document>) -> Vec<Child<'d>> {
            doc.as_ref().map(children_of).unwrap_or_default()
        }
    }

    fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256_of(bytes), bytes.len() as u64)
    }

    fn json(d: &Descriptor) -> serde_json::Value {
        serde_json::to_value(d).unwrap()
    }

    fn image(memory: &mut Memory, tag: &str) -> (Descriptor, Descriptor, Descriptor) {
        let config = memory.add(serde_json::json!({"architecture": tag, "os": "linux"}));
        let layer = format!("layer of {tag}").into_bytes();
        memory
            .blobs
            .insert(Digest::sha256_of(&layer), layer.clone());
        let config = descriptor(OCI_CONFIG, &config);
        let layer = descriptor(OCI_LAYER_GZIP, &layer);
        let manifest = memory.add(serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": json(&config), "layers": [json(&layer)],
        }));
        (descriptor(OCI_MANIFEST, &manifest), config, layer)
    }

    fn index(memory: &mut Memory, children: &[Descriptor]) -> Descriptor {
        let bytes = memory.add(serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": children.iter().map(json).collect::<Vec<_>>(),
        }));
        descriptor(OCI_INDEX, &bytes)
    }

    fn roots<'r>(descriptors: &[&'r Descriptor]) -> Vec<(Field, Cow<'r, Descriptor>)> {
        descriptors
            .iter()
            .enumerate()
            .map(|(i, d)| (Field::Root(i), Cow::Borrowed(*d)))
            .collect()
    }

    #[test]
    fn each_document_is_read_once_however_many_descriptors_reach_it() {
        let mut memory = Memory::default();
        let (a, config, layer) = image(&mut memory, "amd64");
        let inner = index(&mut memory, std::slice::from_ref(&a));
        let outer = index(&mut memory, &[a.clone(), inner.clone(), a.clone()]);
        let mut walk = Walk::new(memory, Options::default());
        walk.add_roots(roots(&[&outer, &a, &inner]));
        let mut expected = vec![a.digest.clone(), inner.digest.clone(), outer.digest.clone()];
        expected.sort();
        assert_eq!(walk.reader().reads(), expected);
        assert_eq!(walk.len(), 5, "three documents, a config and a layer");
        assert_eq!(walk.node(&config.digest).unwrap().role(), Role::Config);
        assert_eq!(walk.node(&layer.digest).unwrap().role(), Role::Layer);
        // Adding a root already reached reads nothing more.
        walk.add_roots(roots(&[&a]));
        assert_eq!(walk.reader().reads().len(), 3);
    }

    #[test]
    fn a_digest_is_followed_as_a_document_when_any_descriptor_says_it_is_one() {
        for leaf_first in [true, false] {
            let mut memory = Memory::default();
            let (image_manifest, _, layer) = image(&mut memory, "amd64");
            // An artifact whose layer has the very bytes of the image manifest.
            let as_blob = Descriptor::new(
                "application/octet-stream",
                image_manifest.digest.clone(),
                image_manifest.size,
            );
            let empty = memory.add(serde_json::json!({}));
            let artifact = memory.add(serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": json(&descriptor("application/vnd.oci.empty.v1+json", &empty)),
                "layers": [json(&as_blob)],
            }));
            let artifact = descriptor(OCI_MANIFEST, &artifact);
            // Variants: the artifact listed first (the leaf claim comes first, deeper in the
            // same walk), or the leaf claim made at a shallower level than the document one.
            let holder = index(&mut memory, std::slice::from_ref(&image_manifest));
            let mut walk = Walk::new(memory, Options::default());
            if leaf_first {
                walk.add_roots(roots(&[&artifact, &holder]));
            } else {
                walk.add_roots(roots(&[&holder, &artifact]));
            }
            let node = walk.node(&image_manifest.digest).unwrap();
            assert_eq!(node.role(), Role::Manifest);
            assert!(node.claimed(Role::Blob) && node.claimed(Role::Manifest));
            assert_eq!(node.read_by().unwrap().media_type, OCI_MANIFEST);
            assert!(walk.contains(&layer.digest), "the image's layer is reached");
        }
    }

    #[test]
    fn a_leaf_reached_in_an_earlier_walk_is_read_when_a_later_root_names_it_a_document() {
        let mut memory = Memory::default();
        let (m, _, layer) = image(&mut memory, "amd64");
        let as_config = Descriptor::new(OCI_CONFIG, m.digest.clone(), m.size);
        let mut walk = Walk::new(memory, Options::default());
        walk.add_roots(roots(&[&as_config]));
        assert!(!walk.contains(&layer.digest));
        assert_eq!(walk.node(&m.digest).unwrap().role(), Role::Config);
        walk.add_roots(roots(&[&m]));
        assert!(walk.contains(&layer.digest));
        assert_eq!(walk.node(&m.digest).unwrap().role(), Role::Manifest);
        assert!(walk.node(&m.digest).unwrap().claimed(Role::Config));
    }

    #[test]
    fn documents_deeper_than_the_limit_are_not_read() {
        let mut memory = Memory::default();
        let (m, _, _) = image(&mut memory, "amd64");
        let mut chain = vec![m];
        for _ in 0..MAX_DEPTH + 3 {
            let next = index(&mut memory, &[chain.last().unwrap().clone()]);
            chain.push(next);
        }
        let top = chain.last().unwrap().clone();
        let deep = chain[chain.len() - 1 - MAX_DEPTH].clone();
        let mut walk = Walk::new(memory, Options::default());
        walk.add_roots(roots(&[&top]));
        // chain[len-1] is at depth 0; the one at depth MAX_DEPTH is not read.
        let at = |depth: usize| &chain[chain.len() - 1 - depth].digest;
        assert!(matches!(
            walk.node(at(MAX_DEPTH - 1)).unwrap().state,
            State::Read(_)
        ));
        assert!(matches!(
            walk.node(at(MAX_DEPTH)).unwrap().state,
            State::TooDeep
        ));
        assert!(!walk.contains(at(MAX_DEPTH + 1)));
        assert_eq!(walk.reader().reads().len(), MAX_DEPTH);
        // The same document as a root is shallow enough: read now.
        walk.add_roots(roots(&[&deep]));
        assert!(matches!(
            walk.node(&deep.digest).unwrap().state,
            State::Read(_)
        ));
    }

    #[test]
    fn a_platform_narrows_every_index_to_its_first_match() {
        let mut memory = Memory::default();
        let (amd, _, amd_layer) = image(&mut memory, "amd64");
        let (arm, _, arm_layer) = image(&mut memory, "arm64");
        let (arm2, _, arm2_layer) = image(&mut memory, "arm64-2");
        let with = |d: &Descriptor, p: &str| Descriptor {
            platform: Some(p.parse().unwrap()),
            ..d.clone()
        };
        let top = index(
            &mut memory,
            &[
                with(&amd, "linux/amd64"),
                with(&arm, "linux/arm64"),
                with(&arm2, "linux/arm64"),
            ],
        );
        let options = Options {
            platform: Some("linux/arm64/v8".parse().unwrap()),
            subjects: false,
        };
        let mut walk = Walk::new(memory, options);
        walk.add_roots(roots(&[&top]));
        assert!(walk.contains(&arm_layer.digest));
        assert!(!walk.contains(&amd.digest) && !walk.contains(&amd_layer.digest));
        assert!(!walk.contains(&arm2.digest) && !walk.contains(&arm2_layer.digest));
    }

    #[test]
    fn subjects_are_followed_only_when_asked() {
        let mut memory = Memory::default();
        let (m, _, layer) = image(&mut memory, "amd64");
        let empty = memory.add(serde_json::json!({}));
        let empty = descriptor("application/vnd.oci.empty.v1+json", &empty);
        let referrer = memory.add(serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": json(&empty),
            "layers": [json(&empty)], "subject": json(&m),
        }));
        let referrer = descriptor(OCI_MANIFEST, &referrer);
        for subjects in [false, true] {
            let reader = Memory {
                blobs: memory.blobs.clone(),
                ..Memory::default()
            };
            let mut walk = Walk::new(
                reader,
                Options {
                    platform: None,
                    subjects,
                },
            );
            walk.add_roots(roots(&[&referrer]));
            assert_eq!(walk.contains(&layer.digest), subjects);
        }
    }

    #[test]
    fn events_replay_every_descriptor_in_document_order_and_stop_at_cycles() {
        let mut memory = Memory::default();
        let (m, config, layer) = image(&mut memory, "amd64");
        let inner = index(&mut memory, std::slice::from_ref(&m));
        let outer = index(&mut memory, &[inner.clone(), m.clone()]);
        let mut walk = Walk::new(memory, Options::default());
        walk.add_roots(roots(&[&outer]));
        let mut trace = Vec::new();
        walk.events(|e| {
            let name = |d: &Digest| {
                [(&outer, "outer"), (&inner, "inner"), (&m, "m")]
                    .iter()
                    .chain([(&config, "config"), (&layer, "layer")].iter())
                    .find(|(x, _)| &x.digest == d)
                    .map(|(_, n)| *n)
                    .unwrap()
            };
            let step = match e.step {
                Step::Enter => "+",
                Step::Leave => "-",
            };
            trace.push(format!(
                "{step}{}{}",
                name(&e.descriptor.digest),
                if e.descend { "*" } else { "" }
            ));
        });
        assert_eq!(
            trace.join(" "),
            "+outer* +inner* +m* +config -config +layer -layer -m* -inner* +m -m -outer*"
        );

        // A blob that claims to list itself: the replay does not go around.
        let mut memory = Memory::default();
        let fake = Digest::sha256_of(b"a lie");
        let body = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "digest": fake, "size": 1}],
        }))
        .unwrap();
        memory.blobs.insert(fake.clone(), body);
        let root = Descriptor::new(OCI_INDEX, fake.clone(), 1);
        let mut walk = Walk::new(memory, Options::default());
        walk.add_roots(roots(&[&root]));
        let mut cycles = 0;
        walk.events(|e| cycles += usize::from(e.step == Step::Enter && e.cycle));
        assert_eq!(cycles, 1);
        assert_eq!(walk.reader().reads().len(), 1);
    }

    #[test]
    fn blobs_are_listed_in_the_order_first_reached() {
        let mut memory = Memory::default();
        let images: Vec<Descriptor> = (0..64)
            .map(|i| image(&mut memory, &format!("arch{i}")).0)
            .collect();
        let refs: Vec<&Descriptor> = images.iter().collect();
        let mut walk = Walk::new(memory, Options::default());
        walk.add_roots(roots(&refs));
        assert_eq!(walk.reader().reads().len(), 64);
        assert_eq!(walk.len(), 64 * 3);
        let order: Vec<&Digest> = walk.nodes().map(|(d, _)| d).take(64).collect();
        let expected: Vec<&Digest> = images.iter().map(|d| &d.digest).collect();
        assert_eq!(order, expected, "roots are reached in the order given");
    }
}
