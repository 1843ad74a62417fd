//! Finding referrers: every convention read, merged, queried subject by subject.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use rayon::prelude::*;
use serde::Serialize;

use super::conventions::{fallback_tag, fallback_tag_subject, is_bookkeeping, Source};
use super::fallback::fallback_list;
use crate::error::{Error, Result};
use crate::graph::documents::{Documents, FastMap, Loaded, Parsed};
use crate::spec::digest::Digest;
use crate::spec::document::media_type;
use crate::spec::document::{Annotations, Descriptor};
use crate::store::layout::{blob_file_digest, FileKind, IndexFile, LayoutRead, MAX_DOCUMENT_SIZE};

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
    fn from_parsed(digest: &Digest, parsed: &Parsed, source: Source) -> Referrer {
        Referrer {
            digest: digest.clone(),
            media_type: parsed.media_type.clone(),
            artifact_type: parsed
                .document
                .effective_artifact_type()
                .map(str::to_string),
            size: parsed.size,
            annotations: parsed.document.annotations().cloned().unwrap_or_default(),
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

/// What reading one subject's bookkeeping found.
#[derive(Default)]
pub(super) struct Collected {
    pub(super) referrers: Vec<Referrer>,
    /// Manifests a fallback index lists under this subject whose own subject is another one.
    pub(super) misfiled: Vec<(Digest, Referrer)>,
}

/// What [`Discovery`] reads besides `index.json`, the documents its entries name and the
/// fallback indexes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope {
    /// Scan every document-sized blob of `blobs/` for manifests with a `subject` (convention c).
    pub scan: bool,
}

/// The referrers of a layout, read from every convention, queried subject by subject.
///
/// It reads `index.json`, the document of every entry (named or not: any entry whose manifest
/// has a subject is a referrer of it), the fallback indexes and the manifests they list —
/// never all of `blobs/` unless asked to scan. What it reads is kept in its [`Documents`],
/// which a walk over the same layout shares ([`Discovery::documents`]), so that `ls` and `gc`
/// read each document once.
pub struct Discovery<'a> {
    documents: Documents<'a>,
    index: IndexFile,
    /// Subject → referrers found through index.json entries, in entry order.
    from_index: HashMap<Digest, Vec<Digest>>,
    /// Subject → positions of its fallback-tag entries in index.json.
    tags: HashMap<Digest, Vec<usize>>,
    /// Subject → referrers found by scanning blobs/, by digest.
    from_scan: HashMap<Digest, Vec<Digest>>,
    problems: Mutex<BTreeSet<String>>,
    warnings: Mutex<BTreeSet<String>>,
}

impl<'a> Discovery<'a> {
    /// Reads `layout`'s index.json and the documents of its entries (in parallel).
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
        Discovery::with_documents(Documents::new(layout), index, scope)
    }

    /// The same, over documents already read (by a walk over the same layout, say): only
    /// what they lack is read.
    pub fn with_documents(
        documents: Documents<'a>,
        index: IndexFile,
        scope: Scope,
    ) -> Result<Discovery<'a>> {
        let mut discovery = Discovery {
            documents,
            index,
            from_index: HashMap::new(),
            tags: HashMap::new(),
            from_scan: HashMap::new(),
            problems: Mutex::new(BTreeSet::new()),
            warnings: Mutex::new(BTreeSet::new()),
        };
        let mut candidates: Vec<&Descriptor> = Vec::new();
        let mut seen: FastMap<&Digest, ()> = FastMap::default();
        for (i, entry) in discovery.index.entries().iter().enumerate() {
            if let Some(subject) = entry.ref_name().and_then(fallback_tag_subject) {
                discovery.tags.entry(subject).or_default().push(i);
                continue;
            }
            if media_type::is_manifest_like(&entry.media_type)
                && seen.insert(&entry.digest, ()).is_none()
            {
                candidates.push(entry);
            }
        }
        // Read in parallel (or found in the cache a walk filled), then taken in entry order.
        let documents = &discovery.documents;
        let read: Vec<Arc<Loaded>> = candidates.par_iter().map(|e| documents.get(e)).collect();
        let mut from_index: HashMap<Digest, Vec<Digest>> = HashMap::new();
        for (entry, loaded) in candidates.iter().zip(&read) {
            match &**loaded {
                Ok(parsed) => {
                    if let Some(subject) = parsed.document.subject() {
                        if parsed.is_document() {
                            from_index
                                .entry(subject.digest.clone())
                                .or_default()
                                .push(entry.digest.clone());
                        }
                    }
                }
                // An absent document lists nothing and hides nothing (`ls` and `validate`
                // report the entry); any other failure might hide a referrer.
                Err(Error::BlobNotFound { .. }) => {}
                Err(e) => discovery.problem(format!("index.json entry {}: {e}", entry.digest)),
            }
        }
        discovery.from_index = from_index;
        if scope.scan {
            discovery.scan()?;
        }
        Ok(discovery)
    }

    /// The index.json that was read.
    pub fn index(&self) -> &IndexFile {
        &self.index
    }

    /// The documents read so far, for a walk over the same layout to share.
    pub fn documents(&self) -> &Documents<'a> {
        &self.documents
    }

    /// What could not be read; the listings may be incomplete where these say so.
    pub fn problems(&self) -> Vec<String> {
        let problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        problems.iter().cloned().collect()
    }

    /// Bookkeeping that disagrees with the manifests it lists (which the listings ignore).
    pub fn warnings(&self) -> Vec<String> {
        let warnings = self.warnings.lock().unwrap_or_else(PoisonError::into_inner);
        warnings.iter().cloned().collect()
    }

    pub(super) fn problem(&self, text: String) {
        let mut problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        problems.insert(text);
    }

    fn warning(&self, text: String) {
        let mut warnings = self.warnings.lock().unwrap_or_else(PoisonError::into_inner);
        warnings.insert(text);
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

    /// Whether entry `i` of index.json is referrer bookkeeping rather than something that
    /// stands for itself ([`is_bookkeeping`]).
    pub fn is_bookkeeping(&self, i: usize) -> bool {
        self.index
            .entries()
            .get(i)
            .is_some_and(|entry| is_bookkeeping(entry, &self.documents))
    }

    /// The referrers of `subject`, merged from every convention read, each once, in the order
    /// index.json entries list them, then the fallback index's order, then by digest.
    pub fn referrers(&self, subject: &Digest) -> Vec<Referrer> {
        let collected = self.collect(subject);
        for (real, referrer) in &collected.misfiled {
            self.warning(format!(
                "the fallback index {} lists {}, whose subject is {real}; it is not counted there (syncing the referrers bookkeeping fixes it)",
                fallback_tag(subject),
                referrer.digest
            ));
        }
        collected.referrers
    }

    pub(super) fn collect(&self, subject: &Digest) -> Collected {
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
        let known = |digest: &Digest| {
            let loaded = self.documents.cached(digest)?;
            let parsed = loaded.as_ref().as_ref().ok()?;
            Some(Referrer::from_parsed(digest, parsed, Source::Index))
        };
        for digest in self.from_index.get(subject).into_iter().flatten() {
            if let Some(referrer) = known(digest) {
                add(&mut out, referrer);
            }
        }
        for &i in self.tags.get(subject).into_iter().flatten() {
            let entry = &self.index.entries()[i];
            let listed = match fallback_list(&self.documents, entry) {
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
                let loaded = self.documents.get(&descriptor);
                let parsed = match &*loaded {
                    Ok(parsed) => parsed,
                    Err(problem) => {
                        add(
                            &mut out,
                            Referrer {
                                digest: descriptor.digest.clone(),
                                media_type: descriptor.media_type.clone(),
                                artifact_type: descriptor.artifact_type.clone(),
                                size: descriptor.size,
                                annotations: descriptor.annotations.clone().unwrap_or_default(),
                                found_in: [Source::Tag].into(),
                                problem: Some(problem.to_string()),
                            },
                        );
                        continue;
                    }
                };
                let own = parsed.document.subject().map(|s| &s.digest);
                let referrer = Referrer::from_parsed(&descriptor.digest, parsed, Source::Tag);
                match own {
                    _ if !parsed.is_document() => self.warning(format!(
                        "the fallback index {} lists {}, which is not a manifest or index; it is not counted",
                        fallback_tag(subject),
                        descriptor.digest
                    )),
                    Some(own) if own == subject => add(&mut out, referrer),
                    Some(real) => out.misfiled.push((real.clone(), referrer)),
                    None => self.warning(format!(
                        "the fallback index {} lists {}, which has no subject; it is not counted",
                        fallback_tag(subject),
                        descriptor.digest
                    )),
                }
            }
        }
        for digest in self.from_scan.get(subject).into_iter().flatten() {
            if let Some(mut referrer) = known(digest) {
                referrer.found_in = [Source::Scan].into();
                add(&mut out, referrer);
            }
        }
        out
    }

    /// The subject the manifest `digest` names, read from its blob if no bookkeeping did;
    /// `None` when it is not a referrer (or cannot be read).
    pub fn subject_of(&self, digest: &Digest) -> Option<Digest> {
        let loaded = self.documents.by_digest(digest, None);
        let parsed = loaded.as_ref().as_ref().ok()?;
        parsed
            .is_document()
            .then(|| parsed.document.subject().map(|s| s.digest.clone()))?
    }

    /// Reads every document-sized blob of `blobs/` that looks like JSON, keeping the
    /// manifests that have a subject.
    fn scan(&mut self) -> Result<()> {
        let layout = self.documents.layout();
        let mut blobs: Vec<(Digest, u64)> = Vec::new();
        for file in layout.files()? {
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
        let known = self.documents.cached_digests();
        let documents = &self.documents;
        let failed: Vec<String> = blobs
            .par_iter()
            .filter(|(d, _)| !known.contains(d))
            .filter_map(|(digest, len)| {
                // JSON that is not a manifest or index is no referrer; a blob that cannot be
                // read might be one.
                let problem = match documents.sniff(digest, *len) {
                    Ok(Some(loaded)) => match &*loaded {
                        Err(e)
                            if !matches!(
                                e,
                                Error::Json { .. } | Error::UnexpectedMediaType { .. }
                            ) =>
                        {
                            e.to_string()
                        }
                        _ => return None,
                    },
                    Ok(None) => return None,
                    Err(e) => e.to_string(),
                };
                Some(format!("scan: blob {digest}: {problem}"))
            })
            .collect();
        for problem in failed {
            self.problem(problem);
        }
        // Every blob read, through index.json or by the scan, is a blob of blobs/: those that
        // are referrers are what the scan finds.
        let mut from_scan: BTreeMap<Digest, Vec<Digest>> = BTreeMap::new();
        for (digest, _) in &blobs {
            let Some(loaded) = self.documents.cached(digest) else {
                continue;
            };
            let Ok(parsed) = loaded.as_ref() else {
                continue;
            };
            if let Some(subject) = parsed.document.subject() {
                if parsed.is_document() {
                    from_scan
                        .entry(subject.digest.clone())
                        .or_default()
                        .push(digest.clone());
                }
            }
        }
        self.from_scan = from_scan.into_iter().collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
