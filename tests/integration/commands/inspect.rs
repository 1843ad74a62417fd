//! `ocikit inspect`.

use super::*;

#[test]
fn inspect_shows_config_and_layers() {
    let out = stdout_of(&["inspect", &format!("{}:app:gzip", sample())]);
    insta::assert_snapshot!(out);
}

/// A layer that is there but cannot be read is not "missing": inspect says what is wrong.
#[test]
fn inspect_says_why_a_present_layer_cannot_be_read() {
    let (_dir, layout) = sample_layout_copy();
    let reference = format!("{}:app:gzip", layout.display());
    let inspection = json_of(&["inspect", &reference, "--json"]);
    let layer = inspection["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = layout.join("blobs/sha256").join(&layer["sha256:".len()..]);
    // a directory, then a FIFO (which must not hang the open), in the blob's place
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    let text = stdout_of(&["inspect", &reference]);
    assert!(text.contains("unreadable"), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
    let json = json_of(&["inspect", &reference, "--json"]);
    assert_eq!(json["layers"][0]["present"], true);
    assert!(json["layers"][0]["problem"]
        .as_str()
        .unwrap()
        .contains("not a regular file"));
    fs::remove_dir(&path).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap()
        .success());
    let text = stdout_of(&["inspect", &reference]);
    assert!(text.contains("unreadable"), "{text}");
    // and absent is still "missing"
    fs::remove_file(&path).unwrap();
    let text = stdout_of(&["inspect", &reference]);
    assert!(
        text.contains("missing") && !text.contains("unreadable"),
        "{text}"
    );
}

/// inspect shows the artifact type `ls` shows, in both artifact conventions.
#[test]
fn inspect_shows_the_artifact_type_ls_shows() {
    let (dir, layout) = sample_layout_copy();
    let file = dir.path().join("sbom.json");
    fs::write(&file, b"{}").unwrap();
    ocikit()
        .args(["artifact", "push", &format!("{}:sbom", layout.display())])
        .arg(&file)
        .args(["--artifact-type", "application/vnd.example.sbom"])
        .assert()
        .success();
    let shown = stdout_of(&["inspect", &format!("{}:sbom", layout.display())]);
    assert!(
        shown.contains("Artifact type:") && shown.contains("application/vnd.example.sbom"),
        "{shown}"
    );
    // oras 1.0: no artifactType, the type is the config's media type
    let config = ocikit::Digest::sha256_of(b"{}");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.example.signature", "digest": config.to_string(), "size": 2},
        "layers": [],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = ocikit::Digest::sha256_of(&bytes);
    fs::write(layout.join("blobs/sha256").join(digest.encoded()), &bytes).unwrap();
    fs::write(layout.join("blobs/sha256").join(config.encoded()), b"{}").unwrap();
    ocikit()
        .args(["tag", &format!("{}@{digest}", layout.display()), "oras-sig"])
        .assert()
        .success();
    let listed = stdout_of(&["ls", &layout.display().to_string()]);
    assert!(
        listed.contains("application/vnd.example.signature"),
        "{listed}"
    );
    let shown = stdout_of(&["inspect", &format!("{}:oras-sig", layout.display())]);
    assert!(
        shown.contains("Artifact type:") && shown.contains("application/vnd.example.signature"),
        "{shown}"
    );
}

#[test]
fn inspect_raw_writes_the_manifest_bytes_exactly() {
    let digest = manifest_digest("app:gzip");
    let raw = ocikit()
        .args(["inspect", "--raw", &format!("{}:app:gzip", sample())])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stored = fs::read(
        sample_layout()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(raw, stored);
}

#[test]
fn inspect_selects_a_platform_from_an_index_first_match_wins() {
    let multi = format!("{}:app:multi", sample());
    let arm = json_of(&["inspect", &multi, "--platform", "linux/arm64", "--json"]);
    assert_eq!(arm["platform"], "linux/arm64/v8");
    assert_eq!(arm["config"]["platform"], "linux/arm64/v8");
    let index = json_of(&["inspect", &multi, "--json"]);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    ocikit()
        .args(["inspect", &multi, "--platform", "linux/s390x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no manifest for platform linux/s390x",
        ))
        .stderr(predicate::str::contains("linux/amd64"));
}

#[test]
fn inspect_selects_by_digest_even_a_manifest_that_only_an_index_lists() {
    let multi = format!("{}:app:multi", sample());
    let arm = json_of(&["inspect", &multi, "--platform", "linux/arm64", "--json"]);
    let digest = arm["digest"].as_str().unwrap();
    let by_digest = json_of(&["inspect", &format!("{}@{digest}", sample()), "--json"]);
    assert_eq!(by_digest["digest"], digest);
    let by_both = json_of(&[
        "inspect",
        &format!("{}:app:gzip@{}", sample(), manifest_digest("app:gzip")),
        "--json",
    ]);
    assert_eq!(by_both["name"], "app:gzip");
}

#[test]
fn inspect_of_an_unknown_name_lists_the_names_there_are() {
    ocikit()
        .args(["inspect", &format!("{}:nope", sample())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no image named \"nope\""))
        .stderr(predicate::str::contains("app:gzip"));
}

#[test]
fn a_name_matches_a_full_reference_by_its_tag_and_ambiguity_is_an_error() {
    let (_dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    ocikit()
        .args(["tag", &format!("{l}:app:gzip"), "example.com/app:1.0"])
        .assert()
        .success();
    let by_tag = json_of(&["inspect", &format!("{l}:1.0"), "--json"]);
    assert_eq!(by_tag["name"], "example.com/app:1.0");
    ocikit()
        .args(["tag", &format!("{l}:app:zstd"), "example.com/other:1.0"])
        .assert()
        .success();
    ocikit()
        .args(["inspect", &format!("{l}:1.0")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ambiguous"))
        .stderr(predicate::str::contains("example.com/app:1.0"))
        .stderr(predicate::str::contains("example.com/other:1.0"));
}

#[test]
fn inspect_without_a_name_in_a_layout_of_several_images_lists_them() {
    ocikit()
        .args(["inspect", &sample()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ambiguous"));
}

#[test]
fn inspect_without_a_name_picks_the_only_image_ignoring_its_referrers() {
    let (_dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    ocikit()
        .args(["rm", &format!("{l}:app:zstd")])
        .assert()
        .success();
    ocikit()
        .args(["rm", &format!("{l}:app:multi")])
        .assert()
        .success();
    let only = json_of(&["inspect", &l, "--json"]);
    assert_eq!(only["name"], "app:gzip");
}
