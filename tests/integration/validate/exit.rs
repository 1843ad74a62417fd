//! The command: exit statuses.

use super::*;

// ---------------------------------------------------------------------------------------------
// The command: exit statuses
// ---------------------------------------------------------------------------------------------

#[test]
fn exit_1_on_error_findings() {
    let fx = sample();
    let (_, layer) = gzip_layer(&fx);
    fs::remove_file(fx.blob_path(&layer)).unwrap();
    let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("L11"));
}

#[test]
fn exit_0_on_warnings_only_and_1_under_strict_for_should_rules() {
    let fx = sample();
    fx.write(".ocikit-tmp-1", "half a blob");
    let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("L9"));

    let fx = sample();
    fx.remove(&fx.named("app:zstd"), "/mediaType");
    ocikit().arg("validate").arg(&fx.root).assert().code(0);
    let output = ocikit()
        .args(["validate", "--strict"])
        .arg(&fx.root)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("M11"));
}

#[test]
fn exit_0_on_the_sample() {
    ocikit()
        .args(["validate", "--strict"])
        .arg(sample_layout())
        .assert()
        .code(0);
}

#[test]
fn exit_2_when_the_path_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    ocikit()
        .arg("validate")
        .arg(dir.path().join("missing"))
        .assert()
        .code(2);
    ocikit()
        .args(["validate", "--document"])
        .arg(dir.path().join("missing.json"))
        .assert()
        .code(2);
}

#[test]
fn exit_1_not_2_on_malformed_index_json_or_oci_layout() {
    for (file, content, rule) in [
        ("index.json", "{not json", "L5"),
        (
            "index.json",
            r#"{"schemaVersion":2,"manifests":null}"#,
            "I2",
        ),
        ("oci-layout", "{not json", "L2"),
        ("oci-layout", r#"{"imageLayoutVersion":"2.0.0"}"#, "L3"),
    ] {
        let fx = sample();
        fx.write(file, content);
        let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{file} = {content}: {}{}",
            stdout_of(&output),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout_of(&output).contains(rule),
            "{file} = {content}: {}",
            stdout_of(&output)
        );
    }
    let fx = sample();
    fx.delete("oci-layout");
    fx.delete("index.json");
    let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    // Directories where the files should be: findings too, not "could not run".
    let fx = sample();
    for file in ["oci-layout", "index.json"] {
        fx.delete(file);
        fs::create_dir(fx.path(file)).unwrap();
    }
    let output = ocikit().arg("validate").arg(&fx.root).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}{}",
        stdout_of(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout_of(&output).contains("L2") && stdout_of(&output).contains("L5"));
}
