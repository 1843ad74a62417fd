//! `ocikit cat`.

use super::*;

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
