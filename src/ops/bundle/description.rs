//! `ocikit-bundle.json`: what a bundle holds, for people and for `bundle verify`.
//!
//! Written canonically (sorted keys, no whitespace) like every document ocikit makes. It
//! cannot hold the bundle's identity (the sha256 of `SHA256SUMS`, which lists the
//! description's own hash), so its `bundleId` is the sha256 of the `SHA256SUMS` lines of the
//! layout's files — everything but the description — which `verify` recomputes.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::digest::Digest;
use crate::spec::document::canonical;

/// The file's name at the bundle's top.
pub const DESCRIPTION: &str = "ocikit-bundle.json";

/// The schema this version writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The media type of the description.
pub const MEDIA_TYPE: &str = "application/vnd.ocikit.bundle.v1+json";

/// The oldest ocikit that reads what this version writes.
pub const MIN_READER_VERSION: &str = "0.1.0";

/// The largest description read.
pub const MAX_DESCRIPTION_SIZE: u64 = 64 * 1024 * 1024;

/// The description (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    pub schema_version: u32,
    pub media_type: String,
    /// The sha256 of the `SHA256SUMS` lines of every file but the description.
    pub bundle_id: Digest,
    /// RFC 3339, from `SOURCE_DATE_EPOCH` when set.
    pub created: String,
    pub tool: Tool,
    /// The oldest ocikit that reads this bundle.
    pub min_reader_version: String,
    pub images: Vec<Image>,
    pub totals: Totals,
    /// For an incremental bundle: the bundle it builds on, and the blobs left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Base>,
}

/// Who wrote the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    /// This ocikit.
    pub fn this() -> Tool {
        Tool {
            name: "ocikit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// One image asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// The reference as given (`LAYOUT:NAME`, `LAYOUT@DIGEST`).
    pub reference: String,
    /// The name it has in the bundle's `index.json` (the full reference), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The digest the reference resolved to.
    pub digest: Digest,
    pub media_type: String,
    /// The manifest's (or index's) own size.
    pub size: u64,
    /// Bytes of the manifest and everything it references, each blob once.
    pub content_size: u64,
    /// `os/arch[/variant]` of an image, or of each manifest of an index.
    pub platforms: Vec<String>,
    pub referrers: Vec<Referrer>,
}

/// A referrer carried with an image (recursively: referrers of referrers too).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub size: u64,
    /// The manifest it refers to.
    pub subject: Digest,
}

/// What the bundle holds in all, shared blobs counted once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub images: usize,
    pub referrers: usize,
    /// Blobs in the bundle (omitted ones not counted).
    pub blobs: usize,
    /// Bytes of those blobs.
    pub bytes: u64,
}

/// The base of an incremental bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Base {
    /// The base bundle's identity: the sha256 of its `SHA256SUMS`.
    pub bundle: Digest,
    /// Blobs the images need that are left out, because the base has them.
    pub omitted: Vec<Omitted>,
}

/// A blob left out of an incremental bundle.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Omitted {
    pub digest: Digest,
    pub size: u64,
}

impl Description {
    /// The canonical bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let value = serde_json::to_value(self).map_err(|e| Error::Serialize {
            what: DESCRIPTION,
            source: e,
        })?;
        Ok(canonical::to_vec(&value))
    }

    /// Reads a description (`what` names it), refusing a schema or a reader version this
    /// ocikit does not know.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Description> {
        let value: serde_json::Value = crate::spec::document::parse_json(bytes, what)?;
        let newer = |field: &str, value: String| Error::Unsupported {
            what: format!("{what} ({field} {value})"),
            reason: format!("needs a newer ocikit than {}", env!("CARGO_PKG_VERSION")),
        };
        if let Some(schema) = value.get("schemaVersion").and_then(|v| v.as_u64()) {
            if schema > u64::from(SCHEMA_VERSION) {
                return Err(newer("schemaVersion", schema.to_string()));
            }
        }
        if let Some(min) = value.get("minReaderVersion").and_then(|v| v.as_str()) {
            if version_newer(min, env!("CARGO_PKG_VERSION")) {
                return Err(newer("minReaderVersion", min.to_string()));
            }
        }
        crate::spec::document::from_value(value, what)
    }
}

/// Whether the dotted version `a` is newer than `b`.
fn version_newer(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.split(['.', '-'])
            .take(3)
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parse(a) > parse(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_newer("0.10.0", "0.9.9"));
        assert!(!version_newer("0.1.0", "0.1.0"));
        assert!(version_newer("1.0.0", "0.1.0"));
    }
}
