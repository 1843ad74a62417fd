//! `ocikit tag` and `ocikit rm` by name.

use super::*;

#[test]
fn tag_adds_a_name_keeping_unknown_fields_and_entry_order() {
    let (_dir, layout) = sample_layout_copy();
    let mut index = index_json(&layout);
    index["x-vendor"] = Value::from("kept");
    index["manifests"][0]["x-entry"] = Value::from(7);
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let before_names = names(&layout);

    ocikit()
        .args(["tag", &format!("{}:app:gzip", layout.display()), "v1"])
        .assert()
        .success();
    let after = index_json(&layout);
    assert_eq!(after["x-vendor"], "kept");
    assert_eq!(after["manifests"][0]["x-entry"], 7);
    let after_names = names(&layout);
    assert_eq!(&after_names[..before_names.len()], &before_names[..]);
    assert_eq!(after_names.last().unwrap(), "v1");
    assert_eq!(
        json_of(&["inspect", &format!("{}:v1", layout.display()), "--json"])["digest"],
        manifest_digest("app:gzip")
    );
}

#[test]
fn tag_moves_an_existing_name_and_is_idempotent() {
    let (_dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    ocikit()
        .args(["tag", &format!("{l}:app:gzip"), "latest"])
        .assert()
        .success();
    ocikit()
        .args(["tag", &format!("{l}:app:gzip"), "latest"])
        .assert()
        .success()
        .stderr(predicate::str::contains("already points at"));
    ocikit()
        .args(["tag", &format!("{l}:app:zstd"), "latest"])
        .assert()
        .success()
        .stderr(predicate::str::contains("no longer points at"));
    let latest: Vec<_> = names(&layout)
        .into_iter()
        .filter(|n| n == "latest")
        .collect();
    assert_eq!(latest.len(), 1);
    assert_eq!(
        json_of(&["inspect", &format!("{l}:latest"), "--json"])["digest"],
        manifest_digest("app:zstd")
    );
}

#[test]
fn tag_with_platform_names_the_selected_manifest() {
    let (_dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    ocikit()
        .args([
            "tag",
            &format!("{l}:app:multi"),
            "arm",
            "--platform",
            "linux/arm64",
        ])
        .assert()
        .success();
    let arm = json_of(&["inspect", &format!("{l}:arm"), "--json"]);
    assert_eq!(arm["platform"], "linux/arm64/v8");
    assert_eq!(
        arm["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
}

#[test]
fn tag_refuses_bad_names_and_archives_leaving_index_json_unchanged() {
    let (_dir, layout) = sample_layout_copy();
    let before = fs::read(layout.join("index.json")).unwrap();
    let source = format!("{}:app:gzip", layout.display());
    for bad in [
        "bad name",
        "x-",
        "a..b",
        "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ] {
        ocikit()
            .args(["tag", &source, bad])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("is not a valid name"));
    }
    ocikit()
        .args(["tag", &format!("{}:nope", layout.display()), "v1"])
        .assert()
        .code(2);
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);
    let archive = layout.parent().unwrap().join("x.tar");
    fs::write(&archive, b"").unwrap();
    ocikit()
        .args(["tag", &format!("{}:a", archive.display()), "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("read-only"));
}

#[test]
fn rm_removes_a_name_but_keeps_blobs_until_gc() {
    let (_dir, layout) = sample_layout_copy();
    let digest = manifest_digest("app:zstd");
    ocikit()
        .args(["rm", &format!("{}:app:zstd", layout.display())])
        .assert()
        .success()
        .stderr(predicate::str::contains("Removed app:zstd"));
    assert!(!names(&layout).contains(&"app:zstd".to_string()));
    assert!(index_json(&layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["digest"] != digest.as_str()));
    assert!(layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
        .exists());
}

#[test]
fn rm_of_an_unknown_name_fails_and_changes_nothing() {
    let (_dir, layout) = sample_layout_copy();
    let before = fs::read(layout.join("index.json")).unwrap();
    ocikit()
        .args(["rm", &format!("{}:nope", layout.display())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no image named \"nope\""));
    ocikit()
        .args(["rm", &layout.display().to_string()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("LAYOUT:NAME"));
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);
}

#[test]
fn tag_and_attach_refuse_a_blob_that_is_not_a_manifest_or_index() {
    let (_dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    let empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let config = json_of(&["inspect", &format!("{l}:app:gzip"), "--json"])["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = layout.parent().unwrap().join("note.txt");
    fs::write(&file, "a note").unwrap();
    let refused = |source: &str, says: &str| {
        ocikit()
            .args(["tag", source, "x"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
        ocikit()
            .args(["attach", source, "--artifact-type", "application/x-note"])
            .arg(&file)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    };
    let before = fs::read(layout.join("index.json")).unwrap();
    let blobs = crate::helpers::blob_names(&layout);
    // Selected by digest alone: the blob must say it is a manifest or index.
    refused(&format!("{l}@{empty}"), "neither a manifest nor an index");
    refused(&format!("{l}@{config}"), "neither a manifest nor an index");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);
    // An entry another tool wrote that says "manifest" of the empty blob: that claim is not
    // copied into a new entry or a subject, by name or by digest.
    let mut index = index_json(&layout);
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": empty, "size": 2,
            "annotations": {"org.opencontainers.image.ref.name": "bogus"},
        }));
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let before = fs::read(layout.join("index.json")).unwrap();
    let says = "not one: a manifest needs schemaVersion 2 and a config";
    refused(&format!("{l}:bogus"), says);
    refused(&format!("{l}@{empty}"), says);
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);
    assert_eq!(
        crate::helpers::blob_names(&layout),
        blobs,
        "nothing written"
    );
    // A manifest selected by digest alone is still tagged.
    let gzip = manifest_digest("app:gzip");
    ocikit()
        .args(["tag", &format!("{l}@{gzip}"), "again"])
        .assert()
        .success();
}
