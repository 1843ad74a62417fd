//! Manifests and indexes, read once per digest and shared by every walk and every referrers
//! lookup over one layout.
//!
//! A command that both discovers referrers and walks images (`ls`, `gc`, `rm`) reads each
//! document once: [`Documents`] caches what it read, by digest, including what could not be
//! read (so a failure is reported by whoever needs the document, and never retried).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self, Kind, OCI_ARTIFACT_MANIFEST, OCI_INDEX};
use crate::spec::document::{from_value, parse_document, Descriptor, Document, Schema};
use crate::store::layout::LayoutRead;

/// A map keyed by digests (or other keys an attacker does not choose freely: a digest is
/// hashed content). A walk looks one up for every descriptor, so a fast hash is what it needs,
/// not a DoS-resistant one.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A manifest or index as read.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The media type it was read as: the descriptor's when that names a manifest or index,
    /// else the document's own `mediaType`, else what its shape says.
    pub media_type: String,
    /// Its length in bytes.
    pub size: u64,
    pub document: Document,
    /// Its bytes, when the cache keeps them ([`Documents::keeping_bytes`]).
    pub bytes: Option<Vec<u8>>,
}

/// What reading one document gave.
pub type Loaded = Result<Parsed>;

impl Parsed {
    /// Parses the bytes of blob `digest` as what `document_kind` says they are; `claimed` is
    /// what the descriptor that reached them says (none when selected by digest alone).
    pub fn from_bytes(
        bytes: Vec<u8>,
        claimed: Option<&str>,
        digest: &Digest,
        keep_bytes: bool,
    ) -> Result<Parsed> {
        let what = match claimed {
            Some(_) => format!("manifest {digest}"),
            None => format!("blob {digest}"),
        };
        let value: Value = parse_document(&bytes, Schema::ManifestLike, &what)?;
        let Some(kind) = document_kind(&value, claimed) else {
            return Err(Error::UnexpectedMediaType {
                what,
                media_type: own_of(&value).or(claimed).unwrap_or("(none)").to_string(),
                expected: "which is neither a manifest nor an index".to_string(),
            });
        };
        let is_index = kind == Kind::Index;
        // The media type it is read as: its own, else the descriptor's if that is the same
        // kind of document, else the usual one for the kind.
        let media_type = own_of(&value)
            .filter(|m| media_type::is_manifest_like(m))
            .or(claimed.filter(|m| {
                media_type::is_manifest_like(m) && (media_type::kind(m) == Kind::Index) == is_index
            }))
            .unwrap_or(if is_index {
                OCI_INDEX
            } else {
                media_type::OCI_MANIFEST
            })
            .to_string();
        let document = if is_index {
            Document::Index(Box::new(from_value(value, &what)?))
        } else {
            Document::Manifest(Box::new(from_value(value, &what)?))
        };
        Ok(Parsed {
            media_type,
            size: bytes.len() as u64,
            document,
            bytes: keep_bytes.then_some(bytes),
        })
    }

    /// Whether it really is a manifest or an index ([`is_document`]).
    pub fn is_document(&self) -> bool {
        is_document(&self.document, &self.media_type)
    }

    /// [`is_document`] as an error naming blob `digest`.
    pub fn require_document(&self, digest: &Digest) -> Result<()> {
        require_document(&self.document, &self.media_type, digest)
    }
}

/// Whether `document`, read as `media_type`, really is a manifest or an index, not just JSON
/// that a media type calls one: an index has `schemaVersion` 2, an image manifest
/// `schemaVersion` 2 and a `config`, a pre-release artifact manifest says so in its own
/// `mediaType`. Reading is lenient (a walk follows whatever descriptors a document holds,
/// which is the safe side for `gc`); this is the check for anything that records a claim about
/// the blob — a name, a `subject`, a referrer entry — so that ocikit never writes a manifest
/// media type for bytes that are not one (the empty `{}` blob, a config).
pub fn is_document(document: &Document, media_type: &str) -> bool {
    match document {
        Document::Index(index) => index.schema_version == 2,
        Document::Manifest(manifest) => {
            if media_type::kind(media_type) == Kind::ArtifactManifest {
                manifest.media_type.as_deref() == Some(OCI_ARTIFACT_MANIFEST)
            } else {
                manifest.schema_version == 2 && manifest.config.is_some()
            }
        }
    }
}

/// [`is_document`] as an error naming blob `digest`.
pub fn require_document(document: &Document, media_type: &str, digest: &Digest) -> Result<()> {
    if is_document(document, media_type) {
        return Ok(());
    }
    Err(Error::UnexpectedMediaType {
        what: format!("blob {digest}"),
        media_type: media_type.to_string(),
        expected: "but it is not one: a manifest needs schemaVersion 2 and a config, an index schemaVersion 2 and manifests".into(),
    })
}

/// A JSON document's own `mediaType`, when it is a string.
fn own_of(value: &Value) -> Option<&str> {
    value.get("mediaType").and_then(Value::as_str)
}

/// What a JSON document is — a manifest ([`Kind::Manifest`], [`Kind::ArtifactManifest`]) or an
/// index ([`Kind::Index`]) — whichever descriptor reached it: every reader of ocikit (the walk,
/// referrers, resolve, validate) reads a blob as the same kind, so what one follows the others
/// follow too, and the answer cannot depend on which descriptor came first.
///
/// The document's own `mediaType` decides when it names a manifest or index. Without one,
/// `claimed` (the descriptor's media type) decides if the document has the shape it says (an
/// index has `manifests`; a manifest does not have `manifests` without a `config` descriptor),
/// and the shape otherwise. `None`: neither a manifest nor an index (an image config, `{}`).
pub(crate) fn document_kind(value: &Value, claimed: Option<&str>) -> Option<Kind> {
    if let Some(own) = own_of(value).filter(|m| media_type::is_manifest_like(m)) {
        return Some(media_type::kind(own));
    }
    let has = |key: &str| value.get(key).is_some();
    // A manifest's config is a descriptor; an image config's `config` is no descriptor.
    let has_config = value
        .get("config")
        .is_some_and(|c| c.get("mediaType").is_some());
    let shape = if has("manifests") && !has_config {
        Some(Kind::Index)
    } else if has_config || has("blobs") {
        Some(Kind::Manifest)
    } else {
        None
    };
    match claimed
        .filter(|m| media_type::is_manifest_like(m))
        .map(media_type::kind)
    {
        Some(Kind::Index) if has("manifests") => Some(Kind::Index),
        Some(Kind::Index) => shape.or(Some(Kind::Index)),
        Some(_) if shape == Some(Kind::Index) => shape,
        Some(claim) => Some(claim),
        None => shape,
    }
}

/// Documents of one layout, each read once.
pub struct Documents<'a> {
    layout: &'a dyn LayoutRead,
    keep_bytes: bool,
    cache: Mutex<FastMap<Digest, Arc<Loaded>>>,
}

impl<'a> Documents<'a> {
    /// A cache over `layout` that keeps parsed views only.
    pub fn new(layout: &'a dyn LayoutRead) -> Documents<'a> {
        Documents {
            layout,
            keep_bytes: false,
            cache: Mutex::new(FastMap::default()),
        }
    }

    /// A cache that also keeps each document's bytes (for callers that hand them on).
    pub fn keeping_bytes(layout: &'a dyn LayoutRead) -> Documents<'a> {
        let mut documents = Documents::new(layout);
        documents.keep_bytes = true;
        documents
    }

    /// The layout read.
    pub fn layout(&self) -> &'a dyn LayoutRead {
        self.layout
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FastMap<Digest, Arc<Loaded>>> {
        // A panic elsewhere cannot leave the map half-updated (inserts are single calls).
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What reading `digest` gave, if it was read.
    pub fn cached(&self, digest: &Digest) -> Option<Arc<Loaded>> {
        self.lock().get(digest).cloned()
    }

    /// The digests read so far.
    pub fn cached_digests(&self) -> HashSet<Digest> {
        self.lock().keys().cloned().collect()
    }

    fn remember(&self, digest: &Digest, loaded: Loaded) -> Arc<Loaded> {
        self.lock()
            .entry(digest.clone())
            .or_insert_with(|| Arc::new(loaded))
            .clone()
    }

    /// The document `descriptor` points at (its size verified), read once.
    pub fn get(&self, descriptor: &Descriptor) -> Arc<Loaded> {
        if let Some(known) = self.cached(&descriptor.digest) {
            return known;
        }
        let loaded = self.layout.read_document(descriptor).and_then(|bytes| {
            Parsed::from_bytes(
                bytes,
                Some(&descriptor.media_type),
                &descriptor.digest,
                self.keep_bytes,
            )
        });
        self.remember(&descriptor.digest, loaded)
    }

    /// Takes what reading `digest` gave out of the cache (to own its error, say); `None` if it
    /// was not read.
    pub fn take(&self, digest: &Digest) -> Option<Loaded> {
        let shared = self.lock().remove(digest)?;
        Some(
            Arc::try_unwrap(shared).unwrap_or_else(|shared| match &*shared {
                Ok(parsed) => Ok(parsed.clone()),
                // Still shared by a walk that is alive: the error can only be repeated.
                Err(e) => Err(e.repeated()),
            }),
        )
    }

    /// A blob selected by digest alone, with no descriptor to say what it is: its own
    /// `mediaType` or its shape decide. `len` is its length when known.
    pub fn by_digest(&self, digest: &Digest, len: Option<u64>) -> Arc<Loaded> {
        if let Some(known) = self.cached(digest) {
            return known;
        }
        let loaded = self
            .layout
            .read_blob_limited(digest, len)
            .and_then(|bytes| Parsed::from_bytes(bytes, None, digest, self.keep_bytes));
        self.remember(digest, loaded)
    }

    /// A blob of `len` bytes found by listing `blobs/`: `None` unless its first bytes look like
    /// JSON (`{` after any whitespace), so that scans read only what can be a document and stay
    /// off the layers. An error is a blob that cannot be opened or read.
    pub fn sniff(&self, digest: &Digest, len: u64) -> Result<Option<Arc<Loaded>>> {
        if let Some(known) = self.cached(digest) {
            return Ok(Some(known));
        }
        let mut head = [0u8; 64];
        let mut raw = self.layout.open_blob_raw(digest)?;
        let n = raw
            .read(&mut head)
            .map_err(|e| Error::io("cannot read blob", digest.to_string(), e))?;
        drop(raw);
        if crate::codec::sniff::sniff(&head[..n]) != crate::codec::sniff::Format::Json {
            return Ok(None);
        }
        Ok(Some(self.by_digest(digest, Some(len))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str, claimed: Option<&str>) -> Result<Parsed> {
        let bytes = json.as_bytes().to_vec();
        let digest = Digest::sha256_of(&bytes);
        Parsed::from_bytes(bytes, claimed, &digest, false)
    }

    #[test]
    fn json_a_media_type_calls_a_manifest_is_not_necessarily_one() {
        let manifest = media_type::OCI_MANIFEST;
        let config = format!(
            r#"{{"mediaType":"a/b","digest":"{}","size":0}}"#,
            Digest::sha256_of(b"")
        );
        for (json, claimed, real) in [
            ("{}".to_string(), Some(manifest), false),
            (r#"{"architecture":"amd64"}"#.into(), Some(manifest), false),
            (
                format!(r#"{{"schemaVersion":2,"config":{config},"layers":[]}}"#),
                Some(manifest),
                true,
            ),
            (
                format!(r#"{{"schemaVersion":1,"config":{config}}}"#),
                None,
                false,
            ),
            (r#"{"schemaVersion":2,"manifests":[]}"#.into(), None, true),
            (
                r#"{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","blobs":[]}"#
                    .into(),
                None,
                true,
            ),
            ("{}".into(), Some(OCI_ARTIFACT_MANIFEST), false),
        ] {
            let p = parsed(&json, claimed).unwrap();
            assert_eq!(p.is_document(), real, "{json}");
            let digest = Digest::sha256_of(json.as_bytes());
            assert_eq!(p.require_document(&digest).is_ok(), real, "{json}");
        }
        // Without a claim, JSON of no recognizable shape is not read as a document at all.
        assert!(parsed("{}", None).is_err());
    }

    #[test]
    fn a_document_is_read_as_what_it_says_it_is_whichever_descriptor_came_first() {
        let config = format!(
            r#"{{"mediaType":"a/b","digest":"{}","size":0}}"#,
            Digest::sha256_of(b"")
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{config},"layers":[]}}"#,
            media_type::OCI_MANIFEST
        );
        for claimed in [None, Some(OCI_INDEX), Some(media_type::OCI_MANIFEST)] {
            let p = parsed(&manifest, claimed).unwrap();
            assert!(matches!(p.document, Document::Manifest(_)), "{claimed:?}");
            assert_eq!(p.media_type, media_type::OCI_MANIFEST);
        }
        // Without a mediaType of its own, an index that a descriptor calls a manifest is read
        // by its shape: as a manifest it would have no config, and nothing to follow.
        let index = format!(r#"{{"schemaVersion":2,"manifests":[{config}]}}"#);
        let p = parsed(&index, Some(media_type::OCI_MANIFEST)).unwrap();
        assert!(matches!(&p.document, Document::Index(i) if i.manifests.len() == 1));
        assert_eq!(p.media_type, OCI_INDEX);
        // JSON that is neither is still read leniently as what the descriptor says.
        let odd = parsed(r#"{"layers":[]}"#, Some(media_type::OCI_MANIFEST)).unwrap();
        assert!(matches!(odd.document, Document::Manifest(_)) && !odd.is_document());
    }
}
