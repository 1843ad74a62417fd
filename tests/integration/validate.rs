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

// ---------------------------------------------------------------------------------------------
// Conformance: the image-spec's test vectors
// ---------------------------------------------------------------------------------------------

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/image-spec")
}

/// One case of `cases.json`.
struct Case {
    file: String,
    media_type: String,
    valid: bool,
    comment: String,
}

/// Every case of `cases.json`, with its media type percent-decoded.
fn cases() -> Vec<Case> {
    let path = conformance_dir().join("cases.json");
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let all: Value = serde_json::from_slice(&bytes).expect("cases.json is JSON");
    let cases = all["cases"]
        .as_array()
        .expect("cases.json has a cases array");
    assert!(!cases.is_empty(), "cases.json lists no cases");
    cases
        .iter()
        .map(|c| {
            let text = |key: &str| {
                c[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("a case without a string {key}: {c}"))
                    .to_string()
            };
            Case {
                file: text("file"),
                media_type: percent_decode(&text("mediaType")),
                valid: c["valid"].as_bool().expect("valid is a boolean"),
                comment: text("comment"),
            }
        })
        .collect()
}

/// Decodes `%XX` escapes (`application/vnd.oci.image.manifest.v1%2Bjson`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("a UTF-8 media type")
}

#[test]
fn percent_decoding() {
    assert_eq!(
        percent_decode("application/vnd.oci.image.manifest.v1%2Bjson"),
        OCI_MANIFEST
    );
    assert_eq!(percent_decode("a%2bb%2"), "a+b%2");
    assert_eq!(percent_decode("text/plain"), "text/plain");
}

/// Every case through the CLI in strict mode: valid ⇒ exit 0, invalid ⇒ exit 1.
#[test]
fn conformance_cases_through_the_cli() {
    let dir = conformance_dir();
    let cases = cases();
    let mut run = 0;
    let mut disagreements = Vec::new();
    for case in &cases {
        let output = ocikit()
            .args([
                "validate",
                "--strict",
                "--media-type",
                &case.media_type,
                "--document",
            ])
            .arg(dir.join(&case.file))
            .output()
            .expect("run ocikit");
        run += 1;
        let want = if case.valid { 0 } else { 1 };
        let got = output.status.code();
        if got != Some(want) {
            disagreements.push(format!(
                "{} ({}; {}): exit {got:?}, want {want}\n{}{}",
                case.file,
                if case.valid { "valid" } else { "invalid" },
                case.comment,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            ));
        }
    }
    assert_eq!(run, cases.len(), "every case runs");
    assert!(
        disagreements.is_empty(),
        "{} of {} conformance cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

/// The error-level rules each invalid case fires under `--strict`, read from each case's
/// comment (and, where the file says more than its comment, from the file).
const CASE_RULES: &[(&str, &[&str])] = &[
    ("manifest/001.json", &["D2"]), // config.mediaType "invalid"
    // The comment says config.size is a string, but the file is not even JSON (an unclosed
    // "config" object): J1 is what the bytes deserve.
    ("manifest/002.json", &["J1"]),
    ("manifest/003.json", &["D4"]),    // layers[0].size a string
    ("manifest/006.json", &["M5"]),    // empty layers: a SHOULD, an error under --strict
    ("manifest/009.json", &["M7"]),    // subject ".nope"
    ("manifest/010.json", &["G1"]),    // algorithm "sha256+foo+-b"
    ("imageIndex/001.json", &["D2"]),  // manifests[0].mediaType "invalid"
    ("imageIndex/002.json", &["D4"]),  // size a string
    ("imageIndex/003.json", &["D3"]),  // digest missing
    ("imageIndex/004.json", &["D11"]), // platform without architecture
    ("imageIndex/005.json", &["D2"]),  // mediaType "invalid"
    ("imageIndex/006.json", &["D2"]),  // mediaType ""
    ("imageIndex/012.json", &["M7"]),  // subject "nope"
    ("config/001.json", &["C3"]),      // os 123
    ("config/002.json", &["C8"]),      // variant 123
    ("config/003.json", &["C8"]),      // config.User 1234
    // 004–006 also carry "os": 123 (C3) besides the fault their comment names (C8).
    ("config/004.json", &["C8", "C3"]), // history a string
    ("config/005.json", &["C8", "C3"]), // Env [7353]
    ("config/006.json", &["C8", "C3"]), // Volumes an array
    ("config/007.json", &["J1"]),       // not JSON
    ("config/010.json", &["C7"]),       // Env ["foo"]
    ("descriptor/003.json", &["D2"]),   // mediaType missing
    ("descriptor/004.json", &["D2"]),   // no subtype
    ("descriptor/005.json", &["D2"]),   // ".foo/bar"
    ("descriptor/006.json", &["D2"]),   // "foo/.bar"
    ("descriptor/008.json", &["D2"]),   // type of 128 characters
    ("descriptor/009.json", &["D2"]),   // subtype of 128 characters
    ("descriptor/010.json", &["D4"]),   // size missing
    ("descriptor/011.json", &["D4"]),   // size a string
    ("descriptor/012.json", &["D3"]),   // digest missing
    ("descriptor/013.json", &["G1"]),   // ":5b0b…" (no algorithm)
    ("descriptor/014.json", &["G1"]),   // "sha256" (no encoded part)
    ("descriptor/015.json", &["G1"]),   // "SHA256:…"
    ("descriptor/016.json", &["G2"]),   // upper-case sha256 hex
    ("descriptor/018.json", &["D6"]),   // urls ["value"]
    ("descriptor/020.json", &["D9"]),   // artifactType "foo/.bar"
    ("descriptor/027.json", &["G1"]),   // "sha256+foo+-b"
    ("descriptor/030.json", &["D7"]),   // data without padding
    ("descriptor/031.json", &["D4"]),   // size -7682
    ("imageLayout/001.json", &["J1"]),  // "imageLayoutVersion": 1.0.0 (not JSON)
];

/// Every case through the library: valid ⇒ no error; invalid ⇒ exactly the error-level rules
/// of [`CASE_RULES`] (this pins the rule ids).
#[test]
fn conformance_cases_fire_their_rules() {
    let dir = conformance_dir();
    let cases = cases();
    let mut run = 0;
    let mut disagreements = Vec::new();
    let invalid: BTreeSet<&str> = cases
        .iter()
        .filter(|c| !c.valid)
        .map(|c| c.file.as_str())
        .collect();
    let tabled: BTreeSet<&str> = CASE_RULES.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        tabled, invalid,
        "CASE_RULES must list exactly the invalid cases of cases.json"
    );
    for case in &cases {
        let bytes = fs::read(dir.join(&case.file)).expect("read the case");
        let report = validate_document(&bytes, Some(&case.media_type), &case.file, true);
        run += 1;
        let errors: BTreeSet<&str> = report
            .findings
            .iter()
            .filter(|f| f.level == Level::Error)
            .map(|f| f.rule)
            .collect();
        let want: BTreeSet<&str> = CASE_RULES
            .iter()
            .find(|(f, _)| *f == case.file)
            .map(|(_, rules)| rules.iter().copied().collect())
            .unwrap_or_default();
        if errors != want {
            disagreements.push(format!(
                "{} ({}): error rules {errors:?}, want {want:?}\n{}",
                case.file,
                case.comment,
                describe(&report.findings)
            ));
        }
    }
    assert_eq!(run, cases.len(), "every case runs");
    assert!(
        disagreements.is_empty(),
        "{} of {} conformance cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

/// An empty `layers` is a warning without `--strict` (the spec text says SHOULD).
#[test]
fn empty_layers_is_a_warning_without_strict() {
    let file = conformance_dir().join("manifest/006.json");
    ocikit()
        .args(["validate", "--media-type", OCI_MANIFEST, "--document"])
        .arg(&file)
        .assert()
        .code(0);
    let report = validate_document(&fs::read(&file).unwrap(), None, "006.json", false);
    assert!(report.is_clean());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.rule == "M5" && f.level == Level::Warning),
        "{}",
        describe(&report.findings)
    );
}

/// The media type is detected from the document when `--media-type` is not given.
#[test]
fn document_kind_is_detected_without_media_type() {
    let dir = conformance_dir();
    for (file, rule) in [
        ("manifest/006.json", "M5"),
        ("config/010.json", "C7"),
        ("descriptor/030.json", "D7"),
        ("imageIndex/004.json", "D11"),
    ] {
        let report = validate_document(&fs::read(dir.join(file)).unwrap(), None, file, true);
        assert!(
            report.findings.iter().any(|f| f.rule == rule),
            "{file}: want {rule}\n{}",
            describe(&report.findings)
        );
    }
    for file in [
        "manifest/004.json",
        "imageIndex/007.json",
        "config/008.json",
    ] {
        let report = validate_document(&fs::read(dir.join(file)).unwrap(), None, file, true);
        assert!(report.is_clean(), "{file}\n{}", describe(&report.findings));
    }
}

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
    let options = Options {
        strict,
        allow_foreign,
        ..Options::default()
    };
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
    let options = Options {
        strict,
        allow_foreign,
        ..Options::default()
    };
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

fn mutations() -> Vec<Mutation> {
    vec![
        // ---- L: the layout ----
        m("oci-layout missing", "L1", |fx| {
            fx.delete("oci-layout");
            whole("oci-layout")
        }),
        m("oci-layout not an object", "L2", |fx| {
            fx.write("oci-layout", r#"["1.0.0"]"#);
            whole("oci-layout")
        }),
        m("oci-layout not JSON", "L2", |fx| {
            fx.write("oci-layout", "imageLayoutVersion: 1.0.0\n");
            whole("oci-layout")
        }),
        m("oci-layout a directory", "L2", |fx| {
            fx.delete("oci-layout");
            fs::create_dir(fx.path("oci-layout")).unwrap();
            whole("oci-layout")
        }),
        m("oci-layout a symlink", "L2", |fx| {
            let elsewhere = fx.root.with_file_name("oci-layout-elsewhere");
            fs::rename(fx.path("oci-layout"), &elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, fx.path("oci-layout")).unwrap();
            whole("oci-layout")
        }),
        m("oci-layout over 64 KiB", "L2", |fx| {
            let padded = format!(
                r#"{{"imageLayoutVersion":"1.0.0"{}}}"#,
                " ".repeat(64 * 1024)
            );
            fx.write("oci-layout", padded);
            whole("oci-layout")
        }),
        m("imageLayoutVersion 2.0.0", "L3", |fx| {
            fx.write("oci-layout", r#"{"imageLayoutVersion":"2.0.0"}"#);
            at("oci-layout", "/imageLayoutVersion")
        }),
        m("imageLayoutVersion missing", "L3", |fx| {
            fx.write("oci-layout", r#"{"version":"1.0.0"}"#);
            whole("oci-layout")
        }),
        m("index.json missing", "L4", |fx| {
            fx.delete("index.json");
            whole("index.json")
        }),
        m("index.json not JSON", "L5", |fx| {
            fx.write("index.json", r#"{"schemaVersion":2,"manifests":["#);
            whole("index.json")
        }),
        m("index.json a directory", "L5", |fx| {
            fx.delete("index.json");
            fs::create_dir(fx.path("index.json")).unwrap();
            whole("index.json")
        }),
        m("index.json a dangling symlink", "L5", |fx| {
            fx.delete("index.json");
            std::os::unix::fs::symlink("/nonexistent/index.json", fx.path("index.json")).unwrap();
            whole("index.json")
        }),
        m("index.json manifests null", "I2", |fx| {
            fx.edit_index(|i| set_at(i, "/manifests", Value::Null));
            at("index.json", "/manifests")
        }),
        m("index.json not an object", "I4", |fx| {
            fx.write("index.json", "[]");
            whole("index.json")
        }),
        m("index.json schemaVersion 1", "I1", |fx| {
            fx.edit_index(|i| set_at(i, "/schemaVersion", json!(1)));
            at("index.json", "/schemaVersion")
        }),
        m("blobs/ missing", "L6", |fx| {
            fx.delete("blobs");
            whole("blobs")
        })
        .also(&["L11"]),
        m("blob named with upper-case hex", "L7", |fx| {
            let (_, layer) = gzip_layer(fx);
            let upper = blob_file(&layer)
                .to_uppercase()
                .replace("BLOBS/SHA256", "blobs/sha256");
            fs::copy(fx.blob_path(&layer), fx.path(&upper)).unwrap();
            whole(upper)
        }),
        m("blob named with a short digest", "L7", |fx| {
            fx.write("blobs/sha256/abc123", "x");
            whole("blobs/sha256/abc123")
        }),
        m("blob directory not named after an algorithm", "L7", |fx| {
            fs::create_dir_all(fx.path("blobs/SHA_256")).unwrap();
            whole("blobs/SHA_256")
        }),
        m("file directly under blobs/", "L7", |fx| {
            fx.write("blobs/README", "blobs live here\n");
            whole("blobs/README")
        }),
        m("blob nested one level too deep", "L7", |fx| {
            fx.write(&format!("blobs/sha256/ab/{}", "cd".repeat(32)), "x");
            anywhere()
        }),
        m("layer content changed in place", "L8", |fx| {
            let (_, layer) = gzip_layer(fx);
            let mut bytes = fx.read_blob(&layer);
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            fs::write(fx.blob_path(&layer), bytes).unwrap();
            whole(blob_file(&layer))
        }),
        m("config content changed in place", "L8", |fx| {
            let config = amd64_config(fx);
            let text = String::from_utf8(fx.read_blob(&config)).unwrap();
            fs::write(
                fx.blob_path(&config),
                text.replace("ocikit fixtures", "OCIKIT FIXTURES"),
            )
            .unwrap();
            whole(blob_file(&config))
        }),
        m(
            "manifest content changed in place (same JSON, keys reordered)",
            "L8",
            |fx| {
                let manifest = fx.named("app:zstd");
                let text = String::from_utf8(fx.read_blob(&manifest)).unwrap();
                let from = format!(r#""mediaType":"{OCI_MANIFEST}","schemaVersion":2"#);
                let to = format!(r#""schemaVersion":2,"mediaType":"{OCI_MANIFEST}""#);
                assert!(text.contains(&from));
                fs::write(fx.blob_path(&manifest), text.replace(&from, &to)).unwrap();
                whole(blob_file(&manifest))
            },
        ),
        m("unreferenced blob changed in place", "L8", |fx| {
            let (digest, _) = fx.add_blob(b"nobody references me\n");
            fs::write(fx.blob_path(&digest), b"nobody references ME\n").unwrap();
            whole(blob_file(&digest))
        }),
        m("referenced layer deleted", "L11", |fx| {
            let (manifest, layer) = gzip_layer(fx);
            fs::remove_file(fx.blob_path(&layer)).unwrap();
            in_blob(&manifest, "/layers/0")
        }),
        m("referenced config deleted", "L11", |fx| {
            let member = fx.child(&fx.named("app:multi"), 0);
            fs::remove_file(fx.blob_path(&fx.config_of(&member))).unwrap();
            in_blob(&member, "/config")
        }),
        m("manifest named in index.json deleted", "L11", |fx| {
            fs::remove_file(fx.blob_path(&fx.named("app:zstd"))).unwrap();
            at(
                "index.json",
                format!("/manifests/{}", fx.position_of("app:zstd")),
            )
        }),
        m("foreign layer missing without allow_foreign", "L11", |fx| {
            let manifest = fx.add_foreign_image("foreign:1");
            in_blob(&manifest, "/layers/0")
        }),
        m("stray temp file at the root", "L9", |fx| {
            fx.write(".ocikit-tmp-1", "half a blob");
            whole(".ocikit-tmp-1")
        }),
        m("stray temp file in blobs/sha256", "L9", |fx| {
            fx.write("blobs/sha256/.ocikit-tmp-2", "half a blob");
            whole("blobs/sha256/.ocikit-tmp-2")
        }),
        m("unreferenced extra blob", "L10", |fx| {
            let (digest, _) = fx.add_blob(b"nobody references me\n");
            whole(blob_file(&digest))
        }),
        m("referenced blob is a directory", "L12", |fx| {
            let (_, layer) = gzip_layer(fx);
            fs::remove_file(fx.blob_path(&layer)).unwrap();
            fs::create_dir(fx.blob_path(&layer)).unwrap();
            whole(blob_file(&layer))
        })
        .also(&["L11"]),
        m("referenced blob is a symlink", "L12", |fx| {
            let (_, layer) = gzip_layer(fx);
            let outside = fx.root.with_file_name("layer-elsewhere");
            fs::rename(fx.blob_path(&layer), &outside).unwrap();
            std::os::unix::fs::symlink(&outside, fx.blob_path(&layer)).unwrap();
            whole(blob_file(&layer))
        })
        .also(&["L11"]),
        m("blobs/sha256 is a symlink out of the layout", "L13", |fx| {
            let outside = fx.root.with_file_name("blobs-elsewhere");
            fs::rename(fx.path("blobs/sha256"), &outside).unwrap();
            std::os::unix::fs::symlink(&outside, fx.path("blobs/sha256")).unwrap();
            whole("blobs/sha256")
        })
        // No blob is read through the link, so every referenced blob is missing.
        .also(&["L11"]),
        m("blob is a FIFO", "L12", |fx| {
            let digest = sha256(b"a fifo");
            let status = std::process::Command::new("mkfifo")
                .arg(fx.blob_path(&digest))
                .status()
                .expect("run mkfifo");
            assert!(status.success());
            whole(blob_file(&digest))
        }),
        // ---- G: digests ----
        m("upper-case hex in a layer digest", "G2", |fx| {
            let layer = fx.layer_of(&fx.named("app:zstd"));
            let upper = format!("sha256:{}", layer["sha256:".len()..].to_uppercase());
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(upper)),
                "/layers/0/digest",
            )
        }),
        m("sha256 digest one character short", "G2", |fx| {
            let layer = fx.layer_of(&fx.named("app:zstd"));
            let short = layer[..layer.len() - 1].to_string();
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(short)),
                "/layers/0/digest",
            )
        }),
        m("sha512 digest of sha256 length", "G2", |fx| {
            let layer = fx.layer_of(&fx.named("app:zstd"));
            let wrong = layer.replace("sha256:", "sha512:");
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(wrong)),
                "/layers/0/digest",
            )
        }),
        m("bad algorithm grammar", "G1", |fx| {
            let layer = fx.layer_of(&fx.named("app:zstd"));
            let bad = layer.replace("sha256:", "sha256+-x:");
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(bad)),
                "/layers/0/digest",
            )
        }),
        m("digest without a colon", "G1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!("nope")),
                "/layers/0/digest",
            )
        }),
        m("diff_id not a digest", "G1", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/diff_ids/0", json!("layer-1")),
                "/rootfs/diff_ids/0",
            )
        }),
        m("blob of an unregistered algorithm", "G3", |fx| {
            fx.write(
                "blobs/multihash+base58/QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
                "?",
            );
            whole("blobs/multihash+base58/QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
        }),
        // ---- D: descriptors ----
        m("layer descriptor not an object", "D1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0", json!("a layer")),
                "/layers/0",
            )
        }),
        m("layer mediaType invalid", "D2", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/mediaType", json!("invalid")),
                "/layers/0/mediaType",
            )
        }),
        m("layer mediaType a number", "D2", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/mediaType", json!(7)),
                "/layers/0/mediaType",
            )
        }),
        m("config mediaType missing", "D2", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/config/mediaType"), "/config")
        }),
        m("index.json entry mediaType with parameters", "D2", |fx| {
            let position = fx.position_of("app:zstd");
            let pointer = format!("/manifests/{position}/mediaType");
            fx.edit_index(|i| set_at(i, &pointer, json!(format!("{OCI_MANIFEST}; charset=utf-8"))));
            at("index.json", pointer)
        }),
        m("layer digest a number", "D3", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(42)),
                "/layers/0/digest",
            )
        }),
        m("layer digest missing", "D3", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/layers/0/digest"), "/layers/0")
        }),
        m("layer size negative", "D4", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/size", json!(-284)),
                "/layers/0/size",
            )
        }),
        m("layer size a string", "D4", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/size", json!("284")),
                "/layers/0/size",
            )
        }),
        m("layer size fractional", "D4", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/size", json!(284.5)),
                "/layers/0/size",
            )
        }),
        m("layer size missing", "D4", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/layers/0/size"), "/layers/0")
        }),
        m("layer size wrong", "D5", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/size", json!(285)),
                "/layers/0/size",
            )
        }),
        m("index.json entry size wrong", "D5", |fx| {
            let position = fx.position_of("app:zstd");
            let pointer = format!("/manifests/{position}/size");
            fx.edit_index(|i| set_at(i, &pointer, json!(400)));
            at("index.json", pointer)
        }),
        m("urls entry not a URI", "D6", |fx| {
            edit_zstd(
                fx,
                |v| {
                    set_at(
                        v,
                        "/layers/0/urls",
                        json!(["https://example.com/l.tar", "not a uri"]),
                    )
                },
                "/layers/0/urls/1",
            )
        }),
        m("urls not an array", "D6", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/urls", json!("https://example.com/l.tar")),
                "/layers/0/urls",
            )
        }),
        m("data without padding", "D7", |fx| {
            let sbom = fx.set(&fx.sbom(), "/config/data", json!("e30"));
            in_blob(&sbom, "/config/data")
        }),
        m("data not base64", "D7", |fx| {
            let sbom = fx.set(&fx.sbom(), "/config/data", json!("{}"));
            in_blob(&sbom, "/config/data")
        }),
        m("data of the right length but other bytes", "D8", |fx| {
            let sbom = fx.set(&fx.sbom(), "/config/data", json!("W10="));
            in_blob(&sbom, "/config/data")
        }),
        m("data longer than size", "D8", |fx| {
            let sbom = fx.set(&fx.sbom(), "/config/data", json!("e30K"));
            in_blob(&sbom, "/config/data")
        }),
        m("artifactType not a media type", "D9", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/artifactType", json!("signature")),
                "/layers/0/artifactType",
            )
        }),
        m("manifest artifactType not a media type", "D9", |fx| {
            let artifact = fx.add_artifact("thing:1");
            let artifact = fx.set(&artifact, "/artifactType", json!("application/"));
            in_blob(&artifact, "/artifactType")
        }),
        m("multi-platform index entry without platform", "D10", |fx| {
            edit_multi(
                fx,
                |v| remove_at(v, "/manifests/0/platform"),
                "/manifests/0",
            )
        })
        .strict(),
        m("platform without os", "D11", |fx| {
            edit_multi(
                fx,
                |v| remove_at(v, "/manifests/0/platform/os"),
                "/manifests/0/platform",
            )
        }),
        m("platform architecture a number", "D11", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform/architecture", json!(64)),
                "/manifests/0/platform/architecture",
            )
        }),
        m("platform not an object", "D11", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform", json!("linux/amd64")),
                "/manifests/0/platform",
            )
        }),
        m("platform os.features not strings", "D11", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform/os.features", json!([1])),
                "/manifests/0/platform/os.features",
            )
        }),
        m("variant v9 on amd64", "D12", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform/variant", json!("v9")),
                "/manifests/0/platform/variant",
            )
        }),
        m("variant v7 on arm64", "D12", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/1/platform/variant", json!("v7")),
                "/manifests/1/platform/variant",
            )
        }),
        // ---- M: manifests ----
        m("schemaVersion 1", "M1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/schemaVersion", json!(1)),
                "/schemaVersion",
            )
        }),
        m("schemaVersion missing", "M1", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/schemaVersion"), "")
        }),
        m("schemaVersion a string", "M1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/schemaVersion", json!("2")),
                "/schemaVersion",
            )
        }),
        m("mediaType differs from the descriptor's", "M2", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/mediaType", json!(DOCKER_MANIFEST)),
                "/mediaType",
            )
        }),
        m("a second descriptor of a manifest says index", "M2", |fx| {
            let member = fx.child(&fx.named("app:multi"), 0);
            let mut entry = fx.descriptor(OCI_INDEX, &member);
            set_at(&mut entry, "/annotations", json!({ REF_NAME: "wrong" }));
            fx.edit_index(|i| set_at(i, "/manifests/-", entry));
            at(
                "index.json",
                format!("/manifests/{}/mediaType", fx.position_of("wrong")),
            )
        }),
        m("config missing", "M3", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/config"), "")
        }),
        m("config a string", "M3", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/config", json!("config.json")),
                "/config",
            )
        }),
        m("layers not an array", "M4", |fx| {
            edit_zstd(fx, |v| set_at(v, "/layers", json!({})), "/layers")
        }),
        m("layers missing", "M4", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/layers"), "")
        }),
        m("layers empty", "M5", |fx| {
            let sbom = fx.set(&fx.sbom(), "/layers", json!([]));
            in_blob(&sbom, "/layers")
        })
        .strict(),
        m("empty config without artifactType", "M6", |fx| {
            let artifact = fx.add_artifact("thing:1");
            let artifact = fx.remove(&artifact, "/artifactType");
            whole(blob_file(&artifact))
        }),
        m("subject not an object", "M7", |fx| {
            edit_zstd(fx, |v| set_at(v, "/subject", json!("nope")), "/subject")
        }),
        m("subject a malformed descriptor", "M7", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/subject", json!({"digest": "x"})),
                "/subject",
            )
        })
        .also(&["D2", "G1", "D4"]),
        m("subject absent from the layout", "M8", |fx| {
            let absent =
                json!({"mediaType": OCI_MANIFEST, "digest": sha256(b"elsewhere"), "size": 9});
            edit_zstd(fx, |v| set_at(v, "/subject", absent), "/subject")
        })
        .strict(),
        m("manifest over 4 MiB", "M9", |fx| {
            let padding = "x".repeat(4 * 1024 * 1024);
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!({"com.example.padding": padding})),
                "",
            )
        })
        .strict(),
        m("non-distributable layer", "M10", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/mediaType", json!(OCI_LAYER_NONDIST_GZIP)),
                "/layers/0/mediaType",
            )
        })
        // layer.md: implementations SHOULD NOT create them; --strict makes every SHOULD an error.
        .strict(),
        m("manifest without mediaType", "M11", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/mediaType"), "")
        })
        .strict(),
        m("manifest not an object", "M12", |fx| {
            replace_zstd(fx, b"[]")
        }),
        m("manifest not JSON", "J1", |fx| {
            replace_zstd(fx, b"schemaVersion: 2\n")
        }),
        // ---- J: what Go's encoding/json reads differently ----
        m("index.json entry with Digest beside digest", "J3", |fx| {
            // The issue's example: skopeo and umoci read the digest from "Digest".
            let position = fx.position_of("app:gzip");
            let other = fx.named("app:zstd");
            fx.edit_index(|i| set_at(i, &format!("/manifests/{position}/Digest"), json!(other)));
            at("index.json", format!("/manifests/{position}/Digest"))
        }),
        m("index.json entry with a repeated digest", "J2", |fx| {
            let position = fx.position_of("app:gzip");
            let digest = fx.named("app:gzip");
            let member = format!(r#""digest":"{digest}""#);
            let text = String::from_utf8(fs::read(fx.path("index.json")).unwrap()).unwrap();
            fx.write(
                "index.json",
                text.replacen(&member, &format!("{member},{member}"), 1),
            );
            at("index.json", format!("/manifests/{position}/digest"))
        }),
        m("manifest with Layers beside layers", "J3", |fx| {
            edit_zstd(fx, |v| set_at(v, "/Layers", json!([])), "/Layers")
        }),
        m("manifest with a repeated config", "J2", |fx| {
            let manifest = fx.named("app:zstd");
            let bytes = with_member_again(&fx.read_blob(&manifest), "config");
            let manifest = fx.replace(&manifest, &bytes);
            in_blob(&manifest, "/config")
        }),
        m(
            "layer descriptor with mediatype beside mediaType",
            "J3",
            |fx| {
                edit_zstd(
                    fx,
                    |v| set_at(v, "/layers/0/mediatype", json!(OCI_LAYER_NONDIST_GZIP)),
                    "/layers/0/mediatype",
                )
            },
        ),
        m("config digest spelled with a long s", "J3", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/config/digeſt", json!(sha256(b"other"))),
                "/config/digeſt",
            )
        }),
        m("config rootfs with Diff_IDs beside diff_ids", "J3", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/Diff_IDs", json!([sha256(b"other")])),
                "/rootfs/Diff_IDs",
            )
        }),
        m("index platform with OS beside os", "J3", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform/OS", json!("windows")),
                "/manifests/0/platform/OS",
            )
        }),
        m("oci-layout with ImageLayoutVersion", "J3", |fx| {
            fx.write(
                "oci-layout",
                r#"{"imageLayoutVersion":"1.0.0","ImageLayoutVersion":"2.0.0"}"#,
            );
            at("oci-layout", "/ImageLayoutVersion")
        }),
        // ---- I: indexes ----
        m("index schemaVersion 3", "I1", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/schemaVersion", json!(3)),
                "/schemaVersion",
            )
        }),
        m("index manifests a string", "I2", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests", json!("amd64, arm64")),
                "/manifests",
            )
        }),
        m("index manifests missing", "I2", |fx| {
            edit_multi(fx, |v| remove_at(v, "/manifests"), "")
        }),
        m(
            "index mediaType differs from the descriptor's",
            "I3",
            |fx| {
                edit_multi(
                    fx,
                    |v| set_at(v, "/mediaType", json!(DOCKER_MANIFEST_LIST)),
                    "/mediaType",
                )
            },
        ),
        m("index not an object", "I4", |fx| {
            let index = fx.replace(&fx.named("app:multi"), br#""amd64""#);
            whole(blob_file(&index))
        }),
        m("indexes nested more than 16 deep", "I5", |fx| {
            // chain[0] (named in index.json) to chain[15] are followed: 16 deep. chain[15]
            // leads to a 17th, which is refused there.
            let chain = fx.add_nested_indexes("deep", 20);
            in_blob(&chain[15], "/manifests/0")
        }),
        m(
            "index cycle (a blob that lies about its digest)",
            "I5",
            |fx| {
                let fake = sha256(b"a lie");
                let body = |size: usize| {
                    serde_json::to_vec(&json!({
                        "schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [{"mediaType": OCI_INDEX, "digest": fake, "size": size}],
                    }))
                    .unwrap()
                };
                let mut size = 0;
                while body(size).len() != size {
                    size = body(size).len();
                }
                fx.write(&blob_file(&fake), body(size));
                fx.push_entry(
                    json!({"mediaType": OCI_INDEX, "digest": fake, "size": size}),
                    Some("cycle"),
                );
                in_blob(&fake, "/manifests/0")
            },
        )
        .also(&["L8"]),
        m("index without mediaType", "I6", |fx| {
            edit_multi(fx, |v| remove_at(v, "/mediaType"), "")
        })
        .strict(),
        // ---- C: configs ----
        m("config not an object", "C1", |fx| {
            let config = fx.replace(&amd64_config(fx), br#""amd64""#);
            whole(blob_file(&config))
        }),
        m("config without architecture", "C2", |fx| {
            edit_config(fx, |v| remove_at(v, "/architecture"), "")
        }),
        m("config architecture a number", "C2", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/architecture", json!(64)),
                "/architecture",
            )
        }),
        m("config without os", "C3", |fx| {
            edit_config(fx, |v| remove_at(v, "/os"), "")
        }),
        m("rootfs.type foo", "C4", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/type", json!("foo")),
                "/rootfs/type",
            )
        }),
        m("rootfs missing", "C4", |fx| {
            edit_config(fx, |v| remove_at(v, "/rootfs"), "")
        }),
        m("diff_ids not an array", "C4", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/diff_ids", json!({})),
                "/rootfs/diff_ids",
            )
        }),
        m("diff_ids one more than the layers", "C5", |fx| {
            let extra = format!("sha256:{}", "ab".repeat(32));
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/diff_ids/1", json!(extra)),
                "/rootfs/diff_ids",
            )
        }),
        m("created \"yesterday\"", "C6", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/created", json!("yesterday")),
                "/created",
            )
        }),
        m("history created without a time zone", "C6", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/history/0/created", json!("2024-01-01T00:00:00")),
                "/history/0/created",
            )
        }),
        m("Env entry without =", "C7", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/Env/1", json!("FOO")),
                "/config/Env/1",
            )
        }),
        m("Env entry with an empty name", "C7", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/Env/0", json!("=value")),
                "/config/Env/0",
            )
        }),
        m("Cmd a string", "C8", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/Cmd", json!("cat /hello.txt")),
                "/config/Cmd",
            )
        }),
        m("ExposedPorts an array", "C8", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/ExposedPorts", json!(["80/tcp"])),
                "/config/ExposedPorts",
            )
        }),
        m("history a string", "C8", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/history", json!("built by hand")),
                "/history",
            )
        }),
        m("history entry empty_layer a string", "C8", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/history/0/empty_layer", json!("false")),
                "/history/0/empty_layer",
            )
        }),
        m("config of the runtime a string", "C8", |fx| {
            edit_config(fx, |v| set_at(v, "/config", json!("none")), "/config")
        }),
        m("history one layer too many", "C9", |fx| {
            let entry = json!({"created": "2024-01-01T00:00:00Z", "created_by": "one more"});
            edit_config(fx, |v| set_at(v, "/history/1", entry), "/history")
        }),
        // ---- A: annotations (and labels) ----
        m("annotation value a number", "A1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!({"com.example.build": 42})),
                "/annotations/com.example.build",
            )
        }),
        m("annotations an array", "A1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!(["a=b"])),
                "/annotations",
            )
        }),
        m("layer annotation value null", "A1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/annotations", json!({TITLE: null})),
                &format!("/layers/0/annotations/{TITLE}"),
            )
        }),
        m("config label value a boolean", "A1", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/Labels/com.example.debug", json!(true)),
                "/config/Labels/com.example.debug",
            )
        }),
        m("index.json entry annotation a number", "A1", |fx| {
            let position = fx.position_of("app:zstd");
            let pointer = format!("/manifests/{position}/annotations/com.example.n");
            fx.edit_index(|i| set_at(i, &pointer, json!(1)));
            at("index.json", pointer)
        }),
        m("ref.name \"bad name\"", "A2", |fx| {
            let position = fx.position_of("app:zstd");
            let pointer = format!("/manifests/{position}/annotations/{REF_NAME}");
            fx.edit_index(|i| set_at(i, &pointer, json!("bad name")));
            at("index.json", pointer)
        }),
        m("created annotation not RFC 3339", "A3", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!({CREATED: "2024-01-01"})),
                &format!("/annotations/{CREATED}"),
            )
        }),
        m("base.digest \"nope\"", "A4", |fx| {
            let key = "org.opencontainers.image.base.digest";
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!({key: "nope"})),
                &format!("/annotations/{key}"),
            )
        })
        // The annotations spec has no MUST on the value's form: a warning, an error if strict.
        .strict(),
        // ---- R: referrers ----
        m(
            "fallback tag lists a referrer of another subject",
            "R1",
            |fx| {
                let other = fx.add_referrer(&fx.named("app:zstd"));
                let listing = fx.set(&fx.fallback(), "/manifests/1", other);
                in_blob(&listing, "/manifests/1")
            },
        ),
        m(
            "fallback tag lists a manifest without subject",
            "R1",
            |fx| {
                let mut zstd = fx.descriptor(OCI_MANIFEST, &fx.named("app:zstd"));
                set_at(&mut zstd, "/artifactType", json!(OCI_CONFIG));
                let listing = fx.set(&fx.fallback(), "/manifests/1", zstd);
                in_blob(&listing, "/manifests/1")
            },
        )
        // An image manifest (not a referrer) in an index, without platform: D10 is right too.
        .also(&["D10"]),
        m("fallback entry with the wrong artifactType", "R2", |fx| {
            let listing = fx.set(
                &fx.fallback(),
                "/manifests/0/artifactType",
                json!("application/vnd.example.other"),
            );
            in_blob(&listing, "/manifests/0/artifactType")
        }),
        m(
            "fallback entry without the manifest's annotations",
            "R2",
            |fx| {
                let listing = fx.remove(&fx.fallback(), "/manifests/0/annotations");
                in_blob(&listing, "/manifests/0/annotations")
            },
        ),
        m(
            "untagged referrer entry with the wrong artifactType",
            "R3",
            |fx| {
                let pointer = format!("/manifests/{}/artifactType", fx.sbom_position());
                fx.edit_index(|i| set_at(i, &pointer, json!("application/vnd.example.other")));
                at("index.json", pointer)
            },
        ),
        m("fallback tag names a manifest", "R4", |fx| {
            let position = fx.fallback_position();
            let sbom = fx.descriptor(OCI_MANIFEST, &fx.sbom());
            fx.edit_index(|i| {
                let entry = &mut i["manifests"][position];
                entry["mediaType"] = sbom["mediaType"].clone();
                entry["digest"] = sbom["digest"].clone();
                entry["size"] = sbom["size"].clone();
            });
            at("index.json", format!("/manifests/{position}"))
        }),
        m(
            "fallback tag (index media type) names a manifest",
            "R4",
            |fx| {
                let position = fx.fallback_position();
                let sbom = fx.sbom();
                let size = fx.read_blob(&sbom).len();
                fx.edit_index(|i| {
                    i["manifests"][position]["digest"] = json!(sbom);
                    i["manifests"][position]["size"] = json!(size);
                });
                at("index.json", format!("/manifests/{position}"))
            },
        )
        // The entry says index, the SBOM is a manifest (reached before, untagged).
        .also(&["M2"]),
        // ---- K: Docker and pre-release documents ----
        m("Docker manifest without mediaType", "K1", |fx| {
            let image = fx.add_docker_image(Some("docker:1"));
            let manifest = fx.remove(image["digest"].as_str().unwrap(), "/mediaType");
            whole(blob_file(&manifest))
        })
        .also(&["M11"]),
        m("Docker manifest list entry without platform", "K1", |fx| {
            let list = fx.add_docker_list("docker:list");
            let list = fx.remove(&list, "/manifests/0/platform");
            in_blob(&list, "/manifests/0")
        })
        .also(&["D10"]),
        m("Docker manifest list without mediaType", "K1", |fx| {
            let list = fx.add_docker_list("docker:list");
            let list = fx.remove(&list, "/mediaType");
            whole(blob_file(&list))
        })
        .also(&["I6"]),
        m("pre-release artifact manifest", "K2", |fx| {
            let artifact = fx.add_prerelease_artifact();
            whole(blob_file(&artifact))
        }),
    ]
}

/// The sample layout is clean, even under `--strict`: not one finding.
#[test]
fn the_sample_is_clean() {
    let report = validate(&sample_layout(), true, false);
    assert!(report.findings.is_empty(), "{}", describe(&report.findings));
    assert!(report.stats.blobs > 0 && report.stats.manifests > 0);
}

/// Each corruption fires its rule, where it should, at the level it should — and nothing
/// else at warning or error level that it does not explain.
#[test]
fn mutations_fire_their_rules() {
    let mutations = mutations();
    let names: BTreeSet<&str> = mutations.iter().map(|m| m.name).collect();
    assert_eq!(names.len(), mutations.len(), "mutation names are unique");
    let failures: Vec<String> = mutations.iter().filter_map(Mutation::check).collect();
    assert!(
        failures.is_empty(),
        "{} of {} mutations failed:\n\n{}",
        failures.len(),
        mutations.len(),
        failures.join("\n\n")
    );
}

/// The suite covers every rule family the issue lists, and at least 40 corruptions.
#[test]
fn mutations_cover_every_rule_family() {
    let mutations = mutations();
    assert!(mutations.len() >= 40, "only {} mutations", mutations.len());
    let covered: BTreeSet<&str> = mutations
        .iter()
        .map(|m| m.rule)
        .chain(ambiguous_archives().iter().map(|a| a.rule))
        .collect();
    for family in ["L", "G", "D", "M", "I", "C", "A", "R", "K"] {
        assert!(
            covered.iter().any(|r| r
                .strip_prefix(family)
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))),
            "no mutation fires a {family} rule"
        );
    }
    // Every rule outside --deep (T) has a mutation or a conformance case.
    let conformance: BTreeSet<&str> = CASE_RULES
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    let untested: Vec<&str> = RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| !id.starts_with('T'))
        .filter(|id| !covered.contains(id) && !conformance.contains(id))
        .collect();
    assert!(untested.is_empty(), "rules without a test: {untested:?}");
}

// ---------------------------------------------------------------------------------------------
// Layout archives that tar readers read differently (L14, L15)
// ---------------------------------------------------------------------------------------------

/// An archive of the sample layout with entries appended that tar readers read differently.
struct AmbiguousArchive {
    name: &'static str,
    rule: &'static str,
    /// How many findings of `rule` (and nothing else) validate gives.
    findings: usize,
    /// The entries appended.
    extra: fn(&Fx) -> Vec<Extra>,
}

/// An entry appended to an archive: (type, raw name, link target, data, declared size).
type Extra = (tar::EntryType, String, Option<&'static str>, Vec<u8>, u64);

fn ambiguous_archives() -> Vec<AmbiguousArchive> {
    use tar::EntryType::{Directory, Link, Regular};
    fn index(fx: &Fx) -> Vec<u8> {
        fs::read(fx.path("index.json")).unwrap()
    }
    fn file(
        name: &str,
        data: Vec<u8>,
    ) -> (tar::EntryType, String, Option<&'static str>, Vec<u8>, u64) {
        let len = data.len() as u64;
        (Regular, name.to_string(), None, data, len)
    }
    vec![
        AmbiguousArchive {
            name: "index.json twice, as ./index.json",
            rule: "L14",
            findings: 1,
            extra: |fx| vec![file("./index.json", index(fx))],
        },
        AmbiguousArchive {
            name: "a hard link to an entry replaced later",
            rule: "L14",
            findings: 1,
            extra: |fx| {
                vec![
                    file("spare", index(fx)),
                    (Link, "linked".into(), Some("spare"), Vec::new(), 0),
                    file("spare", b"other".to_vec()),
                ]
            },
        },
        AmbiguousArchive {
            name: "an absolute name",
            rule: "L15",
            findings: 1,
            extra: |_| vec![file("/notes.txt", b"x".to_vec())],
        },
        AmbiguousArchive {
            name: "a directory that declares data",
            rule: "L15",
            findings: 1,
            extra: |_| vec![(Directory, "extra/".into(), None, vec![0u8; 512], 512)],
        },
    ]
}

impl AmbiguousArchive {
    /// Writes the archive next to the layout.
    fn write(&self, fx: &Fx) -> PathBuf {
        let path = fx.root.with_file_name("ambiguous.tar");
        let mut builder = tar::Builder::new(fs::File::create(&path).unwrap());
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &fx.root).unwrap();
        for (kind, name, link, data, size) in (self.extra)(fx) {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(link) = link {
                header.set_link_name_literal(link).unwrap();
            }
            header.set_entry_type(kind);
            header.set_mode(0o644);
            header.set_size(size);
            header.set_cksum();
            builder.append(&header, &data[..]).unwrap();
        }
        builder.finish().unwrap();
        path
    }
}

#[test]
fn archives_that_tar_readers_read_differently_are_l14_l15_and_refused_by_other_commands() {
    let mut failures = Vec::new();
    for case in ambiguous_archives() {
        let fx = sample();
        let path = case.write(&fx);
        let archive = ocikit::store::archive::Archive::open_unchecked(&path, &Default::default())
            .expect("validate opens it");
        let report = validate_layout(&archive, &Options::default(), &NoProgress).unwrap();
        let rules: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.level != Level::Info)
            .map(|f| f.rule)
            .collect();
        if rules != vec![case.rule; case.findings]
            || report
                .findings
                .iter()
                .any(|f| f.rule == case.rule && f.entry.is_none())
        {
            failures.push(format!("{}: {}", case.name, describe(&report.findings)));
        }
        let ls = ocikit().arg("ls").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&ls.stderr);
        if ls.status.code() != Some(2) || !stderr.contains("tar readers disagree") {
            failures.push(format!("{}: ls did not refuse it: {stderr}", case.name));
        }
        let validate = ocikit().arg("validate").arg(&path).output().unwrap();
        if validate.status.code() != Some(1) || !stdout_of(&validate).contains(case.rule) {
            failures.push(format!("{}: validate: {}", case.name, stdout_of(&validate)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// Decoys: unusual but valid layouts that must stay clean
// ---------------------------------------------------------------------------------------------

/// A decoy: an unusual but valid change that must yield no error or warning, even under
/// `--strict` (info findings allowed).
struct Decoy {
    name: &'static str,
    allow_foreign: bool,
    apply: fn(&Fx),
}

fn decoys() -> Vec<Decoy> {
    let d = |name, apply| Decoy {
        name,
        allow_foreign: false,
        apply,
    };
    vec![
        d("unknown files at the root (docker save leftovers)", |fx| {
            fx.write(
                "manifest.json",
                r#"[{"Config":"blobs/sha256/x","RepoTags":["app:1"],"Layers":[]}]"#,
            );
            fx.write("repositories", r#"{"app":{"1":"abc"}}"#);
            fx.write("README.md", "# a layout\n");
            fs::create_dir_all(fx.path("extra/dir")).unwrap();
        }),
        d(
            "unknown media types of config and layers (an artifact)",
            |fx| {
                let (config, config_size) = fx.add_blob(br#"{"tool":"example"}"#);
                let (blob, size) = fx.add_blob(b"\x00\x01binary");
                let manifest = json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.example.config.v1+json", "digest": config, "size": config_size},
                    "layers": [{"mediaType": "application/vnd.example.data.v1.tar+lz4", "digest": blob, "size": size}],
                });
                let manifest = fx.add_doc(OCI_MANIFEST, &manifest);
                fx.push_entry(manifest, Some("example:data"));
            },
        ),
        d(
            "empty values of predefined annotations (buildah, an image from scratch)",
            |fx| {
                edit_zstd(
                    fx,
                    |v| {
                        set_at(
                            v,
                            "/annotations",
                            json!({
                                "org.opencontainers.image.base.digest": "",
                                "org.opencontainers.image.base.name": "",
                                CREATED: "",
                                REF_NAME: "",
                            }),
                        )
                    },
                    "",
                );
            },
        ),
        d("an image-spec 1.1 artifact with the empty config", |fx| {
            fx.add_artifact("thing:1");
        }),
        d("unknown fields and annotation keys everywhere", |fx| {
            fx.write(
                "oci-layout",
                r#"{"imageLayoutVersion":"1.0.0","com.example.tool":"x"}"#,
            );
            let zstd = fx.edit(&fx.named("app:zstd"), |v| {
                set_at(v, "/com.example.field", json!({"nested": [1, 2]}));
                set_at(
                    v,
                    "/annotations",
                    json!({"com.example.key": "v", "vendor.x/y": ""}),
                );
                set_at(v, "/layers/0/com.example.field", json!(true));
                set_at(
                    v,
                    "/layers/0/annotations",
                    json!({"com.example.layer": "base"}),
                );
                set_at(v, "/config/com.example.field", json!(null));
            });
            assert!(fx.blob_path(&zstd).exists());
            let config = amd64_config(fx);
            fx.edit(&config, |v| {
                set_at(v, "/com.example.field", json!(1));
                set_at(v, "/config/com.example.field", json!("x"));
                set_at(v, "/config/Labels/com.example.label", json!("v"));
                set_at(v, "/rootfs/com.example.field", json!([]));
                set_at(v, "/history/0/com.example.field", json!({}));
            });
            fx.edit(&fx.named("app:multi"), |v| {
                set_at(v, "/com.example.field", json!(1));
                set_at(v, "/annotations", json!({"com.example.key": "v"}));
                set_at(v, "/manifests/0/platform/com.example.field", json!("x"));
                set_at(v, "/manifests/1/com.example.field", json!("x"));
            });
            fx.edit_index(|i| {
                set_at(i, "/com.example.field", json!({"a": 1}));
                set_at(i, "/annotations", json!({"com.example.key": "v"}));
                set_at(i, "/manifests/0/com.example.field", json!(2));
                set_at(i, "/manifests/0/annotations/com.example.key", json!("v"));
            });
        }),
        d(
            "a cosign-style signature (image config, no platform) in a fallback-tag listing",
            |fx| {
                let payload = br#"{"critical":{"identity":{"docker-reference":"example.com/app"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#;
                let (layer, layer_size) = fx.add_blob(payload);
                let config = json!({
                    "architecture": "", "os": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                    "history": [{"created": "0001-01-01T00:00:00Z"}],
                    "rootfs": {"type": "layers", "diff_ids": [layer]},
                });
                let config = fx.add_doc(OCI_CONFIG, &config);
                let gzip = fx.named("app:gzip");
                let signature = json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": config,
                    "layers": [{
                        "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                        "digest": layer, "size": layer_size,
                        "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDx"},
                    }],
                    "subject": fx.descriptor(OCI_MANIFEST, &gzip),
                });
                let mut listed = fx.add_doc(OCI_MANIFEST, &signature);
                set_at(&mut listed, "/artifactType", json!(OCI_CONFIG));
                fx.set(&fx.fallback(), "/manifests/1", listed);
            },
        ),
        d(
            "Docker media types (schema2 manifest, config, gzip layer)",
            |fx| {
                fx.add_docker_image(Some("docker:1"));
            },
        ),
        d("a Docker manifest list", |fx| {
            fx.add_docker_list("docker:list");
        }),
        d(
            "annotation keys that repeat or differ only in case (data, not fields)",
            |fx| {
                // Go matches map keys exactly and keeps the last of a repeated key, as serde
                // does: no differential. Unknown members are read by neither.
                let annotations = json!({"Digest": "a", "digest": "b", "MediaType": "c"});
                let zstd = fx.edit(&fx.named("app:zstd"), |v| {
                    set_at(v, "/annotations", annotations.clone());
                    set_at(v, "/layers/0/annotations", annotations.clone());
                    set_at(v, "/x-Layers", json!([]));
                });
                let bytes = String::from_utf8(fx.read_blob(&zstd)).unwrap();
                let bytes = bytes.replacen(r#""Digest":"a""#, r#""Digest":"a","Digest":"z""#, 1);
                fx.replace(&zstd, bytes.as_bytes());
                fx.edit(&amd64_config(fx), |v| {
                    set_at(v, "/config/Labels", json!({"Cmd": "x", "cmd": "y"}));
                });
            },
        ),
        d("indexes nested 3 deep", |fx| {
            fx.add_nested_indexes("nested", 3);
        }),
        d("platforms of other architectures and variants", |fx| {
            fx.edit(&fx.named("app:multi"), |v| {
                set_at(v, "/manifests/0/platform", json!({"architecture": "amd64", "os": "linux", "variant": "v3", "os.features": [], "features": ["sse4"]}));
                set_at(v, "/manifests/1/platform/variant", json!("v8.2"));
            });
        }),
        d("RFC 3339 times with fractions and offsets", |fx| {
            fx.edit(&amd64_config(fx), |v| {
                set_at(v, "/created", json!("2024-02-29T23:59:59.123456789+05:30"));
                set_at(v, "/history/0/created", json!("2024-01-01t00:00:00z"));
            });
        }),
        d("a descriptor with urls and embedded data", |fx| {
            fx.edit(&fx.named("app:zstd"), |v| {
                set_at(
                    v,
                    "/layers/0/urls",
                    json!(["https://example.com/layer.tar.zst", "urn:example:layer"]),
                );
            });
        }),
        Decoy {
            name: "a foreign layer with an unregistered digest algorithm and urls (allow_foreign)",
            allow_foreign: true,
            apply: |fx| {
                fx.add_foreign_image("foreign:1");
            },
        },
    ]
}

#[test]
fn decoys_stay_clean() {
    let mut failures = Vec::new();
    for decoy in decoys() {
        let fx = sample();
        (decoy.apply)(&fx);
        let report = validate(&fx.root, true, decoy.allow_foreign);
        if report.findings.iter().any(|f| f.level != Level::Info) {
            failures.push(format!("{}:\n{}", decoy.name, describe(&report.findings)));
        }
    }
    assert!(
        failures.is_empty(),
        "decoys with findings:\n{}",
        failures.join("\n\n")
    );
}

/// The re-linking helper itself: a rewritten config reaches index.json through its manifest
/// and index, and the old blobs are gone.
#[test]
fn edits_relink_up_to_index_json() {
    let fx = sample();
    let multi = fx.named("app:multi");
    let member = fx.child(&multi, 0);
    let config = fx.config_of(&member);
    let new = fx.set(&config, "/author", json!("someone else"));
    let new_multi = fx.named("app:multi");
    assert_ne!(new_multi, multi);
    assert_eq!(fx.config_of(&fx.child(&new_multi, 0)), new);
    for old in [&config, &member, &multi] {
        assert!(!fx.blob_path(old).exists(), "{old} is still there");
    }
    let report = validate(&fx.root, true, false);
    assert!(report.findings.is_empty(), "{}", describe(&report.findings));
}

/// Validating by name still finds an entry whose other annotations are wrong.
#[test]
fn names_match_entries_with_bad_annotations() {
    let fx = sample();
    let position = fx.position_of("app:zstd");
    fx.edit_index(|i| {
        set_at(
            i,
            &format!("/manifests/{position}/annotations/com.example.n"),
            json!(1),
        )
    });
    let layout = Layout::open_unchecked(&fx.root).unwrap();
    let options = Options {
        names: vec!["app:zstd".into()],
        ..Options::default()
    };
    let report = validate_layout(&layout, &options, &NoProgress).expect("app:zstd is found");
    assert!(
        report.findings.iter().any(|f| f.rule == "A1"),
        "{}",
        describe(&report.findings)
    );
}

// ---------------------------------------------------------------------------------------------
// The command: exit statuses
// ---------------------------------------------------------------------------------------------

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn exit_1_on_error_findings() {
    let fx = sample();
    let (_, layer) = gzip_layer(&fx);
    fs::remove_file(fx.blob_path(&layer)).unwrap();
    let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("L11"));
}

#[test]
fn exit_0_on_warnings_only_and_1_under_strict_for_should_rules() {
    let fx = sample();
    fx.write(".ocikit-tmp-1", "half a blob");
    let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("L9"));

    let fx = sample();
    fx.remove(&fx.named("app:zstd"), "/mediaType");
    ocikit().arg("validate").arg(&fx.root).assert().code(0);
    let output = ocikit()
        .args(["validate", "--strict"])
        .arg(&fx.root)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("M11"));
}

#[test]
fn exit_0_on_the_sample() {
    ocikit()
        .args(["validate", "--strict"])
        .arg(sample_layout())
        .assert()
        .code(0);
}

#[test]
fn exit_2_when_the_path_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    ocikit()
        .arg("validate")
        .arg(dir.path().join("missing"))
        .assert()
        .code(2);
    ocikit()
        .args(["validate", "--document"])
        .arg(dir.path().join("missing.json"))
        .assert()
        .code(2);
}

#[test]
fn exit_1_not_2_on_malformed_index_json_or_oci_layout() {
    for (file, content, rule) in [
        ("index.json", "{not json", "L5"),
        (
            "index.json",
            r#"{"schemaVersion":2,"manifests":null}"#,
            "I2",
        ),
        ("oci-layout", "{not json", "L2"),
        ("oci-layout", r#"{"imageLayoutVersion":"2.0.0"}"#, "L3"),
    ] {
        let fx = sample();
        fx.write(file, content);
        let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{file} = {content}: {}{}",
            stdout_of(&output),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout_of(&output).contains(rule),
            "{file} = {content}: {}",
            stdout_of(&output)
        );
    }
    let fx = sample();
    fx.delete("oci-layout");
    fx.delete("index.json");
    let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    // Directories where the files should be: findings too, not "could not run".
    let fx = sample();
    for file in ["oci-layout", "index.json"] {
        fx.delete(file);
        fs::create_dir(fx.path(file)).unwrap();
    }
    let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}{}",
        stdout_of(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout_of(&output).contains("L2") && stdout_of(&output).contains("L5"));
}
