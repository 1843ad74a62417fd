//! Checks of JSON documents against the image-spec, value by value, so that one document can
//! yield many findings, each with its JSON pointer. (Typed parsing would stop at the first
//! problem and could not say which of several is wrong.)

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::finding::{Findings, Place};
use crate::spec::digest::Digest;
use crate::spec::document::differential::{self, Problem, Schema};
pub use crate::spec::document::media_type::is_rfc6838 as is_media_type;
use crate::spec::document::media_type::{self as mt, Kind};
use crate::spec::document::{Descriptor, CREATED, REF_NAME};
use crate::spec::time::is_rfc3339;
use crate::store::layout::index::validate_ref_name;

/// The size limit on manifests (image-spec, distribution-spec).
pub const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;

/// The annotation naming the base image's digest.
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// What a manifest check learned, for following its references.
#[derive(Clone, Debug, Default)]
pub struct ManifestFacts {
    pub media_type: Option<String>,
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    /// Layers (or a pre-release artifact's blobs), by position; `None` where unusable.
    pub layers: Vec<Option<Descriptor>>,
    /// Whether `layers` (or `blobs`) is an array: when not, `layers` is empty but says
    /// nothing about how many layers the image has (so C5 and C9 are not checked).
    pub layers_listed: bool,
    pub subject: Option<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

/// What an index check learned.
#[derive(Clone, Debug, Default)]
pub struct IndexFacts {
    pub media_type: Option<String>,
    pub artifact_type: Option<String>,
    /// Usable entries of `manifests`, with their position.
    pub manifests: Vec<(usize, Descriptor)>,
    pub subject: Option<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

/// What a config check learned.
#[derive(Clone, Debug, Default)]
pub struct ConfigFacts {
    pub diff_ids: Option<Vec<Digest>>,
    /// History entries that are not `empty_layer`, when `history` is present and well-formed.
    pub history_layers: Option<usize>,
}

/// Runs checks on one document, recording findings at one place.
pub struct Checker<'a> {
    findings: &'a mut Findings,
    place: Place,
}

impl<'a> Checker<'a> {
    pub fn new(findings: &'a mut Findings, place: Place) -> Checker<'a> {
        Checker { findings, place }
    }

    fn add(&mut self, rule: &'static str, pointer: &str, message: impl Into<String>) {
        self.findings
            .add(rule, &self.place, pointer, message.into());
    }

    /// Parses JSON bytes, reporting J1 when they are not JSON.
    pub fn parse(&mut self, bytes: &[u8]) -> Option<Value> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                self.add("J1", "", format!("the document is not valid JSON: {e}"));
                None
            }
        }
    }

    /// Reports the members of `bytes` (read as `schema`) that Go's `encoding/json` reads
    /// differently from ocikit: a repeated field (J2), a name that folds to a field's (J3).
    /// Called once [`Checker::parse`] has accepted the bytes: the scan fails only where that
    /// parse fails, and J1 said so already.
    pub fn differentials(&mut self, bytes: &[u8], schema: Schema) {
        for d in differential::scan(bytes, schema).unwrap_or_default() {
            let rule = match d.problem {
                Problem::Repeated => "J2",
                Problem::CaseFolded { .. } => "J3",
            };
            self.add(rule, &d.pointer, d.to_string());
        }
    }

    // ---- digests and descriptors ----

    /// Checks a digest string (G1, G2).
    pub fn digest(&mut self, text: &str, pointer: &str) -> Option<Digest> {
        match Digest::parse(text) {
            Ok(d) => Some(d),
            Err(e) => {
                let registered = text
                    .split_once(':')
                    .is_some_and(|(alg, _)| alg == "sha256" || alg == "sha512");
                let rule = if registered { "G2" } else { "G1" };
                self.add(rule, pointer, e.to_string());
                None
            }
        }
    }

    /// Checks a descriptor (D1–D9, D11, D12, annotations); returns it when usable.
    pub fn descriptor(&mut self, value: &Value, pointer: &str) -> Option<Descriptor> {
        let Some(obj) = value.as_object() else {
            self.add(
                "D1",
                pointer,
                format!("a descriptor must be an object, not {}", kind_of(value)),
            );
            return None;
        };
        let media_type = match obj.get("mediaType") {
            Some(Value::String(m)) if is_media_type(m) => Some(m.clone()),
            Some(Value::String(m)) => {
                self.add(
                    "D2",
                    &format!("{pointer}/mediaType"),
                    format!("{m:?} is not a media type as RFC 6838 defines it (type/subtype)"),
                );
                None
            }
            Some(other) => {
                self.add(
                    "D2",
                    &format!("{pointer}/mediaType"),
                    format!("mediaType must be a string, not {}", kind_of(other)),
                );
                None
            }
            None => {
                self.add("D2", pointer, "the descriptor has no mediaType");
                None
            }
        };
        let digest = match obj.get("digest") {
            Some(Value::String(d)) => self.digest(d, &format!("{pointer}/digest")),
            Some(other) => {
                self.add(
                    "D3",
                    &format!("{pointer}/digest"),
                    format!("digest must be a string, not {}", kind_of(other)),
                );
                None
            }
            None => {
                self.add("D3", pointer, "the descriptor has no digest");
                None
            }
        };
        let size = match obj.get("size") {
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => Some(n as u64),
                Some(n) => {
                    self.add(
                        "D4",
                        &format!("{pointer}/size"),
                        format!("size must not be negative ({n})"),
                    );
                    None
                }
                None => {
                    self.add(
                        "D4",
                        &format!("{pointer}/size"),
                        format!("size must be an integer (int64), not {}", kind_of(v)),
                    );
                    None
                }
            },
            None => {
                self.add("D4", pointer, "the descriptor has no size");
                None
            }
        };
        if let Some(urls) = obj.get("urls") {
            self.urls(urls, &format!("{pointer}/urls"));
        }
        if let Some(data) = obj.get("data") {
            self.data(data, &format!("{pointer}/data"), digest.as_ref(), size);
        }
        let artifact_type = obj
            .get("artifactType")
            .and_then(|t| self.artifact_type(t, &format!("{pointer}/artifactType")));
        if let Some(p) = obj.get("platform") {
            self.platform(p, &format!("{pointer}/platform"));
        }
        let annotations = obj
            .get("annotations")
            .map(|a| self.annotations(a, &format!("{pointer}/annotations")));
        let (media_type, digest, size) = (media_type?, digest?, size?);
        // The typed view; fields already checked above, so a failure here only means some
        // optional field is malformed. Keep what is usable then: the string annotations (so
        // the entry keeps its name), and a platform when one is present (D11 reported it; it
        // is not also missing, D10).
        crate::spec::document::from_value::<Descriptor>(value.clone(), "descriptor")
            .ok()
            .or_else(|| {
                Some(Descriptor {
                    media_type,
                    digest,
                    size,
                    urls: obj
                        .get("urls")
                        .and_then(|u| serde_json::from_value(u.clone()).ok()),
                    annotations,
                    data: obj.get("data").and_then(Value::as_str).map(str::to_string),
                    platform: obj.get("platform").map(lenient_platform),
                    artifact_type,
                })
            })
    }

    fn urls(&mut self, value: &Value, pointer: &str) {
        let Some(items) = value.as_array() else {
            self.add(
                "D6",
                pointer,
                format!("urls must be an array, not {}", kind_of(value)),
            );
            return;
        };
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(u) if is_absolute_uri(u) => {}
                Some(u) => self.add(
                    "D6",
                    &format!("{pointer}/{i}"),
                    format!("{u:?} is not an absolute URI (RFC 3986)"),
                ),
                None => self.add(
                    "D6",
                    &format!("{pointer}/{i}"),
                    format!("a URL must be a string, not {}", kind_of(item)),
                ),
            }
        }
    }

    fn data(&mut self, value: &Value, pointer: &str, digest: Option<&Digest>, size: Option<u64>) {
        let Some(text) = value.as_str() else {
            self.add(
                "D7",
                pointer,
                format!("data must be a base64 string, not {}", kind_of(value)),
            );
            return;
        };
        let bytes = match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(b) => b,
            Err(e) => {
                self.add(
                    "D7",
                    pointer,
                    format!("data is not padded standard base64: {e}"),
                );
                return;
            }
        };
        if let Some(size) = size {
            if bytes.len() as u64 != size {
                self.add(
                    "D8",
                    pointer,
                    format!("data decodes to {} bytes but size is {size}", bytes.len()),
                );
                return;
            }
        }
        if let Some(digest) = digest {
            if let Some(alg) = digest.known_algorithm() {
                let mut hasher = crate::spec::digest::Hasher::new(alg);
                hasher.update(&bytes);
                let actual = hasher.finish();
                if &actual != digest {
                    self.add(
                        "D8",
                        pointer,
                        format!("data hashes to {actual}, not to the descriptor's digest {digest}"),
                    );
                }
            }
        }
    }

    fn artifact_type(&mut self, value: &Value, pointer: &str) -> Option<String> {
        match value.as_str() {
            Some(t) if is_media_type(t) => Some(t.to_string()),
            Some(t) => {
                self.add(
                    "D9",
                    pointer,
                    format!("artifactType {t:?} is not a media type as RFC 6838 defines it"),
                );
                None
            }
            None => {
                self.add(
                    "D9",
                    pointer,
                    format!("artifactType must be a string, not {}", kind_of(value)),
                );
                None
            }
        }
    }

    /// Checks a platform object (D11, D12).
    pub fn platform(&mut self, value: &Value, pointer: &str) {
        let Some(obj) = value.as_object() else {
            self.add(
                "D11",
                pointer,
                format!("platform must be an object, not {}", kind_of(value)),
            );
            return;
        };
        for key in ["architecture", "os"] {
            match obj.get(key) {
                Some(Value::String(_)) => {}
                Some(other) => self.add(
                    "D11",
                    &format!("{pointer}/{key}"),
                    format!("{key} must be a string, not {}", kind_of(other)),
                ),
                None => self.add("D11", pointer, format!("platform has no {key}")),
            }
        }
        for key in ["os.version", "variant"] {
            if let Some(v) = obj.get(key).filter(|v| !v.is_string()) {
                self.add(
                    "D11",
                    &format!("{pointer}/{}", escape(key)),
                    format!("{key} must be a string, not {}", kind_of(v)),
                );
            }
        }
        for key in ["os.features", "features"] {
            if let Some(v) = obj.get(key) {
                if !is_string_array(v) {
                    self.add(
                        "D11",
                        &format!("{pointer}/{}", escape(key)),
                        format!("{key} must be an array of strings"),
                    );
                }
            }
        }
        if let (Some(arch), Some(variant)) = (
            obj.get("architecture").and_then(Value::as_str),
            obj.get("variant").and_then(Value::as_str),
        ) {
            if !is_known_variant(arch, variant) {
                self.add(
                    "D12",
                    &format!("{pointer}/variant"),
                    format!(
                        "variant {variant:?} is not one the spec lists for architecture {arch:?}"
                    ),
                );
            }
        }
    }

    /// Checks annotations or labels (A1–A4).
    pub fn annotations(&mut self, value: &Value, pointer: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(obj) = value.as_object() else {
            self.add(
                "A1",
                pointer,
                format!(
                    "annotations must be an object of strings, not {}",
                    kind_of(value)
                ),
            );
            return out;
        };
        for (key, v) in obj {
            let at = format!("{pointer}/{}", escape(key));
            let Some(text) = v.as_str() else {
                self.add(
                    "A1",
                    &at,
                    format!("the value of {key:?} must be a string, not {}", kind_of(v)),
                );
                continue;
            };
            // "While the value MUST be present, it MAY be an empty string" (annotations.md):
            // buildah writes an empty base.digest for every image from scratch.
            match key.as_str() {
                _ if text.is_empty() => {}
                REF_NAME => {
                    if let Err(e) = validate_ref_name(text) {
                        self.add("A2", &at, e.to_string());
                    }
                }
                CREATED if !is_rfc3339(text) => {
                    self.add("A3", &at, format!("{text:?} is not an RFC 3339 date-time"));
                }
                BASE_DIGEST => {
                    if let Err(e) = Digest::parse(text) {
                        self.add("A4", &at, e.to_string());
                    }
                }
                _ => {}
            }
            out.insert(key.clone(), text.to_string());
        }
        out
    }

    // ---- documents ----

    /// Checks an image manifest, a Docker manifest or a pre-release artifact manifest.
    /// `expected` is the media type of the descriptor that led here, if any.
    pub fn manifest(
        &mut self,
        value: &Value,
        expected: Option<&str>,
        byte_len: usize,
    ) -> Option<ManifestFacts> {
        let Some(obj) = value.as_object() else {
            self.add(
                "M12",
                "",
                format!("a manifest must be a JSON object, not {}", kind_of(value)),
            );
            return None;
        };
        let mut facts = ManifestFacts::default();
        let own = self.own_media_type(
            obj,
            expected,
            &[
                mt::OCI_MANIFEST,
                mt::DOCKER_MANIFEST,
                mt::OCI_ARTIFACT_MANIFEST,
            ],
            "M2",
            "M11",
        );
        facts.media_type = own.clone();
        let effective = own.as_deref().or(expected);
        let docker = effective == Some(mt::DOCKER_MANIFEST);
        let prerelease = effective == Some(mt::OCI_ARTIFACT_MANIFEST);
        if docker && own.is_none() {
            self.add(
                "K1",
                "",
                "a Docker schema2 manifest must carry its mediaType",
            );
        }
        if byte_len > MANIFEST_LIMIT {
            self.add("M9", "", format!("the manifest is {byte_len} bytes, more than the 4 MiB (4,194,304 bytes) registries accept"));
        }
        if let Some(a) = obj.get("annotations") {
            facts.annotations = self.annotations(a, "/annotations");
        }
        if let Some(t) = obj.get("artifactType") {
            facts.artifact_type = self.artifact_type(t, "/artifactType");
        }
        if let Some(s) = obj.get("subject") {
            facts.subject = self.subject(s);
        }
        if prerelease {
            self.add("K2", "", "this is a pre-release artifact manifest (application/vnd.oci.artifact.manifest.v1+json); convert it to an image manifest");
            if let Some(blobs) = obj.get("blobs") {
                facts.layers = self.descriptor_list(blobs, "/blobs", "M4");
                facts.layers_listed = blobs.is_array();
            }
            return Some(facts);
        }
        self.schema_version(obj, "M1");
        match obj.get("config") {
            Some(c) if c.is_object() => facts.config = self.descriptor(c, "/config"),
            Some(c) => self.add(
                "M3",
                "/config",
                format!("config must be a descriptor object, not {}", kind_of(c)),
            ),
            None => self.add("M3", "", "the manifest has no config"),
        }
        match obj.get("layers") {
            Some(layers) => {
                facts.layers = self.descriptor_list(layers, "/layers", "M4");
                facts.layers_listed = layers.is_array();
                if layers.as_array().is_some_and(Vec::is_empty) {
                    self.add("M5", "/layers", "layers is empty; the spec asks for at least one layer (an artifact without files uses the empty descriptor)");
                }
            }
            None => self.add("M4", "", "the manifest has no layers"),
        }
        for (i, layer) in facts.layers.iter().enumerate() {
            if let Some(l) = layer {
                if matches!(
                    l.media_type.as_str(),
                    mt::OCI_LAYER_NONDIST_TAR
                        | mt::OCI_LAYER_NONDIST_GZIP
                        | mt::OCI_LAYER_NONDIST_ZSTD
                ) {
                    self.add(
                        "M10",
                        &format!("/layers/{i}/mediaType"),
                        format!(
                            "{} is deprecated: non-distributable layers should not be created",
                            l.media_type
                        ),
                    );
                }
            }
        }
        let empty_config = facts
            .config
            .as_ref()
            .is_some_and(|c| c.media_type == mt::OCI_EMPTY);
        if empty_config && facts.artifact_type.is_none() && obj.get("artifactType").is_none() {
            self.add(
                "M6",
                "",
                "config is the empty descriptor, so artifactType must be set",
            );
        }
        Some(facts)
    }

    /// Checks an image index or Docker manifest list.
    pub fn index(&mut self, value: &Value, expected: Option<&str>) -> Option<IndexFacts> {
        let Some(obj) = value.as_object() else {
            self.add(
                "I4",
                "",
                format!("an index must be a JSON object, not {}", kind_of(value)),
            );
            return None;
        };
        let mut facts = IndexFacts::default();
        let own = self.own_media_type(
            obj,
            expected,
            &[mt::OCI_INDEX, mt::DOCKER_MANIFEST_LIST],
            "I3",
            "I6",
        );
        facts.media_type = own.clone();
        let docker = own.as_deref().or(expected) == Some(mt::DOCKER_MANIFEST_LIST);
        if docker && own.is_none() {
            self.add("K1", "", "a Docker manifest list must carry its mediaType");
        }
        self.schema_version(obj, "I1");
        match obj.get("manifests") {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let pointer = format!("/manifests/{i}");
                    if let Some(d) = self.descriptor(item, &pointer) {
                        if docker && d.platform.is_none() {
                            self.add(
                                "K1",
                                &pointer,
                                "entries of a Docker manifest list must carry platform",
                            );
                        }
                        facts.manifests.push((i, d));
                    }
                }
            }
            Some(other) => self.add(
                "I2",
                "/manifests",
                format!("manifests must be an array, not {}", kind_of(other)),
            ),
            None => self.add("I2", "", "the index has no manifests"),
        }
        if let Some(a) = obj.get("annotations") {
            facts.annotations = self.annotations(a, "/annotations");
        }
        if let Some(t) = obj.get("artifactType") {
            facts.artifact_type = self.artifact_type(t, "/artifactType");
        }
        if let Some(s) = obj.get("subject") {
            facts.subject = self.subject(s);
        }
        Some(facts)
    }

    /// Checks an image configuration (OCI or Docker).
    pub fn config(&mut self, value: &Value) -> Option<ConfigFacts> {
        let Some(obj) = value.as_object() else {
            self.add(
                "C1",
                "",
                format!("a config must be a JSON object, not {}", kind_of(value)),
            );
            return None;
        };
        let mut facts = ConfigFacts::default();
        for (key, rule) in [("architecture", "C2"), ("os", "C3")] {
            match obj.get(key) {
                Some(Value::String(_)) => {}
                Some(other) => self.add(
                    rule,
                    &format!("/{key}"),
                    format!("{key} must be a string, not {}", kind_of(other)),
                ),
                None => self.add(rule, "", format!("the config has no {key}")),
            }
        }
        self.typed(
            obj,
            "",
            &[
                ("variant", Ty::String),
                ("os.version", Ty::String),
                ("os.features", Ty::Strings),
                ("author", Ty::String),
                ("created", Ty::String),
            ],
        );
        if let Some(created) = obj.get("created").and_then(Value::as_str) {
            if !is_rfc3339(created) {
                self.add(
                    "C6",
                    "/created",
                    format!("{created:?} is not an RFC 3339 date-time"),
                );
            }
        }
        match obj.get("config") {
            None | Some(Value::Null) => {}
            Some(Value::Object(rc)) => self.runtime_config(rc),
            Some(other) => self.add(
                "C8",
                "/config",
                format!("config must be an object, not {}", kind_of(other)),
            ),
        }
        match obj.get("rootfs") {
            Some(Value::Object(rootfs)) => {
                match rootfs.get("type") {
                    Some(Value::String(t)) if t == "layers" => {}
                    Some(other) => self.add(
                        "C4",
                        "/rootfs/type",
                        format!("rootfs.type must be \"layers\", not {other}"),
                    ),
                    None => self.add("C4", "/rootfs", "rootfs has no type"),
                }
                match rootfs.get("diff_ids") {
                    Some(Value::Array(ids)) => {
                        let mut digests = Vec::new();
                        for (i, id) in ids.iter().enumerate() {
                            let pointer = format!("/rootfs/diff_ids/{i}");
                            match id.as_str() {
                                Some(text) => digests.extend(self.digest(text, &pointer)),
                                None => self.add(
                                    "C4",
                                    &pointer,
                                    format!(
                                        "a diff_id must be a digest string, not {}",
                                        kind_of(id)
                                    ),
                                ),
                            }
                        }
                        if digests.len() == ids.len() {
                            facts.diff_ids = Some(digests);
                        }
                    }
                    Some(other) => self.add(
                        "C4",
                        "/rootfs/diff_ids",
                        format!("diff_ids must be an array, not {}", kind_of(other)),
                    ),
                    None => self.add("C4", "/rootfs", "rootfs has no diff_ids"),
                }
            }
            Some(other) => self.add(
                "C4",
                "/rootfs",
                format!("rootfs must be an object, not {}", kind_of(other)),
            ),
            None => self.add("C4", "", "the config has no rootfs"),
        }
        match obj.get("history") {
            None => {}
            Some(Value::Array(items)) => {
                let mut layers = 0;
                let mut well_formed = true;
                for (i, item) in items.iter().enumerate() {
                    let pointer = format!("/history/{i}");
                    let Some(h) = item.as_object() else {
                        self.add(
                            "C8",
                            &pointer,
                            format!("a history entry must be an object, not {}", kind_of(item)),
                        );
                        well_formed = false;
                        continue;
                    };
                    self.typed(
                        h,
                        &pointer,
                        &[
                            ("created", Ty::String),
                            ("author", Ty::String),
                            ("created_by", Ty::String),
                            ("comment", Ty::String),
                            ("empty_layer", Ty::Bool),
                        ],
                    );
                    if let Some(created) = h.get("created").and_then(Value::as_str) {
                        if !is_rfc3339(created) {
                            self.add(
                                "C6",
                                &format!("{pointer}/created"),
                                format!("{created:?} is not an RFC 3339 date-time"),
                            );
                        }
                    }
                    if !h
                        .get("empty_layer")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                    {
                        layers += 1;
                    }
                }
                if well_formed {
                    facts.history_layers = Some(layers);
                }
            }
            Some(other) => self.add(
                "C8",
                "/history",
                format!("history must be an array, not {}", kind_of(other)),
            ),
        }
        Some(facts)
    }

    fn runtime_config(&mut self, rc: &Map<String, Value>) {
        self.typed(
            rc,
            "/config",
            &[
                ("User", Ty::String),
                ("ExposedPorts", Ty::Object),
                ("Env", Ty::Strings),
                ("Entrypoint", Ty::Strings),
                ("Cmd", Ty::Strings),
                ("Volumes", Ty::Object),
                ("WorkingDir", Ty::String),
                ("StopSignal", Ty::String),
                ("ArgsEscaped", Ty::Bool),
            ],
        );
        if let Some(Value::Array(env)) = rc.get("Env") {
            for (i, e) in env.iter().enumerate() {
                if let Some(text) = e.as_str() {
                    if text.split_once('=').is_none_or(|(name, _)| name.is_empty()) {
                        self.add(
                            "C7",
                            &format!("/config/Env/{i}"),
                            format!("{text:?} is not of the form NAME=value"),
                        );
                    }
                }
            }
        }
        if let Some(labels) = rc.get("Labels").filter(|l| !l.is_null()) {
            self.annotations(labels, "/config/Labels");
        }
    }

    /// Checks that `fields` of `obj`, when present, have the given JSON types (C8).
    fn typed(&mut self, obj: &Map<String, Value>, pointer: &str, fields: &[(&str, Ty)]) {
        for (key, ty) in fields {
            let Some(v) = obj.get(*key) else { continue };
            let ok = match ty {
                Ty::String => v.is_string(),
                Ty::Bool => v.is_boolean(),
                Ty::Object => v.is_object() || v.is_null(),
                Ty::Strings => is_string_array(v) || v.is_null(),
            };
            if !ok {
                self.add(
                    "C8",
                    &format!("{pointer}/{}", escape(key)),
                    format!("{key} must be {}, not {}", ty.name(), kind_of(v)),
                );
            }
        }
    }

    /// Checks an `oci-layout` header (L2, L3).
    pub fn layout_header(&mut self, value: &Value) {
        let Some(obj) = value.as_object() else {
            self.add(
                "L2",
                "",
                format!("oci-layout must be a JSON object, not {}", kind_of(value)),
            );
            return;
        };
        match obj.get("imageLayoutVersion") {
            Some(Value::String(v)) if v == "1.0.0" => {}
            Some(other) => self.add(
                "L3",
                "/imageLayoutVersion",
                format!("imageLayoutVersion must be \"1.0.0\", not {other}"),
            ),
            None => self.add("L3", "", "oci-layout has no imageLayoutVersion"),
        }
    }

    fn subject(&mut self, value: &Value) -> Option<Descriptor> {
        if !value.is_object() {
            self.add(
                "M7",
                "/subject",
                format!(
                    "subject must be a descriptor object, not {}",
                    kind_of(value)
                ),
            );
            return None;
        }
        let d = self.descriptor(value, "/subject");
        if d.is_none() {
            self.add("M7", "/subject", "subject is not a well-formed descriptor");
        }
        d
    }

    fn descriptor_list(
        &mut self,
        value: &Value,
        pointer: &str,
        rule: &'static str,
    ) -> Vec<Option<Descriptor>> {
        let Some(items) = value.as_array() else {
            self.add(
                rule,
                pointer,
                format!("{} must be an array, not {}", &pointer[1..], kind_of(value)),
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.descriptor(item, &format!("{pointer}/{i}")))
            .collect()
    }

    fn schema_version(&mut self, obj: &Map<String, Value>, rule: &'static str) {
        match obj.get("schemaVersion") {
            Some(v) if v.as_i64() == Some(2) => {}
            Some(other) => self.add(
                rule,
                "/schemaVersion",
                format!("schemaVersion must be 2, not {other}"),
            ),
            None => self.add(rule, "", "schemaVersion is missing; it must be 2"),
        }
    }

    /// Checks the document's own `mediaType`: a string, one of `allowed`, and equal to the
    /// descriptor's. Returns it.
    fn own_media_type(
        &mut self,
        obj: &Map<String, Value>,
        expected: Option<&str>,
        allowed: &[&str],
        mismatch: &'static str,
        missing: &'static str,
    ) -> Option<String> {
        match obj.get("mediaType") {
            Some(Value::String(m)) => {
                if let Some(e) = expected.filter(|e| *e != m) {
                    self.add(mismatch, "/mediaType", format!("the document says mediaType {m:?} but the descriptor that references it says {e:?}"));
                } else if expected.is_none() && !allowed.contains(&m.as_str()) {
                    self.add(
                        mismatch,
                        "/mediaType",
                        format!(
                            "{m:?} is not a media type for this kind of document (expected {})",
                            allowed.join(" or ")
                        ),
                    );
                }
                Some(m.clone())
            }
            Some(other) => {
                self.add(
                    mismatch,
                    "/mediaType",
                    format!("mediaType must be a string, not {}", kind_of(other)),
                );
                None
            }
            None => {
                self.add(
                    missing,
                    "",
                    format!(
                        "the document has no mediaType; it should say {}",
                        expected.unwrap_or(allowed[0])
                    ),
                );
                None
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Ty {
    String,
    Bool,
    Object,
    Strings,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::String => "a string",
            Ty::Bool => "a boolean",
            Ty::Object => "an object",
            Ty::Strings => "an array of strings",
        }
    }
}

/// What kind of document a media type names, for `--document` and for following descriptors.
pub fn document_kind(media_type: &str) -> Option<DocKind> {
    match mt::kind(media_type) {
        Kind::Manifest | Kind::ArtifactManifest => Some(DocKind::Manifest),
        Kind::Index => Some(DocKind::Index),
        Kind::Config => Some(DocKind::Config),
        _ => match media_type {
            mt::OCI_DESCRIPTOR => Some(DocKind::Descriptor),
            mt::OCI_LAYOUT_HEADER => Some(DocKind::LayoutHeader),
            _ => None,
        },
    }
}

/// The kinds of JSON document ocikit validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    Manifest,
    Index,
    Config,
    Descriptor,
    LayoutHeader,
}

impl DocKind {
    /// The fields Go decodes this kind of document into.
    pub fn schema(self) -> Schema {
        match self {
            // Go tools tell manifests and indexes apart by decoding into both.
            DocKind::Manifest | DocKind::Index => Schema::ManifestLike,
            DocKind::Config => Schema::Config,
            DocKind::Descriptor => Schema::Descriptor,
            DocKind::LayoutHeader => Schema::LayoutHeader,
        }
    }
}

/// Guesses a document's kind from its own `mediaType` or its shape.
pub fn detect_kind(value: &Value) -> Option<DocKind> {
    let obj = value.as_object()?;
    if let Some(kind) = obj
        .get("mediaType")
        .and_then(Value::as_str)
        .and_then(document_kind)
    {
        // A descriptor also has a mediaType: the one of what it points at.
        if !(obj.contains_key("digest") && obj.contains_key("size")) {
            return Some(kind);
        }
    }
    if obj.contains_key("imageLayoutVersion") {
        Some(DocKind::LayoutHeader)
    } else if obj.contains_key("manifests") {
        Some(DocKind::Index)
    } else if obj.contains_key("config") && obj.contains_key("schemaVersion")
        || obj.contains_key("layers")
    {
        Some(DocKind::Manifest)
    } else if obj.contains_key("digest") && obj.contains_key("size") {
        Some(DocKind::Descriptor)
    } else if obj.contains_key("rootfs") || obj.contains_key("architecture") {
        Some(DocKind::Config)
    } else {
        None
    }
}

/// A platform as far as it is well-formed (its problems are reported as D11).
fn lenient_platform(value: &Value) -> crate::spec::platform::Platform {
    serde_json::from_value(value.clone()).unwrap_or_else(|_| {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        crate::spec::platform::Platform {
            architecture: text("architecture").unwrap_or_default(),
            os: text("os").unwrap_or_default(),
            os_version: text("os.version"),
            variant: text("variant"),
            ..Default::default()
        }
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_string_array(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|items| items.iter().all(Value::is_string))
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// An absolute URI (RFC 3986): a scheme, `:`, and only characters a URI may hold.
pub fn is_absolute_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)) {
            return false;
        }
        i += 1;
    }
    scheme_ok
}

/// Variants the image-spec lists for architectures that have them; others accept any.
fn is_known_variant(arch: &str, variant: &str) -> bool {
    match arch {
        "arm" => matches!(variant, "v5" | "v6" | "v7" | "v8"),
        "arm64" => {
            matches!(variant, "v8" | "v9")
                || variant
                    .strip_prefix("v8.")
                    .or_else(|| variant.strip_prefix("v9."))
                    .is_some_and(|minor| minor.len() == 1 && minor.as_bytes()[0].is_ascii_digit())
        }
        "amd64" => matches!(variant, "v1" | "v2" | "v3" | "v4"),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert!(is_media_type("application/vnd.oci.image.manifest.v1+json"));
        assert!(is_media_type("text/plain"));
        for bad in [
            "", "invalid", "/x", "x/", ".a/b", "a/.b", "a/b c", "a/b;x=y",
        ] {
            assert!(!is_media_type(bad), "{bad}");
        }
        let long = "a".repeat(127);
        assert!(is_media_type(&format!("{long}/{long}")));
        assert!(!is_media_type(&format!("{long}a/b")));
    }

    #[test]
    fn dates() {
        for ok in [
            "2024-01-01T00:00:00Z",
            "2015-10-31T22:22:56.015925234Z",
            "2024-02-29T23:59:60+01:00",
            "1999-12-31t00:00:00z",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2024-01-01",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00+0100",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        assert!(is_absolute_uri("https://example.com/a%20b?x=1#f"));
        assert!(is_absolute_uri("urn:isbn:0451450523"));
        for bad in [
            "value",
            "https://exa mple.com",
            "1http://x",
            "http://x/%zz",
            ":x",
        ] {
            assert!(!is_absolute_uri(bad), "{bad}");
        }
    }

    #[test]
    fn variants() {
        assert!(is_known_variant("arm64", "v8"));
        assert!(is_known_variant("arm64", "v8.2"));
        assert!(!is_known_variant("arm64", "v7"));
        assert!(!is_known_variant("amd64", "v5"));
        assert!(is_known_variant("riscv64", "rva22u64"));
    }
}
