//! `index.json` as a mutable document that keeps what it does not understand.
//!
//! ocikit rewrites `index.json` when names are added or removed. Unknown top-level fields,
//! unknown fields of entries and the order of entries all survive the rewrite (serde_json's
//! `preserve_order`), because other tools put things there that ocikit must not drop.

use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::document::{from_value, from_value_ref, parse_json, Descriptor, REF_NAME};
use crate::error::{Error, Result};

/// The parsed `index.json` of a layout.
#[derive(Clone, Debug)]
pub struct IndexFile {
    value: Map<String, Value>,
    entries: Vec<Descriptor>,
}

impl IndexFile {
    /// An empty image index, as `init` writes it.
    pub fn empty() -> IndexFile {
        let mut value = Map::new();
        value.insert("schemaVersion".into(), Value::from(2));
        value.insert(
            "mediaType".into(),
            Value::from(crate::document::media_type::OCI_INDEX),
        );
        value.insert("manifests".into(), Value::Array(Vec::new()));
        IndexFile {
            value,
            entries: Vec::new(),
        }
    }

    /// Parses `index.json` bytes; `what` names the file in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<IndexFile> {
        // Typed entries straight from the bytes cost less than converting each parsed value;
        // the value-by-value path below runs only to name the pointer of a problem.
        #[derive(serde::Deserialize)]
        struct Entries {
            manifests: Vec<Descriptor>,
        }
        let value = parse_json::<Value>(bytes, what)?;
        let typed = serde_json::from_slice::<Entries>(bytes).ok();
        let Value::Object(value) = value else {
            return Err(Error::Json {
                file: what.to_string(),
                pointer: String::new(),
                message: "the document is not a JSON object".to_string(),
            });
        };
        let manifests = match value.get("manifests") {
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(Error::Json {
                    file: what.to_string(),
                    pointer: "/manifests".to_string(),
                    message: "manifests must be an array".to_string(),
                })
            }
            None => {
                return Err(Error::Json {
                    file: what.to_string(),
                    pointer: String::new(),
                    message: "the required field manifests is missing".to_string(),
                })
            }
        };
        if let Some(typed) = typed {
            if typed.manifests.len() == manifests.len() {
                return Ok(IndexFile {
                    value,
                    entries: typed.manifests,
                });
            }
        }
        let entries = manifests
            .iter()
            .enumerate()
            .map(|(i, item)| {
                from_value_ref::<Descriptor>(item, what).map_err(|e| match e {
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
            .collect::<Result<Vec<_>>>()?;
        Ok(IndexFile { value, entries })
    }

    /// The entries of `manifests`, in file order.
    pub fn entries(&self) -> &[Descriptor] {
        &self.entries
    }

    /// The serialized document (compact; unknown fields and entry order kept).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A Map of Values always serializes.
        serde_json::to_vec(&self.value).unwrap_or_default()
    }

    fn manifests_mut(&mut self) -> &mut Vec<Value> {
        match self
            .value
            .entry("manifests")
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items,
            other => {
                *other = Value::Array(Vec::new());
                match other {
                    Value::Array(items) => items,
                    _ => unreachable!("just set to an array"),
                }
            }
        }
    }

    /// Appends an entry given as raw JSON (so unknown fields of a copied entry survive).
    pub fn push_raw(&mut self, entry: Value) -> Result<()> {
        let descriptor = from_value::<Descriptor>(entry.clone(), "new index.json entry")?;
        self.manifests_mut().push(entry);
        self.entries.push(descriptor);
        Ok(())
    }

    /// The raw JSON of entry `i`.
    pub fn raw_entry(&self, i: usize) -> Option<&Value> {
        self.value.get("manifests")?.as_array()?.get(i)
    }

    /// Replaces entry `i` with `entry` (raw JSON), keeping its place in the list.
    pub fn replace_raw(&mut self, i: usize, entry: Value) -> Result<()> {
        let descriptor = from_value::<Descriptor>(entry.clone(), "new index.json entry")?;
        let slot = self
            .manifests_mut()
            .get_mut(i)
            .ok_or_else(|| Error::Invalid(format!("index.json has no entry {i}")))?;
        *slot = entry;
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
        self.manifests_mut()
            .retain(|_| *flags.next().unwrap_or(&true));
        before - self.entries.len()
    }

    /// Sets annotation `key` of entry `i` to `value`, creating `annotations` when needed.
    pub fn set_annotation(&mut self, i: usize, key: &str, value: &str) -> Result<()> {
        let raw = self
            .manifests_mut()
            .get_mut(i)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| Error::Invalid(format!("index.json has no entry {i}")))?;
        let annotations = raw
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !annotations.is_object() {
            *annotations = Value::Object(Map::new());
        }
        if let Some(map) = annotations.as_object_mut() {
            map.insert(key.to_string(), Value::from(value));
        }
        let updated = from_value::<Descriptor>(raw.clone().into(), "index.json entry")?;
        self.entries[i] = updated;
        Ok(())
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
    fn rejects_wrong_shapes_with_pointer() {
        let err = IndexFile::parse(br#"{"manifests":{}}"#, "index.json").unwrap_err();
        assert!(err.to_string().contains("/manifests"), "{err}");
        let err = IndexFile::parse(br#"[]"#, "index.json").unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
        let err = IndexFile::parse(br#"{"manifests":[{"digest":"x"}]}"#, "index.json").unwrap_err();
        assert!(err.to_string().contains("/manifests/0"), "{err}");
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
