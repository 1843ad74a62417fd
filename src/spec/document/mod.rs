//! Read-only views of OCI and Docker documents.
//!
//! A view is parsed from the bytes it came from and never written back: the bytes are the truth
//! (PRODUCT.md §Principles). The structs hold only the fields ocikit uses; what they leave out is
//! still in the bytes, which is why no document struct implements `Serialize` (a descriptor does:
//! ocikit writes descriptors into the documents it creates).

pub mod canonical;
pub mod differential;
pub mod media_type;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::spec::digest::Digest;
use crate::spec::platform::Platform;

pub use differential::Schema;

/// Annotations: string keys to string values.
pub type Annotations = BTreeMap<String, String>;

/// The annotation that names an `index.json` entry.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation in which containerd (and Docker 25+, and `ctr images export`) keeps an
/// entry's full reference (`docker.io/library/alpine:3.20`), `REF_NAME` holding only its tag.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The annotation that titles a file layer of an artifact (a file's name).
pub const TITLE: &str = "org.opencontainers.image.title";
/// The annotation for creation time.
pub const CREATED: &str = "org.opencontainers.image.created";

/// A content descriptor. It serializes (for descriptors ocikit writes, and for JSON output) with
/// absent fields left out.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    #[serde(deserialize_with = "int64_size")]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Annotations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor of `media_type`, `digest` and `size` with every optional field absent.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: None,
            data: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// The value of annotation `key`, when present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// The `org.opencontainers.image.ref.name` annotation.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotation(REF_NAME)
    }

    /// The full reference containerd records (`io.containerd.image.name`); its `ref.name` is
    /// then only the tag.
    pub fn containerd_name(&self) -> Option<&str> {
        self.annotation(CONTAINERD_NAME)
    }

    /// The names a reference can select this entry by: `ref.name`, then containerd's.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.ref_name().into_iter().chain(self.containerd_name())
    }
}

/// A descriptor's `size`: an int64 in the spec and in Go, so a larger number, which Go refuses,
/// is refused here too rather than read as a u64.
fn int64_size<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    let size = u64::deserialize(d)?;
    if size > i64::MAX as u64 {
        return Err(serde::de::Error::custom(format!(
            "size {size} is larger than an int64 can hold"
        )));
    }
    Ok(size)
}

/// An image manifest (OCI or Docker v2 schema2), or the pre-release artifact manifest.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Absent (0) only in the pre-release artifact manifest, which had no schemaVersion.
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Absent only in the pre-release artifact manifest.
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The pre-release artifact manifest's name for `layers`.
    #[serde(default)]
    pub blobs: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default)]
    pub annotations: Option<Annotations>,
}

impl Manifest {
    /// The artifact type as the distribution-spec defines it for referrers: `artifactType`, or
    /// else the config's media type.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.as_str()))
    }

    /// Layers, or the `blobs` of a pre-release artifact manifest.
    pub fn content(&self) -> &[Descriptor] {
        if self.layers.is_empty() {
            &self.blobs
        } else {
            &self.layers
        }
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default)]
    pub annotations: Option<Annotations>,
}

impl Index {
    /// Each member's platform as written (`os/arch[/variant]`), `(none)` where a member has
    /// none, in order: what a caller that must pick one member shows the user.
    pub fn member_platforms(&self) -> Vec<String> {
        self.manifests
            .iter()
            .map(|m| {
                m.platform
                    .as_ref()
                    .map_or("(none)".into(), |p| p.to_string())
            })
            .collect()
    }
}

/// An image configuration (OCI or Docker); only the fields ocikit reports.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub config: Option<RuntimeConfig>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
    #[serde(default)]
    pub history: Vec<Value>,
}

/// The `config` object of an image configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<Annotations>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
}

/// The `rootfs` object of an image configuration.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// A manifest-like document, as found behind a descriptor.
#[derive(Clone, Debug)]
pub enum Document {
    Manifest(Box<Manifest>),
    Index(Box<Index>),
}

impl Document {
    /// Parses manifest-like bytes. The media type comes from the descriptor when known,
    /// else from the document's own `mediaType`, else from its shape.
    pub fn parse(bytes: &[u8], media_type: Option<&str>, what: &str) -> Result<Document> {
        let value: Value = parse_document(bytes, Schema::ManifestLike, what)?;
        let own = value.get("mediaType").and_then(Value::as_str);
        let detected = media_type
            .filter(|m| media_type::is_manifest_like(m))
            .or(own.filter(|m| media_type::is_manifest_like(m)));
        let is_index = match detected.map(media_type::kind) {
            Some(media_type::Kind::Index) => true,
            Some(_) => false,
            None => value.get("manifests").is_some(),
        };
        if is_index {
            from_value(value, what).map(|i| Document::Index(Box::new(i)))
        } else if detected.is_some()
            || value.get("config").is_some()
            || value.get("blobs").is_some()
        {
            from_value(value, what).map(|m| Document::Manifest(Box::new(m)))
        } else {
            Err(Error::UnexpectedMediaType {
                what: what.to_string(),
                media_type: media_type.or(own).unwrap_or("(none)").to_string(),
                expected: "which is neither a manifest nor an index".to_string(),
            })
        }
    }

    /// The document's `subject`, if any.
    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            Document::Manifest(m) => m.subject.as_ref(),
            Document::Index(i) => i.subject.as_ref(),
        }
    }

    /// The document's `annotations`, if any.
    pub fn annotations(&self) -> Option<&Annotations> {
        match self {
            Document::Manifest(m) => m.annotations.as_ref(),
            Document::Index(i) => i.annotations.as_ref(),
        }
    }

    /// The artifact type a referrers listing shows for this document.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        match self {
            Document::Manifest(m) => m.effective_artifact_type(),
            Document::Index(i) => i.artifact_type.as_deref(),
        }
    }

    /// The artifact type shown for a listed image or subject: `artifactType`, or else, for a
    /// manifest, its config's media type unless that is an image config's.
    pub fn listed_artifact_type(&self) -> Option<&str> {
        match self {
            Document::Manifest(m) => m.artifact_type.as_deref().or_else(|| {
                m.config
                    .as_ref()
                    .filter(|c| media_type::kind(&c.media_type) != media_type::Kind::Config)
                    .map(|c| c.media_type.as_str())
            }),
            Document::Index(i) => i.artifact_type.as_deref(),
        }
    }
}

/// Parses JSON bytes into `T`, reporting the JSON pointer of the first problem. Trailing
/// bytes after the value are an error, as they are to Go's `json.Unmarshal`.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    // Plain serde first: tracking the path costs an allocation per value, and is only needed
    // to name the pointer of a problem.
    if let Ok(parsed) = serde_json::from_slice(bytes) {
        return Ok(parsed);
    }
    let json_error = |pointer: String, message: String| Error::Json {
        file: what.to_string(),
        pointer,
        message,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| json_error(pointer_of(e.path()), e.inner().to_string()))?;
    de.end()
        .map_err(|e| json_error(String::new(), e.to_string()))?;
    Ok(parsed)
}

/// Parses a document of the specs (read as `schema`) into `T`, refusing it when Go's
/// `encoding/json` would read it differently ([`differential`]). Every document ocikit reads
/// from a layout comes through here or through the store's `IndexFile::parse`.
pub fn parse_document<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    schema: Schema,
    what: &str,
) -> Result<T> {
    let parsed = parse_json(bytes, what);
    // Checked whether or not the parse succeeded: a repeated field fails the typed parse, and
    // the differential says better why. When both fail on the syntax, the parse's error is
    // the one that names a pointer.
    match (parsed, differential::check(bytes, schema, what)) {
        (Err(e), Err(Error::Json { .. })) => Err(e),
        (_, Err(e)) => Err(e),
        (parsed, Ok(())) => parsed,
    }
}

/// Converts an already parsed value into `T`, reporting the JSON pointer of the first problem.
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T> {
    if let Ok(converted) = T::deserialize(&value) {
        return Ok(converted);
    }
    serde_path_to_error::deserialize(value).map_err(|e| Error::Json {
        file: what.to_string(),
        pointer: pointer_of(e.path()),
        message: e.inner().to_string(),
    })
}

/// [`from_value`] for a borrowed value: nothing is copied unless there is a problem to report.
pub(crate) fn from_value_ref<T: serde::de::DeserializeOwned>(
    value: &Value,
    what: &str,
) -> Result<T> {
    T::deserialize(value).or_else(|_| from_value(value.clone(), what))
}

/// Renders a serde path as an RFC 6901 JSON pointer.
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { variant } => pointer.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_json_pointer_of_bad_field() {
        let bytes = br#"{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:nothex","size":1}]}"#;
        let err = Document::parse(bytes, None, "index.json").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/manifests/0/digest"), "{text}");
    }

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn trailing_bytes_are_refused() {
        let err = parse_json::<Descriptor>(
            format!(r#"{{"mediaType":"a/b","digest":"{EMPTY}","size":0}} {{}}"#).as_bytes(),
            "d",
        )
        .unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"a/b","digest":"{EMPTY}","size":0}},"layers":[]}}"#
        );
        Document::parse(manifest.as_bytes(), None, "m").unwrap();
        let err = Document::parse(format!("{manifest}\n{{}}").as_bytes(), None, "m").unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }

    #[test]
    fn differentials_are_refused_with_their_pointer() {
        // A repeated field fails serde's typed parse too; the differential is what is said.
        let repeated = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"a/b","digest":"{EMPTY}","size":0,"size":1}},"layers":[]}}"#
        );
        let refused_at = |err: &Error, at: &str| {
            assert!(
                matches!(err, Error::ReadDifferently { pointer, .. } if pointer == at),
                "{err}"
            )
        };
        let err = Document::parse(repeated.as_bytes(), None, "manifest x").unwrap_err();
        refused_at(&err, "/config/size");
        // A folded name parses fine by itself.
        let folded = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"a/b","digest":"{EMPTY}","size":0}},"layers":[],"Layers":[{{}}]}}"#
        );
        let err = Document::parse(folded.as_bytes(), None, "manifest x").unwrap_err();
        refused_at(&err, "/Layers");
        assert!(
            err.to_string()
                .starts_with("manifest x cannot be used safely: at /Layers"),
            "{err}"
        );
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[],"Diff_IDs":[]}}"#;
        let err = parse_document::<ImageConfig>(config, Schema::Config, "config c").unwrap_err();
        refused_at(&err, "/rootfs/Diff_IDs");
        // A syntax error is the parse's, with its pointer.
        let err = parse_document::<Descriptor>(
            br#"{"mediaType":"a/b","digest":"x","size":0}"#,
            Schema::Descriptor,
            "d",
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Json { pointer, .. } if pointer == "/digest"),
            "{err}"
        );
    }

    #[test]
    fn sizes_beyond_int64_are_refused() {
        let descriptor =
            |size: &str| format!(r#"{{"mediaType":"a/b","digest":"{EMPTY}","size":{size}}}"#);
        let max = parse_json::<Descriptor>(descriptor("9223372036854775807").as_bytes(), "d");
        assert_eq!(max.unwrap().size, i64::MAX as u64);
        // Go reads -0 as 0; refusing it too is the safe side.
        for bad in [
            "-0",
            "9223372036854775808",
            "18446744073709551615",
            "1e3",
            "1.0",
            "-1",
            "\"1\"",
        ] {
            let err = parse_json::<Descriptor>(descriptor(bad).as_bytes(), "d").unwrap_err();
            assert!(err.to_string().contains("/size"), "{bad}: {err}");
        }
    }

    #[test]
    fn detects_kind_by_shape_and_media_type() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            Document::parse(index, None, "x").unwrap(),
            Document::Index(_)
        ));
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"a/b","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
        assert!(matches!(
            Document::parse(manifest, None, "x").unwrap(),
            Document::Manifest(_)
        ));
        assert!(Document::parse(b"{}", None, "x").is_err());
        assert!(Document::parse(b"not json", None, "x").is_err());
    }
}
