//! Garbage collection: mark from `index.json`, keep the referrers of what is kept, sweep the
//! rest.
//!
//! - **Roots** are every `index.json` entry, tagged or untagged (the image-spec's root set),
//!   except referrer bookkeeping: untagged entries whose manifest has a `subject`, and
//!   fallback-tag indexes (`sha256-<hex>`). Those do not keep their subject alive. A named
//!   referrer is a root like any named entry.
//! - **Mark** is the one walk ([`crate::graph::walk`]): indexes → manifests → configs and
//!   layers, a blob followed as a manifest or index whenever any descriptor says it is one
//!   (wherever and whenever that descriptor is met). Unknown media types are leaves;
//!   referenced-but-missing blobs (foreign layers) are tolerated. `subject` is not followed: a
//!   referrer does not keep its subject.
//! - **Referrers** of a kept manifest are kept, and theirs, to a fixpoint (a signature of an
//!   SBOM of an image). They are found in all three conventions, including blob-only referrers
//!   (the unmarked blobs, and those reached only as an artifact's file, are scanned, reading
//!   only those that start like JSON), so a cosign signature of a kept image is never swept.
//!   Referrers whose subject is not kept are orphans: their entries and fallback-tag indexes
//!   go, unless `keep_orphans`.
//! - **Never delete when unsure**: a reachable document that cannot be read or parsed, or one
//!   nested deeper than the walk reads, stops gc before anything is deleted.
//! - **What went**: each removed blob is reported with what it was. No descriptor from
//!   `index.json` reaches it any more, so gc says what the removed documents say: a manifest or
//!   index (a referrer when it has a subject) of itself, a config or layer of what it listed.
//!   Anything else is an unreferenced blob.
//! - **Order**: `index.json` is rewritten first (atomically), then blobs are deleted, so a crash
//!   in between leaves only unreferenced blobs. The whole run holds the blobs lock exclusively,
//!   so no writer is between writing a blob and referencing it (ARCHITECTURE.md §Locking).
//!   Temp files of crashed writers are removed only then, when no writer can hold the layout.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::graph::documents::{Documents, FastMap};
use crate::graph::referrers::{fallback_tag_subject, Discovery, Referrer, Scope};
use crate::graph::walk::{self, children_of, Field, Role, State, Walk};
use crate::spec::digest::Digest;
use crate::spec::document::{Descriptor, Document};
use crate::store::layout::{
    blob_file_digest, FileInfo, FileKind, IndexFile, Layout, LayoutRead, MAX_DOCUMENT_SIZE,
    TEMP_PREFIX,
};

/// How to collect.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// Report what would go, change nothing.
    pub dry_run: bool,
    /// Keep referrers whose subject is not kept (and their bookkeeping).
    pub keep_orphans: bool,
    /// Also drop untagged entries that are not referrers of something kept.
    pub prune_untagged: bool,
}

/// A removed (or, in a dry run, removable) blob.
#[derive(Clone, Debug, Serialize)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    /// What it was.
    pub was: Was,
    /// For a config or layer, the manifest that listed it; for a referrer, its subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of: Option<Digest>,
}

/// What a removed blob was. It is no longer reachable, so no descriptor from `index.json` says
/// what it is: gc tells by reading it — a JSON manifest or index (a referrer if it has a
/// subject) says so itself, and such a document says what its config and layers were. Any
/// other blob is only an unreferenced blob; gc does not guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Was {
    Manifest,
    Index,
    Referrer,
    Config,
    Layer,
    /// Nothing that is being removed says what it was.
    Unreferenced,
}

impl Was {
    /// How it is written for people: `manifest`, …, `unreferenced blob`.
    pub fn name(self) -> &'static str {
        match self {
            Was::Manifest => "manifest",
            Was::Index => "index",
            Was::Referrer => "referrer",
            Was::Config => "config",
            Was::Layer => "layer",
            Was::Unreferenced => "unreferenced blob",
        }
    }
}

/// A removed `index.json` entry and why it went.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub digest: Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub reason: &'static str,
}

/// What gc did (or would do).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Outcome {
    pub dry_run: bool,
    pub removed_blobs: Vec<Blob>,
    pub removed_bytes: u64,
    pub kept_blobs: usize,
    pub kept_bytes: u64,
    pub removed_entries: Vec<Entry>,
    /// Temp files of interrupted writes, relative to the layout.
    pub removed_temp_files: Vec<String>,
    /// Things under `blobs/` gc left alone (not regular files, names that are not digests).
    pub skipped: Vec<String>,
}

/// Collects garbage in `layout`.
pub fn gc(layout: &Layout, options: &Options) -> Result<Outcome> {
    let exclusive = layout.exclusive()?;
    let mut outcome = Outcome {
        dry_run: options.dry_run,
        ..Outcome::default()
    };
    // Listed once, under the lock: no writer can add a blob until gc is done. Nothing is
    // stat'ed here: kept blobs' sizes come from their descriptors, and only unmarked blobs
    // (candidates for removal) are looked at closer.
    let files = layout.list(false)?;
    let blobs: Vec<Digest> = files
        .iter()
        .filter(|f| f.kind == FileKind::Regular)
        .filter_map(|f| blob_file_digest(&f.path)?.ok())
        .collect();
    let marked = exclusive.update_index(|index| {
        let (marked, removals) = mark(layout, index, &blobs, options)?;
        let changed = !removals.is_empty() && !options.dry_run;
        if changed {
            let doomed: BTreeSet<usize> = removals.iter().map(|(i, _)| *i).collect();
            index.remove_positions(&doomed);
        }
        outcome.removed_entries = removals.into_iter().map(|(_, e)| e).collect();
        Ok((marked, changed))
    })?;
    sweep(layout, &files, &marked, options, &mut outcome)?;
    Ok(outcome)
}

/// `index.json` entries to remove, by position.
type Removals = Vec<(usize, Entry)>;

/// What marking decided about the blobs of `blobs/`.
struct Marked {
    /// How many are kept, and their bytes (as their descriptors give them).
    kept_blobs: usize,
    kept_bytes: u64,
    /// The others, with what they were (where a document gc read says so).
    removable: FastMap<Digest, (Was, Option<Digest>)>,
}

/// Marks what is kept; returns it, what the rest was, and the entries to remove.
fn mark(
    layout: &Layout,
    index: &IndexFile,
    blobs: &[Digest],
    options: &Options,
) -> Result<(Marked, Removals)> {
    // Every entry's document is read once here, and shared with the walk.
    let discovery = Discovery::with_index(layout, index.clone(), Scope { scan: false })?;
    let documents = discovery.documents();
    let entries = index.entries();
    let mut walk = Walk::new(documents, walk::Options::default());
    // Roots: every entry but referrer bookkeeping. A named referrer is a root: its name is
    // someone's claim on it.
    walk.add_roots(
        entries
            .iter()
            .enumerate()
            .filter(|(i, entry)| {
                let pruned = options.prune_untagged && entry.ref_name().is_none();
                !pruned && !discovery.is_bookkeeping(*i)
            })
            .map(|(i, entry)| (Field::Root(i), Cow::Borrowed(entry))),
    );
    // Referrers of kept manifests, and theirs, until nothing changes: those recorded in
    // index.json (named or not) and fallback indexes (which are kept with their subject), and
    // blob-only ones (cosign). A blob-only referrer is among the blobs not yet marked, or among
    // those reached only as an artifact's file: only those are read — once, and only those
    // that start like JSON — which keeps gc off the layers.
    let tags: Vec<(Digest, usize)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((e.ref_name().and_then(fallback_tag_subject)?, i)))
        .collect();
    let subjects = discovery.subjects();
    let mut blob_only: Option<Vec<(Digest, Descriptor)>> = None;
    loop {
        let kept = |digest: &Digest| options.keep_orphans || walk.contains(digest);
        let mut more: Vec<Descriptor> = Vec::new();
        for subject in subjects.iter().filter(|s| kept(s)) {
            more.extend(
                discovery
                    .referrers(subject)
                    .iter()
                    .map(Referrer::descriptor),
            );
        }
        more.extend(
            tags.iter()
                .filter(|(subject, _)| kept(subject))
                .map(|(_, i)| entries[*i].clone()),
        );
        if blob_only.is_none() {
            blob_only = Some(find_blob_only_referrers(layout, documents, blobs, &walk)?);
        }
        let found = blob_only.as_ref().map_or(&[][..], Vec::as_slice);
        more.extend(
            found
                .iter()
                .filter(|(subject, _)| kept(subject))
                .map(|(_, referrer)| referrer.clone()),
        );
        if !walk.add_uncovered(more) {
            break;
        }
    }
    // Never delete when unsure: a kept document that cannot be read or parsed, or one nested
    // too deep to be read, references blobs gc cannot know. A missing one references nothing
    // that could be kept.
    for (digest, node) in walk.nodes() {
        match &node.state {
            State::TooDeep => {
                return Err(Error::Stopped {
                    operation: "gc",
                    source: Box::new(walk::too_deep(digest)),
                })
            }
            State::Read(loaded) => match &**loaded {
                Ok(_) | Err(Error::BlobNotFound { .. }) => {}
                Err(e) => {
                    return Err(Error::Stopped {
                        operation: "gc",
                        source: Box::new(e.repeated()),
                    })
                }
            },
            State::Leaf => {}
        }
    }
    // Bookkeeping stays only for kept subjects and kept referrers.
    let mut removals = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let name = entry.ref_name().map(str::to_string);
        let reason = if let Some(subject) = name.as_deref().and_then(fallback_tag_subject) {
            (!options.keep_orphans && !walk.contains(&subject))
                .then_some("fallback tag of a subject that is not kept")
        } else if discovery.is_bookkeeping(i) {
            (!walk.contains(&entry.digest)).then_some("referrer of a subject that is not kept")
        } else {
            (options.prune_untagged && name.is_none())
                .then_some("untagged, and untagged entries are pruned")
        };
        if let Some(reason) = reason {
            let digest = entry.digest.clone();
            removals.push((
                i,
                Entry {
                    digest,
                    name,
                    reason,
                },
            ));
        }
    }
    let mut marked = Marked {
        kept_blobs: 0,
        kept_bytes: 0,
        removable: FastMap::default(),
    };
    for digest in blobs {
        match walk.node(digest) {
            Some(node) => {
                marked.kept_blobs += 1;
                marked.kept_bytes += node.size();
            }
            None => {
                let was = (Was::Unreferenced, None);
                marked.removable.insert(digest.clone(), was);
            }
        }
    }
    what_they_were(documents, &mut marked.removable);
    Ok((marked, removals))
}

/// Manifests with a `subject` among the blobs the walk has not read as documents — unmarked
/// blobs, and blobs reached only as an artifact's file (which may hold the very bytes of a
/// referrer): (subject, the referrer).
fn find_blob_only_referrers(
    layout: &Layout,
    documents: &Documents<'_>,
    blobs: &[Digest],
    walk: &Walk<&Documents<'_>>,
) -> Result<Vec<(Digest, Descriptor)>> {
    let found: Vec<Result<Option<(Digest, Descriptor)>>> = blobs
        .par_iter()
        .filter(|digest| {
            walk.node(digest)
                .is_none_or(|n| n.role() == Role::Blob && n.doc().is_none())
        })
        .map(|digest| {
            let Some(len) = layout.blob_len(digest).ok().flatten() else {
                return Ok(None);
            };
            if len > MAX_DOCUMENT_SIZE {
                return Ok(None);
            }
            // A blob that starts like JSON and is a manifest or index with a subject.
            let Some(loaded) = documents.sniff(digest, len).ok().flatten() else {
                return Ok(None);
            };
            let parsed = match loaded.as_ref() {
                Ok(parsed) => parsed,
                // Other tools may read it as a referrer of a kept image: refuse to guess.
                Err(Error::ReadDifferently {
                    file,
                    pointer,
                    message,
                }) => {
                    return Err(Error::Stopped {
                        operation: "gc",
                        source: Box::new(Error::ReadDifferently {
                            file: file.clone(),
                            pointer: pointer.clone(),
                            message: message.clone(),
                        }),
                    })
                }
                Err(_) => return Ok(None),
            };
            let Some(subject) = parsed.document.subject().filter(|_| parsed.is_document()) else {
                return Ok(None);
            };
            let referrer = Descriptor::new(parsed.media_type.clone(), digest.clone(), len);
            Ok(Some((subject.digest.clone(), referrer)))
        })
        .collect();
    found.into_iter().filter_map(Result::transpose).collect()
}

/// What the blobs that are not kept (the keys of `removable`) were, as far as the documents
/// gc read say: a manifest or index says what it is itself (a referrer when it has a subject)
/// and what its config and layers are. The others stay unreferenced blobs.
fn what_they_were(
    documents: &Documents<'_>,
    removable: &mut FastMap<Digest, (Was, Option<Digest>)>,
) {
    let mut garbage: Vec<Digest> = removable.keys().cloned().collect();
    garbage.sort(); // the same answer every run, whatever the map's order
    for digest in garbage {
        let Some(loaded) = documents.cached(&digest) else {
            continue;
        };
        let Ok(parsed) = &*loaded else {
            continue;
        };
        if !parsed.is_document() {
            continue;
        }
        let own = match (&parsed.document, parsed.document.subject()) {
            (_, Some(subject)) => (Was::Referrer, Some(subject.digest.clone())),
            (Document::Index(_), None) => (Was::Index, None),
            (Document::Manifest(_), None) => (Was::Manifest, None),
        };
        // What a document says of itself wins over what its parent says of it.
        removable.insert(digest.clone(), own);
        for child in children_of(&parsed.document) {
            let label = match child.field {
                Field::Config => Was::Config,
                Field::Layer(_) | Field::Blob(_) => Was::Layer,
                Field::Manifest(_) | Field::Subject | Field::Root(_) => continue,
            };
            if let Some(entry) = removable.get_mut(&child.descriptor.digest) {
                if entry.0 == Was::Unreferenced {
                    *entry = (label, Some(digest.clone()));
                }
            }
        }
    }
}

/// Deletes unmarked blobs and temp files (or lists them in a dry run).
fn sweep(
    layout: &Layout,
    files: &[FileInfo],
    marked: &Marked,
    options: &Options,
    outcome: &mut Outcome,
) -> Result<()> {
    outcome.kept_blobs = marked.kept_blobs;
    outcome.kept_bytes = marked.kept_bytes;
    let mut touched_dirs = BTreeSet::new();
    for file in files {
        let base = file.path.rsplit('/').next().unwrap_or(&file.path);
        if base.starts_with(TEMP_PREFIX) && file.kind == FileKind::Regular {
            if !options.dry_run {
                remove(layout, &file.path)?;
            }
            outcome.removed_temp_files.push(file.path.clone());
            continue;
        }
        let digest = match blob_file_digest(&file.path) {
            None => continue,
            Some(Ok(d)) => d,
            Some(Err(_)) => {
                if file.kind != FileKind::Directory {
                    outcome
                        .skipped
                        .push(format!("{} (not named after a digest)", file.path));
                }
                continue;
            }
        };
        if file.kind != FileKind::Regular {
            outcome
                .skipped
                .push(format!("{} (not a regular file)", file.path));
            continue;
        }
        let Some((was, of)) = marked.removable.get(&digest).cloned() else {
            continue; // kept (counted by marking)
        };
        let len = layout.blob_len(&digest)?.unwrap_or(0);
        if !options.dry_run {
            remove(layout, &file.path)?;
            touched_dirs.insert(format!("blobs/{}", digest.algorithm()));
        }
        outcome.removed_bytes += len;
        outcome.removed_blobs.push(Blob {
            digest,
            size: len,
            was,
            of,
        });
    }
    for dir in touched_dirs {
        let path = layout.root().join(dir);
        fs::File::open(&path)
            .and_then(|d| d.sync_all())
            .ctx("cannot sync directory", &path)?;
    }
    Ok(())
}

/// Removes one file of the layout (never following a symlink: `remove_file` unlinks the name).
fn remove(layout: &Layout, relative: &str) -> Result<()> {
    let path = layout.root().join(relative);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("cannot remove", path, e)),
    }
}
