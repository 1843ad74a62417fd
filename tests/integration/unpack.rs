//! `ocikit unpack`: the tree an image holds, whiteouts applied, nothing written outside DIR,
//! diff_ids checked (a mismatch leaves nothing, or with --keep-partial says it is partial), and
//! the same tree as `umoci unpack` of images umoci and buildah built.

use std::fs;
use std::path::{Path, PathBuf};

use ocikit::spec::document::media_type::{OCI_CONFIG, OCI_MANIFEST};
use ocikit::store::layout::Layout;
use ocikit::Digest;
use predicates::prelude::*;
use serde_json::json;

use crate::artifacts::raw_tar;
use crate::fixtures;
use crate::helpers::{ocikit, tool_available};
use crate::images::{assert_same_tree, build, describe, tree};
use crate::producers::{run, Storage};

fn l(path: &Path) -> String {
    path.display().to_string()
}

/// Writes an image named `name` whose layers are the plain tars `layers`; the config lists
/// `diff_ids` when given, else the layers' own digests. Returns the layer digests.
fn image_of_tars(
    layout: &Path,
    name: &str,
    layers: &[Vec<u8>],
    diff_ids: Option<Vec<String>>,
) -> Vec<String> {
    if !layout.exists() {
        Layout::init(layout).unwrap();
    }
    let opened = Layout::open(layout).unwrap();
    let writer = opened.writer().unwrap();
    let mut descriptors = Vec::new();
    let mut digests = Vec::new();
    for tar in layers {
        let blob = writer.write_blob_bytes(tar).unwrap();
        digests.push(blob.digest.to_string());
        descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob.digest, "size": blob.size}));
    }
    let diff_ids = diff_ids.unwrap_or_else(|| digests.clone());
    let config = fixtures::write_document(
        &writer,
        OCI_CONFIG,
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}),
    );
    let manifest = fixtures::write_document(
        &writer,
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": fixtures::descriptor_value(&config), "layers": descriptors}),
    );
    fixtures::tag(&writer, &manifest, name);
    digests
}

/// Every path below `dir`, relative, sorted ("" for `dir` itself).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn unpack_gives_the_tree_image_build_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    // The tree comparison reads every file; a FIFO would block it.
    fs::remove_file(root.join("run-fifo")).unwrap();
    let layout = dir.path().join("out");
    for compression in ["gzip", "zstd", "none"] {
        build(
            &format!("{}:{compression}", l(&layout)),
            &["--layer", &l(&root), "--compression", compression],
            "2",
        );
        let out = dir.path().join(format!("unpacked-{compression}"));
        ocikit()
            .args(["unpack", &format!("{}:{compression}", l(&layout))])
            .arg(&out)
            .assert()
            .success()
            .stderr(predicate::str::contains("Unpacked sha256:"));
        assert_same_tree(&root, &out, 1_700_000_000);
    }
    // DIR must be empty or missing.
    ocikit()
        .args(["unpack", &format!("{}:gzip", l(&layout))])
        .arg(dir.path().join("unpacked-gzip"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "is not empty; unpack writes into an empty or missing directory",
        ));
}

#[test]
fn whiteouts_of_later_layers_remove_what_earlier_ones_wrote() {
    use tar::EntryType::Regular;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let lower = raw_tar(&[
        ("d/old", Regular, "", b"1"),
        ("d/sub/old2", Regular, "", b"2"),
        ("gone", Regular, "", b"3"),
        ("kept", Regular, "", b"4"),
    ]);
    let upper = raw_tar(&[
        ("d/new", Regular, "", b"5"),
        ("d/.wh..wh..opq", Regular, "", b""),
        (".wh.gone", Regular, "", b""),
        ("same", Regular, "", b"6"),
        (".wh.same", Regular, "", b""),
    ]);
    image_of_tars(&layout, "app", &[lower, upper], None);
    let out = dir.path().join("rootfs");
    ocikit()
        .args(["unpack", &format!("{}:app", l(&layout))])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(listing(&out), ["", "d", "d/new", "kept", "same"]);
}

#[test]
fn links_planted_by_earlier_layers_never_lead_a_write_outside_dir() {
    use tar::EntryType::{Link, Regular, Symlink};
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let first = raw_tar(&[
        ("up", Symlink, "../../../..", b""),
        ("abs", Symlink, "/", b""),
        ("a/b/deep", Symlink, "../../../..", b""),
    ]);
    let second = raw_tar(&[
        ("up/escaped-up", Regular, "", b"1"),
        ("abs/escaped-abs", Regular, "", b"2"),
        ("../../escaped-dotdot", Regular, "", b"3"),
        ("top", Link, "a/b/deep", b""),
        ("top/escaped-hard", Regular, "", b"4"),
    ]);
    image_of_tars(&layout, "app", &[first, second], None);
    let out = dir.path().join("rootfs");
    let before = listing(dir.path());
    ocikit()
        .args(["unpack", &format!("{}:app", l(&layout))])
        .arg(&out)
        .assert()
        .success();
    let outside: Vec<String> = listing(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with("rootfs") && !before.contains(p))
        .collect();
    assert!(outside.is_empty(), "written outside DIR: {outside:?}");
    for (name, content) in [
        ("escaped-up", "1"),
        ("escaped-abs", "2"),
        ("escaped-dotdot", "3"),
        ("escaped-hard", "4"),
    ] {
        assert_eq!(fs::read_to_string(out.join(name)).unwrap(), content);
    }
    assert_eq!(
        fs::read_link(out.join("top")).unwrap(),
        PathBuf::from("../../../..")
    );
}

#[test]
fn a_diff_id_mismatch_removes_what_was_unpacked_unless_keep_partial() {
    use tar::EntryType::Regular;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let first = raw_tar(&[("first", Regular, "", b"1")]);
    let second = raw_tar(&[("second", Regular, "", b"2")]);
    let wrong = Digest::sha256_of(b"something else").to_string();
    let digests = image_of_tars(
        &layout,
        "app",
        &[first.clone(), second],
        Some(vec![Digest::sha256_of(&first).to_string(), wrong.clone()]),
    );
    let out = dir.path().join("rootfs");
    ocikit()
        .args(["unpack", &format!("{}:app", l(&layout))])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(&digests[1]))
        .stderr(predicate::str::contains(format!(
            "but diff_id 1 is {wrong}"
        )))
        .stderr(predicate::str::contains("nothing was left"));
    assert!(!out.exists(), "the directory unpack made is removed");
    // An empty directory given stays, empty.
    fs::create_dir(&out).unwrap();
    ocikit()
        .args(["unpack", &format!("{}:app", l(&layout))])
        .arg(&out)
        .assert()
        .code(2);
    assert_eq!(listing(&out), [""]);
    ocikit()
        .args(["unpack", "--keep-partial", &format!("{}:app", l(&layout))])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is left partly written"));
    assert_eq!(listing(&out), ["", "first", "second"]);
}

#[test]
fn a_refused_entry_names_the_layer_and_the_entry() {
    use tar::EntryType::{Link, Regular};
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let tar = raw_tar(&[
        ("fine", Regular, "", b"1"),
        ("broken-link", Link, "no-such-file", b""),
    ]);
    let digests = image_of_tars(&layout, "app", &[tar], None);
    let out = dir.path().join("rootfs");
    ocikit()
        .args(["unpack", &format!("{}:app", l(&layout))])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "the tar entry \"broken-link\" of layer {}",
            digests[0]
        )))
        .stderr(predicate::str::contains("does not exist"));
    assert!(!out.exists());
}

// ---- interop ----

/// `umoci unpack` of `image` into `dir/umoci-NAME`; returns its rootfs.
fn umoci_unpack(dir: &Path, image: &str, name: &str) -> PathBuf {
    let bundle = dir.join(format!("umoci-{name}"));
    run("umoci", &["unpack", "--image", image, &l(&bundle)]);
    bundle.join("rootfs")
}

/// `ocikit unpack` of `image` gives the tree `umoci unpack` gives: paths, types, modes, sizes,
/// contents, link targets and mtimes of files and links.
fn assert_unpacks_as_umoci_does(dir: &Path, image: &str, name: &str) {
    let theirs = umoci_unpack(dir, image, name);
    let ours = dir.join(format!("ocikit-{name}"));
    ocikit()
        .args(["unpack", image])
        .arg(&ours)
        .assert()
        .success();
    let (want, got) = (describe(&theirs, i64::MAX), describe(&ours, i64::MAX));
    assert_eq!(got, want, "{name}");
}

#[test]
fn unpack_of_umoci_built_images_with_whiteouts_and_an_opaque_directory_matches_umoci() {
    if !tool_available("umoci") {
        return;
    }
    use tar::EntryType::Regular;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let lay = l(&layout);
    run("umoci", &["init", "--layout", &lay]);
    run("umoci", &["new", "--image", &format!("{lay}:base")]);
    // Layer 1: a tree.
    let bundle = dir.path().join("bundle1");
    run(
        "umoci",
        &["unpack", "--image", &format!("{lay}:base"), &l(&bundle)],
    );
    // The sample tree, written straight into the bundle's rootfs.
    let rootfs = crate::producers::rootfs(&bundle);
    for (path, content) in [
        ("d/old", "1"),
        ("d/sub/old2", "2"),
        ("gone/file", "3"),
        ("keep/k", "4"),
    ] {
        fs::create_dir_all(rootfs.join(path).parent().unwrap()).unwrap();
        fs::write(rootfs.join(path), content).unwrap();
    }
    run(
        "umoci",
        &["repack", "--image", &format!("{lay}:v1"), &l(&bundle)],
    );
    // Layer 2: removals (whiteouts), unpacked afresh from v1 as umoci repack needs.
    let bundle = dir.path().join("bundle2");
    run(
        "umoci",
        &["unpack", "--image", &format!("{lay}:v1"), &l(&bundle)],
    );
    let rootfs = bundle.join("rootfs");
    fs::remove_dir_all(rootfs.join("gone")).unwrap();
    fs::remove_file(rootfs.join("etc/empty")).unwrap();
    fs::write(rootfs.join("keep/added"), "5").unwrap();
    run(
        "umoci",
        &["repack", "--image", &format!("{lay}:v2"), &l(&bundle)],
    );
    // Layer 3: an opaque directory, after its new children in the tar.
    let opaque = dir.path().join("opaque.tar");
    fs::write(
        &opaque,
        raw_tar(&[
            ("d/new", Regular, "", b"6"),
            ("d/.wh..wh..opq", Regular, "", b""),
        ]),
    )
    .unwrap();
    run(
        "umoci",
        &[
            "raw",
            "add-layer",
            "--image",
            &format!("{lay}:v2"),
            "--tag",
            "v3",
            &l(&opaque),
        ],
    );
    for name in ["v1", "v2", "v3"] {
        assert_unpacks_as_umoci_does(dir.path(), &format!("{lay}:{name}"), name);
    }
    let v3 = dir.path().join("ocikit-v3");
    assert!(!v3.join("gone").exists() && !v3.join("d/old").exists());
    assert!(v3.join("d/new").exists() && v3.join("keep/added").exists());
}

#[test]
fn unpack_of_a_buildah_built_image_with_whiteouts_matches_umoci() {
    if !tool_available("umoci") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(storage) = Storage::new(dir.path()) else {
        return;
    };
    let source = crate::producers::rootfs(dir.path());
    fs::create_dir_all(source.join("var/cache/old")).unwrap();
    fs::write(source.join("var/cache/old/file"), "old").unwrap();
    let Some(container) = storage.build_from_scratch(&source, "localhost/base:1") else {
        eprintln!("note: buildah cannot build here; buildah interop not run");
        return;
    };
    // A second layer made by changing the container's file system: removals become whiteouts.
    let Some(mounted) = storage.buildah(&["mount", &container]) else {
        eprintln!("note: buildah cannot mount here; buildah interop not run");
        return;
    };
    let mounted = PathBuf::from(mounted.trim());
    fs::remove_dir_all(mounted.join("var/cache/old")).unwrap();
    fs::remove_file(mounted.join("etc/empty")).unwrap();
    fs::write(mounted.join("etc/added"), "new").unwrap();
    let Some(_) = storage.buildah(&["commit", &container, "localhost/app:2"]) else {
        return;
    };
    let layout = dir.path().join("layout");
    let image = format!("{}:app", l(&layout));
    let Some(_) = storage.buildah(&["push", "localhost/app:2", &format!("oci:{image}")]) else {
        return;
    };
    assert_unpacks_as_umoci_does(dir.path(), &image, "buildah");
    let ours = dir.path().join("ocikit-buildah");
    assert!(!ours.join("var/cache/old").exists() && !ours.join("etc/empty").exists());
    assert_eq!(fs::read_to_string(ours.join("etc/added")).unwrap(), "new");
}

#[test]
fn an_index_needs_a_platform_and_gets_the_one_asked_for() {
    let sample = crate::helpers::sample_layout();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rootfs");
    ocikit()
        .args(["unpack", &format!("{}:app:multi", l(&sample))])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("choose it with --platform"));
    assert!(
        !out.exists(),
        "nothing is made when nothing can be unpacked"
    );
    ocikit()
        .args([
            "unpack",
            "--platform",
            "linux/arm64",
            &format!("{}:app:multi", l(&sample)),
        ])
        .arg(&out)
        .assert()
        .success();
    assert!(out.join("hello.txt").is_file(), "{:?}", listing(&out));
}

/// A temp dir that a user who is not root may write in.
fn shared_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn a_failed_unprivileged_unpack_removes_read_only_directories_too() {
    use crate::helpers::{header_with_mode, ocikit_unprivileged};
    use crate::testkit::Tar;
    let dir = shared_tempdir();
    let layout = dir.path().join("layout");
    // Read-only directories, one that cannot even be listed, and the root made read-only.
    let layer = Tar::default()
        .raw(header_with_mode("./", b'5', 0, 0o555), b"")
        .raw(header_with_mode("ro/", b'5', 0, 0o555), b"")
        .file("ro/f", b"f")
        .raw(header_with_mode("ro/sub/", b'5', 0, 0o500), b"")
        .file("ro/sub/g", b"g")
        .raw(header_with_mode("ro/none/", b'5', 0, 0), b"")
        .file("ro/none/h", b"h")
        .end();
    let wrong = Digest::sha256_of(b"something else").to_string();
    image_of_tars(&layout, "app", &[layer], Some(vec![wrong]));
    let out = dir.path().join("rootfs");
    ocikit_unprivileged()
        .args(["unpack", &format!("{}:app", l(&layout))])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nothing was left"));
    assert!(!out.exists(), "{:?}", listing(&out));
}

#[test]
fn a_failed_unpack_removes_a_tree_deeper_than_the_open_file_limit() {
    use crate::testkit::Tar;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let deep = "d/".repeat(300) + "f";
    let layer = Tar::default()
        .pax(&[("path", deep.as_str())])
        .file("placeholder", b"deep")
        .file("beside", b"x")
        .end();
    let wrong = Digest::sha256_of(b"something else").to_string();
    image_of_tars(&layout, "app", &[layer], Some(vec![wrong]));
    let out = dir.path().join("rootfs");
    let mut command = assert_cmd::Command::new("sh");
    command
        .args(["-c", "ulimit -n 100 && exec \"$0\" \"$@\""])
        .arg(crate::helpers::ocikit_path())
        .args(["unpack", &format!("{}:app", l(&layout))])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nothing was left"));
    assert!(!out.exists());
}

#[test]
fn an_unprivileged_unpack_writes_into_read_only_directories_of_lower_layers() {
    use crate::helpers::{header_with_mode, ocikit_unprivileged};
    use crate::testkit::Tar;
    use std::os::unix::fs::PermissionsExt;
    let dir_entry = |name: &str, mode: u32| header_with_mode(name, b'5', 0, mode);
    /// (what, layers, the tree, directories and their modes)
    type Case<'a> = (&'a str, Vec<Vec<u8>>, Vec<&'a str>, Vec<(&'a str, u32)>);
    let cases: Vec<Case> = vec![
        (
            "a file added to a 0555 directory",
            vec![
                Tar::default()
                    .raw(dir_entry("usr/bin/", 0o555), b"")
                    .file("usr/bin/sh", b"sh")
                    .end(),
                Tar::default()
                    .raw(dir_entry("usr/bin/", 0o555), b"")
                    .file("usr/bin/app", b"app")
                    .end(),
            ],
            vec!["", "usr", "usr/bin", "usr/bin/app", "usr/bin/sh"],
            vec![("usr/bin", 0o555)],
        ),
        (
            "a whiteout in a 0555 directory, kept read-only",
            vec![
                Tar::default()
                    .raw(dir_entry("ro/", 0o555), b"")
                    .file("ro/f", b"f")
                    .file("ro/g", b"g")
                    .end(),
                Tar::default().file("ro/.wh.f", b"").end(),
            ],
            vec!["", "ro", "ro/g"],
            vec![("ro", 0o555)],
        ),
        (
            "the root entry without search permission",
            vec![Tar::default()
                .raw(dir_entry("./", 0o644), b"")
                .file("f", b"f")
                .end()],
            vec!["", "f"],
            vec![("", 0o644)],
        ),
        (
            "deeper, below a lower directory without search permission",
            vec![
                Tar::default()
                    .raw(dir_entry("a/", 0o600), b"")
                    .raw(dir_entry("a/b/", 0o500), b"")
                    .end(),
                Tar::default().file("a/b/c/new", b"n").end(),
            ],
            vec!["", "a", "a/b", "a/b/c", "a/b/c/new"],
            vec![("a", 0o600), ("a/b", 0o500)],
        ),
        (
            "a whiteout and an opaque marker below a directory without search permission",
            vec![
                Tar::default()
                    .raw(dir_entry("a/", 0o600), b"")
                    .raw(dir_entry("a/b/", 0o500), b"")
                    .file("a/b/f", b"f")
                    .file("a/b/g", b"g")
                    .raw(dir_entry("a/o/", 0o500), b"")
                    .file("a/o/h", b"h")
                    .end(),
                Tar::default()
                    .file("a/b/.wh.f", b"")
                    .file("a/o/.wh..wh..opq", b"")
                    .end(),
            ],
            vec!["", "a", "a/b", "a/b/g", "a/o"],
            vec![("a", 0o600), ("a/b", 0o500), ("a/o", 0o500)],
        ),
    ];
    for (label, layers, expected, modes) in cases {
        let dir = shared_tempdir();
        let layout = dir.path().join("layout");
        image_of_tars(&layout, "app", &layers, None);
        let out = dir.path().join("rootfs");
        ocikit_unprivileged()
            .args(["unpack", &format!("{}:app", l(&layout))])
            .arg(&out)
            .assert()
            .success();
        let mode = |p: &str| fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o7777;
        let got: Vec<(&str, u32)> = modes.iter().map(|(p, _)| (*p, mode(p))).collect();
        assert_eq!(got, modes, "{label}");
        // Listed as root, or after opening up what the test user cannot list.
        for (p, _) in &modes {
            fs::set_permissions(out.join(p), fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert_eq!(listing(&out), expected, "{label}");
    }
}

#[test]
fn owners_are_applied_as_root_unless_no_chown() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_path("owned").unwrap();
    header.set_size(1);
    header.set_mode(0o4755);
    header.set_uid(1234);
    header.set_gid(5678);
    header.set_mtime(1_600_000_000);
    header.set_cksum();
    builder.append(&header, &b"x"[..]).unwrap();
    image_of_tars(&layout, "app", &[builder.into_inner().unwrap()], None);
    let root = fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    for no_chown in [false, true] {
        let out = dir.path().join(format!("rootfs-{no_chown}"));
        let mut command = ocikit();
        command.arg("unpack");
        if no_chown {
            command.arg("--no-chown");
        }
        command
            .arg(format!("{}:app", l(&layout)))
            .arg(&out)
            .assert()
            .success();
        let meta = fs::symlink_metadata(out.join("owned")).unwrap();
        assert_eq!(meta.mtime(), 1_600_000_000);
        assert_eq!(meta.mode() & 0o7777, 0o4755, "setuid kept after chown");
        if root && !no_chown {
            assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
        } else {
            assert_eq!(meta.uid(), fs::metadata(dir.path()).unwrap().uid());
        }
    }
}
