//! `ocikit gc`: what it keeps, what it removes, and that it never deletes when unsure.

use std::fs;
use std::path::Path;

use predicates::prelude::*;
use serde_json::Value;

use crate::helpers::{blob_names, index_bytes, ocikit, ocikit_json, sample_layout_copy};

fn at(layout: &Path, rest: &str) -> String {
    format!("{}{rest}", layout.display())
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    let (algorithm, encoded) = digest.split_once(':').unwrap();
    layout.join("blobs").join(algorithm).join(encoded)
}

fn manifest_of(layout: &Path, name: &str) -> Value {
    ocikit_json(["inspect", &at(layout, &format!(":{name}")), "--json"])
}

/// Attaches a small file to `subject` and returns the referrer's digest.
fn attach(layout: &Path, subject: &str, artifact_type: &str, content: &str) -> String {
    let file = layout
        .parent()
        .unwrap()
        .join(format!("{}.txt", content.len()));
    fs::write(&file, content).unwrap();
    crate::helpers::attach(subject, artifact_type, &file)
}

fn gc_json(layout: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "gc".to_string(),
        layout.display().to_string(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    ocikit_json(args)
}

fn assert_validates_clean(layout: &Path) {
    ocikit().arg("validate").arg(layout).assert().success();
}

#[test]
fn gc_on_a_clean_layout_removes_nothing() {
    let (_dir, layout) = sample_layout_copy();
    let before = blob_names(&layout);
    let outcome = gc_json(&layout, &[]);
    assert_eq!(outcome["removedBlobs"], Value::Array(vec![]));
    assert_eq!(
        outcome["keptBlobs"].as_u64().unwrap() as usize,
        before.len()
    );
    assert_eq!(blob_names(&layout), before);
}

#[test]
fn removing_a_name_then_gc_removes_its_blobs_and_every_referrer_chain_hanging_from_it() {
    let (_dir, layout) = sample_layout_copy();
    let gzip = manifest_of(&layout, "app:gzip");
    let zstd = manifest_of(&layout, "app:zstd");
    // The sample's SBOM is attached to app:gzip; sign the SBOM (multi-hop).
    let sbom = ocikit_json(["referrers", &at(&layout, ":app:gzip"), "--json"]);
    let sbom_digest = sbom["referrers"][0]["digest"].as_str().unwrap().to_string();
    let signature = attach(
        &layout,
        &at(&layout, &format!("@{sbom_digest}")),
        "application/vnd.example.signature",
        "sig of sbom",
    );
    let zstd_signature = attach(
        &layout,
        &at(&layout, ":app:zstd"),
        "application/vnd.example.signature",
        "sig of zstd",
    );

    ocikit()
        .args(["rm", &at(&layout, ":app:gzip")])
        .assert()
        .success();
    let outcome = gc_json(&layout, &[]);

    for gone in [
        gzip["digest"].as_str().unwrap(),
        gzip["layers"][0]["digest"].as_str().unwrap(),
        &sbom_digest,
        &signature,
    ] {
        assert!(!blob_path(&layout, gone).exists(), "{gone} should be gone");
    }
    // The config is shared with app:zstd; app:zstd's own signature stays.
    for kept in [
        gzip["config"]["digest"].as_str().unwrap(),
        zstd["digest"].as_str().unwrap(),
        &zstd_signature,
    ] {
        assert!(blob_path(&layout, kept).exists(), "{kept} should stay");
    }
    let reasons: Vec<&str> = outcome["removedEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"fallback tag of a subject that is not kept"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"referrer of a subject that is not kept"),
        "{reasons:?}"
    );
    assert_validates_clean(&layout);
    let after = ocikit_json(["referrers", &at(&layout, ":app:zstd"), "--json"]);
    assert_eq!(after["referrers"][0]["digest"], zstd_signature.as_str());
}

#[test]
fn keep_orphans_keeps_referrers_whose_subject_is_gone() {
    let (_dir, layout) = sample_layout_copy();
    let sbom = ocikit_json(["referrers", &at(&layout, ":app:gzip"), "--json"]);
    let sbom_digest = sbom["referrers"][0]["digest"].as_str().unwrap().to_string();
    ocikit()
        .args(["rm", &at(&layout, ":app:gzip")])
        .assert()
        .success();
    let outcome = gc_json(&layout, &["--keep-orphans"]);
    assert!(blob_path(&layout, &sbom_digest).exists());
    assert_eq!(outcome["removedEntries"], Value::Array(vec![]));
}

#[test]
fn dry_run_lists_what_would_go_and_changes_nothing() {
    let (_dir, layout) = sample_layout_copy();
    ocikit()
        .args(["rm", &at(&layout, ":app:zstd")])
        .assert()
        .success();
    let blobs = blob_names(&layout);
    let index = index_bytes(&layout);
    ocikit()
        .args(["gc", "--dry-run"])
        .arg(&layout)
        .assert()
        .success()
        .stdout(predicate::str::contains("Would remove 2 blobs"));
    let outcome = gc_json(&layout, &["--dry-run"]);
    assert_eq!(outcome["dryRun"], true);
    assert_eq!(
        outcome["removedBlobs"].as_array().unwrap().len(),
        2,
        "app:zstd's manifest and its zstd layer"
    );
    assert_eq!(blob_names(&layout), blobs);
    assert_eq!(index_bytes(&layout), index);
}

#[test]
fn prune_untagged_drops_untagged_images_but_not_referrers_of_kept_ones() {
    let (_dir, layout) = sample_layout_copy();
    let zstd = manifest_of(&layout, "app:zstd")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // Make app:zstd untagged: drop its name, keep an untagged entry.
    let mut index: Value = serde_json::from_slice(&index_bytes(&layout)).unwrap();
    for entry in index["manifests"].as_array_mut().unwrap() {
        if entry["digest"] == zstd.as_str() {
            entry.as_object_mut().unwrap().remove("annotations");
        }
    }
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    gc_json(&layout, &[]);
    assert!(
        blob_path(&layout, &zstd).exists(),
        "untagged entries are roots by default"
    );

    let outcome = gc_json(&layout, &["--prune-untagged"]);
    assert!(!blob_path(&layout, &zstd).exists());
    let reasons: Vec<&str> = outcome["removedEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["untagged (--prune-untagged)"]);
    // The SBOM (an untagged referrer of app:gzip, which is kept) survives.
    let sbom = ocikit_json(["referrers", &at(&layout, ":app:gzip"), "--json"]);
    assert_eq!(sbom["referrers"].as_array().unwrap().len(), 1);
    assert_validates_clean(&layout);
}

#[test]
fn a_blob_only_referrer_of_a_kept_image_is_kept_and_of_a_removed_one_is_removed() {
    let (_dir, layout) = sample_layout_copy();
    // cosign style: the signature manifest exists only in blobs/.
    let kept_sig = attach(
        &layout,
        &at(&layout, ":app:zstd"),
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "kept",
    );
    let doomed_sig = attach(
        &layout,
        &at(&layout, ":app:gzip"),
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "doomed",
    );
    ocikit()
        .args([
            "referrers",
            "sync",
            &layout.display().to_string(),
            "--format",
            "index",
        ])
        .assert()
        .success();
    let mut index: Value = serde_json::from_slice(&index_bytes(&layout)).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["digest"] != kept_sig.as_str() && e["digest"] != doomed_sig.as_str());
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    ocikit()
        .args(["rm", &at(&layout, ":app:gzip")])
        .assert()
        .success();
    gc_json(&layout, &[]);
    assert!(
        blob_path(&layout, &kept_sig).exists(),
        "a signature of a kept image must survive gc"
    );
    assert!(!blob_path(&layout, &doomed_sig).exists());
}

#[test]
fn unknown_media_types_are_leaves_and_missing_foreign_layers_are_tolerated() {
    let (_dir, layout) = sample_layout_copy();
    let file = layout.parent().unwrap().join("data.bin");
    fs::write(&file, b"opaque").unwrap();
    ocikit()
        .args([
            "artifact",
            "push",
            &at(&layout, ":odd"),
            &format!("{}:application/x-unknown-thing", file.display()),
        ])
        .args(["--artifact-type", "application/vnd.example.odd"])
        .assert()
        .success();
    let odd = manifest_of(&layout, "odd");
    let layer = odd["layers"][0]["digest"].as_str().unwrap().to_string();
    // A foreign layer: referenced but absent. gc must neither fail nor touch anything else.
    let zstd_layer = manifest_of(&layout, "app:zstd")["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    fs::remove_file(blob_path(&layout, &zstd_layer)).unwrap();
    let outcome = gc_json(&layout, &[]);
    assert_eq!(outcome["removedBlobs"], Value::Array(vec![]));
    assert!(blob_path(&layout, &layer).exists());
}

#[test]
fn gc_refuses_to_delete_anything_when_a_reachable_manifest_is_corrupt() {
    let (_dir, layout) = sample_layout_copy();
    let extra = layout.join("blobs/sha256").join("0".repeat(64));
    fs::write(&extra, b"unreferenced").unwrap();
    let zstd = manifest_of(&layout, "app:zstd")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = blob_path(&layout, &zstd);
    let mut bytes = fs::read(&path).unwrap();
    bytes[20] ^= 1;
    fs::write(&path, bytes).unwrap();
    let blobs = blob_names(&layout);
    ocikit()
        .arg("gc")
        .arg(&layout)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "gc stopped before deleting anything",
        ))
        .stderr(predicate::str::contains(&zstd));
    assert_eq!(blob_names(&layout), blobs);
}

#[test]
fn gc_removes_temp_files_of_crashed_writers_and_leaves_odd_files_alone() {
    let (dir, layout) = sample_layout_copy();
    fs::write(layout.join(".ocikit-tmp-crashed"), b"half a blob").unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, b"not ours").unwrap();
    let link = layout.join("blobs/sha256").join("1".repeat(64));
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let outcome = gc_json(&layout, &[]);
    assert_eq!(
        outcome["removedTempFiles"],
        serde_json::json!([".ocikit-tmp-crashed"])
    );
    assert!(!layout.join(".ocikit-tmp-crashed").exists());
    assert!(
        link.symlink_metadata().is_ok(),
        "a symlink in blobs/ is reported, not followed or removed"
    );
    assert_eq!(fs::read(&outside).unwrap(), b"not ours");
    assert!(outcome["skipped"][0]
        .as_str()
        .unwrap()
        .contains("not a regular file"));
}

#[test]
fn gc_refuses_archives_and_non_layouts() {
    let dir = tempfile::tempdir().unwrap();
    ocikit()
        .arg("gc")
        .arg(dir.path().join("missing"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not an OCI image layout"));
}
