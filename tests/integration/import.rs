//! `ocikit import`: OCI layout archives and `docker save` archives (legacy and Docker 25+),
//! plain or compressed, from files and stdin, merged into a layout; hostile archives refused;
//! what skopeo, podman and containerd write, read.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use predicates::prelude::*;
use serde_json::{json, Value};

use crate::copy::{assert_valid, names, referrers};
use crate::helpers::assert_deep_valid;
use crate::helpers::{
    blob_names, index_bytes, index_value, ocikit, ocikit_json, sample_layout, temp_files,
    tool_available,
};
use crate::producers::{run, skopeo, Containerd, Storage};
use crate::testkit::Tar;

/// Runs `ocikit import FILE LAYOUT ARGS --json`, asserting success.
fn import(file: &Path, layout: &Path, args: &[&str]) -> Value {
    let out = ocikit()
        .arg("import")
        .arg(file)
        .arg(layout)
        .args(args)
        .arg("--json")
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// Runs `ocikit import FILE LAYOUT`, which must fail with status 2 saying `message`.
fn refused(file: &Path, layout: &Path, message: &str) {
    ocikit()
        .arg("import")
        .arg(file)
        .arg(layout)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(message));
}

/// A layout at `layout` holding what `ocikit copy ARGS… LAYOUT` puts there.
fn layout_with(layout: &Path, args: &[&str]) {
    ocikit()
        .arg("copy")
        .args(args)
        .arg(layout)
        .assert()
        .success();
}

/// The whole sample, exported to `name` in `dir`.
fn sample_archive(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    ocikit()
        .args(["export", "--all"])
        .arg(sample_layout())
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn every_kind_of_archive_imports_from_a_file_or_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["all.tar", "all.tar.gz", "all.tar.zst"] {
        let archive = sample_archive(dir.path(), name);
        let via_stdin = dir.path().join(format!("stdin-{}", name.replace('.', "-")));
        let imported: Value = serde_json::from_slice(
            &ocikit()
                .args(["import", "-"])
                .arg(&via_stdin)
                .arg("--json")
                .pipe_stdin(&archive)
                .unwrap()
                .assert()
                .success()
                .get_output()
                .stdout,
        )
        .unwrap();
        assert_eq!(imported["kind"], "oci", "{name}");
        assert_eq!(imported["created"], true);
        assert_eq!(imported["images"].as_array().unwrap().len(), 3);
        assert_eq!(imported["referrers"], 1);
        assert_eq!(
            index_value(&via_stdin),
            index_value(&sample_layout()),
            "{name}"
        );
        assert_valid(&via_stdin);
        // Nothing staged is left behind.
        assert!(temp_files(&via_stdin).is_empty(), "{name}");
    }
}

#[test]
fn an_import_merges_keeping_what_the_layout_has() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    let layout = dir.path().join("layout");
    layout_with(&layout, &["--link", "copy", &format!("{s}:app:gzip")]);
    let layer = ocikit_json(["inspect", &format!("{s}:app:gzip"), "--json"])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let layer_path = layout.join("blobs/sha256").join(&layer);
    let before = fs::metadata(&layer_path).unwrap();
    for name in ["all.tar", "all.tar.zst"] {
        let archive = sample_archive(dir.path(), name);
        let imported = import(&archive, &layout, &[]);
        assert!(
            imported["blobs"]["present"].as_u64().unwrap() >= 7,
            "{imported}"
        );
        let after = fs::metadata(&layer_path).unwrap();
        assert_eq!(
            (after.ino(), after.mtime_nsec()),
            (before.ino(), before.mtime_nsec()),
            "{name}: rewritten"
        );
    }
    assert_eq!(
        names(&layout)
            .iter()
            .filter(|n| n.starts_with("app:"))
            .count(),
        3
    );
    assert_eq!(
        referrers(&format!("{}:app:gzip", layout.display())).len(),
        1
    );
    assert_valid(&layout);
}

#[test]
fn a_name_the_layout_gives_elsewhere_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    let layout = dir.path().join("layout");
    // app:gzip names the zstd image here.
    ocikit()
        .args([
            "copy",
            &format!("{s}:app:zstd"),
            &format!("{}:app:gzip", layout.display()),
        ])
        .assert()
        .success();
    let archive = sample_archive(dir.path(), "all.tar");
    let before = index_bytes(&layout);
    ocikit()
        .arg("import")
        .arg(&archive)
        .arg(&layout)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the name \"app:gzip\" is already in",
        ))
        .stderr(predicate::str::contains("--force moves the name"));
    assert_eq!(index_bytes(&layout), before, "index.json is as it was");
    let forced = import(&archive, &layout, &["--force"]);
    assert_eq!(forced["names"]["replaced"][0][0], "app:gzip");
    let gzip = ocikit_json(["inspect", &format!("{s}:app:gzip"), "--json"]);
    assert_eq!(
        ocikit_json([
            "inspect",
            &format!("{}:app:gzip", layout.display()),
            "--json"
        ])["digest"],
        gzip["digest"]
    );
    assert_valid(&layout);
}

/// A layout archive of the sample whose `entry` (a blob) holds other bytes.
fn tampered(dir: &Path, digest: &str) -> PathBuf {
    let copy = dir.join("tampered-layout");
    crate::helpers::copy_tree(&sample_layout(), &copy);
    let path = copy
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let out = dir.join("tampered.tar");
    run(
        "tar",
        &[
            "-C",
            copy.to_str().unwrap(),
            "-cf",
            out.to_str().unwrap(),
            ".",
        ],
    );
    out
}

#[test]
fn a_failed_import_leaves_the_names_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    let layer = ocikit_json(["inspect", &format!("{s}:app:zstd"), "--json"])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let archive = tampered(dir.path(), &layer);
    let layout = dir.path().join("layout");
    layout_with(&layout, &[&format!("{s}:app:gzip")]);
    let before = index_bytes(&layout);
    let gz = dir.path().join("tampered.tar.gz");
    fs::write(&gz, gzip(&fs::read(&archive).unwrap())).unwrap();
    for file in [&archive, &gz] {
        refused(file, &layout, &format!("blob {layer} in"));
        refused(file, &layout, "is corrupt");
        assert_eq!(index_bytes(&layout), before);
        assert_valid(&layout);
    }
    // A layout the import would have created is not left behind.
    let fresh = dir.path().join("fresh");
    refused(&archive, &fresh, "is corrupt");
    assert!(!fresh.exists());
}

/// One entry of a hand-made tar.
enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    CharDevice(&'a str),
}

/// A tar of `entries`, names written as given (no normalization), built with the test kit.
fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    entries
        .iter()
        .fold(Tar::default(), |tar, entry| match entry {
            Entry::File(name, data) => tar.file(name, data),
            Entry::Symlink(name, target) => tar.node(name, b'2', target),
            Entry::HardLink(name, target) => tar.node(name, b'1', target),
            Entry::CharDevice(name) => tar.node(name, b'3', ""),
        })
        .end()
}

/// The sample's files, as (name, bytes).
fn sample_files() -> Vec<(String, Vec<u8>)> {
    let root = sample_layout();
    walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let name = e.path().strip_prefix(&root).unwrap().display().to_string();
            (name, fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_written_outside() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_files();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let blob = files
        .iter()
        .find(|(n, _)| n.starts_with("blobs/"))
        .unwrap()
        .0
        .clone();
    let evil = format!("{}/evil", outside.display());
    let cases: Vec<(&str, Vec<Entry<'_>>, &str)> = vec![
        ("absolute", vec![Entry::File(&evil, b"x")], "absolute name"),
        (
            "dot-dot",
            vec![Entry::File("../outside/evil", b"x")],
            "`..` component",
        ),
        (
            "symlink out",
            vec![Entry::Symlink(&blob, "../../../outside/evil")],
            "outside the archive",
        ),
        (
            "absolute symlink",
            vec![Entry::Symlink(&blob, "/etc/passwd")],
            "outside the archive",
        ),
        (
            "hard link out",
            vec![Entry::HardLink(&blob, "../outside/evil")],
            "not a plain name",
        ),
        ("device", vec![Entry::CharDevice(&blob)], "device"),
        (
            "duplicate",
            vec![Entry::File("./index.json", b"{}")],
            "are the same path",
        ),
    ];
    let layout = dir.path().join("layout");
    ocikit().arg("init").arg(&layout).assert().success();
    let before = index_bytes(&layout);
    for (what, extra, message) in &cases {
        // The sample's files, minus any the hostile entry replaces, then the hostile entry.
        let replaced: Vec<&str> = extra
            .iter()
            .map(|e| match e {
                Entry::Symlink(n, _) | Entry::HardLink(n, _) | Entry::CharDevice(n) => *n,
                Entry::File(n, _) => n,
            })
            .collect();
        let mut entries: Vec<Entry<'_>> = files
            .iter()
            .filter(|(n, _)| !replaced.contains(&n.as_str()) || *what == "duplicate")
            .map(|(n, d)| Entry::File(n, d))
            .collect();
        entries.extend(extra.iter().map(|e| match e {
            Entry::File(n, d) => Entry::File(n, d),
            Entry::Symlink(n, t) => Entry::Symlink(n, t),
            Entry::HardLink(n, t) => Entry::HardLink(n, t),
            Entry::CharDevice(n) => Entry::CharDevice(n),
        }));
        let bytes = tar_of(&entries);
        let plain = dir.path().join("hostile.tar");
        fs::write(&plain, &bytes).unwrap();
        let compressed = dir.path().join("hostile.tar.gz");
        fs::write(&compressed, gzip(&bytes)).unwrap();
        for file in [&plain, &compressed] {
            refused(file, &layout, message);
        }
        ocikit()
            .args(["import", "-"])
            .arg(&layout)
            .write_stdin(bytes.clone())
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*message));
        assert_eq!(index_bytes(&layout), before, "{what}");
        assert!(
            fs::read_dir(&outside).unwrap().next().is_none(),
            "{what}: wrote outside"
        );
        assert!(temp_files(&layout).is_empty(), "{what}: staged files left");
    }
}

/// A layer tar holding one file.
fn layer(name: &str, content: &[u8]) -> Vec<u8> {
    tar_of(&[Entry::File(name, content)])
}

fn sha256(bytes: &[u8]) -> String {
    ocikit::Digest::sha256_of(bytes).to_string()
}

/// A `docker save` archive from before Docker 25: two images sharing a base layer, one tagged
/// twice, one untagged, in the legacy directory shape.
fn legacy_archive() -> (Vec<u8>, [String; 2]) {
    let base = layer("base.txt", b"base");
    let top = layer("top.txt", b"top");
    let config = |layers: &[&[u8]]| {
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["A=1"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha256(l)).collect::<Vec<_>>()},
        }))
        .unwrap()
    };
    let one = config(&[&base]);
    let two = config(&[&base, &top]);
    let hex = |b: &[u8]| sha256(b).trim_start_matches("sha256:").to_string();
    let manifest = serde_json::to_vec(&json!([
        {"Config": format!("{}.json", hex(&one)), "RepoTags": ["app:1", "localhost/app:latest"], "Layers": ["aaa/layer.tar"]},
        {"Config": format!("{}.json", hex(&two)), "RepoTags": null, "Layers": ["aaa/layer.tar", "bbb/layer.tar"]},
    ]))
    .unwrap();
    let one_name = format!("{}.json", hex(&one));
    let two_name = format!("{}.json", hex(&two));
    let bytes = tar_of(&[
        Entry::File("aaa/layer.tar", &base),
        Entry::File("bbb/layer.tar", &top),
        Entry::File(&one_name, &one),
        Entry::File(&two_name, &two),
        Entry::File("manifest.json", &manifest),
        Entry::File("repositories", b"{}"),
    ]);
    (bytes, [sha256(&base), sha256(&top)])
}

#[test]
fn a_legacy_docker_save_archive_is_converted_into_oci_images() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, [base, top]) = legacy_archive();
    let archive = dir.path().join("docker.tar");
    fs::write(&archive, &bytes).unwrap();
    let layout = dir.path().join("layout");
    let imported = import(&archive, &layout, &[]);
    assert_eq!(imported["kind"], "docker-save");
    assert_eq!(
        imported["names"]["added"],
        json!(["app:1", "localhost/app:latest"])
    );
    assert_eq!(imported["names"]["untagged"], 1);
    assert_eq!(names(&layout), ["app:1", "localhost/app:latest", "-"]);
    let tagged = ocikit_json(["inspect", &format!("{}:app:1", layout.display()), "--json"]);
    assert_eq!(
        tagged["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        tagged["layers"][0]["digest"], base,
        "an uncompressed layer's digest is its diff_id"
    );
    assert_eq!(
        tagged["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    let untagged = index_value(&layout)["manifests"][2]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let second = ocikit_json([
        "inspect",
        &format!("{}@{untagged}", layout.display()),
        "--json",
    ]);
    assert_eq!(second["layers"][1]["digest"], top);
    assert_valid(&layout);
    assert_deep_valid(&layout);
    // The same again, compressed, through stdin: the same manifests, nothing new.
    let again: Value = serde_json::from_slice(
        &ocikit()
            .args(["import", "-"])
            .arg(&layout)
            .arg("--json")
            .write_stdin(gzip(&bytes))
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        again["names"]["unchanged"],
        json!(["app:1", "localhost/app:latest"])
    );
    assert_eq!(names(&layout).len(), 3);
    // A layer that is not what its config says is refused.
    let (mut bad, _) = legacy_archive();
    let at = bad.windows(4).position(|w| w == b"base").unwrap();
    bad[at] = b'B';
    let broken = dir.path().join("broken.tar");
    fs::write(&broken, &bad).unwrap();
    refused(&broken, &dir.path().join("other"), "diff_id");
}

#[test]
fn what_skopeo_podman_and_containerd_write_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    let imported_into = |archive: &Path, what: &str| {
        let layout = dir.path().join(format!("from-{}", what.replace(' ', "-")));
        let imported = import(archive, &layout, &[]);
        assert_valid(&layout);
        ocikit()
            .args(["validate", "--deep"])
            .arg(&layout)
            .assert()
            .success();
        (layout, imported)
    };
    if tool_available("skopeo") {
        for transport in ["oci-archive", "docker-archive"] {
            let out = dir.path().join(format!("skopeo-{transport}.tar"));
            skopeo(&[
                "copy",
                &format!("oci:{s}:app:gzip"),
                &format!("{transport}:{}:app:1", out.display()),
            ]);
        }
        let (layout, _) = imported_into(
            &dir.path().join("skopeo-oci-archive.tar"),
            "skopeo oci-archive",
        );
        assert_eq!(names(&layout), ["app:1"]);
        let docker = dir.path().join("skopeo-docker-archive.tar");
        let (layout, imported) = imported_into(&docker, "skopeo docker-archive");
        assert_eq!(imported["kind"], "docker-save");
        // The tag as skopeo wrote it, normalized.
        assert_eq!(names(&layout), ["docker.io/library/app:1"]);
        // Config bytes are kept: the same config digest as the source image.
        let config = ocikit_json(["inspect", &format!("{s}:app:gzip"), "--json"])["config"]
            ["digest"]
            .clone();
        assert_eq!(
            ocikit_json(["inspect", &format!("{}:1", layout.display()), "--json"])["config"]
                ["digest"],
            config
        );
    }
    let Some(storage) = Storage::with_app(dir.path()) else {
        return;
    };
    storage
        .buildah(&["tag", "localhost/app:1", "localhost/app:2"])
        .expect("buildah tag");
    for (format, file) in [
        ("oci-archive", "podman-oci.tar"),
        ("docker-archive", "podman-docker.tar"),
    ] {
        let out = dir.path().join(file);
        storage
            .save(format, &out, &["localhost/app:1"])
            .expect("podman save");
        imported_into(&out, &format!("podman {format}"));
    }
    let multi = dir.path().join("podman-multi.tar");
    storage
        .save(
            "docker-archive",
            &multi,
            &["localhost/app:1", "localhost/app:2"],
        )
        .expect("podman save -m");
    let (layout, _) = imported_into(&multi, "podman multi");
    assert_eq!(names(&layout), ["localhost/app:1", "localhost/app:2"]);
    // oci-dir is a directory: copied, not imported.
    let oci_dir = dir.path().join("podman-oci-dir");
    storage
        .save("oci-dir", &oci_dir, &["localhost/app:1"])
        .expect("podman save oci-dir");
    let copied = dir.path().join("from-oci-dir");
    ocikit()
        .args(["copy", "--all"])
        .arg(&oci_dir)
        .arg(&copied)
        .assert()
        .success();
    assert_valid(&copied);

    let Some(containerd) = Containerd::start(dir.path()) else {
        return;
    };
    let export = dir.path().join("ctr-export.tar");
    containerd.round_trip(&dir.path().join("podman-oci.tar"), &export);
    let (layout, imported) = imported_into(&export, "ctr export");
    assert_eq!(imported["kind"], "oci");
    // containerd keeps the full reference beside the tag; either selects the image.
    let entry = &index_value(&layout)["manifests"][0]["annotations"];
    assert_eq!(entry["io.containerd.image.name"], "localhost/app:1");
    ocikit_json([
        "inspect",
        &format!("{}:localhost/app:1", layout.display()),
        "--json",
    ]);
    assert!(!blob_names(&layout).is_empty());
}
