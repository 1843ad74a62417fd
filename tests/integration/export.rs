//! `ocikit export`: deterministic OCI and docker archives, streamed, never half-written; read
//! by skopeo and podman.

use std::fs;

use predicates::prelude::*;
use serde_json::Value;

use crate::copy::{assert_valid, referrers};
use crate::helpers::{
    ocikit, ocikit_json, sample_layout, sample_layout_copy, temp_files, tool_available,
};
use crate::producers::{run, skopeo, Storage};

/// Runs `ocikit export ARGS --json`, asserting success.
fn export(args: &[&str]) -> Value {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    all.push("--json");
    ocikit_json(all)
}

#[test]
fn the_same_images_give_the_same_bytes_to_a_file_or_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    let refs = [format!("{s}:app:gzip"), format!("{s}:app:multi")];
    let a = dir.path().join("a.tar");
    let b = dir.path().join("b.tar");
    let exported = export(&[&refs[0], &refs[1], "-o", a.to_str().unwrap()]);
    export(&[&refs[0], &refs[1], "-o", b.to_str().unwrap()]);
    assert!(fs::read(&a).unwrap() == fs::read(&b).unwrap());
    assert_eq!(exported["bytes"], fs::metadata(&a).unwrap().len());
    assert_eq!(exported["referrers"], 1);
    let stdout = ocikit()
        .args(["export", &refs[0], &refs[1], "-o", "-"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(
        stdout == fs::read(&a).unwrap(),
        "stdout gets the file's bytes"
    );
    // SOURCE_DATE_EPOCH is every entry's mtime; nothing else changes.
    let c = dir.path().join("c.tar");
    ocikit()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["export", &refs[0], &refs[1], "-o", c.to_str().unwrap()])
        .assert()
        .success();
    let listing = run(
        "tar",
        &["--utc", "--numeric-owner", "-tvf", c.to_str().unwrap()],
    );
    assert!(
        listing
            .lines()
            .all(|l| l.contains(" 0/0 ") && l.contains("2023-11-14")),
        "{listing}"
    );
    assert_eq!(
        fs::metadata(&c).unwrap().len(),
        fs::metadata(&a).unwrap().len()
    );
    assert_valid(&a);
}

#[test]
fn compression_follows_the_name_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    for (name, flag, magic) in [
        ("x.tar.gz", None, &[0x1f, 0x8b][..]),
        ("x.tgz", None, &[0x1f, 0x8b][..]),
        ("x.tar.zst", None, &[0x28, 0xb5, 0x2f, 0xfd][..]),
        ("x.tar", Some("zstd"), &[0x28, 0xb5, 0x2f, 0xfd][..]),
        ("y.tar.gz", Some("none"), b"oci-layout"),
    ] {
        let out = dir.path().join(name);
        let mut args = vec!["--all", &*s, "-o", out.to_str().unwrap()];
        if let Some(flag) = flag {
            args.extend(["--compression", flag]);
        }
        export(&args);
        assert!(
            fs::read(&out).unwrap().starts_with(magic),
            "{name} {flag:?}"
        );
        assert_eq!(
            ocikit_json(["ls", out.to_str().unwrap(), "--json"])["rows"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }
}

#[test]
fn a_failed_export_leaves_nothing_under_the_final_name() {
    let (dir, sample) = sample_layout_copy();
    let out = dir.path().join("out.tar");
    fs::write(&out, b"an earlier archive").unwrap();
    // The layer of app:gzip no longer matches its digest.
    let inspected = ocikit_json([
        "inspect",
        &format!("{}:app:gzip", sample.display()),
        "--json",
    ]);
    let layer = inspected["layers"][0]["digest"].as_str().unwrap();
    let path = sample
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    ocikit()
        .args(["export", &format!("{}:app:gzip", sample.display()), "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("corrupt"));
    assert_eq!(fs::read(&out).unwrap(), b"an earlier archive");
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
    // On stdout, the stream stops without its end-of-archive marker: readers refuse it.
    let cut = ocikit()
        .args([
            "export",
            &format!("{}:app:gzip", sample.display()),
            "-o",
            "-",
        ])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let partial = dir.path().join("partial.tar");
    fs::write(&partial, &cut).unwrap();
    ocikit().arg("ls").arg(&partial).assert().code(2);
}

#[test]
fn images_of_several_layouts_go_into_one_archive() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    let other = dir.path().join("other");
    ocikit()
        .args([
            "copy",
            &format!("{s}:app:zstd"),
            &format!("{}:other/app:2", other.display()),
        ])
        .assert()
        .success();
    let out = dir.path().join("both.tar");
    export(&[
        &format!("{s}:app:gzip"),
        &format!("{}:other/app:2", other.display()),
        "-o",
        out.to_str().unwrap(),
    ]);
    let rows = ocikit_json(["ls", out.to_str().unwrap(), "--json"])["rows"].clone();
    let listed: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(listed, ["app:gzip", "other/app:2"]);
    assert_eq!(referrers(&format!("{}:app:gzip", out.display())).len(), 1);
    assert_valid(&out);
}

#[test]
fn skopeo_reads_the_oci_archive_by_name() {
    if !tool_available("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    let out = dir.path().join("all.tar");
    export(&["--all", &s, "-o", out.to_str().unwrap()]);
    for name in ["app:gzip", "app:zstd", "app:multi"] {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            &format!("oci-archive:{}:{name}", out.display()),
        ]);
        let expected = run(
            crate::helpers::ocikit_path().to_str().unwrap(),
            &["inspect", "--raw", &format!("{s}:{name}")],
        );
        assert_eq!(raw.trim_end(), expected.trim_end(), "{name}");
    }
    let copied = dir.path().join("copied");
    skopeo(&[
        "copy",
        &format!("oci-archive:{}:app:gzip", out.display()),
        &format!("oci:{}:app:gzip", copied.display()),
    ]);
    assert_valid(&copied);
}

#[test]
fn the_docker_format_is_read_by_skopeo_and_loaded_by_podman() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    let out = dir.path().join("docker.tar");
    let exported = export(&[
        "--format",
        "docker",
        &format!("{s}:app:gzip"),
        &format!("{s}:app:zstd"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(exported["referrers"], 0);
    assert_eq!(exported["docker"][0]["repoTags"][0], "app:gzip");
    let listing = run("tar", &["-tf", out.to_str().unwrap()]);
    for file in ["manifest.json", "repositories", "index.json", "oci-layout"] {
        assert!(listing.lines().any(|l| l == file), "{file}: {listing}");
    }
    assert!(listing.contains("/layer.tar"), "{listing}");
    // It is an OCI layout too, as Docker 25 writes it: the full name and the tag.
    let index: Value =
        serde_json::from_str(&run("tar", &["-xOf", out.to_str().unwrap(), "index.json"])).unwrap();
    let first = &index["manifests"][0]["annotations"];
    assert_eq!(first["io.containerd.image.name"], "app:gzip");
    assert_eq!(first["org.opencontainers.image.ref.name"], "gzip");
    assert_valid(&out);
    // Imported again, as the Docker 25+ archive it is: the same manifests, by their full names.
    let back = dir.path().join("back");
    ocikit()
        .arg("import")
        .arg(&out)
        .arg(&back)
        .assert()
        .success();
    for name in ["app:gzip", "app:zstd"] {
        assert_eq!(
            ocikit_json(["inspect", &format!("{}:{name}", back.display()), "--json"])["digest"],
            ocikit_json(["inspect", &format!("{s}:{name}"), "--json"])["digest"],
            "{name}"
        );
    }
    assert_valid(&back);
    // An index needs a platform.
    ocikit()
        .args([
            "export",
            "--format",
            "docker",
            &format!("{s}:app:multi"),
            "-o",
        ])
        .arg(dir.path().join("multi.tar"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--platform"));
    let multi = dir.path().join("multi.tar");
    export(&[
        "--format",
        "docker",
        &format!("{s}:app:multi"),
        "--platform",
        "linux/arm64",
        "-o",
        multi.to_str().unwrap(),
    ]);
    // A bare tag needs a repository to become a Docker tag; without one the image is untagged.
    let bare = dir.path().join("bare");
    ocikit()
        .args([
            "copy",
            &format!("{s}:app:zstd"),
            &format!("{}:v1", bare.display()),
        ])
        .assert()
        .success();
    let tagged = dir.path().join("tagged.tar");
    let with = export(&[
        "--format",
        "docker",
        &format!("{}:v1", bare.display()),
        "--repository",
        "example.com/app",
        "-o",
        tagged.to_str().unwrap(),
    ]);
    assert_eq!(with["docker"][0]["repoTags"][0], "example.com/app:v1");
    let untagged = dir.path().join("untagged.tar");
    ocikit()
        .args([
            "export",
            "--format",
            "docker",
            &format!("{}:v1", bare.display()),
            "-o",
            untagged.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "has no Docker tag (v1 is not repository:tag)",
        ));
    if !tool_available("skopeo") {
        return;
    }
    // skopeo's docker-archive reader: the config is the same blob, layers decompressed.
    let config =
        ocikit_json(["inspect", &format!("{s}:app:zstd"), "--json"])["config"]["digest"].clone();
    let raw: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        &format!("docker-archive:{}:app:zstd", out.display()),
    ]))
    .unwrap();
    assert_eq!(raw["config"]["digest"], config);
    let copied = dir.path().join("from-docker");
    skopeo(&[
        "copy",
        &format!("docker-archive:{}:app:gzip", out.display()),
        &format!("oci:{}:x", copied.display()),
    ]);
    assert_valid(&copied);
    skopeo(&[
        "inspect",
        &format!("docker-archive:{}:app:multi", multi.display()),
    ]);
    skopeo(&[
        "inspect",
        &format!("docker-archive:{}:example.com/app:v1", tagged.display()),
    ]);
    skopeo(&["inspect", &format!("docker-archive:{}", untagged.display())]);

    let Some(storage) = Storage::new(dir.path()) else {
        return;
    };
    let Some(loaded) = storage.podman(&["load", "-i", out.to_str().unwrap()]) else {
        return;
    };
    assert!(
        loaded.contains("app:gzip") && loaded.contains("app:zstd"),
        "{loaded}"
    );
    let images = storage
        .podman(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .expect("podman images");
    assert!(images.contains("localhost/app:gzip"), "{images}");
    // podman's docker-archive transport, on its own.
    storage
        .podman(&[
            "pull",
            &format!("docker-archive:{}:app:zstd", out.display()),
        ])
        .expect("podman pull docker-archive:");
}

#[test]
fn an_export_imported_again_keeps_every_digest_and_referrer() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    for name in ["all.tar", "all.tar.gz", "all.tar.zst"] {
        let out = dir.path().join(name);
        export(&["--all", &s, "-o", out.to_str().unwrap()]);
        let back = dir.path().join(format!("back-{}", name.replace('.', "-")));
        ocikit()
            .arg("import")
            .arg(&out)
            .arg(&back)
            .assert()
            .success();
        assert_eq!(
            crate::helpers::index_value(&back),
            crate::helpers::index_value(&sample_layout()),
            "{name}"
        );
        assert_eq!(
            referrers(&format!("{}:app:gzip", back.display())),
            referrers(&format!("{s}:app:gzip"))
        );
        assert_eq!(
            crate::helpers::blob_names(&back).len(),
            crate::helpers::blob_names(&sample_layout()).len()
        );
        assert_valid(&back);
    }
}
