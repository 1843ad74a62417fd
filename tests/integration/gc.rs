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
    assert_eq!(reasons, vec!["untagged, and untagged entries are pruned"]);
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
            "gc stopped before changing anything",
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

// ---- what a descriptor says a blob is (issue 8, item 1) ----

/// The digest, size and bytes of the manifest `name` names.
fn manifest_file(layout: &Path, name: &str) -> (String, u64, std::path::PathBuf) {
    let manifest = manifest_of(layout, name);
    let digest = manifest["digest"].as_str().unwrap().to_string();
    let size = manifest["size"].as_u64().unwrap();
    let copy = layout
        .parent()
        .unwrap()
        .join(format!("{}.json", &digest[7..19]));
    fs::write(&copy, crate::helpers::blob_bytes(layout, &digest)).unwrap();
    (digest, size, copy)
}

/// The blobs an image needs: its manifest, config and layers.
fn image_blobs(layout: &Path, name: &str) -> Vec<String> {
    let manifest = manifest_of(layout, name);
    let mut blobs = vec![
        manifest["digest"].as_str().unwrap().to_string(),
        manifest["config"]["digest"].as_str().unwrap().to_string(),
    ];
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.push(layer["digest"].as_str().unwrap().to_string());
    }
    blobs
}

fn assert_present(layout: &Path, blobs: &[String]) {
    for blob in blobs {
        assert!(blob_path(layout, blob).exists(), "{blob} was swept");
    }
}

/// Moves app:zstd's name behind an artifact (listed first in index.json) that holds the
/// manifest's bytes as what `files` (given the path of a copy of the manifest) makes of them:
/// removes the name, pushes the artifact, and names the manifest again by digest — all with
/// ocikit commands. Returns the manifest's digest.
fn first_reached_through_an_artifact(
    layout: &Path,
    files: impl FnOnce(&Path) -> Vec<String>,
) -> String {
    let (digest, _, copy) = manifest_file(layout, "app:zstd");
    ocikit()
        .args(["rm", &at(layout, ":app:zstd")])
        .assert()
        .success();
    ocikit()
        .args(["artifact", "push", &at(layout, ":copy")])
        .args(files(&copy))
        .args(["--artifact-type", "application/vnd.example.copy"])
        .assert()
        .success();
    ocikit()
        .args(["tag", &at(layout, &format!("@{digest}")), "app:zstd"])
        .assert()
        .success();
    digest
}

/// `validate --deep` is clean (no error-level finding at all).
fn assert_deep_clean(layout: &Path) {
    ocikit()
        .args(["validate", "--deep"])
        .arg(layout)
        .assert()
        .success()
        .stdout(predicate::str::contains("clean"));
}

#[test]
fn gc_keeps_an_image_whose_manifest_bytes_were_first_reached_as_an_artifact_layer() {
    // The reproduction, with ocikit commands alone.
    let (_dir, layout) = sample_layout_copy();
    let needed = image_blobs(&layout, "app:zstd");
    // An artifact whose layer (application/octet-stream) holds the very bytes of the manifest.
    first_reached_through_an_artifact(&layout, |copy| vec![copy.display().to_string()]);
    let outcome = gc_json(&layout, &[]);
    assert_eq!(outcome["removedBlobs"], Value::Array(vec![]), "{outcome}");
    assert_present(&layout, &needed);
    assert_deep_clean(&layout);
    assert_listed_whole(&layout, "app:zstd", &needed);
}

/// `ls` reads the image `name` as the manifest it is: its platform (from its config) and its
/// size (all of `needed`).
fn assert_listed_whole(layout: &Path, name: &str, needed: &[String]) {
    let listing = ocikit_json(["ls", &layout.display().to_string(), "--json"]);
    let row = listing["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()
        .clone();
    assert_eq!(
        row["platforms"],
        serde_json::json!(["linux/amd64"]),
        "{row}"
    );
    let sizes: u64 = needed
        .iter()
        .map(|d| fs::metadata(blob_path(layout, d)).unwrap().len())
        .sum();
    assert_eq!(row["size"].as_u64().unwrap(), sizes, "{row}");
}

#[test]
fn gc_keeps_an_image_first_reached_as_the_leaf_of_an_index_listed_before_it() {
    let (_dir, layout) = sample_layout_copy();
    let needed = image_blobs(&layout, "app:zstd");
    let (digest, size, _) = manifest_file(&layout, "app:zstd");
    // An index, first in index.json, that lists the manifest's bytes as a layer blob; the
    // image itself is only reached later, through its own (moved) entry.
    let holder = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest, "size": size,
        }],
    });
    let bytes = ocikit::spec::document::canonical::to_vec(&holder);
    let holder_digest = ocikit::Digest::sha256_of(&bytes);
    fs::write(
        layout.join("blobs/sha256").join(holder_digest.encoded()),
        &bytes,
    )
    .unwrap();
    let mut index: Value = serde_json::from_slice(&index_bytes(&layout)).unwrap();
    let entries = index["manifests"].as_array_mut().unwrap();
    let image = entries
        .iter()
        .position(|e| e["digest"] == digest.as_str())
        .unwrap();
    let image = entries.remove(image);
    entries.insert(
        0,
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": holder_digest.to_string(), "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "holder"},
        }),
    );
    entries.push(image);
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    let outcome = gc_json(&layout, &["--dry-run"]);
    assert_eq!(outcome["removedBlobs"], Value::Array(vec![]), "{outcome}");
    gc_json(&layout, &[]);
    assert_present(&layout, &needed);
    assert_listed_whole(&layout, "app:zstd", &needed);
    // validate's walk reads it as the manifest too: its layer is referenced, and --deep
    // decompresses it (3 layers in the sample, all reached).
    let report = ocikit_json([
        "validate",
        "--deep",
        "--format",
        "json",
        &layout.display().to_string(),
    ]);
    assert_eq!(report["stats"]["unreferenced"], 0, "{report}");
    assert!(!report.to_string().contains("L11"), "{report}");
}

#[test]
fn gc_keeps_an_image_whose_manifest_bytes_were_first_reached_as_a_config() {
    let (_dir, layout) = sample_layout_copy();
    let needed = image_blobs(&layout, "app:zstd");
    // The manifest's bytes as an image config (a descriptor that reads them as a leaf, and
    // that validate reads as a config).
    let digest = first_reached_through_an_artifact(&layout, |copy| {
        let config = format!(
            "{}:application/vnd.oci.image.config.v1+json",
            copy.display()
        );
        vec!["--config".into(), config]
    });
    gc_json(&layout, &[]);
    assert_present(&layout, &needed);
    // validate follows the manifest too: its layer is not missing, nothing is unreferenced.
    // (The "config" is no image config, which validate reports at the config.)
    let out = ocikit()
        .args(["validate", "--format", "json"])
        .arg(&layout)
        .assert()
        .code(1);
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["stats"]["unreferenced"], 0, "{report}");
    for finding in report["findings"].as_array().unwrap() {
        if finding["level"] == "error" {
            assert_eq!(finding["digest"], digest.as_str(), "{finding}");
            assert!(
                finding["rule"].as_str().unwrap().starts_with('C'),
                "{finding}"
            );
        }
    }
}

#[test]
fn gc_keeps_the_layers_of_a_blob_only_referrer_whose_bytes_are_also_an_artifact_file() {
    let (_dir, layout) = sample_layout_copy();
    // cosign style: a signature of app:zstd recorded nowhere.
    let signature = attach(
        &layout,
        &at(&layout, ":app:zstd"),
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "payload of the signature",
    );
    let mut index: Value = serde_json::from_slice(&index_bytes(&layout)).unwrap();
    index["manifests"].as_array_mut().unwrap().retain(|e| {
        let name = e["annotations"]["org.opencontainers.image.ref.name"].as_str();
        e["digest"] != signature.as_str() && !name.unwrap_or("").starts_with("sha256-")
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let payload = ocikit_json([
        "inspect".to_string(),
        at(&layout, &format!("@{signature}")),
        "--json".to_string(),
    ])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // The signature manifest's bytes, also kept as a file of an artifact.
    let copy = layout.parent().unwrap().join("signature.json");
    fs::write(&copy, crate::helpers::blob_bytes(&layout, &signature)).unwrap();
    ocikit()
        .args(["artifact", "push", &at(&layout, ":archive")])
        .arg(&copy)
        .args(["--artifact-type", "application/vnd.example.archive"])
        .assert()
        .success();
    gc_json(&layout, &[]);
    assert!(blob_path(&layout, &signature).exists());
    assert!(
        blob_path(&layout, &payload).exists(),
        "the signature of a kept image is followed as the manifest it is"
    );
}

// ---- what a dry run says it would remove (issue 8, item 12) ----

#[test]
fn dry_run_says_what_each_blob_was_in_text_and_json() {
    let (_dir, layout) = sample_layout_copy();
    let zstd = manifest_of(&layout, "app:zstd");
    let gzip = manifest_of(&layout, "app:gzip");
    let sbom = ocikit_json(["referrers", &at(&layout, ":app:gzip"), "--json"])["referrers"][0]
        ["digest"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(layout.join("blobs/sha256").join("0".repeat(64)), b"stray").unwrap();
    fs::write(layout.join(".ocikit-tmp-crashed"), b"half").unwrap();
    for name in [":app:zstd", ":app:gzip"] {
        ocikit().args(["rm", &at(&layout, name)]).assert().success();
    }
    let blobs = blob_names(&layout);
    let out = ocikit()
        .args(["gc", "--dry-run"])
        .arg(&layout)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let zstd_digest = zstd["digest"].as_str().unwrap();
    let short = |d: &str| d[7..19].to_string();
    for line in [
        format!("Would remove manifest {zstd_digest} (401 B)"),
        format!(
            "Would remove layer {} ({} B) of manifest {}",
            zstd["layers"][0]["digest"].as_str().unwrap(),
            zstd["layers"][0]["size"],
            short(zstd_digest)
        ),
        format!(
            "Would remove config {} ({} B) of manifest ",
            gzip["config"]["digest"].as_str().unwrap(),
            gzip["config"]["size"]
        ),
        format!(
            "Would remove referrer {sbom} (726 B) of subject {}",
            short(gzip["digest"].as_str().unwrap())
        ),
        format!("Would remove unreferenced blob sha256:{}", "0".repeat(64)),
        "Would remove leftover temp file .ocikit-tmp-crashed".to_string(),
    ] {
        assert!(text.contains(&line), "{line:?} not in:\n{text}");
    }
    let outcome = gc_json(&layout, &["--dry-run"]);
    let was: std::collections::BTreeMap<String, (String, Option<String>)> = outcome["removedBlobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["digest"].as_str().unwrap().to_string(),
                (
                    b["was"].as_str().unwrap().to_string(),
                    b["of"].as_str().map(str::to_string),
                ),
            )
        })
        .collect();
    assert_eq!(was[zstd_digest], ("manifest".to_string(), None));
    assert_eq!(
        was[&sbom],
        (
            "referrer".to_string(),
            Some(gzip["digest"].as_str().unwrap().to_string())
        )
    );
    assert_eq!(was[&format!("sha256:{}", "0".repeat(64))].0, "unreferenced");
    assert_eq!(blob_names(&layout), blobs, "a dry run changes nothing");
}
