//! `referrers sync`: the bookkeeping rewritten from the truth, in one convention or both.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use super::conventions::{fallback_tag, fallback_tag_subject, Format};
use super::discovery::{Discovery, Referrer, Scope};
use super::fallback::{descriptor_value, edit_fallback, has_untagged, listed_digest};
use crate::error::Result;
use crate::spec::digest::Digest;

/// What `sync` changed.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncReport {
    /// How many referrers the layout has (each once).
    pub referrers: usize,
    /// Untagged entries added, by referrer digest.
    pub added_entries: Vec<Digest>,
    /// Untagged entries removed, by referrer digest.
    pub removed_entries: Vec<Digest>,
    /// Fallback tags written (new, or with a changed list).
    pub written_tags: Vec<String>,
    /// Fallback tags dropped (stale, empty, or not wanted in this format).
    pub removed_tags: Vec<String>,
    /// What could not be read; such manifests were left out of the truth.
    pub problems: Vec<String>,
}

/// Rewrites a layout's referrer bookkeeping to `format`, from the truth: the manifests with a
/// `subject` found through index.json (named or not), the fallback indexes and, with `scan`,
/// `blobs/`. Adds missing entries, removes stale ones and drops fallback indexes that list
/// nothing. Running it twice changes nothing the second time.
pub fn sync(
    layout: &crate::store::layout::Layout,
    format: Format,
    scan: bool,
) -> Result<SyncReport> {
    let writer = layout.writer()?;
    writer.update_index(|index| {
        let scope = Scope { scan };
        let discovery = Discovery::with_index(layout, index.clone(), scope)?;
        // The truth: subject → its referrers, each under the subject its manifest names.
        let mut truth: BTreeMap<Digest, Vec<Referrer>> = BTreeMap::new();
        let mut seen: HashSet<Digest> = HashSet::new();
        for subject in discovery.subjects() {
            let collected = discovery.collect(&subject);
            let misfiled = collected.misfiled.into_iter();
            let own = collected
                .referrers
                .into_iter()
                .map(|r| (subject.clone(), r));
            for (subject, referrer) in own.chain(misfiled) {
                if referrer.problem.is_some() || !seen.insert(referrer.digest.clone()) {
                    continue; // a listing without a readable manifest is stale
                }
                truth.entry(subject).or_default().push(referrer);
            }
        }
        let mut report = SyncReport {
            referrers: seen.len(),
            problems: discovery.problems(),
            ..SyncReport::default()
        };
        let mut changed = false;

        // (a) untagged entries.
        if format.index() {
            for referrer in truth.values().flatten() {
                if !has_untagged(index, &referrer.digest) {
                    index.push_raw(descriptor_value(&referrer.descriptor())?)?;
                    report.added_entries.push(referrer.digest.clone());
                }
            }
        } else {
            let removed: Vec<Digest> = index
                .entries()
                .iter()
                .enumerate()
                .filter(|(i, d)| d.ref_name().is_none() && discovery.is_bookkeeping(*i))
                .map(|(_, d)| d.digest.clone())
                .collect();
            index.remove_where(|d| d.ref_name().is_none() && removed.contains(&d.digest));
            report.removed_entries = removed;
        }
        changed |= !report.added_entries.is_empty() || !report.removed_entries.is_empty();

        // (b) fallback indexes.
        let tagged: BTreeSet<Digest> = index
            .entries()
            .iter()
            .filter_map(|d| d.ref_name().and_then(fallback_tag_subject))
            .collect();
        for subject in tagged
            .iter()
            .filter(|s| !format.tag() || !truth.contains_key(*s))
        {
            let name = fallback_tag(subject);
            index.remove_where(|d| d.ref_name() == Some(name.as_str()));
            report.removed_tags.push(name);
            changed = true;
        }
        if format.tag() {
            for (subject, referrers) in &truth {
                let wanted: Vec<&Referrer> = referrers.iter().collect();
                let mut values = Vec::with_capacity(wanted.len());
                for r in &wanted {
                    values.push(descriptor_value(&r.descriptor())?);
                }
                let wrote = edit_fallback(&writer, index, subject, |list| {
                    let before_len = list.len();
                    let before: Vec<String> = list
                        .iter()
                        .filter_map(|v| listed_digest(v).map(str::to_string))
                        .collect();
                    list.retain(|v| {
                        listed_digest(v)
                            .is_some_and(|d| wanted.iter().any(|r| r.digest.as_str() == d))
                    });
                    for (r, value) in wanted.iter().zip(&values) {
                        if !list
                            .iter()
                            .any(|v| listed_digest(v) == Some(r.digest.as_str()))
                        {
                            list.push(value.clone());
                        }
                    }
                    let after: Vec<String> = list
                        .iter()
                        .filter_map(|v| listed_digest(v).map(str::to_string))
                        .collect();
                    before != after || before_len != before.len()
                })?;
                if wrote {
                    report.written_tags.push(fallback_tag(subject));
                    changed = true;
                }
            }
        }
        Ok((report, changed))
    })
}
