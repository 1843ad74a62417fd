//! Garbage collection: mark from `index.json`, keep the referrers of what is kept, sweep the
//! rest.
//!
//! - **Roots** are every `index.json` entry, tagged or untagged (the image-spec's root set),
//!   except referrer bookkeeping: untagged entries whose manifest has a `subject`, and
//!   fallback-tag indexes (`sha256-<hex>`). Those do not keep their subject alive.
//! - **Mark** follows indexes → manifests → configs and layers. Unknown media types are leaves;
//!   referenced-but-missing blobs (foreign layers) are tolerated. `subject` is not followed: a
//!   referrer does not keep its subject.
//! - **Referrers** of a kept manifest are kept, and theirs, to a fixpoint (a signature of an
//!   SBOM of an image). They are found in all three conventions, including blob-only referrers
//!   (the unmarked blobs are scanned, reading only those that start like JSON), so a cosign
//!   signature of a kept image is never swept. Referrers whose subject is not kept are orphans: their entries
//!   and fallback-tag indexes go, unless `keep_orphans`.
//! - **Never delete when unsure**: a reachable document that cannot be read or parsed, or a
//!   corrupt one, stops gc before anything is deleted.
//! - **Order**: `index.json` is rewritten first (atomically), then blobs are deleted, so a crash
//!   in between leaves only unreferenced blobs. The whole run holds the blobs lock exclusively,
//!   so no writer is between writing a blob and referencing it (ARCHITECTURE.md §Locking).
//!   Temp files of crashed writers are removed only then, when no writer can hold the layout.

use std::collections::{BTreeSet, HashMap};
use std::fs;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::graph::referrers::{scan_blob, Discovery, Scope};
use crate::graph::resolve::fallback_tag_subject;
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self as mt, Kind};
use crate::spec::document::{Descriptor, Document};
use crate::store::layout::{
    blob_file_digest, FileInfo, FileKind, IndexFile, Layout, LayoutRead, MAX_DOCUMENT_SIZE,
    TEMP_PREFIX,
};

/// Nested indexes deeper than this stop gc (a hostile chain must not exhaust the stack).
const MAX_DEPTH: usize = 64;

/// How to collect.
#[derive(Clone, Copy, Debug, Default)]
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
            let mut position = 0;
            index.remove_where(|_| {
                let remove = doomed.contains(&position);
                position += 1;
                remove
            });
        }
        outcome.removed_entries = removals.into_iter().map(|(_, e)| e).collect();
        Ok((marked, changed))
    })?;
    sweep(layout, &files, &marked, options, &mut outcome)?;
    Ok(outcome)
}

/// `index.json` entries to remove, by position.
type Removals = Vec<(usize, Entry)>;

/// Marks what is kept; returns the marked digests and the entries to remove.
fn mark(
    layout: &Layout,
    index: &IndexFile,
    blobs: &[Digest],
    options: &Options,
) -> Result<(HashMap<Digest, u64>, Removals)> {
    // Named entries are roots whether or not they are referrers, so only untagged entries'
    // manifests need reading; blob-only referrers are looked for among unmarked blobs below.
    let scope = Scope {
        named: false,
        scan: false,
    };
    let discovery = Discovery::with_index(layout, index.clone(), scope)?;
    let entries = index.entries();
    let mut marker = Marker {
        layout,
        marked: HashMap::new(),
    };
    let mut removals = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if discovery.is_bookkeeping(i) {
            continue;
        }
        if options.prune_untagged && entry.ref_name().is_none() {
            continue;
        }
        marker.mark(entry, 0)?;
    }
    // Referrers of kept manifests, and theirs, until nothing changes: those recorded in
    // index.json and fallback indexes, and blob-only ones (cosign). A blob-only referrer can
    // only be among the blobs not yet marked, so only those are read — once, and only those
    // that start like JSON — which keeps gc off the layers.
    let subjects = discovery.subjects();
    let mut blob_only: Option<Vec<(Digest, Descriptor)>> = None;
    loop {
        let mut grew = false;
        for subject in &subjects {
            if !(options.keep_orphans || marker.marked.contains_key(subject)) {
                continue;
            }
            for referrer in discovery.referrers(subject) {
                if !marker.marked.contains_key(&referrer.digest) {
                    marker.mark(&referrer.descriptor(), 0)?;
                    grew = true;
                }
            }
        }
        if blob_only.is_none() {
            blob_only = Some(find_blob_only_referrers(layout, blobs, &marker.marked)?);
        }
        for (subject, referrer) in blob_only.iter().flatten() {
            let wanted = options.keep_orphans || marker.marked.contains_key(subject);
            if wanted && !marker.marked.contains_key(&referrer.digest) {
                marker.mark(referrer, 0)?;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    // Bookkeeping stays only for kept subjects and kept referrers.
    for (i, entry) in entries.iter().enumerate() {
        let name = entry.ref_name().map(str::to_string);
        if let Some(subject) = name.as_deref().and_then(fallback_tag_subject) {
            if options.keep_orphans || marker.marked.contains_key(&subject) {
                marker.mark(entry, 0)?;
            } else {
                removals.push((
                    i,
                    Entry {
                        digest: entry.digest.clone(),
                        name,
                        reason: "fallback tag of a subject that is not kept",
                    },
                ));
            }
        } else if discovery.is_bookkeeping(i) {
            if !marker.marked.contains_key(&entry.digest) {
                removals.push((
                    i,
                    Entry {
                        digest: entry.digest.clone(),
                        name,
                        reason: "referrer of a subject that is not kept",
                    },
                ));
            }
        } else if options.prune_untagged && name.is_none() {
            removals.push((
                i,
                Entry {
                    digest: entry.digest.clone(),
                    name,
                    reason: "untagged (--prune-untagged)",
                },
            ));
        }
    }
    for problem in discovery.problems() {
        // A referrer that cannot be read might belong to a kept image: refuse to guess.
        if !problem.starts_with("scan:") {
            return Err(Error::Invalid(format!(
                "gc stopped before deleting anything: {problem}"
            )));
        }
    }
    Ok((marker.marked, removals))
}

/// Manifests among the unmarked blobs that have a `subject`: (subject, the referrer). A blob
/// that Go's encoding/json reads differently stops gc: other tools may read it as a referrer
/// of a kept image.
fn find_blob_only_referrers(
    layout: &Layout,
    blobs: &[Digest],
    marked: &HashMap<Digest, u64>,
) -> Result<Vec<(Digest, Descriptor)>> {
    let found: Vec<Result<Option<(Digest, Descriptor)>>> = blobs
        .par_iter()
        .filter(|digest| !marked.contains_key(*digest))
        .map(|digest| {
            let Some(len) = layout.blob_len(digest).ok().flatten() else {
                return Ok(None);
            };
            if len > MAX_DOCUMENT_SIZE {
                return Ok(None);
            }
            // A blob that starts like JSON and parses as a manifest or index.
            let facts = match scan_blob(layout, digest, len) {
                Ok(Some(facts)) => facts,
                Err(e @ Error::ReadDifferently { .. }) => {
                    return Err(Error::Invalid(format!(
                        "gc stopped before deleting anything: {e}"
                    )))
                }
                Ok(None) | Err(_) => return Ok(None),
            };
            Ok(facts.subject.map(|subject| {
                (
                    subject,
                    Descriptor::new(facts.media_type, digest.clone(), len),
                )
            }))
        })
        .collect();
    found.into_iter().filter_map(Result::transpose).collect()
}

struct Marker<'a> {
    layout: &'a Layout,
    /// Marked digests, with the size their descriptor gives.
    marked: HashMap<Digest, u64>,
}

impl Marker<'_> {
    /// Marks a descriptor and, for documents, everything they reference (not their subject).
    fn mark(&mut self, d: &Descriptor, depth: usize) -> Result<()> {
        if self.marked.insert(d.digest.clone(), d.size).is_some() {
            return Ok(());
        }
        let kind = mt::kind(&d.media_type);
        if !matches!(kind, Kind::Manifest | Kind::Index | Kind::ArtifactManifest) {
            return Ok(()); // configs, layers and unknown types are leaves
        }
        if depth > MAX_DEPTH {
            return Err(Error::Invalid(format!(
                "gc stopped before deleting anything: indexes below {} nest more than {MAX_DEPTH} deep",
                d.digest
            )));
        }
        let bytes = match self.layout.read_document(d) {
            Ok(bytes) => bytes,
            Err(Error::BlobNotFound { .. }) => return Ok(()), // tolerated: nothing to follow
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "gc stopped before deleting anything: {e}"
                )))
            }
        };
        let document = Document::parse(
            &bytes,
            Some(&d.media_type),
            &format!("manifest {}", d.digest),
        )
        .map_err(|e| Error::Invalid(format!("gc stopped before deleting anything: {e}")))?;
        match document {
            Document::Manifest(m) => {
                for child in m.config.iter().chain(m.layers.iter()).chain(m.blobs.iter()) {
                    self.mark(child, depth + 1)?;
                }
            }
            Document::Index(index) => {
                for child in &index.manifests {
                    self.mark(child, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

/// Deletes unmarked blobs and temp files (or lists them in a dry run).
fn sweep(
    layout: &Layout,
    files: &[FileInfo],
    marked: &HashMap<Digest, u64>,
    options: &Options,
    outcome: &mut Outcome,
) -> Result<()> {
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
        if let Some(size) = marked.get(&digest) {
            outcome.kept_blobs += 1;
            outcome.kept_bytes += size;
            continue;
        }
        let len = layout.blob_len(&digest)?.unwrap_or(0);
        if !options.dry_run {
            remove(layout, &file.path)?;
            touched_dirs.insert(format!("blobs/{}", digest.algorithm()));
        }
        outcome.removed_bytes += len;
        outcome.removed_blobs.push(Blob { digest, size: len });
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
