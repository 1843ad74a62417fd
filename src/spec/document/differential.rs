//! Parser differentials: JSON members that Go's `encoding/json` reads differently from ocikit.
//!
//! skopeo, umoci, containerd and registries decode OCI documents with Go's `encoding/json`.
//! It matches a member name to a struct field case-insensitively, by Unicode simple folding
//! (`strings.EqualFold`): `"Digest"`, `"DIGEST"`, `"digeſt"` (long s, U+017F) and
//! `"\u212Aey"` (Kelvin sign) fill the fields `digest` and `key`. And when a name repeats, it
//! decodes every occurrence in turn into the same field: the last scalar wins, while objects
//! and arrays are decoded into what the earlier occurrence left there (merged). ocikit matches
//! names exactly and refuses a repeated field. A document with such a member means one thing
//! to ocikit and another to the tools around it, so ocikit must not act on it.
//!
//! [`scan`] finds every such member of a document, with its JSON pointer, in one pass over the
//! bytes that builds no value tree (keys are borrowed from the input unless they hold escapes).
//! Only the members Go decodes into struct fields are subject to this: the fields of each
//! object the specs define ([`Schema`]). Keys of string maps (`annotations`, `Labels`,
//! `ExposedPorts`, `Volumes`) are data that Go matches exactly, and when one repeats, Go and
//! serde both keep the last value; unknown members are read by neither. Both are left alone.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::{Error, Result};

/// What kind of document bytes are, which decides the fields of each of its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// The `oci-layout` file.
    LayoutHeader,
    /// A layout's `index.json`.
    Index,
    /// A manifest-like blob: an image manifest, an index, a Docker manifest or list, or a
    /// pre-release artifact manifest. Their fields together, because Go tools tell these apart
    /// by decoding a blob into a struct with the fields of all of them (containers/image's
    /// `GuessMIMEType`, containerd's manifest detection).
    ManifestLike,
    /// An image configuration (OCI or Docker).
    Config,
    /// A descriptor on its own.
    Descriptor,
    /// The `manifest.json` of a `docker save` archive: a list of images (moby's
    /// `tarexport.manifestItem`, which Docker, skopeo and containerd decode with Go).
    DockerSaveManifest,
}

/// What is wrong with a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A field's name appears more than once in one object.
    Repeated,
    /// The name is not a field's, but equals one under Go's case folding.
    CaseFolded {
        /// The field Go decodes the member into.
        field: &'static str,
    },
}

/// One member that Go's `encoding/json` reads differently from ocikit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Differential {
    /// The JSON pointer (RFC 6901) of the member.
    pub pointer: String,
    /// The member's name as the document spells it (after JSON unescaping).
    pub key: String,
    pub problem: Problem,
}

impl fmt::Display for Differential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Problem::Repeated => write!(
                f,
                "the field {:?} appears more than once in one object; Go's encoding/json \
                 (skopeo, umoci, containerd, registries) decodes every occurrence in turn, the \
                 last value winning and objects and arrays merging, while ocikit reads a field \
                 once, so other tools would read a different document",
                self.key
            ),
            Problem::CaseFolded { field } => write!(
                f,
                "the member {:?} is read as the field {field:?} by Go's encoding/json (skopeo, \
                 umoci, containerd, registries), which matches names case-insensitively, while \
                 ocikit reads only {field:?}, so other tools would read a different document",
                self.key
            ),
        }
    }
}

/// At most this many differentials are collected from one document: a hostile document may
/// repeat a name millions of times, and the first hundred say enough.
pub const MAX_REPORTED: usize = 100;

impl Differential {
    /// The error that refuses document `what` because of this member.
    pub fn into_error(self, what: &str) -> Error {
        Error::ReadDifferently {
            file: what.to_string(),
            message: self.to_string(),
            pointer: self.pointer,
        }
    }
}

/// Every member of `bytes` (read as `schema`) that Go reads differently, in document order,
/// at most [`MAX_REPORTED`].
///
/// Every value is visited, so the scan also fails, as serde_json's parse into a value does,
/// wherever Go would read something else or nothing: ill-formed UTF-8 or a lone surrogate
/// escape in any string (Go reads U+FFFD), nesting deeper than 128 (Go reads up to 10,000;
/// serde skips unknown members without a limit), and anything but one JSON value (a byte
/// order mark, trailing bytes). Real documents have none of these.
pub fn scan(bytes: &[u8], schema: Schema) -> serde_json::Result<Vec<Differential>> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Scan {
        node: schema.node(),
        path: None,
        found: &mut found,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// Refuses `bytes` (named `what` in errors) when [`scan`] finds a member (the error names the
/// first) or fails.
pub fn check(bytes: &[u8], schema: Schema, what: &str) -> Result<()> {
    let found = scan(bytes, schema).map_err(|e| Error::Json {
        file: what.to_string(),
        pointer: String::new(),
        message: e.to_string(),
    })?;
    match found.into_iter().next() {
        None => Ok(()),
        Some(d) => Err(d.into_error(what)),
    }
}

/// Whether Go's `encoding/json` matches member name `key` to the field named `field`
/// (`strings.EqualFold`). `field` is ASCII, as every spec field is; the only non-ASCII runes
/// whose simple case folding orbit holds an ASCII letter are the long s (U+017F, with `s` and
/// `S`) and the Kelvin sign (U+212A, with `k` and `K`). Dotless ı and dotted İ fold to nothing
/// but themselves in Go.
pub fn go_fold_equal(key: &str, field: &str) -> bool {
    let mut runes = key.chars();
    for f in field.bytes() {
        let Some(r) = runes.next() else {
            return false;
        };
        let same = match r {
            '\u{17F}' => f.eq_ignore_ascii_case(&b's'),
            '\u{212A}' => f.eq_ignore_ascii_case(&b'k'),
            r if r.is_ascii() => (r as u8).eq_ignore_ascii_case(&f),
            _ => false,
        };
        if !same {
            return false;
        }
    }
    runes.next().is_none()
}

// ---- the fields of each object the specs define ----

/// What a member's value is, as far as the scan cares.
#[derive(Clone, Copy)]
enum Node {
    /// A scalar, a string map, an array of strings, or anything not decoded into a struct:
    /// only visited.
    Leaf,
    /// An object decoded into a struct with these fields.
    Object(&'static [(&'static str, Node)]),
    /// An array of such objects.
    List(&'static [(&'static str, Node)]),
}

use Node::{Leaf, List, Object};

const PLATFORM: &[(&str, Node)] = &[
    ("architecture", Leaf),
    ("os", Leaf),
    ("os.version", Leaf),
    ("os.features", Leaf),
    ("variant", Leaf),
    ("features", Leaf),
];

const DESCRIPTOR: &[(&str, Node)] = &[
    ("mediaType", Leaf),
    ("digest", Leaf),
    ("size", Leaf),
    ("urls", Leaf),
    ("annotations", Leaf),
    ("data", Leaf),
    ("platform", Object(PLATFORM)),
    ("artifactType", Leaf),
];

const INDEX: &[(&str, Node)] = &[
    ("schemaVersion", Leaf),
    ("mediaType", Leaf),
    ("artifactType", Leaf),
    ("manifests", List(DESCRIPTOR)),
    ("subject", Object(DESCRIPTOR)),
    ("annotations", Leaf),
];

const MANIFEST_LIKE: &[(&str, Node)] = &[
    ("schemaVersion", Leaf),
    ("mediaType", Leaf),
    ("artifactType", Leaf),
    ("config", Object(DESCRIPTOR)),
    ("layers", List(DESCRIPTOR)),
    // The pre-release artifact manifest's name for layers.
    ("blobs", List(DESCRIPTOR)),
    ("manifests", List(DESCRIPTOR)),
    ("subject", Object(DESCRIPTOR)),
    ("annotations", Leaf),
];

/// The `config` object of an image configuration: the fields config.md lists (Memory,
/// MemorySwap, CpuShares and Healthcheck are reserved there, and Docker writes them).
const RUNTIME_CONFIG: &[(&str, Node)] = &[
    ("User", Leaf),
    ("ExposedPorts", Leaf),
    ("Env", Leaf),
    ("Entrypoint", Leaf),
    ("Cmd", Leaf),
    ("Volumes", Leaf),
    ("WorkingDir", Leaf),
    ("Labels", Leaf),
    ("StopSignal", Leaf),
    ("ArgsEscaped", Leaf),
    ("Memory", Leaf),
    ("MemorySwap", Leaf),
    ("CpuShares", Leaf),
    ("Healthcheck", Leaf),
];

const ROOTFS: &[(&str, Node)] = &[("type", Leaf), ("diff_ids", Leaf)];

const HISTORY: &[(&str, Node)] = &[
    ("created", Leaf),
    ("created_by", Leaf),
    ("author", Leaf),
    ("comment", Leaf),
    ("empty_layer", Leaf),
];

const CONFIG: &[(&str, Node)] = &[
    ("created", Leaf),
    ("author", Leaf),
    ("architecture", Leaf),
    ("os", Leaf),
    ("os.version", Leaf),
    ("os.features", Leaf),
    ("variant", Leaf),
    ("config", Object(RUNTIME_CONFIG)),
    ("rootfs", Object(ROOTFS)),
    ("history", List(HISTORY)),
];

const LAYOUT_HEADER: &[(&str, Node)] = &[("imageLayoutVersion", Leaf)];

/// One image of a `docker save` `manifest.json`. `LayerSources` maps diff_ids (data) to
/// descriptors, which the scan visits without naming their fields.
const DOCKER_SAVE_ITEM: &[(&str, Node)] = &[
    ("Config", Leaf),
    ("RepoTags", Leaf),
    ("Layers", Leaf),
    ("Parent", Leaf),
    ("LayerSources", Leaf),
];

impl Schema {
    fn node(self) -> Node {
        match self {
            Schema::LayoutHeader => Object(LAYOUT_HEADER),
            Schema::Index => Object(INDEX),
            Schema::ManifestLike => Object(MANIFEST_LIKE),
            Schema::Config => Object(CONFIG),
            Schema::Descriptor => Object(DESCRIPTOR),
            Schema::DockerSaveManifest => List(DOCKER_SAVE_ITEM),
        }
    }
}

// ---- the scan ----

/// Where the value being scanned is: a chain up to the document's root, on the stack, so a
/// pointer is only rendered for a member that is reported.
struct Path<'p> {
    parent: Option<&'p Path<'p>>,
    segment: Segment<'p>,
}

enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

fn pointer(path: Option<&Path<'_>>) -> String {
    let mut segments = Vec::new();
    let mut at = path;
    while let Some(p) = at {
        segments.push(&p.segment);
        at = p.parent;
    }
    let mut out = String::new();
    for segment in segments.into_iter().rev() {
        out.push('/');
        match segment {
            Segment::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// Scans one value as `node`.
struct Scan<'a, 'p> {
    node: Node,
    path: Option<&'p Path<'p>>,
    found: &'a mut Vec<Differential>,
}

impl Scan<'_, '_> {
    /// A scan of a value inside this one that holds no fields (nothing there is reported, so
    /// its path does not matter).
    fn leaf(&mut self) -> Scan<'_, '_> {
        Scan {
            node: Leaf,
            path: None,
            found: &mut *self.found,
        }
    }

    fn report(&mut self, key: &str, path: &Path<'_>, problem: Problem) {
        if self.found.len() < MAX_REPORTED {
            self.found.push(Differential {
                pointer: pointer(Some(path)),
                key: key.to_string(),
                problem,
            });
        }
    }
}

impl<'de> DeserializeSeed<'de> for Scan<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // Never `deserialize_ignored_any`: serde_json skips such a value without validating
        // its strings or counting its depth.
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    // A value of the wrong type is the typed parse's or the validator's to report.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let List(fields) = self.node else {
            while seq.next_element_seed(self.leaf())?.is_some() {}
            return Ok(());
        };
        let mut i = 0;
        loop {
            let here = Path {
                parent: self.path,
                segment: Segment::Index(i),
            };
            let element = Scan {
                node: Object(fields),
                path: Some(&here),
                found: &mut *self.found,
            };
            if seq.next_element_seed(element)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let Object(fields) = self.node else {
            while map.next_key::<Key<'de>>()?.is_some() {
                map.next_value_seed(self.leaf())?;
            }
            return Ok(());
        };
        // Which fields were seen by their exact name (no spec object has more than 32).
        let mut seen: u32 = 0;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let here = Path {
                parent: self.path,
                segment: Segment::Key(&key),
            };
            let field = match fields.iter().position(|(name, _)| *name == key) {
                Some(i) => {
                    if seen & (1 << i) != 0 {
                        self.report(&key, &here, Problem::Repeated);
                    }
                    seen |= 1 << i;
                    Some(i)
                }
                None => {
                    let folded = fields
                        .iter()
                        .position(|(name, _)| go_fold_equal(&key, name));
                    if let Some(i) = folded {
                        let field = fields[i].0;
                        self.report(&key, &here, Problem::CaseFolded { field });
                    }
                    folded
                }
            };
            match field {
                // Go decodes a folded member into the field too: scan it as that field.
                Some(i) => map.next_value_seed(Scan {
                    node: fields[i].1,
                    path: Some(&here),
                    found: &mut *self.found,
                })?,
                None => map.next_value_seed(self.leaf())?,
            }
        }
        Ok(())
    }
}

/// A member name, borrowed from the input unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(bytes: &str, schema: Schema) -> Vec<(String, Problem)> {
        scan(bytes.as_bytes(), schema)
            .unwrap_or_else(|e| panic!("{e}: {bytes}"))
            .into_iter()
            .map(|d| (d.pointer, d.problem))
            .collect()
    }

    fn folded(pointer: &str, field: &'static str) -> (String, Problem) {
        (pointer.to_string(), Problem::CaseFolded { field })
    }

    fn repeated(pointer: &str) -> (String, Problem) {
        (pointer.to_string(), Problem::Repeated)
    }

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn go_folding_is_simple_unicode_folding() {
        for (key, field) in [
            ("digest", "digest"),
            ("Digest", "digest"),
            ("dIgEsT", "digest"),
            ("DIGEST", "digest"),
            ("digeſt", "digest"),  // long s
            ("DIGEſT", "digest"),  // long s for an upper-case S
            ("\u{212A}ey", "key"), // Kelvin sign
            ("OS.Version", "os.version"),
            ("Diff_IDs", "diff_ids"),
        ] {
            assert!(go_fold_equal(key, field), "{key} ~ {field}");
        }
        for (key, field) in [
            ("digests", "digest"),
            ("diges", "digest"),
            ("medıaType", "mediaType"), // dotless ı folds only to itself in Go
            ("medİaType", "mediaType"), // dotted İ too
            ("diff-ids", "diff_ids"),   // delimiters are not ignored (v1 semantics)
            ("diffids", "diff_ids"),
            ("os_version", "os.version"),
            ("\u{212B}", "a"), // the Angstrom sign folds with å, not a
            ("", "digest"),
        ] {
            assert!(!go_fold_equal(key, field), "{key} !~ {field}");
        }
        // Non-letters match only themselves ('_' is 0x5F, DEL is 0x7F: one bit apart).
        assert!(!go_fold_equal("diff\u{7f}ids", "diff_ids"));
    }

    #[test]
    fn every_field_name_is_ascii_and_fits_the_seen_mask() {
        for fields in [
            PLATFORM,
            DESCRIPTOR,
            INDEX,
            MANIFEST_LIKE,
            RUNTIME_CONFIG,
            ROOTFS,
            HISTORY,
            CONFIG,
            LAYOUT_HEADER,
        ] {
            assert!(fields.len() <= 32);
            for (name, _) in fields {
                assert!(name.is_ascii(), "{name}");
            }
        }
    }

    #[test]
    fn the_issue_example_case_folded_digest_in_index_json() {
        let doc = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m/t","digest":"{A}","size":1,"Digest":"{B}"}}]}}"#
        );
        assert_eq!(
            found(&doc, Schema::Index),
            vec![folded("/manifests/0/Digest", "digest")]
        );
        let err = check(doc.as_bytes(), Schema::Index, "x/index.json").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("x/index.json"), "{text}");
        assert!(text.contains("/manifests/0/Digest"), "{text}");
        assert!(text.contains("case-insensitively"), "{text}");
    }

    #[test]
    fn folding_variants_are_all_found() {
        let doc = r#"{"manifests":[{"dIgEsT":"x","SIZE":1,"mediatype":"a/b","digeſt":"y"},
            {"\u212Aey":1,"platform":{"OS":"linux","Architecture":"amd64","os.VERSION":"1"}}],
            "SchemaVersion":2}"#;
        assert_eq!(
            found(doc, Schema::Index),
            vec![
                folded("/manifests/0/dIgEsT", "digest"),
                folded("/manifests/0/SIZE", "size"),
                folded("/manifests/0/mediatype", "mediaType"),
                folded("/manifests/0/digeſt", "digest"),
                folded("/manifests/1/platform/OS", "os"),
                folded("/manifests/1/platform/Architecture", "architecture"),
                folded("/manifests/1/platform/os.VERSION", "os.version"),
                folded("/SchemaVersion", "schemaVersion"),
            ]
        );
    }

    #[test]
    fn kelvin_sign_and_long_s_reach_fields() {
        // The Kelvin sign reaches the one field with a k (the runtime config's Healthcheck,
        // which is no field at the config's top level); the long s any field with an s.
        let doc = "{\"Healthchec\u{212A}\":{},\"config\":{\"Healthchec\u{212A}\":{}}}";
        assert_eq!(
            found(doc, Schema::Config),
            vec![folded("/config/Healthchec\u{212A}", "Healthcheck")]
        );
        let doc = "{\"mediaType\":\"a/b\",\"blob\u{17F}\":[]}";
        assert_eq!(
            found(doc, Schema::ManifestLike),
            vec![folded("/blob\u{17F}", "blobs")]
        );
    }

    #[test]
    fn escaped_names_are_compared_unescaped() {
        // "\u0044igest" is "Digest"; "\u0064igest" is "digest" exactly.
        let doc = r#"{"manifests":[{"\u0064igest":"a","\u0044igest":"b"}]}"#;
        assert_eq!(
            found(doc, Schema::Index),
            vec![folded("/manifests/0/Digest", "digest")]
        );
        let doc = r#"{"manifests":[{"\u0064igest":"a","digest":"b"}]}"#;
        assert_eq!(
            found(doc, Schema::Index),
            vec![repeated("/manifests/0/digest")]
        );
    }

    #[test]
    fn repeated_fields_are_found_at_every_level() {
        let doc = r#"{"schemaVersion":2,"config":{"digest":"a","size":1,"digest":"b"},
            "layers":[{"size":1}],"layers":[{"size":2,"platform":{"os":"a","os":"b"}}],
            "annotations":{"k":"1"},"annotations":{"k":"2"}}"#;
        assert_eq!(
            found(doc, Schema::ManifestLike),
            vec![
                repeated("/config/digest"),
                repeated("/layers"),
                repeated("/layers/0/platform/os"),
                repeated("/annotations"),
            ]
        );
    }

    #[test]
    fn config_objects_have_their_own_fields() {
        let doc = r#"{"architecture":"amd64","os":"linux","Os":"windows",
            "config":{"Cmd":["a"],"cmd":["b"],"Env":[],"Env":[]},
            "rootfs":{"type":"layers","Diff_IDs":[],"diff_ids":[]},
            "history":[{"created_by":"a"},{"Created_By":"b","empty_layer":true,"Empty_Layer":false}]}"#;
        assert_eq!(
            found(doc, Schema::Config),
            vec![
                folded("/Os", "os"),
                folded("/config/cmd", "Cmd"),
                repeated("/config/Env"),
                folded("/rootfs/Diff_IDs", "diff_ids"),
                folded("/history/1/Created_By", "created_by"),
                folded("/history/1/Empty_Layer", "empty_layer"),
            ]
        );
    }

    #[test]
    fn data_maps_and_unknown_members_are_left_alone() {
        // Annotation and label keys are data: Go matches map keys exactly, and for a repeated
        // key both Go and serde keep the last value. Unknown members are read by neither.
        let doc = r#"{"architecture":"amd64","os":"linux","x":1,"x":2,"X":3,
            "config":{"Labels":{"a":"1","A":"2","a":"3"},"ExposedPorts":{"80/tcp":{},"80/tcp":{}}}}"#;
        assert!(found(doc, Schema::Config).is_empty());
        let doc = r#"{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"a",
            "org.opencontainers.image.ref.name":"b","Org.Opencontainers.Image.Ref.Name":"c"}}]}"#;
        assert!(found(doc, Schema::Index).is_empty());
        // A field of one kind of object is not a field of another.
        assert!(found(r#"{"Digest":"x","Layers":[]}"#, Schema::Config).is_empty());
        assert!(found(r#"{"Manifests":[]}"#, Schema::LayoutHeader).is_empty());
        assert_eq!(
            found(r#"{"ImageLayoutVersion":"1.0.0"}"#, Schema::LayoutHeader),
            vec![folded("/ImageLayoutVersion", "imageLayoutVersion")]
        );
    }

    #[test]
    fn values_of_the_wrong_type_are_not_the_scans_business() {
        let doc = r#"{"manifests":{"Digest":1},"subject":[1,{"Digest":2}],"config":"x"}"#;
        assert!(found(doc, Schema::ManifestLike).is_empty());
        assert!(found("[]", Schema::Index).is_empty());
        assert!(found("null", Schema::Descriptor).is_empty());
    }

    #[test]
    fn what_go_reads_with_replacements_or_not_at_all_fails_the_scan() {
        let fails = |bytes: &[u8]| {
            let err = check(bytes, Schema::Index, "i").unwrap_err();
            assert!(matches!(err, Error::Json { .. }), "{err}");
            err.to_string()
        };
        // Ill-formed UTF-8 and lone surrogates, even in a member nobody reads (Go: U+FFFD).
        fails(b"{\"manifests\":[],\"x\":\"\xff\"}");
        fails(b"{\"manifests\":[],\"x\":{\"\xc3\":1}}");
        fails(br#"{"manifests":[],"x":["\ud800"]}"#);
        fails(br#"{"manifests":[],"x":"\udc00\ud800"}"#);
        // A byte order mark, trailing bytes (Go's json.Unmarshal refuses both too).
        fails(b"\xef\xbb\xbf{\"manifests\":[]}");
        fails(br#"{"manifests":[]} {"manifests":[]}"#);
        fails(br#"{"manifests":[]}x"#);
        fails(b"");
        // Nesting deeper than serde's 128 in an unknown member (Go reads up to 10,000).
        let deep = format!(
            r#"{{"manifests":[],"x":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(fails(deep.as_bytes()).contains("recursion limit"));
        let fine = format!(
            r#"{{"manifests":[],"x":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        check(fine.as_bytes(), Schema::Index, "i").unwrap();
        // A valid surrogate pair and escapes are fine.
        check(
            br#"{"manifests":[],"x":"\ud83d\ude00\n\u00e9"}"#,
            Schema::Index,
            "i",
        )
        .unwrap();
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        let doc =
            r#"{"manifests":[{"platform":{"os":"a","os":"b"}}],"subject":{"a/b~c":1,"SIZE":2}}"#;
        assert_eq!(
            found(doc, Schema::ManifestLike),
            vec![
                repeated("/manifests/0/platform/os"),
                folded("/subject/SIZE", "size")
            ]
        );
        let doc = r#"{"manifests":[{"size":1,"size":2}]}"#;
        let d = &scan(doc.as_bytes(), Schema::Index).unwrap()[0];
        assert_eq!(d.key, "size");
        assert!(d.to_string().contains("more than once"));
        assert_eq!(
            pointer(Some(&Path {
                parent: None,
                segment: Segment::Key("a/b~c")
            })),
            "/a~1b~0c"
        );
    }

    #[test]
    fn reports_are_capped() {
        let mut doc = String::from("{\"manifests\":[");
        for i in 0..1000 {
            if i > 0 {
                doc.push(',');
            }
            doc.push_str(r#"{"Size":1}"#);
        }
        doc.push_str("]}");
        assert_eq!(
            scan(doc.as_bytes(), Schema::Index).unwrap().len(),
            MAX_REPORTED
        );
    }

    #[test]
    fn clean_documents_have_nothing() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"a/b","digest":"{A}","size":2}},
            "layers":[{{"mediaType":"a/b","digest":"{B}","size":3,"annotations":{{"k":"v"}}}}],
            "annotations":{{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}}}}"#
        );
        assert!(scan(doc.as_bytes(), Schema::ManifestLike)
            .unwrap()
            .is_empty());
        check(doc.as_bytes(), Schema::ManifestLike, "m").unwrap();
    }
}
