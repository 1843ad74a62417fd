//! The vocabulary of `docker save` archives: `manifest.json`, Docker repository tags, and the
//! legacy layer directories (`<id>/json`, `<id>/VERSION`, `<id>/layer.tar`) and `repositories`
//! file that loaders from before Docker 1.10 read. Bytes in, values out; no I/O.
//!
//! An archive lists its images in `manifest.json`: each one's config file, its `RepoTags`
//! (`repository:tag`) and its layer files, in order. Since Docker 25 the files are
//! `blobs/sha256/<hex>` and the archive is an OCI layout too (`oci-layout`, `index.json`);
//! before, they were `<hex>.json` and `<id>/layer.tar`. Layer files are tars, uncompressed as
//! Docker writes them (loaders decompress what is compressed).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::spec::digest::{Algorithm, Digest, Hasher};
use crate::spec::document::{canonical, parse_document, Schema};

/// The version a legacy layer directory's `VERSION` file holds.
pub const LEGACY_VERSION: &str = "1.0";

/// One image of `manifest.json` (moby's `tarexport.manifestItem`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ManifestItem {
    /// The config file's path in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// `repository:tag` names; `null` (absent) for an untagged image.
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// The layer files' paths, bottom first.
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
    /// Unused by loaders; kept so that what is read is what was written.
    #[serde(rename = "Parent", default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Descriptors of foreign layers, by diff_id.
    #[serde(
        rename = "LayerSources",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub layer_sources: Option<BTreeMap<String, Value>>,
}

/// Parses `manifest.json` (named `what` in errors), refusing what Go reads differently.
pub fn parse_manifest(bytes: &[u8], what: &str) -> Result<Vec<ManifestItem>> {
    parse_document(bytes, Schema::DockerSaveManifest, what)
}

/// `manifest.json` for `items`, as Docker writes it (fields in its order, no whitespace).
pub fn manifest_bytes(items: &[ManifestItem]) -> Vec<u8> {
    // A list of plain structs and strings cannot fail to serialize.
    serde_json::to_vec(items).unwrap_or_default()
}

/// A Docker repository tag `repository:tag`, split, when `text` is one: a repository of
/// `/`-separated components (lowercase letters and digits joined by `.`, `_`, `__` or `-`;
/// the first may be a registry host with a port) and a tag of up to 128 word characters, `.`
/// and `-`, not starting with either.
pub fn split_repo_tag(text: &str) -> Option<(&str, &str)> {
    let slash = text.rfind('/').map_or(0, |i| i + 1);
    let colon = slash + text[slash..].rfind(':')?;
    let (repository, tag) = (&text[..colon], &text[colon + 1..]);
    (is_repository(repository) && is_tag(tag)).then_some((repository, tag))
}

/// Whether `tag` is a valid Docker tag.
pub fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(&bytes[0])
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

/// Whether `repository` is a valid Docker repository name.
pub fn is_repository(repository: &str) -> bool {
    if repository.is_empty() || repository.len() > 255 {
        return false;
    }
    let mut components = repository.split('/').peekable();
    let first = components.next().unwrap_or_default();
    let host = first.contains(['.', ':']) || first == "localhost";
    if host && components.peek().is_some() {
        is_host(first) && components.all(is_path_component)
    } else {
        is_path_component(first) && components.all(is_path_component)
    }
}

fn is_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    name.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

fn is_path_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    // Separators between runs of [a-z0-9]: one `.`, one `_`, `__`, or any number of `-`.
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// The chain IDs of layers with these diff_ids (Docker's `layer.CreateChainID`): the first is
/// its diff_id, each next one `sha256(<previous chain ID> + " " + <diff_id>)`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(previous) => {
                let mut hasher = Hasher::new(Algorithm::Sha256);
                hasher.update(format!("{previous} {diff_id}").as_bytes());
                hasher.finish()
            }
        };
        out.push(next);
    }
    out
}

/// The `json` file of a legacy layer directory `id` (over `parent`), as containers/image
/// writes it: the top layer's also carries the image config's runtime fields.
pub(crate) fn legacy_layer_json(id: &str, parent: Option<&str>, top_of: Option<&Value>) -> Vec<u8> {
    let mut json = serde_json::Map::new();
    json.insert("id".into(), Value::from(id));
    if let Some(parent) = parent {
        json.insert("parent".into(), Value::from(parent));
    }
    if let Some(Value::Object(config)) = top_of {
        for field in [
            "architecture",
            "config",
            "container",
            "container_config",
            "created",
            "docker_version",
            "os",
        ] {
            if let Some(value) = config.get(field) {
                json.insert(field.into(), value.clone());
            }
        }
    }
    canonical::to_vec(&Value::Object(json))
}

/// The legacy `repositories` file: repository → tag → the image's top legacy layer id.
pub fn repositories_bytes(tags: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<u8> {
    // Maps of strings cannot fail to serialize; BTreeMaps keep it sorted.
    serde_json::to_vec(tags).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_tags_follow_dockers_grammar() {
        for (text, parts) in [
            ("app:1", Some(("app", "1"))),
            ("localhost/app:1", Some(("localhost/app", "1"))),
            (
                "127.0.0.1:5000/a/b:v1.2-rc",
                Some(("127.0.0.1:5000/a/b", "v1.2-rc")),
            ),
            (
                "docker.io/library/alpine:3.20",
                Some(("docker.io/library/alpine", "3.20")),
            ),
            ("my_app__x.y-z:latest", Some(("my_app__x.y-z", "latest"))),
            ("v1", None),
            ("App:1", None),
            ("app:", None),
            ("app:-x", None),
            ("a..b:1", None),
            ("a___b:1", None),
            ("app:1/x", None),
            ("/app:1", None),
            (
                "Registry.example.com/app:1",
                Some(("Registry.example.com/app", "1")),
            ),
        ] {
            assert_eq!(split_repo_tag(text), parts, "{text}");
        }
        assert!(!is_tag(&"x".repeat(129)));
    }

    #[test]
    fn chain_ids_are_dockers() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn manifest_json_round_trips_and_refuses_folded_fields() {
        let items = vec![ManifestItem {
            config: "blobs/sha256/c".into(),
            repo_tags: Some(vec!["app:1".into()]),
            layers: vec!["blobs/sha256/l".into()],
            parent: None,
            layer_sources: None,
        }];
        let bytes = manifest_bytes(&items);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"[{"Config":"blobs/sha256/c","RepoTags":["app:1"],"Layers":["blobs/sha256/l"]}]"#
        );
        assert_eq!(parse_manifest(&bytes, "m").unwrap(), items);
        let folded = br#"[{"Config":"a","config":"b","Layers":[]}]"#;
        let err = parse_manifest(folded, "manifest.json").unwrap_err();
        assert!(err.to_string().contains("/0/config"), "{err}");
    }
}
