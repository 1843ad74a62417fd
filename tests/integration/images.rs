//! `image build` and `image index`: reproducibility (runs, thread counts, access times, layout
//! paths), layers from directories and tars, bases from layouts and archives, configuration
//! flags, indexes made and derived, refusals that write nothing, and what skopeo, umoci,
//! gunzip and pigz make of the result.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helpers::assert_deep_valid;
use crate::helpers::{blob_bytes, blob_names, index_bytes, ocikit, tool_available, trimmed_stdout};
use crate::producers::{rootfs, run, skopeo};

const EPOCH: &str = "1700000000";

/// A root filesystem with what layers hold (see `producers::rootfs`), a FIFO, a long name, a
/// 3 MiB compressible file and 6 MiB of a binary, so gzip layers are several blocks long.
pub(crate) fn tree(dir: &Path) -> PathBuf {
    let root = rootfs(dir);
    let long = format!("usr/share/{}", "long-directory-name/".repeat(8));
    std::fs::create_dir_all(root.join(&long)).unwrap();
    std::fs::write(root.join(long).join("file-with-a-long-name.txt"), "deep\n").unwrap();
    let mut big = Vec::with_capacity(3 << 20);
    let mut state = 0x9e37_79b9_u32;
    while big.len() < 3 << 20 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        big.extend_from_slice(format!("line {} value {}\n", big.len(), state % 1000).as_bytes());
    }
    std::fs::write(root.join("usr/big.log"), big).unwrap();
    // Real, varied bytes too (a piece of the ocikit binary): synthetic text alone let a
    // compressor that depended on the thread count pass.
    let binary = std::fs::read(crate::helpers::ocikit_path()).unwrap();
    std::fs::write(
        root.join("usr/bin/tool"),
        &binary[..binary.len().min(6 << 20)],
    )
    .unwrap();
    std::fs::set_permissions(root.join("etc/app"), std::fs::Permissions::from_mode(0o750)).unwrap();
    run("mkfifo", &[&root.join("run-fifo").display().to_string()]);
    root
}

/// `ocikit image build TARGET ARGS…` with SOURCE_DATE_EPOCH and rayon's thread count set;
/// returns the manifest digest.
pub(crate) fn build(target: &str, args: &[&str], threads: &str) -> String {
    let out = ocikit()
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("RAYON_NUM_THREADS", threads)
        .args(["image", "build", target, "--threads", threads])
        .args(args)
        .assert()
        .success();
    trimmed_stdout(&out)
}

/// The tree of [`tree`] built into `out:app` with `args` after its `--layer`: the temp dir,
/// the tree, the layout and the manifest digest.
fn build_tree(args: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    let layout = dir.path().join("out");
    let mut all = vec!["--layer", root.to_str().unwrap()];
    all.extend_from_slice(args);
    let digest = build(&format!("{}:app", layout.display()), &all, "2");
    (dir, root, layout, digest)
}

fn json_blob(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob_bytes(layout, digest)).unwrap()
}

/// The manifest and config of an image built into `layout`.
fn documents(layout: &Path, manifest: &str) -> (Value, Value) {
    let manifest = json_blob(layout, manifest);
    let config = json_blob(layout, manifest["config"]["digest"].as_str().unwrap());
    (manifest, config)
}

fn assert_clean(layout: &Path) {
    ocikit()
        .args(["validate", "--deep", "--strict"])
        .arg(layout)
        .assert()
        .success();
}

#[test]
fn the_same_inputs_give_the_same_digest_on_any_thread_count_and_after_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    let r = root.display().to_string();
    for compression in ["gzip", "zstd", "none"] {
        let args = [
            "--layer",
            &r,
            "--platform",
            "linux/amd64",
            "--compression",
            compression,
            "--cmd",
            "/usr/bin/app",
        ];
        let one = dir.path().join(format!("one-{compression}"));
        let two = dir.path().join(format!("elsewhere/two-{compression}"));
        let a = build(&format!("{}:app", one.display()), &args, "1");
        let b = build(&format!("{}:app", two.display()), &args, "2");
        assert_eq!(a, b, "{compression}: 1 thread vs 2, another layout path");
        // Reading every file (and setting an access time) changes nothing.
        for entry in walkdir::WalkDir::new(&root)
            .into_iter()
            .filter_map(|e| e.ok())
        {
            if entry.file_type().is_file() {
                let _ = std::fs::read(entry.path()).unwrap();
            }
        }
        let file = std::fs::File::open(root.join("usr/big.log")).unwrap();
        file.set_times(
            std::fs::FileTimes::new()
                .set_accessed(std::time::SystemTime::now() + std::time::Duration::from_secs(9)),
        )
        .unwrap();
        let c = build(&format!("{}:again", one.display()), &args, "2");
        assert_eq!(a, c, "{compression}: after the files were read");
        assert_clean(&one);
    }
}

#[test]
fn a_directory_layer_is_what_the_directory_holds() {
    let (dir, root, layout, digest) = build_tree(&["--platform", "linux/arm64/v8"]);
    let (manifest, config) = documents(&layout, &digest);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        (&config["os"], &config["architecture"], &config["variant"]),
        (&"linux".into(), &"arm64".into(), &"v8".into())
    );
    assert_eq!(config["history"].as_array().unwrap().len(), 1);
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let blob = blob_bytes(&layout, layer["digest"].as_str().unwrap());
    // gunzip and pigz read the multi-block gzip, and the tar is the diff_id.
    let tar = dir.path().join("layer.tar");
    for tool in ["gzip", "pigz"] {
        if !tool_available(tool) {
            continue;
        }
        let gz = dir.path().join("layer.gz");
        std::fs::write(&gz, &blob).unwrap();
        run(
            "sh",
            &[
                "-c",
                &format!("{tool} -dc {} > {}", gz.display(), tar.display()),
            ],
        );
        let plain = std::fs::read(&tar).unwrap();
        let diff_id = format!("sha256:{}", sha256_hex(&plain));
        assert_eq!(config["rootfs"]["diff_ids"][0], diff_id.as_str(), "{tool}");
    }
    // The tar's listing, as GNU tar reads it: sorted, owners kept, mtimes clamped, links kept.
    let listing = run(
        "tar",
        &[
            "--numeric-owner",
            "--full-time",
            "-tvf",
            &tar.display().to_string(),
        ],
    );
    assert!(
        listing.lines().all(|l| l.contains("2023-11-14 22:13:20")),
        "{listing}"
    );
    assert!(
        listing.contains("usr/bin/app-hard link to usr/bin/app"),
        "{listing}"
    );
    assert!(
        listing.contains("etc/app-link -> ../usr/bin/app"),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('p') && l.ends_with("run-fifo")),
        "{listing}"
    );
    assert!(listing.contains("file-with-a-long-name.txt"), "{listing}");
    let uid = std::fs::metadata(&root).unwrap().uid();
    assert!(
        listing.lines().all(|l| l.contains(&format!(" {uid}/"))),
        "{listing}"
    );
    assert_clean(&layout);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn owners_can_be_forced_and_config_flags_land_in_the_config() {
    let (dir, _root, layout, digest) = build_tree(&[
        "--owner",
        "0:0",
        "--platform",
        "linux/amd64",
        "--entrypoint",
        r#"["/usr/bin/app","--serve"]"#,
        "--cmd",
        "echo ready",
        "--env",
        "PATH=/usr/bin",
        "--env",
        "MODE=prod",
        "--label",
        "team=core",
        "--workdir",
        "/srv",
        "--user",
        "1000:1000",
        "--expose",
        "8080",
        "--expose",
        "53/udp",
        "--volume",
        "/data",
        "--stop-signal",
        "SIGINT",
        "--annotation",
        "com.example.x=1",
        "--config-annotation",
        "com.example.c=2",
    ]);
    let (manifest, config) = documents(&layout, &digest);
    let c = &config["config"];
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/usr/bin/app", "--serve"])
    );
    assert_eq!(c["Cmd"], serde_json::json!(["/bin/sh", "-c", "echo ready"]));
    assert_eq!(c["Env"], serde_json::json!(["PATH=/usr/bin", "MODE=prod"]));
    assert_eq!(c["Labels"]["team"], "core");
    assert_eq!(
        (&c["WorkingDir"], &c["User"], &c["StopSignal"]),
        (&"/srv".into(), &"1000:1000".into(), &"SIGINT".into())
    );
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(manifest["annotations"]["com.example.x"], "1");
    assert_eq!(manifest["config"]["annotations"]["com.example.c"], "2");
    let layer = blob_bytes(&layout, manifest["layers"][0]["digest"].as_str().unwrap());
    let tar = decompress_gzip(&layer);
    let listing = tar_listing(dir.path(), &tar);
    assert!(listing.lines().all(|l| l.contains(" 0/0 ")), "{listing}");
    assert_clean(&layout);
}

fn decompress_gzip(blob: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(blob)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn tar_listing(dir: &Path, tar: &[u8]) -> String {
    let file = dir.join("listing.tar");
    std::fs::write(&file, tar).unwrap();
    run(
        "tar",
        &["--numeric-owner", "-tvf", &file.display().to_string()],
    )
}

#[test]
fn tars_are_kept_as_they_are_unless_recompression_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    let tgz = dir.path().join("layer.tar.gz");
    let plain = dir.path().join("layer.tar");
    run(
        "tar",
        &[
            "-C",
            &root.display().to_string(),
            "-cf",
            &plain.display().to_string(),
            ".",
        ],
    );
    run(
        "sh",
        &[
            "-c",
            &format!("gzip -c {} > {}", plain.display(), tgz.display()),
        ],
    );
    let layout = dir.path().join("out");
    let l = layout.display().to_string();
    let kept = build(
        &format!("{l}:kept"),
        &[
            "--layer",
            &tgz.display().to_string(),
            "--layer",
            &plain.display().to_string(),
        ],
        "2",
    );
    let (manifest, config) = documents(&layout, &kept);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers[0]["digest"],
        format!("sha256:{}", sha256_hex(&std::fs::read(&tgz).unwrap()))
    );
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        layers[1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    let diff_id = format!("sha256:{}", sha256_hex(&std::fs::read(&plain).unwrap()));
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([diff_id, diff_id])
    );

    let zstd = build(
        &format!("{l}:zstd"),
        &[
            "--layer",
            &tgz.display().to_string(),
            "--compression",
            "zstd",
        ],
        "1",
    );
    let (manifest, config) = documents(&layout, &zstd);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(config["rootfs"]["diff_ids"][0], diff_id.as_str());
    assert_clean(&layout);
}

#[test]
fn a_base_from_a_layout_or_an_archive_is_inherited() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    let base = dir.path().join("base");
    let b = base.display().to_string();
    let base_digest = build(
        &format!("{b}:debian"),
        &[
            "--layer",
            &root.display().to_string(),
            "--platform",
            "linux/amd64",
            "--env",
            "PATH=/bin",
            "--cmd",
            "sh",
        ],
        "2",
    );
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(extra.join("opt")).unwrap();
    std::fs::write(extra.join("opt/tool"), "tool\n").unwrap();
    let archive = dir.path().join("base.tar");
    run(
        "tar",
        &["-C", &b, "-cf", &archive.display().to_string(), "."],
    );
    let target = dir.path().join("out");
    let t = target.display().to_string();
    for (name, base_ref) in [
        ("from-dir", format!("{b}:debian")),
        ("from-archive", format!("{}:debian", archive.display())),
    ] {
        let digest = build(
            &format!("{t}:{name}"),
            &[
                "--base",
                &base_ref,
                "--layer",
                &extra.display().to_string(),
                "--env",
                "PATH=/opt",
                "--entrypoint",
                "/opt/tool",
            ],
            "2",
        );
        let (manifest, config) = documents(&target, &digest);
        let (base_manifest, _) = documents(&base, &base_digest);
        assert_eq!(manifest["layers"][0], base_manifest["layers"][0], "{name}");
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.base.digest"],
            base_digest.as_str()
        );
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.base.name"],
            "debian"
        );
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
        assert_eq!(config["architecture"], "amd64", "the base's platform");
        assert_eq!(config["config"]["Env"], serde_json::json!(["PATH=/opt"]));
        assert!(
            config["config"].get("Cmd").is_none(),
            "an entrypoint drops the base's Cmd"
        );
    }
    // From the directory the base layer was hard-linked, not copied.
    let (base_manifest, _) = documents(&base, &base_digest);
    let layer = base_manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .replace(':', "/");
    let inode = |l: &Path| {
        std::fs::metadata(l.join("blobs").join(&layer))
            .unwrap()
            .ino()
    };
    assert_eq!(inode(&base), inode(&target));
    assert_clean(&target);
}

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    let layout = dir.path().join("out");
    let l = layout.display().to_string();
    build(
        &format!("{l}:app"),
        &["--layer", &root.display().to_string()],
        "1",
    );
    let (index_before, blobs_before) = (index_bytes(&layout), blob_names(&layout));
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a tar").unwrap();
    let with_device = dir.path().join("dev");
    std::fs::create_dir(&with_device).unwrap();
    let device = with_device.join("null");
    let made_device = std::process::Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    let r = root.display().to_string();
    let mut cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![
                format!("{l}:x"),
                "--layer".into(),
                dir.path().join("missing").display().to_string(),
            ],
            "does not exist".into(),
        ),
        (
            vec![
                format!("{l}:x"),
                "--layer".into(),
                text.display().to_string(),
            ],
            "notes.txt".into(),
        ),
        (
            vec![l.clone(), "--layer".into(), r.clone()],
            "LAYOUT:NAME".into(),
        ),
        (
            vec![
                format!("{l}:x"),
                "--layer".into(),
                r.clone(),
                "--expose".into(),
                "http".into(),
            ],
            "port".into(),
        ),
        (
            vec![
                format!("{l}:x"),
                "--layer".into(),
                r.clone(),
                "--level".into(),
                "12".into(),
            ],
            "compression level".into(),
        ),
        (
            vec![
                format!("{l}:x"),
                "--layer".into(),
                r.clone(),
                "--base".into(),
                format!("{l}:nothing"),
            ],
            "nothing".into(),
        ),
        (
            vec![
                format!("{l}:sha256-{}", "a".repeat(64)),
                "--layer".into(),
                r.clone(),
            ],
            "fallback".into(),
        ),
        (
            vec![
                format!("{l}:x"),
                "--layer".into(),
                r.clone(),
                "--env".into(),
                "=x".into(),
            ],
            "KEY=VALUE".into(),
        ),
    ];
    if made_device {
        cases.push((
            vec![
                format!("{l}:x"),
                "--layer".into(),
                with_device.display().to_string(),
            ],
            "--devices".into(),
        ));
    }
    for (args, expected) in cases {
        let out = ocikit()
            .args(["image", "build"])
            .args(&args)
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
        assert_eq!(index_bytes(&layout), index_before, "{args:?}");
        assert_eq!(blob_names(&layout), blobs_before, "{args:?}");
    }
    if made_device {
        build(
            &format!("{l}:dev"),
            &["--layer", &with_device.display().to_string(), "--devices"],
            "1",
        );
    }
}

#[test]
fn sockets_are_left_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("file"), "x").unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    let out = ocikit()
        .args(["image", "build"])
        .arg(format!("{}:app", dir.path().join("out").display()))
        .arg("--layer")
        .arg(&root)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("warning: left out the socket") && stderr.contains("sock"),
        "{stderr}"
    );
}

// ---- image index ----

/// A layout with images for three platforms (two linux/amd64); returns their digests.
fn platforms_layout(dir: &Path) -> (PathBuf, BTreeMap<&'static str, String>) {
    let root = dir.join("content");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("f"), "x").unwrap();
    let layout = dir.join("multi");
    let l = layout.display().to_string();
    let mut digests = BTreeMap::new();
    for (name, platform) in [
        ("amd", "linux/amd64"),
        ("arm", "linux/arm64/v8"),
        ("amd2", "linux/amd64"),
    ] {
        let args = [
            "--layer",
            &root.display().to_string(),
            "--platform",
            platform,
            "--label",
            &format!("n={name}"),
        ];
        digests.insert(name, build(&format!("{l}:{name}"), &args, "1"));
    }
    (layout, digests)
}

/// `ocikit image index LAYOUT:NAME ARGS…`, and its output.
fn image_index(layout: &Path, name: &str, args: &[&str]) -> assert_cmd::assert::Assert {
    ocikit()
        .args(["image", "index", &format!("{}:{name}", layout.display())])
        .args(args)
        .assert()
}

/// The digests a new index lists, in order, the index, and its digest.
fn index_entries(layout: &Path, out: assert_cmd::assert::Assert) -> (Vec<String>, Value, String) {
    let digest = trimmed_stdout(&out.success());
    let index = json_blob(layout, &digest);
    let digests = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    (digests, index, digest)
}

#[test]
fn an_index_lists_members_in_order_with_their_platforms() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, d) = platforms_layout(dir.path());
    let by_digest = format!("@{}", d["amd"]);
    let out = image_index(&layout, "all", &["arm", &by_digest, "--annotation", "k=v"]);
    let (digests, index, digest) = index_entries(&layout, out);
    assert_eq!(digests, [d["arm"].clone(), d["amd"].clone()]);
    assert_eq!(
        index["manifests"][0]["platform"],
        serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
    );
    assert_eq!(index["annotations"]["k"], "v");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    // The same members give the same index.
    let again = image_index(&layout, "same", &["arm", "amd", "--annotation", "k=v"]);
    assert_eq!(trimmed_stdout(&again.success()), digest);

    // Two linux/amd64 members: refused, unless allowed.
    let out = image_index(&layout, "dup", &["amd", "amd2"]).code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("linux/amd64") && stderr.contains("--allow-duplicate-platforms"),
        "{stderr}"
    );
    image_index(
        &layout,
        "dup",
        &["amd", "amd2", "--allow-duplicate-platforms"],
    )
    .success();

    // An index is not a member; neither is a name that does not exist.
    for bad in ["all", "missing"] {
        image_index(&layout, "bad", &[bad]).code(2);
    }
    assert_clean(&layout);
}

#[test]
fn an_index_is_derived_by_adding_and_removing_members() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, d) = platforms_layout(dir.path());
    let first = image_index(&layout, "app", &["amd", "-a", "keep=me"]);
    let first = trimmed_stdout(&first.success());
    let (digests, index, _) =
        index_entries(&layout, image_index(&layout, "app", &["--add", "arm"]));
    assert_eq!(digests, [d["amd"].clone(), d["arm"].clone()]);
    assert_eq!(index["annotations"]["keep"], "me");
    let swapped = image_index(&layout, "app", &["--remove", "amd", "--add", "amd2"]);
    let (digests, _, _) = index_entries(&layout, swapped);
    assert_eq!(digests, [d["arm"].clone(), d["amd2"].clone()]);
    // The name moved each time; the old indexes stay until gc.
    assert!(layout.join("blobs").join(first.replace(':', "/")).exists());
    // Removing what is not listed, and deriving from an image, are errors.
    image_index(&layout, "app", &["--remove", "amd"]).code(2);
    image_index(&layout, "amd", &["--add", "arm"]).code(2);
    assert_clean(&layout);
}

// ---- interop ----

#[test]
fn skopeo_and_umoci_read_what_image_build_and_index_wrote() {
    if !tool_available("skopeo") || !tool_available("umoci") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    // umoci cannot make FIFOs in every sandbox; the tree comparison covers the rest.
    std::fs::remove_file(root.join("run-fifo")).unwrap();
    let layout = dir.path().join("out");
    let l = layout.display().to_string();
    for (name, compression) in [("gz", "gzip"), ("zst", "zstd"), ("tar", "none")] {
        build(
            &format!("{l}:{name}"),
            &[
                "--layer",
                &root.display().to_string(),
                "--compression",
                compression,
                "--platform",
                "linux/amd64",
                "--cmd",
                "/usr/bin/app",
            ],
            "2",
        );
    }
    build(
        &format!("{l}:arm"),
        &[
            "--layer",
            &root.display().to_string(),
            "--platform",
            "linux/arm64",
        ],
        "2",
    );
    ocikit()
        .args(["image", "index", &format!("{l}:multi"), "gz", "arm"])
        .assert()
        .success();

    // skopeo copies the image out (verifying every blob) and inspects the index.
    let copy = dir.path().join("copy");
    skopeo(&[
        "copy",
        &format!("oci:{l}:gz"),
        &format!("oci:{}:gz", copy.display()),
    ]);
    skopeo(&[
        "copy",
        "--all",
        &format!("oci:{l}:multi"),
        &format!("oci:{}:multi", copy.display()),
    ]);
    let raw: Value =
        serde_json::from_str(&skopeo(&["inspect", "--raw", &format!("oci:{l}:multi")])).unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    let inspected: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--override-arch",
        "arm64",
        &format!("oci:{l}:multi"),
    ]))
    .unwrap();
    assert_eq!(inspected["Architecture"], "arm64");
    // skopeo's own index.json has no mediaType (a warning); nothing else to report.
    assert_deep_valid(&copy);

    // umoci unpacks the tree the directory holds, from gzip and plain layers (umoci 0.4.7
    // reads no zstd layers).
    for name in ["gz", "tar"] {
        let bundle = dir.path().join(format!("bundle-{name}"));
        run(
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{l}:{name}"),
                &bundle.display().to_string(),
            ],
        );
        assert_same_tree(&root, &bundle.join("rootfs"), 1_700_000_000);
    }
    assert_clean(&layout);
}

/// What a tree holds, path by path: type, mode, size, content hash, link target, and mtime for
/// files and links (clamped to `clamp`).
pub(crate) fn describe(root: &Path, clamp: i64) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let relative = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .display()
            .to_string();
        let kind = meta.file_type();
        let what = if kind.is_dir() {
            format!("dir {:o}", meta.mode() & 0o7777)
        } else if kind.is_symlink() {
            format!(
                "link -> {} mtime {}",
                std::fs::read_link(entry.path()).unwrap().display(),
                meta.mtime().min(clamp)
            )
        } else {
            format!(
                "file {:o} {} bytes sha256 {} links {} mtime {}",
                meta.mode() & 0o7777,
                meta.len(),
                sha256_hex(&std::fs::read(entry.path()).unwrap()),
                meta.nlink(),
                meta.mtime().min(clamp)
            )
        };
        out.insert(relative, what);
    }
    out
}

/// The unpacked tree must be the source's, with mtimes clamped (its own are taken as they are).
pub(crate) fn assert_same_tree(source: &Path, unpacked: &Path, clamp: i64) {
    let (want, got) = (describe(source, clamp), describe(unpacked, i64::MAX));
    for (path, what) in &want {
        assert_eq!(got.get(path), Some(what), "{path}");
    }
    assert_eq!(
        want.len(),
        got.len(),
        "{:?}",
        got.keys()
            .filter(|k| !want.contains_key(*k))
            .collect::<Vec<_>>()
    );
}
