//! `index.json` as a mutable document that keeps what it does not understand.
//!
//! ocikit rewrites `index.json` when names are added or removed. The document is held as raw
//! JSON: the top-level members in their order, and one raw slice per entry of `manifests`, with
//! typed views of the entries beside them. Unknown top-level fields, unknown fields of entries,
//! the order of everything, and the very bytes of every entry ocikit does not touch survive a
//! rewrite — other tools put things there that ocikit must not drop — and parsing builds no
//! value tree, so an update costs little more than reading the file.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::spec::digest::Digest;
use crate::spec::document::{
    differential, from_value, from_value_ref, parse_json, Descriptor, Schema, REF_NAME,
};

/// The parsed `index.json` of a layout.
#[derive(Clone, Debug)]
pub struct IndexFile {
    /// Top-level members in file order; the one named `manifests` is rendered from `raw`.
    members: Vec<(String, Box<RawValue>)>,
    /// The entries of `manifests`, as they are in the file (or as ocikit wrote them).
    raw: Vec<Box<RawValue>>,
    /// Typed views of `raw`, index for index.
    entries: Vec<Descriptor>,
}

/// An object's members in order, values left raw.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Members, A::Error> {
                let mut members: Vec<(String, Box<RawValue>)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    // A repeated key: the last one wins, as it does for Go and serde. (A
                    // repeated field of the index is refused by the differential check.)
                    members.retain(|(k, _)| *k != key);
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(MembersVisitor)
    }
}

fn raw(value: &Value) -> Result<Box<RawValue>> {
    let text = serde_json::to_string(value).map_err(|source| Error::Serialize {
        what: "an index.json entry",
        source,
    })?;
    RawValue::from_string(text).map_err(|source| Error::Serialize {
        what: "an index.json entry",
        source,
    })
}

/// The error for a position past the last entry.
fn no_entry(i: usize) -> Error {
    Error::InvalidInput {
        what: format!("entry {i}"),
        reason: "is not in index.json".into(),
    }
}

impl IndexFile {
    /// An empty image index, as `init` writes it.
    pub fn empty() -> IndexFile {
        let member = |text: &str| RawValue::from_string(text.to_string()).ok();
        let members = [
            ("schemaVersion", member("2")),
            (
                "mediaType",
                member(&format!(
                    "\"{}\"",
                    crate::spec::document::media_type::OCI_INDEX
                )),
            ),
            ("manifests", member("[]")),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .collect();
        IndexFile {
            members,
            raw: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Parses `index.json` bytes; `what` names the file in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<IndexFile> {
        let shape = |pointer: &str, message: &str| Error::Json {
            file: what.to_string(),
            pointer: pointer.to_string(),
            message: message.to_string(),
        };
        let members = match serde_json::from_slice::<Members>(bytes) {
            Ok(Members(members)) => members,
            // Not an object, or not JSON: let the general parser say precisely what and where.
            Err(_) => {
                let value = parse_json::<Value>(bytes, what)?;
                return Err(match value {
                    Value::Object(_) => shape("", "the document could not be read as an object"),
                    _ => shape("", "the document is not a JSON object"),
                });
            }
        };
        // One pass over the bytes for what Go's encoding/json reads differently (a folded or
        // repeated field anywhere, in an entry or at the top), before anything is read.
        differential::check(bytes, Schema::Index, what)?;
        let manifests = members
            .iter()
            .find(|(k, _)| k == "manifests")
            .map(|(_, v)| v)
            .ok_or_else(|| shape("", "the required field manifests is missing"))?;
        let raw: Vec<Box<RawValue>> = serde_json::from_str(manifests.get())
            .map_err(|_| shape("/manifests", "manifests must be an array"))?;
        let entries = raw
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                // The fast typed parse; the path-tracking one only to name a problem's pointer.
                serde_json::from_str::<Descriptor>(entry.get()).or_else(|_| {
                    // Through a value, so the message names the pointer and not a line and
                    // column that would count from the entry rather than the file.
                    let value: Value = parse_json(entry.get().as_bytes(), what)?;
                    from_value_ref::<Descriptor>(&value, what).map_err(|e| match e {
                        Error::Json {
                            file,
                            pointer,
                            message,
                        } => Error::Json {
                            file,
                            pointer: format!("/manifests/{i}{pointer}"),
                            message,
                        },
                        other => other,
                    })
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(IndexFile {
            members,
            raw,
            entries,
        })
    }

    /// The entries of `manifests`, in file order.
    pub fn entries(&self) -> &[Descriptor] {
        &self.entries
    }

    /// The serialized document: the members in their order, compact between them, each entry's
    /// bytes as they were read or written.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.raw.iter().map(|r| r.get().len() + 1).sum::<usize>() + 256);
        out.push(b'{');
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, key);
            out.push(b':');
            if key == "manifests" {
                out.push(b'[');
                for (j, entry) in self.raw.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(entry.get().as_bytes());
                }
                out.push(b']');
            } else {
                out.extend_from_slice(value.get().as_bytes());
            }
        }
        out.push(b'}');
        out
    }

    /// Appends an entry given as JSON (so unknown fields of a copied entry survive).
    pub fn push_raw(&mut self, entry: Value) -> Result<()> {
        let descriptor = from_value::<Descriptor>(entry.clone(), "new index.json entry")?;
        self.raw.push(raw(&entry)?);
        self.entries.push(descriptor);
        Ok(())
    }

    /// The JSON of entry `i`, with every field it has.
    pub fn raw_entry(&self, i: usize) -> Option<Value> {
        serde_json::from_str(self.raw.get(i)?.get()).ok()
    }

    /// Replaces entry `i` with `entry`, keeping its place in the list.
    pub fn replace_raw(&mut self, i: usize, entry: Value) -> Result<()> {
        let descriptor = from_value::<Descriptor>(entry.clone(), "new index.json entry")?;
        if i >= self.raw.len() {
            return Err(no_entry(i));
        }
        self.raw[i] = raw(&entry)?;
        self.entries[i] = descriptor;
        Ok(())
    }

    /// Removes every entry for which `remove` returns true; returns how many went.
    pub fn remove_where(&mut self, mut remove: impl FnMut(&Descriptor) -> bool) -> usize {
        let keep: Vec<bool> = self.entries.iter().map(|d| !remove(d)).collect();
        let before = self.entries.len();
        let mut flags = keep.iter();
        self.entries.retain(|_| *flags.next().unwrap_or(&true));
        let mut flags = keep.iter();
        self.raw.retain(|_| *flags.next().unwrap_or(&true));
        before - self.entries.len()
    }

    /// Removes the entries at `positions`; returns how many went.
    pub fn remove_positions(&mut self, positions: &std::collections::BTreeSet<usize>) -> usize {
        let mut position = 0;
        self.remove_where(|_| {
            let remove = positions.contains(&position);
            position += 1;
            remove
        })
    }

    /// Sets annotation `key` of entry `i` to `value`, creating `annotations` when needed.
    pub fn set_annotation(&mut self, i: usize, key: &str, value: &str) -> Result<()> {
        let mut entry = self.raw_entry(i).ok_or_else(|| no_entry(i))?;
        let object = entry.as_object_mut().ok_or_else(|| Error::Json {
            file: "index.json".into(),
            pointer: format!("/manifests/{i}"),
            message: "the entry is not an object".into(),
        })?;
        let annotations = object
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !annotations.is_object() {
            *annotations = Value::Object(Map::new());
        }
        if let Some(map) = annotations.as_object_mut() {
            map.insert(key.to_string(), Value::from(value));
        }
        self.replace_raw(i, entry)
    }

    /// Indexes of entries named exactly `name`.
    pub fn find_name(&self, name: &str) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, d)| d.ref_name() == Some(name))
            .map(|(i, _)| i)
            .collect()
    }

    /// Indexes of entries whose digest is `digest`.
    pub fn find_digest(&self, digest: &Digest) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, d)| &d.digest == digest)
            .map(|(i, _)| i)
            .collect()
    }
}

/// Checks that `name` is usable as `org.opencontainers.image.ref.name` (image-spec grammar:
/// components of alphanumerics joined by `-._:@+` or `--`, separated by `/`).
pub fn validate_ref_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("a name cannot be empty"));
    }
    for component in name.split('/') {
        let bytes = component.as_bytes();
        let starts_and_ends_alnum = bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
        if !starts_and_ends_alnum {
            return Err(invalid(
                "each '/'-separated component must start and end with a letter or digit",
            ));
        }
        let mut previous_separator: Option<u8> = None;
        for &b in bytes {
            if b.is_ascii_alphanumeric() {
                previous_separator = None;
            } else if matches!(b, b'-' | b'.' | b'_' | b':' | b'@' | b'+') {
                // Only "--" may repeat a separator.
                if let Some(prev) = previous_separator {
                    if !(prev == b'-' && b == b'-') {
                        return Err(invalid("separators cannot repeat (except '--')"));
                    }
                }
                previous_separator = Some(b);
            } else {
                return Err(invalid(
                    "only letters, digits, '/', and the separators - . _ : @ + are allowed",
                ));
            }
        }
    }
    Ok(())
}

/// The key of the annotation that names entries.
pub const NAME_KEY: &str = REF_NAME;

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"x-unknown":1}"#;

    #[test]
    fn keeps_unknown_fields_and_order() {
        let text = format!(r#"{{"schemaVersion":2,"zzz":true,"manifests":[{ENTRY}],"aaa":[1]}}"#);
        let mut index = IndexFile::parse(text.as_bytes(), "index.json").unwrap();
        index.set_annotation(0, NAME_KEY, "v1").unwrap();
        let out = String::from_utf8(index.to_bytes()).unwrap();
        assert!(
            out.starts_with(r#"{"schemaVersion":2,"zzz":true,"manifests":[{"mediaType""#),
            "{out}"
        );
        assert!(out.contains(r#""x-unknown":1"#));
        assert!(out.ends_with(r#""aaa":[1]}"#));
        assert_eq!(index.find_name("v1"), vec![0]);
        assert_eq!(index.remove_where(|d| d.ref_name() == Some("v1")), 1);
        assert!(index.entries().is_empty());
    }

    #[test]
    fn untouched_entries_keep_their_exact_bytes() {
        let pretty_entry = "{\n  \"size\": 0,\n  \"digest\": \"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\n  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\"\n}";
        let text = format!(r#"{{"manifests":[{pretty_entry},{ENTRY}],"schemaVersion":2}}"#);
        let mut index = IndexFile::parse(text.as_bytes(), "index.json").unwrap();
        index.set_annotation(1, NAME_KEY, "v1").unwrap();
        let out = String::from_utf8(index.to_bytes()).unwrap();
        assert!(
            out.starts_with(&format!(r#"{{"manifests":[{pretty_entry},"#)),
            "{out}"
        );
        assert!(out.ends_with(r#"],"schemaVersion":2}"#), "{out}");
        assert_eq!(
            IndexFile::parse(out.as_bytes(), "x")
                .unwrap()
                .find_name("v1"),
            vec![1]
        );
    }

    #[test]
    fn rejects_wrong_shapes_with_pointer() {
        let err = IndexFile::parse(br#"{"manifests":{}}"#, "index.json").unwrap_err();
        assert!(err.to_string().contains("/manifests"), "{err}");
        let err = IndexFile::parse(br#"[]"#, "index.json").unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
        let err = IndexFile::parse(br#"{"manifests":[{"digest":"x"}]}"#, "index.json").unwrap_err();
        assert!(err.to_string().contains("/manifests/0"), "{err}");
    }

    #[test]
    fn refuses_what_go_reads_differently() {
        let other = ENTRY.replace("e3b0c442", "00000000");
        let refused = [
            // The issue's example: Go reads the digest from "Digest".
            (
                format!(
                    r#"{{"manifests":[{}]}}"#,
                    ENTRY.replace(r#""size""#, r#""Digest":"x","size""#)
                ),
                "/manifests/0/Digest",
            ),
            // A repeated "manifests": Go merges the arrays element by element.
            (
                format!(r#"{{"manifests":[{ENTRY}],"manifests":[{other}]}}"#),
                "/manifests",
            ),
            (
                format!(r#"{{"Manifests":[{other}],"manifests":[{ENTRY}]}}"#),
                "/Manifests",
            ),
        ];
        for (text, pointer) in refused {
            let err = IndexFile::parse(text.as_bytes(), "index.json").unwrap_err();
            assert!(
                matches!(&err, Error::ReadDifferently { pointer: p, .. } if p == pointer),
                "{text}: {err}"
            );
        }
        // Nesting that serde would skip unbounded in an unknown member is refused.
        let deep = format!(
            r#"{{"manifests":[{ENTRY}],"x":{}{}}}"#,
            "[".repeat(10_001),
            "]".repeat(10_001)
        );
        let err = IndexFile::parse(deep.as_bytes(), "index.json").unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }

    #[test]
    fn ref_name_grammar() {
        for ok in [
            "v1",
            "docker.io/library/alpine:3.20",
            "a--b",
            "a@b",
            "1.0+build",
        ] {
            validate_ref_name(ok).unwrap();
        }
        for bad in ["", "-a", "a-", "a..b", "a//b", "a b", "/a", "a/"] {
            assert!(validate_ref_name(bad).is_err(), "{bad}");
        }
    }
}
