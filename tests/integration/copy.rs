//! `ocikit copy`: the closure and its referrers between layouts and archives; names, links,
//! platforms, collisions.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use predicates::prelude::*;
use serde_json::Value;

use crate::helpers::{index_bytes, index_value, ocikit, ocikit_json, sample_layout_copy};

/// The names of a layout's entries, in order (untagged ones as "-").
pub fn names(layout: &Path) -> Vec<String> {
    index_value(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or("-")
                .to_string()
        })
        .collect()
}

/// The digests `referrers --json` lists for `subject`.
pub fn referrers(subject: &str) -> Vec<String> {
    ocikit_json(["referrers", subject, "--json"])["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().to_string())
        .collect()
}

/// `validate` finds no error (and exits 0).
pub fn assert_valid(target: &Path) {
    ocikit()
        .arg("validate")
        .arg(target)
        .assert()
        .success()
        .stdout(predicate::str::contains("clean"));
}

/// Runs `ocikit copy ARGS --json`, asserting success.
fn copy(args: &[&str]) -> Value {
    let mut all = vec!["copy"];
    all.extend_from_slice(args);
    all.push("--json");
    ocikit_json(all)
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

fn blob(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn a_copy_carries_the_closure_and_its_referrers_and_links_what_it_can() {
    let (dir, sample) = sample_layout_copy();
    let dst = dir.path().join("dst");
    let s = sample.display().to_string();
    let d = dst.display().to_string();
    let copied = copy(&[&format!("{s}:app:gzip"), &d]);
    assert_eq!(copied["created"], true);
    assert_eq!(copied["images"][0]["name"], "app:gzip");
    assert_eq!(copied["referrers"], 1);
    // The image, its config and layer, the SBOM and its blobs, and the fallback index.
    let blobs = &copied["blobs"];
    let written = blobs["hardlinked"].as_u64().unwrap()
        + blobs["reflinked"].as_u64().unwrap()
        + blobs["copied"].as_u64().unwrap();
    assert_eq!(written, 7, "{blobs}");
    assert_eq!(
        names(&dst),
        [
            "app:gzip",
            "-",
            "sha256-76e53c5a145d6342762c28753aa36f000d8a5059acc177e2e9aaec9b21b0831f"
        ]
    );
    let subject = format!("{d}:app:gzip");
    assert_eq!(referrers(&subject), referrers(&format!("{s}:app:gzip")));
    assert_valid(&dst);
    // Same file system: linked, not copied (unless the file system refuses links).
    if blobs["copied"] == 0 {
        let manifest = copied["images"][0]["digest"].as_str().unwrap();
        assert!(
            blobs["reflinked"].as_u64() > Some(0)
                || inode(&blob(&sample, manifest)) == inode(&blob(&dst, manifest))
        );
    }
    // Again: nothing to write, nothing changes.
    let before = index_bytes(&dst);
    let again = copy(&[&format!("{s}:app:gzip"), &d]);
    assert_eq!(again["blobs"]["present"], 7);
    assert_eq!(again["names"]["unchanged"][0], "app:gzip");
    assert_eq!(index_bytes(&dst), before);
}

#[test]
fn no_referrers_leaves_them_behind_and_link_copy_copies_verified_bytes() {
    let (dir, sample) = sample_layout_copy();
    let dst = dir.path().join("dst");
    let s = sample.display().to_string();
    let copied = copy(&[
        &format!("{s}:app:gzip"),
        dst.to_str().unwrap(),
        "--no-referrers",
        "--link",
        "copy",
    ]);
    assert_eq!(copied["referrers"], 0);
    assert_eq!(copied["blobs"]["copied"], 3);
    assert_eq!(names(&dst), ["app:gzip"]);
    let manifest = copied["images"][0]["digest"].as_str().unwrap();
    assert_ne!(
        inode(&blob(&sample, manifest)),
        inode(&blob(&dst, manifest))
    );
    assert!(referrers(&format!("{}:app:gzip", dst.display())).is_empty());
    // A corrupt source blob is refused when copied, and nothing is named.
    let (dir, sample) = sample_layout_copy();
    let manifest_path = blob(&sample, manifest);
    let mut bytes = fs::read(&manifest_path).unwrap();
    bytes[10] ^= 1;
    fs::write(&manifest_path, &bytes).unwrap();
    let dst = dir.path().join("dst");
    ocikit()
        .args(["copy", "--link", "copy"])
        .arg(format!("{}:app:gzip", sample.display()))
        .arg(&dst)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("corrupt"));
    assert!(!dst.join("index.json").exists() || names(&dst).is_empty());
}

#[test]
fn a_name_the_destination_gives_elsewhere_is_refused_unless_forced() {
    let (dir, sample) = sample_layout_copy();
    let s = sample.display().to_string();
    let dst = dir.path().join("dst");
    let d = dst.display().to_string();
    copy(&[&format!("{s}:app:gzip"), &d]);
    let before = index_bytes(&dst);
    let blobs_before = crate::helpers::blob_names(&dst);
    ocikit()
        .args(["copy", &format!("{s}:app:zstd"), &format!("{d}:app:gzip")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the name \"app:gzip\" is already in",
        ))
        .stderr(predicate::str::contains("--force"));
    // Refused before any blob was written.
    assert_eq!(index_bytes(&dst), before);
    assert_eq!(crate::helpers::blob_names(&dst), blobs_before);
    let forced = copy(&[
        &format!("{s}:app:zstd"),
        &format!("{d}:app:gzip"),
        "--force",
    ]);
    let zstd = ocikit_json(["inspect", &format!("{s}:app:zstd"), "--json"]);
    assert_eq!(forced["names"]["replaced"][0][0], "app:gzip");
    let now = ocikit_json(["inspect", &format!("{d}:app:gzip"), "--json"]);
    assert_eq!(now["digest"], zstd["digest"]);
    assert_eq!(names(&dst).iter().filter(|n| *n == "app:gzip").count(), 1);
    assert_valid(&dst);
    // A destination digest is not a name.
    ocikit()
        .args([
            "copy",
            &format!("{s}:app:zstd"),
            &format!("{d}@{}", zstd["digest"].as_str().unwrap()),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("names a digest"));
}

#[test]
fn platform_narrows_an_index_and_platforms_rewrites_it_with_a_new_digest() {
    let (dir, sample) = sample_layout_copy();
    let s = sample.display().to_string();
    let multi = ocikit_json(["inspect", &format!("{s}:app:multi"), "--json"]);
    let one = dir.path().join("one");
    let copied = copy(&[
        &format!("{s}:app:multi"),
        one.to_str().unwrap(),
        "--platform",
        "linux/arm64",
    ]);
    let arm = ocikit_json([
        "inspect",
        &format!("{s}:app:multi"),
        "--platform",
        "linux/arm64",
        "--json",
    ]);
    assert_eq!(copied["images"][0]["digest"], arm["digest"]);
    assert_eq!(
        copied["images"][0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let entry = &index_value(&one)["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "app:multi"
    );
    assert_eq!(entry["platform"]["architecture"], "arm64");
    assert_valid(&one);

    let subset = dir.path().join("subset");
    let copied = copy(&[
        &format!("{s}:app:multi"),
        subset.to_str().unwrap(),
        "--platforms",
        "linux/amd64,windows/amd64",
    ]);
    let digest = copied["images"][0]["digest"].as_str().unwrap();
    assert_ne!(
        digest,
        multi["digest"].as_str().unwrap(),
        "a subset is a new index"
    );
    let index = ocikit_json([
        "inspect",
        &format!("{}:app:multi", subset.display()),
        "--json",
    ]);
    let children = index["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0]["platform"], "linux/amd64");
    assert_valid(&subset);
    // Every platform wanted: the index is kept as it is.
    let all = dir.path().join("all");
    let copied = copy(&[
        &format!("{s}:app:multi"),
        all.to_str().unwrap(),
        "--platforms",
        "linux/amd64,linux/arm64",
    ]);
    assert_eq!(copied["images"][0]["digest"], multi["digest"]);
    // No platform matches: an error naming what there is.
    ocikit()
        .args([
            "copy",
            &format!("{s}:app:multi"),
            dir.path().join("none").to_str().unwrap(),
            "--platforms",
            "linux/s390x",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("linux/arm64"));
}

#[test]
fn copy_all_mirrors_the_layout_and_a_destination_name_renames_one_image() {
    let (dir, sample) = sample_layout_copy();
    let s = sample.display().to_string();
    let mirror = dir.path().join("mirror");
    let copied = copy(&["--all", &s, mirror.to_str().unwrap()]);
    assert_eq!(copied["images"].as_array().unwrap().len(), 3);
    assert_eq!(index_value(&mirror), index_value(&sample));
    assert_valid(&mirror);
    ocikit()
        .args([
            "copy",
            "--all",
            &format!("{s}:app:gzip"),
            mirror.to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--all"));

    let renamed = dir.path().join("renamed");
    copy(&[
        &format!("{s}:app:zstd"),
        &format!("{}:example.com/app:1.0", renamed.display()),
    ]);
    assert_eq!(names(&renamed), ["example.com/app:1.0"]);
    ocikit()
        .args(["copy", "--all", &s, &format!("{}:x", renamed.display())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("names one image"));
}

#[test]
fn copies_go_into_and_out_of_archives() {
    let (dir, sample) = sample_layout_copy();
    let s = sample.display().to_string();
    for (i, (name, magic)) in [
        ("out.tar", None),
        ("out.tar.gz", Some(&[0x1f, 0x8b][..])),
        ("out.tar.zst", Some(&[0x28, 0xb5, 0x2f, 0xfd][..])),
    ]
    .into_iter()
    .enumerate()
    {
        let archive = dir.path().join(name);
        let copied = copy(&[&format!("{s}:app:gzip"), archive.to_str().unwrap()]);
        assert_eq!(copied["created"], true);
        let bytes = fs::read(&archive).unwrap();
        if let Some(magic) = magic {
            assert!(bytes.starts_with(magic), "{name}");
        }
        assert_eq!(copied["archiveBytes"], bytes.len() as u64);
        assert_valid(&archive);
        // Out of the archive into a layout.
        let back = dir.path().join(format!("back-{i}"));
        copy(&[
            &format!("{}:app:gzip", archive.display()),
            back.to_str().unwrap(),
        ]);
        assert_eq!(referrers(&format!("{}:app:gzip", back.display())).len(), 1);
        assert_valid(&back);
    }
    // An archive is written whole: an existing one is replaced only when forced.
    let archive = dir.path().join("out.tar");
    ocikit()
        .args(["copy", &format!("{s}:app:zstd"), archive.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("written whole"));
    copy(&[
        &format!("{s}:app:zstd"),
        archive.to_str().unwrap(),
        "--force",
    ]);
    let listed = ocikit_json(["ls", archive.to_str().unwrap(), "--json"]);
    assert_eq!(listed["rows"][0]["name"], "app:zstd", "{listed}");
    // Hard links cannot come out of an archive.
    ocikit()
        .args([
            "copy",
            "--link",
            "hardlink",
            &format!("{}:app:zstd", archive.display()),
            dir.path().join("hl").to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be linked"));
    // docker-archive: writes the docker format.
    let docker = dir.path().join("docker.tar");
    copy(&[
        &format!("{s}:app:gzip"),
        &format!("docker-archive:{}", docker.display()),
    ]);
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&docker)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("manifest.json"));
}

#[test]
fn scan_brings_referrers_that_only_their_blobs_record() {
    let (dir, sample) = sample_layout_copy();
    // The SBOM of app:gzip is left as a blob only (as cosign leaves signatures).
    let mut index = index_value(&sample);
    index["manifests"].as_array_mut().unwrap().retain(|m| {
        m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .is_some_and(|n| n.starts_with("app:"))
    });
    fs::write(
        sample.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let s = sample.display().to_string();
    let without = dir.path().join("without");
    let copied = copy(&[&format!("{s}:app:gzip"), without.to_str().unwrap()]);
    assert_eq!(copied["referrers"], 0);
    let with = dir.path().join("with");
    let copied = copy(&[&format!("{s}:app:gzip"), with.to_str().unwrap(), "--scan"]);
    assert_eq!(copied["referrers"], 1);
    // Recorded where it arrives, so it is found without a scan there.
    assert_eq!(referrers(&format!("{}:app:gzip", with.display())).len(), 1);
    assert_eq!(names(&with), ["app:gzip", "-"]);
    assert_valid(&with);
}

#[test]
fn copy_all_without_referrers_leaves_their_entries_behind_too() {
    let (dir, sample) = sample_layout_copy();
    let s = sample.display().to_string();
    let bare = dir.path().join("bare");
    let copied = copy(&["--all", &s, bare.to_str().unwrap(), "--no-referrers"]);
    assert_eq!(copied["referrers"], 0);
    assert_eq!(names(&bare), ["app:gzip", "app:zstd", "app:multi"]);
    assert_valid(&bare);
    // The docker format holds images only, whatever the layout holds besides.
    let docker = dir.path().join("all-docker.tar");
    ocikit()
        .args(["export", "--all", "--format", "docker", &s, "-o"])
        .arg(&docker)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--platform"));
    let images = dir.path().join("images");
    copy(&[
        &format!("{s}:app:gzip"),
        &format!("{}:app:1", images.display()),
    ]);
    copy(&[
        &format!("{s}:app:zstd"),
        &format!("{}:app:2", images.display()),
    ]);
    ocikit()
        .args(["export", "--all", "--format", "docker"])
        .arg(&images)
        .arg("-o")
        .arg(&docker)
        .assert()
        .success();
    assert_valid(&docker);
}
