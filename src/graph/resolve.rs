//! Turning a [`Reference`] into the manifest or index it names.

use crate::error::{Error, Result};
use crate::spec::digest::Digest;
use crate::spec::document::{parse_document, Descriptor, Document, Schema};
use crate::spec::platform::Platform;
use crate::spec::reference::Reference;
use crate::store::layout::{IndexFile, LayoutRead};

/// A resolved manifest or index, with its bytes.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The descriptor it was reached by (an `index.json` entry, an index child, or made from the
    /// blob when selected by digest alone).
    pub descriptor: Descriptor,
    /// The name of the `index.json` entry, when selected through one.
    pub name: Option<String>,
    /// The document's bytes, verified against the descriptor.
    pub bytes: Vec<u8>,
    pub document: Document,
}

/// The `index.json` entries that stand for themselves: not fallback-tag indexes
/// (`sha256-<hex>`), which are referrer bookkeeping.
pub fn is_fallback_tag(name: &str) -> bool {
    fallback_tag_subject(name).is_some()
}

/// The subject digest a fallback tag (`sha256-<hex>`) stands for.
pub fn fallback_tag_subject(name: &str) -> Option<Digest> {
    let (alg, hex) = name.split_once('-')?;
    if alg != "sha256" && alg != "sha512" {
        return None;
    }
    Digest::parse(&format!("{alg}:{hex}")).ok()
}

/// Finds what `reference` names in `layout` and loads it. With `platform`, an index is
/// narrowed to its first matching manifest (image-spec 1.1: first match wins).
pub fn resolve(
    layout: &dyn LayoutRead,
    reference: &Reference,
    platform: Option<&Platform>,
) -> Result<Resolved> {
    resolve_in(layout, &layout.index()?, reference, platform)
}

/// [`resolve`] against an `index.json` already read (inside the index lock, say), so that it is
/// not parsed twice.
pub fn resolve_in(
    layout: &dyn LayoutRead,
    index: &IndexFile,
    reference: &Reference,
    platform: Option<&Platform>,
) -> Result<Resolved> {
    let entries = index.entries();
    let layout_name = layout.name();

    let picked: Option<&Descriptor> = if let Some(name) = &reference.name {
        let mut matches: Vec<&Descriptor> = match_name(entries, name)
            .into_iter()
            .map(|i| &entries[i])
            .collect();
        if let Some(digest) = &reference.digest {
            matches.retain(|d| &d.digest == digest);
        }
        if matches.is_empty() {
            let mut available: Vec<String> = entries
                .iter()
                .filter_map(|d| d.ref_name())
                .filter(|n| !is_fallback_tag(n))
                .map(str::to_string)
                .collect();
            available.dedup();
            return Err(Error::NameNotFound {
                name: match &reference.digest {
                    Some(d) => format!("{name}@{d}"),
                    None => name.clone(),
                },
                layout: layout_name,
                available,
            });
        }
        Some(unique(matches, format!("name {name:?}"), &layout_name)?)
    } else if let Some(digest) = &reference.digest {
        entries.iter().find(|d| &d.digest == digest)
    } else {
        let candidates: Vec<&Descriptor> = entries
            .iter()
            .filter(|d| !d.ref_name().is_some_and(is_fallback_tag))
            .collect();
        let candidates = without_referrers(layout, candidates)?;
        if candidates.is_empty() {
            return Err(Error::EmptyLayout {
                layout: layout_name,
            });
        }
        Some(unique(
            candidates,
            "a reference without a name".to_string(),
            &layout_name,
        )?)
    };

    match picked {
        Some(d) => load(
            layout,
            d.clone(),
            d.ref_name().map(str::to_string),
            platform,
        ),
        None => {
            // Selected by a digest that no index.json entry carries: any manifest in blobs/.
            let digest = reference
                .digest
                .clone()
                .ok_or_else(|| Error::Invalid("nothing to resolve".into()))?;
            let (descriptor, bytes) = descriptor_from_blob(layout, &digest)?;
            load_from(layout, descriptor, Some(bytes), None, platform)
        }
    }
}

/// Indexes of the entries a name selects: those whose `org.opencontainers.image.ref.name` is
/// exactly `name`, or failing that, those whose name ends in `:name`.
pub fn match_name(entries: &[Descriptor], name: &str) -> Vec<usize> {
    let exact: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].ref_name() == Some(name))
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    let suffix = format!(":{name}");
    (0..entries.len())
        .filter(|&i| entries[i].ref_name().is_some_and(|n| n.ends_with(&suffix)))
        .collect()
}

/// Reads a blob selected by digest alone and makes a descriptor from its own `mediaType`;
/// returns the bytes too, so that they are not read again.
fn descriptor_from_blob(layout: &dyn LayoutRead, digest: &Digest) -> Result<(Descriptor, Vec<u8>)> {
    let bytes = layout.read_blob_limited(digest, None)?;
    let value: serde_json::Value =
        parse_document(&bytes, Schema::ManifestLike, &format!("blob {digest}"))?;
    let media_type = match value.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => m.to_string(),
        None if value.get("manifests").is_some() => {
            crate::spec::document::media_type::OCI_INDEX.into()
        }
        None => crate::spec::document::media_type::OCI_MANIFEST.into(),
    };
    let descriptor = Descriptor::new(media_type, digest.clone(), bytes.len() as u64);
    Ok((descriptor, bytes))
}

/// Loads the document behind `descriptor`, narrowing indexes by `platform`.
pub fn load(
    layout: &dyn LayoutRead,
    descriptor: Descriptor,
    name: Option<String>,
    platform: Option<&Platform>,
) -> Result<Resolved> {
    load_from(layout, descriptor, None, name, platform)
}

/// [`load`], with the bytes behind `descriptor` when they are already read and verified.
fn load_from(
    layout: &dyn LayoutRead,
    descriptor: Descriptor,
    mut first_bytes: Option<Vec<u8>>,
    name: Option<String>,
    platform: Option<&Platform>,
) -> Result<Resolved> {
    let mut descriptor = descriptor;
    // Nested indexes are followed, but not forever.
    for _ in 0..16 {
        let bytes = match first_bytes.take() {
            Some(bytes) => bytes,
            None => layout.read_document(&descriptor)?,
        };
        let document = Document::parse(
            &bytes,
            Some(&descriptor.media_type),
            &format!("manifest {}", descriptor.digest),
        )?;
        let Some(wanted) = platform else {
            return Ok(Resolved {
                descriptor,
                name,
                bytes,
                document,
            });
        };
        match &document {
            Document::Index(index) => {
                let child = index.manifests.iter().find(|m| {
                    m.platform.as_ref().is_some_and(|p| p.satisfies(wanted))
                        || (m.platform.is_none()
                            && crate::spec::document::media_type::kind(&m.media_type)
                                == crate::spec::document::media_type::Kind::Index)
                });
                match child {
                    Some(child) => descriptor = child.clone(),
                    None => {
                        return Err(Error::NoPlatformMatch {
                            digest: descriptor.digest.clone(),
                            platform: wanted.to_string(),
                            available: index
                                .manifests
                                .iter()
                                .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
                                .collect(),
                        })
                    }
                }
            }
            Document::Manifest(_) => {
                return Ok(Resolved {
                    descriptor,
                    name,
                    bytes,
                    document,
                })
            }
        }
    }
    Err(Error::Invalid(format!(
        "indexes below {} nest more than 16 deep",
        descriptor.digest
    )))
}

/// Drops untagged entries whose manifest has a `subject`: they are referrers, not images.
fn without_referrers<'a>(
    layout: &dyn LayoutRead,
    candidates: Vec<&'a Descriptor>,
) -> Result<Vec<&'a Descriptor>> {
    let mut kept = Vec::with_capacity(candidates.len());
    for d in candidates {
        if d.ref_name().is_none() && has_subject(layout, d)? {
            continue;
        }
        kept.push(d);
    }
    Ok(kept)
}

/// True when the manifest behind `descriptor` has a `subject` (it is a referrer).
pub fn has_subject(layout: &dyn LayoutRead, descriptor: &Descriptor) -> Result<bool> {
    if !crate::spec::document::media_type::is_manifest_like(&descriptor.media_type) {
        return Ok(false);
    }
    let bytes = layout.read_document(descriptor)?;
    let document = Document::parse(
        &bytes,
        Some(&descriptor.media_type),
        &format!("manifest {}", descriptor.digest),
    )?;
    Ok(document.subject().is_some())
}

/// The one descriptor among `matches`, or an ambiguity error listing them.
fn unique<'a>(matches: Vec<&'a Descriptor>, what: String, layout: &str) -> Result<&'a Descriptor> {
    let first = matches[0];
    if matches.iter().all(|d| d.digest == first.digest) {
        return Ok(first);
    }
    Err(Error::Ambiguous {
        what,
        layout: layout.to_string(),
        candidates: matches
            .iter()
            .map(|d| match d.ref_name() {
                Some(n) => format!("{n} ({})", d.digest),
                None => d.digest.to_string(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_tags() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            fallback_tag_subject(&format!("sha256-{hex}"))
                .unwrap()
                .encoded(),
            hex
        );
        assert!(!is_fallback_tag("sha256-abc"));
        assert!(!is_fallback_tag("v1"));
    }
}
