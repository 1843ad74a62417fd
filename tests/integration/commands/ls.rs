//! `ocikit ls`.

use super::*;

#[test]
fn ls_lists_names_platforms_sizes_and_referrer_counts() {
    crate::cli_snapshot!(["ls", sample()], []);
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
    crate::cli_snapshot!(["ls", &layout], [(&layout, "[LAYOUT]")]);
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
