//! `image index`: a multi-platform index from image manifests of one layout.
//!
//! Each member is an image manifest of the layout, named by `NAME`, `@DIGEST` or
//! `NAME@DIGEST`; its platform is read from its configuration (`os`, `architecture`,
//! `variant`, `os.version`, `os.features`). Members keep the order given: image-spec 1.1 says
//! the first entry matching a platform wins, so the order is the caller's choice to make. Two
//! members of the same platform are an error unless allowed. An index can also be derived from
//! the index the target name points at now: its entries (kept as they are), without the
//! removed members, with the added ones after them, and its annotations.
//!
//! The index is written canonically, and the target name moves to it in one `index.json`
//! update, under the locks, with the members resolved inside that update: a concurrent `tag`
//! or `rm` cannot change a member between the moment it is read and the moment it is listed.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::build::{target_name, to_value};
use crate::error::{Error, Result};
use crate::graph::resolve::{resolve_in, Resolved};
use crate::ops::tag::name_entry;
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self, Kind, OCI_INDEX};
use crate::spec::document::{canonical, parse_document, Descriptor, Document, Schema};
use crate::spec::platform::Platform;
use crate::spec::reference::Reference;
use crate::store::layout::{IndexFile, Layout, LayoutRead};

/// What the index is made of.
#[derive(Clone, Debug, Default)]
pub struct IndexSpec {
    /// The members, in order: `NAME`, `@DIGEST` or `NAME@DIGEST` in the target's layout.
    pub members: Vec<String>,
    /// Derive from the index the target name points at now, with these members appended.
    pub add: Vec<String>,
    /// Derive from the index the target name points at now, without these members.
    pub remove: Vec<String>,
    /// Index annotations (after, and over, those of an index derived from).
    pub annotations: Vec<(String, String)>,
    /// Accept two members of the same platform (the first one wins for clients).
    pub allow_duplicate_platforms: bool,
}

/// What `index` wrote.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    /// The new index, as its `index.json` entry records it (without the name).
    pub index: Descriptor,
    /// Its entries, in order.
    pub manifests: Vec<Descriptor>,
    /// Digests the name pointed at before.
    pub moved_from: Vec<Digest>,
}

/// An index entry: its descriptor, and its JSON as it will be written (an entry of an index
/// derived from is kept as that index has it).
type Entry = (Descriptor, Value);

/// The platform fields of an image configuration.
#[derive(Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default, rename = "os.version")]
    os_version: Option<String>,
    #[serde(default, rename = "os.features")]
    os_features: Option<Vec<String>>,
}

/// Writes the index `spec` describes in `target`'s layout and names it `target`'s name.
pub fn index(target: &Reference, spec: &IndexSpec) -> Result<Written> {
    let name = target_name(target)?;
    let deriving = !spec.add.is_empty() || !spec.remove.is_empty();
    if !deriving && spec.members.is_empty() {
        return Err(Error::InvalidInput {
            what: "the index".into(),
            reason: "has no member: give at least one manifest".into(),
        });
    }
    if deriving && !spec.members.is_empty() {
        return Err(Error::InvalidInput {
            what: "the index".into(),
            reason: "is either made from members or derived from an existing index by adding and removing members, not both".into(),
        });
    }
    if let Some((key, _)) = spec.annotations.iter().find(|(k, _)| k.is_empty()) {
        return Err(Error::InvalidInput {
            what: format!("the annotation {key:?}"),
            reason: "has an empty key".into(),
        });
    }
    let layout = crate::store::open_write(target)?;
    let writer = layout.writer()?;
    writer.update_index(|index| {
        let (mut entries, mut annotations) = match deriving {
            true => existing(&layout, index, target, name)?,
            false => (Vec::new(), Map::new()),
        };
        for member in &spec.remove {
            let digest = member_manifest(&layout, index, target, member)?
                .descriptor
                .digest;
            let before = entries.len();
            entries.retain(|(d, _)| d.digest != digest);
            if entries.len() == before {
                return Err(Error::InvalidInput {
                    what: format!("the member {member:?} ({digest})"),
                    reason: format!("is not listed by the index {name} to remove it from"),
                });
            }
        }
        for member in spec.members.iter().chain(&spec.add) {
            let descriptor = entry_for(&layout, index, target, member)?;
            entries.push((descriptor.clone(), to_value(&descriptor)?));
        }
        if entries.is_empty() {
            return Err(Error::InvalidInput {
                what: format!("the index {name}"),
                reason: "would list no manifest".into(),
            });
        }
        if !spec.allow_duplicate_platforms {
            refuse_duplicate_platforms(&entries)?;
        }
        for (key, value) in &spec.annotations {
            annotations.insert(key.clone(), value.clone().into());
        }
        let mut document = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries.iter().map(|(_, raw)| raw.clone()).collect::<Vec<_>>(),
        });
        if !annotations.is_empty() {
            document["annotations"] = Value::Object(annotations);
        }
        let blob = writer.write_blob_bytes(&canonical::to_vec(&document))?;
        let descriptor = Descriptor::new(OCI_INDEX, blob.digest, blob.size);
        let moved_from = name_entry(index, to_value(&descriptor)?, name)?;
        let written = Written {
            index: descriptor,
            manifests: entries.into_iter().map(|(d, _)| d).collect(),
            moved_from,
        };
        Ok((written, true))
    })
}

/// The entries (typed and as they are) and annotations of the index `name` points at now.
fn existing(
    layout: &Layout,
    index: &IndexFile,
    target: &Reference,
    name: &str,
) -> Result<(Vec<Entry>, Map<String, Value>)> {
    let reference = Reference {
        name: Some(name.to_string()),
        digest: None,
        ..target.clone()
    };
    let resolved = resolve_in(layout, index, &reference, None)?;
    if !matches!(resolved.document, Document::Index(_)) {
        return Err(Error::InvalidInput {
            what: name.to_string(),
            reason: "is not an index, so there is nothing to add members to or remove them from"
                .into(),
        });
    }
    let what = format!("{}@{}", layout.name(), resolved.descriptor.digest);
    let mut document: Map<String, Value> =
        parse_document(&resolved.bytes, Schema::ManifestLike, &what)?;
    let raw = match document.remove("manifests") {
        Some(Value::Array(raw)) => raw,
        _ => Vec::new(),
    };
    let entries = raw
        .into_iter()
        .map(|value| Ok((crate::spec::document::from_value_ref(&value, &what)?, value)))
        .collect::<Result<Vec<_>>>()?;
    let annotations = match document.remove("annotations") {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Ok((entries, annotations))
}

/// Resolves a member (`NAME`, `@DIGEST`, `NAME@DIGEST`) in the target's layout; it must be an
/// image manifest.
fn member_manifest(
    layout: &Layout,
    index: &IndexFile,
    target: &Reference,
    member: &str,
) -> Result<Resolved> {
    let (name, digest) = match member.rsplit_once('@') {
        Some((name, digest)) => (name, Some(Digest::parse(digest).map_err(Error::from)?)),
        None => (member, None),
    };
    if name.is_empty() && digest.is_none() {
        return Err(Error::InvalidInput {
            what: "an empty member".into(),
            reason: "names nothing: give NAME, @DIGEST or NAME@DIGEST".into(),
        });
    }
    let reference = Reference {
        name: (!name.is_empty()).then(|| name.to_string()),
        digest,
        ..target.clone()
    };
    let resolved = resolve_in(layout, index, &reference, None)?;
    resolved.require_document()?;
    match &resolved.document {
        Document::Manifest(m) if m.schema_version == 2 && m.config.is_some() => Ok(resolved),
        _ => Err(Error::InvalidInput {
            what: format!("the member {member:?} ({})", resolved.descriptor.digest),
            reason: "is not an image manifest; an index lists image manifests here".into(),
        }),
    }
}

/// The index entry of a member: its descriptor with the platform its configuration states.
fn entry_for(
    layout: &Layout,
    index: &IndexFile,
    target: &Reference,
    member: &str,
) -> Result<Descriptor> {
    let resolved = member_manifest(layout, index, target, member)?;
    let config = match &resolved.document {
        Document::Manifest(m) => m.config.clone(),
        _ => None,
    }
    .filter(|c| media_type::kind(&c.media_type) == Kind::Config)
    .ok_or_else(|| Error::InvalidInput {
        what: format!("the member {member:?} ({})", resolved.descriptor.digest),
        reason: "has no image configuration to read its platform from".into(),
    })?;
    let bytes = layout.read_document(&config)?;
    let what = format!("{}@{}", layout.name(), config.digest);
    let stated: ConfigPlatform = parse_document(&bytes, Schema::Config, &what)?;
    if stated.os.is_empty() || stated.architecture.is_empty() {
        return Err(Error::InvalidInput {
            what: format!("the configuration of member {member:?} ({})", config.digest),
            reason: "does not state its os and architecture".into(),
        });
    }
    Ok(Descriptor {
        platform: Some(Platform {
            architecture: stated.architecture,
            os: stated.os,
            os_version: stated.os_version,
            os_features: stated.os_features,
            variant: stated.variant,
            features: None,
        }),
        ..Descriptor::new(
            resolved.descriptor.media_type.clone(),
            resolved.descriptor.digest.clone(),
            resolved.descriptor.size,
        )
    })
}

/// Refuses two entries of the same platform (compared as platforms match: `arm64` is
/// `arm64/v8`).
fn refuse_duplicate_platforms(entries: &[Entry]) -> Result<()> {
    let key = |p: &Platform| (p.normalized(), p.os_version.clone());
    for (i, (a, _)) in entries.iter().enumerate() {
        let Some(pa) = &a.platform else { continue };
        if let Some((b, _)) = entries[..i]
            .iter()
            .find(|(b, _)| b.platform.as_ref().is_some_and(|pb| key(pb) == key(pa)))
        {
            return Err(Error::Conflict {
                what: format!("{} and {}", b.digest, a.digest),
                reason: format!(
                    "are both for platform {pa}; clients would only ever pick the first"
                ),
            });
        }
    }
    Ok(())
}
