//! The conventions themselves: what makes a manifest a referrer, how a fallback tag is named,
//! and which `index.json` entries are bookkeeping rather than images. Every module that asks
//! one of these questions asks it here, so each has one answer.

use serde::Serialize;

use crate::graph::documents::Documents;
use crate::spec::digest::Digest;
use crate::spec::document::media_type;
use crate::spec::document::Descriptor;

/// Where a referrer was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An `index.json` entry whose manifest has a `subject`, named or not.
    Index,
    /// The subject's fallback-tag index `sha256-<hex>`.
    Tag,
    /// A blob found by scanning `blobs/`.
    Scan,
}

impl Source {
    /// `index`, `tag` or `scan`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Index => "index",
            Source::Tag => "tag",
            Source::Scan => "scan",
        }
    }
}

/// How a layout records its referrers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Untagged `index.json` entries only (convention a).
    Index,
    /// Fallback-tag indexes only (convention b).
    Tag,
    /// Both, so that every tool finds them (ocikit's default).
    Both,
}

impl Format {
    pub(super) fn index(self) -> bool {
        matches!(self, Format::Index | Format::Both)
    }

    pub(super) fn tag(self) -> bool {
        matches!(self, Format::Tag | Format::Both)
    }
}

/// The fallback tag of a subject: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.encoded())
}

/// The subject digest a fallback tag (`sha256-<hex>`, `sha512-<hex>`) stands for.
pub fn fallback_tag_subject(name: &str) -> Option<Digest> {
    let (alg, hex) = name.split_once('-')?;
    if alg != "sha256" && alg != "sha512" {
        return None;
    }
    Digest::parse(&format!("{alg}:{hex}")).ok()
}

/// Whether `name` is a fallback tag: such names are referrer bookkeeping, never images.
pub fn is_fallback_tag(name: &str) -> bool {
    fallback_tag_subject(name).is_some()
}

/// The subject of the document `descriptor` points at, when that document is a referrer: a
/// manifest or index (really one, see [`crate::graph::documents::Parsed::is_document`]) with a
/// `subject`. `None` for anything else, including a document that cannot be read.
pub fn referrer_subject(descriptor: &Descriptor, documents: &Documents<'_>) -> Option<Digest> {
    if !media_type::is_manifest_like(&descriptor.media_type) {
        return None;
    }
    let loaded = documents.get(descriptor);
    let parsed = loaded.as_ref().as_ref().ok()?;
    if !parsed.is_document() {
        return None;
    }
    parsed.document.subject().map(|s| s.digest.clone())
}

/// Whether an `index.json` entry is referrer bookkeeping rather than something that stands
/// for itself: a fallback-tag index, or an *untagged* entry whose manifest is a referrer. A
/// named entry is never bookkeeping, referrer or not: its name is someone's claim on it (it is
/// a root for gc, and resolvable by that name).
///
/// An untagged entry whose document cannot be read is *not* bookkeeping: not knowing, ocikit
/// treats it as an image. Everything that then uses it as one meets the read error itself and
/// says so — `gc` refuses to delete (it cannot mark what it cannot read), `ls` lists the entry
/// with the problem, a reference without a name counts it among the candidates. Taking it for
/// bookkeeping instead would hide an image and let gc sweep what it references; failing here
/// would let one bad entry break every listing of the layout.
pub fn is_bookkeeping(entry: &Descriptor, documents: &Documents<'_>) -> bool {
    match entry.ref_name() {
        Some(name) => is_fallback_tag(name),
        None => referrer_subject(entry, documents).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_tags_name_their_subject() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(fallback_tag(&d), format!("sha256-{}", d.encoded()));
        assert_eq!(fallback_tag_subject(&fallback_tag(&d)), Some(d));
        assert!(!is_fallback_tag("sha256-abc"));
        assert!(!is_fallback_tag("md5-d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_fallback_tag("v1"));
    }
}
