//! Turning a [`Reference`] into the manifest or index it names.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::graph::documents::{require_document, Documents, Parsed};
use crate::graph::referrers::{is_bookkeeping, is_fallback_tag};
use crate::graph::walk::{Field, Options, State, Walk, MAX_DEPTH};
use crate::spec::digest::Digest;
use crate::spec::document::{Descriptor, Document};
use crate::spec::platform::Platform;
use crate::spec::reference::Reference;
use crate::store::layout::{IndexFile, LayoutRead};

/// A resolved manifest or index, with its bytes.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The descriptor it was reached by (an `index.json` entry, an index child, or made from the
    /// blob when selected by digest alone).
    pub descriptor: Descriptor,
    /// The name of the `index.json` entry, when selected through one.
    pub name: Option<String>,
    /// The document's bytes, verified against the descriptor.
    pub bytes: Vec<u8>,
    pub document: Document,
}

impl Resolved {
    /// Fails unless the document really is a manifest or index
    /// ([`crate::graph::documents::is_document`]). Every command that records a claim
    /// about it — a name, a `subject` — checks this first, so that no entry ever says
    /// "manifest" of bytes that are not one.
    pub fn require_document(&self) -> Result<()> {
        require_document(
            &self.document,
            &self.descriptor.media_type,
            &self.descriptor.digest,
        )
    }
}

/// Finds what `reference` names in `layout` and loads it. With `platform`, an index is
/// narrowed to its first matching manifest (image-spec 1.1: first match wins).
pub fn resolve(
    layout: &dyn LayoutRead,
    reference: &Reference,
    platform: Option<&Platform>,
) -> Result<Resolved> {
    resolve_in(layout, &layout.index()?, reference, platform)
}

/// [`resolve`] against an `index.json` already read (inside the index lock, say), so that it is
/// not parsed twice.
pub fn resolve_in(
    layout: &dyn LayoutRead,
    index: &IndexFile,
    reference: &Reference,
    platform: Option<&Platform>,
) -> Result<Resolved> {
    let entries = index.entries();
    let layout_name = layout.name();
    let documents = Documents::keeping_bytes(layout);

    let picked: Option<&Descriptor> = if let Some(name) = &reference.name {
        let mut matches: Vec<&Descriptor> = match_name(entries, name)
            .into_iter()
            .map(|i| &entries[i])
            .collect();
        if let Some(digest) = &reference.digest {
            matches.retain(|d| &d.digest == digest);
        }
        if matches.is_empty() {
            let mut available: Vec<String> = entries
                .iter()
                .filter_map(|d| d.ref_name())
                .filter(|n| !is_fallback_tag(n))
                .map(str::to_string)
                .collect();
            available.dedup();
            return Err(Error::NameNotFound {
                name: match &reference.digest {
                    Some(d) => format!("{name}@{d}"),
                    None => name.clone(),
                },
                layout: layout_name,
                available,
            });
        }
        Some(unique(matches, format!("name {name:?}"), &layout_name)?)
    } else if let Some(digest) = &reference.digest {
        entries.iter().find(|d| &d.digest == digest)
    } else {
        // Referrer bookkeeping is set aside (one answer, see `is_bookkeeping`): an entry that
        // cannot be read stays a candidate, so that it is never silently passed over.
        let candidates: Vec<&Descriptor> = entries
            .iter()
            .filter(|d| !is_bookkeeping(d, &documents))
            .collect();
        if candidates.is_empty() {
            return Err(Error::EmptyLayout {
                layout: layout_name,
            });
        }
        Some(unique(
            candidates,
            "a reference without a name".to_string(),
            &layout_name,
        )?)
    };

    match picked {
        Some(d) => load(
            &documents,
            d.clone(),
            d.ref_name().map(str::to_string),
            platform,
        ),
        None => {
            // Selected by a digest that no index.json entry carries: any manifest or index in
            // blobs/. No descriptor says what the blob is, so it must say so itself.
            let digest = reference
                .digest
                .clone()
                .ok_or_else(|| Error::InvalidInput {
                    what: reference.to_string(),
                    reason: "names neither an image nor a digest".into(),
                })?;
            let loaded = documents.by_digest(&digest, None);
            let descriptor = match &*loaded {
                Ok(parsed) => {
                    parsed.require_document(&digest)?;
                    Descriptor::new(parsed.media_type.clone(), digest.clone(), parsed.size)
                }
                Err(_) => {
                    drop(loaded);
                    return Err(match taken(&documents, &digest) {
                        Err(e) => e,
                        Ok(_) => Error::BlobNotFound {
                            digest: digest.clone(),
                            layout: documents.layout().name(),
                        },
                    });
                }
            };
            drop(loaded);
            load(&documents, descriptor, None, platform)
        }
    }
}

/// Indexes of the entries a name selects: those whose `org.opencontainers.image.ref.name` or
/// `io.containerd.image.name` is exactly `name`, or failing that, those whose name ends in
/// `:name`.
pub fn match_name(entries: &[Descriptor], name: &str) -> Vec<usize> {
    let exact: Vec<usize> = (0..entries.len())
        .filter(|&i| {
            entries[i].ref_name() == Some(name) || entries[i].containerd_name() == Some(name)
        })
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    let suffix = format!(":{name}");
    (0..entries.len())
        .filter(|&i| entries[i].ref_name().is_some_and(|n| n.ends_with(&suffix)))
        .collect()
}

/// Loads the document behind `descriptor`. With `platform`, an index is narrowed by the walk
/// ([`crate::graph::walk`]) to the child the platform selects, through nested indexes, down to
/// one manifest.
fn load(
    documents: &Documents<'_>,
    descriptor: Descriptor,
    name: Option<String>,
    platform: Option<&Platform>,
) -> Result<Resolved> {
    let chosen = match platform {
        Some(wanted) => narrow(documents, descriptor, wanted)?,
        None => descriptor,
    };
    drop(documents.get(&chosen));
    let parsed = taken(documents, &chosen.digest)?;
    let bytes = match parsed.bytes {
        Some(bytes) => bytes,
        None => documents.layout().read_document(&chosen)?,
    };
    Ok(Resolved {
        descriptor: chosen,
        name,
        bytes,
        document: parsed.document,
    })
}

/// The descriptor of the manifest `platform` selects below `root`: the walk keeps one child of
/// each index, so what it reached from the root is a chain, followed here to its end.
fn narrow(documents: &Documents<'_>, root: Descriptor, platform: &Platform) -> Result<Descriptor> {
    let options = Options {
        platform: Some(platform.clone()),
        subjects: false,
    };
    let mut walk = Walk::new(documents, options);
    walk.add_roots([(Field::Root(0), Cow::Borrowed(&root))]);
    let mut chosen = root.clone();
    for _ in 0..=MAX_DEPTH {
        let Some(node) = walk.node(&chosen.digest) else {
            break;
        };
        let index = match &node.state {
            State::TooDeep => break,
            State::Read(loaded) => match &**loaded {
                Ok(Parsed {
                    document: Document::Index(index),
                    ..
                }) => index,
                // A manifest: the end. (A read error is the caller's to report.)
                _ => return Ok(chosen),
            },
            // Not named a manifest or index by its descriptor: read as it is.
            State::Leaf => return Ok(chosen),
        };
        let children = walk.children(node);
        match children
            .iter()
            .find(|c| matches!(c.field, Field::Manifest(_)))
        {
            Some(child) => chosen = child.descriptor.clone(),
            None => {
                return Err(Error::NoPlatformMatch {
                    digest: chosen.digest.clone(),
                    platform: platform.to_string(),
                    available: index
                        .manifests
                        .iter()
                        .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
                        .collect(),
                })
            }
        }
    }
    Err(Error::Limit {
        what: format!("indexes below {}", walk.roots()[0].1.digest),
        detail: format!("nest more than {MAX_DEPTH} deep"),
    })
}

/// The document `digest` read into `documents`, taken out of it (so that an error is the
/// caller's to return).
fn taken(documents: &Documents<'_>, digest: &Digest) -> Result<Parsed> {
    documents.take(digest).unwrap_or_else(|| {
        Err(Error::BlobNotFound {
            digest: digest.clone(),
            layout: documents.layout().name(),
        })
    })
}

/// The one descriptor among `matches`, or an ambiguity error listing them.
fn unique<'a>(matches: Vec<&'a Descriptor>, what: String, layout: &str) -> Result<&'a Descriptor> {
    let first = matches[0];
    if matches.iter().all(|d| d.digest == first.digest) {
        return Ok(first);
    }
    Err(Error::Ambiguous {
        what,
        layout: layout.to_string(),
        candidates: matches
            .iter()
            .map(|d| match d.ref_name() {
                Some(n) => format!("{n} ({})", d.digest),
                None => d.digest.to_string(),
            })
            .collect(),
    })
}
