//! `ocikit init`.

use super::*;

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
