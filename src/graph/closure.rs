//! Everything a copy of some images must carry: the closure of their roots under the one walk
//! ([`crate::graph::walk`]) — indexes, manifests, configs, layers — and, unless left out, their
//! referrers, and the referrers' referrers, to a fixpoint (a signature of an SBOM of an
//! image), found in every convention [`Discovery`] reads.
//!
//! The closure is read-only: copy, export, import and bundles take it and write it somewhere.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::graph::documents::Documents;
use crate::graph::referrers::{Discovery, Referrer};
use crate::graph::walk::{self, Field, State, Walk};
use crate::spec::digest::Digest;
use crate::spec::document::Descriptor;

/// What [`closure`] found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Closure {
    /// Every blob to carry, each once, with its size as its descriptors give it, in the order
    /// the walk first reached it.
    pub blobs: Vec<(Digest, u64)>,
    /// Every manifest and index read (roots, their children, referrers): the subjects whose
    /// referrer bookkeeping travels with them.
    pub documents: Vec<Digest>,
    /// Referrers found, each once, with the subject they were found under, in the order found.
    pub referrers: Vec<(Digest, Referrer)>,
    /// Layers the source does not hold whose descriptors say where else they are (`urls`:
    /// foreign and non-distributable layers): not carried, as registries do not carry them.
    pub foreign: Vec<Digest>,
    /// Referrers listed somewhere whose manifest cannot be read: not carried.
    pub unreadable: Vec<String>,
}

/// The closure of `roots` in the layout `discovery` reads (whose documents the walk shares).
/// `referrers`: whether referrers come along. A document that cannot be read, or that nests
/// deeper than the walk reads, is an error: what it references cannot be known, so a copy
/// would be incomplete.
pub fn closure(
    discovery: &Discovery<'_>,
    roots: &[Descriptor],
    referrers: bool,
) -> Result<Closure> {
    let documents = discovery.documents();
    let layout = documents.layout();
    let mut walk = Walk::new(documents, walk::Options::default());
    walk.add_roots(
        roots
            .iter()
            .enumerate()
            .map(|(i, d)| (Field::Root(i), Cow::Borrowed(d))),
    );
    let mut out = Closure::default();
    if referrers {
        add_referrers(discovery, &mut walk, &mut out);
    }
    // Foreign layers: leaves that some descriptor says live elsewhere too.
    let mut elsewhere: HashSet<&Digest> = HashSet::new();
    for (_, node) in walk.nodes() {
        for child in walk.children(node) {
            if child
                .descriptor
                .urls
                .as_ref()
                .is_some_and(|u| !u.is_empty())
            {
                elsewhere.insert(&child.descriptor.digest);
            }
        }
    }
    let mut failed: Option<Digest> = None;
    for (digest, node) in walk.nodes() {
        match &node.state {
            State::TooDeep => return Err(walk::too_deep(digest)),
            State::Read(loaded) => match &**loaded {
                Ok(_) => out.documents.push(digest.clone()),
                Err(_) => {
                    failed = Some(digest.clone());
                    break;
                }
            },
            State::Leaf if elsewhere.contains(digest) && layout.blob_len(digest)?.is_none() => {
                out.foreign.push(digest.clone());
                continue;
            }
            State::Leaf => {}
        }
        out.blobs.push((digest.clone(), node.size()));
    }
    drop(walk);
    if let Some(digest) = failed {
        // The walk is gone, so the cache holds the only copy of the error: it is moved out
        // whole (its kind and context), not repeated as text.
        return Err(match documents.take(&digest) {
            Some(Err(e)) => e,
            _ => Error::BlobNotFound {
                digest,
                layout: layout.name(),
            },
        });
    }
    Ok(out)
}

/// Adds the referrers of every document `walk` read to it, and theirs, until nothing is new.
fn add_referrers<'r>(
    discovery: &Discovery<'_>,
    walk: &mut Walk<'r, &Documents<'_>>,
    out: &mut Closure,
) {
    let mut asked: HashSet<Digest> = HashSet::new();
    let mut found: HashSet<Digest> = HashSet::new();
    // Until nothing new is found: each round asks about the documents the last one added.
    loop {
        let subjects: Vec<Digest> = walk
            .nodes()
            .filter(|(_, node)| node.doc().is_some())
            .map(|(digest, _)| digest.clone())
            .filter(|digest| asked.insert(digest.clone()))
            .collect();
        let mut more: Vec<Descriptor> = Vec::new();
        for subject in subjects {
            for referrer in discovery.referrers(&subject) {
                if let Some(problem) = &referrer.problem {
                    out.unreadable.push(format!(
                        "referrer {} of {subject}: {problem}",
                        referrer.digest
                    ));
                    continue;
                }
                if found.insert(referrer.digest.clone()) {
                    more.push(referrer.descriptor());
                    out.referrers.push((subject.clone(), referrer));
                }
            }
        }
        if !walk.add_uncovered(more) {
            break;
        }
    }
}
