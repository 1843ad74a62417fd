//! `ocikit validate`: the image-spec's own conformance cases, a mutation suite (valid fixtures
//! with one corruption each, every one of which must fire its rule), decoys that must stay
//! clean, and the exit statuses of the command.
//!
//! Every table-driven test collects all disagreements and fails once with the whole list, so a
//! regression shows everything it breaks at once.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use ocikit::ops::validate::{
    rules::rule_by_id, validate_document, validate_layout, Finding, Level, Options, Report, RULES,
};
use ocikit::progress::NoProgress;
use ocikit::spec::digest::Digest;
use ocikit::spec::document::media_type::{
    DOCKER_CONFIG, DOCKER_LAYER_FOREIGN_GZIP, DOCKER_LAYER_GZIP, DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST, OCI_ARTIFACT_MANIFEST, OCI_CONFIG, OCI_EMPTY, OCI_INDEX,
    OCI_LAYER_NONDIST_GZIP, OCI_MANIFEST,
};
use ocikit::store::layout::Layout;
use serde_json::{json, Value};

use crate::helpers::{ocikit, sample_layout, sample_layout_copy};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CREATED: &str = "org.opencontainers.image.created";
const TITLE: &str = "org.opencontainers.image.title";

mod archives;
mod conformance;
mod decoys;
mod deep;
mod exit;
mod mutations;
mod output;

// ---------------------------------------------------------------------------------------------
// Fixtures: a layout copy with helpers that edit content-addressed documents
// ---------------------------------------------------------------------------------------------

/// `blobs/<alg>/<encoded>` of a digest.
fn blob_file(digest: &str) -> String {
    let (algorithm, encoded) = digest.split_once(':').expect("a digest");
    format!("blobs/{algorithm}/{encoded}")
}

fn sha256(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).as_str().to_string()
}

/// Sets the value at a JSON pointer; the parent must exist. On an array, the index may be its
/// length (or `-`) to append.
fn set_at(value: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let key = key.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key, new);
        }
        Some(Value::Array(items)) => {
            let i = if key == "-" {
                items.len()
            } else {
                key.parse().expect("an array index")
            };
            if i == items.len() {
                items.push(new);
            } else {
                items[i] = new;
            }
        }
        other => panic!("cannot set {pointer}: its parent is {other:?}"),
    }
}

/// Removes the value at a JSON pointer.
fn remove_at(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let key = key.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.shift_remove(&key)
                .unwrap_or_else(|| panic!("nothing at {pointer}"));
        }
        Some(Value::Array(items)) => {
            items.remove(key.parse().expect("an array index"));
        }
        other => panic!("cannot remove {pointer}: its parent is {other:?}"),
    }
}

/// Points every descriptor of `old` inside `value` at `new` (digest and size). Subjects are
/// left alone: a referrer names the version of its subject it was made for (and its fallback
/// tag is named after it), so re-linking them would corrupt the referrers bookkeeping.
fn retarget(value: &mut Value, old: &str, new: &str, size: u64) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = false;
            if map.get("digest").and_then(Value::as_str) == Some(old) {
                map.insert("digest".into(), json!(new));
                if map.contains_key("size") {
                    map.insert("size".into(), json!(size));
                }
                changed = true;
            }
            for (key, child) in map.iter_mut() {
                if key != "subject" {
                    changed |= retarget(child, old, new, size);
                }
            }
            changed
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            retarget(item, old, new, size) | changed
        }),
        _ => false,
    }
}

/// A private copy of a layout, and ways to corrupt it.
struct Fx {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// A copy of `testdata/sample`.
fn sample() -> Fx {
    let (dir, root) = sample_layout_copy();
    Fx { _dir: dir, root }
}

impl Fx {
    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join(blob_file(digest))
    }

    fn read_blob(&self, digest: &str) -> Vec<u8> {
        fs::read(self.blob_path(digest)).unwrap_or_else(|e| panic!("read blob {digest}: {e}"))
    }

    fn write(&self, relative: &str, bytes: impl AsRef<[u8]>) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create dir");
        }
        fs::write(path, bytes).expect("write file");
    }

    fn delete(&self, relative: &str) {
        let path = self.path(relative);
        if path.is_dir() {
            fs::remove_dir_all(path).expect("remove dir");
        } else {
            fs::remove_file(path).expect("remove file");
        }
    }

    /// A document blob, parsed.
    fn doc(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.read_blob(digest)).expect("a JSON document")
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&fs::read(self.path("index.json")).expect("read index.json"))
            .expect("index.json is JSON")
    }

    fn write_index(&self, index: &Value) {
        self.write("index.json", serde_json::to_vec(index).unwrap());
    }

    fn edit_index(&self, edit: impl FnOnce(&mut Value)) {
        let mut index = self.index();
        edit(&mut index);
        self.write_index(&index);
    }

    fn entries(&self) -> Vec<Value> {
        self.index()["manifests"]
            .as_array()
            .expect("manifests")
            .clone()
    }

    /// The position in index.json of the entry that `pick` chooses.
    fn position(&self, pick: impl Fn(&Value) -> bool) -> usize {
        self.entries()
            .iter()
            .position(pick)
            .expect("a matching index.json entry")
    }

    /// The position of the entry named `name`.
    fn position_of(&self, name: &str) -> usize {
        self.position(|e| e["annotations"][REF_NAME] == name)
    }

    /// The digest of the entry named `name`.
    fn named(&self, name: &str) -> String {
        let entry = &self.entries()[self.position_of(name)];
        entry["digest"].as_str().expect("a digest").to_string()
    }

    /// The sample SBOM (the untagged entry with an artifactType).
    fn sbom(&self) -> String {
        let entries = self.entries();
        let entry = &entries[self.sbom_position()];
        entry["digest"].as_str().unwrap().to_string()
    }

    fn sbom_position(&self) -> usize {
        self.position(|e| e.get("artifactType").is_some() && e["annotations"][REF_NAME].is_null())
    }

    /// The fallback-tag index (`sha256-<hex>`).
    fn fallback(&self) -> String {
        let entries = self.entries();
        entries[self.fallback_position()]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn fallback_position(&self) -> usize {
        self.position(|e| {
            e["annotations"][REF_NAME]
                .as_str()
                .is_some_and(|n| n.starts_with("sha256-"))
        })
    }

    /// The digest at `pointer` of a document.
    fn digest_at(&self, digest: &str, pointer: &str) -> String {
        self.doc(digest)
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no digest at {pointer} of {digest}"))
            .to_string()
    }

    fn config_of(&self, manifest: &str) -> String {
        self.digest_at(manifest, "/config/digest")
    }

    fn layer_of(&self, manifest: &str) -> String {
        self.digest_at(manifest, "/layers/0/digest")
    }

    fn child(&self, index: &str, i: usize) -> String {
        self.digest_at(index, &format!("/manifests/{i}/digest"))
    }

    /// The descriptor of an existing blob (as JSON).
    fn descriptor(&self, media_type: &str, digest: &str) -> Value {
        json!({"mediaType": media_type, "digest": digest, "size": self.read_blob(digest).len()})
    }

    /// Writes a blob; returns its digest and size.
    fn add_blob(&self, bytes: &[u8]) -> (String, u64) {
        let digest = sha256(bytes);
        self.write(&blob_file(&digest), bytes);
        (digest, bytes.len() as u64)
    }

    /// Writes a document (compact JSON); returns its descriptor.
    fn add_doc(&self, media_type: &str, value: &Value) -> Value {
        let (digest, size) = self.add_blob(&serde_json::to_vec(value).unwrap());
        json!({"mediaType": media_type, "digest": digest, "size": size})
    }

    /// Appends an entry to index.json, named `name` when given.
    fn push_entry(&self, mut entry: Value, name: Option<&str>) {
        if let Some(name) = name {
            set_at(&mut entry, "/annotations", json!({ REF_NAME: name }));
        }
        self.edit_index(|index| set_at(index, "/manifests/-", entry));
    }

    /// Rewrites a document blob with `edit` applied: the new bytes go under their digest, and
    /// every descriptor of the old one (in index.json and in other documents, recursively) is
    /// re-linked to it. Returns the new digest.
    fn edit(&self, digest: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut value = self.doc(digest);
        edit(&mut value);
        self.replace(digest, &serde_json::to_vec(&value).unwrap())
    }

    /// [`Fx::edit`] setting one value.
    fn set(&self, digest: &str, pointer: &str, new: Value) -> String {
        self.edit(digest, |v| set_at(v, pointer, new))
    }

    /// [`Fx::edit`] removing one value.
    fn remove(&self, digest: &str, pointer: &str) -> String {
        self.edit(digest, |v| remove_at(v, pointer))
    }

    /// Replaces blob `old` by `bytes` and re-links its referrers; the old blob is deleted
    /// when nothing mentions it any more. Returns the new digest.
    fn replace(&self, old: &str, bytes: &[u8]) -> String {
        let (new, size) = self.add_blob(bytes);
        if new != old {
            self.relink(old, &new, size);
            if !self.mentions(old) {
                fs::remove_file(self.blob_path(old)).expect("remove the old blob");
            }
        }
        new
    }

    fn relink(&self, old: &str, new: &str, size: u64) {
        let mut index = self.index();
        if retarget(&mut index, old, new, size) {
            self.write_index(&index);
        }
        for digest in self.blob_digests() {
            // Read afresh: a recursive re-link may have replaced it meanwhile.
            let Ok(bytes) = fs::read(self.blob_path(&digest)) else {
                continue;
            };
            let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            if digest != new && retarget(&mut value, old, new, size) {
                self.replace(&digest, &serde_json::to_vec(&value).unwrap());
            }
        }
    }

    /// Whether index.json or any blob names `digest`.
    fn mentions(&self, digest: &str) -> bool {
        let needle = digest.as_bytes();
        let contains = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        contains(&fs::read(self.path("index.json")).unwrap_or_default())
            || self
                .blob_digests()
                .iter()
                .filter(|d| d.as_str() != digest)
                .any(|d| contains(&fs::read(self.blob_path(d)).unwrap_or_default()))
    }

    /// The sha256 blobs that are regular files.
    fn blob_digests(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(self.path("blobs/sha256")) else {
            return Vec::new();
        };
        let mut out: Vec<String> = dir
            .map(|e| e.expect("a directory entry"))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
            .collect();
        out.sort();
        out
    }

    // ---- extra fixtures, written as raw JSON ----

    /// A Docker v2 schema2 image over the gzip sample layer: Docker config (with the nulls
    /// and extra fields `docker` writes), manifest and layer media types. Returns the
    /// manifest's descriptor; names it `name` in index.json when given.
    fn add_docker_image(&self, name: Option<&str>) -> Value {
        let gzip = self.named("app:gzip");
        let layer = self.layer_of(&gzip);
        let diff_id = self.doc(&self.config_of(&gzip))["rootfs"]["diff_ids"][0].clone();
        let runtime = json!({
            "Hostname": "", "User": "", "AttachStdin": false, "Tty": false,
            "ExposedPorts": {"8080/tcp": {}},
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["cat", "/hello.txt"], "Image": "", "Volumes": null, "WorkingDir": "",
            "Entrypoint": null, "OnBuild": null, "Labels": null,
        });
        let config = json!({
            "architecture": "amd64",
            "config": runtime,
            "container": "3f1c6d1e3c5b",
            "container_config": runtime,
            "created": "2024-01-01T00:00:00.123456789Z",
            "docker_version": "24.0.7",
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:1234 in / "}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        });
        let config = self.add_doc(DOCKER_CONFIG, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": config,
            "layers": [self.descriptor(DOCKER_LAYER_GZIP, &layer)],
        });
        let manifest = self.add_doc(DOCKER_MANIFEST, &manifest);
        if name.is_some() {
            self.push_entry(manifest.clone(), name);
        }
        manifest
    }

    /// A Docker manifest list of one Docker image, named `name`. Returns the list's digest.
    fn add_docker_list(&self, name: &str) -> String {
        let mut image = self.add_docker_image(None);
        set_at(
            &mut image,
            "/platform",
            json!({"architecture": "amd64", "os": "linux"}),
        );
        let list = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": [image],
        });
        let list = self.add_doc(DOCKER_MANIFEST_LIST, &list);
        self.push_entry(list.clone(), Some(name));
        list["digest"].as_str().unwrap().to_string()
    }

    /// An image-spec 1.1 artifact without a subject: the empty config, `artifactType`, one
    /// titled text blob. Named `name`; returns the manifest's digest.
    fn add_artifact(&self, name: &str) -> String {
        let (blob, size) = self.add_blob(b"an artifact's content\n");
        let (empty, _) = self.add_blob(b"{}");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.thing.v1",
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2, "data": "e30="},
            "layers": [{"mediaType": "text/plain", "digest": blob, "size": size, "annotations": {TITLE: "thing.txt"}}],
        });
        let manifest = self.add_doc(OCI_MANIFEST, &manifest);
        self.push_entry(manifest.clone(), Some(name));
        manifest["digest"].as_str().unwrap().to_string()
    }

    /// A referrer of `subject` (a manifest's digest) that no index.json entry lists; returns
    /// its descriptor as a referrers listing shows it (artifactType and annotations).
    fn add_referrer(&self, subject: &str) -> Value {
        let (blob, size) = self.add_blob(b"a signature\n");
        let (empty, _) = self.add_blob(b"{}");
        let artifact_type = "application/vnd.example.signature.v1";
        let annotations = json!({CREATED: "2024-01-02T00:00:00Z"});
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2, "data": "e30="},
            "layers": [{"mediaType": "application/octet-stream", "digest": blob, "size": size}],
            "subject": self.descriptor(OCI_MANIFEST, subject),
            "annotations": annotations,
        });
        let mut descriptor = self.add_doc(OCI_MANIFEST, &manifest);
        set_at(&mut descriptor, "/artifactType", json!(artifact_type));
        set_at(&mut descriptor, "/annotations", annotations);
        descriptor
    }

    /// A pre-release artifact manifest (`application/vnd.oci.artifact.manifest.v1+json`) whose
    /// subject is `app:gzip`, as an untagged index.json entry. Returns its digest.
    fn add_prerelease_artifact(&self) -> String {
        let (blob, size) = self.add_blob(b"a pre-release signature\n");
        let artifact_type = "application/vnd.example.signature.v1";
        let manifest = json!({
            "mediaType": OCI_ARTIFACT_MANIFEST,
            "artifactType": artifact_type,
            "blobs": [{"mediaType": "application/octet-stream", "digest": blob, "size": size}],
            "subject": self.descriptor(OCI_MANIFEST, &self.named("app:gzip")),
            "annotations": {CREATED: "2023-06-01T00:00:00Z"},
        });
        let mut entry = self.add_doc(OCI_ARTIFACT_MANIFEST, &manifest);
        set_at(&mut entry, "/artifactType", json!(artifact_type));
        let digest = entry["digest"].as_str().unwrap().to_string();
        self.push_entry(entry, None);
        digest
    }

    /// A Docker image with a foreign layer (not in the layout; `urls`, and a digest of an
    /// algorithm ocikit does not know) before the gzip sample layer, named `name`.
    fn add_foreign_image(&self, name: &str) -> String {
        let gzip = self.named("app:gzip");
        let layer = self.layer_of(&gzip);
        let diff_id = self.doc(&self.config_of(&gzip))["rootfs"]["diff_ids"][0].clone();
        let foreign_diff_id = format!("sha256:{}", "5f".repeat(32));
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [foreign_diff_id, diff_id]},
            "history": [{"created_by": "foreign base"}, {"created_by": "sample files"}],
        });
        let config = self.add_doc(DOCKER_CONFIG, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": config,
            "layers": [
                {
                    "mediaType": DOCKER_LAYER_FOREIGN_GZIP,
                    "digest": "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
                    "size": 123_456_789,
                    "urls": ["https://example.com/layers/base.tar.gz"],
                },
                self.descriptor(DOCKER_LAYER_GZIP, &layer),
            ],
        });
        let manifest = self.add_doc(DOCKER_MANIFEST, &manifest);
        self.push_entry(manifest.clone(), Some(name));
        manifest["digest"].as_str().unwrap().to_string()
    }

    /// `depth` indexes, each listing the next, the innermost listing the amd64 member of
    /// `app:multi`; the outermost is named `name`. Returns the digests, outermost first.
    fn add_nested_indexes(&self, name: &str, depth: usize) -> Vec<String> {
        let multi = self.named("app:multi");
        let mut child = self.doc(&multi)["manifests"][0].clone();
        let mut digests = Vec::new();
        for _ in 0..depth {
            let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]});
            child = self.add_doc(OCI_INDEX, &index);
            digests.push(child["digest"].as_str().unwrap().to_string());
        }
        self.push_entry(child, Some(name));
        digests.reverse();
        digests
    }
}

// ---------------------------------------------------------------------------------------------
// Running the validator
// ---------------------------------------------------------------------------------------------

fn validate(root: &Path, strict: bool, allow_foreign: bool) -> Report {
    let layout = Layout::open_unchecked(root).expect("open the layout");
    let mut options = Options::default();
    options.strict = strict;
    options.allow_foreign = allow_foreign;
    validate_layout(&layout, &options, &NoProgress).expect("validation runs")
}

fn describe(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "  (no findings)".into();
    }
    findings
        .iter()
        .map(|f| {
            format!(
                "  {} {} {}{}: {}",
                f.level.name(),
                f.rule,
                f.file.as_deref().unwrap_or("-"),
                f.pointer
                    .as_deref()
                    .map(|p| format!(" at {p}"))
                    .unwrap_or_default(),
                f.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a finding must be: `file` (None: anywhere) and `pointer` (None: any; `Some("")`: the
/// finding carries no pointer).
struct Where {
    file: Option<String>,
    pointer: Option<String>,
}

fn anywhere() -> Where {
    Where {
        file: None,
        pointer: None,
    }
}

/// A finding about a whole file (no pointer).
fn whole(file: impl Into<String>) -> Where {
    Where {
        file: Some(file.into()),
        pointer: Some(String::new()),
    }
}

/// A finding at `pointer` in `file`.
fn at(file: impl Into<String>, pointer: impl Into<String>) -> Where {
    Where {
        file: Some(file.into()),
        pointer: Some(pointer.into()),
    }
}

/// A finding at `pointer` in blob `digest`.
fn in_blob(digest: &str, pointer: &str) -> Where {
    at(blob_file(digest), pointer)
}

impl Where {
    fn matches(&self, f: &Finding) -> bool {
        self.file
            .as_ref()
            .is_none_or(|file| f.file.as_ref() == Some(file))
            && self
                .pointer
                .as_ref()
                .is_none_or(|p| f.pointer.as_deref().unwrap_or("") == p)
    }

    fn describe(&self) -> String {
        format!(
            "{}{}",
            self.file.as_deref().unwrap_or("anywhere"),
            match self.pointer.as_deref() {
                None => String::new(),
                Some("") => " (no pointer)".into(),
                Some(p) => format!(" at {p}"),
            }
        )
    }
}

/// One corruption of a valid fixture, and the rule it must fire.
struct Mutation {
    name: &'static str,
    rule: &'static str,
    /// Validate with `--strict` (the rule is a SHOULD); it is then also checked to be a
    /// warning without `--strict`.
    strict: bool,
    /// Other rules this corruption rightly fires too (at error or warning level); any other
    /// error or warning fails the mutation. Info findings (L10, G3) are always allowed.
    also: &'static [&'static str],
    /// Validate with `allow_foreign`.
    allow_foreign: bool,
    /// Applies the corruption to a copy of the sample layout; says where the finding must be.
    apply: fn(&Fx) -> Where,
}

fn m(name: &'static str, rule: &'static str, apply: fn(&Fx) -> Where) -> Mutation {
    Mutation {
        name,
        rule,
        strict: false,
        also: &[],
        allow_foreign: false,
        apply,
    }
}

impl Mutation {
    fn strict(self) -> Mutation {
        Mutation {
            strict: true,
            ..self
        }
    }

    fn also(self, also: &'static [&'static str]) -> Mutation {
        Mutation { also, ..self }
    }

    /// Runs the mutation; returns what went wrong, if anything.
    fn check(&self) -> Option<String> {
        let fx = sample();
        let place = (self.apply)(&fx);
        let report = validate(&fx.root, self.strict, self.allow_foreign);
        let mut problems = Vec::new();
        let want_level = rule_by_id(self.rule)
            .unwrap_or_else(|| panic!("{}: no rule {}", self.name, self.rule))
            .level_in(self.strict);
        let fired: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.rule == self.rule)
            .collect();
        if fired.is_empty() {
            problems.push(format!("{} did not fire", self.rule));
        } else if !fired.iter().any(|f| place.matches(f)) {
            problems.push(format!(
                "{} fired, but not at {}",
                self.rule,
                place.describe()
            ));
        } else if !fired
            .iter()
            .any(|f| place.matches(f) && f.level == want_level)
        {
            problems.push(format!(
                "{} fired, but not as {}",
                self.rule,
                want_level.name()
            ));
        }
        let unexpected: BTreeSet<&str> = report
            .findings
            .iter()
            .filter(|f| f.level != Level::Info)
            .map(|f| f.rule)
            .filter(|r| *r != self.rule && !self.also.contains(r))
            .collect();
        if !unexpected.is_empty() {
            problems.push(format!("unexpected findings of {unexpected:?}"));
        }
        if let Some(difference) = archive_difference(&fx, &report, self.strict, self.allow_foreign)
        {
            problems.push(difference);
        }
        if self.strict {
            // A SHOULD: only a warning without --strict, and not an error.
            let lenient = validate(&fx.root, false, self.allow_foreign);
            let warned = lenient
                .findings
                .iter()
                .any(|f| f.rule == self.rule && f.level == Level::Warning && place.matches(f));
            if !warned {
                problems.push(format!("{} is not a warning without --strict", self.rule));
            }
        }
        (!problems.is_empty()).then(|| {
            format!(
                "{} (want {} at {}): {}\n{}",
                self.name,
                self.rule,
                place.describe(),
                problems.join("; "),
                describe(&report.findings)
            )
        })
    }
}

/// A finding without its message, to compare the results of a layout and of its archive.
fn key(f: &Finding) -> (String, Level, Option<String>, Option<String>) {
    (
        f.rule.to_string(),
        f.level,
        f.file.clone(),
        f.pointer.clone(),
    )
}

/// Validates the layout as a tar archive; says how the findings differ from `report`'s (the
/// directory's), if they do.
fn archive_difference(
    fx: &Fx,
    report: &Report,
    strict: bool,
    allow_foreign: bool,
) -> Option<String> {
    let tar_path = fx.root.with_file_name("layout.tar");
    let file = fs::File::create(&tar_path).expect("create the archive");
    let mut builder = tar::Builder::new(file);
    builder.follow_symlinks(false);
    if let Err(e) = builder
        .append_dir_all(".", &fx.root)
        .and_then(|()| builder.finish())
    {
        return Some(format!("cannot archive the layout: {e}"));
    }
    drop(builder);
    let archive = ocikit::store::archive::Archive::open_unchecked(&tar_path, &Default::default())
        .expect("open the archive");
    let mut options = Options::default();
    options.strict = strict;
    options.allow_foreign = allow_foreign;
    let archived = validate_layout(&archive, &options, &NoProgress).expect("validation runs");
    let want: BTreeSet<_> = report.findings.iter().map(key).collect();
    let got: BTreeSet<_> = archived.findings.iter().map(key).collect();
    (want != got).then(|| {
        format!(
            "as an archive, the findings differ:\n  only in the directory: {:?}\n  only in the archive: {:?}\n{}",
            want.difference(&got).collect::<Vec<_>>(),
            got.difference(&want).collect::<Vec<_>>(),
            describe(&archived.findings)
        )
    })
}

/// The layer of `app:gzip`, replaced by something else at the same path.
fn gzip_layer(fx: &Fx) -> (String, String) {
    let manifest = fx.named("app:gzip");
    let layer = fx.layer_of(&manifest);
    (manifest, layer)
}

/// The config of the amd64 member of `app:multi` (used by nothing else).
fn amd64_config(fx: &Fx) -> String {
    let member = fx.child(&fx.named("app:multi"), 0);
    fx.config_of(&member)
}

/// Edits the amd64 config; returns where a finding at `pointer` in the new config is.
fn edit_config(fx: &Fx, edit: impl FnOnce(&mut Value), pointer: &str) -> Where {
    let config = fx.edit(&amd64_config(fx), edit);
    in_blob(&config, pointer)
}

/// Edits the `app:zstd` manifest (named, not a subject, no referrers); returns where a finding
/// at `pointer` in the new manifest is.
fn edit_zstd(fx: &Fx, edit: impl FnOnce(&mut Value), pointer: &str) -> Where {
    let manifest = fx.edit(&fx.named("app:zstd"), edit);
    in_blob(&manifest, pointer)
}

/// Edits the `app:multi` index.
fn edit_multi(fx: &Fx, edit: impl FnOnce(&mut Value), pointer: &str) -> Where {
    let index = fx.edit(&fx.named("app:multi"), edit);
    in_blob(&index, pointer)
}

/// A JSON object's compact bytes with member `key` given a second time, with the same value.
fn with_member_again(bytes: &[u8], key: &str) -> Vec<u8> {
    let value: Value = serde_json::from_slice(bytes).expect("a JSON document");
    let text = serde_json::to_string(&value).unwrap();
    let again = serde_json::to_string(&value[key]).unwrap();
    let open = text.strip_suffix('}').expect("an object");
    format!("{open},\"{key}\":{again}}}").into_bytes()
}

/// Replaces the bytes of `app:zstd`'s manifest.
fn replace_zstd(fx: &Fx, bytes: &[u8]) -> Where {
    let manifest = fx.replace(&fx.named("app:zstd"), bytes);
    whole(blob_file(&manifest))
}

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
