//! `ocikit bundle create|verify`: bundles that verify with coreutils and OpenSSH alone, one
//! id for the same content as a directory or an archive, tampering caught, skopeo reads them.

use std::fs;
use std::path::Path;

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
