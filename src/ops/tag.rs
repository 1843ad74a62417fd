//! Adding and removing names (`org.opencontainers.image.ref.name`) in `index.json`.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::referrers::{fallback_tag, is_fallback_tag, unlist, Discovery, Scope};
use crate::graph::resolve::{match_name, resolve};
use crate::graph::walk::{Field, Options, Walk};
use crate::spec::digest::Digest;
use crate::spec::document::REF_NAME;
use crate::spec::platform::Platform;
use crate::spec::reference::Reference;
use crate::store::layout::index::validate_ref_name;
use crate::store::layout::{IndexFile, Layout, LayoutRead};

/// What `tag` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagOutcome {
    /// The name now points at the digest; `moved_from` lists digests it pointed at before.
    Tagged {
        digest: crate::Digest,
        moved_from: Vec<crate::Digest>,
    },
    /// The name already pointed at that digest; nothing changed.
    Unchanged { digest: crate::Digest },
}

/// Gives the manifest `source` names the additional name `name`. A name names one thing: any
/// other entry carrying `name` loses it.
pub fn tag(
    layout: &Layout,
    source: &Reference,
    platform: Option<&Platform>,
    name: &str,
) -> Result<TagOutcome> {
    check_new_name(name)?;
    layout.writer()?.update_index(|index| {
        // Resolved under the index lock, so the entry cannot change underneath us.
        let resolved = resolve(layout, source, platform)?;
        // The new entry will say "manifest" (or "index"): only of bytes that are one.
        resolved.require_document()?;
        let digest = resolved.descriptor.digest.clone();
        let existing = index.find_name(name);
        if existing.len() == 1 && index.entries()[existing[0]].digest == digest {
            return Ok((TagOutcome::Unchanged { digest }, false));
        }
        let moved_from = existing
            .iter()
            .map(|&i| index.entries()[i].digest.clone())
            .filter(|d| d != &digest)
            .collect();
        index.remove_where(|d| d.ref_name() == Some(name));

        // An untagged image entry gets the name in place; otherwise a new entry is added,
        // copied from the source entry so its unknown fields survive.
        let source_entry = index
            .entries()
            .iter()
            .position(|d| d.digest == digest && resolved.name.as_deref() == d.ref_name());
        match source_entry {
            Some(i) if resolved.name.is_none() && resolved.document.subject().is_none() => {
                index.set_annotation(i, REF_NAME, name)?;
            }
            Some(i) => {
                let mut entry = index.raw_entry(i).unwrap_or(Value::Null);
                set_name(&mut entry, name);
                index.push_raw(entry)?;
            }
            None => {
                let mut entry = serde_json::to_value(&resolved.descriptor).map_err(|source| {
                    Error::Serialize {
                        what: "a descriptor",
                        source,
                    }
                })?;
                set_name(&mut entry, name);
                index.push_raw(entry)?;
            }
        }
        Ok((TagOutcome::Tagged { digest, moved_from }, true))
    })
}

/// Checks a name about to be given to a manifest: a valid `ref.name`, and not one of the
/// fallback tags that referrers bookkeeping owns.
pub fn check_new_name(name: &str) -> Result<()> {
    validate_ref_name(name)?;
    if is_fallback_tag(name) {
        return Err(Error::InvalidName {
            name: name.to_string(),
            reason: "names of the form sha256-<hex> are referrers fallback tags".into(),
        });
    }
    Ok(())
}

/// Gives `entry` the name `name`, and moves it there from every other entry of `index`;
/// returns the digests the name pointed at before (other than the entry's own).
pub(crate) fn name_entry(
    index: &mut IndexFile,
    mut entry: Value,
    name: &str,
) -> Result<Vec<Digest>> {
    let digest = entry
        .get("digest")
        .and_then(Value::as_str)
        .map(str::to_string);
    let moved_from = index
        .entries()
        .iter()
        .filter(|d| d.ref_name() == Some(name) && Some(d.digest.as_str()) != digest.as_deref())
        .map(|d| d.digest.clone())
        .collect();
    index.remove_where(|d| d.ref_name() == Some(name));
    set_name(&mut entry, name);
    index.push_raw(entry)?;
    Ok(moved_from)
}

fn set_name(entry: &mut Value, name: &str) {
    if let Some(obj) = entry.as_object_mut() {
        let annotations = obj
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if !annotations.is_object() {
            *annotations = Value::Object(Default::default());
        }
        if let Some(map) = annotations.as_object_mut() {
            map.insert(REF_NAME.to_string(), Value::from(name));
        }
    }
}

/// Removes the `index.json` entries carrying `name` (matched as references match names).
/// The manifest's blobs stay until `gc`. Returns the names removed.
pub fn remove_name(layout: &Layout, name: &str) -> Result<Vec<String>> {
    layout.writer()?.update_index(|index| {
        // An entry is known by its full name: containerd's when it records one (its ref.name
        // is then only the tag, which other images may share), else its ref.name.
        let identity = |d: &crate::spec::document::Descriptor| {
            d.containerd_name().or(d.ref_name()).map(str::to_string)
        };
        let matches = match_name(index.entries(), name);
        let names: Vec<String> = matches
            .iter()
            .filter_map(|&i| identity(&index.entries()[i]))
            .collect();
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        match distinct.len() {
            0 => Err(Error::NameNotFound {
                name: name.to_string(),
                layout: layout.name(),
                available: index
                    .entries()
                    .iter()
                    .flat_map(|d| d.names())
                    .filter(|n| !is_fallback_tag(n))
                    .map(str::to_string)
                    .collect(),
            }),
            1 => {
                let full = distinct[0].clone();
                index.remove_where(|d| identity(d).as_deref() == Some(full.as_str()));
                Ok((vec![full], true))
            }
            _ => Err(Error::Ambiguous {
                what: format!("name {name:?}"),
                layout: layout.name(),
                candidates: distinct,
            }),
        }
    })
}

/// What [`remove_digest`] did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    /// The index.json entries removed, in file order.
    pub entries: Vec<RemovedEntry>,
    /// Referrers removed with the manifest (recursively: signatures of SBOMs…), in the order
    /// they were found.
    pub referrers: Vec<Digest>,
    /// Referrers left in place because they carry a name of their own.
    pub kept_named: Vec<RemovedEntry>,
    /// Fallback tags dropped because their subject went.
    pub dropped_tags: Vec<String>,
    /// Fallback tags rewritten without a removed referrer.
    pub updated_tags: Vec<String>,
}

/// One index.json entry, by digest and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemovedEntry {
    pub digest: Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Removes every index.json entry of the manifest `digest` (named or not) and, unless
/// `keep_referrers`, its referrers, recursively: their entries, their fallback tags, and their
/// listing in fallback indexes. When the manifest is an index, the referrers of its children
/// that no other entry reaches go too. A referrer that has a name of its own is kept (with its
/// own referrers): the name is someone's explicit claim on it. The removed manifest is also
/// taken out of its subject's fallback index. Blobs stay until `gc`.
pub fn remove_digest(layout: &Layout, digest: &Digest, keep_referrers: bool) -> Result<Removal> {
    let writer = layout.writer()?;
    writer.update_index(|index| {
        let scope = Scope { scan: false };
        let discovery = Discovery::with_index(layout, index.clone(), scope)?;
        let own_subject = discovery.subject_of(digest);
        let recorded = index.entries().iter().any(|d| &d.digest == digest)
            || own_subject
                .as_ref()
                .is_some_and(|s| discovery.referrers(s).iter().any(|r| &r.digest == digest));
        if !recorded {
            return Err(Error::InvalidInput {
                what: format!(
                    "no index.json entry or referrers fallback index of {}",
                    layout.name()
                ),
                reason: format!("refers to {digest}"),
            });
        }
        let mut removal = Removal::default();
        let mut doomed: Vec<Digest> = vec![digest.clone()];
        let mut gone_subjects: Vec<Digest> = Vec::new();
        if !keep_referrers {
            let mut queue: VecDeque<Digest> = VecDeque::from([digest.clone()]);
            queue.extend(orphaned_children(index, digest, &discovery));
            let mut seen: HashSet<Digest> = queue.iter().cloned().collect();
            while let Some(subject) = queue.pop_front() {
                for referrer in discovery.referrers(&subject) {
                    if !seen.insert(referrer.digest.clone()) {
                        continue;
                    }
                    let names = own_names(index, &referrer.digest);
                    if !names.is_empty() {
                        removal
                            .kept_named
                            .extend(names.into_iter().map(|name| RemovedEntry {
                                digest: referrer.digest.clone(),
                                name: Some(name),
                            }));
                        continue;
                    }
                    removal.referrers.push(referrer.digest.clone());
                    doomed.push(referrer.digest.clone());
                    queue.push_back(referrer.digest);
                }
                gone_subjects.push(subject);
            }
        }
        removal.entries = index
            .entries()
            .iter()
            .filter(|d| doomed.contains(&d.digest))
            .map(|d| RemovedEntry {
                digest: d.digest.clone(),
                name: d.ref_name().map(str::to_string),
            })
            .collect();
        index.remove_where(|d| doomed.contains(&d.digest));
        for subject in &gone_subjects {
            let name = fallback_tag(subject);
            if index.remove_where(|d| d.ref_name() == Some(name.as_str())) > 0 {
                removal.dropped_tags.push(name);
            }
        }
        for removed in &doomed {
            let Some(subject) = discovery.subject_of(removed) else {
                continue;
            };
            if !gone_subjects.contains(&subject) && unlist(&writer, index, &subject, removed)? {
                let name = fallback_tag(&subject);
                if index.find_name(&name).is_empty() {
                    removal.dropped_tags.push(name);
                } else {
                    removal.updated_tags.push(name);
                }
            }
        }
        Ok((removal, true))
    })
}

/// The names (other than fallback tags) index.json gives `digest`.
fn own_names(index: &IndexFile, digest: &Digest) -> Vec<String> {
    index
        .entries()
        .iter()
        .filter(|d| &d.digest == digest)
        .filter_map(|d| d.ref_name())
        .filter(|n| !is_fallback_tag(n))
        .map(str::to_string)
        .collect()
}

/// The manifests and indexes below `digest` (the children of an index, at any depth) that no
/// other entry of index.json reaches once it is gone.
fn orphaned_children(index: &IndexFile, digest: &Digest, discovery: &Discovery<'_>) -> Vec<Digest> {
    let Some(target) = index.entries().iter().find(|d| &d.digest == digest) else {
        return Vec::new();
    };
    let documents = discovery.documents();
    let mut below = Walk::new(documents, Options::default());
    below.add_roots([(Field::Root(0), Cow::Borrowed(target))]);
    let children: Vec<&Digest> = below
        .nodes()
        .filter(|(d, node)| *d != digest && node.role().is_document())
        .map(|(d, _)| d)
        .collect();
    if children.is_empty() {
        return Vec::new();
    }
    let mut others = Walk::new(documents, Options::default());
    others.add_roots(
        index
            .entries()
            .iter()
            .enumerate()
            .filter(|(i, entry)| &entry.digest != digest && !discovery.is_bookkeeping(*i))
            .map(|(i, entry)| (Field::Root(i), Cow::Borrowed(entry))),
    );
    children
        .into_iter()
        .filter(|d| !others.contains(d))
        .cloned()
        .collect()
}
