//! `convert --compression/--to-oci/--distributable`: round trips that keep diff_ids and the
//! config, each shared layer converted once, Docker documents made OCI, non-distributable
//! layers made ordinary (or refused when absent), referrers counted and copied, refusals that
//! leave the layout as it was, the same digests on 1 and 2 threads, and what skopeo and umoci
//! make of the result.

use std::path::{Path, PathBuf};

use ocikit::codec::layer::{Compression, Entry, LayerOptions};
use ocikit::ops::layer::build_layer;
use ocikit::spec::document::media_type::{
    DOCKER_CONFIG, DOCKER_LAYER_FOREIGN_GZIP, DOCKER_LAYER_GZIP, DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_NONDIST_GZIP,
    OCI_LAYER_ZSTD, OCI_MANIFEST,
};
use ocikit::store::layout::Layout;
use predicates::prelude::*;
use serde_json::{json, Value};

use crate::fixtures::{self, descriptor_value, tag, write_document};
use crate::helpers::assert_deep_valid;
use crate::helpers::{
    blob_bytes, blob_names, index_bytes, ocikit, ocikit_json, sample_layout_copy, tool_available,
    trimmed_stdout,
};

fn l(path: &Path) -> String {
    path.display().to_string()
}

fn json_blob(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob_bytes(layout, digest)).unwrap()
}

/// `ocikit convert REF ARGS… --json` on `threads` rayon threads; the report.
fn convert(reference: &str, args: &[&str], threads: &str) -> Value {
    let out = ocikit()
        .env("RAYON_NUM_THREADS", threads)
        .arg("convert")
        .arg(reference)
        .args(args)
        .arg("--json")
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

fn named(layout: &Path, name: &str) -> String {
    let index: Value = serde_json::from_slice(&index_bytes(layout)).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no entry named {name}"))
}

/// `ocikit convert ARGS…` must fail (exit 2) with every one of `said` in its message, and
/// leave `layout` as it was: index.json, blobs, no temp file.
fn refused(layout: &Path, args: &[&str], said: &[&str]) {
    let before = index_bytes(layout);
    let blobs = blob_names(layout);
    let out = ocikit().arg("convert").args(args).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for text in said {
        assert!(stderr.contains(text), "{text:?} not in {stderr}");
    }
    assert_eq!(index_bytes(layout), before, "index.json unchanged");
    assert_eq!(blob_names(layout), blobs, "no blob added");
    assert!(crate::helpers::temp_files(layout).is_empty());
}

#[test]
fn gzip_to_zstd_and_back_keeps_diff_ids_and_config_and_moves_the_name() {
    let (_dir, layout) = sample_layout_copy();
    let old = named(&layout, "app:gzip");
    let before = json_blob(&layout, &old);
    let zstd = convert(
        &format!("{}:app:gzip", l(&layout)),
        &["--compression", "zstd"],
        "2",
    );
    let new = zstd["to"]["digest"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(named(&layout, "app:gzip"), new, "the name moved");
    assert_eq!(zstd["names"], json!(["app:gzip"]));
    let after = json_blob(&layout, &new);
    assert_eq!(after["config"], before["config"], "config bytes unchanged");
    assert_eq!(after["layers"][0]["mediaType"], OCI_LAYER_ZSTD);
    // The same image as the sample's own zstd one: same diff_ids, same compressor.
    assert_eq!(
        after["layers"][0]["digest"],
        json_blob(&layout, &named(&layout, "app:zstd"))["layers"][0]["digest"]
    );
    assert!(
        layout.join("blobs/sha256").join(&old[7..]).exists(),
        "old stays until gc"
    );
    // The SBOM referrer of the old manifest is counted, not copied.
    assert_eq!(zstd["referrers"].as_array().unwrap().len(), 1);
    assert!(zstd["referrers"][0].get("copy").is_none());

    let back = convert(
        &format!("{}:app:gzip", l(&layout)),
        &["--compression", "gzip"],
        "1",
    );
    assert_eq!(
        back["to"]["digest"],
        old.as_str(),
        "gzip again: the same bytes"
    );
    assert_deep_valid(&layout);
}

#[test]
fn the_same_input_gives_the_same_digest_on_one_and_two_threads() {
    let mut digests = Vec::new();
    for threads in ["1", "2"] {
        let (_dir, layout) = sample_layout_copy();
        for (name, compression) in [("app:multi", "zstd"), ("app:zstd", "gzip")] {
            let report = convert(
                &format!("{}:{name}", l(&layout)),
                &["--compression", compression, "--threads", threads],
                threads,
            );
            digests.push((name, report["to"]["digest"].clone()));
        }
    }
    assert_eq!(digests[0], digests[2]);
    assert_eq!(digests[1], digests[3]);
}

/// A layout with an index of two images sharing a large layer (each with a small one of its
/// own) and an attestation-like member (an artifact manifest), named `shared`.
fn shared_layers_index(dir: &Path) -> (PathBuf, Value) {
    let path = dir.join("shared");
    let (layout, _) = Layout::init(&path).unwrap();
    let writer = layout.writer().unwrap();
    let options = LayerOptions::new(Compression::Gzip).with_mtime(fixtures::MTIME);
    let big: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
    let common = build_layer(&writer, &[Entry::file("big.txt", big)], &options).unwrap();
    let mut members = Vec::new();
    for arch in ["amd64", "arm64"] {
        let own = build_layer(&writer, &[Entry::file("arch", arch)], &options).unwrap();
        let config = write_document(
            &writer,
            OCI_CONFIG,
            &json!({"architecture": arch, "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [common.diff_id, own.diff_id]}}),
        );
        let manifest = write_document(
            &writer,
            OCI_MANIFEST,
            &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": descriptor_value(&config),
                    "layers": [descriptor_value(&common.descriptor), descriptor_value(&own.descriptor)]}),
        );
        members.push(json!({"mediaType": OCI_MANIFEST, "digest": manifest.digest,
                            "size": manifest.size, "platform": {"architecture": arch, "os": "linux"}}));
    }
    // As BuildKit writes them: an image config of os "unknown", in-toto statements as layers.
    let statement = writer.write_blob_bytes(b"{\"predicate\":{}}").unwrap();
    let config = write_document(
        &writer,
        OCI_CONFIG,
        &json!({"architecture": "unknown", "os": "unknown",
                "rootfs": {"type": "layers", "diff_ids": [statement.digest]}}),
    );
    let attestation = write_document(
        &writer,
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": descriptor_value(&config),
                "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement.digest, "size": statement.size}]}),
    );
    members.push(
        json!({"mediaType": OCI_MANIFEST, "digest": attestation.digest, "size": attestation.size,
                        "platform": {"architecture": "unknown", "os": "unknown"},
                        "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                        "vnd.docker.reference.digest": members[0]["digest"]}}),
    );
    let index = write_document(
        &writer,
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": members}),
    );
    tag(&writer, &index, "shared");
    let value = json_blob(&path, index.digest.as_str());
    (path, value)
}

#[test]
fn an_index_with_shared_layers_converts_each_layer_once_and_keeps_other_members() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, before) = shared_layers_index(dir.path());
    let report = convert(
        &format!("{}:shared", l(&layout)),
        &["--compression", "zstd"],
        "2",
    );
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(
        layers.len(),
        3,
        "the shared layer once, two own layers: {report}"
    );
    assert!(layers.iter().all(|l| l["recompressed"] == true));
    assert_eq!(
        report["documents"].as_array().unwrap().len(),
        3,
        "two manifests and the index"
    );
    let after = json_blob(&layout, report["to"]["digest"].as_str().unwrap());
    assert_eq!(after["mediaType"], OCI_INDEX);
    let members = after["manifests"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(
        members[2], before["manifests"][2],
        "attestation kept as it is"
    );
    let shared: Vec<Value> = members[..2]
        .iter()
        .map(|m| {
            assert_ne!(m["digest"], Value::Null);
            assert_eq!(m["platform"]["os"], "linux", "platform kept");
            json_blob(&layout, m["digest"].as_str().unwrap())["layers"][0].clone()
        })
        .collect();
    assert_eq!(shared[0], shared[1]);
    assert_eq!(shared[0]["mediaType"], OCI_LAYER_ZSTD);
    let out = ocikit()
        .args(["validate", "--deep"])
        .arg(&layout)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A Docker v2 schema2 image (manifest, config, gzip layers, one of them foreign with
/// `urls`) in a Docker manifest list, named `docker`; `foreign_present` says whether the
/// foreign layer's blob is in the layout. Returns the layout and the list's digest.
fn docker_layout(dir: &Path, foreign_present: bool) -> (PathBuf, String) {
    let path = dir.join(if foreign_present {
        "docker"
    } else {
        "docker-absent"
    });
    let (layout, _) = Layout::init(&path).unwrap();
    let writer = layout.writer().unwrap();
    let options = LayerOptions::new(Compression::Gzip).with_mtime(fixtures::MTIME);
    let base = build_layer(&writer, &fixtures::base_files(), &options).unwrap();
    let foreign_entries = [Entry::file("foreign.txt", "from elsewhere\n")];
    let foreign = if foreign_present {
        build_layer(&writer, &foreign_entries, &options).unwrap()
    } else {
        let other = tempfile::tempdir().unwrap();
        let (scratch, _) = Layout::init(other.path()).unwrap();
        build_layer(&scratch.writer().unwrap(), &foreign_entries, &options).unwrap()
    };
    let config = write_document(
        &writer,
        DOCKER_CONFIG,
        &json!({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [base.diff_id, foreign.diff_id]}}),
    );
    let manifest = write_document(
        &writer,
        DOCKER_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": config.digest, "size": config.size},
        "layers": [
            {"mediaType": DOCKER_LAYER_GZIP, "digest": base.descriptor.digest, "size": base.descriptor.size},
            {"mediaType": DOCKER_LAYER_FOREIGN_GZIP, "digest": foreign.descriptor.digest,
             "size": foreign.descriptor.size, "urls": ["https://example.com/foreign"]},
        ]}),
    );
    let list = write_document(
        &writer,
        DOCKER_MANIFEST_LIST,
        &json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST,
                "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": manifest.digest, "size": manifest.size,
                               "platform": {"architecture": "amd64", "os": "linux"}}]}),
    );
    tag(&writer, &list, "docker");
    (path, list.digest.to_string())
}

#[test]
fn to_oci_turns_docker_documents_and_foreign_layers_into_oci_ones_keeping_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, old) = docker_layout(dir.path(), true);
    let before_list = json_blob(&layout, &old);
    let before = json_blob(
        &layout,
        before_list["manifests"][0]["digest"].as_str().unwrap(),
    );
    let report = convert(&format!("{}:docker", l(&layout)), &["--to-oci"], "2");
    let list = json_blob(&layout, report["to"]["digest"].as_str().unwrap());
    assert_eq!(report["to"]["mediaType"], OCI_INDEX);
    assert_eq!(list["mediaType"], OCI_INDEX);
    assert_eq!(list["manifests"][0]["mediaType"], OCI_MANIFEST);
    assert_eq!(
        list["manifests"][0]["platform"],
        before_list["manifests"][0]["platform"]
    );
    let manifest = json_blob(&layout, list["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], OCI_CONFIG);
    assert_eq!(
        manifest["config"]["digest"], before["config"]["digest"],
        "config bytes kept"
    );
    for i in 0..2 {
        assert_eq!(
            manifest["layers"][i]["digest"], before["layers"][i]["digest"],
            "layer bytes kept"
        );
        assert_eq!(manifest["layers"][i]["mediaType"], OCI_LAYER_GZIP);
        assert!(manifest["layers"][i].get("urls").is_none());
    }
    assert!(report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["recompressed"] == false));
    let entry = &ocikit_json(["ls", "--json", &l(&layout)])["rows"][0];
    assert_eq!(entry["digest"], report["to"]["digest"], "{entry}");
    // Combined with recompression: Docker and foreign layers become OCI zstd ones.
    let (layout2, _) = docker_layout(&dir.path().join("again"), true);
    let both = convert(
        &format!("{}:docker", l(&layout2)),
        &["--to-oci", "--compression", "zstd"],
        "1",
    );
    let list = json_blob(&layout2, both["to"]["digest"].as_str().unwrap());
    let manifest = json_blob(&layout2, list["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(manifest["layers"][1]["mediaType"], OCI_LAYER_ZSTD);
    assert_eq!(manifest["config"]["digest"], before["config"]["digest"]);
}

#[test]
fn without_to_oci_docker_types_stay_docker_types_and_foreign_layers_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _) = docker_layout(dir.path(), false);
    let report = convert(
        &format!("{}:docker", l(&layout)),
        &["--compression", "zstd"],
        "2",
    );
    assert_eq!(report["to"]["mediaType"], DOCKER_MANIFEST_LIST);
    assert_eq!(report["layersKept"], 1, "the foreign layer: {report}");
    let list = json_blob(&layout, report["to"]["digest"].as_str().unwrap());
    let manifest = json_blob(&layout, list["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.zstd"
    );
    assert_eq!(
        manifest["layers"][1]["mediaType"],
        DOCKER_LAYER_FOREIGN_GZIP
    );
    assert_eq!(
        manifest["layers"][1]["urls"],
        json!(["https://example.com/foreign"])
    );
}

#[test]
fn a_non_distributable_layer_is_made_ordinary_when_present_and_refused_when_absent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nd");
    let (layout, _) = Layout::init(&path).unwrap();
    let writer = layout.writer().unwrap();
    let options = LayerOptions::new(Compression::Gzip).with_mtime(fixtures::MTIME);
    let layer = build_layer(&writer, &fixtures::base_files(), &options).unwrap();
    let config = write_document(
        &writer,
        OCI_CONFIG,
        &json!({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}),
    );
    let manifest = |digest: &str| {
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor_value(&config),
               "layers": [{"mediaType": OCI_LAYER_NONDIST_GZIP, "digest": digest,
                           "size": layer.descriptor.size, "urls": ["https://example.com/l"]}]})
    };
    let present = write_document(
        &writer,
        OCI_MANIFEST,
        &manifest(layer.descriptor.digest.as_str()),
    );
    tag(&writer, &present, "present");
    let missing = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    let absent = write_document(&writer, OCI_MANIFEST, &manifest(missing));
    tag(&writer, &absent, "absent");
    drop(writer);

    refused(
        &path,
        &[&format!("{}:absent", l(&path)), "--distributable"],
        &[
            missing,
            "non-distributable layer 0",
            "https://example.com/l",
        ],
    );

    let report = convert(&format!("{}:present", l(&path)), &["--distributable"], "2");
    let after = json_blob(&path, report["to"]["digest"].as_str().unwrap());
    assert_eq!(after["layers"][0]["mediaType"], OCI_LAYER_GZIP);
    assert_eq!(
        after["layers"][0]["digest"],
        layer.descriptor.digest.as_str()
    );
    assert!(after["layers"][0].get("urls").is_none());
}

#[test]
fn referrers_are_counted_and_copied_to_the_new_manifest_with_a_warning() {
    let (_dir, layout) = sample_layout_copy();
    let out = ocikit()
        .args(["convert", &format!("{}:app:gzip", l(&layout))])
        .args([
            "--compression",
            "zstd",
            "--copy-referrers",
            "--name",
            "app:converted",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "signatures over the old digests will not verify",
        ));
    let new = trimmed_stdout(&out);
    assert_eq!(named(&layout, "app:converted"), new);
    assert_ne!(named(&layout, "app:gzip"), new, "the old name stays");
    let listed = ocikit_json([
        "referrers",
        "--json",
        &format!("{}:app:converted", l(&layout)),
    ]);
    let referrers = listed["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 1, "{listed}");
    assert_eq!(referrers[0]["artifactType"], fixtures::SBOM_TYPE);
    let copy = json_blob(&layout, referrers[0]["digest"].as_str().unwrap());
    assert_eq!(copy["subject"]["digest"], new.as_str());
    let old = ocikit_json(["referrers", "--json", &format!("{}:app:gzip", l(&layout))]);
    assert_eq!(
        old["referrers"].as_array().unwrap().len(),
        1,
        "the original stays"
    );
    ocikit().args(["validate"]).arg(&layout).assert().success();
    // Without --copy-referrers the count is said.
    ocikit()
        .args(["convert", &format!("{}:app:gzip", l(&layout))])
        .args(["--compression", "zstd"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "the old documents have 1 referrer",
        ));
}

#[test]
fn a_diff_id_mismatch_or_a_bomb_limit_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad");
    let (layout, _) = Layout::init(&path).unwrap();
    let writer = layout.writer().unwrap();
    let options = LayerOptions::new(Compression::Gzip).with_mtime(fixtures::MTIME);
    let good = build_layer(&writer, &fixtures::base_files(), &options).unwrap();
    let zeros = vec![0u8; 4 << 20];
    let big = build_layer(&writer, &[Entry::file("zeros", zeros)], &options).unwrap();
    let image = |diff_ids: Value, layers: Vec<&ocikit::ops::layer::BuiltLayer>| {
        let config = write_document(
            &writer,
            OCI_CONFIG,
            &json!({"architecture": "amd64", "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}}),
        );
        let layers: Vec<Value> = layers
            .iter()
            .map(|l| descriptor_value(&l.descriptor))
            .collect();
        write_document(
            &writer,
            OCI_MANIFEST,
            &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": descriptor_value(&config), "layers": layers}),
        )
    };
    let wrong = image(json!([big.diff_id]), vec![&good]);
    tag(&writer, &wrong, "wrong");
    let bomb = image(json!([good.diff_id, big.diff_id]), vec![&good, &big]);
    tag(&writer, &bomb, "bomb");
    drop(writer);
    let wrong_ref = format!("{}:wrong", l(&path));
    refused(
        &path,
        &[&wrong_ref, "--compression", "zstd"],
        &[good.descriptor.digest.as_str(), "diff_id"],
    );
    let bomb_ref = format!("{}:bomb", l(&path));
    refused(
        &path,
        &[
            &bomb_ref,
            "--compression",
            "zstd",
            "--max-uncompressed",
            "1M",
        ],
        &[big.descriptor.digest.as_str(), "--max-uncompressed"],
    );
}

#[test]
fn archives_and_missing_modes_are_refused() {
    let (_dir, layout) = sample_layout_copy();
    let archive = layout.with_extension("tar");
    crate::producers::run("tar", &["-cf", &l(&archive), "-C", &l(&layout), "."]);
    ocikit()
        .args([
            "convert",
            &format!("{}:app:gzip", l(&archive)),
            "--compression",
            "zstd",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "archives cannot be changed in place",
        ));
    ocikit()
        .args([
            "convert",
            &format!("{}:app:gzip", l(&layout)),
            "--name",
            "x",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--compression"));
    // One platform of an index has no name of its own to move.
    let multi = format!("{}:app:multi", l(&layout));
    let one = ["--platform", "linux/arm64", "--compression", "zstd"];
    refused(
        &layout,
        &[&[multi.as_str()][..], &one].concat(),
        &["--name NAME"],
    );
    let arm = convert(&multi, &[&one[..], &["--name", "app:arm64"]].concat(), "2");
    assert_eq!(
        named(&layout, "app:arm64"),
        arm["to"]["digest"].as_str().unwrap()
    );
    // An image already in the target form: nothing changes.
    let before = index_bytes(&layout);
    let report = convert(
        &format!("{}:app:zstd", l(&layout)),
        &["--compression", "zstd"],
        "2",
    );
    assert_eq!(report["from"], report["to"]);
    assert_eq!(index_bytes(&layout), before);
}

// ---- interop ----

#[test]
fn skopeo_umoci_and_containers_storage_read_converted_images() {
    let (dir, layout) = sample_layout_copy();
    convert(
        &format!("{}:app:gzip", l(&layout)),
        &["--compression", "zstd"],
        "2",
    );
    convert(
        &format!("{}:app:multi", l(&layout)),
        &["--compression", "zstd"],
        "2",
    );
    if tool_available("skopeo") {
        let out = dir.path().join("copied");
        crate::producers::skopeo(&[
            "copy",
            &format!("oci:{}:app:gzip", l(&layout)),
            &format!("oci:{}:copied", l(&out)),
        ]);
        assert_eq!(
            named(&out, "copied"),
            named(&layout, "app:gzip"),
            "the same manifest"
        );
        let plain = dir.path().join("dir");
        crate::producers::skopeo(&[
            "copy",
            "--all",
            &format!("oci:{}:app:multi", l(&layout)),
            &format!("dir:{}", l(&plain)),
        ]);
        assert!(plain.join("manifest.json").is_file());
    } else {
        eprintln!("skopeo cannot start: skipped");
    }
    if tool_available("umoci") {
        let bundle = dir.path().join("bundle");
        // umoci 0.4 reads no zstd layers: a converted gzip image (zstd → gzip, to OCI).
        convert(
            &format!("{}:app:zstd", l(&layout)),
            &["--compression", "gzip", "--to-oci"],
            "2",
        );
        crate::producers::run(
            "umoci",
            &[
                "unpack",
                "--rootless",
                "--image",
                &format!("{}:app:zstd", l(&layout)),
                &l(&bundle),
            ],
        );
        assert_eq!(
            std::fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(),
            fixtures::HELLO
        );
    } else {
        eprintln!("umoci cannot start: skipped");
    }
    // podman (containers-storage, vfs, a private store) takes the zstd image in.
    let Some(storage) = crate::producers::Storage::new(dir.path()) else {
        return;
    };
    // skopeo copy … containers-storage: into that store (podman pull derives a name from the
    // layout's path, which temp directories make invalid).
    let store = format!(
        "containers-storage:[vfs@{}+{}]localhost/converted:zstd",
        l(&dir.path().join("storage-root")),
        l(&dir.path().join("storage-runroot"))
    );
    crate::producers::skopeo(&["copy", &format!("oci:{}:app:gzip", l(&layout)), &store]);
    let Some(digest) = storage.podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Digest}}",
        "localhost/converted:zstd",
    ]) else {
        return; // noted by the helper: podman cannot run here
    };
    assert!(digest.contains(&named(&layout, "app:gzip")), "{digest}");
}

#[test]
fn what_convert_says() {
    let (_dir, layout) = sample_layout_copy();
    let gzip = format!("{}:app:gzip", l(&layout));
    let multi = format!("{}:app:multi", l(&layout));
    let mut shown = String::new();
    for args in [
        vec!["convert", &gzip, "--compression", "zstd"],
        vec!["convert", &gzip, "--compression", "zstd"],
        vec![
            "convert",
            &gzip,
            "--compression",
            "gzip",
            "--name",
            "back",
            "--copy-referrers",
        ],
        vec!["convert", &multi, "--to-oci", "--compression", "none"],
        vec![
            "convert",
            &multi,
            "--platform",
            "linux/amd64",
            "--compression",
            "zstd",
        ],
    ] {
        let mut command = ocikit();
        command.args(&args);
        shown.push_str(&format!("$ ocikit {}\n", args.join(" ")));
        shown.push_str(&crate::helpers::transcript(
            &mut command,
            &[(&layout, "[LAYOUT]")],
        ));
        shown.push('\n');
    }
    insta::assert_snapshot!(shown.replace(&l(&layout), "[LAYOUT]"));
}
