//! Every foundation command as a user runs it: output, exit status, and bad input.

use std::fs;
use std::path::Path;

use predicates::prelude::*;
use serde_json::Value;

use crate::helpers::{ocikit, sample_layout, sample_layout_copy};

/// Runs ocikit with `args` and returns stdout, asserting success.
fn stdout_of(args: &[&str]) -> String {
    let out = ocikit().args(args).assert().success().get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_str(&stdout_of(args)).unwrap()
}

fn sample() -> String {
    sample_layout().display().to_string()
}

/// Replaces a temp path in messages so snapshots are stable.
fn redact(text: &str, path: &Path) -> String {
    text.replace(&path.display().to_string(), "[LAYOUT]")
}

fn index_json(layout: &Path) -> Value {
    serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap()
}

fn names(layout: &Path) -> Vec<String> {
    index_json(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect()
}

fn manifest_digest(name: &str) -> String {
    json_of(&["inspect", &format!("{}:{name}", sample()), "--json"])["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---- init ----

#[test]
fn init_creates_an_empty_layout_and_leaves_an_existing_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("new");
    ocikit().arg("init").arg(&layout).assert().success();
    assert_eq!(
        fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    assert_eq!(index_json(&layout)["manifests"], Value::Array(vec![]));
    assert!(layout.join("blobs/sha256").is_dir());
    let before = fs::read(layout.join("index.json")).unwrap();
    ocikit()
        .arg("init")
        .arg(&layout)
        .assert()
        .success()
        .stderr(predicate::str::contains("already an OCI layout"));
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);
}

#[test]
fn init_refuses_a_non_empty_directory_that_is_not_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("precious.txt"), b"keep me").unwrap();
    ocikit()
        .arg("init")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("non-empty directory"));
    assert!(!dir.path().join("index.json").exists());
}

// ---- ls ----

#[test]
fn ls_lists_names_platforms_sizes_and_referrer_counts() {
    let text = stdout_of(&["ls", &sample()]);
    insta::assert_snapshot!(text);
}

#[test]
fn ls_json_has_one_row_per_image_and_counts_referrers_under_their_subject() {
    let catalog = json_of(&["ls", &sample(), "--json"]);
    let rows = catalog["rows"].as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no row {name}"))
            .clone()
    };
    assert_eq!(rows.len(), 3, "referrer bookkeeping is not listed as rows");
    assert_eq!(row("app:gzip")["referrers"], 1);
    assert_eq!(row("app:zstd")["referrers"], 0);
    assert_eq!(
        row("app:multi")["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
    assert!(row("app:gzip")["size"].as_u64().unwrap() > 0);
}

#[test]
fn ls_of_a_missing_path_fails_with_status_2_and_names_it() {
    ocikit()
        .args(["ls", "/nonexistent/layout"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "/nonexistent/layout is not an OCI image layout: it does not exist",
        ));
}

#[test]
fn ls_reports_malformed_index_json_with_its_json_pointer() {
    let (_dir, layout) = sample_layout_copy();
    fs::write(
        layout.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:XYZ","size":1}]}"#,
    )
    .unwrap();
    let out = ocikit()
        .arg("ls")
        .arg(&layout)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = redact(&String::from_utf8(out.stderr).unwrap(), &layout);
    insta::assert_snapshot!(stderr);
}

#[test]
fn ls_with_a_missing_manifest_blob_lists_the_rest_and_exits_2() {
    let (_dir, layout) = sample_layout_copy();
    let digest = manifest_digest("app:zstd");
    let hex = digest.trim_start_matches("sha256:");
    fs::remove_file(layout.join("blobs/sha256").join(hex)).unwrap();
    ocikit()
        .arg("ls")
        .arg(&layout)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("app:gzip"))
        .stderr(predicate::str::contains(format!(
            "blob {digest} is missing"
        )));
}

#[test]
fn ls_refuses_a_layout_without_oci_layout_file_or_with_a_wrong_version() {
    let (_dir, layout) = sample_layout_copy();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    ocikit()
        .arg("ls")
        .arg(&layout)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("imageLayoutVersion \"2.0.0\""));
    fs::remove_file(layout.join("oci-layout")).unwrap();
    ocikit()
        .arg("ls")
        .arg(&layout)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no oci-layout file"));
}

#[test]
fn ls_refuses_an_index_json_that_is_not_a_regular_file() {
    let (_dir, layout) = sample_layout_copy();
    fs::remove_file(layout.join("index.json")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", layout.join("index.json")).unwrap();
    ocikit()
        .arg("ls")
        .arg(&layout)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a regular file"));
}

// ---- inspect ----

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

// ---- cat ----

#[test]
fn cat_writes_a_verified_blob() {
    let layer = json_of(&["inspect", &format!("{}:app:gzip", sample()), "--json"])["layers"][0]
        ["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = ocikit()
        .args(["cat", &format!("{}@{layer}", sample())])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(ocikit::Digest::sha256_of(&bytes).as_str(), layer);
}

#[test]
fn cat_of_a_corrupt_blob_fails_with_status_2() {
    let (_dir, layout) = sample_layout_copy();
    let digest = manifest_digest("app:gzip");
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 1;
    fs::write(&path, bytes).unwrap();
    ocikit()
        .arg("cat")
        .arg(format!("{}@{digest}", layout.display()))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("blob {digest}")))
        .stderr(predicate::str::contains("corrupt"));
}

#[test]
fn cat_of_a_missing_blob_or_without_digest_fails_clearly() {
    let missing = ocikit::Digest::sha256_of(b"not there");
    ocikit()
        .args(["cat", &format!("{}@{missing}", sample())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "blob {missing} is missing"
        )));
    ocikit()
        .args(["cat", &sample()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("LAYOUT@DIGEST"));
}

/// A digest of an algorithm ocikit cannot compute is never printed as if verified: refused,
/// or with --unverified printed with a warning (its size still checked by the blob's length).
#[test]
fn cat_of_an_unverifiable_digest_is_refused_unless_asked() {
    let (_dir, layout) = sample_layout_copy();
    for (algorithm, encoded) in [
        ("blake3", "a".repeat(64)),
        (
            "sha256+b64u",
            "LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564".to_string(),
        ),
    ] {
        fs::create_dir_all(layout.join("blobs").join(algorithm)).unwrap();
        fs::write(
            layout.join("blobs").join(algorithm).join(&encoded),
            b"opaque",
        )
        .unwrap();
        let blob = format!("{}@{algorithm}:{encoded}", layout.display());
        ocikit()
            .args(["cat", &blob])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(format!(
                "cannot compute {algorithm} digests"
            )));
        ocikit()
            .args(["cat", "--unverified", &blob])
            .assert()
            .success()
            .stdout("opaque")
            .stderr(predicate::str::contains("unverified"));
    }
}

// ---- tag and rm ----

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

// ---- completions and references ----

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("ocikit"), "{shell}");
    }
}

#[test]
fn reference_prefixes_are_accepted() {
    for prefix in ["oci:", "ocidir://"] {
        let out = json_of(&[
            "inspect",
            &format!("{prefix}{}:app:gzip", sample()),
            "--json",
        ]);
        assert_eq!(out["name"], "app:gzip");
    }
}

#[test]
fn a_malformed_reference_is_a_clear_error() {
    ocikit()
        .args(["inspect", &format!("{}@sha256:NOTHEX", sample())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a valid reference"));
}

/// `skopeo sync --scoped` names layouts after registries (`127.0.0.1:5000/app`): the longest
/// existing prefix of the argument is the layout, whatever `:` it contains.
#[test]
fn layout_paths_containing_colons_are_found_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let scoped = dir.path().join("127.0.0.1:5000/app");
    crate::helpers::copy_tree(&sample_layout(), &scoped);
    let layout = scoped.display().to_string();
    // the whole argument is the layout
    assert!(stdout_of(&["ls", &layout]).contains("app:gzip"));
    // a name after the layout, itself containing ':'
    let inspect = stdout_of(&["inspect", &format!("{layout}:app:gzip")]);
    assert!(
        inspect.contains("application/vnd.oci.image.manifest.v1+json"),
        "{inspect}"
    );
    // a nested layout whose own name has colons: the longest existing prefix wins
    let nested = dir.path().join("a:b");
    crate::helpers::copy_tree(&sample_layout(), &nested.join("c:d"));
    fs::create_dir_all(nested.join("c")).unwrap();
    let deeper = format!("{}/c:d:app:zstd", nested.display());
    assert!(stdout_of(&["inspect", &deeper]).contains("zstd"));
    // writers too
    ocikit()
        .args([
            "tag",
            &format!("{layout}:app:gzip"),
            "registry.example/app:1",
        ])
        .assert()
        .success();
    assert!(names(&scoped).contains(&"registry.example/app:1".to_string()));
    // a path that does not exist still ends at the first ':' and says what is missing
    ocikit()
        .args(["ls", &format!("{}/none:5000/app", dir.path().display())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("none"));
}

// ---- no entry claims "manifest" of bytes that are not one (issue 8, item 8) ----

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

/// containerd's shape: `ref.name` is only the tag, `io.containerd.image.name` the full name.
/// A full name selects (and removes) exactly its entry, though another image has the same tag.
#[test]
fn containerd_full_names_select_and_remove_only_their_entry() {
    let (_dir, layout) = sample_layout_copy();
    let mut index = index_json(&layout);
    let entries = index["manifests"].as_array_mut().unwrap();
    let (gzip, zstd) = (manifest_digest("app:gzip"), manifest_digest("app:zstd"));
    for (entry, full) in entries.iter_mut().filter_map(|e| {
        let digest = e["digest"].as_str()?.to_string();
        let full = if digest == gzip {
            "localhost/app:1"
        } else if digest == zstd {
            "localhost/other:1"
        } else {
            return None;
        };
        Some((e, full))
    }) {
        entry["annotations"] = serde_json::json!({
            "org.opencontainers.image.ref.name": "1",
            "io.containerd.image.name": full,
        });
    }
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let l = layout.display().to_string();
    let digest = |name: &str| {
        json_of(&["inspect", &format!("{l}:{name}"), "--json"])["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(digest("localhost/app:1"), gzip);
    assert_eq!(digest("localhost/other:1"), zstd);
    ocikit()
        .args(["inspect", &format!("{l}:1")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{l}:localhost/app:1")))
        .stderr(predicate::str::contains(format!("{l}@{gzip}")));
    ocikit()
        .args(["rm", &format!("{l}:localhost/app:1")])
        .assert()
        .success();
    let left = index_json(&layout);
    let digests: Vec<&str> = left["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["digest"].as_str())
        .collect();
    assert!(!digests.contains(&gzip.as_str()) && digests.contains(&zstd.as_str()));
    assert_eq!(digest("1"), zstd);
}
