//! `ocikit bundle create|verify`: bundles that verify with coreutils and OpenSSH alone, one
//! id for the same content as a directory or an archive, tampering caught, skopeo reads them.

use std::fs;
use std::path::Path;

use predicates::prelude::PredicateBooleanExt;
use serde_json::Value;

use crate::helpers::{ocikit, ocikit_json, sample_layout, tool_available, trimmed_stdout};
use crate::producers::{run, skopeo};

/// The sample's two images with a referrer, as `--image` arguments.
fn images() -> Vec<String> {
    let s = sample_layout().display().to_string();
    vec![format!("{s}:app:gzip"), format!("{s}:app:multi")]
}

/// `bundle create OUT --image …` with SOURCE_DATE_EPOCH fixed; returns the printed id.
fn create(out: &Path, extra: &[&str]) -> String {
    let assert = ocikit()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["bundle", "create"])
        .arg(out)
        .arg("--image")
        .args(images())
        .args(extra)
        .assert()
        .success();
    trimmed_stdout(&assert)
}

/// `bundle verify ARGS`: exit code and stdout.
fn verify(args: &[&str]) -> (i32, String) {
    let out = ocikit()
        .args(["bundle", "verify"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

fn sha256_hex(path: &Path) -> String {
    let out = run("sha256sum", &[path.to_str().unwrap()]);
    out.split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_directory_bundle_is_described_listed_and_checked_by_sha256sum() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let id = create(&out, &[]);
    // The id is the sha256 of SHA256SUMS.
    assert_eq!(
        id,
        format!("sha256:{}", sha256_hex(&out.join("SHA256SUMS")))
    );
    // GNU format, sorted bytewise, LF, every file but itself.
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let paths: Vec<&str> = sums.lines().map(|l| &l[66..]).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(sums.lines().all(|l| l.as_bytes()[64..66] == *b"  "));
    for file in ["oci-layout", "index.json", "ocikit-bundle.json"] {
        assert!(paths.contains(&file), "{file} is listed");
    }
    assert!(!paths.contains(&"SHA256SUMS"));
    let blobs = fs::read_dir(out.join("blobs/sha256")).unwrap().count();
    assert_eq!(paths.len(), blobs + 3);
    // coreutils alone verifies it.
    let status = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&out)
        .status()
        .unwrap();
    assert!(status.success());
    // The description.
    let description: Value =
        serde_json::from_slice(&fs::read(out.join("ocikit-bundle.json")).unwrap()).unwrap();
    assert_eq!(description["schemaVersion"], 1);
    assert_eq!(description["created"], "2023-11-14T22:13:20Z");
    assert_eq!(description["tool"]["name"], "ocikit");
    assert_eq!(description["minReaderVersion"], "0.1.0");
    let listed = &description["images"];
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["name"], "app:gzip");
    assert_eq!(listed[0]["referrers"].as_array().unwrap().len(), 1);
    assert_eq!(
        listed[0]["referrers"][0]["artifactType"],
        "application/spdx+json"
    );
    assert_eq!(
        listed[1]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
    assert_eq!(description["totals"]["images"], 2);
    assert_eq!(description["totals"]["referrers"], 1);
    assert_eq!(description["totals"]["blobs"], blobs);
    // Both name annotations hold the full name.
    let index: Value = serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    let named: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"] == "app:gzip")
        .collect();
    assert_eq!(named.len(), 1);
    assert_eq!(
        named[0]["annotations"]["io.containerd.image.name"],
        "app:gzip"
    );
    // ocikit verifies it, and says so in its last line.
    let (code, stdout) = verify(&[out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("verified {} files, ", blobs + 3)) && last.ends_with(&id),
        "{last}"
    );
    crate::copy::assert_valid(&out);
}

#[test]
fn an_archive_bundle_starts_with_its_list_and_has_the_directory_bundles_id() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("b.tar.zst");
    let d = dir.path().join("b");
    let archive_id = create(&a, &[]);
    assert_eq!(create(&d, &[]), archive_id, "the same content, the same id");
    let again = dir.path().join("again.tar.zst");
    assert_eq!(create(&again, &[]), archive_id);
    assert!(
        fs::read(&again).unwrap() == fs::read(&a).unwrap(),
        "the same images give the same archive bytes"
    );
    let plain = dir.path().join("b.tar");
    fs::write(
        &plain,
        zstd::decode_all(fs::File::open(&a).unwrap()).unwrap(),
    )
    .unwrap();
    let listing = run("tar", &["-tf", plain.to_str().unwrap()]);
    let first: Vec<&str> = listing.lines().take(3).collect();
    assert_eq!(first, ["oci-layout", "ocikit-bundle.json", "SHA256SUMS"]);
    for bundle in [&a, &plain] {
        let (code, stdout) = verify(&[bundle.to_str().unwrap()]);
        assert_eq!(code, 0, "{stdout}");
        assert!(stdout.trim_end().ends_with(&archive_id), "{stdout}");
    }
    let report = ocikit_json(["bundle", "verify", a.to_str().unwrap(), "--json"]);
    assert_eq!(report["bundle"], archive_id.as_str());
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["signature"]["status"], "absent");
    assert_eq!(report["images"], 2);
}

#[test]
fn tampering_fails_verification_with_exit_1_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    create(&out, &[]);
    let b = out.to_str().unwrap();
    // A layer changed in place (same size).
    let manifest = ocikit_json(["inspect", &images()[0], "--raw"]);
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer = out.join("blobs/sha256").join(&digest[7..]);
    let mut bytes = fs::read(&layer).unwrap();
    bytes[10] ^= 0xff;
    fs::remove_file(&layer).unwrap(); // it may be a hard link to the sample's blob
    fs::write(&layer, &bytes).unwrap();
    let (code, stdout) = verify(&[b]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("has changed"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("FAILED: 1 problem"),
        "{stdout}"
    );
    // A file nobody listed, and a listed one missing.
    fs::write(out.join("extra"), b"x").unwrap();
    fs::remove_file(out.join("ocikit-bundle.json")).unwrap();
    let (code, stdout) = verify(&[b]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("extra is not listed in SHA256SUMS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ocikit-bundle.json is listed in SHA256SUMS and missing"),
        "{stdout}"
    );
    // Not a bundle at all: could not run.
    let (code, _) = verify(&[sample_layout().to_str().unwrap()]);
    assert_eq!(code, 2);
}

#[test]
fn a_bundle_is_never_written_over_an_existing_path() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["d", "a.tar"] {
        let out = dir.path().join(name);
        fs::create_dir(&out).unwrap();
        ocikit()
            .args(["bundle", "create"])
            .arg(&out)
            .arg("--image")
            .args(images())
            .assert()
            .code(2)
            .stderr(predicates::str::contains("exists"));
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
    }
    assert_eq!(
        crate::helpers::temp_files(dir.path()),
        Vec::<String>::new(),
        "no temp left"
    );
}

#[test]
fn images_from_a_file_and_names_from_different_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("images.txt");
    fs::write(
        &list,
        format!("# the app\n{}\n\n{}\n", images()[0], images()[1]),
    )
    .unwrap();
    let out = dir.path().join("b");
    ocikit()
        .args(["bundle", "create"])
        .arg(&out)
        .arg("--images-from")
        .arg(&list)
        .assert()
        .success();
    let description: Value =
        serde_json::from_slice(&fs::read(out.join("ocikit-bundle.json")).unwrap()).unwrap();
    assert_eq!(description["images"].as_array().unwrap().len(), 2);

    // Images from two layouts, interleaved, each layout read once: the description keeps the
    // order given, and the same tag from two repositories is two names.
    let s = sample_layout().display().to_string();
    let other = dir.path().join("other");
    ocikit()
        .args(["copy", &format!("{s}:app:zstd")])
        .arg(format!("{}:example.com/other/app:gzip", other.display()))
        .assert()
        .success();
    let out = dir.path().join("mixed");
    ocikit()
        .args(["bundle", "create"])
        .arg(&out)
        .args(["--image", &format!("{s}:app:gzip")])
        .arg(format!("{}:example.com/other/app:gzip", other.display()))
        .arg(format!("{s}:app:multi"))
        .assert()
        .success();
    let description: Value =
        serde_json::from_slice(&fs::read(out.join("ocikit-bundle.json")).unwrap()).unwrap();
    let names: Vec<&str> = description["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["app:gzip", "example.com/other/app:gzip", "app:multi"]
    );
    let (code, stdout) = verify(&[out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn skopeo_reads_a_directory_bundle() {
    if !tool_available("skopeo") {
        eprintln!("skipped: skopeo cannot start");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    create(&out, &[]);
    let inspected = skopeo(&["inspect", &format!("oci:{}:app:gzip", out.display())]);
    let value: Value = serde_json::from_str(&inspected).unwrap();
    assert!(value["Digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:76e53c5a145d"));
    let copied = dir.path().join("copied");
    skopeo(&[
        "copy",
        &format!("oci:{}:app:gzip", out.display()),
        &format!("oci:{}:x", copied.display()),
    ]);
    crate::copy::assert_valid(&copied);
    let archive = dir.path().join("bundle.tar");
    create(&archive, &[]);
    let inspected = skopeo(&[
        "inspect",
        &format!("oci-archive:{}:app:gzip", archive.display()),
    ]);
    assert!(inspected.contains("sha256:76e53c5a145d"));
}

/// An ed25519 key made by ssh-keygen, and an allowed signers file naming it.
fn keys(dir: &Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    if !tool_available("ssh-keygen") {
        eprintln!("skipped: ssh-keygen cannot start");
        return None;
    }
    let key = dir.join("key");
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "release",
            "-f",
            key.to_str().unwrap(),
        ],
    );
    let public = fs::read_to_string(dir.join("key.pub")).unwrap();
    let allowed = dir.join("allowed_signers");
    fs::write(
        &allowed,
        format!("release@example.com namespaces=\"ocikit-bundle\" {public}"),
    )
    .unwrap();
    Some((key, allowed))
}

fn ssh_keygen_verify(allowed: &Path, signature: &Path, message: &Path) -> bool {
    std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", "release@example.com", "-n", "ocikit-bundle", "-s"])
        .arg(signature)
        .stdin(fs::File::open(message).unwrap())
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn ssh_keygen_accepts_what_ocikit_signs_and_ocikit_accepts_what_ssh_keygen_signs() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, allowed)) = keys(dir.path()) else {
        return;
    };
    let out = dir.path().join("bundle");
    create(&out, &["--sign", key.to_str().unwrap()]);
    let sums = out.join("SHA256SUMS");
    let signature = out.join("SHA256SUMS.sig");
    assert!(ssh_keygen_verify(&allowed, &signature, &sums));
    let (code, stdout) = verify(&[
        out.to_str().unwrap(),
        "--allowed-signers",
        allowed.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("signed by release@example.com"), "{stdout}");
    // Without allowed signers it is present, not verified.
    let (code, stdout) = verify(&[out.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("present, not verified"), "{stdout}");

    // ssh-keygen's own signature is accepted by ocikit.
    fs::remove_file(&signature).unwrap();
    run(
        "ssh-keygen",
        &[
            "-Y",
            "sign",
            "-f",
            key.to_str().unwrap(),
            "-n",
            "ocikit-bundle",
            sums.to_str().unwrap(),
        ],
    );
    let (code, stdout) = verify(&[
        out.to_str().unwrap(),
        "--allowed-signers",
        allowed.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}");

    // A tampered SHA256SUMS fails both.
    let mut text = fs::read_to_string(&sums).unwrap();
    text.push_str(&format!("{}  blobs/sha256/extra\n", "0".repeat(64)));
    fs::write(&sums, text).unwrap();
    assert!(!ssh_keygen_verify(&allowed, &signature, &sums));
    let (code, stdout) = verify(&[
        out.to_str().unwrap(),
        "--allowed-signers",
        allowed.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("does not match SHA256SUMS"), "{stdout}");

    // Another key's allowed signers file rejects it; an unsigned bundle fails when a signer is required.
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    let (_, other_allowed) = keys(&other).unwrap();
    let (code, stdout) = verify(&[
        out.to_str().unwrap(),
        "--allowed-signers",
        other_allowed.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("does not list"), "{stdout}");
}

#[test]
fn an_incremental_bundle_needs_its_base_to_verify_or_import() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_layout().display().to_string();
    let base = dir.path().join("base");
    ocikit()
        .args(["bundle", "create"])
        .arg(&base)
        .args(["--image", &format!("{s}:app:gzip")])
        .assert()
        .success();
    let base_id = format!("sha256:{}", sha256_hex(&base.join("SHA256SUMS")));
    // The base may be given as just its description and SHA256SUMS.
    let lists = dir.path().join("lists");
    fs::create_dir(&lists).unwrap();
    for file in ["SHA256SUMS", "ocikit-bundle.json"] {
        fs::copy(base.join(file), lists.join(file)).unwrap();
    }
    let next = dir.path().join("next.tar");
    ocikit()
        .args(["bundle", "create"])
        .arg(&next)
        .args([
            "--image",
            &format!("{s}:app:gzip"),
            &format!("{s}:app:zstd"),
        ])
        .arg("--base")
        .arg(&lists)
        .assert()
        .success();
    let report = ocikit()
        .args(["bundle", "verify", "--json"])
        .arg(&next)
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["incomplete"]["base"], base_id.as_str());
    let omitted = report["description"]["base"]["omitted"]
        .as_array()
        .unwrap()
        .len();
    assert!(omitted > 0);
    assert_eq!(report["incomplete"]["blobs"], omitted);
    // Manifests and index.json are always in it; the omitted blobs are not.
    let listing = run("tar", &["-tf", next.to_str().unwrap()]);
    assert!(listing.contains("blobs/sha256/76e53c5a145d"));
    for o in report["description"]["base"]["omitted"].as_array().unwrap() {
        let hex = &o["digest"].as_str().unwrap()[7..];
        assert!(!listing.contains(hex), "{hex} left out");
    }
    let (code, stdout) = verify(&[next.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stdout.contains(&format!("incomplete: {omitted} blobs (")) && stdout.contains(&base_id),
        "{stdout}"
    );
    // With the base's content it verifies, by hash.
    let (code, stdout) = verify(&[next.to_str().unwrap(), "--base", base.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    // An import into a layout without the base fails and leaves nothing; with it, it works.
    let target = dir.path().join("target");
    ocikit()
        .arg("import")
        .arg(&next)
        .arg(&target)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(format!(
            "incomplete: {omitted} blobs ("
        )));
    assert!(!target.exists());
    ocikit()
        .args(["copy", &format!("{s}:app:gzip")])
        .arg(format!("{}:app:gzip", target.display()))
        .assert()
        .success();
    ocikit()
        .arg("import")
        .arg(&next)
        .arg(&target)
        .assert()
        .success();
    crate::copy::assert_valid(&target);
}

#[test]
fn a_split_archive_is_checked_whole_then_verified_and_imported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar");
    let id = create(&out, &["--split-size", "4K"]);
    assert!(!out.exists(), "only parts and their list are written");
    let list = dir.path().join("b.tar.parts");
    let parsed: Value = serde_json::from_slice(&fs::read(&list).unwrap()).unwrap();
    let parts = parsed["parts"].as_array().unwrap();
    assert!(parts.len() > 2);
    for (i, part) in parts.iter().enumerate() {
        let len = fs::metadata(dir.path().join(part["name"].as_str().unwrap()))
            .unwrap()
            .len();
        assert_eq!(part["size"], len);
        if i + 1 < parts.len() {
            assert_eq!(len, 4096);
        }
    }
    // cat of the parts is the archive, and it is the unsplit archive.
    let whole = dir.path().join("whole.tar");
    let mut bytes = Vec::new();
    for part in parts {
        bytes.extend(fs::read(dir.path().join(part["name"].as_str().unwrap())).unwrap());
    }
    fs::write(&whole, &bytes).unwrap();
    assert_eq!(parsed["digest"], format!("sha256:{}", sha256_hex(&whole)));
    assert_eq!(create(&dir.path().join("unsplit.tar"), &[]), id);
    assert!(fs::read(dir.path().join("unsplit.tar")).unwrap() == bytes);
    for target in [&list, &out] {
        let (code, stdout) = verify(&[target.to_str().unwrap()]);
        assert_eq!(code, 0, "{stdout}");
        assert!(stdout.trim_end().ends_with(&id));
    }
    let layout = dir.path().join("layout");
    ocikit()
        .arg("import")
        .arg(&list)
        .arg(&layout)
        .assert()
        .success();
    crate::copy::assert_valid(&layout);
    // A damaged part fails before anything is read as an archive.
    let second = dir.path().join(parts[1]["name"].as_str().unwrap());
    let mut damaged = fs::read(&second).unwrap();
    damaged[0] ^= 1;
    fs::write(&second, damaged).unwrap();
    let (code, stdout) = verify(&[list.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stdout.contains("part002"), "{stdout}");
    ocikit()
        .arg("import")
        .arg(&list)
        .arg(dir.path().join("other"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("part002"));
}

#[test]
fn a_changed_layer_inside_a_compressed_archive_is_caught_in_the_streaming_pass() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("b.tar.zst");
    create(&a, &[]);
    let mut tar = zstd::decode_all(fs::File::open(&a).unwrap()).unwrap();
    let manifest = ocikit_json(["inspect", &images()[0], "--raw"]);
    let name = format!(
        "blobs/sha256/{}",
        &manifest["layers"][0]["digest"].as_str().unwrap()[7..]
    );
    // The name also appears in SHA256SUMS: the header is where it starts a 512-byte block.
    let header = (0..tar.len() - name.len())
        .step_by(512)
        .find(|&i| tar[i..].starts_with(name.as_bytes()))
        .unwrap();
    tar[header + 512 + 10] ^= 0xff;
    let damaged = dir.path().join("damaged.tar.zst");
    fs::write(&damaged, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    let (code, stdout) = verify(&[damaged.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&format!("{name} has changed")), "{stdout}");
}

#[test]
fn what_create_and_verify_show() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = ocikit();
    command
        .current_dir(root)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["bundle", "create"])
        .arg(&out)
        .args([
            "--image",
            "testdata/sample:app:gzip",
            "testdata/sample:app:multi",
        ]);
    insta::assert_snapshot!(
        "bundle_create",
        crate::helpers::transcript(&mut command, &[(&out, "[BUNDLE]")])
    );
    let mut command = ocikit();
    command.args(["bundle", "verify"]).arg(&out);
    insta::assert_snapshot!(
        "bundle_verify",
        crate::helpers::transcript(&mut command, &[(&out, "[BUNDLE]")])
    );
    fs::write(out.join("stray"), b"x").unwrap();
    fs::remove_file(out.join("index.json")).unwrap();
    let mut command = ocikit();
    command.args(["bundle", "verify"]).arg(&out);
    insta::assert_snapshot!(
        "bundle_verify_failed",
        crate::helpers::transcript(&mut command, &[(&out, "[BUNDLE]")])
    );
}

/// A signed archive bundle (plain tar) of one image with a 3 MB uncompressed layer (larger
/// than a stream keeps in memory), its entries (name, type, data), the layer's name, and the
/// allowed signers file; `None` without ssh-keygen.
#[allow(clippy::type_complexity)]
fn big_signed_bundle(
    dir: &Path,
) -> Option<(
    Vec<(String, tar::EntryType, Vec<u8>)>,
    String,
    std::path::PathBuf,
)> {
    let (key, allowed) = keys(dir)?;
    let rootfs = dir.join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    let mut big = vec![0u8; 3_000_000];
    for (i, b) in big.iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    fs::write(rootfs.join("big"), &big).unwrap();
    let img = dir.join("img");
    ocikit()
        .args(["image", "build"])
        .arg(format!("{}:big", img.display()))
        .arg("--layer")
        .arg(&rootfs)
        .args(["--compression", "none"])
        .assert()
        .success();
    let b = dir.join("b.tar");
    ocikit()
        .args(["bundle", "create"])
        .arg(&b)
        .arg("--image")
        .arg(format!("{}:big", img.display()))
        .arg("--sign")
        .arg(&key)
        .assert()
        .success();
    let entries = read_entries(&b);
    let layer = entries
        .iter()
        .filter(|e| e.0.starts_with("blobs/sha256/"))
        .max_by_key(|e| e.2.len())
        .unwrap()
        .0
        .clone();
    Some((entries, layer, allowed))
}

/// The entries of the plain tar at `path`: name, type, data.
fn read_entries(path: &Path) -> Vec<(String, tar::EntryType, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let kind = entry.header().entry_type();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        entries.push((name, kind, data));
    }
    entries
}

/// Writes `entries` as a gzip (or zstd) tar at `path`.
fn write_archive(path: &Path, entries: &[(String, tar::EntryType, Vec<u8>)], zstd: bool) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, name, &data[..]).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let bytes = if zstd {
        zstd::encode_all(&tar[..], 3).unwrap()
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    };
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_changed_layer_is_never_vouched_for_by_a_good_copy_elsewhere_in_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let Some((entries, layer, allowed)) = big_signed_bundle(dir.path()) else {
        return;
    };
    let good = entries.iter().find(|e| e.0 == layer).unwrap().2.clone();
    let mut evil = good.clone();
    evil[100] ^= 1;
    // (where the layout is, where the good copy is, zstd): the tester's two, and the layout
    // at the top with the copy in a folder beside it.
    let cases = [
        ("wrap/", String::new(), false),
        ("wrap/", "other/".to_string(), false),
        ("", "other/".to_string(), true),
    ];
    for (root, decoy, zstd) in cases {
        let mut tampered: Vec<_> = entries
            .iter()
            .map(|(name, kind, data)| {
                let data = if *name == layer {
                    evil.clone()
                } else {
                    data.clone()
                };
                (format!("{root}{name}"), *kind, data)
            })
            .collect();
        tampered.push((
            format!("{decoy}{layer}"),
            tar::EntryType::Regular,
            good.clone(),
        ));
        let path = dir.path().join(format!("decoy-{}.tar.gz", decoy.len()));
        write_archive(&path, &tampered, zstd);
        for _ in 0..3 {
            let (code, stdout) = verify(&[
                path.to_str().unwrap(),
                "--allowed-signers",
                allowed.to_str().unwrap(),
            ]);
            assert_eq!(code, 1, "{root} {decoy}: {stdout}");
            assert!(stdout.contains(&format!("{layer} has changed")), "{stdout}");
        }
    }
}

#[test]
fn an_archive_entry_outside_the_bundle_root_fails_verify_and_is_a_validate_finding() {
    let dir = tempfile::tempdir().unwrap();
    let Some((entries, _, allowed)) = big_signed_bundle(dir.path()) else {
        return;
    };
    let wrapped: Vec<_> = entries
        .iter()
        .map(|(n, k, d)| (format!("wrap/{n}"), *k, d.clone()))
        .collect();
    // The bundle in one folder: it verifies (a directory bundle archived as it is).
    let clean = dir.path().join("clean.tar.gz");
    write_archive(&clean, &wrapped, false);
    let allowed = allowed.to_str().unwrap();
    let (code, stdout) = verify(&[clean.to_str().unwrap(), "--allowed-signers", allowed]);
    assert_eq!(code, 0, "{stdout}");
    // Anything beside it: the tester's script, and (ours) an empty folder.
    let extras = [
        (
            "payload/run.sh",
            tar::EntryType::Regular,
            b"#!/bin/sh\n".to_vec(),
        ),
        ("empty", tar::EntryType::Directory, Vec::new()),
    ];
    for extra in extras {
        let mut with = wrapped.clone();
        with.push((extra.0.to_string(), extra.1, extra.2.clone()));
        let path = dir.path().join("extra.tar.gz");
        write_archive(&path, &with, true);
        let (code, stdout) = verify(&[path.to_str().unwrap(), "--allowed-signers", allowed]);
        assert_eq!(code, 1, "{stdout}");
        assert!(
            stdout.contains(&format!("{} is outside the bundle's root", extra.0)),
            "{stdout}"
        );
        let validate = ocikit().arg("validate").arg(&path).output().unwrap();
        let out = String::from_utf8_lossy(&validate.stdout);
        assert!(out.contains("L16") && out.contains(extra.0), "{out}");
    }
    // An empty directory inside the root, listed nowhere.
    let mut with = wrapped.clone();
    with.push(("wrap/spare".into(), tar::EntryType::Directory, Vec::new()));
    let path = dir.path().join("spare.tar.gz");
    write_archive(&path, &with, false);
    let (code, stdout) = verify(&[path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("the directory spare holds no file listed"),
        "{stdout}"
    );
}

/// Runs `edit` on a fresh copy of `bundle` (a directory or a file) and verifies the copy.
fn verify_edited(bundle: &Path, edit: &dyn Fn(&Path)) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(bundle.file_name().unwrap());
    run(
        "cp",
        &["-a", bundle.to_str().unwrap(), copy.to_str().unwrap()],
    );
    edit(&copy);
    verify(&[copy.to_str().unwrap()])
}

fn mkfifo(path: &Path) {
    run("mkfifo", &[path.to_str().unwrap()]);
}

#[test]
fn damage_found_exits_1_and_only_no_bundle_or_a_failure_to_run_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    create(&out, &[]);
    let outside = dir.path().join("outside");
    fs::write(&outside, b"x").unwrap();
    let replace_by_symlink = |name: &'static str| {
        let outside = outside.clone();
        move |b: &Path| {
            fs::copy(b.join(name), &outside).unwrap();
            fs::remove_file(b.join(name)).unwrap();
            std::os::unix::fs::symlink(&outside, b.join(name)).unwrap();
        }
    };
    let replace_by_fifo = |name: &'static str| {
        move |b: &Path| {
            fs::remove_file(b.join(name)).unwrap();
            mkfifo(&b.join(name));
        }
    };
    let blobs_elsewhere = dir.path().join("blobs-elsewhere");
    type Edit<'a> = Box<dyn Fn(&Path) + 'a>;
    let directory_cases: Vec<(&str, Edit)> = vec![
        (
            "oci-layout removed",
            Box::new(|b| fs::remove_file(b.join("oci-layout")).unwrap()),
        ),
        (
            "blobs/ a symlink",
            Box::new(|b| {
                fs::rename(b.join("blobs"), &blobs_elsewhere).unwrap();
                std::os::unix::fs::symlink(&blobs_elsewhere, b.join("blobs")).unwrap();
            }),
        ),
        (
            "SHA256SUMS a symlink",
            Box::new(replace_by_symlink("SHA256SUMS")),
        ),
        ("SHA256SUMS a FIFO", Box::new(replace_by_fifo("SHA256SUMS"))),
        (
            "description a symlink",
            Box::new(replace_by_symlink("ocikit-bundle.json")),
        ),
        (
            "description a FIFO",
            Box::new(replace_by_fifo("ocikit-bundle.json")),
        ),
        (
            "SHA256SUMS removed",
            Box::new(|b| fs::remove_file(b.join("SHA256SUMS")).unwrap()),
        ),
        // Ours: SHA256SUMS a directory.
        (
            "SHA256SUMS a directory",
            Box::new(|b| {
                fs::remove_file(b.join("SHA256SUMS")).unwrap();
                fs::create_dir(b.join("SHA256SUMS")).unwrap();
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (name, edit) in &directory_cases {
        let (code, stdout) = verify_edited(&out, edit.as_ref());
        if code != 1 || !stdout.contains("FAILED") {
            failures.push(format!("{name}: exit {code}: {stdout}"));
        }
    }
    // Archives cut short, or with a name twice.
    for ext in ["tar", "tar.gz", "tar.zst"] {
        let archive = dir.path().join(format!("b.{ext}"));
        create(&archive, &[]);
        let bytes = fs::read(&archive).unwrap();
        let cut = dir.path().join(format!("cut.{ext}"));
        fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let (code, stdout) = verify(&[cut.to_str().unwrap()]);
        if code != 1 {
            failures.push(format!("truncated {ext}: exit {code}: {stdout}"));
        }
    }
    let tar = dir.path().join("b.tar");
    let twice = dir.path().join("twice.tar");
    {
        let mut entries = tar::Archive::new(fs::File::open(&tar).unwrap());
        let mut out = tar::Builder::new(fs::File::create(&twice).unwrap());
        for entry in entries.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut header = entry.header().clone();
            let path = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            out.append_data(&mut header, &path, &data[..]).unwrap();
            if path == "index.json" {
                out.append_data(&mut header, format!("./{path}"), &data[..])
                    .unwrap();
            }
        }
        out.finish().unwrap();
    }
    let (code, stdout) = verify(&[twice.to_str().unwrap()]);
    if code != 1 {
        failures.push(format!("./index.json twice: exit {code}: {stdout}"));
    }
    // Not a bundle, or nothing there, or (ours) a FIFO given as the bundle: could not run.
    let fifo = dir.path().join("fifo.tar");
    mkfifo(&fifo);
    let output = ocikit()
        .args(["bundle", "verify"])
        .arg(&fifo)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    if output.status.code() != Some(2) {
        failures.push(format!("a FIFO: {output:?}"));
    }
    for path in [sample_layout(), dir.path().join("absent")] {
        let (code, stdout) = verify(&[path.to_str().unwrap()]);
        if code != 2 {
            failures.push(format!("{}: exit {code}: {stdout}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_part_is_read_as_a_regular_file_to_its_listed_size_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.tar");
    create(&out, &["--split-size", "4K"]);
    let list = dir.path().join("s.tar.parts");
    let original: Value = serde_json::from_slice(&fs::read(&list).unwrap()).unwrap();
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    // (what, the extra part of size 0 listed last: a symlink to this, or a FIFO)
    let cases: [(&str, Option<&str>); 3] = [
        ("a symlink to /dev/zero", Some("/dev/zero")),
        ("a FIFO", None),
        // Ours: a symlink to an empty regular file (it would hash right).
        ("a symlink to an empty file", Some("empty-file")),
    ];
    fs::write(dir.path().join("empty-file"), b"").unwrap();
    for (what, target) in cases {
        let mut list_value = original.clone();
        list_value["parts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "s.tar.part999", "size": 0, "digest": empty}));
        fs::write(&list, serde_json::to_vec(&list_value).unwrap()).unwrap();
        let part = dir.path().join("s.tar.part999");
        let _ = fs::remove_file(&part);
        match target {
            Some(target) => std::os::unix::fs::symlink(target, &part).unwrap(),
            None => mkfifo(&part),
        }
        for command in ["verify", "import"] {
            let mut cmd = ocikit();
            cmd.env("TMPDIR", &tmp)
                .timeout(std::time::Duration::from_secs(60));
            if command == "verify" {
                cmd.args(["bundle", "verify"]).arg(&list);
            } else {
                cmd.arg("import")
                    .arg(&list)
                    .arg(dir.path().join("imported"));
            }
            let output = cmd.output().unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert_ne!(output.status.code(), Some(0), "{what}, {command}: {all}");
            assert!(
                all.contains("not a regular file"),
                "{what}, {command}: {all}"
            );
            assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "{what}: temp left");
        }
    }
    // The list as written still verifies.
    fs::write(&list, serde_json::to_vec(&original).unwrap()).unwrap();
    let _ = fs::remove_file(dir.path().join("s.tar.part999"));
    let (code, stdout) = verify(&[list.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn allowed_signers_lines_are_read_as_ssh_keygen_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, _)) = keys(dir.path()) else {
        return;
    };
    let out = dir.path().join("bundle");
    create(&out, &["--sign", key.to_str().unwrap()]);
    let public = fs::read_to_string(dir.path().join("key.pub")).unwrap();
    let public = public.trim();
    // Options between the principal and the key: the tester's rows, then ours.
    let rows = [
        "",
        "namespaces=\"!ocikit-bundle,*\"",
        "valid-before=\"20200101\"",
        "valid-after=\"29990101\"",
        "namespaces=\"OCIKIT-BUNDLE\"",
        "namespaces=\"ocikit-*\"",
        "namespaces=\"git\"",
        "NAMESPACES=\"ocikit-bundle\"",
        "namespaces=\"git,ocikit-bund?e\"",
        "valid-after=\"20200101Z\"",
        "valid-after=\"202001010000Z\",valid-before=\"29990101\"",
        "valid-before=\"20200101UTC\"",
        "valid-after=\"2020\"",
        "valid-after=\"29990101\",valid-before=\"20200101\"",
        "cert-authority",
        "unknown-option",
        "namespaces=\"ocikit-bundle\",namespaces=\"*\"",
        "namespaces=ocikit-bundle",
        "namespaces=\"ocikit-bundle\",",
    ];
    let allowed = dir.path().join("allowed");
    let sums = out.join("SHA256SUMS");
    let signature = out.join("SHA256SUMS.sig");
    let mut disagreements = Vec::new();
    for options in rows {
        fs::write(
            &allowed,
            format!("release@example.com {options} {public}\n"),
        )
        .unwrap();
        let ssh = ssh_keygen_verify(&allowed, &signature, &sums);
        let (code, stdout) = verify(&[
            out.to_str().unwrap(),
            "--allowed-signers",
            allowed.to_str().unwrap(),
        ]);
        if (code == 0) != ssh {
            disagreements.push(format!(
                "{options:?}: ssh-keygen {ssh}, ocikit {code}: {stdout}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn an_ecdsa_signature_is_refused_as_an_unsupported_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    if !tool_available("ssh-keygen") {
        return;
    }
    let out = dir.path().join("bundle");
    create(&out, &[]);
    let key = dir.path().join("ecdsa");
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ecdsa",
            "-N",
            "",
            "-C",
            "e",
            "-f",
            key.to_str().unwrap(),
        ],
    );
    run(
        "ssh-keygen",
        &[
            "-Y",
            "sign",
            "-q",
            "-f",
            key.to_str().unwrap(),
            "-n",
            "ocikit-bundle",
            out.join("SHA256SUMS").to_str().unwrap(),
        ],
    );
    let public = fs::read_to_string(dir.path().join("ecdsa.pub")).unwrap();
    let allowed = dir.path().join("allowed");
    fs::write(&allowed, format!("e {public}")).unwrap();
    let (code, stdout) = verify(&[
        out.to_str().unwrap(),
        "--allowed-signers",
        allowed.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(
            "unsupported signature algorithm ecdsa-sha2-nistp256 (only ssh-ed25519 is verified)"
        ),
        "{stdout}"
    );
}

#[test]
fn a_split_create_checks_every_part_name_first_and_leaves_nothing_of_its_own_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.tar");
    // The tester's OUT.part002, and ours: a far part number.
    for stale in ["s.tar.part002", "s.tar.part1000"] {
        fs::write(dir.path().join(stale), b"old").unwrap();
        ocikit()
            .args(["bundle", "create"])
            .arg(&out)
            .arg("--image")
            .args(images())
            .args(["--split-size", "2K"])
            .assert()
            .code(2)
            .stderr(predicates::str::contains(stale))
            .stderr(predicates::str::contains("--force").not());
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, [stale], "only the file that was there");
        assert_eq!(fs::read(dir.path().join(stale)).unwrap(), b"old");
        fs::remove_file(dir.path().join(stale)).unwrap();
    }
    create(&out, &["--split-size", "2K"]);
}

#[test]
fn an_incremental_bundle_with_nothing_omitted_says_so_and_verifies_alone() {
    let dir = tempfile::tempdir().unwrap();
    // A base with nothing in common with the sample: its own image.
    let rootfs = dir.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    fs::write(rootfs.join("only-here"), b"nothing like the sample").unwrap();
    let img = dir.path().join("img");
    ocikit()
        .args(["image", "build"])
        .arg(format!("{}:x", img.display()))
        .arg("--layer")
        .arg(&rootfs)
        .assert()
        .success();
    let base = dir.path().join("base");
    ocikit()
        .args(["bundle", "create"])
        .arg(&base)
        .arg("--image")
        .arg(format!("{}:x", img.display()))
        .assert()
        .success();
    let base_id = format!("sha256:{}", sha256_hex(&base.join("SHA256SUMS")));
    // The sample as a directory and (ours) as an archive, incremental against it.
    for name in ["next", "next.tar.gz"] {
        let next = dir.path().join(name);
        create(&next, &["--base", base.to_str().unwrap()]);
        let (code, stdout) = verify(&[next.to_str().unwrap()]);
        assert_eq!(code, 0, "{stdout}");
        assert!(
            stdout.contains(&format!(
                "incremental against base {base_id}: nothing omitted"
            )),
            "{stdout}"
        );
    }
}

/// Writes `entries` (name, type, link target, data) as a plain tar, or a zstd one.
fn write_tar_with_links(path: &Path, entries: &[(String, tar::EntryType, String, Vec<u8>)]) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        if kind.is_symlink() || kind.is_hard_link() {
            header.set_link_name_literal(link).unwrap();
        }
        builder.append_data(&mut header, name, &data[..]).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let name = path.to_str().unwrap();
    let bytes = if name.ends_with(".zst") {
        zstd::encode_all(&tar[..], 3).unwrap()
    } else {
        tar
    };
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_link_entry_in_a_bundle_archive_is_an_integrity_failure_never_read_as_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar");
    create(&bundle, &[]);
    let entries: Vec<_> = read_entries(&bundle)
        .into_iter()
        .map(|(name, kind, data)| (name, kind, String::new(), data))
        .collect();
    let blobs: Vec<String> = entries
        .iter()
        .filter(|e| e.0.starts_with("blobs/sha256/") && e.1 == tar::EntryType::Regular)
        .map(|e| e.0.clone())
        .collect();
    let (a, b) = (blobs[0].clone(), blobs[1].clone());
    let b_hex = b.trim_start_matches("blobs/sha256/").to_string();
    // (what, the link that replaces the listed blob `a`: its type and target)
    let cases = [
        ("a symlink to a listed blob", tar::EntryType::Symlink, b_hex),
        (
            "a hard link to a listed blob",
            tar::EntryType::Link,
            b.clone(),
        ),
        (
            "a symlink outside",
            tar::EntryType::Symlink,
            "/etc/passwd".into(),
        ),
    ];
    let mut failures = Vec::new();
    for (what, kind, target) in cases {
        for ext in ["tar", "tar.zst"] {
            let mut linked: Vec<_> = entries.iter().filter(|e| e.0 != a).cloned().collect();
            // Last, so that a hard link's target comes before it.
            linked.push((a.clone(), kind, target.clone(), Vec::new()));
            let path = dir.path().join(format!("linked.{ext}"));
            write_tar_with_links(&path, &linked);
            let (code, stdout) = verify(&[path.to_str().unwrap()]);
            let named = format!("the archive entry {a} is a");
            if code != 1 || !stdout.contains(&named) || !stdout.contains("holds no links") {
                failures.push(format!("{what} ({ext}): exit {code}: {stdout}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_file_that_is_no_bundle_exits_2_and_a_damaged_bundle_archive_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar");
    create(&bundle, &[]);
    let bytes = fs::read(&bundle).unwrap();
    let zst = dir.path().join("b.tar.zst");
    create(&zst, &[]);
    let zst_bytes = fs::read(&zst).unwrap();
    let mut unrelated = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("README", &b"hello\n"[..]),
        ("src/main.rs", b"fn main() {}\n"),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        unrelated.append_data(&mut header, name, data).unwrap();
    }
    let unrelated = unrelated.into_inner().unwrap();
    // The largest blob, one byte changed in it.
    let mut changed = bytes.clone();
    let blob = {
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut best = (0u64, 0u64);
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if name.starts_with("blobs/") && entry.size() > best.1 {
                best = (entry.raw_file_position(), entry.size());
            }
        }
        best
    };
    changed[(blob.0 + blob.1 / 2) as usize] ^= 1;
    let random: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    // (what, file name, bytes, exit code)
    let cases: Vec<(&str, &str, Vec<u8>, i32)> = vec![
        ("random bytes", "random.tar", random, 2),
        ("an empty file", "empty.tar", Vec::new(), 2),
        (
            "a JSON file",
            "doc.json",
            br#"{"schemaVersion": 2}"#.to_vec(),
            2,
        ),
        (
            "a tar of unrelated files",
            "other.tar",
            unrelated.clone(),
            2,
        ),
        (
            "a zstd tar of unrelated files",
            "other.tar.zst",
            zstd::encode_all(&unrelated[..], 3).unwrap(),
            2,
        ),
        (
            "a truncated bundle archive",
            "cut.tar",
            bytes[..bytes.len() / 2].to_vec(),
            1,
        ),
        (
            "a truncated zstd bundle archive",
            "cut.tar.zst",
            zst_bytes[..zst_bytes.len() * 2 / 3].to_vec(),
            1,
        ),
        ("a changed byte in a blob", "changed.tar", changed, 1),
    ];
    let mut failures = Vec::new();
    for (what, name, data, expected) in cases {
        let path = dir.path().join(name);
        fs::write(&path, data).unwrap();
        let out = ocikit()
            .args(["bundle", "verify"])
            .arg(&path)
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = if expected == 2 {
            stderr.contains("is not a bundle")
        } else {
            stdout.contains("FAILED")
        };
        if code != expected || !said {
            failures.push(format!("{what}: exit {code}: {stdout}{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A layout whose one image has a layer named by a sha512 digest: its bytes hash to the name
/// when `corrupt` is false, and differ (one flipped byte) when true.
fn sha512_layout(dir: &Path, corrupt: bool) -> std::path::PathBuf {
    use ocikit::spec::digest::{Algorithm, Hasher};
    let root = dir.join("L");
    fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    fs::create_dir_all(root.join("blobs/sha512")).unwrap();
    fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(6);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "f", &b"hello\n"[..])
        .unwrap();
    let good = builder.into_inner().unwrap();
    let mut stored = good.clone();
    if corrupt {
        stored[600] ^= 1;
    }
    let mut hasher = Hasher::new(Algorithm::Sha512);
    hasher.update(&good);
    let layer = hasher.finish();
    fs::write(root.join("blobs/sha512").join(layer.encoded()), &stored).unwrap();
    let put = |bytes: &[u8]| {
        let digest = ocikit::Digest::sha256_of(bytes);
        fs::write(root.join("blobs/sha256").join(digest.encoded()), bytes).unwrap();
        digest
    };
    let config = serde_json::json!({"architecture":"amd64","os":"linux",
        "rootfs":{"type":"layers","diff_ids":[ocikit::Digest::sha256_of(&good).to_string()]},"config":{}});
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({"schemaVersion":2,
        "mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json",
            "digest":config_digest.to_string(),"size":config.len()},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",
            "digest":layer.to_string(),"size":stored.len()}]}))
    .unwrap();
    let manifest_digest = put(&manifest);
    let index = serde_json::json!({"schemaVersion":2,"manifests":[{
        "mediaType":"application/vnd.oci.image.manifest.v1+json",
        "digest":manifest_digest.to_string(),"size":manifest.len(),
        "annotations":{"org.opencontainers.image.ref.name":"x"}}]});
    fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    root
}

#[test]
fn a_sha512_blob_is_checked_against_its_name_by_create_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = sha512_layout(dir.path(), true);
    // Linked (not read through the verifying reader) or copied, as a directory or an archive:
    // refused, the blob named, nothing left behind.
    for (out, link) in [
        ("b", "auto"),
        ("c", "copy"),
        ("b.tar", "auto"),
        ("b.tar.zst", "auto"),
    ] {
        let out = dir.path().join(out);
        ocikit()
            .args(["bundle", "create"])
            .arg(&out)
            .args(["--link", link, "--image"])
            .arg(format!("{}:x", corrupt.display()))
            .assert()
            .failure()
            .stderr(
                predicates::str::contains("blob sha512:").and(predicates::str::contains("corrupt")),
            );
        assert!(!out.exists(), "{}", out.display());
    }
    // A good one verifies; the same bundle with the sha512 blob changed (and SHA256SUMS
    // rewritten to match, as tampering would) fails verify, the blob named, as a directory
    // and as a compressed archive (hashed in the one streaming pass).
    let good_dir = tempfile::tempdir().unwrap();
    let good = sha512_layout(good_dir.path(), false);
    let out = dir.path().join("good");
    ocikit()
        .args(["bundle", "create"])
        .arg(&out)
        .arg("--image")
        .arg(format!("{}:x", good.display()))
        .assert()
        .success();
    assert_eq!(verify(&[out.to_str().unwrap()]).0, 0);
    let blob = fs::read_dir(out.join("blobs/sha512"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = blob.file_name().unwrap().to_str().unwrap().to_string();
    let mut bytes = fs::read(&blob).unwrap();
    fs::remove_file(&blob).unwrap();
    bytes[600] ^= 1;
    fs::write(&blob, &bytes).unwrap();
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let sums: String = sums
        .lines()
        .map(|l| {
            if l.ends_with(&name) {
                format!(
                    "{}  blobs/sha512/{name}\n",
                    ocikit::Digest::sha256_of(&bytes).encoded()
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(out.join("SHA256SUMS"), sums).unwrap();
    let (code, stdout) = verify(&[out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&format!("blobs/sha512/{name}")), "{stdout}");
    assert!(stdout.contains("not the digest its name gives"), "{stdout}");
    let archive = dir.path().join("tampered.tar.gz");
    run(
        "tar",
        &[
            "-czf",
            archive.to_str().unwrap(),
            "-C",
            out.to_str().unwrap(),
            "SHA256SUMS",
            "ocikit-bundle.json",
            "oci-layout",
            "index.json",
            "blobs",
        ],
    );
    let (code, stdout) = verify(&[archive.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("not the digest its name gives"), "{stdout}");
}

#[test]
fn create_refuses_to_leave_out_a_referrer_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("S");
    run(
        "cp",
        &[
            "-a",
            sample_layout().to_str().unwrap(),
            source.to_str().unwrap(),
        ],
    );
    let listed = trimmed_stdout(
        &ocikit()
            .arg("referrers")
            .arg(format!("{}:app:gzip", source.display()))
            .assert()
            .success(),
    );
    let referrer = listed
        .split_whitespace()
        .find_map(|w| w.strip_prefix("sha256:"))
        .expect("the sample has a referrer")
        .to_string();
    let blob = source.join("blobs/sha256").join(&referrer);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[5] ^= 1;
    fs::remove_file(&blob).unwrap();
    fs::write(&blob, bytes).unwrap();
    for out in ["d", "d.tar", "d.tar.gz"] {
        let out = dir.path().join(out);
        ocikit()
            .args(["bundle", "create"])
            .arg(&out)
            .arg("--image")
            .arg(format!("{}:app:gzip", source.display()))
            .assert()
            .failure()
            .stderr(predicates::str::contains(format!(
                "referrer sha256:{referrer}"
            )));
        assert!(!out.exists());
    }
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the source is left");
}

#[test]
fn create_refuses_an_out_inside_a_source_layout_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src");
    run(
        "cp",
        &[
            "-a",
            sample_layout().to_str().unwrap(),
            source.to_str().unwrap(),
        ],
    );
    let before = run("find", &[source.to_str().unwrap()]);
    for (out, says) in [
        ("src/blobs/x", "inside the source layout"),
        ("src/x.tar", "inside the source layout"),
        ("-", "not written to stdout"),
    ] {
        ocikit()
            .current_dir(dir.path())
            .args(["bundle", "create", out, "--image", "src:app:gzip"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicates::str::contains(says));
        assert!(!dir.path().join(out).exists(), "{out}");
    }
    assert_eq!(run("find", &[source.to_str().unwrap()]), before);
}

#[test]
fn import_verifies_a_bundle_archive_in_the_pass_that_imports_it() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b");
    create(&bundle, &[]);
    let layout = dir.path().join("layout");
    let tar_of = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            if name.ends_with(".gz") { "-czf" } else { "-cf" },
            out.to_str().unwrap(),
            "-C",
            bundle.to_str().unwrap(),
            "SHA256SUMS",
            "ocikit-bundle.json",
            "oci-layout",
            "index.json",
            "blobs",
        ];
        args.extend(extra);
        run("tar", &args);
        out
    };
    // The untouched bundle imports.
    let good = tar_of("good.tar", &[]);
    ocikit()
        .arg("import")
        .arg(&good)
        .arg(&layout)
        .assert()
        .success();
    let before = fs::read(layout.join("index.json")).unwrap();
    // index.json edited in transit (plain and compressed), or a file SHA256SUMS does not
    // list: refused, the layout's index.json as it was.
    let index = bundle.join("index.json");
    let original = fs::read(&index).unwrap();
    let mut edited = original.clone();
    edited.push(b'\n');
    fs::write(&index, &edited).unwrap();
    let edited_plain = tar_of("edited.tar", &[]);
    let edited_gz = tar_of("edited.tar.gz", &[]);
    fs::write(&index, &original).unwrap();
    fs::write(bundle.join("extra"), b"x").unwrap();
    let unlisted = tar_of("unlisted.tar", &["extra"]);
    for (archive, says) in [
        (&edited_plain, "and SHA256SUMS says"),
        (&edited_gz, "and SHA256SUMS says"),
        (&unlisted, "is not listed in SHA256SUMS"),
    ] {
        ocikit()
            .arg("import")
            .arg(archive)
            .arg(&layout)
            .args(["--force"])
            .assert()
            .failure()
            .stderr(
                predicates::str::contains(says)
                    .and(predicates::str::contains("nothing was imported")),
            );
        assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);
    }
}

/// A PAX global header before `entry` in the uncompressed tar of `entries`.
fn with_global_header(
    entries: &[(String, tar::EntryType, Vec<u8>)],
    entry: &str,
    records: &[u8],
) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        if name == entry {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::XGlobalHeader);
            header.set_mode(0o644);
            header.set_size(records.len() as u64);
            builder
                .append_data(&mut header, "pax_global_header", records)
                .unwrap();
        }
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, name, &data[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn a_pax_global_header_gnu_tar_applies_or_entries_after_the_end_fail_verify_import_and_validate() {
    // The tester's attack: a global `size=0` before an uncompressed layer. Go reads past it;
    // GNU tar and Python give the layer 0 bytes and unpack its own files over the bundle.
    let dir = tempfile::tempdir().unwrap();
    let Some((entries, layer, allowed)) = big_signed_bundle(dir.path()) else {
        return;
    };
    let allowed = allowed.to_str().unwrap();
    let layout = dir.path().join("layout");
    let clean = dir.path().join("b.tar");
    ocikit()
        .arg("import")
        .arg(&clean)
        .arg(&layout)
        .assert()
        .success();
    let index = fs::read(layout.join("index.json")).unwrap();

    // `git archive` writes a global header with a comment: it changes nothing, and verifies.
    let comment = dir.path().join("comment.tar");
    let records = b"52 comment=4b825dc642cb6eb9a060e54bf8d69288fbee4904\n";
    fs::write(&comment, with_global_header(&entries, &layer, records)).unwrap();
    let (code, stdout) = verify(&[comment.to_str().unwrap(), "--allowed-signers", allowed]);
    assert_eq!(code, 0, "{stdout}");

    let evil = dir.path().join("evil.tar");
    fs::write(&evil, with_global_header(&entries, &layer, b"9 size=0\n")).unwrap();
    let (code, stdout) = verify(&[evil.to_str().unwrap(), "--allowed-signers", allowed]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("tar readers disagree")
            && stdout.contains("global header at byte")
            && stdout.contains("sets size"),
        "{stdout}"
    );
    let import = ocikit()
        .arg("import")
        .arg(&evil)
        .arg(&layout)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&import.stderr);
    assert_eq!(import.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sets size"), "{stderr}");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index);
    let validate = ocikit().arg("validate").arg(&evil).output().unwrap();
    let out = String::from_utf8_lossy(&validate.stdout);
    assert_eq!(validate.status.code(), Some(1), "{out}");
    assert!(out.contains("L15") && out.contains("sets size"), "{out}");

    // Another index.json after the end-of-archive marker: `tar -i` extracts it over the real one.
    let mut bytes = fs::read(&clean).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_mode(0o644);
    header.set_size(2);
    builder
        .append_data(&mut header, "index.json", &b"{}"[..])
        .unwrap();
    bytes.extend(builder.into_inner().unwrap());
    let after = dir.path().join("after.tar");
    fs::write(&after, bytes).unwrap();
    let (code, stdout) = verify(&[after.to_str().unwrap(), "--allowed-signers", allowed]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("after its end-of-archive marker (which ends at byte"),
        "{stdout}"
    );
    let validate = ocikit().arg("validate").arg(&after).output().unwrap();
    let out = String::from_utf8_lossy(&validate.stdout);
    assert!(out.contains("L15") && out.contains("`tar -i`"), "{out}");
}

#[test]
fn import_with_allowed_signers_takes_only_a_bundle_a_listed_key_signed() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, allowed)) = keys(dir.path()) else {
        return;
    };
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    let (_, other_allowed) = keys(&other).unwrap();
    let signed = dir.path().join("signed.tar");
    create(&signed, &["--sign", key.to_str().unwrap()]);
    let unsigned = dir.path().join("unsigned.tar");
    create(&unsigned, &[]);
    let exported = dir.path().join("exported.tar");
    ocikit()
        .arg("export")
        .arg(format!("{}:app:gzip", sample_layout().display()))
        .arg("-o")
        .arg(&exported)
        .assert()
        .success();
    let entries = read_entries(&signed);
    // The signed SHA256SUMS changed in transit.
    let mut tampered = entries.clone();
    for (name, _, data) in tampered.iter_mut() {
        if name == "SHA256SUMS" {
            data.extend_from_slice(format!("{}  extra\n", "0".repeat(64)).as_bytes());
        }
    }
    let tampered_path = dir.path().join("tampered.tar.gz");
    write_archive(&tampered_path, &tampered, false);
    // The signature and its SHA256SUMS carried in an archive of another kind (a docker save
    // archive is never checked against a SHA256SUMS).
    let mut foreign = entries.clone();
    foreign.retain(|(name, _, _)| name != "oci-layout");
    foreign.push((
        "manifest.json".into(),
        tar::EntryType::Regular,
        b"[]".to_vec(),
    ));
    let foreign_path = dir.path().join("foreign.tar.gz");
    write_archive(&foreign_path, &foreign, false);

    for (i, (archive, allowed, says)) in [
        (&unsigned, &allowed, "is an unsigned bundle"),
        (&signed, &other_allowed, "does not list"),
        (&exported, &allowed, "is not a bundle"),
        (&tampered_path, &allowed, "signature is not accepted"),
        (&foreign_path, &allowed, "is not a bundle"),
    ]
    .into_iter()
    .enumerate()
    {
        let layout = dir.path().join(format!("refused-{i}"));
        ocikit()
            .arg("import")
            .arg(archive)
            .arg(&layout)
            .arg("--allowed-signers")
            .arg(allowed)
            .assert()
            .failure()
            .stderr(
                predicates::str::contains(says)
                    .and(predicates::str::contains("nothing was imported")),
            );
        assert!(!layout.exists(), "{}: a layout was left", archive.display());
    }

    // The signed bundle imports, from the file and, compressed, from stdin, and says who signed.
    let layout = dir.path().join("imported");
    let imported = ocikit()
        .arg("import")
        .arg(&signed)
        .arg(&layout)
        .arg("--allowed-signers")
        .arg(&allowed)
        .arg("--json")
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "signature: good, SHA256SUMS signed by release@example.com",
        ));
    let json: Value = serde_json::from_slice(&imported.get_output().stdout).unwrap();
    assert_eq!(json["signedBy"]["principals"][0], "release@example.com");
    crate::copy::assert_valid(&layout);
    let gz = dir.path().join("signed.tar.gz");
    write_archive(&gz, &entries, false);
    let streamed = dir.path().join("streamed");
    ocikit()
        .arg("import")
        .arg("-")
        .arg(&streamed)
        .arg("--allowed-signers")
        .arg(&allowed)
        .pipe_stdin(&gz)
        .unwrap()
        .assert()
        .success();
    assert_eq!(
        fs::read(streamed.join("index.json")).unwrap(),
        fs::read(layout.join("index.json")).unwrap()
    );
}
