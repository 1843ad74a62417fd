//! `testdata/sample/`: the shipped sample layout, kept byte-for-byte equal to what the fixtures
//! build, and what `ls` and `inspect` say about it.
//!
//! Regenerate it with `UPDATE_TESTDATA=1 cargo test --test integration testdata::`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::fixtures;
use crate::helpers::{ocikit, sample_layout};

/// Every file under `root` (relative path → bytes); directories are implied by the paths.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.expect("walk the tree"))
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            assert!(
                e.file_type().is_file(),
                "{} is not a regular file",
                e.path().display()
            );
            let relative = e.path().strip_prefix(root).expect("inside the root");
            let bytes = std::fs::read(e.path()).expect("read file");
            (relative.to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// The differences between two trees, one line each; empty when they are equal.
fn differences(want: &BTreeMap<String, Vec<u8>>, got: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, bytes) in want {
        match got.get(path) {
            None => out.push(format!("missing: {path}")),
            Some(other) if other != bytes => out.push(format!("differs: {path}")),
            Some(_) => {}
        }
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!("unexpected: {path}"));
    }
    out
}

#[test]
fn fixtures_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::sample_layout(&dir.path().join("a"));
    fixtures::sample_layout(&dir.path().join("b"));
    let diff = differences(&tree(&dir.path().join("a")), &tree(&dir.path().join("b")));
    assert!(diff.is_empty(), "two builds differ:\n{}", diff.join("\n"));
}

#[test]
fn sample_matches_fixtures() {
    let sample = sample_layout();
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("sample");
    fixtures::sample_layout(&fresh);
    if std::env::var_os("UPDATE_TESTDATA").is_some_and(|v| v == "1") {
        // Replace the old tree only once the new one is complete.
        if sample.exists() {
            std::fs::remove_dir_all(&sample).expect("remove the old testdata/sample");
        }
        crate::helpers::copy_tree(&fresh, &sample);
        eprintln!("note: rewrote {}", sample.display());
    }
    let diff = differences(&tree(&fresh), &tree(&sample));
    assert!(
        diff.is_empty(),
        "testdata/sample differs from what the fixtures build:\n{}\n\
         If the change is intended (fixtures, tar builder or compressor changed), regenerate it:\n\
         UPDATE_TESTDATA=1 cargo test --test integration testdata::",
        diff.join("\n")
    );
    let total: usize = tree(&sample).values().map(Vec::len).sum();
    assert!(total < 1024 * 1024, "testdata/sample is {total} bytes");
}

fn json_of(output: &[u8]) -> Value {
    serde_json::from_slice(output).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}",
            String::from_utf8_lossy(output).into_owned()
        )
    })
}

#[test]
fn ls_shows_names_and_referrers() {
    let sample = sample_layout();
    let out = ocikit().arg("ls").arg(&sample).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for name in ["app:gzip", "app:zstd", "app:multi"] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(
        !text.contains("sha256-"),
        "the fallback tag is listed:\n{text}"
    );

    let out = ocikit()
        .args(["ls", "--json"])
        .arg(&sample)
        .assert()
        .success();
    let listing = json_of(&out.get_output().stdout);
    let rows = listing["rows"].as_array().expect("rows");
    let by_name = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no row {name} in {listing}"))
    };
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["app:gzip", "app:zstd", "app:multi"], "{listing}");
    let built = fixtures::sample_layout(&tempfile::tempdir().unwrap().path().join("s"));
    let gzip = by_name("app:gzip");
    assert_eq!(gzip["referrers"], 1, "{gzip}");
    assert_eq!(gzip["digest"], built.gzip.manifest.digest.as_str());
    assert_eq!(gzip["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(by_name("app:zstd")["referrers"], 0);
    let multi = by_name("app:multi");
    assert_eq!(multi["referrers"], 0);
    assert_eq!(multi["digest"], built.multi.digest.as_str());
    assert_eq!(
        multi["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
    assert_eq!(listing["detachedReferrers"], 0);
}

#[test]
fn inspect_selects_the_arm64_manifest() {
    let reference = format!("{}:app:multi", sample_layout().display());
    let built = fixtures::sample_layout(&tempfile::tempdir().unwrap().path().join("s"));
    let out = ocikit()
        .args(["inspect", "--json", "--platform", "linux/arm64"])
        .arg(&reference)
        .assert()
        .success();
    let inspection = json_of(&out.get_output().stdout);
    assert_eq!(inspection["digest"], built.arm64.manifest.digest.as_str());
    assert_eq!(inspection["mediaType"], built.arm64.manifest.media_type);
    assert_eq!(inspection["platform"], "linux/arm64/v8", "{inspection}");
    let config = &inspection["config"];
    assert_eq!(config["digest"], built.arm64.config.digest.as_str());
    assert_eq!(config["platform"], "linux/arm64/v8", "{inspection}");
    assert_eq!(config["diffIds"], 1);
    let layers = inspection["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["digest"],
        built.arm64.layers[0].descriptor.digest.as_str()
    );
    assert_eq!(layers[0]["compression"], "gzip");
    assert_eq!(layers[0]["detected"], "gzip");

    // amd64 is the other one
    let out = ocikit()
        .args(["inspect", "--json", "--platform", "linux/amd64"])
        .arg(&reference)
        .assert()
        .success();
    let inspection = json_of(&out.get_output().stdout);
    assert_eq!(inspection["digest"], built.amd64.manifest.digest.as_str());
}

#[test]
fn inspect_shows_the_zstd_layer_and_the_config() {
    let reference = format!("{}:app:zstd", sample_layout().display());
    let out = ocikit()
        .args(["inspect", "--json"])
        .arg(&reference)
        .assert()
        .success();
    let inspection = json_of(&out.get_output().stdout);
    let layer = &inspection["layers"][0];
    assert_eq!(layer["compression"], "zstd", "{inspection}");
    assert_eq!(layer["detected"], "zstd", "{inspection}");
    let config = &inspection["config"];
    assert_eq!(config["platform"], "linux/amd64");
    assert_eq!(config["created"], fixtures::CREATED_AT);
    assert_eq!(config["cmd"], serde_json::json!(["cat", "/hello.txt"]));
}
