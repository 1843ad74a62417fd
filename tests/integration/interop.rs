//! Interoperability with skopeo and umoci: what ocikit writes they read, what they write
//! ocikit reads. Each test is skipped, with a note, when the tool it needs is not installed.
//! The sample layout is always copied first: tests never touch `testdata/`.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use ocikit::codec::decode::{decompress, Limits};
use ocikit::codec::layer::Compression;
use ocikit::codec::tar::{path, Reader};
use ocikit::Digest;
use serde_json::Value;

use crate::fixtures;
use crate::helpers::{ocikit, sample_layout_copy, tool_available};

/// The sample's descriptors, built afresh (equal to testdata/sample, see testdata.rs); the
/// temp layout is gone when this returns, only the descriptors are used.
fn expected() -> fixtures::Sample {
    let dir = tempfile::tempdir().unwrap();
    fixtures::sample_layout(&dir.path().join("sample"))
}

/// Runs an external tool, failing the test with its output when it fails; returns stdout.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// skopeo with no dependence on the machine's signature policy.
fn skopeo(args: &[&str]) -> String {
    let mut all = vec!["--insecure-policy"];
    all.extend_from_slice(args);
    run("skopeo", &all)
}

fn oci(layout: &Path, name: &str) -> String {
    format!("oci:{}:{name}", layout.display())
}

fn ocikit_json(args: &[&str], target: String) -> Value {
    let out = ocikit().args(args).arg(&target).assert().success();
    serde_json::from_slice(&out.get_output().stdout).expect("ocikit printed JSON")
}

/// The `ocikit ls --json` row named `name`.
fn ls_row(layout: &Path, name: &str) -> Value {
    let listing = ocikit_json(&["ls", "--json"], layout.display().to_string());
    listing["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {listing}"))
        .clone()
}

/// The digest index.json records for `name`.
fn index_digest(layout: &Path, name: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap_or_else(|| panic!("no entry {name} in {index}"))["digest"]
        .as_str()
        .expect("digest")
        .to_string()
}

/// `ocikit cat LAYOUT@DIGEST`, checked to hash to the digest; returns the bytes.
fn cat_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let out = ocikit()
        .arg("cat")
        .arg(format!("{}@{digest}", layout.display()))
        .assert()
        .success();
    let bytes = out.get_output().stdout.clone();
    assert_eq!(Digest::sha256_of(&bytes).as_str(), digest);
    bytes
}

// ---- what ocikit writes, they read ----

#[test]
fn skopeo_inspects_what_ocikit_wrote() {
    if !tool_available("skopeo") {
        return;
    }
    let (_dir, sample) = sample_layout_copy();
    let want = expected();
    let out = skopeo(&["inspect", &oci(&sample, "app:gzip")]);
    let info: Value = serde_json::from_str(&out).expect("skopeo inspect prints JSON");
    assert_eq!(info["Digest"], want.gzip.manifest.digest.as_str(), "{info}");
    assert_eq!(
        info["Layers"],
        serde_json::json!([want.gzip.layers[0].descriptor.digest.as_str()])
    );
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Created"], fixtures::CREATED_AT);

    // The artifact's subject image and the index are readable too.
    let raw = skopeo(&["inspect", "--raw", &oci(&sample, "app:multi")]);
    assert_eq!(
        Digest::sha256_of(raw.as_bytes()),
        want.multi.digest,
        "skopeo returns the index bytes unchanged"
    );
}

#[test]
fn skopeo_copies_what_ocikit_wrote() {
    if !tool_available("skopeo") {
        return;
    }
    let (dir, sample) = sample_layout_copy();
    let want = expected();
    let zstd_copy = dir.path().join("zstd-copy");
    skopeo(&["copy", &oci(&sample, "app:zstd"), &oci(&zstd_copy, "x")]);
    // Nothing needed changing, so the manifest (and its zstd layer) arrive byte for byte.
    assert_eq!(
        index_digest(&zstd_copy, "x"),
        want.zstd.manifest.digest.as_str()
    );
    let row = ls_row(&zstd_copy, "x");
    assert_eq!(row["platforms"], serde_json::json!(["linux/amd64"]));
    let layer = want.zstd.layers[0].descriptor.digest.as_str();
    cat_blob(&zstd_copy, layer);

    let multi_copy = dir.path().join("multi-copy");
    skopeo(&[
        "copy",
        "--all",
        &oci(&sample, "app:multi"),
        &oci(&multi_copy, "m"),
    ]);
    let row = ls_row(&multi_copy, "m");
    assert_eq!(row["digest"], want.multi.digest.as_str());
    assert_eq!(
        row["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
}

#[test]
fn umoci_lists_and_unpacks_what_ocikit_wrote() {
    if !tool_available("umoci") {
        return;
    }
    let (dir, sample) = sample_layout_copy();
    let listed = run("umoci", &["ls", "--layout", &sample.display().to_string()]);
    let names: Vec<&str> = listed.lines().collect();
    for name in ["app:gzip", "app:zstd", "app:multi"] {
        assert!(names.contains(&name), "{name} not in umoci ls:\n{listed}");
    }

    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:app:gzip", sample.display()),
            &bundle.display().to_string(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("hello.txt")).unwrap(),
        fixtures::HELLO
    );
    assert!(std::fs::read_to_string(rootfs.join("etc/os-release"))
        .unwrap()
        .contains("ID=ocikit-sample"));
    assert_eq!(
        std::fs::read_link(rootfs.join("etc/motd")).unwrap(),
        Path::new("../hello.txt")
    );
    assert!(rootfs.join("var/empty").is_dir());
    // umoci checked the layer against the config's diff_id while unpacking; the runtime
    // config it wrote carries the image's command.
    let config: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["cat", "/hello.txt"])
    );
}

// ---- what they write, ocikit reads ----

#[test]
fn ocikit_reads_what_umoci_wrote() {
    if !tool_available("umoci") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("L");
    let layout_str = layout.display().to_string();
    let image = format!("{layout_str}:base");
    run("umoci", &["init", "--layout", &layout_str]);
    run("umoci", &["new", "--image", &image]);
    let source = dir.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("file.txt"), "inserted by umoci\n").unwrap();
    run(
        "umoci",
        &[
            "insert",
            "--rootless",
            "--image",
            &image,
            &source.display().to_string(),
            "/data",
        ],
    );
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/echo",
            "--config.cmd",
            "hi",
        ],
    );

    let digest = index_digest(&layout, "base");
    let row = ls_row(&layout, "base");
    assert_eq!(row["digest"], digest.as_str(), "{row}");
    assert!(row.get("problem").is_none(), "{row}");

    let inspection = ocikit_json(&["inspect", "--json"], image.clone());
    assert_eq!(inspection["digest"], digest.as_str());
    // The platform ocikit reports is the one umoci put in the config.
    let config_digest = inspection["config"]["digest"].as_str().expect("config");
    let config: Value = serde_json::from_slice(&cat_blob(&layout, config_digest)).unwrap();
    let platform = format!(
        "{}/{}",
        config["os"].as_str().unwrap(),
        config["architecture"].as_str().unwrap()
    );
    assert_eq!(inspection["config"]["platform"], platform.as_str());
    assert_eq!(row["platforms"], serde_json::json!([platform]));
    assert_eq!(
        inspection["config"]["cmd"],
        serde_json::json!(["/bin/echo", "hi"])
    );
    let layers = inspection["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "umoci insert added one layer");
    assert_eq!(layers[0]["detected"], "gzip");

    // The layer holds the inserted file and hashes to the config's diff_id.
    let layer_digest = layers[0]["digest"].as_str().unwrap();
    let blob = cat_blob(&layout, layer_digest);
    let tar_bytes = decompressed(&blob, Compression::Gzip);
    assert_eq!(
        Digest::sha256_of(&tar_bytes).as_str(),
        config["rootfs"]["diff_ids"][0].as_str().unwrap()
    );
    let mut reader = Reader::new(&tar_bytes[..]);
    let mut found = false;
    while let Some(entry) = reader.next_entry().unwrap() {
        found |= path::normalize(&entry.header().path).clean == b"data/file.txt";
    }
    assert!(found, "data/file.txt is in umoci's layer");
}

#[test]
fn ocikit_reads_what_skopeo_wrote() {
    if !tool_available("skopeo") {
        return;
    }
    let (dir, sample) = sample_layout_copy();
    let want = expected();
    let copied = dir.path().join("copied");
    skopeo(&["copy", &oci(&sample, "app:gzip"), &oci(&copied, "copied")]);
    // skopeo 1.9 re-compresses on request: a gzip layer becomes zstd, the config (and so the
    // diff_id) stays.
    let recompressed = dir.path().join("recompressed");
    skopeo(&[
        "copy",
        "--dest-compress-format",
        "zstd",
        &oci(&copied, "copied"),
        &oci(&recompressed, "zstd"),
    ]);

    let row = ls_row(&copied, "copied");
    assert_eq!(row["digest"], index_digest(&copied, "copied").as_str());
    assert_eq!(row["platforms"], serde_json::json!(["linux/amd64"]));

    let diff_id = want.gzip.layers[0].diff_id.clone();
    for (layout, name, compression) in [
        (&copied, "copied", Compression::Gzip),
        (&recompressed, "zstd", Compression::Zstd),
    ] {
        let row = ls_row(layout, name);
        assert_eq!(row["digest"], index_digest(layout, name).as_str());
        let inspection = ocikit_json(
            &["inspect", "--json"],
            format!("{}:{name}", layout.display()),
        );
        assert_eq!(
            inspection["config"]["digest"],
            want.gzip.config.digest.as_str()
        );
        assert_eq!(inspection["config"]["platform"], "linux/amd64");
        let layer = &inspection["layers"][0];
        assert_eq!(layer["compression"], compression.name(), "{inspection}");
        assert_eq!(layer["detected"], compression.name(), "{inspection}");
        let blob = cat_blob(layout, layer["digest"].as_str().unwrap());
        assert_eq!(
            Digest::sha256_of(&decompressed(&blob, compression)),
            diff_id,
            "{name}: the layer decompresses to the diff_id"
        );
    }
}

#[test]
fn ocikit_reads_named_referrers_that_skopeo_copied() {
    // What a copy from a registry without the referrers API leaves: skopeo copies an image
    // and a referrer of it by name, so the referrer's entry has a name and no fallback tag
    // or untagged entry records it.
    if !tool_available("skopeo") {
        return;
    }
    let (dir, sample) = sample_layout_copy();
    let sbom = ocikit_json(
        &["referrers", "--json"],
        format!("{}:app:gzip", sample.display()),
    )["referrers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    ocikit()
        .arg("tag")
        .arg(format!("{}@{sbom}", sample.display()))
        .arg("app:sbom")
        .assert()
        .success();
    let copied = dir.path().join("copied");
    skopeo(&["copy", &oci(&sample, "app:gzip"), &oci(&copied, "app:gzip")]);
    skopeo(&["copy", &oci(&sample, "app:sbom"), &oci(&copied, "app:sbom")]);
    assert_eq!(index_digest(&copied, "app:sbom"), sbom);

    let listed = ocikit_json(
        &["referrers", "--json"],
        format!("{}:app:gzip", copied.display()),
    );
    assert_eq!(listed["referrers"][0]["digest"], sbom.as_str());
    assert_eq!(
        listed["referrers"][0]["foundIn"],
        serde_json::json!(["index"])
    );
    assert_eq!(ls_row(&copied, "app:gzip")["referrers"], 1);
    assert_eq!(
        ls_row(&copied, "app:sbom")["artifactType"],
        fixtures::SBOM_TYPE
    );
    let gc = ocikit_json(&["gc", "--json"], copied.display().to_string());
    assert_eq!(gc["removedBlobs"], Value::Array(vec![]), "{gc}");
    ocikit().arg("validate").arg(&copied).assert().success();
}

fn decompressed(blob: &[u8], compression: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    decompress(blob, compression, &Limits::default())
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The differential of issue 8 is real: on an `index.json` entry with `"digest": A` and
/// `"Digest": B`, skopeo and umoci (Go's encoding/json) read B, where an exact reader reads A.
/// And ocikit's scan agrees with skopeo on which spellings fold: it refuses every layout on
/// which skopeo reads B (a case variant, the long s, a repeated member), and accepts the one
/// on which skopeo, like ocikit, reads A (a dotless ı folds to nothing in Go).
#[test]
fn skopeo_and_umoci_read_the_case_folded_digest() {
    for (member, go_reads_b) in [
        ("Digest", true),
        ("DIGEST", true),
        ("dige\u{17F}t", true),
        ("digest", true),
        ("d\u{131}gest", false),
    ] {
        let (layout, a, b) = crate::differentials::Layout::with_second_digest(member);
        let reference = format!("{}:app:gzip", layout.root.display());
        if tool_available("skopeo") {
            let output = Command::new("skopeo")
                .args(["--insecure-policy", "inspect", "--raw"])
                .arg(format!("oci:{reference}"))
                .output()
                .expect("run skopeo");
            assert!(output.status.success(), "{member}: {output:?}");
            let read = Digest::sha256_of(&output.stdout);
            let want = if go_reads_b { &b } else { &a };
            assert_eq!(read.as_str(), want, "skopeo on {member:?}");
        }
        let ocikit_run = ocikit().args(["inspect", "--raw"]).arg(&reference).output();
        let ocikit_run = ocikit_run.expect("run ocikit");
        if go_reads_b {
            assert_eq!(ocikit_run.status.code(), Some(2), "ocikit on {member:?}");
        } else {
            assert!(ocikit_run.status.success(), "ocikit on {member:?}");
            assert_eq!(Digest::sha256_of(&ocikit_run.stdout).as_str(), a);
        }
    }
    if tool_available("umoci") {
        // umoci stat lists the layers of the manifest it resolved: B's, not A's.
        let (layout, a, b) = crate::differentials::Layout::issue_example();
        let manifest = |digest: &str| -> Value {
            let (_, hex) = digest.split_once(':').unwrap();
            serde_json::from_slice(
                &std::fs::read(layout.root.join("blobs/sha256").join(hex)).unwrap(),
            )
            .unwrap()
        };
        let layer = |digest: &str| {
            manifest(digest)["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_ne!(layer(&a), layer(&b));
        let image = format!("{}:app:gzip", layout.root.display());
        let stat = run("umoci", &["stat", "--json", "--image", &image]);
        assert!(stat.contains(&layer(&b)), "umoci did not read B: {stat}");
        assert!(!stat.contains(&layer(&a)), "umoci read A: {stat}");
    }
}
