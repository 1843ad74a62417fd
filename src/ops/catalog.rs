//! What a layout's `index.json` holds, summarized for listing: images and indexes with their
//! platforms, sizes and referrer counts, apart from referrer bookkeeping.
//!
//! The documents are reached by the one walk ([`crate::graph::walk`]), sharing what referrer
//! discovery read, so each is read once and a blob is summarized as what any descriptor says
//! it is. Referrers are recognized by [`crate::graph::referrers`] in every convention of
//! PRODUCT.md §Referrers and count under their subject: entries whose manifest has a `subject`
//! (named or not) and fallback-tag indexes named `sha256-<hex>`. Bookkeeping — untagged
//! referrer entries and fallback-tag indexes — is not listed as a row; a named referrer is.

use std::collections::{BTreeSet, HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::graph::documents::Documents;
use crate::graph::referrers::{Discovery, Scope};
use crate::graph::walk::{self, Field, State, Walk, MAX_DEPTH};
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self, Kind};
use crate::spec::document::{parse_json, Descriptor, Document, ImageConfig};
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

/// What a manifest or index, with everything below it, contributes to a listing.
#[derive(Clone, Debug, Default)]
struct Summary {
    artifact_type: Option<String>,
    platforms: Vec<String>,
    blobs: BTreeSet<(Digest, u64)>,
    /// The manifests and indexes below it (whose referrers count under it too).
    children: Vec<Digest>,
    problem: Option<String>,
}

/// Reads a layout's `index.json` and the documents behind it, in parallel, each blob once.
pub fn load(layout: &dyn LayoutRead) -> Result<Catalog> {
    // Referrer bookkeeping (both conventions) is recognized by the referrers module, which
    // reads every entry's document; the walk below shares what it read.
    let discovery = Discovery::new(layout, Scope::default())?;
    let entries = discovery.index().entries();
    let listed: Vec<(usize, &Descriptor)> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| !discovery.is_bookkeeping(*i))
        .collect();
    let mut walk = Walk::new(discovery.documents(), walk::Options::default());
    walk.add_roots(listed.iter().map(|(i, d)| (Field::Root(*i), (*d).clone())));
    let platforms = config_platforms(layout, &walk);
    let mut summaries = Summaries {
        walk: &walk,
        platforms: &platforms,
        done: HashMap::new(),
        in_progress: HashSet::new(),
    };

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
    let rows: Vec<Row> = listed
        .into_iter()
        .map(|(_, d)| {
            let summary = summaries.of(&d.digest);
            let mut mine: BTreeSet<&Digest> = BTreeSet::new();
            for digest in std::iter::once(&d.digest).chain(summary.children.iter()) {
                if let Some((subject, set)) = referrers.get_key_value(digest) {
                    attributed.insert(subject);
                    mine.extend(set.iter());
                }
            }
            Row {
                name: d.ref_name().map(str::to_string),
                digest: d.digest.clone(),
                media_type: d.media_type.clone(),
                artifact_type: d.artifact_type.clone().or(summary.artifact_type.clone()),
                platforms: match &d.platform {
                    Some(p) => vec![p.to_string()],
                    None => summary.platforms.clone(),
                },
                size: summary
                    .problem
                    .is_none()
                    .then(|| summary.blobs.iter().map(|(_, s)| s).sum()),
                referrers: mine.len(),
                problem: summary.problem.clone(),
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

/// Summaries of what the walk reached, each document summarized once.
struct Summaries<'w, 'a> {
    walk: &'w Walk<&'w Documents<'a>>,
    /// The platform of each image manifest whose config says one (see [`config_platforms`]).
    platforms: &'w HashMap<Digest, String>,
    done: HashMap<Digest, Summary>,
    /// Documents being summarized (an index that lists itself, through a lying blob, is cut).
    in_progress: HashSet<Digest>,
}

impl Summaries<'_, '_> {
    fn of(&mut self, digest: &Digest) -> Summary {
        if let Some(done) = self.done.get(digest) {
            return done.clone();
        }
        if !self.in_progress.insert(digest.clone()) {
            return Summary::default();
        }
        let summary = self.compute(digest);
        self.in_progress.remove(digest);
        self.done.insert(digest.clone(), summary.clone());
        summary
    }

    fn compute(&mut self, digest: &Digest) -> Summary {
        let mut summary = Summary::default();
        let Some(node) = self.walk.node(digest) else {
            return summary;
        };
        summary.blobs.insert((digest.clone(), node.descriptor.size));
        let parsed = match &node.state {
            State::Leaf => return summary,
            State::TooDeep => {
                summary.problem = Some(format!(
                    "indexes nest more than {MAX_DEPTH} deep here; {digest} was not read"
                ));
                return summary;
            }
            State::Read(loaded) => match &**loaded {
                Ok(parsed) => parsed,
                Err(e) => {
                    summary.problem = Some(e.to_string());
                    return summary;
                }
            },
        };
        summary.artifact_type = parsed.document.listed_artifact_type().map(str::to_string);
        if let Some(platform) = self.platforms.get(digest) {
            summary.platforms.push(platform.clone());
        }
        let is_index = matches!(parsed.document, Document::Index(_));
        for child in self.walk.children(node) {
            let below = &child.descriptor;
            if !is_index {
                // A manifest's own config and layers. (Should one of them be a manifest as
                // well, as another descriptor says, it is listed and counted where that one is.)
                summary.blobs.insert((below.digest.clone(), below.size));
                continue;
            }
            summary.children.push(below.digest.clone());
            let sub = self.of(&below.digest);
            match &below.platform {
                Some(p) => summary.platforms.push(p.to_string()),
                None => summary.platforms.extend(sub.platforms.iter().cloned()),
            }
            summary.blobs.extend(sub.blobs.iter().cloned());
            summary.children.extend(sub.children.iter().cloned());
            if summary.problem.is_none() {
                summary.problem = sub.problem.clone();
            }
        }
        summary
    }
}

/// `os/arch[/variant]` of every image manifest that some descriptor without a platform reaches
/// (an entry, or an index child), from its config: configs are read in parallel, each once.
fn config_platforms(
    layout: &dyn LayoutRead,
    walk: &Walk<&Documents<'_>>,
) -> HashMap<Digest, String> {
    let mut wanted: HashSet<&Digest> = walk
        .roots()
        .iter()
        .filter(|(_, d)| d.platform.is_none())
        .map(|(_, d)| &d.digest)
        .collect();
    for (_, node) in walk.nodes() {
        for child in walk.children(node) {
            if matches!(child.field, Field::Manifest(_)) && child.descriptor.platform.is_none() {
                wanted.insert(&child.descriptor.digest);
            }
        }
    }
    let mut configs: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    let mut by_config: HashMap<&Digest, &Descriptor> = HashMap::new();
    for manifest in wanted {
        let Some(Ok(parsed)) = walk
            .node(manifest)
            .and_then(|n| n.doc())
            .map(|d| d.as_ref())
        else {
            continue;
        };
        let Document::Manifest(m) = &parsed.document else {
            continue;
        };
        if let Some(config) = m
            .config
            .as_ref()
            .filter(|c| media_type::kind(&c.media_type) == Kind::Config)
        {
            configs.entry(&config.digest).or_default().push(manifest);
            by_config.insert(&config.digest, config);
        }
    }
    let read: Vec<(&Digest, Option<String>)> = by_config
        .par_iter()
        .map(|(digest, config)| (*digest, config_platform(layout, config)))
        .collect();
    let mut platforms = HashMap::new();
    for (config, platform) in read {
        let Some(platform) = platform else { continue };
        for manifest in configs.get(config).into_iter().flatten() {
            platforms.insert((*manifest).clone(), platform.clone());
        }
    }
    platforms
}

/// `os/arch[/variant]` from an image config, when it can be read.
fn config_platform(layout: &dyn LayoutRead, config: &Descriptor) -> Option<String> {
    let bytes = layout.read_document(config).ok()?;
    let parsed: ImageConfig = parse_json(&bytes, "config").ok()?;
    Some(
        Platform {
            os: parsed.os?,
            architecture: parsed.architecture?,
            variant: parsed.variant,
            ..Platform::default()
        }
        .to_string(),
    )
}
