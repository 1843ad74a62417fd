//! The catalogue of validation rules. Ids are stable: CI configurations and suppressions refer
//! to them, so an id is never reused for another meaning.
//!
//! Families: `L` layout, `G` digests, `D` descriptors, `M` manifests, `I` indexes, `C` configs,
//! `A` annotations, `R` referrers, `K` Docker and pre-release documents, `T` layer contents
//! (`--deep`), `J` JSON.

use serde::Serialize;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Info,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        }
    }
}

/// One rule: its id, its level, whether `--strict` makes it an error, and where it comes from.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub level: Level,
    /// A SHOULD of the specs: a warning that `--strict` turns into an error.
    pub strict_error: bool,
    /// The spec document and section the rule comes from.
    pub source: &'static str,
    pub summary: &'static str,
}

impl Rule {
    /// The level a finding of this rule has, with or without `--strict`.
    pub fn level_in(&self, strict: bool) -> Level {
        if strict && self.strict_error {
            Level::Error
        } else {
            self.level
        }
    }
}

const fn rule(id: &'static str, level: Level, source: &'static str, summary: &'static str) -> Rule {
    Rule {
        id,
        level,
        strict_error: false,
        source,
        summary,
    }
}

const fn should(id: &'static str, source: &'static str, summary: &'static str) -> Rule {
    Rule {
        id,
        level: Level::Warning,
        strict_error: true,
        source,
        summary,
    }
}

use Level::{Error as E, Info as N, Warning as W};

const LAYOUT: &str = "image-layout.md";
const DESCRIPTOR: &str = "descriptor.md";
const MANIFEST: &str = "manifest.md";
const INDEX: &str = "image-index.md";
const CONFIG: &str = "config.md";
const ANNOTATIONS: &str = "annotations.md";
const LAYER: &str = "layer.md";
const REFERRERS: &str = "distribution-spec spec.md#referrers-tag-schema";
const DIFFERENTIALS: &str = "ARCHITECTURE.md#parser-differentials-ocikit-defends-against";

/// Every rule ocikit checks.
pub const RULES: &[Rule] = &[
    // Layout
    rule(
        "L1",
        E,
        "image-layout.md#oci-layout-file",
        "the layout has an oci-layout file",
    ),
    rule(
        "L2",
        E,
        "image-layout.md#oci-layout-file",
        "oci-layout is a JSON object",
    ),
    rule(
        "L3",
        E,
        "image-layout.md#oci-layout-file",
        "imageLayoutVersion is \"1.0.0\"",
    ),
    rule(
        "L4",
        E,
        "image-layout.md#indexjson-file",
        "the layout has an index.json file",
    ),
    rule(
        "L5",
        E,
        "image-layout.md#indexjson-file",
        "index.json is a JSON image index",
    ),
    rule(
        "L6",
        E,
        "image-layout.md#blobs",
        "the layout has a blobs directory",
    ),
    rule(
        "L7",
        E,
        "image-layout.md#blobs",
        "every path under blobs/ is blobs/<algorithm>/<encoded> of a valid digest",
    ),
    rule(
        "L8",
        E,
        "image-layout.md#blobs",
        "every blob's content hashes to its file name",
    ),
    rule(
        "L9",
        W,
        LAYOUT,
        "no leftovers of interrupted writes (temp files)",
    ),
    rule(
        "L10",
        N,
        "image-layout.md#blobs",
        "blobs that nothing references (reported with their size)",
    ),
    rule(
        "L11",
        E,
        "image-layout.md#blobs",
        "every referenced blob is present",
    ),
    rule(
        "L12",
        E,
        "image-layout.md#blobs",
        "every blob is a regular file (not a symlink, directory or device)",
    ),
    rule(
        "L13",
        E,
        "image-layout.md#blobs",
        "blobs/ and blobs/<algorithm> are directories inside the layout, not symbolic links",
    ),
    rule(
        "L14",
        E,
        "image-layout.md; POSIX pax (layout archives)",
        "no path appears twice in a layout archive after normalization, and no hard link leads to an entry a later one replaces",
    ),
    rule(
        "L15",
        E,
        "image-layout.md; POSIX pax (layout archives)",
        "every entry of a layout archive means the same to every tar reader: a relative name without `..`, no file named with a trailing `/`, nothing below a file or symlink, no data on links or directories, no PAX global header that GNU tar applies to later entries and Go does not",
    ),
    rule(
        "L16",
        W,
        "image-layout.md (layout archives)",
        "a layout archive holds the layout and nothing else: no entry outside the layout's root directory",
    ),
    // Digests
    rule(
        "G1",
        E,
        "descriptor.md#digests",
        "a digest follows the grammar algorithm:encoded",
    ),
    rule(
        "G2",
        E,
        "descriptor.md#registered-algorithms",
        "sha256 and sha512 digests are lower-case hex of the exact length",
    ),
    rule(
        "G3",
        N,
        "descriptor.md#registered-algorithms",
        "digests of unregistered algorithms cannot be verified",
    ),
    // Descriptors
    rule(
        "D1",
        E,
        "descriptor.md#properties",
        "a descriptor is a JSON object",
    ),
    rule(
        "D2",
        E,
        "descriptor.md#properties",
        "mediaType is present and follows RFC 6838",
    ),
    rule(
        "D3",
        E,
        "descriptor.md#properties",
        "digest is present and a string",
    ),
    rule(
        "D4",
        E,
        "descriptor.md#properties",
        "size is present and a non-negative integer",
    ),
    rule(
        "D5",
        E,
        "descriptor.md#properties",
        "size equals the length of the blob",
    ),
    rule(
        "D6",
        E,
        "descriptor.md#properties",
        "urls is an array of absolute URIs (RFC 3986)",
    ),
    rule(
        "D7",
        E,
        "descriptor.md#properties",
        "data is padded standard base64 (RFC 4648)",
    ),
    rule(
        "D8",
        E,
        "descriptor.md#embedded-content",
        "data decodes to exactly the bytes the digest and size name",
    ),
    rule(
        "D9",
        E,
        "descriptor.md#properties",
        "artifactType follows RFC 6838",
    ),
    should(
        "D10",
        "image-index.md#image-index-property-descriptions",
        "descriptors of platform-specific manifests in an image index carry platform",
    ),
    rule(
        "D11",
        E,
        "image-index.md#image-index-property-descriptions",
        "platform has string architecture and os, and well-typed optional fields",
    ),
    rule(
        "D12",
        W,
        "image-index.md#platform-variants",
        "platform variant is one the spec lists for the architecture",
    ),
    // Manifests
    rule("M1", E, MANIFEST, "schemaVersion is 2"),
    rule(
        "M2",
        E,
        MANIFEST,
        "the manifest's mediaType equals the descriptor's",
    ),
    rule("M3", E, MANIFEST, "config is present and a descriptor"),
    rule("M4", E, MANIFEST, "layers is present and an array"),
    should("M5", MANIFEST, "layers has at least one entry"),
    rule(
        "M6",
        E,
        "manifest.md#guidelines-for-artifact-usage",
        "artifactType is set when config is the empty descriptor",
    ),
    rule("M7", E, MANIFEST, "subject is a descriptor"),
    should(
        "M8",
        "manifest.md#image-manifest-property-descriptions",
        "the subject of a referrer is present in the layout",
    ),
    should(
        "M9",
        "manifest.md#image-manifest",
        "a manifest is at most 4 MiB (4,194,304 bytes)",
    ),
    should(
        "M10",
        "layer.md#non-distributable-layers",
        "non-distributable layer media types are deprecated (implementations SHOULD NOT create them)",
    ),
    should("M11", MANIFEST, "mediaType is set in the manifest"),
    rule(
        "M12",
        E,
        MANIFEST,
        "the document is a manifest (a JSON object)",
    ),
    // Indexes
    rule("I1", E, INDEX, "schemaVersion is 2"),
    rule("I2", E, INDEX, "manifests is present and an array"),
    rule(
        "I3",
        E,
        INDEX,
        "the index's mediaType equals the descriptor's",
    ),
    rule("I4", E, INDEX, "the document is an index (a JSON object)"),
    rule(
        "I5",
        E,
        INDEX,
        "nested indexes are not circular and at most 16 deep",
    ),
    should("I6", INDEX, "mediaType is set in the index"),
    // Configs
    rule("C1", E, CONFIG, "the config is a JSON object"),
    rule(
        "C2",
        E,
        "config.md#properties",
        "architecture is present and a string",
    ),
    rule(
        "C3",
        E,
        "config.md#properties",
        "os is present and a string",
    ),
    rule(
        "C4",
        E,
        "config.md#properties",
        "rootfs is present, with type \"layers\" and diff_ids an array of digests",
    ),
    rule(
        "C5",
        E,
        "config.md#properties",
        "there are as many diff_ids as layers",
    ),
    rule(
        "C6",
        E,
        "config.md#properties",
        "created and history[].created are RFC 3339 date-times",
    ),
    rule(
        "C7",
        E,
        "config.md#properties",
        "config.Env entries are NAME=value",
    ),
    rule(
        "C8",
        E,
        "config.md#properties",
        "every field has the type the spec gives it",
    ),
    rule(
        "C9",
        W,
        "config.md#properties",
        "history has one non-empty_layer entry per layer",
    ),
    // Annotations
    rule(
        "A1",
        E,
        ANNOTATIONS,
        "annotations (and config labels) map strings to strings",
    ),
    rule(
        "A2",
        E,
        "annotations.md#pre-defined-annotation-keys",
        "org.opencontainers.image.ref.name follows the ref grammar (or is empty)",
    ),
    rule(
        "A3",
        E,
        "annotations.md#pre-defined-annotation-keys",
        "org.opencontainers.image.created is an RFC 3339 date-time (or empty)",
    ),
    should(
        "A4",
        "annotations.md#pre-defined-annotation-keys",
        "org.opencontainers.image.base.digest is a digest (or empty)",
    ),
    // Referrers
    rule(
        "R1",
        E,
        REFERRERS,
        "a fallback-tag index lists only manifests whose subject is its digest",
    ),
    rule(
        "R2",
        E,
        REFERRERS,
        "fallback-tag index entries carry the artifactType and annotations of their manifest",
    ),
    rule(
        "R3",
        W,
        "PRODUCT.md#referrers-inside-a-layout",
        "untagged referrer entries in index.json agree with their manifest",
    ),
    rule("R4", E, REFERRERS, "a fallback tag names an image index"),
    // Docker and pre-release documents
    rule(
        "K1",
        E,
        "docker image-manifest-v2-2",
        "Docker schema2 documents carry their required mediaType and fields",
    ),
    rule(
        "K2",
        W,
        "image-spec v1.1.0-rc artifact.md",
        "pre-release artifact manifests should be converted to image manifests",
    ),
    // Layer contents (--deep)
    rule(
        "T1",
        E,
        LAYER,
        "a layer decompresses as its media type says",
    ),
    rule(
        "T2",
        E,
        LAYER,
        "a layer's magic bytes agree with its media type",
    ),
    rule(
        "T3",
        E,
        "config.md#layer-diffid",
        "a layer's uncompressed digest equals its diff_id",
    ),
    rule(
        "T4",
        E,
        LAYER,
        "a layer is a tar archive that reads to its end",
    ),
    rule(
        "T5",
        E,
        "layer.md#changeset-over-existing-files",
        "no path appears twice in a layer",
    ),
    rule(
        "T6",
        E,
        "layer.md#file-types",
        "no absolute paths or .. components in a layer",
    ),
    should("T7", "layer.md#whiteouts", "no bare .wh. entries"),
    rule(
        "T8",
        E,
        "layer.md#whiteouts",
        "whiteouts are well-formed (.wh.<name> or .wh..wh..opq, regular files)",
    ),
    rule("T9", W, LAYER, "sparse files are not portable"),
    rule(
        "T10",
        E,
        LAYER,
        "decompression stays within the size and ratio caps (decompression bombs)",
    ),
    rule(
        "T11",
        E,
        LAYER,
        "zstd frames have a window of at most 128 MiB",
    ),
    // JSON
    rule("J1", E, DESCRIPTOR, "a document is valid UTF-8 JSON"),
    rule(
        "J2",
        E,
        "RFC 8259 section 4",
        "no field of an object the specs define appears twice (Go merges the repeats)",
    ),
    rule(
        "J3",
        E,
        DIFFERENTIALS,
        "no member name equals a field's under Go's case folding without being it (\"Digest\")",
    ),
];

/// The rule with this id.
pub fn rule_by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate rule ids");
        for r in RULES {
            assert!(r.id.len() >= 2 && r.id.as_bytes()[0].is_ascii_uppercase());
            assert!(!r.summary.is_empty() && !r.source.is_empty());
        }
        assert!(rule_by_id("M5").unwrap().strict_error);
        assert_eq!(rule_by_id("M5").unwrap().level_in(true), Level::Error);
        assert_eq!(rule_by_id("M5").unwrap().level_in(false), Level::Warning);
    }
}
