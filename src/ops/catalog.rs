//! What a layout's `index.json` holds, summarized for listing: images and indexes with their
//! platforms, sizes and referrer counts, apart from referrer bookkeeping.
//!
//! Referrer bookkeeping is recognized by [`crate::graph::referrers`] in both conventions of PRODUCT.md
//! §Referrers: untagged entries whose manifest has a `subject` (oras), and fallback-tag indexes
//! named `sha256-<hex>` (regctl). Neither is listed as an image; both count under their subject.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::graph::referrers::{Discovery, Scope};
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

/// What one manifest-like blob contributes to a listing.
#[derive(Clone, Debug, Default)]
struct Summary {
    artifact_type: Option<String>,
    platforms: Vec<String>,
    blobs: BTreeSet<(Digest, u64)>,
    children: Vec<Digest>,
    problem: Option<String>,
}

/// Reads a layout's `index.json` and the documents behind it, in parallel, each blob once.
pub fn load(layout: &dyn LayoutRead) -> Result<Catalog> {
    // Referrer bookkeeping (both conventions) is recognized by the referrers module.
    let discovery = Discovery::new(layout, Scope::default())?;
    let entries = discovery.index().entries();
    let listed: Vec<&Descriptor> = (0..entries.len())
        .filter(|&i| !discovery.is_bookkeeping(i))
        .map(|i| &entries[i])
        .collect();

    // Every distinct document behind a listed entry is summarized once, in parallel.
    let cache = SummaryCache::default();
    let mut unique: Vec<&Descriptor> = Vec::new();
    let mut seen = BTreeSet::new();
    for d in &listed {
        if seen.insert(&d.digest) {
            unique.push(d);
        }
    }
    unique
        .par_iter()
        .for_each(|d| drop(cache.summarize(layout, d, 0)));

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
        .map(|d| {
            let summary = cache.summarize(layout, d, 0);
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

#[derive(Default)]
struct SummaryCache {
    done: Mutex<HashMap<Digest, Summary>>,
}

impl SummaryCache {
    fn summarize(&self, layout: &dyn LayoutRead, d: &Descriptor, depth: usize) -> Summary {
        if let Ok(done) = self.done.lock() {
            if let Some(s) = done.get(&d.digest) {
                return s.clone();
            }
        }
        let summary = self.compute(layout, d, depth).unwrap_or_else(|e| Summary {
            problem: Some(e.to_string()),
            ..Summary::default()
        });
        if let Ok(mut done) = self.done.lock() {
            done.insert(d.digest.clone(), summary.clone());
        }
        summary
    }

    fn compute(&self, layout: &dyn LayoutRead, d: &Descriptor, depth: usize) -> Result<Summary> {
        let mut summary = Summary::default();
        summary.blobs.insert((d.digest.clone(), d.size));
        if !media_type::is_manifest_like(&d.media_type) || depth > 8 {
            return Ok(summary);
        }
        let bytes = layout.read_document(d)?;
        let document = Document::parse(
            &bytes,
            Some(&d.media_type),
            &format!("manifest {}", d.digest),
        )?;
        summary.artifact_type = document.listed_artifact_type().map(str::to_string);
        match document {
            Document::Manifest(m) => {
                let config_is_image = m
                    .config
                    .as_ref()
                    .is_some_and(|c| media_type::kind(&c.media_type) == Kind::Config);
                if let Some(config) = &m.config {
                    summary.blobs.insert((config.digest.clone(), config.size));
                    if config_is_image && d.platform.is_none() {
                        if let Some(p) = config_platform(layout, config)? {
                            summary.platforms.push(p);
                        }
                    }
                }
                for layer in m.content() {
                    summary.blobs.insert((layer.digest.clone(), layer.size));
                }
            }
            Document::Index(index) => {
                for child in &index.manifests {
                    summary.children.push(child.digest.clone());
                    let sub = self.summarize(layout, child, depth + 1);
                    match &child.platform {
                        Some(p) => summary.platforms.push(p.to_string()),
                        None => summary.platforms.extend(sub.platforms.iter().cloned()),
                    }
                    summary.blobs.extend(sub.blobs.iter().cloned());
                    summary.children.extend(sub.children.iter().cloned());
                    if summary.problem.is_none() {
                        summary.problem = sub.problem.clone();
                    }
                }
            }
        }
        Ok(summary)
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
