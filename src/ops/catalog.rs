//! What a layout's `index.json` holds, summarized for listing: images and indexes with their
//! platforms, sizes and referrer counts, apart from referrer bookkeeping.
//!
//! The documents are reached by the one walk ([`crate::graph::walk`]), sharing what referrer
//! discovery read, so each is read once and a blob is summarized as what any descriptor says
//! it is. Referrers are recognized by [`crate::graph::referrers`] in every convention of
//! PRODUCT.md §Referrers and count under their subject: entries whose manifest has a `subject`
//! (named or not) and fallback-tag indexes named `sha256-<hex>`. Bookkeeping — untagged
//! referrer entries and fallback-tag indexes — is not listed as a row; a named referrer is.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;

use crate::error::Result;
use crate::graph::documents::{Documents, FastMap, Loaded, Parsed};
use crate::graph::referrers::{is_bookkeeping, Discovery, Scope};
use crate::graph::walk::{self, Child, Field, Node, Reader, State, Walk, MAX_DEPTH};
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self, Kind};
use crate::spec::document::{differential, parse_json, Descriptor, Document, ImageConfig, Schema};
use crate::spec::platform::Platform;
use crate::store::layout::LayoutRead;

/// One listed image, index or artifact.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// `org.opencontainers.image.ref.name`, if the entry has one.
    pub name: Option<String>,
    pub digest: Digest,
    pub media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Platforms: the entry's own, its config's, or an index's children's.
    pub platforms: Vec<String>,
    /// Bytes of the manifest and everything it references (each blob once).
    pub size: Option<u64>,
    /// Referrers whose subject is this manifest (or, for an index, one of its children).
    pub referrers: usize,
    /// What could not be read, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The listing of a layout.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub rows: Vec<Row>,
    /// Referrers found in bookkeeping whose subject is not among the rows.
    pub detached_referrers: usize,
}

/// What a manifest or index, with everything below it, contributes to a listing (borrowed
/// from the walk: nothing is copied).
#[derive(Clone, Debug, Default)]
struct Summary<'w> {
    artifact_type: Option<&'w str>,
    platforms: Vec<String>,
    blobs: BTreeSet<(&'w Digest, u64)>,
    /// The manifests and indexes below it (whose referrers count under it too).
    children: Vec<&'w Digest>,
    problem: Option<String>,
}

/// Reads a layout's `index.json` and the documents behind it, in parallel, each blob once.
pub fn load(layout: &dyn LayoutRead) -> Result<Catalog> {
    let index = layout.index()?;
    let documents = Documents::new(layout);
    // One walk from every entry reads each document once, in parallel, an image's config in
    // the same task — bookkeeping included, so that referrer discovery below finds all it
    // reads (every entry's document, the fallback indexes and what they list) in the cache.
    let summaries: Vec<(usize, Totals)> = {
        let reader = Listing {
            documents: &documents,
        };
        let mut walk = Walk::new(reader, walk::Options::default());
        let entries = index.entries();
        walk.add_roots(
            entries
                .iter()
                .enumerate()
                .map(|(i, d)| (Field::Root(i), Cow::Borrowed(d))),
        );
        let mut summaries = Summaries {
            walk: &walk,
            done: FastMap::default(),
            in_progress: HashSet::new(),
        };
        entries
            .iter()
            .enumerate()
            .filter(|(_, d)| !is_bookkeeping(d, &documents))
            .map(|(i, d)| (i, summaries.of(&d.digest).totals()))
            .collect()
    };
    let discovery = Discovery::with_documents(documents, index, Scope::default())?;
    let entries = discovery.index().entries();

    // Referrers per subject, each once, merged from every convention.
    let referrers: HashMap<Digest, BTreeSet<Digest>> = discovery
        .subjects()
        .into_iter()
        .map(|subject| {
            let set = discovery
                .referrers(&subject)
                .into_iter()
                .map(|r| r.digest)
                .collect();
            (subject, set)
        })
        .collect();

    let mut attributed: BTreeSet<&Digest> = BTreeSet::new();
    let rows: Vec<Row> = summaries
        .into_iter()
        .map(|(i, totals)| {
            let d = &entries[i];
            let mut mine: BTreeSet<&Digest> = BTreeSet::new();
            for digest in std::iter::once(&d.digest).chain(totals.children.iter()) {
                if let Some((subject, set)) = referrers.get_key_value(digest) {
                    attributed.insert(subject);
                    mine.extend(set.iter());
                }
            }
            Row {
                name: d.ref_name().map(str::to_string),
                digest: d.digest.clone(),
                media_type: d.media_type.clone(),
                artifact_type: d.artifact_type.clone().or(totals.artifact_type),
                platforms: match &d.platform {
                    Some(p) => vec![p.to_string()],
                    None => totals.platforms,
                },
                size: totals.size,
                referrers: mine.len(),
                problem: totals.problem,
            }
        })
        .collect();
    // Referrers of referrers (signatures of SBOMs) are not detached: their subject is known.
    let all_referrers: BTreeSet<&Digest> = referrers.values().flatten().collect();
    let detached_referrers = referrers
        .iter()
        .filter(|(subject, _)| !attributed.contains(subject) && !all_referrers.contains(subject))
        .map(|(_, set)| set.len())
        .sum();
    Ok(Catalog {
        rows,
        detached_referrers,
    })
}

/// How `ls` reads a document for the walk: through the cache referrer discovery filled, and,
/// for an image manifest reached by a descriptor without a platform, its config's platform in
/// the same task (so configs are read in the walk's parallel batches, each once).
struct Listing<'d, 'a> {
    documents: &'d Documents<'a>,
}

/// A document as `ls` read it.
struct Listed {
    loaded: Arc<Loaded>,
    /// `os/arch[/variant]` from its config, when it is an image manifest that needs one; an
    /// error when the config is read differently by other tools.
    platform: Result<Option<String>>,
}

impl Reader for Listing<'_, '_> {
    type Doc = Listed;

    fn read(&self, descriptor: &Descriptor) -> Listed {
        let loaded = self.documents.get(descriptor);
        let platform = match &*loaded {
            Ok(Parsed {
                document: Document::Manifest(m),
                ..
            }) if descriptor.platform.is_none() => m
                .config
                .as_ref()
                .filter(|c| media_type::kind(&c.media_type) == Kind::Config)
                .map_or(Ok(None), |c| config_platform(self.documents.layout(), c)),
            _ => Ok(None),
        };
        Listed { loaded, platform }
    }

    fn children<'d>(&self, doc: &'d Listed) -> Vec<Child<'d>> {
        match &*doc.loaded {
            Ok(parsed) => walk::children_of(&parsed.document),
            Err(_) => Vec::new(),
        }
    }
}

/// What a listed entry's summary says, owned: rows are made once the walk is gone.
struct Totals {
    artifact_type: Option<String>,
    platforms: Vec<String>,
    /// Bytes of the manifest and everything it references, each blob once (none when
    /// something could not be read).
    size: Option<u64>,
    children: Vec<Digest>,
    problem: Option<String>,
}

impl Summary<'_> {
    fn totals(&self) -> Totals {
        Totals {
            artifact_type: self.artifact_type.map(str::to_string),
            platforms: self.platforms.clone(),
            size: self
                .problem
                .is_none()
                .then(|| self.blobs.iter().map(|(_, s)| s).sum()),
            children: self.children.iter().map(|d| (*d).clone()).collect(),
            problem: self.problem.clone(),
        }
    }
}

/// Summaries of what the walk reached, each document summarized once.
struct Summaries<'w, 'd, 'a> {
    walk: &'w Walk<'w, Listing<'d, 'a>>,
    done: FastMap<&'w Digest, Rc<Summary<'w>>>,
    /// Documents being summarized (an index that lists itself, through a lying blob, is cut).
    in_progress: HashSet<&'w Digest>,
}

impl<'w> Summaries<'w, '_, '_> {
    fn of(&mut self, digest: &Digest) -> Rc<Summary<'w>> {
        let walk = self.walk;
        let Some(node) = walk.node(digest) else {
            return Rc::default();
        };
        let digest = node.digest();
        if let Some(done) = self.done.get(digest) {
            return done.clone();
        }
        if !self.in_progress.insert(digest) {
            return Rc::default();
        }
        let summary = Rc::new(self.compute(node));
        self.in_progress.remove(digest);
        self.done.insert(digest, summary.clone());
        summary
    }

    fn compute(&mut self, node: &'w Node<Listed>) -> Summary<'w> {
        let digest = node.digest();
        let mut summary = Summary::default();
        summary.blobs.insert((digest, node.size()));
        let (parsed, platform) = match &node.state {
            State::Leaf => return summary,
            State::TooDeep => {
                summary.problem = Some(format!(
                    "indexes nest more than {MAX_DEPTH} deep here; {digest} was not read"
                ));
                return summary;
            }
            State::Read(listed) => match (&*listed.loaded, &listed.platform) {
                (Ok(parsed), Ok(platform)) => (parsed, platform),
                (Err(e), _) | (_, Err(e)) => {
                    summary.problem = Some(e.to_string());
                    return summary;
                }
            },
        };
        summary.artifact_type = parsed.document.listed_artifact_type();
        summary.platforms.extend(platform.iter().cloned());
        let is_index = matches!(parsed.document, Document::Index(_));
        for child in self.walk.children(node) {
            let below = child.descriptor;
            if !is_index {
                // A manifest's own config and layers. (Should one of them be a manifest as
                // well, as another descriptor says, it is listed and counted where that one is.)
                summary.blobs.insert((&below.digest, below.size));
                continue;
            }
            summary.children.push(&below.digest);
            let sub = self.of(&below.digest);
            match &below.platform {
                Some(p) => summary.platforms.push(p.to_string()),
                None => summary.platforms.extend(sub.platforms.iter().cloned()),
            }
            summary.blobs.extend(sub.blobs.iter().copied());
            summary.children.extend(sub.children.iter().copied());
            if summary.problem.is_none() {
                summary.problem = sub.problem.clone();
            }
        }
        summary
    }
}

/// `os/arch[/variant]` from an image config, when it can be read. A config that Go's
/// encoding/json reads differently is an error: its platform would be one tool's opinion.
fn config_platform(layout: &dyn LayoutRead, config: &Descriptor) -> Result<Option<String>> {
    let Ok(bytes) = layout.read_document(config) else {
        return Ok(None);
    };
    differential::check(&bytes, Schema::Config, &format!("config {}", config.digest))?;
    let platform = parse_json::<ImageConfig>(&bytes, "config")
        .ok()
        .and_then(|parsed| {
            Some(Platform {
                os: parsed.os?,
                architecture: parsed.architecture?,
                variant: parsed.variant,
                ..Platform::default()
            })
        });
    Ok(platform.map(|p| p.to_string()))
}
