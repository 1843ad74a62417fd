//! `ocikit referrers`, `referrers sync` and `rm LAYOUT@DIGEST`: every convention of PRODUCT.md
//! §"Referrers inside a layout" is read (layouts built after each peer's convention), merged,
//! rewritten and removed.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use ocikit::graph::referrers::{Discovery, Scope};
use ocikit::store::layout::{FileInfo, Layout, LayoutRead};
use ocikit::Digest;
use predicates::prelude::*;
use serde_json::Value;

use crate::fixtures;
use crate::helpers::{
    blob_names, index_bytes, index_value, ocikit, ocikit_json, sample_layout, sample_layout_copy,
    trimmed_stdout,
};

fn l(path: &Path) -> String {
    path.display().to_string()
}

/// The digests of a `referrers --json` node's referrers.
fn digests(node: &Value) -> Vec<String> {
    node["referrers"]
        .as_array()
        .expect("referrers")
        .iter()
        .map(|r| r["digest"].as_str().expect("digest").to_string())
        .collect()
}

fn found_in(node: &Value) -> Vec<String> {
    node["foundIn"]
        .as_array()
        .expect("foundIn")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

fn referrers_json(target: String, extra: &[&str]) -> Value {
    let mut args = vec!["referrers".to_string(), target, "--json".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    ocikit_json(args)
}

/// Asserts that `referrers LAYOUT:app:1` lists `referrer` alone, with its artifact type, found
/// through `found`.
fn assert_only_referrer(
    layout: &Path,
    referrer: &ocikit::spec::document::Descriptor,
    found: &[&str],
) {
    let root = referrers_json(format!("{}:app:1", l(layout)), &[]);
    assert_eq!(digests(&root), [referrer.digest.as_str()]);
    assert_eq!(found_in(&root["referrers"][0]), found);
    assert_eq!(
        root["referrers"][0]["artifactType"],
        referrer.artifact_type.as_deref().unwrap()
    );
}

/// Names of the index.json entries that are fallback tags.
fn fallback_tags(layout: &Path) -> Vec<String> {
    index_value(layout)["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .filter(|n| n.starts_with("sha256-"))
        .map(str::to_string)
        .collect()
}

/// Digests of untagged index.json entries.
fn untagged(layout: &Path) -> Vec<String> {
    index_value(layout)["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"].is_null())
        .map(|m| m["digest"].as_str().expect("digest").to_string())
        .collect()
}

// ---- reading every convention ----

#[test]
fn referrers_lists_the_sample_sbom_recorded_in_both_conventions() {
    let out = ocikit()
        .args(["referrers", &format!("{}:app:gzip", l(&sample_layout()))])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}

#[test]
fn referrers_json_is_the_subject_with_its_referrers_nested() {
    let root = referrers_json(format!("{}:app:gzip", l(&sample_layout())), &[]);
    let want = fixtures::sample_layout(&tempfile::tempdir().unwrap().path().join("s"));
    assert_eq!(root["digest"], want.gzip.manifest.digest.as_str());
    assert_eq!(
        root["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let sbom = &root["referrers"][0];
    assert_eq!(sbom["digest"], want.sbom.manifest.digest.as_str());
    assert_eq!(sbom["artifactType"], fixtures::SBOM_TYPE);
    assert_eq!(sbom["size"], want.sbom.manifest.size);
    assert_eq!(
        sbom["annotations"]["org.opencontainers.image.created"],
        fixtures::CREATED_AT
    );
    assert_eq!(found_in(sbom), ["index", "tag"]);
    assert!(
        sbom.get("referrers").is_none(),
        "without --tree the listing stops at the first level"
    );
}

#[test]
fn referrers_reads_oras_style_untagged_entries() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oras");
    let (_, referrer) = fixtures::oras_style(&layout);
    assert_only_referrer(&layout, &referrer, &["index"]);
}

#[test]
fn referrers_reads_a_regctl_style_fallback_tag_alone() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("regctl");
    let (_, referrer) = fixtures::regctl_style(&layout);
    assert_only_referrer(&layout, &referrer, &["tag"]);
}

#[test]
fn referrers_finds_a_cosign_style_blob_only_referrer_only_with_scan() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("cosign");
    let (_, referrer) = fixtures::blob_only_style(&layout);
    let target = format!("{}:app:1", l(&layout));
    let without = referrers_json(target.clone(), &[]);
    assert!(digests(&without).is_empty());
    let with = referrers_json(target, &["--scan"]);
    assert_eq!(digests(&with), [referrer.digest.as_str()]);
    assert_eq!(found_in(&with["referrers"][0]), ["scan"]);
}

#[test]
fn referrers_merges_conventions_and_lists_each_referrer_once() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("mixed");
    let (image, oras) = fixtures::oras_style(&layout);
    let opened = Layout::open(&layout).unwrap();
    let writer = opened.writer().unwrap();
    let cosign = fixtures::referrer_manifest(&writer, &image, "application/vnd.example.c", b"c");
    // The fallback tag lists the oras referrer again, and a second one of its own.
    let regctl = fixtures::referrer_manifest(&writer, &image, "application/vnd.example.r", b"r");
    fixtures::record_fallback(&writer, &image.digest, &[oras.clone(), regctl.clone()]);
    drop(writer);
    let root = referrers_json(format!("{}:app:1", l(&layout)), &["--scan"]);
    assert_eq!(
        digests(&root),
        [
            oras.digest.as_str(),
            regctl.digest.as_str(),
            cosign.digest.as_str()
        ]
    );
    assert_eq!(found_in(&root["referrers"][0]), ["index", "tag", "scan"]);
    assert_eq!(found_in(&root["referrers"][1]), ["tag", "scan"]);
    assert_eq!(found_in(&root["referrers"][2]), ["scan"]);
}

#[test]
fn referrers_tree_follows_a_multi_hop_chain_and_depth_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("chain");
    let (_, chain) = fixtures::chain_style(&layout);
    let target = format!("{}:app:1", l(&layout));
    let tree = referrers_json(target.clone(), &["--tree"]);
    let sbom = &tree["referrers"][0];
    let signature = &sbom["referrers"][0];
    let attestation = &signature["referrers"][0];
    assert_eq!(sbom["digest"], chain[0].digest.as_str());
    assert_eq!(signature["digest"], chain[1].digest.as_str());
    assert_eq!(attestation["digest"], chain[2].digest.as_str());
    assert_eq!(attestation["referrers"], Value::Array(vec![]));

    let shallow = referrers_json(target.clone(), &["--depth", "2"]);
    assert_eq!(
        shallow["referrers"][0]["referrers"][0]["digest"],
        chain[1].digest.as_str()
    );
    assert!(shallow["referrers"][0]["referrers"][0]
        .get("referrers")
        .is_none());

    let text = ocikit()
        .args(["referrers", &target, "--tree"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!(String::from_utf8(text).unwrap());
}

#[test]
fn referrers_filters_by_artifact_type_and_annotation_at_every_level() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("chain");
    let (_, chain) = fixtures::chain_style(&layout);
    let target = format!("{}:app:1", l(&layout));
    let sboms = referrers_json(
        target.clone(),
        &["--artifact-type", "application/spdx+json"],
    );
    assert_eq!(digests(&sboms), [chain[0].digest.as_str()]);
    let none = referrers_json(target.clone(), &["--artifact-type", "application/x-none"]);
    assert!(digests(&none).is_empty());
    let created = format!("org.opencontainers.image.created={}", fixtures::CREATED_AT);
    let by_annotation = referrers_json(target.clone(), &["--annotation", &created]);
    assert_eq!(digests(&by_annotation), [chain[0].digest.as_str()]);
    let wrong = referrers_json(
        target.clone(),
        &["--annotation", "org.opencontainers.image.created=1999"],
    );
    assert!(digests(&wrong).is_empty());
    // A filter that the SBOM fails hides what hangs below it.
    let signatures = referrers_json(
        target.clone(),
        &[
            "--tree",
            "--artifact-type",
            "application/vnd.example.signature",
        ],
    );
    assert!(digests(&signatures).is_empty());
    ocikit()
        .args(["referrers", &target, "--annotation", "novalue"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("KEY=VALUE"));
}

#[test]
fn referrers_handles_an_index_whose_subject_is_one_of_its_own_children() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("self");
    let (index, child) = fixtures::self_subject_index(&layout);
    let of_child = format!("{}@{}", l(&layout), child.digest);
    // Recorded only by its name, the index is a referrer all the same (a name stays a name,
    // and an entry whose manifest has a subject is a referrer of it); a scan finds it too.
    let listed = referrers_json(of_child.clone(), &[]);
    assert_eq!(digests(&listed), [index.digest.as_str()]);
    assert_eq!(found_in(&listed["referrers"][0]), ["index"]);
    let scanned = referrers_json(of_child.clone(), &["--scan", "--tree"]);
    assert_eq!(digests(&scanned), [index.digest.as_str()]);
    assert_eq!(found_in(&scanned["referrers"][0]), ["index", "scan"]);
    assert_eq!(scanned["referrers"][0]["referrers"], Value::Array(vec![]));
    // sync records it like any referrer; the tree from either end terminates.
    ocikit()
        .args(["referrers", "sync", &l(&layout), "--format", "both"])
        .assert()
        .success();
    let synced = referrers_json(of_child, &["--tree"]);
    assert_eq!(digests(&synced), [index.digest.as_str()]);
    assert_eq!(found_in(&synced["referrers"][0]), ["index", "tag"]);
    let of_index = referrers_json(format!("{}:idx", l(&layout)), &["--tree"]);
    assert!(digests(&of_index).is_empty());
    // ls lists the index once, counting itself as the referrer of its child.
    let listing = ocikit_json(["ls", &l(&layout), "--json"]);
    assert_eq!(listing["rows"].as_array().unwrap().len(), 1, "{listing}");
    assert_eq!(listing["rows"][0]["name"], "idx");
    assert_eq!(listing["rows"][0]["referrers"], 1);
    // Removing the child's referrers by removing the index's entries ends cleanly.
    ocikit()
        .arg("rm")
        .arg(format!("{}@{}", l(&layout), index.digest))
        .assert()
        .success();
    assert_eq!(index_value(&layout)["manifests"], Value::Array(vec![]));
}

#[test]
fn referrers_tree_is_safe_on_cycles_in_the_bookkeeping() {
    // Content addressing rules out a manifest cycle, but fallback tags can list each other in
    // a circle when the manifests they name are missing and cannot be checked.
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("cycle");
    let (opened, _) = Layout::init(&layout).unwrap();
    let image = fixtures::gzip_image(&opened, "app:1");
    let writer = opened.writer().unwrap();
    let ghost = |seed: &[u8]| ocikit::spec::document::Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: Digest::sha256_of(seed),
        size: 5,
        urls: None,
        annotations: None,
        data: None,
        platform: None,
        artifact_type: Some("application/x-ghost".into()),
    };
    let (one, two) = (ghost(b"one"), ghost(b"two"));
    fixtures::record_fallback(&writer, &image.manifest.digest, std::slice::from_ref(&one));
    fixtures::record_fallback(&writer, &one.digest, std::slice::from_ref(&two));
    fixtures::record_fallback(&writer, &two.digest, std::slice::from_ref(&one));
    drop(writer);
    let out = ocikit()
        .args([
            "referrers",
            &format!("{}:app:1", l(&layout)),
            "--tree",
            "--json",
        ])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is missing"))
        .get_output()
        .stdout
        .clone();
    let tree: Value = serde_json::from_slice(&out).unwrap();
    let first = &tree["referrers"][0];
    assert_eq!(first["digest"], one.digest.as_str());
    assert!(first["problem"].is_string());
    let second = &first["referrers"][0];
    assert_eq!(second["digest"], two.digest.as_str());
    let back = &second["referrers"][0];
    assert_eq!(back["digest"], one.digest.as_str());
    assert_eq!(back["cycle"], true);
    assert!(back.get("referrers").is_none());
}

#[test]
fn referrers_ignores_and_warns_about_a_fallback_listing_with_another_subject() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("misfiled");
    let (opened, _) = Layout::init(&layout).unwrap();
    let one = fixtures::gzip_image(&opened, "one");
    let two = fixtures::zstd_image(&opened, "two");
    let writer = opened.writer().unwrap();
    let of_two = fixtures::referrer_manifest(&writer, &two.manifest, "application/x-r", b"r");
    fixtures::record_fallback(&writer, &one.manifest.digest, std::slice::from_ref(&of_two));
    drop(writer);
    ocikit()
        .args(["referrers", &format!("{}:one", l(&layout))])
        .assert()
        .success()
        .stdout(predicate::str::contains(of_two.digest.as_str()).not())
        .stderr(predicate::str::contains("warning"))
        .stderr(predicate::str::contains(format!(
            "whose subject is {}",
            two.manifest.digest
        )));
}

#[test]
fn referrers_of_a_digest_whose_subject_is_gone_are_still_listed() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("gone");
    let (image, referrer) = fixtures::oras_style(&layout);
    fs::remove_file(layout.join("blobs/sha256").join(image.digest.encoded())).unwrap();
    let root = referrers_json(format!("{}@{}", l(&layout), image.digest), &[]);
    assert_eq!(digests(&root), [referrer.digest.as_str()]);
    assert!(root["problem"]
        .as_str()
        .unwrap()
        .contains("not in the layout"));
}

#[test]
fn referrers_selects_an_index_member_with_platform() {
    let (_dir, layout) = sample_layout_copy();
    let target = format!("{}:app:multi", l(&layout));
    ocikit()
        .args([
            "attach",
            &target,
            "--platform",
            "linux/arm64",
            "--artifact-type",
            "application/x-arm",
        ])
        .assert()
        .success();
    let arm = referrers_json(target.clone(), &["--platform", "linux/arm64"]);
    assert_eq!(arm["referrers"][0]["artifactType"], "application/x-arm");
    let index = referrers_json(target, &[]);
    assert!(digests(&index).is_empty(), "the index itself has none");
}

#[test]
fn referrers_reads_a_layout_archive() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("regctl");
    let (_, referrer) = fixtures::regctl_style(&layout);
    let archive = dir.path().join("regctl.tar");
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let root = referrers_json(format!("{}:app:1", l(&archive)), &["--scan"]);
    assert_eq!(digests(&root), [referrer.digest.as_str()]);
    assert_eq!(found_in(&root["referrers"][0]), ["tag", "scan"]);
}

#[test]
fn referrers_of_an_unknown_name_fails_with_status_2() {
    ocikit()
        .args(["referrers", &format!("{}:nope", l(&sample_layout()))])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no image named \"nope\""));
    ocikit().args(["referrers"]).assert().code(2);
}

// ---- what is read ----

/// A layout that records which blobs were opened.
struct Counting<'a> {
    inner: &'a Layout,
    opened: Mutex<BTreeSet<Digest>>,
}

impl LayoutRead for Counting<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn index_bytes(&self) -> ocikit::Result<Vec<u8>> {
        self.inner.index_bytes()
    }
    fn open_blob_raw(&self, digest: &Digest) -> ocikit::Result<Box<dyn Read + Send + '_>> {
        self.opened.lock().unwrap().insert(digest.clone());
        self.inner.open_blob_raw(digest)
    }
    fn blob_len(&self, digest: &Digest) -> ocikit::Result<Option<u64>> {
        self.inner.blob_len(digest)
    }
    fn files(&self) -> ocikit::Result<Vec<FileInfo>> {
        panic!("listing blobs/ is a scan, and no scan was asked for")
    }
    fn root_file(&self, name: &str, limit: u64) -> ocikit::Result<Option<Vec<u8>>> {
        self.inner.root_file(name, limit)
    }
}

#[test]
fn referrers_reads_only_index_json_its_entries_the_fallback_index_and_the_referrers() {
    let (_dir, layout) = sample_layout_copy();
    let target = format!("{}:app:gzip", l(&layout));
    let mut attached = Vec::new();
    for i in 0..5 {
        let file = layout.parent().unwrap().join(format!("sig{i}"));
        fs::write(&file, format!("signature {i}")).unwrap();
        let out = ocikit()
            .args(["attach", &target, "--artifact-type", "application/x-sig"])
            .arg(&file)
            .env("SOURCE_DATE_EPOCH", "0")
            .assert()
            .success();
        attached.push(Digest::parse(&trimmed_stdout(&out)).unwrap());
    }
    let opened = Layout::open(&layout).unwrap();
    let counting = Counting {
        inner: &opened,
        opened: Mutex::new(BTreeSet::new()),
    };
    let subject = Digest::parse(
        ocikit_json(["inspect", &target, "--json"])["digest"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let discovery = Discovery::new(&counting, Scope::default()).unwrap();
    let referrers = discovery.referrers(&subject);
    assert_eq!(referrers.len(), 6, "the sample SBOM and five signatures");
    let fallback = opened
        .index()
        .unwrap()
        .entries()
        .iter()
        .find(|d| d.ref_name() == Some(&format!("sha256-{}", subject.encoded())))
        .unwrap()
        .digest
        .clone();
    // What index.json names (every entry's document: a named one may be a referrer too),
    // the fallback index and what it lists — and nothing else of blobs/.
    let mut expected: BTreeSet<Digest> = referrers.iter().map(|r| r.digest.clone()).collect();
    expected.insert(fallback);
    for entry in opened.index().unwrap().entries() {
        expected.insert(entry.digest.clone());
    }
    let configs_and_layers = blob_names(&layout).len() - expected.len();
    assert!(configs_and_layers > 0);
    assert_eq!(*counting.opened.lock().unwrap(), expected);
    for digest in &attached {
        assert!(expected.contains(digest));
    }

    // And the binary never touches the rest of blobs/ without --scan: a FIFO named like a
    // blob would hang or fail any reader that opened it.
    let fifo = layout.join("blobs/sha256").join("0".repeat(64));
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    ocikit()
        .args(["referrers", &target, "--tree"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stderr(predicate::str::is_empty());
    ocikit()
        .args(["referrers", &target, "--scan"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a regular file"));
}

// ---- sync ----

#[test]
fn sync_to_tag_moves_oras_entries_into_a_fallback_index() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oras");
    let (image, referrer) = fixtures::oras_style(&layout);
    let report = ocikit_json([
        "referrers",
        "sync",
        &l(&layout),
        "--format",
        "tag",
        "--json",
    ]);
    assert_eq!(report["referrers"], 1);
    assert_eq!(
        report["removedEntries"],
        serde_json::json!([referrer.digest])
    );
    let tag = format!("sha256-{}", image.digest.encoded());
    assert_eq!(report["writtenTags"], serde_json::json!([tag]));
    assert!(untagged(&layout).is_empty());
    assert_eq!(fallback_tags(&layout), [tag]);
    assert_only_referrer(&layout, &referrer, &["tag"]);
}

#[test]
fn sync_to_index_turns_a_regctl_fallback_tag_into_untagged_entries() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("regctl");
    let (_, referrer) = fixtures::regctl_style(&layout);
    ocikit()
        .args(["referrers", "sync", &l(&layout), "--format", "index"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "1 referrer: 1 entry added, 0 removed; 0 fallback tags written, 1 removed",
        ));
    assert!(fallback_tags(&layout).is_empty());
    assert_eq!(untagged(&layout), [referrer.digest.as_str()]);
    let entry = index_value(&layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["digest"] == referrer.digest.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["artifactType"], "application/vnd.example.regctl");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.created"],
        fixtures::CREATED_AT
    );
}

#[test]
fn sync_with_scan_records_blob_only_referrers_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("cosign");
    let (_, referrer) = fixtures::blob_only_style(&layout);
    ocikit()
        .args(["referrers", "sync", &l(&layout), "--format", "both"])
        .assert()
        .success();
    assert!(
        untagged(&layout).is_empty(),
        "without --scan the blob is not seen"
    );
    ocikit()
        .args([
            "referrers",
            "sync",
            &l(&layout),
            "--format",
            "both",
            "--scan",
        ])
        .assert()
        .success();
    assert_eq!(untagged(&layout), [referrer.digest.as_str()]);
    assert_eq!(fallback_tags(&layout).len(), 1);
    let before = index_bytes(&layout);
    let blobs = blob_names(&layout);
    let report = ocikit_json([
        "referrers",
        "sync",
        &l(&layout),
        "--format",
        "both",
        "--scan",
        "--json",
    ]);
    assert_eq!(report["addedEntries"], serde_json::json!([]));
    assert_eq!(report["writtenTags"], serde_json::json!([]));
    assert_eq!(index_bytes(&layout), before);
    assert_eq!(blob_names(&layout), blobs);
    let root = referrers_json(format!("{}:app:1", l(&layout)), &[]);
    assert_eq!(found_in(&root["referrers"][0]), ["index", "tag"]);
}

#[test]
fn sync_removes_stale_listings_and_drops_fallback_indexes_that_list_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("stale");
    let (opened, _) = Layout::init(&layout).unwrap();
    let one = fixtures::gzip_image(&opened, "one");
    let two = fixtures::zstd_image(&opened, "two");
    let writer = opened.writer().unwrap();
    let of_one = fixtures::referrer_manifest(&writer, &one.manifest, "application/x-a", b"a");
    let of_two = fixtures::referrer_manifest(&writer, &two.manifest, "application/x-b", b"b");
    let mut missing = of_one.clone();
    missing.digest = Digest::sha256_of(b"gone");
    // one's tag lists its referrer, a missing manifest and two's referrer (misfiled).
    fixtures::record_fallback(
        &writer,
        &one.manifest.digest,
        &[of_one.clone(), missing, of_two.clone()],
    );
    // A tag for a subject without referrers, listing only a missing manifest.
    let mut ghost = of_one.clone();
    ghost.digest = Digest::sha256_of(b"ghost");
    fixtures::record_fallback(&writer, &Digest::sha256_of(b"nothing"), &[ghost]);
    drop(writer);

    let report = ocikit_json([
        "referrers",
        "sync",
        &l(&layout),
        "--format",
        "tag",
        "--json",
    ]);
    assert_eq!(report["referrers"], 2);
    let tag_one = format!("sha256-{}", one.manifest.digest.encoded());
    let tag_two = format!("sha256-{}", two.manifest.digest.encoded());
    let tag_nothing = format!("sha256-{}", Digest::sha256_of(b"nothing").encoded());
    assert_eq!(report["removedTags"], serde_json::json!([tag_nothing]));
    let mut tags = fallback_tags(&layout);
    tags.sort();
    let mut want = vec![tag_one.clone(), tag_two];
    want.sort();
    assert_eq!(tags, want);
    let first = referrers_json(format!("{}:one", l(&layout)), &[]);
    assert_eq!(digests(&first), [of_one.digest.as_str()]);
    let second = referrers_json(format!("{}:two", l(&layout)), &[]);
    assert_eq!(digests(&second), [of_two.digest.as_str()]);
}

#[test]
fn attach_and_sync_keep_unknown_fields_of_index_json_and_of_the_fallback_index() {
    let (_dir, layout) = sample_layout_copy();
    let sample = fixtures::sample_layout(&tempfile::tempdir().unwrap().path().join("s"));
    // Another tool's fallback index, with fields of its own at the top and in its listing.
    let opened = Layout::open(&layout).unwrap();
    let writer = opened.writer().unwrap();
    let theirs = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "x-vendor": "kept",
        "manifests": [
            {"x-item": 1, "mediaType": sample.sbom.manifest.media_type, "digest": sample.sbom.manifest.digest, "size": sample.sbom.manifest.size, "artifactType": fixtures::SBOM_TYPE}
        ],
    });
    let written =
        fixtures::write_document(&writer, "application/vnd.oci.image.index.v1+json", &theirs);
    fixtures::tag(&writer, &written, &sample.sbom.tag_name);
    drop(writer);
    let mut index = index_value(&layout);
    index["x-vendor"] = Value::from("kept");
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    let file = layout.parent().unwrap().join("sig");
    fs::write(&file, "sig").unwrap();
    let target = format!("{}:app:gzip", l(&layout));
    ocikit()
        .args(["attach", &target, "--artifact-type", "application/x"])
        .arg(&file)
        .assert()
        .success();
    let tag_entry = index_value(&layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"] == sample.sbom.tag_name.as_str()
        })
        .unwrap()
        .clone();
    let merged: Value = serde_json::from_slice(&crate::helpers::blob_bytes(
        &layout,
        tag_entry["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(merged["x-vendor"], "kept");
    assert_eq!(merged["manifests"][0]["x-item"], 1);
    assert_eq!(merged["manifests"].as_array().unwrap().len(), 2);
    // Going to tag-only rewrites index.json (the untagged entries go) and keeps its fields.
    ocikit()
        .args(["referrers", "sync", &l(&layout), "--format", "tag"])
        .assert()
        .success();
    assert_eq!(index_value(&layout)["x-vendor"], "kept");
    assert!(untagged(&layout).is_empty());
    assert_eq!(digests(&referrers_json(target, &[])).len(), 2);
}

#[test]
fn sync_refuses_a_reference_with_a_name_and_an_archive() {
    ocikit()
        .args([
            "referrers",
            "sync",
            &format!("{}:app:gzip", l(&sample_layout())),
            "--format",
            "tag",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("whole layout"));
    ocikit()
        .args(["referrers", "sync", &l(&sample_layout())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--format"));
}

// ---- rm by digest ----

#[test]
fn rm_by_digest_removes_the_manifest_and_recursively_its_referrers() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("chain");
    let (image, chain) = fixtures::chain_style(&layout);
    let out = ocikit()
        .arg("rm")
        .arg(format!("{}@{}", l(&layout), image.digest))
        .assert()
        .success()
        .get_output()
        .stderr
        .clone();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
    let index = index_value(&layout);
    assert_eq!(index["manifests"], Value::Array(vec![]), "{index}");
    for referrer in &chain {
        assert!(
            layout
                .join("blobs/sha256")
                .join(referrer.digest.encoded())
                .exists(),
            "blobs stay until gc"
        );
    }
}

#[test]
fn rm_keep_referrers_removes_only_the_manifests_own_entries() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("chain");
    let (image, chain) = fixtures::chain_style(&layout);
    let removal = ocikit_json([
        "rm".to_string(),
        format!("{}@{}", l(&layout), image.digest),
        "--keep-referrers".into(),
        "--json".into(),
    ]);
    assert_eq!(removal["entries"][0]["name"], "app:1");
    assert_eq!(removal["referrers"], serde_json::json!([]));
    assert_eq!(untagged(&layout).len(), 3);
    assert_eq!(fallback_tags(&layout).len(), 3);
    let orphan = referrers_json(format!("{}@{}", l(&layout), image.digest), &[]);
    assert_eq!(digests(&orphan), [chain[0].digest.as_str()]);
}

#[test]
fn rm_of_a_referrer_takes_it_out_of_its_subjects_fallback_index() {
    let (_dir, layout) = sample_layout_copy();
    let target = format!("{}:app:gzip", l(&layout));
    let file = layout.parent().unwrap().join("sig");
    fs::write(&file, "sig").unwrap();
    let sig = trimmed_stdout(
        &ocikit()
            .args(["attach", &target, "--artifact-type", "application/x-sig"])
            .arg(&file)
            .assert()
            .success(),
    );
    let removal = ocikit_json([
        "rm".to_string(),
        format!("{}@{sig}", l(&layout)),
        "--json".into(),
    ]);
    assert_eq!(removal["updatedTags"].as_array().unwrap().len(), 1);
    let root = referrers_json(target.clone(), &[]);
    let sbom = fixtures::sample_layout(&tempfile::tempdir().unwrap().path().join("s")).sbom;
    assert_eq!(digests(&root), [sbom.manifest.digest.as_str()]);
    // Removing the last one drops the fallback tag.
    let removal = ocikit_json([
        "rm".to_string(),
        format!("{}@{}", l(&layout), sbom.manifest.digest),
        "--json".into(),
    ]);
    assert_eq!(removal["droppedTags"], serde_json::json!([sbom.tag_name]));
    assert!(fallback_tags(&layout).is_empty());
}

#[test]
fn rm_keeps_a_referrer_that_has_a_name_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("chain");
    let (image, chain) = fixtures::chain_style(&layout);
    ocikit()
        .args([
            "tag",
            &format!("{}@{}", l(&layout), chain[1].digest),
            "signature:kept",
        ])
        .assert()
        .success();
    let removal = ocikit_json([
        "rm".to_string(),
        format!("{}@{}", l(&layout), image.digest),
        "--json".into(),
    ]);
    assert_eq!(removal["referrers"], serde_json::json!([chain[0].digest]));
    assert_eq!(removal["keptNamed"][0]["name"], "signature:kept");
    let kept = referrers_json(format!("{}:signature:kept", l(&layout)), &[]);
    assert_eq!(digests(&kept), [chain[2].digest.as_str()]);
}

#[test]
fn rm_of_an_index_removes_the_referrers_of_children_no_other_entry_reaches() {
    let (_dir, layout) = sample_layout_copy();
    let multi = format!("{}:app:multi", l(&layout));
    for platform in ["linux/arm64", "linux/amd64"] {
        ocikit()
            .args([
                "attach",
                &multi,
                "--platform",
                platform,
                "--artifact-type",
                "application/x",
            ])
            .env("SOURCE_DATE_EPOCH", "0")
            .assert()
            .success();
    }
    // The amd64 member is also named on its own, so its referrer stays.
    ocikit()
        .args(["tag", &multi, "amd64", "--platform", "linux/amd64"])
        .assert()
        .success();
    let index_digest = ocikit_json(["inspect", &multi, "--json"])["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let removal = ocikit_json([
        "rm".to_string(),
        format!("{}@{index_digest}", l(&layout)),
        "--json".into(),
    ]);
    assert_eq!(
        removal["referrers"].as_array().unwrap().len(),
        1,
        "{removal}"
    );
    let amd64 = referrers_json(format!("{}:amd64", l(&layout)), &[]);
    assert_eq!(digests(&amd64).len(), 1);
}

#[test]
fn rm_of_an_unknown_digest_fails_and_changes_nothing() {
    let (_dir, layout) = sample_layout_copy();
    let before = index_bytes(&layout);
    let missing = Digest::sha256_of(b"not there");
    ocikit()
        .arg("rm")
        .arg(format!("{}@{missing}", l(&layout)))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("refers to {missing}")));
    ocikit()
        .args([
            "rm",
            &format!("{}:app:gzip", l(&layout)),
            "--keep-referrers",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("LAYOUT@DIGEST"));
    assert_eq!(index_bytes(&layout), before);
}

// ---- referrers that carry a name (issue 8, item 17) ----

#[test]
fn named_referrers_are_listed_counted_and_followed_in_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("pulled");
    let (image, chain) = fixtures::registry_pull_style(&layout);
    let of_image = format!("{}:registry.example/app:1", l(&layout));
    let listed = referrers_json(of_image.clone(), &[]);
    assert_eq!(digests(&listed), [chain[0].digest.as_str()]);
    assert_eq!(found_in(&listed["referrers"][0]), ["index"]);
    // The tree goes on to the signature of the SBOM, which is named too.
    let tree = referrers_json(of_image.clone(), &["--tree"]);
    assert_eq!(digests(&tree["referrers"][0]), [chain[1].digest.as_str()]);
    let text = ocikit()
        .args(["referrers", "--tree", &of_image])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&text.get_output().stdout).to_string();
    assert!(text.contains(&chain[1].digest.to_string()), "{text}");
    // ls lists every name (a name stays a name) and counts each referrer under its subject.
    let listing = ocikit_json(["ls", &l(&layout), "--json"]);
    let rows = listing["rows"].as_array().unwrap();
    let count = |name: &str| {
        rows.iter().find(|r| r["name"] == name).unwrap()["referrers"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows.len(), 3, "{listing}");
    assert_eq!(count("registry.example/app:1"), 1);
    assert_eq!(count("registry.example/app:sbom"), 1);
    assert_eq!(count("registry.example/app:sbom.sig"), 0);
    assert_eq!(listing["detachedReferrers"], 0);
    // Still resolvable by name, and the layout is clean.
    let sbom = ocikit_json([
        "inspect",
        &format!("{}:registry.example/app:sbom", l(&layout)),
        "--json",
    ]);
    assert_eq!(sbom["digest"], chain[0].digest.as_str());
    assert_eq!(sbom["subject"]["digest"], image.digest.as_str());
    ocikit().arg("validate").arg(&layout).assert().success();
}

#[test]
fn named_referrers_stay_roots_for_gc_and_are_seen_by_rm() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("pulled");
    let (image, chain) = fixtures::registry_pull_style(&layout);
    // An untagged signature of the (named) SBOM: kept because its subject is kept.
    let file = dir.path().join("sig2");
    fs::write(&file, "second signature").unwrap();
    let untagged_sig = trimmed_stdout(
        &ocikit()
            .args([
                "attach",
                &format!("{}:registry.example/app:sbom", l(&layout)),
                "--artifact-type",
                "application/vnd.example.signature",
                "--referrers-format",
                "index",
            ])
            .arg(&file)
            .env("SOURCE_DATE_EPOCH", "0")
            .assert()
            .success(),
    );
    let kept_before = blob_names(&layout);
    let gc = ocikit_json(["gc", &l(&layout), "--json"]);
    assert_eq!(gc["removedBlobs"], Value::Array(vec![]), "{gc}");
    assert_eq!(blob_names(&layout), kept_before);

    // rm of the image by digest: the cascade reaches the SBOM, keeps it (it has a name of its
    // own) and leaves its name and its own referrers in place.
    let removal = ocikit_json([
        "rm".to_string(),
        format!("{}@{}", l(&layout), image.digest),
        "--json".into(),
    ]);
    assert_eq!(removal["referrers"], serde_json::json!([]), "{removal}");
    assert_eq!(
        removal["keptNamed"][0]["digest"],
        chain[0].digest.as_str(),
        "{removal}"
    );
    assert_eq!(removal["keptNamed"][0]["name"], "registry.example/app:sbom");
    let sigs = referrers_json(format!("{}:registry.example/app:sbom", l(&layout)), &[]);
    let mut expected = vec![chain[1].digest.to_string(), untagged_sig.clone()];
    expected.sort();
    let mut got = digests(&sigs);
    got.sort();
    assert_eq!(got, expected);

    // gc then sweeps the image, whose name is gone, and keeps every named referrer with what
    // hangs from it: a name is a root, though a referrer does not keep its subject.
    ocikit_json(["gc", &l(&layout), "--json"]);
    assert!(!layout
        .join("blobs/sha256")
        .join(image.digest.encoded())
        .exists());
    for kept in [&chain[0].digest, &chain[1].digest] {
        assert!(layout.join("blobs/sha256").join(kept.encoded()).exists());
    }
    let untagged = Digest::parse(&untagged_sig).unwrap();
    assert!(layout
        .join("blobs/sha256")
        .join(untagged.encoded())
        .exists());
}

#[test]
fn sync_records_named_referrers_and_only_manifests_that_are_real() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("pulled");
    let (image, chain) = fixtures::registry_pull_style(&layout);
    // A fallback index that also lists JSON with a subject that is no manifest (no
    // schemaVersion, no config) under a manifest media type.
    let opened = Layout::open(&layout).unwrap();
    let writer = opened.writer().unwrap();
    let junk = serde_json::json!({
        "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.size},
    });
    let junk = writer
        .write_blob_bytes(&ocikit::spec::document::canonical::to_vec(&junk))
        .unwrap();
    let junk = ocikit::spec::document::Descriptor::new(
        ocikit::spec::document::media_type::OCI_MANIFEST,
        junk.digest,
        junk.size,
    );
    fixtures::record_fallback(&writer, &image.digest, &[chain[0].clone(), junk.clone()]);
    drop(writer);
    let report = ocikit_json([
        "referrers",
        "sync",
        &l(&layout),
        "--format",
        "index",
        "--json",
    ]);
    let added: Vec<&str> = report["addedEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(added.contains(&chain[0].digest.as_str()), "{report}");
    assert!(!added.contains(&junk.digest.as_str()), "{report}");
    assert!(!index_bytes(&layout)
        .windows(junk.digest.as_str().len())
        .any(|w| w == junk.digest.as_str().as_bytes()));
    let out = ocikit()
        .args(["referrers", &format!("{}@{}", l(&layout), image.digest)])
        .assert()
        .success();
    assert!(!String::from_utf8_lossy(&out.get_output().stdout).contains(junk.digest.as_str()));
}
