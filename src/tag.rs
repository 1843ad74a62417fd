//! Adding and removing names (`org.opencontainers.image.ref.name`) in `index.json`.

use serde_json::Value;

use crate::document::REF_NAME;
use crate::error::{Error, Result};
use crate::layout::index::validate_ref_name;
use crate::layout::{Layout, LayoutRead};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::resolve::{match_name, resolve};

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
    validate_ref_name(name)?;
    if crate::resolve::is_fallback_tag(name) {
        return Err(Error::InvalidName {
            name: name.to_string(),
            reason: "names of the form sha256-<hex> are referrers fallback tags".into(),
        });
    }
    layout.update_index(|index| {
        // Resolved under the index lock, so the entry cannot change underneath us.
        let resolved = resolve(layout, source, platform)?;
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
                let mut entry = index.raw_entry(i).cloned().unwrap_or(Value::Null);
                set_name(&mut entry, name);
                index.push_raw(entry)?;
            }
            None => {
                let mut entry = serde_json::to_value(&resolved.descriptor)
                    .map_err(|e| Error::Invalid(format!("cannot serialize a descriptor: {e}")))?;
                set_name(&mut entry, name);
                index.push_raw(entry)?;
            }
        }
        Ok((TagOutcome::Tagged { digest, moved_from }, true))
    })
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
    layout.update_index(|index| {
        let matches = match_name(index.entries(), name);
        let names: Vec<String> = matches
            .iter()
            .filter_map(|&i| index.entries()[i].ref_name().map(str::to_string))
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
                    .filter_map(|d| d.ref_name())
                    .filter(|n| !crate::resolve::is_fallback_tag(n))
                    .map(str::to_string)
                    .collect(),
            }),
            1 => {
                let full = distinct[0].clone();
                index.remove_where(|d| d.ref_name() == Some(full.as_str()));
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
