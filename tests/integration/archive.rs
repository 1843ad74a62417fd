//! Layout archives (`.tar`, `.tar.gz`/`.tgz`, `.tar.zst`) read in place by `ls`, `inspect` and
//! `cat`, packed with the system `tar` and `zstd` as users pack them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocikit::store::layout::{Layout, LayoutRead};
use serde_json::{json, Value};

use crate::helpers::{init, ocikit};

/// A layout with one image named `v1`, and the bytes and digests to check against.
struct Image {
    dir: tempfile::TempDir,
    layout: PathBuf,
    manifest: Vec<u8>,
    manifest_digest: String,
    layer: Vec<u8>,
    layer_digest: String,
}

/// Bytes that do not compress to nothing, so a compressed archive is read past its cache.
fn layer_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect()
}

/// Builds the layout with `ocikit init` and the library: a config, one layer of 1.5 MiB (more
/// than a compressed archive keeps in memory), a manifest, and an `index.json` entry `v1`.
fn image() -> Image {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    init(&root);
    let layout = Layout::open(&root).unwrap();
    let writer = layout.writer().unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config = writer.write_blob_bytes(config).unwrap();
    let layer = layer_bytes(1536 * 1024);
    let layer_blob = writer.write_blob_bytes(&layer).unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.digest.to_string(),
            "size": config.size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_blob.digest.to_string(),
            "size": layer_blob.size,
        }],
    }))
    .unwrap();
    let manifest_blob = writer.write_blob_bytes(&manifest).unwrap();
    let entry = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_blob.digest.to_string(),
        "size": manifest_blob.size,
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    });
    writer
        .update_index(|index| index.push_raw(entry).map(|()| ((), true)))
        .unwrap();
    drop(writer);
    assert_eq!(layout.index().unwrap().entries().len(), 1);
    Image {
        layout: root,
        dir,
        manifest,
        manifest_digest: manifest_blob.digest.to_string(),
        layer,
        layer_digest: layer_blob.digest.to_string(),
    }
}

fn run(command: &mut Command) {
    let status = command.status().unwrap();
    assert!(status.success(), "{command:?} failed: {status}");
}

/// The layout packed as `name` with GNU tar (and zstd): `.tar`, `.tgz` or `.tar.zst`.
fn pack(image: &Image, name: &str) -> PathBuf {
    let out = image.dir.path().join(name);
    if name.ends_with(".tar.zst") {
        run(Command::new("sh")
            .arg("-c")
            .arg(r#"set -e; tar -C "$1" -cf - . | zstd -q -o "$2""#)
            .arg("sh")
            .arg(&image.layout)
            .arg(&out));
    } else {
        let flags = if name.ends_with(".tgz") {
            "-czf"
        } else {
            "-cf"
        };
        run(Command::new("tar")
            .arg("-C")
            .arg(&image.layout)
            .arg(flags)
            .arg(&out)
            .arg("."));
    }
    out
}

/// The image packed in each supported way.
fn archives(image: &Image) -> Vec<PathBuf> {
    ["x.tar", "x.tgz", "x.tar.zst"]
        .into_iter()
        .map(|name| pack(image, name))
        .collect()
}

fn stdout_of(args: &[&str]) -> Vec<u8> {
    ocikit()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone()
}

/// Like [`stdout_of`], with `$TMPDIR` pointing nowhere: proves that the command wrote no temp
/// file (a compressed archive's documents are served from memory).
fn stdout_without_temp_files(args: &[&str]) -> Vec<u8> {
    ocikit()
        .args(args)
        .env("TMPDIR", "/nonexistent/ocikit-test-no-tmp")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone()
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn ls_lists_the_images_of_a_plain_gzip_or_zstd_archive() {
    let image = image();
    for archive in archives(&image) {
        let listing =
            String::from_utf8(stdout_without_temp_files(&["ls", &text(&archive)])).unwrap();
        assert!(listing.contains("v1"), "{}: {listing}", archive.display());

        let json: Value =
            serde_json::from_slice(&stdout_of(&["ls", "--json", &text(&archive)])).unwrap();
        let rows = json["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{json}");
        assert_eq!(rows[0]["name"], "v1");
        assert_eq!(rows[0]["digest"], image.manifest_digest.as_str());
        assert!(rows[0].get("problem").is_none(), "{json}");
    }
}

#[test]
fn inspect_reads_a_named_image_out_of_each_archive() {
    let image = image();
    for archive in archives(&image) {
        let reference = format!("{}:v1", archive.display());
        let summary =
            String::from_utf8(stdout_without_temp_files(&["inspect", &reference])).unwrap();
        assert!(
            summary.contains(&image.manifest_digest),
            "{reference}: {summary}"
        );
        let layer_hex = image.layer_digest.trim_start_matches("sha256:");
        assert!(summary.contains(&layer_hex[..12]), "{reference}: {summary}");
    }
}

#[test]
fn inspect_raw_prints_the_manifest_bytes_exactly_as_stored_in_the_archive() {
    let image = image();
    for archive in archives(&image) {
        let reference = format!("{}:v1", archive.display());
        assert_eq!(
            stdout_without_temp_files(&["inspect", "--raw", &reference]),
            image.manifest
        );
    }
}

#[test]
fn cat_streams_a_layer_out_of_each_archive_byte_for_byte() {
    let image = image();
    for archive in archives(&image) {
        let reference = format!("{}@{}", archive.display(), image.layer_digest);
        let bytes = stdout_of(&["cat", &reference]);
        assert!(bytes == image.layer, "{reference}: the bytes differ");
    }
}

#[test]
fn cat_of_a_large_layer_from_a_compressed_archive_decompresses_it_to_a_temp_file() {
    let image = image();
    let archive = pack(&image, "x.tar.zst");
    let out = ocikit()
        .arg("cat")
        .arg(format!("{}@{}", archive.display(), image.layer_digest))
        .env("TMPDIR", "/nonexistent/ocikit-test-no-tmp")
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("temp file"), "{stderr}");
    assert!(stderr.contains(&text(&archive)), "{stderr}");
}

#[test]
fn the_oci_archive_prefix_reads_an_archive() {
    let image = image();
    let archive = pack(&image, "x.tar.zst");
    let raw = stdout_of(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:v1", archive.display()),
    ]);
    assert_eq!(raw, image.manifest);
    let layer = stdout_of(&[
        "cat",
        &format!("oci-archive:{}@{}", archive.display(), image.layer_digest),
    ]);
    assert!(layer == image.layer, "the layer's bytes differ");
    let json: Value = serde_json::from_slice(&stdout_of(&[
        "ls",
        "--json",
        &format!("oci-archive:{}", archive.display()),
    ]))
    .unwrap();
    assert_eq!(json["rows"][0]["name"], "v1");
}

#[test]
fn a_layout_packed_with_its_directory_is_read_from_inside_that_directory() {
    let image = image();
    let archive = image.dir.path().join("dir.tgz");
    run(Command::new("tar")
        .arg("-C")
        .arg(image.dir.path())
        .arg("-czf")
        .arg(&archive)
        .arg("layout"));
    let raw = stdout_of(&["inspect", "--raw", &format!("{}:v1", archive.display())]);
    assert_eq!(raw, image.manifest);
}

#[test]
fn a_corrupt_archive_fails_with_status_2_and_a_message_naming_it() {
    let image = image();
    let tgz = pack(&image, "x.tgz");
    let bytes = fs::read(&tgz).unwrap();
    let truncated = image.dir.path().join("truncated.tgz");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = image.dir.path().join("garbage.tar");
    fs::write(&garbage, "this is not a tar archive\n".repeat(40)).unwrap();
    let zeros = image.dir.path().join("zeros.tar.zst");
    fs::write(&zeros, [0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]).unwrap();
    for archive in [&truncated, &garbage, &zeros] {
        for args in [
            vec!["ls".to_string(), text(archive)],
            vec!["inspect".to_string(), format!("{}:v1", archive.display())],
        ] {
            let out = ocikit().args(&args).assert().code(2).get_output().clone();
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert!(
                stderr.contains(&format!("archive {}", archive.display())),
                "{args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn a_blob_missing_from_an_archive_is_reported_as_missing() {
    let image = image();
    let archive = pack(&image, "x.tar");
    let absent = ocikit::Digest::sha256_of(b"absent");
    let out = ocikit()
        .arg("cat")
        .arg(format!("{}@{absent}", archive.display()))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("missing"), "{stderr}");
}

#[test]
fn an_old_docker_save_archive_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    fs::create_dir(&content).unwrap();
    fs::write(
        content.join("manifest.json"),
        r#"[{"Config":"c.json","Layers":[]}]"#,
    )
    .unwrap();
    fs::write(content.join("c.json"), "{}").unwrap();
    let archive = dir.path().join("docker.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&content)
        .arg("-cf")
        .arg(&archive)
        .arg("."));
    let out = ocikit()
        .arg("ls")
        .arg(&archive)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("docker save"), "{stderr}");
    assert!(
        stderr.contains("not an OCI image layout archive"),
        "{stderr}"
    );
    // The hint names the command that reads it, now that there is one.
    assert!(
        stderr.contains("hint: import it into a layout first: ocikit import FILE LAYOUT"),
        "{stderr}"
    );
}

/// The stderr of `ocikit ARGS ARCHIVE`, which must fail with status 2.
fn refusal(args: &[&str], archive: &Path) -> String {
    let out = ocikit()
        .args(args)
        .arg(archive)
        .assert()
        .code(2)
        .get_output()
        .clone();
    String::from_utf8(out.stderr).unwrap()
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB of zeros after `prefix` (stored raw): about
/// 4 compressed bytes per 128 KiB, as a decompression bomb is made.
fn zstd_rle_bomb(prefix: &[u8], blocks: u64) -> Vec<u8> {
    const BLOCK: u32 = 128 * 1024;
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3]; // no content size, 128 KiB window
    out.extend_from_slice(&((prefix.len() as u32) << 3).to_le_bytes()[..3]); // a raw block
    out.extend_from_slice(prefix);
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        out.extend_from_slice(&(last | 1 << 1 | BLOCK << 3).to_le_bytes()[..3]); // RLE
        out.push(0);
    }
    out
}

/// A tar header for a regular file `name` of `size` bytes (base-256 size, as GNU tar writes
/// sizes of 8 GiB and more).
fn big_file_header(name: &str, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).unwrap();
    header.set_mode(0o644);
    header.set_size(size);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header.as_bytes().to_vec()
}

#[test]
fn a_small_tar_zst_that_expands_to_400_gib_fails_fast_naming_the_limit_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.tar.zst");
    let size = 400u64 << 30;
    fs::write(
        &bomb,
        zstd_rle_bomb(&big_file_header("zeros", size), size / (128 * 1024)),
    )
    .unwrap();
    assert!(fs::metadata(&bomb).unwrap().len() < 14_000_000);
    let started = std::time::Instant::now();
    for command in ["ls", "validate"] {
        let stderr = refusal(&[command], &bomb);
        assert!(
            stderr.contains(&format!("archive {}", bomb.display())),
            "{stderr}"
        );
        assert!(
            stderr.contains("a ratio above the limit of 1000:1"),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint: if you trust this input, raise the limit with --max-ratio"),
            "{stderr}"
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "it took {:?}",
        started.elapsed()
    );
    // Raised, the next limit stops it, and says so.
    let stderr = refusal(
        &["ls", "--max-ratio", "100000000", "--max-uncompressed", "1G"],
        &bomb,
    );
    assert!(stderr.contains("expands beyond 1 GiB"), "{stderr}");
    assert!(stderr.contains("--max-uncompressed SIZE"), "{stderr}");
}

#[test]
fn an_archive_cut_on_a_header_boundary_is_truncated_not_complete() {
    let image = image();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", &image.layout).unwrap();
    let mut bytes = builder.into_inner().unwrap();
    bytes.truncate(bytes.len() - 1024); // the end-of-archive marker
    assert!(bytes.len().is_multiple_of(512));
    let zstd = zstd::stream::encode_all(&bytes[..], 3).unwrap();
    for (name, bytes) in [("cut.tar", bytes), ("cut.tar.zst", zstd)] {
        let path = image.dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        for command in ["ls", "validate"] {
            let stderr = refusal(&[command], &path);
            assert!(
                stderr.contains("the archive is truncated: it ends between two entries without the end-of-archive marker"),
                "{name} {command}: {stderr}"
            );
        }
    }
}
