//! `ocikit artifact push`, `attach`, `artifact pull` and `convert --artifact-to-image`: what
//! they write, how they refuse bad input (leaving the layout byte for byte as it was), and that
//! skopeo and umoci still read what they leave.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use ocikit::spec::document::canonical;
use ocikit::store::layout::Layout;
use ocikit::Digest;
use predicates::prelude::*;
use serde_json::{json, Value};

use crate::fixtures;
use crate::helpers::{
    blob_bytes, blob_names, index_bytes, index_value, ocikit, ocikit_json, sample_layout_copy,
    tool_available, trimmed_stdout,
};

const EPOCH: &str = "1704067200";
const SIG: &str = "application/vnd.example.signature";

fn l(path: &Path) -> String {
    path.display().to_string()
}

/// A fresh layout in a temp dir, and a directory for input files next to it.
fn fresh() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    Layout::init(&layout).unwrap();
    let files = dir.path().join("files");
    fs::create_dir(&files).unwrap();
    (dir, layout, files)
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    path
}

/// Runs ocikit with a fixed SOURCE_DATE_EPOCH; returns trimmed stdout, asserting success.
fn run_ok(args: &[&str]) -> String {
    trimmed_stdout(
        &ocikit()
            .args(args)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .assert()
            .success(),
    )
}

/// The manifest `digest` of `layout`, parsed.
fn manifest(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob_bytes(layout, digest)).unwrap()
}

/// The index.json entry of `digest` that has no name.
fn untagged_entry(layout: &Path, digest: &str) -> Option<Value> {
    index_value(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["digest"] == digest && m["annotations"]["org.opencontainers.image.ref.name"].is_null()
        })
        .cloned()
}

/// Files below `dir`, relative, sorted (to show nothing was written elsewhere).
fn tree(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

// ---- push ----

#[test]
fn push_creates_an_artifact_with_titled_layers_and_the_empty_config() {
    let (_dir, layout, files) = fresh();
    let sbom = write(&files, "sbom.json", "{\"spdx\":1}");
    let notes = write(&files, "notes.txt", "hello");
    let typed = format!("{}:application/spdx+json", l(&sbom));
    let digest = run_ok(&[
        "artifact",
        "push",
        &format!("{}:app:sbom", l(&layout)),
        &typed,
        &l(&notes),
        "--artifact-type",
        "application/vnd.example.sbom",
    ]);
    let m = manifest(&layout, &digest);
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["artifactType"], "application/vnd.example.sbom");
    assert_eq!(
        m["config"],
        json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": fixtures::EMPTY_DIGEST, "size": 2, "data": "e30="})
    );
    assert_eq!(m["layers"][0]["mediaType"], "application/spdx+json");
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "sbom.json"
    );
    assert_eq!(
        m["layers"][0]["digest"],
        Digest::sha256_of(b"{\"spdx\":1}").as_str()
    );
    assert_eq!(m["layers"][1]["mediaType"], "application/octet-stream");
    assert_eq!(
        m["layers"][1]["annotations"]["org.opencontainers.image.title"],
        "notes.txt"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.created"],
        "2024-01-01T00:00:00Z"
    );
    assert!(m.get("subject").is_none());
    // Written canonically: the bytes are the canonical form of themselves.
    let bytes = blob_bytes(&layout, &digest);
    assert_eq!(
        canonical::to_vec(&serde_json::from_slice(&bytes).unwrap()),
        bytes
    );
    let entry = &index_value(&layout)["manifests"][0];
    assert_eq!(entry["digest"], digest.as_str());
    assert_eq!(entry["artifactType"], "application/vnd.example.sbom");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "app:sbom"
    );
    // The blobs are all there.
    assert_eq!(blob_bytes(&layout, fixtures::EMPTY_DIGEST), b"{}");
    assert_eq!(
        blob_bytes(&layout, m["layers"][1]["digest"].as_str().unwrap()),
        b"hello"
    );
}

#[test]
fn push_is_reproducible_with_source_date_epoch_and_moves_an_existing_name() {
    let (_dir, layout, files) = fresh();
    let dir = files.join("tree");
    fs::create_dir_all(dir.join("sub")).unwrap();
    write(&dir, "a.txt", "a");
    write(&dir.join("sub"), "b.txt", "b");
    let note = write(&files, "note", "n");
    let push = |name: &str, layout: &Path| {
        run_ok(&[
            "artifact",
            "push",
            &format!("{}:{name}", l(layout)),
            &l(&dir),
            &l(&note),
            "--artifact-type",
            "application/x-bundle",
        ])
    };
    let first = push("v1", &layout);
    let (_other_dir, other, _) = fresh();
    assert_eq!(push("v1", &other), first, "same input, same digest");
    // The name moves to the new artifact; an untagged copy of the old one is not left.
    write(&files, "note", "changed");
    let second = push("v1", &layout);
    assert_ne!(second, first);
    let entries = index_value(&layout)["manifests"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], second.as_str());
}

#[test]
fn push_of_a_directory_makes_an_oras_layer_that_pull_unpacks() {
    let (dir, layout, files) = fresh();
    let config = files.join("config");
    fs::create_dir_all(config.join("nested/deeper")).unwrap();
    write(&config, "app.yaml", "port: 80\n");
    write(&config.join("nested/deeper"), "x", "x");
    std::os::unix::fs::symlink("app.yaml", config.join("current")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(config.join("app.yaml"), fs::Permissions::from_mode(0o600)).unwrap();
    let digest = run_ok(&[
        "artifact",
        "push",
        &format!("{}:conf", l(&layout)),
        &l(&config),
        "--artifact-type",
        "application/x-config",
    ]);
    let m = manifest(&layout, &digest);
    let layer = &m["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        layer["annotations"]["org.opencontainers.image.title"],
        "config"
    );
    assert_eq!(layer["annotations"]["io.deis.oras.content.unpack"], "true");
    // io.deis.oras.content.digest is the digest of the uncompressed tar, as oras checks it.
    let blob = blob_bytes(&layout, layer["digest"].as_str().unwrap());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&blob[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(
        layer["annotations"]["io.deis.oras.content.digest"],
        Digest::sha256_of(&tar).as_str()
    );
    let mut names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "config/",
            "config/app.yaml",
            "config/current",
            "config/nested/",
            "config/nested/deeper/",
            "config/nested/deeper/x"
        ]
    );

    let out = dir.path().join("out");
    let stderr = ocikit()
        .args(["artifact", "pull", &format!("{}:conf", l(&layout)), "-o"])
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stderr
        .clone();
    insta::assert_snapshot!(String::from_utf8(stderr).unwrap());
    assert_eq!(
        fs::read_to_string(out.join("config/app.yaml")).unwrap(),
        "port: 80\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("config/nested/deeper/x")).unwrap(),
        "x"
    );
    assert_eq!(
        fs::read_link(out.join("config/current")).unwrap(),
        PathBuf::from("app.yaml")
    );
    let mode = fs::metadata(out.join("config/app.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        tree(&out).iter().all(|n| !n.contains(".ocikit-tmp")),
        "{:?}",
        tree(&out)
    );
}

#[test]
fn push_without_files_has_one_empty_descriptor_layer() {
    let (_dir, layout, _) = fresh();
    let digest = run_ok(&[
        "artifact",
        "push",
        &format!("{}:empty", l(&layout)),
        "--artifact-type",
        "application/x-nothing",
    ]);
    let m = manifest(&layout, &digest);
    assert_eq!(
        m["layers"],
        json!([{"mediaType": "application/vnd.oci.empty.v1+json", "digest": fixtures::EMPTY_DIGEST, "size": 2, "data": "e30="}])
    );
}

#[test]
fn push_takes_annotations_from_flags_and_an_oras_annotation_file() {
    let (_dir, layout, files) = fresh();
    let a = write(&files, "a.txt", "a");
    let b = write(&files, "b.txt", "b");
    let annotations = write(
        &files,
        "annotations.json",
        &json!({
            "$manifest": {"org.example.from-file": "yes"},
            "$config": {"org.example.config": "c"},
            l(&a): {"org.example.by-path": "a"},
            "b.txt": {"org.example.by-title": "b", "org.opencontainers.image.title": "renamed.txt"},
        })
        .to_string(),
    );
    let digest = run_ok(&[
        "artifact",
        "push",
        &format!("{}:x", l(&layout)),
        &l(&a),
        &l(&b),
        "--artifact-type",
        "application/x",
        "--annotation",
        "org.example.flag=1",
        "-a",
        "org.opencontainers.image.created=2020-02-02T00:00:00Z",
        "--annotation-file",
        &l(&annotations),
    ]);
    let m = manifest(&layout, &digest);
    assert_eq!(
        m["annotations"],
        json!({"org.example.flag": "1", "org.example.from-file": "yes", "org.opencontainers.image.created": "2020-02-02T00:00:00Z"})
    );
    assert_eq!(
        m["config"]["annotations"],
        json!({"org.example.config": "c"})
    );
    assert_eq!(m["layers"][0]["annotations"]["org.example.by-path"], "a");
    assert_eq!(m["layers"][1]["annotations"]["org.example.by-title"], "b");
    assert_eq!(
        m["layers"][1]["annotations"]["org.opencontainers.image.title"],
        "renamed.txt"
    );
}

#[test]
fn push_inlines_small_blobs_and_pull_uses_data_when_a_blob_is_missing() {
    let (dir, layout, files) = fresh();
    let small = write(&files, "small", "tiny");
    let large = write(&files, "large", &"x".repeat(100));
    let config = write(&files, "config.json", "{\"k\":1}");
    let digest = run_ok(&[
        "artifact",
        "push",
        &format!("{}:x", l(&layout)),
        &l(&small),
        &l(&large),
        "--artifact-type",
        "application/x",
        "--inline-max",
        "10",
        "--config",
        &format!("{}:application/vnd.example.config+json", l(&config)),
    ]);
    let m = manifest(&layout, &digest);
    assert_eq!(m["layers"][0]["data"], "dGlueQ==");
    assert!(m["layers"][1].get("data").is_none());
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.example.config+json"
    );
    assert_eq!(m["config"]["data"], "eyJrIjoxfQ==");
    // Without --inline-max nothing is inlined, not even an empty file.
    let empty = write(&files, "empty", "");
    let plain = run_ok(&[
        "artifact",
        "push",
        &format!("{}:y", l(&layout)),
        &l(&empty),
        "--artifact-type",
        "application/x",
    ]);
    assert!(manifest(&layout, &plain)["layers"][0].get("data").is_none());

    fs::remove_file(
        layout
            .join("blobs/sha256")
            .join(Digest::sha256_of(b"tiny").encoded()),
    )
    .unwrap();
    let out = dir.path().join("out");
    ocikit()
        .args(["artifact", "pull", &format!("{}:x", l(&layout)), "-o"])
        .arg(&out)
        .args(["--config", "config.json"])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(out.join("small")).unwrap(), "tiny");
    assert_eq!(
        fs::read_to_string(out.join("config.json")).unwrap(),
        "{\"k\":1}"
    );
}

#[test]
fn push_refuses_a_manifest_over_4_mib_unless_allow_large() {
    let (_dir, layout, files) = fresh();
    let note = write(&files, "note", "n");
    let big = write(
        &files,
        "big.json",
        &json!({"$manifest": {"org.example.big": "x".repeat(4 * 1024 * 1024)}}).to_string(),
    );
    let before = index_bytes(&layout);
    let blobs = blob_names(&layout);
    let target = format!("{}:big", l(&layout));
    let args = [
        "artifact",
        "push",
        &target,
        &l(&note),
        "--artifact-type",
        "application/x",
        "--annotation-file",
        &l(&big),
    ];
    ocikit()
        .args(args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("4194304-byte limit"))
        .stderr(predicate::str::contains("--allow-large"));
    assert_eq!(index_bytes(&layout), before);
    assert_eq!(blob_names(&layout), blobs);
    let digest = run_ok(&[&args[..], &["--allow-large"]].concat());
    assert!(blob_bytes(&layout, &digest).len() > 4 * 1024 * 1024);
}

// ---- bad input ----

#[test]
fn bad_input_is_refused_with_a_clear_error_and_leaves_the_layout_unchanged() {
    let (_dir, layout, files) = fresh();
    fixtures::gzip_image(&Layout::open(&layout).unwrap(), "app:1");
    let ok = write(&files, "ok.txt", "ok");
    fs::create_dir(files.join("other")).unwrap();
    let same_title = write(&files.join("other"), "ok.txt", "again");
    let not_json = write(&files, "not.json", "{");
    let array = write(&files, "array.json", "[]");
    let number = write(&files, "number.json", r#"{"$manifest": {"k": 1}}"#);
    let unknown = write(&files, "unknown.json", r#"{"nope.txt": {"k": "v"}}"#);
    let flat = write(&files, "flat.json", r#"{"$manifest": "v"}"#);
    let twice = write(&files, "twice.json", r#"{"$manifest": {"k": "v"}}"#);
    let subject = format!("{}:app:1", l(&layout));
    let push = format!("{}:new", l(&layout));
    let ok = l(&ok);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "attach".into(),
                format!("{}:nope", l(&layout)),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
            ],
            "no image named \"nope\"",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                "not a type".into(),
                ok.clone(),
            ],
            "is not a media type as RFC 6838 defines it",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                "application/".into(),
                ok.clone(),
            ],
            "RFC 6838",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                l(&files.join("missing.txt")),
            ],
            "missing.txt does not exist",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                format!("{ok}:bad type/x"),
            ],
            "is not a media type",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "--annotation".into(),
                "novalue".into(),
            ],
            "the annotation \"novalue\" is malformed",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "--annotation".into(),
                "=v".into(),
            ],
            "KEY=VALUE",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "-a".into(),
                "k=1".into(),
                "-a".into(),
                "k=2".into(),
            ],
            "given twice",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "-a".into(),
                "k=1".into(),
                "--annotation-file".into(),
                l(&twice),
            ],
            "given twice",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "--annotation-file".into(),
                l(&not_json),
            ],
            "not.json is malformed",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "--annotation-file".into(),
                l(&array),
            ],
            "must be a JSON object of objects of strings",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "--annotation-file".into(),
                l(&number),
            ],
            "at /$manifest/k: annotation values must be strings",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "--annotation-file".into(),
                l(&flat),
            ],
            "at /$manifest: each value must be an object",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "--annotation-file".into(),
                l(&unknown),
            ],
            "the key \"nope.txt\" is neither",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                "--annotation-file".into(),
                l(&files.join("none.json")),
            ],
            "none.json",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                ok.clone(),
                l(&same_title),
            ],
            "would both be titled \"ok.txt\"",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                "--config".into(),
                l(&files),
            ],
            "is a directory; it must be a file",
        ),
        (
            vec![
                "attach".into(),
                subject.clone(),
                "--artifact-type".into(),
                SIG.into(),
                "--inline-max".into(),
                "9999999".into(),
            ],
            "--inline-max 9999999",
        ),
        (
            vec!["attach".into(), subject.clone(), ok.clone()],
            "--artifact-type",
        ),
        (
            vec![
                "artifact".into(),
                "push".into(),
                l(&layout),
                "--artifact-type".into(),
                SIG.into(),
            ],
            "needs LAYOUT:NAME",
        ),
        (
            vec![
                "artifact".into(),
                "push".into(),
                format!("{}:bad name", l(&layout)),
                "--artifact-type".into(),
                SIG.into(),
            ],
            "is not a valid name",
        ),
        (
            vec![
                "artifact".into(),
                "push".into(),
                format!("{}:sha256-{}", l(&layout), "a".repeat(64)),
                "--artifact-type".into(),
                SIG.into(),
            ],
            "fallback tags",
        ),
        (
            vec![
                "artifact".into(),
                "push".into(),
                push.clone(),
                "--artifact-type".into(),
                SIG.into(),
                l(&files.join("gone")),
            ],
            "gone does not exist",
        ),
    ];
    let before = index_bytes(&layout);
    let blobs = blob_names(&layout);
    let mut messages = String::new();
    for (args, expected) in &cases {
        let out = ocikit().args(args).assert().code(2).get_output().clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert_eq!(index_bytes(&layout), before, "{args:?} changed index.json");
        assert_eq!(blob_names(&layout), blobs, "{args:?} left blobs");
        messages.push_str(&stderr.replace(&l(_dir.path()), "[DIR]"));
    }
    let leftovers: Vec<String> = fs::read_dir(&layout)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ocikit-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    insta::assert_snapshot!(messages);
}

// ---- attach ----

#[test]
fn attach_records_the_referrer_in_both_conventions_merging_the_fallback_index() {
    let (_dir, layout) = sample_layout_copy();
    let files = layout.parent().unwrap().to_path_buf();
    let sig = write(&files, "sig", "signature");
    let want = fixtures::sample_layout(&tempfile::tempdir().unwrap().path().join("s"));
    let old_list = manifest(&layout, want.sbom.tag_index.digest.as_str())["manifests"].clone();
    let position = |layout: &Path, name: &str| {
        index_value(layout)["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .position(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
            .unwrap()
    };
    let tag_position = position(&layout, &want.sbom.tag_name);
    let digest = run_ok(&[
        "attach",
        &format!("{}:app:gzip", l(&layout)),
        "--artifact-type",
        SIG,
        &l(&sig),
        "-a",
        "org.example.signer=me",
    ]);
    let m = manifest(&layout, &digest);
    assert_eq!(
        m["subject"],
        json!({"mediaType": want.gzip.manifest.media_type, "digest": want.gzip.manifest.digest, "size": want.gzip.manifest.size})
    );
    let entry = untagged_entry(&layout, &digest).expect("an untagged entry");
    assert_eq!(entry["artifactType"], SIG);
    assert_eq!(entry["annotations"]["org.example.signer"], "me");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.created"],
        "2024-01-01T00:00:00Z"
    );
    // The fallback index kept its place and its earlier listing, byte for byte, and gained one.
    assert_eq!(position(&layout, &want.sbom.tag_name), tag_position);
    let tag_entry = &index_value(&layout)["manifests"][tag_position];
    let list = manifest(&layout, tag_entry["digest"].as_str().unwrap())["manifests"].clone();
    assert_eq!(list[0], old_list[0]);
    assert_eq!(list[1]["digest"], digest.as_str());
    assert_eq!(list[1]["artifactType"], SIG);
    assert_eq!(list.as_array().unwrap().len(), 2);
    // The same attach again changes nothing.
    let before = index_bytes(&layout);
    let again = run_ok(&[
        "attach",
        &format!("{}:app:gzip", l(&layout)),
        "--artifact-type",
        SIG,
        &l(&sig),
        "-a",
        "org.example.signer=me",
    ]);
    assert_eq!(again, digest);
    assert_eq!(index_bytes(&layout), before);
}

#[test]
fn attach_with_referrers_format_index_or_tag_writes_only_that_convention() {
    let (_dir, layout) = sample_layout_copy();
    let target = format!("{}:app:zstd", l(&layout));
    let zstd = ocikit_json(["inspect", &target, "--json"])["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let tag = format!("sha256-{}", zstd.trim_start_matches("sha256:"));
    let has_tag = |layout: &Path| {
        index_value(layout)["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
    };
    let index_only = run_ok(&[
        "attach",
        &target,
        "--artifact-type",
        "application/x-a",
        "--referrers-format",
        "index",
    ]);
    assert!(untagged_entry(&layout, &index_only).is_some());
    assert!(!has_tag(&layout));
    let tag_only = run_ok(&[
        "attach",
        &target,
        "--artifact-type",
        "application/x-b",
        "--referrers-format",
        "tag",
    ]);
    assert!(untagged_entry(&layout, &tag_only).is_none());
    assert!(has_tag(&layout));
    let root = ocikit_json(["referrers", &target, "--json"]);
    let found: Vec<(String, Value)> = root["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["digest"].as_str().unwrap().to_string(),
                r["foundIn"].clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [(index_only, json!(["index"])), (tag_only, json!(["tag"]))]
    );
}

#[test]
fn attach_with_platform_makes_the_index_member_the_subject() {
    let (_dir, layout) = sample_layout_copy();
    let want = fixtures::sample_layout(&tempfile::tempdir().unwrap().path().join("s"));
    let digest = run_ok(&[
        "attach",
        &format!("{}:app:multi", l(&layout)),
        "--platform",
        "linux/arm64",
        "--artifact-type",
        SIG,
    ]);
    assert_eq!(
        manifest(&layout, &digest)["subject"]["digest"],
        want.arm64.manifest.digest.as_str()
    );
    // Without --platform the index itself is the subject.
    let on_index = run_ok(&[
        "attach",
        &format!("{}:app:multi", l(&layout)),
        "--artifact-type",
        SIG,
    ]);
    assert_eq!(
        manifest(&layout, &on_index)["subject"],
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": want.multi.digest, "size": want.multi.size})
    );
}

#[test]
fn attach_refuses_an_archive_as_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("x.tar");
    fs::write(&archive, b"").unwrap();
    ocikit()
        .args([
            "attach",
            &format!("{}:a", l(&archive)),
            "--artifact-type",
            SIG,
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("read-only"));
}

// ---- pull ----

/// Writes an artifact named `name` whose layers are `layers` (bytes, media type, annotations).
fn artifact_with_layers(layout: &Path, name: &str, layers: &[(&[u8], &str, Value)]) {
    let opened = Layout::open(layout).unwrap();
    let writer = opened.writer().unwrap();
    writer.write_blob_bytes(b"{}").unwrap();
    let descriptors: Vec<Value> = layers
        .iter()
        .map(|(bytes, media_type, annotations)| {
            let blob = writer.write_blob_bytes(bytes).unwrap();
            json!({"mediaType": media_type, "digest": blob.digest, "size": blob.size, "annotations": annotations})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/x-test",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": fixtures::EMPTY_DIGEST, "size": 2},
        "layers": descriptors,
    });
    let written = fixtures::write_document(
        &writer,
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
    fixtures::tag(&writer, &written, name);
}

/// A tar entry written as given: (name, type, link target, content).
pub(crate) type RawEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// A tar with entries written as given (no normalization).
pub(crate) fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_ustar();
        {
            let raw = header.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn pull_writes_titled_files_skips_untitled_layers_and_writes_the_config() {
    let (dir, layout, _) = fresh();
    artifact_with_layers(
        &layout,
        "a",
        &[
            (
                b"one",
                "text/plain",
                json!({"org.opencontainers.image.title": "docs/one.txt"}),
            ),
            (b"untitled", "text/plain", json!({})),
        ],
    );
    let out = dir.path().join("out");
    let pulled = ocikit_json([
        "artifact".to_string(),
        "pull".into(),
        format!("{}:a", l(&layout)),
        "--output".into(),
        l(&out),
        "--config".into(),
        "config.json".into(),
        "--json".into(),
    ]);
    assert_eq!(pulled["files"][0]["path"], "docs/one.txt");
    assert_eq!(pulled["files"][0]["unpacked"], false);
    assert_eq!(pulled["files"][1]["path"], "config.json");
    assert_eq!(pulled["skipped"], json!([Digest::sha256_of(b"untitled")]));
    assert_eq!(fs::read_to_string(out.join("docs/one.txt")).unwrap(), "one");
    assert_eq!(fs::read_to_string(out.join("config.json")).unwrap(), "{}");
    assert_eq!(tree(&out), ["", "config.json", "docs", "docs/one.txt"]);
}

#[test]
fn pull_refuses_titles_that_would_leave_the_directory() {
    for title in ["/tmp/evil", "../evil", "a/../../evil", "."] {
        let (dir, layout, _) = fresh();
        artifact_with_layers(
            &layout,
            "a",
            &[(
                b"x",
                "text/plain",
                json!({"org.opencontainers.image.title": title}),
            )],
        );
        let before = tree(dir.path());
        ocikit()
            .args(["artifact", "pull", &format!("{}:a", l(&layout)), "-o"])
            .arg(dir.path().join("out"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("refusing it"));
        assert_eq!(tree(dir.path()), before, "{title}: nothing may be written");
    }
}

#[test]
fn pull_refuses_tar_entries_and_links_that_escape_the_directory() {
    let unpack = |title: &str| json!({"org.opencontainers.image.title": title, "io.deis.oras.content.unpack": "true"});
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            raw_tar(&[("d/../../evil", tar::EntryType::Regular, "", b"x")]),
            "contains '..'",
        ),
        (
            "absolute",
            raw_tar(&[("/tmp/evil", tar::EntryType::Regular, "", b"x")]),
            "absolute path",
        ),
        (
            "outside",
            raw_tar(&[("other/file", tar::EntryType::Regular, "", b"x")]),
            "is not inside \"d\"",
        ),
        (
            "symlink-up",
            raw_tar(&[("d/link", tar::EntryType::Symlink, "../../etc", b"")]),
            "leads outside the directory",
        ),
        (
            "symlink-absolute",
            raw_tar(&[("d/link", tar::EntryType::Symlink, "/etc", b"")]),
            "leads outside the directory",
        ),
        (
            "hardlink-out",
            raw_tar(&[("d/h", tar::EntryType::Link, "../x", b"")]),
            "contains '..'",
        ),
        (
            "device",
            raw_tar(&[("d/dev", tar::EntryType::Char, "", b"")]),
            "refusing it",
        ),
        (
            "title-as-file",
            raw_tar(&[("d", tar::EntryType::Regular, "", b"x")]),
            "names the directory the layer is titled",
        ),
        (
            "title-as-symlink",
            raw_tar(&[("d", tar::EntryType::Symlink, "/etc", b"")]),
            "names the directory the layer is titled",
        ),
    ];
    for (what, tar, expected) in cases {
        let (dir, layout, _) = fresh();
        artifact_with_layers(
            &layout,
            "a",
            &[(&tar, "application/vnd.oci.image.layer.v1.tar", unpack("d"))],
        );
        let out = dir.path().join("out");
        ocikit()
            .args(["artifact", "pull", &format!("{}:a", l(&layout)), "-o"])
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expected));
        assert!(!dir.path().join("evil").exists(), "{what}");
        assert!(
            !out.join("d").exists(),
            "{what}: a refused layer leaves nothing in place"
        );
        let leftovers: Vec<String> = tree(&out)
            .into_iter()
            .filter(|n| n.contains(".ocikit-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    }
}

#[test]
fn pull_refuses_to_write_through_a_symlink_in_the_output_directory() {
    let (dir, layout, _) = fresh();
    artifact_with_layers(
        &layout,
        "a",
        &[(
            b"x",
            "text/plain",
            json!({"org.opencontainers.image.title": "sub/file"}),
        )],
    );
    let out = dir.path().join("out");
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("sub")).unwrap();
    ocikit()
        .args(["artifact", "pull", &format!("{}:a", l(&layout)), "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("goes through the symlink \"sub\""))
        .stderr(predicate::str::contains("leads outside the directory"));
    assert!(tree(&elsewhere) == [""], "{:?}", tree(&elsewhere));
}

#[test]
fn pull_follows_a_symlink_in_the_output_directory_that_stays_inside() {
    let (dir, layout, _) = fresh();
    artifact_with_layers(
        &layout,
        "a",
        &[(
            b"x",
            "text/plain",
            json!({"org.opencontainers.image.title": "sub/file"}),
        )],
    );
    let out = dir.path().join("out");
    fs::create_dir_all(out.join("inner")).unwrap();
    std::os::unix::fs::symlink("inner", out.join("sub")).unwrap();
    run_ok(&[
        "artifact",
        "pull",
        &format!("{}:a", l(&layout)),
        "-o",
        &l(&out),
    ]);
    assert_eq!(fs::read_to_string(out.join("inner/file")).unwrap(), "x");
    assert_eq!(tree(&out), ["", "inner", "inner/file", "sub"]);
}

/// An oras-style directory layer titled "d": `entries` as a tar, gzip-compressed, with
/// `io.deis.oras.content.unpack`.
fn oras_directory_layer(layout: &Path, entries: &[RawEntry]) {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw_tar(entries)).unwrap();
    let blob = gz.finish().unwrap();
    artifact_with_layers(
        layout,
        "a",
        &[(
            &blob,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            json!({"org.opencontainers.image.title": "d", "io.deis.oras.content.unpack": "true"}),
        )],
    );
}

/// Pulls `layout:a` into `dir/out`, beside `dir/sentinel/target`, and asserts that it is refused
/// with every `expected` text in the message, and that nothing was written: `out` is empty (no
/// partial directory, no temp) and nothing beside it changed.
fn assert_pull_refused(dir: &Path, layout: &Path, expected: &[&str]) {
    let sentinel = dir.join("sentinel");
    fs::create_dir_all(&sentinel).unwrap();
    fs::write(sentinel.join("target"), "untouched").unwrap();
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let before = tree(dir);
    let mut assert = ocikit()
        .args(["artifact", "pull", &format!("{}:a", l(layout)), "-o"])
        .arg(&out)
        .assert()
        .code(2);
    for text in expected {
        assert = assert.stderr(predicate::str::contains(*text));
    }
    assert_eq!(tree(dir), before, "nothing may be written anywhere");
    assert_eq!(tree(&out), [""]);
    assert_eq!(tree(&sentinel), ["", "target"]);
    assert_eq!(
        fs::read_to_string(sentinel.join("target")).unwrap(),
        "untouched"
    );
    assert!(!dir.parent().unwrap().join("sentinel").exists());
}

#[test]
fn pull_refuses_links_that_lead_out_on_disk_though_they_look_contained() {
    use tar::EntryType::{Link, Regular, Symlink};
    let cases: Vec<(&str, Vec<RawEntry>, Vec<&str>)> = vec![
        (
            // The issue's chain, as given: `d/up -> ..` already leaves the titled directory.
            "issue chain",
            vec![
                ("d/up", Symlink, "..", b""),
                ("d/l", Symlink, "up/d/up/../../etc/passwd", b""),
            ],
            vec![
                "tar entry \"d/up\"",
                "is a symlink to \"..\"",
                "leads outside",
            ],
        ),
        (
            // The same chain one level down, where its first link stays inside.
            "chain below",
            vec![
                ("d/s/up", Symlink, "..", b""),
                ("d/s/l", Symlink, "up/s/up/../../sentinel/target", b""),
            ],
            vec!["tar entry \"d/s/l\"", "leads outside the directory"],
        ),
        (
            // The issue's hard link to an accepted deep symlink: d/a/b/s leads to d/x, but the
            // same symlink at d/h leads two levels above d.
            "hard link to a deep symlink",
            vec![
                ("d/a/b/s", Symlink, "../../x", b""),
                ("d/h", Link, "d/a/b/s", b""),
            ],
            vec![
                "tar entry \"d/h\"",
                "is a hard link to \"a/b/s\", a symlink to \"../../x\"",
                "leads outside the directory",
            ],
        ),
        (
            "absolute target",
            vec![("d/abs", Symlink, "/tmp", b"")],
            vec!["tar entry \"d/abs\"", "leads outside the directory"],
        ),
        (
            // Lexically d/s/../../x is d/x; on disk d/s is d/sub, and d/sub/../../x is outside.
            "link through a symlinked directory",
            vec![
                ("d/sub/", tar::EntryType::Directory, "", b""),
                ("d/s", Symlink, "sub", b""),
                ("d/s/l", Symlink, "../../x", b""),
            ],
            vec!["tar entry \"d/s/l\"", "leads outside the directory"],
        ),
        (
            // The source goes through d/p to a symlink that leads out from d/h.
            "hard link whose source goes through a symlink",
            vec![
                ("d/a/b/s", Symlink, "../../x", b""),
                ("d/p", Symlink, "a/b", b""),
                ("d/h", Link, "d/p/s", b""),
            ],
            vec![
                "tar entry \"d/h\"",
                "a symlink to \"../../x\"",
                "leads outside",
            ],
        ),
        (
            // d/a/b/c/l looks like d/a when made (x missing); d/a/b/c/x -> ../.. then makes it
            // lead two levels above d, and the file entry writes through it.
            "file through an earlier symlink made harmful by a later one",
            vec![
                ("d/a/b/c/l", Symlink, "x/../../..", b""),
                ("d/a/b/c/x", Symlink, "../..", b""),
                ("d/a/b/c/l/sentinel/pwned", Regular, "", b"pwned"),
            ],
            vec![
                "tar entry \"d/a/b/c/l/sentinel/pwned\"",
                "leads outside the directory",
            ],
        ),
        (
            // The same without the file: the link is judged again once the layer is written.
            "link made harmful by a later entry",
            vec![
                ("d/a/b/c/l", Symlink, "x/../../..", b""),
                ("d/a/b/c/x", Symlink, "../..", b""),
            ],
            vec![
                "tar entry \"d/a/b/c/l\"",
                "once the entries after it are written",
            ],
        ),
    ];
    for (what, entries, expected) in cases {
        let (dir, layout, _) = fresh();
        oras_directory_layer(&layout, &entries);
        let mut expected = expected;
        expected.push("refusing it");
        eprintln!("case: {what}");
        assert_pull_refused(dir.path(), &layout, &expected);
    }
}

#[test]
fn pull_unpacks_links_that_stay_inside() {
    use tar::EntryType::{Directory, Link, Regular, Symlink};
    let (dir, layout, _) = fresh();
    oras_directory_layer(
        &layout,
        &[
            ("d/", Directory, "", b""),
            ("d/nested/deeper/", Directory, "", b""),
            ("d/nested/deeper/file", Regular, "", b"deep"),
            ("d/app.yaml", Regular, "", b"port: 80"),
            ("d/current", Symlink, "app.yaml", b""),
            ("d/nested/up", Symlink, "../app.yaml", b""),
            ("d/nested/deeper/top", Symlink, "../..", b""),
            ("d/hard", Link, "d/app.yaml", b""),
            ("d/link", Symlink, "nested", b""),
            ("d/link/through", Regular, "", b"through"),
            ("d/hard-through", Link, "d/link/deeper/file", b""),
            ("d/nested/hard-symlink", Link, "d/nested/up", b""),
        ],
    );
    let out = dir.path().join("out");
    run_ok(&[
        "artifact",
        "pull",
        &format!("{}:a", l(&layout)),
        "-o",
        &l(&out),
    ]);
    let d = out.join("d");
    assert_eq!(fs::read_to_string(d.join("current")).unwrap(), "port: 80");
    assert_eq!(fs::read_to_string(d.join("nested/up")).unwrap(), "port: 80");
    assert_eq!(
        fs::read_to_string(d.join("nested/deeper/top/app.yaml")).unwrap(),
        "port: 80"
    );
    assert_eq!(fs::read_to_string(d.join("hard")).unwrap(), "port: 80");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(d.join("app.yaml")).unwrap().nlink(), 2);
    assert_eq!(
        fs::read_to_string(d.join("nested/through")).unwrap(),
        "through"
    );
    assert_eq!(fs::read_to_string(d.join("hard-through")).unwrap(), "deep");
    // A hard link to a symlink is that symlink (a link, not a copy of its target).
    assert_eq!(
        fs::read_link(d.join("nested/hard-symlink")).unwrap(),
        PathBuf::from("../app.yaml")
    );
    assert_eq!(
        fs::read_to_string(d.join("nested/hard-symlink")).unwrap(),
        "port: 80"
    );
    assert_eq!(
        tree(&out),
        [
            "",
            "d",
            "d/app.yaml",
            "d/current",
            "d/hard",
            "d/hard-through",
            "d/link",
            "d/nested",
            "d/nested/deeper",
            "d/nested/deeper/file",
            "d/nested/deeper/top",
            "d/nested/hard-symlink",
            "d/nested/through",
            "d/nested/up",
        ]
    );
}

#[test]
fn pull_of_a_corrupt_blob_leaves_no_file() {
    let (dir, layout, _) = fresh();
    artifact_with_layers(
        &layout,
        "a",
        &[(
            b"good bytes",
            "text/plain",
            json!({"org.opencontainers.image.title": "f"}),
        )],
    );
    fs::write(
        layout
            .join("blobs/sha256")
            .join(Digest::sha256_of(b"good bytes").encoded()),
        b"evil bytes",
    )
    .unwrap();
    let out = dir.path().join("out");
    ocikit()
        .args(["artifact", "pull", &format!("{}:a", l(&layout)), "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("corrupt"));
    assert_eq!(tree(&out), [""]);
}

#[test]
fn pull_of_a_directory_layer_with_bytes_after_its_tar_leaves_nothing_in_place() {
    let (dir, layout, _) = fresh();
    let tar = raw_tar(&[("d/file", tar::EntryType::Regular, "", b"content")]);
    let unpack =
        json!({"org.opencontainers.image.title": "d", "io.deis.oras.content.unpack": "true"});
    artifact_with_layers(
        &layout,
        "a",
        &[(&tar, "application/vnd.oci.image.layer.v1.tar", unpack)],
    );
    // The tar reads the same, but the blob no longer hashes to its digest.
    let path = layout
        .join("blobs/sha256")
        .join(Digest::sha256_of(&tar).encoded());
    let mut longer = tar.clone();
    longer.extend_from_slice(b"trailing bytes");
    fs::write(&path, &longer).unwrap();
    let out = dir.path().join("out");
    ocikit()
        .args(["artifact", "pull", &format!("{}:a", l(&layout)), "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("corrupt"));
    assert_eq!(tree(&out), [""]);
}

#[test]
fn pull_of_an_index_asks_for_a_platform() {
    let (_dir, layout) = sample_layout_copy();
    ocikit()
        .args([
            "artifact",
            "pull",
            &format!("{}:app:multi", l(&layout)),
            "-o",
        ])
        .arg(layout.parent().unwrap().join("out"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--platform"));
    // An image's layers have no titles: nothing to write.
    ocikit()
        .args([
            "artifact",
            "pull",
            &format!("{}:app:gzip", l(&layout)),
            "-o",
        ])
        .arg(layout.parent().unwrap().join("out"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no titled layers"));
}

// ---- convert ----

#[test]
fn convert_turns_a_pre_release_artifact_into_an_image_manifest_and_updates_bookkeeping() {
    let (_dir, layout) = sample_layout_copy();
    let opened = Layout::open(&layout).unwrap();
    let want = fixtures::sample_layout(&tempfile::tempdir().unwrap().path().join("s"));
    let old = fixtures::pre_release_artifact(&opened, &want.zstd.manifest);
    let position = |digest: &str| {
        index_value(&layout)["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .position(|m| m["digest"] == digest)
    };
    let old_position = position(old.digest.as_str()).unwrap();
    let converted = ocikit_json([
        "convert".to_string(),
        format!("{}@{}", l(&layout), old.digest),
        "--artifact-to-image".into(),
        "--json".into(),
    ]);
    let new = converted["to"]["digest"].as_str().unwrap().to_string();
    assert_eq!(converted["entries"], 1);
    let m = manifest(&layout, &new);
    let before = manifest(&layout, old.digest.as_str());
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["artifactType"], SIG);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        m["layers"], before["blobs"],
        "blobs become layers, unknown fields and all"
    );
    assert_eq!(m["layers"][0]["x-vendor"], "kept");
    assert_eq!(m["subject"], before["subject"]);
    assert_eq!(m["annotations"], before["annotations"]);
    assert_eq!(
        position(&new),
        Some(old_position),
        "the entry is replaced in place"
    );
    assert_eq!(position(old.digest.as_str()), None);
    assert_eq!(untagged_entry(&layout, &new).unwrap()["artifactType"], SIG);
    let root = ocikit_json(["referrers", &format!("{}:app:zstd", l(&layout)), "--json"]);
    assert_eq!(root["referrers"].as_array().unwrap().len(), 1);
    assert_eq!(root["referrers"][0]["digest"], new.as_str());
    assert_eq!(root["referrers"][0]["foundIn"], json!(["index", "tag"]));
}

#[test]
fn convert_requires_artifact_to_image_and_refuses_other_manifests() {
    let (_dir, layout) = sample_layout_copy();
    let before = index_bytes(&layout);
    ocikit()
        .args(["convert", &format!("{}:app:gzip", l(&layout))])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--artifact-to-image"));
    ocikit()
        .args([
            "convert",
            &format!("{}:app:gzip", l(&layout)),
            "--artifact-to-image",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "only pre-release artifact manifests are converted",
        ));
    assert_eq!(index_bytes(&layout), before);
}

// ---- interop ----

#[test]
fn skopeo_still_inspects_the_image_after_attach() {
    if !tool_available("skopeo") {
        return;
    }
    let (_dir, layout) = sample_layout_copy();
    let sig = write(layout.parent().unwrap(), "sig", "sig");
    run_ok(&[
        "attach",
        &format!("{}:app:gzip", l(&layout)),
        "--artifact-type",
        SIG,
        &l(&sig),
    ]);
    let want = fixtures::sample_layout(&tempfile::tempdir().unwrap().path().join("s"));
    let out = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            &format!("oci:{}:app:gzip", l(&layout)),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Digest"], want.gzip.manifest.digest.as_str());
    assert_eq!(info["Architecture"], "amd64");
}

#[test]
fn umoci_gc_keeps_the_blobs_of_attached_artifacts_in_either_convention() {
    if !tool_available("umoci") {
        return;
    }
    for format in ["index", "tag", "both"] {
        let (_dir, layout) = sample_layout_copy();
        let sig = write(layout.parent().unwrap(), "sig", &format!("sig {format}"));
        let digest = run_ok(&[
            "attach",
            &format!("{}:app:gzip", l(&layout)),
            "--artifact-type",
            SIG,
            &l(&sig),
            "--referrers-format",
            format,
        ]);
        let m = manifest(&layout, &digest);
        let out = std::process::Command::new("umoci")
            .args(["gc", "--layout"])
            .arg(&layout)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for blob in [
            digest.as_str(),
            m["config"]["digest"].as_str().unwrap(),
            m["layers"][0]["digest"].as_str().unwrap(),
        ] {
            let (_, hex) = blob.split_once(':').unwrap();
            assert!(
                layout.join("blobs/sha256").join(hex).exists(),
                "{format}: umoci gc swept {blob}"
            );
        }
        let root = ocikit_json(["referrers", &format!("{}:app:gzip", l(&layout)), "--json"]);
        assert!(root["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["digest"] == digest.as_str()));
    }
}

#[test]
fn pull_refuses_a_huge_pax_or_gnu_long_name_header_with_an_error_not_an_abort() {
    for kind in [tar::EntryType::GNULongName, tar::EntryType::XHeader] {
        let (dir, layout, _) = fresh();
        // A header that claims 1 GiB of name, followed by a little of it: the one tar reader
        // refuses it from its size field, before allocating anything.
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        header.set_entry_type(kind);
        header.set_size(1 << 30);
        header.set_mode(0o644);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.extend_from_slice(&[b'a'; 4096]);
        artifact_with_layers(
            &layout,
            "a",
            &[(
                &tar,
                "application/vnd.oci.image.layer.v1.tar",
                json!({"org.opencontainers.image.title": "d", "io.deis.oras.content.unpack": "true"}),
            )],
        );
        let out = dir.path().join("out");
        ocikit()
            .args(["artifact", "pull", &format!("{}:a", l(&layout)), "-o"])
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("header of 1073741824 bytes"))
            .stderr(predicate::str::contains("is larger than the 1048576 bytes"))
            .stderr(predicate::str::contains("is not a well-formed tar"));
        assert_eq!(tree(&out), [""], "{kind:?}: nothing is left behind");
    }
}

#[test]
fn pull_refuses_names_that_are_not_utf8_rather_than_merge_them() {
    // Two Latin-1 names would both become "caf\u{fffd}" if names were made up; also one alone.
    for names in [
        vec![&b"d/caf\xe9"[..], &b"d/caf\xff"[..]],
        vec![&b"d/sub/\xff\xfe"[..]],
    ] {
        let (dir, layout, _) = fresh();
        let mut tar = crate::testkit::Tar::default();
        for name in names {
            tar = tar.raw(crate::testkit::header(name, b'0', 1, b""), b"x");
        }
        let tar = tar.end();
        artifact_with_layers(
            &layout,
            "a",
            &[(
                &tar,
                "application/vnd.oci.image.layer.v1.tar",
                json!({"org.opencontainers.image.title": "d", "io.deis.oras.content.unpack": "true"}),
            )],
        );
        assert_pull_refused(dir.path(), &layout, &["is not valid UTF-8; refusing it"]);
    }
}

#[test]
fn pull_applies_the_decompression_limit_flags_to_directory_layers() {
    let (dir, layout, _) = fresh();
    oras_directory_layer(
        &layout,
        &[("d/big", tar::EntryType::Regular, "", &[0u8; 2 << 20])],
    );
    let out = dir.path().join("out");
    ocikit()
        .args(["artifact", "pull", &format!("{}:a", l(&layout)), "-o"])
        .arg(&out)
        .args(["--max-uncompressed", "1M"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("decompression stopped"))
        .stderr(predicate::str::contains("--max-uncompressed"));
    assert_eq!(tree(&out), [""]);
    // Raised, the same layer is written.
    run_ok(&[
        "artifact",
        "pull",
        &format!("{}:a", l(&layout)),
        "-o",
        &l(&out),
        "--max-uncompressed",
        "4M",
    ]);
    assert_eq!(fs::metadata(out.join("d/big")).unwrap().len(), 2 << 20);
}

/// A directory layer titled "d" whose `io.deis.oras.content.digest` does not match its tar.
fn oras_layer_with_a_wrong_digest_annotation(layout: &Path, tar: &[u8]) {
    artifact_with_layers(
        layout,
        "a",
        &[(
            tar,
            "application/vnd.oci.image.layer.v1.tar",
            json!({
                "org.opencontainers.image.title": "d",
                "io.deis.oras.content.unpack": "true",
                "io.deis.oras.content.digest": format!("sha256:{}", "0".repeat(64)),
            }),
        )],
    );
}

#[test]
fn pull_says_an_oras_digest_annotation_that_does_not_match_is_the_annotation() {
    let (dir, layout, _) = fresh();
    let tar = raw_tar(&[("d/file", tar::EntryType::Regular, "", b"content")]);
    oras_layer_with_a_wrong_digest_annotation(&layout, &tar);
    let out = dir.path().join("out");
    ocikit()
        .args(["artifact", "pull", &format!("{}:a", l(&layout)), "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "io.deis.oras.content.digest annotation of layer",
        ))
        .stderr(predicate::str::contains("does not match the layer"))
        .stderr(predicate::str::contains("corrupt").not());
    assert_eq!(tree(&out), [""]);
}

#[test]
fn a_late_refusal_of_an_unprivileged_pull_leaves_no_staging_directory() {
    use crate::helpers::{header_with_mode, ocikit_unprivileged};
    use crate::testkit::Tar;
    use std::os::unix::fs::PermissionsExt;
    let (dir, layout, _) = fresh();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    // Read-only directories (the titled one too), then a digest annotation that does not match.
    let tar = Tar::default()
        .raw(header_with_mode("d/", b'5', 0, 0o555), b"")
        .raw(header_with_mode("d/ro/", b'5', 0, 0o500), b"")
        .file("d/ro/f", b"f")
        .end();
    oras_layer_with_a_wrong_digest_annotation(&layout, &tar);
    let out = dir.path().join("out");
    ocikit_unprivileged()
        .args(["artifact", "pull", &format!("{}:a", l(&layout)), "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not match the layer"));
    assert_eq!(tree(&out), [""]);
}
